/* .npz writer: a zip archive (PKWARE's APPNOTE.TXT) of stored, uncompressed .npy
 * members (NumPy's format.py, version 1.0), as numpy.savez writes.
 *
 *   per member: local file header (30 bytes + name), the .npy header, the floats
 *   then: one central directory entry per member (46 bytes + name), the end record (22)
 *
 * The CRC-32 of each member is zlib's.  Dates are fixed (1980-01-01), so the same
 * arrays always give the same bytes.  Without Zip64, members and offsets must stay
 * under 4 GiB: larger exports are refused before anything is written. */
#include "src/npz.h"

#include "vae/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define ZIP_LOCAL_SIGNATURE 0x04034B50u
#define ZIP_CENTRAL_SIGNATURE 0x02014B50u
#define ZIP_END_SIGNATURE 0x06054B50u
#define ZIP_VERSION 20        /* 2.0, as Python's zipfile writes */
#define ZIP_DOS_DATE 0x0021   /* 1980-01-01, the first day zip can say */
#define ZIP_LOCAL_SIZE 30u
#define ZIP_CENTRAL_SIZE 46u
#define ZIP_END_SIZE 22u
#define ZIP32_MAX 0xFFFFFFFFull
#define NPY_ALIGN 64 /* numpy aligns the data to 64 bytes after its header */
#define NPY_HEADER_MAX 384

typedef struct {
    char name[1024]; /* name.npy */
    unsigned char npy[NPY_HEADER_MAX];
    size_t npy_len;
    uint64_t data_len, offset;
    uint32_t crc;
} member;

typedef struct {
    FILE *f;
    int bad;
} zip_out;

static void put_bytes(zip_out *z, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, z->f) != n) z->bad = 1;
}

static void put_le(zip_out *z, uint64_t v, int bytes) {
    unsigned char b[8];
    for (int i = 0; i < bytes; i++) b[i] = (unsigned char)(v >> (8 * i));
    put_bytes(z, b, (size_t)bytes);
}

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* The .npy prefix: magic, version 1.0, header length, the header dict padded with spaces
 * and a newline so that the floats start at a multiple of 64. */
static size_t npy_header(const npz_array *a, unsigned char *out) {
    char dict[NPY_HEADER_MAX];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     host_is_little_endian() ? "<f4" : ">f4");
    for (int d = 0; d < a->ndims; d++) n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%d", d ? ", " : "", a->dims[d]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", a->ndims == 1 ? "," : "");
    size_t total = ((size_t)10 + (size_t)n + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN, header_len = total - 10;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)header_len;
    out[9] = (unsigned char)(header_len >> 8);
    memcpy(out + 10, dict, (size_t)n);
    memset(out + 10 + n, ' ', total - 10 - (size_t)n - 1);
    out[total - 1] = '\n';
    return total;
}

static uint32_t member_crc(const member *m, const float *data) {
    uLong crc = crc32(0L, m->npy, (uInt)m->npy_len);
    const unsigned char *p = (const unsigned char *)data;
    for (uint64_t left = m->data_len; left > 0;) { /* zlib takes 32-bit lengths */
        uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
        crc = crc32(crc, p, chunk);
        p += chunk;
        left -= chunk;
    }
    return (uint32_t)crc;
}

/* Names, headers, sizes, CRCs and offsets of every member; -1 (err) when the arrays
 * cannot be stored. */
static int plan_members(const char *path, const npz_array *a, int n, member *m, char *err, size_t errlen) {
    uint64_t offset = 0, central = 0;
    if (n > 0xFFFF) return snprintf(err, errlen, "%s: %d arrays are more than a zip holds", path, n), -1;
    for (int i = 0; i < n; i++) {
        if (!a[i].name[0] || a[i].ndims < 0 || a[i].ndims > 8 ||
            (size_t)snprintf(m[i].name, sizeof m[i].name, "%s.npy", a[i].name) >= sizeof m[i].name)
            return snprintf(err, errlen, "%s: array %d has no name, a name too long or a bad rank", path, i + 1), -1;
        uint64_t count = 1;
        for (int d = 0; d < a[i].ndims; d++) {
            if (a[i].dims[d] < 0) return snprintf(err, errlen, "%s: array '%s' has a negative dimension", path, a[i].name), -1;
            count = count > ZIP32_MAX ? count : count * (uint64_t)a[i].dims[d]; /* past 4 G, refused below */
        }
        m[i].npy_len = npy_header(&a[i], m[i].npy);
        m[i].data_len = count * sizeof(float);
        m[i].offset = offset;
        m[i].crc = member_crc(&m[i], a[i].data);
        size_t name_len = strlen(m[i].name);
        offset += ZIP_LOCAL_SIZE + name_len + m[i].npy_len + m[i].data_len;
        central += ZIP_CENTRAL_SIZE + name_len;
        if (m[i].npy_len + m[i].data_len > ZIP32_MAX || offset + central > ZIP32_MAX)
            return snprintf(err, errlen, "%s: the arrays exceed the 4 GiB a zip without Zip64 holds", path), -1;
    }
    return 0;
}

/* The fields that a local header and a central directory entry share, from "version needed" on. */
static void put_common(zip_out *z, const member *m) {
    put_le(z, ZIP_VERSION, 2);
    put_le(z, 0, 2); /* flags */
    put_le(z, 0, 2); /* method: stored */
    put_le(z, 0, 2); /* time 00:00 */
    put_le(z, ZIP_DOS_DATE, 2);
    put_le(z, m->crc, 4);
    put_le(z, m->npy_len + m->data_len, 4); /* compressed size */
    put_le(z, m->npy_len + m->data_len, 4); /* uncompressed size */
    put_le(z, strlen(m->name), 2);
    put_le(z, 0, 2); /* extra field length */
}

static void put_archive(zip_out *z, const npz_array *a, int n, const member *m) {
    uint64_t central_offset = 0, central_size = 0;
    for (int i = 0; i < n; i++) {
        put_le(z, ZIP_LOCAL_SIGNATURE, 4);
        put_common(z, &m[i]);
        put_bytes(z, m[i].name, strlen(m[i].name));
        put_bytes(z, m[i].npy, m[i].npy_len);
        put_bytes(z, a[i].data, m[i].data_len);
        central_offset = m[i].offset + ZIP_LOCAL_SIZE + strlen(m[i].name) + m[i].npy_len + m[i].data_len;
    }
    for (int i = 0; i < n; i++) {
        put_le(z, ZIP_CENTRAL_SIGNATURE, 4);
        put_le(z, ZIP_VERSION, 2); /* made by: MS-DOS attributes, spec 2.0 */
        put_common(z, &m[i]);
        put_le(z, 0, 2); /* comment length */
        put_le(z, 0, 2); /* disk number */
        put_le(z, 0, 2); /* internal attributes */
        put_le(z, 0, 4); /* external attributes */
        put_le(z, m[i].offset, 4);
        put_bytes(z, m[i].name, strlen(m[i].name));
        central_size += ZIP_CENTRAL_SIZE + strlen(m[i].name);
    }
    put_le(z, ZIP_END_SIGNATURE, 4);
    put_le(z, 0, 2); /* this disk */
    put_le(z, 0, 2); /* the disk where the central directory starts */
    put_le(z, (uint64_t)n, 2);
    put_le(z, (uint64_t)n, 2);
    put_le(z, central_size, 4);
    put_le(z, central_offset, 4);
    put_le(z, 0, 2); /* comment length */
}

/* Written through the runtime's vr_output: a new temporary file renamed over
 * path, which must be a new name or a regular file (a link, a device or a
 * folder is refused by name), removed on error and on signals. */
int npz_write(const char *path, const npz_array *arrays, int n, char *err, size_t errlen) {
    member *m = calloc((size_t)(n > 0 ? n : 1), sizeof *m);
    if (!m) abort();
    vr_output out;
    int rc = plan_members(path, arrays, n, m, err, errlen) || vr_output_open(&out, path, err, errlen) ? -1 : 0;
    if (!rc) {
        zip_out z = {out.f, 0};
        put_archive(&z, arrays, n, m);
        if (z.bad || ferror(out.f)) {
            snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno ? errno : EIO));
            vr_output_discard(&out);
            rc = -1;
        } else
            rc = vr_output_commit(&out, err, errlen);
    }
    free(m);
    return rc;
}
