#!/usr/bin/env bash
# perf/stat.sh: `perf stat` around a prefill-only and a decode-only adakv-bench run.
#
# Hardware counters (cycles, instructions, cache and LLC misses) when the machine has a PMU;
# virtual machines without one (this Firecracker guest prints `<not supported>` for cycles) get
# the software events instead (task-clock, context switches, migrations, page faults). Both
# cases add the engine's own figures: bytes streamed per decoded token (weights + the K/V rows
# it reads), and that traffic as a share of the same-run STREAM read bandwidth.
#
# usage: perf/stat.sh [-t THREADS] [-m MODEL] [-b ADAKV_BUILD_DIR] [-d DEPTH] [-- press options]
#   e.g. perf/stat.sh -d 8192 -- --press ada-snapkv --kv-ratio 0.8
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
threads=2 depth=0
model=$top/models/SmolLM2-135M-Instruct.Q4_1.gguf
build=${ADAKV_BUILD:-$top/build}
while [ $# -gt 0 ]; do
    case $1 in
    -t) threads=$2; shift ;;
    -m) model=$2; shift ;;
    -b) build=$2; shift ;;
    -d) depth=$2; shift ;;
    --) shift; break ;;
    *) echo "perf/stat.sh: unknown option '$1' (see the header of perf/stat.sh)" >&2; exit 1 ;;
    esac
    shift
done
command -v perf >/dev/null || { echo "perf/stat.sh: 'perf' is not installed (linux-perf)" >&2; exit 1; }
bench=$build/perf/adakv-bench stream=$build/perf/stream
for p in "$bench" "$stream"; do
    [ -x "$p" ] || make -C "$build" "${p#"$build"/}" >/dev/null
done
export OMP_NUM_THREADS=$threads

if perf stat -x, -e cycles true 2>&1 | grep -q "not supported\|not counted"; then
    events=task-clock,context-switches,cpu-migrations,page-faults
    echo "no PMU here (cycles: <not supported>): software events only"
else
    events=task-clock,cycles,instructions,cache-misses,LLC-load-misses,context-switches,page-faults
    echo "PMU present: hardware counters"
fi
w_bytes=$(python3 -c "import gguf,sys; print(sum(int(t.n_bytes) for t in gguf.GGUFReader(sys.argv[1]).tensors))" "$model")
bw=$("$stream" 256 6 2>/dev/null | sed -n 's/.*read_GBps=\([0-9.]*\).*/\1/p')
echo "same-run STREAM read: $bw GB/s; weights: $w_bytes bytes"

echo
echo "== prefill only: pp512, 3 reps (plus a warm-up) =="
perf stat -e "$events" -- "$bench" -m "$model" -p 512 -n 0 -r 3 -t "$threads" "$@"

echo
echo "== decode only: tg128 after $depth tokens, 3 reps (plus a warm-up) =="
out=$(perf stat -e "$events" -o /dev/stderr -- "$bench" -m "$model" -n 128 -d "$depth" -r 3 \
    -t "$threads" "$@")
echo "$out"
# engine figures: bytes one decode step streams, and that rate against STREAM
python3 - "$out" "$w_bytes" "$bw" <<'EOF'
import csv, io, sys
rows = list(csv.DictReader(io.StringIO(sys.argv[1])))
w, bw = float(sys.argv[2]), float(sys.argv[3])
for r in rows:
    kv = float(r["kv_read_bytes"] or 0)
    tps = float(r["median_tps"])
    per_tok = w + kv
    print(f"{r['test']} ({r['press']}): {tps:.1f} t/s, {per_tok / 1e6:.1f} MB streamed per token "
          f"(weights {w / 1e6:.1f} + K/V {kv / 1e6:.1f}) = {per_tok * tps / 1e9:.1f} GB/s, "
          f"{100 * per_tok * tps / 1e9 / bw:.0f}% of STREAM read {bw:.1f} GB/s")
EOF
echo "(perf stat covers the whole process: model load, warm-up and the untimed depth prefill too)"
