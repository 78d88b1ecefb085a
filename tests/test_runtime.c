/* Runtime unit tests: the RNG against known answers, every kernel against
 * naive loops, the optimisers against their formulas, the data readers on
 * good and broken files, and checkpoints. */
#include <math.h>
#include <pthread.h>
#include <unistd.h>
#include <zlib.h>

#include "tests/testutil.h"
#include "vae/driver.h"
#include "vae/runtime.h"
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

/* ---- Philox4x32-10: the known-answer vectors of Random123 (kat_vectors) */
static void test_philox_known_answers(void) {
    struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        vr_philox_block c = {{kat[i].ctr[0], kat[i].ctr[1], kat[i].ctr[2], kat[i].ctr[3]}};
        vr_philox_block r = vr_philox4x32(c, kat[i].key[0], kat[i].key[1]);
        for (int k = 0; k < 4; k++) CU_ASSERT_EQUAL(r.v[k], kat[i].out[k]);
    }
}

/* Noise depends on (seed, step, example, sample, stream, column) only: the
 * same element computed in a different call layout is bit-identical. */
static void test_noise_is_keyed_not_ordered(void) {
    enum { R = 12, C = 7, G = 3 };
    float all[R * C], part[R * C];
    vr_ctx ctx = {.seed = 42, .step = 7, .example0 = 100, .sample0 = 0};
    vr_noise_normal_f32(&ctx, all, R, C, G, 1);
    /* the last two examples alone, with example0 moved accordingly */
    vr_ctx ctx2 = {.seed = 42, .step = 7, .example0 = 102, .sample0 = 0};
    vr_noise_normal_f32(&ctx2, part, 2 * G, C, G, 1);
    CU_ASSERT_EQUAL(memcmp(all + 2 * G * C, part, sizeof(float) * 2 * G * C), 0);
    /* samples 1..2 of each example with sample0 = 1 and group 2 */
    vr_ctx ctx3 = {.seed = 42, .step = 7, .example0 = 100, .sample0 = 1};
    vr_noise_normal_f32(&ctx3, part, 4 * 2, C, 2, 1);
    for (int e = 0; e < 4; e++)
        for (int s = 0; s < 2; s++)
            CU_ASSERT_EQUAL(memcmp(all + (e * G + s + 1) * C, part + (e * 2 + s) * C, sizeof(float) * C), 0);
    /* another stream, step or seed gives other numbers */
    vr_noise_normal_f32(&ctx, part, R, C, G, 2);
    CU_ASSERT_NOT_EQUAL(memcmp(all, part, sizeof all), 0);
    vr_ctx ctx4 = {.seed = 43, .step = 7, .example0 = 100, .sample0 = 0};
    vr_noise_normal_f32(&ctx4, part, R, C, G, 1);
    CU_ASSERT_NOT_EQUAL(memcmp(all, part, sizeof all), 0);
}

static void test_noise_is_standard_normal(void) {
    enum { N = 200000 };
    double *x = malloc(sizeof(double) * N);
    vr_ctx ctx = {.seed = 1, .step = 0, .example0 = 0, .sample0 = 0};
    vr_noise_normal_f64(&ctx, x, N / 10, 10, 1, 0);
    double s = 0, s2 = 0, s4 = 0;
    for (int i = 0; i < N; i++) {
        s += x[i];
        s2 += x[i] * x[i];
        s4 += x[i] * x[i] * x[i] * x[i];
    }
    double mean = s / N, var = s2 / N - mean * mean, kurt = s4 / N;
    CU_ASSERT(fabs(mean) < 5 * sqrt(1.0 / N));
    CU_ASSERT(fabs(var - 1) < 5 * sqrt(2.0 / N));
    CU_ASSERT(fabs(kurt - 3) < 5 * sqrt(96.0 / N));
    free(x);
}

/* Float uniforms stay strictly below 1: at seed 0, step 3037, stream 0, draw 6597 of a 50 x 200
 * block is 1 - 3.8e-9 in double, which rounds to 1.0f (relax's log(1 - v) was -inf there and
 * its gradient NaN); it is the largest float below 1, and every other draw is its double's
 * float, bit for bit. */
static void test_float_uniform_below_one(void) {
    enum { R = 50, C = 200, AT = 6597 };
    static double d[R * C];
    static float f[R * C];
    vr_ctx ctx = {.seed = 0, .step = 3037, .example0 = 0, .sample0 = 0};
    vr_noise_uniform_f64(&ctx, d, R, C, 1, 0);
    vr_noise_uniform_f32(&ctx, f, R, C, 1, 0);
    CU_ASSERT_EQUAL((float)d[AT], 1.0f); /* the case: a double below 1 that rounds up */
    CU_ASSERT_EQUAL(f[AT], 0x1.fffffep-1f);
    for (int i = 0; i < R * C; i++) {
        CU_ASSERT(f[i] > 0.0f && f[i] < 1.0f);
        if (i != AT) CU_ASSERT_EQUAL(f[i], (float)d[i]);
    }
}

static void test_uniform_and_shuffle(void) {
    double s = 0;
    for (int i = 0; i < 100000; i++) {
        double u = vr_uniform(5, 3, (uint64_t)i);
        CU_ASSERT(u >= 0 && u < 1);
        s += u;
    }
    CU_ASSERT(fabs(s / 100000 - 0.5) < 0.005);
    int idx[1000], seen[1000] = {0}, same = 0, other[1000];
    vr_shuffle(idx, 1000, 9, 1);
    for (int i = 0; i < 1000; i++) seen[idx[i]]++;
    for (int i = 0; i < 1000; i++) CU_ASSERT_EQUAL(seen[i], 1);
    vr_shuffle(other, 1000, 9, 2);
    for (int i = 0; i < 1000; i++) same += idx[i] == other[i];
    CU_ASSERT(same < 20); /* a new epoch is a new order */
}

/* ---- GEMM against a naive triple loop, every transposition */
static void test_gemm_against_naive(void) {
    enum { M = 13, N = 7, K = 9 };
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            float a[M * K], b[K * N], c[M * N];
            double ad[M * K], bd[K * N], cd[M * N];
            for (int i = 0; i < M * K; i++) ad[i] = a[i] = (float)(vr_uniform(1, 1, (uint64_t)i) - 0.5);
            for (int i = 0; i < K * N; i++) bd[i] = b[i] = (float)(vr_uniform(1, 2, (uint64_t)i) - 0.5);
            int lda = ta ? M : K, ldb = tb ? K : N;
            vr_gemm_f32(ta, tb, M, N, K, a, lda, b, ldb, c, N);
            vr_gemm_f64(ta, tb, M, N, K, ad, lda, bd, ldb, cd, N);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double ref = 0;
                    for (int k = 0; k < K; k++)
                        ref += (double)(ta ? a[k * lda + i] : a[i * lda + k]) * (double)(tb ? b[j * ldb + k] : b[k * ldb + j]);
                    CU_ASSERT(fabs(c[i * N + j] - ref) < 1e-5);
                    CU_ASSERT(fabs(cd[i * N + j] - ref) < 1e-6);
                }
        }
}

/* ---- the thread team computes with the caller's floating-point mode: a product whose
 * results are all denormal is flushed to zero in every part when the caller flushes
 * denormals (training does), whichever thread computed the part */
static void test_team_keeps_callers_fp_mode(void) {
    enum { M = 64, N = 256, K = 512 }; /* 8M multiply-adds: cut into parts on 2 CPUs or more */
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N), *c = malloc(sizeof(float) * M * N);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a && b && c);
    for (int i = 0; i < M * K; i++) a[i] = 1e-20f;
    for (int i = 0; i < K * N; i++) b[i] = 1e-20f; /* each product 1e-40, each sum ~5e-38: denormal */
    vr_set_threads(2);                             /* members made before the mode is set */
    vr_gemm_f32(0, 0, M, N, K, a, K, b, N, c, N);
    int denormal = 0;
    for (int i = 0; i < M * N; i++) denormal += c[i] != 0;
    CU_ASSERT_EQUAL(denormal, M * N); /* sanity: without flushing they are not zero */
#if defined(__x86_64__) || defined(__i386__)
    unsigned saved = _mm_getcsr();
    vr_flush_denormals();
    vr_gemm_f32(0, 0, M, N, K, a, K, b, N, c, N);
    _mm_setcsr(saved);
    int nonzero = 0;
    for (int i = 0; i < M * N; i++) nonzero += c[i] != 0;
    CU_ASSERT_EQUAL(nonzero, 0);
#endif
    free(a), free(b), free(c);
}

/* ---- products at once (vr_gemm_jobs, the plan's groups) give the bits of the same
 * products one after another, including more jobs than one call takes */
static void test_gemm_jobs_match_products_in_turn(void) {
    enum { JOBS = 10 };
    static const int shape[JOBS][3] = {{64, 256, 512}, {128, 20, 400}, {20, 400, 128}, {400, 784, 128},
                                       {128, 400, 784}, {7, 5, 3}, {1, 784, 10}, {33, 65, 17},
                                       {256, 64, 64}, {16, 16, 1}};
    vr_set_threads(2);
    vr_gemm_job jobs[JOBS];
    float *a[JOBS], *b[JOBS], *together[JOBS], *in_turn[JOBS];
    for (int j = 0; j < JOBS; j++) {
        int m = shape[j][0], n = shape[j][1], k = shape[j][2], ta = j % 2, tb = j / 2 % 2;
        a[j] = malloc(sizeof(float) * (size_t)(m * k));
        b[j] = malloc(sizeof(float) * (size_t)(k * n));
        together[j] = calloc((size_t)(m * n), sizeof(float));
        in_turn[j] = calloc((size_t)(m * n), sizeof(float));
        CU_ASSERT_PTR_NOT_NULL_FATAL(a[j] && b[j] && together[j] && in_turn[j]);
        for (int i = 0; i < m * k; i++) a[j][i] = (float)(vr_uniform(3, (uint32_t)j, (uint64_t)i) - 0.5);
        for (int i = 0; i < k * n; i++) b[j][i] = (float)(vr_uniform(4, (uint32_t)j, (uint64_t)i) - 0.5);
        jobs[j] = (vr_gemm_job){ta, tb, m, n, k, ta ? m : k, tb ? k : n, n, 0, a[j], b[j], together[j]};
        vr_gemm_f32(ta, tb, m, n, k, a[j], ta ? m : k, b[j], tb ? k : n, in_turn[j], n);
    }
    vr_gemm_jobs(jobs, JOBS);
    for (int j = 0; j < JOBS; j++) {
        CU_ASSERT(memcmp(together[j], in_turn[j], sizeof(float) * (size_t)(shape[j][0] * shape[j][1])) == 0);
        free(a[j]), free(b[j]), free(together[j]), free(in_turn[j]);
    }
}

/* ---- vr_split: every unit computed once, and on both threads of a team of two
 * (the first chunk waits, up to a second, for a chunk on another thread: chunks go
 * to whichever thread is free, so only a member that never ran could fail it) */
typedef struct {
    int *count;
    pthread_mutex_t lock;
    pthread_t first;
    int calls, others;
} split_probe;

static void count_units(const void *arg, long lo, long hi) {
    split_probe *p = (split_probe *)arg;
    pthread_mutex_lock(&p->lock);
    int first = p->calls++ == 0;
    if (first) p->first = pthread_self();
    else if (!pthread_equal(p->first, pthread_self())) p->others++;
    for (long i = lo; i < hi; i++) p->count[i]++;
    pthread_mutex_unlock(&p->lock);
    for (int waited = 0; first && waited < 1000; waited++) {
        pthread_mutex_lock(&p->lock);
        int seen = p->others;
        pthread_mutex_unlock(&p->lock);
        if (seen) break;
        usleep(1000);
    }
}

static void test_split_covers_every_unit_once(void) {
    vr_set_threads(2);
    static const long units[] = {1, 2, 3, 127, 128, 1000};
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        long n = units[u];
        split_probe p = {.count = calloc((size_t)n, sizeof(int)), .lock = PTHREAD_MUTEX_INITIALIZER};
        CU_ASSERT_PTR_NOT_NULL_FATAL(p.count);
        vr_split(count_units, &p, n);
        int once = 0;
        for (long i = 0; i < n; i++) once += p.count[i] == 1;
        CU_ASSERT_EQUAL(once, n);
        if (n >= 2 && vr_threads() == 2) CU_ASSERT(p.others > 0); /* the member took a chunk */
        free(p.count);
    }
}

/* ---- optimisers against their textbook formulas */
static void test_adam_against_formula(void) {
    float p[3] = {1, -2, 0.5f}, g[3] = {0.1f, -0.3f, 0}, m[3] = {0}, v[3] = {0};
    vr_adam o = {0.01f, 0.9f, 0.999f, 1e-8f};
    double pr[3] = {1, -2, 0.5}, mr[3] = {0}, vr[3] = {0};
    for (long t = 1; t <= 3; t++) {
        vr_adam_f32(p, g, m, v, 3, &o, t);
        for (int i = 0; i < 3; i++) {
            mr[i] = 0.9 * mr[i] + 0.1 * g[i];
            vr[i] = 0.999 * vr[i] + 0.001 * (double)g[i] * g[i];
            double mh = mr[i] / (1 - pow(0.9, (double)t)), vh = vr[i] / (1 - pow(0.999, (double)t));
            pr[i] -= 0.01 * mh / (sqrt(vh) + 1e-8);
        }
    }
    for (int i = 0; i < 3; i++) CU_ASSERT(fabs(p[i] - pr[i]) < 1e-5);
    CU_ASSERT(fabs(p[2] - 0.5) < 1e-7); /* zero gradient, no move */
}

static void test_sgd_momentum(void) {
    float p[2] = {1, 1}, g[2] = {1, -1}, vel[2] = {0};
    vr_sgd_f32(p, g, vel, 2, 0.1f, 0.9f);
    vr_sgd_f32(p, g, vel, 2, 0.1f, 0.9f);
    CU_ASSERT(fabs(p[0] - (1 - 0.1 - 0.19)) < 1e-6);
    CU_ASSERT(fabs(p[1] - (1 + 0.1 + 0.19)) < 1e-6);
}

static void test_logsumexp(void) {
    double x[3] = {1000, 1000, 1000};
    CU_ASSERT(fabs(vr_logsumexp(x, 3) - (1000 + log(3))) < 1e-9);
    double y[2] = {-1e4, log(2)};
    CU_ASSERT(fabs(vr_logsumexp(y, 2) - log(2)) < 1e-12);
}

/* ---- data readers */
static void be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX file of n images of 2x3 bytes: value (i * 6 + j) * 20 % 256. */
static size_t make_idx(unsigned char *buf, int n) {
    buf[0] = buf[1] = 0;
    buf[2] = 0x08;
    buf[3] = 3;
    be32(buf + 4, (uint32_t)n);
    be32(buf + 8, 2);
    be32(buf + 12, 3);
    for (int i = 0; i < n * 6; i++) buf[16 + i] = (unsigned char)(i * 20 % 256);
    return 16 + (size_t)n * 6;
}

static void test_idx_plain_and_gzip(void) {
    unsigned char buf[256];
    size_t n = make_idx(buf, 4);
    const char *plain = tmp_path(".idx"), *gz = tmp_path(".idx.gz");
    write_file(plain, buf, n);
    gzFile f = gzopen(gz, "wb");
    gzwrite(f, buf, (unsigned)n);
    gzclose(f);
    char err[512];
    for (int k = 0; k < 2; k++) {
        vr_dataset ds;
        CU_ASSERT_EQUAL_FATAL(vr_data_load(&ds, k ? gz : plain, NULL, 6, 1, err, sizeof err), 0);
        CU_ASSERT_EQUAL(ds.n, 4);
        float x[12];
        int idx[2] = {3, 0};
        vr_data_gather_f32(&ds, idx, 2, x);
        for (int j = 0; j < 6; j++) {
            CU_ASSERT_EQUAL(x[j], (float)(((18 + j) * 20 % 256) >= 128)); /* binarised at half the range */
            CU_ASSERT_EQUAL(x[6 + j], (float)((j * 20) >= 128));
        }
        vr_data_free(&ds);
        /* real data: scaled to [0, 1] */
        CU_ASSERT_EQUAL_FATAL(vr_data_load(&ds, k ? gz : plain, NULL, 6, 0, err, sizeof err), 0);
        vr_data_gather_f32(&ds, idx, 1, x);
        CU_ASSERT(fabs(x[1] - (19 * 20 % 256) / 255.0) < 1e-6);
        vr_data_free(&ds);
    }
    remove(plain);
    remove(gz);
}

/* gzip as the data sets ship it, and as users make it: several members one after
 * another (cat a.gz b.gz) read as one file; a corrupt or cut-off file is an error
 * that names the file.  Rows of 21 values: whole bytes of bits and a tail. */
static size_t make_wide_idx(unsigned char *buf, int n, int dim) {
    buf[0] = buf[1] = 0;
    buf[2] = 0x08;
    buf[3] = 2;
    be32(buf + 4, (uint32_t)n);
    be32(buf + 8, (uint32_t)dim);
    uint32_t state = 12345;
    for (int i = 0; i < n * dim; i++) {
        state = state * 1103515245u + 12345u;
        buf[12 + i] = (unsigned char)(state >> 23);
    }
    return 12 + (size_t)n * (size_t)dim;
}

static void gz_file(const char *path, const unsigned char *data, size_t n) {
    gzFile f = gzopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(gzwrite(f, data, (unsigned)n), (int)n);
    gzclose(f);
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static unsigned char buf[1 << 16];
    *n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

static void test_gzip_members_corruption_and_wide_rows(void) {
    enum { N = 200, DIM = 21 };
    static unsigned char idx[12 + N * DIM], joined[1 << 17];
    size_t n = make_wide_idx(idx, N, DIM), cut = 12 + 77 * DIM + 5, len1, len2;
    const char *part = tmp_path(".gz"), *path = tmp_path(".idx.gz");
    gz_file(part, idx, cut); /* two members: the header and 77.x rows, then the rest */
    const unsigned char *bytes = slurp(part, &len1);
    memcpy(joined, bytes, len1);
    gz_file(part, idx + cut, n - cut);
    bytes = slurp(part, &len2);
    memcpy(joined + len1, bytes, len2);
    write_file(path, joined, len1 + len2);
    char err[512];
    vr_dataset ds;
    CU_ASSERT_EQUAL_FATAL(vr_data_load(&ds, path, NULL, DIM, 1, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ds.n, N);
    float x[DIM];
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        vr_data_gather_f32(&ds, &i, 1, x);
        for (int j = 0; j < DIM; j++) wrong += x[j] != (float)(idx[12 + i * DIM + j] >= 128);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    vr_data_free(&ds);
    /* one member, a byte of its compressed data flipped; then cut in half */
    gz_file(path, idx, n);
    size_t len;
    unsigned char *gz = slurp(path, &len);
    gz[len / 2] ^= 0x5a;
    write_file(path, gz, len);
    CU_ASSERT_EQUAL(vr_data_load(&ds, path, NULL, DIM, 1, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot read"));
    gz[len / 2] ^= 0x5a;
    write_file(path, gz, len / 2);
    CU_ASSERT_EQUAL(vr_data_load(&ds, path, NULL, DIM, 1, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT(strstr(err, "truncated") != NULL || strstr(err, "cannot read") != NULL);
    remove(part);
    remove(path);
}

static void expect_load_error(const char *path, int dim, const char *needle) {
    vr_dataset ds;
    char err[512] = "";
    CU_ASSERT_EQUAL(vr_data_load(&ds, path, NULL, dim, 1, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path)); /* the message names the file */
    if (!strstr(err, needle)) fprintf(stderr, "\n  got: %s\n  wanted: %s\n", err, needle);
}

static void test_idx_errors(void) {
    unsigned char buf[256];
    size_t n = make_idx(buf, 4);
    const char *p = tmp_path(".idx");
    write_file(p, buf, n - 5);
    expect_load_error(p, 6, "truncated");
    write_file(p, buf, n);
    expect_load_error(p, 5, "each example has 6 values, but the model's data declares 5");
    buf[0] = 0x42;
    write_file(p, buf, n);
    expect_load_error(p, 6, "not an IDX file");
    write_file(p, buf, 2);
    expect_load_error(p, 6, "not an IDX file");
    remove(p);
    expect_load_error("/nonexistent/x.idx", 6, "cannot open");
    expect_load_error("data.parquet", 6, "unknown kind of data source");
    char err[512];
    vr_dataset ds;
    CU_ASSERT_EQUAL(vr_data_load(&ds, "fashion-mnist:validation", NULL, 784, 1, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown data set split"));
    CU_ASSERT_EQUAL(vr_data_load(&ds, "fashion-mnist:train", "/nonexistent", 784, 1, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not found in /nonexistent"));
}

static void test_npy(void) {
    const char *p = tmp_path(".npy");
    char header[128];
    int hl = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
    while ((10 + hl + 1) % 64) header[hl++] = ' ';
    header[hl++] = '\n';
    unsigned char buf[256];
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)hl;
    buf[9] = 0;
    memcpy(buf + 10, header, (size_t)hl);
    float v[6] = {0.1f, 0.6f, 0.9f, 0.4f, 0.5f, 1.0f};
    memcpy(buf + 10 + hl, v, sizeof v);
    write_file(p, buf, 10 + (size_t)hl + sizeof v);
    vr_dataset ds;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(vr_data_load(&ds, p, NULL, 3, 0, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ds.n, 2);
    float x[3];
    int one = 1;
    vr_data_gather_f32(&ds, &one, 1, x);
    CU_ASSERT_EQUAL(x[0], 0.4f);
    vr_data_free(&ds);
    CU_ASSERT_EQUAL_FATAL(vr_data_load(&ds, p, NULL, 3, 1, err, sizeof err), 0);
    vr_data_gather_f32(&ds, &one, 1, x);
    CU_ASSERT(x[0] == 0 && x[1] == 0 && x[2] == 1);
    vr_data_free(&ds);
    expect_load_error(p, 4, "each example has 3 values, but the model's data declares 4");
    write_file(p, buf, 10 + (size_t)hl + 7);
    expect_load_error(p, 3, "truncated");
    write_file(p, "not numpy at all", 16);
    expect_load_error(p, 3, "not a .npy file");
    remove(p);
}

static void test_csv(void) {
    const char *p = tmp_path(".csv");
    const char *good = "a,b,c\n0,1,0.75\n0.25, 0.5 ,1\n"; /* binary: values in [0, 1] */
    write_file(p, good, strlen(good));
    vr_dataset ds;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(vr_data_load(&ds, p, NULL, 3, 1, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ds.n, 2);
    float x[6];
    int idx[2] = {0, 1};
    vr_data_gather_f32(&ds, idx, 2, x);
    CU_ASSERT(x[0] == 0 && x[1] == 1 && x[2] == 1 && x[3] == 0);
    vr_data_free(&ds);
    const char *bad = "0.1,0.2,0.3\n0.1,zz,0.3\n";
    write_file(p, bad, strlen(bad));
    expect_load_error(p, 3, ":2: not a number");
    const char *wide = "0.1,0.2,0.3\n0.1,0.2\n";
    write_file(p, wide, strlen(wide));
    expect_load_error(p, 3, ":2: the line has 2 values, but the model's data declares 3");
    write_file(p, "", 0);
    expect_load_error(p, 3, "holds no examples");
    remove(p);
}

/* ---- checkpoints */
static void test_checkpoint_round_trip_and_refusals(void) {
    vr_tensor_info t[2] = {{"enc.w", 2, {2, 3}, 6}, {"enc.b", 1, {3}, 3}};
    float p[9], m[9], v[9], q[9], qm[9], qv[9];
    for (int i = 0; i < 9; i++) p[i] = (float)i, m[i] = (float)-i, v[i] = (float)(i * i);
    const char *path = tmp_path(".vaeckpt");
    char err[512];
    CU_ASSERT_EQUAL_FATAL(vr_checkpoint_save(path, "m", t, 2, p, m, v, 77, err, sizeof err), 0);
    long step = 0;
    CU_ASSERT_EQUAL_FATAL(vr_checkpoint_load(path, t, 2, q, qm, qv, &step, err, sizeof err), 0);
    CU_ASSERT_EQUAL(memcmp(p, q, sizeof p), 0);
    CU_ASSERT_EQUAL(memcmp(m, qm, sizeof m), 0);
    CU_ASSERT_EQUAL(memcmp(v, qv, sizeof v), 0);
    CU_ASSERT_EQUAL(step, 77);
    /* a model with another shape is refused, naming both shapes */
    vr_tensor_info t2[2] = {{"enc.w", 2, {2, 4}, 8}, {"enc.b", 1, {3}, 3}};
    float big[11];
    CU_ASSERT_EQUAL(vr_checkpoint_load(path, t2, 2, big, NULL, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'enc.w' [2, 3] in the checkpoint, 'enc.w' [2, 4] here"));
    CU_ASSERT_EQUAL(vr_checkpoint_load(path, t, 1, q, NULL, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "holds 2 tensors, this model has 1"));
    /* truncation and corruption are caught by the checksum */
    FILE *f = fopen(path, "rb");
    unsigned char buf[1024];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const char *bad = tmp_path(".vaeckpt");
    write_file(bad, buf, n - 9);
    CU_ASSERT_EQUAL(vr_checkpoint_load(bad, t, 2, q, NULL, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "truncated or corrupt"));
    buf[n / 2] ^= 0x55;
    write_file(bad, buf, n);
    CU_ASSERT_EQUAL(vr_checkpoint_load(bad, t, 2, q, NULL, NULL, NULL, err, sizeof err), -1);
    write_file(bad, "GARBAGE!GARBAGE!", 16);
    CU_ASSERT_EQUAL(vr_checkpoint_load(bad, t, 2, q, NULL, NULL, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a vaec checkpoint"));
    /* a save that cannot be written leaves the old checkpoint whole */
    CU_ASSERT_EQUAL(vr_checkpoint_save("/nonexistent/dir/c.vaeckpt", "m", t, 2, p, NULL, NULL, 0, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/dir/c.vaeckpt"));
    CU_ASSERT_EQUAL(vr_checkpoint_load(path, t, 2, q, NULL, NULL, NULL, err, sizeof err), 0);
    remove(path);
    remove(bad);
}

/* A checkpoint read whatever model wrote it, its tensors then found by name (vaec gradvar):
 * the values at each tensor's offset, a name it lacks -1, another shape -2 naming both. */
static void test_checkpoint_by_name(void) {
    vr_tensor_info t[3] = {{"enc.w", 2, {2, 3}, 6}, {"enc.b", 1, {3}, 3}, {"nvil.mean", 1, {1}, 1}};
    float p[10], m[10];
    for (int i = 0; i < 10; i++) p[i] = (float)i, m[i] = -1;
    const char *path = tmp_path(".vaeckpt");
    char err[512];
    CU_ASSERT_EQUAL_FATAL(vr_checkpoint_save(path, "m", t, 2, p, m, m, 5, err, sizeof err), 0);
    vr_checkpoint_contents c;
    CU_ASSERT_EQUAL_FATAL(vr_checkpoint_read(path, &c, err, sizeof err), 0);
    CU_ASSERT_EQUAL(c.n, 2);
    CU_ASSERT_EQUAL(memcmp(c.params, p, 9 * sizeof(float)), 0); /* the values, not the moments after them */
    CU_ASSERT_EQUAL(vr_checkpoint_find(&c, &t[1], err, sizeof err), 6);
    CU_ASSERT_EQUAL(vr_checkpoint_find(&c, &t[0], err, sizeof err), 0);
    CU_ASSERT_EQUAL(vr_checkpoint_find(&c, &t[2], err, sizeof err), -1);
    vr_tensor_info wide = {"enc.b", 2, {1, 3}, 3};
    CU_ASSERT_EQUAL(vr_checkpoint_find(&c, &wide, err, sizeof err), -2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tensor 'enc.b' is [3] in the checkpoint, [1, 3] here"));
    vr_checkpoint_contents_free(&c);
    CU_ASSERT_EQUAL(c.n, 0);
    /* the file's refusals are vr_checkpoint_load's */
    FILE *f = fopen(path, "rb");
    unsigned char buf[1024];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_file(path, buf, n - 9);
    CU_ASSERT_EQUAL(vr_checkpoint_read(path, &c, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "truncated or corrupt"));
    CU_ASSERT_PTR_NULL(c.t);
    remove(path);
}

/* ---- the learning rate by step (vr_lr_at), each schedule against its formula written out here */
static void test_lr_schedules(void) {
    const double pi = 3.14159265358979323846;
    const int nb = 7; /* batches an epoch */
    vr_options o;
    memset(&o, 0, sizeof o);
    o.lr = 0.003;
    for (long k = 0; k < 100; k++) CU_ASSERT_EQUAL(vr_lr_at(&o, k, nb), 0.003); /* no schedule: lr itself */
    o.schedule.step_epochs = 2;
    o.schedule.step_factor = 0.5;
    for (long k = 0; k < 100; k++) { /* halved after every 2 epochs: at steps 14, 28, ... */
        double want = 0.003;
        for (long done = 14; done <= k; done += 14) want *= 0.5;
        CU_ASSERT_DOUBLE_EQUAL(vr_lr_at(&o, k, nb), want, 1e-15);
    }
    CU_ASSERT_EQUAL(vr_lr_at(&o, 13, nb), 0.003);
    CU_ASSERT_EQUAL(vr_lr_at(&o, 14, nb), 0.0015);
    o.schedule = (vr_lr_schedule){0};
    o.schedule.cosine_epochs = 3;
    o.schedule.min_lr = 0.0001;
    for (long k = 0; k < 40; k++) { /* over 3 epochs = 21 steps, then the floor */
        double t = k < 21 ? k / 21.0 : 1.0;
        CU_ASSERT_DOUBLE_EQUAL(vr_lr_at(&o, k, nb), 0.0001 + (0.003 - 0.0001) * (1 + cos(pi * t)) / 2, 1e-15);
    }
    CU_ASSERT_EQUAL(vr_lr_at(&o, 0, nb), 0.003);
    CU_ASSERT_DOUBLE_EQUAL(vr_lr_at(&o, 21, nb), 0.0001, 1e-18);
    o.schedule.warmup_steps = 10; /* the warm-up scales the decayed rate: (k + 1) / 10 for k < 10 */
    for (long k = 0; k < 12; k++) {
        double t = k / 21.0, decayed = 0.0001 + (0.003 - 0.0001) * (1 + cos(pi * t)) / 2;
        CU_ASSERT_DOUBLE_EQUAL(vr_lr_at(&o, k, nb), k < 10 ? decayed * (k + 1) / 10 : decayed, 1e-15);
    }
    CU_ASSERT_DOUBLE_EQUAL(vr_lr_at(&o, 0, nb), 0.0003, 1e-18);
}

/* ---- gradient-norm clipping (vr_clip_norm) */
static void test_clip_norm(void) {
    enum { N = 1001 };
    static float g[N], before[N];
    double sum = 0;
    for (int i = 0; i < N; i++) {
        g[i] = before[i] = (float)(sin(i * 0.37) * (1 + i % 5));
        sum += (double)g[i] * g[i];
    }
    double norm = sqrt(sum);
    CU_ASSERT_DOUBLE_EQUAL(vr_clip_norm(g, N, norm * 2), norm, 1e-9 * norm); /* shorter than the bound: unchanged */
    CU_ASSERT_EQUAL(memcmp(g, before, sizeof g), 0);
    CU_ASSERT_DOUBLE_EQUAL(vr_clip_norm(g, N, 1.5), norm, 1e-9 * norm); /* returns the norm before */
    double after = 0;
    for (int i = 0; i < N; i++) {
        after += (double)g[i] * g[i];
        CU_ASSERT_DOUBLE_EQUAL(g[i], before[i] * (1.5 / norm), 1e-6 * fabs(before[i]) + 1e-12); /* the same direction */
    }
    CU_ASSERT_DOUBLE_EQUAL(sqrt(after), 1.5, 1e-6);
}

int main(void) {
    static const test_case tests[] = {
        {"philox known answers", test_philox_known_answers},
        {"noise keyed, not ordered", test_noise_is_keyed_not_ordered},
        {"noise is standard normal", test_noise_is_standard_normal},
        {"uniform and shuffle", test_uniform_and_shuffle},
        {"float uniforms stay below 1", test_float_uniform_below_one},
        {"gemm against naive loops", test_gemm_against_naive},
        {"the team keeps the caller's fp mode", test_team_keeps_callers_fp_mode},
        {"products at once match products in turn", test_gemm_jobs_match_products_in_turn},
        {"split covers every unit once, on both threads", test_split_covers_every_unit_once},
        {"adam against its formula", test_adam_against_formula},
        {"sgd with momentum", test_sgd_momentum},
        {"learning-rate schedules against their formulas", test_lr_schedules},
        {"gradient-norm clipping", test_clip_norm},
        {"logsumexp", test_logsumexp},
        {"idx plain and gzip", test_idx_plain_and_gzip},
        {"gzip members, corruption, wide rows", test_gzip_members_corruption_and_wide_rows},
        {"idx errors", test_idx_errors},
        {"npy", test_npy},
        {"csv", test_csv},
        {"checkpoints", test_checkpoint_round_trip_and_refusals},
        {"checkpoints by name", test_checkpoint_by_name},
        {NULL, NULL},
    };
    return run_suite("runtime", tests);
}
