/* Namespace functions shared by ns.c and ns_load.c only. */
#ifndef QSFS_STORE_NS_PRIVATE_H
#define QSFS_STORE_NS_PRIVATE_H

#include "store/ns.h"

/* Records that index file fileid starts at sequential id first. */
int zdb_ns_seq_push_file(struct zdb_ns *ns, uint32_t fileid, uint64_t first) QS_MUST_CHECK;

/* Index file and offset of the slot of sequential id; QS_ENOTFOUND past the end. */
int zdb_ns_seq_locate(const struct zdb_ns *ns, uint64_t id, uint32_t *fileid,
                      uint32_t *off) QS_MUST_CHECK;

/* Recovery: marks the live version of key deleted in the index (no data tombstone is
 * written: the caller found one). QS_ENOTFOUND when not live. */
int zdb_ns_forget(struct zdb_ns *ns, const uint8_t *key, size_t klen) QS_MUST_CHECK;

/* ---- batch.c: a batch generation's base and roll back ---- */

/* Called before a write is buffered: starts a generation (base = the files now). */
void zdb_batch_touch(struct zdb_ns *ns);

/* A rotation made what came before durable in the old files: a new generation starts at
 * the next write. */
void zdb_batch_rebase(struct zdb_ns *ns);

/* Saves the len bytes at fileid/off of index fd before a patch overwrites them. */
int zdb_batch_save_undo(struct zdb_ns *ns, int fd, uint32_t fileid, uint64_t off,
                        size_t len) QS_MUST_CHECK;

/* Rolls the current generation back (code: why, for the replies). */
int zdb_batch_abort(struct zdb_ns *ns, int code) QS_MUST_CHECK;

/* Loads ns again from its files into the same object (buffers must be empty): the
 * server's pointers stay valid; on failure ns is unchanged. */
int zdb_ns_reload_in_place(struct zdb_ns *ns) QS_MUST_CHECK;

#endif
