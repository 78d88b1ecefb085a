/* vae_parse: runs the Flex scanner and the Bison parser over one source. */
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
    if (rc != 0 || src->nerrors) return NULL;
    return ps.model;
}
