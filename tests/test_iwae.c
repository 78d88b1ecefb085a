/* The importance weighted bound: IWAE(1) is the ELBO in expectation, the
 * bound rises with K and stays below the exact log p(x), and DReG has the
 * IWAE gradient's mean with a lower encoder-gradient variance. */
#include <math.h>

#include "parser/model.h"
#include "tests/testutil.h"
#include "vae/compiler.h"
#include "vae/driver.h"

typedef void (*fn64)(double *params, double *grads, double *arena, const double *data, const vr_ctx *ctx);

typedef struct {
    vae_unit *u;
    vae_program *prog;
    const vr_program *rt;
    const vae_model *m;
    double *grads, *arena;
} dprog;

static dprog build(const char *text, int batch, int eval, int iwae_chunk) {
    dprog d = {0};
    d.u = vae_unit_from_string("t.vae", text, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d.u);
    d.m = vae_unit_model(d.u);
    vae_build_opts o = vae_build_defaults(d.u);
    o.batch = batch;
    o.train = !eval;
    o.eval = 0;
    o.iwae = eval;
    o.iwae_batch = batch;
    o.iwae_chunk = iwae_chunk;
    o.double_precision = 1;
    d.prog = vae_program_build(d.u, &o, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d.prog);
    d.rt = vae_program_runtime(d.prog);
    d.grads = calloc((size_t)d.rt->param_floats, sizeof(double));
    const vr_graph *g = eval ? &d.rt->iwae : &d.rt->train;
    d.arena = calloc((size_t)g->arena_floats, sizeof(double));
    return d;
}

static void release(dprog *d) {
    free(d->grads);
    free(d->arena);
    vae_program_free(d->prog);
    vae_unit_free(d->u);
}

static const char *GAUSS = "model g\n"
                           "data x[6] : binary\n"
                           "latent z[2] ~ normal(0, 1)\n"
                           "encoder q(z | x) { h = tanh(dense(x, 5))\n"
                           "    return normal(mean: dense(h, 2), logvar: dense(h, 2)) }\n"
                           "decoder p(x | z) { h = tanh(dense(z, 5))\n"
                           "    return bernoulli(logits: dense(h, 6)) }\n"
                           "estimator %s\n";

static char *with(const char *est) {
    static char buf[4][1024];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, 1024, GAUSS, est);
    return b;
}

static void data(double *x, int n) {
    for (int i = 0; i < n * 6; i++) x[i] = vr_uniform(3, 4, (uint64_t)i) < 0.4;
}

/* Mean over R noise draws of the per-example value (the estimator's bound). */
static double mean_value(dprog *d, double *params, const double *x, int B, int R, double *se) {
    double s = 0, s2 = 0;
    for (int r = 0; r < R; r++) {
        vr_ctx ctx = {.seed = 1, .step = (uint64_t)r, .example0 = 0, .sample0 = 0};
        typedef void (*f)(double *, double *, double *, const double *, const vr_ctx *);
        ((f)d->rt->train.fn)(params, d->grads, d->arena, x, &ctx);
        double v = 0;
        for (int b = 0; b < B; b++) v += d->arena[d->rt->train.value_rows + b];
        v /= B;
        s += v;
        s2 += v * v;
    }
    double m = s / R;
    *se = sqrt((s2 / R - m * m) / R);
    return m;
}

static void test_bound_rises_with_k(void) {
    enum { B = 4, R = 1500 };
    double x[B * 6];
    data(x, B);
    dprog elbo = build(with("reparam"), B, 0, 0);
    size_t P = (size_t)elbo.rt->param_floats;
    double *params = malloc(P * sizeof(double));
    for (size_t i = 0; i < P; i++) params[i] = 1.5 * (vr_uniform(8, 1, i) - 0.5);
    double se0, e = mean_value(&elbo, params, x, B, R, &se0);
    double prev = -INFINITY, means[3];
    const int Ks[3] = {1, 5, 50};
    for (int k = 0; k < 3; k++) {
        char est[64];
        snprintf(est, sizeof est, "iwae(samples: %d)", Ks[k]);
        dprog d = build(with(est), B, 0, 0);
        double se, v = mean_value(&d, params, x, B, k == 2 ? 300 : R, &se);
        printf("\n    IWAE(%2d) = %.4f +- %.4f", Ks[k], v, se);
        if (Ks[k] == 1) CU_ASSERT(fabs(v - e) < 5 * sqrt(se * se + se0 * se0)); /* IWAE(1) is the ELBO */
        CU_ASSERT(v > prev);
        prev = v;
        means[k] = v;
        release(&d);
    }
    printf("\n    ELBO     = %.4f +- %.4f", e, se0);
    CU_ASSERT(means[2] - means[0] > 10 * se0); /* a real rise, not noise */
    free(params);
    release(&elbo);
}

/* Same mean, lower variance: DReG against the IWAE gradient of the encoder at K = 50. */
static void test_dreg(void) {
    enum { B = 2, R = 400 };
    double x[B * 6];
    data(x, B);
    dprog iw = build(with("iwae(samples: 50)"), B, 0, 0), dr = build(with("iwae(samples: 50, gradient: dreg)"), B, 0, 0);
    size_t P = (size_t)iw.rt->param_floats;
    double *params = malloc(P * sizeof(double));
    for (size_t i = 0; i < P; i++) params[i] = 1.2 * (vr_uniform(9, 1, i) - 0.5);
    double *mean[2], *m2[2], var[2] = {0, 0};
    dprog *ds[2] = {&iw, &dr};
    for (int e = 0; e < 2; e++) {
        mean[e] = calloc(P, sizeof(double));
        m2[e] = calloc(P, sizeof(double));
        typedef void (*f)(double *, double *, double *, const double *, const vr_ctx *);
        for (int r = 0; r < R; r++) {
            vr_ctx ctx = {.seed = 2, .step = (uint64_t)r, .example0 = 0, .sample0 = 0};
            ((f)ds[e]->rt->train.fn)(params, ds[e]->grads, ds[e]->arena, x, &ctx);
            for (size_t i = 0; i < P; i++) {
                double d = ds[e]->grads[i] - mean[e][i];
                mean[e][i] += d / (r + 1);
                m2[e][i] += d * (ds[e]->grads[i] - mean[e][i]);
            }
            if (r == 0 && e == 1) { /* same noise, same value */
                vr_ctx c0 = {.seed = 2, .step = 0, .example0 = 0, .sample0 = 0};
                ((f)iw.rt->train.fn)(params, iw.grads, iw.arena, x, &c0);
                CU_ASSERT_DOUBLE_EQUAL(iw.arena[iw.rt->train.objective], dr.arena[dr.rt->train.objective], 1e-9);
            }
        }
    }
    double worst = 0;
    for (int t = 0; t < iw.m->nparams; t++) {
        const vae_param *q = &iw.m->params[t];
        for (long i = q->offset; i < q->offset + q->size; i++) {
            double v0 = m2[0][i] / (R - 1), v1 = m2[1][i] / (R - 1);
            if (q->owner == NET_ENCODER) {
                var[0] += v0;
                var[1] += v1;
            }
            double se = sqrt((v0 + v1) / R), z = fabs(mean[0][i] - mean[1][i]) / (se + 1e-12);
            if (fabs(mean[0][i] - mean[1][i]) > 1e-9 && z > worst) worst = z;
        }
    }
    printf("\n    encoder-gradient variance at K = 50: IWAE %.5g, DReG %.5g; largest mean difference %.2f SE", var[0],
           var[1], worst);
    CU_ASSERT(worst < 5);
    CU_ASSERT(var[1] < var[0]);
    for (int e = 0; e < 2; e++) {
        free(mean[e]);
        free(m2[e]);
    }
    free(params);
    release(&iw);
    release(&dr);
}

/* On a small enumerable model the IWAE estimate of the evaluator rises with K
 * towards the exact log p(x) and stays below it on average. */
static void test_iwae_below_exact(void) {
    enum { B = 3 };
    const char *text = "model small\n"
                       "data x[6] : binary\n"
                       "latent z ~ categorical(4)\n"
                       "encoder q(z | x) { return categorical(logits: dense(x, 4)) }\n"
                       "decoder p(x | z) { return bernoulli(logits: dense(onehot(z), 6)) }\n"
                       "estimator analytic\n";
    dprog ex = build(text, B, 0, 0);
    size_t P = (size_t)ex.rt->param_floats;
    double *params = malloc(P * sizeof(double)), x[B * 6];
    for (size_t i = 0; i < P; i++) params[i] = 3 * (vr_uniform(4, 1, i) - 0.5);
    data(x, B);
    typedef void (*f)(double *, double *, double *, const double *, const vr_ctx *);
    vr_ctx c0 = {.seed = 1, .step = 0, .example0 = 0, .sample0 = 0};
    ((f)ex.rt->train.fn)(params, ex.grads, ex.arena, x, &c0);
    double exact = 0;
    for (int b = 0; b < B; b++) exact += ex.arena[ex.rt->train.logpx_rows + b] / B;
    double prev = -INFINITY;
    const int Ks[3] = {1, 4, 64};
    for (int k = 0; k < 3; k++) {
        dprog d = build(text, B, 1, Ks[k]);
        double s = 0;
        int R = 400;
        for (int r = 0; r < R; r++) {
            vr_ctx ctx = {.seed = 5, .step = VR_STEP_IWAE, .example0 = 0, .sample0 = (uint64_t)r * Ks[k]};
            ((f)d.rt->iwae.fn)(params, NULL, d.arena, x, &ctx);
            for (int b = 0; b < B; b++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < Ks[k]; j++) mx = fmax(mx, d.arena[d.rt->iwae.logw_rows + b * Ks[k] + j]);
                for (int j = 0; j < Ks[k]; j++) sum += exp(d.arena[d.rt->iwae.logw_rows + b * Ks[k] + j] - mx);
                s += (mx + log(sum / Ks[k])) / B;
            }
        }
        double v = s / R;
        printf("\n    IWAE(%2d) = %.4f, exact log p(x) = %.4f", Ks[k], v, exact);
        CU_ASSERT(v >= prev - 1e-3);
        CU_ASSERT(v <= exact + 1e-3);
        prev = v;
        release(&d);
    }
    CU_ASSERT(exact - prev < 0.05); /* K = 64 nearly closes the gap on 4 states */
    free(params);
    release(&ex);
}

/* KL warm-up: withholding a fraction w of the KL weight gives exactly the
 * gradient of the model compiled with beta * (1 - w). */
static void test_warmup_scales_the_kl(void) {
    enum { B = 3 };
    double x[B * 6];
    data(x, B);
    dprog full = build(with("reparam(samples: 2)"), B, 0, 0), half = build(with("reparam(samples: 2, beta: 0.25)"), B, 0, 0);
    size_t P = (size_t)full.rt->param_floats;
    double *params = malloc(P * sizeof(double)), *g = malloc(P * sizeof(double));
    for (size_t i = 0; i < P; i++) params[i] = vr_uniform(12, 1, i) - 0.5;
    typedef void (*f)(double *, double *, double *, const double *, const vr_ctx *);
    vr_ctx warm = {.seed = 3, .step = 4, .kl_withheld = 0.75}, plain = {.seed = 3, .step = 4};
    ((f)full.rt->train.fn)(params, full.grads, full.arena, x, &warm);
    memcpy(g, full.grads, P * sizeof(double));
    ((f)half.rt->train.fn)(params, half.grads, half.arena, x, &plain);
    double worst = 0;
    for (size_t i = 0; i < P; i++) worst = fmax(worst, fabs(g[i] - half.grads[i]));
    CU_ASSERT(worst < 1e-12);
    ((f)full.rt->train.fn)(params, full.grads, full.arena, x, &plain); /* and it does change the gradient */
    double diff = 0;
    for (size_t i = 0; i < P; i++) diff = fmax(diff, fabs(g[i] - full.grads[i]));
    CU_ASSERT(diff > 1e-6);
    free(params);
    free(g);
    release(&full);
    release(&half);
}

/* An IWAE graph cut to fit its arena bound (fewer examples and samples per
 * call) gives the estimate of the uncut one: noise is keyed by example and
 * sample, and the samples are summed in order whatever the cut. */
static void iwae_estimate(long arena_max, const float *params, const vr_dataset *ds, long *arena, int *rows,
                          vr_scores *s) {
    vae_unit *u = vae_unit_from_string("t.vae", with("reparam"), stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    vae_build_opts o = vae_build_defaults(u);
    o.train = o.eval = 0;
    o.iwae_batch = 4;
    o.iwae_chunk = 12;
    o.iwae_arena_max = arena_max;
    vae_program *p = vae_program_build(u, &o, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const vr_program *rt = vae_program_runtime(p);
    CU_ASSERT_FATAL(rt->param_floats <= 256);
    *arena = rt->iwae.arena_floats;
    *rows = rt->iwae.batch * rt->iwae.samples;
    vr_evaluate_iwae(rt, params, ds, 0, 7, 12, s);
    vae_program_free(p);
    vae_unit_free(u);
}

static void test_iwae_cut_to_arena_bound(void) {
    enum { N = 7, P_MAX = 256 };
    float x[N * 6], params[P_MAX];
    for (int i = 0; i < N * 6; i++) x[i] = vr_uniform(3, 5, (uint64_t)i) < 0.4f;
    for (int i = 0; i < P_MAX; i++) params[i] = (float)(vr_uniform(6, 1, (uint64_t)i) - 0.5);
    vr_dataset ds = {.n = N, .dim = 6, .f32 = x};
    long whole, cut, tiny;
    int whole_rows, cut_rows, tiny_rows;
    vr_scores a, b, c;
    iwae_estimate(0, params, &ds, &whole, &whole_rows, &a);
    CU_ASSERT_EQUAL(whole_rows, 48);
    iwae_estimate(whole / 3, params, &ds, &cut, &cut_rows, &b); /* fewer examples per call */
    iwae_estimate(1, params, &ds, &tiny, &tiny_rows, &c);               /* one sample of one example */
    printf("\n    rows %d, %d, %d; arenas %ld, %ld, %ld floats; log p(x) %.6f, %.6f, %.6f", whole_rows, cut_rows,
           tiny_rows, whole, cut, tiny, a.logpx, b.logpx, c.logpx);
    CU_ASSERT(cut <= whole / 3);
    CU_ASSERT(cut_rows < whole_rows);
    CU_ASSERT_EQUAL(tiny_rows, 1);
    CU_ASSERT(a.n == N && b.n == N && c.n == N);
    CU_ASSERT(isfinite(a.logpx) && a.logpx < 0);
    CU_ASSERT(fabs(a.logpx - b.logpx) < 1e-5 * fabs(a.logpx));
    CU_ASSERT(fabs(a.logpx - c.logpx) < 1e-5 * fabs(a.logpx));
    CU_ASSERT(fabs(a.logpx_se - c.logpx_se) < 1e-4 * a.logpx_se);
}

int main(void) {
    static const test_case tests[] = {
        {"IWAE(1) is the ELBO; the bound rises with K", test_bound_rises_with_k},
        {"DReG: same mean, lower variance at K = 50", test_dreg},
        {"IWAE stays below the exact log p(x)", test_iwae_below_exact},
        {"KL warm-up scales the KL term", test_warmup_scales_the_kl},
        {"IWAE graph cut to its arena bound: the same estimate", test_iwae_cut_to_arena_bound},
        {NULL, NULL},
    };
    return run_suite("importance weighted bounds", tests);
}
