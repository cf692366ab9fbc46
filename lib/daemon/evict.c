/* Least-recently-accessed eviction of stored files (evict.h). */
#include "daemon/evict.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <unistd.h>

#include "daemon/checkpoint.h"
#include "zstor/check.h"

#define DEPTH_MAX 16

struct file {
    char *path;
    struct stat st;
};

struct list {
    struct file *f;
    size_t n, cap;
    uint64_t total;
};

static int add(struct list *l, const char *path, const struct stat *st)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct file *p = realloc(l->f, cap * sizeof(*p));
        if (!p)
            return qs_err_set(QS_ENOMEM, "out of memory");
        l->f = p;
        l->cap = cap;
    }
    if (!(l->f[l->n].path = strdup(path)))
        return qs_err_set(QS_ENOMEM, "out of memory");
    l->f[l->n++].st = *st;
    l->total += (uint64_t)st->st_size;
    return 0;
}

static int walk(struct list *l, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (depth > 0 && errno == ENOENT)
            return 0; /* removed meanwhile */
        return qs_err_sys(QS_EIO, errno, "cannot read directory %s", dir);
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[4096];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode))
            rc = add(l, path, &st);
        else if (S_ISDIR(st.st_mode) && depth < DEPTH_MAX)
            rc = walk(l, path, depth + 1);
    }
    closedir(d);
    return rc;
}

static int ts_cmp(const struct timespec *a, const struct timespec *b)
{
    if (a->tv_sec != b->tv_sec)
        return a->tv_sec < b->tv_sec ? -1 : 1;
    if (a->tv_nsec != b->tv_nsec)
        return a->tv_nsec < b->tv_nsec ? -1 : 1;
    return 0;
}

static int by_access(const void *pa, const void *pb)
{
    const struct file *a = pa, *b = pb;
    int c = ts_cmp(&a->st.st_atim, &b->st.st_atim);
    if (!c)
        c = ts_cmp(&a->st.st_mtim, &b->st.st_mtim);
    return c ? c : strcmp(a->path, b->path);
}

static bool unchanged(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           ts_cmp(&a->st_mtim, &b->st_mtim) == 0;
}

int zse_run(const char *dir, uint64_t limit, zse_safe_fn safe, void *ud, struct zse_result *res)
{
    memset(res, 0, sizeof(*res));
    struct list l = {0};
    int rc = walk(&l, dir, 0);
    res->files = l.n;
    res->total_before = res->total_after = l.total;
    if (rc == 0 && l.total > limit) {
        qsort(l.f, l.n, sizeof(*l.f), by_access);
        uint64_t total = l.total;
        for (size_t i = 0; i < l.n && total > limit && rc == 0; i++) {
            bool ok = false;
            if ((rc = safe(ud, l.f[i].path, &l.f[i].st, &ok)) < 0)
                break;
            rc = 0;
            struct stat now;
            if (!ok || lstat(l.f[i].path, &now) != 0 || !unchanged(&now, &l.f[i].st) ||
                unlink(l.f[i].path) != 0) {
                res->skipped++;
                continue;
            }
            total -= (uint64_t)l.f[i].st.st_size;
            res->freed += (uint64_t)l.f[i].st.st_size;
            res->deleted++;
        }
        res->total_after = total;
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.f[i].path);
    free(l.f);
    return rc;
}

/* ---- the daemon's rule ---- */

/* BLAKE2b-128 of the file at path. */
static int local_sum(const char *path, uint8_t sum[16])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qs_err_set(QS_EIO, "%s: %s", path, strerror(errno));
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 16);
    static _Thread_local uint8_t buf[1 << 16];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int rc = qs_err_set(QS_EIO, "%s: %s", path, strerror(errno));
            close(fd);
            return rc;
        }
        if (r == 0)
            break;
        crypto_generichash_update(&st, buf, (size_t)r);
    }
    close(fd);
    crypto_generichash_final(&st, sum, 16);
    return 0;
}

/* A zdb data file d<N> with no d<M>, M > N, beside it is the one zdb appends to: never
 * evicted, even when a checkpoint stored it and nothing was written since. */
static bool zdb_active_data(const char *path)
{
    const char *base = strrchr(path, '/');
    char kind;
    uint32_t id;
    if (!base || !zsc_zdb_file(base + 1, &kind, &id) || kind != 'd')
        return false;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%.*s", (int)(base - path), path);
    uint32_t top = 0;
    /* cannot tell: keep it */
    bool active = !zsc_open_data_file(dir, &top) || top <= id;
    return active;
}

int zse_safe_stored(void *z, const char *path, const struct stat *st, bool *safe)
{
    (void)st;
    *safe = false;
    if (zdb_active_data(path))
        return 0;
    uint8_t stored[16], local[16];
    bool found;
    int rc = zstor_check(z, path, stored, &found);
    if (rc == QS_EINVAL)
        return 0; /* outside root: never stored */
    if (rc < 0)
        return rc; /* the meta backends cannot say: stop the pass */
    if (!found || local_sum(path, local) < 0)
        return 0;
    *safe = memcmp(stored, local, 16) == 0;
    return 0;
}
