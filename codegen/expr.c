/* Elementwise expressions: constructors that simplify as they build, and
 * symbolic differentiation (the backward rule of every elementwise operation). */
#include "codegen/graph.h"

#include <math.h>

int vx_arity(vx_op op) {
    switch (op) {
    case VX_CONST:
    case VX_IN: return 0;
    case VX_ADD:
    case VX_SUB:
    case VX_MUL:
    case VX_DIV:
    case VX_MAX: return 2;
    case VX_SELECT: return 3;
    default: return 1;
    }
}

const char *vx_name(vx_op op) {
    static const char *const names[] = {"const", "in", "neg", "exp", "log", "log1p", "tanh", "sigmoid",
                                        "softplus", "relu", "sqrt", "step", "+", "-", "*", "/", "max", "select"};
    return names[op];
}

static vx_expr *vx_new(g_graph *g, vx_op op) {
    vx_expr *e = vae_pool_alloc(g->pool, sizeof *e);
    e->op = op;
    return e;
}

const vx_expr *vx_const(g_graph *g, double c) {
    vx_expr *e = vx_new(g, VX_CONST);
    e->c = c;
    return e;
}

const vx_expr *vx_in(g_graph *g, int i) {
    vx_expr *e = vx_new(g, VX_IN);
    e->in = i;
    return e;
}

static int is_const(const vx_expr *e, double c) { return e->op == VX_CONST && e->c == c; }

static double fold1(vx_op op, double a) {
    switch (op) {
    case VX_NEG: return -a;
    case VX_EXP: return exp(a);
    case VX_LOG: return log(a);
    case VX_LOG1P: return log1p(a);
    case VX_TANH: return tanh(a);
    case VX_SIGMOID: return 1 / (1 + exp(-a));
    case VX_SOFTPLUS: return a > 0 ? a + log1p(exp(-a)) : log1p(exp(a));
    case VX_RELU: return a > 0 ? a : 0;
    case VX_SQRT: return sqrt(a);
    case VX_STEP: return a > 0;
    default: return NAN;
    }
}

const vx_expr *vx_un(g_graph *g, vx_op op, const vx_expr *a) {
    if (a->op == VX_CONST) return vx_const(g, fold1(op, a->c));
    if (op == VX_NEG && a->op == VX_NEG) return a->a;
    vx_expr *e = vx_new(g, op);
    e->a = a;
    return e;
}

const vx_expr *vx_bin(g_graph *g, vx_op op, const vx_expr *a, const vx_expr *b) {
    if (a->op == VX_CONST && b->op == VX_CONST) {
        switch (op) {
        case VX_ADD: return vx_const(g, a->c + b->c);
        case VX_SUB: return vx_const(g, a->c - b->c);
        case VX_MUL: return vx_const(g, a->c * b->c);
        case VX_DIV: return vx_const(g, a->c / b->c);
        case VX_MAX: return vx_const(g, a->c > b->c ? a->c : b->c);
        default: break;
        }
    }
    switch (op) {
    case VX_ADD:
        if (is_const(a, 0)) return b;
        if (is_const(b, 0)) return a;
        if (b->op == VX_NEG) return vx_bin(g, VX_SUB, a, b->a);
        break;
    case VX_SUB:
        if (is_const(b, 0)) return a;
        if (is_const(a, 0)) return vx_un(g, VX_NEG, b);
        break;
    case VX_MUL:
        if (is_const(a, 0) || is_const(b, 0)) return vx_const(g, 0);
        if (is_const(a, 1)) return b;
        if (is_const(b, 1)) return a;
        if (is_const(a, -1)) return vx_un(g, VX_NEG, b);
        if (is_const(b, -1)) return vx_un(g, VX_NEG, a);
        break;
    case VX_DIV:
        if (is_const(a, 0)) return vx_const(g, 0);
        if (is_const(b, 1)) return a;
        break;
    default: break;
    }
    vx_expr *e = vx_new(g, op);
    e->a = a;
    e->b = b;
    return e;
}

const vx_expr *vx_select(g_graph *g, const vx_expr *s, const vx_expr *a, const vx_expr *b) {
    if (s->op == VX_CONST) return s->c > 0 ? a : b;
    if (a->op == VX_CONST && b->op == VX_CONST && a->c == b->c) return a;
    vx_expr *e = vx_new(g, VX_SELECT);
    e->s = s;
    e->a = a;
    e->b = b;
    return e;
}

int vx_uses(const vx_expr *e, int i) {
    if (!e) return 0;
    if (e->op == VX_IN) return e->in == i;
    return vx_uses(e->a, i) || vx_uses(e->b, i) || vx_uses(e->s, i);
}

#define C(x) vx_const(g, (x))
#define U(op, x) vx_un(g, (op), (x))
#define B(op, x, y) vx_bin(g, (op), (x), (y))

/* d e / d in_i by the chain rule; each case is one backward rule. */
const vx_expr *vx_diff(g_graph *g, const vx_expr *e, int i) {
    if (!vx_uses(e, i)) return C(0);
    const vx_expr *a = e->a, *b = e->b;
    const vx_expr *da = a ? vx_diff(g, a, i) : NULL;
    switch (e->op) {
    case VX_CONST: return C(0);
    case VX_IN: return C(e->in == i);
    case VX_NEG: return U(VX_NEG, da);
    case VX_EXP: return B(VX_MUL, da, e);                                /* exp' = exp */
    case VX_LOG: return B(VX_DIV, da, a);                                /* log' = 1/a */
    case VX_LOG1P: return B(VX_DIV, da, B(VX_ADD, C(1), a));
    case VX_TANH: return B(VX_MUL, da, B(VX_SUB, C(1), B(VX_MUL, e, e))); /* 1 - tanh^2 */
    case VX_SIGMOID: return B(VX_MUL, da, B(VX_MUL, e, B(VX_SUB, C(1), e)));
    case VX_SOFTPLUS: return B(VX_MUL, da, U(VX_SIGMOID, a));
    case VX_RELU: return B(VX_MUL, da, U(VX_STEP, a));
    case VX_SQRT: return B(VX_DIV, da, B(VX_MUL, C(2), e));
    case VX_STEP: return C(0);
    case VX_ADD: return B(VX_ADD, da, vx_diff(g, b, i));
    case VX_SUB: return B(VX_SUB, da, vx_diff(g, b, i));
    case VX_MUL: return B(VX_ADD, B(VX_MUL, da, b), B(VX_MUL, a, vx_diff(g, b, i)));
    case VX_DIV: {
        const vx_expr *db = vx_diff(g, b, i);
        /* (a/b)' = a'/b - (a/b) b'/b */
        return B(VX_SUB, B(VX_DIV, da, b), B(VX_DIV, B(VX_MUL, e, db), b));
    }
    case VX_MAX: return vx_select(g, B(VX_SUB, a, b), da, vx_diff(g, b, i));
    case VX_SELECT: return vx_select(g, e->s, da, vx_diff(g, b, i));
    }
    return C(0);
}

void vx_print(FILE *out, const vx_expr *e) {
    switch (e->op) {
    case VX_CONST: fprintf(out, "%.9g", e->c); return;
    case VX_IN: fprintf(out, "$%d", e->in); return;
    case VX_ADD:
    case VX_SUB:
    case VX_MUL:
    case VX_DIV:
        fputc('(', out);
        vx_print(out, e->a);
        fprintf(out, " %s ", vx_name(e->op));
        vx_print(out, e->b);
        fputc(')', out);
        return;
    case VX_SELECT:
        fputs("(", out);
        vx_print(out, e->s);
        fputs(" > 0 ? ", out);
        vx_print(out, e->a);
        fputs(" : ", out);
        vx_print(out, e->b);
        fputs(")", out);
        return;
    default:
        fprintf(out, "%s(", vx_name(e->op));
        vx_print(out, e->a);
        if (e->b) {
            fputs(", ", out);
            vx_print(out, e->b);
        }
        fputc(')', out);
    }
}
