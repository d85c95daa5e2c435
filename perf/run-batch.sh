#!/usr/bin/env bash
# perf/run-batch.sh: B sequences decoding together, adakv (perf/bench-batch) beside llama.cpp
# (llama-batched-bench, built by perf/build-peer.sh) on the same model, prompt length, decode
# length and thread count, interleaved round by round. Prints each tool's table per round, then
# one line per B: decode tokens/s of all sequences together (medians over the rounds), each
# tool's speed-up over its own B = 1, and adakv / llama.cpp.
# Usage: perf/run-batch.sh [-m model.gguf] [-npp 128] [-ntg 64] [-npl 1,2,4,8] [-t 2] [-r 3]
# Run it on a quiet machine: llama.cpp's threads spin at barriers (perf/README.md).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
model=$top/models/SmolLM2-135M-Instruct.Q4_1.gguf npp=128 ntg=64 npl=1,2,4,8 threads=2 rounds=3
while [ $# -gt 0 ]; do
    case $1 in
    -m) model=$2 ;;
    -npp) npp=$2 ;;
    -ntg) ntg=$2 ;;
    -npl) npl=$2 ;;
    -t) threads=$2 ;;
    -r) rounds=$2 ;;
    *) echo "run-batch: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2
done
ours=${BUILD:-$top/build}/perf/bench-batch
peer=$top/perf/peer/bin/llama-batched-bench
[ -x "$ours" ] || { echo "run-batch: $ours not built (tools/build.sh)" >&2; exit 1; }
[ -x "$peer" ] || { echo "run-batch: $peer not built (perf/build-peer.sh)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
nmax=$(tr ',' '\n' <<<"$npl" | sort -n | tail -1)
# llama.cpp needs room for every sequence's prompt and answer in one KV cache
ctx=$(((npp + ntg) * nmax + 16))
for r in $(seq 1 "$rounds"); do
    "$ours" -m "$model" -npp "$npp" -ntg "$ntg" -npl "$npl" -t "$threads" -r 1 | tee "$out/ours.$r"
    for fa in off on; do # llama.cpp's best of flash attention off and on, as for llama-bench
        "$peer" -m "$model" -c "$ctx" -b 2048 -ub 512 -npp "$npp" -ntg "$ntg" -npl "$npl" \
            -t "$threads" -fa "$fa" 2>/dev/null | grep '^|' | tee "$out/peer-$fa.$r"
    done
done
# S_TG is the 9th |-separated field in both tables (8th column)
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
stg() { awk -F'|' -v b="$2" '$4 + 0 == b {gsub(/ /, "", $9); print $9}' "$1"; }
echo
echo "model $(basename "$model"), $threads threads, prompts $npp, decode $ntg, $rounds rounds"
printf '%4s %14s %10s %16s %10s %10s\n' B "adakv S_TG" "vs B=1" "llama.cpp S_TG" "vs B=1" ratio
base_o="" base_p=""
for b in ${npl//,/ }; do
    o=$(for r in $(seq 1 "$rounds"); do stg "$out/ours.$r" "$b"; done | median)
    p=$(for r in $(seq 1 "$rounds"); do
        for fa in off on; do stg "$out/peer-$fa.$r" "$b"; done | sort -g | tail -1
    done | median)
    [ -n "$base_o" ] || base_o=$o base_p=$p
    awk -v b="$b" -v o="$o" -v p="$p" -v bo="$base_o" -v bp="$base_p" \
        'BEGIN {printf "%4d %14.1f %9.2fx %16.1f %9.2fx %9.2fx\n", b, o, o / bo, p, p / bp, o / p}'
done
