/* The daemon's checkpoint thread (checkpoint.h, docs/qsfs.md): every checkpoint_s of the
 * config's [qsfs] table, and at once when asked (the hook after a rotation, `zstor
 * checkpoint`, `qsfs down`), one pass. The recovery point is the snapshot instant of the
 * last pass that stored everything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/checkpoint.h"
#include "daemon/flush.h"
#include "daemon/private.h"
#include "util/log.h"
#include "util/sys.h"

#define RETRY_MS  5000  /* after a failed pass, the next try (unless asked sooner) */
#define SAMPLE_MS 250   /* the frontend's activity is sampled at most this often */
#define FLUSH_MS  60000 /* longest wait for the mount's flush before an asked pass */

/* ---- foreground activity ---- */

#define BUSY_BYTES (1u << 20) /* growth per sample that counts as being written */

/* Bytes in dir/data/ns's data files from the open (highest) one down to the one below it
 * (a rotation between two samples still shows the growth), 0 when none. */
static uint64_t open_bytes(const char *qdir, const char *ns)
{
    char dir[4300];
    snprintf(dir, sizeof(dir), "%s/data/%s", qdir, ns);
    uint32_t top = 0;
    if (!zsc_open_data_file(dir, &top))
        return 0;
    /* the file id counts as its whole datasize: a rotation is growth, not shrinkage */
    uint64_t total = (uint64_t)top << 32;
    char path[4400];
    snprintf(path, sizeof(path), "%s/d%u", dir, top);
    struct stat st;
    if (stat(path, &st) == 0)
        total += (uint64_t)st.st_size;
    return total;
}

bool zsd_uploads_deferred(struct zsd *d)
{
    pthread_mutex_lock(&d->mu);
    const struct zstor_config *cfg = d->cfg_peek;
    if (!cfg->qsfs.present || !cfg->qsfs.upload_defer_s) {
        pthread_mutex_unlock(&d->mu);
        return false;
    }
    int64_t now = zsd_wall_ms();
    if (now - d->busy_sample_ms >= SAMPLE_MS) {
        char *dir = strdup(cfg->qsfs.dir);
        d->busy_sample_ms = now;
        pthread_mutex_unlock(&d->mu);
        uint64_t sig = dir ? open_bytes(dir, ZSC_DATA_NS) + open_bytes(dir, ZSC_META_NS) : 0;
        free(dir);
        pthread_mutex_lock(&d->mu);
        /* a trickle (a log, a database's small commits) does not count: its uploads are
         * small, and waiting would only widen the recovery point */
        bool busy = sig >= d->busy_sig + BUSY_BYTES || sig + BUSY_BYTES <= d->busy_sig;
        d->busy_sig = sig;
        if (busy && !d->busy)
            d->busy_since_ms = now;
        d->busy = busy;
    }
    bool defer = d->busy && now - d->busy_since_ms < (int64_t)cfg->qsfs.upload_defer_s * 1000;
    pthread_mutex_unlock(&d->mu);
    return defer;
}

static void lock_cb(void *ud, const char *key)
{
    zsd_lock(ud, key);
}

static void unlock_cb(void *ud, const char *key)
{
    zsd_unlock(ud, key);
}

/* A pass someone waits for (zstor checkpoint) first has the mount hand over what it holds,
 * so that everything written before the request is in it. A flush that fails does not stop
 * the pass (what the local zdb has is still worth storing); it is reported. */
static void one_pass(struct zsd *d, const struct zstor_qsfs *q, bool asked)
{
    if (asked && zsd_flush_mount(&d->flush, q->mountpoint, FLUSH_MS, &d->stopping) < 0) {
        char err[400];
        snprintf(err, sizeof(err), "checkpoint: flushing the mount: %s", qs_err_msg());
        qs_log(QS_LOG_WARN, "%s", err);
        zsd_note_error(d, "%s", err);
    }
    struct zstor_ctx *z = zsd_job(d, NULL, NULL);
    struct zsc_result res;
    memset(&res, 0, sizeof(res));
    int rc = QS_ENOMEM;
    if (!d->ck_cache)
        d->ck_cache = zsc_cache_new(); /* only this thread touches it */
    if (z && d->ck_cache) {
        struct zsc_hooks h = {.lock = lock_cb, .unlock = unlock_cb, .ud = d};
        rc = zsc_run(z, q, d->ck_cache, &h, &res);
    } else {
        qs_err_set(QS_ENOMEM, "checkpoint: cannot start a job");
    }
    zstor_ctx_free(z);
    char err[600] = "";
    if (rc < 0) {
        snprintf(err, sizeof(err), "%s", qs_err_msg());
        if (!atomic_load(&d->stopping)) {
            qs_log(QS_LOG_WARN, "%s (retried)", err);
            zsd_note_error(d, "%s", err);
        }
    } else if (res.stored) {
        qs_log(QS_LOG_INFO, "checkpoint: %zu files stored (%llu bytes uploaded)", res.stored,
               (unsigned long long)res.bytes);
    }
    pthread_mutex_lock(&d->mu);
    d->ck_rc = rc;
    snprintf(d->ck_error, sizeof(d->ck_error), "%s", err);
    d->ck_last_ms = zsd_wall_ms();
    d->ck_passes++;
    d->ck_bytes += res.bytes;
    d->ck_pending = rc < 0 ? (res.pending ? res.pending : 1) : 0;
    if (rc == 0)
        d->ck_point_ms = res.point_ms;
    else
        d->ck_failures++;
    pthread_mutex_unlock(&d->mu);
}

void *zsd_checkpoint_main(void *arg)
{
    struct zsd *d = arg;
    qs_log_set_job(zsd_next_job(d));
    int64_t next = zsd_wall_ms(); /* a first pass at start: what a dead daemon missed */
    while (!atomic_load(&d->stopping)) {
        pthread_mutex_lock(&d->mu);
        const struct zstor_config *cfg = d->cfg_peek;
        while (!atomic_load(&d->stopping) && d->ck_asked == d->ck_started) {
            cfg = d->cfg_peek;
            bool periodic = cfg->qsfs.present && cfg->qsfs.checkpoint_s;
            if (periodic && zsd_wall_ms() >= next)
                break;
            zsd_wait_until(d, periodic ? next : zsd_wall_ms() + 60000);
        }
        cfg = d->cfg_peek;
        if (atomic_load(&d->stopping) || !cfg->qsfs.present) {
            d->ck_started = d->ck_finished = d->ck_asked; /* nothing to do */
            pthread_cond_broadcast(&d->cond);
            pthread_mutex_unlock(&d->mu);
            continue;
        }
        /* the frontend is being written: wait (bounded by upload_defer_s), unless asked
         * with a waiter (zstor checkpoint, qsfs down) */
        bool asked = d->ck_waiting > 0; /* a --nowait poke waits like the timer */
        pthread_mutex_unlock(&d->mu);
        if (!asked && zsd_uploads_deferred(d)) {
            pthread_mutex_lock(&d->mu);
            zsd_wait_until(d, zsd_wall_ms() + SAMPLE_MS);
            pthread_mutex_unlock(&d->mu);
            continue;
        }
        pthread_mutex_lock(&d->mu);
        cfg = d->cfg_peek;
        if (atomic_load(&d->stopping) || !cfg->qsfs.present) {
            pthread_mutex_unlock(&d->mu);
            continue;
        }
        /* the config generation stays alive while a job of it runs; copy what we need */
        struct zstor_qsfs q = cfg->qsfs;
        char *dir = strdup(q.dir);
        char *mnt = q.mountpoint ? strdup(q.mountpoint) : NULL;
        asked = d->ck_waiting > 0;
        uint64_t gen = d->ck_asked;
        d->ck_started = gen;
        d->ck_running = true;
        pthread_mutex_unlock(&d->mu);
        if (dir && (mnt || !q.mountpoint)) {
            q.dir = dir;
            q.mountpoint = mnt;
            one_pass(d, &q, asked);
        }
        free(dir);
        free(mnt);
        pthread_mutex_lock(&d->mu);
        d->ck_running = false;
        d->ck_finished = gen;
        next = zsd_wall_ms() + (d->ck_rc < 0 ? RETRY_MS : (int64_t)q.checkpoint_s * 1000);
        pthread_cond_broadcast(&d->cond);
        pthread_mutex_unlock(&d->mu);
    }
    return NULL;
}

int zsd_checkpoint(struct zsd *d, bool wait, int64_t timeout_ms)
{
    pthread_mutex_lock(&d->mu);
    if (!d->cfg_peek->qsfs.present) {
        pthread_mutex_unlock(&d->mu);
        return qs_err_set(QS_EINVAL, "%s has no [qsfs] table: nothing to checkpoint",
                          d->cfg_peek->name);
    }
    uint64_t mine = ++d->ck_asked;
    pthread_cond_broadcast(&d->cond);
    int rc = 0;
    if (wait) {
        d->ck_waiting++;
        int64_t end = zsd_wall_ms() + timeout_ms;
        while (d->ck_finished < mine && !atomic_load(&d->stopping) && zsd_wall_ms() < end)
            zsd_wait_until(d, end);
        if (d->ck_finished < mine)
            rc = atomic_load(&d->stopping)
                     ? qs_err_set(QS_EIO, "checkpoint: the daemon is stopping")
                     : qs_err_set(QS_ETIMEOUT, "checkpoint: not done after %lld s",
                                  (long long)(timeout_ms / 1000));
        else if (d->ck_rc < 0)
            rc = qs_err_set(d->ck_rc, "%s", d->ck_error);
        d->ck_waiting--;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}
