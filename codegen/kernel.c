/* The kernel decisions that both back ends follow (kernel.h). */
#include "config.h"

#include "codegen/kernel.h"

unsigned kernel_ops_used(const vx_expr *e) {
    return e ? (1u << e->op) | kernel_ops_used(e->a) | kernel_ops_used(e->b) | kernel_ops_used(e->s) : 0;
}

int kernel_flat_access(const g_node *n) {
    for (int j = 0; j < n->nin; j++)
        if (n->in[j]->rows != n->dom_rows || n->in[j]->cols != n->dom_cols) return 0;
    return 1;
}

int kernel_row_invariant(const g_node *n, int j) { return n->in[j]->cols == 1 && n->dom_cols > 1; }

int kernel_load_per_row(const g_node *n, int j) { return !kernel_flat_access(n) && kernel_row_invariant(n, j); }

static int vector_ok(const g_node *n, int single_precision) {
    if (!single_precision || n->dom_cols / n->cols < 2 * KERNEL_LANES) return 0;
    if (kernel_ops_used(n->expr) & KERNEL_SCALAR_OPS) return 0;
    for (int j = 0; j < n->nin; j++)
        if (vx_uses(n->expr, j) && n->in[j]->cols != n->dom_cols && !kernel_row_invariant(n, j)) return 0;
    return 1;
}

long kernel_vector_cols(const g_node *n, int single_precision) {
    long G = n->dom_cols / n->cols;
    return vector_ok(n, single_precision) ? G - G % KERNEL_LANES : 0;
}

int g_kernel_has_loops(const g_node *n) {
    return n->kind == G_MAP || n->kind == G_ROWSUM || n->kind == G_GROUPSUM || n->kind == G_CONCAT ||
           n->kind == G_SLICE;
}

int g_kernel_by_cols(const g_node *n) { return n->kind == G_GROUPSUM && n->rows == 1; }

long g_kernel_units(const g_node *n) {
    if (g_kernel_by_cols(n)) return n->cols;
    return n->kind == G_ROWSUM ? n->dom_rows : n->rows;
}

/* Elements of work below which a kernel runs on one thread: waking the team's
 * member and waiting for it costs about a microsecond, a 128 x 128 map a few. */
#define KERNEL_SPLIT_MIN 16384L

/* A kernel whose units are columns (a bias's gradient) reads every row for
 * each part: shared out, a narrow one would be read once per part, a few
 * floats at a time.  Below this many columns one thread reads it once. */
#define KERNEL_SPLIT_MIN_COLS 256

int g_kernel_split(const g_node *n) {
    if (g_kernel_by_cols(n) && n->cols < KERNEL_SPLIT_MIN_COLS) return 0;
    return g_kernel_units(n) >= 2 && (long)n->dom_rows * n->dom_cols >= KERNEL_SPLIT_MIN;
}
