/* The curve plot of a run (vaec plot, curves.png).
 *
 * Drawn with cairo rather than PLplot: cairo is a plain C library with no
 * global state (PLplot keeps its current stream in globals), reports every
 * failure as a status value (PLplot's errors call an exit handler), and needs
 * no output-driver plug-ins found at run time: the plot is drawn into a
 * memory surface and written as PNG through the same atomic output as the
 * image grids.  What it lacks, axes and legends, is a page of code here. */
#include "src/plot.h"

#include <cairo/cairo.h>
#include <errno.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/images.h"

#define MAX_COLUMNS 32
#define MAX_ROWS 100000

typedef struct {
    int ncols, nrows, cap;
    char *name[MAX_COLUMNS];
    double *value[MAX_COLUMNS]; /* [nrows] per column; NaN where the log has none */
} csv_table;

static void fail(char *err, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static void table_free(csv_table *t) {
    for (int c = 0; c < t->ncols; c++) {
        free(t->name[c]);
        free(t->value[c]);
    }
    memset(t, 0, sizeof *t);
}

/* Splits a line at commas in place (the newline dropped); the number of fields. */
static int split(char *line, char **field, int max) {
    line[strcspn(line, "\r\n")] = 0;
    int n = 0;
    for (char *s = line;; s++) {
        if (n < max) field[n] = s;
        n++;
        s = strchr(s, ',');
        if (!s) break;
        *s = 0;
    }
    return n;
}

static int read_row(csv_table *t, char *line, const char *path, int lineno, char *err, size_t len) {
    char *field[MAX_COLUMNS];
    int n = split(line, field, MAX_COLUMNS);
    if (n != t->ncols) {
        fail(err, len, "%s:%d: %d fields where the header names %d", path, lineno, n, t->ncols);
        return -1;
    }
    if (t->nrows == MAX_ROWS) {
        fail(err, len, "%s:%d: more than %d epochs", path, lineno, MAX_ROWS);
        return -1;
    }
    if (t->nrows == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        for (int c = 0; c < n; c++)
            if (!(t->value[c] = realloc(t->value[c], sizeof(double) * (size_t)t->cap))) abort();
    }
    for (int c = 0; c < n; c++) {
        char *end;
        double v = strtod(field[c], &end);
        if (end == field[c] || *end) {
            fail(err, len, "%s:%d: column %s: '%s' is not a number", path, lineno, t->name[c], field[c]);
            return -1;
        }
        t->value[c][t->nrows] = v;
    }
    t->nrows++;
    return 0;
}

static int read_log(csv_table *t, const char *path, char *err, size_t len) {
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "r");
    if (!f) {
        fail(err, len, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        if (line[0] == '#' || line[strspn(line, " \t\r\n")] == 0) continue;
        if (t->ncols == 0) {
            char *field[MAX_COLUMNS];
            int n = split(line, field, MAX_COLUMNS);
            if (n > MAX_COLUMNS) {
                fail(err, len, "%s:%d: more than %d columns", path, lineno, MAX_COLUMNS);
                rc = -1;
                break;
            }
            for (int c = 0; c < n; c++)
                if (!(t->name[c] = strdup(field[c]))) abort();
            t->ncols = n;
        } else
            rc = read_row(t, line, path, lineno, err, len);
    }
    if (rc == 0 && ferror(f)) {
        fail(err, len, "%s: cannot read: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    if (rc == 0 && t->ncols == 0) {
        fail(err, len, "%s: empty: no header line naming the columns", path);
        rc = -1;
    }
    if (rc) table_free(t);
    return rc;
}

static int column(const csv_table *t, const char *name) {
    for (int c = 0; c < t->ncols; c++)
        if (strcmp(t->name[c], name) == 0) return c;
    return -1;
}

/* ---------------------------------------------------------------- drawing */

enum { PANEL_BOUND, PANEL_KL, PANEL_WEIGHT, PANEL_ERROR, NPANELS };
static const char *const PANEL_TITLE[NPANELS] = {"ELBO and its reconstruction term, log p(x) (nats)", "KL (nats)",
                                                 "KL weight (warm-up)", "test classification error (fraction)"};
static const int PANEL_HEIGHT[NPANELS] = {300, 180, 120, 150};
#define PLOT_WIDTH 960
#define LEFT 80
#define RIGHT 230 /* the legend */
#define TOP 50
#define GAP 50
#define BOTTOM 50

/* Which panel a column is drawn in; -1: not a curve. */
static int panel_of(const char *name) {
    static const char *const skip[] = {"epoch", "step", "seconds", "examples_per_second"};
    for (size_t i = 0; i < sizeof skip / sizeof *skip; i++)
        if (strcmp(name, skip[i]) == 0) return -1;
    if (strstr(name, "kl_weight")) return PANEL_WEIGHT;
    if (strcmp(name, "test_error") == 0) return PANEL_ERROR; /* a fraction, not nats */
    size_t n = strlen(name);
    if (n >= 3 && strcmp(name + n - 3, "_kl") == 0) return PANEL_KL;
    return PANEL_BOUND;
}

/* Whether a column has a number to draw (the KL weight: only when it was not always 1). */
static int drawn(const csv_table *t, int c) {
    int p = panel_of(t->name[c]);
    if (p < 0) return 0;
    for (int r = 0; r < t->nrows; r++)
        if (isfinite(t->value[c][r]) && (p != PANEL_WEIGHT || t->value[c][r] != 1)) return 1;
    return 0;
}

/* A round tick spacing: 1, 2 or 5 times a power of ten, about 5 ticks over range. */
static double tick_step(double range) {
    double raw = range / 5, p = pow(10, floor(log10(raw)));
    return raw / p < 1.5 ? p : raw / p < 3.5 ? 2 * p : raw / p < 7.5 ? 5 * p : 10 * p;
}

typedef struct {
    double x0, y0, w, h;       /* the panel's plot area in pixels */
    double xmin, xmax, ymin, ymax;
} frame;

static double px(const frame *f, double x) { return f->x0 + (x - f->xmin) / (f->xmax - f->xmin) * f->w; }
static double py(const frame *f, double y) { return f->y0 + f->h - (y - f->ymin) / (f->ymax - f->ymin) * f->h; }

static void text_at(cairo_t *cr, double x, double y, const char *s, double align) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - align * e.width, y);
    cairo_show_text(cr, s);
}

static void draw_axes(cairo_t *cr, const frame *f, const char *title, int x_label) {
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, f->x0, f->y0, f->w, f->h);
    cairo_stroke(cr);
    char s[64];
    double ys = tick_step(f->ymax - f->ymin);
    for (double y = ceil(f->ymin / ys) * ys; y <= f->ymax + 1e-9 * ys; y += ys) {
        snprintf(s, sizeof s, "%g", fabs(y) < 1e-9 * ys ? 0.0 : y);
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        cairo_move_to(cr, f->x0, py(f, y));
        cairo_line_to(cr, f->x0 + f->w, py(f, y));
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text_at(cr, f->x0 - 6, py(f, y) + 4, s, 1);
    }
    double xs = fmax(1, round(tick_step(f->xmax - f->xmin)));
    for (double x = ceil(f->xmin / xs) * xs; x <= f->xmax + 1e-9; x += xs) {
        snprintf(s, sizeof s, "%g", x);
        text_at(cr, px(f, x), f->y0 + f->h + 16, s, 0.5);
    }
    text_at(cr, f->x0, f->y0 - 8, title, 0);
    if (x_label) text_at(cr, f->x0 + f->w / 2, f->y0 + f->h + 34, "epoch", 0.5);
}

static void draw_curve(cairo_t *cr, const frame *f, const double *x, const double *y, int n) {
    int pen = 0;
    for (int r = 0; r < n; r++) {
        if (!isfinite(y[r])) {
            pen = 0;
            continue;
        }
        if (pen) cairo_line_to(cr, px(f, x[r]), py(f, y[r]));
        else cairo_move_to(cr, px(f, x[r]), py(f, y[r]));
        pen = 1;
    }
    cairo_set_line_width(cr, 2);
    cairo_stroke(cr);
    for (int r = 0; r < n; r++)
        if (isfinite(y[r])) {
            cairo_arc(cr, px(f, x[r]), py(f, y[r]), 3, 0, 2 * M_PI);
            cairo_fill(cr);
        }
}

static const double PALETTE[][3] = {{0.12, 0.47, 0.71}, {0.84, 0.15, 0.16}, {0.17, 0.63, 0.17}, {1.0, 0.5, 0.05},
                                    {0.58, 0.40, 0.74}, {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.5, 0.5, 0.5}};

/* Draws the columns of one panel; the y range spans their finite values. */
static void draw_panel(cairo_t *cr, const csv_table *t, int panel, const frame *at, int x_label) {
    frame f = *at;
    const double *x = t->value[column(t, "epoch")];
    f.ymin = INFINITY, f.ymax = -INFINITY;
    for (int c = 0; c < t->ncols; c++)
        if (drawn(t, c) && panel_of(t->name[c]) == panel)
            for (int r = 0; r < t->nrows; r++)
                if (isfinite(t->value[c][r])) f.ymin = fmin(f.ymin, t->value[c][r]), f.ymax = fmax(f.ymax, t->value[c][r]);
    double pad = f.ymax > f.ymin ? 0.06 * (f.ymax - f.ymin) : fmax(1e-3, 0.05 * fabs(f.ymax));
    f.ymin -= pad, f.ymax += pad;
    if (panel == PANEL_WEIGHT) f.ymin = fmin(f.ymin, 0), f.ymax = fmax(f.ymax, 1);
    draw_axes(cr, &f, PANEL_TITLE[panel], x_label);
    int k = 0;
    for (int c = 0; c < t->ncols; c++) {
        if (!drawn(t, c) || panel_of(t->name[c]) != panel) continue;
        const double *rgb = PALETTE[k % 8];
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        draw_curve(cr, &f, x, t->value[c], t->nrows);
        double ly = f.y0 + 14 + 20 * k;
        cairo_rectangle(cr, f.x0 + f.w + 16, ly - 8, 18, 4);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text_at(cr, f.x0 + f.w + 40, ly, t->name[c], 0);
        k++;
    }
}

/* cairo's text goes through fontconfig, whose caches it keeps to the end of the
 * process (some of them unreachable then): freed at exit, when no cairo object
 * is alive, so that leak checkers (the sanitizer build) see none. */
static void release_fonts(void) {
    cairo_debug_reset_static_data();
    FcFini();
}

static void release_fonts_at_exit(void) { atexit(release_fonts); }

/* Draws every panel with a curve into a new surface (NULL when none has). */
static cairo_surface_t *draw_plot(const csv_table *t, const char *title) {
    int has[NPANELS] = {0}, height = TOP + BOTTOM - GAP, last = -1;
    for (int c = 0; c < t->ncols; c++)
        if (drawn(t, c)) has[panel_of(t->name[c])] = 1;
    for (int p = 0; p < NPANELS; p++)
        if (has[p]) height += PANEL_HEIGHT[p] + GAP, last = p;
    if (last < 0) return NULL;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, release_fonts_at_exit);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, PLOT_WIDTH, height);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 16);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text_at(cr, LEFT, 24, title, 0);
    cairo_set_font_size(cr, 12);
    const double *x = t->value[column(t, "epoch")];
    frame f = {LEFT, TOP, PLOT_WIDTH - LEFT - RIGHT, 0, x[0], x[t->nrows - 1], 0, 0};
    if (f.xmax <= f.xmin) f.xmin -= 0.5, f.xmax += 0.5;
    for (int p = 0; p < NPANELS; p++) {
        if (!has[p]) continue;
        f.h = PANEL_HEIGHT[p];
        draw_panel(cr, t, p, &f, p == last);
        f.y0 += PANEL_HEIGHT[p] + GAP;
    }
    cairo_destroy(cr);
    return s;
}

static cairo_status_t write_to_file(void *closure, const unsigned char *data, unsigned int length) {
    return fwrite(data, 1, length, closure) == length ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

int vaec_plot_curves(const char *log_csv, const char *png, char *err, size_t len) {
    csv_table t;
    if (read_log(&t, log_csv, err, len)) return -1;
    int rc = -1;
    cairo_surface_t *s = NULL;
    if (column(&t, "epoch") < 0) fail(err, len, "%s: no column named epoch", log_csv);
    else if (t.nrows == 0) fail(err, len, "%s: no epochs yet", log_csv);
    else if (!(s = draw_plot(&t, log_csv))) fail(err, len, "%s: no column holds a curve to draw", log_csv);
    else if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS)
        fail(err, len, "%s: cairo: %s", png, cairo_status_to_string(cairo_surface_status(s)));
    else {
        vr_output o;
        if (vr_output_open(&o, png, err, len) == 0) {
            cairo_status_t st = cairo_surface_write_to_png_stream(s, write_to_file, o.f);
            if (st != CAIRO_STATUS_SUCCESS) fail(err, len, "%s: cannot write the PNG: %s", png, cairo_status_to_string(st));
            rc = vaec_output_finish(&o, st == CAIRO_STATUS_SUCCESS, err, len);
        }
    }
    if (s) cairo_surface_destroy(s);
    table_free(&t);
    return rc;
}
