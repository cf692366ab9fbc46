/* zdbfs's filesystem logic, without FUSE: inodes, directories, file blocks, a block
 * cache and a journal, over the stores of kv.h.
 *
 * Calls mirror the FUSE low-level operations (the zdbfs program is a thin layer over
 * them) and return 0 or a negative errno (-ENOENT, -ENOTEMPTY, ... ; -EIO when a store
 * failed, with the reason in qs_err_msg() and in the log). Inode numbers are meta keys;
 * the root is QS_FS_ROOT_INO. Calls that return an inode to the kernel (lookup, create,
 * mknod, mkdir, symlink, link, readdirplus) count a lookup that qs_fs_forget drops.
 *
 * Permission checks are the kernel's (FUSE default_permissions); lib/fs applies the
 * semantics (nlink, times, sticky directories are checked by the kernel too).
 *
 * Durability: changes live in memory until a commit. qs_fs_fsync, qs_fs_sync and
 * qs_fs_close write the file's blocks, then commit every metadata change atomically
 * (journal); a background thread commits every commit_ms. After a crash, mounting
 * replays the last commit: the tree is what it was at some commit, never a mix.
 *
 * Thread-safe: any number of threads may call at once.
 */
#ifndef QSFS_FS_FS_H
#define QSFS_FS_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "fs/kv.h"

struct qs_fs;

struct qs_fs_opts {
    struct qs_fs_kv *kv;   /* borrowed; outlives the fs */
    uint64_t size;         /* bytes statfs reports as the size (default 10 GiB) */
    uint32_t block_size;   /* for a new filesystem (default QS_FS_DEFAULT_BLOCK) */
    unsigned cache_blocks; /* clean blocks kept per open file (default 32) */
    size_t dirty_max;      /* dirty bytes before writers flush (default 64 MiB) */
    size_t flush_at;       /* dirty bytes of one file that start its write-back (4 MiB) */
    unsigned commit_ms;    /* background commit period (default 1000; 0 = none) */
    bool no_mkfs;          /* refuse an empty namespace instead of creating a filesystem */
};

/* Mounts the filesystem in opts->kv: creates one in empty namespaces, upgrades a 0-db-fs
 * (layout 1) one, replays the last commit after a crash and frees orphans. QS_ECORRUPT
 * with a message for a namespace that holds something else. Errors are QS_E* codes. */
int qs_fs_open(struct qs_fs **out, const struct qs_fs_opts *o) QS_MUST_CHECK;

/* Writes everything, commits, frees. Returns the first failure (data may be lost then;
 * the message says what); the fs is freed in every case. */
int qs_fs_close(struct qs_fs *fs);

/* Attributes of an inode as the kernel sees it. */
int qs_fs_getattr(struct qs_fs *fs, uint64_t ino, struct stat *st) QS_MUST_CHECK;

/* Bits of to_set (FUSE_SET_ATTR_* values, same numbers). */
#define QS_FS_SET_MODE      (1 << 0)
#define QS_FS_SET_UID       (1 << 1)
#define QS_FS_SET_GID       (1 << 2)
#define QS_FS_SET_SIZE      (1 << 3)
#define QS_FS_SET_ATIME     (1 << 4)
#define QS_FS_SET_MTIME     (1 << 5)
#define QS_FS_SET_ATIME_NOW (1 << 7)
#define QS_FS_SET_MTIME_NOW (1 << 8)
#define QS_FS_SET_CTIME     (1 << 10)
int qs_fs_setattr(struct qs_fs *fs, uint64_t ino, const struct stat *in, int to_set,
                  struct stat *out) QS_MUST_CHECK;

int qs_fs_lookup(struct qs_fs *fs, uint64_t parent, const char *name,
                 struct stat *st) QS_MUST_CHECK;
void qs_fs_forget(struct qs_fs *fs, uint64_t ino, uint64_t nlookup);

/* Creates a node (regular, fifo, socket, device; S_IFDIR goes to mkdir). uid/gid are the
 * caller's; a setgid parent passes its group (and S_ISGID to directories). */
int qs_fs_mknod(struct qs_fs *fs, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
                uid_t uid, gid_t gid, struct stat *st) QS_MUST_CHECK;
int qs_fs_mkdir(struct qs_fs *fs, uint64_t parent, const char *name, mode_t mode, uid_t uid,
                gid_t gid, struct stat *st) QS_MUST_CHECK;
int qs_fs_symlink(struct qs_fs *fs, uint64_t parent, const char *name, const char *target,
                  uid_t uid, gid_t gid, struct stat *st) QS_MUST_CHECK;
/* An unnamed regular file in parent's filesystem (O_TMPFILE): nlink 0 until linked. */
int qs_fs_tmpfile(struct qs_fs *fs, uint64_t parent, mode_t mode, uid_t uid, gid_t gid,
                  struct stat *st) QS_MUST_CHECK;
int qs_fs_link(struct qs_fs *fs, uint64_t ino, uint64_t newparent, const char *newname,
               struct stat *st) QS_MUST_CHECK;
/* Copies the target (NUL-terminated, cut to n-1) into buf. */
int qs_fs_readlink(struct qs_fs *fs, uint64_t ino, char *buf, size_t n) QS_MUST_CHECK;
int qs_fs_unlink(struct qs_fs *fs, uint64_t parent, const char *name) QS_MUST_CHECK;
int qs_fs_rmdir(struct qs_fs *fs, uint64_t parent, const char *name) QS_MUST_CHECK;
#define QS_FS_RENAME_NOREPLACE (1 << 0)
#define QS_FS_RENAME_EXCHANGE  (1 << 1)
int qs_fs_rename(struct qs_fs *fs, uint64_t parent, const char *name, uint64_t newparent,
                 const char *newname, unsigned flags) QS_MUST_CHECK;

/* Open and release of a file (counts open handles: an unlinked file lives until both its
 * handles and its lookups are gone). Release writes the file's dirty blocks. */
int qs_fs_open_file(struct qs_fs *fs, uint64_t ino) QS_MUST_CHECK;
int qs_fs_release(struct qs_fs *fs, uint64_t ino) QS_MUST_CHECK;
/* Writes the file's dirty blocks to its store (close: the next open anywhere sees them). */
int qs_fs_flush(struct qs_fs *fs, uint64_t ino) QS_MUST_CHECK;
/* Returns once zdb acknowledged the file's data and every metadata change. */
int qs_fs_fsync(struct qs_fs *fs, uint64_t ino, bool datasync) QS_MUST_CHECK;
/* Everything, every file: the snapshot ioctl and syncfs. */
int qs_fs_sync(struct qs_fs *fs) QS_MUST_CHECK;

/* Reads up to n bytes at off into buf; *got is what was read (short at end of file). */
int qs_fs_read(struct qs_fs *fs, uint64_t ino, uint64_t off, size_t n, uint8_t *buf,
               size_t *got) QS_MUST_CHECK;
/* Several reads of one file (the FUSE requests that were waiting together): the blocks
 * they need are fetched in one batch when they fit in the file's cache. Each range gets
 * its own got and rc (a negative errno); returns non-zero when ino is no file or its inode
 * cannot be loaded. */
struct qs_fs_rd {
    uint64_t off;
    size_t n;
    uint8_t *buf;
    size_t got;
    int rc;
};
int qs_fs_read_many(struct qs_fs *fs, uint64_t ino, struct qs_fs_rd *r, size_t n) QS_MUST_CHECK;
int qs_fs_write(struct qs_fs *fs, uint64_t ino, uint64_t off, const uint8_t *buf, size_t n,
                bool append, uint64_t *written_at) QS_MUST_CHECK;
/* mode: 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE,
 * FALLOC_FL_ZERO_RANGE; others -EOPNOTSUPP. */
int qs_fs_fallocate(struct qs_fs *fs, uint64_t ino, int mode, uint64_t off,
                    uint64_t len) QS_MUST_CHECK;

/* Directory listing. emit gets each entry (st is NULL unless plus) and the offset to
 * resume after it; it returns non-zero when its buffer is full (that entry was not
 * taken). With plus, each taken entry other than . and .. counts a lookup. */
typedef int (*qs_fs_emit)(void *ud, const char *name, const struct stat *st, uint64_t ino,
                          unsigned type, uint64_t next_off);
int qs_fs_readdir(struct qs_fs *fs, uint64_t ino, uint64_t off, bool plus, qs_fs_emit emit,
                  void *ud) QS_MUST_CHECK;
/* Checks that ino is a directory (opendir). */
int qs_fs_opendir(struct qs_fs *fs, uint64_t ino) QS_MUST_CHECK;

int qs_fs_statfs(struct qs_fs *fs, struct statvfs *st) QS_MUST_CHECK;

/* Extended attributes. getxattr/listxattr with n == 0 return the size needed (>= 0). */
int qs_fs_setxattr(struct qs_fs *fs, uint64_t ino, const char *name, const void *value, size_t len,
                   int flags) QS_MUST_CHECK;
int qs_fs_getxattr(struct qs_fs *fs, uint64_t ino, const char *name, void *buf,
                   size_t n) QS_MUST_CHECK;
int qs_fs_listxattr(struct qs_fs *fs, uint64_t ino, char *buf, size_t n) QS_MUST_CHECK;
int qs_fs_removexattr(struct qs_fs *fs, uint64_t ino, const char *name) QS_MUST_CHECK;

/* Counters for the stats ioctl and tests. */
struct qs_fs_counters {
    uint64_t cache_hit, cache_miss, cache_full, cache_linear_flush, cache_random_flush;
    uint64_t cache_entries, cache_blocks, cache_blocksize, dirty_bytes, cached_bytes;
    uint64_t read_bytes, write_bytes, errors, commits, inodes;
    uint64_t map_pages; /* block map pages in memory, all files */
};
void qs_fs_counters(struct qs_fs *fs, struct qs_fs_counters *out);

/* The layout version found at mount (1 = 0-db-fs upgraded at this mount, 2 = zdbfs). */
unsigned qs_fs_layout_found(const struct qs_fs *fs);

#endif
