/* Sizes and settings at their limits: every product of dimensions is computed
 * in 64 bits and a model too large to index (parser/limits.h) is refused at
 * its place; a batch too large for a model is refused by g_build; the model
 * file's settings are validated with the ranges and words of the options
 * (parser/settings.c).  Before these checks, each model below was accepted:
 * sizes wrapped around in int (a negative parameter count, data of 65,536
 * values) and lr: 1e999 trained with an infinite rate. */
#include "tests/testutil.h"

#include "codegen/graph.h"
#include "parser/limits.h"
#include "parser/model.h"
#include "parser/settings.h"
#include "vae/compiler.h"

/* A model with data x[DATA], an encoder and decoder with one layer of UNITS
 * between them, and the given latent, estimator and train block. */
static char *model_text(const char *data, const char *latent, const char *encoder_ret, const char *units,
                        const char *estimator, const char *train) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fprintf(f,
            "model m\n"
            "data x[%s] : binary\n"
            "latent %s\n"
            "encoder q(z | x) {\n"
            "    h = relu(dense(x, %s))\n"
            "    return %s\n"
            "}\n"
            "decoder p(x | z) {\n"
            "    return bernoulli(logits: dense(z, %s))\n"
            "}\n"
            "estimator %s\n"
            "%s",
            data, latent, units, encoder_ret, data, estimator, train);
    fclose(f);
    return text;
}

/* Checks `text`; returns the messages (to free), and whether it passed. */
static char *check(const char *text, int *ok) {
    char *errors = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&errors, &len);
    vae_unit *u = vae_unit_from_string("t.vae", text, f);
    *ok = u != NULL;
    vae_unit_free(u);
    fclose(f);
    return errors;
}

static void expect_refused(const char *text, const char *message) {
    int ok;
    char *errors = check(text, &ok);
    CU_ASSERT_FALSE(ok);
    CU_ASSERT_PTR_NOT_NULL(strstr(errors, message));
    if (!strstr(errors, message)) fprintf(stderr, "\nmissing: %s\nin:\n%s", message, errors);
    free(errors);
}

static const char *const NORMAL20 = "z[20] ~ normal(0, 1)";
static const char *const GAUSS_RET = "normal(mean: dense(h, 20), logvar: dense(h, 20))";

static void test_huge_dense(void) {
    char *t = model_text("784", NORMAL20, GAUSS_RET, "999999999", "reparam", "");
    expect_refused(t, "t.vae:5:14: error: parameter 'encoder.h.weight' [784, 999999999]: 783999999216 values, "
                      "more than the 2^31 - 1 that vaec can index\n"
                      "        h = relu(dense(x, 999999999))\n"
                      "                 ^");
    free(t);
    /* each tensor fits, the sum does not: 784 * 2,700,000 + 2,700,000 + 2,700,000 * 20 */
    t = model_text("784", NORMAL20, GAUSS_RET, "2700000", "reparam", "");
    expect_refused(t, "t.vae:6:25: error: with 'encoder.mean.weight' the model's parameters: 2173500000 values, more "
                      "than the 2^31 - 1 that vaec can index");
    int ok;
    char *errors = check(t, &ok);
    const char *second = strstr(errors, "the model's parameters");
    CU_ASSERT_PTR_NULL(second ? strstr(second + 1, "the model's parameters") : NULL); /* said once */
    free(errors);
    free(t);
}

static void test_huge_data_shapes(void) {
    /* 65536 * 65537 = 2^32 + 65536: int arithmetic took it for 65,536 values */
    char *t = model_text("65536, 65537", NORMAL20, GAUSS_RET, "10", "reparam", "");
    expect_refused(t, "t.vae:2:1: error: data 'x' [65536, 65537]: 4295032832 values per example, more than the "
                      "2^31 - 1 that vaec can index");
    free(t);
    /* 2^26 * 2^26 * 2^12 = 2^64: a 64-bit product wrapped around to 0 */
    t = model_text("67108864, 67108864, 4096", NORMAL20, GAUSS_RET, "10", "reparam", "");
    expect_refused(t, "t.vae:2:1: error: data 'x' [67108864, 67108864, 4096]: 1.84e+19 values per example");
    free(t);
    /* a latent, a param[] and a reshape past 64 bits */
    t = model_text("784", "z[100000000, 100000000, 100000000] ~ normal(0, 1)", GAUSS_RET, "10", "reparam", "");
    expect_refused(t, "t.vae:3:1: error: latent 'z' [100000000, 100000000, 100000000]: 1e+24 values per example");
    free(t);
    t = model_text("784", NORMAL20, "normal(mean: dense(h, 20), logvar: param[67108864, 67108864, 4096])", "10",
                   "reparam", "");
    expect_refused(t, "t.vae:6:47: error: parameter 'encoder.logvar' [67108864, 67108864, 4096]: 1.84e+19 values, "
                      "more than the 2^31 - 1");
    free(t);
    t = model_text("784", NORMAL20, "normal(mean: dense(flatten(reshape(h, 999999999, 999999999, 999999999)), 20), "
                   "logvar: dense(h, 20))", "10", "reparam", "");
    expect_refused(t, "t.vae:6:39: error: cannot reshape [10] (10 values) to [999999999, 999999999, 999999999] "
                      "(1e+27 values)");
    free(t);
    /* the parser's bound on a declared dimension says what it is */
    t = model_text("784", "z[999999999] ~ normal(0, 1)", GAUSS_RET, "10", "reparam", "");
    expect_refused(t, "t.vae:3:10: error: a dimension must be a positive integer, at most 100000000");
    free(t);
}

static void test_one_hot_and_samples(void) {
    /* 100,000 variables of 100,000 states: 10^10 one-hot values */
    char *t = model_text("784", "z[100000] ~ categorical(100000)", "categorical(logits: param[100000, 100000])", "10",
                         "reinforce(samples: 2)", "");
    expect_refused(t, "t.vae:3:1: error: latent 'z' [100000] of 100000 states: 10000000000 one-hot values per "
                      "example");
    free(t);
    /* 1000 x 1000 one-hot values per sample, 100,000 samples: 10^11 rows' values for one example */
    t = model_text("784", "z[1000] ~ categorical(1000)", "categorical(logits: reshape(dense(h, 1000000), 1000, 1000))",
                   "10", "reinforce(samples: 100000)", "");
    expect_refused(t, "t.vae:11:11: error: estimator 'reinforce' with 100000 samples of 1000000 values per example: "
                      "100000000000 values, more than the 2^31 - 1 that vaec can index");
    free(t);
    /* 2^16 joint states, the decoder on each: 65536 x 40000 values */
    t = model_text("40000", "z[16] ~ bernoulli(0.5)", "bernoulli(logits: dense(h, 16))", "10", "analytic", "");
    expect_refused(t, "t.vae:11:11: error: enumerating the latents' 65536 joint states, 40000 values each: "
                      "2621440000 values, more than the 2^31 - 1 that vaec can index");
    free(t);
    /* the same for the evaluation of an estimator that samples: it sums over the states exactly */
    t = model_text("40000", "z[16] ~ bernoulli(0.5)", "bernoulli(logits: dense(h, 16))", "10", "reinforce(samples: 2)",
                   "");
    expect_refused(t, "t.vae:11:11: error: enumerating the latents' 65536 joint states, 40000 values each");
    free(t);
}

/* A convolution's windows: 509 * 509 windows of 4 * 4 values per example, times 1000 samples. */
static const char *const CONV =
    "model c\n"
    "data x[262144] : binary\n"
    "latent z[4] ~ normal(0, 1)\n"
    "encoder q(z | x) {\n"
    "    h = flatten(conv2d(reshape(x, 1, 512, 512), 1, 4))\n"
    "    return normal(mean: dense(h, 4), logvar: dense(h, 4))\n"
    "}\n"
    "decoder p(x | z) {\n"
    "    return bernoulli(logits: dense(z, 262144))\n"
    "}\n"
    "estimator reparam(samples: %s)\n";

/* A categorical latent's logits add a dimension: one of VAE_MAX_DIMS dimensions wrote past the shape. */
static void test_categorical_dimensions(void) {
    char *t = model_text("784", "z[1, 1, 1, 1, 1, 1, 1, 2] ~ categorical(3)",
                         "categorical(logits: param[1, 1, 1, 1, 1, 1, 1, 2])", "10", "analytic", "");
    expect_refused(t, "t.vae:3:1: error: a categorical latent has at most 7 dimensions");
    free(t);
}

static void test_huge_conv(void) {
    char text[1024];
    snprintf(text, sizeof text, CONV, "1000");
    expect_refused(text, "t.vae:11:11: error: estimator 'reparam' with 1000 samples of 4145296 values per example: "
                         "4145296000 values");
    /* the convolution's own limits, computed in 64 bits */
    snprintf(text, sizeof text, CONV, "1");
    char *big = strstr(text, "conv2d(reshape(x, 1, 512, 512), 1, 4)");
    memcpy(big, "conv2d(reshape(x, 1, 512, 512), 9, 9)", strlen("conv2d(reshape(x, 1, 512, 512), 1, 4)"));
    expect_refused(text, "t.vae:5:17: error: conv2d() is too large");
}

/* g_build refuses a batch that makes a tensor pass the limit, and builds the same model at a batch that fits. */
static void test_batch_too_large(void) {
    char text[1024];
    snprintf(text, sizeof text, CONV, "1");
    vae_unit *u = vae_unit_from_string("c.vae", text, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    const vae_model *m = vae_unit_model(u);
    CU_ASSERT_EQUAL(m->max_example_values, 509L * 509 * 16);
    g_graph *g = g_build(m, GRAPH_TRAIN, 128, 1, stderr);
    CU_ASSERT_PTR_NOT_NULL(g);
    if (g) g_free(g);
    char *errors = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&errors, &len);
    g = g_build(m, GRAPH_TRAIN, 1000, 1, f); /* 1000 x 4145296 */
    fclose(f);
    CU_ASSERT_PTR_NULL(g);
    CU_ASSERT_PTR_NOT_NULL(strstr(errors, "c.vae: error: a batch of 1000 examples with 1 sample each is too large: "
                                          "its rows (examples times samples) times the widest row (4145296 values) "
                                          "come to 4145296000 values, more than the 2^31 - 1 that vaec can index in "
                                          "one tensor (a smaller --batch would fit)"));
    free(errors);
    vae_unit_free(u);
}

/* An enumeration's [batch, joint states] table: 2^16 x 2^16 values at the largest batch. */
static void test_enumerated_batch_too_large(void) {
    char *t = model_text("784", "z[16] ~ bernoulli(0.5)", "bernoulli(logits: dense(h, 16))", "10", "analytic", "");
    vae_unit *u = vae_unit_from_string("e.vae", t, stderr);
    free(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    g_graph *g = g_build(vae_unit_model(u), GRAPH_TRAIN, 128, 1, stderr);
    CU_ASSERT_PTR_NOT_NULL(g);
    if (g) g_free(g);
    char *errors = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&errors, &len);
    g = g_build(vae_unit_model(u), GRAPH_TRAIN, 65536, 1, f);
    fclose(f);
    CU_ASSERT_PTR_NULL(g);
    CU_ASSERT_PTR_NOT_NULL(strstr(errors, "its table of examples by joint states comes to 4294967296 values"));
    free(errors);
    vae_unit_free(u);
}

/* A model that trains at batch 128 but is too wide for the evaluation's own
 * 250 examples per call (and the IWAE's 1000 rows): those shrink, and the
 * model compiles (emitted C builds every graph). */
static void test_evaluation_batches_shrink(void) {
    char *t = model_text("10000000", "z[4] ~ normal(0, 1)", "normal(mean: dense(x, 4), logvar: dense(x, 4))", "1",
                         "reparam", "");
    vae_unit *u = vae_unit_from_string("w.vae", t, stderr);
    free(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    vae_build_opts o = vae_build_defaults(u);
    o.batch = 128;
    char *c = NULL, *h = NULL, *errors = NULL;
    size_t cl = 0, hl = 0, el = 0;
    FILE *cf = open_memstream(&c, &cl), *hf = open_memstream(&h, &hl), *ef = open_memstream(&errors, &el);
    int rc = vae_emit_c(u, &o, "w.vae", cf, hf, "w.h", ef);
    fclose(cf);
    fclose(hf);
    fclose(ef);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(errors, "");
    free(c);
    free(h);
    free(errors);
    vae_unit_free(u);
}

static void test_saturating_products(void) {
    CU_ASSERT_EQUAL(vae_size_mul(65536, 32767), 65536LL * 32767);
    CU_ASSERT_EQUAL(vae_size_mul(65536, 32768), VAE_MAX_VALUES + 1);
    long long n = 1;
    for (int i = 0; i < 8; i++) n = vae_size_mul(n, 999999999);
    CU_ASSERT_EQUAL(n, VAE_MAX_VALUES + 1);
    CU_ASSERT_EQUAL(vae_size_add(VAE_MAX_VALUES, 0), VAE_MAX_VALUES);
    CU_ASSERT_EQUAL(vae_size_add(VAE_MAX_VALUES, 1), VAE_MAX_VALUES + 1);
}

/* The model file's settings: the same ranges as the options, finite numbers only. */
static void test_settings_as_strict_as_options(void) {
    static const struct {
        const char *train, *option, *message;
    } cases[] = {
        {"train {\n    optimizer = adam(lr: 1e999)\n}\n", "--lr", "t.vae:13:22: error: 'lr' must be "},
        {"train {\n    optimizer = adam(lr: nan)\n}\n", "--lr", "t.vae:13:22: error: 'lr' must be "},
        {"train {\n    optimizer = adam(lr: -1e-3)\n}\n", "--lr", "t.vae:13:22: error: 'lr' must be "},
        {"train {\n    epochs = -1\n}\n", "--epochs", "t.vae:13:14: error: 'epochs' must be "},
        {"train {\n    batch = 0\n}\n", "--batch", "t.vae:13:13: error: 'batch' must be "},
        {"train {\n    batch = -128\n}\n", "--batch", "t.vae:13:13: error: 'batch' must be "},
        {"train {\n    batch = 100000\n}\n", "--batch", "t.vae:13:13: error: 'batch' must be "},
        {"train {\n    warmup = 1e999\n}\n", "--warmup", "t.vae:13:14: error: 'warmup' must be "},
        {"train {\n    seed = -1\n}\n", "--seed", "t.vae:13:12: error: 'seed' must be "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = model_text("784", NORMAL20, GAUSS_RET, "10", "reparam", cases[i].train);
        char words[128], want[256];
        /* the option's own words: vaec prints "--lr expects WORDS, got '...'" */
        vae_setting_words(vae_setting_option(cases[i].option), words, sizeof words);
        snprintf(want, sizeof want, "%s%s\n", cases[i].message, words);
        expect_refused(t, want);
        free(t);
    }
    const vae_setting *lr = vae_setting_named("lr");
    CU_ASSERT_FALSE(vae_setting_ok(lr, 1.0 / 0.0));
    CU_ASSERT_FALSE(vae_setting_ok(lr, 0.0 / 0.0));
    CU_ASSERT_FALSE(vae_setting_ok(lr, 0));
    CU_ASSERT_TRUE(vae_setting_ok(lr, 1e-3));
    double v;
    CU_ASSERT_EQUAL(vae_setting_parse(lr, "inf", &v), -1);
    CU_ASSERT_EQUAL(vae_setting_parse(lr, "1e999", &v), -1);
    CU_ASSERT_EQUAL(vae_setting_parse(vae_setting_option("--epochs"), "2.5", &v), -1);
    CU_ASSERT_EQUAL(vae_setting_parse(vae_setting_option("--epochs"), "3", &v), 0);
    CU_ASSERT_EQUAL(v, 3);
}

static void test_estimator_options_finite(void) {
    char *t = model_text("784", NORMAL20, GAUSS_RET, "10", "reparam(beta: 1e999)", "");
    expect_refused(t, "t.vae:11:19: error: 'beta' must be a non-negative number at most 1e6");
    free(t);
    t = model_text("784", "z ~ categorical(10)", "categorical(logits: dense(h, 10))", "10",
                   "gumbel(temperature: 1e999)", "");
    expect_refused(t, "t.vae:11:18: error: 'temperature' must be a positive number at most 1e6");
    free(t);
}

/* A model at the edge: the checker accepts it and records its widest row. */
static void test_large_valid_model(void) {
    char *t = model_text("784", NORMAL20, GAUSS_RET, "1000000", "reparam", "");
    int ok;
    char *errors = check(t, &ok);
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_STRING_EQUAL(errors, "");
    free(errors);
    free(t);
}

int main(void) {
    static const test_case tests[] = {
        {"a huge dense layer and too many parameters", test_huge_dense},
        {"data, latent, param and reshape shapes past 32 and 64 bits", test_huge_data_shapes},
        {"one-hot latents, samples and enumerated states", test_one_hot_and_samples},
        {"a categorical latent of too many dimensions", test_categorical_dimensions},
        {"a huge convolution", test_huge_conv},
        {"g_build: a batch too large for the model", test_batch_too_large},
        {"g_build: an enumeration's table too large", test_enumerated_batch_too_large},
        {"the evaluation's batches shrink to fit", test_evaluation_batches_shrink},
        {"saturating size products", test_saturating_products},
        {"train settings as strict as the options", test_settings_as_strict_as_options},
        {"estimator options finite", test_estimator_options_finite},
        {"a large model that fits", test_large_valid_model},
        {NULL, NULL}};
    return run_suite("sizes", tests);
}
