/* zstor list (list.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meta/key.h"
#include "util/log.h"
#include "zstor/list.h"
#include "zstor/private.h"

struct names {
    char **v;
    size_t n, cap;
    int rc;
    char err[300];
};

static int add_name(void *ud, const char *name, size_t len)
{
    struct names *ns = ud;
    if (memchr(name, '\0', len))
        return 0;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? 2 * ns->cap : 256;
        char **p = realloc(ns->v, cap * sizeof(*p));
        if (!p)
            return qs_err_set(QS_ENOMEM, "out of memory");
        ns->v = p;
        ns->cap = cap;
    }
    if (!(ns->v[ns->n] = strndup(name, len)))
        return qs_err_set(QS_ENOMEM, "out of memory");
    ns->n++;
    return 0;
}

struct list_job {
    struct zstor_ctx *z;
    char prefix[256];
    struct names *per;
};

static void list_one(void *ud, size_t i)
{
    struct list_job *j = ud;
    struct zs_bk *k = &j->z->meta[i];
    struct names *ns = &j->per[i];
    if (zs_bk_down(k)) {
        ns->rc = QS_EIO;
        snprintf(ns->err, sizeof(ns->err), "%s", k->down_why);
        return;
    }
    ns->rc = qs_backend_list_named(k->be, j->prefix, add_name, ns);
    if (ns->rc < 0) {
        snprintf(ns->err, sizeof(ns->err), "%s", qs_err_msg());
        zs_bk_mark_down(k, ns->rc, qs_err_msg());
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int zs_list(struct zstor_ctx *z, zs_list_fn fn, void *ud)
{
    struct list_job j = {.z = z};
    int rc = zstor_meta_key_scan_prefix(z->cfg->meta.prefix, j.prefix);
    if (rc < 0)
        return rc;
    j.per = calloc(z->nmeta ? z->nmeta : 1, sizeof(*j.per));
    if (!j.per)
        return qs_err_set(QS_ENOMEM, "out of memory");
    zs_par(z->nmeta, list_one, &j);
    /* the union: every record is on every meta backend, but one may have missed a write */
    struct names all = {0};
    size_t ok = 0;
    int first_rc = 0;
    char first_err[300] = "";
    for (size_t i = 0; i < z->nmeta; i++) {
        if (j.per[i].rc == 0) {
            ok++;
        } else if (!first_rc) {
            first_rc = j.per[i].rc;
            snprintf(first_err, sizeof(first_err), "%s", j.per[i].err);
        } else if (j.per[i].rc == QS_EINVAL && first_rc != QS_EINVAL) {
            first_rc = j.per[i].rc; /* "not supported" says more than "unreachable" */
            snprintf(first_err, sizeof(first_err), "%s", j.per[i].err);
        }
        for (size_t n = 0; n < j.per[i].n; n++) {
            if (rc == 0 && add_name(&all, j.per[i].v[n], strlen(j.per[i].v[n])) < 0)
                rc = QS_ENOMEM;
            free(j.per[i].v[n]);
        }
        free(j.per[i].v);
    }
    free(j.per);
    if (rc == 0 && ok == 0)
        rc = qs_err_set(first_rc ? first_rc : QS_EIO, "cannot list the metadata: %s",
                        first_err[0] ? first_err : "no meta backend");
    else if (rc == 0 && first_rc && ok + 1 == z->nmeta)
        qs_log(QS_LOG_WARN, "list: %s", first_err);
    else if (rc == 0 && first_rc)
        qs_log(QS_LOG_WARN, "list: %zu of %zu meta backends could not be listed, the first: %s",
               z->nmeta - ok, z->nmeta, first_err);
    if (rc == 0 && all.n)
        qsort(all.v, all.n, sizeof(*all.v), cmp_str);
    for (size_t i = 0; rc == 0 && i < all.n; i++) {
        if (i > 0 && strcmp(all.v[i], all.v[i - 1]) == 0)
            continue;
        if (zstor_meta_key_check(z->cfg->meta.prefix, all.v[i]) < 0)
            continue; /* not a metadata key of ours */
        struct zstor_meta_record r;
        int lrc = zs_meta_load(z, all.v[i], &r, NULL, NULL);
        if (lrc == QS_ENOTFOUND) { /* deleted meanwhile */
            zstor_meta_record_free(&r);
            continue;
        }
        rc = fn(ud, all.v[i], &r, lrc);
        zstor_meta_record_free(&r);
    }
    for (size_t i = 0; i < all.n; i++)
        free(all.v[i]);
    free(all.v);
    return rc;
}

/* ---- the public listing: sorted by path ---- */

struct item {
    char *path, *key, *error;
    uint64_t size;
    int64_t mtime;
    uint8_t sum[16];
    int rc;
};

struct collect {
    struct zstor_ctx *z;
    const char *prefix;
    char *abs; /* a relative prefix made absolute against the working directory, or NULL */
    struct item *v;
    size_t n, cap;
};

static int collect(void *ud, const char *key, const struct zstor_meta_record *r, int rc)
{
    struct collect *c = ud;
    const struct zstor_config *cfg = c->z->cfg;
    struct item it = {.rc = rc};
    if (rc == 0) {
        if (asprintf(&it.path, "%s%s%s", cfg->root ? cfg->root : "", cfg->root ? "/" : "",
                     r->path) < 0)
            return qs_err_set(QS_ENOMEM, "out of memory");
        size_t pl = c->prefix ? strlen(c->prefix) : 0;
        if (pl && strncmp(it.path, c->prefix, pl) != 0 && strncmp(r->path, c->prefix, pl) != 0 &&
            !(c->abs && strncmp(it.path, c->abs, strlen(c->abs)) == 0)) {
            free(it.path);
            return 0;
        }
        it.size = r->size;
        it.mtime = r->mtime_sec;
        memcpy(it.sum, r->checksum, 16);
    } else {
        if (c->prefix && *c->prefix)
            return 0; /* its path is unknown */
        it.error = strdup(qs_err_msg());
    }
    it.key = strdup(key);
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        struct item *p = realloc(c->v, cap * sizeof(*p));
        if (!p) {
            free(it.path);
            free(it.key);
            free(it.error);
            return qs_err_set(QS_ENOMEM, "out of memory");
        }
        c->v = p;
        c->cap = cap;
    }
    c->v[c->n++] = it;
    return 0;
}

static int cmp_item(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    if (!x->path || !y->path)
        return x->path ? -1 : y->path ? 1 : strcmp(x->key ? x->key : "", y->key ? y->key : "");
    return strcmp(x->path, y->path);
}

/* cwd/prefix, cleaned, keeping a trailing slash (so that "dir/" does not match "dir2"). */
static char *absolute_prefix(const char *prefix)
{
    char cwd[4096], *joined = NULL, *clean = NULL, *out = NULL;
    size_t n = strlen(prefix);
    if (!getcwd(cwd, sizeof(cwd)) || asprintf(&joined, "%s/%s", cwd, prefix) < 0)
        return NULL;
    if (zstor_meta_path_clean(joined, &clean) == 0 &&
        asprintf(&out, "%s%s", clean, prefix[n - 1] == '/' && strcmp(clean, "/") ? "/" : "") < 0)
        out = NULL;
    free(joined);
    free(clean);
    return out;
}

int zstor_list(struct zstor_ctx *z, const char *prefix, zstor_list_fn fn, void *ud)
{
    struct collect c = {.z = z, .prefix = prefix};
    if (prefix && *prefix && *prefix != '/')
        c.abs = absolute_prefix(prefix); /* best effort: the other two matches still work */
    int rc = zs_list(z, collect, &c);
    if (rc == 0 && c.n)
        qsort(c.v, c.n, sizeof(*c.v), cmp_item);
    for (size_t i = 0; rc == 0 && i < c.n; i++) {
        struct zstor_list_entry e = {.path = c.v[i].path,
                                     .key = c.v[i].key,
                                     .size = c.v[i].size,
                                     .mtime = c.v[i].mtime,
                                     .checksum = c.v[i].sum,
                                     .rc = c.v[i].rc,
                                     .error = c.v[i].error};
        rc = fn(ud, &e);
    }
    for (size_t i = 0; i < c.n; i++) {
        free(c.v[i].path);
        free(c.v[i].key);
        free(c.v[i].error);
    }
    free(c.v);
    free(c.abs);
    return rc;
}
