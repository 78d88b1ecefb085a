/* What the lexer and the parser share while reading one file. */
#ifndef VAE_PARSE_STATE_H
#define VAE_PARSE_STATE_H

#include "parser/ast.h"

/* A comment as written, from its '#' to the end of its line: the parser never
 * sees comments; the formatter (parser/format.c) asks the lexer to keep them here. */
typedef struct {
    int line, col;
    const char *text; /* in the source's pool */
} vae_comment;

typedef struct {
    vae_comment *items; /* malloc'd; the reader frees it */
    int n, cap;
} vae_comment_list;

struct vae_parse_state {
    vae_source *src;
    void *scanner; /* yyscan_t */
    int line, col; /* position of the next character */
    ast_model *model;
    int lex_error; /* the lexer already reported the token that the parser will reject */
    int nesting;   /* parentheses open now */
    int stopped;   /* a limit was passed: the lexer reads no further (it returns the end of input) */
    vae_comment_list *comments; /* when set, the lexer appends every comment to it */
};

void vae_parse_error_at(struct vae_parse_state *ps, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void vae_comment_record(struct vae_parse_state *ps, int line, int col, const char *text, size_t len);

#endif
