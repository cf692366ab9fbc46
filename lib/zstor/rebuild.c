/* zstor rebuild (rebuild.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/chunk.h"
#include "codec/decoder.h"
#include "meta/key.h"
#include "placement/placement.h"
#include "util/log.h"
#include "zstor/private.h"
#include "zstor/rebuild.h"

#define HELD     8 /* chunks whose shards are held for the decoder's sink (> INFLIGHT) */
#define INFLIGHT 4

struct held {
    bool used;
    uint64_t chunk;
    uint8_t *shard[QS_CODEC_MAX_SHARDS];
    size_t len[QS_CODEC_MAX_SHARDS];
};

/* An old value to delete once the new metadata is written. */
struct oldkey {
    int bk;
    struct qs_backend_key key;
};

struct rb {
    struct zstor_ctx *z;
    const struct zstor_meta_record *old;
    struct zstor_meta_record *rec; /* the new record (partial rebuild) */
    unsigned n;
    int src[QS_CODEC_MAX_SHARDS], target[QS_CODEC_MAX_SHARDS];
    bool keep[QS_CODEC_MAX_SHARDS];
    struct qs_decoder *dec;
    struct zs_send *send;
    struct zs_upload *up; /* re-encode */
    struct qs_codec_stream stream;
    bool have_stream;
    struct qs_chunk_ctx *cc;
    uint8_t *out; /* one rebuilt shard */
    struct held held[HELD];
    struct oldkey *dels;
    size_t ndels, capdels;
    uint64_t rewritten;
};

static int add_del(struct rb *b, int bk, const struct qs_backend_key *k)
{
    if (b->ndels == b->capdels) {
        size_t cap = b->capdels ? 2 * b->capdels : 64;
        struct oldkey *p = realloc(b->dels, cap * sizeof(*p));
        if (!p)
            return qs_err_set(QS_ENOMEM, "out of memory");
        b->dels = p;
        b->capdels = cap;
    }
    b->dels[b->ndels++] = (struct oldkey){bk, *k};
    return 0;
}

static void held_free(struct held *h, unsigned n)
{
    for (unsigned p = 0; p < n; p++) {
        free(h->shard[p]);
        h->shard[p] = NULL;
    }
    h->used = false;
}

/* ---- partial rebuild: the decoder's sink sees each chunk's shard states ---- */

static int rb_sink(void *ud, const struct qs_dec_chunk *c)
{
    struct rb *b = ud;
    struct held *h = &b->held[c->index % HELD];
    if (!h->used || h->chunk != c->index)
        return qs_err_set(QS_EINVAL, "rebuild: shards of chunk %llu not held",
                          (unsigned long long)c->index);
    const uint8_t *good[QS_CODEC_MAX_SHARDS];
    for (unsigned p = 0; p < b->n; p++)
        good[p] = c->state[p] == QS_SHARD_OK ? h->shard[p] : NULL;
    int rc = 0;
    for (unsigned p = 0; p < b->n && rc == 0; p++) {
        struct qs_backend_key keys[ZS_MAX_PARTS];
        unsigned nk = 0;
        uint32_t crc = 0;
        bool have_old = !(b->old->shard[p].flags & ZSTOR_META_SHARD_ABSENT);
        if (have_old &&
            (rc = zs_chunk_keys(b->old, p, c->index, keys, ZS_MAX_PARTS, &nk, &crc)) < 0)
            break;
        if (b->keep[p] && c->state[p] == QS_SHARD_OK) {
            rc = zs_send_keep(b->send, p, keys, nk, crc);
            continue;
        }
        /* a good shard that moves is copied; a bad or missing one is regenerated */
        const uint8_t *bytes = good[p];
        size_t len = h->len[p];
        if (!bytes) {
            rc = qs_chunk_rebuild(b->cc, c->index, good, h->len, p, b->out, &len);
            bytes = b->out;
        }
        struct qs_shard_info si;
        if (rc == 0)
            rc = qs_shard_parse(bytes, len, &si);
        if (rc == 0)
            rc = zs_send_put(b->send, p, bytes, len, si.crc);
        if (rc == 0)
            b->rewritten++;
        /* the old value on a backend that stays: garbage once the metadata is written */
        for (unsigned i = 0; rc == 0 && b->keep[p] && have_old && i < nk; i++)
            rc = add_del(b, b->src[p], &keys[i]);
    }
    held_free(h, b->n);
    return rc;
}

/* Progress of a rebuild: the bytes of the chunks read so far. */
static void rb_progress(const struct rb *b, uint64_t c)
{
    const struct zstor_ctx *z = b->z;
    if (!z->o.progress)
        return;
    uint64_t done = (c + 1) * b->old->desc.chunk_size;
    z->o.progress(z->o.progress_ud, b->old->path, done < b->old->size ? done : b->old->size,
                  b->old->size);
}

static int rb_feed(void *ud, uint64_t c, uint8_t **shard, const size_t *len)
{
    struct rb *b = ud;
    rb_progress(b, c);
    struct held *h = &b->held[c % HELD];
    if (h->used)
        return qs_err_set(QS_EINVAL, "rebuild: too many chunks in flight");
    h->used = true;
    h->chunk = c;
    for (unsigned p = 0; p < b->n; p++) {
        h->shard[p] = shard[p];
        h->len[p] = len[p];
        shard[p] = NULL; /* ours now, freed in the sink */
    }
    return qs_decoder_feed(b->dec, (const uint8_t *const *)h->shard, h->len);
}

/* ---- re-encode: the decoder's plaintext goes into a new stream ---- */

static int re_sink(void *ud, const struct qs_dec_chunk *c)
{
    struct rb *b = ud;
    return zs_upload_write(b->up, c->data, c->len);
}

static int re_feed(void *ud, uint64_t c, uint8_t **shard, const size_t *len)
{
    struct rb *b = ud;
    rb_progress(b, c);
    return qs_decoder_feed(b->dec, (const uint8_t *const *)shard, len);
}

/* The version being rebuilt must still be the stored one when its new record is written:
 * a store of the same name that happened meanwhile wins (its version is newer), and the
 * rebuild is undone instead of writing the old version back over it. */
static int still_current(struct zstor_ctx *z, const char *name, const struct zstor_meta_record *old,
                         struct zs_pieces *raw)
{
    struct zstor_meta_record cur;
    struct zs_pieces now = {0};
    int rc = zs_meta_load(z, name, &cur, NULL, &now);
    bool same = rc == 0 && memcmp(cur.desc.file_id, old->desc.file_id, QS_CODEC_ID_LEN) == 0;
    zstor_meta_record_free(&cur);
    if ((rc == 0 && !same) || rc == QS_ENOTFOUND) {
        zs_pieces_free(&now);
        return qs_err_set(QS_EBUSY,
                          "the file was %s while it was being rebuilt: this rebuild is "
                          "undone",
                          rc == 0 ? "stored again (the new version stays)" : "deleted");
    }
    if (rc == 0) { /* what a failed write rolls back to: what is there now */
        zs_pieces_free(raw);
        *raw = now;
    } else {
        zs_pieces_free(&now);
    }
    return 0;
}

/* ---- placement of the positions that move ---- */

static double bk_score(const struct zs_bk *k)
{
    uint64_t f = zs_bk_free(k);
    struct qs_place_candidate c = {.group = 0,
                                   .reachable = true,
                                   .free_bytes = f == QS_BACKEND_UNKNOWN ? QS_PLACE_UNLIMITED : f,
                                   .latency_us = k->h.latency_us,
                                   .error_rate = k->h.error_rate};
    return qs_place_score(&c);
}

static bool usable_bk(const struct zs_bk *k, uint64_t need)
{
    if (!k->probed || k->probe_rc != 0 || zs_bk_down(k))
        return false;
    uint64_t f = zs_bk_free(k);
    return f == QS_BACKEND_UNKNOWN || (f >= need && f > 0);
}

/* Keeps the positions marked keep where they are and chooses backends for the others,
 * one at a time, each time the best-scored backend whose group keeps a valid completion
 * (the same greedy as placement.h, with the kept shards as lower bounds). */
static int place_moved(struct rb *b, uint64_t need)
{
    struct zstor_ctx *z = b->z;
    const struct zstor_config *cfg = z->cfg;
    size_t ng = cfg->ngroups;
    unsigned *low = calloc(ng ? ng : 1, sizeof(*low));
    unsigned *cap = calloc(ng ? ng : 1, sizeof(*cap));
    bool *used = calloc(z->ncfg ? z->ncfg : 1, sizeof(*used));
    int rc = 0;
    if (!low || !cap || !used) {
        rc = qs_err_set(QS_ENOMEM, "out of memory");
        goto out;
    }
    for (unsigned p = 0; p < b->n; p++)
        if (b->keep[p]) {
            used[b->src[p]] = true;
            low[z->data[b->src[p]]->group]++;
        }
    for (size_t g = 0; g < ng; g++)
        cap[g] = low[g];
    for (size_t i = 0; i < z->ncfg; i++)
        if (!used[i] && usable_bk(z->data[i], need))
            cap[z->data[i]->group]++;
    struct qs_place_params pp = {cfg->minimal_shards, cfg->expected_shards, cfg->redundant_groups,
                                 cfg->redundant_nodes};
    long best = -1;
    if ((rc = qs_place_best(&pp, cap, low, ng, &best)) < 0)
        goto out;
    if (best < (long)cfg->minimal_shards) {
        rc = QS_ETOOFEW; /* the caller places everything again */
        goto out;
    }
    for (unsigned p = 0; p < b->n; p++) {
        if (b->keep[p])
            continue;
        int pick = -1;
        double pick_score = -1;
        for (size_t i = 0; i < z->ncfg; i++) {
            const struct zs_bk *k = z->data[i];
            if (used[i] || !usable_bk(k, need))
                continue;
            double s = bk_score(k);
            if (pick >= 0 && s <= pick_score)
                continue;
            low[k->group]++;
            long v = -1;
            rc = qs_place_best(&pp, cap, low, ng, &v);
            low[k->group]--;
            if (rc < 0)
                goto out;
            if (v >= (long)cfg->minimal_shards) {
                pick = (int)i;
                pick_score = s;
            }
        }
        if (pick < 0) {
            rc = QS_ETOOFEW;
            goto out;
        }
        used[pick] = true;
        low[z->data[pick]->group]++;
        b->target[p] = pick;
    }
out:
    free(low);
    free(cap);
    free(used);
    return rc;
}

/* Places the positions again from scratch (zs_place) and keeps a position where it is
 * when its backend is among the chosen ones. */
static int place_all(struct rb *b, uint64_t need)
{
    unsigned chosen[QS_CODEC_MAX_SHARDS];
    int rc = zs_place(b->z, need, chosen);
    if (rc < 0)
        return rc;
    bool taken[QS_CODEC_MAX_SHARDS] = {false};
    for (unsigned p = 0; p < b->n; p++) {
        bool in = false;
        for (unsigned i = 0; b->keep[p] && i < b->n; i++)
            if (!taken[i] && (int)chosen[i] == b->src[p]) {
                taken[i] = in = true;
                b->target[p] = b->src[p];
            }
        b->keep[p] = in;
    }
    for (unsigned p = 0; p < b->n; p++) {
        if (b->keep[p])
            continue;
        for (unsigned i = 0; i < b->n; i++)
            if (!taken[i]) {
                taken[i] = true;
                b->target[p] = (int)chosen[i];
                break;
            }
    }
    return 0;
}

/* ---- the operation ---- */

static int fail(int rc, const char *what)
{
    char msg[900];
    snprintf(msg, sizeof(msg), "%s", qs_err_msg());
    return qs_err_set(rc, "rebuild %s: %s", what, msg);
}

static void delete_old(struct rb *b, struct zstor_rebuild_result *res)
{
    struct zstor_ctx *z = b->z;
    uint64_t deleted = 0, left = 0;
    if (b->up) {
        zs_delete_shards(z, b->old, NULL, &deleted, &left);
    } else {
        uint8_t moved[QS_CODEC_MAX_SHARDS] = {0};
        for (unsigned p = 0; p < b->n; p++)
            moved[p] = !b->keep[p];
        zs_delete_shards(z, b->old, moved, &deleted, &left);
        for (size_t i = 0; i < b->ndels; i++) {
            struct zs_bk *k = z->data[b->dels[i].bk];
            int rc = zs_bk_down(k) ? QS_EIO : qs_backend_del(k->be, &b->dels[i].key);
            if (rc == 0 || rc == QS_ENOTFOUND)
                deleted++;
            else
                left++;
        }
    }
    res->deleted = deleted;
    if (left)
        qs_log(QS_LOG_WARN,
               "rebuild %s: %llu old shard values could not be deleted (backend "
               "unreachable); they stay there unreferenced",
               b->old->path, (unsigned long long)left);
}

static int copy_record(struct zstor_meta_record *dst, const struct zstor_meta_record *src)
{
    int rc = zstor_meta_record_init(dst, &src->desc, src->path, src->flags);
    if (rc < 0)
        return rc;
    dst->size = src->size;
    dst->mtime_sec = src->mtime_sec;
    dst->mtime_nsec = src->mtime_nsec;
    dst->mode = src->mode;
    dst->stored = src->stored;
    dst->nchunks = src->nchunks;
    memcpy(dst->checksum, src->checksum, sizeof(dst->checksum));
    dst->compress = src->compress;
    dst->level = src->level;
    return 0;
}

static int run_partial(struct rb *b)
{
    struct zstor_ctx *z = b->z;
    const struct zstor_config *cfg = z->cfg;
    int rc = copy_record(b->rec, b->old);
    for (unsigned p = 0; rc == 0 && p < b->n; p++) {
        const struct zs_bk *k = z->data[b->target[p]];
        rc = zstor_meta_shard_set(b->rec, p, k->address, k->ns, zs_bk_keykind(k));
    }
    if (rc == 0)
        rc = qs_codec_stream_init(&b->stream, &b->old->desc, cfg->key);
    if (rc < 0)
        return rc;
    b->have_stream = true;
    if ((rc = qs_chunk_ctx_new(&b->cc, &b->stream, 0, b->old->compress, b->old->level)) < 0)
        return rc;
    if (!(b->out = malloc(b->stream.stride)))
        return qs_err_set(QS_ENOMEM, "out of memory");
    if ((rc = zs_send_new(&b->send, z, b->rec, b->target, b->n)) < 0)
        return rc;
    struct qs_decoder_opts d;
    qs_decoder_opts_default(&d);
    d.pool = z->pool;
    d.verify_all = true;
    d.inflight = INFLIGHT;
    if ((rc = qs_decoder_new(&b->dec, &b->old->desc, cfg->key, &d, rb_sink, b)) < 0)
        return rc;
    struct zs_fetch_opts fo = {.all = true};
    rc = zs_fetch(z, b->old, b->src, &fo, rb_feed, b, NULL);
    struct qs_codec_summary sum;
    if (rc == 0)
        rc = qs_decoder_finish(b->dec, &sum);
    if (rc == 0 && (sum.size != b->old->size || memcmp(sum.digest, b->old->checksum, 16) != 0))
        rc = qs_err_set(QS_ECORRUPT, "the decoded data does not match the stored checksum");
    if (rc == 0) {
        rc = zs_send_finish(b->send);
    } else {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        if (zs_send_finish(b->send) < 0) /* the first error is the one to report */
            qs_err_set(rc, "%s", msg);
    }
    return rc;
}

static int run_reencode(struct rb *b)
{
    struct zstor_ctx *z = b->z;
    int rc = zs_upload_begin(&b->up, z, b->old->path, b->old->size);
    if (rc < 0)
        return rc;
    struct qs_decoder_opts d;
    qs_decoder_opts_default(&d);
    d.pool = z->pool;
    if ((rc = qs_decoder_new(&b->dec, &b->old->desc, z->cfg->key, &d, re_sink, b)) < 0)
        return rc;
    rc = zs_fetch(z, b->old, b->src, NULL, re_feed, b, NULL);
    struct qs_codec_summary sum;
    if (rc == 0)
        rc = qs_decoder_finish(b->dec, &sum);
    if (rc == 0 && (sum.size != b->old->size || memcmp(sum.digest, b->old->checksum, 16) != 0))
        rc = qs_err_set(QS_ECORRUPT, "the decoded data does not match the stored checksum");
    if (rc == 0)
        rc = zs_upload_finish(b->up);
    if (rc == 0) {
        struct zstor_meta_record *r = zs_upload_record(b->up);
        r->mtime_sec = b->old->mtime_sec;
        r->mtime_nsec = b->old->mtime_nsec;
        r->mode = b->old->mode;
        r->stored = b->old->stored;
        b->rewritten = r->nchunks * r->nshards;
    }
    return rc;
}

int zstor_rebuild(struct zstor_ctx *z, const char *path, const char *key,
                  struct zstor_rebuild_result *res)
{
    const struct zstor_config *cfg = z->cfg;
    struct zstor_rebuild_result local;
    if (!res)
        res = &local;
    memset(res, 0, sizeof(*res));
    const char *what = path ? path : key ? key : "?";
    char name[256];
    int rc;
    if (path) {
        rc = zstor_path_key(z, path, name, NULL);
    } else if (!key) {
        rc = qs_err_set(QS_EINVAL, "a path or a key is needed");
    } else {
        rc = zstor_meta_key_check(cfg->meta.prefix, key);
        snprintf(name, sizeof(name), "%s", key);
    }
    if (rc == 0)
        rc = zstor_config_check_redundancy(cfg);
    struct zs_bg bg;
    zs_bg_probe_start(&bg, z);
    if (rc == 0)
        rc = zs_meta_writable(z, "rebuild");
    zs_bg_probe_wait(&bg);
    if (rc < 0)
        return fail(rc, what);

    struct zstor_meta_record old, rec;
    struct zstor_meta_open_info info;
    struct zs_pieces raw = {0};
    memset(&rec, 0, sizeof(rec));
    struct rb *b = calloc(1, sizeof(*b));
    if (!b)
        return qs_err_set(QS_ENOMEM, "out of memory");
    rc = zs_meta_load(z, name, &old, &info, &raw);
    if (rc == QS_ENOTFOUND) {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        rc = qs_err_set(QS_ENOTFOUND, "not stored (%s)", msg);
    }
    if (rc == 0)
        rc = zstor_meta_record_check(&old);
    if (rc == 0)
        rc = zstor_meta_check_data_key(&old, cfg->key);
    if (rc < 0)
        goto out;
    b->z = z;
    b->old = &old;
    b->rec = &rec;
    b->n = old.nshards;

    /* where every shard is, and whether it can stay there */
    struct zs_bk *bks[QS_CODEC_MAX_SHARDS];
    size_t nb = 0;
    for (unsigned p = 0; p < b->n; p++) {
        b->src[p] = -1;
        if (old.shard[p].flags & ZSTOR_META_SHARD_ABSENT)
            continue;
        if ((b->src[p] = zs_data_lookup(z, old.shard[p].address, old.shard[p].ns)) < 0) {
            rc = QS_EINVAL;
            goto out;
        }
        bks[nb++] = z->data[b->src[p]];
    }
    zs_probe(bks, nb, false);
    zs_probe_data(z, false);
    unsigned moved = 0;
    for (unsigned p = 0; p < b->n; p++) {
        int s = b->src[p];
        bool dup = false;
        for (unsigned q = 0; q < p; q++)
            dup |= b->keep[q] && b->src[q] == s;
        b->keep[p] = s >= 0 && (size_t)s < z->ncfg && z->data[s]->probe_rc == 0 &&
                     !zs_bk_down(z->data[s]) && !dup;
        b->target[p] = b->keep[p] ? s : -1;
        if (s >= 0 && (z->data[s]->probe_rc != 0 || zs_bk_down(z->data[s])))
            b->src[p] = -1; /* do not wait for it */
        moved += !b->keep[p];
    }

    if (old.desc.k != cfg->minimal_shards || old.nshards != cfg->expected_shards) {
        qs_log(QS_LOG_INFO,
               "rebuild %s: %u+%u shards stored, the config asks %u+%u: "
               "re-encoding",
               what, old.desc.k, old.desc.m, cfg->minimal_shards,
               cfg->expected_shards - cfg->minimal_shards);
        res->reencoded = true;
        rc = run_reencode(b);
        if (rc == 0)
            rc = zs_interrupted(z);
        if (rc < 0 || (rc = still_current(z, name, &old, &raw)) < 0)
            goto undo;
        rc = zs_meta_save(z, name, zs_upload_record(b->up), &raw);
        if (rc < 0)
            goto undo;
        res->moved = b->n;
    } else {
        uint64_t need = zs_shard_bytes(old.size, old.desc.k, old.desc.chunk_size);
        if (moved) {
            rc = place_moved(b, need);
            if (rc == QS_ETOOFEW) /* the kept shards do not fit a valid placement any more */
                rc = place_all(b, need);
            if (rc < 0)
                goto out;
            moved = 0;
            for (unsigned p = 0; p < b->n; p++)
                moved += !b->keep[p];
        }
        rc = run_partial(b);
        if (rc == 0)
            rc = zs_interrupted(z);
        if (rc < 0)
            goto undo;
        res->moved = moved;
        if (moved == 0 && b->rewritten == 0) {
            if (info.ok == z->nmeta) {
                qs_log(QS_LOG_INFO, "rebuild %s: every shard and metadata piece is fine", what);
                goto out;
            }
            res->meta_fixed = true;
        }
        if ((rc = still_current(z, name, &old, &raw)) < 0)
            goto undo;
        rc = zs_meta_save(z, name, &rec, &raw);
        if (rc < 0)
            goto undo;
    }
    res->rewritten = b->rewritten;
    delete_old(b, res);
    qs_log(QS_LOG_INFO, "rebuilt %s: %u shard positions moved, %llu shard values written", what,
           res->moved, (unsigned long long)res->rewritten);
    goto out;
undo : {
    char msg[900];
    snprintf(msg, sizeof(msg), "%s", qs_err_msg());
    uint64_t left = b->up ? zs_upload_undo(b->up) : b->send ? zs_send_undo(b->send) : 0;
    if (left)
        qs_err_set(rc, "%s (and %llu new shard values could not be deleted)", msg,
                   (unsigned long long)left);
    else
        qs_err_set(rc, "%s", msg);
}
out:
    if (b->dec)
        qs_decoder_free(b->dec);
    for (unsigned i = 0; i < HELD; i++)
        held_free(&b->held[i], b->n);
    zs_send_free(b->send);
    zs_upload_free(b->up);
    qs_chunk_ctx_free(b->cc);
    if (b->have_stream)
        qs_codec_stream_free(&b->stream);
    free(b->out);
    free(b->dels);
    free(b);
    zstor_meta_record_free(&rec);
    zstor_meta_record_free(&old);
    zs_pieces_free(&raw);
    return rc < 0 ? fail(rc, what) : 0;
}
