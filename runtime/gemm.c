/* Matrix products.  The library behind them is chosen when vaec is configured
 * (configure measures the candidates on a training step's products and takes
 * the fastest): OpenBLAS or BLIS through CBLAS (VAE_USE_CBLAS, with
 * VAE_USE_BLIS for BLIS), or oneDNN's dnnl_sgemm for single precision
 * (VAE_USE_DNNL, CBLAS still doing double).  Without any, plain loops.
 *
 * A large product is computed as vr_gemm_parts() blocks of C's rows or
 * columns, a number fixed by its shape and the machine's CPU count, never by
 * the thread count: the libraries' kernels may sum an output element in an
 * order that depends on the block it lies in (measured: OpenBLAS 0.3.21's Zen
 * kernels change the bits wherever C's columns are cut; its AVX-512 ones do
 * not).  vaec's build (VAE_TEAM) deals the parts out to its team of threads
 * (team.c); emitted C computes them in turn, so both give the same bits. */
#include "vae/runtime.h"

#include <stddef.h>

#if defined(VAE_USE_CBLAS) || defined(VAE_USE_DNNL)
#include <unistd.h>
#endif
#ifdef VAE_USE_CBLAS
#include <cblas.h>
#include <stdlib.h>
#include <strings.h>
#endif
#ifdef VAE_USE_DNNL
#include <oneapi/dnnl/dnnl.h>
void omp_set_num_threads(int n); /* OpenMP's, under oneDNN; clang has no omp.h of its own */
#endif
#ifdef VAE_USE_BLIS
void bli_thread_set_num_threads(long n_threads); /* blis.h and BLIS's cblas.h do not mix */
#endif

/* ---- one block, by the library ---- */

#if defined(VAE_USE_DNNL)
static void gemm_block_f32(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                           float *c, int ldc) {
    dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}
#elif defined(VAE_USE_CBLAS)
static void gemm_block_f32(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                           float *c, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda,
                b, ldb, 0.0f, c, ldc);
}
#endif

#ifdef VAE_USE_CBLAS
static void gemm_block_f64(int ta, int tb, int m, int n, int k, const double *a, int lda, const double *b, int ldb,
                           double *c, int ldc) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0, a, lda, b,
                ldb, 0.0, c, ldc);
}
#endif

/* plain C: C = op(A) op(B), i-k-j order so that the inner loop is contiguous */
#define DEFINE_PLAIN_GEMM(NAME, T)                                                                                 \
    static void NAME(int ta, int tb, int m, int n, int k, const T *a, int lda, const T *b, int ldb, T *c,          \
                     int ldc) {                                                                                    \
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
#if !defined(VAE_USE_CBLAS) && !defined(VAE_USE_DNNL)
DEFINE_PLAIN_GEMM(gemm_block_f32, float)
#endif
#ifndef VAE_USE_CBLAS
DEFINE_PLAIN_GEMM(gemm_block_f64, double)
#endif

const char *vr_blas_name(void) {
#if defined(VAE_USE_DNNL)
    return "oneDNN";
#elif defined(VAE_USE_BLIS)
    return "BLIS";
#elif defined(VAE_USE_CBLAS)
    return "OpenBLAS";
#else
    return "plain C";
#endif
}

/* ---- threads ---- */

int vr_cpus(void) {
#if defined(VAE_USE_CBLAS) || defined(VAE_USE_DNNL)
    static int cpus; /* read once; every thread reads the same value */
    if (cpus == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cpus = n < 1 ? 1 : n > 64 ? 64 : (int)n;
    }
    return cpus;
#else
    return 1; /* plain loops: no cut needed, none made */
#endif
}

/* The library single-threaded in the calling thread (oneDNN reads OpenMP's
 * per-thread setting; OpenBLAS's and BLIS's are global). */
void vr_blas_single_thread(void) {
#if defined(VAE_USE_DNNL)
    omp_set_num_threads(1);
#endif
#if defined(VAE_USE_BLIS)
    bli_thread_set_num_threads(1);
#elif defined(VAE_USE_CBLAS)
    openblas_set_num_threads(1);
#endif
}

#ifndef VAE_TEAM
void vr_set_threads(int n) {
    if (n <= 0) return; /* the library's own default */
#if defined(VAE_USE_DNNL)
    omp_set_num_threads(n);
#endif
#if defined(VAE_USE_BLIS)
    bli_thread_set_num_threads(n);
#elif defined(VAE_USE_CBLAS)
    openblas_set_num_threads(n);
#endif
}
#endif

/* ---- parts ---- */

/* No part has fewer multiply-adds than this: smaller ones are not worth a thread. */
#define GEMM_PART_MIN (1L << 21)

int vr_gemm_parts(const vr_gemm_job *j) {
    long work = (long)j->m * j->n * j->k;
    long side = j->m >= j->n ? j->m : j->n;
    long parts = vr_cpus();
    if (parts > work / GEMM_PART_MIN) parts = work / GEMM_PART_MIN;
    if (parts > side / 16) parts = side / 16;
    return parts < 1 ? 1 : (int)parts;
}

/* Part `part` of `parts`: a block of C's rows (when C is tall) or columns, cut
 * at multiples of 16. */
void vr_gemm_part(const vr_gemm_job *j, int part, int parts) {
    size_t es = j->f64 ? sizeof(double) : sizeof(float);
    const char *a = j->a, *b = j->b;
    char *c = j->c;
    int m = j->m, n = j->n;
    long side = m >= n ? m : n, blocks = (side + 15) / 16;
    long begin = blocks * part / parts * 16, end = blocks * (part + 1) / parts * 16;
    if (end > side) end = side;
    if (begin >= end) return;
    if (m >= n) { /* rows of C: rows of op(A) */
        a += (size_t)(j->trans_a ? begin : begin * j->lda) * es;
        c += (size_t)(begin * j->ldc) * es;
        m = (int)(end - begin);
    } else { /* columns of C: columns of op(B) */
        b += (size_t)(j->trans_b ? begin * j->ldb : begin) * es;
        c += (size_t)begin * es;
        n = (int)(end - begin);
    }
    if (j->f64)
        gemm_block_f64(j->trans_a, j->trans_b, m, n, j->k, (const double *)a, j->lda, (const double *)b, j->ldb,
                       (double *)c, j->ldc);
    else
        gemm_block_f32(j->trans_a, j->trans_b, m, n, j->k, (const float *)a, j->lda, (const float *)b, j->ldb,
                       (float *)c, j->ldc);
}

#ifndef VAE_TEAM /* vaec's team deals the parts out instead (team.c) */
static void gemm_in_parts(const vr_gemm_job *j) {
    int parts = vr_gemm_parts(j);
    for (int part = 0; part < parts; part++) vr_gemm_part(j, part, parts);
}

void vr_gemm_f32(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                 int ldc) {
    vr_gemm_job j = {ta, tb, m, n, k, lda, ldb, ldc, 0, a, b, c};
    gemm_in_parts(&j);
}

void vr_gemm_jobs(const vr_gemm_job *jobs, int n) {
    for (int i = 0; i < n; i++) gemm_in_parts(&jobs[i]);
}

void vr_gemm_f64(int ta, int tb, int m, int n, int k, const double *a, int lda, const double *b, int ldb, double *c,
                 int ldc) {
    vr_gemm_job j = {ta, tb, m, n, k, lda, ldb, ldc, 1, a, b, c};
    gemm_in_parts(&j);
}
#endif

/* ---- OpenBLAS's kernel choice ---- */

#if defined(VAE_USE_CBLAS) && !defined(VAE_USE_BLIS)
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
#else
void vr_blas_select_core(char **argv) { (void)argv; }
#endif
