/* NumPy's .npz: an uncompressed zip of .npy members, one per named float32 array,
 * readable with numpy.load(path)[name]. */
#ifndef VAEC_NPZ_H
#define VAEC_NPZ_H

#include <stddef.h>

typedef struct {
    const char *name; /* the member is name + ".npy"; numpy.load's key is name */
    int ndims;        /* 0 (a scalar) to 8 */
    const int *dims;
    const float *data; /* C order, dims' product of floats */
} npz_array;

/* Writes the arrays to path: into a temporary file beside it, synced, then renamed, so
 * that path is never half-written.  An existing path that is not a regular file (a
 * directory, a symbolic link, a device) is refused.  0, or -1 with the file and the
 * reason in err. */
int npz_write(const char *path, const npz_array *arrays, int n, char *err, size_t errlen);

#endif
