/* src/latent_commands.h: vaec encode and vaec interpolate, each with its own
 * options (argv after the command's name). */
#ifndef VAEC_LATENT_COMMANDS_H
#define VAEC_LATENT_COMMANDS_H

extern const char *const VAEC_HELP_ENCODE, *const VAEC_HELP_INTERPOLATE;

/* Each returns the exit status: 0, or 1 with the message printed. */
int vaec_encode_main(int argc, char **argv);
int vaec_interpolate_main(int argc, char **argv);

#endif
