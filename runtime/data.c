/* Data sources: IDX (the MNIST family's format, gzip or not, through ISA-L or zlib),
 * NumPy .npy and .csv.  Images are kept as bytes and turned into floats one
 * batch at a time. Every failure names the file and what is wrong. */
#include "vae/runtime.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#if defined(VAE_USE_ISAL)
#include <isa-l/igzip_lib.h>
#elif defined(VAE_USE_ZLIB)
#include <zlib.h>
#endif

#define DEFAULT_FASHION_DIR "/usr/share/datasets/fashion-mnist"

static int data_fail(char *err, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}


static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- reading files, gzip or not
 *
 * A stream reads a file's bytes, inflating gzip data on the way (found by its
 * magic number, as gzip -dc would).  Three builds: ISA-L's igzip
 * (-DVAE_USE_ISAL -lisal: about twice zlib's speed, which is most of the time
 * from launch to the first step on Fashion-MNIST), zlib (-DVAE_USE_ZLIB -lz),
 * or neither (plain files only). */

#ifdef VAE_USE_ISAL
#define STREAM_CHUNK (1 << 16) /* compressed bytes read at a time */
#endif

typedef struct {
#if defined(VAE_USE_ISAL)
    FILE *f;
    struct inflate_state *z; /* NULL for a plain file */
    unsigned char *in;
    int ended; /* the last gzip member is done */
#elif defined(VAE_USE_ZLIB)
    gzFile f;
#else
    FILE *f;
#endif
    const char *error; /* why a read stopped short, when not at the end of the data */
} stream;

static void stream_close(stream *st);

static int stream_open(stream *st, const char *path) {
    memset(st, 0, sizeof *st);
#if defined(VAE_USE_ISAL)
    st->f = fopen(path, "rb");
    if (!st->f) return -1;
    unsigned char magic[2];
    size_t got = fread(magic, 1, 2, st->f);
    rewind(st->f);
    if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        st->z = malloc(sizeof *st->z);
        st->in = malloc(STREAM_CHUNK);
        if (!st->z || !st->in) {
            stream_close(st);
            st->error = "out of memory";
            return -1;
        }
        isal_inflate_init(st->z);
        st->z->crc_flag = ISAL_GZIP; /* parse the header, check the CRC and length in the trailer */
    }
    return 0;
#elif defined(VAE_USE_ZLIB)
    errno = 0;
    st->f = gzopen(path, "rb");
    return st->f ? 0 : -1;
#else
    if (ends_with(path, ".gz")) {
        errno = ENOTSUP;
        st->error = "compressed files need zlib or ISA-L (build with -DVAE_USE_ZLIB -lz or -DVAE_USE_ISAL -lisal)";
        return -1;
    }
    st->f = fopen(path, "rb");
    return st->f ? 0 : -1;
#endif
}

#ifdef VAE_USE_ISAL
static const char *isal_error(int rc) {
    switch (rc) {
    case ISAL_INCORRECT_CHECKSUM: return "corrupt gzip data (checksum mismatch)";
    case ISAL_INVALID_WRAPPER: return "corrupt gzip data (bad header)";
    case ISAL_UNSUPPORTED_METHOD: return "gzip data with an unsupported compression method";
    default: return "corrupt gzip data";
    }
}

/* Refills the compressed input; 0 at the end of the file. */
static size_t stream_fill(stream *st) {
    size_t got = fread(st->in, 1, STREAM_CHUNK, st->f);
    st->z->next_in = st->in;
    st->z->avail_in = (uint32_t)got;
    if (got == 0 && ferror(st->f)) st->error = strerror(errno ? errno : EIO);
    return got;
}
#endif

/* Reads up to n bytes; fewer only at the end of the data or on an error
 * (st->error says which). */
static size_t stream_read(stream *st, void *buf, size_t n) {
#if defined(VAE_USE_ISAL)
    if (!st->z) {
        size_t got = fread(buf, 1, n, st->f);
        if (got < n && ferror(st->f)) st->error = strerror(errno ? errno : EIO);
        return got;
    }
    size_t got = 0;
    while (got < n && !st->ended && !st->error) {
        if (st->z->block_state == ISAL_BLOCK_FINISH) { /* another gzip member may follow, as in cat a.gz b.gz */
            if (st->z->avail_in == 0 && !stream_fill(st)) {
                st->ended = 1;
                break;
            }
            if (st->z->next_in[0] != 0x1f) { /* trailing bytes that are not gzip: ignored, as gzip does */
                st->ended = 1;
                break;
            }
            isal_inflate_reset(st->z);
            st->z->crc_flag = ISAL_GZIP;
        }
        if (st->z->avail_in == 0 && !stream_fill(st)) {
            if (!st->error) st->error = "truncated gzip data";
            break;
        }
        size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        st->z->next_out = (uint8_t *)buf + got;
        st->z->avail_out = (uint32_t)want;
        int rc = isal_inflate(st->z);
        got += want - st->z->avail_out;
        if (rc < 0) st->error = isal_error(rc);
    }
    return got;
#elif defined(VAE_USE_ZLIB)
    size_t got = 0;
    while (got < n) {
        size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(st->f, (unsigned char *)buf + got, (unsigned)want);
        if (r < 0) {
            int zerr;
            st->error = gzerror(st->f, &zerr);
            break;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return got;
#else
    size_t got = fread(buf, 1, n, st->f);
    if (got < n && ferror(st->f)) st->error = strerror(errno ? errno : EIO);
    return got;
#endif
}

static void stream_close(stream *st) {
#if defined(VAE_USE_ISAL)
    fclose(st->f);
    free(st->z);
    free(st->in);
#elif defined(VAE_USE_ZLIB)
    gzclose(st->f);
#else
    fclose(st->f);
#endif
}

static int open_failed(const stream *st, const char *path, char *err, size_t errlen) {
    return data_fail(err, errlen, "%s: cannot open: %s", path, st->error ? st->error : strerror(errno ? errno : ENOENT));
}

/* Reads a whole file (inflated). */
static unsigned char *read_all(const char *path, size_t *len, char *err, size_t errlen) {
    stream st;
    if (stream_open(&st, path)) {
        open_failed(&st, path, err, errlen);
        return NULL;
    }
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            data_fail(err, errlen, "%s: out of memory", path);
            break;
        }
        size_t got = stream_read(&st, buf + n, cap - n);
        n += got;
        if (st.error) {
            data_fail(err, errlen, "%s: cannot read: %s", path, st.error);
            free(buf);
            buf = NULL;
            break;
        }
        if (n < cap) break; /* the end of the data */
        cap *= 2;
        unsigned char *nb = realloc(buf, cap);
        if (!nb) free(buf);
        buf = nb;
    }
    stream_close(&st);
    *len = n;
    return buf;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- sizes claimed by headers
 *
 * A header's sizes are untrusted: they are multiplied in 64 bits, saturating
 * (a product too large for 64 bits stays UINT64_MAX, more than any file), and
 * checked against what the file can hold before anything of their size is
 * allocated or any of them is narrowed. */

static uint64_t mul_sat(uint64_t a, uint64_t b) {
    return a != 0 && b > UINT64_MAX / a ? UINT64_MAX : a * b;
}

/* deflate gives at most 1032 bytes per compressed byte (a 258-byte match coded in 2 bits) */
#define MAX_INFLATE_RATIO 1032

/* The most bytes reading `path` can give: its size, or what a gzip file of its
 * size can inflate to (*gzip set); UINT64_MAX when unknown (not a regular file). */
static uint64_t readable_bound(const char *path, int *gzip) {
    struct stat sb;
    *gzip = 0;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return UINT64_MAX;
    unsigned char magic[2];
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(magic, 1, 2, f) : 0;
    if (f) fclose(f);
    *gzip = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    return *gzip ? mul_sat((uint64_t)sb.st_size, MAX_INFLATE_RATIO) : (uint64_t)sb.st_size;
}

/* What a header claims: n examples of `per` values of `elem` bytes, with
 * `avail` bytes after the header (at most that many for gzip: `gzip_bound`). */
typedef struct {
    uint64_t n, per, elem, avail;
    int gzip_bound;
} data_claim;

/* Checks a header's claim against the model's width and the file, in the order
 * a user would fix them.  0, or -1 with the file and what is wrong in err. */
static int check_claim(const char *path, const data_claim *c, int dim, char *err, size_t errlen) {
    if (c->n == 0) return data_fail(err, errlen, "%s: holds no examples", path);
    if (c->per == UINT64_MAX)
        return data_fail(err, errlen, "%s: the header's shape of an example overflows 64 bits (a corrupt header?)", path);
    if (c->per != (uint64_t)dim)
        return data_fail(err, errlen, "%s: each example has %llu values, but the model's data declares %d", path,
                         (unsigned long long)c->per, dim);
    uint64_t need = mul_sat(mul_sat(c->n, c->per), c->elem);
    char bytes[48];
    if (need == UINT64_MAX)
        snprintf(bytes, sizeof bytes, "more than 2^64 bytes of data");
    else
        snprintf(bytes, sizeof bytes, "%llu bytes of data", (unsigned long long)need);
    if (need > c->avail && c->gzip_bound)
        return data_fail(err, errlen,
                         "%s: truncated: the header promises %llu examples (%s), more than this gzip file can "
                         "inflate to",
                         path, (unsigned long long)c->n, bytes);
    if (need > c->avail)
        return data_fail(err, errlen, "%s: truncated: the header promises %llu examples (%s), the file has %llu", path,
                         (unsigned long long)c->n, bytes, (unsigned long long)c->avail);
    if (c->n > INT_MAX)
        return data_fail(err, errlen, "%s: %llu examples are more than vaec can index (%d at most)", path,
                         (unsigned long long)c->n, INT_MAX);
    return 0;
}

/* ---- the values: one scaling rule for every format
 *
 * Values stored as bytes (uint8 IDX and .npy) are intensities 0..255 and read
 * as byte / 255 (BYTE_SCALE); every other value (float IDX and .npy, and every
 * .csv value) is taken as written.  A .csv says nothing of its type, so
 * guessing bytes from its values made one data set train differently as .csv
 * and as .npy.  Binary data is binarised at half the range (a byte >= 128, a
 * value > 0.5), so there a value written as a number must lie in [0, 1]: a
 * .csv of 0..255 is refused with what to do instead of read on another scale.
 * NaN and infinity are refused everywhere (training would blame the learning
 * rate). */
#define BYTE_SCALE (1.0f / 255.0f)

/* Why a value read as written cannot be used, or NULL. */
static const char *value_problem(double v, int binary) {
    if (isnan(v)) return "is not a number (NaN)";
    if (isinf(v)) return "is infinite";
    if (fabs(v) > FLT_MAX) return "does not fit in a float";
    if (binary && !(v >= 0 && v <= 1))
        return "is outside [0, 1], which binary (Bernoulli) data needs: scale the values to [0, 1] (divide bytes "
               "0..255 by 255), or store bytes as uint8 .npy or IDX";
    return NULL;
}

/* Checks value i of a file of `per`-value examples; the message names the example and value. */
static int check_value(const char *path, double v, uint64_t i, uint64_t per, int binary, char *err, size_t errlen) {
    const char *why = value_problem(v, binary);
    if (!why) return 0;
    return data_fail(err, errlen, "%s: example %llu, value %llu (from 0): %g %s", path,
                     (unsigned long long)(i / per), (unsigned long long)(i % per), v, why);
}

/* Bytes become the data set as they are, read as byte * BYTE_SCALE. */
static void keep_bytes(vr_dataset *ds, uint8_t *bytes) {
    ds->u8 = bytes;
    ds->scale = BYTE_SCALE;
}

/* ---- IDX */

/* One row of bytes as bits, binarised at half the range (a byte >= 128 is 1),
 * value j at bit j % 8 of byte j / 8; eight at a time, which compilers unroll. */
static void bits_of_row(const uint8_t *line, int dim, uint8_t *out) {
    int j = 0;
    for (; j + 8 <= dim; j += 8) {
        unsigned b = 0;
        for (int t = 0; t < 8; t++) b |= (unsigned)(line[j + t] >> 7) << t;
        out[j / 8] = (uint8_t)b;
    }
    for (; j < dim; j++) out[j / 8] |= (uint8_t)((line[j] >> 7) << (j % 8));
}

/* The claim of an IDX header (magic already checked: head[3] sizes follow it). */
static data_claim idx_claim(const unsigned char *head, uint64_t avail) {
    data_claim c = {be32(head + 4), 1, head[2] == 0x08 ? 1 : 4, avail, 0};
    for (int i = 1; i < head[3]; i++) c.per = mul_sat(c.per, be32(head + 4 + 4 * i));
    return c;
}

/* Reads the rows of a binary IDX file's bytes into bits, a block of rows at a
 * time: the bytes are never all in memory.  0, or -1 with err set. */
static int read_bits(stream *st, const char *path, long n, int dim, uint8_t *bits, char *err, size_t errlen) {
    size_t row = ((size_t)dim + 7) / 8;
    long block = (1 << 18) / dim > 0 ? (1 << 18) / dim : 1; /* rows per read: a quarter MiB of bytes */
    uint8_t *lines = malloc((size_t)block * (size_t)dim);
    if (!lines) return data_fail(err, errlen, "%s: out of memory", path);
    int rc = -1;
    for (long i = 0; i < n; i += block) {
        long rows = n - i < block ? n - i : block;
        size_t got = stream_read(st, lines, (size_t)rows * (size_t)dim);
        if (got != (size_t)rows * (size_t)dim) {
            if (st->error)
                data_fail(err, errlen, "%s: cannot read: %s", path, st->error);
            else
                data_fail(err, errlen, "%s: truncated: the header promises %ld examples (%zu bytes of data), the file has %zu",
                          path, n, (size_t)n * (size_t)dim, (size_t)i * (size_t)dim + got);
            goto out;
        }
        for (long r = 0; r < rows; r++) bits_of_row(lines + (size_t)r * (size_t)dim, dim, bits + (size_t)(i + r) * row);
    }
    while (!st->error && stream_read(st, lines, (size_t)dim) == (size_t)dim) {
    } /* to the end: gzip's checksum is in its trailer */
    if (st->error) {
        data_fail(err, errlen, "%s: cannot read: %s", path, st->error);
        goto out;
    }
    rc = 0;
out:
    free(lines);
    return rc;
}

/* Binary IDX bytes go straight to bits.  Returns 1 when it handled the file
 * (rc in *rc), 0 when the file is for load_idx's general path. */
static int load_idx_bits(vr_dataset *ds, const char *path, int dim, char *err, size_t errlen, int *rc) {
    stream st;
    if (stream_open(&st, path)) return 0;
    unsigned char head[4 + 4 * 8];
    int handled = 0;
    if (stream_read(&st, head, 4) != 4 || head[0] || head[1] || head[2] != 0x08 || head[3] < 1 || head[3] > 8 ||
        stream_read(&st, head + 4, 4 * (size_t)head[3]) != 4 * (size_t)head[3])
        goto out; /* let the general path say what is wrong */
    handled = 1;
    *rc = -1;
    int gzip;
    uint64_t bound = readable_bound(path, &gzip), off = 4 + 4 * (uint64_t)head[3];
    data_claim claim = idx_claim(head, bound > off ? bound - off : 0);
    claim.gzip_bound = gzip;
    if (check_claim(path, &claim, dim, err, errlen)) goto out;
    long n = (long)claim.n;
    uint8_t *bits = calloc((size_t)n * (((size_t)dim + 7) / 8), 1);
    if (!bits) {
        data_fail(err, errlen, "%s: out of memory", path);
        goto out;
    }
    if (read_bits(&st, path, n, dim, bits, err, errlen)) {
        free(bits);
        goto out;
    }
    ds->n = (int)n;
    ds->dim = dim;
    ds->bits = bits;
    ds->scale = BYTE_SCALE;
    *rc = 0;
out:
    stream_close(&st);
    return handled;
}

/* IDX floats (big-endian) into ds->f32, each value checked.  0 or -1. */
static int idx_floats(vr_dataset *ds, const char *path, const unsigned char *data, uint64_t count, uint64_t per,
                      int binary, char *err, size_t errlen) {
    ds->f32 = malloc((size_t)count * sizeof(float));
    if (!ds->f32) return data_fail(err, errlen, "%s: out of memory", path);
    for (uint64_t i = 0; i < count; i++) {
        uint32_t u = be32(data + 4 * i);
        memcpy(&ds->f32[i], &u, 4);
        if (check_value(path, ds->f32[i], i, per, binary, err, errlen)) return -1;
    }
    return 0;
}

static int load_idx(vr_dataset *ds, const char *path, int dim, int binary, char *err, size_t errlen) {
    int rc = -1;
    if (binary == 1 && load_idx_bits(ds, path, dim, err, errlen, &rc)) return rc;
    size_t len;
    unsigned char *buf = read_all(path, &len, err, errlen);
    if (!buf) return -1;
    if (len < 4 || buf[0] != 0 || buf[1] != 0) {
        data_fail(err, errlen, "%s: not an IDX file (bad magic number)", path);
        goto done;
    }
    int type = buf[2], nd = buf[3];
    if (type != 0x08 && type != 0x0D) {
        data_fail(err, errlen, "%s: IDX element type 0x%02x is not supported (unsigned bytes 0x08 or floats 0x0D)", path,
             type);
        goto done;
    }
    size_t off = 4 + 4 * (size_t)nd;
    if (nd < 1 || len < off) {
        data_fail(err, errlen, "%s: truncated IDX header", path);
        goto done;
    }
    data_claim claim = idx_claim(buf, len - off);
    if (check_claim(path, &claim, dim, err, errlen)) goto done;
    size_t count = (size_t)claim.n * (size_t)claim.per; /* checked: fits in the file */
    ds->n = (int)claim.n;
    ds->dim = dim;
    if (type == 0x08) { /* the file's buffer becomes the data set: no second copy */
        memmove(buf, buf + off, count);
        uint8_t *shrunk = realloc(buf, count);
        keep_bytes(ds, shrunk ? shrunk : buf);
        buf = NULL;
    } else if (idx_floats(ds, path, buf + off, count, claim.per, binary, err, errlen))
        goto done;
    rc = 0;
done:
    free(buf);
    return rc;
}

/* ---- .npy: magic, version, header dict with descr, fortran_order and shape */

/* The sizes of a .npy shape "(a, b, ...)" as a claim: n = a, per = b * ...
 * 0, or -1 with err set for a malformed, negative or too large size. */
static int npy_shape(const char *path, const char *p, data_claim *c, int *ndims, char *err, size_t errlen) {
    int nd = 0;
    c->n = 0;
    c->per = 1;
    for (p++; *p && *p != ')';) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        if (*p == '-') return data_fail(err, errlen, "%s: the .npy shape has a negative size", path);
        if (*p < '0' || *p > '9') return data_fail(err, errlen, "%s: malformed .npy header (shape)", path);
        char *e;
        errno = 0;
        unsigned long long v = strtoull(p, &e, 10);
        if (e == p || nd == 32) return data_fail(err, errlen, "%s: malformed .npy header (shape)", path);
        if (errno == ERANGE) return data_fail(err, errlen, "%s: a size in the .npy shape is too large", path);
        if (nd++ == 0)
            c->n = v;
        else
            c->per = mul_sat(c->per, v);
        p = e;
    }
    if (*p != ')') return data_fail(err, errlen, "%s: malformed .npy header (shape)", path);
    *ndims = nd;
    return 0;
}

/* Parses the header at buf[0..len): its descr, where the data starts in *off,
 * and the shape's claim in *c (nd sizes).  0 or -1 with err set. */
static int npy_fields(const char *path, const unsigned char *buf, size_t len, char descr[16], size_t *off,
                      data_claim *c, int *nd, char *err, size_t errlen) {
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) return data_fail(err, errlen, "%s: not a .npy file (bad magic)", path);
    size_t hlen;
    if (buf[6] == 1) {
        hlen = buf[8] | (size_t)buf[9] << 8;
        *off = 10;
    } else if (buf[6] == 2 || buf[6] == 3) {
        if (len < 12) return data_fail(err, errlen, "%s: truncated .npy header", path);
        hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        *off = 12;
    } else
        return data_fail(err, errlen, "%s: .npy version %d is not supported", path, buf[6]);
    if (len - *off < hlen) return data_fail(err, errlen, "%s: truncated .npy header", path);
    char header[4096];
    if (hlen >= sizeof header) return data_fail(err, errlen, "%s: .npy header too long", path);
    memcpy(header, buf + *off, hlen);
    header[hlen] = 0;
    *off += hlen;
    const char *d = strstr(header, "'descr'"), *fo = strstr(header, "'fortran_order'"), *sh = strstr(header, "'shape'");
    if (!d || !fo || !sh) return data_fail(err, errlen, "%s: malformed .npy header", path);
    descr[0] = 0;
    if (sscanf(d, "'descr' : '%15[^']'", descr) != 1 && sscanf(d, "'descr': '%15[^']'", descr) != 1)
        return data_fail(err, errlen, "%s: malformed .npy header (descr)", path);
    if (strstr(fo, "True") && strstr(fo, "True") < sh)
        return data_fail(err, errlen, "%s: Fortran-ordered arrays are not supported", path);
    const char *p = strchr(sh, '(');
    if (!p) return data_fail(err, errlen, "%s: malformed .npy header (shape)", path);
    if (npy_shape(path, p, c, nd, err, errlen)) return -1;
    c->avail = len - *off;
    c->gzip_bound = 0;
    return 0;
}

/* The header of a data .npy: the element size in *elem, where the data starts
 * in *off, and the header's claim in *c.  0 or -1 with err set. */
static int npy_header(const char *path, const unsigned char *buf, size_t len, size_t *elem, size_t *off,
                      data_claim *c, char *err, size_t errlen) {
    char descr[16];
    int nd;
    if (npy_fields(path, buf, len, descr, off, c, &nd, err, errlen)) return -1;
    if (strcmp(descr, "|u1") == 0 || strcmp(descr, "u1") == 0)
        *elem = 1;
    else if (strcmp(descr, "<f4") == 0)
        *elem = 4;
    else if (strcmp(descr, "<f8") == 0)
        *elem = 8;
    else
        return data_fail(err, errlen, "%s: dtype '%s' is not supported (uint8, float32 or float64, little-endian)", path,
                         descr);
    c->elem = *elem;
    return 0;
}

/* .npy floats into ds->f32, each value checked before it is narrowed.  0 or -1. */
static int npy_floats(vr_dataset *ds, const char *path, const unsigned char *data, size_t elem, uint64_t count,
                      uint64_t per, int binary, char *err, size_t errlen) {
    ds->f32 = malloc((size_t)count * sizeof(float));
    if (!ds->f32) return data_fail(err, errlen, "%s: out of memory", path);
    for (uint64_t i = 0; i < count; i++) {
        double v;
        if (elem == 4) {
            memcpy(&ds->f32[i], data + 4 * i, 4);
            v = ds->f32[i];
        } else
            memcpy(&v, data + 8 * i, 8);
        if (check_value(path, v, i, per, binary, err, errlen)) return -1;
        ds->f32[i] = (float)v;
    }
    return 0;
}

static int load_npy(vr_dataset *ds, const char *path, int dim, int binary, char *err, size_t errlen) {
    size_t len;
    unsigned char *buf = read_all(path, &len, err, errlen);
    if (!buf) return -1;
    int rc = -1;
    size_t elem = 0, off = 0;
    data_claim claim = {0};
    if (npy_header(path, buf, len, &elem, &off, &claim, err, errlen) || check_claim(path, &claim, dim, err, errlen))
        goto done;
    size_t count = (size_t)claim.n * (size_t)claim.per; /* checked: fits in the file */
    ds->n = (int)claim.n;
    ds->dim = dim;
    if (elem == 1) {
        uint8_t *bytes = malloc(count);
        if (!bytes) {
            data_fail(err, errlen, "%s: out of memory", path);
            goto done;
        }
        memcpy(bytes, buf + off, count);
        keep_bytes(ds, bytes);
    } else if (npy_floats(ds, path, buf + off, elem, count, claim.per, binary, err, errlen))
        goto done;
    rc = 0;
done:
    free(buf);
    return rc;
}

/* ---- .csv: one example per line, values separated by commas; a first line
 * that is not numeric is a header.  Every value is taken as written. */

typedef struct {
    float *vals;
    size_t n, cap;
} csv_values;

/* Parses one non-blank line s (line `line` of the file) into v: its count of
 * values in *count, 0 for a header.  0, or -1 with err set. */
static int csv_line(const char *path, long line, char *s, int header_allowed, int binary, csv_values *v, long *count,
                    char *err, size_t errlen) {
    *count = 0;
    for (char *q = s;;) {
        char *e;
        errno = 0;
        float x = strtof(q, &e);
        if (e == q) {
            if (header_allowed && *count == 0) return 0; /* a header */
            return data_fail(err, errlen, "%s:%ld: not a number: '%.20s'", path, line, q);
        }
        const char *why = isinf(x) && errno == ERANGE ? "does not fit in a float" : value_problem(x, binary);
        if (why)
            return data_fail(err, errlen, "%s:%ld: column %ld: %.*s %s", path, line, *count + 1,
                             (int)(e - q > 40 ? 40 : e - q), q, why);
        if (v->n == v->cap) {
            float *grown = realloc(v->vals, 2 * v->cap * sizeof *grown);
            if (!grown) return data_fail(err, errlen, "%s: out of memory", path);
            v->vals = grown;
            v->cap *= 2;
        }
        v->vals[v->n++] = x;
        ++*count;
        while (*e == ' ' || *e == '\t' || *e == '\r') e++;
        if (*e == ',') {
            q = e + 1;
            continue;
        }
        if (*e) return data_fail(err, errlen, "%s:%ld: unexpected '%c' after value %ld", path, line, *e, *count);
        return 0;
    }
}

static int load_csv(vr_dataset *ds, const char *path, int dim, int binary, char *err, size_t errlen) {
    size_t len;
    unsigned char *buf = read_all(path, &len, err, errlen);
    if (!buf) return -1;
    char *text = realloc(buf, len + 1);
    csv_values v = {malloc(1024 * sizeof(float)), 0, 1024};
    int rc = -1;
    if (!text || !v.vals) {
        if (!text) free(buf);
        free(v.vals);
        free(text);
        return data_fail(err, errlen, "%s: out of memory", path);
    }
    text[len] = 0;
    long rows = 0, line = 0;
    for (char *p = text; *p;) {
        char *eol = strchr(p, '\n');
        if (eol) *eol = 0;
        line++;
        char *s = p;
        p = eol ? eol + 1 : p + strlen(p);
        while (*s == ' ' || *s == '\t' || *s == '\r') s++;
        if (!*s) continue;
        long count;
        if (csv_line(path, line, s, line == 1, binary, &v, &count, err, errlen)) goto done;
        if (count == 0) continue;
        if (count != dim) {
            data_fail(err, errlen, "%s:%ld: the line has %ld values, but the model's data declares %d", path, line, count,
                      dim);
            goto done;
        }
        if (++rows > INT_MAX) {
            data_fail(err, errlen, "%s: more than %d examples, more than vaec can index", path, INT_MAX);
            goto done;
        }
    }
    if (rows == 0) {
        data_fail(err, errlen, "%s: holds no examples", path);
        goto done;
    }
    ds->n = (int)rows;
    ds->dim = dim;
    ds->f32 = v.vals;
    v.vals = NULL;
    rc = 0;
done:
    free(v.vals);
    free(text);
    return rc;
}

/* Binary data is binarised once, at load time, and kept as bits: Fashion-MNIST's
 * 60,000 images take 5.9 MB instead of 47 MB of bytes. */
static void pack_bits(vr_dataset *ds) {
    size_t row = ((size_t)ds->dim + 7) / 8;
    uint8_t *bits = calloc((size_t)ds->n * row, 1);
    if (!bits) return; /* keep the unpacked values */
    for (size_t i = 0; i < (size_t)ds->n; i++)
        for (size_t j = 0; j < (size_t)ds->dim; j++) {
            size_t at = i * (size_t)ds->dim + j;
            int on = ds->u8 ? ds->u8[at] >= 128 : ds->f32[at] > 0.5f; /* above half the range */
            if (on) bits[i * row + j / 8] |= (uint8_t)(1u << (j % 8));
        }
    free(ds->u8);
    free(ds->f32);
    ds->u8 = NULL;
    ds->f32 = NULL;
    ds->bits = bits;
}

static int load_source(vr_dataset *ds, const char *source, const char *data_dir, int dim, int binary, char *err,
                       size_t errlen);

int vr_data_load(vr_dataset *ds, const char *source, const char *data_dir, int dim, int binary, char *err,
                 size_t errlen) {
    int rc = load_source(ds, source, data_dir, dim, binary, err, errlen);
    if (rc) vr_data_free(ds); /* what a reader allocated before it refused the file */
    ds->binary = binary;
    if (rc == 0 && binary == 1 && !ds->bits) pack_bits(ds); /* dynamic data keeps its intensities */
    return rc;
}

/* The file of a fashion-mnist:SPLIT source (images, or with `labels` its labels):
 * FILE.gz or FILE in data_dir, $VAE_DATA_DIR or the Debian package's folder. */
static int fashion_file(char *path, size_t len, const char *source, const char *data_dir, int labels, char *err,
                        size_t errlen) {
    const char *split = source + 14, *file;
    if (strcmp(split, "train") == 0)
        file = labels ? "train-labels-idx1-ubyte" : "train-images-idx3-ubyte";
    else if (strcmp(split, "test") == 0)
        file = labels ? "t10k-labels-idx1-ubyte" : "t10k-images-idx3-ubyte";
    else
        return data_fail(err, errlen, "%s: unknown data set split '%s' (expected fashion-mnist:train or fashion-mnist:test)",
                    source, split);
    const char *dir = data_dir ? data_dir : getenv("VAE_DATA_DIR");
    if (!dir || !*dir) dir = DEFAULT_FASHION_DIR;
    snprintf(path, len, "%s/%s.gz", dir, file);
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    else {
        snprintf(path, len, "%s/%s", dir, file);
        f = fopen(path, "rb");
        if (!f)
            return data_fail(err, errlen,
                        "%s: %s%snot found in %s (install Debian's dataset-fashion-mnist, or point --data-dir or "
                        "VAE_DATA_DIR at the IDX files)",
                        source, labels ? file : "", labels ? " " : "", dir);
        fclose(f);
    }
    return 0;
}

static int load_source(vr_dataset *ds, const char *source, const char *data_dir, int dim, int binary, char *err,
                       size_t errlen) {
    memset(ds, 0, sizeof *ds);
    if (strncmp(source, "fashion-mnist:", 14) == 0) {
        char path[4096];
        if (fashion_file(path, sizeof path, source, data_dir, 0, err, errlen)) return -1;
        return load_idx(ds, path, dim, binary, err, errlen);
    }
    if (ends_with(source, ".npy")) return load_npy(ds, source, dim, binary, err, errlen);
    if (ends_with(source, ".csv")) return load_csv(ds, source, dim, binary, err, errlen);
    if (ends_with(source, ".idx") || ends_with(source, ".idx.gz") || ends_with(source, "-ubyte") ||
        ends_with(source, "-ubyte.gz") || ends_with(source, ".gz"))
        return load_idx(ds, source, dim, binary, err, errlen);
    return data_fail(err, errlen, "%s: unknown kind of data source (expected fashion-mnist:train, fashion-mnist:test, or "
                             "a .idx, .idx.gz, .npy or .csv file)", source);
}

void vr_data_free(vr_dataset *ds) {
    free(ds->labels);
    free(ds->u8);
    free(ds->f32);
    free(ds->bits);
    memset(ds, 0, sizeof *ds);
}

#define DEFINE_GATHER(NAME, T)                                                                                     \
    void NAME(const vr_dataset *ds, const int *idx, int n, T *out) {                                             \
        const int d = ds->dim;                                                                                     \
        for (int i = 0; i < n; i++) {                                                                              \
            T *o = out + (size_t)i * (size_t)d;                                                                    \
            if (ds->bits) {                                                                                        \
                const uint8_t *s = ds->bits + (size_t)idx[i] * (((size_t)d + 7) / 8);                              \
                int j = 0;                                                                                         \
                for (; j + 8 <= d; j += 8) /* a byte at a time: fixed shifts, which compilers vectorise */         \
                    for (int k = 0; k < 8; k++) o[j + k] = (T)((s[j / 8] >> k) & 1);                               \
                for (; j < d; j++) o[j] = (T)((s[j / 8] >> (j % 8)) & 1);                                          \
            } else if (ds->u8) {                                                                                   \
                const uint8_t *s = ds->u8 + (size_t)idx[i] * (size_t)d;                                            \
                if (ds->binary == 1)                                                                               \
                    for (int j = 0; j < d; j++) o[j] = (T)(s[j] >= 128); /* above half of 0..255 */                \
                else                                                                                               \
                    for (int j = 0; j < d; j++) o[j] = (T)(s[j] * ds->scale);                                      \
            } else {                                                                                               \
                const float *s = ds->f32 + (size_t)idx[i] * (size_t)d;                                             \
                if (ds->binary == 1)                                                                               \
                    for (int j = 0; j < d; j++) o[j] = (T)(s[j] > 0.5f);                                           \
                else                                                                                               \
                    for (int j = 0; j < d; j++) o[j] = (T)s[j];                                                    \
            }                                                                                                      \
        }                                                                                                          \
    }

DEFINE_GATHER(vr_data_gather_f32, float)
DEFINE_GATHER(vr_data_gather_f64, double)

/* ---- labels: one class 0..K-1 per example, from an IDX1 file of bytes, a 1-d
 * .npy of integers, or a .csv of one integer a line.  Like the data, a file is
 * checked against what its header claims before anything of that size is
 * allocated, and each value before it is kept. */

/* Checks label i's value v (the file's position in `where`); 0 or -1 with err set. */
static int check_label(const char *path, const char *where, long long i, long long v, int negative, int classes,
                       char *err, size_t errlen) {
    if (negative)
        return data_fail(err, errlen, "%s: %s %lld: the label %lld is negative (labels are classes 0..%d)", path, where, i,
                         v, classes - 1);
    if (v >= classes)
        return data_fail(err, errlen, "%s: %s %lld: the label %lld is outside 0..%d (the model's label has %d classes)",
                         path, where, i, v, classes - 1, classes);
    return 0;
}

static int label_count(const char *path, uint64_t have, int want, char *err, size_t errlen) {
    if (have == (uint64_t)want) return 0;
    return data_fail(err, errlen, "%s: holds %llu labels, but the data has %d examples", path, (unsigned long long)have,
                     want);
}

static int labels_idx(int *out, const char *path, const unsigned char *buf, size_t len, int n, int classes, char *err,
                      size_t errlen) {
    if (len < 8 || buf[0] || buf[1] || buf[3] != 1)
        return data_fail(err, errlen, "%s: not an IDX label file (magic 0x00000801: one dimension of bytes)", path);
    if (buf[2] != 0x08)
        return data_fail(err, errlen, "%s: IDX label element type 0x%02x is not supported (unsigned bytes 0x08)", path,
                         buf[2]);
    uint64_t count = be32(buf + 4);
    if (count > len - 8)
        return data_fail(err, errlen, "%s: truncated: the header promises %llu labels, the file has %zu", path,
                         (unsigned long long)count, len - 8);
    if (label_count(path, count, n, err, errlen)) return -1;
    for (int i = 0; i < n; i++) {
        if (check_label(path, "label", i, buf[8 + i], 0, classes, err, errlen)) return -1;
        out[i] = buf[8 + i];
    }
    return 0;
}

/* An integer .npy descr ("<i4", "|u1", ">u8"): its size, signedness and byte order; 0 when it is not one. */
static int npy_int_type(const char *descr, int *size, int *is_signed, int *big) {
    if (!descr[0] || !descr[1]) return 0;
    char order = descr[0], kind;
    if (order == '<' || order == '>' || order == '|' || order == '=')
        descr++;
    else
        order = '=';
    kind = descr[0];
    if (!kind || !descr[1]) return 0;
    *size = descr[1] - '0';
    *is_signed = kind == 'i';
    *big = order == '>';
    return (kind == 'i' || kind == 'u') && !descr[2] && (*size == 1 || *size == 2 || *size == 4 || *size == 8);
}

static int labels_npy(int *out, const char *path, const unsigned char *buf, size_t len, int n, int classes, char *err,
                      size_t errlen) {
    char descr[16];
    size_t off;
    data_claim c;
    int nd, size, is_signed, big;
    if (npy_fields(path, buf, len, descr, &off, &c, &nd, err, errlen)) return -1;
    if (!npy_int_type(descr, &size, &is_signed, &big))
        return data_fail(err, errlen, "%s: labels of dtype '%s' are not integers (int8..int64 or uint8..uint64)", path,
                         descr);
    if (nd != 1) return data_fail(err, errlen, "%s: labels must be a 1-d array (this one has %d dimensions)", path, nd);
    if (mul_sat(c.n, (uint64_t)size) > c.avail)
        return data_fail(err, errlen, "%s: truncated: the header promises %llu labels, the file holds %llu", path,
                         (unsigned long long)c.n, (unsigned long long)(c.avail / (uint64_t)size));
    if (label_count(path, c.n, n, err, errlen)) return -1;
    for (int i = 0; i < n; i++) {
        const unsigned char *e = buf + off + (size_t)i * (size_t)size;
        uint64_t u = 0;
        for (int b = 0; b < size; b++) u |= (uint64_t)e[big ? b : size - 1 - b] << (8 * (size - 1 - b));
        int negative = is_signed && (u >> (8 * size - 1)) & 1;
        long long v = negative ? (long long)(u | (size < 8 ? ~0ULL << (8 * size) : 0)) : (long long)(u > LLONG_MAX ? LLONG_MAX : u);
        if (check_label(path, "label", i, v, negative, classes, err, errlen)) return -1;
        out[i] = (int)v;
    }
    return 0;
}

/* A .csv of labels: one integer a line (blank lines skipped; a first line that
 * is not a number is a header).  Lines beyond the examples' count are refused as they come. */
static int labels_csv(int *out, const char *path, char *text, int n, int classes, char *err, size_t errlen) {
    long long got = 0, line = 0;
    for (char *p = text; *p;) {
        char *eol = strchr(p, '\n'), *s = p;
        if (eol) *eol = 0;
        p = eol ? eol + 1 : p + strlen(p);
        line++;
        while (*s == ' ' || *s == '\t' || *s == '\r') s++;
        if (!*s) continue;
        char *e;
        errno = 0;
        long long v = strtoll(s, &e, 10);
        while (*e == ' ' || *e == '\t' || *e == '\r') e++;
        if (e == s || *e || errno == ERANGE) {
            if (line == 1 && (e == s) && !(*s == '-' || *s == '+' || *s == '.' || (*s >= '0' && *s <= '9'))) continue;
            return data_fail(err, errlen, "%s:%lld: not an integer label: '%.20s'", path, line, s);
        }
        if (got == n) return data_fail(err, errlen, "%s:%lld: more labels than the data's %d examples", path, line, n);
        char where[32];
        snprintf(where, sizeof where, "line %lld, label", line);
        if (check_label(path, where, got, v, v < 0, classes, err, errlen)) return -1;
        out[got++] = (int)v;
    }
    return label_count(path, (uint64_t)got, n, err, errlen);
}

/* Reads `path` into a new array of ds->n labels; 0 or -1 with err set. */
static int read_labels(vr_dataset *ds, const char *path, int classes, char *err, size_t errlen) {
    size_t len;
    unsigned char *buf = read_all(path, &len, err, errlen);
    if (!buf) return -1;
    int *labels = malloc(((size_t)ds->n ? (size_t)ds->n : 1) * sizeof(int)), rc = -1;
    if (!labels) {
        free(buf);
        return data_fail(err, errlen, "%s: out of memory", path);
    }
    if (ends_with(path, ".csv")) {
        char *text = realloc(buf, len + 1);
        if (text) {
            buf = (unsigned char *)text;
            text[len] = 0;
            rc = labels_csv(labels, path, text, ds->n, classes, err, errlen);
        } else
            data_fail(err, errlen, "%s: out of memory", path);
    } else if (ends_with(path, ".npy"))
        rc = labels_npy(labels, path, buf, len, ds->n, classes, err, errlen);
    else
        rc = labels_idx(labels, path, buf, len, ds->n, classes, err, errlen);
    free(buf);
    if (rc) {
        free(labels);
        return -1;
    }
    free(ds->labels);
    ds->labels = labels;
    ds->classes = classes;
    return 0;
}

int vr_data_load_labels(vr_dataset *ds, const char *source, const char *labels, const char *data_dir, int classes,
                        char *err, size_t errlen) {
    char path[4096];
    if (!labels && strncmp(source, "fashion-mnist:", 14) == 0) {
        if (fashion_file(path, sizeof path, source, data_dir, 1, err, errlen)) return -1;
        labels = path;
    }
    if (!labels) return 1;
    return read_labels(ds, labels, classes, err, errlen);
}

/* ---- dynamic binarisation: value j of example e is 1 with probability its
 * intensity, from Philox on a stream of its own keyed on (seed, key, e, j): the
 * same draw whatever the thread count, the batch or the back end.  Each
 * Philox block gives eight 16-bit uniforms, u = (r + 1/2) / 65536, so that
 * intensity 0 is never 1 and intensity 1 always is (a resolution of 1/65536,
 * finer than the 1/255 of byte data); 32 bits a value cost twice the time, a
 * second of an epoch of Fashion-MNIST on one thread. */
#define DRAW_STREAM 0xB1A00u

void vr_data_gather_drawn_f32(const vr_dataset *ds, const int *idx, int n, float *out, uint64_t seed, uint64_t key) {
    const int d = ds->dim;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32) ^ (0x9E3779B9u * (DRAW_STREAM + 1u));
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * (size_t)d;
        vr_data_gather_f32(ds, idx + i, 1, o); /* the intensities */
        for (int j0 = 0; j0 < d; j0 += 8) {
            vr_philox_block c = {{(uint32_t)(j0 / 8), (uint32_t)idx[i], (uint32_t)key, (uint32_t)(key >> 32)}};
            vr_philox_block r = vr_philox4x32(c, k0, k1);
            float u[8];
            for (int t = 0; t < 8; t++) /* fixed shifts, unrolled */
                u[t] = ((float)((r.v[t / 2] >> (16 * (t % 2))) & 0xFFFFu) + 0.5f) * (1.0f / 65536.0f); /* exact */
            int m = d - j0 < 8 ? d - j0 : 8;
            for (int t = 0; t < m; t++) o[j0 + t] = u[t] < o[j0 + t] ? 1.0f : 0.0f;
        }
    }
}

/* ---- labelled subsets and semi-supervised batches (docs/structured.md) */

#define KEEP_STREAM 0x1AB00000u  /* + class: which examples of a class keep their labels */
#define LABELLED_STREAM 0x1AB50000u /* + epoch: the labelled examples' order */

int vr_labels_keep(const vr_dataset *ds, int n, long labelled, uint64_t seed, unsigned char *kept, char *err,
                   size_t errlen) {
    int K = ds->classes;
    for (int i = 0; i < n; i++) kept[i] = ds->labels && ds->labels[i] >= 0;
    if (labelled == 0) return 0;
    if (!ds->labels || K <= 0)
        return data_fail(err, errlen, "labelled = %ld: the training data has no labels to keep", labelled);
    if (labelled < 0 || labelled > n || labelled % K)
        return data_fail(err, errlen, "labelled = %ld: must be a multiple of the label's %d classes, at most the %d "
                                      "training examples", labelled, K, n);
    long per = labelled / K;
    int *members = malloc((size_t)n * sizeof(int)), *perm = malloc((size_t)n * sizeof(int));
    if (!members || !perm) {
        free(members);
        free(perm);
        return data_fail(err, errlen, "labelled = %ld: out of memory", labelled);
    }
    int rc = 0;
    for (int i = 0; i < n; i++) kept[i] = 0;
    for (int c = 0; c < K && !rc; c++) {
        int count = 0;
        for (int i = 0; i < n; i++)
            if (ds->labels[i] == c) members[count++] = i;
        if (count < per) {
            rc = data_fail(err, errlen, "labelled = %ld: class %d has %d training example%s, fewer than the %ld each "
                                        "class needs (labelled / %d)", labelled, c, count, count == 1 ? "" : "s", per, K);
            break;
        }
        vr_shuffle_stream(perm, count, seed, KEEP_STREAM + (uint32_t)c);
        for (long k = 0; k < per; k++) kept[members[perm[k]]] = 1;
    }
    free(members);
    free(perm);
    return rc;
}

int vr_semi_plan_of(vr_semi_plan *s, int nlab, int nunl, int B) {
    long n = (long)nlab + nunl;
    memset(s, 0, sizeof *s);
    if (nlab <= 0 || nunl <= 0 || B < 2) return -1;
    long Bl = ((long)B * nlab + n - 1) / n; /* ceil(B * N / n) */
    if (Bl >= B) Bl = B - 1;                /* at least one unlabelled example a batch */
    s->B = B;
    s->Bl = (int)Bl;
    s->nlab = nlab;
    s->nunl = nunl;
    s->steps = nunl / (B - s->Bl);
    return s->steps > 0 ? 0 : -1;
}

int vr_semi_order(const vr_semi_plan *s, const int *lab, const int *unl, uint64_t seed, uint64_t epoch, int *order) {
    int *pl = malloc((size_t)s->nlab * sizeof(int)), *pu = malloc((size_t)s->nunl * sizeof(int));
    if (!pl || !pu) {
        free(pl);
        free(pu);
        return -1;
    }
    vr_shuffle_stream(pl, s->nlab, seed, LABELLED_STREAM + (uint32_t)epoch);
    vr_shuffle(pu, s->nunl, seed, epoch);
    int Bu = s->B - s->Bl;
    for (int b = 0; b < s->steps; b++) {
        int *o = order + (size_t)b * (size_t)s->B;
        for (int i = 0; i < s->Bl; i++) o[i] = lab[pl[((long)b * s->Bl + i) % s->nlab]]; /* cycled */
        for (int i = 0; i < Bu; i++) o[s->Bl + i] = unl[pu[(long)b * Bu + i]];
    }
    free(pl);
    free(pu);
    return 0;
}
