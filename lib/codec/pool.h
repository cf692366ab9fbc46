/* A small fixed pool of worker threads running tasks in FIFO order.
 *
 * The caller embeds a struct qs_pool_task in its own job, submits it, and later waits
 * for it; results are delivered in whatever order the caller waits, so an ordered
 * pipeline submits in order and waits in order. A pool may be shared by several encoders
 * and decoders: each task carries its own function. With 0 threads, submit runs the task
 * at once on the caller's thread (worker number 0).
 *
 * Tasks marked serial form one lane: they run one at a time, in submission order, and a
 * free worker takes a queued serial task before any parallel one. The codec runs its
 * whole-stream hash there: inherently sequential, and the critical path.
 *
 * qs_pool_submit / qs_pool_wait / qs_pool_done are thread-safe. Workers block every
 * signal, so a program's handlers run on its own threads.
 */
#ifndef QSFS_CODEC_POOL_H
#define QSFS_CODEC_POOL_H

#include "util/err.h"

struct qs_pool;
struct qs_pool_task;

/* Runs on a worker; worker is 0..threads-1 and is never used by two tasks at once. */
typedef void (*qs_pool_fn)(struct qs_pool_task *t, unsigned worker);

struct qs_pool_task {
    qs_pool_fn fn;
    int serial;                /* run in the serial lane (set before submit) */
    struct qs_pool_task *next; /* owned by the pool while queued */
    int done;                  /* guarded by the pool lock */
};

/* Starts threads workers (0..64). QS_ENOMEM, QS_EIO when a thread cannot start. */
int qs_pool_new(struct qs_pool **out, unsigned threads) QS_MUST_CHECK;

/* Runs the queued tasks to completion, stops and joins the threads. NULL is a no-op. */
void qs_pool_free(struct qs_pool *p);

/* Number of worker threads (0 = inline), so callers can size per-worker state. */
unsigned qs_pool_threads(const struct qs_pool *p);

/* Queues t (t->fn set by the caller). t must stay valid until qs_pool_wait returns. */
void qs_pool_submit(struct qs_pool *p, struct qs_pool_task *t);

/* Blocks until t has run. */
void qs_pool_wait(struct qs_pool *p, struct qs_pool_task *t);

/* Nonzero when t has run (does not block). */
int qs_pool_done(struct qs_pool *p, struct qs_pool_task *t);

#endif
