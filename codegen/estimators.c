/* The estimators: each builds, from the lowered networks, the objective whose
 * gradient training follows, and the per-example values the driver reports.
 * ESTIMATORS.md (the design card) has every formula; the comments name them.
 *
 * Two shapes of computation:
 *  - enumeration (analytic, exact, and the evaluation of enumerable models):
 *    the decoder runs once per batch on the J joint states, and log p(x | z_j)
 *    for every example and state is a few matrix products with the J x D
 *    decoder outputs (the likelihoods are separable: x^2 A^T + x B^T + 1 C^T);
 *  - sampling (reparam, reinforce, uniform, prior, and the IWAE evaluation):
 *    samples are a leading dimension, S consecutive rows per example, so the
 *    decoder is one product with B*S rows; where every latent is discrete and
 *    enumerable, the decoder may instead run once on the J joint states, each
 *    sample row taking its state's entry of the enumeration's [B, J] table
 *    (decode_draws: whichever costs less). */
#include "codegen/estimators.h"
#include "vae/compiler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


/* ---------------------------------------------------------------- shared pieces (estimators.h) */

int prepare(lowering *L, prepared *P, int B, int S, int need_encoder) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    memset(P, 0, sizeof *P);
    P->B = B;
    P->S = S;
    P->x = g_new(g, G_DATA, B, m->data_dim);
    P->x->label = m->data->name;
    P->has_encoder = need_encoder;
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        if (l->kind != LATENT_NORMAL) { /* the prior's parameters (a learned prior is a rows-1 table) */
            L->nenv = 0;
            g_node *pa = l->prior.a ? lower_node(L, l->prior.a) : NULL;
            if (L->failed) return -1;
            P->p[i] = discrete_logprob(g, l, pa, l->prior.a_is_probs, l->prior.fixed_p);
        }
        if (!need_encoder) continue;
        L->nenv = 0;
        env_bind(L, m->data->name, P->x);
        g_node *a, *b;
        lower_network(L, l->encoder, &l->posterior, &a, &b);
        if (L->failed) return -1;
        if (l->kind == LATENT_NORMAL) {
            P->mean[i] = a;
            P->spread[i] = b;
            const vx_expr *mu = IN(0), *v = IN(1);
            int scale = l->posterior.b_is_scale;
            const vx_expr *var = scale ? BIN(VX_MUL, v, v) : U(VX_EXP, v);
            const vx_expr *logvar = scale ? BIN(VX_MUL, C(2), U(VX_LOG, v)) : v;
            /* KL(N(m, var) || N(0, 1)) = 0.5 (m^2 + var - 1 - log var) */
            const vx_expr *kl = BIN(VX_MUL, C(0.5), BIN(VX_SUB, BIN(VX_SUB, BIN(VX_ADD, BIN(VX_MUL, mu, mu), var), C(1)), logvar));
            g_node *elem = g_map(g, kl, 2, (g_node *[]){a, b}, B, l->nvars);
            g_node *k = g_rowsum(g, elem);
            k->label = vae_pool_printf(g->pool, "KL %s", l->name);
            P->kl = sum_nodes(g, P->kl, k);
        } else {
            a = per_example(g, a, B); /* an encoder that may ignore x */
            P->q[i] = discrete_logprob(g, l, a, l->posterior.a_is_probs, 0);
            P->kl = sum_nodes(g, P->kl, discrete_kl(g, l, P->q[i], P->p[i], B));
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- reparam (and samples of normal latents) */

/* z = mean + sd * eps for every normal latent: [B*S, L]; detached for score-function estimators. */
g_node *normal_sample(lowering *L, prepared *P, int i, int detach) {
    g_graph *g = L->g;
    const vae_latent *l = &g->model->latents[i];
    g_node *eps = g_new(g, G_NOISE, P->B * P->S, l->nvars);
    eps->stream = i;
    eps->group = P->S;
    eps->label = vae_pool_printf(g->pool, "eps %s", l->name);
    if (!P->mean[i]) return eps; /* from the prior */
    const vx_expr *sd = l->posterior.b_is_scale ? IN(1) : U(VX_EXP, BIN(VX_MUL, C(0.5), IN(1)));
    g_node *z = g_map(g, BIN(VX_ADD, IN(0), BIN(VX_MUL, sd, IN(2))), 3, (g_node *[]){P->mean[i], P->spread[i], eps},
                      P->B * P->S, l->nvars);
    z->label = l->name;
    return detach ? detached(z) : z;
}

/* A copy of a node without gradient: what a density reads for "its parameters stopped". */
static g_node *stopped(g_graph *g, g_node *n) { return detached(g_map1(g, IN(0), n)); }

/* log q(z | x) at z with the encoder's parameters stopped: gradient: stl (Roeder et al. 2017). */
static g_node *stl_logq(g_graph *g, const vae_latent *l, prepared *P, int i, g_node *z) {
    return normal_logq(g, l, stopped(g, P->mean[i]), stopped(g, P->spread[i]), z);
}

/* ---------------------------------------------------------------- sampled estimators */

g_node *discrete_sample(lowering *L, prepared *P, int i, int from) {
    g_graph *g = L->g;
    const vae_latent *l = &g->model->latents[i];
    g_node *logits = NULL;
    if (from == 0) logits = P->q[i].table;             /* q(z | x) */
    else if (from == 1) logits = P->p[i].table;        /* the prior; NULL for a fixed one */
    if (from == 1 && !logits && l->kind == LATENT_BERNOULLI && P->p[i].constant != 0) {
        logits = constant(g, P->p[i].constant, 1, l->width); /* before its reader: nodes run in order */
    }
    g_node *z = g_new(g, G_SAMPLE, P->B * P->S, l->width);
    z->nvars = l->nvars;
    z->states = l->kind == LATENT_CATEGORICAL ? l->states : 2;
    z->bernoulli = l->kind == LATENT_BERNOULLI;
    z->stream = i;
    z->label = l->name;
    z->group = logits && logits->rows == 1 ? P->B * P->S : P->S;
    if (logits) {
        z->in[z->nin++] = logits;
    }
    return detached(z);
}

/* The decoder's distribution arguments a (and b) at latent values z, one node per latent. 0 or -1. */
int lower_decoder(lowering *L, g_node *const *z, g_node **a, g_node **b) {
    const vae_model *m = L->g->model;
    L->nenv = 0;
    for (int i = 0; i < m->nlatents; i++) env_bind(L, m->latents[i].name, z[i]);
    lower_network(L, m->decoder, &m->likelihood, a, b);
    return L->failed ? -1 : 0;
}

/* The decoder at samples: log p(x | z_s) per sample [B*S, 1]. */
static g_node *decode_rows(lowering *L, prepared *P, g_node **z) {
    g_node *a, *b;
    if (lower_decoder(L, z, &a, &b)) return NULL;
    return loglik_rows(L->g, P->x, &L->g->model->likelihood, a, b, P->B * P->S);
}

/* ---------------------------------------------------------------- the decoder once per joint state */

static int enumerable(const vae_model *m);

/* How many of latent l's variables the draws z [R, width] share with each state of T [J, width]:
 * [R, J], exact small integers.  One-hot rows: z . t (z itself where T is the identity); 0/1
 * units: z . (2t - 1) + sum (1 - t). */
static g_node *state_matches(g_graph *g, const vae_latent *l, g_node *z, g_node *T) {
    if (l->kind == LATENT_CATEGORICAL && T->rows == l->width) return z; /* one variable, the only latent: T = I */
    if (l->kind == LATENT_CATEGORICAL) return detached(g_matmul(g, z, 0, T, 1));
    g_node *signs = detached(g_map1(g, BIN(VX_SUB, BIN(VX_MUL, C(2), IN(0)), C(1)), T));
    g_node *zeros = detached(g_matmul(g, constant(g, 1, 1, l->width), 0,
                                      detached(g_map1(g, BIN(VX_SUB, C(1), IN(0)), T)), 1)); /* [1, J] */
    return detached(g_map2(g, BIN(VX_ADD, IN(0), IN(1)), detached(g_matmul(g, z, 0, signs, 1)), zeros));
}

/* Whether the decoder at the R = B*S draws of the discrete latents (J joint states) runs once per
 * batch on the J states (its products on J rows, loglik_states' [B, J] table of log p(x_b | state j),
 * and each row's state picked from [R, J] matches) rather than on the R rows (its products and the
 * likelihood's elementwise terms on every row): whichever costs fewer multiply-adds a pass, a
 * decoder row costing its parameters (a dense decoder's exact count); where the tensors fit.  Says
 * which in g->decoder_note (vaec check --graph). */
static int decoder_per_state(g_graph *g, int B, int S, long J) {
    const vae_model *m = g->model;
    double per_row = m->data_dim, width = 0, R = (double)B * S, D = m->data_dim;
    for (int p = 0; p < m->nparams; p++)
        if (m->params[p].owner == NET_DECODER) per_row += (double)m->params[p].size;
    for (int i = 0; i < m->nlatents; i++) width += m->latents[i].width;
    double rows_cost = R * per_row;
    double states_cost = J * per_row + (m->likelihood.kind == DIST_BERNOULLI ? 1 : 2) * B * J * D + R * J * (width + 1);
    long long widest = m->max_example_values > 0 ? m->max_example_values : 1;
    int fits = vae_size_mul((long long)B * S, J) <= VAE_MAX_VALUES && vae_size_mul(J, widest) <= VAE_MAX_VALUES;
    int forced = g->decoder_rows != VAE_DECODER_BY_COST;
    int per_state = fits && (forced ? g->decoder_rows == VAE_DECODER_PER_STATE : states_cost < rows_cost);
    g->decoder_note = vae_pool_printf(g->pool, "%s (%ld joint states for %.0f sample rows; about %.3g multiply-adds "
                                               "a pass per state, %.3g per row)%s", per_state ? "once per joint state"
                                               : "on the sample rows", J, R, states_cost, rows_cost, forced ? ", forced" : "");
    return per_state;
}

/* log p(x_b | z_bs) per sample row [B*S, 1] from the decoder run once on the J joint states: each
 * row takes its state's entry of the [B, J] table that enumeration computes too (loglik_states),
 * exactly (one term is not zero).  The adjoint adds each row's gradient into its state's column,
 * so the decoder's gradient is the per-state gradient weighted by how often the state was drawn. */
static g_node *decode_states(lowering *L, prepared *P, g_node *const *z, long J) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    g_node *T[VAE_MAX_LATENTS], *matches = NULL;
    long stride = 1;
    int nvars = 0;
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        T[i] = latent_states(g, l, (int)J, stride);
        stride *= (long)l->joint_states;
        matches = sum_nodes(g, matches, state_matches(g, l, z[i], T[i]));
        nvars += l->nvars;
    }
    g_node *a, *b;
    if (lower_decoder(L, T, &a, &b)) return NULL;
    g_node *table = loglik_states(g, P->x, &m->likelihood, a, b, (int)J);
    /* every variable matches at the row's own state only */
    g_node *picked = g_map2(g, vx_select(g, BIN(VX_SUB, IN(0), C(nvars - 0.5)), IN(1), C(0)), matches, table);
    g_node *ll = g_rowsum(g, picked);
    ll->label = "log p(x|z)";
    return ll;
}

/* The decoder at S draws per example of every latent, all discrete (z, one node per latent, 0/1
 * values: draws, antithetic pairs, the hard samples of a relaxation, rows of the states):
 * log p(x | z_s) [B*S, 1], once per joint state or per row as decoder_per_state decides. */
static g_node *decode_draws(lowering *L, prepared *P, g_node **z) {
    const vae_model *m = L->g->model;
    if (!enumerable(m)) return decode_rows(L, P, z);
    long J = 1;
    for (int i = 0; i < m->nlatents; i++) J *= (long)m->latents[i].joint_states;
    return decoder_per_state(L->g, P->B, P->S, J) ? decode_states(L, P, z, J) : decode_rows(L, P, z);
}

static int encoders_trained(const vae_model *m);

typedef enum {
    SAMPLE_REPARAM, SAMPLE_REINFORCE, SAMPLE_NVIL, SAMPLE_UNIFORM, SAMPLE_PRIOR, SAMPLE_IWAE_EVAL, SAMPLE_RWS
} sample_kind;

/* The terms of a sampled estimator: per sample [B*S, 1], summed over the latents. */
typedef struct {
    prepared P;
    int B, S;
    g_node *ll;       /* log p(x | z_s) */
    g_node *logq;     /* log q(z_s | x) (NULL without encoder) */
    g_node *logp;     /* log p(z_s) */
    g_node *logq_stl; /* log q(z_s | x) with the encoder's parameters stopped (reparam with stl) */
    double joint;     /* the discrete latents' joint states */
} sampled;

/* Draws every latent S times per example, from q(z | x), the prior or uniformly as the kind
 * says, with their densities, and runs the decoder at the draws.  0 or -1. */
static int sample_latents(lowering *L, sample_kind kind, int with_encoder, sampled *T) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    g_node *z[VAE_MAX_LATENTS];
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        if (l->kind == LATENT_NORMAL) {
            /* detached for the score-function estimators */
            z[i] = normal_sample(L, &T->P, i, kind == SAMPLE_REINFORCE || kind == SAMPLE_NVIL || kind == SAMPLE_RWS);
            if (kind == SAMPLE_REPARAM && m->est.stl)
                T->logq_stl = sum_nodes(g, T->logq_stl, stl_logq(g, l, &T->P, i, z[i]));
            if (with_encoder) T->logq = sum_nodes(g, T->logq, normal_logq(g, l, T->P.mean[i], T->P.spread[i], z[i]));
            T->logp = sum_nodes(g, T->logp, normal_logp(g, z[i]));
        } else {
            z[i] = discrete_sample(L, &T->P, i, kind == SAMPLE_UNIFORM ? 2 : !with_encoder ? 1 : 0);
            if (with_encoder) T->logq = sum_nodes(g, T->logq, discrete_logprob_at(g, l, T->P.q[i], z[i]));
            T->logp = sum_nodes(g, T->logp, discrete_logprob_at(g, l, T->P.p[i], z[i]));
            T->joint *= l->joint_states;
        }
    }
    /* the IWAE evaluation's estimate must not depend on how its rows are cut (pipeline.c build_iwae) */
    T->ll = kind == SAMPLE_IWAE_EVAL ? decode_rows(L, &T->P, z) : decode_draws(L, &T->P, z);
    return T->ll ? 0 : -1;
}

/* (1/S) recon - KL per example: the ELBO's estimate from summed reconstruction terms. */
static g_node *elbo_value(g_graph *g, const sampled *T, g_node *recon) {
    return g_map2(g, BIN(VX_SUB, BIN(VX_MUL, C(1.0 / T->S), IN(0)), IN(1)), recon, T->P.kl);
}

/* The surrogate (1/S) recon - beta KL, beta under warm-up. */
static g_node *elbo_surrogate(g_graph *g, const sampled *T, g_node *recon) {
    return g_map(g, BIN(VX_SUB, BIN(VX_MUL, C(1.0 / T->S), IN(0)), BIN(VX_MUL, IN(2), IN(1))), 3,
                 (g_node *[]){recon, T->P.kl, kl_weight(g)}, T->B, 1);
}

/* log w = log p(x|z) + beta (log p(z) - log q(z|x)) from $0 log p(x|z), $1 log p(z), $2 log q(z|x), $3 beta:
 * the training bounds' weights (iwae, renyi, vimco, rws). */
static const vx_expr *log_weight(g_graph *g) { return BIN(VX_ADD, IN(0), BIN(VX_MUL, IN(3), BIN(VX_SUB, IN(1), IN(2)))); }

/* log w = log p(x | z) + beta (log p(z) - log q(z | x)) per sample row, beta under warm-up. */
static g_node *importance_logw(g_graph *g, g_node *ll, g_node *logp, g_node *logq) {
    g_node *logw = g_map(g, log_weight(g), 4, (g_node *[]){ll, logp, logq, kl_weight(g)}, ll->rows, 1);
    logw->label = "log w";
    return logw;
}

/* The IWAE bound log (1/K) sum_k w_k per example [B, 1] from log w [B*K, 1]. */
static g_node *iwae_bound(g_graph *g, g_node *logw, int B, int K) {
    return g_map1(g, BIN(VX_SUB, IN(0), C(log((double)K))), group_logsumexp(g, logw, B));
}

/* log w = log p(x|z) + log p(z) - log q(z|x); without encoder q = p. */
static void iwae_eval_rows(g_graph *g, const sampled *T, int with_encoder) {
    g->out.logw_rows = with_encoder ? g_map(g, BIN(VX_SUB, BIN(VX_ADD, IN(0), IN(1)), IN(2)), 3,
                                            (g_node *[]){T->ll, T->logp, T->logq}, T->B * T->S, 1)
                                    : T->ll;
    g->out.logw_rows->label = "log w";
    g->out.recon_rows = T->ll;
}

/* prior: log (1/K) sum_k p(x | z_k), z_k ~ p(z) */
static void prior_objective(g_graph *g, const sampled *T) {
    g_node *v = g_map1(g, BIN(VX_SUB, IN(0), C(log((double)T->S))), group_logsumexp(g, T->ll, T->B));
    g->out.recon_rows = T->ll;
    g->out.value_rows = v;
    g->value_name = "prior bound";
    set_objective(g, v, 1.0);
}

static void reparam_objective(g_graph *g, const sampled *T) {
    g->out.recon_rows = T->ll;
    g_node *recon = g_groupsum(g, T->ll, T->B); /* sum over the S samples */
    g->out.value_rows = elbo_value(g, T, recon);
    if (g->model->est.stl) { /* (1/S) sum_s [log p(x|z_s) + beta (log p(z_s) - log q_sg(z_s))]: the KL sampled, its score term dropped */
        g_node *per = g_map(g, BIN(VX_ADD, IN(0), BIN(VX_MUL, IN(3), BIN(VX_SUB, IN(1), IN(2)))), 4,
                            (g_node *[]){T->ll, T->logp, T->logq_stl, kl_weight(g)}, T->B * T->S, 1);
        set_objective(g, g_map1(g, BIN(VX_MUL, C(1.0 / T->S), IN(0)), g_groupsum(g, per, T->B)), 1.0);
        return;
    }
    set_objective(g, elbo_surrogate(g, T, recon), 1.0);
}

/* uniform: (1/S) sum_s J q(z_s|x) log p(x|z_s), z_s uniform */
static void uniform_objective(g_graph *g, const sampled *T) {
    g_node *w = g_map2(g, BIN(VX_MUL, BIN(VX_MUL, C(T->joint), U(VX_EXP, IN(0))), IN(1)), T->logq, T->ll);
    g->out.recon_rows = w;
    g_node *recon = g_groupsum(g, w, T->B);
    g->out.value_rows = elbo_value(g, T, recon);
    set_objective(g, elbo_surrogate(g, T, recon), 1.0);
}

/* The baseline network's log p_eta(x) per example, or NULL without one; NULL and L->failed on error. */
static g_node *baseline_rows(lowering *L, const sampled *T) {
    const vae_model *m = L->g->model;
    if (!m->est.baseline) return NULL;
    L->nenv = 0;
    env_bind(L, m->data->name, T->P.x);
    g_node *ba, *bb;
    lower_network(L, m->est.baseline, &m->baseline_dist, &ba, &bb);
    if (L->failed) return NULL;
    g_node *base = loglik_rows(L->g, T->P.x, &m->baseline_dist, ba, bb, T->B);
    base->label = "log p_eta(x)";
    return base;
}

/* reinforce: the surrogate log p(x|z_s) + sg(log p(x|z_s) - baseline) log q(z_s|x)
 * [+ log p_eta(x) - sg(log p_eta(x))].  0 or -1. */
static int reinforce_objective(lowering *L, const sampled *T) {
    g_graph *g = L->g;
    int B = T->B, S = T->S;
    g_node *ll = T->ll;
    g->out.recon_rows = ll;
    g_node *base = baseline_rows(L, T);
    if (L->failed) return -1;
    g_node *signal;
    if (g->model->est.baseline_loo) /* leave-one-out: the mean of the other samples of the same example */
        signal = detached(g_map2(g, BIN(VX_SUB, IN(0), BIN(VX_DIV, BIN(VX_SUB, IN(1), IN(0)), C(S - 1))), ll,
                                 g_groupsum(g, ll, B)));
    else
        signal = detached(base ? g_map2(g, BIN(VX_SUB, IN(0), IN(1)), ll, base) : g_map1(g, IN(0), ll));
    g_node *per_sample = g_map(g, BIN(VX_ADD, IN(0), BIN(VX_MUL, IN(1), IN(2))), 3,
                               (g_node *[]){ll, signal, T->logq}, B * S, 1);
    g_node *recon = g_groupsum(g, ll, B);
    g->out.value_rows = elbo_value(g, T, recon);
    g_node *sur = elbo_surrogate(g, T, g_groupsum(g, per_sample, B));
    if (base) /* trains eta by maximum likelihood; adds nothing to the value */
        sur = g_map(g, BIN(VX_ADD, IN(0), BIN(VX_SUB, IN(1), IN(2))), 3, (g_node *[]){sur, base, detached(g_map1(g, IN(0), base))},
                    B, 1);
    set_objective(g, sur, 1.0);
    return 0;
}

/* rws(samples: K) (reweighted wake-sleep, Bornschein & Bengio 2015), z_k ~ q(z | x) held fixed, any
 * latent: the value is the IWAE bound; the decoder (and a learned prior) follow its gradient
 * sum_k w~_k grad log p(x, z_k), the encoder the wake phase's sum_k w~_k grad log q(z_k | x),
 * w~_k = w_k / sum_j w_j.  The surrogate
 *   LSE_k(log w_k with log q stopped) - log K + sum_k sg(w~_k) log q(z_k | x) - sg(same)
 * has the bound's value and exactly that gradient (the encoder gets none from the KL). */
static void rws_objective(g_graph *g, const sampled *T) {
    int B = T->B, K = T->S;
    g_node *logw = importance_logw(g, T->ll, T->logp, stopped(g, T->logq));
    g_node *lse = group_logsumexp(g, logw, B);
    g_node *bound = g_map1(g, BIN(VX_SUB, IN(0), C(log((double)K))), lse); /* iwae_bound, with lse kept to normalise */
    g_node *wt = detached(g_map2(g, U(VX_EXP, BIN(VX_SUB, IN(0), IN(1))), logw, lse));
    wt->label = "w~";
    g_node *wake = g_groupsum(g, g_map2(g, BIN(VX_MUL, IN(0), IN(1)), wt, T->logq), B);
    g->out.recon_rows = T->ll;
    g->out.value_rows = bound;
    g->value_name = "IWAE bound";
    set_objective(g, g_map(g, BIN(VX_ADD, IN(0), BIN(VX_SUB, IN(1), IN(2))), 3,
                           (g_node *[]){bound, wake, detached(g_map1(g, IN(0), wake))}, B, 1), 1.0);
}

/* nvil(baseline: b) (Mnih & Gregor 2014).  With f_s = log p(x | z_s) (the KL in closed form, as
 * for reinforce), l_s = f_s - b(x), and c, v the running mean and variance of l over the steps
 * before this one (two state parameters: read here, their next values written where their
 * gradient would go, vae_param.state), the signal A_s = (l_s - c) / max(1, sqrt(v)) and the
 * surrogate
 *   (1/S) sum_s [f_s + sg(A_s) (log q(z_s | x) + b(x) - sg(same))] - beta KL,
 * whose value is the ELBO's estimate: q follows A_s grad log q, and b follows A_s grad b, the
 * least-squares gradient of (l - c)^2 / 2 scaled as the signal is (the paper's algorithm 1).
 * Statistics from before the step keep the estimate unbiased; after it, over the step's rows,
 * c = NVIL_DECAY c + (1 - NVIL_DECAY) mean(l) and v likewise with the variance of l. */
#define NVIL_DECAY 0.8
static int nvil_objective(lowering *L, const sampled *T) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    int B = T->B, R = T->B * T->S;
    L->nenv = 0;
    env_bind(L, m->data->name, T->P.x);
    vae_dist value = {.a = m->est.baseline->ret}; /* the network's one value, as a distribution's argument */
    g_node *b;
    lower_network(L, m->est.baseline, &value, &b, NULL);
    if (L->failed) return -1;
    b = per_example(g, b, B);
    b->label = "b(x)";
    g_node *c = detached(param_node(L, m->est.state_param, 1)), *v = detached(param_node(L, m->est.state_param + 1, 1));
    g_node *l = detached(g_map2(g, BIN(VX_SUB, IN(0), IN(1)), T->ll, b));
    l->label = "l = f - b(x)";
    g_node *signal = g_map(g, BIN(VX_DIV, BIN(VX_SUB, IN(0), IN(1)), BIN(VX_MAX, C(1), U(VX_SQRT, IN(2)))), 3,
                           (g_node *[]){l, c, v}, R, 1);
    g_node *scored = g_map2(g, BIN(VX_ADD, IN(0), IN(1)), T->logq, b); /* log q(z_s | x) + b(x) */
    g_node *per_sample = g_map(g, BIN(VX_ADD, IN(0), BIN(VX_MUL, IN(1), BIN(VX_SUB, IN(2), IN(3)))), 4,
                               (g_node *[]){T->ll, detached(signal), scored, detached(g_map1(g, IN(0), scored))}, R, 1);
    g->out.recon_rows = T->ll;
    g->out.value_rows = elbo_value(g, T, g_groupsum(g, T->ll, B));
    set_objective(g, elbo_surrogate(g, T, g_groupsum(g, per_sample, B)), 1.0);
    /* the next running statistics, in the state's places of the gradient buffer */
    g_node *mean = detached(mean_times(g, l, 1.0));
    g_node *var = mean_times(g, g_map2(g, BIN(VX_MUL, BIN(VX_SUB, IN(0), IN(1)), BIN(VX_SUB, IN(0), IN(1))), l, mean), 1.0);
    const vx_expr *ema = BIN(VX_ADD, BIN(VX_MUL, C(NVIL_DECAY), IN(0)), BIN(VX_MUL, C(1 - NVIL_DECAY), IN(1)));
    g->param_grad[m->est.state_param] = detached(g_map2(g, ema, c, mean));
    g->param_grad[m->est.state_param + 1] = detached(g_map2(g, ema, v, detached(var)));
    g->param_grad[m->est.state_param]->label = "next running mean of l";
    g->param_grad[m->est.state_param + 1]->label = "next running variance of l";
    return 0;
}

/* The estimators that sample the latents (reparam, reinforce, nvil, uniform, prior, rws) and the IWAE
 * evaluation: S samples per example, as consecutive rows. */
static int build_sampled(lowering *L, sample_kind kind, int B, int S) {
    g_graph *g = L->g;
    sampled T = {.B = B, .S = S, .joint = 1};
    int with_encoder = kind != SAMPLE_PRIOR && (kind != SAMPLE_IWAE_EVAL || encoders_trained(g->model));
    if (prepare(L, &T.P, B, S, with_encoder)) return -1;
    if (sample_latents(L, kind, with_encoder, &T)) return -1;
    g->out.kl_rows = T.P.kl;
    switch (kind) {
    case SAMPLE_IWAE_EVAL: iwae_eval_rows(g, &T, with_encoder); return 0;
    case SAMPLE_PRIOR: prior_objective(g, &T); return 0;
    case SAMPLE_REPARAM: reparam_objective(g, &T); return 0;
    case SAMPLE_UNIFORM: uniform_objective(g, &T); return 0;
    case SAMPLE_REINFORCE: return reinforce_objective(L, &T);
    case SAMPLE_RWS: rws_objective(g, &T); return 0;
    case SAMPLE_NVIL: return nvil_objective(L, &T);
    }
    return -1;
}

/* ---------------------------------------------------------------- importance weighted bound */

/* renyi(samples: K, alpha: A) (Li & Turner 2016) on build_iwae's log w [B*K, 1]:
 * 1/(1 - A) log (1/K) sum_k w_k^(1 - A), the maximum subtracted in the log-sum-exp.  A = 1 is the
 * limit, (1/K) sum_k log w_k (the ELBO, its KL sampled), taken as such rather than as 0/0; at A = 0
 * every scaling is by 1, so the bound and its gradient are the IWAE bound's to the bit.  Near
 * A = 1 the float sum divided by 1 - A loses about 1e-7 log K / |1 - A| nats. */
static g_node *renyi_bound(g_graph *g, g_node *logw, int B, int K, double alpha) {
    if (alpha == 1) return g_map1(g, BIN(VX_MUL, C(1.0 / K), IN(0)), g_groupsum(g, logw, B));
    double e = 1 - alpha;
    g_node *lse = group_logsumexp(g, g_map1(g, BIN(VX_MUL, C(e), IN(0)), logw), B);
    return g_map1(g, BIN(VX_DIV, BIN(VX_SUB, IN(0), C(log((double)K))), C(e)), lse);
}

/* iwae(samples: K): log (1/K) sum_k w_k, w_k = p(x, z_k) / q(z_k | x), z_k reparameterised; the
 * log-mean-exp is per example over its own K rows.  With gradient: dreg, the encoder follows the
 * doubly reparameterised gradient sum_k w~_k^2 d log w_k / d z_k dz_k/dphi (Tucker et al. 2018)
 * and the decoder the usual sum_k w~_k d log p(x, z_k) / d theta; the surrogate is
 *   LSE(log w(sg z, sg phi; theta)) + sum_k sg(w~_k^2) log w(z_k(phi); sg theta, sg phi)  - sg(same),
 * whose value is the bound and whose two parts reach only theta and only phi. */
static int build_iwae(lowering *L, int B, int K) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    int dreg = m->est.dreg;
    g_node *klw = kl_weight(g);
    prepared P;
    if (prepare(L, &P, B, K, 1)) return -1;
    g_node *z[VAE_MAX_LATENTS], *zd[VAE_MAX_LATENTS], *lq = NULL, *lp = NULL, *lq_stop = NULL, *lp_stop = NULL;
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        z[i] = normal_sample(L, &P, i, 0);
        if (!dreg) {
            lq = sum_nodes(g, lq, m->est.stl ? stl_logq(g, l, &P, i, z[i]) : normal_logq(g, l, P.mean[i], P.spread[i], z[i]));
            lp = sum_nodes(g, lp, normal_logp(g, z[i]));
            continue;
        }
        zd[i] = detached(g_map1(g, IN(0), z[i]));
        g_node *md = detached(g_map1(g, IN(0), P.mean[i])), *sd = detached(g_map1(g, IN(0), P.spread[i]));
        lq_stop = sum_nodes(g, lq_stop, normal_logq(g, l, md, sd, zd[i])); /* no path to phi */
        lp_stop = sum_nodes(g, lp_stop, normal_logp(g, zd[i]));
        lq = sum_nodes(g, lq, normal_logq(g, l, md, sd, z[i]));           /* phi through z only */
        lp = sum_nodes(g, lp, normal_logp(g, z[i]));
    }
    const vx_expr *logw_e = log_weight(g);
    g_node *ll = decode_rows(L, &P, dreg ? zd : z);
    if (!ll) return -1;
    g_node *logw = g_map(g, logw_e, 4, (g_node *[]){ll, dreg ? lp_stop : lp, dreg ? lq_stop : lq, klw}, B * K, 1);
    logw->label = "log w";
    g->out.recon_rows = ll;
    g->out.kl_rows = P.kl;
    if (m->est.kind == EST_RENYI) { /* the same weights, another bound: its own gradient */
        g->out.value_rows = renyi_bound(g, logw, B, K, m->est.alpha);
        g->value_name = "Renyi bound";
        set_objective(g, g->out.value_rows, 1.0);
        return 0;
    }
    g_node *bound = iwae_bound(g, logw, B, K);
    g->out.value_rows = bound;
    g->value_name = "IWAE bound";
    if (!dreg) {
        set_objective(g, bound, 1.0);
        return 0;
    }
    /* the encoder's part: decoder parameters detached, z with its path to phi */
    L->detach_params = 1;
    g_node *ll_path = decode_rows(L, &P, z);
    L->detach_params = 0;
    if (!ll_path) return -1;
    g_node *logw_path = g_map(g, logw_e, 4, (g_node *[]){ll_path, lp, lq, klw}, B * K, 1);
    /* w~_k = w_k / sum_j w_j, detached */
    g_node *lse = detached(group_logsumexp(g, logw, B));
    g_node *w2 = detached(g_map2(g, U(VX_EXP, BIN(VX_MUL, C(2), BIN(VX_SUB, IN(0), IN(1)))), logw, lse));
    g_node *term = g_groupsum(g, g_map2(g, BIN(VX_MUL, IN(0), IN(1)), w2, logw_path), B);
    g_node *sur = g_map(g, BIN(VX_ADD, IN(0), BIN(VX_SUB, IN(1), IN(2))), 3,
                        (g_node *[]){bound, term, detached(g_map1(g, IN(0), term))}, B, 1);
    set_objective(g, sur, 1.0);
    return 0;
}

/* ---------------------------------------------------------------- Gumbel-softmax */

/* gumbel(samples: S, temperature: T [, hard: true]) for discrete latents
 * (Jang et al. 2017; Maddison et al. 2017): y = softmax((log q + g) / T) per
 * variable, g ~ Gumbel, fed to the decoder (a Bernoulli latent: the binary
 * concrete y = sigmoid((logits + L) / T), L logistic); the objective is
 * (1/S) sum_s log p(x | y_s) - beta KL(q || p) in closed form.  With hard, the
 * decoder sees h = onehot(argmax) in the forward pass and y's gradient in the
 * backward pass: h + (y - sg(y)), exactly h in value.  The reported ELBO is
 * always at the discrete samples h. */
static int build_gumbel(lowering *L, int B, int S) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    const double T = m->est.temperature > 0 ? m->est.temperature : 1.0;
    prepared P;
    if (prepare(L, &P, B, S, 1)) return -1;
    g_node *y[VAE_MAX_LATENTS], *h[VAE_MAX_LATENTS];
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        int binary = l->kind == LATENT_BERNOULLI;
        g_node *noise = g_new(g, G_NOISE, B * S, l->width);
        noise->noise = binary ? NOISE_LOGISTIC : NOISE_GUMBEL;
        noise->stream = i;
        noise->group = S;
        noise->label = vae_pool_printf(g->pool, "%s %s", binary ? "logistic" : "gumbel", l->name);
        if (binary) {
            binary_concrete(g, P.q[i].table, noise, T, m->est.hard, &h[i], &y[i]);
            h[i]->label = l->name;
            continue;
        }
        g_node *a = g_map2(g, BIN(VX_DIV, BIN(VX_ADD, IN(0), IN(1)), C(T)), P.q[i].table, noise);
        g_node *mx = rowmax(g, a, l->nvars);
        g_node *e = g_map2(g, U(VX_EXP, BIN(VX_SUB, IN(0), IN(1))), a, mx);
        g_node *sum = g_colgroupsum(g, e, l->nvars);
        y[i] = g_map2(g, BIN(VX_DIV, IN(0), IN(1)), e, sum);
        y[i]->label = vae_pool_printf(g->pool, "relaxed %s", l->name);
        h[i] = detached(g_map2(g, vx_select(g, BIN(VX_SUB, IN(1), IN(0)), C(0), C(1)), a, mx));
        h[i]->label = l->name;
        if (m->est.hard) /* straight through: the value of h, the gradient of y */
            y[i] = g_map(g, BIN(VX_ADD, IN(0), BIN(VX_SUB, IN(1), IN(2))), 3,
                         (g_node *[]){h[i], y[i], detached(g_map1(g, IN(0), y[i]))}, B * S, l->width);
    }
    g_node *ll = decode_rows(L, &P, y);
    if (!ll) return -1;
    g_node *ll_discrete = m->est.hard ? ll : decode_draws(L, &P, h); /* reported only: no gradient */
    if (!ll_discrete) return -1;
    g->out.recon_rows = ll_discrete;
    g->out.kl_rows = P.kl;
    g->out.value_rows = g_map2(g, BIN(VX_SUB, BIN(VX_MUL, C(1.0 / S), IN(0)), IN(1)), g_groupsum(g, ll_discrete, B), P.kl);
    g_node *sur = g_map(g, BIN(VX_SUB, BIN(VX_MUL, C(1.0 / S), IN(0)), BIN(VX_MUL, IN(2), IN(1))), 3,
                        (g_node *[]){g_groupsum(g, ll, B), P.kl, kl_weight(g)}, B, 1);
    set_objective(g, sur, 1.0);
    return 0;
}

/* ---------------------------------------------------------------- VIMCO */

/* vimco(samples: K) for discrete latents (Mnih & Rezende 2016): the IWAE bound
 * L = log (1/K) sum_k w_k at z_k ~ q, and the surrogate
 *   L + sum_k sg(L - L_-k) log q(z_k | x),
 * where L_-k replaces w_k by the geometric mean of the other weights:
 *   L_-k = log (1/K) (sum_{j != k} w_j + exp(mean_{j != k} log w_j)).
 * Written with M = max_j log w_j:  L - L_-k = log s - log(s - e_k + exp(g_k - M)),
 * s = sum_j exp(log w_j - M), e_k = exp(log w_k - M), g_k the mean of the others. */
static int build_vimco(lowering *L, int B, int K) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    prepared P;
    if (prepare(L, &P, B, K, 1)) return -1;
    g_node *z[VAE_MAX_LATENTS], *logq = NULL, *logp = NULL;
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        z[i] = discrete_sample(L, &P, i, 0);
        logq = sum_nodes(g, logq, discrete_logprob_at(g, l, P.q[i], z[i]));
        logp = sum_nodes(g, logp, discrete_logprob_at(g, l, P.p[i], z[i]));
    }
    g_node *ll = decode_draws(L, &P, z);
    if (!ll) return -1;
    g_node *logw = importance_logw(g, ll, logp, logq);
    g_node *bound = iwae_bound(g, logw, B, K);
    g_node *score = vimco_score(g, logw, logq, B, K);
    g->out.recon_rows = ll;
    g->out.kl_rows = P.kl;
    g->out.value_rows = bound;
    g->value_name = "IWAE bound";
    set_objective(g, g_map2(g, BIN(VX_ADD, IN(0), IN(1)), bound, score), 1.0);
    return 0;
}

/* ---------------------------------------------------------------- ARM and DisARM */

/* Latent i's antithetic pairs, `group` per example (rows B * group): one uniform u per variable
 * and pair, b = 1[u < s(phi)], b~ = 1[1 - u < s(phi)] (phi the logits [B, n]); returns the decoder's
 * values [2 * B * group, n], b on the even rows (tilde 0) and b~ on the odd ones. */
static g_node *antithetic_draws(g_graph *g, const vae_latent *l, g_node *phi, int i, int B, int group, g_node *tilde,
                                g_node **u, g_node **b, g_node **bt) {
    *u = g_new(g, G_NOISE, B * group, l->nvars);
    (*u)->noise = NOISE_UNIFORM;
    (*u)->stream = i;
    (*u)->group = group;
    (*u)->label = vae_pool_printf(g->pool, "u %s", l->name);
    *b = detached(g_map2(g, U(VX_STEP, BIN(VX_SUB, U(VX_SIGMOID, IN(0)), IN(1))), phi, *u));
    *bt = detached(g_map2(g, U(VX_STEP, BIN(VX_SUB, U(VX_SIGMOID, IN(0)), BIN(VX_SUB, C(1), IN(1)))), phi, *u));
    g_node *z = detached(g_map(g, BIN(VX_ADD, IN(0), BIN(VX_MUL, IN(2), BIN(VX_SUB, IN(1), IN(0)))), 3,
                               (g_node *[]){*b, *bt, tilde}, 2 * B * group, l->nvars));
    z->label = l->name;
    return z;
}

/* arm and disarm for Bernoulli latents (Yin & Zhou 2019; Dong, Mnih & Tucker 2020).  One uniform
 * u per variable and example gives the antithetic pair b = 1[u < s(phi)], b~ = 1[1 - u < s(phi)],
 * each a draw from q(z | x); the decoder runs once on both, rows doubled (row 2e holds b, row
 * 2e + 1 holds b~).  With f = log p(x | b) (the KL is in closed form, as for reinforce) and
 * d = f(b) - f(b~), the gradient for the encoder's logits phi is
 *   arm:    (f(b~) - f(b)) (u - 1/2)                     = -d (u - 1/2)
 *   disarm: 1/2 (f(b) - f(b~)) (-1)^b~ 1[b != b~] s(|phi|) = d/2 (b - b~) s(|phi|)
 * and the decoder's the mean of the pair's.  The surrogate is
 *   1/2 (f(b) + f(b~)) + sum_i sg(g_i) phi_i - sg(same) - beta KL,
 * whose value is the pair's mean ELBO. */
static int build_antithetic(lowering *L, int B, int disarm) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    prepared P;
    if (prepare(L, &P, B, 2, 1)) return -1;
    g_node *tilde = antithetic_parity(g, 2 * B);
    g_node *z[VAE_MAX_LATENTS], *u[VAE_MAX_LATENTS], *b[VAE_MAX_LATENTS], *bt[VAE_MAX_LATENTS];
    for (int i = 0; i < m->nlatents; i++) z[i] = antithetic_draws(g, &m->latents[i], P.q[i].table, i, B, 1, tilde, &u[i], &b[i], &bt[i]);
    g_node *ll = decode_draws(L, &P, z);
    if (!ll) return -1;
    g_node *d = detached(g_groupsum(g, g_map2(g, BIN(VX_MUL, IN(0), BIN(VX_SUB, C(1), BIN(VX_MUL, C(2), IN(1)))), ll, tilde), B));
    d->label = "f(b) - f(b~)";
    g_node *score = NULL;
    for (int i = 0; i < m->nlatents; i++) {
        g_node *phi = P.q[i].table, *coef;
        if (disarm) {
            const vx_expr *abs_phi = BIN(VX_MAX, IN(1), U(VX_NEG, IN(1)));
            coef = g_map(g, BIN(VX_MUL, BIN(VX_MUL, BIN(VX_MUL, C(0.5), IN(0)), BIN(VX_SUB, IN(2), IN(3))), U(VX_SIGMOID, abs_phi)),
                         4, (g_node *[]){d, phi, b[i], bt[i]}, B, phi->cols);
        } else
            coef = g_map2(g, BIN(VX_MUL, U(VX_NEG, IN(0)), BIN(VX_SUB, IN(1), C(0.5))), d, u[i]);
        score = sum_nodes(g, score, g_rowsum(g, g_map2(g, BIN(VX_MUL, IN(0), IN(1)), detached(coef), phi)));
    }
    g_node *recon = g_groupsum(g, ll, B);
    g->out.recon_rows = ll;
    g->out.kl_rows = P.kl;
    g->out.value_rows = g_map2(g, BIN(VX_SUB, BIN(VX_MUL, C(0.5), IN(0)), IN(1)), recon, P.kl);
    g_node *sur = g_map(g, BIN(VX_SUB, BIN(VX_ADD, BIN(VX_MUL, C(0.5), IN(0)), BIN(VX_SUB, IN(1), IN(2))), BIN(VX_MUL, IN(4), IN(3))),
                        5, (g_node *[]){recon, score, detached(g_map1(g, IN(0), score)), P.kl, kl_weight(g)}, B, 1);
    set_objective(g, sur, 1.0);
    return 0;
}

/* ---------------------------------------------------------------- sum and sample */

/* [B, J]: each joint state's rank under q per example, 0 the most probable, ties to the lower
 * index: the states j that beat k, q_j > q_k or q_j = q_k and j < k, counted over a [B*J, J] domain
 * whose row b*J + k holds state k of example b (transposes turn the table's rows into columns). */
static g_node *state_ranks(g_graph *g, g_node *lq, int B, int J) {
    g_node *lq_k = g_transpose(g, lq, 1, J, B * J, 1);
    g_node *j = g_transpose(g, row_index(g, J, J), J, 1, 1, J), *k = row_index(g, B * J, J);
    const vx_expr *beats = vx_select(g, BIN(VX_SUB, IN(0), IN(1)), C(1),
                                     vx_select(g, BIN(VX_SUB, IN(1), IN(0)), C(0), U(VX_STEP, BIN(VX_SUB, IN(3), IN(2)))));
    g_node *count = g_rowsum(g, g_map(g, beats, 4, (g_node *[]){lq, lq_k, j, k}, B * J, J));
    g_node *rank = detached(g_transpose(g, count, J, 1, B, J));
    rank->label = "rank under q";
    return rank;
}

/* sum_and_sample(k: N) (Liu et al. 2019) on the one categorical latent's J joint states: rows
 * b*(N+1) + n, n < N, decode the example's state of rank n, row n = N a draw z_r from q restricted
 * to the states of rank >= N.  With w_n = q(state n | x) and w_N = 1 - q(top N) (summed over the
 * rest), R = sum_n w_n f_n, f = log p(x | z) (the KL in closed form), and its gradient for q is
 *   sum_{n<N} f_n grad w_n + w_N f_N grad log q(z_r | x)
 * (the gradient of the rest's mass cancels against that of the restricted q): the surrogate
 *   sum_{n<N} w_n f_n + sg(w_N) f_N + sg(w_N f_N) (log q(z_r) - sg(same)) - beta KL, valued R - KL. */
static int build_sum_and_sample(lowering *L, int B) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    const vae_latent *l = &m->latents[0]; /* the checker: one latent, categorical, J <= 256 */
    int N = m->est.topk, S = N + 1, J = (int)l->joint_states, R = B * S;
    prepared P;
    if (prepare(L, &P, B, S, 1)) return -1;
    g_node *T = NULL, *lq = P.q[0].table;
    if (l->nvars > 1) { /* the joint states' values and log-probabilities */
        T = latent_states(g, l, J, 1);
        lq = discrete_logprob_states(g, l, P.q[0], T);
    }
    g_node *rank = state_ranks(g, detached(g_map1(g, IN(0), lq)), B, J), *n = row_index(g, R, S);
    const vx_expr *drawn_row = BIN(VX_SUB, IN(1), C(N - 0.5)); /* > 0 on row n = N */
    const vx_expr *rest = U(VX_STEP, BIN(VX_SUB, IN(0), C(N - 0.5)));  /* rank >= N */
    const vx_expr *is_n = U(VX_STEP, BIN(VX_SUB, C(0.5), BIN(VX_MAX, BIN(VX_SUB, IN(0), IN(1)), BIN(VX_SUB, IN(1), IN(0)))));
    /* the draw from the rest: q's log-probabilities, the top N pushed out of reach */
    g_node *outside = g_map2(g, BIN(VX_SUB, IN(1), BIN(VX_MUL, C(1e30), U(VX_STEP, BIN(VX_SUB, C(N - 0.5), IN(0))))), rank,
                             detached(g_map1(g, IN(0), lq)));
    g_node *pick = detached(g_new(g, G_SAMPLE, B, J)); /* after its input: nodes are in running order */
    pick->nvars = 1;
    pick->states = J;
    pick->group = 1;
    pick->stream = 0;
    pick->label = vae_pool_printf(g->pool, "%s outside the top %d", l->name, N);
    g_add_input(pick, outside);
    g_node *sel = detached(g_map(g, vx_select(g, drawn_row, IN(2), is_n), 3, (g_node *[]){rank, n, pick}, R, J));
    g_node *z = T ? detached(g_matmul(g, sel, 0, T, 0)) : sel;
    z->label = l->name;
    g_node *w = g_rowsum(g, g_map(g, BIN(VX_MUL, U(VX_EXP, IN(2)), vx_select(g, drawn_row, rest, is_n)), 3,
                                  (g_node *[]){rank, n, lq}, R, J));
    w->label = "q of the row's states";
    g_node *ll = decode_draws(L, &P, &z);
    if (!ll) return -1;
    g_node *wd = detached(g_map1(g, IN(0), w));
    g_node *summed = g_groupsum(g, g_map(g, BIN(VX_MUL, vx_select(g, BIN(VX_SUB, IN(2), C(N - 0.5)), IN(1), IN(0)), IN(3)), 4,
                                         (g_node *[]){w, wd, n, ll}, R, 1), B);
    g_node *coef = detached(g_groupsum(g, g_map(g, vx_select(g, BIN(VX_SUB, IN(1), C(N - 0.5)), BIN(VX_MUL, IN(0), IN(2)), C(0)), 3,
                                                (g_node *[]){wd, n, ll}, R, 1), B));
    g_node *logq_r = g_rowsum(g, g_map2(g, BIN(VX_MUL, IN(0), IN(1)), lq, pick));
    g->out.recon_rows = ll;
    g->out.kl_rows = P.kl;
    g->out.value_rows = g_map2(g, BIN(VX_SUB, IN(0), IN(1)), summed, P.kl);
    g_node *sur = g_map(g, BIN(VX_SUB, BIN(VX_ADD, IN(0), BIN(VX_MUL, IN(1), BIN(VX_SUB, IN(2), IN(3)))), BIN(VX_MUL, IN(5), IN(4))),
                        6, (g_node *[]){summed, coef, logq_r, detached(g_map1(g, IN(0), logq_r)), P.kl, kl_weight(g)}, B, 1);
    set_objective(g, sur, 1.0);
    return 0;
}

/* ---------------------------------------------------------------- RELAX */

/* z~ ~ p(z | b) for a Bernoulli latent of logits $0 given its draw b = $2 (Tucker et al. 2017):
 * v~ = 1 - theta + v theta where b = 1, v (1 - theta) where b = 0 (v = $1 uniform, theta = sigmoid
 * of the logits), and z~ = logits + log v~ - log(1 - v~); 1 - theta is sigmoid(-logits), and
 * 1 - v~ is written without a difference of near-equal numbers. */
static const vx_expr *conditional_relaxation(g_graph *g) {
    const vx_expr *th = U(VX_SIGMOID, IN(0)), *co = U(VX_SIGMOID, U(VX_NEG, IN(0))), *rest = BIN(VX_SUB, C(1), IN(1));
    const vx_expr *num = vx_select(g, IN(2), BIN(VX_ADD, co, BIN(VX_MUL, IN(1), th)), BIN(VX_MUL, IN(1), co));
    const vx_expr *den = vx_select(g, IN(2), BIN(VX_MUL, th, rest), BIN(VX_ADD, th, BIN(VX_MUL, rest, co)));
    return BIN(VX_SUB, BIN(VX_ADD, IN(0), U(VX_LOG, num)), U(VX_LOG, den));
}

/* The control network c at the latents' relaxed values z (and the data): [B, 1].  Its
 * parameters get no gradient of the objective (autodiff.c gives them the variance's). */
static g_node *control_rows(lowering *L, prepared *P, g_node *const *z) {
    const vae_model *m = L->g->model;
    vae_dist out = {.a = m->est.control->ret};
    g_node *c;
    L->nenv = 0;
    env_bind(L, m->data->name, P->x);
    for (int i = 0; i < m->nlatents; i++) env_bind(L, m->latents[i].name, z[i]);
    L->detach_params = 1;
    lower_network(L, m->est.control, &out, &c, NULL);
    L->detach_params = 0;
    return L->failed ? NULL : c;
}

/* rebar's control eta f(sigmoid(z / T)) (Tucker et al. 2017), f = log p(x | .): the decoder at the
 * relaxed latents, its own parameters detached (they follow f(b) alone); eta = 1 + rebar.eta and
 * T = temperature * exp(rebar.log_temperature), both tuned by autodiff.c's second pass.  [B, 1] */
static g_node *rebar_control_rows(lowering *L, prepared *P, g_node *const *z) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    const double T = m->est.temperature > 0 ? m->est.temperature : 1.0;
    g_node *y[VAE_MAX_LATENTS];
    L->detach_params = 1;
    g_node *eta = param_node(L, m->est.rebar_eta, 1), *logt = param_node(L, m->est.rebar_eta + 1, 1);
    for (int i = 0; i < m->nlatents; i++)
        y[i] = g_map2(g, U(VX_SIGMOID, BIN(VX_MUL, BIN(VX_DIV, IN(0), C(T)), U(VX_EXP, U(VX_NEG, IN(1))))), z[i], logt);
    g_node *f = decode_rows(L, P, y);
    L->detach_params = 0;
    return f ? g_map2(g, BIN(VX_MUL, BIN(VX_ADD, C(1), IN(1)), IN(0)), f, eta) : NULL;
}

/* relax(control: c) for Bernoulli latents (Grathwohl et al. 2018).  z = logits + L (L standard
 * logistic), b = 1[z > 0] a draw from q, z~ ~ p(z | b); with f = log p(x | b) (the KL is in closed
 * form, as for arm) the encoder's gradient is
 *   (f - c(z~)) grad log q(b | x) + grad c(z) - grad c(z~),
 * the surrogate's, with s = (sg(f) - c(z~)) (log q - sg(log q)) + c(z) - c(z~):
 *   f + s - sg(s) - beta KL,
 * whose value is the ELBO at b (the factor log q - sg(log q) is 0 in value and keeps c(z~)'s
 * dependence on c's parameters in the gradient).  c's parameters follow the gradient of the
 * encoder gradient's squared norm: g->variance_* marks them for autodiff.c's second pass.
 * rebar(temperature: T) is the same with the control rebar_control_rows. */
static int build_relax(lowering *L, int B) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    prepared P;
    if (prepare(L, &P, B, 1, 1)) return -1;
    g_node *z[VAE_MAX_LATENTS], *zt[VAE_MAX_LATENTS], *b[VAE_MAX_LATENTS], *logq = NULL;
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        g_node *phi = P.q[i].table, *u = g_new(g, G_NOISE, B, l->nvars), *v = g_new(g, G_NOISE, B, l->nvars);
        u->noise = NOISE_LOGISTIC;
        v->noise = NOISE_UNIFORM;
        u->stream = i;
        v->stream = VAE_MAX_LATENTS + i; /* a stream of its own, apart from every latent's */
        u->group = v->group = 1;
        u->label = vae_pool_printf(g->pool, "logistic %s", l->name);
        v->label = vae_pool_printf(g->pool, "v %s", l->name);
        z[i] = g_map2(g, BIN(VX_ADD, IN(0), IN(1)), phi, u);
        z[i]->label = vae_pool_printf(g->pool, "relaxed %s", l->name);
        b[i] = detached(g_map1(g, U(VX_STEP, IN(0)), z[i]));
        b[i]->label = l->name;
        zt[i] = g_map(g, conditional_relaxation(g), 3, (g_node *[]){phi, v, b[i]}, B, l->nvars);
        zt[i]->label = vae_pool_printf(g->pool, "relaxed %s given its draw", l->name);
        logq = sum_nodes(g, logq, discrete_logprob_at(g, l, P.q[i], b[i]));
    }
    g_node *(*control)(lowering *, prepared *, g_node *const *) =
        m->est.kind == EST_REBAR ? rebar_control_rows : control_rows;
    g_node *f = decode_rows(L, &P, b), *cz = f ? control(L, &P, z) : NULL, *czt = cz ? control(L, &P, zt) : NULL;
    if (!czt) return -1;
    g_node *s = g_map(g, BIN(VX_ADD, BIN(VX_MUL, BIN(VX_SUB, IN(0), IN(1)), BIN(VX_SUB, IN(2), IN(3))), BIN(VX_SUB, IN(4), IN(1))), 5,
                      (g_node *[]){detached(g_map1(g, IN(0), f)), czt, logq, detached(g_map1(g, IN(0), logq)), cz}, B, 1);
    g->out.recon_rows = f;
    g->out.kl_rows = P.kl;
    g->out.value_rows = g_map2(g, BIN(VX_SUB, IN(0), IN(1)), f, P.kl);
    g_node *sur = g_map(g, BIN(VX_SUB, BIN(VX_ADD, IN(0), BIN(VX_SUB, IN(1), IN(2))), BIN(VX_MUL, IN(4), IN(3))), 5,
                        (g_node *[]){f, s, detached(g_map1(g, IN(0), s)), P.kl, kl_weight(g)}, B, 1);
    set_objective(g, sur, 1.0);
    for (int p = 0; p < m->nparams; p++) {
        g->variance_of[p] = m->params[p].owner == NET_ENCODER;
        g->variance_tuned[p] = m->params[p].owner == NET_CONTROL;
    }
    return 0;
}

/* ---------------------------------------------------------------- local DisARM on the K-sample bound */

/* Each row's antithetic partner's log w, exactly (no difference of sums): rows 2k and 2k + 1 of
 * log w [R, 1] are a pair; the partner is the pair's maximum where the row is below it, else the
 * minimum.  Detached. */
static g_node *pair_partner(g_graph *g, g_node *logw) {
    g_node *lw = detached(g_map1(g, IN(0), logw));
    g_node *hi = detached(g_groupsum(g, lw, lw->rows / 2));
    g_node *neg_lo = detached(g_groupsum(g, g_map1(g, U(VX_NEG, IN(0)), lw), lw->rows / 2));
    hi->reduce_max = neg_lo->reduce_max = 1;
    g_node *partner = g_map(g, vx_select(g, BIN(VX_SUB, IN(1), IN(0)), IN(1), U(VX_NEG, IN(2))), 3,
                            (g_node *[]){lw, hi, neg_lo}, lw->rows, 1);
    partner->label = "partner's log w";
    return detached(partner);
}

/* disarm(samples: K) for Bernoulli latents: local DisARM on the K-sample bound (Dong, Mnih &
 * Tucker 2020, multi-sample bounds).  K antithetic pairs per example (rows [b][k][t]: pair k's b
 * at 2k, b~ at 2k + 1; 2K decoder rows); the b's are K independent draws from q, and so are the
 * b~'s, so each half's bound L = log (1/K) sum_k w(b_k), L~ = the same over the b~_k, is an
 * unbiased estimate of the K-sample bound, and so is the reported value (L + L~) / 2, whose
 * gradient through log w (decoder, prior, and the encoder's log q in w) is the pathwise part.
 * The encoder's logits phi follow, for each pair, DisARM applied to b_k with the other samples of
 * its half held (the local learning signal L - L[b_k <- b~_k], VIMCO's form with the partner in
 * place of the geometric mean), averaged with the same for b~_k:
 *   g = sum_k 1/4 ((L - L[b_k <- b~_k]) - (L~ - L~[b~_k <- b_k])) (b_k - b~_k) s(|phi|)
 * ((-1)^b~ 1[b != b~] = b - b~).  The halves are reduced over consecutive rows after one
 * transpose per example to [b][t][k], and the signals transposed back to pairs. */
static int build_local_disarm(lowering *L, int B, int K) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    prepared P;
    if (prepare(L, &P, B, 2 * K, 1)) return -1;
    g_node *tilde = antithetic_parity(g, 2 * B * K);
    g_node *z[VAE_MAX_LATENTS], *u[VAE_MAX_LATENTS], *b[VAE_MAX_LATENTS], *bt[VAE_MAX_LATENTS], *logq = NULL, *logp = NULL;
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        z[i] = antithetic_draws(g, l, P.q[i].table, i, B, K, tilde, &u[i], &b[i], &bt[i]);
        logq = sum_nodes(g, logq, discrete_logprob_at(g, l, P.q[i], z[i]));
        logp = sum_nodes(g, logp, discrete_logprob_at(g, l, P.p[i], z[i]));
    }
    g_node *ll = decode_draws(L, &P, z);
    if (!ll) return -1;
    g_node *logw = importance_logw(g, ll, logp, logq);
    g_node *halves = g_transpose(g, logw, K, 2, 2 * B * K, 1); /* [b][k][t] -> [b][t][k] */
    g_node *bound = g_map1(g, BIN(VX_SUB, BIN(VX_MUL, C(0.5), IN(0)), C(log((double)K))),
                           g_groupsum(g, group_logsumexp(g, halves, 2 * B), B));
    g_node *partner = detached(g_transpose(g, pair_partner(g, logw), K, 2, 2 * B * K, 1));
    g_node *signal = detached(g_transpose(g, swap_one_out(g, halves, partner, 2 * B, K), 2, K, 2 * B * K, 1));
    g_node *d = detached(g_groupsum(g, g_map2(g, BIN(VX_MUL, IN(0), BIN(VX_SUB, C(1), BIN(VX_MUL, C(2), IN(1)))), signal, tilde), B * K));
    d->label = "local signal of b minus b~";
    g_node *score = NULL;
    for (int i = 0; i < m->nlatents; i++) {
        g_node *phi = P.q[i].table;
        const vx_expr *abs_phi = BIN(VX_MAX, IN(1), U(VX_NEG, IN(1)));
        g_node *coef = g_map(g, BIN(VX_MUL, BIN(VX_MUL, BIN(VX_MUL, C(0.25), IN(0)), BIN(VX_SUB, IN(2), IN(3))), U(VX_SIGMOID, abs_phi)),
                             4, (g_node *[]){d, phi, b[i], bt[i]}, B * K, phi->cols);
        g_node *per_example = detached(g_groupsum(g, coef, B)); /* summed over the K pairs: [B, n] */
        score = sum_nodes(g, score, g_rowsum(g, g_map2(g, BIN(VX_MUL, IN(0), IN(1)), per_example, phi)));
    }
    g->out.recon_rows = ll;
    g->out.kl_rows = P.kl;
    g->out.value_rows = bound;
    g->value_name = "IWAE bound";
    set_objective(g, g_map(g, BIN(VX_ADD, IN(0), BIN(VX_SUB, IN(1), IN(2))), 3,
                           (g_node *[]){bound, score, detached(g_map1(g, IN(0), score))}, B, 1), 1.0);
    return 0;
}

/* ---------------------------------------------------------------- enumeration */

/* analytic: sum_j q(z_j|x) log p(x|z_j) - beta KL;  exact: log sum_j p(z_j) p(x|z_j). */
static int build_enumerated(lowering *L, int B, int with_encoder, int objective_is_exact) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    prepared P;
    if (prepare(L, &P, B, 1, with_encoder)) return -1;
    long J = 1;
    for (int i = 0; i < m->nlatents; i++) J *= (long)m->latents[i].joint_states;
    g_node *T[VAE_MAX_LATENTS], *logq = NULL, *logp = NULL;
    long stride = 1;
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        T[i] = latent_states(g, l, (int)J, stride);
        stride *= (long)l->joint_states;
        logp = sum_nodes(g, logp, discrete_logprob_states(g, l, P.p[i], T[i]));
        if (with_encoder) logq = sum_nodes(g, logq, discrete_logprob_states(g, l, P.q[i], T[i]));
    }
    /* the decoder, once per batch, on the J states */
    g_node *a, *b;
    if (lower_decoder(L, T, &a, &b)) return -1;
    g_node *ll = loglik_states(g, P.x, &m->likelihood, a, b, (int)J);
    /* exact log p(x) = log sum_j exp(log p(z_j) + log p(x|z_j)) */
    g_node *joint = g_map2(g, BIN(VX_ADD, IN(0), IN(1)), ll, logp);
    g->out.logpx_rows = row_logsumexp(g, joint);
    g->out.logpx_rows->label = "log p(x)";
    if (with_encoder) {
        g_node *recon = g_rowsum(g, g_map2(g, BIN(VX_MUL, U(VX_EXP, IN(0)), IN(1)), logq, ll));
        recon->label = "E_q log p(x|z)";
        g->out.recon_rows = recon;
        g->out.kl_rows = P.kl;
        g->out.value_rows = g_map2(g, BIN(VX_SUB, IN(0), IN(1)), recon, P.kl);
    }
    if (objective_is_exact || !with_encoder) {
        g->out.value_rows = g->out.logpx_rows;
        g->value_name = "log p(x)";
        set_objective(g, g->out.logpx_rows, 1.0);
    } else {
        g_node *sur = g_map(g, BIN(VX_SUB, IN(0), BIN(VX_MUL, IN(2), IN(1))), 3,
                            (g_node *[]){g->out.recon_rows, P.kl, kl_weight(g)}, B, 1);
        set_objective(g, sur, 1.0);
    }
    return 0;
}

static int enumerable(const vae_model *m) {
    double J = 1;
    for (int i = 0; i < m->nlatents; i++) {
        if (m->latents[i].kind == LATENT_NORMAL) return 0;
        J *= m->latents[i].joint_states;
    }
    return J <= 65536;
}

int has_encoders(const vae_model *m) {
    for (int i = 0; i < m->nlatents; i++)
        if (!m->latents[i].encoder) return 0;
    return 1;
}

/* Evaluation goes through the encoders only where training made them: with
 * prior or exact they keep their initial values, and an ELBO through them
 * would fall while the trained bound rises. */
static int encoders_trained(const vae_model *m) { return has_encoders(m) && m->est.trains_encoder; }

int g_model_enumerable(const vae_model *m) { return enumerable(m); }

/* The evaluation samples only where it cannot enumerate and has no encoder to sample from. */
static int eval_samples(const vae_model *m) { return enumerable(m) || has_encoders(m) ? 1 : m->est.samples; }

/* Whether every tensor of the graph fits VAE_MAX_VALUES (see graph.h): a batch's rows (its
 * examples times their samples, or the joint states an enumeration runs the
 * decoder on) times the most values a row holds (the checker's
 * max_example_values), and the [batch, joint states] table of an enumeration.
 * Checked before lowering so that no row count computed in int overflows. */

int g_batch_fits(const vae_model *m, g_purpose purpose, int batch, int samples, FILE *err) {
    long long S = purpose == GRAPH_EVAL ? eval_samples(m) : samples, J = 1;
    if (purpose == GRAPH_TRAIN) S *= vae_estimator_rows_per_sample(&m->est);
    int enumerated = (purpose == GRAPH_TRAIN || purpose == GRAPH_EVAL) && enumerable(m);
    if (enumerated)
        for (int i = 0; i < m->nlatents; i++) J *= (long long)m->latents[i].joint_states; /* at most 65536 */
    if (m->structured) { /* every row holds an example, an enumerated state and a sample */
        enumerated = 0;
        S = vae_size_mul(S > 1 ? S : 1, g_structured_states(m, purpose));
    }
    long long widest = m->max_example_values > 0 ? m->max_example_values : 1;
    long long rows = vae_size_mul(batch, S > 1 ? S : 1);
    char why[160] = "";
    if (vae_size_mul(rows, widest) > VAE_MAX_VALUES)
        snprintf(why, sizeof why, "its rows (examples times samples) times the widest row (%lld values) come to %.0f",
                 widest, (double)batch * (double)S * (double)widest);
    else if (enumerated && vae_size_mul(J, widest) > VAE_MAX_VALUES)
        snprintf(why, sizeof why, "the decoder's %lld rows (one per joint state) times the widest row (%lld values) "
                 "come to %.0f", J, widest, (double)J * (double)widest);
    else if (enumerated && vae_size_mul(batch, J) > VAE_MAX_VALUES)
        snprintf(why, sizeof why, "its table of examples by joint states comes to %.0f", (double)batch * (double)J);
    if (!*why || !err) return !*why;
    fprintf(err, "%s: error: a batch of %d example%s with %lld sample%s each is too large: %s values, more than the "
                 VAE_MAX_VALUES_WORDS " that vaec can index in one tensor%s\n",
            m->src->path, batch, batch == 1 ? "" : "s", S, S == 1 ? "" : "s", why,
            purpose == GRAPH_TRAIN && batch > 1 ? " (a smaller --batch would fit)" : "");
    return 0;
}

/* The graph of a training, evaluation or IWAE purpose of a version 0 model (g_build). */
int g_build_estimator(lowering *L, g_purpose purpose, int batch, int samples) {
    const vae_model *m = L->g->model;
    int enc = encoders_trained(m);
    if (purpose == GRAPH_EVAL) { /* the ELBO without sampling noise where the latents can be enumerated */
        int rc;
        if (enumerable(m))
            rc = build_enumerated(L, batch, enc, !enc);
        else if (enc)
            rc = build_sampled(L, SAMPLE_REPARAM, batch, 1);
        else
            rc = build_sampled(L, SAMPLE_PRIOR, batch, m->est.samples);
        L->g->samples = eval_samples(m);
        return rc;
    }
    if (purpose == GRAPH_IWAE) return build_sampled(L, SAMPLE_IWAE_EVAL, batch, samples);
    if (m->structured) return -1; /* structured.c serves every other purpose */
    switch (m->est.kind) {
    case EST_REPARAM: return build_sampled(L, SAMPLE_REPARAM, batch, samples);
    case EST_ANALYTIC: return build_enumerated(L, batch, 1, 0);
    case EST_EXACT: return build_enumerated(L, batch, 0, 1);
    case EST_UNIFORM: return build_sampled(L, SAMPLE_UNIFORM, batch, samples);
    case EST_REINFORCE: return build_sampled(L, SAMPLE_REINFORCE, batch, samples);
    case EST_PRIOR: return build_sampled(L, SAMPLE_PRIOR, batch, samples);
    case EST_IWAE: return build_iwae(L, batch, samples);
    case EST_VIMCO: return build_vimco(L, batch, samples);
    case EST_GUMBEL: return build_gumbel(L, batch, samples);
    case EST_ARM: return build_antithetic(L, batch, 0);
    case EST_DISARM: return build_antithetic(L, batch, 1);
    case EST_RENYI: return build_iwae(L, batch, samples);
    case EST_RWS: return build_sampled(L, SAMPLE_RWS, batch, samples);
    case EST_NVIL: return build_sampled(L, SAMPLE_NVIL, batch, samples);
    case EST_SUM_AND_SAMPLE: return build_sum_and_sample(L, batch);
    case EST_RELAX:
    case EST_REBAR: return build_relax(L, batch);
    case EST_LOCAL_DISARM: return build_local_disarm(L, batch, samples);
    case EST_ELBO: break; /* structured models: returned above */
    } /* no default: a kind of parser/model.h without its builder here fails the build (-Werror=switch) */
    return -1;
}
