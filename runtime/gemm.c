/* Matrix products: through CBLAS (OpenBLAS) when built with VAE_USE_CBLAS,
 * as vaec always is; emitted C without it uses the plain loops below.
 * vaec's own build (VAE_TEAM) splits products over a team of threads
 * (team.c), which calls the single-threaded versions here, vr_gemm1_*. */
#include "vae/runtime.h"

#ifdef VAE_TEAM
#define GEMM_F32 vr_gemm1_f32
#define GEMM_F64 vr_gemm1_f64
#else
#define GEMM_F32 vr_gemm_f32
#define GEMM_F64 vr_gemm_f64
#endif

#ifdef VAE_USE_CBLAS
#include <cblas.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

void GEMM_F32(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda,
                b, ldb, 0.0f, c, ldc);
}

void GEMM_F64(int ta, int tb, int m, int n, int k, const double *a, int lda, const double *b, int ldb, double *c,
              int ldc) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0, a, lda, b,
                ldb, 0.0, c, ldc);
}

#ifndef VAE_TEAM
void vr_set_threads(int n) {
    if (n > 0) openblas_set_num_threads(n);
}
#endif

/* Debian's OpenBLAS 0.3.21 does not recognise some newer Xeons and falls back
 * to its Prescott (SSE3) kernels, half the speed on this project's machine.
 * When that happens on a CPU with AVX-512 or AVX2, the program restarts once
 * with OPENBLAS_CORETYPE naming the kernel family the CPU does support (the
 * core type is read when the library loads, before main).  Measured on the
 * 2-core Xeon: fashion_gauss trains at 7,900 examples/s with Prescott kernels
 * and 16,000 with Cooperlake's. */
void vr_blas_select_core(char **argv) {
    if (getenv("OPENBLAS_CORETYPE")) return; /* the user's (or our restart's) choice */
    const char *core = openblas_get_corename();
    static const char *const weak[] = {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "unknown"};
    int is_weak = 0;
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) is_weak |= core && strcasecmp(core, weak[i]) == 0;
    if (!is_weak) return;
    const char *want = NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        want = __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
    if (!want) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    execv("/proc/self/exe", argv); /* returns only on failure: go on with the slow kernels */
}

#else /* plain C: C = op(A) op(B), row-major, i-k-j order so the inner loop is contiguous */

#define DEFINE_GEMM(NAME, T)                                                                                       \
    void NAME(int ta, int tb, int m, int n, int k, const T *a, int lda, const T *b, int ldb, T *c, int ldc) {      \
        for (int i = 0; i < m; i++) {                                                                              \
            T *ci = c + (size_t)i * (size_t)ldc;                                                                   \
            for (int j = 0; j < n; j++) ci[j] = 0;                                                                 \
            for (int p = 0; p < k; p++) {                                                                          \
                T aip = ta ? a[(size_t)p * (size_t)lda + (size_t)i] : a[(size_t)i * (size_t)lda + (size_t)p];     \
                if (aip == 0) continue;                                                                            \
                if (tb)                                                                                            \
                    for (int j = 0; j < n; j++) ci[j] += aip * b[(size_t)j * (size_t)ldb + (size_t)p];            \
                else                                                                                               \
                    for (int j = 0; j < n; j++) ci[j] += aip * b[(size_t)p * (size_t)ldb + (size_t)j];            \
            }                                                                                                      \
        }                                                                                                          \
    }

DEFINE_GEMM(GEMM_F32, float)
DEFINE_GEMM(GEMM_F64, double)

#ifndef VAE_TEAM
void vr_set_threads(int n) { (void)n; }
#endif
void vr_blas_select_core(char **argv) { (void)argv; }
#endif
