/* vaec gradvar: the cost of noise as a number.  At fixed parameters and on
 * one fixed batch, each estimator's encoder gradient is drawn R times (fresh
 * noise each time); the table gives the total variance (the trace of the
 * covariance) and, where the latents can be enumerated, the mean squared
 * distance to the analytic gradient and the squared bias of the mean. */
#include "src/gradvar.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/graph.h"
#include "parser/model.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Splits "a(x: 1, y: 2),b" at the commas outside parentheses. */
static int split_specs(const char *list, char specs[][256], int max) {
    int n = 0, depth = 0;
    size_t len = 0;
    for (const char *p = list;; p++) {
        if (*p == 0 || (*p == ',' && depth == 0)) {
            if (n == max) return -1;
            while (len && specs[n][len - 1] == ' ') len--;
            specs[n][len] = 0;
            if (len) n++;
            len = 0;
            if (!*p) break;
            continue;
        }
        if (*p == '(') depth++;
        if (*p == ')') depth--;
        if (len == 0 && *p == ' ') continue;
        if (len + 1 < 256) specs[n][len++] = *p;
    }
    return n;
}

typedef struct {
    vae_unit *unit;
    vae_program *prog;
} built;

static int build(const char *model, const char *spec, int batch, built *out) {
    out->unit = spec ? vae_unit_with_estimator(model, spec, stderr) : vae_unit_load(model, stderr);
    if (!out->unit) return -1;
    vae_build_opts o = vae_build_defaults(out->unit);
    o.batch = batch;
    o.eval = o.iwae = 0;
    out->prog = vae_program_build(out->unit, &o, stderr);
    if (!out->prog) {
        vae_unit_free(out->unit);
        return -1;
    }
    return 0;
}

static void release(built *b) {
    vae_program_free(b->prog);
    vae_unit_free(b->unit);
}

/* Encoder coordinates of the parameter buffer, as a list of [offset, size). */
static long encoder_mask(const vae_model *m, char *mask) {
    long n = 0;
    memset(mask, 0, (size_t)m->param_floats);
    for (int t = 0; t < m->nparams; t++)
        if (m->params[t].owner == NET_ENCODER) {
            memset(mask + m->params[t].offset, 1, (size_t)m->params[t].size);
            n += m->params[t].size;
        }
    return n;
}

int vaec_gradvar(const gradvar_options *o) {
    vr_flush_denormals(); /* as training does: the same numbers, and no denormal slow paths */
    char specs[16][256];
    int nspecs = 0;
    built ref = {0};
    const char *default_list = NULL;
    /* the model as written gives the layout; its estimator is the default */
    vae_unit *base = vae_unit_load(o->model, stderr);
    if (!base) return 1;
    const vae_model *bm = vae_unit_model(base);
    int enumerable = g_model_enumerable(bm);
    char own[256];
    if (!o->estimators) {
        snprintf(own, sizeof own, "%s", vae_estimator_name(bm->est.kind));
        default_list = own;
    }
    nspecs = split_specs(o->estimators ? o->estimators : default_list, specs, 16);
    if (nspecs <= 0) {
        fprintf(stderr, "vaec gradvar: error: --estimators: expected a comma-separated list of at most 16 estimators\n");
        vae_unit_free(base);
        return 1;
    }
    int batch = o->batch ? o->batch : bm->train.batch;
    size_t P = (size_t)bm->param_floats;
    float *params = calloc(P, sizeof(float)), *x = NULL;
    double *truth = NULL, *mean = calloc(P, sizeof(double)), *m2 = calloc(P, sizeof(double));
    char *mask = malloc(P ? P : 1);
    long ncoords = encoder_mask(bm, mask);
    int rc = 1;
    char err[1024];
    vr_dataset ds = {0};
    if (ncoords == 0) {
        fprintf(stderr, "vaec gradvar: error: %s has no encoder, so there is no encoder gradient to compare\n", o->model);
        goto out;
    }
    {
        vr_tensor_info t[VAE_MAX_PARAMS];
        for (int i = 0; i < bm->nparams; i++) {
            t[i].name = bm->params[i].name;
            t[i].ndims = bm->params[i].ndims;
            memcpy(t[i].dims, bm->params[i].dims, sizeof t[i].dims);
            t[i].size = bm->params[i].size;
        }
        if (vr_checkpoint_load(o->params, t, bm->nparams, params, NULL, NULL, NULL, err, sizeof err)) {
            fprintf(stderr, "vaec gradvar: error: %s\n", err);
            goto out;
        }
    }
    const char *source = o->data ? o->data : bm->train.data;
    if (!source) {
        fprintf(stderr, "vaec gradvar: error: no data: pass --data or set data in the train block\n");
        goto out;
    }
    if (vr_data_load(&ds, source, o->data_dir, bm->data_dim, bm->binary, err, sizeof err)) {
        fprintf(stderr, "vaec gradvar: error: %s\n", err);
        goto out;
    }
    if (ds.n < batch) {
        fprintf(stderr, "vaec gradvar: error: %s has %d examples, fewer than the batch of %d\n", source, ds.n, batch);
        goto out;
    }
    x = calloc((size_t)batch * (size_t)bm->data_dim, sizeof(float));
    {
        int *idx = malloc(sizeof(int) * (size_t)batch);
        for (int i = 0; i < batch; i++) idx[i] = i;
        vr_data_gather_f32(&ds, idx, batch, x);
        free(idx);
    }
    if (enumerable) { /* the reference: the analytic gradient, no noise */
        if (build(o->model, "analytic", batch, &ref)) goto out;
        const vr_program *rt = vae_program_runtime(ref.prog);
        float *g = calloc(P, sizeof(float)), *arena = calloc((size_t)rt->train.arena_floats, sizeof(float));
        vr_ctx ctx = {.seed = o->seed, .step = 1, .example0 = 0, .sample0 = 0};
        rt->train.fn(params, g, arena, x, &ctx);
        truth = calloc(P, sizeof(double));
        for (size_t i = 0; i < P; i++) truth[i] = g[i];
        free(g);
        free(arena);
    }
    for (int e = 0; e < nspecs; e++) { /* every estimator checks before any work starts */
        vae_unit *u = vae_unit_with_estimator(o->model, specs[e], stderr);
        if (!u) goto out;
        vae_unit_free(u);
    }
    printf("gradient of the encoder's %ld parameters, %d repeats on one batch of %d from %s\n", ncoords, o->repeats,
           batch, source);
    printf("%-40s %14s %16s %18s %10s\n", "estimator", "variance", "E|g - analytic|^2", "|mean-analytic|^2", "ms/draw");
    for (int e = 0; e < nspecs; e++) {
        built b;
        if (build(o->model, specs[e], batch, &b)) goto out;
        const vr_program *rt = vae_program_runtime(b.prog);
        if ((size_t)rt->param_floats != P) {
            fprintf(stderr, "vaec gradvar: error: estimator '%s' changes the model's parameters\n", specs[e]);
            release(&b);
            goto out;
        }
        float *g = calloc(P, sizeof(float)), *arena = calloc((size_t)rt->train.arena_floats, sizeof(float));
        memset(mean, 0, P * sizeof(double));
        memset(m2, 0, P * sizeof(double));
        double dist = 0, t0 = now();
        for (int r = 0; r < o->repeats; r++) {
            vr_ctx ctx = {.seed = o->seed, .step = (uint64_t)r + 1, .example0 = 0, .sample0 = 0};
            rt->train.fn(params, g, arena, x, &ctx);
            double d2 = 0;
            for (size_t i = 0; i < P; i++) {
                if (!mask[i]) continue;
                double delta = g[i] - mean[i];
                mean[i] += delta / (r + 1);
                m2[i] += delta * (g[i] - mean[i]);
                if (truth) d2 += (g[i] - truth[i]) * (g[i] - truth[i]);
            }
            dist += d2;
        }
        double ms = 1e3 * (now() - t0) / o->repeats, var = 0, bias = 0;
        for (size_t i = 0; i < P; i++)
            if (mask[i]) {
                var += o->repeats > 1 ? m2[i] / (o->repeats - 1) : 0;
                if (truth) bias += (mean[i] - truth[i]) * (mean[i] - truth[i]);
            }
        if (truth)
            printf("%-40s %14.6g %16.6g %18.6g %10.2f\n", specs[e], var, dist / o->repeats, bias, ms);
        else
            printf("%-40s %14.6g %16s %18s %10.2f\n", specs[e], var, "-", "-", ms);
        fflush(stdout);
        free(g);
        free(arena);
        release(&b);
    }
    rc = 0;
out:
    if (ref.prog) release(&ref);
    vr_data_free(&ds);
    free(params);
    free(x);
    free(truth);
    free(mean);
    free(m2);
    free(mask);
    vae_unit_free(base);
    return rc;
}
