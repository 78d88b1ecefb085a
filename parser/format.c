/* vaec fmt: one canonical layout for .vae files (docs/language.md, "Formatting").
 *
 * The formatter works on the tokens, not on the syntax tree: the tree groups the
 * declarations by kind and has no comments, while the tokens keep the author's
 * order, spellings (1e-3 stays 1e-3) and parentheses.  The lexer keeps comments
 * aside when asked (vae_parse_state.comments) and they are merged back by
 * position.  Where lines break, how they are indented and spaced, and which blank
 * lines stay are decided here alone, from the kinds of the tokens and from where
 * declarations and statements start.  A file is formatted only if it parses, and
 * the result is parsed again: it must give the same tree and the same comments. */
#include "parser/format.h"

#include <stdlib.h>
#include <string.h>

#include "parser/parse_state.h"
#include "parser/parser.h"
#include "lexer/lexer.h"

enum {
    FMT_COMMENT = -1, /* an item's kind when it is a comment; tokens have parser.h's codes */
    INDENT = 4,       /* spaces per level: a block's statements, a continued line */
    COMMENT_GAP = 2   /* spaces between the longest line of a group and its end-of-line comments */
};

typedef struct {
    int kind;
    int line, col;
    const char *text;
    int len;
    int unary; /* a '-' that negates: written against its operand */
} fmt_item;

typedef struct {
    char *code; /* malloc'd, without the indentation; NULL on a line that is only a comment */
    size_t len, cap;
    const fmt_item *comment; /* at the end of the line, or the whole line */
    int indent, blank_before;
} fmt_line;

typedef struct {
    const fmt_item *it;
    int n;
    fmt_line *lines;
    int nlines, cap;
    int brace, depth; /* inside a block; parentheses and brackets open */
    int prev;         /* the last token placed (not a comment), -1 before the first */
    int stmt;         /* the token that started the last statement in a block, -1 before one */
    int last_kind, last_line; /* the last item placed, token or comment, and its source line */
    int break_next;   /* a comment ended the line, or a block opened: the next item starts a line */
} fmt_state;

void vae_comment_record(struct vae_parse_state *ps, int line, int col, const char *text, size_t len) {
    vae_comment_list *l = ps->comments;
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\r')) len--;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->items = realloc(l->items, (size_t)l->cap * sizeof *l->items);
        if (!l->items) abort();
    }
    char *t = vae_pool_alloc(ps->src->pool, len + 1);
    memcpy(t, text, len);
    l->items[l->n++] = (vae_comment){line, col, t};
}

static void push_item(fmt_item **items, int *n, int *cap, fmt_item item) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        *items = realloc(*items, (size_t)*cap * sizeof **items);
        if (!*items) abort();
    }
    (*items)[(*n)++] = item;
}

/* Where each line of src starts (index line - 1), for the text of a token from its location. */
static size_t *line_starts(const vae_source *src) {
    size_t lines = 1;
    for (size_t i = 0; i < src->len; i++) lines += src->text[i] == '\n';
    size_t *start = malloc(lines * sizeof *start), k = 0;
    if (!start) abort();
    start[k++] = 0;
    for (size_t i = 0; i < src->len; i++)
        if (src->text[i] == '\n') start[k++] = i + 1;
    return start;
}

/* Whether a token can end an operand, so that a '-' after it subtracts (and one after anything else negates). */
static int ends_operand(int kind) {
    return kind == T_IDENT || kind == T_NUMBER || kind == T_STRING || kind == ')' || kind == ']';
}

/* Every token and comment of src in source order; src must be free of lexical errors. */
static fmt_item *lex_items(vae_source *src, int *n_out) {
    vae_comment_list comments = {0};
    struct vae_parse_state ps = {.src = src, .line = 1, .col = 1, .comments = &comments};
    yyscan_t scanner;
    if (yylex_init_extra(&ps, &scanner)) abort();
    ps.scanner = scanner;
    YY_BUFFER_STATE buf = yy_scan_bytes(src->text, (int)src->len, scanner);
    size_t *start = line_starts(src);
    fmt_item *items = NULL;
    int n = 0, cap = 0, kind, taken = 0, prev_kind = 0;
    YYSTYPE lval;
    YYLTYPE loc;
    for (;;) {
        kind = yylex(&lval, &loc, scanner);
        for (; taken < comments.n; taken++) { /* the comments read before this token */
            const vae_comment *c = &comments.items[taken];
            push_item(&items, &n, &cap, (fmt_item){FMT_COMMENT, c->line, c->col, c->text, (int)strlen(c->text), 0});
        }
        if (kind == 0) break;
        const char *text = src->text + start[loc.first_line - 1] + loc.first_column - 1;
        int len = loc.last_column - loc.first_column + 1;
        int unary = kind == '-' && !ends_operand(prev_kind);
        push_item(&items, &n, &cap, (fmt_item){kind, loc.first_line, loc.first_column, text, len, unary});
        prev_kind = kind;
    }
    yy_delete_buffer(buf, scanner);
    yylex_destroy(scanner);
    free(start);
    free(comments.items);
    *n_out = n;
    return items;
}

/* ---------------------------------------------------------------- layout */

static int next_token(const fmt_state *s, int i) {
    for (i++; i < s->n && s->it[i].kind == FMT_COMMENT; i++) {}
    return i;
}

/* A setting's target: a network's name or a role (parser.y setting_target). */
static int is_target(int kind) {
    return kind == T_IDENT || kind == T_PRIOR || kind == T_ENCODER || kind == T_DECODER || kind == T_BASELINE;
}

/* The indentation of token i when it starts a declaration or a statement (or closes
 * a block), which always begin a line; -1 when it continues one. */
static int statement_indent(const fmt_state *s, int i) {
    int kind = s->it[i].kind;
    if (kind == '}') return 0;
    if (s->depth > 0) return -1;
    if (!s->brace) switch (kind) {
        case T_MODEL: case T_DATA: case T_LATENT: case T_ENCODER: case T_DECODER: case T_BASELINE: case T_CONTROL:
        case T_ESTIMATOR: case T_TRAIN: return 0;
        case T_PRIOR: return s->prev >= 0 && s->it[s->prev].kind == T_ESTIMATOR ? -1 : 0; /* `estimator prior` */
        default: return -1;
        }
    if (kind == T_RETURN) return INDENT;
    if (kind != T_IDENT && kind != T_DATA) return -1;
    int j = next_token(s, i), k = j < s->n ? next_token(s, j) : s->n;
    if (j < s->n && s->it[j].kind == '=') /* a name, or the target of `optimizer prior = ...` */
        return s->prev >= 0 && s->prev == s->stmt ? -1 : INDENT;
    int after_operand = s->prev < 0 || s->it[s->prev].kind == '{' || ends_operand(s->it[s->prev].kind);
    if (kind == T_IDENT && after_operand && j < s->n && is_target(s->it[j].kind) && k < s->n && s->it[k].kind == '=')
        return INDENT; /* `optimizer prior = ...`: an operand cannot be followed by another, so a setting starts */
    return -1;
}

/* A line that continues a declaration or a statement (after a comment that ended its line). */
static int continuation_indent(const fmt_state *s) { return (s->brace ? INDENT : 0) + INDENT; }

/* Whether the author left a blank line before item i, and it may stay: between
 * declarations, statements and comment lines, but not first in a block nor before its end. */
static int blank_before(const fmt_state *s, int i) {
    if (s->nlines == 0 || s->it[i].line <= s->last_line + 1 || s->it[i].kind == '}') return 0;
    const fmt_line *l = &s->lines[s->nlines - 1];
    return !(l->code && l->code[l->len - 1] == '{'); /* the line that opened the block */
}

static void new_line(fmt_state *s, int indent, int blank) {
    if (s->nlines == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->lines = realloc(s->lines, (size_t)s->cap * sizeof *s->lines);
        if (!s->lines) abort();
    }
    s->lines[s->nlines++] = (fmt_line){.indent = indent, .blank_before = blank};
    s->break_next = 0;
}

static void append(fmt_line *l, const char *text, size_t len) {
    if (l->len + len + 1 > l->cap) {
        l->cap = 2 * (l->len + len + 1);
        l->code = realloc(l->code, l->cap);
        if (!l->code) abort();
    }
    memcpy(l->code + l->len, text, len);
    l->len += len;
    l->code[l->len] = 0;
}

/* One space between two tokens of a line, except: none inside parentheses and
 * brackets, before ',' or a call's '(' or a shape's '[', after a negating '-', and
 * before the ':' of a named argument (but `data x : binary`). */
static int space_between(const fmt_state *s, const fmt_item *prev, const fmt_item *t) {
    if (prev->kind == '(' || prev->kind == '[' || prev->unary) return 0;
    switch (t->kind) {
    case ',': case ')': case ']': case '[': return 0;
    case '(': return !(prev->kind == T_IDENT || prev->kind == T_PRIOR);
    case ':': return s->depth == 0;
    default: return 1;
    }
}

static void place_token(fmt_state *s, int i) {
    const fmt_item *t = &s->it[i];
    int indent = statement_indent(s, i);
    if (indent == INDENT) s->stmt = i;
    int empty_block = t->kind == '}' && s->last_kind == '{'; /* `train {}` */
    if (empty_block) append(&s->lines[s->nlines - 1], "}", 1);
    else if (indent >= 0 || s->break_next || s->nlines == 0) {
        new_line(s, indent >= 0 ? indent : continuation_indent(s), indent >= 0 && blank_before(s, i));
        append(&s->lines[s->nlines - 1], t->text, (size_t)t->len);
    } else {
        fmt_line *l = &s->lines[s->nlines - 1];
        if (space_between(s, &s->it[s->prev], t)) append(l, " ", 1);
        append(l, t->text, (size_t)t->len);
    }
    switch (t->kind) {
    case '(': case '[': s->depth++; break;
    case ')': case ']': s->depth--; break;
    case '{': s->brace = 1; s->break_next = 1; break;
    case '}': s->brace = 0; break;
    default: break;
    }
    s->prev = i;
    s->last_kind = t->kind;
    s->last_line = t->line;
}

/* A comment stays at the end of the line it ended, or on a line of its own,
 * indented as the declaration or statement after it (as a continuation inside one). */
static void place_comment(fmt_state *s, int i) {
    const fmt_item *c = &s->it[i];
    if (s->nlines > 0 && c->line == s->last_line)
        s->lines[s->nlines - 1].comment = c;
    else {
        int next = next_token(s, i);
        int indent = next < s->n ? statement_indent(s, next) : 0;
        if (next < s->n && s->it[next].kind == '}') indent = INDENT; /* the last thing in a block */
        new_line(s, indent >= 0 ? indent : continuation_indent(s), indent >= 0 && blank_before(s, i));
        s->lines[s->nlines - 1].comment = c;
    }
    s->break_next = 1;
    s->last_kind = FMT_COMMENT;
    s->last_line = c->line;
}

/* End-of-line comments of consecutive lines start in one column, COMMENT_GAP past the longest line. */
static void render(FILE *out, const fmt_line *lines, int n) {
    for (int i = 0, j; i < n; i = j) {
        size_t width = 0;
        j = i + 1;
        if (lines[i].code && lines[i].comment)
            for (j = i; j < n && lines[j].code && lines[j].comment && (j == i || !lines[j].blank_before); j++)
                if ((size_t)lines[j].indent + lines[j].len > width) width = (size_t)lines[j].indent + lines[j].len;
        for (int k = i; k < j; k++) {
            const fmt_line *l = &lines[k];
            if (l->blank_before) fputc('\n', out);
            fprintf(out, "%*s%s", l->indent, "", l->code ? l->code : "");
            if (l->comment)
                fprintf(out, "%*s%.*s", l->code ? (int)(width + COMMENT_GAP - l->indent - l->len) : 0, "",
                        l->comment->len, l->comment->text);
            fputc('\n', out);
        }
    }
}

static char *layout(const fmt_item *items, int n, size_t *len) {
    fmt_state s = {.it = items, .n = n, .prev = -1, .stmt = -1};
    for (int i = 0; i < n; i++) {
        if (items[i].kind == FMT_COMMENT) place_comment(&s, i);
        else place_token(&s, i);
    }
    char *text = NULL;
    FILE *out = open_memstream(&text, len);
    if (!out) abort();
    render(out, s.lines, s.nlines);
    fclose(out);
    for (int i = 0; i < s.nlines; i++) free(s.lines[i].code);
    free(s.lines);
    return text;
}

/* ---------------------------------------------------------------- the guard */

static char *dump_of(const ast_model *m) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) abort();
    ast_dump(out, m);
    fclose(out);
    return text;
}

/* Whether the formatted text parses to the tree of the original and keeps its comments, in order. */
static int keeps_meaning(vae_source *src, const ast_model *m, const fmt_item *items, int n, const char *text) {
    vae_source *again = vae_source_from_string(src->path, text, src->err);
    ast_model *m2 = again ? vae_parse(again) : NULL;
    int same = 0;
    if (m2) {
        char *a = dump_of(m), *b = dump_of(m2);
        same = strcmp(a, b) == 0;
        free(a);
        free(b);
        int n2, k = 0;
        fmt_item *items2 = lex_items(again, &n2);
        for (int i = 0; i < n && same; i++) {
            if (items[i].kind != FMT_COMMENT) continue;
            while (k < n2 && items2[k].kind != FMT_COMMENT) k++;
            same = k < n2 && strcmp(items[i].text, items2[k].text) == 0;
            k++;
        }
        while (same && k < n2) same = items2[k++].kind != FMT_COMMENT;
        free(items2);
    }
    vae_source_free(again);
    return same;
}

char *vae_format(vae_source *src, size_t *len) {
    ast_model *m = vae_parse(src);
    if (!m) return NULL;
    int n;
    fmt_item *items = lex_items(src, &n);
    char *text = layout(items, n, len);
    if (!keeps_meaning(src, m, items, n, text)) {
        fprintf(src->err, "%s: error: internal error in the formatter: its layout would change the model or lose a "
                          "comment, so the file is left as it is (please report it with the file)\n", src->path);
        free(text);
        text = NULL;
    }
    free(items);
    return text;
}
