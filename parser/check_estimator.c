/* The checker's version 0 estimators: the table of what each applies to, their options, and
 * the rows they make (version 1's elbo(...) is in check_elbo.c). */
#include "parser/check_internal.h"

#include "parser/limits.h"
#include "parser/settings.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- estimator */

typedef struct {
    const char *name;
    vae_estimator_kind kind;
    const char *options[5];
    unsigned latents;  /* bitmask of vae_latent_kind it applies to */
    int enumerates;    /* needs every joint state */
    int needs_encoder;
    int per_latent;    /* a latent's own estimator in elbo(NAME: ..., ...) (check_elbo.c) */
    /* The objective as vaec check writes it (vae_print_objective expands it): lines; {x} the
     * data, {z} the latents, {S} the samples, {T} the temperature, {B} the baseline network,
     * {K} sum_and_sample's k, {C} the control network, {beta} "F * " when beta is not 1, {avg} "(1/S) sum_{s=1..S} " and {s} "_s" when S > 1;
     * {?COND:text} only when COND (many, dreg, stl, closed (not stl), hard, soft, net, loo, plain;
     * cat and bern: the @ line's latent is categorical, Bernoulli) holds; a line that
     * starts with @ is written once per latent, with {zi} its name, {sd} and {kl} its spread
     * and closed-form KL.  docs/estimators.md has the same formulas. */
    const char *formula;
} estimator_info;

#define ANY_LATENT ((1u << LATENT_NORMAL) | (1u << LATENT_CATEGORICAL) | (1u << LATENT_BERNOULLI))
#define DISCRETE ((1u << LATENT_CATEGORICAL) | (1u << LATENT_BERNOULLI))

#define KL_Q_P "KL(q({z} | {x}) || p({z}))"

static const estimator_info ESTIMATORS[] = {
    {"analytic", EST_ANALYTIC, {"beta"}, DISCRETE, 1, 1, 1,
     "ELBO({x}) = sum_{z} q({z} | {x}) log p({x} | {z}) - {beta}" KL_Q_P "\n"
     "every joint state of {z} summed (the decoder runs once per state); KL in closed form"},
    {"uniform", EST_UNIFORM, {"samples", "beta"}, DISCRETE, 1, 1, 0,
     "ELBO({x}) ~= {avg}J q({z}{s} | {x}) log p({x} | {z}{s}) - {beta}" KL_Q_P "\n"
     "{z}{s} drawn uniformly from the J joint states of {z}; KL in closed form"},
    {"reinforce", EST_REINFORCE, {"samples", "baseline", "beta"}, ANY_LATENT, 0, 1, 1,
     "ELBO({x}) ~= {avg}log p({x} | {z}{s}) - {beta}" KL_Q_P ",  {z}{s} ~ q({z} | {x})\n"
     "gradient of q: {avg}(log p({x} | {z}{s}) - c{s}) grad log q({z}{s} | {x})   (score function)\n"
     "{?plain:c = 0 (no baseline)}{?net:c = log p_{B}({x}), the baseline network {B}, trained by maximum likelihood "
     "in the same step}{?loo:c{s} = the mean of log p({x} | {z}_t) over the example's other samples t != s (leave one "
     "out)}\n"
     "KL in closed form"},
    {"reparam", EST_REPARAM, {"samples", "gradient", "beta"}, 1u << LATENT_NORMAL, 0, 1, 1,
     "{?closed:ELBO({x}) = {avg}log p({x} | {z}{s}) - {beta}" KL_Q_P "}"
     "{?stl:ELBO({x}) ~= {avg}log p({x} | {z}{s}) + {beta}(log p({z}{s}) - log q({z}{s} | {x}))   (the KL sampled)}\n"
     "@{zi}{s} = mean + {sd} * eps{s},  eps{s} ~ normal(0, 1)   (reparameterised)\n"
     "@{?closed:KL = {kl}   (closed form)}\n"
     "{?stl:gradient: stl: log q's parameters stopped, so the encoder's gradient flows through {z}{s} only (the score "
     "term dropped: sticking the landing)}"},
    {"iwae", EST_IWAE, {"samples", "gradient", "beta"}, 1u << LATENT_NORMAL, 0, 1, 0,
     "IWAE({x}) = log (1/{S}) sum_{k=1..{S}} w_k,  log w_k = log p({x} | {z}_k) + {beta}(log p({z}_k) - log q({z}_k | "
     "{x}))\n"
     "@{zi}_k = mean + {sd} * eps_k,  eps_k ~ normal(0, 1)   (reparameterised)\n"
     "{?stl:gradient: stl: log q's parameters stopped, the encoder's gradient through {z}_k only (biased for the IWAE "
     "bound; docs/estimators.md)}"
     "{?dreg:gradient: doubly reparameterised (DReG): the encoder follows sum_k w~_k^2 d log w_k / d z_k, the decoder "
     "sum_k w~_k grad log p({x}, {z}_k); w~_k = w_k / sum_j w_j}"},
    {"prior", EST_PRIOR, {"samples", "beta"}, ANY_LATENT, 0, 0, 0,
     "log p({x}) >= log (1/{S}) sum_{k=1..{S}} p({x} | {z}_k),  {z}_k ~ p({z})   (the fixed prior; no encoder)"},
    {"exact", EST_EXACT, {"beta"}, DISCRETE, 1, 0, 0,
     "log p({x}) = log sum_{z} p({z}) p({x} | {z})   (every joint state of {z}; no encoder)"},
    {"vimco", EST_VIMCO, {"samples", "beta"}, DISCRETE, 0, 1, 0,
     "IWAE({x}) = log (1/{S}) sum_{k=1..{S}} w_k,  log w_k = log p({x} | {z}_k) + {beta}(log p({z}_k) - log q({z}_k | "
     "{x})),  {z}_k ~ q({z} | {x})\n"
     "gradient of q: sum_k (IWAE - IWAE_-k) grad log q({z}_k | {x}), IWAE_-k with w_k replaced by the geometric mean of "
     "the other weights (leave-one-out control variates)"},
    {"gumbel", EST_GUMBEL, {"samples", "temperature", "hard", "beta"}, DISCRETE, 0, 1, 1,
     "ELBO({x}) ~= {avg}log p({x} | y{s}) - {beta}" KL_Q_P "\n"
     "@{?cat:y{s} = softmax((logits + g{s}) / {T}) per variable,  g{s} ~ Gumbel(0, 1)   (the relaxed {zi}; KL in closed "
     "form)}{?bern:y{s} = sigmoid((logits + log u{s} - log(1 - u{s})) / {T}),  u{s} ~ uniform(0, 1)   (binary concrete: "
     "the relaxed {zi}; KL in closed form)}\n"
     "@{?soft:the reported ELBO is at the discrete samples {?cat:onehot(argmax y{s})}{?bern:1[y{s} > 1/2]}}"
     "{?hard:straight-through: the decoder sees {?cat:onehot(argmax y{s})}{?bern:1[y{s} > 1/2]}, the gradient is "
     "y{s}'s}"},
    {"arm", EST_ARM, {"beta"}, 1u << LATENT_BERNOULLI, 0, 1, 1,
     "ELBO({x}) ~= (1/2) (log p({x} | b1) + log p({x} | b2)) - {beta}" KL_Q_P "\n"
     "b1 = 1[u > sigmoid(-logits)],  b2 = 1[u < sigmoid(logits)],  u ~ uniform(0, 1) per variable   (one pair per "
     "example, in one product)\n"
     "gradient of q's logits: (log p({x} | b1) - log p({x} | b2)) (u - 1/2)   (ARM; KL in closed form)"},
    {"disarm", EST_DISARM, {"beta"}, 1u << LATENT_BERNOULLI, 0, 1, 1,
     "ELBO({x}) ~= (1/2) (log p({x} | b) + log p({x} | b~)) - {beta}" KL_Q_P "\n"
     "b = 1[u < sigmoid(logits)],  b~ = 1[1 - u < sigmoid(logits)],  u ~ uniform(0, 1) per variable   (antithetic, "
     "in one product)\n"
     "gradient of q's logits_i: (1/2) (log p({x} | b) - log p({x} | b~)) (-1)^b~_i 1[b_i != b~_i] "
     "sigmoid(|logits_i|)   (DisARM; KL in closed form)"},
    {"renyi", EST_RENYI, {"samples", "alpha", "beta"}, 1u << LATENT_NORMAL, 0, 1, 0,
     "{?alphan:Renyi({x}) = 1/(1 - alpha) log (1/{S}) sum_{k=1..{S}} w_k^(1 - alpha),  alpha = {A}}"
     "{?alpha1:Renyi({x}) = (1/{S}) sum_{k=1..{S}} log w_k   (alpha = 1: the ELBO, its KL sampled)},  "
     "log w_k = log p({x} | {z}_k) + {beta}(log p({z}_k) - log q({z}_k | {x}))\n"
     "@{zi}_k = mean + {sd} * eps_k,  eps_k ~ normal(0, 1)   (reparameterised)\n"
     "alpha 0 is the IWAE bound, alpha 1 the ELBO; the gradient is the bound's own (Li & Turner 2016)"},
    {"rws", EST_RWS, {"samples", "beta"}, ANY_LATENT, 0, 1, 0,
     "IWAE({x}) = log (1/{S}) sum_{k=1..{S}} w_k,  log w_k = log p({x} | {z}_k) + {beta}(log p({z}_k) - log q({z}_k | "
     "{x})),  {z}_k ~ q({z} | {x}) held fixed\n"
     "gradient of p (wake): sum_k w~_k grad log p({x}, {z}_k);  gradient of q (wake phase): sum_k w~_k grad log "
     "q({z}_k | {x});  w~_k = w_k / sum_j w_j   (reweighted wake-sleep, Bornschein & Bengio 2015; biased for q)"},
    {"nvil", EST_NVIL, {"baseline", "samples", "beta"}, ANY_LATENT, 0, 1, 0,
     "ELBO({x}) ~= {avg}log p({x} | {z}{s}) - {beta}" KL_Q_P ",  {z}{s} ~ q({z} | {x})\n"
     "gradient of q: {avg}(l{s} - c) / max(1, sqrt(v)) grad log q({z}{s} | {x}),  l{s} = log p({x} | {z}{s}) - "
     "{B}({x})   (NVIL)\n"
     "c, v: running mean and variance of l over the batches before this one (each step: c = 0.8 c + 0.2 mean(l), "
     "v = 0.8 v + 0.2 var(l); saved with the parameters)\n"
     "{B} trained by least squares on l - c: its gradient {avg}(l{s} - c) / max(1, sqrt(v)) grad {B}({x}); "
     "KL in closed form"},
    {"sum_and_sample", EST_SUM_AND_SAMPLE, {"k", "beta"}, 1u << LATENT_CATEGORICAL, 0, 1, 0,
     "ELBO({x}) ~= sum_{j in top_{K}} q(j | {x}) log p({x} | j) + (1 - q(top_{K} | {x})) log p({x} | {z}_r) - {beta}"
     KL_Q_P "\n"
     "top_{K}: the {K} most probable joint states of {z} under q (ties to the lower index); {z}_r ~ q({z} | {x}) "
     "restricted to the other states   (Rao-Blackwellised: unbiased)\n"
     "gradient of q: sum_{j in top_{K}} log p({x} | j) grad q(j | {x}) + (1 - q(top_{K} | {x})) log p({x} | {z}_r) "
     "grad log q({z}_r | {x}); KL in closed form"},
    {"relax", EST_RELAX, {"control", "beta"}, 1u << LATENT_BERNOULLI, 0, 1, 0,
     "ELBO({x}) ~= log p({x} | b) - {beta}" KL_Q_P "\n"
     "@z = logits + log u - log(1 - u),  b = 1[z > 0] (a draw of {zi}),  z~ = logits + log v~ - log(1 - v~),  v~ = "
     "1 - theta + v theta where b = 1, v (1 - theta) where b = 0,  theta = sigmoid(logits),  u, v ~ uniform(0, 1)   "
     "(z~ ~ p(z | b))\n"
     "gradient of q: (log p({x} | b) - {C}(z~)) grad log q(b | {x}) + grad {C}(z) - grad {C}(z~)   (RELAX; KL in "
     "closed form)\n"
     "the control network {C} follows the gradient of the encoder gradient's squared norm (its variance), the "
     "backward pass differentiated at compile time"},
    {"rebar", EST_REBAR, {"temperature", "beta"}, 1u << LATENT_BERNOULLI, 0, 1, 0,
     "ELBO({x}) ~= log p({x} | b) - {beta}" KL_Q_P "\n"
     "@z = logits + log u - log(1 - u),  b = 1[z > 0] (a draw of {zi}),  z~ = logits + log v~ - log(1 - v~),  v~ = "
     "1 - theta + v theta where b = 1, v (1 - theta) where b = 0,  theta = sigmoid(logits),  u, v ~ uniform(0, 1)   "
     "(z~ ~ p(z | b))\n"
     "gradient of q: (log p({x} | b) - c(z~)) grad log q(b | {x}) + grad c(z) - grad c(z~),  c(z) = eta log p({x} | "
     "sigmoid(z / T))   (REBAR; KL in closed form)\n"
     "eta (from 1) and log T (T from {T}) follow the gradient of the encoder gradient's squared norm (its variance), "
     "the backward pass differentiated at compile time"},
    {"disarm", EST_LOCAL_DISARM, {"samples", "beta"}, 1u << LATENT_BERNOULLI, 0, 1, 0,
     "IWAE_{S}({x}) = log (1/{S}) sum_{k=1..{S}} w_k,  log w_k = log p({x} | {z}_k) + {beta}(log p({z}_k) - log q({z}_k | "
     "{x}))   (the {S}-sample bound)\n"
     "b_k = 1[u_k < sigmoid(logits)],  b~_k = 1[1 - u_k < sigmoid(logits)],  u_k ~ uniform(0, 1) per variable   ({S} "
     "antithetic pairs per example, 2 x {S} decoder rows)\n"
     "reported: (1/2) (IWAE_{S}(b_1..b_{S}) + IWAE_{S}(b~_1..b~_{S})), each half an unbiased estimate of the bound\n"
     "gradient of q's logits: sum_k (1/4) ((L - L[b_k <- b~_k]) - (L~ - L~[b~_k <- b_k])) (b_k - b~_k) "
     "sigmoid(|logits|),  L and L~ the two halves, [. <- .] sample k swapped for its partner   (local DisARM, "
     "symmetrised)"},
};
#define NESTIMATORS (sizeof ESTIMATORS / sizeof ESTIMATORS[0])

vae_estimator_kind chk_latent_estimator_kind(const char *name) {
    for (size_t i = 0; i < NESTIMATORS; i++)
        if (ESTIMATORS[i].per_latent && strcmp(ESTIMATORS[i].name, name) == 0) return ESTIMATORS[i].kind;
    return EST_ELBO;
}

const char *chk_latent_estimator_names(char *buf, size_t len) {
    size_t n = 0, count = 0, seen = 0;
    for (size_t i = 0; i < NESTIMATORS; i++) count += ESTIMATORS[i].per_latent;
    buf[0] = 0;
    for (size_t i = 0; i < NESTIMATORS && n < len; i++)
        if (ESTIMATORS[i].per_latent) {
            seen++;
            const char *sep = seen == 1 ? "" : seen == count ? " or " : ", ";
            n += (size_t)snprintf(buf + n, len - n, "%s%s", sep, ESTIMATORS[i].name);
        }
    return buf;
}

const char *chk_estimator_formula(vae_estimator_kind k) {
    for (size_t i = 0; i < NESTIMATORS; i++)
        if (ESTIMATORS[i].kind == k) return ESTIMATORS[i].formula;
    return NULL;
}

/* The summary's `estimator NAME(option: value, ...)`: each option of the table (elbo: samples
 * and beta) whose value is not its default, as a model would write it. */
void chk_print_estimator(FILE *out, const vae_estimator *e) {
    static const char *const elbo_options[] = {"samples", "beta", NULL};
    const char *const *options = elbo_options;
    for (size_t i = 0; i < NESTIMATORS; i++)
        if (ESTIMATORS[i].kind == e->kind) options = ESTIMATORS[i].options;
    fputs(vae_estimator_name(e->kind), out);
    const char *sep = "(";
    for (int i = 0; i < 5 && options[i]; i++) {
        const char *o = options[i];
        if (strcmp(o, "samples") == 0 && e->samples != 1) fprintf(out, "%ssamples: %d", sep, e->samples);
        else if (strcmp(o, "beta") == 0 && e->beta != 1) fprintf(out, "%sbeta: %g", sep, e->beta);
        else if (strcmp(o, "temperature") == 0 && e->temperature > 0 && e->temperature != 1)
            fprintf(out, "%stemperature: %g", sep, e->temperature);
        else if (strcmp(o, "hard") == 0 && e->hard) fprintf(out, "%shard: true", sep);
        else if (strcmp(o, "alpha") == 0) fprintf(out, "%salpha: %.15g", sep, e->alpha); /* always: it has no default */
        else if (strcmp(o, "gradient") == 0 && e->dreg) fprintf(out, "%sgradient: dreg", sep);
        else if (strcmp(o, "k") == 0) fprintf(out, "%sk: %d", sep, e->topk);
        else if (strcmp(o, "control") == 0 && e->control) fprintf(out, "%scontrol: %s", sep, e->control->name);
        else if (strcmp(o, "baseline") == 0 && (e->baseline || e->baseline_loo))
            fprintf(out, "%sbaseline: %s", sep, e->baseline_loo ? "loo" : e->baseline->name);
        else continue;
        sep = ", ";
    }
    if (sep[0] == ',') fputc(')', out);
}

const char *vae_estimator_name(vae_estimator_kind k) {
    if (k == EST_ELBO) return "elbo";
    for (size_t i = 0; i < NESTIMATORS; i++)
        if (ESTIMATORS[i].kind == k) return ESTIMATORS[i].name;
    return "?";
}

void vae_model_settings(const vae_model *m, char *buf, size_t len) {
    const vae_estimator *e = &m->est;
    snprintf(buf, len, "estimator %s; samples %d; beta %.17g; temperature %.17g; hard %d; dreg %d; baseline %s",
             vae_estimator_name(e->kind), e->samples, e->beta, e->temperature, e->hard, e->dreg,
             e->baseline_loo ? "loo" : e->baseline ? "network" : "none");
    if (e->stl) { /* only where set: the settings line of every other model stays as it was */
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, "; gradient stl");
    }
    if (e->kind == EST_RENYI) {
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, "; alpha %.17g", e->alpha);
    }
    if (e->kind == EST_SUM_AND_SAMPLE) {
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, "; k %d", e->topk);
    }
    if (e->control) {
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, "; control %s", e->control->name);
    }
    for (int i = 0; e->kind == EST_ELBO && i < m->nlatents; i++) { /* each latent's own */
        const vae_latent_estimator *l = &m->latents[i].est;
        size_t n = strlen(buf);
        if (chk_inferred(&m->latents[i]))
            snprintf(buf + n, len - n, "; %s %s baseline %s temperature %.17g hard %d", m->latents[i].name,
                     vae_estimator_name(l->kind), l->baseline_loo ? "loo" : l->baseline ? "network" : "none",
                     l->temperature, l->hard);
    }
}

const char *chk_latent_kind_name(vae_latent_kind k) {
    return k == LATENT_NORMAL ? "normal" : k == LATENT_CATEGORICAL ? "categorical" : "bernoulli";
}

/* One example's rows - its samples, or the joint states the decoder runs on
 * where the latents are enumerated (by the estimator, or by the evaluation
 * of discrete latents with at most 65536 joint states: g_model_enumerable) -
 * times the most values a row of the model holds must be within what vaec can
 * index (then so is every tensor of a graph at batch 1; g_build checks the
 * batch). */
static int rows_fit(checker *c, const ast_estimator *e, int enumerates) {
    const vae_model *m = c->m;
    double joint = 1;
    int discrete = 1;
    for (int i = 0; i < m->nlatents; i++) {
        if (!chk_inferred(&m->latents[i])) continue; /* an observed label */
        joint *= m->latents[i].joint_states;
        discrete &= m->latents[i].kind != LATENT_NORMAL;
    }
    double widest = (double)m->max_example_values;
    const char *n = chk_count_str(c, widest);
    if ((enumerates || (discrete && joint <= 65536)) &&
        !chk_fits(c, e->loc, joint * widest,
              vae_pool_printf(c->pool, "enumerating the latents' %s joint states, %s values each", chk_count_str(c, joint), n),
              "values"))
        return 0;
    int S = m->est.samples * vae_estimator_rows_per_sample(&m->est);
    return chk_fits(c, e->loc, S * widest,
                vae_pool_printf(c->pool, "estimator '%s' with %d sample%s of %s values per example", e->name, S,
                                S == 1 ? "" : "s", n), "values");
}

/* Why an estimator refuses a latent of kind k, and what applies instead. */
static const char *why_not_applicable(const estimator_info *info, vae_latent_kind k) {
    if (info->latents == 1u << LATENT_BERNOULLI) /* arm, disarm */
        return k == LATENT_NORMAL ? "it needs bernoulli latents; a normal latent takes reparam"
                                  : "it needs bernoulli latents; a categorical latent takes reinforce(baseline: loo), "
                                    "vimco or gumbel";
    if (info->kind == EST_SUM_AND_SAMPLE)
        return k == LATENT_NORMAL ? "it ranks a categorical latent's states; a normal latent takes reparam"
                                  : "it ranks a categorical latent's states; a bernoulli latent takes disarm, arm or "
                                    "reinforce(baseline: loo)";
    if (info->kind == EST_GUMBEL) return "it relaxes discrete (categorical or bernoulli) latents; a normal latent takes reparam";
    if (info->kind == EST_RENYI)
        return "it needs a reparameterisable (normal) latent; on discrete latents vimco or rws train a multi-sample bound";
    if (k == LATENT_NORMAL) return "it needs enumerable (categorical or bernoulli) latents";
    return "it needs a reparameterisable (normal) latent";
}

/* Rows of the training step per example and sample: arm and disarm decode an antithetic pair. */
int vae_estimator_rows_per_sample(const vae_estimator *e) {
    if (e->kind == EST_SUM_AND_SAMPLE) return e->topk + 1;
    return e->kind == EST_ARM || e->kind == EST_DISARM || e->kind == EST_LOCAL_DISARM ? 2 : 1;
}

/* How many of the options the estimator names row `info` takes (`disarm` and `disarm(samples: K)`
 * are two rows of one name: the one that takes the most is meant). */
static int options_taken(const estimator_info *info, const ast_estimator *e) {
    int taken = 0;
    for (const ast_arg *a = e->args; a; a = a->next)
        for (int i = 0; i < 5 && info->options[i] && a->name; i++) taken += strcmp(info->options[i], a->name) == 0;
    return taken;
}

/* Whether row i is the first of its name. */
static int first_of_name(size_t i) {
    for (size_t j = 0; j < i; j++)
        if (strcmp(ESTIMATORS[j].name, ESTIMATORS[i].name) == 0) return 0;
    return 1;
}

/* The estimator's row of ESTIMATORS[], or NULL after an error. */
static const estimator_info *find_estimator(checker *c, const ast_estimator *e) {
    const estimator_info *info = NULL;
    for (size_t i = 0; i < NESTIMATORS; i++) /* of a name's rows, the first that takes the most of the options given */
        if (strcmp(ESTIMATORS[i].name, e->name) == 0 && (!info || options_taken(&ESTIMATORS[i], e) > options_taken(info, e)))
            info = &ESTIMATORS[i];
    if (!info) { /* the names from the table, "a, b or c", each once */
        char names[512];
        size_t n = 0;
        int total = 0, said = 0;
        for (size_t i = 0; i < NESTIMATORS; i++) total += first_of_name(i);
        for (size_t i = 0; i < NESTIMATORS && n < sizeof names; i++)
            if (first_of_name(i)) {
                said++;
                n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", said == 1 ? "" : said < total ? ", " : " or ",
                                      ESTIMATORS[i].name);
            }
        ERR(e->loc, "unknown estimator '%s' (expected %s)", e->name, names);
    }
    return info;
}

/* hard: true or false (gumbel's straight-through draws). */
static int chk_hard_option(checker *c, const ast_arg *a) {
    const ast_expr *v = a->value;
    if (v->kind != AST_NAME || (strcmp(v->str, "true") && strcmp(v->str, "false"))) {
        ERR(a->loc, "'hard' is true or false");
        return 0;
    }
    c->m->est.hard = strcmp(v->str, "true") == 0;
    return 1;
}

/* gradient: stl for reparam and iwae, dreg for iwae only. */
static int chk_gradient_option(checker *c, const estimator_info *info, const ast_arg *a) {
    const ast_expr *v = a->value;
    int iwae = info->kind == EST_IWAE;
    if (v->kind == AST_NAME && strcmp(v->str, "stl") == 0)
        c->m->est.stl = 1;
    else if (iwae && v->kind == AST_NAME && strcmp(v->str, "dreg") == 0)
        c->m->est.dreg = 1;
    else {
        ERR(a->loc, "%s", iwae ? "'gradient' is dreg (the doubly reparameterised gradient) or stl (sticking the landing)"
                               : "reparam's 'gradient' is stl (sticking the landing: the score term dropped); dreg "
                                 "is for iwae(samples: K, gradient: dreg)");
        return 0;
    }
    return 1;
}

/* baseline: loo, or the name of a declared baseline network: for reinforce one that returns a
 * distribution p_eta(x), for nvil one that returns a value b(x). */
static int chk_baseline_option(checker *c, const estimator_info *info, const ast_arg *a) {
    vae_model *m = c->m;
    const ast_expr *v = a->value;
    int nvil = info->kind == EST_NVIL;
    if (v->kind != AST_NAME) {
        ERR(a->loc, "%s", nvil ? "'baseline' names a baseline network" : "'baseline' names a baseline network or is loo");
        return 0;
    }
    if (!nvil && strcmp(v->str, "loo") == 0) {
        m->est.baseline_loo = 1;
        return 1;
    }
    const ast_network *b = NULL;
    for (const ast_network *n = m->ast->networks; n; n = n->next)
        if (n->role == NET_BASELINE && strcmp(n->name, v->str) == 0) b = n;
    if (!b) {
        ERR(v->loc, "unknown baseline '%s' (declare it with baseline %s(%s) { ... })", v->str, v->str,
            m->data ? m->data->name : "x");
        return 0;
    }
    if (chk_returns_value(b) != nvil) {
        const char *x = m->data ? m->data->name : "x";
        if (nvil)
            ERR(v->loc, "nvil's baseline '%s' returns one value b(%s) per example (as in return dense(h, 1)), not a "
                "distribution", v->str, x);
        else
            ERR(v->loc, "reinforce's baseline '%s' returns a distribution p_eta(%s) (as in return bernoulli(logits: "
                "...)); a baseline that returns one value is for nvil(baseline: %s)", v->str, x, v->str);
        return 0;
    }
    m->est.baseline = b;
    return 1;
}

/* k: the states sum_and_sample sums, a whole number of at least 1 (below the states: chk_estimator_needs). */
static int chk_topk_option(checker *c, const ast_arg *a) {
    int k;
    if (!chk_int_literal(a->value, &k) || k < 1) {
        ERR(a->value->loc, "'k' is a whole number of at least 1 (the most probable states summed)");
        return 0;
    }
    c->m->est.topk = k;
    return 1;
}

/* control: the name of a declared control network (relax). */
static int chk_control_option(checker *c, const ast_arg *a) {
    vae_model *m = c->m;
    const ast_expr *v = a->value;
    if (v->kind != AST_NAME) {
        ERR(a->loc, "'control' names a control network");
        return 0;
    }
    for (const ast_network *n = m->ast->networks; n; n = n->next)
        if (n->role == NET_CONTROL && strcmp(n->name, v->str) == 0) m->est.control = n;
    if (!m->est.control) {
        const char *z = m->nlatents ? m->latents[0].name : "z";
        ERR(v->loc, "unknown control network '%s' (declare it with control %s(%s | %s) { ... return dense(h, 1) })", v->str,
            v->str, z, m->data ? m->data->name : "x");
        return 0;
    }
    return 1;
}

/* One named option: one of the estimator's, with a value it takes. */
static int chk_estimator_option(checker *c, const ast_estimator *e, const estimator_info *info, const ast_arg *a) {
    vae_estimator *est = &c->m->est;
    if (!a->name) {
        ERR(a->loc, "estimator options are named, as in %s(%s: ...)", e->name, info->options[0] ? info->options[0] : "beta");
        return 0;
    }
    int known = 0;
    for (int i = 0; i < 5 && info->options[i]; i++) known |= strcmp(info->options[i], a->name) == 0;
    if (!known) {
        ERR(a->loc, "estimator '%s' has no option '%s'", e->name, a->name);
        return 0;
    }
    if (vae_setting_named(a->name)) { /* samples, beta, temperature, alpha */
        double num;
        if (!chk_setting_value(c, a->loc, a->name, a->value, &num)) return 0;
        if (strcmp(a->name, "samples") == 0)
            est->samples = (int)num;
        else if (strcmp(a->name, "beta") == 0)
            est->beta = num;
        else if (strcmp(a->name, "alpha") == 0)
            est->alpha = num;
        else
            est->temperature = num;
        return 1;
    }
    if (strcmp(a->name, "hard") == 0) return chk_hard_option(c, a);
    if (strcmp(a->name, "gradient") == 0) return chk_gradient_option(c, info, a);
    if (strcmp(a->name, "baseline") == 0) return chk_baseline_option(c, info, a);
    if (strcmp(a->name, "k") == 0) return chk_topk_option(c, a);
    if (strcmp(a->name, "control") == 0) return chk_control_option(c, a);
    return 1;
}

/* Every inferred latent of a kind the estimator handles, with an encoder where it needs one. */
static int chk_applies_to_latents(checker *c, const ast_estimator *e, const estimator_info *info) {
    const vae_model *m = c->m;
    int ok = 1;
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        if (!chk_inferred(l)) continue; /* an observed label */
        if (!(info->latents & (1u << l->kind))) {
            ERR(e->loc, "estimator '%s' does not apply to %s latent '%s' (%s)", e->name, chk_latent_kind_name(l->kind),
                l->name, why_not_applicable(info, l->kind));
            ok = 0;
        }
        if (info->needs_encoder && !l->encoder) {
            ERR(e->loc, "estimator '%s' needs an encoder for latent '%s' (declare encoder q(%s | %s) { ... })",
                e->name, l->name, l->name, m->data ? m->data->name : "x");
            ok = 0;
        }
    }
    return ok;
}

/* An estimator without an encoder leaves a declared one untrained: say so, once. */
static void warn_unused_encoder(checker *c, const ast_estimator *e, const estimator_info *info) {
    const vae_model *m = c->m;
    for (int i = 0; !info->needs_encoder && i < m->nlatents; i++)
        if (m->latents[i].encoder) { /* evaluation then leaves it out too: an untrained q gives no ELBO worth a number */
            vae_warning(c->src, e->loc, "estimator '%s' does not use the encoder of '%s': it stays untrained, and test "
                        "values are the estimator's own bound (%s), not an ELBO", e->name, m->latents[i].name,
                        info->kind == EST_EXACT ? "the exact log p(x)" : "log p(x) estimated by sampling the prior");
            break;
        }
}

/* An enumerating estimator: at most 65536 joint states of the inferred latents. */
static int chk_enumerable(checker *c, const ast_estimator *e) {
    const vae_model *m = c->m;
    double joint = 1;
    for (int i = 0; i < m->nlatents; i++) joint *= chk_inferred(&m->latents[i]) ? m->latents[i].joint_states : 1;
    if (joint <= 65536) return 1;
    if (joint < 1e15)
        ERR(e->loc, "estimator '%s' sums over every joint state of the latents, and they have %.0f (at most "
                    "65536 are enumerable)", e->name, joint);
    else
        ERR(e->loc, "estimator '%s' sums over every joint state of the latents, and they have %.3g (at most "
                    "65536 are enumerable)", e->name, joint);
    return 0;
}

/* sum_and_sample ranks the joint states of one categorical latent (every pair of them: at most
 * SUM_AND_SAMPLE_STATES), and k of them must leave at least one to draw. */
#define SUM_AND_SAMPLE_STATES 256
static void chk_sum_and_sample(checker *c, const ast_estimator *e) {
    const vae_model *m = c->m;
    const vae_latent *only = NULL;
    int n = 0;
    for (int i = 0; i < m->nlatents; i++)
        if (chk_inferred(&m->latents[i])) only = &m->latents[i], n++;
    const ast_arg *k = NULL;
    for (const ast_arg *a = e->args; a; a = a->next)
        if (a->name && strcmp(a->name, "k") == 0) k = a;
    if (!k) {
        ERR(e->loc, "sum_and_sample needs k, the most probable states it sums: sum_and_sample(k: 2)");
        return;
    }
    if (n != 1) {
        ERR(e->loc, "sum_and_sample applies to a model with one categorical latent (this one has %d): it ranks that "
                    "latent's joint states", n);
        return;
    }
    double J = only->joint_states;
    if (J > SUM_AND_SAMPLE_STATES)
        ERR(e->loc, "sum_and_sample ranks the joint states of '%s' pairwise, and it has %.0f (at most %d)", only->name,
            J, SUM_AND_SAMPLE_STATES);
    else if (m->est.topk >= J)
        ERR(k->value->loc, "sum_and_sample(k: %d) sums %d states, and '%s' has %.0f: k must leave at least one to "
            "draw (k = %.0f sums all but one; analytic sums them all)", m->est.topk, m->est.topk, only->name, J, J - 1);
}

/* nvil's running mean and variance of l = f - b(x): two state tensors, the last of the parameters. */
static void add_nvil_state(checker *c, const ast_estimator *e) {
    vae_model *m = c->m;
    c->owner = NET_BASELINE;
    c->net = NULL; /* the estimator's own, no network's (not the last network checked) */
    int i = chk_add_param(c, e->loc, "nvil.mean", chk_vec(1), 0.0f);
    int j = chk_add_param(c, e->loc, "nvil.variance", chk_vec(1), 0.0f);
    if (i < 0 || j != i + 1) return;
    m->params[i].state = m->params[j].state = 1;
    m->est.state_param = i;
}

/* What one estimator asks of its samples and the prior (the model checked so far). */
static void chk_estimator_needs(checker *c, const ast_estimator *e, const estimator_info *info) {
    const vae_model *m = c->m;
    if (info->kind == EST_VIMCO && m->est.samples < 2)
        ERR(e->loc, "vimco needs at least 2 samples: each sample's control variate comes from the others");
    if (info->kind == EST_RENYI && isnan(m->est.alpha))
        ERR(e->loc, "renyi needs its order: renyi(samples: K, alpha: A), alpha 0 for the IWAE bound, 1 for the ELBO, "
                    "between them the Renyi bounds");
    if (info->kind == EST_RWS && m->est.samples < 2)
        ERR(e->loc, "rws needs at least 2 samples: with one, its normalised weight is 1 and the encoder's wake "
                    "gradient is grad log q alone, zero in expectation");
    if (info->kind == EST_LOCAL_DISARM && m->est.samples < 2)
        ERR(e->loc, "disarm(samples: K) needs at least 2 antithetic pairs (its bound is the K-sample one); one pair "
                    "is estimator disarm, the ELBO with the KL in closed form");
    if (m->est.baseline_loo && m->est.samples < 2)
        ERR(e->loc, "reinforce(baseline: loo) needs at least 2 samples: each sample's baseline is the mean of the "
                    "others");
    if (info->kind == EST_NVIL && !m->est.baseline)
        ERR(e->loc, "nvil needs its baseline network: nvil(baseline: b), with baseline b(%s) { ... return dense(h, 1) }",
            m->data ? m->data->name : "x");
    if (info->kind == EST_SUM_AND_SAMPLE) chk_sum_and_sample(c, e);
    if (info->kind == EST_RELAX && !m->est.control) {
        const char *z = m->nlatents ? m->latents[0].name : "z";
        ERR(e->loc, "relax needs its control network: relax(control: c), with control c(%s | %s) { ... return dense(h, "
                    "1) } declared (a network of the relaxed latent that returns one value per example)",
            z, m->data ? m->data->name : "x");
    }
    if (info->kind == EST_REBAR && !m->structured) { /* eta - 1 and log(T / temperature), both from 0 */
        c->owner = NET_CONTROL;
        c->net = NULL; /* the estimator's own, no network's */
        c->m->est.rebar_eta = chk_add_param(c, e->loc, "rebar.eta", chk_vec(1), 0);
        chk_add_param(c, e->loc, "rebar.log_temperature", chk_vec(1), 0);
    }
    if ((info->kind == EST_RELAX || info->kind == EST_REBAR) && m->structured)
        ERR(e->loc, "%s is built for models with one level of latents (no elbo(...), prior networks or labels)", e->name);
    if (info->kind == EST_PRIOR)
        for (int i = 0; i < m->nlatents; i++)
            if (m->latents[i].prior.a)
                ERR(e->loc, "estimator 'prior' samples from the prior, so it cannot learn the prior of '%s' (its "
                            "gradient would need a score function); use exact or a fixed prior",
                    m->latents[i].name);
}

void chk_estimator(checker *c, const ast_estimator *e) {
    vae_estimator *est = &c->m->est;
    est->name = e->name;
    est->loc = e->loc;
    est->samples = 1;
    est->beta = 1.0;
    const estimator_info *info = find_estimator(c, e);
    if (!info) return;
    est->kind = info->kind;
    est->alpha = info->kind == EST_RENYI ? NAN : 0; /* renyi's has no default: it chooses the bound */
    int ok = 1;
    for (const ast_arg *a = e->args; a; a = a->next) ok &= chk_estimator_option(c, e, info, a);
    if (!ok) return;
    ok = chk_applies_to_latents(c, e, info);
    est->trains_encoder = info->needs_encoder;
    if (!ok) return;
    warn_unused_encoder(c, e, info);
    if (info->enumerates && !chk_enumerable(c, e)) return;
    if (rows_fit(c, e, info->enumerates)) chk_estimator_needs(c, e, info);
    if (info->kind == EST_NVIL) add_nvil_state(c, e);
}
