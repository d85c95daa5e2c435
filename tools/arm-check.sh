#!/usr/bin/env bash
# Cross-builds adakv for AArch64 with Debian's gcc-aarch64-linux-gnu and runs the SIMD kernel
# tests (each NEON kernel against the plain C reference) under qemu-user. Exit status is the
# tests' status. Usage: tools/arm-check.sh [build-dir]   (default: build-arm in the source tree)
#
# Why it looks the way it does:
# - Criterion runs each test in a child that re-executes /proc/self/exe, so qemu alone is not
#   enough: the kernel must know to hand AArch64 ELF files to qemu (binfmt_misc). The script
#   registers Debian's qemu-aarch64 entry when it is missing (needs root, as in CI).
# - The arm64 sleef/numa/hwloc/gomp/dnnl libraries install side by side with the amd64 ones
#   (Debian multiarch), but libdnnl-dev ships an arch-specific header at a shared path and
#   Criterion's arm64 build depends on a libnanomsg5 whose version differs from amd64's, so
#   installing them would remove the amd64 packages. Those three are unpacked into
#   <build-dir>/deps instead and found through CPPFLAGS/LDFLAGS and an old-style DT_RPATH
#   (unlike DT_RUNPATH it also serves libcriterion's own dependency on libnanomsg).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build-arm}
host=aarch64-linux-gnu
multiarch_pkgs="libc6-dev:arm64 libgomp1:arm64 libsleef-dev:arm64 libnuma-dev:arm64
                libhwloc-dev:arm64 libdnnl2:arm64 libffi8:arm64 libgit2-1.5:arm64"
unpacked_pkgs="libdnnl-dev:arm64 libcriterion3:arm64 libcriterion-dev:arm64 libnanomsg5:arm64"
# The kernel tests: every table entry of simd/ is compared with the reference in one of these;
# and the forward pass on NEON judged against llama.cpp on the tiny random model (test_tiny_llama).
tests="tests/test_ops tests/test_rope tests/test_quant tests/test_matmul tests/test_topk
       tests/test_press_kernels tests/test_attn_rows tests/test_tiny_llama"

say() { echo "arm-check: $*"; }
die() {
    echo "arm-check: $*" >&2
    exit 1
}

command -v $host-gcc >/dev/null || die "$host-gcc not found: install the Debian package 'gcc-aarch64-linux-gnu'"
command -v qemu-aarch64 >/dev/null || die "qemu-aarch64 not found: install the Debian package 'qemu-user'"

# --- arm64 libraries (multiarch) ---
missing=""
for p in $multiarch_pkgs; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    [ "$(id -u)" = 0 ] || die "missing arm64 packages:$missing (run as root, or install them)"
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    say "installing$missing"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

deps=$dir/deps
libdir=$deps/usr/lib/$host
mkdir -p "$dir/deps/debs"
if [ ! -f "$libdir/libcriterion.so" ] || [ ! -f "$deps/usr/include/oneapi/dnnl/dnnl_config.h" ]; then
    say "unpacking$(printf ' %s' $unpacked_pkgs) into $deps"
    # shellcheck disable=SC2086
    (cd "$deps/debs" && apt-get download $unpacked_pkgs 2>&1 | grep -v '^W:' >/dev/null || true)
    for deb in "$deps"/debs/*.deb; do
        [ -f "$deb" ] || die "apt-get download$(printf ' %s' $unpacked_pkgs) failed"
        dpkg-deb -x "$deb" "$deps"
    done
fi
# libdnnl-dev's libdnnl.so points at a relative libdnnl.so.2, which lives in the system dir.
ln -sf "/usr/lib/$host/libdnnl.so.2" "$libdir/libdnnl.so"

# --- qemu through binfmt_misc (see the top of the file) ---
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -f $binfmt/qemu-aarch64 ]; then
    [ "$(id -u)" = 0 ] || die "qemu-aarch64 is not registered with binfmt_misc (run as root once)"
    [ -f $binfmt/register ] || mount -t binfmt_misc binfmt_misc $binfmt ||
        die "cannot mount binfmt_misc (container without the privilege?)"
    conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    [ -f $conf ] || die "$conf not found: install the Debian package 'qemu-user-binfmt'"
    grep -v '^#' $conf >$binfmt/register || die "cannot register $conf with binfmt_misc"
fi
grep -qx enabled $binfmt/qemu-aarch64 || die "binfmt_misc entry qemu-aarch64 is disabled"

# --- configure and build ---
cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null
cd "$dir"
start=$(date +%s)
if [ ! -f Makefile ] || [ config.status -ot "$top/configure" ]; then
    say "configuring for $host in $dir"
    "$top/configure" --quiet --host=$host --disable-server \
        CPPFLAGS="-I$deps/usr/include" \
        LDFLAGS="-L$libdir -Wl,--disable-new-dtags,-rpath,$libdir,-rpath-link,$libdir" \
        CRITERION_CFLAGS="-I$deps/usr/include -DBXF_STATIC_LIB=1" \
        CRITERION_LIBS="-lcriterion" >configure.out ||
        die "configure failed (see $dir/config.log)"
fi
tests=$(echo $tests)
make -j"$(nproc)" >make.out 2>&1 || die "build failed (see $dir/make.out)"
built=$(date +%s)
# Two passes: qemu's default CPU has dotprod (SDOT paths), Cortex-A57 is plain ARMv8.0 NEON, so
# the dispatcher picks the widening-multiply dots there and any SDOT that leaked into a path
# meant for such cores dies with SIGILL. The first pass's logs are kept as tests/*-a57.log.
status=0
# Under qemu the plain C comparisons (the same code as natively) would take minutes: light mode.
export ADAKV_TEST_LIGHT=1
for t in $tests; do rm -f "$t-a57.log"; done
QEMU_CPU=cortex-a57 make -j"$(nproc)" check check_PROGRAMS="$tests" TESTS="$tests" \
    >check-a57.out 2>&1 || status=1
for t in $tests; do [ -f "$t.log" ] && cp "$t.log" "$t-a57.log"; done
a57=$(date +%s)
make -j"$(nproc)" check check_PROGRAMS="$tests" TESTS="$tests" >check.out 2>&1 || status=1
done_=$(date +%s)
for t in $tests; do
    for log in "$t-a57.log" "$t.log"; do
        cpu=$([ "$log" = "$t.log" ] && echo "max (dotprod)" || echo "cortex-a57")
        # || true: without a log (the test did not build) grep fails, and pipefail with set -e
        # would end the script here, silently, with status 2
        line=$(grep -a 'Synthesis' "$log" 2>/dev/null | tail -n 1 || true)
        [ -n "$line" ] || { say "$t on $cpu: no summary (see $dir/$log)"; status=1; continue; }
        say "$t on $cpu: ${line#*Synthesis: }"
    done
done
say "build $((built - start)) s; tests under qemu-aarch64: $((a57 - built)) s on cortex-a57," \
    "$((done_ - a57)) s on max"
[ $status -eq 0 ] || die "kernel tests failed under qemu (logs in $dir/tests/)"
say "all kernel tests passed"
