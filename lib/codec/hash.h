/* BLAKE2b (libsodium) for the codec.
 *
 * The whole-stream checksum is BLAKE2b with the digest length set to 16 in the parameter
 * block (not a truncated 64-byte hash): the same value as libsodium's
 * crypto_generichash(out, 16, in, len, NULL, 0) and Python's blake2b(digest_size=16).
 * Keyed BLAKE2b with salt and personalization is the key-derivation function.
 */
#ifndef QSFS_CODEC_HASH_H
#define QSFS_CODEC_HASH_H

#include <stddef.h>
#include <stdint.h>

#include <sodium/crypto_generichash.h>

#include "util/err.h"

#define QS_HASH_LEN 16

/* Streaming state; not thread-safe, owned by the caller. */
struct qs_hash {
    crypto_generichash_state st;
};

/* A state (initialized) in its own 64-byte-aligned cache lines, so a thread can hash
 * while others write neighbouring data without false sharing. NULL when out of memory.
 * qs_hash_free wipes and frees it (NULL is a no-op). */
struct qs_hash *qs_hash_new(void);
void qs_hash_free(struct qs_hash *h);

void qs_hash_init(struct qs_hash *h);
void qs_hash_update(struct qs_hash *h, const void *p, size_t n);
/* Writes the 16-byte digest and wipes the state. */
void qs_hash_final(struct qs_hash *h, uint8_t out[QS_HASH_LEN]);

/* One-shot BLAKE2b-128 of p[0..n). */
void qs_hash128(uint8_t out[QS_HASH_LEN], const void *p, size_t n);

/* Key derivation: BLAKE2b keyed with key (32 bytes), salt (16 bytes), personalization
 * (exactly 16 bytes, e.g. "qsfs-codec-key-1"), empty message, outlen in 16..64.
 * QS_EINVAL on bad lengths. */
int qs_hash_kdf(uint8_t *out, size_t outlen, const uint8_t key[32], const uint8_t salt[16],
                const char personal[16]) QS_MUST_CHECK;

#endif
