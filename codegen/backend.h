/* The back ends: LLVM IR from a planned graph (llvm.c), and running it in
 * memory with ORC LLJIT (jit.c). */
#ifndef VAE_BACKEND_H
#define VAE_BACKEND_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "codegen/graph.h"

typedef enum { VAE_F32, VAE_F64 } vae_elem;

/* The signature of every generated function:
 *   void f(T *params, T *grads, T *arena, const T *data, const vr_ctx *ctx)  */
typedef void (*vae_graph_fn)(void *params, void *grads, void *arena, const void *data, const void *ctx);

/* Adds one function per graph (named g->fn_name) to a new module in ctx.  With
 * `share`, the larger elementwise kernels run on the thread team (vr_split);
 * without, each runs whole on the calling thread: the same bits, and about a
 * fifth less machine code to make, which is what the quick tier wants. */
LLVMModuleRef cg_llvm_module(LLVMContextRef ctx, const char *name, g_graph *const *graphs, int n, vae_elem elem,
                             int share);
/* A target machine for this host (caller disposes), or NULL with *err set: with
 * `optimized` LLVM's aggressive code generation, otherwise its fast one (FastISel,
 * the fast register allocator: the quick tier). */
LLVMTargetMachineRef cg_host_target_machine(int optimized, char **err);
/* Verifies, sets the host's triple and data layout, and with `optimized` runs the
 * default<O3> pipeline of the new pass manager. 0 or -1 (*err: LLVMDisposeMessage). */
int cg_llvm_optimize(LLVMModuleRef mod, int optimized, char **err);

typedef struct vae_jit vae_jit;
/* Takes ownership of the module and of the context that made it (ORC ThreadSafeContext). */
/* A JIT whose machine code is aggressively optimised or quick to make (see cg_host_target_machine). */
vae_jit *vae_jit_new(int optimized, char **err);
LLVMContextRef vae_jit_context(vae_jit *j);
int vae_jit_add(vae_jit *j, LLVMModuleRef mod, char **err);
void *vae_jit_lookup(vae_jit *j, const char *name, char **err);
void vae_jit_free(vae_jit *j);

#endif
