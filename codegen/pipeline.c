/* The shared graph pipeline (pipeline.h): the unit (a parsed and checked model), and from it
 * the graphs of every purpose a build asks for, each lowered by its builder (g_build),
 * differentiated where its purpose has a gradient (g_purposes) and planned.  The tiered JIT
 * (tiered.c) and the C printer (emit_c.c) both start from vae_build_graphs. */
#include "codegen/pipeline.h"

#include <stdlib.h>

#include "codegen/densities.h"

struct vae_unit {
    vae_source *src;
    vae_source *estimator_src; /* an estimator given apart from the file (gradvar), or NULL */
    vae_model model;
};

/* ---------------------------------------------------------------- the unit */

static vae_unit *unit_from_source(vae_source *src) {
    if (!src) return NULL;
    ast_model *ast = vae_parse(src);
    vae_unit *u = calloc(1, sizeof *u);
    if (!u) abort();
    u->src = src;
    if (!ast || vae_check(src, ast, &u->model) != 0) {
        vae_unit_free(u);
        return NULL;
    }
    return u;
}

vae_unit *vae_unit_load(const char *path, FILE *err) { return unit_from_source(vae_source_load(path, err)); }

vae_unit *vae_unit_from_string(const char *name, const char *text, FILE *err) {
    return unit_from_source(vae_source_from_string(name, text, err));
}

vae_unit *vae_unit_with_estimator(const char *path, const char *spec, FILE *err) {
    return vae_unit_with_estimator_from(path, spec, "--estimators", err);
}

vae_unit *vae_unit_with_estimator_from(const char *path, const char *spec, const char *label, FILE *err) {
    vae_source *src = vae_source_load(path, err);
    if (!src) return NULL;
    vae_source *es = vae_source_from_string(label, spec, err);
    ast_model *ast = vae_parse(src);
    ast_estimator *est = ast && es ? vae_parse_estimator(es) : NULL; /* es: NULL when the text is not UTF-8 */
    vae_unit *u = calloc(1, sizeof *u);
    if (!u) abort();
    u->src = src;
    u->estimator_src = es;
    if (es) src->also = es; /* the checker's errors in the estimator show its line */
    if (!est) {
        vae_unit_free(u);
        return NULL;
    }
    ast->estimators = est;
    if (vae_check(src, ast, &u->model) != 0) {
        vae_unit_free(u);
        return NULL;
    }
    return u;
}

void vae_unit_free(vae_unit *u) {
    if (!u) return;
    vae_source_free(u->estimator_src);
    vae_source_free(u->src);
    free(u);
}

const struct vae_model *vae_unit_model(const vae_unit *u) { return &u->model; }

const char *vae_unit_name(const vae_unit *u) { return u->model.name; }

int vae_unit_ntensors(const vae_unit *u) { return u->model.nparams; }

const char *vae_unit_tensor(const vae_unit *u, int i, int *ndims, const int **dims, long *size) {
    if (i < 0 || i >= u->model.nparams) return NULL;
    const vae_param *p = &u->model.params[i];
    if (ndims) *ndims = p->ndims;
    if (dims) *dims = p->dims;
    if (size) *size = p->size;
    return p->name;
}

vae_build_opts vae_build_defaults(const vae_unit *u) {
    vae_build_opts o = {0};
    o.batch = u->model.train.batch;
    o.eval_batch = 250;
    o.iwae_batch = 4;
    o.iwae_chunk = 250;
    o.iwae_arena_max = VAE_IWAE_ARENA_MAX;
    o.train = o.eval = o.iwae = 1;
    o.api_batch = 64;
    return o;
}

/* ---------------------------------------------------------------- one graph */

static g_graph *graph_new(const vae_model *m, g_purpose purpose, int batch, int samples) {
    g_graph *g = calloc(1, sizeof *g);
    if (!g) abort();
    g->pool = vae_pool_new();
    g->model = m;
    g->purpose = purpose;
    g->batch = batch;
    g->samples = samples;
    g->value_name = "ELBO";
    g->fn_name = g_purposes[purpose].fn_name;
    return g;
}

g_graph *g_build(const vae_model *m, g_purpose purpose, int batch, int samples, FILE *err) {
    return g_build_with(m, purpose, batch, samples, VAE_DECODER_BY_COST, err);
}

g_graph *g_build_with(const vae_model *m, g_purpose purpose, int batch, int samples, int decoder_rows, FILE *err) {
    if (!g_batch_fits(m, purpose, batch, samples, err ? err : stderr)) return NULL;
    g_graph *g = graph_new(m, purpose, batch, samples);
    g->decoder_rows = decoder_rows;
    lowering L = {.g = g, .err = err ? err : stderr};
    int rc = m->structured ? g_build_structured(&L, purpose, batch, samples) : -2;
    if (rc == -2) /* a version 0 model, or a graph whose version 0 builder serves structured models too */
        rc = g_purposes[purpose].outputs & G_OUT_API ? g_build_deployment(&L, purpose, batch)
                                                    : g_build_estimator(&L, purpose, batch, samples);
    if (rc == 0 && !L.failed && g->oversized)
        fprintf(L.err, "%s: error: internal: tensor %%%d [%d, %d] of %s passes the " VAE_MAX_VALUES_WORDS
                       " values that vaec can index\n",
                m->src->path, g->oversized->id, g->oversized->rows, g->oversized->cols, g->fn_name);
    if (rc != 0 || L.failed || g->oversized) {
        g_free(g);
        return NULL;
    }
    return g;
}

/* A graph built, differentiated if its purpose has a gradient, and planned. */
static g_graph *build_planned(const vae_model *m, const vae_build_opts *o, g_purpose purpose, int batch, int samples,
                              FILE *err) {
    g_graph *g = g_build_with(m, purpose, batch, samples, o->decoder_rows, err);
    if (!g) return NULL;
    if (g_purposes[purpose].gradient) g_differentiate(g);
    g_plan(g);
    return g;
}

/* The batch, halved until a graph of one sample per example fits (a model too wide for it). */
static int fitting_batch(const vae_model *m, g_purpose purpose, int batch) {
    while (batch > 1 && !g_batch_fits(m, purpose, batch, 1, NULL)) batch /= 2;
    return batch;
}

/* The IWAE graph, its rows (examples x samples per call) cut until its arena
 * fits o->iwae_arena_max: examples first, then samples.  The estimate does not
 * depend on the cut: the noise is keyed by example and sample, and the
 * log-sum-exp runs over the samples in order (vr_evaluate_iwae). */
static g_graph *build_iwae(const vae_model *m, const vae_build_opts *o, FILE *err) {
    int batch = o->iwae_batch, chunk = o->iwae_chunk;
    while (batch * chunk > 1 && !g_batch_fits(m, GRAPH_IWAE, batch, chunk, NULL)) { /* a model too wide for the rows */
        if (batch > 1) batch /= 2;
        else chunk /= 2;
    }
    for (;;) {
        g_graph *g = build_planned(m, o, GRAPH_IWAE, batch, chunk, err);
        if (!g) return NULL;
        if (o->iwae_arena_max <= 0 || g->arena_floats <= o->iwae_arena_max || batch * chunk == 1) return g;
        /* the arena grows about as the rows: aim at the bound, at least halving */
        long rows = (long)((double)batch * chunk * o->iwae_arena_max / g->arena_floats);
        if (rows > (long)batch * chunk / 2) rows = (long)batch * chunk / 2;
        if (rows < 1) rows = 1;
        if (batch > 1 && rows >= chunk) batch = (int)(rows / chunk);
        else { /* rows <= batch * chunk / 2 < chunk once batch is 1 */
            batch = 1;
            chunk = (int)rows;
        }
        g_free(g);
    }
}

/* ---------------------------------------------------------------- the graphs of a build */

int vae_build_graphs(const vae_unit *u, const vae_build_opts *o, g_graph **gs, FILE *err) {
    int n = 0;
    const vae_model *m = &u->model;
    if (o->train && !(gs[n++] = build_planned(m, o, GRAPH_TRAIN, o->batch, m->est.samples, err))) goto fail;
    if (o->eval && !(gs[n++] = build_planned(m, o, GRAPH_EVAL, fitting_batch(m, GRAPH_EVAL, o->eval_batch), 1, err)))
        goto fail;
    if (o->iwae && !(gs[n++] = build_iwae(m, o, err))) goto fail;
    if (o->api) {
        g_purpose api[] = {GRAPH_ENCODE, GRAPH_DECODE, o->prior_decode ? GRAPH_PRIOR_DECODE : GRAPH_SAMPLE};
        for (int i = 0; i < 3; i++) {
            if (api[i] == GRAPH_ENCODE && !g_posterior_width(m)) continue; /* a latent without encoder */
            if (!(gs[n++] = build_planned(m, o, api[i], fitting_batch(m, api[i], o->api_batch), 1, err))) goto fail;
        }
    }
    return n;
fail: /* gs[n - 1] is the NULL of the graph that failed */
    while (n) g_free(gs[--n]);
    return 0;
}

int vae_dump_graphs(const vae_unit *u, const vae_build_opts *o, FILE *out, FILE *err) {
    g_graph *gs[VAE_MAX_GRAPHS];
    int n = vae_build_graphs(u, o, gs, err);
    if (!n) return -1;
    for (int i = 0; i < n; i++) {
        g_dump(out, gs[i]);
        g_free(gs[i]);
    }
    return 0;
}
