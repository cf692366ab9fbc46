#include "encoder.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/chunk.h"
#include "codec/compress.h"
#include "codec/hash.h"
#include "util/mem.h"

/* A chunk buffer and its shards. Slots are used in ring order: the busy ones (submitted,
 * not yet delivered) are oldest .. oldest+nbusy-1, the one being filled comes next.
 * Each submitted slot has two tasks: sealing (parallel) and feeding the stream hash
 * (serial lane, so chunks are hashed in order, one at a time, on whichever worker is
 * free, while the caller's thread only copies input). */
struct enc_slot {
    struct qs_pool_task task;  /* seal; first member: the task pointer is the slot pointer */
    struct qs_pool_task htask; /* hash */
    struct qs_encoder *enc;
    uint8_t *in; /* chunk_size bytes of plaintext */
    size_t in_len;
    uint8_t *out; /* n * stride bytes of shards */
    uint64_t index;
    unsigned flags;
    uint8_t digest[QS_CODEC_DIGEST_LEN];
    struct qs_chunk_sealed res;
    int rc;
    char msg[256];
};

struct qs_encoder {
    struct qs_codec_stream s;
    struct qs_pool *pool;
    struct qs_pool_lane lane; /* this stream's hash lane */
    int own_pool;
    unsigned nctx;
    struct qs_chunk_ctx **ctx;
    struct enc_slot *slots;
    unsigned nslots;
    unsigned oldest, nbusy;
    unsigned cur;  /* slot being filled: (oldest + nbusy) % nslots */
    int have_next; /* buffer() handed out the slot after a full cur */
    uint64_t next_index;
    uint64_t total;
    struct qs_hash *hash;
    uint8_t digest[QS_CODEC_DIGEST_LEN];
    /* of the whole stream, once finished */ /* own cache lines: written by the hash lane,
                                                64-aligned */
    qs_encoder_sink sink;
    void *ud;
    int err;
    int finished;
};

void qs_encoder_opts_default(struct qs_encoder_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->k = 4;
    o->m = 2;
    o->chunk_size = QS_CODEC_CHUNK_DEF;
    o->compress = QS_COMPRESS_SNAPPY;
    o->workers = -1;
}

static void enc_run(struct qs_pool_task *t, unsigned worker)
{
    struct enc_slot *sl = (struct enc_slot *)t;
    struct qs_encoder *e = sl->enc;
    sl->rc = qs_chunk_seal(e->ctx[worker], sl->in, sl->in_len, sl->index, sl->flags, sl->digest,
                           sl->out, &sl->res);
    if (sl->rc)
        snprintf(sl->msg, sizeof(sl->msg), "%s", qs_err_msg());
}

static void enc_hash(struct qs_pool_task *t, unsigned worker)
{
    struct enc_slot *sl = (struct enc_slot *)((char *)t - offsetof(struct enc_slot, htask));
    (void)worker;
    qs_hash_update(sl->enc->hash, sl->in, sl->in_len);
}

static int slot_alloc(struct qs_encoder *e, struct enc_slot *sl)
{
    if (sl->in)
        return 0;
    size_t outsz;
    unsigned n = e->s.desc.k + e->s.desc.m;
    if (qs_mul_size(n, e->s.stride, &outsz))
        return qs_err_set(QS_ENOMEM, "encoder: shard buffer size overflows");
    sl->in = malloc(e->s.desc.chunk_size);
    sl->out = malloc(outsz);
    if (!sl->in || !sl->out) {
        free(sl->in);
        free(sl->out);
        sl->in = sl->out = NULL;
        return qs_err_set(QS_ENOMEM, "encoder: out of memory for chunk buffers");
    }
    return 0;
}

/* Waits for the oldest busy slot and hands it to the sink (unless already failed). */
static void deliver_oldest(struct qs_encoder *e)
{
    struct enc_slot *sl = &e->slots[e->oldest];
    qs_pool_wait(e->pool, &sl->htask);
    qs_pool_wait(e->pool, &sl->task);
    if (!e->err && sl->rc) {
        e->err = qs_err_set(sl->rc, "%s", sl->msg);
    } else if (!e->err) {
        const struct qs_codec_desc *d = &e->s.desc;
        unsigned n = d->k + d->m;
        const uint8_t *ptr[QS_CODEC_MAX_SHARDS];
        for (unsigned i = 0; i < n; i++)
            ptr[i] = sl->out + (size_t)i * e->s.stride;
        struct qs_enc_chunk c = {
            .index = sl->index,
            .plain_len = sl->in_len,
            .final = (sl->flags & QS_CHUNK_FINAL) != 0,
            .method = sl->res.method,
            .nshards = n,
            .shard_len = sl->res.shard_len,
            .shard = ptr,
            .crc = sl->res.crc,
        };
        int rc = e->sink(e->ud, &c);
        if (rc)
            e->err = rc < 0 ? rc : qs_err_set(QS_EIO, "encoder: sink failed (%d)", rc);
    }
    sl->in_len = 0;
    e->oldest = (e->oldest + 1) % e->nslots;
    e->nbusy--;
}

static void deliver_ready(struct qs_encoder *e)
{
    while (e->nbusy && qs_pool_done(e->pool, &e->slots[e->oldest].task) &&
           qs_pool_done(e->pool, &e->slots[e->oldest].htask))
        deliver_oldest(e);
}

static void drain(struct qs_encoder *e)
{
    while (e->nbusy)
        deliver_oldest(e);
}

/* Submits the slot being filled as chunk next_index. */
static int submit_cur(struct qs_encoder *e, unsigned flags)
{
    struct enc_slot *sl = &e->slots[e->cur];
    if (e->next_index == UINT64_MAX)
        return e->err = qs_err_set(QS_EINVAL, "encoder: too many chunks");
    sl->index = e->next_index++;
    sl->flags = flags;
    sl->htask.fn = enc_hash;
    sl->htask.lane = &e->lane;
    qs_pool_submit(e->pool, &sl->htask);
    if (flags & QS_CHUNK_FINAL) {
        /* The last chunk seals the digest: wait for the lane to hash everything. */
        qs_pool_wait(e->pool, &sl->htask);
        qs_hash_final(e->hash, sl->digest);
        memcpy(e->digest, sl->digest, sizeof(e->digest));
    }
    sl->rc = 0;
    sl->task.fn = enc_run;
    sl->task.serial = 0;
    e->nbusy++;
    e->cur = (e->cur + 1) % e->nslots;
    qs_pool_submit(e->pool, &sl->task);
    deliver_ready(e);
    return e->err;
}

int qs_encoder_new(struct qs_encoder **out, const struct qs_encoder_opts *o,
                   const uint8_t key[QS_CODEC_KEY_LEN], qs_encoder_sink sink, void *ud)
{
    *out = NULL;
    struct qs_encoder_opts def;
    if (!o) {
        qs_encoder_opts_default(&def);
        o = &def;
    }
    if (!sink)
        return qs_err_set(QS_EINVAL, "encoder: no sink");
    if (!qs_compress_name(o->compress))
        return qs_err_set(QS_EINVAL, "encoder: unknown compression %d", (int)o->compress);
    if (o->workers < -1 || o->workers > 64)
        return qs_err_set(QS_EINVAL, "encoder: bad worker count %d", o->workers);
    struct qs_encoder *e = calloc(1, sizeof(*e));
    if (e)
        qs_pool_lane_init(&e->lane);
    if (!e)
        return qs_err_set(QS_ENOMEM, "encoder: out of memory");
    e->sink = sink;
    e->ud = ud;
    struct qs_codec_desc d;
    uint32_t cs = o->chunk_size ? o->chunk_size : QS_CODEC_CHUNK_DEF;
    int rc = qs_codec_desc_new(&d, o->k, o->m, cs, o->file_id, key);
    if (!rc)
        rc = qs_codec_stream_init(&e->s, &d, key);
    if (rc) {
        free(e);
        return rc;
    }
    if (!(e->hash = qs_hash_new())) {
        rc = qs_err_set(QS_ENOMEM, "encoder: out of memory");
        goto fail;
    }
    if (o->pool) {
        e->pool = o->pool;
    } else {
        unsigned w = o->workers < 0 ? qs_codec_default_workers() : (unsigned)o->workers;
        if ((rc = qs_pool_new(&e->pool, w)) != 0)
            goto fail;
        e->own_pool = 1;
    }
    unsigned threads = qs_pool_threads(e->pool);
    e->nctx = threads ? threads : 1;
    e->nslots = o->inflight ? o->inflight : threads + 2;
    if (e->nslots < 2)
        e->nslots = 2;
    e->ctx = calloc(e->nctx, sizeof(*e->ctx));
    e->slots = calloc(e->nslots, sizeof(*e->slots));
    if (!e->ctx || !e->slots) {
        rc = qs_err_set(QS_ENOMEM, "encoder: out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < e->nctx; i++)
        if ((rc = qs_chunk_ctx_new(&e->ctx[i], &e->s, 1, o->compress, o->level)) != 0)
            goto fail;
    for (unsigned i = 0; i < e->nslots; i++)
        e->slots[i].enc = e;
    if ((rc = slot_alloc(e, &e->slots[0])) != 0)
        goto fail;
    *out = e;
    return 0;
fail:
    qs_encoder_free(e);
    return rc;
}

const struct qs_codec_desc *qs_encoder_desc(const struct qs_encoder *e)
{
    return &e->s.desc;
}

int qs_encoder_buffer(struct qs_encoder *e, uint8_t **p, size_t *avail)
{
    *p = NULL;
    *avail = 0;
    if (e->err)
        return e->err;
    if (e->finished)
        return qs_err_set(QS_EINVAL, "encoder: write after finish");
    struct enc_slot *sl = &e->slots[e->cur];
    if (sl->in_len < e->s.desc.chunk_size) {
        *p = sl->in + sl->in_len;
        *avail = e->s.desc.chunk_size - sl->in_len;
        return 0;
    }
    /* cur is full, but it may still be the final chunk: hand out the next slot and only
     * submit cur once bytes are committed there. */
    unsigned next = (e->cur + 1) % e->nslots;
    while (e->nbusy && next == e->oldest)
        deliver_oldest(e);
    if (e->err)
        return e->err;
    int rc = slot_alloc(e, &e->slots[next]);
    if (rc)
        return e->err = rc;
    e->have_next = 1;
    *p = e->slots[next].in;
    *avail = e->s.desc.chunk_size;
    return 0;
}

int qs_encoder_commit(struct qs_encoder *e, size_t n)
{
    if (e->err)
        return e->err;
    if (e->finished)
        return qs_err_set(QS_EINVAL, "encoder: write after finish");
    if (n == 0)
        return 0;
    if (e->have_next) {
        e->have_next = 0;
        int rc = submit_cur(e, 0);
        if (rc)
            return rc;
    }
    struct enc_slot *sl = &e->slots[e->cur];
    if (n > e->s.desc.chunk_size - sl->in_len)
        return e->err = qs_err_set(QS_EINVAL, "encoder: commit of %zu bytes exceeds buffer", n);
    if (e->total + n < e->total)
        return e->err = qs_err_set(QS_EINVAL, "encoder: stream too long");
    sl->in_len += n;
    e->total += n;
    return 0;
}

int qs_encoder_write(struct qs_encoder *e, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        uint8_t *dst;
        size_t avail;
        int rc = qs_encoder_buffer(e, &dst, &avail);
        if (rc)
            return rc;
        size_t n = avail < len ? avail : len;
        memcpy(dst, p, n);
        if ((rc = qs_encoder_commit(e, n)) != 0)
            return rc;
        p += n;
        len -= n;
    }
    return e->err;
}

int qs_encoder_finish(struct qs_encoder *e, struct qs_codec_summary *out)
{
    if (out)
        memset(out, 0, sizeof(*out));
    if (e->finished && !e->err)
        return qs_err_set(QS_EINVAL, "encoder: already finished");
    if (!e->err) {
        e->have_next = 0;
        (void)submit_cur(e, QS_CHUNK_FINAL);
    }
    e->finished = 1;
    drain(e);
    if (e->err)
        return e->err;
    if (out) {
        out->size = e->total;
        out->chunks = e->next_index;
        memcpy(out->digest, e->digest, QS_CODEC_DIGEST_LEN);
    }
    return 0;
}

void qs_encoder_free(struct qs_encoder *e)
{
    if (!e)
        return;
    if (e->pool) {
        e->err = e->err ? e->err : QS_EINVAL; /* reap without calling the sink */
        drain(e);
    }
    if (e->own_pool)
        qs_pool_free(e->pool);
    for (unsigned i = 0; e->ctx && i < e->nctx; i++)
        qs_chunk_ctx_free(e->ctx[i]);
    free(e->ctx);
    for (unsigned i = 0; e->slots && i < e->nslots; i++) {
        if (e->slots[i].in)
            qs_wipe(e->slots[i].in, e->s.desc.chunk_size);
        free(e->slots[i].in);
        free(e->slots[i].out);
    }
    free(e->slots);
    qs_codec_stream_free(&e->s);
    qs_hash_free(e->hash);
    free(e);
}
