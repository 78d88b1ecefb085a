/* The version 0 estimators' shared pieces (estimators.c), which the deployment graphs
 * (deploy.c) also build from: the data, the encoders' distributions and the KL of a batch,
 * draws of the latents, and the decoder at given latent values. */
#ifndef VAE_ESTIMATORS_H
#define VAE_ESTIMATORS_H

#include "codegen/densities.h"

typedef struct {
    g_node *x;
    int B, S;
    int has_encoder;
    logprob q[VAE_MAX_LATENTS], p[VAE_MAX_LATENTS]; /* discrete latents */
    g_node *mean[VAE_MAX_LATENTS], *spread[VAE_MAX_LATENTS]; /* normal latents: mean, logvar or scale */
    g_node *kl;   /* [B, 1], sum over latents */
} prepared;

/* Lowers the data [B, D], each discrete latent's prior and, with need_encoder, every
 * encoder with its KL.  0 or -1. */
int prepare(lowering *L, prepared *P, int B, int S, int need_encoder);
/* z = mean + sd * eps for every normal latent: [B*S, L]; detached for score-function estimators. */
g_node *normal_sample(lowering *L, prepared *P, int i, int detach);
/* A draw of discrete latent i (detached): from q(z | x) (from 0), the prior (1) or uniform (2). */
g_node *discrete_sample(lowering *L, prepared *P, int i, int from);
/* The decoder's distribution arguments a (and b) at latent values z, one node per latent. 0 or -1. */
int lower_decoder(lowering *L, g_node *const *z, g_node **a, g_node **b);
/* Whether every latent has an encoder. */
int has_encoders(const vae_model *m);

#endif
