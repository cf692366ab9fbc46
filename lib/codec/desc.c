/* Stream descriptor, key derivation and the shared per-stream state. */
#include "codec.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "codec/hash.h"
#include "util/crc32c.h"
#include "util/mem.h"
#include "util/sys.h"

static const uint8_t desc_magic[4] = {'Q', 'S', 'C', 'D'};
/* BLAKE2b personalization strings (16 bytes each): part of the format. */
static const char kdf_data_key[16] = "qsfs-codec-key-1";
static const char kdf_key_check[16] = "qsfs-codec-kcv-1";

static uint32_t crc32c(const uint8_t *p, size_t n)
{
    return ~qs_crc32c_update(~0u, p, n);
}

int qs_codec_check_params(unsigned k, unsigned m, uint64_t chunk_size)
{
    if (k < 1 || m < 1 || k + m > QS_CODEC_MAX_SHARDS)
        return qs_err_set(QS_EINVAL,
                          "codec: need 1 <= data shards, 1 <= parity shards, total <= %d "
                          "(got %u+%u)",
                          QS_CODEC_MAX_SHARDS, k, m);
    if (chunk_size < QS_CODEC_CHUNK_MIN || chunk_size > QS_CODEC_CHUNK_MAX)
        return qs_err_set(QS_EINVAL, "codec: chunk size %llu outside %u..%u",
                          (unsigned long long)chunk_size, QS_CODEC_CHUNK_MIN, QS_CODEC_CHUNK_MAX);
    return 0;
}

int qs_codec_desc_new(struct qs_codec_desc *d, unsigned k, unsigned m, uint32_t chunk_size,
                      const uint8_t *file_id, const uint8_t key[QS_CODEC_KEY_LEN])
{
    memset(d, 0, sizeof(*d));
    int rc = qs_codec_check_params(k, m, chunk_size);
    if (rc)
        return rc;
    d->version = QS_CODEC_VERSION;
    d->k = k;
    d->m = m;
    d->chunk_size = chunk_size;
    if (file_id)
        memcpy(d->file_id, file_id, QS_CODEC_ID_LEN);
    else if ((rc = qs_random_bytes(d->file_id, QS_CODEC_ID_LEN)) != 0)
        return rc;
    return qs_hash_kdf(d->key_check, QS_CODEC_KCV_LEN, key, d->file_id, kdf_key_check);
}

void qs_codec_desc_encode(const struct qs_codec_desc *d, uint8_t out[QS_CODEC_DESC_LEN])
{
    memcpy(out, desc_magic, 4);
    out[4] = (uint8_t)d->version;
    out[5] = (uint8_t)d->k;
    out[6] = (uint8_t)d->m;
    out[7] = 0;
    qs_put32(out + 8, d->chunk_size);
    memcpy(out + 12, d->file_id, QS_CODEC_ID_LEN);
    memcpy(out + 28, d->key_check, QS_CODEC_KCV_LEN);
    qs_put32(out + 44, crc32c(out, 44));
}

int qs_codec_desc_decode(struct qs_codec_desc *d, const uint8_t *p, size_t len)
{
    memset(d, 0, sizeof(*d));
    if (len != QS_CODEC_DESC_LEN)
        return qs_err_set(QS_ECORRUPT, "codec descriptor: %zu bytes, expected %d", len,
                          QS_CODEC_DESC_LEN);
    if (memcmp(p, desc_magic, 4) != 0)
        return qs_err_set(QS_ECORRUPT, "codec descriptor: bad magic");
    if (qs_le32(p + 44) != crc32c(p, 44))
        return qs_err_set(QS_ECORRUPT, "codec descriptor: checksum mismatch");
    if (p[4] != QS_CODEC_VERSION)
        return qs_err_set(QS_EINVAL, "codec descriptor: unsupported version %u", p[4]);
    if (p[7] != 0)
        return qs_err_set(QS_ECORRUPT, "codec descriptor: reserved byte set");
    d->version = p[4];
    d->k = p[5];
    d->m = p[6];
    d->chunk_size = qs_le32(p + 8);
    memcpy(d->file_id, p + 12, QS_CODEC_ID_LEN);
    memcpy(d->key_check, p + 28, QS_CODEC_KCV_LEN);
    return qs_codec_check_params(d->k, d->m, d->chunk_size);
}

int qs_codec_stream_init(struct qs_codec_stream *s, const struct qs_codec_desc *d,
                         const uint8_t key[QS_CODEC_KEY_LEN])
{
    memset(s, 0, sizeof(*s));
    if (d->version != QS_CODEC_VERSION)
        return qs_err_set(QS_EINVAL, "codec: unsupported format version %u", d->version);
    int rc = qs_codec_check_params(d->k, d->m, d->chunk_size);
    if (rc)
        return rc;
    uint8_t kcv[QS_CODEC_KCV_LEN];
    if ((rc = qs_hash_kdf(kcv, sizeof(kcv), key, d->file_id, kdf_key_check)) != 0)
        return rc;
    /* Not secret, but compare in constant time anyway. */
    uint8_t diff = 0;
    for (size_t i = 0; i < sizeof(kcv); i++)
        diff |= (uint8_t)(kcv[i] ^ d->key_check[i]);
    if (diff)
        return qs_err_set(QS_EDENIED, "codec: wrong key (key check value does not match)");
    if ((rc = qs_hash_kdf(s->data_key, sizeof(s->data_key), key, d->file_id, kdf_data_key)) != 0)
        return rc;
    if ((rc = qs_rs_init(&s->rs, d->k, d->m)) != 0) {
        qs_wipe(s->data_key, sizeof(s->data_key));
        return rc;
    }
    s->desc = *d;
    /* Largest record: header + body (<= chunk) + digest + tag. */
    size_t rec = (size_t)d->chunk_size + QS_RECORD_HDR_LEN + QS_CODEC_DIGEST_LEN + QS_AEAD_TAG_LEN;
    s->max_payload = (rec + d->k - 1) / d->k;
    s->stride = (QS_SHARD_HDR_LEN + s->max_payload + 63) & ~(size_t)63;
    uint8_t *a = s->aad_prefix;
    memcpy(a, "QSCODEC1", 8);
    a[8] = (uint8_t)d->version;
    a[9] = (uint8_t)d->k;
    a[10] = (uint8_t)d->m;
    a[11] = 0;
    qs_put32(a + 12, d->chunk_size);
    memcpy(a + 16, d->file_id, QS_CODEC_ID_LEN);
    return 0;
}

void qs_codec_stream_free(struct qs_codec_stream *s)
{
    qs_wipe(s->data_key, sizeof(s->data_key));
    qs_rs_free(&s->rs);
}

unsigned qs_codec_default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > 64 ? 64 : (unsigned)n;
}
