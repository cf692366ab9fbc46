/* A pool of connections to one zdb namespace, for many threads at once.
 *
 * Each connection is a struct qs_zdb (one thread at a time, pipelined batches); the pool
 * lends them out: an idle one, a new one while fewer than max_conns are open, or else
 * the caller waits until one comes back, its deadline passes or its cancel flag is set.
 * Every call through the pool carries those limits down to the network
 * (qs_zdb_set_limits): a cancelled or late call stops within about 50 ms (a connect in
 * progress within its connect timeout), not after request_timeout x attempts.
 *
 * Thread-safe. The pool owns its connections; free it after every borrowed one is back.
 */
#ifndef QSFS_ZDBCLIENT_POOL_H
#define QSFS_ZDBCLIENT_POOL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "zdbclient/zdbclient.h"

/* Limits of one call: a CLOCK_MONOTONIC deadline in ms (qs_now_ms; 0 = none) and a
 * cancel flag (NULL = none). */
struct qs_zdb_call {
    int64_t deadline_ms;
    const atomic_int *cancel;
};

struct qs_zdb_pool_opts {
    struct qs_zdb_opts conn; /* every connection's options (strings copied) */
    unsigned max_conns;      /* default 4 */
};

struct qs_zdb_pool;

/* QS_EINVAL for bad options (as qs_zdb_new), QS_ENOMEM. No I/O. */
int qs_zdb_pool_new(struct qs_zdb_pool **out, const struct qs_zdb_pool_opts *o) QS_MUST_CHECK;
void qs_zdb_pool_free(struct qs_zdb_pool *p);

/* Borrows a connection with call's limits set on it (call may be NULL: none). QS_ETIMEOUT
 * when the deadline passes while every connection is busy, QS_EAGAIN when cancelled,
 * QS_ENOMEM. Give it back with qs_zdb_pool_put. */
int qs_zdb_pool_get(struct qs_zdb_pool *p, const struct qs_zdb_call *call,
                    struct qs_zdb **out) QS_MUST_CHECK;
void qs_zdb_pool_put(struct qs_zdb_pool *p, struct qs_zdb *c);

/* qs_zdb_batch on a borrowed connection, within call's limits. */
int qs_zdb_pool_batch(struct qs_zdb_pool *p, const struct qs_zdb_call *call, struct qs_zdb_op *ops,
                      size_t n) QS_MUST_CHECK;

/* Connections open now, and the most ever open at once. */
void qs_zdb_pool_counts(struct qs_zdb_pool *p, unsigned *open, unsigned *peak);

#endif
