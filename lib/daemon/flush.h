/* Flushing a zdbfs mount (flush.c): the kernel's dirty pages go to zdbfs (syncfs), then
 * zdbfs commits everything it holds to its zdb (the snapshot ioctl of 0-db-fs). A
 * checkpoint that someone waits for does this first, so that everything written before it
 * was asked for is in it. */
#ifndef QSFS_DAEMON_FLUSH_H
#define QSFS_DAEMON_FLUSH_H

#include <stdatomic.h>
#include <stdint.h>

#include "util/err.h"

struct zsd_flush;

/* Flushes the mount at mountpoint within timeout_ms (the flush runs on a thread of its own;
 * the wait also ends when *stop, if given, becomes nonzero). *last is the caller's record
 * of its previous flush (NULL at first): while that one is stuck, no new one starts.
 * Returns 0 when done, 1 when mountpoint is not a zdbfs mount (nothing to flush),
 * QS_ETIMEOUT when it did not answer, QS_EIO when it failed, QS_ENOMEM. */
int zsd_flush_mount(struct zsd_flush **last, const char *mountpoint, int64_t timeout_ms,
                    const atomic_int *stop) QS_MUST_CHECK;

/* Forgets *last (a thread still stuck frees its state when it comes back). */
void zsd_flush_drop(struct zsd_flush **last);

#endif
