/* vaec export: a checkpoint's parameters as a NumPy .npz file. */
#ifndef VAEC_EXPORT_H
#define VAEC_EXPORT_H

/* Loads the model, reads the checkpoint (which must fit it) and writes every parameter
 * tensor by name to out.  0, or 1 with the message printed on stderr. */
int vaec_export(const char *model_path, const char *params_path, const char *out_path);

#endif
