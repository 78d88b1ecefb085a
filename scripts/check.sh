#!/bin/sh
# The test command: installs what is missing, builds, and runs the whole suite
# twice: an optimised build (build/), then one under AddressSanitizer and
# UndefinedBehaviorSanitizer (build-asan/).
set -e
cd "$(dirname "$0")/.."
scripts/setup.sh build
make -C build -j"$(nproc)" check || { cat build/test-suite.log 2>/dev/null; exit 1; }
scripts/setup.sh build-asan --enable-sanitizers
make -C build-asan -j"$(nproc)" check || { cat build-asan/test-suite.log 2>/dev/null; exit 1; }
echo "all tests passed (optimised and sanitized builds)"
