/* Encryption and dispersal of metadata (seal.h, docs/meta-format.md §3-4). */
#include "seal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/aead.h"
#include "codec/hash.h"
#include "codec/rs.h"
#include "util/crc32c.h"
#include "util/mem.h"
#include "util/sys.h"

#define TAG_LEN      16
#define BLOB_MIN     (ZSTOR_META_BLOB_HDR + TAG_LEN)
#define ALG_AES_GCM  1
#define NAME_MAX_LEN 4096
#define MAX_ATTEMPTS 256

static const uint8_t piece_magic[4] = {'Q', 'S', 'M', 'P'};
static const uint8_t blob_magic[4] = {'Q', 'S', 'M', 'E'};
/* BLAKE2b personalization strings, exactly 16 bytes: part of the format. */
static const char kdf_enc[16] = "qsfs-meta-key-01";
static const char kdf_kcv[16] = "qsfs-meta-kcv-01";

static uint32_t piece_crc(const uint8_t *p, size_t payload)
{
    uint32_t c = qs_crc32c_update(~0u, p, 40);
    return ~qs_crc32c_update(c, p + ZSTOR_META_PIECE_HDR, payload);
}

void zstor_meta_sealed_free(struct zstor_meta_sealed *s)
{
    if (!s)
        return;
    free(s->buf);
    memset(s, 0, sizeof(*s));
}

static int check_name(const char *name, size_t *len)
{
    if (!name)
        return qs_err_set(QS_EINVAL, "metadata: no key name");
    *len = strnlen(name, NAME_MAX_LEN + 1);
    if (*len > NAME_MAX_LEN)
        return qs_err_set(QS_EINVAL, "metadata: key name longer than %d bytes", NAME_MAX_LEN);
    return 0;
}

/* Associated data: the blob header, then the key name with its length. */
static int make_aad(const uint8_t *hdr, const char *name, size_t nlen, uint8_t **out, size_t *olen)
{
    size_t n = ZSTOR_META_BLOB_HDR + 4 + nlen;
    uint8_t *a = malloc(n);
    if (!a)
        return qs_err_set(QS_ENOMEM, "metadata: out of memory");
    memcpy(a, hdr, ZSTOR_META_BLOB_HDR);
    qs_put32(a + ZSTOR_META_BLOB_HDR, (uint32_t)nlen);
    memcpy(a + ZSTOR_META_BLOB_HDR + 4, name, nlen);
    *out = a;
    *olen = n;
    return 0;
}

/* Encrypts plain into blob (BLOB_MIN + len bytes). */
static int encrypt_blob(const uint8_t *plain, size_t len, const char *name, size_t nlen,
                        const uint8_t key[32], uint8_t *blob)
{
    uint8_t rnd[28], aes[32];
    struct qs_aead *a = NULL;
    uint8_t *aad = NULL;
    size_t aadlen = 0;
    int rc = qs_random_bytes(rnd, sizeof(rnd));
    if (rc)
        return rc;
    memcpy(blob, blob_magic, 4);
    blob[4] = ZSTOR_META_SEAL_VERSION;
    blob[5] = ALG_AES_GCM;
    blob[6] = blob[7] = 0;
    memcpy(blob + 8, rnd, 16);       /* salt */
    memcpy(blob + 24, rnd + 16, 12); /* nonce */
    qs_put32(blob + 36, (uint32_t)len);
    if ((rc = qs_hash_kdf(blob + 40, 16, key, blob + 8, kdf_kcv)) != 0 ||
        (rc = qs_hash_kdf(aes, sizeof(aes), key, blob + 8, kdf_enc)) != 0)
        goto out;
    if ((rc = make_aad(blob, name, nlen, &aad, &aadlen)) != 0 ||
        (rc = qs_aead_new(&a, aes, 1)) != 0 || (rc = qs_aead_start(a, blob + 24, aad, aadlen)) ||
        (rc = qs_aead_update(a, blob + ZSTOR_META_BLOB_HDR, plain, len)) ||
        (rc = qs_aead_seal_final(a, blob + ZSTOR_META_BLOB_HDR + len)))
        goto out;
out:
    qs_wipe(aes, sizeof(aes));
    qs_aead_free(a);
    free(aad);
    return rc;
}

int zstor_meta_seal_bytes(const uint8_t *plain, size_t len, const char *name,
                          const uint8_t meta_key[ZSTOR_META_KEY_LEN], unsigned data,
                          unsigned parity, struct zstor_meta_sealed *out)
{
    memset(out, 0, sizeof(*out));
    size_t nlen;
    int rc = check_name(name, &nlen);
    if (rc)
        return rc;
    if (data < 1 || data + parity > ZSTOR_META_PIECES_MAX)
        return qs_err_set(QS_EINVAL,
                          "metadata: need 1 <= data pieces and data + parity <= %d (got %u+%u)",
                          ZSTOR_META_PIECES_MAX, data, parity);
    if (len > ZSTOR_META_RECORD_MAX)
        return qs_err_set(QS_EINVAL, "metadata: %zu bytes to seal, limit %u", len,
                          ZSTOR_META_RECORD_MAX);
    unsigned n = data + parity;
    size_t blen = BLOB_MIN + len;
    size_t s = (blen + data - 1) / data;
    size_t plen = ZSTOR_META_PIECE_HDR + s;
    uint8_t *blob = calloc((size_t)data, s);
    uint8_t *buf = calloc(n, plen);
    struct qs_rs rs = {0};
    if (!blob || !buf) {
        rc = qs_err_set(QS_ENOMEM, "metadata: out of memory");
        goto fail;
    }
    if ((rc = encrypt_blob(plain, len, name, nlen, meta_key, blob)) != 0)
        goto fail;

    uint8_t hdr[40] = {0};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    memcpy(hdr, piece_magic, 4);
    hdr[4] = ZSTOR_META_SEAL_VERSION;
    hdr[6] = (uint8_t)data;
    hdr[7] = (uint8_t)parity;
    if ((rc = qs_random_bytes(hdr + 8, 16)) != 0) /* id of this write */
        goto fail;
    qs_put64(hdr + 24, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    qs_put32(hdr + 32, (uint32_t)blen);
    qs_put32(hdr + 36, (uint32_t)s);

    const uint8_t *dptr[ZSTOR_META_PIECES_MAX];
    uint8_t *pptr[ZSTOR_META_PIECES_MAX];
    for (unsigned i = 0; i < n; i++) {
        uint8_t *p = buf + (size_t)i * plen;
        memcpy(p, hdr, 40);
        p[5] = (uint8_t)i;
        if (i < data) {
            memcpy(p + ZSTOR_META_PIECE_HDR, blob + (size_t)i * s, s);
            dptr[i] = p + ZSTOR_META_PIECE_HDR;
        } else {
            pptr[i - data] = p + ZSTOR_META_PIECE_HDR;
        }
    }
    if (parity) {
        if ((rc = qs_rs_init(&rs, data, parity)) != 0)
            goto fail;
        qs_rs_encode(&rs, s, dptr, pptr);
    }
    for (unsigned i = 0; i < n; i++) {
        uint8_t *p = buf + (size_t)i * plen;
        qs_put32(p + 40, piece_crc(p, s));
    }
    qs_rs_free(&rs);
    free(blob);
    out->n = n;
    out->piece_len = plen;
    out->buf = buf;
    return 0;
fail:
    qs_rs_free(&rs);
    free(blob);
    free(buf);
    return rc;
}

int zstor_meta_seal(const struct zstor_meta_record *r, const char *name,
                    const uint8_t meta_key[ZSTOR_META_KEY_LEN], unsigned data, unsigned parity,
                    struct zstor_meta_sealed *out)
{
    uint8_t *enc;
    size_t len;
    memset(out, 0, sizeof(*out));
    int rc = zstor_meta_record_encode(r, &enc, &len);
    if (rc)
        return rc;
    rc = zstor_meta_seal_bytes(enc, len, name, meta_key, data, parity, out);
    qs_wipe(enc, len);
    free(enc);
    return rc;
}

/* ---- opening ---- */

struct cand {
    unsigned slot, index, data, parity, group;
    uint32_t blen, s;
    uint64_t at;
    const uint8_t *hdr, *payload;
};

enum parsed { P_OK, P_CORRUPT, P_NEWER, P_ZSTOR };

/* 0-stor_v2's meta values are: index byte, shard, BLAKE2b-128 of the shard. */
static int is_zstor_v2(const uint8_t *p, size_t len)
{
    uint8_t h[QS_HASH_LEN];
    if (len < 1 + QS_HASH_LEN + 1)
        return 0;
    qs_hash128(h, p + 1, len - 1 - QS_HASH_LEN);
    return memcmp(h, p + len - QS_HASH_LEN, QS_HASH_LEN) == 0;
}

static enum parsed parse_piece(const uint8_t *p, size_t len, struct cand *c, unsigned *ver)
{
    if (len < ZSTOR_META_PIECE_HDR || memcmp(p, piece_magic, 4) != 0)
        return is_zstor_v2(p, len) ? P_ZSTOR : P_CORRUPT;
    if (p[4] != ZSTOR_META_SEAL_VERSION) {
        *ver = p[4];
        return P_NEWER;
    }
    uint32_t s = qs_le32(p + 36);
    if (len - ZSTOR_META_PIECE_HDR != s || qs_le32(p + 40) != piece_crc(p, s))
        return P_CORRUPT;
    c->index = p[5];
    c->data = p[6];
    c->parity = p[7];
    c->at = qs_le64(p + 24);
    c->blen = qs_le32(p + 32);
    c->s = s;
    c->hdr = p;
    c->payload = p + ZSTOR_META_PIECE_HDR;
    if (c->data < 1 || c->data + c->parity > ZSTOR_META_PIECES_MAX ||
        c->index >= c->data + c->parity || c->blen < BLOB_MIN ||
        c->blen - BLOB_MIN > ZSTOR_META_RECORD_MAX || (uint64_t)c->s * c->data < c->blen ||
        (uint64_t)(c->s - 1) * c->data >= c->blen)
        return P_CORRUPT;
    return P_OK;
}

static int same_write(const struct cand *a, const struct cand *b)
{
    return memcmp(a->hdr + 8, b->hdr + 8, 16) == 0 && a->data == b->data &&
           a->parity == b->parity && a->blen == b->blen && a->s == b->s && a->at == b->at;
}

enum attempt { A_OK, A_GARBAGE, A_DENIED, A_BADTAG, A_NEWER };

/* Checks and decrypts an assembled blob. On A_OK plain holds the record. */
static enum attempt open_blob(const uint8_t *blob, size_t blen, size_t padded, const char *name,
                              size_t nlen, const uint8_t key[32], uint8_t *plain, int *rc,
                              unsigned *newer)
{
    *rc = 0;
    for (size_t i = blen; i < padded; i++)
        if (blob[i])
            return A_GARBAGE;
    if (memcmp(blob, blob_magic, 4) != 0)
        return A_GARBAGE;
    if (blob[4] != ZSTOR_META_SEAL_VERSION) {
        *newer = blob[4];
        return A_NEWER;
    }
    uint32_t len = qs_le32(blob + 36);
    if (blob[5] != ALG_AES_GCM || blob[6] || blob[7] || (size_t)len + BLOB_MIN != blen)
        return A_GARBAGE;
    uint8_t kcv[16], aes[32];
    if ((*rc = qs_hash_kdf(kcv, sizeof(kcv), key, blob + 8, kdf_kcv)) != 0)
        return A_GARBAGE;
    uint8_t diff = 0;
    for (size_t i = 0; i < sizeof(kcv); i++)
        diff |= (uint8_t)(kcv[i] ^ blob[40 + i]);
    if (diff)
        return A_DENIED;
    struct qs_aead *a = NULL;
    uint8_t *aad = NULL;
    size_t aadlen = 0;
    enum attempt res = A_GARBAGE;
    if ((*rc = qs_hash_kdf(aes, sizeof(aes), key, blob + 8, kdf_enc)) != 0 ||
        (*rc = make_aad(blob, name, nlen, &aad, &aadlen)) != 0 || (*rc = qs_aead_new(&a, aes, 0)) ||
        (*rc = qs_aead_start(a, blob + 24, aad, aadlen)) ||
        (*rc = qs_aead_update(a, plain, blob + ZSTOR_META_BLOB_HDR, len)))
        goto out;
    if (qs_aead_open_final(a, blob + ZSTOR_META_BLOB_HDR + len) == 0) {
        res = A_OK;
    } else {
        qs_wipe(plain, len);
        res = A_BADTAG;
    }
out:
    qs_wipe(aes, sizeof(aes));
    qs_aead_free(a);
    free(aad);
    return res;
}

/* Tries subsets of `data` pieces of one write (g[0..gn), distinct indices, sorted). On
 * success plain holds the record and blob the full data payloads. Returns the best
 * attempt result; *rc gets a hard error (ENOMEM). */
static enum attempt try_write(struct cand **g, unsigned gn, const char *name, size_t nlen,
                              const uint8_t key[32], uint8_t *blob, const struct qs_rs *rs,
                              struct qs_rs_dec *dec, uint8_t *plain, int *rc, unsigned *newer)
{
    unsigned data = g[0]->data;
    size_t s = g[0]->s, blen = g[0]->blen;
    unsigned idx[ZSTOR_META_PIECES_MAX];
    int seen_tag = 0, seen_denied = 0, seen_newer = 0;
    *rc = 0;
    for (unsigned j = 0; j < data; j++)
        idx[j] = j;
    for (unsigned attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        uint8_t have[ZSTOR_META_PIECES_MAX], want[ZSTOR_META_PIECES_MAX];
        const uint8_t *in[ZSTOR_META_PIECES_MAX];
        uint8_t *outp[ZSTOR_META_PIECES_MAX];
        uint8_t present[ZSTOR_META_PIECES_MAX] = {0};
        unsigned nwant = 0;
        for (unsigned j = 0; j < data; j++) {
            const struct cand *c = g[idx[j]];
            have[j] = (uint8_t)c->index;
            in[j] = c->payload;
            if (c->index < data) {
                memcpy(blob + (size_t)c->index * s, c->payload, s);
                present[c->index] = 1;
            }
        }
        for (unsigned d = 0; d < data; d++) {
            if (!present[d]) {
                want[nwant] = (uint8_t)d;
                outp[nwant++] = blob + (size_t)d * s;
            }
        }
        if (nwant && (*rc = qs_rs_reconstruct(rs, dec, s, have, in, nwant, want, outp)) != 0)
            return A_GARBAGE;
        enum attempt a = open_blob(blob, blen, (size_t)data * s, name, nlen, key, plain, rc, newer);
        if (*rc)
            return A_GARBAGE;
        if (a == A_OK)
            return A_OK;
        seen_tag |= a == A_BADTAG;
        seen_denied |= a == A_DENIED;
        seen_newer |= a == A_NEWER;
        /* next combination of data indices out of gn */
        int j = (int)data - 1;
        while (j >= 0 && idx[j] == gn - data + (unsigned)j)
            j--;
        if (j < 0)
            break;
        idx[j]++;
        for (unsigned t = (unsigned)j + 1; t < data; t++)
            idx[t] = idx[t - 1] + 1;
    }
    return seen_tag ? A_BADTAG : seen_newer ? A_NEWER : seen_denied ? A_DENIED : A_GARBAGE;
}

/* After a successful open: recompute every piece of the write and compare. */
static int verify_write(struct cand *all, unsigned nc, unsigned group, const uint8_t *blob,
                        const struct qs_rs *rs, uint8_t *state)
{
    const struct cand *g0 = NULL;
    for (unsigned i = 0; i < nc && !g0; i++)
        if (all[i].group == group)
            g0 = &all[i];
    unsigned data = g0->data, parity = g0->parity;
    size_t s = g0->s;
    uint8_t *par = NULL;
    if (parity) {
        if ((par = malloc((size_t)parity * s)) == NULL)
            return qs_err_set(QS_ENOMEM, "metadata: out of memory");
        const uint8_t *dptr[ZSTOR_META_PIECES_MAX];
        uint8_t *pptr[ZSTOR_META_PIECES_MAX];
        for (unsigned d = 0; d < data; d++)
            dptr[d] = blob + (size_t)d * s;
        for (unsigned p = 0; p < parity; p++)
            pptr[p] = par + (size_t)p * s;
        qs_rs_encode(rs, s, dptr, pptr);
    }
    for (unsigned i = 0; i < nc; i++) {
        const struct cand *c = &all[i];
        if (c->group != group) {
            state[c->slot] = ZSTOR_META_PIECE_STALE;
            continue;
        }
        const uint8_t *ref =
            c->index < data ? blob + (size_t)c->index * s : par + (size_t)(c->index - data) * s;
        state[c->slot] =
            memcmp(ref, c->payload, s) == 0 ? ZSTOR_META_PIECE_OK : ZSTOR_META_PIECE_CORRUPT;
    }
    free(par);
    return 0;
}

static void count_states(struct zstor_meta_open_info *info, const uint8_t *state, unsigned n)
{
    info->ok = info->missing = info->corrupt = info->stale = info->foreign = 0;
    for (unsigned i = 0; i < n; i++) {
        switch (state[i]) {
        case ZSTOR_META_PIECE_OK:
            info->ok++;
            break;
        case ZSTOR_META_PIECE_MISSING:
            info->missing++;
            break;
        case ZSTOR_META_PIECE_CORRUPT:
            info->corrupt++;
            break;
        case ZSTOR_META_PIECE_STALE:
            info->stale++;
            break;
        default:
            info->foreign++;
            break;
        }
    }
}

static int open_bytes(const uint8_t *const *piece, const size_t *len, unsigned n, const char *name,
                      const uint8_t meta_key[ZSTOR_META_KEY_LEN], uint64_t before, uint8_t **plain,
                      size_t *plain_len, struct zstor_meta_open_info *info)
{
    struct zstor_meta_open_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof(*info));
    *plain = NULL;
    *plain_len = 0;
    size_t nlen;
    int rc = check_name(name, &nlen);
    if (rc)
        return rc;
    if (n > ZSTOR_META_PIECES_MAX)
        return qs_err_set(QS_EINVAL, "metadata: %u pieces, at most %d", n, ZSTOR_META_PIECES_MAX);

    struct cand *c = calloc(n ? n : 1, sizeof(*c));
    if (!c)
        return qs_err_set(QS_ENOMEM, "metadata: out of memory");
    unsigned nc = 0, ngroups = 0, newer = 0, nzstor = 0, present = 0;
    for (unsigned i = 0; i < n; i++) {
        info->state[i] = ZSTOR_META_PIECE_MISSING;
        if (!piece[i] || !len[i])
            continue;
        present++;
        unsigned v = 0;
        switch (parse_piece(piece[i], len[i], &c[nc], &v)) {
        case P_OK:
            c[nc].slot = i;
            info->state[i] = ZSTOR_META_PIECE_OK;
            nc++;
            break;
        case P_NEWER:
            newer = newer > v ? newer : v;
            info->state[i] = ZSTOR_META_PIECE_FOREIGN;
            break;
        case P_ZSTOR:
            nzstor++;
            info->state[i] = ZSTOR_META_PIECE_FOREIGN;
            break;
        default:
            info->state[i] = ZSTOR_META_PIECE_CORRUPT;
            break;
        }
    }

    /* Group pieces by write; count distinct indices per write. */
    unsigned gcount[ZSTOR_META_PIECES_MAX] = {0};
    unsigned gfirst[ZSTOR_META_PIECES_MAX];
    for (unsigned i = 0; i < nc; i++) {
        unsigned g;
        for (g = 0; g < ngroups; g++)
            if (same_write(&c[gfirst[g]], &c[i]))
                break;
        if (g == ngroups)
            gfirst[ngroups++] = i;
        c[i].group = g;
        int dup = 0;
        for (unsigned j = 0; j < i; j++)
            if (c[j].group == g && c[j].index == c[i].index)
                dup = 1;
        if (!dup)
            gcount[g]++;
    }
    /* Order: writes with enough pieces first, newest first, then by size. */
    unsigned order[ZSTOR_META_PIECES_MAX];
    for (unsigned g = 0; g < ngroups; g++)
        order[g] = g;
    for (unsigned a = 1; a < ngroups; a++) {
        for (unsigned b = a; b > 0; b--) {
            const struct cand *x = &c[gfirst[order[b - 1]]], *y = &c[gfirst[order[b]]];
            int ux = gcount[order[b - 1]] >= x->data, uy = gcount[order[b]] >= y->data;
            int swap = uy > ux ||
                       (uy == ux && (y->at > x->at ||
                                     (y->at == x->at && gcount[order[b]] > gcount[order[b - 1]])));
            if (!swap)
                break;
            unsigned t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    }

    enum attempt best = A_GARBAGE;
    unsigned newer_blob = 0;
    int tried = 0;
    rc = 0;
    for (unsigned oi = 0; oi < ngroups && !rc; oi++) {
        unsigned g = order[oi];
        const struct cand *f = &c[gfirst[g]];
        if (gcount[g] < f->data)
            break;
        if (f->at >= before)
            continue; /* only writes older than the one asked about */
        tried = 1;
        struct cand *gp[ZSTOR_META_PIECES_MAX];
        unsigned gn = 0;
        /* distinct indices, ascending (data pieces first: no decoding needed) */
        for (unsigned idx = 0; idx < f->data + f->parity; idx++)
            for (unsigned i = 0; i < nc; i++)
                if (c[i].group == g && c[i].index == idx) {
                    gp[gn++] = &c[i];
                    break;
                }
        struct qs_rs rs = {0};
        struct qs_rs_dec dec;
        qs_rs_dec_init(&dec);
        uint8_t *blob = calloc(f->data, f->s);
        uint8_t *out = malloc(f->blen - BLOB_MIN + 1);
        enum attempt a = A_GARBAGE;
        if (!blob || !out)
            rc = qs_err_set(QS_ENOMEM, "metadata: out of memory");
        else if (f->parity && (rc = qs_rs_init(&rs, f->data, f->parity)) != 0)
            ;
        else
            a = try_write(gp, gn, name, nlen, meta_key, blob, &rs, &dec, out, &rc, &newer_blob);
        if (!rc && a == A_OK) {
            rc = verify_write(c, nc, g, blob, &rs, info->state);
            if (!rc) {
                info->data = f->data;
                info->parity = f->parity;
                info->sealed_at = f->at;
                *plain = out;
                *plain_len = f->blen - BLOB_MIN;
                out = NULL;
            }
        }
        if (a > best)
            best = a;
        qs_rs_dec_free(&dec);
        qs_rs_free(&rs);
        free(blob);
        free(out);
        if (!rc && a == A_OK) {
            count_states(info, info->state, n);
            free(c);
            return 0;
        }
    }
    count_states(info, info->state, n);

    if (!rc) {
        if (before != UINT64_MAX && !tried) {
            rc = qs_err_set(QS_ENOTFOUND, "no older write of '%s' with enough pieces", name);
        } else if (!present) {
            rc = qs_err_set(QS_ENOTFOUND, "no metadata stored under '%s'", name);
        } else if (tried) {
            if (best == A_BADTAG)
                rc = qs_err_set(QS_ECORRUPT,
                                "metadata '%s' does not authenticate: its pieces were damaged "
                                "or tampered with",
                                name);
            else if (best == A_NEWER)
                rc = qs_err_set(QS_EINVAL,
                                "metadata '%s' was written by a newer qsfs (format version %u, "
                                "this build reads %d)",
                                name, newer_blob, ZSTOR_META_SEAL_VERSION);
            else if (best == A_DENIED)
                rc = qs_err_set(QS_EDENIED,
                                "metadata cannot be decrypted with the configured meta key ('%s')",
                                name);
            else
                rc = qs_err_set(QS_ECORRUPT, "metadata '%s': pieces do not decode", name);
        } else if (newer && !nc) {
            rc = qs_err_set(QS_EINVAL,
                            "metadata '%s' was written by a newer qsfs (piece format version %u, "
                            "this build reads %d)",
                            name, newer, ZSTOR_META_SEAL_VERSION);
        } else if (nzstor && !nc) {
            rc = qs_err_set(QS_EINVAL,
                            "metadata '%s' was written by 0-stor_v2, whose format qsfs does not "
                            "read: store the file again",
                            name);
        } else {
            unsigned found = 0, need = 0;
            for (unsigned g = 0; g < ngroups; g++)
                if (gcount[g] > found || (gcount[g] == found && c[gfirst[g]].data < need)) {
                    found = gcount[g];
                    need = c[gfirst[g]].data;
                }
            if (need)
                rc = qs_err_set(QS_ETOOFEW,
                                "metadata '%s': %u good piece(s) found, %u needed (%u missing, %u "
                                "corrupt, %u from other writes)",
                                name, found, need, info->missing, info->corrupt, nc - found);
            else
                rc = qs_err_set(QS_ETOOFEW,
                                "metadata '%s': no good piece found (%u missing, %u corrupt, %u "
                                "unreadable)",
                                name, info->missing, info->corrupt, info->foreign);
        }
    }
    free(c);
    return rc;
}

int zstor_meta_open_bytes(const uint8_t *const *piece, const size_t *len, unsigned n,
                          const char *name, const uint8_t meta_key[ZSTOR_META_KEY_LEN],
                          uint8_t **plain, size_t *plain_len, struct zstor_meta_open_info *info)
{
    return open_bytes(piece, len, n, name, meta_key, UINT64_MAX, plain, plain_len, info);
}

int zstor_meta_open_before(const uint8_t *const *piece, const size_t *len, unsigned n,
                           const char *name, const uint8_t meta_key[ZSTOR_META_KEY_LEN],
                           uint64_t before, struct zstor_meta_record *r,
                           struct zstor_meta_open_info *info)
{
    uint8_t *plain;
    size_t plen;
    memset(r, 0, sizeof(*r));
    int rc = open_bytes(piece, len, n, name, meta_key, before, &plain, &plen, info);
    if (rc)
        return rc;
    rc = zstor_meta_record_decode(r, plain, plen);
    if (rc == QS_ECORRUPT)
        rc = qs_err_set(rc, "metadata '%s' authenticates but does not decode: %s", name,
                        qs_err_msg());
    qs_wipe(plain, plen);
    free(plain);
    return rc;
}

int zstor_meta_open(const uint8_t *const *piece, const size_t *len, unsigned n, const char *name,
                    const uint8_t meta_key[ZSTOR_META_KEY_LEN], struct zstor_meta_record *r,
                    struct zstor_meta_open_info *info)
{
    return zstor_meta_open_before(piece, len, n, name, meta_key, UINT64_MAX, r, info);
}
