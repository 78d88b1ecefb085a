/* configure's measurement of a matrix library: the six products of a training
 * step of examples/fashion_gauss.vae (batch 128, 784-400 layers), cut into
 * parts and spread over the CPUs exactly as vaec's runtime does (it includes
 * runtime/gemm.c, built with the library's VAE_USE_* flags).  Prints the best
 * GFLOP/s of a few rounds.
 *   cc -O2 -Iinclude -DVAE_USE_CBLAS [-DVAE_USE_DNNL|-DVAE_USE_BLIS] scripts/blas_probe.c -lLIB -lpthread */
#define _POSIX_C_SOURCE 200809L
#include "../runtime/gemm.c"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define STEPS 40
#define ROUNDS 4

/* trans_a, trans_b, m, n, k: forward, then the gradients of both layers */
static const int shapes[6][5] = {{0, 0, 128, 400, 784}, {0, 0, 128, 784, 400}, {0, 1, 128, 400, 784},
                                 {1, 0, 400, 784, 128}, {0, 1, 128, 784, 400}, {1, 0, 784, 400, 128}};
static float *a, *b, *c;
static int members;
static pthread_barrier_t barrier;

static void *member(void *arg) {
    int me = (int)(long)arg;
    vr_blas_single_thread();
    for (int step = 0; step < STEPS; step++)
        for (int s = 0; s < 6; s++) {
            int ta = shapes[s][0], tb = shapes[s][1], m = shapes[s][2], n = shapes[s][3], k = shapes[s][4];
            vr_gemm_job j = {ta, tb, m, n, k, ta ? m : k, tb ? k : n, n, 0, a, b, c};
            int parts = vr_gemm_parts(&j);
            for (int part = me; part < parts; part += members) vr_gemm_part(&j, part, parts);
            pthread_barrier_wait(&barrier);
        }
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void) {
    size_t size = 784 * 400;
    a = malloc(size * sizeof *a), b = malloc(size * sizeof *b), c = malloc(size * sizeof *c);
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < size; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    members = vr_cpus();
    pthread_barrier_init(&barrier, NULL, (unsigned)members);
    double flops = 0, best = 0;
    for (int s = 0; s < 6; s++) flops += 2.0 * shapes[s][2] * shapes[s][3] * shapes[s][4] * STEPS;
    for (int round = 0; round <= ROUNDS; round++) { /* round 0 warms up */
        pthread_t threads[64];
        double t0 = now();
        for (int i = 1; i < members; i++) pthread_create(&threads[i], NULL, member, (void *)(long)i);
        member(NULL);
        for (int i = 1; i < members; i++) pthread_join(threads[i], NULL);
        double gflops = flops / (now() - t0) * 1e-9;
        if (round > 0 && gflops > best) best = gflops;
    }
    printf("%.0f\n", best);
    return 0;
}
