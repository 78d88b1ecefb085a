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
 * it under a caret; `text` is the item alone, for the table.  `unit` is the model
 * with that estimator; `from[t]` is where its tensor t lies in the checkpoint's
 * values, or -1 where the checkpoint lacks it and it starts at its initial value. */
typedef struct {
    char *source, *text;
    vae_unit *unit;
    long *from;
} spec;

enum { MAX_SPECS = 16 };

static void spec_free(spec *s) {
    free(s->source);
    free(s->text);
    vae_unit_free(s->unit);
    free(s->from);
}

static void specs_free(spec *s, int n) {
    for (int i = 0; i < n; i++) spec_free(&s[i]);
}

static void spec_take(spec *out, const char *list, size_t begin, size_t end) {
    size_t n = strlen(list);
    *out = (spec){malloc(n + 1), malloc(end - begin + 1), NULL, NULL};
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

/* ---------------------------------------------------------------- the checkpoint, by name */

/* What a checkpoint may lack: the tensors an estimator brings, that is its control
 * (relax's network, rebar's eta and temperature), its baseline network and nvil's
 * running statistics.  The encoder, the decoder and the prior are the model itself. */
static int estimator_owned(const vae_param *p) {
    return p->state || p->owner == NET_CONTROL || p->owner == NET_BASELINE;
}

/* Whether m's estimator reads tensor p of estimator_owned's kind: its own (no network's:
 * rebar's, nvil's), or those of the control or baseline network it names; another
 * network's (relax's control under disarm) is left out of the note. */
static int estimator_reads(const vae_model *m, const vae_param *p) {
    if (!p->net || p->net == m->est.control || p->net == m->est.baseline) return 1;
    for (int i = 0; i < m->nlatents; i++)
        if (p->net == m->latents[i].est.baseline) return 1;
    return 0;
}

/* Fills sp->from from the checkpoint's table (by name; the shape must agree); 0, or -1
 * with the error printed: a tensor of another shape, or one of the model's own missing. */
static int match_tensors(spec *sp, const vr_checkpoint_contents *ck, const char *path) {
    const vae_model *m = vae_unit_model(sp->unit);
    sp->from = malloc(sizeof(long) * (size_t)(m->nparams ? m->nparams : 1));
    if (!sp->from) abort();
    for (int t = 0; t < m->nparams; t++) {
        const vae_param *p = &m->params[t];
        vr_tensor_info info = {p->name, p->ndims, {0}, p->size};
        memcpy(info.dims, p->dims, sizeof info.dims);
        char err[512];
        sp->from[t] = vr_checkpoint_find(ck, &info, err, sizeof err);
        if (sp->from[t] == -2) {
            fprintf(stderr, "vaec gradvar: error: %s: %s (the model with estimator '%s')\n", path, err, sp->text);
            return -1;
        }
        if (sp->from[t] == -1 && !estimator_owned(p)) {
            fprintf(stderr, "vaec gradvar: error: %s: has no tensor '%s', which the model with estimator '%s' has "
                    "(only an estimator's control, baseline and running statistics may be missing)\n",
                    path, p->name, sp->text);
            return -1;
        }
    }
    return 0;
}

/* Says which of an estimator's tensors the checkpoint lacks: they are measured at the
 * values training starts them from, not trained ones. */
static void note_fresh(const spec *sp, uint64_t seed) {
    const vae_model *m = vae_unit_model(sp->unit);
    int n = 0;
    for (int t = 0; t < m->nparams; t++)
        if (sp->from[t] < 0 && estimator_reads(m, &m->params[t]))
            printf("%s%s", n++ ? ", " : "note: ", m->params[t].name);
    if (n)
        printf(" (%s): not in the checkpoint, so measured at %s initial value%s (seed %llu, as training starts), "
               "untrained\n", sp->text, n > 1 ? "their" : "its", n > 1 ? "s" : "", (unsigned long long)seed);
}

/* Every estimator is checked, and its tensors found in the checkpoint, before any work
 * starts, so that a typo in the last one does not cost the minutes the first ones take. */
static int prepare_specs(const gradvar_options *o, spec *specs, int n, vr_checkpoint_contents *ck) {
    for (int e = 0; e < n; e++)
        if (!(specs[e].unit = vae_unit_with_estimator(o->model, specs[e].source, stderr))) return -1;
    char err[1024];
    if (vr_checkpoint_read(o->params, ck, err, sizeof err)) {
        fprintf(stderr, "vaec gradvar: error: %s\n", err);
        return -1;
    }
    for (int e = 0; e < n; e++)
        if (match_tensors(&specs[e], ck, o->params)) return -1;
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

/* ---------------------------------------------------------------- one estimator's gradient */

/* What the draws share: the model as written (its encoder's coordinates are the ones
 * compared), the checkpoint, the batch and the analytic gradient (NULL: none). */
typedef struct {
    const gradvar_options *o;
    const vae_model *base;
    const vr_checkpoint_contents *ck;
    const float *x;
    const double *truth;
    int batch;
    long ncoords;
} run;

/* An estimator's compiled training step at its parameters, and where in them the
 * encoder's coordinates are. */
typedef struct {
    vae_program *prog;
    const vr_program *rt;
    float *params, *g, *arena;
    long *index; /* ncoords: coordinate k of the encoder is params[index[k]] */
} bench;

static void bench_free(bench *b) {
    vae_program_free(b->prog);
    free(b->params);
    free(b->g);
    free(b->arena);
    free(b->index);
}

/* The model's encoder tensors by name in the estimator's model; 0, or -1 (printed). */
static int encoder_index(const run *r, const vae_model *m, const char *what, long *index) {
    long k = 0;
    for (int t = 0; t < r->base->nparams; t++) {
        const vae_param *p = &r->base->params[t];
        if (p->owner != NET_ENCODER) continue;
        int u = 0;
        while (u < m->nparams && strcmp(m->params[u].name, p->name) != 0) u++;
        if (u == m->nparams || m->params[u].size != p->size) {
            fprintf(stderr, "vaec gradvar: error: estimator '%s' changes the encoder's tensor '%s'\n", what, p->name);
            return -1;
        }
        for (long i = 0; i < p->size; i++) index[k++] = m->params[u].offset + i;
    }
    return 0;
}

/* Compiles the model of `u` and sets its parameters: the initial values training
 * starts from (vr_init_params, the run's seed; zeros for running statistics), then
 * every tensor the checkpoint has, by name (from).  0, or -1 with the error printed. */
static int bench_setup(const run *r, const vae_unit *u, const long *from, const char *what, bench *b) {
    memset(b, 0, sizeof *b);
    vae_build_opts bo = vae_build_defaults(u);
    bo.batch = r->batch;
    bo.eval = bo.iwae = 0;
    if (!(b->prog = vae_program_build(u, &bo, stderr))) return -1;
    b->rt = vae_program_runtime(b->prog);
    const vae_model *m = vae_unit_model(u);
    size_t P = (size_t)b->rt->param_floats;
    b->params = calloc(P ? P : 1, sizeof(float));
    b->g = calloc(P ? P : 1, sizeof(float));
    b->arena = calloc((size_t)b->rt->train.arena_floats, sizeof(float));
    b->index = malloc(sizeof(long) * (size_t)r->ncoords);
    if (!b->params || !b->g || !b->arena || !b->index) abort();
    vr_init_params(b->rt, b->params, r->o->seed);
    for (int t = 0; t < m->nparams; t++)
        if (from[t] >= 0)
            memcpy(b->params + m->params[t].offset, r->ck->params + from[t], sizeof(float) * (size_t)m->params[t].size);
    return encoder_index(r, m, what, b->index);
}

/* One draw of the gradient (draw `step`: its noise) into b->g. */
static void bench_draw(const run *r, bench *b, uint64_t step) {
    vr_ctx ctx = {.seed = r->o->seed, .step = step, .example0 = 0, .sample0 = 0};
    b->rt->train.fn(b->params, b->g, b->arena, (void *)r->x, &ctx);
}

/* The analytic gradient's encoder coordinates at the checkpoint's parameters (no
 * noise), or NULL with the error printed. */
static double *analytic_gradient(const run *r) {
    spec an = {NULL, NULL, vae_unit_with_estimator(r->o->model, "analytic", stderr), NULL};
    double *truth = NULL;
    bench b = {0};
    if (an.unit && !match_tensors(&an, r->ck, r->o->params) && !bench_setup(r, an.unit, an.from, "analytic", &b)) {
        bench_draw(r, &b, 1);
        truth = malloc(sizeof(double) * (size_t)r->ncoords);
        if (!truth) abort();
        for (long k = 0; k < r->ncoords; k++) truth[k] = b.g[b.index[k]];
    }
    bench_free(&b);
    spec_free(&an);
    return truth;
}

/* What `repeats` draws of one estimator's encoder gradient give. */
typedef struct {
    double variance, mean_dist2, bias2, ms;
} spread;

/* Draws the gradient `repeats` times (Welford's running mean and sum of squares
 * per coordinate); 0, or -1 with the error printed. */
static int draw_gradients(const run *r, const spec *sp, spread *out) {
    bench b;
    if (bench_setup(r, sp->unit, sp->from, sp->text, &b)) {
        bench_free(&b);
        return -1;
    }
    long K = r->ncoords;
    int R = r->o->repeats;
    double *mean = calloc((size_t)K, sizeof(double)), *m2 = calloc((size_t)K, sizeof(double));
    if (!mean || !m2) abort();
    double dist = 0, t0 = now();
    for (int d = 0; d < R; d++) {
        bench_draw(r, &b, (uint64_t)d + 1);
        for (long k = 0; k < K; k++) {
            double gk = b.g[b.index[k]], delta = gk - mean[k];
            mean[k] += delta / (d + 1);
            m2[k] += delta * (gk - mean[k]);
            if (r->truth) dist += (gk - r->truth[k]) * (gk - r->truth[k]);
        }
    }
    *out = (spread){0, dist / R, 0, 1e3 * (now() - t0) / R};
    for (long k = 0; k < K; k++) {
        out->variance += R > 1 ? m2[k] / (R - 1) : 0;
        if (r->truth) out->bias2 += (mean[k] - r->truth[k]) * (mean[k] - r->truth[k]);
    }
    free(mean);
    free(m2);
    bench_free(&b);
    return 0;
}

/* ---------------------------------------------------------------- the table */

static long encoder_coords(const vae_model *m) {
    long n = 0;
    for (int t = 0; t < m->nparams; t++)
        if (m->params[t].owner == NET_ENCODER) n += m->params[t].size;
    return n;
}

/* The estimator column fits the longest name written. */
static int name_width(const spec *specs, int nspecs) {
    int w = 40;
    for (int e = 0; e < nspecs; e++) w = (int)strlen(specs[e].text) > w ? (int)strlen(specs[e].text) : w;
    return w;
}

static void print_head(const run *r, const spec *specs, int nspecs, const char *source) {
    printf("gradient of the encoder's %ld parameters, %d repeats on one batch of %d from %s%s\n", r->ncoords,
           r->o->repeats, r->batch, source, r->base->binary_dynamic ? " (binarised by one fixed draw, as evaluation)" : "");
    for (int e = 0; e < nspecs; e++) note_fresh(&specs[e], r->o->seed);
    printf("%-*s %14s %16s %18s %10s\n", name_width(specs, nspecs), "estimator", "variance", "E|g - analytic|^2", "|mean-analytic|^2", "ms/draw");
    fflush(stdout);
}

static int measure_all(const gradvar_options *o, const vae_model *bm, spec *specs, int nspecs) {
    vr_checkpoint_contents ck = {0};
    run r = {o, bm, &ck, NULL, NULL, o->batch ? o->batch : bm->train.batch, encoder_coords(bm)};
    const char *source = NULL;
    float *x = NULL;
    double *truth = NULL;
    int rc = 1;
    if (r.ncoords == 0) {
        fprintf(stderr, "vaec gradvar: error: %s has no encoder, so there is no encoder gradient to compare\n", o->model);
        goto out;
    }
    if (prepare_specs(o, specs, nspecs, &ck) || !(x = load_batch(bm, o, r.batch, &source))) goto out;
    r.x = x;
    if (g_model_enumerable(bm) && !(truth = analytic_gradient(&r))) goto out;
    r.truth = truth;
    print_head(&r, specs, nspecs, source);
    int w = name_width(specs, nspecs);
    for (int e = 0; e < nspecs; e++) {
        spread s;
        if (draw_gradients(&r, &specs[e], &s)) goto out;
        if (truth)
            printf("%-*s %14.6g %16.6g %18.6g %10.2f\n", w, specs[e].text, s.variance, s.mean_dist2, s.bias2, s.ms);
        else
            printf("%-*s %14.6g %16s %18s %10.2f\n", w, specs[e].text, s.variance, "-", "-", s.ms);
        fflush(stdout);
    }
    rc = 0;
out:
    free(x);
    free(truth);
    vr_checkpoint_contents_free(&ck);
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
    /* the model as written names the encoder's tensors and the data; its estimator is the default */
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
