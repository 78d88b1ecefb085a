/* Reverse-mode differentiation of the graph, at compile time: the backward
 * pass is appended to the same graph as ordinary nodes, one rule per node
 * kind (elementwise rules live in expr.c: vx_diff).  The seed is
 * d loss / d objective = -1, since training minimises loss = -objective.
 *
 * Every node kind the backward pass creates has a rule of its own here, so the
 * backward graph can be differentiated again: a second pass (variance_pass)
 * gives the parameters of a control variate (RELAX, REBAR) the gradient of the
 * squared norm of the first pass's encoder gradient, a derivative of a derived
 * gradient, derived at compile time. */
#include "codegen/graph.h"

#include <stdlib.h>

typedef struct contrib {
    g_node *n;
    struct contrib *next;
} contrib;

typedef struct {
    g_graph *g;
    contrib **adj;              /* gradient contributions per node id, for the nodes before the pass */
    const unsigned char *live;  /* per node id: this pass differentiates it (it depends on what the
                                   pass differentiates for, along no stop-gradient) */
} diff_state;

static int live(const diff_state *d, const g_node *n) { return d->live[n->id]; }

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
    if (n->nin != 1 || !live(d, n->in[0]) || !e->a || e->a->op != VX_IN || dy->rows != n->rows ||
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
        if (!live(d, in)) continue;
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
            if (n->nin + 1 <= G_MAX_IN) {
                grad = g_map(g, e, n->nin + 1, ins, n->dom_rows, n->dom_cols);
            } else { /* a backward MAP read by a second pass: no room for dy, so the derivative is a map of its own */
                g_node *dmap = g_map(g, de, n->nin, ins, n->dom_rows, n->dom_cols);
                grad = g_map2(g, vx_bin(g, VX_MUL, vx_in(g, 0), vx_in(g, 1)), dy, dmap);
                grad->rows = grad->dom_rows = n->dom_rows;
                grad->cols = grad->dom_cols = n->dom_cols;
            }
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

/* A slice's adjoint puts dy back among zeros at its columns.  Slices come from a
 * concat's backward rule (a second pass differentiates them); a forward slice has
 * no gradient to carry (deploy.c's, in graphs without a backward pass). */
static void backward_slice(diff_state *d, g_node *n, g_node *dy) {
    g_graph *g = d->g;
    g_node *in = n->in[0], *parts[3];
    int k = 0, rest = in->cols - n->col0 - n->cols;
    if (n->col0 > 0) parts[k++] = g_map(g, vx_const(g, 0), 0, NULL, dy->rows, n->col0);
    parts[k++] = dy;
    if (rest > 0) parts[k++] = g_map(g, vx_const(g, 0), 0, NULL, dy->rows, rest);
    g_node *padded = dy;
    if (k > 1) {
        padded = g_new(g, G_CONCAT, dy->rows, in->cols);
        for (int j = 0; j < k; j++) g_add_input(padded, parts[j]);
    }
    contribute(d, in, reduce_to(g, padded, in));
}

static void backward(diff_state *d, g_node *n, g_node *dy) {
    g_graph *g = d->g;
    switch (n->kind) {
    case G_PARAM:
    case G_DATA:
    case G_NOISE:
    case G_STATES:
    case G_KLWEIGHT:
    case G_SAMPLE: break;
    case G_SLICE: backward_slice(d, n, dy); break;
    case G_MAP: backward_map(d, n, dy); break;
    case G_MATMUL: {
        /* C = op(A) op(B): dA = dC op(B)^T (or its transpose), dB = op(A)^T dC (or its transpose) */
        g_node *a = n->in[0], *b = n->in[1];
        int ta = n->trans_a, tb = n->trans_b;
        if (live(d, a)) {
            g_node *b2 = operand_again(g, b);
            g_node *da = ta ? g_matmul(g, b2, tb, dy, 1) : g_matmul(g, dy, 0, b2, !tb);
            da->label = a->label;
            contribute(d, a, da);
        }
        if (live(d, b)) {
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
            if (live(d, in)) {
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

/* The reverse sweep over nodes [0, count), from the contributions seeded: each parameter's
 * gradient (a tensor used twice gets the sum of the two) lands in grads[param index]. */
static void sweep(diff_state *d, int count, g_node **grads) {
    g_graph *g = d->g;
    for (int i = count - 1; i >= 0; i--) {
        g_node *n = g->nodes[i];
        if (!d->live[i] || !d->adj[i]) continue;
        g_node *dy = total(d, n);
        if (n->kind == G_PARAM) {
            int p = (int)(n->param - g->model->params);
            if (grads[p]) { /* the same tensor used twice: sum the two */
                g_node *two[2] = {grads[p], dy};
                dy = g_map(g, vx_bin(g, VX_ADD, vx_in(g, 0), vx_in(g, 1)), 2, two, dy->rows, dy->cols);
            }
            grads[p] = dy;
            continue;
        }
        backward(d, n, dy);
    }
}

/* V = the sum over the parameters marked variance_of of their squared gradients, [1, 1];
 * NULL when none has one. */
static g_node *squared_norm(g_graph *g) {
    g_node *v = NULL;
    for (int p = 0; p < g->model->nparams; p++) {
        g_node *grad = g->param_grad[p];
        if (!g->variance_of[p] || !grad) continue;
        g_node *s = g_rowsum(g, g_map1(g, vx_bin(g, VX_MUL, vx_in(g, 0), vx_in(g, 0)), grad));
        if (s->rows > 1) s = g_groupsum(g, s, 1);
        v = v ? g_map2(g, vx_bin(g, VX_ADD, vx_in(g, 0), vx_in(g, 1)), v, s) : s;
    }
    if (v) v->label = "squared gradient";
    return v;
}

/* The second pass: every parameter marked variance_tuned (a control variate's) gets
 * d V / d param, V = squared_norm, by differentiating the graph again, backward nodes
 * included.  A node depends on a tuned parameter unless it is a stop-gradient (detached,
 * in either pass): the first pass's gradient is a function of the control's values and
 * of its derivatives, and this pass follows both. */
static void variance_pass(g_graph *g) {
    g_node *v = squared_norm(g);
    if (!v) return;
    int count = g->nnodes;
    unsigned char *mark = calloc((size_t)count, 1);
    diff_state d = {g, calloc((size_t)count, sizeof(contrib *)), mark};
    if (!mark || !d.adj) abort();
    for (int i = 0; i < count; i++) {
        const g_node *n = g->nodes[i];
        if (n->kind == G_PARAM) mark[i] = (unsigned char)g->variance_tuned[n->param - g->model->params];
        else if (!n->stop)
            for (int j = 0; j < n->nin; j++) mark[i] |= mark[n->in[j]->id];
    }
    g_node *seed = g_map(g, vx_const(g, 1), 0, NULL, 1, 1);
    seed->label = "d squared gradient";
    contribute(&d, v, seed);
    g_node *grads[VAE_MAX_PARAMS] = {0};
    sweep(&d, count, grads);
    for (int p = 0; p < g->model->nparams; p++)
        if (g->variance_tuned[p]) g->param_grad[p] = grads[p];
    free(d.adj);
    free(mark);
}

void g_differentiate(g_graph *g) {
    int nfwd = g->nnodes;
    unsigned char *mark = malloc((size_t)(nfwd > 0 ? nfwd : 1));
    diff_state d = {g, calloc((size_t)(nfwd > 0 ? nfwd : 1), sizeof(contrib *)), mark};
    if (!d.adj || !mark) abort();
    for (int i = 0; i < nfwd; i++) mark[i] = (unsigned char)(g->nodes[i]->needs_grad != 0);
    g_node *seed = g_map(g, vx_const(g, -1), 0, NULL, 1, 1);
    seed->label = "d loss";
    contribute(&d, g->out.objective, seed);
    sweep(&d, nfwd, g->param_grad);
    free(d.adj);
    free(mark);
    variance_pass(g);
    /* backward nodes never need a gradient of their own */
    for (int i = nfwd; i < g->nnodes; i++) g->nodes[i]->needs_grad = 0;
}
