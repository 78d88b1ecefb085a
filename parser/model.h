/* The checked model: what the code generator consumes.  vae_check fills it
 * from the AST after verifying names, shapes, distributions and the estimator;
 * every pointer here points into the AST of the same source. */
#ifndef VAE_MODEL_H
#define VAE_MODEL_H

#include "parser/ast.h"

typedef enum {
    DIST_NORMAL,      /* a = mean, b = logvar or scale (b_is_scale) */
    DIST_BERNOULLI,   /* a = logits or probs (a_is_probs); prior bernoulli(0.5): a = NULL, fixed_p */
    DIST_CATEGORICAL  /* a = logits; prior categorical(K): a = NULL (uniform) */
} vae_dist_kind;

typedef struct {
    vae_dist_kind kind;
    const ast_expr *a, *b;
    int b_is_scale;   /* normal(mean:, scale:) */
    int a_is_probs;   /* bernoulli(probs:) */
    double fixed_p;   /* bernoulli(0.5) prior */
    int standard;     /* normal(0, 1) prior */
    vae_loc loc;
} vae_dist;

typedef enum { LATENT_NORMAL, LATENT_CATEGORICAL, LATENT_BERNOULLI } vae_latent_kind;

typedef struct {
    const ast_latent *ast;
    const char *name;
    vae_latent_kind kind;
    int nvars;      /* product of the declared shape (1 for a scalar latent) */
    int states;     /* K for categorical, 2 for bernoulli, 0 for normal */
    double joint_states; /* states^nvars, as a double: it can be astronomically large */
    int width;      /* floats per example once it enters a network: nvars, or nvars*K one-hot */
    vae_dist prior;
    const ast_network *encoder; /* NULL when the model has none for it */
    vae_dist posterior;         /* what the encoder returns */
} vae_latent;

typedef enum {
    EST_ANALYTIC, EST_UNIFORM, EST_REINFORCE, EST_REPARAM, EST_IWAE, EST_PRIOR, EST_EXACT,
    EST_VIMCO, EST_GUMBEL
} vae_estimator_kind;

typedef struct {
    vae_estimator_kind kind;
    const char *name;
    int samples;        /* S or K; 1 when not given */
    double beta;        /* weight of the KL term */
    const ast_network *baseline; /* reinforce(baseline: b) */
    int baseline_loo;   /* reinforce(baseline: loo) */
    int dreg;           /* iwae(gradient: dreg) */
    double temperature; /* gumbel */
    int hard;           /* gumbel(hard: true) */
    int trains_encoder; /* its bound goes through the encoders; prior and exact leave them untrained */
    vae_loc loc;
} vae_estimator;

typedef enum { OPT_ADAM, OPT_SGD } vae_optimizer_kind;

typedef struct {
    const char *data, *test;      /* data sources; NULL when not set */
    vae_optimizer_kind optimizer;
    double lr, momentum;
    int batch, epochs;
    unsigned long long seed;
    double warmup;                /* epochs of KL warm-up (0: none) */
} vae_train_settings;

/* One learned tensor.  The checker lists them in a fixed order; the code
 * generator gives each an offset in the one parameter buffer. */
typedef struct {
    const char *name; /* encoder.h.weight */
    int ndims;
    int dims[VAE_MAX_DIMS];
    long size;
    long offset;      /* in floats, within the parameter buffer */
    float init_bound; /* uniform(-b, b) initialisation; 0: zeros */
    int owner;        /* the role of the network it belongs to (ast_net_role), or -1: a prior */
} vae_param;

#define VAE_MAX_LATENTS 16
#define VAE_MAX_PARAMS 256
/* Assignments in one network's body (the lowering's environment holds them
 * with the data and the latents: codegen/lower.h), and networks in a model
 * (an encoder per latent, a decoder, baselines: 64 is room to spare). */
#define VAE_MAX_ASSIGNS 200
#define VAE_MAX_NETWORKS 64

typedef struct vae_model {
    vae_source *src;
    ast_model *ast;
    const char *name;
    const ast_data *data;
    int data_dim;       /* floats per example */
    int binary;
    int nlatents;
    vae_latent latents[VAE_MAX_LATENTS];
    const ast_network *decoder;
    vae_dist likelihood; /* what the decoder returns */
    const ast_network *baseline_net;
    vae_dist baseline_dist;
    vae_estimator est;
    vae_train_settings train;
    int nparams;
    vae_param params[VAE_MAX_PARAMS];
    long param_floats;
    /* the most values one example has in a tensor the model makes (its data, a
     * latent's values, a layer's output, convolution windows): the checker and
     * g_build multiply it by the rows of an example and of a batch against
     * VAE_MAX_VALUES (parser/limits.h) */
    long max_example_values;
} vae_model;

/* Checks the parsed model; reports every error found; returns 0 when the model is sound. */
int vae_check(vae_source *src, ast_model *ast, vae_model *out);
/* Parses an estimator written as on its declaration's line, "reinforce(samples: 10)",
 * reporting errors against a source named `name`; NULL on error. */
ast_estimator *vae_parse_estimator(vae_source *src);
const vae_param *vae_model_param(const vae_model *m, const char *name);
const char *vae_estimator_name(vae_estimator_kind k);
/* The estimator's settings that change what training computes but not the
 * tensors, as one line: log.csv records it and `train --resume` compares it
 * (vaec and emitted trainers write the same line). */
void vae_model_settings(const vae_model *m, char *buf, size_t len);
/* Writes the objective that the estimator maximises, as a formula. */
void vae_print_objective(FILE *out, const vae_model *m);
void vae_print_summary(FILE *out, const vae_model *m);

#endif
