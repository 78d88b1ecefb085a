/* What vaec train writes into a run's folder beside the checkpoint and log.csv
 * (which the runtime's training loop writes itself, as emitted trainers do):
 * a TensorBoard event file with the per-step and per-epoch scalars.  Connected
 * to the loop through its hooks (include/vae/driver.h, vr_hooks). */
#ifndef VAEC_RUN_OUTPUTS_H
#define VAEC_RUN_OUTPUTS_H

#include "vae/runtime.h"
#include "vae/driver.h"

typedef struct tfevents tfevents;

typedef struct {
    const vr_program *program;
    tfevents *events;
    double step_sum; /* the objective summed over the steps since the last train/ scalar */
    int step_count;
} run_outputs;

/* Fills o->hooks so that training writes these outputs; `outs` must outlive the run. */
void run_outputs_attach(run_outputs *outs, const vr_program *p, vr_options *o);

#endif
