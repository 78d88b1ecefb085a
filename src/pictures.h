/* src/pictures.h: what vaec draws with a trained model (vaec sample,
 * reconstruct, and the grids of each epoch): the decoder's mean images of
 * latents drawn from the prior, test images over their reconstructions, and
 * one row per state of enumerable discrete latents. */
#ifndef VAEC_PICTURES_H
#define VAEC_PICTURES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vae/compiler.h"

struct vae_model;

/* Adds the graphs the pictures need to a build: encode, decode, and the prior's
 * decode in the sample graph's place (vae_build_opts.prior_decode). */
void vaec_pictures_opts(vae_build_opts *o);

/* A trained model to draw with; program built with vaec_pictures_opts. */
typedef struct {
    const struct vae_model *model;
    const vr_program *program;
    const float *params;
    int label; /* a model with a label: k + 1 draws every sample of class k; 0 gives each row of
                  a grid its class (row r: class r mod K) */
    const int *x_labels; /* the classes (-1: unknown) of the examples x the calls below encode, for
                            an observed label that the encoders read (vaec_observed_label); NULL: none */
} vaec_view;

/* The index of the model's observed label (a label without encoder, which the encoders read
 * from the data), or -1. */
int vaec_observed_label(const struct vae_model *m);

/* The decoder's mean E[x | z] (Bernoulli probabilities, the normal's mean) at
 * z ~ p(z) for n examples, [n, data_dim]: example i's latents are keyed by
 * (seed, i), so a seed gives the same images whatever n and the thread count. */
void vaec_prior_means(const vaec_view *v, int n, uint64_t seed, float *out);

/* Whether the model can reconstruct: 1, or 0 with why (no encoder, or an
 * estimator that leaves it untrained). */
int vaec_can_reconstruct(const vaec_view *v, char *why, size_t len);
/* The decoder's mean at the encoder's most probable latents (the posterior
 * mean of normal latents, the mode of discrete ones) of x [n, data_dim]. */
void vaec_reconstruct(const vaec_view *v, const float *x, int n, float *out);

/* The encoder's outputs for x [n, data_dim]: [n, encode_width], per latent in
 * the model's order its first argument (a normal's mean, logits or
 * probabilities) for each of its `width` columns, then its second (a normal's
 * log-variance or scale) when it has one.  Needs an encode graph (encode_width > 0). */
void vaec_encode_params(const vaec_view *v, const float *x, int n, float *out);
/* Each example's most probable latents [n, latent_width] (the mean of a normal latent, one-hot
 * argmax of a categorical, 0/1 of a Bernoulli) and joint state (states may be NULL). */
void vaec_encode_modes(const vaec_view *v, const float *x, int n, float *z, long *states);
/* The decoder's mean at the latents z [n, latent_width] (one-hot for discrete ones). */
void vaec_decode_latents(const vaec_view *v, const float *z, int n, float *out);

/* How many joint states enumerable latents have (0: not enumerable). */
long vaec_state_count(const vaec_view *v);
/* The decoder's mean at each joint state, [J, data_dim], in the order of the
 * enumerating estimators (vr_states). */
void vaec_state_means(const vaec_view *v, float *out);

/* The grids: samples (64 from the prior, 8 per row), originals over
 * reconstructions (rows of 8 test images, each over its reconstruction), one
 * row per state (its mean, then up to 10 test images whose most probable
 * state it is; every state a tile, 16 per row, when there are more than 16).
 * Each returns 0, 1 when the model has nothing of the kind to draw (why says
 * why), or -1 with err. */
int vaec_draw_samples(const vaec_view *v, int n, uint64_t seed, const char *png, char *why, size_t len);
int vaec_draw_reconstructions(const vaec_view *v, const float *x, int n, const char *png, char *why, size_t len);
int vaec_draw_states(const vaec_view *v, const float *x, int n, const char *png, char *why, size_t len);

/* After each epoch: writes samples.png, reconstructions.png (the first 32
 * test images), states.png (enumerable latents) and curves.png (from
 * run_dir/log.csv) into run_dir.  test may be NULL (no reconstructions).
 * What is skipped and why is printed to note once, at epoch 1.  0, or -1 with
 * err (a file that could not be written).  The training loop calls it after
 * the epoch's log row is flushed, with the epoch's parameters, its test set and
 * the run's seed (the samples' latents, the same every epoch), on a program
 * built with vaec_pictures_opts: about 45 ms of CPU per epoch for
 * fashion_gauss, most of it the plot. */
int vaec_epoch_images(const vaec_view *v, const vr_dataset *test, uint64_t seed, const char *run_dir, int epoch,
                      FILE *note, char *err, size_t len);

#endif
