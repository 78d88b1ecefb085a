#!/bin/sh
# Installs what is missing (Debian packages), then configures and builds vaec
# in build/ (or in $1).  Safe to run again: it installs and rebuilds only what
# changed.
set -e
cd "$(dirname "$0")/.."
builddir=${1:-build}
if [ $# -gt 0 ]; then shift; fi # the rest goes to configure

# What each package is for: see README.md, "Dependencies".
PACKAGES="gcc clang libclang-rt-14-dev make autoconf automake libtool pkg-config flex bison llvm-dev libcunit1-dev \
libopenblas-dev libdnnl-dev libblis-dev zlib1g-dev libisal-dev libpng-dev libcairo2-dev libopenmpi-dev openmpi-bin \
dataset-fashion-mnist"
# scripts/check.sh adds what only the tests need (a second LLVM) through TEST_PACKAGES.
PACKAGES="$PACKAGES ${TEST_PACKAGES:-}"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "installing:$missing"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] || ./autogen.sh
mkdir -p "$builddir"
if [ ! -f "$builddir/config.status" ]; then
    # each check's line goes to configure.out; its summary (LLVM, the matrix library chosen
    # and why, the gzip reader) is shown, and warnings (stderr) as they come
    (cd "$builddir" && ../configure "$@" >configure.out) || { cat "$builddir/configure.out"; exit 1; }
    sed -n '/^  vaec /,$p' "$builddir/configure.out"
fi
make -C "$builddir" -j"$(nproc)" -s
"$builddir/vaec" --version
