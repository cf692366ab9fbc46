/* Concurrent stores of one name (private.h, race.c section).
 *
 * There is no compare-and-swap on the meta backends, so two stores of one name (two
 * processes, two machines) may both write their metadata. Readers take the newest write
 * (by seal time) that decodes; every store follows one protocol so that this rule is
 * also the outcome, and the loser's shards go:
 * 1. write its pieces, read back: if a newer decodable write is there, it lost: it
 *    undoes its upload. If an older one decodes where its own does not (pieces that
 *    landed after its own), it writes its pieces again (a few times at most).
 * 2. it is the current version: it writes a done marker, /<prefix>/done/<file id>, and
 *    reads back once more: if a newer version arrived meanwhile, it lost after all
 *    (upload undone, marker removed).
 * 3. it won. Every other version it can see (read just before its write, older writes
 *    whose pieces are still there, what its write replaced on each zdb meta backend as
 *    zdb's history tells) that has a done marker finished its own protocol as a winner
 *    and will never write again: its shards and marker are deleted. One without a marker
 *    has not reached step 2 and will lose by itself at its next read back.
 * Pieces of other writes beside its own are then rewritten so that all agree. What no one
 * can see (a store killed between its write and its read back; dir:// meta backends keep
 * no history) is left to `zstor gc`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

#include "util/log.h"
#include "zstor/private.h"

#define HISTORY_MAX  8  /* versions walked back per meta backend */
#define VERSIONS_MAX 16 /* distinct versions handled per store */

struct hist_job {
    struct zstor_ctx *z;
    const char *name;
    const struct zs_pieces *mine;
    struct zs_pieces *out;
};

struct hist_walk {
    const uint8_t *mine;
    size_t mine_len;
    bool found;
    uint8_t **out;
    size_t *out_len;
};

static int hist_one(void *ud, const uint8_t *val, size_t len)
{
    struct hist_walk *w = ud;
    if (w->found) { /* the version just before ours: what our write replaced */
        if ((*w->out = malloc(len ? len : 1)) == NULL)
            return qs_err_set(QS_ENOMEM, "out of memory");
        memcpy(*w->out, val, len);
        *w->out_len = len;
        return QS_EAGAIN; /* stop */
    }
    w->found = len == w->mine_len && memcmp(val, w->mine, len) == 0;
    return 0;
}

static void hist_backend(void *ud, size_t i)
{
    struct hist_job *j = ud;
    struct zs_bk *k = &j->z->meta[i];
    if (i >= j->mine->n || !j->mine->p[i] || qs_backend_kind(k->be) != QS_BACKEND_ZDB)
        return;
    struct hist_walk w = {j->mine->p[i], j->mine->len[i], false, &j->out->p[i], &j->out->len[i]};
    int rc = qs_backend_history_named(k->be, j->name, HISTORY_MAX, hist_one, &w);
    if (rc < 0 && rc != QS_EAGAIN && rc != QS_ENOTFOUND)
        qs_log(QS_LOG_DEBUG, "metadata %s: history on %s: %s", j->name, zs_bk_name(k),
               qs_err_msg());
}

/* What each zdb meta backend held for name right before the pieces in mine. */
static void replaced_pieces(struct zstor_ctx *z, const char *name, const struct zs_pieces *mine,
                            struct zs_pieces *out)
{
    memset(out, 0, sizeof(*out));
    out->n = (unsigned)z->nmeta;
    struct hist_job j = {z, name, mine, out};
    zs_par(z->nmeta, hist_backend, &j);
}

struct versions {
    struct zstor_meta_record r[VERSIONS_MAX];
    size_t n;
};

static bool have_version(const struct versions *v, const uint8_t *file_id)
{
    for (size_t i = 0; i < v->n; i++)
        if (memcmp(v->r[i].desc.file_id, file_id, QS_CODEC_ID_LEN) == 0)
            return true;
    return false;
}

/* Adds every write decodable from raw and sealed before `before` to v (newest first). */
static void add_versions(struct zstor_ctx *z, const char *name, const struct zs_pieces *raw,
                         uint64_t before, struct versions *v)
{
    for (unsigned guard = 0; guard < VERSIONS_MAX && v->n < VERSIONS_MAX; guard++) {
        struct zstor_meta_open_info info;
        struct zstor_meta_record r;
        int rc = zstor_meta_open_before((const uint8_t *const *)raw->p, raw->len, raw->n, name,
                                        z->cfg->meta.key, before, &r, &info);
        if (rc < 0) {
            zstor_meta_record_free(&r);
            return;
        }
        before = info.sealed_at;
        if (have_version(v, r.desc.file_id))
            zstor_meta_record_free(&r);
        else
            v->r[v->n++] = r;
    }
}

static bool same_version(const struct zstor_meta_record *a, const struct zstor_meta_record *b)
{
    return memcmp(a->desc.file_id, b->desc.file_id, QS_CODEC_ID_LEN) == 0;
}

/* ---- done markers ---- */

static void done_name(const struct zstor_ctx *z, const uint8_t *file_id, char *out, size_t cap)
{
    char hex[2 * QS_CODEC_ID_LEN + 1];
    zs_hex(file_id, QS_CODEC_ID_LEN, hex);
    snprintf(out, cap, "/%s/done/%s", z->cfg->meta.prefix, hex);
}

struct done_job {
    struct zstor_ctx *z;
    char name[300];
    int op; /* 0 set, 1 get, 2 del */
    int rc[ZSTOR_META_PIECES_MAX];
};

static void done_one(void *ud, size_t i)
{
    struct done_job *j = ud;
    struct qs_backend *be = j->z->meta[i].be;
    if (j->op == 0) {
        j->rc[i] = qs_backend_set_named(be, j->name, "1", 1);
    } else if (j->op == 1) {
        uint8_t *v = NULL;
        size_t n = 0;
        j->rc[i] = qs_backend_get_named(be, j->name, &v, &n);
        free(v);
    } else {
        j->rc[i] = qs_backend_del_named(be, j->name);
    }
}

/* op on the done marker of file_id on every meta backend: for get, 1 when any has it. */
static int done_op(struct zstor_ctx *z, const uint8_t *file_id, int op)
{
    struct done_job *j = calloc(1, sizeof(*j));
    if (!j)
        return qs_err_set(QS_ENOMEM, "out of memory");
    j->z = z;
    j->op = op;
    done_name(z, file_id, j->name, sizeof(j->name));
    zs_par(z->nmeta, done_one, j);
    int rc = 0, have = 0, ok = 0;
    for (size_t i = 0; i < z->nmeta; i++) {
        have |= j->rc[i] == 0;
        ok += j->rc[i] == 0 || j->rc[i] == QS_ENOTFOUND;
    }
    if (op == 1)
        rc = have;
    else if (op == 0 && !have)
        rc = qs_err_set(QS_EIO, "no meta backend took the done marker");
    (void)ok;
    free(j);
    return rc;
}

void zs_done_remove(struct zstor_ctx *z, const uint8_t *file_id)
{
    (void)done_op(z, file_id, 2);
}

/* ---- the protocol ---- */

/* Reads the current version: 1 ours, 0 another one is newer (or ours does not decode and
 * it is not older), 2 an older one decodes where ours does not, -1 unreadable. */
static int current(struct zstor_ctx *z, const char *name, const struct zstor_meta_record *rec,
                   uint64_t my_at, struct zstor_meta_record *cur, struct zstor_meta_open_info *info,
                   struct zs_pieces *raw)
{
    zs_pieces_free(raw);
    zstor_meta_record_free(cur);
    if (zs_meta_load(z, name, cur, info, raw) < 0)
        return -1;
    if (same_version(cur, rec))
        return 1;
    return info->sealed_at < my_at ? 2 : 0;
}

/* The seal time of the pieces we wrote (every piece carries it). */
static uint64_t sealed_at(const struct zs_pieces *mine)
{
    for (unsigned i = 0; i < mine->n; i++)
        if (mine->p[i] && mine->len[i] >= ZSTOR_META_PIECE_HDR)
            return qs_le64(mine->p[i] + 24);
    return 0;
}

int zs_store_settle(struct zstor_ctx *z, const char *name, const char *file,
                    const struct zstor_meta_record *rec, struct zs_pieces *mine,
                    const struct zstor_meta_record *seen, const struct zstor_meta_record *replaced)
{
    struct zstor_meta_record cur;
    struct zstor_meta_open_info info;
    struct zs_pieces raw = {0};
    memset(&cur, 0, sizeof(cur));
    uint64_t my_at = sealed_at(mine);
    int st = current(z, name, rec, my_at, &cur, &info, &raw);
    for (int tries = 0; st == 2 && tries < 3; tries++) {
        /* an older write's pieces landed after ours: ours is newer, so write it again */
        zs_pieces_free(mine);
        if (zs_meta_save_ex(z, name, rec, NULL, mine) < 0)
            break;
        my_at = sealed_at(mine);
        st = current(z, name, rec, my_at, &cur, &info, &raw);
    }
    int rc = 0;
    if (st == 1 && done_op(z, rec->desc.file_id, 0) < 0)
        st = -1; /* without a marker no later winner could clean us up: read it back */
    if (st == 1)
        st = current(z, name, rec, my_at, &cur, &info, &raw);
    if (st == -1) {
        /* our write went through; nothing tells us about others now */
        qs_log(QS_LOG_WARN, "store %s: the metadata could not be read back (%s)", file,
               qs_err_msg());
        goto out;
    }
    if (st != 1) {
        zs_done_remove(z, rec->desc.file_id);
        rc = qs_err_set(QS_EBUSY,
                        "a concurrent store of the same name wrote its metadata after this "
                        "one: that version is the stored one, this store is undone");
        goto out;
    }
    /* We are the stored version. The others that finished as winners are garbage. */
    struct versions *v = calloc(1, sizeof(*v));
    if (!v)
        goto out;       /* stored; what could not be looked at is left to gc */
    v->r[v->n++] = cur; /* ours, first: never deleted */
    memset(&cur, 0, sizeof(cur));
    add_versions(z, name, &raw, info.sealed_at, v);
    struct zs_pieces before = {0};
    replaced_pieces(z, name, mine, &before);
    add_versions(z, name, &before, UINT64_MAX, v);
    zs_pieces_free(&before);
    uint64_t deleted = 0, failed = 0, others = 0;
    for (size_t i = 1; i <= v->n; i++) {
        const struct zstor_meta_record *o = i < v->n ? &v->r[i] : seen;
        if (!o || (i == v->n && have_version(v, o->desc.file_id)))
            continue;
        if (replaced && same_version(o, replaced))
            continue; /* the caller deletes the version it replaced */
        if (done_op(z, o->desc.file_id, 1) != 1)
            continue; /* not finished: it will see us and undo itself */
        uint64_t d = 0, f = 0;
        zs_delete_shards(z, o, NULL, &d, &f);
        if (!f)
            zs_done_remove(z, o->desc.file_id);
        deleted += d;
        failed += f;
        others++;
    }
    if (others)
        qs_log(QS_LOG_WARN,
               "store %s: %llu concurrent store(s) of the same name were replaced by this one; "
               "%llu of their shard values deleted%s",
               file, (unsigned long long)others, (unsigned long long)deleted,
               failed ? " (some could not be: zstor gc finds them)" : "");
    if (info.ok < z->nmeta) {
        /* pieces of other writes (or missing ones) sit beside ours: make them agree */
        if (zs_meta_save(z, name, rec, NULL) < 0)
            qs_log(QS_LOG_WARN, "store %s: rewriting the metadata pieces: %s", file, qs_err_msg());
    }
    for (size_t i = 0; i < v->n; i++)
        zstor_meta_record_free(&v->r[i]);
    free(v);
out:
    zstor_meta_record_free(&cur);
    zs_pieces_free(&raw);
    return rc;
}
