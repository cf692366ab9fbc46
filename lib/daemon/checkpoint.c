/* The qsfs checkpoint (checkpoint.h). */
#include "daemon/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/sys.h"
#include "zdbclient/zdbclient.h"
#include "zstor/store.h"

#define PATH_CAP 4352

/* ---- the cache: path -> what the last successful store saw ---- */

struct seen {
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
};

struct zsc_cache {
    struct seen *v; /* sorted by path */
    size_t n, cap;
};

struct zsc_cache *zsc_cache_new(void)
{
    return calloc(1, sizeof(struct zsc_cache));
}

void zsc_cache_free(struct zsc_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].path);
    free(c->v);
    free(c);
}

/* Index of path, or where it would go (*found false). */
static size_t cache_find(const struct zsc_cache *c, const char *path, bool *found)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(c->v[mid].path, path);
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static bool cache_same(const struct zsc_cache *c, const char *path, const struct stat *st)
{
    bool found;
    size_t i = cache_find(c, path, &found);
    if (!found)
        return false;
    const struct seen *s = &c->v[i];
    return s->dev == st->st_dev && s->ino == st->st_ino && s->size == st->st_size &&
           s->mtime_ns == mtime_ns(st);
}

static int cache_put(struct zsc_cache *c, const char *path, const struct stat *st)
{
    bool found;
    size_t i = cache_find(c, path, &found);
    if (!found) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 64;
            struct seen *v = realloc(c->v, cap * sizeof(*v));
            if (!v)
                return qs_err_set(QS_ENOMEM, "checkpoint: out of memory");
            c->v = v;
            c->cap = cap;
        }
        char *p = strdup(path);
        if (!p)
            return qs_err_set(QS_ENOMEM, "checkpoint: out of memory");
        memmove(&c->v[i + 1], &c->v[i], (c->n - i) * sizeof(*c->v));
        c->n++;
        c->v[i].path = p;
    }
    struct seen *s = &c->v[i];
    s->dev = st->st_dev;
    s->ino = st->st_ino;
    s->size = st->st_size;
    s->mtime_ns = mtime_ns(st);
    return 0;
}

/* ---- zdb's files ---- */

bool zsc_zdb_file(const char *name, char *kind, uint32_t *id)
{
    if (!strcmp(name, "zdb-namespace")) {
        *kind = 'n';
        *id = 0;
        return true;
    }
    if ((name[0] != 'd' && name[0] != 'i') || name[1] < '0' || name[1] > '9')
        return false;
    if (name[1] == '0' && name[2])
        return false;
    uint64_t v = 0;
    for (const char *p = name + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > UINT32_MAX)
            return false;
    }
    *kind = name[0];
    *id = (uint32_t)v;
    return true;
}

bool zsc_open_data_file(const char *dir, uint32_t *top)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool any = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        char kind;
        uint32_t id;
        if (zsc_zdb_file(e->d_name, &kind, &id) && kind == 'd' && (!any || id > *top))
            *top = id, any = true;
    }
    closedir(d);
    return any;
}

struct file {
    char kind; /* 'n', 'i', 'd': the order files are taken in */
    uint32_t id;
    char path[PATH_CAP];
    struct stat st;
};

struct files {
    struct file *v;
    size_t n, cap;
};

static int files_cmp(const void *a, const void *b)
{
    const struct file *x = a, *y = b;
    static const char order[] = "nid";
    int kx = (int)(strchr(order, x->kind) - order), ky = (int)(strchr(order, y->kind) - order);
    if (kx != ky)
        return kx - ky;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The zdb files of namespace ns below base ("DIR/index" or "DIR/data"), appended. A
 * directory that does not exist is empty. */
static int list_ns(const char *base, const char *ns, struct files *out)
{
    char dir[PATH_CAP];
    snprintf(dir, sizeof(dir), "%s/%s", base, ns);
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return qs_err_sys(QS_EIO, errno, "checkpoint: cannot read %s", dir);
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char kind;
        uint32_t id;
        if (!zsc_zdb_file(e->d_name, &kind, &id))
            continue;
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 32;
            struct file *v = realloc(out->v, cap * sizeof(*v));
            if (!v) {
                rc = qs_err_set(QS_ENOMEM, "checkpoint: out of memory");
                break;
            }
            out->v = v;
            out->cap = cap;
        }
        struct file *f = &out->v[out->n];
        f->kind = kind;
        f->id = id;
        snprintf(f->path, sizeof(f->path), "%s/%s", dir, e->d_name);
        if (lstat(f->path, &f->st) < 0 || !S_ISREG(f->st.st_mode))
            continue; /* evicted meanwhile, or not a file */
        out->n++;
    }
    closedir(d);
    return rc;
}

static int list_both(const struct zstor_qsfs *q, const char *ns, struct files *out)
{
    char base[PATH_CAP];
    snprintf(base, sizeof(base), "%s/index", q->dir);
    int rc = list_ns(base, ns, out);
    snprintf(base, sizeof(base), "%s/data", q->dir);
    if (rc == 0)
        rc = list_ns(base, ns, out);
    if (rc == 0 && out->n)
        qsort(out->v, out->n, sizeof(*out->v), files_cmp);
    return rc;
}

/* ---- one store ---- */

static int store_one(struct zstor_ctx *z, const struct zsc_hooks *h, const char *path,
                     const char *key_dir, const char *name_for_key, struct zsc_result *res)
{
    char key[256];
    bool locked = false;
    if (h && h->lock && zstor_path_key(z, name_for_key, key, NULL) == 0) {
        h->lock(h->ud, key);
        locked = true;
    }
    struct zstor_store_opts so = {.key_dir = key_dir};
    struct zstor_store_result sr = {0};
    int rc = zstor_store(z, path, &so, &sr);
    if (locked)
        h->unlock(h->ud, key);
    res->stored++;
    res->bytes += sr.bytes;
    if (rc < 0)
        snprintf(res->failed, sizeof(res->failed), "%s", name_for_key);
    return rc;
}

/* Copies src to dst (a new file), at most what src holds now. */
static int copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return qs_err_sys(QS_EIO, errno, "checkpoint: cannot open %s", src);
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        return qs_err_sys(QS_EIO, e, "checkpoint: cannot create %s", dst);
    }
    static _Thread_local char buf[1 << 16];
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = qs_err_sys(QS_EIO, errno, "checkpoint: cannot read %s", src);
            break;
        }
        if (n == 0)
            break;
        if ((rc = qs_write_all(out, buf, (size_t)n)) < 0) {
            rc = qs_err_set(QS_EIO, "checkpoint: cannot write %s: %s", dst, qs_err_msg());
            break;
        }
    }
    close(in);
    if (close(out) != 0 && rc == 0)
        rc = qs_err_sys(QS_EIO, errno, "checkpoint: cannot write %s", dst);
    return rc;
}

static int mkdirs(const char *path)
{
    char p[PATH_CAP];
    snprintf(p, sizeof(p), "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
            return qs_err_sys(QS_EIO, errno, "checkpoint: cannot create %s", p);
        *s = '/';
    }
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return qs_err_sys(QS_EIO, errno, "checkpoint: cannot create %s", p);
    return 0;
}

/* ---- rotation on demand ---- */

/* The open (highest) data file of ns is larger than limit bytes: the local zdb closes it
 * (NSJUMP), so that the pass uploads it once, as a closed file, instead of again and again
 * while it grows. A zdb that does not answer is not an error: the pass stores the file as
 * it is. */
static void rotate_if_large(const struct zstor_qsfs *q, const char *ns)
{
    if (!q->checkpoint_rotate_mib)
        return;
    char dir[PATH_CAP];
    snprintf(dir, sizeof(dir), "%s/data/%s", q->dir, ns);
    uint32_t top = 0;
    bool any = zsc_open_data_file(dir, &top);
    char path[PATH_CAP + 16];
    snprintf(path, sizeof(path), "%s/d%u", dir, top);
    struct stat st;
    if (!any || stat(path, &st) < 0 ||
        (uint64_t)st.st_size <= (uint64_t)q->checkpoint_rotate_mib << 20)
        return;
    char addr[PATH_CAP + 16];
    snprintf(addr, sizeof(addr), "unix://%s/zdb.sock", q->dir);
    struct qs_zdb_opts o;
    qs_zdb_opts_default(&o);
    o.address = addr;
    o.ns = ns;
    o.attempts = 1;
    o.request_timeout_ms = 5000;
    struct qs_zdb *c = NULL;
    struct qs_zdb_reply *r = NULL;
    const char *argv[] = {"NSJUMP"};
    size_t lens[] = {6};
    if (qs_zdb_new(&c, &o) == 0 && qs_zdb_command(c, 1, argv, lens, &r) == 0 &&
        r->type == QS_ZDB_R_STATUS)
        qs_log(QS_LOG_INFO, "checkpoint: %s: d%u holds %lld MiB, closed it (NSJUMP)", ns, top,
               (long long)(st.st_size >> 20));
    else
        qs_log(QS_LOG_WARN, "checkpoint: %s: NSJUMP on the local zdb failed: %s", ns,
               r && r->str ? r->str : qs_err_msg());
    qs_zdb_reply_free(r);
    qs_zdb_free(c);
}

/* ---- the pass ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int zsc_run(struct zstor_ctx *z, const struct zstor_qsfs *q, struct zsc_cache *cache,
            const struct zsc_hooks *h, struct zsc_result *res)
{
    memset(res, 0, sizeof(*res));
    struct files meta = {0}, data = {0};
    struct file *staged = NULL;
    size_t nstaged = 0;
    char stage[PATH_CAP];
    snprintf(stage, sizeof(stage), "%s/checkpoint", q->dir);
    rotate_if_large(q, ZSC_META_NS);
    rotate_if_large(q, ZSC_DATA_NS);
    int rc = list_both(q, ZSC_META_NS, &meta);
    if (rc < 0)
        goto out;
    /* 1. the snapshot of the metadata namespace: the recovery point */
    res->point_ms = wall_ms();
    if (meta.n && !(staged = calloc(meta.n, sizeof(*staged)))) {
        rc = qs_err_set(QS_ENOMEM, "checkpoint: out of memory");
        goto out;
    }
    for (size_t i = 0; i < meta.n; i++) {
        struct file *f = &meta.v[i];
        res->checked++;
        if (cache_same(cache, f->path, &f->st))
            continue;
        /* f->path is DIR/{index,data}/zdbfs-meta/NAME: the copy goes to the same place
         * below the stage directory */
        const char *rel = f->path + strlen(q->dir);
        struct file *s = &staged[nstaged];
        *s = *f;
        char sdir[PATH_CAP];
        snprintf(s->path, sizeof(s->path), "%s%s", stage, rel);
        snprintf(sdir, sizeof(sdir), "%s", s->path);
        *strrchr(sdir, '/') = '\0';
        if ((rc = mkdirs(sdir)) < 0 || (rc = copy_file(f->path, s->path)) < 0) {
            snprintf(res->failed, sizeof(res->failed), "%s", f->path);
            goto out;
        }
        nstaged++;
    }
    /* 2. the data namespace, up to now (a superset of what the snapshot points at) */
    if ((rc = list_both(q, ZSC_DATA_NS, &data)) < 0)
        goto out;
    for (size_t i = 0; i < data.n; i++) {
        struct file *f = &data.v[i];
        res->checked++;
        if (cache_same(cache, f->path, &f->st))
            continue;
        struct stat before;
        if (stat(f->path, &before) < 0)
            continue; /* evicted since the listing: it was stored */
        if ((rc = store_one(z, h, f->path, NULL, f->path, res)) < 0) {
            res->pending = data.n - i + nstaged;
            goto out;
        }
        if ((rc = cache_put(cache, f->path, &before)) < 0)
            goto out;
    }
    /* 3. the snapshot, under the original names */
    for (size_t i = 0; i < nstaged; i++) {
        struct file *s = &staged[i];
        const char *rel = s->path + strlen(stage);
        char orig[PATH_CAP], kdir[PATH_CAP];
        snprintf(orig, sizeof(orig), "%s%s", q->dir, rel);
        snprintf(kdir, sizeof(kdir), "%s", orig);
        *strrchr(kdir, '/') = '\0';
        if ((rc = store_one(z, h, s->path, kdir, orig, res)) < 0) {
            res->pending = nstaged - i;
            goto out;
        }
        (void)unlink(s->path);
        if ((rc = cache_put(cache, orig, &s->st)) < 0)
            goto out;
    }
out:
    if (rc < 0 && res->failed[0]) {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        rc = qs_err_set(rc, "checkpoint: %s: %s", res->failed, msg);
    }
    free(staged);
    free(meta.v);
    free(data.v);
    return rc;
}
