/* Discrete latents: the sampled estimators are unbiased for the analytic
 * gradient, a trained baseline lowers REINFORCE's variance, the bounds hold,
 * and a 2-state model matches values computed by hand. */
#include <math.h>

#include "codegen/graph.h"
#include "tests/step_program.h"

/* Every step here runs at seed 99. */
static void run(step_program *d, double *params, const double *x, uint64_t step) {
    step_program_run(d, params, x, 99, step);
}

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static const char *MODEL = "model unb\n"
                           "data x[8] : binary\n"
                           "latent z ~ categorical(3)\n"
                           "encoder q(z | x) { h = tanh(dense(x, 4))\n"
                           "    return categorical(logits: dense(h, 3)) }\n"
                           "decoder p(x | z) { return bernoulli(logits: dense(onehot(z), 8)) }\n"
                           "baseline b(x) { return bernoulli(logits: param[8]) }\n"
                           "estimator %s\n";

static char *model_with(const char *est) {
    static char buf[8][1024];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, 1024, MODEL, est);
    return b;
}

/* Synthetic data: three 8-bit prototypes, each bit flipped with probability 0.1. */
static void synthetic(double *x, int n, uint64_t seed) {
    static const int proto[3][8] = {{1, 1, 1, 1, 0, 0, 0, 0}, {0, 0, 1, 1, 1, 1, 0, 0}, {1, 0, 1, 0, 1, 0, 1, 0}};
    for (int i = 0; i < n; i++) {
        int k = (int)(vr_uniform(seed, 1, (uint64_t)i) * 3);
        for (int d = 0; d < 8; d++) {
            int bit = proto[k][d];
            if (vr_uniform(seed, 2, (uint64_t)(i * 8 + d)) < 0.1) bit = !bit;
            x[i * 8 + d] = bit;
        }
    }
}

/* Mean and variance, over R draws, of every coordinate of the gradient. */
static void moments(step_program *d, double *params, const double *x, int R, double *mean, double *var) {
    size_t P = (size_t)d->rt->param_floats;
    memset(mean, 0, P * sizeof(double));
    memset(var, 0, P * sizeof(double));
    for (int r = 0; r < R; r++) {
        run(d, params, x, (uint64_t)r + 1);
        for (size_t i = 0; i < P; i++) {
            double delta = d->grads[i] - mean[i];
            mean[i] += delta / (r + 1);
            var[i] += delta * (d->grads[i] - mean[i]);
        }
    }
    for (size_t i = 0; i < P; i++) var[i] /= R - 1;
}

static void test_sampled_estimators_are_unbiased(void) {
    enum { B = 4, R = 4000 };
    step_program exact = step_program_build(model_with("analytic"), B);
    size_t P = (size_t)exact.rt->param_floats;
    double *params = malloc(P * sizeof(double)), x[B * 8];
    for (size_t i = 0; i < P; i++) params[i] = vr_uniform(5, 3, i) - 0.5;
    synthetic(x, B, 7);
    run(&exact, params, x, 0);
    double *truth = malloc(P * sizeof(double)), *mean = malloc(P * sizeof(double)), *var = malloc(P * sizeof(double));
    memcpy(truth, exact.grads, P * sizeof(double));
    const char *estimators[] = {"uniform(samples: 1)", "reinforce(samples: 1)", "reinforce(samples: 2, baseline: b)",
                                "reinforce(samples: 3, baseline: loo)"};
    for (int e = 0; e < 4; e++) {
        step_program d = step_program_build(model_with(estimators[e]), B);
        CU_ASSERT_EQUAL_FATAL((size_t)d.rt->param_floats, P);
        moments(&d, params, x, R, mean, var);
        double worst = 0, signal = 0;
        for (int t = 0; t < d.m->nparams; t++) {
            const vae_param *q = &d.m->params[t];
            if (starts_with(q->name, "baseline.")) continue; /* eta follows its own objective */
            for (long i = q->offset; i < q->offset + q->size; i++) {
                double se = sqrt(var[i] / R), z = fabs(mean[i] - truth[i]) / (se + 1e-12);
                if (fabs(mean[i] - truth[i]) > 1e-9 && z > worst) worst = z;
                signal += fabs(truth[i]);
            }
        }
        printf("\n    %-36s largest |mean - analytic| / standard error: %.2f", estimators[e], worst);
        CU_ASSERT(worst < 5.0);
        CU_ASSERT(signal > 1e-3);
        step_program_free(&d);
    }
    free(params);
    free(truth);
    free(mean);
    free(var);
    step_program_free(&exact);
}

/* Trains the model with REINFORCE + baseline, then compares the variance of
 * the encoder gradient with and without the baseline at those parameters. */
static void test_baseline_lowers_variance(void) {
    enum { B = 16, N = 128, R = 400 };
    step_program train = step_program_build(model_with("reinforce(samples: 4, baseline: b)"), B);
    size_t P = (size_t)train.rt->param_floats;
    double *params = malloc(P * sizeof(double)), *data = malloc(sizeof(double) * N * 8);
    for (size_t i = 0; i < P; i++) params[i] = 0.4 * (vr_uniform(6, 3, i) - 0.5);
    synthetic(data, N, 11);
    for (int s = 0; s < 600; s++) {
        run(&train, params, data + (size_t)(s % (N / B)) * B * 8, (uint64_t)s + 1000);
        for (size_t i = 0; i < P; i++) params[i] -= 0.1 * train.grads[i];
    }
    double *mean = malloc(P * sizeof(double)), *var = malloc(P * sizeof(double)), total[3] = {0, 0, 0};
    const char *estimators[] = {"reinforce(samples: 4)", "reinforce(samples: 4, baseline: b)",
                                "reinforce(samples: 4, baseline: loo)"};
    for (int e = 0; e < 3; e++) {
        step_program d = step_program_build(model_with(estimators[e]), B);
        moments(&d, params, data, R, mean, var);
        for (int t = 0; t < d.m->nparams; t++)
            if (starts_with(d.m->params[t].name, "encoder."))
                for (long i = d.m->params[t].offset; i < d.m->params[t].offset + d.m->params[t].size; i++) total[e] += var[i];
        step_program_free(&d);
    }
    printf("\n    encoder-gradient variance on a trained model: reinforce %.4g, with baseline %.4g, leave-one-out %.4g",
           total[0], total[1], total[2]);
    CU_ASSERT(total[1] < total[0]);
    CU_ASSERT(total[2] < total[0]);
    free(params);
    free(data);
    free(mean);
    free(var);
    step_program_free(&train);
}

/* exact log p(x) >= ELBO for every example, so the KL gap is >= 0. */
static void test_bounds(void) {
    enum { B = 8 };
    step_program d = step_program_build(model_with("analytic"), B);
    size_t P = (size_t)d.rt->param_floats;
    double *params = malloc(P * sizeof(double)), x[B * 8];
    for (uint64_t trial = 0; trial < 5; trial++) {
        for (size_t i = 0; i < P; i++) params[i] = 2 * (vr_uniform(trial, 3, i) - 0.5);
        synthetic(x, B, trial);
        run(&d, params, x, 0);
        for (int b = 0; b < B; b++) {
            double elbo = d.arena[d.rt->train.recon_rows + b] - d.arena[d.rt->train.kl_rows + b];
            double logpx = d.arena[d.rt->train.logpx_rows + b];
            CU_ASSERT(logpx >= elbo - 1e-9);
            CU_ASSERT(d.arena[d.rt->train.kl_rows + b] >= -1e-12);
        }
    }
    free(params);
    step_program_free(&d);
}

/* Two states, two pixels: every value by hand. */
static void test_two_state_model_by_hand(void) {
    const char *text = "model two\n"
                       "data x[2] : binary\n"
                       "latent z ~ categorical(2)\n"
                       "encoder q(z | x) { return categorical(logits: param[2]) }\n"
                       "decoder p(x | z) { return bernoulli(logits: dense(onehot(z), 2)) }\n"
                       "estimator analytic\n";
    step_program d = step_program_build(text, 1);
    size_t P = (size_t)d.rt->param_floats;
    CU_ASSERT_EQUAL_FATAL(P, 2 + 4 + 2);
    double params[8];
    const double qlog[2] = {0.3, -0.4}, W[2][2] = {{1.0, -2.0}, {0.5, 0.7}}, bias[2] = {0.1, -0.3};
    for (int t = 0; t < d.m->nparams; t++) {
        const vae_param *q = &d.m->params[t];
        double *dst = params + q->offset;
        if (strcmp(q->name, "encoder.logits") == 0) memcpy(dst, qlog, sizeof qlog);
        else if (strcmp(q->name, "decoder.logits.weight") == 0) memcpy(dst, W, sizeof W); /* [onehot, pixel] */
        else if (strcmp(q->name, "decoder.logits.bias") == 0) memcpy(dst, bias, sizeof bias);
        else CU_FAIL("unexpected parameter");
    }
    const double x[2] = {1, 0};
    run(&d, params, x, 0);
    /* by hand */
    double ll[2], q[2], zq = exp(qlog[0]) + exp(qlog[1]);
    for (int j = 0; j < 2; j++) {
        ll[j] = 0;
        for (int px = 0; px < 2; px++) {
            double l = W[j][px] + bias[px];
            ll[j] += x[px] * l - log1p(exp(l));
        }
        q[j] = exp(qlog[j]) / zq;
    }
    double recon = q[0] * ll[0] + q[1] * ll[1];
    double kl = q[0] * log(q[0] / 0.5) + q[1] * log(q[1] / 0.5);
    double logpx = log(0.5 * exp(ll[0]) + 0.5 * exp(ll[1]));
    CU_ASSERT_DOUBLE_EQUAL(d.arena[d.rt->train.recon_rows], recon, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(d.arena[d.rt->train.kl_rows], kl, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(d.arena[d.rt->train.logpx_rows], logpx, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(d.arena[d.rt->train.objective], recon - kl, 1e-12);
    /* and the exact objective of the same model without encoder */
    step_program_free(&d);
}

/* VIMCO is unbiased for the gradient of E[IWAE bound]: the expectation over
 * every combination of K = 2 samples of a 3-state latent is computed by hand
 * here, and its gradient by central differences. */
static double tiny_expected_bound(const double *p, long off_q, long off_w, long off_b, const double *x) {
    double q[3], zq = 0, logw[3];
    for (int j = 0; j < 3; j++) zq += exp(p[off_q + j]);
    for (int j = 0; j < 3; j++) {
        q[j] = exp(p[off_q + j]) / zq;
        double ll = 0;
        for (int d = 0; d < 3; d++) {
            double l = p[off_w + j * 3 + d] + p[off_b + d];
            ll += x[d] * l - log1p(exp(l));
        }
        logw[j] = ll - log(3.0) - log(q[j]);
    }
    double e = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) e += q[a] * q[b] * log(0.5 * (exp(logw[a]) + exp(logw[b])));
    return e;
}

static void test_vimco_is_unbiased(void) {
    const char *text = "model tiny\n"
                       "data x[3] : binary\n"
                       "latent z ~ categorical(3)\n"
                       "encoder q(z | x) { return categorical(logits: param[3]) }\n"
                       "decoder p(x | z) { return bernoulli(logits: dense(onehot(z), 3)) }\n"
                       "estimator vimco(samples: 2)\n";
    step_program d = step_program_build(text, 1);
    size_t P = (size_t)d.rt->param_floats;
    CU_ASSERT_EQUAL_FATAL(P, 3 + 9 + 3);
    long off_q = vae_model_param(d.m, "encoder.logits")->offset;
    long off_w = vae_model_param(d.m, "decoder.logits.weight")->offset;
    long off_b = vae_model_param(d.m, "decoder.logits.bias")->offset;
    double params[15], truth[15], x[3] = {1, 0, 1};
    for (int i = 0; i < 15; i++) params[i] = 1.5 * (vr_uniform(31, 1, (uint64_t)i) - 0.5);
    for (int i = 0; i < 15; i++) { /* d E[bound] / d param, by central differences */
        double keep = params[i], h = 1e-5;
        params[i] = keep + h;
        double up = tiny_expected_bound(params, off_q, off_w, off_b, x);
        params[i] = keep - h;
        double down = tiny_expected_bound(params, off_q, off_w, off_b, x);
        params[i] = keep;
        truth[i] = -(up - down) / (2 * h); /* the step's gradient is of the loss */
    }
    enum { R = 40000 };
    double mean[15] = {0}, m2[15] = {0};
    for (int r = 0; r < R; r++) {
        run(&d, params, x, (uint64_t)r + 1);
        for (int i = 0; i < 15; i++) {
            double delta = d.grads[i] - mean[i];
            mean[i] += delta / (r + 1);
            m2[i] += delta * (d.grads[i] - mean[i]);
        }
    }
    double worst = 0;
    for (int i = 0; i < 15; i++) {
        double se = sqrt(m2[i] / (R - 1) / R), z = fabs(mean[i] - truth[i]) / (se + 1e-12);
        if (z > worst) worst = z;
    }
    printf("\n    VIMCO against the enumerated expectation (9 sample pairs): largest |mean - exact| / SE %.2f", worst);
    CU_ASSERT(worst < 5);
    step_program_free(&d);
}

/* Straight-through Gumbel: the decoder sees exactly one-hot values, so its
 * ELBO equals the relaxed estimator's ELBO at the discrete samples of the same
 * noise, while its gradient differs (it comes through the relaxation). */
static void test_straight_through_is_discrete(void) {
    enum { B = 4 };
    const char *soft_text = "model st\n"
                            "data x[8] : binary\n"
                            "latent z[2] ~ categorical(3)\n"
                            "encoder q(z | x) { return categorical(logits: reshape(dense(x, 6), 2, 3)) }\n"
                            "decoder p(x | z) { h = tanh(dense(flatten(onehot(z)), 5))\n"
                            "    return bernoulli(logits: dense(h, 8)) }\n"
                            "estimator gumbel(samples: 3, temperature: 0.5)\n";
    char hard_text[1024];
    snprintf(hard_text, sizeof hard_text, "%s", soft_text);
    strcpy(strstr(hard_text, "temperature: 0.5)"), "temperature: 0.5, hard: true)\n");
    step_program soft = step_program_build(soft_text, B), hard = step_program_build(hard_text, B);
    size_t P = (size_t)soft.rt->param_floats;
    double *params = malloc(P * sizeof(double)), x[B * 8];
    for (size_t i = 0; i < P; i++) params[i] = 2 * (vr_uniform(17, 1, i) - 0.5);
    synthetic(x, B, 3);
    run(&soft, params, x, 5);
    run(&hard, params, x, 5);
    for (int r = 0; r < B * 3; r++)
        CU_ASSERT_EQUAL(soft.arena[soft.rt->train.recon_rows + r], hard.arena[hard.rt->train.recon_rows + r]);
    double diff = 0;
    for (size_t i = 0; i < P; i++) diff = fmax(diff, fabs(soft.grads[i] - hard.grads[i]));
    CU_ASSERT(diff > 1e-6);
    free(params);
    step_program_free(&soft);
    step_program_free(&hard);
}

/* A model for the decoder's two ways: its data's kind, its latents with their encoders (or none),
 * the decoder's parents and input, its likelihood and the estimator are filled in. */
static const char *DECODER_MODEL = "model st\n"
                                   "data x[6] : %s\n"
                                   "%s"
                                   "decoder p(x | %s) { h = tanh(dense(%s, 5))\n"
                                   "    return %s }\n"
                                   "baseline b(x) { return bernoulli(logits: param[6]) }\n"
                                   "baseline v(x) { return dense(x, 1) }\n"
                                   "estimator %s\n";

/* Latents, decoder parents and input, and the estimators that run the decoder at their draws. */
static const struct {
    const char *latents, *parents, *input, *estimators[8];
} DECODER_CASES[] = {
    {"latent z ~ categorical(3)\nlatent c[2] ~ bernoulli(0.3)\n" /* 12 joint states */
     "encoder q(z | x) { return categorical(logits: dense(x, 3)) }\n"
     "encoder r(c | x) { return bernoulli(logits: dense(x, 2)) }\n",
     "z, c", "concat(onehot(z), c)",
     {"reinforce(samples: 3)", "reinforce(samples: 2, baseline: b)", "reinforce(samples: 3, baseline: loo)",
      "uniform(samples: 2)", "vimco(samples: 3)", "nvil(samples: 2, baseline: v)", "rws(samples: 3)"}},
    {"latent z ~ categorical(3)\nlatent c[2] ~ bernoulli(0.3)\n", "z, c", "concat(onehot(z), c)", {"prior(samples: 3)"}},
    {"latent c[3] ~ bernoulli(logits: param[3])\nencoder r(c | x) { return bernoulli(logits: dense(x, 3)) }\n", "c", "c",
     {"arm", "disarm", "disarm(samples: 2)", "gumbel(samples: 2, temperature: 0.5)"}},
    {"latent z[2] ~ categorical(3)\nencoder q(z | x) { return categorical(logits: reshape(dense(x, 6), 2, 3)) }\n", "z",
     "flatten(onehot(z))", {"sum_and_sample(k: 2)", "gumbel(samples: 2, temperature: 0.5)"}},
};

/* What g_build_with chose for the training graph, per the note vaec check --graph prints. */
static int built_per_state(const char *text, int B, int decoder_rows) {
    vae_unit *u = vae_unit_from_string("t.vae", text, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    g_graph *g = g_build_with(vae_unit_model(u), GRAPH_TRAIN, B, vae_unit_model(u)->est.samples, decoder_rows, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g->decoder_note);
    int per_state = starts_with(g->decoder_note, "once per joint state");
    g_free(g);
    vae_unit_free(u);
    return per_state;
}

/* Runs a model with its decoder forced each way over a few steps at the same parameters, data and
 * noise; returns the largest difference of objective, reported rows or gradient, and asserts that
 * it is at rounding and that both ways were built. */
static double compare_decoder_ways(const char *text, int B, int steps, int binary) {
    CU_ASSERT(built_per_state(text, B, VAE_DECODER_PER_STATE));
    CU_ASSERT(!built_per_state(text, B, VAE_DECODER_PER_SAMPLE));
    step_program rows = step_program_build_with(text, B, VAE_DECODER_PER_SAMPLE);
    step_program states = step_program_build_with(text, B, VAE_DECODER_PER_STATE);
    size_t P = (size_t)rows.rt->param_floats;
    CU_ASSERT_EQUAL_FATAL((size_t)states.rt->param_floats, P);
    int R = rows.rt->train.batch * rows.rt->train.samples; /* the reported rows: at least these */
    double *params = malloc(P * sizeof(double)), *grads = malloc(P * sizeof(double)), *recon = malloc(R * sizeof(double));
    double x[64 * 6], worst = 0;
    CU_ASSERT_FATAL(B <= 64);
    for (size_t i = 0; i < P; i++) params[i] = 2 * (vr_uniform(41, 3, i) - 0.5);
    if (binary) synthetic(x, B, 5);
    else
        for (int i = 0; i < B * 6; i++) x[i] = 2 * vr_uniform(43, 1, (uint64_t)i) - 1;
    for (uint64_t step = 1; step <= (uint64_t)steps; step++) {
        run(&rows, params, x, step);
        memcpy(grads, rows.grads, P * sizeof(double));
        memcpy(recon, rows.arena + rows.rt->train.recon_rows, R * sizeof(double));
        double objective = rows.arena[rows.rt->train.objective], size = 0;
        run(&states, params, x, step);
        double diff = fabs(states.arena[states.rt->train.objective] - objective);
        for (int r = 0; r < R; r++) diff = fmax(diff, fabs(states.arena[states.rt->train.recon_rows + r] - recon[r]));
        for (size_t i = 0; i < P; i++) {
            diff = fmax(diff, fabs(states.grads[i] - grads[i]));
            size = fmax(size, fabs(grads[i]));
        }
        CU_ASSERT(diff < 1e-10);
        CU_ASSERT(size > 1e-3); /* a gradient to compare */
        worst = fmax(worst, diff);
    }
    free(params);
    free(grads);
    free(recon);
    step_program_free(&rows);
    step_program_free(&states);
    return worst;
}

/* The decoder run once per joint state gives, for the same draws, the objective, the reported rows
 * and the gradient that running it on every sample row gives (double precision: only the order of
 * the sums differs). */
static void test_decoder_per_state_is_per_row(void) {
    enum { B = 4, STEPS = 3 };
    const char *likelihoods[][2] = {{"binary", "bernoulli(logits: dense(h, 6))"},
                                    {"real", "normal(mean: dense(h, 6), logvar: dense(h, 6))"},
                                    {"real", "normal(mean: dense(h, 6), scale: softplus(dense(h, 6)))"}};
    double worst = 0;
    int models = 0;
    for (int k = 0; k < 3; k++)
        for (size_t c = 0; c < sizeof DECODER_CASES / sizeof *DECODER_CASES; c++)
            for (int e = 0; e < 8 && DECODER_CASES[c].estimators[e]; e++, models++) {
                char text[2048];
                snprintf(text, sizeof text, DECODER_MODEL, likelihoods[k][0], DECODER_CASES[c].latents,
                         DECODER_CASES[c].parents, DECODER_CASES[c].input, likelihoods[k][1], DECODER_CASES[c].estimators[e]);
                worst = fmax(worst, compare_decoder_ways(text, B, STEPS, k == 0));
            }
    printf("\n    %d models x %d steps: largest difference of objective, reported rows or gradient %.3g", models, STEPS, worst);
}

int main(void) {
    static const test_case tests[] = {
        {"sampled estimators are unbiased", test_sampled_estimators_are_unbiased},
        {"a trained baseline lowers the variance", test_baseline_lowers_variance},
        {"exact log p(x) >= ELBO, KL gap >= 0", test_bounds},
        {"2-state model by hand", test_two_state_model_by_hand},
        {"VIMCO is unbiased for the IWAE gradient", test_vimco_is_unbiased},
        {"straight-through Gumbel is discrete in value", test_straight_through_is_discrete},
        {"the decoder once per joint state gives the per-row gradient", test_decoder_per_state_is_per_row},
        {NULL, NULL},
    };
    return run_suite("discrete latents", tests);
}
