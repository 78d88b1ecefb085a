/* codegen/labels.h: what the runtime needs to know of a model's label
 * (vr_program's label_states and label_inferred), decided here once for both
 * back ends (tiered.c, emit_c.c) and the commands that feed graphs data. */
#ifndef VAE_CODEGEN_LABELS_H
#define VAE_CODEGEN_LABELS_H

#include "parser/model.h"

/* The index of the model's label in latents[] (`data y : label(K)`), or -1. */
static inline int vae_label_index(const vae_model *m) {
    for (int i = 0; i < m->nlatents; i++)
        if (m->latents[i].label) return i;
    return -1;
}

/* K of the label (0: none): each graph's data block holds y_kept and y_true of K columns. */
static inline int vae_label_states(const vae_model *m) {
    int i = vae_label_index(m);
    return i < 0 ? 0 : m->latents[i].states;
}

/* Whether the label has an encoder: a latent where its value is hidden. */
static inline int vae_label_inferred(const vae_model *m) {
    int i = vae_label_index(m);
    return i >= 0 && m->latents[i].encoder != NULL;
}

#endif
