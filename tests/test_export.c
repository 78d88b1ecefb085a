/* vaec export and its .npz writer (src/npz.c), read back by a zip and .npy reader of
 * this test's own, with a bitwise CRC-32 (not zlib's, which the writer uses): the end
 * record, every central directory entry against its local header, each member's CRC,
 * the .npy header (magic, version, 64-byte alignment, dtype, shape) and the floats,
 * byte for byte against what the checkpoint holds.  Then the command's refusals. */
#include <glob.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "parser/model.h"
#include "src/npz.h"
#include "testutil.h"
#include "vae/compiler.h"

static uint32_t crc32_bitwise(const unsigned char *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static uint32_t le(const unsigned char *p, int bytes) {
    uint32_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len + 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    buf[*n] = 0;
    return buf;
}

/* One array as the archive holds it. */
typedef struct {
    char name[256];
    int ndims, dims[8];
    const unsigned char *data;
    size_t data_len;
} npy_member;

/* The .npy inside a member: magic, version 1.0, a dict header ending in a newline whose
 * end is 64-byte aligned, little-endian float32 in C order; then the shape. */
static int parse_npy(const unsigned char *p, size_t n, npy_member *out) {
    if (n < 10 || memcmp(p, "\x93NUMPY\x01\x00", 8) != 0) return -1;
    size_t header_len = le(p + 8, 2);
    if (10 + header_len > n || (10 + header_len) % 64 != 0 || p[10 + header_len - 1] != '\n') return -1;
    char header[1024];
    if (header_len >= sizeof header) return -1;
    memcpy(header, p + 10, header_len);
    header[header_len] = 0;
    if (!strstr(header, "'descr': '<f4'") || !strstr(header, "'fortran_order': False")) return -1;
    const char *s = strstr(header, "'shape': (");
    if (!s) return -1;
    s += strlen("'shape': (");
    out->ndims = 0;
    while (*s != ')') {
        char *end;
        long d = strtol(s, &end, 10);
        if (end == s || out->ndims == 8) return -1;
        out->dims[out->ndims++] = (int)d;
        s = end;
        if (*s == ',') s++;
        while (*s == ' ') s++;
    }
    out->data = p + 10 + header_len;
    out->data_len = n - 10 - header_len;
    return 0;
}

/* The whole archive: every structure checked, the members in out[]; their count or -1. */
static int read_npz(const unsigned char *z, size_t n, npy_member *out, int max) {
    if (n < 22 || le(z + n - 22, 4) != 0x06054B50u) return -1;
    const unsigned char *end = z + n - 22;
    int count = (int)le(end + 10, 2);
    uint32_t cd_size = le(end + 12, 4), cd_offset = le(end + 16, 4);
    if (count > max || le(end + 8, 2) != (uint32_t)count || (size_t)cd_offset + cd_size != n - 22) return -1;
    const unsigned char *c = z + cd_offset;
    uint32_t expected_offset = 0;
    for (int i = 0; i < count; i++) {
        if (c + 46 > end || le(c, 4) != 0x02014B50u || le(c + 10, 2) != 0) return -1; /* stored */
        uint32_t crc = le(c + 16, 4), size = le(c + 20, 4), name_len = le(c + 28, 2);
        uint32_t offset = le(c + 42, 4);
        if (le(c + 24, 4) != size || le(c + 30, 2) || le(c + 32, 2) || offset != expected_offset) return -1;
        const unsigned char *l = z + offset;
        if (le(l, 4) != 0x04034B50u || le(l + 14, 4) != crc || le(l + 18, 4) != size || le(l + 22, 4) != size ||
            le(l + 26, 2) != name_len || le(l + 28, 2) != 0 || memcmp(l + 30, c + 46, name_len) != 0)
            return -1;
        const unsigned char *member = l + 30 + name_len;
        if (crc32_bitwise(member, size) != crc || name_len < 5 || name_len - 4 >= sizeof out[i].name ||
            memcmp(c + 46 + name_len - 4, ".npy", 4) != 0 || parse_npy(member, size, &out[i]))
            return -1;
        memcpy(out[i].name, c + 46, name_len - 4);
        out[i].name[name_len - 4] = 0;
        expected_offset = offset + 30 + name_len + size;
        c += 46 + name_len;
    }
    return expected_offset == cd_offset ? count : -1;
}

/* ---- the writer, called directly: ranks 0 to 3, and the same bytes every time */
static void test_npz_ranks(void) {
    float scalar = 2.5f, vec[3] = {1, -2, 3}, mat[6], cube[24];
    for (int i = 0; i < 6; i++) mat[i] = 0.5f * (float)i;
    for (int i = 0; i < 24; i++) cube[i] = -0.25f * (float)i;
    int d1[] = {3}, d2[] = {2, 3}, d3[] = {2, 3, 4};
    npz_array a[] = {{"s", 0, NULL, &scalar}, {"v.bias", 1, d1, vec}, {"m.weight", 2, d2, mat}, {"c", 3, d3, cube}};
    char *path = strdup(tmp_path(".npz")), *again = strdup(tmp_path(".npz"));
    char err[512];
    CU_ASSERT_EQUAL_FATAL(npz_write(path, a, 4, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(npz_write(again, a, 4, err, sizeof err), 0);
    size_t n = 0, n2 = 0;
    unsigned char *z = slurp(path, &n), *z2 = slurp(again, &n2);
    npy_member m[4];
    CU_ASSERT_EQUAL_FATAL(read_npz(z, n, m, 4), 4);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_STRING_EQUAL(m[i].name, a[i].name);
        CU_ASSERT_EQUAL_FATAL(m[i].ndims, a[i].ndims);
        size_t count = 1;
        for (int d = 0; d < a[i].ndims; d++) {
            CU_ASSERT_EQUAL(m[i].dims[d], a[i].dims[d]);
            count *= (size_t)a[i].dims[d];
        }
        CU_ASSERT(m[i].data_len == 4 * count && memcmp(m[i].data, a[i].data, 4 * count) == 0);
    }
    CU_ASSERT(n == n2 && memcmp(z, z2, n) == 0);
    z[n / 2] ^= 0x40; /* the reader can fail */
    CU_ASSERT_EQUAL(read_npz(z, n, m, 4), -1);
    free(z);
    free(z2);
    remove(path);
    remove(again);
    free(path);
    free(again);
}

/* ---- the command */
static char vaec[1024], examples[1024];

static void find_programs(void) {
    const char *b = getenv("top_builddir"), *s = getenv("top_srcdir");
    snprintf(vaec, sizeof vaec, "%s/vaec", b && *b ? b : ".");
    snprintf(examples, sizeof examples, "%s/examples", s && *s ? s : "..");
}

/* Runs vaec with args; its exit status, stderr in err_out. */
static int run_vaec(const char *args, char *err_out, size_t len) {
    const char *err_path = tmp_path(".err");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>'%s'", vaec, args, err_path);
    int status = system(cmd);
    size_t n = 0;
    unsigned char *text = slurp(err_path, &n);
    snprintf(err_out, len, "%s", text ? (char *)text : "");
    free(text);
    remove(err_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A checkpoint of the model with a different value in every float (and other values as
 * Adam's moments, which export must leave out); returns the parameters. */
static float *save_checkpoint(const vae_model *m, const char *path) {
    vr_tensor_info t[VAE_MAX_PARAMS];
    for (int i = 0; i < m->nparams; i++)
        t[i] = (vr_tensor_info){m->params[i].name, m->params[i].ndims, {0}, m->params[i].size};
    for (int i = 0; i < m->nparams; i++) memcpy(t[i].dims, m->params[i].dims, sizeof t[i].dims);
    size_t n = (size_t)m->param_floats;
    float *p = malloc(n * sizeof(float)), *mom = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = (float)i * 1e-3f - 7.0f, mom[i] = 9.0f;
    char err[512];
    CU_ASSERT_EQUAL(vr_checkpoint_save(path, m->name, t, m->nparams, p, mom, mom, 42, err, sizeof err), 0);
    free(mom);
    return p;
}

static void check_export_of(const char *example) {
    char model[1200], args[4096], err[2048];
    snprintf(model, sizeof model, "%s/%s", examples, example);
    vae_unit *u = vae_unit_load(model, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    const vae_model *m = vae_unit_model(u);
    char *ckpt = strdup(tmp_path(".vaeckpt")), *out = strdup(tmp_path(".npz"));
    float *p = save_checkpoint(m, ckpt);
    snprintf(args, sizeof args, "export '%s' --params '%s' -o '%s'", model, ckpt, out);
    CU_ASSERT_EQUAL_FATAL(run_vaec(args, err, sizeof err), 0);
    size_t n = 0;
    unsigned char *z = slurp(out, &n);
    npy_member *a = calloc(VAE_MAX_PARAMS, sizeof *a);
    CU_ASSERT_EQUAL_FATAL(read_npz(z, n, a, VAE_MAX_PARAMS), m->nparams);
    long offset = 0;
    for (int i = 0; i < m->nparams; i++) {
        const vae_param *t = &m->params[i];
        CU_ASSERT_STRING_EQUAL(a[i].name, t->name);
        CU_ASSERT_EQUAL(a[i].ndims, t->ndims);
        for (int d = 0; d < t->ndims; d++) CU_ASSERT_EQUAL(a[i].dims[d], t->dims[d]);
        CU_ASSERT(a[i].data_len == 4 * (size_t)t->size && memcmp(a[i].data, p + offset, a[i].data_len) == 0);
        offset += t->size;
    }
    CU_ASSERT_EQUAL(offset, m->param_floats);
    free(a);
    free(z);
    free(p);
    remove(ckpt);
    remove(out);
    free(ckpt);
    free(out);
    vae_unit_free(u);
}

/* Dense, convolutional (4-d weights) and mixture (a learned prior) models. */
static void test_export_examples(void) {
    find_programs();
    check_export_of("fashion_gauss.vae");
    check_export_of("fashion_conv.vae");
    check_export_of("mixture_analytic.vae");
}

/* Runs a failing export and checks its status and message; the output keeps its old bytes. */
static void refused(const char *args, const char *out, const char *message) {
    char err[2048];
    int rc = run_vaec(args, err, sizeof err);
    CU_ASSERT_EQUAL(rc, 1);
    if (!strstr(err, message)) fprintf(stderr, "\nexpected '%s' in: %s\n", message, err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, message));
    size_t n = 0;
    unsigned char *kept = out ? slurp(out, &n) : NULL;
    if (out) CU_ASSERT(kept && n == 4 && memcmp(kept, "keep", 4) == 0);
    free(kept);
}

static void test_export_refusals(void) {
    find_programs();
    char gauss[1200], mixture[1200], args[4096], message[1200];
    snprintf(gauss, sizeof gauss, "%s/fashion_gauss.vae", examples);
    snprintf(mixture, sizeof mixture, "%s/mixture_analytic.vae", examples);
    vae_unit *u = vae_unit_load(mixture, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    char *ckpt = strdup(tmp_path(".vaeckpt")), *out = strdup(tmp_path(".npz")), *link = strdup(tmp_path(".link.npz"));
    free(save_checkpoint(vae_unit_model(u), ckpt));
    vae_unit_free(u);
    write_file(out, "keep", 4);
    CU_ASSERT_EQUAL(symlink(out, link), 0);
#define EXPORT(...) snprintf(args, sizeof args, __VA_ARGS__)
    EXPORT("export '%s' --params '%s' -o '%s'", mixture, ckpt, link);
    refused(args, out, "is a symbolic link; vaec writes only to new names or over regular files");
    EXPORT("export '%s' --params '%s' -o /tmp", mixture, ckpt);
    refused(args, out, "/tmp: is a folder");
    EXPORT("export '%s' --params '%s' -o /dev/null", mixture, ckpt);
    refused(args, out, "/dev/null: is a device");
    EXPORT("export '%s' --params '%s' -o '%s.no-such-dir/x.npz'", mixture, ckpt, out);
    refused(args, out, "cannot write: No such file or directory");
    EXPORT("export '%s' -o '%s'", mixture, out);
    refused(args, out, "vaec export: error: --params CHECKPOINT is required");
    EXPORT("export '%s' --params '%s'", mixture, ckpt);
    refused(args, out, "vaec export: error: -o FILE.npz is required");
    EXPORT("export '%s' --params '%s' -o '%s' --seed 3", mixture, ckpt, out);
    refused(args, out, "vaec export: error: unknown option '--seed'");

    EXPORT("export '%s' --params '%s' -o '%s'", gauss, ckpt, out); /* another model's checkpoint */
    snprintf(message, sizeof message, "vaec export: error: %s: the checkpoint (model 'mixture_analytic') holds", ckpt);
    refused(args, out, message);
    EXPORT("export '%s' --params /tmp -o '%s'", mixture, out); /* a directory: this aborted in malloc */
    refused(args, out, "vaec export: error: /tmp: is a folder, not a checkpoint file");
    EXPORT("export '%s' --params '%s.missing' -o '%s'", mixture, ckpt, out);
    refused(args, out, "cannot open the checkpoint: No such file or directory");
    size_t n = 0;
    unsigned char *bytes = slurp(ckpt, &n);
    bytes[n / 2] ^= 0x01;
    write_file(ckpt, bytes, n);
    free(bytes);
    EXPORT("export '%s' --params '%s' -o '%s'", mixture, ckpt, out);
    snprintf(message, sizeof message, "%s: the checkpoint is truncated or corrupt (checksum mismatch)", ckpt);
    refused(args, out, message);
#undef EXPORT
    glob_t left;
    snprintf(message, sizeof message, "%s.tmp.*", out); /* no temporary file left behind */
    CU_ASSERT_EQUAL(glob(message, 0, NULL, &left), GLOB_NOMATCH);
    globfree(&left);
    remove(link);
    remove(ckpt);
    remove(out);
    free(link);
    free(ckpt);
    free(out);
}

int main(void) {
    static const test_case tests[] = {{"npz: ranks 0-3 read back, same bytes each time", test_npz_ranks},
                                      {"export: every tensor of three examples, byte for byte", test_export_examples},
                                      {"export: refusals keep the output as it was", test_export_refusals},
                                      {NULL, NULL}};
    return run_suite("export", tests);
}
