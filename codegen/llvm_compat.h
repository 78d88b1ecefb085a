/* Where LLVM's C API differs between the versions configure accepts (14 to 19),
 * the one place that decides by LLVM_VERSION_MAJOR.  Add a difference here as a
 * name of our own, never as an #if in the code that uses it. */
#ifndef VAE_LLVM_COMPAT_H
#define VAE_LLVM_COMPAT_H

#include <llvm/Config/llvm-config.h>

#if LLVM_VERSION_MAJOR < 14 || LLVM_VERSION_MAJOR > 19
#error "vaec supports LLVM 14 to 19 (configure checks this too)"
#endif

/* A (name, address and flags) pair for LLVMOrcAbsoluteSymbols: LLVM 15 renamed
 * LLVMJITCSymbolMapPair to LLVMOrcCSymbolMapPair, with the same fields. */
#if LLVM_VERSION_MAJOR >= 15
typedef LLVMOrcCSymbolMapPair vae_orc_symbol_pair;
#else
typedef LLVMJITCSymbolMapPair vae_orc_symbol_pair;
#endif

#endif
