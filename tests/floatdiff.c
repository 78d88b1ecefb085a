/* floatdiff: compares two vaec checkpoints (their parameters) or two raw
 * float32 files, and fails when any value differs by more than the relative
 * tolerance:  floatdiff [--raw] A B TOLERANCE */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "floatdiff: %s: cannot open\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

static uint32_t u32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The parameters of a checkpoint (see runtime/checkpoint.c for the layout),
 * copied out: the header leaves them at any byte offset. */
static const float *params_of(const unsigned char *b, size_t n, size_t *count) {
    if (n < 16 || memcmp(b, "VAECKPT", 8) != 0) return NULL;
    size_t at = 12;
    at += 4 + u32(b + at);
    uint32_t nt = u32(b + at);
    at += 4;
    size_t total = 0;
    for (uint32_t t = 0; t < nt; t++) {
        at += 4 + u32(b + at);
        uint32_t nd = u32(b + at);
        at += 4;
        size_t size = 1;
        for (uint32_t d = 0; d < nd; d++, at += 4) size *= u32(b + at);
        total += size;
    }
    at += 4 + 8;
    *count = total;
    if (at + total * 4 > n) return NULL;
    float *out = malloc(total * sizeof(float) + 1);
    memcpy(out, b + at, total * sizeof(float));
    return out;
}

int main(int argc, char **argv) {
    int raw = argc > 1 && strcmp(argv[1], "--raw") == 0;
    if (argc != 4 + raw) {
        fprintf(stderr, "usage: floatdiff [--raw] A B TOLERANCE\n");
        return 2;
    }
    size_t na, nb, ca, cb;
    unsigned char *a = slurp(argv[1 + raw], &na), *b = slurp(argv[2 + raw], &nb);
    /* slurp's buffers come from malloc, so raw files are aligned for floats */
    const float *fa = raw ? (const float *)(const void *)a : params_of(a, na, &ca);
    const float *fb = raw ? (const float *)(const void *)b : params_of(b, nb, &cb);
    if (raw) {
        ca = na / 4;
        cb = nb / 4;
    }
    if (!fa || !fb || ca != cb || ca == 0) { /* exits: the buffers go with the process */
        fprintf(stderr, "floatdiff: %s and %s do not hold the same number of floats\n", argv[1 + raw], argv[2 + raw]);
        return 1;
    }
    double worst = 0, tol = atof(argv[3 + raw]);
    size_t at = 0;
    for (size_t i = 0; i < ca; i++) {
        double d = fabs((double)fa[i] - fb[i]) / fmax(1e-3, fmax(fabs(fa[i]), fabs(fb[i])));
        if (!(d <= worst)) {
            worst = d;
            at = i;
        }
    }
    printf("%zu values, largest relative difference %.3g (value %zu)\n", ca, worst, at);
    if (!raw) {
        free((void *)fa);
        free((void *)fb);
    }
    free(a);
    free(b);
    return worst <= tol ? 0 : 1;
}
