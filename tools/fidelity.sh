#!/usr/bin/env bash
# The KV-eviction fidelity study of issue 3 ("Fidelity on real text"), end to end:
#   1. every press x budget, question-agnostic, int8 cache, against the full int8 cache;
#   2. the full int8 cache (and f16) against the full f32 cache, with the default and with f32
#      prompt GEMMs;
#   3. Ada-KV presses against their base press, paired over positions (tools/fidelity-paired.py).
# Raw CSVs go to perf/out/ (git-ignored); the tables are printed and saved beside them.
# It takes about 4 minutes on 2 quiet cores (measured at commit c133fb6): one 6,000-token
# prefill shared by all pairs (the tool compresses copies of that cache), plus two prefills per
# storage comparison.
# docs/fidelity.md records a run of this script on the default model.
#
# Usage: tools/fidelity.sh [build-dir] [model.gguf] [text.txt]
# Env: PREFIX (default 6000), CONT (default 500), THREADS (default: all cores), PRESSES, BUDGETS,
# OUT (default perf/out).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
model=${2:-$top/models/SmolLM2-135M-Instruct.Q4_1.gguf}
text=${3:-$top/tests/data/text/fidelity-en.txt}
prefix=${PREFIX:-6000}
cont=${CONT:-500}
threads=${THREADS:-0}
presses=${PRESSES:-full,snapkv,ada-snapkv,streaming,pyramid,ada-pyramid,critical,ada-critical}
budgets=${BUDGETS:-64,128,256,512,1024}
out=${OUT:-$top/perf/out}
tool=$build/adakv-fidelity
[ -x "$tool" ] || { echo "fidelity.sh: $tool not built (tools/build.sh $build)" >&2; exit 1; }
mkdir -p "$out"
# Threads that spin while waiting collapse when the cores are shared; the study runs for long.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
common=(-m "$model" -f "$text" --prefix "$prefix" --continuation "$cont" -t "$threads")

{
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)
    echo "# $(date -u +%FT%TZ) $(uname -m) $(nproc) cores;$cpu"
    echo "# git $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)"
} >"$out/fidelity-machine.txt"

nice "$tool" "${common[@]}" --kv-type int8 --press "$presses" --kv-budget "$budgets" \
    --csv "$out/fidelity-presses.csv" --kl-out "$out/fidelity-positions.csv" |
    tee "$out/fidelity-presses.txt"
# Ada-KV against its uniform base press, position by position (mean difference and its error).
python3 "$top/tools/fidelity-paired.py" "$out/fidelity-positions.csv" |
    tee "$out/fidelity-paired.txt"
# Storage against the f32 cache, twice: with the default prompt GEMMs (bf16 here: activations
# rounded to 8 bits, so any perturbation is amplified) and with f32 ones, which keep every
# activation exact and so isolate the KV storage error.
for gemm in auto f32; do
    for kv in int8 f16; do
        nice "$tool" "${common[@]}" --kv-type $kv --ref-kv-type f32 --press full \
            --prefill-gemm $gemm --csv "$out/fidelity-$kv-vs-f32-$gemm.csv" |
            tee "$out/fidelity-$kv-vs-f32-$gemm.txt"
    done
done
