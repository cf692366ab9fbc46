/* Directories: entries hashed into bucket values, an in-memory index by name and by
 * cookie (readdir order), and the namespace operations (see fs.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/private.h"
#include "util/log.h"
#include "util/mem.h"

#define ENTRIES_PER_BUCKET 64u /* average before the bucket count doubles */
#define MAX_LINKS          65000u
#define MAX_DEPTH          4096u

struct dentx {
    struct dent e;
    bool removed;
};

static uint64_t name_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void dir_free(struct dir *d)
{
    if (!d)
        return;
    for (uint32_t i = 0; i < d->norder; i++)
        free(d->order[i]);
    free(d->order);
    free(d->htab);
    free(d->bkeys);
    free(d->bdirty);
    free(d);
}

static int htab_grow(struct dir *d)
{
    uint32_t nc = d->hcap ? d->hcap * 2 : 16;
    struct dent **nt = calloc(nc, sizeof *nt);
    if (!nt)
        return -ENOMEM;
    for (uint32_t i = 0; i < d->hcap; i++)
        for (struct dent *p = d->htab[i], *nx; p; p = nx) {
            nx = p->hnext;
            uint32_t s = (uint32_t)(name_hash(p->d.name, p->d.namelen) >> 7) & (nc - 1);
            p->hnext = nt[s];
            nt[s] = p;
        }
    free(d->htab);
    d->htab = nt;
    d->hcap = nc;
    return 0;
}

struct dent *dir_find(struct dir *d, const char *name, size_t len)
{
    if (!d->hcap)
        return NULL;
    uint32_t s = (uint32_t)(name_hash(name, len) >> 7) & (d->hcap - 1);
    for (struct dent *p = d->htab[s]; p; p = p->hnext)
        if (p->d.namelen == len && memcmp(p->d.name, name, len) == 0)
            return p;
    return NULL;
}

/* Adds e (allocated as a struct dentx) to the indexes. */
static int dir_index(struct dir *d, struct dent *e)
{
    if ((d->count + 1) * 2 > d->hcap && htab_grow(d))
        return -ENOMEM;
    if (d->norder == d->ocap) {
        uint32_t c = d->ocap ? d->ocap * 2 : 16;
        struct dent **no = realloc(d->order, c * sizeof *no);
        if (!no)
            return -ENOMEM;
        d->order = no;
        d->ocap = c;
    }
    uint32_t s = (uint32_t)(name_hash(e->d.name, e->d.namelen) >> 7) & (d->hcap - 1);
    e->hnext = d->htab[s];
    d->htab[s] = e;
    e->bucket = (uint32_t)name_hash(e->d.name, e->d.namelen) & (d->nbuckets - 1);
    d->order[d->norder++] = e;
    d->count++;
    return 0;
}

static int cmp_cookie(const void *a, const void *b)
{
    const struct dent *x = *(const struct dent *const *)a, *y = *(const struct dent *const *)b;
    return x->d.cookie < y->d.cookie ? -1 : x->d.cookie > y->d.cookie;
}

static int dir_new(uint32_t nbuckets, struct dir **out)
{
    struct dir *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->nbuckets = nbuckets;
    d->bkeys = calloc(nbuckets, 8);
    d->bdirty = calloc(nbuckets, 1);
    if (!d->bkeys || !d->bdirty) {
        dir_free(d);
        return -ENOMEM;
    }
    *out = d;
    return 0;
}

int dir_init_empty(struct inode *in)
{
    return dir_new(1, &in->dir);
}

int dir_load(struct qs_fs *fs, struct inode *in)
{
    if (in->dir)
        return 0;
    uint32_t nb = in->a.nbuckets;
    struct dir *d;
    if (dir_new(nb, &d))
        return -ENOMEM;
    d->next_cookie = in->a.next_cookie;
    struct qs_zdb_op *ops = calloc(nb, sizeof *ops);
    uint8_t(*keys)[8] = calloc(nb, 8);
    uint32_t m = 0;
    int rc = 0;
    if (!ops || !keys) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < nb; i++) {
        d->bkeys[i] = in->a.buckets[i];
        if (!d->bkeys[i])
            continue;
        qs_put64(keys[m], d->bkeys[i]);
        ops[m] = (struct qs_zdb_op){.kind = QS_ZDB_GET, .key = keys[m], .key_len = 8};
        m++;
    }
    if (m && (rc = fs->kv->batch(fs->kv, QS_FS_META, ops, m)) != 0) {
        rc = fs_errno(fs, rc, "loading a directory", in->ino);
        goto out;
    }
    for (uint32_t i = 0; i < m && rc == 0; i++) {
        struct qs_fs_dent *e;
        uint32_t cnt;
        rc = qs_fs_bucket_decode(ops[i].reply, ops[i].reply_len, &e, &cnt);
        if (rc) {
            rc = fs_errno(fs, rc, "decoding a directory bucket", in->ino);
            break;
        }
        for (uint32_t j = 0; j < cnt && rc == 0; j++) {
            if (dir_find(d, e[j].name, e[j].namelen)) {
                qs_err_set(QS_ECORRUPT, "name %s appears twice", e[j].name);
                rc = fs_errno(fs, QS_ECORRUPT, "loading a directory", in->ino);
                break;
            }
            struct dentx *x = calloc(1, sizeof *x);
            if (!x) {
                rc = -ENOMEM;
                break;
            }
            x->e.d = e[j];
            if (dir_index(d, &x->e)) {
                free(x);
                rc = -ENOMEM;
                break;
            }
            if (e[j].cookie >= d->next_cookie)
                d->next_cookie = e[j].cookie + 1;
        }
        free(e);
    }
    if (rc == 0) {
        if (d->norder > 1)
            qsort(d->order, d->norder, sizeof *d->order, cmp_cookie);
        for (uint32_t i = 1; i < d->norder && rc == 0; i++)
            if (d->order[i]->d.cookie == d->order[i - 1]->d.cookie) {
                qs_err_set(QS_ECORRUPT, "two entries share cookie %llu",
                           (unsigned long long)d->order[i]->d.cookie);
                rc = fs_errno(fs, QS_ECORRUPT, "loading a directory", in->ino);
            }
    }
out:
    if (ops)
        fs_op_free(ops, m);
    free(ops);
    free(keys);
    if (rc) {
        dir_free(d);
        return rc;
    }
    free(in->a.buckets);
    in->a.buckets = NULL;
    in->dir = d;
    return 0;
}

/* Doubles the bucket count: every entry moves, every bucket is rewritten. */
static int dir_grow(struct dir *d)
{
    uint32_t nb = d->nbuckets * 2;
    if (nb > QS_FS_MAX_BUCKETS)
        return 0;
    uint64_t *k = realloc(d->bkeys, nb * 8);
    if (!k)
        return -ENOMEM;
    d->bkeys = k;
    uint8_t *b = realloc(d->bdirty, nb);
    if (!b)
        return -ENOMEM;
    d->bdirty = b;
    memset(d->bkeys + d->nbuckets, 0, (nb - d->nbuckets) * 8);
    memset(d->bdirty, 1, nb);
    d->nbuckets = nb;
    for (uint32_t i = 0; i < d->norder; i++)
        d->order[i]->bucket =
            (uint32_t)name_hash(d->order[i]->d.name, d->order[i]->d.namelen) & (nb - 1);
    return 0;
}

int dir_add(struct dir *d, const char *name, size_t len, uint64_t ino, mode_t mode)
{
    if (d->count + 1 > d->nbuckets * ENTRIES_PER_BUCKET && dir_grow(d))
        return -ENOMEM;
    struct dentx *x = calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    x->e.d.cookie = d->next_cookie;
    x->e.d.ino = ino;
    x->e.d.type = (uint8_t)IFTODT(mode);
    x->e.d.namelen = (uint8_t)len;
    memcpy(x->e.d.name, name, len);
    if (dir_index(d, &x->e)) {
        free(x);
        return -ENOMEM;
    }
    d->next_cookie++;
    d->bdirty[x->e.bucket] = 1;
    return 0;
}

static void dir_remove(struct dir *d, struct dent *e)
{
    uint32_t s = (uint32_t)(name_hash(e->d.name, e->d.namelen) >> 7) & (d->hcap - 1);
    struct dent **pp = &d->htab[s];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    d->bdirty[e->bucket] = 1;
    ((struct dentx *)e)->removed = true;
    d->count--;
    d->ntomb++;
    if (d->ntomb > 64 && d->ntomb * 2 > d->norder) {
        uint32_t w = 0;
        for (uint32_t i = 0; i < d->norder; i++) {
            if (((struct dentx *)d->order[i])->removed)
                free(d->order[i]);
            else
                d->order[w++] = d->order[i];
        }
        d->norder = w;
        d->ntomb = 0;
    }
}

/* ---- helpers of the operations (mu held) ---- */

static int check_name(const char *name, size_t *len)
{
    size_t n = strlen(name);
    if (n > QS_FS_NAME_MAX)
        return -ENAMETOOLONG;
    if (n == 0 || strchr(name, '/'))
        return -EINVAL;
    *len = n;
    return 0;
}

static bool is_dot(const char *name)
{
    return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/* The directory inode with its entries loaded. */
static int get_dir(struct qs_fs *fs, uint64_t ino, struct inode **out)
{
    int rc = inode_get(fs, ino, out);
    if (rc)
        return rc;
    if (!S_ISDIR((*out)->a.mode))
        return -ENOTDIR;
    if ((*out)->a.nlink == 0)
        return -ENOENT; /* removed while open */
    return dir_load(fs, *out);
}

static void touch_dir(struct qs_fs *fs, struct inode *d)
{
    d->a.mtime = d->a.ctime = fs_now();
    inode_dirty(fs, d);
}

/* Loads an entry's inode and checks it agrees with the entry. */
static int entry_inode(struct qs_fs *fs, struct inode *parent, struct dent *e, struct inode **out)
{
    int rc = inode_get(fs, e->d.ino, out);
    if (rc == -ESTALE) {
        qs_err_set(QS_ECORRUPT, "entry %s points to missing inode %llu", e->d.name,
                   (unsigned long long)e->d.ino);
        return fs_errno(fs, QS_ECORRUPT, "directory entry", parent->ino);
    }
    if (rc)
        return rc;
    if (S_ISDIR((*out)->a.mode) && (*out)->a.parent != parent->ino) {
        qs_err_set(QS_ECORRUPT, "directory %s (inode %llu) is linked from a second place",
                   e->d.name, (unsigned long long)e->d.ino);
        return fs_errno(fs, QS_ECORRUPT, "directory entry", parent->ino);
    }
    return 0;
}

static void give(struct qs_fs *fs, struct inode *in, struct stat *st)
{
    in->nlookup++;
    inode_fill_stat(fs, in, st);
}

/* ---- operations ---- */

int qs_fs_lookup(struct qs_fs *fs, uint64_t parent, const char *name, struct stat *st)
{
    FS_LOCK(fs);
    struct inode *d, *in = NULL;
    int rc = get_dir(fs, parent, &d);
    if (rc == 0) {
        size_t len = strlen(name);
        if (strcmp(name, ".") == 0) {
            in = d;
        } else if (strcmp(name, "..") == 0) {
            rc = inode_get(fs, d->ino == QS_FS_ROOT_INO ? d->ino : d->a.parent, &in);
        } else if (len > QS_FS_NAME_MAX) {
            rc = -ENAMETOOLONG;
        } else {
            struct dent *e = dir_find(d->dir, name, len);
            rc = e ? entry_inode(fs, d, e, &in) : -ENOENT;
        }
    }
    if (rc == 0)
        give(fs, in, st);
    FS_UNLOCK(fs);
    return rc;
}

void qs_fs_forget(struct qs_fs *fs, uint64_t ino, uint64_t n)
{
    FS_LOCK(fs);
    struct inode *in;
    if (inode_get(fs, ino, &in) == 0) {
        in->nlookup = in->nlookup > n ? in->nlookup - n : 0;
        inode_maybe_free(fs, in);
    }
    FS_UNLOCK(fs);
}

/* Creates name in parent (mu held): the new inode gets one lookup. */
static int create_node(struct qs_fs *fs, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
                       uid_t uid, gid_t gid, const char *target, struct inode **out)
{
    size_t len;
    int rc = check_name(name, &len);
    if (rc)
        return rc;
    struct inode *d;
    if ((rc = get_dir(fs, parent, &d)) != 0)
        return rc;
    if (is_dot(name) || dir_find(d->dir, name, len))
        return -EEXIST;
    if (S_ISDIR(mode) && d->a.nlink >= MAX_LINKS)
        return -EMLINK;
    if (d->a.mode & S_ISGID) {
        gid = d->a.gid;
        if (S_ISDIR(mode))
            mode |= S_ISGID;
    }
    struct inode *in;
    if ((rc = inode_new(fs, mode, uid, gid, &in)) != 0)
        return rc;
    in->a.rdev = rdev;
    in->a.nlink = S_ISDIR(mode) ? 2 : 1;
    if (S_ISDIR(mode))
        in->a.parent = d->ino;
    if (target) {
        in->a.target = strdup(target);
        in->a.size = strlen(target);
        if (!in->a.target)
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = dir_add(d->dir, name, len, in->ino, mode);
    if (rc) {
        in->a.nlink = 0;
        inode_maybe_free(fs, in);
        return rc;
    }
    if (S_ISDIR(mode))
        d->a.nlink++;
    touch_dir(fs, d);
    in->nlookup++;
    *out = in;
    return 0;
}

int qs_fs_mknod(struct qs_fs *fs, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
                uid_t uid, gid_t gid, struct stat *st)
{
    if (S_ISDIR(mode))
        return qs_fs_mkdir(fs, parent, name, mode, uid, gid, st);
    if (!S_ISREG(mode) && !S_ISFIFO(mode) && !S_ISSOCK(mode) && !S_ISCHR(mode) && !S_ISBLK(mode))
        return -EINVAL;
    FS_LOCK(fs);
    struct inode *in;
    int rc = create_node(fs, parent, name, mode, (S_ISCHR(mode) || S_ISBLK(mode)) ? rdev : 0, uid,
                         gid, NULL, &in);
    if (rc == 0)
        inode_fill_stat(fs, in, st);
    FS_UNLOCK(fs);
    return rc;
}

int qs_fs_mkdir(struct qs_fs *fs, uint64_t parent, const char *name, mode_t mode, uid_t uid,
                gid_t gid, struct stat *st)
{
    FS_LOCK(fs);
    struct inode *in;
    int rc = create_node(fs, parent, name, S_IFDIR | (mode & 07777), 0, uid, gid, NULL, &in);
    if (rc == 0)
        inode_fill_stat(fs, in, st);
    FS_UNLOCK(fs);
    return rc;
}

int qs_fs_symlink(struct qs_fs *fs, uint64_t parent, const char *name, const char *target,
                  uid_t uid, gid_t gid, struct stat *st)
{
    size_t tl = strlen(target);
    if (tl == 0)
        return -ENOENT;
    if (tl > QS_FS_SYMLINK_MAX)
        return -ENAMETOOLONG;
    FS_LOCK(fs);
    struct inode *in;
    int rc = create_node(fs, parent, name, S_IFLNK | 0777, 0, uid, gid, target, &in);
    if (rc == 0)
        inode_fill_stat(fs, in, st);
    FS_UNLOCK(fs);
    return rc;
}

int qs_fs_tmpfile(struct qs_fs *fs, uint64_t parent, mode_t mode, uid_t uid, gid_t gid,
                  struct stat *st)
{
    FS_LOCK(fs);
    struct inode *d, *in;
    int rc = get_dir(fs, parent, &d);
    if (rc == 0 && (d->a.mode & S_ISGID))
        gid = d->a.gid;
    if (rc == 0)
        rc = inode_new(fs, S_IFREG | (mode & 07777), uid, gid, &in);
    if (rc == 0) {
        in->a.nlink = 0;
        in->orphan = true;
        give(fs, in, st);
    }
    FS_UNLOCK(fs);
    return rc;
}

int qs_fs_link(struct qs_fs *fs, uint64_t ino, uint64_t newparent, const char *newname,
               struct stat *st)
{
    size_t len;
    int rc = check_name(newname, &len);
    if (rc)
        return rc;
    FS_LOCK(fs);
    struct inode *in, *d;
    if ((rc = inode_get(fs, ino, &in)) != 0)
        goto out;
    if (S_ISDIR(in->a.mode)) {
        rc = -EPERM;
        goto out;
    }
    if (in->a.nlink >= MAX_LINKS) {
        rc = -EMLINK;
        goto out;
    }
    if ((rc = get_dir(fs, newparent, &d)) != 0)
        goto out;
    if (is_dot(newname) || dir_find(d->dir, newname, len)) {
        rc = -EEXIST;
        goto out;
    }
    if ((rc = dir_add(d->dir, newname, len, in->ino, in->a.mode)) != 0)
        goto out;
    in->a.nlink++;
    in->orphan = false;
    in->a.ctime = fs_now();
    inode_dirty(fs, in);
    touch_dir(fs, d);
    give(fs, in, st);
out:
    FS_UNLOCK(fs);
    return rc;
}

int qs_fs_readlink(struct qs_fs *fs, uint64_t ino, char *buf, size_t n)
{
    FS_LOCK(fs);
    struct inode *in;
    int rc = inode_get(fs, ino, &in);
    if (rc == 0 && !S_ISLNK(in->a.mode))
        rc = -EINVAL;
    if (rc == 0 && n)
        snprintf(buf, n, "%s", in->a.target ? in->a.target : "");
    FS_UNLOCK(fs);
    return rc;
}

/* Drops one name of in (its entry is already gone). */
static void drop_link(struct qs_fs *fs, struct inode *in)
{
    if (S_ISDIR(in->a.mode))
        in->a.nlink = 0;
    else if (in->a.nlink > 0)
        in->a.nlink--;
    in->a.ctime = fs_now();
    inode_dirty(fs, in);
    if (in->a.nlink == 0) {
        in->orphan = true;
        inode_maybe_free(fs, in);
    }
}

static int remove_entry(struct qs_fs *fs, uint64_t parent, const char *name, bool want_dir)
{
    size_t len;
    int rc = check_name(name, &len);
    if (rc)
        return rc == -EINVAL ? -ENOENT : rc;
    if (strcmp(name, ".") == 0)
        return want_dir ? -EINVAL : -EISDIR;
    if (strcmp(name, "..") == 0)
        return want_dir ? -ENOTEMPTY : -EISDIR;
    FS_LOCK(fs);
    struct inode *d, *in;
    struct dent *e;
    if ((rc = get_dir(fs, parent, &d)) != 0)
        goto out;
    if (!(e = dir_find(d->dir, name, len))) {
        rc = -ENOENT;
        goto out;
    }
    if ((rc = entry_inode(fs, d, e, &in)) != 0)
        goto out;
    if (want_dir) {
        if (!S_ISDIR(in->a.mode)) {
            rc = -ENOTDIR;
            goto out;
        }
        if ((rc = dir_load(fs, in)) != 0)
            goto out;
        if (in->dir->count) {
            rc = -ENOTEMPTY;
            goto out;
        }
        d->a.nlink--;
    } else if (S_ISDIR(in->a.mode)) {
        rc = -EISDIR;
        goto out;
    }
    dir_remove(d->dir, e);
    touch_dir(fs, d);
    drop_link(fs, in);
out:
    FS_UNLOCK(fs);
    return rc;
}

int qs_fs_unlink(struct qs_fs *fs, uint64_t parent, const char *name)
{
    return remove_entry(fs, parent, name, false);
}

int qs_fs_rmdir(struct qs_fs *fs, uint64_t parent, const char *name)
{
    return remove_entry(fs, parent, name, true);
}

/* Is anc an ancestor of (or equal to) ino? Walks ".." up to the root. */
static int is_ancestor(struct qs_fs *fs, uint64_t anc, uint64_t ino, bool *out)
{
    *out = false;
    for (unsigned depth = 0; depth < MAX_DEPTH; depth++) {
        if (ino == anc) {
            *out = true;
            return 0;
        }
        if (ino == QS_FS_ROOT_INO)
            return 0;
        struct inode *in;
        int rc = inode_get(fs, ino, &in);
        if (rc)
            return rc;
        ino = in->a.parent;
    }
    qs_err_set(QS_ECORRUPT, "more than %u parents above inode %llu: a loop", MAX_DEPTH,
               (unsigned long long)ino);
    return fs_errno(fs, QS_ECORRUPT, "walking up the tree", ino);
}

int qs_fs_rename(struct qs_fs *fs, uint64_t parent, const char *name, uint64_t newparent,
                 const char *newname, unsigned flags)
{
    size_t len, nlen;
    int rc = check_name(name, &len);
    if (rc == 0)
        rc = check_name(newname, &nlen);
    if (rc)
        return rc;
    if ((flags & QS_FS_RENAME_NOREPLACE) && (flags & QS_FS_RENAME_EXCHANGE))
        return -EINVAL;
    if (flags & ~(unsigned)(QS_FS_RENAME_NOREPLACE | QS_FS_RENAME_EXCHANGE))
        return -EINVAL;
    if (is_dot(name) || is_dot(newname))
        return -EBUSY;
    FS_LOCK(fs);
    struct inode *sd, *dd, *src, *dst = NULL;
    struct dent *se, *de;
    if ((rc = get_dir(fs, parent, &sd)) != 0 || (rc = get_dir(fs, newparent, &dd)) != 0)
        goto out;
    sd->pins++; /* loading dd's ancestors must not evict sd */
    if (!(se = dir_find(sd->dir, name, len))) {
        rc = -ENOENT;
        goto unpin;
    }
    if ((rc = entry_inode(fs, sd, se, &src)) != 0)
        goto unpin;
    de = dir_find(dd->dir, newname, nlen);
    if (de && (rc = entry_inode(fs, dd, de, &dst)) != 0)
        goto unpin;
    if (flags & QS_FS_RENAME_EXCHANGE) {
        if (!de) {
            rc = -ENOENT;
            goto unpin;
        }
    } else if (de && (flags & QS_FS_RENAME_NOREPLACE)) {
        rc = -EEXIST;
        goto unpin;
    }
    if (dst == src) { /* two names of one file: nothing to do */
        rc = 0;
        goto unpin;
    }
    /* a directory may not move under itself */
    bool loop = false;
    if (S_ISDIR(src->a.mode) && sd != dd && (rc = is_ancestor(fs, src->ino, dd->ino, &loop)) != 0)
        goto unpin;
    if (!loop && dst && S_ISDIR(dst->a.mode) && (flags & QS_FS_RENAME_EXCHANGE) && sd != dd &&
        (rc = is_ancestor(fs, dst->ino, sd->ino, &loop)) != 0)
        goto unpin;
    if (loop) {
        rc = -EINVAL;
        goto unpin;
    }
    struct qs_fs_time now = fs_now();
    if (flags & QS_FS_RENAME_EXCHANGE) {
        se->d.ino = dst->ino;
        se->d.type = (uint8_t)IFTODT(dst->a.mode);
        de->d.ino = src->ino;
        de->d.type = (uint8_t)IFTODT(src->a.mode);
        sd->dir->bdirty[se->bucket] = 1;
        dd->dir->bdirty[de->bucket] = 1;
        if (sd != dd) {
            bool sdir = S_ISDIR(src->a.mode), ddir = S_ISDIR(dst->a.mode);
            if (sdir) {
                src->a.parent = dd->ino;
                dd->a.nlink++;
                sd->a.nlink--;
            }
            if (ddir) {
                dst->a.parent = sd->ino;
                sd->a.nlink++;
                dd->a.nlink--;
            }
        }
        src->a.ctime = dst->a.ctime = now;
        inode_dirty(fs, src);
        inode_dirty(fs, dst);
    } else {
        if (dst) {
            if (S_ISDIR(src->a.mode)) {
                if (!S_ISDIR(dst->a.mode)) {
                    rc = -ENOTDIR;
                    goto unpin;
                }
                if ((rc = dir_load(fs, dst)) != 0)
                    goto unpin;
                if (dst->dir->count) {
                    rc = -ENOTEMPTY;
                    goto unpin;
                }
            } else if (S_ISDIR(dst->a.mode)) {
                rc = -EISDIR;
                goto unpin;
            }
        }
        if (S_ISDIR(src->a.mode) && !dst && sd != dd && dd->a.nlink >= MAX_LINKS) {
            rc = -EMLINK;
            goto unpin;
        }
        /* the new name first: a failure leaves everything as it was */
        if (dst) {
            de->d.ino = src->ino;
            de->d.type = (uint8_t)IFTODT(src->a.mode);
            dd->dir->bdirty[de->bucket] = 1;
        } else if ((rc = dir_add(dd->dir, newname, nlen, src->ino, src->a.mode)) != 0) {
            goto unpin;
        }
        se = dir_find(sd->dir, name, len); /* dir_add may have moved buckets */
        dir_remove(sd->dir, se);
        if (S_ISDIR(src->a.mode)) {
            if (dst)
                dd->a.nlink--; /* the replaced directory's ".." */
            if (sd != dd) {
                sd->a.nlink--;
                dd->a.nlink++;
                src->a.parent = dd->ino;
            }
        }
        src->a.ctime = now;
        inode_dirty(fs, src);
        if (dst)
            drop_link(fs, dst);
    }
    touch_dir(fs, sd);
    if (dd != sd)
        touch_dir(fs, dd);
unpin:
    inode_unpin(fs, sd);
out:
    FS_UNLOCK(fs);
    return rc;
}

int qs_fs_opendir(struct qs_fs *fs, uint64_t ino)
{
    FS_LOCK(fs);
    struct inode *d;
    int rc = inode_get(fs, ino, &d);
    if (rc == 0 && !S_ISDIR(d->a.mode))
        rc = -ENOTDIR;
    FS_UNLOCK(fs);
    return rc;
}

/* First position in d->order whose cookie is >= c. */
static uint32_t order_from(const struct dir *d, uint64_t c)
{
    uint32_t lo = 0, hi = d->norder;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (d->order[mid]->d.cookie < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

#define PREFETCH 128u

int qs_fs_readdir(struct qs_fs *fs, uint64_t ino, uint64_t off, bool plus, qs_fs_emit emit,
                  void *ud)
{
    FS_LOCK(fs);
    struct inode *d;
    int rc = inode_get(fs, ino, &d);
    if (rc == 0 && !S_ISDIR(d->a.mode))
        rc = -ENOTDIR;
    if (rc == 0)
        rc = dir_load(fs, d);
    if (rc)
        goto out;
    d->pins++;
    struct stat st;
    /* offsets: 0 = start, 1 = after ".", 2 = after "..", cookie + 3 = after that entry */
    if (off == 0) {
        inode_fill_stat(fs, d, &st);
        if (emit(ud, ".", plus ? &st : NULL, d->ino, DT_DIR, 1))
            goto done;
        off = 1;
    }
    if (off == 1) {
        struct inode *p = d;
        if (d->ino != QS_FS_ROOT_INO && inode_get(fs, d->a.parent, &p) != 0)
            p = d;
        inode_fill_stat(fs, p, &st);
        st.st_ino = d->ino == QS_FS_ROOT_INO ? d->ino : d->a.parent;
        if (emit(ud, "..", plus ? &st : NULL, st.st_ino, DT_DIR, 2))
            goto done;
        off = 2;
    }
    for (uint32_t i = order_from(d->dir, off - 2); i < d->dir->norder; i++) {
        struct dent *e = d->dir->order[i];
        if (((struct dentx *)e)->removed)
            continue;
        uint64_t next = e->d.cookie + 3;
        if (!plus) {
            if (emit(ud, e->d.name, NULL, e->d.ino, e->d.type, next))
                break;
            continue;
        }
        if (i % PREFETCH == 0 || i == order_from(d->dir, off - 2)) {
            uint64_t want[PREFETCH];
            size_t nw = 0;
            for (uint32_t j = i; j < d->dir->norder && nw < PREFETCH; j++)
                if (!((struct dentx *)d->dir->order[j])->removed)
                    want[nw++] = d->dir->order[j]->d.ino;
            (void)inode_prefetch(fs, want, nw);
        }
        struct inode *in;
        if ((rc = entry_inode(fs, d, e, &in)) != 0)
            break;
        inode_fill_stat(fs, in, &st);
        if (emit(ud, e->d.name, &st, in->ino, e->d.type, next))
            break;
        in->nlookup++;
    }
done:
    inode_unpin(fs, d);
out:
    FS_UNLOCK(fs);
    return rc;
}
