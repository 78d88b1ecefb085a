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
#include "codegen/labels.h"
#include "parser/model.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One item of --estimators.  `source` is the whole list with every other item
 * blanked, so that an error in the item names its column in the list and shows
 * it under a caret; `text` is the item alone, for the table. */
typedef struct {
    char *source, *text;
} spec;

enum { MAX_SPECS = 16 };

static void specs_free(spec *s, int n) {
    for (int i = 0; i < n; i++) {
        free(s[i].source);
        free(s[i].text);
    }
}

static void spec_take(spec *out, const char *list, size_t begin, size_t end) {
    size_t n = strlen(list);
    out->source = malloc(n + 1);
    out->text = malloc(end - begin + 1);
    if (!out->source || !out->text) abort();
    for (size_t i = 0; i < n; i++) out->source[i] = i >= begin && i < end ? list[i] : ' ';
    out->source[n] = 0;
    memcpy(out->text, list + begin, end - begin);
    out->text[end - begin] = 0;
}

/* Splits "a(x: 1, y: 2),b" at the commas outside parentheses; empty items are
 * skipped.  The number of items, or -1 when there are more than `max`. */
static int split_specs(const char *list, spec *out, int max) {
    int n = 0, depth = 0;
    size_t begin = 0;
    for (size_t i = 0;; i++) {
        char ch = list[i];
        if (ch == 0 || (ch == ',' && depth == 0)) {
            size_t b = begin, e = i;
            while (b < e && (list[b] == ' ' || list[b] == '\t')) b++;
            while (e > b && (list[e - 1] == ' ' || list[e - 1] == '\t')) e--;
            if (e > b) {
                if (n == max) {
                    specs_free(out, n);
                    return -1;
                }
                spec_take(&out[n++], list, b, e);
            }
            begin = i + 1;
            if (!ch) break;
            continue;
        }
        if (ch == '(') depth++;
        if (ch == ')') depth--;
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

static int load_params(const vae_model *m, const char *path, float *params) {
    char err[1024];
    vr_tensor_info t[VAE_MAX_PARAMS];
    for (int i = 0; i < m->nparams; i++) {
        t[i].name = m->params[i].name;
        t[i].ndims = m->params[i].ndims;
        memcpy(t[i].dims, m->params[i].dims, sizeof t[i].dims);
        t[i].size = m->params[i].size;
    }
    if (vr_checkpoint_load(path, t, m->nparams, params, NULL, NULL, NULL, err, sizeof err)) {
        fprintf(stderr, "vaec gradvar: error: %s\n", err);
        return -1;
    }
    return 0;
}

/* The fixed batch: the first `batch` examples of the data; binary(dynamic) data as evaluation
 * reads it, one fixed draw keyed on --seed (a batch thresholded at half the range would be
 * data the model never trains or is evaluated on). */
static float *load_batch(const vae_model *m, const gradvar_options *o, int batch, const char **source) {
    char err[1024];
    vr_dataset ds = {0};
    *source = o->data ? o->data : m->train.data;
    if (!*source) {
        fprintf(stderr, "vaec gradvar: error: no data: pass --data or set data in the train block\n");
        return NULL;
    }
    if (vr_data_load(&ds, *source, o->data_dir, m->data_dim, vr_data_mode(m->binary, m->binary_dynamic), err,
                     sizeof err)) {
        fprintf(stderr, "vaec gradvar: error: %s\n", err);
        return NULL;
    }
    if (ds.n < batch) {
        fprintf(stderr, "vaec gradvar: error: %s has %d examples, fewer than the batch of %d\n", *source, ds.n, batch);
        vr_data_free(&ds);
        return NULL;
    }
    /* the whole data block; a label's columns stay zero: hidden, as an unlabelled batch */
    float *x = calloc((size_t)vr_data_floats(batch, m->data_dim, vae_label_states(m)), sizeof(float));
    int *idx = malloc(sizeof(int) * (size_t)batch);
    if (!x || !idx) abort();
    for (int i = 0; i < batch; i++) idx[i] = i;
    if (m->binary_dynamic)
        vr_data_gather_drawn_f32(&ds, idx, batch, x, o->seed, VR_DRAW_EVAL);
    else
        vr_data_gather_f32(&ds, idx, batch, x);
    free(idx);
    vr_data_free(&ds);
    return x;
}

/* The analytic gradient at `params` (no noise), or NULL when it cannot be built. */
static double *analytic_gradient(const char *model, int batch, const float *params, const float *x, size_t P,
                                 uint64_t seed) {
    built ref;
    if (build(model, "analytic", batch, &ref)) return NULL;
    const vr_program *rt = vae_program_runtime(ref.prog);
    float *g = calloc(P, sizeof(float)), *arena = calloc((size_t)rt->train.arena_floats, sizeof(float));
    double *truth = calloc(P, sizeof(double));
    if (!g || !arena || !truth) abort();
    vr_ctx ctx = {.seed = seed, .step = 1, .example0 = 0, .sample0 = 0};
    rt->train.fn((void *)params, g, arena, x, &ctx);
    for (size_t i = 0; i < P; i++) truth[i] = g[i];
    free(g);
    free(arena);
    release(&ref);
    return truth;
}

/* What `repeats` draws of one estimator's encoder gradient give. */
typedef struct {
    double variance, mean_dist2, bias2, ms;
} spread;

/* Draws the gradient `repeats` times (Welford's running mean and sum of squares
 * per coordinate); 0, or -1 with the error printed. */
static int draw_gradients(const gradvar_options *o, const spec *sp, int batch, const float *params, const float *x,
                          const char *mask, const double *truth, size_t P, spread *out) {
    built b;
    if (build(o->model, sp->source, batch, &b)) return -1;
    const vr_program *rt = vae_program_runtime(b.prog);
    if ((size_t)rt->param_floats != P) {
        fprintf(stderr, "vaec gradvar: error: estimator '%s' changes the model's parameters\n", sp->text);
        release(&b);
        return -1;
    }
    float *g = calloc(P, sizeof(float)), *arena = calloc((size_t)rt->train.arena_floats, sizeof(float));
    double *mean = calloc(P, sizeof(double)), *m2 = calloc(P, sizeof(double));
    if (!g || !arena || !mean || !m2) abort();
    double dist = 0, t0 = now();
    for (int r = 0; r < o->repeats; r++) {
        vr_ctx ctx = {.seed = o->seed, .step = (uint64_t)r + 1, .example0 = 0, .sample0 = 0};
        rt->train.fn((void *)params, g, arena, x, &ctx);
        for (size_t i = 0; i < P; i++) {
            if (!mask[i]) continue;
            double delta = g[i] - mean[i];
            mean[i] += delta / (r + 1);
            m2[i] += delta * (g[i] - mean[i]);
            if (truth) dist += (g[i] - truth[i]) * (g[i] - truth[i]);
        }
    }
    *out = (spread){0, dist / o->repeats, 0, 1e3 * (now() - t0) / o->repeats};
    for (size_t i = 0; i < P; i++)
        if (mask[i]) {
            out->variance += o->repeats > 1 ? m2[i] / (o->repeats - 1) : 0;
            if (truth) out->bias2 += (mean[i] - truth[i]) * (mean[i] - truth[i]);
        }
    free(g);
    free(arena);
    free(mean);
    free(m2);
    release(&b);
    return 0;
}

/* Every estimator is checked before any work starts, so that a typo in the
 * last one does not cost the minutes the first ones take. */
static int check_specs(const char *model, const spec *specs, int n) {
    for (int e = 0; e < n; e++) {
        vae_unit *u = vae_unit_with_estimator(model, specs[e].source, stderr);
        if (!u) return -1;
        vae_unit_free(u);
    }
    return 0;
}

static int measure_all(const gradvar_options *o, const vae_model *bm, const spec *specs, int nspecs) {
    int batch = o->batch ? o->batch : bm->train.batch;
    size_t P = (size_t)bm->param_floats;
    float *params = calloc(P ? P : 1, sizeof(float)), *x = NULL;
    char *mask = malloc(P ? P : 1);
    double *truth = NULL;
    if (!params || !mask) abort();
    long ncoords = encoder_mask(bm, mask);
    const char *source = NULL;
    int rc = 1;
    if (ncoords == 0) {
        fprintf(stderr, "vaec gradvar: error: %s has no encoder, so there is no encoder gradient to compare\n", o->model);
        goto out;
    }
    if (check_specs(o->model, specs, nspecs)) goto out;
    if (load_params(bm, o->params, params) || !(x = load_batch(bm, o, batch, &source))) goto out;
    if (g_model_enumerable(bm) && !(truth = analytic_gradient(o->model, batch, params, x, P, o->seed))) goto out;
    printf("gradient of the encoder's %ld parameters, %d repeats on one batch of %d from %s%s\n", ncoords, o->repeats,
           batch, source, bm->binary_dynamic ? " (binarised by one fixed draw, as evaluation)" : "");
    int w = 40; /* the estimator column fits the longest name written */
    for (int e = 0; e < nspecs; e++) w = (int)strlen(specs[e].text) > w ? (int)strlen(specs[e].text) : w;
    printf("%-*s %14s %16s %18s %10s\n", w, "estimator", "variance", "E|g - analytic|^2", "|mean-analytic|^2", "ms/draw");
    for (int e = 0; e < nspecs; e++) {
        spread s;
        if (draw_gradients(o, &specs[e], batch, params, x, mask, truth, P, &s)) goto out;
        if (truth)
            printf("%-*s %14.6g %16.6g %18.6g %10.2f\n", w, specs[e].text, s.variance, s.mean_dist2, s.bias2, s.ms);
        else
            printf("%-*s %14.6g %16s %18s %10.2f\n", w, specs[e].text, s.variance, "-", "-", s.ms);
        fflush(stdout);
    }
    rc = 0;
out:
    free(params);
    free(x);
    free(truth);
    free(mask);
    return rc;
}

/* The model's estimator as its file writes it ("reinforce(samples: 10, baseline: b)"),
 * from its name to the end of its line outside parentheses: the default of
 * --estimators measures what the model trains with, options included. */
static char *estimator_as_written(const vae_model *m) {
    const char *p = m->src->text, *end = m->src->text + m->src->len;
    for (int line = 1; line < m->est.loc.line && p < end; p++)
        if (*p == '\n') line++;
    p += m->est.loc.col - 1 < end - p ? m->est.loc.col - 1 : end - p;
    const char *q = p;
    for (int depth = 0; q < end && (depth > 0 || (*q != '\n' && *q != '#')); q++)
        depth += *q == '(' ? 1 : *q == ')' ? -1 : 0;
    char *text = malloc((size_t)(q - p) + 1);
    if (!text) abort();
    size_t n = 0;
    for (const char *c = p; c < q; c++) text[n++] = *c == '\n' || *c == '\r' ? ' ' : *c;
    text[n] = 0;
    return text;
}

int vaec_gradvar(const gradvar_options *o) {
    vr_flush_denormals(); /* as training does: the same numbers, and no denormal slow paths */
    /* the model as written gives the layout; its estimator is the default */
    vae_unit *base = vae_unit_load(o->model, stderr);
    if (!base) return 1;
    const vae_model *bm = vae_unit_model(base);
    spec specs[MAX_SPECS];
    char *own = o->estimators ? NULL : estimator_as_written(bm);
    int nspecs = split_specs(o->estimators ? o->estimators : own, specs, MAX_SPECS);
    free(own);
    if (nspecs <= 0) {
        fprintf(stderr, "vaec gradvar: error: --estimators: expected a comma-separated list of 1 to %d estimators\n",
                MAX_SPECS);
        vae_unit_free(base);
        return 1;
    }
    int rc = measure_all(o, bm, specs, nspecs);
    specs_free(specs, nspecs);
    vae_unit_free(base);
    return rc;
}
