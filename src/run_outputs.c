#include "src/run_outputs.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

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

/* The epoch's scalars at the global step, so that they share the x axis of train/. */
static int after_epoch(void *self, const vr_epoch_report *e) {
    run_outputs *r = self;
    if (!r->events) return 0;
    const vr_program *p = r->program;
    char t[160];
    tag(t, sizeof t, "epoch/train_", p->value_name);
    tfevents_scalar(r->events, t, e->step, e->train_value);
    tfevents_scalar(r->events, "epoch/kl_weight", e->step, e->kl_weight);
    const vr_scores *s = e->test;
    if (s) {
        tag(t, sizeof t, "epoch/test_", p->eval_value_name);
        tfevents_scalar(r->events, t, e->step, s->value);
        if (s->has_elbo) {
            tfevents_scalar(r->events, "epoch/test_recon", e->step, s->recon);
            tfevents_scalar(r->events, "epoch/test_kl", e->step, s->kl);
        }
        if (s->has_logpx) tfevents_scalar(r->events, "epoch/test_exact_logpx", e->step, s->exact_logpx);
    }
    return 0;
}

static int end(void *self) {
    run_outputs *r = self;
    char err[1024];
    int rc = tfevents_close(r->events, err, sizeof err);
    r->events = NULL;
    if (rc) fprintf(stderr, "vaec: error: %s\n", err);
    return rc ? 1 : 0;
}

void run_outputs_attach(run_outputs *outs, const vr_program *p, vr_options *o) {
    memset(outs, 0, sizeof *outs);
    outs->program = p;
    o->hooks = (vr_hooks){outs, begin, after_step, after_epoch, end};
}
