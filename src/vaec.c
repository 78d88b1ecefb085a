/* vaec: the command-line program.  check, train, eval, emit-llvm. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/graph.h"
#include "parser/model.h"
#include "src/export.h"
#include "src/fmt.h"
#include "parser/settings.h"
#include "src/certify.h"
#include "src/gradvar.h"
#include "src/mpi.h"
#include "src/pictures.h"
#include "src/run_header.h"
#include "src/run_outputs.h"
#include "src/picture_commands.h"
#include "src/latent_commands.h"
#include "src/runs.h"
#include "vae/compiler.h"

static const char *const USAGE =
    "usage: vaec COMMAND MODEL.vae [options]\n"
    "\n"
    "commands:\n"
    "  check      parse and check a model; print its summary, parameters and objective\n"
    "  fmt        rewrite model files in the canonical layout (--check: only say which are not)\n"
    "  train      compile the model with the JIT and train it\n"
    "  eval       evaluate a checkpoint: test ELBO, its terms, and the IWAE estimate of log p(x)\n"
    "  emit-llvm  print the optimised LLVM module\n"
    "  emit-c     write the model as one standalone C file and its header\n"
    "  gradvar    compare estimators' encoder-gradient variance at fixed parameters\n"
    "  certify    recompute every estimator's certificate (unbiasedness, bias, variance orderings)\n"
    "  export     write a checkpoint's parameter tensors, by name, to a NumPy .npz file\n"
    "  sample     draw from a trained model's prior: a PNG grid of the decoder's means, or .npy/.csv\n"
    "  reconstruct  a PNG of test images over their reconstructions by a trained model\n"
    "  encode     each example's posterior parameters by a trained encoder, as .csv or .npy\n"
    "  interpolate  a PNG of decoded paths between test images' encodings and traversals of each latent\n"
    "  plot       a PNG of a run's curves (vaec plot RUN_DIR)\n"
    "  runs       a table comparing the runs under a folder (vaec runs [DIR], default runs/)\n"
    "\n"
    "vaec COMMAND --help describes a command's options.\n";

static const char *const HELP_CHECK =
    "usage: vaec check MODEL.vae [--ast] [--graph] [--estimator SPEC]\n"
    "  --ast      also print the syntax tree\n"
    "  --graph    also print the planned graphs (forward and backward)\n"
    "  --estimator SPEC  the model with another estimator, written as in a model:\n"
    "             'reinforce(samples: 2, baseline: loo)' (also for train, eval, emit-c, emit-llvm)\n"
    "  A model is a UTF-8 text file of at most 1 MiB; the first 50 errors are printed, then\n"
    "  how many more.  Limits on nesting and expression length: docs/language.md.\n";

static const char *const HELP_TRAIN =
    "usage: vaec train MODEL.vae [options]   (options override the model's train block)\n"
    "  --data SRC       training data: fashion-mnist:train, or an .idx/.idx.gz/.npy/.csv file\n"
    "                   (uint8 values read as byte/255, every other value as written; binary\n"
    "                   data must lie in [0, 1]; NaN and infinity are refused)\n"
    "  --test SRC       test data, evaluated after each epoch\n"
    "  --estimator SPEC train with another estimator than the model's, written as in a model\n"
    "                   ('disarm', 'reinforce(samples: 2, baseline: loo)'); the run records it,\n"
    "                   and --resume and eval need the same\n"
    "  --labels FILE    the training data's labels (a model with a label; fashion-mnist: carries its\n"
    "                   own): IDX1 bytes (.gz too), a 1-d integer .npy, or a .csv of one integer a line\n"
    "  --test-labels FILE  the test data's labels (the same forms)\n"
    "  --labelled N     keep the labels of N training examples, N / K of each class, chosen by the\n"
    "                   seed; the others are hidden (semi-supervised; 0: keep every label)\n"
    "  --data-dir DIR   where the fashion-mnist: files are (default $VAE_DATA_DIR or\n"
    "                   /usr/share/datasets/fashion-mnist)\n"
    "  --epochs N       --batch N       --lr F       --seed N\n"
    "  --warmup E       KL warm-up: the KL weight rises linearly from 0 to beta over E epochs\n"
    "  --validation N   hold out the last N training examples (after --limit): each epoch prints and\n"
    "                   logs their ELBO, and DIR/best.vaeckpt is the checkpoint of the best epoch\n"
    "  --clip F         scale the gradient (all parameters together) down to L2 norm F where it is\n"
    "                   longer, before the optimiser's step; the epoch line counts the steps clipped\n"
    "  --lr-warmup-steps N  learning-rate warm-up: the rate rises linearly over the first N steps\n"
    "                   (not --warmup, which is the KL weight's, in epochs)\n"
    "  --lr-step-epochs E  step decay: multiply the learning rate by --lr-step-factor F (default\n"
    "                   0.1) after every E epochs\n"
    "  --lr-cosine-epochs E  cosine decay: the learning rate falls from --lr to --lr-min F (default\n"
    "                   0) along half a cosine over E epochs, then stays there (one decay at a time)\n"
    "  --out DIR        write DIR/log.csv and DIR/checkpoint.vaeckpt each epoch (default runs/MODEL,\n"
    "                   or runs/MODEL-2, -3, ... when it holds a run); --epochs 0 writes the initial\n"
    "                   parameters.  Each epoch's checkpoint is written whole before its log row.\n"
    "                   log.csv opens with '# key = value' lines: how the run was made (vaec's version\n"
    "                   and commit, the model file and its SHA-256, each setting and its source, the\n"
    "                   CPU, threads, command line, start), then the settings --resume compares.\n"
    "                   Also each epoch: samples.png, reconstructions.png (models with a trained\n"
    "                   encoder), states.png (enumerable latents), curves.png, and a TensorBoard\n"
    "                   event file events.out.tfevents.* (tensorboard --logdir runs).\n"
    "  --force          replace the run in --out DIR (a folder holding a run is refused otherwise)\n"
    "  --resume DIR     continue the run in DIR from its checkpoint, writing into DIR, up to\n"
    "                   --epochs N in all (the total, not N more); the result is byte for byte\n"
    "                   that of one uninterrupted run.  The settings recorded in DIR/log.csv\n"
    "                   (model, data, --limit, --batch, --seed, --lr, optimiser, --warmup, --shards,\n"
    "                   --validation, --clip, the learning-rate schedule) must match; a row lost\n"
    "                   to a crash is noted in the log as lost\n"
    "  --limit N        train on the first N examples only\n"
    "  --test-limit N   evaluate on the first N test examples only\n"
    "  --threads N      threads for matrix products and Adam (default: one per CPU, shared by the\n"
    "                   processes of a machine under mpirun; the result is the same on any number)\n"
    "  --shards S       cut each batch into S shards of batch/S examples, each its own gradient,\n"
    "                   summed in a fixed order (default 1: no shards).  Under mpirun -np P (P must\n"
    "                   divide S) each process computes S/P shards; the checkpoints are byte for\n"
    "                   byte those of one process with --shards S (docs/cluster.md)\n"
    "  --jit MODE       tiered (default): start at once on quickly compiled code and swap in\n"
    "                   LLVM's optimised code, built on another thread, as soon as it is ready;\n"
    "                   optimized: optimise before the first step; quick: never optimise.\n"
    "                   All three compute bit-identical results.\n"
    "  On a terminal a progress line shows the batch, the running mean ELBO, examples a second and\n"
    "  the time left in the epoch and the run; none when stdout is not a terminal.\n"
    "  Training stops (status 1, the last good checkpoint kept) when the objective becomes NaN or\n"
    "  infinite or exceeds 1e10 nats per example, or an update makes a parameter non-finite; the\n"
    "  message names the terms, the tensors whose gradient went bad, the step and a likely cause.\n"
    "  Numbers must be finite and in range, the same range here as in a model's train block\n"
    "  (docs/language.md); a value out of range is refused with its range.\n";

static const char *const HELP_EVAL =
    "usage: vaec eval MODEL.vae --params CHECKPOINT [options]\n"
    "  --params FILE    checkpoint written by vaec train\n"
    "  --test SRC       data to evaluate (default: the train block's test)\n"
    "  --test-labels FILE  its labels (a model with a label), for the classification error\n"
    "  --estimator SPEC the estimator the checkpoint was trained with, when train was given one\n"
    "  --iwae K         samples per example for the IWAE estimate of log p(x) (default 1000; 0 skips it);\n"
    "                   on a terminal a progress line shows the examples done and the time left\n"
    "  --data-dir DIR   --test-limit N   --seed N   --threads N   --jit MODE (as for train)\n";

static const char *const HELP_GRADVAR =
    "usage: vaec gradvar MODEL.vae --params CHECKPOINT [--estimators LIST] [--repeats R]\n"
    "  --estimators LIST  comma-separated estimators as written in a model, e.g.\n"
    "                     'analytic,uniform(samples: 10),reinforce(samples: 10, baseline: loo)'\n"
    "                     (baseline: NAME needs a baseline network NAME in the model; default: the\n"
    "                     model's own estimator with its options, as its file writes it)\n"
    "  --repeats R        draws of each gradient (default 200)\n"
    "  --data SRC         the batch is the first --batch examples of SRC (default: the train data)\n"
    "  --batch N   --data-dir DIR   --seed N   --threads N\n"
    "  The variance is the trace of the encoder gradient's covariance; with enumerable latents the\n"
    "  table adds the mean squared distance to the analytic gradient, and |mean - analytic|^2: the\n"
    "  squared bias plus variance / R (R draws cannot tell a bias smaller than that from noise).\n"
    "  Each estimator takes the checkpoint's tensors by name (another shape is an error); the ones it\n"
    "  adds that the checkpoint lacks (rebar's eta and temperature, nvil's running statistics, a\n"
    "  control or baseline network) start where training with --seed starts them, and a note names\n"
    "  them: that estimator is measured with an untrained control or baseline.\n";

static const char *const HELP_EMIT_C =
    "usage: vaec emit-c MODEL.vae -o model.c [--batch N] [--shards S] [--estimator SPEC]\n"
    "  writes model.c and model.h: the same plan the JIT runs, as portable C11 that builds with\n"
    "  cc -std=c11 -O2 model.c -lm; -DVAE_USE_CBLAS (-lopenblas) for BLAS products (and -DVAE_USE_DNNL,\n"
    "  -ldnnl -lgomp, for oneDNN's sgemm), -DVAE_USE_ZLIB (-lz)\n"
    "  to read .gz data, -DVAE_MAIN for a trainer and evaluator with the options of vaec train and eval;\n"
    "  -O3 -ffp-contract=off -fno-math-errno -fno-trapping-math for speed (gcc vectorises the loops;\n"
    "  the same bits).  It computes the JIT's bits when its products use the matrix library vaec\n"
    "  uses (vaec --version names it: OpenBLAS or BLIS through -DVAE_USE_CBLAS, oneDNN through\n"
    "  -DVAE_USE_CBLAS -DVAE_USE_DNNL); another library sums products in another order.  emit-c prints,\n"
    "  and model.h records, the command with the flags vaec was configured with; other flags give other,\n"
    "  equally valid, bits.  The runtime inside is static: any number of emitted models link into one\n"
    "  program, each exporting only its MODEL_* API (model.h).\n"
    "  --shards S: the trainer cuts each batch into S shards, as vaec train --shards S (its step graph is\n"
    "  for batch/S examples); -DVAE_USE_MPI, built with mpicc, runs it under mpirun as vaec (docs/cluster.md).\n"
    "  Both files are written whole and renamed into place; each must be a new name or a regular file.\n";

static const char *const HELP_EXPORT =
    "usage: vaec export MODEL.vae --params CHECKPOINT -o FILE.npz\n"
    "  writes every parameter tensor of the checkpoint as a float32 array of its shape, named as\n"
    "  vaec check lists it (numpy.load(\"FILE.npz\")[\"encoder.h.weight\"]), in an uncompressed\n"
    "  .npz. The file is written whole and then renamed over FILE; a FILE that is a directory, a\n"
    "  symbolic link or a device is refused. docs/checkpoint.md describes the checkpoint itself.\n";

static const char *const HELP_EMIT =
    "usage: vaec emit-llvm MODEL.vae [-o FILE] [--batch N] [--estimator SPEC]\n"
    "  prints the optimised LLVM module of the training step and the evaluators\n"
    "  -o FILE is written whole and renamed into place; it must be a new name or a regular file\n"
    "  (a symbolic link, a device or a folder is refused)\n";

typedef struct {
    const char *model;
    vr_options run;
    int batch, threads, ast, graph;
    const char *out_file;
    const char *estimators;
    const char *estimator; /* --estimator: the model's estimator replaced (check, train, eval, emit-*) */
    int repeats;
    int shards; /* 0: the train block's */
    vr_optim_group groups[VAE_MAX_OPTIM_GROUPS]; /* the model's per-network optimisers (run.groups) */
    int tensor_group[VAE_MAX_PARAMS];            /* run.tensor_group */
    vae_jit_mode jit;
    int argc; /* the whole command line, for log.csv's header */
    char **argv;
} cli;

/* An option's value, validated against the table the checker uses for the
 * model's settings (parser/settings.c), and refused in its words. */
static int option_error(const char *opt, const char *s) {
    char words[128];
    fprintf(stderr, "vaec: error: %s expects %s, got '%s'\n", opt,
            vae_setting_words(vae_setting_option(opt), words, sizeof words), s);
    return -1;
}

/* A value that is missing (NULL: the option was the last argument) is left to
 * parse_args, which says so once the option is known to exist. */
static int parse_int(const char *opt, const char *s, long *out) {
    if (!s) return 0;
    return vae_setting_parse_long(vae_setting_option(opt), s, out) ? option_error(opt, s) : 0;
}

static int parse_double(const char *opt, const char *s, double *out) {
    if (!s) return 0;
    return vae_setting_parse(vae_setting_option(opt), s, out) ? option_error(opt, s) : 0;
}

/* Whether cmd is one of the space-separated names of `list`: the commands an option is for. */
static int cmd_in(const char *cmd, const char *list) {
    size_t n = strlen(cmd);
    for (const char *p = list; (p = strstr(p, cmd)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return 1;
    return 0;
}

/* Whether the command line gave `option` (the train block's value yields to it). */
static int given(const cli *c, const char *option) {
    for (int i = 2; i < c->argc; i++)
        if (strcmp(c->argv[i], option) == 0) return 1;
    return 0;
}

/* An option of the run's table (vae/driver.h) into c->run, its value checked against vaec's
 * settings; 1 when its value was refused (message printed). */
static int set_run_option(cli *c, const vr_option *opt, const char *a, const char *v) {
    if (opt->type == VR_OPT_TEXT || opt->type == VR_OPT_FLAG) {
        vr_option_set_text(&c->run, opt, v);
        return 0;
    }
    if (!v) return 0; /* parse_args says it needs a value */
    if (opt->type == VR_OPT_REAL) {
        double x;
        if (parse_double(a, v, &x)) return 1;
        vr_option_set_real(&c->run, opt, x);
    } else {
        long n;
        if (parse_int(a, v, &n)) return 1;
        vr_option_set_whole(&c->run, opt, n);
    }
    return 0;
}

/* One option a (with its value v, NULL for a flag) of `cmd`: 1 when it is
 * known here (then *bad says whether its value was refused, message printed). */
static int parse_option(const char *cmd, const char *a, const char *v, cli *c, int *bad) {
    long n;
    int known = 1;
    const vr_option *run_option = vr_option_find(a, cmd);
    if (run_option) return set_run_option(c, run_option, a, v) ? (*bad = 1) : 1;
    if (strcmp(a, "--estimator") == 0 && cmd_in(cmd, "check train eval emit-c emit-llvm")) c->estimator = v;
    else if (strcmp(cmd, "check") == 0) {
        if (strcmp(a, "--ast") == 0) c->ast = 1;
        else if (strcmp(a, "--graph") == 0) c->graph = 1;
        else known = 0;
    } else if (strcmp(a, "--estimators") == 0 && strcmp(cmd, "gradvar") == 0) c->estimators = v;
    else if (strcmp(a, "--repeats") == 0 && strcmp(cmd, "gradvar") == 0) {
        if (parse_int(a, v, &n)) return *bad = 1;
        c->repeats = (int)n;
    } else if (strcmp(a, "-o") == 0 && (strncmp(cmd, "emit-", 5) == 0 || strcmp(cmd, "export") == 0)) c->out_file = v;
    else if (strcmp(a, "--batch") == 0 && strcmp(cmd, "eval") != 0) {
        if (parse_int(a, v, &n)) return *bad = 1;
        c->batch = (int)n;
    } else if (strcmp(a, "--shards") == 0 && cmd_in(cmd, "train emit-c")) {
        if (parse_int(a, v, &n)) return *bad = 1;
        c->shards = (int)n;
    } else if (strcmp(a, "--jit") == 0 && (strcmp(cmd, "train") == 0 || strcmp(cmd, "eval") == 0)) {
        if (!v) return 1; /* parse_args says it needs a value */
        if (strcmp(v, "tiered") == 0) c->jit = VAE_JIT_TIERED;
        else if (strcmp(v, "optimized") == 0) c->jit = VAE_JIT_OPTIMIZED;
        else if (strcmp(v, "quick") == 0) c->jit = VAE_JIT_QUICK;
        else {
            fprintf(stderr, "vaec %s: error: --jit expects tiered, optimized or quick, got '%s'\n", cmd, v);
            return *bad = 1;
        }
    } else if (strcmp(a, "--threads") == 0 && cmd_in(cmd, "train eval gradvar")) {
        if (parse_int(a, v, &n)) return *bad = 1;
        c->threads = (int)n;
    } else
        known = 0;
    return known;
}

/* Parses the options of `cmd`; returns 0, 1 (error, printed) or 2 (help printed). */
static int parse_args(const char *cmd, const char *help, int argc, char **argv, cli *c) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(help, stdout);
            return 2;
        }
        if (a[0] != '-') {
            if (c->model) {
                fprintf(stderr, "vaec %s: error: one model at a time ('%s' and '%s')\n", cmd, c->model, a);
                return 1;
            }
            c->model = a;
            continue;
        }
        const vr_option *run_option = vr_option_find(a, cmd);
        int flag_only = strcmp(a, "--ast") == 0 || strcmp(a, "--graph") == 0 ||
                        (run_option && run_option->type == VR_OPT_FLAG);
        const char *v = flag_only || i + 1 >= argc ? NULL : argv[i + 1];
        int bad = 0, known = parse_option(cmd, a, v, c, &bad);
        if (bad) return 1;
        if (!known) { /* also when it is the last argument: an unknown option needs no value */
            fprintf(stderr, "vaec %s: error: unknown option '%s' (see vaec %s --help)\n", cmd, a, cmd);
            return 1;
        }
        if (!flag_only && !v) {
            fprintf(stderr, "vaec %s: error: %s needs a value\n", cmd, a);
            return 1;
        }
        if (!flag_only) i++;
    }
    if (!c->model) {
        fprintf(stderr, "vaec %s: error: no model file given\n%s", cmd, help);
        return 1;
    }
    return 0;
}

/* The model, with its estimator replaced by --estimator's where one was given. */
static vae_unit *load_unit(const cli *c) {
    return c->estimator ? vae_unit_with_estimator_from(c->model, c->estimator, "--estimator", stderr)
                        : vae_unit_load(c->model, stderr);
}

static int cmd_check(cli *c) {
    vae_unit *u = load_unit(c);
    if (!u) return 1;
    const vae_model *m = vae_unit_model(u);
    vae_print_summary(stdout, m);
    printf("objective\n");
    vae_print_objective(stdout, m);
    if (c->ast) ast_dump(stdout, m->ast);
    int rc = 0;
    if (c->graph) {
        vae_build_opts o = vae_build_defaults(u);
        o.iwae = 0;
        rc = vae_dump_graphs(u, &o, stdout, stderr) ? 1 : 0;
    }
    vae_unit_free(u);
    return rc;
}

/* Train-block settings, then command-line overrides. */
static void resolve(cli *c, const vae_model *m) {
    const vae_train_settings *t = &m->train;
    if (!c->run.data) c->run.data = t->data;
    if (!c->run.test) c->run.test = t->test;
    if (!given(c, "--epochs")) c->run.epochs = t->epochs;
    if (!given(c, "--lr")) c->run.lr = t->lr;
    if (!given(c, "--seed")) c->run.seed = t->seed;
    if (!given(c, "--warmup")) c->run.warmup = t->warmup;
    if (!c->run.labels) c->run.labels = t->labels;
    if (!c->run.test_labels) c->run.test_labels = t->test_labels;
    if (!given(c, "--labelled")) c->run.labelled = t->labelled;
    if (!c->batch) c->batch = t->batch;
    if (!c->shards) c->shards = t->shards > 0 ? t->shards : 1;
    c->run.optimizer = t->optimizer == OPT_ADAM ? VR_ADAM : VR_SGD;
    c->run.momentum = t->momentum;
    for (int g = 0; g < t->ngroups; g++) /* --lr sets the default's alone */
        c->groups[g] = (vr_optim_group){t->groups[g].target, t->groups[g].optimizer == OPT_ADAM ? VR_ADAM : VR_SGD,
                                        t->groups[g].lr, t->groups[g].momentum};
    for (int i = 0; i < m->nparams; i++) c->tensor_group[i] = m->params[i].group;
    c->run.ngroups = t->ngroups;
    c->run.groups = c->groups;
    c->run.tensor_group = c->tensor_group;
    vr_lr_schedule *s = &c->run.schedule;
    if (!given(c, "--validation")) c->run.validation = t->validation;
    if (!given(c, "--clip")) c->run.clip = t->clip;
    if (!given(c, "--lr-warmup-steps")) s->warmup_steps = t->lr_warmup_steps;
    if (!given(c, "--lr-step-epochs")) s->step_epochs = t->lr_step_epochs;
    if (!given(c, "--lr-step-factor")) s->step_factor = t->lr_step_factor;
    if (!given(c, "--lr-cosine-epochs")) s->cosine_epochs = t->lr_cosine_epochs;
    if (!given(c, "--lr-min")) s->min_lr = t->lr_min;
}

/* The batch's shards: each a whole number of examples.  0, or 1 after a message. */
static int check_shards(const cli *c, const char *cmd) {
    if (c->batch % c->shards == 0) return 0;
    fprintf(stderr, "vaec %s: error: batch %d is not a multiple of shards %d: every shard has the same number of "
                    "examples (choose --batch or --shards so that S divides the batch)\n", cmd, c->batch, c->shards);
    return 1;
}

/* With processes: only process 0 prints and writes the run's files and pictures. */
static void quiet_unless_first(cli *c) {
    if (!c->run.comm || c->run.comm->rank == 0) return;
    if (!freopen("/dev/null", "w", stdout)) fclose(stdout);
}

/* A progress line only where a person watches: stdout and stderr on a terminal (not in a log or a test), process 0. */
static int progress_wanted(const cli *c) {
    return isatty(STDOUT_FILENO) && isatty(STDERR_FILENO) && (!c->run.comm || c->run.comm->rank == 0);
}

static int cmd_train(cli *c) {
    vae_unit *u = load_unit(c);
    if (!u) return 1;
    const vae_model *m = vae_unit_model(u);
    resolve(c, m);
    if (check_shards(c, "train")) {
        vae_unit_free(u);
        return 1;
    }
    vr_set_threads(c->threads ? c->threads : vaec_mpi_threads());
    quiet_unless_first(c);
    char out[4096], settings[256];
    if (c->run.resume_dir && c->run.out_dir && strcmp(c->run.out_dir, c->run.resume_dir) != 0) {
        fprintf(stderr, "vaec train: error: --out %s and --resume %s: a resumed run is written into its own folder\n",
                c->run.out_dir, c->run.resume_dir);
        vae_unit_free(u);
        return 1;
    }
    vae_model_settings(m, settings, sizeof settings);
    c->run.model_settings = settings;
    if (c->run.resume_dir) c->run.out_dir = c->run.resume_dir;
    else if (!c->run.out_dir) { /* runs/MODEL, or runs/MODEL-2, ... when it holds a run */
        snprintf(out, sizeof out, "runs/%s", m->name);
        c->run.out_dir = out;
        c->run.out_dir_auto = 1;
    }
    vae_build_opts o = vae_build_defaults(u);
    o.batch = c->batch / c->shards; /* the step's graph is one shard's */
    o.iwae = 0;
    o.jit = c->jit;
    vaec_pictures_opts(&o); /* the grids of each epoch (run_outputs) */
    vae_program *p = vae_program_build(u, &o, stderr);
    if (!p) {
        vae_unit_free(u);
        return 1;
    }
    printf("compiled %s in %.1f ms (parse, check, derive, %s)\n", m->name, 1e3 * vae_program_compile_seconds(p),
           c->jit == VAE_JIT_TIERED  ? "quick JIT; optimising on another thread"
           : c->jit == VAE_JIT_QUICK ? "quick JIT"
                                     : "optimise, JIT");
    c->run.batch = c->batch;
    c->run.shards = c->shards;
    c->run.progress = progress_wanted(c);
    c->run.compile_seconds = vae_program_compile_seconds(p);
    c->run.setup_hash = vaec_file_hash(c->model);
    run_header_in header = {c->model, m, &c->run, c->argc, c->argv};
    char *description = vaec_run_description(&header); /* NULL (out of memory): the log goes without it */
    c->run.description = description;
    run_outputs outs;
    if (!c->run.comm || c->run.comm->rank == 0) run_outputs_attach(&outs, m, vae_program_runtime(p), &c->run);
    int rc = vr_train(vae_program_runtime(p), &c->run);
    free(description);
    vae_program_free(p);
    vae_unit_free(u);
    return rc;
}

static int cmd_eval(cli *c) {
    if (!c->run.params) {
        fprintf(stderr, "vaec eval: error: --params CHECKPOINT is required\n");
        return 1;
    }
    vae_unit *u = load_unit(c);
    if (!u) return 1;
    resolve(c, vae_unit_model(u));
    vr_set_threads(c->threads ? c->threads : vaec_mpi_threads());
    quiet_unless_first(c);
    vae_build_opts o = vae_build_defaults(u);
    o.train = 0;
    o.iwae = c->run.iwae > 0 && !g_model_enumerable(vae_unit_model(u));
    if (o.iwae) { /* about 1000 rows per call: samples of a few examples at once */
        o.iwae_chunk = c->run.iwae < 250 ? c->run.iwae : 250;
        o.iwae_batch = 1000 / o.iwae_chunk;
    }
    o.jit = c->jit;
    vae_program *p = vae_program_build(u, &o, stderr);
    if (!p) {
        vae_unit_free(u);
        return 1;
    }
    c->run.progress = progress_wanted(c); /* while the IWAE estimate runs */
    int rc = vr_eval(vae_program_runtime(p), &c->run);
    vae_program_free(p);
    vae_unit_free(u);
    return rc;
}

static int cmd_gradvar(cli *c) {
    if (!c->run.params) {
        fprintf(stderr, "vaec gradvar: error: --params CHECKPOINT is required\n");
        return 1;
    }
    vr_set_threads(c->threads);
    gradvar_options o = {c->model, c->run.params, c->estimators, c->run.data, c->run.data_dir,
                         c->repeats ? c->repeats : 200, c->batch, c->run.seed};
    return vaec_gradvar(&o);
}

/* export takes --params and -o only; parse_args lets every command but a few have these. */
static const char *export_stray_option(const cli *c) {
    return c->run.test ? "--test" : c->run.data_dir ? "--data-dir" : given(c, "--seed") ? "--seed" : c->threads ? "--threads"
         : c->run.test_limit ? "--test-limit" : c->batch ? "--batch" : NULL;
}

static int cmd_export(cli *c) {
    const char *stray = export_stray_option(c);
    if (stray) {
        fprintf(stderr, "vaec export: error: unknown option '%s' (see vaec export --help)\n", stray);
        return 1;
    }
    if (!c->run.params || !c->out_file) {
        fprintf(stderr, "vaec export: error: %s is required\n", c->run.params ? "-o FILE.npz" : "--params CHECKPOINT");
        return 1;
    }
    return vaec_export(c->model, c->run.params, c->out_file);
}

/* Opens an output for writing whole: a temporary file renamed over path by
 * vr_output_commit (path must be a new name or a regular file). */
static FILE *open_output(vr_output *out, const char *path) {
    char err[VR_PATH_MAX + 256];
    if (vr_output_open(out, path, err, sizeof err) == 0) return out->f;
    fprintf(stderr, "vaec: error: %s\n", err);
    return NULL;
}

/* Commits the outputs when rc is 0 and discards them otherwise; the new rc. */
static int finish_outputs(int rc, vr_output *outs, int n) {
    char err[VR_PATH_MAX + 256];
    for (int i = 0; i < n; i++) {
        if (!outs[i].f) continue;
        if (rc == 0 && vr_output_commit(&outs[i], err, sizeof err)) {
            fprintf(stderr, "vaec: error: %s\n", err);
            rc = 1;
        } else if (rc != 0)
            vr_output_discard(&outs[i]);
    }
    return rc;
}

static int cmd_emit_c(cli *c) {
    if (!c->out_file) {
        fprintf(stderr, "vaec emit-c: error: -o model.c is required\n");
        return 1;
    }
    size_t len = strlen(c->out_file);
    if (len < 3 || strcmp(c->out_file + len - 2, ".c") != 0) {
        fprintf(stderr, "vaec emit-c: error: -o %s: the output must end in .c (the header gets .h)\n", c->out_file);
        return 1;
    }
    vae_unit *u = load_unit(c);
    if (!u) return 1;
    const vae_train_settings *t = &vae_unit_model(u)->train;
    if (!c->batch) c->batch = t->batch;
    if (!c->shards) c->shards = t->shards > 0 ? t->shards : 1;
    if (check_shards(c, "emit-c")) {
        vae_unit_free(u);
        return 1;
    }
    vae_build_opts o = vae_build_defaults(u);
    o.batch = c->batch / c->shards; /* the trainer's step graph is one shard's */
    o.shards = c->shards;
    o.iwae = !g_model_enumerable(vae_unit_model(u));
    char *provenance = vaec_provenance(c->model); /* NULL (out of memory): the log goes without it */
    o.provenance = provenance;
    char hpath[VR_PATH_MAX + 8];
    snprintf(hpath, sizeof hpath, "%.*s.h", (int)(len - 2), c->out_file);
    const char *hname = strrchr(hpath, '/') ? strrchr(hpath, '/') + 1 : hpath;
    vr_output outs[2] = {{0}, {0}};
    FILE *cf = open_output(&outs[0], c->out_file), *hf = cf ? open_output(&outs[1], hpath) : NULL;
    int rc = 1;
    if (cf && hf) rc = vae_emit_c(u, &o, c->model, cf, hf, hname, stderr) ? 1 : 0;
    rc = finish_outputs(cf && hf ? rc : 1, outs, 2);
    if (rc == 0) {
        printf("wrote %s and %s\nthe JIT's bits (the matrix library vaec was configured with; other flags give other,\n"
               "equally valid, bits):\n  ", c->out_file, hpath);
        vae_emit_c_build_line(stdout, c->out_file);
        putchar('\n');
    }
    free(provenance);
    vae_unit_free(u);
    return rc;
}

static int cmd_emit_llvm(cli *c) {
    vae_unit *u = load_unit(c);
    if (!u) return 1;
    vae_build_opts o = vae_build_defaults(u);
    if (c->batch) o.batch = c->batch;
    vr_output out = {0};
    if (c->out_file && !open_output(&out, c->out_file)) { /* written whole, then renamed */
        vae_unit_free(u);
        return 1;
    }
    int rc = vae_emit_llvm(u, &o, c->out_file ? out.f : stdout, stderr) ? 1 : 0;
    if (c->out_file) rc = finish_outputs(rc, &out, 1);
    vae_unit_free(u);
    return rc;
}

int main(int argc, char **argv) {
    /* Line-buffered even in a pipe, so that what vaec printed reaches the reader before an error on
     * stderr that follows it ("compiled ..." then the error, never the other way round). */
    setvbuf(stdout, NULL, _IOLBF, 0);
    vr_blas_select_core(argv);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        /* the first line as before (bench/run.sh reads it); then what configure chose and why */
        char mpi[256];
        printf("vaec %s (LLVM %s; single-precision products by %s)\n", PACKAGE_VERSION, VAE_LLVM_VERSION, vr_blas_name());
        printf("  LLVM:           %s, linked %s\n"
               "  matrix library: %s: %s\n"
               "                  %s %s\n"
               "  gzip reader:    %s\n"
               "  processes:      %s\n",
               VAE_LLVM_VERSION, VAE_LLVM_LINKAGE, VAE_BLAS_CHOICE, VAE_BLAS_WHY, VAE_BLAS_CFLAGS, VAE_BLAS_LIBS,
               VAE_GZIP_READER, vaec_mpi_describe(mpi, sizeof mpi));
        return 0;
    }
    /* the commands on trained models and runs, fmt and certify parse their own options
     * (src/picture_commands.c, src/latent_commands.c, src/runs.c, src/fmt.c, src/certify.c) */
    static const struct {
        const char *name;
        int (*main)(int, char **);
    } pictures[] = {{"sample", vaec_sample_main},   {"reconstruct", vaec_reconstruct_main},
                    {"encode", vaec_encode_main},   {"interpolate", vaec_interpolate_main},
                    {"plot", vaec_plot_main},       {"runs", vaec_runs_main},
                    {"fmt", vaec_fmt_main},         {"certify", vaec_certify_main}};
    for (size_t i = 0; i < sizeof pictures / sizeof pictures[0]; i++)
        if (strcmp(argv[1], pictures[i].name) == 0) return pictures[i].main(argc - 2, argv + 2);
    static const struct {
        const char *name, *help;
        int (*run)(cli *);
    } commands[] = {{"check", HELP_CHECK, cmd_check},
                    {"train", HELP_TRAIN, cmd_train},
                    {"eval", HELP_EVAL, cmd_eval},
                    {"emit-llvm", HELP_EMIT, cmd_emit_llvm},
                    {"emit-c", HELP_EMIT_C, cmd_emit_c},
                    {"gradvar", HELP_GRADVAR, cmd_gradvar},
                    {"export", HELP_EXPORT, cmd_export}};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            cli c = {0};
            c.argc = argc;
            c.argv = argv;
            c.run.iwae = 1000;
            c.jit = VAE_JIT_TIERED;
            int rc = parse_args(commands[i].name, commands[i].help, argc - 2, argv + 2, &c);
            if (rc) return rc == 2 ? 0 : 1;
            int mpi = commands[i].run == cmd_train || commands[i].run == cmd_eval; /* the commands shared by processes */
            if (mpi && vaec_mpi_start(&c.run.comm)) return 1; /* MPI only under a launcher */
            rc = commands[i].run(&c);
            vaec_mpi_end();
            return rc;
        }
    fprintf(stderr, "vaec: error: unknown command '%s'\n\n%s", argv[1], USAGE);
    return 1;
}
