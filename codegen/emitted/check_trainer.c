/* Not part of vaec: its build compiles this file (-fsyntax-only, Makefile.am) to check the
 * emitted trainer's fixed text, trainer.c, with the declarations an emitted model.c gives it:
 * the runtime's headers and what codegen/emit_c.c prints before it (print_defaults,
 * print_program).  The values below are placeholders; only their types matter. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vae/runtime.h"
#include "vae/driver.h"

extern const vr_program vae_program;
#define VAE_MODEL_NAME "model"
#define VAE_PROVENANCE "# vaec version = 0\n"
#define VAE_MODEL_SETTINGS ""
#define VAE_DEFAULT_DATA NULL
#define VAE_DEFAULT_TEST NULL
#define VAE_DEFAULT_LABELS NULL
#define VAE_DEFAULT_TEST_LABELS NULL
#define VAE_DEFAULT_LABELLED 0
#define VAE_DEFAULT_EPOCHS 1
#define VAE_DEFAULT_LR 0.001
#define VAE_DEFAULT_MOMENTUM 0.9
#define VAE_DEFAULT_OPTIMIZER VR_ADAM
#define VAE_DEFAULT_SEED 1u
#define VAE_DEFAULT_WARMUP 0
#define VAE_SHARDS 1
#define VAE_DEFAULT_VALIDATION 0
#define VAE_DEFAULT_CLIP 0
#define VAE_DEFAULT_LR_SCHEDULE {0, 0, 1, 0, 0}
/* the run table's ranges in the shape print_option_ranges prints them (only the first is read) */
#define VAE_OPTION_RANGES_INIT {{0, 1, 1, 0, "a number in (0, 1]"}}
#define VAE_OPTIM_GROUPS 1 /* print_optim_groups prints these only for a model with per-network optimisers */
static const vr_optim_group vae_optim_groups[] = {{"prior", VR_SGD, 0.01, 0}};
static const int vae_tensor_group[] = {1};
/* one whole option, in the shape print_option prints it */
#define VAE_NUMERIC_OPTIONS                                                                  \
    else if (!strcmp(a, "--threads")) {                                                      \
        if (whole(a, v, (vae_range){0, 4096, 0, 0, "a whole number in [0, 4096]"}, &n)) return 1; \
        threads = (int)n;                                                                    \
    }

#define VAE_MAIN
#include "codegen/emitted/trainer.c"
