/* The graph's nodes: constructors (g_new, g_map, g_matmul, ...), the table of graph
 * purposes, and the graph's text form (see graph.h for the row and column conventions).
 * The lowering of networks into these nodes is lower.c. */
#include "codegen/graph.h"

#include <stdlib.h>
#include <string.h>

#include "vae/driver.h"


/* ---------------------------------------------------------------- nodes */

g_node *g_new(g_graph *g, g_kind kind, int rows, int cols) {
    if (g->nnodes == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 64;
        g->nodes = realloc(g->nodes, sizeof *g->nodes * (size_t)g->cap);
        if (!g->nodes) abort();
    }
    g_node *n = vae_pool_alloc(g->pool, sizeof *n);
    n->kind = kind;
    n->id = g->nnodes;
    n->rows = rows;
    n->cols = cols;
    n->dom_rows = rows;
    n->dom_cols = cols;
    /* g_build refuses batches that would pass the limit; this catches a lowering that forgets one */
    if (!g->oversized && (rows < 0 || cols < 0 || (long long)rows * cols > VAE_MAX_VALUES)) g->oversized = n;
    g->nodes[g->nnodes++] = n;
    return n;
}

void g_add_input(g_node *n, g_node *in) {
    if (n->nin == G_MAX_IN) abort(); /* callers never build wider nodes */
    n->in[n->nin++] = in;
    n->needs_grad |= in->needs_grad;
}

g_node *g_map(g_graph *g, const vx_expr *e, int nin, g_node *const *in, int rows, int cols) {
    g_node *n = g_new(g, G_MAP, rows, cols);
    n->expr = e;
    for (int i = 0; i < nin; i++) g_add_input(n, in[i]);
    return n;
}

static int max_rows(int nin, g_node *const *in) {
    int r = 1;
    for (int i = 0; i < nin; i++)
        if (in[i]->rows > r) r = in[i]->rows;
    return r;
}

g_node *g_map1(g_graph *g, const vx_expr *e, g_node *a) { return g_map(g, e, 1, &a, a->rows, a->cols); }

g_node *g_map2(g_graph *g, const vx_expr *e, g_node *a, g_node *b) {
    g_node *in[2] = {a, b};
    return g_map(g, e, 2, in, max_rows(2, in), a->cols > b->cols ? a->cols : b->cols);
}

g_node *g_matmul(g_graph *g, g_node *a, int ta, g_node *b, int tb) {
    int m = ta ? a->cols : a->rows, n = tb ? b->rows : b->cols;
    g_node *r = g_new(g, G_MATMUL, m, n);
    r->trans_a = ta;
    r->trans_b = tb;
    g_add_input(r, a);
    g_add_input(r, b);
    return r;
}

g_node *g_rowsum(g_graph *g, g_node *a) {
    g_node *r = g_new(g, G_ROWSUM, a->rows, 1);
    r->expr = vx_in(g, 0);
    r->dom_cols = a->cols;
    g_add_input(r, a);
    return r;
}

g_node *g_colgroupsum(g_graph *g, g_node *a, int cols) {
    g_node *r = g_new(g, G_ROWSUM, a->rows, cols);
    r->expr = vx_in(g, 0);
    r->dom_cols = a->cols;
    g_add_input(r, a);
    return r;
}

g_node *g_groupsum(g_graph *g, g_node *a, int rows) {
    g_node *r = g_new(g, G_GROUPSUM, rows, a->cols);
    r->expr = vx_in(g, 0);
    r->dom_rows = a->rows;
    g_add_input(r, a);
    return r;
}

int g_window_oh(const g_window *w) { return (w->h + 2 * w->pad - w->k) / w->stride + 1; }
int g_window_ow(const g_window *w) { return (w->w + 2 * w->pad - w->k) / w->stride + 1; }

long g_window_images(const g_node *n) {
    const g_node *image = n->kind == G_IM2COL ? n->in[0] : n;
    return (long)image->rows * image->cols / ((long)n->window.c * n->window.h * n->window.w);
}

g_node *g_im2col(g_graph *g, g_node *image, g_window w) {
    long images = (long)image->rows * image->cols / ((long)w.c * w.h * w.w);
    g_node *r = g_new(g, G_IM2COL, (int)(images * g_window_oh(&w) * g_window_ow(&w)), w.k * w.k * w.c);
    r->window = w;
    g_add_input(r, image);
    return r;
}

g_node *g_col2im(g_graph *g, g_node *cols, g_window w, int rows, int ncols) {
    g_node *r = g_new(g, G_COL2IM, rows, ncols);
    r->window = w;
    g_add_input(r, cols);
    return r;
}

g_node *g_transpose(g_graph *g, g_node *a, int p, int q, int rows, int cols) {
    g_node *r = g_new(g, G_TRANSPOSE, rows, cols);
    r->tp = p;
    r->tq = q;
    g_add_input(r, a);
    return r;
}

/* ---------------------------------------------------------------- purposes */

#define SLOT(field) offsetof(vr_program, field)
#define TRAINING_ROWS (G_OUT_RECON | G_OUT_KL | G_OUT_LOGPX | G_OUT_VALUE)
const g_purpose_info g_purposes[GRAPH_PURPOSES] = {
    [GRAPH_TRAIN] = {"vae_train_step", "train", SLOT(train), 0, 1, G_OUT_OBJECTIVE | TRAINING_ROWS},
    /* the objective: the builders eval shares with training set one; no one reads it */
    [GRAPH_EVAL] = {"vae_eval", "eval", SLOT(eval), 0, 0, G_OUT_OBJECTIVE | TRAINING_ROWS | G_OUT_CORRECT},
    [GRAPH_IWAE] = {"vae_iwae", "iwae", SLOT(iwae), 0, 0, G_OUT_LOGW | G_OUT_RECON | G_OUT_KL},
    [GRAPH_ENCODE] = {"vae_encode", "encode", SLOT(encode), SLOT(api_out_encode), 0, G_OUT_API},
    [GRAPH_DECODE] = {"vae_decode", "decode", SLOT(decode), SLOT(api_out_decode), 0, G_OUT_API},
    [GRAPH_SAMPLE] = {"vae_sample", "sample", SLOT(sample), SLOT(api_out_sample), 0, G_OUT_API},
    [GRAPH_PRIOR_DECODE] = {"vae_prior_decode", "sample", SLOT(sample), SLOT(api_out_sample), 0, G_OUT_API},
};
#undef TRAINING_ROWS
#undef SLOT

unsigned g_outputs_set(const g_outputs *out) {
    return (out->objective ? G_OUT_OBJECTIVE : 0) | (out->recon_rows ? G_OUT_RECON : 0) | (out->kl_rows ? G_OUT_KL : 0) |
           (out->logw_rows ? G_OUT_LOGW : 0) | (out->logpx_rows ? G_OUT_LOGPX : 0) |
           (out->value_rows ? G_OUT_VALUE : 0) | (out->api_out ? G_OUT_API : 0) | (out->correct_rows ? G_OUT_CORRECT : 0);
}

int g_product_group(const g_graph *g, int i, const g_node **members) {
    const g_node *n = g->nodes[i];
    if (n->kind != G_MATMUL || n->fused || n->with_previous) return 0;
    int count = 0;
    members[count++] = n;
    for (int k = i + 1; k < g->nnodes; k++) {
        const g_node *p = g->nodes[k];
        if (p->fused || p->kind == G_PARAM || p->kind == G_DATA) continue;
        if (p->kind != G_MATMUL || !p->with_previous) break;
        members[count++] = p;
    }
    return count;
}

void g_free(g_graph *g) {
    if (!g) return;
    free(g->nodes);
    vae_pool_free(g->pool);
    free(g);
}

static const char *kind_name(g_kind k) {
    static const char *const names[] = {"param", "data",  "noise", "map",    "matmul", "rowsum",
                                        "groupsum", "concat", "slice", "states", "klweight", "sample",
                                        "im2col", "col2im", "transpose"};
    return names[k];
}

void g_dump(FILE *out, const g_graph *g) {
    fprintf(out, "graph %s: batch %d, samples %d, %d nodes, arena %ld floats\n", g->fn_name, g->batch, g->samples,
            g->nnodes, g->arena_floats);
    if (g->decoder_note) fprintf(out, "  # decoder at the discrete draws: %s\n", g->decoder_note);
    for (int i = 0; i < g->nnodes; i++) {
        const g_node *n = g->nodes[i];
        if (n->fused) continue;
        fprintf(out, "  %%%d = %s [%d, %d]", n->id, kind_name(n->kind), n->rows, n->cols);
        for (int j = 0; j < n->nin; j++) fprintf(out, "%s%%%d", j ? ", " : " (", n->in[j]->id);
        if (n->nin) fputc(')', out);
        if (n->kind == G_MATMUL) fprintf(out, " trans %d %d%s", n->trans_a, n->trans_b, n->with_previous ? " with previous" : "");
        if (n->kind == G_IM2COL || n->kind == G_COL2IM)
            fprintf(out, " image %dx%dx%d kernel %d stride %d pad %d", n->window.c, n->window.h, n->window.w, n->window.k,
                    n->window.stride, n->window.pad);
        if (n->kind == G_TRANSPOSE) fprintf(out, " blocks %dx%d", n->tp, n->tq);
        if (n->pixels) fprintf(out, " (%d pixels per image)", n->pixels);
        if (n->expr) {
            fputs(" = ", out);
            vx_print(out, n->expr);
        }
        if (n->label) fprintf(out, "  # %s", n->label);
        if (n->buffer == BUF_ARENA) fprintf(out, "  @%ld", n->offset);
        fputc('\n', out);
    }
}
