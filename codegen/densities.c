/* The densities, KL terms and reductions the estimators share (densities.h). */
#include "codegen/densities.h"

#include <math.h>

/* A node whose gradient is not followed (stop-gradient). */
g_node *detached(g_node *n) {
    n->needs_grad = 0;
    n->stop = 1;
    return n;
}

g_node *sum_nodes(g_graph *g, g_node *acc, g_node *n) {
    if (!acc) return n;
    return g_map2(g, BIN(VX_ADD, IN(0), IN(1)), acc, n);
}

g_node *constant(g_graph *g, double v, int rows, int cols) {
    return detached(g_map(g, C(v), 0, NULL, rows, cols));
}

/* Row-wise maximum over groups of columns, without gradient. */
g_node *rowmax(g_graph *g, g_node *a, int cols) {
    g_node *m = g_colgroupsum(g, a, cols);
    m->reduce_max = 1;
    return detached(m);
}

/* log sum_c exp(a[r, c]) over each row, the maximum subtracted: [R, C] -> [R, 1]. */
g_node *row_logsumexp(g_graph *g, g_node *a) {
    g_node *m = rowmax(g, a, 1);
    g_node *s = g_rowsum(g, g_map2(g, U(VX_EXP, BIN(VX_SUB, IN(0), IN(1))), a, m));
    return g_map2(g, BIN(VX_ADD, IN(0), U(VX_LOG, IN(1))), m, s);
}

/* log sum_s exp(a[b*S + s]) over the S rows of each example: [B*S, 1] -> [B, 1]. */
g_node *group_logsumexp(g_graph *g, g_node *a, int B) {
    g_node *m = g_groupsum(g, a, B);
    m->reduce_max = 1;
    detached(m);
    g_node *s = g_groupsum(g, g_map2(g, U(VX_EXP, BIN(VX_SUB, IN(0), IN(1))), a, m), B);
    return g_map2(g, BIN(VX_ADD, IN(0), U(VX_LOG, IN(1))), m, s);
}

/* A node with one row per example: a network output that ignores x (rows 1)
 * is copied to every row, since per-example quantities are read by row. */
g_node *per_example(g_graph *g, g_node *a, int B) {
    if (a->rows == B) return a;
    g_node *r = g_map1(g, IN(0), a);
    r->rows = r->dom_rows = B;
    return r;
}

/* Mean over rows of a [R, 1] column, times w: [1, 1]. */
g_node *mean_times(g_graph *g, g_node *a, double w) {
    return g_map1(g, BIN(VX_MUL, C(w / a->rows), IN(0)), g_groupsum(g, a, 1));
}

/* The KL weight in force: beta, less what KL warm-up withholds at this step
 * (read from the step context at run time). [1, 1], no gradient. */
g_node *kl_weight(g_graph *g) {
    g_node *w = detached(g_new(g, G_KLWEIGHT, 1, 1));
    w->value = g->model->est.beta;
    w->label = "KL weight";
    return w;
}

/* ---------------------------------------------------------------- the latents' densities */


logprob discrete_logprob(g_graph *g, const vae_latent *l, g_node *arg, int is_probs, double fixed_p) {
    logprob r = {0};
    if (l->kind == LATENT_CATEGORICAL) {
        if (!arg) {
            r.constant = -log((double)l->states);
            return r;
        }
        g_node *m = rowmax(g, arg, l->nvars);
        g_node *s = g_colgroupsum(g, g_map2(g, U(VX_EXP, BIN(VX_SUB, IN(0), IN(1))), arg, m), l->nvars);
        r.table = g_map(g, BIN(VX_SUB, BIN(VX_SUB, IN(0), IN(1)), U(VX_LOG, IN(2))), 3,
                        (g_node *[]){arg, m, s}, arg->rows, arg->cols);
        r.table->label = vae_pool_printf(g->pool, "log q(%s)", l->name);
        return r;
    }
    if (!arg) {
        r.constant = log(fixed_p / (1 - fixed_p));
        return r;
    }
    if (!is_probs) {
        r.table = arg;
        return r;
    }
    const vx_expr *lo = C(1e-7);
    r.table = g_map1(g, BIN(VX_SUB, U(VX_LOG, BIN(VX_MAX, IN(0), lo)), U(VX_LOG, BIN(VX_MAX, BIN(VX_SUB, C(1), IN(0)), lo))),
                     arg);
    return r;
}

/* The node of a logprob table, or a [rows, cols] constant. */
g_node *table_or_constant(g_graph *g, logprob p, int cols) {
    return p.table ? p.table : constant(g, p.constant, 1, cols);
}

/* KL(q || p) per example for a discrete latent, in closed form: [B, 1]. */
g_node *discrete_kl(g_graph *g, const vae_latent *l, logprob q, logprob p, int B) {
    g_node *qt = q.table, *pt = table_or_constant(g, p, qt->cols);
    const vx_expr *e;
    if (l->kind == LATENT_CATEGORICAL) /* sum q (log q - log p) */
        e = BIN(VX_MUL, U(VX_EXP, IN(0)), BIN(VX_SUB, IN(0), IN(1)));
    else { /* per unit: s(l) (log s(l) - log s(m)) + s(-l) (log s(-l) - log s(-m)), log s(x) = -softplus(-x) */
        const vx_expr *ql = IN(0), *pl = IN(1);
        const vx_expr *q1 = U(VX_SIGMOID, ql), *q0 = BIN(VX_SUB, C(1), q1);
        const vx_expr *lq1 = U(VX_NEG, U(VX_SOFTPLUS, U(VX_NEG, ql))), *lq0 = U(VX_NEG, U(VX_SOFTPLUS, ql));
        const vx_expr *lp1 = U(VX_NEG, U(VX_SOFTPLUS, U(VX_NEG, pl))), *lp0 = U(VX_NEG, U(VX_SOFTPLUS, pl));
        e = BIN(VX_ADD, BIN(VX_MUL, q1, BIN(VX_SUB, lq1, lp1)), BIN(VX_MUL, q0, BIN(VX_SUB, lq0, lp0)));
    }
    g_node *elem = g_map(g, e, 2, (g_node *[]){qt, pt}, B, qt->cols);
    g_node *kl = g_rowsum(g, elem);
    kl->label = vae_pool_printf(g->pool, "KL %s", l->name);
    return kl;
}

/* log of a discrete density at given values z (one-hot or 0/1 rows): [rows(z), 1].
 * The table may have fewer rows (the samples of one example share it). */
g_node *discrete_logprob_at(g_graph *g, const vae_latent *l, logprob p, g_node *z) {
    if (!p.table) {
        if (l->kind == LATENT_CATEGORICAL) return constant(g, l->nvars * p.constant, z->rows, 1);
        p.table = constant(g, p.constant, 1, z->cols); /* a constant logit per unit */
    }
    const vx_expr *e = l->kind == LATENT_CATEGORICAL ? BIN(VX_MUL, IN(0), IN(1))
                                                     : BIN(VX_SUB, BIN(VX_MUL, IN(0), IN(1)), U(VX_SOFTPLUS, IN(1)));
    return g_rowsum(g, g_map(g, e, 2, (g_node *[]){z, p.table}, z->rows, z->cols));
}

/* log of a discrete density at every enumerated state: [rows(table), J]
 * from a table [R, width] and the states T [J, width]. */
g_node *discrete_logprob_states(g_graph *g, const vae_latent *l, logprob p, g_node *T) {
    if (!p.table) {
        if (l->kind == LATENT_CATEGORICAL) return constant(g, l->nvars * p.constant, 1, T->rows);
        p.table = constant(g, p.constant, 1, T->cols);
    }
    g_node *dot = g_matmul(g, p.table, 0, T, 1); /* [R, J] */
    if (l->kind == LATENT_CATEGORICAL) return dot;
    /* bernoulli: z . l - sum softplus(l) */
    g_node *sp = g_rowsum(g, g_map1(g, U(VX_SOFTPLUS, IN(0)), p.table));
    return g_map2(g, BIN(VX_SUB, IN(0), IN(1)), dot, sp);
}

void set_objective(g_graph *g, g_node *per_example_surrogate, double weight) {
    g->out.objective = mean_times(g, per_example_surrogate, weight);
    g->out.objective->label = "objective";
}

/* log q(z | x) - log p(z) of a normal latent at samples z (IWAE weights, REINFORCE's score). */
g_node *normal_logpdf(g_graph *g, g_node *z, g_node *mean, g_node *spread, int is_scale) {
    const vx_expr *d = BIN(VX_SUB, IN(0), IN(1));
    const vx_expr *e = is_scale
                           ? BIN(VX_SUB, BIN(VX_MUL, C(-0.5), BIN(VX_MUL, BIN(VX_DIV, d, IN(2)), BIN(VX_DIV, d, IN(2)))),
                                 BIN(VX_ADD, U(VX_LOG, IN(2)), C(0.5 * LOG_2PI)))
                           : BIN(VX_MUL, C(-0.5), BIN(VX_ADD, BIN(VX_ADD, BIN(VX_MUL, BIN(VX_MUL, d, d), U(VX_EXP, U(VX_NEG, IN(2)))), IN(2)),
                                                    C(LOG_2PI)));
    return g_rowsum(g, g_map(g, e, 3, (g_node *[]){z, mean, spread}, z->rows, z->cols));
}

g_node *normal_logq(g_graph *g, const vae_latent *l, g_node *mean, g_node *spread, g_node *z) {
    return normal_logpdf(g, z, mean, spread, l->posterior.b_is_scale);
}

g_node *normal_logp(g_graph *g, g_node *z) {
    return g_rowsum(g, g_map1(g, BIN(VX_MUL, C(-0.5), BIN(VX_ADD, BIN(VX_MUL, IN(0), IN(0)), C(LOG_2PI))), z));
}

/* log p(x | z_j) for every example and joint state: [B, J], from decoder
 * outputs a, b [J, D] (or [1, D]), as matrix products:
 *   sum_d x^2 A + x Bm + C  =  x^2 A^T + x Bm^T + 1 C^T. */
g_node *loglik_states(g_graph *g, g_node *x, const vae_dist *d, g_node *a, g_node *b, int J) {
    const int D = x->cols;
    g_node *ones = constant(g, 1, 1, D);
    g_node *Bm, *Cc, *A = NULL;
    if (d->kind == DIST_BERNOULLI) {
        if (!d->a_is_probs) { /* x l - softplus(l) */
            Bm = a;
            Cc = g_map1(g, U(VX_NEG, U(VX_SOFTPLUS, IN(0))), a);
        } else { /* x (log p - log(1 - p)) + log(1 - p) */
            const vx_expr *lo = C(1e-7);
            const vx_expr *lp = U(VX_LOG, BIN(VX_MAX, IN(0), lo)), *lq = U(VX_LOG, BIN(VX_MAX, BIN(VX_SUB, C(1), IN(0)), lo));
            Bm = g_map1(g, BIN(VX_SUB, lp, lq), a);
            Cc = g_map1(g, lq, a);
        }
    } else { /* -0.5 (x - m)^2 / v - 0.5 log v - 0.5 log 2 pi, v = exp(lv) or s^2 */
        const vx_expr *inv = d->b_is_scale ? BIN(VX_DIV, C(1), BIN(VX_MUL, IN(1), IN(1))) : U(VX_EXP, U(VX_NEG, IN(1)));
        const vx_expr *logv = d->b_is_scale ? BIN(VX_MUL, C(2), U(VX_LOG, IN(1))) : IN(1);
        A = g_map2(g, BIN(VX_MUL, C(-0.5), inv), a, b);
        Bm = g_map2(g, BIN(VX_MUL, IN(0), inv), a, b);
        Cc = g_map2(g, BIN(VX_MUL, C(-0.5), BIN(VX_ADD, BIN(VX_ADD, BIN(VX_MUL, BIN(VX_MUL, IN(0), IN(0)), inv), logv), C(LOG_2PI))),
                    a, b);
    }
    g_node *xb = g_matmul(g, x, 0, Bm, 1);   /* [B, J] (or [B, 1]) */
    g_node *c1 = g_matmul(g, ones, 0, Cc, 1); /* [1, J] */
    g_node *ll;
    if (A) {
        g_node *x2 = detached(g_map1(g, BIN(VX_MUL, IN(0), IN(0)), x));
        g_node *xa = g_matmul(g, x2, 0, A, 1);
        ll = g_map(g, BIN(VX_ADD, BIN(VX_ADD, IN(0), IN(1)), IN(2)), 3, (g_node *[]){xb, xa, c1}, x->rows, J);
    } else
        ll = g_map(g, BIN(VX_ADD, IN(0), IN(1)), 2, (g_node *[]){xb, c1}, x->rows, J);
    ll->label = "log p(x|z_j)";
    return ll;
}


/* The local learning signals L - L_-k of a multi-sample bound L = log sum_j w_j over the K
 * consecutive rows of each of B groups (log w [B*K, 1]; the log K of the mean cancels), L_-k with
 * w_k replaced by exp(replacement_k) [B*K, 1], or, where replacement is NULL, by the geometric
 * mean of the other weights (VIMCO; estimators.c build_vimco has the formula).  Detached. */
g_node *swap_one_out(g_graph *g, g_node *logw, g_node *replacement, int B, int K) {
    /* Duplicate samples give equal weights, so the maximum is often shared: the
     * sum of the other weights is computed from the weights below the maximum
     * (s_low) and the count of maxima, never as a difference that can cancel. */
    g_node *lw = detached(g_map1(g, IN(0), logw));
    g_node *mx = g_groupsum(g, lw, B);
    mx->reduce_max = 1;
    detached(mx);
    const vx_expr *below = BIN(VX_SUB, IN(1), IN(0)); /* > 0: not a maximum */
    g_node *s_low = detached(g_groupsum(g, g_map2(g, vx_select(g, below, U(VX_EXP, BIN(VX_SUB, IN(0), IN(1))), C(0)), lw, mx), B));
    g_node *count = detached(g_groupsum(g, g_map2(g, vx_select(g, below, C(0), C(1)), lw, mx), B));
    g_node *fifth = replacement ? replacement : detached(g_groupsum(g, lw, B)); /* or the sum of log w */
    /* inputs: $0 log w_k, $1 M, $2 s_low, $3 count of maxima, $4 the replacement's log or the sum of log w */
    const vx_expr *s_all = BIN(VX_ADD, IN(2), IN(3));
    const vx_expr *others = vx_select(g, below, BIN(VX_SUB, s_all, U(VX_EXP, BIN(VX_SUB, IN(0), IN(1)))),
                                      BIN(VX_SUB, s_all, C(1)));
    const vx_expr *a = BIN(VX_ADD, IN(1), U(VX_LOG, others)); /* log sum_{j != k} w_j (maybe -inf) */
    const vx_expr *r = replacement ? IN(4) : BIN(VX_DIV, BIN(VX_SUB, IN(4), IN(0)), C(K - 1)); /* log geometric mean of the others */
    const vx_expr *top = BIN(VX_MAX, a, r);
    const vx_expr *l_minus_k = BIN(VX_ADD, top, U(VX_LOG, BIN(VX_ADD, U(VX_EXP, BIN(VX_SUB, a, top)), U(VX_EXP, BIN(VX_SUB, r, top)))));
    g_node *signal = detached(g_map(g, BIN(VX_SUB, BIN(VX_ADD, IN(1), U(VX_LOG, s_all)), l_minus_k), 5,
                                    (g_node *[]){lw, mx, s_low, count, fifth}, B * K, 1));
    signal->label = "L - L_-k";
    return signal;
}

/* VIMCO's score term for log w [B*K, 1] and log q at the samples (Mnih & Rezende 2016):
 * sum_k sg(L - L_-k) log q(z_k | x) per example [B, 1]. */
g_node *vimco_score(g_graph *g, g_node *logw, g_node *logq, int B, int K) {
    g_node *signal = swap_one_out(g, logw, NULL, B, K);
    return g_groupsum(g, g_map2(g, BIN(VX_MUL, IN(0), IN(1)), signal, logq), B);
}

void binary_concrete(g_graph *g, g_node *logits, g_node *noise, double T, int hard, g_node **h, g_node **y) {
    g_node *a = g_map2(g, BIN(VX_DIV, BIN(VX_ADD, IN(0), IN(1)), C(T)), logits, noise);
    *h = detached(g_map1(g, U(VX_STEP, IN(0)), a));
    if (!y) return;
    *y = g_map1(g, U(VX_SIGMOID, IN(0)), a);
    if (hard) /* straight through: the value of h, the gradient of the relaxation */
        *y = g_map(g, BIN(VX_ADD, IN(0), BIN(VX_SUB, IN(1), IN(2))), 3, (g_node *[]){*h, *y, detached(g_map1(g, IN(0), *y))},
                   a->rows, a->cols);
}

/* ---------------------------------------------------------------- the data's likelihood */

/* Elementwise log-likelihood of the data under the decoder's distribution;
 * inputs: $0 = data, $1 = first parameter, $2 = second. */
const vx_expr *loglik_expr(g_graph *g, const vae_dist *d) {
    const vx_expr *x = vx_in(g, 0), *p = vx_in(g, 1), *q = vx_in(g, 2);
    if (d->kind == DIST_BERNOULLI) {
        if (!d->a_is_probs) /* x * l - softplus(l) */
            return vx_bin(g, VX_SUB, vx_bin(g, VX_MUL, x, p), vx_un(g, VX_SOFTPLUS, p));
        /* x log p + (1 - x) log(1 - p), p kept away from 0 and 1 */
        const vx_expr *lo = vx_const(g, 1e-7);
        const vx_expr *lp = vx_un(g, VX_LOG, vx_bin(g, VX_MAX, p, lo));
        const vx_expr *lq = vx_un(g, VX_LOG, vx_bin(g, VX_MAX, vx_bin(g, VX_SUB, vx_const(g, 1), p), lo));
        return vx_bin(g, VX_ADD, vx_bin(g, VX_MUL, x, lp), vx_bin(g, VX_MUL, vx_bin(g, VX_SUB, vx_const(g, 1), x), lq));
    }
    const vx_expr *diff = vx_bin(g, VX_SUB, x, p);
    if (!d->b_is_scale) /* -0.5 (log 2pi + lv + (x - m)^2 exp(-lv)) */
        return vx_bin(g, VX_MUL, vx_const(g, -0.5),
                      vx_bin(g, VX_ADD, vx_bin(g, VX_ADD, vx_const(g, LOG_2PI), q),
                             vx_bin(g, VX_MUL, vx_bin(g, VX_MUL, diff, diff), vx_un(g, VX_EXP, vx_un(g, VX_NEG, q)))));
    /* -log s - 0.5 log 2pi - 0.5 ((x - m) / s)^2 */
    const vx_expr *u = vx_bin(g, VX_DIV, diff, q);
    return vx_bin(g, VX_SUB, vx_bin(g, VX_SUB, vx_un(g, VX_NEG, vx_un(g, VX_LOG, q)), vx_const(g, 0.5 * LOG_2PI)),
                  vx_bin(g, VX_MUL, vx_const(g, 0.5), vx_bin(g, VX_MUL, u, u)));
}

/* log p(x | z) per row of the decoder's output: [rows, 1]. */
g_node *loglik_rows(g_graph *g, g_node *x, const vae_dist *d, g_node *a, g_node *b, int rows) {
    g_node *in[3] = {x, a, b};
    g_node *elem = g_map(g, loglik_expr(g, d), b ? 3 : 2, in, rows, x->cols);
    elem->label = "log p(x|z)";
    g_node *r = g_rowsum(g, elem);
    r->label = "log p(x|z)";
    return r;
}

/* [rows, 1]: r % n, each row's index within its group of n (a runtime table of exact small integers). */
g_node *row_index(g_graph *g, int rows, int n) {
    g_node *t = detached(g_new(g, G_STATES, rows, 1));
    t->nvars = 1;
    t->states = n;
    t->bernoulli = 1; /* the digit itself, not one-hot */
    t->stride = 1;
    t->local = n;
    t->label = "row index";
    return t;
}

/* The antithetic pairs' parity column (arm, disarm): 0 on even rows (b), 1 on odd rows (b~). */
g_node *antithetic_parity(g_graph *g, int rows) {
    g_node *t = row_index(g, rows, 2);
    t->label = "antithetic";
    return t;
}

/* Latent l's column of the table of every joint state of the model's discrete latents: [rows,
 * width], its own states changing every `stride` rows (runtime vr_states). */
g_node *latent_states(g_graph *g, const vae_latent *l, int rows, long stride) {
    g_node *T = detached(g_new(g, G_STATES, rows, l->width));
    T->nvars = l->nvars;
    T->states = l->kind == LATENT_CATEGORICAL ? l->states : 2;
    T->bernoulli = l->kind == LATENT_BERNOULLI;
    T->stride = stride;
    T->local = (long)l->joint_states;
    T->label = vae_pool_printf(g->pool, "states of %s", l->name);
    return T;
}
