#!/usr/bin/env bash
# The README's main command: from a fresh Debian 12 machine, install the packages, fetch the
# default model, build, and answer the sample prompt with the default model in chat mode.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/install-deps.sh"
"$top/tools/fetch-model.sh"
"$top/tools/build.sh" "$top/build"
exec "$top/build/adakv-run" --chat -n 64 "$top/models/SmolLM2-135M-Instruct.Q4_1.gguf" \
    "$top/tests/data/prompt-capital.txt" "$@"
