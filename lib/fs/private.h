/* lib/fs internals shared by its files. Not a public header.
 *
 * Locks: fs->mu guards the inode table and all metadata (attributes, directories, block
 * maps, dirty and free lists). Each inode's io rwlock orders its data operations (reads
 * share it) and its cmu mutex guards the block cache among readers. Order: commit_mu -> io -> mu.
 * Network I/O for data happens under io only; metadata misses load under mu (bounded by the store's
 * timeout).
 */
#ifndef QSFS_FS_PRIVATE_H
#define QSFS_FS_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>

#include "fs/format.h"
#include "fs/fs.h"
#include "fs/kv.h"
#include "fs/map.h"

/* A cached file block. */
struct blk {
    uint64_t idx;
    uint8_t *data; /* block_size bytes; bytes past len are zero */
    uint32_t len;  /* bytes that exist (the stored value's length) */
    bool dirty;
    bool flushing; /* in a write-back under way without io (file.c flush_async) */
    bool cow;      /* write under a new key (the old one is freed at commit): truncation */
    bool keyless;  /* dirty and counted in nnew: no key in the map yet */
    uint64_t used; /* LRU stamp */
    uint32_t gen;  /* bumped by every change (mu): a write-back compares it */
    struct blk *next;
};

/* A directory entry in memory. */
struct dent {
    struct qs_fs_dent d;
    uint32_t bucket;
    struct dent *hnext;
};

struct dir {
    uint32_t nbuckets; /* power of two */
    uint64_t *bkeys;   /* meta key of each bucket value, 0 = none yet */
    uint8_t *bdirty;
    uint64_t next_cookie;
    uint32_t count;
    struct dent **htab; /* by name */
    uint32_t hcap;
    struct dent **order; /* by cookie; NULL = removed */
    uint32_t norder, ocap, ntomb;
};

struct inode {
    uint64_t ino;
    uint64_t nlookup;
    unsigned opens, pins;
    bool dirty;            /* the inode value (and pages/buckets marked) must be written */
    bool orphan;           /* nlink 0 but still referenced */
    bool bad;              /* failed to load or decode: every operation is -EIO */
    struct qs_fs_dinode a; /* attributes, xattrs, symlink target; arrays below instead */
    /* regular file: the block map (map.h); a.nblocks is unused (the map's nkeys counts) */
    struct fmap m;
    bool map_committing; /* m.committing was raised by the commit under way (mu) */
    uint64_t nnew;       /* dirty cached blocks not yet in the map */
    /* directory */
    struct dir *dir;
    /* data: io is held shared by reads, exclusively by everything that changes the file;
     * cmu guards the block cache while reads share io */
    pthread_rwlock_t io;
    pthread_mutex_t cmu;
    struct blk **btab;
    uint32_t bcap, nblk, ndirty;
    uint64_t tick;
    bool on_dlist;
    unsigned inflight;   /* write-backs under way without io (mu) */
    unsigned sync_wait;  /* threads waiting for them to end: no new one starts (mu) */
    struct inode *dnext; /* data-dirty list (mu) */
    struct inode *hnext; /* table chain (mu) */
};

struct keyvec {
    uint64_t *k;
    size_t n, cap;
};

struct qs_fs {
    struct qs_fs_kv *kv;
    struct qs_fs_header hdr;
    unsigned layout_found;
    uint32_t bs;
    unsigned cache_blocks;
    size_t dirty_max;
    size_t flush_at; /* dirty bytes of one file that start a write-back (file.c) */
    pthread_mutex_t mu;
    pthread_mutex_t commit_mu;
    struct inode **itab;
    size_t icap, icount;
    struct inode *dlist; /* inodes with dirty cached blocks */
    size_t ndirty_meta;  /* inodes marked dirty */
    struct keyvec free_meta, free_data, pool;
    uint64_t txid;
    uint8_t upgrade_hdr[QS_FS_HDR_V2_LEN]; /* written between slot and apply (upgrade) */
    size_t upgrade_hdr_len;
    bool closing; /* no more pre-allocation */
    /* background commit */
    pthread_t bg;
    bool bg_running, bg_stop;
    pthread_cond_t bg_cv;
    unsigned commit_ms;
    pthread_cond_t flush_cv; /* an inode's inflight dropped (mu) */
    unsigned async_n;        /* write-backs under way without io, all files (mu) */
    atomic_size_t dirty_bytes, cached_bytes;
    atomic_int_fast64_t flush_retry_ms; /* writers do not write back before (after a failure) */
    struct {
        atomic_uint_fast64_t hit, miss, full, lflush, rflush, rbytes, wbytes, errors, commits;
    } c;
};

/* kv helpers: one op; *val malloc'd. */
int fs_get(struct qs_fs *fs, enum qs_fs_ns ns, uint64_t key, uint8_t **val, size_t *len);
int fs_set(struct qs_fs *fs, enum qs_fs_ns ns, uint64_t key, const void *val, size_t len);
int fs_append(struct qs_fs *fs, enum qs_fs_ns ns, const void *val, size_t len, uint64_t *key);
void fs_op_free(struct qs_zdb_op *ops, size_t n);
/* An errno for a store failure (logs it). */
int fs_errno(struct qs_fs *fs, int qs_code, const char *what, uint64_t ino);

int keyvec_push(struct keyvec *v, uint64_t k);

/* inode.c (mu held) */
int inode_get(struct qs_fs *fs, uint64_t ino, struct inode **out);
int inode_new(struct qs_fs *fs, mode_t mode, uid_t uid, gid_t gid, struct inode **out);
void inode_dirty(struct qs_fs *fs, struct inode *in);
void inode_maybe_free(struct qs_fs *fs, struct inode *in);
void inode_fill_stat(struct qs_fs *fs, const struct inode *in, struct stat *st);
void inode_unpin(struct qs_fs *fs, struct inode *in);
struct qs_fs_time fs_now(void);
int alloc_meta_key(struct qs_fs *fs, uint64_t *key);
void inode_table_free(struct qs_fs *fs);
int inode_prefetch(struct qs_fs *fs, const uint64_t *inos, size_t n);
/* An empty inode put in the table (no I/O), and a lookup that loads nothing. */
int inode_insert_new(struct qs_fs *fs, uint64_t ino, struct inode **out);
struct inode *inode_find(struct qs_fs *fs, uint64_t ino);
/* upgrade.c: layout 1 (0-db-fs) to 2, at mount */
int fs_upgrade_v1(struct qs_fs *fs);
/* Turns a decoded value into an in-memory inode (takes d's arrays). */
int inode_from_disk(struct qs_fs *fs, struct inode *in, struct qs_fs_dinode *d);

/* dir.c (mu held) */
int dir_load(struct qs_fs *fs, struct inode *d);
void dir_free(struct dir *d);
struct dent *dir_find(struct dir *d, const char *name, size_t len);
int dir_init_empty(struct inode *d);
int dir_add(struct dir *d, const char *name, size_t len, uint64_t ino, mode_t mode);

/* file.c */
void file_drop_cache(struct qs_fs *fs, struct inode *in);                    /* io held */
int file_flush_locked(struct qs_fs *fs, struct inode *in);                   /* io held */
int file_truncate_locked(struct qs_fs *fs, struct inode *in, uint64_t size); /* io held */
/* the block cache, shared with read.c: cmu held for find, insert, trim; mkey gives a
 * block's value key (0: a hole) with *rc set on a map error */
struct blk *file_cache_find(struct inode *in, uint64_t idx);
int file_cache_insert(struct inode *in, struct blk *b);
void file_cache_trim(struct qs_fs *fs, struct inode *in, unsigned keep);
uint64_t file_mkey(struct qs_fs *fs, struct inode *in, uint64_t idx, int *rc);
int file_fetch_into(struct qs_fs *fs, struct inode *in, const uint64_t *idx, size_t n,
                    struct blk **out); /* io held, cmu not */
void file_blk_discard(struct qs_fs *fs, struct blk *b);
int file_pin(struct qs_fs *fs, uint64_t ino, struct inode **out); /* a regular file */
void file_unpin(struct qs_fs *fs, struct inode *in);

/* commit.c */
int fs_commit(struct qs_fs *fs);
int fs_flush_all_data(struct qs_fs *fs);
/* Writes back every file's blocks but in's (whose io the caller holds). */
int fs_flush_others(struct qs_fs *fs, struct inode *in);
/* Encodes in's value (and its dirty pages / buckets) into the journal under
 * construction (mu held). */
struct jbuild;
int jb_add_inode(struct qs_fs *fs, struct jbuild *jb, struct inode *in);

#define FS_LOCK(fs)   pthread_mutex_lock(&(fs)->mu)
#define FS_UNLOCK(fs) pthread_mutex_unlock(&(fs)->mu)

#endif
