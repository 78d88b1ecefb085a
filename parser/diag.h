/* A model's source text, and the diagnostics that point into it (file:line:col, the source
 * line and a caret): every stage of the compiler reports through these. */
#ifndef VAE_DIAG_H
#define VAE_DIAG_H

#include <stddef.h>
#include <stdio.h>

#include "parser/pool.h"

typedef struct {
    const char *file;
    int line, col; /* 1-based */
} vae_loc;

/* ---- a source file and the errors found in it ---- */
typedef struct vae_source {
    const char *path;
    char *text;     /* whole file, NUL-terminated */
    size_t len;
    vae_pool *pool; /* owns the AST */
    int nerrors;
    FILE *err;      /* where diagnostics go (stderr by default) */
    struct vae_source *also; /* a second text whose locations this one's diagnostics may name
                              * (an estimator given on the command line); not owned */
} vae_source;

/* A model file larger than this is refused before it is read: the largest
 * example is 1.3 KB, and every later stage's memory and time grow with the
 * text, so 1 MiB is room for any real model but not for a flood. */
#define VAE_MAX_SOURCE_BYTES (1 << 20)
/* Errors printed per file; later ones are counted (vae_error_summary).  The
 * first errors are the ones that matter, later ones are often their echoes,
 * and 50 fit in a terminal's scroll-back without hiding the first. */
#define VAE_MAX_ERRORS_SHOWN 50

/* NULL (message printed) if unreadable, not a regular file, larger than
 * VAE_MAX_SOURCE_BYTES, or not UTF-8 text with LF or CRLF line ends (a UTF-8
 * byte-order mark is skipped). */
vae_source *vae_source_load(const char *path, FILE *err);
vae_source *vae_source_from_string(const char *name, const char *text, FILE *err); /* checked as a file is */
void vae_source_free(vae_source *src);
/* Prints "file:line:col: error: MSG", the source line, and a caret under col. */
void vae_error(vae_source *src, vae_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Like vae_error, but the model is still accepted (the message says why it matters). */
void vae_warning(vae_source *src, vae_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void vae_note(vae_source *src, vae_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "FILE: ... and N more errors" when more than VAE_MAX_ERRORS_SHOWN were found. */
void vae_error_summary(vae_source *src);

#endif
