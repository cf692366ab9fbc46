/* zstor store: encode files and disperse them over the data backends.
 *
 * A file streams through the codec in chunks (memory bounded whatever its size) and its
 * shards go to one placement chosen per file over the healthy, non-full data backends;
 * then its metadata record is sealed and written to every meta backend. A directory
 * stores every regular file below it, recursively (symbolic links and special files are
 * skipped). A failure leaves nothing half-written: the shards already stored are deleted
 * again (a warning says how many could not be, if any).
 */
#ifndef QSFS_ZSTOR_STORE_H
#define QSFS_ZSTOR_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "zstor/zstor.h"

/* Called once per file that failed (msg is the one-line reason), so that a directory
 * store can go on and the program can print every failure. */
typedef void (*zstor_fail_fn)(void *ud, const char *file, int rc, const char *msg);

struct zstor_store_opts {
    const char *key_dir;   /* --key-path: key files as if they sat in this directory */
    bool delete_after;     /* --delete: remove each file after a verified store */
    bool save_failure;     /* --save-failure: record failed stores in the metadata */
    bool stop_on_error;    /* --error-on-failure: stop a directory at the first failure */
    zstor_fail_fn on_fail; /* optional */
    void *ud;
};

struct zstor_store_result {
    uint64_t stored;    /* files uploaded */
    uint64_t unchanged; /* files already stored with the same content (no upload) */
    uint64_t failed;
    uint64_t bytes; /* input bytes uploaded */
};

/* Stores the file or directory at path. Returns 0 when every file was stored (or was
 * already), else the code of the first failure (its message in qs_err_msg()); res (may
 * be NULL) counts the files. Errors: QS_EINVAL (outside root, not a file, bad key path),
 * QS_ETOOFEW (a meta backend down, no placement), QS_EFULL, QS_EIO, QS_EPROTO, ... */
int zstor_store(struct zstor_ctx *z, const char *path, const struct zstor_store_opts *o,
                struct zstor_store_result *res) QS_MUST_CHECK;

#endif
