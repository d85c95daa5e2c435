#!/usr/bin/env bash
# perf/zoo.sh: the benchmark model zoo. Random-weight GGUFs with the exact tensor names, shapes
# and metadata of real models (perf/zoo-gguf.py), quantized by the peer's llama-quantize, in the
# git-ignored perf/zoo/. Speed depends on tensor types and shapes only, so these stand in for the
# real (undownloadable here) models in llama-bench / adakv-bench; their text output is noise.
#
# usage: perf/zoo.sh [--shapes "llama-3.2-1b ..."] [--types "Q4_K_M Q8_0 ..."] [-t THREADS]
#   shapes  llama-3.2-1b llama-3.2-3b llama-3.1-8b qwen2.5-7b (default: all four, in this order)
#   types   llama-quantize type names, for every shape given; F16 keeps the F16 file itself.
#           Default per shape: llama-3.2-1b Q4_K_M Q5_K_M Q6_K Q8_0 Q4_0; llama-3.2-3b and
#           llama-3.1-8b Q4_K_M Q8_0; qwen2.5-7b Q4_K_M
#   -t      llama-quantize threads (default 2)
# Files: perf/zoo/SHAPE.TYPE.gguf. Outputs that exist are skipped (a shape whose outputs all
# exist is not generated at all); each is written to a .part file and renamed when complete. Per
# shape: write SHAPE.F16.gguf (streamed, ~0.2 GB RSS), quantize it into each missing type, delete
# it, so at most one F16 file (16 GB for llama-3.1-8b) exists at a time. Checks free disk space
# before each shape. Needs perf/peer/bin/llama-quantize (perf/build-peer.sh) and PyPI access the
# first time (gguf + numpy into the venv perf/zoo/.venv). Logs of llama-quantize:
# perf/zoo/SHAPE.TYPE.log. Two zoo.sh never run at once (lock perf/zoo/.lock).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
zoo=$top/perf/zoo
quantize=$top/perf/peer/bin/llama-quantize
shapes="llama-3.2-1b llama-3.2-3b llama-3.1-8b qwen2.5-7b"
types='' threads=2
die() {
    echo "zoo.sh: $*" >&2
    exit 1
}
while [ $# -gt 0 ]; do
    case $1 in
    --shapes) shapes=${2-} ;;
    --types) types=${2-} ;;
    -t) threads=${2-} ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see perf/zoo.sh --help)" ;;
    esac
    [ $# -ge 2 ] || die "option needs a value"
    shift 2
done

[ -x "$quantize" ] || die "$quantize not found: build the peer first (perf/build-peer.sh)"
mkdir -p "$zoo"
exec 9>"$zoo/.lock"
flock -n 9 || die "another perf/zoo.sh is running (lock $zoo/.lock)"

py=$zoo/.venv/bin/python
if ! "$py" -c 'import gguf, numpy' 2>/dev/null; then
    echo "zoo.sh: setting up $zoo/.venv (gguf, numpy from PyPI)" >&2
    python3 -m venv "$zoo/.venv" || die "python3 -m venv failed (apt-get install python3-venv)"
    "$zoo/.venv/bin/pip" install --quiet gguf numpy || die "pip install gguf numpy failed"
fi
f16_sizes=$("$py" "$top/perf/zoo-gguf.py" --list)

default_types() {
    case $1 in
    llama-3.2-1b) echo "Q4_K_M Q5_K_M Q6_K Q8_0 Q4_0" ;;
    llama-3.2-3b | llama-3.1-8b) echo "Q4_K_M Q8_0" ;;
    qwen2.5-7b) echo "Q4_K_M" ;;
    *) die "unknown shape '$1' (llama-3.2-1b llama-3.2-3b llama-3.1-8b qwen2.5-7b)" ;;
    esac
}
# approximate bits per weight of a llama-quantize type, for the disk check only
bpw() {
    case $1 in
    Q4_0) echo 45 ;; Q4_K_S) echo 46 ;; Q4_K_M) echo 50 ;; Q5_K_M) echo 58 ;;
    Q6_K) echo 66 ;; F16 | BF16) echo 160 ;; *) echo 85 ;;
    esac
}
size_of() { numfmt --to=si --suffix=B --format=%.2f "$(stat -c %s "$1")"; }

t_all=$(date +%s)
made=()
for shape in $shapes; do
    want=${types:-$(default_types "$shape")}
    f16_bytes=$(awk -v s="$shape" '$1 == s { print $3 }' <<<"$f16_sizes")
    [ -n "$f16_bytes" ] || default_types "$shape" >/dev/null # dies on an unknown shape
    f16=$zoo/$shape.F16.gguf
    missing=() keep_f16=0 need=$((1 << 30))
    for ty in $want; do
        [ "$ty" = F16 ] && keep_f16=1
        out=$zoo/$shape.$ty.gguf
        made+=("$out")
        if [ -f "$out" ]; then
            echo "zoo.sh: $out exists ($(size_of "$out")), skipped" >&2
        elif [ "$ty" != F16 ]; then
            missing+=("$ty")
            need=$((need + f16_bytes * $(bpw "$ty") / 160))
        fi
    done
    if [ ${#missing[@]} -eq 0 ] && { [ $keep_f16 = 0 ] || [ -f "$f16" ]; }; then
        continue
    fi
    [ -f "$f16" ] || need=$((need + f16_bytes))
    avail=$(df -B1 --output=avail "$zoo" | tail -n 1)
    [ "$avail" -ge "$need" ] || die "$shape needs ~$(numfmt --to=si "$need")B free in $zoo," \
        "$(numfmt --to=si "$avail")B left"

    if [ ! -f "$f16" ]; then
        t0=$(date +%s)
        rm -f "$f16.part"
        "$py" "$top/perf/zoo-gguf.py" --shape "$shape" -o "$f16.part"
        mv "$f16.part" "$f16"
        echo "zoo.sh: wrote $f16 ($(size_of "$f16")) in $(($(date +%s) - t0)) s" >&2
    fi
    for ty in "${missing[@]}"; do
        out=$zoo/$shape.$ty.gguf log=$zoo/$shape.$ty.log
        t0=$(date +%s)
        rm -f "$out.part"
        "$quantize" "$f16" "$out.part" "$ty" "$threads" >"$log" 2>&1 ||
            die "llama-quantize $shape $ty failed, see $log"
        mv "$out.part" "$out"
        echo "zoo.sh: wrote $out ($(size_of "$out")) in $(($(date +%s) - t0)) s" >&2
    done
    if [ $keep_f16 = 0 ]; then
        rm -f "$f16"
        echo "zoo.sh: deleted $f16" >&2
    fi
done

echo "zoo.sh: done in $(($(date +%s) - t_all)) s" >&2
for f in "${made[@]}"; do
    [ -f "$f" ] && printf '%10s  %s\n' "$(size_of "$f")" "${f#"$top"/}"
done
