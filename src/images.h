/* src/images.h: image grids as PNG files (libpng), and the output files of
 * vaec's pictures: written whole to a temporary file in the same folder and
 * renamed, never over a symlink, a device or a directory. */
#ifndef VAEC_IMAGES_H
#define VAEC_IMAGES_H

#include <stddef.h>
#include <stdio.h>

#include "vae/runtime.h"

struct vae_model;

/* The shape of one image: channels (1 gray, 3 RGB), height, width.  Values are
 * stored channels first, as the language's [C, H, W]. */
typedef struct {
    int channels, height, width;
} vaec_image_shape;

/* Pixels between tiles and around the grid, and their gray value. */
#define VAEC_GRID_BORDER 2
#define VAEC_GRID_BORDER_VALUE 128

/* The image shape of a model's data: a declared [C, H, W] with C = 1 or 3, or
 * 784 values as 28 x 28 (Fashion-MNIST's IDX files).  0, or -1 with why (a
 * sentence) when the data has none. */
int vaec_image_shape_of(const struct vae_model *m, vaec_image_shape *s, char *why, size_t len);

/* Writes n tiles (each C*H*W floats, channels first, clamped to [0, 1], NaN as
 * 0; a NULL tile is left blank) as a grid of `cols` tiles per row: an 8-bit
 * grayscale PNG (RGB for 3 channels), tiles VAEC_GRID_BORDER pixels apart.
 * 0, or -1 with err naming the file and the reason (nothing is left at path). */
int vaec_png_grid(const char *path, const float *const *tiles, int n, int cols, vaec_image_shape s, char *err,
                  size_t len);
/* The tiles of n consecutive images (malloc'd array of pointers into images). */
const float **vaec_tiles(const float *images, int n, vaec_image_shape s);

/* Outputs are written through the runtime's vr_output (a temporary file renamed
 * over the name, which must be new or a regular file; removed on signals).
 * Finishes one: commits it when ok, discards it otherwise; 0, or -1 with err
 * (when ok and the commit failed). */
int vaec_output_finish(vr_output *o, int ok, char *err, size_t len);

#endif
