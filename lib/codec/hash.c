#include "hash.h"

#include <pthread.h>
#include <sodium/core.h>
#include <stdlib.h>

#include "util/mem.h"

static pthread_once_t hash_once = PTHREAD_ONCE_INIT;

/* sodium_init() picks the fastest BLAKE2b implementation for this CPU (SSE4.1/AVX2); it
 * is idempotent and thread-safe, and the generic code works even if it fails. */
static void hash_setup(void)
{
    if (sodium_init() < 0)
        return; /* the portable implementation still works */
}

#define HASH_ALLOC ((sizeof(struct qs_hash) + 63) & ~(size_t)63)

struct qs_hash *qs_hash_new(void)
{
    struct qs_hash *h = aligned_alloc(64, HASH_ALLOC);
    if (h)
        qs_hash_init(h);
    return h;
}

void qs_hash_free(struct qs_hash *h)
{
    if (!h)
        return;
    qs_wipe(h, sizeof(*h));
    free(h);
}

void qs_hash_init(struct qs_hash *h)
{
    pthread_once(&hash_once, hash_setup);
    crypto_generichash_init(&h->st, NULL, 0, QS_HASH_LEN);
}

void qs_hash_update(struct qs_hash *h, const void *p, size_t n)
{
    if (n)
        crypto_generichash_update(&h->st, p, (unsigned long long)n);
}

void qs_hash_final(struct qs_hash *h, uint8_t out[QS_HASH_LEN])
{
    crypto_generichash_final(&h->st, out, QS_HASH_LEN);
}

void qs_hash128(uint8_t out[QS_HASH_LEN], const void *p, size_t n)
{
    struct qs_hash h;
    qs_hash_init(&h);
    qs_hash_update(&h, p, n);
    qs_hash_final(&h, out);
}

int qs_hash_kdf(uint8_t *out, size_t outlen, const uint8_t key[32], const uint8_t salt[16],
                const char personal[16])
{
    if (outlen < 16 || outlen > 64)
        return qs_err_set(QS_EINVAL, "kdf: bad output length %zu", outlen);
    pthread_once(&hash_once, hash_setup);
    if (crypto_generichash_blake2b_salt_personal(out, outlen, NULL, 0, key, 32, salt,
                                                 (const unsigned char *)personal) != 0)
        return qs_err_set(QS_EINVAL, "kdf: blake2b failed");
    return 0;
}
