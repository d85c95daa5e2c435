#!/usr/bin/env bash
# The installed libadakv.so exports exactly the functions adakv.h declares with ADAKV_API: none
# missing (a program could not link) and nothing more (the internal stages' symbols are hidden,
# so no program outside the tree can come to depend on them).
set -euo pipefail
src=${ADAKV_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
lib=${ADAKV_BUILDDIR:-.}/.libs/libadakv.so
[ -f "$lib" ] || { echo "api-symbols: $lib not built"; exit 1; }
# declarations may span lines (clang-format): join them, then the name before each '(' that
# follows ADAKV_API
declared=$(tr '\n' ' ' <"$src/src/adakv.h" | grep -o 'ADAKV_API[^(;]*(' |
    sed -E 's/.*[^a-z0-9_](adakv_[a-z0-9_]*)\($/\1/' | grep '^adakv_' | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TWDBR]$/ { print $3 }' |
    grep -v '^_' | grep -v '^\.gomp_critical_user_' | sort -u)
# (.gomp_critical_user_NAME is the lock GCC emits for a named `omp critical`: a common symbol
# that visibility does not hide, and no function)
[ -n "$declared" ] || { echo "api-symbols: no ADAKV_API declarations in adakv.h"; exit 1; }
status=0
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
extra=$(comm -13 <(echo "$declared") <(echo "$exported"))
[ -z "$missing" ] || { echo "api-symbols: declared, not exported:" $missing; status=1; }
[ -z "$extra" ] || { echo "api-symbols: exported, not in adakv.h:" $extra; status=1; }
echo "api-symbols: $(echo "$declared" | wc -l) functions declared, $(echo "$exported" | wc -l) exported"
exit $status
