/* FUSE low-level callbacks: unpack the request, call lib/fs, reply. */
#include "ops.h"

#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    S_REQS,
    S_GETATTR,
    S_SETATTR,
    S_CREATE,
    S_READDIR,
    S_OPEN,
    S_READ,
    S_WRITE,
    S_MKDIR,
    S_UNLINK,
    S_RMDIR,
    S_RENAME,
    S_LINK,
    S_SYMLINK,
    S_STATFS,
    S_IOCTL,
    S_COUNT
};
static atomic_uint_fast64_t counts[S_COUNT];

static struct zdbfs_ctx *ctx_of(fuse_req_t req)
{
    atomic_fetch_add(&counts[S_REQS], 1);
    return fuse_req_userdata(req);
}

#define COUNT(k) atomic_fetch_add(&counts[k], 1)

static void reply_entry(fuse_req_t req, struct zdbfs_ctx *c, int rc, const struct stat *st)
{
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = st->st_ino;
    e.attr = *st;
    e.attr_timeout = c->timeout_s;
    e.entry_timeout = c->timeout_s;
    if (fuse_reply_entry(req, &e) == -ENOENT)
        qs_fs_forget(c->fs, st->st_ino, 1); /* the request was interrupted */
}

static void op_init(void *ud, struct fuse_conn_info *conn)
{
    struct zdbfs_ctx *c = ud;
    if (c->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
        conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    else
        conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
    if (conn->capable & FUSE_CAP_ASYNC_READ)
        conn->want |= FUSE_CAP_ASYNC_READ;
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
        conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    if (conn->capable & FUSE_CAP_IOCTL_DIR)
        conn->want |= FUSE_CAP_IOCTL_DIR;
    conn->want &= ~(unsigned)FUSE_CAP_HANDLE_KILLPRIV; /* the kernel clears suid/sgid */
    /* The kernel's default of 12 queued async requests caps a deep O_DIRECT
     * or readahead queue below what the batched reads serve (docs/zdbfs.md,
     * "4 KiB random read": 64 measured best). */
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    conn->max_write = 1u << 20;
    conn->max_readahead = 1u << 20;
    conn->time_gran = 1;
}

static void op_destroy(void *ud)
{
    struct zdbfs_ctx *c = ud;
    if (qs_fs_sync(c->fs) != 0)
        qs_log(QS_LOG_ERROR, "unmount: %s", qs_err_msg());
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct zdbfs_ctx *c = ctx_of(req);
    struct stat st;
    int rc = qs_fs_lookup(c->fs, parent, name, &st);
    if (rc == -ENOENT) { /* a negative entry the kernel may cache */
        struct fuse_entry_param e;
        memset(&e, 0, sizeof e);
        e.entry_timeout = c->timeout_s;
        fuse_reply_entry(req, &e);
        return;
    }
    reply_entry(req, c, rc, &st);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
    struct zdbfs_ctx *c = ctx_of(req);
    qs_fs_forget(c->fs, ino, n);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
    struct zdbfs_ctx *c = ctx_of(req);
    for (size_t i = 0; i < count; i++)
        qs_fs_forget(c->fs, f[i].ino, f[i].nlookup);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_GETATTR);
    struct stat st;
    int rc = qs_fs_getattr(c->fs, ino, &st);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, c->timeout_s);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_SETATTR);
    struct stat st;
    int rc = qs_fs_setattr(c->fs, ino, attr, to_set, &st);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, c->timeout_s);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct zdbfs_ctx *c = ctx_of(req);
    char buf[QS_FS_SYMLINK_MAX + 1];
    int rc = qs_fs_readlink(c->fs, ino, buf, sizeof buf);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_CREATE);
    const struct fuse_ctx *u = fuse_req_ctx(req);
    struct stat st;
    int rc = qs_fs_mknod(c->fs, parent, name, mode, rdev, u->uid, u->gid, &st);
    reply_entry(req, c, rc, &st);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_MKDIR);
    const struct fuse_ctx *u = fuse_req_ctx(req);
    struct stat st;
    int rc = qs_fs_mkdir(c->fs, parent, name, mode, u->uid, u->gid, &st);
    reply_entry(req, c, rc, &st);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_UNLINK);
    fuse_reply_err(req, -qs_fs_unlink(c->fs, parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_RMDIR);
    fuse_reply_err(req, -qs_fs_rmdir(c->fs, parent, name));
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_SYMLINK);
    const struct fuse_ctx *u = fuse_req_ctx(req);
    struct stat st;
    int rc = qs_fs_symlink(c->fs, parent, name, link, u->uid, u->gid, &st);
    reply_entry(req, c, rc, &st);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_RENAME);
    unsigned f = 0;
    if (flags & RENAME_NOREPLACE)
        f |= QS_FS_RENAME_NOREPLACE;
    if (flags & RENAME_EXCHANGE)
        f |= QS_FS_RENAME_EXCHANGE;
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
        fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT */
        return;
    }
    fuse_reply_err(req, -qs_fs_rename(c->fs, parent, name, newparent, newname, f));
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_LINK);
    struct stat st;
    int rc = qs_fs_link(c->fs, ino, newparent, newname, &st);
    reply_entry(req, c, rc, &st);
}

static void set_open_flags(struct zdbfs_ctx *c, struct fuse_file_info *fi)
{
    fi->keep_cache = c->keep_cache;
    fi->direct_io = 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_OPEN);
    int rc = qs_fs_open_file(c->fs, ino);
    if (rc == 0 && (fi->flags & O_TRUNC)) {
        /* libfuse asks for atomic O_TRUNC: the kernel leaves the truncation to us */
        struct stat a, st;
        memset(&a, 0, sizeof a);
        rc = qs_fs_setattr(c->fs, ino, &a, QS_FS_SET_SIZE, &st);
        if (rc && qs_fs_release(c->fs, ino) != 0)
            qs_log(QS_LOG_WARN, "open: %s", qs_err_msg());
    }
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    set_open_flags(c, fi);
    if (fuse_reply_open(req, fi) == -ENOENT)
        if (qs_fs_release(c->fs, ino) != 0)
            qs_log(QS_LOG_WARN, "interrupted open: %s", qs_err_msg());
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_CREATE);
    const struct fuse_ctx *u = fuse_req_ctx(req);
    struct stat st;
    int rc = qs_fs_mknod(c->fs, parent, name, (mode & 07777) | S_IFREG, 0, u->uid, u->gid, &st);
    if (rc == 0)
        rc = qs_fs_open_file(c->fs, st.st_ino);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = st.st_ino;
    e.attr = st;
    e.attr_timeout = e.entry_timeout = c->timeout_s;
    set_open_flags(c, fi);
    if (fuse_reply_create(req, &e, fi) == -ENOENT) {
        if (qs_fs_release(c->fs, st.st_ino) != 0)
            qs_log(QS_LOG_WARN, "interrupted create: %s", qs_err_msg());
        qs_fs_forget(c->fs, st.st_ino, 1);
    }
}

/* Reads a loop thread holds back while more requests wait, to fetch their blocks in one
 * batch (one file at a time). */
#define HELD_MAX      16
#define HELD_SIZE_MAX (128u << 10)
struct held {
    bool on;
    size_t n;
    struct qs_fs *fs;
    uint64_t ino;
    fuse_req_t req[HELD_MAX];
    struct qs_fs_rd rd[HELD_MAX];
};
static __thread struct held held;

void zdbfs_ops_hold_reads(bool on)
{
    zdbfs_ops_flush_reads();
    held.on = on;
}

bool zdbfs_ops_reads_held(void)
{
    return held.n > 0;
}

void zdbfs_ops_flush_reads(void)
{
    size_t n = held.n;
    if (n == 0)
        return;
    held.n = 0;
    int rc = qs_fs_read_many(held.fs, held.ino, held.rd, n);
    for (size_t i = 0; i < n; i++) {
        int e = rc ? rc : held.rd[i].rc;
        if (e)
            fuse_reply_err(held.req[i], -e);
        else
            fuse_reply_buf(held.req[i], (const char *)held.rd[i].buf, held.rd[i].got);
        free(held.rd[i].buf);
    }
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_READ);
    bool hold = held.on && size <= HELD_SIZE_MAX;
    if (held.n && (!hold || held.ino != ino || held.n == HELD_MAX))
        zdbfs_ops_flush_reads();
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (hold) {
        held.fs = c->fs;
        held.ino = ino;
        held.req[held.n] = req;
        held.rd[held.n++] = (struct qs_fs_rd){.off = (uint64_t)off, .n = size, .buf = buf};
        return;
    }
    size_t got = 0;
    int rc = qs_fs_read(c->fs, ino, (uint64_t)off, size, buf, &got);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_buf(req, (const char *)buf, got);
    free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_WRITE);
    /* with the writeback cache the kernel resolves O_APPEND into offsets itself */
    bool append = !c->writeback && (fi->flags & O_APPEND);
    int rc = qs_fs_write(c->fs, ino, (uint64_t)off, (const uint8_t *)buf, size, append, NULL);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_write(req, size);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct zdbfs_ctx *c = ctx_of(req);
    fuse_reply_err(req, -qs_fs_release(c->fs, ino));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    struct zdbfs_ctx *c = ctx_of(req);
    fuse_reply_err(req, -qs_fs_fsync(c->fs, ino, datasync != 0));
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct zdbfs_ctx *c = ctx_of(req);
    int rc = qs_fs_opendir(c->fs, ino);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    fi->cache_readdir = 0;
    fuse_reply_open(req, fi);
}

struct dirbuf {
    fuse_req_t req;
    char *p;
    size_t n, cap;
    bool plus;
    struct qs_fs *fs;
    double timeout;
};

static int emit(void *ud, const char *name, const struct stat *st, uint64_t ino, unsigned type,
                uint64_t next)
{
    struct dirbuf *b = ud;
    size_t need;
    if (b->plus) {
        struct fuse_entry_param e;
        memset(&e, 0, sizeof e);
        e.ino = ino;
        e.attr = *st;
        e.attr_timeout = e.entry_timeout = b->timeout;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            e.ino = 0; /* no lookup is counted for these */
        if (e.ino == 0)
            e.attr.st_ino = ino;
        need = fuse_add_direntry_plus(b->req, b->p + b->n, b->cap - b->n, name, &e, (off_t)next);
    } else {
        struct stat s;
        memset(&s, 0, sizeof s);
        s.st_ino = ino;
        s.st_mode = type << 12;
        need = fuse_add_direntry(b->req, b->p + b->n, b->cap - b->n, name, &s, (off_t)next);
    }
    if (need > b->cap - b->n)
        return 1;
    b->n += need;
    return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_READDIR);
    struct dirbuf b = {.req = req, .cap = size, .plus = plus, .fs = c->fs, .timeout = c->timeout_s};
    b.p = malloc(size ? size : 1);
    if (!b.p) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    int rc = qs_fs_readdir(c->fs, ino, (uint64_t)off, plus, emit, &b);
    if (rc && b.n == 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_buf(req, b.p, b.n);
    free(b.p);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    struct zdbfs_ctx *c = ctx_of(req);
    fuse_reply_err(req, -qs_fs_sync(c->fs));
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_STATFS);
    struct statvfs st;
    int rc = qs_fs_statfs(c->fs, &st);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_statfs(req, &st);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    struct zdbfs_ctx *c = ctx_of(req);
    fuse_reply_err(req, -qs_fs_setxattr(c->fs, ino, name, value, size, flags));
}

/* getxattr and listxattr: size 0 asks for the length only. name NULL = list. */
static void xattr_reply(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct zdbfs_ctx *c = ctx_of(req);
    char *buf = size ? malloc(size) : NULL;
    if (size && !buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    int rc =
        name ? qs_fs_getxattr(c->fs, ino, name, buf, size) : qs_fs_listxattr(c->fs, ino, buf, size);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else if (size == 0)
        fuse_reply_xattr(req, (size_t)rc);
    else
        fuse_reply_buf(req, buf, (size_t)rc);
    free(buf);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    xattr_reply(req, ino, name, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    xattr_reply(req, ino, NULL, size);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    struct zdbfs_ctx *c = ctx_of(req);
    fuse_reply_err(req, -qs_fs_removexattr(c->fs, ino, name));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
    struct zdbfs_ctx *c = ctx_of(req);
    if (off < 0 || len <= 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    fuse_reply_err(req, -qs_fs_fallocate(c->fs, ino, mode, (uint64_t)off, (uint64_t)len));
}

/* The 0-db-fs statistics structure: 30 size_t, version 2. */
static void fill_stats(struct zdbfs_ctx *c, size_t out[30])
{
    struct qs_fs_counters k;
    qs_fs_counters(c->fs, &k);
    memset(out, 0, 30 * sizeof(size_t));
    out[0] = ZDBFS_STATS_VERSION;
    out[1] = atomic_load(&counts[S_REQS]);
    out[2] = k.cache_hit;
    out[3] = k.cache_miss;
    out[4] = k.cache_full;
    out[5] = k.cache_linear_flush;
    out[6] = k.cache_random_flush;
    out[7] = 0; /* cache_branches: 0-db-fs's hash layout, none here */
    out[8] = 0;
    out[9] = k.cache_entries;
    out[10] = k.cache_blocks;
    out[11] = k.cache_blocksize;
    for (int i = S_GETATTR; i <= S_IOCTL; i++)
        out[12 + (i - S_GETATTR)] = atomic_load(&counts[i]);
    out[27] = k.read_bytes;
    out[28] = k.write_bytes;
    out[29] = k.errors;
}

static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
                     struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz,
                     size_t out_bufsz)
{
    struct zdbfs_ctx *c = ctx_of(req);
    COUNT(S_IOCTL);
    if (flags & FUSE_IOCTL_COMPAT) {
        fuse_reply_err(req, ENOSYS);
        return;
    }
    if (cmd == ZDBFS_IOCTL_SNAPSHOT) {
        int rc = qs_fs_sync(c->fs);
        if (rc) {
            fuse_reply_err(req, -rc);
            return;
        }
        uint64_t now = (uint64_t)time(NULL);
        fuse_reply_ioctl(req, 0, &now, out_bufsz < sizeof now ? out_bufsz : sizeof now);
        return;
    }
    if (cmd == ZDBFS_IOCTL_STATISTICS) {
        size_t st[30];
        fill_stats(c, st);
        fuse_reply_ioctl(req, 0, st, out_bufsz < sizeof st ? out_bufsz : sizeof st);
        return;
    }
    fuse_reply_err(req, ENOTTY);
}

const struct fuse_lowlevel_ops zdbfs_ops = {
    .init = op_init,
    .destroy = op_destroy,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write = op_write,
    /* no .flush: close() then costs no round trip (each one is ~75 us on a machine whose
     * cross-CPU wake-ups are slow); release, which the kernel sends right after, writes
     * the file's blocks */
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .fallocate = op_fallocate,
    .ioctl = op_ioctl,
};
