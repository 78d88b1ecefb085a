/* Optimisers: one pass over the flat parameter buffer (parameters, gradients
 * and moments share one layout, so no per-tensor loop is needed). */
#include "vae/runtime.h"

#include <math.h>

void vr_adam_f32(float *p, const float *g, float *m, float *v, size_t n, const vr_adam *o, long step) {
    const float b1 = o->beta1, b2 = o->beta2;
    const float c1 = 1.0f / (1.0f - powf(b1, (float)step)), c2 = 1.0f / (1.0f - powf(b2, (float)step));
    const float lr = o->lr, eps = o->eps;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] -= lr * (m[i] * c1) / (sqrtf(v[i] * c2) + eps);
    }
}

void vr_sgd_f32(float *p, const float *g, float *vel, size_t n, float lr, float momentum) {
    for (size_t i = 0; i < n; i++) {
        vel[i] = momentum * vel[i] + g[i];
        p[i] -= lr * vel[i];
    }
}
