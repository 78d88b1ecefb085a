/* The LLVM back end: every node of a planned graph becomes straight-line IR
 * over fixed shapes.  Elementwise nodes become loops (flattened when no input
 * is broadcast) with the expression evaluated inline; products and noise call
 * the runtime (include/vae/runtime.h).  There is no interpreter: the backward
 * pass is the same kind of code as the forward pass. */
#include "codegen/backend.h"
#include "codegen/kernel.h"
#include "vae/runtime.h"

#include <stddef.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef T, i64, i32, ptr, tptr, voidt; /* ptr: i8* (the context), tptr: T* (buffers) */
    vae_elem elem;
    LLVMValueRef fn;
    LLVMValueRef base[4]; /* indexed by g_buffer */
    LLVMValueRef ctxp;
    LLVMValueRef lo, hi; /* a kernel's range of units (kernel.h: g_kernel_units) */
    int share;           /* large kernels run on the team (vr_split) */
    /* per element: loaded inputs, so an input read twice is loaded once */
    LLVMValueRef loaded[G_MAX_IN];
    /* per row: inputs with one value per row, loaded before the loop over columns */
    LLVMValueRef row_value[G_MAX_IN];
    /* 0: expressions are scalar; KERNEL_LANES: <KERNEL_LANES x T> (the lanes of a split reduction) */
    int lanes;
} cg;

static LLVMValueRef i64c(cg *c, long v) { return LLVMConstInt(c->i64, (unsigned long long)v, 0); }
static LLVMValueRef i32c(cg *c, int v) { return LLVMConstInt(c->i32, (unsigned long long)(unsigned)v, 1); }

static LLVMValueRef splat(cg *c, LLVMValueRef scalar) {
    if (!c->lanes) return scalar;
    if (LLVMIsConstant(scalar)) {
        LLVMValueRef v[KERNEL_LANES];
        for (int i = 0; i < c->lanes; i++) v[i] = scalar;
        return LLVMConstVector(v, (unsigned)c->lanes);
    }
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(scalar), (unsigned)c->lanes);
    LLVMValueRef one = LLVMBuildInsertElement(c->b, LLVMGetUndef(vt), scalar, i32c(c, 0), "");
    return LLVMBuildShuffleVector(c->b, one, LLVMGetUndef(vt), LLVMConstNull(LLVMVectorType(c->i32, (unsigned)c->lanes)),
                                  "");
}

/* The element type of expressions (a vector in a split reduction), its constants and its i32 twin. */
static LLVMTypeRef ety(cg *c) { return c->lanes ? LLVMVectorType(c->T, (unsigned)c->lanes) : c->T; }
static LLVMTypeRef ity(cg *c) { return c->lanes ? LLVMVectorType(c->i32, (unsigned)c->lanes) : c->i32; }
static LLVMValueRef fc(cg *c, double v) { return splat(c, LLVMConstReal(c->T, v)); }
static LLVMValueRef ic(cg *c, int v) { return splat(c, i32c(c, v)); }

static LLVMValueRef get_fn(cg *c, const char *name, LLVMTypeRef ret, LLVMTypeRef *args, unsigned n) {
    LLVMValueRef f = LLVMGetNamedFunction(c->mod, name);
    if (!f) f = LLVMAddFunction(c->mod, name, LLVMFunctionType(ret, args, n, 0));
    return f;
}

static LLVMValueRef call(cg *c, const char *name, LLVMTypeRef ret, LLVMTypeRef *types, LLVMValueRef *args, unsigned n) {
    LLVMValueRef f = get_fn(c, name, ret, types, n);
    return LLVMBuildCall2(c->b, LLVMFunctionType(ret, types, n, 0), f, args, n, "");
}

static LLVMValueRef math1(cg *c, const char *base, LLVMValueRef x) {
    char name[64];
    int intrinsic = strncmp(base, "llvm.", 5) == 0;
    const char *elem = c->elem == VAE_F32 ? "f32" : "f64";
    if (intrinsic && c->lanes)
        snprintf(name, sizeof name, "%s.v%d%s", base, c->lanes, elem);
    else if (intrinsic)
        snprintf(name, sizeof name, "%s.%s", base, elem);
    else /* a libm call: never in vector code (kernel.h: KERNEL_SCALAR_OPS) */
        snprintf(name, sizeof name, "%s%s", base, c->elem == VAE_F32 ? "f" : "");
    LLVMTypeRef t = ety(c);
    return call(c, name, t, &t, &x, 1);
}

/* ---------------------------------------------------------------- vectorisable float math */

/* exp in float without a library call, so that elementwise loops vectorise:
 * n = floor(x log2 e + 1/2) (by truncation and a correction, which needs no
 * SSE4.1 and which gcc vectorises too), r = x - n ln 2 (in two parts), a degree-7
 * polynomial for e^r (Cephes' expf coefficients), times 2^n built in the
 * exponent bits.  x is clamped to [-87.336, 88.722]: no infinities, no
 * denormals.  emit_c.c prints the same operations (vae_exp). */
static LLVMValueRef fast_exp(cg *c, LLVMValueRef x) {
    LLVMBuilderRef b = c->b;
    LLVMValueRef lo = fc(c, -87.33654), hi = fc(c, 88.72283);
    x = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, lo, ""), lo, x, "");
    x = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, hi, ""), hi, x, "");
    LLVMValueRef t = LLVMBuildFAdd(b, LLVMBuildFMul(b, x, fc(c, 1.44269504088896341), ""), fc(c, 0.5), "");
    LLVMValueRef ti = LLVMBuildSIToFP(b, LLVMBuildFPToSI(b, t, ity(c), ""), ety(c), "");
    LLVMValueRef n = LLVMBuildFSub(b, ti, LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, ti, t, ""), fc(c, 1), fc(c, 0), ""), "");
    LLVMValueRef r = LLVMBuildFSub(b, x, LLVMBuildFMul(b, n, fc(c, 0.693359375), ""), "");
    r = LLVMBuildFSub(b, r, LLVMBuildFMul(b, n, fc(c, -2.12194440e-4), ""), "");
    static const double coef[6] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                                   4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
    LLVMValueRef p = fc(c, coef[0]);
    for (int i = 1; i < 6; i++) p = LLVMBuildFAdd(b, LLVMBuildFMul(b, p, r, ""), fc(c, coef[i]), "");
    p = LLVMBuildFAdd(b, LLVMBuildFAdd(b, LLVMBuildFMul(b, p, LLVMBuildFMul(b, r, r, ""), ""), r, ""), fc(c, 1), "");
    LLVMValueRef k = LLVMBuildFPToSI(b, n, ity(c), "");
    LLVMValueRef bits = LLVMBuildShl(b, LLVMBuildAdd(b, k, ic(c, 127), ""), ic(c, 23), "");
    return LLVMBuildFMul(b, p, LLVMBuildBitCast(b, bits, ety(c), ""), "");
}

/* log(1 + y) for y in [0, 1] (softplus's tail): 2 atanh(s), s = y / (2 + y) <= 1/3,
 * by its odd series to s^13. */
static LLVMValueRef fast_log1p01(cg *c, LLVMValueRef y) {
    LLVMBuilderRef b = c->b;
    LLVMValueRef s = LLVMBuildFDiv(b, y, LLVMBuildFAdd(b, fc(c, 2), y, ""), "");
    LLVMValueRef s2 = LLVMBuildFMul(b, s, s, "");
    static const double coef[7] = {2.0 / 13, 2.0 / 11, 2.0 / 9, 2.0 / 7, 2.0 / 5, 2.0 / 3, 2.0};
    LLVMValueRef p = fc(c, coef[0]);
    for (int i = 1; i < 7; i++) p = LLVMBuildFAdd(b, LLVMBuildFMul(b, p, s2, ""), fc(c, coef[i]), "");
    return LLVMBuildFMul(b, p, s, "");
}

static LLVMValueRef exp_of(cg *c, LLVMValueRef x) {
    return c->elem == VAE_F32 ? fast_exp(c, x) : math1(c, "llvm.exp", x);
}

/* ---------------------------------------------------------------- loops */

typedef struct {
    LLVMBasicBlockRef header, exit;
    LLVMValueRef iv;
} loop;

/* for (i = from; i < to; i++), from and to values of the kernel */
static LLVMValueRef loop_range(cg *c, loop *L, LLVMValueRef from, LLVMValueRef to) {
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
    L->header = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "loop");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "body");
    L->exit = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "done");
    LLVMBuildBr(c->b, L->header);
    LLVMPositionBuilderAtEnd(c->b, L->header);
    L->iv = LLVMBuildPhi(c->b, c->i64, "i");
    LLVMAddIncoming(L->iv, &from, &pre, 1);
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntULT, L->iv, to, ""), body, L->exit);
    LLVMPositionBuilderAtEnd(c->b, body);
    return L->iv;
}

static LLVMValueRef loop_begin(cg *c, loop *L, long n) { return loop_range(c, L, i64c(c, 0), i64c(c, n)); }

/* The kernel's range in elements of `per_unit` each: lo * per_unit, hi * per_unit. */
static LLVMValueRef range_lo(cg *c, long per_unit) { return LLVMBuildNUWMul(c->b, c->lo, i64c(c, per_unit), ""); }
static LLVMValueRef range_hi(cg *c, long per_unit) { return LLVMBuildNUWMul(c->b, c->hi, i64c(c, per_unit), ""); }

static void loop_end(cg *c, loop *L) {
    LLVMValueRef next = LLVMBuildNUWAdd(c->b, L->iv, i64c(c, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMBuildBr(c->b, L->header);
    LLVMAddIncoming(L->iv, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(c->b, L->exit);
}

/* ---------------------------------------------------------------- memory */

static LLVMValueRef addr(cg *c, const g_node *n, LLVMValueRef index) {
    LLVMValueRef idx = LLVMBuildNUWAdd(c->b, i64c(c, n->offset), index, "");
    return LLVMBuildInBoundsGEP2(c->b, c->T, c->base[n->buffer], &idx, 1, "");
}

static LLVMValueRef load(cg *c, const g_node *n, LLVMValueRef index) {
    return LLVMBuildLoad2(c->b, c->T, addr(c, n, index), "");
}

static void store(cg *c, const g_node *n, LLVMValueRef index, LLVMValueRef v) {
    LLVMBuildStore(c->b, v, addr(c, n, index));
}

/* Index of element (r, col) of the domain [dom_rows, dom_cols] within input
 * `in` under the broadcasting rules of graph.h. */
static LLVMValueRef input_index(cg *c, const g_node *in, int dom_rows, int dom_cols, LLVMValueRef r, LLVMValueRef col) {
    LLVMValueRef row;
    if (in->rows == dom_rows)
        row = r;
    else if (in->rows == 1)
        row = i64c(c, 0);
    else
        row = LLVMBuildUDiv(c->b, r, i64c(c, dom_rows / in->rows), "");
    LLVMValueRef cc = in->cols == dom_cols ? col
                      : in->cols == 1    ? i64c(c, 0)
                                         : LLVMBuildUDiv(c->b, col, i64c(c, dom_cols / in->cols), "");
    return LLVMBuildNUWAdd(c->b, LLVMBuildNUWMul(c->b, row, i64c(c, in->cols), ""), cc, "");
}

/* ---------------------------------------------------------------- expressions */

typedef struct {
    const g_node *n;
    LLVMValueRef r, col, flat; /* flat: the element index when no input broadcasts */
} element;

static LLVMValueRef emit(cg *c, const element *el, const vx_expr *e) {
    LLVMValueRef a, b;
    switch (e->op) {
    case VX_CONST: return fc(c, e->c);
    case VX_IN: {
        if (!c->loaded[e->in]) {
            const g_node *in = el->n->in[e->in];
            if (c->row_value[e->in])
                c->loaded[e->in] = splat(c, c->row_value[e->in]);
            else {
                LLVMValueRef idx = el->flat ? el->flat : input_index(c, in, el->n->dom_rows, el->n->dom_cols, el->r, el->col);
                if (!c->lanes)
                    c->loaded[e->in] = load(c, in, idx);
                else { /* the lanes' columns are consecutive in this input (kernel_vector_cols) */
                    LLVMTypeRef vt = ety(c);
                    LLVMValueRef p = LLVMBuildBitCast(c->b, addr(c, in, idx), LLVMPointerType(vt, 0), "");
                    LLVMValueRef v = LLVMBuildLoad2(c->b, vt, p, "");
                    LLVMSetAlignment(v, c->elem == VAE_F32 ? 4 : 8);
                    c->loaded[e->in] = v;
                }
            }
        }
        return c->loaded[e->in];
    }
    default: break;
    }
    a = emit(c, el, e->a);
    switch (e->op) {
    case VX_NEG: return LLVMBuildFNeg(c->b, a, "");
    case VX_EXP: return exp_of(c, a);
    case VX_LOG: return math1(c, "llvm.log", a);
    case VX_SQRT: return math1(c, "llvm.sqrt", a);
    case VX_LOG1P: return math1(c, "log1p", a);
    case VX_TANH: return math1(c, "tanh", a);
    case VX_SIGMOID: /* 1 / (1 + exp(-a)) */
        return LLVMBuildFDiv(c->b, fc(c, 1), LLVMBuildFAdd(c->b, fc(c, 1), exp_of(c, LLVMBuildFNeg(c->b, a, "")), ""), "");
    case VX_SOFTPLUS: { /* max(a, 0) + log1p(exp(-|a|)): no overflow for large |a| */
        LLVMValueRef pos = LLVMBuildFCmp(c->b, LLVMRealOGT, a, fc(c, 0), "");
        LLVMValueRef relu = LLVMBuildSelect(c->b, pos, a, fc(c, 0), "");
        LLVMValueRef absa = math1(c, "llvm.fabs", a);
        LLVMValueRef tail = exp_of(c, LLVMBuildFNeg(c->b, absa, ""));
        return LLVMBuildFAdd(c->b, relu, c->elem == VAE_F32 ? fast_log1p01(c, tail) : math1(c, "log1p", tail), "");
    }
    case VX_RELU: return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, a, fc(c, 0), ""), a, fc(c, 0), "");
    case VX_STEP: return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, a, fc(c, 0), ""), fc(c, 1), fc(c, 0), "");
    case VX_SELECT: {
        LLVMValueRef t = emit(c, el, e->a), f = emit(c, el, e->b), s = emit(c, el, e->s);
        return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, s, fc(c, 0), ""), t, f, "");
    }
    default: break;
    }
    b = emit(c, el, e->b);
    switch (e->op) {
    case VX_ADD: return LLVMBuildFAdd(c->b, a, b, "");
    case VX_SUB: return LLVMBuildFSub(c->b, a, b, "");
    case VX_MUL: return LLVMBuildFMul(c->b, a, b, "");
    case VX_DIV: return LLVMBuildFDiv(c->b, a, b, "");
    case VX_MAX: return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, a, b, ""), a, b, "");
    default: break;
    }
    abort();
}

static LLVMValueRef element_value(cg *c, element *el) {
    memset(c->loaded, 0, sizeof c->loaded);
    return emit(c, el, el->n->expr);
}

/* The inputs with one value per row (kernel.h: kernel_load_per_row), loaded
 * before the loop over columns. */
static void load_row_values(cg *c, const g_node *n, LLVMValueRef r) {
    for (int j = 0; j < n->nin; j++)
        if (vx_uses(n->expr, j) && kernel_load_per_row(n, j))
            c->row_value[j] = load(c, n->in[j], input_index(c, n->in[j], n->dom_rows, n->dom_cols, r, i64c(c, 0)));
}

static void forget_row_values(cg *c) { memset(c->row_value, 0, sizeof c->row_value); }

/* ---------------------------------------------------------------- nodes */

static void emit_map(cg *c, const g_node *n) {
    element el = {n, NULL, NULL, NULL};
    if (kernel_flat_access(n)) {
        loop L;
        el.flat = loop_range(c, &L, range_lo(c, n->cols), range_hi(c, n->cols));
        store(c, n, el.flat, element_value(c, &el));
        loop_end(c, &L);
        return;
    }
    loop R, C;
    el.r = loop_range(c, &R, c->lo, c->hi);
    load_row_values(c, n, el.r);
    LLVMValueRef row0 = LLVMBuildNUWMul(c->b, el.r, i64c(c, n->cols), "");
    el.col = loop_begin(c, &C, n->cols);
    store(c, n, LLVMBuildNUWAdd(c->b, row0, el.col, ""), element_value(c, &el));
    loop_end(c, &C);
    loop_end(c, &R);
    forget_row_values(c);
}

static void emit_fill(cg *c, const g_node *n, long count, double v);
static void emit_zero(cg *c, const g_node *n, long count) { emit_fill(c, n, count, 0.0); }

static LLVMValueRef combine(cg *c, const g_node *n, LLVMValueRef acc, LLVMValueRef v) {
    if (!n->reduce_max) return LLVMBuildFAdd(c->b, acc, v, "");
    return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, v, acc, ""), v, acc, "");
}

/* acc combined with expr at columns col0 + first + k*step + lane, k < count: the
 * loop of a row reduction, in scalar or (c->lanes) vector code. */
static LLVMValueRef reduce_loop(cg *c, const g_node *n, element *el, LLVMValueRef col0, long first, long count, long step,
                                LLVMValueRef init) {
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
    LLVMBasicBlockRef header = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "sum");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "sum.body");
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "sum.done");
    LLVMBuildBr(c->b, header);
    LLVMPositionBuilderAtEnd(c->b, header);
    LLVMValueRef k = LLVMBuildPhi(c->b, c->i64, "k");
    LLVMValueRef acc = LLVMBuildPhi(c->b, ety(c), "acc");
    LLVMValueRef zero = i64c(c, 0);
    LLVMAddIncoming(k, &zero, &pre, 1);
    LLVMAddIncoming(acc, &init, &pre, 1);
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntULT, k, i64c(c, count), ""), body, exit);
    LLVMPositionBuilderAtEnd(c->b, body);
    el->col = LLVMBuildNUWAdd(c->b, col0, LLVMBuildNUWAdd(c->b, i64c(c, first), LLVMBuildNUWMul(c->b, k, i64c(c, step), ""), ""), "");
    el->flat = kernel_flat_access(n) ? LLVMBuildNUWAdd(c->b, LLVMBuildNUWMul(c->b, el->r, i64c(c, n->dom_cols), ""), el->col, "")
                              : NULL;
    LLVMValueRef next_acc = combine(c, n, acc, element_value(c, el));
    LLVMValueRef next_k = LLVMBuildNUWAdd(c->b, k, i64c(c, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMBuildBr(c->b, header);
    LLVMAddIncoming(k, &next_k, &latch, 1);
    LLVMAddIncoming(acc, &next_acc, &latch, 1);
    LLVMPositionBuilderAtEnd(c->b, exit);
    return acc;
}

/* out[r, i] = sum (or max) of expr over columns i*G .. i*G + G - 1, G = dom_cols / cols.
 * Long rows: KERNEL_LANES partial results (lane l takes the columns k = l mod
 * KERNEL_LANES below the last multiple of KERNEL_LANES), combined by halving (lane l with
 * lane l + h, h = 8, 4, 2, 1), then the remaining columns in order. */
static void emit_rowsum(cg *c, const g_node *n) {
    element el = {n, NULL, NULL, NULL};
    long G = n->dom_cols / n->cols, vector_cols = kernel_vector_cols(n, c->elem == VAE_F32);
    loop R, I;
    el.r = loop_range(c, &R, c->lo, c->hi);
    load_row_values(c, n, el.r);
    LLVMValueRef i = loop_begin(c, &I, n->cols);
    LLVMValueRef col0 = LLVMBuildNUWMul(c->b, i, i64c(c, G), "");
    double init = n->reduce_max ? -HUGE_VAL : 0.0;
    LLVMValueRef acc = fc(c, init);
    if (vector_cols) {
        c->lanes = KERNEL_LANES;
        LLVMValueRef lanes = reduce_loop(c, n, &el, col0, 0, vector_cols / KERNEL_LANES, KERNEL_LANES, fc(c, init));
        c->lanes = 0;
        for (int h = KERNEL_LANES / 2; h >= 1; h /= 2) {
            LLVMValueRef lo_idx[KERNEL_LANES], hi_idx[KERNEL_LANES];
            for (int l = 0; l < h; l++) {
                lo_idx[l] = i32c(c, l);
                hi_idx[l] = i32c(c, l + h);
            }
            LLVMValueRef undef = LLVMGetUndef(LLVMTypeOf(lanes));
            LLVMValueRef lo = LLVMBuildShuffleVector(c->b, lanes, undef, LLVMConstVector(lo_idx, (unsigned)h), "");
            LLVMValueRef hi = LLVMBuildShuffleVector(c->b, lanes, undef, LLVMConstVector(hi_idx, (unsigned)h), "");
            lanes = combine(c, n, lo, hi);
        }
        acc = LLVMBuildExtractElement(c->b, lanes, i32c(c, 0), "");
    }
    acc = reduce_loop(c, n, &el, col0, vector_cols, G - vector_cols, 1, acc);
    store(c, n, LLVMBuildNUWAdd(c->b, LLVMBuildNUWMul(c->b, el.r, i64c(c, n->cols), ""), i, ""), acc);
    loop_end(c, &I);
    loop_end(c, &R);
    forget_row_values(c);
}

static void emit_fill(cg *c, const g_node *n, long count, double v) {
    loop L;
    LLVMValueRef i = loop_begin(c, &L, count);
    store(c, n, i, fc(c, v));
    loop_end(c, &L);
}

/* Units: the output's rows (each sums its own group of rows), or, when every
 * row sums into one, its columns (each summed over all rows, in order). */
static void emit_groupsum(cg *c, const g_node *n) {
    int by_cols = g_kernel_by_cols(n);
    double init = n->reduce_max ? -HUGE_VAL : 0.0;
    loop F;
    LLVMValueRef f = by_cols ? loop_range(c, &F, c->lo, c->hi) : loop_range(c, &F, range_lo(c, n->cols), range_hi(c, n->cols));
    store(c, n, f, fc(c, init));
    loop_end(c, &F);
    element el = {n, NULL, NULL, NULL};
    long group = n->dom_rows / n->rows;
    loop R, C;
    el.r = by_cols ? loop_begin(c, &R, n->dom_rows) : loop_range(c, &R, range_lo(c, group), range_hi(c, group));
    LLVMValueRef grow = LLVMBuildUDiv(c->b, el.r, i64c(c, n->dom_rows / n->rows), "");
    LLVMValueRef row0 = LLVMBuildNUWMul(c->b, grow, i64c(c, n->cols), "");
    LLVMValueRef in0 = LLVMBuildNUWMul(c->b, el.r, i64c(c, n->dom_cols), "");
    load_row_values(c, n, el.r);
    el.col = by_cols ? loop_range(c, &C, c->lo, c->hi) : loop_begin(c, &C, n->cols);
    if (kernel_flat_access(n)) el.flat = LLVMBuildNUWAdd(c->b, in0, el.col, "");
    LLVMValueRef at = LLVMBuildNUWAdd(c->b, row0, el.col, "");
    LLVMValueRef v = element_value(c, &el);
    store(c, n, at, combine(c, n, load(c, n, at), v));
    loop_end(c, &C);
    loop_end(c, &R);
    forget_row_values(c);
}

static void emit_copy_cols(cg *c, const g_node *dst, int dst_col0, const g_node *src, int src_col0, int cols) {
    loop R, C;
    LLVMValueRef r = loop_range(c, &R, c->lo, c->hi);
    LLVMValueRef srow;
    if (src->rows == dst->rows)
        srow = r;
    else if (src->rows == 1)
        srow = i64c(c, 0);
    else
        srow = LLVMBuildUDiv(c->b, r, i64c(c, dst->rows / src->rows), "");
    LLVMValueRef s0 = LLVMBuildNUWAdd(c->b, LLVMBuildNUWMul(c->b, srow, i64c(c, src->cols), ""), i64c(c, src_col0), "");
    LLVMValueRef d0 = LLVMBuildNUWAdd(c->b, LLVMBuildNUWMul(c->b, r, i64c(c, dst->cols), ""), i64c(c, dst_col0), "");
    LLVMValueRef col = loop_begin(c, &C, cols);
    store(c, dst, LLVMBuildNUWAdd(c->b, d0, col, ""), load(c, src, LLVMBuildNUWAdd(c->b, s0, col, "")));
    loop_end(c, &C);
    loop_end(c, &R);
}

static void emit_matmul(cg *c, const g_node *n) {
    const g_node *a = n->in[0], *b = n->in[1];
    int k = n->trans_a ? a->rows : a->cols;
    LLVMTypeRef types[11] = {c->i32, c->i32, c->i32, c->i32, c->i32, c->tptr, c->i32, c->tptr, c->i32, c->tptr, c->i32};
    LLVMValueRef args[11] = {i32c(c, n->trans_a), i32c(c, n->trans_b), i32c(c, n->rows), i32c(c, n->cols), i32c(c, k),
                             addr(c, a, i64c(c, 0)), i32c(c, a->cols), addr(c, b, i64c(c, 0)), i32c(c, b->cols),
                             addr(c, n, i64c(c, 0)), i32c(c, n->cols)};
    call(c, c->elem == VAE_F32 ? "vr_gemm_f32" : "vr_gemm_f64", c->voidt, types, args, 11);
}

/* Products run at once (plan.c): an array of vr_gemm_job in the graph
 * function's frame (jobs: G_PRODUCT_GROUP_MAX of them), filled and handed to
 * the runtime.  The struct is vr_gemm_job's: nine ints, then three pointers. */
static LLVMTypeRef gemm_job_type(cg *c) {
    LLVMTypeRef fields[12];
    for (int i = 0; i < 9; i++) fields[i] = c->i32;
    for (int i = 9; i < 12; i++) fields[i] = c->ptr;
    return LLVMStructTypeInContext(c->ctx, fields, 12, 0);
}

static void emit_matmul_group(cg *c, LLVMValueRef jobs, const g_node *const *members, int count) {
    LLVMTypeRef jt = gemm_job_type(c);
    for (int i = 0; i < count; i++) {
        const g_node *n = members[i], *a = n->in[0], *b = n->in[1];
        int k = n->trans_a ? a->rows : a->cols;
        LLVMValueRef v[12] = {i32c(c, n->trans_a), i32c(c, n->trans_b), i32c(c, n->rows), i32c(c, n->cols), i32c(c, k),
                              i32c(c, a->cols), i32c(c, b->cols), i32c(c, n->cols), i32c(c, c->elem == VAE_F64),
                              LLVMBuildBitCast(c->b, addr(c, a, i64c(c, 0)), c->ptr, ""),
                              LLVMBuildBitCast(c->b, addr(c, b, i64c(c, 0)), c->ptr, ""),
                              LLVMBuildBitCast(c->b, addr(c, n, i64c(c, 0)), c->ptr, "")};
        for (unsigned f = 0; f < 12; f++) {
            LLVMValueRef idx[2] = {i64c(c, i), i32c(c, (int)f)};
            LLVMBuildStore(c->b, v[f], LLVMBuildInBoundsGEP2(c->b, jt, jobs, idx, 2, ""));
        }
    }
    LLVMTypeRef types[2] = {LLVMPointerType(jt, 0), c->i32};
    LLVMValueRef args[2] = {jobs, i32c(c, count)};
    call(c, "vr_gemm_jobs", c->voidt, types, args, 2);
}

static void emit_noise(cg *c, const g_node *n) {
    LLVMTypeRef types[6] = {c->ptr, c->tptr, c->i32, c->i32, c->i32, c->i32};
    LLVMValueRef args[6] = {c->ctxp, addr(c, n, i64c(c, 0)), i32c(c, n->rows), i32c(c, n->cols), i32c(c, n->group),
                            i32c(c, n->stream)};
    char fn[40];
    snprintf(fn, sizeof fn, "vr_noise_%s_%s", g_noise_name(n->noise), c->elem == VAE_F32 ? "f32" : "f64");
    call(c, fn, c->voidt, types, args, 6);
}

static void emit_states(cg *c, const g_node *n) {
    LLVMTypeRef types[7] = {c->tptr, c->i32, c->i64, c->i64, c->i32, c->i32, c->i32};
    LLVMValueRef args[7] = {addr(c, n, i64c(c, 0)), i32c(c, n->rows), i64c(c, n->stride), i64c(c, n->local),
                            i32c(c, n->nvars), i32c(c, n->states), i32c(c, n->bernoulli)};
    call(c, c->elem == VAE_F32 ? "vr_states_f32" : "vr_states_f64", c->voidt, types, args, 7);
}

static void emit_sample(cg *c, const g_node *n) {
    LLVMTypeRef types[10] = {c->ptr, c->tptr, c->i32, c->tptr, c->i32, c->i32, c->i32, c->i32, c->i32, c->i32};
    LLVMValueRef logits = n->nin ? addr(c, n->in[0], i64c(c, 0)) : LLVMConstNull(c->tptr);
    LLVMValueRef args[10] = {c->ctxp,           logits,            i32c(c, n->nin ? n->in[0]->rows : 0),
                             addr(c, n, i64c(c, 0)), i32c(c, n->rows), i32c(c, n->nvars),
                             i32c(c, n->states), i32c(c, n->group), i32c(c, n->stream),
                             i32c(c, n->bernoulli)};
    call(c, c->elem == VAE_F32 ? "vr_sample_f32" : "vr_sample_f64", c->voidt, types, args, 10);
}

/* beta * (1 - ctx->kl_withheld); the field's offset is fixed by vr_ctx's layout */
static void emit_kl_weight(cg *c, const g_node *n) {
    LLVMTypeRef dbl = LLVMDoubleTypeInContext(c->ctx);
    LLVMValueRef off = i64c(c, (long)offsetof(vr_ctx, kl_withheld));
    LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, LLVMInt8TypeInContext(c->ctx), c->ctxp, &off, 1, "");
    p = LLVMBuildBitCast(c->b, p, LLVMPointerType(dbl, 0), "");
    LLVMValueRef w = LLVMBuildLoad2(c->b, dbl, p, "kl_withheld");
    LLVMValueRef v = LLVMBuildFMul(c->b, LLVMConstReal(dbl, n->value), LLVMBuildFSub(c->b, LLVMConstReal(dbl, 1), w, ""), "");
    if (c->elem == VAE_F32) v = LLVMBuildFPTrunc(c->b, v, c->T, "");
    store(c, n, i64c(c, 0), v);
}

/* im2col, col2im: (source, destination, rows of images, the window's six ints) */
static void emit_window(cg *c, const g_node *n) {
    int to_cols = n->kind == G_IM2COL;
    const g_window *w = &n->window;
    int images = (int)g_window_images(n);
    LLVMTypeRef types[9] = {c->tptr, c->tptr, c->i32, c->i32, c->i32, c->i32, c->i32, c->i32, c->i32};
    LLVMValueRef args[9] = {addr(c, n->in[0], i64c(c, 0)), addr(c, n, i64c(c, 0)), i32c(c, images), i32c(c, w->c),
                            i32c(c, w->h), i32c(c, w->w), i32c(c, w->k), i32c(c, w->stride), i32c(c, w->pad)};
    const char *fn = to_cols ? (c->elem == VAE_F32 ? "vr_im2col_f32" : "vr_im2col_f64")
                             : (c->elem == VAE_F32 ? "vr_col2im_f32" : "vr_col2im_f64");
    call(c, fn, c->voidt, types, args, 9);
}

static void emit_transpose(cg *c, const g_node *n) {
    long blocks = (long)n->rows * n->cols / ((long)n->tp * n->tq);
    LLVMTypeRef types[5] = {c->tptr, c->tptr, c->i32, c->i32, c->i32};
    LLVMValueRef args[5] = {addr(c, n->in[0], i64c(c, 0)), addr(c, n, i64c(c, 0)), i32c(c, (int)blocks), i32c(c, n->tp),
                            i32c(c, n->tq)};
    call(c, c->elem == VAE_F32 ? "vr_transpose_f32" : "vr_transpose_f64", c->voidt, types, args, 5);
}

static void emit_node(cg *c, const g_node *n) {
    switch (n->kind) {
    case G_PARAM:
    case G_DATA: return;
    case G_NOISE: emit_noise(c, n); return;
    case G_MAP: emit_map(c, n); return;
    case G_MATMUL: emit_matmul(c, n); return;
    case G_ROWSUM: emit_rowsum(c, n); return;
    case G_GROUPSUM: emit_groupsum(c, n); return;
    case G_CONCAT: {
        int col = 0;
        for (int j = 0; j < n->nin; j++) {
            emit_copy_cols(c, n, col, n->in[j], 0, n->in[j]->cols);
            col += n->in[j]->cols;
        }
        return;
    }
    case G_SLICE: emit_copy_cols(c, n, 0, n->in[0], n->col0, n->cols); return;
    case G_STATES: emit_states(c, n); return;
    case G_SAMPLE: emit_sample(c, n); return;
    case G_KLWEIGHT: emit_kl_weight(c, n); return;
    case G_IM2COL:
    case G_COL2IM: emit_window(c, n); return;
    case G_TRANSPOSE: emit_transpose(c, n); return;
    }
}

/* The five arguments of a graph function: the four buffers (which never
 * overlap: noalias) and the step context; a kernel has two more, the range of
 * units [lo, hi) it computes. */
static LLVMValueRef add_function(cg *c, const char *name, LLVMLinkage linkage, int kernel) {
    LLVMTypeRef params[7] = {c->tptr, c->tptr, c->tptr, c->tptr, c->ptr, c->i64, c->i64};
    unsigned nparams = kernel ? 7 : 5;
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->voidt, params, nparams, 0));
    LLVMSetLinkage(fn, linkage);
    static const char *const names[7] = {"params", "grads", "arena", "data", "ctx", "lo", "hi"};
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    for (unsigned i = 0; i < nparams; i++) {
        LLVMSetValueName2(LLVMGetParam(fn, i), names[i], strlen(names[i]));
        if (i < 4) LLVMAddAttributeAtIndex(fn, i + 1, LLVMCreateEnumAttribute(c->ctx, noalias, 0));
    }
    return fn;
}

static void enter_function(cg *c, LLVMValueRef fn) {
    c->fn = fn;
    c->base[BUF_PARAMS] = LLVMGetParam(fn, 0);
    c->base[BUF_GRADS] = LLVMGetParam(fn, 1);
    c->base[BUF_ARENA] = LLVMGetParam(fn, 2);
    c->base[BUF_DATA] = LLVMGetParam(fn, 3);
    c->ctxp = LLVMGetParam(fn, 4);
    int kernel = LLVMCountParams(fn) == 7;
    c->lo = kernel ? LLVMGetParam(fn, 5) : NULL;
    c->hi = kernel ? LLVMGetParam(fn, 6) : NULL;
}

/* A kernel that the team shares is called by the runtime (vr_split) as
 * part(args, lo, hi), args being the graph function's five arguments in memory:
 * this is that entry, which hands them on to the kernel itself. */
static LLVMValueRef add_split_entry(cg *c, const char *kernel_name, LLVMValueRef kernel) {
    char name[300];
    snprintf(name, sizeof name, "%s.part", kernel_name);
    LLVMTypeRef params[3] = {c->ptr, c->i64, c->i64};
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->voidt, params, 3, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(c->ctx);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    LLVMValueRef slots = LLVMBuildBitCast(b, LLVMGetParam(fn, 0), LLVMPointerType(c->ptr, 0), "");
    LLVMValueRef args[7];
    for (unsigned k = 0; k < 5; k++) {
        LLVMValueRef at = i64c(c, k);
        LLVMValueRef v = LLVMBuildLoad2(b, c->ptr, LLVMBuildInBoundsGEP2(b, c->ptr, slots, &at, 1, ""), "");
        args[k] = k < 4 ? LLVMBuildBitCast(b, v, c->tptr, "") : v;
    }
    args[5] = LLVMGetParam(fn, 1);
    args[6] = LLVMGetParam(fn, 2);
    LLVMBuildCall2(b, LLVMGlobalGetValueType(kernel), kernel, args, 7, "");
    LLVMBuildRetVoid(b);
    LLVMDisposeBuilder(b);
    return fn;
}

/* Nodes whose code is loops (g_kernel_has_loops) get a function of their own
 * (noinline), called from the graph's: LLVM optimises and generates code one
 * function at a time, so a graph's build needs the memory of its largest kernel
 * rather than of all of them at once, and the superlinear parts of code
 * generation see small functions.  Emitted C has the same shape: one static
 * function per kernel. */
static void emit_graph(cg *c, const g_graph *g) {
    LLVMValueRef graph_fn = add_function(c, g->fn_name, LLVMExternalLinkage, 0);
    enter_function(c, graph_fn);
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, graph_fn, "entry"));
    /* the five arguments in memory, for the kernels the team shares */
    LLVMValueRef slots = NULL;
    for (int i = 0; i < g->nnodes && !slots; i++)
        if (c->share && !g->nodes[i]->fused && g_kernel_has_loops(g->nodes[i]) && g_kernel_split(g->nodes[i])) {
            slots = LLVMBuildArrayAlloca(c->b, c->ptr, i32c(c, 5), "args");
            for (unsigned k = 0; k < 5; k++) {
                LLVMValueRef at = i64c(c, k);
                LLVMValueRef v = LLVMBuildBitCast(c->b, LLVMGetParam(graph_fn, k), c->ptr, "");
                LLVMBuildStore(c->b, v, LLVMBuildInBoundsGEP2(c->b, c->ptr, slots, &at, 1, ""));
            }
        }
    LLVMValueRef jobs = NULL; /* for products run at once */
    const g_node *members[G_PRODUCT_GROUP_MAX];
    for (int i = 0; i < g->nnodes && !jobs; i++)
        if (g_product_group(g, i, members) > 1) jobs = LLVMBuildArrayAlloca(c->b, gemm_job_type(c), i32c(c, G_PRODUCT_GROUP_MAX), "jobs");
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
    for (int i = 0; i < g->nnodes; i++) {
        const g_node *n = g->nodes[i];
        if (n->fused) continue;
        if (n->kind == G_MATMUL) {
            int count = g_product_group(g, i, members); /* 0: run with the product before it */
            if (count == 1) emit_matmul(c, n);
            else if (count > 1) emit_matmul_group(c, jobs, members, count);
            continue;
        }
        if (!g_kernel_has_loops(n)) {
            emit_node(c, n);
            continue;
        }
        char name[256];
        snprintf(name, sizeof name, "%s.node%d", g->fn_name, n->id);
        LLVMValueRef kernel = add_function(c, name, LLVMInternalLinkage, 1);
        LLVMAddAttributeAtIndex(kernel, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(c->ctx, noinline, 0));
        LLVMBasicBlockRef back = LLVMGetInsertBlock(c->b);
        enter_function(c, kernel);
        LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, kernel, "entry"));
        emit_node(c, n);
        LLVMBuildRetVoid(c->b);
        enter_function(c, graph_fn);
        LLVMPositionBuilderAtEnd(c->b, back);
        long units = g_kernel_units(n);
        if (c->share && g_kernel_split(n)) {
            LLVMValueRef entry = add_split_entry(c, name, kernel);
            LLVMTypeRef types[3] = {LLVMTypeOf(entry), c->ptr, c->i64};
            LLVMValueRef args[3] = {entry, LLVMBuildBitCast(c->b, slots, c->ptr, ""), i64c(c, units)};
            call(c, "vr_split", c->voidt, types, args, 3);
        } else {
            LLVMValueRef args[7];
            for (unsigned k = 0; k < 5; k++) args[k] = LLVMGetParam(graph_fn, k);
            args[5] = i64c(c, 0);
            args[6] = i64c(c, units);
            LLVMBuildCall2(c->b, LLVMGlobalGetValueType(kernel), kernel, args, 7, "");
        }
    }
    if (g_purposes[g->purpose].gradient) /* parameters that no path reaches get a zero gradient */
        for (int p = 0; p < g->model->nparams; p++)
            if (!g->param_grad[p]) {
                g_node fake = {.buffer = BUF_GRADS, .offset = g->model->params[p].offset};
                emit_zero(c, &fake, g->model->params[p].size);
            }
    LLVMBuildRetVoid(c->b);
}

LLVMModuleRef cg_llvm_module(LLVMContextRef ctx, const char *name, g_graph *const *graphs, int n, vae_elem elem,
                             int share) {
    cg c = {0};
    c.share = share;
    c.ctx = ctx;
    c.mod = LLVMModuleCreateWithNameInContext(name, ctx);
    c.b = LLVMCreateBuilderInContext(ctx);
    c.elem = elem;
    c.T = elem == VAE_F32 ? LLVMFloatTypeInContext(ctx) : LLVMDoubleTypeInContext(ctx);
    c.i64 = LLVMInt64TypeInContext(ctx);
    c.i32 = LLVMInt32TypeInContext(ctx);
    c.ptr = LLVMPointerType(LLVMInt8TypeInContext(ctx), 0);
    c.voidt = LLVMVoidTypeInContext(ctx);
    c.tptr = LLVMPointerType(c.T, 0); /* with LLVM 15+'s opaque pointers both are plain ptr */
    for (int i = 0; i < n; i++) emit_graph(&c, graphs[i]);
    LLVMDisposeBuilder(c.b);
    return c.mod;
}

LLVMTargetMachineRef cg_host_target_machine(int optimized, char **err) {
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    char *triple = LLVMGetDefaultTargetTriple();
    LLVMTargetRef target;
    if (LLVMGetTargetFromTriple(triple, &target, err)) {
        LLVMDisposeMessage(triple);
        return NULL;
    }
    char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
    LLVMTargetMachineRef tm =
        LLVMCreateTargetMachine(target, triple, cpu, features, optimized ? LLVMCodeGenLevelAggressive : LLVMCodeGenLevelNone,
                                LLVMRelocDefault, LLVMCodeModelJITDefault);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    return tm;
}

int cg_llvm_optimize(LLVMModuleRef mod, int optimized, char **err) {
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, err)) return -1;
    LLVMDisposeMessage(*err);
    *err = NULL;
    LLVMTargetMachineRef tm = cg_host_target_machine(optimized, err);
    if (!tm) return -1;
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(mod, dl);
    LLVMDisposeTargetData(dl);
    if (!optimized) {
        LLVMDisposeTargetMachine(tm);
        return 0;
    }
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(opts, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(opts, 1);
    /* No loop unrolling: it fully unrolled every loop with a constant trip count
     * (a [10, 784] bias add became 4,500 lines of IR), which made the optimised
     * build 7x slower (mixture_analytic 2.3 s -> 0.33 s) and its IR 13x larger,
     * for no speed: the kernels are vectorised, interleaved loops over memory
     * either way (perf, fashion_gauss, 400 steps: 507 samples unrolled, 495 not). */
    LLVMPassBuilderOptionsSetLoopUnrolling(opts, 0);
    /* VAEC_PASSES overrides the pipeline (a knob for measuring compile time against speed). */
    const char *passes = getenv("VAEC_PASSES") ? getenv("VAEC_PASSES") : "default<O3>";
    LLVMErrorRef e = LLVMRunPasses(mod, passes, tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    LLVMDisposeTargetMachine(tm);
    if (e) {
        char *m = LLVMGetErrorMessage(e);
        *err = strdup(m);
        LLVMDisposeErrorMessage(m);
        return -1;
    }
    return 0;
}
