/* Sources, diagnostics, the AST builders used by the grammar, and the AST dump. */
#include "parser/ast.h"
#include "parser/build.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- pool */

struct pool_chunk {
    struct pool_chunk *next;
    size_t used, size;
    max_align_t data[];
};
struct vae_pool {
    struct pool_chunk *head;
    size_t bytes; /* in its chunks */
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
        p->bytes += size;
        c->next = p->head;
        p->head = c;
    }
    void *r = (char *)c->data + c->used;
    c->used += n;
    memset(r, 0, n);
    return r;
}

size_t vae_pool_bytes(const vae_pool *p) { return p->bytes; }

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

/* The first byte of text that is not UTF-8, or NULL.  Overlong forms,
 * surrogates and values past U+10FFFF are refused as RFC 3629 says. */
static const unsigned char *first_bad_utf8(const unsigned char *p, const unsigned char *end) {
    while (p < end) {
        unsigned c = *p;
        int n = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
        if (n < 0 || end - p <= n) return p; /* not a lead byte, or cut short by the end */
        unsigned lo = 0x80, hi = 0xbf; /* the second byte's range */
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
        if (n > 0 && (p[1] < lo || p[1] > hi)) return p;
        for (int k = 2; k <= n; k++)
            if ((p[k] & 0xc0) != 0x80) return p;
        p += n + 1;
    }
    return NULL;
}

/* The line and column (both 1-based, the column in bytes as the lexer counts)
 * of text[at]. */
static vae_loc loc_of(const vae_source *src, size_t at) {
    vae_loc loc = {src->path, 1, 1};
    for (size_t i = 0; i < at; i++) {
        if (src->text[i] == '\n') {
            loc.line++;
            loc.col = 1;
        } else
            loc.col++;
    }
    return loc;
}

/* What the lexer cannot be given: NUL bytes, text that is not UTF-8, and a
 * carriage return not followed by a line feed (old Mac line ends: the lexer
 * would read the whole file as one line, and a comment would swallow the
 * rest).  A UTF-8 byte-order mark is dropped, and CRLF line ends are fine.
 * Returns 0, or -1 with the place reported. */
static int check_text(vae_source *src) {
    static const char BOM[] = "\xef\xbb\xbf";
    if (src->len >= 3 && memcmp(src->text, BOM, 3) == 0) {
        memmove(src->text, src->text + 3, src->len - 2); /* with the NUL */
        src->len -= 3;
    }
    const char *nul = memchr(src->text, 0, src->len);
    if (nul) {
        vae_error(src, loc_of(src, (size_t)(nul - src->text)),
                  "the model is not a text file (it contains a NUL byte here)");
        return -1;
    }
    const unsigned char *text = (const unsigned char *)src->text;
    const unsigned char *bad = first_bad_utf8(text, text + src->len);
    if (bad) {
        vae_error(src, loc_of(src, (size_t)(bad - text)),
                  "the model is not UTF-8 text (byte 0x%02x here); save it as UTF-8", *bad);
        return -1;
    }
    for (size_t i = 0; i < src->len; i++)
        if (src->text[i] == '\r' && src->text[i + 1] != '\n') {
            vae_error(src, loc_of(src, i),
                      "a carriage return without a line feed (old Mac line ends); save the file with LF or CRLF line ends");
            return -1;
        }
    return 0;
}

/* Reads a regular file of at most VAE_MAX_SOURCE_BYTES; NULL (message
 * printed) otherwise.  Opened without blocking, so that a FIFO is refused
 * rather than waited on. */
static char *read_model_file(const char *path, FILE *err, size_t *len_out) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        fprintf(err, "%s: error: cannot open the model: %s\n", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    const char *refusal = NULL;
    if (fstat(fd, &st) != 0)
        refusal = strerror(errno);
    else if (S_ISDIR(st.st_mode))
        refusal = "it is a directory, not a model file";
    else if (!S_ISREG(st.st_mode))
        refusal = "it is not a regular file (a device, FIFO or socket); a model is a text file";
    else if (st.st_size > VAE_MAX_SOURCE_BYTES)
        refusal = "it is larger than 1 MiB, too large to be a model";
    char *text = NULL;
    size_t len = 0;
    if (!refusal) {
        /* the size fstat gave, growing if the file does, up to one byte past the limit */
        size_t cap = (size_t)st.st_size + 1;
        text = malloc(cap + 1);
        while (text && len <= VAE_MAX_SOURCE_BYTES) {
            if (len == cap) {
                cap = cap * 2 > VAE_MAX_SOURCE_BYTES + 1 ? VAE_MAX_SOURCE_BYTES + 1 : cap * 2;
                text = realloc(text, cap + 1);
                if (!text) break;
            }
            ssize_t n = read(fd, text + len, cap - len);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) refusal = strerror(errno);
            if (n <= 0) break;
            len += (size_t)n;
        }
        if (!text) abort();
        if (!refusal && len > VAE_MAX_SOURCE_BYTES) refusal = "it is larger than 1 MiB, too large to be a model";
    }
    close(fd);
    if (refusal) {
        fprintf(err, "%s: error: cannot read the model: %s\n", path, refusal);
        free(text);
        return NULL;
    }
    text[len] = 0;
    *len_out = len;
    return text;
}

vae_source *vae_source_load(const char *path, FILE *err) {
    if (!err) err = stderr;
    size_t len;
    char *text = read_model_file(path, err, &len);
    if (!text) return NULL;
    vae_source *src = source_new(path, text, len, err);
    if (check_text(src) != 0) {
        vae_source_free(src);
        return NULL;
    }
    return src;
}

vae_source *vae_source_from_string(const char *name, const char *text, FILE *err) {
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    if (!copy) abort();
    memcpy(copy, text, len + 1);
    vae_source *src = source_new(name, copy, len, err);
    if (check_text(src) != 0) {
        vae_source_free(src);
        return NULL;
    }
    return src;
}

void vae_source_free(vae_source *src) {
    if (!src) return;
    free(src->text);
    vae_pool_free(src->pool);
    free(src);
}

/* Writes the source line `line` and a caret under column `col` (tabs kept so
 * that the caret lines up in a terminal); of a very long line, only the part
 * around the caret, with "..." where it is cut. */
static void show_line(FILE *out, const vae_source *src, int line, int col) {
    enum { SHOWN = 160, BEFORE = 60 }; /* bytes shown of a long line, and before the caret */
    const char *p = src->text, *end = src->text + src->len;
    for (int l = 1; l < line && p < end; p++)
        if (*p == '\n') l++;
    const char *e = p;
    while (e < end && *e != '\n' && *e != '\r') e++; /* CRLF, or the lone CR that check_text refuses */
    const char *from = p, *to = e, *caret = p + (col > 1 ? col - 1 : 0);
    if (caret > e) caret = e;
    if (e - p > SHOWN + 3 && caret - from > BEFORE + 3) from = caret - BEFORE;
    while (from > p && from < e && ((unsigned char)*from & 0xc0) == 0x80) from--; /* not inside a UTF-8 character */
    if (to - from > SHOWN + 3) to = from + SHOWN;
    while (to < e && ((unsigned char)*to & 0xc0) == 0x80) to++;
    fprintf(out, "    %s%.*s%s\n    %s", from > p ? "..." : "", (int)(to - from), from, to < e ? "..." : "",
            from > p ? "   " : "");
    for (const char *c = from; c < caret; c++) fputc(*c == '\t' ? '\t' : ' ', out);
    fputs("^\n", out);
}

/* One diagnostic, formatted in memory and written at once: stderr is
 * unbuffered, and a character at a time made 40,000 errors take 81 s. */
static void report(vae_source *src, vae_loc loc, const char *kind, const char *fmt, va_list ap) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) abort();
    fprintf(out, "%s:%d:%d: %s: ", loc.file ? loc.file : src->path, loc.line, loc.col, kind);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    if (loc.line > 0 && (!loc.file || strcmp(loc.file, src->path) == 0)) show_line(out, src, loc.line, loc.col);
    else if (loc.line > 0 && src->also && strcmp(loc.file, src->also->path) == 0)
        show_line(out, src->also, loc.line, loc.col); /* an estimator given on the command line */
    fclose(out);
    fwrite(text, 1, len, src->err);
    free(text);
}

/* Past the first VAE_MAX_ERRORS_SHOWN errors, errors (and their notes) are
 * counted, not printed. */
static int shown(const vae_source *src) { return src->nerrors <= VAE_MAX_ERRORS_SHOWN; }

void vae_error(vae_source *src, vae_loc loc, const char *fmt, ...) {
    src->nerrors++;
    if (!shown(src)) return;
    va_list ap;
    va_start(ap, fmt);
    report(src, loc, "error", fmt, ap);
    va_end(ap);
}

void vae_warning(vae_source *src, vae_loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    report(src, loc, "warning", fmt, ap);
    va_end(ap);
}

void vae_note(vae_source *src, vae_loc loc, const char *fmt, ...) {
    if (!shown(src)) return;
    va_list ap;
    va_start(ap, fmt);
    report(src, loc, "note", fmt, ap);
    va_end(ap);
}

void vae_error_summary(vae_source *src) {
    if (src->nerrors > VAE_MAX_ERRORS_SHOWN) {
        /* "39,950": digits in groups of three, as a person reads a count */
        char digits[32], grouped[48];
        int n = snprintf(digits, sizeof digits, "%d", src->nerrors - VAE_MAX_ERRORS_SHOWN), k = 0;
        for (int i = 0; i < n; i++) {
            if (i > 0 && (n - i) % 3 == 0) grouped[k++] = ',';
            grouped[k++] = digits[i];
        }
        grouped[k] = 0;
        fprintf(src->err, "%s: ... and %s more error%s (only the first %d are shown)\n", src->path, grouped,
                src->nerrors - VAE_MAX_ERRORS_SHOWN == 1 ? "" : "s", VAE_MAX_ERRORS_SHOWN);
    }
}

void vae_parse_error_at(struct vae_parse_state *ps, int line, int col, const char *fmt, ...) {
    vae_source *src = ps->src;
    src->nerrors++;
    if (!shown(src)) return;
    vae_loc loc = {src->path, line, col};
    va_list ap;
    va_start(ap, fmt);
    report(src, loc, "error", fmt, ap);
    va_end(ap);
}

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
            fprintf(out, "    %s = ", a->name);
            ast_dump_expr(out, a->value);
            fputc('\n', out);
        }
    }
}
