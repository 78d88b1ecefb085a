/* Version 1 (docs/structured.md): labels, latents whose prior is a network,
 * the given lists of structured networks, parents, cycles, the ancestral
 * orders, and the rows each network runs on. */
#include "parser/check_internal.h"

#include "parser/limits.h"

#include <math.h>
#include <string.h>

int chk_inferred(const vae_latent *l) { return !l->label || l->encoder; }

static const ast_network *prior_net_of(const vae_model *m, const char *name) {
    for (const ast_network *n = m->ast->networks; n; n = n->next)
        if (n->role == NET_PRIOR && strcmp(n->output->name, name) == 0) return n;
    return NULL;
}

/* The last count written in a logits expression: dense(h, K), reshape(..., K), param[..., K]. */
static int last_count(const ast_expr *e) {
    int k = 0;
    if (e->kind == AST_PARAM && e->ndims > 0) return e->dims[e->ndims - 1];
    if (e->kind == AST_CALL && (strcmp(e->str, "dense") == 0 || strcmp(e->str, "reshape") == 0)) {
        const ast_arg *a = e->args;
        while (a && a->next) a = a->next;
        if (a && chk_int_literal(a->value, &k)) return k;
    }
    return 0;
}

/* A latent declared without `~`: its family (and a categorical's states) come from what its
 * prior network returns; the network itself is checked with the others, in source order. */
void chk_prior_net_latent(checker *c, vae_latent *l) {
    shape s = l->ast->shape.ndims ? chk_shape_of_ast(&l->ast->shape) : chk_vec(1);
    l->nvars = chk_shape_values(s) > VAE_MAX_VALUES ? 0 : chk_shape_size(s);
    l->kind = LATENT_NORMAL;
    const ast_network *n = prior_net_of(c->m, l->name);
    const ast_expr *r = n ? n->ret : NULL;
    if (r && r->kind == AST_CALL && strcmp(r->str, "bernoulli") == 0) {
        l->kind = LATENT_BERNOULLI;
        l->states = 2;
        if (chk_latent_fits(c, l, s)) l->joint_states = pow(2.0, (double)l->nvars);
        return;
    }
    if (r && r->kind == AST_CALL && strcmp(r->str, "categorical") == 0) {
        l->kind = LATENT_CATEGORICAL;
        const ast_arg *lg = chk_named(r, "logits");
        int k = lg ? last_count(lg->value) : 0;
        if (k < 2 || s.nd == VAE_MAX_DIMS) {
            ERR(r->loc, "the states of latent '%s' come from its prior network's logits: end them with a count of at "
                        "least 2 written as a number (dense(h, K), reshape(..., K) or param[..., K])", l->name);
            l->nvars = 0;
            return;
        }
        l->states = k;
        if (chk_latent_fits(c, l, s)) l->joint_states = pow((double)k, (double)l->nvars);
        return;
    }
    chk_latent_fits(c, l, s); /* normal; a wrong return is reported with the network */
}

/* label(K), optionally ~ categorical(logits: ...): a categorical latent of one variable. */
static void check_label(checker *c, const ast_data *d) {
    vae_model *m = c->m;
    if (m->data && strcmp(d->name, m->data->name) == 0) {
        ERR(d->loc, "'%s' is already the data's name", d->name);
        return;
    }
    if (chk_find_latent(m, d->name)) {
        ERR(d->loc, "label '%s' has the name of a latent or another label", d->name);
        return;
    }
    if (m->nlatents == VAE_MAX_LATENTS) {
        ERR(d->loc, "too many latents and labels (at most %d)", VAE_MAX_LATENTS);
        return;
    }
    if (d->shape.ndims) ERR(d->shape.loc, "a label is one class per example: data %s : label(K), without a shape", d->name);
    int k = 0;
    if (chk_count_args(d->label_args) != 1 || d->label_args->name || !chk_int_literal(d->label_args->value, &k) ||
        k < 2) {
        ERR(d->kind_loc, "a label is written label(K), K the number of classes (at least 2)");
        return;
    }
    if (d->prior && (d->prior->kind != AST_CALL || strcmp(d->prior->str, "categorical"))) {
        ERR(d->prior->loc, "a label's prior is categorical(logits: E) (without it: uniform)");
        return;
    }
    ast_latent *al = vae_pool_alloc(c->pool, sizeof *al);
    al->name = d->name;
    al->loc = d->loc;
    al->prior = d->prior;
    if (!al->prior) { /* uniform: as if written categorical(K) */
        ast_expr *call = vae_pool_alloc(c->pool, sizeof *call), *num = vae_pool_alloc(c->pool, sizeof *num);
        ast_arg *a = vae_pool_alloc(c->pool, sizeof *a);
        num->kind = AST_NUM;
        num->num = k;
        num->is_int = 1;
        num->loc = a->loc = call->loc = d->kind_loc;
        a->value = num;
        call->kind = AST_CALL;
        call->str = "categorical";
        call->args = a;
        al->prior = call;
    }
    vae_latent *v = &m->latents[m->nlatents++];
    v->ast = al;
    v->name = d->name;
    v->label = 1;
    chk_prior(c, v);
    if (v->states != k && v->states) {
        ERR(d->prior->loc, "label '%s' has %d classes, and its prior %d", d->name, k, v->states);
        v->states = k;
    }
}

void chk_labels(checker *c) {
    for (const ast_data *d = c->m->ast->data; d; d = d->next)
        if (d->label) check_label(c, d);
}

int chk_structured(const vae_model *m) {
    for (int i = 0; i < m->nlatents; i++) /* a label, or a latent whose prior is (or should be) a network */
        if (m->latents[i].label || !m->latents[i].ast->prior) return 1;
    for (const ast_network *n = m->ast->networks; n; n = n->next) {
        if (n->role == NET_PRIOR) return 1;
        if (n->role == NET_ENCODER)
            for (const ast_name *g = n->given; g; g = g->next)
                if (chk_find_latent((vae_model *)m, g->name)) return 1;
    }
    return m->ast->estimators && strcmp(m->ast->estimators->name, "elbo") == 0;
}

/* A structured network's given list: the data (encoders only), latents and labels; its body
 * reads only these names. */
void chk_given(checker *c, const ast_network *n, int allow_data) {
    vae_model *m = c->m;
    for (const ast_name *g = n->given; g; g = g->next) {
        const vae_latent *l = chk_find_latent(m, g->name);
        if (m->data && strcmp(g->name, m->data->name) == 0) {
            if (allow_data)
                chk_bind(c, g->name, m->data_dim ? chk_shape_of_ast(&m->data->shape) : UNKNOWN, VAL_TENSOR, NULL);
            else
                ERR(g->loc, "a %s reads latents and labels, not the data '%s'", ast_role_name(n->role), g->name);
        } else if (l) {
            chk_bind_latent(c, l);
        } else {
            ERR(g->loc, "unknown name '%s' (a %s reads %s latents and labels)", g->name, ast_role_name(n->role),
                allow_data ? "the data," : "");
        }
    }
}

void chk_prior_network(checker *c, const ast_network *n) {
    vae_latent *l = chk_find_latent(c->m, n->output->name);
    if (!l) {
        ERR(n->output->loc, "a prior network p(z | ...) names a latent first; '%s' is not a latent", n->output->name);
        return;
    }
    if (l->label) {
        ERR(n->loc, "label '%s' takes its prior after '~' (data %s : label(K) ~ categorical(logits: ...))", l->name,
            l->name);
        return;
    }
    if (l->ast->prior) {
        ERR(n->loc, "latent '%s' has its prior after '~' already: a latent with '~' has no prior network", l->name);
        return;
    }
    if (l->prior_net) {
        ERR(n->loc, "latent '%s' already has a prior network ('%s')", l->name, l->prior_net->name);
        return;
    }
    l->prior_net = n;
    if (!n->given)
        ERR(n->loc, "a prior network reads other latents: prior %s(%s | a, ...); a fixed prior is written after '~'",
            n->name, l->name);
    chk_given(c, n, 0);
    chk_body(c, n);
    if (l->kind == LATENT_CATEGORICAL && !l->nvars) return; /* refused with its states */
    const char *what = vae_pool_printf(c->pool, "the prior network of latent '%s'", l->name);
    chk_returned_dist(c, n->ret, chk_dist_shape(l), 1u << (l->kind == LATENT_NORMAL ? DIST_NORMAL
                                                          : l->kind == LATENT_BERNOULLI ? DIST_BERNOULLI
                                                                                        : DIST_CATEGORICAL),
                      what, &l->prior);
}

/* The latents and labels a network's given list names, as indices, each once. */
static int parents_of(const vae_model *m, const ast_network *n, int *out) {
    int np = 0;
    for (const ast_name *g = n->given; g; g = g->next)
        for (int i = 0; i < m->nlatents; i++) {
            if (strcmp(m->latents[i].name, g->name)) continue;
            int seen = 0;
            for (int k = 0; k < np; k++) seen |= out[k] == i;
            if (!seen) out[np++] = i;
        }
    return np;
}

/* Whether `to` is reachable from `from` along edge[a][b] (b reads a); the path into path[]. */
static int reach(unsigned char edge[][VAE_MAX_LATENTS], int n, int from, int to, int *path, int *len,
                 unsigned char *seen) {
    path[(*len)++] = from;
    if (from == to) return 1;
    seen[from] = 1;
    for (int b = 0; b < n; b++)
        if (edge[from][b] && !seen[b] && reach(edge, n, b, to, path, len, seen)) return 1;
    (*len)--;
    return 0;
}

/* Adds the networks of one role in declaration order; the first whose edges close a cycle is an
 * error that names it, and its edges are left out.  Then the ancestral order, ties in
 * declaration order. */
static void cycles_and_order(checker *c, ast_net_role role, int *order) {
    vae_model *m = c->m;
    int n = m->nlatents;
    unsigned char edge[VAE_MAX_LATENTS][VAE_MAX_LATENTS] = {{0}};
    for (const ast_network *net = m->ast->networks; net; net = net->next) {
        const vae_latent *o = net->role == role ? chk_find_latent(m, net->output->name) : NULL;
        if (!o || (role == NET_ENCODER ? o->encoder : o->prior_net) != net) continue;
        int oi = (int)(o - m->latents), np = role == NET_ENCODER ? o->nq_parents : o->np_parents;
        const int *par = role == NET_ENCODER ? o->q_parents : o->p_parents;
        int closed = 0;
        for (int k = 0; k < np && !closed; k++) {
            int path[VAE_MAX_LATENTS + 1], len = 0;
            unsigned char seen[VAE_MAX_LATENTS] = {0};
            if (!reach(edge, n, oi, par[k], path, &len, seen)) continue;
            char words[VAE_MAX_LATENTS * 80] = "";
            size_t w = 0;
            for (int i = 0; i < len && w < sizeof words; i++)
                w += (size_t)snprintf(words + w, sizeof words - w, "%s -> ", m->latents[path[i]].name);
            if (w < sizeof words) snprintf(words + w, sizeof words - w, "%s", o->name);
            ERR(net->loc, "the %s dependencies make a cycle: %s (%s '%s' closes it)",
                role == NET_ENCODER ? "posterior's" : "prior's", words, ast_role_name(role), net->name);
            closed = 1;
        }
        for (int k = 0; k < np && !closed; k++) edge[par[k]][oi] = 1;
    }
    unsigned char placed[VAE_MAX_LATENTS] = {0};
    for (int at = 0; at < n; at++) {
        int pick = -1;
        for (int i = 0; i < n && pick < 0; i++) {
            int ready = !placed[i];
            for (int p = 0; p < n && ready; p++) ready = !edge[p][i] || placed[p];
            if (ready) pick = i;
        }
        placed[pick] = 1; /* the graph is acyclic: some latent is always ready */
        order[at] = pick;
    }
}

/* Parents, the prior networks that are missing, encoders that read a latent without one,
 * cycles and orders. */
void chk_structure(checker *c) {
    vae_model *m = c->m;
    for (int i = 0; i < m->nlatents; i++) {
        vae_latent *l = &m->latents[i];
        if (!l->label && !l->ast->prior && !l->prior_net)
            ERR(l->ast->loc, "latent '%s' has no prior: write it after '~' (latent %s ~ normal(0, 1)) or declare a "
                             "prior network (prior p%s(%s | ...) { ... })", l->name, l->name, l->name, l->name);
        if (l->encoder) l->nq_parents = parents_of(m, l->encoder, l->q_parents);
        if (l->prior_net) l->np_parents = parents_of(m, l->prior_net, l->p_parents);
        for (const ast_name *g = l->encoder ? l->encoder->given : NULL; g; g = g->next) {
            const vae_latent *p = chk_find_latent(m, g->name);
            if (p && !p->label && !p->encoder)
                ERR(g->loc, "encoder '%s' reads latent '%s', which has no encoder: there is nothing to read in the "
                            "posterior (declare encoder q(%s | ...))", l->encoder->name, p->name, p->name);
        }
    }
    cycles_and_order(c, NET_PRIOR, m->prior_order);
    cycles_and_order(c, NET_ENCODER, m->posterior_order);
}

/* ---------------------------------------------------------------- rows (docs/structured.md "Rows") */

static int enumerated(const vae_model *m, const vae_latent *l) {
    return chk_inferred(l) && (m->est.kind == EST_EXACT || (m->est.kind == EST_ELBO && l->est.kind == EST_ANALYTIC));
}

/* J: the joint states of the enumerated latents. */
static double joint_enumerated(const vae_model *m) {
    double j = 1;
    for (int i = 0; i < m->nlatents; i++)
        if (enumerated(m, &m->latents[i])) j *= m->latents[i].joint_states;
    return j;
}

/* 0: B rows (data and observed labels), 1: B x J (an enumerated latent), 2: B x J x S (a sampled one). */
static int latent_space(const vae_model *m, const vae_latent *l) {
    return !chk_inferred(l) ? 0 : enumerated(m, l) ? 1 : 2;
}

static double network_rows(const vae_model *m, const ast_network *n, int batch) {
    int space = 0;
    for (const ast_name *g = n->given; g; g = g->next) {
        const vae_latent *l = chk_find_latent((vae_model *)m, g->name);
        if (l && latent_space(m, l) > space) space = latent_space(m, l);
    }
    return (double)batch * (space >= 1 ? joint_enumerated(m) : 1) * (space == 2 ? m->est.samples : 1);
}

/* A graph of the default batch: every network's rows times the widest value of a row. */
void chk_rows(checker *c) {
    const vae_model *m = c->m;
    for (const ast_network *n = m->ast->networks; n; n = n->next) {
        double rows = network_rows(m, n, m->train.batch), need = rows * (double)m->max_example_values;
        if (need <= (double)VAE_MAX_VALUES) continue;
        ERR(m->est.loc, "a graph of the default batch (%d examples) would need %.4g values in one tensor of network "
                        "'%s' (%.0f rows of up to %ld values), more than vaec can index (%s): lower the batch, the "
                        "samples or the enumerated states", m->train.batch, need, n->name, rows,
            m->max_example_values, VAE_MAX_VALUES_WORDS);
        return;
    }
}

/* ---------------------------------------------------------------- summary */

static void print_net(FILE *out, const ast_network *n) {
    fprintf(out, "%s(", n->name);
    for (const ast_name *g = n->given; g; g = g->next) fprintf(out, "%s%s", g == n->given ? "" : ", ", g->name);
    fputc(')', out);
}

static void print_latent(FILE *out, const vae_model *m, const vae_latent *l) {
    fprintf(out, "  %-9s %s: %d %s variable%s", l->label ? "label" : "latent", l->name, l->nvars,
            chk_latent_kind_name(l->kind), l->nvars == 1 ? "" : "s");
    if (l->states && l->kind == LATENT_CATEGORICAL) fprintf(out, " of %d states", l->states);
    fputs(", prior ", out);
    if (l->prior_net) {
        fputs("network ", out);
        print_net(out, l->prior_net);
        fputs(" returns ", out);
    }
    chk_print_dist(out, &l->prior);
    if (l->encoder) {
        fputs(", encoder ", out);
        print_net(out, l->encoder);
        fputs(" returns ", out);
        chk_print_dist(out, &l->posterior);
    } else if (l->label)
        fputs(", observed in every example", out);
    if (m->est.kind == EST_ELBO && chk_inferred(l)) {
        fputs(", estimator ", out);
        chk_print_latent_estimator(out, &l->est);
    }
    fputc('\n', out);
}

static void print_order(FILE *out, const vae_model *m, const char *what, const int *order) {
    fprintf(out, "  %-9s", what);
    for (int i = 0; i < m->nlatents; i++) fprintf(out, "%s%s", i ? " -> " : " ", m->latents[order[i]].name);
    fputc('\n', out);
}

/* The lines of `vaec check` between the data and the parameters, for a structured model. */
void chk_print_structured(FILE *out, const vae_model *m) {
    for (int i = 0; i < m->nlatents; i++) print_latent(out, m, &m->latents[i]);
    if (m->decoder) {
        fputs("  decoder   ", out);
        print_net(out, m->decoder);
        fputs(" returns ", out);
        chk_print_dist(out, &m->likelihood);
        fputc('\n', out);
    }
    print_order(out, m, "posterior", m->posterior_order);
    print_order(out, m, "prior", m->prior_order);
    int any = 0;
    for (int i = 0; i < m->nlatents; i++)
        if (enumerated(m, &m->latents[i])) {
            fprintf(out, any++ ? ", %s" : "  enumerated %s", m->latents[i].name);
        }
    if (any) fprintf(out, ": %.0f joint states\n", joint_enumerated(m));
    fprintf(out, "  rows      (batch %d, samples %d):", m->train.batch, m->est.samples);
    for (const ast_network *n = m->ast->networks; n; n = n->next)
        fprintf(out, " %s %.0f%s", n->name, network_rows(m, n, m->train.batch), n->next ? "," : "\n");
}

/* ---------------------------------------------------------------- the objective as a formula */

/* "q(z | x, y)", "p(z | y)", or "p(z)" for a fixed prior. */
static void print_cond(FILE *out, char qp, const char *name, const ast_network *n) {
    fprintf(out, "%c(%s", qp, name);
    for (const ast_name *g = n ? n->given : NULL; g; g = g->next) fprintf(out, "%s%s", g == n->given ? " | " : ", ", g->name);
    fputc(')', out);
}

static const vae_latent *first_summed(const vae_model *m) {
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[m->posterior_order[i]];
        if (chk_inferred(l) && l->est.kind == EST_ANALYTIC) return l;
    }
    return NULL;
}

void chk_print_structured_objective(FILE *out, const vae_model *m) {
    const char *x = m->data ? m->data->name : "x";
    const vae_estimator *e = &m->est;
    if (e->kind != EST_ELBO) {
        fprintf(out, "  maximise  the %s bound: log w = log p(%s | .) + sum_i (log p(z_i | .) - log q(z_i | .)), "
                     "%d sample%s in %s order\n", vae_estimator_name(e->kind), x, e->samples, e->samples == 1 ? "" : "s",
                e->kind == EST_PRIOR ? "prior" : "posterior");
        return;
    }
    fprintf(out, "  maximise  ELBO(%s) = ", x);
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[m->posterior_order[i]];
        if (!chk_inferred(l) || l->est.kind != EST_ANALYTIC) continue;
        fprintf(out, "sum_%s ", l->name);
        print_cond(out, 'q', l->name, l->encoder);
        fputs(" ", out);
    }
    fputs("[ ", out);
    if (e->samples > 1) fprintf(out, "(1/%d) sum_s ( ", e->samples);
    fputs("log ", out);
    print_cond(out, 'p', x, m->decoder);
    const char *beta = e->beta != 1 ? vae_pool_printf(m->src->pool, "%g * ", e->beta) : "";
    for (int pass = 0; pass < 2; pass++) /* the sampled latents' terms, then the summed ones' */
        for (int i = 0; i < m->nlatents; i++) {
            const vae_latent *l = &m->latents[m->posterior_order[i]];
            if (!chk_inferred(l) || (l->est.kind == EST_ANALYTIC) != pass) continue;
            if (pass && e->samples > 1 && l == first_summed(m)) fputs(" )", out);
            if (l->est.kind == EST_ANALYTIC) {
                fprintf(out, " + %s(log ", beta);
                print_cond(out, 'p', l->name, l->prior_net);
                fputs(" - log ", out);
                print_cond(out, 'q', l->name, l->encoder);
                fputc(')', out);
            } else if (l->encoder && l->posterior.kind == l->prior.kind) {
                fprintf(out, " - %sKL(", beta);
                print_cond(out, 'q', l->name, l->encoder);
                fputs(" || ", out);
                print_cond(out, 'p', l->name, l->prior_net);
                fputc(')', out);
            } else {
                fprintf(out, " + %s(log p(%s | .) - log q(%s | .))", beta, l->name, l->name);
            }
        }
    if (e->samples > 1 && !first_summed(m)) fputs(" )", out);
    fputs(" ]\n", out);
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[m->posterior_order[i]];
        if (!chk_inferred(l)) continue;
        fprintf(out, "    %s: ", l->name);
        chk_print_latent_estimator(out, &l->est);
        fputs(l->est.kind == EST_ANALYTIC ? " (summed over its states)" : " (sampled; KL in closed form)", out);
        fputc('\n', out);
    }
}
