/* src/plot.h: the curve plot of a run, drawn with cairo. */
#ifndef VAEC_PLOT_H
#define VAEC_PLOT_H

#include <stddef.h>

/* Reads a run's log.csv (lines starting with '#' skipped; the first other line
 * names the columns) and draws its curves per epoch as a PNG: the train and
 * test bound, the reconstruction term and the exact log p(x) in one panel, the
 * KL in a second, the KL weight in a third (when warm-up changed it); columns
 * that hold no number are left out.  0, or -1 with err naming the file and
 * what is wrong (nothing is written then). */
int vaec_plot_curves(const char *log_csv, const char *png, char *err, size_t len);

#endif
