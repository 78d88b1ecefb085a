/* vaec certify: the estimators' certificates recomputed (src/certify.c). */
#ifndef VAEC_CERTIFY_H
#define VAEC_CERTIFY_H

extern const char *const VAEC_HELP_CERTIFY;
int vaec_certify_main(int argc, char **argv);

#endif
