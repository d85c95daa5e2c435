#!/usr/bin/env bash
# Throw-away Python environment for the kvpress reference check (docs/kvpress.md).
# Not a dependency of the build: make check only reads the golden files that
# tools/kvpress/golden.py wrote. The venv lives in tools/kvpress/.venv (git-ignored).
#
# usage: tools/kvpress/venv.sh            # create or complete the venv, print its python
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${KVPRESS_VENV:-$here/.venv}
# Versions of the check recorded in docs/kvpress.md; kvpress's scoring is read from its source,
# so a newer kvpress must be re-read before its keep-sets are trusted.
KVPRESS_VERSION=${KVPRESS_VERSION:-0.5.5}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || { echo "venv.sh: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
fi
py=$venv/bin/python
if ! "$py" -c 'import torch' 2>/dev/null; then
    # The CPU wheel index avoids several GB of CUDA wheels; when it is unreachable, plain PyPI
    # torch works too (CUDA libraries installed but unused).
    "$py" -m pip install --quiet --retries 0 --timeout 20 torch --index-url https://download.pytorch.org/whl/cpu ||
        "$py" -m pip install --quiet torch
fi
if ! "$py" -c 'import kvpress, gguf' 2>/dev/null; then
    "$py" -m pip install --quiet "kvpress==$KVPRESS_VERSION" gguf
fi
echo "$py"
