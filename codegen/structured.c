/* The graphs of structured models (language version 1): latents that read
 * other latents and labels, prior networks, and an estimator per latent.
 * docs/structured.md has the design: the three row spaces (B examples, B x J
 * example-states, B x J x S samples, nested so that broadcasting by row
 * division applies), the objective and each gradient.  The densities come
 * from densities.c, as the version 0 builders' do. */
#include "codegen/densities.h"

#include <math.h>
#include <string.h>

/* What a latent is in one pass over the model. */
typedef enum {
    ROLE_OBSERVED,   /* a label without encoder: its value is the data's */
    ROLE_ENUMERATED, /* summed out: one row per joint state */
    ROLE_PATH,       /* sampled, the gradient through the sample (reparam) */
    ROLE_SCORE,      /* sampled, no gradient through the sample (reinforce, vimco, evaluation) */
    ROLE_RELAXED,    /* gumbel: a relaxed sample (or straight-through) feeds the networks */
    ROLE_ANTITHETIC  /* arm, disarm: sample rows 2k and 2k + 1 hold an antithetic pair of one uniform */
} latent_role;

/* One pass: every latent given a value, in posterior (or prior) order. */
typedef struct {
    lowering *L;
    g_graph *g;
    const vae_model *m;
    int B, J, S;               /* rows: B, B*J, B*J*S */
    g_node *x, *y_kept, *kept; /* the data block; kept [B, 1]: 1 where the label is kept */
    latent_role role[VAE_MAX_LATENTS];
    int hard_values;           /* relaxed latents feed their discrete sample (the reported value's pass) */
    int from_prior;            /* values drawn from the priors (prior bound, sampling) */
    g_node *given;             /* sampling: the label to condition on, one-hot, or zeros to draw it */
    g_node *value[VAE_MAX_LATENTS];
    g_node *qa[VAE_MAX_LATENTS], *qb[VAE_MAX_LATENTS]; /* the encoder's arguments */
    logprob qt[VAE_MAX_LATENTS], pt[VAE_MAX_LATENTS];  /* discrete: log-probability tables */
    g_node *pa[VAE_MAX_LATENTS], *pb[VAE_MAX_LATENTS]; /* normal: the prior's arguments (NULL: standard) */
    g_node *lq[VAE_MAX_LATENTS], *lp[VAE_MAX_LATENTS]; /* log q, log p at the value: [rows, 1] */
    g_node *u[VAE_MAX_LATENTS], *b[VAE_MAX_LATENTS], *bt[VAE_MAX_LATENTS]; /* antithetic: per pair [R/2, n] */
    g_node *parity;            /* antithetic: row r % 2, [R, 1] (0 on b's rows, 1 on b~'s) */
} pass;

static int R_of(const pass *P) { return P->B * P->J * P->S; }

static int inferred_label(const vae_latent *l) { return l->label && l->encoder; }

/* ---------------------------------------------------------------- the pass's set-up */

/* The data block (include/vae/driver.h): x, then y_kept and y_true when there is a label. */
static g_node *label_block(pass *P, int which) {
    const vae_model *m = P->m;
    int K = 0;
    for (int i = 0; i < m->nlatents; i++)
        if (m->latents[i].label) K = m->latents[i].states;
    g_node *y = g_new(P->g, G_DATA, P->B, K);
    y->data_offset = (long)P->B * m->data_dim + (long)which * P->B * K;
    y->label = which ? "y_true" : "y_kept";
    return detached(y);
}

/* y_kept, made on first use (a graph that draws labels reads no data block of labels). */
static g_node *kept_labels(pass *P) {
    if (!P->y_kept) {
        P->y_kept = label_block(P, 0);
        P->kept = detached(g_rowsum(P->g, P->y_kept));
    }
    return P->y_kept;
}

/* Roles set, the states' strides follow: J is the product of the enumerated latents' joint states. */
static void pass_open(pass *P, lowering *L, int B, int S) {
    const vae_model *m = L->g->model;
    P->L = L;
    P->g = L->g;
    P->m = m;
    P->B = B;
    P->S = S;
    P->J = 1;
    for (int i = 0; i < m->nlatents; i++)
        if (P->role[i] == ROLE_ENUMERATED) P->J *= (int)m->latents[i].joint_states;
    g_graph *g = P->g;
    P->x = g_new(g, G_DATA, B, m->data_dim);
    P->x->label = m->data->name;
    long stride = 1;
    for (int i = 0; i < m->nlatents; i++)
        if (P->role[i] == ROLE_ENUMERATED) {
            P->value[i] = latent_states(P->g, &P->m->latents[i], P->B * P->J, stride);
            stride *= (long)m->latents[i].joint_states;
        } else if (P->role[i] == ROLE_OBSERVED)
            P->value[i] = kept_labels(P);
}

/* Runs a network with the data and every latent valued so far in scope. */
static int run_network(pass *P, const ast_network *n, const vae_dist *d, g_node **a, g_node **b) {
    lowering *L = P->L;
    L->nenv = 0;
    env_bind(L, P->m->data->name, P->x);
    for (int i = 0; i < P->m->nlatents; i++)
        if (P->value[i]) env_bind(L, P->m->latents[i].name, P->value[i]);
    lower_network(L, n, d, a, b);
    return L->failed ? -1 : 0;
}

/* ---------------------------------------------------------------- drawing values */

static g_node *normal_draw(pass *P, int i, g_node *mean, g_node *spread, int is_scale) {
    g_graph *g = P->g;
    const vae_latent *l = &P->m->latents[i];
    g_node *eps = g_new(g, G_NOISE, R_of(P), l->nvars);
    eps->stream = i;
    eps->group = P->J * P->S;
    eps->label = vae_pool_printf(g->pool, "eps %s", l->name);
    if (!mean) return eps;
    const vx_expr *sd = is_scale ? IN(1) : U(VX_EXP, BIN(VX_MUL, C(0.5), IN(1)));
    g_node *z = g_map(g, BIN(VX_ADD, IN(0), BIN(VX_MUL, sd, IN(2))), 3, (g_node *[]){mean, spread, eps}, R_of(P), l->nvars);
    z->label = l->name;
    return z;
}

static g_node *discrete_draw(pass *P, int i, logprob t) {
    g_graph *g = P->g;
    const vae_latent *l = &P->m->latents[i];
    g_node *z = g_new(g, G_SAMPLE, R_of(P), l->width);
    z->nvars = l->nvars;
    z->states = l->kind == LATENT_CATEGORICAL ? l->states : 2;
    z->bernoulli = l->kind == LATENT_BERNOULLI;
    z->stream = i;
    z->group = P->J * P->S;
    z->label = l->name;
    g_node *logits = t.table;
    if (!logits && l->kind == LATENT_BERNOULLI && t.constant != 0) logits = constant(g, t.constant, 1, l->width);
    if (logits) z->in[z->nin++] = logits;
    return detached(z);
}

/* Gumbel-softmax (binary concrete for a Bernoulli latent) at the latent's rows, as build_gumbel
 * (estimators.c) does for version 0. */
static g_node *relaxed_draw(pass *P, int i) {
    g_graph *g = P->g;
    const vae_latent *l = &P->m->latents[i];
    const vae_latent_estimator *e = &l->est;
    int binary = l->kind == LATENT_BERNOULLI;
    g_node *noise = g_new(g, G_NOISE, R_of(P), l->width);
    noise->noise = binary ? NOISE_LOGISTIC : NOISE_GUMBEL;
    noise->stream = i;
    noise->group = P->J * P->S;
    noise->label = vae_pool_printf(g->pool, "%s %s", binary ? "logistic" : "gumbel", l->name);
    double T = e->temperature > 0 ? e->temperature : 1.0;
    if (binary) {
        g_node *h, *y;
        binary_concrete(g, P->qt[i].table, noise, T, e->hard, &h, P->hard_values ? NULL : &y);
        h->label = l->name;
        return P->hard_values ? h : y;
    }
    g_node *a = g_map2(g, BIN(VX_DIV, BIN(VX_ADD, IN(0), IN(1)), C(T)), P->qt[i].table, noise);
    g_node *mx = rowmax(g, a, l->nvars);
    g_node *h = detached(g_map2(g, vx_select(g, BIN(VX_SUB, IN(1), IN(0)), C(0), C(1)), a, mx));
    h->label = l->name;
    if (P->hard_values) return h;
    g_node *ex = g_map2(g, U(VX_EXP, BIN(VX_SUB, IN(0), IN(1))), a, mx);
    g_node *y = g_map2(g, BIN(VX_DIV, IN(0), IN(1)), ex, g_colgroupsum(g, ex, l->nvars));
    y->label = vae_pool_printf(g->pool, "relaxed %s", l->name);
    if (!e->hard) return y;
    return g_map(g, BIN(VX_ADD, IN(0), BIN(VX_SUB, IN(1), IN(2))), 3, (g_node *[]){h, y, detached(g_map1(g, IN(0), y))},
                 R_of(P), l->width);
}

/* arm and disarm (estimators.c build_antithetic has the formulas): one uniform u per pair of sample
 * rows, b = 1[u < s(phi)] on the even row, b~ = 1[1 - u < s(phi)] on the odd one. The checker keeps
 * phi the same on both rows (the encoder reads no sampled latent) and the samples even. */
static g_node *antithetic_draw(pass *P, int i) {
    g_graph *g = P->g;
    const vae_latent *l = &P->m->latents[i];
    int half = R_of(P) / 2;
    if (!P->parity) P->parity = antithetic_parity(g, R_of(P));
    g_node *phi = P->qt[i].table, *u = g_new(g, G_NOISE, half, l->nvars);
    u->noise = NOISE_UNIFORM;
    u->stream = i;
    u->group = P->J * P->S / 2;
    u->label = vae_pool_printf(g->pool, "u %s", l->name);
    P->u[i] = u;
    P->b[i] = detached(g_map(g, U(VX_STEP, BIN(VX_SUB, U(VX_SIGMOID, IN(0)), IN(1))), 2, (g_node *[]){phi, u}, half, l->nvars));
    P->bt[i] = detached(g_map(g, U(VX_STEP, BIN(VX_SUB, U(VX_SIGMOID, IN(0)), BIN(VX_SUB, C(1), IN(1)))), 2,
                              (g_node *[]){phi, u}, half, l->nvars));
    g_node *z = detached(g_map(g, BIN(VX_ADD, IN(0), BIN(VX_MUL, IN(2), BIN(VX_SUB, IN(1), IN(0)))), 3,
                               (g_node *[]){P->b[i], P->bt[i], P->parity}, R_of(P), l->nvars));
    z->label = l->name;
    return z;
}

/* ---------------------------------------------------------------- the posterior and the prior of one latent */

/* Runs the latent's encoder and gives it its value by its role, with log q at that value. */
static int posterior_latent(pass *P, int i) {
    g_graph *g = P->g;
    const vae_latent *l = &P->m->latents[i];
    if (P->role[i] == ROLE_OBSERVED) return 0;
    if (run_network(P, l->encoder, &l->posterior, &P->qa[i], &P->qb[i])) return -1;
    if (l->kind == LATENT_NORMAL) {
        P->value[i] = normal_draw(P, i, P->qa[i], P->qb[i], l->posterior.b_is_scale);
        if (P->role[i] == ROLE_SCORE) P->value[i] = detached(P->value[i]);
        P->lq[i] = normal_logq(g, l, P->qa[i], P->qb[i], P->value[i]);
        return 0;
    }
    P->qt[i] = discrete_logprob(g, l, P->qa[i], l->posterior.a_is_probs, 0);
    if (P->role[i] == ROLE_SCORE) P->value[i] = discrete_draw(P, i, P->qt[i]);
    else if (P->role[i] == ROLE_RELAXED) P->value[i] = relaxed_draw(P, i);
    else if (P->role[i] == ROLE_ANTITHETIC) P->value[i] = antithetic_draw(P, i);
    /* enumerated: the value is the states node made by pass_open */
    P->lq[i] = discrete_logprob_at(g, l, P->qt[i], P->value[i]);
    return 0;
}

/* The prior's arguments given the values of its parents (a fixed prior: its table, or standard normal). */
static int prior_args(pass *P, int i) {
    const vae_latent *l = &P->m->latents[i];
    g_node *a = NULL, *b = NULL;
    if (l->prior_net) {
        if (run_network(P, l->prior_net, &l->prior, &a, &b)) return -1;
    } else if (l->kind != LATENT_NORMAL && l->prior.a) {
        P->L->nenv = 0;
        a = lower_node(P->L, l->prior.a);
        if (P->L->failed) return -1;
    }
    if (l->kind == LATENT_NORMAL) {
        P->pa[i] = a;
        P->pb[i] = b;
    } else
        P->pt[i] = discrete_logprob(P->g, l, a, l->prior.a_is_probs, l->prior.fixed_p);
    return 0;
}

/* log p(value | parents): [rows, 1]. */
static g_node *prior_density(pass *P, int i) {
    const vae_latent *l = &P->m->latents[i];
    if (l->kind != LATENT_NORMAL) return discrete_logprob_at(P->g, l, P->pt[i], P->value[i]);
    if (!P->pa[i]) return normal_logp(P->g, P->value[i]);
    return normal_logpdf(P->g, P->value[i], P->pa[i], P->pb[i], l->prior.b_is_scale);
}

/* KL(q || p) of a normal latent given its parents, in closed form: [rows, 1]. */
static g_node *normal_kl(pass *P, int i) {
    g_graph *g = P->g;
    const vae_latent *l = &P->m->latents[i];
    int qs = l->posterior.b_is_scale, ps = l->prior.b_is_scale;
    const vx_expr *v1 = qs ? BIN(VX_MUL, IN(1), IN(1)) : U(VX_EXP, IN(1));
    const vx_expr *lv1 = qs ? BIN(VX_MUL, C(2), U(VX_LOG, IN(1))) : IN(1);
    if (!P->pa[i]) { /* against N(0, 1): 0.5 (m^2 + var - 1 - log var), as version 0 writes it */
        const vx_expr *kl = BIN(VX_MUL, C(0.5), BIN(VX_SUB, BIN(VX_SUB, BIN(VX_ADD, BIN(VX_MUL, IN(0), IN(0)), v1), C(1)), lv1));
        g_node *q[2] = {P->qa[i], P->qb[i]};
        return g_rowsum(g, g_map(g, kl, 2, q, q[0]->rows > q[1]->rows ? q[0]->rows : q[1]->rows, l->nvars));
    }
    /* 0.5 (log v2 - log v1 + (v1 + (m1 - m2)^2) / v2 - 1) */
    const vx_expr *v2 = ps ? BIN(VX_MUL, IN(3), IN(3)) : U(VX_EXP, IN(3));
    const vx_expr *lv2 = ps ? BIN(VX_MUL, C(2), U(VX_LOG, IN(3))) : IN(3);
    const vx_expr *d = BIN(VX_SUB, IN(0), IN(2));
    const vx_expr *kl = BIN(VX_MUL, C(0.5), BIN(VX_SUB, BIN(VX_ADD, BIN(VX_SUB, lv2, lv1), BIN(VX_DIV, BIN(VX_ADD, v1, BIN(VX_MUL, d, d)), v2)), C(1)));
    g_node *in[4] = {P->qa[i], P->qb[i], P->pa[i], P->pb[i]};
    int rows = 1;
    for (int k = 0; k < 4; k++) rows = in[k]->rows > rows ? in[k]->rows : rows;
    return g_rowsum(g, g_map(g, kl, 4, in, rows, l->nvars));
}

static g_node *closed_kl(pass *P, int i) {
    const vae_latent *l = &P->m->latents[i];
    g_node *kl;
    if (l->kind == LATENT_NORMAL)
        kl = normal_kl(P, i);
    else {
        int rows = P->qt[i].table->rows;
        if (P->pt[i].table && P->pt[i].table->rows > rows) rows = P->pt[i].table->rows;
        kl = discrete_kl(P->g, l, P->qt[i], P->pt[i], rows);
    }
    kl->label = vae_pool_printf(P->g->pool, "KL %s", l->name);
    return kl;
}

/* Draws a latent from its prior (the prior bound, sampling, evaluation without encoder). */
static int prior_latent(pass *P, int i) {
    const vae_latent *l = &P->m->latents[i];
    if (P->role[i] == ROLE_OBSERVED) return 0;
    if (prior_args(P, i)) return -1;
    if (l->kind == LATENT_NORMAL)
        P->value[i] = normal_draw(P, i, P->pa[i], P->pb[i], l->prior.b_is_scale);
    else if (P->role[i] != ROLE_ENUMERATED)
        P->value[i] = discrete_draw(P, i, P->pt[i]);
    if (l->label && P->given) { /* given + (1 - sum given) drawn */
        g_graph *g = P->g;
        P->value[i] = detached(g_map(g, BIN(VX_ADD, IN(0), BIN(VX_MUL, BIN(VX_SUB, C(1), IN(1)), IN(2))), 3,
                                     (g_node *[]){P->given, detached(g_rowsum(g, P->given)), P->value[i]}, P->B, l->width));
    }
    P->lp[i] = prior_density(P, i);
    return 0;
}

/* Every latent valued in posterior order, then every prior given those values. */
static int posterior_pass(pass *P) {
    const vae_model *m = P->m;
    for (int k = 0; k < m->nlatents; k++)
        if (posterior_latent(P, m->posterior_order[k])) return -1;
    for (int i = 0; i < m->nlatents; i++) {
        if (P->role[i] == ROLE_OBSERVED) continue;
        if (prior_args(P, i)) return -1;
        P->lp[i] = prior_density(P, i);
    }
    return 0;
}

static int prior_pass(pass *P) {
    for (int k = 0; k < P->m->nlatents; k++)
        if (prior_latent(P, P->m->prior_order[k])) return -1;
    return 0;
}

/* log p(x | .) per row, at the rows the decoder ran on. */
static g_node *decode(pass *P) {
    g_node *a, *b;
    if (run_network(P, P->m->decoder, &P->m->likelihood, &a, &b)) return NULL;
    int rows = a->rows > P->B ? a->rows : P->B;
    if (b && b->rows > rows) rows = b->rows;
    return loglik_rows(P->g, P->x, &P->m->likelihood, a, b, rows);
}

/* ---------------------------------------------------------------- the ELBO */

/* The enumerated latents' weights Q(b,j) = prod_i W_i and their posterior terms
 * e(b,j) = -sum_i log q, [B*J, 1].  A kept label weighs 1 at its state and 0 elsewhere,
 * and has no log q term.  (Their log p terms are per row: latent_terms.) */
static void enumerated_terms(pass *P, g_node **Q, g_node **e) {
    g_graph *g = P->g;
    *Q = *e = NULL;
    for (int i = 0; i < P->m->nlatents; i++) {
        if (P->role[i] != ROLE_ENUMERATED) continue;
        g_node *W, *t;
        if (inferred_label(&P->m->latents[i])) {
            g_node *at_label = g_rowsum(g, g_map2(g, BIN(VX_MUL, IN(0), IN(1)), kept_labels(P), P->value[i]));
            const vx_expr *hidden = BIN(VX_SUB, C(1), IN(0));
            W = g_map(g, BIN(VX_ADD, BIN(VX_MUL, IN(0), IN(1)), BIN(VX_MUL, hidden, U(VX_EXP, IN(2)))), 3,
                      (g_node *[]){P->kept, at_label, P->lq[i]}, P->B * P->J, 1);
            t = g_map2(g, U(VX_NEG, BIN(VX_MUL, hidden, IN(1))), P->kept, P->lq[i]);
        } else {
            W = g_map1(g, U(VX_EXP, IN(0)), P->lq[i]);
            t = g_map1(g, U(VX_NEG, IN(0)), P->lq[i]);
        }
        *Q = *Q ? g_map2(g, BIN(VX_MUL, IN(0), IN(1)), *Q, W) : W;
        *e = sum_nodes(g, *e, t);
    }
    if (*Q) (*Q)->label = "q(states)";
}

/* Whether latent d is drawn after latent i in the posterior (reads it, or reads one that does). */
static int q_descendant(const vae_model *m, int d, int i) {
    for (int k = 0; k < m->latents[d].nq_parents; k++) {
        int p = m->latents[d].q_parents[k];
        if (p == i || q_descendant(m, p, i)) return 1;
    }
    return 0;
}

/* A sampled latent's KL can be taken in closed form given its parents' values unless its
 * prior reads a latent drawn after it: then the expectation over it is not separable. */
static int closed_form(const vae_model *m, int i) {
    for (int k = 0; k < m->latents[i].np_parents; k++)
        if (q_descendant(m, m->latents[i].p_parents[k], i)) return 0;
    return 1;
}

/* The latents' terms of the integrand, summed, up to [B*J*S, 1] (NULL: none): log p of the
 * enumerated latents; -KL of the sampled ones in closed form, or their log p - log q. */
static g_node *latent_terms(pass *P) {
    g_graph *g = P->g;
    g_node *sum = NULL;
    for (int i = 0; i < P->m->nlatents; i++) {
        if (P->role[i] == ROLE_OBSERVED) continue;
        g_node *t;
        if (P->role[i] == ROLE_ENUMERATED) t = P->lp[i];
        else if (closed_form(P->m, i)) t = g_map1(g, U(VX_NEG, IN(0)), closed_kl(P, i));
        else t = g_map2(g, BIN(VX_SUB, IN(0), IN(1)), P->lp[i], P->lq[i]);
        sum = sum_nodes(g, sum, t);
    }
    return sum;
}

/* ll + w * terms at every row (w: the KL weight node, or NULL for 1). */
static g_node *integrand(pass *P, g_node *ll, g_node *terms, g_node *w) {
    g_graph *g = P->g;
    if (!terms) return g_map(g, IN(0), 1, &ll, R_of(P), 1);
    if (!w) return g_map(g, BIN(VX_ADD, IN(0), IN(1)), 2, (g_node *[]){ll, terms}, R_of(P), 1);
    return g_map(g, BIN(VX_ADD, IN(0), BIN(VX_MUL, IN(2), IN(1))), 3, (g_node *[]){ll, terms, w}, R_of(P), 1);
}

/* The score-function terms of the reinforce latents: sg(v - baseline) (log q - sg(log q)),
 * value 0, gradient the estimator's.  *base: log p_eta(x) when a baseline network is used. */
static g_node *score_terms(pass *P, g_node *v, g_node **base) {
    g_graph *g = P->g;
    const vae_model *m = P->m;
    g_node *acc = NULL, *vd = detached(g_map1(g, IN(0), v));
    for (int i = 0; i < m->nlatents; i++) {
        if (P->role[i] != ROLE_SCORE) continue;
        const vae_latent_estimator *e = &m->latents[i].est;
        g_node *signal = vd;
        if (e->baseline_loo) /* the mean of the other samples of the same example and state */
            signal = detached(g_map2(g, BIN(VX_SUB, IN(0), BIN(VX_DIV, BIN(VX_SUB, IN(1), IN(0)), C(P->S - 1))), vd,
                                     g_groupsum(g, vd, P->B * P->J)));
        else if (e->baseline) {
            if (!*base) {
                g_node *ba, *bb;
                P->L->nenv = 0;
                env_bind(P->L, m->data->name, P->x);
                lower_network(P->L, e->baseline, &m->baseline_dist, &ba, &bb);
                if (P->L->failed) return NULL;
                *base = loglik_rows(g, P->x, &m->baseline_dist, ba, bb, P->B);
                (*base)->label = "log p_eta(x)";
            }
            signal = detached(g_map2(g, BIN(VX_SUB, IN(0), IN(1)), vd, *base));
        }
        g_node *lq = P->lq[i], *lq_stop = detached(g_map1(g, IN(0), lq));
        acc = sum_nodes(g, acc, g_map(g, BIN(VX_MUL, IN(0), BIN(VX_SUB, IN(1), IN(2))), 3,
                                      (g_node *[]){signal, lq, lq_stop}, R_of(P), 1));
    }
    return acc;
}

/* The arm and disarm latents' terms, per row, value 0: with d = v(b) - v(b~) of each pair, the
 * coefficient g (arm: -d (u - 1/2); disarm: d/2 (b - b~) s(|phi|)) in sg(g) phi - sg(same) on both
 * rows of the pair, so that the mean over the S rows is the mean over the S/2 pairs. */
static g_node *antithetic_terms(pass *P, g_node *v) {
    g_graph *g = P->g;
    int half = R_of(P) / 2;
    g_node *acc = NULL, *d = NULL;
    for (int i = 0; i < P->m->nlatents; i++) {
        if (P->role[i] != ROLE_ANTITHETIC) continue;
        if (!d)
            d = detached(g_groupsum(g, g_map2(g, BIN(VX_MUL, IN(0), BIN(VX_SUB, C(1), BIN(VX_MUL, C(2), IN(1)))), v, P->parity),
                                    half));
        g_node *phi = P->qt[i].table, *coef;
        if (P->m->latents[i].est.kind == EST_DISARM) {
            const vx_expr *abs_phi = BIN(VX_MAX, IN(1), U(VX_NEG, IN(1)));
            coef = g_map(g, BIN(VX_MUL, BIN(VX_MUL, BIN(VX_MUL, C(0.5), IN(0)), BIN(VX_SUB, IN(2), IN(3))), U(VX_SIGMOID, abs_phi)),
                         4, (g_node *[]){d, phi, P->b[i], P->bt[i]}, half, phi->cols);
        } else
            coef = g_map2(g, BIN(VX_MUL, U(VX_NEG, IN(0)), BIN(VX_SUB, IN(1), C(0.5))), d, P->u[i]);
        g_node *t = g_rowsum(g, g_map(g, BIN(VX_MUL, IN(0), IN(1)), 2, (g_node *[]){detached(coef), phi}, half, phi->cols));
        acc = sum_nodes(g, acc, t);
    }
    if (!acc) return NULL;
    return g_map(g, BIN(VX_SUB, IN(0), IN(1)), 2, (g_node *[]){acc, detached(g_map1(g, IN(0), acc))}, R_of(P), 1);
}

/* sum_j Q(b,j) [ (1/S) sum_s rows(b,j,s) + w e(b,j) ]: [B, 1]. */
static g_node *expectation(pass *P, g_node *rows, g_node *Q, g_node *e, g_node *w) {
    g_graph *g = P->g;
    int BJ = P->B * P->J;
    g_node *mean = g_map1(g, BIN(VX_MUL, C(1.0 / P->S), IN(0)), g_groupsum(g, rows, BJ));
    if (e) mean = w ? g_map(g, BIN(VX_ADD, IN(0), BIN(VX_MUL, IN(2), IN(1))), 3, (g_node *[]){mean, e, w}, BJ, 1)
                    : g_map2(g, BIN(VX_ADD, IN(0), IN(1)), mean, e);
    if (!Q) return mean;
    return g_groupsum(g, g_map2(g, BIN(VX_MUL, IN(0), IN(1)), Q, mean), P->B);
}

/* log p(x | .) per example and sample, the states summed under Q: [B*S, 1]. */
static g_node *recon_per_sample(pass *P, g_node *ll, g_node *Q) {
    g_graph *g = P->g;
    if (!Q) return g_map(g, IN(0), 1, &ll, R_of(P), 1);
    g_node *weighted = g_map(g, BIN(VX_MUL, IN(0), IN(1)), 2, (g_node *[]){Q, ll}, R_of(P), 1);
    g_node *by_sample = g_transpose(g, weighted, P->J, P->S, P->B * P->S, P->J); /* [b][j][s] -> [b][s][j] */
    return g_rowsum(g, by_sample);
}

/* A pass's terms, made once for the reported value and the surrogate. */
typedef struct {
    g_node *ll, *Q, *e, *terms;
} elbo_terms;

static elbo_terms terms_of(pass *P, g_node *ll) {
    elbo_terms t = {.ll = ll};
    enumerated_terms(P, &t.Q, &t.e);
    t.terms = latent_terms(P);
    return t;
}

/* The reported ELBO and its terms from one pass. */
static void report_elbo(pass *P, elbo_terms t) {
    g_graph *g = P->g;
    g_node *ll = t.ll, *Q = t.Q, *e = t.e;
    g_node *value = expectation(P, integrand(P, ll, t.terms, NULL), Q, e, NULL);
    value->label = "ELBO";
    g->out.value_rows = value;
    g->out.recon_rows = recon_per_sample(P, ll, Q);
    g_node *recon = g_map1(g, BIN(VX_MUL, C(1.0 / P->S), IN(0)), g_groupsum(g, g->out.recon_rows, P->B));
    g->out.kl_rows = g_map2(g, BIN(VX_SUB, IN(0), IN(1)), recon, value);
}

/* The label whose encoder is the classifier q(y | x) (a label with an encoder reading only
 * the data and other labels), or -1. */
static int classifier(const pass *P) {
    for (int i = 0; i < P->m->nlatents; i++)
        if (inferred_label(&P->m->latents[i]) && P->qt[i].table && P->qt[i].table->rows == P->B) return i;
    return -1;
}

/* classify = A: A log q(y | x) for every example whose label is kept, [B, 1]. */
static g_node *classify_term(pass *P) {
    int i = classifier(P);
    if (i < 0 || P->m->train.classify <= 0) return NULL;
    g_graph *g = P->g;
    g_node *at = g_rowsum(g, g_map2(g, BIN(VX_MUL, IN(0), IN(1)), kept_labels(P), P->qt[i].table));
    return g_map1(g, BIN(VX_MUL, C(P->m->train.classify), IN(0)), at);
}

/* correct_rows: 1 where q(y | x)'s most probable class is the label (y_true), else 0. */
static void classification(pass *P) {
    int i = classifier(P);
    if (i < 0) return;
    g_graph *g = P->g;
    g_node *y_true = label_block(P, 1), *table = P->qt[i].table;
    g_node *at = g_rowsum(g, g_map2(g, BIN(VX_MUL, IN(0), IN(1)), y_true, table));
    g_node *best = rowmax(g, table, 1);
    g->out.correct_rows = detached(g_map2(g, vx_select(g, BIN(VX_SUB, IN(1), IN(0)), C(0), C(1)), at, best));
    g->out.correct_rows->label = "classified right";
}

/* The training surrogate of elbo(...): its value is not the ELBO's (the classify term, the
 * baseline's likelihood), its gradient is the estimators'. */
static int surrogate(pass *P, elbo_terms t) {
    g_graph *g = P->g;
    g_node *w = kl_weight(g), *Q = t.Q, *e = t.e, *base = NULL;
    g_node *rows = integrand(P, t.ll, t.terms, w);
    g_node *scores = score_terms(P, rows, &base), *pairs = antithetic_terms(P, rows);
    if (P->L->failed) return -1;
    if (scores) rows = g_map2(g, BIN(VX_ADD, IN(0), IN(1)), rows, scores);
    if (pairs) rows = g_map2(g, BIN(VX_ADD, IN(0), IN(1)), rows, pairs);
    g_node *sur = expectation(P, rows, Q, e, w), *cls = classify_term(P);
    if (base) /* trains eta by maximum likelihood; adds nothing to the value */
        sur = g_map(g, BIN(VX_ADD, IN(0), BIN(VX_SUB, IN(1), IN(2))), 3, (g_node *[]){sur, base, detached(g_map1(g, IN(0), base))},
                    P->B, 1);
    if (cls) sur = g_map2(g, BIN(VX_ADD, IN(0), IN(1)), sur, cls);
    set_objective(g, sur, 1.0);
    return 0;
}

/* ---------------------------------------------------------------- roles */

static latent_role observed_or(const vae_latent *l, latent_role r) {
    return l->label && !l->encoder ? ROLE_OBSERVED : r;
}

/* Training with elbo(...): each latent as its estimator says. */
static void roles_for_training(const vae_model *m, latent_role *role) {
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        latent_role r = ROLE_SCORE;
        if (l->est.kind == EST_ANALYTIC) r = ROLE_ENUMERATED;
        else if (l->est.kind == EST_REPARAM) r = ROLE_PATH;
        else if (l->est.kind == EST_GUMBEL) r = ROLE_RELAXED;
        else if (l->est.kind == EST_ARM || l->est.kind == EST_DISARM) r = ROLE_ANTITHETIC;
        role[i] = observed_or(l, r);
    }
}

/* Evaluation: the analytic latents of elbo(...) still summed out, every other one sampled. */
static void roles_for_evaluation(const vae_model *m, latent_role *role) {
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        int summed = m->est.kind == EST_ELBO && l->est.kind == EST_ANALYTIC;
        role[i] = observed_or(l, summed ? ROLE_ENUMERATED : ROLE_SCORE);
    }
}

static void roles_all(const vae_model *m, latent_role *role, latent_role r) {
    for (int i = 0; i < m->nlatents; i++) role[i] = observed_or(&m->latents[i], r);
}

static int relaxed_soft(const vae_model *m) {
    for (int i = 0; i < m->nlatents; i++)
        if (m->est.kind == EST_ELBO && m->latents[i].est.kind == EST_GUMBEL && !m->latents[i].est.hard) return 1;
    return 0;
}

/* ---------------------------------------------------------------- passes */

static void pass_init(pass *P, lowering *L, const latent_role *role, int B, int S, int hard_values) {
    memset(P, 0, sizeof *P);
    memcpy(P->role, role, sizeof P->role);
    P->hard_values = hard_values;
    pass_open(P, L, B, S);
}

/* A posterior pass and its decoder: the terms of the ELBO. */
static int elbo_pass(pass *P, lowering *L, const latent_role *role, int B, int S, int hard_values, elbo_terms *t) {
    pass_init(P, L, role, B, S, hard_values);
    if (posterior_pass(P)) return -1;
    g_node *ll = decode(P);
    if (!ll) return -1;
    *t = terms_of(P, ll);
    return 0;
}

/* log w per row: log p(x | .) + w sum_i (log p - log q) over the sampled latents + w sum log p
 * of the enumerated ones (their states weighed by the prior: an importance sum over them). */
static g_node *log_weights(pass *P, g_node *ll, g_node *w, g_node **logq) {
    g_graph *g = P->g;
    g_node *ratio = NULL;
    *logq = NULL;
    for (int i = 0; i < P->m->nlatents; i++) {
        if (P->role[i] == ROLE_OBSERVED) continue;
        if (P->role[i] == ROLE_ENUMERATED || P->from_prior) {
            ratio = sum_nodes(g, ratio, P->lp[i]);
            continue;
        }
        ratio = sum_nodes(g, ratio, g_map2(g, BIN(VX_SUB, IN(0), IN(1)), P->lp[i], P->lq[i]));
        *logq = sum_nodes(g, *logq, P->lq[i]);
    }
    if (P->from_prior || !ratio) return g_map(g, IN(0), 1, &ll, R_of(P), 1); /* p(x | z), z ~ p */
    g_node *lw = w ? g_map(g, BIN(VX_ADD, IN(0), BIN(VX_MUL, IN(2), IN(1))), 3, (g_node *[]){ll, ratio, w}, R_of(P), 1)
                   : g_map(g, BIN(VX_ADD, IN(0), IN(1)), 2, (g_node *[]){ll, ratio}, R_of(P), 1);
    lw->label = "log w";
    return lw;
}

/* exact log p(x) = log sum_j exp(log p(x | j) + sum_i log p(j_i | .)), every latent enumerated. */
static g_node *exact_logpx(lowering *L, int B) {
    const vae_model *m = L->g->model;
    latent_role role[VAE_MAX_LATENTS];
    roles_all(m, role, ROLE_ENUMERATED);
    pass P;
    pass_init(&P, L, role, B, 1, 0);
    for (int i = 0; i < m->nlatents; i++)
        if (role[i] != ROLE_OBSERVED) {
            if (prior_args(&P, i)) return NULL;
            P.lp[i] = prior_density(&P, i);
        }
    g_node *ll = decode(&P), *lq;
    if (!ll) return NULL;
    g_node *lp = group_logsumexp(L->g, log_weights(&P, ll, NULL, &lq), B);
    lp->label = "log p(x)";
    return lp;
}

/* The latents drawn from their priors, K per example: log p(x | z_k) per row [B*K, 1]. */
static g_node *prior_rows(lowering *L, int B, int K, int labels_drawn) {
    const vae_model *m = L->g->model;
    latent_role role[VAE_MAX_LATENTS];
    roles_all(m, role, ROLE_SCORE);
    for (int i = 0; labels_drawn && i < m->nlatents; i++) role[i] = ROLE_SCORE;
    pass P;
    pass_init(&P, L, role, B, K, 0);
    P.from_prior = 1;
    if (prior_pass(&P)) return NULL;
    g_node *ll = decode(&P), *lq;
    return ll ? log_weights(&P, ll, NULL, &lq) : NULL;
}

/* log (1/K) sum_k p(x | z_k), z_k ~ p(z): [B, 1]. */
static g_node *prior_bound(lowering *L, int B, int K) {
    g_graph *g = L->g;
    g_node *ll = prior_rows(L, B, K, 0);
    if (!ll) return NULL;
    g->out.recon_rows = ll;
    return g_map1(g, BIN(VX_SUB, IN(0), C(log((double)K))), group_logsumexp(g, ll, B));
}

/* ---------------------------------------------------------------- the graphs */

/* elbo(...): the surrogate from one pass; the reported ELBO from the same pass, or, where a
 * gumbel latent feeds its relaxed sample, from a second pass at the discrete samples. */
static int build_elbo(lowering *L, int B, int S) {
    const vae_model *m = L->g->model;
    latent_role role[VAE_MAX_LATENTS];
    roles_for_training(m, role);
    pass P, H;
    elbo_terms t, th;
    if (elbo_pass(&P, L, role, B, S, 0, &t) || surrogate(&P, t)) return -1;
    if (!relaxed_soft(m)) {
        report_elbo(&P, t);
        return 0;
    }
    if (elbo_pass(&H, L, role, B, S, 1, &th)) return -1;
    report_elbo(&H, th);
    return 0;
}

/* iwae(samples: K) and vimco(samples: K) over every latent, sampled from q in posterior order. */
static int build_bound(lowering *L, int B, int K, int vimco) {
    g_graph *g = L->g;
    latent_role role[VAE_MAX_LATENTS];
    roles_all(g->model, role, vimco ? ROLE_SCORE : ROLE_PATH);
    pass P;
    pass_init(&P, L, role, B, K, 0);
    if (posterior_pass(&P)) return -1;
    g_node *ll = decode(&P), *logq;
    if (!ll) return -1;
    g_node *logw = log_weights(&P, ll, kl_weight(g), &logq);
    g_node *bound = g_map1(g, BIN(VX_SUB, IN(0), C(log((double)K))), group_logsumexp(g, logw, B));
    g->out.recon_rows = g_map(g, IN(0), 1, &ll, R_of(&P), 1);
    g->out.value_rows = bound;
    g->value_name = "IWAE bound";
    set_objective(g, vimco ? g_map2(g, BIN(VX_ADD, IN(0), IN(1)), bound, vimco_score(g, logw, logq, B, K)) : bound, 1.0);
    return 0;
}

static int all_enumerable(const vae_model *m) {
    double J = 1;
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        if (l->label && !l->encoder) continue;
        if (l->kind == LATENT_NORMAL) return 0;
        J *= l->joint_states;
    }
    return J <= 65536;
}

/* The evaluation: the ELBO with the encoders (and the exact log p(x) where every latent can
 * be enumerated, and the classifier's hits); without encoders, exact log p(x) or the prior bound. */
static int build_eval(lowering *L, int B) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    if (m->est.trains_encoder) {
        latent_role role[VAE_MAX_LATENTS];
        roles_for_evaluation(m, role);
        pass P;
        elbo_terms t;
        if (elbo_pass(&P, L, role, B, 1, 0, &t)) return -1;
        report_elbo(&P, t);
        classification(&P);
        if (all_enumerable(m) && !(g->out.logpx_rows = exact_logpx(L, B))) return -1;
        return 0;
    }
    g_node *v = all_enumerable(m) ? exact_logpx(L, B) : prior_bound(L, B, m->est.samples);
    if (!v) return -1;
    if (all_enumerable(m)) g->out.logpx_rows = v;
    g->out.value_rows = v;
    g->value_name = all_enumerable(m) ? "log p(x)" : "prior bound";
    g->samples = all_enumerable(m) ? 1 : m->est.samples;
    return 0;
}

/* IWAE's log w, K per example and call: the analytic latents of elbo(...) summed inside the
 * weight (w = sum_j p(j) p(x, z | j) / q(z | x, j), one per sample k), the others drawn from q;
 * without encoders, z ~ p(z) and w = p(x | z). */
static int build_iwae_eval(lowering *L, int B, int K) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    if (!m->est.trains_encoder) {
        g->out.logw_rows = prior_rows(L, B, K, 0);
        return g->out.logw_rows ? 0 : -1;
    }
    latent_role role[VAE_MAX_LATENTS];
    roles_for_evaluation(m, role);
    pass P;
    pass_init(&P, L, role, B, K, 0);
    if (posterior_pass(&P)) return -1;
    g_node *ll = decode(&P), *logq;
    if (!ll) return -1;
    g_node *logw = log_weights(&P, ll, NULL, &logq);
    if (P.J > 1) logw = row_logsumexp(g, g_transpose(g, logw, P.J, K, B * K, P.J)); /* [b][j][k] -> [b][k][j] */
    g->out.logw_rows = logw;
    return 0;
}

/* exact as the estimator: log p(x) is the objective. */
static int build_exact(lowering *L, int B) {
    g_graph *g = L->g;
    g_node *lp = exact_logpx(L, B);
    if (!lp) return -1;
    g->out.logpx_rows = g->out.value_rows = lp;
    g->value_name = "log p(x)";
    set_objective(g, lp, 1.0);
    return 0;
}

static int build_prior(lowering *L, int B, int K) {
    g_node *v = prior_bound(L, B, K);
    if (!v) return -1;
    L->g->out.value_rows = v;
    L->g->value_name = "prior bound";
    set_objective(L->g, v, 1.0);
    return 0;
}

/* sample: every latent and label drawn from its prior in prior order, then x ~ p(x | .)
 * (or, for prior_decode, the decoder's arguments).  A model with a label reads, as its data
 * block, B rows of K floats: the label to condition on, one-hot, or zeros to draw it. */
static int build_sample_structured(lowering *L, int B, int decoder_args_only) {
    const vae_model *m = L->g->model;
    latent_role role[VAE_MAX_LATENTS];
    for (int i = 0; i < m->nlatents; i++) role[i] = ROLE_SCORE;
    pass P;
    pass_init(&P, L, role, B, 1, 0);
    P.from_prior = 1;
    for (int i = 0; i < m->nlatents; i++)
        if (m->latents[i].label) {
            P.given = detached(g_new(L->g, G_DATA, B, m->latents[i].states));
            P.given->label = "label given";
        }
    if (prior_pass(&P)) return -1;
    g_node *a, *b;
    if (run_network(&P, m->decoder, &m->likelihood, &a, &b)) return -1;
    if (decoder_args_only) {
        g_node *parts[2] = {a, b};
        L->g->out.api_out = join_parts(L->g, parts, b ? 2 : 1, B);
        return 0;
    }
    return draw_data(L, a, b, B);
}

/* A discrete latent's posterior mean: its state probabilities (one-hot's expectation), or a
 * Bernoulli's probabilities of 1. */
static g_node *posterior_probabilities(pass *P, int i) {
    g_graph *g = P->g; /* the expression macros' pool */
    const vae_latent *l = &P->m->latents[i];
    logprob t = discrete_logprob(g, l, P->qa[i], l->posterior.a_is_probs, 0);
    g_node *v = g_map1(g, U(l->kind == LATENT_CATEGORICAL ? VX_EXP : VX_SIGMOID, IN(0)), t.table);
    v->label = vae_pool_printf(g->pool, "mean of %s", l->name);
    return v;
}

/* encode (vaec encode, reconstruct, interpolate): every latent's encoder arguments, in the
 * model's order as the version 0 encode graph gives them.  The encoders run in posterior order,
 * each reading the latents it depends on at their posterior means (a normal's mean, a discrete
 * latent's probabilities): no noise, one row per example.  An observed label (no encoder) is
 * read from the data block's y_kept and gives no columns; every other latent needs an encoder. */
static int build_encode_structured(lowering *L, int B) {
    const vae_model *m = L->g->model;
    latent_role role[VAE_MAX_LATENTS];
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        if (!l->encoder && !l->label) return -1;
        role[i] = l->encoder ? ROLE_SCORE : ROLE_OBSERVED;
    }
    pass P;
    pass_init(&P, L, role, B, 1, 0);
    for (int k = 0; k < m->nlatents; k++) {
        int i = m->posterior_order[k];
        const vae_latent *l = &m->latents[i];
        if (role[i] == ROLE_OBSERVED) continue;
        if (run_network(&P, l->encoder, &l->posterior, &P.qa[i], &P.qb[i])) return -1;
        P.value[i] = l->kind == LATENT_NORMAL ? P.qa[i] : posterior_probabilities(&P, i);
    }
    g_node *parts[2 * VAE_MAX_LATENTS];
    int n = 0;
    for (int i = 0; i < m->nlatents; i++) {
        if (role[i] == ROLE_OBSERVED) continue;
        parts[n++] = P.qa[i];
        if (P.qb[i]) parts[n++] = P.qb[i];
    }
    L->g->out.api_out = join_parts(L->g, parts, n, B);
    return 0;
}

/* What cannot be built, as a message at the estimator: 0 when all can. */
static int unsupported(lowering *L) {
    const vae_model *m = L->g->model;
    const char *why = NULL;
    int labels = 0;
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        if (l->label && ++labels > 1) why = "more than one label (the data block holds one)";
        if (inferred_label(l) && !(m->est.kind == EST_ELBO && l->est.kind == EST_ANALYTIC))
            why = vae_pool_printf(L->g->pool, "label '%s' has an encoder, so it is a latent where its label is hidden; "
                                  "sum it out with elbo(%s: analytic, ...)", l->name, l->name);
    }
    if (m->est.kind == EST_IWAE && m->est.dreg) why = "iwae(gradient: dreg) on a structured model";
    if (!why) return 0;
    fprintf(L->err, "%s:%d:%d: error: not built yet for structured models: %s\n", m->est.loc.file, m->est.loc.line,
            m->est.loc.col, why);
    L->failed = 1;
    return -1;
}

int g_build_structured(lowering *L, g_purpose purpose, int batch, int samples) {
    const vae_model *m = L->g->model;
    if (unsupported(L)) return -1;
    switch (purpose) {
    case GRAPH_EVAL: L->g->samples = 1; return build_eval(L, batch);
    case GRAPH_IWAE: return build_iwae_eval(L, batch, samples);
    case GRAPH_SAMPLE: return build_sample_structured(L, batch, 0);
    case GRAPH_PRIOR_DECODE: return build_sample_structured(L, batch, 1);
    case GRAPH_ENCODE: return build_encode_structured(L, batch);
    case GRAPH_DECODE: return -2; /* the version 0 builder serves */
    case GRAPH_TRAIN: break;
    }
    switch (m->est.kind) {
    case EST_ELBO: return build_elbo(L, batch, samples);
    case EST_IWAE: return build_bound(L, batch, samples, 0);
    case EST_VIMCO: return build_bound(L, batch, samples, 1);
    case EST_EXACT: return build_exact(L, batch);
    case EST_PRIOR: return build_prior(L, batch, samples);
    default: break;
    }
    fprintf(L->err, "%s:%d:%d: error: estimator '%s' is not built yet for structured models\n", m->est.loc.file,
            m->est.loc.line, m->est.loc.col, vae_estimator_name(m->est.kind));
    L->failed = 1;
    return -1;
}

/* The joint states a graph of this purpose enumerates (its rows are batch x states x samples). */
long long g_structured_states(const vae_model *m, g_purpose purpose) {
    long long J = 1, all = 1;
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        if (l->label && !l->encoder) continue;
        if (l->kind != LATENT_NORMAL) all *= (long long)l->joint_states;
        if (m->est.kind == EST_ELBO && l->est.kind == EST_ANALYTIC) J *= (long long)l->joint_states;
    }
    if (!all_enumerable(m)) all = 1;
    if (purpose == GRAPH_TRAIN && m->est.kind == EST_EXACT) return all;
    if (purpose == GRAPH_EVAL) return J > all ? J : all;
    if (purpose == GRAPH_TRAIN || purpose == GRAPH_IWAE) return J;
    return 1;
}
