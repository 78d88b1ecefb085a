/* vaec gradvar: encoder-gradient variance of estimators at fixed parameters. */
#ifndef VAEC_GRADVAR_H
#define VAEC_GRADVAR_H

#include <stdint.h>

#include "vae/compiler.h"

typedef struct {
    const char *model, *params, *estimators, *data, *data_dir;
    int repeats, batch;
    uint64_t seed;
} gradvar_options;

int vaec_gradvar(const gradvar_options *o);

#endif
