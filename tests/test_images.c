/* The pictures: PNG grids read back with libpng's reader (not the writer's
 * code) and checked pixel by pixel against the values written; refusal of
 * symlinks, directories and devices as outputs; the curve plot from a log.csv;
 * and what a compiled model draws (state means, reconstructions, samples from
 * the prior) against the same arithmetic done by hand on its parameters. */
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <sys/stat.h>

#include "parser/model.h"
#include "src/images.h"
#include "src/pictures.h"
#include "src/plot.h"
#include "tests/testutil.h"
#include "vae/compiler.h"

/* ---------------------------------------------------------------- an independent PNG reader */

typedef struct {
    unsigned width, height;
    int bit_depth, color_type;
    unsigned char *px; /* rows of width * channels bytes */
} png_read_result;

static int read_png(const char *path, png_read_result *r) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_bytep *rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        free(rows);
        return -1;
    }
    png_init_io(png, f);
    png_read_info(png, info);
    r->width = png_get_image_width(png, info);
    r->height = png_get_image_height(png, info);
    r->bit_depth = png_get_bit_depth(png, info);
    r->color_type = png_get_color_type(png, info);
    size_t stride = png_get_rowbytes(png, info);
    r->px = malloc(stride * r->height);
    rows = malloc(sizeof *rows * r->height);
    for (unsigned y = 0; y < r->height; y++) rows[y] = r->px + y * stride;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    fclose(f);
    return 0;
}

static unsigned char expected_byte(float v) {
    if (isnan(v) || v <= 0) return 0;
    if (v >= 1) return 255;
    return (unsigned char)floor(v * 255.0 + 0.5);
}

/* No file named like the path's temporary files is left in its folder. */
static int leftovers(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

/* ---------------------------------------------------------------- grids */

static void test_gray_grid(void) {
    vaec_image_shape s = {1, 3, 4};
    enum { N = 5 };
    float img[N][12];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 12; j++) img[i][j] = (float)((i * 12 + j) * 37 % 101) / 90.0f - 0.05f; /* beyond [0, 1] too */
    img[2][5] = NAN;
    const float *tiles[N + 1] = {img[0], img[1], img[2], img[3], img[4], NULL}; /* the last one blank */
    const char *path = tmp_path(".png");
    char err[512];
    CU_ASSERT_EQUAL_FATAL(vaec_png_grid(path, tiles, N + 1, 2, s, err, sizeof err), 0);
    png_read_result r;
    CU_ASSERT_EQUAL_FATAL(read_png(path, &r), 0);
    int B = VAEC_GRID_BORDER;
    CU_ASSERT_EQUAL(r.width, (unsigned)(2 * 4 + 3 * B));
    CU_ASSERT_EQUAL(r.height, (unsigned)(3 * 3 + 4 * B));
    CU_ASSERT_EQUAL(r.bit_depth, 8);
    CU_ASSERT_EQUAL(r.color_type, PNG_COLOR_TYPE_GRAY);
    int bad = 0;
    for (unsigned y = 0; y < r.height; y++)
        for (unsigned x = 0; x < r.width; x++) {
            int tx = ((int)x - B) / (4 + B), ty = ((int)y - B) / (3 + B);
            int ix = (int)x - B - tx * (4 + B), iy = (int)y - B - ty * (3 + B);
            int inside = (int)x >= B && (int)y >= B && ix < 4 && iy < 3 && ty * 2 + tx < N;
            unsigned char want = inside ? expected_byte(img[ty * 2 + tx][iy * 4 + ix]) : VAEC_GRID_BORDER_VALUE;
            bad += r.px[y * r.width + x] != want;
        }
    CU_ASSERT_EQUAL(bad, 0);
    free(r.px);
    remove(path);
}

static void test_rgb_grid(void) {
    vaec_image_shape s = {3, 2, 2};
    float img[2][12];
    for (int i = 0; i < 24; i++) img[i / 12][i % 12] = (float)i / 23.0f;
    const char *path = tmp_path(".png");
    char err[512];
    const float *tiles[2] = {img[0], img[1]};
    CU_ASSERT_EQUAL_FATAL(vaec_png_grid(path, tiles, 2, 8, s, err, sizeof err), 0); /* cols > n: one row of 2 */
    png_read_result r;
    CU_ASSERT_EQUAL_FATAL(read_png(path, &r), 0);
    CU_ASSERT_EQUAL(r.color_type, PNG_COLOR_TYPE_RGB);
    CU_ASSERT_EQUAL(r.width, (unsigned)(2 * 2 + 3 * VAEC_GRID_BORDER));
    CU_ASSERT_EQUAL(r.height, (unsigned)(2 + 2 * VAEC_GRID_BORDER));
    int B = VAEC_GRID_BORDER, bad = 0;
    for (int t = 0; t < 2; t++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 2; x++)
                for (int c = 0; c < 3; c++) {
                    int X = B + t * (2 + B) + x, Y = B + y;
                    bad += r.px[(Y * r.width + X) * 3 + c] != expected_byte(img[t][c * 4 + y * 2 + x]); /* channels first */
                }
    CU_ASSERT_EQUAL(bad, 0);
    free(r.px);
    remove(path);
}

static void test_refused_outputs(void) {
    vaec_image_shape s = {1, 2, 2};
    float img[4] = {0, 0.5f, 1, 0.25f};
    const float *tiles[1] = {img};
    char err[512], dir[512], target[600], link[600];
    snprintf(dir, sizeof dir, "%s", tmp_path("-dir"));
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    snprintf(target, sizeof target, "%s/target.txt", dir);
    snprintf(link, sizeof link, "%s/link.png", dir);
    write_file(target, "keep", 4);
    CU_ASSERT_EQUAL_FATAL(symlink(target, link), 0);
    CU_ASSERT_EQUAL(vaec_png_grid(link, tiles, 1, 1, s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, link));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "symbolic link"));
    struct stat st;
    CU_ASSERT(stat(target, &st) == 0 && st.st_size == 4); /* the link's target is untouched */
    CU_ASSERT_EQUAL(vaec_png_grid(dir, tiles, 1, 1, s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is a folder"));
    /* A device: a FIFO here, and /dev/full only where /dev is not writable: as root, a writer
     * whose check were broken would rename its temporary file over the device itself. */
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/fifo.png", dir);
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    CU_ASSERT_EQUAL(vaec_png_grid(fifo, tiles, 1, 1, s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "fifo.png: is not a regular file"));
    remove(fifo);
    if (access("/dev", W_OK) != 0) {
        CU_ASSERT_EQUAL(vaec_png_grid("/dev/full", tiles, 1, 1, s, err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "/dev/full: is a device"));
    }
    char missing[700];
    snprintf(missing, sizeof missing, "%s/no/such/folder.png", dir);
    CU_ASSERT_EQUAL(vaec_png_grid(missing, tiles, 1, 1, s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot write"));
    /* libpng's own error (a width over its limit of a million) comes back as a message */
    char wide_path[600];
    snprintf(wide_path, sizeof wide_path, "%s/wide.png", dir);
    float *wide = calloc(1000001, sizeof(float));
    const float *wide_tile[1] = {wide};
    CU_ASSERT_EQUAL(vaec_png_grid(wide_path, wide_tile, 1, 1, (vaec_image_shape){1, 1, 1000001}, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "wide.png: cannot write the PNG: "));
    CU_ASSERT_EQUAL(access(wide_path, F_OK), -1);
    free(wide);
    /* a regular file is replaced whole */
    char fine[600];
    snprintf(fine, sizeof fine, "%s/fine.png", dir);
    write_file(fine, "old", 3);
    CU_ASSERT_EQUAL(vaec_png_grid(fine, tiles, 1, 1, s, err, sizeof err), 0);
    png_read_result r;
    CU_ASSERT_EQUAL(read_png(fine, &r), 0);
    CU_ASSERT_EQUAL(r.px[VAEC_GRID_BORDER * r.width + VAEC_GRID_BORDER + 1], 128); /* 0.5 */
    free(r.px);
    CU_ASSERT_EQUAL(leftovers(dir), 0);
    remove(fine);
    remove(link);
    remove(target);
    rmdir(dir);
}

/* ---------------------------------------------------------------- the curve plot */

static void test_plot(void) {
    const char *log = tmp_path(".csv"), *png = tmp_path(".png");
    const char *text = "# vaec 0.1.0\n# seed 1\n"
                       "epoch,step,train_ELBO,test_ELBO,test_recon,test_kl,test_exact_logpx,kl_weight_factor,seconds,examples_per_second\n"
                       "1,10,-200.5,-190.25,-170.0,20.25,nan,0.5000,1.0,100.0\n"
                       "2,20,-150.5,-149.0,-125.0,24.0,nan,1.0000,1.0,100.0\n"
                       "3,30,-140.0,-139.5,-114.5,25.0,-nan,1.0000,1.0,100.0\n";
    write_file(log, text, strlen(text));
    char err[512];
    CU_ASSERT_EQUAL_FATAL(vaec_plot_curves(log, png, err, sizeof err), 0);
    png_read_result r;
    CU_ASSERT_EQUAL_FATAL(read_png(png, &r), 0);
    CU_ASSERT_EQUAL(r.width, 960u);
    CU_ASSERT(r.height > 500); /* three panels: the KL weight changed */
    CU_ASSERT_EQUAL(r.bit_depth, 8);
    long colored = 0; /* pixels of the curves (neither gray nor white) */
    int ch = r.color_type == PNG_COLOR_TYPE_RGB ? 3 : 4;
    for (unsigned i = 0; i < r.width * r.height; i++) {
        unsigned char *p = r.px + (size_t)i * (size_t)ch;
        colored += p[0] != p[1] || p[1] != p[2];
    }
    CU_ASSERT(colored > 500);
    free(r.px);
    remove(png);

    /* bad logs: the file and line named, nothing written */
    static const char *const bad[] = {
        "epoch,train_ELBO\n1,-200\n2,-190,5\n", "epoch,train_ELBO\n1,abc\n", "train_ELBO\n-200\n", "epoch,train_ELBO\n", "",
    };
    static const char *const says[] = {":3: 3 fields where the header names 2", ":2: column train_ELBO: 'abc'",
                                       "no column named epoch", "no epochs yet", "empty"};
    for (int i = 0; i < 5; i++) {
        write_file(log, bad[i], strlen(bad[i]));
        CU_ASSERT_EQUAL(vaec_plot_curves(log, png, err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, log));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, says[i]));
        CU_ASSERT_EQUAL(access(png, F_OK), -1);
    }
    remove(log);
    CU_ASSERT_EQUAL(vaec_plot_curves(log, png, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot read"));
}

/* ---------------------------------------------------------------- what a model draws */

static const char *const MIXTURE =
    "model mix\n"
    "data x[1, 4, 4] : binary\n"
    "latent z ~ categorical(3)\n"
    "encoder q(z | x) {\n    return categorical(logits: dense(flatten(x), 3))\n}\n"
    "decoder p(x | z) {\n    return bernoulli(logits: reshape(dense(onehot(z), 16), 1, 4, 4))\n}\n"
    "estimator analytic\n";

static const char *const GAUSS =
    "model gauss\n"
    "data x[16] : binary\n"
    "latent z[2] ~ normal(0, 1)\n"
    "encoder q(z | x) {\n    return normal(mean: dense(x, 2), logvar: dense(x, 2))\n}\n"
    "decoder p(x | z) {\n    return bernoulli(logits: dense(z, 16))\n}\n"
    "estimator reparam\n";

typedef struct {
    vae_unit *u;
    vae_program *p;
    float *params;
    vaec_view v;
} model_fixture;

static int load(model_fixture *f, const char *text, uint64_t seed) {
    f->u = vae_unit_from_string("test.vae", text, stderr);
    if (!f->u) return -1;
    vae_build_opts o = vae_build_defaults(f->u);
    o.train = o.eval = o.iwae = 0;
    o.api_batch = 4; /* several calls for most counts below */
    vaec_pictures_opts(&o);
    f->p = vae_program_build(f->u, &o, stderr);
    if (!f->p) return -1;
    const vr_program *rt = vae_program_runtime(f->p);
    f->params = calloc((size_t)rt->param_floats, sizeof(float));
    vr_init_params(rt, f->params, seed);
    /* the initial biases are zero: give them values, so that a wrong offset shows */
    for (long i = 0; i < rt->param_floats; i++)
        if (f->params[i] == 0) f->params[i] = (float)((i * 7919) % 13) / 13.0f - 0.4f;
    f->v = (vaec_view){vae_unit_model(f->u), rt, f->params};
    return 0;
}

static void unload(model_fixture *f) {
    vae_program_free(f->p);
    vae_unit_free(f->u);
    free(f->params);
}

static const float *param(const model_fixture *f, const char *name) {
    const vae_param *q = vae_model_param(f->v.model, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    return f->params + q->offset;
}

static double sigmoid(double a) { return 1 / (1 + exp(-a)); }

static void test_mixture_states_and_samples(void) {
    model_fixture f;
    CU_ASSERT_EQUAL_FATAL(load(&f, MIXTURE, 3), 0);
    CU_ASSERT_EQUAL_FATAL(vaec_state_count(&f.v), 3);
    float means[3 * 16];
    vaec_state_means(&f.v, means);
    const float *W = param(&f, "decoder.logits.weight"), *b = param(&f, "decoder.logits.bias");
    double worst = 0;
    for (int k = 0; k < 3; k++) /* onehot(k) W + b = row k of W, plus b */
        for (int j = 0; j < 16; j++) worst = fmax(worst, fabs(means[k * 16 + j] - sigmoid(W[k * 16 + j] + b[j])));
    CU_ASSERT(worst < 1e-6);
    /* samples from the prior: each is one of the states' means; a seed gives the same ones whatever n */
    enum { N = 11 };
    float a[N * 16], c[5 * 16], d[N * 16];
    vaec_prior_means(&f.v, N, 42, a);
    vaec_prior_means(&f.v, 5, 42, c);
    vaec_prior_means(&f.v, N, 43, d);
    int seen[3] = {0}, unmatched = 0;
    for (int i = 0; i < N; i++) {
        int match = -1;
        for (int k = 0; k < 3; k++)
            if (memcmp(a + i * 16, means + k * 16, sizeof(float) * 16) == 0) match = k;
        if (match < 0) unmatched++;
        else seen[match]++;
    }
    CU_ASSERT_EQUAL(unmatched, 0);
    CU_ASSERT(seen[0] + seen[1] + seen[2] == N && (seen[0] < N && seen[1] < N && seen[2] < N)); /* drawn, not fixed */
    CU_ASSERT_EQUAL(memcmp(a, c, sizeof c), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a, d, sizeof a), 0);
    /* the states' grid: one row per state, its mean then the examples it is most probable for */
    float x[6 * 16];
    for (int i = 0; i < 6 * 16; i++) x[i] = (float)((i * 5 + i / 16) % 3 == 0);
    const char *png = tmp_path(".png");
    char msg[512];
    CU_ASSERT_EQUAL_FATAL(vaec_draw_states(&f.v, x, 6, png, msg, sizeof msg), 0);
    png_read_result r;
    CU_ASSERT_EQUAL_FATAL(read_png(png, &r), 0);
    int B = VAEC_GRID_BORDER;
    CU_ASSERT_EQUAL(r.width, (unsigned)(11 * 4 + 12 * B));
    CU_ASSERT_EQUAL(r.height, (unsigned)(3 * 4 + 4 * B));
    for (int k = 0; k < 3; k++) /* the first tile of row k is state k's mean */
        CU_ASSERT_EQUAL(r.px[(B + k * (4 + B) + 1) * r.width + B + 2], expected_byte(means[k * 16 + 4 + 2]));
    free(r.px);
    remove(png);
    unload(&f);
}

static void test_gauss_reconstruction(void) {
    model_fixture f;
    CU_ASSERT_EQUAL_FATAL(load(&f, GAUSS, 5), 0);
    CU_ASSERT_EQUAL(vaec_state_count(&f.v), 0);
    enum { N = 7 };
    float x[N * 16], rec[N * 16];
    for (int i = 0; i < N * 16; i++) x[i] = (float)((i * 3 + i / 16) % 4 < 2);
    vaec_reconstruct(&f.v, x, N, rec);
    const float *We = param(&f, "encoder.mean.weight"), *be = param(&f, "encoder.mean.bias");
    const float *Wd = param(&f, "decoder.logits.weight"), *bd = param(&f, "decoder.logits.bias");
    double worst = 0;
    for (int i = 0; i < N; i++) { /* the posterior mean, decoded: no noise */
        double z[2];
        for (int k = 0; k < 2; k++) {
            z[k] = be[k];
            for (int j = 0; j < 16; j++) z[k] += x[i * 16 + j] * We[j * 2 + k];
        }
        for (int j = 0; j < 16; j++)
            worst = fmax(worst, fabs(rec[i * 16 + j] - sigmoid(z[0] * Wd[j] + z[1] * Wd[16 + j] + bd[j])));
    }
    CU_ASSERT(worst < 1e-5);
    /* 16 values are not an image: the grids say so and write nothing */
    const char *png = tmp_path(".png");
    char msg[512];
    CU_ASSERT_EQUAL(vaec_draw_samples(&f.v, 4, 1, png, msg, sizeof msg), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "not an image"));
    CU_ASSERT_EQUAL(access(png, F_OK), -1);
    unload(&f);
}

/* The files of one epoch, in a run folder with a log.csv: the grids decode, and
 * a model without an image shape says so once and still gets its curves. */
static void test_epoch_images(void) {
    model_fixture f;
    CU_ASSERT_EQUAL_FATAL(load(&f, MIXTURE, 3), 0);
    char dir[512], path[700], err[512];
    snprintf(dir, sizeof dir, "%s", tmp_path("-run"));
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/log.csv", dir);
    const char *log = "epoch,train_ELBO,test_ELBO\n1,-20,-19\n";
    write_file(path, log, strlen(log));
    float x[40 * 16];
    for (int i = 0; i < 40 * 16; i++) x[i] = (float)((i * 7 + i / 16) % 5 < 2);
    vr_dataset test = {.n = 40, .dim = 16, .f32 = x};
    FILE *note = tmpfile();
    CU_ASSERT_EQUAL_FATAL(vaec_epoch_images(&f.v, &test, 9, dir, 1, note, err, sizeof err), 0);
    static const char *const files[] = {"samples.png", "reconstructions.png", "states.png", "curves.png"};
    static const unsigned widths[] = {8 * 4 + 9 * VAEC_GRID_BORDER, 8 * 4 + 9 * VAEC_GRID_BORDER,
                                      11 * 4 + 12 * VAEC_GRID_BORDER, 960};
    static const unsigned heights[] = {8 * 4 + 9 * VAEC_GRID_BORDER, 8 * 4 + 9 * VAEC_GRID_BORDER,
                                       3 * 4 + 4 * VAEC_GRID_BORDER, 0};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        png_read_result r;
        CU_ASSERT_EQUAL_FATAL(read_png(path, &r), 0);
        CU_ASSERT_EQUAL(r.width, widths[i]);
        if (heights[i]) CU_ASSERT_EQUAL(r.height, heights[i]);
        free(r.px);
        remove(path);
    }
    CU_ASSERT_EQUAL(ftell(note), 0); /* nothing skipped */
    unload(&f);

    CU_ASSERT_EQUAL_FATAL(load(&f, GAUSS, 3), 0); /* 16 values: no image shape */
    for (int epoch = 1; epoch <= 2; epoch++)
        CU_ASSERT_EQUAL(vaec_epoch_images(&f.v, &test, 9, dir, epoch, note, err, sizeof err), 0);
    char said[512] = "";
    rewind(note);
    size_t n = fread(said, 1, sizeof said - 1, note);
    said[n] = 0;
    CU_ASSERT_PTR_NOT_NULL(strstr(said, "no image grids: data x has 16 values"));
    CU_ASSERT_PTR_NULL(strchr(said, '\n') ? strchr(strchr(said, '\n') + 1, '\n') : NULL); /* one line */
    snprintf(path, sizeof path, "%s/samples.png", dir);
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/curves.png", dir);
    CU_ASSERT_EQUAL(access(path, F_OK), 0);
    remove(path);
    fclose(note);
    unload(&f);
    snprintf(path, sizeof path, "%s/log.csv", dir);
    remove(path);
    CU_ASSERT_EQUAL(rmdir(dir), 0); /* nothing else was left */
}

int main(void) {
    static const test_case tests[] = {
        {"grayscale grid, read back by libpng", test_gray_grid},
        {"RGB grid, channels first", test_rgb_grid},
        {"symlink, directory, device and missing folder refused", test_refused_outputs},
        {"curve plot from log.csv, and bad logs", test_plot},
        {"mixture: state means, prior samples, states grid", test_mixture_states_and_samples},
        {"gaussian: reconstruction by hand; no image shape", test_gauss_reconstruction},
        {"the files of one epoch", test_epoch_images},
        {NULL, NULL},
    };
    return run_suite("images", tests);
}
