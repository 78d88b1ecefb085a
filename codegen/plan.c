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
 * offset in one arena sized here, at compile time.  A slot is reused once the
 * last reader of its tensor has run: the arena holds what is live at once, not
 * every tensor of the step (mixture_reinforce's training step: 8.4M floats
 * without reuse). */
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

/* ---- products at once: consecutive products (nothing runs between them) of
 * which none reads another's output.  The team deals their parts out together,
 * so a small product no longer runs alone while the other thread waits. */
static int emits_code(const g_node *n) { return !n->fused && n->kind != G_PARAM && n->kind != G_DATA; }

/* A product whose inputs are all ready when the product before it runs (the
 * encoder's mean and log-variance heads) moves up to run beside it, with the
 * parameters it reads (so every input still precedes its reader); ids are
 * positions again afterwards. */
static void hoist_products(g_graph *g) {
    int q = -1; /* the last product so far */
    for (int i = 0; i < g->nnodes; i++) {
        g_node *p = g->nodes[i];
        if (!emits_code(p) || p->kind != G_MATMUL) continue;
        int ready = q >= 0;
        for (int j = 0; j < p->nin && ready; j++)
            if (emits_code(p->in[j]) && p->in[j]->id >= q) ready = 0;
        int between = 0;
        for (int k = q + 1; k < i && ready; k++) between += emits_code(g->nodes[k]);
        if (ready && between) {
            /* nodes[q + 1 .. i]: p's parameters and data first, then p, then the rest in order */
            g_node **moved = malloc(sizeof(g_node *) * (size_t)(i - q));
            if (!moved) abort();
            int m = 0;
            for (int k = q + 1; k < i; k++)
                for (int j = 0; j < p->nin; j++)
                    if (p->in[j] == g->nodes[k] && !emits_code(g->nodes[k])) {
                        moved[m++] = g->nodes[k];
                        break;
                    }
            moved[m++] = p;
            for (int k = q + 1; k < i; k++) {
                int taken = 0;
                for (int t = 0; t < m; t++) taken |= moved[t] == g->nodes[k];
                if (!taken) moved[m++] = g->nodes[k];
            }
            memcpy(&g->nodes[q + 1], moved, sizeof(g_node *) * (size_t)(i - q));
            free(moved);
            for (int k = q + 1; k <= i; k++) g->nodes[k]->id = k;
            i = q + 1; /* p's place now; go on from there */
            while (g->nodes[i] != p) i++;
        }
        q = i;
    }
}

static void group_products(g_graph *g) {
    const g_node *group[G_PRODUCT_GROUP_MAX];
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) {
        g_node *p = g->nodes[i];
        if (!emits_code(p)) continue;
        p->with_previous = 0;
        if (p->kind != G_MATMUL) {
            n = 0;
            continue;
        }
        int joins = n > 0 && n < G_PRODUCT_GROUP_MAX;
        for (int k = 0; k < n && joins; k++)
            if (p->in[0] == group[k] || p->in[1] == group[k]) joins = 0;
        if (!joins) n = 0;
        p->with_previous = joins;
        group[n++] = p;
    }
}

/* ---- the arena: a slot per tensor, reused once its last reader has run */

typedef struct {
    long offset, size;
} span;

typedef struct {
    span *free; /* free spans inside [0, end), sorted by offset, never adjacent */
    int n, cap;
    long end;   /* the arena's size so far */
} arena_alloc;

/* Best fit among the free spans, else the end of the arena (growing the free span
 * that touches it, if any). */
static long arena_take(arena_alloc *a, long size) {
    int best = -1;
    for (int i = 0; i < a->n; i++)
        if (a->free[i].size >= size && (best < 0 || a->free[i].size < a->free[best].size)) best = i;
    if (best >= 0) {
        long at = a->free[best].offset;
        a->free[best].offset += size;
        a->free[best].size -= size;
        if (a->free[best].size == 0) {
            memmove(&a->free[best], &a->free[best + 1], sizeof(span) * (size_t)(a->n - best - 1));
            a->n--;
        }
        return at;
    }
    if (a->n && a->free[a->n - 1].offset + a->free[a->n - 1].size == a->end) {
        long at = a->free[--a->n].offset;
        a->end = at + size;
        return at;
    }
    long at = a->end;
    a->end += size;
    return at;
}

static void arena_give(arena_alloc *a, long offset, long size) {
    int i = 0;
    while (i < a->n && a->free[i].offset < offset) i++;
    if (i > 0 && a->free[i - 1].offset + a->free[i - 1].size == offset) { /* joins the span before */
        a->free[i - 1].size += size;
        if (i < a->n && offset + size == a->free[i].offset) {
            a->free[i - 1].size += a->free[i].size;
            memmove(&a->free[i], &a->free[i + 1], sizeof(span) * (size_t)(a->n - i - 1));
            a->n--;
        }
        return;
    }
    if (i < a->n && offset + size == a->free[i].offset) { /* joins the span after */
        a->free[i].offset = offset;
        a->free[i].size += size;
        return;
    }
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 16;
        a->free = realloc(a->free, sizeof(span) * (size_t)a->cap);
        if (!a->free) abort();
    }
    memmove(&a->free[i + 1], &a->free[i], sizeof(span) * (size_t)(a->n - i));
    a->free[i] = (span){offset, size};
    a->n++;
}

static long slot_size(const g_node *n) { return ((long)n->rows * n->cols + 15) / 16 * 16; /* 64-byte aligned */ }

void g_plan(g_graph *g) {
    for (int i = 0; i < g->nnodes; i++) g->nodes[i]->uses = 0;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i]->nin; j++) g->nodes[i]->in[j]->uses++;
    fuse(g);
    hoist_products(g);
    group_products(g);
    /* Nodes run in order (fused ones not at all), so a tensor is live from its node to
     * its last reader; what the driver reads back (the pinned outputs) lives to the end.
     * A node's slot comes from the spans freed before it runs; an elementwise MAP may
     * also take over the slot of an input of its own shape that it is the last
     * reader of (element i is read before element i is written, and no other). */
    int *last = malloc(sizeof(int) * (g->nnodes > 0 ? (size_t)g->nnodes : 1));
    if (!last) abort();
    for (int i = 0; i < g->nnodes; i++) last[i] = pinned(g, g->nodes[i]) ? g->nnodes : i;
    for (int i = 0; i < g->nnodes; i++) {
        const g_node *r = g->nodes[i];
        if (r->fused) continue;
        for (int j = 0; j < r->nin; j++) {
            int k = r->in[j]->id;
            if (last[k] < i) last[k] = i;
        }
    }
    /* The products of a group run at once: what any of them reads or writes stays
     * live until the last of them has run (its index stands for the group's). */
    for (int i = g->nnodes - 1, end = -1; i >= 0; i--) {
        const g_node *p = g->nodes[i];
        if (!emits_code(p)) continue;
        if (end < 0 && p->kind == G_MATMUL && p->with_previous) end = i; /* the group's last product */
        if (end >= 0 && p->kind == G_MATMUL && !p->with_previous) { /* its first: [i, end] is the group */
            for (int k = 0; k < g->nnodes; k++)
                if (last[k] >= i && last[k] < end) last[k] = end;
            end = -1;
        }
    }
    arena_alloc a = {0};
    for (int i = 0; i < g->nnodes; i++) {
        for (int k = 0; k < i; k++) { /* slots whose last reader was node i - 1 (ids are positions) */
            const g_node *d = g->nodes[k];
            if (last[k] == i - 1 && !d->fused && d->buffer == BUF_ARENA) arena_give(&a, d->offset, slot_size(d));
        }
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
        n->offset = -1;
        if (n->kind == G_MAP) /* in place: over an input of its shape that nothing reads after it */
            for (int j = 0; j < n->nin && n->offset < 0; j++) {
                const g_node *d = n->in[j];
                if (!d->fused && d->buffer == BUF_ARENA && d->rows == n->rows && d->cols == n->cols && last[d->id] == i) {
                    n->offset = d->offset;
                    last[d->id] = -1; /* its slot is n's now: freed after n's last reader, not d's */
                }
            }
        if (n->offset < 0) n->offset = arena_take(&a, slot_size(n));
    }
    g->arena_floats = a.end;
    free(a.free);
    free(last);
}
