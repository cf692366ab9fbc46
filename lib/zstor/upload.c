/* A new stream: placement over the healthy data backends, the encoder, the writers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/encoder.h"
#include "placement/placement.h"
#include "util/log.h"
#include "zstor/private.h"

struct zs_upload {
    struct zstor_ctx *z;
    struct zstor_meta_record rec;
    struct qs_encoder *enc;
    struct zs_send *send;
    int target[QS_CODEC_MAX_SHARDS];
    unsigned n;
};

static int sink(void *ud, const struct qs_enc_chunk *c)
{
    struct zs_upload *u = ud;
    for (unsigned i = 0; i < c->nshards; i++) {
        int rc = zs_send_put(u->send, i, c->shard[i], c->shard_len, c->crc[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Chooses the backends: one per shard, over the healthy, non-full ones, honouring the
 * groups' redundancy (placement.h). */
int zs_place(struct zstor_ctx *z, uint64_t need, unsigned *out)
{
    const struct zstor_config *cfg = z->cfg;
    zs_probe_data(z, false);
    struct qs_place_candidate *c = calloc(z->ncfg ? z->ncfg : 1, sizeof(*c));
    if (!c)
        return qs_err_set(QS_ENOMEM, "out of memory");
    for (size_t i = 0; i < z->ncfg; i++) {
        const struct zs_bk *k = z->data[i];
        c[i].group = (unsigned)k->group;
        c[i].reachable = k->probed && k->probe_rc == 0 && !zs_bk_down(k) && !zs_bk_refusing(k);
        uint64_t f = zs_bk_free(k);
        c[i].free_bytes = f == QS_BACKEND_UNKNOWN ? QS_PLACE_UNLIMITED : f;
        c[i].latency_us = k->h.latency_us;
        c[i].error_rate = k->h.error_rate;
    }
    struct qs_place_params p = {cfg->minimal_shards, cfg->expected_shards, cfg->redundant_groups,
                                cfg->redundant_nodes};
    int rc = qs_place_choose(&p, c, z->ncfg, need, out);
    if (rc < 0) {
        /* name the backends that could not be used */
        char why[600] = "";
        size_t off = 0;
        for (size_t i = 0; i < z->ncfg && off < sizeof(why) - 1; i++) {
            const struct zs_bk *k = z->data[i];
            if (!c[i].reachable && zs_bk_refusing(k) && !zs_bk_down(k) && !k->probe_rc)
                off += (size_t)snprintf(why + off, sizeof(why) - off, "; %s: refused a write: %s",
                                        zs_bk_name(k), k->refuse_why);
            else if (!c[i].reachable)
                off += (size_t)snprintf(why + off, sizeof(why) - off, "; %s",
                                        k->probe_rc ? k->h.error : k->down_why);
            else if (zs_bk_readonly(k))
                off += (size_t)snprintf(why + off, sizeof(why) - off, "; %s: %s", zs_bk_name(k),
                                        zs_bk_readonly(k));
            else if (c[i].free_bytes < need || c[i].free_bytes == 0)
                off += (size_t)snprintf(
                    why + off, sizeof(why) - off, "; %s: full (%llu bytes free, %llu needed)",
                    zs_bk_name(k), (unsigned long long)c[i].free_bytes, (unsigned long long)need);
        }
        char msg[400];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        rc = qs_err_set(rc, "%s%s", msg, why);
    }
    free(c);
    return rc;
}

int zs_upload_begin(struct zs_upload **out, struct zstor_ctx *z, const char *rel,
                    uint64_t size_hint)
{
    *out = NULL;
    const struct zstor_config *cfg = z->cfg;
    struct zs_upload *u = calloc(1, sizeof(*u));
    if (!u)
        return qs_err_set(QS_ENOMEM, "out of memory");
    u->z = z;
    unsigned k = cfg->minimal_shards, n = cfg->expected_shards;
    u->n = n;
    unsigned chosen[QS_CODEC_MAX_SHARDS];
    int rc = zs_place(z, zs_shard_bytes(size_hint, k, cfg->chunk_size), chosen);
    if (rc < 0)
        goto fail;
    struct qs_encoder_opts eo;
    qs_encoder_opts_default(&eo);
    eo.k = k;
    eo.m = n - k;
    eo.chunk_size = cfg->chunk_size;
    eo.compress = cfg->compression;
    eo.level = cfg->compression_level;
    eo.pool = z->pool;
    if ((rc = qs_encoder_new(&u->enc, &eo, cfg->key, sink, u)) < 0)
        goto fail;
    if ((rc = zstor_meta_record_init(&u->rec, qs_encoder_desc(u->enc), rel, ZSTOR_META_F_CRC)) < 0)
        goto fail;
    u->rec.compress = cfg->compression;
    u->rec.level = cfg->compression_level;
    for (unsigned i = 0; i < n; i++) {
        const struct zs_bk *b = z->data[chosen[i]];
        u->target[i] = (int)chosen[i];
        if ((rc = zstor_meta_shard_set(&u->rec, i, b->address, b->ns, zs_bk_keykind(b))) < 0)
            goto fail;
    }
    if ((rc = zs_send_new(&u->send, z, &u->rec, u->target, n)) < 0)
        goto fail;
    *out = u;
    return 0;
fail:
    zs_upload_free(u);
    return rc;
}

int zs_upload_write(struct zs_upload *u, const void *p, size_t n)
{
    return qs_encoder_write(u->enc, p, n);
}

int zs_upload_buffer(struct zs_upload *u, uint8_t **p, size_t *avail)
{
    return qs_encoder_buffer(u->enc, p, avail);
}

int zs_upload_commit(struct zs_upload *u, size_t n)
{
    return qs_encoder_commit(u->enc, n);
}

int zs_upload_finish(struct zs_upload *u)
{
    struct qs_codec_summary sum;
    int rc = qs_encoder_finish(u->enc, &sum);
    if (rc < 0) {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        if (zs_send_finish(u->send) < 0) /* the encoder's error is the one to report */
            qs_err_clear();
        return qs_err_set(rc, "%s", msg);
    }
    if ((rc = zs_send_finish(u->send)) < 0)
        return rc;
    u->rec.size = sum.size;
    u->rec.nchunks = sum.chunks;
    memcpy(u->rec.checksum, sum.digest, sizeof(sum.digest));
    /* what placement must not count twice until the next probe */
    uint64_t per = zs_send_bytes(u->send) / (u->n ? u->n : 1);
    for (unsigned i = 0; i < u->n; i++)
        u->z->data[u->target[i]]->written += per;
    return zstor_meta_record_check(&u->rec);
}

struct zstor_meta_record *zs_upload_record(struct zs_upload *u)
{
    return &u->rec;
}

uint64_t zs_upload_undo(struct zs_upload *u)
{
    return u->send ? zs_send_undo(u->send) : 0;
}

bool zs_upload_lost_backend(const struct zs_upload *u)
{
    for (unsigned i = 0; i < u->n; i++) {
        const struct zs_bk *k = u->z->data[u->target[i]];
        if (zs_bk_down(k) || zs_bk_refusing(k))
            return true;
    }
    return false;
}

uint64_t zs_upload_bytes(const struct zs_upload *u)
{
    return u->send ? zs_send_bytes(u->send) : 0;
}

void zs_upload_free(struct zs_upload *u)
{
    if (!u)
        return;
    qs_encoder_free(u->enc);
    zs_send_free(u->send);
    zstor_meta_record_free(&u->rec);
    free(u);
}
