/* Both cores for the training step: a fixed team of threads that the matrix
 * products and Adam split their work over (vaec's own build only: emitted C
 * leaves threading to its BLAS).
 *
 * Why not the BLAS's own threads: OpenBLAS's workers spin in sched_yield while
 * the main thread runs the step's elementwise code and Adam alone, and they
 * parallelise only the products.  Here OpenBLAS runs single-threaded inside each
 * member, a product is cut into column (or row) blocks of the output, Adam into
 * blocks of the parameter buffer.  The cuts depend on shapes and the machine,
 * not on the thread count, so training gives bit-identical parameters on 1, 2
 * or 16 threads (tests/e2e.sh checks 1 and 2).
 *
 * Members spin (pause) between jobs for about a millisecond, so that the short
 * gaps inside a step cost no system call, then sleep on a condition variable. */
#include "vae/runtime.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#ifdef VAE_USE_CBLAS
#include <cblas.h>
#endif

#define TEAM_MAX 64
#define SPIN_ROUNDS 20000 /* pause instructions before a member sleeps: about 1 ms */

typedef void (*team_fn)(void *arg, int part, int nparts);

static struct {
    int size; /* members, the caller included; 1: no team */
    team_fn fn;
    void *arg;
    atomic_uint generation; /* bumped once per job */
    atomic_int running;     /* members still working on the current job */
    atomic_int sleepers;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
} team = {.size = 1, .mutex = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *member_main(void *arg) {
    int part = (int)(intptr_t)arg;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load(&team.generation)) == seen) {
            if (++spins < SPIN_ROUNDS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&team.mutex);
            atomic_fetch_add(&team.sleepers, 1); /* seq_cst: the caller sees it, or we see its new generation */
            while (atomic_load(&team.generation) == seen) pthread_cond_wait(&team.wake, &team.mutex);
            atomic_fetch_sub(&team.sleepers, 1);
            pthread_mutex_unlock(&team.mutex);
            spins = 0;
        }
        seen = g;
        team.fn(team.arg, part, team.size);
        atomic_fetch_sub_explicit(&team.running, 1, memory_order_release);
    }
    return NULL;
}

/* Runs fn(arg, part, size) for every part at once, part 0 on the calling thread. */
static void team_run(team_fn fn, void *arg) {
    if (team.size <= 1) {
        fn(arg, 0, 1);
        return;
    }
    team.fn = fn;
    team.arg = arg;
    atomic_store(&team.running, team.size - 1);
    atomic_fetch_add(&team.generation, 1);
    if (atomic_load(&team.sleepers) > 0) {
        pthread_mutex_lock(&team.mutex);
        pthread_cond_broadcast(&team.wake);
        pthread_mutex_unlock(&team.mutex);
    }
    fn(arg, 0, team.size);
    while (atomic_load_explicit(&team.running, memory_order_acquire) > 0) cpu_relax();
}

/* CPUs online, read once */
static int machine_cpus(void) {
    static int cpus;
    if (cpus == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cpus = n < 1 ? 1 : n > TEAM_MAX ? TEAM_MAX : (int)n;
    }
    return cpus;
}

int vr_threads(void) { return team.size; }

void vr_set_threads(int n) {
    if (n <= 0) n = machine_cpus();
    if (n > TEAM_MAX) n = TEAM_MAX;
#ifdef VAE_USE_CBLAS
    openblas_set_num_threads(1); /* the team splits the products; the BLAS must not split them again */
#endif
    while (team.size < n) { /* the team only grows: members are never stopped */
        pthread_t t;
        if (pthread_create(&t, NULL, member_main, (void *)(intptr_t)team.size) != 0) break;
        pthread_detach(t);
        team.size++;
    }
}

/* ---- parts of a job: [begin, end) of n, in blocks of `align` */
static void part_range(long n, long align, int part, int nparts, long *begin, long *end) {
    long blocks = (n + align - 1) / align;
    *begin = blocks * part / nparts * align;
    *end = blocks * (part + 1) / nparts * align;
    if (*begin > n) *begin = n;
    if (*end > n) *end = n;
}

/* ---- matrix products: C[M,N] = op(A) op(B), cut along the longer side of C */
typedef struct {
    int ta, tb, m, n, k, lda, ldb, ldc, f64;
    const void *a, *b;
    void *c;
} gemm_job;

static void gemm_part(void *arg, int part, int nparts) {
    const gemm_job *j = arg;
    size_t es = j->f64 ? sizeof(double) : sizeof(float);
    const char *a = j->a, *b = j->b;
    char *c = j->c;
    int m = j->m, n = j->n;
    long begin, end;
    if (j->m >= j->n) { /* rows of C: rows of op(A) */
        part_range(j->m, 16, part, nparts, &begin, &end);
        a += (size_t)(j->ta ? begin : begin * j->lda) * es;
        c += (size_t)(begin * j->ldc) * es;
        m = (int)(end - begin);
    } else { /* columns of C: columns of op(B) */
        part_range(j->n, 16, part, nparts, &begin, &end);
        b += (size_t)(j->tb ? begin * j->ldb : begin) * es;
        c += (size_t)begin * es;
        n = (int)(end - begin);
    }
    if (m <= 0 || n <= 0) return;
    if (j->f64)
        vr_gemm1_f64(j->ta, j->tb, m, n, j->k, (const double *)a, j->lda, (const double *)b, j->ldb, (double *)c, j->ldc);
    else
        vr_gemm1_f32(j->ta, j->tb, m, n, j->k, (const float *)a, j->lda, (const float *)b, j->ldb, (float *)c, j->ldc);
}

/* A product is cut into a number of parts that depends on its shape and the
 * machine's CPU count, never on the team's size: OpenBLAS's kernels sum an
 * output element in an order that can depend on the block it is in (measured:
 * the Zen kernels of 0.3.21 change the bits when the columns are cut anywhere,
 * the AVX-512 ones do not), so the cut must not move with --threads.  The team
 * deals the parts out; one thread computes them all in turn.  No part has
 * fewer multiply-adds than GEMM_PART_MIN: smaller ones are not worth waking the
 * team for. */
#define GEMM_PART_MIN (1L << 21)

typedef struct {
    gemm_job *job;
    int parts;
} gemm_deal;

static void gemm_member(void *arg, int member, int members) {
    const gemm_deal *d = arg;
    for (int part = member; part < d->parts; part += members) gemm_part(d->job, part, d->parts);
}

static void gemm(gemm_job *j) {
    long work = (long)j->m * j->n * j->k;
    long side = j->m >= j->n ? j->m : j->n;
    long parts = machine_cpus();
    if (parts > work / GEMM_PART_MIN) parts = work / GEMM_PART_MIN;
    if (parts > side / 16) parts = side / 16;
    if (parts <= 1) {
        gemm_part(j, 0, 1);
        return;
    }
    gemm_deal d = {j, (int)parts};
    team_run(gemm_member, &d);
}

void vr_gemm_f32(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                 int ldc) {
    gemm_job j = {ta, tb, m, n, k, lda, ldb, ldc, 0, a, b, c};
    gemm(&j);
}

void vr_gemm_f64(int ta, int tb, int m, int n, int k, const double *a, int lda, const double *b, int ldb, double *c,
                 int ldc) {
    gemm_job j = {ta, tb, m, n, k, lda, ldb, ldc, 1, a, b, c};
    gemm(&j);
}

/* ---- Adam over blocks of the flat buffers */
typedef struct {
    float *p, *m, *v;
    const float *g;
    size_t n;
    const vr_adam *opt;
    long step;
} adam_job;

static void adam_part(void *arg, int part, int nparts) {
    const adam_job *j = arg;
    long begin, end;
    part_range((long)j->n, 64, part, nparts, &begin, &end);
    if (end > begin)
        vr_adam1_f32(j->p + begin, j->g + begin, j->m + begin, j->v + begin, (size_t)(end - begin), j->opt, j->step);
}

void vr_adam_f32(float *p, const float *g, float *m, float *v, size_t n, const vr_adam *opt, long step) {
    adam_job j = {p, m, v, g, n, opt, step};
    if (team.size <= 1 || n < 65536) adam_part(&j, 0, 1);
    else team_run(adam_part, &j);
}
