/* The TensorBoard event writer (src/tfevents.c), read back by a decoder of its own:
 * the TFRecord framing, a bitwise CRC-32C (not the writer's table) checked against
 * RFC 3720's known answers, and a protobuf field walker that knows the Event,
 * Summary, Value and Image field numbers from TensorBoard's .proto files. */
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "src/tfevents.h"
#include "testutil.h"

/* ---- CRC-32C, one bit at a time (polynomial 0x1EDC6F41, reflected) */
static uint32_t crc32c_bitwise(const unsigned char *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* TFRecord's mask undone: rotate right by 15 after subtracting the delta, inverted. */
static uint32_t unmask(uint32_t masked) {
    uint32_t rot = masked - 0xA282EAD8u;
    return (rot >> 17) | (rot << 15);
}

static uint64_t le(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* ---- TFRecord framing */
typedef struct {
    const unsigned char *data;
    size_t len;
} record;

/* Splits buf into records, checking both CRCs of each; the count, or -1 with why. */
static int read_records(const unsigned char *buf, size_t n, record *out, int max, char *why, size_t whylen) {
    size_t at = 0;
    int count = 0;
    while (at < n) {
        if (n - at < 12) return snprintf(why, whylen, "record %d: truncated header", count), -1;
        uint64_t len = le(buf + at, 8);
        if (unmask((uint32_t)le(buf + at + 8, 4)) != crc32c_bitwise(buf + at, 8))
            return snprintf(why, whylen, "record %d: length CRC mismatch", count), -1;
        if (len > n - at - 12 || n - at - 12 - len < 4)
            return snprintf(why, whylen, "record %d: truncated data", count), -1;
        const unsigned char *data = buf + at + 12;
        if (unmask((uint32_t)le(data + len, 4)) != crc32c_bitwise(data, (size_t)len))
            return snprintf(why, whylen, "record %d: data CRC mismatch", count), -1;
        if (count == max) return snprintf(why, whylen, "more than %d records", max), -1;
        out[count++] = (record){data, (size_t)len};
        at += 12 + (size_t)len + 4;
    }
    return count;
}

/* ---- protobuf: one field at a time */
typedef struct {
    int field, wire;
    uint64_t number; /* varint, fixed32 or fixed64 */
    const unsigned char *bytes;
    size_t len;
} pb_field;

static int read_varint(const unsigned char **p, const unsigned char *end, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        unsigned char b = *(*p)++;
        *v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

/* 1 and the next field, 0 at the end, -1 when malformed. */
static int next_field(const unsigned char **p, const unsigned char *end, pb_field *f) {
    if (*p == end) return 0;
    uint64_t key;
    if (read_varint(p, end, &key)) return -1;
    f->field = (int)(key >> 3);
    f->wire = (int)(key & 7);
    int fixed = f->wire == 1 ? 8 : f->wire == 5 ? 4 : 0;
    if (f->wire == 0) return read_varint(p, end, &f->number) ? -1 : 1;
    if (fixed) {
        if (end - *p < fixed) return -1;
        f->number = le(*p, fixed);
        *p += fixed;
        return 1;
    }
    if (f->wire != 2 || read_varint(p, end, &f->number) || f->number > (uint64_t)(end - *p)) return -1;
    f->bytes = *p;
    f->len = (size_t)f->number;
    *p += f->len;
    return 1;
}

typedef struct {
    char tag[64];
    int has_simple, has_image;
    float simple;
    int64_t height, width, colorspace;
    const unsigned char *png;
    size_t png_len;
} summary_value;

typedef struct {
    double wall_time;
    int64_t step;
    char file_version[64];
    int nvalues, unknown_fields;
    summary_value value[4];
} event;

static int parse_image(const unsigned char *p, const unsigned char *end, summary_value *v) {
    pb_field f;
    int r;
    v->has_image = 1;
    while ((r = next_field(&p, end, &f)) == 1) {
        if (f.field == 1 && f.wire == 0) v->height = (int64_t)f.number;
        else if (f.field == 2 && f.wire == 0) v->width = (int64_t)f.number;
        else if (f.field == 3 && f.wire == 0) v->colorspace = (int64_t)f.number;
        else if (f.field == 4 && f.wire == 2) v->png = f.bytes, v->png_len = f.len;
        else return -1;
    }
    return r;
}

static int parse_value(const unsigned char *p, const unsigned char *end, summary_value *v) {
    pb_field f;
    int r;
    while ((r = next_field(&p, end, &f)) == 1) {
        if (f.field == 1 && f.wire == 2 && f.len < sizeof v->tag) {
            memcpy(v->tag, f.bytes, f.len);
            v->tag[f.len] = 0;
        } else if (f.field == 2 && f.wire == 5) {
            uint32_t bits = (uint32_t)f.number;
            memcpy(&v->simple, &bits, 4);
            v->has_simple = 1;
        } else if (f.field == 4 && f.wire == 2) {
            if (parse_image(f.bytes, f.bytes + f.len, v)) return -1;
        } else
            return -1;
    }
    return r;
}

static int parse_event(const record *rec, event *e) {
    memset(e, 0, sizeof *e);
    const unsigned char *p = rec->data, *end = rec->data + rec->len;
    pb_field f;
    int r;
    while ((r = next_field(&p, end, &f)) == 1) {
        if (f.field == 1 && f.wire == 1) {
            uint64_t bits = f.number;
            memcpy(&e->wall_time, &bits, 8);
        } else if (f.field == 2 && f.wire == 0) e->step = (int64_t)f.number;
        else if (f.field == 3 && f.wire == 2 && f.len < sizeof e->file_version) {
            memcpy(e->file_version, f.bytes, f.len);
        } else if (f.field == 5 && f.wire == 2) { /* Summary: repeated Value value = 1 */
            const unsigned char *q = f.bytes, *qend = f.bytes + f.len;
            pb_field g;
            int s;
            while ((s = next_field(&q, qend, &g)) == 1) {
                if (g.field != 1 || g.wire != 2 || e->nvalues == 4) return -1;
                if (parse_value(g.bytes, g.bytes + g.len, &e->value[e->nvalues++])) return -1;
            }
            if (s) return -1;
        } else
            e->unknown_fields++;
    }
    return r;
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

/* ---- the tests */

/* The decoder's CRC is right: RFC 3720 appendix B.4 and the common check value. */
static void test_crc32c_known_answers(void) {
    unsigned char zeros[32] = {0}, ones[32], up[32];
    memset(ones, 0xFF, sizeof ones);
    for (int i = 0; i < 32; i++) up[i] = (unsigned char)i;
    CU_ASSERT_EQUAL(crc32c_bitwise((const unsigned char *)"123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(crc32c_bitwise(zeros, 32), 0x8A9136AAu);
    CU_ASSERT_EQUAL(crc32c_bitwise(ones, 32), 0x62A8AB43u);
    CU_ASSERT_EQUAL(crc32c_bitwise(up, 32), 0x46DD794Eu);
}

static char *make_dir(void) {
    const char *p = tmp_path("-tfevents");
    CU_ASSERT_EQUAL_FATAL(mkdir(p, 0755), 0);
    return strdup(p);
}

static void remove_dir(char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            remove(path);
        }
    if (d) closedir(d);
    CU_ASSERT_EQUAL(rmdir(dir), 0);
    free(dir);
}

static const struct {
    const char *tag;
    int64_t step;
    double value;
} SCALARS[] = {{"train/elbo", 1, -197.88},
               {"train/elbo", 2, -150.5},
               {"epoch/test_elbo", 300, -159.768},
               {"epoch/kl_weight", 5000000000LL, 0.25}, /* a step past 32 bits */
               {"epoch/test_kl", -3, 1e-30}};            /* a negative step: 10-byte varint */
#define NSCALARS (int)(sizeof SCALARS / sizeof SCALARS[0])

/* A stand-in for PNG bytes, longer than 127 so that its length takes two varint bytes. */
static void fake_png(unsigned char *png, size_t n) {
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    for (size_t i = 0; i < n; i++) png[i] = (unsigned char)(i * 37 + 11);
    memcpy(png, signature, 8);
}

static char *write_example(const char *dir, unsigned char *png, size_t png_len) {
    char err[600] = "";
    tfevents *tb = tfevents_open(dir, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tb);
    char *path = strdup(tfevents_path(tb));
    for (int i = 0; i < NSCALARS; i++)
        CU_ASSERT_EQUAL(tfevents_scalar(tb, SCALARS[i].tag, SCALARS[i].step, SCALARS[i].value), 0);
    fake_png(png, png_len);
    CU_ASSERT_EQUAL(tfevents_image(tb, "samples", 7, png, png_len, 84, 56, 1), 0);
    CU_ASSERT_EQUAL(tfevents_close(tb, err, sizeof err), 0);
    return path;
}

/* events.out.tfevents.<10 digits of seconds>.<host name> */
static void check_file_name(const char *path, time_t before, time_t after) {
    const char *base = strrchr(path, '/') + 1, *prefix = "events.out.tfevents.";
    CU_ASSERT_EQUAL_FATAL(strncmp(base, prefix, strlen(prefix)), 0);
    char *end;
    long long seconds = strtoll(base + strlen(prefix), &end, 10);
    CU_ASSERT_EQUAL(end - (base + strlen(prefix)), 10);
    CU_ASSERT(seconds >= (long long)before && seconds <= (long long)after);
    char host[256];
    CU_ASSERT_EQUAL(gethostname(host, sizeof host), 0);
    CU_ASSERT(*end == '.' && strcmp(end + 1, host) == 0);
}

static void test_every_record(void) {
    char *dir = make_dir();
    unsigned char png[300];
    time_t before = time(NULL);
    char *path = write_example(dir, png, sizeof png);
    time_t after = time(NULL);
    check_file_name(path, before, after);
    size_t n;
    unsigned char *buf = slurp(path, &n);
    record rec[16];
    char why[128] = "";
    int nrec = read_records(buf, n, rec, 16, why, sizeof why);
    CU_ASSERT_EQUAL_FATAL(nrec, 1 + NSCALARS + 1);
    event e;
    CU_ASSERT_EQUAL_FATAL(parse_event(&rec[0], &e), 0);
    CU_ASSERT_STRING_EQUAL(e.file_version, "brain.Event:2");
    CU_ASSERT(e.step == 0 && e.nvalues == 0 && e.unknown_fields == 0);
    CU_ASSERT(e.wall_time >= (double)before && e.wall_time <= (double)after + 1);
    double last_time = e.wall_time;
    for (int i = 0; i < NSCALARS; i++) {
        CU_ASSERT_EQUAL_FATAL(parse_event(&rec[1 + i], &e), 0);
        CU_ASSERT(e.nvalues == 1 && e.unknown_fields == 0 && e.file_version[0] == 0);
        CU_ASSERT_STRING_EQUAL(e.value[0].tag, SCALARS[i].tag);
        CU_ASSERT_EQUAL(e.step, SCALARS[i].step);
        CU_ASSERT(e.value[0].has_simple && !e.value[0].has_image);
        CU_ASSERT_EQUAL(e.value[0].simple, (float)SCALARS[i].value);
        CU_ASSERT(e.wall_time >= last_time && e.wall_time <= (double)after + 1);
        last_time = e.wall_time;
    }
    CU_ASSERT_EQUAL_FATAL(parse_event(&rec[1 + NSCALARS], &e), 0);
    summary_value *v = &e.value[0];
    CU_ASSERT(e.nvalues == 1 && e.step == 7 && v->has_image && !v->has_simple);
    CU_ASSERT_STRING_EQUAL(v->tag, "samples");
    CU_ASSERT(v->height == 56 && v->width == 84 && v->colorspace == 1);
    CU_ASSERT(v->png_len == sizeof png && memcmp(v->png, png, sizeof png) == 0);
    free(buf);
    free(path);
    remove_dir(dir);
}

/* The decoder would notice a changed byte anywhere: in a length, in data, or a cut file. */
static void test_corruption_is_detected(void) {
    char *dir = make_dir();
    unsigned char png[300];
    char *path = write_example(dir, png, sizeof png);
    size_t n;
    unsigned char *buf = slurp(path, &n);
    record rec[16];
    char why[128] = "";
    CU_ASSERT_EQUAL_FATAL(read_records(buf, n, rec, 16, why, sizeof why), 1 + NSCALARS + 1);
    size_t second = (size_t)(rec[1].data - buf) - 12, third_data = (size_t)(rec[2].data - buf);

    buf[third_data + 3] ^= 0x10;
    CU_ASSERT_EQUAL(read_records(buf, n, rec, 16, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "record 2: data CRC mismatch");
    buf[third_data + 3] ^= 0x10;

    buf[second] ^= 0x01;
    CU_ASSERT_EQUAL(read_records(buf, n, rec, 16, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "record 1: length CRC mismatch");
    buf[second] ^= 0x01;

    CU_ASSERT_EQUAL(read_records(buf, n - 3, rec, 16, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "record 6: truncated data");
    CU_ASSERT_EQUAL(read_records(buf, n, rec, 16, why, sizeof why), 1 + NSCALARS + 1);
    free(buf);
    free(path);
    remove_dir(dir);
}

/* No directory, a file where the directory should be, bad events: refused with the reason. */
static void test_refusals(void) {
    char err[600] = "";
    const char *missing = tmp_path("-no-such-dir");
    CU_ASSERT_PTR_NULL(tfevents_open(missing, err, sizeof err));
    CU_ASSERT(strstr(err, missing) != NULL && strstr(err, "No such file") != NULL);
    const char *file = tmp_path("-a-file");
    write_file(file, "x", 1);
    CU_ASSERT_PTR_NULL(tfevents_open(file, err, sizeof err));
    CU_ASSERT(strstr(err, file) != NULL && strstr(err, "not a directory") != NULL);
    remove(file);

    char *dir = make_dir();
    tfevents *a = tfevents_open(dir, err, sizeof err), *b = tfevents_open(dir, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_NOT_EQUAL(tfevents_path(a), tfevents_path(b)); /* the same second: never the same file */
    unsigned char png[16] = {0x89};
    CU_ASSERT_EQUAL(tfevents_image(b, "samples", 1, png, sizeof png, 0, 28, 1), -1);
    CU_ASSERT_EQUAL(tfevents_scalar(b, "train/elbo", 1, 1.0), -1); /* after an error, nothing more */
    CU_ASSERT_EQUAL(tfevents_close(b, err, sizeof err), -1);
    CU_ASSERT(strstr(err, "image 'samples'") != NULL);
    CU_ASSERT_EQUAL(tfevents_scalar(a, "", 1, 1.0), -1);
    CU_ASSERT_EQUAL(tfevents_close(a, err, sizeof err), -1);
    CU_ASSERT(strstr(err, "needs a tag") != NULL);
    remove_dir(dir);
}

int main(void) {
    static const test_case tests[] = {{"CRC-32C known answers (the decoder's own)", test_crc32c_known_answers},
                                      {"every record decoded: framing, CRCs, fields", test_every_record},
                                      {"a corrupted byte is detected", test_corruption_is_detected},
                                      {"refusals", test_refusals},
                                      {NULL, NULL}};
    return run_suite("tfevents", tests);
}
