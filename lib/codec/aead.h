/* AES-256-GCM through OpenSSL EVP, streamed so a message can be read from or written to
 * several scattered buffers (the codec writes ciphertext straight into shard payloads).
 *
 * One context per thread; the key is set once and each message gets its own 12-byte
 * nonce. A message is: qs_aead_start, any number of qs_aead_update, then
 * qs_aead_seal_final (encrypting context) or qs_aead_open_final (decrypting context).
 * When decrypting, the plaintext written by qs_aead_update must not be used unless
 * qs_aead_open_final returns 0.
 */
#ifndef QSFS_CODEC_AEAD_H
#define QSFS_CODEC_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define QS_AEAD_KEY_LEN   32
#define QS_AEAD_NONCE_LEN 12
#define QS_AEAD_TAG       16

struct qs_aead;

/* A context for encrypt (nonzero) or decrypt with a 32-byte key; OpenSSL wipes the key
 * schedule on free. QS_ENOMEM. */
int qs_aead_new(struct qs_aead **out, const uint8_t key[QS_AEAD_KEY_LEN],
                int encrypt) QS_MUST_CHECK;
void qs_aead_free(struct qs_aead *a);

/* Starts a message with nonce and associated data. */
int qs_aead_start(struct qs_aead *a, const uint8_t nonce[QS_AEAD_NONCE_LEN], const uint8_t *aad,
                  size_t aad_len) QS_MUST_CHECK;

/* Encrypts or decrypts len bytes from in to out (out may equal in; any length). */
int qs_aead_update(struct qs_aead *a, uint8_t *out, const uint8_t *in, size_t len) QS_MUST_CHECK;

/* Ends an encryption and writes the 16-byte tag. */
int qs_aead_seal_final(struct qs_aead *a, uint8_t tag[QS_AEAD_TAG]) QS_MUST_CHECK;

/* Ends a decryption: 0 when tag authenticates everything, QS_ECORRUPT otherwise. */
int qs_aead_open_final(struct qs_aead *a, const uint8_t tag[QS_AEAD_TAG]) QS_MUST_CHECK;

#endif
