/* Keeping the local zdb data directory under a size limit (the daemon's
 * `zdb_data_dir_path` + `max_zdb_data_dir_size`).
 *
 * While the regular files below dir (recursively; symbolic links are not followed) add up
 * to more than limit bytes, the least recently accessed one (atime, then mtime, then
 * name) is considered: the caller's `safe` callback says whether it is stored and its
 * stored checksum still matches the local bytes; only then is it deleted, and only if its
 * inode, size and mtime are still what they were when it was checked (a file that changed
 * meanwhile stays). Files that are not safe are skipped, never deleted.
 */
#ifndef QSFS_DAEMON_EVICT_H
#define QSFS_DAEMON_EVICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "util/err.h"

/* Sets *safe when path (whose stat is st) may be deleted. A negative return stops the
 * run with that error (e.g. the meta backends cannot be read). */
typedef int (*zse_safe_fn)(void *ud, const char *path, const struct stat *st, bool *safe);

struct zse_result {
    uint64_t total_before, total_after; /* bytes of regular files, sizes as scanned */
    size_t files, deleted, skipped;     /* skipped: over the limit but not safe */
    uint64_t freed;
};

/* One pass over dir. QS_EIO when dir cannot be read (message names it), the callback's
 * error, QS_ENOMEM. A file that vanished or cannot be deleted is skipped. */
int zse_run(const char *dir, uint64_t limit, zse_safe_fn safe, void *ud,
            struct zse_result *res) QS_MUST_CHECK;

struct zstor_ctx;

/* The rule of the daemon and of `zstor evict` (a zse_safe_fn over a zstor_ctx): path is
 * stored with the same BLAKE2b-128 as the local bytes, and it is not a zdb data file d<N>
 * with no higher d<M> beside it (the one zdb appends to). A failing meta backend is an
 * error (the pass stops); a path outside root is never safe. */
int zse_safe_stored(void *z, const char *path, const struct stat *st, bool *safe);

#endif
