/* A model's training step compiled in double precision, called directly: the fixture of the
 * tests that compare gradient estimates against exact gradients (test_discrete.c, test_zoo.c). */
#ifndef VAE_STEP_PROGRAM_H
#define VAE_STEP_PROGRAM_H

#include "parser/model.h"
#include "tests/testutil.h"
#include "vae/compiler.h"

typedef void (*step_fn64)(double *params, double *grads, double *arena, const double *data, const vr_ctx *ctx);

typedef struct {
    vae_unit *u;
    vae_program *prog;
    const vr_program *rt;
    const vae_model *m;
    step_fn64 step;
    double *grads, *arena;
} step_program;

/* decoder_rows: vae_build_opts.decoder_rows (VAE_DECODER_BY_COST, or one way forced) */
static inline step_program step_program_build_with(const char *text, int batch, int decoder_rows) {
    step_program d = {0};
    d.u = vae_unit_from_string("t.vae", text, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d.u);
    d.m = vae_unit_model(d.u);
    vae_build_opts o = vae_build_defaults(d.u);
    o.batch = batch;
    o.eval = o.iwae = 0;
    o.double_precision = 1;
    o.decoder_rows = decoder_rows;
    d.prog = vae_program_build(d.u, &o, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d.prog);
    d.rt = vae_program_runtime(d.prog);
    d.step = (step_fn64)vae_program_function(d.prog, "vae_train_step");
    d.grads = calloc((size_t)d.rt->param_floats, sizeof(double));
    d.arena = calloc((size_t)d.rt->train.arena_floats, sizeof(double));
    return d;
}

static inline step_program step_program_build(const char *text, int batch) {
    return step_program_build_with(text, batch, VAE_DECODER_BY_COST);
}

static inline void step_program_free(step_program *d) {
    free(d->grads);
    free(d->arena);
    vae_program_free(d->prog);
    vae_unit_free(d->u);
}

/* One step at (seed, step): the gradient estimate lands in d->grads. */
static inline void step_program_run(step_program *d, double *params, const double *x, uint64_t seed, uint64_t step) {
    vr_ctx ctx = {.seed = seed, .step = step, .example0 = 0, .sample0 = 0};
    d->step(params, d->grads, d->arena, x, &ctx);
}

#endif
