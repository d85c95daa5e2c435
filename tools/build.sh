#!/usr/bin/env bash
# Configures and builds adakv out of tree in build/ (or $1 with extra configure flags after it).
# Used by the README commands and CI; a plain ./configure && make in the source tree works too.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build}
shift || true
cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null
mkdir -p "$dir"
cd "$dir"
[ -f Makefile ] && [ config.status -nt "$top/configure" ] || "$top/configure" --quiet "$@"
make -j"$(nproc)" >/dev/null
