/* A zstor cluster: what many jobs share (the daemon's concurrent stores and repairs).
 *
 * A cluster owns
 * - the config, as refcounted generations: zstor_cluster_reload installs a new one for
 *   the jobs that start after it; a job keeps the generation it started with until it
 *   ends, and a generation is freed when its last job is;
 * - one codec pool (each stream hashes in a lane of its own, so jobs never queue behind
 *   each other's hash);
 * - a log sink that carries the job: every thread a job starts logs with its number
 *   (util/log.h qs_log_job), so concurrent jobs' lines can be told apart;
 * - one health state per backend (address + namespace): the last probe, and the time
 *   until which a transport failure keeps it skipped. A job probes a backend only when
 *   the shared state is older than the probe TTL and publishes what it learns, so N jobs
 *   cost one probe and a backend one job found dead is skipped by all.
 * A job is a struct zstor_ctx made with zstor_ctx_new_on: cheap (no threads, no I/O; its
 * own backend handles connect on first use), one operation at a time, like any context.
 *
 * Thread-safe: jobs may be created, run and freed on any threads at once.
 */
#ifndef QSFS_ZSTOR_CLUSTER_H
#define QSFS_ZSTOR_CLUSTER_H

#include <stdint.h>

#include "zstor/zstor.h"

struct zstor_cluster;

struct zstor_cluster_opts {
    int workers;     /* codec worker threads: -1 = one per CPU, 0 = none */
    bool dir_nosync; /* as zstor_ctx_opts, for every job */
    bool dir_create;
};

/* Takes ownership of cfg (freed with its last generation). QS_ENOMEM, QS_EIO (threads). */
int zstor_cluster_new(struct zstor_cluster **out, struct zstor_config *cfg,
                      const struct zstor_cluster_opts *o) QS_MUST_CHECK;
/* Every job made on cl must be freed first. */
void zstor_cluster_free(struct zstor_cluster *cl);

/* Installs cfg (owned from now on) as the generation new jobs get; running jobs keep
 * theirs. Returns the new generation number. */
uint64_t zstor_cluster_reload(struct zstor_cluster *cl, struct zstor_config *cfg);

/* A job on cl with the current generation: o's progress and cancel are used, its
 * workers and dir options come from the cluster. Errors as zstor_ctx_new. */
int zstor_ctx_new_on(struct zstor_ctx **out, struct zstor_cluster *cl,
                     const struct zstor_ctx_opts *o) QS_MUST_CHECK;

/* The job's number in its cluster (1, 2, ...): a runner that calls qs_log_set_job with
 * it on the thread running the job gets every log line of the job tagged, those of the
 * threads the job starts included. */
uint64_t zstor_ctx_job(const struct zstor_ctx *z);

/* The generation number a job runs with. */
uint64_t zstor_ctx_generation(const struct zstor_ctx *z);

/* Counters: probes run by all jobs, generations alive. */
void zstor_cluster_stats(struct zstor_cluster *cl, uint64_t *probes, unsigned *generations);

#endif
