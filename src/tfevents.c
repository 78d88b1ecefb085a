/* TensorBoard event files: TFRecord framing around hand-encoded Event protobufs.
 *
 * A record (TensorFlow's tensorflow/core/lib/io/record_writer.cc) is
 *     u64 length | u32 masked CRC-32C of those 8 bytes | data | u32 masked CRC-32C of data
 * little-endian.  The data is one Event (tensorboard/compat/proto/event.proto):
 *     double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
 * Summary { repeated Value value = 1; }
 * Value { string tag = 1; float simple_value = 2; Image image = 4; }
 * Image { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
 * (summary.proto).  Fields at their default (step 0) are left out, as protobuf does. */
#include "src/tfevents.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- CRC-32C (Castagnoli): the polynomial 0x1EDC6F41 of iSCSI (RFC 3720, section 12.1
 * and its test vectors in appendix B.4), bit-reflected 0x82F63B78, which TFRecord uses. */
#define CRC32C_REFLECTED 0x82F63B78u
/* TFRecord stores a rotated CRC plus a constant (crc32c.h's Mask): a CRC of data that
 * holds CRCs is then not degenerate. */
#define CRC_MASK_DELTA 0xA282EAD8u

static void crc32c_table(uint32_t table[256]) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? CRC32C_REFLECTED ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
}

static uint32_t masked_crc32c(const uint32_t table[256], const unsigned char *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    crc = ~crc;
    return ((crc >> 15) | (crc << 17)) + CRC_MASK_DELTA;
}

/* ---- protobuf encoding: varints, fixed-width little-endian and length-delimited fields */
enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_BYTES = 2, WIRE_FIXED32 = 5 };
enum { EVENT_WALL_TIME = 1, EVENT_STEP = 2, EVENT_FILE_VERSION = 3, EVENT_SUMMARY = 5 };
enum { SUMMARY_VALUE = 1 };
enum { VALUE_TAG = 1, VALUE_SIMPLE_VALUE = 2, VALUE_IMAGE = 4 };
enum { IMAGE_HEIGHT = 1, IMAGE_WIDTH = 2, IMAGE_COLORSPACE = 3, IMAGE_ENCODED = 4 };

typedef struct {
    unsigned char *p;
    size_t n, cap;
} pbuf;

static void pb_raw(pbuf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void pb_varint(pbuf *b, uint64_t v) {
    unsigned char out[10];
    int n = 0;
    while (v >= 0x80) {
        out[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (unsigned char)v;
    pb_raw(b, out, (size_t)n);
}

static void store_le(unsigned char *out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) out[i] = (unsigned char)(v >> (8 * i));
}

static void pb_little_endian(pbuf *b, uint64_t v, int bytes) {
    unsigned char out[8];
    store_le(out, v, bytes);
    pb_raw(b, out, (size_t)bytes);
}

static void pb_key(pbuf *b, int field, int wire) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void pb_int_field(pbuf *b, int field, int64_t v) { /* int32 and int64: negative as 10-byte two's complement */
    pb_key(b, field, WIRE_VARINT);
    pb_varint(b, (uint64_t)v);
}

static void pb_bytes_field(pbuf *b, int field, const void *data, size_t n) {
    pb_key(b, field, WIRE_BYTES);
    pb_varint(b, n);
    pb_raw(b, data, n);
}

/* ---- the writer */
struct tfevents {
    FILE *f;
    char *path;
    char error[600]; /* the first failure; empty while all is well */
    uint32_t crc_table[256];
    pbuf value, summary, event; /* reused by every event */
};

static void set_error(tfevents *tb, const char *fmt, ...) {
    if (tb->error[0]) return; /* keep the first: later ones follow from it */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tb->error, sizeof tb->error, fmt, ap);
    va_end(ap);
}

static double wall_time(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One TFRecord around tb->event, flushed so that a reader sees it at once. */
static int write_record(tfevents *tb) {
    unsigned char header[12], footer[4];
    store_le(header, tb->event.n, 8);
    store_le(header + 8, masked_crc32c(tb->crc_table, header, 8), 4);
    store_le(footer, masked_crc32c(tb->crc_table, tb->event.p, tb->event.n), 4);
    errno = 0;
    int ok = fwrite(header, 1, 12, tb->f) == 12 && fwrite(tb->event.p, 1, tb->event.n, tb->f) == tb->event.n &&
             fwrite(footer, 1, 4, tb->f) == 4 && fflush(tb->f) == 0;
    if (!ok) set_error(tb, "%s: cannot write the event file: %s", tb->path, strerror(errno ? errno : EIO));
    return ok ? 0 : -1;
}

/* An Event at this time: a summary (tb->summary) or, when file_version is given, the file's first. */
static int write_event(tfevents *tb, int64_t step, const char *file_version) {
    double now = wall_time();
    uint64_t bits;
    memcpy(&bits, &now, 8);
    tb->event.n = 0;
    pb_key(&tb->event, EVENT_WALL_TIME, WIRE_FIXED64);
    pb_little_endian(&tb->event, bits, 8);
    if (step != 0) pb_int_field(&tb->event, EVENT_STEP, step);
    if (file_version)
        pb_bytes_field(&tb->event, EVENT_FILE_VERSION, file_version, strlen(file_version));
    else
        pb_bytes_field(&tb->event, EVENT_SUMMARY, tb->summary.p, tb->summary.n);
    return write_record(tb);
}

/* Summary { value: tb->value } as one event. */
static int write_summary(tfevents *tb, int64_t step) {
    tb->summary.n = 0;
    pb_bytes_field(&tb->summary, SUMMARY_VALUE, tb->value.p, tb->value.n);
    return write_event(tb, step, NULL);
}

static int start_value(tfevents *tb, const char *tag) {
    if (!tb || tb->error[0]) return -1;
    if (!tag || !*tag) {
        set_error(tb, "%s: an event needs a tag", tb->path);
        return -1;
    }
    tb->value.n = 0;
    pb_bytes_field(&tb->value, VALUE_TAG, tag, strlen(tag));
    return 0;
}

int tfevents_scalar(tfevents *tb, const char *tag, int64_t step, double value) {
    if (start_value(tb, tag)) return -1;
    float f = (float)value;
    uint32_t bits;
    memcpy(&bits, &f, 4);
    pb_key(&tb->value, VALUE_SIMPLE_VALUE, WIRE_FIXED32);
    pb_little_endian(&tb->value, bits, 4);
    return write_summary(tb, step);
}

int tfevents_image(tfevents *tb, const char *tag, int64_t step, const unsigned char *png, size_t len, int width,
                   int height, int channels) {
    if (start_value(tb, tag)) return -1;
    if (!png || len == 0 || width < 1 || height < 1 || channels < 1 || channels > 4) {
        set_error(tb, "%s: image '%s' is empty or has a bad shape (%d x %d, %d channels)", tb->path, tag, width,
                  height, channels);
        return -1;
    }
    pbuf image = {0};
    pb_int_field(&image, IMAGE_HEIGHT, height);
    pb_int_field(&image, IMAGE_WIDTH, width);
    pb_int_field(&image, IMAGE_COLORSPACE, channels); /* 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA */
    pb_bytes_field(&image, IMAGE_ENCODED, png, len);
    pb_bytes_field(&tb->value, VALUE_IMAGE, image.p, image.n);
    free(image.p);
    return write_summary(tb, step);
}

const char *tfevents_path(const tfevents *tb) { return tb->path; }

static void free_writer(tfevents *tb) {
    free(tb->path);
    free(tb->value.p);
    free(tb->summary.p);
    free(tb->event.p);
    free(tb);
}

/* The host name as TensorFlow puts it in the file name, without characters a path cannot hold. */
static void host_name(char *out, size_t len) {
    if (gethostname(out, len) != 0 || !out[0]) snprintf(out, len, "localhost");
    out[len - 1] = 0;
    for (char *c = out; *c; c++)
        if (*c == '/') *c = '_';
}

/* Creates DIR/events.out.tfevents.<seconds>.<host>[.k], never an existing file. */
static FILE *create_file(const char *dir, char **path, char *err, size_t errlen) {
    char host[256];
    host_name(host, sizeof host);
    long long seconds = (long long)time(NULL);
    size_t len = strlen(dir) + strlen(host) + 64;
    *path = malloc(len);
    if (!*path) abort();
    for (int k = 1; k <= 1000; k++) {
        int n = snprintf(*path, len, "%s/events.out.tfevents.%010lld.%s", dir, seconds, host);
        if (k > 1) snprintf(*path + n, len - (size_t)n, ".%d", k);
        int fd = open(*path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            FILE *f = fdopen(fd, "wb");
            if (f) return f;
            int why = errno;
            close(fd);
            remove(*path);
            errno = why;
        }
        if (errno != EEXIST) break;
    }
    snprintf(err, errlen, "%s: cannot create the event file: %s", *path, strerror(errno));
    free(*path);
    *path = NULL;
    return NULL;
}

tfevents *tfevents_open(const char *dir, char *err, size_t errlen) {
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(err, errlen, "%s: cannot write an event file there: %s", dir, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not a directory (the event file goes into the run's directory)", dir);
        return NULL;
    }
    tfevents *tb = calloc(1, sizeof *tb);
    if (!tb) abort();
    crc32c_table(tb->crc_table);
    tb->f = create_file(dir, &tb->path, err, errlen);
    if (!tb->f) {
        free_writer(tb);
        return NULL;
    }
    if (write_event(tb, 0, "brain.Event:2") != 0) {
        snprintf(err, errlen, "%s", tb->error);
        fclose(tb->f);
        remove(tb->path);
        free_writer(tb);
        return NULL;
    }
    return tb;
}

int tfevents_close(tfevents *tb, char *err, size_t errlen) {
    if (!tb) return 0;
    if (fclose(tb->f) != 0) set_error(tb, "%s: cannot write the event file: %s", tb->path, strerror(errno));
    int rc = tb->error[0] ? -1 : 0;
    if (rc) snprintf(err, errlen, "%s", tb->error);
    free_writer(tb);
    return rc;
}
