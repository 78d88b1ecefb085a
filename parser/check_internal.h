/* The checker's shared state and helpers, for the files it is cut into by
 * concern: check.c (declarations, networks, train settings, summaries),
 * check_expr.c (shapes, expressions and layers, parameters), check_dist.c
 * (distributions and fixed priors), check_estimator.c (version 0
 * estimators), check_structure.c (version 1: labels, prior networks,
 * parents, cycles, orders, rows) and check_elbo.c (version 1 estimators). */
#ifndef VAE_CHECK_INTERNAL_H
#define VAE_CHECK_INTERNAL_H

#include "parser/model.h"

typedef struct {
    int nd; /* -1: unknown (an error was already reported); 0: a scalar */
    int d[VAE_MAX_DIMS];
} shape;

static const shape UNKNOWN = {-1, {0}};
static const shape SCALAR = {0, {0}};

typedef enum { VAL_TENSOR, VAL_CATEGORICAL } val_kind;

typedef struct binding {
    const char *name;
    shape sh;
    val_kind kind;
    const vae_latent *latent; /* VAL_CATEGORICAL */
    struct binding *next;
} binding;

typedef struct {
    vae_source *src;
    vae_model *m;
    vae_pool *pool;
    const char *prefix;     /* parameter names start with it: "encoder" */
    const char *target;     /* the variable being assigned, or the argument name */
    int owner;              /* the role of the network being checked, -1 for priors */
    const ast_network *net; /* the network being checked, NULL for priors */
    binding *env;
    /* How many parameters have taken each base name, for encoder.h#2. */
    struct used_name { const char *base; int count; struct used_name *next; } *used;
    int params_too_many;    /* the parameters passed VAE_MAX_VALUES: said once */
} checker;

#define ERR(loc, ...) vae_error(c->src, (loc), __VA_ARGS__)

/* shapes and sizes (check_expr.c) */
long long chk_shape_values(shape s);
int chk_shape_size(shape s);
double chk_shape_exact(shape s);
int chk_shape_eq(shape a, shape b);
const char *chk_shape_str(checker *c, shape s);
shape chk_shape_of_ast(const ast_shape *s);
shape chk_vec(int n);
const char *chk_count_str(checker *c, double n);
int chk_fits(checker *c, vae_loc loc, double n, const char *what, const char *unit);
void chk_note_values(checker *c, long long n);
/* expressions and names (check_expr.c), distributions (check_dist.c) */
int chk_int_literal(const ast_expr *e, int *out);
int chk_is_number(const ast_expr *e, double *v);
int chk_count_args(const ast_arg *a);
shape chk_expr(checker *c, ast_expr *e);
void chk_unknown_name(checker *c, const ast_expr *e);
void chk_bind(checker *c, const char *name, shape s, val_kind k, const vae_latent *l);
void chk_bind_latent(checker *c, const vae_latent *l);
void chk_body(checker *c, const ast_network *n);
/* A parameter tensor of the network being checked (c->owner); its index in m->params, or -1 (reported). */
int chk_add_param(checker *c, vae_loc loc, const char *name, shape s, float bound);
/* The estimator kind a latent of elbo(...) may name `name` (the table's per-latent rows), or EST_ELBO
 * when there is none; and their names for a message ("analytic, ..., arm or disarm"), into buf. */
vae_estimator_kind chk_latent_estimator_kind(const char *name);
const char *chk_latent_estimator_names(char *buf, size_t len);
const ast_arg *chk_named(const ast_expr *call, const char *name);
int chk_only_named(checker *c, const ast_expr *call, const char *const *allowed, const char *what);
int chk_returned_dist(checker *c, const ast_expr *e, shape want, unsigned allow, const char *what, vae_dist *out);
int chk_returns_value(const ast_network *n); /* a baseline's one value b(x) (nvil), not a distribution */
int chk_setting_value(checker *c, vae_loc loc, const char *name, const ast_expr *v, double *out);
/* latents (check_dist.c, check.c, check_estimator.c) */
void chk_prior(checker *c, vae_latent *l);
int chk_latent_fits(checker *c, vae_latent *l, shape s);
vae_latent *chk_find_latent(vae_model *m, const char *name);
const char *chk_latent_kind_name(vae_latent_kind k);
/* The shape of a latent's values, and of what a network returns for it. */
shape chk_latent_shape(const vae_latent *l);
shape chk_dist_shape(const vae_latent *l);

/* version 1 (check_structure.c) */
int chk_is_label_name(const vae_model *m, const char *name);
/* Whether the latent is inferred: a latent, or a label with an encoder. */
int chk_inferred(const vae_latent *l);
void chk_labels(checker *c);                       /* labels after the latents */
void chk_prior_net_latent(checker *c, vae_latent *l); /* a latent without `~`: its family from its prior network */
int chk_structured(const vae_model *m);
void chk_prior_network(checker *c, const ast_network *n);
void chk_given(checker *c, const ast_network *n, int allow_data);
void chk_structure(checker *c);
void chk_rows(checker *c);
void chk_print_structured(FILE *out, const vae_model *m);
void chk_print_structured_objective(FILE *out, const vae_model *m);
/* version 0 estimators (check_estimator.c) */
void chk_estimator(checker *c, const ast_estimator *e);
const char *chk_estimator_formula(vae_estimator_kind k); /* the table's template; NULL for elbo */
void chk_print_estimator(FILE *out, const vae_estimator *e);
/* version 1 estimators (check_elbo.c) */
void chk_elbo(checker *c, const ast_estimator *e);
void chk_elbo_from_v0(checker *c);
void chk_print_latent_estimator(FILE *out, const vae_latent_estimator *e);
void chk_print_dist(FILE *out, const vae_dist *d);

#endif
