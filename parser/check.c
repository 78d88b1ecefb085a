/* Semantic checks: the declarations, networks and train settings, and the
 * summaries; expressions and layers are in check_expr.c, distributions in
 * check_dist.c, estimators in check_estimator.c and check_elbo.c, and version
 * 1's structure in check_structure.c.  Reports every error it can find, then
 * fills a vae_model.
 *
 * Shapes are per example: `h = relu(dense(x, 400))` has shape [400]; the batch
 * and the samples are a leading dimension that the code generator adds. */
#include "parser/check_internal.h"

#include "parser/limits.h"
#include "parser/settings.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- networks */

vae_latent *chk_find_latent(vae_model *m, const char *name) {
    for (int i = 0; i < m->nlatents; i++)
        if (strcmp(m->latents[i].name, name) == 0) return &m->latents[i];
    return NULL;
}

static const char *net_prefix(const vae_model *m, const ast_network *n) {
    int same_role = 0;
    for (const ast_network *o = m->ast->networks; o; o = o->next) same_role += o->role == n->role;
    /* a prior network is named after itself: "prior" names the fixed priors' parameters */
    return same_role > 1 || n->role == NET_PRIOR ? n->name : ast_role_name(n->role);
}

void chk_bind_latent(checker *c, const vae_latent *l) {
    if (l->kind == LATENT_CATEGORICAL)
        chk_bind(c, l->name, UNKNOWN, VAL_CATEGORICAL, l);
    else if (!l->nvars) /* refused: too large */
        chk_bind(c, l->name, UNKNOWN, VAL_TENSOR, l);
    else
        chk_bind(c, l->name, l->ast->shape.ndims ? chk_shape_of_ast(&l->ast->shape) : chk_vec(1), VAL_TENSOR, l);
}

void chk_body(checker *c, const ast_network *n) {
    int count = 0;
    for (ast_assign *a = n->body; a; a = a->next) {
        if (++count > VAE_MAX_ASSIGNS) { /* the lowering's environment holds this many, and names are looked up in order */
            ERR(a->loc, "too many assignments in network '%s' (at most %d)", n->name, VAE_MAX_ASSIGNS);
            return;
        }
        c->target = a->name;
        shape s = chk_expr(c, a->value);
        if (s.nd == 0) {
            ERR(a->loc, "'%s' is a scalar; a network works on tensors", a->name);
            s = UNKNOWN;
        }
        if (s.nd > 0) chk_note_values(c, chk_shape_values(s));
        chk_bind(c, a->name, s, VAL_TENSOR, NULL);
    }
}

/* control c(z | x): reads latents (their relaxed values, continuous) and the data, and
 * returns one value per example (relax's control variate). */
static void check_control(checker *c, const ast_network *n) {
    vae_model *m = c->m;
    const vae_latent *l = chk_find_latent(m, n->output->name);
    if (!l) {
        ERR(n->output->loc, "a control c(z | %s) names a latent first; '%s' is not a latent",
            m->data ? m->data->name : "x", n->output->name);
        return;
    }
    chk_bind_latent(c, l);
    for (const ast_name *g = n->given; g; g = g->next) {
        const vae_latent *o = chk_find_latent(m, g->name);
        if (m->data && strcmp(g->name, m->data->name) == 0)
            chk_bind(c, g->name, m->data_dim ? chk_shape_of_ast(&m->data->shape) : UNKNOWN, VAL_TENSOR, NULL);
        else if (o)
            chk_bind_latent(c, o);
        else
            ERR(g->loc, "unknown name '%s' (a control reads latents and the data)", g->name);
    }
    chk_body(c, n);
    c->target = "value"; /* names the returned layer's parameters: control.value.weight */
    shape s = chk_expr(c, n->ret);
    if (s.nd == UNKNOWN.nd) return; /* reported */
    if (s.nd != 1 || s.d[0] != 1)
        ERR(n->ret->loc, "a control returns one value per example (shape [1], as dense(h, 1) gives), not %s",
            chk_shape_str(c, s));
}

/* An encoder q(z | ...): the latent it names, what it conditions on, the distribution it returns. */
static void check_encoder(checker *c, const ast_network *n, shape data_shape) {
    vae_model *m = c->m;
    const char *out = n->output->name;
    vae_latent *l = chk_find_latent(m, out);
    if (!l) {
        ERR(n->output->loc, "an encoder q(z | x) names a latent first; '%s' is not a latent", out);
        return;
    }
    if (l->encoder) {
        ERR(n->output->loc, "latent '%s' already has an encoder", out);
        return;
    }
    l->encoder = n;
    if (!n->given) ERR(n->loc, "an encoder needs the data it conditions on: q(%s | %s)", out,
                       m->data ? m->data->name : "x");
    for (const ast_name *g = m->structured ? NULL : n->given; g; g = g->next) {
        if (m->data && strcmp(g->name, m->data->name) == 0)
            chk_bind(c, g->name, data_shape, VAL_TENSOR, NULL);
        else if (chk_find_latent(m, g->name))
            ERR(g->loc, "an encoder conditions on the data only; hierarchical encoders are not supported");
        else
            ERR(g->loc, "unknown name '%s' (expected the data '%s')", g->name, m->data ? m->data->name : "?");
    }
    if (m->structured) chk_given(c, n, 1);
    chk_body(c, n);
    shape want = chk_dist_shape(l);
    unsigned allow = 0;
    if (l->kind == LATENT_NORMAL) allow = 1u << DIST_NORMAL;
    if (l->kind == LATENT_BERNOULLI) allow = 1u << DIST_BERNOULLI;
    if (l->kind == LATENT_CATEGORICAL) {
        if (!l->nvars) return; /* refused with its prior */
        allow = 1u << DIST_CATEGORICAL;
    }
    const char *what = vae_pool_printf(c->pool, "the encoder of latent '%s'", out);
    chk_returned_dist(c, n->ret, want, allow, what, &l->posterior);
}

/* A decoder p(x | ...) or a baseline b(x) (reinforce's distribution, nvil's one value). */
static void check_data_network(checker *c, const ast_network *n, shape data_shape) {
    vae_model *m = c->m;
    const char *out = n->output->name;
    if (!m->data || strcmp(out, m->data->name) != 0) {
        ERR(n->output->loc, "a %s models the data; expected %s(%s ...)", ast_role_name(n->role),
            n->name, m->data ? m->data->name : "x");
        return;
    }
    if (n->role == NET_DECODER) {
        if (m->decoder) {
            ERR(n->loc, "the model already has a decoder");
            return;
        }
        m->decoder = n;
        if (!n->given) ERR(n->loc, "a decoder needs the latents it conditions on: p(%s | z)", out);
        if (m->structured) chk_given(c, n, 0);
        for (const ast_name *g = m->structured ? NULL : n->given; g; g = g->next) {
            const vae_latent *l = chk_find_latent(m, g->name);
            if (!l)
                ERR(g->loc, "unknown latent '%s'", g->name);
            else
                chk_bind_latent(c, l);
        }
    } else {
        if (n->given) ERR(n->given->loc, "a baseline b(%s) conditions on nothing but the data", out);
        chk_bind(c, out, data_shape, VAL_TENSOR, NULL);
    }
    chk_body(c, n);
    const char *what = n->role == NET_DECODER ? "the decoder" : "the baseline";
    vae_dist *d = n->role == NET_DECODER ? &m->likelihood : &m->baseline_dist;
    if (n->role == NET_BASELINE && chk_returns_value(n)) { /* nvil's b(x): one value per example */
        c->target = "value"; /* its parameters: baseline.value.weight, ... */
        shape s = chk_expr(c, n->ret);
        if (s.nd >= 0 && chk_shape_size(s) != 1)
            ERR(n->ret->loc, "a baseline returns a distribution p_eta(%s) (for reinforce) or one value b(%s) (for "
                "nvil), not a value of shape %s", out, out, chk_shape_str(c, s));
    } else if (data_shape.nd > 0)
        chk_returned_dist(c, n->ret, data_shape, (1u << DIST_NORMAL) | (1u << DIST_BERNOULLI), what, d);
}

static void check_network(checker *c, const ast_network *n) {
    vae_model *m = c->m;
    c->env = NULL;
    c->prefix = net_prefix(m, n);
    c->owner = (int)n->role;
    c->net = n;
    shape data_shape = m->data && m->data_dim ? chk_shape_of_ast(&m->data->shape) : UNKNOWN;
    switch (n->role) {
    case NET_ENCODER: check_encoder(c, n, data_shape); break;
    case NET_DECODER:
    case NET_BASELINE: check_data_network(c, n, data_shape); break;
    case NET_PRIOR: chk_prior_network(c, n); break;
    case NET_CONTROL: check_control(c, n); break;
    }
}

shape chk_latent_shape(const vae_latent *l) {
    return l->ast->shape.ndims ? chk_shape_of_ast(&l->ast->shape) : chk_vec(1);
}

/* What a network returns for the latent: its shape, with the states last for a categorical one
 * (a categorical latent of VAE_MAX_DIMS dimensions has no room for them: chk_prior says so). */
shape chk_dist_shape(const vae_latent *l) {
    shape want = chk_latent_shape(l);
    if (l->kind == LATENT_CATEGORICAL) {
        if (l->ast->shape.ndims == 0) want.nd = 0;
        if (want.nd < VAE_MAX_DIMS) want.d[want.nd++] = l->states;
    }
    return want;
}

/* ---------------------------------------------------------------- train settings */

static const ast_assign *setting_named(const ast_train *t, const char *name) {
    for (const ast_assign *a = t->settings; a; a = a->next)
        if (strcmp(a->name, name) == 0) return a;
    return NULL;
}

/* labelled and classify act on a label with an encoder; a label needs a source that carries it. */
static void check_label_settings(checker *c, const ast_train *t) {
    const vae_model *m = c->m;
    const vae_latent *label = NULL, *inferred = NULL;
    for (int i = 0; i < m->nlatents; i++)
        if (m->latents[i].label) {
            if (!label) label = &m->latents[i];
            if (!inferred && m->latents[i].encoder) inferred = &m->latents[i];
        }
    static const char *const NEED[] = {"labelled", "classify"};
    for (int i = 0; i < 2 && !inferred; i++) {
        const ast_assign *a = setting_named(t, NEED[i]);
        if (a) ERR(a->loc, "'%s' needs a label with an encoder (data y : label(K) and encoder q(y | x))", NEED[i]);
    }
    static const char *const SRC[][2] = {{"data", "labels"}, {"test", "test_labels"}};
    for (int i = 0; i < 2 && label; i++) {
        const ast_assign *a = setting_named(t, SRC[i][0]);
        if (a && a->value->kind == AST_STR && strncmp(a->value->str, "fashion-mnist:", 14) &&
            !setting_named(t, SRC[i][1]))
            ERR(a->loc, "labels without a source: label '%s' is not in \"%s\" (only fashion-mnist: sources carry "
                        "labels); name a label file with %s = \"PATH\"", label->name, a->value->str, SRC[i][1]);
    }
}

/* ---------------------------------------------------------------- optimisers */

#define DEFAULT_LR 1e-3 /* the train block's, and a per-network optimizer's without lr */

/* adam(lr: F) or sgd(lr: F, momentum: F) into *kind, *lr and *momentum (each left where the
 * call does not give it); 0 when refused (said). */
static int check_optimizer(checker *c, const ast_expr *v, vae_optimizer_kind *kind, double *lr, double *momentum) {
    if (v->kind != AST_CALL || (strcmp(v->str, "adam") && strcmp(v->str, "sgd"))) {
        ERR(v->loc, "'optimizer' is adam(lr: F) or sgd(lr: F, momentum: F)");
        return 0;
    }
    int adam = strcmp(v->str, "adam") == 0;
    *kind = adam ? OPT_ADAM : OPT_SGD;
    static const char *const adam_opts[] = {"lr", NULL}, *const sgd_opts[] = {"lr", "momentum", NULL};
    if (!chk_only_named(c, v, adam ? adam_opts : sgd_opts, "as an optimizer")) return 0;
    const ast_arg *l = chk_named(v, "lr"), *mom = chk_named(v, "momentum");
    double num;
    if (l && chk_setting_value(c, l->loc, "lr", l->value, &num)) *lr = num;
    if (mom && chk_setting_value(c, mom->loc, "momentum", mom->value, &num)) *momentum = num;
    return 1;
}

static void print_optimizer(FILE *out, vae_optimizer_kind kind, double lr, double momentum) {
    if (kind == OPT_ADAM) fprintf(out, "adam(lr: %g)", lr);
    else fprintf(out, "sgd(lr: %g, momentum: %g)", lr, momentum);
}

static const ast_net_role ROLES[] = {NET_ENCODER, NET_DECODER, NET_BASELINE, NET_PRIOR};

/* How closely `target` names parameter p's networks: 2 its network's name, 1 its role
 * (prior: also a prior's own parameters), 0 not at all.  The closest line wins. */
static int target_match(const vae_param *p, const char *target) {
    if (p->net && strcmp(p->net->name, target) == 0) return 2;
    return strcmp(ast_role_name(p->owner < 0 ? NET_PRIOR : (ast_net_role)p->owner), target) == 0;
}

/* The networks a model has, in words ("q, p"), for an unknown target's message. */
static const char *network_names(checker *c) {
    const char *list = "";
    for (const ast_network *n = c->m->ast->networks; n; n = n->next)
        list = vae_pool_printf(c->pool, "%s%s%s", list, *list ? ", " : "", n->name);
    return list;
}

/* `optimizer TARGET = ...`: a known target with parameters, set once. */
static void check_group(checker *c, const ast_assign *a) {
    vae_train_settings *s = &c->m->train;
    if (strcmp(a->name, "optimizer") != 0) {
        ERR(a->target_loc, "only 'optimizer' is set per network; '%s' applies to the whole model (write %s = ...)",
            a->name, a->name);
        return;
    }
    int known = 0, params = 0;
    for (size_t r = 0; r < sizeof ROLES / sizeof *ROLES; r++) known |= strcmp(ast_role_name(ROLES[r]), a->target) == 0;
    for (const ast_network *n = c->m->ast->networks; n; n = n->next) known |= strcmp(n->name, a->target) == 0;
    for (int i = 0; i < c->m->nparams; i++) params += target_match(&c->m->params[i], a->target) > 0;
    for (int g = 0; g < s->ngroups; g++)
        if (strcmp(s->groups[g].target, a->target) == 0) {
            ERR(a->target_loc, "the optimizer of '%s' is set twice", a->target);
            return;
        }
    if (!known)
        ERR(a->target_loc, "unknown network '%s' (expected prior, encoder, decoder, baseline or a network's name: %s)",
            a->target, network_names(c));
    else if (!params)
        ERR(a->target_loc, "'%s' has no learned parameters to optimise (vaec check lists them)", a->target);
    else if (s->ngroups == VAE_MAX_OPTIM_GROUPS)
        ERR(a->target_loc, "too many per-network optimizers (at most %d)", VAE_MAX_OPTIM_GROUPS);
    else {
        vae_optim_group *g = &s->groups[s->ngroups];
        *g = (vae_optim_group){.target = a->target, .optimizer = OPT_ADAM, .lr = DEFAULT_LR, .loc = a->target_loc};
        if (check_optimizer(c, a->value, &g->optimizer, &g->lr, &g->momentum)) s->ngroups++;
    }
}

/* Each parameter's optimiser: the group whose target names it most closely, or the default. */
static void assign_groups(vae_model *m) {
    for (int i = 0; i < m->nparams; i++) {
        vae_param *p = &m->params[i];
        int best = 0;
        p->group = 0;
        for (int g = 0; g < m->train.ngroups; g++) {
            int match = target_match(p, m->train.groups[g].target);
            if (match > best) {
                best = match;
                p->group = g + 1;
            }
        }
    }
}

/* validation, clip and the learning rate's schedule: 1 when `a` is one of them (checked). */
static int check_run_setting(checker *c, const ast_assign *a, vae_train_settings *s) {
    static const char *const NAMES[] = {"validation", "clip", "lr_warmup_steps", "lr_step_epochs", "lr_step_factor",
                                        "lr_cosine_epochs", "lr_min"};
    size_t i = 0, n = sizeof NAMES / sizeof *NAMES;
    while (i < n && strcmp(a->name, NAMES[i]) != 0) i++;
    if (i == n) return 0;
    double num;
    if (!chk_setting_value(c, a->value->loc, a->name, a->value, &num)) return 1;
    switch (i) {
    case 0: s->validation = (int)num; break;
    case 1: s->clip = num; break;
    case 2: s->lr_warmup_steps = (long)num; break;
    case 3: s->lr_step_epochs = (int)num; break;
    case 4: s->lr_step_factor = num; break;
    case 5: s->lr_cosine_epochs = num; break;
    default: s->lr_min = num; break;
    }
    if (s->lr_step_epochs > 0 && s->lr_cosine_epochs > 0)
        ERR(a->loc, "lr_step_epochs and lr_cosine_epochs: the learning rate decays one way; choose one");
    return 1;
}

static void check_train(checker *c, const ast_train *t) {
    vae_train_settings *s = &c->m->train;
    const ast_assign *shards = NULL;
    for (const ast_assign *a = t->settings; a; a = a->next) {
        if (a->target) {
            check_group(c, a);
            continue;
        }
        if (strcmp(a->name, "shards") == 0) shards = a;
        const ast_expr *v = a->value;
        double num;
        if (strcmp(a->name, "labels") == 0 || strcmp(a->name, "test_labels") == 0) {
            if (v->kind != AST_STR)
                ERR(v->loc, "'%s' is a label file in quotes (IDX, .npy or .csv)", a->name);
            else
                *(a->name[0] == 'l' ? &s->labels : &s->test_labels) = v->str;
        } else if (strcmp(a->name, "labelled") == 0) {
            if (chk_setting_value(c, v->loc, a->name, v, &num)) s->labelled = (long)num;
        } else if (strcmp(a->name, "classify") == 0) {
            if (chk_setting_value(c, v->loc, a->name, v, &num)) s->classify = num;
        } else if (strcmp(a->name, "data") == 0 || strcmp(a->name, "test") == 0) {
            if (v->kind != AST_STR)
                ERR(v->loc, "'%s' is a data source in quotes, such as \"fashion-mnist:train\"", a->name);
            else if (strcmp(a->name, "data") == 0)
                s->data = v->str;
            else
                s->test = v->str;
        } else if (strcmp(a->name, "batch") == 0) {
            if (chk_setting_value(c, v->loc, a->name, v, &num)) s->batch = (int)num;
        } else if (strcmp(a->name, "epochs") == 0) {
            if (chk_setting_value(c, v->loc, a->name, v, &num)) s->epochs = (int)num;
        } else if (strcmp(a->name, "seed") == 0) {
            if (chk_setting_value(c, v->loc, a->name, v, &num)) s->seed = (unsigned long long)num;
        } else if (strcmp(a->name, "warmup") == 0) {
            if (chk_setting_value(c, v->loc, a->name, v, &num)) s->warmup = num;
        } else if (strcmp(a->name, "shards") == 0) {
            if (chk_setting_value(c, v->loc, a->name, v, &num)) s->shards = (int)num;
        } else if (check_run_setting(c, a, s)) {
            continue; /* checked there */
        } else if (strcmp(a->name, "optimizer") == 0) {
            check_optimizer(c, v, &s->optimizer, &s->lr, &s->momentum);
        } else {
            ERR(a->loc, "unknown train setting '%s' (expected data, test, optimizer, batch, epochs, seed, warmup, shards, "
                        "validation, clip, lr_warmup_steps, lr_step_epochs, lr_step_factor, lr_cosine_epochs or lr_min)",
                a->name);
        }
    }
    if (shards && s->shards > 0 && s->batch % s->shards != 0) /* a shard is batch / shards whole examples */
        ERR(shards->value->loc, "batch %d is not a multiple of shards %d: every shard has the same number of examples",
            s->batch, s->shards);
    check_label_settings(c, t);
    assign_groups(c->m);
}

/* ---------------------------------------------------------------- the model */

/* The data (one declaration that is not a label) and the latents, then the labels after them. */
static void check_declarations(checker *c) {
    vae_model *m = c->m;
    const ast_model *ast = m->ast;
    for (const ast_data *d = ast->data; d; d = d->next) {
        if (d->label) continue; /* after the latents */
        if (m->data) {
            ERR(d->loc, "a model has exactly one data declaration; '%s' is a second one", d->name);
            continue;
        }
        m->data = d;
        m->binary = d->binary;
        m->binary_dynamic = d->dynamic;
        if (!d->shape.ndims) {
            ERR(d->loc, "data '%s' needs a shape, as in data %s[784] : binary", d->name, d->name);
            continue;
        }
        shape ds = chk_shape_of_ast(&d->shape);
        if (!chk_fits(c, d->loc, chk_shape_exact(ds), vae_pool_printf(c->pool, "data '%s' %s", d->name, chk_shape_str(c, ds)),
                  "values per example"))
            continue; /* data_dim stays 0: the networks see an unknown shape */
        m->data_dim = chk_shape_size(ds);
        chk_note_values(c, m->data_dim);
    }
    if (!m->data) ERR(ast->loc, "the model declares no data (add: data x[784] : binary)");
    if (!ast->latents) ERR(ast->loc, "the model declares no latent (add: latent z[20] ~ normal(0, 1))");
    for (const ast_latent *l = ast->latents; l; l = l->next) {
        if (m->data && strcmp(l->name, m->data->name) == 0) {
            ERR(l->loc, "'%s' is already the data's name", l->name);
            continue;
        }
        if (chk_find_latent(m, l->name)) {
            ERR(l->loc, "latent '%s' is declared twice", l->name);
            continue;
        }
        if (m->nlatents == VAE_MAX_LATENTS) {
            ERR(l->loc, "too many latents (at most %d)", VAE_MAX_LATENTS);
            break;
        }
        vae_latent *v = &m->latents[m->nlatents++];
        v->ast = l;
        v->name = l->name;
        if (l->prior)
            chk_prior(c, v);
        else
            chk_prior_net_latent(c, v);
    }
    chk_labels(c);
    m->structured = chk_structured(m);
}

/* Whether a latent reaches the data: the decoder reads it, or (structured) a prior network. */
static int reaches_data(const vae_model *m, const vae_latent *l) {
    for (const ast_network *n = m->ast->networks; n; n = n->next)
        if (n == m->decoder || (m->structured && n->role == NET_PRIOR))
            for (const ast_name *g = n->given; g; g = g->next)
                if (strcmp(g->name, l->name) == 0) return 1;
    return 0;
}

/* Networks in source order: their parameters take that order. */
static void check_networks(checker *c) {
    vae_model *m = c->m;
    int nnetworks = 0;
    for (const ast_network *n = m->ast->networks; n; n = n->next) {
        if (++nnetworks > VAE_MAX_NETWORKS) { /* each is compared with those before it */
            ERR(n->loc, "too many networks (at most %d)", VAE_MAX_NETWORKS);
            break;
        }
        for (const ast_network *o = m->ast->networks; o != n; o = o->next)
            if (strcmp(o->name, n->name) == 0) ERR(n->loc, "network '%s' is declared twice", n->name);
        check_network(c, n);
    }
    if (!m->decoder) ERR(m->ast->loc, "the model declares no decoder (add: decoder p(x | z) { ... })");
    for (int i = 0; i < m->nlatents && m->decoder; i++)
        if (!reaches_data(m, &m->latents[i]))
            ERR(m->latents[i].ast->loc, "%s '%s' is not given to the decoder%s", m->latents[i].label ? "label" : "latent",
                m->latents[i].name, m->structured ? " nor to a prior network" : "");
    if (m->structured) chk_structure(c);
    for (int i = 0; !m->structured && i < m->nlatents; i++) /* one level: every order is declaration order */
        m->posterior_order[i] = m->prior_order[i] = i;
}

static void check_estimators(checker *c) {
    vae_model *m = c->m;
    const ast_model *ast = m->ast;
    if (!ast->estimators) ERR(ast->loc, "the model declares no estimator (add: estimator reparam)");
    for (const ast_estimator *e = ast->estimators; e; e = e->next) {
        if (e != ast->estimators) {
            ERR(e->loc, "a model has one estimator; this is a second one");
            continue;
        }
        int before = c->src->nerrors;
        if (m->structured && strcmp(e->name, "elbo") == 0) {
            chk_elbo(c, e);
            continue;
        }
        chk_estimator(c, e);
        if (m->structured && c->src->nerrors == before) chk_elbo_from_v0(c);
    }
    for (const ast_network *n = ast->networks; n; n = n->next)
        if (n->role == NET_BASELINE) {
            if (m->est.baseline == n) m->baseline_net = n;
        }
}

int vae_check(vae_source *src, ast_model *ast, vae_model *m) {
    memset(m, 0, sizeof *m);
    m->src = src;
    m->ast = ast;
    m->name = ast->name;
    m->train.optimizer = OPT_ADAM;
    m->train.lr = DEFAULT_LR;
    m->train.batch = 128;
    m->train.epochs = 10;
    m->train.shards = 1;
    m->train.lr_step_factor = 0.1;
    checker cc = {.src = src, .m = m, .pool = src->pool}, *c = &cc;
    int before = src->nerrors;
    check_declarations(c);
    check_networks(c);
    check_estimators(c);
    for (const ast_train *t = ast->trains; t; t = t->next) {
        if (t != ast->trains) ERR(t->loc, "a model has one train block; this is a second one");
        else check_train(c, t);
    }
    if (m->structured && src->nerrors == before) chk_rows(c);
    if (src->nerrors == before) return 0;
    vae_error_summary(src);
    return -1;
}

long vae_state_floats(const vae_model *m) {
    long n = 0;
    for (int i = 0; i < m->nparams; i++) n += m->params[i].state ? m->params[i].size : 0;
    return n;
}

const vae_param *vae_model_param(const vae_model *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}

/* ---------------------------------------------------------------- summaries */

void chk_print_dist(FILE *out, const vae_dist *d) {
    switch (d->kind) {
    case DIST_NORMAL:
        if (d->standard) fputs("normal(0, 1)", out);
        else fprintf(out, "normal(mean, %s)", d->b_is_scale ? "scale" : "logvar");
        break;
    case DIST_BERNOULLI:
        if (!d->a) fprintf(out, "bernoulli(%g)", d->fixed_p);
        else fprintf(out, "bernoulli(%s)", d->a_is_probs ? "probs" : "logits");
        break;
    case DIST_CATEGORICAL: fputs(d->a ? "categorical(logits)" : "categorical(uniform)", out); break;
    }
}

/* ---- the objective: an estimator's formula (check_estimator.c ESTIMATORS) written out */

typedef struct {
    const vae_model *m;
    const vae_latent *l; /* the latent of an @ line */
    char z[256];         /* the latents' names, comma-separated */
} formula_env;

/* Whether {?COND:...} holds (check_estimator.c lists the conditions); cat and bern on the
 * latent of an @ line. */
static int formula_cond(const formula_env *env, const char *c, size_t n) {
    const vae_estimator *e = &env->m->est;
    const vae_latent *l = env->l;
    const struct { const char *name; int holds; } conds[] = {
        {"many", e->samples > 1},
        {"dreg", e->dreg},
        {"alpha1", e->alpha == 1},
        {"alphan", e->alpha != 1},
        {"stl", e->stl},
        {"closed", !e->stl},
        {"hard", e->hard},
        {"soft", !e->hard},
        {"net", e->baseline != NULL},
        {"loo", e->baseline_loo},
        {"plain", !e->baseline && !e->baseline_loo},
        {"cat", l && l->kind == LATENT_CATEGORICAL},
        {"bern", l && l->kind == LATENT_BERNOULLI},
    };
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++)
        if (strlen(conds[i].name) == n && strncmp(conds[i].name, c, n) == 0) return conds[i].holds;
    return 0;
}

/* The value of {NAME}; 0, or -1 when NAME is not known (the text is then written as it is). */
static int formula_var(FILE *out, const formula_env *env, const char *v, size_t n) {
    const vae_estimator *e = &env->m->est;
    const vae_latent *l = env->l;
    int scale = l && l->posterior.b_is_scale;
#define IS(name) (n == sizeof(name) - 1 && strncmp(v, name, n) == 0)
    if (IS("x")) fputs(env->m->data ? env->m->data->name : "x", out);
    else if (IS("z")) fputs(env->z, out);
    else if (IS("zi") && l) fputs(l->name, out);
    else if (IS("S")) fprintf(out, "%d", e->samples);
    else if (IS("A")) fprintf(out, "%g", e->alpha);
    else if (IS("T")) fprintf(out, "%g", e->temperature > 0 ? e->temperature : 1.0);
    else if (IS("B")) fputs(e->baseline ? e->baseline->name : "?", out);
    else if (IS("K")) fprintf(out, "%d", e->topk);
    else if (IS("C")) fputs(e->control ? e->control->name : "?", out);
    else if (IS("beta")) { if (e->beta != 1) fprintf(out, "%g * ", e->beta); }
    else if (IS("avg")) { if (e->samples > 1) fprintf(out, "(1/%d) sum_{s=1..%d} ", e->samples, e->samples); }
    else if (IS("s")) { if (e->samples > 1) fputs("_s", out); }
    else if (IS("sd") && l) fputs(scale ? "scale" : "exp(logvar / 2)", out);
    else if (IS("kl") && l)
        fputs(scale ? "0.5 * sum(mean^2 + scale^2 - 1 - 2 log scale)" : "0.5 * sum(mean^2 + exp(logvar) - 1 - logvar)", out);
    else return -1;
#undef IS
    return 0;
}

/* The index of the '}' that closes the '{' at t[i], or n. */
static size_t matching_brace(const char *t, size_t i, size_t n) {
    for (int depth = 0; i < n; i++) {
        depth += (t[i] == '{') - (t[i] == '}');
        if (depth == 0) return i;
    }
    return n;
}

/* Writes t[0, n) with its {NAME}s and {?COND:text}s expanded; other braces (sum_{k=1..{S}})
 * are text, their insides expanded. */
static void formula_expand(FILE *out, const formula_env *env, const char *t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t close = t[i] == '{' ? matching_brace(t, i, n) : n;
        if (close == n) {
            fputc(t[i], out);
            continue;
        }
        const char *body = t + i + 1, *colon = memchr(body, ':', close - i - 1);
        if (body[0] == '?' && colon) {
            if (formula_cond(env, body + 1, (size_t)(colon - body - 1)))
                formula_expand(out, env, colon + 1, (size_t)(t + close - colon - 1));
        } else if (formula_var(out, env, body, close - i - 1)) {
            fputc('{', out);
            continue;
        }
        i = close;
    }
}

/* One line of the formula; nothing when it expands to nothing (a condition that does not hold). */
static void formula_line(FILE *out, const formula_env *env, const char *t, size_t n, int first) {
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) abort();
    formula_expand(mem, env, t, n);
    fclose(mem);
    if (len) fprintf(out, "%s%s\n", first ? "  maximise  " : "    ", text);
    free(text);
}

static void print_formula(FILE *out, const vae_model *m, const char *formula) {
    formula_env env = {.m = m};
    size_t n = 0;
    for (int i = 0; i < m->nlatents; i++)
        n += (size_t)snprintf(env.z + n, sizeof env.z - n, "%s%s", i ? "," : "", m->latents[i].name);
    for (const char *line = formula, *end; *line; line = *end ? end + 1 : end) {
        end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        if (*line != '@') {
            env.l = NULL;
            formula_line(out, &env, line, (size_t)(end - line), line == formula);
        } else
            for (int i = 0; i < m->nlatents; i++) { /* once per latent */
                env.l = &m->latents[i];
                formula_line(out, &env, line + 1, (size_t)(end - line - 1), 0);
            }
    }
}

void vae_print_objective(FILE *out, const vae_model *m) {
    const char *formula = chk_estimator_formula(m->est.kind);
    if (m->structured) chk_print_structured_objective(out, m);
    else if (formula) print_formula(out, m, formula);
    else fprintf(out, "  maximise  the %s objective (see docs/estimators.md)\n", vae_estimator_name(m->est.kind));
    fprintf(out, "  averaged over the batch; the gradient is derived at compile time\n");
}

void vae_print_summary(FILE *out, const vae_model *m) {
    fprintf(out, "model %s\n", m->name);
    if (m->data)
        fprintf(out, "  data      %s: %d values, %s%s\n", m->data->name, m->data_dim, m->binary ? "binary" : "real",
                m->binary_dynamic ? " (dynamic)" : "");
    for (int i = 0; !m->structured && i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        fprintf(out, "  latent    %s: %d %s variable%s, prior ", l->name, l->nvars, chk_latent_kind_name(l->kind),
                l->nvars == 1 ? "" : "s");
        chk_print_dist(out, &l->prior);
        if (l->encoder) {
            fprintf(out, ", encoder %s returns ", l->encoder->name);
            chk_print_dist(out, &l->posterior);
        }
        fputc('\n', out);
    }
    if (m->structured) chk_print_structured(out, m);
    if (m->decoder && !m->structured) {
        fprintf(out, "  decoder   %s returns ", m->decoder->name);
        chk_print_dist(out, &m->likelihood);
        fputc('\n', out);
    }
    fputs("  estimator ", out);
    chk_print_estimator(out, &m->est);
    fputc('\n', out);
    fprintf(out, "  parameters %ld in %d tensors\n", m->param_floats, m->nparams);
    for (int i = 0; i < m->nparams; i++) {
        const vae_param *p = &m->params[i];
        char dims[96];
        int n = snprintf(dims, sizeof dims, "[");
        for (int d = 0; d < p->ndims; d++) n += snprintf(dims + n, sizeof dims - (size_t)n, "%s%d", d ? ", " : "", p->dims[d]);
        snprintf(dims + n, sizeof dims - (size_t)n, "]");
        if (!m->train.ngroups) { /* one optimiser: the list as it always was */
            fprintf(out, "    %-28s %s\n", p->name, dims);
            continue;
        }
        const vae_optim_group *g = p->group ? &m->train.groups[p->group - 1] : NULL;
        fprintf(out, "    %-28s %-14s ", p->name, dims);
        print_optimizer(out, g ? g->optimizer : m->train.optimizer, g ? g->lr : m->train.lr,
                        g ? g->momentum : m->train.momentum);
        fprintf(out, g ? " (optimizer %s)\n" : "\n", g ? g->target : "");
    }
}
