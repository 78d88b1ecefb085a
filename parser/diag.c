/* Sources (read, checked to be UTF-8 text) and the diagnostics of parser/diag.h. */
#include "parser/diag.h"
#include "parser/parse_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static vae_source *source_new(const char *path, char *text, size_t len, FILE *err) {
    vae_source *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->pool = vae_pool_new();
    s->path = vae_pool_strdup(s->pool, path);
    s->text = text;
    s->len = len;
    s->err = err ? err : stderr;
    return s;
}

/* The first byte of text that is not UTF-8, or NULL.  Overlong forms,
 * surrogates and values past U+10FFFF are refused as RFC 3629 says. */
static const unsigned char *first_bad_utf8(const unsigned char *p, const unsigned char *end) {
    while (p < end) {
        unsigned c = *p;
        int n = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
        if (n < 0 || end - p <= n) return p; /* not a lead byte, or cut short by the end */
        unsigned lo = 0x80, hi = 0xbf; /* the second byte's range */
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
        if (n > 0 && (p[1] < lo || p[1] > hi)) return p;
        for (int k = 2; k <= n; k++)
            if ((p[k] & 0xc0) != 0x80) return p;
        p += n + 1;
    }
    return NULL;
}

/* The line and column (both 1-based, the column in bytes as the lexer counts)
 * of text[at]. */
static vae_loc loc_of(const vae_source *src, size_t at) {
    vae_loc loc = {src->path, 1, 1};
    for (size_t i = 0; i < at; i++) {
        if (src->text[i] == '\n') {
            loc.line++;
            loc.col = 1;
        } else
            loc.col++;
    }
    return loc;
}

/* What the lexer cannot be given: NUL bytes, text that is not UTF-8, and a
 * carriage return not followed by a line feed (old Mac line ends: the lexer
 * would read the whole file as one line, and a comment would swallow the
 * rest).  A UTF-8 byte-order mark is dropped, and CRLF line ends are fine.
 * Returns 0, or -1 with the place reported. */
static int check_text(vae_source *src) {
    static const char BOM[] = "\xef\xbb\xbf";
    if (src->len >= 3 && memcmp(src->text, BOM, 3) == 0) {
        memmove(src->text, src->text + 3, src->len - 2); /* with the NUL */
        src->len -= 3;
    }
    const char *nul = memchr(src->text, 0, src->len);
    if (nul) {
        vae_error(src, loc_of(src, (size_t)(nul - src->text)),
                  "the model is not a text file (it contains a NUL byte here)");
        return -1;
    }
    const unsigned char *text = (const unsigned char *)src->text;
    const unsigned char *bad = first_bad_utf8(text, text + src->len);
    if (bad) {
        vae_error(src, loc_of(src, (size_t)(bad - text)),
                  "the model is not UTF-8 text (byte 0x%02x here); save it as UTF-8", *bad);
        return -1;
    }
    for (size_t i = 0; i < src->len; i++)
        if (src->text[i] == '\r' && src->text[i + 1] != '\n') {
            vae_error(src, loc_of(src, i),
                      "a carriage return without a line feed (old Mac line ends); save the file with LF or CRLF line ends");
            return -1;
        }
    return 0;
}

/* Reads a regular file of at most VAE_MAX_SOURCE_BYTES; NULL (message
 * printed) otherwise.  Opened without blocking, so that a FIFO is refused
 * rather than waited on. */
static char *read_model_file(const char *path, FILE *err, size_t *len_out) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        fprintf(err, "%s: error: cannot open the model: %s\n", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    const char *refusal = NULL;
    if (fstat(fd, &st) != 0)
        refusal = strerror(errno);
    else if (S_ISDIR(st.st_mode))
        refusal = "it is a directory, not a model file";
    else if (!S_ISREG(st.st_mode))
        refusal = "it is not a regular file (a device, FIFO or socket); a model is a text file";
    else if (st.st_size > VAE_MAX_SOURCE_BYTES)
        refusal = "it is larger than 1 MiB, too large to be a model";
    char *text = NULL;
    size_t len = 0;
    if (!refusal) {
        /* the size fstat gave, growing if the file does, up to one byte past the limit */
        size_t cap = (size_t)st.st_size + 1;
        text = malloc(cap + 1);
        while (text && len <= VAE_MAX_SOURCE_BYTES) {
            if (len == cap) {
                cap = cap * 2 > VAE_MAX_SOURCE_BYTES + 1 ? VAE_MAX_SOURCE_BYTES + 1 : cap * 2;
                text = realloc(text, cap + 1);
                if (!text) break;
            }
            ssize_t n = read(fd, text + len, cap - len);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) refusal = strerror(errno);
            if (n <= 0) break;
            len += (size_t)n;
        }
        if (!text) abort();
        if (!refusal && len > VAE_MAX_SOURCE_BYTES) refusal = "it is larger than 1 MiB, too large to be a model";
    }
    close(fd);
    if (refusal) {
        fprintf(err, "%s: error: cannot read the model: %s\n", path, refusal);
        free(text);
        return NULL;
    }
    text[len] = 0;
    *len_out = len;
    return text;
}

vae_source *vae_source_load(const char *path, FILE *err) {
    if (!err) err = stderr;
    size_t len;
    char *text = read_model_file(path, err, &len);
    if (!text) return NULL;
    vae_source *src = source_new(path, text, len, err);
    if (check_text(src) != 0) {
        vae_source_free(src);
        return NULL;
    }
    return src;
}

vae_source *vae_source_from_string(const char *name, const char *text, FILE *err) {
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    if (!copy) abort();
    memcpy(copy, text, len + 1);
    vae_source *src = source_new(name, copy, len, err);
    if (check_text(src) != 0) {
        vae_source_free(src);
        return NULL;
    }
    return src;
}

void vae_source_free(vae_source *src) {
    if (!src) return;
    free(src->text);
    vae_pool_free(src->pool);
    free(src);
}

/* Writes the source line `line` and a caret under column `col` (tabs kept so
 * that the caret lines up in a terminal); of a very long line, only the part
 * around the caret, with "..." where it is cut. */
static void show_line(FILE *out, const vae_source *src, int line, int col) {
    enum { SHOWN = 160, BEFORE = 60 }; /* bytes shown of a long line, and before the caret */
    const char *p = src->text, *end = src->text + src->len;
    for (int l = 1; l < line && p < end; p++)
        if (*p == '\n') l++;
    const char *e = p;
    while (e < end && *e != '\n' && *e != '\r') e++; /* CRLF, or the lone CR that check_text refuses */
    const char *from = p, *to = e, *caret = p + (col > 1 ? col - 1 : 0);
    if (caret > e) caret = e;
    if (e - p > SHOWN + 3 && caret - from > BEFORE + 3) from = caret - BEFORE;
    while (from > p && from < e && ((unsigned char)*from & 0xc0) == 0x80) from--; /* not inside a UTF-8 character */
    if (to - from > SHOWN + 3) to = from + SHOWN;
    while (to < e && ((unsigned char)*to & 0xc0) == 0x80) to++;
    fprintf(out, "    %s%.*s%s\n    %s", from > p ? "..." : "", (int)(to - from), from, to < e ? "..." : "",
            from > p ? "   " : "");
    for (const char *c = from; c < caret; c++) fputc(*c == '\t' ? '\t' : ' ', out);
    fputs("^\n", out);
}

/* One diagnostic, formatted in memory and written at once: stderr is
 * unbuffered, and a character at a time made 40,000 errors take 81 s. */
static void report(vae_source *src, vae_loc loc, const char *kind, const char *fmt, va_list ap) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) abort();
    fprintf(out, "%s:%d:%d: %s: ", loc.file ? loc.file : src->path, loc.line, loc.col, kind);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    if (loc.line > 0 && (!loc.file || strcmp(loc.file, src->path) == 0)) show_line(out, src, loc.line, loc.col);
    else if (loc.line > 0 && src->also && strcmp(loc.file, src->also->path) == 0)
        show_line(out, src->also, loc.line, loc.col); /* an estimator given on the command line */
    fclose(out);
    fwrite(text, 1, len, src->err);
    free(text);
}

/* Past the first VAE_MAX_ERRORS_SHOWN errors, errors (and their notes) are
 * counted, not printed. */
static int shown(const vae_source *src) { return src->nerrors <= VAE_MAX_ERRORS_SHOWN; }

void vae_error(vae_source *src, vae_loc loc, const char *fmt, ...) {
    src->nerrors++;
    if (!shown(src)) return;
    va_list ap;
    va_start(ap, fmt);
    report(src, loc, "error", fmt, ap);
    va_end(ap);
}

void vae_warning(vae_source *src, vae_loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    report(src, loc, "warning", fmt, ap);
    va_end(ap);
}

void vae_note(vae_source *src, vae_loc loc, const char *fmt, ...) {
    if (!shown(src)) return;
    va_list ap;
    va_start(ap, fmt);
    report(src, loc, "note", fmt, ap);
    va_end(ap);
}

void vae_error_summary(vae_source *src) {
    if (src->nerrors > VAE_MAX_ERRORS_SHOWN) {
        /* "39,950": digits in groups of three, as a person reads a count */
        char digits[32], grouped[48];
        int n = snprintf(digits, sizeof digits, "%d", src->nerrors - VAE_MAX_ERRORS_SHOWN), k = 0;
        for (int i = 0; i < n; i++) {
            if (i > 0 && (n - i) % 3 == 0) grouped[k++] = ',';
            grouped[k++] = digits[i];
        }
        grouped[k] = 0;
        fprintf(src->err, "%s: ... and %s more error%s (only the first %d are shown)\n", src->path, grouped,
                src->nerrors - VAE_MAX_ERRORS_SHOWN == 1 ? "" : "s", VAE_MAX_ERRORS_SHOWN);
    }
}

void vae_parse_error_at(struct vae_parse_state *ps, int line, int col, const char *fmt, ...) {
    vae_source *src = ps->src;
    src->nerrors++;
    if (!shown(src)) return;
    vae_loc loc = {src->path, line, col};
    va_list ap;
    va_start(ap, fmt);
    report(src, loc, "error", fmt, ap);
    va_end(ap);
}
