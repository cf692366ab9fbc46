/* Low-level file access of a namespace: paths, the active file pair, the cache of
 * descriptors for older files, appends and in-place flag updates. Internal to lib/store. */
#ifndef QSFS_STORE_NSFILE_H
#define QSFS_STORE_NSFILE_H

#include <sys/uio.h>

#include "store/ns.h"

/* pwritev of all iov at off, retrying short writes. */
int zdb_write_at(int fd, struct iovec *iov, int n, uint64_t off) QS_MUST_CHECK;
/* pread of exactly n bytes at off; QS_EIO on error, QS_ECORRUPT on a short read. */
int zdb_read_at(int fd, void *buf, size_t n, uint64_t off) QS_MUST_CHECK;

/* Opens (creating with a header when empty) i<id> and d<id> as the active pair. */
int zdb_nsfile_open_active(struct zdb_ns *ns, uint32_t fileid) QS_MUST_CHECK;
void zdb_nsfile_close_active(struct zdb_ns *ns);

/* A descriptor on file kind 'i' (read-write) or 'd' (read-only) of id, cached.
 * QS_ENOTFOUND when the file does not exist. Do not close it. */
int zdb_nsfile_fd(struct zdb_ns *ns, char kind, uint32_t fileid, int *fd) QS_MUST_CHECK;
void zdb_nsfile_cache_drop(struct zdb_ns *ns);

/* Appends a data entry to the active data file; *off = its offset. */
int zdb_nsfile_data_append(struct zdb_ns *ns, const uint8_t *key, size_t klen, const uint8_t *val,
                           size_t vlen, uint32_t crc, uint8_t flags, uint32_t ts,
                           uint32_t *off) QS_MUST_CHECK;

/* Appends an index entry (its previous field is filled in) to the active index file. */
int zdb_nsfile_index_append(struct zdb_ns *ns, struct zdb_idx_entry *e, const uint8_t *key,
                            uint32_t *off) QS_MUST_CHECK;

/* Overwrites an index entry (fixed part + key) in place in file fileid at off. */
int zdb_nsfile_index_rewrite(struct zdb_ns *ns, uint32_t fileid, uint32_t off,
                             const struct zdb_idx_entry *e, const uint8_t *key) QS_MUST_CHECK;

/* Writes the batched appends of the active pair to the files, then the pending in-place
 * patches (saving the bytes they overwrite, for a roll back). On failure the bytes stay
 * pending (and readable): the batch rolls back (store/batch.c). ns->nospace tells a full
 * disk. */
int zdb_nsfile_flush(struct zdb_ns *ns) QS_MUST_CHECK;

/* preadv of file kind/fileid at off that also sees batched bytes not yet written. */
int zdb_nsfile_readv(struct zdb_ns *ns, char kind, uint32_t fileid, struct iovec *iov, int n,
                     uint64_t off) QS_MUST_CHECK;

/* Reads the index entry at fileid/off (fixed part and key, key buffer of 255 bytes). */
int zdb_nsfile_index_read(struct zdb_ns *ns, uint32_t fileid, uint32_t off, struct zdb_idx_entry *e,
                          uint8_t *key) QS_MUST_CHECK;

/* Sets the deleted flag of the index entry at fileid/off. */
int zdb_nsfile_index_mark_deleted(struct zdb_ns *ns, uint32_t fileid, uint32_t off) QS_MUST_CHECK;

#endif
