/* The densities, KL terms and reductions that the estimators are built from
 * (codegen/estimators.c for version 0 models, codegen/structured.c for
 * structured ones): one definition each, so the two builders compute the same
 * terms with the same operations in the same order. */
#ifndef VAE_DENSITIES_H
#define VAE_DENSITIES_H

#include "codegen/lower.h"

#define LOG_2PI 1.8378770664093454835606594728112

/* Expression builders; each needs a g_graph *g in scope. */
#define C(v) vx_const(g, (v))
#define IN(i) vx_in(g, (i))
#define U(op, a) vx_un(g, (op), (a))
#define BIN(op, a, b) vx_bin(g, (op), (a), (b))

/* The log-probabilities of a discrete distribution, in the form every
 * estimator needs: categorical -> log-softmax per variable [R, n*K];
 * bernoulli -> logits [R, n] (from probs when given so). */
typedef struct {
    g_node *table; /* NULL: a constant (uniform categorical, fixed bernoulli p) */
    double constant;
} logprob;

g_node *detached(g_node *n);                                /* stop-gradient: clears needs_grad */
g_node *sum_nodes(g_graph *g, g_node *acc, g_node *n);      /* acc + n (n when acc is NULL) */
g_node *constant(g_graph *g, double v, int rows, int cols);
g_node *rowmax(g_graph *g, g_node *a, int cols);            /* maxima over column groups, no gradient */
g_node *row_logsumexp(g_graph *g, g_node *a);               /* [R, C] -> [R, 1] */
g_node *group_logsumexp(g_graph *g, g_node *a, int B);      /* over consecutive rows: [B*S, 1] -> [B, 1] */
g_node *per_example(g_graph *g, g_node *a, int B);          /* a rows-1 output copied to B rows */
g_node *mean_times(g_graph *g, g_node *a, double w);        /* w * mean over rows: [1, 1] */
g_node *kl_weight(g_graph *g);                              /* beta under warm-up, [1, 1] */
void set_objective(g_graph *g, g_node *per_example_surrogate, double weight);

logprob discrete_logprob(g_graph *g, const vae_latent *l, g_node *arg, int is_probs, double fixed_p);
g_node *table_or_constant(g_graph *g, logprob p, int cols);
g_node *discrete_kl(g_graph *g, const vae_latent *l, logprob q, logprob p, int rows); /* [rows, 1] */
g_node *discrete_logprob_at(g_graph *g, const vae_latent *l, logprob p, g_node *z);    /* [rows(z), 1] */
g_node *discrete_logprob_states(g_graph *g, const vae_latent *l, logprob p, g_node *T); /* [rows(table), J] */

/* log N(z; mean, var) summed over a row, var = exp(spread) or spread^2 (is_scale) */
g_node *normal_logpdf(g_graph *g, g_node *z, g_node *mean, g_node *spread, int is_scale);
g_node *normal_logq(g_graph *g, const vae_latent *l, g_node *mean, g_node *spread, g_node *z);
g_node *normal_logp(g_graph *g, g_node *z);                 /* log N(z; 0, 1) summed over a row */
/* log p(x | z_j) for every example and state [B, J], from decoder outputs [J, D] */
g_node *loglik_states(g_graph *g, g_node *x, const vae_dist *d, g_node *a, g_node *b, int J);

/* Elementwise log-density of the data ($0) under d with parameters $1, $2. */
const vx_expr *loglik_expr(g_graph *g, const vae_dist *d);
/* log p(x | params) per row: [rows, 1]. */
g_node *loglik_rows(g_graph *g, g_node *x, const vae_dist *d, g_node *a, g_node *b, int rows);

/* Binary concrete (Maddison et al. 2017; Jang et al. 2017) for a Bernoulli latent: a = (logits + L) / T,
 * L standard logistic noise; *h = 1[a > 0], a draw from Bernoulli(sigmoid(logits)) (detached), and,
 * unless y is NULL, *y = sigmoid(a), or with hard h + (sigmoid(a) - sg(sigmoid(a))) (straight-through). */
void binary_concrete(g_graph *g, g_node *logits, g_node *noise, double T, int hard, g_node **h, g_node **y);
/* [rows, 1]: r % n, each row's index within its group of n (exact small integers). */
g_node *row_index(g_graph *g, int rows, int n);
/* The antithetic pairs' parity column (arm, disarm): 0 on even rows (b), 1 on odd rows (b~). */
g_node *antithetic_parity(g_graph *g, int rows);
/* Latent l's column of the joint states' table: [rows, width], its states changing every `stride` rows. */
g_node *latent_states(g_graph *g, const vae_latent *l, int rows, long stride);

/* L - L_-k for a bound L = log sum_k w_k over K consecutive rows of B groups (log w [B*K, 1]), L_-k
 * with w_k replaced by exp(replacement_k) [B*K, 1], or when NULL by the others' geometric mean
 * (VIMCO); detached, [B*K, 1]. */
g_node *swap_one_out(g_graph *g, g_node *logw, g_node *replacement, int B, int K);
/* VIMCO's score term sum_k sg(L - L_-k) log q(z_k | x): [B, 1] from log w and log q [B*K, 1]. */
g_node *vimco_score(g_graph *g, g_node *logw, g_node *logq, int B, int K);

/* Deployment pieces (deploy.c): parts joined column-wise; x ~ p(x | a, b) into api_out. */
g_node *join_parts(g_graph *g, g_node **parts, int n, int rows);
int draw_data(lowering *L, g_node *a, g_node *b, int B);

/* ---- the builders g_build (pipeline.c) sends a purpose to; each 0, or -1 (message printed) */
/* A structured model's graph (structured.c); -2 when the version 0 builder of that purpose
 * serves it too. */
int g_build_structured(lowering *L, g_purpose purpose, int batch, int samples);
/* A version 0 model's training, evaluation or IWAE graph (estimators.c). */
int g_build_estimator(lowering *L, g_purpose purpose, int batch, int samples);
/* An encode, decode, sample or prior_decode graph (deploy.c). */
int g_build_deployment(lowering *L, g_purpose purpose, int batch);

#endif
