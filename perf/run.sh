#!/usr/bin/env bash
# perf/run.sh: adakv against llama.cpp side by side (issue 4 item 5).
#
# Every repetition is a round that runs each configuration once, peer and ours alternating
# (peer, ours, peer, ours, ...), plus the STREAM probe, so slow drifts of this shared VM hit both
# sides alike; the table reports medians over the rounds. Tests: pp512, pp4096, tg128 at empty
# context, tg128 after 8,192 tokens. llama.cpp runs with f16 KV (flash attention on and off) and
# q8_0 KV (flash attention on; llama.cpp refuses a quantized V cache without it); adakv with its
# full int8 cache and with 20% Ada-SnapKV (--press ada-snapkv --kv-ratio 0.8).
#
# usage: perf/run.sh [--quick] [-r N] [-t THREADS] [-m MODEL]... [--zoo] [-b ADAKV_BUILD_DIR]
#                    [-o OUT_DIR] [--tests LIST] [--peer-cfgs LIST] [--ours-cfgs LIST]
#   --quick   3 rounds, no pp4096 (for iterating); the full run takes 20-30 min on an idle VM
#   -m MODEL  repeatable: every round runs every model (default: the default model)
#   --zoo     the models of perf/zoo/ (perf/zoo.sh) instead
#   --tests "pp64 tg16@d256"   another test list (llama-bench names: ppN, tgN, tgN@dD)
#   --peer-cfgs "f16:1 f16:0"  llama.cpp configurations (KV type:flash attention)
#   --ours-cfgs "full ada20"   adakv configurations (full int8 cache, 20% Ada-SnapKV)
# Output: a markdown table on stdout and in OUT_DIR/run-<stamp>.md, per-sample CSV in
# OUT_DIR/run-<stamp>.csv (OUT_DIR defaults to perf/out/, git-ignored).
set -euo pipefail
args="$*"
top=$(cd "$(dirname "$0")/.." && pwd)
reps=5 threads=2 quick=0 tests_opt=
models=()
peer_cfgs="f16:1 f16:0 q8_0:1" # KV type : flash attention
ours_cfgs="full ada20"
build=${ADAKV_BUILD:-$top/build}
out=$top/perf/out
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 reps=3 ;;
    -r) reps=$2; shift ;;
    -t) threads=$2; shift ;;
    -m) models+=("$2"); shift ;;
    --zoo) models+=("$top"/perf/zoo/*.gguf) ;;
    --peer-cfgs) peer_cfgs=$2; shift ;;
    --ours-cfgs) ours_cfgs=$2; shift ;;
    -b) build=$2; shift ;;
    -o) out=$2; shift ;;
    --tests) tests_opt=$2; shift ;;
    *) echo "perf/run.sh: unknown option '$1' (see the header of perf/run.sh)" >&2; exit 1 ;;
    esac
    shift
done
[ ${#models[@]} -gt 0 ] || models=("$top/models/SmolLM2-135M-Instruct.Q4_1.gguf")
for model in "${models[@]}"; do
    [ -f "$model" ] || { echo "perf/run.sh: model '$model' not found (perf/zoo.sh makes the zoo)" >&2; exit 1; }
done
peer=${PEER_BENCH:-$top/perf/peer/bin/llama-bench} # PEER_BENCH: another llama-bench build
[ -x "$peer" ] || "$top/perf/build-peer.sh" || { echo "perf/run.sh: peer build failed" >&2; exit 1; }
ours=$build/perf/adakv-bench stream=$build/perf/stream peak=$build/perf/peak
for p in "$ours" "$stream" "$peak"; do
    [ -x "$p" ] || make -C "$build" "${p#"$build"/}" >/dev/null
done
mkdir -p "$out"
stamp=$(date +%Y%m%d-%H%M%S)
csv=$out/run-$stamp.csv md=$out/run-$stamp.md log=$out/run-$stamp.log
export OMP_NUM_THREADS=$threads

tests="pp512 pp4096 tg128 tg128@d8192"
[ $quick = 1 ] && tests="pp512 tg128 tg128@d8192"
[ -n "$tests_opt" ] && tests=$tests_opt

# the tokens/s of llama-bench's last CSV row (empty when it failed)
avg_ts='import csv, sys; r = list(csv.DictReader(sys.stdin)); print(r[-1]["avg_ts"] if r else "")'

# test_args TEST -> llama-bench's -p/-n/-d for it
test_args() {
    case $1 in
    pp*) echo "-p ${1#pp} -n 0" ;;
    tg*@d*) t=${1%@*}; echo "-p 0 -n ${t#tg} -d ${1#*@d}" ;;
    tg*) echo "-p 0 -n ${1#tg}" ;;
    esac
}
ours_args() {
    case $1 in
    pp*) echo "-p ${1#pp} -n 0" ;;
    tg*@d*) t=${1%@*}; echo "-n ${t#tg} -d ${1#*@d}" ;;
    tg*) echo "-n ${1#tg} -d 0" ;;
    esac
}

echo "round,model,tool,config,test,tps,kv_read_bytes,stream_read_GBps,depth_fill_s,press_s" >"$csv"
{
    echo "# perf/run.sh $stamp: reps=$reps threads=$threads quick=$quick models=${models[*]}"
    echo "# peer: $peer ($(cat "$top/perf/peer/COMMIT" 2>/dev/null || echo unknown commit))"
    echo "# ours: $ours (git $(git -C "$top" rev-parse --short HEAD))"
    echo "# OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset}"
    uptime
} >"$log"
# Under chrt (SCHED_FIFO/RR) the kernel's RT throttling (kernel.sched_rt_runtime_us, 950000 of
# each 1000000 us by default) takes each CPU from the spinning threads of either engine for 50
# ms a second: long tests lose ~5% while the short STREAM probe does not, which lowers every
# "% of bound" (seen here: 10 ms stalls on one thread, 4% of a decode run's time).
rt_runtime=$(cat /proc/sys/kernel/sched_rt_runtime_us 2>/dev/null || echo -1)
if [ "$rt_runtime" != -1 ] && chrt -p $$ 2>/dev/null | grep -q 'SCHED_\(FIFO\|RR\)'; then
    echo "note: RT throttling is on (kernel.sched_rt_runtime_us=$rt_runtime): both engines lose" \
        "~5% of long runs under chrt; 'sysctl kernel.sched_rt_runtime_us=-1' for the run lifts it" |
        tee -a "$log" >&2
fi
# this CPU's fp32 FMA and int8 dot peaks per thread, all threads busy (perf/peak.c says why)
peaks=$("$peak" 3 | tee -a "$log")
peak32=$(sed -n 's/.*fp32_GFLOPs_per_thread=\([0-9.]*\).*/\1/p' <<<"$peaks")
peak8=$(sed -n 's/.*int8_GOPs_per_thread=\([0-9.]*\).*/\1/p' <<<"$peaks")
peakamx=$(sed -n 's/.*amx_bf16_GFLOPs_per_thread=\([0-9.]*\).*/\1/p' <<<"$peaks")
[ "${peakamx:-0}" = "0.0" ] && peakamx=
echo "peaks per thread: fp32 $peak32 GFLOP/s, int8 $peak8 GOP/s${peakamx:+, AMX bf16 $peakamx GFLOP/s}" >&2

for r in $(seq 1 "$reps"); do
    bw=$("$stream" 256 6 2>/dev/null | sed -n 's/.*read_GBps=\([0-9.]*\).*/\1/p')
    echo "round $r/$reps: STREAM read $bw GB/s" >&2
    for model in "${models[@]}"; do
    mname=$(basename "$model" .gguf)
    for t in $tests; do
        set -- $peer_cfgs
        ocfgs=($ours_cfgs)
        i=0
        # alternate: peer config, ours config, peer config, ... until both lists are done
        while [ $# -gt 0 ] || [ $i -lt ${#ocfgs[@]} ]; do
            if [ $# -gt 0 ]; then
                kv=${1%:*} fa=${1#*:}
                shift
                cfg="$kv fa$fa"
                tps=$("$peer" -m "$model" $(test_args "$t") -t "$threads" -r 1 -fa "$fa" \
                    -ctk "$kv" -ctv "$kv" -o csv 2>>"$log" | python3 -c "$avg_ts") || tps=
                # On AMX CPUs llama.cpp repacks its weights for AMX by default, and at 0c1e57098
                # its prompt batches then crash in ggml_backend_amx_mul_mat (SIGSEGV, decode
                # runs): its working configuration there is --repack 0, recorded as such.
                if [ -z "$tps" ]; then
                    cfg="$kv fa$fa repack0"
                    tps=$("$peer" -m "$model" $(test_args "$t") -t "$threads" -r 1 -fa "$fa" \
                        -ctk "$kv" -ctv "$kv" --repack 0 -o csv 2>>"$log" |
                        python3 -c "$avg_ts") || tps=
                fi
                echo "$r,$mname,llama.cpp,$cfg,$t,$tps,,$bw,," >>"$csv"
                echo "  $mname $t llama.cpp $cfg: $tps t/s" >&2
            fi
            if [ $i -lt ${#ocfgs[@]} ]; then
                cfg=${ocfgs[$i]}
                i=$((i + 1))
                press=
                [ "$cfg" = ada20 ] && press="--press ada-snapkv --kv-ratio 0.8"
                row=$("$ours" -m "$model" $(ours_args "$t") -r 1 -t "$threads" $press \
                    2>>"$log" | tail -n 1) || row=
                tps=$(cut -d, -f6 <<<"$row") kvb=$(cut -d, -f11 <<<"$row")
                fill=$(cut -d, -f12 <<<"$row") pressed=$(cut -d, -f13 <<<"$row")
                echo "$r,$mname,adakv,int8 $cfg,$t,$tps,$kvb,$bw,$fill,$pressed" >>"$csv"
                echo "  $mname $t adakv int8 $cfg: $tps t/s" >&2
            fi
        done
    done
    done
done
# run-table.py reads the models with the gguf package: the zoo's venv has it (perf/zoo.sh)
py=python3
"$py" -c 'import gguf' 2>/dev/null || py=$top/perf/zoo/.venv/bin/python
"$py" "$top/perf/run-table.py" --csv "$csv" --models "${models[@]}" --threads "$threads" \
    ${peak32:+--peak-fp32 "$peak32"} ${peak8:+--peak-int8 "$peak8"} ${peakamx:+--peak-amx "$peakamx"} \
    --command "perf/run.sh $args" | tee "$md"
echo "wrote $md, $csv and $log" >&2
