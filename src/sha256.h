/* SHA-256 (FIPS 180-4), for log.csv's record of the model file's bytes.  No dependency of vaec provides one (OpenSSL is not linked). */
#ifndef VAEC_SHA256_H
#define VAEC_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t bytes;          /* message length so far */
    unsigned char block[64]; /* the partial block */
    size_t used;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t n);
/* The digest as 64 lowercase hexadecimal digits and a NUL. */
void sha256_hex(sha256_ctx *c, char hex[65]);
/* The digest of a file's bytes (as they are on disk: a byte-order mark included); 0, or -1 when it cannot be read. */
int sha256_file(const char *path, char hex[65]);

#endif
