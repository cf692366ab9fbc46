/* File data: blocks of fs->bs bytes in the data namespace, a per-file cache of clean and
 * dirty blocks, write-back on flush, fsync, release, memory pressure and the timer.
 *
 * A block value holds the bytes that exist (a short last block is stored short); bytes
 * past it read as zeros. A block is rewritten in place (SET of its key) except after a
 * truncation cut it, which writes a new value and frees the old one at the commit, so a
 * crash before that commit still finds the old bytes.
 */
#include <errno.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>

#include "fs/private.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/sys.h"

#define MAX_FILE_SIZE (1ull << 44) /* 16 TiB */

static uint32_t bslot(const struct inode *in, uint64_t idx)
{
    return (uint32_t)((idx * 0x9E3779B97F4A7C15ull) >> 32) & (in->bcap - 1);
}

struct blk *file_cache_find(struct inode *in, uint64_t idx)
{
    if (!in->bcap)
        return NULL;
    for (struct blk *b = in->btab[bslot(in, idx)]; b; b = b->next)
        if (b->idx == idx)
            return b;
    return NULL;
}

int file_cache_insert(struct inode *in, struct blk *b)
{
    if (in->nblk + 1 > in->bcap) {
        uint32_t nc = in->bcap ? in->bcap * 2 : 16;
        struct blk **nt = calloc(nc, sizeof *nt);
        if (!nt)
            return -ENOMEM;
        struct blk **old = in->btab;
        uint32_t oc = in->bcap;
        in->btab = nt;
        in->bcap = nc;
        for (uint32_t i = 0; i < oc; i++)
            for (struct blk *p = old[i], *nx; p; p = nx) {
                nx = p->next;
                uint32_t s = bslot(in, p->idx);
                p->next = nt[s];
                nt[s] = p;
            }
        free(old);
    }
    uint32_t s = bslot(in, b->idx);
    b->next = in->btab[s];
    in->btab[s] = b;
    in->nblk++;
    return 0;
}

/* The block's key (0 = a hole) and how many bytes of the stored value count (bytes past
 * them were written after a commit that did not happen, or were cut: they read as
 * zeros). Loads the map page; -EIO when that fails. */
static int mget(struct qs_fs *fs, struct inode *in, uint64_t idx, uint64_t *key, uint32_t *len)
{
    return map_get(fs, in->ino, &in->m, idx, key, len);
}

uint64_t file_mkey(struct qs_fs *fs, struct inode *in, uint64_t idx, int *rc)
{
    uint64_t k;
    uint32_t l;
    int e = mget(fs, in, idx, &k, &l);
    if (e && !*rc)
        *rc = e;
    return e ? 0 : k;
}

/* Removes b from the cache and frees it (io held; mu held when b is dirty: counters). */
static void cache_drop(struct qs_fs *fs, struct inode *in, struct blk *b)
{
    struct blk **pp = &in->btab[bslot(in, b->idx)];
    while (*pp && *pp != b)
        pp = &(*pp)->next;
    if (*pp)
        *pp = b->next;
    in->nblk--;
    if (b->dirty) {
        in->ndirty--;
        atomic_fetch_sub(&fs->dirty_bytes, fs->bs);
        if (b->keyless && in->nnew)
            in->nnew--;
    }
    atomic_fetch_sub(&fs->cached_bytes, fs->bs);
    free(b->data);
    free(b);
}

void file_drop_cache(struct qs_fs *fs, struct inode *in)
{
    for (uint32_t i = 0; i < in->bcap; i++)
        while (in->btab[i])
            cache_drop(fs, in, in->btab[i]);
}

/* Drops clean blocks, least recently used first, until at most keep clean remain. */
void file_cache_trim(struct qs_fs *fs, struct inode *in, unsigned keep)
{
    while (in->nblk - in->ndirty > keep) {
        struct blk *old = NULL;
        for (uint32_t i = 0; i < in->bcap; i++)
            for (struct blk *b = in->btab[i]; b; b = b->next)
                if (!b->dirty && (!old || b->used < old->used))
                    old = b;
        if (!old)
            return;
        atomic_fetch_add(&fs->c.full, 1);
        cache_drop(fs, in, old);
    }
}

static struct blk *blk_new(struct qs_fs *fs, uint64_t idx)
{
    struct blk *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->data = calloc(1, fs->bs);
    if (!b->data) {
        free(b);
        return NULL;
    }
    b->idx = idx;
    atomic_fetch_add(&fs->cached_bytes, fs->bs);
    return b;
}

/* Copies a stored block value into b (checks its length). */
static int blk_fill(struct qs_fs *fs, struct inode *in, struct blk *b, const uint8_t *v, size_t n)
{
    if (n > fs->bs) {
        qs_err_set(QS_ECORRUPT, "block %llu has %zu bytes (block size %u)",
                   (unsigned long long)b->idx, n, fs->bs);
        return fs_errno(fs, QS_ECORRUPT, "reading a block", in->ino);
    }
    memcpy(b->data, v, n);
    b->len = (uint32_t)n;
    return 0;
}

/* Fetches the given blocks (keys non-zero) in one batch into new blocks out[i] that are
 * not in the cache yet. */
int file_fetch_into(struct qs_fs *fs, struct inode *in, const uint64_t *idx, size_t n,
                    struct blk **out)
{
    if (n == 0)
        return 0;
    struct qs_zdb_op *ops = calloc(n, sizeof *ops);
    uint8_t(*keys)[8] = calloc(n, 8);
    if (!ops || !keys) {
        free(ops);
        free(keys);
        return -ENOMEM;
    }
    uint32_t *lens = calloc(n, 4);
    int rc = lens ? 0 : -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint64_t k = 0;
        if (rc == 0)
            rc = mget(fs, in, idx[i], &k, &lens[i]);
        qs_put64(keys[i], k);
        ops[i] = (struct qs_zdb_op){.kind = QS_ZDB_GET, .key = keys[i], .key_len = 8};
        out[i] = NULL;
    }
    if (rc) {
        free(lens);
        free(ops);
        free(keys);
        return rc;
    }
    rc = fs->kv->batch(fs->kv, QS_FS_DATA, ops, n);
    if (rc) {
        if (rc == QS_ENOTFOUND)
            qs_err_set(QS_ECORRUPT, "a block of the file is missing from the data namespace");
        rc = fs_errno(fs, rc == QS_ENOTFOUND ? QS_ECORRUPT : rc, "reading blocks", in->ino);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct blk *b = blk_new(fs, idx[i]);
        if (!b) {
            rc = -ENOMEM;
            break;
        }
        size_t n_ok = ops[i].reply_len;
        if (n_ok > fs->bs) {
            rc = blk_fill(fs, in, b, ops[i].reply, n_ok); /* reports the corruption */
        } else {
            if (n_ok > lens[i])
                n_ok = lens[i];
            rc = blk_fill(fs, in, b, ops[i].reply, n_ok);
        }
        out[i] = b;
    }
    if (rc)
        for (size_t i = 0; i < n; i++)
            if (out[i]) {
                atomic_fetch_sub(&fs->cached_bytes, fs->bs);
                free(out[i]->data);
                free(out[i]);
                out[i] = NULL;
            }
    fs_op_free(ops, n);
    free(ops);
    free(keys);
    free(lens);
    return rc;
}

void file_blk_discard(struct qs_fs *fs, struct blk *b)
{
    atomic_fetch_sub(&fs->cached_bytes, fs->bs);
    free(b->data);
    free(b);
}

/* fetch_into, then into the cache (io held for writing). */
static int fetch_blocks(struct qs_fs *fs, struct inode *in, const uint64_t *idx, size_t n)
{
    struct blk *got[64];
    int rc = 0;
    for (size_t o = 0; o < n && rc == 0; o += 64) {
        size_t m = n - o < 64 ? n - o : 64;
        rc = file_fetch_into(fs, in, idx + o, m, got);
        for (size_t i = 0; i < m && rc == 0; i++)
            if (file_cache_insert(in, got[i]) != 0) {
                rc = -ENOMEM;
                for (size_t j = i; j < m; j++)
                    file_blk_discard(fs, got[j]);
            }
    }
    return rc;
}

/* Pins the regular file ino (mu taken and released). */
int file_pin(struct qs_fs *fs, uint64_t ino, struct inode **out)
{
    FS_LOCK(fs);
    int rc = inode_get(fs, ino, out);
    if (rc == 0 && S_ISDIR((*out)->a.mode))
        rc = -EISDIR;
    else if (rc == 0 && !S_ISREG((*out)->a.mode))
        rc = -EINVAL;
    if (rc == 0)
        (*out)->pins++;
    FS_UNLOCK(fs);
    return rc;
}

void file_unpin(struct qs_fs *fs, struct inode *in)
{
    FS_LOCK(fs);
    inode_unpin(fs, in);
    FS_UNLOCK(fs);
}

/* Marks b dirty (io and mu held). */
static void blk_dirty(struct qs_fs *fs, struct inode *in, struct blk *b)
{
    b->gen++;
    if (b->dirty)
        return;
    b->dirty = true;
    in->ndirty++;
    atomic_fetch_add(&fs->dirty_bytes, fs->bs);
    int ignored = 0; /* only st_blocks' count depends on it */
    b->keyless = file_mkey(fs, in, b->idx, &ignored) == 0 && ignored == 0;
    in->nnew += b->keyless;
    if (!in->on_dlist) {
        in->on_dlist = true;
        in->dnext = fs->dlist;
        fs->dlist = in;
    }
}

/* The cached block idx, read from the store first unless whole (io held). */
static int blk_get(struct qs_fs *fs, struct inode *in, uint64_t idx, bool whole, struct blk **out)
{
    struct blk *b = file_cache_find(in, idx);
    if (b) {
        *out = b;
        return 0;
    }
    int rc = 0;
    if (!whole && file_mkey(fs, in, idx, &rc)) {
        rc = fetch_blocks(fs, in, &idx, 1);
        if (rc)
            return rc;
        *out = file_cache_find(in, idx);
        return 0;
    }
    if (rc)
        return rc; /* the map page could not be read */
    b = blk_new(fs, idx);
    if (!b)
        return -ENOMEM;
    if (file_cache_insert(in, b)) {
        atomic_fetch_sub(&fs->cached_bytes, fs->bs);
        free(b->data);
        free(b);
        return -ENOMEM;
    }
    *out = b;
    return 0;
}

#define ASYNC_MAX_BLOCKS 256 /* blocks one write-back without io takes at most */
#define ASYNC_MAX        3   /* such write-backs under way at once, all files */

/* Writes dirty blocks of in back to the data namespace (io held for writing on entry and on
 * return). Synchronous: every dirty block, io held throughout. Asynchronous (a writer past
 * flush_at): the dirty blocks not already under way, copied, written with io released, so
 * that more writes to the file are taken meanwhile; a block changed while its copy was
 * being written stays dirty. The map is only changed once zdb acknowledged the value. */
static int flush_blocks(struct qs_fs *fs, struct inode *in, bool async)
{
    if (in->ndirty == 0)
        return 0;
    size_t n = in->ndirty, k = 0;
    if (async && n > ASYNC_MAX_BLOCKS)
        n = ASYNC_MAX_BLOCKS;
    struct blk **bl = calloc(n, sizeof *bl);
    struct qs_zdb_op *ops = calloc(n, sizeof *ops);
    uint8_t(*keys)[8] = calloc(n, 8);
    uint32_t *had = calloc(n, 4), *len = calloc(n, 4), *gen = calloc(n, 4);
    bool *cow = calloc(n, sizeof *cow);
    uint8_t *copy = NULL;
    int rc = 0;
    if (!bl || !ops || !keys || !had || !len || !gen || !cow) {
        rc = -ENOMEM;
        goto out;
    }
    bool linear = true;
    FS_LOCK(fs);
    for (uint32_t i = 0; i < in->bcap; i++)
        for (struct blk *b = in->btab[i]; b; b = b->next)
            if (b->dirty && !b->flushing && k < n)
                bl[k++] = b;
    FS_UNLOCK(fs);
    if (k == 0)
        goto out;
    if (async && !(copy = malloc((size_t)k * fs->bs))) {
        rc = -ENOMEM;
        goto out;
    }
    FS_LOCK(fs);
    for (size_t i = 0; i < k && rc == 0; i++) {
        struct blk *b = bl[i];
        uint64_t key = 0;
        rc = mget(fs, in, b->idx, &key, &had[i]);
        cow[i] = b->cow;
        if (b->cow)
            key = 0;
        len[i] = b->len;
        gen[i] = b->gen;
        const uint8_t *val = b->data;
        if (async) {
            memcpy(copy + i * fs->bs, b->data, b->len);
            val = copy + i * fs->bs;
        }
        ops[i] = (struct qs_zdb_op){.kind = QS_ZDB_SET, .val = val, .val_len = b->len};
        if (key) {
            qs_put64(keys[i], key);
            ops[i].key = keys[i];
            ops[i].key_len = 8;
            linear = false;
        }
    }
    if (rc == 0 && async) {
        for (size_t i = 0; i < k; i++)
            bl[i]->flushing = true;
        in->inflight++;
        fs->async_n++;
    }
    FS_UNLOCK(fs);
    if (rc)
        goto out;
    if (async)
        pthread_rwlock_unlock(&in->io);
    rc = fs->kv->batch(fs->kv, QS_FS_DATA, ops, k);
    if (async)
        pthread_rwlock_wrlock(&in->io);
    FS_LOCK(fs);
    for (size_t i = 0; i < k; i++) {
        struct blk *b = bl[i];
        b->flushing = false;
        if (ops[i].result != 0)
            continue;
        if (ops[i].key_len == 0) {
            if (ops[i].reply_len != 8) {
                if (!rc)
                    rc = qs_err_set(QS_EPROTO, "the data store returned no key for a block");
                continue;
            }
            uint64_t nk = qs_le64(ops[i].reply), old = 0;
            int e = map_set(fs, in->ino, &in->m, b->idx, nk, len[i], &old);
            if (e) {
                if (!rc)
                    rc = e == -ENOMEM ? QS_ENOMEM : QS_EIO;
                if (keyvec_push(&fs->free_data, nk))
                    qs_log(QS_LOG_WARN, "out of memory: block value %llu leaks",
                           (unsigned long long)nk);
                continue; /* stays dirty: written again later */
            }
            if (old && keyvec_push(&fs->free_data, old))
                qs_log(QS_LOG_WARN, "out of memory: block value %llu leaks",
                       (unsigned long long)old);
            if (b->keyless && in->nnew)
                in->nnew--;
            b->keyless = false;
            if (cow[i])
                b->cow = false; /* the new key is the one a cut asked for */
            inode_dirty(fs, in);
        } else if (had[i] != len[i]) {
            uint64_t same = qs_le64(ops[i].key);
            if (map_set(fs, in->ino, &in->m, b->idx, same, len[i], NULL) != 0) {
                if (!rc)
                    rc = QS_EIO;
                continue;
            }
            inode_dirty(fs, in);
        }
        if (b->gen != gen[i])
            continue; /* written again meanwhile: the next write-back takes the new bytes */
        b->dirty = false;
        b->cow = false;
        in->ndirty--;
        atomic_fetch_sub(&fs->dirty_bytes, fs->bs);
    }
    if (async) {
        in->inflight--;
        fs->async_n--;
        pthread_cond_broadcast(&fs->flush_cv);
    }
    FS_UNLOCK(fs);
    atomic_fetch_add(linear ? &fs->c.lflush : &fs->c.rflush, 1);
    if (rc)
        rc = fs_errno(fs, rc, "writing blocks", in->ino);
out:
    if (ops)
        fs_op_free(ops, k);
    free(copy);
    free(bl);
    free(ops);
    free(keys);
    free(had);
    free(len);
    free(gen);
    free(cow);
    return rc;
}

/* Waits until no write-back of in runs without io (io held for writing; released while
 * waiting, and no new such write-back starts meanwhile). */
static void wait_inflight(struct qs_fs *fs, struct inode *in)
{
    FS_LOCK(fs);
    while (in->inflight) {
        in->sync_wait++;
        FS_UNLOCK(fs);
        pthread_rwlock_unlock(&in->io);
        FS_LOCK(fs);
        while (in->inflight)
            pthread_cond_wait(&fs->flush_cv, &fs->mu);
        FS_UNLOCK(fs);
        pthread_rwlock_wrlock(&in->io);
        FS_LOCK(fs);
        in->sync_wait--;
    }
    FS_UNLOCK(fs);
}

int file_flush_locked(struct qs_fs *fs, struct inode *in)
{
    wait_inflight(fs, in);
    return flush_blocks(fs, in, false);
}

/* A writer's write-back past flush_at (io held for writing): without io when another may
 * start, else as before, with it. */
static int flush_async(struct qs_fs *fs, struct inode *in)
{
    FS_LOCK(fs);
    bool async = in->sync_wait == 0 && fs->async_n < ASYNC_MAX;
    FS_UNLOCK(fs);
    return async ? flush_blocks(fs, in, true) : file_flush_locked(fs, in);
}

int qs_fs_write(struct qs_fs *fs, uint64_t ino, uint64_t off, const uint8_t *buf, size_t n,
                bool append, uint64_t *written_at)
{
    struct inode *in;
    int rc = file_pin(fs, ino, &in);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&in->io);
    FS_LOCK(fs);
    if (append)
        off = in->a.size;
    FS_UNLOCK(fs);
    if (written_at)
        *written_at = off;
    if (off > MAX_FILE_SIZE || n > MAX_FILE_SIZE - off) {
        rc = -EFBIG;
        goto out;
    }
    /* memory stays bounded when zdb does not take writes: past twice the dirty limit a
     * write is refused unless this file's blocks can be written first */
    if (atomic_load(&fs->dirty_bytes) + n > 2 * fs->dirty_max) {
        rc = file_flush_locked(fs, in);
        if (rc == 0 && atomic_load(&fs->dirty_bytes) + n > 2 * fs->dirty_max)
            rc = fs_flush_others(fs, in);
        if (rc)
            goto out;
    }
    size_t done = 0;
    while (done < n && rc == 0) {
        uint64_t pos = off + done, idx = pos / fs->bs;
        uint32_t s = (uint32_t)(pos % fs->bs);
        uint32_t cnt = (uint32_t)(n - done < fs->bs - s ? n - done : fs->bs - s);
        struct blk *b;
        /* a block needs no read when the write covers all of it that exists */
        FS_LOCK(fs);
        uint64_t size = in->a.size;
        FS_UNLOCK(fs);
        bool whole = (s == 0 && cnt == fs->bs) || (s == 0 && idx * fs->bs + cnt >= size) ||
                     idx * fs->bs >= size; /* nothing is stored past the end */
        if ((rc = blk_get(fs, in, idx, whole, &b)) != 0)
            break;
        memcpy(b->data + s, buf + done, cnt);
        if (s + cnt > b->len)
            b->len = s + cnt;
        b->used = ++in->tick;
        FS_LOCK(fs);
        blk_dirty(fs, in, b);
        FS_UNLOCK(fs);
        done += cnt;
    }
    FS_LOCK(fs);
    if (done) {
        if (off + done > in->a.size)
            in->a.size = off + done;
        in->a.mtime = in->a.ctime = fs_now();
        inode_dirty(fs, in);
        atomic_fetch_add(&fs->c.wbytes, done);
    }
    FS_UNLOCK(fs);
    if (rc == 0 &&
        ((size_t)in->ndirty * fs->bs >= fs->flush_at ||
         atomic_load(&fs->dirty_bytes) > fs->dirty_max) &&
        qs_now_ms() >= atomic_load(&fs->flush_retry_ms)) {
        /* the bytes are taken (cached) either way; a failed write-back is retried by the
         * timer, not by every write (which would resend everything each time) */
        if (flush_async(fs, in) != 0)
            atomic_store(&fs->flush_retry_ms, qs_now_ms() + 1000);
    }
    file_cache_trim(fs, in, fs->cache_blocks);
out:
    map_trim(&in->m);
    pthread_rwlock_unlock(&in->io);
    file_unpin(fs, in);
    return rc;
}

/* Zeroes [s, e) of block idx, which exists (io held). */
static int zero_part(struct qs_fs *fs, struct inode *in, uint64_t idx, uint32_t s, uint32_t e,
                     bool cut)
{
    struct blk *b;
    int rc = blk_get(fs, in, idx, false, &b);
    if (rc)
        return rc;
    if (s < b->len)
        memset(b->data + s, 0, (e < b->len ? e : b->len) - s);
    FS_LOCK(fs);
    if (cut) {
        if (b->len > s)
            b->len = s;
        if (file_mkey(fs, in, idx, &rc))
            b->cow = true;
    }
    if (rc == 0)
        blk_dirty(fs, in, b);
    FS_UNLOCK(fs);
    return rc;
}

/* Drops the cached blocks in [from, to) (io held). */
static void drop_cached(struct qs_fs *fs, struct inode *in, uint64_t from, uint64_t to)
{
    FS_LOCK(fs);
    for (uint32_t i = 0; i < in->bcap; i++)
        for (struct blk *b = in->btab[i], *nx; b; b = nx) {
            nx = b->next;
            if (b->idx >= from && b->idx < to)
                cache_drop(fs, in, b);
        }
    FS_UNLOCK(fs);
}

/* Frees whole blocks [from, to) inside the file: holes from now on (io held). */
static int free_blocks(struct qs_fs *fs, struct inode *in, uint64_t from, uint64_t to)
{
    drop_cached(fs, in, from, to);
    int rc = 0;
    FS_LOCK(fs);
    for (uint64_t i = from; i < to && i < in->m.nkeys && rc == 0; i++) {
        uint64_t old = 0;
        if (!file_mkey(fs, in, i, &rc))
            continue;
        rc = map_set(fs, in->ino, &in->m, i, 0, 0, &old);
        if (rc == 0 && old && keyvec_push(&fs->free_data, old))
            qs_log(QS_LOG_WARN, "out of memory: block value leaks");
        inode_dirty(fs, in);
    }
    FS_UNLOCK(fs);
    return rc;
}

int file_truncate_locked(struct qs_fs *fs, struct inode *in, uint64_t size)
{
    if (size > MAX_FILE_SIZE)
        return -EFBIG;
    wait_inflight(fs, in); /* a cut must not race a write-back of the blocks it drops */
    FS_LOCK(fs);
    uint64_t old = in->a.size;
    FS_UNLOCK(fs);
    int rc = 0;
    if (size < old) {
        uint64_t keep = (size + fs->bs - 1) / fs->bs;
        drop_cached(fs, in, keep, UINT64_MAX);
        FS_LOCK(fs);
        rc = map_cut(fs, in->ino, &in->m, keep, &fs->free_data, &fs->free_meta);
        inode_dirty(fs, in);
        FS_UNLOCK(fs);
        if (rc)
            return rc;
        if (size % fs->bs) {
            uint64_t idx = size / fs->bs;
            struct blk *b = file_cache_find(in, idx);
            if (b || file_mkey(fs, in, idx, &rc))
                rc = zero_part(fs, in, idx, (uint32_t)(size % fs->bs), fs->bs, true);
            if (rc)
                return rc;
        }
    }
    FS_LOCK(fs);
    in->a.size = size;
    inode_dirty(fs, in);
    FS_UNLOCK(fs);
    return 0;
}

int qs_fs_fallocate(struct qs_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len)
{
    if (len == 0)
        return -EINVAL;
    if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
        return -EOPNOTSUPP;
    if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
        return -EOPNOTSUPP;
    if (off > MAX_FILE_SIZE || len > MAX_FILE_SIZE - off)
        return -EFBIG;
    struct inode *in;
    int rc = file_pin(fs, ino, &in);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&in->io);
    wait_inflight(fs, in);
    FS_LOCK(fs);
    uint64_t size = in->a.size;
    FS_UNLOCK(fs);
    uint64_t end = off + len;
    if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
        uint64_t zend = end < size ? end : size;
        uint64_t bs = fs->bs;
        for (uint64_t pos = off; pos < zend && rc == 0;) {
            uint64_t idx = pos / bs, bend = (idx + 1) * bs;
            uint64_t e = zend < bend ? zend : bend;
            if (pos % bs == 0 && (e == bend || e == size))
                rc = free_blocks(fs, in, idx, idx + 1);
            else if (file_cache_find(in, idx) || file_mkey(fs, in, idx, &rc))
                rc = zero_part(fs, in, idx, (uint32_t)(pos % bs), (uint32_t)(e - idx * bs), false);
            pos = e;
        }
    }
    FS_LOCK(fs);
    if (rc == 0 && !(mode & FALLOC_FL_KEEP_SIZE) && end > in->a.size)
        in->a.size = end;
    if (rc == 0 && (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) || end > size)) {
        in->a.mtime = in->a.ctime = fs_now();
        inode_dirty(fs, in);
    }
    FS_UNLOCK(fs);
    pthread_rwlock_unlock(&in->io);
    file_unpin(fs, in);
    return rc;
}

int qs_fs_flush(struct qs_fs *fs, uint64_t ino)
{
    struct inode *in;
    int rc = file_pin(fs, ino, &in);
    if (rc)
        return rc == -EISDIR || rc == -EINVAL ? 0 : rc;
    pthread_rwlock_wrlock(&in->io);
    rc = file_flush_locked(fs, in);
    pthread_rwlock_unlock(&in->io);
    file_unpin(fs, in);
    return rc;
}

int qs_fs_open_file(struct qs_fs *fs, uint64_t ino)
{
    FS_LOCK(fs);
    struct inode *in;
    int rc = inode_get(fs, ino, &in);
    if (rc == 0)
        in->opens++;
    FS_UNLOCK(fs);
    return rc;
}

int qs_fs_release(struct qs_fs *fs, uint64_t ino)
{
    FS_LOCK(fs);
    struct inode *in;
    int rc = inode_get(fs, ino, &in);
    if (rc == 0)
        in->pins++;
    FS_UNLOCK(fs);
    if (rc)
        return rc;
    int frc = 0;
    if (S_ISREG(in->a.mode)) {
        pthread_rwlock_wrlock(&in->io);
        bool last = in->opens <= 1;
        if (in->a.nlink > 0)
            frc = file_flush_locked(fs, in);
        if (last && frc == 0)
            file_cache_trim(fs, in, 0);
        pthread_rwlock_unlock(&in->io);
    }
    FS_LOCK(fs);
    if (in->opens)
        in->opens--;
    inode_unpin(fs, in);
    FS_UNLOCK(fs);
    return frc;
}
