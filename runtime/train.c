/* The training driver: epochs of shuffled batches through the compiled step,
 * the fault guard, the optimiser, evaluation, log.csv and checkpoints.
 * Buffers are allocated once before the first step; a step allocates nothing. */
#include "vae/driver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

/* Flush denormals to zero: the tails of softmax and log-sum-exp weights
 * (exp of -100) are denormal floats, and arithmetic on them is a hundred times
 * slower; they change no result that matters at float precision. */
void vr_flush_denormals(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ | DAZ */
#endif
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fputs("vaec: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

/* A batch of examples as floats, its rows converted by both threads of the team
 * (the rows are independent: the same bits however they are shared). */
typedef struct {
    const vr_dataset *ds;
    const int *idx;
    float *x;
    uint64_t seed, draw_key; /* dynamic binarisation's draw */
} gather_job;

static void gather_rows(const void *arg, long lo, long hi) {
    const gather_job *j = arg;
    float *x = j->x + (size_t)lo * (size_t)j->ds->dim;
    if (j->ds->binary == VR_BINARY_DYNAMIC)
        vr_data_gather_drawn_f32(j->ds, j->idx + lo, (int)(hi - lo), x, j->seed, j->draw_key);
    else
        vr_data_gather_f32(j->ds, j->idx + lo, (int)(hi - lo), x);
}

/* Whose labels a data block shows (include/vae/driver.h): y_kept holds an
 * example's label where show_all or kept[example], y_true wherever known. */
typedef struct {
    const vr_dataset *ds;
    const unsigned char *kept; /* training: the labelled subset (NULL: none) */
    int show_all;              /* evaluation of an observed label: every known label */
    uint64_t seed, draw_key;
} block_source;

/* The data block of examples idx[0..n): x, then (label_states K > 0) y_kept and y_true. */
static void gather_block(const vr_program *p, const block_source *src, const int *idx, int n, float *block) {
    gather_job j = {src->ds, idx, block, src->seed, src->draw_key};
    vr_split(gather_rows, &j, n);
    int K = p->label_states;
    if (K <= 0) return;
    float *kept = block + (size_t)n * (size_t)p->data_dim, *truth = kept + (size_t)n * (size_t)K;
    memset(kept, 0, 2 * (size_t)n * (size_t)K * sizeof(float));
    const int *labels = src->ds->labels;
    for (int i = 0; labels && i < n; i++) {
        int y = labels[idx[i]];
        if (y < 0 || y >= K) continue;
        truth[(size_t)i * K + y] = 1;
        if (src->show_all || (src->kept && src->kept[idx[i]])) kept[(size_t)i * K + y] = 1;
    }
}

/* Evaluation's data: one fixed draw of dynamic data; labels hidden where the
 * label has an encoder (the ELBO is that of unlabelled data), shown where observed. */
static block_source eval_source(const vr_program *p, const vr_dataset *ds, uint64_t seed) {
    return (block_source){ds, NULL, !p->label_inferred, seed, VR_DRAW_EVAL};
}

/* Whether the evaluation reports a classification error (a program table
 * without an evaluation graph has zeros there, not -1). */
static int classifies(const vr_program *p) {
    return p->eval.batch > 0 && p->eval.correct_rows >= 0;
}

/* The floats of a graph's data block. */
static size_t block_floats(const vr_program *p, int batch) {
    return (size_t)vr_data_floats(batch, p->data_dim, p->label_states);
}

void vr_init_params(const vr_program *p, float *params, uint64_t seed) {
    long off = 0;
    for (int t = 0; t < p->ntensors; t++) {
        float b = p->init_bounds[t];
        for (long i = 0; i < p->tensors[t].size; i++)
            params[off + i] = b > 0 ? (float)((2.0 * vr_uniform(seed, 0x1A17u + (uint32_t)t, (uint64_t)i) - 1.0) * b) : 0.0f;
        off += p->tensors[t].size;
    }
}

/* ---------------------------------------------------------------- evaluation */

/* One example's evaluation terms, kept per example so that the sums over the
 * examples run in one order however the chunks were shared among processes. */
typedef struct {
    double value, recon, kl, logpx;
    double correct, known; /* the classifier: right (1) or not, of a known label (known 1) */
} eval_row;

/* The evaluation chunk of examples [start, start + B) (the last padded with its
 * last example) into rows[start ...]. */
static void eval_chunk(const vr_program *p, const float *params, const vr_dataset *ds, int n, int start, uint64_t seed,
                       float *arena, float *x, int *idx, eval_row *rows) {
    const vr_graph *g = &p->eval;
    int B = g->batch, m = n - start < B ? n - start : B;
    int S = g->recon_rows >= 0 && g->kl_rows >= 0 ? g->samples : 1;
    block_source src = eval_source(p, ds, seed);
    for (int i = 0; i < B; i++) idx[i] = start + (i < m ? i : m - 1); /* pad with the last example */
    gather_block(p, &src, idx, B, x);
    vr_ctx ctx = {.seed = seed, .step = VR_STEP_EVAL, .example0 = (uint64_t)start, .sample0 = 0};
    vr_program_poll(p, g);
    g->fn((float *)params, NULL, arena, x, &ctx);
    for (int i = 0; i < m; i++) {
        eval_row *r = &rows[start + i];
        if (g->value_rows >= 0) r->value = arena[g->value_rows + i];
        if (g->kl_rows >= 0) {
            double sum = 0;
            for (int s = 0; s < S; s++) sum += arena[g->recon_rows + i * S + s];
            r->recon = sum / S;
            r->kl = arena[g->kl_rows + i];
        }
        if (g->logpx_rows >= 0) r->logpx = arena[g->logpx_rows + i];
        if (g->correct_rows >= 0 && ds->labels && ds->labels[start + i] >= 0) { /* over the known labels */
            r->correct = arena[g->correct_rows + i];
            r->known = 1;
        }
    }
}

/* The chunks of process `rank` of `size`: [*c0, *c1) of nc, consecutive. */
static void rank_chunks(int nc, int rank, int size, int *c0, int *c1) {
    *c0 = (int)((long)nc * rank / size);
    *c1 = (int)((long)nc * (rank + 1) / size);
}

/* Every process's rows to every process: each takes the chunks of the others from their copies. */
static void share_rows(const vr_comm *comm, eval_row *rows, int n, int B) {
    int nc = (n + B - 1) / B;
    eval_row *all = xcalloc((size_t)comm->size * (size_t)n, sizeof(eval_row));
    comm->allgather(comm->self, rows, all, (size_t)n * sizeof(eval_row));
    for (int r = 0; r < comm->size; r++) {
        int c0, c1;
        rank_chunks(nc, r, comm->size, &c0, &c1);
        int lo = c0 * B, hi = c1 * B < n ? c1 * B : n;
        if (hi > lo) memcpy(rows + lo, all + (size_t)r * (size_t)n + lo, (size_t)(hi - lo) * sizeof(eval_row));
    }
    free(all);
}

/* Evaluation in `arena` (at least the eval graph's arena_floats; training passes
 * its own, so the two never hold memory at once), its chunks shared by the
 * processes of comm (NULL: this one alone); the same numbers on any number. */
static void evaluate_in(const vr_program *p, const float *params, const vr_dataset *ds, int limit, uint64_t seed,
                        float *arena, const vr_comm *comm, vr_scores *out) {
    const vr_graph *g = &p->eval;
    int n = limit > 0 && limit < ds->n ? limit : ds->n, B = g->batch, c0 = 0, c1 = (n + B - 1) / B;
    float *x = xcalloc(block_floats(p, B), sizeof(float));
    int *idx = xcalloc((size_t)B, sizeof(int));
    eval_row *rows = xcalloc((size_t)n, sizeof(eval_row));
    if (comm) rank_chunks(c1, comm->rank, comm->size, &c0, &c1);
    for (int c = c0; c < c1; c++) eval_chunk(p, params, ds, n, c * B, seed, arena, x, idx, rows);
    if (comm && comm->size > 1) share_rows(comm, rows, n, B);
    double value = 0, recon = 0, kl = 0, logpx = 0, correct = 0;
    long known = 0;
    for (int i = 0; i < n; i++) {
        if (g->value_rows >= 0) value += rows[i].value;
        if (g->kl_rows >= 0) {
            recon += rows[i].recon;
            kl += rows[i].kl;
        }
        if (g->logpx_rows >= 0) logpx += rows[i].logpx;
        correct += rows[i].correct;
        known += (long)rows[i].known;
    }
    out->classify_error = known ? 1.0 - correct / (double)known : NAN;
    out->n = n;
    out->value = value / n;
    out->has_elbo = g->kl_rows >= 0;
    out->has_logpx = g->logpx_rows >= 0;
    out->recon = recon / n;
    out->kl = kl / n;
    out->elbo = out->recon - out->kl;
    out->exact_logpx = logpx / n;
    free(x);
    free(idx);
    free(rows);
}

void vr_evaluate(const vr_program *p, const float *params, const vr_dataset *ds, int limit, uint64_t seed,
                 vr_scores *out) {
    float *arena = xcalloc((size_t)p->eval.arena_floats, sizeof(float));
    evaluate_in(p, params, ds, limit, seed, arena, NULL, out);
    free(arena);
}

/* The IWAE estimate of examples [start, start + B) into lp[start ...]: each a
 * streaming log-sum-exp over its K samples, in order. */
static void iwae_chunk(const vr_program *p, const float *params, const vr_dataset *ds, int n, int start, uint64_t seed,
                       int K, float *arena, float *x, int *idx, double *mx, double *sum, double *lp) {
    const vr_graph *g = &p->iwae;
    int B = g->batch, S = g->samples, m = n - start < B ? n - start : B;
    for (int i = 0; i < B; i++) {
        idx[i] = start + (i < m ? i : m - 1);
        mx[i] = -INFINITY;
        sum[i] = 0;
    }
    block_source src = eval_source(p, ds, seed);
    gather_block(p, &src, idx, B, x);
    for (int s0 = 0; s0 < K; s0 += S) {
        vr_ctx ctx = {.seed = seed, .step = VR_STEP_IWAE, .example0 = (uint64_t)start, .sample0 = (uint64_t)s0};
        vr_program_poll(p, g);
        g->fn((float *)params, NULL, arena, x, &ctx);
        int use = K - s0 < S ? K - s0 : S;
        for (int i = 0; i < m; i++)
            for (int s = 0; s < use; s++) { /* streaming log-sum-exp, maximum subtracted */
                double w = arena[g->logw_rows + i * S + s];
                if (w > mx[i]) {
                    sum[i] = sum[i] * exp(mx[i] - w) + 1.0;
                    mx[i] = w;
                } else
                    sum[i] += exp(w - mx[i]);
            }
    }
    for (int i = 0; i < m; i++) lp[start + i] = mx[i] + log(sum[i]) - log((double)K);
}

static const char *duration(char *buf, size_t len, double seconds);

/* vaec eval's progress line while the IWAE estimate runs (stderr, redrawn in place). */
static void iwae_progress(int done, int total, int examples, double elapsed) {
    char left[48];
    fprintf(stderr, "\r\033[K  log p(x) by IWAE: %d of %d examples, %.0f ex/s, ETA %s", done < examples ? done : examples,
            examples, done / elapsed, duration(left, sizeof left, elapsed / done * (total - done)));
    fflush(stderr);
}

/* The IWAE estimate, its chunks shared by the processes of comm (NULL: this one); progress: draw a progress line. */
static void evaluate_iwae_in(const vr_program *p, const float *params, const vr_dataset *ds, int limit, uint64_t seed,
                             int K, const vr_comm *comm, int progress, vr_scores *out) {
    const vr_graph *g = &p->iwae;
    int n = limit > 0 && limit < ds->n ? limit : ds->n, B = g->batch, c0 = 0, c1 = (n + B - 1) / B;
    float *arena = xcalloc((size_t)g->arena_floats, sizeof(float));
    float *x = xcalloc(block_floats(p, B), sizeof(float));
    int *idx = xcalloc((size_t)B, sizeof(int));
    double *mx = xcalloc((size_t)B, sizeof(double)), *sum = xcalloc((size_t)B, sizeof(double));
    eval_row *rows = xcalloc((size_t)n, sizeof(eval_row)); /* lp in .value: share_rows sends whole rows */
    double *lp = xcalloc((size_t)n, sizeof(double));
    if (comm) rank_chunks(c1, comm->rank, comm->size, &c0, &c1);
    double t0 = now();
    for (int c = c0; c < c1; c++) {
        iwae_chunk(p, params, ds, n, c * B, seed, K, arena, x, idx, mx, sum, lp);
        if (progress) iwae_progress((c + 1 - c0) * B, (c1 - c0) * B, n, now() - t0); /* this process's chunks */
    }
    if (progress) fputs("\r\033[K", stderr);
    if (comm && comm->size > 1) {
        for (int i = 0; i < n; i++) rows[i].value = lp[i];
        share_rows(comm, rows, n, B);
        for (int i = 0; i < n; i++) lp[i] = rows[i].value;
    }
    double total = 0, total2 = 0;
    for (int i = 0; i < n; i++) {
        total += lp[i];
        total2 += lp[i] * lp[i];
    }
    out->n = n;
    out->logpx = total / n;
    double var = n > 1 ? (total2 - total * total / n) / (n - 1) : NAN; /* one example says nothing of the spread */
    out->logpx_se = n > 1 ? sqrt(var > 0 ? var / n : 0) : NAN;
    free(arena);
    free(x);
    free(idx);
    free(mx);
    free(sum);
    free(rows);
    free(lp);
}

void vr_evaluate_iwae(const vr_program *p, const float *params, const vr_dataset *ds, int limit, uint64_t seed, int K,
                      vr_scores *out) {
    evaluate_iwae_in(p, params, ds, limit, seed, K, NULL, 0, out);
}

/* ---------------------------------------------------------------- training
 *
 * A run is cut so that each decision has one place:
 *   trainer_open    the data, the output folder (chosen, created and checked
 *                   writable before the first step), the buffers, the initial
 *                   parameters;
 *   train_epoch     the shuffled batches of one epoch, then epoch_commit;
 *   train_step      one batch: the gradient, before_update, the optimiser;
 *   before_update   the place between a step's gradient and its update: grads
 *                   hold the gradient, the arena the step's outputs, params are
 *                   still the step's inputs.  An all-reduce across processes and
 *                   gradient clipping belong here, before the fault guard (the
 *                   objective must be finite and within VR_OBJECTIVE_MAX);
 *   epoch_commit    after each epoch, once its parameters are all finite: the
 *                   evaluation, the epoch's line and its files (run_files_commit);
 *   trainer_close.
 *
 * The files of a run (run_files) are DIR/checkpoint.vaeckpt and DIR/log.csv.
 * An epoch is committed by renaming its fsynced checkpoint over the previous
 * one, and only then appending its row to log.csv (one write, fsynced).  So
 * log.csv never holds a row whose checkpoint is not on disk; a crash between
 * the two leaves the checkpoint one epoch ahead of the log (its step says
 * which epoch it holds).  A new run never writes into a folder that holds a
 * run (a checkpoint or a log): the default folder runs/MODEL becomes
 * runs/MODEL-2, -3, ...; a folder given with --out is refused unless --force,
 * which replaces the log first and then removes the old checkpoint (in that
 * order a crash leaves no row without its checkpoint). */

/* A fault is also an objective beyond 1e10 nats per example in magnitude.  The
 * example models start within a few thousand nats of zero (784 pixels at a few
 * nats each: fashion_gauss starts near -545, the mixtures near -550) and
 * training moves them towards zero; at 1e10 a float keeps no digit below 1000
 * nats, so a run there has diverged (a run at lr 1e3 reached -2.5e29). */
#define VR_OBJECTIVE_MAX 1e10

#define VR_ERR_MAX (2 * VR_PATH_MAX + 1024) /* a message naming a path or two */

static const char *plural(long n) { return n == 1 ? "" : "s"; }

static int make_dir(const char *dir) {
    char buf[VR_PATH_MAX + 32];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *s = buf + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
            *s = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    return 0;
}

typedef struct {
    char dir[VR_PATH_MAX], ckpt[VR_PATH_MAX + 32], log[VR_PATH_MAX + 32];
    char best[VR_PATH_MAX + 32]; /* best.vaeckpt: the epoch of the best validation value (with validation) */
    int log_fd;          /* log.csv, open for appending; -1: the run writes no files */
    int committed_epoch; /* the epoch of the checkpoint on disk; -1: none yet */
} run_files;

static const char *const RUN_FILES[] = {"checkpoint.vaeckpt", "log.csv", "best.vaeckpt"};

/* A folder holds a run when it has a checkpoint or a log (under any file type). */
static int holds_run(const char *dir) {
    for (int i = 0; i < 2; i++) {
        char path[VR_PATH_MAX + 32];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, RUN_FILES[i]);
        if (lstat(path, &st) == 0) return 1;
    }
    return 0;
}

/* Picks f->dir: o->out_dir, or with the default name the first of runs/MODEL,
 * runs/MODEL-2, ... that holds no run; created; a folder. */
static int choose_out_dir(run_files *f, const vr_options *o, char *err, size_t errlen) {
    if (strlen(o->out_dir) + 8 > sizeof f->dir) {
        snprintf(err, errlen, "%s: the output folder's path is too long", o->out_dir);
        return -1;
    }
    for (int k = 1; k < 100000; k++) {
        if (k == 1) snprintf(f->dir, sizeof f->dir, "%s", o->out_dir);
        else snprintf(f->dir, sizeof f->dir, "%s-%d", o->out_dir, k);
        struct stat st;
        if (make_dir(f->dir) != 0 || stat(f->dir, &st) != 0) {
            snprintf(err, errlen, "%s: cannot create the output folder: %s", f->dir, strerror(errno));
            return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s: cannot be the output folder: it exists and is not a folder", f->dir);
            return -1;
        }
        if (!holds_run(f->dir) || (o->force && !o->out_dir_auto)) return 0;
        if (!o->out_dir_auto) {
            snprintf(err, errlen, "%s: holds an earlier run (log.csv, checkpoint.vaeckpt); choose another --out, or pass "
                                  "--force to replace it", f->dir);
            return -1;
        }
    }
    snprintf(err, errlen, "%s: no free output folder name", o->out_dir);
    return -1;
}

/* Removes NAME.tmp.PID files of this folder's run files whose process is gone:
 * parts of files a killed run was writing, never results. */
static void remove_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) { /* NAME.tmp.PID: the checkpoint, the log, vaec's images */
        const char *tmp = strstr(e->d_name, ".tmp.");
        if (!tmp || tmp == e->d_name) continue;
        const char *pid = tmp + 5;
        char *end;
        long id = strtol(pid, &end, 10);
        if (*pid < '0' || *pid > '9' || *end || id == (long)getpid()) continue;
        if (kill((pid_t)id, 0) == 0 || errno != ESRCH) continue; /* its writer may still be running */
        char path[VR_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0)
            fprintf(stderr, "vaec: removed %s, the unfinished file of a killed run (process %ld)\n", path, id);
    }
    closedir(d);
}

/* A log column: "train_" + the value's name with every character that is not
 * a letter or digit made '_' ("IWAE bound" -> train_IWAE_bound). */
static void log_column(char *buf, size_t len, const char *prefix, const char *name) {
    size_t n = (size_t)snprintf(buf, len, "%s", prefix);
    for (const char *c = name; *c && n + 1 < len; c++) {
        int plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
        if (plain) buf[n++] = *c;
        else if (buf[n - 1] != '_' && c[1]) buf[n++] = '_';
    }
    buf[n] = 0;
}

/* log.csv's column names, one line. */
static void log_header(char *buf, size_t len, const vr_program *p, const vr_options *o) {
    char train_col[128], test_col[128], valid_col[130] = "";
    log_column(train_col, sizeof train_col, "train_", p->value_name);
    log_column(test_col, sizeof test_col, "test_", p->eval_value_name);
    if (o->validation > 0) { /* only with validation: other runs keep their columns */
        log_column(valid_col, sizeof valid_col - 1, "valid_", p->eval_value_name);
        strcat(valid_col, ",");
    }
    snprintf(buf, len, "epoch,step,%s,%s,test_recon,test_kl,test_exact_logpx,%s%skl_weight_factor,seconds,"
             "examples_per_second\n", train_col, test_col, classifies(p) ? "test_error," : "", valid_col);
}

/* A value of a "# key = value" line: a newline in a path would end the line early. */
static const char *one_line(char *buf, size_t len, const char *s) {
    snprintf(buf, len, "%s", s ? s : "(none)");
    for (char *c = buf; *c; c++)
        if (*c == '\n' || *c == '\r') *c = '?';
    return buf;
}

/* The shards a batch is cut into (1: none; docs/cluster.md). */
static int shard_count(const vr_options *o) { return o->shards > 1 ? o->shards : 1; }

/* The settings whose line is absent at their default, so that runs made before
 * they existed keep their logs (and resume): a run that has one and a resume
 * that lacks it differ all the same (check_run_settings). */
static const char *const OPTIONAL_SETTINGS[] = {"shards", "validation", "clip", "lr warmup steps", "lr schedule"};

const char *vr_shortest(char *buf, size_t len, double v) {
    char digits[32]; /* 17 significant digits, a sign, a point and an exponent */
    for (int n = 6; n <= 17; n++) {
        snprintf(digits, sizeof digits, "%.*g", n, v);
        if (strtod(digits, NULL) == v) break; /* 17 always reads back */
    }
    snprintf(buf, len, "%s", digits);
    return buf;
}

/* A line per per-network optimiser: its settings and how many tensors and values follow it. */
static size_t group_settings(char *buf, size_t len, const vr_program *p, const vr_options *o) {
    size_t n = 0;
    for (int g = 0; g < o->ngroups && n < len; g++) {
        const vr_optim_group *q = &o->groups[g];
        long tensors = 0, values = 0;
        for (int i = 0; i < p->ntensors; i++)
            if (o->tensor_group && o->tensor_group[i] == g + 1) tensors++, values += p->tensors[i].size;
        char target[128];
        n += (size_t)snprintf(buf + n, len - n, "# optimizer %s = %s, lr %.17g, momentum %.17g (%ld tensors, %ld values)\n",
                              one_line(target, sizeof target, q->target), q->optimizer == VR_ADAM ? "adam" : "sgd",
                              q->lr, q->momentum, tensors, values);
    }
    return n < len ? n : len;
}

/* Their lines, where they are not at their default (shards: log_settings). */
static void optional_settings(char *buf, size_t len, const vr_program *p, const vr_options *o) {
    const vr_lr_schedule *s = &o->schedule;
    char a[32], b[32];
    size_t n = group_settings(buf, len, p, o);
    if (o->validation > 0) n += (size_t)snprintf(buf + n, len - n, "# validation = %d\n", o->validation);
    if (o->clip > 0 && n < len) n += (size_t)snprintf(buf + n, len - n, "# clip = %s\n", vr_shortest(a, sizeof a, o->clip));
    if (s->warmup_steps > 0 && n < len) n += (size_t)snprintf(buf + n, len - n, "# lr warmup steps = %ld\n", s->warmup_steps);
    if (s->step_epochs > 0 && n < len)
        snprintf(buf + n, len - n, "# lr schedule = step(every %d epochs, factor %s)\n", s->step_epochs,
                 vr_shortest(a, sizeof a, s->step_factor));
    else if (s->cosine_epochs > 0 && n < len)
        snprintf(buf + n, len - n, "# lr schedule = cosine(over %s epochs, down to %s)\n",
                 vr_shortest(a, sizeof a, s->cosine_epochs), vr_shortest(b, sizeof b, s->min_lr));
}

/* The settings that decide what a run computes, as "# key = value" lines at the
 * top of log.csv; --resume compares them line by line (run_files_resume).  The
 * thread count, --jit, the test data and the epoch count change no bit of the
 * parameters, so they are not here.  `examples` is what --limit leaves. */
#define LOG_SETTINGS_MAX (4 * VR_PATH_MAX + 1024)
static void log_settings(char *buf, size_t len, const vr_program *p, const vr_options *o, int examples) {
    char data[VR_PATH_MAX + 8], model[512], settings[512];
    int n = snprintf(buf, len,
             "# model = %s\n# parameters = %ld in %d tensors\n# model settings = %s\n# data = %s\n# examples = %d\n"
             "# batch = %d\n# seed = %llu\n# optimizer = %s\n# lr = %.17g\n# momentum = %.17g\n# warmup = %.17g\n",
             one_line(model, sizeof model, p->model_name), p->param_floats, p->ntensors,
             one_line(settings, sizeof settings, o->model_settings), one_line(data, sizeof data, o->data),
             examples, p->train.batch * shard_count(o), (unsigned long long)o->seed,
             o->optimizer == VR_ADAM ? "adam" : "sgd", o->lr, o->momentum, o->warmup);
    if (shard_count(o) > 1 && n > 0 && (size_t)n < len) /* absent at 1: a run without shards keeps its log */
        snprintf(buf + n, len - (size_t)n, "# shards = %d\n", shard_count(o));
    if (p->label_states > 0) { /* only models with a label: version 0 logs keep their lines */
        size_t at = strlen(buf);
        char labels[VR_PATH_MAX + 8];
        snprintf(buf + at, len - at, "# labels = %s\n# labelled = %ld\n", one_line(labels, sizeof labels, o->labels),
                 o->labelled);
    }
    optional_settings(buf + strlen(buf), len - strlen(buf), p, o);
}

/* Chooses and creates the folder, writes log.csv's header whole (which also
 * proves the folder writable), and with --force then removes the old checkpoint. */
static int run_files_open(run_files *f, const vr_program *p, const vr_options *o, int examples, char *err,
                          size_t errlen) {
    f->log_fd = -1;
    f->committed_epoch = -1;
    if (!o->out_dir) return 0;
    if (choose_out_dir(f, o, err, errlen)) return -1;
    remove_stale_temps(f->dir);
    snprintf(f->ckpt, sizeof f->ckpt, "%s/%s", f->dir, RUN_FILES[0]);
    snprintf(f->log, sizeof f->log, "%s/%s", f->dir, RUN_FILES[1]);
    snprintf(f->best, sizeof f->best, "%s/%s", f->dir, RUN_FILES[2]);
    if (vr_output_check(f->ckpt, err, errlen) || vr_output_check(f->best, err, errlen)) return -1;
    char settings[LOG_SETTINGS_MAX], header[512];
    log_settings(settings, sizeof settings, p, o, examples);
    log_header(header, sizeof header, p, o);
    vr_output out;
    if (vr_output_open(&out, f->log, err, errlen)) return -1;
    /* the description first, the compared settings last before the column names */
    fprintf(out.f, "%s%s%s", o->description ? o->description : "", settings, header);
    if (vr_output_commit(&out, err, errlen)) return -1;
    if ((unlink(f->ckpt) != 0 && errno != ENOENT) || (unlink(f->best) != 0 && errno != ENOENT)) {
        snprintf(err, errlen, "%s: cannot remove the earlier run's checkpoints: %s", f->dir, strerror(errno));
        return -1;
    }
    f->log_fd = open(f->log, O_WRONLY | O_APPEND | O_NOFOLLOW);
    if (f->log_fd < 0) {
        snprintf(err, errlen, "%s: cannot write: %s", f->log, strerror(errno));
        return -1;
    }
    return 0;
}

typedef struct {
    const vr_program *p;
    const vr_options *o;
    vr_dataset train, test;
    vr_dataset valid;      /* the last o->validation examples of train, in place (n 0: no validation) */
    double best_valid;     /* the best validation value of the epochs so far (-inf: none yet) */
    int clipped;           /* this epoch's steps whose gradient was clipped */
    int n, nbatches;
    unsigned char *kept;   /* label_states > 0: per training example, its label is kept */
    int *lab, *unl;        /* semi-supervised: the labelled and the unlabelled examples */
    vr_semi_plan semi;     /* semi.steps > 0: batches mix them (vr_semi_order) */
    size_t P;
    float *params, *grads, *m, *v, *arena, *x; /* allocated once: a step allocates nothing */
    int *order;
    int batch;         /* examples a step: the graph's batch times the shards */
    const vr_comm *comm; /* the processes sharing the shards; NULL: this one alone */
    int rank, first, local; /* this process's shards: [first, first + local) */
    float *shard_grads;  /* local gradients, one after another; NULL: the graph writes grads itself */
    float *gathered;     /* the processes' gradients (partial sums or shards), one after another */
    float *values;       /* the whole batch's per-example objective (with shards) */
    float *local_values; /* this process's part of values, exchanged (with processes) */
    double gather_seconds; /* this epoch's seconds in allgather */
    vr_adam adam;
    struct opt_segment { size_t off, n; int group; } *segs; /* runs of tensors with one optimiser, in order */
    int nsegs;
    long step;         /* steps taken (updates made) */
    int start_epoch;   /* the epochs already done: 0, or the resumed checkpoint's */
    double compute;    /* this epoch's seconds in steps */
    run_files files;
} trainer;

/* Commits an epoch (0: the initial parameters): best.vaeckpt when the epoch is
 * the best so far, its checkpoint, then its log row.  In this order a crash
 * leaves best.vaeckpt at most one epoch ahead of the checkpoint, and the resumed
 * run makes that epoch again, bit for bit (run_files_resume). */
static int run_files_commit(trainer *t, int epoch, int best, const char *row, char *err, size_t errlen) {
    run_files *f = &t->files;
    if (f->log_fd < 0) return 0;
    const vr_program *p = t->p;
    if (best && vr_checkpoint_save(f->best, p->model_name, p->tensors, p->ntensors, t->params, t->m, t->v, t->step, err,
                                   errlen))
        return -1;
    if (vr_checkpoint_save(f->ckpt, p->model_name, p->tensors, p->ntensors, t->params, t->m, t->v, t->step, err, errlen))
        return -1;
    f->committed_epoch = epoch;
    size_t n = row ? strlen(row) : 0;
    if (n && (write(f->log_fd, row, n) != (ssize_t)n || fsync(f->log_fd) != 0)) {
        snprintf(err, errlen, "%s: cannot write: %s", f->log, strerror(errno));
        return -1;
    }
    return 0;
}

/* How the data is read: binary(dynamic) keeps intensities. */
static int data_mode(const vr_program *p) {
    return vr_data_mode(p->binary, p->binary_dynamic);
}

/* The labels of a data set for a model with a label (option and setting name
 * its label file).  Without a label source an inferred label is hidden
 * everywhere, unless `need` (an observed label, or a labelled subset). */
static int load_labels(const vr_program *p, vr_dataset *ds, const char *source, const char *labels, const char *option,
                       const char *setting, int need, const vr_options *o, char *err, size_t errlen) {
    int rc = vr_data_load_labels(ds, source, labels, o->data_dir, p->label_states, err, errlen);
    if (rc < 0) return -1;
    if (rc == 1 && need) {
        snprintf(err, errlen, "%s: carries no labels, which the model's label (%d classes) needs%s: give a label file "
                              "(%s PATH, or %s = \"PATH\" in the train block)", source, p->label_states,
                 p->label_inferred ? " for `labelled`" : " (it has no encoder)", option, setting);
        return -1;
    }
    return 0;
}

/* Which training labels are kept, and (some but not all) the mixed batches. */
static int plan_labels(trainer *t, char *err, size_t errlen) {
    const vr_program *p = t->p;
    const vr_options *o = t->o;
    t->kept = xcalloc((size_t)t->n, 1);
    if (o->labelled > 0 && !p->label_inferred) {
        snprintf(err, errlen, "labelled = %ld: the model's label has no encoder, so every example needs its label",
                 o->labelled);
        return -1;
    }
    if (vr_labels_keep(&t->train, t->n, o->labelled, o->seed, t->kept, err, errlen)) return -1;
    int nlab = 0;
    for (int i = 0; i < t->n; i++) nlab += t->kept[i];
    if (!p->label_inferred || nlab == 0 || nlab == t->n) return 0; /* one kind of example: plain batches */
    t->lab = xcalloc((size_t)nlab, sizeof(int));
    t->unl = xcalloc((size_t)(t->n - nlab), sizeof(int));
    for (int i = 0, a = 0, b = 0; i < t->n; i++) {
        if (t->kept[i]) t->lab[a++] = i;
        else t->unl[b++] = i;
    }
    if (vr_semi_plan_of(&t->semi, nlab, t->n - nlab, t->batch)) {
        snprintf(err, errlen, "%s: %d unlabelled examples are fewer than one batch's share of them (batch %d, %d labelled)",
                 o->data, t->n - nlab, t->batch, nlab);
        return -1;
    }
    t->nbatches = t->semi.steps;
    return 0;
}

/* The examples [first, first + n) of ds, in place (nothing is copied or owned). */
static vr_dataset rows_of(const vr_dataset *ds, int first, int n) {
    vr_dataset v = *ds;
    size_t dim = (size_t)ds->dim, at = (size_t)first;
    v.n = n;
    if (v.u8) v.u8 += at * dim;
    if (v.f32) v.f32 += at * dim;
    if (v.bits) v.bits += at * ((dim + 7) / 8);
    if (v.labels) v.labels += at;
    return v;
}

/* Validation: the last o->validation of the t->n examples are held out of training. */
static int hold_out(trainer *t, char *err, size_t errlen) {
    const vr_options *o = t->o;
    if (o->validation >= t->n) {
        snprintf(err, errlen, "%s: validation = %d leaves no training examples (%d in all%s)", o->data, o->validation,
                 t->n, o->limit > 0 ? " after --limit" : "");
        return -1;
    }
    t->n -= o->validation;
    t->valid = rows_of(&t->train, t->n, o->validation);
    return 0;
}

static int load_data(trainer *t, char *err, size_t errlen) {
    const vr_program *p = t->p;
    const vr_options *o = t->o;
    if (!o->data) {
        snprintf(err, errlen, "no training data: set data = \"...\" in the train block or pass --data");
        return -1;
    }
    if (p->label_states == 0 && (o->labels || o->test_labels || o->labelled)) {
        snprintf(err, errlen, "%s: the model has no label (data y : label(K)), so labels, test_labels and labelled "
                              "do not apply", o->labels ? o->labels : o->test_labels ? o->test_labels : "labelled");
        return -1;
    }
    if (vr_data_load(&t->train, o->data, o->data_dir, p->data_dim, data_mode(p), err, errlen)) return -1;
    if (o->test && vr_data_load(&t->test, o->test, o->data_dir, p->data_dim, data_mode(p), err, errlen)) return -1;
    if (p->label_states > 0 &&
        (load_labels(p, &t->train, o->data, o->labels, "--labels", "labels", !p->label_inferred || o->labelled > 0, o,
                     err, errlen) ||
         (o->test && load_labels(p, &t->test, o->test, o->test_labels, "--test-labels", "test_labels",
                                 !p->label_inferred, o, err, errlen))))
        return -1;
    int B = t->batch;
    t->n = o->limit > 0 && o->limit < t->train.n ? o->limit : t->train.n;
    if (o->validation > 0 && hold_out(t, err, errlen)) return -1;
    t->nbatches = t->n / B; /* the last partial batch is dropped: every step has the compiled shape */
    if (t->nbatches == 0) {
        snprintf(err, errlen, "%s: %d example%s %s fewer than one batch of %d", o->data, t->n, plural(t->n),
                 t->n == 1 ? "is" : "are", B);
        return -1;
    }
    return p->label_states > 0 ? plan_labels(t, err, errlen) : 0;
}

/* ---- --resume: continuing the run of a folder
 * The checkpoint gives the parameters, the optimiser's moments and the step;
 * the step gives the epoch (steps are batches, every epoch has the same
 * number); the data order, the noise and the KL warm-up are functions of
 * (seed, epoch, step), so the next epoch computes what it would have computed
 * in one uninterrupted run.  log.csv's settings lines must match this run's. */

/* Lines of log.csv's "# key = value" settings that differ from `want` (the
 * same form), as "key: A in the run, B now; ..." in diff; 0 when none do. */
static int settings_differ(const char *have, const char *want, char *diff, size_t len) {
    size_t n = 0;
    diff[0] = 0;
    for (const char *w = want; *w;) {
        const char *we = strchr(w, '\n'), *eq = strstr(w, " = ");
        size_t keylen = (size_t)(eq - w) + 3, linelen = (size_t)(we - w) + 1;
        const char *h = have, *found = NULL;
        for (; *h; h = strchr(h, '\n') ? strchr(h, '\n') + 1 : h + strlen(h))
            if ((h == have || h[-1] == '\n') && strncmp(h, w, keylen) == 0) found = h;
        if (!found || strncmp(found, w, linelen) != 0) {
            const char *fe = found ? strchr(found, '\n') : NULL;
            int flen = found ? (int)((fe ? fe : found + strlen(found)) - found - (long)keylen) : 0;
            n += (size_t)snprintf(diff + n, n < len ? len - n : 0, "%s%.*s: %.*s in the run, %.*s now", n ? "; " : "",
                                  (int)keylen - 5, w + 2, found ? flen : 9, found ? found + keylen : "not noted",
                                  (int)(linelen - keylen - 1), w + keylen);
        }
        w = we + 1;
    }
    return n > 0;
}

/* The whole of log.csv in memory (NUL-terminated), or NULL with err set. */
static char *read_log_file(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (64L << 20)) {
        snprintf(err, errlen, "%s: cannot resume: %s", path,
                 !f ? strerror(errno) : !S_ISREG(st.st_mode) ? "not a regular file" : "larger than 64 MiB");
        if (f) fclose(f);
        return NULL;
    }
    char *buf = xcalloc((size_t)st.st_size + 1, 1);
    size_t got = fread(buf, 1, (size_t)st.st_size, f);
    buf[got] = 0;
    fclose(f);
    return buf;
}

/* The first line of OPTIONAL_SETTINGS that the run's log has and `want` lacks, or NULL. */
static const char *optional_missing(const char *log, const char *want) {
    for (size_t i = 0; i < sizeof OPTIONAL_SETTINGS / sizeof *OPTIONAL_SETTINGS; i++) {
        char key[64];
        snprintf(key, sizeof key, "\n# %s = ", OPTIONAL_SETTINGS[i]);
        const char *at = strstr(log, key);
        if (at && !strstr(want, key + 1)) return at + 1;
    }
    return NULL;
}

/* Whether log.csv (`log`, whole) was written by a run computing what this one
 * computes: its settings lines and column names; 0, or -1 with err saying what differs. */
static int check_run_settings(const trainer *t, const char *log, char *err, size_t errlen) {
    const run_files *f = &t->files;
    char want[LOG_SETTINGS_MAX], header[512], diff[2048];
    log_settings(want, sizeof want, t->p, t->o, t->n);
    log_header(header, sizeof header, t->p, t->o);
    const char *head = strstr(log, header);
    const char *missing = optional_missing(log, want);
    if (!strstr(log, "# model = "))
        snprintf(err, errlen, "%s: records no settings (an older vaec wrote it), so resuming cannot check that it "
                              "continues the same computation", f->log);
    else if (settings_differ(log, want, diff, sizeof diff))
        snprintf(err, errlen, "%s: cannot resume with other settings than the run's: %s", f->dir, diff);
    else if (missing) /* absent at the default: compared here */
        snprintf(err, errlen, "%s: cannot resume with other settings than the run's: %.*s in the run, not set now",
                 f->dir, (int)strcspn(missing + 2, "\n"), missing + 2);
    else if (!head || (head != log && head[-1] != '\n'))
        snprintf(err, errlen, "%s: its column names are not this model's", f->log);
    else
        return 0;
    return -1;
}

/* A line among the rows saying who continued the run after `epoch`: from the
 * description (the header keeps the first run's), what may differ on a resume. */
static void note_resume(FILE *f, const char *description, int epoch) {
    static const char *const KEYS[] = {"started", "vaec commit", "threads", "processes", "cpu", "command line"};
    if (!description) return;
    fprintf(f, "# resumed after epoch %d:", epoch);
    for (size_t i = 0, n = 0; i < sizeof KEYS / sizeof *KEYS; i++) {
        char key[40];
        snprintf(key, sizeof key, "# %s = ", KEYS[i]);
        const char *at = strstr(description, key);
        if (!at || (at != description && at[-1] != '\n')) continue;
        at += strlen(key);
        fprintf(f, "%s %s = %.*s", n++ ? "," : "", KEYS[i], (int)strcspn(at, "\n"), at);
    }
    fputc('\n', f);
}

/* Rewrites log.csv (`log`, checked) to end at `epoch`, the checkpoint's: rows
 * after it are dropped; a row missing for it (the run died between the
 * checkpoint and the row) cannot be recomputed (its train column is the mean
 * over the epoch's steps), so a "# epoch N: ..." line says it was lost, here
 * and on stdout. */
static int cut_log(const trainer *t, const char *log, int epoch, char *err, size_t errlen) {
    const run_files *f = &t->files;
    char header[512];
    log_header(header, sizeof header, t->p, t->o);
    const char *rows = strstr(log, header) + strlen(header);
    vr_output out;
    if (vr_output_open(&out, f->log, err, errlen)) return -1;
    fwrite(log, 1, (size_t)(rows - log), out.f);
    int last = 0, dropped = 0;
    for (const char *line = rows; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
        int e = atoi(line), keep = line[0] == '#' || (e <= epoch && end); /* a torn last row is dropped */
        if (keep) fwrite(line, 1, len, out.f);
        else dropped++;
        if (keep && line[0] != '#') last = e;
        line += len;
    }
    if (dropped)
        printf("dropped %d row%s of %s after epoch %d, the checkpoint's\n", dropped, plural(dropped), f->log, epoch);
    for (int e = last + 1; e <= epoch; e++) {
        fprintf(out.f, "# epoch %d: row lost (the run stopped after its checkpoint, before its row)\n", e);
        printf("epoch %2d  its log row was lost (the run stopped after the epoch's checkpoint); noted in %s\n", e,
               f->log);
    }
    note_resume(out.f, t->o->description, epoch);
    return vr_output_commit(&out, err, errlen);
}

/* With validation, the best validation value so far: best.vaeckpt's, evaluated
 * again (the same bits as when it was chosen).  It may hold the epoch after the
 * checkpoint's (run_files_commit), which the resumed run makes again, equal. */
static int resume_best(trainer *t, char *err, size_t errlen) {
    struct stat st;
    if (!t->valid.n || lstat(t->files.best, &st) != 0) return 0; /* no epoch has ended yet */
    const vr_program *p = t->p;
    float *params = xcalloc(t->P, sizeof(float));
    int rc = vr_checkpoint_load(t->files.best, p->tensors, p->ntensors, params, NULL, NULL, NULL, err, errlen);
    if (rc == 0) {
        vr_scores v = {0};
        evaluate_in(p, params, &t->valid, 0, t->o->seed, t->arena, NULL, &v);
        t->best_valid = v.value;
    }
    free(params);
    return rc;
}

/* Opens o->resume_dir's run: log.csv's settings checked against this run, the
 * checkpoint into params, m, v and step, the log cut to the checkpoint's epoch
 * and opened for appending. */
static int run_files_resume(trainer *t, char *err, size_t errlen) {
    run_files *f = &t->files;
    const vr_program *p = t->p;
    const char *dir = t->o->resume_dir;
    struct stat st;
    f->committed_epoch = -1;
    if (strlen(dir) + 32 > sizeof f->dir) return snprintf(err, errlen, "%s: the path is too long", dir), -1;
    snprintf(f->dir, sizeof f->dir, "%s", dir);
    snprintf(f->ckpt, sizeof f->ckpt, "%s/%s", f->dir, RUN_FILES[0]);
    snprintf(f->log, sizeof f->log, "%s/%s", f->dir, RUN_FILES[1]);
    snprintf(f->best, sizeof f->best, "%s/%s", f->dir, RUN_FILES[2]);
    if (stat(dir, &st) != 0) return snprintf(err, errlen, "%s: cannot resume: %s", dir, strerror(errno)), -1;
    if (!S_ISDIR(st.st_mode)) return snprintf(err, errlen, "%s: cannot resume: not a folder", dir), -1;
    if (lstat(f->ckpt, &st) != 0)
        return snprintf(err, errlen, "%s: no checkpoint to resume from (%s: %s)", dir, f->ckpt, strerror(errno)), -1;
    remove_stale_temps(f->dir);
    char *log = read_log_file(f->log, err, errlen);
    long step = 0;
    int rc = -1;
    if (!log || check_run_settings(t, log, err, errlen) ||
        vr_checkpoint_load(f->ckpt, p->tensors, p->ntensors, t->params, t->m, t->v, &step, err, errlen))
        goto done;
    if (step < 0 || step % t->nbatches != 0) { /* the settings matched: a checkpoint from elsewhere */
        snprintf(err, errlen, "%s: its step %ld is not a whole number of epochs of this run's %d batches (batch %d, "
                              "%d examples): it is not this run's checkpoint", f->ckpt, step, t->nbatches,
                 t->batch, t->n);
        goto done;
    }
    t->step = step;
    t->start_epoch = (int)(step / t->nbatches);
    if (resume_best(t, err, errlen) || cut_log(t, log, t->start_epoch, err, errlen)) goto done;
    f->committed_epoch = t->start_epoch;
    f->log_fd = open(f->log, O_WRONLY | O_APPEND | O_NOFOLLOW);
    if (f->log_fd < 0) snprintf(err, errlen, "%s: cannot write: %s", f->log, strerror(errno));
    else rc = 0;
done:
    free(log);
    return rc;
}

/* ---- shards and processes (docs/cluster.md)
 * A batch of B examples is cut into S shards of B/S consecutive examples; shard
 * k's noise is keyed by its examples' places in the whole batch (example0 =
 * k B/S), so a shard computes what the whole batch would for those examples.
 * Each shard's gradient has a buffer of its own, and the S are summed in one
 * fixed pairwise tree (tree_sum), then divided by S: the batch mean.  P
 * processes each take S/P consecutive shards; when S/P is a power of two a
 * process's shards are a whole subtree, so it sums them and the processes
 * exchange one partial sum each; otherwise they exchange every shard.  Either
 * way every process adds the same numbers in the same order, and holds the
 * same bits as one process with S shards. */

/* 64-bit FNV-1a of n bytes, continuing from h. */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t n) {
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* The first n examples of a data set, as it holds them. */
static uint64_t hash_data(uint64_t h, const vr_dataset *ds, int n) {
    size_t rows = (size_t)(n < ds->n ? n : ds->n), dim = (size_t)ds->dim;
    if (ds->bits) return hash_bytes(h, ds->bits, rows * ((dim + 7) / 8));
    if (ds->f32) return hash_bytes(h, ds->f32, rows * dim * sizeof(float));
    if (ds->u8) return hash_bytes(h, ds->u8, rows * dim);
    return h;
}

/* What the processes must agree on: the settings, the epochs, the data, the caller's hash (the model's text). */
static uint64_t setup_hash(const trainer *t) {
    const vr_options *o = t->o;
    char text[LOG_SETTINGS_MAX + VR_PATH_MAX + 128], test[VR_PATH_MAX + 8];
    log_settings(text, sizeof text, t->p, o, t->n);
    size_t n = strlen(text);
    snprintf(text + n, sizeof text - n, "epochs %d test %s %d resume %d\n", o->epochs, one_line(test, sizeof test, o->test),
             o->test_limit, o->resume_dir != NULL);
    uint64_t h = hash_bytes(0xcbf29ce484222325ull, text, strlen(text));
    h = hash_bytes(h, &o->setup_hash, sizeof o->setup_hash);
    h = hash_data(h, &t->train, t->n + t->valid.n);
    return o->test ? hash_data(h, &t->test, t->test.n) : h;
}

/* At the start, every process's state: whether it loaded its data, and its
 * setup's hash.  0 when all started and agree; -1 otherwise, on every process
 * (err says why on process 0, and on a process that failed itself; empty elsewhere). */
static int agree_setup(trainer *t, int failed, char *err, size_t errlen) {
    const vr_comm *c = t->comm;
    struct {
        uint64_t failed, hash;
    } mine = {failed != 0, failed ? 0 : setup_hash(t)}, *all = xcalloc((size_t)c->size, sizeof mine);
    c->allgather(c->self, &mine, all, sizeof mine);
    int down = -1, differs = -1;
    for (int r = c->size - 1; r >= 0; r--) {
        if (all[r].failed) down = r;
        else if (!all[0].failed && all[r].hash != all[0].hash) differs = r;
    }
    free(all);
    if (failed) return -1; /* its own message is in err */
    err[0] = 0;
    if (down >= 0 || differs >= 0 || shard_count(t->o) % c->size != 0) {
        if (c->rank != 0) return -1;
        if (down >= 0)
            snprintf(err, errlen, "process %d of %d could not start (its message above): no process trains", down, c->size);
        else if (differs >= 0)
            snprintf(err, errlen, "process %d of %d differs from process 0 in the model, the data or the settings (a hash "
                                  "of them is compared): every process must run the same command on the same files; "
                                  "no process trains", differs, c->size);
        else
            snprintf(err, errlen, "%d processes cannot share %d shard%s: the number of processes must divide the shards "
                                  "(--shards S, or shards = S in the train block); no process trains",
                     c->size, shard_count(t->o), plural(shard_count(t->o)));
        return -1;
    }
    return 0;
}

/* Process 0's n bytes to every process. */
static void share_from_first(const vr_comm *c, void *buf, size_t n) {
    char *all = xcalloc((size_t)c->size, n);
    c->allgather(c->self, buf, all, n);
    memcpy(buf, all, n);
    free(all);
}

/* After process 0 opened the run files (rc): whether it could, and with
 * --resume its checkpoint's parameters, moments and step, to every process. */
static int share_start(trainer *t, int rc, char *err) {
    int32_t failed = rc != 0;
    share_from_first(t->comm, &failed, sizeof failed);
    if (failed) {
        if (t->rank) err[0] = 0; /* process 0 says why */
        return -1;
    }
    if (!t->o->resume_dir) return 0; /* every process made the same initial parameters */
    int64_t state[2] = {t->step, t->start_epoch};
    share_from_first(t->comm, state, sizeof state);
    share_from_first(t->comm, &t->best_valid, sizeof t->best_valid);
    t->step = (long)state[0];
    t->start_epoch = (int)state[1];
    share_from_first(t->comm, t->params, t->P * sizeof(float));
    share_from_first(t->comm, t->m, t->P * sizeof(float));
    share_from_first(t->comm, t->v, t->P * sizeof(float));
    return 0;
}

/* Whether n is a power of two (1 included). */
static int power_of_two(int n) { return n > 0 && (n & (n - 1)) == 0; }

/* The buffers of shards: one gradient a local shard, and what the processes exchange. */
static void shards_open(trainer *t) {
    int S = shard_count(t->o), size = t->comm ? t->comm->size : 1;
    t->local = S / size;
    t->first = t->rank * t->local;
    if (S == 1 && !t->comm) return; /* the graph writes grads: today's step, bit for bit */
    t->shard_grads = xcalloc((size_t)t->local * t->P, sizeof(float));
    t->values = xcalloc((size_t)t->batch, sizeof(float));
    if (!t->comm) return;
    t->gathered = xcalloc((size_t)(power_of_two(t->local) ? size : S) * t->P, sizeof(float));
    t->local_values = xcalloc((size_t)t->local * (size_t)t->p->train.batch, sizeof(float));
}

typedef struct {
    float *a;
    const float *b;
} add_job;

static void add_rows(const void *arg, long lo, long hi) {
    const add_job *j = arg;
    for (long i = lo; i < hi; i++) j->a[i] += j->b[i];
}

/* Sums n buffers of len floats, one after another, into the first: in rounds
 * of stride 1, 2, 4, ..., buffer i += buffer i + stride for i a multiple of
 * 2 stride.  The order is fixed by n alone; the threads share each addition's
 * elements, which changes no bit. */
static void tree_sum(float *bufs, int n, size_t len) {
    for (int stride = 1; stride < n; stride *= 2)
        for (int i = 0; i + stride < n; i += 2 * stride) {
            add_job j = {bufs + (size_t)i * len, bufs + (size_t)(i + stride) * len};
            vr_split(add_rows, &j, (long)len);
        }
}

/* The sharded step's gradient: this process's shards of batch b, their sum
 * with the other processes' (the same bits on each), the batch mean in grads;
 * the batch's per-example objective in values. */
static void sharded_gradient(trainer *t, const block_source *src, int b, vr_ctx ctx) {
    const vr_graph *g = &t->p->train;
    int Bs = g->batch, S = shard_count(t->o);
    for (int k = 0; k < t->local; k++) {
        int shard = t->first + k;
        gather_block(t->p, src, t->order + (size_t)b * (size_t)t->batch + (size_t)shard * (size_t)Bs, Bs, t->x);
        ctx.example0 = (uint64_t)shard * (uint64_t)Bs; /* the noise of these examples in the whole batch */
        vr_program_poll(t->p, g);
        g->fn(t->params, t->shard_grads + (size_t)k * t->P, t->arena, t->x, &ctx);
        float *values = t->comm ? t->local_values + (size_t)k * (size_t)Bs : t->values + (size_t)shard * (size_t)Bs;
        memcpy(values, t->arena + g->value_rows, (size_t)Bs * sizeof(float));
    }
    const float *sum = t->shard_grads;
    if (t->comm) {
        double c0 = now();
        const vr_comm *c = t->comm;
        int partial = power_of_two(t->local); /* this process's shards are a whole subtree of the tree */
        if (partial) tree_sum(t->shard_grads, t->local, t->P);
        c->allgather(c->self, t->shard_grads, t->gathered, (partial ? 1 : (size_t)t->local) * t->P * sizeof(float));
        c->allgather(c->self, t->local_values, t->values, (size_t)t->local * (size_t)Bs * sizeof(float));
        tree_sum(t->gathered, partial ? c->size : S, t->P);
        sum = t->gathered;
        t->gather_seconds += now() - c0;
    } else
        tree_sum(t->shard_grads, S, t->P);
    for (size_t i = 0; i < t->P; i++) t->grads[i] = sum[i] / (float)S;
}

static void optimizer_segments(trainer *t);

static int trainer_open(trainer *t, const vr_program *p, const vr_options *o, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    t->p = p;
    t->o = o;
    t->files.log_fd = -1;
    t->best_valid = -INFINITY;
    t->comm = o->comm && o->comm->size > 1 ? o->comm : NULL;
    t->rank = t->comm ? t->comm->rank : 0;
    t->batch = p->train.batch * shard_count(o);
    int rc = -1;
    if (o->schedule.step_epochs > 0 && o->schedule.cosine_epochs > 0)
        snprintf(err, errlen, "lr_step_epochs and lr_cosine_epochs: a run decays its learning rate one way; choose one");
    else
        rc = load_data(t, err, errlen);
    if (t->comm && agree_setup(t, rc, err, errlen)) return -1;
    if (rc) return -1;
    const vr_graph *g = &p->train;
    t->P = (size_t)p->param_floats;
    t->params = xcalloc(t->P, sizeof(float));
    t->grads = xcalloc(t->P, sizeof(float));
    t->m = xcalloc(t->P, sizeof(float));
    t->v = xcalloc(t->P, sizeof(float));
    long arena_floats = g->arena_floats > p->eval.arena_floats ? g->arena_floats : p->eval.arena_floats;
    t->arena = xcalloc((size_t)arena_floats, sizeof(float)); /* the step's, then each epoch's evaluation's */
    t->x = xcalloc(block_floats(p, g->batch), sizeof(float)); /* one shard's data block */
    t->order = xcalloc(t->semi.steps ? (size_t)t->semi.steps * (size_t)t->batch : (size_t)t->train.n, sizeof(int));
    shards_open(t);
    vr_init_params(p, t->params, o->seed);
    t->adam = (vr_adam){(float)o->lr, 0.9f, 0.999f, 1e-8f};
    optimizer_segments(t);
    if (t->rank == 0) rc = o->resume_dir ? run_files_resume(t, err, errlen) : run_files_open(&t->files, p, o, t->n, err, errlen);
    return t->comm ? share_start(t, rc, err) : rc;
}

static void trainer_close(trainer *t) {
    if (t->files.log_fd >= 0) close(t->files.log_fd);
    free(t->params);
    free(t->grads);
    free(t->m);
    free(t->v);
    free(t->segs);
    free(t->arena);
    free(t->x);
    free(t->order);
    free(t->kept);
    free(t->lab);
    free(t->unl);
    free(t->shard_grads);
    free(t->gathered);
    free(t->values);
    free(t->local_values);
    vr_data_free(&t->train);
    vr_data_free(&t->test);
}

/* ---- the fault guard */

static long count_nonfinite(const float *a, long n) {
    long bad = 0;
    for (long i = 0; i < n; i++) bad += !isfinite(a[i]);
    return bad;
}

/* Whether every float is finite, by its exponent bits (a loop that vectorises). */
static int all_finite(const float *a, size_t n) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, a + i, 4);
        bad |= (uint32_t)((u & 0x7F800000u) == 0x7F800000u);
    }
    return !bad;
}

/* The first parameter tensor (in the model's order) with a non-finite value in buf, or -1. */
static int first_nonfinite_tensor(const vr_program *p, const float *buf) {
    long off = 0;
    for (int i = 0; i < p->ntensors; i++) {
        if (count_nonfinite(buf + off, p->tensors[i].size)) return i;
        off += p->tensors[i].size;
    }
    return -1;
}

/* One line per term the training graph exposes: non-finite rows, or the largest magnitude. */
static void report_term(const char *name, const float *rows, long n) {
    long bad = count_nonfinite(rows, n);
    double big = 0;
    for (long i = 0; i < n; i++)
        if (isfinite(rows[i]) && fabs(rows[i]) > big) big = fabs(rows[i]);
    if (bad) fprintf(stderr, "  %-16s non-finite in %ld of %ld rows\n", name, bad, n);
    else fprintf(stderr, "  %-16s finite (largest magnitude %.3g)\n", name, big);
}

/* The parameter tensors whose gradient is not finite: how many, the first in
 * the model's order and the last (the decoder's, nearest the objective, come last). */
static void report_gradient(const vr_program *p, const float *grads, int first) {
    if (first < 0) {
        fprintf(stderr, "  gradient         finite\n");
        return;
    }
    long off = 0;
    int bad = 0, last = first;
    for (int i = 0; i < p->ntensors; off += p->tensors[i].size, i++)
        if (count_nonfinite(grads + off, p->tensors[i].size)) {
            bad++;
            last = i;
        }
    fprintf(stderr, "  gradient         non-finite in %d of %d tensors: first '%s'", bad, p->ntensors, p->tensors[first].name);
    if (last != first) fprintf(stderr, ", last '%s'", p->tensors[last].name);
    fputc('\n', stderr);
}

/* The likely cause of a fault, in words.  bad_update: the objective was
 * finite, but an update made parameters non-finite (a non-finite gradient). */
static const char *likely_cause(const trainer *t, double value, long bad_data, int bad_update) {
    if (bad_data) return "NaN or infinite values in the data";
    if (bad_update)
        return "a gradient that went non-finite while the objective was finite: a scale or variance that reached zero, "
               "or a square root or log at 0";
    if (isfinite(value) && fabs(value) > VR_OBJECTIVE_MAX)
        return "too high a learning rate: the parameters grew until the objective exploded (lower --lr)";
    if (t->step == 0)
        return "the model at its initial parameters (no update has been made, so not the learning rate): a zero scale "
               "or variance, a log or division at 0, or a probability of exactly 0 or 1";
    return "too high a learning rate (lower --lr), or a scale, variance or probability that reached 0 or 1";
}

/* Says what went wrong, where, and the likely cause.  after_update: the fault
 * is in the parameters an update made (found before the epoch's commit), not
 * in the objective of the step being taken. */
static void report_fault(const trainer *t, int epoch, int b, double value, int after_update) {
    const vr_program *p = t->p;
    const vr_graph *g = &p->train;
    long B = g->batch, S = g->samples;
    int param = first_nonfinite_tensor(p, t->params);
    long bad_data = count_nonfinite(t->x, B * p->data_dim);
    if (t->o->progress) fputs("\r\033[K", stderr);
    fprintf(stderr, "\nvaec: error: training stopped at step %ld (epoch %d, batch %d of %d): ",
            t->step + (after_update ? 0 : 1), epoch, b + 1, t->nbatches);
    if (after_update) fprintf(stderr, "its update made parameters non-finite (the objective was %.3f)\n", value);
    else if (!isfinite(value)) fprintf(stderr, "the objective (%s) is %g\n", p->value_name, value);
    else fprintf(stderr, "the objective (%s) exploded to %.3g per example (the bound is %g nats)\n", p->value_name, value,
                 VR_OBJECTIVE_MAX);
    report_term(p->value_name, t->values ? t->values : t->arena + g->value_rows, t->batch); /* the other terms: a shard's */
    if (g->recon_rows >= 0) report_term("log p(x | z)", t->arena + g->recon_rows, B * S);
    if (g->kl_rows >= 0) report_term("KL", t->arena + g->kl_rows, B);
    if (g->logw_rows >= 0) report_term("log weights", t->arena + g->logw_rows, B * S);
    report_gradient(p, t->grads, first_nonfinite_tensor(p, t->grads));
    if (param >= 0) /* a step's update leaves a tensor non-finite only where its gradient was */
        fprintf(stderr, "  parameters       non-finite first in '%s': the gradient of the update at step %ld was not "
                        "finite there\n", p->tensors[param].name, t->step);
    if (bad_data) fprintf(stderr, "  data             %ld NaN or infinite values in this batch\n", bad_data);
    fprintf(stderr, "  likely cause     %s\n", likely_cause(t, value, bad_data, param >= 0));
    if (t->files.committed_epoch >= 0)
        fprintf(stderr, "  kept             %s (epoch %d), the last good checkpoint; nothing of epoch %d was written\n",
                t->files.ckpt, t->files.committed_epoch, epoch);
    else if (t->files.log_fd >= 0) fprintf(stderr, "  no checkpoint was written (the fault came before the first epoch ended)\n");
}

double vr_lr_at(const vr_options *o, long step, int nbatches) {
    const vr_lr_schedule *s = &o->schedule;
    const double pi = 3.14159265358979323846;
    double lr = o->lr;
    if (s->step_epochs > 0)
        lr *= pow(s->step_factor, (double)(step / ((long)s->step_epochs * nbatches)));
    else if (s->cosine_epochs > 0)
        lr = s->min_lr + (o->lr - s->min_lr) * 0.5 * (1 + cos(pi * fmin(1.0, (double)step / nbatches / s->cosine_epochs)));
    if (step < s->warmup_steps) lr *= (double)(step + 1) / (double)s->warmup_steps;
    return lr;
}

double vr_clip_norm(float *g, size_t n, double max_norm) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)g[i] * (double)g[i];
    double norm = sqrt(sum);
    if (norm > max_norm) { /* not where the norm is NaN: the fault guard reports that */
        float scale = (float)(max_norm / norm);
        for (size_t i = 0; i < n; i++) g[i] *= scale;
    }
    return norm;
}

/* The runs of consecutive tensors that share an optimiser (one run without per-network ones); the
 * state tensors after the trained ones (nvil's running statistics) are in none. */
static void optimizer_segments(trainer *t) {
    const vr_program *p = t->p;
    const vr_options *o = t->o;
    t->segs = xcalloc((size_t)p->ntensors + 1, sizeof *t->segs);
    t->nsegs = 0;
    size_t off = 0, trained = (size_t)vr_trained_floats(p);
    for (int i = 0; i < p->ntensors && off < trained; i++) {
        int g = o->ngroups > 0 && o->tensor_group ? o->tensor_group[i] : 0;
        if (t->nsegs == 0 || t->segs[t->nsegs - 1].group != g) t->segs[t->nsegs++] = (struct opt_segment){off, 0, g};
        t->segs[t->nsegs - 1].n += (size_t)p->tensors[i].size;
        off += (size_t)p->tensors[i].size;
    }
}

/* The update after the step's gradient: each run of tensors by its optimiser.  `lr` is the
 * default's learning rate at this step; a group's is its own lr times the schedule's factor
 * (lr / o->lr).  Both optimisers work element by element, so cutting the buffer into runs
 * changes no bit. */
static void update(trainer *t, double lr) {
    const vr_options *o = t->o;
    for (int i = 0; i < t->nsegs; i++) {
        const struct opt_segment *s = &t->segs[i];
        const vr_optim_group *g = s->group > 0 ? &o->groups[s->group - 1] : NULL;
        vr_optimizer kind = g ? g->optimizer : o->optimizer;
        double at = g ? g->lr * (lr / o->lr) : lr, momentum = g ? g->momentum : o->momentum;
        t->adam.lr = (float)at;
        if (kind == VR_ADAM)
            vr_adam_f32(t->params + s->off, t->grads + s->off, t->m + s->off, t->v + s->off, s->n, &t->adam, t->step);
        else /* the velocity lives in m */
            vr_sgd_f32(t->params + s->off, t->grads + s->off, t->m + s->off, s->n, (float)at, (float)momentum);
    }
}

/* Between the gradient and the update (see the top of this section).  Sets
 * *value to the step's mean objective; 0, or 1 after reporting a fault.  The
 * gradient is not scanned here: a pass over it costs as much as Adam's (4% of
 * fashion_gauss's step).  A non-finite gradient element makes its parameter
 * non-finite in the update, which the next step's objective shows, and
 * epoch_commit scans the parameters before anything is written. */
static int before_update(trainer *t, int epoch, int b, double *value) {
    const vr_graph *g = &t->p->train;
    const float *rows = t->values ? t->values : t->arena + g->value_rows; /* the whole batch's, with shards */
    double v = 0;
    for (int i = 0; i < t->batch; i++) v += rows[i];
    v /= t->batch;
    *value = v;
    size_t trained = (size_t)vr_trained_floats(t->p); /* the running statistics after them are not a gradient */
    if (t->o->clip > 0 && vr_clip_norm(t->grads, trained, t->o->clip) > t->o->clip) t->clipped++; /* every process alike */
    if (isfinite(v) && fabs(v) <= VR_OBJECTIVE_MAX) return 0;
    if (t->rank == 0) report_fault(t, epoch, b, v, 0); /* every process finds the same fault: one says so */
    return 1;
}

/* ---- steps and epochs */

/* Batch b of `epoch`: its objective's mean in *value.  0, or 1 after a fault (reported). */
static int train_step(trainer *t, int epoch, int b, double *kl_in_force, double *value) {
    const vr_program *p = t->p;
    const vr_options *o = t->o;
    const vr_graph *g = &p->train;
    block_source src = {&t->train, t->kept, 0, o->seed, (uint64_t)epoch};
    if (!t->shard_grads) gather_block(p, &src, t->order + (size_t)b * (size_t)g->batch, g->batch, t->x);
    double c0 = now();
    vr_ctx ctx = {.seed = o->seed, .step = (uint64_t)t->step, .example0 = 0, .sample0 = 0};
    if (o->warmup > 0) /* the KL weight rises linearly from 0 to beta over `warmup` epochs */
        ctx.kl_withheld = fmax(0.0, 1.0 - (epoch - 1 + (double)b / t->nbatches) / o->warmup);
    *kl_in_force = 1.0 - ctx.kl_withheld;
    vr_program_poll(p, g); /* a tiered JIT swaps in optimised code between calls */
    if (t->step == 0 && getenv("VAEC_TIMING")) { /* the wall clock, for launch-to-first-step (bench/run.sh) */
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        fprintf(stderr, "first step at %lld.%09ld (CLOCK_REALTIME)\n", (long long)wall.tv_sec, wall.tv_nsec);
    }
    if (t->shard_grads) sharded_gradient(t, &src, b, ctx);
    else g->fn(t->params, t->grads, t->arena, t->x, &ctx);
    if (before_update(t, epoch, b, value)) return 1;
    double lr = vr_lr_at(o, t->step, t->nbatches); /* o->lr itself without a schedule */
    t->step++;
    update(t, lr);
    vr_keep_state(p, t->params, t->grads); /* nvil's running statistics: their next values, not an update */
    t->compute += now() - c0;
    return 0;
}

/* A duration as 42s, 3m05s or 2h07m. */
static const char *duration(char *buf, size_t len, double seconds) {
    long s = isfinite(seconds) && seconds > 0 ? (long)(seconds + 0.5) : 0;
    if (s < 60) snprintf(buf, len, "%lds", s);
    else if (s < 3600) snprintf(buf, len, "%ldm%02lds", s / 60, s % 60);
    else snprintf(buf, len, "%ldh%02ldm", s / 3600, s / 60 % 60);
    return buf;
}

/* The progress line on stderr, redrawn in place: batches done of the epoch's,
 * the running mean objective, examples a second, and the time left in the epoch
 * and in the run (at this epoch's pace; the evaluations are not counted). */
static void progress_bar(const trainer *t, int epoch, int done, double value, double elapsed) {
    int width = 24, total = t->nbatches, fill = (int)((long)done * width / total); /* done * 24 passes int at 72M */
    char bar[64], epoch_left[48], run_left[48];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[width] = 0;
    double per_batch = elapsed / done, left = (total - done) * per_batch;
    fprintf(stderr, "\r\033[K  epoch %d/%d [%s] %d/%d  %s %8.2f  %6.0f ex/s  ETA %s, run %s", epoch, t->o->epochs, bar, done,
            total, t->p->value_name, value, done * (double)t->batch / elapsed,
            duration(epoch_left, sizeof epoch_left, left),
            duration(run_left, sizeof run_left, left + (t->o->epochs - epoch) * total * per_batch));
    fflush(stderr);
}

/* The epoch's line on stdout.  valid: the validation scores (NULL: none); best: they are the best yet. */
static void print_epoch(const trainer *t, int epoch, double train_value, double kl_in_force, double seconds,
                        const vr_scores *s, const vr_scores *valid, int best) {
    const vr_program *p = t->p;
    const vr_options *o = t->o;
    long examples = (long)t->nbatches * t->batch;
    printf("epoch %2d  train %s %9.3f", epoch, p->value_name, train_value);
    if (valid) printf("  valid %s %9.3f%s", p->eval_value_name, valid->value, best ? " (best)" : "       ");
    if (o->test && s->has_elbo) printf("  test ELBO %9.3f (recon %9.3f, KL %7.3f)", s->elbo, s->recon, s->kl);
    else if (o->test) printf("  test %s %9.3f", p->eval_value_name, s->value);
    if (o->test && s->has_logpx && s->has_elbo) printf("  log p(x) %9.3f", s->exact_logpx);
    if (o->test && classifies(p)) printf("  test error %6.2f%%", 100 * s->classify_error);
    if (o->warmup > 0) printf("  KL weight x%.3f", kl_in_force);
    if (o->clip > 0) printf("  clipped %d of %d steps", t->clipped, t->nbatches);
    printf("  %.2f s, %.0f ex/s (step only %.0f ex/s", seconds, examples / seconds, examples / t->compute);
    if (t->comm) printf("; exchange %.2f ms a step", 1e3 * t->gather_seconds / t->nbatches);
    printf(")\n");
    fflush(stdout);
}

/* After an epoch: the test and validation evaluations, the epoch's line, its checkpoints and log row. */
static int epoch_commit(trainer *t, int epoch, double train_value, double kl_in_force, double seconds) {
    const vr_program *p = t->p;
    const vr_options *o = t->o;
    long examples = (long)t->nbatches * t->batch;
    vr_scores s = {0}, v = {0};
    if (o->test) evaluate_in(p, t->params, &t->test, o->test_limit, o->seed, t->arena, t->comm, &s);
    if (t->valid.n) evaluate_in(p, t->params, &t->valid, 0, o->seed, t->arena, t->comm, &v);
    int best = t->valid.n && v.value > t->best_valid; /* the first of equal epochs stays the best */
    if (best) t->best_valid = v.value;
    print_epoch(t, epoch, train_value, kl_in_force, seconds, &s, t->valid.n ? &v : NULL, best);
    char row[640], err[VR_ERR_MAX], error_col[32] = "", valid_col[32] = "";
    if (classifies(p)) snprintf(error_col, sizeof error_col, "%.6f,", o->test ? s.classify_error : NAN);
    if (t->valid.n) snprintf(valid_col, sizeof valid_col, "%.6f,", v.value);
    snprintf(row, sizeof row, "%d,%ld,%.6f,%.6f,%.6f,%.6f,%.6f,%s%s%.4f,%.4f,%.1f\n", epoch, t->step, train_value,
             o->test ? s.value : NAN, o->test && s.has_elbo ? s.recon : NAN, o->test && s.has_elbo ? s.kl : NAN,
             o->test && s.has_logpx ? s.exact_logpx : NAN, error_col, valid_col, kl_in_force, seconds,
             examples / seconds);
    if (run_files_commit(t, epoch, best, row, err, sizeof err)) {
        fprintf(stderr, "vaec: error: %s\n", err);
        return 1;
    }
    const vr_hooks *h = &o->hooks;
    vr_epoch_report r = {epoch, t->step, train_value, kl_in_force, seconds, o->test ? &s : NULL,
                         t->valid.n ? &v : NULL, o->test ? &t->test : NULL, t->params};
    return h->after_epoch && h->after_epoch(h->self, &r) ? 1 : 0;
}

/* Whether this process or another failed (rc): with processes, every one then stops. */
static int any_failed(const trainer *t, int rc) {
    if (!t->comm) return rc;
    int32_t mine = rc != 0, *all = xcalloc((size_t)t->comm->size, sizeof mine);
    t->comm->allgather(t->comm->self, &mine, all, sizeof mine);
    for (int r = 0; r < t->comm->size; r++) rc |= all[r];
    free(all);
    return rc != 0;
}

static int train_epoch(trainer *t, int epoch) {
    const vr_options *o = t->o;
    double t0 = now(), value_sum = 0, kl_in_force = 1;
    t->compute = 0;
    t->clipped = 0;
    t->gather_seconds = 0;
    if (!t->semi.steps)
        vr_shuffle(t->order, t->n, o->seed, (uint64_t)epoch);
    else if (vr_semi_order(&t->semi, t->lab, t->unl, o->seed, (uint64_t)epoch, t->order)) {
        fputs("vaec: out of memory\n", stderr);
        return 1;
    }
    double value = 0;
    for (int b = 0; b < t->nbatches; b++) {
        if (train_step(t, epoch, b, &kl_in_force, &value)) return 1;
        if (o->hooks.after_step) o->hooks.after_step(o->hooks.self, t->step, value);
        value_sum += value;
        if (o->progress && (b % 8 == 0 || b == t->nbatches - 1))
            progress_bar(t, epoch, b + 1, value_sum / (b + 1), now() - t0);
    }
    double seconds = now() - t0;
    if (o->progress) fputs("\r\033[K", stderr);
    if (!all_finite(t->params, t->P)) { /* the last update's gradient (see before_update): never committed */
        if (t->rank == 0) report_fault(t, epoch, t->nbatches - 1, value, 1);
        return 1;
    }
    return any_failed(t, epoch_commit(t, epoch, value_sum / t->nbatches, kl_in_force, seconds));
}

int vr_train(const vr_program *p, const vr_options *o) {
    char err[VR_ERR_MAX];
    vr_flush_denormals();
    trainer t;
    if (trainer_open(&t, p, o, err, sizeof err)) {
        if (err[0]) fprintf(stderr, "vaec: error: %s\n", err); /* empty: another process says why */
        trainer_close(&t);
        return 1;
    }
    int B = t.batch, rc = 0;
    /* each epoch shuffles all n examples and takes whole batches: n - nbatches * B of them sit out, others each epoch */
    printf("training %s on %d examples, %d batch%s of %d an epoch", p->model_name, t.n, t.nbatches,
           t.nbatches == 1 ? "" : "es", B);
    if (t.semi.steps)
        printf(" (%d labelled, %d of each batch; %d unlabelled, %d left out)", t.semi.nlab, t.semi.Bl, t.semi.nunl,
               t.semi.nunl - t.nbatches * (B - t.semi.Bl));
    else if (t.n > t.nbatches * B)
        printf(" (%d left out, others each epoch)", t.n - t.nbatches * B);
    printf(", %d epoch%s, %s lr %g", o->epochs, plural(o->epochs), o->optimizer == VR_ADAM ? "adam" : "sgd", o->lr);
    for (int g = 0; g < o->ngroups; g++)
        printf("; %s: %s lr %g", o->groups[g].target, o->groups[g].optimizer == VR_ADAM ? "adam" : "sgd", o->groups[g].lr);
    putchar('\n');
    if (shard_count(o) > 1 || t.comm)
        printf("each batch in %d shard%s of %d, summed in a fixed tree; %d process%s\n", shard_count(o),
               plural(shard_count(o)), p->train.batch, t.comm ? t.comm->size : 1, t.comm ? "es" : "");
    fflush(stdout);
    const vr_hooks *h = &o->hooks;
    if (t.start_epoch > 0 || o->resume_dir)
        printf("resuming %s after epoch %d (step %ld)%s\n", t.files.dir, t.start_epoch, t.step,
               t.start_epoch >= o->epochs ? "; it has all the epochs asked for (--epochs is the total)" : "");
    if (h->begin && t.files.log_fd >= 0 && h->begin(h->self, t.files.dir)) rc = 1;
    rc = any_failed(&t, rc);
    for (int epoch = t.start_epoch + 1; epoch <= o->epochs && !rc; epoch++) rc = train_epoch(&t, epoch);
    int initial = o->epochs == 0 && !o->resume_dir; /* --epochs 0: the initial parameters */
    if (!rc && initial && run_files_commit(&t, 0, 0, NULL, err, sizeof err)) {
        fprintf(stderr, "vaec: error: %s\n", err);
        rc = 1;
    }
    if (!rc && initial && t.files.committed_epoch == 0) printf("wrote the initial parameters to %s (0 epochs)\n", t.files.ckpt);
    else if (!rc && t.files.committed_epoch > 0) printf("wrote %s and %s\n", t.files.ckpt, t.files.log);
    if (h->end && h->end(h->self)) rc = 1;
    trainer_close(&t);
    return rc;
}

/* What vaec eval prints: the ELBO and its terms (or the evaluation's value),
 * then log p(x), exact or by IWAE, and the KL gap where it means something. */
static void print_scores(const vr_program *p, const vr_options *o, const float *params, const vr_dataset *test,
                         vr_scores *s) {
    printf("test examples  %d\n", s->n);
    if (classifies(p) && !isnan(s->classify_error))
        printf("classify error %.2f%% (q(y | x)'s most probable class is not the label)\n", 100 * s->classify_error);
    else if (classifies(p))
        printf("classify error unknown (the test data has no labels)\n");
    if (s->has_elbo) {
        printf("ELBO           %.3f nats\n", s->elbo);
        printf("  recon        %.3f\n", s->recon);
        printf("  KL           %.3f\n", s->kl);
    } else if (!s->has_logpx || p->eval.value_rows != p->eval.logpx_rows) /* not the exact log p(x) below again */
        printf("%-14s %.3f nats\n", p->eval_value_name, s->value);
    if (s->has_logpx) {
        printf("log p(x)       %.3f nats (exact: the sum over every joint state)\n", s->exact_logpx);
        if (s->has_elbo) printf("KL gap         %.3f (exact: log p(x) minus ELBO)\n", s->exact_logpx - s->elbo);
    } else if (o->iwae > 0 && p->iwae.batch > 0) { /* the model has an IWAE graph */
        double t0 = now();
        evaluate_iwae_in(p, params, test, o->test_limit, o->seed, o->iwae, o->comm,
                         o->progress && (!o->comm || o->comm->rank == 0), s);
        char se[64] = "";
        if (!isnan(s->logpx_se)) snprintf(se, sizeof se, " +- %.3f", s->logpx_se);
        printf("log p(x)       %.3f%s nats (IWAE, K = %d, %.1f s)\n", s->logpx, se, o->iwae, now() - t0);
        if (isnan(s->logpx_se)) printf("               (its standard error is unknown: fewer than 2 examples)\n");
        if (o->iwae == 1) /* one sample: no tighter than the ELBO, only a noisy estimate of it */
            printf("               (K = 1 is a one-sample estimate of the ELBO, not a tighter bound: no KL gap)\n");
        else if (s->has_elbo) /* the IWAE estimate is itself a lower bound on log p(x) */
            printf("KL gap       >= %.3f (at least: the IWAE bound minus the ELBO)\n", s->logpx - s->elbo);
    }
}

int vr_eval(const vr_program *p, const vr_options *o) {
    char err[1024];
    vr_flush_denormals();
    if (!o->test) {
        fprintf(stderr, "vaec: no test data: set test = \"...\" in the train block or pass --test\n");
        return 1;
    }
    float *params = xcalloc((size_t)p->param_floats, sizeof(float));
    if (vr_checkpoint_load(o->params, p->tensors, p->ntensors, params, NULL, NULL, NULL, err, sizeof err)) {
        fprintf(stderr, "vaec: error: %s\n", err);
        free(params);
        return 1;
    }
    vr_dataset test;
    if (vr_data_load(&test, o->test, o->data_dir, p->data_dim, data_mode(p), err, sizeof err) ||
        (p->label_states > 0 && load_labels(p, &test, o->test, o->test_labels, "--test-labels", "test_labels",
                                            !p->label_inferred, o, err, sizeof err))) {
        vr_data_free(&test);
        fprintf(stderr, "vaec: error: %s\n", err);
        free(params);
        return 1;
    }
    vr_scores s = {0};
    float *arena = xcalloc((size_t)p->eval.arena_floats, sizeof(float));
    evaluate_in(p, params, &test, o->test_limit, o->seed, arena, o->comm, &s); /* shared by the processes, if any */
    free(arena);
    print_scores(p, o, params, &test, &s);
    vr_data_free(&test);
    free(params);
    return 0;
}
