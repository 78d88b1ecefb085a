/* src/picture_commands.h: vaec sample, vaec reconstruct and vaec plot, each
 * with its own options (argv after the command's name). */
#ifndef VAEC_PICTURE_COMMANDS_H
#define VAEC_PICTURE_COMMANDS_H

extern const char *const VAEC_HELP_SAMPLE, *const VAEC_HELP_RECONSTRUCT, *const VAEC_HELP_PLOT;

/* Each returns the exit status: 0, or 1 with the message printed. */
int vaec_sample_main(int argc, char **argv);
int vaec_reconstruct_main(int argc, char **argv);
int vaec_plot_main(int argc, char **argv);

#endif
