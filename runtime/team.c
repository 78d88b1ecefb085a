/* Both cores for the training step: a fixed team of threads that the matrix
 * products and Adam split their work over (built with VAE_TEAM: vaec always,
 * emitted C when it uses a BLAS, unless -DVAE_NO_TEAM).
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

#ifdef VAE_TEAM

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
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
    unsigned fp_mode; /* the caller's floating-point mode (MXCSR), set with the job */
    pthread_mutex_t mutex;
    pthread_cond_t wake;
} team = {.size = 1, .mutex = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* A member computes in the caller's floating-point mode: a thread keeps the mode
 * it was created with, and training flushes denormals (vr_flush_denormals) after
 * the team exists; a part computed without flushing would change bits and speed. */
#define MXCSR_CONTROL 0xffc0u /* DAZ, exception masks, rounding, FTZ; not the sticky flags */

static inline unsigned fp_mode(void) {
#if defined(__x86_64__) || defined(__i386__)
    return _mm_getcsr() & MXCSR_CONTROL;
#else
    return 0;
#endif
}

static inline void adopt_fp_mode(unsigned mode) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned now = _mm_getcsr();
    if ((now & MXCSR_CONTROL) != mode) _mm_setcsr((now & ~MXCSR_CONTROL) | mode);
#else
    (void)mode;
#endif
}

static void *member_main(void *arg) {
    int part = (int)(intptr_t)arg;
    unsigned seen = 0;
    vr_blas_single_thread();
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
        adopt_fp_mode(team.fp_mode);
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
    team.fp_mode = fp_mode();
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

int vr_threads(void) { return team.size; }

void vr_set_threads(int n) {
    if (n <= 0) n = vr_cpus();
    if (n > TEAM_MAX) n = TEAM_MAX;
    vr_blas_single_thread(); /* the team splits the products; the library must not split them again */
    while (team.size < n) { /* the team only grows: members are never stopped */
        pthread_t t;
        if (pthread_create(&t, NULL, member_main, (void *)(intptr_t)team.size) != 0) break;
        pthread_detach(t);
        team.size++;
    }
}

/* ---- matrix products: their parts (gemm.c) dealt out to the members */
static void gemm_member(void *arg, int member, int members) {
    const vr_gemm_job *j = arg;
    int parts = vr_gemm_parts(j);
    for (int part = member; part < parts; part += members) vr_gemm_part(j, part, parts);
}

static void gemm(const vr_gemm_job *j) {
    if (vr_gemm_parts(j) == 1) vr_gemm_part(j, 0, 1);
    else team_run(gemm_member, (void *)j);
}

void vr_gemm_f32(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                 int ldc) {
    vr_gemm_job j = {ta, tb, m, n, k, lda, ldb, ldc, 0, a, b, c};
    gemm(&j);
}

void vr_gemm_f64(int ta, int tb, int m, int n, int k, const double *a, int lda, const double *b, int ldb, double *c,
                 int ldc) {
    vr_gemm_job j = {ta, tb, m, n, k, lda, ldb, ldc, 1, a, b, c};
    gemm(&j);
}

/* ---- products at once: every part of every job in one list, largest first,
 * taken by whichever member is free (a counter), so a member that drew a small
 * part goes on to the next instead of waiting */
#define GROUP_JOBS_MAX 8
#define GROUP_PARTS_MAX (GROUP_JOBS_MAX * TEAM_MAX)

typedef struct {
    const vr_gemm_job *jobs;
    int count;
    struct {
        short job, part, parts;
        long work;
    } list[GROUP_PARTS_MAX];
    atomic_int next;
} gemm_group;

static void group_member(void *arg, int member, int members) {
    (void)member;
    (void)members;
    gemm_group *g = arg;
    for (int i; (i = atomic_fetch_add_explicit(&g->next, 1, memory_order_relaxed)) < g->count;)
        vr_gemm_part(&g->jobs[g->list[i].job], g->list[i].part, g->list[i].parts);
}

void vr_gemm_jobs(const vr_gemm_job *jobs, int n) {
    if (team.size <= 1 || n == 1) {
        for (int i = 0; i < n; i++) gemm(&jobs[i]);
        return;
    }
    if (n > GROUP_JOBS_MAX) { /* in turn, GROUP_JOBS_MAX at a time */
        vr_gemm_jobs(jobs, GROUP_JOBS_MAX);
        vr_gemm_jobs(jobs + GROUP_JOBS_MAX, n - GROUP_JOBS_MAX);
        return;
    }
    gemm_group g;
    g.jobs = jobs;
    g.count = 0;
    atomic_init(&g.next, 0);
    for (int i = 0; i < n; i++) {
        int parts = vr_gemm_parts(&jobs[i]);
        long work = (long)jobs[i].m * jobs[i].n * jobs[i].k / parts;
        for (int p = 0; p < parts; p++) { /* insertion, keeping the list by decreasing work */
            int at = g.count++;
            while (at > 0 && g.list[at - 1].work < work) {
                g.list[at] = g.list[at - 1];
                at--;
            }
            g.list[at].job = (short)i;
            g.list[at].part = (short)p;
            g.list[at].parts = (short)parts;
            g.list[at].work = work;
        }
    }
    team_run(group_member, &g);
}

/* ---- work whose units are independent (elementwise: Adam, the generated
 * kernels, the batch gather), in chunks taken by whichever member is free.
 * The two vCPUs of a shared machine do not always run at one speed (measured:
 * equal halves of Adam took 20-30% longer on the member in some runs, the same
 * time in others); chunks let the faster thread do more.  Where a chunk ends
 * changes no unit's arithmetic, so the bits do not depend on it. */
typedef struct {
    vr_range_fn fn;
    const void *arg;
    long units, chunk;
    atomic_long next;
} chunked_job;

static void chunked_member(void *arg, int member, int members) {
    (void)member;
    (void)members;
    chunked_job *j = arg;
    for (long lo; (lo = atomic_fetch_add_explicit(&j->next, j->chunk, memory_order_relaxed)) < j->units;)
        j->fn(j->arg, lo, lo + j->chunk < j->units ? lo + j->chunk : j->units);
}

/* fn over [0, units) in chunks of `align`-multiples, about `per_member` chunks per member */
static void run_chunked(vr_range_fn fn, const void *arg, long units, long align, int per_member) {
    long chunks = (long)team.size * per_member;
    long chunk = (units + chunks - 1) / chunks;
    chunk = (chunk + align - 1) / align * align;
    chunked_job j = {fn, arg, units, chunk > 0 ? chunk : 1, 0};
    team_run(chunked_member, &j);
}

/* ---- Adam over blocks of the flat buffers */
typedef struct {
    float *p, *m, *v;
    const float *g;
    const vr_adam *opt;
    long step;
} adam_job;

static void adam_range(const void *arg, long lo, long hi) {
    const adam_job *j = arg;
    vr_adam1_f32(j->p + lo, j->g + lo, j->m + lo, j->v + lo, (size_t)(hi - lo), j->opt, j->step);
}

void vr_adam_f32(float *p, const float *g, float *m, float *v, size_t n, const vr_adam *opt, long step) {
    adam_job j = {p, m, v, g, opt, step};
    if (team.size <= 1 || n < 65536) adam_range(&j, 0, (long)n);
    else run_chunked(adam_range, &j, (long)n, 64, 8);
}

/* ---- generated elementwise kernels over ranges of their rows */
void vr_split(vr_range_fn fn, const void *arg, long units) {
    if (team.size <= 1) fn(arg, 0, units);
    else run_chunked(fn, arg, units, 1, 4);
}

#else /* no team: one call over the whole range */

void vr_split(vr_range_fn fn, const void *arg, long units) { fn(arg, 0, units); }

#endif /* VAE_TEAM */
