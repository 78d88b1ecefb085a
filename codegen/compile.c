/* The pipeline, stage by stage: source -> AST -> checked model -> graphs ->
 * gradient -> plan -> LLVM IR -> optimised module -> JIT -> vr_program. */
#include "vae/compiler.h"

#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/backend.h"
#include "codegen/graph.h"
#include "codegen/labels.h"

struct vae_unit {
    vae_source *src;
    vae_source *estimator_src; /* an estimator given apart from the file (gradvar), or NULL */
    vae_model model;
};

#define MAX_GRAPHS 8

/* One JIT-compiled build of a program's graphs. */
typedef struct {
    vae_jit *jit;
    void *fns[MAX_GRAPHS]; /* the graphs' entry points, in the order of vae_program.graphs */
    double ir_ms, optimise_ms, machine_ms;
} jit_build;

struct vae_program {
    jit_build code; /* what rt's functions point into */
    vr_program rt;
    vr_tensor_info tensors[VAE_MAX_PARAMS];
    float bounds[VAE_MAX_PARAMS];
    double compile_seconds;
    /* Tiered compilation: quick code for the training step first; in a background
     * thread, quick code for the other graphs (rest_code), then the optimised
     * build of them all, each swapped in between calls by program_upgrade.  The
     * graphs stay alive until then; the thread only reads them. */
    g_graph *graphs[MAX_GRAPHS];
    int ngraphs;
    const char *name;
    vae_elem elem;
    pthread_t tier_thread;
    int tier_started;
    unsigned rest;          /* graphs (bit i: graphs[i]) the first quick build left out */
    atomic_int rest_ready;  /* rest_code (or tier_err) is set */
    jit_build rest_code;
    atomic_int tier_ready; /* the thread has finished: tier_code or tier_err is set */
    jit_build tier_code;
    char *tier_err;
    double tier_seconds;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

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
    vae_source *src = vae_source_load(path, err);
    if (!src) return NULL;
    vae_source *es = vae_source_from_string("--estimators", spec, err);
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
        g_graph *g = g_build(m, GRAPH_IWAE, batch, chunk, err);
        if (!g) return NULL;
        g_plan(g);
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

/* Builds the requested graphs; returns how many (0 on failure). */
int vae_build_graphs(const vae_unit *u, const vae_build_opts *o, g_graph **gs, FILE *err);
int vae_build_graphs(const vae_unit *u, const vae_build_opts *o, g_graph **gs, FILE *err) {
    int n = 0;
    const vae_model *m = &u->model;
    if (o->train) {
        g_graph *g = g_build(m, GRAPH_TRAIN, o->batch, m->est.samples, err);
        if (!g) return 0;
        g_differentiate(g);
        g_plan(g);
        gs[n++] = g;
    }
    if (o->eval) {
        int batch = o->eval_batch; /* fewer examples per call for a model too wide for them */
        while (batch > 1 && !g_batch_fits(m, GRAPH_EVAL, batch, 1, NULL)) batch /= 2;
        g_graph *g = g_build(m, GRAPH_EVAL, batch, 1, err);
        if (!g) goto fail;
        g_plan(g);
        gs[n++] = g;
    }
    if (o->iwae) {
        g_graph *g = build_iwae(m, o, err);
        if (!g) goto fail;
        gs[n++] = g;
    }
    if (o->api) {
        static const g_purpose api[3] = {GRAPH_ENCODE, GRAPH_DECODE, GRAPH_SAMPLE};
        for (int i = 0; i < 3; i++) {
            if (api[i] == GRAPH_ENCODE && !g_posterior_width(m)) continue; /* a latent without encoder */
            g_purpose purpose = api[i] == GRAPH_SAMPLE && o->prior_decode ? GRAPH_PRIOR_DECODE : api[i];
            int batch = o->api_batch;
            while (batch > 1 && !g_batch_fits(m, purpose, batch, 1, NULL)) batch /= 2;
            g_graph *g = g_build(m, purpose, batch, 1, err);
            if (!g) goto fail;
            g_plan(g);
            gs[n++] = g;
        }
    }
    return n;
fail:
    while (n) g_free(gs[--n]);
    return 0;
}

static long out_offset(const g_node *n) { return n ? n->offset : -1; }

static void describe(vr_graph *d, const g_graph *g, void *fn) {
    d->fn = (vr_graph_fn)fn;
    d->batch = g->batch;
    d->samples = g->samples;
    d->arena_floats = g->arena_floats;
    d->objective = out_offset(g->out.objective);
    d->recon_rows = out_offset(g->out.recon_rows);
    d->kl_rows = out_offset(g->out.kl_rows);
    d->logw_rows = out_offset(g->out.logw_rows);
    d->logpx_rows = out_offset(g->out.logpx_rows);
    d->value_rows = out_offset(g->out.value_rows);
    d->correct_rows = out_offset(g->out.correct_rows);
}

/* JIT-compiles the graphs into a fresh JIT: optimised (default<O3>, aggressive
 * code generation) or quick (no IR passes, fast instruction selection).  Both give
 * bit-identical results: neither reassociates nor contracts floating-point
 * operations.  0, or -1 with *err set. */
static int jit_compile(jit_build *b, g_graph *const *graphs, int ngraphs, unsigned which, const char *name,
                       vae_elem elem, int optimized, char **err) {
    memset(b, 0, sizeof *b);
    b->jit = vae_jit_new(optimized, err);
    if (!b->jit) return -1;
    /* One module per graph, each optimised, linked and looked up (which makes
     * its machine code) before the next is built: LLVM frees a module's IR once
     * its code exists, so the build's heap peaks at the largest graph's, not
     * at all of them together. */
    for (int i = 0; i < ngraphs; i++) {
        if (!(which & 1u << i)) continue;
        double t0 = now();
        LLVMModuleRef mod = cg_llvm_module(vae_jit_context(b->jit), name, graphs + i, 1, elem, optimized);
        double t_ir = now();
        if (cg_llvm_optimize(mod, optimized, err) != 0) {
            LLVMDisposeModule(mod);
            return -1;
        }
        double t_opt = now();
        if (vae_jit_add(b->jit, mod, err) != 0) return -1;
        if (!(b->fns[i] = vae_jit_lookup(b->jit, graphs[i]->fn_name, err))) return -1;
        b->ir_ms += 1e3 * (t_ir - t0);
        b->optimise_ms += 1e3 * (t_opt - t_ir);
        b->machine_ms += 1e3 * (now() - t_opt);
    }
    return 0;
}

static void jit_build_free(jit_build *b) {
    vae_jit_free(b->jit);
    memset(b, 0, sizeof *b);
}

static vr_graph *graph_slot(vr_program *rt, g_purpose purpose) {
    vr_graph *table[] = {&rt->train, &rt->eval, &rt->iwae, &rt->encode, &rt->decode, &rt->sample, &rt->sample};
    return table[purpose];
}

#define ALL_GRAPHS(n) ((1u << (n)) - 1)

static void *tier_main(void *arg) {
    vae_program *p = arg;
    char *msg = NULL;
    if (p->rest && jit_compile(&p->rest_code, p->graphs, p->ngraphs, p->rest, p->name, p->elem, 0, &msg) != 0) {
        jit_build_free(&p->rest_code);
        p->tier_err = msg ? msg : strdup("unknown failure");
        atomic_store_explicit(&p->rest_ready, 1, memory_order_release);
        atomic_store_explicit(&p->tier_ready, 1, memory_order_release);
        return NULL;
    }
    atomic_store_explicit(&p->rest_ready, 1, memory_order_release);
    double t0 = now();
    if (jit_compile(&p->tier_code, p->graphs, p->ngraphs, ALL_GRAPHS(p->ngraphs), p->name, p->elem, 1, &msg) != 0) {
        jit_build_free(&p->tier_code);
        p->tier_err = msg ? msg : strdup("unknown failure");
    }
    p->tier_seconds = now() - t0;
    atomic_store_explicit(&p->tier_ready, 1, memory_order_release);
    return NULL;
}

static void free_graphs(vae_program *p) {
    for (int i = 0; i < p->ngraphs; i++) g_free(p->graphs[i]);
    p->ngraphs = 0;
}

/* Waits for the background build and keeps what it made, if `wait`; otherwise
 * only when it has finished.  Runs on the thread that calls the generated code,
 * between calls, so no call ever sees a half-swapped program. */
static void tier_finish(vae_program *p, int wait) {
    if (!p->tier_started) return;
    if (p->rest && (wait || atomic_load_explicit(&p->rest_ready, memory_order_acquire))) {
        while (!atomic_load_explicit(&p->rest_ready, memory_order_acquire)) {
            struct timespec pause = {0, 100000};
            nanosleep(&pause, NULL);
        }
        if (!p->rest_code.jit) { /* it built the training step: it cannot fail on the others but for memory */
            fprintf(stderr, "vaec: error: LLVM: %s\n", p->tier_err ? p->tier_err : "unknown failure");
            exit(1);
        }
        for (int i = 0; i < p->ngraphs; i++)
            if (p->rest & 1u << i) graph_slot(&p->rt, p->graphs[i]->purpose)->fn = (vr_graph_fn)p->rest_code.fns[i];
        p->rest = 0;
        p->rt.complete = NULL;
    }
    if (!wait && !atomic_load_explicit(&p->tier_ready, memory_order_acquire)) return;
    pthread_join(p->tier_thread, NULL);
    p->tier_started = 0;
    p->rt.upgrade = NULL;
    if (getenv("VAEC_TIMING"))
        fprintf(stderr, "compile (optimised, in the background): %.1f ms: IR %.1f ms, optimise %.1f ms, machine code + JIT %.1f ms\n",
                1e3 * p->tier_seconds, p->tier_code.ir_ms, p->tier_code.optimise_ms, p->tier_code.machine_ms);
    if (p->tier_err) { /* the quick code of every graph is in place: the rest's build cannot fail alone */
        fprintf(stderr, "vaec: warning: LLVM: the optimised build failed (%s); going on with the quick code\n",
                p->tier_err);
        free(p->tier_err);
        p->tier_err = NULL;
    } else {
        for (int i = 0; i < p->ngraphs; i++) graph_slot(&p->rt, p->graphs[i]->purpose)->fn = (vr_graph_fn)p->tier_code.fns[i];
        jit_build_free(&p->code);
        jit_build_free(&p->rest_code);
        p->code = p->tier_code;
        memset(&p->tier_code, 0, sizeof p->tier_code);
    }
    free_graphs(p);
#ifdef __GLIBC__
    malloc_trim(0); /* the builds' heap, freed on the other thread's arena, back to the system (1.5 ms) */
#endif
}

static void program_upgrade(void *self) { tier_finish(self, 0); }

/* Quick code for every graph: waits for the background thread's first build. */
static void program_complete(void *self) {
    vae_program *p = self;
    if (!p->rest) return;
    while (!atomic_load_explicit(&p->rest_ready, memory_order_acquire)) {
        struct timespec pause = {0, 100000};
        nanosleep(&pause, NULL);
    }
    tier_finish(p, 0);
}

vae_program *vae_program_build(const vae_unit *u, const vae_build_opts *o, FILE *err) {
    double t0 = now();
    vae_program *p = calloc(1, sizeof *p);
    if (!p) abort();
    p->ngraphs = vae_build_graphs(u, o, p->graphs, err);
    if (!p->ngraphs) {
        free(p);
        return NULL;
    }
    p->name = u->model.name;
    p->elem = o->double_precision ? VAE_F64 : VAE_F32;
    double t_graph = now(); /* VAEC_TIMING=1 prints where compile time goes */
    char *msg = NULL;
    unsigned first = ALL_GRAPHS(p->ngraphs); /* tiered: the training step alone, if there is one */
    if (o->jit == VAE_JIT_TIERED)
        for (int i = 0; i < p->ngraphs; i++)
            if (p->graphs[i]->purpose == GRAPH_TRAIN) first = 1u << i;
    if (jit_compile(&p->code, p->graphs, p->ngraphs, first, p->name, p->elem,
                    o->jit != VAE_JIT_QUICK && o->jit != VAE_JIT_TIERED, &msg) != 0)
        goto fail;
    const vae_model *m = &u->model;
    for (int i = 0; i < m->nparams; i++) {
        const vae_param *q = &m->params[i];
        p->tensors[i].name = q->name;
        p->tensors[i].ndims = q->ndims;
        memcpy(p->tensors[i].dims, q->dims, sizeof(int) * (size_t)q->ndims);
        p->tensors[i].size = q->size;
        p->bounds[i] = q->init_bound;
    }
    vr_program *rt = &p->rt;
    rt->model_name = m->name;
    rt->data_dim = m->data_dim;
    rt->binary = m->binary;
    rt->binary_dynamic = m->binary_dynamic;
    rt->label_states = vae_label_states(m);
    rt->label_inferred = vae_label_inferred(m);
    rt->classify = m->train.classify;
    rt->ntensors = m->nparams;
    rt->tensors = p->tensors;
    rt->init_bounds = p->bounds;
    rt->param_floats = m->param_floats;
    rt->encode_width = g_posterior_width(m);
    rt->latent_width = g_latent_width(m);
    rt->decode_width = g_decode_width(m);
    for (int i = 0; i < p->ngraphs; i++) {
        const g_graph *g = p->graphs[i];
        long *api_out[] = {NULL, NULL, NULL, &rt->api_out_encode, &rt->api_out_decode, &rt->api_out_sample,
                           &rt->api_out_sample};
        describe(graph_slot(rt, g->purpose), g, p->code.fns[i]);
        if (api_out[g->purpose]) *api_out[g->purpose] = g->out.api_out->offset;
        if (g->purpose == GRAPH_TRAIN) rt->value_name = g->value_name;
        if (g->purpose == GRAPH_EVAL) rt->eval_value_name = g->value_name;
    }
    p->compile_seconds = now() - t0;
    if (getenv("VAEC_TIMING"))
        fprintf(err, "compile (%s): graphs %.1f ms, IR %.1f ms, optimise %.1f ms, machine code + JIT %.1f ms\n",
                o->jit == VAE_JIT_OPTIMIZED ? "optimised" : "quick", 1e3 * (t_graph - t0), p->code.ir_ms,
                p->code.optimise_ms, p->code.machine_ms);
    if (getenv("VAEC_DUMP_OBJECTS")) /* where the dumped objects' functions run, to map perf samples onto them */
        for (int i = 0; i < p->ngraphs; i++) fprintf(err, "%s at %p\n", p->graphs[i]->fn_name, p->code.fns[i]);
    p->rest = ALL_GRAPHS(p->ngraphs) & ~first;
    if (o->jit == VAE_JIT_TIERED && pthread_create(&p->tier_thread, NULL, tier_main, p) == 0) {
        p->tier_started = 1;
        rt->upgrade = program_upgrade;
        rt->complete = p->rest ? program_complete : NULL;
        rt->upgrade_self = p;
    } else if (p->rest) { /* no thread: quick code for the rest now */
        jit_build_free(&p->code);
        if (jit_compile(&p->code, p->graphs, p->ngraphs, ALL_GRAPHS(p->ngraphs), p->name, p->elem, 0, &msg) != 0)
            goto fail;
        for (int i = 0; i < p->ngraphs; i++) graph_slot(rt, p->graphs[i]->purpose)->fn = (vr_graph_fn)p->code.fns[i];
        p->rest = 0;
        free_graphs(p);
    } else {
        free_graphs(p);
    }
    return p;
fail:
    fprintf(err, "vaec: error: LLVM: %s\n", msg ? msg : "unknown failure");
    free(msg);
    vae_program_free(p);
    return NULL;
}

void vae_program_wait_optimized(vae_program *p) { tier_finish(p, 1); }

const vr_program *vae_program_runtime(const vae_program *p) { return &p->rt; }
double vae_program_compile_seconds(const vae_program *p) { return p->compile_seconds; }

void *vae_program_function(vae_program *p, const char *name) {
    program_complete(p);
    if (strcmp(name, "vae_train_step") == 0) return (void *)p->rt.train.fn;
    if (strcmp(name, "vae_eval") == 0) return (void *)p->rt.eval.fn;
    if (strcmp(name, "vae_iwae") == 0) return (void *)p->rt.iwae.fn;
    if (strcmp(name, "vae_encode") == 0) return (void *)p->rt.encode.fn;
    if (strcmp(name, "vae_decode") == 0) return (void *)p->rt.decode.fn;
    if (strcmp(name, "vae_sample") == 0) return (void *)p->rt.sample.fn;
    return NULL;
}

void vae_program_free(vae_program *p) {
    if (!p) return;
    tier_finish(p, 1);
    free_graphs(p);
    jit_build_free(&p->code);
    free(p);
}

int vae_emit_llvm(const vae_unit *u, const vae_build_opts *o, FILE *out, FILE *err) {
    g_graph *gs[MAX_GRAPHS];
    int n = vae_build_graphs(u, o, gs, err);
    if (!n) return -1;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = cg_llvm_module(ctx, u->model.name, gs, n, o->double_precision ? VAE_F64 : VAE_F32, 1);
    char *msg = NULL;
    int rc = cg_llvm_optimize(mod, 1, &msg);
    if (rc == 0) {
        char *text = LLVMPrintModuleToString(mod);
        fputs(text, out);
        LLVMDisposeMessage(text);
    } else {
        fprintf(err, "vaec: error: LLVM: %s\n", msg ? msg : "unknown failure");
        free(msg);
    }
    LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    for (int i = 0; i < n; i++) g_free(gs[i]);
    return rc;
}

int vae_dump_graphs(const vae_unit *u, const vae_build_opts *o, FILE *out, FILE *err) {
    g_graph *gs[MAX_GRAPHS];
    int n = vae_build_graphs(u, o, gs, err);
    if (!n) return -1;
    for (int i = 0; i < n; i++) {
        g_dump(out, gs[i]);
        g_free(gs[i]);
    }
    return 0;
}
