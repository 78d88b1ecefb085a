/* The data movement of convolutions: a convolution is a matrix product once
 * each output position's window of the input is laid out as a row (im2col);
 * its adjoint adds the rows back into an image (col2im), which is also the
 * forward pass of a transposed convolution.  Images are stored per example
 * pixel by pixel, [H][W][C] (the code generator transposes from and to the
 * language's channels-first layout where a value leaves the convolutions); a
 * window row lists (ky, kx, channel), channel fastest, so a weight
 * [K, K, C, OC] is the [K*K*C, OC] matrix the product wants.
 *
 * Every function works on whole examples, so a range of examples is a unit of
 * the team's work (vr_split) and the bits never depend on how it is cut. */
#include "vae/runtime.h"

#include <string.h>

/* col2im's sums and the transposes' shuffles are vector code with AVX2 (picked
 * when the program loads, as Adam in optim.c); the bits are the same. */
#ifndef VR_SIMD_CLONES
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define VR_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#endif
#ifndef VR_SIMD_CLONES
#define VR_SIMD_CLONES
#endif

/* Work below which one thread does all of it (see KERNEL_SPLIT_MIN in codegen/kernel.c). */
#define CONV_SPLIT_MIN 16384L

typedef struct {
    const void *src;
    void *dst;
    int c, h, w, k, stride, pad, oh, ow; /* image geometry; oh x ow windows */
    int p, q;                             /* transpose: p x q blocks */
} conv_args;

static int windows(int size, int k, int stride, int pad) { return (size + 2 * pad - k) / stride + 1; }

/* Runs part over `images` images, on the team when there is enough work. */
static void run_images(vr_range_fn part, const conv_args *a, long images, long work) {
    if (work >= CONV_SPLIT_MIN)
        vr_split(part, a, images);
    else
        part(a, 0, images);
}

/* The window loops.  A window's line of k pixels is k*c contiguous floats
 * of the image and of its row: one copy (im2col: a plain loop, which beats
 * memcpy's call on the 4-float lines of one-channel images) or one vector sum (col2im)
 * when it lies inside the image, pixel by pixel where it reaches over the
 * border.  col2im adds in the fixed order of the windows (oy, ox), then
 * (ky, kx, ci), however the images are shared out. */

/* cols[(r*oh + oy)*ow + ox][(ky*k + kx)*c + ci] = image[r][oy*stride - pad + ky][ox*stride - pad + kx][ci], 0 outside */
#define DEFINE_IM2COL(NAME, T)                                                                                     \
    VR_SIMD_CLONES static void NAME##_part(const void *arg, long lo, long hi) {                                    \
        const conv_args *a = arg;                                                                                  \
        const int c = a->c, k = a->k, line = k * c;                                                                \
        const long image = (long)a->h * a->w * c;                                                                  \
        for (long r = lo; r < hi; r++) {                                                                           \
            const T *x = (const T *)a->src + r * image;                                                            \
            T *restrict o = (T *)a->dst + r * a->oh * a->ow * k * line;                                                     \
            for (int oy = 0; oy < a->oh; oy++)                                                                     \
                for (int ox = 0; ox < a->ow; ox++) {                                                               \
                    const int y0 = oy * a->stride - a->pad, x0 = ox * a->stride - a->pad;                          \
                    const int inside = x0 >= 0 && x0 + k <= a->w;                                                  \
                    for (int ky = 0; ky < k; ky++, o += line) {                                                    \
                        const int y = y0 + ky;                                                                     \
                        if (y < 0 || y >= a->h) {                                                                  \
                            for (int i = 0; i < line; i++) o[i] = 0;                                               \
                        } else if (inside) {                                                                       \
                            const T *restrict from = x + ((long)y * a->w + x0) * c;                                \
                            if (line == 4) /* one-channel 4x4 kernels: a fixed-size copy, no loop */               \
                                memcpy(o, from, 4 * sizeof(T));                                                    \
                            else                                                                                   \
                                for (int i = 0; i < line; i++) o[i] = from[i];                                     \
                        } else {                                                                                   \
                            for (int kx = 0; kx < k; kx++) {                                                       \
                                const int xx = x0 + kx;                                                            \
                                if (xx >= 0 && xx < a->w) {                                                        \
                                    const T *restrict from = x + ((long)y * a->w + xx) * c;                        \
                                    for (int i = 0; i < c; i++) o[kx * c + i] = from[i];                           \
                                } else                                                                             \
                                    for (int i = 0; i < c; i++) o[kx * c + i] = 0;                                 \
                            }                                                                                      \
                        }                                                                                          \
                    }                                                                                              \
                }                                                                                                  \
        }                                                                                                          \
    }                                                                                                              \
    void NAME(const T *image, T *cols, int images, int c, int h, int w, int k, int stride, int pad) {              \
        conv_args a = {image, cols, c, h, w, k, stride, pad, windows(h, k, stride, pad), windows(w, k, stride, pad), \
                       0, 0};                                                                                      \
        run_images(NAME##_part, &a, images, (long)images * a.oh * a.ow * c * k * k);                               \
    }
DEFINE_IM2COL(vr_im2col_f32, float)
DEFINE_IM2COL(vr_im2col_f64, double)

#define DEFINE_COL2IM(NAME, T)                                                                                     \
    VR_SIMD_CLONES static void NAME##_part(const void *arg, long lo, long hi) {                                                   \
        const conv_args *a = arg;                                                                                  \
        const int c = a->c, k = a->k, line = k * c;                                                                \
        const long image = (long)a->h * a->w * c;                                                                  \
        for (long r = lo; r < hi; r++) {                                                                           \
            T *restrict x = (T *)a->dst + r * image;                                                               \
            const T *restrict v = (const T *)a->src + r * a->oh * a->ow * k * line;                                \
            memset(x, 0, sizeof(T) * (size_t)image);                                                               \
            for (int oy = 0; oy < a->oh; oy++)                                                                     \
                for (int ox = 0; ox < a->ow; ox++) {                                                               \
                    const int y0 = oy * a->stride - a->pad, x0 = ox * a->stride - a->pad;                          \
                    const int inside = x0 >= 0 && x0 + k <= a->w;                                                  \
                    for (int ky = 0; ky < k; ky++, v += line) {                                                    \
                        const int y = y0 + ky;                                                                     \
                        if (y < 0 || y >= a->h) continue;                                                          \
                        if (inside) {                                                                              \
                            T *restrict at = x + ((long)y * a->w + x0) * c;                                        \
                            for (int i = 0; i < line; i++) at[i] += v[i];                                          \
                            continue;                                                                              \
                        }                                                                                          \
                        for (int kx = 0; kx < k; kx++) {                                                           \
                            const int xx = x0 + kx;                                                                \
                            if (xx < 0 || xx >= a->w) continue;                                                    \
                            T *restrict at = x + ((long)y * a->w + xx) * c;                                        \
                            for (int i = 0; i < c; i++) at[i] += v[kx * c + i];                                    \
                        }                                                                                          \
                    }                                                                                              \
                }                                                                                                  \
        }                                                                                                          \
    }                                                                                                              \
    void NAME(const T *cols, T *image, int images, int c, int h, int w, int k, int stride, int pad) {              \
        conv_args a = {cols, image, c, h, w, k, stride, pad, windows(h, k, stride, pad), windows(w, k, stride, pad), \
                       0, 0};                                                                                      \
        run_images(NAME##_part, &a, images, (long)images * a.oh * a.ow * c * k * k);                               \
    }
DEFINE_COL2IM(vr_col2im_f32, float)
DEFINE_COL2IM(vr_col2im_f64, double)

/* Each row's p x q block becomes q x p: an image [pixels][channels] (a
 * product's output, one pixel per row) to channels first, and back. */
#define TILE 8
#define DEFINE_TRANSPOSE(NAME, T)                                                                                  \
    VR_SIMD_CLONES static void NAME##_part(const void *arg, long lo, long hi) {                                                   \
        const conv_args *a = arg;                                                                                  \
        const long block = (long)a->p * a->q;                                                                      \
        for (long r = lo; r < hi; r++) {                                                                           \
            const T *s = (const T *)a->src + r * block;                                                            \
            T *d = (T *)a->dst + r * block;                                                                        \
            for (int i0 = 0; i0 < a->p; i0 += TILE)                                                                \
                for (int j0 = 0; j0 < a->q; j0 += TILE) {                                                          \
                    if (i0 + TILE <= a->p && j0 + TILE <= a->q) { /* a whole tile: fixed bounds, vector code */    \
                        for (int i = 0; i < TILE; i++)                                                             \
                            for (int j = 0; j < TILE; j++)                                                         \
                                d[(long)(j0 + j) * a->p + i0 + i] = s[(long)(i0 + i) * a->q + j0 + j];             \
                        continue;                                                                                  \
                    }                                                                                              \
                    for (int i = i0; i < a->p && i < i0 + TILE; i++)                                               \
                        for (int j = j0; j < a->q && j < j0 + TILE; j++) d[(long)j * a->p + i] = s[(long)i * a->q + j]; \
                }                                                                                                  \
        }                                                                                                          \
    }                                                                                                              \
    void NAME(const T *src, T *dst, int rows, int p, int q) {                                                      \
        if (p == 1 || q == 1) { /* one channel: the same floats */                                                 \
            memcpy(dst, src, sizeof(T) * (size_t)rows * (size_t)p * (size_t)q);                                    \
            return;                                                                                                \
        }                                                                                                          \
        conv_args a = {src, dst, 0, 0, 0, 0, 0, 0, 0, 0, p, q};                                                    \
        run_images(NAME##_part, &a, rows, (long)rows * p * q);                                                     \
    }
DEFINE_TRANSPOSE(vr_transpose_f32, float)
DEFINE_TRANSPOSE(vr_transpose_f64, double)
