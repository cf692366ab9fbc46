/* The inode table: loading, creating, pinning and freeing inodes (see private.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/private.h"
#include "util/log.h"
#include "util/mem.h"

#define POOL_BATCH 256u
static const char placeholder[] = "zdbfs:unused";

struct qs_fs_time fs_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (struct qs_fs_time){.sec = ts.tv_sec, .nsec = (uint32_t)ts.tv_nsec};
}

int keyvec_push(struct keyvec *v, uint64_t k)
{
    if (v->n == v->cap) {
        size_t c = v->cap ? v->cap * 2 : 64;
        uint64_t *p = realloc(v->k, c * 8);
        if (!p)
            return qs_err_set(QS_ENOMEM, "out of memory");
        v->k = p;
        v->cap = c;
    }
    v->k[v->n++] = k;
    return 0;
}

/* ---- store helpers ---- */

void fs_op_free(struct qs_zdb_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ops[i].reply);
        ops[i].reply = NULL;
    }
}

int fs_get(struct qs_fs *fs, enum qs_fs_ns ns, uint64_t key, uint8_t **val, size_t *len)
{
    uint8_t k[8];
    qs_put64(k, key);
    struct qs_zdb_op op = {.kind = QS_ZDB_GET, .key = k, .key_len = 8};
    int rc = fs->kv->batch(fs->kv, ns, &op, 1);
    if (rc) {
        free(op.reply);
        return rc;
    }
    *val = op.reply;
    *len = op.reply_len;
    return 0;
}

int fs_set(struct qs_fs *fs, enum qs_fs_ns ns, uint64_t key, const void *val, size_t len)
{
    uint8_t k[8];
    qs_put64(k, key);
    struct qs_zdb_op op = {.kind = QS_ZDB_SET, .key = k, .key_len = 8, .val = val, .val_len = len};
    int rc = fs->kv->batch(fs->kv, ns, &op, 1);
    free(op.reply);
    return rc;
}

int fs_append(struct qs_fs *fs, enum qs_fs_ns ns, const void *val, size_t len, uint64_t *key)
{
    struct qs_zdb_op op = {.kind = QS_ZDB_SET, .val = val, .val_len = len};
    int rc = fs->kv->batch(fs->kv, ns, &op, 1);
    if (rc == 0 && op.reply_len != 8)
        rc = qs_err_set(QS_EPROTO, "append: the store returned a key of %zu bytes", op.reply_len);
    if (rc == 0)
        *key = qs_le64(op.reply);
    free(op.reply);
    return rc;
}

int fs_errno(struct qs_fs *fs, int code, const char *what, uint64_t ino)
{
    atomic_fetch_add(&fs->c.errors, 1);
    qs_log(QS_LOG_ERROR, "%s (inode %llu): %s", what, (unsigned long long)ino, qs_err_msg());
    switch (code) {
    case QS_EFULL:
    case QS_EDISKFULL:
        return -ENOSPC;
    case QS_ENOMEM:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* ---- key pool: meta keys appended ahead of use ---- */

int alloc_meta_key(struct qs_fs *fs, uint64_t *key)
{
    if (fs->pool.n == 0) {
        struct qs_zdb_op ops[POOL_BATCH];
        memset(ops, 0, sizeof ops);
        for (unsigned i = 0; i < POOL_BATCH; i++) {
            ops[i].kind = QS_ZDB_SET;
            ops[i].val = placeholder;
            ops[i].val_len = sizeof placeholder - 1;
        }
        int rc = fs->kv->batch(fs->kv, QS_FS_META, ops, POOL_BATCH);
        for (unsigned i = 0; i < POOL_BATCH; i++)
            if (ops[i].result == 0 && ops[i].reply_len == 8 && rc != QS_ENOMEM)
                if (keyvec_push(&fs->pool, qs_le64(ops[i].reply)))
                    rc = QS_ENOMEM;
        fs_op_free(ops, POOL_BATCH);
        if (fs->pool.n == 0)
            return rc ? rc : qs_err_set(QS_EPROTO, "the meta store gave no keys");
        /* hand out the lowest first: the pool is a stack */
        for (size_t i = 0; i < fs->pool.n / 2; i++) {
            uint64_t t = fs->pool.k[i];
            fs->pool.k[i] = fs->pool.k[fs->pool.n - 1 - i];
            fs->pool.k[fs->pool.n - 1 - i] = t;
        }
    }
    *key = fs->pool.k[--fs->pool.n];
    return 0;
}

/* ---- table ---- */

static size_t slot_of(const struct qs_fs *fs, uint64_t ino)
{
    uint64_t h = ino * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & (fs->icap - 1);
}

static struct inode *table_find(struct qs_fs *fs, uint64_t ino)
{
    if (!fs->icap)
        return NULL;
    for (struct inode *in = fs->itab[slot_of(fs, ino)]; in; in = in->hnext)
        if (in->ino == ino)
            return in;
    return NULL;
}

static int table_insert(struct qs_fs *fs, struct inode *in)
{
    if (fs->icount + 1 > fs->icap / 2) {
        size_t nc = fs->icap ? fs->icap * 2 : 1024;
        struct inode **nt = calloc(nc, sizeof *nt);
        if (!nt)
            return qs_err_set(QS_ENOMEM, "out of memory");
        struct inode **old = fs->itab;
        size_t oc = fs->icap;
        fs->itab = nt;
        fs->icap = nc;
        for (size_t i = 0; i < oc; i++)
            for (struct inode *p = old[i], *nx; p; p = nx) {
                nx = p->hnext;
                size_t s = slot_of(fs, p->ino);
                p->hnext = nt[s];
                nt[s] = p;
            }
        free(old);
    }
    size_t s = slot_of(fs, in->ino);
    in->hnext = fs->itab[s];
    fs->itab[s] = in;
    fs->icount++;
    return 0;
}

static void table_remove(struct qs_fs *fs, struct inode *in)
{
    struct inode **pp = &fs->itab[slot_of(fs, in->ino)];
    while (*pp && *pp != in)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = in->hnext;
        fs->icount--;
    }
}

static void inode_destroy(struct qs_fs *fs, struct inode *in)
{
    file_drop_cache(fs, in);
    free(in->btab);
    map_destroy(&in->m);
    if (in->dir)
        dir_free(in->dir);
    qs_fs_dinode_free(&in->a);
    pthread_rwlock_destroy(&in->io);
    pthread_mutex_destroy(&in->cmu);
    free(in);
}

void inode_table_free(struct qs_fs *fs)
{
    for (size_t i = 0; i < fs->icap; i++)
        for (struct inode *p = fs->itab[i], *nx; p; p = nx) {
            nx = p->hnext;
            inode_destroy(fs, p);
        }
    free(fs->itab);
    fs->itab = NULL;
    fs->icap = fs->icount = 0;
}

static struct inode *inode_alloc(uint64_t ino)
{
    struct inode *in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->ino = ino;
    map_init(&in->m);
    pthread_rwlock_init(&in->io, NULL);
    pthread_mutex_init(&in->cmu, NULL);
    return in;
}

int inode_from_disk(struct qs_fs *fs, struct inode *in, struct qs_fs_dinode *d)
{
    in->a = *d;
    memset(d, 0, sizeof *d);
    int rc = 0;
    if (S_ISREG(in->a.mode)) {
        if (in->a.npages)
            rc = map_from_pages(&in->m, in->a.nblocks, in->a.pages, in->a.npages, in->a.nalloc);
        else
            rc = map_from_inline(&in->m, in->a.nblocks, in->a.blocks, in->a.lens);
        free(in->a.blocks);
        free(in->a.lens);
        free(in->a.pages);
        in->a.blocks = in->a.pages = NULL;
        in->a.lens = NULL;
        in->a.npages = 0;
        in->a.nblocks = 0;
    }
    (void)fs;
    return rc;
}

int inode_get(struct qs_fs *fs, uint64_t ino, struct inode **out)
{
    struct inode *in = table_find(fs, ino);
    if (in) {
        if (in->bad)
            return -EIO;
        *out = in;
        return 0;
    }
    if (ino < QS_FS_ROOT_INO || ino == fs->hdr.journal_key)
        return -ESTALE;
    uint8_t *v = NULL;
    size_t n = 0;
    int rc = fs_get(fs, QS_FS_META, ino, &v, &n);
    if (rc == QS_ENOTFOUND)
        return -ESTALE;
    if (rc)
        return fs_errno(fs, rc, "loading inode", ino);
    struct qs_fs_dinode d;
    rc = qs_fs_dinode_decode(v, n, &d);
    free(v);
    if (rc)
        return fs_errno(fs, rc, "decoding inode", ino);
    in = inode_alloc(ino);
    if (!in) {
        qs_fs_dinode_free(&d);
        return -ENOMEM;
    }
    rc = inode_from_disk(fs, in, &d);
    if (rc == 0)
        rc = table_insert(fs, in);
    if (rc) {
        int e = fs_errno(fs, rc, "loading inode", ino);
        inode_destroy(fs, in);
        return e;
    }
    *out = in;
    return 0;
}

int inode_insert_new(struct qs_fs *fs, uint64_t ino, struct inode **out)
{
    struct inode *in = inode_alloc(ino);
    if (!in)
        return qs_err_set(QS_ENOMEM, "out of memory");
    if (table_insert(fs, in)) {
        inode_destroy(fs, in);
        return qs_err_set(QS_ENOMEM, "out of memory");
    }
    *out = in;
    return 0;
}

struct inode *inode_find(struct qs_fs *fs, uint64_t ino)
{
    return table_find(fs, ino);
}

int inode_prefetch(struct qs_fs *fs, const uint64_t *inos, size_t n)
{
    struct qs_zdb_op *ops = calloc(n ? n : 1, sizeof *ops);
    uint8_t(*keys)[8] = calloc(n ? n : 1, 8);
    size_t m = 0;
    if (!ops || !keys) {
        free(ops);
        free(keys);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (table_find(fs, inos[i]) || inos[i] < QS_FS_ROOT_INO)
            continue;
        qs_put64(keys[m], inos[i]);
        ops[m] = (struct qs_zdb_op){.kind = QS_ZDB_GET, .key = keys[m], .key_len = 8};
        m++;
    }
    if (m)
        (void)fs->kv->batch(fs->kv, QS_FS_META, ops, m);
    for (size_t i = 0; i < m; i++) {
        struct qs_fs_dinode d;
        uint64_t ino = qs_le64(keys[i]);
        if (ops[i].result || table_find(fs, ino) ||
            qs_fs_dinode_decode(ops[i].reply, ops[i].reply_len, &d))
            continue; /* inode_get reports it properly when it is asked for */
        struct inode *in = inode_alloc(ino);
        if (!in) {
            qs_fs_dinode_free(&d);
            continue;
        }
        if (inode_from_disk(fs, in, &d) || table_insert(fs, in))
            inode_destroy(fs, in);
    }
    fs_op_free(ops, m);
    free(ops);
    free(keys);
    return 0;
}

int inode_new(struct qs_fs *fs, mode_t mode, uid_t uid, gid_t gid, struct inode **out)
{
    uint64_t key;
    int rc = alloc_meta_key(fs, &key);
    if (rc)
        return fs_errno(fs, rc, "allocating an inode", 0);
    struct inode *in = inode_alloc(key);
    if (!in)
        return -ENOMEM;
    struct qs_fs_time now = fs_now();
    in->a.mode = mode;
    in->a.uid = uid;
    in->a.gid = gid;
    in->a.atime = in->a.mtime = in->a.ctime = in->a.btime = now;
    if (S_ISDIR(mode) && dir_init_empty(in) != 0) {
        inode_destroy(fs, in);
        return -ENOMEM;
    }
    if (table_insert(fs, in)) {
        inode_destroy(fs, in);
        return -ENOMEM;
    }
    inode_dirty(fs, in);
    *out = in;
    return 0;
}

void inode_dirty(struct qs_fs *fs, struct inode *in)
{
    if (!in->dirty) {
        in->dirty = true;
        fs->ndirty_meta++;
    }
}

/* Queues every key of a deleted inode for deletion at the next commit. */
static void inode_release_keys(struct qs_fs *fs, struct inode *in)
{
    int rc = keyvec_push(&fs->free_meta, in->ino);
    if (rc == 0 && S_ISREG(in->a.mode) &&
        map_cut(fs, in->ino, &in->m, 0, &fs->free_data, &fs->free_meta) != 0)
        rc = QS_EIO; /* a page could not be read: its blocks leak */
    if (in->dir)
        for (uint32_t i = 0; i < in->dir->nbuckets && rc == 0; i++)
            if (in->dir->bkeys[i])
                rc = keyvec_push(&fs->free_meta, in->dir->bkeys[i]);
    if (!in->dir && S_ISDIR(in->a.mode))
        for (uint32_t i = 0; i < in->a.nbuckets && rc == 0; i++)
            if (in->a.buckets[i])
                rc = keyvec_push(&fs->free_meta, in->a.buckets[i]);
    if (rc)
        qs_log(QS_LOG_WARN, "inode %llu: some of its values could not be freed and leak",
               (unsigned long long)in->ino);
}

void inode_maybe_free(struct qs_fs *fs, struct inode *in)
{
    if (in->ino == QS_FS_ROOT_INO || in->nlookup || in->opens || in->pins)
        return;
    if (in->a.nlink == 0 && !in->bad) {
        if (in->on_dlist) {
            struct inode **pp = &fs->dlist;
            while (*pp && *pp != in)
                pp = &(*pp)->dnext;
            if (*pp)
                *pp = in->dnext;
            in->on_dlist = false;
        }
        inode_release_keys(fs, in);
        if (in->dirty)
            fs->ndirty_meta--;
    } else if (in->dirty || in->on_dlist) {
        return; /* written at the next commit, evicted then */
    }
    table_remove(fs, in);
    inode_destroy(fs, in);
}

void inode_unpin(struct qs_fs *fs, struct inode *in)
{
    in->pins--;
    inode_maybe_free(fs, in);
}

void inode_fill_stat(struct qs_fs *fs, const struct inode *in, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = in->ino;
    st->st_mode = in->a.mode;
    st->st_nlink = in->a.nlink;
    st->st_uid = in->a.uid;
    st->st_gid = in->a.gid;
    st->st_rdev = in->a.rdev;
    st->st_size = (off_t)in->a.size;
    st->st_blksize = fs->bs;
    uint64_t bytes = 0;
    if (S_ISREG(in->a.mode)) {
        bytes = (in->m.nalloc + in->nnew) * fs->bs;
        uint64_t cap = (in->a.size + 511) & ~511ull;
        if (bytes > cap)
            bytes = cap;
    } else if (S_ISDIR(in->a.mode) || S_ISLNK(in->a.mode)) {
        bytes = 4096;
    }
    st->st_blocks = (blkcnt_t)(bytes / 512);
    st->st_atim.tv_sec = in->a.atime.sec;
    st->st_atim.tv_nsec = in->a.atime.nsec;
    st->st_mtim.tv_sec = in->a.mtime.sec;
    st->st_mtim.tv_nsec = in->a.mtime.nsec;
    st->st_ctim.tv_sec = in->a.ctime.sec;
    st->st_ctim.tv_nsec = in->a.ctime.nsec;
}
