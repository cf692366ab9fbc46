/* zstor list: the files stored under this config's metadata prefix.
 *
 * Needs the meta backends to list their keys: zdb with SCAN (0-db v2 and ours), dir://
 * share directories by their files. A server without SCAN gives a clear error.
 */
#ifndef QSFS_ZSTOR_LIST_H
#define QSFS_ZSTOR_LIST_H

#include <stdint.h>

#include "zstor/zstor.h"

struct zstor_list_entry {
    const char *path; /* as to give to retrieve: root joined with the stored name */
    const char *key;  /* the metadata key */
    uint64_t size;
    int64_t mtime;
    const uint8_t *checksum; /* 16 bytes */
    int rc;                  /* 0, or why the record could not be read (error below) */
    const char *error;
};

/* Called per file, in path order (unreadable records last, by key). Return 0 to go on. */
typedef int (*zstor_list_fn)(void *ud, const struct zstor_list_entry *e);

/* Lists the stored files whose path (or stored name) starts with prefix (NULL = all); a
 * relative prefix also matches paths below the working directory (cwd/prefix).
 * Errors: QS_EINVAL when no meta backend can list keys (the message says why),
 * transport errors when none answers, or the callback's code. */
int zstor_list(struct zstor_ctx *z, const char *prefix, zstor_list_fn fn, void *ud) QS_MUST_CHECK;

#endif
