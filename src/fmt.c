/* vaec fmt [--check] [FILE...]: rewrites model files in the canonical layout
 * (parser/format.c), each whole or not at all; - or no file: stdin to stdout. */
#include "src/fmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "parser/format.h"
#include "vae/runtime.h"

const char *const VAEC_HELP_FMT =
    "usage: vaec fmt [--check] [FILE.vae ...]\n"
    "  rewrites each model file in the canonical layout (docs/language.md, \"Formatting\"), comments\n"
    "  kept where they are; the result parses to the same model.  Each file is written whole and\n"
    "  renamed into place; a file that does not parse is reported (file:line:col) and left as it is.\n"
    "  -, or no file: reads a model on stdin and writes it formatted on stdout.\n"
    "  --check    write nothing; print the name of each file that is not formatted and exit 1 if\n"
    "             any is (for CI)\n";

/* A model read from stdin, checked as a file is (vae_source_load's limits); NULL after a message. */
static vae_source *load_stdin(void) {
    size_t cap = 65536, len = 0;
    char *text = malloc(cap + 1);
    if (!text) abort();
    size_t n;
    while ((n = fread(text + len, 1, cap - len, stdin)) > 0) {
        len += n;
        if (len > VAE_MAX_SOURCE_BYTES) break;
        if (len == cap) {
            cap *= 2;
            text = realloc(text, cap + 1);
            if (!text) abort();
        }
    }
    text[len] = 0;
    vae_source *src = NULL;
    if (ferror(stdin))
        fprintf(stderr, "<stdin>: error: cannot read the model\n");
    else if (len > VAE_MAX_SOURCE_BYTES)
        fprintf(stderr, "<stdin>: error: cannot read the model: it is larger than 1 MiB, too large to be a model\n");
    else if (strlen(text) != len)
        fprintf(stderr, "<stdin>: error: the model is not a text file (it contains a NUL byte)\n");
    else
        src = vae_source_from_string("<stdin>", text, stderr);
    free(text);
    return src;
}

/* Replaces path's contents with text (length len) through a temporary file, keeping its permissions. */
static int rewrite(const char *path, const char *text, size_t len) {
    char err[VR_PATH_MAX + 256];
    struct stat st;
    vr_output out = {0};
    if (stat(path, &st) != 0) {
        fprintf(stderr, "vaec fmt: error: %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (vr_output_open(&out, path, err, sizeof err) != 0) {
        fprintf(stderr, "vaec fmt: error: %s\n", err);
        return 1;
    }
    fchmod(fileno(out.f), st.st_mode & 07777);
    if (fwrite(text, 1, len, out.f) != len) {
        vr_output_discard(&out);
        fprintf(stderr, "vaec fmt: error: cannot write %s\n", path);
        return 1;
    }
    if (vr_output_commit(&out, err, sizeof err)) {
        fprintf(stderr, "vaec fmt: error: %s\n", err);
        return 1;
    }
    return 0;
}

/* Formats one file (or stdin, for "-"); 0, or 1 when it does not parse, cannot be
 * written, or (with check) is not formatted. */
static int fmt_one(const char *path, int check) {
    int from_stdin = strcmp(path, "-") == 0;
    vae_source *src = from_stdin ? load_stdin() : vae_source_load(path, stderr);
    if (!src) return 1;
    size_t len;
    char *text = vae_format(src, &len);
    int rc = 1;
    if (text) {
        int formatted = len == src->len && memcmp(text, src->text, len) == 0;
        if (check) {
            if (!formatted) printf("%s\n", src->path);
            rc = !formatted;
        } else if (from_stdin)
            rc = fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0;
        else
            rc = formatted ? 0 : rewrite(path, text, len);
    }
    free(text);
    vae_source_free(src);
    return rc;
}

int vaec_fmt_main(int argc, char **argv) {
    int check = 0, files = 0, rc = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(VAEC_HELP_FMT, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--check") == 0) check = 1;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "vaec fmt: error: unknown option '%s' (see vaec fmt --help)\n", argv[i]);
            return 1;
        }
    }
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--check") != 0) {
            rc |= fmt_one(argv[i], check);
            files++;
        }
    if (!files) rc = fmt_one("-", check);
    return rc;
}
