#!/bin/sh
# The test command: installs what is missing, builds, and runs the whole suite
# twice, against the newest and the oldest LLVM that Debian 12 packages:
#  - build/: optimised, with LLVM 19 (what configure picks when llvm-19-dev is
#    installed, as on Debian 13);
#  - build-asan/: AddressSanitizer and UndefinedBehaviorSanitizer, with LLVM 14
#    (Debian 12's llvm-dev).
# So a change of LLVM's C API between 14 and 19 cannot break the README's first
# command unseen, whichever LLVM a user's machine has.  Then the release tarball
# (make distcheck), and each libFuzzer target for 30 seconds (scripts/fuzz.sh).
set -e
cd "$(dirname "$0")/.."
TEST_PACKAGES="llvm-19-dev" scripts/setup.sh build --with-llvm-config=llvm-config-19
make -C build -j"$(nproc)" check || { cat build/test-suite.log 2>/dev/null; exit 1; }
scripts/setup.sh build-asan --enable-sanitizers --with-llvm-config=llvm-config-14
make -C build-asan -j"$(nproc)" check || { cat build-asan/test-suite.log 2>/dev/null; exit 1; }
# The release tarball (make distcheck): make dist, then configure and build the tarball in a fresh
# folder with its sources read-only, run the tests, install, uninstall, and check that nothing is
# left.  The long tests ran twice above: VAEC_DISTCHECK=quick (the default) runs on the tarball
# the tests of what it holds and installs (QUICK_TESTS in Makefile.am), VAEC_DISTCHECK=full all.
only='TESTS=$(QUICK_TESTS)'
[ "${VAEC_DISTCHECK:-quick}" = full ] && only=
# configure on the tarball takes the LLVM and matrix library of build/ (no second measurement)
blas=$(sed -n 's/^#define VAE_BLAS_CHOICE "\(.*\)"/\1/p' build/config.h)
make -C build -j"$(nproc)" distcheck ${only:+"$only"} \
    DISTCHECK_CONFIGURE_FLAGS="--with-llvm-config=llvm-config-19 --with-blas=$blas" \
    || { cat build/vaec-*/_build/sub/test-suite.log 2>/dev/null; exit 1; }
# the fuzz targets (front end, data readers), 30 s each on a clang + sanitizers build
scripts/fuzz.sh 30
build/vaec --version
build-asan/vaec --version
echo "all tests passed (optimised build with LLVM 19, sanitized build with LLVM 14, make distcheck, fuzz targets clean)"
