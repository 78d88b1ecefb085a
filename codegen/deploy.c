/* The deployment graphs of a version 0 model (and the decode graph of every model): encode
 * (data -> the encoders' distribution arguments), decode (latent values -> the decoder's),
 * sample (z ~ p(z), then x ~ p(x | z)) and prior_decode (the decoder's arguments at z ~ p(z)),
 * and the widths of their rows.  structured.c builds a structured model's own encode and
 * sample graphs from the same pieces (join_parts, draw_data). */
#include "codegen/estimators.h"

/* The values every parameter of a distribution contributes, in order: a, then b.  Any number
 * of parts: a concat takes G_MAX_IN inputs, so more are joined in groups first, in order. */
g_node *join_parts(g_graph *g, g_node **parts, int n, int rows) {
    if (n > G_MAX_IN) {
        g_node *groups[2 * VAE_MAX_LATENTS]; /* n is at most two per latent */
        int k = 0;
        for (int i = 0; i < n; i += G_MAX_IN) groups[k++] = join_parts(g, parts + i, n - i < G_MAX_IN ? n - i : G_MAX_IN, rows);
        return join_parts(g, groups, k, rows);
    }
    if (n == 1 && parts[0]->rows == rows) return parts[0];
    int cols = 0;
    for (int i = 0; i < n; i++) cols += parts[i]->cols;
    g_node *c = g_new(g, G_CONCAT, rows, cols);
    for (int i = 0; i < n; i++) c->in[c->nin++] = parts[i];
    return c;
}

int g_encode_width(const vae_model *m) {
    int w = 0;
    for (int i = 0; i < m->nlatents; i++) /* an encoder that reads latents needs them drawn first: no encode graph */
        if (m->latents[i].nq_parents) return 0;
    for (int i = 0; i < m->nlatents; i++) w += m->latents[i].width * (m->latents[i].posterior.b ? 2 : 1);
    return w;
}

int g_posterior_width(const vae_model *m) {
    int w = 0;
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        if (l->label && !l->encoder) continue; /* observed: read from the data block */
        if (!l->encoder) return 0;
        w += l->width * (l->posterior.b ? 2 : 1);
    }
    return w;
}

int g_latent_width(const vae_model *m) {
    int w = 0;
    for (int i = 0; i < m->nlatents; i++) w += m->latents[i].width;
    return w;
}

int g_decode_width(const vae_model *m) { return m->data_dim * (m->likelihood.b ? 2 : 1); }

/* encode: x -> for each latent its encoder's arguments (mean and logvar/scale, or logits/probs) */
static int build_encode(lowering *L, int B) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    g_node *x = g_new(g, G_DATA, B, m->data_dim), *parts[2 * VAE_MAX_LATENTS];
    x->label = m->data->name;
    int n = 0;
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        if (!l->encoder) return -1;
        L->nenv = 0;
        env_bind(L, m->data->name, x);
        g_node *a, *b;
        lower_network(L, l->encoder, &l->posterior, &a, &b);
        if (L->failed) return -1;
        parts[n++] = a;
        if (b) parts[n++] = b;
    }
    g->out.api_out = join_parts(g, parts, n, B);
    return 0;
}

/* decode: latent values [B, sum of widths] (one-hot for categorical) -> the decoder's arguments */
static g_node *decoder_args(lowering *L, g_node **z) {
    g_node *a, *b;
    if (lower_decoder(L, z, &a, &b)) return NULL;
    g_node *parts[2] = {a, b};
    return join_parts(L->g, parts, b ? 2 : 1, z[0]->rows);
}

static int build_decode(lowering *L, int B) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    g_node *zin = g_new(g, G_DATA, B, g_latent_width(m)), *z[VAE_MAX_LATENTS];
    zin->label = "z";
    int col = 0;
    for (int i = 0; i < m->nlatents; i++) {
        z[i] = g_new(g, G_SLICE, B, m->latents[i].width);
        z[i]->col0 = col;
        z[i]->in[z[i]->nin++] = zin;
        col += m->latents[i].width;
    }
    g->out.api_out = decoder_args(L, z);
    return g->out.api_out ? 0 : -1;
}

/* sample: z ~ p(z), then x ~ p(x | z) (0/1 draws, or mean + sd * eps); or, with decoder_args, the
 * decoder's arguments at z (GRAPH_PRIOR_DECODE: the same z, the same noise) */
static int build_sample(lowering *L, int B, int decoder_args_only) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    prepared P;
    if (prepare(L, &P, B, 1, 0)) return -1;
    g_node *z[VAE_MAX_LATENTS];
    for (int i = 0; i < m->nlatents; i++)
        z[i] = m->latents[i].kind == LATENT_NORMAL ? normal_sample(L, &P, i, 1) : discrete_sample(L, &P, i, 1);
    if (decoder_args_only) {
        g->out.api_out = decoder_args(L, z);
        return g->out.api_out ? 0 : -1;
    }
    g_node *a, *b;
    if (lower_decoder(L, z, &a, &b)) return -1;
    return draw_data(L, a, b, B);
}

/* x ~ p(x | a, b) for B examples (0/1 draws, or mean + sd * eps) into api_out. */
int draw_data(lowering *L, g_node *a, g_node *b, int B) {
    g_graph *g = L->g;
    const vae_model *m = g->model;
    const vae_dist *d = &m->likelihood;
    a = per_example(g, a, B);
    if (d->kind == DIST_BERNOULLI) {
        g_node *logits = a;
        if (d->a_is_probs) { /* probs -> logits */
            const vx_expr *lo = C(1e-7);
            logits = g_map1(g, BIN(VX_SUB, U(VX_LOG, BIN(VX_MAX, IN(0), lo)), U(VX_LOG, BIN(VX_MAX, BIN(VX_SUB, C(1), IN(0)), lo))), a);
        }
        g_node *x = g_new(g, G_SAMPLE, B, m->data_dim);
        x->nvars = m->data_dim;
        x->states = 2;
        x->bernoulli = 1;
        x->stream = VAE_MAX_LATENTS;
        x->group = 1;
        x->in[x->nin++] = logits;
        g->out.api_out = x;
    } else {
        g_node *eps = g_new(g, G_NOISE, B, m->data_dim);
        eps->stream = VAE_MAX_LATENTS;
        eps->group = 1;
        const vx_expr *sd = d->b_is_scale ? IN(1) : U(VX_EXP, BIN(VX_MUL, C(0.5), IN(1)));
        g->out.api_out = g_map(g, BIN(VX_ADD, IN(0), BIN(VX_MUL, sd, IN(2))), 3, (g_node *[]){a, b, eps}, B, m->data_dim);
    }
    return 0;
}

/* The graph of a deployment purpose (g_purposes[purpose].outputs has G_OUT_API); 0 or -1. */
int g_build_deployment(lowering *L, g_purpose purpose, int batch) {
    switch (purpose) {
    case GRAPH_ENCODE: return has_encoders(L->g->model) ? build_encode(L, batch) : -1;
    case GRAPH_DECODE: return build_decode(L, batch);
    case GRAPH_SAMPLE: return build_sample(L, batch, 0);
    case GRAPH_PRIOR_DECODE: return build_sample(L, batch, 1);
    default: return -1;
    }
}
