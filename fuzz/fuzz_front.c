/* libFuzzer target for the front end and the C back end: the input is a
 * model file.  It is loaded as `vaec` loads one (through a file, so that the
 * loader's checks run too), parsed, checked, its syntax tree and summary
 * printed, lowered, differentiated and planned (the --graph dump), and
 * emitted as C - everything `vaec check --ast --graph` and `vaec emit-c` do,
 * without the JIT.  Output goes to /dev/null.  Built and run by scripts/fuzz.sh. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "codegen/graph.h"
#include "parser/model.h"
#include "vae/compiler.h"

static FILE *sink;         /* /dev/null, buffered */
static char path[64];      /* the model's file: a memfd, through /proc */
static int fd = -1;

static void setup(void) {
    sink = fopen("/dev/null", "w");
    fd = memfd_create("fuzz.vae", 0);
    if (!sink || fd < 0) abort();
    setvbuf(sink, NULL, _IOFBF, 1 << 20);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!sink) setup();
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    vae_unit *u = vae_unit_load(path, sink);
    if (!u) return 0;
    const vae_model *m = vae_unit_model(u);
    ast_dump(sink, m->ast);
    vae_print_summary(sink, m);
    vae_print_objective(sink, m);
    vae_build_opts o = vae_build_defaults(u);
    o.iwae = !g_model_enumerable(m);
    vae_dump_graphs(u, &o, sink, sink);
    vae_emit_c(u, &o, "fuzz.vae", sink, sink, "fuzz.h", sink);
    vae_unit_free(u);
    return 0;
}
