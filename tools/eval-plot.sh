#!/usr/bin/env bash
# Figures and tables from an adakv-eval CSV (see docs/eval.md):
#   OUT/accuracy-<mode>.png  RULER score (% of expected values found, mean over cases) against
#                            the compression ratio, one line per press; every line starts at
#                            ratio 0 with the full cache's score;
#   OUT/heat-<press>.png     depth x length heat map of the score over the tasks with a depth
#                            (all but cwe), one panel per (mode, ratio);
#   OUT/depth.png            score against needle depth (mean over lengths and tasks), a panel
#                            per (mode, ratio) with a line per press and the full cache dashed;
#   stdout                   markdown tables: score, all-found accuracy and KV kept per press x
#                            ratio x mode with the full cache alongside, then the score per
#                            task and per length.
# Usage: tools/eval-plot.sh results.csv [OUT (default docs/eval)]
# Needs gnuplot (Debian's gnuplot-nox, in tools/install-deps.sh). Rows are one line each (the
# answer is the last column, newlines escaped), so awk reads the numeric columns by commas.
set -euo pipefail
csv=${1:?usage: tools/eval-plot.sh results.csv [outdir]}
out=${2:-docs/eval}
command -v gnuplot >/dev/null ||
    { echo "eval-plot: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
[ -r "$csv" ] || { echo "eval-plot: $csv: cannot read it" >&2; exit 1; }
head -1 "$csv" | grep -q '^task,length,depth,sample,seed,press,ratio,mode,n_tokens,' ||
    { echo "eval-plot: $csv: not an adakv-eval CSV (header differs)" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One pass: sums per (press, ratio, mode), per (task, press, ratio, mode) and per (press, ratio,
# mode, length, depth); then data files for gnuplot and the tables. Columns: 1 task 2 length
# 3 depth 6 press 7 ratio 8 mode 11 kv_rows 12 kv_rows_full 15 score 16 correct.
awk -F, -v tmp="$tmp" '
NR == 1 { next }
{
    t = $1; L = $2; d = $3; p = $6; r = $7; m = $8
    if (!(p in seen_p)) { seen_p[p] = 1; press[np++] = p }
    if (!(m in seen_m)) { seen_m[m] = 1; modes[nm++] = m }
    if (!(t in seen_t)) { seen_t[t] = 1; tasks[nt++] = t }
    if (r + 0 == 0) full = p
    else if (!((p, r) in seen_pr)) { seen_pr[p, r] = 1; ratios[p] = ratios[p] " " r }
    k = p SUBSEP r SUBSEP m
    n[k]++; sc[k] += $15; ok[k] += $16; kept[k] += ($12 > 0 ? $11 / $12 : 1)
    kt = t SUBSEP k; tn[kt]++; tsc[kt] += $15
    if (d >= 0) {
        if (!(L in seen_L)) { seen_L[L] = 1; lens[nl++] = L }
        if (!(d in seen_d)) { seen_d[d] = 1; deps[nd++] = d }
        kh = k SUBSEP L SUBSEP d; hn[kh]++; hsc[kh] += $15
        kd = k SUBSEP d; dn[kd]++; dsc[kd] += $15
    }
    kl = k SUBSEP L; ln[kl]++; lsc[kl] += $15
    if (!(L in seen_all_L)) { seen_all_L[L] = 1; all_lens[nal++] = L }
}
function sort_num(a, n,    i, j, x) {
    for (i = 1; i < n; i++) { x = a[i]; for (j = i; j > 0 && a[j-1] + 0 > x + 0; j--) a[j] = a[j-1]; a[j] = x }
}
function pct(s, c) { return c ? sprintf("%.1f", 100 * s / c) : "-" }
END {
    sort_num(lens, nl); sort_num(deps, nd); sort_num(all_lens, nal)
    # accuracy against ratio, per mode and press (full at ratio 0)
    for (mi = 0; mi < nm; mi++) for (pi = 0; pi < np; pi++) {
        p = press[pi]; m = modes[mi]
        if (p == full) continue
        f = tmp "/acc-" m "-" p ".dat"
        kf = full SUBSEP 0 SUBSEP m
        if (full != "" && n[kf]) printf "0 %.3f\n", 100 * sc[kf] / n[kf] > f
        split(ratios[p], rs, " "); c = 0; for (i in rs) rr[c++] = rs[i]; sort_num(rr, c)
        for (i = 0; i < c; i++) { k = p SUBSEP rr[i] SUBSEP m; if (n[k]) printf "%s %.3f\n", rr[i], 100 * sc[k] / n[k] > f }
        close(f); delete rr
    }
    # heat maps: one data file per (press, ratio, mode); x = length index, y = depth index
    for (k in hn) {
        split(k, a, SUBSEP)
        for (i = 0; i < nl; i++) if (lens[i] == a[4]) x = i
        for (i = 0; i < nd; i++) if (deps[i] == a[5]) y = i
        f = tmp "/heat-" a[1] "-" a[2] "-" a[3] ".dat"
        printf "%d %d %.3f\n", x, y, 100 * hsc[k] / hn[k] > f
        panels[a[1] SUBSEP a[2] SUBSEP a[3]] = 1
    }
    for (k in panels) { split(k, a, SUBSEP); print a[1], a[2], a[3] > (tmp "/panels") }
    # score by depth: one data file per (press, ratio, mode), depths in order
    for (k in panels) {
        split(k, a, SUBSEP); f = tmp "/depth-" a[1] "-" a[2] "-" a[3] ".dat"
        for (i = 0; i < nd; i++) { kd = k SUBSEP deps[i]; if (dn[kd]) printf "%s %.3f\n", deps[i], 100 * dsc[kd] / dn[kd] > f }
        close(f)
    }
    print full > (tmp "/full")
    xt = ""; for (i = 0; i < nl; i++) xt = xt (i ? ", " : "") "\"" lens[i] "\" " i
    yt = ""; for (i = 0; i < nd; i++) yt = yt (i ? ", " : "") "\"" deps[i] "%%\" " i
    print xt > (tmp "/xtics"); print yt > (tmp "/ytics")
    print nl, nd > (tmp "/dims")
    for (pi = 0; pi < np; pi++) print press[pi] > (tmp "/presses")
    for (mi = 0; mi < nm; mi++) print modes[mi] > (tmp "/modes")

    # table 1: per press x ratio, both modes side by side
    printf "| press | ratio (removed) | KV kept |"
    for (mi = 0; mi < nm; mi++) printf " %s: score | %s: all found |", modes[mi], modes[mi]
    printf " cases |\n|---|---:|---:|"; for (mi = 0; mi < nm; mi++) printf "---:|---:|"; print "---:|"
    for (pi = 0; pi < np; pi++) {
        p = press[pi]
        if (p == full) { c = 1; rr[0] = 0 } else { split(ratios[p], rs, " "); c = 0; for (i in rs) rr[c++] = rs[i]; sort_num(rr, c) }
        for (i = 0; i < c; i++) {
            k0 = p SUBSEP rr[i] SUBSEP modes[0]
            printf "| %s | %s | %s%% |", p, rr[i], pct(kept[k0], n[k0])
            cases = 0
            for (mi = 0; mi < nm; mi++) { k = p SUBSEP rr[i] SUBSEP modes[mi]; printf " %s | %s |", pct(sc[k], n[k]), pct(ok[k], n[k]); cases = n[k] > cases ? n[k] : cases }
            printf " %d |\n", cases
        }
        delete rr
    }
    # table 2: score per task, one table per mode
    for (mi = 0; mi < nm; mi++) {
        m = modes[mi]
        printf "\n%s, score per task:\n\n| task |", m
        for (pi = 0; pi < np; pi++) {
            p = press[pi]
            if (p == full) { printf " %s |", p; continue }
            split(ratios[p], rs, " "); c = 0; for (i in rs) rr[c++] = rs[i]; sort_num(rr, c)
            for (i = 0; i < c; i++) printf " %s %s |", p, rr[i]
            delete rr
        }
        printf "\n|---|"
        for (pi = 0; pi < np; pi++) { p = press[pi]; c = p == full ? 1 : split(ratios[p], rs, " "); for (i = 0; i < c; i++) printf "---:|" }
        printf "\n"
        for (ti = 0; ti < nt; ti++) {
            printf "| %s |", tasks[ti]
            for (pi = 0; pi < np; pi++) {
                p = press[pi]
                if (p == full) { c = 1; rr[0] = 0 } else { split(ratios[p], rs, " "); c = 0; for (i in rs) rr[c++] = rs[i]; sort_num(rr, c) }
                for (i = 0; i < c; i++) { kt = tasks[ti] SUBSEP p SUBSEP rr[i] SUBSEP m; printf " %s |", pct(tsc[kt], tn[kt]) }
                delete rr
            }
            printf "\n"
        }
    }
    # table 3: score per length, one row per (press, ratio, mode)
    printf "\nscore per prompt length:\n\n| press | ratio | mode |"
    for (i = 0; i < nal; i++) printf " %s |", all_lens[i]
    printf "\n|---|---:|---|"; for (i = 0; i < nal; i++) printf "---:|"; printf "\n"
    for (pi = 0; pi < np; pi++) {
        p = press[pi]
        if (p == full) { c = 1; rr[0] = 0 } else { split(ratios[p], rs, " "); c = 0; for (i in rs) rr[c++] = rs[i]; sort_num(rr, c) }
        for (j = 0; j < c; j++) for (mi = 0; mi < nm; mi++) {
            k = p SUBSEP rr[j] SUBSEP modes[mi]
            printf "| %s | %s | %s |", p, rr[j], modes[mi]
            for (i = 0; i < nal; i++) printf " %s |", pct(lsc[k SUBSEP all_lens[i]], ln[k SUBSEP all_lens[i]])
            printf "\n"
        }
        delete rr
    }
}' "$csv"

read -r nl nd < "$tmp/dims"
xtics=$(cat "$tmp/xtics")
ytics=$(cat "$tmp/ytics")

# accuracy against compression ratio, one file per mode
while read -r mode; do
    plots=()
    i=0
    while read -r press; do
        f="$tmp/acc-$mode-$press.dat"
        i=$((i + 1)) # a dash and point type per press: lines that coincide stay visible
        [ -s "$f" ] && plots+=("'$f' using 1:2 with linespoints lw 2 dt $i pt $((i + 3)) ps 1.5 title '$press'")
    done < "$tmp/presses"
    [ ${#plots[@]} -gt 0 ] || continue
    gnuplot <<EOF
set terminal pngcairo size 800,560 font ',11'
set output '$out/accuracy-$mode.png'
set title 'question-$mode: RULER score against compression ratio'
set xlabel 'compression ratio (fraction of KV rows removed; 0 = full cache)'
set ylabel 'score (% of expected values found)'
set xrange [-0.02:1]
set yrange [0:100]
set grid
set key top right
plot $(IFS=,; echo "${plots[*]}")
EOF
done < "$tmp/modes"

# heat maps: one file per press, a panel per (mode, ratio)
while read -r press; do
    panels=$(awk -v p="$press" '$1 == p' "$tmp/panels" | sort -k3,3 -k2,2n)
    [ -n "$panels" ] || continue
    np=$(echo "$panels" | wc -l)
    cols=$(echo "$panels" | awk '{print $2}' | sort -u | wc -l)
    rows=$(( (np + cols - 1) / cols ))
    {
        echo "set terminal pngcairo size $((380 * cols + 80)),$((300 * rows + 40)) font ',10'"
        echo "set output '$out/heat-$press.png'"
        echo "set multiplot layout $rows,$cols title 'needle score by depth and length: $press'"
        echo "set xtics ($xtics)"
        echo "set ytics ($ytics)"
        echo "set xrange [-0.5:$nl-0.5]"
        echo "set yrange [-0.5:$nd-0.5]"
        echo "set cbrange [0:100]"
        echo "set palette defined (0 '#b2182b', 50 '#f7f7f7', 100 '#2166ac')"
        echo "set xlabel 'prompt tokens'"
        echo "set ylabel 'needle depth'"
        echo "unset key"
        echo "$panels" | while read -r p r m; do
            f="$tmp/heat-$p-$r-$m.dat"
            t="$m"
            [ "$r" = 0 ] || t="$m, ratio $r"
            echo "set title '$t'"
            echo "plot '$f' using 1:2:(0.5):(0.5):3 with boxxyerror fs solid lc palette, \\"
            echo "     '' using 1:2:(sprintf('%.0f', \$3)) with labels"
        done
        echo "unset multiplot"
    } | gnuplot
done < "$tmp/presses"
# score by depth: a panel per (mode, ratio), a line per press, the full cache dashed in each
full=$(cat "$tmp/full")
combos=$(awk -v f="$full" '$1 != f {print $3, $2}' "$tmp/panels" | sort -u)
if [ -n "$combos" ]; then
    ncombo=$(echo "$combos" | wc -l)
    cols=$(echo "$combos" | awk '{print $2}' | sort -u | wc -l)
    rows=$(( (ncombo + cols - 1) / cols ))
    {
        echo "set terminal pngcairo size $((460 * cols)),$((330 * rows + 40)) font ',10'"
        echo "set output '$out/depth.png'"
        echo "set multiplot layout $rows,$cols title 'score by needle depth (mean over lengths and tasks)'"
        echo "set xrange [-3:103]"
        echo "set yrange [0:105]"
        echo "set xlabel 'needle depth (% of the filler before it)'"
        echo "set ylabel 'score (%)'"
        echo "set grid"
        echo "set key below font ',8' maxrows 2"
        echo "$combos" | while read -r m r; do
            echo "set title 'question-$m, ratio $r'"
            line="plot"
            [ -n "$full" ] && [ -s "$tmp/depth-$full-0-$m.dat" ] &&
                line="$line '$tmp/depth-$full-0-$m.dat' using 1:2 with lines lw 3 dt 2 lc rgb 'black' title 'full',"
            i=0
            while read -r p; do
                i=$((i + 1))
                f="$tmp/depth-$p-$r-$m.dat"
                [ "$p" != "$full" ] && [ -s "$f" ] &&
                    line="$line '$f' using 1:2 with linespoints lw 2 pt $((i + 3)) title '$p',"
            done < "$tmp/presses"
            echo "${line%,}"
        done
        echo "unset multiplot"
    } | gnuplot
fi
echo >&2 "eval-plot: figures in $out/"
