/* Shard writers: one thread per backend, fed through a bounded queue, writing what has
 * queued up as one pipelined batch. The encoder's sink (or a rebuild) only copies shards
 * into the queues, so the codec's work on the next chunks overlaps the network I/O, and
 * memory stays bounded by the queue limits whatever the file size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "zstor/private.h"

#define QMAX_ITEMS  8          /* queued shards per backend */
#define QMAX_BYTES  (8u << 20) /* queued bytes per backend (one shard always fits) */
#define BATCH_ITEMS 16         /* shards per pipelined batch */
#define BATCH_BYTES (16u << 20)
#define SPARE_MAX   32 /* written items kept for reuse: fresh buffers cost page faults */

struct item {
    struct item *next;
    unsigned pos;
    bool keep;
    uint8_t *data; /* put: owned copy */
    size_t len, cap;
    struct qs_backend_key *keys; /* keep: owned */
    unsigned nkeys;
    uint32_t crc;
};

struct writer {
    struct zs_send *s;
    int bk;
    pthread_t t;
    bool started;
    struct item *head, *tail;
    size_t qitems, qbytes;
    bool closing;
    pthread_cond_t work, space;
    /* values stored but not in the record (a batch that failed halfway), for undo */
    struct qs_backend_key *stray;
    size_t nstray, capstray;
};

struct zs_send {
    struct zstor_ctx *z;
    uint64_t job; /* the creator's log job, for the writers */
    struct zstor_meta_record *r;
    unsigned npos;
    int target[QS_CODEC_MAX_SHARDS];
    int wof[QS_CODEC_MAX_SHARDS]; /* writer of each position, -1 = none */
    struct writer *w;
    size_t nw;
    pthread_mutex_t mu;
    int err; /* first error, sticky */
    char errmsg[600];
    uint64_t bytes;
    struct item *spare; /* guarded by mu */
    size_t nspare;
    /* per position: one bit per chunk, set when this sender stored it (undo) */
    uint8_t *fresh[QS_CODEC_MAX_SHARDS];
    size_t freshcap[QS_CODEC_MAX_SHARDS];
};

static void set_err(struct zs_send *s, int rc, const char *msg)
{
    pthread_mutex_lock(&s->mu);
    if (!s->err) {
        s->err = rc;
        snprintf(s->errmsg, sizeof(s->errmsg), "%s", msg);
    }
    for (size_t i = 0; i < s->nw; i++)
        pthread_cond_broadcast(&s->w[i].space);
    pthread_mutex_unlock(&s->mu);
}

static void item_free(struct item *it)
{
    free(it->data);
    free(it->keys);
    free(it);
}

/* Keeps a written item for reuse (mu held). */
static void recycle_locked(struct zs_send *s, struct item *it)
{
    if (it->keep || s->nspare >= SPARE_MAX) {
        item_free(it);
        return;
    }
    it->next = s->spare;
    s->spare = it;
    s->nspare++;
}

/* An item with room for len bytes: a spare one when it is large enough. */
static struct item *item_get(struct zs_send *s, size_t len)
{
    pthread_mutex_lock(&s->mu);
    struct item *it = s->spare;
    if (it) {
        s->spare = it->next;
        s->nspare--;
    }
    pthread_mutex_unlock(&s->mu);
    if (it && it->cap < len) {
        item_free(it);
        it = NULL;
    }
    if (!it) {
        it = calloc(1, sizeof(*it));
        if (it && !(it->data = malloc(len ? len : 1))) {
            free(it);
            it = NULL;
        }
        if (it)
            it->cap = len ? len : 1;
        return it;
    }
    uint8_t *data = it->data;
    size_t cap = it->cap;
    memset(it, 0, sizeof(*it));
    it->data = data;
    it->cap = cap;
    return it;
}

static int mark_fresh(struct zs_send *s, unsigned pos, uint64_t c)
{
    size_t byte = (size_t)(c / 8);
    if (byte >= s->freshcap[pos]) {
        size_t cap = s->freshcap[pos] ? s->freshcap[pos] : 64;
        while (cap <= byte)
            cap *= 2;
        uint8_t *p = realloc(s->fresh[pos], cap);
        if (!p)
            return qs_err_set(QS_ENOMEM, "out of memory");
        memset(p + s->freshcap[pos], 0, cap - s->freshcap[pos]);
        s->fresh[pos] = p;
        s->freshcap[pos] = cap;
    }
    s->fresh[pos][byte] |= (uint8_t)(1u << (c % 8));
    return 0;
}

static bool is_fresh(const struct zs_send *s, unsigned pos, uint64_t c)
{
    size_t byte = (size_t)(c / 8);
    return byte < s->freshcap[pos] && (s->fresh[pos][byte] >> (c % 8)) & 1;
}

static void add_stray(struct writer *w, const struct qs_backend_key *k)
{
    if (w->nstray == w->capstray) {
        size_t cap = w->capstray ? 2 * w->capstray : 16;
        struct qs_backend_key *p = realloc(w->stray, cap * sizeof(*p));
        if (!p) {
            qs_log(QS_LOG_WARN, "out of memory: a shard written to %s may stay behind",
                   zs_bk_name(w->s->z->data[w->bk]));
            return;
        }
        w->stray = p;
        w->capstray = cap;
    }
    w->stray[w->nstray++] = *k;
}

/* Appends the keys of one chunk of pos to the record. */
static int record_keys(struct zs_send *s, unsigned pos, const struct qs_backend_key *keys,
                       unsigned n, uint32_t crc)
{
    struct zstor_meta_keyref refs[ZS_MAX_PARTS];
    for (unsigned i = 0; i < n; i++)
        zs_key_ref(&keys[i], s->r->shard[pos].kind, &refs[i]);
    return zstor_meta_shard_add(s->r, pos, refs, n, crc);
}

static void process(struct writer *w, struct item **batch, size_t n)
{
    struct zs_send *s = w->s;
    struct zs_bk *k = s->z->data[w->bk];
    size_t maxv = qs_backend_max_value(k->be);
    size_t nops = 0;
    for (size_t i = 0; i < n; i++)
        if (!batch[i]->keep)
            nops += batch[i]->len <= maxv ? 1 : (batch[i]->len + maxv - 1) / maxv;
    struct qs_backend_op *ops = calloc(nops ? nops : 1, sizeof(*ops));
    if (!ops) {
        set_err(s, QS_ENOMEM, "out of memory");
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        struct item *it = batch[i];
        if (it->keep)
            continue;
        for (size_t off = 0; off < it->len || (off == 0 && it->len == 0); off += maxv) {
            size_t part = it->len - off < maxv ? it->len - off : maxv;
            ops[o++] = (struct qs_backend_op){
                .result = QS_EIO, .kind = QS_BACKEND_PUT, .val = it->data + off, .len = part};
            if (it->len == 0)
                break;
        }
    }
    int rc = 0;
    char msg[600] = "";
    if (nops) {
        if (zs_bk_down(k)) {
            rc = QS_EIO;
            snprintf(msg, sizeof(msg), "%s", k->down_why);
        } else {
            rc = qs_backend_batch(k->be, ops, nops);
            if (rc < 0) {
                snprintf(msg, sizeof(msg), "%s", qs_err_msg());
                zs_bk_mark_down(k, rc, msg);
                zs_bk_refuse_writes(k, rc, msg);
            }
        }
    }
    bool ok = true;
    o = 0;
    for (size_t i = 0; i < n; i++) {
        struct item *it = batch[i];
        if (it->keep) {
            if (ok && record_keys(s, it->pos, it->keys, it->nkeys, it->crc) < 0) {
                ok = false;
                set_err(s, QS_ENOMEM, qs_err_msg());
            }
            continue;
        }
        size_t parts = it->len <= maxv ? 1 : (it->len + maxv - 1) / maxv;
        bool all = true;
        for (size_t p = 0; p < parts; p++)
            all &= ops[o + p].result == 0 && ops[o + p].key.len > 0;
        struct qs_backend_key keys[ZS_MAX_PARTS];
        if (ok && all && parts <= ZS_MAX_PARTS) {
            for (size_t p = 0; p < parts; p++)
                keys[p] = ops[o + p].key;
            uint64_t c = s->r->shard[it->pos].nchunks;
            int rrc = record_keys(s, it->pos, keys, (unsigned)parts, it->crc);
            if (rrc == 0)
                rrc = mark_fresh(s, it->pos, c);
            if (rrc < 0) {
                ok = false;
                set_err(s, rrc, qs_err_msg());
            } else {
                pthread_mutex_lock(&s->mu);
                s->bytes += it->len;
                pthread_mutex_unlock(&s->mu);
            }
        } else {
            /* written parts that the record will not reference */
            for (size_t p = 0; p < parts; p++)
                if (ops[o + p].result == 0 && ops[o + p].key.len > 0)
                    add_stray(w, &ops[o + p].key);
            ok = false;
        }
        o += parts;
    }
    if (!ok && rc == 0 && nops)
        rc = QS_EIO; /* a part beyond the op limit; the message below says so */
    if (rc < 0)
        set_err(s, rc, msg[0] ? msg : "shard write failed");
    free(ops);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct zs_send *s = w->s;
    qs_log_set_job(s->job);
    struct item *batch[BATCH_ITEMS];
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!w->head && !w->closing)
            pthread_cond_wait(&w->work, &s->mu);
        if (!w->head)
            break;
        size_t n = 0, bytes = 0;
        while (w->head && n < BATCH_ITEMS && (n == 0 || bytes + w->head->len <= BATCH_BYTES)) {
            struct item *it = w->head;
            w->head = it->next;
            if (!w->head)
                w->tail = NULL;
            w->qitems--;
            w->qbytes -= it->len;
            bytes += it->len;
            batch[n++] = it;
        }
        pthread_cond_broadcast(&w->space);
        bool failed = s->err != 0;
        pthread_mutex_unlock(&s->mu);
        if (!failed)
            process(w, batch, n);
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < n; i++)
            recycle_locked(s, batch[i]);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int zs_send_new(struct zs_send **out, struct zstor_ctx *z, struct zstor_meta_record *r,
                const int *target, unsigned npos)
{
    *out = NULL;
    struct zs_send *s = calloc(1, sizeof(*s));
    if (!s)
        return qs_err_set(QS_ENOMEM, "out of memory");
    s->z = z;
    s->r = r;
    s->npos = npos;
    pthread_mutex_init(&s->mu, NULL);
    s->w = calloc(npos ? npos : 1, sizeof(*s->w));
    if (!s->w) {
        zs_send_free(s);
        return qs_err_set(QS_ENOMEM, "out of memory");
    }
    for (unsigned p = 0; p < npos; p++) {
        s->target[p] = target[p];
        s->wof[p] = -1;
        if (target[p] < 0)
            continue;
        for (size_t i = 0; i < s->nw; i++)
            if (s->w[i].bk == target[p])
                s->wof[p] = (int)i;
        if (s->wof[p] < 0) {
            struct writer *w = &s->w[s->nw];
            w->s = s;
            w->bk = target[p];
            pthread_cond_init(&w->work, NULL);
            pthread_cond_init(&w->space, NULL);
            s->wof[p] = (int)s->nw++;
        }
    }
    s->job = qs_log_job();
    for (size_t i = 0; i < s->nw; i++) {
        if (pthread_create(&s->w[i].t, NULL, writer_main, &s->w[i]) != 0) {
            zs_send_free(s);
            return qs_err_set(QS_EIO, "cannot start a writer thread");
        }
        s->w[i].started = true;
    }
    *out = s;
    return 0;
}

static int enqueue(struct zs_send *s, struct item *it)
{
    if (it->pos >= s->npos || s->wof[it->pos] < 0) {
        unsigned pos = it->pos;
        item_free(it);
        return qs_err_set(QS_EINVAL, "no backend for shard %u", pos);
    }
    struct writer *w = &s->w[s->wof[it->pos]];
    pthread_mutex_lock(&s->mu);
    while (!s->err && w->qitems > 0 &&
           (w->qitems >= QMAX_ITEMS || w->qbytes + it->len > QMAX_BYTES))
        pthread_cond_wait(&w->space, &s->mu);
    int rc = s->err;
    if (rc) {
        qs_err_set(rc, "%s", s->errmsg);
        pthread_mutex_unlock(&s->mu);
        item_free(it);
        return rc;
    }
    if (w->tail)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    w->qitems++;
    w->qbytes += it->len;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int zs_send_put(struct zs_send *s, unsigned pos, const uint8_t *data, size_t len, uint32_t crc)
{
    struct item *it = item_get(s, len);
    if (!it)
        return qs_err_set(QS_ENOMEM, "out of memory");
    memcpy(it->data, data, len);
    it->len = len;
    it->pos = pos;
    it->crc = crc;
    return enqueue(s, it);
}

int zs_send_keep(struct zs_send *s, unsigned pos, const struct qs_backend_key *keys, unsigned nkeys,
                 uint32_t crc)
{
    struct item *it = calloc(1, sizeof(*it));
    if (!it || !(it->keys = malloc((nkeys ? nkeys : 1) * sizeof(*keys)))) {
        free(it);
        return qs_err_set(QS_ENOMEM, "out of memory");
    }
    memcpy(it->keys, keys, nkeys * sizeof(*keys));
    it->nkeys = nkeys;
    it->keep = true;
    it->pos = pos;
    it->crc = crc;
    return enqueue(s, it);
}

static void stop_all(struct zs_send *s)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nw; i++) {
        s->w[i].closing = true;
        pthread_cond_broadcast(&s->w[i].work);
    }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->nw; i++)
        if (s->w[i].started) {
            pthread_join(s->w[i].t, NULL);
            s->w[i].started = false;
        }
}

int zs_send_finish(struct zs_send *s)
{
    stop_all(s);
    if (s->err)
        return qs_err_set(s->err, "%s", s->errmsg);
    return 0;
}

uint64_t zs_send_bytes(const struct zs_send *s)
{
    return s->bytes;
}

struct undo_job {
    struct zs_send *s;
    uint64_t failed[QS_CODEC_MAX_SHARDS];
};

static void undo_flush(struct zs_bk *k, struct qs_backend_op *ops, size_t *n, uint64_t *failed)
{
    if (*n == 0)
        return;
    int rc = qs_backend_batch(k->be, ops, *n);
    for (size_t i = 0; rc < 0 && i < *n; i++)
        if (ops[i].result != 0 && ops[i].result != QS_ENOTFOUND)
            (*failed)++; /* results start as QS_EIO: ops never reached count */
    *n = 0;
}

static void undo_writer(void *ud, size_t wi)
{
    struct undo_job *j = ud;
    struct zs_send *s = j->s;
    struct writer *w = &s->w[wi];
    struct zs_bk *k = s->z->data[w->bk];
    size_t cap = 256 + ZS_MAX_PARTS;
    struct qs_backend_op *ops = calloc(cap, sizeof(*ops));
    uint64_t failed = 0;
    size_t n = 0;
    if (!ops) {
        j->failed[wi] = 1;
        return;
    }
    for (size_t i = 0; i < w->nstray; i++) {
        ops[n++] =
            (struct qs_backend_op){.result = QS_EIO, .kind = QS_BACKEND_DEL, .key = w->stray[i]};
        if (n >= 256)
            undo_flush(k, ops, &n, &failed);
    }
    for (unsigned pos = 0; pos < s->npos; pos++) {
        if (s->wof[pos] != (int)wi)
            continue;
        for (uint64_t c = 0; c < s->r->shard[pos].nchunks; c++) {
            if (!is_fresh(s, pos, c))
                continue;
            struct qs_backend_key keys[ZS_MAX_PARTS];
            unsigned nk = 0;
            if (zs_chunk_keys(s->r, pos, c, keys, ZS_MAX_PARTS, &nk, NULL) < 0) {
                failed++;
                continue;
            }
            for (unsigned p = 0; p < nk; p++)
                ops[n++] = (struct qs_backend_op){
                    .result = QS_EIO, .kind = QS_BACKEND_DEL, .key = keys[p]};
            if (n >= 256)
                undo_flush(k, ops, &n, &failed);
        }
    }
    undo_flush(k, ops, &n, &failed);
    free(ops);
    j->failed[wi] = failed;
}

uint64_t zs_send_undo(struct zs_send *s)
{
    stop_all(s);
    zs_net_cancel(s->z, false); /* a cancelled store still deletes what it wrote */
    struct undo_job *j = calloc(1, sizeof(*j));
    if (!j)
        return 1;
    j->s = s;
    zs_par(s->nw, undo_writer, j);
    uint64_t failed = 0;
    for (size_t i = 0; i < s->nw; i++) {
        if (j->failed[i])
            qs_log(QS_LOG_DEBUG, "%s: %llu shard values could not be deleted",
                   zs_bk_name(s->z->data[s->w[i].bk]), (unsigned long long)j->failed[i]);
        failed += j->failed[i];
    }
    free(j);
    zs_net_cancel(s->z, true);
    return failed;
}

void zs_send_free(struct zs_send *s)
{
    if (!s)
        return;
    if (s->w) {
        stop_all(s);
        for (size_t i = 0; i < s->nw; i++) {
            struct writer *w = &s->w[i];
            for (struct item *it = w->head, *nx; it; it = nx) {
                nx = it->next;
                item_free(it);
            }
            free(w->stray);
            pthread_cond_destroy(&w->work);
            pthread_cond_destroy(&w->space);
        }
    }
    for (struct item *it = s->spare, *nx; it; it = nx) {
        nx = it->next;
        item_free(it);
    }
    for (unsigned p = 0; p < s->npos; p++)
        free(s->fresh[p]);
    free(s->w);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
