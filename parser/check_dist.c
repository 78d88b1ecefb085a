/* The checker's distributions: what networks return, and the fixed priors written after `~`. */
#include "parser/check_internal.h"

#include "parser/limits.h"
#include "parser/settings.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- distributions */

const ast_arg *chk_named(const ast_expr *call, const char *name) {
    for (const ast_arg *a = call->args; a; a = a->next)
        if (a->name && strcmp(a->name, name) == 0) return a;
    return NULL;
}

/* Checks that the call's named arguments are among `allowed` (a NULL-terminated list). */
int chk_only_named(checker *c, const ast_expr *call, const char *const *allowed, const char *what) {
    int ok = 1;
    for (const ast_arg *a = call->args; a; a = a->next) {
        if (!a->name) {
            ERR(a->loc, "%s(...) %s takes named arguments (%s: ...)", call->str, what, allowed[0]);
            ok = 0;
            continue;
        }
        int found = 0;
        for (int i = 0; allowed[i]; i++) found |= strcmp(allowed[i], a->name) == 0;
        if (!found) {
            ERR(a->loc, "%s() has no argument '%s'", call->str, a->name);
            ok = 0;
        }
        for (const ast_arg *b = call->args; b != a; b = b->next)
            if (b->name && strcmp(b->name, a->name) == 0) {
                ERR(a->loc, "argument '%s' is given twice", a->name);
                ok = 0;
            }
    }
    return ok;
}

/* Checks one distribution argument against the expected shape. */
static void dist_arg(checker *c, const ast_arg *a, shape want, const char *what) {
    c->target = a->name;
    shape s = chk_expr(c, a->value);
    if (s.nd < 0) return;
    if (s.nd == 0) {
        ERR(a->loc, "'%s' of %s must have shape %s, not a scalar", a->name, what, chk_shape_str(c, want));
        return;
    }
    chk_note_values(c, chk_shape_values(s));
    if (!chk_shape_eq(s, want))
        ERR(a->loc, "shape mismatch: '%s' of %s has shape %s, expected %s", a->name, what, chk_shape_str(c, s),
            chk_shape_str(c, want));
}

/* Whether a network returns a plain value (nvil's baseline b(x)) rather than a distribution. */
int chk_returns_value(const ast_network *n) {
    const ast_expr *e = n->ret;
    return e && !(e->kind == AST_CALL &&
                  (!strcmp(e->str, "normal") || !strcmp(e->str, "bernoulli") || !strcmp(e->str, "categorical")));
}

/* A distribution returned by a network over a value of shape `want`.
 * `allow` is a bitmask of the kinds that make sense for the target. */
int chk_returned_dist(checker *c, const ast_expr *e, shape want, unsigned allow, const char *what,
                               vae_dist *out) {
    memset(out, 0, sizeof *out);
    out->loc = e->loc;
    if (e->kind != AST_CALL ||
        (strcmp(e->str, "normal") && strcmp(e->str, "bernoulli") && strcmp(e->str, "categorical"))) {
        ERR(e->loc, "a network returns a distribution: normal(...), bernoulli(...) or categorical(...)");
        return 0;
    }
    if (strcmp(e->str, "normal") == 0) {
        out->kind = DIST_NORMAL;
        if (!(allow & (1u << DIST_NORMAL))) {
            ERR(e->loc, "%s cannot be normal", what);
            return 0;
        }
        static const char *const ok[] = {"mean", "logvar", "scale", NULL};
        if (!chk_only_named(c, e, ok, what)) return 0;
        const ast_arg *mean = chk_named(e, "mean"), *lv = chk_named(e, "logvar"), *sc = chk_named(e, "scale");
        if (!mean) ERR(e->loc, "normal() needs 'mean:'");
        if (!lv == !sc) ERR(e->loc, "normal() needs exactly one of 'logvar:' and 'scale:'");
        if (!mean || !lv == !sc) return 0;
        dist_arg(c, mean, want, what);
        dist_arg(c, lv ? lv : sc, want, what);
        out->a = mean->value;
        out->b = lv ? lv->value : sc->value;
        out->b_is_scale = sc != NULL;
        return 1;
    }
    if (strcmp(e->str, "bernoulli") == 0) {
        out->kind = DIST_BERNOULLI;
        if (!(allow & (1u << DIST_BERNOULLI))) {
            ERR(e->loc, "%s cannot be bernoulli", what);
            return 0;
        }
        static const char *const ok[] = {"logits", "probs", NULL};
        if (!chk_only_named(c, e, ok, what)) return 0;
        const ast_arg *lg = chk_named(e, "logits"), *pr = chk_named(e, "probs");
        if (!lg == !pr) {
            ERR(e->loc, "bernoulli() needs exactly one of 'logits:' and 'probs:'");
            return 0;
        }
        dist_arg(c, lg ? lg : pr, want, what);
        out->a = lg ? lg->value : pr->value;
        out->a_is_probs = pr != NULL;
        return 1;
    }
    out->kind = DIST_CATEGORICAL;
    if (!(allow & (1u << DIST_CATEGORICAL))) {
        ERR(e->loc, "%s cannot be categorical", what);
        return 0;
    }
    static const char *const ok[] = {"logits", NULL};
    if (!chk_only_named(c, e, ok, what)) return 0;
    const ast_arg *lg = chk_named(e, "logits");
    if (!lg) {
        ERR(e->loc, "categorical() needs 'logits:'");
        return 0;
    }
    dist_arg(c, lg, want, what);
    out->a = lg->value;
    return 1;
}

int chk_is_number(const ast_expr *e, double *v) {
    if (e->kind == AST_NUM) {
        *v = e->num;
        return 1;
    }
    if (e->kind == AST_NEG && e->lhs->kind == AST_NUM) {
        *v = -e->lhs->num;
        return 1;
    }
    return 0;
}

/* Whether a latent's one-hot (or plain) values fit; nvars and width stay 0 if not. */
int chk_latent_fits(checker *c, vae_latent *l, shape s) {
    double states = l->kind == LATENT_CATEGORICAL ? l->states : 1;
    if (!chk_fits(c, l->ast->loc, chk_shape_exact(s) * states,
              vae_pool_printf(c->pool, "latent '%s' %s%s", l->name, chk_shape_str(c, s),
                              states > 1 ? vae_pool_printf(c->pool, " of %d states", l->states) : ""),
              states > 1 ? "one-hot values per example" : "values per example")) {
        l->nvars = l->width = 0;
        return 0;
    }
    l->width = (int)vae_size_mul(chk_shape_values(s), (long long)states);
    chk_note_values(c, l->width);
    return 1;
}

/* A numeric setting of the train block or the estimator, validated against
 * the table that vaec's options use (parser/settings.c), in its words. */
int chk_setting_value(checker *c, vae_loc loc, const char *name, const ast_expr *v, double *out) {
    const vae_setting *s = vae_setting_named(name);
    double num = 0;
    int n, ok = s->integer ? chk_int_literal(v, &n) : chk_is_number(v, &num);
    if (s->integer && ok) num = n;
    if (ok && vae_setting_ok(s, num)) {
        *out = num;
        return 1;
    }
    char words[128];
    ERR(loc, "'%s' must be %s", name, vae_setting_words(s, words, sizeof words));
    return 0;
}

/* normal(0, 1), the standard normal: the one normal prior. */
static void chk_normal_prior(checker *c, vae_latent *l, shape s, int npos) {
    const ast_expr *e = l->ast->prior;
    vae_dist *p = &l->prior;
    l->kind = LATENT_NORMAL;
    p->kind = DIST_NORMAL;
    double m, v;
    if (chk_count_args(e->args) != 2 || npos != 2 || !chk_is_number(e->args->value, &m) ||
        !chk_is_number(e->args->next->value, &v) || m != 0 || v != 1) {
        ERR(e->loc, "a normal prior is written normal(0, 1) (the standard normal)");
        return;
    }
    p->standard = 1;
    chk_latent_fits(c, l, s);
}

/* categorical(logits: E): E is one row of logits, or one per variable, over at least 2 states. */
static int chk_categorical_logits(checker *c, vae_latent *l, shape s, const ast_arg *lg) {
    shape ls = chk_expr(c, lg->value);
    if (ls.nd < 0) return 0;
    if (ls.nd < 1 || ls.d[ls.nd - 1] < 2) {
        ERR(lg->loc, "the logits of a categorical prior need a last dimension of at least 2 states");
        return 0;
    }
    l->states = ls.d[ls.nd - 1];
    shape want = s;
    if (l->ast->shape.ndims == 0) want.nd = 0;
    want.d[want.nd++] = l->states;
    shape flat = chk_vec(l->states);
    if (l->nvars > 1) flat = want; /* one row of logits per variable */
    if (!chk_shape_eq(ls, want) && !chk_shape_eq(ls, flat)) {
        if (chk_shape_eq(want, flat))
            ERR(lg->loc, "shape mismatch: prior logits have shape %s, expected %s", chk_shape_str(c, ls),
                chk_shape_str(c, want));
        else
            ERR(lg->loc, "shape mismatch: prior logits have shape %s, expected %s or %s", chk_shape_str(c, ls),
                chk_shape_str(c, want), chk_shape_str(c, flat));
        return 0;
    }
    l->prior.a = lg->value;
    return 1;
}

/* categorical(K) with K >= 2 states, or categorical(logits: E). */
static void chk_categorical_prior(checker *c, vae_latent *l, shape s, int npos) {
    const ast_expr *e = l->ast->prior;
    l->kind = LATENT_CATEGORICAL;
    l->prior.kind = DIST_CATEGORICAL;
    if (s.nd == VAE_MAX_DIMS) { /* its logits and one-hot values take one more, for the states */
        ERR(l->ast->loc, "a categorical latent has at most %d dimensions", VAE_MAX_DIMS - 1);
        l->nvars = 0;
        return;
    }
    int k;
    if (npos == 1 && chk_count_args(e->args) == 1 && chk_int_literal(e->args->value, &k)) {
        if (k < 2) {
            ERR(e->args->loc, "a categorical latent needs at least 2 states");
            return;
        }
        l->states = k;
    } else if (npos == 0 && chk_count_args(e->args) == 1 && chk_named(e, "logits")) {
        if (!chk_categorical_logits(c, l, s, chk_named(e, "logits"))) return;
    } else {
        ERR(e->loc, "a categorical prior is written categorical(K) or categorical(logits: E)");
        return;
    }
    if (chk_latent_fits(c, l, s)) l->joint_states = pow((double)l->states, (double)l->nvars);
}

/* bernoulli(P) with 0 < P < 1, or bernoulli(logits: E) or bernoulli(probs: E) of the latent's shape. */
static void chk_bernoulli_prior(checker *c, vae_latent *l, shape s, int npos) {
    const ast_expr *e = l->ast->prior;
    vae_dist *p = &l->prior;
    l->kind = LATENT_BERNOULLI;
    p->kind = DIST_BERNOULLI;
    l->states = 2;
    if (!chk_latent_fits(c, l, s)) return;
    l->joint_states = pow(2.0, (double)l->nvars);
    double v;
    if (npos == 1 && chk_count_args(e->args) == 1 && chk_is_number(e->args->value, &v)) {
        if (!(v > 0 && v < 1)) {
            ERR(e->args->loc, "a bernoulli prior's probability must lie strictly between 0 and 1");
            return;
        }
        p->fixed_p = v;
        return;
    }
    const ast_arg *lg = chk_named(e, "logits"), *pr = chk_named(e, "probs");
    if (npos == 0 && chk_count_args(e->args) == 1 && (lg || pr)) {
        const ast_arg *a = lg ? lg : pr;
        shape as = chk_expr(c, a->value);
        if (as.nd >= 0 && !chk_shape_eq(as, s))
            ERR(a->loc, "shape mismatch: prior %s have shape %s, expected %s", a->name, chk_shape_str(c, as),
                chk_shape_str(c, s));
        p->a = a->value;
        p->a_is_probs = pr != NULL;
        return;
    }
    ERR(e->loc, "a bernoulli prior is written bernoulli(P), bernoulli(logits: E) or bernoulli(probs: E)");
}

void chk_prior(checker *c, vae_latent *l) {
    ast_expr *e = l->ast->prior;
    shape s = l->ast->shape.ndims ? chk_shape_of_ast(&l->ast->shape) : chk_vec(1);
    l->nvars = chk_shape_values(s) > VAE_MAX_VALUES ? 0 : chk_shape_size(s);
    l->prior.loc = e->loc;
    int npos = 0;
    for (const ast_arg *a = e->args; a; a = a->next) npos += a->name == NULL;
    c->prefix = "prior";
    c->owner = -1;
    c->net = NULL;
    c->target = l->name;
    if (strcmp(e->str, "normal") == 0)
        chk_normal_prior(c, l, s, npos);
    else if (strcmp(e->str, "categorical") == 0)
        chk_categorical_prior(c, l, s, npos);
    else if (strcmp(e->str, "bernoulli") == 0)
        chk_bernoulli_prior(c, l, s, npos);
    else
        ERR(e->loc, "unknown prior '%s' (expected normal, categorical or bernoulli)", e->str);
}

