/* The machine's single-precision GEMM peak as the benchmark sees it: the best
 * of several runs of one library's sgemm at 2048^3 and at the training step's
 * shapes (128 x 784 x 400 and its transposes), on the library's own threads.
 * bench/run.sh builds it for each installed library: OpenBLAS and BLIS through
 * CBLAS, oneDNN (-DPEAK_DNNL) through dnnl_sgemm. */
#ifdef PEAK_DNNL
#include <oneapi/dnnl/dnnl.h>
#define SGEMM(ta, tb, m, n, k, a, lda, b, ldb, c, ldc) \
    dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
#else
#include <cblas.h>
#define SGEMM(ta, tb, m, n, k, a, lda, b, ldb, c, ldc)                                                          \
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1, a, lda, \
                b, ldb, 0, c, ldc)
#endif
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double best(int ta, int tb, int m, int n, int k, int reps) {
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n),
          *c = malloc(sizeof(float) * (size_t)m * n);
    for (long i = 0; i < (long)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
    for (long i = 0; i < (long)k * n; i++) b[i] = (float)(i % 5) * 0.1f;
    double top = 0;
    for (int r = 0; r < reps; r++) {
        int inner = m * (double)n * k < 1e8 ? 200 : 3;
        double t0 = now();
        for (int i = 0; i < inner; i++)
            SGEMM(ta, tb, m, n, k, a, ta ? m : k, b, tb ? k : n, c, n);
        double g = 2.0 * m * n * k * inner / (now() - t0) / 1e9;
        if (g > top) top = g;
    }
    free(a);
    free(b);
    free(c);
    return top;
}

int main(void) {
    printf("gemm_2048 %.1f\n", best(0, 0, 2048, 2048, 2048, 3));
    printf("gemm_128x784x400 %.1f\n", best(0, 0, 128, 400, 784, 5));
    printf("gemm_128x400x784 %.1f\n", best(0, 0, 128, 784, 400, 5));
    printf("gemm_At_784x400x128 %.1f\n", best(1, 0, 784, 400, 128, 5));
    return 0;
}
