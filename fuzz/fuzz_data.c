/* libFuzzer target over the data readers (runtime/data.c): each input is
 * written to a temporary file and loaded as IDX (gzip or not: the reader goes
 * by the magic number), as .npy and as .csv, each for binary and for real
 * data of WIDTH values an example, and every example loaded is gathered.  A
 * reader must refuse what it cannot use with a message naming the file: any
 * crash, sanitizer report, leak, or allocation beyond libFuzzer's
 * -malloc_limit_mb is a bug (regression tests: tests/test_data_hostile.c).
 *
 * By hand (scripts/fuzz.sh builds every fuzz/fuzz_*.c the same way), from the
 * repository root, with new inputs going to a scratch folder and the seeds read
 * from fuzz/corpus/data:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Iinclude -DVAE_USE_ZLIB \
 *       fuzz/fuzz_data.c runtime/data.c -lz -lm -o /tmp/fuzz_data
 *   mkdir -p /tmp/fuzz_data.corpus
 *   /tmp/fuzz_data -dict=fuzz/data.dict -max_len=4096 -malloc_limit_mb=64 \
 *       -max_total_time=300 /tmp/fuzz_data.corpus fuzz/corpus/data
 * (-DVAE_USE_ISAL ... -lisal instead of -DVAE_USE_ZLIB fuzzes ISA-L's inflate.) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vae/runtime.h"

enum { WIDTH = 4 }; /* the seeds' examples: 2x2 images, 4 columns */

static void write_bytes(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) abort(); /* the fuzzer's own failure, not the reader's */
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f)) abort();
}

/* Loads path; when it loads, gathers every example as floats and doubles. */
static void load_and_gather(const char *path, int binary) {
    vr_dataset ds;
    char err[512];
    if (vr_data_load(&ds, path, NULL, WIDTH, binary, err, sizeof err)) {
        if (!strstr(err, path)) abort(); /* every refusal names the file */
        return;
    }
    if (ds.n < 1 || ds.dim != WIDTH) abort();
    float *f = malloc((size_t)ds.n * WIDTH * sizeof *f);
    double *d = malloc((size_t)ds.n * WIDTH * sizeof *d);
    int *idx = malloc((size_t)ds.n * sizeof *idx);
    if (!f || !d || !idx) abort();
    for (int i = 0; i < ds.n; i++) idx[i] = ds.n - 1 - i;
    vr_data_gather_f32(&ds, idx, ds.n, f);
    vr_data_gather_f64(&ds, idx, ds.n, d);
    for (size_t i = 0; i < (size_t)ds.n * WIDTH; i++) {
        if (f[i] != f[i] || (double)f[i] != d[i]) abort(); /* NaN loaded, or the two gathers disagree */
        if (binary && f[i] != 0 && f[i] != 1) abort();
    }
    free(f);
    free(d);
    free(idx);
    vr_data_free(&ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char paths[3][64];
    static const char *const suffix[3] = {".idx", ".npy", ".csv"};
    if (!paths[0][0])
        for (int k = 0; k < 3; k++) snprintf(paths[k], sizeof paths[k], "/tmp/fuzz_data-%ld%s", (long)getpid(), suffix[k]);
    for (int k = 0; k < 3; k++) {
        write_bytes(paths[k], data, size);
        load_and_gather(paths[k], 0);
        load_and_gather(paths[k], 1);
        unlink(paths[k]);
    }
    return 0;
}
