/* Data sources: IDX (the MNIST family's format, gzip or not, through ISA-L or zlib),
 * NumPy .npy and .csv.  Images are kept as bytes and turned into floats one
 * batch at a time. Every failure names the file and what is wrong. */
#include "vae/runtime.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
        if (!st->z || !st->in) abort();
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

static int check_dim(const char *path, long per_example, int dim, char *err, size_t errlen) {
    if (per_example != dim)
        return data_fail(err, errlen, "%s: each example has %ld values, but the model's data declares %d", path,
                    per_example, dim);
    return 0;
}

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

/* Binary IDX bytes go straight to bits, a block of rows at a time: the bytes
 * are never all in memory.  Returns 1 when it handled the file (rc in *rc), 0
 * when the file is for load_idx's general path. */
static int load_idx_bits(vr_dataset *ds, const char *path, int dim, char *err, size_t errlen, int *rc) {
    stream st;
    if (stream_open(&st, path)) return 0;
    unsigned char head[4 + 4 * 8];
    int handled = 0;
    if (stream_read(&st, head, 4) != 4 || head[0] || head[1] || head[2] != 0x08 || head[3] < 1 || head[3] > 8 ||
        stream_read(&st, head + 4, 4 * (size_t)head[3]) != 4 * (size_t)head[3])
        goto out; /* let the general path say what is wrong */
    long n = be32(head + 4), per = 1;
    for (int i = 1; i < head[3]; i++) per *= be32(head + 4 + 4 * i);
    if (n < 1 || per != dim) goto out;
    handled = 1;
    *rc = -1;
    size_t row = ((size_t)dim + 7) / 8;
    long block = (1 << 18) / dim > 0 ? (1 << 18) / dim : 1; /* rows per read: a quarter MiB of bytes */
    uint8_t *bits = calloc((size_t)n * row, 1), *lines = malloc((size_t)block * (size_t)dim);
    if (!bits || !lines) abort();
    for (long i = 0; i < n; i += block) {
        long rows = n - i < block ? n - i : block;
        size_t got = stream_read(&st, lines, (size_t)rows * (size_t)dim);
        if (got != (size_t)rows * (size_t)dim) {
            if (st.error)
                data_fail(err, errlen, "%s: cannot read: %s", path, st.error);
            else
                data_fail(err, errlen, "%s: truncated: the header promises %ld examples (%zu bytes of data), the file has %zu",
                          path, n, (size_t)n * (size_t)dim, (size_t)i * (size_t)dim + got);
            free(bits);
            free(lines);
            goto out;
        }
        for (long r = 0; r < rows; r++) bits_of_row(lines + (size_t)r * (size_t)dim, dim, bits + (size_t)(i + r) * row);
    }
    while (!st.error && stream_read(&st, lines, (size_t)dim) == (size_t)dim) {
    } /* to the end: gzip's checksum is in its trailer */
    if (st.error) {
        data_fail(err, errlen, "%s: cannot read: %s", path, st.error);
        free(bits);
        free(lines);
        goto out;
    }
    free(lines);
    ds->n = (int)n;
    ds->dim = dim;
    ds->bits = bits;
    ds->scale = 1.0f / 255.0f;
    *rc = 0;
out:
    stream_close(&st);
    return handled;
}

static int load_idx(vr_dataset *ds, const char *path, int dim, int binary, char *err, size_t errlen) {
    int rc = -1;
    if (binary && load_idx_bits(ds, path, dim, err, errlen, &rc)) return rc;
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
    if (nd < 1 || len < 4 + 4 * (size_t)nd) {
        data_fail(err, errlen, "%s: truncated IDX header", path);
        goto done;
    }
    long n = be32(buf + 4), per = 1;
    for (int i = 1; i < nd; i++) per *= be32(buf + 4 + 4 * i);
    size_t elem = type == 0x08 ? 1 : 4, need = (size_t)n * (size_t)per * elem, off = 4 + 4 * (size_t)nd;
    if (len - off < need) {
        data_fail(err, errlen, "%s: truncated: the header promises %ld examples (%zu bytes of data), the file has %zu", path,
             n, need, len - off);
        goto done;
    }
    if (n < 1) {
        data_fail(err, errlen, "%s: holds no examples", path);
        goto done;
    }
    if (check_dim(path, per, dim, err, errlen)) goto done;
    ds->n = (int)n;
    ds->dim = dim;
    if (type == 0x08) { /* the file's buffer becomes the data set: no second copy */
        memmove(buf, buf + off, need);
        uint8_t *shrunk = realloc(buf, need);
        ds->u8 = shrunk ? shrunk : buf;
        buf = NULL;
        ds->scale = 1.0f / 255.0f;
    } else {
        ds->f32 = malloc(need);
        if (!ds->f32) abort();
        for (size_t i = 0; i < (size_t)n * (size_t)per; i++) {
            uint32_t u = be32(buf + off + 4 * i);
            memcpy(&ds->f32[i], &u, 4);
        }
    }
    rc = 0;
done:
    free(buf);
    return rc;
}

/* .npy: magic, version, header dict with descr, fortran_order and shape. */
static int load_npy(vr_dataset *ds, const char *path, int dim, char *err, size_t errlen) {
    size_t len;
    unsigned char *buf = read_all(path, &len, err, errlen);
    if (!buf) return -1;
    int rc = -1;
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
        data_fail(err, errlen, "%s: not a .npy file (bad magic)", path);
        goto done;
    }
    size_t hlen, off;
    if (buf[6] == 1) {
        hlen = buf[8] | (size_t)buf[9] << 8;
        off = 10;
    } else if (buf[6] == 2 || buf[6] == 3) {
        if (len < 12) {
            data_fail(err, errlen, "%s: truncated .npy header", path);
            goto done;
        }
        hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        off = 12;
    } else {
        data_fail(err, errlen, "%s: .npy version %d is not supported", path, buf[6]);
        goto done;
    }
    if (len < off + hlen) {
        data_fail(err, errlen, "%s: truncated .npy header", path);
        goto done;
    }
    char header[4096];
    if (hlen >= sizeof header) {
        data_fail(err, errlen, "%s: .npy header too long", path);
        goto done;
    }
    memcpy(header, buf + off, hlen);
    header[hlen] = 0;
    off += hlen;
    const char *d = strstr(header, "'descr'"), *fo = strstr(header, "'fortran_order'"), *sh = strstr(header, "'shape'");
    if (!d || !fo || !sh) {
        data_fail(err, errlen, "%s: malformed .npy header", path);
        goto done;
    }
    char descr[16] = "";
    if (sscanf(d, "'descr' : '%15[^']'", descr) != 1 && sscanf(d, "'descr': '%15[^']'", descr) != 1) {
        data_fail(err, errlen, "%s: malformed .npy header (descr)", path);
        goto done;
    }
    if (strstr(fo, "True") && strstr(fo, "True") < sh) {
        data_fail(err, errlen, "%s: Fortran-ordered arrays are not supported", path);
        goto done;
    }
    const char *p = strchr(sh, '(');
    if (!p) {
        data_fail(err, errlen, "%s: malformed .npy header (shape)", path);
        goto done;
    }
    long dims[8];
    int nd = 0;
    for (p++; *p && *p != ')';) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *e;
        long v = strtol(p, &e, 10);
        if (e == p || nd == 8) {
            data_fail(err, errlen, "%s: malformed .npy header (shape)", path);
            goto done;
        }
        dims[nd++] = v;
        p = e;
    }
    if (nd < 1 || dims[0] < 1) {
        data_fail(err, errlen, "%s: the array holds no examples", path);
        goto done;
    }
    long per = 1;
    for (int i = 1; i < nd; i++) per *= dims[i];
    size_t elem;
    if (strcmp(descr, "|u1") == 0 || strcmp(descr, "u1") == 0)
        elem = 1;
    else if (strcmp(descr, "<f4") == 0)
        elem = 4;
    else if (strcmp(descr, "<f8") == 0)
        elem = 8;
    else {
        data_fail(err, errlen, "%s: dtype '%s' is not supported (uint8, float32 or float64, little-endian)", path, descr);
        goto done;
    }
    size_t count = (size_t)dims[0] * (size_t)per;
    if (len - off < count * elem) {
        data_fail(err, errlen, "%s: truncated: the header promises %zu values, the file has room for %zu", path, count,
             (len - off) / elem);
        goto done;
    }
    if (check_dim(path, per, dim, err, errlen)) goto done;
    ds->n = (int)dims[0];
    ds->dim = dim;
    if (elem == 1) {
        ds->u8 = malloc(count);
        if (!ds->u8) abort();
        memcpy(ds->u8, buf + off, count);
        ds->scale = 1.0f / 255.0f;
    } else {
        ds->f32 = malloc(count * sizeof(float));
        if (!ds->f32) abort();
        for (size_t i = 0; i < count; i++) {
            if (elem == 4)
                memcpy(&ds->f32[i], buf + off + 4 * i, 4);
            else {
                double v;
                memcpy(&v, buf + off + 8 * i, 8);
                ds->f32[i] = (float)v;
            }
        }
    }
    rc = 0;
done:
    free(buf);
    return rc;
}

/* .csv: one example per line, values separated by commas; a first line that is
 * not numeric is a header.  Integer files with values up to 255 are bytes. */
static int load_csv(vr_dataset *ds, const char *path, int dim, char *err, size_t errlen) {
    size_t len;
    unsigned char *buf = read_all(path, &len, err, errlen);
    if (!buf) return -1;
    char *text = realloc(buf, len + 1);
    if (!text) abort();
    text[len] = 0;
    size_t cap = 1024, n = 0;
    float *vals = malloc(cap * sizeof *vals);
    int rows = 0, line = 0, all_int = 1;
    float maxv = 0;
    int rc = -1;
    for (char *p = text; *p;) {
        char *eol = strchr(p, '\n');
        if (eol) *eol = 0;
        line++;
        char *s = p;
        p = eol ? eol + 1 : p + strlen(p);
        while (*s == ' ' || *s == '\t' || *s == '\r') s++;
        if (!*s) continue;
        int count = 0;
        for (char *q = s;;) {
            char *e;
            float v = strtof(q, &e);
            if (e == q) {
                if (line == 1 && rows == 0 && count == 0) break; /* a header */
                data_fail(err, errlen, "%s:%d: not a number: '%.20s'", path, line, q);
                goto done;
            }
            if (!isfinite(v)) {
                data_fail(err, errlen, "%s:%d: value %d is not finite", path, line, count + 1);
                goto done;
            }
            if (n == cap) {
                cap *= 2;
                vals = realloc(vals, cap * sizeof *vals);
                if (!vals) abort();
            }
            vals[n++] = v;
            count++;
            all_int &= v == floorf(v) && v >= 0;
            if (v > maxv) maxv = v;
            while (*e == ' ' || *e == '\t' || *e == '\r') e++;
            if (*e == ',') {
                q = e + 1;
                continue;
            }
            if (*e) {
                data_fail(err, errlen, "%s:%d: unexpected '%c' after value %d", path, line, *e, count);
                goto done;
            }
            break;
        }
        if (count == 0) continue;
        if (count != dim) {
            data_fail(err, errlen, "%s:%d: the line has %d values, but the model's data declares %d", path, line, count, dim);
            goto done;
        }
        rows++;
    }
    if (rows == 0) {
        data_fail(err, errlen, "%s: holds no examples", path);
        goto done;
    }
    ds->n = rows;
    ds->dim = dim;
    if (all_int && maxv > 1 && maxv <= 255) {
        ds->u8 = malloc(n);
        if (!ds->u8) abort();
        for (size_t i = 0; i < n; i++) ds->u8[i] = (uint8_t)vals[i];
        ds->scale = 1.0f / 255.0f;
    } else {
        ds->f32 = vals;
        vals = NULL;
    }
    rc = 0;
done:
    free(vals);
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
    ds->binary = binary;
    if (rc == 0 && binary && !ds->bits) pack_bits(ds);
    return rc;
}

static int load_source(vr_dataset *ds, const char *source, const char *data_dir, int dim, int binary, char *err,
                       size_t errlen) {
    memset(ds, 0, sizeof *ds);
    char path[4096];
    if (strncmp(source, "fashion-mnist:", 14) == 0) {
        const char *split = source + 14, *file;
        if (strcmp(split, "train") == 0)
            file = "train-images-idx3-ubyte";
        else if (strcmp(split, "test") == 0)
            file = "t10k-images-idx3-ubyte";
        else
            return data_fail(err, errlen, "%s: unknown data set split '%s' (expected fashion-mnist:train or fashion-mnist:test)",
                        source, split);
        const char *dir = data_dir ? data_dir : getenv("VAE_DATA_DIR");
        if (!dir || !*dir) dir = DEFAULT_FASHION_DIR;
        snprintf(path, sizeof path, "%s/%s.gz", dir, file);
        FILE *f = fopen(path, "rb");
        if (f)
            fclose(f);
        else {
            snprintf(path, sizeof path, "%s/%s", dir, file);
            f = fopen(path, "rb");
            if (!f)
                return data_fail(err, errlen,
                            "%s: not found in %s (install Debian's dataset-fashion-mnist, or point --data-dir or "
                            "VAE_DATA_DIR at the IDX files)",
                            source, dir);
            fclose(f);
        }
        return load_idx(ds, path, dim, binary, err, errlen);
    }
    if (ends_with(source, ".npy")) return load_npy(ds, source, dim, err, errlen);
    if (ends_with(source, ".csv")) return load_csv(ds, source, dim, err, errlen);
    if (ends_with(source, ".idx") || ends_with(source, ".idx.gz") || ends_with(source, "-ubyte") ||
        ends_with(source, "-ubyte.gz") || ends_with(source, ".gz"))
        return load_idx(ds, source, dim, binary, err, errlen);
    return data_fail(err, errlen, "%s: unknown kind of data source (expected fashion-mnist:train, fashion-mnist:test, or "
                             "a .idx, .idx.gz, .npy or .csv file)", source);
}

void vr_data_free(vr_dataset *ds) {
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
                if (ds->binary)                                                                                    \
                    for (int j = 0; j < d; j++) o[j] = (T)(s[j] >= 128); /* above half of 0..255 */                \
                else                                                                                               \
                    for (int j = 0; j < d; j++) o[j] = (T)(s[j] * ds->scale);                                      \
            } else {                                                                                               \
                const float *s = ds->f32 + (size_t)idx[i] * (size_t)d;                                             \
                if (ds->binary)                                                                                    \
                    for (int j = 0; j < d; j++) o[j] = (T)(s[j] > 0.5f);                                           \
                else                                                                                               \
                    for (int j = 0; j < d; j++) o[j] = (T)s[j];                                                    \
            }                                                                                                      \
        }                                                                                                          \
    }

DEFINE_GATHER(vr_data_gather_f32, float)
DEFINE_GATHER(vr_data_gather_f64, double)
