/* The grammar of the .vae language (docs/language.md).  Actions only call the
 * small builders of parser/ast.c; all checking happens later in check.c. */
%define api.pure full
%define parse.error verbose
%locations
%expect 0
%param {void *scanner}
%parse-param {struct vae_parse_state *ps}

%code requires {
#include "parser/parse_state.h"
}

%code {
#include <string.h>
#include "parser/build.h"
int yylex(YYSTYPE *lval, YYLTYPE *lloc, void *scanner);
static void yyerror(YYLTYPE *loc, void *scanner, struct vae_parse_state *ps, const char *msg);
#define L(l) vae_build_loc(ps, (l))
}

%union {
    struct { double value; int is_int; } num;
    const char *str;
    ast_expr *expr;
    ast_arg *arg;
    ast_assign *assign;
    ast_name *name;
    ast_shape shape;
    int role;
    struct { ast_assign *body; ast_expr *ret; int ret_line, ret_col; } block;
}

%token T_MODEL "model" T_DATA "data" T_LATENT "latent" T_ENCODER "encoder"
%token T_DECODER "decoder" T_BASELINE "baseline" T_CONTROL "control" T_ESTIMATOR "estimator"
%token T_TRAIN "train" T_RETURN "return" T_PARAM "param" T_PRIOR "prior"
%token <num> T_NUMBER "number"
%token <str> T_IDENT "identifier" T_STRING "string"
%token T_ERROR "invalid token"

%type <expr> expr term unary atom call opt_tilde
%type <arg> args arg opt_args
%type <assign> assigns settings
%type <name> names opt_given
%type <shape> shape dims opt_shape
%type <role> role
%type <str> setting_target
%type <block> block

%%

file
    : "model" T_IDENT { ps->model = vae_build_model(ps, $2, L(@2)); } decls
    ;

decls
    : %empty
    | decls decl
    ;

decl
    : "data" T_IDENT opt_shape ':' T_IDENT opt_args opt_tilde
          { vae_build_data(ps, $2, $3, $5, $6, $7, L(@5), L(@1)); }
    | "latent" T_IDENT opt_shape opt_tilde     { vae_build_latent(ps, $2, $3, $4, L(@1)); }
    | role T_IDENT '(' T_IDENT opt_given ')' block
          { vae_build_network(ps, $1, $2, $4, L(@4), $5, $7.body, $7.ret, vae_build_loc_lc(ps, $7.ret_line, $7.ret_col), L(@1)); }
    | "estimator" T_IDENT opt_args             { vae_build_estimator(ps, $2, $3, L(@2)); }
    | "estimator" "prior" opt_args             { vae_build_estimator(ps, "prior", $3, L(@2)); }
    | "train" '{' settings '}'                 { vae_build_train(ps, $3, L(@1)); }
    | error                                    { /* reported; resume at the next declaration */ }
    ;

role
    : "encoder"   { $$ = NET_ENCODER; }
    | "decoder"   { $$ = NET_DECODER; }
    | "baseline"  { $$ = NET_BASELINE; }
    | "control"   { $$ = NET_CONTROL; }
    | "prior"     { $$ = NET_PRIOR; }
    ;

/* Version 1: a latent (or a label) without `~` takes its prior from a prior network. */
opt_tilde
    : %empty     { $$ = NULL; }
    | '~' call   { $$ = $2; }
    ;

opt_given
    : %empty          { $$ = NULL; }
    | '|' names       { $$ = $2; }
    ;

names
    : T_IDENT              { $$ = vae_build_name(ps, NULL, $1, L(@1)); }
    | names ',' T_IDENT    { $$ = vae_build_name(ps, $1, $3, L(@3)); }
    ;

block
    : '{' assigns "return" expr '}'   { $$.body = $2; $$.ret = $4; $$.ret_line = @3.first_line; $$.ret_col = @3.first_column; }
    ;

assigns
    : %empty                        { $$ = NULL; }
    | assigns T_IDENT '=' expr      { $$ = vae_build_assign(ps, $1, $2, $4, L(@2)); }
    ;

/* The train block's names are plain words, `data` among them (a keyword elsewhere).  A
 * setting may name the networks it is for: `optimizer prior = sgd(lr: 1e-2)`. */
settings
    : %empty                           { $$ = NULL; }
    | settings T_IDENT '=' expr        { $$ = vae_build_assign(ps, $1, $2, $4, L(@2)); }
    | settings "data" '=' expr         { $$ = vae_build_assign(ps, $1, "data", $4, L(@2)); }
    | settings T_IDENT setting_target '=' expr
          { $$ = vae_build_assign(ps, $1, $2, $5, L(@2)); vae_build_target(ps, $$, $3, L(@3)); }
    ;

/* a network's name, or a role: every network of it (prior: also the priors' own parameters) */
setting_target
    : T_IDENT      { $$ = $1; }
    | "prior"      { $$ = "prior"; }
    | "encoder"    { $$ = "encoder"; }
    | "decoder"    { $$ = "decoder"; }
    | "baseline"   { $$ = "baseline"; }
    ;

opt_args
    : %empty             { $$ = NULL; }
    | '(' ')'            { $$ = NULL; }
    | '(' args ')'       { $$ = $2; }
    ;

opt_shape
    : %empty   { $$.ndims = 0; }
    | shape    { $$ = $1; }
    ;

shape
    : '[' dims ']'   { $$ = $2; $$.loc = L(@1); }
    ;

dims
    : T_NUMBER            { $$.ndims = 0; vae_build_dim(ps, &$$, $1.value, $1.is_int, L(@1)); }
    | dims ',' T_NUMBER   { $$ = $1; vae_build_dim(ps, &$$, $3.value, $3.is_int, L(@3)); }
    ;

expr
    : term
    | expr '+' term   { $$ = vae_build_binop(ps, '+', $1, $3, L(@2)); }
    | expr '-' term   { $$ = vae_build_binop(ps, '-', $1, $3, L(@2)); }
    ;

term
    : unary
    | term '*' unary  { $$ = vae_build_binop(ps, '*', $1, $3, L(@2)); }
    | term '/' unary  { $$ = vae_build_binop(ps, '/', $1, $3, L(@2)); }
    ;

unary
    : atom
    | '-' atom        { $$ = vae_build_neg(ps, $2, L(@1)); }
    ;

atom
    : T_NUMBER        { $$ = vae_build_num(ps, $1.value, $1.is_int, L(@1)); }
    | T_STRING        { $$ = vae_build_str(ps, AST_STR, $1, L(@1)); }
    | T_IDENT         { $$ = vae_build_str(ps, AST_NAME, $1, L(@1)); }
    | call
    | "param" shape   { $$ = vae_build_param(ps, $2, L(@1)); }
    | '(' expr ')'    { $$ = $2; }
    ;

call
    : T_IDENT '(' ')'        { $$ = vae_build_call(ps, $1, NULL, L(@1)); }
    | T_IDENT '(' args ')'   { $$ = vae_build_call(ps, $1, $3, L(@1)); }
    ;

args
    : arg             { $$ = $1; }
    | args ',' arg    { $$ = vae_build_arg_append($1, $3); }
    ;

arg
    : expr                { $$ = vae_build_arg(ps, NULL, $1, @1.first_line, @1.first_column); }
    | T_IDENT ':' expr    { $$ = vae_build_arg(ps, $1, $3, @1.first_line, @1.first_column); }
    | "baseline" ':' expr { $$ = vae_build_arg(ps, "baseline", $3, @1.first_line, @1.first_column); }
    | "control" ':' expr  { $$ = vae_build_arg(ps, "control", $3, @1.first_line, @1.first_column); }
    ;

%%

static void yyerror(YYLTYPE *loc, void *scanner, struct vae_parse_state *ps, const char *msg) {
    (void)scanner;
    if (ps->stopped) return; /* the lexer stopped at a limit and said why */
    if (strcmp(msg, "memory exhausted") == 0) { /* Bison's stack passed YYMAXDEPTH */
        vae_parse_error_at(ps, loc->first_line, loc->first_column,
                           "the model is nested too deeply for the parser (more than %d symbols pending)", YYMAXDEPTH);
        ps->stopped = 1;
        return;
    }
    if (ps->lex_error) { /* the lexer said it better */
        ps->lex_error = 0;
        return;
    }
    /* Bison says "syntax error, unexpected X, expecting Y"; drop the first two words. */
    if (strncmp(msg, "syntax error, ", 14) == 0) msg += 14;
    vae_parse_error_at(ps, loc->first_line, loc->first_column, "%s", msg);
}
