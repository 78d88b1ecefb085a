/* relax(control: c) (Grathwohl et al. 2018) and rebar(temperature: T) (Tucker et al. 2017): the second-order derivation (autodiff.c
 * variance_pass) against central differences, and the encoder gradient's unbiasedness.
 * With the noise held fixed (same seed and step) the encoder gradient g is a deterministic
 * function of the control's parameters, so the gradient the step writes for them,
 * d/drho sum_p g_p^2, is checked against central differences of that sum, every
 * coordinate, in double precision. */
#include <math.h>

#include "tests/step_program.h"

/* One Bernoulli latent; the control reads the relaxed latent through a sigmoid and the data
 * (concat: its backward pass's slices are differentiated again), with tanh. */
static const char *ONE = "model one\n"
                         "data x[6] : binary\n"
                         "latent z[3] ~ bernoulli(logits: param[3])\n"
                         "encoder q(z | x) { return bernoulli(logits: dense(tanh(dense(x, 4)), 3)) }\n"
                         "decoder p(x | z) { h = tanh(dense(z, 4))\n"
                         "    return bernoulli(logits: dense(h, 6)) }\n"
                         "control c(z | x) { h = tanh(dense(concat(sigmoid(z), x), 5))\n"
                         "    return dense(h, 1) }\n"
                         "estimator relax(control: c)\n";

/* Two latents (the certificate model of vaec certify), a control with relu and softplus over both. */
static const char *TWO = "model two\n"
                         "data x[6] : binary\n"
                         "latent z[3] ~ bernoulli(logits: param[3])\n"
                         "latent y[2] ~ bernoulli(0.5)\n"
                         "encoder q(z | x) { return bernoulli(logits: dense(x, 3)) }\n"
                         "encoder r(y | x) { return bernoulli(logits: dense(tanh(dense(x, 3)), 2)) }\n"
                         "decoder p(x | z, y) { h = tanh(dense(concat(z, y), 4))\n"
                         "    return bernoulli(logits: dense(h, 6)) }\n"
                         "control c(z | y, x) { h = relu(dense(concat(z, y), 6)) * softplus(dense(x, 6))\n"
                         "    return dense(h, 1) + dense(y, 1) }\n"
                         "estimator %s\n";

static void random_bits(double *x, int n, uint64_t seed) {
    for (int i = 0; i < n; i++) x[i] = vr_uniform(seed, 2, (uint64_t)i) < 0.4;
}

static int owned_by(const vae_param *q, ast_net_role role) { return q->owner == (int)role; }

/* sum over the encoders' parameters of the squared gradient of one step. */
static double squared_encoder_gradient(step_program *d, double *params, const double *x, uint64_t step) {
    step_program_run(d, params, x, 5, step);
    double v = 0;
    for (int t = 0; t < d->m->nparams; t++)
        if (owned_by(&d->m->params[t], NET_ENCODER))
            for (long i = 0; i < d->m->params[t].size; i++) v += d->grads[d->m->params[t].offset + i] * d->grads[d->m->params[t].offset + i];
    return v;
}

/* The control's gradient against central differences of the squared encoder gradient. */
static void second_order_check(const char *text, int B, uint64_t seed, int at_least) {
    step_program d = step_program_build(text, B);
    size_t P = (size_t)d.rt->param_floats;
    double *params = malloc(P * sizeof(double)), *analytic = malloc(P * sizeof(double)), x[8 * 6];
    for (size_t i = 0; i < P; i++) params[i] = 1.6 * (vr_uniform(seed, 3, i) - 0.5);
    random_bits(x, B * 6, seed);
    int checked = 0;
    double worst = 0, largest = 0;
    for (uint64_t step = 1; step <= 3; step++) {
        squared_encoder_gradient(&d, params, x, step);
        memcpy(analytic, d.grads, P * sizeof(double));
        for (int t = 0; t < d.m->nparams; t++) {
            const vae_param *q = &d.m->params[t];
            if (!owned_by(q, NET_CONTROL)) continue;
            for (long i = q->offset; i < q->offset + q->size; i++) {
                const double h = 1e-6, keep = params[i];
                params[i] = keep + h;
                double up = squared_encoder_gradient(&d, params, x, step);
                params[i] = keep - h;
                double down = squared_encoder_gradient(&d, params, x, step);
                params[i] = keep;
                double fd = (up - down) / (2 * h), err = fabs(fd - analytic[i]) / (1e-6 + fabs(fd) + fabs(analytic[i]));
                if (err > worst) worst = err;
                if (fabs(fd) > largest) largest = fabs(fd);
                checked++;
            }
        }
    }
    printf("\n    %d control coordinates, largest |d V / d rho| %.3g, worst relative error %.2g", checked, largest, worst);
    CU_ASSERT(checked >= at_least);
    CU_ASSERT(largest > 1e-3); /* the control does move the variance */
    CU_ASSERT(worst < 1e-5);
    free(params);
    free(analytic);
    step_program_free(&d);
}

static void test_second_order_one_latent(void) { second_order_check(ONE, 4, 7, 3 * 56); }

static void test_second_order_two_latents(void) {
    char text[1024];
    snprintf(text, sizeof text, TWO, "relax(control: c)");
    second_order_check(text, 3, 8, 3 * 88);
}

/* rebar's eta and log-temperature (and the unused network c's coordinates: 0 both ways). */
static void test_second_order_rebar(void) {
    char text[1024];
    snprintf(text, sizeof text, TWO, "rebar(temperature: 0.5)");
    second_order_check(text, 3, 10, 3 * 90);
}

/* The encoder's (and decoder's) gradient is unbiased for the enumerated one, every coordinate but
 * the control's (its gradient is the variance's, which the analytic program leaves at 0). */
static void unbiased(const char *spec) {
    enum { B = 3, R = 10000 };
    char text[1024];
    snprintf(text, sizeof text, TWO, "analytic");
    step_program exact = step_program_build(text, B);
    snprintf(text, sizeof text, TWO, spec);
    step_program d = step_program_build(text, B);
    size_t P = (size_t)d.rt->param_floats, shared = (size_t)exact.rt->param_floats; /* rebar's eta and T come last */
    CU_ASSERT_FATAL(shared <= P);
    double *params = malloc(P * sizeof(double)), *truth = calloc(P, sizeof(double)), x[B * 6];
    double *mean = calloc(P, sizeof(double)), *var = calloc(P, sizeof(double));
    for (size_t i = 0; i < P; i++) params[i] = 2.0 * (vr_uniform(9, 3, i) - 0.5);
    random_bits(x, B * 6, 9);
    step_program_run(&exact, params, x, 5, 0);
    memcpy(truth, exact.grads, shared * sizeof(double));
    for (int r = 0; r < R; r++) {
        step_program_run(&d, params, x, 5, (uint64_t)r + 1);
        for (size_t i = 0; i < P; i++) {
            double delta = d.grads[i] - mean[i];
            mean[i] += delta / (r + 1);
            var[i] += delta * (d.grads[i] - mean[i]);
        }
    }
    double worst = 0, signal = 0;
    for (int t = 0; t < d.m->nparams; t++) {
        const vae_param *q = &d.m->params[t];
        if (owned_by(q, NET_CONTROL)) continue;
        for (long i = q->offset; i < q->offset + q->size; i++) {
            double se = sqrt(var[i] / (R - 1) / R), z = fabs(mean[i] - truth[i]) / (se + 1e-12);
            if (fabs(mean[i] - truth[i]) > 1e-9 && z > worst) worst = z;
            if (owned_by(q, NET_ENCODER)) signal += fabs(truth[i]);
        }
    }
    printf("\n    %s: largest |mean - exact| / standard error %.2f over %d draws", spec, worst, R);
    CU_ASSERT(worst < 4.0);
    CU_ASSERT(signal > 1e-3);
    free(params);
    free(truth);
    free(mean);
    free(var);
    step_program_free(&d);
    step_program_free(&exact);
}

/* The encoders' gradient variance (the trace of its covariance) over R draws from step `first` on. */
static double encoder_variance(step_program *d, double *params, const double *x, int R, uint64_t first) {
    size_t P = (size_t)d->rt->param_floats;
    double *mean = calloc(P, sizeof(double)), *m2 = calloc(P, sizeof(double)), total = 0;
    for (int r = 0; r < R; r++) {
        step_program_run(d, params, x, 5, first + (uint64_t)r);
        for (size_t i = 0; i < P; i++) {
            double delta = d->grads[i] - mean[i];
            mean[i] += delta / (r + 1);
            m2[i] += delta * (d->grads[i] - mean[i]);
        }
    }
    for (int t = 0; t < d->m->nparams; t++)
        if (owned_by(&d->m->params[t], NET_ENCODER))
            for (long i = 0; i < d->m->params[t].size; i++) total += m2[d->m->params[t].offset + i] / (R - 1);
    free(mean);
    free(m2);
    return total;
}

/* Following its gradient (Adam, the other parameters held), the control lowers the encoder
 * gradient's variance: what it is trained for.  Returns the ratio after / before. */
static double tuned_variance_ratio(const char *spec) {
    enum { B = 3, R = 4000, STEPS = 3000 };
    char text[1024];
    snprintf(text, sizeof text, TWO, spec);
    step_program d = step_program_build(text, B);
    size_t P = (size_t)d.rt->param_floats;
    double *params = malloc(P * sizeof(double)), *m1 = calloc(P, sizeof(double)), *m2 = calloc(P, sizeof(double)), x[B * 6];
    for (size_t i = 0; i < P; i++) params[i] = 2.0 * (vr_uniform(9, 3, i) - 0.5);
    random_bits(x, B * 6, 9);
    double before = encoder_variance(&d, params, x, R, 1);
    for (int k = 1; k <= STEPS; k++) {
        step_program_run(&d, params, x, 6, (uint64_t)k); /* other noise than the measurements' */
        for (int t = 0; t < d.m->nparams; t++) {
            const vae_param *q = &d.m->params[t];
            for (long i = q->offset; owned_by(q, NET_CONTROL) && i < q->offset + q->size; i++) {
                m1[i] = 0.9 * m1[i] + 0.1 * d.grads[i];
                m2[i] = 0.999 * m2[i] + 0.001 * d.grads[i] * d.grads[i];
                params[i] -= 0.01 * (m1[i] / (1 - pow(0.9, k))) / (sqrt(m2[i] / (1 - pow(0.999, k))) + 1e-8);
            }
        }
    }
    double after = encoder_variance(&d, params, x, R, 1);
    printf("\n    %s: encoder-gradient variance %.4g with the control at its start, %.4g after %d steps", spec, before,
           after, STEPS);
    free(params);
    free(m1);
    free(m2);
    step_program_free(&d);
    return after / before;
}

static void test_relax_unbiased(void) { unbiased("relax(control: c)"); }
static void test_rebar_unbiased(void) { unbiased("rebar(temperature: 0.5)"); }
static void test_relax_control_lowers_the_variance(void) { CU_ASSERT(tuned_variance_ratio("relax(control: c)") < 0.5); }
static void test_rebar_control_lowers_the_variance(void) { CU_ASSERT(tuned_variance_ratio("rebar(temperature: 0.5)") < 0.5); }

int main(void) {
    static const test_case tests[] = {
        {"relax: the control's gradient is d/drho of the squared encoder gradient (one latent)",
         test_second_order_one_latent},
        {"relax: the same with two latents, relu, softplus and a product", test_second_order_two_latents},
        {"rebar: eta's and the log-temperature's gradient likewise", test_second_order_rebar},
        {"relax: the encoder's gradient is unbiased", test_relax_unbiased},
        {"rebar: the encoder's gradient is unbiased", test_rebar_unbiased},
        {"relax: the control, following its gradient, lowers the variance", test_relax_control_lowers_the_variance},
        {"rebar: eta and the temperature, following their gradient, lower the variance",
         test_rebar_control_lowers_the_variance},
        {NULL, NULL},
    };
    return run_suite("relax", tests);
}
