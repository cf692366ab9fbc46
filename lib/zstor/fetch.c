/* Shard readers: one thread per backend, each with a FIFO of requests (chunk, shard)
 * that it sends as pipelined batches. The caller's thread keeps a window of chunks in
 * flight: for each it asks the best `k` shard positions (every position in `all` mode),
 * and asks another position whenever a shard comes back missing, corrupt or failed, or
 * keeps a chunk waiting too long. Readers validate what they get (shard header, CRC,
 * position, chunk, file, CRC in the record) so the decoder only sees shards that belong
 * where they are used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/chunk.h"
#include "util/log.h"
#include "zstor/private.h"

#define READ_BATCH 4    /* requests per pipelined batch (what a slow backend holds up at the end) */
#define SLOW_MS    1500 /* a chunk waiting this long for a shard asks one more */
#define WINDOW_MAX 8    /* chunks in flight */
#define WINDOW_MEM (64u << 20)

struct req {
    struct req *next;
    uint64_t chunk;
    unsigned pos;
    bool cancelled, done, counted; /* counted: its result is in the slot's tallies */
    enum zs_fstate st;
    uint8_t *buf;
    size_t len;
    char why[300];
};

struct reader {
    struct fetch *f;
    int bk;
    pthread_t t;
    bool started;
    struct req *head, *tail;
    bool closing;
    pthread_cond_t work;
};

struct slot {
    bool used;
    uint64_t chunk;
    struct req *req[QS_CODEC_MAX_SHARDS];
    unsigned ok, pending, extra;
    int64_t last;
};

struct fetch {
    struct zstor_ctx *z;
    uint64_t job; /* the creator's log job, for the readers */
    const struct zstor_meta_record *r;
    const int *src;
    unsigned n, k;
    bool all;
    struct reader *rd;
    size_t nrd;
    int rof[QS_CODEC_MAX_SHARDS];
    pthread_mutex_t mu;
    pthread_cond_t done;
    unsigned pref[QS_CODEC_MAX_SHARDS];
    unsigned npref;
    bool dead[QS_CODEC_MAX_SHARDS], slow[QS_CODEC_MAX_SHARDS];
    bool warned[QS_CODEC_MAX_SHARDS][ZS_F_ERROR + 1];
    struct slot *slots;
    unsigned w;
    struct zs_fetch_report *rep;
};

static void req_free(struct req *q)
{
    if (!q)
        return;
    free(q->buf);
    free(q);
}

/* ---- reader side ---- */

static void validate(struct fetch *f, struct req *q, uint32_t want_crc)
{
    struct qs_shard_info si;
    if (qs_shard_parse(q->buf, q->len, &si) < 0) {
        q->st = ZS_F_CORRUPT;
        snprintf(q->why, sizeof(q->why), "%s", qs_err_msg());
    } else if (si.index != q->pos) {
        q->st = ZS_F_CORRUPT;
        snprintf(q->why, sizeof(q->why), "it is shard %u", si.index);
    } else if (si.chunk != q->chunk) {
        q->st = ZS_F_CORRUPT;
        snprintf(q->why, sizeof(q->why), "it belongs to chunk %llu", (unsigned long long)si.chunk);
    } else if (memcmp(si.file_id, f->r->desc.file_id, QS_CODEC_ID_LEN) != 0) {
        q->st = ZS_F_CORRUPT;
        snprintf(q->why, sizeof(q->why), "it belongs to another file");
    } else if ((f->r->flags & ZSTOR_META_F_CRC) && si.crc != want_crc) {
        q->st = ZS_F_CORRUPT;
        snprintf(q->why, sizeof(q->why), "its checksum is not the one in the metadata");
    } else {
        q->st = ZS_F_OK;
    }
    if (q->st != ZS_F_OK) {
        free(q->buf);
        q->buf = NULL;
        q->len = 0;
    }
}

static void read_batch(struct reader *rd, struct req **batch, size_t n)
{
    struct fetch *f = rd->f;
    struct zs_bk *k = f->z->data[rd->bk];
    struct qs_backend_op *ops = calloc(n * ZS_MAX_PARTS, sizeof(*ops));
    unsigned parts[READ_BATCH];
    uint32_t crc[READ_BATCH];
    size_t nops = 0;
    for (size_t i = 0; i < n; i++) {
        struct req *q = batch[i];
        struct qs_backend_key keys[ZS_MAX_PARTS];
        parts[i] = 0;
        if (!ops) {
            q->st = ZS_F_ERROR;
            snprintf(q->why, sizeof(q->why), "out of memory");
            continue;
        }
        if (zs_chunk_keys(f->r, q->pos, q->chunk, keys, ZS_MAX_PARTS, &parts[i], &crc[i]) < 0 ||
            parts[i] == 0) {
            q->st = ZS_F_CORRUPT;
            snprintf(q->why, sizeof(q->why), "metadata: %s", qs_err_msg());
            parts[i] = 0;
            continue;
        }
        for (unsigned p = 0; p < parts[i]; p++)
            ops[nops++] =
                (struct qs_backend_op){.result = QS_EIO, .kind = QS_BACKEND_GET, .key = keys[p]};
    }
    int rc = 0;
    char msg[300] = "";
    if (nops && zs_bk_down(k)) {
        rc = QS_EIO;
        snprintf(msg, sizeof(msg), "%s", k->down_why);
    } else if (nops) {
        rc = qs_backend_batch(k->be, ops, nops);
        if (rc < 0) {
            snprintf(msg, sizeof(msg), "%s", qs_err_msg());
            zs_bk_mark_down(k, rc, msg);
        }
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        struct req *q = batch[i];
        if (parts[i] == 0)
            continue;
        int res = 0;
        size_t total = 0;
        for (unsigned p = 0; p < parts[i]; p++) {
            int r = ops[o + p].result == 0 && !ops[o + p].data ? QS_EIO : ops[o + p].result;
            if (r != 0 && res == 0)
                res = r;
            total += ops[o + p].data_len;
        }
        if (res == 0 && parts[i] == 1) {
            q->buf = ops[o].data;
            q->len = ops[o].data_len;
            ops[o].data = NULL;
        } else if (res == 0) {
            q->buf = malloc(total ? total : 1);
            if (!q->buf) {
                res = QS_ENOMEM;
            } else {
                for (unsigned p = 0; p < parts[i]; p++) {
                    memcpy(q->buf + q->len, ops[o + p].data, ops[o + p].data_len);
                    q->len += ops[o + p].data_len;
                }
            }
        }
        if (res == QS_ENOTFOUND) {
            q->st = ZS_F_MISSING;
            snprintf(q->why, sizeof(q->why), "not found on the backend");
        } else if (res == QS_ECORRUPT) {
            q->st = ZS_F_CORRUPT;
            snprintf(q->why, sizeof(q->why), "%s", msg[0] ? msg : "unreadable value");
        } else if (res != 0) {
            q->st = ZS_F_ERROR;
            snprintf(q->why, sizeof(q->why), "%s", msg[0] ? msg : qs_err_name(res));
        } else {
            validate(f, q, crc[i]);
        }
        for (unsigned p = 0; p < parts[i]; p++)
            free(ops[o + p].data);
        o += parts[i];
    }
    free(ops);
}

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    struct fetch *f = rd->f;
    qs_log_set_job(f->job);
    struct req *batch[READ_BATCH];
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!rd->head && !rd->closing)
            pthread_cond_wait(&rd->work, &f->mu);
        if (!rd->head)
            break;
        size_t n = 0;
        while (rd->head && n < READ_BATCH) {
            struct req *q = rd->head;
            rd->head = q->next;
            if (!rd->head)
                rd->tail = NULL;
            q->next = NULL;
            if (q->cancelled)
                req_free(q);
            else
                batch[n++] = q;
        }
        if (n == 0)
            continue;
        pthread_mutex_unlock(&f->mu);
        read_batch(rd, batch, n);
        pthread_mutex_lock(&f->mu);
        for (size_t i = 0; i < n; i++) {
            if (batch[i]->cancelled) {
                req_free(batch[i]);
                continue;
            }
            batch[i]->done = true;
        }
        pthread_cond_broadcast(&f->done);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* ---- the caller's side (f->mu held) ---- */

static const char *state_text(enum zs_fstate st)
{
    switch (st) {
    case ZS_F_MISSING:
        return "is missing";
    case ZS_F_CORRUPT:
        return "is corrupt";
    case ZS_F_ERROR:
        return "is unavailable";
    default:
        return "is fine";
    }
}

static void note_result(struct fetch *f, struct req *q)
{
    if (q->st == ZS_F_OK)
        return;
    if (f->rep) {
        if (q->st == ZS_F_CORRUPT)
            f->rep->bad[q->pos]++;
        else if (q->st == ZS_F_MISSING)
            f->rep->missing[q->pos]++;
        else
            f->rep->failed[q->pos]++;
    }
    if (q->st == ZS_F_ERROR)
        f->dead[q->pos] = true;
    if (!f->warned[q->pos][q->st]) {
        f->warned[q->pos][q->st] = true;
        qs_log(QS_LOG_WARN, "%s: shard %u (%s) %s at chunk %llu: %s%s", f->r->path, q->pos,
               zs_bk_name(f->z->data[f->src[q->pos]]), state_text(q->st),
               (unsigned long long)q->chunk, q->why, f->all ? "" : "; using another shard");
    }
}

static int ask(struct fetch *f, struct slot *s, unsigned pos)
{
    struct req *q = calloc(1, sizeof(*q));
    if (!q)
        return qs_err_set(QS_ENOMEM, "out of memory");
    q->chunk = s->chunk;
    q->pos = pos;
    s->req[pos] = q;
    s->pending++;
    struct reader *rd = &f->rd[f->rof[pos]];
    if (rd->tail)
        rd->tail->next = q;
    else
        rd->head = q;
    rd->tail = q;
    pthread_cond_signal(&rd->work);
    return 0;
}

/* Moves finished requests into the counts and asks for more where needed. Returns the
 * number of positions that could still be asked for this chunk. */
static int top_up(struct fetch *f, struct slot *s, unsigned *left)
{
    for (unsigned p = 0; p < f->n; p++) {
        struct req *q = s->req[p];
        if (!q || !q->done || q->counted)
            continue;
        q->counted = true;
        s->pending--;
        s->last = qs_now_ms();
        if (q->st == ZS_F_OK) {
            s->ok++;
        } else {
            note_result(f, q);
            free(q->buf);
            q->buf = NULL;
        }
    }
    *left = 0;
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < f->npref; i++) {
            unsigned p = f->pref[i];
            if (s->req[p] || f->dead[p] || f->slow[p] != (pass == 1))
                continue;
            if (f->all || s->ok + s->pending < f->k + s->extra) {
                int rc = ask(f, s, p);
                if (rc < 0)
                    return rc;
            } else {
                (*left)++;
            }
        }
    return 0;
}

static bool slot_ready(const struct fetch *f, const struct slot *s, unsigned left)
{
    if (s->pending > 0)
        return !f->all && s->ok >= f->k;
    return f->all || s->ok >= f->k || left == 0;
}

/* Positions in order of preference: backends known to be unreachable last, then fewer
 * recent errors, then latency in coarse steps (under 20 ms, under 200 ms, more: only a
 * real difference counts), and data shards (no decoding) before parity among equals. */
static void order_positions(struct fetch *f)
{
    int rank[QS_CODEC_MAX_SHARDS];
    f->npref = 0;
    for (unsigned p = 0; p < f->n; p++) {
        if (f->src[p] < 0)
            continue;
        const struct zs_bk *k = f->z->data[f->src[p]];
        int r = 0;
        if (zs_bk_down(k) || (k->probed && k->probe_rc != 0))
            r -= 1000; /* known unreachable: last resort */
        if (k->probed) {
            r -= (int)(k->h.error_rate * 10) * 10;
            r -= k->h.latency_us < 20000 ? 0 : k->h.latency_us < 200000 ? 1 : 2;
        }
        rank[p] = r;
        f->pref[f->npref++] = p;
    }
    for (unsigned i = 1; i < f->npref; i++) { /* insertion sort, stable */
        unsigned p = f->pref[i], j = i;
        while (j > 0 && rank[f->pref[j - 1]] < rank[p]) {
            f->pref[j] = f->pref[j - 1];
            j--;
        }
        f->pref[j] = p;
    }
}

int zs_fetch(struct zstor_ctx *z, const struct zstor_meta_record *r, const int *src,
             const struct zs_fetch_opts *o, zs_fetch_fn fn, void *ud, struct zs_fetch_report *rep)
{
    struct fetch *f = calloc(1, sizeof(*f));
    if (!f)
        return qs_err_set(QS_ENOMEM, "out of memory");
    f->z = z;
    f->r = r;
    f->src = src;
    f->n = r->nshards;
    f->k = r->desc.k;
    f->all = o && o->all;
    f->rep = rep;
    if (rep)
        memset(rep, 0, sizeof(*rep));
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->done, &ca);
    pthread_condattr_destroy(&ca);
    order_positions(f);
    size_t shard_est = QS_SHARD_HDR_LEN + (r->desc.chunk_size + 48 + f->k - 1) / f->k;
    size_t per_chunk = shard_est * (f->all ? f->n : f->k + 1);
    f->w = (unsigned)(WINDOW_MEM / (per_chunk ? per_chunk : 1));
    if (f->w > WINDOW_MAX)
        f->w = WINDOW_MAX;
    if (f->w < 2)
        f->w = 2;
    int rc = 0;
    f->slots = calloc(f->w, sizeof(*f->slots));
    f->rd = calloc(f->n, sizeof(*f->rd));
    if (!f->slots || !f->rd) {
        rc = qs_err_set(QS_ENOMEM, "out of memory");
        goto out;
    }
    for (unsigned p = 0; p < f->n; p++) {
        f->rof[p] = -1;
        if (src[p] < 0)
            continue;
        for (size_t i = 0; i < f->nrd; i++)
            if (f->rd[i].bk == src[p])
                f->rof[p] = (int)i;
        if (f->rof[p] < 0) {
            f->rd[f->nrd].f = f;
            f->rd[f->nrd].bk = src[p];
            pthread_cond_init(&f->rd[f->nrd].work, NULL);
            f->rof[p] = (int)f->nrd++;
        }
    }
    f->job = qs_log_job();
    for (size_t i = 0; i < f->nrd; i++) {
        if (pthread_create(&f->rd[i].t, NULL, reader_main, &f->rd[i]) != 0) {
            rc = qs_err_set(QS_EIO, "cannot start a reader thread");
            goto out;
        }
        f->rd[i].started = true;
    }

    uint64_t next = 0, nchunks = r->nchunks;
    uint8_t *shard[QS_CODEC_MAX_SHARDS];
    size_t len[QS_CODEC_MAX_SHARDS];
    for (uint64_t c = 0; c < nchunks && rc == 0; c++) {
        pthread_mutex_lock(&f->mu);
        unsigned left = 0;
        while (next < nchunks && next < c + f->w) {
            struct slot *s = &f->slots[next % f->w];
            memset(s, 0, sizeof(*s));
            s->used = true;
            s->chunk = next++;
            s->last = qs_now_ms();
            if ((rc = top_up(f, s, &left)) < 0)
                break;
        }
        struct slot *s = &f->slots[c % f->w];
        while (rc == 0) {
            if ((rc = zs_interrupted(z)) < 0)
                break;
            for (unsigned i = 0; i < f->w && rc == 0; i++)
                if (f->slots[i].used && &f->slots[i] != s)
                    rc = top_up(f, &f->slots[i], &left);
            if (rc == 0)
                rc = top_up(f, s, &left);
            if (rc < 0 || slot_ready(f, s, left))
                break;
            int64_t now = qs_now_ms();
            if (!f->all && s->pending > 0 && now - s->last >= SLOW_MS) {
                /* slow shards: ask one more position, and prefer others from now on */
                for (unsigned p = 0; p < f->n; p++)
                    if (s->req[p] && !s->req[p]->done)
                        f->slow[p] = true;
                s->extra++;
                s->last = now;
                if (rep)
                    rep->slow++;
                qs_log(QS_LOG_DEBUG, "%s: chunk %llu waits for a slow shard, asking another",
                       r->path, (unsigned long long)c);
                continue;
            }
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&f->done, &f->mu, &ts);
        }
        for (unsigned p = 0; p < f->n; p++) {
            struct req *q = s->req[p];
            shard[p] = NULL;
            len[p] = 0;
            if (!q)
                continue;
            if (q->done) { /* back from the reader: ours to free */
                if (q->counted && q->st == ZS_F_OK) {
                    shard[p] = q->buf;
                    len[p] = q->len;
                    q->buf = NULL;
                }
                req_free(q);
            } else {
                q->cancelled = true; /* in a reader's hands: it frees it */
            }
            s->req[p] = NULL;
        }
        s->used = false;
        pthread_mutex_unlock(&f->mu);
        if (rc == 0)
            rc = zs_interrupted(z);
        if (rc == 0)
            rc = fn(ud, c, shard, len);
        for (unsigned p = 0; p < f->n; p++)
            free(shard[p]);
    }
out:
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nrd; i++) {
        f->rd[i].closing = true;
        pthread_cond_broadcast(&f->rd[i].work);
        /* cancel what is still queued */
        for (struct req *q = f->rd[i].head; q; q = q->next)
            q->cancelled = true;
    }
    for (unsigned i = 0; f->slots && i < f->w; i++) {
        struct slot *s = &f->slots[i];
        if (!s->used)
            continue;
        for (unsigned p = 0; p < f->n; p++) {
            struct req *q = s->req[p];
            if (!q)
                continue;
            if (q->done)
                req_free(q);
            else
                q->cancelled = true;
        }
    }
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; f->rd && i < f->nrd; i++)
        if (f->rd[i].started)
            pthread_join(f->rd[i].t, NULL);
    for (size_t i = 0; f->rd && i < f->nrd; i++) {
        for (struct req *q = f->rd[i].head, *nx; q; q = nx) {
            nx = q->next;
            req_free(q);
        }
        pthread_cond_destroy(&f->rd[i].work);
    }
    free(f->rd);
    free(f->slots);
    pthread_cond_destroy(&f->done);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return rc;
}
