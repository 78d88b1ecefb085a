/* What vaec train writes into a run's folder beside the checkpoint and log.csv
 * (which the runtime's training loop writes itself, as emitted trainers do):
 * each epoch's image grids and curve plot (src/pictures.c), and a TensorBoard
 * event file with the per-step and per-epoch scalars and the grids.  Connected
 * to the loop through its hooks (include/vae/driver.h, vr_hooks). */
#ifndef VAEC_RUN_OUTPUTS_H
#define VAEC_RUN_OUTPUTS_H

#include "vae/runtime.h"
#include "vae/driver.h"

typedef struct tfevents tfevents;

struct vae_model;

typedef struct {
    const struct vae_model *model;
    const vr_program *program; /* built with vaec_pictures_opts */
    uint64_t seed;             /* the run's: the sample grid's latents, the same every epoch */
    const char *run_dir;
    tfevents *events;
    double step_sum; /* the objective summed over the steps since the last train/ scalar */
    int step_count;
    int epochs_done; /* epochs whose grids were drawn */
} run_outputs;

/* Fills o->hooks so that training writes these outputs; `outs` must outlive the run. */
void run_outputs_attach(run_outputs *outs, const struct vae_model *m, const vr_program *p, vr_options *o);

#endif
