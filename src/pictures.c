/* What vaec draws with a trained model.  See pictures.h. */
#include "src/pictures.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/graph.h" /* g_model_enumerable */
#include "parser/model.h"
#include "src/images.h"
#include "src/plot.h"

void vaec_pictures_opts(vae_build_opts *o) {
    o->api = 1;
    o->prior_decode = 1;
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) abort();
    return p;
}

int vaec_observed_label(const vae_model *m) {
    for (int i = 0; i < m->nlatents; i++)
        if (m->latents[i].label && !m->latents[i].encoder) return i;
    return -1;
}

/* Runs one of the deployment graphs over n rows in calls of its batch (the
 * last one padded with its last row), copying `width` output columns of each
 * row to out.  Noise is keyed by (seed, row).  labels (or NULL): each row's
 * class, given as the data block's y_kept (include/vae/driver.h). */
static void run_rows(const vaec_view *v, const vr_graph *g, long out_offset, int width, const float *in, int in_width,
                     const int *labels, int n, uint64_t seed, float *out) {
    const vr_program *p = v->program;
    vr_program_poll(p, g);
    float *arena = xcalloc((size_t)g->arena_floats, sizeof(float));
    /* the rows, then a label's columns of the data block (zeros: hidden) */
    size_t block = (size_t)vr_data_floats(g->batch, in_width > 0 ? in_width : 1, p->label_states);
    float *buf = xcalloc(block, sizeof(float)), *y_kept = buf + (size_t)g->batch * (size_t)in_width;
    for (int start = 0; start < n; start += g->batch) {
        int rows = n - start < g->batch ? n - start : g->batch;
        for (int i = 0; i < g->batch && in; i++)
            memcpy(buf + (size_t)i * (size_t)in_width, in + (size_t)(start + (i < rows ? i : rows - 1)) * (size_t)in_width,
                   sizeof(float) * (size_t)in_width);
        for (int i = 0; i < g->batch && labels; i++) {
            int k = labels[start + (i < rows ? i : rows - 1)], K = p->label_states;
            for (int c = 0; c < K; c++) y_kept[(size_t)i * K + c] = c == k;
        }
        vr_ctx ctx = {.seed = seed, .step = VR_STEP_EVAL, .example0 = (uint64_t)start};
        g->fn((float *)v->params, NULL, arena, buf, &ctx);
        memcpy(out + (size_t)start * (size_t)width, arena + out_offset, sizeof(float) * (size_t)rows * (size_t)width);
    }
    free(buf);
    free(arena);
}

/* The decoder's arguments [n, decode_width] -> its mean [n, data_dim]. */
static void decoder_means(const vae_model *m, const float *args, int W, int n, float *out) {
    int D = m->data_dim, logits = m->likelihood.kind == DIST_BERNOULLI && !m->likelihood.a_is_probs;
    for (long i = 0; i < n; i++)
        for (int j = 0; j < D; j++) {
            float a = args[i * W + j]; /* the first D columns: logits, probabilities, or the normal's mean */
            out[i * D + j] = logits ? 1.0f / (1.0f + expf(-a)) : a;
        }
}

static void decode_means(const vaec_view *v, const vr_graph *g, long out_offset, const float *in, int in_width, int n,
                         uint64_t seed, float *out) {
    const vr_program *p = v->program;
    float *args = xcalloc((size_t)n * (size_t)p->decode_width, sizeof(float));
    run_rows(v, g, out_offset, p->decode_width, in, in_width, NULL, n, seed, args);
    decoder_means(v->model, args, p->decode_width, n, out);
    free(args);
}

#define GRID_COLS 8         /* samples and reconstructions per row */

/* The classes of the labels of n samples (the sample graph's data block), one-hot [n, K]. */
static float *sample_labels(const vaec_view *v, int n, int K) {
    float *y = xcalloc((size_t)n * (size_t)K, sizeof(float));
    for (int i = 0; i < n; i++) y[(size_t)i * K + (v->label ? v->label - 1 : (i / GRID_COLS) % K)] = 1;
    return y;
}

void vaec_prior_means(const vaec_view *v, int n, uint64_t seed, float *out) {
    const vr_program *p = v->program;
    int K = 0;
    for (int i = 0; i < v->model->nlatents; i++)
        if (v->model->latents[i].label) K = v->model->latents[i].states;
    float *y = K ? sample_labels(v, n, K) : NULL;
    decode_means(v, &p->sample, p->api_out_sample, y, K, n, seed, out);
    free(y);
}

int vaec_can_reconstruct(const vaec_view *v, char *why, size_t len) {
    const vae_model *m = v->model;
    for (int i = 0; i < m->nlatents; i++)
        if (!m->latents[i].encoder && !m->latents[i].label) {
            snprintf(why, len, "model %s has no encoder for latent %s: no reconstructions", m->name, m->latents[i].name);
            return 0;
        }
    if (!m->est.trains_encoder) {
        snprintf(why, len, "estimator %s leaves the encoder of model %s untrained: no reconstructions", m->est.name,
                 m->name);
        return 0;
    }
    return 1;
}

/* The most probable latent values of one example, from its encoder's outputs:
 * the mean of a normal latent, one-hot argmax of a categorical, 0/1 of a
 * Bernoulli; an observed label one-hot at `label` (no encoder outputs).  Also
 * its joint state's index (discrete latents; vr_states' order), which the caller
 * uses only for an enumerable model (at most 65,536 joint states; a model of
 * 200 Bernoulli units has 2^200, whose index no integer holds). */
static long mode_latents(const vae_model *m, const float *enc, int label, float *z) {
    long joint = 0, stride = 1;
    int enumerable = g_model_enumerable(m);
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        long local = 0, place = 1;
        if (l->label && !l->encoder) {
            for (int s = 0; s < l->states; s++) z[s] = s == label;
            local = label > 0 ? label : 0;
            joint += local * stride;
            stride *= enumerable ? (long)l->joint_states : 1;
            z += l->width;
            continue;
        }
        if (l->kind == LATENT_NORMAL) memcpy(z, enc, sizeof(float) * (size_t)l->width);
        else if (l->kind == LATENT_BERNOULLI)
            for (int k = 0; k < l->nvars; k++, place *= enumerable ? 2 : 1) {
                z[k] = enc[k] > (l->posterior.a_is_probs ? 0.5f : 0.0f);
                if (enumerable) local += (long)z[k] * place;
            }
        else
            for (int k = 0; k < l->nvars; k++, place *= enumerable ? l->states : 1) {
                const float *logit = enc + k * l->states;
                int best = 0;
                for (int s = 1; s < l->states; s++) best = logit[s] > logit[best] ? s : best;
                for (int s = 0; s < l->states; s++) z[k * l->states + s] = s == best;
                local += best * place;
            }
        joint += local * stride;
        stride *= l->kind == LATENT_NORMAL || !enumerable ? 1 : (long)l->joint_states;
        enc += l->width * (l->posterior.b ? 2 : 1);
        z += l->width;
    }
    return joint;
}

void vaec_encode_params(const vaec_view *v, const float *x, int n, float *out) {
    const vr_program *p = v->program;
    run_rows(v, &p->encode, p->api_out_encode, p->encode_width, x, p->data_dim, v->x_labels, n, 0, out);
}

void vaec_decode_latents(const vaec_view *v, const float *z, int n, float *out) {
    const vr_program *p = v->program;
    decode_means(v, &p->decode, p->api_out_decode, z, p->latent_width, n, 0, out);
}

void vaec_encode_modes(const vaec_view *v, const float *x, int n, float *z, long *states) {
    const vr_program *p = v->program;
    float *enc = xcalloc((size_t)n * (size_t)p->encode_width, sizeof(float));
    vaec_encode_params(v, x, n, enc);
    for (long i = 0; i < n; i++) {
        long s = mode_latents(v->model, enc + i * p->encode_width, v->x_labels ? v->x_labels[i] : -1, z + i * p->latent_width);
        if (states) states[i] = g_model_enumerable(v->model) ? s : -1; /* no index beyond 65,536 states */
    }
    free(enc);
}

void vaec_reconstruct(const vaec_view *v, const float *x, int n, float *out) {
    const vr_program *p = v->program;
    float *z = xcalloc((size_t)n * (size_t)p->latent_width, sizeof(float));
    vaec_encode_modes(v, x, n, z, NULL);
    decode_means(v, &p->decode, p->api_out_decode, z, p->latent_width, n, 0, out);
    free(z);
}

long vaec_state_count(const vaec_view *v) {
    if (!g_model_enumerable(v->model)) return 0;
    long J = 1;
    for (int i = 0; i < v->model->nlatents; i++) J *= (long)v->model->latents[i].joint_states;
    return J;
}

void vaec_state_means(const vaec_view *v, float *out) {
    const vae_model *m = v->model;
    const vr_program *p = v->program;
    long J = vaec_state_count(v);
    float *z = xcalloc((size_t)J * (size_t)p->latent_width, sizeof(float));
    long stride = 1;
    int col = 0;
    for (int i = 0; i < m->nlatents; i++) { /* each latent's block of columns, as the enumerating graphs make it */
        const vae_latent *l = &m->latents[i];
        float *t = xcalloc((size_t)J * (size_t)l->width, sizeof(float));
        vr_states_f32(t, (int)J, stride, (int64_t)l->joint_states, l->nvars, l->kind == LATENT_CATEGORICAL ? l->states : 2,
                      l->kind == LATENT_BERNOULLI);
        for (long j = 0; j < J; j++)
            memcpy(z + j * p->latent_width + col, t + j * l->width, sizeof(float) * (size_t)l->width);
        free(t);
        stride *= (long)l->joint_states;
        col += l->width;
    }
    decode_means(v, &p->decode, p->api_out_decode, z, p->latent_width, (int)J, 0, out);
    free(z);
}

/* ---------------------------------------------------------------- the grids */

#define STATE_EXAMPLES 10   /* test images beside each state's mean */
#define STATE_ROWS_MAX 16   /* more states: one tile each, 16 per row ... */
#define STATE_TILES_MAX 256 /* ... the first 256 of them */

static int image_shape(const vaec_view *v, vaec_image_shape *s, char *msg, size_t len) {
    return vaec_image_shape_of(v->model, s, msg, len) == 0 ? 0 : 1;
}

int vaec_draw_samples(const vaec_view *v, int n, uint64_t seed, const char *png, char *msg, size_t len) {
    vaec_image_shape s;
    if (image_shape(v, &s, msg, len)) return 1;
    float *img = xcalloc((size_t)n * (size_t)v->model->data_dim, sizeof(float));
    vaec_prior_means(v, n, seed, img);
    const float **tiles = vaec_tiles(img, n, s);
    int rc = vaec_png_grid(png, tiles, n, GRID_COLS, s, msg, len);
    free(tiles);
    free(img);
    return rc;
}

/* Whether the encoders have what they read: 1, or 0 with why (an observed label whose classes
 * the examples do not come with). */
static int labels_given(const vaec_view *v, char *why, size_t len) {
    int y = vaec_observed_label(v->model);
    if (y < 0 || v->x_labels) return 1;
    snprintf(why, len, "the encoders of model %s read label %s, and the examples come without labels: no "
             "reconstructions", v->model->name, v->model->latents[y].name);
    return 0;
}

int vaec_draw_reconstructions(const vaec_view *v, const float *x, int n, const char *png, char *msg, size_t len) {
    vaec_image_shape s;
    if (image_shape(v, &s, msg, len) || !vaec_can_reconstruct(v, msg, len) || !labels_given(v, msg, len)) return 1;
    if (n < 1) {
        snprintf(msg, len, "%s: no examples to reconstruct", png);
        return -1;
    }
    size_t D = (size_t)v->model->data_dim;
    float *rec = xcalloc((size_t)n * D, sizeof(float));
    vaec_reconstruct(v, x, n, rec);
    int cols = n < GRID_COLS ? n : GRID_COLS, pairs = (n + cols - 1) / cols;
    const float **tiles = xcalloc((size_t)pairs * 2 * (size_t)cols, sizeof *tiles);
    for (int i = 0; i < n; i++) { /* row pair r: originals i = r*cols.., then their reconstructions */
        int r = i / cols, c = i % cols;
        tiles[(2 * r) * cols + c] = x + (size_t)i * D;
        tiles[(2 * r + 1) * cols + c] = rec + (size_t)i * D;
    }
    int rc = vaec_png_grid(png, tiles, pairs * 2 * cols, cols, s, msg, len);
    free(tiles);
    free(rec);
    return rc;
}

int vaec_draw_states(const vaec_view *v, const float *x, int n, const char *png, char *msg, size_t len) {
    vaec_image_shape s;
    if (image_shape(v, &s, msg, len)) return 1;
    long J = vaec_state_count(v);
    if (J == 0) {
        snprintf(msg, len, "model %s has no enumerable discrete latents: no states.png", v->model->name);
        return 1;
    }
    size_t D = (size_t)v->model->data_dim;
    float *means = xcalloc((size_t)J * D, sizeof(float));
    vaec_state_means(v, means);
    int rc;
    if (J > STATE_ROWS_MAX) { /* one tile per state */
        int shown = J < STATE_TILES_MAX ? (int)J : STATE_TILES_MAX;
        const float **tiles = vaec_tiles(means, shown, s);
        rc = vaec_png_grid(png, tiles, shown, STATE_ROWS_MAX, s, msg, len);
        free(tiles);
    } else { /* row j: state j's mean, then test images whose most probable state is j */
        int cols = 1 + STATE_EXAMPLES;
        const float **tiles = xcalloc((size_t)J * (size_t)cols, sizeof *tiles);
        int *filled = xcalloc((size_t)J, sizeof(int));
        for (long j = 0; j < J; j++) tiles[j * cols] = means + (size_t)j * D;
        if (x && n > 0 && vaec_can_reconstruct(v, msg, len) && labels_given(v, msg, len)) {
            float *z = xcalloc((size_t)n * (size_t)v->program->latent_width, sizeof(float));
            long *state = xcalloc((size_t)n, sizeof(long));
            vaec_encode_modes(v, x, n, z, state);
            for (int i = 0; i < n; i++)
                if (filled[state[i]] < STATE_EXAMPLES) tiles[state[i] * cols + 1 + filled[state[i]]++] = x + (size_t)i * D;
            free(state);
            free(z);
        }
        rc = vaec_png_grid(png, tiles, (int)J * cols, cols, s, msg, len);
        free(filled);
        free(tiles);
    }
    free(means);
    return rc;
}

/* ---------------------------------------------------------------- after each epoch */

#define EPOCH_SAMPLES 64
#define EPOCH_RECONSTRUCTIONS 32
#define EPOCH_STATE_EXAMPLES 1000 /* test images sorted into the states' rows */

/* One grid's outcome (vaec_draw_*'s r): 0 when written or skipped (why
 * printed to note when `tell`), -1 with err when it could not be written. */
static int epoch_grid(int r, const char *msg, int tell, FILE *note, char *err, size_t len) {
    if (r < 0) snprintf(err, len, "%s", msg);
    else if (r == 1 && tell && note) fprintf(note, "vaec: %s\n", msg);
    return r < 0 ? -1 : 0;
}

int vaec_epoch_images(const vaec_view *view, const vr_dataset *test, uint64_t seed, const char *run_dir, int epoch,
                      FILE *note, char *err, size_t len) {
    vaec_view labelled = *view; /* the test examples drawn are its first ones: their labels are the first */
    labelled.x_labels = test ? test->labels : NULL;
    const vaec_view *v = &labelled;
    char path[4200], png[4200], msg[512];
    vaec_image_shape s;
    int rc = 0;
    if (vaec_image_shape_of(v->model, &s, msg, sizeof msg) != 0) { /* one line, once, for the three grids */
        if (epoch == 1 && note) fprintf(note, "vaec: no image grids: %s\n", msg);
    } else {
        int want = vaec_state_count(v) ? EPOCH_STATE_EXAMPLES : EPOCH_RECONSTRUCTIONS;
        int nx = test ? (test->n < want ? test->n : want) : 0;
        float *x = xcalloc((size_t)nx * (size_t)v->model->data_dim, sizeof(float));
        int *idx = xcalloc((size_t)nx, sizeof(int));
        for (int i = 0; i < nx; i++) idx[i] = i;
        if (nx) vr_data_gather_f32(test, idx, nx, x);
        snprintf(path, sizeof path, "%s/samples.png", run_dir);
        rc = epoch_grid(vaec_draw_samples(v, EPOCH_SAMPLES, seed, path, msg, sizeof msg), msg, epoch == 1, note, err, len);
        snprintf(path, sizeof path, "%s/reconstructions.png", run_dir);
        if (rc == 0 && nx)
            rc = epoch_grid(vaec_draw_reconstructions(v, x, nx < EPOCH_RECONSTRUCTIONS ? nx : EPOCH_RECONSTRUCTIONS, path,
                                                      msg, sizeof msg),
                            msg, epoch == 1, note, err, len);
        snprintf(path, sizeof path, "%s/states.png", run_dir);
        if (rc == 0 && vaec_state_count(v))
            rc = epoch_grid(vaec_draw_states(v, x, nx, path, msg, sizeof msg), msg, epoch == 1, note, err, len);
        free(idx);
        free(x);
    }
    snprintf(path, sizeof path, "%s/log.csv", run_dir);
    snprintf(png, sizeof png, "%s/curves.png", run_dir);
    if (rc == 0 && vaec_plot_curves(path, png, err, len) != 0) rc = -1;
    return rc;
}
