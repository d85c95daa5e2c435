#!/usr/bin/env bash
# perf/callgrind.sh: deterministic instruction counts of prefill and decode, for before/after
# claims on a machine whose timings are noisy (shared VM, no PMU).
#
# Runs adakv-bench under valgrind --tool=callgrind with one thread, collecting only inside
# adakv_eval (model loading is excluded): a prefill of P tokens and D decode steps at empty
# context, each as warm-up + 1 rep. Prints the total instructions (Ir) per prefilled / decoded
# token and the top functions; the raw files stay in OUT_DIR for callgrind_annotate.
# Valgrind emulates no AVX-512 (its CPUID hides it), so the run-time dispatch picks the AVX2 or
# scalar kernels here: counts compare code paths and per-token overheads, not AVX-512 kernels.
#
# usage: perf/callgrind.sh [-b ADAKV_BUILD_DIR] [-p 64] [-n 4] [-o OUT_DIR] [-- bench options]
#   A/B: perf/callgrind.sh -b build-a -o /tmp/a; perf/callgrind.sh -b build-b -o /tmp/b
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
pp=64 tg=4
model=$top/models/SmolLM2-135M-Instruct.Q4_1.gguf
build=${ADAKV_BUILD:-$top/build}
out=$top/perf/out
while [ $# -gt 0 ]; do
    case $1 in
    -b) build=$2; shift ;;
    -p) pp=$2; shift ;;
    -n) tg=$2; shift ;;
    -m) model=$2; shift ;;
    -o) out=$2; shift ;;
    --) shift; break ;;
    *) echo "perf/callgrind.sh: unknown option '$1' (see its header)" >&2; exit 1 ;;
    esac
    shift
done
command -v valgrind >/dev/null || { echo "perf/callgrind.sh: valgrind is not installed" >&2; exit 1; }
[ -x "$build/perf/adakv-bench" ] || make -C "$build" perf/adakv-bench >/dev/null
# the real binary, not libtool's wrapper script (which valgrind would trace instead)
bin=$build/perf/.libs/adakv-bench
[ -x "$bin" ] || bin=$build/perf/adakv-bench
export LD_LIBRARY_PATH=$build/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p "$out"
export OMP_NUM_THREADS=1

run() { # name tokens-per-run bench-args...
    local name=$1 ntok=$2
    shift 2
    valgrind --tool=callgrind --toggle-collect=adakv_eval --callgrind-out-file="$out/callgrind-$name.out" \
        "$bin" -m "$model" -r 1 -t 1 "$@" >/dev/null 2>"$out/callgrind-$name.log" ||
        { echo "perf/callgrind.sh: $name run failed, see $out/callgrind-$name.log" >&2; exit 1; }
    local ir
    ir=$(callgrind_annotate "$out/callgrind-$name.out" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
    # warm-up + 1 rep = 2 runs of ntok tokens
    echo "$name: $ir instructions in adakv_eval = $((ir / (2 * ntok))) per token"
    callgrind_annotate "$out/callgrind-$name.out" 2>/dev/null | sed -n '/file:function/,$p' | sed -n '2,9p'
}
run prefill "$pp" -p "$pp" -n 0 "$@"
run decode "$tg" -n "$tg" -d 0 "$@"
echo "(files: $out/callgrind-prefill.out, $out/callgrind-decode.out)"
