#!/bin/sh
# Builds llama.cpp's shared libraries a second time, from the same source as the golden data
# (the llama-cpp-python sdist that perf/build-peer.sh unpacks under perf/peer/), but for x86-64
# with AVX2 and without AVX-512, so that tools/golden/check-logits.py --lib can measure how far
# the same llama.cpp commit, with the same settings, moves from its own golden logits when only
# its SIMD code paths (and so its summation orders) change.
#
# Usage: tools/golden/build-llama-avx2.sh [out-dir]   (default perf/peer/build-avx2; about 8
#        minutes on 2 cores). Run perf/build-peer.sh first (it downloads and unpacks the sdist).
# Then:  python3 tools/golden/check-logits.py --lib perf/peer/build-avx2/bin
set -eu

out=${1:-perf/peer/build-avx2}
src=$(ls -d perf/peer/llama_cpp_python-*/vendor/llama.cpp 2>/dev/null | head -n 1)
[ -n "$src" ] || {
    echo "build-llama-avx2: no perf/peer/llama_cpp_python-*/vendor/llama.cpp (run perf/build-peer.sh)" >&2
    exit 1
}
cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
    -DGGML_AVX512=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF >"$out.cmake.log" 2>&1 ||
    { echo "build-llama-avx2: cmake configure failed, see $out.cmake.log" >&2; exit 1; }
cmake --build "$out" --target llama -j "${JOBS:-2}" >"$out.build.log" 2>&1 ||
    { echo "build-llama-avx2: build failed, see $out.build.log" >&2; exit 1; }
echo "$out/bin"
