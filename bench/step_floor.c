/* The fastest a model's training step could run on this machine with vaec's
 * matrix library: every product of the step (bench/step_flops.py --shapes)
 * timed alone in a hot loop, through vaec's own runtime (its thread team and
 * the library configure chose, the parts and groups the step uses), plus one
 * Adam pass over the model's parameters, also hot.  Elementwise kernels, im2col
 * and the step's cache misses are left out, so the floor is optimistic: a step
 * cannot beat it without products faster than the library's.
 *     bench/step_flops.py build/vaec M.vae --shapes | step_floor [THREADS]
 * prints "products_ms adam_ms floor_ms floor_ex_per_s" (medians). */
#include "vae/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PRODUCTS 256
#define REPS 101

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* median seconds of REPS calls of fn after a warm-up */
static double median_time(void (*fn)(void *), void *arg) {
    double t[REPS];
    for (int r = 0; r < 10; r++) fn(arg);
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        fn(arg);
        t[r] = now() - t0;
    }
    qsort(t, REPS, sizeof t[0], by_value);
    return t[REPS / 2];
}

typedef struct {
    vr_gemm_job *jobs;
    int count;
} group;

static void run_group(void *arg) {
    group *g = arg;
    vr_gemm_jobs(g->jobs, g->count);
}

typedef struct {
    float *p, *g, *m, *v;
    size_t n;
    long step;
} adam_state;

static void run_adam(void *arg) {
    adam_state *s = arg;
    vr_adam opt = {1e-3f, 0.9f, 0.999f, 1e-8f};
    vr_adam_f32(s->p, s->g, s->m, s->v, s->n, &opt, ++s->step);
}

static float *filled(size_t n) {
    float *x = malloc(n * sizeof *x);
    if (!x) {
        fprintf(stderr, "step_floor: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 13) * 0.01f - 0.06f;
    return x;
}

int main(int argc, char **argv) {
    long params = 0, batch = 0;
    if (scanf(" params %ld batch %ld", &params, &batch) != 2 || params <= 0 || batch <= 0) {
        fprintf(stderr, "step_floor: expected \"params P batch B\" first (bench/step_flops.py --shapes)\n");
        return 1;
    }
    static vr_gemm_job jobs[MAX_PRODUCTS];
    static int with_previous[MAX_PRODUCTS];
    int count = 0;
    for (;;) {
        int m, n, k, ta, tb, prev;
        int got = scanf(" %d %d %d %d %d %d", &m, &n, &k, &ta, &tb, &prev);
        if (got == EOF) break;
        if (got != 6 || m <= 0 || n <= 0 || k <= 0 || count == MAX_PRODUCTS) {
            fprintf(stderr, "step_floor: product %d: expected \"M N K TRANS_A TRANS_B GROUP\"\n", count + 1);
            return 1;
        }
        /* operands of their own, compact: A is m x k (k x m transposed), B k x n (n x k) */
        jobs[count] = (vr_gemm_job){ta, tb, m, n, k, ta ? m : k, tb ? k : n, n, 0,
                                    filled((size_t)m * k), filled((size_t)k * n), filled((size_t)m * n)};
        with_previous[count] = prev && count > 0;
        count++;
    }
    vr_set_threads(argc > 1 ? atoi(argv[1]) : 0);
    double products = 0;
    for (int i = 0; i < count;) {
        group g = {&jobs[i], 1};
        while (i + g.count < count && with_previous[i + g.count]) g.count++;
        products += median_time(run_group, &g);
        i += g.count;
    }
    adam_state s = {filled((size_t)params), filled((size_t)params), calloc((size_t)params, sizeof(float)),
                    calloc((size_t)params, sizeof(float)), (size_t)params, 0};
    double adam = median_time(run_adam, &s);
    double floor = products + adam;
    printf("%.3f %.3f %.3f %.0f\n", products * 1e3, adam * 1e3, floor * 1e3, batch / floor);
    return 0;
}
