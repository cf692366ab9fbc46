/* The daemon's background upkeep (daemon.h): repair, scrub, eviction of the local zdb
 * data directory, and the zdbfs statistics ioctl. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/evict.h"
#include "daemon/private.h"
#include "util/log.h"
#include "util/sys.h"
#include "zstor/check.h"
#include "zstor/list.h"
#include "zstor/rebuild.h"
#include "zstor/retrieve.h"

/* ---- repair ---- */

#define REPAIR_SAME_FAILURES 5 /* rebuilds in a row failing alike end the pass early */

struct repair_scan {
    struct zsd *d;
    struct zstor_ctx *z;
    uint64_t objects, degraded, ok, failed;
    int last_rc;    /* code of the last failed rebuild */
    unsigned alike; /* failures in a row with that code */
};

static void forget_damaged(struct zsd *d, const char *key)
{
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < d->ndamaged; i++) {
        if (strcmp(d->damaged[i], key) == 0) {
            free(d->damaged[i]);
            d->damaged[i] = d->damaged[--d->ndamaged];
            break;
        }
    }
    pthread_mutex_unlock(&d->mu);
}

/* Whether the file e needs a rebuild, and why (into why). */
static bool needs_repair(struct repair_scan *s, const struct zstor_list_entry *e, char *why,
                         size_t cap)
{
    struct zsd *d = s->d;
    pthread_mutex_lock(&d->mu);
    bool damaged = false;
    for (size_t i = 0; i < d->ndamaged; i++)
        damaged |= strcmp(d->damaged[i], e->key) == 0;
    unsigned grace = d->cfg_peek->repair_grace_s;
    pthread_mutex_unlock(&d->mu);
    if (damaged) {
        /* a retrieve counts a shard it could not reach as bad too: verify first, so that
         * a backend that is only briefly away is left to the grace rule below */
        struct zstor_scrub_result res;
        int rc = zstor_scrub(s->z, e->path, &res);
        bool bad = rc == QS_ECORRUPT;
        for (unsigned p = 0; rc == 0 && p < res.nshards; p++)
            bad |= res.bad[p] || (res.missing[p] && res.missing[p] < res.chunks);
        if (bad) {
            snprintf(why, cap, "damaged shards found by a scrub or a retrieve");
            return true;
        }
        forget_damaged(d, e->key);
    }
    struct zstor_meta_record r;
    struct zstor_meta_open_info info;
    int rc = zstor_stat(s->z, e->path, &r, &info);
    if (rc < 0) {
        zstor_meta_record_free(&r);
        return false; /* unreadable: list reports it; nothing to rebuild from */
    }
    bool need = false;
    const struct zstor_config *cfg = zstor_ctx_config(s->z);
    /* a missing metadata piece can only be written again when every meta backend answers
     * (metadata writes need them all): while one is down, its piece is not damage */
    bool meta_up = true;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < d->nbks; i++)
        meta_up &= !(d->bks[i].meta && d->bks[i].down_since_ms);
    pthread_mutex_unlock(&d->mu);
    if (info.ok < cfg->meta.nbackends && meta_up) {
        snprintf(why, cap, "%u of %zu metadata pieces good", info.ok, cfg->meta.nbackends);
        need = true;
    }
    bool up[255], incfg[255];
    zstor_stat_shards(s->z, &r, up, incfg);
    int64_t now = zsd_wall_ms();
    for (unsigned p = 0; p < r.nshards && !need; p++) {
        const struct zstor_meta_shard *sh = &r.shard[p];
        if (sh->flags & ZSTOR_META_SHARD_ABSENT) {
            snprintf(why, cap, "shard %u was never written", p);
            need = true;
        } else if (!incfg[p]) {
            snprintf(why, cap, "shard %u is on %s%s%s, which left the config", p, sh->address,
                     sh->ns[0] ? "/" : "", sh->ns);
            need = true;
        } else if (!up[p]) {
            pthread_mutex_lock(&d->mu);
            int64_t since = 0;
            for (size_t i = 0; i < d->nbks; i++)
                if (!d->bks[i].meta && strcmp(d->bks[i].address, sh->address) == 0 &&
                    strcmp(d->bks[i].ns, sh->ns) == 0)
                    since = d->bks[i].down_since_ms;
            pthread_mutex_unlock(&d->mu);
            if (since && now - since >= (int64_t)grace * 1000) {
                snprintf(why, cap, "shard %u is on %s%s%s, unreachable for %lld s", p, sh->address,
                         sh->ns[0] ? "/" : "", sh->ns, (long long)((now - since) / 1000));
                need = true;
            }
        }
    }
    zstor_meta_record_free(&r);
    return need;
}

static int repair_one(void *ud, const struct zstor_list_entry *e)
{
    struct repair_scan *s = ud;
    struct zsd *d = s->d;
    if (atomic_load(&d->stopping))
        return QS_EAGAIN;
    if (e->rc < 0)
        return 0;
    s->objects++;
    char why[400];
    if (!needs_repair(s, e, why, sizeof(why)))
        return 0;
    s->degraded++;
    zsd_lock(d, e->key);
    struct zstor_rebuild_result res;
    int rc = zstor_rebuild(s->z, NULL, e->key, &res);
    zsd_unlock(d, e->key);
    if (rc == 0) {
        s->ok++;
        forget_damaged(d, e->key);
        qs_log(QS_LOG_INFO, "repaired %s (%s): %u shard positions moved, %llu values written%s",
               e->path, why, res.moved, (unsigned long long)res.rewritten,
               res.meta_fixed ? ", metadata rewritten" : "");
    } else if (rc == QS_ENOTFOUND) {
        forget_damaged(d, e->key); /* deleted meanwhile */
    } else {
        s->failed++;
        qs_log(QS_LOG_WARN, "repair of %s (%s) failed, retried next pass: %s", e->path, why,
               qs_err_msg());
        zsd_note_error(d, "repair of a file failed: %s", qs_err_msg());
    }
    /* a cause that fails every rebuild (a meta backend down that health has not marked
     * yet, no placement while a group is short) would fail the rest of the pass too */
    s->alike = rc < 0 && rc != QS_ENOTFOUND ? (rc == s->last_rc ? s->alike + 1 : 1) : 0;
    s->last_rc = rc;
    pthread_mutex_lock(&d->mu);
    if (rc == 0)
        d->repairs_ok++;
    else if (rc != QS_ENOTFOUND)
        d->repairs_failed++;
    pthread_mutex_unlock(&d->mu);
    if (s->alike >= REPAIR_SAME_FAILURES) {
        qs_log(QS_LOG_WARN,
               "repair pass ended early: %u rebuilds in a row failed alike; the "
               "next pass tries again",
               s->alike);
        return QS_EAGAIN;
    }
    return 0;
}

static void repair_pass(struct zsd *d)
{
    struct repair_scan s = {.d = d, .z = zsd_job(d, NULL, NULL)};
    if (!s.z)
        return;
    pthread_mutex_lock(&d->mu);
    d->repairing = true;
    pthread_mutex_unlock(&d->mu);
    int rc = zstor_list(s.z, NULL, repair_one, &s);
    if (rc < 0 && rc != QS_EAGAIN)
        qs_log(QS_LOG_WARN, "repair pass: listing the stored files: %s", qs_err_msg());
    else if (s.degraded)
        qs_log(QS_LOG_INFO,
               "repair pass: %llu files, %llu needed a repair, %llu repaired, %llu "
               "failed",
               (unsigned long long)s.objects, (unsigned long long)s.degraded,
               (unsigned long long)s.ok, (unsigned long long)s.failed);
    zstor_ctx_free(s.z);
    pthread_mutex_lock(&d->mu);
    d->repairing = false;
    d->repair_passes++;
    if (rc == 0) {
        d->objects = s.objects;
        d->objects_degraded = s.degraded - s.ok;
    }
    pthread_mutex_unlock(&d->mu);
}

void *zsd_repair_main(void *arg)
{
    struct zsd *d = arg;
    qs_log_set_job(zsd_next_job(d));
    while (!atomic_load(&d->stopping)) {
        pthread_mutex_lock(&d->mu);
        for (;;) {
            int64_t next = d->repair_last_ms + (int64_t)d->cfg_peek->repair_interval_s * 1000;
            if (atomic_load(&d->stopping) || d->repair_now || zsd_wall_ms() >= next)
                break;
            zsd_wait_until(d, next);
        }
        d->repair_now = false;
        pthread_mutex_unlock(&d->mu);
        if (atomic_load(&d->stopping))
            break;
        repair_pass(d);
        pthread_mutex_lock(&d->mu);
        d->repair_last_ms = zsd_wall_ms();
        pthread_mutex_unlock(&d->mu);
    }
    return NULL;
}

/* ---- scrub ---- */

struct scrub_pass {
    struct zsd *d;
    struct zstor_ctx *z;
    int64_t t0;
    uint64_t base; /* bytes of the files before this one */
    uint64_t rate; /* bytes per second, 0 = unlimited */
    uint64_t damaged, files;
};

/* The rate bound: sleeps until the bytes read so far are due. */
static void scrub_throttle(struct scrub_pass *s, uint64_t done)
{
    if (!s->rate)
        return;
    uint64_t total = s->base + done;
    int64_t due = s->t0 + (int64_t)(total * 1000 / s->rate);
    while (!atomic_load(&s->d->stopping)) {
        int64_t now = qs_now_ms();
        if (now >= due)
            return;
        int64_t left = due - now > 200 ? 200 : due - now;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left * 1000000};
        nanosleep(&ts, NULL);
    }
}

static void scrub_progress(void *ud, const char *what, uint64_t done, uint64_t total)
{
    (void)what;
    (void)total;
    scrub_throttle(ud, done);
}

static int scrub_one(void *ud, const struct zstor_list_entry *e)
{
    struct scrub_pass *s = ud;
    if (atomic_load(&s->d->stopping))
        return QS_EAGAIN;
    if (e->rc < 0)
        return 0;
    struct zstor_scrub_result res;
    int rc = zstor_scrub(s->z, e->path, &res);
    bool bad = rc < 0 && rc != QS_ENOTFOUND && rc != QS_EAGAIN;
    /* corrupt values, and values gone from a backend that answers for others (a whole
     * shard missing is an unreachable backend: repaired after repair_grace_s) */
    for (unsigned p = 0; rc == 0 && p < res.nshards; p++)
        bad |= res.bad[p] || (res.missing[p] && res.missing[p] < res.chunks);
    if (bad) {
        s->damaged++;
        qs_log(QS_LOG_WARN, "scrub: %s has damaged shards%s%s; repairing it", e->path,
               rc < 0 ? ": " : "", rc < 0 ? qs_err_msg() : "");
        zsd_damaged(s->d, e->key);
    }
    s->files++;
    s->base += e->size;
    scrub_throttle(s, 0);
    pthread_mutex_lock(&s->d->mu);
    s->d->scrub_files++;
    s->d->scrub_bytes += e->size;
    if (bad)
        s->d->scrub_damaged++;
    pthread_mutex_unlock(&s->d->mu);
    return 0;
}

void *zsd_scrub_main(void *arg)
{
    struct zsd *d = arg;
    qs_log_set_job(zsd_next_job(d));
    while (!atomic_load(&d->stopping)) {
        pthread_mutex_lock(&d->mu);
        for (;;) {
            unsigned every = d->cfg_peek->scrub_interval_s;
            int64_t next = every ? d->scrub_last_ms + (int64_t)every * 1000 : INT64_MAX;
            if (atomic_load(&d->stopping) || zsd_wall_ms() >= next)
                break;
            zsd_wait_until(d, next < zsd_wall_ms() + 5000 ? next : zsd_wall_ms() + 5000);
        }
        struct scrub_pass s = {.d = d, .rate = (uint64_t)d->cfg_peek->scrub_rate_mib_s << 20};
        d->scrubbing = true;
        d->scrub_started_ms = zsd_wall_ms();
        pthread_mutex_unlock(&d->mu);
        if (atomic_load(&d->stopping))
            break;
        s.t0 = qs_now_ms();
        if ((s.z = zsd_job(d, scrub_progress, &s))) {
            int rc = zstor_list(s.z, NULL, scrub_one, &s);
            if (rc < 0 && rc != QS_EAGAIN)
                qs_log(QS_LOG_WARN, "scrub pass: listing the stored files: %s", qs_err_msg());
            else
                qs_log(QS_LOG_INFO, "scrub pass: %llu files verified, %llu with damaged shards",
                       (unsigned long long)s.files, (unsigned long long)s.damaged);
            zstor_ctx_free(s.z);
        }
        pthread_mutex_lock(&d->mu);
        d->scrubbing = false;
        d->scrub_passes++;
        d->scrub_last_ms = zsd_wall_ms();
        pthread_mutex_unlock(&d->mu);
    }
    return NULL;
}

/* ---- eviction ---- */

struct evict_job {
    struct zsd *d;
    struct zstor_ctx *z;
};

static int evict_safe(void *ud, const char *path, const struct stat *st, bool *safe)
{
    struct evict_job *j = ud;
    return zse_safe_stored(j->z, path, st, safe);
}

void *zsd_evict_main(void *arg)
{
    struct zsd *d = arg;
    qs_log_set_job(zsd_next_job(d));
    int64_t next = zsd_wall_ms();
    while (!atomic_load(&d->stopping)) {
        pthread_mutex_lock(&d->mu);
        while (!atomic_load(&d->stopping) && zsd_wall_ms() < next)
            zsd_wait_until(d, next);
        const struct zstor_config *cfg = d->cfg_peek;
        bool on = cfg->zdb_data_dir_path && cfg->max_zdb_data_dir_size;
        char *dir = on ? strdup(cfg->zdb_data_dir_path) : NULL;
        uint64_t limit = cfg->max_zdb_data_dir_size << 20;
        pthread_mutex_unlock(&d->mu);
        next = zsd_wall_ms() + ZSD_EVICT_EVERY_S * 1000;
        struct stat dst;
        if (!dir || atomic_load(&d->stopping) || (stat(dir, &dst) < 0 && errno == ENOENT)) {
            free(dir); /* no directory yet (a restore starts the daemon before zdb): nothing */
            continue;
        }
        struct evict_job j = {.d = d, .z = zsd_job(d, NULL, NULL)};
        struct zse_result res = {0};
        int rc = j.z ? zse_run(dir, limit, evict_safe, &j, &res) : QS_ENOMEM;
        if (rc < 0)
            qs_log(QS_LOG_WARN, "eviction in %s: %s", dir, qs_err_msg());
        else if (res.deleted || res.skipped)
            qs_log(QS_LOG_INFO,
                   "eviction in %s: %zu files deleted (%llu bytes), %zu not stored "
                   "or changed, kept",
                   dir, res.deleted, (unsigned long long)res.freed, res.skipped);
        zstor_ctx_free(j.z);
        free(dir);
        pthread_mutex_lock(&d->mu);
        if (rc == 0) {
            d->data_dir_known = true;
            d->data_dir_size = res.total_after;
            d->evicted += res.deleted;
        } else {
            d->eviction_failures++;
        }
        pthread_mutex_unlock(&d->mu);
    }
    return NULL;
}

/* ---- zdbfs statistics ---- */

#define ZDBFS_IOCTL_STATS   0x80F04501UL /* _IOR('E', 1, stats_t), 30 size_t (0-db-fs) */
#define ZDBFS_STATS_VERSION 2

/* The poller's state lives apart from d: a thread stuck in the ioctl of a hung mount is
 * left behind at stop (detached), and must not touch freed memory when it wakes. */
struct zsd_fs_poller {
    pthread_mutex_t mu;
    atomic_int stop;
    int refs; /* the thread's and the daemon's */
    char *mountpoint;
    bool ok;
    int64_t ok_ms;
    struct zsm_fs fs;
    uint64_t failures;
    char error[200];
    pthread_t t;
};

static void poller_unref(struct zsd_fs_poller *p)
{
    pthread_mutex_lock(&p->mu);
    int left = --p->refs;
    pthread_mutex_unlock(&p->mu);
    if (left == 0) {
        pthread_mutex_destroy(&p->mu);
        free(p->mountpoint);
        free(p);
    }
}

static void *fs_main(void *arg)
{
    struct zsd_fs_poller *p = arg;
    while (!atomic_load(&p->stop)) {
        uint64_t v[30];
        memset(v, 0, sizeof(v));
        int fd = open(p->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int rc = fd < 0 ? -1 : ioctl(fd, ZDBFS_IOCTL_STATS, v);
        int e = errno;
        if (fd >= 0)
            close(fd);
        pthread_mutex_lock(&p->mu);
        if (rc == 0 && v[0] == ZDBFS_STATS_VERSION) {
            struct zsm_fs *f = &p->fs;
            f->present = true;
            f->fuse_reqs = v[1];
            f->cache_hits = v[2];
            f->cache_miss = v[3];
            f->cache_full = v[4];
            f->cache_linear_flush = v[5];
            f->cache_random_flush = v[6];
            f->cache_branches = v[7];
            f->cache_branches_allocated = v[8];
            f->cache_entries = v[9];
            f->cache_blocks = v[10];
            f->cache_blocksize = v[11];
            for (int i = 0; i < 15; i++)
                f->syscalls[i] = v[12 + i];
            f->bytes_read = v[27];
            f->bytes_written = v[28];
            f->fuse_errors = v[29];
            p->ok = true;
            p->ok_ms = zsd_wall_ms();
        } else {
            p->ok = false;
            p->failures++;
            snprintf(p->error, sizeof(p->error), "%s: %s", p->mountpoint,
                     rc == 0 ? "statistics of another version" : strerror(e));
        }
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < 10 && !atomic_load(&p->stop); i++) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    poller_unref(p);
    return NULL;
}

int zsd_fs_start(struct zsd *d)
{
    const struct zstor_config *cfg = d->cfg_peek;
    if (!cfg->zdbfs_mountpoint)
        return 0;
    struct zsd_fs_poller *p = calloc(1, sizeof(*p));
    if (!p || !(p->mountpoint = strdup(cfg->zdbfs_mountpoint))) {
        free(p);
        return qs_err_set(QS_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    p->refs = 2;
    if (pthread_create(&p->t, NULL, fs_main, p) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p->mountpoint);
        free(p);
        return qs_err_set(QS_EIO, "cannot start the zdbfs statistics thread");
    }
    pthread_detach(p->t);
    d->fsp = p;
    return 0;
}

/* What the poller knows. A mount that has not answered for 3 s (gone, or hung in the
 * ioctl) shows no fs series. */
void zsd_fs_snapshot(struct zsd *d, struct zsm_fs *out, uint64_t *failures)
{
    memset(out, 0, sizeof(*out));
    *failures = 0;
    struct zsd_fs_poller *p = d->fsp;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->ok_ms && zsd_wall_ms() - p->ok_ms < 3000)
        *out = p->fs;
    else
        out->present = false;
    *failures = p->failures;
    pthread_mutex_unlock(&p->mu);
}

void zsd_fs_stop(struct zsd *d)
{
    if (!d->fsp)
        return;
    atomic_store(&d->fsp->stop, 1);
    poller_unref(d->fsp); /* the thread frees it when it comes back, if it ever does */
    d->fsp = NULL;
}
