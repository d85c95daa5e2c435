#!/bin/sh
# Builds the peer: llama.cpp's llama-bench, llama-perplexity, llama-completion and more from the source
# that the PyPI package llama-cpp-python ships in its sdist (vendor/llama.cpp), so that adakv is
# compared with exactly the llama.cpp the golden data came from. Nothing of it is committed: it
# all lives under the git-ignored perf/peer/.
#
# Usage: perf/build-peer.sh            (from the repository root; about 6 minutes on 2 cores)
# Env:   LLAMA_CPP_PYTHON_VERSION  sdist version (default: the installed llama_cpp's, else 0.3.36)
#        PEER_DIR                  where to download, unpack and build (default perf/peer)
#        JOBS                      parallel build jobs (default 2)
#        PEER_CMAKE_ARGS           more cmake options, e.g. a build without AMX (README):
#                                  -DGGML_NATIVE=OFF -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON
#                                  -DGGML_AVX512_BF16=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
# llama-quantize makes the benchmark model zoo (perf/zoo.sh); llama-batched-bench runs beside
# perf/bench-batch, llama-server beside adakv-server (perf/run-server.sh).
# Prints the llama.cpp commit and writes PEER_DIR/bin -> the binaries, PEER_DIR/COMMIT.
# Needs: pip, cmake, a C++17 compiler (tools/install-deps.sh). Idempotent: reruns only rebuild.
set -eu

peer=${PEER_DIR:-perf/peer}
jobs=${JOBS:-2}
installed=$(python3 -c 'import llama_cpp; print(llama_cpp.__version__)' 2>/dev/null || true)
ver=${LLAMA_CPP_PYTHON_VERSION:-${installed:-0.3.36}} # 0.3.36: the goldens' llama.cpp

die() {
    echo "build-peer: $*" >&2
    exit 1
}

command -v cmake >/dev/null || die "cmake not found (apt-get install cmake)"
mkdir -p "$peer"

if [ -n "$ver" ]; then spec="llama-cpp-python==$ver"; else spec="llama-cpp-python"; fi
if ! ls "$peer"/llama_cpp_python-"${ver:-}"*.tar.gz >/dev/null 2>&1; then
    pip download --quiet --no-deps --no-binary :all: -d "$peer" "$spec"
fi
sdist=$(ls -t "$peer"/llama_cpp_python-"${ver:-}"*.tar.gz | head -n 1)
src=$peer/$(basename "$sdist" .tar.gz)
[ -d "$src/vendor/llama.cpp" ] || tar -xzf "$sdist" -C "$peer"
[ -f "$src/vendor/llama.cpp/CMakeLists.txt" ] || die "$sdist has no vendor/llama.cpp"

# The sdist has no git metadata; its CHANGELOG names the llama.cpp commit it vendors.
ver=${src##*llama_cpp_python-}
commit=$(sed -n "/^## \[$ver\]/,/^## \[/p" "$src/CHANGELOG.md" |
    grep -o 'llama\.cpp@[0-9a-f]*' | head -n 1 | cut -d@ -f2)
[ -n "$commit" ] || commit=unknown

# No network at build time: no curl/openssl, no web UI download. Unknown options in older
# releases only draw a cmake warning. The build number and commit are passed in because the
# unpacked sdist sits inside adakv's git tree, whose HEAD llama.cpp would otherwise report.
cmake -S "$src/vendor/llama.cpp" -B "$peer/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_NUMBER=0 -DLLAMA_BUILD_COMMIT="$commit" \
    ${PEER_CMAKE_ARGS:-} >"$peer/cmake.log" 2>&1 || die "cmake configure failed, see $peer/cmake.log"
cmake --build "$peer/build" --config Release -j "$jobs" \
    --target llama-bench llama-perplexity llama-completion llama-quantize llama-batched-bench \
    llama-server \
    >"$peer/build.log" 2>&1 ||
    die "build failed, see $peer/build.log"

ln -sfn build/bin "$peer/bin"
echo "$commit" >"$peer/COMMIT"
echo "llama-cpp-python $ver, llama.cpp commit $commit"
for t in llama-bench llama-perplexity llama-completion llama-quantize llama-batched-bench llama-server; do
    [ -x "$peer/bin/$t" ] || die "$t was not built (see $peer/build.log)"
    echo "$peer/bin/$t"
done
