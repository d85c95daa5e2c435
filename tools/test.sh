#!/usr/bin/env bash
# The README's test command: from a fresh Debian 12 machine, install the packages, fetch the
# default model, configure, build and run `make check` twice: once optimised and once with
# AddressSanitizer + UndefinedBehaviorSanitizer, then the NEON kernels under qemu and a short run
# of every fuzz target. Exit status is the tests' status.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/install-deps.sh"
"$top/tools/fetch-model.sh"
"$top/tools/fetch-gemma.sh" # Gemma 3 270M: tests/test_gemma3 judges it against llama.cpp
status=0
"$top/tools/format-check.sh" || status=1 # one committed style: .clang-format
"$top/tools/build.sh" "$top/build"
make -C "$top/build" -j"$(nproc)" check || status=1
# The installed library as a program outside the tree sees it: examples/generate.c built with
# pkg-config against a staged install must answer as adakv-run does (mk/api.am).
stage=$(mktemp -d)
{ make -C "$top/build" install DESTDIR="$stage" >/dev/null &&
    make -C "$top/build" installcheck DESTDIR="$stage"; } || status=1
rm -rf "$stage"
"$top/tools/build.sh" "$top/build-asan" --enable-sanitizers
# Under the sanitizers the long model comparisons (2,048-position logits, 25-chunk perplexity)
# look for memory errors, not numbers: ADAKV_TEST_LIGHT runs them on one KV type and fewer chunks.
# CRITERION_JOBS=1: with 2 jobs Criterion's own parent runner now and then leaks 48 bytes (a
# calloc under criterion_run_all_tests, no adakv frame), which LeakSanitizer reports as a failure.
ADAKV_TEST_LIGHT=1 CRITERION_JOBS=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    make -C "$top/build-asan" -j"$(nproc)" check || status=1
"$top/tools/arm-check.sh" "$top/build-arm" || status=1 # NEON kernels under qemu-aarch64
# Every libFuzzer target for 40 s from its seeds and the corpus kept in build-fuzz/ (6 targets:
# 4 minutes plus the clang build); a crash fails the run. The long campaign is not CI's job
# (docs/reliability.md).
"$top/tools/fuzz.sh" all 40 || status=1
exit $status
