/* vaec sample, vaec reconstruct, vaec plot: the pictures of a trained model
 * and of a run, from the command line. */
#include "src/picture_commands.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser/model.h"
#include "src/command_args.h"
#include "src/images.h"
#include "src/pictures.h"
#include "src/plot.h"

const char *const VAEC_HELP_SAMPLE =
    "usage: vaec sample MODEL.vae --params CHECKPOINT -o FILE [-n N] [--seed S] [--label K]\n"
    "       vaec sample MODEL.vae --params CHECKPOINT --states -o FILE.png [--data SRC]\n"
    "  draws N latents from the prior (default 64) and writes the decoder's mean at each (Bernoulli\n"
    "  probabilities, the normal's mean), by the extension of FILE:\n"
    "    .png   a grid, 8 images per row (data with an image shape: [1, H, W], [3, H, W], or 784 values)\n"
    "    .npy   float32 [N, values per example]   .csv   one example per line\n"
    "  --seed S      the latents' noise (default: the train block's seed); the same checkpoint and\n"
    "                seed give the same file\n"
    "  --threads N   threads for the products (the result is the same on any number)\n"
    "  --label K     a model with a label (data y : label(K)): every sample of class K (0 .. K-1);\n"
    "                without it, row r of the grid (8 samples) is of class r mod K\n"
    "  --states      enumerable discrete latents (a mixture's classes): one row per state, its mean\n"
    "                then up to 10 of the first 1000 examples of SRC (default: the train block's\n"
    "                test; --data-dir DIR) whose most probable state it is; every state a tile, 16\n"
    "                per row, when there are more than 16 (the first 256)\n";

const char *const VAEC_HELP_RECONSTRUCT =
    "usage: vaec reconstruct MODEL.vae --params CHECKPOINT -o FILE.png [--data SRC] [-n N] [--labels FILE]\n"
    "  the first N examples of SRC (default 32) over their reconstructions: rows of 8 originals,\n"
    "  each followed by a row of the decoder's means at the encoder's most probable latents\n"
    "  --data SRC      fashion-mnist:test, or an .idx/.idx.gz/.npy/.csv file (default: the train block's test)\n"
    "  --labels FILE   SRC's labels, for a label the encoders read (fashion-mnist: carries its own)\n"
    "  --data-dir DIR  where the fashion-mnist: files are   --threads N\n";

const char *const VAEC_HELP_PLOT =
    "usage: vaec plot RUN_DIR [-o FILE.png]\n"
    "  draws RUN_DIR/log.csv's curves per epoch (train and test ELBO, its reconstruction term, exact\n"
    "  log p(x), the KL, the KL weight under warm-up) into FILE.png (default RUN_DIR/curves.png)\n";

static int number(const vaec_cmd_args *a, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "vaec %s: error: %s expects an integer from %ld to %ld, got '%s'\n", a->cmd, opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int vaec_cmd_parse(vaec_cmd_args *a, const char *allowed, long n_max, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            fputs(a->help, stdout);
            return 2;
        }
        if (o[0] != '-') {
            if (a->model) {
                fprintf(stderr, "vaec %s: error: one %s at a time ('%s' and '%s')\n", a->cmd,
                        strcmp(a->cmd, "plot") == 0 ? "run" : "model", a->model, o);
                return 1;
            }
            a->model = o;
            continue;
        }
        char key[64];
        snprintf(key, sizeof key, " %s ", o);
        if (!strstr(allowed, key)) {
            fprintf(stderr, "vaec %s: error: unknown option '%s' (see vaec %s --help)\n", a->cmd, o, a->cmd);
            return 1;
        }
        if (strcmp(o, "--states") == 0) {
            a->states = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "vaec %s: error: %s needs a value\n", a->cmd, o);
            return 1;
        }
        const char *v = argv[++i];
        if (strcmp(o, "--params") == 0) a->params = v;
        else if (strcmp(o, "-o") == 0) a->out = v;
        else if (strcmp(o, "--data") == 0) a->data = v;
        else if (strcmp(o, "--data-dir") == 0) a->data_dir = v;
        else if (strcmp(o, "--labels") == 0) a->labels = v;
        else if (strcmp(o, "--limit") == 0 && number(a, o, v, 1, INT_MAX, &a->limit)) return 1;
        else if (strcmp(o, "-n") == 0 && number(a, o, v, 1, n_max, &a->n)) return 1;
        else if (strcmp(o, "--threads") == 0 && number(a, o, v, 1, 1024, &a->threads)) return 1;
        else if (strcmp(o, "--label") == 0) {
            if (number(a, o, v, 0, 65535, &a->label)) return 1;
            a->label++;
        }
        else if (strcmp(o, "--seed") == 0) {
            if (number(a, o, v, 0, LONG_MAX, &a->seed)) return 1;
            a->have_seed = 1;
        }
    }
    if (!a->model) {
        fprintf(stderr, "vaec %s: error: no %s given\n%s", a->cmd, strcmp(a->cmd, "plot") == 0 ? "run folder" : "model file",
                a->help);
        return 1;
    }
    if (strcmp(a->cmd, "plot") != 0 && (!a->params || !a->out)) {
        fprintf(stderr, "vaec %s: error: %s is required\n", a->cmd, !a->params ? "--params CHECKPOINT" : "-o FILE");
        return 1;
    }
    return 0;
}

const char *vaec_extension(const char *path) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot : "";
}

void vaec_cmd_unload(vaec_loaded_model *l) {
    vae_program_free(l->program);
    vae_unit_free(l->unit);
    free(l->params);
}

int vaec_cmd_load_model(vaec_loaded_model *l, const vaec_cmd_args *a) {
    memset(l, 0, sizeof *l);
    if (!(l->unit = vae_unit_load(a->model, stderr))) return -1;
    vr_set_threads((int)a->threads);
    vae_build_opts o = vae_build_defaults(l->unit);
    o.train = o.eval = o.iwae = 0;
    o.jit = VAE_JIT_QUICK; /* a few calls: compiling faster beats running faster (and the bits are the same) */
    vaec_pictures_opts(&o);
    if (!(l->program = vae_program_build(l->unit, &o, stderr))) {
        vaec_cmd_unload(l);
        return -1;
    }
    const vr_program *p = vae_program_runtime(l->program);
    l->params = calloc((size_t)p->param_floats, sizeof(float));
    if (!l->params) abort();
    char err[1024];
    long step;
    if (vr_checkpoint_load(a->params, p->tensors, p->ntensors, l->params, NULL, NULL, &step, err, sizeof err)) {
        fprintf(stderr, "vaec %s: error: %s\n", a->cmd, err);
        vaec_cmd_unload(l);
        return -1;
    }
    l->view = (vaec_view){.model = vae_unit_model(l->unit), .program = p, .params = l->params};
    return 0;
}

int vaec_write_values(const char *path, const float *x, int n, int d, int npy, const char *header, char *err, size_t len) {
    vr_output o;
    if (vr_output_open(&o, path, err, len)) return -1;
    if (npy) {
        const uint16_t probe = 1;
        char dict[128];
        int h = snprintf(dict, sizeof dict, "{'descr': '%cf4', 'fortran_order': False, 'shape': (%d, %d), }",
                         *(const char *)&probe ? '<' : '>', n, d);
        while ((10 + h + 1) % 64) dict[h++] = ' '; /* the data starts 64-byte aligned */
        dict[h++] = '\n';
        unsigned char magic[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(h & 255), (unsigned char)(h >> 8)};
        fwrite(magic, 1, sizeof magic, o.f);
        fwrite(dict, 1, (size_t)h, o.f);
        fwrite(x, sizeof(float), (size_t)n * (size_t)d, o.f);
    } else {
        if (header) fprintf(o.f, "%s\n", header);
        for (long i = 0; i < n; i++)
            for (int j = 0; j < d; j++) fprintf(o.f, "%.9g%c", x[i * d + j], j + 1 < d ? ',' : '\n');
    }
    return vaec_output_finish(&o, !ferror(o.f), err, len);
}

int vaec_open_examples(const vaec_cmd_args *a, const vae_model *m, vr_dataset *ds, const char **src, int labels,
                       char *err, size_t len) {
    memset(ds, 0, sizeof *ds);
    *src = a->data ? a->data : m->train.test;
    if (!*src) {
        snprintf(err, len, "no data: give --data SRC (model %s's train block names no test)", m->name);
        return -1;
    }
    if (vr_data_load(ds, *src, a->data_dir, m->data_dim, m->binary, err, len)) return -1;
    if (labels && vr_data_load_labels(ds, *src, a->labels, a->data_dir, INT_MAX, err, len) < 0) {
        vr_data_free(ds);
        return -1;
    }
    return 0;
}

int vaec_load_examples(const vaec_cmd_args *a, const vae_model *m, int n, float **x, int *got, const char **src,
                       int **labels, char *err, size_t len) {
    vr_dataset ds;
    if (vaec_open_examples(a, m, &ds, src, labels != NULL, err, len)) return -1;
    *got = ds.n < n ? ds.n : n;
    int *idx = calloc((size_t)*got + 1, sizeof(int));
    *x = calloc((size_t)*got * (size_t)m->data_dim + 1, sizeof(float));
    if (!idx || !*x) abort();
    for (int i = 0; i < *got; i++) idx[i] = i;
    vr_data_gather_f32(&ds, idx, *got, *x);
    if (labels && ds.labels) {
        *labels = idx; /* reused: the first *got labels */
        memcpy(idx, ds.labels, sizeof(int) * (size_t)*got);
    } else {
        if (labels) *labels = NULL;
        free(idx);
    }
    vr_data_free(&ds);
    return 0;
}

/* vaec sample --states: each state's mean and the test images it is most probable for. */
static int draw_states(const vaec_cmd_args *a, const vaec_view *v, char *err, size_t len) {
    float *x = NULL;
    int n = 0;
    const char *src;
    if (vaec_state_count(v) == 0) {
        snprintf(err, len, "--states: model %s has no enumerable discrete latents", v->model->name);
        return -1;
    }
    char why[512];
    int *labels = NULL;
    if (vaec_can_reconstruct(v, why, sizeof why) && vaec_load_examples(a, v->model, 1000, &x, &n, &src, &labels, err, len))
        return -1;
    vaec_view labelled = *v;
    labelled.x_labels = labels;
    int rc = vaec_draw_states(&labelled, x, n, a->out, err, len);
    free(labels);
    free(x);
    return rc;
}

/* --label K: the model has a label of more than K classes. */
static int check_label(const vae_model *m, long k, const char *path) {
    for (int i = 0; i < m->nlatents; i++)
        if (m->latents[i].label) {
            if (k < m->latents[i].states) return 0;
            fprintf(stderr, "vaec sample: error: --label %ld: label %s of %s has classes 0 to %d\n", k, m->latents[i].name,
                    path, m->latents[i].states - 1);
            return 1;
        }
    fprintf(stderr, "vaec sample: error: --label: %s has no label (data y : label(K)) to condition on\n", path);
    return 1;
}

int vaec_sample_main(int argc, char **argv) {
    vaec_cmd_args a = {.cmd = "sample", .help = VAEC_HELP_SAMPLE, .n = 64};
    int rc = vaec_cmd_parse(&a, " --params -o -n --seed --threads --states --data --data-dir --label ", 65536, argc, argv);
    if (rc) return rc == 2 ? 0 : 1;
    const char *ext = vaec_extension(a.out);
    if (a.states && strcmp(ext, ".png") != 0) {
        fprintf(stderr, "vaec sample: error: -o %s: --states draws a PNG: the name must end in .png\n", a.out);
        return 1;
    }
    if (strcmp(ext, ".png") != 0 && strcmp(ext, ".npy") != 0 && strcmp(ext, ".csv") != 0) {
        fprintf(stderr, "vaec sample: error: -o %s: the name must end in .png, .npy or .csv (what to write)\n", a.out);
        return 1;
    }
    vaec_loaded_model l;
    if (vaec_cmd_load_model(&l, &a)) return 1;
    const vae_model *m = l.view.model;
    uint64_t seed = a.have_seed ? (uint64_t)a.seed : (uint64_t)m->train.seed;
    char err[1024];
    if (a.label && (rc = check_label(m, a.label - 1, a.model))) {
        vaec_cmd_unload(&l);
        return rc;
    }
    l.view.label = (int)a.label;
    if (a.states) {
        rc = draw_states(&a, &l.view, err, sizeof err);
    } else if (strcmp(ext, ".png") == 0) {
        rc = vaec_draw_samples(&l.view, (int)a.n, seed, a.out, err, sizeof err);
    } else {
        float *x = calloc((size_t)a.n * (size_t)m->data_dim, sizeof(float));
        if (!x) abort();
        vaec_prior_means(&l.view, (int)a.n, seed, x);
        rc = vaec_write_values(a.out, x, (int)a.n, m->data_dim, strcmp(ext, ".npy") == 0, NULL, err, sizeof err);
        free(x);
    }
    if (rc) fprintf(stderr, "vaec sample: error: %s\n", err);
    else if (a.states) printf("wrote %s: the %ld states of %s\n", a.out, vaec_state_count(&l.view), m->name);
    else printf("wrote %s: %ld samples of %s (seed %llu)\n", a.out, a.n, m->name, (unsigned long long)seed);
    vaec_cmd_unload(&l);
    return rc ? 1 : 0;
}

int vaec_reconstruct_main(int argc, char **argv) {
    vaec_cmd_args a = {.cmd = "reconstruct", .help = VAEC_HELP_RECONSTRUCT, .n = 32};
    int rc = vaec_cmd_parse(&a, " --params -o -n --data --data-dir --labels --threads ", 4096, argc, argv);
    if (rc) return rc == 2 ? 0 : 1;
    if (strcmp(vaec_extension(a.out), ".png") != 0) {
        fprintf(stderr, "vaec reconstruct: error: -o %s: the name must end in .png\n", a.out);
        return 1;
    }
    vaec_loaded_model l;
    if (vaec_cmd_load_model(&l, &a)) return 1;
    const vae_model *m = l.view.model;
    char err[1024];
    vaec_image_shape s;
    float *x = NULL;
    int n = 0, *labels = NULL;
    const char *src;
    rc = 1;
    if (vaec_image_shape_of(m, &s, err, sizeof err) == 0 && vaec_can_reconstruct(&l.view, err, sizeof err) &&
        vaec_load_examples(&a, m, (int)a.n, &x, &n, &src, &labels, err, sizeof err) == 0 &&
        (l.view.x_labels = labels, vaec_draw_reconstructions(&l.view, x, n, a.out, err, sizeof err) == 0)) {
        printf("wrote %s: %d examples of %s over their reconstructions\n", a.out, n, src);
        rc = 0;
    } else
        fprintf(stderr, "vaec reconstruct: error: %s\n", err);
    free(labels);
    free(x);
    vaec_cmd_unload(&l);
    return rc;
}

int vaec_plot_main(int argc, char **argv) {
    vaec_cmd_args a = {.cmd = "plot", .help = VAEC_HELP_PLOT};
    int rc = vaec_cmd_parse(&a, " -o ", 1, argc, argv);
    if (rc) return rc == 2 ? 0 : 1;
    char log[4200], png[4200], err[1024];
    snprintf(log, sizeof log, "%s/log.csv", a.model);
    snprintf(png, sizeof png, "%s/curves.png", a.model);
    const char *out = a.out ? a.out : png;
    char why[4400];
    if (vr_output_check(out, why, sizeof why)) { /* a link, a device or a folder: said first, by what it is */
        fprintf(stderr, "vaec plot: error: %s\n", why);
        return 1;
    }
    if (strcmp(vaec_extension(out), ".png") != 0) {
        fprintf(stderr, "vaec plot: error: -o %s: the plot is a PNG: the name must end in .png\n", out);
        return 1;
    }
    if (vaec_plot_curves(log, out, err, sizeof err)) {
        fprintf(stderr, "vaec plot: error: %s\n", err);
        return 1;
    }
    printf("wrote %s\n", out);
    return 0;
}
