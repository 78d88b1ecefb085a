/* TensorBoard event files, written by vaec itself (no TensorFlow, no protobuf library).
 *
 *     char err[512];
 *     tfevents *tb = tfevents_open("runs/fashion_gauss", err, sizeof err);
 *     tfevents_scalar(tb, "epoch/test_elbo", epoch, elbo);
 *     tfevents_image(tb, "samples", epoch, png, png_len, width, height, 1);
 *     if (tfevents_close(tb, err, sizeof err)) fprintf(stderr, "vaec: warning: %s\n", err);
 *
 * The file is DIR/events.out.tfevents.<seconds>.<hostname>: TFRecords, each an Event
 * protobuf; the first says file_version "brain.Event:2".  Every event is flushed as
 * it is written, so TensorBoard shows a run while it trains; a crash leaves at worst
 * a cut last record, which TensorBoard's reader skips. */
#ifndef VAEC_TFEVENTS_H
#define VAEC_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct tfevents tfevents;

/* Creates a new event file in the directory dir (which must exist); never
 * overwrites a file: a second writer in the same second gets a ".2" suffix.
 * NULL when it cannot (err names the file and the reason). */
tfevents *tfevents_open(const char *dir, char *err, size_t errlen);
/* The file's path. */
const char *tfevents_path(const tfevents *tb);

/* One scalar (written as a float, TensorBoard's simple_value).  0, or -1 when the
 * event could not be written (the reason is kept and returned by tfevents_close;
 * later calls do nothing). */
int tfevents_scalar(tfevents *tb, const char *tag, int64_t step, double value);
/* One encoded image (PNG bytes) of width x height pixels; channels 1 (grey),
 * 2 (grey + alpha), 3 (RGB) or 4 (RGBA) is TensorBoard's colorspace. */
int tfevents_image(tfevents *tb, const char *tag, int64_t step, const unsigned char *png, size_t len, int width,
                   int height, int channels);

/* Closes the file and frees tb (NULL is a no-op).  0, or -1 with the first error
 * of this writer's life in err. */
int tfevents_close(tfevents *tb, char *err, size_t errlen);

#endif
