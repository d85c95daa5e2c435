#!/usr/bin/env bash
# tools/fuzz.sh TARGET SECONDS [libFuzzer flags...]: runs one libFuzzer target (tests/fuzz/) for
# SECONDS, or each target in turn for TARGET "all". Builds build-fuzz/ first if needed (clang-14,
# configure --enable-fuzzers: ASan + UBSan in the library and the targets).
# Targets: gguf tokenizer-bpe tokenizer-spm chat cli press.
# Per target under build-fuzz/fuzz/: seeds/T (regenerated each run from tests/fuzz/seeds.c),
# corpus/T (what libFuzzer adds; kept between runs), crashes/T (reproducers). Prints the
# executions, exec/s, coverage (cov: edges, ft: features), corpus size and crashes of each run;
# exits 1 if any target crashed, leaked, timed out or hit the memory limit. A crash file goes to
# tests/fuzz/regress/T/ with its fix (the replay tests of `make check` run it).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
all="gguf tokenizer-bpe tokenizer-spm chat cli press"
if [ $# -lt 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
    echo "usage: tools/fuzz.sh TARGET|all SECONDS [libFuzzer flags...]  (targets: $all)" >&2
    exit 2
fi
target=$1 secs=$2
shift 2
[ "$target" = all ] && targets=$all || targets=$target
for t in $targets; do
    [[ " $all " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (targets: $all)" >&2; exit 2; }
done
dir=${ADAKV_FUZZ_BUILD:-$top/build-fuzz}
# Configured as tools/build.sh does, with static programs (the fuzz binaries then run directly,
# not through libtool's wrapper scripts). Only the library and the fuzz programs are built: the
# perf/ programs are not needed here (and perf/stream.c's `omp simd` loop does not vectorise
# under ASan, which clang's -Werror turns into an error).
(cd "$top" && { [ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null; })
mkdir -p "$dir"
(cd "$dir" && { [ -f Makefile ] && [ config.status -nt "$top/configure" ] ||
    "$top/configure" --quiet CC=clang-14 --enable-fuzzers --disable-shared; })
progs=(tests/fuzz/fuzz-seeds)
for t in $targets; do progs+=("tests/fuzz/fuzz-$t"); done
make -C "$dir" -j"$(nproc)" "${progs[@]}" >"$dir/fuzz-make.log" 2>&1 ||
    { tail -30 "$dir/fuzz-make.log" >&2; echo "fuzz.sh: build failed (log $dir/fuzz-make.log)" >&2; exit 1; }
export ADAKV_SRCDIR=$top
export ADAKV_MODEL=${ADAKV_MODEL:-$top/models/SmolLM2-135M-Instruct.Q4_1.gguf}
export ADAKV_GEMMA3_MODEL=${ADAKV_GEMMA3_MODEL:-$top/models/gemma-3-270m-q4_k_m.gguf}
status=0
for t in $targets; do
    seeds=$dir/fuzz/seeds/$t corpus=$dir/fuzz/corpus/$t crashes=$dir/fuzz/crashes/$t
    log=$dir/fuzz/$t.log
    rm -rf "$seeds"
    mkdir -p "$seeds" "$corpus" "$crashes"
    "$dir/tests/fuzz/fuzz-seeds" "$t" "$seeds" >/dev/null
    opts=(-max_total_time="$secs" -timeout=25 -rss_limit_mb=4096 -print_final_stats=1
          -artifact_prefix="$crashes/")
    # GGUF seeds are whole tiny models (22-31 KB); the text targets keep libFuzzer's 4 KB
    [ "$t" = gguf ] && opts+=(-dict="$top/tests/fuzz/gguf.dict" -max_len=49152)
    rc=0
    "$dir/tests/fuzz/fuzz-$t" "${opts[@]}" "$@" "$corpus" "$seeds" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
    found=$(find "$crashes" -type f -newer "$seeds" | sort)
    echo "fuzz $t: ${execs:-?} executions in ${secs} s (${rate:-?}/s), cov ${cov:-?} ft ${ft:-?}," \
         "corpus ${corp:-?} (inputs/bytes kept by libFuzzer), crashes: ${found:-none}"
    if [ $rc -ne 0 ]; then
        status=1
        echo "fuzz $t: libFuzzer exited $rc; the report (log $log):" >&2
        grep -E -A12 '^==[0-9]+==ERROR|runtime error|^SUMMARY|deadly signal|timeout|out-of-memory' \
            "$log" | head -40 >&2 || tail -20 "$log" >&2
    fi
done
exit $status
