/* libFuzzer target for the front end and the C back end: the input is a
 * model file.  It is loaded as `vaec` loads one (through a file, so that the
 * loader's checks run too), parsed, checked, its syntax tree and summary
 * printed, lowered, differentiated and planned (the --graph dump), and
 * emitted as C - everything `vaec check --ast --graph` and `vaec emit-c` do,
 * without the JIT - and formatted as `vaec fmt` does when it parses.  Output goes
 * to /dev/null.  Built and run by scripts/fuzz.sh. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "codegen/graph.h"
#include "parser/format.h"
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

/* vaec fmt: a text that parses formats (vae_format refuses, with no parse error, only a
 * layout that would change the tree or lose a comment: a bug), and its layout formats to itself. */
static void format_twice(void) {
    vae_source *src = vae_source_load(path, sink);
    if (!src) return;
    size_t len, len2;
    char *text = vae_format(src, &len);
    if (!text && src->nerrors == 0) abort();
    vae_source *again = text ? vae_source_from_string("fuzz.vae", text, sink) : NULL;
    char *text2 = again ? vae_format(again, &len2) : NULL;
    if (text && (!text2 || len2 != len || memcmp(text, text2, len) != 0)) abort();
    free(text);
    free(text2);
    vae_source_free(again);
    vae_source_free(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!sink) setup();
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    format_twice();
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
