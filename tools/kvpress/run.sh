#!/usr/bin/env bash
# Regenerates the kvpress golden keep-sets in tests/data/kvpress/ (docs/kvpress.md):
#   1. the throw-away venv (tools/kvpress/venv.sh: CPU torch, transformers, kvpress, gguf);
#   2. tokens.txt: adakv's own token ids of prompt.txt (tools/kvpress/tokenize.c, built here
#      against the library in the build tree), so both engines see the same sequence;
#   3. golden.py: kvpress's kept positions per layer and KV head, one file per press and ratio;
#      golden_agnostic.py: the same for ExpectedAttentionPress and KVzipPress (its scores).
# Then `make -C build check TESTS=tests/test_kvpress_keep` compares adakv against them.
#
# usage: tools/kvpress/run.sh [build-dir]     (default build/, made by tools/build.sh)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
model=${ADAKV_MODEL:-$top/models/SmolLM2-135M-Instruct.Q4_1.gguf}
data=$top/tests/data/kvpress
[ -f "$build/.libs/libadakv.so" ] || { echo "run.sh: no $build/.libs/libadakv.so (tools/build.sh first)" >&2; exit 1; }
py=$("$top/tools/kvpress/venv.sh" | tail -1)
tok=$build/kvpress-tokenize
cc -std=c11 -O2 -I"$top/src" \
    "$top/tools/kvpress/tokenize.c" -L"$build/.libs" -ladakv -Wl,-rpath,"$build/.libs" -o "$tok"
"$tok" "$model" "$data/prompt.txt" > "$data/tokens.txt"
echo "run.sh: $(wc -w < "$data/tokens.txt") tokens in $data/tokens.txt" >&2
TQDM_DISABLE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$py" "$top/tools/kvpress/golden.py" "$model" "$data/tokens.txt" "$data"
TQDM_DISABLE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$py" "$top/tools/kvpress/golden_agnostic.py" "$model" "$data/tokens.txt" "$data"
