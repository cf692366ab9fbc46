/* A regular file's block map, in pages of QS_FS_PAGE_KEYS (key, length) entries that are
 * loaded from the meta namespace when first needed and dropped again when clean, so that
 * the memory a file's map takes is bounded however large the file (MAP_PAGES_KEPT pages
 * per file, plus 17 bytes per page of file for the page table). Part of lib/fs; not a
 * public header.
 *
 * Locking: the map has its own mutex, a leaf lock (page loads do store I/O under it, and
 * take no other lock); callers hold the file's io lock (shared for reads), and mu where
 * the commit reads pages. Values are copied out under the mutex, never pointers.
 */
#ifndef QSFS_FS_MAP_H
#define QSFS_FS_MAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs/format.h"

#define MAP_PAGES_KEPT 64u /* clean pages a file keeps loaded (64 x 512 blocks) */

struct mpage {
    uint64_t key[QS_FS_PAGE_KEYS];
    uint32_t len[QS_FS_PAGE_KEYS];
    uint64_t used;
};

struct fmap {
    pthread_mutex_t mu;
    struct mpage **pt; /* per page: NULL = not loaded (or a page of holes: pkeys 0) */
    uint64_t *pkeys;   /* the stored page's meta key, 0 = none */
    uint8_t *pdirty;
    uint32_t cap; /* entries of the three arrays */
    uint32_t loaded;
    uint64_t tick;
    uint64_t nkeys;  /* entries that can be non-zero (the inode's nblocks) */
    uint64_t nalloc; /* non-zero keys */
    bool paged;      /* stored in pages (else in the inode) */
    int committing;  /* a commit carries pages whose dirty mark it cleared: keep them all */
};

struct qs_fs;

void map_init(struct fmap *m);
void map_destroy(struct fmap *m);
/* From a decoded inode: inline entries (taken over) or page keys (not loaded yet). */
int map_from_inline(struct fmap *m, uint64_t nkeys, const uint64_t *keys, const uint32_t *lens);
int map_from_pages(struct fmap *m, uint64_t nkeys, const uint64_t *pages, uint32_t npages,
                   uint64_t nalloc);
/* Entry idx (0, 0 past nkeys). -EIO when its page cannot be loaded. */
int map_get(struct qs_fs *fs, uint64_t ino, struct fmap *m, uint64_t idx, uint64_t *key,
            uint32_t *len);
/* Sets entry idx (growing nkeys when idx is past it); returns the previous key in *old. */
int map_set(struct qs_fs *fs, uint64_t ino, struct fmap *m, uint64_t idx, uint64_t key,
            uint32_t len, uint64_t *old);
/* Cuts the map to nkeys entries, pushing the keys it drops to *freed (data keys) and the
 * page values no longer needed to *freed_meta. */
struct keyvec;
int map_cut(struct qs_fs *fs, uint64_t ino, struct fmap *m, uint64_t nkeys, struct keyvec *freed,
            struct keyvec *freed_meta);
/* Drops clean pages beyond MAP_PAGES_KEPT, least recently used first. */
void map_trim(struct fmap *m);
/* Loaded page p for the commit (loads it). */
int map_page(struct qs_fs *fs, uint64_t ino, struct fmap *m, uint32_t p, struct mpage **out);

#endif
