#!/usr/bin/env bash
# Checks that every tracked C source and header follows the committed .clang-format (Debian 12's
# clang-format 14, which tools/install-deps.sh installs; other versions may format differently).
# Prints the files that drift and exits 1 if any does; `clang-format -i FILE` fixes one.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if ! command -v clang-format >/dev/null; then
    echo "format-check: clang-format not found (tools/install-deps.sh)" >&2
    exit 1
fi
bad=0
while IFS= read -r f; do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "format-check: $f differs from .clang-format (clang-format -i $f)" >&2
        bad=1
    fi
done < <(git ls-files '*.c' '*.h' 2>/dev/null || find src simd models tests tools perf -name '*.[ch]')
[ $bad -eq 0 ] && echo "format-check: all C files follow .clang-format"
exit $bad
