/* Shared by the lowering of networks (graph.c) and of the estimators
 * (estimators.c): an environment of named nodes, and the densities. */
#ifndef VAE_LOWER_H
#define VAE_LOWER_H

#include "codegen/graph.h"

#define LOG_2PI 1.8378770664093454835606594728112

typedef struct {
    const char *name;
    g_node *node;
} env_entry;

typedef struct {
    g_graph *g;
    FILE *err;
    int failed;
    int detach_params; /* parameters read while set get no gradient (DReG's second decoder pass) */
    env_entry env[VAE_MAX_ASSIGNS + VAE_MAX_LATENTS + 1]; /* a network's assignments, the latents, the data */
    int nenv;
} lowering;

/* An expression is a tensor node, or a compile-time scalar. */
typedef struct {
    g_node *node;
    double c;
} value;

void env_bind(lowering *L, const char *name, g_node *n);
g_node *env_lookup(lowering *L, const char *name);
g_node *param_node(lowering *L, int index, int rows);
value tensor(g_node *n);
value scalar(double c);
value lower(lowering *L, const ast_expr *e);
g_node *lower_node(lowering *L, const ast_expr *e);
/* Runs a network body; returns the nodes of the distribution's arguments a (and b). */
void lower_network(lowering *L, const ast_network *n, const vae_dist *d, g_node **a, g_node **b);
/* Elementwise log-density of the data ($0) under d with parameters $1, $2. */
const vx_expr *loglik_expr(g_graph *g, const vae_dist *d);
/* log p(x | params) per row: [rows, 1]. */
g_node *loglik_rows(g_graph *g, g_node *x, const vae_dist *d, g_node *a, g_node *b, int rows);

#endif
