/* Keys of the metadata record as backend keys, shard size estimates, shard deletion. */
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/mem.h"
#include "zstor/private.h"

#define DEL_BATCH 256

int zs_chunk_keys(const struct zstor_meta_record *r, unsigned pos, uint64_t c,
                  struct qs_backend_key *out, unsigned max, unsigned *n, uint32_t *crc)
{
    struct zstor_meta_keyref refs[ZS_MAX_PARTS];
    unsigned got = 0;
    int rc = zstor_meta_chunk_keys(r, pos, c, refs, ZS_MAX_PARTS, &got, crc);
    if (rc < 0)
        return rc;
    if (got > max || got > ZS_MAX_PARTS)
        return qs_err_set(QS_EINVAL, "shard %u of chunk %llu is split into %u values (at most %u)",
                          pos, (unsigned long long)c, got, max < ZS_MAX_PARTS ? max : ZS_MAX_PARTS);
    for (unsigned j = 0; j < got; j++) {
        memset(&out[j], 0, sizeof(out[j]));
        if (r->shard[pos].kind == ZSTOR_META_KEY_SEQ) {
            out[j].len = 8;
            qs_put64(out[j].b, refs[j].id);
        } else {
            if (refs[j].len > QS_BACKEND_KEY_MAX)
                return qs_err_set(QS_EINVAL, "shard %u: a key of %zu bytes (at most %u)", pos,
                                  refs[j].len, QS_BACKEND_KEY_MAX);
            out[j].len = (uint8_t)refs[j].len;
            memcpy(out[j].b, refs[j].p, refs[j].len);
        }
    }
    *n = got;
    return 0;
}

void zs_key_ref(const struct qs_backend_key *k, enum zstor_meta_keykind kind,
                struct zstor_meta_keyref *out)
{
    memset(out, 0, sizeof(*out));
    if (kind == ZSTOR_META_KEY_SEQ) {
        out->id = k->len == 8 ? qs_le64(k->b) : 0;
    } else {
        out->p = k->b;
        out->len = k->len;
    }
}

uint64_t zs_shard_bytes(uint64_t size, unsigned k, uint32_t chunk_size)
{
    uint64_t per = QS_SHARD_HDR_LEN + ((uint64_t)chunk_size + 48 + k - 1) / k;
    uint64_t last = QS_SHARD_HDR_LEN + (size % chunk_size + 48 + k - 1) / k;
    return size / chunk_size * per + last;
}

/* ---- deleting every shard of a record ---- */

struct del_job {
    struct zstor_ctx *z;
    const struct zstor_meta_record *r;
    const int *src;
    const uint8_t *only;
    int *bks; /* distinct backends */
    uint64_t *deleted, *failed;
};

static void del_flush(struct zs_bk *k, struct qs_backend_op *ops, size_t *n, uint64_t *deleted,
                      uint64_t *failed)
{
    if (*n == 0)
        return;
    /* results start as QS_EIO: an op the batch never reached counts as failed */
    int rc = zs_bk_down(k) ? QS_EIO : qs_backend_batch(k->be, ops, *n);
    if (rc < 0 && zs_transport_error(rc))
        zs_bk_mark_down(k, rc, qs_err_msg());
    for (size_t i = 0; i < *n; i++) {
        if (ops[i].result == 0 || ops[i].result == QS_ENOTFOUND)
            (*deleted)++;
        else
            (*failed)++;
    }
    *n = 0;
}

static void del_backend(void *ud, size_t bi)
{
    struct del_job *j = ud;
    int b = j->bks[bi];
    struct zs_bk *k = j->z->data[b];
    struct qs_backend_op *ops = calloc(DEL_BATCH + ZS_MAX_PARTS, sizeof(*ops));
    uint64_t deleted = 0, failed = 0;
    size_t n = 0;
    for (unsigned pos = 0; pos < j->r->nshards; pos++) {
        if (j->src[pos] != b || (j->only && !j->only[pos]))
            continue;
        for (uint64_t c = 0; c < j->r->shard[pos].nchunks; c++) {
            struct qs_backend_key keys[ZS_MAX_PARTS];
            unsigned nk = 0;
            if (!ops || zs_chunk_keys(j->r, pos, c, keys, ZS_MAX_PARTS, &nk, NULL) < 0) {
                failed++;
                continue;
            }
            for (unsigned p = 0; p < nk; p++)
                ops[n++] = (struct qs_backend_op){
                    .result = QS_EIO, .kind = QS_BACKEND_DEL, .key = keys[p]};
            if (n >= DEL_BATCH)
                del_flush(k, ops, &n, &deleted, &failed);
        }
    }
    if (ops)
        del_flush(k, ops, &n, &deleted, &failed);
    free(ops);
    j->deleted[bi] = deleted;
    j->failed[bi] = failed;
}

void zs_delete_shards(struct zstor_ctx *z, const struct zstor_meta_record *r,
                      const uint8_t *only_pos, uint64_t *deleted, uint64_t *failed)
{
    uint64_t tot_del = 0, tot_fail = 0;
    int src[QS_CODEC_MAX_SHARDS];
    int bks[QS_CODEC_MAX_SHARDS];
    size_t nb = 0;
    for (unsigned pos = 0; pos < r->nshards; pos++) {
        src[pos] = -1;
        if (r->shard[pos].flags & ZSTOR_META_SHARD_ABSENT || (only_pos && !only_pos[pos]))
            continue;
        src[pos] = zs_data_lookup(z, r->shard[pos].address, r->shard[pos].ns);
        if (src[pos] < 0) {
            tot_fail += r->shard[pos].nkeys;
            continue;
        }
        bool seen = false;
        for (size_t i = 0; i < nb; i++)
            seen |= bks[i] == src[pos];
        if (!seen)
            bks[nb++] = src[pos];
    }
    uint64_t d[QS_CODEC_MAX_SHARDS] = {0}, f[QS_CODEC_MAX_SHARDS] = {0};
    struct del_job j = {z, r, src, only_pos, bks, d, f};
    zs_par(nb, del_backend, &j);
    for (size_t i = 0; i < nb; i++) {
        tot_del += d[i];
        tot_fail += f[i];
        if (f[i])
            qs_log(QS_LOG_DEBUG, "%s: %llu values not deleted", zs_bk_name(z->data[bks[i]]),
                   (unsigned long long)f[i]);
    }
    if (deleted)
        *deleted = tot_del;
    if (failed)
        *failed = tot_fail;
}
