/* Attributes and extended attributes (see fs.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "fs/private.h"

int qs_fs_getattr(struct qs_fs *fs, uint64_t ino, struct stat *st)
{
    FS_LOCK(fs);
    struct inode *in;
    int rc = inode_get(fs, ino, &in);
    if (rc == 0)
        inode_fill_stat(fs, in, st);
    FS_UNLOCK(fs);
    return rc;
}

static struct qs_fs_time ts_of(const struct timespec *t)
{
    return (struct qs_fs_time){.sec = t->tv_sec, .nsec = (uint32_t)t->tv_nsec};
}

int qs_fs_setattr(struct qs_fs *fs, uint64_t ino, const struct stat *a, int to_set,
                  struct stat *out)
{
    FS_LOCK(fs);
    struct inode *in;
    int rc = inode_get(fs, ino, &in);
    if (rc == 0)
        in->pins++;
    FS_UNLOCK(fs);
    if (rc)
        return rc;
    if (to_set & QS_FS_SET_SIZE) {
        if (S_ISDIR(in->a.mode))
            rc = -EISDIR;
        else if (!S_ISREG(in->a.mode))
            rc = -EINVAL;
        else if (a->st_size < 0)
            rc = -EINVAL;
        if (rc == 0) {
            pthread_rwlock_wrlock(&in->io);
            rc = file_truncate_locked(fs, in, (uint64_t)a->st_size);
            pthread_rwlock_unlock(&in->io);
        }
    }
    FS_LOCK(fs);
    if (rc == 0) {
        struct qs_fs_time now = fs_now();
        if (to_set & QS_FS_SET_MODE)
            in->a.mode = (in->a.mode & S_IFMT) | (a->st_mode & 07777);
        if (to_set & QS_FS_SET_UID)
            in->a.uid = a->st_uid;
        if (to_set & QS_FS_SET_GID)
            in->a.gid = a->st_gid;
        if (to_set & QS_FS_SET_ATIME_NOW)
            in->a.atime = now;
        else if (to_set & QS_FS_SET_ATIME)
            in->a.atime = ts_of(&a->st_atim);
        if (to_set & QS_FS_SET_MTIME_NOW)
            in->a.mtime = now;
        else if (to_set & QS_FS_SET_MTIME)
            in->a.mtime = ts_of(&a->st_mtim);
        else if (to_set & QS_FS_SET_SIZE)
            in->a.mtime = now;
        if (to_set & QS_FS_SET_CTIME)
            in->a.ctime = ts_of(&a->st_ctim);
        else
            in->a.ctime = now;
        inode_dirty(fs, in);
        inode_fill_stat(fs, in, out);
    }
    inode_unpin(fs, in);
    FS_UNLOCK(fs);
    return rc;
}

/* ---- extended attributes ---- */

static bool known_namespace(const char *name)
{
    return strncmp(name, "user.", 5) == 0 || strncmp(name, "trusted.", 8) == 0 ||
           strncmp(name, "security.", 9) == 0;
}

static size_t xattr_bytes(const struct inode *in)
{
    size_t t = 0;
    for (uint32_t i = 0; i < in->a.nxattr; i++)
        t += strlen(in->a.xattr[i].name) + in->a.xattr[i].len;
    return t;
}

static int xattr_find(const struct inode *in, const char *name)
{
    for (uint32_t i = 0; i < in->a.nxattr; i++)
        if (strcmp(in->a.xattr[i].name, name) == 0)
            return (int)i;
    return -1;
}

int qs_fs_setxattr(struct qs_fs *fs, uint64_t ino, const char *name, const void *value, size_t len,
                   int flags)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl > 255)
        return -ERANGE;
    if (!known_namespace(name))
        return -EOPNOTSUPP;
    if (len > QS_FS_XATTR_MAX)
        return -E2BIG;
    FS_LOCK(fs);
    struct inode *in;
    int rc = inode_get(fs, ino, &in);
    if (rc)
        goto out;
    int i = xattr_find(in, name);
    if (i >= 0 && (flags & XATTR_CREATE)) {
        rc = -EEXIST;
        goto out;
    }
    if (i < 0 && (flags & XATTR_REPLACE)) {
        rc = -ENODATA;
        goto out;
    }
    size_t total = xattr_bytes(in) + nl + len - (i >= 0 ? nl + in->a.xattr[i].len : 0);
    if (total > QS_FS_XATTR_MAX) {
        rc = -ENOSPC;
        goto out;
    }
    uint8_t *v = malloc(len ? len : 1);
    if (!v) {
        rc = -ENOMEM;
        goto out;
    }
    if (len)
        memcpy(v, value, len);
    if (i < 0) {
        struct qs_fs_xattr *x = realloc(in->a.xattr, (in->a.nxattr + 1) * sizeof *x);
        char *n = strdup(name);
        if (!x || !n) {
            if (x)
                in->a.xattr = x;
            free(n);
            free(v);
            rc = -ENOMEM;
            goto out;
        }
        in->a.xattr = x;
        i = (int)in->a.nxattr++;
        x[i].name = n;
        x[i].value = NULL;
    }
    free(in->a.xattr[i].value);
    in->a.xattr[i].value = v;
    in->a.xattr[i].len = (uint32_t)len;
    in->a.ctime = fs_now();
    inode_dirty(fs, in);
out:
    FS_UNLOCK(fs);
    return rc;
}

int qs_fs_getxattr(struct qs_fs *fs, uint64_t ino, const char *name, void *buf, size_t n)
{
    FS_LOCK(fs);
    struct inode *in;
    int rc = inode_get(fs, ino, &in);
    if (rc == 0) {
        int i = xattr_find(in, name);
        if (i < 0) {
            rc = -ENODATA;
        } else if (n == 0) {
            rc = (int)in->a.xattr[i].len;
        } else if (n < in->a.xattr[i].len) {
            rc = -ERANGE;
        } else {
            memcpy(buf, in->a.xattr[i].value, in->a.xattr[i].len);
            rc = (int)in->a.xattr[i].len;
        }
    }
    FS_UNLOCK(fs);
    return rc;
}

int qs_fs_listxattr(struct qs_fs *fs, uint64_t ino, char *buf, size_t n)
{
    FS_LOCK(fs);
    struct inode *in;
    int rc = inode_get(fs, ino, &in);
    if (rc == 0) {
        size_t need = 0;
        for (uint32_t i = 0; i < in->a.nxattr; i++)
            need += strlen(in->a.xattr[i].name) + 1;
        if (n == 0) {
            rc = (int)need;
        } else if (n < need) {
            rc = -ERANGE;
        } else {
            size_t o = 0;
            for (uint32_t i = 0; i < in->a.nxattr; i++) {
                size_t l = strlen(in->a.xattr[i].name) + 1;
                memcpy(buf + o, in->a.xattr[i].name, l);
                o += l;
            }
            rc = (int)need;
        }
    }
    FS_UNLOCK(fs);
    return rc;
}

int qs_fs_removexattr(struct qs_fs *fs, uint64_t ino, const char *name)
{
    FS_LOCK(fs);
    struct inode *in;
    int rc = inode_get(fs, ino, &in);
    if (rc == 0) {
        int i = xattr_find(in, name);
        if (i < 0) {
            rc = -ENODATA;
        } else {
            free(in->a.xattr[i].name);
            free(in->a.xattr[i].value);
            in->a.xattr[i] = in->a.xattr[--in->a.nxattr];
            in->a.ctime = fs_now();
            inode_dirty(fs, in);
        }
    }
    FS_UNLOCK(fs);
    return rc;
}
