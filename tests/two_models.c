/* Two emitted models linked into one program (tests/emit_link.sh): each model's
 * runtime is static, so fashion_gauss.c and fashion_mixture.c link side by side.
 * Calls each model's API and checks what the calls promise:
 *  - MODEL_elbo_each: one value per row, whose mean is MODEL_elbo;
 *  - MODEL_sample_posterior: the same seed gives the same draws, another seed others;
 *    normal latents: over many draws of one row, the mean and spread of the encoder's
 *    mean and exp(logvar / 2); categorical: each state as often as softmax(logits) says. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fashion_gauss.h"
#include "fashion_mixture.h"

#define D 784
#define R 4000 /* draws of one row */

static int failures;
static void check(int ok, const char *what) {
    if (!ok) {
        printf("FAIL: %s\n", what);
        failures++;
    }
}

static float pattern(int i, int j) { return (float)(((i * 131 + j * 17) % 10) < 4); }

/* n rows of a pattern, or R copies of its first row */
static float *rows(int n, int copies) {
    float *x = malloc(sizeof(float) * (size_t)n * D);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < D; j++) x[i * D + j] = pattern(copies ? 0 : i, j);
    return x;
}

static void elbo_each_mean(double elbo, const double *each, int n, const char *model) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += each[i];
    char what[128];
    snprintf(what, sizeof what, "%s: mean of elbo_each %.9g is not elbo %.9g", model, sum / n, elbo);
    check(fabs(sum / n - elbo) <= 1e-6 * fabs(elbo), what);
    printf("%s: elbo %.6f, mean of elbo_each %.6f\n", model, elbo, sum / n);
}

static void gauss(void) {
    fashion_gauss_model *m = fashion_gauss_create(1);
    float *x = rows(300, 0), *one = rows(R, 1);
    double each[300];
    check(fashion_gauss_elbo_each(m, x, 300, each) == 0, "fashion_gauss: elbo_each failed");
    elbo_each_mean(fashion_gauss_elbo(m, x, 300), each, 300, "fashion_gauss");
    float q[40], *z = malloc(sizeof(float) * R * 20), *z2 = malloc(sizeof(float) * R * 20);
    fashion_gauss_encode(m, one, 1, q);
    check(fashion_gauss_sample_posterior(m, one, R, 9, z) == 0, "fashion_gauss: sample_posterior failed");
    check(fashion_gauss_sample_posterior(m, one, R, 9, z2) == 0 && !memcmp(z, z2, sizeof(float) * R * 20),
          "fashion_gauss: the same seed gave other draws");
    check(fashion_gauss_sample_posterior(m, one, R, 10, z2) == 0 && memcmp(z, z2, sizeof(float) * R * 20),
          "fashion_gauss: another seed gave the same draws");
    for (int j = 0; j < 20; j++) {
        double mean = 0, var = 0, sd = exp(0.5 * q[20 + j]);
        for (int r = 0; r < R; r++) mean += z[r * 20 + j] / R;
        for (int r = 0; r < R; r++) var += (z[r * 20 + j] - mean) * (z[r * 20 + j] - mean) / (R - 1);
        char what[160];
        snprintf(what, sizeof what, "fashion_gauss: z[%d] mean %.4f sd %.4f, q says %.4f and %.4f", j, mean, sqrt(var),
                 q[j], sd);
        check(fabs(mean - q[j]) < 5 * sd / sqrt(R) && fabs(sqrt(var) / sd - 1) < 0.1, what);
    }
    printf("fashion_gauss: %d draws of q(z | x) agree with the encoder's mean and spread\n", R);
    free(x), free(one), free(z), free(z2);
    fashion_gauss_free(m);
}

static void mixture(void) {
    fashion_mixture_model *m = fashion_mixture_create(2);
    float *x = rows(300, 0), *one = rows(R, 1);
    double each[300];
    check(fashion_mixture_elbo_each(m, x, 300, each) == 0, "fashion_mixture: elbo_each failed");
    elbo_each_mean(fashion_mixture_elbo(m, x, 300), each, 300, "fashion_mixture");
    float logits[10], *z = malloc(sizeof(float) * R * 10);
    fashion_mixture_encode(m, one, 1, logits);
    check(fashion_mixture_sample_posterior(m, one, R, 3, z) == 0, "fashion_mixture: sample_posterior failed");
    double top = logits[0], total = 0, count[10] = {0};
    for (int k = 1; k < 10; k++) top = logits[k] > top ? logits[k] : top;
    for (int k = 0; k < 10; k++) total += exp(logits[k] - top);
    for (int r = 0; r < R; r++) {
        int ones = 0;
        for (int k = 0; k < 10; k++) {
            ones += z[r * 10 + k] == 1.0f;
            count[k] += z[r * 10 + k];
        }
        check(ones == 1, "fashion_mixture: a draw is not one-hot");
    }
    for (int k = 0; k < 10; k++) {
        double p = exp(logits[k] - top) / total, f = count[k] / R;
        char what[128];
        snprintf(what, sizeof what, "fashion_mixture: state %d drawn %.4f of the time, q says %.4f", k, f, p);
        check(fabs(f - p) < 5 * sqrt(p * (1 - p) / R) + 1e-3, what);
    }
    printf("fashion_mixture: %d draws of q(z | x) agree with the encoder's softmax\n", R);
    free(x), free(one), free(z);
    fashion_mixture_free(m);
}

int main(void) {
    gauss();
    mixture();
    return failures ? 1 : 0;
}
