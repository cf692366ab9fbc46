/* The daemon's service (daemon.h): lifetime, the store queue and its workers, per-file
 * locks, health passes, status. Repair, scrub, eviction and zdbfs statistics are in
 * upkeep.c, the metrics text and the status page in page.c. */
#include "daemon/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/checkpoint.h"
#include "daemon/flush.h"
#include "daemon/private.h"
#include "util/fmt.h"
#include "util/log.h"
#include "util/sys.h"
#include "zstor/store.h"

int64_t zsd_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void zsd_wait_until(struct zsd *d, int64_t ms)
{
    if (atomic_load(&d->stopping))
        return;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    pthread_cond_timedwait(&d->cond, &d->mu, &ts);
}

void zsd_note_error(struct zsd *d, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&d->mu);
    snprintf(d->errors[d->nerrors % ZSD_ERRORS_KEPT], sizeof(d->errors[0]), "%s", msg);
    d->nerrors++;
    pthread_mutex_unlock(&d->mu);
}

enum zsd_state zsd_row_state(const struct zstor_backend_status *r)
{
    if (!r->reachable)
        return ZSD_UNREACHABLE;
    if (r->readonly)
        return ZSD_READONLY;
    if (r->free != ZSTOR_UNKNOWN && r->used != ZSTOR_UNKNOWN &&
        (r->free + r->used == 0 || r->free * 100 < (r->free + r->used) * ZSD_LOW_SPACE_PCT))
        return ZSD_LOW_SPACE;
    return ZSD_HEALTHY;
}

const char *zsd_state_name(enum zsd_state s)
{
    static const char *const n[] = {"healthy", "low space", "read-only", "unreachable"};
    return n[s];
}

struct zstor_backend_status *zsd_rows_dup(const struct zstor_backend_status *rows, size_t n)
{
    size_t strs = 0;
    for (size_t i = 0; i < n; i++)
        strs += strlen(rows[i].address) + strlen(rows[i].ns) + 2;
    struct zstor_backend_status *out = malloc(n * sizeof(*out) + strs + 1);
    if (!out)
        return NULL;
    char *p = (char *)(out + n);
    for (size_t i = 0; i < n; i++) {
        out[i] = rows[i];
        size_t la = strlen(rows[i].address) + 1, ln = strlen(rows[i].ns) + 1;
        memcpy(p, rows[i].address, la);
        out[i].address = p;
        p += la;
        memcpy(p, rows[i].ns, ln);
        out[i].ns = p;
        p += ln;
    }
    return out;
}

struct zstor_ctx *zsd_job(struct zsd *d, zstor_progress_fn progress, void *ud)
{
    struct zstor_ctx_opts o;
    zstor_ctx_opts_default(&o);
    o.cancel = &d->cancel;
    o.progress = progress;
    o.progress_ud = ud;
    struct zstor_ctx *z;
    if (zstor_ctx_new_on(&z, d->cl, &o) < 0) {
        qs_log(QS_LOG_ERROR, "daemon: a job: %s", qs_err_msg());
        return NULL;
    }
    return z;
}

/* ---- lifetime ---- */

int zsd_new(struct zsd **out, struct zstor_config *cfg, const struct zsd_opts *o)
{
    *out = NULL;
    struct zsd *d = calloc(1, sizeof(*d));
    if (!d) {
        zstor_config_free(cfg);
        return qs_err_set(QS_ENOMEM, "out of memory");
    }
    d->o = *o;
    d->config_path = strdup(o->config_path ? o->config_path : "");
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);
    d->started_ms = zsd_wall_ms();
    d->repair_last_ms = d->scrub_last_ms = d->started_ms;
    d->cfg_peek = cfg;
    struct zstor_cluster_opts co = {.workers = -1, .dir_nosync = o->dir_nosync, .dir_create = true};
    int rc = zstor_cluster_new(&d->cl, cfg, &co); /* owns cfg from here, even on failure */
    if (rc == 0 && !d->config_path)
        rc = qs_err_set(QS_ENOMEM, "out of memory");
    if (rc < 0) {
        zsd_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

struct zstor_cluster *zsd_cluster(struct zsd *d)
{
    return d->cl;
}

const struct zstor_config *zsd_config_peek(struct zsd *d)
{
    pthread_mutex_lock(&d->mu);
    const struct zstor_config *c = d->cfg_peek;
    pthread_mutex_unlock(&d->mu);
    return c;
}

uint64_t zsd_next_job(struct zsd *d)
{
    return atomic_fetch_add(&d->next_job, 1) + 1;
}

int zsd_reload(struct zsd *d)
{
    struct zstor_config *cfg;
    if (zstor_config_load(d->config_path, &cfg) < 0)
        return qs_err_set(QS_EINVAL, "reload refused, the old config stays: %s", qs_err_msg());
    if (zstor_config_check_redundancy(cfg) < 0) {
        int rc = qs_err_set(QS_EINVAL, "reload refused, the old config stays: %s", qs_err_msg());
        zstor_config_free(cfg);
        return rc;
    }
    const struct zstor_config *old = zsd_config_peek(d);
    if ((old->socket == NULL) != (cfg->socket == NULL) ||
        (old->socket && strcmp(old->socket, cfg->socket) != 0))
        qs_log(QS_LOG_WARN, "reload: the socket changed; the daemon keeps %s until restarted",
               old->socket ? old->socket : "(none)");
    pthread_mutex_lock(&d->mu);
    d->cfg_peek = cfg;
    uint64_t gen = zstor_cluster_reload(d->cl, cfg);
    d->repair_now = true; /* backends may have left: move their data */
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
    qs_log(QS_LOG_INFO, "reload: %s is config generation %llu; a repair pass follows",
           d->config_path, (unsigned long long)gen);
    return 0;
}

/* ---- per-file locks ---- */

static bool is_locked(struct zsd *d, const char *key)
{
    for (size_t i = 0; i < d->nlocked; i++)
        if (strcmp(d->locked[i], key) == 0)
            return true;
    return false;
}

void zsd_lock(struct zsd *d, const char *key)
{
    char *k = strdup(key);
    pthread_mutex_lock(&d->mu);
    while (is_locked(d, key))
        pthread_cond_wait(&d->cond, &d->mu);
    if (d->nlocked == d->caplocked) {
        size_t cap = d->caplocked ? 2 * d->caplocked : 16;
        char **p = k ? realloc(d->locked, cap * sizeof(*p)) : NULL;
        if (p) {
            d->locked = p;
            d->caplocked = cap;
        }
    }
    if (k && d->nlocked < d->caplocked)
        d->locked[d->nlocked++] = k;
    else
        free(k); /* out of memory: unlocked (the library's race checks still hold) */
    pthread_mutex_unlock(&d->mu);
}

void zsd_unlock(struct zsd *d, const char *key)
{
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < d->nlocked; i++) {
        if (strcmp(d->locked[i], key) == 0) {
            free(d->locked[i]);
            d->locked[i] = d->locked[--d->nlocked];
            break;
        }
    }
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

void zsd_damaged(struct zsd *d, const char *key)
{
    pthread_mutex_lock(&d->mu);
    bool known = false;
    for (size_t i = 0; i < d->ndamaged; i++)
        known |= strcmp(d->damaged[i], key) == 0;
    if (!known) {
        if (d->ndamaged == d->capdamaged) {
            size_t cap = d->capdamaged ? 2 * d->capdamaged : 16;
            char **p = realloc(d->damaged, cap * sizeof(*p));
            if (p) {
                d->damaged = p;
                d->capdamaged = cap;
            }
        }
        char *k = d->ndamaged < d->capdamaged ? strdup(key) : NULL;
        if (k)
            d->damaged[d->ndamaged++] = k;
    }
    d->repair_now = true;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
    if (!known)
        qs_log(QS_LOG_INFO, "repair: %s has damaged shards, repairing it", key);
}

/* ---- the store queue ---- */

static struct zsd *g_walk_d; /* nftw has no user pointer: walks run one at a time */
static pthread_mutex_t g_walk_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *g_walk_key;
static unsigned g_walk_flags;
static int g_walk_rc;
static uint64_t g_walk_n;

static int walk_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)f;
    if (type != FTW_F || !S_ISREG(st->st_mode))
        return 0;
    int rc = zsq_add(g_walk_d->q, path, g_walk_key, g_walk_flags, (uint64_t)zsd_wall_ms(), NULL);
    if (rc < 0) {
        g_walk_rc = rc;
        return 1;
    }
    g_walk_n++;
    return 0;
}

int zsd_queue_store(struct zsd *d, const char *path, const char *key_dir, bool delete_after)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return qs_err_set(errno == ENOENT ? QS_ENOTFOUND : QS_EIO, "store %s: %s", path,
                          strerror(errno));
    unsigned flags = delete_after ? ZSQ_DELETE : 0;
    int rc = 0;
    uint64_t n = 0;
    if (S_ISREG(st.st_mode)) {
        rc = zsq_add(d->q, path, key_dir, flags, (uint64_t)zsd_wall_ms(), NULL);
        n = rc == 0;
    } else if (S_ISDIR(st.st_mode)) {
        if (key_dir)
            return qs_err_set(QS_EINVAL,
                              "store --notblocking %s: --key-path takes one file, "
                              "and this is a directory",
                              path);
        pthread_mutex_lock(&g_walk_mu);
        g_walk_d = d;
        g_walk_key = NULL;
        g_walk_flags = flags;
        g_walk_rc = 0;
        g_walk_n = 0;
        if (nftw(path, walk_one, 16, FTW_PHYS) < 0 && g_walk_rc == 0)
            g_walk_rc =
                qs_err_set(QS_EIO, "store %s: reading the directory: %s", path, strerror(errno));
        rc = g_walk_rc;
        n = g_walk_n;
        pthread_mutex_unlock(&g_walk_mu);
    } else {
        return qs_err_set(QS_EINVAL, "store %s: not a regular file or directory", path);
    }
    pthread_mutex_lock(&d->mu);
    d->queued_total += n;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
    if (rc < 0)
        return qs_err_set(rc, "store --notblocking %s: %s (%llu files were queued)", path,
                          qs_err_msg(), (unsigned long long)n);
    qs_log(QS_LOG_DEBUG, "queued %s (%llu files)", path, (unsigned long long)n);
    return 0;
}

/* The metadata key an item's store writes (its lock). */
static void item_key(struct zstor_ctx *z, const struct zsq_item *it, char key[256])
{
    char path[ZSQ_PATH_MAX * 2 + 2];
    const char *p = it->path;
    if (it->key_path[0]) {
        const char *base = strrchr(it->path, '/');
        snprintf(path, sizeof(path), "%s/%s", it->key_path, base ? base + 1 : it->path);
        p = path;
    }
    if (zstor_path_key(z, p, key, NULL) < 0)
        snprintf(key, 256, "queue:%s", it->path); /* outside root: the store will say so */
}

static void store_item(struct zsd *d, struct zsq_item *it)
{
    uint64_t job = zsd_next_job(d);
    qs_log_set_job(job);
    struct zstor_ctx *z = zsd_job(d, NULL, NULL);
    int rc = QS_ENOMEM;
    char err[512] = "cannot start a job";
    int64_t t0 = qs_now_ms();
    struct zstor_store_result res = {0};
    if (z) {
        char key[256];
        item_key(z, it, key);
        zsd_lock(d, key);
        struct zstor_store_opts so = {.key_dir = it->key_path[0] ? it->key_path : NULL,
                                      .delete_after = (it->flags & ZSQ_DELETE) != 0};
        rc = zstor_store(z, it->path, &so, &res);
        if (rc < 0)
            snprintf(err, sizeof(err), "%s", qs_err_msg());
        zsd_unlock(d, key);
        zstor_ctx_free(z);
    }
    double secs = (double)(qs_now_ms() - t0) / 1000.0;
    int drc;
    if (rc == 0) {
        qs_log(QS_LOG_INFO, "stored %s (queued)", it->path);
        drc = zsq_done(d->q, it->id);
    } else if (!atomic_load(&d->stopping) && access(it->path, F_OK) < 0 && errno == ENOENT) {
        qs_log(QS_LOG_WARN, "queued store of %s: the file is gone; dropped from the queue",
               it->path);
        drc = zsq_done(d->q, it->id);
    } else {
        if (atomic_load(&d->stopping))
            snprintf(err, sizeof(err), "interrupted by the daemon's stop");
        else
            qs_log(QS_LOG_WARN, "queued store of %s failed (attempt %u, retried later): %s",
                   it->path, it->attempts + 1, err);
        drc = zsq_failed(d->q, it->id, (uint64_t)zsd_wall_ms(), err);
        if (!atomic_load(&d->stopping))
            zsd_note_error(d, "queued store (attempt %u): %s", it->attempts + 1, err);
    }
    if (drc < 0)
        qs_log(QS_LOG_ERROR, "store queue: %s", qs_err_msg());
    zsd_count_command(d, ZSM_STORE, rc == 0, secs, res.bytes);
    pthread_mutex_lock(&d->mu);
    if (rc < 0)
        d->queue_failures++;
    pthread_mutex_unlock(&d->mu);
    qs_log_set_job(0);
}

static void *worker_main(void *arg)
{
    struct zsd *d = arg;
    while (!atomic_load(&d->stopping)) {
        struct zsq_item it;
        uint64_t wait = 0;
        if (zsd_uploads_deferred(d)) { /* uploads run behind a frontend being written */
            pthread_mutex_lock(&d->mu);
            if (!atomic_load(&d->stopping))
                zsd_wait_until(d, zsd_wall_ms() + 250);
            pthread_mutex_unlock(&d->mu);
            continue;
        }
        int rc = zsq_take(d->q, (uint64_t)zsd_wall_ms(), &it, &wait);
        if (rc == 0) {
            store_item(d, &it);
            zsq_item_free(&it);
            continue;
        }
        if (wait > 1000)
            wait = 1000;
        pthread_mutex_lock(&d->mu);
        if (!atomic_load(&d->stopping))
            zsd_wait_until(d, zsd_wall_ms() + (int64_t)wait);
        pthread_mutex_unlock(&d->mu);
    }
    return NULL;
}

/* ---- health ---- */

static struct zsd_bk *bk_find(struct zsd *d, const struct zstor_backend_status *r)
{
    for (size_t i = 0; i < d->nbks; i++)
        if (d->bks[i].meta == r->meta && strcmp(d->bks[i].address, r->address) == 0 &&
            strcmp(d->bks[i].ns, r->ns) == 0)
            return &d->bks[i];
    struct zsd_bk *p = realloc(d->bks, (d->nbks + 1) * sizeof(*p));
    if (!p)
        return NULL;
    d->bks = p;
    struct zsd_bk *b = &d->bks[d->nbks];
    b->address = strdup(r->address);
    b->ns = strdup(r->ns);
    b->meta = r->meta;
    b->down_since_ms = 0;
    if (!b->address || !b->ns) {
        free(b->address);
        free(b->ns);
        return NULL;
    }
    d->nbks++;
    return b;
}

static void health_pass(struct zsd *d)
{
    struct zstor_ctx *z = zsd_job(d, NULL, NULL);
    if (!z)
        return;
    struct zstor_backend_status *rows;
    size_t n;
    if (zstor_status(z, &rows, &n) < 0) {
        qs_log(QS_LOG_ERROR, "health: %s", qs_err_msg());
        zstor_ctx_free(z);
        return;
    }
    struct zstor_backend_status *copy = zsd_rows_dup(rows, n);
    int64_t now = zsd_wall_ms();
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < n; i++) {
        struct zsd_bk *b = bk_find(d, &rows[i]);
        if (!b)
            continue;
        enum zsd_state st = zsd_row_state(&rows[i]);
        enum zsd_state was = ZSD_HEALTHY;
        for (size_t j = 0; j < d->nrows; j++)
            if (d->rows[j].meta == rows[i].meta &&
                strcmp(d->rows[j].address, rows[i].address) == 0 &&
                strcmp(d->rows[j].ns, rows[i].ns) == 0)
                was = zsd_row_state(&d->rows[j]);
        if (st != was)
            qs_log(st == ZSD_HEALTHY ? QS_LOG_INFO : QS_LOG_WARN,
                   "health: %s backend %s%s%s: %s%s%s", rows[i].meta ? "meta" : "data",
                   rows[i].address, rows[i].ns[0] ? "/" : "", rows[i].ns, zsd_state_name(st),
                   st == ZSD_UNREACHABLE ? ": " : "", st == ZSD_UNREACHABLE ? rows[i].error : "");
        if (!rows[i].reachable && !b->down_since_ms)
            b->down_since_ms = now;
        else if (rows[i].reachable)
            b->down_since_ms = 0;
    }
    if (copy) {
        free(d->rows);
        d->rows = copy;
        d->nrows = n;
        d->health_ms = now;
    }
    pthread_mutex_unlock(&d->mu);
    free(rows);
    zstor_ctx_free(z);
}

static void *health_main(void *arg)
{
    struct zsd *d = arg;
    qs_log_set_job(zsd_next_job(d));
    while (!atomic_load(&d->stopping)) {
        pthread_mutex_lock(&d->mu);
        int64_t next = d->health_ms + (int64_t)d->cfg_peek->health_interval_s * 1000;
        while (!atomic_load(&d->stopping) && zsd_wall_ms() < next)
            zsd_wait_until(d, next);
        pthread_mutex_unlock(&d->mu);
        if (!atomic_load(&d->stopping))
            health_pass(d);
    }
    return NULL;
}

/* ---- start and stop ---- */

static int spawn(struct zsd_thread *t, void *(*fn)(void *), struct zsd *d)
{
    if (pthread_create(&t->t, NULL, fn, d) != 0)
        return qs_err_set(QS_EIO, "cannot start a daemon thread");
    t->started = true;
    return 0;
}

static void reap(struct zsd_thread *t)
{
    if (t->started)
        pthread_join(t->t, NULL);
    t->started = false;
}

int zsd_start(struct zsd *d)
{
    const struct zstor_config *cfg = d->cfg_peek;
    if (!cfg->queue_path)
        return qs_err_set(QS_EINVAL, "%s: the daemon needs a socket (and so a queue_path)",
                          cfg->name);
    struct zsq_opts qo = {.nosync = d->o.queue_nosync};
    int rc = zsq_open(&d->q, cfg->queue_path, &qo);
    if (rc < 0)
        return qs_err_set(rc, "store queue %s: %s", cfg->queue_path, qs_err_msg());
    if (zsq_len(d->q))
        qs_log(QS_LOG_INFO, "store queue %s: %zu files to store", cfg->queue_path, zsq_len(d->q));
    health_pass(d); /* status and placement know the backends from the start */
    d->nworkers = cfg->max_concurrent_stores;
    if (!(d->workers = calloc(d->nworkers, sizeof(*d->workers))))
        return qs_err_set(QS_ENOMEM, "out of memory");
    for (unsigned i = 0; i < d->nworkers; i++)
        if ((rc = spawn(&d->workers[i], worker_main, d)) < 0)
            return rc;
    if ((rc = spawn(&d->health, health_main, d)) < 0 ||
        (rc = spawn(&d->repair, zsd_repair_main, d)) < 0 ||
        (rc = spawn(&d->scrub, zsd_scrub_main, d)) < 0 ||
        (rc = spawn(&d->evict, zsd_evict_main, d)) < 0 ||
        (rc = spawn(&d->checkpoint, zsd_checkpoint_main, d)) < 0 || (rc = zsd_fs_start(d)) < 0)
        return rc;
    return 0;
}

void zsd_free(struct zsd *d)
{
    if (!d)
        return;
    atomic_store(&d->stopping, 1);
    atomic_store(&d->cancel, 1);
    pthread_mutex_lock(&d->mu);
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
    for (unsigned i = 0; i < d->nworkers && d->workers; i++)
        reap(&d->workers[i]);
    reap(&d->health);
    reap(&d->repair);
    reap(&d->scrub);
    reap(&d->evict);
    reap(&d->checkpoint);
    zsd_fs_stop(d);
    zsd_flush_drop(&d->flush);
    zsc_cache_free(d->ck_cache);
    free(d->workers);
    zsq_close(d->q);
    zstor_cluster_free(d->cl);
    for (size_t i = 0; i < d->nlocked; i++)
        free(d->locked[i]);
    free(d->locked);
    for (size_t i = 0; i < d->ndamaged; i++)
        free(d->damaged[i]);
    free(d->damaged);
    for (size_t i = 0; i < d->nbks; i++) {
        free(d->bks[i].address);
        free(d->bks[i].ns);
    }
    free(d->bks);
    free(d->rows);
    free(d->config_path);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* ---- status ---- */

size_t zsd_queue_snapshot(struct zsd *d, struct zsq_item **items, size_t *failing)
{
    size_t n = 0;
    *items = NULL;
    *failing = 0;
    if (zsq_list(d->q, items, &n) < 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        *failing += (*items)[i].attempts > 0;
    return n;
}

int zsd_status_rows(struct zsd *d, struct zstor_backend_status **rows, size_t *n)
{
    pthread_mutex_lock(&d->mu);
    *rows = zsd_rows_dup(d->rows, d->nrows);
    *n = d->nrows;
    pthread_mutex_unlock(&d->mu);
    if (!*rows)
        return qs_err_set(QS_ENOMEM, "out of memory");
    return 0;
}

void zsd_print_status(struct zsd *d, FILE *out, bool json)
{
    struct zsq_item *items;
    size_t failing;
    size_t nitems = zsd_queue_snapshot(d, &items, &failing);
    int64_t now = zsd_wall_ms();
    pthread_mutex_lock(&d->mu);
    unsigned st[4] = {0};
    for (size_t i = 0; i < d->nrows; i++)
        st[zsd_row_state(&d->rows[i])]++;
    if (json) {
        fprintf(out,
                ", \"daemon\": {\"pid\": %ld, \"health_age_ms\": %lld, "
                "\"backends_healthy\": %u, \"backends_low_space\": %u, "
                "\"backends_readonly\": %u, \"backends_unreachable\": %u, "
                "\"queue_length\": %zu, \"queue_failing\": %zu, "
                "\"repairs_succeeded\": %llu, \"repairs_failed\": %llu, "
                "\"repair_passes\": %llu, \"repairing\": %s, \"scrubbing\": %s, "
                "\"scrub_passes\": %llu, \"scrub_files\": %llu, \"scrub_damaged\": %llu, "
                "\"failing\": [",
                (long)getpid(), (long long)(now - d->health_ms), st[0], st[1], st[2], st[3], nitems,
                failing, (unsigned long long)d->repairs_ok, (unsigned long long)d->repairs_failed,
                (unsigned long long)d->repair_passes, d->repairing ? "true" : "false",
                d->scrubbing ? "true" : "false", (unsigned long long)d->scrub_passes,
                (unsigned long long)d->scrub_files, (unsigned long long)d->scrub_damaged);
        size_t k = 0;
        for (size_t i = 0; i < nitems; i++) {
            if (!items[i].attempts)
                continue;
            fprintf(out, "%s\n  {\"path\": ", k++ ? "," : "");
            qs_fput_json(out, items[i].path);
            fprintf(
                out, ", \"attempts\": %u, \"next_try_in_ms\": %lld, \"error\": ", items[i].attempts,
                (long long)((int64_t)items[i].next_ms > now ? (int64_t)items[i].next_ms - now : 0));
            qs_fput_json(out, items[i].last_error);
            fputc('}', out);
        }
        fprintf(out, "%s]", k ? "\n" : "");
        if (d->cfg_peek->qsfs.present)
            fprintf(out,
                    ", \"checkpoint\": {\"recovery_point_age_ms\": %lld, \"passes\": %llu, "
                    "\"failures\": %llu, \"pending\": %zu, \"running\": %s, \"error\": ",
                    d->ck_point_ms ? (long long)(now - d->ck_point_ms) : -1LL,
                    (unsigned long long)d->ck_passes, (unsigned long long)d->ck_failures,
                    d->ck_pending, d->ck_running ? "true" : "false");
        if (d->cfg_peek->qsfs.present) {
            qs_fput_json(out, d->ck_error);
            fputc('}', out);
        }
        fputc('}', out);
    } else {
        fprintf(out,
                "\ndaemon (pid %ld): backends %u healthy, %u low space, %u read-only, %u "
                "unreachable (probed %lld s ago)\n",
                (long)getpid(), st[0], st[1], st[2], st[3],
                (long long)((now - d->health_ms) / 1000));
        for (size_t i = 0; i < d->nbks; i++)
            if (d->bks[i].down_since_ms)
                fprintf(out, "  %s %s%s%s unreachable for %lld s\n",
                        d->bks[i].meta ? "meta" : "data", d->bks[i].address,
                        d->bks[i].ns[0] ? "/" : "", d->bks[i].ns,
                        (long long)((now - d->bks[i].down_since_ms) / 1000));
        fprintf(out, "queue: %zu files, %zu failing\n", nitems, failing);
        for (size_t i = 0; i < nitems; i++)
            if (items[i].attempts)
                fprintf(out, "  %s: %u attempts, next in %lld s: %s\n", items[i].path,
                        items[i].attempts,
                        (long long)((int64_t)items[i].next_ms > now
                                        ? ((int64_t)items[i].next_ms - now) / 1000
                                        : 0),
                        items[i].last_error);
        fprintf(out, "repairs: %llu done, %llu failed, %llu passes%s\n",
                (unsigned long long)d->repairs_ok, (unsigned long long)d->repairs_failed,
                (unsigned long long)d->repair_passes, d->repairing ? " (one running)" : "");
        fprintf(out, "scrub: %llu passes, %llu files verified, %llu damaged%s\n",
                (unsigned long long)d->scrub_passes, (unsigned long long)d->scrub_files,
                (unsigned long long)d->scrub_damaged, d->scrubbing ? " (one running)" : "");
        if (d->cfg_peek->qsfs.present) {
            if (d->ck_point_ms)
                fprintf(out, "checkpoint: recovery point %lld s ago",
                        (long long)((now - d->ck_point_ms) / 1000));
            else
                fprintf(out, "checkpoint: no recovery point yet");
            fprintf(out, ", %llu passes, %llu failed%s\n", (unsigned long long)d->ck_passes,
                    (unsigned long long)d->ck_failures, d->ck_running ? " (one running)" : "");
            if (d->ck_rc < 0)
                fprintf(out, "  last pass failed (%zu files not stored): %s\n", d->ck_pending,
                        d->ck_error);
        }
    }
    pthread_mutex_unlock(&d->mu);
    zsq_items_free(items, nitems);
}

void zsd_count_command(struct zsd *d, enum zsm_cmd cmd, bool ok, double seconds, uint64_t bytes)
{
    pthread_mutex_lock(&d->mu);
    if (ok)
        d->ok[cmd]++;
    else
        d->failed[cmd]++;
    zsm_latency_add(&d->latency[cmd], seconds);
    if (cmd == ZSM_STORE)
        d->bytes_stored += bytes;
    else if (cmd == ZSM_RETRIEVE)
        d->bytes_retrieved += bytes;
    pthread_mutex_unlock(&d->mu);
}
