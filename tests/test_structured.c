/* Structured models (language version 1): gradients against finite differences
 * for every deterministic combination (analytic with reparam under fixed
 * noise, conditional priors, encoders that read latents, labels, relaxed
 * samples); mixed estimators unbiased against enumeration; exact log p(x)
 * against a brute-force sum; the ELBO of a linear-Gaussian two-layer model
 * against its closed form; the encode graph of encoders that read latents. */
#include <math.h>

#include "parser/model.h"
#include "tests/testutil.h"
#include "vae/compiler.h"

typedef void (*fn64)(double *params, double *grads, double *arena, const double *data, const vr_ctx *ctx);

typedef struct {
    vae_unit *u;
    vae_program *prog;
    const vr_program *rt;
    const vae_model *m;
    fn64 step, eval;
    double *grads, *arena, *eval_arena;
    int batch, K; /* K: the label's classes (0: none) */
} sprog;

static sprog build(const char *text, int batch, int with_eval) {
    sprog d = {.batch = batch};
    d.u = vae_unit_from_string("t.vae", text, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d.u);
    d.m = vae_unit_model(d.u);
    CU_ASSERT_FATAL(d.m->structured);
    vae_build_opts o = vae_build_defaults(d.u);
    o.batch = batch;
    o.eval = with_eval;
    o.eval_batch = batch;
    o.iwae = 0;
    o.double_precision = 1;
    d.prog = vae_program_build(d.u, &o, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d.prog);
    d.rt = vae_program_runtime(d.prog);
    d.step = (fn64)vae_program_function(d.prog, "vae_train_step");
    d.eval = with_eval ? (fn64)vae_program_function(d.prog, "vae_eval") : NULL;
    d.grads = calloc((size_t)d.rt->param_floats, sizeof(double));
    d.arena = calloc((size_t)d.rt->train.arena_floats, sizeof(double));
    d.eval_arena = with_eval ? calloc((size_t)d.rt->eval.arena_floats, sizeof(double)) : NULL;
    for (int i = 0; i < d.m->nlatents; i++)
        if (d.m->latents[i].label) d.K = d.m->latents[i].states;
    return d;
}

static void release(sprog *d) {
    free(d->grads);
    free(d->arena);
    free(d->eval_arena);
    vae_program_free(d->prog);
    vae_unit_free(d->u);
}

/* The data block of driver.h: x, then y_kept and y_true when there is a label.  Example b
 * has label b % K, kept for even b (hidden for odd b). */
static double *data_block(const sprog *d, uint64_t seed) {
    int B = d->batch, D = d->m->data_dim, K = d->K;
    double *x = calloc((size_t)B * (D + 2 * K), sizeof(double));
    for (int i = 0; i < B * D; i++) {
        double u01 = vr_uniform(seed, 2, (uint64_t)i);
        x[i] = d->m->binary ? (u01 > 0.5) : 2 * u01 - 1;
    }
    for (int b = 0; K && b < B; b++) {
        if (b % 2 == 0) x[B * D + b * K + b % K] = 1;
        x[B * D + B * K + b * K + b % K] = 1;
    }
    return x;
}

static double run(sprog *d, double *p, double *g, const double *x, uint64_t step) {
    vr_ctx ctx = {.seed = 7, .step = step};
    d->step(p, g, d->arena, x, &ctx);
    return d->arena[d->rt->train.objective];
}

static void random_params(const sprog *d, double *p, uint64_t seed, double scale) {
    for (long i = 0; i < d->rt->param_floats; i++) p[i] = scale * (vr_uniform(seed, 1, (uint64_t)i) - 0.5);
}

/* Relative error of the derived gradient against central differences, worst over tensors. */
static double gradcheck(const char *text, int batch) {
    sprog d = build(text, batch, 0);
    size_t P = (size_t)d.rt->param_floats;
    double *p = calloc(P, sizeof *p), *g = calloc(P, sizeof *g), *g2 = calloc(P, sizeof *g2);
    double *x = data_block(&d, 3), worst = 0, norm = 0;
    random_params(&d, p, 5, 1.0);
    run(&d, p, g, x, 11);
    for (int t = 0; t < d.m->nparams; t++) {
        const vae_param *q = &d.m->params[t];
        for (int k = 0; k < (q->size < 6 ? q->size : 6); k++) {
            long i = q->offset + (q->size <= 6 ? k : (long)(vr_uniform(9, (uint32_t)t, (uint64_t)k) * q->size));
            double keep = p[i], h = 1e-6;
            p[i] = keep + h;
            double up = -run(&d, p, g2, x, 11);
            p[i] = keep - h;
            double down = -run(&d, p, g2, x, 11);
            p[i] = keep;
            double fd = (up - down) / (2 * h), err = fabs(fd - g[i]) / fmax(1.0, fmax(fabs(fd), fabs(g[i])));
            if (err > worst) {
                worst = err;
                if (err > 1e-6) fprintf(stderr, "\n    %s[%ld]: derived %.9g, differences %.9g", q->name, i - q->offset, g[i], fd);
            }
        }
    }
    for (size_t i = 0; i < P; i++) norm += g[i] * g[i];
    CU_ASSERT(norm > 1e-8); /* not vacuous */
    free(p);
    free(g);
    free(g2);
    free(x);
    release(&d);
    return worst;
}

#define GM_MODEL(EST)                                                                                                  \
    "model gm\n"                                                                                                   \
    "data x[6] : binary\n"                                                                                         \
    "latent y ~ categorical(3)\n"                                                                                  \
    "latent z[2]\n"                                                                                                \
    "prior pz(z | y) { return normal(mean: dense(onehot(y), 2), logvar: dense(onehot(y), 2)) }\n"                  \
    "encoder qy(y | x) {\n  h = tanh(dense(x, 4))\n  return categorical(logits: dense(h, 3))\n}\n"                 \
    "encoder qz(z | x, y) {\n  h = tanh(dense(concat(x, onehot(y)), 4))\n"                                         \
    "  return normal(mean: dense(h, 2), logvar: dense(h, 2))\n}\n"                                                 \
    "decoder p(x | z) {\n  h = tanh(dense(z, 4))\n  return bernoulli(logits: dense(h, 6))\n}\n"                    \
    "estimator " EST "\n"

#define TWO_LAYER(EST)                                                                                                 \
    "model two\n"                                                                                                  \
    "data x[5] : binary\n"                                                                                         \
    "latent z2[2] ~ normal(0, 1)\n"                                                                                \
    "latent z1[3]\n"                                                                                               \
    "prior p1(z1 | z2) {\n  h = tanh(dense(z2, 4))\n  return normal(mean: dense(h, 3), logvar: dense(h, 3))\n}\n"  \
    "encoder q1(z1 | x) {\n  h = tanh(dense(x, 4))\n  return normal(mean: dense(h, 3), logvar: dense(h, 3))\n}\n"  \
    "encoder q2(z2 | z1) {\n  return normal(mean: dense(z1, 2), logvar: dense(z1, 2))\n}\n"                        \
    "decoder p(x | z1) {\n  return bernoulli(logits: dense(z1, 5))\n}\n"                                           \
    "estimator " EST "\n"

#define M2_MODEL(EST, TRAIN)                                                                                           \
    "model m2\n"                                                                                                   \
    "data x[6] : binary\n"                                                                                         \
    "data y : label(3)\n"                                                                                          \
    "latent z[2] ~ normal(0, 1)\n"                                                                                 \
    "encoder qy(y | x) {\n  return categorical(logits: dense(x, 3))\n}\n"                                          \
    "encoder qz(z | x, y) {\n  return normal(mean: dense(concat(x, onehot(y)), 2), logvar: dense(x, 2))\n}\n"      \
    "decoder p(x | y, z) {\n  return bernoulli(logits: dense(concat(onehot(y), z), 6))\n}\n"                      \
    "estimator " EST "\n" TRAIN

static const char *CVAE = "model cvae\n"
                          "data x[6] : binary\n"
                          "data y : label(3)\n"
                          "latent z[2] ~ normal(0, 1)\n"
                          "encoder q(z | x, y) {\n  return normal(mean: dense(concat(x, onehot(y)), 2), logvar: dense(x, 2))\n}\n"
                          "decoder p(x | z, y) {\n  return bernoulli(logits: dense(concat(z, onehot(y)), 6))\n}\n"
                          "estimator reparam\n";

/* A Bernoulli latent whose encoder reads a normal one: binary concrete in a structured pass. */
#define BINARY_ON_NORMAL(EST)                                                                                          \
    "model bn\n"                                                                                                   \
    "data x[5] : binary\n"                                                                                         \
    "latent z[2] ~ normal(0, 1)\n"                                                                                 \
    "latent b[3] ~ bernoulli(logits: param[3])\n"                                                                  \
    "encoder qz(z | x) {\n  return normal(mean: dense(x, 2), logvar: dense(x, 2))\n}\n"                           \
    "encoder qb(b | x, z) {\n  return bernoulli(logits: dense(concat(x, z), 3))\n}\n"                             \
    "decoder p(x | z, b) {\n  return bernoulli(logits: dense(concat(z, b), 5))\n}\n"                              \
    "estimator " EST "\n"

static void test_gradients_match_differences(void) {
    const struct {
        const char *what, *text;
    } cases[] = {
        {"class and style (analytic y, reparam z)", GM_MODEL("elbo(y: analytic, z: reparam, samples: 2, beta: 0.7)")},
        {"class and style (relaxed y)", GM_MODEL("elbo(y: gumbel(temperature: 0.7), z: reparam)")},
        {"bernoulli reading a normal (binary concrete)", BINARY_ON_NORMAL("elbo(z: reparam, b: gumbel(temperature: 0.6), samples: 2)")},
        {"two stochastic layers, elbo", TWO_LAYER("elbo(z1: reparam, z2: reparam, samples: 3)")},
        {"two stochastic layers, iwae", TWO_LAYER("iwae(samples: 4)")},
        {"semi-supervised, labels kept and hidden", M2_MODEL("elbo(y: analytic, z: reparam)", "train {\n  classify = 2\n}\n")},
        {"conditional VAE", CVAE},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double worst = gradcheck(cases[c].text, 4);
        printf("\n    %-44s worst relative error %.2g", cases[c].what, worst);
        CU_ASSERT(worst < 1e-6);
    }
}

/* Mean and variance over R draws of every gradient coordinate. */
static void moments(sprog *d, double *p, const double *x, int R, double *mean, double *var) {
    size_t P = (size_t)d->rt->param_floats;
    memset(mean, 0, P * sizeof *mean);
    memset(var, 0, P * sizeof *var);
    for (int r = 0; r < R; r++) {
        run(d, p, d->grads, x, (uint64_t)r + 1);
        for (size_t i = 0; i < P; i++) {
            double delta = d->grads[i] - mean[i];
            mean[i] += delta / (r + 1);
            var[i] += delta * (d->grads[i] - mean[i]);
        }
    }
    for (size_t i = 0; i < P; i++) var[i] /= R - 1;
}

/* reinforce on the class, reparam on the style: the same mean gradient as the class summed out. */
static void test_mixed_estimators_unbiased(void) {
    enum { B = 4, R = 3000 };
    sprog exact = build(GM_MODEL("elbo(y: analytic, z: reparam, samples: 2)"), B, 0);
    size_t P = (size_t)exact.rt->param_floats;
    double *p = malloc(P * sizeof *p), *m0 = malloc(P * sizeof *m0), *v0 = malloc(P * sizeof *v0);
    double *m1 = malloc(P * sizeof *m1), *v1 = malloc(P * sizeof *v1), *x = data_block(&exact, 4);
    random_params(&exact, p, 8, 1.0);
    moments(&exact, p, x, R, m0, v0);
    const char *mixed[] = {"elbo(y: reinforce(baseline: loo), z: reparam, samples: 2)", "elbo(y: reinforce, z: reparam, samples: 2)"};
    char text[2048];
    for (int e = 0; e < 2; e++) {
        snprintf(text, sizeof text, GM_MODEL("%s"), mixed[e]);
        sprog d = build(text, B, 0);
        CU_ASSERT_EQUAL_FATAL((size_t)d.rt->param_floats, P);
        moments(&d, p, x, R, m1, v1);
        double worst = 0, signal = 0;
        for (size_t i = 0; i < P; i++) {
            double se = sqrt(v0[i] / R + v1[i] / R), z = fabs(m1[i] - m0[i]) / (se + 1e-12);
            if (fabs(m1[i] - m0[i]) > 1e-9 && z > worst) worst = z;
            signal += fabs(m0[i]);
        }
        printf("\n    %-56s largest |difference| / standard error: %.2f", mixed[e], worst);
        CU_ASSERT(worst < 5.0);
        CU_ASSERT(signal > 1e-3);
        release(&d);
    }
    free(p);
    free(m0);
    free(v0);
    free(m1);
    free(v1);
    free(x);
    release(&exact);
}

/* The parameter of network `net` whose name ends in `suffix` ("weight", "bias", or "" for a
 * param[...] table); exactly one must match. */
static const vae_param *param_of(const vae_model *m, const char *net, const char *suffix) {
    const vae_param *found = NULL;
    size_t n = strlen(net), s = strlen(suffix);
    for (int t = 0; t < m->nparams; t++) {
        const char *name = m->params[t].name;
        size_t len = strlen(name);
        if (strncmp(name, net, n) || name[n] != '.') continue;
        if (s ? len < s || strcmp(name + len - s, suffix) : strstr(name, "weight") || strstr(name, "bias")) continue;
        CU_ASSERT_PTR_NULL(found);
        found = &m->params[t];
    }
    if (!found) fprintf(stderr, "\n    no parameter %s.*%s", net, suffix);
    CU_ASSERT_PTR_NOT_NULL_FATAL(found);
    return found;
}

#define ENUM_TWO_LAYER(EST)                                                                                            \
    "model en\n"                                                                                                   \
    "data x[3] : binary\n"                                                                                         \
    "latent y1 ~ categorical(2)\n"                                                                                 \
    "latent y2\n"                                                                                                  \
    "prior p2(y2 | y1) {\n  return categorical(logits: dense(onehot(y1), 3))\n}\n"                                 \
    "encoder q1(y1 | x) {\n  return categorical(logits: dense(x, 2))\n}\n"                                         \
    "encoder q2(y2 | x, y1) {\n  return categorical(logits: dense(concat(x, onehot(y1)), 3))\n}\n"                 \
    "decoder p(x | y2) {\n  return bernoulli(logits: dense(onehot(y2), 3))\n}\n"                                   \
    "estimator " EST "\n"

/* log p(x) by brute force: sum over y1 (uniform over 2) and y2 ~ softmax(W2[y1] + b2) of
 * prod_d Bernoulli(x_d; sigmoid(W4[y2, d] + b4[d])), the networks written out by hand. */
static double brute_logpx(const vae_model *m, const double *p, const double *x) {
    const double *W2 = p + param_of(m, "p2", "weight")->offset, *b2 = p + param_of(m, "p2", "bias")->offset;
    const double *W4 = p + param_of(m, "decoder", "weight")->offset, *b4 = p + param_of(m, "decoder", "bias")->offset;
    double total = 0;
    for (int y1 = 0; y1 < 2; y1++) {
        double l[3], z = 0;
        for (int k = 0; k < 3; k++) z += exp(l[k] = W2[y1 * 3 + k] + b2[k]);
        for (int y2 = 0; y2 < 3; y2++) {
            double px = 1;
            for (int d = 0; d < 3; d++) {
                double s = 1 / (1 + exp(-(W4[y2 * 3 + d] + b4[d])));
                px *= x[d] ? s : 1 - s;
            }
            total += 0.5 * exp(l[y2]) / z * px;
        }
    }
    return log(total);
}

static void test_exact_against_brute_force(void) {
    enum { B = 8 };
    sprog exact = build(ENUM_TWO_LAYER("exact"), B, 1), elbo = build(ENUM_TWO_LAYER("elbo(y1: analytic, y2: analytic)"), B, 1);
    size_t P = (size_t)exact.rt->param_floats;
    CU_ASSERT_EQUAL_FATAL((size_t)elbo.rt->param_floats, P);
    CU_ASSERT_FATAL(elbo.rt->eval.logpx_rows >= 0);
    double *p = malloc(P * sizeof *p), worst = 0, gap = 0;
    for (uint64_t trial = 0; trial < 4; trial++) {
        random_params(&exact, p, 20 + trial, 3.0);
        double *x = data_block(&exact, 30 + trial);
        run(&exact, p, exact.grads, x, 1);
        run(&elbo, p, elbo.grads, x, 1);
        vr_ctx ctx = {.seed = 7, .step = VR_STEP_EVAL};
        elbo.eval(p, NULL, elbo.eval_arena, x, &ctx);
        for (int b = 0; b < B; b++) {
            double truth = brute_logpx(exact.m, p, x + b * 3);
            double compiled = exact.arena[exact.rt->train.value_rows + b];
            double evaluated = elbo.eval_arena[elbo.rt->eval.logpx_rows + b];
            double bound = elbo.arena[elbo.rt->train.value_rows + b];
            worst = fmax(worst, fmax(fabs(compiled - truth), fabs(evaluated - truth)));
            CU_ASSERT(bound <= truth + 1e-9);
            gap += truth - bound;
        }
        free(x);
    }
    printf("\n    exact log p(x) against the brute-force sum: largest error %.2g; mean ELBO gap %.3f nats", worst, gap / (4 * B));
    CU_ASSERT(worst < 1e-9);
    CU_ASSERT(gap > 1e-3); /* the ELBO is a strict bound here: the check above is not vacuous */
    free(p);
    release(&exact);
    release(&elbo);
}

static const char *LINEAR_GAUSSIAN = "model lg\n"
                                     "data x[1] : real\n"
                                     "latent z2 ~ normal(0, 1)\n"
                                     "latent z1\n"
                                     "prior p1(z1 | z2) {\n  return normal(mean: dense(z2, 1), logvar: param[1])\n}\n"
                                     "encoder q1(z1 | x) {\n  return normal(mean: dense(x, 1), logvar: param[1])\n}\n"
                                     "encoder q2(z2 | z1) {\n  return normal(mean: dense(z1, 1), logvar: param[1])\n}\n"
                                     "decoder p(x | z1) {\n  return normal(mean: dense(z1, 1), logvar: param[1])\n}\n"
                                     "estimator elbo(z1: reparam, z2: reparam)\n";

/* The ELBO of the linear-Gaussian model in closed form (every expectation a Gaussian moment). */
static double linear_gaussian_elbo(const vae_model *m, const double *p, double x) {
#define W(net) p[param_of(m, net, "weight")->offset]
#define Bias(net) p[param_of(m, net, "bias")->offset]
#define V(net) exp(p[param_of(m, net, "")->offset])
    double a1 = W("q1"), c1 = Bias("q1"), v1 = V("q1"), a2 = W("q2"), c2 = Bias("q2"), v2 = V("q2");
    double a3 = W("p1"), c3 = Bias("p1"), v3 = V("p1"), a4 = W("decoder"), c4 = Bias("decoder"), v4 = V("decoder");
#undef W
#undef Bias
#undef V
    const double L2PI = log(2 * M_PI);
    double m1 = a1 * x + c1;
    double llx = -0.5 * (L2PI + log(v4)) - 0.5 * ((x - a4 * m1 - c4) * (x - a4 * m1 - c4) + a4 * a4 * v1) / v4;
    double mz2 = a2 * m1 + c2, ez2 = mz2 * mz2 + a2 * a2 * v1 + v2;
    double lpz2 = -0.5 * L2PI - 0.5 * ez2;
    double md = (1 - a3 * a2) * m1 - a3 * c2 - c3, vd = (1 - a3 * a2) * (1 - a3 * a2) * v1 + a3 * a3 * v2;
    double lpz1 = -0.5 * (L2PI + log(v3)) - 0.5 * (md * md + vd) / v3;
    double hq = 0.5 * (L2PI + 1 + log(v1)) + 0.5 * (L2PI + 1 + log(v2));
    return llx + lpz1 + lpz2 + hq;
}

static void test_linear_gaussian_elbo(void) {
    enum { B = 16, R = 2000 };
    sprog d = build(LINEAR_GAUSSIAN, B, 0);
    size_t P = (size_t)d.rt->param_floats;
    double *p = malloc(P * sizeof *p), *x = calloc(B, sizeof *x);
    random_params(&d, p, 41, 1.5);
    for (int b = 0; b < B; b++) x[b] = 0.7; /* every row the same example: B draws a call */
    double sum = 0, sum2 = 0;
    for (int r = 0; r < R; r++) {
        run(&d, p, d.grads, x, (uint64_t)r + 1);
        for (int b = 0; b < B; b++) {
            double v = d.arena[d.rt->train.value_rows + b];
            sum += v;
            sum2 += v * v;
        }
    }
    double n = (double)R * B, mean = sum / n, se = sqrt((sum2 / n - mean * mean) / n);
    double truth = linear_gaussian_elbo(d.m, p, 0.7);
    printf("\n    linear-Gaussian two-layer ELBO: sampled %.5f +- %.5f, closed form %.5f", mean, se, truth);
    CU_ASSERT(fabs(mean - truth) < 5 * se + 1e-9);
    CU_ASSERT(se > 0 && se < 0.05 * fabs(truth) + 0.05);
    free(p);
    free(x);
    release(&d);
}

/* The encode graph (vaec encode, reconstruct, interpolate) of an encoder that reads a latent:
 * y2's encoder runs at y1's posterior mean, its state probabilities softmax(x W1 + b1), and
 * gives logits concat(x, p1) W2 + b2: the networks written out by hand. */
static void test_encode_at_parents_means(void) {
    vae_unit *u = vae_unit_from_string("t.vae", ENUM_TWO_LAYER("elbo(y1: analytic, y2: analytic)"), stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    const vae_model *m = vae_unit_model(u);
    vae_build_opts o = vae_build_defaults(u);
    o.train = o.eval = o.iwae = 0;
    o.api = 1;
    o.double_precision = 1;
    vae_program *prog = vae_program_build(u, &o, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(prog);
    const vr_program *rt = vae_program_runtime(prog);
    CU_ASSERT_EQUAL_FATAL(rt->encode_width, 2 + 3);
    fn64 encode = (fn64)vae_program_function(prog, "vae_encode");
    CU_ASSERT_PTR_NOT_NULL_FATAL(encode);
    int B = rt->encode.batch;
    double *p = calloc((size_t)rt->param_floats, sizeof *p), *x = calloc((size_t)B * 3, sizeof *x);
    double *arena = calloc((size_t)rt->encode.arena_floats, sizeof *arena), worst = 0;
    for (long i = 0; i < rt->param_floats; i++) p[i] = 3.0 * (vr_uniform(41, 1, (uint64_t)i) - 0.5);
    for (int i = 0; i < B * 3; i++) x[i] = vr_uniform(42, 2, (uint64_t)i) > 0.5;
    vr_ctx ctx = {.seed = 7, .step = VR_STEP_EVAL};
    encode(p, NULL, arena, x, &ctx);
    const double *W1 = p + param_of(m, "q1", "weight")->offset, *b1 = p + param_of(m, "q1", "bias")->offset;
    const double *W2 = p + param_of(m, "q2", "weight")->offset, *b2 = p + param_of(m, "q2", "bias")->offset;
    for (int b = 0; b < B; b++) {
        double in[5], want[5], z = 0; /* in: x, then y1's probabilities; want: y1's logits, y2's */
        for (int k = 0; k < 2; k++) {
            want[k] = b1[k];
            for (int d = 0; d < 3; d++) want[k] += (in[d] = x[b * 3 + d]) * W1[d * 2 + k];
            z += exp(want[k]);
        }
        for (int k = 0; k < 2; k++) in[3 + k] = exp(want[k]) / z;
        for (int k = 0; k < 3; k++) {
            want[2 + k] = b2[k];
            for (int d = 0; d < 5; d++) want[2 + k] += in[d] * W2[d * 3 + k];
        }
        for (int c = 0; c < 5; c++) worst = fmax(worst, fabs(arena[rt->api_out_encode + b * 5 + c] - want[c]));
    }
    printf("\n    encode of y2 at y1's probabilities: worst difference %.2g over %d examples", worst, B);
    CU_ASSERT(worst < 1e-12);
    free(arena);
    free(x);
    free(p);
    vae_program_free(prog);
    vae_unit_free(u);
}

/* An observed label in the encode graph: z's mean is concat(x, onehot(y)) W + b with y the data
 * block's y_kept (after the B rows of x), its log-variance x W' + b': the network by hand. */
static void test_encode_reads_observed_label(void) {
    vae_unit *u = vae_unit_from_string("t.vae", CVAE, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    const vae_model *m = vae_unit_model(u);
    vae_build_opts o = vae_build_defaults(u);
    o.train = o.eval = o.iwae = 0;
    o.api = 1;
    o.double_precision = 1;
    vae_program *prog = vae_program_build(u, &o, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(prog);
    const vr_program *rt = vae_program_runtime(prog);
    CU_ASSERT_EQUAL_FATAL(rt->encode_width, 2 + 2); /* z's mean and log-variance; y gives none */
    fn64 encode = (fn64)vae_program_function(prog, "vae_encode");
    CU_ASSERT_PTR_NOT_NULL_FATAL(encode);
    int B = rt->encode.batch;
    double *p = calloc((size_t)rt->param_floats, sizeof *p), *x = calloc((size_t)B * (6 + 2 * 3), sizeof *x);
    double *arena = calloc((size_t)rt->encode.arena_floats, sizeof *arena), worst = 0;
    for (long i = 0; i < rt->param_floats; i++) p[i] = 3.0 * (vr_uniform(43, 1, (uint64_t)i) - 0.5);
    for (int i = 0; i < B * 6; i++) x[i] = vr_uniform(44, 2, (uint64_t)i) > 0.5;
    for (int b = 0; b < B; b++) x[B * 6 + b * 3 + b % 3] = 1; /* y_kept: example b is of class b mod 3 */
    vr_ctx ctx = {.seed = 7, .step = VR_STEP_EVAL};
    encode(p, NULL, arena, x, &ctx);
    const double *Wm = p + param_of(m, "encoder", "mean.weight")->offset, *bm = p + param_of(m, "encoder", "mean.bias")->offset;
    const double *Wv = p + param_of(m, "encoder", "logvar.weight")->offset, *bv = p + param_of(m, "encoder", "logvar.bias")->offset;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < 2; k++) {
            double mean = bm[k] + Wm[(6 + b % 3) * 2 + k], logvar = bv[k];
            for (int d = 0; d < 6; d++) {
                mean += x[b * 6 + d] * Wm[d * 2 + k];
                logvar += x[b * 6 + d] * Wv[d * 2 + k];
            }
            worst = fmax(worst, fmax(fabs(arena[rt->api_out_encode + b * 4 + k] - mean),
                                     fabs(arena[rt->api_out_encode + b * 4 + 2 + k] - logvar)));
        }
    printf("\n    encode of z given the observed label: worst difference %.2g over %d examples", worst, B);
    CU_ASSERT(worst < 1e-12);
    free(arena);
    free(x);
    free(p);
    vae_program_free(prog);
    vae_unit_free(u);
}

int main(void) {
    const test_case tests[] = {
        {"gradients of structured models match central differences", test_gradients_match_differences},
        {"reinforce on one latent, reparam on another: unbiased", test_mixed_estimators_unbiased},
        {"exact log p(x) of a two-layer discrete model, and ELBO <= it", test_exact_against_brute_force},
        {"linear-Gaussian two-layer ELBO against its closed form", test_linear_gaussian_elbo},
        {"the encode graph runs encoders at their parents' posterior means", test_encode_at_parents_means},
        {"the encode graph reads an observed label from the data block", test_encode_reads_observed_label},
        {NULL, NULL},
    };
    return run_suite("structured models", tests);
}
