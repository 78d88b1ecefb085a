/* The lines at the top of log.csv that say how a run was made, as CmdStan's CSV
 * does: vaec's version and commit, the model file and its SHA-256, every setting
 * with its source, the machine, the thread count, the command line and the start.
 * The runtime writes them above the settings it compares on --resume, and never
 * compares them: a run resumes on another machine or thread count. */
#ifndef VAEC_RUN_HEADER_H
#define VAEC_RUN_HEADER_H

#include "vae/driver.h"

struct vae_model;

typedef struct {
    const char *model_path;
    const struct vae_model *model;
    const vr_options *run; /* the settings in force: train block, then command line */
    int argc;              /* the whole command line: argv[0] is vaec */
    char **argv;
} run_header_in;

/* What made the run's program: vaec's version and commit, the model file and its SHA-256 (also
 * printed into an emitted model.c, whose trainer writes them into its log.csv). */
char *vaec_provenance(const char *model_path);
/* The "# key = value" lines, each ending in a newline (malloc'd; NULL: out of memory). */
char *vaec_run_description(const run_header_in *in);

#endif
