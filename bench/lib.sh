# Shared by the bench scripts (sourced from the repository root, after set -e).

# a value configure found (BLAS_LIBS, ISAL_CFLAGS, ...), from the build's config.status
config() { sed -n 's/^S\["'"$1"'"\]="\(.*\)"$/\1/p' build/config.status; }

# how an emitted trainer is built for speed, as its header advises
SPEED="-O3 -march=native -ffp-contract=off -fno-math-errno -fno-trapping-math"

# build_trainer SOURCE.c PROGRAM [CFLAGS...]: an emitted C file (vaec emit-c) as a command-line
# trainer with vaec's own matrix library, thread team and gzip reader
build_trainer() {
    src=$1; prog=$2; shift 2
    cc -std=c11 $SPEED "$@" -DVAE_MAIN -DVAE_USE_ZLIB $(config ISAL_CFLAGS) $(config BLAS_CFLAGS) "$src" -o "$prog" \
        $(config BLAS_LIBS) $(config ISAL_LIBS) -lz -lm
}
