/* Image grids as PNG (libpng), written atomically.  See images.h. */
#include "src/images.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <png.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parser/model.h"

static void fail(char *err, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

int vaec_image_shape_of(const vae_model *m, vaec_image_shape *s, char *why, size_t len) {
    const ast_shape *d = &m->data->shape;
    if (d->ndims == 3 && (d->dims[0] == 1 || d->dims[0] == 3)) {
        *s = (vaec_image_shape){d->dims[0], d->dims[1], d->dims[2]};
        return 0;
    }
    if (m->data_dim == 784) { /* Fashion-MNIST's IDX files hold 28 x 28 images */
        *s = (vaec_image_shape){1, 28, 28};
        return 0;
    }
    fail(why, len, "data %s has %d values, which is not an image (declare it as [1, H, W] or [3, H, W], or give it 784 values for 28 x 28)",
         m->data->name, m->data_dim);
    return -1;
}

int vaec_output_finish(vr_output *o, int ok, char *err, size_t len) {
    if (ok) return vr_output_commit(o, err, len);
    vr_output_discard(o);
    return -1;
}

static unsigned char pixel(float v) {
    if (!(v > 0)) return 0; /* NaN too */
    if (v >= 1) return 255;
    return (unsigned char)lrintf(v * 255.0f);
}

/* The grid's pixels, interleaved channels, row by row (malloc'd). */
static unsigned char *grid_pixels(const float *const *tiles, int n, int cols, vaec_image_shape s, int *w, int *h) {
    int rows = (n + cols - 1) / cols, B = VAEC_GRID_BORDER, C = s.channels;
    *w = cols * s.width + (cols + 1) * B;
    *h = rows * s.height + (rows + 1) * B;
    size_t stride = (size_t)*w * (size_t)C;
    unsigned char *px = malloc(stride * (size_t)*h);
    if (!px) abort();
    memset(px, VAEC_GRID_BORDER_VALUE, stride * (size_t)*h);
    size_t plane = (size_t)s.height * (size_t)s.width;
    for (int i = 0; i < n; i++) {
        const float *img = tiles[i];
        if (!img) continue;
        int x0 = B + (i % cols) * (s.width + B), y0 = B + (i / cols) * (s.height + B);
        for (int y = 0; y < s.height; y++)
            for (int x = 0; x < s.width; x++)
                for (int c = 0; c < C; c++)
                    px[(size_t)(y0 + y) * stride + (size_t)(x0 + x) * (size_t)C + (size_t)c] =
                        pixel(img[(size_t)c * plane + (size_t)y * (size_t)s.width + (size_t)x]);
    }
    return px;
}

/* libpng reports errors through this, then longjmps back to png_write. */
typedef struct {
    char msg[200];
} png_failure;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_failure *f = png_get_error_ptr(png);
    snprintf(f->msg, sizeof f->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

/* Writes the pixels as a PNG to f; 0, or -1 with libpng's message in *fl. */
static int png_write(FILE *f, const unsigned char *px, int w, int h, int channels, png_failure *fl) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, fl, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        snprintf(fl->msg, sizeof fl->msg, "libpng: out of memory");
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, px + (size_t)y * (size_t)w * (size_t)channels);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

const float **vaec_tiles(const float *images, int n, vaec_image_shape s) {
    const float **t = malloc(sizeof *t * (size_t)(n > 0 ? n : 1));
    if (!t) abort();
    size_t size = (size_t)s.channels * (size_t)s.height * (size_t)s.width;
    for (int i = 0; i < n; i++) t[i] = images + (size_t)i * size;
    return t;
}

int vaec_png_grid(const char *path, const float *const *tiles, int n, int cols, vaec_image_shape s, char *err,
                  size_t len) {
    if (n < 1 || cols < 1 || (s.channels != 1 && s.channels != 3) || s.height < 1 || s.width < 1) {
        fail(err, len, "%s: nothing to draw (%d images of %d x %d x %d)", path, n, s.channels, s.height, s.width);
        return -1;
    }
    if (cols > n) cols = n;
    int w, h;
    unsigned char *px = grid_pixels(tiles, n, cols, s, &w, &h);
    vr_output o;
    int rc = vr_output_open(&o, path, err, len);
    if (rc == 0) {
        png_failure fl = {""};
        int ok = png_write(o.f, px, w, h, s.channels, &fl) == 0;
        if (!ok) fail(err, len, "%s: cannot write the PNG: %s", path, fl.msg);
        rc = vaec_output_finish(&o, ok, err, len);
    }
    free(px);
    return rc;
}
