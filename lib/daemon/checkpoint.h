/* The checkpoint of a qsfs frontend (docs/qsfs.md, "Recovery point"): every file of the
 * local zdb that the remote backends must hold, stored in an order that keeps the stored
 * state restorable at any moment.
 *
 * zdbfs keeps inodes in zdbfs-meta and file blocks in zdbfs-data, and it writes blocks
 * before the metadata that points at them. A restore combines the newest stored version
 * of every file, so stored metadata must never be newer than stored data (it would point
 * at blocks the restored data namespace does not have, and new blocks would reuse their
 * ids). One pass therefore:
 *   1. copies every zdbfs-meta file that changed since it was last stored (index files
 *      before data files) to DIR/checkpoint/ — that instant is the recovery point;
 *   2. stores every changed zdbfs-data file (the descriptor, index files, then data
 *      files, oldest first, the open ones included: they are read to their end);
 *   3. only when all of step 2 succeeded, stores the copies under the original names.
 * A failure stops the pass; the next one starts over from what changed. zdbfs-temp is
 * never stored. Files that are not zdb's (d<N>, i<N>, zdb-namespace) are ignored.
 *
 * "Changed" is judged by (device, inode, size, mtime) against what the last successful
 * store of that path saw (struct zsc_cache); a new cache makes every file a candidate, and
 * zstor_store itself skips files stored with the same BLAKE2b.
 */
#ifndef QSFS_DAEMON_CHECKPOINT_H
#define QSFS_DAEMON_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/err.h"
#include "zstor/zstor.h"

#define ZSC_META_NS "zdbfs-meta"
#define ZSC_DATA_NS "zdbfs-data"
#define ZSC_TEMP_NS "zdbfs-temp"

struct zsc_cache;

struct zsc_cache *zsc_cache_new(void);
void zsc_cache_free(struct zsc_cache *c);

/* Called around the store of each file (the daemon's one-job-per-file lock). */
struct zsc_hooks {
    void (*lock)(void *ud, const char *key);
    void (*unlock)(void *ud, const char *key);
    void *ud;
};

struct zsc_result {
    int64_t point_ms;       /* wall clock of the snapshot (step 1) */
    size_t checked, stored; /* files looked at / handed to zstor_store */
    uint64_t bytes;         /* bytes uploaded */
    size_t pending;         /* files that still differ from the stored state */
    char failed[512];       /* the file that stopped the pass, "" when none */
};

/* One pass for the frontend described by q, storing with z. 0 when everything is stored;
 * else the first error (message names the file). QS_EIO, QS_ENOMEM, zstor_store's. */
int zsc_run(struct zstor_ctx *z, const struct zstor_qsfs *q, struct zsc_cache *cache,
            const struct zsc_hooks *h, struct zsc_result *res) QS_MUST_CHECK;

/* d<N> / i<N>: sets *kind ('d' or 'i') and *id; zdb-namespace: kind 'n'. false otherwise. */
bool zsc_zdb_file(const char *name, char *kind, uint32_t *id);

/* The id of the highest data file d<N> in zdb namespace directory dir (the one zdb appends
 * to); false when there is none or dir cannot be read. */
bool zsc_open_data_file(const char *dir, uint32_t *id);

#endif
