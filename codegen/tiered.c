/* The tiered JIT: the planned graphs of the pipeline (pipeline.c) -> LLVM IR -> machine code
 * -> a vr_program the driver runs.  Quick code for the training step first; the other graphs'
 * quick code and then every graph's optimised code on a background thread, swapped in between
 * graph calls (docs/architecture.md, "Tiered JIT"). */
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
#include "codegen/labels.h"
#include "codegen/pipeline.h"

/* One JIT-compiled build of a program's graphs. */
typedef struct {
    vae_jit *jit;
    void *fns[VAE_MAX_GRAPHS]; /* the graphs' entry points, in the order of vae_program.graphs */
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
    g_graph *graphs[VAE_MAX_GRAPHS];
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

/* The vr_graph of the program that runs a graph of this purpose. */
static vr_graph *program_graph(vr_program *rt, g_purpose purpose) {
    return (vr_graph *)((char *)rt + g_purposes[purpose].graph_slot);
}

/* Points the program's graphs in `which` (bit i: graphs[i]) at build b's code. */
static void install(vae_program *p, const jit_build *b, unsigned which) {
    for (int i = 0; i < p->ngraphs; i++)
        if (which & 1u << i) program_graph(&p->rt, p->graphs[i]->purpose)->fn = (vr_graph_fn)b->fns[i];
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
        install(p, &p->rest_code, p->rest);
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
        install(p, &p->tier_code, ALL_GRAPHS(p->ngraphs));
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

/* The graphs the first build compiles: with tiers, the training step alone if there is one. */
static unsigned first_build(const vae_program *p, vae_jit_mode jit) {
    if (jit == VAE_JIT_TIERED)
        for (int i = 0; i < p->ngraphs; i++)
            if (p->graphs[i]->purpose == GRAPH_TRAIN) return 1u << i;
    return ALL_GRAPHS(p->ngraphs);
}

/* The model's part of the program: its data, labels, tensors and deployment widths. */
static void describe_model(vae_program *p, const vae_model *m) {
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
    rt->state_floats = vae_state_floats(m);
    rt->encode_width = g_posterior_width(m);
    rt->latent_width = g_latent_width(m);
    rt->decode_width = g_decode_width(m);
}

/* Each graph's vr_graph (and a deployment graph's api_out) in the program, at the first build's
 * code (NULL for the graphs it left out). */
static void describe_graphs(vae_program *p) {
    vr_program *rt = &p->rt;
    for (int i = 0; i < p->ngraphs; i++) {
        const g_graph *g = p->graphs[i];
        const g_purpose_info *info = &g_purposes[g->purpose];
        describe(program_graph(rt, g->purpose), g, p->code.fns[i]);
        if (info->outputs & G_OUT_API) *(long *)((char *)rt + info->api_out_slot) = g->out.api_out->offset;
        if (g->purpose == GRAPH_TRAIN) rt->value_name = g->value_name;
        if (g->purpose == GRAPH_EVAL) rt->eval_value_name = g->value_name;
    }
}

/* VAEC_TIMING=1 prints where compile time goes; VAEC_DUMP_OBJECTS, where each graph's code runs. */
static void report_first_build(const vae_program *p, vae_jit_mode jit, double graph_seconds, FILE *err) {
    if (getenv("VAEC_TIMING"))
        fprintf(err, "compile (%s): graphs %.1f ms, IR %.1f ms, optimise %.1f ms, machine code + JIT %.1f ms\n",
                jit == VAE_JIT_OPTIMIZED ? "optimised" : "quick", 1e3 * graph_seconds, p->code.ir_ms,
                p->code.optimise_ms, p->code.machine_ms);
    if (getenv("VAEC_DUMP_OBJECTS")) /* where the dumped objects' functions run, to map perf samples onto them */
        for (int i = 0; i < p->ngraphs; i++) fprintf(err, "%s at %p\n", p->graphs[i]->fn_name, p->code.fns[i]);
}

/* The graphs the first build left out (p->rest): tiered, on the background thread; otherwise,
 * or when no thread starts, quick code for them all now.  0, or -1 with *msg set. */
static int build_rest(vae_program *p, vae_jit_mode jit, char **msg) {
    vr_program *rt = &p->rt;
    if (jit == VAE_JIT_TIERED && pthread_create(&p->tier_thread, NULL, tier_main, p) == 0) {
        p->tier_started = 1;
        rt->upgrade = program_upgrade;
        rt->complete = p->rest ? program_complete : NULL;
        rt->upgrade_self = p;
        return 0;
    }
    if (p->rest) {
        jit_build_free(&p->code);
        if (jit_compile(&p->code, p->graphs, p->ngraphs, ALL_GRAPHS(p->ngraphs), p->name, p->elem, 0, msg) != 0)
            return -1;
        install(p, &p->code, ALL_GRAPHS(p->ngraphs));
        p->rest = 0;
    }
    free_graphs(p);
    return 0;
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
    const vae_model *m = vae_unit_model(u);
    p->name = m->name;
    p->elem = o->double_precision ? VAE_F64 : VAE_F32;
    double t_graph = now();
    char *msg = NULL;
    unsigned first = first_build(p, o->jit);
    if (jit_compile(&p->code, p->graphs, p->ngraphs, first, p->name, p->elem,
                    o->jit != VAE_JIT_QUICK && o->jit != VAE_JIT_TIERED, &msg) != 0)
        goto fail;
    describe_model(p, m);
    describe_graphs(p);
    p->compile_seconds = now() - t0;
    report_first_build(p, o->jit, t_graph - t0, err);
    p->rest = ALL_GRAPHS(p->ngraphs) & ~first;
    if (build_rest(p, o->jit, &msg) != 0) goto fail;
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
    for (g_purpose k = 0; k < GRAPH_PURPOSES; k++) /* prior_decode's code is asked for as vae_sample, whose place it takes */
        if (k != GRAPH_PRIOR_DECODE && strcmp(name, g_purposes[k].fn_name) == 0)
            return (void *)program_graph(&p->rt, k)->fn;
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
    g_graph *gs[VAE_MAX_GRAPHS];
    int n = vae_build_graphs(u, o, gs, err);
    if (!n) return -1;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = cg_llvm_module(ctx, vae_unit_model(u)->name, gs, n, o->double_precision ? VAE_F64 : VAE_F32, 1);
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
