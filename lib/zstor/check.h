/* zstor check, stat and delete: what is stored for a path, and removing it. */
#ifndef QSFS_ZSTOR_CHECK_H
#define QSFS_ZSTOR_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "meta/record.h"
#include "meta/seal.h"
#include "zstor/zstor.h"

/* The stored BLAKE2b-128 of path into sum; *found false (and 0 returned) when nothing
 * is stored under path. Errors: QS_EINVAL (path outside root), QS_EDENIED (wrong meta
 * key), QS_ETOOFEW (too few meta backends answer), QS_ECORRUPT. */
int zstor_check(struct zstor_ctx *z, const char *path, uint8_t sum[16], bool *found) QS_MUST_CHECK;

/* The record of path (r must be freed with zstor_meta_record_free, also after a failure)
 * and the state of its metadata pieces (info may be NULL). QS_ENOTFOUND when not stored. */
int zstor_stat(struct zstor_ctx *z, const char *path, struct zstor_meta_record *r,
               struct zstor_meta_open_info *info) QS_MUST_CHECK;

/* Probes the backends of r's shards: up[i] whether shard i's backend answers (false for
 * an absent shard), in_config[i] whether it is still in the config. */
void zstor_stat_shards(struct zstor_ctx *z, const struct zstor_meta_record *r, bool *up,
                       bool *in_config);

/* Deletes the file stored as path: its shards from the data backends, then its metadata
 * from every meta backend (all must be reachable). Shards on unreachable backends cannot
 * be deleted: a warning counts them. QS_ENOTFOUND when not stored. */
int zstor_delete(struct zstor_ctx *z, const char *path) QS_MUST_CHECK;

#endif
