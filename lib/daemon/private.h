/* Internals of the daemon's service (daemon.h) shared by daemon.c (core, queue, health),
 * upkeep.c (repair, scrub, eviction, zdbfs statistics) and page.c (metrics, status page). */
#ifndef QSFS_DAEMON_PRIVATE_H
#define QSFS_DAEMON_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/daemon.h"
#include "daemon/metrics.h"
#include "daemon/queue.h"

#define ZSD_LOW_SPACE_PCT 10 /* free below this share of used + free: "low space" */
#define ZSD_EVICT_EVERY_S 60
#define ZSD_ERRORS_KEPT   8 /* last errors shown on the status page */

enum zsd_state { ZSD_HEALTHY, ZSD_LOW_SPACE, ZSD_READONLY, ZSD_UNREACHABLE };

/* What the daemon remembers of a backend between health passes. */
struct zsd_bk {
    char *address, *ns;
    bool meta;
    int64_t down_since_ms; /* wall clock; 0 = reachable at the last pass */
};

struct zsd_thread {
    pthread_t t;
    bool started;
};

struct zsd {
    struct zsd_opts o;
    char *config_path;
    struct zstor_cluster *cl;
    struct zstor_config *cfg_peek; /* newest generation's config (owned by the cluster) */
    struct zsq *q;
    atomic_int stopping;
    atomic_int cancel; /* interrupts the daemon's own jobs at stop */
    atomic_ullong next_job;

    pthread_mutex_t mu; /* everything below */
    pthread_cond_t cond;
    /* keys being worked on */
    char **locked;
    size_t nlocked, caplocked;
    /* health */
    struct zstor_backend_status *rows; /* one block (zsd_rows_dup) */
    size_t nrows;
    int64_t health_ms; /* wall clock of the last pass */
    struct zsd_bk *bks;
    size_t nbks;
    /* repair */
    char **damaged;
    size_t ndamaged, capdamaged;
    bool repair_now;
    int64_t repair_last_ms;
    uint64_t repairs_ok, repairs_failed, repair_passes, objects, objects_degraded;
    bool repairing;
    /* scrub */
    bool scrubbing;
    int64_t scrub_last_ms, scrub_started_ms;
    uint64_t scrub_files, scrub_bytes, scrub_damaged, scrub_passes;
    /* eviction */
    uint64_t data_dir_size, evicted, eviction_failures;
    bool data_dir_known;
    /* qsfs checkpoint (ckpt.c) */
    struct zsc_cache *ck_cache;
    uint64_t ck_asked, ck_started, ck_finished; /* request and pass generations */
    int ck_rc;                                  /* of the last pass */
    char ck_error[600];
    int64_t ck_point_ms, ck_last_ms; /* last good recovery point; last pass's end */
    uint64_t ck_passes, ck_failures, ck_bytes;
    size_t ck_pending;
    bool ck_running;
    unsigned ck_waiting; /* callers of zsd_checkpoint waiting for a pass */
    /* foreground activity of the frontend (ckpt.c zsd_uploads_deferred) */
    int64_t busy_sample_ms, busy_since_ms;
    uint64_t busy_sig;
    bool busy;
    /* zdbfs statistics */
    struct zsm_fs fs;
    int64_t fs_ms; /* wall clock of the last answer */
    uint64_t fs_poll_failures;
    /* commands and queue */
    uint64_t ok[ZSM_NCMD], failed[ZSM_NCMD];
    struct zsm_latency latency[ZSM_NCMD];
    uint64_t bytes_stored, bytes_retrieved, queue_failures, queued_total;
    char errors[ZSD_ERRORS_KEPT][300];
    size_t nerrors; /* total, the last ZSD_ERRORS_KEPT kept round-robin */
    int64_t started_ms;

    struct zsd_thread *workers;
    unsigned nworkers;
    struct zsd_thread health, repair, scrub, evict, checkpoint;
    struct zsd_fs_poller *fsp;
    struct zsd_flush *flush; /* the last flush of the mount (flush.h), checkpoint thread only */
};

int64_t zsd_wall_ms(void);
/* Sleeps until ms (wall clock) passes, d stops or cond is signalled; mu held. */
void zsd_wait_until(struct zsd *d, int64_t ms);
/* Remembers a failure for the status page (mu not held). */
void zsd_note_error(struct zsd *d, const char *fmt, ...) QS_PRINTF(2, 3);
enum zsd_state zsd_row_state(const struct zstor_backend_status *r);
const char *zsd_state_name(enum zsd_state s);
/* A copy of rows[0..n) in one block whose strings follow the rows. */
struct zstor_backend_status *zsd_rows_dup(const struct zstor_backend_status *rows, size_t n);
/* The queue's items (copies, free with zsq_items_free; none when the list fails) and how
 * many of them have failed at least once. */
size_t zsd_queue_snapshot(struct zsd *d, struct zsq_item **items, size_t *failing);
/* A job on the cluster for the daemon's own work (cancelled at stop); NULL on failure. */
struct zstor_ctx *zsd_job(struct zsd *d, zstor_progress_fn progress, void *ud);

/* upkeep.c: thread bodies; the fs poller */
void *zsd_repair_main(void *arg);
void *zsd_scrub_main(void *arg);
void *zsd_evict_main(void *arg);
int zsd_fs_start(struct zsd *d);
void zsd_fs_stop(struct zsd *d);
void zsd_fs_snapshot(struct zsd *d, struct zsm_fs *out, uint64_t *failures);

/* ckpt.c: the checkpoint thread (does nothing without a [qsfs] table) */
void *zsd_checkpoint_main(void *arg);
/* The frontend is being written and uploads should wait (at most [qsfs] upload_defer_s of
 * continuous writing); false without a [qsfs] table. mu not held. */
bool zsd_uploads_deferred(struct zsd *d);

#endif
