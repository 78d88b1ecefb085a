/* Semantic checks: names, shapes, distributions, the estimator and the train
 * settings.  Reports every error it can find, then fills a vae_model.
 *
 * Shapes are per example: `h = relu(dense(x, 400))` has shape [400]; the batch
 * and the samples are a leading dimension that the code generator adds. */
#include "parser/model.h"

#include "parser/limits.h"
#include "parser/settings.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int nd; /* -1: unknown (an error was already reported); 0: a scalar */
    int d[VAE_MAX_DIMS];
} shape;

static const shape UNKNOWN = {-1, {0}};
static const shape SCALAR = {0, {0}};

typedef enum { VAL_TENSOR, VAL_CATEGORICAL } val_kind;

typedef struct binding {
    const char *name;
    shape sh;
    val_kind kind;
    const vae_latent *latent; /* VAL_CATEGORICAL */
    struct binding *next;
} binding;

typedef struct {
    vae_source *src;
    vae_model *m;
    vae_pool *pool;
    const char *prefix;     /* parameter names start with it: "encoder" */
    const char *target;     /* the variable being assigned, or the argument name */
    int owner;              /* the role of the network being checked, -1 for priors */
    binding *env;
    /* How many parameters have taken each base name, for encoder.h#2. */
    struct used_name { const char *base; int count; struct used_name *next; } *used;
    int params_too_many;    /* the parameters passed VAE_MAX_VALUES: said once */
} checker;

/* Values of a shape in 64 bits, saturated above VAE_MAX_VALUES (parser/limits.h). */
static long long shape_values(shape s) {
    long long n = 1;
    for (int i = 0; i < s.nd; i++) n = vae_size_mul(n, s.d[i]);
    return n;
}

/* The values of a shape that fits(): every shape the checker passes on does. */
static int shape_size(shape s) { return (int)shape_values(s); }

/* A count for a message: exact while a double holds it exactly. */
static const char *count_str(checker *c, double n) {
    return n < 9007199254740992.0 ? vae_pool_printf(c->pool, "%.0f", n) : vae_pool_printf(c->pool, "%.3g", n);
}

/* Whether `n` values (one example's, or a parameter tensor's) are within what
 * vaec can index; if not, says so at loc: "WHAT: N UNIT, more than ...". */
static int fits(checker *c, vae_loc loc, double n, const char *what, const char *unit) {
    if (n <= (double)VAE_MAX_VALUES) return 1;
    vae_error(c->src, loc, "%s: %s %s, more than the " VAE_MAX_VALUES_WORDS " that vaec can index", what,
              count_str(c, n), unit);
    return 0;
}

static double shape_exact(shape s) {
    double n = 1;
    for (int i = 0; i < s.nd; i++) n *= s.d[i];
    return n;
}

/* Records the values one example has in a tensor the model makes: the graph
 * builder multiplies the largest by the batch and the samples (g_build). */
static void note_values(checker *c, long long n) {
    if (n > c->m->max_example_values) c->m->max_example_values = (long)n;
}

static int shape_eq(shape a, shape b) {
    if (a.nd != b.nd) return 0;
    for (int i = 0; i < a.nd; i++)
        if (a.d[i] != b.d[i]) return 0;
    return 1;
}

static const char *shape_str(checker *c, shape s) {
    if (s.nd < 0) return "?";
    char buf[160];
    int n = snprintf(buf, sizeof buf, "[");
    for (int i = 0; i < s.nd; i++) n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%d", i ? ", " : "", s.d[i]);
    snprintf(buf + n, sizeof buf - (size_t)n, "]");
    return s.nd == 0 ? "a scalar" : vae_pool_strdup(c->pool, buf);
}

static shape shape_of_ast(const ast_shape *s) {
    shape r = {s->ndims, {0}};
    memcpy(r.d, s->dims, sizeof(int) * (size_t)s->ndims);
    return r;
}

static shape vec(int n) {
    shape r = {1, {n}};
    return r;
}

#define ERR(loc, ...) vae_error(c->src, (loc), __VA_ARGS__)

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

/* Adds a parameter tensor; refuses one, or a total, that vaec cannot index
 * (returns 0). */
static int add_param(checker *c, vae_loc loc, const char *name, shape s, float bound) {
    vae_model *m = c->m;
    if (m->nparams == VAE_MAX_PARAMS) {
        ERR(loc, "too many parameter tensors (at most %d)", VAE_MAX_PARAMS);
        return 0;
    }
    if (!fits(c, loc, shape_exact(s), vae_pool_printf(c->pool, "parameter '%s' %s", name, shape_str(c, s)), "values"))
        return 0;
    if (c->params_too_many) return 0;
    if (!fits(c, loc, (double)m->param_floats + shape_exact(s),
              vae_pool_printf(c->pool, "with '%s' the model's parameters", name), "values")) {
        c->params_too_many = 1;
        return 0;
    }
    vae_param *p = &m->params[m->nparams++];
    p->name = name;
    p->ndims = s.nd;
    memcpy(p->dims, s.d, sizeof p->dims);
    p->size = shape_size(s);
    p->offset = m->param_floats;
    p->init_bound = bound;
    p->owner = c->owner;
    m->param_floats += p->size;
    return 1;
}

/* ---------------------------------------------------------------- expressions */

static int int_literal(const ast_expr *e, int *out) {
    if (e->kind == AST_NUM && e->is_int) { /* the lexer's ints have at most 9 digits */
        *out = (int)e->num;
        return 1;
    }
    return 0;
}

static int count_args(const ast_arg *a) {
    int n = 0;
    for (; a; a = a->next) n++;
    return n;
}

static const ast_arg *nth_arg(const ast_arg *a, int i) {
    while (a && i--) a = a->next;
    return a;
}

static shape check_expr(checker *c, ast_expr *e);

/* "unknown name", or why a known name is out of reach in this network. */
static void unknown_name(checker *c, const ast_expr *e) {
    const vae_model *m = c->m;
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
    int n = count_args(e->args);
    if (n < lo || n > hi) {
        if (lo == hi)
            ERR(e->loc, "%s() takes %d argument%s, got %d", e->str, lo, lo == 1 ? "" : "s", n);
        else
            ERR(e->loc, "%s() takes %d to %d arguments, got %d", e->str, lo, hi, n);
        return 0;
    }
    return positional_only(c, e);
}

static const char *const ELEMENTWISE[] = {"relu", "tanh", "sigmoid", "softplus", "elu", "exp", NULL};

static int is_elementwise(const char *name) {
    for (int i = 0; ELEMENTWISE[i]; i++)
        if (strcmp(name, ELEMENTWISE[i]) == 0) return 1;
    return 0;
}

static shape tensor_arg(checker *c, const ast_expr *call, int i) {
    ast_arg *a = (ast_arg *)nth_arg(call->args, i);
    shape s = check_expr(c, a->value);
    if (s.nd == 0) {
        ERR(a->loc, "%s() expects a tensor here, not a scalar", call->str);
        return UNKNOWN;
    }
    if (s.nd > 0) note_values(c, shape_values(s));
    return s;
}

/* conv2d(x, channels, kernel, stride: s, pad: p) and conv_transpose2d(...):
 * x is [C, H, W] (channels first, as PyTorch).  The weight is laid out as
 * the product reads it, what one output value sums over first (as dense's
 * [in, out]): [K, K, C, channels] for conv2d (TensorFlow's HWIO), and
 * [C, K, K, channels] for the transposed convolution (each input channel
 * spreads into a K x K window of every output channel). */
static shape check_conv(checker *c, ast_expr *e) {
    const char *f = e->str;
    int transposed = strcmp(f, "conv_transpose2d") == 0;
    int positional = 0, ok = 1, stride = 1, pad = 0, have_stride = 0, have_pad = 0;
    vae_loc pad_loc = e->loc;
    for (const ast_arg *a = e->args; a; a = a->next) {
        if (!a->name) {
            if (have_stride || have_pad) {
                ERR(a->loc, "%s(): a positional argument after the named ones", f);
                return UNKNOWN;
            }
            positional++;
            continue;
        }
        int *slot = strcmp(a->name, "stride") == 0 ? &stride : strcmp(a->name, "pad") == 0 ? &pad : NULL;
        int *seen = slot == &stride ? &have_stride : &have_pad;
        if (!slot) {
            ERR(a->loc, "%s() takes no named argument '%s' (it takes stride: and pad:)", f, a->name);
            ok = 0;
            continue;
        }
        if (*seen) {
            ERR(a->loc, "%s(): '%s' given twice", f, a->name);
            ok = 0;
            continue;
        }
        *seen = 1;
        if (slot == &pad) pad_loc = a->value->loc;
        if (!int_literal(a->value, slot) || *slot < (slot == &stride ? 1 : 0)) {
            ERR(a->value->loc, "%s(): '%s' must be %s integer", f, a->name, slot == &stride ? "a positive" : "a non-negative");
            ok = 0;
        }
    }
    if (positional != 3) {
        ERR(e->loc, "%s() takes a tensor, a number of channels and a kernel size (then stride: and pad:), got %d "
                    "positional argument%s", f, positional, positional == 1 ? "" : "s");
        return UNKNOWN;
    }
    shape in = tensor_arg(c, e, 0);
    int channels = 0, k = 0;
    const ast_arg *ca = nth_arg(e->args, 1), *ka = nth_arg(e->args, 2);
    if (!int_literal(ca->value, &channels) || channels < 1) {
        ERR(ca->loc, "%s() needs a positive integer number of channels", f);
        ok = 0;
    }
    if (!int_literal(ka->value, &k) || k < 1) {
        ERR(ka->loc, "%s() needs a positive integer kernel size", f);
        ok = 0;
    }
    if (in.nd < 0 || !ok) return UNKNOWN;
    if (in.nd != 3) {
        ERR(e->args->loc, "%s() expects an image [channels, height, width], got shape %s (reshape it first)", f,
            shape_str(c, in));
        return UNKNOWN;
    }
    if (pad >= k) {
        ERR(pad_loc, "%s(): padding %d is not smaller than the kernel (%d)", f, pad, k);
        return UNKNOWN;
    }
    /* sizes in 64 bits: a stride or kernel of any int must not overflow before it is refused */
    long long out_h, out_w;
    if (transposed) {
        out_h = (long long)(in.d[1] - 1) * stride - 2LL * pad + k;
        out_w = (long long)(in.d[2] - 1) * stride - 2LL * pad + k;
    } else {
        out_h = in.d[1] + 2LL * pad < k ? 0 : (in.d[1] + 2LL * pad - k) / stride + 1;
        out_w = in.d[2] + 2LL * pad < k ? 0 : (in.d[2] + 2LL * pad - k) / stride + 1;
    }
    if (out_h < 1 || out_w < 1) {
        ERR(e->loc, "%s() of a %d x %d image with kernel %d, stride %d and padding %d leaves no output", f, in.d[1],
            in.d[2], k, stride, pad);
        return UNKNOWN;
    }
    /* per example: the output, the rows of windows the product reads (conv2d) or writes
     * (transposed), and the weight */
    double windows = transposed ? (double)in.d[1] * in.d[2] * k * k * channels : (double)out_h * out_w * k * k * in.d[0];
    if ((double)out_h * out_w * channels > 1 << 24 || windows > 1 << 24 || (double)k * k * in.d[0] * channels > 1 << 26) {
        ERR(e->loc, "%s() is too large (more than 2^24 values per example, or a weight of more than 2^26)", f);
        return UNKNOWN;
    }
    note_values(c, (long long)windows);
    note_values(c, out_h * out_w * channels);
    ast_conv g = {in.d[0], in.d[1], in.d[2], channels, (int)out_h, (int)out_w, k, stride, pad};
    e->conv = g;
    const char *name = fresh_param_name(c, vae_pool_printf(c->pool, "%s.%s", c->prefix, c->target));
    e->pname = name;
    /* PyTorch's default initialisation: uniform(+-1/sqrt(fan_in)), fan_in being
     * what one output value sums over (for the transposed convolution PyTorch
     * takes it from the weight's second dimension, channels * k * k) */
    int fan_in = transposed ? channels * k * k : g.in_c * k * k;
    float bound = 1.0f / sqrtf((float)fan_in);
    shape w = transposed ? (shape){4, {g.in_c, k, k, channels}} : (shape){4, {k, k, g.in_c, channels}};
    add_param(c, e->loc, vae_pool_printf(c->pool, "%s.weight", name), w, bound);
    add_param(c, e->loc, vae_pool_printf(c->pool, "%s.bias", name), vec(channels), bound);
    shape out = {3, {channels, g.out_h, g.out_w}};
    return out;
}

static shape check_call(checker *c, ast_expr *e) {
    const char *f = e->str;
    if (strcmp(f, "dense") == 0) {
        if (!want_args(c, e, 2, 2)) return UNKNOWN;
        shape in = tensor_arg(c, e, 0);
        int n;
        const ast_arg *na = nth_arg(e->args, 1);
        if (!int_literal(na->value, &n) || n < 1) {
            ERR(na->loc, "dense() needs a positive integer number of units");
            return UNKNOWN;
        }
        if (in.nd < 0) return UNKNOWN;
        if (in.nd != 1) {
            ERR(e->args->loc, "dense() expects a vector, got shape %s (flatten it first)", shape_str(c, in));
            return UNKNOWN;
        }
        const char *base = vae_pool_printf(c->pool, "%s.%s", c->prefix, c->target);
        const char *name = fresh_param_name(c, base);
        e->pname = name;
        shape w = {2, {in.d[0], n}};
        float bound = 1.0f / sqrtf((float)in.d[0]); /* PyTorch's nn.Linear default */
        add_param(c, e->loc, vae_pool_printf(c->pool, "%s.weight", name), w, bound);
        add_param(c, e->loc, vae_pool_printf(c->pool, "%s.bias", name), vec(n), bound);
        return vec(n);
    }
    if (is_elementwise(f)) {
        if (!want_args(c, e, 1, 1)) return UNKNOWN;
        return tensor_arg(c, e, 0);
    }
    if (strcmp(f, "leaky_relu") == 0) {
        if (!want_args(c, e, 1, 2)) return UNKNOWN;
        const ast_arg *a = nth_arg(e->args, 1);
        if (a && a->value->kind != AST_NUM) {
            ERR(a->loc, "leaky_relu() needs a number as its slope");
            return UNKNOWN;
        }
        return tensor_arg(c, e, 0);
    }
    if (strcmp(f, "concat") == 0) {
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
                ERR(nth_arg(e->args, i)->loc, "concat() joins vectors, got shape %s (flatten it first)",
                    shape_str(c, s));
                ok = 0;
                continue;
            }
            total += s.d[0];
        }
        if (ok && !fits(c, e->loc, (double)total, "concat()", "values per example")) return UNKNOWN;
        return ok ? vec((int)total) : UNKNOWN;
    }
    if (strcmp(f, "onehot") == 0) {
        if (!want_args(c, e, 1, 1)) return UNKNOWN;
        const ast_expr *z = e->args->value;
        if (z->kind == AST_NAME)
            for (binding *b = c->env; b; b = b->next)
                if (strcmp(b->name, z->str) == 0) {
                    if (b->kind != VAL_CATEGORICAL) {
                        ERR(z->loc, "onehot() needs a categorical latent; '%s' is not one", z->str);
                        return UNKNOWN;
                    }
                    const vae_latent *l = b->latent;
                    if (l->ast->shape.ndims == 0) return vec(l->states);
                    shape s = shape_of_ast(&l->ast->shape);
                    if (s.nd == VAE_MAX_DIMS) return UNKNOWN;
                    s.d[s.nd++] = l->states;
                    return s;
                }
        if (z->kind == AST_NAME) {
            unknown_name(c, z);
            return UNKNOWN;
        }
        ERR(z->loc, "onehot() needs the name of a categorical latent");
        return UNKNOWN;
    }
    if (strcmp(f, "reshape") == 0) {
        int n = count_args(e->args);
        if (n < 2 || !positional_only(c, e)) {
            if (n < 2) ERR(e->loc, "reshape() takes a tensor and at least one dimension");
            return UNKNOWN;
        }
        shape in = tensor_arg(c, e, 0);
        shape out = {0, {0}};
        for (int i = 1; i < n; i++) {
            int d;
            const ast_arg *a = nth_arg(e->args, i);
            if (!int_literal(a->value, &d) || d < 1) {
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
        if (shape_values(in) != shape_values(out)) {
            ERR(e->loc, "cannot reshape %s (%s values) to %s (%s values)", shape_str(c, in),
                count_str(c, shape_exact(in)), shape_str(c, out), count_str(c, shape_exact(out)));
            return UNKNOWN;
        }
        return out;
    }
    if (strcmp(f, "flatten") == 0) {
        if (!want_args(c, e, 1, 1)) return UNKNOWN;
        shape in = tensor_arg(c, e, 0);
        return in.nd < 0 ? UNKNOWN : vec(shape_size(in));
    }
    if (strcmp(f, "normal") == 0 || strcmp(f, "bernoulli") == 0 || strcmp(f, "categorical") == 0) {
        ERR(e->loc, "a distribution can only be returned, not used as a value");
        return UNKNOWN;
    }
    if (strcmp(f, "conv2d") == 0 || strcmp(f, "conv_transpose2d") == 0) return check_conv(c, e);
    ERR(e->loc, "unknown function '%s'", f);
    return UNKNOWN;
}

static shape check_expr(checker *c, ast_expr *e) {
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
        unknown_name(c, e);
        return UNKNOWN;
    case AST_CALL: return check_call(c, e);
    case AST_PARAM: {
        shape s = {e->ndims, {0}};
        memcpy(s.d, e->dims, sizeof s.d);
        const char *name = fresh_param_name(c, vae_pool_printf(c->pool, "%s.%s", c->prefix, c->target));
        e->pname = name;
        return add_param(c, e->loc, name, s, 0.0f) ? s : UNKNOWN; /* a shape too large goes no further */
    }
    case AST_NEG: return check_expr(c, e->lhs);
    case AST_BINOP: {
        shape l = check_expr(c, e->lhs), r = check_expr(c, e->rhs);
        if (l.nd < 0 || r.nd < 0) return UNKNOWN;
        if (l.nd == 0) return r;
        if (r.nd == 0) return l;
        if (!shape_eq(l, r)) {
            ERR(e->loc, "shape mismatch in '%c': %s and %s", e->op, shape_str(c, l), shape_str(c, r));
            return UNKNOWN;
        }
        return l;
    }
    }
    return UNKNOWN;
}

static void bind(checker *c, const char *name, shape s, val_kind k, const vae_latent *l) {
    binding *b = vae_pool_alloc(c->pool, sizeof *b);
    b->name = name;
    b->sh = s;
    b->kind = k;
    b->latent = l;
    b->next = c->env;
    c->env = b;
}

/* ---------------------------------------------------------------- distributions */

static const ast_arg *named(const ast_expr *call, const char *name) {
    for (const ast_arg *a = call->args; a; a = a->next)
        if (a->name && strcmp(a->name, name) == 0) return a;
    return NULL;
}

/* Checks that the call's named arguments are among `allowed` (a NULL-terminated list). */
static int only_named(checker *c, const ast_expr *call, const char *const *allowed, const char *what) {
    int ok = 1;
    for (const ast_arg *a = call->args; a; a = a->next) {
        if (!a->name) {
            ERR(a->loc, "%s(...) %s takes named arguments (%s: ...)", call->str, what, allowed[0]);
            ok = 0;
            continue;
        }
        int found = 0;
        for (int i = 0; allowed[i]; i++) found |= strcmp(allowed[i], a->name) == 0;
        if (!found) {
            ERR(a->loc, "%s() has no argument '%s'", call->str, a->name);
            ok = 0;
        }
        for (const ast_arg *b = call->args; b != a; b = b->next)
            if (b->name && strcmp(b->name, a->name) == 0) {
                ERR(a->loc, "argument '%s' is given twice", a->name);
                ok = 0;
            }
    }
    return ok;
}

/* Checks one distribution argument against the expected shape. */
static void dist_arg(checker *c, const ast_arg *a, shape want, const char *what) {
    c->target = a->name;
    shape s = check_expr(c, a->value);
    if (s.nd < 0) return;
    if (s.nd == 0) {
        ERR(a->loc, "'%s' of %s must have shape %s, not a scalar", a->name, what, shape_str(c, want));
        return;
    }
    note_values(c, shape_values(s));
    if (!shape_eq(s, want))
        ERR(a->loc, "shape mismatch: '%s' of %s has shape %s, expected %s", a->name, what, shape_str(c, s),
            shape_str(c, want));
}

/* A distribution returned by a network over a value of shape `want`.
 * `allow` is a bitmask of the kinds that make sense for the target. */
static int check_returned_dist(checker *c, const ast_expr *e, shape want, unsigned allow, const char *what,
                               vae_dist *out) {
    memset(out, 0, sizeof *out);
    out->loc = e->loc;
    if (e->kind != AST_CALL ||
        (strcmp(e->str, "normal") && strcmp(e->str, "bernoulli") && strcmp(e->str, "categorical"))) {
        ERR(e->loc, "a network returns a distribution: normal(...), bernoulli(...) or categorical(...)");
        return 0;
    }
    if (strcmp(e->str, "normal") == 0) {
        out->kind = DIST_NORMAL;
        if (!(allow & (1u << DIST_NORMAL))) {
            ERR(e->loc, "%s cannot be normal", what);
            return 0;
        }
        static const char *const ok[] = {"mean", "logvar", "scale", NULL};
        if (!only_named(c, e, ok, what)) return 0;
        const ast_arg *mean = named(e, "mean"), *lv = named(e, "logvar"), *sc = named(e, "scale");
        if (!mean) ERR(e->loc, "normal() needs 'mean:'");
        if (!lv == !sc) ERR(e->loc, "normal() needs exactly one of 'logvar:' and 'scale:'");
        if (!mean || !lv == !sc) return 0;
        dist_arg(c, mean, want, what);
        dist_arg(c, lv ? lv : sc, want, what);
        out->a = mean->value;
        out->b = lv ? lv->value : sc->value;
        out->b_is_scale = sc != NULL;
        return 1;
    }
    if (strcmp(e->str, "bernoulli") == 0) {
        out->kind = DIST_BERNOULLI;
        if (!(allow & (1u << DIST_BERNOULLI))) {
            ERR(e->loc, "%s cannot be bernoulli", what);
            return 0;
        }
        static const char *const ok[] = {"logits", "probs", NULL};
        if (!only_named(c, e, ok, what)) return 0;
        const ast_arg *lg = named(e, "logits"), *pr = named(e, "probs");
        if (!lg == !pr) {
            ERR(e->loc, "bernoulli() needs exactly one of 'logits:' and 'probs:'");
            return 0;
        }
        dist_arg(c, lg ? lg : pr, want, what);
        out->a = lg ? lg->value : pr->value;
        out->a_is_probs = pr != NULL;
        return 1;
    }
    out->kind = DIST_CATEGORICAL;
    if (!(allow & (1u << DIST_CATEGORICAL))) {
        ERR(e->loc, "%s cannot be categorical", what);
        return 0;
    }
    static const char *const ok[] = {"logits", NULL};
    if (!only_named(c, e, ok, what)) return 0;
    const ast_arg *lg = named(e, "logits");
    if (!lg) {
        ERR(e->loc, "categorical() needs 'logits:'");
        return 0;
    }
    dist_arg(c, lg, want, what);
    out->a = lg->value;
    return 1;
}

static int is_number(const ast_expr *e, double *v) {
    if (e->kind == AST_NUM) {
        *v = e->num;
        return 1;
    }
    if (e->kind == AST_NEG && e->lhs->kind == AST_NUM) {
        *v = -e->lhs->num;
        return 1;
    }
    return 0;
}

/* Whether a latent's one-hot (or plain) values fit; nvars and width stay 0 if not. */
static int latent_fits(checker *c, vae_latent *l, shape s) {
    double states = l->kind == LATENT_CATEGORICAL ? l->states : 1;
    if (!fits(c, l->ast->loc, shape_exact(s) * states,
              vae_pool_printf(c->pool, "latent '%s' %s%s", l->name, shape_str(c, s),
                              states > 1 ? vae_pool_printf(c->pool, " of %d states", l->states) : ""),
              states > 1 ? "one-hot values per example" : "values per example")) {
        l->nvars = l->width = 0;
        return 0;
    }
    l->width = (int)vae_size_mul(shape_values(s), (long long)states);
    note_values(c, l->width);
    return 1;
}

/* A numeric setting of the train block or the estimator, validated against
 * the table that vaec's options use (parser/settings.c), in its words. */
static int setting_value(checker *c, vae_loc loc, const char *name, const ast_expr *v, double *out) {
    const vae_setting *s = vae_setting_named(name);
    double num = 0;
    int n, ok = s->integer ? int_literal(v, &n) : is_number(v, &num);
    if (s->integer && ok) num = n;
    if (ok && vae_setting_ok(s, num)) {
        *out = num;
        return 1;
    }
    char words[128];
    ERR(loc, "'%s' must be %s", name, vae_setting_words(s, words, sizeof words));
    return 0;
}

static void check_prior(checker *c, vae_latent *l) {
    ast_expr *e = l->ast->prior;
    shape s = l->ast->shape.ndims ? shape_of_ast(&l->ast->shape) : vec(1);
    l->nvars = shape_values(s) > VAE_MAX_VALUES ? 0 : shape_size(s);
    vae_dist *p = &l->prior;
    p->loc = e->loc;
    int npos = 0;
    for (const ast_arg *a = e->args; a; a = a->next) npos += a->name == NULL;
    c->prefix = "prior";
    c->owner = -1;
    c->target = l->name;
    if (strcmp(e->str, "normal") == 0) {
        l->kind = LATENT_NORMAL;
        p->kind = DIST_NORMAL;
        double m, v;
        if (count_args(e->args) != 2 || npos != 2 || !is_number(e->args->value, &m) ||
            !is_number(e->args->next->value, &v) || m != 0 || v != 1) {
            ERR(e->loc, "a normal prior is written normal(0, 1) (the standard normal)");
            return;
        }
        p->standard = 1;
        latent_fits(c, l, s);
        return;
    }
    if (strcmp(e->str, "categorical") == 0) {
        l->kind = LATENT_CATEGORICAL;
        p->kind = DIST_CATEGORICAL;
        if (s.nd == VAE_MAX_DIMS) { /* its logits and one-hot values take one more, for the states */
            ERR(l->ast->loc, "a categorical latent has at most %d dimensions", VAE_MAX_DIMS - 1);
            l->nvars = 0;
            return;
        }
        int k;
        if (npos == 1 && count_args(e->args) == 1 && int_literal(e->args->value, &k)) {
            if (k < 2) {
                ERR(e->args->loc, "a categorical latent needs at least 2 states");
                return;
            }
            l->states = k;
        } else if (npos == 0 && count_args(e->args) == 1 && named(e, "logits")) {
            const ast_arg *lg = named(e, "logits");
            shape ls = check_expr(c, lg->value);
            if (ls.nd < 0) return;
            if (ls.nd < 1 || ls.d[ls.nd - 1] < 2) {
                ERR(lg->loc, "the logits of a categorical prior need a last dimension of at least 2 states");
                return;
            }
            l->states = ls.d[ls.nd - 1];
            shape want = s;
            if (l->ast->shape.ndims == 0) want.nd = 0;
            want.d[want.nd++] = l->states;
            shape flat = vec(l->states);
            if (l->nvars > 1) flat = want; /* one row of logits per variable */
            if (!shape_eq(ls, want) && !shape_eq(ls, flat)) {
                if (shape_eq(want, flat))
                    ERR(lg->loc, "shape mismatch: prior logits have shape %s, expected %s", shape_str(c, ls),
                        shape_str(c, want));
                else
                    ERR(lg->loc, "shape mismatch: prior logits have shape %s, expected %s or %s", shape_str(c, ls),
                        shape_str(c, want), shape_str(c, flat));
                return;
            }
            p->a = lg->value;
        } else {
            ERR(e->loc, "a categorical prior is written categorical(K) or categorical(logits: E)");
            return;
        }
        if (latent_fits(c, l, s)) l->joint_states = pow((double)l->states, (double)l->nvars);
        return;
    }
    if (strcmp(e->str, "bernoulli") == 0) {
        l->kind = LATENT_BERNOULLI;
        p->kind = DIST_BERNOULLI;
        l->states = 2;
        if (!latent_fits(c, l, s)) return;
        l->joint_states = pow(2.0, (double)l->nvars);
        double v;
        if (npos == 1 && count_args(e->args) == 1 && is_number(e->args->value, &v)) {
            if (!(v > 0 && v < 1)) {
                ERR(e->args->loc, "a bernoulli prior's probability must lie strictly between 0 and 1");
                return;
            }
            p->fixed_p = v;
            return;
        }
        const ast_arg *lg = named(e, "logits"), *pr = named(e, "probs");
        if (npos == 0 && count_args(e->args) == 1 && (lg || pr)) {
            const ast_arg *a = lg ? lg : pr;
            shape as = check_expr(c, a->value);
            if (as.nd >= 0 && !shape_eq(as, s))
                ERR(a->loc, "shape mismatch: prior %s have shape %s, expected %s", a->name, shape_str(c, as),
                    shape_str(c, s));
            p->a = a->value;
            p->a_is_probs = pr != NULL;
            return;
        }
        ERR(e->loc, "a bernoulli prior is written bernoulli(P), bernoulli(logits: E) or bernoulli(probs: E)");
        return;
    }
    ERR(e->loc, "unknown prior '%s' (expected normal, categorical or bernoulli)", e->str);
}

/* ---------------------------------------------------------------- networks */

static vae_latent *find_latent(vae_model *m, const char *name) {
    for (int i = 0; i < m->nlatents; i++)
        if (strcmp(m->latents[i].name, name) == 0) return &m->latents[i];
    return NULL;
}

static const char *net_prefix(const vae_model *m, const ast_network *n) {
    int same_role = 0;
    for (const ast_network *o = m->ast->networks; o; o = o->next) same_role += o->role == n->role;
    return same_role > 1 ? n->name : ast_role_name(n->role);
}

static void bind_latent(checker *c, const vae_latent *l) {
    if (l->kind == LATENT_CATEGORICAL)
        bind(c, l->name, UNKNOWN, VAL_CATEGORICAL, l);
    else if (!l->nvars) /* refused: too large */
        bind(c, l->name, UNKNOWN, VAL_TENSOR, l);
    else
        bind(c, l->name, l->ast->shape.ndims ? shape_of_ast(&l->ast->shape) : vec(1), VAL_TENSOR, l);
}

static void check_body(checker *c, const ast_network *n) {
    int count = 0;
    for (ast_assign *a = n->body; a; a = a->next) {
        if (++count > VAE_MAX_ASSIGNS) { /* the lowering's environment holds this many, and names are looked up in order */
            ERR(a->loc, "too many assignments in network '%s' (at most %d)", n->name, VAE_MAX_ASSIGNS);
            return;
        }
        c->target = a->name;
        shape s = check_expr(c, a->value);
        if (s.nd == 0) {
            ERR(a->loc, "'%s' is a scalar; a network works on tensors", a->name);
            s = UNKNOWN;
        }
        if (s.nd > 0) note_values(c, shape_values(s));
        bind(c, a->name, s, VAL_TENSOR, NULL);
    }
}

static void check_network(checker *c, const ast_network *n) {
    vae_model *m = c->m;
    c->env = NULL;
    c->prefix = net_prefix(m, n);
    c->owner = (int)n->role;
    const char *out = n->output->name;
    shape data_shape = m->data && m->data_dim ? shape_of_ast(&m->data->shape) : UNKNOWN;
    switch (n->role) {
    case NET_ENCODER: {
        vae_latent *l = find_latent(m, out);
        if (!l) {
            ERR(n->output->loc, "an encoder q(z | x) names a latent first; '%s' is not a latent", out);
            return;
        }
        if (l->encoder) {
            ERR(n->output->loc, "latent '%s' already has an encoder", out);
            return;
        }
        l->encoder = n;
        if (!n->given) ERR(n->loc, "an encoder needs the data it conditions on: q(%s | %s)", out,
                           m->data ? m->data->name : "x");
        for (const ast_name *g = n->given; g; g = g->next) {
            if (m->data && strcmp(g->name, m->data->name) == 0)
                bind(c, g->name, data_shape, VAL_TENSOR, NULL);
            else if (find_latent(m, g->name))
                ERR(g->loc, "an encoder conditions on the data only; hierarchical encoders are not supported");
            else
                ERR(g->loc, "unknown name '%s' (expected the data '%s')", g->name, m->data ? m->data->name : "?");
        }
        check_body(c, n);
        shape want = l->ast->shape.ndims ? shape_of_ast(&l->ast->shape) : vec(1);
        unsigned allow = 0;
        if (l->kind == LATENT_NORMAL) allow = 1u << DIST_NORMAL;
        if (l->kind == LATENT_BERNOULLI) allow = 1u << DIST_BERNOULLI;
        if (l->kind == LATENT_CATEGORICAL) {
            if (!l->nvars) break; /* refused with its prior */
            allow = 1u << DIST_CATEGORICAL;
            if (l->ast->shape.ndims == 0) want.nd = 0;
            want.d[want.nd++] = l->states;
        }
        const char *what = vae_pool_printf(c->pool, "the encoder of latent '%s'", out);
        check_returned_dist(c, n->ret, want, allow, what, &l->posterior);
        break;
    }
    case NET_DECODER:
    case NET_BASELINE: {
        if (!m->data || strcmp(out, m->data->name) != 0) {
            ERR(n->output->loc, "a %s models the data; expected %s(%s ...)", ast_role_name(n->role),
                n->name, m->data ? m->data->name : "x");
            return;
        }
        if (n->role == NET_DECODER) {
            if (m->decoder) {
                ERR(n->loc, "the model already has a decoder");
                return;
            }
            m->decoder = n;
            if (!n->given) ERR(n->loc, "a decoder needs the latents it conditions on: p(%s | z)", out);
            for (const ast_name *g = n->given; g; g = g->next) {
                const vae_latent *l = find_latent(m, g->name);
                if (!l)
                    ERR(g->loc, "unknown latent '%s'", g->name);
                else
                    bind_latent(c, l);
            }
        } else {
            if (n->given) ERR(n->given->loc, "a baseline b(%s) conditions on nothing but the data", out);
            bind(c, out, data_shape, VAL_TENSOR, NULL);
        }
        check_body(c, n);
        const char *what = n->role == NET_DECODER ? "the decoder" : "the baseline";
        vae_dist *d = n->role == NET_DECODER ? &m->likelihood : &m->baseline_dist;
        if (data_shape.nd > 0)
            check_returned_dist(c, n->ret, data_shape, (1u << DIST_NORMAL) | (1u << DIST_BERNOULLI), what, d);
        break;
    }
    }
}

/* ---------------------------------------------------------------- estimator */

typedef struct {
    const char *name;
    vae_estimator_kind kind;
    const char *options[5];
    unsigned latents;  /* bitmask of vae_latent_kind it applies to */
    int enumerates;    /* needs every joint state */
    int needs_encoder;
    int built;         /* implemented by this version's code generator */
} estimator_info;

#define ANY_LATENT ((1u << LATENT_NORMAL) | (1u << LATENT_CATEGORICAL) | (1u << LATENT_BERNOULLI))
#define DISCRETE ((1u << LATENT_CATEGORICAL) | (1u << LATENT_BERNOULLI))

static const estimator_info ESTIMATORS[] = {
    {"analytic", EST_ANALYTIC, {"beta"}, DISCRETE, 1, 1, 1},
    {"uniform", EST_UNIFORM, {"samples", "beta"}, DISCRETE, 1, 1, 1},
    {"reinforce", EST_REINFORCE, {"samples", "baseline", "beta"}, ANY_LATENT, 0, 1, 1},
    {"reparam", EST_REPARAM, {"samples", "beta"}, 1u << LATENT_NORMAL, 0, 1, 1},
    {"iwae", EST_IWAE, {"samples", "gradient", "beta"}, 1u << LATENT_NORMAL, 0, 1, 1},
    {"prior", EST_PRIOR, {"samples", "beta"}, ANY_LATENT, 0, 0, 1},
    {"exact", EST_EXACT, {"beta"}, DISCRETE, 1, 0, 1},
    {"vimco", EST_VIMCO, {"samples", "beta"}, DISCRETE, 0, 1, 1},
    {"gumbel", EST_GUMBEL, {"samples", "temperature", "hard", "beta"}, 1u << LATENT_CATEGORICAL, 0, 1, 1},
};
#define NESTIMATORS (sizeof ESTIMATORS / sizeof ESTIMATORS[0])

const char *vae_estimator_name(vae_estimator_kind k) {
    for (size_t i = 0; i < NESTIMATORS; i++)
        if (ESTIMATORS[i].kind == k) return ESTIMATORS[i].name;
    return "?";
}

void vae_model_settings(const vae_model *m, char *buf, size_t len) {
    const vae_estimator *e = &m->est;
    snprintf(buf, len, "estimator %s; samples %d; beta %.17g; temperature %.17g; hard %d; dreg %d; baseline %s",
             vae_estimator_name(e->kind), e->samples, e->beta, e->temperature, e->hard, e->dreg,
             e->baseline_loo ? "loo" : e->baseline ? "network" : "none");
}

static const char *latent_kind_name(vae_latent_kind k) {
    return k == LATENT_NORMAL ? "normal" : k == LATENT_CATEGORICAL ? "categorical" : "bernoulli";
}

/* One example's rows - its samples, or the joint states the decoder runs on
 * where the latents are enumerated (by the estimator, or by the evaluation
 * of discrete latents with at most 65536 joint states: g_model_enumerable) -
 * times the most values a row of the model holds must be within what vaec can
 * index (then so is every tensor of a graph at batch 1; g_build checks the
 * batch). */
static int rows_fit(checker *c, const ast_estimator *e, int enumerates) {
    const vae_model *m = c->m;
    double joint = 1;
    int discrete = 1;
    for (int i = 0; i < m->nlatents; i++) {
        joint *= m->latents[i].joint_states;
        discrete &= m->latents[i].kind != LATENT_NORMAL;
    }
    double widest = (double)m->max_example_values;
    const char *n = count_str(c, widest);
    if ((enumerates || (discrete && joint <= 65536)) &&
        !fits(c, e->loc, joint * widest,
              vae_pool_printf(c->pool, "enumerating the latents' %s joint states, %s values each", count_str(c, joint), n),
              "values"))
        return 0;
    int S = m->est.samples;
    return fits(c, e->loc, S * widest,
                vae_pool_printf(c->pool, "estimator '%s' with %d sample%s of %s values per example", e->name, S,
                                S == 1 ? "" : "s", n), "values");
}

static void check_estimator(checker *c, const ast_estimator *e) {
    vae_model *m = c->m;
    vae_estimator *est = &m->est;
    est->name = e->name;
    est->loc = e->loc;
    est->samples = 1;
    est->beta = 1.0;
    const estimator_info *info = NULL;
    for (size_t i = 0; i < NESTIMATORS; i++)
        if (strcmp(ESTIMATORS[i].name, e->name) == 0) info = &ESTIMATORS[i];
    if (!info) {
        ERR(e->loc, "unknown estimator '%s' (expected analytic, uniform, reinforce, reparam, iwae, prior, exact, "
                    "vimco or gumbel)", e->name);
        return;
    }
    est->kind = info->kind;
    int ok = 1;
    for (const ast_arg *a = e->args; a; a = a->next) {
        if (!a->name) {
            ERR(a->loc, "estimator options are named, as in %s(%s: ...)", e->name, info->options[0] ? info->options[0] : "beta");
            ok = 0;
            continue;
        }
        int known = 0;
        for (int i = 0; i < 5 && info->options[i]; i++) known |= strcmp(info->options[i], a->name) == 0;
        if (!known) {
            ERR(a->loc, "estimator '%s' has no option '%s'", e->name, a->name);
            ok = 0;
            continue;
        }
        const ast_expr *v = a->value;
        double num;
        if (vae_setting_named(a->name)) { /* samples, beta, temperature */
            if (!setting_value(c, a->loc, a->name, v, &num))
                ok = 0;
            else if (strcmp(a->name, "samples") == 0)
                est->samples = (int)num;
            else if (strcmp(a->name, "beta") == 0)
                est->beta = num;
            else
                est->temperature = num;
        } else if (strcmp(a->name, "hard") == 0) {
            if (v->kind != AST_NAME || (strcmp(v->str, "true") && strcmp(v->str, "false"))) {
                ERR(a->loc, "'hard' is true or false");
                ok = 0;
            } else
                est->hard = strcmp(v->str, "true") == 0;
        } else if (strcmp(a->name, "gradient") == 0) {
            if (v->kind != AST_NAME || strcmp(v->str, "dreg")) {
                ERR(a->loc, "'gradient' is dreg (the doubly reparameterised gradient)");
                ok = 0;
            } else
                est->dreg = 1;
        } else if (strcmp(a->name, "baseline") == 0) {
            if (v->kind != AST_NAME) {
                ERR(a->loc, "'baseline' names a baseline network or is loo");
                ok = 0;
            } else if (strcmp(v->str, "loo") == 0) {
                est->baseline_loo = 1;
            } else {
                const ast_network *b = NULL;
                for (const ast_network *n = m->ast->networks; n; n = n->next)
                    if (n->role == NET_BASELINE && strcmp(n->name, v->str) == 0) b = n;
                if (!b) {
                    ERR(v->loc, "unknown baseline '%s' (declare it with baseline %s(%s) { ... })", v->str, v->str,
                        m->data ? m->data->name : "x");
                    ok = 0;
                } else
                    est->baseline = b;
            }
        }
    }
    if (!ok) return;
    /* Applicability: every latent must be of a kind the estimator handles. */
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        if (!(info->latents & (1u << l->kind))) {
            ERR(e->loc, "estimator '%s' does not apply to %s latent '%s' (%s)", e->name, latent_kind_name(l->kind),
                l->name,
                l->kind == LATENT_NORMAL ? "it needs enumerable (categorical or bernoulli) latents"
                : info->kind == EST_GUMBEL ? "it relaxes categorical latents only"
                                           : "it needs a reparameterisable (normal) latent");
            ok = 0;
        }
        if (info->needs_encoder && !l->encoder) {
            ERR(e->loc, "estimator '%s' needs an encoder for latent '%s' (declare encoder q(%s | %s) { ... })",
                e->name, l->name, l->name, m->data ? m->data->name : "x");
            ok = 0;
        }
    }
    est->trains_encoder = info->needs_encoder;
    for (int i = 0; ok && !info->needs_encoder && i < m->nlatents; i++)
        if (m->latents[i].encoder) { /* evaluation then leaves it out too: an untrained q gives no ELBO worth a number */
            vae_warning(c->src, e->loc, "estimator '%s' does not use the encoder of '%s': it stays untrained, and test "
                        "values are the estimator's own bound (%s), not an ELBO", e->name, m->latents[i].name,
                        info->kind == EST_EXACT ? "the exact log p(x)" : "log p(x) estimated by sampling the prior");
            break;
        }
    if (ok && info->enumerates) {
        double joint = 1;
        for (int i = 0; i < m->nlatents; i++) joint *= m->latents[i].joint_states;
        if (joint > 65536) {
            if (joint < 1e15)
                ERR(e->loc, "estimator '%s' sums over every joint state of the latents, and they have %.0f (at most "
                            "65536 are enumerable)", e->name, joint);
            else
                ERR(e->loc, "estimator '%s' sums over every joint state of the latents, and they have %.3g (at most "
                            "65536 are enumerable)", e->name, joint);
            ok = 0;
        }
    }
    if (ok) ok = rows_fit(c, e, info->enumerates);
    if (ok && !info->built)
        ERR(e->loc, "estimator '%s' parses and checks, but is not built yet in this version of vaec", e->name);
    if (ok && info->kind == EST_VIMCO && est->samples < 2)
        ERR(e->loc, "vimco needs at least 2 samples: each sample's control variate comes from the others");
    if (ok && est->baseline_loo && est->samples < 2)
        ERR(e->loc, "reinforce(baseline: loo) needs at least 2 samples: each sample's baseline is the mean of the "
                    "others");
    if (ok && info->kind == EST_PRIOR)
        for (int i = 0; i < m->nlatents; i++)
            if (m->latents[i].prior.a)
                ERR(e->loc, "estimator 'prior' samples from the prior, so it cannot learn the prior of '%s' (its "
                            "gradient would need a score function); use exact or a fixed prior",
                    m->latents[i].name);
}

/* ---------------------------------------------------------------- train settings */

static void check_train(checker *c, const ast_train *t) {
    vae_train_settings *s = &c->m->train;
    const ast_assign *shards = NULL;
    for (const ast_assign *a = t->settings; a; a = a->next) {
        if (strcmp(a->name, "shards") == 0) shards = a;
        const ast_expr *v = a->value;
        double num;
        if (strcmp(a->name, "data") == 0 || strcmp(a->name, "test") == 0) {
            if (v->kind != AST_STR)
                ERR(v->loc, "'%s' is a data source in quotes, such as \"fashion-mnist:train\"", a->name);
            else if (strcmp(a->name, "data") == 0)
                s->data = v->str;
            else
                s->test = v->str;
        } else if (strcmp(a->name, "batch") == 0) {
            if (setting_value(c, v->loc, a->name, v, &num)) s->batch = (int)num;
        } else if (strcmp(a->name, "epochs") == 0) {
            if (setting_value(c, v->loc, a->name, v, &num)) s->epochs = (int)num;
        } else if (strcmp(a->name, "seed") == 0) {
            if (setting_value(c, v->loc, a->name, v, &num)) s->seed = (unsigned long long)num;
        } else if (strcmp(a->name, "warmup") == 0) {
            if (setting_value(c, v->loc, a->name, v, &num)) s->warmup = num;
        } else if (strcmp(a->name, "shards") == 0) {
            if (setting_value(c, v->loc, a->name, v, &num)) s->shards = (int)num;
        } else if (strcmp(a->name, "optimizer") == 0) {
            if (v->kind != AST_CALL || (strcmp(v->str, "adam") && strcmp(v->str, "sgd"))) {
                ERR(v->loc, "'optimizer' is adam(lr: F) or sgd(lr: F, momentum: F)");
                continue;
            }
            int adam = strcmp(v->str, "adam") == 0;
            s->optimizer = adam ? OPT_ADAM : OPT_SGD;
            static const char *const adam_opts[] = {"lr", NULL}, *const sgd_opts[] = {"lr", "momentum", NULL};
            if (!only_named(c, v, adam ? adam_opts : sgd_opts, "as an optimizer")) continue;
            const ast_arg *lr = named(v, "lr"), *mom = named(v, "momentum");
            if (lr && setting_value(c, lr->loc, "lr", lr->value, &num)) s->lr = num;
            if (mom && setting_value(c, mom->loc, "momentum", mom->value, &num)) s->momentum = num;
        } else {
            ERR(a->loc, "unknown train setting '%s' (expected data, test, optimizer, batch, epochs, seed, warmup or shards)",
                a->name);
        }
    }
    if (shards && s->shards > 0 && s->batch % s->shards != 0) /* a shard is batch / shards whole examples */
        ERR(shards->value->loc, "batch %d is not a multiple of shards %d: every shard has the same number of examples",
            s->batch, s->shards);
}

/* ---------------------------------------------------------------- the model */

int vae_check(vae_source *src, ast_model *ast, vae_model *m) {
    memset(m, 0, sizeof *m);
    m->src = src;
    m->ast = ast;
    m->name = ast->name;
    m->train.optimizer = OPT_ADAM;
    m->train.lr = 1e-3;
    m->train.batch = 128;
    m->train.epochs = 10;
    m->train.shards = 1;
    checker cc = {.src = src, .m = m, .pool = src->pool}, *c = &cc;
    int before = src->nerrors;

    /* data */
    if (!ast->data)
        ERR(ast->loc, "the model declares no data (add: data x[784] : binary)");
    for (const ast_data *d = ast->data; d; d = d->next) {
        if (d != ast->data) {
            ERR(d->loc, "a model has exactly one data declaration; '%s' is a second one", d->name);
            continue;
        }
        m->data = d;
        m->binary = d->binary;
        shape ds = shape_of_ast(&d->shape);
        if (!fits(c, d->loc, shape_exact(ds), vae_pool_printf(c->pool, "data '%s' %s", d->name, shape_str(c, ds)),
                  "values per example"))
            continue; /* data_dim stays 0: the networks see an unknown shape */
        m->data_dim = shape_size(ds);
        note_values(c, m->data_dim);
    }
    /* latents */
    if (!ast->latents) ERR(ast->loc, "the model declares no latent (add: latent z[20] ~ normal(0, 1))");
    for (const ast_latent *l = ast->latents; l; l = l->next) {
        if (m->data && strcmp(l->name, m->data->name) == 0) {
            ERR(l->loc, "'%s' is already the data's name", l->name);
            continue;
        }
        if (find_latent(m, l->name)) {
            ERR(l->loc, "latent '%s' is declared twice", l->name);
            continue;
        }
        if (m->nlatents == VAE_MAX_LATENTS) {
            ERR(l->loc, "too many latents (at most %d)", VAE_MAX_LATENTS);
            break;
        }
        vae_latent *v = &m->latents[m->nlatents++];
        v->ast = l;
        v->name = l->name;
        check_prior(c, v);
    }
    /* networks, in source order: their parameters take that order */
    int nnetworks = 0;
    for (const ast_network *n = ast->networks; n; n = n->next) {
        if (++nnetworks > VAE_MAX_NETWORKS) { /* each is compared with those before it */
            ERR(n->loc, "too many networks (at most %d)", VAE_MAX_NETWORKS);
            break;
        }
        for (const ast_network *o = ast->networks; o != n; o = o->next)
            if (strcmp(o->name, n->name) == 0) ERR(n->loc, "network '%s' is declared twice", n->name);
        check_network(c, n);
    }
    if (!m->decoder) ERR(ast->loc, "the model declares no decoder (add: decoder p(x | z) { ... })");
    for (int i = 0; i < m->nlatents && m->decoder; i++) {
        int used = 0;
        for (const ast_name *g = m->decoder->given; g; g = g->next) used |= strcmp(g->name, m->latents[i].name) == 0;
        if (!used) ERR(m->latents[i].ast->loc, "latent '%s' is not given to the decoder", m->latents[i].name);
    }
    /* estimator */
    if (!ast->estimators) ERR(ast->loc, "the model declares no estimator (add: estimator reparam)");
    for (const ast_estimator *e = ast->estimators; e; e = e->next) {
        if (e != ast->estimators) {
            ERR(e->loc, "a model has one estimator; this is a second one");
            continue;
        }
        check_estimator(c, e);
    }
    for (const ast_network *n = ast->networks; n; n = n->next)
        if (n->role == NET_BASELINE) {
            if (m->est.baseline == n) m->baseline_net = n;
        }
    /* train */
    for (const ast_train *t = ast->trains; t; t = t->next) {
        if (t != ast->trains) ERR(t->loc, "a model has one train block; this is a second one");
        else check_train(c, t);
    }
    if (src->nerrors == before) return 0;
    vae_error_summary(src);
    return -1;
}

const vae_param *vae_model_param(const vae_model *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}

/* ---------------------------------------------------------------- summaries */

static void print_dist(FILE *out, const vae_dist *d) {
    switch (d->kind) {
    case DIST_NORMAL:
        if (d->standard) fputs("normal(0, 1)", out);
        else fprintf(out, "normal(mean, %s)", d->b_is_scale ? "scale" : "logvar");
        break;
    case DIST_BERNOULLI:
        if (!d->a) fprintf(out, "bernoulli(%g)", d->fixed_p);
        else fprintf(out, "bernoulli(%s)", d->a_is_probs ? "probs" : "logits");
        break;
    case DIST_CATEGORICAL: fputs(d->a ? "categorical(logits)" : "categorical(uniform)", out); break;
    }
}

void vae_print_objective(FILE *out, const vae_model *m) {
    const vae_estimator *e = &m->est;
    const char *x = m->data ? m->data->name : "x";
    char z[256] = "";
    size_t n = 0;
    for (int i = 0; i < m->nlatents; i++)
        n += (size_t)snprintf(z + n, sizeof z - n, "%s%s", i ? "," : "", m->latents[i].name);
    switch (e->kind) {
    case EST_REPARAM: {
        int S = e->samples;
        fprintf(out, "  maximise  ELBO(%s) = ", x);
        if (S > 1) fprintf(out, "(1/%d) sum_{s=1..%d} ", S, S);
        fprintf(out, "log p(%s | %s%s)", x, z, S > 1 ? "_s" : "");
        if (e->beta != 1) fprintf(out, " - %g * ", e->beta);
        else fputs(" - ", out);
        fputs("KL(q(", out);
        fprintf(out, "%s | %s) || p(%s))\n", z, x, z);
        for (int i = 0; i < m->nlatents; i++) {
            const vae_latent *l = &m->latents[i];
            fprintf(out, "    %s%s = mean + %s * eps%s,  eps%s ~ normal(0, 1)   (reparameterised)\n", l->name,
                    S > 1 ? "_s" : "", l->posterior.b_is_scale ? "scale" : "exp(logvar / 2)", S > 1 ? "_s" : "",
                    S > 1 ? "_s" : "");
            if (l->posterior.b_is_scale)
                fprintf(out, "    KL = 0.5 * sum(mean^2 + scale^2 - 1 - 2 log scale)   (closed form)\n");
            else
                fprintf(out, "    KL = 0.5 * sum(mean^2 + exp(logvar) - 1 - logvar)   (closed form)\n");
        }
        break;
    }
    default: fprintf(out, "  maximise  the %s objective (see docs/estimators.md)\n", vae_estimator_name(e->kind));
    }
    fprintf(out, "  averaged over the batch; the gradient is derived at compile time\n");
}

void vae_print_summary(FILE *out, const vae_model *m) {
    fprintf(out, "model %s\n", m->name);
    if (m->data)
        fprintf(out, "  data      %s: %d values, %s\n", m->data->name, m->data_dim, m->binary ? "binary" : "real");
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        fprintf(out, "  latent    %s: %d %s variable%s, prior ", l->name, l->nvars, latent_kind_name(l->kind),
                l->nvars == 1 ? "" : "s");
        print_dist(out, &l->prior);
        if (l->encoder) {
            fprintf(out, ", encoder %s returns ", l->encoder->name);
            print_dist(out, &l->posterior);
        }
        fputc('\n', out);
    }
    if (m->decoder) {
        fprintf(out, "  decoder   %s returns ", m->decoder->name);
        print_dist(out, &m->likelihood);
        fputc('\n', out);
    }
    fprintf(out, "  estimator %s", vae_estimator_name(m->est.kind));
    if (m->est.samples != 1) fprintf(out, " (samples: %d)", m->est.samples);
    if (m->est.beta != 1) fprintf(out, " (beta: %g)", m->est.beta);
    fputc('\n', out);
    fprintf(out, "  parameters %ld in %d tensors\n", m->param_floats, m->nparams);
    for (int i = 0; i < m->nparams; i++) {
        const vae_param *p = &m->params[i];
        fprintf(out, "    %-28s [", p->name);
        for (int d = 0; d < p->ndims; d++) fprintf(out, "%s%d", d ? ", " : "", p->dims[d]);
        fprintf(out, "]\n");
    }
}
