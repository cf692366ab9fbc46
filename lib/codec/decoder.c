#include "decoder.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/chunk.h"
#include "codec/hash.h"
#include "util/mem.h"

/* Slots are used in ring order: reclaim .. deliver-1 are delivered and may still be
 * hashed (serial lane), deliver .. tail-1 are being opened (parallel). */
struct dec_slot {
    struct qs_pool_task task;  /* open; first member: the task pointer is the slot pointer */
    struct qs_pool_task htask; /* hash the plaintext, after delivery */
    int hashing;               /* htask submitted */
    struct qs_decoder *dec;
    uint8_t *area; /* n * stride: copies of the supplied shards */
    uint8_t *out;  /* chunk_size: plaintext */
    const uint8_t *ptr[QS_CODEC_MAX_SHARDS];
    size_t len[QS_CODEC_MAX_SHARDS];
    uint8_t oversize[QS_CODEC_MAX_SHARDS];
    uint64_t index;
    struct qs_chunk_opened res;
    int rc;
    char msg[256];
};

struct qs_decoder {
    struct qs_codec_stream s;
    struct qs_pool *pool;
    struct qs_pool_lane lane; /* this stream's hash lane */
    int own_pool;
    unsigned nctx;
    struct qs_chunk_ctx **ctx;
    struct dec_slot *slots;
    unsigned nslots, tail, deliver, reclaim;
    unsigned nopen; /* slots deliver .. tail-1: submitted, not delivered */
    unsigned nhash; /* slots reclaim .. deliver-1: delivered, maybe still hashing */
    unsigned open_flags;
    uint64_t next_index; /* next chunk to feed */
    uint64_t delivered;  /* chunks delivered */
    uint64_t total;
    int final_seen;
    uint8_t digest[QS_CODEC_DIGEST_LEN]; /* sealed in the final chunk */
    struct qs_hash *hash;                /* own cache lines: written by the hash lane, 64-aligned */
    qs_decoder_sink sink;
    void *ud;
    int err;
    int finished;
};

void qs_decoder_opts_default(struct qs_decoder_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->workers = -1;
}

static void dec_run(struct qs_pool_task *t, unsigned worker)
{
    struct dec_slot *sl = (struct dec_slot *)t;
    struct qs_decoder *d = sl->dec;
    sl->rc = qs_chunk_open(d->ctx[worker], sl->index, sl->ptr, sl->len, d->open_flags, sl->out,
                           &sl->res);
    if (sl->rc)
        snprintf(sl->msg, sizeof(sl->msg), "%s", qs_err_msg());
}

static void dec_hash(struct qs_pool_task *t, unsigned worker)
{
    struct dec_slot *sl = (struct dec_slot *)((char *)t - offsetof(struct dec_slot, htask));
    (void)worker;
    qs_hash_update(sl->dec->hash, sl->out, sl->res.plain_len);
}

/* Waits for the oldest undelivered slot, checks it, hands it to the sink and queues its
 * plaintext for the stream hash. */
static void deliver_one(struct qs_decoder *d)
{
    struct dec_slot *sl = &d->slots[d->deliver];
    qs_pool_wait(d->pool, &sl->task);
    sl->hashing = 0;
    unsigned n = d->s.desc.k + d->s.desc.m;
    for (unsigned i = 0; i < n; i++)
        if (sl->oversize[i])
            sl->res.state[i] = QS_SHARD_CORRUPT;
    if (d->err) {
        /* already failed: just reap */
    } else if (sl->rc) {
        d->err = qs_err_set(sl->rc, "%s", sl->msg);
    } else if (d->final_seen) {
        d->err = qs_err_set(QS_ECORRUPT, "chunk %llu follows the final chunk",
                            (unsigned long long)sl->index);
    } else if (d->total + sl->res.plain_len < d->total) {
        d->err = qs_err_set(QS_ECORRUPT, "stream length overflows");
    } else {
        int final = (sl->res.flags & QS_CHUNK_FINAL) != 0;
        sl->htask.fn = dec_hash;
        sl->htask.lane = &d->lane;
        qs_pool_submit(d->pool, &sl->htask);
        sl->hashing = 1;
        d->total += sl->res.plain_len;
        d->delivered++;
        if (final) {
            d->final_seen = 1;
            memcpy(d->digest, sl->res.digest, QS_CODEC_DIGEST_LEN);
        }
        unsigned good = 0;
        for (unsigned i = 0; i < n; i++)
            good += sl->res.state[i] == QS_SHARD_OK;
        struct qs_dec_chunk c = {
            .index = sl->index,
            .data = sl->out,
            .len = sl->res.plain_len,
            .final = final,
            .nshards = n,
            .state = sl->res.state,
            .good = good,
        };
        int rc = d->sink(d->ud, &c);
        if (rc)
            d->err = rc < 0 ? rc : qs_err_set(QS_EIO, "decoder: sink failed (%d)", rc);
    }
    d->deliver = (d->deliver + 1) % d->nslots;
    d->nopen--;
    d->nhash++;
}

/* Frees the oldest busy slot (delivering it first if needed). */
static void reclaim_one(struct qs_decoder *d)
{
    if (d->nhash == 0)
        deliver_one(d);
    struct dec_slot *sl = &d->slots[d->reclaim];
    if (sl->hashing)
        qs_pool_wait(d->pool, &sl->htask);
    sl->hashing = 0;
    d->reclaim = (d->reclaim + 1) % d->nslots;
    d->nhash--;
}

static void drain(struct qs_decoder *d)
{
    while (d->nopen + d->nhash)
        reclaim_one(d);
}

int qs_decoder_new(struct qs_decoder **out, const struct qs_codec_desc *desc,
                   const uint8_t key[QS_CODEC_KEY_LEN], const struct qs_decoder_opts *o,
                   qs_decoder_sink sink, void *ud)
{
    *out = NULL;
    struct qs_decoder_opts def;
    if (!o) {
        qs_decoder_opts_default(&def);
        o = &def;
    }
    if (!sink)
        return qs_err_set(QS_EINVAL, "decoder: no sink");
    if (o->workers < -1 || o->workers > 64)
        return qs_err_set(QS_EINVAL, "decoder: bad worker count %d", o->workers);
    struct qs_decoder *d = calloc(1, sizeof(*d));
    if (d)
        qs_pool_lane_init(&d->lane);
    if (!d)
        return qs_err_set(QS_ENOMEM, "decoder: out of memory");
    d->sink = sink;
    d->ud = ud;
    d->open_flags = o->verify_all ? QS_CHUNK_VERIFY_ALL : 0;
    int rc = qs_codec_stream_init(&d->s, desc, key);
    if (rc) {
        free(d);
        return rc;
    }
    if (!(d->hash = qs_hash_new())) {
        rc = qs_err_set(QS_ENOMEM, "decoder: out of memory");
        goto fail;
    }
    if (o->pool) {
        d->pool = o->pool;
    } else {
        unsigned w = o->workers < 0 ? qs_codec_default_workers() : (unsigned)o->workers;
        if ((rc = qs_pool_new(&d->pool, w)) != 0)
            goto fail;
        d->own_pool = 1;
    }
    unsigned threads = qs_pool_threads(d->pool);
    d->nctx = threads ? threads : 1;
    d->nslots = o->inflight ? o->inflight : threads + 2;
    d->ctx = calloc(d->nctx, sizeof(*d->ctx));
    d->slots = calloc(d->nslots, sizeof(*d->slots));
    if (!d->ctx || !d->slots) {
        rc = qs_err_set(QS_ENOMEM, "decoder: out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < d->nctx; i++)
        if ((rc = qs_chunk_ctx_new(&d->ctx[i], &d->s, 0, QS_COMPRESS_NONE, 0)) != 0)
            goto fail;
    for (unsigned i = 0; i < d->nslots; i++)
        d->slots[i].dec = d;
    *out = d;
    return 0;
fail:
    qs_decoder_free(d);
    return rc;
}

int qs_decoder_feed(struct qs_decoder *d, const uint8_t *const *shard, const size_t *len)
{
    if (d->err)
        return d->err;
    if (d->finished)
        return qs_err_set(QS_EINVAL, "decoder: feed after finish");
    if (d->next_index == UINT64_MAX)
        return d->err = qs_err_set(QS_ECORRUPT, "decoder: too many chunks");
    while (d->nopen + d->nhash == d->nslots)
        reclaim_one(d);
    if (d->err)
        return d->err;
    struct dec_slot *sl = &d->slots[d->tail];
    unsigned n = d->s.desc.k + d->s.desc.m;
    if (!sl->area) {
        size_t areasz;
        if (qs_mul_size(n, d->s.stride, &areasz))
            return d->err = qs_err_set(QS_ENOMEM, "decoder: shard buffer size overflows");
        sl->area = malloc(areasz);
        sl->out = malloc(d->s.desc.chunk_size);
        if (!sl->area || !sl->out) {
            free(sl->area);
            free(sl->out);
            sl->area = sl->out = NULL;
            return d->err = qs_err_set(QS_ENOMEM, "decoder: out of memory for chunk buffers");
        }
    }
    for (unsigned i = 0; i < n; i++) {
        sl->oversize[i] = 0;
        sl->ptr[i] = NULL;
        sl->len[i] = 0;
        if (!shard[i])
            continue;
        if (len[i] > QS_SHARD_HDR_LEN + d->s.max_payload) {
            sl->oversize[i] = 1; /* cannot be ours: reject without copying */
            continue;
        }
        uint8_t *dst = sl->area + (size_t)i * d->s.stride;
        memcpy(dst, shard[i], len[i]);
        sl->ptr[i] = dst;
        sl->len[i] = len[i];
    }
    sl->index = d->next_index++;
    sl->rc = 0;
    sl->task.fn = dec_run;
    sl->task.serial = 0;
    d->tail = (d->tail + 1) % d->nslots;
    d->nopen++;
    qs_pool_submit(d->pool, &sl->task);
    while (d->nopen && qs_pool_done(d->pool, &d->slots[d->deliver].task))
        deliver_one(d);
    return d->err;
}

int qs_decoder_finish(struct qs_decoder *d, struct qs_codec_summary *out)
{
    if (out)
        memset(out, 0, sizeof(*out));
    if (d->finished && !d->err)
        return qs_err_set(QS_EINVAL, "decoder: already finished");
    d->finished = 1;
    drain(d);
    if (d->err)
        return d->err;
    if (!d->final_seen)
        return d->err = qs_err_set(QS_ECORRUPT, "stream truncated: %llu chunks and no final chunk",
                                   (unsigned long long)d->delivered);
    uint8_t got[QS_CODEC_DIGEST_LEN];
    qs_hash_final(d->hash, got);
    if (memcmp(got, d->digest, sizeof(got)) != 0)
        return d->err = qs_err_set(QS_ECORRUPT, "stream checksum mismatch");
    if (out) {
        out->size = d->total;
        out->chunks = d->delivered;
        memcpy(out->digest, got, sizeof(got));
    }
    return 0;
}

void qs_decoder_free(struct qs_decoder *d)
{
    if (!d)
        return;
    if (d->pool) {
        d->err = d->err ? d->err : QS_EINVAL;
        drain(d);
    }
    if (d->own_pool)
        qs_pool_free(d->pool);
    for (unsigned i = 0; d->ctx && i < d->nctx; i++)
        qs_chunk_ctx_free(d->ctx[i]);
    free(d->ctx);
    for (unsigned i = 0; d->slots && i < d->nslots; i++) {
        if (d->slots[i].out)
            qs_wipe(d->slots[i].out, d->s.desc.chunk_size);
        free(d->slots[i].area);
        free(d->slots[i].out);
    }
    free(d->slots);
    qs_codec_stream_free(&d->s);
    qs_hash_free(d->hash);
    free(d);
}
