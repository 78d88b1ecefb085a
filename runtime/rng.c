/* Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11).
 * A draw is a pure function of (key, counter), so noise does not depend on the
 * order in which it is produced: not on threads, batch splits or back ends. */
#include "vae/runtime.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

vr_philox_block vr_philox4x32(vr_philox_block c, uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c.v[0], p1 = (uint64_t)PHILOX_M1 * c.v[2];
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        vr_philox_block n = {{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
        c = n;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    return c;
}

/* The key mixes the seed with a stream number, so that each latent's noise,
 * the initialisation and the shuffling are independent streams. */
static void key_of(uint64_t seed, uint32_t stream, uint32_t *k0, uint32_t *k1) {
    *k0 = (uint32_t)seed;
    *k1 = (uint32_t)(seed >> 32) ^ (PHILOX_W0 * (stream + 1u));
}

double vr_uniform(uint64_t seed, uint32_t stream, uint64_t index) {
    uint32_t k0, k1;
    key_of(seed, stream, &k0, &k1);
    vr_philox_block c = {{(uint32_t)index, (uint32_t)(index >> 32), 0x55AA55AAu, 0}};
    vr_philox_block r = vr_philox4x32(c, k0, k1);
    return ((double)(r.v[0] >> 5) * 67108864.0 + (double)(r.v[1] >> 6)) * (1.0 / 9007199254740992.0);
}

/* Four standard normals from one Philox block: two Box-Muller pairs. */
static void normals4(uint32_t k0, uint32_t k1, uint32_t block, uint32_t sample, uint32_t example, uint32_t step,
                     double out[4]) {
    vr_philox_block c = {{block, sample, example, step}};
    vr_philox_block r = vr_philox4x32(c, k0, k1);
    for (int p = 0; p < 2; p++) {
        double u1 = ((double)r.v[2 * p] + 1.0) * (1.0 / 4294967296.0); /* (0, 1]: log is finite */
        double u2 = (double)r.v[2 * p + 1] * (1.0 / 4294967296.0);
        double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586476925286766559 * u2;
        out[2 * p] = rad * cos(th);
        out[2 * p + 1] = rad * sin(th);
    }
}

#define DEFINE_NOISE(NAME, T)                                                                                      \
    void NAME(const vr_ctx *ctx, T *dst, int rows, int cols, int group, int stream) {                            \
        uint32_t k0, k1;                                                                                           \
        key_of(ctx->seed, (uint32_t)stream, &k0, &k1);                                                             \
        for (int r = 0; r < rows; r++) {                                                                           \
            uint32_t example = (uint32_t)(ctx->example0 + (uint64_t)(r / group));                                  \
            uint32_t sample = (uint32_t)(ctx->sample0 + (uint64_t)(r % group));                                    \
            T *row = dst + (size_t)r * (size_t)cols;                                                               \
            for (int c = 0; c < cols; c += 4) {                                                                    \
                double n[4];                                                                                       \
                normals4(k0, k1, (uint32_t)(c / 4), sample, example, (uint32_t)ctx->step, n);                     \
                for (int i = 0; i < 4 && c + i < cols; i++) row[c + i] = (T)n[i];                                 \
            }                                                                                                      \
        }                                                                                                          \
    }

DEFINE_NOISE(vr_noise_normal_f32, float)
DEFINE_NOISE(vr_noise_normal_f64, double)

/* Uniforms in [0, 1) with the same keying as the normal noise: column c of
 * (example, sample) uses block c / 4, lane c % 4. */
static double keyed_uniform(uint32_t k0, uint32_t k1, uint32_t col, uint32_t sample, uint32_t example, uint32_t step) {
    vr_philox_block c = {{col / 4u, sample, example, step ^ 0x80000000u}};
    vr_philox_block r = vr_philox4x32(c, k0, k1);
    return (double)r.v[col % 4u] * (1.0 / 4294967296.0);
}

/* Noise made from one keyed uniform per element, strictly inside (0, 1), through TRANSFORM(u);
 * each kind has its own stream key, so no two kinds share draws. */
#define DEFINE_UNIFORM_NOISE(NAME, T, KEY, TRANSFORM)                                                              \
    void NAME(const vr_ctx *ctx, T *dst, int rows, int cols, int group, int stream) {                            \
        uint32_t k0, k1;                                                                                           \
        key_of(ctx->seed, (uint32_t)stream + (KEY), &k0, &k1);                                                    \
        for (int r = 0; r < rows; r++) {                                                                           \
            uint32_t example = (uint32_t)(ctx->example0 + (uint64_t)(r / group));                                  \
            uint32_t sample = (uint32_t)(ctx->sample0 + (uint64_t)(r % group));                                    \
            for (int c = 0; c < cols; c++) {                                                                       \
                double u = keyed_uniform(k0, k1, (uint32_t)c, sample, example, (uint32_t)ctx->step);              \
                u = (u * 4294967296.0 + 0.5) / 4294967297.0; /* strictly inside (0, 1) */                          \
                dst[(size_t)r * (size_t)cols + (size_t)c] = (T)(TRANSFORM(u));                                     \
            }                                                                                                      \
        }                                                                                                          \
    }

#define GUMBEL_OF(u) (-log(-log(u)))
#define UNIFORM_OF(u) (u)
/* u in float: (0, 1) holds doubles up to 1 - 2^-32 that round to 1.0f (one draw in 2^25 or so),
 * where a relaxation's log(1 - v) is -inf (relax's conditional z~) and its gradient NaN; so
 * capped at the largest float below 1, which leaves every other draw's bits as they were. */
#define UNIFORM_OF_F32(u) fmin((u), 0x1.fffffep-1)
#define LOGISTIC_OF(u) (log(u) - log1p(-(u)))
DEFINE_UNIFORM_NOISE(vr_noise_gumbel_f32, float, 0x6B000u, GUMBEL_OF)
DEFINE_UNIFORM_NOISE(vr_noise_gumbel_f64, double, 0x6B000u, GUMBEL_OF)
DEFINE_UNIFORM_NOISE(vr_noise_uniform_f32, float, 0x75000u, UNIFORM_OF_F32)
DEFINE_UNIFORM_NOISE(vr_noise_uniform_f64, double, 0x75000u, UNIFORM_OF)
DEFINE_UNIFORM_NOISE(vr_noise_logistic_f32, float, 0x4C000u, LOGISTIC_OF)
DEFINE_UNIFORM_NOISE(vr_noise_logistic_f64, double, 0x4C000u, LOGISTIC_OF)

#define DEFINE_SAMPLE(NAME, T)                                                                                     \
    void NAME(const vr_ctx *ctx, const T *logits, int logits_rows, T *dst, int rows, int nvars, int states, int group, \
              int stream, int bernoulli) {                                                                                     \
        uint32_t k0, k1;                                                                                           \
        key_of(ctx->seed, (uint32_t)stream, &k0, &k1);                                                             \
        int width = bernoulli ? nvars : nvars * states;                                                            \
        for (int r = 0; r < rows; r++) {                                                                           \
            uint32_t example = (uint32_t)(ctx->example0 + (uint64_t)(r / group));                                  \
            uint32_t sample = (uint32_t)(ctx->sample0 + (uint64_t)(r % group));                                    \
            const T *l = logits ? logits + (size_t)(r / (rows / logits_rows)) * (size_t)width : NULL;                             \
            T *out = dst + (size_t)r * (size_t)width;                                                              \
            for (int v = 0; v < nvars; v++) {                                                                      \
                double u = keyed_uniform(k0, k1, (uint32_t)v, sample, example, (uint32_t)ctx->step);              \
                if (bernoulli) { /* 1 with probability sigmoid(l) */                                               \
                    double p = l ? 1.0 / (1.0 + exp(-(double)l[v])) : 0.5;                                         \
                    out[v] = (T)(u < p);                                                                           \
                    continue;                                                                                      \
                }                                                                                                  \
                /* inverse CDF of softmax(l), the maximum subtracted */                                            \
                const T *lv = l ? l + (size_t)v * (size_t)states : NULL;                                           \
                double m = 0, total = 0;                                                                           \
                if (lv) {                                                                                          \
                    m = lv[0];                                                                                     \
                    for (int k = 1; k < states; k++) m = lv[k] > m ? lv[k] : m;                                     \
                    for (int k = 0; k < states; k++) total += exp((double)lv[k] - m);                              \
                } else                                                                                             \
                    total = states;                                                                                \
                double target = u * total, run = 0;                                                                \
                int pick = states - 1;                                                                             \
                for (int k = 0; k < states; k++) {                                                                 \
                    run += lv ? exp((double)lv[k] - m) : 1.0;                                                      \
                    if (target < run) {                                                                            \
                        pick = k;                                                                                  \
                        break;                                                                                     \
                    }                                                                                              \
                }                                                                                                  \
                for (int k = 0; k < states; k++) out[v * states + k] = (T)(k == pick);                             \
            }                                                                                                      \
        }                                                                                                          \
    }

DEFINE_SAMPLE(vr_sample_f32, float)
DEFINE_SAMPLE(vr_sample_f64, double)

#define DEFINE_STATES(NAME, T)                                                                                     \
    void NAME(T *dst, int rows, int64_t stride, int64_t local, int nvars, int states, int bernoulli) {            \
        int width = bernoulli ? nvars : nvars * states;                                                            \
        for (int j = 0; j < rows; j++) {                                                                           \
            int64_t s = ((int64_t)j / stride) % local;                                                             \
            T *out = dst + (size_t)j * (size_t)width;                                                              \
            for (int i = 0; i < width; i++) out[i] = 0;                                                            \
            for (int v = 0; v < nvars; v++, s /= states) {                                                         \
                int digit = (int)(s % states);                                                                     \
                if (bernoulli)                                                                                     \
                    out[v] = (T)digit;                                                                             \
                else                                                                                               \
                    out[v * states + digit] = 1;                                                                   \
            }                                                                                                      \
        }                                                                                                          \
    }

DEFINE_STATES(vr_states_f32, float)
DEFINE_STATES(vr_states_f64, double)

void vr_shuffle(int *idx, int n, uint64_t seed, uint64_t epoch) {
    vr_shuffle_stream(idx, n, seed, 0x5EED0000u + (uint32_t)epoch);
}

void vr_shuffle_stream(int *idx, int n, uint64_t seed, uint32_t stream) {
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(vr_uniform(seed, stream, (uint64_t)i) * (i + 1));
        if (j > i) j = i;
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

double vr_logsumexp(const double *x, size_t n) {
    if (n == 0) return -INFINITY;
    double m = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > m) m = x[i];
    if (isinf(m)) return m;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += exp(x[i] - m);
    return m + log(s);
}
