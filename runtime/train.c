/* The training driver: epochs of shuffled batches through the compiled step,
 * the optimiser, evaluation, log.csv and checkpoints.  Buffers are allocated
 * once before the first step; a step allocates nothing. */
#include "vae/driver.h"

#include <errno.h>
#include <math.h>
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
} gather_job;

static void gather_rows(const void *arg, long lo, long hi) {
    const gather_job *j = arg;
    vr_data_gather_f32(j->ds, j->idx + lo, (int)(hi - lo), j->x + (size_t)lo * (size_t)j->ds->dim);
}

static void gather_batch(const vr_dataset *ds, const int *idx, int n, float *x) {
    gather_job j = {ds, idx, x};
    vr_split(gather_rows, &j, n);
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

/* Evaluation in `arena` (at least the eval graph's arena_floats; training passes
 * its own, so the two never hold memory at once). */
static void evaluate_in(const vr_program *p, const float *params, const vr_dataset *ds, int limit, uint64_t seed,
                        float *arena, vr_scores *out) {
    const vr_graph *g = &p->eval;
    int n = limit > 0 && limit < ds->n ? limit : ds->n, B = g->batch;
    float *x = xcalloc((size_t)B * (size_t)p->data_dim, sizeof(float));
    int *idx = xcalloc((size_t)B, sizeof(int));
    double value = 0, recon = 0, kl = 0, logpx = 0;
    int S = g->recon_rows >= 0 && g->kl_rows >= 0 ? g->samples : 1;
    for (int start = 0; start < n; start += B) {
        int m = n - start < B ? n - start : B;
        for (int i = 0; i < B; i++) idx[i] = start + (i < m ? i : m - 1); /* pad with the last example */
        gather_batch(ds, idx, B, x);
        vr_ctx ctx = {.seed = seed, .step = VR_STEP_EVAL, .example0 = (uint64_t)start, .sample0 = 0};
        vr_program_poll(p, g);
        g->fn((float *)params, NULL, arena, x, &ctx);
        for (int i = 0; i < m; i++) {
            if (g->value_rows >= 0) value += arena[g->value_rows + i];
            if (g->kl_rows >= 0) {
                double r = 0;
                for (int s = 0; s < S; s++) r += arena[g->recon_rows + i * S + s];
                recon += r / S;
                kl += arena[g->kl_rows + i];
            }
            if (g->logpx_rows >= 0) logpx += arena[g->logpx_rows + i];
        }
    }
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
}

void vr_evaluate(const vr_program *p, const float *params, const vr_dataset *ds, int limit, uint64_t seed,
                 vr_scores *out) {
    float *arena = xcalloc((size_t)p->eval.arena_floats, sizeof(float));
    evaluate_in(p, params, ds, limit, seed, arena, out);
    free(arena);
}

void vr_evaluate_iwae(const vr_program *p, const float *params, const vr_dataset *ds, int limit, uint64_t seed, int K,
                      vr_scores *out) {
    const vr_graph *g = &p->iwae;
    int n = limit > 0 && limit < ds->n ? limit : ds->n, B = g->batch, S = g->samples;
    float *arena = xcalloc((size_t)g->arena_floats, sizeof(float));
    float *x = xcalloc((size_t)B * (size_t)p->data_dim, sizeof(float));
    int *idx = xcalloc((size_t)B, sizeof(int));
    double *mx = xcalloc((size_t)B, sizeof(double)), *sum = xcalloc((size_t)B, sizeof(double));
    double total = 0, total2 = 0;
    for (int start = 0; start < n; start += B) {
        int m = n - start < B ? n - start : B;
        for (int i = 0; i < B; i++) {
            idx[i] = start + (i < m ? i : m - 1);
            mx[i] = -INFINITY;
            sum[i] = 0;
        }
        gather_batch(ds, idx, B, x);
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
        for (int i = 0; i < m; i++) {
            double lp = mx[i] + log(sum[i]) - log((double)K);
            total += lp;
            total2 += lp * lp;
        }
    }
    out->n = n;
    out->logpx = total / n;
    double var = n > 1 ? (total2 - total * total / n) / (n - 1) : 0;
    out->logpx_se = sqrt(var > 0 ? var / n : 0);
    free(arena);
    free(x);
    free(idx);
    free(mx);
    free(sum);
}

/* ---------------------------------------------------------------- training */

static int make_dir(const char *dir) {
    char buf[4096];
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

static void progress_bar(int epoch, int epochs, int done, int total, double elbo, double rate) {
    int width = 30, fill = total ? (int)((long)done * width / total) : width; /* done * 30 passes int at 72M batches */
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[width] = 0;
    fprintf(stderr, "\r  epoch %d/%d [%s] %d/%d  ELBO %8.2f  %6.0f ex/s ", epoch, epochs, bar, done, total, elbo, rate);
    fflush(stderr);
}

int vr_train(const vr_program *p, const vr_options *o) {
    char err[1024];
    vr_flush_denormals();
    vr_dataset train = {0}, test = {0};
    if (!o->data) {
        fprintf(stderr, "vaec: no training data: set data = \"...\" in the train block or pass --data\n");
        return 1;
    }
    if (vr_data_load(&train, o->data, o->data_dir, p->data_dim, p->binary, err, sizeof err)) {
        fprintf(stderr, "vaec: error: %s\n", err);
        return 1;
    }
    if (o->test && vr_data_load(&test, o->test, o->data_dir, p->data_dim, p->binary, err, sizeof err)) {
        fprintf(stderr, "vaec: error: %s\n", err);
        vr_data_free(&train);
        return 1;
    }
    const vr_graph *g = &p->train;
    int B = g->batch, n = o->limit > 0 && o->limit < train.n ? o->limit : train.n;
    int nbatches = n / B; /* the last partial batch is dropped: every step has the compiled shape */
    if (nbatches == 0) {
        fprintf(stderr, "vaec: error: %s: %d examples are fewer than one batch of %d\n", o->data, n, B);
        vr_data_free(&train);
        vr_data_free(&test);
        return 1;
    }
    FILE *log = NULL;
    char ckpt[4200] = "";
    if (o->out_dir) {
        if (make_dir(o->out_dir)) {
            fprintf(stderr, "vaec: error: %s: cannot create the output folder: %s\n", o->out_dir, strerror(errno));
            vr_data_free(&train);
            vr_data_free(&test);
            return 1;
        }
        char path[4200];
        snprintf(path, sizeof path, "%s/log.csv", o->out_dir);
        log = fopen(path, "w");
        if (!log) {
            fprintf(stderr, "vaec: error: %s: cannot write: %s\n", path, strerror(errno));
            vr_data_free(&train);
            vr_data_free(&test);
            return 1;
        }
        fprintf(log, "epoch,step,train_%s,test_%s,test_recon,test_kl,test_exact_logpx,kl_weight_factor,seconds,examples_per_second\n",
                p->value_name, p->eval_value_name);
        fflush(log);
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.vaeckpt", o->out_dir);
    }
    size_t P = (size_t)p->param_floats;
    float *params = xcalloc(P, sizeof(float)), *grads = xcalloc(P, sizeof(float));
    float *m = xcalloc(P, sizeof(float)), *v = xcalloc(P, sizeof(float));
    long arena_floats = g->arena_floats > p->eval.arena_floats ? g->arena_floats : p->eval.arena_floats;
    float *arena = xcalloc((size_t)arena_floats, sizeof(float)); /* the step's, then each epoch's evaluation's */
    float *x = xcalloc((size_t)B * (size_t)p->data_dim, sizeof(float));
    int *order = xcalloc((size_t)train.n, sizeof(int));
    vr_init_params(p, params, o->seed);
    vr_adam adam = {(float)o->lr, 0.9f, 0.999f, 1e-8f};
    long step = 0;
    int rc = 0;
    printf("training %s on %d examples (%d batches of %d), %d epochs, %s lr %g\n", p->model_name, nbatches * B,
           nbatches, B, o->epochs, o->optimizer == VR_ADAM ? "adam" : "sgd", o->lr);
    fflush(stdout);
    for (int epoch = 1; epoch <= o->epochs; epoch++) {
        double t0 = now(), compute = 0, elbo_sum = 0, kl_in_force = 1;
        vr_shuffle(order, n, o->seed, (uint64_t)epoch);
        for (int b = 0; b < nbatches; b++) {
            gather_batch(&train, order + (size_t)b * (size_t)B, B, x);
            double c0 = now();
            vr_ctx ctx = {.seed = o->seed, .step = (uint64_t)step, .example0 = 0, .sample0 = 0};
            if (o->warmup > 0) /* the KL weight rises linearly from 0 to beta over `warmup` epochs */
                ctx.kl_withheld = fmax(0.0, 1.0 - (epoch - 1 + (double)b / nbatches) / o->warmup);
            kl_in_force = 1.0 - ctx.kl_withheld;
            vr_program_poll(p, g); /* a tiered JIT swaps in optimised code between calls */
            if (step == 0 && getenv("VAEC_TIMING")) { /* the wall clock, for launch-to-first-step (bench/run.sh) */
                struct timespec wall;
                clock_gettime(CLOCK_REALTIME, &wall);
                fprintf(stderr, "first step at %lld.%09ld (CLOCK_REALTIME)\n", (long long)wall.tv_sec, wall.tv_nsec);
            }
            g->fn(params, grads, arena, x, &ctx);
            step++;
            if (o->optimizer == VR_ADAM)
                vr_adam_f32(params, grads, m, v, P, &adam, step);
            else
                vr_sgd_f32(params, grads, m, P, (float)o->lr, (float)o->momentum);
            compute += now() - c0;
            double elbo = 0;
            for (int i = 0; i < B; i++) elbo += arena[g->value_rows + i];
            elbo /= B;
            if (!isfinite(elbo)) {
                fprintf(stderr, "\nvaec: error: the objective became %g at step %ld (epoch %d); lower the learning "
                                "rate\n", elbo, step, epoch);
                rc = 1;
                goto out;
            }
            elbo_sum += elbo;
            if (o->progress && (b % 8 == 0 || b == nbatches - 1))
                progress_bar(epoch, o->epochs, b + 1, nbatches, elbo_sum / (b + 1), (b + 1) * B / (now() - t0));
        }
        double seconds = now() - t0;
        if (o->progress) fputs("\r\033[K", stderr);
        vr_scores s = {0};
        if (o->test) evaluate_in(p, params, &test, o->test_limit, o->seed, arena, &s);
        double train_elbo = elbo_sum / nbatches;
        printf("epoch %2d  train %s %9.3f", epoch, p->value_name, train_elbo);
        if (o->test && s.has_elbo) printf("  test ELBO %9.3f (recon %9.3f, KL %7.3f)", s.elbo, s.recon, s.kl);
        else if (o->test) printf("  test %s %9.3f", p->eval_value_name, s.value);
        if (o->test && s.has_logpx && s.has_elbo) printf("  log p(x) %9.3f", s.exact_logpx);
        if (o->warmup > 0) printf("  KL weight x%.3f", kl_in_force);
        printf("  %.2f s, %.0f ex/s (step only %.0f ex/s)\n", seconds, nbatches * B / seconds, nbatches * B / compute);
        fflush(stdout);
        if (log) {
            fprintf(log, "%d,%ld,%.6f,%.6f,%.6f,%.6f,%.6f,%.4f,%.4f,%.1f\n", epoch, step, train_elbo,
                    o->test ? s.value : NAN, o->test && s.has_elbo ? s.recon : NAN, o->test && s.has_elbo ? s.kl : NAN,
                    o->test && s.has_logpx ? s.exact_logpx : NAN, kl_in_force, seconds, nbatches * B / seconds);
            fflush(log);
        }
        if (ckpt[0] && vr_checkpoint_save(ckpt, p->model_name, p->tensors, p->ntensors, params, m, v, step, err,
                                          sizeof err)) {
            fprintf(stderr, "vaec: error: %s\n", err);
            rc = 1;
            goto out;
        }
    }
    if (ckpt[0]) printf("wrote %s and %s/log.csv\n", ckpt, o->out_dir);
out:
    if (log) fclose(log);
    free(params);
    free(grads);
    free(m);
    free(v);
    free(arena);
    free(x);
    free(order);
    vr_data_free(&train);
    vr_data_free(&test);
    return rc;
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
    if (vr_data_load(&test, o->test, o->data_dir, p->data_dim, p->binary, err, sizeof err)) {
        fprintf(stderr, "vaec: error: %s\n", err);
        free(params);
        return 1;
    }
    vr_scores s = {0};
    vr_evaluate(p, params, &test, o->test_limit, o->seed, &s);
    printf("test examples  %d\n", s.n);
    if (s.has_elbo) {
        printf("ELBO           %.3f nats\n", s.elbo);
        printf("  recon        %.3f\n", s.recon);
        printf("  KL           %.3f\n", s.kl);
    } else
        printf("%-14s %.3f nats\n", p->eval_value_name, s.value);
    if (s.has_logpx) {
        printf("log p(x)       %.3f nats (exact: the sum over every joint state)\n", s.exact_logpx);
        if (s.has_elbo) printf("KL gap         %.3f (exact: log p(x) minus ELBO)\n", s.exact_logpx - s.elbo);
    } else if (o->iwae > 0 && p->iwae.batch > 0) { /* the model has an IWAE graph */
        double t0 = now();
        vr_evaluate_iwae(p, params, &test, o->test_limit, o->seed, o->iwae, &s);
        printf("log p(x)       %.3f +- %.3f nats (IWAE, K = %d, %.1f s)\n", s.logpx, s.logpx_se, o->iwae, now() - t0);
        if (s.has_elbo) printf("KL gap         %.3f (IWAE bound minus ELBO)\n", s.logpx - s.elbo);
    }
    vr_data_free(&test);
    free(params);
    return 0;
}
