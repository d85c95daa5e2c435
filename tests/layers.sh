#!/usr/bin/env bash
# The layers of the tree depend one way (issue 15 part 6): simd/ (the kernels) includes only its
# own headers; models/ (one file per architecture) includes only the binding header
# src/model/arch.h; the library in src/ includes nothing from models/ (it reads their table,
# arch_registry) nor from the programs (src/cli/, server/, tools/). A quoted include is resolved
# by name, as the compiler does through AM_CPPFLAGS; config.h is the build's own.
set -euo pipefail
top=${ADAKV_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top"
status=0
# includes FILES... : "file name" per quoted include
includes() { grep -Ho '^#include "[^"]*"' "$@" | sed -E 's/:#include "(.*)"$/ \1/'; }
simd_h=$(find simd -name '*.h' -printf '%f\n' | sort -u)
while read -r file inc; do
    grep -qx "$inc" <<<"$simd_h" || [ "$inc" = config.h ] ||
        { echo "layers: $file includes \"$inc\", not a simd/ header"; status=1; }
done < <(includes simd/*.c simd/*.h)

while read -r file inc; do
    [ "$inc" = arch.h ] ||
        { echo "layers: $file includes \"$inc\": models/ use src/model/arch.h only"; status=1; }
done < <(includes models/*.c)
[ -z "$(find models -name '*.h')" ] || { echo "layers: models/ holds a header"; status=1; }

# the library: src/ without src/cli/ (adakv-run's own files), which no library file may include
lib_h=$(find src simd -path src/cli -prune -o -name '*.h' -printf '%f\n' | sort -u)
while read -r file inc; do
    grep -qx "$inc" <<<"$lib_h" || [ "$inc" = config.h ] ||
        { echo "layers: $file includes \"$inc\", not a library header (src/, simd/)"; status=1; }
done < <(includes $(find src -path src/cli -prune -o -name '*.[ch]' -print))

[ $status = 0 ] && echo "layers: simd/ -> simd/, models/ -> arch.h, library -> src/ + simd/"
exit $status
