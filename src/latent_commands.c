/* vaec encode and vaec interpolate: what a trained model's encoder makes of
 * examples, as values (each example's posterior parameters) and as pictures
 * (decoded paths between encodings, traversals of each latent dimension). */
#include "src/latent_commands.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser/model.h"
#include "src/command_args.h"
#include "src/images.h"
#include "src/pictures.h"

const char *const VAEC_HELP_ENCODE =
    "usage: vaec encode MODEL.vae --params CHECKPOINT -o FILE [--data SRC] [--limit N] [--labels FILE]\n"
    "  each example's posterior q(z | x) as the encoder gives it, one row per example, by the\n"
    "  extension of FILE:\n"
    "    .csv   a header line naming the columns, then one example a line\n"
    "    .npy   float32 [examples, columns]: the columns of the CSV header, in its order\n"
    "  the columns: label (the example's class, -1 where unknown), when SRC has labels; then each\n"
    "  latent's, in the model's order:\n"
    "    normal       Z.mean[i] for each variable i, then Z.logvar[i] (Z.scale[i] when the encoder\n"
    "                 returns a scale)\n"
    "    categorical  Z.p[k], the probability of state k (Z[i].p[k] for a latent of several variables)\n"
    "    bernoulli    Z.p[i], the probability that variable i is 1\n"
    "  an encoder that reads other latents runs at their posterior means (a normal's mean, a\n"
    "  categorical's probabilities); an observed label (no encoder) is given to the encoders from\n"
    "  SRC's labels; a model with another latent without encoder is refused\n"
    "  --data SRC      fashion-mnist:test, or an .idx/.idx.gz/.npy/.csv file (default: the train block's test)\n"
    "  --labels FILE   SRC's labels (IDX1, a 1-d integer .npy or a .csv; fashion-mnist: carries its own)\n"
    "  --limit N       the first N examples only\n"
    "  --data-dir DIR  where the fashion-mnist: files are   --threads N\n";

const char *const VAEC_HELP_INTERPOLATE =
    "usage: vaec interpolate MODEL.vae --params CHECKPOINT -o FILE.png [--data SRC] [-n STEPS] [--labels FILE]\n"
    "  a PNG of what the decoder makes between and around encodings (normal latents):\n"
    "    4 rows of paths: test images 1 and 2, 3 and 4, ... at the ends, between them the decoder's\n"
    "      means at STEPS evenly spaced points from the first's posterior mean to the second's\n"
    "    then, after a blank row, one row per latent dimension (the first 32): test image 1, then\n"
    "      the decoder's means with that dimension at STEPS values from -3 to 3 (the standard normal\n"
    "      prior's +-3 standard deviations) and the others at test image 1's posterior mean\n"
    "  Discrete latents beside normal ones stay at the first image's most probable states (the\n"
    "  second's at a path's last step).  Without an encoder: the traversals alone, the others at 0.\n"
    "  Discrete latents alone have no path between states: one row per state instead, as vaec\n"
    "  sample --states draws it.\n"
    "  -n STEPS        decoded points per row, 2 to 64 (default 8)\n"
    "  --data SRC      fashion-mnist:test, or an .idx/.idx.gz/.npy/.csv file (default: the train block's test)\n"
    "  --labels FILE   SRC's labels, for a label the encoders read (fashion-mnist: carries its own)\n"
    "  --data-dir DIR  where the fashion-mnist: files are   --threads N\n";

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) abort();
    return p;
}

/* ---------------------------------------------------------------- encode */

/* Appends a column's name (printf's format and arguments) to the header line. */
static void column(char **line, size_t *len, size_t *cap, const char *fmt, ...) {
    char one[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(one, sizeof one, fmt, ap);
    va_end(ap);
    n = n < (int)sizeof one ? n : (int)sizeof one - 1;
    if (*len + (size_t)n + 2 > *cap) {
        *cap = 2 * (*len + (size_t)n + 2);
        if (!(*line = realloc(*line, *cap))) abort();
    }
    if (*len) (*line)[(*len)++] = ',';
    memcpy(*line + *len, one, (size_t)n + 1);
    *len += (size_t)n;
}

/* The CSV header of encode's columns (see VAEC_HELP_ENCODE), malloc'd. */
static char *encode_header(const vae_model *m, int with_label) {
    size_t len = 0, cap = 256;
    char *line = xcalloc(cap, 1);
    if (with_label) column(&line, &len, &cap, "label");
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        if (!l->encoder) continue; /* an observed label: the label column */
        if (l->kind == LATENT_NORMAL) {
            for (int v = 0; v < l->nvars; v++) column(&line, &len, &cap, "%s.mean[%d]", l->name, v);
            for (int v = 0; v < l->nvars && l->posterior.b; v++)
                column(&line, &len, &cap, l->posterior.b_is_scale ? "%s.scale[%d]" : "%s.logvar[%d]", l->name, v);
        } else if (l->kind == LATENT_BERNOULLI)
            for (int v = 0; v < l->nvars; v++) column(&line, &len, &cap, "%s.p[%d]", l->name, v);
        else
            for (int v = 0; v < l->nvars; v++)
                for (int k = 0; k < l->states; k++)
                    if (l->nvars == 1) column(&line, &len, &cap, "%s.p[%d]", l->name, k);
                    else column(&line, &len, &cap, "%s[%d].p[%d]", l->name, v, k);
    }
    return line;
}

/* One example's columns from its encoder outputs: normals as they are, discrete
 * latents' logits as probabilities (softmax per variable, sigmoid). */
static void encode_row(const vae_model *m, const float *enc, float *row) {
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        if (!l->encoder) continue; /* an observed label gives no encoder outputs */
        int n = l->width * (l->posterior.b ? 2 : 1);
        if (l->kind == LATENT_NORMAL || (l->kind == LATENT_BERNOULLI && l->posterior.a_is_probs))
            memcpy(row, enc, sizeof(float) * (size_t)n);
        else if (l->kind == LATENT_BERNOULLI)
            for (int v = 0; v < l->nvars; v++) row[v] = 1.0f / (1.0f + expf(-enc[v]));
        else
            for (int v = 0; v < l->nvars; v++) {
                const float *logit = enc + v * l->states;
                float top = logit[0], sum = 0;
                for (int k = 1; k < l->states; k++) top = logit[k] > top ? logit[k] : top;
                for (int k = 0; k < l->states; k++) sum += row[v * l->states + k] = expf(logit[k] - top);
                for (int k = 0; k < l->states; k++) row[v * l->states + k] /= sum;
            }
        enc += n;
        row += n;
    }
}

/* Whether every latent but an observed label has an encoder: 0, or 1 after a message. */
static int refuse_without_encoder(const vae_model *m, const char *cmd, const char *path) {
    for (int i = 0; i < m->nlatents; i++)
        if (!m->latents[i].encoder && !m->latents[i].label) {
            fprintf(stderr, "vaec %s: error: %s: model %s has no encoder for latent %s: it has no posterior to give\n",
                    cmd, path, m->name, m->latents[i].name);
            return 1;
        }
    return 0;
}

/* The examples' labels where the encoders read an observed label: 0, or -1 with err. */
static int labels_for_encoders(const vae_model *m, const int *labels, const char *src, char *err, size_t len) {
    int y = vaec_observed_label(m);
    if (y < 0 || labels) return 0;
    snprintf(err, len, "%s: the encoders of model %s read label %s, and %s has no labels (give --labels FILE)", src,
             m->name, m->latents[y].name, src);
    return -1;
}

#define ENCODE_CHUNK 4096 /* about this many examples gathered and encoded at a time (not a whole
                             training set's 188 MB of floats at once) */

/* Encodes the first n examples of ds and writes their rows (with ds's labels where it has them). */
static int write_encodings(const vaec_view *view, const vr_dataset *ds, int n, const char *out, char *err, size_t len) {
    const vae_model *m = view->model;
    const int *labels = ds->labels;
    int EW = view->program->encode_width, C = EW + (labels ? 1 : 0), B = view->program->encode.batch;
    int chunk = ENCODE_CHUNK / B > 0 ? ENCODE_CHUNK / B * B : B; /* whole calls of the graph, as one pass makes them */
    float *rows = xcalloc((size_t)n * (size_t)C, sizeof(float));
    float *x = xcalloc((size_t)chunk * (size_t)m->data_dim, sizeof(float));
    float *enc = xcalloc((size_t)chunk * (size_t)EW, sizeof(float));
    int *idx = xcalloc((size_t)chunk, sizeof(int));
    vaec_view v = *view;
    for (int start = 0; start < n; start += chunk) {
        int k = n - start < chunk ? n - start : chunk;
        for (int i = 0; i < k; i++) idx[i] = start + i;
        vr_data_gather_f32(ds, idx, k, x);
        v.x_labels = labels ? labels + start : NULL;
        vaec_encode_params(&v, x, k, enc);
        for (long i = 0; i < k; i++) {
            float *row = rows + (size_t)(start + i) * (size_t)C;
            if (labels) row[0] = (float)labels[start + i];
            encode_row(m, enc + i * EW, row + (labels ? 1 : 0));
        }
    }
    char *header = encode_header(m, labels != NULL);
    int rc = vaec_write_values(out, rows, n, C, strcmp(vaec_extension(out), ".npy") == 0, header, err, len);
    free(header);
    free(idx);
    free(enc);
    free(x);
    free(rows);
    return rc;
}

int vaec_encode_main(int argc, char **argv) {
    vaec_cmd_args a = {.cmd = "encode", .help = VAEC_HELP_ENCODE};
    int rc = vaec_cmd_parse(&a, " --params -o --data --data-dir --labels --limit --threads ", 1, argc, argv);
    if (rc) return rc == 2 ? 0 : 1;
    const char *ext = vaec_extension(a.out);
    if (strcmp(ext, ".csv") != 0 && strcmp(ext, ".npy") != 0) {
        fprintf(stderr, "vaec encode: error: -o %s: the name must end in .csv or .npy (what to write)\n", a.out);
        return 1;
    }
    vaec_loaded_model l;
    if (vaec_cmd_load_model(&l, &a)) return 1;
    const vae_model *m = l.view.model;
    if (refuse_without_encoder(m, "encode", a.model)) {
        vaec_cmd_unload(&l);
        return 1;
    }
    char err[1024];
    const char *src;
    vr_dataset ds;
    int n = 0;
    rc = vaec_open_examples(&a, m, &ds, &src, 1, err, sizeof err);
    if (rc == 0) {
        n = a.limit && a.limit < ds.n ? (int)a.limit : ds.n;
        if (n == 0) {
            snprintf(err, sizeof err, "%s: no examples to encode", src);
            rc = -1;
        }
        if (rc == 0) rc = labels_for_encoders(m, ds.labels, src, err, sizeof err);
        if (rc == 0) rc = write_encodings(&l.view, &ds, n, a.out, err, sizeof err);
        if (rc == 0)
            printf("wrote %s: the posterior parameters of %d examples of %s%s\n", a.out, n, src,
                   ds.labels ? ", with their labels" : "");
        vr_data_free(&ds);
    }
    if (rc) fprintf(stderr, "vaec encode: error: %s\n", err);
    else if (!m->est.trains_encoder)
        fprintf(stderr, "vaec encode: note: estimator %s does not train the encoder of %s: these are its initial "
                        "parameters\n", m->est.name, m->name);
    vaec_cmd_unload(&l);
    return rc ? 1 : 0;
}

/* ---------------------------------------------------------------- interpolate */

#define PATH_PAIRS 4      /* rows of paths between test images 1-2, 3-4, ... */
#define TRAVERSED_MAX 32  /* rows of traversals: the first dimensions */
#define TRAVERSE_RANGE 3. /* traversals from -3 to 3 */

/* What interpolate draws: tiles of STEPS + 2 columns (see VAEC_HELP_INTERPOLATE). */
typedef struct {
    const vaec_view *v;
    int steps, cols, rows, D, LW;
    const float **tiles;
    float *decoded; /* every decoded tile, [rows * steps, D] */
    int *normal;    /* per latent column: 1 when it is a normal latent's (interpolated, traversed) */
} interp_grid;

/* Decodes the steps of row r from z [steps, LW] into its middle columns. */
static void decode_row(interp_grid *g, int r, const float *z) {
    float *out = g->decoded + (size_t)r * (size_t)g->steps * (size_t)g->D;
    vaec_decode_latents(g->v, z, g->steps, out);
    for (int k = 0; k < g->steps; k++) g->tiles[r * g->cols + 1 + k] = out + (size_t)k * (size_t)g->D;
}

/* Per latent column whether it is a normal latent's; the count of such columns. */
static int normal_columns(const vae_model *m, int *normal) {
    int n = 0, col = 0;
    for (int i = 0; i < m->nlatents; i++)
        for (int j = 0; j < m->latents[i].width; j++, col++) n += normal[col] = m->latents[i].kind == LATENT_NORMAL;
    return n;
}

/* The paths between the most probable latents z of the pairs of x, in rows 0 .. pairs-1: the
 * normal latents' means along the line, the discrete latents at the first image's states (the
 * second's at the last step, which is then its decoded encoding). */
static void draw_paths(interp_grid *g, const float *x, const float *modes, int pairs) {
    float *z = xcalloc((size_t)g->steps * (size_t)g->LW, sizeof(float));
    for (int r = 0; r < pairs; r++) {
        const float *a = modes + (size_t)(2 * r) * g->LW, *b = a + g->LW;
        for (int k = 0; k < g->steps; k++) {
            float t = (float)k / (float)(g->steps - 1);
            for (int j = 0; j < g->LW; j++)
                z[k * g->LW + j] = k == g->steps - 1 ? b[j] : g->normal[j] ? a[j] + t * (b[j] - a[j]) : a[j];
        }
        decode_row(g, r, z);
        g->tiles[r * g->cols] = x + (size_t)(2 * r) * g->D;
        g->tiles[r * g->cols + g->cols - 1] = x + (size_t)(2 * r + 1) * g->D;
    }
    free(z);
}

/* One row per normal latent column (the first `dims`) from row `first`, the others at base
 * (the first image x0's most probable latents; zeros without an encoder). */
static void draw_traversals(interp_grid *g, const float *x0, const float *base, int first, int dims) {
    float *z = xcalloc((size_t)g->steps * (size_t)g->LW, sizeof(float));
    for (int d = 0, col = 0; d < dims; d++, col++) {
        while (!g->normal[col]) col++;
        for (int k = 0; k < g->steps; k++) {
            if (base) memcpy(z + k * g->LW, base, sizeof(float) * (size_t)g->LW);
            z[k * g->LW + col] = (float)(-TRAVERSE_RANGE + 2 * TRAVERSE_RANGE * k / (g->steps - 1));
        }
        decode_row(g, first + d, z);
        g->tiles[(first + d) * g->cols] = x0;
    }
    free(z);
}

/* Paths and traversals of a model with normal latents; x holds n examples (n is 0 without an
 * encoder, and then every latent is normal). */
static int draw_interpolations(const vaec_view *v, const float *x, int n, int steps, const char *png, char *err,
                               size_t len) {
    vaec_image_shape s;
    if (vaec_image_shape_of(v->model, &s, err, len)) return -1;
    int LW = v->program->latent_width, pairs = n / 2 < PATH_PAIRS ? n / 2 : PATH_PAIRS;
    interp_grid g = {.v = v, .steps = steps, .cols = steps + 2, .D = v->model->data_dim, .LW = LW};
    g.normal = xcalloc((size_t)LW, sizeof(int));
    int dims = normal_columns(v->model, g.normal);
    dims = dims < TRAVERSED_MAX ? dims : TRAVERSED_MAX;
    int first = pairs ? pairs + 1 : 0; /* a blank row between paths and traversals */
    g.rows = first + dims;
    g.tiles = xcalloc((size_t)g.rows * (size_t)g.cols, sizeof *g.tiles);
    g.decoded = xcalloc((size_t)g.rows * (size_t)steps * (size_t)g.D, sizeof(float));
    float *modes = n ? xcalloc((size_t)n * (size_t)LW, sizeof(float)) : NULL;
    if (n) vaec_encode_modes(v, x, n, modes, NULL);
    if (pairs) draw_paths(&g, x, modes, pairs);
    draw_traversals(&g, n ? x : NULL, modes, first, dims);
    int rc = vaec_png_grid(png, g.tiles, g.rows * g.cols, g.cols, s, err, len);
    free(modes);
    free(g.normal);
    free(g.decoded);
    free(g.tiles);
    return rc;
}

/* The examples interpolate reads (`want`) with their labels (*labels, or NULL), or none when
 * the model has no trained encoder. */
static int interpolate_examples(const vaec_cmd_args *a, const vaec_view *v, int want, float **x, int **labels, int *n,
                                char *err, size_t len) {
    char why[512];
    const char *src;
    *x = NULL;
    *labels = NULL;
    *n = 0;
    if (!vaec_can_reconstruct(v, why, sizeof why)) return 0; /* no (trained) encoder: from the prior */
    if (vaec_load_examples(a, v->model, want, x, n, &src, labels, err, len)) return -1;
    if (*n == 0) {
        snprintf(err, len, "%s: no examples to encode", src);
        return -1;
    }
    return labels_for_encoders(v->model, *labels, src, err, len);
}

int vaec_interpolate_main(int argc, char **argv) {
    vaec_cmd_args a = {.cmd = "interpolate", .help = VAEC_HELP_INTERPOLATE, .n = 8};
    int rc = vaec_cmd_parse(&a, " --params -o -n --data --data-dir --labels --threads ", 64, argc, argv);
    if (rc) return rc == 2 ? 0 : 1;
    if (strcmp(vaec_extension(a.out), ".png") != 0) {
        fprintf(stderr, "vaec interpolate: error: -o %s: the name must end in .png\n", a.out);
        return 1;
    }
    if (a.n < 2) {
        fprintf(stderr, "vaec interpolate: error: -n expects an integer from 2 to 64, got %ld\n", a.n);
        return 1;
    }
    vaec_loaded_model l;
    if (vaec_cmd_load_model(&l, &a)) return 1;
    const vae_model *m = l.view.model;
    int *normal = xcalloc((size_t)l.view.program->latent_width, sizeof(int));
    int normals = normal_columns(m, normal), discrete = normals < l.view.program->latent_width;
    free(normal);
    char err[1024], why[512];
    float *x = NULL;
    int n = 0, *labels = NULL;
    rc = interpolate_examples(&a, &l.view, normals ? 2 * PATH_PAIRS : 1000, &x, &labels, &n, err, sizeof err);
    l.view.x_labels = labels;
    if (rc == 0 && normals && discrete && n == 0) {
        vaec_can_reconstruct(&l.view, why, sizeof why);
        snprintf(err, sizeof err, "%s: nothing to hold the discrete latents of model %s at while the normal ones move (%s)",
                 a.model, m->name, why);
        rc = -1;
    } else if (rc == 0 && !normals && vaec_state_count(&l.view) == 0) {
        snprintf(err, sizeof err, "%s: the latents of model %s are discrete, with no path between their states, and "
                 "too many joint states to show one row each (more than 65,536): nothing to interpolate; vaec sample "
                 "draws from the prior, vaec reconstruct shows the encodings' most probable states", a.model, m->name);
        rc = -1;
    } else if (rc == 0 && !normals) { /* discrete: each state's decoded mean, beside the examples it is most probable for */
        rc = vaec_draw_states(&l.view, x, n, a.out, err, sizeof err) ? -1 : 0;
        if (rc == 0)
            printf("wrote %s: the latents of %s are discrete, with no path between their states: one row per state "
                   "instead, its decoded mean%s\n", a.out, m->name, n ? " then the test images it is most probable for" : "");
    } else if (rc == 0) {
        rc = draw_interpolations(&l.view, x, n, (int)a.n, a.out, err, sizeof err);
        if (rc == 0)
            printf("wrote %s: %straversals of each normal latent dimension from -3 to 3%s\n", a.out,
                   n >= 2 ? "paths between test images' encodings, then " : "",
                   discrete ? " (the discrete latents at the first image's most probable states)" : "");
    }
    if (rc) fprintf(stderr, "vaec interpolate: error: %s\n", err);
    free(labels);
    free(x);
    vaec_cmd_unload(&l);
    return rc ? 1 : 0;
}
