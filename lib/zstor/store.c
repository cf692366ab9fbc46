/* zstor store (store.h). */
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec/hash.h"
#include "meta/key.h"
#include "util/log.h"
#include "util/mem.h"
#include "zstor/private.h"
#include "zstor/store.h"

#define MAX_DEPTH 128

/* "store FILE: <the current message>" with code rc. */
static int fail(int rc, const char *file)
{
    char msg[900];
    snprintf(msg, sizeof(msg), "%s", qs_err_msg());
    return qs_err_set(rc, "store %s: %s", file, msg);
}

/* ---- failure records (--save-failure) ----
 * Under /{prefix}/failures/{hex(BLAKE2b-128(absolute file path))}, sealed like metadata:
 * "QSFF", version 1, flags (bit 0: delete after store), then the file path and the key
 * directory ("" = none), each as a u32 LE length and the bytes. */

static int failure_key(struct zstor_ctx *z, const char *abs, char key[256])
{
    uint8_t h[QS_HASH_LEN];
    char hex[2 * QS_HASH_LEN + 1];
    qs_hash128(h, abs, strlen(abs));
    zs_hex(h, sizeof(h), hex);
    int n = snprintf(key, 256, "/%s/failures/%s", z->cfg->meta.prefix, hex);
    return n > 0 && n < 256 ? 0 : qs_err_set(QS_EINVAL, "failure key too long");
}

static void save_failure(struct zstor_ctx *z, const char *file, const struct zstor_store_opts *o)
{
    char *abs = NULL;
    if (zstor_meta_resolve(file, &abs) < 0)
        abs = strdup(file);
    char key[256];
    const char *kd = o->key_dir ? o->key_dir : "";
    size_t pl = abs ? strlen(abs) : 0, kl = strlen(kd);
    uint8_t *v = malloc(14 + pl + kl);
    if (abs && v && failure_key(z, abs, key) == 0) {
        memcpy(v, "QSFF", 4);
        v[4] = 1;
        v[5] = o->delete_after ? 1 : 0;
        qs_put32(v + 6, (uint32_t)pl);
        memcpy(v + 10, abs, pl);
        qs_put32(v + 10 + pl, (uint32_t)kl);
        memcpy(v + 14 + pl, kd, kl);
        if (zs_meta_save_bytes(z, key, v, 14 + pl + kl) < 0)
            qs_log(QS_LOG_WARN, "store %s: could not save the failure record: %s", file,
                   qs_err_msg());
        else
            qs_log(QS_LOG_INFO, "store %s: failure recorded under %s", file, key);
    }
    free(v);
    free(abs);
}

static void clear_failure(struct zstor_ctx *z, const char *abs)
{
    char key[256];
    if (failure_key(z, abs, key) == 0 && zs_meta_remove(z, key) < 0)
        qs_log(QS_LOG_DEBUG, "could not clear failure record %s: %s", key, qs_err_msg());
}

/* ---- one file ---- */

#define ZS_STORE_TRIES 3 /* placements tried when backends fail writes during a store */

/* BLAKE2b-128 of the whole file from its start. */
static int hash_file(int fd, const char *file, uint8_t out[QS_HASH_LEN])
{
    struct qs_hash *h = qs_hash_new();
    uint8_t *buf = malloc(1u << 20);
    int rc = 0;
    if (!h || !buf) {
        rc = qs_err_set(QS_ENOMEM, "out of memory");
        goto out;
    }
    for (off_t off = 0;;) {
        ssize_t n = pread(fd, buf, 1u << 20, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = qs_err_sys(QS_EIO, errno, "read %s", file);
            goto out;
        }
        if (n == 0)
            break;
        qs_hash_update(h, buf, (size_t)n);
        off += n;
    }
    qs_hash_final(h, out);
out:
    qs_hash_free(h);
    free(buf);
    return rc;
}

static int upload_file(struct zstor_ctx *z, int fd, const char *file, const struct stat *st,
                       const char *rel, struct zs_upload **out)
{
    struct zs_upload *u = NULL;
    int rc = zs_upload_begin(&u, z, rel, (uint64_t)st->st_size);
    *out = u;
    if (rc < 0)
        return rc;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    uint64_t done = 0, total = (uint64_t)st->st_size;
    for (;;) {
        uint8_t *p;
        size_t avail;
        if ((rc = zs_interrupted(z)) < 0 || (rc = zs_upload_buffer(u, &p, &avail)) < 0)
            return rc;
        ssize_t n = read(fd, p, avail);
        bool again = n < 0 && errno == EINTR; /* not the end of the file */
        if (n < 0 && !again)
            return qs_err_sys(QS_EIO, errno, "read");
        if ((rc = zs_upload_commit(u, again ? 0 : (size_t)n)) < 0)
            return rc;
        if (again)
            continue;
        if (n == 0)
            break;
        done += (uint64_t)n;
        if (z->o.progress)
            z->o.progress(z->o.progress_ud, file, done, total > done ? total : done);
    }
    return zs_upload_finish(u);
}

/* Stores one regular file keyed as keypath (absolute, symlinks resolved). */
static int store_file(struct zstor_ctx *z, const char *file, const char *keypath,
                      const struct zstor_store_opts *o, struct zstor_store_result *res)
{
    const struct zstor_config *cfg = z->cfg;
    char *rel = NULL;
    char name[256];
    struct zstor_meta_record old, seen;
    struct zs_pieces raw = {0}, mine = {0};
    bool have_seen = false;
    memset(&seen, 0, sizeof(seen));
    struct zs_upload *u = NULL;
    bool have_old = false;
    memset(&old, 0, sizeof(old));
    int fd = -1;
    int rc = zstor_meta_path_rel(cfg->root, keypath, &rel);
    if (rc == 0)
        rc = zstor_meta_key_rel(cfg->meta.prefix, rel, name);
    if (rc < 0)
        goto out;
    fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = qs_err_sys(QS_EIO, errno, "open");
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = qs_err_set(QS_EINVAL, "not a regular file");
        goto out;
    }
    rc = zs_meta_load(z, name, &old, NULL, &raw);
    if (rc == 0) {
        have_old = true;
    } else if (rc == QS_EDENIED) {
        goto out; /* the meta key is not the one the existing record was sealed with */
    } else if (rc != QS_ENOTFOUND) {
        qs_log(QS_LOG_WARN,
               "store %s: the metadata already under %s is unreadable (%s); it "
               "will be replaced",
               file, name, qs_err_msg());
    }
    rc = 0;
    bool same_key = have_old && zstor_meta_check_data_key(&old, cfg->key) == 0;
    if (have_old && !same_key) /* a key rotation, or a typo in the config: say so */
        qs_log(QS_LOG_WARN,
               "store %s: the stored version was encrypted with another data key; it is "
               "replaced by one encrypted with the configured key",
               file);
    if (same_key && old.size == (uint64_t)st.st_size) {
        uint8_t sum[QS_HASH_LEN];
        if ((rc = hash_file(fd, file, sum)) < 0)
            goto out;
        if (memcmp(sum, old.checksum, QS_HASH_LEN) == 0) {
            qs_log(QS_LOG_INFO, "store %s: already stored with the same content as %s", file, rel);
            res->unchanged++;
            goto stored;
        }
    }
    /* a backend that fails a write (down, full, a failing disk) is left out and the file
     * placed again, as long as a placement is left: a few tries */
    for (int attempt = 1;; attempt++) {
        if ((rc = upload_file(z, fd, file, &st, rel, &u)) == 0)
            break;
        if (!u || attempt >= ZS_STORE_TRIES || zs_interrupted(z) < 0 || !zs_upload_lost_backend(u))
            goto undo;
        char msg[600];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        uint64_t left = zs_upload_undo(u);
        qs_log(QS_LOG_WARN, "store %s: %s; placing it again without that backend%s", file, msg,
               left ? " (some shards already written stay behind)" : "");
        zs_upload_free(u);
        u = NULL;
        if (lseek(fd, 0, SEEK_SET) < 0) {
            rc = qs_err_sys(QS_EIO, errno, "seek %s", file);
            goto out;
        }
    }
    struct zstor_meta_record *rec = zs_upload_record(u);
    rec->mtime_sec = st.st_mtim.tv_sec;
    rec->mtime_nsec = (uint32_t)st.st_mtim.tv_nsec;
    rec->mode = (uint32_t)st.st_mode;
    rec->stored = (uint64_t)time(NULL);
    /* A concurrent store may have written its metadata while we uploaded: read what is
     * there now (it is what a failed write rolls back to, and garbage if we win). */
    zs_pieces_free(&raw);
    if (zs_meta_load(z, name, &seen, NULL, &raw) == 0 &&
        (!have_old || memcmp(seen.desc.file_id, old.desc.file_id, QS_CODEC_ID_LEN) != 0))
        have_seen = true;
    /* the last point to stop: once the metadata is written the store has happened */
    if ((rc = zs_interrupted(z)) < 0 || (rc = zs_meta_save_ex(z, name, rec, &raw, &mine)) < 0)
        goto undo;
    if ((rc = zs_store_settle(z, name, file, rec, &mine, have_seen ? &seen : NULL,
                              have_old ? &old : NULL)) < 0)
        goto undo; /* another store of this name is the stored version: ours goes */
    res->stored++;
    res->bytes += rec->size;
    qs_log(QS_LOG_INFO, "stored %s as %s (%llu bytes, %u+%u shards)", file, rel,
           (unsigned long long)rec->size, rec->desc.k, rec->desc.m);
    if (have_old) {
        /* the replaced version's shards are garbage now */
        uint64_t deleted = 0, left = 0;
        zs_delete_shards(z, &old, NULL, &deleted, &left);
        if (!left)
            zs_done_remove(z, old.desc.file_id);
        if (left)
            qs_log(QS_LOG_WARN,
                   "store %s: %llu shard values of the replaced version could not be deleted", file,
                   (unsigned long long)left);
    }
stored:
    if (o->save_failure) {
        char *abs = NULL;
        if (zstor_meta_resolve(file, &abs) == 0)
            clear_failure(z, abs);
        free(abs);
    }
    if (o->delete_after) {
        /* delete only what was verified: the file did not change while it was read, and
         * the metadata reads back with its checksum */
        struct stat now;
        struct zstor_meta_record back;
        uint8_t want[QS_HASH_LEN];
        memcpy(want, u ? zs_upload_record(u)->checksum : old.checksum, QS_HASH_LEN);
        if (fstat(fd, &now) < 0 || now.st_size != st.st_size || now.st_ino != st.st_ino ||
            now.st_mtim.tv_sec != st.st_mtim.tv_sec || now.st_mtim.tv_nsec != st.st_mtim.tv_nsec) {
            rc = qs_err_set(QS_EBUSY, "stored, but not deleted: the file changed while it was "
                                      "being stored");
            goto out;
        }
        rc = zs_meta_load(z, name, &back, NULL, NULL);
        if (rc == 0 && memcmp(back.checksum, want, QS_HASH_LEN) != 0)
            rc = qs_err_set(QS_ECORRUPT, "the metadata read back has another checksum");
        zstor_meta_record_free(&back);
        if (rc < 0) {
            char msg[600];
            snprintf(msg, sizeof(msg), "%s", qs_err_msg());
            rc = qs_err_set(rc, "stored, but not deleted: verification failed: %s", msg);
            goto out;
        }
        if (unlink(file) < 0) {
            rc = qs_err_sys(QS_EIO, errno, "stored, but not deleted");
            goto out;
        }
    }
    goto out;
undo:
    if (u) {
        char msg[900];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        if (rc == QS_EAGAIN && z->o.cancel && atomic_load(z->o.cancel) &&
            strncmp(msg, "interrupted", 11) != 0) /* stopped in a request: say why */
            snprintf(msg, sizeof(msg), "interrupted");
        uint64_t left = zs_upload_undo(u);
        if (left)
            qs_err_set(rc, "%s (and %llu shard values already written could not be deleted)", msg,
                       (unsigned long long)left);
        else if (zs_upload_bytes(u))
            qs_err_set(rc, "%s (the shards already written were deleted again)", msg);
        else
            qs_err_set(rc, "%s", msg);
    }
out:
    if (fd >= 0)
        close(fd);
    zs_upload_free(u);
    zstor_meta_record_free(&old);
    zstor_meta_record_free(&seen);
    zs_pieces_free(&raw);
    zs_pieces_free(&mine);
    free(rel);
    if (rc < 0) {
        rc = fail(rc, file);
        if (o->save_failure) {
            char msg[1000];
            snprintf(msg, sizeof(msg), "%s", qs_err_msg());
            save_failure(z, file, o);
            qs_err_set(rc, "%s", msg);
        }
    }
    return rc;
}

/* ---- directories ---- */

struct walk {
    struct zstor_ctx *z;
    const struct zstor_store_opts *o;
    struct zstor_store_result *res;
    const char *keybase; /* resolved --key-path, or NULL */
    int first_rc;
    char first_msg[1000];
    bool stop;
};

static void walk_fail(struct walk *w, const char *file, int rc)
{
    w->res->failed++;
    if (!w->first_rc) {
        w->first_rc = rc;
        snprintf(w->first_msg, sizeof(w->first_msg), "%s", qs_err_msg());
    }
    if (w->o->on_fail)
        w->o->on_fail(w->o->ud, file, rc, qs_err_msg());
    if (w->o->stop_on_error || zs_interrupted(w->z) < 0)
        w->stop = true;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk_dir(struct walk *w, const char *dir, const char *sub, int depth)
{
    if (depth > MAX_DEPTH) {
        qs_err_set(QS_EINVAL, "store %s: more than %d directory levels", dir, MAX_DEPTH);
        walk_fail(w, dir, QS_EINVAL);
        return;
    }
    DIR *d = opendir(dir);
    if (!d) {
        int rc = qs_err_sys(QS_EIO, errno, "store %s: open directory", dir);
        walk_fail(w, dir, rc);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(names, cap * sizeof(*p));
            if (!p)
                break;
            names = p;
        }
        if ((names[n] = strdup(e->d_name)) != NULL)
            n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n && !w->stop; i++) {
        char *path = NULL, *subpath = NULL, *key = NULL;
        if (asprintf(&path, "%s/%s", dir, names[i]) < 0)
            path = NULL;
        if (asprintf(&subpath, "%s%s%s", sub, *sub ? "/" : "", names[i]) < 0)
            subpath = NULL;
        struct stat st;
        if (!path || !subpath) {
            walk_fail(w, dir, qs_err_set(QS_ENOMEM, "out of memory"));
        } else if (lstat(path, &st) < 0) {
            walk_fail(w, path, qs_err_sys(QS_EIO, errno, "store %s: stat", path));
        } else if (S_ISDIR(st.st_mode)) {
            walk_dir(w, path, subpath, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            int rc;
            if (w->keybase) {
                rc = asprintf(&key, "%s/%s", w->keybase, subpath) < 0
                         ? qs_err_set(QS_ENOMEM, "out of memory")
                         : 0;
            } else {
                rc = zstor_meta_resolve(path, &key);
            }
            if (rc == 0)
                rc = store_file(w->z, path, key, w->o, w->res);
            else
                rc = fail(rc, path);
            if (rc < 0)
                walk_fail(w, path, rc);
        } else {
            qs_log(QS_LOG_DEBUG, "store: skipping %s (not a regular file)", path);
        }
        free(path);
        free(subpath);
        free(key);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int zstor_store(struct zstor_ctx *z, const char *path, const struct zstor_store_opts *o,
                struct zstor_store_result *res)
{
    struct zstor_store_opts dflt = {0};
    struct zstor_store_result local;
    if (!o)
        o = &dflt;
    if (!res)
        res = &local;
    memset(res, 0, sizeof(*res));
    struct stat st;
    if (stat(path, &st) < 0)
        return qs_err_sys(QS_EINVAL, errno, "store %s", path);
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
        return qs_err_set(QS_EINVAL, "store %s: not a regular file or directory", path);
    int rc = zstor_config_check_redundancy(z->cfg);
    struct zs_bg bg;
    zs_bg_probe_start(&bg, z); /* placement needs it; overlap it with the meta probe */
    if (rc == 0)
        rc = zs_meta_writable(z, "store");
    zs_bg_probe_wait(&bg);
    if (rc < 0)
        return fail(rc, path);
    if (S_ISREG(st.st_mode)) {
        char *kp = NULL, *key = NULL;
        rc = zstor_meta_key_path(path, o->key_dir, &kp);
        if (rc == 0)
            rc = zstor_meta_resolve(kp, &key);
        if (rc == 0)
            rc = store_file(z, path, key, o, res);
        else
            rc = fail(rc, path);
        if (rc < 0)
            res->failed++;
        free(kp);
        free(key);
        return rc;
    }
    struct walk w = {.z = z, .o = o, .res = res};
    char *keybase = NULL;
    if (o->key_dir) {
        if ((rc = zstor_meta_resolve(o->key_dir, &keybase)) < 0)
            return fail(rc, path);
        w.keybase = keybase;
    }
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    char *dir = strndup(path, len);
    if (!dir) {
        free(keybase);
        return qs_err_set(QS_ENOMEM, "out of memory");
    }
    walk_dir(&w, dir, "", 0);
    free(dir);
    free(keybase);
    if (w.first_rc) {
        bool intr = zs_interrupted(z) < 0;
        return qs_err_set(intr ? QS_EAGAIN : w.first_rc, "store %s: %llu of %llu files failed%s",
                          path, (unsigned long long)res->failed,
                          (unsigned long long)(res->failed + res->stored + res->unchanged),
                          intr     ? " (interrupted)"
                          : w.stop ? " (stopped at the first failure)"
                                   : "");
    }
    return 0;
}
