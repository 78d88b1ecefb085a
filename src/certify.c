/* vaec certify: every estimator's certificate (ESTIMATORS.md, "Certificates"), recomputed.
 * On tiny models whose gradient is known exactly - two Bernoulli latents and a categorical one
 * (32 and 3 states: the analytic gradient by enumeration), and the linear-Gaussian model (the
 * ELBO in closed form) - each estimator's gradient is drawn R times at fixed parameters on one
 * fixed batch, in double precision, and compared with the exact gradient coordinate by
 * coordinate (z = |mean - exact| / standard error). Unbiased estimators pass when every |z| is
 * below the threshold; biased ones (relaxations, straight-through, IWAE-STL) have their bias
 * measured and reported. Estimators that follow another objective are held to its exact gradient
 * (exact: log p(x); prior, vimco: the prior and IWAE bounds of K samples, their K-tuples enumerated on
 * the categorical model; rws: its K -> infinity limit, grad log p(x) and the wake phase's
 * E_p(z|x) grad log q, whose bias is measured). The orderings theory guarantees, the zero variance of
 * STL and DReG at the exact posterior and the Renyi bound's closed form there (log p(x) on every
 * draw) are checked too. One table; exit status 1 when a certificate fails. */
#include "src/certify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser/model.h"
#include "vae/compiler.h"

enum { BOUND = 2 }; /* certificate.biased of a multi-sample bound: the ELBO's gradient is not its own */
/* certificate.zero_at_posterior: 1 no encoder-gradient variance there; POSTERIOR_LOGPX: the bound is log p(x) there,
 * draw by draw, and its mean gradient log p(x)'s (renyi: every weight is p(x) at q = the posterior) */
enum { POSTERIOR_LOGPX = 2 };

typedef void (*step_fn)(double *params, double *grads, double *arena, const double *data, const vr_ctx *ctx);

enum { BATCH = 3 };

/* MODEL_BERNOULLI_CONTROL is MODEL_BERNOULLI with a control network (relax) declared last: its
 * other parameters, its data and its reference row are MODEL_BERNOULLI's (base_model). */
typedef enum { MODEL_BERNOULLI, MODEL_CATEGORICAL, MODEL_LINEAR_GAUSSIAN, MODEL_BERNOULLI_CONTROL, NMODELS } model_id;

static const char *const MODEL_NAMES[NMODELS] = {"bernoulli 3+2", "categorical 3", "linear-gaussian", "bernoulli 3+2, c"};

static model_id base_model(model_id m) { return m == MODEL_BERNOULLI_CONTROL ? MODEL_BERNOULLI : m; }

static const char *const MODEL_TEXTS[NMODELS] = {
    "model tiny\ndata x[6] : binary\n"
    "latent z[3] ~ bernoulli(logits: param[3])\nlatent y[2] ~ bernoulli(0.5)\n"
    "encoder q(z | x) { return bernoulli(logits: dense(x, 3)) }\n"
    "encoder r(y | x) { return bernoulli(logits: dense(tanh(dense(x, 3)), 2)) }\n"
    "decoder p(x | z, y) { h = tanh(dense(concat(z, y), 4))\n  return bernoulli(logits: dense(h, 6)) }\n"
    "estimator %s\n",
    "model tiny\ndata x[8] : binary\nlatent z ~ categorical(3)\n"
    "encoder q(z | x) { h = tanh(dense(x, 4))\n  return categorical(logits: dense(h, 3)) }\n"
    "decoder p(x | z) { return bernoulli(logits: dense(onehot(z), 8)) }\n"
    "baseline b(x) { return dense(x, 1) }\n" /* nvil's; the others leave it untouched */
    "estimator %s\n",
    "model lg\ndata x[3] : real\nlatent z[2] ~ normal(0, 1)\n"
    "encoder q(z | x) { return normal(mean: dense(x, 2), logvar: param[2]) }\n"
    "decoder p(x | z) { return normal(mean: dense(z, 3), logvar: param[3]) }\n"
    "estimator %s\n",
    "model tiny\ndata x[6] : binary\n"
    "latent z[3] ~ bernoulli(logits: param[3])\nlatent y[2] ~ bernoulli(0.5)\n"
    "encoder q(z | x) { return bernoulli(logits: dense(x, 3)) }\n"
    "encoder r(y | x) { return bernoulli(logits: dense(tanh(dense(x, 3)), 2)) }\n"
    "decoder p(x | z, y) { h = tanh(dense(concat(z, y), 4))\n  return bernoulli(logits: dense(h, 6)) }\n"
    "control c(z | y, x) { h = tanh(dense(concat(sigmoid(z), sigmoid(y), x), 5))\n  return dense(h, 1) }\n"
    "estimator %s\n"};

/* One certificate. The reference of the variance column is reinforce on the same model. */
typedef struct {
    const char *spec;
    model_id model;
    int biased;            /* its bias is measured, not tested (BOUND: it follows another objective) */
    const char *paired;    /* compared draw by draw with this estimator (same noise) instead of the exact gradient */
    const char *at_most;   /* its encoder-gradient variance must be at most this estimator's */
    int zero_at_posterior; /* linear-Gaussian: no encoder-gradient variance at the exact posterior */
} certificate;

static const certificate CERTIFICATES[] = {
    {"reinforce", MODEL_BERNOULLI, 0, NULL, NULL, 0},
    {"reinforce(samples: 2)", MODEL_BERNOULLI, 0, NULL, NULL, 0},
    {"reinforce(samples: 2, baseline: loo)", MODEL_BERNOULLI, 0, NULL, "reinforce(samples: 2)", 0},
    {"uniform", MODEL_BERNOULLI, 0, NULL, NULL, 0},
    {"arm", MODEL_BERNOULLI, 0, NULL, NULL, 0},
    {"disarm", MODEL_BERNOULLI, 0, NULL, "arm", 0},
    {"elbo(z: disarm, y: arm, samples: 2)", MODEL_BERNOULLI, 0, NULL, NULL, 0},
    {"vimco(samples: 2)", MODEL_BERNOULLI, BOUND, NULL, NULL, 0},
    {"disarm(samples: 2)", MODEL_BERNOULLI, 0, "vimco(samples: 2)", NULL, 0},
    {"gumbel(temperature: 0.5)", MODEL_BERNOULLI, 1, NULL, NULL, 0},
    {"gumbel(temperature: 0.5, hard: true)", MODEL_BERNOULLI, 1, NULL, NULL, 0},
    {"relax(control: c)", MODEL_BERNOULLI_CONTROL, 0, NULL, NULL, 0},
    {"rebar(temperature: 0.5)", MODEL_BERNOULLI, 0, NULL, NULL, 0},
    {"reinforce", MODEL_CATEGORICAL, 0, NULL, NULL, 0},
    {"reinforce(samples: 2)", MODEL_CATEGORICAL, 0, NULL, NULL, 0},
    {"reinforce(samples: 2, baseline: loo)", MODEL_CATEGORICAL, 0, NULL, "reinforce(samples: 2)", 0},
    {"uniform", MODEL_CATEGORICAL, 0, NULL, NULL, 0},
    {"gumbel(temperature: 0.5)", MODEL_CATEGORICAL, 1, NULL, NULL, 0},
    {"gumbel(temperature: 0.5, hard: true)", MODEL_CATEGORICAL, 1, NULL, NULL, 0},
    {"nvil(baseline: b)", MODEL_CATEGORICAL, 0, NULL, NULL, 0},
    {"sum_and_sample(k: 1)", MODEL_CATEGORICAL, 0, NULL, "reinforce", 0},
    {"sum_and_sample(k: 2)", MODEL_CATEGORICAL, 0, NULL, "sum_and_sample(k: 1)", 0},
    {"reinforce", MODEL_LINEAR_GAUSSIAN, 0, NULL, NULL, 0},
    {"reparam", MODEL_LINEAR_GAUSSIAN, 0, NULL, NULL, 0},
    {"reparam(gradient: stl)", MODEL_LINEAR_GAUSSIAN, 0, NULL, NULL, 1},
    {"iwae(samples: 3)", MODEL_LINEAR_GAUSSIAN, BOUND, NULL, NULL, 0},
    {"iwae(samples: 3, gradient: dreg)", MODEL_LINEAR_GAUSSIAN, 0, "iwae(samples: 3)", NULL, 1},
    {"iwae(samples: 3, gradient: stl)", MODEL_LINEAR_GAUSSIAN, 1, "iwae(samples: 3)", NULL, 1},
    {"vimco(samples: 3)", MODEL_CATEGORICAL, 0, NULL, NULL, 0},
    {"exact", MODEL_CATEGORICAL, 0, NULL, NULL, 0},
    {"prior(samples: 2)", MODEL_CATEGORICAL, 0, NULL, NULL, 0},
    {"rws(samples: 2)", MODEL_CATEGORICAL, 1, NULL, NULL, 0},
    {"rws(samples: 10)", MODEL_CATEGORICAL, 1, NULL, NULL, 0},
    {"rws(samples: 3)", MODEL_LINEAR_GAUSSIAN, 1, NULL, NULL, 0},
    {"rws(samples: 30)", MODEL_LINEAR_GAUSSIAN, 1, NULL, NULL, 0},
    {"renyi(samples: 3, alpha: 1)", MODEL_LINEAR_GAUSSIAN, 0, NULL, NULL, 0},
    {"renyi(samples: 3, alpha: 0)", MODEL_LINEAR_GAUSSIAN, 0, "iwae(samples: 3)", NULL, 0},
    {"renyi(samples: 3, alpha: 0.5)", MODEL_LINEAR_GAUSSIAN, BOUND, NULL, NULL, POSTERIOR_LOGPX},
};
#define NCERTIFICATES (sizeof CERTIFICATES / sizeof CERTIFICATES[0])

/* ---------------------------------------------------------------- one estimator's program */

typedef struct {
    vae_unit *unit;
    vae_program *prog;
    const vae_model *m;
    step_fn step;
    long nparams, value_rows;
    double *grads, *arena;
} program;

static int program_open(program *p, model_id model, const char *spec) {
    char text[2048];
    snprintf(text, sizeof text, MODEL_TEXTS[model], spec);
    memset(p, 0, sizeof *p);
    char *said = NULL; /* the warnings of a model without encoder (exact, prior) only with an error */
    size_t len = 0;
    FILE *err = open_memstream(&said, &len);
    if (!err) abort();
    p->unit = vae_unit_from_string("certify.vae", text, err);
    vae_build_opts o = p->unit ? vae_build_defaults(p->unit) : (vae_build_opts){0};
    o.batch = BATCH;
    o.eval = o.iwae = 0;
    o.double_precision = 1;
    if (p->unit) p->prog = vae_program_build(p->unit, &o, err);
    fclose(err);
    if (!p->prog) fputs(said, stderr);
    free(said);
    if (!p->prog) return -1;
    const vr_program *rt = vae_program_runtime(p->prog);
    p->value_rows = rt->train.value_rows;
    p->m = vae_unit_model(p->unit);
    p->step = (step_fn)vae_program_function(p->prog, "vae_train_step");
    p->nparams = rt->param_floats;
    p->grads = calloc((size_t)rt->param_floats, sizeof(double));
    p->arena = calloc((size_t)rt->train.arena_floats, sizeof(double));
    if (!p->grads || !p->arena) abort();
    return 0;
}

static void program_close(program *p) {
    free(p->grads);
    free(p->arena);
    if (p->prog) vae_program_free(p->prog);
    if (p->unit) vae_unit_free(p->unit);
}

static void draw(program *p, double *params, const double *x, uint64_t step) {
    vr_ctx ctx = {.seed = 2026, .step = step, .example0 = 0, .sample0 = 0};
    p->step(params, p->grads, p->arena, x, &ctx);
}

static int is_encoder(const vae_param *q) { return q->owner == NET_ENCODER; }
/* A control network's gradient is that of the variance (relax), not an estimate of the objective's. */
static int is_control(const vae_param *q) { return q->owner == NET_CONTROL; }

/* ---------------------------------------------------------------- the models' parameters and exact gradients */

static double *param_named(const vae_model *m, double *params, const char *name) {
    for (int t = 0; t < m->nparams; t++)
        if (strcmp(m->params[t].name, name) == 0) return params + m->params[t].offset;
    abort(); /* the names of MODEL_TEXTS */
}

/* Linear-Gaussian, p(x | z) = N(zW + b, D) with W's rows orthogonal under D^-1: the exact posterior is
 * N(mu(x), S) with S_kk = 1 / (1 + sum_d W_kd^2 / D_d), mu_k = S_kk sum_d W_kd (x_d - b_d) / D_d, which the
 * encoder (linear mean, free log-variance) can equal. */
static void linear_gaussian_posterior(const vae_model *m, double *params) {
    static const double W[2][3] = {{1, 0, 0.5}, {0, 2, 0}}, b[3] = {0.3, -0.2, 0.1}, logD[3] = {0, -0.6931, 0.6931};
    double *w = param_named(m, params, "decoder.mean.weight"), *bias = param_named(m, params, "decoder.mean.bias");
    double *ld = param_named(m, params, "decoder.logvar"), *A = param_named(m, params, "encoder.mean.weight");
    double *c = param_named(m, params, "encoder.mean.bias"), *lv = param_named(m, params, "encoder.logvar");
    for (int k = 0; k < 2; k++) {
        double lam = 1;
        for (int d = 0; d < 3; d++) lam += W[k][d] * W[k][d] / exp(logD[d]);
        lv[k] = -log(lam);
        c[k] = 0;
        for (int d = 0; d < 3; d++) {
            A[d * 2 + k] = W[k][d] / exp(logD[d]) / lam; /* dense weights are [in, out] */
            c[k] -= A[d * 2 + k] * b[d];
        }
    }
    for (int d = 0; d < 3; d++) {
        bias[d] = b[d];
        ld[d] = logD[d];
        for (int k = 0; k < 2; k++) w[k * 3 + d] = W[k][d];
    }
}

/* The linear-Gaussian ELBO in closed form, averaged over the batch (constants left out):
 * E_q log N(x; zW + b, D) = -1/2 sum_d [log D_d + ((x_d - (mu W)_d - b_d)^2 + sum_k W_kd^2 s_k) / D_d],
 * KL = 1/2 sum_k (mu_k^2 + s_k - 1 - log s_k). */
static double linear_gaussian_elbo(const vae_model *m, double *params, const double *x) {
    const double *w = param_named(m, params, "decoder.mean.weight"), *b = param_named(m, params, "decoder.mean.bias");
    const double *ld = param_named(m, params, "decoder.logvar"), *A = param_named(m, params, "encoder.mean.weight");
    const double *c = param_named(m, params, "encoder.mean.bias"), *lv = param_named(m, params, "encoder.logvar");
    double total = 0;
    for (int e = 0; e < BATCH; e++) {
        const double *xe = x + e * 3;
        double mu[2];
        for (int k = 0; k < 2; k++) {
            mu[k] = c[k];
            for (int d = 0; d < 3; d++) mu[k] += xe[d] * A[d * 2 + k];
            total -= 0.5 * (mu[k] * mu[k] + exp(lv[k]) - 1 - lv[k]);
        }
        for (int d = 0; d < 3; d++) {
            double mean = b[d], spread = 0;
            for (int k = 0; k < 2; k++) {
                mean += mu[k] * w[k * 3 + d];
                spread += w[k * 3 + d] * w[k * 3 + d] * exp(lv[k]);
            }
            total -= 0.5 * (ld[d] + ((xe[d] - mean) * (xe[d] - mean) + spread) / exp(ld[d]));
        }
    }
    return total / BATCH;
}

/* ---------------------------------------------------------------- other objectives' exact values */

/* What an estimator's mean gradient is held to: the ELBO's gradient, or the objective's it follows
 * where that is another (exact: log p(x); prior: the prior bound; vimco: the IWAE bound, each of K
 * samples, by enumerating the K-tuples of states), or for rws the limit of its K samples: the
 * decoder grad log p(x), the encoder the wake phase's E_p(z|x) grad log q(z | x) = -grad KL(p(z | x)
 * || q). */
typedef enum { TARGET_ELBO, TARGET_LOGPX, TARGET_PRIOR, TARGET_IWAE, TARGET_WAKE } target;

static const char *const TARGET_WORDS[] = {"the ELBO", "log p(x)", "the prior bound", "the IWAE bound",
                                           "the wake gradients (K -> infinity)"};

static target target_of(const certificate *c) {
    static const struct { const char *name; target t; } BY_NAME[] = {
        {"exact", TARGET_LOGPX}, {"prior", TARGET_PRIOR}, {"vimco", TARGET_IWAE}, {"rws", TARGET_WAKE}};
    if (c->biased == BOUND) return TARGET_ELBO; /* a paired rows' reference: measured against the ELBO's gradient */
    size_t n = strcspn(c->spec, "(");
    for (size_t i = 0; i < sizeof BY_NAME / sizeof BY_NAME[0]; i++)
        if (strlen(BY_NAME[i].name) == n && strncmp(c->spec, BY_NAME[i].name, n) == 0) return BY_NAME[i].t;
    return TARGET_ELBO;
}

static double logsumexp(const double *a, int n) {
    double top = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) top = fmax(top, a[i]);
    for (int i = 0; i < n; i++) sum += exp(a[i] - top);
    return top + log(sum);
}

enum { CAT_D = 8, CAT_H = 4, CAT_K = 3 };

/* The categorical model at one example: log q(z | x) and log p(x | z) of its 3 states. */
static void categorical_states(const vae_model *m, double *params, const double *x, double *logq, double *ll) {
    const double *W = param_named(m, params, "encoder.h.weight"), *bw = param_named(m, params, "encoder.h.bias");
    const double *V = param_named(m, params, "encoder.logits.weight"), *bv = param_named(m, params, "encoder.logits.bias");
    const double *D = param_named(m, params, "decoder.logits.weight"), *bd = param_named(m, params, "decoder.logits.bias");
    double h[CAT_H];
    for (int j = 0; j < CAT_H; j++) {
        h[j] = bw[j];
        for (int i = 0; i < CAT_D; i++) h[j] += x[i] * W[i * CAT_H + j];
        h[j] = tanh(h[j]);
    }
    for (int k = 0; k < CAT_K; k++) {
        logq[k] = bv[k];
        for (int j = 0; j < CAT_H; j++) logq[k] += h[j] * V[j * CAT_K + k];
    }
    double norm = logsumexp(logq, CAT_K);
    for (int k = 0; k < CAT_K; k++) {
        logq[k] -= norm;
        ll[k] = 0;
        for (int d = 0; d < CAT_D; d++) {
            double l = D[k * CAT_D + d] + bd[d];
            ll[k] += x[d] * l - (l > 0 ? l + log1p(exp(-l)) : log1p(exp(l)));
        }
    }
}

/* E over K-tuples z_1..K (from q, or from the uniform prior) of log (1/K) sum_k w_k, log w = log p(x | z) +
 * log p(z) - log q(z | x) (with the prior: log p(x | z)), at one example of the categorical model. */
static double categorical_bound(const double *logq, const double *ll, int K, int from_prior) {
    double total = 0, logw[64];
    long tuples = 1;
    for (int k = 0; k < K; k++) tuples *= CAT_K;
    for (long t = 0; t < tuples; t++) {
        double logprob = 0;
        for (int k = 0, rest = (int)t; k < K; k++, rest /= CAT_K) {
            int z = rest % CAT_K;
            logprob += from_prior ? -log(CAT_K) : logq[z];
            logw[k] = from_prior ? ll[z] : ll[z] - log(CAT_K) - logq[z];
        }
        total += exp(logprob) * (logsumexp(logw, K) - log(K));
    }
    return total;
}

/* The categorical model's target objective, averaged over the batch; for the wake target, the part whose
 * gradient is that of the encoder (encoder) or of the decoder (!encoder). */
static double categorical_target(const vae_model *m, double *params, const double *x, target t, int K, int encoder) {
    double total = 0;
    for (int e = 0; e < BATCH; e++) {
        double logq[CAT_K], ll[CAT_K], joint[CAT_K];
        categorical_states(m, params, x + e * CAT_D, logq, ll);
        for (int k = 0; k < CAT_K; k++) joint[k] = ll[k] - log(CAT_K);
        double logpx = logsumexp(joint, CAT_K), wake = 0;
        for (int k = 0; k < CAT_K; k++) wake += exp(joint[k] - logpx) * logq[k]; /* sum_z p(z | x) log q(z | x) */
        total += t == TARGET_IWAE ? categorical_bound(logq, ll, K, 0)
               : t == TARGET_PRIOR ? categorical_bound(logq, ll, K, 1)
               : t == TARGET_WAKE && encoder ? wake : logpx;
    }
    return total / BATCH;
}

/* The linear-Gaussian model's log p(x), x ~ N(b, W^T W + D), or for the wake target's encoder part
 * -KL(p(z | x) || q(z | x)) (p(z | x) = N(S W D^-1 (x - b), S), S = (I + W D^-1 W^T)^-1), averaged over
 * the batch. */
static double linear_gaussian_target(const vae_model *m, double *params, const double *x, int encoder) {
    const double *w = param_named(m, params, "decoder.mean.weight"), *b = param_named(m, params, "decoder.mean.bias");
    const double *ld = param_named(m, params, "decoder.logvar"), *A = param_named(m, params, "encoder.mean.weight");
    const double *c = param_named(m, params, "encoder.mean.bias"), *lv = param_named(m, params, "encoder.logvar");
    double L[3][3] = {{0}}, P[2][2], total = 0;
    for (int d = 0; d < 3; d++) /* the Cholesky factor of W^T W + D */
        for (int f = 0; f <= d; f++) {
            double v = (d == f ? exp(ld[d]) : 0) + w[d] * w[f] + w[3 + d] * w[3 + f];
            for (int g = 0; g < f; g++) v -= L[d][g] * L[f][g];
            L[d][f] = d == f ? sqrt(v) : v / L[f][f];
        }
    for (int k = 0; k < 2; k++)
        for (int l = 0; l < 2; l++) {
            P[k][l] = k == l;
            for (int d = 0; d < 3; d++) P[k][l] += w[k * 3 + d] * w[l * 3 + d] / exp(ld[d]);
        }
    double det = P[0][0] * P[1][1] - P[0][1] * P[1][0], S[2][2] = {{P[1][1] / det, -P[0][1] / det}, {-P[1][0] / det, P[0][0] / det}};
    for (int e = 0; e < BATCH; e++) {
        const double *xe = x + e * 3;
        double y[3], quad = 0, logdet = 0, r[2] = {0, 0};
        for (int d = 0; d < 3; d++) {
            y[d] = xe[d] - b[d];
            for (int f = 0; f < d; f++) y[d] -= L[d][f] * y[f];
            y[d] /= L[d][d];
            quad += y[d] * y[d];
            logdet += 2 * log(L[d][d]);
            for (int k = 0; k < 2; k++) r[k] += w[k * 3 + d] * (xe[d] - b[d]) / exp(ld[d]);
        }
        if (!encoder) {
            total -= 0.5 * (3 * log(2 * M_PI) + logdet + quad);
            continue;
        }
        for (int k = 0; k < 2; k++) {
            double mu = S[k][0] * r[0] + S[k][1] * r[1], mq = c[k];
            for (int d = 0; d < 3; d++) mq += xe[d] * A[d * 2 + k];
            total -= 0.5 * ((S[k][k] + (mq - mu) * (mq - mu)) / exp(lv[k]) + lv[k] - 1);
        }
        total -= 0.5 * log(det); /* + log det S / 2 */
    }
    return total / BATCH;
}

/* The target's value at params for coordinate i's part (the wake target differs for the encoder). */
static double target_value(model_id model, target t, int K, const vae_model *m, double *params, const double *x, int encoder) {
    if (model == MODEL_CATEGORICAL) return categorical_target(m, params, x, t, K, encoder);
    if (model != MODEL_LINEAR_GAUSSIAN || t == TARGET_IWAE || t == TARGET_PRIOR) abort(); /* no certificate asks */
    return linear_gaussian_target(m, params, x, t == TARGET_WAKE && encoder);
}

/* The target's gradient by central differences, as the loss's (minus the objective's). */
static void target_gradient(model_id model, target t, const vae_model *m, double *params, const double *x, double *out) {
    const double h = 1e-5;
    for (int p = 0; p < m->nparams; p++) {
        int encoder = is_encoder(&m->params[p]);
        for (long i = m->params[p].offset; i < m->params[p].offset + m->params[p].size; i++) {
            double keep = params[i];
            params[i] = keep + h;
            double up = target_value(model, t, m->est.samples, m, params, x, encoder);
            params[i] = keep - h;
            double down = target_value(model, t, m->est.samples, m, params, x, encoder);
            params[i] = keep;
            out[i] = -(up - down) / (2 * h);
        }
    }
}

/* The exact gradient of the loss (minus the objective), as the programs write theirs. */
static void exact_gradient(model_id model, double *params, const double *x, long n, double *out) {
    if (model != MODEL_LINEAR_GAUSSIAN) { /* analytic: every state summed */
        program exact;
        if (program_open(&exact, model, "analytic")) abort();
        draw(&exact, params, x, 0);
        /* an estimator's own parameters (nvil's statistics, rebar's eta and temperature) come last: their exact
           gradient is 0 */
        memcpy(out, exact.grads, (size_t)(exact.nparams < n ? exact.nparams : n) * sizeof(double));
        program_close(&exact);
        return;
    }
    program shape; /* for the parameters' names */
    if (program_open(&shape, model, "reparam")) abort();
    const double h = 1e-5;
    for (long i = 0; i < n; i++) {
        double keep = params[i];
        params[i] = keep + h;
        double up = linear_gaussian_elbo(shape.m, params, x);
        params[i] = keep - h;
        double down = linear_gaussian_elbo(shape.m, params, x);
        params[i] = keep;
        out[i] = -(up - down) / (2 * h);
    }
    program_close(&shape);
}

/* ---------------------------------------------------------------- one row */

typedef struct {
    double zmax, bias, variance, posterior_variance; /* variance: the encoder's, summed over coordinates */
    double posterior_error, posterior_z;             /* POSTERIOR_LOGPX: the largest |value - log p(x)|, |z| */
    int failed;
    char why[256];
} result;

/* Mean and variance over R draws (steps 1..R) of every coordinate of p's gradient, or of its difference
 * from q's at the same noise when q is given. */
static void moments(program *p, program *q, double *params, const double *x, int R, double *mean, double *var) {
    memset(mean, 0, (size_t)p->nparams * sizeof(double));
    memset(var, 0, (size_t)p->nparams * sizeof(double));
    for (int r = 0; r < R; r++) {
        draw(p, params, x, (uint64_t)r + 1);
        if (q) draw(q, params, x, (uint64_t)r + 1);
        for (long i = 0; i < p->nparams; i++) {
            double v = p->grads[i] - (q ? q->grads[i] : 0), delta = v - mean[i];
            mean[i] += delta / (r + 1);
            var[i] += delta * (v - mean[i]);
        }
    }
    for (long i = 0; i < p->nparams; i++) var[i] /= R - 1;
}

static double encoder_variance(const program *p, const double *var) {
    double total = 0;
    for (int t = 0; t < p->m->nparams; t++)
        if (is_encoder(&p->m->params[t]))
            for (long i = 0; i < p->m->params[t].size; i++) total += var[p->m->params[t].offset + i];
    return total;
}

static void data_for(model_id model, double *x) {
    model = base_model(model);
    int D = model == MODEL_BERNOULLI ? 6 : model == MODEL_CATEGORICAL ? 8 : 3;
    for (int i = 0; i < BATCH * D; i++) {
        double u = vr_uniform(77, (uint32_t)model, (uint64_t)i);
        x[i] = model == MODEL_LINEAR_GAUSSIAN ? 2 * u - 1 : u < 0.4;
    }
}

/* |mean - exact| in standard errors; a coordinate without variance (an exact gradient) must be exact
 * to the central differences' error. */
static double coordinate_z(double d, double var, double exact, int R) {
    if (var > 0) return fabs(d) / sqrt(var / R);
    return fabs(d) > 1e-7 * (1 + fabs(exact)) ? INFINITY : 0;
}

/* renyi at the exact posterior of the linear-Gaussian model: every weight is p(x), so every draw's
 * value is log p(x) and the mean gradient is log p(x)'s (its encoder part zero: the posterior is the
 * bound's maximum). */
static void at_the_posterior(program *p, double *params, const double *x, int R, result *out) {
    long n = p->nparams;
    double *truth = malloc((size_t)n * sizeof(double)), *mean = calloc((size_t)n, sizeof(double));
    double *m2 = calloc((size_t)n, sizeof(double)), logpx[BATCH];
    if (!truth || !mean || !m2) abort();
    target_gradient(MODEL_LINEAR_GAUSSIAN, TARGET_LOGPX, p->m, params, x, truth);
    for (int e = 0; e < BATCH; e++) { /* one example's log p(x): the batch mean over copies of it */
        double copies[BATCH * 3];
        for (int i = 0; i < BATCH * 3; i++) copies[i] = x[e * 3 + i % 3];
        logpx[e] = linear_gaussian_target(p->m, params, copies, 0);
    }
    for (int r = 0; r < R; r++) {
        draw(p, params, x, (uint64_t)r + 1);
        for (int e = 0; e < BATCH; e++) out->posterior_error = fmax(out->posterior_error, fabs(p->arena[p->value_rows + e] - logpx[e]));
        for (long i = 0; i < n; i++) {
            double delta = p->grads[i] - mean[i];
            mean[i] += delta / (r + 1);
            m2[i] += delta * (p->grads[i] - mean[i]);
        }
    }
    for (long i = 0; i < n; i++) {
        double d = mean[i] - truth[i];
        if (fabs(d) > 1e-9) out->posterior_z = fmax(out->posterior_z, coordinate_z(d, m2[i] / (R - 1), truth[i], R));
    }
    free(truth);
    free(mean);
    free(m2);
}

/* Whether coordinate i is a parameter of the ELBO: not nvil's baseline network, trained by least
 * squares, nor its running statistics. */
static int of_the_elbo(const vae_model *m, long i) {
    for (int t = 0; t < m->nparams; t++)
        if (i >= m->params[t].offset && i < m->params[t].offset + m->params[t].size) return m->params[t].owner != NET_BASELINE;
    return 1;
}

static int certify_one(const certificate *c, int R, result *out) {
    program p, ref;
    memset(out, 0, sizeof *out);
    if (program_open(&p, c->model, c->spec)) return -1;
    long n = p.nparams;
    double *params = malloc((size_t)n * sizeof(double)), *exact = calloc((size_t)n, sizeof(double));
    double *mean = malloc((size_t)n * sizeof(double)), *var = malloc((size_t)n * sizeof(double)), x[BATCH * 8];
    if (!params || !exact || !mean || !var) abort();
    for (long i = 0; i < n; i++) params[i] = vr_uniform(78, (uint32_t)base_model(c->model), (uint64_t)i) - 0.5;
    for (int t = 0; t < p.m->nparams; t++) /* running statistics (nvil's) at their start: none yet */
        for (long i = 0; p.m->params[t].state && i < p.m->params[t].size; i++) params[p.m->params[t].offset + i] = 0;
    data_for(c->model, x);
    int paired = c->paired != NULL;
    if (paired && program_open(&ref, c->model, c->paired)) abort();
    if (!paired && target_of(c) == TARGET_ELBO) exact_gradient(c->model, params, x, n, exact);
    else if (!paired) target_gradient(c->model, target_of(c), p.m, params, x, exact);
    moments(&p, NULL, params, x, R, mean, var);
    out->variance = encoder_variance(&p, var);
    if (paired) moments(&p, &ref, params, x, R, mean, var); /* the mean and spread of the difference */
    double off = 0, norm = 0;
    char *control = calloc((size_t)n, 1);
    if (!control) abort();
    for (int t = 0; t < p.m->nparams; t++)
        if (is_control(&p.m->params[t])) memset(control + p.m->params[t].offset, 1, (size_t)p.m->params[t].size);
    for (long i = 0; i < n; i++) {
        if (control[i] || !of_the_elbo(p.m, i)) continue;
        double d = mean[i] - exact[i], z = coordinate_z(d, var[i], exact[i], R);
        if (fabs(d) > 1e-9 && z > out->zmax) out->zmax = z;
        off += d * d;
        norm += paired ? 0 : exact[i] * exact[i];
    }
    if (paired) { /* the bias relative to the reference's mean gradient */
        moments(&ref, NULL, params, x, R, exact, var);
        for (long i = 0; i < n; i++) norm += control[i] ? 0 : exact[i] * exact[i];
        program_close(&ref);
    }
    free(control);
    out->bias = sqrt(off / norm);
    if (c->zero_at_posterior == POSTERIOR_LOGPX) {
        linear_gaussian_posterior(p.m, params);
        at_the_posterior(&p, params, x, R < 2000 ? R : 2000, out);
    } else if (c->zero_at_posterior) {
        linear_gaussian_posterior(p.m, params);
        moments(&p, NULL, params, x, R < 200 ? R : 200, mean, var);
        out->posterior_variance = encoder_variance(&p, var);
    }
    free(params);
    free(exact);
    free(mean);
    free(var);
    program_close(&p);
    return 0;
}

/* ---------------------------------------------------------------- the command */

const char *const VAEC_HELP_CERTIFY =
    "usage: vaec certify [ESTIMATOR...] [--draws R] [--z-max Z]\n"
    "  recomputes the estimators' certificates on tiny models with a known gradient (two Bernoulli\n"
    "  latents and a categorical one: the gradient by enumeration; the linear-Gaussian model: in\n"
    "  closed form) and prints one table; exit status 1 when a certificate fails; each row's target\n"
    "  is the ELBO's gradient unless it names another (log p(x), the prior or IWAE bound, the wake\n"
    "  gradients that rws approaches as its samples grow)\n"
    "  ESTIMATOR    only the rows of these estimators (a name: arm, or as written: 'reinforce(samples: 2)')\n"
    "  --draws R    gradient draws per estimator (default 10000)\n"
    "  --z-max Z    an unbiased estimator fails where a coordinate's |mean - exact| / standard error\n"
    "               reaches Z (default 4)\n"
    "  columns: the largest |z| over every coordinate; the bias |mean - exact| / |exact| (for\n"
    "  paired rows, against the named estimator at the same noise); the encoder-gradient variance\n"
    "  (the trace of its covariance) relative to reinforce on the same model; what was checked\n";

static int selected(const certificate *c, char **names, int nnames) {
    if (nnames == 0) return 1;
    size_t base = strcspn(c->spec, "(");
    for (int i = 0; i < nnames; i++)
        if (strcmp(names[i], c->spec) == 0 || (strlen(names[i]) == base && strncmp(names[i], c->spec, base) == 0))
            return 1;
    return 0;
}

static int parse_number(const char *opt, const char *s, double lo, double *out) {
    if (!s) {
        fprintf(stderr, "vaec certify: error: %s needs a value\n", opt);
        return -1;
    }
    char *end;
    double v = strtod(s, &end);
    int whole = strcmp(opt, "--draws") == 0;
    if (!*s || *end || !(v >= lo) || !isfinite(v) || (whole && v != floor(v))) {
        fprintf(stderr, "vaec certify: error: %s expects a%s number of at least %g, got '%s'\n", opt,
                whole ? " whole" : "", lo, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* The checks of row i, given every row's result (the orderings read other rows). */
static void judge(int i, const result *res, const int *done, double zlim, result *r) {
    const certificate *c = &CERTIFICATES[i];
    char *w = r->why;
    size_t left = sizeof r->why;
    int n = 0;
#define SAY(...) (n = snprintf(w, left, __VA_ARGS__), w += n, left -= (size_t)n)
    int renyi = strncmp(c->spec, "renyi", 5) == 0;
    if (c->biased == BOUND)
        SAY("the %s bound's gradient, not the ELBO's%s", renyi ? "Renyi" : "IWAE", renyi ? "" : ": the reference of the paired rows");
    else if (c->biased)
        SAY("biased (measured)");
    else if (r->zmax < zlim)
        SAY("unbiased |z| < %g", zlim);
    else
        r->failed = 1, SAY("BIASED: |z| %.1f >= %g", r->zmax, zlim);
    if (c->paired) SAY(" vs %s", c->paired);
    else if (target_of(c) != TARGET_ELBO) SAY(" for %s", TARGET_WORDS[target_of(c)]);
    for (size_t j = 0; c->at_most && j < NCERTIFICATES; j++)
        if (done[j] && CERTIFICATES[j].model == c->model && strcmp(CERTIFICATES[j].spec, c->at_most) == 0) {
            int ok = r->variance <= res[j].variance;
            r->failed |= !ok;
            SAY("; variance %s %s", ok ? "<=" : "ABOVE", c->at_most);
        }
    if (c->zero_at_posterior == POSTERIOR_LOGPX) {
        int ok = r->posterior_error < 1e-9 && r->posterior_z < zlim;
        r->failed |= !ok;
        SAY("; at the posterior %s log p(x) on every draw (%.0e), its mean gradient log p(x)'s (|z| %.2f)",
            ok ? "the bound is" : "NOT", r->posterior_error, r->posterior_z);
    } else if (c->zero_at_posterior) {
        int ok = r->posterior_variance < 1e-20;
        r->failed |= !ok;
        SAY("; variance at the posterior %.1e%s", r->posterior_variance, ok ? " (zero)" : " NOT ZERO");
    }
#undef SAY
}

/* The certified estimators' names, each once, in the table's order ("reinforce, uniform, ..."). */
static const char *certified_names(char *buf, size_t len) {
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < NCERTIFICATES && n < len; i++) {
        const char *spec = CERTIFICATES[i].spec;
        int name_len = (int)strcspn(spec, "("), seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= (int)strcspn(CERTIFICATES[j].spec, "(") == name_len && !strncmp(CERTIFICATES[j].spec, spec, (size_t)name_len);
        if (!seen) n += (size_t)snprintf(buf + n, len - n, "%s%.*s", n ? ", " : "", name_len, spec);
    }
    return buf;
}

int vaec_certify_main(int argc, char **argv) {
    double draws = 10000, zlim = 4;
    char **names = calloc((size_t)argc + 1, sizeof *names);
    int nnames = 0;
    if (!names) abort();
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(VAEC_HELP_CERTIFY, stdout);
            free(names);
            return 0;
        }
        const char *opt = argv[i];
        int bad = 0;
        if (strcmp(opt, "--draws") == 0 || strcmp(opt, "--z-max") == 0) {
            const char *v = i + 1 < argc ? argv[++i] : NULL;
            bad = opt[2] == 'd' ? parse_number(opt, v, 2, &draws) : parse_number(opt, v, 0, &zlim);
        } else if (opt[0] == '-') {
            fprintf(stderr, "vaec certify: error: unknown option '%s'\n%s", argv[i], VAEC_HELP_CERTIFY);
            bad = 1;
        } else
            names[nnames++] = argv[i];
        if (bad) {
            free(names);
            return 1;
        }
    }
    for (int k = 0; k < nnames; k++) { /* every name must select a row, before the table starts */
        int found = 0;
        for (size_t i = 0; i < NCERTIFICATES; i++) found |= selected(&CERTIFICATES[i], &names[k], 1);
        if (!found) {
            char list[512];
            fprintf(stderr, "vaec certify: error: no certificate for estimator '%s' (certified: %s, each with the options "
                            "of the table that vaec certify prints; analytic is the exact reference)\n",
                    names[k], certified_names(list, sizeof list));
            free(names);
            return 1;
        }
    }
    int R = (int)fmin(draws, 1e7), failed = 0, done[NCERTIFICATES] = {0};
    result res[NCERTIFICATES];
    /* the variance column's reference: reinforce on each model */
    double reference[NMODELS] = {0};
    printf("%-38s %-16s %8s %8s %12s  %s\n", "estimator", "model", "max |z|", "bias", "var / reinf.", "certificate");
    for (size_t i = 0; i < NCERTIFICATES; i++) {
        const certificate *c = &CERTIFICATES[i];
        int wanted = selected(c, names, nnames);
        int needed = !strcmp(c->spec, "reinforce"); /* the variance column's reference */
        for (size_t j = 0; !wanted && j < NCERTIFICATES; j++) /* an ordering's other side */
            needed |= CERTIFICATES[j].model == c->model && CERTIFICATES[j].at_most &&
                      !strcmp(CERTIFICATES[j].at_most, c->spec) && selected(&CERTIFICATES[j], names, nnames);
        if (!wanted && !needed) continue;
        if (certify_one(c, R, &res[i])) {
            free(names);
            return 1;
        }
        done[i] = 1;
        if (!strcmp(c->spec, "reinforce")) reference[c->model] = res[i].variance;
        double ref = reference[base_model(c->model)];
        if (!wanted) continue;
        judge((int)i, res, done, zlim, &res[i]);
        failed |= res[i].failed;
        printf("%-38s %-16s %8.2f %8.4f %12.4g  %s\n", c->spec, MODEL_NAMES[c->model], res[i].zmax, res[i].bias,
               ref > 0 ? res[i].variance / ref : NAN, res[i].why);
        fflush(stdout);
    }
    free(names);
    printf("%d draws per estimator; %s\n", R, failed ? "a certificate FAILED" : "every certificate holds");
    return failed ? 1 : 0;
}
