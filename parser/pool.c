/* The bump allocator of parser/pool.h: chunks that grow, each allocation zeroed and aligned
 * as malloc's. */
#include "parser/pool.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pool_chunk {
    struct pool_chunk *next;
    size_t used, size;
    max_align_t data[];
};
struct vae_pool {
    struct pool_chunk *head;
    size_t bytes; /* in its chunks */
};

vae_pool *vae_pool_new(void) {
    vae_pool *p = calloc(1, sizeof *p);
    if (!p) abort();
    return p;
}

void vae_pool_free(vae_pool *p) {
    if (!p) return;
    for (struct pool_chunk *c = p->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(p);
}

void *vae_pool_alloc(vae_pool *p, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct pool_chunk *c = p->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + size);
        if (!c) {
            fputs("vaec: out of memory\n", stderr);
            abort();
        }
        c->size = size;
        c->used = 0;
        p->bytes += size;
        c->next = p->head;
        p->head = c;
    }
    void *r = (char *)c->data + c->used;
    c->used += n;
    memset(r, 0, n);
    return r;
}

size_t vae_pool_bytes(const vae_pool *p) { return p->bytes; }

char *vae_pool_strdup(vae_pool *p, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = vae_pool_alloc(p, n);
    memcpy(d, s, n);
    return d;
}

char *vae_pool_printf(vae_pool *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = vae_pool_alloc(p, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}
