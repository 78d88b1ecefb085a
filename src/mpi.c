/* src/mpi.h: MPI for vaec train, optional at build time (HAVE_MPI). */
#include "config.h"

#include "src/mpi.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_MPI
#include <mpi.h>
#endif

/* The rank and size a launcher put in the environment, before any MPI call: Open
 * MPI's mpirun, PMIx (srun --mpi=pmix, prterun), MPICH's Hydra and PMI-2.  Reading
 * them costs nothing, so vaec alone never pays MPI_Init's start-up. */
static int launcher_size(void) {
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const char *v = getenv(sizes[i]);
        if (v && atoi(v) > 0) return atoi(v);
    }
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? 2 : 0; /* a PMIx launch may set no size: ask MPI */
}

/* srun without an MPI plugin starts N copies that each see one process: each
 * would train alone and write the same run folder.  Caught before MPI_Init,
 * whose own message here is misleading (docs/cluster.md). */
static int srun_without_mpi(void) {
    const char *n = getenv("SLURM_STEP_NUM_TASKS") ? getenv("SLURM_STEP_NUM_TASKS") : getenv("SLURM_NTASKS");
    if (!getenv("SLURM_PROCID") || !n || atoi(n) < 2 || launcher_size() > 0) return 0;
    fprintf(stderr, "vaec: error: started by srun as task %s of %s without an MPI launch: each task would train "
                    "alone and write the same run folder; use srun --mpi=pmix (docs/cluster.md)\n",
            getenv("SLURM_PROCID"), n);
    return 1;
}

uint64_t vaec_file_hash(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint64_t h = 0xcbf29ce484222325ull;
    unsigned char buf[65536];
    for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;)
        for (size_t i = 0; i < n; i++) h = (h ^ buf[i]) * 0x100000001b3ull;
    fclose(f);
    return h;
}

int vaec_mpi_threads(void) {
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE") ? getenv("OMPI_COMM_WORLD_LOCAL_SIZE")
                                                              : getenv("MPI_LOCALNRANKS");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (!local || atoi(local) < 1 || cpus < 1) return 0;
    return cpus / atoi(local) > 1 ? (int)(cpus / atoi(local)) : 1;
}

#ifdef HAVE_MPI
static vr_comm world;
static int started;

static void allgather(void *self, const void *mine, void *all, size_t n) {
    (void)self;
    if (n > (size_t)0x7fffffff) { /* MPI counts are ints */
        fprintf(stderr, "vaec: error: %zu bytes to exchange in one call is more than MPI takes (2 GiB): fewer "
                        "shards a process\n", n);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    /* bytes, not MPI_SUM: the sums are made by the caller, in its fixed order */
    MPI_Allgather(mine, (int)n, MPI_BYTE, all, (int)n, MPI_BYTE, MPI_COMM_WORLD);
}

/* The launcher stops every process when one dies (with SIGTERM first): say what is left. */
static char stop_message[512];
static void stopped(int sig) {
    ssize_t rc = write(STDERR_FILENO, stop_message, strlen(stop_message));
    (void)rc;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_stop(int rank, int size) {
    snprintf(stop_message, sizeof stop_message,
             "vaec: process %d of %d stopped by a signal: the launcher ends every process when one of them dies (its "
             "message says which) or the job is cancelled. The run folder keeps its last complete epoch "
             "(checkpoint.vaeckpt and log.csv agree); continue with the same command and --resume DIR\n", rank, size);
    signal(SIGTERM, stopped);
}

int vaec_mpi_start(const vr_comm **comm) {
    *comm = NULL;
    if (srun_without_mpi()) return 1;
    if (launcher_size() == 0) return 0;
    int size = 1, rank = 0;
    MPI_Init(NULL, NULL);
    started = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (size < 2) return 0;
    world = (vr_comm){rank, size, NULL, allgather};
    *comm = &world;
    if (rank == 0) catch_stop(rank, size);
    return 0;
}

void vaec_mpi_end(void) {
    if (started) MPI_Finalize();
    started = 0;
}

const char *vaec_mpi_describe(char *buf, size_t len) {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;
    MPI_Get_library_version(version, &n); /* allowed before MPI_Init */
    version[strcspn(version, ",\n")] = 0;
    int size = launcher_size();
    const char *rank = getenv("OMPI_COMM_WORLD_RANK") ? getenv("OMPI_COMM_WORLD_RANK") : getenv("PMIX_RANK");
    if (size > 0 && rank) snprintf(buf, len, "MPI: %s, process %s of %d", version, rank, size);
    else snprintf(buf, len, "MPI: %s, one process (start several with mpirun -np P)", version);
    return buf;
}
#else
int vaec_mpi_start(const vr_comm **comm) {
    *comm = NULL;
    if (srun_without_mpi()) return 1;
    if (launcher_size() > 1) {
        fprintf(stderr, "vaec: error: started by an MPI launcher as one of %d processes, but this vaec was built "
                        "without MPI (install libopenmpi-dev and configure again)\n", launcher_size());
        return 1;
    }
    return 0;
}

void vaec_mpi_end(void) {}

const char *vaec_mpi_describe(char *buf, size_t len) {
    snprintf(buf, len, "MPI: none (built without it; --shards runs in one process)");
    return buf;
}
#endif
