#!/bin/sh
# scripts/fuzz.sh [SECONDS]: builds every libFuzzer target fuzz/fuzz_NAME.c with
# clang -fsanitize=fuzzer,address,undefined (in build-fuzz/, a configure of its
# own) and runs each for SECONDS (default 60) over a copy of fuzz/corpus/NAME/,
# with the dictionary fuzz/NAME.dict when there is one.  Exits non-zero on any
# crash, leak, timeout, out-of-memory or sanitizer report, and prints the path
# of the input that caused it (reproduce: build-fuzz/fuzz_NAME PATH).
# Needs clang and libclang-rt-14-dev (clang's libFuzzer runtime); scripts/setup.sh installs them.
set -e
cd "$(dirname "$0")/.."
seconds=${1:-60}
case $seconds in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, not '$seconds'" >&2; exit 2 ;; esac
builddir=build-fuzz
jobs=${FUZZ_MAKE_JOBS:-2}

# ---- the libraries, instrumented for coverage and built with both sanitizers
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] || ./autogen.sh
mkdir -p "$builddir"
if [ ! -f "$builddir/config.status" ]; then
    (cd "$builddir" && ../configure -q CC=clang CFLAGS="-g -O1 -fsanitize=fuzzer-no-link" \
        --enable-sanitizers --with-blas=openblas --disable-static-llvm)
fi
make -C "$builddir" -s -j"$jobs" parser/parser.h lexer/lexer.h codegen/runtime_text.c codegen/trainer_text.c
make -C "$builddir" -s -j"$jobs" libvaefront.a libvaec.a libvaert.a

var() { sed -n "s/^$1 = //p" "$builddir/Makefile"; }
cppflags="-I. -I$builddir -Iinclude $(var BLAS_CFLAGS) -DVAE_USE_ZLIB $(var ISAL_CFLAGS) -DVAE_TEAM"
libs="-Wl,--start-group $builddir/libvaec.a $builddir/libvaefront.a $builddir/libvaert.a -Wl,--end-group $(var LLVM_LIBS) $(var BLAS_LIBS) $(var ISAL_LIBS) $(var ZLIB_LIBS) -lm"
sanitize="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

# ---- each target: fuzz/fuzz_NAME.c with fuzz/corpus/NAME/ (and fuzz/NAME.dict)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
found=0
for src in fuzz/fuzz_*.c; do
    [ -f "$src" ] || continue
    name=${src#fuzz/fuzz_}
    name=${name%.c}
    found=1
    bin=$builddir/fuzz_$name
    echo "== $name: building $bin"
    # shellcheck disable=SC2086 # the flags are lists
    clang -std=gnu11 -g -O1 $sanitize $cppflags "$src" $libs -pthread -o "$bin"
    corpus=$builddir/corpus-$name
    artifacts=$builddir/crashes-$name
    rm -rf "$corpus" "$artifacts" # this run's reproducers only
    mkdir -p "$corpus" "$artifacts"
    [ -d "fuzz/corpus/$name" ] && cp -R "fuzz/corpus/$name/." "$corpus/"
    dict=
    [ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
    echo "== $name: fuzzing for $seconds s"
    set +e
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=16384 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" $dict "$corpus" >"$builddir/fuzz-$name.log" 2>&1
    rc=$?
    set -e
    tail -n 12 "$builddir/fuzz-$name.log"
    if [ "$rc" -ne 0 ] || grep -q "runtime error:\|ERROR: AddressSanitizer\|ERROR: LeakSanitizer" "$builddir/fuzz-$name.log"; then
        echo "FAIL $name (status $rc): the whole log is $builddir/fuzz-$name.log"
        for f in "$artifacts"/*; do
            [ -f "$f" ] && echo "  reproducer: $f   (run: $bin $f)"
        done
        status=1
    else
        echo "ok   $name"
    fi
done
[ "$found" -eq 1 ] || { echo "fuzz.sh: no fuzz/fuzz_*.c target" >&2; exit 2; }
exit $status
