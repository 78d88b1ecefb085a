/* The shared graph pipeline (pipeline.c): a checked model (the unit) -> the graphs of every
 * purpose the build options ask for, each lowered, differentiated where its purpose has a
 * gradient, and planned.  Both back ends start here: the tiered JIT (tiered.c) and the C
 * printer (emit_c.c) print the same graphs. */
#ifndef VAE_PIPELINE_H
#define VAE_PIPELINE_H

#include <stdio.h>

#include "codegen/graph.h"
#include "vae/compiler.h"

/* The most graphs one build makes: train, eval, iwae, encode, decode, sample. */
#define VAE_MAX_GRAPHS 8

/* Builds the graphs that o asks for, in the order train, eval, iwae, encode, decode, sample
 * (or prior_decode); returns how many (0 on failure, message on err).  The caller g_frees them. */
int vae_build_graphs(const vae_unit *u, const vae_build_opts *o, g_graph **gs, FILE *err);

#endif
