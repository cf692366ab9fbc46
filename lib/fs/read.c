/* The read path of file data: one range, or several of one file with their missing blocks
 * fetched from zdb in one batch (the FUSE loop hands over the reads it took together). */
#include <errno.h>
#include <string.h>

#include "fs/private.h"

/* Copies the part of block i (NULL: a hole) that [off, end) covers into buf. */
static void copy_part(struct qs_fs *fs, const struct blk *b, uint64_t i, uint64_t off, uint64_t end,
                      uint8_t *buf)
{
    uint64_t bstart = i * fs->bs;
    uint64_t s = off > bstart ? off - bstart : 0;
    uint64_t e = end - bstart < fs->bs ? end - bstart : fs->bs;
    uint8_t *dst = buf + (bstart + s - off);
    if (b)
        memcpy(dst, b->data + s, e - s); /* bytes past b->len are zeros */
    else
        memset(dst, 0, e - s);
}

/* Puts fetched blocks into the cache as the most recently used (cmu held); a block another
 * reader cached first (or that finds no memory for the table) is freed. */
static void adopt(struct qs_fs *fs, struct inode *in, const uint64_t *want, struct blk **fetched,
                  size_t nw)
{
    for (size_t k = 0; k < nw; k++) {
        if (file_cache_find(in, want[k]) || file_cache_insert(in, fetched[k]) != 0)
            file_blk_discard(fs, fetched[k]);
        else
            fetched[k]->used = ++in->tick;
    }
}

/* Reads [off, off + n) of in (io held for reading; size is the file's size under it).
 * Cached blocks and holes are copied under the first hold of cmu; the missing ones are
 * fetched with cmu released and copied from this reader's own copies, because meanwhile
 * another reader may trim the cache (a block seen cached then may be gone after). */
static int read_range(struct qs_fs *fs, struct inode *in, uint64_t size, uint64_t off, size_t n,
                      uint8_t *buf, size_t *got)
{
    int rc = 0;
    *got = 0;
    if (off >= size || n == 0)
        return 0;
    uint64_t end = off + n < size ? off + n : size;
    uint64_t first = off / fs->bs, last = (end - 1) / fs->bs;
    for (uint64_t w = first; w <= last && rc == 0; w += 64) {
        uint64_t wend = last - w < 63 ? last : w + 63;
        uint64_t want[64];
        struct blk *fetched[64];
        size_t nw = 0;
        pthread_mutex_lock(&in->cmu);
        for (uint64_t i = w; i <= wend && rc == 0; i++) {
            struct blk *b = file_cache_find(in, i);
            if (b) {
                atomic_fetch_add(&fs->c.hit, 1);
                b->used = ++in->tick;
                copy_part(fs, b, i, off, end, buf);
            } else if (file_mkey(fs, in, i, &rc)) {
                atomic_fetch_add(&fs->c.miss, 1);
                want[nw++] = i;
            } else if (rc == 0) {
                copy_part(fs, NULL, i, off, end, buf);
            }
        }
        pthread_mutex_unlock(&in->cmu);
        if (rc == 0)
            rc = file_fetch_into(fs, in, want, nw, fetched);
        if (rc || nw == 0)
            continue;
        for (size_t k = 0; k < nw; k++)
            copy_part(fs, fetched[k], want[k], off, end, buf);
        pthread_mutex_lock(&in->cmu);
        adopt(fs, in, want, fetched, nw);
        file_cache_trim(fs, in, fs->cache_blocks);
        pthread_mutex_unlock(&in->cmu);
    }
    if (rc == 0) {
        *got = end - off;
        atomic_fetch_add(&fs->c.rbytes, *got);
    }
    return rc;
}

int qs_fs_read(struct qs_fs *fs, uint64_t ino, uint64_t off, size_t n, uint8_t *buf, size_t *got)
{
    struct qs_fs_rd r = {.off = off, .n = n, .buf = buf};
    int rc = qs_fs_read_many(fs, ino, &r, 1);
    *got = r.got;
    return rc ? rc : r.rc;
}

/* The blocks that the ranges need and the cache lacks, each once, in one batch into the
 * cache; false when they are more than one batch or than the cache keeps (each range then
 * fetches its own). On a fetch error every range gets it. */
static bool prefetch(struct qs_fs *fs, struct inode *in, uint64_t size, struct qs_fs_rd *r,
                     size_t n)
{
    uint64_t want[64];
    struct blk *fetched[64];
    size_t nw = 0, cap = fs->cache_blocks < 64 ? fs->cache_blocks : 64;
    int rc = 0;
    bool fit = true;
    pthread_mutex_lock(&in->cmu);
    for (size_t j = 0; j < n && fit && rc == 0; j++) {
        if (r[j].off >= size || r[j].n == 0)
            continue;
        uint64_t end = r[j].off + r[j].n < size ? r[j].off + r[j].n : size;
        for (uint64_t i = r[j].off / fs->bs; i <= (end - 1) / fs->bs && fit && rc == 0; i++) {
            size_t k = 0;
            while (k < nw && want[k] != i)
                k++;
            if (k < nw || file_cache_find(in, i) || !file_mkey(fs, in, i, &rc))
                continue;
            if (nw == cap) {
                fit = false;
            } else {
                atomic_fetch_add(&fs->c.miss, 1); /* its read then counts a hit */
                want[nw++] = i;
            }
        }
    }
    pthread_mutex_unlock(&in->cmu);
    if (rc == 0 && fit && nw > 1)
        rc = file_fetch_into(fs, in, want, nw, fetched);
    if (rc) {
        for (size_t j = 0; j < n; j++)
            r[j].rc = rc;
        return true;
    }
    if (!fit || nw <= 1)
        return false;
    pthread_mutex_lock(&in->cmu);
    adopt(fs, in, want, fetched, nw);
    pthread_mutex_unlock(&in->cmu);
    return false;
}

int qs_fs_read_many(struct qs_fs *fs, uint64_t ino, struct qs_fs_rd *r, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        r[j].got = 0;
        r[j].rc = 0;
    }
    struct inode *in;
    int rc = file_pin(fs, ino, &in);
    if (rc)
        return rc;
    /* readers share io (the map and sizes do not change under them); the cache itself is
     * guarded by cmu, released while blocks are fetched, so reads of one file overlap */
    pthread_rwlock_rdlock(&in->io);
    FS_LOCK(fs);
    uint64_t size = in->a.size;
    FS_UNLOCK(fs);
    bool failed = n > 1 && prefetch(fs, in, size, r, n);
    for (size_t j = 0; j < n && !failed; j++)
        r[j].rc = read_range(fs, in, size, r[j].off, r[j].n, r[j].buf, &r[j].got);
    map_trim(&in->m);
    pthread_rwlock_unlock(&in->io);
    file_unpin(fs, in);
    return 0;
}
