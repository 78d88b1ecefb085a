/* The machine's lines of log.csv's description (vae/driver.h vr_describe_machine): shared by
 * vaec (src/run_header.c adds the model file and its settings) and the emitted trainer. */
#define _POSIX_C_SOURCE 200809L
#include "vae/driver.h"
#include "vae/runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A growing text; `failed` after an allocation failed (the text is then dropped). */
typedef struct {
    char *s;
    size_t n, cap;
    int failed;
} growing_text;

#if defined(__GNUC__)
static void text_add(growing_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif
static void text_add(growing_text *t, const char *fmt, ...) {
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

/* The command line as a shell would take it back: arguments with other characters in single
 * quotes, newlines (a path may hold one) as '?' so that the line stays one line. */
static void add_command(growing_text *t, int argc, char **argv) {
    static const char plain[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=,+-@%";
    text_add(t, "# command line =");
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (*arg && strspn(arg, plain) == strlen(arg)) {
            text_add(t, " %s", arg);
            continue;
        }
        text_add(t, " '");
        for (const char *c = arg; *c; c++)
            text_add(t, *c == '\'' ? "'\\''" : "%c", *c == '\n' || *c == '\r' ? '?' : *c);
        text_add(t, "'");
    }
    text_add(t, "\n");
}

/* The CPU's model name from /proc/cpuinfo, or "unknown". */
static const char *cpu_model(char *buf, size_t len) {
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return buf;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
            const char *v = strchr(line, ':') + 1;
            v += strspn(v, " \t");
            snprintf(buf, len, "%.*s", (int)strcspn(v, "\n"), v);
            break;
        }
    fclose(f);
    return buf;
}

char *vr_describe_machine(int argc, char **argv, int threads, int processes) {
    growing_text t = {0};
    char buf[512];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
    text_add(&t, "# started = %s\n", buf);
    text_add(&t, "# matrix library = %s\n# cpu = %s\n", vr_blas_name(), cpu_model(buf, sizeof buf));
    if (threads > 0) text_add(&t, "# threads = %d\n", threads);
    else text_add(&t, "# threads = the matrix library's choice\n");
    if (processes > 1) text_add(&t, "# processes = %d\n", processes);
    add_command(&t, argc, argv);
    if (t.failed) {
        free(t.s);
        return NULL;
    }
    return t.s;
}
