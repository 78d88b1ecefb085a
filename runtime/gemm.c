/* Matrix products through CBLAS (OpenBLAS): the heavy work of every step. */
#include "vae/runtime.h"

#include <cblas.h>

void vr_gemm_f32(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                 int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda,
                b, ldb, 0.0f, c, ldc);
}

void vr_gemm_f64(int ta, int tb, int m, int n, int k, const double *a, int lda, const double *b, int ldb, double *c,
                 int ldc) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0, a, lda, b,
                ldb, 0.0, c, ldc);
}

void vr_set_threads(int n) {
    if (n > 0) openblas_set_num_threads(n);
}
