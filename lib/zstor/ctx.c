/* The zstor context: backend table, health probes, small shared helpers. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "meta/key.h"
#include "util/log.h"
#include "zstor/private.h"

void zstor_ctx_opts_default(struct zstor_ctx_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->workers = -1;
}

void zs_hex(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- parallel helper ---- */

struct par {
    void (*fn)(void *ud, size_t i);
    void *ud;
    size_t i;
    uint64_t job; /* the creator's log job */
};

static void *par_main(void *arg)
{
    struct par *p = arg;
    qs_log_set_job(p->job);
    p->fn(p->ud, p->i);
    return NULL;
}

void zs_par(size_t n, void (*fn)(void *ud, size_t i), void *ud)
{
    if (n == 0)
        return;
    if (n == 1) {
        fn(ud, 0);
        return;
    }
    struct par *p = calloc(n, sizeof(*p));
    pthread_t *t = calloc(n, sizeof(*t));
    bool *started = calloc(n, sizeof(*started));
    if (!p || !t || !started) {
        for (size_t i = 0; i < n; i++)
            fn(ud, i);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        p[i] = (struct par){fn, ud, i, qs_log_job()};
        started[i] = pthread_create(&t[i], NULL, par_main, &p[i]) == 0;
        if (!started[i])
            fn(ud, i);
    }
    for (size_t i = 0; i < n; i++)
        if (started[i])
            pthread_join(t[i], NULL);
out:
    free(p);
    free(t);
    free(started);
}

/* ---- backends ---- */

bool zs_transport_error(int rc)
{
    return rc == QS_EIO || rc == QS_ETIMEOUT || rc == QS_EPROTO;
}

int zs_interrupted(const struct zstor_ctx *z)
{
    if (z->o.cancel && atomic_load(z->o.cancel))
        return qs_err_set(QS_EAGAIN, "interrupted");
    return 0;
}

bool zs_bk_down(const struct zs_bk *k)
{
    return k->down_until && qs_now_ms() < k->down_until;
}

void zs_bk_mark_down(struct zs_bk *k, int rc, const char *why)
{
    if (!zs_transport_error(rc))
        return;
    k->down_until = qs_now_ms() + ZS_DOWN_MS;
    snprintf(k->down_why, sizeof(k->down_why), "%s", why);
    zs_health_publish(k); /* every job of the cluster skips it too */
}

void zs_bk_refuse_writes(struct zs_bk *k, int rc, const char *why)
{
    if (zs_transport_error(rc) || rc == QS_ENOMEM || rc == QS_EINVAL || rc == QS_EAGAIN)
        return; /* down already, or not the backend's doing */
    k->refuse_until = qs_now_ms() + ZS_DOWN_MS;
    snprintf(k->refuse_why, sizeof(k->refuse_why), "%s", why);
}

bool zs_bk_refusing(const struct zs_bk *k)
{
    return k->refuse_until && qs_now_ms() < k->refuse_until;
}

const char *zs_bk_name(const struct zs_bk *k)
{
    return qs_backend_name(k->be);
}

enum zstor_meta_keykind zs_bk_keykind(const struct zs_bk *k)
{
    return k->is_dir ? ZSTOR_META_KEY_BYTES : ZSTOR_META_KEY_SEQ;
}

const char *zs_bk_readonly(const struct zs_bk *k)
{
    if (k->is_dir || !k->probed || k->probe_rc != 0 || !k->h.have_nsinfo)
        return NULL;
    if (k->h.nsinfo.locked)
        return "read-only: the namespace is locked";
    if (k->h.nsinfo.password && !(k->cfg && k->cfg->password && *k->cfg->password))
        return "read-only: the namespace has a password and the config gives none";
    return NULL;
}

uint64_t zs_bk_free(const struct zs_bk *k)
{
    if (!k->probed || k->probe_rc != 0 || zs_bk_readonly(k))
        return 0;
    uint64_t f = k->h.free_bytes;
    if (f == QS_BACKEND_UNKNOWN)
        return QS_BACKEND_UNKNOWN;
    return f > k->written ? f - k->written : 0;
}

static bool path_missing(const char *path)
{
    struct stat st;
    return stat(path, &st) < 0 && errno == ENOENT;
}

static bool dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return false;
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)) != NULL)
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

/* A share directory is created by a command that writes only where that cannot hide a
 * lost disk: an empty directory someone made for it, or a missing one when no share
 * directory of the config exists yet (a first run). A single missing one among existing
 * ones is a disk that went away: it stays unreachable. */
static bool may_create(const struct zstor_ctx *z, const char *path)
{
    if (!path_missing(path))
        return dir_is_empty(path);
    const struct zstor_config *cfg = z->cfg;
    for (size_t i = 0; i < cfg->meta.nbackends; i++)
        if (cfg->meta.backends[i].kind == ZSTOR_ADDR_DIR &&
            !path_missing(cfg->meta.backends[i].path))
            return false;
    for (size_t g = 0; g < cfg->ngroups; g++)
        for (size_t j = 0; j < cfg->groups[g].nbackends; j++) {
            const struct zstor_backend *b = &cfg->groups[g].backends[j];
            if (b->kind == ZSTOR_ADDR_DIR && !path_missing(b->path))
                return false;
        }
    return true;
}

static int bk_open(struct zs_bk *k, const struct zstor_ctx *z, const char *address, const char *ns,
                   const char *password, enum qs_backend_role role)
{
    const struct zstor_config *cfg = z->cfg;
    k->group = -1;
    k->is_dir = strncmp(address, "dir://", 6) == 0;
    /* zdb's default namespace is recorded as "", as the record format says */
    const char *rec_ns = k->is_dir || !ns || strcmp(ns, ZSTOR_DEFAULT_NS) == 0 ? "" : ns;
    k->address = strdup(address);
    k->ns = strdup(rec_ns);
    if (!k->address || !k->ns)
        return qs_err_set(QS_ENOMEM, "out of memory");
    struct qs_backend_opts o;
    qs_backend_opts_default(&o);
    o.address = address;
    o.role = role;
    o.ns = *rec_ns ? rec_ns : NULL;
    o.password = password;
    o.connect_timeout_ms = cfg->connect_timeout_ms;
    o.request_timeout_ms = cfg->request_timeout_ms;
    o.attempts = cfg->retries + 1;
    o.backoff_ms = cfg->retry_backoff_ms;
    o.dir_nosync = z->o.dir_nosync;
    o.dir_nocreate = !(z->o.dir_create && k->is_dir && may_create(z, address + 6));
    k->cl = z->cl;
    if (z->cl && !k->is_dir)
        o.pool = zs_cluster_pool(z->cl, &o); /* warm connections shared by the jobs */
    int rc = qs_backend_open(&k->be, &o);
    o.pool = NULL; /* probes keep their own quick connection */
    if (rc == 0 && !k->is_dir) {
        /* probes: one quick retry, and an answer within the connect timeout, so that a
         * server that accepts but never answers (hung, stopped) costs seconds, not the
         * request timeout of real transfers twice */
        o.attempts = 2;
        o.backoff_ms = 50;
        if (o.request_timeout_ms > cfg->connect_timeout_ms)
            o.request_timeout_ms = cfg->connect_timeout_ms;
        rc = qs_backend_open(&k->probe_be, &o);
    }
    /* Ctrl-C reaches the network: a request in flight stops within 50 ms */
    if (rc == 0) {
        qs_backend_set_cancel(k->be, z->o.cancel);
        qs_backend_set_cancel(k->probe_be, z->o.cancel);
    }
    return rc;
}

void zs_net_cancel(struct zstor_ctx *z, bool on)
{
    const atomic_int *c = on ? z->o.cancel : NULL;
    for (size_t i = 0; i < z->nmeta; i++)
        qs_backend_set_cancel(z->meta[i].be, c);
    for (size_t i = 0; i < z->ndata; i++)
        qs_backend_set_cancel(z->data[i]->be, c);
}

static void bk_free(struct zs_bk *k)
{
    if (!k)
        return;
    qs_backend_free(k->be);
    qs_backend_free(k->probe_be);
    free(k->address);
    free(k->ns);
}

static int add_data(struct zstor_ctx *z, struct zs_bk *k)
{
    if (z->ndata == z->capdata) {
        size_t cap = z->capdata ? 2 * z->capdata : 16;
        struct zs_bk **d = realloc(z->data, cap * sizeof(*d));
        if (!d)
            return qs_err_set(QS_ENOMEM, "out of memory");
        z->data = d;
        z->capdata = cap;
    }
    z->data[z->ndata++] = k;
    return 0;
}

int zstor_ctx_new(struct zstor_ctx **out, const struct zstor_config *cfg,
                  const struct zstor_ctx_opts *o)
{
    *out = NULL;
    struct zstor_ctx *z = calloc(1, sizeof(*z));
    if (!z)
        return qs_err_set(QS_ENOMEM, "out of memory");
    z->cfg = cfg;
    if (o)
        z->o = *o;
    else
        zstor_ctx_opts_default(&z->o);
    int rc = zs_ctx_build(z);
    if (rc < 0) {
        zstor_ctx_free(z);
        return rc;
    }
    *out = z;
    return 0;
}

int zs_ctx_build(struct zstor_ctx *z)
{
    const struct zstor_config *cfg = z->cfg;
    int rc = 0;
    z->meta = calloc(cfg->meta.nbackends ? cfg->meta.nbackends : 1, sizeof(*z->meta));
    if (!z->meta) {
        rc = qs_err_set(QS_ENOMEM, "out of memory");
        goto fail;
    }
    z->nmeta = cfg->meta.nbackends;
    for (size_t i = 0; i < cfg->meta.nbackends; i++) {
        const struct zstor_backend *b = &cfg->meta.backends[i];
        z->meta[i].cfg = b;
        if ((rc = bk_open(&z->meta[i], z, b->address, b->ns, b->password, QS_BACKEND_META)) < 0)
            goto fail;
    }
    for (size_t g = 0; g < cfg->ngroups; g++) {
        for (size_t j = 0; j < cfg->groups[g].nbackends; j++) {
            const struct zstor_backend *b = &cfg->groups[g].backends[j];
            struct zs_bk *k = calloc(1, sizeof(*k));
            if (!k) {
                rc = qs_err_set(QS_ENOMEM, "out of memory");
                goto fail;
            }
            if ((rc = add_data(z, k)) < 0) {
                free(k);
                goto fail;
            }
            k->cfg = b;
            if ((rc = bk_open(k, z, b->address, b->ns, b->password, QS_BACKEND_DATA)) < 0)
                goto fail;
            k->group = (int)g;
        }
    }
    z->ncfg = z->ndata;
    if (!z->pool) {
        int workers = z->o.workers < 0 ? (int)qs_codec_default_workers() : z->o.workers;
        rc = qs_pool_new(&z->pool, (unsigned)workers);
    }
fail:
    return rc;
}

const struct zstor_config *zstor_ctx_config(const struct zstor_ctx *z)
{
    return z->cfg;
}

void zstor_ctx_free(struct zstor_ctx *z)
{
    if (!z)
        return;
    if (!z->cl)
        qs_pool_free(z->pool); /* a job's pool is its cluster's */
    for (size_t i = 0; i < z->nmeta; i++)
        bk_free(&z->meta[i]);
    free(z->meta);
    for (size_t i = 0; i < z->ndata; i++) {
        bk_free(z->data[i]);
        free(z->data[i]);
    }
    free(z->data);
    zs_gen_release(z);
    free(z);
}

static bool same_ns(const struct zs_bk *k, const char *ns)
{
    if (k->is_dir)
        return true;
    if (!ns || strcmp(ns, ZSTOR_DEFAULT_NS) == 0)
        ns = "";
    return strcmp(k->ns, ns) == 0;
}

int zs_data_lookup(struct zstor_ctx *z, const char *address, const char *ns)
{
    for (size_t i = 0; i < z->ndata; i++)
        if (strcmp(z->data[i]->address, address) == 0 && same_ns(z->data[i], ns))
            return (int)i;
    /* not in the config (removed since the store): reachable without a password only */
    struct zs_bk *k = calloc(1, sizeof(*k));
    if (!k) {
        qs_err_set(QS_ENOMEM, "out of memory");
        return -1;
    }
    if (bk_open(k, z, address, ns, NULL, QS_BACKEND_DATA) < 0 || add_data(z, k) < 0) {
        bk_free(k);
        free(k);
        return -1;
    }
    return (int)z->ndata - 1;
}

/* ---- probes ---- */

struct probe_job {
    struct zs_bk **bks;
    bool force;
};

static void probe_one(void *ud, size_t i)
{
    struct probe_job *j = ud;
    struct zs_bk *k = j->bks[i];
    if (!j->force && k->probed && qs_now_ms() - k->probe_ms < ZS_PROBE_TTL_MS)
        return;
    if (zs_health_take(k, j->force))
        return; /* another job of the cluster probed it a moment ago */
    k->probe_rc = qs_backend_probe(k->probe_be ? k->probe_be : k->be, &k->h);
    k->probe_ms = qs_now_ms();
    k->probed = true;
    k->written = 0;
    if (k->probe_rc == 0)
        k->down_until = 0;
    else if (zs_transport_error(k->probe_rc))
        zs_bk_mark_down(k, k->probe_rc, k->h.error);
    zs_health_publish(k);
    qs_log(QS_LOG_DEBUG, "probe %s: %s", zs_bk_name(k), k->probe_rc ? k->h.error : "ok");
}

void zs_probe(struct zs_bk **bks, size_t n, bool force)
{
    struct probe_job j = {bks, force};
    zs_par(n, probe_one, &j);
}

void zs_probe_data(struct zstor_ctx *z, bool force)
{
    zs_probe(z->data, z->ncfg, force);
}

static void *bg_main(void *arg)
{
    struct zs_bg *bg = arg;
    qs_log_set_job(bg->job);
    zs_probe_data(bg->z, false);
    return NULL;
}

void zs_bg_probe_start(struct zs_bg *bg, struct zstor_ctx *z)
{
    bg->z = z;
    bg->job = qs_log_job();
    bg->started = pthread_create(&bg->t, NULL, bg_main, bg) == 0;
}

void zs_bg_probe_wait(struct zs_bg *bg)
{
    if (bg->started)
        pthread_join(bg->t, NULL);
    bg->started = false;
}

/* ---- paths ---- */

/* path made absolute against the working directory: *abs is malloc'ed when it had to be,
 * else NULL (and *out is path itself). */
static int absolute(const char *path, const char **out, char **abs)
{
    *abs = NULL;
    *out = path;
    if (!path || !*path)
        return qs_err_set(QS_EINVAL, "empty path");
    if (path[0] == '/')
        return 0;
    char cwd[4096];
    if (!getcwd(cwd, sizeof(cwd)))
        return qs_err_sys(QS_EIO, errno, "getcwd");
    if (asprintf(abs, "%s/%s", cwd, path) < 0) {
        *abs = NULL;
        return qs_err_set(QS_ENOMEM, "out of memory");
    }
    *out = *abs;
    return 0;
}

int zstor_path_key(const struct zstor_ctx *z, const char *path, char key[256], char **rel)
{
    if (rel)
        *rel = NULL;
    char *abs, *r = NULL;
    int rc = absolute(path, &path, &abs);
    if (rc == 0)
        rc = zstor_meta_path_rel(z->cfg->root, path, &r);
    if (rc == 0)
        rc = zstor_meta_key_rel(z->cfg->meta.prefix, r, key);
    free(abs);
    if (rc == 0 && rel)
        *rel = r;
    else
        free(r);
    return rc;
}

/* True when path (absolute) is root itself. */
static bool is_root(const char *root, const char *path)
{
    char *cp = NULL, *cr = NULL;
    bool same = root && *root && zstor_meta_path_clean(path, &cp) == 0 &&
                zstor_meta_path_clean(root, &cr) == 0 && strcmp(cp, cr) == 0;
    free(cp);
    free(cr);
    return same;
}

int zstor_path_below(const struct zstor_ctx *z, const char *path, char **below)
{
    *below = NULL;
    char *abs, *r = NULL;
    int rc = absolute(path, &path, &abs);
    if (rc == 0 && is_root(z->cfg->root, path)) {
        if (!(*below = strdup("")))
            rc = qs_err_set(QS_ENOMEM, "out of memory");
    } else if (rc == 0 && (rc = zstor_meta_path_rel(z->cfg->root, path, &r)) == 0) {
        size_t n = strlen(r);
        if (asprintf(below, "%s%s", r, n && r[n - 1] == '/' ? "" : "/") < 0) {
            *below = NULL;
            rc = qs_err_set(QS_ENOMEM, "out of memory");
        }
    }
    free(r);
    free(abs);
    return rc;
}

/* ---- output files ---- */

int zs_mkdir_parents(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return qs_err_set(QS_ENOMEM, "out of memory");
    char *slash = strrchr(p, '/');
    int rc = 0;
    if (slash && slash != p) {
        *slash = '\0';
        for (char *s = p + 1; rc == 0; s++) {
            if (*s != '/' && *s != '\0')
                continue;
            char keep = *s;
            *s = '\0';
            if (mkdir(p, 0755) < 0 && errno != EEXIST)
                rc = qs_err_sys(QS_EIO, errno, "mkdir %s", p);
            *s = keep;
            if (keep == '\0')
                break;
        }
    }
    free(p);
    return rc;
}
