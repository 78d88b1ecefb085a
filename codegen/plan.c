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

/* The nodes of e written out as a tree (a shared subexpression counts once
 * per use, as substitution and both back ends' printing copy it), or any
 * number above `limit` once it passes it. */
static long tree_size(const vx_expr *e, long limit) {
    long n = 1;
    const vx_expr *parts[3] = {e->a, e->b, e->s};
    for (int k = 0; k < 3 && n <= limit; k++)
        if (parts[k]) n += tree_size(parts[k], limit - n);
    return n;
}

/* How many times input j is read in e's tree (e within G_MAX_FUSED_EXPR). */
static long tree_uses(const vx_expr *e, int j) {
    if (e->op == VX_IN) return e->in == j;
    long n = 0;
    const vx_expr *parts[3] = {e->a, e->b, e->s};
    for (int k = 0; k < 3; k++)
        if (parts[k]) n += tree_uses(parts[k], j);
    return n;
}

/* Fusion's expressions: each fold copies the reader's tree, and the copy it
 * replaces (and the folded map's) is garbage.  They are built in a scratch
 * pool that is compacted - the live trees copied out, the rest freed - once
 * the garbage outweighs what a compaction copies and scans, so memory stays
 * linear in the graph (a chain of 9,000 maps: 330 MB of garbage otherwise). */
typedef struct {
    vae_pool *pool;
    char *owned;     /* per node id: its expr lives in the pool */
    long *size;      /* per node id: tree_size of its expr, 0 until known */
    size_t compact_at; /* bytes */
} fusion_scratch;

static long expr_size(fusion_scratch *s, const g_node *n) {
    if (!s->size[n->id]) s->size[n->id] = tree_size(n->expr, G_MAX_FUSED_EXPR);
    return s->size[n->id];
}

static const vx_expr *copy_tree(vae_pool *p, const vx_expr *e) { /* e within G_MAX_FUSED_EXPR */
    vx_expr *c = vae_pool_alloc(p, sizeof *c);
    *c = *e;
    if (e->a) c->a = copy_tree(p, e->a);
    if (e->b) c->b = copy_tree(p, e->b);
    if (e->s) c->s = copy_tree(p, e->s);
    return c;
}

/* Moves every live expression of the scratch pool to `to` (a fused map's
 * expression is dead: it lives on inside its reader's) and frees the pool. */
static void scratch_release(g_graph *g, fusion_scratch *s, vae_pool *to) {
    for (int i = 0; i < g->nnodes; i++) {
        g_node *n = g->nodes[i];
        if (!s->owned[i]) continue;
        n->expr = n->fused ? NULL : copy_tree(to, n->expr);
        s->owned[i] = !n->fused && to != g->pool;
    }
    vae_pool_free(s->pool);
}

static void scratch_compact(g_graph *g, fusion_scratch *s) {
    if (vae_pool_bytes(s->pool) < s->compact_at) return;
    vae_pool *fresh = vae_pool_new();
    scratch_release(g, s, fresh);
    s->pool = fresh;
    /* the next compaction after as much garbage again as it copied and scanned */
    s->compact_at = 2 * vae_pool_bytes(fresh) + 64 * (size_t)g->nnodes + (1u << 20);
}

/* Tries to fold input j of r (a MAP) into r; returns 1 on success. */
static int fuse_input(g_graph *g, g_node *r, int j, fusion_scratch *scratch) {
    g_node *m = r->in[j];
    if (m->kind != G_MAP || m->fused || m->uses != 1 || pinned(g, m)) return 0;
    if (m->rows != r->dom_rows || m->cols != r->dom_cols) return 0;
    /* A chain of maps (x + x + ... over many assignments) stops growing one
     * expression at G_MAX_FUSED_EXPR: each fold copies the reader's tree, and
     * every pass over an expression recurses as deep as it is. */
    long in_r = expr_size(scratch, r), in_m = expr_size(scratch, m);
    if (in_r > G_MAX_FUSED_EXPR || in_m > G_MAX_FUSED_EXPR) return 0;
    long uses = tree_uses(r->expr, j);
    if (in_r + uses * (in_m - 1) > G_MAX_FUSED_EXPR) return 0;
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
    vae_pool *own = g->pool; /* the vx constructors allocate in g->pool */
    g->pool = scratch->pool;
    r->expr = subst(g, r->expr, remap_r, j, m->expr, remap_m);
    g->pool = own;
    scratch->owned[r->id] = 1;
    scratch->size[r->id] = 0; /* simplification may have made it smaller than the bound above */
    memcpy(r->in, ins, sizeof(g_node *) * (size_t)n);
    r->nin = n;
    m->fused = 1;
    return 1;
}

static void fuse(g_graph *g) {
    fusion_scratch scratch = {vae_pool_new(), calloc((size_t)g->nnodes + 1, 1),
                              calloc((size_t)g->nnodes + 1, sizeof(long)), 1u << 20};
    if (!scratch.owned || !scratch.size) abort();
    for (int i = 0; i < g->nnodes; i++) {
        g_node *r = g->nodes[i];
        if (r->kind != G_MAP && r->kind != G_ROWSUM && r->kind != G_GROUPSUM) continue;
        for (int again = 1; again;) {
            again = 0;
            for (int j = 0; j < r->nin && !again; j++) again = fuse_input(g, r, j, &scratch);
        }
        scratch_compact(g, &scratch);
    }
    scratch_release(g, &scratch, g->pool);
    free(scratch.owned);
    free(scratch.size);
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

/* ---- the arena: a slot per tensor, shared by tensors that are never live at once
 *
 * Placement is offline, as every lifetime is known at compile time: slots are
 * placed largest first, each at the lowest offset clear of the slots already
 * placed whose lifetimes overlap its own (TensorFlow Lite's "greedy by size").
 * Taking tensors in running order instead, first fit, left the convolutional
 * model's training arena 32% above what is live at its busiest node. */

typedef struct {
    long size, offset;
    int first, last; /* the nodes that write it and last read it */
} slot;

static long slot_size(const g_node *n) { return ((long)n->rows * n->cols + 15) / 16 * 16; /* 64-byte aligned */ }

static int larger_first(const void *pa, const void *pb) {
    const slot *a = *(const slot *const *)pa, *b = *(const slot *const *)pb;
    if (a->size != b->size) return a->size < b->size ? 1 : -1;
    return a->first - b->first; /* ties in running order: the same graph always gets the same plan */
}

static int by_offset(const void *pa, const void *pb) {
    const slot *a = *(const slot *const *)pa, *b = *(const slot *const *)pb;
    return a->offset < b->offset ? -1 : a->offset > b->offset;
}

/* Places the slots; returns the arena's size in floats. */
static long place_slots(slot *slots, int n) {
    slot **order = malloc(sizeof(slot *) * (size_t)(n ? n : 1)), **clash = malloc(sizeof(slot *) * (size_t)(n ? n : 1));
    if (!order || !clash) abort();
    for (int i = 0; i < n; i++) order[i] = &slots[i];
    qsort(order, (size_t)n, sizeof *order, larger_first);
    long end = 0;
    for (int i = 0; i < n; i++) {
        slot *s = order[i];
        int nc = 0;
        for (int j = 0; j < i; j++)
            if (order[j]->first <= s->last && s->first <= order[j]->last) clash[nc++] = order[j];
        qsort(clash, (size_t)nc, sizeof *clash, by_offset);
        long at = 0; /* the lowest gap that holds it */
        for (int j = 0; j < nc && clash[j]->offset < at + s->size; j++)
            if (clash[j]->offset + clash[j]->size > at) at = clash[j]->offset + clash[j]->size;
        s->offset = at;
        if (at + s->size > end) end = at + s->size;
    }
    free(order);
    free(clash);
    return end;
}

/* An array of n ints (at least one), or abort. */
static int *int_array(int n) {
    int *a = malloc(sizeof(int) * (n > 0 ? (size_t)n : 1));
    if (!a) abort();
    return a;
}

/* How many nodes read each node. */
static void count_uses(g_graph *g) {
    for (int i = 0; i < g->nnodes; i++) g->nodes[i]->uses = 0;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i]->nin; j++) g->nodes[i]->in[j]->uses++;
}

/* The products of a group run at once: what any of them reads or writes stays
 * live until the last of them has run (its index stands for the group's). */
static void live_through_groups(const g_graph *g, int *last) {
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
}

/* The index of the node after which each tensor is dead (malloc'd).  Nodes run in order
 * (fused ones not at all), so a tensor is live from its node to its last reader; what the
 * driver reads back (the pinned outputs) lives to the end.  Two tensors may share memory
 * when these spans do not meet. */
static int *live_until(const g_graph *g) {
    int *last = int_array(g->nnodes);
    for (int i = 0; i < g->nnodes; i++) last[i] = pinned(g, g->nodes[i]) ? g->nnodes : i;
    for (int i = 0; i < g->nnodes; i++) {
        const g_node *r = g->nodes[i];
        if (r->fused) continue;
        for (int j = 0; j < r->nin; j++) {
            int k = r->in[j]->id;
            if (last[k] < i) last[k] = i;
        }
    }
    live_through_groups(g, last);
    return last;
}

/* Puts n in the parameters, the data or the gradients when it is one of them; 0 when it
 * belongs in the arena. */
static int place_outside_arena(const g_graph *g, g_node *n) {
    switch (n->kind) {
    case G_PARAM:
        n->buffer = BUF_PARAMS;
        n->offset = n->param->offset;
        return 1;
    case G_DATA:
        n->buffer = BUF_DATA;
        n->offset = n->data_offset;
        return 1;
    default: break;
    }
    int p = -1;
    for (int k = 0; k < g->model->nparams; k++)
        if (g->param_grad[k] == n) p = k;
    if (p < 0) return 0;
    n->buffer = BUF_GRADS;
    n->offset = g->model->params[p].offset;
    return 1;
}

/* Each node's buffer, and which tensors get an arena slot (malloc'd): an elementwise MAP may
 * take over the slot of an input of its own shape that it is the last reader of (element i
 * is read before element i is written, and no other): owner[] names the slot's first
 * tensor, -1 for a tensor outside the arena. */
static int *arena_owners(const g_graph *g, const int *last) {
    int *owner = int_array(g->nnodes);
    for (int i = 0; i < g->nnodes; i++) {
        g_node *n = g->nodes[i];
        owner[i] = -1;
        if (n->fused || place_outside_arena(g, n)) continue;
        n->buffer = BUF_ARENA;
        owner[i] = i;
        if (n->kind == G_MAP) /* in place: over an input of its shape that nothing reads after it */
            for (int j = 0; j < n->nin && owner[i] == i; j++) {
                const g_node *d = n->in[j];
                if (!d->fused && d->buffer == BUF_ARENA && d->rows == n->rows && d->cols == n->cols && last[d->id] == i &&
                    owner[d->id] >= 0)
                    owner[i] = owner[d->id];
            }
    }
    return owner;
}

/* One slot per owner, live over all its tenants; places them and sets the arena's size and
 * every arena tensor's offset. */
static void place_arena(g_graph *g, const int *last, const int *owner) {
    slot *slots = malloc(sizeof(slot) * (g->nnodes > 0 ? (size_t)g->nnodes : 1));
    int *slot_of = int_array(g->nnodes);
    if (!slots) abort();
    int nslots = 0;
    for (int i = 0; i < g->nnodes; i++) {
        if (owner[i] < 0) continue;
        if (owner[i] == i) {
            slot_of[i] = nslots;
            slots[nslots++] = (slot){slot_size(g->nodes[i]), 0, i, last[i]};
        } else {
            slot_of[i] = slot_of[owner[i]];
            slot *s = &slots[slot_of[i]];
            if (last[i] > s->last) s->last = last[i];
        }
    }
    g->arena_floats = place_slots(slots, nslots);
    for (int i = 0; i < g->nnodes; i++)
        if (owner[i] >= 0) g->nodes[i]->offset = slots[slot_of[i]].offset;
    free(slots);
    free(slot_of);
}

void g_plan(g_graph *g) {
    count_uses(g);
    fuse(g);
    hoist_products(g);
    group_products(g);
    int *last = live_until(g);
    int *owner = arena_owners(g, last);
    place_arena(g, last, owner);
    free(owner);
    free(last);
}
