/* The syntax tree of a .vae file (its memory and its diagnostics: parser/pool.h, parser/diag.h).
 *
 * Every node carries the location of its first token.  Nodes live in one
 * vae_pool owned by the vae_source they were parsed from; nothing is freed
 * one by one.  Lists are singly linked through `next` in source order; while
 * the parser builds a list, its first node's `last` points at its last, so
 * that appending does not walk the list (50,000 assignments took seconds). */
#ifndef VAE_AST_H
#define VAE_AST_H

#include <stddef.h>
#include <stdio.h>

#include "parser/diag.h"
#include "parser/pool.h"

/* ---- expressions ---- */
typedef enum {
    AST_NUM,   /* 400, 1e-3: num (is_int when written without '.' or exponent) */
    AST_STR,   /* "fashion-mnist:train": str */
    AST_NAME,  /* h: str */
    AST_CALL,  /* dense(h, 400): str = callee, args */
    AST_PARAM, /* param[784]: dims */
    AST_BINOP, /* lhs op rhs, op one of + - * / */
    AST_NEG    /* -lhs */
} ast_expr_kind;

#define VAE_MAX_DIMS 8
/* Limits that keep every stage's recursion over an expression bounded (the
 * checker, the lowering, the AST dump): parentheses open at once (groupings
 * and calls), and nodes of one expression.  Real models use 3 and about 10;
 * a longer computation is split over assignments, which nothing walks
 * recursively. */
#define VAE_MAX_NESTING 64
#define VAE_MAX_EXPR_SIZE 1000

typedef struct ast_expr ast_expr;
typedef struct ast_arg ast_arg;

struct ast_arg {
    const char *name; /* "mean" in mean: E; NULL when positional */
    ast_expr *value;
    vae_loc loc;
    ast_arg *next, *last;
};

/* The layers and functions a network may call.  The checker's table (parser/check_expr.c
 * LAYERS) is the one list of their names; it sets ast_expr.layer, on which the lowering
 * (codegen/lower.c lower_call) dispatches, so no later stage compares names again. */
typedef enum {
    LAYER_NONE, /* not a layer (a distribution, or not checked yet) */
    LAYER_DENSE,
    LAYER_CONV2D,
    LAYER_CONV_TRANSPOSE2D,
    LAYER_RELU,
    LAYER_TANH,
    LAYER_SIGMOID,
    LAYER_SOFTPLUS,
    LAYER_ELU,
    LAYER_EXP,
    LAYER_LEAKY_RELU,
    LAYER_CONCAT,
    LAYER_ONEHOT,
    LAYER_RESHAPE,
    LAYER_FLATTEN
} vae_layer;

/* A convolution's shapes: input [in_c, in_h, in_w] -> output [out_c, out_h, out_w]. */
typedef struct {
    int in_c, in_h, in_w, out_c, out_h, out_w, kernel, stride, pad;
} ast_conv;

struct ast_expr {
    ast_expr_kind kind;
    vae_loc loc;
    double num;
    int is_int;
    const char *str;
    ast_arg *args;
    char op;
    ast_expr *lhs, *rhs;
    int ndims;
    int dims[VAE_MAX_DIMS];
    int size;          /* nodes in this subtree (names, numbers, calls, operators), at most VAE_MAX_EXPR_SIZE + 1 */
    const char *pname; /* dense, conv and param: the parameter name the checker gave this call site */
    int param;         /* ... and the index in vae_model.params of its first parameter (dense and conv:
                          the weight, the bias next), which the lowering reads: no lookup by name */
    ast_conv conv;     /* conv2d, conv_transpose2d: the geometry the checker found */
    vae_layer layer;   /* calls: which layer the checker found (LAYER_NONE before it ran) */
};

typedef struct {
    int ndims; /* 0: a scalar latent such as `latent z ~ categorical(10)` */
    int dims[VAE_MAX_DIMS];
    vae_loc loc;
} ast_shape;

/* name = expr, in network blocks and in the train block */
typedef struct ast_assign {
    const char *name;
    ast_expr *value;
    vae_loc loc;
    const char *target;  /* train settings: the networks it is for (`optimizer prior = ...`); NULL: all */
    vae_loc target_loc;
    struct ast_assign *next, *last;
} ast_assign;

typedef struct ast_data {
    const char *name;
    ast_shape shape;
    int binary; /* 1: binary, 0: real */
    /* version 1 */
    int dynamic;     /* binary(dynamic) */
    int label;       /* label(K): a class observed with each example */
    const ast_arg *label_args; /* the (K) of label(K), checked by the checker */
    ast_expr *prior; /* label(K) ~ categorical(logits: ...); NULL: uniform */
    vae_loc kind_loc;
    vae_loc loc;
    struct ast_data *next, *last;
} ast_data;

typedef struct ast_latent {
    const char *name;
    ast_shape shape;
    ast_expr *prior; /* a call: normal(0, 1), categorical(10), ...; NULL: a prior network gives it (version 1) */
    vae_loc loc;
    struct ast_latent *next, *last;
} ast_latent;

typedef enum {
    NET_ENCODER, NET_DECODER, NET_BASELINE, NET_PRIOR, /* version 1: prior p(z | a, ...) */
    NET_CONTROL /* control c(z | x): relax's control variate, one value per example from the relaxed latents */
} ast_net_role;

typedef struct ast_name {
    const char *name;
    vae_loc loc;
    struct ast_name *next, *last;
} ast_name;

typedef struct ast_network {
    ast_net_role role;
    const char *name;   /* q in `encoder q(z | x)` */
    ast_name *output;   /* z */
    ast_name *given;    /* x (a list; NULL for `baseline b(x)`) */
    ast_assign *body;
    ast_expr *ret;      /* the returned distribution */
    vae_loc loc, ret_loc;
    struct ast_network *next, *last;
} ast_network;

typedef struct ast_estimator {
    const char *name;
    ast_arg *args;
    vae_loc loc;
    struct ast_estimator *next, *last;
} ast_estimator;

typedef struct ast_train {
    ast_assign *settings;
    vae_loc loc;
    struct ast_train *next, *last;
} ast_train;

typedef struct ast_model {
    const char *name;
    vae_loc loc;
    ast_data *data;
    ast_latent *latents;
    ast_network *networks;
    ast_estimator *estimators;
    ast_train *trains;
} ast_model;

const char *ast_role_name(ast_net_role r);
/* Writes the tree in a stable, indented text form (used by tests and `vaec check --ast`). */
void ast_dump(FILE *out, const ast_model *m);
void ast_dump_expr(FILE *out, const ast_expr *e);

/* The parser: returns the model, or NULL when there were syntax errors (all reported). */
ast_model *vae_parse(vae_source *src);

#endif
