#!/bin/sh
# Emitted C as a library: two emitted models link into one program and each works
# there (tests/two_models.c: elbo_each, sample_posterior); an emitted object exports
# only its model's API; the comments and the header name the files the user chose
# and the flags that give the JIT's bits; the emitted trainer's --help exits 0.
. "${top_srcdir:-.}/tests/lib.sh"
BLAS_CFLAGS=${BLAS_CFLAGS:--DVAE_USE_CBLAS $(ls -d /usr/include/*/openblas-pthread 2>/dev/null | head -n 1 | sed 's/^/-I/')}
BLAS_LIBS=${BLAS_LIBS:--lopenblas}
WARN="-std=c11 -O2 -Wall -Wextra -pedantic -Werror"
mkdir -p "$work/lib" || fail "mkdir"
for m in fashion_gauss fashion_mixture; do
    "$vaec" emit-c "$top_srcdir/examples/$m.vae" -o "$work/lib/$m.c" >"$work/$m.out" || fail "$m: emit-c"
    for cc in gcc clang; do
        $cc $WARN $BLAS_CFLAGS -c "$work/lib/$m.c" -o "$work/$m-$cc.o" || fail "$m: $cc does not build it"
        # nothing but the model's own API has external linkage
        other=$(nm -g --defined-only "$work/$m-$cc.o" | awk 'NF == 3 { print $3 }' | grep -v "^${m}_")
        [ -z "$other" ] || fail "$m ($cc) exports more than its API: $other"
    done
done
echo "ok   each emitted object exports only its model's API"
for cc in gcc clang; do
    $cc $WARN $BLAS_CFLAGS -I"$work/lib" "$top_srcdir/tests/two_models.c" "$work/fashion_gauss-$cc.o" \
        "$work/fashion_mixture-$cc.o" -o "$work/two-$cc" $BLAS_LIBS -lm || fail "two models do not link into one program ($cc)"
    "$work/two-$cc" >"$work/two-$cc.out" 2>&1 || { cat "$work/two-$cc.out"; fail "two models in one program ($cc)"; }
done
cmp "$work/two-gcc.out" "$work/two-clang.out" || fail "gcc and clang builds of the two-model program print other values"
cat "$work/two-gcc.out"
echo "ok   two emitted models in one program (gcc and clang)"

# the names the user chose, not the model's: -o first.c writes first.h, and both say so
"$vaec" emit-c "$top_srcdir/examples/fashion_gauss.vae" -o "$work/first.c" >"$work/first.out" || fail "emit-c -o first.c"
head -n 1 "$work/first.c" | grep -q "^/\* first.c: model fashion_gauss" || { head -n 1 "$work/first.c"; fail "first.c names another file"; }
head -n 1 "$work/first.h" | grep -q "^/\* first.h: " || { head -n 1 "$work/first.h"; fail "first.h names another file"; }
grep -qF -e fashion_gauss.c -e fashion_gauss.h "$work/first.c" "$work/first.h" && fail "the comments name fashion_gauss.c or .h"
grep -q "examples/fashion_gauss.vae" "$work/first.h" || fail "the header mangles the model's path"
# the flags that give the JIT's bits, as configure chose them: printed, and recorded in the header
grep -q -- "-ffp-contract=off .*$BLAS_CFLAGS .*first.c -o .*first $BLAS_LIBS" "$work/first.out" \
    || { cat "$work/first.out"; fail "emit-c does not print the flags that give the JIT's bits"; }
grep -q "define fashion_gauss_JIT_CFLAGS \".*$BLAS_CFLAGS\"" "$work/first.h" || fail "the header does not record the flags"
echo "ok   file names and the JIT's flags in the comments, the header and emit-c's output"

# the emitted trainer's --help: usage on stdout, status 0
gcc $WARN -DVAE_MAIN -DVAE_USE_ZLIB $BLAS_CFLAGS "$work/first.c" -o "$work/first" $BLAS_LIBS -lz -lm || fail "trainer build"
"$work/first" --help >"$work/help.out" 2>&1 || fail "the emitted trainer's --help exits non-zero"
grep -q "^usage: .*first train" "$work/help.out" || { cat "$work/help.out"; fail "--help prints no usage"; }
"$work/first" train --help >/dev/null 2>&1 || fail "the emitted trainer's train --help exits non-zero"
"$work/first" bogus >/dev/null 2>&1 && fail "an unknown command exits 0"
echo "ok   the emitted trainer's --help exits 0"
