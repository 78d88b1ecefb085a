/* vaec export M.vae --params C -o FILE.npz: each parameter tensor of the checkpoint, by
 * the model's name for it (encoder.h.weight), as a float32 array of its shape. */
#include "src/export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser/model.h"
#include "src/npz.h"
#include "vae/compiler.h"

/* Reads the checkpoint, which must hold exactly the model's tensors, into params. */
static int load_checkpoint(const vae_model *m, const char *path, float *params) {
    vr_tensor_info t[VAE_MAX_PARAMS];
    for (int i = 0; i < m->nparams; i++) {
        t[i].name = m->params[i].name;
        t[i].ndims = m->params[i].ndims;
        memcpy(t[i].dims, m->params[i].dims, sizeof t[i].dims);
        t[i].size = m->params[i].size;
    }
    char err[1024];
    if (vr_checkpoint_load(path, t, m->nparams, params, NULL, NULL, NULL, err, sizeof err)) {
        fprintf(stderr, "vaec export: error: %s\n", err);
        return -1;
    }
    return 0;
}

int vaec_export(const char *model_path, const char *params_path, const char *out_path) {
    char why[4400];
    if (vr_output_check(out_path, why, sizeof why)) { /* a link, a device or a folder: said first, by what it is */
        fprintf(stderr, "vaec export: error: %s\n", why);
        return 1;
    }
    size_t n = strlen(out_path);
    if (n < 4 || strcmp(out_path + n - 4, ".npz") != 0) { /* numpy.load tells the formats apart by content, users by name */
        fprintf(stderr, "vaec export: error: -o %s: the output is a NumPy .npz archive: the name must end in .npz\n",
                out_path);
        return 1;
    }
    vae_unit *u = vae_unit_load(model_path, stderr);
    if (!u) return 1;
    const vae_model *m = vae_unit_model(u);
    float *params = calloc((size_t)m->param_floats + 1, sizeof(float));
    npz_array *arrays = calloc((size_t)m->nparams + 1, sizeof *arrays);
    if (!params || !arrays) abort();
    int rc = 1;
    if (load_checkpoint(m, params_path, params) == 0) {
        long offset = 0; /* the checkpoint holds the tensors one after another, in the model's order */
        for (int i = 0; i < m->nparams; i++) {
            arrays[i] = (npz_array){m->params[i].name, m->params[i].ndims, m->params[i].dims, params + offset};
            offset += m->params[i].size;
        }
        char err[1200];
        if (npz_write(out_path, arrays, m->nparams, err, sizeof err) == 0) {
            printf("wrote %s: %d tensors, %ld parameters of %s\n", out_path, m->nparams, offset, m->name);
            rc = 0;
        } else
            fprintf(stderr, "vaec export: error: %s\n", err);
    }
    free(arrays);
    free(params);
    vae_unit_free(u);
    return rc;
}
