/* A small fixed pool of worker threads running tasks in FIFO order.
 *
 * The caller embeds a struct qs_pool_task in its own job, submits it, and later waits
 * for it; results are delivered in whatever order the caller waits, so an ordered
 * pipeline submits in order and waits in order. A pool may be shared by several encoders
 * and decoders: each task carries its own function. With 0 threads, submit runs the task
 * at once on the caller's thread (worker number 0).
 *
 * Tasks of one lane run one at a time, in submission order, and a free worker takes the
 * next task of a lane before any parallel task. Each stream (encoder, decoder) has a
 * lane of its own for its whole-stream hash (inherently sequential, the critical path),
 * so streams sharing a pool never wait for each other's lane. A task marked serial with
 * no lane goes to the pool's own default lane.
 *
 * qs_pool_submit / qs_pool_wait / qs_pool_done are thread-safe. Workers block every
 * signal, so a program's handlers run on its own threads.
 */
#ifndef QSFS_CODEC_POOL_H
#define QSFS_CODEC_POOL_H

#include "util/err.h"

struct qs_pool;
struct qs_pool_task;

/* A serial lane (embedded by its owner; qs_pool_lane_init before use). It must stay valid
 * until every task submitted to it has been waited for. */
struct qs_pool_lane {
    struct qs_pool_task *head, *tail; /* queued, guarded by the pool lock */
    struct qs_pool_lane *next;        /* on the pool's ready list */
    int running, ready;
};
void qs_pool_lane_init(struct qs_pool_lane *l);

/* Runs on a worker; worker is 0..threads-1 and is never used by two tasks at once. */
typedef void (*qs_pool_fn)(struct qs_pool_task *t, unsigned worker);

struct qs_pool_task {
    qs_pool_fn fn;
    struct qs_pool_lane *lane; /* run in this lane (set before submit), NULL: parallel */
    int serial;                /* with no lane: run in the pool's default lane */
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
