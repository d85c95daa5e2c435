#!/usr/bin/env bash
# Installs the Debian 12 packages adakv needs to build, test and cross-test (idempotent).
# Python packages for the golden/peer scripts are installed by those scripts, not here.
set -euo pipefail
pkgs=(build-essential autoconf automake libtool pkg-config autoconf-archive
      libsleef-dev libdnnl-dev libcriterion-dev libnuma-dev libhwloc-dev
      python3 python3-pip unzip ca-certificates clang-format
      libmicrohttpd-dev libjansson-dev curl # adakv-server and its test (tests/server.sh)
      gnuplot-nox # the figures of docs/eval.md (tools/eval-plot.sh)
      clang-14 libclang-rt-14-dev libomp-14-dev # the libFuzzer targets (tools/fuzz.sh)
      gcc-aarch64-linux-gnu qemu-user qemu-user-binfmt) # the NEON kernels' cross-build and tests (arm-check.sh)
# A package counts only if installed for this machine's architecture (or arch "all"): a
# cross-build's foreign :arm64 copy of a -dev package does not provide the native library.
arch=$(dpkg --print-architecture)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status} ${Architecture}\n' "$p" 2>/dev/null |
        grep -Eq "^install ok installed ($arch|all)$" || missing+=("$p:$arch")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#pkgs[@]} packages present"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
