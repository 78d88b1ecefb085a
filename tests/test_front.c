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

/* vaec check's estimator line and objective for GAUSS or MIXTURE with another estimator line. */
static char *summary_with(const char *model, const char *estimator) {
    const char *at = strstr(model, "estimator "), *end = strchr(at, '\n') + 1;
    char *text = NULL, *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fprintf(f, "%.*sestimator %s\n%s", (int)(at - model), model, estimator, end);
    fclose(f);
    FILE *err = fopen("/dev/null", "w");
    vae_source *src = vae_source_from_string("t.vae", text, err);
    ast_model *ast = vae_parse(src);
    vae_model m;
    f = open_memstream(&out, &len);
    if (ast && vae_check(src, ast, &m) == 0) {
        vae_print_summary(f, &m);
        vae_print_objective(f, &m);
    } else
        fputs("(does not check)", f);
    fclose(f);
    fclose(err);
    vae_source_free(src);
    free(text);
    return out;
}

/* Every version 0 estimator writes its objective as a formula (the table's, every
 * placeholder expanded) and every option it was given in the summary. */
static void test_check_writes_every_estimator_out(void) {
    static const struct {
        const char *model, *estimator, *summary, *formula[3];
    } cases[] = {
        {MIXTURE, "reinforce(samples: 2, baseline: loo, beta: 0.5)", "estimator reinforce(samples: 2, baseline: loo, beta: 0.5)\n",
         {"(1/2) sum_{s=1..2} log p(x | z_s) - 0.5 * KL(q(z | x) || p(z))", "c_s = the mean of log p(x | z_t)"}},
        {MIXTURE, "reinforce(samples: 3, baseline: b)", "estimator reinforce(samples: 3, baseline: b)\n",
         {"c = log p_b(x), the baseline network b", "- c_s) grad log q(z_s | x)"}},
        {MIXTURE, "reinforce", "estimator reinforce\n", {"c = 0 (no baseline)", "(log p(x | z) - c) grad log q(z | x)"}},
        {MIXTURE, "analytic(beta: 2)", "estimator analytic(beta: 2)\n",
         {"ELBO(x) = sum_z q(z | x) log p(x | z) - 2 * KL(q(z | x) || p(z))"}},
        {MIXTURE, "uniform(samples: 4)", "estimator uniform(samples: 4)\n",
         {"(1/4) sum_{s=1..4} J q(z_s | x) log p(x | z_s)", "uniformly from the J joint states"}},
        {MIXTURE, "exact", "estimator exact\n", {"log p(x) = log sum_z p(z) p(x | z)"}},
        {MIXTURE, "prior(samples: 7)", "estimator prior(samples: 7)\n", {"log (1/7) sum_{k=1..7} p(x | z_k),  z_k ~ p(z)"}},
        {MIXTURE, "vimco(samples: 5)", "estimator vimco(samples: 5)\n",
         {"log (1/5) sum_{k=1..5} w_k", "z_k ~ q(z | x)", "leave-one-out control variates"}},
        {MIXTURE, "gumbel(samples: 2, temperature: 0.25, hard: true)",
         "estimator gumbel(samples: 2, temperature: 0.25, hard: true)\n",
         {"y_s = softmax((logits + g_s) / 0.25)", "straight-through"}},
        {MIXTURE, "gumbel", "estimator gumbel\n", {"y = softmax((logits + g) / 1)", "at the discrete samples"}},
        {GAUSS, "reparam(samples: 3, beta: 0.5)", "estimator reparam(samples: 3, beta: 0.5)\n",
         {"(1/3) sum_{s=1..3} log p(x | z_s) - 0.5 * KL", "z_s = mean + exp(logvar / 2) * eps_s",
          "KL = 0.5 * sum(mean^2 + exp(logvar) - 1 - logvar)"}},
        {GAUSS, "iwae(samples: 4, gradient: dreg)", "estimator iwae(samples: 4, gradient: dreg)\n",
         {"IWAE(x) = log (1/4) sum_{k=1..4} w_k", "z_k = mean + exp(logvar / 2) * eps_k", "doubly reparameterised"}},
        {GAUSS, "iwae(samples: 4, beta: 3)", "estimator iwae(samples: 4, beta: 3)\n",
         {"log w_k = log p(x | z_k) + 3 * (log p(z_k) - log q(z_k | x))"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = summary_with(cases[i].model, cases[i].estimator);
        int ok = strstr(out, cases[i].summary) && !strstr(out, "see docs/estimators.md");
        for (int k = 0; k < 3 && cases[i].formula[k]; k++) ok &= strstr(out, cases[i].formula[k]) != NULL;
        for (const char *b = strchr(out, '{'); b; b = strchr(b + 1, '{')) ok &= b - out >= 4 && strncmp(b - 4, "sum_", 4) == 0;
        ok &= (strstr(cases[i].estimator, "dreg") != NULL) == (strstr(out, "doubly") != NULL);
        if (!ok) printf("\n%s:\n%s", cases[i].estimator, out);
        CU_ASSERT_TRUE(ok);
        free(out);
    }
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

/* ---- version 1: the contract models of docs/language.md ---- */

static checked check_example(const char *name) {
    const char *top = getenv("top_srcdir");
    char path[4096];
    snprintf(path, sizeof path, "%s/examples/%s", top && *top ? top : "..", name);
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL(f);
    char *text = calloc(1, 1 << 16);
    if (f) {
        fread(text, 1, (1 << 16) - 1, f);
        fclose(f);
    }
    checked c = check_text(text);
    if (!c.ok) fprintf(stderr, "\n%s: %s", name, c.errors);
    free(text);
    return c;
}

static void test_structured_gmvae(void) {
    checked c = check_example("fashion_gmvae.vae");
    CU_ASSERT_TRUE_FATAL(c.ok);
    const vae_model *m = &c.model;
    CU_ASSERT(m->structured && m->nlatents == 2 && !m->binary_dynamic);
    const vae_latent *y = &m->latents[0], *z = &m->latents[1];
    CU_ASSERT(y->kind == LATENT_CATEGORICAL && y->states == 10 && !y->label && !y->prior_net);
    CU_ASSERT(z->kind == LATENT_NORMAL && z->nvars == 16 && z->prior_net && z->prior.kind == DIST_NORMAL);
    CU_ASSERT(z->np_parents == 1 && z->p_parents[0] == 0 && y->np_parents == 0);
    CU_ASSERT(z->nq_parents == 1 && z->q_parents[0] == 0 && y->nq_parents == 0);
    CU_ASSERT(m->posterior_order[0] == 0 && m->posterior_order[1] == 1);
    CU_ASSERT(m->prior_order[0] == 0 && m->prior_order[1] == 1);
    CU_ASSERT(m->est.kind == EST_ELBO && m->est.samples == 1 && m->est.beta == 1);
    CU_ASSERT(y->est.kind == EST_ANALYTIC && z->est.kind == EST_REPARAM);
    free(c.errors);
}

static void test_structured_iwae2(void) {
    checked c = check_example("fashion_iwae2.vae");
    CU_ASSERT_TRUE_FATAL(c.ok);
    const vae_model *m = &c.model;
    CU_ASSERT(m->structured && m->binary && m->binary_dynamic && m->nlatents == 2);
    const vae_latent *z2 = &m->latents[0], *z1 = &m->latents[1];
    CU_ASSERT(z2->nvars == 50 && z1->nvars == 100 && z2->prior.standard && z1->prior_net);
    CU_ASSERT(z1->np_parents == 1 && z1->p_parents[0] == 0 && z1->nq_parents == 0);
    CU_ASSERT(z2->nq_parents == 1 && z2->q_parents[0] == 1 && z2->np_parents == 0);
    CU_ASSERT(m->posterior_order[0] == 1 && m->posterior_order[1] == 0); /* z1 from x, then z2 from z1 */
    CU_ASSERT(m->prior_order[0] == 0 && m->prior_order[1] == 1);         /* z2, then z1 from z2 */
    CU_ASSERT(m->est.kind == EST_IWAE && m->est.samples == 5);
    free(c.errors);
}

static void test_structured_m2(void) {
    checked c = check_example("fashion_m2.vae");
    CU_ASSERT_TRUE_FATAL(c.ok);
    const vae_model *m = &c.model;
    CU_ASSERT(m->structured && m->nlatents == 2 && m->data_dim == 784);
    const vae_latent *z = &m->latents[0], *y = &m->latents[1]; /* labels after the latents */
    CU_ASSERT(y->label && y->kind == LATENT_CATEGORICAL && y->nvars == 1 && y->states == 10 && y->width == 10);
    CU_ASSERT(y->encoder && y->prior.kind == DIST_CATEGORICAL && !y->prior.a);
    CU_ASSERT(z->nq_parents == 1 && z->q_parents[0] == 1 && y->nq_parents == 0);
    CU_ASSERT(m->posterior_order[0] == 1 && m->posterior_order[1] == 0);
    CU_ASSERT(m->prior_order[0] == 0 && m->prior_order[1] == 1);
    CU_ASSERT(m->est.kind == EST_ELBO && y->est.kind == EST_ANALYTIC && z->est.kind == EST_REPARAM);
    CU_ASSERT(m->train.labelled == 1000 && m->train.classify == 50);
    free(c.errors);
}

static void test_structured_cvae_and_version0(void) {
    checked c = check_example("fashion_cvae.vae");
    CU_ASSERT_TRUE_FATAL(c.ok);
    const vae_model *m = &c.model;
    const vae_latent *z = &m->latents[0], *y = &m->latents[1];
    CU_ASSERT(m->structured && y->label && !y->encoder && z->nq_parents == 1 && z->q_parents[0] == 1);
    /* `estimator reparam` on a structured model: elbo with reparam on every inferred latent */
    CU_ASSERT(m->est.kind == EST_ELBO && z->est.kind == EST_REPARAM);
    free(c.errors);
    checked g = check_example("fashion_gauss.vae");
    CU_ASSERT_TRUE_FATAL(g.ok);
    CU_ASSERT(!g.model.structured && g.model.est.kind == EST_REPARAM && g.model.posterior_order[0] == 0);
    free(g.errors);
}

static void test_structured_ast_dump(void) {
    const char *text = "model m\ndata x[4] : binary(dynamic)\ndata y : label(3) ~ categorical(logits: param[3])\n"
                       "latent z[2]\nprior pz(z | y) { return normal(mean: dense(onehot(y), 2), logvar: param[2]) }\n";
    size_t len = 0;
    char *out = NULL;
    FILE *f = open_memstream(&out, &len);
    vae_source *src = vae_source_from_string("t.vae", text, f);
    ast_model *m = vae_parse(src);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    ast_dump(f, m);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "data x [4] binary(dynamic)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "data y [] label(3) ~ categorical(logits: param[3])\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "latent z [2] (prior network)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "prior pz(z | y)\n"));
    if (!strstr(out, "prior pz(z | y)")) fprintf(stderr, "\n%s", out);
    vae_source_free(src);
    free(out);
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
        {"structured: gmvae parents and orders", test_structured_gmvae},
        {"structured: iwae2 parents and orders", test_structured_iwae2},
        {"structured: m2 label, parents and orders", test_structured_m2},
        {"structured: cvae; version 0 stays one level", test_structured_cvae_and_version0},
        {"structured: AST dump", test_structured_ast_dump},
        {"check: estimator misuse", test_check_estimator_misuse},
        {"check writes every estimator's options and formula", test_check_writes_every_estimator_out},
        {"check: distributions and shapes", test_check_distributions_and_shapes},
        {"syntax errors are all reported", test_syntax_errors_are_all_reported},
        {NULL, NULL},
    };
    return run_suite("front end", tests);
}
