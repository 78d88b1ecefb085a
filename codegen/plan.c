/* The plan: fuse elementwise chains, then give every tensor a fixed place.
 *
 * Fusion folds a MAP into its only reader when the reader evaluates an
 * expression over the same domain (another MAP, a ROWSUM or a GROUPSUM): the
 * MAP's expression is substituted for the reader's use of it, so bias +
 * activation, or the likelihood and its row sum, are one pass over memory.
 *
 * Placement: parameters live in the parameter buffer, the gradient of each
 * parameter is computed straight into its slot of the gradient buffer (same
 * layout), the data batch is its own buffer, and everything else gets an
 * offset in one arena sized here, at compile time. */
#include "codegen/graph.h"

#include <stdlib.h>
#include <string.h>

static int pinned(const g_graph *g, const g_node *n) {
    const g_outputs *o = &g->out;
    if (n == o->objective || n == o->recon_rows || n == o->kl_rows || n == o->logw_rows || n == o->logpx_rows ||
        n == o->value_rows || n == o->api_out)
        return 1;
    for (int p = 0; p < g->model->nparams; p++)
        if (g->param_grad[p] == n) return 1;
    return 0;
}

static const vx_expr *subst(g_graph *g, const vx_expr *e, const int *remap_r, int j, const vx_expr *inner,
                            const int *remap_m) {
    switch (vx_arity(e->op)) {
    case 0:
        if (e->op == VX_CONST) return e;
        if (e->in == j) return subst(g, inner, remap_m, -1, NULL, NULL);
        return vx_in(g, remap_r[e->in]);
    case 1: return vx_un(g, e->op, subst(g, e->a, remap_r, j, inner, remap_m));
    case 2:
        return vx_bin(g, e->op, subst(g, e->a, remap_r, j, inner, remap_m),
                      subst(g, e->b, remap_r, j, inner, remap_m));
    default:
        return vx_select(g, subst(g, e->s, remap_r, j, inner, remap_m), subst(g, e->a, remap_r, j, inner, remap_m),
                         subst(g, e->b, remap_r, j, inner, remap_m));
    }
}

static int index_of(g_node *const *list, int n, const g_node *x) {
    for (int i = 0; i < n; i++)
        if (list[i] == x) return i;
    return -1;
}

/* Tries to fold input j of r (a MAP) into r; returns 1 on success. */
static int fuse_input(g_graph *g, g_node *r, int j) {
    g_node *m = r->in[j];
    if (m->kind != G_MAP || m->fused || m->uses != 1 || pinned(g, m)) return 0;
    if (m->rows != r->dom_rows || m->cols != r->dom_cols) return 0;
    g_node *ins[2 * G_MAX_IN];
    int n = 0, remap_r[G_MAX_IN], remap_m[G_MAX_IN];
    for (int k = 0; k < r->nin; k++) {
        if (k == j) continue;
        remap_r[k] = n;
        ins[n++] = r->in[k];
    }
    int shared = 0; /* inputs of m that r already reads: one reader fewer each after folding */
    for (int k = 0; k < m->nin; k++) {
        int at = index_of(ins, n, m->in[k]);
        if (at < 0) {
            if (n == 2 * G_MAX_IN) return 0;
            at = n;
            ins[n++] = m->in[k];
        } else
            shared |= 1 << k;
        remap_m[k] = at;
    }
    if (n > G_MAX_IN) return 0;
    for (int k = 0; k < m->nin; k++)
        if (shared & (1 << k)) m->in[k]->uses--;
    r->expr = subst(g, r->expr, remap_r, j, m->expr, remap_m);
    memcpy(r->in, ins, sizeof(g_node *) * (size_t)n);
    r->nin = n;
    m->fused = 1;
    return 1;
}

static void fuse(g_graph *g) {
    for (int i = 0; i < g->nnodes; i++) {
        g_node *r = g->nodes[i];
        if (r->kind != G_MAP && r->kind != G_ROWSUM && r->kind != G_GROUPSUM) continue;
        for (int again = 1; again;) {
            again = 0;
            for (int j = 0; j < r->nin && !again; j++) again = fuse_input(g, r, j);
        }
    }
}

void g_plan(g_graph *g) {
    for (int i = 0; i < g->nnodes; i++) g->nodes[i]->uses = 0;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i]->nin; j++) g->nodes[i]->in[j]->uses++;
    fuse(g);
    long arena = 0;
    for (int i = 0; i < g->nnodes; i++) {
        g_node *n = g->nodes[i];
        if (n->fused) continue;
        switch (n->kind) {
        case G_PARAM:
            n->buffer = BUF_PARAMS;
            n->offset = n->param->offset;
            continue;
        case G_DATA:
            n->buffer = BUF_DATA;
            n->offset = 0;
            continue;
        default: break;
        }
        int p = -1;
        for (int k = 0; k < g->model->nparams; k++)
            if (g->param_grad[k] == n) p = k;
        if (p >= 0) {
            n->buffer = BUF_GRADS;
            n->offset = g->model->params[p].offset;
            continue;
        }
        n->buffer = BUF_ARENA;
        n->offset = arena;
        arena += ((long)n->rows * n->cols + 15) / 16 * 16; /* 64-byte aligned slots */
    }
    g->arena_floats = arena;
}
