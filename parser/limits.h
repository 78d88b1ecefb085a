/* The largest sizes vaec can index, decided once here (docs/language.md,
 * "Limits").
 *
 * Every tensor of a graph is a matrix [rows, cols] whose rows, columns and
 * leading dimensions reach the runtime and the matrix library as `int`, so the
 * values of any one tensor (all its rows: batch x samples x values per row)
 * and the parameters of a model (their offsets, and Adam's buffers) stay
 * within 2^31 - 1.  The checker refuses a model whose shapes pass the limit
 * for one example at the place that makes them; the graph builder refuses a
 * batch that makes a tensor pass it.  Offsets into an arena, which holds many
 * tensors, are 64-bit everywhere (long in emitted C, i64 in the JIT). */
#ifndef VAE_LIMITS_H
#define VAE_LIMITS_H

/* The most values of one tensor, and of all the parameters together. */
#define VAE_MAX_VALUES 2147483647LL
#define VAE_MAX_VALUES_WORDS "2^31 - 1"

/* a * b for sizes in [0, VAE_MAX_VALUES + 1], saturated at VAE_MAX_VALUES + 1:
 * a product of any number of dimensions, taken one at a time, never overflows
 * 64 bits and is either exact or known to be too large. */
static inline long long vae_size_mul(long long a, long long b) {
    if (a > VAE_MAX_VALUES) a = VAE_MAX_VALUES + 1;
    if (b > VAE_MAX_VALUES) b = VAE_MAX_VALUES + 1;
    long long p = a * b; /* < 2^62 */
    return p > VAE_MAX_VALUES ? VAE_MAX_VALUES + 1 : p;
}

/* a + b, saturated the same way. */
static inline long long vae_size_add(long long a, long long b) {
    long long s = (a > VAE_MAX_VALUES ? VAE_MAX_VALUES + 1 : a) + (b > VAE_MAX_VALUES ? VAE_MAX_VALUES + 1 : b);
    return s > VAE_MAX_VALUES ? VAE_MAX_VALUES + 1 : s;
}

#endif
