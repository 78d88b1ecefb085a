/* The data readers on hostile files (issue 18): headers that claim more than
 * the file holds, shapes whose products overflow, NaN and infinity in every
 * format, and the one scaling rule that makes the same values in .csv, .npy
 * and IDX load to the same floats.  Every file is made here. */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <zlib.h>

#include "tests/testutil.h"
#include "vae/runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* ---- making files */
static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX file: element type (0x08 bytes, 0x0D big-endian floats), nd sizes, then `data` as given. */
static void idx_file(const char *path, int type, int nd, const uint32_t *sizes, const void *data, size_t data_len) {
    unsigned char *buf = malloc(4 + 4 * (size_t)nd + data_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    buf[0] = buf[1] = 0;
    buf[2] = (unsigned char)type;
    buf[3] = (unsigned char)nd;
    for (int i = 0; i < nd; i++) put_be32(buf + 4 + 4 * i, sizes[i]);
    if (data_len) memcpy(buf + 4 + 4 * nd, data, data_len);
    write_file(path, buf, 4 + 4 * (size_t)nd + data_len);
    free(buf);
}

/* Float values as an IDX 0x0D file's big-endian data. */
static void idx_floats(unsigned char *out, const float *v, int n) {
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        put_be32(out + 4 * i, u);
    }
}

/* A .npy version 1 file with the given descr and shape text, then `data` as given. */
static void npy_file(const char *path, const char *descr, const char *shape, const void *data, size_t data_len) {
    char header[256];
    int hl = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    while ((10 + hl + 1) % 64) header[hl++] = ' ';
    header[hl++] = '\n';
    unsigned char *buf = malloc(10 + (size_t)hl + data_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)hl;
    buf[9] = 0;
    memcpy(buf + 10, header, (size_t)hl);
    if (data_len) memcpy(buf + 10 + hl, data, data_len);
    write_file(path, buf, 10 + (size_t)hl + data_len);
    free(buf);
}

static void gz_copy(const char *from_bytes_path, const char *to) {
    FILE *f = fopen(from_bytes_path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    gzFile g = gzopen(to, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(gzwrite(g, buf, (unsigned)n), (int)n);
    gzclose(g);
}

/* Loads and expects a refusal whose message names the file and contains `needle`. */
static void expect_refused(const char *path, int dim, int binary, const char *needle) {
    vr_dataset ds;
    char err[512] = "";
    int rc = vr_data_load(&ds, path, NULL, dim, binary, err, sizeof err);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
    if (rc != -1 || !strstr(err, needle))
        fprintf(stderr, "\n  %s (binary %d): got rc %d '%s'\n  wanted: '%s'\n", path, binary, rc, err, needle);
    if (rc == 0) vr_data_free(&ds);
}

/* ---- sizes claimed by headers */

#ifndef UNDER_ASAN
/* The process's mapped bytes now (Linux /proc/self/statm), 0 when unknown. */
static size_t mapped_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}
#endif

/* Loads `path` in a child whose address space may grow by only 256 MiB (not
 * under ASan, which maps terabytes of shadow): a header's claim must be refused
 * before anything of its size is allocated.  Returns 1 when the child saw the
 * refusal with `needle` in it. */
static int refused_within_256mib(const char *path, int dim, int binary, const char *needle) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
#ifndef UNDER_ASAN
        size_t now = mapped_bytes();
        if (now) {
            struct rlimit lim = {now + (256u << 20), now + (256u << 20)};
            setrlimit(RLIMIT_AS, &lim);
        }
#endif
        vr_dataset ds;
        char err[512] = "";
        int rc = vr_data_load(&ds, path, NULL, dim, binary, err, sizeof err);
        int ok = rc == -1 && strstr(err, path) && strstr(err, needle);
        if (!ok) fprintf(stderr, "\n  %s (binary %d): rc %d '%s', wanted '%s'\n", path, binary, rc, err, needle);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CU_ASSERT_FATAL(pid > 0 && waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status)) fprintf(stderr, "\n  %s (binary %d): killed by signal %d\n", path, binary, WTERMSIG(status));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A 16-byte IDX header of 28x28 images claiming 2^32 - 1, 10^8 or 2^31
 * examples, plain and gzip: refused as truncated, binary or not, in 256 MiB. */
static void test_header_counts_beyond_the_file(void) {
    const uint32_t counts[] = {0xffffffffu, 100000000u, 0x80000000u};
    const char *plain = tmp_path(".idx"), *gz = tmp_path(".idx.gz");
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        uint32_t sizes[3] = {counts[c], 28, 28};
        idx_file(plain, 0x08, 3, sizes, NULL, 0);
        gz_copy(plain, gz);
        char needle[64];
        snprintf(needle, sizeof needle, "truncated: the header promises %u examples", counts[c]);
        for (int binary = 0; binary < 2; binary++) {
            CU_ASSERT(refused_within_256mib(plain, 784, binary, needle));
            CU_ASSERT(refused_within_256mib(gz, 784, binary, needle));
        }
    }
    /* one example short, and a float file one value short */
    unsigned char bytes[2 * 784] = {0};
    uint32_t two[3] = {3, 28, 28};
    idx_file(plain, 0x08, 3, two, bytes, sizeof bytes);
    expect_refused(plain, 784, 1, "the file has 1568");
    uint32_t fsizes[2] = {2, 3};
    idx_file(plain, 0x0D, 2, fsizes, bytes, 4 * 6 - 1);
    expect_refused(plain, 3, 0, "truncated");
    remove(plain);
    remove(gz);
}

/* Shapes whose products overflow 64 bits, or wrap to the model's width. */
static void test_shapes_that_overflow(void) {
    const char *idx = tmp_path(".idx"), *npy = tmp_path(".npy");
    static unsigned char bytes[784 * 2];
    for (int i = 0; i < 784 * 2; i++) bytes[i] = (unsigned char)i;
    /* 410224 * 81159931 * 20500229 = 37 * 2^64 + 784: wraps to one 784-value example */
    uint32_t wraps[4] = {1, 410224, 81159931, 20500229};
    idx_file(idx, 0x08, 4, wraps, bytes, 784);
    for (int binary = 0; binary < 2; binary++) expect_refused(idx, 784, binary, "overflows");
    uint32_t huge[4] = {1, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    idx_file(idx, 0x08, 4, huge, bytes, 784);
    for (int binary = 0; binary < 2; binary++) expect_refused(idx, 784, binary, "overflows");
    /* .npy: (2^62 + 196) * 4 wraps to 784; negative sizes multiply to 784;
     * 2^60 examples of 784 bytes wrap to 0 bytes; a size beyond 64 bits */
    npy_file(npy, "|u1", "(1, 4611686018427388100, 4)", bytes, 784);
    expect_refused(npy, 784, 0, "overflows");
    npy_file(npy, "|u1", "(2, -28, -28)", bytes, 784 * 2);
    expect_refused(npy, 784, 0, "negative");
    npy_file(npy, "|u1", "(1152921504606846976, 784)", bytes, 784);
    expect_refused(npy, 784, 1, "truncated");
    npy_file(npy, "|u1", "(1, 99999999999999999999999)", bytes, 784);
    expect_refused(npy, 784, 0, "too large");
    /* more examples than an int can count, as far as the header goes */
    npy_file(npy, "|u1", "(4294967297, 1)", bytes, 784);
    expect_refused(npy, 1, 0, "truncated");
    remove(idx);
    remove(npy);
}

/* ---- values */

/* NaN and infinity in every format, binary or not, named by position. */
static void test_nan_and_infinity_refused(void) {
    const char *npy = tmp_path(".npy"), *idx = tmp_path(".idx"), *csv = tmp_path(".csv");
    float f[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, NAN};
    double d[6] = {0.1, 0.2, 0.3, INFINITY, 0.5, 0.6};
    for (int binary = 0; binary < 2; binary++) {
        npy_file(npy, "<f4", "(2, 3)", f, sizeof f);
        expect_refused(npy, 3, binary, "example 1, value 2");
        npy_file(npy, "<f8", "(2, 3)", d, sizeof d);
        expect_refused(npy, 3, binary, "example 1, value 0");
        double big[3] = {0.5, 1e300, 0.5}; /* finite, but no float holds it */
        npy_file(npy, "<f8", "(1, 3)", big, sizeof big);
        expect_refused(npy, 3, binary, "does not fit in a float");
        float g[6] = {0.1f, -INFINITY, 0.3f, 0.4f, 0.5f, 0.6f};
        unsigned char be[24];
        idx_floats(be, g, 6);
        uint32_t sizes[2] = {2, 3};
        idx_file(idx, 0x0D, 2, sizes, be, sizeof be);
        expect_refused(idx, 3, binary, "example 0, value 1");
        idx_floats(be, f, 6);
        idx_file(idx, 0x0D, 2, sizes, be, sizeof be);
        expect_refused(idx, 3, binary, "not a number");
        const char *text = "0.1,0.2,0.3\n0.4,0.5,0.6\n0.7,nan,0.9\n";
        write_file(csv, text, strlen(text));
        expect_refused(csv, 3, binary, ":3: column 2");
        text = "0.1,0.2,1e39\n";
        write_file(csv, text, strlen(text));
        expect_refused(csv, 3, binary, ":1: column 3");
    }
    remove(npy);
    remove(idx);
    remove(csv);
}

/* Loads `path` and gathers its n examples of dim values as floats and doubles. */
static int load_all(const char *path, int dim, int binary, int n, float *out) {
    vr_dataset ds;
    char err[512] = "";
    if (vr_data_load(&ds, path, NULL, dim, binary, err, sizeof err) != 0) {
        fprintf(stderr, "\n  %s: %s\n", path, err);
        return -1;
    }
    int ok = ds.n == n;
    int idx[8];
    for (int i = 0; i < n; i++) idx[i] = i;
    double wide[64];
    vr_data_gather_f32(&ds, idx, n, out);
    vr_data_gather_f64(&ds, idx, n, wide);
    for (int i = 0; i < n * dim; i++) ok &= wide[i] == (double)out[i];
    vr_data_free(&ds);
    return ok ? 0 : -1;
}

/* The same values written as .csv, float32 and float64 .npy and float IDX
 * load to the same floats, as written; bytes (uint8 .npy and IDX) load as
 * byte / 255 and binarise at 128 as before. */
static void test_one_scaling_rule(void) {
    enum { N = 2, D = 3 };
    const char *csv = tmp_path(".csv"), *npy = tmp_path(".npy"), *idx = tmp_path(".idx");
    const float v[N * D] = {0, 3, 255, 128, 1, 17}; /* integers up to 255: no longer taken for bytes */
    const double v64[N * D] = {0, 3, 255, 128, 1, 17};
    unsigned char be[4 * N * D];
    uint32_t sizes[2] = {N, D};
    float from[4][N * D];
    write_file(csv, "a,b,c\n0,3,255\n128, 1 ,17\n", 26);
    CU_ASSERT_EQUAL_FATAL(load_all(csv, D, 0, N, from[0]), 0);
    npy_file(npy, "<f4", "(2, 3)", v, sizeof v);
    CU_ASSERT_EQUAL_FATAL(load_all(npy, D, 0, N, from[1]), 0);
    npy_file(npy, "<f8", "(2, 3)", v64, sizeof v64);
    CU_ASSERT_EQUAL_FATAL(load_all(npy, D, 0, N, from[2]), 0);
    idx_floats(be, v, N * D);
    idx_file(idx, 0x0D, 2, sizes, be, sizeof be);
    CU_ASSERT_EQUAL_FATAL(load_all(idx, D, 0, N, from[3]), 0);
    for (int k = 0; k < 4; k++) CU_ASSERT_EQUAL(memcmp(from[k], v, sizeof v), 0);
    /* bytes: uint8 .npy and IDX alike, byte * (1/255) and >= 128 for binary */
    const unsigned char b[N * D] = {0, 3, 255, 128, 127, 17};
    float byte_npy[N * D], byte_idx[N * D];
    for (int binary = 0; binary < 2; binary++) {
        npy_file(npy, "|u1", "(2, 3)", b, sizeof b);
        CU_ASSERT_EQUAL_FATAL(load_all(npy, D, binary, N, byte_npy), 0);
        idx_file(idx, 0x08, 2, sizes, b, sizeof b);
        CU_ASSERT_EQUAL_FATAL(load_all(idx, D, binary, N, byte_idx), 0);
        CU_ASSERT_EQUAL(memcmp(byte_npy, byte_idx, sizeof byte_npy), 0);
        for (int i = 0; i < N * D; i++)
            CU_ASSERT_EQUAL(byte_idx[i], binary ? (float)(b[i] >= 128) : b[i] * (1.0f / 255.0f));
    }
    /* binary values written as numbers: in [0, 1], binarised above 0.5 in every format */
    const float p[N * D] = {0, 0.5f, 1, 0.75f, 0.25f, 0.625f};
    write_file(csv, "0,0.5,1\n0.75,0.25,0.625\n", 24);
    CU_ASSERT_EQUAL_FATAL(load_all(csv, D, 1, N, from[0]), 0);
    npy_file(npy, "<f4", "(2, 3)", p, sizeof p);
    CU_ASSERT_EQUAL_FATAL(load_all(npy, D, 1, N, from[1]), 0);
    idx_floats(be, p, N * D);
    idx_file(idx, 0x0D, 2, sizes, be, sizeof be);
    CU_ASSERT_EQUAL_FATAL(load_all(idx, D, 1, N, from[2]), 0);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < N * D; i++) CU_ASSERT_EQUAL(from[k][i], (float)(p[i] > 0.5f));
    /* ... and outside [0, 1] refused with what to do, where today's bytes were guessed */
    write_file(csv, "0,3,255\n128,1,17\n", 17);
    expect_refused(csv, D, 1, ":1: column 2: 3 is outside [0, 1]");
    expect_refused(csv, D, 1, "divide bytes 0..255 by 255");
    npy_file(npy, "<f4", "(2, 3)", v, sizeof v);
    expect_refused(npy, D, 1, "example 0, value 1 (from 0): 3 is outside [0, 1]");
    idx_file(idx, 0x0D, 2, sizes, be, sizeof be); /* p again: in range */
    float neg[N * D] = {0, 0, 0, 0, 0, -0.5f};
    idx_floats(be, neg, N * D);
    idx_file(idx, 0x0D, 2, sizes, be, sizeof be);
    expect_refused(idx, D, 1, "example 1, value 2 (from 0): -0.5 is outside [0, 1]");
    remove(csv);
    remove(npy);
    remove(idx);
}

int main(void) {
    const test_case tests[] = {
        {"header counts beyond the file", test_header_counts_beyond_the_file},
        {"shapes that overflow", test_shapes_that_overflow},
        {"NaN and infinity refused", test_nan_and_infinity_refused},
        {"one scaling rule", test_one_scaling_rule},
        {NULL, NULL},
    };
    return run_suite("data_hostile", tests);
}
