/* The training step's products, one thread: oneDNN's sgemm against LIBXSMM (its BLAS-like
 * libxsmm_sgemm, which JIT-generates a kernel for small shapes and hands larger ones to the
 * BLAS, and a tiling of JIT kernels made for the whole product's shape), as GFLOP/s, the best
 * of REPEATS interleaved runs.  Issue 25 asks whether kernels specialised to the shapes beat
 * the library vaec uses; bench/small_gemm.sh builds and runs this.
 *   small_gemm [REPEATS]
 * Row-major C[M, N] = op(A) op(B) as vaec calls it; LIBXSMM is column-major, so it computes
 * C^T = op(B)^T op(A)^T. */
#define _POSIX_C_SOURCE 200809L
#include <dnnl.h>
#include <libxsmm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *what;
    int M, N, K, ta, tb; /* row-major C[M, N] = op(A) op(B), op(A) [M, K], op(B) [K, N] */
} product;

/* fashion_gauss (batch 128: 784 -> 400 -> 20, 20 -> 400 -> 784) and fashion_bernoulli200
 * (batch 50, an antithetic pair: 100 decoder rows) */
static const product PRODUCTS[] = {
    {"gauss enc x.W1      128x784 * 784x400", 128, 400, 784, 0, 0},
    {"gauss enc dW1 x^T.g 784x128 * 128x400", 784, 400, 128, 1, 0},
    {"gauss dec h.W4      128x400 * 400x784", 128, 784, 400, 0, 0},
    {"gauss dec dh g.W4^T 128x784 * 784x400", 128, 400, 784, 0, 1},
    {"gauss dec dW4 h^T.g 400x128 * 128x784", 400, 784, 128, 1, 0},
    {"bern200 enc x.W     50x784 * 784x200", 50, 200, 784, 0, 0},
    {"bern200 dec z.V     100x200 * 200x784", 100, 784, 200, 0, 0},
    {"bern200 dV z^T.g    200x100 * 100x784", 200, 784, 100, 1, 0},
    {"bern200 dW x^T.g    784x50 * 50x200", 784, 200, 50, 1, 0},
};
#define NPRODUCTS (int)(sizeof PRODUCTS / sizeof PRODUCTS[0])

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void run_dnnl(const product *p, const float *A, const float *B, float *C) {
    int lda = p->ta ? p->M : p->K, ldb = p->tb ? p->K : p->N;
    dnnl_sgemm(p->ta ? 'T' : 'N', p->tb ? 'T' : 'N', p->M, p->N, p->K, 1.0f, A, lda, B, ldb, 0.0f, C, p->N);
}

static void run_xsmm_gemm(const product *p, const float *A, const float *B, float *C) {
    libxsmm_blasint m = p->N, n = p->M, k = p->K, lda = p->tb ? p->K : p->N, ldb = p->ta ? p->M : p->K, ldc = p->N;
    float alpha = 1, beta = 0;
    libxsmm_sgemm(p->tb ? "T" : "N", p->ta ? "T" : "N", &m, &n, &k, &alpha, B, &lda, A, &ldb, &beta, C, &ldc);
}

/* C^T in column blocks of BM of its rows (N) and BN of its columns (M), each one JIT kernel over
 * the whole K; 0 when LIBXSMM would not generate the kernel. */
enum { BM = 64, BN = 16 };
static int run_xsmm_tiled(const product *p, const float *A, const float *B, float *C) {
    libxsmm_blasint lda = p->tb ? p->K : p->N, ldb = p->ta ? p->M : p->K, ldc = p->N;
    float alpha = 1, beta = 0;
    int flags = (p->tb ? LIBXSMM_GEMM_FLAG_TRANS_A : 0) | (p->ta ? LIBXSMM_GEMM_FLAG_TRANS_B : 0);
    for (int j = 0; j < p->M; j += BN)
        for (int i = 0; i < p->N; i += BM) {
            libxsmm_blasint m = p->N - i < BM ? p->N - i : BM, n = p->M - j < BN ? p->M - j : BN, k = p->K;
            libxsmm_smmfunction f = libxsmm_smmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, NULL);
            if (!f) return 0;
            const float *a = p->tb ? B + (size_t)i * p->K : B + i;             /* op(B)^T rows i.. */
            const float *b = p->ta ? A + j : A + (size_t)j * p->K;              /* op(A)^T columns j.. */
            f(a, b, C + (size_t)j * p->N + i);
        }
    return 1;
}

/* Every way computes the same product (to float rounding); exits otherwise. */
static void check_same(const product *p, const float *C, const float *R, size_t n, int way) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)C[i] - (double)R[i];
        if (d * d > worst) worst = d * d;
    }
    if (worst > 1e-6) {
        fprintf(stderr, "small_gemm: %s: way %d differs from oneDNN's product by %g\n", p->what, way, worst);
        exit(1);
    }
}

int main(int argc, char **argv) {
    int repeats = argc > 1 ? atoi(argv[1]) : 20;
    libxsmm_init();
    printf("%-40s %10s %10s %10s  (GFLOP/s, one thread, best of %d)\n", "product", "oneDNN", "xsmm_gemm", "xsmm_tiles",
           repeats);
    for (int q = 0; q < NPRODUCTS; q++) {
        const product *p = &PRODUCTS[q];
        size_t na = (size_t)p->M * p->K, nb = (size_t)p->K * p->N, nc = (size_t)p->M * p->N;
        float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4), *R = malloc(nc * 4);
        for (size_t i = 0; i < na; i++) A[i] = (float)((i * 7919 % 1000) / 1000.0 - 0.5);
        for (size_t i = 0; i < nb; i++) B[i] = (float)((i * 104729 % 1000) / 1000.0 - 0.5);
        double best[3] = {1e9, 1e9, 1e9}, flops = 2.0 * p->M * p->N * p->K;
        int tiled = 1;
        run_dnnl(p, A, B, R);
        for (int r = 0; r < repeats; r++)
            for (int w = 0; w < 3; w++) {
                double t0 = now();
                if (w == 0) run_dnnl(p, A, B, C);
                else if (w == 1) run_xsmm_gemm(p, A, B, C);
                else tiled = run_xsmm_tiled(p, A, B, C);
                double t = now() - t0;
                if (t < best[w]) best[w] = t;
                if (w < 2 || tiled) check_same(p, C, R, nc, w);
            }
        char tiles[16] = "none"; /* LIBXSMM 1.17 makes no kernel that transposes its A (vaec's B) */
        if (tiled) snprintf(tiles, sizeof tiles, "%.1f", flops / best[2] * 1e-9);
        printf("%-40s %10.1f %10.1f %10s\n", p->what, flops / best[0] * 1e-9, flops / best[1] * 1e-9, tiles);
        free(A), free(B), free(C), free(R);
    }
    libxsmm_finalize();
    return 0;
}
