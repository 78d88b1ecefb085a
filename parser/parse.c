/* vae_parse: runs the Flex scanner and the Bison parser over one source. */
#include <stdlib.h>
#include <string.h>

#include "parser/parse_state.h"
#include "parser/parser.h"
#include "lexer/lexer.h"

ast_model *vae_parse(vae_source *src) {
    struct vae_parse_state ps = {.src = src, .line = 1, .col = 1};
    yyscan_t scanner;
    if (yylex_init_extra(&ps, &scanner)) return NULL;
    ps.scanner = scanner;
    YY_BUFFER_STATE buf = yy_scan_bytes(src->text, (int)src->len, scanner);
    int rc = yyparse(scanner, &ps);
    yy_delete_buffer(buf, scanner);
    yylex_destroy(scanner);
    if (rc != 0 || src->nerrors) {
        vae_error_summary(src);
        return NULL;
    }
    return ps.model;
}

ast_estimator *vae_parse_estimator(vae_source *src) {
    /* The estimator is parsed as the one declaration of a model of its own;
     * the wrapper sits on line 0, so the text itself is line 1, column 1. */
    static const char prefix[] = "model _ estimator\n";
    size_t n = src->len, np = sizeof prefix - 1;
    char *text = malloc(np + n + 1);
    if (!text) abort();
    memcpy(text, prefix, np);
    memcpy(text + np, src->text, n + 1);
    struct vae_parse_state ps = {.src = src, .line = 0, .col = 1};
    yyscan_t scanner;
    ast_estimator *e = NULL;
    if (yylex_init_extra(&ps, &scanner) == 0) {
        ps.scanner = scanner;
        YY_BUFFER_STATE buf = yy_scan_bytes(text, (int)(np + n), scanner);
        int rc = yyparse(scanner, &ps);
        yy_delete_buffer(buf, scanner);
        yylex_destroy(scanner);
        if (rc == 0 && !src->nerrors && ps.model && ps.model->estimators && !ps.model->data && !ps.model->latents &&
            !ps.model->networks && !ps.model->trains && !ps.model->estimators->next)
            e = ps.model->estimators;
        else if (rc == 0 && !src->nerrors)
            vae_parse_error_at(&ps, 1, 1, "expected one estimator, such as reinforce(samples: 10)");
    }
    vae_error_summary(src);
    free(text);
    return e;
}
