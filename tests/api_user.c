/* A small program that uses an emitted model through its header alone:
 * load a checkpoint, encode, decode, sample, ELBO, each row's ELBO.  Writes the results as raw
 * floats for tests/emit.sh to compare with the JIT's (tests/api_reference.c).
 * Built against the emitted fashion_gauss.c: MODEL_HEADER names its header. */
#include <stdio.h>
#include <stdlib.h>
#include MODEL_HEADER

#define N 13

/* Deterministic inputs that both programs build alike. */
static float pattern(int i, int j, int salt) { return (float)(((i * 131 + j * 17 + salt * 7) % 10) < 4); }

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    char err[512];
    fashion_gauss_model *m = fashion_gauss_create(1);
    if (!m || fashion_gauss_load(m, argv[1], err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    static float x[N * 784], enc[N * 40], z[N * 20], dec[N * 784], smp[N * 784];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 784; j++) x[i * 784 + j] = pattern(i, j, 0);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 20; j++) z[i * 20 + j] = (pattern(i, j, 1) - 0.4f) * 2;
    fashion_gauss_encode(m, x, N, enc);
    fashion_gauss_decode(m, z, N, dec);
    fashion_gauss_sample(m, N, 77, smp);
    float elbo = (float)fashion_gauss_elbo(m, x, N), each[N];
    double each_d[N];
    if (fashion_gauss_elbo_each(m, x, N, each_d)) return 1;
    for (int i = 0; i < N; i++) each[i] = (float)each_d[i];
    FILE *f = fopen(argv[2], "wb");
    fwrite(enc, sizeof(float), N * 40, f);
    fwrite(dec, sizeof(float), N * 784, f);
    fwrite(smp, sizeof(float), N * 784, f);
    fwrite(&elbo, sizeof(float), 1, f);
    fwrite(each, sizeof(float), N, f);
    fclose(f);
    fashion_gauss_free(m);
    return 0;
}
