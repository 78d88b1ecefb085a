/* Builders called by the grammar actions of parser.y: one small function per
 * construct, so that the grammar stays readable. */
#ifndef VAE_BUILD_H
#define VAE_BUILD_H

#include "parser/parse_state.h"

vae_loc vae_build_loc_lc(struct vae_parse_state *ps, int line, int col);
#define vae_build_loc(ps, l) vae_build_loc_lc((ps), (l).first_line, (l).first_column)

ast_model *vae_build_model(struct vae_parse_state *ps, const char *name, vae_loc loc);
void vae_build_data(struct vae_parse_state *ps, const char *name, ast_shape shape, const char *kind,
                    ast_arg *kind_args, ast_expr *prior, vae_loc kind_loc, vae_loc loc);
void vae_build_latent(struct vae_parse_state *ps, const char *name, ast_shape shape, ast_expr *prior,
                      vae_loc loc);
void vae_build_network(struct vae_parse_state *ps, int role, const char *name, const char *output,
                       vae_loc output_loc, ast_name *given, ast_assign *body, ast_expr *ret,
                       vae_loc ret_loc, vae_loc loc);
void vae_build_estimator(struct vae_parse_state *ps, const char *name, ast_arg *args, vae_loc loc);
void vae_build_train(struct vae_parse_state *ps, ast_assign *settings, vae_loc loc);
ast_name *vae_build_name(struct vae_parse_state *ps, ast_name *list, const char *name, vae_loc loc);
ast_assign *vae_build_assign(struct vae_parse_state *ps, ast_assign *list, const char *name,
                             ast_expr *value, vae_loc loc);
/* Names the networks the list's last setting is for (`optimizer prior = ...`). */
void vae_build_target(struct vae_parse_state *ps, ast_assign *list, const char *target, vae_loc loc);
void vae_build_dim(struct vae_parse_state *ps, ast_shape *shape, double value, int is_int, vae_loc loc);
ast_expr *vae_build_binop(struct vae_parse_state *ps, char op, ast_expr *l, ast_expr *r, vae_loc loc);
ast_expr *vae_build_neg(struct vae_parse_state *ps, ast_expr *e, vae_loc loc);
ast_expr *vae_build_num(struct vae_parse_state *ps, double v, int is_int, vae_loc loc);
ast_expr *vae_build_str(struct vae_parse_state *ps, ast_expr_kind kind, const char *s, vae_loc loc);
ast_expr *vae_build_param(struct vae_parse_state *ps, ast_shape shape, vae_loc loc);
ast_expr *vae_build_call(struct vae_parse_state *ps, const char *name, ast_arg *args, vae_loc loc);
ast_arg *vae_build_arg(struct vae_parse_state *ps, const char *name, ast_expr *value, int line, int col);
ast_arg *vae_build_arg_append(ast_arg *list, ast_arg *a);

#endif
