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

#endif
