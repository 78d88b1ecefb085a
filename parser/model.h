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

typedef enum {
    EST_ANALYTIC, EST_UNIFORM, EST_REINFORCE, EST_REPARAM, EST_IWAE, EST_PRIOR, EST_EXACT,
    EST_VIMCO, EST_GUMBEL,
    EST_ARM, EST_DISARM, /* Bernoulli latents: an antithetic pair of draws per example */
    EST_RENYI, EST_RWS,  /* objective-level: the Renyi bound (normal latents); reweighted wake-sleep (any latent) */
    EST_NVIL,            /* score function centred by a baseline network and running statistics (Mnih & Gregor 2014) */
    EST_SUM_AND_SAMPLE,  /* a categorical latent: its k most probable states summed, one drawn from the rest */
    EST_RELAX, /* Bernoulli latents: a control network tuned to the gradient's variance (Grathwohl et al. 2018) */
    EST_REBAR, /* Bernoulli latents: the control eta f(sigmoid(z / T)), eta and T tuned likewise (Tucker et al. 2017) */
    EST_LOCAL_DISARM,    /* disarm(samples: K): K antithetic pairs, local DisARM on the K-sample bound */
    EST_ELBO /* version 1: elbo(y: analytic, z: reparam, ...), each latent's estimator in vae_latent.est */
} vae_estimator_kind;

/* Version 1: how the gradient through one latent is taken (estimator elbo(NAME: EST, ...)).
 * kind is EST_ANALYTIC (its states summed out: the latents drawn after it are drawn once
 * per state), EST_REPARAM, EST_REINFORCE or EST_GUMBEL. */
typedef struct {
    vae_estimator_kind kind;
    const struct ast_network *baseline; /* reinforce(baseline: b) */
    int baseline_loo;                   /* reinforce(baseline: loo) */
    double temperature;                 /* gumbel */
    int hard;                           /* gumbel(hard: true) */
    vae_loc loc;                        /* where it is named */
} vae_latent_estimator;

/* Latents and labels of one model. */
#define VAE_MAX_LATENTS 16

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
    /* ---- version 1 (docs/structured.md) ---- */
    const ast_network *prior_net; /* prior NAME(z | a, ...); NULL: the fixed prior after `~` (prior) */
    int label;      /* `data y : label(K)`: observed with each example (categorical, nvars 1, states K);
                       with an encoder, a latent wherever the example's label is not kept */
    int nq_parents, q_parents[VAE_MAX_LATENTS]; /* the latents and labels its encoder reads (indices into latents[]) */
    int np_parents, p_parents[VAE_MAX_LATENTS]; /* the latents and labels its prior network reads */
    vae_latent_estimator est;      /* with EST_ELBO (the version 0 forms on a structured model become it) */
} vae_latent;


typedef struct {
    vae_estimator_kind kind;
    const char *name;
    int samples;        /* S or K; 1 when not given */
    double beta;        /* weight of the KL term */
    const ast_network *baseline; /* reinforce(baseline: b) */
    int baseline_loo;   /* reinforce(baseline: loo) */
    int dreg;           /* iwae(gradient: dreg) */
    int stl;            /* reparam or iwae(gradient: stl): log q at z with its parameters stopped (sticking the landing) */
    double temperature; /* gumbel */
    int hard;           /* gumbel(hard: true) */
    double alpha;       /* renyi(alpha: A): 0 the IWAE bound, 1 the ELBO */
    const ast_network *control; /* relax(control: c) */
    int rebar_eta;      /* rebar: the index in params of eta - 1 ([1]); log(T / temperature) ([1]) follows */
    int trains_encoder; /* its bound goes through the encoders; prior and exact leave them untrained */
    int topk;           /* sum_and_sample(k: N): the states summed */
    int state_param;    /* nvil only: the index in params of its running mean of f - b(x), the running
                           variance next (vae_param.state) */
    vae_loc loc;
} vae_estimator;

typedef enum { OPT_ADAM, OPT_SGD } vae_optimizer_kind;

/* `optimizer TARGET = ...`: the optimiser of some networks' parameters (the rest follow the
 * train block's `optimizer`).  TARGET is a network's name or a role (prior, encoder, decoder,
 * baseline); a network's own line wins over its role's. */
typedef struct {
    const char *target;
    vae_optimizer_kind optimizer;
    double lr, momentum;
    vae_loc loc;
} vae_optim_group;

#define VAE_MAX_OPTIM_GROUPS 16

typedef struct {
    const char *data, *test;      /* data sources; NULL when not set */
    vae_optimizer_kind optimizer;
    double lr, momentum;
    int ngroups;                  /* per-network optimisers (0: every parameter follows the one above) */
    vae_optim_group groups[VAE_MAX_OPTIM_GROUPS];
    int batch, epochs;
    unsigned long long seed;
    double warmup;                /* epochs of KL warm-up (0: none) */
    int validation;               /* hold out the last N training examples (0: none) */
    double clip;                  /* the gradient's largest global L2 norm (0: no clipping) */
    /* the learning rate's schedule (include/vae/driver.h, vr_lr_schedule; all 0: constant) */
    long lr_warmup_steps;
    int lr_step_epochs;
    double lr_step_factor;        /* 0.1 unless set */
    double lr_cosine_epochs, lr_min;
    int shards;                   /* a batch's shards, each its own gradient, summed in a fixed tree (1: none) */
    /* version 1: labels */
    const char *labels, *test_labels; /* label files for sources that do not carry them; NULL: none */
    long labelled;                /* keep the labels of this many training examples (0: all) */
    double classify;              /* weight of log q(y | x) on labelled examples (0: none) */
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
    int state;        /* running statistics (nvil's), not trained: the training step writes their next value
                         where a gradient would go, and the driver copies it in after the update; state
                         tensors are the last of the parameter buffer (vr_program.state_floats) */
    const struct ast_network *net; /* that network; NULL: a prior's own parameter (`param[K]` after `~`) */
    int group;        /* its optimiser: 0 the train block's `optimizer`, g + 1 train.groups[g] */
} vae_param;

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
    int binary_dynamic; /* binary(dynamic): each value drawn as a Bernoulli of its intensity at every use */
    int nlatents;       /* latents and labels: a label is a vae_latent with label set */
    vae_latent latents[VAE_MAX_LATENTS];
    const ast_network *decoder;
    vae_dist likelihood;
    /* ---- version 1 ---- */
    int structured;     /* uses prior networks, encoders that read latents, labels or elbo(...): its graphs
                           come from codegen/structured.c; a version 0 model keeps its builders and bits */
    int posterior_order[VAE_MAX_LATENTS]; /* every latent after those its encoder reads */
    int prior_order[VAE_MAX_LATENTS];     /* every latent after those its prior network reads */ /* what the decoder returns */
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
/* The floats of the state tensors (vae_param.state), which are the last of the parameter buffer. */
long vae_state_floats(const vae_model *m);
const char *vae_estimator_name(vae_estimator_kind k);
int vae_estimator_rows_per_sample(const vae_estimator *e); /* 2 for arm and disarm's antithetic pair, k + 1 for
                                                               sum_and_sample's summed states and its draw */
/* The estimator's settings that change what training computes but not the
 * tensors, as one line: log.csv records it and `train --resume` compares it
 * (vaec and emitted trainers write the same line). */
void vae_model_settings(const vae_model *m, char *buf, size_t len);
/* Writes the objective that the estimator maximises, as a formula. */
void vae_print_objective(FILE *out, const vae_model *m);
void vae_print_summary(FILE *out, const vae_model *m);

#endif
