/* The emitted trainer's command line: fixed text that `vaec emit-c` prints at the end of every
 * model.c (codegen/emit_c.c, print_main), from this opening comment's end on.  vaec's build
 * compiles it (codegen/emitted/check_trainer.c) before embedding it (scripts/embed.sh), so a
 * mistake here fails vaec's build, not a user's compile.  The line VAE_NUMERIC_OPTIONS is where
 * the emitter prints the numeric options with the ranges of vaec's table (parser/settings.c);
 * what a model decides (VAE_DEFAULT_*, VAE_SHARDS, vae_program) is printed above this text. */
/* ================================================================ the command line (-DVAE_MAIN) */
#ifdef VAE_MAIN
/* One command's options in a usage line, wrapped: " [--data SRC] [--force] ..." from the run's table. */
static void usage_options(FILE *f, const char *command) {
    int column = 16;
    const vr_option *opt;
    for (int i = 0; (opt = vr_option_at(i)); i++) {
        char item[64];
        if (!vr_option_find(opt->name, command)) continue;
        int n = snprintf(item, sizeof item, " [%s%s%s]", opt->name, opt->metavar ? " " : "", opt->metavar ? opt->metavar : "");
        if (column + n > 104) {
            fputs("\n               ", f);
            column = 16;
        }
        fputs(item, f);
        column += n;
    }
    fputs(" [--threads N]", f);
}

/* The usage on f (stdout for --help, stderr after a mistake); returns rc. */
static int usage(FILE *f, const char *prog, int rc) {
    fprintf(f, "usage: %s train", prog);
    usage_options(f, "train");
    fprintf(f, "\n                [--shards S (as emitted)]\n       %s eval", prog);
    usage_options(f, "eval");
    fprintf(f, "\nthe options of vaec train and vaec eval (vaec COMMAND --help), for the model %s\n",
            vae_program.model_name);
    return rc;
}

/* An option's range and what it is in words, from vaec's table of settings. */
typedef struct {
    double lo, hi;
    int lo_open, hi_open;
    const char *words;
} vae_range;

static const vae_range VAE_OPTION_RANGES[] = VAE_OPTION_RANGES_INIT;

static int in_range(double v, vae_range r) {
    return isfinite(v) && v >= r.lo && v <= r.hi && !(r.lo_open && v == r.lo) && !(r.hi_open && v == r.hi);
}

static int refuse(const char *opt, vae_range r, const char *s) {
    fprintf(stderr, "error: %s expects %s, got '%s'\n", opt, r.words, s);
    return -1;
}

static int number(const char *opt, const char *s, vae_range r, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !in_range(v, r)) return refuse(opt, r, s);
    *out = v;
    return 0;
}

static int whole(const char *opt, const char *s, vae_range r, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || !in_range((double)v, r)) return refuse(opt, r, s);
    *out = v;
    return 0;
}

/* An option of the run's table into o, checked against its range (VAE_OPTION_RANGES, printed by
 * the emitter from vaec's table in the run table's order); -1 after a message. */
static int set_option(vr_options *o, const vr_option *opt, const char *a, const char *v) {
    vae_range r = VAE_OPTION_RANGES[vr_option_index(opt)];
    double x;
    long long n;
    if (opt->type == VR_OPT_TEXT) vr_option_set_text(o, opt, v);
    else if (opt->type == VR_OPT_REAL) {
        if (number(a, v, r, &x)) return -1;
        vr_option_set_real(o, opt, x);
    } else {
        if (whole(a, v, r, &n)) return -1;
        vr_option_set_whole(o, opt, n);
    }
    return 0;
}

/* log.csv's description: what made this file (VAE_PROVENANCE: vaec's version, the model file and its
 * SHA-256 when it was emitted), where its settings come from, and the machine and command line. */
static char *describe_run(int argc, char **argv, int threads) {
    static const char settings[] = "# settings = the model file's train block when it was emitted, then the command line\n";
#ifdef VAE_TEAM
    threads = vr_threads();
#endif
    char *machine = vr_describe_machine(argc, argv, threads, 1);
    size_t n = strlen(VAE_PROVENANCE) + sizeof settings + (machine ? strlen(machine) : 0);
    char *d = malloc(n);
    if (d) snprintf(d, n, "%s%s%s", VAE_PROVENANCE, settings, machine ? machine : "");
    free(machine);
    return d;
}

#ifdef VAE_USE_MPI
#include <mpi.h>
/* bytes, never MPI_SUM: the runtime sums the shards in its fixed tree (docs/cluster.md) */
static void vae_allgather(void *self, const void *mine, void *all, size_t n) {
    (void)self;
    if (n > 0x7fffffffu) {
        fprintf(stderr, "error: %zu bytes to exchange in one call is more than MPI takes\n", n);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Allgather(mine, (int)n, MPI_BYTE, all, (int)n, MPI_BYTE, MPI_COMM_WORLD);
}

/* MPI only under a launcher (its variables are read first): alone, the trainer never starts it. */
static int vae_train_mpi(vr_options *o) {
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_RANK"))
        return vr_train(&vae_program, o);
    int rank = 0, size = 1;
    MPI_Init(NULL, NULL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    vr_comm world = {rank, size, NULL, vae_allgather};
    if (size > 1) o->comm = &world;
    if (rank > 0) { /* process 0 prints and writes the run folder */
        o->progress = 0;
        if (!freopen("/dev/null", "w", stdout)) fclose(stdout);
    }
    int rc = vr_train(&vae_program, o);
    MPI_Finalize();
    return rc;
}
#endif

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* each line out before an error that follows it, also in a pipe */
    vr_blas_select_core(argv);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) return usage(stdout, argv[0], 0);
    if (argc < 2 || (strcmp(argv[1], "train") && strcmp(argv[1], "eval"))) return usage(stderr, argv[0], 1);
    int train = strcmp(argv[1], "train") == 0;
    vr_options o;
    memset(&o, 0, sizeof o);
    o.data = VAE_DEFAULT_DATA;
    o.test = VAE_DEFAULT_TEST;
    o.labels = VAE_DEFAULT_LABELS;
    o.test_labels = VAE_DEFAULT_TEST_LABELS;
    o.labelled = VAE_DEFAULT_LABELLED;
    o.epochs = VAE_DEFAULT_EPOCHS;
    o.lr = VAE_DEFAULT_LR;
    o.momentum = VAE_DEFAULT_MOMENTUM;
    o.optimizer = VAE_DEFAULT_OPTIMIZER;
#ifdef VAE_OPTIM_GROUPS /* the model's per-network optimisers (`optimizer prior = sgd(...)`); --lr sets the default's */
    o.ngroups = VAE_OPTIM_GROUPS;
    o.groups = vae_optim_groups;
    o.tensor_group = vae_tensor_group;
#endif
    o.seed = VAE_DEFAULT_SEED;
    o.warmup = VAE_DEFAULT_WARMUP;
    o.validation = VAE_DEFAULT_VALIDATION;
    o.clip = VAE_DEFAULT_CLIP;
    o.schedule = (vr_lr_schedule)VAE_DEFAULT_LR_SCHEDULE;
    o.iwae = 1000;
    o.model_settings = VAE_MODEL_SETTINGS; /* recorded in log.csv, compared by --resume */
    o.shards = VAE_SHARDS; /* a batch of VAE_SHARDS graph batches, their gradients summed in a fixed tree */
    o.batch = vae_program.train.batch * VAE_SHARDS;
    o.out_dir = "runs/" VAE_MODEL_NAME;
    o.out_dir_auto = 1; /* runs/MODEL-2, ... when runs/MODEL holds a run */
    int threads = 0; /* one per CPU */
    for (int i = 2; i < argc; i += 2) { /* options come in pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n; /* VAE_NUMERIC_OPTIONS: the trainer's own whole options */
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout, argv[0], 0);
        const vr_option *opt = vr_option_find(a, argv[1]);
        if (opt && opt->type == VR_OPT_FLAG) { /* no value */
            vr_option_set_text(&o, opt, NULL);
            i--;
            continue;
        }
        if (!v) {
            fprintf(stderr, "error: %s needs a value\n", a);
            return 1;
        }
        if (opt) {
            if (set_option(&o, opt, a, v)) return 1;
        }
        VAE_NUMERIC_OPTIONS
        else {
            fprintf(stderr, "error: unknown option '%s'\n", a);
            return usage(stderr, argv[0], 1);
        }
    }
    o.progress = isatty(2);
    vr_set_threads(threads);
    char *description = describe_run(argc, argv, threads);
    o.description = description;
    int rc;
#ifdef VAE_USE_MPI
    if (train) rc = vae_train_mpi(&o);
    else
#endif
    if (train) rc = vr_train(&vae_program, &o);
    else if (!o.params) {
        fprintf(stderr, "error: eval needs --params CHECKPOINT\n");
        rc = 1;
    } else rc = vr_eval(&vae_program, &o);
    free(description);
    return rc;
}
#endif
