/* The runtime side of structured models (issue 22): label files in every form
 * and hostile ones, labelled subsets, semi-supervised batches, dynamic
 * binarisation, the data block the graphs read, and the classification error.
 * The graphs are C functions written here that read the data block. */
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zlib.h>

#include "tests/testutil.h"
#include "vae/driver.h"

/* ---- making files */
static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX1 label file claiming `count` labels, holding `n` bytes. */
static void idx1_file(const char *path, uint32_t count, const unsigned char *v, size_t n) {
    unsigned char buf[8 + 256];
    buf[0] = buf[1] = 0;
    buf[2] = 0x08;
    buf[3] = 1;
    put_be32(buf + 4, count);
    memcpy(buf + 8, v, n);
    write_file(path, buf, 8 + n);
}

/* An IDX3 image file of n examples of d bytes (d = rows, one column). */
static void idx3_file(const char *path, uint32_t n, uint32_t d, const unsigned char *v) {
    unsigned char buf[16 + 1024];
    buf[0] = buf[1] = 0;
    buf[2] = 0x08;
    buf[3] = 3;
    put_be32(buf + 4, n);
    put_be32(buf + 8, d);
    put_be32(buf + 12, 1);
    memcpy(buf + 16, v, (size_t)n * d);
    write_file(path, buf, 16 + (size_t)n * d);
}

static void npy_file(const char *path, const char *descr, const char *shape, const void *data, size_t len) {
    char header[256];
    int hl = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    while ((10 + hl + 1) % 64) header[hl++] = ' ';
    header[hl++] = '\n';
    unsigned char buf[1024];
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)hl;
    buf[9] = 0;
    memcpy(buf + 10, header, (size_t)hl);
    memcpy(buf + 10 + hl, data, len);
    write_file(path, buf, 10 + (size_t)hl + len);
}

static void text_file(const char *path, const char *text) { write_file(path, text, strlen(text)); }

/* A data set of n examples (no values needed for labels). */
static vr_dataset examples(int n) {
    vr_dataset ds = {0};
    ds.n = n;
    ds.dim = 1;
    return ds;
}

static void expect_labels(const char *path, int n, int K, const int *want) {
    vr_dataset ds = examples(n);
    char err[512] = "";
    int rc = vr_data_load_labels(&ds, "x.npy", path, NULL, K, err, sizeof err);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc) fprintf(stderr, "\n%s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ds.labels);
    CU_ASSERT_EQUAL(ds.classes, K);
    for (int i = 0; i < n; i++) CU_ASSERT_EQUAL(ds.labels[i], want[i]);
    vr_data_free(&ds);
}

static void expect_refused(const char *path, int n, int K, const char *words) {
    vr_dataset ds = examples(n);
    char err[512] = "";
    CU_ASSERT_EQUAL(vr_data_load_labels(&ds, "x.npy", path, NULL, K, err, sizeof err), -1);
    CU_ASSERT_PTR_NULL(ds.labels);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, words));
    if (!strstr(err, words)) fprintf(stderr, "\nwanted '%s' in: %s\n", words, err);
}

static void test_label_files(void) {
    const int want[4] = {3, 0, 9, 1};
    const unsigned char bytes[4] = {3, 0, 9, 1};
    const char *idx = tmp_path("-labels-idx1-ubyte"), *gz = tmp_path("-labels-idx1-ubyte.gz");
    idx1_file(idx, 4, bytes, 4);
    expect_labels(idx, 4, 10, want);
    gzFile g = gzopen(gz, "wb");
    unsigned char head[8] = {0, 0, 8, 1, 0, 0, 0, 4};
    gzwrite(g, head, 8);
    gzwrite(g, bytes, 4);
    gzclose(g);
    expect_labels(gz, 4, 10, want);
    const char *npy = tmp_path(".npy");
    const int8_t i1[4] = {3, 0, 9, 1};
    npy_file(npy, "|i1", "(4,)", i1, 4);
    expect_labels(npy, 4, 10, want);
    const unsigned char be_u2[8] = {0, 3, 0, 0, 0, 9, 0, 1};
    npy_file(npy, ">u2", "(4,)", be_u2, 8);
    expect_labels(npy, 4, 10, want);
    int32_t le_i4[4] = {3, 0, 9, 1}; /* the test machines are little-endian, as .npy's '<' */
    npy_file(npy, "<i4", "(4,)", le_i4, 16);
    expect_labels(npy, 4, 10, want);
    unsigned char be_i8[32] = {0};
    for (int i = 0; i < 4; i++) be_i8[8 * i + 7] = bytes[i];
    npy_file(npy, ">i8", "(4,)", be_i8, 32);
    expect_labels(npy, 4, 10, want);
    uint64_t le_u8[4] = {3, 0, 9, 1};
    npy_file(npy, "<u8", "(4,)", le_u8, 32);
    expect_labels(npy, 4, 10, want);
    const char *csv = tmp_path(".csv");
    text_file(csv, "label\n3\n0\n\n9\r\n 1\n");
    expect_labels(csv, 4, 10, want);
    remove(idx);
    remove(gz);
    remove(npy);
    remove(csv);
}

static void test_hostile_label_files(void) {
    const unsigned char bytes[4] = {3, 0, 9, 1};
    const char *idx = tmp_path(".idx"), *npy = tmp_path(".npy"), *csv = tmp_path(".csv");
    idx1_file(idx, 5, bytes, 4);
    expect_refused(idx, 5, 10, "truncated: the header promises 5 labels, the file has 4");
    idx1_file(idx, 0xFFFFFFFFu, bytes, 4);
    expect_refused(idx, 4, 10, "truncated: the header promises 4294967295 labels");
    idx1_file(idx, 4, bytes, 4);
    expect_refused(idx, 3, 10, "holds 4 labels, but the data has 3 examples");
    expect_refused(idx, 4, 5, "label 2: the label 9 is outside 0..4 (the model's label has 5 classes)");
    unsigned char images[16] = {0, 0, 8, 3};
    write_file(idx, images, sizeof images);
    expect_refused(idx, 4, 10, "not an IDX label file");
    const int8_t neg[4] = {3, -2, 9, 1};
    npy_file(npy, "|i1", "(4,)", neg, 4);
    expect_refused(npy, 4, 10, "label 1: the label -2 is negative");
    const int16_t big[4] = {3, 0, 9, 1};
    npy_file(npy, "<i2", "(4,)", big, 6);
    expect_refused(npy, 4, 10, "truncated: the header promises 4 labels, the file holds 3");
    npy_file(npy, "<i2", "(4,)", big, 8);
    expect_refused(npy, 4, 9, "outside 0..8");
    const float f[4] = {3, 0, 9, 1};
    npy_file(npy, "<f4", "(4,)", f, 16);
    expect_refused(npy, 4, 10, "labels of dtype '<f4' are not integers");
    npy_file(npy, "<", "(4,)", bytes, 4);
    expect_refused(npy, 4, 10, "are not integers");
    npy_file(npy, "|b1", "(4,)", bytes, 4);
    expect_refused(npy, 4, 10, "are not integers");
    npy_file(npy, "|u1", "(2, 2)", bytes, 4);
    expect_refused(npy, 4, 10, "must be a 1-d array");
    npy_file(npy, "|u1", "(18446744073709551615,)", bytes, 4);
    expect_refused(npy, 4, 10, "truncated");
    text_file(csv, "3\n0\n1.5\n1\n");
    expect_refused(csv, 4, 10, ":3: not an integer label: '1.5'");
    text_file(csv, "3\n-1\n2\n1\n");
    expect_refused(csv, 4, 10, "line 2, label 1: the label -1 is negative");
    text_file(csv, "3\n0\n2\n1\n4\n");
    expect_refused(csv, 4, 10, ":5: more labels than the data's 4 examples");
    text_file(csv, "3\n0\n");
    expect_refused(csv, 4, 10, "holds 2 labels, but the data has 4 examples");
    text_file(csv, "3\n0\nseven\n1\n");
    expect_refused(csv, 4, 10, ":3: not an integer label");
    text_file(csv, "3\n0\n99999999999999999999999\n1\n");
    expect_refused(csv, 4, 10, ":3: not an integer label");
    remove(idx);
    remove(npy);
    remove(csv);
}

/* fashion-mnist:SPLIT finds its label file beside the images; other sources without one have none. */
static void test_fashion_labels_beside_the_images(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", tmp_path("-fashion"));
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    char images[600], labels[600];
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte", dir);
    snprintf(labels, sizeof labels, "%s/t10k-labels-idx1-ubyte", dir);
    const unsigned char pixels[6] = {0, 255, 10, 20, 30, 40}, y[3] = {2, 0, 1};
    idx3_file(images, 3, 2, pixels);
    idx1_file(labels, 3, y, 3);
    vr_dataset ds;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(vr_data_load(&ds, "fashion-mnist:test", dir, 2, 0, err, sizeof err), 0);
    CU_ASSERT_EQUAL(vr_data_load_labels(&ds, "fashion-mnist:test", NULL, dir, 3, err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ds.labels);
    CU_ASSERT(ds.labels[0] == 2 && ds.labels[1] == 0 && ds.labels[2] == 1);
    CU_ASSERT_EQUAL(vr_data_load_labels(&ds, "fashion-mnist:train", NULL, dir, 3, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "train-labels-idx1-ubyte not found in"));
    CU_ASSERT_EQUAL(vr_data_load_labels(&ds, "other.npy", NULL, dir, 3, err, sizeof err), 1);
    vr_data_free(&ds);
    remove(images);
    remove(labels);
    rmdir(dir);
}

/* ---- labelled subsets and batches */

static vr_dataset classes_of(int n, int K) {
    vr_dataset ds = examples(n);
    ds.labels = malloc(sizeof(int) * (size_t)n);
    ds.classes = K;
    for (int i = 0; i < n; i++) ds.labels[i] = (i * 7) % K;
    return ds;
}

static void test_labelled_subset(void) {
    int n = 100, K = 4;
    vr_dataset ds = classes_of(n, K);
    unsigned char a[100], b[100], c[100];
    char err[256];
    CU_ASSERT_EQUAL(vr_labels_keep(&ds, n, 0, 1, a, err, sizeof err), 0);
    for (int i = 0; i < n; i++) CU_ASSERT_EQUAL(a[i], 1);
    CU_ASSERT_EQUAL(vr_labels_keep(&ds, n, 20, 1, a, err, sizeof err), 0);
    int per[4] = {0}, kept = 0;
    for (int i = 0; i < n; i++)
        if (a[i]) per[ds.labels[i]]++, kept++;
    CU_ASSERT_EQUAL(kept, 20);
    for (int k = 0; k < K; k++) CU_ASSERT_EQUAL(per[k], 5);
    CU_ASSERT_EQUAL(vr_labels_keep(&ds, n, 20, 1, b, err, sizeof err), 0);
    CU_ASSERT_EQUAL(memcmp(a, b, (size_t)n), 0); /* a function of the seed */
    CU_ASSERT_EQUAL(vr_labels_keep(&ds, n, 20, 2, c, err, sizeof err), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a, c, (size_t)n), 0);
    CU_ASSERT_EQUAL(vr_labels_keep(&ds, n, 22, 1, a, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "must be a multiple of the label's 4 classes"));
    CU_ASSERT_EQUAL(vr_labels_keep(&ds, n, 104, 1, a, err, sizeof err), -1);
    ds.labels[0] = ds.labels[4] = ds.labels[8] = 1; /* class 0 down to 22 examples */
    CU_ASSERT_EQUAL(vr_labels_keep(&ds, n, 96, 1, a, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "class 0 has 22 training examples, fewer than the 24"));
    vr_data_free(&ds);
}

static void test_semi_batches(void) {
    enum { NL = 10, NU = 90, B = 16 };
    int lab[NL], unl[NU];
    for (int i = 0; i < NL; i++) lab[i] = 1000 + i;
    for (int i = 0; i < NU; i++) unl[i] = i;
    vr_semi_plan s;
    CU_ASSERT_EQUAL_FATAL(vr_semi_plan_of(&s, NL, NU, B), 0);
    CU_ASSERT_EQUAL(s.Bl, 2); /* ceil(16 * 10 / 100) */
    CU_ASSERT_EQUAL(s.steps, 90 / 14);
    int order[6 * B], again[6 * B], other[6 * B];
    CU_ASSERT_EQUAL_FATAL(vr_semi_order(&s, lab, unl, 7, 3, order), 0);
    int seen_u[NU] = {0}, seen_l[NL] = {0};
    for (int b = 0; b < s.steps; b++)
        for (int i = 0; i < B; i++) {
            int e = order[b * B + i];
            if (i < s.Bl) {
                CU_ASSERT_FATAL(e >= 1000 && e < 1000 + NL);
                seen_l[e - 1000]++;
            } else {
                CU_ASSERT_FATAL(e >= 0 && e < NU);
                seen_u[e]++;
            }
        }
    for (int i = 0; i < NU; i++) CU_ASSERT(seen_u[i] <= 1); /* an epoch: one pass over the unlabelled */
    for (int i = 0; i < NL; i++) CU_ASSERT(seen_l[i] == 1 || seen_l[i] == 2); /* 12 draws cycle over 10 */
    CU_ASSERT_EQUAL(vr_semi_order(&s, lab, unl, 7, 3, again), 0);
    CU_ASSERT_EQUAL(memcmp(order, again, sizeof order), 0);
    CU_ASSERT_EQUAL(vr_semi_order(&s, lab, unl, 7, 4, other), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(order, other, sizeof order), 0);
    CU_ASSERT_EQUAL(vr_semi_plan_of(&s, 99, 1, 16), 0); /* nearly all labelled: one unlabelled a batch */
    CU_ASSERT_EQUAL(s.Bl, 15);
    CU_ASSERT_EQUAL(vr_semi_plan_of(&s, 5, 3, 16), -1); /* no whole batch of unlabelled */
}

/* ---- dynamic binarisation */

static void test_dynamic_binarisation(void) {
    enum { N = 4, D = 4000 };
    float *v = malloc(sizeof(float) * N * D), *a = malloc(sizeof(float) * N * D), *b = malloc(sizeof(float) * N * D);
    for (int j = 0; j < D; j++) {
        v[j] = 0;
        v[D + j] = 1;
        v[2 * D + j] = 0.5f;
        v[3 * D + j] = 0.1f;
    }
    vr_dataset ds = {.n = N, .dim = D, .f32 = v, .binary = VR_BINARY_DYNAMIC};
    int idx[N] = {0, 1, 2, 3};
    vr_data_gather_drawn_f32(&ds, idx, N, a, 9, 1);
    double mean[N] = {0};
    int ones[N] = {0};
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) {
            CU_ASSERT_FATAL(a[i * D + j] == 0 || a[i * D + j] == 1);
            ones[i] += a[i * D + j] == 1;
        }
        mean[i] = (double)ones[i] / D;
    }
    CU_ASSERT_EQUAL(ones[0], 0);
    CU_ASSERT_EQUAL(ones[1], D);
    CU_ASSERT(fabs(mean[2] - 0.5) < 0.04);
    CU_ASSERT(fabs(mean[3] - 0.1) < 0.03);
    for (int i = 0; i < N; i++) vr_data_gather_drawn_f32(&ds, idx + i, 1, b + i * D, 9, 1); /* any split */
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof(float) * N * D), 0);
    vr_data_gather_drawn_f32(&ds, idx, N, b, 9, 2); /* another epoch: another draw */
    CU_ASSERT_NOT_EQUAL(memcmp(a + 2 * D, b + 2 * D, sizeof(float) * D), 0);
    vr_data_gather_f32(&ds, idx + 2, 1, b); /* the plain gather gives the intensities */
    CU_ASSERT_EQUAL(b[0], 0.5f);
    free(v);
    free(a);
    free(b);
}

/* Dynamic data is checked for [0, 1] when loaded, and not binarised there. */
static void test_dynamic_data_loads_intensities(void) {
    const char *csv = tmp_path(".csv");
    text_file(csv, "0.25,1\n0,0.75\n");
    vr_dataset ds;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(vr_data_load(&ds, csv, NULL, 2, VR_BINARY_DYNAMIC, err, sizeof err), 0);
    CU_ASSERT_PTR_NULL(ds.bits);
    float x[4];
    int idx[2] = {0, 1};
    vr_data_gather_f32(&ds, idx, 2, x);
    CU_ASSERT(x[0] == 0.25f && x[1] == 1 && x[2] == 0 && x[3] == 0.75f);
    vr_data_free(&ds);
    text_file(csv, "0.25,1\n0,1.5\n");
    CU_ASSERT_EQUAL(vr_data_load(&ds, csv, NULL, 2, VR_BINARY_DYNAMIC, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is outside [0, 1]"));
    remove(csv);
}

/* ---- the data block and the classification error, through graphs written here */

enum { TB = 4, TD = 2, TK = 3 };
static int kept_rows, bad_blocks;

/* An evaluation graph: its "classifier" picks class (x[0] > 0.5 ? 1 : 0);
 * correct_rows at 0, value_rows at TB.  It also checks the block's layout:
 * y_kept all zeros (an inferred label), y_true one-hot or zeros. */
static void eval_graph(float *params, float *grads, float *arena, const float *data, const vr_ctx *ctx) {
    (void)params, (void)grads, (void)ctx;
    const float *kept = data + TB * TD, *truth = kept + TB * TK;
    for (int i = 0; i < TB; i++) {
        int y = -1;
        float sum = 0;
        for (int k = 0; k < TK; k++) {
            if (kept[i * TK + k] != 0) bad_blocks++;
            if (truth[i * TK + k] == 1) y = k;
            sum += truth[i * TK + k];
        }
        if (sum > 1) bad_blocks++;
        arena[i] = (float)(y == (data[i * TD] > 0.5f ? 1 : 0));
        arena[TB + i] = 0;
    }
}

/* A training graph: counts the rows whose label is kept, checking each kept
 * label is the true one; objective 0. */
static void train_graph(float *params, float *grads, float *arena, const float *data, const vr_ctx *ctx) {
    (void)params, (void)ctx;
    grads[0] = 0;
    const float *kept = data + TB * TD, *truth = kept + TB * TK;
    for (int i = 0; i < TB; i++) {
        float sum = 0;
        for (int k = 0; k < TK; k++) {
            sum += kept[i * TK + k];
            if (kept[i * TK + k] != 0 && truth[i * TK + k] != 1) bad_blocks++;
        }
        kept_rows += sum == 1;
        arena[i] = 0;
    }
}

static const vr_tensor_info one_tensor = {"w", 1, {1}, 1};
static const float one_bound = 0;

static vr_program labelled_program(void) {
    vr_program p = {0};
    p.model_name = "labels_test";
    p.data_dim = TD;
    p.label_states = TK;
    p.label_inferred = 1;
    p.ntensors = 1;
    p.tensors = &one_tensor;
    p.init_bounds = &one_bound;
    p.value_name = p.eval_value_name = "ELBO";
    p.param_floats = 1;
    p.train = (vr_graph){train_graph, TB, 1, 2 * TB, -1, -1, -1, -1, -1, 0, -1};
    p.eval = (vr_graph){eval_graph, TB, 1, 2 * TB, -1, -1, -1, -1, -1, TB, 0};
    return p;
}

static void test_classification_error(void) {
    vr_program p = labelled_program();
    enum { N = 6 };
    float x[N * TD] = {0.9f, 0, 0.1f, 0, 0.8f, 0, 0.2f, 0, 0.7f, 0, 0.3f, 0};
    int y[N] = {1, 0, 2, 0, 0, -1}; /* right, right, wrong, right, wrong, unknown */
    vr_dataset ds = {.n = N, .dim = TD, .f32 = x, .labels = y, .classes = TK};
    vr_scores s;
    bad_blocks = 0;
    vr_evaluate(&p, NULL, &ds, 0, 1, &s);
    CU_ASSERT_EQUAL(bad_blocks, 0);
    CU_ASSERT_DOUBLE_EQUAL(s.classify_error, 2.0 / 5.0, 1e-12); /* over the 5 known labels */
    vr_dataset none = {.n = N, .dim = TD, .f32 = x};
    vr_evaluate(&p, NULL, &none, 0, 1, &s);
    CU_ASSERT(isnan(s.classify_error));
    p.eval.correct_rows = -1;
    vr_evaluate(&p, NULL, &ds, 0, 1, &s);
    CU_ASSERT(isnan(s.classify_error));
}

/* Training with labelled = 12 of 48: batches of 4 with ceil(4 * 12 / 48) = 1
 * labelled row each, 36 / 3 = 12 steps an epoch. */
static void test_training_blocks(void) {
    vr_program p = labelled_program();
    const char *x = tmp_path(".csv"), *y = tmp_path(".csv");
    char text[2048] = "", labels[512] = "";
    for (int i = 0; i < 48; i++) {
        snprintf(text + strlen(text), sizeof text - strlen(text), "%d,0.5\n", i % 2);
        snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%d\n", i % TK);
    }
    text_file(x, text);
    text_file(y, labels);
    vr_options o = {0};
    o.data = x;
    o.labels = y;
    o.labelled = 12;
    o.epochs = 2;
    o.batch = TB;
    o.lr = 1e-3;
    o.optimizer = VR_ADAM;
    o.seed = 4;
    kept_rows = bad_blocks = 0;
    CU_ASSERT_EQUAL(vr_train(&p, &o), 0);
    CU_ASSERT_EQUAL(bad_blocks, 0);
    CU_ASSERT_EQUAL(kept_rows, 2 * 12); /* one kept row in each of 12 steps, two epochs */
    o.labelled = 13;
    CU_ASSERT_EQUAL(vr_train(&p, &o), 1); /* not a multiple of 3: refused */
    p.label_states = 0; /* a model without a label refuses label settings */
    o.labelled = 0;
    CU_ASSERT_EQUAL(vr_train(&p, &o), 1);
    p.label_states = TK;
    o.labelled = 0; /* every label kept: plain batches, every row labelled */
    kept_rows = 0;
    CU_ASSERT_EQUAL(vr_train(&p, &o), 0);
    CU_ASSERT_EQUAL(kept_rows, 2 * 48);
    remove(x);
    remove(y);
}

/* A training graph whose gradient depends on the order of the rows, their
 * (drawn) values and kept labels, so the parameters' bits record the batches. */
static void order_graph(float *params, float *grads, float *arena, const float *data, const vr_ctx *ctx) {
    (void)ctx;
    const float *kept = data + TB * TD;
    double g = 0;
    for (int i = 0; i < TB; i++) {
        double y = 0;
        for (int k = 0; k < TK; k++) y += k * kept[i * TK + k];
        g += (i + 1) * (data[i * TD] + 0.5 * data[i * TD + 1] + 2 * y);
        arena[i] = params[0];
    }
    grads[0] = (float)g;
}

static int same_files(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* Semi-supervised batches of dynamically binarised data: 3 epochs at once, and
 * 1 epoch then resumed to 3, give the same checkpoint; another seed does not. */
static void test_resume_semi_dynamic(void) {
    vr_program p = labelled_program();
    p.train.fn = order_graph;
    p.binary_dynamic = 1;
    const char *x = tmp_path(".csv"), *y = tmp_path(".csv");
    char text[4096] = "", labels[512] = "";
    for (int i = 0; i < 48; i++) {
        snprintf(text + strlen(text), sizeof text - strlen(text), "%.2f,%.2f\n", 0.05 + 0.018 * i, 0.9 - 0.015 * i);
        snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%d\n", (i * 5) % TK);
    }
    text_file(x, text);
    text_file(y, labels);
    char one[512], two[512], three[512], ck1[600], ck2[600], ck3[600];
    snprintf(one, sizeof one, "%s", tmp_path("-run"));
    snprintf(two, sizeof two, "%s", tmp_path("-run"));
    snprintf(three, sizeof three, "%s", tmp_path("-run"));
    vr_options o = {0};
    o.data = x;
    o.labels = y;
    o.labelled = 9;
    o.epochs = 3;
    o.batch = TB;
    o.lr = 1e-2;
    o.optimizer = VR_ADAM;
    o.seed = 11;
    o.out_dir = one;
    CU_ASSERT_EQUAL(vr_train(&p, &o), 0);
    o.out_dir = two;
    o.epochs = 1;
    CU_ASSERT_EQUAL(vr_train(&p, &o), 0);
    o.resume_dir = two;
    o.epochs = 3;
    CU_ASSERT_EQUAL(vr_train(&p, &o), 0);
    o.resume_dir = NULL;
    o.out_dir = three;
    o.seed = 12;
    CU_ASSERT_EQUAL(vr_train(&p, &o), 0);
    snprintf(ck1, sizeof ck1, "%s/checkpoint.vaeckpt", one);
    snprintf(ck2, sizeof ck2, "%s/checkpoint.vaeckpt", two);
    snprintf(ck3, sizeof ck3, "%s/checkpoint.vaeckpt", three);
    CU_ASSERT(same_files(ck1, ck2));
    CU_ASSERT(!same_files(ck1, ck3));
    o.out_dir = two; /* resuming with another labelled subset is refused */
    o.resume_dir = two;
    o.seed = 11;
    o.labelled = 12;
    o.epochs = 4;
    CU_ASSERT_EQUAL(vr_train(&p, &o), 1);
    const char *dirs[3] = {one, two, three};
    for (int d = 0; d < 3; d++) {
        char f[600];
        snprintf(f, sizeof f, "%s/checkpoint.vaeckpt", dirs[d]);
        remove(f);
        snprintf(f, sizeof f, "%s/log.csv", dirs[d]);
        remove(f);
        rmdir(dirs[d]);
    }
    remove(x);
    remove(y);
}

int main(void) {
    const test_case tests[] = {
        {"label files", test_label_files},
        {"hostile label files", test_hostile_label_files},
        {"fashion-mnist labels beside the images", test_fashion_labels_beside_the_images},
        {"labelled subset", test_labelled_subset},
        {"semi-supervised batches", test_semi_batches},
        {"dynamic binarisation", test_dynamic_binarisation},
        {"dynamic data loads intensities", test_dynamic_data_loads_intensities},
        {"classification error", test_classification_error},
        {"training data blocks", test_training_blocks},
        {"resume with semi-supervised batches and dynamic data", test_resume_semi_dynamic},
        {NULL, NULL},
    };
    return run_suite("labels", tests);
}
