/* The C back end: the same planned graphs that llvm.c compiles, printed as one
 * standalone C file (model.c) with its deployment header (model.h).
 *
 * Every node becomes one small static function, named after the graph and the
 * layer it belongs to, with its shape in a comment; each graph is a function
 * calling them in order.  Expressions are printed operation by operation in
 * the element type, as llvm.c builds them, so the two back ends compute the
 * same numbers.  The runtime (RNG, products, optimisers, data, checkpoints, the
 * training driver) is printed from its own sources, embedded in vaec at build
 * time (scripts/embed.sh), so there is one runtime, not two. */
#include "config.h"

#include "vae/compiler.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/graph.h"
#include "codegen/labels.h"
#include "codegen/kernel.h"
#include "codegen/pipeline.h"
#include "parser/settings.h"

struct vae_embedded_file {
    const char *name, *text;
};
extern const struct vae_embedded_file vae_runtime_files[];
extern const struct vae_embedded_file vae_trainer_files[]; /* codegen/emitted/trainer.c */

typedef struct {
    FILE *o;
    const g_graph *g;
    const char *prefix; /* the graph's short name: train, eval, iwae, encode, decode, sample */
    int nfwd;           /* nodes before this index belong to the forward pass */
} cw;

static const char BUFNAME[4] = {'A', 'P', 'G', 'X'}; /* indexed by g_buffer */

/* ---------------------------------------------------------------- text */

/* A float constant that reads back as exactly the value LLVM's ConstReal(float) holds. */
static void print_const(FILE *o, double v) {
    if (isinf(v)) {
        fputs(v < 0 ? "-INFINITY" : "INFINITY", o);
        return;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%.9g", (double)(float)v);
    if (!strpbrk(buf, ".en")) strcat(buf, ".0");
    fprintf(o, "%sf", buf);
}

/* Text from the model that reaches a comment: letters, digits and . # _ | ( ) - / only
 * (no '*', so no comment can end or nest). */
static void print_safe(FILE *o, const char *s) {
    for (; s && *s; s++) fputc(isalnum((unsigned char)*s) || strchr(".#_ |()-/", *s) ? *s : '_', o);
}

/* The one line that builds an emitted trainer with the JIT's bits: the matrix library and
 * options vaec was configured with (config.h), no contraction into FMA (clang contracts
 * by default; gcc's -std=c11 does not). */
void vae_emit_c_build_line(FILE *o, const char *c_name) {
    char exe[VR_PATH_MAX];
    snprintf(exe, sizeof exe, "%s", c_name);
    size_t len = strlen(exe);
    if (len > 2 && !strcmp(exe + len - 2, ".c")) exe[len - 2] = 0;
    fprintf(o, "cc -std=c11 -O2 -ffp-contract=off -DVAE_MAIN -DVAE_USE_ZLIB %s %s -o %s %s -lz -lm", VAE_BLAS_CFLAGS,
            c_name, exe, VAE_BLAS_LIBS);
}

/* A C identifier from a label. */
static void print_ident(FILE *o, const char *s) {
    for (; s && *s; s++) fputc(isalnum((unsigned char)*s) ? *s : '_', o);
}

/* A C string literal of arbitrary text. */
static void print_string(FILE *o, const char *s) {
    fputc('"', o);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(o, "\\%c", ch);
        else if (ch < 32 || ch >= 127 || ch == '?') fprintf(o, "\\%03o", ch);
        else fputc(ch, o);
    }
    fputc('"', o);
}

/* ---------------------------------------------------------------- expressions */

static void print_expr(FILE *o, const vx_expr *e) {
    switch (e->op) {
    case VX_CONST: print_const(o, e->c); return;
    case VX_IN: fprintf(o, "v%d", e->in); return;
    case VX_NEG: fputs("-", o); break;
    case VX_EXP: fputs("vae_exp", o); break;
    case VX_LOG: fputs("logf", o); break;
    case VX_LOG1P: fputs("log1pf", o); break;
    case VX_TANH: fputs("tanhf", o); break;
    case VX_SQRT: fputs("sqrtf", o); break;
    case VX_SIGMOID: fputs("vae_sigmoid", o); break;
    case VX_SOFTPLUS: fputs("vae_softplus", o); break;
    case VX_RELU: fputs("vae_relu", o); break;
    case VX_STEP: fputs("vae_step", o); break;
    case VX_SELECT:
        fputs("(", o);
        print_expr(o, e->s);
        fputs(" > 0.0f ? ", o);
        print_expr(o, e->a);
        fputs(" : ", o);
        print_expr(o, e->b);
        fputs(")", o);
        return;
    case VX_MAX:
        fputs("vae_max(", o);
        print_expr(o, e->a);
        fputs(", ", o);
        print_expr(o, e->b);
        fputs(")", o);
        return;
    default: {
        static const char *const ops[] = {[VX_ADD] = "+", [VX_SUB] = "-", [VX_MUL] = "*", [VX_DIV] = "/"};
        fputc('(', o);
        print_expr(o, e->a);
        fprintf(o, " %s ", ops[e->op]);
        print_expr(o, e->b);
        fputc(')', o);
        return;
    }
    }
    fputc('(', o);
    print_expr(o, e->a);
    fputc(')', o);
}

/* The index of element (r, c) of the domain within input `in`, as C text. */
static void print_index(FILE *o, const g_node *in, int dom_rows, int dom_cols, const char *r, const char *c) {
    fprintf(o, "%ld + ", in->offset);
    if (in->rows == dom_rows)
        fprintf(o, "%s * %d", r, in->cols);
    else if (in->rows == 1)
        fputs("0", o);
    else
        fprintf(o, "(%s / %d) * %d", r, dom_rows / in->rows, in->cols);
    if (in->cols == dom_cols)
        fprintf(o, " + %s", c);
    else if (in->cols != 1)
        fprintf(o, " + %s / %d", c, dom_cols / in->cols);
}

enum { LOADS_ELEMENT, LOADS_ROW };

/* Loads of the inputs an expression reads, one named value each: those that
 * change along a row (LOADS_ELEMENT) or those loaded once per row (LOADS_ROW,
 * kernel.h: kernel_load_per_row).  `flat` is kernel_flat_access(n). */
static void print_loads(cw *w, const g_node *n, const char *indent, int flat, const char *r, const char *c, int which) {
    for (int j = 0; j < n->nin; j++) {
        if (!vx_uses(n->expr, j)) continue;
        if ((which == LOADS_ROW) != kernel_load_per_row(n, j)) continue;
        fprintf(w->o, "%sconst float v%d = %c[", indent, j, BUFNAME[n->in[j]->buffer]);
        if (flat)
            fprintf(w->o, "%ld + i", n->in[j]->offset);
        else
            print_index(w->o, n->in[j], n->dom_rows, n->dom_cols, r, c);
        fputs("];\n", w->o);
    }
}

/* ---------------------------------------------------------------- kernels */

static const char *kind_word(const g_node *n) {
    switch (n->kind) {
    case G_NOISE: return "noise";
    case G_MAP: return "map";
    case G_MATMUL: return "matmul";
    case G_ROWSUM: return n->reduce_max ? "rowmax" : "rowsum";
    case G_GROUPSUM: return n->reduce_max ? "groupmax" : "groupsum";
    case G_CONCAT: return "concat";
    case G_SLICE: return "slice";
    case G_STATES: return "states";
    case G_KLWEIGHT: return "kl_weight";
    case G_SAMPLE: return "sample";
    case G_IM2COL: return "im2col";
    case G_COL2IM: return "col2im";
    case G_TRANSPOSE: return "transpose";
    default: return "node";
    }
}

static void kernel_name(cw *w, const g_node *n) {
    fprintf(w->o, "%s_%s_", w->prefix, n->id < w->nfwd ? "fwd" : "bwd");
    if (n->label) {
        print_ident(w->o, n->label);
        fputc('_', w->o);
    }
    fprintf(w->o, "%s%d", kind_word(n), n->id);
}

static int uses_buffer(const g_node *n, g_buffer b) {
    if (n->buffer == b) return 1;
    for (int j = 0; j < n->nin; j++)
        if (n->in[j]->buffer == b && (!n->expr || vx_uses(n->expr, j))) return 1;
    return 0;
}

static void out_ref(cw *w, const g_node *n, const char *idx) {
    fprintf(w->o, "%c[%ld + %s]", BUFNAME[n->buffer], n->offset, idx);
}

/* ---- one function per node kind, as llvm.c's emit_* */

static void print_noise(cw *w, const g_node *n) {
    fprintf(w->o, "    vr_noise_%s_f32(b->ctx, &%c[%ld], %d, %d, %d, %d);\n", g_noise_name(n->noise),
            BUFNAME[n->buffer], n->offset, n->rows, n->cols, n->group, n->stream);
}

static void print_sample(cw *w, const g_node *n) {
    FILE *o = w->o;
    if (n->nin)
        fprintf(o, "    vr_sample_f32(b->ctx, &%c[%ld], %d, &%c[%ld], %d, %d, %d, %d, %d, %d);\n", BUFNAME[n->in[0]->buffer],
                n->in[0]->offset, n->in[0]->rows, BUFNAME[n->buffer], n->offset, n->rows, n->nvars, n->states, n->group,
                n->stream, n->bernoulli);
    else
        fprintf(o, "    vr_sample_f32(b->ctx, NULL, 0, &%c[%ld], %d, %d, %d, %d, %d, %d);\n", BUFNAME[n->buffer], n->offset,
                n->rows, n->nvars, n->states, n->group, n->stream, n->bernoulli);
}

static void print_states(cw *w, const g_node *n) {
    fprintf(w->o, "    vr_states_f32(&%c[%ld], %d, %ld, %ld, %d, %d, %d);\n", BUFNAME[n->buffer], n->offset, n->rows,
            n->stride, n->local, n->nvars, n->states, n->bernoulli);
}

static void print_kl_weight(cw *w, const g_node *n) {
    fprintf(w->o, "    %c[%ld] = (float)(%.17g * (1.0 - b->ctx->kl_withheld));\n", BUFNAME[n->buffer], n->offset,
            n->value);
}

static void print_window(cw *w, const g_node *n) {
    const g_window *win = &n->window;
    fprintf(w->o, "    vr_%s_f32(&%c[%ld], &%c[%ld], %d, %d, %d, %d, %d, %d, %d);\n", kind_word(n),
            BUFNAME[n->in[0]->buffer], n->in[0]->offset, BUFNAME[n->buffer], n->offset, (int)g_window_images(n), win->c,
            win->h, win->w, win->k, win->stride, win->pad);
}

static void print_transpose(cw *w, const g_node *n) {
    fprintf(w->o, "    vr_transpose_f32(&%c[%ld], &%c[%ld], %ld, %d, %d);\n", BUFNAME[n->in[0]->buffer],
            n->in[0]->offset, BUFNAME[n->buffer], n->offset, (long)n->rows * n->cols / ((long)n->tp * n->tq), n->tp,
            n->tq);
}

static void print_matmul(cw *w, const g_node *n) {
    const g_node *a = n->in[0], *m = n->in[1];
    int k = n->trans_a ? a->rows : a->cols;
    fprintf(w->o, "    vr_gemm_f32(%d, %d, %d, %d, %d, &%c[%ld], %d, &%c[%ld], %d, &%c[%ld], %d);\n", n->trans_a,
            n->trans_b, n->rows, n->cols, k, BUFNAME[a->buffer], a->offset, a->cols, BUFNAME[m->buffer], m->offset,
            m->cols, BUFNAME[n->buffer], n->offset, n->cols);
}

static void print_map(cw *w, const g_node *n) {
    FILE *o = w->o;
    if (kernel_flat_access(n)) {
        fprintf(o, "    for (long i = lo * %d; i < hi * %d; i++) {\n", n->cols, n->cols);
        print_loads(w, n, "        ", 1, NULL, NULL, LOADS_ELEMENT);
        fputs("        ", o);
        out_ref(w, n, "i");
        fputs(" = ", o);
        print_expr(o, n->expr);
        fputs(";\n    }\n", o);
        return;
    }
    fputs("    for (long r = lo; r < hi; r++) {\n", o);
    print_loads(w, n, "        ", 0, "r", "0", LOADS_ROW);
    fprintf(o, "        for (long c = 0; c < %d; c++) {\n", n->cols);
    print_loads(w, n, "            ", 0, "r", "c", LOADS_ELEMENT);
    fprintf(o, "            ");
    fprintf(o, "%c[%ld + r * %d + c] = ", BUFNAME[n->buffer], n->offset, n->cols);
    print_expr(o, n->expr);
    fputs(";\n        }\n    }\n", o);
}

/* The lanes of a row reduction (kernel.h: KERNEL_LANES), then their halving into acc. */
static void print_rowsum_lanes(cw *w, const g_node *n, int G, int flat, int vcols, const char *init) {
    FILE *o = w->o;
    fprintf(o, "            float lane[%d];\n", KERNEL_LANES);
    fprintf(o, "            for (long l = 0; l < %d; l++) lane[l] = %s;\n", KERNEL_LANES, init);
    fprintf(o, "            for (long k0 = 0; k0 < %d; k0 += %d)\n", vcols, KERNEL_LANES);
    fprintf(o, "                for (long l = 0; l < %d; l++) {\n", KERNEL_LANES);
    fprintf(o, "                    const long c = j * %d + k0 + l;\n", G);
    if (flat) fprintf(o, "                    const long i = r * %d + c;\n", n->dom_cols);
    print_loads(w, n, "                    ", flat, "r", "c", LOADS_ELEMENT);
    fputs("                    const float v = ", o);
    print_expr(o, n->expr);
    fprintf(o, ";\n                    lane[l] = %s;\n                }\n",
            n->reduce_max ? "v > lane[l] ? v : lane[l]" : "lane[l] + v");
    fprintf(o, "            for (long h = %d; h >= 1; h /= 2)\n", KERNEL_LANES / 2);
    fprintf(o, "                for (long l = 0; l < h; l++) lane[l] = %s;\n",
            n->reduce_max ? "lane[l + h] > lane[l] ? lane[l + h] : lane[l]" : "lane[l] + lane[l + h]");
    fputs("            acc = lane[0];\n", o);
}

/* The order of llvm.c's emit_rowsum: lanes, halving, then the tail in order. */
static void print_rowsum(cw *w, const g_node *n) {
    FILE *o = w->o;
    int G = n->dom_cols / n->cols, flat = kernel_flat_access(n), vcols = (int)kernel_vector_cols(n, 1);
    const char *init = n->reduce_max ? "-INFINITY" : "0.0f";
    const char *fold = n->reduce_max ? "v > acc ? v : acc" : "acc + v";
    fputs("    for (long r = lo; r < hi; r++) {\n", o);
    print_loads(w, n, "        ", flat, "r", "0", LOADS_ROW);
    fprintf(o, "        for (long j = 0; j < %d; j++) {\n", n->cols);
    fprintf(o, "            float acc = %s;\n", init);
    if (vcols) print_rowsum_lanes(w, n, G, flat, vcols, init);
    fprintf(o, "            for (long k = %d; k < %d; k++) {\n                const long c = j * %d + k;\n", vcols, G, G);
    if (flat) fprintf(o, "                const long i = r * %d + c;\n", n->dom_cols);
    print_loads(w, n, "                ", flat, "r", "c", LOADS_ELEMENT);
    fputs("                const float v = ", o);
    print_expr(o, n->expr);
    fprintf(o, ";\n                acc = %s;\n            }\n", fold);
    fprintf(o, "            %c[%ld + r * %d + j] = acc;\n        }\n    }\n", BUFNAME[n->buffer], n->offset, n->cols);
}

static void print_groupsum(cw *w, const g_node *n) {
    FILE *o = w->o;
    int flat = kernel_flat_access(n), by_cols = g_kernel_by_cols(n), group = n->dom_rows / n->rows;
    const char *init = n->reduce_max ? "-INFINITY" : "0.0f";
    if (by_cols) { /* units: columns, each summed over every row in order */
        fprintf(o, "    for (long i = lo; i < hi; i++) %c[%ld + i] = %s;\n", BUFNAME[n->buffer], n->offset, init);
        fprintf(o, "    for (long r = 0; r < %d; r++) {\n", n->dom_rows);
    } else { /* units: the output's rows, each summing its group */
        fprintf(o, "    for (long i = lo * %d; i < hi * %d; i++) %c[%ld + i] = %s;\n", n->cols, n->cols,
                BUFNAME[n->buffer], n->offset, init);
        fprintf(o, "    for (long r = lo * %d; r < hi * %d; r++) {\n", group, group);
    }
    print_loads(w, n, "        ", flat, "r", "0", LOADS_ROW);
    if (by_cols) fputs("        for (long c = lo; c < hi; c++) {\n", o);
    else fprintf(o, "        for (long c = 0; c < %d; c++) {\n", n->cols);
    if (flat) fprintf(o, "            const long i = r * %d + c;\n", n->dom_cols);
    print_loads(w, n, "            ", flat, "r", "c", LOADS_ELEMENT);
    fprintf(o, "            float *at = &%c[%ld + (r / %d) * %d + c];\n            const float v = ", BUFNAME[n->buffer],
            n->offset, n->dom_rows / n->rows, n->cols);
    print_expr(o, n->expr);
    fprintf(o, ";\n            *at = %s;\n        }\n    }\n", n->reduce_max ? "v > *at ? v : *at" : "*at + v");
}

/* dst's columns [dst_col0, dst_col0 + cols) = src's [src_col0, src_col0 + cols), row by row
 * (src's rows broadcast): a CONCAT's part or a SLICE, as llvm.c's emit_copy_cols. */
static void print_copy_cols(cw *w, const g_node *dst, int dst_col0, const g_node *src, int src_col0, int cols) {
    FILE *o = w->o;
    fprintf(o, "    for (long r = lo; r < hi; r++)\n        for (long c = 0; c < %d; c++)\n", cols);
    fprintf(o, "            %c[%ld + r * %d + %d + c] = %c[%ld + ", BUFNAME[dst->buffer], dst->offset, dst->cols, dst_col0,
            BUFNAME[src->buffer], src->offset);
    if (src->rows == dst->rows) fprintf(o, "r * %d", src->cols);
    else if (src->rows == 1) fputs("0", o);
    else fprintf(o, "(r / %d) * %d", dst->rows / src->rows, src->cols);
    fprintf(o, " + %d + c];\n", src_col0);
}

/* The body of a node's function, as llvm.c's emit_node. */
static void print_node(cw *w, const g_node *n) {
    switch (n->kind) {
    case G_PARAM:
    case G_DATA: return;
    case G_NOISE: print_noise(w, n); return;
    case G_MAP: print_map(w, n); return;
    case G_MATMUL: print_matmul(w, n); return;
    case G_ROWSUM: print_rowsum(w, n); return;
    case G_GROUPSUM: print_groupsum(w, n); return;
    case G_CONCAT: {
        int col = 0;
        for (int j = 0; j < n->nin; j++) {
            print_copy_cols(w, n, col, n->in[j], 0, n->in[j]->cols);
            col += n->in[j]->cols;
        }
        return;
    }
    case G_SLICE: print_copy_cols(w, n, 0, n->in[0], n->col0, n->cols); return;
    case G_STATES: print_states(w, n); return;
    case G_SAMPLE: print_sample(w, n); return;
    case G_KLWEIGHT: print_kl_weight(w, n); return;
    case G_IM2COL:
    case G_COL2IM: print_window(w, n); return;
    case G_TRANSPOSE: print_transpose(w, n); return;
    }
}

/* A node's static function: its shape and expression in a comment, the
 * buffers it touches, then its body. */
static void print_kernel(cw *w, const g_node *n) {
    FILE *o = w->o;
    fprintf(o, "/* ");
    print_safe(o, n->label ? n->label : kind_word(n));
    fprintf(o, ": %s [%d, %d]", kind_word(n), n->rows, n->cols);
    if (n->expr) {
        fputs(" = ", o);
        vx_print(o, n->expr);
    }
    fprintf(o, "%s */\n", n->id < w->nfwd ? "" : "  (backward)");
    fputs("static void ", o);
    kernel_name(w, n);
    if (g_kernel_has_loops(n)) /* units [lo, hi) of its rows (or columns): kernel.h, g_kernel_units */
        fputs("(const void *arg, long lo, long hi) {\n    const vae_buffers *b = arg;\n", o);
    else
        fputs("(const vae_buffers *b) {\n", o);
    for (int k = 0; k < 4; k++)
        if (uses_buffer(n, (g_buffer)k)) fprintf(o, "    %sfloat *restrict %c = b->%c;\n", k == BUF_DATA ? "const " : "", BUFNAME[k], BUFNAME[k]);
    print_node(w, n);
    fputs("}\n\n", o);
}

/* Products that run at once (plan.c): one function named after the first, with
 * the ids of the others, handing all of them to the team in one call. */
static void group_name(cw *w, const g_node *const *members, int count) {
    kernel_name(w, members[0]);
    for (int i = 1; i < count; i++) fprintf(w->o, "_and%d", members[i]->id);
}

static void print_product_group(cw *w, const g_node *const *members, int count) {
    FILE *o = w->o;
    fputs("/* at once:", o);
    for (int i = 0; i < count; i++) {
        fputc(' ', o);
        print_safe(o, members[i]->label ? members[i]->label : "product");
        fprintf(o, " [%d, %d]%s", members[i]->rows, members[i]->cols, i + 1 < count ? "," : "");
    }
    fprintf(o, "%s */\nstatic void ", members[0]->id < w->nfwd ? "" : "  (backward)");
    group_name(w, members, count);
    fputs("(const vae_buffers *b) {\n", o);
    for (int k = 0; k < 4; k++) {
        int used = 0;
        for (int i = 0; i < count; i++) used |= uses_buffer(members[i], (g_buffer)k);
        if (used) fprintf(o, "    %sfloat *restrict %c = b->%c;\n", k == BUF_DATA ? "const " : "", BUFNAME[k], BUFNAME[k]);
    }
    fprintf(o, "    const vr_gemm_job jobs[%d] = {\n", count);
    for (int i = 0; i < count; i++) {
        const g_node *n = members[i], *a = n->in[0], *m = n->in[1];
        int k = n->trans_a ? a->rows : a->cols;
        fprintf(o, "        {%d, %d, %d, %d, %d, %d, %d, %d, 0, &%c[%ld], &%c[%ld], &%c[%ld]},\n", n->trans_a, n->trans_b,
                n->rows, n->cols, k, a->cols, m->cols, n->cols, BUFNAME[a->buffer], a->offset, BUFNAME[m->buffer],
                m->offset, BUFNAME[n->buffer], n->offset);
    }
    fprintf(o, "    };\n    vr_gemm_jobs(jobs, %d);\n}\n\n", count);
}

static void print_graph(FILE *o, const g_graph *g) {
    cw w = {o, g, g_purposes[g->purpose].field, g->nnodes};
    /* backward nodes follow the objective: everything after it was appended by autodiff */
    if (g_purposes[g->purpose].gradient && g->out.objective)
        for (int i = 0; i < g->nnodes; i++)
            if (g->nodes[i] == g->out.objective) w.nfwd = i + 1;
    fprintf(o, "/* ================================================================ %s: batch %d, samples %d,\n"
               "   arena %ld floats */\n\n",
            g->fn_name, g->batch, g->samples, g->arena_floats);
    const g_node *members[G_PRODUCT_GROUP_MAX];
    for (int i = 0; i < g->nnodes; i++) {
        const g_node *n = g->nodes[i];
        if (n->fused || n->kind == G_PARAM || n->kind == G_DATA) continue;
        int count = n->kind == G_MATMUL ? g_product_group(g, i, members) : 1;
        if (count > 1) print_product_group(&w, members, count);
        else if (count == 1) print_kernel(&w, n);
    }
    fprintf(o, "static void %s(float *params, float *grads, float *arena, const float *data, const vr_ctx *ctx) {\n",
            g->fn_name);
    fputs("    const vae_buffers b = {arena, params, grads, data, ctx};\n", o);
    for (int i = 0; i < g->nnodes; i++) {
        const g_node *n = g->nodes[i];
        if (n->fused || n->kind == G_PARAM || n->kind == G_DATA) continue;
        int count = n->kind == G_MATMUL ? g_product_group(g, i, members) : 1;
        if (count == 0) continue; /* runs with the product before it */
        fputs("    ", o);
        if (count > 1) {
            group_name(&w, members, count);
            fputs("(&b);\n", o);
        } else if (!g_kernel_has_loops(n)) {
            kernel_name(&w, n);
            fputs("(&b);\n", o);
        } else if (g_kernel_split(n)) { /* shared by the team's threads (runtime: team.c) */
            fputs("vr_split(", o);
            kernel_name(&w, n);
            fprintf(o, ", &b, %ld);\n", g_kernel_units(n));
        } else {
            kernel_name(&w, n);
            fprintf(o, "(&b, 0, %ld);\n", g_kernel_units(n));
        }
    }
    if (g_purposes[g->purpose].gradient) /* parameters that no path reaches get a zero gradient */
        for (int p = 0; p < g->model->nparams; p++)
            if (!g->param_grad[p])
                fprintf(o, "    for (long i = 0; i < %ld; i++) grads[%ld + i] = 0.0f;\n", g->model->params[p].size,
                        g->model->params[p].offset);
    fputs("}\n\n", o);
}

/* ---------------------------------------------------------------- the file */

/* Whether a runtime line declares one of its functions with external linkage: it starts at
 * column 0 with a type (not static, typedef, extern or a macro in capitals), and the first
 * name before a '(' begins with vr_, with no '=' before it. */
static int external_declaration(const char *line, size_t len) {
    static const char *const skip[] = {"static ", "typedef ", "extern ", "struct ", "enum ", "union ", "return "};
    if (!islower((unsigned char)line[0]) && line[0] != '_') return 0;
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (!strncmp(line, skip[i], strlen(skip[i]))) return 0;
    const char *paren = memchr(line, '(', len);
    if (!paren || memchr(line, '=', (size_t)(paren - line))) return 0;
    const char *name = paren;
    while (name > line && (isalnum((unsigned char)name[-1]) || name[-1] == '_')) name--;
    return !strncmp(name, "vr_", 3);
}

/* The runtime's sources, each function given internal linkage (VAE_RT: static): the
 * prototypes in its headers come first, so every definition after them is static too, and
 * any number of emitted models link into one program. */
static void print_runtime(FILE *o) {
    for (const struct vae_embedded_file *f = vae_runtime_files; f->name; f++) {
        fprintf(o, "/* ================================================================ runtime: %s */\n", f->name);
        const char *t = f->text;
        while (*t) { /* drop the includes of vaec's own headers: their text is above */
            const char *eol = strchr(t, '\n');
            size_t len = eol ? (size_t)(eol - t) + 1 : strlen(t);
            if (external_declaration(t, len)) fputs("VAE_RT ", o);
            if (!strncmp(t, "static inline ", 14)) { /* a header's helper a model may not call: no warning */
                fputs("VAE_RT", o);
                fwrite(t + 6, 1, len - 6, o);
            } else if (strncmp(t, "#include \"vae/", 14) != 0)
                fwrite(t, 1, len, o);
            t += len;
        }
        fputc('\n', o);
    }
}

static long offset_of(const g_node *n) { return n ? n->offset : -1; }

static void print_program(FILE *o, const vae_model *m, g_graph *const *gs, int n) {
    fputs("static const vr_tensor_info vae_tensors[] = {\n", o);
    for (int i = 0; i < m->nparams; i++) {
        const vae_param *p = &m->params[i];
        fputs("    {", o);
        print_string(o, p->name);
        fprintf(o, ", %d, {", p->ndims);
        for (int d = 0; d < p->ndims; d++) fprintf(o, "%s%d", d ? ", " : "", p->dims[d]);
        fprintf(o, "}, %ld},\n", p->size);
    }
    fputs("};\n\nstatic const float vae_init_bounds[] = {", o);
    for (int i = 0; i < m->nparams; i++) {
        fputs(i ? ", " : "", o);
        print_const(o, m->params[i].init_bound);
    }
    fputs("};\n\n", o);
    const g_graph *by[GRAPH_PURPOSES] = {0};
    for (int i = 0; i < n; i++) by[gs[i]->purpose] = gs[i];
    fputs("static const vr_program vae_program = {\n    .model_name = ", o);
    print_string(o, m->name);
    fprintf(o, ",\n    .data_dim = %d,\n    .binary = %d,\n    .ntensors = %d,\n    .tensors = vae_tensors,\n"
               "    .init_bounds = vae_init_bounds,\n    .param_floats = %ld,\n",
            m->data_dim, m->binary, m->nparams, m->param_floats);
    if (vae_state_floats(m) > 0) fprintf(o, "    .state_floats = %ld,\n", vae_state_floats(m));
    if (vae_label_states(m) > 0 || m->binary_dynamic) { /* version 1 fields: version 0's text stays as it was */
        fprintf(o, "    .binary_dynamic = %d,\n    .label_states = %d,\n    .label_inferred = %d,\n    .classify = ",
                m->binary_dynamic, vae_label_states(m), vae_label_inferred(m));
        print_const(o, m->train.classify);
        fputs(",\n", o);
    }
    fprintf(o, "    .value_name = \"%s\",\n    .eval_value_name = \"%s\",\n", by[GRAPH_TRAIN] ? by[GRAPH_TRAIN]->value_name : "ELBO",
            by[GRAPH_EVAL] ? by[GRAPH_EVAL]->value_name : "ELBO");
    for (int p = 0; p < GRAPH_PURPOSES; p++) { /* the emitted API has no prior_decode graph */
        const g_graph *g = by[p];
        const char *field = g_purposes[p].field;
        if (!g) continue;
        fprintf(o, "    .%s = {(vr_graph_fn)%s, %d, %d, %ld, %ld, %ld, %ld, %ld, %ld, %ld, %ld},\n", field, g->fn_name,
                g->batch, g->samples, g->arena_floats, offset_of(g->out.objective), offset_of(g->out.recon_rows),
                offset_of(g->out.kl_rows), offset_of(g->out.logw_rows), offset_of(g->out.logpx_rows),
                offset_of(g->out.value_rows), offset_of(g->out.correct_rows));
        if (g_purposes[p].outputs & G_OUT_API) fprintf(o, "    .api_out_%s = %ld,\n", field, offset_of(g->out.api_out));
    }
    fprintf(o, "    .encode_width = %d,\n    .latent_width = %d,\n    .decode_width = %d,\n};\n\n", g_encode_width(m),
            g_latent_width(m), g_decode_width(m));
}

/* Whether the model has an encode graph: an encoder for every latent, none reading latents. */
static int has_encode_graph(const vae_model *m) {
    for (int i = 0; i < m->nlatents; i++)
        if (!m->latents[i].encoder) return 0;
    return g_encode_width(m) > 0;
}

/* The per-example ELBO (as N_elbo averages it: the eval graph's rows, noise keyed on the
 * example) and draws from q(z | x): the encode graph's arguments, then per latent
 * mean + sd * eps (normal) or a draw from the logits (categorical, bernoulli), keyed on
 * (seed, example) like the training noise, in the decoder's input layout. */
static void print_api_each(FILE *o, const char *N, const vae_model *m, int enc) {
    fprintf(o,
            "int %s_elbo_each(%s_model *m, const float *x, int n, double *out) {\n"
            "    const vr_graph *g = &vae_program.eval;\n"
            "    int S = g->recon_rows >= 0 && g->kl_rows >= 0 ? g->samples : 1;\n"
            "    /* with a label, the data block's label columns stay zero: hidden (driver.h) */\n"
            "    float *buf = calloc((size_t)vr_data_floats(g->batch, vae_program.data_dim, vae_program.label_states), sizeof(float));\n"
            "    for (long start = 0; buf && start < n; start += g->batch) {\n"
            "        int rows = n - start < g->batch ? (int)(n - start) : g->batch;\n"
            "        for (int i = 0; i < g->batch; i++) /* padded with the last row, as vr_evaluate pads */\n"
            "            memcpy(buf + (size_t)i * (size_t)vae_program.data_dim,\n"
            "                   x + (size_t)(start + (i < rows ? i : rows - 1)) * (size_t)vae_program.data_dim,\n"
            "                   sizeof(float) * (size_t)vae_program.data_dim);\n"
            "        vr_ctx ctx = {.seed = m->seed, .step = VR_STEP_EVAL, .example0 = (uint64_t)start};\n"
            "        g->fn(m->params, NULL, m->arena, buf, &ctx);\n"
            "        for (int i = 0; i < rows; i++) {\n"
            "            double r = 0;\n"
            "            if (g->kl_rows < 0) {\n"
            "                out[start + i] = m->arena[g->value_rows + i];\n"
            "                continue;\n"
            "            }\n"
            "            for (int s = 0; s < S; s++) r += m->arena[g->recon_rows + i * S + s];\n"
            "            out[start + i] = r / S - m->arena[g->kl_rows + i];\n"
            "        }\n"
            "    }\n"
            "    int rc = buf ? 0 : -1;\n"
            "    free(buf);\n"
            "    return rc;\n"
            "}\n\n",
            N, N);
    if (!enc) return;
    fprintf(o,
            "int %s_sample_posterior(%s_model *m, const float *x, int n, uint64_t seed, float *z) {\n"
            "    const int EW = vae_program.encode_width, LW = vae_program.latent_width;\n"
            "    if (n <= 0) return 0;\n"
            "    float *q = calloc((size_t)n * (size_t)EW, sizeof(float)), *t = calloc((size_t)n * (size_t)LW, sizeof(float));\n"
            "    float *d = calloc((size_t)n * (size_t)LW, sizeof(float));\n"
            "    if (!q || !t || !d) {\n"
            "        free(q), free(t), free(d);\n"
            "        return -1;\n"
            "    }\n"
            "    %s_encode(m, x, n, q);\n"
            "    vr_ctx ctx = {.seed = seed, .step = VR_STEP_EVAL};\n",
            N, N, N);
    int qoff = 0, zoff = 0;
    for (int i = 0; i < m->nlatents; i++) {
        const vae_latent *l = &m->latents[i];
        int w = l->width, stream = 0x7051 + i; /* streams apart from the graphs' noise */
        fprintf(o, "    /* %s: %s */\n", l->name,
                l->kind == LATENT_NORMAL ? "normal" : l->kind == LATENT_CATEGORICAL ? "categorical" : "bernoulli");
        if (l->kind == LATENT_NORMAL) {
            fprintf(o, "    vr_noise_normal_f32(&ctx, d, n, %d, 1, %d);\n"
                       "    for (long r = 0; r < n; r++)\n"
                       "        for (int j = 0; j < %d; j++) {\n"
                       "            const float *a = q + r * EW + %d + j, b = a[%d];\n"
                       "            z[r * LW + %d + j] = a[0] + %s * d[r * %d + j];\n"
                       "        }\n",
                    w, stream, w, qoff, w, zoff, l->posterior.b_is_scale ? "b" : "expf(0.5f * b)", w);
            qoff += 2 * w;
        } else {
            int bern = l->kind == LATENT_BERNOULLI, probs = bern && l->posterior.a_is_probs;
            fprintf(o, "    for (long r = 0; r < n; r++)\n"
                       "        for (int j = 0; j < %d; j++) {\n"
                       "            float a = q[r * EW + %d + j];\n"
                       "            t[r * %d + j] = %s;\n"
                       "        }\n"
                       "    vr_sample_f32(&ctx, t, (int)n, d, (int)n, %d, %d, 1, %d, %d);\n"
                       "    for (long r = 0; r < n; r++) memcpy(z + r * LW + %d, d + r * %d, sizeof(float) * %d);\n",
                    w, qoff, w, probs ? "logf(a) - log1pf(-a)" : "a", l->nvars, bern ? 2 : l->states, stream, bern,
                    zoff, w, w);
            qoff += w;
        }
        zoff += w;
    }
    fputs("    free(q), free(t), free(d);\n    return 0;\n}\n\n", o);
}

/* The model's state: its struct, and N_create and N_free. */
static void print_api_model(FILE *o, const char *N) {
    fprintf(o,
            "/* ================================================================ the deployment API (%s_*) */\n\n"
            "struct %s_model {\n"
            "    float *params, *grads, *m, *v, *arena;\n"
            "    long step;\n"
            "    uint64_t seed;\n"
            "};\n\n",
            N, N);
    fprintf(o,
            "static long %s_arena_floats(void) {\n"
            "    const vr_graph *g[] = {&vae_program.train, &vae_program.eval, &vae_program.iwae, &vae_program.encode,\n"
            "                           &vae_program.decode, &vae_program.sample};\n"
            "    long most = 1;\n"
            "    for (int i = 0; i < 6; i++) most = g[i]->arena_floats > most ? g[i]->arena_floats : most;\n"
            "    return most;\n"
            "}\n\n",
            N);
    fprintf(o,
            "%s_model *%s_create(uint64_t seed) {\n"
            "    %s_model *m = calloc(1, sizeof *m);\n"
            "    if (!m) return NULL;\n"
            "    size_t P = (size_t)vae_program.param_floats;\n"
            "    m->params = calloc(P, sizeof(float));\n"
            "    m->grads = calloc(P, sizeof(float));\n"
            "    m->m = calloc(P, sizeof(float));\n"
            "    m->v = calloc(P, sizeof(float));\n"
            "    m->arena = calloc((size_t)%s_arena_floats(), sizeof(float));\n"
            "    m->seed = seed;\n"
            "    if (!m->params || !m->grads || !m->m || !m->v || !m->arena) {\n"
            "        %s_free(m);\n"
            "        return NULL;\n"
            "    }\n"
            "    vr_init_params(&vae_program, m->params, seed);\n"
            "    return m;\n"
            "}\n\n",
            N, N, N, N, N);
    fprintf(o,
            "void %s_free(%s_model *m) {\n"
            "    if (!m) return;\n"
            "    free(m->params);\n    free(m->grads);\n    free(m->m);\n    free(m->v);\n    free(m->arena);\n"
            "    free(m);\n"
            "}\n\n",
            N, N);
}

/* N_load and N_save: checkpoints, as vaec reads and writes them. */
static void print_api_checkpoints(FILE *o, const char *N) {
    fprintf(o,
            "int %s_load(%s_model *m, const char *path, char *err, size_t errlen) {\n"
            "    return vr_checkpoint_load(path, vae_tensors, vae_program.ntensors, m->params, m->m, m->v, &m->step, err,\n"
            "                              errlen);\n"
            "}\n\n"
            "int %s_save(const %s_model *m, const char *path, char *err, size_t errlen) {\n"
            "    return vr_checkpoint_save(path, vae_program.model_name, vae_tensors, vae_program.ntensors, m->params, m->m,\n"
            "                              m->v, m->step, err, errlen);\n"
            "}\n\n",
            N, N, N, N);
}

/* N_rows: a graph run over n rows in chunks of its batch, the last chunk padded. */
static void print_api_rows(FILE *o, const char *N) {
    fprintf(o,
            "static void %s_rows(%s_model *m, const vr_graph *g, long out, int width, const float *in, int in_width,\n"
            "                   int n, float *result, uint64_t step) {\n"
            "    float *buf = calloc((size_t)vr_data_floats(g->batch, in_width > 0 ? in_width : 1, vae_program.label_states),\n"
            "                        sizeof(float)); /* a label's columns zero: hidden, or drawn by sample */\n"
            "    if (!buf) return;\n"
            "    for (long start = 0; start < n; start += g->batch) { /* long: n may be up to INT_MAX */\n"
            "        int rows = n - start < g->batch ? (int)(n - start) : g->batch;\n"
            "        for (int i = 0; i < g->batch && in; i++)\n"
            "            memcpy(buf + (size_t)i * (size_t)in_width, in + (size_t)(start + (i < rows ? i : rows - 1)) * (size_t)in_width,\n"
            "                   sizeof(float) * (size_t)in_width);\n"
            "        vr_ctx ctx = {.seed = m->seed, .step = step, .example0 = (uint64_t)start};\n"
            "        g->fn(m->params, NULL, m->arena, buf, &ctx);\n"
            "        memcpy(result + (size_t)start * (size_t)width, m->arena + out, sizeof(float) * (size_t)rows * (size_t)width);\n"
            "    }\n"
            "    free(buf);\n"
            "}\n\n",
            N, N);
}

/* N_encode (a model with an encode graph), N_decode and N_sample: graphs run over rows. */
static void print_api_codecs(FILE *o, const char *N, int enc) {
    if (enc)
        fprintf(o,
                "void %s_encode(%s_model *m, const float *x, int n, float *out) {\n"
                "    %s_rows(m, &vae_program.encode, vae_program.api_out_encode, vae_program.encode_width, x,\n"
                "            vae_program.data_dim, n, out, VR_STEP_EVAL);\n"
                "}\n\n",
                N, N, N);
    fprintf(o,
            "void %s_decode(%s_model *m, const float *z, int n, float *out) {\n"
            "    %s_rows(m, &vae_program.decode, vae_program.api_out_decode, vae_program.decode_width, z,\n"
            "            vae_program.latent_width, n, out, VR_STEP_EVAL);\n"
            "}\n\n"
            "void %s_sample(%s_model *m, int n, uint64_t seed, float *x) {\n"
            "    uint64_t keep = m->seed;\n"
            "    m->seed = seed;\n"
            "    %s_rows(m, &vae_program.sample, vae_program.api_out_sample, vae_program.data_dim, NULL, 0, n, x,\n"
            "            VR_STEP_EVAL);\n"
            "    m->seed = keep;\n"
            "}\n\n",
            N, N, N, N, N, N);
}

/* N_elbo, N_iwae (with an encoder) and N_train_step. */
/* state: the model has running statistics (vr_program.state_floats), which Adam skips. */
static void print_api_scores(FILE *o, const char *N, int enc, int state) {
    fprintf(o,
            "double %s_elbo(%s_model *m, const float *x, int n) {\n"
            "    vr_dataset ds = {.n = n, .dim = vae_program.data_dim, .f32 = (float *)x};\n"
            "    vr_scores s;\n"
            "    memset(&s, 0, sizeof s);\n"
            "    vr_evaluate(&vae_program, m->params, &ds, n, m->seed, &s);\n"
            "    return s.has_elbo ? s.elbo : s.value;\n"
            "}\n\n",
            N, N);
    if (enc)
        fprintf(o,
                "double %s_iwae(%s_model *m, const float *x, int n, int k, double *stderr_out) {\n"
                "    if (!vae_program.iwae.fn) return NAN;\n"
                "    vr_dataset ds = {.n = n, .dim = vae_program.data_dim, .f32 = (float *)x};\n"
                "    vr_scores s;\n"
                "    memset(&s, 0, sizeof s);\n"
                "    vr_evaluate_iwae(&vae_program, m->params, &ds, n, m->seed, k, &s);\n"
                "    if (stderr_out) *stderr_out = s.logpx_se;\n"
                "    return s.logpx;\n"
                "}\n\n",
                N, N);
    fprintf(o,
            "double %s_train_step(%s_model *m, const float *x, float lr) {\n"
            "    const vr_graph *g = &vae_program.train;\n"
            "    vr_ctx ctx = {.seed = m->seed, .step = (uint64_t)m->step};\n"
            "    g->fn(m->params, m->grads, m->arena, x, &ctx);\n"
            "    m->step++;\n"
            "    vr_adam adam = {lr, 0.9f, 0.999f, 1e-8f};\n"
            "%s"
            "    double value = 0;\n"
            "    for (int i = 0; i < g->batch; i++) value += m->arena[g->value_rows + i];\n"
            "    return value / g->batch;\n"
            "}\n\n",
            N, N,
            state ? "    vr_adam_f32(m->params, m->grads, m->m, m->v, (size_t)vr_trained_floats(&vae_program), &adam, m->step);\n"
                    "    vr_keep_state(&vae_program, m->params, m->grads); /* the running statistics, not trained */\n"
                  : "    vr_adam_f32(m->params, m->grads, m->m, m->v, (size_t)vae_program.param_floats, &adam, m->step);\n");
}

/* The deployment API: thin wrappers over the program and the driver's buffers. */
static void print_api(FILE *o, const char *N, const vae_model *m) {
    int enc = has_encode_graph(m);
    print_api_model(o, N);
    print_api_checkpoints(o, N);
    print_api_rows(o, N);
    print_api_codecs(o, N, enc);
    print_api_scores(o, N, enc, vae_state_floats(m) > 0);
    print_api_each(o, N, m, enc);
}

static void print_header(FILE *h, const char *N, const vae_model *m, const g_graph *train, const char *source,
                         const char *c_name, const char *h_name) {
    int enc = has_encode_graph(m);
    fputs("/* ", h);
    print_safe(h, h_name);
    fprintf(h, ": the deployment API of model %s, generated by vaec " PACKAGE_VERSION " from ", N);
    print_safe(h, source);
    fputs(".\n *\n * Build: cc -std=c11 -O2 -c ", h);
    print_safe(h, c_name);
    fprintf(h, "   (add -DVAE_USE_CBLAS -lopenblas for BLAS products,\n"
               " * -DVAE_USE_ZLIB -lz or -DVAE_USE_ISAL -lisal to read .gz data, -DVAE_MAIN for the command-line trainer).\n"
               " * The JIT's bits need the matrix library and options vaec was configured with (%s_JIT_CFLAGS and\n"
               " * %s_JIT_LIBS below):\n *   ", N, N);
    vae_emit_c_build_line(h, c_name);
    fprintf(h, "\n * Other flags give other, equally valid, bits.  Every function is static but the API below, so\n"
               " * any number of emitted models link into one program.\n"
               " * Data rows are %d floats (%s).  Every function below is thread-compatible: one model per thread. */\n",
            m->data_dim, m->binary ? "0 or 1" : "in [0, 1]");
    fprintf(h, "#ifndef %s_H\n#define %s_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n", N, N);
    fprintf(h, "/* The compiler and linker flags that give the JIT's bits (what vaec was configured with). */\n"
               "#define %s_JIT_CFLAGS \"-std=c11 -O2 -ffp-contract=off %s\"\n#define %s_JIT_LIBS \"%s -lm\"\n\n",
            N, VAE_BLAS_CFLAGS, N, VAE_BLAS_LIBS);
    fprintf(h, "typedef struct %s_model %s_model;\n\n", N, N);
    fprintf(h, "/* A model with freshly initialised parameters (PyTorch's nn.Linear scheme, from seed);\n"
               " * NULL when out of memory.  Free it with %s_free. */\n%s_model *%s_create(uint64_t seed);\n", N, N, N);
    fprintf(h, "void %s_free(%s_model *m);\n\n", N, N);
    fprintf(h, "/* Loads parameters (and Adam's state, when present) from a vaec checkpoint whose tensors\n"
               " * match this model; 0, or -1 with the reason in err. */\n"
               "int %s_load(%s_model *m, const char *path, char *err, size_t errlen);\n", N, N);
    fprintf(h, "/* Saves a vaec checkpoint atomically (temporary file, then rename); 0 or -1. */\n"
               "int %s_save(const %s_model *m, const char *path, char *err, size_t errlen);\n\n", N, N);
    if (enc) {
        fprintf(h, "/* The encoder's distribution parameters for n rows of x: out is [n, %d], per row", g_encode_width(m));
        for (int i = 0; i < m->nlatents; i++) {
            const vae_latent *l = &m->latents[i];
            fprintf(h, "%s %s: %s", i ? ";" : "", l->name,
                    l->kind == LATENT_NORMAL ? (l->posterior.b_is_scale ? "mean then scale" : "mean then logvar")
                    : l->kind == LATENT_CATEGORICAL ? "logits"
                                                    : (l->posterior.a_is_probs ? "probs" : "logits"));
            fprintf(h, " (%d each)", l->width);
        }
        fprintf(h, ". */\nvoid %s_encode(%s_model *m, const float *x, int n, float *out);\n", N, N);
    }
    fprintf(h, "/* The decoder's distribution parameters for n rows of latent values z [n, %d] (categorical\n"
               " * latents one-hot): out is [n, %d], %s. */\n"
               "void %s_decode(%s_model *m, const float *z, int n, float *out);\n",
            g_latent_width(m), g_decode_width(m),
            m->likelihood.kind == DIST_NORMAL ? (m->likelihood.b_is_scale ? "mean then scale" : "mean then logvar")
                                              : (m->likelihood.a_is_probs ? "probs" : "logits"),
            N, N);
    fprintf(h, "/* n samples x ~ p(x | z), z ~ p(z), into x [n, %d]; the same seed gives the same samples. */\n"
               "void %s_sample(%s_model *m, int n, uint64_t seed, float *x);\n\n", m->data_dim, N, N);
    fprintf(h, "/* The mean ELBO (nats) of n rows of x (without encoder: the objective's bound). */\n"
               "double %s_elbo(%s_model *m, const float *x, int n);\n", N, N);
    if (enc)
        fprintf(h, "/* The IWAE estimate of the mean log p(x) with k samples per row, and its standard error. */\n"
                   "double %s_iwae(%s_model *m, const float *x, int n, int k, double *stderr_out);\n", N, N);
    fprintf(h, "/* Each row's ELBO (nats; without encoder: the objective's bound) into out [n]: their mean is\n"
               " * %s_elbo's value.  0, or -1 when out of memory. */\n"
               "int %s_elbo_each(%s_model *m, const float *x, int n, double *out);\n", N, N, N);
    if (enc)
        fprintf(h, "/* z ~ q(z | x) for n rows of x, into z [n, %d] (decode's input: categorical latents one-hot):\n"
                   " * mean + sd * eps for normal latents, a draw from the encoder's logits for discrete ones;\n"
                   " * the same seed gives the same draws.  0, or -1 when out of memory. */\n"
                   "int %s_sample_posterior(%s_model *m, const float *x, int n, uint64_t seed, float *z);\n",
                g_latent_width(m), N, N);
    fprintf(h, "/* One training step (the %s estimator, Adam at lr) on a batch of exactly %d rows of x%s;\n"
               " * returns the batch's %s. */\n"
               "double %s_train_step(%s_model *m, const float *x, float lr);\n\n#endif\n",
            vae_estimator_name(m->est.kind), train->batch,
            vae_label_states(m) ? " (with the label: x is the data block of vae/driver.h, x then y_kept then y_true)" : "",
            train->value_name, N, N);
}

/* A numeric option's range and the words of vaec's table (parser/settings.c) as the emitted
 * trainer's vae_range initialiser, so that both refuse the same values alike. */
static void print_range(FILE *o, const char *option) {
    const vae_setting *s = vae_setting_option(option);
    char words[128];
    vae_setting_words(s, words, sizeof words);
    fprintf(o, "{%.17g, %.17g, %d, %d, \"%s\"}", s->lo, s->hi, s->lo_open, s->hi_open, words);
}

/* VAE_OPTION_RANGES_INIT: the ranges of the run's table of options (vae/driver.h), in its
 * order; a text option's range is never read. */
static void print_option_ranges(FILE *o) {
    fputs("#define VAE_OPTION_RANGES_INIT {", o);
    const vr_option *opt;
    for (int i = 0; (opt = vr_option_at(i)); i++) {
        fputs(i ? ", \\\n    " : " \\\n    ", o);
        if (opt->type == VR_OPT_TEXT || opt->type == VR_OPT_FLAG) fputs("{0, 0, 0, 0, \"\"}", o);
        else print_range(o, opt->name);
    }
    fputs("}\n", o);
}

/* The emitted trainer's check of a numeric option of its own (not the run's table). `assign`
 * stores x (a real) or n (an integer). */
static void print_option(FILE *o, const char *option, const char *when, const char *assign) {
    const vae_setting *s = vae_setting_option(option);
    fprintf(o, "        else if (!strcmp(a, \"%s\")%s) {\n"
               "            if (%s(a, v, (vae_range)",
            option, when, s->integer ? "whole" : "number");
    print_range(o, option);
    fprintf(o, ", &%s)) return 1;\n"
               "            %s\n"
               "        }\n",
            s->integer ? "n" : "x", assign);
}

/* The numeric options of the emitted trainer that are its own: threads, and the batch and
 * shards it was compiled for. */
static void print_numeric_options(FILE *o) {
    print_option(o, "--threads", "", "threads = (int)n;");
    print_option(o, "--batch", "",
                 "if (n != vae_program.train.batch * VAE_SHARDS) {\n"
                 "                fprintf(stderr, \"error: this file was compiled for batches of %d (emit it again with "
                 "--batch %lld)\\n\",\n"
                 "                        vae_program.train.batch * VAE_SHARDS, n);\n"
                 "                return 1;\n"
                 "            }");
    print_option(o, "--shards", " && train",
                 "if (n != VAE_SHARDS) {\n"
                 "                fprintf(stderr, \"error: this file was compiled for %d shard(s) of %d examples (emit it "
                 "again with --shards %lld)\\n\",\n"
                 "                        VAE_SHARDS, vae_program.train.batch, n);\n"
                 "                return 1;\n"
                 "            }");
}

/* The trainer and evaluator's main (-DVAE_MAIN): the fixed text of codegen/emitted/trainer.c
 * after its opening comment (for vaec's developers), with the numeric options printed in
 * place of its line VAE_NUMERIC_OPTIONS. */
static void print_main(FILE *o) {
    static const char marker[] = "        VAE_NUMERIC_OPTIONS\n";
    const char *text = strstr(vae_trainer_files[0].text, "*/\n") + 3;
    const char *at = strstr(text, marker);
    if (!at) abort(); /* trainer.c lost its marker line: vaec's own build is wrong */
    fwrite(text, 1, (size_t)(at - text), o);
    print_numeric_options(o);
    fputs(at + strlen(marker), o);
}

/* The file's opening comment (its name, the model's, how to build it and with which flags
 * it computes the JIT's bits) and the definitions the runtime's text needs first. */
static void print_prologue(FILE *c, const char *N, const char *c_name, const char *header_name,
                           const char *source_path) {
    fputs("/* ", c);
    print_safe(c, c_name);
    fprintf(c, ": model %s, compiled by vaec " PACKAGE_VERSION " from ", N);
    print_safe(c, source_path);
    fputs(".\n *\n * One standalone file: the runtime (RNG, products, optimisers, data, checkpoints, training\n"
          " * driver), the objective and its gradient as generated kernels, the deployment API of\n * ", c);
    print_safe(c, header_name);
    fputs(", and with -DVAE_MAIN a command-line trainer that prints what `vaec train` prints.\n *   cc -std=c11 -O2 ", c);
    print_safe(c, c_name);
    fputs(" -lm                            the API, plain C products\n"
          " * and -DVAE_USE_CBLAS -lopenblas for OpenBLAS, -DVAE_USE_DNNL (-ldnnl -lgomp) for oneDNN's sgemm, or\n"
          " * -DVAE_USE_BLIS with BLIS's CBLAS; -DVAE_USE_ZLIB -lz or -DVAE_USE_ISAL -lisal to read .gz data.\n"
          " * The JIT's bits, with the matrix library and options vaec was configured with:\n *   ", c);
    vae_emit_c_build_line(c, c_name);
    fputs("\n * Other flags or another matrix library give other, equally valid, bits (products summed in\n"
          " * another order).  For speed add -O3 -march=native -fno-math-errno -fno-trapping-math:\n"
          " * gcc and clang then vectorise the generated loops and Adam with the machine's widest\n"
          " * vectors, as vaec's JIT does; the bits stay the same (contraction into FMA would change\n"
          " * them: hence -ffp-contract=off).\n"
          " */\n",
          c);
    fputs("#define _POSIX_C_SOURCE 200809L\n"
          "/* With a BLAS, products and Adam run on a team of threads as in vaec (runtime: team.c), and\n"
          " * give vaec's bits; -DVAE_NO_TEAM leaves threading to the BLAS. */\n"
          "#if (defined(VAE_USE_CBLAS) || defined(VAE_USE_DNNL)) && !defined(VAE_NO_TEAM)\n"
          "#define VAE_TEAM 1\n"
          "#endif\n"
          "/* The runtime below is static: any number of emitted models link into one program (a model\n"
          " * leaves unused what its graphs do not call). */\n"
          "#if defined(__GNUC__)\n"
          "#define VAE_RT static __attribute__((unused))\n"
          "#else\n"
          "#define VAE_RT static\n"
          "#endif\n",
          c);
}

/* What the kernels share: their buffers, and the elementwise helpers that some graph calls
 * (the same arithmetic as llvm.c's). */
static void print_kernel_helpers(FILE *c, g_graph *const *gs, int n) {
    fputs("/* The buffers every kernel reads: A arena, P parameters, G gradients, X data. */\n"
          "typedef struct {\n    float *A, *P, *G;\n    const float *X;\n    const vr_ctx *ctx;\n} vae_buffers;\n\n",
          c);
    unsigned used = 0; /* the elementwise helpers the kernels call, one bit per vx_op */
    for (int i = 0; i < n; i++)
        for (int k = 0; k < gs[i]->nnodes; k++)
            if (!gs[i]->nodes[k]->fused && gs[i]->nodes[k]->expr) used |= kernel_ops_used(gs[i]->nodes[k]->expr);
    if (used & ((1u << VX_EXP) | (1u << VX_SIGMOID) | (1u << VX_SOFTPLUS)))
        fputs("/* exp without a library call (llvm.c fast_exp): n = floor(x log2 e + 1/2), r = x - n ln 2,\n"
              "   a polynomial for e^r, times 2^n; x clamped to [-87.336, 88.722].  The floor is exact\n"
              "   either way: floorf where it is one instruction (SSE4.1, AArch64), else a truncation\n"
              "   and a correction (no libm call).  Each form is the one gcc vectorises on its target:\n"
              "   with SSE4.1 gcc turns the truncation into a rounding followed by a branch. */\n"
              "static inline float vae_exp(float x) {\n"
              "    x = x < -87.33654f ? -87.33654f : x;\n"
              "    x = x > 88.72283f ? 88.72283f : x;\n"
              "    const float t = x * 1.44269502f + 0.5f;\n"
              "#if defined(__SSE4_1__) || defined(__aarch64__)\n"
              "    const float n = floorf(t);\n"
              "#else\n"
              "    const float ti = (float)(int32_t)t, n = ti - (ti > t ? 1.0f : 0.0f);\n"
              "#endif\n"
              "    float r = x - n * 0.693359375f;\n"
              "    r = r - n * -0.000212194442f;\n"
              "    float p = 0.000198756912f;\n"
              "    p = p * r + 0.00139819994f;\n"
              "    p = p * r + 0.00833345205f;\n"
              "    p = p * r + 0.0416657962f;\n"
              "    p = p * r + 0.166666657f;\n"
              "    p = p * r + 0.5f;\n"
              "    p = p * (r * r) + r + 1.0f;\n"
              "    const int32_t bits = ((int32_t)n + 127) * 8388608;\n"
              "    float scale;\n"
              "    memcpy(&scale, &bits, sizeof scale);\n"
              "    return p * scale;\n"
              "}\n\n",
              c);
    if (used & (1u << VX_SIGMOID)) fputs("static inline float vae_sigmoid(float a) { return 1.0f / (1.0f + vae_exp(-a)); }\n", c);
    if (used & (1u << VX_SOFTPLUS))
        fputs("/* log(1 + y), y in [0, 1]: 2 atanh(s), s = y / (2 + y), by its odd series (llvm.c fast_log1p01) */\n"
              "static inline float vae_log1p01(float y) {\n"
              "    const float s = y / (2.0f + y), s2 = s * s;\n"
              "    float p = 0.15384616f;\n"
              "    p = p * s2 + 0.181818187f;\n"
              "    p = p * s2 + 0.222222224f;\n"
              "    p = p * s2 + 0.285714298f;\n"
              "    p = p * s2 + 0.400000006f;\n"
              "    p = p * s2 + 0.666666687f;\n"
              "    p = p * s2 + 2.0f;\n"
              "    return p * s;\n"
              "}\n\n"
              "static inline float vae_softplus(float a) { return (a > 0.0f ? a : 0.0f) + vae_log1p01(vae_exp(-fabsf(a))); }\n",
              c);
    if (used & (1u << VX_RELU)) fputs("static inline float vae_relu(float a) { return a > 0.0f ? a : 0.0f; }\n", c);
    if (used & (1u << VX_STEP)) fputs("static inline float vae_step(float a) { return a > 0.0f ? 1.0f : 0.0f; }\n", c);
    if (used & (1u << VX_MAX)) fputs("static inline float vae_max(float a, float b) { return a > b ? a : b; }\n", c);
    fputc('\n', c);
}

/* The per-network optimisers (`optimizer prior = ...`) and each tensor's, for vr_options;
 * nothing when there are none (the trainer's text tests VAE_OPTIM_GROUPS). */
static void print_optim_groups(FILE *c, const vae_model *m) {
    const vae_train_settings *t = &m->train;
    if (!t->ngroups) return;
    /* only the trainer reads them: without -DVAE_MAIN an unused static would warn */
    fprintf(c, "#ifdef VAE_MAIN\n#define VAE_OPTIM_GROUPS %d\nstatic const vr_optim_group vae_optim_groups[] = {\n",
            t->ngroups);
    for (int g = 0; g < t->ngroups; g++) {
        fputs("    {", c);
        print_string(c, t->groups[g].target);
        fprintf(c, ", %s, %.17g, %.17g},\n", t->groups[g].optimizer == OPT_ADAM ? "VR_ADAM" : "VR_SGD", t->groups[g].lr,
                t->groups[g].momentum);
    }
    fputs("};\nstatic const int vae_tensor_group[] = {", c);
    for (int i = 0; i < m->nparams; i++) fprintf(c, "%s%d", i ? ", " : "", m->params[i].group);
    fputs("};\n#endif\n\n", c);
}

/* The train block's settings, as the emitted trainer's defaults for its command line. */
static void print_defaults(FILE *c, const vae_model *m, int shards, const char *provenance) {
    const vae_train_settings *t = &m->train;
    fputs("#define VAE_PROVENANCE ", c);
    print_string(c, provenance ? provenance : "");
    fputc('\n', c);
    fputs("#define VAE_MODEL_NAME ", c);
    print_string(c, m->name);
    fputs("\n#define VAE_DEFAULT_DATA ", c);
    if (t->data) print_string(c, t->data);
    else fputs("NULL", c);
    char settings[256];
    vae_model_settings(m, settings, sizeof settings);
    fputs("\n#define VAE_MODEL_SETTINGS ", c);
    print_string(c, settings);
    fputs("\n#define VAE_DEFAULT_TEST ", c);
    if (t->test) print_string(c, t->test);
    else fputs("NULL", c);
    fputs("\n#define VAE_DEFAULT_LABELS ", c);
    if (t->labels) print_string(c, t->labels);
    else fputs("NULL", c);
    fputs("\n#define VAE_DEFAULT_TEST_LABELS ", c);
    if (t->test_labels) print_string(c, t->test_labels);
    else fputs("NULL", c);
    fprintf(c, "\n#define VAE_DEFAULT_LABELLED %ld", t->labelled);
    fprintf(c, "\n#define VAE_DEFAULT_EPOCHS %d\n#define VAE_DEFAULT_LR %.17g\n#define VAE_DEFAULT_MOMENTUM %.17g\n"
               "#define VAE_DEFAULT_OPTIMIZER %s\n#define VAE_DEFAULT_SEED %lluu\n#define VAE_DEFAULT_WARMUP %.17g\n"
               "#define VAE_SHARDS %d\n",
            t->epochs, t->lr, t->momentum, t->optimizer == OPT_ADAM ? "VR_ADAM" : "VR_SGD", t->seed, t->warmup,
            shards > 1 ? shards : 1);
    fprintf(c, "#define VAE_DEFAULT_VALIDATION %d\n#define VAE_DEFAULT_CLIP %.17g\n"
               "#define VAE_DEFAULT_LR_SCHEDULE {%ld, %d, %.17g, %.17g, %.17g}\n\n",
            t->validation, t->clip, t->lr_warmup_steps, t->lr_step_epochs, t->lr_step_factor, t->lr_cosine_epochs,
            t->lr_min);
    print_option_ranges(c);
    print_optim_groups(c, m);
}

int vae_emit_c(const vae_unit *u, const vae_build_opts *o, const char *source_path, FILE *c, FILE *h,
               const char *header_name, FILE *err) {
    g_graph *gs[VAE_MAX_GRAPHS];
    vae_build_opts opts = *o;
    opts.double_precision = 0;
    opts.api = 1;
    opts.prior_decode = 0; /* the emitted API's sample() returns draws of x */
    int n = vae_build_graphs(u, &opts, gs, err);
    if (!n) return -1;
    const vae_model *m = vae_unit_model(u);
    const char *N = m->name; /* an identifier: the lexer admits nothing else */
    const g_graph *train = NULL;
    for (int i = 0; i < n; i++)
        if (gs[i]->purpose == GRAPH_TRAIN) train = gs[i];
    char c_name[VR_PATH_MAX]; /* model.c beside header_name (model.h): the names the user chose */
    snprintf(c_name, sizeof c_name, "%.*s.c", (int)strcspn(header_name, "\n") - 2, header_name);
    print_prologue(c, N, c_name, header_name, source_path);
    print_runtime(c);
    fprintf(c, "/* ================================================================ model %s */\n#include ", N);
    print_string(c, header_name);
    fputs("\n\n", c);
    print_kernel_helpers(c, gs, n);
    for (int i = 0; i < n; i++) print_graph(c, gs[i]);
    print_program(c, m, gs, n);
    print_defaults(c, m, o->shards, o->provenance);
    print_api(c, N, m);
    print_main(c);
    print_header(h, N, m, train, source_path, c_name, header_name);
    for (int i = 0; i < n; i++) g_free(gs[i]);
    return ferror(c) || ferror(h) ? -1 : 0;
}
