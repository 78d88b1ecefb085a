/* Running generated code in memory: ORC LLJIT, as in LLVM's
 * OrcV2CBindingsBasicUsage.c.  Runtime functions are defined as absolute
 * symbols (their addresses in this process), so the JIT needs no exported
 * symbol table; libm comes from the process's own libraries. */
#include "codegen/backend.h"
#include "vae/runtime.h"

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include "codegen/llvm_compat.h"
#include <stdlib.h>
#include <string.h>

struct vae_jit {
    LLVMOrcLLJITRef jit;
    LLVMOrcDumpObjectsRef dump; /* VAEC_DUMP_OBJECTS=DIR: each object file the JIT links, for perf and objdump */
    LLVMOrcThreadSafeContextRef tsc; /* owns the LLVMContext modules are built in */
};

static int failed(LLVMErrorRef e, char **err) {
    if (!e) return 0;
    char *msg = LLVMGetErrorMessage(e);
    *err = strdup(msg);
    LLVMDisposeErrorMessage(msg);
    return 1;
}

static LLVMErrorRef dump_object(void *dump, LLVMMemoryBufferRef *obj) {
    return LLVMOrcDumpObjects_CallOperator(dump, obj);
}

/* The runtime entry points that generated code may call. */
static const struct {
    const char *name;
    void (*fn)(void);
} RUNTIME_SYMBOLS[] = {
    {"vr_gemm_f32", (void (*)(void))vr_gemm_f32},
    {"vr_gemm_f64", (void (*)(void))vr_gemm_f64},
    {"vr_noise_normal_f32", (void (*)(void))vr_noise_normal_f32},
    {"vr_noise_normal_f64", (void (*)(void))vr_noise_normal_f64},
    {"vr_noise_gumbel_f32", (void (*)(void))vr_noise_gumbel_f32},
    {"vr_noise_gumbel_f64", (void (*)(void))vr_noise_gumbel_f64},
    {"vr_noise_uniform_f32", (void (*)(void))vr_noise_uniform_f32},
    {"vr_noise_uniform_f64", (void (*)(void))vr_noise_uniform_f64},
    {"vr_noise_logistic_f32", (void (*)(void))vr_noise_logistic_f32},
    {"vr_noise_logistic_f64", (void (*)(void))vr_noise_logistic_f64},
    {"vr_states_f32", (void (*)(void))vr_states_f32},
    {"vr_states_f64", (void (*)(void))vr_states_f64},
    {"vr_sample_f32", (void (*)(void))vr_sample_f32},
    {"vr_sample_f64", (void (*)(void))vr_sample_f64},
    {"vr_split", (void (*)(void))vr_split},
    {"vr_gemm_jobs", (void (*)(void))vr_gemm_jobs},
    {"vr_im2col_f32", (void (*)(void))vr_im2col_f32},
    {"vr_im2col_f64", (void (*)(void))vr_im2col_f64},
    {"vr_col2im_f32", (void (*)(void))vr_col2im_f32},
    {"vr_col2im_f64", (void (*)(void))vr_col2im_f64},
    {"vr_transpose_f32", (void (*)(void))vr_transpose_f32},
    {"vr_transpose_f64", (void (*)(void))vr_transpose_f64},
};
#define NRUNTIME (sizeof RUNTIME_SYMBOLS / sizeof RUNTIME_SYMBOLS[0])

vae_jit *vae_jit_new(int optimized, char **err) {
    *err = NULL;
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    vae_jit *j = calloc(1, sizeof *j);
    if (!j) abort();
    LLVMTargetMachineRef tm = cg_host_target_machine(optimized, err);
    if (!tm) goto fail;
    LLVMOrcJITTargetMachineBuilderRef jtmb = LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm); /* owns tm */
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb); /* builder owns jtmb now */
    if (failed(LLVMOrcCreateLLJIT(&j->jit, builder), err)) goto fail; /* consumes builder */
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);

    vae_orc_symbol_pair syms[NRUNTIME];
    for (size_t i = 0; i < NRUNTIME; i++) {
        syms[i].Name = LLVMOrcLLJITMangleAndIntern(j->jit, RUNTIME_SYMBOLS[i].name);
        syms[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)RUNTIME_SYMBOLS[i].fn;
        syms[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
        syms[i].Sym.Flags.TargetFlags = 0;
    }
    LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(syms, NRUNTIME); /* takes the names */
    if (failed(LLVMOrcJITDylibDefine(jd, mu), err)) {
        LLVMOrcDisposeMaterializationUnit(mu);
        goto fail;
    }
    LLVMOrcDefinitionGeneratorRef gen;
    if (failed(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL,
                                                                    NULL),
               err))
        goto fail;
    LLVMOrcJITDylibAddGenerator(jd, gen); /* jd owns gen */
    const char *dump_dir = getenv("VAEC_DUMP_OBJECTS");
    if (dump_dir && *dump_dir) {
        j->dump = LLVMOrcCreateDumpObjects(dump_dir, "");
        LLVMOrcObjectTransformLayerSetTransform(LLVMOrcLLJITGetObjTransformLayer(j->jit), dump_object, j->dump);
    }
    j->tsc = LLVMOrcCreateNewThreadSafeContext();
    return j;
fail:
    vae_jit_free(j);
    return NULL;
}

LLVMContextRef vae_jit_context(vae_jit *j) { return LLVMOrcThreadSafeContextGetContext(j->tsc); }

int vae_jit_add(vae_jit *j, LLVMModuleRef mod, char **err) {
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, j->tsc); /* tsm owns mod */
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
    if (failed(LLVMOrcLLJITAddLLVMIRModule(j->jit, jd, tsm), err)) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        return -1;
    }
    return 0;
}

void *vae_jit_lookup(vae_jit *j, const char *name, char **err) {
    LLVMOrcExecutorAddress addr = 0;
    if (failed(LLVMOrcLLJITLookup(j->jit, &addr, name), err)) return NULL;
    return (void *)(uintptr_t)addr;
}

void vae_jit_free(vae_jit *j) {
    if (!j) return;
    if (j->jit) LLVMOrcDisposeLLJIT(j->jit);
    if (j->tsc) LLVMOrcDisposeThreadSafeContext(j->tsc);
    if (j->dump) LLVMOrcDisposeDumpObjects(j->dump);
    free(j);
}
