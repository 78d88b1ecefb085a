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
 * over the old checkpoint, so a crash never leaves a half-written file (the
 * output files below).  Loading refuses what is not a regular file, a file cut
 * short, and parameters that are NaN or infinite, naming the tensor. */
#include "vae/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
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

/* ---------------------------------------------------------------- output files
 * Every file vaec writes (checkpoints, log.csv's header, emit-c's and
 * emit-llvm's outputs) goes to PATH.tmp.PID, created new and never through a
 * link, is fsynced and renamed over PATH: PATH is either whole and old or whole
 * and new.  PATH itself must be a new name or a regular file, so that a
 * symlink, a device or a folder given as an output is refused, not replaced.
 * The temporary paths are registered: SIGINT, SIGTERM and SIGHUP remove them
 * before the process dies (the handler calls only unlink, signal and raise,
 * which are async-signal-safe; it is installed only where the signal's action
 * is the default, so a program embedding the runtime keeps its own handlers).  A temporary file left by `kill -9` keeps its PID in its
 * name; the trainer removes such files when their process is gone. */
#define VR_TMP_SLOTS 4
static char tmp_paths[VR_TMP_SLOTS][VR_PATH_MAX + 32];
static volatile sig_atomic_t tmp_live[VR_TMP_SLOTS];

static void remove_temps_and_die(int sig) {
    for (int i = 0; i < VR_TMP_SLOTS; i++)
        if (tmp_live[i]) unlink(tmp_paths[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int register_temp(const char *tmp) {
    static int handlers;
    if (!handlers) { /* only where the signal would kill the process: a program's own handler stays */
        static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
        struct sigaction sa, old;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = remove_temps_and_die;
        sigemptyset(&sa.sa_mask);
        for (int i = 0; i < 3; i++)
            if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL) sigaction(sigs[i], &sa, NULL);
        handlers = 1;
    }
    for (int i = 0; i < VR_TMP_SLOTS; i++)
        if (!tmp_live[i]) {
            snprintf(tmp_paths[i], sizeof tmp_paths[i], "%s", tmp);
            tmp_live[i] = 1; /* set after the path is whole: the handler never reads half a path */
            return i;
        }
    return -1;
}

static void unregister_temp(int slot) {
    if (slot >= 0) tmp_live[slot] = 0;
}

int vr_output_check(const char *path, char *err, size_t errlen) {
    struct stat st;
    if (strlen(path) > VR_PATH_MAX) return ckpt_fail(err, errlen, "%s: the path is too long", path);
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return 0;
        return ckpt_fail(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    }
    if (S_ISREG(st.st_mode)) return 0;
    const char *what = S_ISLNK(st.st_mode)   ? "a symbolic link"
                       : S_ISDIR(st.st_mode) ? "a folder"
                       : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                    : "not a regular file";
    return ckpt_fail(err, errlen, "%s: is %s; vaec writes only to new names or over regular files", path, what);
}

int vr_output_open(vr_output *out, const char *path, char *err, size_t errlen) {
    out->f = NULL;
    out->path = path;
    out->slot = -1;
    if (vr_output_check(path, err, errlen)) return -1;
    snprintf(out->tmp, sizeof out->tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(out->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0666);
    if (fd < 0 && errno == EEXIST) { /* left by a killed process that had this PID */
        unlink(out->tmp);
        fd = open(out->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0666);
    }
    if (fd < 0) return ckpt_fail(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    out->slot = register_temp(out->tmp);
    out->f = fdopen(fd, "wb");
    if (!out->f) {
        close(fd);
        vr_output_discard(out);
        return ckpt_fail(err, errlen, "%s: cannot write: %s", path, strerror(ENOMEM));
    }
    return 0;
}

void vr_output_discard(vr_output *out) {
    if (out->f) fclose(out->f);
    out->f = NULL;
    unlink(out->tmp);
    unregister_temp(out->slot);
    out->slot = -1;
}

int vr_output_commit(vr_output *out, char *err, size_t errlen) {
    int bad = ferror(out->f) || fflush(out->f) != 0 || fsync(fileno(out->f)) != 0;
    int e = errno;
    if (fclose(out->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    out->f = NULL;
    if (!bad && vr_output_check(out->path, err, errlen)) { /* it became a link or a device meanwhile */
        vr_output_discard(out);
        return -1;
    }
    if (bad || rename(out->tmp, out->path) != 0) {
        if (!bad) e = errno;
        vr_output_discard(out);
        return ckpt_fail(err, errlen, "%s: cannot write: %s", out->path, strerror(e ? e : EIO));
    }
    unregister_temp(out->slot);
    out->slot = -1;
    return 0;
}

/* ---------------------------------------------------------------- saving */

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
    vr_output out;
    if (vr_output_open(&out, path, err, errlen)) return -1;
    writer w = {out.f, 0, 0};
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
    if (w.bad) {
        int e = errno;
        vr_output_discard(&out);
        return ckpt_fail(err, errlen, "%s: cannot write the checkpoint: %s", path, strerror(e ? e : EIO));
    }
    if (vr_output_commit(&out, err, errlen)) return -1;
    return 0;
}

/* ---------------------------------------------------------------- loading */

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

/* The whole of a checkpoint file in memory (*len bytes), or NULL with err set:
 * a folder, a device or a file that cannot be read is refused by name. */
static unsigned char *read_checkpoint_file(const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        ckpt_fail(err, errlen, "%s: cannot open the checkpoint: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        ckpt_fail(err, errlen, "%s: is %s, not a checkpoint file", path,
                  S_ISDIR(st.st_mode) ? "a folder" : "not a regular file");
        fclose(f);
        return NULL;
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) abort();
    *len = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f)) {
        ckpt_fail(err, errlen, "%s: cannot read the checkpoint: %s", path, strerror(errno));
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* One tensor's header into name[512], *nd and dims[8]; 0, or -1 with err set. */
static int read_tensor_header(reader *r, const char *path, char *name, uint32_t *nd, uint32_t *dims, char *err,
                              size_t errlen) {
    uint32_t nl = get32(r);
    memset(name, 0, 512);
    if (nl >= 512 || get(r, name, nl)) return ckpt_fail(err, errlen, "%s: the checkpoint header is malformed", path);
    *nd = get32(r);
    if (*nd > 8) return ckpt_fail(err, errlen, "%s: the checkpoint header is malformed", path);
    for (uint32_t d = 0; d < *nd; d++) dims[d] = get32(r);
    if (r->bad) return ckpt_fail(err, errlen, "%s: the checkpoint header is truncated", path);
    return 0;
}

/* Reads the tensor table and checks it against t[]; 0, or -1 with err set. */
static int read_tensor_table(reader *r, const char *path, const char *model, const vr_tensor_info *t, int nt, char *err,
                             size_t errlen) {
    uint32_t n = get32(r);
    if (r->bad) return ckpt_fail(err, errlen, "%s: the checkpoint header is truncated", path);
    if ((int)n != nt)
        return ckpt_fail(err, errlen, "%s: the checkpoint (model '%s') holds %u tensors, this model has %d", path, model,
                         n, nt);
    for (int i = 0; i < nt; i++) {
        char name[512];
        uint32_t nd = 0, dims[8] = {0};
        if (read_tensor_header(r, path, name, &nd, dims, err, errlen)) return -1;
        int same = strcmp(name, t[i].name) == 0 && (int)nd == t[i].ndims;
        for (int d = 0; same && d < t[i].ndims; d++) same = dims[d] == (uint32_t)t[i].dims[d];
        if (!same) {
            char a[128], b[128];
            shape_str(a, sizeof a, (int)nd, dims, NULL);
            shape_str(b, sizeof b, t[i].ndims, NULL, t[i].dims);
            return ckpt_fail(err, errlen, "%s: does not fit this model: tensor %d is '%s' %s in the checkpoint, '%s' %s here",
                             path, i + 1, name, a, t[i].name, b);
        }
    }
    return 0;
}

/* A checkpoint's parameters (or Adam's moments) must all be finite: training
 * never saves NaN, so one found is a damaged or foreign file. */
static int check_finite(const char *path, const char *what, const vr_tensor_info *t, int nt, const float *x, char *err,
                        size_t errlen) {
    long off = 0;
    for (int i = 0; i < nt; i++) {
        for (long k = 0; k < t[i].size; k++)
            if (!isfinite(x[off + k]))
                return ckpt_fail(err, errlen, "%s: the checkpoint's %s of tensor '%s' hold %s (element %ld)", path, what,
                                 t[i].name, isnan(x[off + k]) ? "NaN" : "an infinite value", k);
        off += t[i].size;
    }
    return 0;
}

/* The checkpoint at path, read whole and checked (magic number, version, CRC), with r past
 * its model name (model[4097]); the buffer to free, or NULL with err set. */
static unsigned char *open_checkpoint(const char *path, reader *r, char *model, char *err, size_t errlen) {
    size_t got = 0;
    unsigned char *buf = read_checkpoint_file(path, &got, err, errlen);
    if (!buf) return NULL;
    *r = (reader){buf, buf + got, 0};
    char magic[8];
    uint32_t version = 0, crc_stored = 0;
    if (got >= 12) memcpy(&crc_stored, buf + got - 4, 4);
    if (got < 12 || get(r, magic, 8) || memcmp(magic, CKPT_MAGIC, 8) != 0)
        ckpt_fail(err, errlen, got < 12 && got > 0 && memcmp(buf, CKPT_MAGIC, got < 8 ? got : 8) == 0
                                   ? "%s: the checkpoint is truncated"
                                   : "%s: not a vaec checkpoint (bad magic number)",
                  path);
    else if ((version = get32(r)) != CKPT_VERSION)
        ckpt_fail(err, errlen, "%s: checkpoint format version %u is not supported (this vaec reads version %u)", path,
                  version, CKPT_VERSION);
    else if (crc32_update(0, buf, got - 4) != crc_stored)
        ckpt_fail(err, errlen, "%s: the checkpoint is truncated or corrupt (checksum mismatch)", path);
    else {
        r->end = buf + got - 4;
        uint32_t mlen = get32(r);
        if (mlen > 4096) r->bad = 1;
        model[0] = 0;
        if (!r->bad && !get(r, model, mlen)) model[mlen] = 0;
        return buf;
    }
    free(buf);
    return NULL;
}

int vr_checkpoint_load(const char *path, const vr_tensor_info *t, int nt, float *params, float *m, float *v,
                       long *step, char *err, size_t errlen) {
    reader r;
    char model[4097];
    unsigned char *buf = open_checkpoint(path, &r, model, err, errlen);
    if (!buf) return -1;
    int rc = -1;
    if (read_tensor_table(&r, path, model, t, nt, err, errlen)) goto done;
    long total = 0;
    for (int i = 0; i < nt; i++) total += t[i].size;
    uint32_t has_opt = get32(&r);
    int64_t s64 = 0;
    get(&r, &s64, 8);
    size_t bytes = sizeof(float) * (size_t)total;
    if (get(&r, params, bytes) || (has_opt && m && v && (get(&r, m, bytes) || get(&r, v, bytes)))) {
        ckpt_fail(err, errlen, "%s: the checkpoint is truncated", path);
        goto done;
    }
    if (check_finite(path, "parameters", t, nt, params, err, errlen) ||
        (has_opt && m && v &&
         (check_finite(path, "Adam moments", t, nt, m, err, errlen) || check_finite(path, "Adam moments", t, nt, v, err, errlen))))
        goto done;
    if (step) *step = has_opt ? (long)s64 : 0;
    rc = 0;
done:
    free(buf);
    return rc;
}

/* The table of a checkpoint whatever model wrote it: its tensors' headers into c->t. */
static int read_any_table(reader *r, const char *path, vr_checkpoint_contents *c, char *err, size_t errlen) {
    uint32_t n = get32(r);
    if (r->bad || n > (size_t)(r->end - r->p) / 8) /* a header is at least 8 bytes */
        return ckpt_fail(err, errlen, "%s: the checkpoint header is truncated", path);
    c->t = calloc(n ? n : 1, sizeof *c->t);
    if (!c->t) abort();
    for (uint32_t i = 0; i < n; i++) {
        char name[512];
        uint32_t nd = 0, dims[8] = {0};
        if (read_tensor_header(r, path, name, &nd, dims, err, errlen)) return -1;
        vr_tensor_info *t = &c->t[c->n++];
        size_t len = strlen(name) + 1;
        char *copy = malloc(len);
        if (!copy) abort();
        t->name = memcpy(copy, name, len);
        t->ndims = (int)nd;
        t->size = 1;
        for (uint32_t d = 0; d < nd; d++) {
            t->dims[d] = (int)dims[d];
            if (dims[d] > INT32_MAX || (dims[d] && (uint64_t)t->size > (uint64_t)(r->end - r->p) / dims[d]))
                return ckpt_fail(err, errlen, "%s: the checkpoint is truncated (tensor '%s')", path, name);
            t->size *= (long)dims[d];
        }
    }
    return 0;
}

int vr_checkpoint_read(const char *path, vr_checkpoint_contents *c, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    reader r;
    char model[4097];
    unsigned char *buf = open_checkpoint(path, &r, model, err, errlen);
    if (!buf) return -1;
    int rc = -1;
    if (read_any_table(&r, path, c, err, errlen)) goto done;
    size_t total = 0;
    for (int i = 0; i < c->n; i++) total += (size_t)c->t[i].size;
    get32(&r); /* has optimiser state, and the step: not needed here */
    int64_t s64;
    get(&r, &s64, 8);
    if (total > (size_t)(r.end - r.p) / sizeof(float)) {
        ckpt_fail(err, errlen, "%s: the checkpoint is truncated", path);
        goto done;
    }
    c->params = malloc(sizeof(float) * (total ? total : 1));
    if (!c->params) abort();
    get(&r, c->params, sizeof(float) * total);
    rc = check_finite(path, "parameters", c->t, c->n, c->params, err, errlen);
done:
    free(buf);
    if (rc) vr_checkpoint_contents_free(c);
    return rc;
}

void vr_checkpoint_contents_free(vr_checkpoint_contents *c) {
    for (int i = 0; i < c->n; i++) free((char *)c->t[i].name);
    free(c->t);
    free(c->params);
    memset(c, 0, sizeof *c);
}

long vr_checkpoint_find(const vr_checkpoint_contents *c, const vr_tensor_info *t, char *err, size_t errlen) {
    long off = 0;
    for (int i = 0; i < c->n; off += c->t[i++].size) {
        if (strcmp(c->t[i].name, t->name) != 0) continue;
        int same = c->t[i].ndims == t->ndims;
        for (int d = 0; same && d < t->ndims; d++) same = c->t[i].dims[d] == t->dims[d];
        if (same) return off;
        char a[128], b[128];
        shape_str(a, sizeof a, c->t[i].ndims, NULL, c->t[i].dims);
        shape_str(b, sizeof b, t->ndims, NULL, t->dims);
        ckpt_fail(err, errlen, "tensor '%s' is %s in the checkpoint, %s here", t->name, a, b);
        return -2;
    }
    return -1;
}
