/* src/fmt.h: vaec fmt, the canonical layout of model files (parser/format.c). */
#ifndef VAEC_FMT_H
#define VAEC_FMT_H

extern const char *const VAEC_HELP_FMT;

/* argv after the command's name; the exit status: 0, or 1 (an unformatted file
 * under --check, or an error, with its message printed). */
int vaec_fmt_main(int argc, char **argv);

#endif
