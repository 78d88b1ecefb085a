/* log.csv's description of a run (src/run_header.h). */
#define _POSIX_C_SOURCE 200809L
#include "src/run_header.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "parser/model.h"
#include "src/commit.h"
#include "src/sha256.h"

/* A growing text. */
typedef struct {
    char *s;
    size_t n, cap;
    int failed;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->failed || need < 0) return;
    if (t->n + (size_t)need + 1 > t->cap) {
        size_t cap = 2 * (t->n + (size_t)need + 1);
        char *s = realloc(t->s, cap);
        if (!s) {
            t->failed = 1;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    t->n += (size_t)need;
}

/* A value on one line: newlines (a path may hold one) would end the line early. */
static const char *one_line(char *buf, size_t len, const char *s) {
    snprintf(buf, len, "%s", s);
    for (char *c = buf; *c; c++)
        if (*c == '\n' || *c == '\r') *c = '?';
    return buf;
}

/* Whether the command line gave `option`. */
static int given(const run_header_in *in, const char *option) {
    for (int i = 2; i < in->argc; i++)
        if (strcmp(in->argv[i], option) == 0) return 1;
    return 0;
}

/* Whether the model's train block sets `name` (lr and momentum: in its optimizer's call). */
static int in_model(const struct vae_model *m, const char *name) {
    const ast_train *t = m->ast ? m->ast->trains : NULL;
    for (const ast_assign *a = t ? t->settings : NULL; a; a = a->next) {
        if (a->target) continue; /* `optimizer prior = ...`: add_groups */
        if (strcmp(a->name, name) == 0) return 1;
        if (strcmp(a->name, "optimizer") == 0 && a->value->kind == AST_CALL)
            for (const ast_arg *g = a->value->args; g; g = g->next)
                if (g->name && strcmp(g->name, name) == 0) return 1;
    }
    return 0;
}

static const char *source(const run_header_in *in, const char *name, const char *option) {
    if (option && given(in, option)) return "command line";
    return in_model(in->model, name) ? "model file" : "default";
}

static void add_number(text *t, const run_header_in *in, const char *name, const char *option, double v) {
    char digits[32];
    add(t, "# setting %s = %s (%s)\n", name, vr_shortest(digits, sizeof digits, v), source(in, name, option));
}

static void add_text(text *t, const run_header_in *in, const char *name, const char *option, const char *v) {
    char buf[4096];
    add(t, "# setting %s = %s (%s)\n", name, v ? one_line(buf, sizeof buf, v) : "(none)", source(in, name, option));
}

/* Every setting of the train block, and the options that act like one, with its source. */
static void add_settings(text *t, const run_header_in *in) {
    const vr_options *o = in->run;
    const vr_lr_schedule *s = &o->schedule;
    add_text(t, in, "data", "--data", o->data);
    add_text(t, in, "test", "--test", o->test);
    add_text(t, in, "optimizer", NULL, o->optimizer == VR_ADAM ? "adam" : "sgd");
    add_number(t, in, "lr", "--lr", o->lr);
    if (o->optimizer == VR_SGD) add_number(t, in, "momentum", NULL, o->momentum);
    for (int g = 0; g < o->ngroups; g++) { /* only a model sets them */
        const vr_optim_group *q = &o->groups[g];
        char lr[32], mom[32];
        vr_shortest(lr, sizeof lr, q->lr);
        vr_shortest(mom, sizeof mom, q->momentum);
        if (q->optimizer == VR_ADAM) add(t, "# setting optimizer %s = adam(lr: %s) (model file)\n", q->target, lr);
        else add(t, "# setting optimizer %s = sgd(lr: %s, momentum: %s) (model file)\n", q->target, lr, mom);
    }
    add_number(t, in, "batch", "--batch", o->batch);
    add_number(t, in, "epochs", "--epochs", o->epochs);
    add_number(t, in, "seed", "--seed", (double)o->seed);
    add_number(t, in, "warmup", "--warmup", o->warmup);
    add_number(t, in, "shards", "--shards", o->shards > 1 ? o->shards : 1);
    add_number(t, in, "validation", "--validation", o->validation);
    add_number(t, in, "clip", "--clip", o->clip);
    add_number(t, in, "lr_warmup_steps", "--lr-warmup-steps", (double)s->warmup_steps);
    add_number(t, in, "lr_step_epochs", "--lr-step-epochs", s->step_epochs);
    add_number(t, in, "lr_step_factor", "--lr-step-factor", s->step_factor);
    add_number(t, in, "lr_cosine_epochs", "--lr-cosine-epochs", s->cosine_epochs);
    add_number(t, in, "lr_min", "--lr-min", s->min_lr);
    if (in->model->train.labels || o->labels) add_text(t, in, "labels", "--labels", o->labels);
    if (in->model->train.test_labels || o->test_labels) add_text(t, in, "test_labels", "--test-labels", o->test_labels);
    if (o->labelled) add_number(t, in, "labelled", "--labelled", (double)o->labelled);
    add_number(t, in, "limit", "--limit", o->limit);           /* options only: 0 is all */
    add_number(t, in, "test-limit", "--test-limit", o->test_limit);
}

char *vaec_provenance(const char *model_path) {
    text t = {0};
    char buf[4096], sha[65];
    add(&t, "# vaec version = %s\n# vaec commit = %s\n", PACKAGE_VERSION, VAEC_COMMIT);
    add(&t, "# model file = %s\n", one_line(buf, sizeof buf, model_path));
    add(&t, "# model sha256 = %s\n", sha256_file(model_path, sha) == 0 ? sha : "unknown (the file cannot be read again)");
    if (t.failed) {
        free(t.s);
        return NULL;
    }
    return t.s;
}

char *vaec_run_description(const run_header_in *in) {
    text t = {0};
    char *provenance = vaec_provenance(in->model_path);
    char *machine = vr_describe_machine(in->argc, in->argv, vr_threads(), in->run->comm ? in->run->comm->size : 1);
    if (!provenance || !machine) t.failed = 1;
    add(&t, "%s", provenance ? provenance : "");
    add_settings(&t, in);
    add(&t, "%s", machine ? machine : "");
    free(provenance);
    free(machine);
    if (t.failed) {
        free(t.s);
        return NULL;
    }
    return t.s;
}
