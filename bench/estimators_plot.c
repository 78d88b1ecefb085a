/* bench/estimators_plot.c: the curves of bench/estimators.sh as one PNG, drawn with cairo as
 * vaec plot draws a run's (src/plot.c).  Not part of vaec: the script compiles it.
 *
 *   estimators_plot OUT.png TITLE < points
 *
 * Each input line is PANEL<TAB>SERIES<TAB>X<TAB>Y; PANEL is 0 (train ELBO, per epoch),
 * 1 (validation ELBO, per epoch) or 2 (encoder-gradient variance, per checkpoint, drawn on a
 * log10 axis).  A series keeps its colour in every panel. */
#define _POSIX_C_SOURCE 200809L
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NPANELS = 3, MAX_SERIES = 16, MAX_POINTS = 4096 };
static const char *const TITLE[NPANELS] = {"train ELBO (mean of each epoch's steps, nats)",
                                           "validation ELBO (last 10,000 training images, nats)",
                                           "encoder-gradient variance (trace of the covariance, log10)"};
static const double PALETTE[][3] = {{0.12, 0.47, 0.71}, {0.84, 0.15, 0.16}, {0.17, 0.63, 0.17}, {1.0, 0.5, 0.05},
                                    {0.58, 0.40, 0.74}, {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.5, 0.5, 0.5}};
#define WIDTH 960
#define HEIGHT 300
#define LEFT 80
#define RIGHT 260
#define TOP 50
#define GAP 60

typedef struct {
    int panel, series;
    double x, y;
} point;

static char series[MAX_SERIES][128];
static int nseries;
static point pts[MAX_POINTS];
static int npts;

static int series_index(const char *name) {
    for (int i = 0; i < nseries; i++)
        if (strcmp(series[i], name) == 0) return i;
    if (nseries == MAX_SERIES) return -1;
    snprintf(series[nseries], sizeof series[nseries], "%s", name);
    return nseries++;
}

static int read_points(FILE *in) {
    char line[512];
    while (fgets(line, sizeof line, in)) {
        char *f[4], *save = NULL;
        int n = 0;
        for (char *t = strtok_r(line, "\t\n", &save); t && n < 4; t = strtok_r(NULL, "\t\n", &save)) f[n++] = t;
        if (n < 4) continue;
        int panel = atoi(f[0]), s = series_index(f[1]);
        double x = strtod(f[2], NULL), y = strtod(f[3], NULL);
        if (panel < 0 || panel >= NPANELS || s < 0 || !isfinite(x) || !isfinite(y) || npts == MAX_POINTS) continue;
        if (panel == 2) {
            if (y <= 0) continue;
            y = log10(y);
        }
        pts[npts++] = (point){panel, s, x, y};
    }
    return npts > 0 ? 0 : -1;
}

static double tick_step(double range) {
    double s = pow(10, floor(log10(range / 4)));
    return range / s > 20 ? 5 * s : range / s > 8 ? 2 * s : s;
}

/* One panel: axes, ticks, each series's points in x order joined by lines, and the legend. */
static void draw_panel(cairo_t *cr, int panel, double y0) {
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY, w = WIDTH - LEFT - RIGHT;
    for (int i = 0; i < npts; i++)
        if (pts[i].panel == panel)
            xmin = fmin(xmin, pts[i].x), xmax = fmax(xmax, pts[i].x), ymin = fmin(ymin, pts[i].y), ymax = fmax(ymax, pts[i].y);
    if (!isfinite(xmin)) return;
    if (xmax <= xmin) xmin -= 0.5, xmax += 0.5;
    double pad = ymax > ymin ? 0.06 * (ymax - ymin) : 0.5;
    ymin -= pad, ymax += pad;
#define PX(x) (LEFT + ((x) - xmin) / (xmax - xmin) * w)
#define PY(y) (y0 + HEIGHT - ((y) - ymin) / (ymax - ymin) * HEIGHT)
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, LEFT, y0, w, HEIGHT);
    cairo_stroke(cr);
    cairo_move_to(cr, LEFT, y0 - 10);
    cairo_show_text(cr, TITLE[panel]);
    char buf[64];
    double ts = tick_step(ymax - ymin);
    for (double t = ceil(ymin / ts) * ts; t <= ymax; t += ts) {
        snprintf(buf, sizeof buf, panel == 2 ? "1e%.1f" : "%g", t);
        cairo_move_to(cr, 8, PY(t) + 4);
        cairo_show_text(cr, buf);
    }
    double xs = tick_step(xmax - xmin);
    for (double t = ceil(xmin / xs) * xs; t <= xmax; t += xs) {
        snprintf(buf, sizeof buf, "%g", t);
        cairo_move_to(cr, PX(t) - 6, y0 + HEIGHT + 16);
        cairo_show_text(cr, buf);
    }
    cairo_move_to(cr, LEFT + w / 2 - 40, y0 + HEIGHT + 34);
    cairo_show_text(cr, "epoch (1,000 steps)");
    for (int s = 0; s < nseries; s++) {
        const double *rgb = PALETTE[s % 8];
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_set_line_width(cr, 2);
        int first = 1;
        for (int i = 0; i < npts; i++) /* the script writes each series's points in x order */
            if (pts[i].panel == panel && pts[i].series == s) {
                if (first) cairo_move_to(cr, PX(pts[i].x), PY(pts[i].y));
                else cairo_line_to(cr, PX(pts[i].x), PY(pts[i].y));
                first = 0;
            }
        cairo_stroke(cr);
        cairo_rectangle(cr, LEFT + w + 16, y0 + 10 + 20 * s, 18, 4);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_move_to(cr, LEFT + w + 40, y0 + 16 + 20 * s);
        cairo_show_text(cr, series[s]);
    }
#undef PX
#undef PY
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s OUT.png TITLE < points\n", argv[0]);
        return 2;
    }
    if (read_points(stdin)) {
        fprintf(stderr, "%s: no points to draw\n", argv[0]);
        return 1;
    }
    int height = TOP + NPANELS * (HEIGHT + GAP);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, WIDTH, height);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 16);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, LEFT, 24);
    cairo_show_text(cr, argv[2]);
    cairo_set_font_size(cr, 12);
    for (int p = 0; p < NPANELS; p++) draw_panel(cr, p, TOP + 10 + p * (HEIGHT + GAP));
    cairo_destroy(cr);
    int rc = cairo_surface_write_to_png(s, argv[1]) == CAIRO_STATUS_SUCCESS ? 0 : 1;
    if (rc) fprintf(stderr, "%s: cannot write %s\n", argv[0], argv[1]);
    cairo_surface_destroy(s);
    return rc;
}
