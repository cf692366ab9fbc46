/* Per-chunk format: record layout, encryption into shard payloads, Reed-Solomon, shard
 * headers and checksums. See docs/codec-format.md for the byte layout. */
#include "chunk.h"

#include <isa-l/crc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/aead.h"
#include "codec/compress.h"
#include "codec/rs.h"
#include "util/mem.h"

static const uint8_t shard_magic[4] = {'Q', 'S', 'S', 'H'};

#define MAX_ATTEMPTS 1024
#define AAD_LEN      (32 + 8 + QS_RECORD_HDR_LEN)

struct qs_chunk_ctx {
    const struct qs_codec_stream *s;
    struct qs_aead *aead;
    struct qs_zctx z;
    struct qs_rs_dec rsd;
    enum qs_compress method;
    int level;
    uint8_t *zbuf; /* seal: compressor output; open: decrypted compressed body */
    size_t zcap;
    uint8_t *work; /* open: n * max_payload, reconstructed data shards then parity */
};

int qs_chunk_ctx_new(struct qs_chunk_ctx **out, const struct qs_codec_stream *s, int encrypt,
                     enum qs_compress method, int level)
{
    *out = NULL;
    if (!qs_compress_name(method))
        return qs_err_set(QS_EINVAL, "codec: unknown compression method %d", (int)method);
    struct qs_chunk_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return qs_err_set(QS_ENOMEM, "codec: out of memory");
    c->s = s;
    c->method = method;
    c->level = level;
    qs_zctx_init(&c->z);
    qs_rs_dec_init(&c->rsd);
    int rc = qs_aead_new(&c->aead, s->data_key, encrypt);
    if (rc) {
        qs_chunk_ctx_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void qs_chunk_ctx_free(struct qs_chunk_ctx *c)
{
    if (!c)
        return;
    qs_aead_free(c->aead);
    qs_zctx_free(&c->z);
    qs_rs_dec_free(&c->rsd);
    if (c->zbuf)
        qs_wipe(c->zbuf, c->zcap); /* (compressed) plaintext */
    free(c->zbuf);
    free(c->work);
    free(c);
}

static int ensure_zbuf(struct qs_chunk_ctx *c, size_t need)
{
    if (c->zcap >= need)
        return 0;
    uint8_t *p = malloc(need); /* not realloc: the old contents are wiped, not copied */
    if (!p)
        return qs_err_set(QS_ENOMEM, "codec: out of memory (%zu bytes)", need);
    if (c->zbuf)
        qs_wipe(c->zbuf, c->zcap);
    free(c->zbuf);
    c->zbuf = p;
    c->zcap = need;
    return 0;
}

/* CRC-32C (standard form) of the header's first 60 bytes and the payload. ISA-L's
 * crc32_iscsi is the same raw register update as qs_crc32c_update, five times faster
 * (carry-less multiply folding instead of one crc32 instruction chain). */
static uint32_t crc32c_shard(const uint8_t *hdr, const uint8_t *payload, size_t n)
{
    uint32_t c = crc32_iscsi((unsigned char *)hdr, QS_SHARD_HDR_LEN - 4, ~0u);
    while (n) {
        int piece = n > (1u << 30) ? 1 << 30 : (int)n;
        c = crc32_iscsi((unsigned char *)payload, piece, c);
        payload += piece;
        n -= (size_t)piece;
    }
    return ~c;
}

/* ---- the record viewed across k payloads of s bytes each --------------------------- */

/* Walks [off, off+n) of the record, which lives in k payloads of s bytes each, one
 * piece per payload: p[seg.j] + seg.in, seg.len bytes. */
struct seg {
    size_t j, in, len;
};

static int seg_next(size_t s, size_t *off, size_t *left, struct seg *g)
{
    if (*left == 0)
        return 0;
    g->j = *off / s;
    g->in = *off % s;
    g->len = s - g->in < *left ? s - g->in : *left;
    *off += g->len;
    *left -= g->len;
    return 1;
}

static void span_write(uint8_t *const *p, size_t s, size_t off, const uint8_t *src, size_t n)
{
    struct seg g;
    for (size_t pos = 0; seg_next(s, &off, &n, &g); pos += g.len)
        memcpy(p[g.j] + g.in, src + pos, g.len);
}

static void span_zero(uint8_t *const *p, size_t s, size_t off, size_t n)
{
    struct seg g;
    while (seg_next(s, &off, &n, &g))
        memset(p[g.j] + g.in, 0, g.len);
}

static void span_read(const uint8_t *const *p, size_t s, size_t off, uint8_t *dst, size_t n)
{
    struct seg g;
    for (size_t pos = 0; seg_next(s, &off, &n, &g); pos += g.len)
        memcpy(dst + pos, p[g.j] + g.in, g.len);
}

static int span_encrypt(struct qs_aead *a, uint8_t *const *p, size_t s, size_t off,
                        const uint8_t *src, size_t n)
{
    struct seg g;
    int rc = 0;
    for (size_t pos = 0; !rc && seg_next(s, &off, &n, &g); pos += g.len)
        rc = qs_aead_update(a, p[g.j] + g.in, src + pos, g.len);
    return rc;
}

static int span_decrypt(struct qs_aead *a, const uint8_t *const *p, size_t s, size_t off,
                        uint8_t *dst, size_t n)
{
    struct seg g;
    int rc = 0;
    for (size_t pos = 0; !rc && seg_next(s, &off, &n, &g); pos += g.len)
        rc = qs_aead_update(a, dst + pos, p[g.j] + g.in, g.len);
    return rc;
}

static int span_is_zero(const uint8_t *const *p, size_t s, size_t off, size_t n)
{
    struct seg g;
    uint8_t acc = 0;
    while (seg_next(s, &off, &n, &g))
        for (size_t t = 0; t < g.len; t++)
            acc |= p[g.j][g.in + t];
    return acc == 0;
}

static void make_nonce_aad(const struct qs_codec_stream *s, uint64_t index, const uint8_t *rhdr,
                           uint8_t nonce[12], uint8_t aad[AAD_LEN])
{
    qs_put64(nonce, index);
    qs_put32(nonce + 8, 0);
    memcpy(aad, s->aad_prefix, 32);
    qs_put64(aad + 32, index);
    memcpy(aad + 40, rhdr, QS_RECORD_HDR_LEN);
}

static void write_shard_header(const struct qs_codec_stream *s, uint8_t *h, unsigned i,
                               uint64_t index, unsigned flags, size_t payload)
{
    const struct qs_codec_desc *d = &s->desc;
    memcpy(h, shard_magic, 4);
    h[4] = (uint8_t)d->version;
    h[5] = (uint8_t)d->k;
    h[6] = (uint8_t)d->m;
    h[7] = (uint8_t)i;
    qs_put32(h + 8, d->chunk_size);
    memcpy(h + 12, d->file_id, QS_CODEC_ID_LEN);
    memcpy(h + 28, d->key_check, QS_CODEC_KCV_LEN);
    qs_put64(h + 44, index);
    h[52] = (uint8_t)flags;
    h[53] = h[54] = h[55] = 0;
    qs_put32(h + 56, (uint32_t)payload);
    qs_put32(h + 60, crc32c_shard(h, h + QS_SHARD_HDR_LEN, payload));
}

/* ---- seal -------------------------------------------------------------------------- */

int qs_chunk_seal(struct qs_chunk_ctx *c, const uint8_t *plain, size_t len, uint64_t index,
                  unsigned flags, const uint8_t digest[QS_CODEC_DIGEST_LEN], uint8_t *out,
                  struct qs_chunk_sealed *res)
{
    const struct qs_codec_stream *s = c->s;
    unsigned k = s->desc.k, m = s->desc.m, n = k + m;
    int final = (flags & QS_CHUNK_FINAL) != 0;
    if ((flags & ~QS_CHUNK_FINAL) || len > s->desc.chunk_size ||
        (!final && len != s->desc.chunk_size))
        return qs_err_set(QS_EINVAL, "codec: bad chunk %llu (%zu bytes, flags %u)",
                          (unsigned long long)index, len, flags);
    const uint8_t *body = plain;
    size_t body_len = len;
    enum qs_compress method = QS_COMPRESS_NONE;
    if (c->method != QS_COMPRESS_NONE && len > 0) {
        int rc = ensure_zbuf(c, qs_compress_bound(c->method, len));
        size_t clen = 0;
        if (!rc)
            rc = qs_compress(&c->z, c->method, c->level, plain, len, c->zbuf, c->zcap, &clen);
        if (rc)
            return rc;
        /* Keep the compressed form only when it saves at least 1/64 of the chunk: below
         * that, decompressing costs more than the bytes saved. */
        if (clen < len && len - clen >= len / 64) {
            body = c->zbuf;
            body_len = clen;
            method = c->method;
        }
    }
    size_t ct_len = body_len + (final ? QS_CODEC_DIGEST_LEN : 0);
    size_t rec_len = QS_RECORD_HDR_LEN + ct_len + QS_AEAD_TAG_LEN;
    size_t sz = (rec_len + k - 1) / k;
    if (sz > s->max_payload)
        return qs_err_set(QS_EINVAL, "codec: chunk record too large");

    uint8_t *data[QS_CODEC_MAX_SHARDS];
    for (unsigned i = 0; i < n; i++)
        data[i] = out + (size_t)i * s->stride + QS_SHARD_HDR_LEN;

    uint8_t rhdr[QS_RECORD_HDR_LEN] = {0};
    rhdr[0] = (uint8_t)method;
    rhdr[1] = (uint8_t)flags;
    qs_put32(rhdr + 4, (uint32_t)len);
    qs_put32(rhdr + 8, (uint32_t)ct_len);
    uint8_t nonce[12], aad[AAD_LEN], tag[QS_AEAD_TAG_LEN];
    make_nonce_aad(s, index, rhdr, nonce, aad);

    span_write(data, sz, 0, rhdr, sizeof(rhdr));
    int rc = qs_aead_start(c->aead, nonce, aad, sizeof(aad));
    if (!rc)
        rc = span_encrypt(c->aead, data, sz, QS_RECORD_HDR_LEN, body, body_len);
    if (!rc && final)
        rc = span_encrypt(c->aead, data, sz, QS_RECORD_HDR_LEN + body_len, digest,
                          QS_CODEC_DIGEST_LEN);
    if (!rc)
        rc = qs_aead_seal_final(c->aead, tag);
    if (rc)
        return rc;
    span_write(data, sz, QS_RECORD_HDR_LEN + ct_len, tag, sizeof(tag));
    /* Zero padding up to k * sz. */
    span_zero(data, sz, rec_len, (size_t)k * sz - rec_len);
    qs_rs_encode(&s->rs, sz, (const uint8_t *const *)data, data + k);
    for (unsigned i = 0; i < n; i++) {
        uint8_t *h = out + (size_t)i * s->stride;
        write_shard_header(s, h, i, index, flags, sz);
        res->crc[i] = qs_le32(h + 60);
    }
    res->shard_len = QS_SHARD_HDR_LEN + sz;
    res->method = method;
    res->body_len = body_len;
    return 0;
}

/* ---- shard header ------------------------------------------------------------------ */

int qs_shard_parse(const uint8_t *p, size_t len, struct qs_shard_info *o)
{
    memset(o, 0, sizeof(*o));
    if (len < QS_SHARD_HDR_LEN)
        return qs_err_set(QS_ECORRUPT, "shard: %zu bytes, shorter than its header", len);
    if (memcmp(p, shard_magic, 4) != 0)
        return qs_err_set(QS_ECORRUPT, "shard: bad magic");
    if (p[4] != QS_CODEC_VERSION)
        return qs_err_set(QS_ECORRUPT, "shard: unsupported version %u", p[4]);
    o->version = p[4];
    o->k = p[5];
    o->m = p[6];
    o->index = p[7];
    o->chunk_size = qs_le32(p + 8);
    memcpy(o->file_id, p + 12, QS_CODEC_ID_LEN);
    memcpy(o->key_check, p + 28, QS_CODEC_KCV_LEN);
    o->chunk = qs_le64(p + 44);
    o->flags = p[52];
    o->payload_len = qs_le32(p + 56);
    o->crc = qs_le32(p + 60);
    if (o->k < 1 || o->m < 1 || o->k + o->m > QS_CODEC_MAX_SHARDS || o->index >= o->k + o->m)
        return qs_err_set(QS_ECORRUPT, "shard: bad shard numbers %u/%u+%u", o->index, o->k, o->m);
    if (o->chunk_size < QS_CODEC_CHUNK_MIN || o->chunk_size > QS_CODEC_CHUNK_MAX)
        return qs_err_set(QS_ECORRUPT, "shard: bad chunk size %u", o->chunk_size);
    if ((o->flags & ~QS_CHUNK_FINAL) || p[53] || p[54] || p[55])
        return qs_err_set(QS_ECORRUPT, "shard: reserved bits set");
    if ((size_t)o->payload_len != len - QS_SHARD_HDR_LEN)
        return qs_err_set(QS_ECORRUPT, "shard: payload is %zu bytes, header says %u",
                          len - QS_SHARD_HDR_LEN, o->payload_len);
    if (crc32c_shard(p, p + QS_SHARD_HDR_LEN, o->payload_len) != o->crc)
        return qs_err_set(QS_ECORRUPT, "shard: checksum mismatch");
    return 0;
}

/* ---- open -------------------------------------------------------------------------- */

/* State of one open, shared by the attempts and by rebuild. */
struct open_job {
    uint64_t index;
    unsigned flags; /* chunk flags agreed by the shards */
    size_t sz;      /* payload length */
    const uint8_t *payload[QS_CODEC_MAX_SHARDS];
    uint8_t good[QS_CODEC_MAX_SHARDS]; /* indices of usable shards, ascending */
    unsigned ngood;
    const uint8_t *data[QS_CODEC_MAX_SHARDS]; /* data payloads of the successful attempt */
    unsigned nforeign;      /* valid shards of another stream, chunk or position */
    uint64_t foreign_chunk; /* chunk index one of them claimed */
};

/* Classifies every supplied shard; picks the (payload length, flags) most shards agree on.
 */
static void open_triage(struct qs_chunk_ctx *c, struct open_job *j, const uint8_t *const *shard,
                        const size_t *len, struct qs_chunk_opened *res)
{
    const struct qs_codec_desc *d = &c->s->desc;
    unsigned n = d->k + d->m;
    j->nforeign = 0;
    j->foreign_chunk = j->index;
    uint32_t plen[QS_CODEC_MAX_SHARDS] = {0};
    uint8_t fl[QS_CODEC_MAX_SHARDS] = {0};
    for (unsigned i = 0; i < n; i++) {
        struct qs_shard_info info;
        j->payload[i] = NULL;
        if (!shard[i]) {
            res->state[i] = QS_SHARD_MISSING;
            continue;
        }
        res->state[i] = QS_SHARD_CORRUPT;
        if (len[i] > QS_SHARD_HDR_LEN + c->s->max_payload)
            continue;
        if (qs_shard_parse(shard[i], len[i], &info) != 0)
            continue;
        if (info.k != d->k || info.m != d->m || info.index != i ||
            info.chunk_size != d->chunk_size || info.chunk != j->index ||
            memcmp(info.file_id, d->file_id, QS_CODEC_ID_LEN) != 0 ||
            memcmp(info.key_check, d->key_check, QS_CODEC_KCV_LEN) != 0) {
            j->nforeign++;
            if (info.chunk != j->index)
                j->foreign_chunk = info.chunk;
            continue;
        }
        res->state[i] = QS_SHARD_OK;
        j->payload[i] = shard[i] + QS_SHARD_HDR_LEN;
        plen[i] = info.payload_len;
        fl[i] = (uint8_t)info.flags;
    }
    unsigned best = n, votes = 0;
    for (unsigned i = 0; i < n; i++) {
        if (res->state[i] != QS_SHARD_OK)
            continue;
        unsigned v = 0;
        for (unsigned t = 0; t < n; t++)
            v += res->state[t] == QS_SHARD_OK && plen[t] == plen[i] && fl[t] == fl[i];
        if (v > votes) {
            votes = v;
            best = i;
        }
    }
    j->ngood = 0;
    for (unsigned i = 0; i < n; i++) {
        if (res->state[i] != QS_SHARD_OK)
            continue;
        if (plen[i] != plen[best] || fl[i] != fl[best]) {
            res->state[i] = QS_SHARD_CORRUPT;
            j->payload[i] = NULL;
            continue;
        }
        j->good[j->ngood++] = (uint8_t)i;
    }
    if (best < n) {
        j->sz = plen[best];
        j->flags = fl[best];
    }
}

/* Decodes the record from the k shards keep[0..k); 0 when it authenticates. */
static int open_attempt(struct qs_chunk_ctx *c, struct open_job *j, const uint8_t *keep,
                        uint8_t *plain, struct qs_chunk_opened *res)
{
    const struct qs_codec_stream *s = c->s;
    unsigned k = s->desc.k;
    size_t sz = j->sz;
    const uint8_t *in[QS_CODEC_MAX_SHARDS];
    uint8_t want[QS_CODEC_MAX_SHARDS];
    uint8_t *wout[QS_CODEC_MAX_SHARDS];
    unsigned nwant = 0;
    uint8_t used[QS_CODEC_MAX_SHARDS] = {0};
    for (unsigned t = 0; t < k; t++) {
        in[t] = j->payload[keep[t]];
        used[keep[t]] = 1;
    }
    for (unsigned d = 0; d < k; d++) {
        if (used[d]) {
            j->data[d] = j->payload[d];
        } else {
            want[nwant] = (uint8_t)d;
            wout[nwant++] = c->work + (size_t)d * sz;
            j->data[d] = c->work + (size_t)d * sz;
        }
    }
    int rc = qs_rs_reconstruct(&s->rs, &c->rsd, sz, keep, in, nwant, want, wout);
    if (rc)
        return rc;

    /* Record header: cleartext but authenticated as associated data. */
    const uint8_t *const *data = j->data;
    uint8_t rhdr[QS_RECORD_HDR_LEN];
    if ((size_t)k * sz < QS_RECORD_HDR_LEN + QS_AEAD_TAG_LEN)
        return qs_err_set(QS_ECORRUPT, "chunk %llu: record too short",
                          (unsigned long long)j->index);
    span_read(data, sz, 0, rhdr, sizeof(rhdr));
    unsigned method = rhdr[0], rflags = rhdr[1];
    uint32_t plain_len = qs_le32(rhdr + 4), ct_len = qs_le32(rhdr + 8);
    int final = (rflags & QS_CHUNK_FINAL) != 0;
    size_t dlen = final ? QS_CODEC_DIGEST_LEN : 0;
    size_t rec_len = (size_t)QS_RECORD_HDR_LEN + ct_len + QS_AEAD_TAG_LEN;
    if (!qs_compress_name((enum qs_compress)method) || rflags != j->flags || rhdr[2] || rhdr[3] ||
        qs_le32(rhdr + 12) || plain_len > s->desc.chunk_size || ct_len < dlen ||
        ct_len - dlen > s->desc.chunk_size ||
        (method == QS_COMPRESS_NONE && ct_len - dlen != plain_len) ||
        (!final && plain_len != s->desc.chunk_size) || (final && j->index > 0 && plain_len == 0) ||
        rec_len > (size_t)k * sz || rec_len <= (size_t)k * (sz - 1) ||
        !span_is_zero(data, sz, rec_len, (size_t)k * sz - rec_len))
        return qs_err_set(QS_ECORRUPT, "chunk %llu: malformed record header",
                          (unsigned long long)j->index);
    size_t body_len = ct_len - dlen;
    uint8_t *dst = plain;
    if (method != QS_COMPRESS_NONE) {
        if ((rc = ensure_zbuf(c, s->desc.chunk_size)) != 0)
            return rc;
        dst = c->zbuf;
    }
    uint8_t nonce[12], aad[AAD_LEN], tag[QS_AEAD_TAG_LEN];
    make_nonce_aad(s, j->index, rhdr, nonce, aad);
    span_read(data, sz, QS_RECORD_HDR_LEN + ct_len, tag, sizeof(tag));
    rc = qs_aead_start(c->aead, nonce, aad, sizeof(aad));
    if (!rc)
        rc = span_decrypt(c->aead, data, sz, QS_RECORD_HDR_LEN, dst, body_len);
    if (!rc && final)
        rc = span_decrypt(c->aead, data, sz, QS_RECORD_HDR_LEN + body_len, res->digest, dlen);
    if (!rc)
        rc = qs_aead_open_final(c->aead, tag);
    if (rc)
        return qs_err_set(QS_ECORRUPT, "chunk %llu: authentication failed",
                          (unsigned long long)j->index);
    res->plain_len = plain_len;
    res->flags = rflags;
    if (method == QS_COMPRESS_NONE)
        return 0;
    /* Authenticated, so a failure here is not a bad shard: flag it as such (positive). */
    rc = qs_decompress(&c->z, (enum qs_compress)method, c->zbuf, body_len, plain, plain_len);
    return rc ? 1 : 0;
}

/* Next combination of e positions out of g in lexicographic order; 0 when exhausted. */
static int next_combo(uint8_t *pos, unsigned e, unsigned g)
{
    int i = (int)e - 1;
    while (i >= 0 && pos[i] == g - e + (unsigned)i)
        i--;
    if (i < 0)
        return 0;
    pos[i]++;
    for (unsigned t = (unsigned)i + 1; t < e; t++)
        pos[t] = (uint8_t)(pos[t - 1] + 1);
    return 1;
}

/* Re-derives every shard payload from the data and marks good shards that differ. */
static void open_crosscheck(struct qs_chunk_ctx *c, struct open_job *j, struct qs_chunk_opened *res)
{
    const struct qs_codec_stream *s = c->s;
    unsigned k = s->desc.k, m = s->desc.m;
    uint8_t *par[QS_CODEC_MAX_SHARDS];
    for (unsigned p = 0; p < m; p++)
        par[p] = c->work + (size_t)(k + p) * j->sz;
    qs_rs_encode(&s->rs, j->sz, j->data, par);
    for (unsigned g = 0; g < j->ngood; g++) {
        unsigned i = j->good[g];
        const uint8_t *want = i < k ? j->data[i] : par[i - k];
        if (want != j->payload[i] && memcmp(want, j->payload[i], j->sz) != 0)
            res->state[i] = QS_SHARD_CORRUPT;
    }
}

static int open_impl(struct qs_chunk_ctx *c, struct open_job *j, const uint8_t *const *shard,
                     const size_t *len, unsigned flags, uint8_t *plain, struct qs_chunk_opened *res)
{
    const struct qs_codec_stream *s = c->s;
    unsigned k = s->desc.k, n = k + s->desc.m;
    memset(res, 0, sizeof(*res));
    for (unsigned i = n; i < QS_CODEC_MAX_SHARDS; i++)
        res->state[i] = QS_SHARD_MISSING;
    open_triage(c, j, shard, len, res);
    if (j->ngood < k && j->ngood + j->nforeign >= k) {
        /* Enough valid shards, but not of this chunk: misdirected, reordered or spliced. */
        res->good = j->ngood;
        if (j->foreign_chunk != j->index)
            return qs_err_set(QS_ECORRUPT, "chunk %llu: shards are from chunk %llu (reordered?)",
                              (unsigned long long)j->index, (unsigned long long)j->foreign_chunk);
        return qs_err_set(QS_ECORRUPT, "chunk %llu: %u shards belong to another stream or position",
                          (unsigned long long)j->index, j->nforeign);
    }
    if (j->ngood < k) {
        res->good = j->ngood;
        return qs_err_set(QS_ETOOFEW, "chunk %llu: %u usable shards of %u, need %u",
                          (unsigned long long)j->index, j->ngood, n, k);
    }
    if (!c->work && !(c->work = malloc((size_t)n * s->max_payload)))
        return qs_err_set(QS_ENOMEM, "codec: out of memory");

    /* First the k lowest usable indices (data shards first: no reconstruction needed),
     * then, if that fails to authenticate, other subsets: drop e of the g good shards in
     * lexicographic order, so each single shard is left out within the first g tries. */
    unsigned g = j->ngood, e = g - k;
    uint8_t drop[QS_CODEC_MAX_SHARDS], keep[QS_CODEC_MAX_SHARDS];
    memcpy(keep, j->good, k);
    res->attempts = 1;
    int rc = open_attempt(c, j, keep, plain, res);
    char why[160] = "";
    if (rc == QS_ECORRUPT)
        snprintf(why, sizeof(why), "%s", qs_err_msg());
    for (unsigned t = 0; t < e; t++)
        drop[t] = (uint8_t)t;
    while (rc == QS_ECORRUPT && e > 0 && res->attempts < MAX_ATTEMPTS) {
        int is_first = 1; /* dropping {k..g-1} is what the first attempt did */
        for (unsigned t = 0; t < e; t++)
            is_first &= drop[t] == k + t;
        if (!is_first) {
            unsigned nk = 0;
            for (unsigned t = 0, d = 0; t < g; t++) {
                if (d < e && drop[d] == t)
                    d++;
                else
                    keep[nk++] = j->good[t];
            }
            res->attempts++;
            rc = open_attempt(c, j, keep, plain, res);
        }
        if (!next_combo(drop, e, g))
            break;
    }
    if (rc > 0) {
        rc = qs_err_set(QS_ECORRUPT, "chunk %llu: authenticated data does not decompress",
                        (unsigned long long)j->index);
    } else if (rc == QS_ECORRUPT) {
        rc = qs_err_set(QS_ECORRUPT,
                        "chunk %llu: no %u of the %u good shards authenticate (tampered data "
                        "or wrong descriptor; first try: %s)",
                        (unsigned long long)j->index, k, g, why);
        for (unsigned t = 0; t < g; t++)
            res->state[j->good[t]] = QS_SHARD_CORRUPT;
    }
    if (rc == 0 && (res->attempts > 1 || (flags & QS_CHUNK_VERIFY_ALL)))
        open_crosscheck(c, j, res);
    res->good = 0;
    for (unsigned i = 0; i < n; i++)
        res->good += res->state[i] == QS_SHARD_OK;
    return rc;
}

int qs_chunk_open(struct qs_chunk_ctx *c, uint64_t index, const uint8_t *const *shard,
                  const size_t *len, unsigned flags, uint8_t *plain, struct qs_chunk_opened *res)
{
    struct open_job j;
    j.index = index;
    return open_impl(c, &j, shard, len, flags, plain, res);
}

int qs_chunk_rebuild(struct qs_chunk_ctx *c, uint64_t index, const uint8_t *const *shard,
                     const size_t *len, unsigned which, uint8_t *out, size_t *out_len)
{
    const struct qs_codec_stream *s = c->s;
    unsigned k = s->desc.k, n = k + s->desc.m;
    *out_len = 0;
    if (which >= n)
        return qs_err_set(QS_EINVAL, "codec: no shard %u in %u+%u", which, k, s->desc.m);
    uint8_t *plain = malloc(s->desc.chunk_size);
    struct qs_chunk_opened *res = malloc(sizeof(*res));
    struct open_job *j = malloc(sizeof(*j));
    int rc;
    if (!plain || !res || !j) {
        rc = qs_err_set(QS_ENOMEM, "codec: out of memory");
        goto out;
    }
    j->index = index;
    if ((rc = open_impl(c, j, shard, len, QS_CHUNK_VERIFY_ALL, plain, res)) != 0)
        goto out;
    /* open_crosscheck left the parity in work[k..n) and the data in j->data. */
    const uint8_t *src = which < k ? j->data[which] : c->work + (size_t)which * j->sz;
    memcpy(out + QS_SHARD_HDR_LEN, src, j->sz);
    write_shard_header(s, out, which, index, j->flags, j->sz);
    *out_len = QS_SHARD_HDR_LEN + j->sz;
out:
    if (plain)
        qs_wipe(plain, s->desc.chunk_size);
    free(plain);
    free(res);
    free(j);
    return rc;
}
