/* The lowering of networks (lower.c), which the estimators (estimators.c, structured.c)
 * and the deployment graphs (deploy.c) call: an environment of named nodes. */
#ifndef VAE_LOWER_H
#define VAE_LOWER_H

#include "codegen/graph.h"

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

#endif
