#include "src/run_outputs.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/pictures.h"
#include "src/tfevents.h"

/* The training curve's scalar is the mean of this many steps: about ten points
 * an epoch of Fashion-MNIST at batch 128, and 50 bytes each. */
enum { STEPS_PER_SCALAR = 50 };

/* "epoch/" + "test_" + "IWAE bound" -> "epoch/test_iwae_bound": tags as log.csv names its columns. */
static void tag(char *buf, size_t len, const char *prefix, const char *name) {
    size_t n = (size_t)snprintf(buf, len, "%s", prefix);
    for (const char *c = name; *c && n + 1 < len; c++) {
        if (isalnum((unsigned char)*c)) buf[n++] = (char)tolower((unsigned char)*c);
        else if (n > 0 && buf[n - 1] != '_' && c[1]) buf[n++] = '_';
    }
    buf[n < len ? n : len - 1] = 0;
}

static int begin(void *self, const char *run_dir) {
    run_outputs *r = self;
    char err[1024];
    r->run_dir = run_dir;
    r->events = tfevents_open(run_dir, err, sizeof err);
    if (!r->events) {
        fprintf(stderr, "vaec: error: %s\n", err);
        return 1;
    }
    return 0;
}

static void after_step(void *self, long step, double value) {
    run_outputs *r = self;
    r->step_sum += value;
    if (++r->step_count < STEPS_PER_SCALAR || !r->events) return;
    char t[160];
    tag(t, sizeof t, "train/", r->program->value_name);
    tfevents_scalar(r->events, t, step, r->step_sum / r->step_count);
    r->step_sum = 0;
    r->step_count = 0;
}

/* A PNG the grids wrote, into the event file (skipped quietly when absent:
 * the model had nothing of that kind to draw). */
static void log_image(run_outputs *r, const char *name, long step) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.png", r->run_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return;
    unsigned char buf[1 << 16], *png = NULL;
    size_t n = 0, got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        unsigned char *grown = realloc(png, n + got);
        if (!grown) break;
        png = grown;
        memcpy(png + n, buf, got);
        n += got;
    }
    fclose(f);
    if (n > 24) { /* the IHDR chunk's width and height, big-endian, at bytes 16 and 20 */
        int w = png[16] << 24 | png[17] << 16 | png[18] << 8 | png[19];
        int h = png[20] << 24 | png[21] << 16 | png[22] << 8 | png[23];
        int channels = png[25] == 2 ? 3 : 1; /* colour type 2: RGB; 0: grey */
        tfevents_image(r->events, name, step, png, n, w, h, channels);
    }
    free(png);
}

/* The epoch's grids and plot, then its scalars and grids in the event file at
 * the global step, so that they share the x axis of train/. */
static int after_epoch(void *self, const vr_epoch_report *e) {
    run_outputs *r = self;
    if (!r->events) return 0;
    char err[1024];
    vaec_view v = {.model = r->model, .program = r->program, .params = e->params};
    if (vaec_epoch_images(&v, e->test_data, r->seed, r->run_dir, e->epoch, stdout, err, sizeof err)) {
        fprintf(stderr, "vaec: error: %s\n", err);
        return 1;
    }
    r->epochs_done++;
    log_image(r, "samples", e->step);
    log_image(r, "reconstructions", e->step);
    log_image(r, "states", e->step);
    const vr_program *p = r->program;
    char t[160];
    tag(t, sizeof t, "epoch/train_", p->value_name);
    tfevents_scalar(r->events, t, e->step, e->train_value);
    tfevents_scalar(r->events, "epoch/kl_weight", e->step, e->kl_weight);
    if (e->validation) {
        tag(t, sizeof t, "epoch/valid_", p->eval_value_name);
        tfevents_scalar(r->events, t, e->step, e->validation->value);
    }
    const vr_scores *s = e->test;
    if (s) {
        tag(t, sizeof t, "epoch/test_", p->eval_value_name);
        tfevents_scalar(r->events, t, e->step, s->value);
        if (s->has_elbo) {
            tfevents_scalar(r->events, "epoch/test_recon", e->step, s->recon);
            tfevents_scalar(r->events, "epoch/test_kl", e->step, s->kl);
        }
        if (s->has_logpx) tfevents_scalar(r->events, "epoch/test_exact_logpx", e->step, s->exact_logpx);
        if (p->eval.correct_rows >= 0 && !isnan(s->classify_error))
            tfevents_scalar(r->events, "epoch/test_error", e->step, s->classify_error);
    }
    return 0;
}

/* Says what the run's folder holds beside the checkpoint and the log (which the loop reported). */
static void report_files(const run_outputs *r) {
    static const char *const grids[] = {"samples.png", "reconstructions.png", "states.png", "curves.png"};
    printf("and in %s: %s", r->run_dir, strrchr(tfevents_path(r->events), '/') + 1);
    for (size_t i = 0; i < sizeof grids / sizeof grids[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", r->run_dir, grids[i]);
        if (access(path, F_OK) == 0) printf(", %s", grids[i]);
    }
    printf("\n");
}

static int end(void *self) {
    run_outputs *r = self;
    char err[1024];
    if (r->events && r->epochs_done > 0) report_files(r);
    int rc = tfevents_close(r->events, err, sizeof err);
    r->events = NULL;
    if (rc) fprintf(stderr, "vaec: error: %s\n", err);
    return rc ? 1 : 0;
}

void run_outputs_attach(run_outputs *outs, const struct vae_model *m, const vr_program *p, vr_options *o) {
    memset(outs, 0, sizeof *outs);
    outs->model = m;
    outs->program = p;
    outs->seed = o->seed;
    o->hooks = (vr_hooks){outs, begin, after_step, after_epoch, end};
}
