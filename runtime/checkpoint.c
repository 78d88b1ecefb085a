/* Checkpoints: parameters (and optionally Adam's state) with the model's
 * tensor names and shapes, a magic number, a format version and a CRC-32.
 *
 *   "VAECKPT\0"  u32 version  u32 len, model name
 *   u32 ntensors; per tensor: u32 len, name, u32 ndims, u32 dims[ndims]
 *   u32 has_optimizer, i64 step
 *   f32 params[total]  (then m[total], v[total] when has_optimizer)
 *   u32 crc32 of everything above
 * The CRC is zlib's CRC-32, computed here so that emitted C needs no zlib.
 * Integers and floats are little-endian (the byte order of every machine vaec
 * builds on; the loader refuses a file whose CRC does not match).
 * Saving writes a temporary file in the same folder, fsyncs it and renames it
 * over the old checkpoint, so a crash never leaves a half-written file. */
#include "vae/runtime.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CKPT_MAGIC "VAECKPT"
#define CKPT_VERSION 1u

static int ckpt_fail(char *err, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32). */
static uint32_t crc32_update(uint32_t crc, const void *data, size_t n) {
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

typedef struct {
    FILE *f;
    uint32_t crc;
    int bad;
} writer;

static void put(writer *w, const void *p, size_t n) {
    if (n == 0) return;
    if (fwrite(p, 1, n, w->f) != n) w->bad = 1;
    w->crc = crc32_update(w->crc, p, n);
}

static void put32(writer *w, uint32_t v) { put(w, &v, 4); }

int vr_checkpoint_save(const char *path, const char *model, const vr_tensor_info *t, int nt, const float *params,
                       const float *m, const float *v, long step, char *err, size_t errlen) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) abort();
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    writer w = {fopen(tmp, "wb"), 0, 0};
    if (!w.f) {
        ckpt_fail(err, errlen, "%s: cannot write the checkpoint: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    long total = 0;
    put(&w, CKPT_MAGIC, 8);
    put32(&w, CKPT_VERSION);
    put32(&w, (uint32_t)strlen(model));
    put(&w, model, strlen(model));
    put32(&w, (uint32_t)nt);
    for (int i = 0; i < nt; i++) {
        put32(&w, (uint32_t)strlen(t[i].name));
        put(&w, t[i].name, strlen(t[i].name));
        put32(&w, (uint32_t)t[i].ndims);
        for (int d = 0; d < t[i].ndims; d++) put32(&w, (uint32_t)t[i].dims[d]);
        total += t[i].size;
    }
    put32(&w, m && v ? 1u : 0u);
    int64_t s64 = step;
    put(&w, &s64, 8);
    put(&w, params, sizeof(float) * (size_t)total);
    if (m && v) {
        put(&w, m, sizeof(float) * (size_t)total);
        put(&w, v, sizeof(float) * (size_t)total);
    }
    uint32_t crc = w.crc;
    if (fwrite(&crc, 4, 1, w.f) != 1) w.bad = 1;
    if (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0) w.bad = 1;
    if (fclose(w.f) != 0) w.bad = 1;
    if (w.bad || rename(tmp, path) != 0) {
        ckpt_fail(err, errlen, "%s: cannot write the checkpoint: %s", path, strerror(errno ? errno : EIO));
        remove(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

typedef struct {
    const unsigned char *p, *end;
    int bad;
} reader;

static int get(reader *r, void *out, size_t n) {
    if ((size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return -1;
    }
    memcpy(out, r->p, n);
    r->p += n;
    return 0;
}

static uint32_t get32(reader *r) {
    uint32_t v = 0;
    get(r, &v, 4);
    return v;
}

static void shape_str(char *buf, size_t len, int nd, const uint32_t *dims32, const int *dims) {
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < nd && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%u", i ? ", " : "", dims32 ? dims32[i] : (uint32_t)dims[i]);
    if (n < len) snprintf(buf + n, len - n, "]");
}

int vr_checkpoint_load(const char *path, const vr_tensor_info *t, int nt, float *params, float *m, float *v,
                       long *step, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return ckpt_fail(err, errlen, "%s: cannot open the checkpoint: %s", path, strerror(errno));
    struct stat st; /* a directory opens, and its "size" was a malloc that aborted */
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return ckpt_fail(err, errlen, "%s: not a checkpoint: not a regular file", path);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len < 0) len = 0;
    unsigned char *buf = malloc((size_t)len + 1);
    if (!buf) abort();
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    int rc = -1;
    reader r = {buf, buf + got, 0};
    char magic[8];
    if (got < 12 || get(&r, magic, 8) || memcmp(magic, CKPT_MAGIC, 8) != 0) {
        ckpt_fail(err, errlen, "%s: not a vaec checkpoint (bad magic number)", path);
        goto done;
    }
    uint32_t version = get32(&r);
    if (version != CKPT_VERSION) {
        ckpt_fail(err, errlen, "%s: checkpoint format version %u is not supported (this vaec reads version %u)", path,
             version, CKPT_VERSION);
        goto done;
    }
    uint32_t crc_stored;
    memcpy(&crc_stored, buf + got - 4, 4);
    if (crc32_update(0, buf, got - 4) != crc_stored) {
        ckpt_fail(err, errlen, "%s: the checkpoint is truncated or corrupt (checksum mismatch)", path);
        goto done;
    }
    r.end = buf + got - 4;
    uint32_t mlen = get32(&r);
    if (mlen > 4096) r.bad = 1;
    char model[4097] = "";
    if (!r.bad) get(&r, model, mlen);
    uint32_t n = get32(&r);
    if (r.bad) {
        ckpt_fail(err, errlen, "%s: the checkpoint header is truncated", path);
        goto done;
    }
    if ((int)n != nt) {
        ckpt_fail(err, errlen, "%s: the checkpoint (model '%s') holds %u tensors, this model has %d", path, model, n, nt);
        goto done;
    }
    long total = 0;
    for (int i = 0; i < nt; i++) {
        uint32_t nl = get32(&r);
        char name[512] = "";
        if (nl >= sizeof name || get(&r, name, nl)) {
            ckpt_fail(err, errlen, "%s: the checkpoint header is malformed", path);
            goto done;
        }
        uint32_t nd = get32(&r), dims[8] = {0};
        if (nd > 8) {
            ckpt_fail(err, errlen, "%s: the checkpoint header is malformed", path);
            goto done;
        }
        for (uint32_t d = 0; d < nd; d++) dims[d] = get32(&r);
        if (r.bad) {
            ckpt_fail(err, errlen, "%s: the checkpoint header is truncated", path);
            goto done;
        }
        int same = strcmp(name, t[i].name) == 0 && (int)nd == t[i].ndims;
        for (int d = 0; same && d < t[i].ndims; d++) same = dims[d] == (uint32_t)t[i].dims[d];
        if (!same) {
            char a[128], b[128];
            shape_str(a, sizeof a, (int)nd, dims, NULL);
            shape_str(b, sizeof b, t[i].ndims, NULL, t[i].dims);
            ckpt_fail(err, errlen, "%s: does not fit this model: tensor %d is '%s' %s in the checkpoint, '%s' %s here", path,
                 i + 1, name, a, t[i].name, b);
            goto done;
        }
        total += t[i].size;
    }
    uint32_t has_opt = get32(&r);
    int64_t s64 = 0;
    get(&r, &s64, 8);
    size_t bytes = sizeof(float) * (size_t)total;
    if (get(&r, params, bytes)) {
        ckpt_fail(err, errlen, "%s: the checkpoint is truncated", path);
        goto done;
    }
    if (has_opt && m && v) {
        if (get(&r, m, bytes) || get(&r, v, bytes)) {
            ckpt_fail(err, errlen, "%s: the checkpoint is truncated", path);
            goto done;
        }
    }
    if (step) *step = has_opt ? (long)s64 : 0;
    rc = 0;
done:
    free(buf);
    return rc;
}
