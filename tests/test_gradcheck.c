/* Gradient checks: the gradient that the compiler derives (and the JIT runs)
 * against central differences of the generated objective, every parameter
 * tensor, in double precision, with the noise held fixed (same step key).
 * The models are small and random: every layer, activation, arithmetic form,
 * distribution form, sample count and beta of the foundation. */
#include <math.h>

#include <dirent.h>

#include "tests/testutil.h"
#include "vae/compiler.h"
#include "parser/model.h"
#include "codegen/graph.h"
#include "codegen/pipeline.h"


typedef void (*fn64)(double *params, double *grads, double *arena, const double *data, const vr_ctx *ctx);

static double objective(fn64 f, const vr_program *rt, double *p, double *g, double *arena, const double *x,
                        const vr_ctx *ctx) {
    f(p, g, arena, x, ctx);
    return arena[rt->train.objective];
}

/* Returns the number of tensors whose gradient disagrees. */
static int gradcheck(const char *name, const char *text, int batch, uint64_t seed) {
    vae_unit *u = vae_unit_from_string(name, text, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    const vae_model *m = vae_unit_model(u);
    vae_build_opts o = vae_build_defaults(u);
    o.batch = batch;
    o.eval = o.iwae = 0;
    o.double_precision = 1;
    vae_program *prog = vae_program_build(u, &o, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(prog);
    const vr_program *rt = vae_program_runtime(prog);
    fn64 f = (fn64)vae_program_function(prog, "vae_train_step");
    size_t P = (size_t)rt->param_floats;
    double *p = calloc(P, sizeof *p), *g = calloc(P, sizeof *g), *g2 = calloc(P, sizeof *g2);
    double *arena = calloc((size_t)rt->train.arena_floats, sizeof *arena);
    double *x = calloc((size_t)batch * (size_t)m->data_dim, sizeof *x);
    for (size_t i = 0; i < P; i++) p[i] = 0.8 * (vr_uniform(seed, 1, i) - 0.5);
    for (int i = 0; i < batch * m->data_dim; i++) {
        double u01 = vr_uniform(seed, 2, (uint64_t)i);
        x[i] = m->binary ? (u01 > 0.5) : 0.05 + 0.9 * u01;
    }
    vr_ctx ctx = {.seed = seed, .step = 11, .example0 = 0, .sample0 = 0};
    objective(f, rt, p, g, arena, x, &ctx);
    int bad = 0;
    const double h = 1e-6;
    for (int t = 0; t < m->nparams; t++) {
        const vae_param *q = &m->params[t];
        double worst = 0;
        int checks = q->size < 8 ? (int)q->size : 8;
        for (int k = 0; k < checks; k++) {
            long i = q->offset + (q->size <= 8 ? k : (long)(vr_uniform(seed, 3 + (uint32_t)t, (uint64_t)k) * q->size));
            double keep = p[i];
            p[i] = keep + h;
            double up = -objective(f, rt, p, g2, arena, x, &ctx); /* loss = -objective */
            p[i] = keep - h;
            double down = -objective(f, rt, p, g2, arena, x, &ctx);
            p[i] = keep;
            double fd = (up - down) / (2 * h);
            double err = fabs(fd - g[i]) / fmax(1.0, fmax(fabs(fd), fabs(g[i])));
            if (err > worst) worst = err;
        }
        if (worst > 1e-6) {
            fprintf(stderr, "\n  %s: gradient of %s is off (relative error %.3g)", name, q->name, worst);
            bad++;
        }
    }
    /* the gradient is not all zeros: the check above could not pass vacuously */
    double norm = 0;
    for (size_t i = 0; i < P; i++) norm += g[i] * g[i];
    CU_ASSERT(norm > 1e-8);
    free(p);
    free(g);
    free(g2);
    free(arena);
    free(x);
    vae_program_free(prog);
    vae_unit_free(u);
    return bad;
}

static void test_gaussian_vae_shapes(void) {
    const char *text = "model small\n"
                       "data x[7] : binary\n"
                       "latent z[3] ~ normal(0, 1)\n"
                       "encoder q(z | x) {\n"
                       "    h = relu(dense(x, 5))\n"
                       "    return normal(mean: dense(h, 3), logvar: dense(h, 3))\n"
                       "}\n"
                       "decoder p(x | z) {\n"
                       "    h = relu(dense(z, 6))\n"
                       "    return bernoulli(logits: dense(h, 7))\n"
                       "}\n"
                       "estimator reparam\n";
    CU_ASSERT_EQUAL(gradcheck("gauss", text, 4, 1), 0);
}

static void test_every_activation_and_arithmetic(void) {
    const char *text = "model acts\n"
                       "data x[6] : binary\n"
                       "latent z[4] ~ normal(0, 1)\n"
                       "encoder q(z | x) {\n"
                       "    a = tanh(dense(x, 5))\n"
                       "    b = sigmoid(dense(x, 5)) * a - 0.5 * softplus(dense(a, 5))\n"
                       "    c = elu(dense(b, 4)) / (2 + exp(dense(b, 4) * 0.1))\n"
                       "    d = leaky_relu(dense(concat(a, c), 6), 0.2) + param[6]\n"
                       "    return normal(mean: dense(d, 4), scale: softplus(dense(d, 4)) + 0.1)\n"
                       "}\n"
                       "decoder p(x | z) {\n"
                       "    h = -tanh(dense(z, 5)) + 1\n"
                       "    return bernoulli(probs: sigmoid(dense(flatten(reshape(h, 5, 1)), 6)))\n"
                       "}\n"
                       "estimator reparam(samples: 3, beta: 0.7)\n";
    CU_ASSERT_EQUAL(gradcheck("acts", text, 3, 2), 0);
}

static void test_normal_decoders(void) {
    const char *logvar = "model gdec\n"
                         "data x[5] : real\n"
                         "latent z[2] ~ normal(0, 1)\n"
                         "encoder q(z | x) { h = softplus(dense(x, 4))\n"
                         "    return normal(mean: dense(h, 2), logvar: dense(h, 2)) }\n"
                         "decoder p(x | z) { h = tanh(dense(z, 4))\n"
                         "    return normal(mean: sigmoid(dense(h, 5)), logvar: dense(h, 5)) }\n"
                         "estimator reparam(samples: 2)\n";
    CU_ASSERT_EQUAL(gradcheck("normal-logvar", logvar, 5, 3), 0);
    const char *scale = "model gdec2\n"
                        "data x[5] : real\n"
                        "latent z[2] ~ normal(0, 1)\n"
                        "encoder q(z | x) { h = tanh(dense(x, 4))\n"
                        "    return normal(mean: dense(h, 2), scale: exp(dense(h, 2))) }\n"
                        "decoder p(x | z) { h = elu(dense(z, 4))\n"
                        "    return normal(mean: dense(h, 5), scale: softplus(param[5]) + 0.05) }\n"
                        "estimator reparam(beta: 2)\n";
    CU_ASSERT_EQUAL(gradcheck("normal-scale", scale, 2, 4), 0);
}

static void test_two_latents(void) {
    const char *text = "model two\n"
                       "data x[6] : binary\n"
                       "latent z[2] ~ normal(0, 1)\n"
                       "latent w[3] ~ normal(0, 1)\n"
                       "encoder q(z | x) { h = tanh(dense(x, 4))\n"
                       "    return normal(mean: dense(h, 2), logvar: dense(h, 2)) }\n"
                       "encoder r(w | x) { return normal(mean: dense(x, 3), logvar: dense(x, 3)) }\n"
                       "decoder p(x | z, w) { h = tanh(dense(concat(z, w), 5))\n"
                       "    return bernoulli(logits: dense(h, 6) + dense(w, 6)) }\n"
                       "estimator reparam(samples: 2)\n";
    CU_ASSERT_EQUAL(gradcheck("two-latents", text, 3, 5), 0);
}

/* Random architectures: depth, widths and activations drawn from a seed. */
static void test_random_models(void) {
    static const char *const acts[] = {"tanh", "sigmoid", "softplus", "elu", "relu"};
    for (uint64_t seed = 10; seed < 16; seed++) {
        char text[2048];
        int D = 3 + (int)(vr_uniform(seed, 9, 0) * 6), L = 1 + (int)(vr_uniform(seed, 9, 1) * 3);
        int H1 = 2 + (int)(vr_uniform(seed, 9, 2) * 6), H2 = 2 + (int)(vr_uniform(seed, 9, 3) * 6);
        const char *a1 = acts[(int)(vr_uniform(seed, 9, 4) * 5)], *a2 = acts[(int)(vr_uniform(seed, 9, 5) * 5)];
        int S = 1 + (int)(vr_uniform(seed, 9, 6) * 3);
        snprintf(text, sizeof text,
                 "model r%d\ndata x[%d] : binary\nlatent z[%d] ~ normal(0, 1)\n"
                 "encoder q(z | x) { h = %s(dense(x, %d))\n  h = %s(dense(h, %d))\n"
                 "  return normal(mean: dense(h, %d), logvar: dense(h, %d)) }\n"
                 "decoder p(x | z) { h = %s(dense(z, %d))\n  return bernoulli(logits: dense(h, %d)) }\n"
                 "estimator reparam(samples: %d)\n",
                 (int)seed, D, L, a1, H1, a2, H2, L, L, a2, H1, D, S);
        char name[32];
        snprintf(name, sizeof name, "random-%d", (int)seed);
        CU_ASSERT_EQUAL(gradcheck(name, text, 1 + (int)seed % 4, seed), 0);
    }
}

/* ---- discrete latents: analytic and exact are deterministic objectives */

static void test_analytic_categorical(void) {
    const char *text = "model cat\n"
                       "data x[6] : binary\n"
                       "latent z[2] ~ categorical(logits: param[2, 3])\n"
                       "encoder q(z | x) { h = tanh(dense(x, 5))\n"
                       "    return categorical(logits: reshape(dense(h, 6), 2, 3)) }\n"
                       "decoder p(x | z) { h = softplus(dense(flatten(onehot(z)), 4))\n"
                       "    return bernoulli(logits: dense(h, 6)) }\n"
                       "estimator analytic(beta: 0.8)\n";
    CU_ASSERT_EQUAL(gradcheck("analytic-categorical", text, 4, 21), 0);
}

static void test_analytic_bernoulli_and_mixed(void) {
    const char *text = "model bern\n"
                       "data x[5] : binary\n"
                       "latent z[3] ~ bernoulli(logits: param[3])\n"
                       "latent c ~ categorical(3)\n"
                       "encoder q(z | x) { return bernoulli(probs: sigmoid(dense(x, 3))) }\n"
                       "encoder r(c | x) { return categorical(logits: dense(x, 3)) }\n"
                       "decoder p(x | z, c) { h = tanh(dense(concat(z, onehot(c)), 4))\n"
                       "    return bernoulli(probs: sigmoid(dense(h, 5))) }\n"
                       "estimator analytic\n";
    CU_ASSERT_EQUAL(gradcheck("analytic-mixed", text, 3, 22), 0);
}

static void test_exact(void) {
    const char *bern = "model ex\n"
                       "data x[6] : binary\n"
                       "latent z[3] ~ bernoulli(logits: param[3])\n"
                       "decoder p(x | z) { h = elu(dense(z, 4))\n"
                       "    return bernoulli(logits: dense(h, 6)) }\n"
                       "estimator exact\n";
    CU_ASSERT_EQUAL(gradcheck("exact-bernoulli", bern, 4, 23), 0);
    const char *normal = "model exn\n"
                         "data x[4] : real\n"
                         "latent z ~ categorical(logits: param[3])\n"
                         "decoder p(x | z) { h = tanh(dense(onehot(z), 4))\n"
                         "    return normal(mean: dense(h, 4), logvar: dense(h, 4)) }\n"
                         "estimator exact\n";
    CU_ASSERT_EQUAL(gradcheck("exact-normal-logvar", normal, 3, 24), 0);
    const char *scale = "model exs\n"
                        "data x[4] : real\n"
                        "latent z ~ categorical(4)\n"
                        "decoder p(x | z) { h = tanh(dense(onehot(z), 4))\n"
                        "    return normal(mean: dense(h, 4), scale: softplus(dense(h, 4)) + 0.1) }\n"
                        "estimator exact\n";
    CU_ASSERT_EQUAL(gradcheck("exact-normal-scale", scale, 2, 25), 0);
}

/* ---- the importance weighted bound, noise held fixed */
static void test_iwae(void) {
    const char *text = "model iw\n"
                       "data x[6] : binary\n"
                       "latent z[2] ~ normal(0, 1)\n"
                       "encoder q(z | x) { h = tanh(dense(x, 5))\n"
                       "    return normal(mean: dense(h, 2), logvar: dense(h, 2)) }\n"
                       "decoder p(x | z) { h = softplus(dense(z, 4))\n"
                       "    return bernoulli(logits: dense(h, 6)) }\n"
                       "estimator iwae(samples: 4)\n";
    CU_ASSERT_EQUAL(gradcheck("iwae", text, 3, 31), 0);
    const char *scale = "model iws\n"
                        "data x[4] : real\n"
                        "latent z[3] ~ normal(0, 1)\n"
                        "encoder q(z | x) { return normal(mean: dense(x, 3), scale: softplus(dense(x, 3)) + 0.05) }\n"
                        "decoder p(x | z) { return normal(mean: dense(z, 4), logvar: dense(z, 4)) }\n"
                        "estimator iwae(samples: 3, beta: 0.5)\n";
    CU_ASSERT_EQUAL(gradcheck("iwae-scale", scale, 2, 32), 0);
}

/* ---- Gumbel-softmax, noise held fixed: a smooth function of the parameters */
static void test_gumbel_relaxed(void) {
    const char *text = "model gs\n"
                       "data x[5] : binary\n"
                       "latent z[2] ~ categorical(logits: param[2, 3])\n"
                       "encoder q(z | x) { h = tanh(dense(x, 4))\n"
                       "    return categorical(logits: reshape(dense(h, 6), 2, 3)) }\n"
                       "decoder p(x | z) { h = tanh(dense(flatten(onehot(z)), 4))\n"
                       "    return bernoulli(logits: dense(h, 5)) }\n"
                       "estimator gumbel(samples: 2, temperature: 0.7, beta: 0.9)\n";
    CU_ASSERT_EQUAL(gradcheck("gumbel", text, 3, 41), 0);
}

/* ---- binary concrete (gumbel on Bernoulli latents), noise held fixed: smooth in the parameters */
static void test_binary_concrete(void) {
    const char *text = "model bc\n"
                       "data x[5] : binary\n"
                       "latent z[3] ~ bernoulli(logits: param[3])\n"
                       "latent y[2] ~ bernoulli(0.3)\n"
                       "encoder q(z | x) { return bernoulli(logits: dense(tanh(dense(x, 4)), 3)) }\n"
                       "encoder r(y | x) { return bernoulli(probs: sigmoid(dense(x, 2))) }\n"
                       "decoder p(x | z, y) { h = tanh(dense(concat(z, y), 4))\n"
                       "    return bernoulli(logits: dense(h, 5)) }\n"
                       "estimator gumbel(samples: 2, temperature: 0.6, beta: 0.8)\n";
    CU_ASSERT_EQUAL(gradcheck("binary concrete", text, 3, 43), 0);
}

/* ---- convolutions: strides, padding, several channels, odd sizes (windows
 * that leave pixels unread), transposed convolutions in a decoder read by S
 * samples per example, and images kept pixel by pixel between layers and in
 * arithmetic, or turned channels first to meet a parameter */
static void test_convolutions(void) {
    const char *text = "model conv\n"
                       "data x[50] : binary\n"
                       "latent z[3] ~ normal(0, 1)\n"
                       "encoder q(z | x) {\n"
                       "    h = tanh(conv2d(reshape(x, 2, 5, 5), 3, 3, stride: 2, pad: 1))\n" /* [3, 3, 3] */
                       "    g = softplus(conv2d(h, 2, 2)) * conv2d(h, 2, 2) + 0.5\n"            /* [2, 2, 2] */
                       "    u = h + param[3, 3, 3]\n"
                       "    return normal(mean: dense(flatten(g), 3), logvar: dense(flatten(u), 3))\n"
                       "}\n"
                       "decoder p(x | z) {\n"
                       "    h = reshape(tanh(dense(z, 18)), 2, 3, 3)\n"
                       "    h = elu(conv_transpose2d(h, 3, 3, stride: 2, pad: 1))\n"          /* [3, 5, 5] */
                       "    e = conv2d(h, 3, 3, pad: 1) - h\n"                                  /* [3, 5, 5] */
                       "    h = conv_transpose2d(e, 2, 1)\n"                                   /* [2, 5, 5] */
                       "    return bernoulli(logits: flatten(h))\n"
                       "}\n"
                       "estimator reparam(samples: 2)\n";
    CU_ASSERT_EQUAL(gradcheck("conv", text, 3, 51), 0);
    const char *wide = "model convw\n"
                       "data x[36] : real\n"
                       "latent z[2] ~ normal(0, 1)\n"
                       "encoder q(z | x) {\n"
                       "    h = relu(conv2d(reshape(x, 1, 6, 6), 4, 4, stride: 3, pad: 2))\n" /* [4, 3, 3] */
                       "    return normal(mean: dense(flatten(h), 2), logvar: dense(flatten(h), 2))\n"
                       "}\n"
                       "decoder p(x | z) {\n"
                       "    h = reshape(dense(z, 8), 2, 2, 2)\n"
                       "    h = sigmoid(conv_transpose2d(h, 1, 4, stride: 2))\n"              /* [1, 6, 6] */
                       "    return normal(mean: flatten(h), logvar: param[36])\n"
                       "}\n"
                       "estimator iwae(samples: 2)\n";
    CU_ASSERT_EQUAL(gradcheck("conv-wide", wide, 2, 52), 0);
}

/* The compiled convolutions against direct loops over their definitions
 * (PyTorch's conv2d and conv_transpose2d, with vaec's weight layouts
 * [K, K, C, OC] and [C, K, K, OC]): the encoder's mean is a convolution of
 * the data, the decoder's mean a transposed convolution of z, read back
 * through the encode and decode graphs. */
/* The shapes of the convolution test: x [C, H, W] through conv2d (OC channels, kernel K, stride
 * S, pad P) to [OC, OH, OW], and back through conv_transpose2d; B examples. */
enum { CV_C = 2, CV_H = 5, CV_W = 5, CV_OC = 3, CV_K = 3, CV_S = 2, CV_P = 1, CV_OH = 3, CV_OW = 3, CV_B = 4 };

/* conv2d by its definition: weights [K, K, C, OC], bias [OC]. */
static void direct_conv2d(const double x[CV_C][CV_H][CV_W], const double *w, const double *bias,
                          double out[CV_OC][CV_OH][CV_OW]) {
    for (int oc = 0; oc < CV_OC; oc++)
        for (int oy = 0; oy < CV_OH; oy++)
            for (int ox = 0; ox < CV_OW; ox++) {
                double sum = bias[oc];
                for (int c = 0; c < CV_C; c++)
                    for (int ky = 0; ky < CV_K; ky++)
                        for (int kx = 0; kx < CV_K; kx++) {
                            int y = oy * CV_S - CV_P + ky, xx = ox * CV_S - CV_P + kx;
                            if (y >= 0 && y < CV_H && xx >= 0 && xx < CV_W)
                                sum += x[c][y][xx] * w[((ky * CV_K + kx) * CV_C + c) * CV_OC + oc];
                        }
                out[oc][oy][ox] = sum;
            }
}

/* conv_transpose2d by its definition: each input pixel adds its weighted kernel at stride S
 * into the output; weights [OC, K, K, C] (OC in, C out), bias [C]. */
static void direct_conv_transpose2d(const double z[CV_OC][CV_OH][CV_OW], const double *w, const double *bias,
                                    double out[CV_C][CV_H][CV_W]) {
    for (int c = 0; c < CV_C; c++)
        for (int y = 0; y < CV_H; y++)
            for (int xx = 0; xx < CV_W; xx++) out[c][y][xx] = bias[c];
    for (int ic = 0; ic < CV_OC; ic++)
        for (int iy = 0; iy < CV_OH; iy++)
            for (int ix = 0; ix < CV_OW; ix++)
                for (int c = 0; c < CV_C; c++)
                    for (int ky = 0; ky < CV_K; ky++)
                        for (int kx = 0; kx < CV_K; kx++) {
                            int y = iy * CV_S - CV_P + ky, xx = ix * CV_S - CV_P + kx;
                            if (y >= 0 && y < CV_H && xx >= 0 && xx < CV_W)
                                out[c][y][xx] += z[ic][iy][ix] * w[((ic * CV_K + ky) * CV_K + kx) * CV_C + c];
                        }
}

/* The largest difference between n values of the arena from `offset` on (rows of `width`) and want. */
static double worst_rows(const double *arena, long offset, long width, const double *want, int rows, int n) {
    double worst = 0;
    for (int b = 0; b < rows; b++)
        for (int i = 0; i < n; i++) worst = fmax(worst, fabs(arena[offset + b * width + i] - want[b * n + i]));
    return worst;
}

static void test_convolutions_against_direct_loops(void) {
    const char *text = "model direct\n"
                       "data x[50] : real\n"
                       "latent z[27] ~ normal(0, 1)\n"
                       "encoder q(z | x) {\n"
                       "    return normal(mean: flatten(conv2d(reshape(x, 2, 5, 5), 3, 3, stride: 2, pad: 1)),\n"
                       "                  logvar: param[27])\n"
                       "}\n"
                       "decoder p(x | z) {\n"
                       "    return normal(mean: flatten(conv_transpose2d(reshape(z, 3, 3, 3), 2, 3, stride: 2, pad: 1)),\n"
                       "                  logvar: param[50])\n"
                       "}\n"
                       "estimator reparam\n";
    vae_unit *u = vae_unit_from_string("direct", text, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    vae_build_opts o = vae_build_defaults(u);
    o.batch = CV_B;
    o.api = 1;
    o.api_batch = CV_B;
    o.double_precision = 1;
    vae_program *prog = vae_program_build(u, &o, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(prog);
    const vr_program *rt = vae_program_runtime(prog);
    const vae_model *m = vae_unit_model(u);
    CU_ASSERT_EQUAL_FATAL(rt->encode_width, 2 * CV_OC * CV_OH * CV_OW);
    CU_ASSERT_EQUAL_FATAL(rt->decode_width, 2 * CV_C * CV_H * CV_W);
    fn64 enc = (fn64)vae_program_function(prog, "vae_encode"), dec = (fn64)vae_program_function(prog, "vae_decode");
    CU_ASSERT_PTR_NOT_NULL_FATAL(enc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dec);
    size_t np = (size_t)rt->param_floats;
    double *p = calloc(np, sizeof *p);
    for (size_t i = 0; i < np; i++) p[i] = vr_uniform(61, 1, i) - 0.5;
    long most = rt->encode.arena_floats > rt->decode.arena_floats ? rt->encode.arena_floats : rt->decode.arena_floats;
    double *arena = calloc((size_t)most, sizeof *arena);
    double x[CV_B][CV_C][CV_H][CV_W], z[CV_B][CV_OC][CV_OH][CV_OW];
    double conv[CV_B][CV_OC][CV_OH][CV_OW], back[CV_B][CV_C][CV_H][CV_W];
    for (int i = 0; i < CV_B * CV_C * CV_H * CV_W; i++) (&x[0][0][0][0])[i] = vr_uniform(61, 2, (uint64_t)i) - 0.5;
    for (int i = 0; i < CV_B * CV_OC * CV_OH * CV_OW; i++) (&z[0][0][0][0])[i] = vr_uniform(61, 3, (uint64_t)i) - 0.5;
    for (int b = 0; b < CV_B; b++) {
        direct_conv2d(x[b], p + vae_model_param(m, "encoder.mean.weight")->offset,
                      p + vae_model_param(m, "encoder.mean.bias")->offset, conv[b]);
        direct_conv_transpose2d(z[b], p + vae_model_param(m, "decoder.mean.weight")->offset,
                                p + vae_model_param(m, "decoder.mean.bias")->offset, back[b]);
    }
    vr_ctx ctx = {.seed = 1, .step = VR_STEP_EVAL};
    enc(p, NULL, arena, &x[0][0][0][0], &ctx);
    double worst = worst_rows(arena, rt->api_out_encode, rt->encode_width, &conv[0][0][0][0], CV_B,
                              CV_OC * CV_OH * CV_OW);
    dec(p, NULL, arena, &z[0][0][0][0], &ctx);
    double worst_t = worst_rows(arena, rt->api_out_decode, rt->decode_width, &back[0][0][0][0], CV_B,
                                CV_C * CV_H * CV_W);
    CU_ASSERT(worst < 1e-12);
    CU_ASSERT(worst_t < 1e-12);
    if (worst >= 1e-12 || worst_t >= 1e-12)
        fprintf(stderr, "\n  conv2d off by %.3g, conv_transpose2d by %.3g", worst, worst_t);
    free(p);
    free(arena);
    vae_program_free(prog);
    vae_unit_free(u);
}

/* The float build (vectorised exp and log1p in both back ends) computes what
 * the double build (libm) computes, to float accuracy. */
/* The plan reuses arena slots: two tensors that are live at once (from the node that
 * writes one to the last node that reads it, or to the end for what the driver reads)
 * never share a float, every slot lies inside the arena, and reuse makes the arena
 * smaller than the sum of its tensors.  Every graph of every example model. */
static int live_to_end(const g_graph *g, const g_node *n) {
    const g_outputs *o = &g->out;
    return n == o->objective || n == o->recon_rows || n == o->kl_rows || n == o->logw_rows || n == o->logpx_rows ||
           n == o->value_rows || n == o->api_out;
}

/* The most floats held at once: at each node, the union of the slots of the tensors
 * live there (slots of live tensors are disjoint but for a map in place over its
 * input, which is one slot); no placement can make the arena smaller. */
static int by_start(const void *pa, const void *pb) {
    const long *a = pa, *b = pb;
    return a[0] < b[0] ? -1 : a[0] > b[0];
}

static long busiest_node_floats(const g_graph *g, const int *last) {
    int n = g->nnodes;
    long(*spans)[2] = malloc(sizeof *spans * (size_t)(n ? n : 1)), most = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(spans);
    for (int k = 0; k < n; k++) {
        int ns = 0;
        for (int i = 0; i <= k; i++) {
            const g_node *a = g->nodes[i];
            if (a->fused || a->buffer != BUF_ARENA || last[i] < k) continue;
            spans[ns][0] = a->offset;
            spans[ns++][1] = a->offset + (long)a->rows * a->cols;
        }
        qsort(spans, (size_t)ns, sizeof *spans, by_start);
        long held = 0, end = -1;
        for (int s = 0; s < ns; s++) {
            long from = spans[s][0] > end ? spans[s][0] : end;
            if (spans[s][1] > from) held += spans[s][1] - from;
            if (spans[s][1] > end) end = spans[s][1];
        }
        if (held > most) most = held;
    }
    free(spans);
    return most;
}

static int arena_slots_disjoint(const g_graph *g, long *total, int *in_places, long *busiest) {
    int n = g->nnodes, bad = 0;
    int *last = calloc((size_t)n, sizeof *last);
    CU_ASSERT_PTR_NOT_NULL_FATAL(last);
    for (int i = 0; i < n; i++) last[i] = live_to_end(g, g->nodes[i]) ? n : i;
    for (int i = 0; i < n; i++)
        if (!g->nodes[i]->fused)
            for (int j = 0; j < g->nodes[i]->nin; j++)
                if (last[g->nodes[i]->in[j]->id] < i) last[g->nodes[i]->in[j]->id] = i;
    *total = 0;
    *in_places = 0;
    for (int i = 0; i < n; i++) {
        const g_node *a = g->nodes[i];
        if (a->fused || a->buffer != BUF_ARENA) continue;
        long size = (long)a->rows * a->cols;
        *total += size;
        if (a->offset < 0 || a->offset + size > g->arena_floats) bad++;
        for (int k = i + 1; k <= last[i] && k < n; k++) { /* b is written while a is live */
            const g_node *b = g->nodes[k];
            if (b->fused || b->buffer != BUF_ARENA) continue;
            long bsize = (long)b->rows * b->cols;
            int in_place = 0; /* an elementwise map over its last-read input of the same shape */
            if (b->kind == G_MAP && k == last[i] && b->offset == a->offset && b->rows == a->rows && b->cols == a->cols)
                for (int j = 0; j < b->nin; j++) in_place |= b->in[j] == a;
            *in_places += in_place;
            if (!in_place && a->offset < b->offset + bsize && b->offset < a->offset + size) {
                fprintf(stderr, "\n  %s: %%%d [%ld, +%ld) and %%%d [%ld, +%ld) overlap while both live", g->fn_name, a->id,
                        a->offset, size, b->id, b->offset, bsize);
                bad++;
            }
        }
    }
    *busiest = busiest_node_floats(g, last);
    free(last);
    return bad;
}

/* Products that run at once (one team job, plan.c) write nothing that another of
 * them reads or writes, and none reads another's result. */
static int overlaps(const g_node *a, const g_node *b) {
    if (a->buffer != b->buffer || a->fused || b->fused) return 0;
    return a->offset < b->offset + (long)b->rows * b->cols && b->offset < a->offset + (long)a->rows * a->cols;
}

static int product_groups_independent(const g_graph *g, int *groups) {
    const g_node *m[G_PRODUCT_GROUP_MAX];
    int bad = 0;
    for (int i = 0; i < g->nnodes; i++) {
        int count = g_product_group(g, i, m);
        *groups += count > 1;
        for (int a = 0; a < count; a++)
            for (int b = 0; b < count; b++) {
                if (a == b) continue;
                int clash = overlaps(m[a], m[b]) || m[a]->in[0] == m[b] || m[a]->in[1] == m[b] ||
                            overlaps(m[a]->in[0], m[b]) || overlaps(m[a]->in[1], m[b]);
                if (clash) {
                    fprintf(stderr, "\n  %s: products %%%d and %%%d run at once but share memory", g->fn_name, m[a]->id,
                            m[b]->id);
                    bad++;
                }
            }
    }
    return bad;
}

/* Whether some product has two operands that need a gradient (a layer whose input comes from a
 * parameter: its dW and dX are a group); a linear model of data and detached samples has none. */
static int has_inner_layer(const g_graph *g) {
    for (int k = 0; k < g->nnodes; k++) {
        const g_node *n = g->nodes[k];
        if (n->kind == G_MATMUL && n->in[0]->needs_grad && n->in[1]->needs_grad) return 1;
    }
    return 0;
}

/* Every graph of every example (structured ones too, and the sample graph's prior_decode form)
 * sets only the outputs its purpose's row of g_purposes lists, a deployment graph its result,
 * and is named as the row says. */
static void test_graphs_keep_to_their_purpose(void) {
    const char *top = getenv("top_srcdir");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/examples", top && *top ? top : ".");
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int graphs = 0, purposes = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".vae") != 0) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        vae_unit *u = vae_unit_load(path, stderr);
        CU_ASSERT_PTR_NOT_NULL_FATAL(u);
        for (int prior_decode = 0; prior_decode < 2; prior_decode++) {
            vae_build_opts o = vae_build_defaults(u);
            o.api = 1;
            o.prior_decode = prior_decode;
            g_graph *gs[VAE_MAX_GRAPHS];
            int n = vae_build_graphs(u, &o, gs, stderr);
            CU_ASSERT(n >= 3);
            for (int i = 0; i < n; i++) {
                const g_purpose_info *info = &g_purposes[gs[i]->purpose];
                if ((g_outputs_set(&gs[i]->out) & ~info->outputs) != 0) {
                    fprintf(stderr, "\n  %s %s: outputs %#x outside %#x", e->d_name, gs[i]->fn_name,
                            g_outputs_set(&gs[i]->out), info->outputs);
                    CU_FAIL("a graph sets an output its purpose does not list");
                }
                if (info->outputs & G_OUT_API) CU_ASSERT_PTR_NOT_NULL(gs[i]->out.api_out);
                CU_ASSERT_STRING_EQUAL(gs[i]->fn_name, info->fn_name);
                purposes |= 1 << gs[i]->purpose;
                graphs++;
                g_free(gs[i]);
            }
        }
        vae_unit_free(u);
    }
    closedir(d);
    CU_ASSERT(graphs > 100);
    CU_ASSERT_EQUAL(purposes, (1 << GRAPH_PURPOSES) - 1); /* every row of the table was exercised */
}

static void test_arena_slots_of_live_tensors_disjoint(void) {
    const char *top = getenv("top_srcdir");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/examples", top && *top ? top : ".");
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int models = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".vae") != 0) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        vae_unit *u = vae_unit_load(path, stderr);
        CU_ASSERT_PTR_NOT_NULL_FATAL(u);
        if (vae_unit_model(u)->structured) { /* no graphs until codegen/structured.c builds them */
            vae_unit_free(u);
            continue;
        }
        vae_build_opts o = vae_build_defaults(u);
        o.api = 1;
        g_graph *gs[VAE_MAX_GRAPHS];
        int n = vae_build_graphs(u, &o, gs, stderr);
        CU_ASSERT(n >= 3);
        for (int i = 0; i < n; i++) {
            long total, busiest;
            int in_places;
            int groups = 0;
            CU_ASSERT_EQUAL(arena_slots_disjoint(gs[i], &total, &in_places, &busiest), 0);
            /* placed largest first (plan.c), the arena comes close to what the busiest node holds */
            /* (largest 1.025x; placing in running order, first fit, gave fashion_conv 1.32x) */
            if (gs[i]->arena_floats > busiest * 21 / 20 + 16L * gs[i]->nnodes) {
                fprintf(stderr, "\n  %s %s: arena %ld floats, but its busiest node holds %ld", e->d_name,
                        gs[i]->fn_name, gs[i]->arena_floats, busiest);
                CU_FAIL("arena well above the busiest node's floats");
            }
            CU_ASSERT_EQUAL(product_groups_independent(gs[i], &groups), 0);
            for (int k = 0; k < gs[i]->nnodes; k++) { /* ids are positions; inputs precede readers */
                CU_ASSERT_EQUAL(gs[i]->nodes[k]->id, k);
                for (int j = 0; j < gs[i]->nodes[k]->nin; j++) CU_ASSERT(gs[i]->nodes[k]->in[j]->id < k);
            }
            if (gs[i]->purpose == GRAPH_TRAIN) {
                CU_ASSERT(gs[i]->arena_floats < total); /* the backward pass reuses */
                CU_ASSERT(in_places > 0); /* relu(x W + b) at least: the activation over the biased product */
                if (has_inner_layer(gs[i])) CU_ASSERT(groups > 0); /* dW and dX of a layer at least */
            }
            g_free(gs[i]);
        }
        vae_unit_free(u);
        models++;
    }
    closedir(d);
    CU_ASSERT(models >= 10);
}

static void test_float_matches_double(void) {
    const char *text = "model fd\n"
                       "data x[12] : binary\n"
                       "latent z[3] ~ normal(0, 1)\n"
                       "encoder q(z | x) { h = softplus(dense(x, 8))\n"
                       "    return normal(mean: dense(h, 3), logvar: dense(h, 3)) }\n"
                       "decoder p(x | z) { h = tanh(dense(z, 8)) * sigmoid(dense(z, 8))\n"
                       "    return bernoulli(logits: 4 * dense(h, 12)) }\n"
                       "estimator iwae(samples: 3)\n";
    vae_unit *u = vae_unit_from_string("fd", text, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    vae_build_opts o = vae_build_defaults(u);
    o.batch = 5;
    o.eval = o.iwae = 0;
    vae_program *pf = vae_program_build(u, &o, stderr);
    o.double_precision = 1;
    vae_program *pd = vae_program_build(u, &o, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pd);
    const vr_program *rf = vae_program_runtime(pf), *rd = vae_program_runtime(pd);
    size_t P = (size_t)rf->param_floats;
    float *p32 = calloc(P, 4), *g32 = calloc(P, 4), *a32 = calloc((size_t)rf->train.arena_floats, 4), x32[60];
    double *p64 = calloc(P, 8), *g64 = calloc(P, 8), *a64 = calloc((size_t)rd->train.arena_floats, 8), x64[60];
    for (size_t i = 0; i < P; i++) p64[i] = p32[i] = (float)(3 * (vr_uniform(51, 1, i) - 0.5));
    for (int i = 0; i < 60; i++) x64[i] = x32[i] = vr_uniform(51, 2, (uint64_t)i) < 0.5;
    vr_ctx ctx = {.seed = 4, .step = 9};
    rf->train.fn(p32, g32, a32, x32, &ctx);
    ((fn64)rd->train.fn)(p64, g64, a64, x64, &ctx);
    double vf = a32[rf->train.objective], vd = a64[rd->train.objective], diff = 0, norm = 0;
    for (size_t i = 0; i < P; i++) {
        diff += (g32[i] - g64[i]) * (g32[i] - g64[i]);
        norm += g64[i] * g64[i];
    }
    printf("\n    objective: float %.7g, double %.7g; gradient relative difference %.2g", vf, vd, sqrt(diff / norm));
    CU_ASSERT(fabs(vf - vd) <= 1e-5 * fabs(vd));
    CU_ASSERT(sqrt(diff / norm) < 1e-4);
    free(p32);
    free(g32);
    free(a32);
    free(p64);
    free(g64);
    free(a64);
    vae_program_free(pf);
    vae_program_free(pd);
    vae_unit_free(u);
}

int main(void) {
    static const test_case tests[] = {
        {"Gaussian VAE", test_gaussian_vae_shapes},
        {"every activation and arithmetic form", test_every_activation_and_arithmetic},
        {"normal decoders", test_normal_decoders},
        {"two latents", test_two_latents},
        {"random models", test_random_models},
        {"analytic, categorical latents", test_analytic_categorical},
        {"analytic, bernoulli and categorical latents", test_analytic_bernoulli_and_mixed},
        {"exact", test_exact},
        {"iwae", test_iwae},
        {"gumbel-softmax", test_gumbel_relaxed},
        {"binary concrete", test_binary_concrete},
        {"convolutions", test_convolutions},
        {"convolutions against direct loops", test_convolutions_against_direct_loops},
        {"float build matches double build", test_float_matches_double},
        {"arena slots of live tensors are disjoint", test_arena_slots_of_live_tensors_disjoint},
        {"graphs keep to their purpose's outputs", test_graphs_keep_to_their_purpose},
        {NULL, NULL},
    };
    return run_suite("gradient check", tests);
}
