#!/bin/sh
# Standalone C against the JIT, for every example model:
#  - vaec emit-c writes model.c and model.h, which compile warning-free under
#    gcc and clang (-Wall -Wextra -pedantic -std=c11 -Werror), with and without
#    BLAS, zlib and the command line;
#  - the emitted trainer and `vaec train`, same seed and data, print the same
#    values and write the same parameters (relative difference <= 1e-5);
#  - checkpoints cross: each side evaluates the other's to the same ELBO;
#  - the deployment API used from tests/api_user.c matches the JIT's graphs, and vaec encode
#    writes MODEL_encode's floats.
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
vaec="$(cd "$top_builddir" && pwd)/vaec"
floatdiff="$(cd "$top_builddir" && pwd)/tests/floatdiff"
reference="$(cd "$top_builddir" && pwd)/tests/api_reference"
# the matrix library vaec was configured with (make check passes it on)
BLAS_CFLAGS=${BLAS_CFLAGS:--DVAE_USE_CBLAS $(ls -d /usr/include/*/openblas-pthread 2>/dev/null | head -n 1 | sed 's/^/-I/')}
BLAS_LIBS=${BLAS_LIBS:--lopenblas}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
WARN="-std=c11 -O2 -Wall -Wextra -pedantic -Werror"
DATA="--data fashion-mnist:train --test fashion-mnist:test --limit 256 --test-limit 200 --seed 5 --epochs 1"

# the values of each epoch line of two log.csv files agree to 1e-5 (columns 3-8; 9-10 are times;
# '#' lines are the settings, and vaec's log has more of them: the run's description)
same_log() {
    grep -v '^#' "$1" >"$work/log1"
    grep -v '^#' "$2" >"$work/log2"
    paste -d, "$work/log1" "$work/log2" | awk -F, 'NR > 1 { n = NF / 2
        for (i = 3; i <= 8; i++) { a = $i; b = $(i + n)
            if (a == "nan" && b == "nan") continue
            d = a - b; if (d < 0) d = -d; m = (a < 0 ? -a : a); if (m < 1) m = 1
            if (d / m > 1e-5) { print "column " i ": " a " vs " b; bad = 1 } } }
        END { exit bad }'
}

for model in "$top_srcdir"/examples/*.vae; do
    name=$(basename "$model" .vae)
    "$vaec" emit-c "$model" -o "$work/$name.c" >/dev/null 2>"$work/$name.err" || { cat "$work/$name.err"; fail "$name: vaec emit-c"; }
    command -v clang >/dev/null || fail "clang is not installed"
    FULL="-DVAE_MAIN -DVAE_USE_ZLIB $BLAS_CFLAGS"
    gcc $WARN -c "$work/$name.c" -o "$work/$name.o" || fail "$name: gcc warns or fails on the plain build"
    gcc $WARN $FULL "$work/$name.c" -o "$work/$name-gcc" $BLAS_LIBS -lz -lm || fail "$name: gcc warns or fails on the full build"
    clang $WARN -fsyntax-only "$work/$name.c" || fail "$name: clang warns on the plain build"
    clang $WARN $FULL -fsyntax-only "$work/$name.c" || fail "$name: clang warns on the full build"
    # vaec's thread team gives the bits of a single-threaded BLAS; so must the emitted trainer's BLAS
    extra="" # a labelled subset must fit the --limit
    grep -q '^ *labelled' "$model" && extra="--labelled 50"
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$work/$name-gcc" train $DATA $extra --out "$work/c-$name" >"$work/c-$name.out" 2>&1 || { cat "$work/c-$name.out"; fail "$name: emitted trainer"; }
    "$vaec" train "$model" $DATA $extra --out "$work/j-$name" >"$work/j-$name.out" 2>&1 || { cat "$work/j-$name.out"; fail "$name: vaec train"; }
    same_log "$work/c-$name/log.csv" "$work/j-$name/log.csv" || fail "$name: the emitted trainer's values differ from the JIT's"
    # both logs say what made them: the same model file (its SHA-256), vaec version and matrix library
    for key in "model sha256" "vaec version" "matrix library"; do
        grep "^# $key = " "$work/c-$name/log.csv" >"$work/key-c" || fail "$name: the emitted trainer's log.csv has no $key"
        grep "^# $key = " "$work/j-$name/log.csv" | cmp -s - "$work/key-c" || fail "$name: the logs' $key differ"
    done
    "$floatdiff" "$work/c-$name/checkpoint.vaeckpt" "$work/j-$name/checkpoint.vaeckpt" 1e-5 >"$work/diff" \
        || { cat "$work/diff"; fail "$name: parameters differ"; }
    echo "ok   $name: $(cat "$work/diff")"
done

# the emitted trainer runs on the thread team too: one thread gives the same bits
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$work/fashion_gauss-gcc" train $DATA --threads 1 --out "$work/c1" \
    >"$work/c1.out" 2>&1 || { cat "$work/c1.out"; fail "emitted trainer --threads 1"; }
cmp "$work/c1/checkpoint.vaeckpt" "$work/c-fashion_gauss/checkpoint.vaeckpt" \
    || fail "the emitted trainer gives other bits on one thread"
"$work/fashion_gauss-gcc" train $DATA --threads x >"$work/c1.out" 2>&1 && fail "--threads x accepted"
grep -q "threads expects an integer from 1 to 1024, got .x." "$work/c1.out" || { cat "$work/c1.out"; fail "--threads x: no clear message"; }
echo "ok   emitted trainer: --threads 1 gives the default's bits"
# its options take vaec's ranges, refused in vaec's words (parser/settings.c)
for bad in "--lr inf" "--epochs -1" "--seed 1.5"; do
    "$work/fashion_gauss-gcc" train $bad >"$work/opt-c.out" 2>&1 && fail "emitted trainer: $bad accepted"
    "$vaec" train "$top_srcdir/examples/fashion_gauss.vae" $bad >"$work/opt-j.out" 2>&1 && fail "vaec: $bad accepted"
    [ "$(sed 's/^error: //' "$work/opt-c.out")" = "$(sed 's/^vaec: error: //' "$work/opt-j.out")" ] \
        || { cat "$work/opt-c.out" "$work/opt-j.out"; fail "emitted trainer: $bad refused in other words than vaec's"; }
done
echo "ok   emitted trainer: options refused as vaec refuses them"

# --resume crosses between the emitted trainer and vaec (the same settings lines in log.csv):
# each continues the other's 1-epoch run to 2 epochs, and the two end with the same parameters
gauss="$top_srcdir/examples/fashion_gauss.vae"
cp -r "$work/c-fashion_gauss" "$work/c-resumed" && cp -r "$work/j-fashion_gauss" "$work/j-resumed" || fail "cp"
"$vaec" train "$gauss" $DATA --epochs 2 --resume "$work/c-resumed" >"$work/r.out" 2>&1 \
    || { cat "$work/r.out"; fail "vaec train --resume of the emitted trainer's run"; }
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$work/fashion_gauss-gcc" train $DATA --epochs 2 --resume "$work/j-resumed" \
    >"$work/r.out" 2>&1 || { cat "$work/r.out"; fail "the emitted trainer's --resume of vaec's run"; }
grep -q "^epoch  2" "$work/r.out" || { cat "$work/r.out"; fail "the emitted trainer's --resume trained no second epoch"; }
"$floatdiff" "$work/c-resumed/checkpoint.vaeckpt" "$work/j-resumed/checkpoint.vaeckpt" 1e-5 >"$work/diff" \
    || { cat "$work/diff"; fail "resumed across the emitted trainer and vaec: parameters differ"; }
echo "ok   --resume across the emitted trainer and vaec: $(cat "$work/diff")"

# validation, clipping and the learning-rate schedule: the emitted trainer takes vaec's options and
# computes vaec's numbers, best.vaeckpt included
NEW="--validation 64 --clip 5 --lr-warmup-steps 2 --lr-cosine-epochs 2 --lr-min 0.0001 --epochs 2"
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$work/fashion_gauss-gcc" train $DATA $NEW --out "$work/c-new" >"$work/c-new.out" 2>&1 \
    || { cat "$work/c-new.out"; fail "the emitted trainer with $NEW"; }
"$vaec" train "$gauss" $DATA $NEW --out "$work/j-new" >"$work/j-new.out" 2>&1 || { cat "$work/j-new.out"; fail "vaec with $NEW"; }
grep -q "clipped 1 of 1 steps" "$work/c-new.out" || { cat "$work/c-new.out"; fail "the emitted trainer did not clip"; }
same_log "$work/c-new/log.csv" "$work/j-new/log.csv" || fail "with $NEW: the emitted trainer's values differ from the JIT's"
for f in checkpoint best; do
    "$floatdiff" "$work/c-new/$f.vaeckpt" "$work/j-new/$f.vaeckpt" 1e-5 >"$work/diff" \
        || { cat "$work/diff"; fail "with $NEW: $f.vaeckpt differs"; }
done
echo "ok   the emitted trainer's --validation, --clip and learning-rate schedule: vaec's numbers"

# built for speed as model.c's header advises (on SSE4.1 and AArch64 its exp floors with floorf
# rather than by truncation): the same bits as the plain -O2 build, with gcc and with clang
SPEED="-std=c11 -O3 -march=native -ffp-contract=off -fno-math-errno -fno-trapping-math -Wall -Wextra -pedantic -Werror"
for cc in gcc clang; do
    $cc $SPEED -DVAE_MAIN -DVAE_USE_ZLIB $BLAS_CFLAGS "$work/fashion_gauss.c" -o "$work/fast-$cc" $BLAS_LIBS -lz -lm \
        || fail "fashion_gauss: $cc speed build"
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$work/fast-$cc" train $DATA --out "$work/fast-$cc-run" \
        >"$work/fast.out" 2>&1 || { cat "$work/fast.out"; fail "$cc speed build: emitted trainer"; }
    cmp "$work/fast-$cc-run/checkpoint.vaeckpt" "$work/c-fashion_gauss/checkpoint.vaeckpt" \
        || fail "the $cc speed build (-march=native) trains to other bits than the plain build"
done
echo "ok   speed builds (-O3 -march=native) with gcc and clang: the plain build's bits"

# checkpoints cross between the two
m="$top_srcdir/examples/fashion_gauss.vae"
clang $WARN -DVAE_MAIN -DVAE_USE_ZLIB $BLAS_CFLAGS "$work/fashion_gauss.c" -o "$work/fashion_gauss-clang" \
    $BLAS_LIBS -lz -lm || fail "fashion_gauss: clang build"
"$work/fashion_gauss-clang" eval --params "$work/j-fashion_gauss/checkpoint.vaeckpt" --test-limit 200 --iwae 0 --seed 5 \
    >"$work/ce.out" 2>&1 || { cat "$work/ce.out"; fail "the emitted evaluator cannot load vaec's checkpoint"; }
"$vaec" eval "$m" --params "$work/c-fashion_gauss/checkpoint.vaeckpt" --test-limit 200 --iwae 0 --seed 5 \
    >"$work/je.out" 2>&1 || { cat "$work/je.out"; fail "vaec eval cannot load the emitted trainer's checkpoint"; }
a=$(awk '/^ELBO/ { print $2 }' "$work/ce.out")
b=$(awk '/^ELBO/ { print $2 }' "$work/je.out")
[ -n "$a" ] && [ "$a" = "$b" ] || fail "cross-evaluated ELBOs differ: $a (emitted) vs $b (vaec)"
echo "ok   checkpoints cross: ELBO $a on both sides"

# the deployment API from a small C program, against the JIT
gcc -std=c11 -O2 -Wall -Wextra -Werror $BLAS_CFLAGS -I"$work" -DMODEL_HEADER='"fashion_gauss.h"' \
    "$top_srcdir/tests/api_user.c" "$work/fashion_gauss.c" -o "$work/api_user" $BLAS_LIBS -lm || fail "api_user does not build"
"$work/api_user" "$work/j-fashion_gauss/checkpoint.vaeckpt" "$work/api_c.bin" || fail "api_user"
"$reference" "$m" "$work/j-fashion_gauss/checkpoint.vaeckpt" "$work/api_j.bin" || fail "api_reference"
"$floatdiff" --raw "$work/api_c.bin" "$work/api_j.bin" 1e-5 || fail "encode, decode, sample, ELBO or elbo_each differ from the JIT"
# vaec encode of the same 13 rows (tests/api_user.c's pattern, as a .csv) writes MODEL_encode's floats: bit for
# bit with oneDNN's sgemm, within 1e-4 relative when configure chose OpenBLAS, whose last
# bits depend on how a product is cut (vaec encode's team against the emitted library's): 1.5e-5 measured
awk 'BEGIN { for (i = 0; i < 13; i++) { line = ""
    for (j = 0; j < 784; j++) line = line (j ? "," : "") ((i * 131 + j * 17) % 10 < 4 ? 1 : 0); print line } }' >"$work/pattern.csv"
"$vaec" encode "$m" --params "$work/j-fashion_gauss/checkpoint.vaeckpt" --data "$work/pattern.csv" -o "$work/enc.npy" \
    >/dev/null || fail "vaec encode exited with $?"
tail -c +129 "$work/enc.npy" >"$work/enc_vaec.bin" # after the .npy header: [13, 40] floats, no label column
head -c $((13 * 40 * 4)) "$work/api_c.bin" >"$work/enc_api.bin"
"$floatdiff" --raw "$work/enc_vaec.bin" "$work/enc_api.bin" 1e-4 \
    || fail "vaec encode's posterior parameters differ from the emitted MODEL_encode's"
echo "emit: all checks passed"
