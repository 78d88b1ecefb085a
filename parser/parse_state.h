/* What the lexer and the parser share while reading one file. */
#ifndef VAE_PARSE_STATE_H
#define VAE_PARSE_STATE_H

#include "parser/ast.h"

struct vae_parse_state {
    vae_source *src;
    void *scanner; /* yyscan_t */
    int line, col; /* position of the next character */
    ast_model *model;
    int lex_error; /* the lexer already reported the token that the parser will reject */
    int nesting;   /* parentheses open now */
    int stopped;   /* a limit was passed: the lexer reads no further (it returns the end of input) */
};

void vae_parse_error_at(struct vae_parse_state *ps, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
