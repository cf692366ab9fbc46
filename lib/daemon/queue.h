/* The zstor daemon's persistent store queue (`store --notblocking`).
 *
 * An item is a file to store: its path, the --key-path directory ("" for none) and flags.
 * zsq_add returns only once the item is on disk (fdatasync), so an acknowledged
 * non-blocking store survives a crash or a restart. One item per (path, key path): adding
 * one that is already queued updates it instead (flags are merged, the retry delay and
 * attempts reset; an item being stored is stored again afterwards).
 *
 * Items are tried in the order they were added, but a failing item does not block the
 * others (0-stor_v2 retried its head forever): a failure puts it back with an exponential
 * delay (min_backoff_ms doubling up to max_backoff_ms) and its attempts and last error
 * stay visible (zsq_list). An item is handed to one worker at a time (zsq_take marks it
 * busy until zsq_done or zsq_failed).
 *
 * The file is a journal of checksummed records (docs/zstor-daemon.md, "Queue file"),
 * rewritten compactly at open and when most of it is dead; only what a crash during the
 * last append leaves (a cut or unwritten last record, a zero tail) is dropped, any other
 * damage refuses to open (the file is kept as it is). A failed append leaves no trace.
 * Thread-safe.
 */
#ifndef QSFS_DAEMON_QUEUE_H
#define QSFS_DAEMON_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define ZSQ_DELETE 0x01u /* remove the local file after a verified store */
#define ZSQ_FLAGS  0x01u /* every known flag */

#define ZSQ_PATH_MAX 4096u
#define ZSQ_ERR_MAX  512u

struct zsq_item {
    uint64_t id; /* unique for the life of the file */
    char *path;
    char *key_path;    /* "" = none */
    unsigned flags;    /* ZSQ_* */
    uint32_t attempts; /* failed attempts so far */
    uint64_t added_ms; /* wall clock, ms since the epoch */
    uint64_t next_ms;  /* not tried before this time */
    char *last_error;  /* "" before the first failure */
    bool busy;         /* taken by a worker */
};

struct zsq_opts {
    uint32_t min_backoff_ms; /* 0 = 1000 */
    uint32_t max_backoff_ms; /* 0 = 600000 */
    bool nosync;             /* skip fdatasync (tests on tmpfs) */
};

struct zsq;

/* Opens (creating it when missing) the queue file at path. Busy marks do not survive:
 * items that were being stored are ready again. QS_ECORRUPT (message names the offset)
 * for damage other than a torn tail, QS_EIO, QS_ENOMEM. */
int zsq_open(struct zsq **out, const char *path, const struct zsq_opts *o) QS_MUST_CHECK;
void zsq_close(struct zsq *q);

/* Queues path (1..ZSQ_PATH_MAX bytes, no NUL) with key_path (NULL or "" = none) and
 * flags; durable on return. *id (may be NULL) gets the item's id. QS_EINVAL for bad
 * arguments, QS_EIO. */
int zsq_add(struct zsq *q, const char *path, const char *key_path, unsigned flags, uint64_t now_ms,
            uint64_t *id) QS_MUST_CHECK;

/* Takes the oldest ready item (next_ms <= now_ms, not busy) and marks it busy; *out gets
 * a copy (free with zsq_item_free). QS_ENOTFOUND when none is ready; then *wait_ms (may
 * be NULL) gets the time until the next one is (UINT64_MAX when the queue has none
 * that is not busy). */
int zsq_take(struct zsq *q, uint64_t now_ms, struct zsq_item *out, uint64_t *wait_ms) QS_MUST_CHECK;

/* The store of item id succeeded: it leaves the queue (durably). Unless the path was
 * queued again while it was busy: then it stays, ready. QS_ENOTFOUND, QS_EIO. */
int zsq_done(struct zsq *q, uint64_t id) QS_MUST_CHECK;

/* The store of item id failed with err: attempts + 1, next try after the backoff (durably).
 * QS_ENOTFOUND, QS_EIO. */
int zsq_failed(struct zsq *q, uint64_t id, uint64_t now_ms, const char *err) QS_MUST_CHECK;

/* Items in the queue (busy ones included). */
size_t zsq_len(struct zsq *q);

/* Copies of every item, oldest first (*items malloc'ed; free with zsq_items_free). */
int zsq_list(struct zsq *q, struct zsq_item **items, size_t *n) QS_MUST_CHECK;

void zsq_item_free(struct zsq_item *it);
void zsq_items_free(struct zsq_item *items, size_t n);

#endif
