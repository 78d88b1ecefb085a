/* Sources, diagnostics, the AST builders used by the grammar, and the AST dump. */
#include "parser/ast.h"
#include "parser/build.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- pool */

struct pool_chunk {
    struct pool_chunk *next;
    size_t used, size;
    max_align_t data[];
};
struct vae_pool {
    struct pool_chunk *head;
};

vae_pool *vae_pool_new(void) {
    vae_pool *p = calloc(1, sizeof *p);
    if (!p) abort();
    return p;
}

void vae_pool_free(vae_pool *p) {
    if (!p) return;
    for (struct pool_chunk *c = p->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(p);
}

void *vae_pool_alloc(vae_pool *p, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct pool_chunk *c = p->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + size);
        if (!c) {
            fputs("vaec: out of memory\n", stderr);
            abort();
        }
        c->size = size;
        c->used = 0;
        c->next = p->head;
        p->head = c;
    }
    void *r = (char *)c->data + c->used;
    c->used += n;
    memset(r, 0, n);
    return r;
}

char *vae_pool_strdup(vae_pool *p, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = vae_pool_alloc(p, n);
    memcpy(d, s, n);
    return d;
}

char *vae_pool_printf(vae_pool *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = vae_pool_alloc(p, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* ---------------------------------------------------------------- sources */

static vae_source *source_new(const char *path, char *text, size_t len, FILE *err) {
    vae_source *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->pool = vae_pool_new();
    s->path = vae_pool_strdup(s->pool, path);
    s->text = text;
    s->len = len;
    s->err = err ? err : stderr;
    return s;
}

vae_source *vae_source_load(const char *path, FILE *err) {
    if (!err) err = stderr;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(err, "%s: error: cannot open the model: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    for (;;) {
        if (!text) abort();
        size_t n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (len + 1 < cap) break;
        cap *= 2;
        text = realloc(text, cap);
    }
    int bad = ferror(f);
    fclose(f);
    text[len] = 0;
    if (bad) {
        fprintf(err, "%s: error: cannot read the model\n", path);
        free(text);
        return NULL;
    }
    if (memchr(text, 0, len)) {
        fprintf(err, "%s: error: the model is not a text file (it contains NUL bytes)\n", path);
        free(text);
        return NULL;
    }
    return source_new(path, text, len, err);
}

vae_source *vae_source_from_string(const char *name, const char *text, FILE *err) {
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    if (!copy) abort();
    memcpy(copy, text, len + 1);
    return source_new(name, copy, len, err);
}

void vae_source_free(vae_source *src) {
    if (!src) return;
    free(src->text);
    vae_pool_free(src->pool);
    free(src);
}

/* Prints the source line `line` and a caret under column `col` (tabs kept so
 * that the caret lines up in a terminal). */
static void show_line(vae_source *src, int line, int col) {
    const char *p = src->text, *end = src->text + src->len;
    for (int l = 1; l < line && p < end; p++)
        if (*p == '\n') l++;
    const char *e = p;
    while (e < end && *e != '\n') e++;
    fprintf(src->err, "    %.*s\n    ", (int)(e - p), p);
    for (int c = 1; c < col && p + c - 1 < e; c++) fputc(p[c - 1] == '\t' ? '\t' : ' ', src->err);
    fputs("^\n", src->err);
}

static void report(vae_source *src, vae_loc loc, const char *kind, const char *fmt, va_list ap) {
    fprintf(src->err, "%s:%d:%d: %s: ", loc.file ? loc.file : src->path, loc.line, loc.col, kind);
    vfprintf(src->err, fmt, ap);
    fputc('\n', src->err);
    if (loc.line > 0 && (!loc.file || strcmp(loc.file, src->path) == 0)) show_line(src, loc.line, loc.col);
}

void vae_error(vae_source *src, vae_loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    report(src, loc, "error", fmt, ap);
    va_end(ap);
    src->nerrors++;
}

void vae_note(vae_source *src, vae_loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    report(src, loc, "note", fmt, ap);
    va_end(ap);
}

void vae_parse_error_at(struct vae_parse_state *ps, int line, int col, const char *fmt, ...) {
    vae_loc loc = {ps->src->path, line, col};
    va_list ap;
    va_start(ap, fmt);
    report(ps->src, loc, "error", fmt, ap);
    va_end(ap);
    ps->src->nerrors++;
}

/* ---------------------------------------------------------------- builders */

#define NEW(ps, T) ((T *)vae_pool_alloc((ps)->src->pool, sizeof(T)))
#define APPEND(head, node)                                                                         \
    do {                                                                                           \
        __typeof__(node) *pp_ = &(head);                                                           \
        while (*pp_) pp_ = &(*pp_)->next;                                                          \
        *pp_ = (node);                                                                             \
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
                    vae_loc kind_loc, vae_loc loc) {
    ast_data *d = NEW(ps, ast_data);
    d->name = name;
    d->shape = shape;
    d->loc = loc;
    if (strcmp(kind, "binary") == 0)
        d->binary = 1;
    else if (strcmp(kind, "real") == 0)
        d->binary = 0;
    else
        vae_error(ps->src, kind_loc, "unknown data kind '%s' (expected 'binary' or 'real')", kind);
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

static ast_expr *expr_new(struct vae_parse_state *ps, ast_expr_kind k, vae_loc loc) {
    ast_expr *e = NEW(ps, ast_expr);
    e->kind = k;
    e->loc = loc;
    return e;
}

ast_expr *vae_build_binop(struct vae_parse_state *ps, char op, ast_expr *l, ast_expr *r, vae_loc loc) {
    ast_expr *e = expr_new(ps, AST_BINOP, loc);
    e->op = op;
    e->lhs = l;
    e->rhs = r;
    return e;
}

ast_expr *vae_build_neg(struct vae_parse_state *ps, ast_expr *x, vae_loc loc) {
    ast_expr *e = expr_new(ps, AST_NEG, loc);
    e->lhs = x;
    return e;
}

ast_expr *vae_build_num(struct vae_parse_state *ps, double v, int is_int, vae_loc loc) {
    ast_expr *e = expr_new(ps, AST_NUM, loc);
    e->num = v;
    e->is_int = is_int;
    return e;
}

ast_expr *vae_build_str(struct vae_parse_state *ps, ast_expr_kind kind, const char *s, vae_loc loc) {
    ast_expr *e = expr_new(ps, kind, loc);
    e->str = s;
    return e;
}

ast_expr *vae_build_param(struct vae_parse_state *ps, ast_shape shape, vae_loc loc) {
    ast_expr *e = expr_new(ps, AST_PARAM, loc);
    e->ndims = shape.ndims;
    memcpy(e->dims, shape.dims, sizeof e->dims);
    return e;
}

ast_expr *vae_build_call(struct vae_parse_state *ps, const char *name, ast_arg *args, vae_loc loc) {
    ast_expr *e = expr_new(ps, AST_CALL, loc);
    e->str = name;
    e->args = args;
    return e;
}

ast_arg *vae_build_arg(struct vae_parse_state *ps, const char *name, ast_expr *value, int line, int col) {
    ast_arg *a = NEW(ps, ast_arg);
    a->name = name;
    a->value = value;
    a->loc = vae_build_loc_lc(ps, line, col);
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
        fprintf(out, " %s\n", d->binary ? "binary" : "real");
    }
    for (const ast_latent *l = m->latents; l; l = l->next) {
        fprintf(out, "  latent %s ", l->name);
        dump_shape(out, l->shape.ndims, l->shape.dims);
        fputs(" ~ ", out);
        ast_dump_expr(out, l->prior);
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
            fprintf(out, "    %s = ", a->name);
            ast_dump_expr(out, a->value);
            fputc('\n', out);
        }
    }
}
