/* The graph of tensor operations that a model and its estimator lower to, its
 * reverse-mode derivative, and the plan (buffer offsets) that both back ends
 * print.
 *
 * Every tensor is a matrix [rows, cols]: rows are examples (times samples) of
 * the batch, cols are the values of one example.  A tensor with fewer rows than
 * the operation that reads it is repeated: row r reads row r / (R / rows) (so
 * rows == 1 broadcasts to every row, and the samples of one example are
 * consecutive rows).  Columns follow the same rule: column c of a C-wide
 * domain reads column c / (C / cols) (cols == 1 broadcasts along the row; a
 * [B, n] tensor read over [B, n*K] gives each of n variables to its K states).
 * Those two rules are all the broadcasting there is, and each has its adjoint
 * (a sum over the group) in autodiff.c.
 *
 * Elementwise work is one node kind, G_MAP, whose value is an expression tree
 * (vx_expr) over its inputs; differentiating a MAP is differentiating its
 * expression symbolically, which is how one rule covers relu, the Bernoulli
 * likelihood, the reparameterisation and the KL alike. */
#ifndef VAE_GRAPH_H
#define VAE_GRAPH_H

#include <stddef.h>

#include "parser/limits.h"
#include "parser/model.h"

/* ---- elementwise expressions ---- */
typedef enum {
    VX_CONST,    /* c */
    VX_IN,       /* the value of input `in` at this element */
    VX_NEG, VX_EXP, VX_LOG, VX_LOG1P, VX_TANH, VX_SIGMOID, VX_SOFTPLUS, VX_RELU, VX_SQRT,
    VX_STEP,     /* 1 if a > 0 else 0 */
    VX_ADD, VX_SUB, VX_MUL, VX_DIV, VX_MAX,
    VX_SELECT    /* a > 0 ? b : c */
} vx_op;

typedef struct vx_expr {
    vx_op op;
    int in;
    double c;
    const struct vx_expr *a, *b, *s;
} vx_expr;

int vx_arity(vx_op op);
const char *vx_name(vx_op op);

/* ---- nodes ---- */
typedef enum {
    G_PARAM,    /* a slice of the parameter buffer; rows 1 (vectors) or K (dense weights) */
    G_DATA,     /* the batch of data, [B, D] */
    G_NOISE,    /* standard normal (or Gumbel, uniform, logistic: g_node.noise) noise from the counter-based RNG */
    G_MAP,      /* elementwise expression over inputs, [rows, cols] */
    G_MATMUL,   /* op(in0) op(in1), trans_a / trans_b */
    G_ROWSUM,   /* sum of expr over each group of C / cols columns: [R, C] -> [R, cols] */
    G_GROUPSUM, /* sum of expr on [R, C] over the R / rows consecutive rows of each group -> [rows, C] */
    G_CONCAT,   /* along cols */
    G_SLICE,    /* cols [col0, col0 + cols) of in0 */
    G_STATES,   /* the enumerated states of one latent, one row per joint state (runtime) */
    G_KLWEIGHT, /* [1, 1] value * (1 - ctx->kl_withheld): the KL weight under warm-up */
    G_SAMPLE,   /* one-hot (categorical) or 0/1 (bernoulli) samples from logits in0 (none: uniform) */
    G_IM2COL,   /* R images pixel by pixel (h*w*c floats each) -> one row per window [R*oh*ow, k*k*c] (runtime/conv.c) */
    G_COL2IM,   /* the adjoint: windows [R*oh*ow, k*k*c] added back into R images pixel by pixel */
    G_TRANSPOSE /* each of the R row groups' p x q block becomes q x p (pixel by pixel <-> channels first) */
} g_kind;

/* G_IM2COL, G_COL2IM: the image (channels first) and the windows over it. */
typedef struct {
    int c, h, w, k, stride, pad;
} g_window;

typedef enum { BUF_ARENA, BUF_PARAMS, BUF_GRADS, BUF_DATA } g_buffer;

/* The distributions of G_NOISE; the runtime function is vr_noise_<g_noise_name>_f32/_f64. */
typedef enum { NOISE_NORMAL, NOISE_GUMBEL, NOISE_UNIFORM, NOISE_LOGISTIC } g_noise_kind;
static inline const char *g_noise_name(g_noise_kind k) {
    return k == NOISE_GUMBEL ? "gumbel" : k == NOISE_UNIFORM ? "uniform" : k == NOISE_LOGISTIC ? "logistic" : "normal";
}

#define G_MAX_IN 8
/* The most nodes (written out as a tree) that plan.c's fusion lets one
 * expression reach: it bounds the depth of every recursion over a planned
 * expression and the copies fusion makes.  The largest in the examples and
 * tests has 117 (mixture_vimco), so no model of theirs changes. */
#define G_MAX_FUSED_EXPR 256

typedef struct g_node {
    g_kind kind;
    int id;
    int rows, cols;
    int nin;
    struct g_node *in[G_MAX_IN];
    const vx_expr *expr; /* G_MAP, G_ROWSUM, G_GROUPSUM: the value at each element of the domain */
    int dom_rows, dom_cols; /* the domain that expr is evaluated over (the output's, for a MAP) */
    int trans_a, trans_b; /* G_MATMUL */
    int col0;            /* G_SLICE */
    int stream;          /* G_NOISE, G_SAMPLE: which noise stream (one per latent) */
    int group;           /* G_NOISE, G_SAMPLE: samples per example */
    double value;        /* G_KLWEIGHT: beta */
    int reduce_max;      /* G_ROWSUM, G_GROUPSUM: the maximum instead of the sum (no gradient) */
    int nvars, states;   /* G_STATES, G_SAMPLE: variables of the latent and states of each (2: bernoulli) */
    int bernoulli;       /* G_STATES, G_SAMPLE: 0/1 per variable instead of one-hot */
    g_noise_kind noise;  /* G_NOISE: which distribution (standard normal by default) */
    long stride, local;  /* G_STATES: joint index j selects this latent's state (j / stride) % local */
    g_window window;     /* G_IM2COL, G_COL2IM */
    int tp, tq;          /* G_TRANSPOSE: p x q blocks, R = rows * cols / (p * q) of them */
    long data_offset;    /* G_DATA: where its rows start in the call's data block (include/vae/driver.h) */
    int pixels;          /* lowering: an image kept pixel by pixel, [R*pixels, channels], standing for [R, channels*pixels] */
    struct g_node *standard; /* lowering: its channels-first transpose, once made */
    const vae_param *param; /* G_PARAM */
    const char *label;   /* for emitted code and messages: "encoder.h", "d encoder.h" */
    int needs_grad;      /* depends on a parameter */
    int stop;            /* a stop-gradient (densities.c detached): no pass of autodiff.c goes through it */
    int uses;            /* readers within the graph */
    /* the plan */
    g_buffer buffer;
    long offset;         /* in elements, within its buffer */
    int fused;           /* a MAP folded into its only reader: no buffer, no loop */
    int with_previous;   /* G_MATMUL: runs at once with the product before it, as one team job */
} g_node;

/* Products in a row that do not read each other run as one job of the team
 * (the backward pass's dW and dX of a layer): at most this many. */
#define G_PRODUCT_GROUP_MAX 8

/* What a graph computes, in rows of the arena that the driver reads back. */
typedef struct {
    g_node *objective;    /* [1, 1] the (averaged) objective that training maximises */
    g_node *recon_rows;   /* [B*S, 1] log p(x | z_s) per sample */
    g_node *kl_rows;      /* [B, 1] KL(q || p) per example */
    g_node *logw_rows;    /* [B*S, 1] log p(x, z_s) - log q(z_s | x) per sample (IWAE) */
    g_node *logpx_rows;   /* [B, 1] exact log p(x) (enumerable latents) */
    g_node *value_rows;   /* [B, 1] the estimate of what the estimator reports (see value_name) */
    g_node *api_out;      /* [B, width] what an encode, decode or sample graph returns */
    g_node *correct_rows; /* [B, 1] 1 where q(y | x)'s most probable class is the example's label, else 0
                             (a label with an encoder; evaluation only) */
} g_outputs;

typedef enum {
    GRAPH_TRAIN, /* objective, its gradient, recon and KL rows */
    GRAPH_EVAL,  /* recon and KL rows, no gradient */
    GRAPH_IWAE,  /* log importance weights per sample, no gradient */
    GRAPH_ENCODE, /* data -> the encoders' distribution parameters (deployment API) */
    GRAPH_DECODE, /* latent values -> the decoder's distribution parameters */
    GRAPH_SAMPLE, /* z ~ p(z), x ~ p(x | z) */
    GRAPH_PRIOR_DECODE, /* z ~ p(z), then the decoder's arguments, as decode gives them (the images that
                           vaec sample draws: their mean, not a draw); it takes the sample graph's place */
} g_purpose;
#define GRAPH_PURPOSES (GRAPH_PRIOR_DECODE + 1)

/* The outputs (g_outputs) a graph may set, as bits of g_purpose_info.outputs. */
enum {
    G_OUT_OBJECTIVE = 1u << 0,
    G_OUT_RECON = 1u << 1,
    G_OUT_KL = 1u << 2,
    G_OUT_LOGW = 1u << 3,
    G_OUT_LOGPX = 1u << 4,
    G_OUT_VALUE = 1u << 5,
    G_OUT_API = 1u << 6, /* a deployment graph: its result is api_out */
    G_OUT_CORRECT = 1u << 7
};

/* What each purpose is, in one place (graph.c g_purposes): the builders (g_build), the
 * pipeline (pipeline.c), both back ends and the JIT's program read it. */
typedef struct {
    const char *fn_name;   /* the generated function: vae_train_step, vae_eval, ... */
    const char *field;     /* its vr_graph in vr_program (include/vae/driver.h), and emitted C's prefix */
    size_t graph_slot;     /* offsetof(vr_program, <field>) */
    size_t api_out_slot;   /* with G_OUT_API: offsetof(vr_program, api_out_<field>) */
    int gradient;          /* the pipeline appends its backward pass; the back ends zero unreached gradients */
    unsigned outputs;      /* G_OUT_* bits: the outputs its builders may set */
} g_purpose_info;

extern const g_purpose_info g_purposes[GRAPH_PURPOSES];
/* Which outputs a built graph set (G_OUT_* bits); within g_purposes[purpose].outputs. */
unsigned g_outputs_set(const g_outputs *out);

typedef struct g_graph {
    vae_pool *pool;
    const vae_model *model;
    g_purpose purpose;
    const char *fn_name;  /* g_purposes[purpose].fn_name */
    int batch, samples;
    int nnodes, cap;
    g_node **nodes;       /* topological order: every input precedes its reader */
    g_outputs out;
    const char *value_name; /* "ELBO", or the bound on log p(x) an encoder-free estimator maximises */
    g_node *param_grad[VAE_MAX_PARAMS]; /* the node holding d loss / d param, in the grads buffer */
    /* A control variate tuned to the variance of a gradient (RELAX, REBAR): each parameter marked
     * variance_tuned gets, in place of a gradient of the objective, d V / d param with V the squared
     * norm of the gradient of the parameters marked variance_of (autodiff.c: a second pass). */
    unsigned char variance_of[VAE_MAX_PARAMS], variance_tuned[VAE_MAX_PARAMS];
    long arena_floats;    /* the plan's arena size */
    g_node *oversized;    /* the first node of more than VAE_MAX_VALUES values, if any (g_build fails) */
    /* Where a decoder reads only sampled discrete latents: VAE_DECODER_BY_COST (estimators.c
     * decoder_per_state decides) or one way forced (vae/compiler.h); and what was chosen, for g_dump. */
    int decoder_rows;
    const char *decoder_note;
} g_graph;

/* Lowers the checked model for `purpose` at a fixed batch size and number of
 * samples per example.  Returns NULL (message on err) when some part is not
 * built yet. */
g_graph *g_build(const vae_model *m, g_purpose purpose, int batch, int samples, FILE *err);
/* The same with the decoder's rows chosen as decoder_rows says (VAE_DECODER_*, vae/compiler.h). */
g_graph *g_build_with(const vae_model *m, g_purpose purpose, int batch, int samples, int decoder_rows, FILE *err);
/* Whether every tensor of that graph would hold at most VAE_MAX_VALUES
 * (parser/limits.h); if not, and err is not NULL, says why there.  g_build
 * refuses a graph that does not fit. */
int g_batch_fits(const vae_model *m, g_purpose purpose, int batch, int samples, FILE *err);
/* The joint states a structured model's graph of this purpose enumerates: its rows are
 * batch x states x samples (structured.c). */
long long g_structured_states(const vae_model *m, g_purpose purpose);
/* Whether every latent is discrete with at most 65,536 joint states. */
int g_model_enumerable(const vae_model *m);
/* Widths of the deployment graphs' rows: encoder outputs, latent values, decoder outputs. */
int g_encode_width(const vae_model *m);
/* The width of the encode graph that vaec's own commands run (the JIT's vr_program): every
 * latent's encoder arguments, also where encoders read other latents (structured.c runs
 * them at their parents' posterior means) or an observed label (from the data block, as in
 * training); 0 when a latent that is not a label has no encoder.  The emitted API
 * keeps g_encode_width: its encode and sample_posterior exist only without such encoders. */
int g_posterior_width(const vae_model *m);
int g_latent_width(const vae_model *m);
int g_decode_width(const vae_model *m);
void g_free(g_graph *g);

/* Appends the backward pass for loss = -objective (autodiff.c). */
void g_differentiate(g_graph *g);
/* Fuses elementwise chains and gives every node its buffer and offset (plan.c). */
void g_plan(g_graph *g);
/* How the loop kernels read their inputs and are shared between threads: codegen/kernel.h. */
/* The products that run as one job from node i on (with_previous chains), the
 * first being node i: their number, 0 when node i is not the first product of one. */
int g_product_group(const g_graph *g, int i, const g_node **members);
/* Writes the graph in a readable text form (tests, `vaec check --graph`). */
void g_dump(FILE *out, const g_graph *g);

/* ---- node constructors (graph.c), for the lowering, the builders and autodiff.c ---- */
g_node *g_new(g_graph *g, g_kind kind, int rows, int cols);
/* Appends an input to n (at most G_MAX_IN); n needs a gradient if the input does. */
void g_add_input(g_node *n, g_node *in);
g_node *g_map(g_graph *g, const vx_expr *e, int nin, g_node *const *in, int rows, int cols);
g_node *g_map1(g_graph *g, const vx_expr *e, g_node *a);
g_node *g_map2(g_graph *g, const vx_expr *e, g_node *a, g_node *b);
g_node *g_matmul(g_graph *g, g_node *a, int ta, g_node *b, int tb);
g_node *g_rowsum(g_graph *g, g_node *a);             /* [R, C] -> [R, 1] */
g_node *g_colgroupsum(g_graph *g, g_node *a, int cols); /* [R, C] -> [R, cols] */
g_node *g_groupsum(g_graph *g, g_node *a, int rows);
/* Convolutions' data movement (runtime/conv.c); each is the other's adjoint. */
g_node *g_im2col(g_graph *g, g_node *image, g_window w);
g_node *g_col2im(g_graph *g, g_node *cols, g_window w, int rows, int ncols); /* into images of shape [rows, ncols] */
long g_window_images(const g_node *n); /* G_IM2COL, G_COL2IM: how many images */
/* [R*p, q] (or any shape of R*p*q values) -> [R, q*p] (rows, cols given) */
g_node *g_transpose(g_graph *g, g_node *a, int p, int q, int rows, int cols);
int g_window_oh(const g_window *w);
int g_window_ow(const g_window *w);

const vx_expr *vx_const(g_graph *g, double c);
const vx_expr *vx_in(g_graph *g, int i);
const vx_expr *vx_un(g_graph *g, vx_op op, const vx_expr *a);
const vx_expr *vx_bin(g_graph *g, vx_op op, const vx_expr *a, const vx_expr *b);
const vx_expr *vx_select(g_graph *g, const vx_expr *s, const vx_expr *a, const vx_expr *b);
/* d e / d (input i), simplified. */
const vx_expr *vx_diff(g_graph *g, const vx_expr *e, int i);
int vx_uses(const vx_expr *e, int i);
void vx_print(FILE *out, const vx_expr *e);

#endif
