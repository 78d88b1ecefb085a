/* src/runs.h: vaec runs [DIR], a table comparing the runs under a folder. */
#ifndef VAEC_RUNS_H
#define VAEC_RUNS_H

extern const char *const VAEC_HELP_RUNS;

/* The exit status: 0, or 1 with the message printed (argv after the command's name). */
int vaec_runs_main(int argc, char **argv);

#endif
