#include "store.h"

#include "store/ns_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/nsfile.h"
#include "util/log.h"

static int mkdir_p(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(tmp))
        return qs_err_set(QS_EINVAL, "bad directory path '%s'", path);
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return qs_err_sys(QS_EIO, errno, "create directory %s", tmp);
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return qs_err_sys(QS_EIO, errno, "create directory %s", tmp);
    return 0;
}

static int take_lock(const char *dir, int *fd_out)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/.lockfile", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return qs_err_sys(QS_EIO, errno, "open %s", path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return qs_err_set(QS_EBUSY, "%s is locked: another server uses this directory", dir);
        return qs_err_sys(QS_EIO, e, "lock %s", path);
    }
    *fd_out = fd;
    return 0;
}

static int add_ns(struct zdb_store *st, struct zdb_ns *ns)
{
    if (st->nns == st->nscap) {
        size_t cap = st->nscap ? st->nscap * 2 : 8;
        struct zdb_ns **p = realloc(st->ns, cap * sizeof(*p));
        if (!p)
            return qs_err_set(QS_ENOMEM, "namespace list");
        st->ns = p;
        st->nscap = cap;
    }
    st->ns[st->nns++] = ns;
    return 0;
}

struct zdb_ns *zdb_store_find(struct zdb_store *st, const char *name, size_t len)
{
    for (size_t i = 0; i < st->nns; i++)
        if (strlen(st->ns[i]->name) == len && memcmp(st->ns[i]->name, name, len) == 0)
            return st->ns[i];
    return NULL;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int load_all(struct zdb_store *st)
{
    DIR *d = opendir(st->index_root);
    if (!d)
        return qs_err_sys(QS_EIO, errno, "open directory %s", st->index_root);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        /* NSNEW refuses only "." and "..": a name like ".w" is a namespace too. */
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char p[4096];
        struct stat sb;
        snprintf(p, sizeof(p), "%s/%s/zdb-namespace", st->index_root, de->d_name);
        if (stat(p, &sb) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **q = realloc(names, cap * sizeof(*q));
            if (!q) {
                rc = qs_err_set(QS_ENOMEM, "namespace names");
                break;
            }
            names = q;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = qs_err_set(QS_ENOMEM, "namespace names");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0 && n)
        qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct zdb_ns *ns;
        rc = zdb_ns_open(st, names[i], false, &ns);
        if (rc == 0 && (rc = add_ns(st, ns)) < 0)
            zdb_ns_close(ns);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int zdb_store_open(struct zdb_store **out, const struct zdb_store_opts *opts)
{
    *out = NULL;
    struct zdb_store *st = calloc(1, sizeof(*st));
    if (!st)
        return qs_err_set(QS_ENOMEM, "store allocation");
    st->opts = *opts;
    st->idx_lock_fd = st->dat_lock_fd = -1;
    int rc;
    if ((rc = mkdir_p(opts->index_dir)) < 0 || (rc = mkdir_p(opts->data_dir)) < 0)
        goto fail;
    st->index_root = realpath(opts->index_dir, NULL);
    st->data_root = realpath(opts->data_dir, NULL);
    if (!st->index_root || !st->data_root) {
        rc = qs_err_sys(QS_EIO, errno, "resolve data/index directories");
        goto fail;
    }
    if (strcmp(st->index_root, st->data_root) == 0) {
        rc = qs_err_set(QS_EINVAL, "index and data directories must differ (%s)", st->index_root);
        goto fail;
    }
    if ((rc = take_lock(st->index_root, &st->idx_lock_fd)) < 0 ||
        (rc = take_lock(st->data_root, &st->dat_lock_fd)) < 0)
        goto fail;
    if (opts->events.loading)
        opts->events.loading(opts->events.ud, st->index_root, st->data_root);
    if ((rc = load_all(st)) < 0)
        goto fail;
    struct zdb_ns *def = zdb_store_find(st, "default", 7);
    if (!def) {
        if ((rc = zdb_ns_open(st, "default", true, &def)) < 0)
            goto fail;
        if ((rc = add_ns(st, def)) < 0) {
            zdb_ns_close(def);
            goto fail;
        }
    }
    /* The default namespace always follows the command line. */
    def->public_ = true;
    def->worm = false;
    def->maxsize = opts->maxsize;
    snprintf(def->password, sizeof(def->password), "%s",
             opts->protect_password ? opts->protect_password : "");
    if ((rc = zdb_ns_save(def)) < 0)
        goto fail;
    *out = st;
    return 0;
fail:
    zdb_store_close(st);
    return rc;
}

void zdb_store_close(struct zdb_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->nns; i++)
        zdb_ns_close(st->ns[i]);
    free(st->ns);
    if (st->idx_lock_fd >= 0)
        close(st->idx_lock_fd);
    if (st->dat_lock_fd >= 0)
        close(st->dat_lock_fd);
    free(st->index_root);
    free(st->data_root);
    free(st);
}

int zdb_store_create(struct zdb_store *st, const char *name, struct zdb_ns **out)
{
    struct zdb_ns *ns;
    int rc = zdb_ns_open(st, name, true, &ns);
    if (rc < 0)
        return rc;
    if ((rc = add_ns(st, ns)) < 0) {
        zdb_ns_close(ns);
        return rc;
    }
    *out = ns;
    return 0;
}

static void unlink_ns(struct zdb_store *st, struct zdb_ns *ns)
{
    for (size_t i = 0; i < st->nns; i++) {
        if (st->ns[i] == ns) {
            memmove(st->ns + i, st->ns + i + 1, (st->nns - i - 1) * sizeof(*st->ns));
            st->nns--;
            return;
        }
    }
}

int zdb_store_remove(struct zdb_store *st, struct zdb_ns *ns)
{
    int rc = zdb_ns_remove_files(ns);
    unlink_ns(st, ns);
    zdb_ns_close(ns);
    return rc;
}

int zdb_store_reload(struct zdb_store *st, struct zdb_ns *ns)
{
    /* What was written must be on disk before the files are read back; if it cannot be,
     * the reload is refused and (in a batch) those writes are rolled back. */
    int rc = zdb_ns_sync(ns);
    if (rc < 0) {
        if (ns->batch_touched)
            ns->batch_failed = true;
        return qs_err_set(rc, "namespace %s: sync before reload failed: %s", ns->name,
                          qs_err_msg());
    }
    zdb_batch_rebase(ns);
    if ((rc = zdb_ns_reload_in_place(ns)) < 0)
        return qs_err_set(rc, "namespace %s: reload failed, it keeps serving as before: %s",
                          ns->name, qs_err_msg());
    if (st->opts.events.reloaded)
        st->opts.events.reloaded(st->opts.events.ud, ns);
    return 0;
}

void zdb_store_batch_begin(struct zdb_store *st)
{
    if (st->batch_depth++ == 0) {
        st->naborted = 0;
        st->aborted_overflow = false;
    }
}

int zdb_store_batch_end(struct zdb_store *st)
{
    if (st->batch_depth > 0)
        st->batch_depth--;
    if (st->batch_depth > 0)
        return 0;
    int rc = 0;
    for (size_t i = 0; i < st->nns; i++) {
        struct zdb_ns *ns = st->ns[i];
        bool pending = ns->wdat.len || ns->widx.len || ns->wpatch.len || ns->sync_pending;
        if (!pending && !ns->batch_failed) {
            zdb_batch_rebase(ns);
            continue;
        }
        int r = 0;
        if (!ns->batch_failed)
            r = ns->sync_pending ? zdb_ns_sync(ns) : zdb_nsfile_flush(ns);
        else
            r = qs_err_set(ZDB_EWRITE_DATA, "a write failed half way");
        if (r < 0) {
            /* a failed fsync is not retried: what it covered is not trusted, cut it off */
            int code = ns->nospace ? ZDB_EDISKFULL : ZDB_EWRITE_DATA;
            if (ns->batch_touched)
                r = zdb_batch_abort(ns, code);
            qs_log(QS_LOG_ERROR, "namespace %s: %s", ns->name, qs_err_msg());
            if (!rc)
                rc = r;
        }
        zdb_batch_rebase(ns);
    }
    return rc;
}
