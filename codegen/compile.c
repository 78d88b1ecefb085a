/* The pipeline, stage by stage: source -> AST -> checked model -> graphs ->
 * gradient -> plan -> LLVM IR -> optimised module -> JIT -> vr_program. */
#include "vae/compiler.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/backend.h"
#include "codegen/graph.h"

struct vae_unit {
    vae_source *src;
    vae_source *estimator_src; /* an estimator given apart from the file (gradvar), or NULL */
    vae_model model;
};

struct vae_program {
    vae_jit *jit;
    vr_program rt;
    vr_tensor_info tensors[VAE_MAX_PARAMS];
    float bounds[VAE_MAX_PARAMS];
    double compile_seconds;
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
    ast_estimator *est = ast ? vae_parse_estimator(es) : NULL;
    vae_unit *u = calloc(1, sizeof *u);
    if (!u) abort();
    u->src = src;
    u->estimator_src = es;
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

vae_build_opts vae_build_defaults(const vae_unit *u) {
    vae_build_opts o = {0};
    o.batch = u->model.train.batch;
    o.eval_batch = 250;
    o.iwae_batch = 4;
    o.iwae_chunk = 250;
    o.train = o.eval = o.iwae = 1;
    o.api_batch = 64;
    return o;
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
        g_graph *g = g_build(m, GRAPH_EVAL, o->eval_batch, 1, err);
        if (!g) goto fail;
        g_plan(g);
        gs[n++] = g;
    }
    if (o->iwae) {
        g_graph *g = g_build(m, GRAPH_IWAE, o->iwae_batch, o->iwae_chunk, err);
        if (!g) goto fail;
        g_plan(g);
        gs[n++] = g;
    }
    if (o->api) {
        static const g_purpose api[3] = {GRAPH_ENCODE, GRAPH_DECODE, GRAPH_SAMPLE};
        for (int i = 0; i < 3; i++) {
            if (api[i] == GRAPH_ENCODE && !g_encode_width(m)) continue;
            int encoders = 1;
            for (int l = 0; l < m->nlatents; l++) encoders &= m->latents[l].encoder != NULL;
            if (api[i] == GRAPH_ENCODE && !encoders) continue;
            g_graph *g = g_build(m, api[i], o->api_batch, 1, err);
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
}

vae_program *vae_program_build(const vae_unit *u, const vae_build_opts *o, FILE *err) {
    double t0 = now();
    g_graph *gs[8];
    int n = vae_build_graphs(u, o, gs, err);
    if (!n) return NULL;
    double t_graph = now(), t_ir = 0, t_opt = 0; /* VAEC_TIMING=1 prints where compile time goes */
    vae_program *p = calloc(1, sizeof *p);
    if (!p) abort();
    char *msg = NULL;
    p->jit = vae_jit_new(&msg);
    if (!p->jit) goto fail;
    LLVMModuleRef mod = cg_llvm_module(vae_jit_context(p->jit), u->model.name, gs, n,
                                       o->double_precision ? VAE_F64 : VAE_F32);
    t_ir = now();
    if (cg_llvm_optimize(mod, &msg) != 0) {
        LLVMDisposeModule(mod);
        goto fail;
    }
    t_opt = now();
    if (vae_jit_add(p->jit, mod, &msg) != 0) goto fail;
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
    rt->ntensors = m->nparams;
    rt->tensors = p->tensors;
    rt->init_bounds = p->bounds;
    rt->param_floats = m->param_floats;
    rt->encode_width = g_encode_width(m);
    rt->latent_width = g_latent_width(m);
    rt->decode_width = g_decode_width(m);
    for (int i = 0; i < n; i++) {
        void *fn = vae_jit_lookup(p->jit, gs[i]->fn_name, &msg);
        if (!fn) goto fail;
        vr_graph *table[] = {&rt->train, &rt->eval, &rt->iwae, &rt->encode, &rt->decode, &rt->sample};
        long *api_out[] = {NULL, NULL, NULL, &rt->api_out_encode, &rt->api_out_decode, &rt->api_out_sample};
        vr_graph *d = table[gs[i]->purpose];
        describe(d, gs[i], fn);
        if (api_out[gs[i]->purpose]) *api_out[gs[i]->purpose] = gs[i]->out.api_out->offset;
        if (gs[i]->purpose == GRAPH_TRAIN) rt->value_name = gs[i]->value_name;
        if (gs[i]->purpose == GRAPH_EVAL) rt->eval_value_name = gs[i]->value_name;
    }
    for (int i = 0; i < n; i++) g_free(gs[i]);
    p->compile_seconds = now() - t0;
    if (getenv("VAEC_TIMING"))
        fprintf(err, "compile: graphs %.1f ms, IR %.1f ms, optimise %.1f ms, machine code + JIT %.1f ms\n",
                1e3 * (t_graph - t0), 1e3 * (t_ir - t_graph), 1e3 * (t_opt - t_ir), 1e3 * (now() - t_opt));
    return p;
fail:
    fprintf(err, "vaec: error: LLVM: %s\n", msg ? msg : "unknown failure");
    free(msg);
    for (int i = 0; i < n; i++) g_free(gs[i]);
    vae_program_free(p);
    return NULL;
}

const vr_program *vae_program_runtime(const vae_program *p) { return &p->rt; }
double vae_program_compile_seconds(const vae_program *p) { return p->compile_seconds; }

void *vae_program_function(const vae_program *p, const char *name) {
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
    vae_jit_free(p->jit);
    free(p);
}

int vae_emit_llvm(const vae_unit *u, const vae_build_opts *o, FILE *out, FILE *err) {
    g_graph *gs[8];
    int n = vae_build_graphs(u, o, gs, err);
    if (!n) return -1;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = cg_llvm_module(ctx, u->model.name, gs, n, o->double_precision ? VAE_F64 : VAE_F32);
    char *msg = NULL;
    int rc = cg_llvm_optimize(mod, &msg);
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
    g_graph *gs[8];
    int n = vae_build_graphs(u, o, gs, err);
    if (!n) return -1;
    for (int i = 0; i < n; i++) {
        g_dump(out, gs[i]);
        g_free(gs[i]);
    }
    return 0;
}
