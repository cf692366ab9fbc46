/* dir:// backend: a share directory holding values as files (docs/backends.md).
 *
 *   ROOT/QSFS-SHARE           marker: format name, version, 128-bit id
 *   ROOT/data/HH/<32 hex>     values stored by put; HH = the first two hex digits
 *   ROOT/named/<escaped name> values stored by name (metadata)
 *   ROOT/tmp/                 files being written; renamed into place when complete
 *
 * Every write goes to tmp/, is fsynced, renamed into place, and the directory entry is
 * fsynced: a crash leaves either the old state or the complete new file, never a torn
 * one. Paths (not held descriptors) are used so a remounted disk is seen again. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend_private.h"
#include "util/sys.h"

#define MARKER        "QSFS-SHARE"
#define MARKER_HEAD   "qsfs share directory\n"
#define MARKER_VER    1
#define STALE_TMP_SEC 3600 /* tmp files older than this are leftovers of a crash */
#define PATHLEN       4096

static const char hexd[] = "0123456789abcdef";

static void to_hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[p[i] >> 4];
        out[2 * i + 1] = hexd[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int fail_sys(struct qs_backend *b, int err, const char *what, const char *path)
{
    b->op_failures++;
    int code = err == ENOSPC || err == EDQUOT                  ? QS_EFULL
               : err == EACCES || err == EPERM || err == EROFS ? QS_EDENIED
                                                               : QS_EIO;
    return qs_err_sys(code, err, "%s: %s %s", b->name, what, path);
}

static int fsync_dir(struct qs_backend *b, const char *path)
{
    if (b->nosync)
        return 0;
    return qs_fsync_dir(path) < 0 ? fail_sys(b, errno, "fsync directory", path) : 0;
}

static int mkdir_ok(struct qs_backend *b, const char *path, bool *created)
{
    if (created)
        *created = false;
    if (mkdir(path, 0700) == 0) {
        if (created)
            *created = true;
        return 0;
    }
    if (errno == EEXIST)
        return 0;
    return fail_sys(b, errno, "mkdir", path);
}

/* Writes val to tmp/, fsyncs, renames it to dst and fsyncs dst's directory dstdir. */
static int write_atomic(struct qs_backend *b, const char *dst, const char *dstdir, const void *val,
                        size_t len)
{
    uint8_t rnd[12];
    if (qs_random_bytes(rnd, sizeof(rnd)) < 0)
        return fail_sys(b, errno, "getrandom for", "a temporary name");
    char hex[25], tmp[PATHLEN];
    to_hex(rnd, sizeof(rnd), hex);
    snprintf(tmp, sizeof(tmp), "%s/tmp/%s.tmp", b->root, hex);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail_sys(b, errno, "create", tmp);
    int rc = 0;
    if (qs_write_all(fd, val, len) < 0)
        rc = fail_sys(b, errno, "write", tmp);
    else if (!b->nosync && fdatasync(fd) < 0)
        rc = fail_sys(b, errno, "fsync", tmp);
    if (close(fd) < 0 && rc == 0)
        rc = fail_sys(b, errno, "close", tmp);
    if (rc == 0 && rename(tmp, dst) < 0)
        rc = fail_sys(b, errno, "rename into", dst);
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    return fsync_dir(b, dstdir);
}

/* Reads a whole file of at most max bytes. ENOENT comes back as QS_ENOTFOUND with
 * errno kept, for the caller to tell a missing value from a missing directory. */
static int read_file(struct qs_backend *b, const char *path, size_t max, uint8_t **out,
                     size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return QS_ENOTFOUND;
        return fail_sys(b, errno, "open", path);
    }
    struct stat st;
    int rc = 0;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) < 0) {
        rc = fail_sys(b, errno, "stat", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        b->op_failures++;
        rc = qs_err_set(QS_ECORRUPT, "%s: %s is not a regular file of at most %zu bytes", b->name,
                        path, max);
        goto out;
    }
    size_t n = (size_t)st.st_size;
    buf = malloc(n ? n : 1);
    if (!buf) {
        rc = qs_err_set(QS_ENOMEM, "%s: out of memory reading %zu bytes", b->name, n);
        goto out;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = fail_sys(b, errno, "read", path);
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got != n) {
        b->op_failures++;
        rc = qs_err_set(QS_EIO, "%s: %s shrank while being read", b->name, path);
        goto out;
    }
    *out = buf;
    *outlen = n;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

/* ---- the marker ---- */

static int parse_marker(struct qs_backend *b, const char *text, size_t len, char id[33])
{
    const char *path = MARKER;
    size_t hl = strlen(MARKER_HEAD);
    if (len < hl || memcmp(text, MARKER_HEAD, hl) != 0)
        return qs_err_set(QS_ECORRUPT, "%s: %s does not start with \"qsfs share directory\"",
                          b->name, path);
    const char *p = text + hl, *end = text + len;
    bool have_ver = false, have_id = false;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 9 && memcmp(p, "version: ", 9) == 0) {
            if (n != 10 || p[9] != '0' + MARKER_VER)
                return qs_err_set(QS_EINVAL,
                                  "%s: share directory format \"%.*s\" is not supported "
                                  "(this build reads version %d)",
                                  b->name, (int)(n > 40 ? 40 : n), p, MARKER_VER);
            have_ver = true;
        } else if (n > 4 && memcmp(p, "id: ", 4) == 0) {
            if (n != 36)
                return qs_err_set(QS_ECORRUPT, "%s: %s: bad id line", b->name, path);
            for (size_t i = 4; i < 36; i++)
                if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
                    return qs_err_set(QS_ECORRUPT, "%s: %s: bad id line", b->name, path);
            memcpy(id, p + 4, 32);
            id[32] = '\0';
            have_id = true;
        } /* other lines: informational (created: ...) */
        p += n + (nl ? 1 : 0);
    }
    if (!have_ver || !have_id)
        return qs_err_set(QS_ECORRUPT, "%s: %s lacks its %s line", b->name, path,
                          have_ver ? "id" : "version");
    return 0;
}

static int subdirs(struct qs_backend *b)
{
    static const char *const sub[] = {"data", "named", "tmp"};
    char p[PATHLEN];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", b->root, sub[i]);
        int rc = mkdir_ok(b, p, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int init_share(struct qs_backend *b, char id[33])
{
    uint8_t rnd[16];
    if (qs_random_bytes(rnd, sizeof(rnd)) < 0)
        return fail_sys(b, errno, "getrandom for", "the share id");
    to_hex(rnd, sizeof(rnd), id);
    int rc = subdirs(b);
    if (rc < 0)
        return rc;
    char text[200], dst[PATHLEN];
    int n = snprintf(text, sizeof(text), "%sversion: %d\nid: %s\ncreated: %lld\n", MARKER_HEAD,
                     MARKER_VER, id, (long long)time(NULL));
    snprintf(dst, sizeof(dst), "%s/%s", b->root, MARKER);
    return write_atomic(b, dst, b->root, text, (size_t)n);
}

static bool dir_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return false;
    bool empty = true;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = false;
            break;
        }
    closedir(d);
    return empty;
}

/* Removes tmp files a crashed writer left behind (old ones only: another process may be
 * writing into the same share directory right now). */
static void clean_tmp(struct qs_backend *b)
{
    char dir[PATHLEN], p[PATHLEN + 300];
    snprintf(dir, sizeof(dir), "%s/tmp", b->root);
    DIR *d = opendir(dir);
    if (!d)
        return;
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".tmp") != 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && now - st.st_mtime > STALE_TMP_SEC)
            unlink(p);
    }
    closedir(d);
}

int qs_dir_attach(struct qs_backend *b)
{
    if (b->attached)
        return 0;
    struct stat st;
    char marker[PATHLEN];
    snprintf(marker, sizeof(marker), "%s/%s", b->root, MARKER);
    char id[33];
    if (stat(b->root, &st) < 0) {
        if (errno != ENOENT)
            return fail_sys(b, errno, "stat", b->root);
        if (b->nocreate || b->have_id)
            return qs_err_set(QS_EIO, "%s: the share directory does not exist", b->name);
        /* only the last component is created: a missing parent usually means an unmounted
         * disk, and writing into the mount point would fill the wrong file system */
        if (mkdir(b->root, 0700) < 0 && errno != EEXIST)
            return fail_sys(b, errno, "create the share directory", b->root);
    } else if (!S_ISDIR(st.st_mode)) {
        return qs_err_set(QS_EINVAL, "%s: %s is not a directory", b->name, b->root);
    }
    uint8_t *text = NULL;
    size_t tlen = 0;
    int rc = read_file(b, marker, 4096, &text, &tlen);
    if (rc == QS_ENOTFOUND) {
        if (b->have_id)
            return qs_err_set(QS_EIO,
                              "%s: no %s marker where share %s was expected (disk not mounted, "
                              "or directory moved?)",
                              b->name, MARKER, b->id);
        if (b->nocreate)
            return qs_err_set(QS_EIO, "%s: not a qsfs share directory (no %s marker)", b->name,
                              MARKER);
        if (!dir_empty(b->root))
            return qs_err_set(QS_EINVAL,
                              "%s: the directory holds files but no %s marker: not a qsfs "
                              "share directory, refusing to write into it",
                              b->name, MARKER);
        rc = init_share(b, id);
        if (rc < 0)
            return rc;
    } else if (rc < 0) {
        return rc;
    } else {
        rc = parse_marker(b, (const char *)text, tlen, id);
        free(text);
        if (rc < 0)
            return rc;
        if (b->have_id && strcmp(id, b->id) != 0)
            return qs_err_set(QS_EINVAL, "%s: this is share directory %s, expected %s", b->name, id,
                              b->id);
        rc = subdirs(b); /* copies may drop empty directories */
        if (rc < 0)
            return rc;
    }
    memcpy(b->id, id, sizeof(id));
    b->have_id = true;
    if (!b->cleaned) {
        clean_tmp(b);
        b->cleaned = true;
    }
    b->attached = true;
    return 0;
}

/* After an ENOENT: a missing value, or a share directory that went away? */
static int missing(struct qs_backend *b, const char *what)
{
    char marker[PATHLEN];
    snprintf(marker, sizeof(marker), "%s/%s", b->root, MARKER);
    struct stat st;
    if (stat(marker, &st) < 0) {
        b->attached = false;
        b->op_failures++;
        return qs_err_set(QS_EIO, "%s: the share directory is gone (no %s marker)", b->name,
                          MARKER);
    }
    return qs_err_set(QS_ENOTFOUND, "%s: %s not found", b->name, what);
}

/* ---- data ---- */

static int data_path(struct qs_backend *b, const struct qs_backend_key *key, char *dir, char *file)
{
    if (key->len != QS_BACKEND_DIR_KEY_LEN)
        return qs_err_set(QS_EINVAL, "%s: key of %u bytes, dir keys have %u", b->name, key->len,
                          QS_BACKEND_DIR_KEY_LEN);
    char hex[2 * QS_BACKEND_DIR_KEY_LEN + 1];
    to_hex(key->b, key->len, hex);
    snprintf(dir, PATHLEN, "%s/data/%.2s", b->root, hex);
    snprintf(file, PATHLEN + 40, "%s/%s", dir, hex);
    return 0;
}

int qs_dir_put(struct qs_backend *b, const void *val, size_t len, struct qs_backend_key *key)
{
    int rc = qs_dir_attach(b);
    if (rc < 0)
        return rc;
    b->ops++;
    struct qs_backend_key k = {.len = QS_BACKEND_DIR_KEY_LEN};
    if (qs_random_bytes(k.b, QS_BACKEND_DIR_KEY_LEN) < 0)
        return fail_sys(b, errno, "getrandom for", "a key");
    char dir[PATHLEN], file[PATHLEN + 40];
    rc = data_path(b, &k, dir, file);
    if (rc < 0)
        return rc;
    bool created;
    rc = mkdir_ok(b, dir, &created);
    if (rc == 0 && created) {
        char parent[PATHLEN];
        snprintf(parent, sizeof(parent), "%s/data", b->root);
        rc = fsync_dir(b, parent);
    }
    if (rc == 0)
        rc = write_atomic(b, file, dir, val, len);
    if (rc == 0)
        *key = k;
    return rc;
}

int qs_dir_get(struct qs_backend *b, const struct qs_backend_key *key, uint8_t **val, size_t *len)
{
    *val = NULL;
    *len = 0;
    char dir[PATHLEN], file[PATHLEN + 40];
    int rc = data_path(b, key, dir, file);
    if (rc == 0)
        rc = qs_dir_attach(b);
    if (rc < 0)
        return rc;
    b->ops++;
    rc = read_file(b, file, b->max_value, val, len);
    if (rc == QS_ENOTFOUND) {
        char hex[2 * QS_BACKEND_KEY_MAX + 1];
        qs_backend_key_hex(key, hex);
        return missing(b, hex);
    }
    return rc;
}

int qs_dir_del(struct qs_backend *b, const struct qs_backend_key *key)
{
    char dir[PATHLEN], file[PATHLEN + 40];
    int rc = data_path(b, key, dir, file);
    if (rc == 0)
        rc = qs_dir_attach(b);
    if (rc < 0)
        return rc;
    b->ops++;
    if (unlink(file) < 0) {
        if (errno == ENOENT) {
            char hex[2 * QS_BACKEND_KEY_MAX + 1];
            qs_backend_key_hex(key, hex);
            return missing(b, hex);
        }
        return fail_sys(b, errno, "unlink", file);
    }
    return fsync_dir(b, dir);
}

/* ---- named values ---- */

/* File name of a value name: [A-Za-z0-9_-] and inner dots kept, every other byte %XX. */
static int named_path(struct qs_backend *b, const char *name, char *file)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > QS_BACKEND_NAME_MAX)
        return qs_err_set(QS_EINVAL, "%s: name must have 1..%u bytes", b->name,
                          QS_BACKEND_NAME_MAX);
    char esc[3 * QS_BACKEND_NAME_MAX + 1];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        bool keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || (ch == '.' && i > 0);
        if (keep) {
            esc[o++] = (char)ch;
        } else {
            esc[o++] = '%';
            esc[o++] = hexd[ch >> 4];
            esc[o++] = hexd[ch & 15];
        }
    }
    esc[o] = '\0';
    if (o > 250)
        return qs_err_set(QS_EINVAL, "%s: name \"%s\" too long once escaped for a file name",
                          b->name, name);
    snprintf(file, PATHLEN + 300, "%s/named/%s", b->root, esc);
    return 0;
}

int qs_dir_set_named(struct qs_backend *b, const char *name, const void *val, size_t len)
{
    char file[PATHLEN + 300], dir[PATHLEN];
    int rc = named_path(b, name, file);
    if (rc == 0)
        rc = qs_dir_attach(b);
    if (rc < 0)
        return rc;
    b->ops++;
    snprintf(dir, sizeof(dir), "%s/named", b->root);
    return write_atomic(b, file, dir, val, len);
}

int qs_dir_get_named(struct qs_backend *b, const char *name, uint8_t **val, size_t *len)
{
    char file[PATHLEN + 300];
    int rc = named_path(b, name, file);
    if (rc == 0)
        rc = qs_dir_attach(b);
    if (rc < 0)
        return rc;
    b->ops++;
    rc = read_file(b, file, b->max_value, val, len);
    return rc == QS_ENOTFOUND ? missing(b, name) : rc;
}

int qs_dir_del_named(struct qs_backend *b, const char *name)
{
    char file[PATHLEN + 300], dir[PATHLEN];
    int rc = named_path(b, name, file);
    if (rc == 0)
        rc = qs_dir_attach(b);
    if (rc < 0)
        return rc;
    b->ops++;
    if (unlink(file) < 0)
        return errno == ENOENT ? missing(b, name) : fail_sys(b, errno, "unlink", file);
    snprintf(dir, sizeof(dir), "%s/named", b->root);
    return fsync_dir(b, dir);
}

static int unhex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

int qs_dir_list_named(struct qs_backend *b, const char *prefix, qs_backend_name_fn fn, void *ud)
{
    int rc = qs_dir_attach(b);
    if (rc < 0)
        return rc;
    b->ops++;
    char dir[PATHLEN];
    snprintf(dir, sizeof(dir), "%s/named", b->root);
    DIR *d = opendir(dir);
    if (!d)
        return fail_sys(b, errno, "open directory", dir);
    size_t plen = prefix ? strlen(prefix) : 0;
    struct dirent *e;
    while (rc == 0) {
        errno = 0;
        if ((e = readdir(d)) == NULL) {
            if (errno != 0)
                rc = fail_sys(b, errno, "read directory", dir);
            break;
        }
        /* only names named_path can produce: no leading dot, well-formed escapes */
        char name[QS_BACKEND_NAME_MAX + 1];
        size_t n = 0;
        bool ok = e->d_name[0] != '.';
        for (const char *p = e->d_name; ok && *p; p++) {
            char ch = *p;
            if (ch == '%') {
                int hi = unhex(p[1]), lo = hi < 0 ? -1 : unhex(p[2]);
                if (lo < 0) {
                    ok = false;
                    break;
                }
                ch = (char)(hi * 16 + lo);
                p += 2;
            }
            if (n >= QS_BACKEND_NAME_MAX)
                ok = false;
            else
                name[n++] = ch;
        }
        if (!ok || n == 0 || n < plen || (plen && memcmp(name, prefix, plen) != 0))
            continue;
        name[n] = '\0';
        rc = fn(ud, name, n);
    }
    closedir(d);
    return rc;
}

int qs_dir_list_keys(struct qs_backend *b, qs_backend_key_fn fn, void *ud)
{
    int rc = qs_dir_attach(b);
    if (rc < 0)
        return rc;
    b->ops++;
    char top[PATHLEN], sub[PATHLEN + 8], path[PATHLEN + 48];
    snprintf(top, sizeof(top), "%s/data", b->root);
    DIR *d = opendir(top);
    if (!d)
        return fail_sys(b, errno, "open directory", top);
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != 2 || unhex(e->d_name[0]) < 0 || unhex(e->d_name[1]) < 0)
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", top, e->d_name);
        DIR *s = opendir(sub);
        if (!s) {
            rc = fail_sys(b, errno, "open directory", sub);
            break;
        }
        struct dirent *f;
        while (rc == 0 && (f = readdir(s)) != NULL) {
            /* values only: 32 hex digits (temporary files live in tmp/) */
            if (strlen(f->d_name) != 2 * QS_BACKEND_DIR_KEY_LEN)
                continue;
            struct qs_backend_key k = {.len = QS_BACKEND_DIR_KEY_LEN};
            bool ok = true;
            for (unsigned i = 0; ok && i < QS_BACKEND_DIR_KEY_LEN; i++) {
                int hi = unhex(f->d_name[2 * i]), lo = unhex(f->d_name[2 * i + 1]);
                ok = hi >= 0 && lo >= 0;
                k.b[i] = (uint8_t)(hi * 16 + lo);
            }
            struct stat st;
            snprintf(path, sizeof(path), "%s/%s", sub, f->d_name);
            if (!ok || stat(path, &st) != 0)
                continue;
            rc = fn(ud, &k, (uint64_t)st.st_size, (int64_t)st.st_mtime);
        }
        closedir(s);
    }
    closedir(d);
    return rc;
}

/* ---- health ---- */

int qs_dir_probe(struct qs_backend *b, struct qs_backend_health *h)
{
    b->attached = false; /* re-read the marker: the disk may have changed under us */
    int rc = qs_dir_attach(b);
    if (rc < 0)
        return rc;
    char tmp[PATHLEN];
    snprintf(tmp, sizeof(tmp), "%s/tmp", b->root);
    if (access(tmp, W_OK) < 0)
        return fail_sys(b, errno, "cannot write into", tmp);
    struct statvfs sv;
    if (statvfs(b->root, &sv) < 0)
        return fail_sys(b, errno, "statvfs", b->root);
    h->free_bytes = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    h->limit_bytes = 0;
    return 0;
}
