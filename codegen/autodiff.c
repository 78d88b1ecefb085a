/* Reverse-mode differentiation of the graph, at compile time: the backward
 * pass is appended to the same graph as ordinary nodes, one rule per node
 * kind (elementwise rules live in expr.c: vx_diff).  The seed is
 * d loss / d objective = -1, since training minimises loss = -objective. */
#include "codegen/graph.h"

#include <stdlib.h>

typedef struct contrib {
    g_node *n;
    struct contrib *next;
} contrib;

typedef struct {
    g_graph *g;
    contrib **adj; /* gradient contributions per forward node id */
} diff_state;

static void contribute(diff_state *d, g_node *to, g_node *grad) {
    contrib *c = vae_pool_alloc(d->g->pool, sizeof *c);
    c->n = grad;
    c->next = d->adj[to->id];
    d->adj[to->id] = c;
}

/* Brings a gradient computed over a reader's domain back to the input's shape:
 * a broadcast read becomes a sum. */
static g_node *reduce_to(g_graph *g, g_node *grad, const g_node *in) {
    if (grad->cols != in->cols) grad = g_colgroupsum(g, grad, in->cols);
    if (grad->rows != in->rows) grad = g_groupsum(g, grad, in->rows);
    return grad;
}

/* Sum of all contributions, as few MAP nodes as possible. */
static g_node *total(diff_state *d, g_node *n) {
    g_graph *g = d->g;
    g_node *parts[G_MAX_IN];
    int k = 0;
    g_node *acc = NULL;
    for (contrib *c = d->adj[n->id]; c; c = c->next) {
        if (k == G_MAX_IN) {
            const vx_expr *e = vx_in(g, 0);
            for (int i = 1; i < k; i++) e = vx_bin(g, VX_ADD, e, vx_in(g, i));
            acc = g_map(g, e, k, parts, n->rows, n->cols);
            parts[0] = acc;
            k = 1;
        }
        parts[k++] = c->n;
    }
    if (k == 1) return parts[0];
    const vx_expr *e = vx_in(g, 0);
    for (int i = 1; i < k; i++) e = vx_bin(g, VX_ADD, e, vx_in(g, i));
    return g_map(g, e, k, parts, n->rows, n->cols);
}

/* An activation y = relu(x), tanh(x) or sigmoid(x) has its derivative as a
 * function of y: the backward pass reads y, which the next product's gradient
 * reads anyway, rather than x.  x then has one reader left, so plan.c fuses it
 * into y's loop (relu(x W + b) in one pass, in place over the product), and the
 * derivative costs no second tanh or sigmoid.  Bits as before: y is the value
 * the recomputation gave. */
static int backward_activation(diff_state *d, g_node *n, g_node *dy) {
    g_graph *g = d->g;
    const vx_expr *e = n->expr;
    if (n->nin != 1 || !n->in[0]->needs_grad || !e->a || e->a->op != VX_IN || dy->rows != n->rows ||
        dy->cols != n->cols)
        return 0;
    const vx_expr *y = vx_in(g, 0), *dydx;
    switch (e->op) {
    case VX_RELU: dydx = vx_un(g, VX_STEP, y); break;
    case VX_TANH: dydx = vx_bin(g, VX_SUB, vx_const(g, 1), vx_bin(g, VX_MUL, y, y)); break;
    case VX_SIGMOID: dydx = vx_bin(g, VX_MUL, y, vx_bin(g, VX_SUB, vx_const(g, 1), y)); break;
    default: return 0;
    }
    g_node *ins[2] = {n, dy};
    g_node *grad = g_map(g, vx_bin(g, VX_MUL, vx_in(g, 1), dydx), 2, ins, n->rows, n->cols);
    grad->label = n->in[0]->label;
    contribute(d, n->in[0], reduce_to(g, grad, n->in[0]));
    return 1;
}

static void backward_map(diff_state *d, g_node *n, g_node *dy) {
    g_graph *g = d->g;
    if (backward_activation(d, n, dy)) return;
    for (int j = 0; j < n->nin; j++) {
        g_node *in = n->in[j];
        if (!in->needs_grad) continue;
        /* A node read twice by one expression appears once in `in`, so one
         * derivative covers both uses. */
        int seen = 0;
        for (int k = 0; k < j; k++) seen |= n->in[k] == in;
        if (seen) continue;
        const vx_expr *de = vx_const(g, 0);
        for (int k = j; k < n->nin; k++)
            if (n->in[k] == in) de = vx_bin(g, VX_ADD, de, vx_diff(g, n->expr, k));
        if (de->op == VX_CONST && de->c == 0) continue;
        g_node *grad;
        if (de->op == VX_CONST && de->c == 1 && dy->rows == n->dom_rows && dy->cols == n->dom_cols) {
            grad = dy;
        } else {
            /* inputs: the forward inputs, then dy as $nin */
            g_node *ins[G_MAX_IN + 1];
            for (int k = 0; k < n->nin; k++) ins[k] = n->in[k];
            ins[n->nin] = dy;
            const vx_expr *e = vx_bin(g, VX_MUL, vx_in(g, n->nin), de);
            if (n->nin + 1 > G_MAX_IN) abort(); /* forward MAPs have at most G_MAX_IN - 1 inputs */
            grad = g_map(g, e, n->nin + 1, ins, n->dom_rows, n->dom_cols);
        }
        grad->label = in->label;
        contribute(d, in, reduce_to(g, grad, in));
    }
}

/* A product's forward operand, for a gradient product.  Window rows (im2col) are
 * made again from the image rather than kept from the forward pass: they are
 * k*k/stride^2 times the image, which backward keeps anyway, and copying them
 * again costs less than holding them from the forward pass to the backward
 * (fashion_conv: 3.2M floats of the 10M its step held at once). */
static g_node *operand_again(g_graph *g, g_node *x) {
    if (x->kind != G_IM2COL) return x;
    g_node *again = g_im2col(g, x->in[0], x->window);
    again->label = x->label;
    return again;
}

static void backward(diff_state *d, g_node *n, g_node *dy) {
    g_graph *g = d->g;
    switch (n->kind) {
    case G_PARAM:
    case G_DATA:
    case G_NOISE:
    case G_STATES:
    case G_KLWEIGHT:
    case G_SAMPLE:
    case G_SLICE: break;
    case G_MAP: backward_map(d, n, dy); break;
    case G_MATMUL: {
        /* C = op(A) op(B): dA = dC op(B)^T (or its transpose), dB = op(A)^T dC (or its transpose) */
        g_node *a = n->in[0], *b = n->in[1];
        int ta = n->trans_a, tb = n->trans_b;
        if (a->needs_grad) {
            g_node *b2 = operand_again(g, b);
            g_node *da = ta ? g_matmul(g, b2, tb, dy, 1) : g_matmul(g, dy, 0, b2, !tb);
            da->label = a->label;
            contribute(d, a, da);
        }
        if (b->needs_grad) {
            g_node *a2 = operand_again(g, a);
            g_node *db = tb ? g_matmul(g, dy, 1, a2, ta) : g_matmul(g, a2, !ta, dy, 0);
            db->label = b->label;
            contribute(d, b, db);
        }
        break;
    }
    case G_ROWSUM:
    case G_GROUPSUM: {
        /* Each element of the domain received dy of its row (or group): a broadcast read of dy. */
        g_node *grad = g_map1(g, vx_in(g, 0), dy);
        grad->rows = grad->dom_rows = n->dom_rows;
        grad->cols = grad->dom_cols = n->dom_cols;
        /* the reduction's own expression is still the identity: fusion comes later, in plan.c */
        contribute(d, n->in[0], reduce_to(g, grad, n->in[0]));
        break;
    }
    /* the convolutions' data movement is linear: each is the other's adjoint */
    case G_IM2COL: contribute(d, n->in[0], g_col2im(g, dy, n->window, n->in[0]->rows, n->in[0]->cols)); break;
    case G_COL2IM: contribute(d, n->in[0], g_im2col(g, dy, n->window)); break;
    case G_TRANSPOSE: contribute(d, n->in[0], g_transpose(g, dy, n->tq, n->tp, n->in[0]->rows, n->in[0]->cols)); break;
    case G_CONCAT: {
        int col = 0;
        for (int j = 0; j < n->nin; j++) {
            g_node *in = n->in[j];
            if (in->needs_grad) {
                g_node *s = g_new(g, G_SLICE, dy->rows, in->cols);
                s->col0 = col;
                s->in[s->nin++] = dy;
                contribute(d, in, reduce_to(g, s, in));
            }
            col += in->cols;
        }
        break;
    }
    }
}

void g_differentiate(g_graph *g) {
    int nfwd = g->nnodes;
    diff_state d = {g, calloc((size_t)nfwd, sizeof(contrib *))};
    if (!d.adj) abort();
    g_node *seed = g_map(g, vx_const(g, -1), 0, NULL, 1, 1);
    seed->label = "d loss";
    contribute(&d, g->out.objective, seed);
    for (int i = nfwd - 1; i >= 0; i--) {
        g_node *n = g->nodes[i];
        if (!n->needs_grad || !d.adj[n->id]) continue;
        g_node *dy = total(&d, n);
        if (n->kind == G_PARAM) {
            int p = (int)(n->param - g->model->params);
            if (g->param_grad[p]) { /* the same tensor used twice: sum the two */
                g_node *two[2] = {g->param_grad[p], dy};
                dy = g_map(g, vx_bin(g, VX_ADD, vx_in(g, 0), vx_in(g, 1)), 2, two, dy->rows, dy->cols);
            }
            g->param_grad[p] = dy;
            continue;
        }
        backward(&d, n, dy);
    }
    /* backward nodes never need a gradient of their own */
    for (int i = nfwd; i < g->nnodes; i++) g->nodes[i]->needs_grad = 0;
    free(d.adj);
}
