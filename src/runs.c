/* vaec runs: a table comparing the runs under a folder, read from each run's
 * log.csv: its "# key = value" lines by key and its columns by the header's
 * names, so that logs of older and newer versions read alike. */
#include "src/runs.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const VAEC_HELP_RUNS =
    "usage: vaec runs [DIR]\n"
    "  a table of the runs under DIR (default runs/: every folder holding a log.csv, 4 levels\n"
    "  deep at most), sorted by model and then by best test ELBO, best first:\n"
    "    model, estimator, epochs done, final and best test ELBO (nats), the final exact log p(x)\n"
    "    where the log has it, training time (the epochs' seconds), and the run's folder; the best\n"
    "    validation ELBO too when a run has one (train --validation N: its best.vaeckpt's epoch)\n"
    "  A log without rows yet, or whose last row was cut short, is listed with a note; '-' is a\n"
    "  value the log does not have.\n";

#define RUNS_DEPTH_MAX 4

typedef struct {
    char *dir, *model, *estimator, *note;
    int epochs;
    double final_elbo, best_elbo, logpx, seconds; /* NAN: not in the log */
    double best_valid; /* the best validation value (a run with validation), NAN: none */
} run_row;

typedef struct {
    run_row *rows;
    int n, cap;
} run_table;

static char *copy(const char *s, size_t n) {
    char *c = malloc(n + 1);
    if (!c) abort();
    memcpy(c, s, n);
    c[n] = 0;
    return c;
}

/* "# key = value": the value of `key`, malloc'd, or NULL when line is another. */
static char *setting(const char *line, const char *key) {
    size_t k = strlen(key);
    if (strncmp(line, "# ", 2) != 0 || strncmp(line + 2, key, k) != 0 || strncmp(line + 2 + k, " = ", 3) != 0)
        return NULL;
    return copy(line + 5 + k, strlen(line + 5 + k));
}

/* The estimator named in "# model settings = estimator NAME; ..." (older logs' only record of it). */
static char *estimator_of_settings(const char *settings) {
    if (strncmp(settings, "estimator ", 10) != 0) return NULL;
    const char *s = settings + 10;
    return copy(s, strcspn(s, ";"));
}

/* Splits a CSV line (no quoting: vaec writes none) in place; the number of fields (at most max). */
static int split(char *line, char **fields, int max) {
    int n = 0;
    for (char *p = line; n < max;) {
        fields[n++] = p;
        p = strchr(p, ',');
        if (!p) break;
        *p++ = 0;
    }
    return n;
}

static int column_of(char **names, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

/* A field as a number: 0, or -1 when it is not one (a row cut short). */
static int number(const char *s, double *out) {
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return end == s || *end ? -1 : 0;
}

#define MAX_COLUMNS 64

/* The columns a row of the table needs, by the header's names (-1: absent). */
typedef struct {
    int n, epoch, test_elbo, logpx, seconds, valid;
} log_columns;

/* One data row into r: 0, or -1 when it has another number of fields or a field that is not a number. */
static int read_row(char *line, const log_columns *c, run_row *r) {
    char *f[MAX_COLUMNS];
    double v[MAX_COLUMNS];
    if (split(line, f, MAX_COLUMNS) != c->n) return -1;
    for (int i = 0; i < c->n; i++)
        if (number(f[i], &v[i])) return -1;
    if (c->epoch >= 0) r->epochs = (int)v[c->epoch];
    if (c->test_elbo >= 0) {
        r->final_elbo = v[c->test_elbo];
        if (!isnan(v[c->test_elbo]) && (isnan(r->best_elbo) || v[c->test_elbo] > r->best_elbo)) r->best_elbo = v[c->test_elbo];
    }
    if (c->logpx >= 0 && !isnan(v[c->logpx])) r->logpx = v[c->logpx];
    if (c->seconds >= 0) r->seconds = (isnan(r->seconds) ? 0 : r->seconds) + v[c->seconds];
    if (c->valid >= 0 && !isnan(v[c->valid]) && (isnan(r->best_valid) || v[c->valid] > r->best_valid))
        r->best_valid = v[c->valid];
    return 0;
}

static void read_header(char *line, log_columns *c) {
    char *names[MAX_COLUMNS];
    c->n = split(line, names, MAX_COLUMNS);
    c->epoch = column_of(names, c->n, "epoch");
    c->test_elbo = column_of(names, c->n, "test_ELBO");
    c->logpx = column_of(names, c->n, "test_exact_logpx");
    c->seconds = column_of(names, c->n, "seconds");
    c->valid = -1;
    for (int i = 0; i < c->n; i++) /* valid_ELBO, or valid_ and another value's name */
        if (strncmp(names[i], "valid_", 6) == 0 && c->valid < 0) c->valid = i;
}

/* Reads dir/log.csv into r (what it lacks stays NAN or NULL). */
static void read_log(FILE *f, run_row *r) {
    char *line = NULL, *settings = NULL;
    size_t cap = 0;
    ssize_t len;
    log_columns c = {0};
    int header = 0, rows = 0, bad = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        int complete = line[len - 1] == '\n';
        line[len - complete] = 0;
        if (line[0] == '#') {
            char *v;
            if (!r->model && (v = setting(line, "model"))) r->model = v;
            else if (!r->estimator && (v = setting(line, "estimator"))) r->estimator = v;
            else if (!settings && (v = setting(line, "model settings"))) settings = v;
        } else if (!header) {
            read_header(line, &c);
            header = 1;
        } else if (line[0] && complete && read_row(line, &c, r) == 0)
            rows++;
        else if (line[0])
            bad++;
    }
    if (!r->estimator && settings) r->estimator = estimator_of_settings(settings);
    r->note = copy("", 0);
    if (!header || rows == 0) r->note = (free(r->note), copy("no rows yet", 11));
    else if (bad) r->note = (free(r->note), copy("last row cut short", 18));
    free(settings);
    free(line);
}

static void add_run(run_table *t, const char *dir, FILE *log) {
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        if (!(t->rows = realloc(t->rows, sizeof *t->rows * (size_t)t->cap))) abort();
    }
    run_row *r = &t->rows[t->n++];
    *r = (run_row){.dir = copy(dir, strlen(dir)), .final_elbo = NAN, .best_elbo = NAN, .logpx = NAN, .seconds = NAN,
                         .best_valid = NAN};
    read_log(log, r);
    if (!r->model) { /* an old log without "# model": the folder's name */
        const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
        r->model = copy(base, strlen(base));
    }
}

/* Every folder under dir (itself included) holding a log.csv, depth levels down;
 * symbolic links are not followed. */
static void find_runs(run_table *t, const char *dir, int depth) {
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/log.csv", dir);
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        FILE *f = fopen(path, "r");
        if (f) {
            add_run(t, dir, f);
            fclose(f);
        } else
            fprintf(stderr, "vaec runs: warning: %s: %s (skipped)\n", path, strerror(errno));
    }
    DIR *d = depth < RUNS_DEPTH_MAX ? opendir(dir) : NULL;
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) find_runs(t, path, depth + 1);
    }
    closedir(d);
}

/* By model, then best test ELBO (best first, runs without one last), then folder. */
static int by_model_then_elbo(const void *pa, const void *pb) {
    const run_row *a = pa, *b = pb;
    int c = strcmp(a->model, b->model);
    if (c) return c;
    if (isnan(a->best_elbo) != isnan(b->best_elbo)) return isnan(a->best_elbo) ? 1 : -1;
    if (!isnan(a->best_elbo) && a->best_elbo != b->best_elbo) return a->best_elbo > b->best_elbo ? -1 : 1;
    return strcmp(a->dir, b->dir);
}

static const char *value(char *buf, size_t len, const char *fmt, double v) {
    if (isnan(v)) return "-";
    snprintf(buf, len, fmt, v);
    return buf;
}

static void print_table(const run_table *t) {
    int wm = 5, we = 9, valid = 0;
    for (int i = 0; i < t->n; i++) {
        int m = (int)strlen(t->rows[i].model), e = t->rows[i].estimator ? (int)strlen(t->rows[i].estimator) : 1;
        wm = m > wm ? m : wm;
        we = e > we ? e : we;
        valid |= !isnan(t->rows[i].best_valid);
    }
    printf("%-*s  %-*s  %6s  %10s  %10s  %10s  %9s  %s%s\n", wm, "model", we, "estimator", "epochs", "test ELBO",
           "best", "log p(x)", "time (s)", valid ? "best valid  " : "", "run");
    for (int i = 0; i < t->n; i++) {
        const run_row *r = &t->rows[i];
        char a[32], b[32], c[32], d[32], e[32];
        printf("%-*s  %-*s  %6d  %10s  %10s  %10s  %9s  ", wm, r->model, we, r->estimator ? r->estimator : "-",
               r->epochs, value(a, sizeof a, "%.2f", r->final_elbo), value(b, sizeof b, "%.2f", r->best_elbo),
               value(c, sizeof c, "%.2f", r->logpx), value(d, sizeof d, "%.1f", r->seconds));
        if (valid) printf("%10s  ", value(e, sizeof e, "%.2f", r->best_valid));
        printf("%s%s%s%s\n", r->dir, *r->note ? " (" : "", r->note, *r->note ? ")" : "");
    }
}

int vaec_runs_main(int argc, char **argv) {
    const char *dir = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(VAEC_HELP_RUNS, stdout);
            return 0;
        }
        if (argv[i][0] == '-' || dir) {
            fprintf(stderr, "vaec runs: error: %s '%s' (see vaec runs --help)\n",
                    argv[i][0] == '-' ? "unknown option" : "one folder at a time, not also", argv[i]);
            return 1;
        }
        dir = argv[i];
    }
    if (!dir) dir = "runs";
    struct stat st;
    int missing = stat(dir, &st) != 0;
    if (missing || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "vaec runs: error: %s: %s (vaec train writes its runs into runs/MODEL; give the folder "
                        "that holds them)\n", dir, missing ? strerror(errno) : "not a folder");
        return 1;
    }
    char root[4096];
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--; /* runs/ lists runs/MODEL, not runs//MODEL */
    snprintf(root, sizeof root, "%.*s", (int)n, dir);
    run_table t = {0};
    find_runs(&t, root, 0);
    if (t.n == 0) printf("no runs under %s (no folder there holds a log.csv)\n", dir);
    else {
        qsort(t.rows, (size_t)t.n, sizeof *t.rows, by_model_then_elbo);
        print_table(&t);
    }
    for (int i = 0; i < t.n; i++) {
        free(t.rows[i].dir);
        free(t.rows[i].model);
        free(t.rows[i].estimator);
        free(t.rows[i].note);
    }
    free(t.rows);
    return 0;
}
