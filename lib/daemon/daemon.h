/* The zstor daemon's service (docs/zstor-daemon.md): what runs while `zstor monitor`
 * does, apart from the socket (server.h) and the commands it forwards.
 *
 * - the persistent queue of --notblocking stores (queue.h), worked by
 *   max_concurrent_stores threads; a failed item retries with backoff without holding up
 *   the others;
 * - one job at a time per file: zsd_lock/zsd_unlock on the metadata key, taken by queued
 *   stores, repairs and the commands the daemon runs;
 * - health: every health_interval_s every backend is probed (NSINFO); the results feed
 *   placement (shared by all jobs of the cluster), status and metrics; a backend's state is
 *   healthy, low space, read-only or unreachable (since when);
 * - repair: every repair_interval_s, and soon after a scrub, a retrieve or a reload asks
 *   for it, every stored file whose shards sit on a backend unreachable for longer than
 *   repair_grace_s, on a backend gone from the config, absent, damaged (scrub, heal on
 *   read), or whose metadata lacks a piece (a replaced meta backend) is rebuilt;
 * - scrub: every scrub_interval_s a pass over every stored file verifies each shard,
 *   reading at most scrub_rate_mib_s;
 * - eviction of zdb_data_dir_path down to max_zdb_data_dir_size (every minute; only
 *   files stored with the same BLAKE2b);
 * - the zdbfs statistics ioctl on zdbfs_mountpoint, every second, on a thread a hung
 *   mount cannot stop;
 * - counters and the metrics text (metrics.h), and the status page (http.h serves them).
 * Thread-safe unless a function says otherwise.
 */
#ifndef QSFS_DAEMON_DAEMON_H
#define QSFS_DAEMON_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "daemon/metrics.h"
#include "util/buf.h"
#include "util/err.h"
#include "zstor/cluster.h"
#include "zstor/status.h"

struct zsd;

struct zsd_opts {
    const char *config_path; /* read again by zsd_reload */
    bool queue_nosync;       /* tests on tmpfs */
    bool dir_nosync;
};

/* Takes ownership of cfg (already loaded and checked for redundancy). Starts nothing.
 * QS_ENOMEM, QS_EIO. */
int zsd_new(struct zsd **out, struct zstor_config *cfg, const struct zsd_opts *o) QS_MUST_CHECK;

/* Opens the queue and starts the threads; a first health pass runs before it returns.
 * QS_ECORRUPT / QS_EIO (the queue file), QS_EIO (threads). */
int zsd_start(struct zsd *d) QS_MUST_CHECK;

/* Stops every thread (running stores are interrupted and stay queued) and frees d. */
void zsd_free(struct zsd *d);

/* Reads and validates the config file again; a good one is used by every job from now
 * on and a repair pass follows, a bad one is refused (QS_EINVAL, message says why) and
 * the old one stays. */
int zsd_reload(struct zsd *d) QS_MUST_CHECK;

struct zstor_cluster *zsd_cluster(struct zsd *d);
const struct zstor_config *zsd_config_peek(struct zsd *d); /* the newest (for socket paths) */

/* A new log job number (sessions and the daemon's own jobs share them). */
uint64_t zsd_next_job(struct zsd *d);

/* store --notblocking: path (absolute) is queued durably; a directory queues every
 * regular file below it. QS_EINVAL (not a file or directory), QS_EIO. */
int zsd_queue_store(struct zsd *d, const char *path, const char *key_dir,
                    bool delete_after) QS_MUST_CHECK;

void zsd_lock(struct zsd *d, const char *key);
void zsd_unlock(struct zsd *d, const char *key);

/* key's file has damaged shards: repair it soon. */
void zsd_damaged(struct zsd *d, const char *key);

/* qsfs checkpoint (checkpoint.h): asks for a pass now; with wait, returns once a pass
 * that started after the call has ended (at most timeout_ms), with its result: 0 when
 * every local file is stored. QS_EINVAL (no [qsfs] table), QS_ETIMEOUT, the pass's error. */
int zsd_checkpoint(struct zsd *d, bool wait, int64_t timeout_ms) QS_MUST_CHECK;

/* The backends as the last health pass saw them (one malloc'ed block, free()). */
int zsd_status_rows(struct zsd *d, struct zstor_backend_status **rows, size_t *n) QS_MUST_CHECK;

/* The daemon's part of `zstor status`: text lines, or `, "daemon": {...}` (JSON). */
void zsd_print_status(struct zsd *d, FILE *out, bool json);

/* A command the daemon ran (metrics): which, how it ended, how long, bytes moved. */
void zsd_count_command(struct zsd *d, enum zsm_cmd cmd, bool ok, double seconds, uint64_t bytes);

/* The metrics text (/metrics) and the status page (/) appended to out. names: the page
 * may show file names (queue items, errors). */
int zsd_render_metrics(struct zsd *d, struct qs_buf *out) QS_MUST_CHECK;
int zsd_render_page(struct zsd *d, struct qs_buf *out, bool names) QS_MUST_CHECK;

#endif
