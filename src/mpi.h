/* Training over MPI: the processes a launcher started (mpirun, srun --mpi=pmix) as
 * the runtime's vr_comm.  vaec started without a launcher never starts MPI. */
#ifndef VAEC_MPI_H
#define VAEC_MPI_H

#include "vae/driver.h"

/* Starts MPI when a launcher started this process, and only then.  0 with *comm
 * NULL (one process) or the processes; 1 after a message (a launch that cannot work). */
int vaec_mpi_start(const vr_comm **comm);
/* Ends MPI when it was started (every process calls it, whatever its result). */
void vaec_mpi_end(void);
/* The threads a process should use when --threads is not given: the CPUs shared
 * by the processes of this machine; 0 (the default) without a launcher. */
int vaec_mpi_threads(void);
/* What vaec --version says of MPI, into buf. */
const char *vaec_mpi_describe(char *buf, size_t len);
/* 64-bit FNV-1a of a file's bytes (0 when it cannot be read): what the processes compare. */
uint64_t vaec_file_hash(const char *path);

#endif
