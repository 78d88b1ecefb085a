/* The kernel decisions: how each loop kernel (MAP, ROWSUM, GROUPSUM, CONCAT,
 * SLICE) reads its inputs, whether a row reduction runs as vector lanes, and
 * how a kernel is shared between threads.  Both back ends (llvm.c and
 * emit_c.c) ask these functions and nothing else, so the JIT and the emitted
 * C make the same choices and compute the same bits: a rule changed here
 * changes in both. */
#ifndef VAE_KERNEL_H
#define VAE_KERNEL_H

#include "codegen/graph.h"

/* Row reductions of at least 2 * KERNEL_LANES columns are *defined* as
 * KERNEL_LANES partial results (lane l takes the columns k = l mod
 * KERNEL_LANES below the last multiple of KERNEL_LANES), combined by halving
 * (lane l with l + KERNEL_LANES / 2, then / 4, ... 1), then the leftover
 * columns in order.  The JIT emits <KERNEL_LANES x float> code, emitted C a
 * lane array: the order of the sum, not the instructions, is what matches. */
#define KERNEL_LANES 16

/* The operations that are a libm call in both back ends, so never in vector
 * code: one bit per vx_op. */
#define KERNEL_SCALAR_OPS ((1u << VX_LOG) | (1u << VX_LOG1P) | (1u << VX_TANH) | (1u << VX_SQRT))

/* The operations an expression uses, one bit per vx_op. */
unsigned kernel_ops_used(const vx_expr *e);

/* Every input has the node's domain shape, so element i of each input is
 * element i of the output: one loop over i instead of rows and columns. */
int kernel_flat_access(const g_node *n);
/* Input j has one value per row of a wider domain. */
int kernel_row_invariant(const g_node *n, int j);
/* Input j is loaded once per row, before the loop over columns, so that loop
 * has no load its own stores might change (which kept LLVM from vectorising
 * it).  Only without flat access. */
int kernel_load_per_row(const g_node *n, int j);
/* How many columns of each group of a ROWSUM are summed in vector lanes (a
 * multiple of KERNEL_LANES; 0: all in order).  Lanes need single precision
 * (emitted C always is), groups of at least 2 * KERNEL_LANES columns, no
 * KERNEL_SCALAR_OPS, and every input either row-invariant or with its columns
 * consecutive in memory. */
long kernel_vector_cols(const g_node *n, int single_precision);

/* How a loop kernel is shared between threads, the same in both back ends.
 * Its loops run over units [lo, hi) of one independent axis: rows of its
 * output, or the columns of a GROUPSUM that sums every row into one.  No
 * unit's value depends on where the range is cut (each element's arithmetic is
 * the same, in the same order), so a kernel run in parts gives the same bits
 * as one run whole. */
int g_kernel_has_loops(const g_node *n); /* MAP, ROWSUM, GROUPSUM, CONCAT, SLICE: a loop kernel */
long g_kernel_units(const g_node *n);
int g_kernel_by_cols(const g_node *n); /* units are the output's columns, not its rows */
/* Whether the kernel has enough work to be worth a second thread. */
int g_kernel_split(const g_node *n);

#endif
