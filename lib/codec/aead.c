#include "aead.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>

struct qs_aead {
    EVP_CIPHER_CTX *ctx;
    int encrypt;
};

int qs_aead_new(struct qs_aead **out, const uint8_t key[QS_AEAD_KEY_LEN], int encrypt)
{
    *out = NULL;
    struct qs_aead *a = calloc(1, sizeof(*a));
    if (!a)
        return qs_err_set(QS_ENOMEM, "aead: out of memory");
    a->encrypt = encrypt ? 1 : 0;
    a->ctx = EVP_CIPHER_CTX_new();
    if (!a->ctx || EVP_CipherInit_ex(a->ctx, EVP_aes_256_gcm(), NULL, key, NULL, a->encrypt) != 1) {
        qs_aead_free(a);
        return qs_err_set(QS_ENOMEM, "aead: cannot set up AES-256-GCM");
    }
    *out = a;
    return 0;
}

void qs_aead_free(struct qs_aead *a)
{
    if (!a)
        return;
    EVP_CIPHER_CTX_free(a->ctx); /* cleanses the key schedule */
    free(a);
}

/* EVP lengths are int: feed big buffers in pieces. */
#define AEAD_STEP (1 << 30)

int qs_aead_start(struct qs_aead *a, const uint8_t nonce[QS_AEAD_NONCE_LEN], const uint8_t *aad,
                  size_t aad_len)
{
    int outl;
    if (EVP_CipherInit_ex(a->ctx, NULL, NULL, NULL, nonce, a->encrypt) != 1)
        return qs_err_set(QS_EINVAL, "aead: cannot set nonce");
    while (aad_len) {
        int n = aad_len > AEAD_STEP ? AEAD_STEP : (int)aad_len;
        if (EVP_CipherUpdate(a->ctx, NULL, &outl, aad, n) != 1)
            return qs_err_set(QS_EINVAL, "aead: associated data rejected");
        aad += n;
        aad_len -= (size_t)n;
    }
    return 0;
}

int qs_aead_update(struct qs_aead *a, uint8_t *out, const uint8_t *in, size_t len)
{
    while (len) {
        int n = len > AEAD_STEP ? AEAD_STEP : (int)len;
        int outl = 0;
        if (EVP_CipherUpdate(a->ctx, out, &outl, in, n) != 1 || outl != n)
            return qs_err_set(QS_EINVAL, "aead: update failed");
        in += n;
        out += n;
        len -= (size_t)n;
    }
    return 0;
}

int qs_aead_seal_final(struct qs_aead *a, uint8_t tag[QS_AEAD_TAG])
{
    uint8_t dummy[32];
    int outl = 0;
    if (!a->encrypt || EVP_CipherFinal_ex(a->ctx, dummy, &outl) != 1 || outl != 0 ||
        EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_GET_TAG, QS_AEAD_TAG, tag) != 1)
        return qs_err_set(QS_EINVAL, "aead: seal failed");
    return 0;
}

int qs_aead_open_final(struct qs_aead *a, const uint8_t tag[QS_AEAD_TAG])
{
    uint8_t dummy[32];
    uint8_t t[QS_AEAD_TAG];
    int outl = 0;
    for (int i = 0; i < QS_AEAD_TAG; i++)
        t[i] = tag[i];
    if (a->encrypt || EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_SET_TAG, QS_AEAD_TAG, t) != 1)
        return qs_err_set(QS_EINVAL, "aead: cannot set tag");
    if (EVP_CipherFinal_ex(a->ctx, dummy, &outl) != 1)
        return qs_err_set(QS_ECORRUPT, "aead: authentication failed");
    return 0;
}
