/* The compiler's memory: a bump allocator whose blocks are freed all at once.  A model's
 * source owns one (vae_source.pool): the AST, the checked model and the checker's strings
 * live in it, and nothing is freed one by one. */
#ifndef VAE_POOL_H
#define VAE_POOL_H

#include <stddef.h>

typedef struct vae_pool vae_pool;
typedef struct vae_pool vae_pool;
vae_pool *vae_pool_new(void);
void vae_pool_free(vae_pool *p);
void *vae_pool_alloc(vae_pool *p, size_t n); /* zeroed; aborts on out-of-memory */
char *vae_pool_strdup(vae_pool *p, const char *s);
size_t vae_pool_bytes(const vae_pool *p); /* what it holds from malloc */
char *vae_pool_printf(vae_pool *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
