/* Version 1 estimators (docs/structured.md): estimator elbo(NAME: EST, ..., samples: S, beta: F),
 * the version 0 per-latent forms turned into it on a structured model, and the rules that say
 * where each per-latent estimator applies. */
#include "parser/check_internal.h"

#include <string.h>

static const ast_network *find_baseline(const vae_model *m, const char *name) {
    for (const ast_network *n = m->ast->networks; n; n = n->next)
        if (n->role == NET_BASELINE && strcmp(n->name, name) == 0) return n;
    return NULL;
}

/* reinforce(baseline: b | loo) and gumbel(temperature: T, hard: B): the options of one latent. */
static int latent_option(checker *c, vae_latent_estimator *est, const ast_arg *a) {
    const ast_expr *v = a->value;
    double num;
    if (est->kind == EST_REINFORCE && a->name && strcmp(a->name, "baseline") == 0 && v->kind == AST_NAME) {
        if (strcmp(v->str, "loo") == 0) return est->baseline_loo = 1;
        est->baseline = find_baseline(c->m, v->str);
        if (!est->baseline)
            ERR(v->loc, "unknown baseline '%s' (declare it with baseline %s(%s) { ... })", v->str, v->str,
                c->m->data ? c->m->data->name : "x");
        return est->baseline != NULL;
    }
    if (est->kind == EST_GUMBEL && a->name && strcmp(a->name, "temperature") == 0) {
        if (!chk_setting_value(c, a->loc, "temperature", v, &num)) return 0;
        est->temperature = num;
        return 1;
    }
    if (est->kind == EST_GUMBEL && a->name && strcmp(a->name, "hard") == 0 && v->kind == AST_NAME &&
        (!strcmp(v->str, "true") || !strcmp(v->str, "false"))) {
        est->hard = strcmp(v->str, "true") == 0;
        return 1;
    }
    ERR(a->loc, "%s", est->kind == EST_REINFORCE ? "reinforce takes baseline: NAME or baseline: loo"
                                                 : "gumbel takes temperature: T and hard: true or false");
    return 0;
}

static void latent_estimator(checker *c, vae_latent *l, const ast_expr *v) {
    vae_latent_estimator *est = &l->est;
    est->loc = v->loc;
    est->kind = v->kind == AST_NAME || v->kind == AST_CALL ? chk_latent_estimator_kind(v->str) : EST_ELBO;
    int options = v->kind == AST_CALL && v->args;
    if (est->kind == EST_ELBO || (options && est->kind != EST_REINFORCE && est->kind != EST_GUMBEL)) {
        char names[256];
        ERR(v->loc, "the estimator of latent '%s' is one of %s (options: reinforce(baseline: b | loo), "
                    "gumbel(temperature: T, hard: B))", l->name, chk_latent_estimator_names(names, sizeof names));
        est->kind = EST_ELBO;
        return;
    }
    for (const ast_arg *a = v->kind == AST_CALL ? v->args : NULL; a; a = a->next)
        if (!latent_option(c, est, a)) est->kind = EST_ELBO;
}

/* An analytic latent's encoder reads only the data, labels and other analytic latents. */
static void analytic_parents(checker *c, const vae_latent *l) {
    const vae_model *m = c->m;
    for (int k = 0; k < l->nq_parents; k++) {
        const vae_latent *p = &m->latents[l->q_parents[k]];
        if (chk_inferred(p) && p->est.kind != EST_ANALYTIC && p->est.kind != EST_ELBO)
            ERR(l->est.loc, "latent '%s' is summed out (analytic), but its encoder reads '%s', which is sampled: an "
                            "analytic latent cannot depend on a sampled one in q (make '%s' analytic too)",
                l->name, p->name, p->name);
    }
}

/* arm and disarm: a bernoulli latent whose encoder reads no sampled latent (its logits are the same
 * on both rows of an antithetic pair), and pairs of samples. */
static void antithetic_rules(checker *c, const vae_latent *l) {
    const vae_model *m = c->m;
    const char *name = vae_estimator_name(l->est.kind);
    if (l->kind != LATENT_BERNOULLI) {
        ERR(l->est.loc, "%s applies to bernoulli latents; '%s' is %s (use %s)", name, l->name,
            chk_latent_kind_name(l->kind), l->kind == LATENT_NORMAL ? "reparam" : "reinforce(baseline: loo) or gumbel");
        return;
    }
    if (m->est.samples % 2)
        ERR(l->est.loc, "%s draws antithetic pairs of samples: elbo(...) needs an even number of samples (add samples: 2)",
            name);
    for (int k = 0; k < l->nq_parents; k++) {
        const vae_latent *p = &m->latents[l->q_parents[k]];
        if (chk_inferred(p) && p->est.kind != EST_ANALYTIC && p->est.kind != EST_ELBO)
            ERR(l->est.loc, "%s needs the same logits on both draws of a pair, but the encoder of '%s' reads '%s', which "
                            "is sampled (use reinforce or gumbel on '%s')", name, l->name, p->name, l->name);
    }
}

/* Where each latent's estimator applies (EST_ELBO on a latent: already reported). */
static void elbo_rules(checker *c) {
    vae_model *m = c->m;
    double joint = 1;
    const vae_latent *first_analytic = NULL;
    for (int i = 0; i < m->nlatents; i++) {
        vae_latent *l = &m->latents[i];
        const vae_latent_estimator *e = &l->est;
        if (!chk_inferred(l)) continue;
        if (l->est.kind == EST_GUMBEL && l->est.temperature == 0) l->est.temperature = 1.0; /* as version 0's gumbel */
        if (!l->encoder)
            ERR(m->est.loc, "estimator elbo needs an encoder for latent '%s' (declare encoder q(%s | %s) { ... })",
                l->name, l->name, m->data ? m->data->name : "x");
        const char *kind = chk_latent_kind_name(l->kind);
        if (e->kind == EST_ANALYTIC && l->kind == LATENT_NORMAL)
            ERR(e->loc, "analytic sums over the states of a latent; '%s' is normal and has none to sum (use reparam)",
                l->name);
        else if (e->kind == EST_ANALYTIC) {
            joint *= l->joint_states;
            if (!first_analytic) first_analytic = l;
            if (l->encoder) analytic_parents(c, l);
        }
        if (e->kind == EST_REPARAM && l->kind != LATENT_NORMAL)
            ERR(e->loc, "reparam applies to normal latents; '%s' is %s (use analytic, reinforce or gumbel)", l->name,
                kind);
        if (e->kind == EST_ARM || e->kind == EST_DISARM) antithetic_rules(c, l);
        if (e->kind == EST_GUMBEL && l->kind == LATENT_NORMAL)
            ERR(e->loc, "gumbel relaxes discrete (categorical or bernoulli) latents; '%s' is normal (use reparam)", l->name);
        if (e->baseline_loo && m->est.samples < 2)
            ERR(e->loc, "reinforce(baseline: loo) needs at least 2 samples: each sample's baseline is the mean of the "
                        "others (add samples: 2 to elbo(...))");
        if (e->baseline && !m->baseline_net) m->baseline_net = e->baseline;
    }
    if (joint > 65536)
        ERR(first_analytic->est.loc, "the analytic latents have %.4g joint states together, and at most 65536 are "
                                     "enumerable (sample some of them: reparam, reinforce or gumbel)", joint);
}

/* estimator elbo(NAME: EST, ..., samples: S, beta: F) */
void chk_elbo(checker *c, const ast_estimator *e) {
    vae_model *m = c->m;
    vae_estimator *est = &m->est;
    int named[VAE_MAX_LATENTS] = {0};
    double num;
    est->kind = EST_ELBO;
    est->name = "elbo";
    est->loc = e->loc;
    est->samples = 1;
    est->beta = 1.0;
    est->trains_encoder = 1;
    for (const ast_arg *a = e->args; a; a = a->next) {
        vae_latent *l = a->name ? chk_find_latent(m, a->name) : NULL;
        if (!a->name) {
            ERR(a->loc, "elbo's entries are named: elbo(z: reparam, ..., samples: S, beta: F)");
        } else if (strcmp(a->name, "samples") == 0 || strcmp(a->name, "beta") == 0) {
            if (!chk_setting_value(c, a->loc, a->name, a->value, &num)) continue;
            if (a->name[0] == 's') est->samples = (int)num;
            else est->beta = num;
        } else if (!l) {
            ERR(a->loc, "'%s' is neither a latent nor an option of elbo (samples, beta)", a->name);
        } else if (!chk_inferred(l)) {
            ERR(a->loc, "label '%s' is observed in every example (it has no encoder): it takes no estimator", l->name);
        } else if (named[l - m->latents]++) {
            ERR(a->loc, "latent '%s' is named twice in elbo(...)", l->name);
        } else {
            latent_estimator(c, l, a->value);
        }
    }
    for (int i = 0; i < m->nlatents; i++)
        if (chk_inferred(&m->latents[i]) && !named[i]) {
            ERR(e->loc, "elbo(...) names no estimator for %s '%s' (every latent, and every label with an encoder, is "
                        "named once)", m->latents[i].label ? "label" : "latent", m->latents[i].name);
            m->latents[i].est.kind = EST_ELBO;
        }
    elbo_rules(c);
}

/* On a structured model, `estimator reparam` (analytic, reinforce, gumbel) is elbo(...) with that
 * estimator on every latent and every label with an encoder; the version 0 check has already
 * read its options and said where it does not apply. */
void chk_elbo_from_v0(checker *c) {
    vae_model *m = c->m;
    vae_estimator *est = &m->est;
    if (est->kind == EST_UNIFORM)
        ERR(est->loc, "estimator 'uniform' is not yet for structured models (use analytic or reinforce)");
    if (est->kind == EST_RENYI || est->kind == EST_RWS)
        ERR(est->loc, "estimator '%s' is not yet for structured models (use iwae or vimco)", vae_estimator_name(est->kind));
    if (est->kind == EST_IWAE && est->dreg)
        ERR(est->loc, "iwae(gradient: dreg) is not yet for structured models");
    if (est->stl)
        ERR(est->loc, "%s(gradient: stl) is not yet for structured models", vae_estimator_name(est->kind));
    if (est->kind == EST_ARM || est->kind == EST_DISARM)
        ERR(est->loc, "on a structured model, name each latent's estimator: elbo(b: %s, ..., samples: 2)",
            vae_estimator_name(est->kind));
    if (est->kind == EST_NVIL || est->kind == EST_SUM_AND_SAMPLE)
        ERR(est->loc, "estimator '%s' is not yet for structured models", vae_estimator_name(est->kind));
    if (est->kind == EST_LOCAL_DISARM) ERR(est->loc, "disarm(samples: K) is not yet for structured models");
    if (est->kind != EST_ANALYTIC && est->kind != EST_REPARAM && est->kind != EST_REINFORCE && est->kind != EST_GUMBEL)
        return;
    for (int i = 0; i < m->nlatents; i++) {
        vae_latent *l = &m->latents[i];
        if (!chk_inferred(l)) continue;
        l->est = (vae_latent_estimator){est->kind, est->baseline, est->baseline_loo, est->temperature, est->hard,
                                        est->loc};
    }
    est->kind = EST_ELBO;
    m->baseline_net = NULL;
    elbo_rules(c);
}

void chk_print_latent_estimator(FILE *out, const vae_latent_estimator *e) {
    fputs(vae_estimator_name(e->kind), out);
    if (e->baseline || e->baseline_loo) fprintf(out, "(baseline: %s)", e->baseline_loo ? "loo" : e->baseline->name);
    if (e->kind == EST_GUMBEL)
        fprintf(out, "(temperature: %g%s)", e->temperature, e->hard ? ", hard: true" : "");
}
