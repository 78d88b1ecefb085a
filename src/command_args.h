/* src/command_args.h: what the commands on a trained model share (sample,
 * reconstruct, plot in picture_commands.c; encode and interpolate in
 * latent_commands.c): their options, loading a model with a checkpoint, the
 * examples of a data source, and .npy/.csv values. */
#ifndef VAEC_COMMAND_ARGS_H
#define VAEC_COMMAND_ARGS_H

#include <stddef.h>

#include "src/pictures.h"

typedef struct {
    const char *cmd, *help, *model, *params, *out, *data, *data_dir, *labels;
    long n, seed, threads, limit; /* limit: 0 when not given */
    long label;                   /* k + 1 for --label k, 0 when not given */
    int have_seed, states;
} vaec_cmd_args;

/* The options of a command; `allowed` lists the ones it takes (" -o --params ",
 * spaces around each), -n is 1 .. n_max.  0, 1 (error printed) or 2 (help printed). */
int vaec_cmd_parse(vaec_cmd_args *a, const char *allowed, long n_max, int argc, char **argv);

/* A file name's extension (".png"), or "" when it has none. */
const char *vaec_extension(const char *path);

/* A model, its program (the pictures' graphs) and a checkpoint's parameters. */
typedef struct {
    vae_unit *unit;
    vae_program *program;
    float *params;
    vaec_view view;
} vaec_loaded_model;

/* Loads a->model and a->params (messages printed): 0 or -1. */
int vaec_cmd_load_model(vaec_loaded_model *l, const vaec_cmd_args *a);
void vaec_cmd_unload(vaec_loaded_model *l);

/* Loads --data, or the train block's test, into ds (*src: its name), with its labels when
 * `labels` (--labels, or the source's own; ds->labels NULL when it has none).  0, or -1 with err. */
int vaec_open_examples(const vaec_cmd_args *a, const struct vae_model *m, vr_dataset *ds, const char **src, int labels,
                       char *err, size_t len);
/* The first n examples (or fewer) of --data, or of the train block's test: 0 with *x
 * ([*got, data_dim], malloc'd) and *src the source's name, or -1 with err.  With
 * labels not NULL, also their labels (--labels, or the source's own; -1 where
 * unknown) into *labels (malloc'd), or NULL when the source has none. */
int vaec_load_examples(const vaec_cmd_args *a, const struct vae_model *m, int n, float **x, int *got, const char **src,
                       int **labels, char *err, size_t len);

/* .npy (float32, [n, d]) or .csv (n lines of d values, after the line `header`
 * when it is not NULL) of the values, written whole and renamed.  0 or -1 (err). */
int vaec_write_values(const char *path, const float *x, int n, int d, int npy, const char *header, char *err,
                      size_t len);

#endif
