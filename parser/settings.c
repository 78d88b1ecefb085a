/* The table of settings and options (parser/settings.h). */
#include "parser/settings.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reals stop at 1e6: finite, and far beyond any useful learning rate, warm-up or weight. */
static const vae_setting SETTINGS[] = {
    /* the train block, and the options that override it */
    {"epochs", "--epochs", 1, 0, 1e6, 0, 0, ""},
    {"batch", "--batch", 1, 1, 65536, 0, 0, ""},
    {"lr", "--lr", 0, 0, 1e6, 1, 0, ""},
    {"seed", "--seed", 1, 0, (double)LONG_MAX, 0, 0, ""},
    {"warmup", "--warmup", 0, 0, 1e6, 0, 0, "of epochs"},
    {"shards", "--shards", 1, 1, 65536, 0, 0, ""},
    {"momentum", NULL, 0, 0, 1, 0, 1, ""},
    {"labelled", "--labelled", 1, 0, INT_MAX, 0, 0, ""},
    {"classify", "--classify", 0, 0, 1e6, 0, 0, ""},
    {"validation", "--validation", 1, 0, INT_MAX, 0, 0, "of examples"},
    {"clip", "--clip", 0, 0, 1e6, 1, 0, ""},
    /* the learning rate's schedule (runtime: vr_lr_at) */
    {"lr_warmup_steps", "--lr-warmup-steps", 1, 0, INT_MAX, 0, 0, "of steps"},
    {"lr_step_epochs", "--lr-step-epochs", 1, 1, 1e6, 0, 0, "of epochs"},
    {"lr_step_factor", "--lr-step-factor", 0, 0, 1, 1, 0, ""},
    {"lr_cosine_epochs", "--lr-cosine-epochs", 0, 0, 1e6, 1, 0, "of epochs"},
    {"lr_min", "--lr-min", 0, 0, 1e6, 0, 0, ""},
    /* estimator options */
    {"samples", NULL, 1, 1, 100000, 0, 0, ""},
    {"beta", NULL, 0, 0, 1e6, 0, 0, ""},
    {"temperature", NULL, 0, 0, 1e6, 1, 0, ""},
    {"alpha", NULL, 0, -1e6, 1e6, 0, 0, ""}, /* renyi: any real order (negative: VR-max's side) */
    /* options only */
    {"limit", "--limit", 1, 1, INT_MAX, 0, 0, ""},
    {"test-limit", "--test-limit", 1, 1, INT_MAX, 0, 0, ""},
    {"iwae", "--iwae", 1, 0, 1e6, 0, 0, ""},
    {"threads", "--threads", 1, 1, 1024, 0, 0, ""},
    {"repeats", "--repeats", 1, 2, 1e7, 0, 0, ""},
};
#define NSETTINGS (sizeof SETTINGS / sizeof SETTINGS[0])

const vae_setting *vae_setting_named(const char *name) {
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(SETTINGS[i].name, name) == 0) return &SETTINGS[i];
    return NULL;
}

const vae_setting *vae_setting_option(const char *option) {
    for (size_t i = 0; i < NSETTINGS; i++)
        if (SETTINGS[i].option && strcmp(SETTINGS[i].option, option) == 0) return &SETTINGS[i];
    return NULL;
}

int vae_setting_ok(const vae_setting *s, double v) {
    if (!isfinite(v) || v < s->lo || v > s->hi) return 0;
    if ((s->lo_open && v == s->lo) || (s->hi_open && v == s->hi)) return 0;
    return !s->integer || v == floor(v);
}

/* What a person would write: 1 and 1000000 for an integer setting, 1e6 for a real. */
static void number_words(char *buf, size_t len, double v, int integer) {
    if (v == floor(v) && (integer || fabs(v) < 1e5)) {
        snprintf(buf, len, "%.0f", v);
        return;
    }
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%g", v);
    char *e = strchr(tmp, 'e');
    if (e) { /* drop the exponent's '+' and leading zeros */
        char *d = e + 1, *from = e + 1;
        if (*from == '+') from++;
        int neg = *from == '-';
        if (neg) *d++ = *from++;
        while (*from == '0' && from[1]) from++;
        memmove(d, from, strlen(from) + 1);
    }
    snprintf(buf, len, "%s", tmp);
}

const char *vae_setting_words(const vae_setting *s, char *buf, size_t len) {
    char lo[48], hi[48];
    number_words(lo, sizeof lo, s->lo, s->integer);
    number_words(hi, sizeof hi, s->hi, s->integer);
    const char *space = *s->unit ? " " : "";
    if (s->integer) {
        if (s->hi >= (double)LONG_MAX) /* no bound worth writing */
            snprintf(buf, len, "a %s integer%s%s", s->lo > 0 ? "positive" : "non-negative", space, s->unit);
        else
            snprintf(buf, len, "an integer%s%s from %s to %s", space, s->unit, lo, hi);
        return buf;
    }
    char from[80];
    if (s->lo < 0 && !s->lo_open && !s->hi_open) { /* a range about zero (renyi's alpha) */
        snprintf(buf, len, "a number%s%s from %s to %s", space, s->unit, lo, hi);
        return buf;
    }
    if (s->lo == 0) snprintf(from, sizeof from, "a %s number", s->lo_open ? "positive" : "non-negative");
    else snprintf(from, sizeof from, "a number %s %s", s->lo_open ? "greater than" : "from", lo);
    snprintf(buf, len, "%s%s%s %s %s", from, space, s->unit, s->hi_open ? "less than" : "at most", hi);
    return buf;
}

int vae_setting_parse(const vae_setting *s, const char *text, double *out) {
    if (s->integer) {
        long v;
        if (vae_setting_parse_long(s, text, &v)) return -1;
        *out = (double)v;
        return 0;
    }
    char *end;
    double v = strtod(text, &end);
    if (!*text || *end || !vae_setting_ok(s, v)) return -1; /* inf, nan and out-of-range values fail here */
    *out = v;
    return 0;
}

int vae_setting_parse_long(const vae_setting *s, const char *text, long *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end || errno || !vae_setting_ok(s, (double)v)) return -1;
    *out = v;
    return 0;
}
