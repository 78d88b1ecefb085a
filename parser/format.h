/* The canonical layout of a .vae file (`vaec fmt`; the rules: docs/language.md, "Formatting"). */
#ifndef VAE_FORMAT_H
#define VAE_FORMAT_H

#include <stddef.h>

#include "parser/ast.h"

/* The text of src in the canonical layout, with every comment kept: malloc'd and
 * NUL-terminated, its length in *len.  NULL when src does not parse (the errors are
 * reported as vaec check reports them), or, as a guard against a bug here, when the
 * result would parse to another syntax tree or lose a comment (said on src->err). */
char *vae_format(vae_source *src, size_t *len);

#endif
