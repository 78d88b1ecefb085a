/* The kernel decisions both back ends follow (codegen/kernel.c), on nodes built
 * by hand: which inputs are read at the output's index, which are loaded once
 * per row, and how many columns of a row reduction are summed in vector
 * lanes.  tests/emit.sh checks that the two back ends agree bit for bit; this
 * checks the rules themselves, as docs/architecture.md states them. */
#include "testutil.h"

#include "codegen/kernel.h"

static const vx_expr IN0 = {VX_IN, 0, 0, NULL, NULL, NULL};
static const vx_expr IN1 = {VX_IN, 1, 0, NULL, NULL, NULL};
static const vx_expr EXP0 = {VX_EXP, 0, 0, &IN0, NULL, NULL};
static const vx_expr LOG0 = {VX_LOG, 0, 0, &IN0, NULL, NULL};
static const vx_expr PRODUCT = {VX_MUL, 0, 0, &IN0, &IN1, NULL};

/* A [rows, cols] sum over a [rows, dom_cols] domain of expr over two inputs of the given shapes. */
static g_node rowsum(g_node *a, g_node *b, int rows, int cols, int dom_cols, const vx_expr *e) {
    g_node n = {0};
    n.kind = G_ROWSUM;
    n.rows = rows;
    n.cols = cols;
    n.dom_rows = rows;
    n.dom_cols = dom_cols;
    n.nin = 2;
    n.in[0] = a;
    n.in[1] = b;
    n.expr = e;
    return n;
}

static g_node tensor(int rows, int cols) {
    g_node n = {0};
    n.kind = G_PARAM;
    n.rows = rows;
    n.cols = cols;
    return n;
}

static void test_ops_used(void) {
    CU_ASSERT_EQUAL(kernel_ops_used(&PRODUCT), (1u << VX_MUL) | (1u << VX_IN));
    CU_ASSERT_EQUAL(kernel_ops_used(&LOG0) & KERNEL_SCALAR_OPS, 1u << VX_LOG);
    CU_ASSERT_EQUAL(kernel_ops_used(&EXP0) & KERNEL_SCALAR_OPS, 0u); /* exp is polynomial code, not libm */
    CU_ASSERT_EQUAL(kernel_ops_used(NULL), 0u);
}

static void test_flat_access_and_row_loads(void) {
    g_node a = tensor(4, 100), b = tensor(4, 100), per_row = tensor(4, 1), broadcast = tensor(1, 100);
    g_node n = rowsum(&a, &b, 4, 1, 100, &PRODUCT);
    CU_ASSERT_TRUE(kernel_flat_access(&n));
    CU_ASSERT_FALSE(kernel_load_per_row(&n, 0));
    n = rowsum(&a, &per_row, 4, 1, 100, &PRODUCT);
    CU_ASSERT_FALSE(kernel_flat_access(&n));
    CU_ASSERT_TRUE(kernel_row_invariant(&n, 1));
    CU_ASSERT_TRUE(kernel_load_per_row(&n, 1));
    CU_ASSERT_FALSE(kernel_load_per_row(&n, 0));
    n = rowsum(&a, &broadcast, 4, 1, 100, &PRODUCT);
    CU_ASSERT_FALSE(kernel_flat_access(&n));
    CU_ASSERT_FALSE(kernel_load_per_row(&n, 1));
}

static void test_vector_cols(void) {
    g_node a = tensor(4, 100), b = tensor(4, 100), per_row = tensor(4, 1), grouped = tensor(4, 2);
    g_node n = rowsum(&a, &b, 4, 1, 100, &PRODUCT);
    CU_ASSERT_EQUAL(kernel_vector_cols(&n, 1), 100 - 100 % KERNEL_LANES);
    CU_ASSERT_EQUAL(kernel_vector_cols(&n, 0), 0); /* double precision: in order */
    n = rowsum(&a, &b, 4, 2, 100, &PRODUCT);      /* two groups of 50 columns */
    CU_ASSERT_EQUAL(kernel_vector_cols(&n, 1), 50 - 50 % KERNEL_LANES);
    g_node shortest = tensor(4, 2 * KERNEL_LANES), too_short = tensor(4, 2 * KERNEL_LANES - 1);
    n = rowsum(&shortest, &shortest, 4, 1, 2 * KERNEL_LANES, &PRODUCT);
    CU_ASSERT_EQUAL(kernel_vector_cols(&n, 1), 2 * KERNEL_LANES);
    n = rowsum(&too_short, &too_short, 4, 1, 2 * KERNEL_LANES - 1, &PRODUCT);
    CU_ASSERT_EQUAL(kernel_vector_cols(&n, 1), 0); /* too short for lanes */
    n = rowsum(&a, &b, 4, 1, 100, &LOG0);
    CU_ASSERT_EQUAL(kernel_vector_cols(&n, 1), 0); /* a libm call */
    n = rowsum(&a, &b, 4, 1, 100, &EXP0);
    CU_ASSERT_EQUAL(kernel_vector_cols(&n, 1), 96);
    n = rowsum(&a, &per_row, 4, 1, 100, &PRODUCT);
    CU_ASSERT_EQUAL(kernel_vector_cols(&n, 1), 96); /* one value per row: loaded before the lanes */
    n = rowsum(&a, &grouped, 4, 1, 100, &PRODUCT);
    CU_ASSERT_EQUAL(kernel_vector_cols(&n, 1), 0); /* columns repeated in groups: not consecutive */
    n = rowsum(&a, &grouped, 4, 1, 100, &EXP0);
    CU_ASSERT_EQUAL(kernel_vector_cols(&n, 1), 96); /* an input the expression does not read does not count */
}

int main(void) {
    static const test_case tests[] = {{"ops used and the libm operations", test_ops_used},
                                      {"flat access and per-row loads", test_flat_access_and_row_loads},
                                      {"columns summed in vector lanes", test_vector_cols},
                                      {NULL, NULL}};
    return run_suite("kernel decisions", tests);
}
