/* zstor retrieve and scrub (retrieve.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/decoder.h"
#include "meta/key.h"
#include "util/log.h"
#include "zstor/private.h"
#include "zstor/retrieve.h"

struct rjob {
    struct zstor_ctx *z;
    const struct zstor_meta_record *r;
    struct qs_decoder *dec;
    const char *what; /* for messages and progress */
    int fd;           /* output, -1 = none (scrub) */
    uint64_t written, skip;
    bool warned[QS_CODEC_MAX_SHARDS];
    uint64_t corrupt[QS_CODEC_MAX_SHARDS]; /* chunks whose shard failed in the decoder */
};

static int dec_sink(void *ud, const struct qs_dec_chunk *c)
{
    struct rjob *j = ud;
    for (unsigned i = 0; i < c->nshards; i++) {
        if (c->state[i] != QS_SHARD_CORRUPT)
            continue;
        j->corrupt[i]++;
        if (!j->warned[i]) {
            j->warned[i] = true;
            qs_log(QS_LOG_WARN,
                   "%s: shard %u (%s) is corrupt at chunk %llu: its content does "
                   "not decode with the others",
                   j->r->path, i, j->r->shard[i].address, (unsigned long long)c->index);
        }
    }
    if (j->fd < 0)
        return 0;
    const uint8_t *p = c->data;
    size_t n = c->len;
    if (j->skip) { /* a second pass to a stream: these bytes went out already */
        size_t s = j->skip < n ? (size_t)j->skip : n;
        p += s;
        n -= s;
        j->skip -= s;
    }
    if (n && qs_write_all(j->fd, p, n) < 0)
        return qs_err_sys(QS_EIO, errno, "write");
    j->written += n;
    if (j->z->o.progress)
        j->z->o.progress(j->z->o.progress_ud, j->what, j->written, j->r->size);
    return 0;
}

static int feed(void *ud, uint64_t c, uint8_t **shard, const size_t *len)
{
    struct rjob *j = ud;
    return qs_decoder_feed(j->dec, (const uint8_t *const *)shard, len);
}

/* Looks up the backend of every shard position (-1 when absent) and probes them. */
static int sources(struct zstor_ctx *z, const struct zstor_meta_record *r, int *src)
{
    struct zs_bk *bks[QS_CODEC_MAX_SHARDS];
    size_t nb = 0;
    for (unsigned p = 0; p < r->nshards; p++) {
        src[p] = -1;
        if (r->shard[p].flags & ZSTOR_META_SHARD_ABSENT)
            continue;
        if ((src[p] = zs_data_lookup(z, r->shard[p].address, r->shard[p].ns)) < 0)
            return -1;
        bks[nb++] = z->data[src[p]];
    }
    zs_probe(bks, nb, false);
    return 0;
}

/* One decoding pass over the shards; all = fetch and cross-check every shard. */
static int decode_pass(struct rjob *j, const int *src, bool all, struct zs_fetch_report *rep)
{
    const struct zstor_config *cfg = j->z->cfg;
    struct qs_decoder_opts d;
    qs_decoder_opts_default(&d);
    d.pool = j->z->pool;
    d.verify_all = all;
    int rc = qs_decoder_new(&j->dec, &j->r->desc, cfg->key, &d, dec_sink, j);
    if (rc < 0)
        return rc;
    struct zs_fetch_opts fo = {.all = all};
    rc = zs_fetch(j->z, j->r, src, &fo, feed, j, rep);
    struct qs_codec_summary sum;
    if (rc == 0)
        rc = qs_decoder_finish(j->dec, &sum);
    if (rc == 0 &&
        (sum.size != j->r->size || memcmp(sum.digest, j->r->checksum, QS_CODEC_DIGEST_LEN) != 0))
        rc = qs_err_set(QS_ECORRUPT, "the decoded data does not match the stored checksum");
    qs_decoder_free(j->dec);
    j->dec = NULL;
    return rc;
}

/* Checks a loaded record before any shard is fetched. */
static int usable(struct zstor_ctx *z, const struct zstor_meta_record *r)
{
    int rc = zstor_meta_record_check(r);
    if (rc == 0)
        rc = zstor_meta_check_data_key(r, z->cfg->key);
    return rc;
}

static int decode_to(struct zstor_ctx *z, const struct zstor_meta_record *r, int fd, bool seekable,
                     const char *what, struct zstor_retrieve_result *res)
{
    int src[QS_CODEC_MAX_SHARDS];
    if (sources(z, r, src) < 0)
        return qs_err_set(QS_ENOMEM, "%s", qs_err_msg());
    struct rjob *j = calloc(1, sizeof(*j));
    struct zs_fetch_report *rep = calloc(1, sizeof(*rep));
    if (!j || !rep) {
        free(j);
        free(rep);
        return qs_err_set(QS_ENOMEM, "out of memory");
    }
    j->z = z;
    j->r = r;
    j->fd = fd;
    j->what = what;
    int rc = decode_pass(j, src, false, rep);
    if (rc == QS_ECORRUPT) {
        /* a shard with a good CRC but bad content was among the k used: read them all,
         * the decoder then finds a subset that authenticates */
        qs_log(QS_LOG_WARN, "%s: %s; reading every shard", r->path, qs_err_msg());
        if (seekable) {
            if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
                rc = qs_err_sys(QS_EIO, errno, "truncate the output");
                goto out;
            }
        } else {
            j->skip = j->written;
        }
        j->written = 0;
        rc = decode_pass(j, src, true, rep);
    }
    if (rc == 0 && res) {
        res->files++;
        res->bytes += r->size;
        for (unsigned p = 0; p < r->nshards; p++) {
            res->bad[p] = rep->bad[p] + rep->missing[p] + rep->failed[p] + j->corrupt[p];
            if (res->bad[p] || (r->shard[p].flags & ZSTOR_META_SHARD_ABSENT))
                res->bad_shards++;
        }
    }
out:
    free(j);
    free(rep);
    return rc;
}

/* dest exists and is not a regular file (a device such as /dev/null, a FIFO): written
 * into as a stream, as stdout is; renaming a file over it would replace the device. */
static int retrieve_to_special(struct zstor_ctx *z, const struct zstor_meta_record *r,
                               const char *dest, struct zstor_retrieve_result *res)
{
    int fd = open(dest, O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return qs_err_sys(QS_EIO, errno, "open %s", dest);
    int rc = decode_to(z, r, fd, false, dest, res);
    if (close(fd) < 0 && rc == 0)
        rc = qs_err_sys(QS_EIO, errno, "close %s", dest);
    return rc;
}

static int retrieve_atomic(struct zstor_ctx *z, const struct zstor_meta_record *r, const char *dest,
                           struct zstor_retrieve_result *res);

/* Writes r's file to dest. A symbolic link is followed (the file it points to is
 * replaced, the link stays); a device or FIFO is written into; else atomically. */
static int retrieve_file(struct zstor_ctx *z, const struct zstor_meta_record *r, const char *dest,
                         struct zstor_retrieve_result *res)
{
    struct stat st;
    if (stat(dest, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return qs_err_set(QS_EINVAL, "%s is a directory", dest);
        if (!S_ISREG(st.st_mode))
            return retrieve_to_special(z, r, dest, res);
        char *real = realpath(dest, NULL); /* through symbolic links */
        if (!real)
            return qs_err_sys(QS_EIO, errno, "resolve %s", dest);
        int rc = retrieve_atomic(z, r, real, res);
        free(real);
        return rc;
    }
    return retrieve_atomic(z, r, dest, res);
}

/* Writes r's file to dest atomically: temporary file, fsync, mode and mtime, rename. */
static int retrieve_atomic(struct zstor_ctx *z, const struct zstor_meta_record *r, const char *dest,
                           struct zstor_retrieve_result *res)
{
    int rc = zs_mkdir_parents(dest);
    if (rc < 0)
        return rc;
    const char *slash = strrchr(dest, '/');
    char *tmp = NULL;
    if (asprintf(&tmp, "%.*s%s.%s.zstor-XXXXXX", slash ? (int)(slash - dest) : 0, dest,
                 slash ? "/" : "", slash ? slash + 1 : dest) < 0)
        return qs_err_set(QS_ENOMEM, "out of memory");
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = qs_err_sys(QS_EIO, errno, "create %s", tmp);
        free(tmp);
        return rc;
    }
    /* The space up front: a full disk fails now, not after gigabytes, and the file is
     * laid out in one go. (A file system without fallocate just writes as it goes.) */
    if (r->size && fallocate(fd, 0, 0, (off_t)r->size) < 0 && (errno == ENOSPC || errno == EDQUOT))
        rc = qs_err_sys(QS_EFULL, errno, "%s: no room for %llu bytes", tmp,
                        (unsigned long long)r->size);
    if (rc == 0)
        rc = decode_to(z, r, fd, true, dest, res);
    if (rc == 0 && fsync(fd) < 0)
        rc = qs_err_sys(QS_EIO, errno, "fsync %s", tmp);
    if (rc == 0 && r->mode && fchmod(fd, (mode_t)(r->mode & 07777)) < 0)
        rc = qs_err_sys(QS_EIO, errno, "chmod %s", tmp);
    if (rc == 0) {
        struct timespec ts[2] = {{.tv_sec = 0, .tv_nsec = UTIME_OMIT},
                                 {.tv_sec = r->mtime_sec, .tv_nsec = r->mtime_nsec}};
        if (futimens(fd, ts) < 0)
            rc = qs_err_sys(QS_EIO, errno, "set the mtime of %s", tmp);
    }
    if (close(fd) < 0 && rc == 0)
        rc = qs_err_sys(QS_EIO, errno, "close %s", tmp);
    if (rc == 0 && rename(tmp, dest) < 0)
        rc = qs_err_sys(QS_EIO, errno, "rename %s to %s", tmp, dest);
    if (rc < 0)
        unlink(tmp);
    else if (qs_fsync_parent(dest) < 0) /* the new name, durable */
        rc = qs_err_set(QS_EIO, "retrieved, but %s", qs_err_msg());
    free(tmp);
    return rc;
}

/* "retrieve PATH: <current message>". */
static int fail(int rc, const char *path)
{
    char msg[900];
    snprintf(msg, sizeof(msg), "%s", qs_err_msg());
    return qs_err_set(rc, "retrieve %s: %s", path, msg);
}

/* ---- stored directories: every record whose name is below the path ---- */

struct dir_job {
    struct zstor_ctx *z;
    const char *below; /* stored name prefix, ending in '/' (or "" for everything) */
    size_t blen;
    const char *out; /* NULL: each file to its own path; else the tree goes below out */
    bool count_only; /* only count the files (a directory cannot go to one stream) */
    struct zstor_retrieve_result *res;
    uint64_t found, failed, unreadable;
    int first_rc, unreadable_rc;
    char first_msg[900];
    char unreadable_msg[900];
};

/* A stored name is never trusted as a path: the part joined onto the target must not
 * climb out of it ("..", ".", empty or absolute components), and below -o DIR no
 * existing component may be a symbolic link (it could lead outside DIR). */
static int safe_dest(const struct dir_job *j, const char *name)
{
    const char *root = j->z->cfg->root;
    bool has_root = root && *root;
    const char *rel = j->out ? name + j->blen : name;
    int rc = zstor_meta_name_check(rel, !j->out && !has_root);
    if (rc == 0 && !j->out && !has_root && rel[0] != '/')
        rc = qs_err_set(QS_EINVAL, "name '%s' is not absolute and no root is configured", rel);
    if (rc < 0)
        return qs_err_set(rc, "stored name refused: %s", qs_err_msg());
    if (!j->out)
        return 0;
    char *p = NULL;
    if (asprintf(&p, "%s/%s", j->out, rel) < 0)
        return qs_err_set(QS_ENOMEM, "out of memory");
    for (char *s = p + strlen(j->out) + 1; rc == 0; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char keep = *s;
        *s = '\0';
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode))
            rc = qs_err_set(QS_EINVAL, "%s is a symbolic link: not followed below %s", p, j->out);
        *s = keep;
        if (keep == '\0')
            break;
    }
    free(p);
    return rc;
}

static int dir_one(void *ud, const char *key, const struct zstor_meta_record *r, int lrc)
{
    struct dir_job *j = ud;
    if (lrc < 0) { /* whose path it is, is unknown */
        if (!j->unreadable++) {
            j->unreadable_rc = lrc;
            snprintf(j->unreadable_msg, sizeof(j->unreadable_msg), "%s", qs_err_msg());
        }
        return 0;
    }
    if (strncmp(r->path, j->below, j->blen) != 0)
        return 0;
    j->found++;
    if (j->count_only)
        return 0;
    int rc = zs_interrupted(j->z);
    if (rc < 0) { /* stop the listing: the files after this one are not counted */
        j->failed++;
        j->first_rc = j->first_rc ? j->first_rc : rc;
        snprintf(j->first_msg, sizeof(j->first_msg), "%s", qs_err_msg());
        return rc;
    }
    const struct zstor_config *cfg = j->z->cfg;
    char *dest = NULL;
    int n = j->out ? asprintf(&dest, "%s/%s", j->out, r->path + j->blen)
                   : asprintf(&dest, "%s%s%s", cfg->root ? cfg->root : "", cfg->root ? "/" : "",
                              r->path);
    if (n < 0)
        return qs_err_set(QS_ENOMEM, "out of memory");
    rc = safe_dest(j, r->path);
    if (rc == 0)
        rc = usable(j->z, r);
    if (rc == 0)
        rc = retrieve_file(j->z, r, dest, j->res);
    if (rc < 0) {
        rc = fail(rc, dest);
        qs_log(QS_LOG_ERROR, "%s", qs_err_msg());
        j->failed++;
        if (!j->first_rc) {
            j->first_rc = rc;
            snprintf(j->first_msg, sizeof(j->first_msg), "%s", qs_err_msg());
        }
    }
    free(dest);
    return 0;
}

/* path is not stored as a file (why: the message of that): every file stored below it,
 * to its own path or below o->out. */
static int retrieve_dir(struct zstor_ctx *z, const char *path, const char *why,
                        const struct zstor_retrieve_opts *o, struct zstor_retrieve_result *res)
{
    struct dir_job j = {.z = z, .res = res, .out = o->out, .count_only = o->out_fd >= 0};
    char *below = NULL;
    int rc = zstor_path_below(z, path, &below);
    if (rc < 0)
        return rc;
    j.below = below;
    j.blen = strlen(below);
    struct stat st;
    if (o->out && stat(o->out, &st) == 0 && !S_ISDIR(st.st_mode)) {
        j.count_only = true; /* is it a directory at all? then say where the tree cannot go */
        if (zs_list(z, dir_one, &j) == 0 && j.found)
            rc = qs_err_set(QS_EINVAL,
                            "a stored directory (%llu files below it): -o %s is not a directory",
                            (unsigned long long)j.found, o->out);
        else
            rc = qs_err_set(QS_ENOTFOUND, "not stored (%s)", why);
        free(below);
        return rc;
    }
    int lrc = zs_list(z, dir_one, &j);
    if (j.unreadable && !j.count_only) {
        if (j.blen == 0) { /* everything was asked for: these are files not retrieved */
            j.found += j.unreadable;
            j.failed += j.unreadable;
            if (!j.first_rc) {
                j.first_rc = j.unreadable_rc;
                snprintf(j.first_msg, sizeof(j.first_msg), "%s", j.unreadable_msg);
            }
        } else {
            qs_log(QS_LOG_WARN,
                   "%llu stored records could not be read, files below %s may be among them: "
                   "%s",
                   (unsigned long long)j.unreadable, path, j.unreadable_msg);
        }
    }
    if (lrc < 0 && j.found == 0)
        rc = qs_err_set(QS_ENOTFOUND, "%s (and listing failed: %s)", why, qs_err_msg());
    else if (j.found == 0)
        rc = qs_err_set(QS_ENOTFOUND, "not stored (%s)", why);
    else if (j.count_only)
        rc = qs_err_set(QS_EINVAL,
                        "a stored directory (%llu files below it), not a file: -o - writes one "
                        "file (give -o DIR for the tree)",
                        (unsigned long long)j.found);
    else if (zs_interrupted(z) < 0)
        rc = qs_err_set(QS_EAGAIN, "interrupted after %llu files retrieved",
                        (unsigned long long)(j.found - j.failed));
    else if (j.failed)
        rc = qs_err_set(j.first_rc, "%llu of %llu files failed, the first: %s",
                        (unsigned long long)j.failed, (unsigned long long)j.found, j.first_msg);
    free(below);
    return rc;
}

int zstor_retrieve(struct zstor_ctx *z, const char *path, const struct zstor_retrieve_opts *o,
                   struct zstor_retrieve_result *res)
{
    struct zstor_retrieve_opts dflt = {.out = NULL, .out_fd = -1};
    struct zstor_retrieve_result local;
    if (!o)
        o = &dflt;
    if (!res)
        res = &local;
    memset(res, 0, sizeof(*res));
    char key[256], why[600];
    int rc = zstor_path_key(z, path, key, NULL);
    if (rc == QS_EINVAL) {
        /* root itself: every stored file */
        char *below = NULL;
        snprintf(why, sizeof(why), "%s", qs_err_msg());
        bool root = zstor_path_below(z, path, &below) == 0 && !*below;
        free(below);
        if (root)
            rc = retrieve_dir(z, path, "nothing is stored", o, res);
        else
            qs_err_set(rc, "%s", why);
        return rc < 0 ? fail(rc, path) : 0;
    }
    if (rc < 0)
        return fail(rc, path);
    struct zstor_meta_record r;
    struct zs_bg bg;
    zs_bg_probe_start(&bg, z); /* the data backends' health, while the metadata comes */
    rc = zs_meta_load(z, key, &r, NULL, NULL);
    zs_bg_probe_wait(&bg);
    if (rc == QS_ENOTFOUND) { /* maybe a stored directory */
        snprintf(why, sizeof(why), "%s", qs_err_msg());
        rc = retrieve_dir(z, path, why, o, res);
    } else if (rc == 0) {
        rc = usable(z, &r);
        if (rc == 0 && o->out_fd >= 0)
            rc = decode_to(z, &r, o->out_fd, false, path, res);
        else if (rc == 0)
            rc = retrieve_file(z, &r, o->out ? o->out : path, res);
    }
    zstor_meta_record_free(&r);
    return rc < 0 ? fail(rc, path) : 0;
}

int zstor_scrub(struct zstor_ctx *z, const char *path, struct zstor_scrub_result *res)
{
    memset(res, 0, sizeof(*res));
    char key[256];
    int rc = zstor_path_key(z, path, key, NULL);
    if (rc < 0)
        return qs_err_set(rc, "scrub %s: %s", path, qs_err_msg());
    struct zstor_meta_record r;
    rc = zs_meta_load(z, key, &r, NULL, NULL);
    if (rc == 0)
        rc = usable(z, &r);
    int src[QS_CODEC_MAX_SHARDS];
    if (rc == 0 && sources(z, &r, src) < 0)
        rc = QS_ENOMEM;
    struct rjob *j = rc == 0 ? calloc(1, sizeof(*j)) : NULL;
    struct zs_fetch_report *rep = rc == 0 ? calloc(1, sizeof(*rep)) : NULL;
    if (rc == 0 && (!j || !rep))
        rc = qs_err_set(QS_ENOMEM, "out of memory");
    if (rc == 0) {
        j->z = z;
        j->r = &r;
        j->fd = -1;
        j->what = path;
        rc = decode_pass(j, src, true, rep);
        res->nshards = r.nshards;
        res->chunks = r.nchunks;
        for (unsigned p = 0; p < r.nshards; p++) {
            res->bad[p] = rep->bad[p] + j->corrupt[p];
            res->missing[p] = rep->missing[p] + rep->failed[p];
            if (r.shard[p].flags & ZSTOR_META_SHARD_ABSENT)
                res->missing[p] = r.nchunks;
        }
    }
    free(j);
    free(rep);
    zstor_meta_record_free(&r);
    if (rc < 0) {
        char msg[900];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        return qs_err_set(rc, "scrub %s: %s", path, msg);
    }
    return 0;
}
