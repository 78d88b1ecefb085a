/* The checker's expressions and layers: shapes per example, the parameters that each call site
 * of a layer owns (their names and fixed order), names and their bindings.
 *
 * Shapes are per example: `h = relu(dense(x, 400))` has shape [400]; the batch
 * and the samples are a leading dimension that the code generator adds. */
#include "parser/check_internal.h"

#include "parser/limits.h"
#include "parser/settings.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Values of a shape in 64 bits, saturated above VAE_MAX_VALUES (parser/limits.h). */
long long chk_shape_values(shape s) {
    long long n = 1;
    for (int i = 0; i < s.nd; i++) n = vae_size_mul(n, s.d[i]);
    return n;
}

/* The values of a shape that chk_fits(): every shape the checker passes on does. */
int chk_shape_size(shape s) { return (int)chk_shape_values(s); }

/* A count for a message: exact while a double holds it exactly. */
const char *chk_count_str(checker *c, double n) {
    return n < 9007199254740992.0 ? vae_pool_printf(c->pool, "%.0f", n) : vae_pool_printf(c->pool, "%.3g", n);
}

/* Whether `n` values (one example's, or a parameter tensor's) are within what
 * vaec can index; if not, says so at loc: "WHAT: N UNIT, more than ...". */
int chk_fits(checker *c, vae_loc loc, double n, const char *what, const char *unit) {
    if (n <= (double)VAE_MAX_VALUES) return 1;
    vae_error(c->src, loc, "%s: %s %s, more than the " VAE_MAX_VALUES_WORDS " that vaec can index", what,
              chk_count_str(c, n), unit);
    return 0;
}

double chk_shape_exact(shape s) {
    double n = 1;
    for (int i = 0; i < s.nd; i++) n *= s.d[i];
    return n;
}

/* Records the values one example has in a tensor the model makes: the graph
 * builder multiplies the largest by the batch and the samples (g_build). */
void chk_note_values(checker *c, long long n) {
    if (n > c->m->max_example_values) c->m->max_example_values = (long)n;
}

int chk_shape_eq(shape a, shape b) {
    if (a.nd != b.nd) return 0;
    for (int i = 0; i < a.nd; i++)
        if (a.d[i] != b.d[i]) return 0;
    return 1;
}

const char *chk_shape_str(checker *c, shape s) {
    if (s.nd < 0) return "?";
    char buf[160];
    int n = snprintf(buf, sizeof buf, "[");
    for (int i = 0; i < s.nd; i++) n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%d", i ? ", " : "", s.d[i]);
    snprintf(buf + n, sizeof buf - (size_t)n, "]");
    return s.nd == 0 ? "a scalar" : vae_pool_strdup(c->pool, buf);
}

shape chk_shape_of_ast(const ast_shape *s) {
    shape r = {s->ndims, {0}};
    memcpy(r.d, s->dims, sizeof(int) * (size_t)s->ndims);
    return r;
}

shape chk_vec(int n) {
    shape r = {1, {n}};
    return r;
}


/* ---------------------------------------------------------------- parameters */

static const char *fresh_param_name(checker *c, const char *base) {
    for (struct used_name *u = c->used; u; u = u->next)
        if (strcmp(u->base, base) == 0) return vae_pool_printf(c->pool, "%s#%d", base, ++u->count);
    struct used_name *u = vae_pool_alloc(c->pool, sizeof *u);
    u->base = base;
    u->count = 1;
    u->next = c->used;
    c->used = u;
    return base;
}

/* Adds a parameter tensor and returns its index in m->params; refuses one, or a
 * total, that vaec cannot index (returns -1). */
int chk_add_param(checker *c, vae_loc loc, const char *name, shape s, float bound) {
    vae_model *m = c->m;
    if (m->nparams == VAE_MAX_PARAMS) {
        ERR(loc, "too many parameter tensors (at most %d)", VAE_MAX_PARAMS);
        return -1;
    }
    if (!chk_fits(c, loc, chk_shape_exact(s), vae_pool_printf(c->pool, "parameter '%s' %s", name, chk_shape_str(c, s)), "values"))
        return -1;
    if (c->params_too_many) return -1;
    if (!chk_fits(c, loc, (double)m->param_floats + chk_shape_exact(s),
              vae_pool_printf(c->pool, "with '%s' the model's parameters", name), "values")) {
        c->params_too_many = 1;
        return -1;
    }
    vae_param *p = &m->params[m->nparams++];
    p->name = name;
    p->ndims = s.nd;
    memcpy(p->dims, s.d, sizeof p->dims);
    p->size = chk_shape_size(s);
    p->offset = m->param_floats;
    p->init_bound = bound;
    p->owner = c->owner;
    p->net = c->net;
    m->param_floats += p->size;
    return m->nparams - 1;
}

/* ---------------------------------------------------------------- expressions */

int chk_int_literal(const ast_expr *e, int *out) {
    if (e->kind == AST_NUM && e->is_int) { /* the lexer's ints have at most 9 digits */
        *out = (int)e->num;
        return 1;
    }
    return 0;
}

int chk_count_args(const ast_arg *a) {
    int n = 0;
    for (; a; a = a->next) n++;
    return n;
}

static const ast_arg *nth_arg(const ast_arg *a, int i) {
    while (a && i--) a = a->next;
    return a;
}

shape chk_expr(checker *c, ast_expr *e);

/* "unknown name", or why a known name is out of reach in this network. */
void chk_unknown_name(checker *c, const ast_expr *e) {
    const vae_model *m = c->m;
    if (m->structured && (chk_find_latent((vae_model *)m, e->str) || (m->data && !strcmp(m->data->name, e->str)))) {
        ERR(e->loc, "'%s' is not in this network's given list (in a structured model a network reads only the names "
                    "after '|' in its header)", e->str);
        return;
    }
    for (int i = 0; i < m->nlatents; i++)
        if (strcmp(m->latents[i].name, e->str) == 0) {
            ERR(e->loc, "latent '%s' is not an input of this network (name it after '|' in the header)", e->str);
            return;
        }
    if (m->data && strcmp(m->data->name, e->str) == 0) {
        ERR(e->loc, "the data '%s' is not an input of this network", e->str);
        return;
    }
    ERR(e->loc, "unknown name '%s'", e->str);
}

/* Every argument of a layer is positional; reports a named one. */
static int positional_only(checker *c, const ast_expr *e) {
    for (const ast_arg *a = e->args; a; a = a->next)
        if (a->name) {
            ERR(a->loc, "%s() takes no named argument '%s'", e->str, a->name);
            return 0;
        }
    return 1;
}

static int want_args(checker *c, const ast_expr *e, int lo, int hi) {
    int n = chk_count_args(e->args);
    if (n < lo || n > hi) {
        if (lo == hi)
            ERR(e->loc, "%s() takes %d argument%s, got %d", e->str, lo, lo == 1 ? "" : "s", n);
        else
            ERR(e->loc, "%s() takes %d to %d arguments, got %d", e->str, lo, hi, n);
        return 0;
    }
    return positional_only(c, e);
}

static shape tensor_arg(checker *c, const ast_expr *call, int i) {
    ast_arg *a = (ast_arg *)nth_arg(call->args, i);
    shape s = chk_expr(c, a->value);
    if (s.nd == 0) {
        ERR(a->loc, "%s() expects a tensor here, not a scalar", call->str);
        return UNKNOWN;
    }
    if (s.nd > 0) chk_note_values(c, chk_shape_values(s));
    return s;
}

/* conv2d(x, channels, kernel, stride: s, pad: p) and conv_transpose2d(...):
 * x is [C, H, W] (channels first, as PyTorch).  The weight is laid out as
 * the product reads it, what one output value sums over first (as dense's
 * [in, out]): [K, K, C, channels] for conv2d (TensorFlow's HWIO), and
 * [C, K, K, channels] for the transposed convolution (each input channel
 * spreads into a K x K window of every output channel). */
/* A convolution's arguments: how many positional, and the named stride: and pad:. */
typedef struct {
    int positional, ok, stride, pad, have_stride, have_pad;
    vae_loc pad_loc;
} conv_args;

/* Counts the positional arguments and reads stride: and pad:; 0 after an error that ends the
 * check (a positional argument after the named ones), a->ok 0 after one that lets it go on. */
static int read_conv_args(checker *c, const ast_expr *e, conv_args *a) {
    const char *f = e->str;
    *a = (conv_args){0, 1, 1, 0, 0, 0, e->loc};
    for (const ast_arg *g = e->args; g; g = g->next) {
        if (!g->name) {
            if (a->have_stride || a->have_pad) {
                ERR(g->loc, "%s(): a positional argument after the named ones", f);
                return 0;
            }
            a->positional++;
            continue;
        }
        int *slot = strcmp(g->name, "stride") == 0 ? &a->stride : strcmp(g->name, "pad") == 0 ? &a->pad : NULL;
        int *seen = slot == &a->stride ? &a->have_stride : &a->have_pad;
        if (!slot) {
            ERR(g->loc, "%s() takes no named argument '%s' (it takes stride: and pad:)", f, g->name);
            a->ok = 0;
            continue;
        }
        if (*seen) {
            ERR(g->loc, "%s(): '%s' given twice", f, g->name);
            a->ok = 0;
            continue;
        }
        *seen = 1;
        if (slot == &a->pad) a->pad_loc = g->value->loc;
        if (!chk_int_literal(g->value, slot) || *slot < (slot == &a->stride ? 1 : 0)) {
            ERR(g->value->loc, "%s(): '%s' must be %s integer", f, g->name,
                slot == &a->stride ? "a positive" : "a non-negative");
            a->ok = 0;
        }
    }
    return 1;
}

/* The output's height and width in g (in_*, out_c, kernel, stride and pad filled in); 0 after an error:
 * none, or more values per example than vaec indexes. */
static int conv_output(checker *c, const ast_expr *e, ast_conv *g) {
    const char *f = e->str;
    int transposed = e->layer == LAYER_CONV_TRANSPOSE2D, k = g->kernel, stride = g->stride, pad = g->pad;
    /* sizes in 64 bits: a stride or kernel of any int must not overflow before it is refused */
    long long out_h, out_w;
    if (transposed) {
        out_h = (long long)(g->in_h - 1) * stride - 2LL * pad + k;
        out_w = (long long)(g->in_w - 1) * stride - 2LL * pad + k;
    } else {
        out_h = g->in_h + 2LL * pad < k ? 0 : (g->in_h + 2LL * pad - k) / stride + 1;
        out_w = g->in_w + 2LL * pad < k ? 0 : (g->in_w + 2LL * pad - k) / stride + 1;
    }
    if (out_h < 1 || out_w < 1) {
        ERR(e->loc, "%s() of a %d x %d image with kernel %d, stride %d and padding %d leaves no output", f, g->in_h,
            g->in_w, k, stride, pad);
        return 0;
    }
    /* per example: the output, the rows of windows the product reads (conv2d) or writes
     * (transposed), and the weight */
    int channels = g->out_c;
    double windows = transposed ? (double)g->in_h * g->in_w * k * k * channels : (double)out_h * out_w * k * k * g->in_c;
    if ((double)out_h * out_w * channels > 1 << 24 || windows > 1 << 24 || (double)k * k * g->in_c * channels > 1 << 26) {
        ERR(e->loc, "%s() is too large (more than 2^24 values per example, or a weight of more than 2^26)", f);
        return 0;
    }
    chk_note_values(c, (long long)windows);
    chk_note_values(c, out_h * out_w * channels);
    g->out_h = (int)out_h;
    g->out_w = (int)out_w;
    return 1;
}

/* The weight and bias of a checked convolution, named after where it is. */
static void add_conv_params(checker *c, ast_expr *e) {
    const ast_conv *g = &e->conv;
    int transposed = e->layer == LAYER_CONV_TRANSPOSE2D, k = g->kernel, channels = g->out_c;
    const char *name = fresh_param_name(c, vae_pool_printf(c->pool, "%s.%s", c->prefix, c->target));
    e->pname = name;
    /* PyTorch's default initialisation: uniform(+-1/sqrt(fan_in)), fan_in being
     * what one output value sums over (for the transposed convolution PyTorch
     * takes it from the weight's second dimension, channels * k * k) */
    int fan_in = transposed ? channels * k * k : g->in_c * k * k;
    float bound = 1.0f / sqrtf((float)fan_in);
    shape w = transposed ? (shape){4, {g->in_c, k, k, channels}} : (shape){4, {k, k, g->in_c, channels}};
    e->param = chk_add_param(c, e->loc, vae_pool_printf(c->pool, "%s.weight", name), w, bound);
    chk_add_param(c, e->loc, vae_pool_printf(c->pool, "%s.bias", name), chk_vec(channels), bound);
}

static shape check_conv(checker *c, ast_expr *e) {
    const char *f = e->str;
    conv_args a;
    if (!read_conv_args(c, e, &a)) return UNKNOWN;
    if (a.positional != 3) {
        ERR(e->loc, "%s() takes a tensor, a number of channels and a kernel size (then stride: and pad:), got %d "
                    "positional argument%s", f, a.positional, a.positional == 1 ? "" : "s");
        return UNKNOWN;
    }
    shape in = tensor_arg(c, e, 0);
    int channels = 0, k = 0, ok = a.ok;
    const ast_arg *ca = nth_arg(e->args, 1), *ka = nth_arg(e->args, 2);
    if (!chk_int_literal(ca->value, &channels) || channels < 1) {
        ERR(ca->loc, "%s() needs a positive integer number of channels", f);
        ok = 0;
    }
    if (!chk_int_literal(ka->value, &k) || k < 1) {
        ERR(ka->loc, "%s() needs a positive integer kernel size", f);
        ok = 0;
    }
    if (in.nd < 0 || !ok) return UNKNOWN;
    if (in.nd != 3) {
        ERR(e->args->loc, "%s() expects an image [channels, height, width], got shape %s (reshape it first)", f,
            chk_shape_str(c, in));
        return UNKNOWN;
    }
    if (a.pad >= k) {
        ERR(a.pad_loc, "%s(): padding %d is not smaller than the kernel (%d)", f, a.pad, k);
        return UNKNOWN;
    }
    ast_conv g = {in.d[0], in.d[1], in.d[2], channels, 0, 0, k, a.stride, a.pad};
    if (!conv_output(c, e, &g)) return UNKNOWN;
    e->conv = g;
    add_conv_params(c, e);
    return (shape){3, {channels, g.out_h, g.out_w}};
}

static shape check_dense(checker *c, ast_expr *e) {
    if (!want_args(c, e, 2, 2)) return UNKNOWN;
    shape in = tensor_arg(c, e, 0);
    int n;
    const ast_arg *na = nth_arg(e->args, 1);
    if (!chk_int_literal(na->value, &n) || n < 1) {
        ERR(na->loc, "dense() needs a positive integer number of units");
        return UNKNOWN;
    }
    if (in.nd < 0) return UNKNOWN;
    if (in.nd != 1) {
        ERR(e->args->loc, "dense() expects a vector, got shape %s (flatten it first)", chk_shape_str(c, in));
        return UNKNOWN;
    }
    const char *base = vae_pool_printf(c->pool, "%s.%s", c->prefix, c->target);
    const char *name = fresh_param_name(c, base);
    e->pname = name;
    shape w = {2, {in.d[0], n}};
    float bound = 1.0f / sqrtf((float)in.d[0]); /* PyTorch's nn.Linear default */
    e->param = chk_add_param(c, e->loc, vae_pool_printf(c->pool, "%s.weight", name), w, bound);
    chk_add_param(c, e->loc, vae_pool_printf(c->pool, "%s.bias", name), chk_vec(n), bound);
    return chk_vec(n);
}

/* relu(x), tanh(x), ...: the shape of x */
static shape check_elementwise(checker *c, ast_expr *e) {
    if (!want_args(c, e, 1, 1)) return UNKNOWN;
    return tensor_arg(c, e, 0);
}

static shape check_leaky_relu(checker *c, ast_expr *e) {
    if (!want_args(c, e, 1, 2)) return UNKNOWN;
    const ast_arg *a = nth_arg(e->args, 1);
    if (a && a->value->kind != AST_NUM) {
        ERR(a->loc, "leaky_relu() needs a number as its slope");
        return UNKNOWN;
    }
    return tensor_arg(c, e, 0);
}

static shape check_concat(checker *c, ast_expr *e) {
    if (!want_args(c, e, 2, 16)) return UNKNOWN;
    long long total = 0;
    int ok = 1;
    for (int i = 0; nth_arg(e->args, i); i++) {
        shape s = tensor_arg(c, e, i);
        if (s.nd < 0) {
            ok = 0;
            continue;
        }
        if (s.nd != 1) {
            ERR(nth_arg(e->args, i)->loc, "concat() joins vectors, got shape %s (flatten it first)", chk_shape_str(c, s));
            ok = 0;
            continue;
        }
        total += s.d[0];
    }
    if (ok && !chk_fits(c, e->loc, (double)total, "concat()", "values per example")) return UNKNOWN;
    return ok ? chk_vec((int)total) : UNKNOWN;
}

/* onehot(y): y's shape with its states as the last dimension */
static shape check_onehot(checker *c, ast_expr *e) {
    if (!want_args(c, e, 1, 1)) return UNKNOWN;
    const ast_expr *z = e->args->value;
    if (z->kind != AST_NAME) {
        ERR(z->loc, "onehot() needs the name of a categorical latent");
        return UNKNOWN;
    }
    for (binding *b = c->env; b; b = b->next)
        if (strcmp(b->name, z->str) == 0) {
            if (b->kind != VAL_CATEGORICAL) {
                ERR(z->loc, "onehot() needs a categorical latent; '%s' is not one", z->str);
                return UNKNOWN;
            }
            const vae_latent *l = b->latent;
            if (l->ast->shape.ndims == 0) return chk_vec(l->states);
            shape s = chk_shape_of_ast(&l->ast->shape);
            if (s.nd == VAE_MAX_DIMS) return UNKNOWN;
            s.d[s.nd++] = l->states;
            return s;
        }
    chk_unknown_name(c, z);
    return UNKNOWN;
}

static shape check_reshape(checker *c, ast_expr *e) {
    int n = chk_count_args(e->args);
    if (n < 2 || !positional_only(c, e)) {
        if (n < 2) ERR(e->loc, "reshape() takes a tensor and at least one dimension");
        return UNKNOWN;
    }
    shape in = tensor_arg(c, e, 0);
    shape out = {0, {0}};
    for (int i = 1; i < n; i++) {
        int d;
        const ast_arg *a = nth_arg(e->args, i);
        if (!chk_int_literal(a->value, &d) || d < 1) {
            ERR(a->loc, "reshape() dimensions must be positive integers");
            return UNKNOWN;
        }
        if (out.nd == VAE_MAX_DIMS) {
            ERR(a->loc, "too many dimensions (at most %d)", VAE_MAX_DIMS);
            return UNKNOWN;
        }
        out.d[out.nd++] = d;
    }
    if (in.nd < 0) return UNKNOWN;
    if (chk_shape_values(in) != chk_shape_values(out)) {
        ERR(e->loc, "cannot reshape %s (%s values) to %s (%s values)", chk_shape_str(c, in),
            chk_count_str(c, chk_shape_exact(in)), chk_shape_str(c, out), chk_count_str(c, chk_shape_exact(out)));
        return UNKNOWN;
    }
    return out;
}

static shape check_flatten(checker *c, ast_expr *e) {
    if (!want_args(c, e, 1, 1)) return UNKNOWN;
    shape in = tensor_arg(c, e, 0);
    return in.nd < 0 ? UNKNOWN : chk_vec(chk_shape_size(in));
}

/* The one list of the layers and functions a network may call (their names are the language's;
 * tests/editors.sh reads them from here): each with its shape rule, which also declares its
 * parameters.  The lowering dispatches on the `layer` the checker records. */
static const struct {
    const char *name;
    vae_layer layer;
    shape (*check)(checker *c, ast_expr *e);
} LAYERS[] = {
    {"dense", LAYER_DENSE, check_dense},
    {"conv2d", LAYER_CONV2D, check_conv},
    {"conv_transpose2d", LAYER_CONV_TRANSPOSE2D, check_conv},
    {"relu", LAYER_RELU, check_elementwise},
    {"tanh", LAYER_TANH, check_elementwise},
    {"sigmoid", LAYER_SIGMOID, check_elementwise},
    {"softplus", LAYER_SOFTPLUS, check_elementwise},
    {"elu", LAYER_ELU, check_elementwise},
    {"exp", LAYER_EXP, check_elementwise},
    {"leaky_relu", LAYER_LEAKY_RELU, check_leaky_relu},
    {"concat", LAYER_CONCAT, check_concat},
    {"onehot", LAYER_ONEHOT, check_onehot},
    {"reshape", LAYER_RESHAPE, check_reshape},
    {"flatten", LAYER_FLATTEN, check_flatten},
};

static shape check_call(checker *c, ast_expr *e) {
    const char *f = e->str;
    for (size_t i = 0; i < sizeof LAYERS / sizeof LAYERS[0]; i++)
        if (strcmp(f, LAYERS[i].name) == 0) {
            e->layer = LAYERS[i].layer;
            return LAYERS[i].check(c, e);
        }
    if (strcmp(f, "normal") == 0 || strcmp(f, "bernoulli") == 0 || strcmp(f, "categorical") == 0)
        ERR(e->loc, "a distribution can only be returned, not used as a value");
    else
        ERR(e->loc, "unknown function '%s'", f);
    return UNKNOWN;
}

shape chk_expr(checker *c, ast_expr *e) {
    switch (e->kind) {
    case AST_NUM: return SCALAR;
    case AST_STR: ERR(e->loc, "a string cannot be used in a network"); return UNKNOWN;
    case AST_NAME:
        for (binding *b = c->env; b; b = b->next)
            if (strcmp(b->name, e->str) == 0) {
                if (b->kind == VAL_CATEGORICAL) {
                    ERR(e->loc, "categorical latent '%s' enters a network through onehot(%s)", e->str, e->str);
                    return UNKNOWN;
                }
                return b->sh;
            }
        chk_unknown_name(c, e);
        return UNKNOWN;
    case AST_CALL: return check_call(c, e);
    case AST_PARAM: {
        shape s = {e->ndims, {0}};
        memcpy(s.d, e->dims, sizeof s.d);
        const char *name = fresh_param_name(c, vae_pool_printf(c->pool, "%s.%s", c->prefix, c->target));
        e->pname = name;
        e->param = chk_add_param(c, e->loc, name, s, 0.0f);
        return e->param >= 0 ? s : UNKNOWN; /* a shape too large goes no further */
    }
    case AST_NEG: return chk_expr(c, e->lhs);
    case AST_BINOP: {
        shape l = chk_expr(c, e->lhs), r = chk_expr(c, e->rhs);
        if (l.nd < 0 || r.nd < 0) return UNKNOWN;
        if (l.nd == 0) return r;
        if (r.nd == 0) return l;
        if (!chk_shape_eq(l, r)) {
            ERR(e->loc, "shape mismatch in '%c': %s and %s", e->op, chk_shape_str(c, l), chk_shape_str(c, r));
            return UNKNOWN;
        }
        return l;
    }
    }
    return UNKNOWN;
}

void chk_bind(checker *c, const char *name, shape s, val_kind k, const vae_latent *l) {
    binding *b = vae_pool_alloc(c->pool, sizeof *b);
    b->name = name;
    b->sh = s;
    b->kind = k;
    b->latent = l;
    b->next = c->env;
    c->env = b;
}

