/* Front-end unit tests: tokens and their locations, the AST the parser builds
 * (as dumps), and the checker's verdicts and messages. */
#include "tests/testutil.h"

#include "parser/model.h"
#include "parser/parse_state.h"
#include "parser/parser.h"
#include "lexer/lexer.h"

static const char *const GAUSS =
    "# Gaussian VAE\n"
    "model fashion_gauss\n"
    "\n"
    "data x[784] : binary\n"
    "\n"
    "latent z[20] ~ normal(0, 1)\n"
    "\n"
    "encoder q(z | x) {\n"
    "    h = relu(dense(x, 400))\n"
    "    return normal(mean: dense(h, 20), logvar: dense(h, 20))\n"
    "}\n"
    "\n"
    "decoder p(x | z) {\n"
    "    h = relu(dense(z, 400))\n"
    "    return bernoulli(logits: dense(h, 784))\n"
    "}\n"
    "\n"
    "estimator reparam\n"
    "\n"
    "train {\n"
    "    data = \"fashion-mnist:train\"\n"
    "    test = \"fashion-mnist:test\"\n"
    "    optimizer = adam(lr: 1e-3)\n"
    "    batch = 128\n"
    "    epochs = 10\n"
    "}\n";

static const char *const MIXTURE =
    "model fashion_mixture\n"
    "data x[784] : binary\n"
    "latent z ~ categorical(10)\n"
    "encoder q(z | x) {\n"
    "    h = relu(dense(x, 512))\n"
    "    h = relu(dense(h, 256))\n"
    "    return categorical(logits: dense(h, 10))\n"
    "}\n"
    "decoder p(x | z) {\n"
    "    h = relu(dense(onehot(z), 256))\n"
    "    h = relu(dense(h, 512))\n"
    "    return bernoulli(logits: dense(h, 784))\n"
    "}\n"
    "baseline b(x) {\n"
    "    return bernoulli(logits: param[784])\n"
    "}\n"
    "estimator reinforce(samples: 10, baseline: b)\n";

/* ---- the lexer */
static void test_tokens_and_locations(void) {
    vae_source *src = vae_source_from_string("t.vae", "model m # note\n  data x[2] : real\n1e-3 .5 7 \"s\"", NULL);
    struct vae_parse_state ps = {.src = src, .line = 1, .col = 1};
    yyscan_t sc;
    yylex_init_extra(&ps, &sc);
    YY_BUFFER_STATE b = yy_scan_string(src->text, sc);
    struct {
        int tok, line, col;
    } want[] = {{T_MODEL, 1, 1}, {T_IDENT, 1, 7}, {T_DATA, 2, 3}, {T_IDENT, 2, 8}, {'[', 2, 9}, {T_NUMBER, 2, 10},
                {']', 2, 11},   {':', 2, 13},   {T_IDENT, 2, 15}, {T_NUMBER, 3, 1}, {T_NUMBER, 3, 6}, {T_NUMBER, 3, 9},
                {T_STRING, 3, 11}, {0, 3, 14}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        YYSTYPE v;
        YYLTYPE l;
        int tok = yylex(&v, &l, sc);
        CU_ASSERT_EQUAL(tok, want[i].tok);
        if (tok) {
            CU_ASSERT_EQUAL(l.first_line, want[i].line);
            CU_ASSERT_EQUAL(l.first_column, want[i].col);
        }
        if (tok == T_NUMBER && i == 9) CU_ASSERT_DOUBLE_EQUAL(v.num.value, 1e-3, 1e-12);
        if (tok == T_STRING) CU_ASSERT_STRING_EQUAL(v.str, "s");
    }
    yy_delete_buffer(b, sc);
    yylex_destroy(sc);
    vae_source_free(src);
}

/* ---- the parser, through AST dumps */
static char *dump_of(const char *text) {
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    vae_source *src = vae_source_from_string("t.vae", text, f);
    ast_model *m = vae_parse(src);
    if (m) ast_dump(f, m);
    else fputs("PARSE FAILED\n", f);
    fclose(f);
    vae_source_free(src);
    return out;
}

static void test_ast_of_the_gaussian_model(void) {
    char *d = dump_of(GAUSS);
    const char *want =
        "model fashion_gauss\n"
        "  data x [784] binary\n"
        "  latent z [20] ~ normal(0, 1)\n"
        "  encoder q(z | x)\n"
        "    h = relu(dense(x, 400))\n"
        "    return normal(mean: dense(h, 20), logvar: dense(h, 20))\n"
        "  decoder p(x | z)\n"
        "    h = relu(dense(z, 400))\n"
        "    return bernoulli(logits: dense(h, 784))\n"
        "  estimator reparam()\n"
        "  train\n"
        "    data = \"fashion-mnist:train\"\n"
        "    test = \"fashion-mnist:test\"\n"
        "    optimizer = adam(lr: 0.001)\n"
        "    batch = 128\n"
        "    epochs = 10\n";
    CU_ASSERT_STRING_EQUAL(d, want);
    if (strcmp(d, want)) fprintf(stderr, "\n%s", d);
    free(d);
}

static void test_ast_of_the_mixture_model(void) {
    char *d = dump_of(MIXTURE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "  latent z [] ~ categorical(10)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "    h = relu(dense(onehot(z), 256))\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "  baseline b(x)\n    return bernoulli(logits: param[784])\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "  estimator reinforce(samples: 10, baseline: b)\n"));
    free(d);
}

static void test_precedence_and_grouping(void) {
    char *d = dump_of("model m\nencoder q(z | x, y) { a = -x * y + 2 / z - (b - c) * 3\n return f(k: 1, 2) }\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "  encoder q(z | x, y)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "    a = ((((-x) * y) + (2 / z)) - ((b - c) * 3))\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "    return f(k: 1, 2)\n"));
    free(d);
    d = dump_of("model m\nlatent z[4, 5] ~ categorical(logits: param[4, 5])\nestimator iwae(samples: 50, gradient: dreg)\n"
                "estimator gumbel(samples: 1, temperature: 0.5, hard: true)\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "  latent z [4, 5] ~ categorical(logits: param[4, 5])\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "  estimator iwae(samples: 50, gradient: dreg)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "  estimator gumbel(samples: 1, temperature: 0.5, hard: true)\n"));
    free(d);
}

/* ---- the checker */
typedef struct {
    int ok;
    char *errors;
    vae_model model;
} checked;

static checked check_text(const char *text) {
    checked c = {0};
    size_t len = 0;
    FILE *f = open_memstream(&c.errors, &len);
    vae_source *src = vae_source_from_string("t.vae", text, f);
    ast_model *m = vae_parse(src);
    c.ok = m && vae_check(src, m, &c.model) == 0;
    fclose(f);
    c.model.src = NULL; /* freed below; the tests only read numbers */
    vae_source_free(src);
    return c;
}

static void test_check_accepts_the_gaussian_model(void) {
    checked c = check_text(GAUSS);
    CU_ASSERT_TRUE(c.ok);
    CU_ASSERT_STRING_EQUAL(c.errors, "");
    CU_ASSERT_EQUAL(c.model.param_floats, 652824);
    CU_ASSERT_EQUAL(c.model.nparams, 10);
    CU_ASSERT_EQUAL(c.model.data_dim, 784);
    CU_ASSERT_EQUAL(c.model.latents[0].nvars, 20);
    CU_ASSERT_EQUAL(c.model.est.kind, EST_REPARAM);
    CU_ASSERT_EQUAL(c.model.train.batch, 128);
    CU_ASSERT_DOUBLE_EQUAL(c.model.train.lr, 1e-3, 1e-12);
    free(c.errors);
}

static void test_check_accepts_the_mixture_model(void) {
    checked c = check_text(MIXTURE);
    CU_ASSERT_TRUE(c.ok);
    CU_ASSERT_STRING_EQUAL(c.errors, "");
    CU_ASSERT_EQUAL(c.model.latents[0].kind, LATENT_CATEGORICAL);
    CU_ASSERT_EQUAL(c.model.latents[0].states, 10);
    CU_ASSERT_EQUAL(c.model.latents[0].width, 10);
    CU_ASSERT_EQUAL(c.model.est.kind, EST_REINFORCE);
    CU_ASSERT_EQUAL(c.model.est.samples, 10);
    CU_ASSERT_PTR_NOT_NULL(c.model.est.baseline);
    /* encoder 784*512+512 + 512*256+256 + 256*10+10, decoder 10*256+256 + 256*512+512 + 512*784+784, baseline 784 */
    CU_ASSERT_EQUAL(c.model.param_floats, 401920 + 131328 + 2570 + 2816 + 131584 + 402192 + 784);
    free(c.errors);
}

static void test_check_convolution_shapes(void) {
    checked c = check_text("model m\ndata x[784] : binary\nlatent z[2] ~ normal(0, 1)\n"
                           "encoder q(z | x) { h = conv2d(reshape(x, 1, 28, 28), 8, 4, stride: 2, pad: 1)\n"
                           "    return normal(mean: dense(flatten(h), 2), logvar: dense(x, 2)) }\n"
                           "decoder p(x | z) { h = conv_transpose2d(reshape(dense(z, 98), 2, 7, 7), 3, 4, stride: 4)\n"
                           "    return bernoulli(logits: dense(flatten(h), 784)) }\n"
                           "estimator reparam\n");
    CU_ASSERT_TRUE_FATAL(c.ok);
    /* check_text has freed the names by now: the parameters in their fixed order, encoder.h
     * (conv), .mean, .logvar, decoder.h (dense), decoder.h#2 (conv), .logits */
    CU_ASSERT_EQUAL_FATAL(c.model.nparams, 12);
    const vae_param *w = &c.model.params[0], *t = &c.model.params[8];
    CU_ASSERT(w->ndims == 4 && w->dims[0] == 4 && w->dims[1] == 4 && w->dims[2] == 1 && w->dims[3] == 8);
    CU_ASSERT(t->ndims == 4 && t->dims[0] == 2 && t->dims[1] == 4 && t->dims[2] == 4 && t->dims[3] == 3);
    /* [8, 14, 14] into the mean's dense layer, [3, 28, 28] into the logits' */
    CU_ASSERT_EQUAL(c.model.params[2].dims[0], 8 * 14 * 14);
    CU_ASSERT_EQUAL(c.model.params[10].dims[0], 3 * 28 * 28);
    CU_ASSERT(c.model.params[1].ndims == 1 && c.model.params[1].dims[0] == 8);
    CU_ASSERT(c.model.params[9].ndims == 1 && c.model.params[9].dims[0] == 3);
    free(c.errors);
}

static void expect_errors(const char *text, const char *const *needles) {
    checked c = check_text(text);
    CU_ASSERT_FALSE(c.ok);
    for (int i = 0; needles[i]; i++) {
        CU_ASSERT_PTR_NOT_NULL(strstr(c.errors, needles[i]));
        if (!strstr(c.errors, needles[i])) fprintf(stderr, "\nmissing: %s\nin:\n%s", needles[i], c.errors);
    }
    free(c.errors);
}

static void test_check_reports_every_error(void) {
    const char *text = "model bad\n"
                       "data x[4] : binary\n"
                       "latent z[2] ~ normal(0, 1)\n"
                       "encoder q(z | x) {\n"
                       "    h = tanh(dense(x, 3)) + dense(x, 5)\n"
                       "    return normal(mean: dense(hh, 2), logvar: dense(x, 3))\n"
                       "}\n"
                       "decoder p(x | z) {\n"
                       "    return bernoulli(logits: dense(z, 4))\n"
                       "}\n"
                       "estimator analytic\n";
    const char *const want[] = {"t.vae:5:27: error: shape mismatch in '+': [3] and [5]",
                                "t.vae:6:31: error: unknown name 'hh'",
                                "t.vae:6:39: error: shape mismatch: 'logvar' of the encoder of latent 'z' has shape [3], "
                                "expected [2]",
                                "t.vae:11:11: error: estimator 'analytic' does not apply to normal latent 'z'", NULL};
    expect_errors(text, want);
}

static void test_check_estimator_misuse(void) {
    const char *const no_enc[] = {"error: estimator 'reparam' needs an encoder for latent 'z'", NULL};
    expect_errors("model m\ndata x[4] : binary\nlatent z[2] ~ normal(0, 1)\n"
                  "decoder p(x | z) { return bernoulli(logits: dense(z, 4)) }\nestimator reparam\n",
                  no_enc);
    const char *const big[] = {"sums over every joint state of the latents, and they have 1e+20 (at most", NULL};
    expect_errors("model m\ndata x[4] : binary\nlatent z[20] ~ categorical(10)\n"
                  "decoder p(x | z) { return bernoulli(logits: dense(flatten(onehot(z)), 4)) }\nestimator exact\n",
                  big);
    const char *const opt[] = {"t.vae:5:19: error: estimator 'reparam' has no option 'temperature'",
                               "t.vae:6:11: error: a model has one estimator; this is a second one", NULL};
    expect_errors("model m\ndata x[4] : binary\nlatent z[2] ~ normal(0, 1)\n"
                  "decoder p(x | z) { return bernoulli(logits: dense(z, 4)) }\nestimator reparam(temperature: 1)\n"
                  "estimator reparam\n",
                  opt);
    const char *const baseline[] = {"unknown baseline 'bb'", NULL};
    expect_errors("model m\ndata x[4] : binary\nlatent z ~ categorical(3)\n"
                  "encoder q(z | x) { return categorical(logits: dense(x, 3)) }\n"
                  "decoder p(x | z) { return bernoulli(logits: dense(onehot(z), 4)) }\n"
                  "estimator reinforce(samples: 2, baseline: bb)\n",
                  baseline);
}

static void test_check_distributions_and_shapes(void) {
    const char *const cat[] = {"categorical latent 'z' enters a network through onehot(z)",
                               "shape mismatch: 'logits' of the encoder of latent 'z' has shape [3], expected [2, 3]",
                               NULL};
    expect_errors("model m\ndata x[4] : binary\nlatent z[2] ~ categorical(3)\n"
                  "encoder q(z | x) { return categorical(logits: dense(x, 3)) }\n"
                  "decoder p(x | z) { return bernoulli(logits: dense(z, 4)) }\nestimator analytic\n",
                  cat);
    const char *const prior[] = {"a normal prior is written normal(0, 1)", "dense() expects a vector, got shape [2, 3]",
                                 NULL};
    expect_errors("model m\ndata x[4] : binary\nlatent z[2] ~ normal(0, 2)\nlatent w[2] ~ categorical(3)\n"
                  "decoder p(x | z, w) { return bernoulli(logits: dense(onehot(w), 4) + dense(z, 4)) }\n"
                  "estimator prior(samples: 3)\n",
                  prior);
    const char *const missing[] = {"the model declares no data", "the model declares no decoder",
                                   "the model declares no estimator", NULL};
    expect_errors("model m\nlatent z[2] ~ normal(0, 1)\n", missing);
    const char *const reshape[] = {"cannot reshape [6] (6 values) to [4, 2] (8 values)", NULL};
    expect_errors("model m\ndata x[4] : binary\nlatent z[2] ~ normal(0, 1)\n"
                  "encoder q(z | x) { return normal(mean: dense(x, 2), scale: exp(dense(x, 2))) }\n"
                  "decoder p(x | z) { h = reshape(dense(z, 6), 4, 2)\n return bernoulli(logits: dense(flatten(h), 4)) }\n"
                  "estimator reparam\n",
                  reshape);
    const char *const train[] = {"unknown train setting 'epoch'", "'batch' must be an integer from 1 to 65536",
                                 "'optimizer' is adam(lr: F) or sgd(lr: F, momentum: F)", NULL};
    expect_errors("model m\ndata x[4] : binary\nlatent z[2] ~ normal(0, 1)\n"
                  "encoder q(z | x) { return normal(mean: dense(x, 2), logvar: dense(x, 2)) }\n"
                  "decoder p(x | z) { return bernoulli(logits: dense(z, 4)) }\nestimator reparam\n"
                  "train { epoch = 3\n batch = 0\n optimizer = rmsprop(lr: 1) }\n",
                  train);
}

static void test_syntax_errors_are_all_reported(void) {
    const char *const want[] = {"t.vae:2:11: error: unexpected identifier, expecting ':'",
                                "t.vae:4:15: error: unexpected character '@'", NULL};
    expect_errors("model m\ndata x[4] binary\nlatent z[2] ~ normal(0, 1)\nestimator iwae@\n", want);
    /* the shape is optional in the grammar (a label has none); the checker asks for it */
    const char *const shape[] = {"t.vae:2:1: error: data 'x' needs a shape, as in data x[784] : binary", NULL};
    expect_errors("model m\ndata x : binary\nlatent z[2] ~ normal(0, 1)\nestimator iwae\n", shape);
    const char *const str[] = {"t.vae:2:13: error: unterminated string", NULL};
    expect_errors("model m\ntrain { a = \"abc\n}\n", str);
}

int main(void) {
    static const test_case tests[] = {
        {"tokens and locations", test_tokens_and_locations},
        {"AST of the Gaussian model", test_ast_of_the_gaussian_model},
        {"AST of the mixture model", test_ast_of_the_mixture_model},
        {"precedence and grouping", test_precedence_and_grouping},
        {"check accepts the Gaussian model", test_check_accepts_the_gaussian_model},
        {"check accepts the mixture model", test_check_accepts_the_mixture_model},
        {"check: convolution shapes and weights", test_check_convolution_shapes},
        {"check reports every error", test_check_reports_every_error},
        {"check: estimator misuse", test_check_estimator_misuse},
        {"check: distributions and shapes", test_check_distributions_and_shapes},
        {"syntax errors are all reported", test_syntax_errors_are_all_reported},
        {NULL, NULL},
    };
    return run_suite("front end", tests);
}
