/* zstor: the context every operation runs in (docs/zstor.md).
 *
 * A context holds a loaded config (borrowed: it must outlive the context), one backend
 * handle per configured meta and data backend (connected lazily), what was last learnt
 * about their health, and the codec's worker pool. Operations (store.h, retrieve.h,
 * rebuild.h, ...) take a context; they run their own I/O threads, one per backend they
 * use, for the duration of the call.
 *
 * A context runs one operation at a time (it is not thread-safe); a program that wants
 * concurrent operations makes one context per job on a shared cluster (cluster.h: one
 * config generation, codec pool and health state per backend for all jobs). The library never
 * prints: failures come back as QS_E* codes with a one-line message (qs_err_msg()), warnings about
 * non-fatal problems (a corrupt shard that was worked around, a shard that could not be
 * deleted) go through util/log.h.
 */
#ifndef QSFS_ZSTOR_ZSTOR_H
#define QSFS_ZSTOR_ZSTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "util/err.h"

/* Progress of a long operation: `done` of `total` bytes (total 0 = unknown) of the
 * file named `what`. Called on the thread running the operation, often: throttle. */
typedef void (*zstor_progress_fn)(void *ud, const char *what, uint64_t done, uint64_t total);

struct zstor_ctx_opts {
    int workers;                /* codec worker threads: -1 = one per CPU, 0 = none */
    bool dir_nosync;            /* dir:// backends skip fsync (tests, tmpfs) */
    bool dir_create;            /* commands that write may initialise dir:// share directories: an
                                   empty one, or missing ones when none of the config exists yet
                                   (a first run); reads never create one */
    zstor_progress_fn progress; /* optional */
    void *progress_ud;
    const atomic_int *cancel; /* optional: once nonzero (a signal handler may set it), the
                                 running operation stops at its next chunk with QS_EAGAIN
                                 "interrupted" and undoes what it wrote, as after any
                                 failure; a directory stops at the file it was in */
};

/* Workers -1, fsync on, no progress. */
void zstor_ctx_opts_default(struct zstor_ctx_opts *o);

struct zstor_ctx;

/* Creates a context for cfg (borrowed) with o (NULL = defaults). No I/O happens here:
 * backends connect on first use. QS_EINVAL for a backend address the backend layer
 * refuses, QS_ENOMEM, QS_EIO (threads). Free with zstor_ctx_free. */
int zstor_ctx_new(struct zstor_ctx **out, const struct zstor_config *cfg,
                  const struct zstor_ctx_opts *o) QS_MUST_CHECK;
void zstor_ctx_free(struct zstor_ctx *z);

/* The config z runs with (a cluster job: its generation's; valid while z lives). */
const struct zstor_config *zstor_ctx_config(const struct zstor_ctx *z);

/* The metadata key ("/{prefix}/meta/{hash}") of a path given on the command line, as
 * retrieve, check, rebuild -f and delete compute it: a relative path is first made
 * absolute against the working directory (store always keys absolute paths), then
 * cleaned and stripped of root (meta/key.h). QS_EINVAL when the path is outside root.
 * *rel (may be NULL) gets the stored name, malloc'ed. */
int zstor_path_key(const struct zstor_ctx *z, const char *path, char key[256],
                   char **rel) QS_MUST_CHECK;

/* The stored-name prefix of every file stored below the directory path (made absolute as
 * zstor_path_key does): "NAME/", or "" when path is root itself (every stored file), into
 * *below (malloc'ed); zstor_list(z, below, ...) lists exactly the files below path.
 * QS_EINVAL when path is outside root. */
int zstor_path_below(const struct zstor_ctx *z, const char *path, char **below) QS_MUST_CHECK;

#endif
