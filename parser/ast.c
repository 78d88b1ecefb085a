/* The AST builders used by the grammar, and the AST dump. */
#include "parser/ast.h"
#include "parser/build.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- builders */

#define NEW(ps, T) ((T *)vae_pool_alloc((ps)->src->pool, sizeof(T)))
/* Appends in constant time: the head keeps the list's last node. */
#define APPEND(head, node)                                                                         \
    do {                                                                                           \
        if (head)                                                                                  \
            (head)->last->next = (node);                                                           \
        else                                                                                       \
            (head) = (node);                                                                       \
        (head)->last = (node);                                                                     \
    } while (0)

vae_loc vae_build_loc_lc(struct vae_parse_state *ps, int line, int col) {
    vae_loc l = {ps->src->path, line, col};
    return l;
}

static ast_model *model_of(struct vae_parse_state *ps) {
    if (!ps->model) { /* `model NAME` was malformed: collect the rest anyway */
        ps->model = NEW(ps, ast_model);
        ps->model->name = "?";
    }
    return ps->model;
}

ast_model *vae_build_model(struct vae_parse_state *ps, const char *name, vae_loc loc) {
    ast_model *m = NEW(ps, ast_model);
    m->name = name;
    m->loc = loc;
    return m;
}

void vae_build_data(struct vae_parse_state *ps, const char *name, ast_shape shape, const char *kind,
                    ast_arg *kind_args, ast_expr *prior, vae_loc kind_loc, vae_loc loc) {
    ast_data *d = NEW(ps, ast_data);
    d->name = name;
    d->shape = shape;
    d->loc = loc;
    d->kind_loc = kind_loc;
    d->prior = prior;
    int nargs = 0;
    for (const ast_arg *a = kind_args; a; a = a->next) nargs++;
    if (strcmp(kind, "binary") == 0) {
        d->binary = 1;
        if (nargs && (nargs != 1 || kind_args->name || kind_args->value->kind != AST_NAME ||
                      strcmp(kind_args->value->str, "dynamic")))
            vae_error(ps->src, kind_loc, "binary data is written 'binary' or 'binary(dynamic)'");
        d->dynamic = nargs > 0;
    } else if (strcmp(kind, "real") == 0) {
        if (nargs) vae_error(ps->src, kind_loc, "'real' takes no arguments");
    } else if (strcmp(kind, "label") == 0) {
        d->label = 1;
        d->label_args = kind_args; /* the checker reads K */
    } else {
        vae_error(ps->src, kind_loc, "unknown data kind '%s' (expected 'binary' or 'real')", kind);
    }
    if (prior && !d->label)
        vae_error(ps->src, prior->loc, "only a label takes a prior after '~' (data y : label(K) ~ categorical(...))");
    APPEND(model_of(ps)->data, d);
}

void vae_build_latent(struct vae_parse_state *ps, const char *name, ast_shape shape, ast_expr *prior,
                      vae_loc loc) {
    ast_latent *l = NEW(ps, ast_latent);
    l->name = name;
    l->shape = shape;
    l->prior = prior;
    l->loc = loc;
    APPEND(model_of(ps)->latents, l);
}

void vae_build_network(struct vae_parse_state *ps, int role, const char *name, const char *output,
                       vae_loc output_loc, ast_name *given, ast_assign *body, ast_expr *ret,
                       vae_loc ret_loc, vae_loc loc) {
    ast_network *n = NEW(ps, ast_network);
    n->role = (ast_net_role)role;
    n->name = name;
    n->output = vae_build_name(ps, NULL, output, output_loc);
    n->given = given;
    n->body = body;
    n->ret = ret;
    n->ret_loc = ret_loc;
    n->loc = loc;
    APPEND(model_of(ps)->networks, n);
}

void vae_build_estimator(struct vae_parse_state *ps, const char *name, ast_arg *args, vae_loc loc) {
    ast_estimator *e = NEW(ps, ast_estimator);
    e->name = name;
    e->args = args;
    e->loc = loc;
    APPEND(model_of(ps)->estimators, e);
}

void vae_build_train(struct vae_parse_state *ps, ast_assign *settings, vae_loc loc) {
    ast_train *t = NEW(ps, ast_train);
    t->settings = settings;
    t->loc = loc;
    APPEND(model_of(ps)->trains, t);
}

ast_name *vae_build_name(struct vae_parse_state *ps, ast_name *list, const char *name, vae_loc loc) {
    ast_name *n = NEW(ps, ast_name);
    n->name = name;
    n->loc = loc;
    APPEND(list, n);
    return list;
}

ast_assign *vae_build_assign(struct vae_parse_state *ps, ast_assign *list, const char *name,
                             ast_expr *value, vae_loc loc) {
    ast_assign *a = NEW(ps, ast_assign);
    a->name = name;
    a->value = value;
    a->loc = loc;
    APPEND(list, a);
    return list;
}

void vae_build_target(struct vae_parse_state *ps, ast_assign *list, const char *target, vae_loc loc) {
    (void)ps;
    list->last->target = target;
    list->last->target_loc = loc;
}

void vae_build_dim(struct vae_parse_state *ps, ast_shape *shape, double value, int is_int, vae_loc loc) {
    if (!is_int || value < 1 || value > 1e8) {
        vae_error(ps->src, loc, "a dimension must be a positive integer, at most 100000000");
        value = 1;
    }
    if (shape->ndims == VAE_MAX_DIMS) {
        vae_error(ps->src, loc, "too many dimensions (at most %d)", VAE_MAX_DIMS);
        return;
    }
    shape->dims[shape->ndims++] = (int)value;
}

/* A new expression node over subtrees of `parts_size` nodes in all; an error
 * the first time an expression grows past VAE_MAX_EXPR_SIZE, not again for
 * each node above it (`parts_over`: a subtree was reported already).  Sizes
 * stop at VAE_MAX_EXPR_SIZE + 1. */
static ast_expr *expr_new(struct vae_parse_state *ps, ast_expr_kind k, vae_loc loc, int parts_size, int parts_over) {
    ast_expr *e = NEW(ps, ast_expr);
    e->kind = k;
    e->loc = loc;
    int size = 1 + parts_size;
    if (size > VAE_MAX_EXPR_SIZE && !parts_over)
        vae_error(ps->src, loc,
                  "expression too long: more than %d names, numbers, calls and operators in one expression "
                  "(split it into several assignments)",
                  VAE_MAX_EXPR_SIZE);
    e->size = size > VAE_MAX_EXPR_SIZE ? VAE_MAX_EXPR_SIZE + 1 : size;
    return e;
}

static int too_long(const ast_expr *e) { return e->size > VAE_MAX_EXPR_SIZE; }

ast_expr *vae_build_binop(struct vae_parse_state *ps, char op, ast_expr *l, ast_expr *r, vae_loc loc) {
    ast_expr *e = expr_new(ps, AST_BINOP, loc, l->size + r->size, too_long(l) || too_long(r));
    e->op = op;
    e->lhs = l;
    e->rhs = r;
    return e;
}

ast_expr *vae_build_neg(struct vae_parse_state *ps, ast_expr *x, vae_loc loc) {
    ast_expr *e = expr_new(ps, AST_NEG, loc, x->size, too_long(x));
    e->lhs = x;
    return e;
}

ast_expr *vae_build_num(struct vae_parse_state *ps, double v, int is_int, vae_loc loc) {
    ast_expr *e = expr_new(ps, AST_NUM, loc, 0, 0);
    e->num = v;
    e->is_int = is_int;
    return e;
}

ast_expr *vae_build_str(struct vae_parse_state *ps, ast_expr_kind kind, const char *s, vae_loc loc) {
    ast_expr *e = expr_new(ps, kind, loc, 0, 0);
    e->str = s;
    return e;
}

ast_expr *vae_build_param(struct vae_parse_state *ps, ast_shape shape, vae_loc loc) {
    ast_expr *e = expr_new(ps, AST_PARAM, loc, 0, 0);
    e->ndims = shape.ndims;
    memcpy(e->dims, shape.dims, sizeof e->dims);
    return e;
}

ast_expr *vae_build_call(struct vae_parse_state *ps, const char *name, ast_arg *args, vae_loc loc) {
    int size = 0, over = 0;
    for (const ast_arg *a = args; a; a = a->next) {
        size += a->value->size;
        over |= too_long(a->value);
        if (size > VAE_MAX_EXPR_SIZE) size = VAE_MAX_EXPR_SIZE + 1; /* no overflow with many arguments */
    }
    ast_expr *e = expr_new(ps, AST_CALL, loc, size, over);
    e->str = name;
    e->args = args;
    return e;
}

ast_arg *vae_build_arg(struct vae_parse_state *ps, const char *name, ast_expr *value, int line, int col) {
    ast_arg *a = NEW(ps, ast_arg);
    a->name = name;
    a->value = value;
    a->loc = vae_build_loc_lc(ps, line, col);
    a->last = a; /* a list of one (args: arg) */
    return a;
}

ast_arg *vae_build_arg_append(ast_arg *list, ast_arg *a) {
    APPEND(list, a);
    return list;
}

/* ---------------------------------------------------------------- dump */

const char *ast_role_name(ast_net_role r) {
    switch (r) {
    case NET_ENCODER: return "encoder";
    case NET_DECODER: return "decoder";
    case NET_BASELINE: return "baseline";
    case NET_PRIOR: return "prior";
    case NET_CONTROL: return "control";
    }
    return "?";
}

static void dump_shape(FILE *out, int ndims, const int *dims) {
    fputc('[', out);
    for (int i = 0; i < ndims; i++) fprintf(out, "%s%d", i ? ", " : "", dims[i]);
    fputc(']', out);
}

static void dump_args(FILE *out, const ast_arg *a) {
    for (; a; a = a->next) {
        if (a->name) fprintf(out, "%s: ", a->name);
        ast_dump_expr(out, a->value);
        if (a->next) fputs(", ", out);
    }
}

/* Fully parenthesised, so that a dump shows how the parser grouped things. */
void ast_dump_expr(FILE *out, const ast_expr *e) {
    switch (e->kind) {
    case AST_NUM: fprintf(out, "%.17g", e->num); break;
    case AST_STR: fprintf(out, "\"%s\"", e->str); break;
    case AST_NAME: fputs(e->str, out); break;
    case AST_CALL:
        fprintf(out, "%s(", e->str);
        dump_args(out, e->args);
        fputc(')', out);
        break;
    case AST_PARAM:
        fputs("param", out);
        dump_shape(out, e->ndims, e->dims);
        break;
    case AST_BINOP:
        fputc('(', out);
        ast_dump_expr(out, e->lhs);
        fprintf(out, " %c ", e->op);
        ast_dump_expr(out, e->rhs);
        fputc(')', out);
        break;
    case AST_NEG:
        fputs("(-", out);
        ast_dump_expr(out, e->lhs);
        fputc(')', out);
        break;
    }
}

void ast_dump(FILE *out, const ast_model *m) {
    fprintf(out, "model %s\n", m->name);
    for (const ast_data *d = m->data; d; d = d->next) {
        fprintf(out, "  data %s ", d->name);
        dump_shape(out, d->shape.ndims, d->shape.dims);
        if (d->label) {
            fputs(" label(", out);
            dump_args(out, d->label_args);
            fputc(')', out);
        } else
            fprintf(out, " %s%s", d->binary ? "binary" : "real", d->dynamic ? "(dynamic)" : "");
        if (d->prior) {
            fputs(" ~ ", out);
            ast_dump_expr(out, d->prior);
        }
        fputc('\n', out);
    }
    for (const ast_latent *l = m->latents; l; l = l->next) {
        fprintf(out, "  latent %s ", l->name);
        dump_shape(out, l->shape.ndims, l->shape.dims);
        if (l->prior) {
            fputs(" ~ ", out);
            ast_dump_expr(out, l->prior);
        } else
            fputs(" (prior network)", out);
        fputc('\n', out);
    }
    for (const ast_network *n = m->networks; n; n = n->next) {
        fprintf(out, "  %s %s(%s", ast_role_name(n->role), n->name, n->output->name);
        for (const ast_name *g = n->given; g; g = g->next)
            fprintf(out, "%s%s", g == n->given ? " | " : ", ", g->name);
        fputs(")\n", out);
        for (const ast_assign *a = n->body; a; a = a->next) {
            fprintf(out, "    %s = ", a->name);
            ast_dump_expr(out, a->value);
            fputc('\n', out);
        }
        fputs("    return ", out);
        ast_dump_expr(out, n->ret);
        fputc('\n', out);
    }
    for (const ast_estimator *e = m->estimators; e; e = e->next) {
        fprintf(out, "  estimator %s(", e->name);
        dump_args(out, e->args);
        fputs(")\n", out);
    }
    for (const ast_train *t = m->trains; t; t = t->next) {
        fputs("  train\n", out);
        for (const ast_assign *a = t->settings; a; a = a->next) {
            fprintf(out, a->target ? "    %s %s = " : "    %s = ", a->name, a->target);
            ast_dump_expr(out, a->value);
            fputc('\n', out);
        }
    }
}
