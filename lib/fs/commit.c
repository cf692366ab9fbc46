/* Commits (the journal), mounting, recovery, sync and the background thread.
 *
 * A commit gathers every dirty inode, map page and directory bucket, the keys to delete
 * and the orphans, writes them as one record into the journal slot (the atomic step),
 * then applies the record: the values are written to their keys and the deletions done.
 * Mounting re-applies the slot's record (applying twice is harmless: keys are never
 * reused), frees the orphans it lists and the unused pre-allocated keys.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/private.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/sys.h"

#define INLINE_SLOT_MAX (4u * 1024 * 1024)
#define POOL_LOW        128u
#define POOL_FILL       512u

struct jbuild {
    struct qs_fs_jset *sets;
    uint8_t **bufs;
    size_t n, cap;
    struct inode **pinned;
    size_t npinned, pincap;
};

static void jb_free(struct jbuild *jb)
{
    for (size_t i = 0; i < jb->n; i++)
        free(jb->bufs[i]);
    free(jb->bufs);
    free(jb->sets);
    free(jb->pinned);
    memset(jb, 0, sizeof *jb);
}

/* Takes buf. */
static int jb_add(struct jbuild *jb, uint64_t key, uint8_t *buf, size_t len)
{
    if (jb->n == jb->cap) {
        size_t c = jb->cap ? jb->cap * 2 : 64;
        struct qs_fs_jset *s = realloc(jb->sets, c * sizeof *s);
        if (s)
            jb->sets = s;
        uint8_t **b = s ? realloc(jb->bufs, c * sizeof *b) : NULL;
        if (!b) {
            free(buf);
            return qs_err_set(QS_ENOMEM, "out of memory");
        }
        jb->bufs = b;
        jb->cap = c;
    }
    jb->sets[jb->n] = (struct qs_fs_jset){.key = key, .len = (uint32_t)len, .val = buf};
    jb->bufs[jb->n] = buf;
    jb->n++;
    return 0;
}

static int jb_pin(struct jbuild *jb, struct inode *in)
{
    if (jb->npinned == jb->pincap) {
        size_t c = jb->pincap ? jb->pincap * 2 : 64;
        struct inode **p = realloc(jb->pinned, c * sizeof *p);
        if (!p)
            return qs_err_set(QS_ENOMEM, "out of memory");
        jb->pinned = p;
        jb->pincap = c;
    }
    jb->pinned[jb->npinned++] = in;
    in->pins++;
    return 0;
}

static int free_meta_key(struct qs_fs *fs, uint64_t *k)
{
    int rc = 0;
    if (*k)
        rc = keyvec_push(&fs->free_meta, *k);
    *k = 0;
    return rc;
}

/* Map pages of a regular file (mu held: nothing else changes the map meanwhile). */
static int jb_pages(struct qs_fs *fs, struct jbuild *jb, struct inode *in, struct qs_fs_dinode *d)
{
    struct fmap *m = &in->m;
    uint64_t nk = m->nkeys;
    int rc = 0;
    if (nk <= QS_FS_INLINE_BLOCKS) {
        struct mpage *pg = NULL;
        if (nk && (rc = map_page(fs, in->ino, m, 0, &pg)) != 0)
            return rc;
        pthread_mutex_lock(&m->mu);
        for (uint32_t p = 0; p < m->cap && rc == 0; p++) {
            rc = free_meta_key(fs, &m->pkeys[p]);
            m->pdirty[p] = 0;
        }
        m->paged = false; /* page 0 now lives in the inode: never dropped */
        pthread_mutex_unlock(&m->mu);
        d->nblocks = nk;
        d->blocks = pg ? pg->key : NULL;
        d->lens = pg ? pg->len : NULL;
        d->npages = 0;
        return rc;
    }
    uint32_t np = (uint32_t)((nk + QS_FS_PAGE_KEYS - 1) / QS_FS_PAGE_KEYS);
    pthread_mutex_lock(&m->mu);
    m->committing++; /* until the commit ends (commit_end) */
    in->map_committing = true;
    for (uint32_t p = 0; p < np && p < m->cap && rc == 0; p++) {
        struct mpage *pg = m->pt[p];
        if (!m->paged && pg)
            m->pdirty[p] = 1; /* from inline to pages: every page is new */
        if (!m->pdirty[p] || !pg)
            continue; /* unchanged (a page that is not loaded is never dirty) */
        uint64_t first = (uint64_t)p * QS_FS_PAGE_KEYS;
        uint32_t cnt = (uint32_t)(nk - first < QS_FS_PAGE_KEYS ? nk - first : QS_FS_PAGE_KEYS);
        bool empty = true;
        for (uint32_t j = 0; j < cnt && empty; j++)
            empty = pg->key[j] == 0;
        if (empty) {
            rc = free_meta_key(fs, &m->pkeys[p]);
        } else {
            if (!m->pkeys[p] && (rc = alloc_meta_key(fs, &m->pkeys[p])) != 0)
                break;
            uint8_t *buf;
            size_t len;
            if ((rc = qs_fs_page_encode(pg->key, pg->len, cnt, &buf, &len)) == 0)
                rc = jb_add(jb, m->pkeys[p], buf, len);
        }
        m->pdirty[p] = 0;
    }
    for (uint32_t p = np; p < m->cap && rc == 0; p++)
        rc = free_meta_key(fs, &m->pkeys[p]);
    m->paged = true;
    d->nblocks = nk;
    d->npages = np;
    d->pages = m->pkeys;
    d->nalloc = m->nalloc;
    pthread_mutex_unlock(&m->mu);
    if (np > m->cap) /* pages past what was ever loaded are holes: no keys */
        return qs_err_set(QS_EINVAL, "block map of inode %llu shorter than its size",
                          (unsigned long long)in->ino);
    return rc;
}

/* Directory buckets. */
static int jb_buckets(struct qs_fs *fs, struct jbuild *jb, struct inode *in, struct qs_fs_dinode *d)
{
    struct dir *dir = in->dir;
    if (!dir) { /* never loaded: unchanged */
        d->nbuckets = in->a.nbuckets;
        d->buckets = in->a.buckets;
        d->next_cookie = in->a.next_cookie;
        return 0;
    }
    bool any = false;
    for (uint32_t b = 0; b < dir->nbuckets && !any; b++)
        any = dir->bdirty[b];
    int rc = 0;
    if (any) {
        /* group the live entries by bucket */
        uint32_t *cnt = calloc(dir->nbuckets + 1, sizeof *cnt);
        const struct qs_fs_dent **list = calloc(dir->count ? dir->count : 1, sizeof *list);
        uint32_t *at = calloc(dir->nbuckets + 1, sizeof *at);
        if (!cnt || !list || !at) {
            free(cnt);
            free(list);
            free(at);
            return qs_err_set(QS_ENOMEM, "out of memory");
        }
        struct dent **live = calloc(dir->count ? dir->count : 1, sizeof *live);
        uint32_t nl = 0;
        if (live) {
            for (uint32_t i = 0; i < dir->norder; i++) {
                struct dent *e = dir->order[i];
                if (dir_find(dir, e->d.name, e->d.namelen) == e && nl < dir->count) {
                    live[nl++] = e;
                    cnt[e->bucket + 1]++;
                }
            }
            for (uint32_t b = 0; b < dir->nbuckets; b++)
                cnt[b + 1] += cnt[b];
            memcpy(at, cnt, (dir->nbuckets + 1) * sizeof *at);
            for (uint32_t i = 0; i < nl; i++)
                list[at[live[i]->bucket]++] = &live[i]->d;
        } else {
            rc = qs_err_set(QS_ENOMEM, "out of memory");
        }
        for (uint32_t b = 0; b < dir->nbuckets && rc == 0; b++) {
            if (!dir->bdirty[b])
                continue;
            uint32_t n = cnt[b + 1] - cnt[b];
            if (n == 0) {
                rc = free_meta_key(fs, &dir->bkeys[b]);
            } else {
                if (!dir->bkeys[b] && (rc = alloc_meta_key(fs, &dir->bkeys[b])) != 0)
                    break;
                uint8_t *buf;
                size_t len;
                rc = qs_fs_bucket_encode(list + cnt[b], n, &buf, &len);
                if (rc == 0)
                    rc = jb_add(jb, dir->bkeys[b], buf, len);
            }
            dir->bdirty[b] = 0;
        }
        free(live);
        free(cnt);
        free(list);
        free(at);
    }
    d->nbuckets = dir->nbuckets;
    d->buckets = dir->bkeys;
    d->next_cookie = dir->next_cookie;
    return rc;
}

int jb_add_inode(struct qs_fs *fs, struct jbuild *jb, struct inode *in)
{
    struct qs_fs_dinode d = in->a; /* borrowed pointers: not freed here */
    d.blocks = d.pages = d.buckets = NULL;
    d.lens = NULL;
    d.nblocks = 0;
    d.npages = d.nbuckets = 0;
    int rc = 0;
    if (S_ISREG(in->a.mode))
        rc = jb_pages(fs, jb, in, &d);
    else if (S_ISDIR(in->a.mode))
        rc = jb_buckets(fs, jb, in, &d);
    if (rc)
        return rc;
    uint8_t *buf;
    size_t len;
    if ((rc = qs_fs_dinode_encode(&d, &buf, &len)) != 0)
        return rc;
    return jb_add(jb, in->ino, buf, len);
}

/* ---- writing a record ---- */

static int batch_keys(struct qs_fs *fs, enum qs_fs_ns ns, enum qs_zdb_opkind kind,
                      const uint64_t *k, size_t n, bool missing_ok)
{
    int rc = 0;
    for (size_t done = 0; done < n && rc == 0;) {
        size_t m = n - done < 1024 ? n - done : 1024;
        struct qs_zdb_op ops[1024];
        uint8_t keys[1024][8];
        for (size_t i = 0; i < m; i++) {
            qs_put64(keys[i], k[done + i]);
            ops[i] = (struct qs_zdb_op){.kind = kind, .key = keys[i], .key_len = 8};
        }
        rc = fs->kv->batch(fs->kv, ns, ops, m);
        if (rc == QS_ENOTFOUND && missing_ok) {
            rc = 0;
            for (size_t i = 0; i < m && rc == 0; i++)
                if (ops[i].result && ops[i].result != QS_ENOTFOUND)
                    rc = ops[i].result;
        }
        fs_op_free(ops, m);
        done += m;
    }
    return rc;
}

/* Writes every set of j (meta), then its deletions. */
static int apply(struct qs_fs *fs, const struct qs_fs_journal *j)
{
    int rc = 0;
    for (size_t done = 0; done < j->nsets && rc == 0;) {
        size_t m = 0, bytes = 0;
        struct qs_zdb_op ops[512];
        uint8_t keys[512][8];
        while (done + m < j->nsets && m < 512 && bytes < 8u * 1024 * 1024) {
            const struct qs_fs_jset *s = &j->sets[done + m];
            qs_put64(keys[m], s->key);
            ops[m] = (struct qs_zdb_op){
                .kind = QS_ZDB_SET, .key = keys[m], .key_len = 8, .val = s->val, .val_len = s->len};
            bytes += s->len;
            m++;
        }
        rc = fs->kv->batch(fs->kv, QS_FS_META, ops, m);
        fs_op_free(ops, m);
        done += m;
    }
    if (rc == 0)
        rc = batch_keys(fs, QS_FS_META, QS_ZDB_DEL, j->free_meta, j->nfree_meta, true);
    if (rc == 0)
        rc = batch_keys(fs, QS_FS_DATA, QS_ZDB_DEL, j->free_data, j->nfree_data, true);
    return rc;
}

/* Writes the record into the slot: inline, or as parts the slot lists. */
static int write_slot(struct qs_fs *fs, uint64_t txid, const uint8_t *body, size_t len,
                      struct qs_fs_slot *slot)
{
    memset(slot, 0, sizeof *slot);
    slot->txid = txid;
    slot->body_len = len;
    slot->body_crc = qs_fs_crc(body, len);
    int rc = 0;
    if (len > INLINE_SLOT_MAX) {
        size_t part = INLINE_SLOT_MAX;
        size_t np = (len + part - 1) / part;
        if (np > QS_FS_SLOT_MAX_PARTS)
            return qs_err_set(QS_ENOMEM, "a commit of %zu bytes is too large", len);
        for (size_t i = 0; i < np && rc == 0; i++) {
            size_t o = i * part, l = len - o < part ? len - o : part;
            rc = fs_append(fs, QS_FS_META, body + o, l, &slot->parts[i]);
            slot->nparts = (uint32_t)(i + 1);
        }
        if (rc)
            return rc;
    }
    uint8_t *v;
    size_t vl;
    if ((rc = qs_fs_slot_encode(slot, body, &v, &vl)) != 0)
        return rc;
    rc = fs_set(fs, QS_FS_META, fs->hdr.journal_key, v, vl);
    free(v);
    return rc;
}

/* Encodes j and commits it: slot, apply, and for a record in parts a small slot after. */
static int commit_record(struct qs_fs *fs, struct qs_fs_journal *j)
{
    uint8_t *body;
    size_t len;
    int rc = qs_fs_journal_encode(j, &body, &len);
    if (rc)
        return rc;
    struct qs_fs_slot slot;
    rc = write_slot(fs, j->txid, body, len, &slot);
    free(body);
    if (rc == 0 && fs->upgrade_hdr_len) {
        /* the upgrade's switch: from here a mount replays the slot as layout 2 */
        rc = fs_set(fs, QS_FS_META, 0, fs->upgrade_hdr, fs->upgrade_hdr_len);
        if (rc == 0)
            fs->upgrade_hdr_len = 0;
    }
    if (rc == 0)
        rc = apply(fs, j);
    if (rc == 0 && slot.nparts) {
        /* the record is applied: keep only what recovery still needs */
        struct qs_fs_journal small = *j;
        small.nsets = small.nfree_meta = small.nfree_data = 0;
        if ((rc = qs_fs_journal_encode(&small, &body, &len)) == 0) {
            struct qs_fs_slot s2;
            rc = write_slot(fs, j->txid, body, len, &s2);
            free(body);
        }
        if (rc == 0)
            rc = batch_keys(fs, QS_FS_META, QS_ZDB_DEL, slot.parts, slot.nparts, true);
    }
    return rc;
}

static int pool_refill(struct qs_fs *fs)
{
    if (fs->pool.n >= POOL_LOW || fs->closing)
        return 0;
    struct qs_zdb_op ops[POOL_FILL];
    static const char ph[] = "zdbfs:unused";
    for (unsigned i = 0; i < POOL_FILL; i++)
        ops[i] = (struct qs_zdb_op){.kind = QS_ZDB_SET, .val = ph, .val_len = sizeof ph - 1};
    int rc = fs->kv->batch(fs->kv, QS_FS_META, ops, POOL_FILL);
    /* lowest keys are handed out first: insert below what is there */
    struct keyvec nv = {0};
    for (unsigned i = POOL_FILL; i-- > 0;)
        if (ops[i].result == 0 && ops[i].reply_len == 8 && keyvec_push(&nv, qs_le64(ops[i].reply)))
            rc = QS_ENOMEM;
    for (size_t i = 0; i < fs->pool.n && rc == 0; i++)
        rc = keyvec_push(&nv, fs->pool.k[i]);
    fs_op_free(ops, POOL_FILL);
    if (rc == 0 || nv.n > fs->pool.n) {
        free(fs->pool.k);
        fs->pool = nv;
    } else {
        free(nv.k);
    }
    return rc;
}

int fs_commit(struct qs_fs *fs)
{
    pthread_mutex_lock(&fs->commit_mu);
    struct jbuild jb = {0};
    struct qs_fs_journal j = {0};
    struct keyvec fm = {0}, fd = {0}, orph = {0};
    int rc = 0;
    FS_LOCK(fs);
    if (fs->ndirty_meta == 0 && fs->free_meta.n == 0 && fs->free_data.n == 0) {
        FS_UNLOCK(fs);
        pthread_mutex_unlock(&fs->commit_mu);
        return 0;
    }
    if (pool_refill(fs))
        qs_log(QS_LOG_WARN, "pre-allocating inode keys: %s", qs_err_msg());
    for (size_t i = 0; i < fs->icap && rc == 0; i++)
        for (struct inode *in = fs->itab[i]; in && rc == 0; in = in->hnext) {
            if (in->orphan && in->a.nlink == 0)
                rc = keyvec_push(&orph, in->ino);
            if (!in->dirty || rc)
                continue;
            if ((rc = jb_pin(&jb, in)) != 0 || (rc = jb_add_inode(fs, &jb, in)) != 0)
                break;
            in->dirty = false;
            fs->ndirty_meta--;
        }
    fm = fs->free_meta;
    fd = fs->free_data;
    memset(&fs->free_meta, 0, sizeof fs->free_meta);
    memset(&fs->free_data, 0, sizeof fs->free_data);
    j.txid = ++fs->txid;
    j.pool = malloc((fs->pool.n ? fs->pool.n : 1) * 8);
    if (j.pool) {
        if (fs->pool.n)
            memcpy(j.pool, fs->pool.k, fs->pool.n * 8);
        j.npool = (uint32_t)fs->pool.n;
    } else if (rc == 0) {
        rc = qs_err_set(QS_ENOMEM, "out of memory");
    }
    FS_UNLOCK(fs);
    if (rc == 0) {
        j.sets = jb.sets;
        j.nsets = (uint32_t)jb.n;
        j.free_meta = fm.k;
        j.nfree_meta = (uint32_t)fm.n;
        j.free_data = fd.k;
        j.nfree_data = (uint32_t)fd.n;
        j.orphans = orph.k;
        j.norphans = (uint32_t)orph.n;
        rc = commit_record(fs, &j);
        j.sets = NULL;
        j.free_meta = j.free_data = j.orphans = NULL;
    }
    FS_LOCK(fs);
    if (rc) {
        /* nothing is lost: everything stays to be written by the next commit */
        for (size_t i = 0; i < jb.npinned; i++)
            inode_dirty(fs, jb.pinned[i]);
        for (size_t i = 0; i < fm.n; i++)
            (void)keyvec_push(&fs->free_meta, fm.k[i]);
        for (size_t i = 0; i < fd.n; i++)
            (void)keyvec_push(&fs->free_data, fd.k[i]);
        /* the pages and buckets of these inodes must be rewritten too */
        for (size_t i = 0; i < jb.npinned; i++) {
            struct inode *in = jb.pinned[i];
            if (S_ISREG(in->a.mode) && in->map_committing) {
                pthread_mutex_lock(&in->m.mu);
                for (uint32_t p = 0; p < in->m.cap; p++)
                    if (in->m.pt[p])
                        in->m.pdirty[p] = 1;
                pthread_mutex_unlock(&in->m.mu);
            }
            if (S_ISDIR(in->a.mode) && in->dir)
                memset(in->dir->bdirty, 1, in->dir->nbuckets);
        }
        rc = fs_errno(fs, rc, "committing", 0);
    } else {
        atomic_fetch_add(&fs->c.commits, 1);
    }
    for (size_t i = 0; i < jb.npinned; i++) {
        struct inode *in = jb.pinned[i];
        if (in->map_committing) {
            pthread_mutex_lock(&in->m.mu);
            in->m.committing--;
            pthread_mutex_unlock(&in->m.mu);
            in->map_committing = false;
        }
        inode_unpin(fs, in);
    }
    FS_UNLOCK(fs);
    free(fm.k);
    free(fd.k);
    free(orph.k);
    qs_fs_journal_free(&j);
    jb_free(&jb);
    pthread_mutex_unlock(&fs->commit_mu);
    return rc;
}

static int flush_data_except(struct qs_fs *fs, struct inode *skip)
{
    FS_LOCK(fs);
    size_t n = 0;
    for (struct inode *in = fs->dlist; in; in = in->dnext)
        n++;
    struct inode **list = calloc(n ? n : 1, sizeof *list);
    if (!list) {
        FS_UNLOCK(fs);
        return -ENOMEM;
    }
    n = 0;
    struct inode *keep = NULL;
    for (struct inode *in = fs->dlist, *nx; in; in = nx) {
        nx = in->dnext;
        if (in == skip) { /* its io is the caller's: it stays listed */
            keep = in;
            continue;
        }
        list[n++] = in;
        in->pins++;
        in->on_dlist = false;
    }
    fs->dlist = keep;
    if (keep)
        keep->dnext = NULL;
    FS_UNLOCK(fs);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int r = 0;
        /* a caller holding one file's io only tries the others: two such writers would
         * otherwise wait for each other */
        if (skip) {
            if (pthread_rwlock_trywrlock(&list[i]->io) == 0) {
                r = file_flush_locked(fs, list[i]);
                pthread_rwlock_unlock(&list[i]->io);
            }
        } else {
            pthread_rwlock_wrlock(&list[i]->io);
            r = file_flush_locked(fs, list[i]);
            pthread_rwlock_unlock(&list[i]->io);
        }
        if (r && !rc)
            rc = r;
        FS_LOCK(fs);
        if (list[i]->ndirty && !list[i]->on_dlist) { /* failed: try again later */
            list[i]->on_dlist = true;
            list[i]->dnext = fs->dlist;
            fs->dlist = list[i];
        }
        inode_unpin(fs, list[i]);
        FS_UNLOCK(fs);
    }
    free(list);
    return rc;
}

int fs_flush_all_data(struct qs_fs *fs)
{
    return flush_data_except(fs, NULL);
}

int fs_flush_others(struct qs_fs *fs, struct inode *in)
{
    return flush_data_except(fs, in);
}

int qs_fs_sync(struct qs_fs *fs)
{
    int rc = fs_flush_all_data(fs);
    int c = fs_commit(fs);
    return rc ? rc : c;
}

int qs_fs_fsync(struct qs_fs *fs, uint64_t ino, bool datasync)
{
    (void)datasync; /* the size and block map are metadata a later read needs: commit */
    int rc = qs_fs_flush(fs, ino);
    if (rc)
        return rc;
    return fs_commit(fs);
}

/* ---- background commits ---- */

static void *bg_main(void *arg)
{
    struct qs_fs *fs = arg;
    FS_LOCK(fs);
    while (!fs->bg_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)fs->commit_ms * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&fs->bg_cv, &fs->mu, &ts);
        if (fs->bg_stop)
            break;
        FS_UNLOCK(fs);
        if (qs_fs_sync(fs) != 0) /* logged where it failed; retried next time */
            qs_log(QS_LOG_DEBUG, "background commit failed; retrying");
        FS_LOCK(fs);
    }
    FS_UNLOCK(fs);
    return NULL;
}

/* ---- mounting ---- */

static int mkfs(struct qs_fs *fs, const struct qs_fs_opts *o)
{
    struct qs_fs_header h = {.ns = QS_FS_META,
                             .version = QS_FS_LAYOUT_V2,
                             .size = fs->hdr.size,
                             .block_size = fs->bs,
                             .journal_key = 2,
                             .created = (uint64_t)time(NULL)};
    int rc = qs_random_bytes(h.uuid, sizeof h.uuid);
    if (rc)
        return rc;
    uint8_t hb[QS_FS_HDR_V2_LEN];
    size_t hl = qs_fs_header_encode(&h, hb);
    /* key 0 header, key 1 root, key 2 slot: appended in order into an empty namespace */
    struct qs_fs_time now = fs_now();
    struct qs_fs_dinode root = {.mode = S_IFDIR | 0755,
                                .nlink = 2,
                                .parent = QS_FS_ROOT_INO,
                                .atime = now,
                                .mtime = now,
                                .ctime = now,
                                .btime = now,
                                .nbuckets = 1};
    uint64_t nob = 0;
    root.buckets = &nob;
    uint8_t *rb, *sb;
    size_t rl, sl;
    if ((rc = qs_fs_dinode_encode(&root, &rb, &rl)) != 0)
        return rc;
    struct qs_fs_journal j = {.txid = 0};
    uint8_t *body;
    size_t bl;
    if ((rc = qs_fs_journal_encode(&j, &body, &bl)) != 0) {
        free(rb);
        return rc;
    }
    struct qs_fs_slot slot = {.body_len = bl, .body_crc = qs_fs_crc(body, bl)};
    rc = qs_fs_slot_encode(&slot, body, &sb, &sl);
    free(body);
    if (rc) {
        free(rb);
        return rc;
    }
    uint64_t k[3] = {0};
    rc = fs_append(fs, QS_FS_META, hb, hl, &k[0]);
    if (rc == 0 && k[0] == 0)
        rc = fs_append(fs, QS_FS_META, rb, rl, &k[1]);
    if (rc == 0 && k[0] == 0 && k[1] == 1)
        rc = fs_append(fs, QS_FS_META, sb, sl, &k[2]);
    free(rb);
    free(sb);
    if (rc)
        return rc;
    if (k[0] != 0 || k[1] != 1 || k[2] != 2)
        return qs_err_set(QS_ECORRUPT,
                          "meta namespace: it had values before (keys start at %llu), cannot "
                          "create a filesystem in it",
                          (unsigned long long)k[0]);
    fs->hdr = h;
    qs_log(QS_LOG_INFO, "created a new filesystem (block size %u)", fs->bs);
    (void)o;
    return 0;
}

/* Key 0 of data/temp: checks or writes the header. */
static int check_side(struct qs_fs *fs, enum qs_fs_ns ns, bool fresh)
{
    static const char *const label[3] = {"meta", "data", "temp"};
    uint8_t *v = NULL;
    size_t n = 0;
    int rc = fs_get(fs, ns, 0, &v, &n);
    if (rc == QS_EINVAL && ns == QS_FS_TEMP)
        return 0; /* no temp namespace configured */
    if (rc == QS_ENOTFOUND) {
        struct qs_fs_nsusage u;
        if ((rc = fs->kv->usage(fs->kv, ns, &u)) != 0)
            return rc;
        if (u.entries != 0)
            return qs_err_set(QS_ECORRUPT,
                              "%s namespace: %llu values but no zdbfs header: not a "
                              "zdbfs namespace",
                              label[ns], (unsigned long long)u.entries);
        if (!fresh && ns == QS_FS_DATA)
            qs_log(QS_LOG_WARN, "data namespace is empty: writing its header");
        struct qs_fs_header h = {.ns = ns, .version = fs->hdr.version, .size = fs->hdr.size};
        uint8_t hb[QS_FS_HDR_V2_LEN];
        size_t hl = qs_fs_header_encode(&h, hb);
        uint64_t k;
        if ((rc = fs_append(fs, ns, hb, hl, &k)) != 0)
            return rc;
        if (k != 0)
            return qs_err_set(QS_ECORRUPT,
                              "%s namespace: had values before, header landed at key %llu",
                              label[ns], (unsigned long long)k);
        return 0;
    }
    if (rc)
        return rc;
    struct qs_fs_header h;
    rc = qs_fs_header_decode(v, n, &h);
    free(v);
    if (rc)
        return qs_err_set(rc, "%s namespace: %s", label[ns], qs_err_msg());
    if (h.ns != ns)
        return qs_err_set(QS_ECORRUPT, "%s namespace holds the header of a %s namespace", label[ns],
                          label[h.ns]);
    return 0;
}

/* Re-applies the slot's record, frees its orphans and unused keys. */
static int recover(struct qs_fs *fs)
{
    uint8_t *v = NULL, *body = NULL;
    size_t n = 0;
    int rc = fs_get(fs, QS_FS_META, fs->hdr.journal_key, &v, &n);
    if (rc)
        return qs_err_set(rc, "reading the journal slot: %s", qs_err_msg());
    struct qs_fs_slot slot;
    if ((rc = qs_fs_slot_decode(v, n, &slot)) != 0)
        goto out;
    fs->txid = slot.txid;
    const uint8_t *bp = slot.inline_body;
    if (slot.nparts) {
        if (slot.body_len > (uint64_t)QS_FS_SLOT_MAX_PARTS * INLINE_SLOT_MAX) {
            rc = qs_err_set(QS_ECORRUPT, "journal slot: a body of %llu bytes",
                            (unsigned long long)slot.body_len);
            goto out;
        }
        body = malloc(slot.body_len ? slot.body_len : 1);
        if (!body) {
            rc = qs_err_set(QS_ENOMEM, "out of memory");
            goto out;
        }
        size_t o = 0;
        for (uint32_t i = 0; i < slot.nparts && rc == 0; i++) {
            uint8_t *pv;
            size_t pl;
            if ((rc = fs_get(fs, QS_FS_META, slot.parts[i], &pv, &pl)) != 0)
                break;
            if (pl > slot.body_len - o)
                rc = qs_err_set(QS_ECORRUPT, "journal part %u is too long", i);
            else
                memcpy(body + o, pv, pl);
            o += pl;
            free(pv);
        }
        if (rc == 0 && (o != slot.body_len || qs_fs_crc(body, o) != slot.body_crc))
            rc = qs_err_set(QS_ECORRUPT, "journal parts do not match the slot");
        if (rc)
            goto out;
        bp = body;
    }
    struct qs_fs_journal j;
    if ((rc = qs_fs_journal_decode(bp, slot.body_len, &j)) != 0)
        goto out;
    if (j.nsets || j.nfree_meta || j.nfree_data)
        qs_log(QS_LOG_INFO, "journal: re-applying commit %llu (%u values, %u deletions)",
               (unsigned long long)j.txid, j.nsets, j.nfree_meta + j.nfree_data);
    rc = apply(fs, &j);
    if (rc == 0 && slot.nparts)
        rc = batch_keys(fs, QS_FS_META, QS_ZDB_DEL, slot.parts, slot.nparts, true);
    FS_LOCK(fs);
    /* the keys pre-allocated at that commit: given back (and forgotten, should this mount
     * have made them itself, as an upgrade does) */
    for (uint32_t i = 0; i < j.npool && rc == 0; i++)
        rc = keyvec_push(&fs->free_meta, j.pool[i]);
    fs->pool.n = 0;
    for (uint32_t i = 0; i < j.norphans && rc == 0; i++) {
        struct inode *in;
        int e = inode_get(fs, j.orphans[i], &in);
        if (e == -ESTALE)
            continue;
        if (e) {
            qs_log(QS_LOG_WARN, "orphan inode %llu cannot be freed: %s",
                   (unsigned long long)j.orphans[i], qs_err_msg());
            continue;
        }
        if (in->a.nlink == 0) {
            in->orphan = true;
            inode_maybe_free(fs, in);
        }
    }
    if (j.norphans)
        qs_log(QS_LOG_INFO, "freed %u orphan inode(s) left by the last run", j.norphans);
    FS_UNLOCK(fs);
    qs_fs_journal_free(&j);
    if (rc == 0)
        rc = fs_commit(fs);
out:
    free(v);
    free(body);
    if (rc)
        rc = qs_err_set(QS_EIO, "recovery: %s", qs_err_msg());
    return rc;
}

static void fs_free(struct qs_fs *fs)
{
    inode_table_free(fs);
    free(fs->free_meta.k);
    free(fs->free_data.k);
    free(fs->pool.k);
    pthread_mutex_destroy(&fs->mu);
    pthread_mutex_destroy(&fs->commit_mu);
    pthread_cond_destroy(&fs->bg_cv);
    pthread_cond_destroy(&fs->flush_cv);
    free(fs);
}

int qs_fs_open(struct qs_fs **out, const struct qs_fs_opts *o)
{
    *out = NULL;
    struct qs_fs *fs = calloc(1, sizeof *fs);
    if (!fs)
        return qs_err_set(QS_ENOMEM, "out of memory");
    fs->kv = o->kv;
    fs->bs = o->block_size ? o->block_size : QS_FS_DEFAULT_BLOCK;
    fs->cache_blocks = o->cache_blocks ? o->cache_blocks : 32;
    fs->dirty_max = o->dirty_max ? o->dirty_max : 64u * 1024 * 1024;
    fs->flush_at = o->flush_at ? o->flush_at : 4u * 1024 * 1024;
    fs->commit_ms = o->commit_ms;
    fs->hdr.size = o->size ? o->size : 10ull << 30;
    pthread_mutex_init(&fs->mu, NULL);
    pthread_mutex_init(&fs->commit_mu, NULL);
    pthread_cond_init(&fs->bg_cv, NULL);
    pthread_cond_init(&fs->flush_cv, NULL);
    int rc = 0;
    if (fs->bs < 4096 || fs->bs > 4u * 1024 * 1024 || (fs->bs & (fs->bs - 1))) {
        rc = qs_err_set(QS_EINVAL, "block size %u: a power of two in 4 KiB..4 MiB", fs->bs);
        goto fail;
    }
    uint8_t *v = NULL;
    size_t n = 0;
    bool fresh = false;
    rc = fs_get(fs, QS_FS_META, 0, &v, &n);
    if (rc == QS_ENOTFOUND) {
        struct qs_fs_nsusage u;
        if ((rc = fs->kv->usage(fs->kv, QS_FS_META, &u)) != 0)
            goto fail;
        if (u.entries != 0) {
            rc = qs_err_set(QS_ECORRUPT,
                            "meta namespace: %llu values but no zdbfs header at key 0: it holds "
                            "something that is not a filesystem",
                            (unsigned long long)u.entries);
            goto fail;
        }
        if (o->no_mkfs) {
            rc = qs_err_set(QS_ENOTFOUND, "meta namespace is empty (no filesystem)");
            goto fail;
        }
        if ((rc = mkfs(fs, o)) != 0)
            goto fail;
        fresh = true;
    } else if (rc) {
        goto fail;
    } else {
        rc = qs_fs_header_decode(v, n, &fs->hdr);
        free(v);
        if (rc) {
            rc = qs_err_set(rc, "meta namespace: %s", qs_err_msg());
            goto fail;
        }
        if (fs->hdr.ns != QS_FS_META) {
            rc = qs_err_set(QS_ECORRUPT, "meta namespace holds the header of another namespace");
            goto fail;
        }
        if (o->size)
            fs->hdr.size = o->size;
        fs->bs = fs->hdr.block_size;
    }
    fs->layout_found = fs->hdr.version;
    if ((rc = check_side(fs, QS_FS_DATA, fresh)) != 0 ||
        (rc = check_side(fs, QS_FS_TEMP, fresh)) != 0)
        goto fail;
    if (fs->hdr.version == QS_FS_LAYOUT_V1 && (rc = fs_upgrade_v1(fs)) != 0)
        goto fail;
    /* the last commit first: nothing may be loaded before it is re-applied */
    if ((rc = recover(fs)) != 0)
        goto fail;
    /* the root stays loaded for the whole mount */
    FS_LOCK(fs);
    struct inode *root;
    int e = inode_get(fs, QS_FS_ROOT_INO, &root);
    if (e == 0)
        root->pins++;
    FS_UNLOCK(fs);
    if (e) {
        rc = qs_err_set(QS_ECORRUPT, "root directory: %s", qs_err_msg());
        goto fail;
    }
    if (fs->commit_ms) {
        if (pthread_create(&fs->bg, NULL, bg_main, fs) != 0) {
            rc = qs_err_set(QS_ENOMEM, "cannot start the commit thread");
            goto fail;
        }
        fs->bg_running = true;
    }
    *out = fs;
    return 0;
fail:
    fs_free(fs);
    return rc;
}

int qs_fs_close(struct qs_fs *fs)
{
    if (!fs)
        return 0;
    if (fs->bg_running) {
        FS_LOCK(fs);
        fs->bg_stop = true;
        pthread_cond_signal(&fs->bg_cv);
        FS_UNLOCK(fs);
        pthread_join(fs->bg, NULL);
    }
    int rc = qs_fs_sync(fs);
    if (rc == 0) {
        /* give back the pre-allocated keys */
        FS_LOCK(fs);
        fs->closing = true;
        for (size_t i = 0; i < fs->pool.n; i++)
            (void)keyvec_push(&fs->free_meta, fs->pool.k[i]);
        fs->pool.n = 0;
        FS_UNLOCK(fs);
        rc = fs_commit(fs);
    }
    fs_free(fs);
    return rc;
}

int qs_fs_statfs(struct qs_fs *fs, struct statvfs *st)
{
    struct qs_fs_nsusage d, m;
    int rc = fs->kv->usage(fs->kv, QS_FS_DATA, &d);
    if (rc == 0)
        rc = fs->kv->usage(fs->kv, QS_FS_META, &m);
    if (rc)
        return fs_errno(fs, rc, "statfs", QS_FS_ROOT_INO);
    memset(st, 0, sizeof *st);
    st->f_bsize = fs->bs;
    st->f_frsize = 1024;
    uint64_t size = fs->hdr.size, used = d.used_bytes + m.used_bytes;
    uint64_t avail = size > used ? size - used : 0;
    if (d.free_bytes != QS_ZDB_UNKNOWN && d.free_bytes < avail)
        avail = d.free_bytes;
    st->f_blocks = size / 1024;
    st->f_bfree = st->f_bavail = avail / 1024;
    st->f_files = 1ull << 32;
    st->f_ffree = st->f_favail = st->f_files > m.entries ? st->f_files - m.entries : 0;
    st->f_namemax = QS_FS_NAME_MAX;
    return 0;
}

void qs_fs_counters(struct qs_fs *fs, struct qs_fs_counters *o)
{
    memset(o, 0, sizeof *o);
    o->cache_hit = atomic_load(&fs->c.hit);
    o->cache_miss = atomic_load(&fs->c.miss);
    o->cache_full = atomic_load(&fs->c.full);
    o->cache_linear_flush = atomic_load(&fs->c.lflush);
    o->cache_random_flush = atomic_load(&fs->c.rflush);
    o->read_bytes = atomic_load(&fs->c.rbytes);
    o->write_bytes = atomic_load(&fs->c.wbytes);
    o->errors = atomic_load(&fs->c.errors);
    o->commits = atomic_load(&fs->c.commits);
    o->dirty_bytes = atomic_load(&fs->dirty_bytes);
    o->cached_bytes = atomic_load(&fs->cached_bytes);
    o->cache_blocksize = fs->bs;
    o->cache_blocks = o->cached_bytes / fs->bs;
    FS_LOCK(fs);
    o->inodes = fs->icount;
    o->cache_entries = fs->icount;
    for (size_t i = 0; i < fs->icap; i++)
        for (struct inode *in = fs->itab[i]; in; in = in->hnext)
            if (S_ISREG(in->a.mode)) {
                pthread_mutex_lock(&in->m.mu);
                o->map_pages += in->m.loaded;
                pthread_mutex_unlock(&in->m.mu);
            }
    FS_UNLOCK(fs);
}

unsigned qs_fs_layout_found(const struct qs_fs *fs)
{
    return fs->layout_found;
}
