/* The options of a run that `vaec train`/`vaec eval` and the emitted trainer both take: one
 * table of their names, what they set in vr_options and for which commands (vae/driver.h).
 * Their ranges live in vaec's table of settings (parser/settings.c): vaec checks values
 * against it, and the emitter prints the same ranges into each emitted trainer. */
#include "vae/driver.h"

#include <stddef.h>
#include <string.h>

#define FIELD(f) offsetof(vr_options, f)

/* metavar: what follows the option in a usage line; commands: vaec's that take it (the emitted
 * trainer has train and eval). */
static const vr_option RUN_OPTIONS[] = {
    {"--data", "SRC", "train gradvar", VR_OPT_TEXT, FIELD(data)},
    {"--test", "SRC", "train eval", VR_OPT_TEXT, FIELD(test)},
    {"--data-dir", "DIR", "train eval gradvar", VR_OPT_TEXT, FIELD(data_dir)},
    {"--labels", "FILE", "train", VR_OPT_TEXT, FIELD(labels)},
    {"--test-labels", "FILE", "train eval", VR_OPT_TEXT, FIELD(test_labels)},
    {"--out", "DIR", "train", VR_OPT_TEXT, FIELD(out_dir)},
    {"--force", NULL, "train", VR_OPT_FLAG, FIELD(force)},
    {"--resume", "DIR", "train", VR_OPT_TEXT, FIELD(resume_dir)},
    {"--params", "CKPT", "eval gradvar export", VR_OPT_TEXT, FIELD(params)},
    {"--epochs", "N", "train", VR_OPT_INT, FIELD(epochs)},
    {"--lr", "F", "train", VR_OPT_REAL, FIELD(lr)},
    {"--seed", "N", "train eval gradvar", VR_OPT_U64, FIELD(seed)},
    {"--limit", "N", "train", VR_OPT_INT, FIELD(limit)},
    {"--test-limit", "N", "train eval", VR_OPT_INT, FIELD(test_limit)},
    {"--labelled", "N", "train", VR_OPT_LONG, FIELD(labelled)},
    {"--warmup", "E", "train", VR_OPT_REAL, FIELD(warmup)},
    {"--validation", "N", "train", VR_OPT_INT, FIELD(validation)},
    {"--clip", "F", "train", VR_OPT_REAL, FIELD(clip)},
    {"--lr-warmup-steps", "N", "train", VR_OPT_LONG, FIELD(schedule.warmup_steps)},
    {"--lr-step-epochs", "E", "train", VR_OPT_INT, FIELD(schedule.step_epochs)},
    {"--lr-step-factor", "F", "train", VR_OPT_REAL, FIELD(schedule.step_factor)},
    {"--lr-cosine-epochs", "E", "train", VR_OPT_REAL, FIELD(schedule.cosine_epochs)},
    {"--lr-min", "F", "train", VR_OPT_REAL, FIELD(schedule.min_lr)},
    {"--iwae", "K", "eval", VR_OPT_INT, FIELD(iwae)},
};
#define NRUN_OPTIONS (int)(sizeof RUN_OPTIONS / sizeof RUN_OPTIONS[0])

/* Whether word is one of the space-separated words of list. */
static int word_in(const char *word, const char *list) {
    size_t n = strlen(word);
    for (const char *p = list; n && (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return 1;
    return 0;
}

const vr_option *vr_option_at(int i) { return i >= 0 && i < NRUN_OPTIONS ? &RUN_OPTIONS[i] : NULL; }

int vr_option_index(const vr_option *opt) { return (int)(opt - RUN_OPTIONS); }

const vr_option *vr_option_find(const char *name, const char *command) {
    for (int i = 0; i < NRUN_OPTIONS; i++)
        if (strcmp(RUN_OPTIONS[i].name, name) == 0 && word_in(command, RUN_OPTIONS[i].commands)) return &RUN_OPTIONS[i];
    return NULL;
}

void vr_option_set_text(vr_options *o, const vr_option *opt, const char *text) {
    char *field = (char *)o + opt->offset;
    if (opt->type == VR_OPT_FLAG) {
        *(int *)field = 1;
        return;
    }
    *(const char **)field = text;
    if (opt->offset == FIELD(out_dir)) o->out_dir_auto = 0; /* a name given is used as it is */
}

void vr_option_set_whole(vr_options *o, const vr_option *opt, long long v) {
    char *field = (char *)o + opt->offset;
    if (opt->type == VR_OPT_INT) *(int *)field = (int)v;
    else if (opt->type == VR_OPT_LONG) *(long *)field = (long)v;
    else *(uint64_t *)field = (uint64_t)v;
}

void vr_option_set_real(vr_options *o, const vr_option *opt, double v) { *(double *)((char *)o + opt->offset) = v; }
