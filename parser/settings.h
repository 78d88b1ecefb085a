/* The settings a model's train block and estimator take and the options of
 * the command line, with their ranges, in one table: the checker
 * (parser/check.c) and vaec's option parser (src/vaec.c) both validate against
 * it and word their errors from it, so the two cannot drift apart. */
#ifndef VAE_SETTINGS_H
#define VAE_SETTINGS_H

#include <stddef.h>

typedef struct {
    const char *name;   /* as a model writes it ("lr"), or the option's name when only an option sets it */
    const char *option; /* "--lr"; NULL when only a model sets it */
    int integer;        /* whole numbers only */
    double lo, hi;      /* the range; every value is finite */
    int lo_open, hi_open; /* lo (hi) itself is excluded */
    const char *unit;   /* words after the noun: "of epochs", or "" */
} vae_setting;

/* The setting a model names `name` ("lr"), or the one of option `option`
 * ("--lr"); NULL when there is none. */
const vae_setting *vae_setting_named(const char *name);
const vae_setting *vae_setting_option(const char *option);
/* Whether v is finite, within the range and (for an integer setting) whole. */
int vae_setting_ok(const vae_setting *s, double v);
/* What a valid value is, in words: "an integer from 1 to 65536", "a positive
 * number at most 1e6"; written into buf, which it returns. */
const char *vae_setting_words(const vae_setting *s, char *buf, size_t len);
/* Reads an option's value: the whole text must be a number (for an integer
 * setting, a decimal integer) that vae_setting_ok accepts.  0, or -1. */
int vae_setting_parse(const vae_setting *s, const char *text, double *out);
int vae_setting_parse_long(const vae_setting *s, const char *text, long *out);

#endif
