/* vae/driver.h: the training and evaluation driver.  It knows nothing of the
 * compiler: a vr_program is a set of compiled functions (JIT or emitted C) and
 * the plan's sizes and output offsets. */
#ifndef VAE_DRIVER_H
#define VAE_DRIVER_H

#include "vae/runtime.h"

typedef void (*vr_graph_fn)(float *params, float *grads, float *arena, const float *data, const vr_ctx *ctx);

/* The data block a graph of B examples reads: x, B rows of data_dim floats; then, when the
 * model has a label (label_states K > 0), y_kept, B rows of K floats, the one-hot label where
 * the example's label is kept for this call and zeros where it is hidden; then y_true, B rows
 * of K floats, the one-hot label wherever it is known (zeros where not), which only the
 * evaluation's classification error reads.  Training hides the labels of the examples outside
 * the `labelled` subset; evaluation hides every label that has an encoder (label_inferred), so
 * its ELBO is that of unlabelled data.  The sample graph of a model with a label reads B rows
 * of K floats only: the label to condition on (one-hot), or zeros to draw it from its prior. */
static inline __attribute__((unused)) long vr_data_floats(int batch, int data_dim, int label_states) {
    return (long)batch * (data_dim + 2L * label_states);
}

/* One compiled graph: B examples, S samples each, and where its outputs live in the arena. */
typedef struct {
    vr_graph_fn fn;
    int batch, samples;
    long arena_floats;
    long objective;  /* [1] the averaged objective (-1: none) */
    long recon_rows; /* [B*S] log p(x | z_s) */
    long kl_rows;    /* [B] KL(q || p) */
    long logw_rows;  /* [B*S] log importance weights (-1: none) */
    long logpx_rows; /* [B] exact log p(x) (-1: none) */
    long value_rows; /* [B] per-example estimate of what the estimator reports (-1: none) */
    long correct_rows; /* [B] 1 where the classifier q(y | x) picks the label, else 0 (-1: none) */
} vr_graph;

typedef struct {
    const char *model_name;
    int data_dim, binary;
    int binary_dynamic;  /* binary(dynamic): each value a Bernoulli draw of its intensity at every use */
    int label_states;    /* K of `data y : label(K)` (0: no label) */
    int label_inferred;  /* the label has an encoder: a latent where it is hidden (semi-supervised) */
    double classify;     /* the model's classify weight (reported only; the graphs hold it) */
    int ntensors;
    const vr_tensor_info *tensors;
    const float *init_bounds; /* per tensor: uniform(-b, b), 0 = zeros */
    const char *value_name;   /* what value_rows estimate: "ELBO", "log p(x)", "prior bound" */
    const char *eval_value_name;
    long param_floats;
    /* The last state_floats of the parameters are running statistics (nvil's), not trained: the
     * training step writes their next values into the same places of its gradient buffer, the
     * optimiser and clipping skip them, and vr_keep_state copies them in after the update; they are
     * saved in checkpoints with the parameters. */
    long state_floats;
    vr_graph train, eval, iwae;
    vr_graph encode, decode, sample; /* deployment: api_out rows of the widths below */
    long api_out_encode, api_out_decode, api_out_sample; /* arena offsets of their outputs */
    int encode_width, latent_width, decode_width;
    /* Tiered JIT: the driver calls upgrade(upgrade_self) between calls of the
     * graphs; it swaps in optimised code once a background build has it (and then
     * clears itself).  The training step's code comes first: until the others'
     * quick code is in, their fn is NULL and complete(upgrade_self) waits for it.
     * NULL for emitted C and fully optimised programs. */
    void (*upgrade)(void *self);
    void (*complete)(void *self);
    void *upgrade_self;
} vr_program;

/* The parameters the optimiser updates: all but the running statistics at the end. */
static inline long vr_trained_floats(const vr_program *p) { return p->param_floats - p->state_floats; }

/* After a step's update: the running statistics that the step wrote where their gradient would be
 * (with shards, the mean of the shards' values). */
static inline void vr_keep_state(const vr_program *p, float *params, const float *grads) {
    for (long i = vr_trained_floats(p); i < p->param_floats; i++) params[i] = grads[i];
}

/* Lets a tiered program swap in faster code (call between graph calls), and
 * makes sure graph g has code before it is called. */
static inline void vr_program_poll(const vr_program *p, const vr_graph *g) {
    if (p->upgrade) p->upgrade(p->upgrade_self);
    if (!g->fn && p->complete) p->complete(p->upgrade_self);
}

typedef enum { VR_ADAM, VR_SGD } vr_optimizer;

/* A per-network optimiser (the model's `optimizer prior = sgd(lr: 1e-2)`): the tensors whose
 * vr_options.tensor_group entry is its index + 1 follow it, the rest vr_options' own.  A
 * learning-rate schedule scales every group's lr by the same factor as the default's. */
typedef struct {
    const char *target;  /* the networks, as the model names them ("prior"): for the log */
    vr_optimizer optimizer;
    double lr, momentum;
} vr_optim_group;

struct vr_scores;
/* One committed epoch, as the after_epoch hook sees it. */
typedef struct {
    int epoch;
    long step;
    double train_value, kl_weight, seconds;
    const struct vr_scores *test; /* NULL: no test data */
    const struct vr_scores *validation; /* NULL: no validation examples (vr_options.validation) */
    const vr_dataset *test_data;  /* NULL: no test data */
    const float *params;          /* the parameters just saved */
} vr_epoch_report;

/* Where a program that embeds the training loop adds outputs of its own (vaec:
 * TensorBoard events, image grids).  Each is optional; none may change what
 * training computes.  An emitted trainer leaves them all NULL. */
typedef struct {
    void *self;
    /* the run's folder exists and holds log.csv's header; non-zero stops before the first step */
    int (*begin)(void *self, const char *run_dir);
    /* after each step's update: its mean objective */
    void (*after_step)(void *self, long step, double value);
    /* after an epoch's checkpoint and log row are committed; non-zero stops training */
    int (*after_epoch)(void *self, const vr_epoch_report *r);
    /* at the end, also after an error: 0, or non-zero (message printed) to fail the run */
    int (*end)(void *self);
} vr_hooks;

/* The processes that train one model together (vaec's src/mpi.c, over MPI); NULL: this process alone.
 * Every call is collective: each process makes the same calls in the same order. */
typedef struct vr_comm {
    int rank, size;
    void *self;
    /* every process's n bytes of `mine`, in rank order, into `all` (size * n bytes); a failure ends the
       whole job with a message (it cannot be recovered from: another process may be gone) */
    void (*allgather)(void *self, const void *mine, void *all, size_t n);
} vr_comm;

/* The learning rate as a function of the step (vr_lr_at): a linear warm-up of the learning
 * rate over its first warmup_steps updates (not the KL weight's `warmup`), and at most one
 * decay, step (times step_factor every step_epochs epochs) or cosine (from lr down to
 * min_lr over cosine_epochs epochs, then min_lr).  All zero: the constant lr. */
typedef struct {
    long warmup_steps;
    int step_epochs;
    double step_factor;
    double cosine_epochs, min_lr;
} vr_lr_schedule;

typedef struct {
    const char *data, *test, *data_dir;
    const char *labels, *test_labels; /* label files for sources without their own (NULL: none) */
    long labelled;          /* keep the labels of this many training examples, the same number per class (0: all) */
    int epochs, batch;
    int limit, test_limit;  /* use only the first N examples (0: all) */
    vr_optimizer optimizer;
    double lr, momentum;
    int ngroups;            /* per-network optimisers (0: every tensor follows optimizer, lr, momentum) */
    const vr_optim_group *groups;
    const int *tensor_group; /* per tensor of the program: 0 the default, g + 1 groups[g] (NULL: all 0) */
    double warmup;          /* epochs over which the KL weight rises from 0 to beta (0: none) */
    vr_lr_schedule schedule; /* the learning rate by step (all zero: lr throughout) */
    double clip;            /* scale the gradient down to this global L2 norm where it is longer (0: never) */
    int validation;         /* hold out the last N training examples (after limit): a validation ELBO each
                               epoch and best.vaeckpt, the checkpoint of its best epoch (0: none) */
    uint64_t seed;
    const char *out_dir;    /* log.csv and checkpoint.vaeckpt; NULL: write nothing */
    int out_dir_auto;       /* out_dir is the default name: DIR-2, DIR-3, ... when DIR holds a run */
    int force;              /* replace the run in out_dir (otherwise a folder holding one is refused) */
    const char *resume_dir; /* continue the run in this folder from its checkpoint (out_dir is ignored) */
    const char *description; /* "# key = value" lines that say how the run was made (version, model file and its
                                SHA-256, setting sources, machine, command line): written at the top of log.csv,
                                never compared on resume; NULL: none */
    const char *model_settings; /* what else of the model changes the computation ("estimator = iwae(...)"),
                                   recorded in log.csv and compared on resume; NULL: nothing */
    const char *params;     /* eval: the checkpoint to load */
    int iwae;               /* eval: samples for the IWAE estimate (0: skip) */
    int progress;           /* draw a progress bar (a terminal) */
    double compile_seconds; /* reported in the log */
    int shards;             /* a batch is cut into this many shards of train.batch examples, each its own gradient,
                               summed in a fixed tree (docs/cluster.md); 0 or 1: the batch is the graph's */
    const vr_comm *comm;    /* the processes sharing the shards (NULL: one); only rank 0 writes files and prints */
    uint64_t setup_hash;    /* what else the processes must agree on (the model's text): compared at the start */
    vr_hooks hooks;
} vr_options;

/* The options of a run (runtime/options.c): the one table that vaec train/eval and the emitted
 * trainer parse their command lines with.  A value's range is vaec's (parser/settings.c). */
typedef enum {
    VR_OPT_TEXT, /* a string field */
    VR_OPT_FLAG, /* no value: sets an int field to 1 */
    VR_OPT_INT,  /* whole numbers into int, long or uint64_t fields */
    VR_OPT_LONG,
    VR_OPT_U64,
    VR_OPT_REAL /* a double field */
} vr_option_type;

typedef struct {
    const char *name;     /* "--limit" */
    const char *metavar;  /* "N" in a usage line; NULL for a flag */
    const char *commands; /* the commands that take it, space-separated: "train eval" */
    vr_option_type type;
    size_t offset; /* of its field in vr_options */
} vr_option;

/* The i-th option of the table (NULL past its end), and an option's index in it. */
const vr_option *vr_option_at(int i);
int vr_option_index(const vr_option *opt);
/* The option called `name` that `command` takes, or NULL. */
const vr_option *vr_option_find(const char *name, const char *command);
/* Stores a value (checked by the caller) in o: text (or a flag's 1), a whole number or a real. */
void vr_option_set_text(vr_options *o, const vr_option *opt, const char *text);
void vr_option_set_whole(vr_options *o, const vr_option *opt, long long v);
void vr_option_set_real(vr_options *o, const vr_option *opt, double v);

/* log.csv's lines on where and how a run started (runtime/describe.c): "# started", "# matrix
 * library", "# cpu", "# threads" (0: the matrix library chooses), "# processes" (more than one)
 * and "# command line" (argv as a shell would take it back).  malloc'd; NULL when out of memory. */
char *vr_describe_machine(int argc, char **argv, int threads, int processes);

/* Flushes denormal floats to zero in this thread (FTZ/DAZ): the tails of softmax and
 * log-sum-exp weights are denormal, and arithmetic on them is a hundred times slower. */
void vr_flush_denormals(void);
/* Parameters initialised from (seed, tensor): PyTorch's nn.Linear scheme. */
void vr_init_params(const vr_program *p, float *params, uint64_t seed);
/* The learning rate of the update after `step` updates (0 for the first), with
 * `nbatches` steps an epoch (the schedule's epochs are counted in steps). */
double vr_lr_at(const vr_options *o, long step, int nbatches);
/* Scales g[0..n) by max_norm / |g| when its L2 norm |g| exceeds max_norm; returns
 * |g| before.  The norm is summed in double in index order: the same bits on any
 * thread count. */
double vr_clip_norm(float *g, size_t n, double max_norm);
/* v in the fewest digits that read back as v (0.1, not 0.10000000000000001); returns buf. */
const char *vr_shortest(char *buf, size_t len, double v);
/* Trains as the options say; prints one line per epoch; 0 or 1 (message printed).
 * Stops with a diagnosis (the term, the tensor, the step, a likely cause) when
 * the objective or the gradient becomes non-finite or explodes; --epochs 0
 * writes the initial parameters. */
int vr_train(const vr_program *p, const vr_options *o);
/* Evaluates a checkpoint on the test data: ELBO, its terms, and the IWAE estimate. */
int vr_eval(const vr_program *p, const vr_options *o);

typedef struct vr_scores {
    int has_elbo, has_logpx;
    double value;            /* mean of the evaluation graph's value (ELBO, or a bound without encoder) */
    double elbo, recon, kl;  /* means over the examples */
    double exact_logpx;      /* exact log p(x), enumerable latents */
    double logpx, logpx_se;  /* IWAE estimate and its standard error (NaN: unknown, fewer than 2 examples) */
    double classify_error;   /* fraction of examples whose most probable y under q(y | x) is wrong (NaN: none) */
    int n;
} vr_scores;
/* Mean ELBO terms of a data set at the given parameters (noise keyed on the example index). */
void vr_evaluate(const vr_program *p, const float *params, const vr_dataset *ds, int limit, uint64_t seed,
                 vr_scores *out);
/* IWAE estimate of log p(x) with K samples per example, in chunks of the iwae graph's samples. */
void vr_evaluate_iwae(const vr_program *p, const float *params, const vr_dataset *ds, int limit, uint64_t seed, int K,
                      vr_scores *out);

#endif
