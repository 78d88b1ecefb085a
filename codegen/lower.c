/* Lowering networks: a network body of the checked model (its layers, activations and
 * arithmetic) becomes nodes of a graph (lower.h).  The estimators (estimators.c,
 * structured.c) and the deployment graphs (deploy.c) call it for every encoder, decoder,
 * prior and baseline network. */
#include "codegen/lower.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- lowering networks */

void env_bind(lowering *L, const char *name, g_node *n) {
    if (L->nenv == (int)(sizeof L->env / sizeof L->env[0])) abort(); /* the checker keeps to VAE_MAX_ASSIGNS */
    L->env[L->nenv].name = name;
    L->env[L->nenv].node = n;
    L->nenv++;
}

g_node *env_lookup(lowering *L, const char *name) {
    for (int i = L->nenv - 1; i >= 0; i--)
        if (strcmp(L->env[i].name, name) == 0) return L->env[i].node;
    return NULL;
}

g_node *param_node(lowering *L, int index, int rows) {
    const vae_param *p = &L->g->model->params[index]; /* the checker registered every parameter */
    g_node *n = g_new(L->g, G_PARAM, rows, (int)(p->size / rows));
    n->param = p;
    n->needs_grad = !L->detach_params;
    n->label = p->name;
    return n;
}


/* Convolutions keep their images pixel by pixel, [R*h*w, c] (node->pixels =
 * h*w), so that a window's pixels are contiguous for im2col and col2im and a
 * bias is a row broadcast; activations, arithmetic between images of the same
 * layout, and the next convolution take them as they are.  Everything else
 * reads the language's layout, channels first [R, c*h*w]: this is that view,
 * one transpose, made once per node. */
static g_node *standard(lowering *L, g_node *n) {
    if (!n || !n->pixels) return n;
    if (!n->standard) {
        n->standard = g_transpose(L->g, n, n->pixels, n->cols, n->rows / n->pixels, n->cols * n->pixels);
        n->standard->label = n->label;
    }
    return n->standard;
}

static g_node *same_layout(g_node *out, const g_node *in) {
    out->pixels = in->pixels;
    return out;
}

g_node *lower_node(lowering *L, const ast_expr *e) {
    value v = lower(L, e);
    return standard(L, v.node);
}

/* A tensor argument as lowered, pixel by pixel if it is an image so kept. */
static g_node *lower_any(lowering *L, const ast_expr *e) {
    value v = lower(L, e);
    return v.node;
}

value tensor(g_node *n) {
    value v = {n, 0};
    return v;
}

value scalar(double c) {
    value v = {NULL, c};
    return v;
}

/* dense(x, n): x [rows, in] times the weight [in, n], plus the bias */
static value lower_dense(lowering *L, const ast_expr *e) {
    g_graph *g = L->g;
    g_node *x = lower_node(L, e->args->value);
    g_node *w = param_node(L, e->param, x->cols);
    g_node *b = param_node(L, e->param + 1, 1);
    g_node *xw = g_matmul(g, x, 0, w, 0);
    xw->label = e->pname;
    g_node *y = g_map2(g, vx_bin(g, VX_ADD, vx_in(g, 0), vx_in(g, 1)), xw, b);
    y->label = e->pname;
    return tensor(y);
}

static value lower_conv(lowering *L, const ast_expr *e) {
    g_graph *g = L->g;
    /* conv2d: one row per window (im2col) times the weight [k*k*c, channels]
     * gives the output pixel by pixel.  conv_transpose2d, its adjoint: the
     * input's pixels as rows times the weight [c, k*k*channels] give each
     * pixel's contribution to a window of the output, added into place
     * (col2im).  Then the bias, one per channel: a row broadcast. */
    const ast_conv *cv = &e->conv;
    int transposed = e->layer == LAYER_CONV_TRANSPOSE2D, k = cv->kernel, in_pixels = cv->in_h * cv->in_w;
    g_node *x = lower_any(L, e->args->value);
    if (L->failed) return scalar(0);
    /* a channels-first image to pixels: one transpose, none for one channel
     * (the same floats), which im2col reads as it is */
    if (!x->pixels && (cv->in_c > 1 || transposed)) {
        x = g_transpose(g, x, cv->in_c, in_pixels, x->rows * in_pixels, cv->in_c);
        x->pixels = in_pixels;
    }
    g_node *w = param_node(L, e->param, transposed ? cv->in_c : k * k * cv->in_c);
    g_node *b = param_node(L, e->param + 1, 1);
    g_node *y;
    if (!transposed) {
        g_window win = {cv->in_c, cv->in_h, cv->in_w, k, cv->stride, cv->pad};
        g_node *cols = g_im2col(g, x, win);
        cols->label = e->pname;
        y = g_matmul(g, cols, 0, w, 0);
    } else {
        g_window win = {cv->out_c, cv->out_h, cv->out_w, k, cv->stride, cv->pad};
        g_node *prod = g_matmul(g, x, 0, w, 0);
        prod->label = e->pname;
        y = g_col2im(g, prod, win, prod->rows / in_pixels * cv->out_h * cv->out_w, cv->out_c);
    }
    y->label = e->pname;
    y->pixels = cv->out_h * cv->out_w;
    g_node *out = same_layout(g_map2(g, vx_bin(g, VX_ADD, vx_in(g, 0), vx_in(g, 1)), y, b), y);
    out->label = e->pname;
    return tensor(out);
}

static value lower_concat(lowering *L, const ast_expr *e) {
    g_graph *g = L->g;
    g_node *parts[G_MAX_IN];
    int n = 0, cols = 0, rows = 1;
    for (const ast_arg *a = e->args; a; a = a->next) {
        if (n == G_MAX_IN) {
            fprintf(L->err, "%s:%d:%d: error: concat() of more than %d tensors is not built yet\n",
                    e->loc.file, e->loc.line, e->loc.col, G_MAX_IN);
            L->failed = 1;
            return scalar(0);
        }
        parts[n] = lower_node(L, a->value);
        cols += parts[n]->cols;
        if (parts[n]->rows > rows) rows = parts[n]->rows;
        n++;
    }
    g_node *c = g_new(g, G_CONCAT, rows, cols);
    for (int i = 0; i < n; i++) g_add_input(c, parts[i]);
    return tensor(c);
}

/* An activation: one map of its expression over x, in x's layout. */
static value lower_activation(lowering *L, const ast_expr *e) {
    g_graph *g = L->g;
    g_node *x = lower_any(L, e->args->value);
    const vx_expr *a = vx_in(g, 0), *f;
    switch (e->layer) {
    case LAYER_RELU: f = vx_un(g, VX_RELU, a); break;
    case LAYER_TANH: f = vx_un(g, VX_TANH, a); break;
    case LAYER_SIGMOID: f = vx_un(g, VX_SIGMOID, a); break;
    case LAYER_SOFTPLUS: f = vx_un(g, VX_SOFTPLUS, a); break;
    case LAYER_EXP: f = vx_un(g, VX_EXP, a); break;
    case LAYER_ELU: f = vx_select(g, a, a, vx_bin(g, VX_SUB, vx_un(g, VX_EXP, a), vx_const(g, 1))); break;
    default: { /* LAYER_LEAKY_RELU */
        double slope = e->args->next ? e->args->next->value->num : 0.01;
        f = vx_select(g, a, a, vx_bin(g, VX_MUL, vx_const(g, slope), a));
    }
    }
    return tensor(same_layout(g_map1(g, f, x), x));
}

/* Dispatches on the layer the checker recorded (parser/check_expr.c LAYERS). */
static value lower_call(lowering *L, const ast_expr *e) {
    switch (e->layer) {
    case LAYER_DENSE: return lower_dense(L, e);
    case LAYER_CONV2D:
    case LAYER_CONV_TRANSPOSE2D: return lower_conv(L, e);
    case LAYER_RELU:
    case LAYER_TANH:
    case LAYER_SIGMOID:
    case LAYER_SOFTPLUS:
    case LAYER_ELU:
    case LAYER_EXP:
    case LAYER_LEAKY_RELU: return lower_activation(L, e);
    case LAYER_CONCAT: return lower_concat(L, e);
    case LAYER_ONEHOT: /* categorical latents are bound to their one-hot rows already */
        return tensor(env_lookup(L, e->args->value->str));
    case LAYER_RESHAPE:
    case LAYER_FLATTEN: /* stored flat per example: nothing moves */
        return tensor(lower_node(L, e->args->value));
    case LAYER_NONE: break;
    }
    fprintf(L->err, "%s:%d:%d: error: %s() is not built yet in this version of vaec\n", e->loc.file, e->loc.line,
            e->loc.col, e->str);
    L->failed = 1;
    return scalar(0);
}

value lower(lowering *L, const ast_expr *e) {
    g_graph *g = L->g;
    if (L->failed) return scalar(0);
    switch (e->kind) {
    case AST_NUM: return scalar(e->num);
    case AST_STR: break; /* the checker refused it */
    case AST_NAME: return tensor(env_lookup(L, e->str));
    case AST_CALL: return lower_call(L, e);
    case AST_PARAM: return tensor(param_node(L, e->param, 1));
    case AST_NEG: {
        value v = lower(L, e->lhs);
        if (!v.node) return scalar(-v.c);
        return tensor(same_layout(g_map1(g, vx_un(g, VX_NEG, vx_in(g, 0)), v.node), v.node));
    }
    case AST_BINOP: {
        value l = lower(L, e->lhs), r = lower(L, e->rhs);
        if (L->failed) return scalar(0);
        vx_op op = e->op == '+' ? VX_ADD : e->op == '-' ? VX_SUB : e->op == '*' ? VX_MUL : VX_DIV;
        if (!l.node && !r.node) {
            const vx_expr *c = vx_bin(g, op, vx_const(g, l.c), vx_const(g, r.c));
            return scalar(c->c);
        }
        if (!l.node) return tensor(same_layout(g_map1(g, vx_bin(g, op, vx_const(g, l.c), vx_in(g, 0)), r.node), r.node));
        if (!r.node) return tensor(same_layout(g_map1(g, vx_bin(g, op, vx_in(g, 0), vx_const(g, r.c)), l.node), l.node));
        /* two images pixel by pixel with the same rows: elementwise as they are */
        if (l.node->pixels && r.node->pixels && l.node->rows == r.node->rows)
            return tensor(same_layout(g_map2(g, vx_bin(g, op, vx_in(g, 0), vx_in(g, 1)), l.node, r.node), l.node));
        return tensor(g_map2(g, vx_bin(g, op, vx_in(g, 0), vx_in(g, 1)), standard(L, l.node), standard(L, r.node)));
    }
    }
    L->failed = 1;
    return scalar(0);
}

/* Runs a network body in the given environment; returns the node of the
 * distribution argument `a` (and `b`). */
void lower_network(lowering *L, const ast_network *n, const vae_dist *d, g_node **a, g_node **b) {
    for (const ast_assign *s = n->body; s; s = s->next) env_bind(L, s->name, lower_any(L, s->value));
    *a = d->a ? lower_node(L, d->a) : NULL;
    if (b) *b = d->b ? lower_node(L, d->b) : NULL;
}
