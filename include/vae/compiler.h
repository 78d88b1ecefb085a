/* vae/compiler.h: the compiler as a library: a .vae file in, a runnable
 * program (vae/driver.h) out.
 *
 *     vae_unit *u = vae_unit_load("model.vae", stderr);   // parse + check, errors printed
 *     vae_build_opts o = vae_build_defaults(u);
 *     vae_program *p = vae_program_build(u, &o, stderr);  // graph, autodiff, plan, LLVM, JIT
 *     vr_train(vae_program_runtime(p), &options);
 */
#ifndef VAE_COMPILER_H
#define VAE_COMPILER_H

#include <stdio.h>

#include "vae/driver.h"

typedef struct vae_unit vae_unit;
typedef struct vae_program vae_program;

/* Parses and checks a model file; NULL when it has errors (all printed to err). */
vae_unit *vae_unit_load(const char *path, FILE *err);
vae_unit *vae_unit_from_string(const char *name, const char *text, FILE *err);
/* The model of `path` with its estimator replaced by `spec` ("reinforce(samples: 10)"). */
vae_unit *vae_unit_with_estimator(const char *path, const char *spec, FILE *err);
/* The same, with errors in the estimator's text located at LABEL:1:COL (its option's name:
 * "--estimators" above, "--estimator" for vaec's other commands). */
vae_unit *vae_unit_with_estimator_from(const char *path, const char *spec, const char *label, FILE *err);
void vae_unit_free(vae_unit *u);
struct vae_model;
const struct vae_model *vae_unit_model(const vae_unit *u);
/* The model's name, and its learned tensors in the checkpoint's order (as vaec check lists
 * them): tensor i's name, or NULL past the last; its dimensions and values through the
 * pointers that are not NULL.  For programs that use the installed library (pkg-config vaec). */
const char *vae_unit_name(const vae_unit *u);
int vae_unit_ntensors(const vae_unit *u);
const char *vae_unit_tensor(const vae_unit *u, int i, int *ndims, const int **dims, long *size);

/* How the JIT makes machine code.  All three give bit-identical results. */
typedef enum {
    VAE_JIT_OPTIMIZED, /* default<O3> and aggressive code generation before the first call (LLVM: 0.3-0.9 s) */
    VAE_JIT_QUICK,     /* no IR passes, fast instruction selection (about 15 ms; slower code) */
    VAE_JIT_TIERED,    /* quick code at once; the optimised build in a background thread, swapped in
                          between calls as soon as it is ready (vr_program.upgrade) */
} vae_jit_mode;

typedef struct {
    int batch;       /* training batch: one shard's examples */
    int shards;      /* emit-c: the trainer's batch is `shards` of these (0 or 1: one) */
    int eval_batch;  /* examples per call of the evaluation graph */
    int iwae_batch, iwae_chunk; /* examples and samples per call of the IWAE graph */
    long iwae_arena_max;        /* floats: fewer examples, then samples, per call until the IWAE arena
                                   fits (0: no bound); default VAE_IWAE_ARENA_MAX */
    int train, eval, iwae;      /* which graphs to build */
    int api, api_batch;         /* encode, decode and sample graphs, api_batch rows per call */
    int prior_decode;           /* with api: the sample graph returns the decoder's arguments (decode_width
                                   columns, as decode does) at z ~ p(z) instead of a draw of x: the mean
                                   images that vaec sample draws (JIT only; emit-c ignores it) */
    int double_precision;       /* build in double (gradient checks); the driver needs float */
    int decoder_rows;           /* a decoder that reads only sampled discrete latents runs on their joint states or on
                                   the sample rows: VAE_DECODER_BY_COST (0, the default) whichever costs less, or
                                   VAE_DECODER_PER_SAMPLE / VAE_DECODER_PER_STATE (tests compare the two) */
    vae_jit_mode jit;           /* default VAE_JIT_OPTIMIZED */
    const char *provenance;     /* emit-c: "# key = value" lines that the emitted trainer writes at the top of
                                   its log.csv (what made it: vaec's version, the model file); NULL: none */
} vae_build_opts;

enum { VAE_DECODER_BY_COST, VAE_DECODER_PER_SAMPLE, VAE_DECODER_PER_STATE };

/* 32 MiB: a convolutional model's 1000 rows of samples hold 125 MB of feature maps */
#define VAE_IWAE_ARENA_MAX (8L << 20)

vae_build_opts vae_build_defaults(const vae_unit *u);
/* Lowers, differentiates, plans and JIT-compiles; NULL on failure (message on err). */
vae_program *vae_program_build(const vae_unit *u, const vae_build_opts *o, FILE *err);
const vr_program *vae_program_runtime(const vae_program *p);
double vae_program_compile_seconds(const vae_program *p);
/* The compiled function of a graph, by its name: "vae_train_step", "vae_eval", "vae_iwae",
 * "vae_encode", "vae_decode" or "vae_sample" (NULL when the program has no such graph). */
void *vae_program_function(vae_program *p, const char *name); /* waits for a tiered build's quick code */
/* Tiered programs: waits for the optimised build and swaps it in (no-op otherwise). */
void vae_program_wait_optimized(vae_program *p);
/* Waits for a background build still running, then frees everything. */
void vae_program_free(vae_program *p);

/* Prints the optimised LLVM module for the given build options. 0 or -1. */
int vae_emit_llvm(const vae_unit *u, const vae_build_opts *o, FILE *out, FILE *err);
/* Writes model.c and model.h (emit_c.c): the same plan as standalone C. 0 or -1. */
int vae_emit_c(const vae_unit *u, const vae_build_opts *o, const char *source_path, FILE *c_out, FILE *h_out,
               const char *header_name, FILE *err);
/* Prints the command that builds an emitted trainer (c_name: model.c) with the JIT's bits: the
 * matrix library and options vaec was configured with.  Other flags give other, equally valid, bits. */
void vae_emit_c_build_line(FILE *out, const char *c_name);
/* Prints the planned graphs (text), for inspection and tests. */
int vae_dump_graphs(const vae_unit *u, const vae_build_opts *o, FILE *out, FILE *err);

#endif
