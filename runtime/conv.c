/* The data movement of convolutions: a convolution is a matrix product once
 * each output position's window of the input is laid out as a row (im2col);
 * its adjoint adds the rows back into an image (col2im), which is also the
 * forward pass of a transposed convolution.  Images are stored per example
 * (one row of the batch) channels first, [C][H][W], as the language's shapes
 * say; a window row lists (channel, ky, kx), kx fastest, so a weight
 * [C, K, K, OC] is the [C*K*K, OC] matrix the product wants.
 *
 * Every function works on whole examples, so a range of examples is a unit of
 * the team's work (vr_split) and the bits never depend on how it is cut. */
#include "vae/runtime.h"

#include <string.h>

/* Work below which one thread does all of it (see KERNEL_SPLIT_MIN in graph.c). */
#define CONV_SPLIT_MIN 16384L

typedef struct {
    const void *src;
    void *dst;
    int c, h, w, k, stride, pad, oh, ow; /* image geometry; oh x ow windows */
    int p, q;                             /* transpose: p x q blocks */
} conv_args;

static int windows(int size, int k, int stride, int pad) { return (size + 2 * pad - k) / stride + 1; }

/* cols[(r*oh + oy)*ow + ox][(ci*k + ky)*k + kx] = image[r][ci][oy*stride - pad + ky][ox*stride - pad + kx], 0 outside */
#define DEFINE_IM2COL(NAME, T)                                                                                     \
    static void NAME##_part(const void *arg, long lo, long hi) {                                                   \
        const conv_args *a = arg;                                                                                  \
        const long image = (long)a->c * a->h * a->w, row = (long)a->c * a->k * a->k;                              \
        for (long r = lo; r < hi; r++) {                                                                           \
            const T *x = (const T *)a->src + r * image;                                                            \
            T *out = (T *)a->dst + r * a->oh * a->ow * row;                                                        \
            for (int oy = 0; oy < a->oh; oy++)                                                                     \
                for (int ox = 0; ox < a->ow; ox++, out += row) {                                                   \
                    T *o = out;                                                                                    \
                    for (int ci = 0; ci < a->c; ci++)                                                              \
                        for (int ky = 0; ky < a->k; ky++) {                                                        \
                            int y = oy * a->stride - a->pad + ky;                                                  \
                            if (y < 0 || y >= a->h) {                                                              \
                                for (int kx = 0; kx < a->k; kx++) *o++ = 0;                                        \
                                continue;                                                                          \
                            }                                                                                      \
                            const T *line = x + ((long)ci * a->h + y) * a->w;                                      \
                            for (int kx = 0; kx < a->k; kx++) {                                                    \
                                int xx = ox * a->stride - a->pad + kx;                                             \
                                *o++ = xx >= 0 && xx < a->w ? line[xx] : (T)0;                                     \
                            }                                                                                      \
                        }                                                                                          \
                }                                                                                                  \
        }                                                                                                          \
    }                                                                                                              \
    void NAME(const T *image, T *cols, int rows, int c, int h, int w, int k, int stride, int pad) {                \
        conv_args a = {image, cols, c, h, w, k, stride, pad, windows(h, k, stride, pad), windows(w, k, stride, pad), \
                       0, 0};                                                                                      \
        if ((long)rows * a.oh * a.ow * c * k * k >= CONV_SPLIT_MIN)                                                \
            vr_split(NAME##_part, &a, rows);                                                                       \
        else                                                                                                       \
            NAME##_part(&a, 0, rows);                                                                              \
    }
DEFINE_IM2COL(vr_im2col_f32, float)
DEFINE_IM2COL(vr_im2col_f64, double)

/* The adjoint: image = sum of the windows' values at the pixels they cover,
 * in the fixed order of the windows (oy, ox), then (ci, ky, kx). */
#define DEFINE_COL2IM(NAME, T)                                                                                     \
    static void NAME##_part(const void *arg, long lo, long hi) {                                                   \
        const conv_args *a = arg;                                                                                  \
        const long image = (long)a->c * a->h * a->w, row = (long)a->c * a->k * a->k;                              \
        for (long r = lo; r < hi; r++) {                                                                           \
            T *x = (T *)a->dst + r * image;                                                                        \
            const T *in = (const T *)a->src + r * a->oh * a->ow * row;                                             \
            memset(x, 0, sizeof(T) * (size_t)image);                                                               \
            for (int oy = 0; oy < a->oh; oy++)                                                                     \
                for (int ox = 0; ox < a->ow; ox++, in += row) {                                                    \
                    const T *v = in;                                                                               \
                    for (int ci = 0; ci < a->c; ci++)                                                              \
                        for (int ky = 0; ky < a->k; ky++, v += a->k) {                                             \
                            int y = oy * a->stride - a->pad + ky;                                                  \
                            if (y < 0 || y >= a->h) continue;                                                      \
                            T *line = x + ((long)ci * a->h + y) * a->w;                                            \
                            for (int kx = 0; kx < a->k; kx++) {                                                    \
                                int xx = ox * a->stride - a->pad + kx;                                             \
                                if (xx >= 0 && xx < a->w) line[xx] += v[kx];                                       \
                            }                                                                                      \
                        }                                                                                          \
                }                                                                                                  \
        }                                                                                                          \
    }                                                                                                              \
    void NAME(const T *cols, T *image, int rows, int c, int h, int w, int k, int stride, int pad) {                \
        conv_args a = {cols, image, c, h, w, k, stride, pad, windows(h, k, stride, pad), windows(w, k, stride, pad), \
                       0, 0};                                                                                      \
        if ((long)rows * a.oh * a.ow * c * k * k >= CONV_SPLIT_MIN)                                                \
            vr_split(NAME##_part, &a, rows);                                                                       \
        else                                                                                                       \
            NAME##_part(&a, 0, rows);                                                                              \
    }
DEFINE_COL2IM(vr_col2im_f32, float)
DEFINE_COL2IM(vr_col2im_f64, double)

/* Each row's p x q block becomes q x p: an image [pixels][channels] (a
 * product's output, one pixel per row) to channels first, and back. */
#define DEFINE_TRANSPOSE(NAME, T)                                                                                  \
    static void NAME##_part(const void *arg, long lo, long hi) {                                                   \
        const conv_args *a = arg;                                                                                  \
        const long block = (long)a->p * a->q;                                                                      \
        for (long r = lo; r < hi; r++) {                                                                           \
            const T *s = (const T *)a->src + r * block;                                                            \
            T *d = (T *)a->dst + r * block;                                                                        \
            for (int j = 0; j < a->q; j++)                                                                         \
                for (int i = 0; i < a->p; i++) d[(long)j * a->p + i] = s[(long)i * a->q + j];                      \
        }                                                                                                          \
    }                                                                                                              \
    void NAME(const T *src, T *dst, int rows, int p, int q) {                                                      \
        conv_args a = {src, dst, 0, 0, 0, 0, 0, 0, 0, 0, p, q};                                                    \
        if ((long)rows * p * q >= CONV_SPLIT_MIN)                                                                  \
            vr_split(NAME##_part, &a, rows);                                                                       \
        else                                                                                                       \
            NAME##_part(&a, 0, rows);                                                                              \
    }
DEFINE_TRANSPOSE(vr_transpose_f32, float)
DEFINE_TRANSPOSE(vr_transpose_f64, double)
