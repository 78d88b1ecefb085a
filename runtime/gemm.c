/* Matrix products through CBLAS (OpenBLAS): the heavy work of every step. */
#include "vae/runtime.h"

#include <cblas.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

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
