/* lib/fs without FUSE, on the in-memory store: semantics, persistence, crashes at every
 * point of a commit, freed values, large files and directories, corrupt values. */
#include <dirent.h>
#include <errno.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs/fs.h"
#include "fs/kv.h"
#include "fs/map.h"
#include "util/mem.h"

#define R QS_FS_ROOT_INO

static struct qs_fs *mount_kv(struct qs_fs_kv *kv)
{
    struct qs_fs_opts o = {.kv = kv, .block_size = 4096, .cache_blocks = 4};
    struct qs_fs *fs = NULL;
    int rc = qs_fs_open(&fs, &o);
    if (rc)
        print_error("mount: %s\n", qs_err_msg());
    assert_int_equal(rc, 0);
    return fs;
}

static uint64_t mkfile(struct qs_fs *fs, uint64_t parent, const char *name, const char *content)
{
    struct stat st;
    assert_int_equal(qs_fs_mknod(fs, parent, name, S_IFREG | 0644, 0, 1000, 1000, &st), 0);
    if (content)
        assert_int_equal(
            qs_fs_write(fs, st.st_ino, 0, (const uint8_t *)content, strlen(content), false, NULL),
            0);
    return st.st_ino;
}

static uint64_t look(struct qs_fs *fs, uint64_t parent, const char *name)
{
    struct stat st;
    int rc = qs_fs_lookup(fs, parent, name, &st);
    return rc ? 0 : st.st_ino;
}

static void expect_content(struct qs_fs *fs, uint64_t ino, const char *want)
{
    uint8_t buf[256];
    size_t got;
    assert_int_equal(qs_fs_read(fs, ino, 0, sizeof buf, buf, &got), 0);
    assert_int_equal(got, strlen(want));
    assert_memory_equal(buf, want, got);
}

/* ---- a consistency check: every entry resolves, link counts add up ---- */

struct walk {
    struct qs_fs *fs;
    uint64_t inos[4096];
    unsigned links[4096];
    unsigned n, dirs;
    char names[512][256];
    uint64_t kids[512];
    unsigned nk;
};

static int collect(void *ud, const char *name, const struct stat *st, uint64_t ino, unsigned type,
                   uint64_t next)
{
    struct walk *w = ud;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    assert_true(w->nk < 512);
    snprintf(w->names[w->nk], sizeof w->names[w->nk], "%s", name);
    w->kids[w->nk++] = ino;
    return 0;
}

static void count_link(struct walk *w, uint64_t ino)
{
    for (unsigned i = 0; i < w->n; i++)
        if (w->inos[i] == ino) {
            w->links[i]++;
            return;
        }
    assert_true(w->n < 4096);
    w->inos[w->n] = ino;
    w->links[w->n++] = 1;
}

static void walk_dir(struct walk *w, uint64_t dir, unsigned depth)
{
    assert_true(depth < 64);
    struct walk sub = {0};
    struct walk *k = calloc(1, sizeof *k);
    assert_non_null(k);
    (void)sub;
    assert_int_equal(qs_fs_readdir(w->fs, dir, 0, false, collect, k), 0);
    struct stat dst;
    assert_int_equal(qs_fs_getattr(w->fs, dir, &dst), 0);
    unsigned subdirs = 0;
    for (unsigned i = 0; i < k->nk; i++) {
        struct stat st;
        assert_int_equal(qs_fs_lookup(w->fs, dir, k->names[i], &st), 0);
        assert_int_equal(st.st_ino, k->kids[i]);
        if (S_ISDIR(st.st_mode)) {
            subdirs++;
            w->dirs++;
            walk_dir(w, st.st_ino, depth + 1);
        } else {
            count_link(w, st.st_ino);
        }
        qs_fs_forget(w->fs, st.st_ino, 1);
    }
    assert_int_equal(dst.st_nlink, 2 + subdirs);
    free(k);
}

static void fsck(struct qs_fs *fs)
{
    struct walk *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->fs = fs;
    walk_dir(w, R, 0);
    for (unsigned i = 0; i < w->n; i++) {
        struct stat st;
        assert_int_equal(qs_fs_getattr(fs, w->inos[i], &st), 0);
        assert_int_equal(st.st_nlink, w->links[i]);
    }
    free(w);
}

/* ---- tests ---- */

static void test_basics(void **state)
{
    struct qs_fs_kv *kv;
    assert_int_equal(qs_fs_kv_mem_new(&kv), 0);
    struct qs_fs *fs = mount_kv(kv);
    struct stat st;
    uint64_t a = mkfile(fs, R, "a", "hello");
    assert_int_equal(qs_fs_mknod(fs, R, "a", S_IFREG | 0644, 0, 0, 0, &st), -EEXIST);
    assert_int_equal(qs_fs_mkdir(fs, R, "d", 0755, 1000, 1000, &st), 0);
    uint64_t d = st.st_ino;
    assert_int_equal(st.st_nlink, 2);
    assert_int_equal(qs_fs_getattr(fs, R, &st), 0);
    assert_int_equal(st.st_nlink, 3);
    mkfile(fs, d, "inner", "x");
    assert_int_equal(qs_fs_rmdir(fs, R, "d"), -ENOTEMPTY);
    assert_int_equal(qs_fs_unlink(fs, R, "d"), -EISDIR);
    assert_int_equal(qs_fs_rmdir(fs, R, "a"), -ENOTDIR);
    assert_int_equal(qs_fs_symlink(fs, R, "s", "a", 0, 0, &st), 0);
    char tgt[16];
    assert_int_equal(qs_fs_readlink(fs, st.st_ino, tgt, sizeof tgt), 0);
    assert_string_equal(tgt, "a");
    assert_int_equal(qs_fs_link(fs, a, d, "hard", &st), 0);
    assert_int_equal(st.st_nlink, 2);
    assert_int_equal(qs_fs_link(fs, d, R, "dirlink", &st), -EPERM);
    /* rename: over a file, directory moves, exchange, noreplace, loops */
    mkfile(fs, R, "b", "bbb");
    assert_int_equal(qs_fs_rename(fs, R, "b", R, "a", QS_FS_RENAME_NOREPLACE), -EEXIST);
    assert_int_equal(qs_fs_rename(fs, R, "b", R, "a", 0), 0);
    expect_content(fs, look(fs, R, "a"), "bbb");
    assert_int_equal(qs_fs_getattr(fs, a, &st), 0);
    assert_int_equal(st.st_nlink, 1); /* old a lives on as d/hard */
    assert_int_equal(qs_fs_mkdir(fs, R, "e", 0755, 0, 0, &st), 0);
    uint64_t e = st.st_ino;
    assert_int_equal(qs_fs_rename(fs, R, "e", d, "e2", 0), 0);
    assert_int_equal(qs_fs_getattr(fs, R, &st), 0);
    assert_int_equal(st.st_nlink, 3);
    assert_int_equal(qs_fs_getattr(fs, d, &st), 0);
    assert_int_equal(st.st_nlink, 3);
    assert_int_equal(look(fs, e, ".."), d);
    assert_int_equal(qs_fs_rename(fs, R, "d", e, "x", 0), -EINVAL); /* into itself */
    assert_int_equal(qs_fs_rename(fs, R, "a", d, "e2", 0), -EISDIR);
    assert_int_equal(qs_fs_rename(fs, d, "e2", R, "a", 0), -ENOTDIR);
    assert_int_equal(qs_fs_rename(fs, d, "e2", R, "a", QS_FS_RENAME_EXCHANGE), 0);
    assert_int_equal(look(fs, R, "a"), e);
    assert_int_equal(look(fs, e, ".."), R);
    assert_int_equal(qs_fs_getattr(fs, d, &st), 0);
    assert_int_equal(st.st_nlink, 2);
    /* xattrs */
    assert_int_equal(qs_fs_setxattr(fs, e, "user.k", "v1", 2, XATTR_REPLACE), -ENODATA);
    assert_int_equal(qs_fs_setxattr(fs, e, "user.k", "v1", 2, 0), 0);
    assert_int_equal(qs_fs_setxattr(fs, e, "user.k", "v2", 2, XATTR_CREATE), -EEXIST);
    char xb[16];
    assert_int_equal(qs_fs_getxattr(fs, e, "user.k", xb, sizeof xb), 2);
    assert_int_equal(qs_fs_getxattr(fs, e, "user.k", xb, 1), -ERANGE);
    assert_int_equal(qs_fs_listxattr(fs, e, xb, sizeof xb), 7);
    assert_int_equal(qs_fs_setxattr(fs, e, "bogus.k", "v", 1, 0), -EOPNOTSUPP);
    /* 32-bit ids and nanoseconds */
    struct stat in = {.st_uid = 4000000000u, .st_gid = 3000000000u};
    in.st_mtim.tv_sec = 1234567890;
    in.st_mtim.tv_nsec = 123456789;
    assert_int_equal(
        qs_fs_setattr(fs, e, &in, QS_FS_SET_UID | QS_FS_SET_GID | QS_FS_SET_MTIME, &st), 0);
    fsck(fs);
    assert_int_equal(qs_fs_close(fs), 0);
    /* everything back after a remount */
    fs = mount_kv(kv);
    assert_int_equal(qs_fs_getattr(fs, e, &st), 0);
    assert_int_equal(st.st_uid, 4000000000u);
    assert_int_equal(st.st_gid, 3000000000u);
    assert_int_equal(st.st_mtim.tv_nsec, 123456789);
    assert_int_equal(qs_fs_getxattr(fs, e, "user.k", xb, sizeof xb), 2);
    assert_memory_equal(xb, "v1", 2);
    expect_content(fs, look(fs, d, "hard"), "hello");
    expect_content(fs, look(fs, d, "inner"), "x");
    fsck(fs);
    assert_int_equal(qs_fs_close(fs), 0);
    kv->free(kv);
}

static void test_truncate_punch(void **state)
{
    struct qs_fs_kv *kv;
    assert_int_equal(qs_fs_kv_mem_new(&kv), 0);
    struct qs_fs *fs = mount_kv(kv);
    uint64_t f = mkfile(fs, R, "f", NULL);
    uint8_t buf[5 * 4096];
    memset(buf, 0xab, sizeof buf);
    assert_int_equal(qs_fs_write(fs, f, 0, buf, sizeof buf, false, NULL), 0);
    assert_int_equal(qs_fs_sync(fs), 0);
    /* shrink into a block, sync, grow: the cut bytes read as zeros */
    struct stat in = {.st_size = 5000}, st;
    assert_int_equal(qs_fs_setattr(fs, f, &in, QS_FS_SET_SIZE, &st), 0);
    assert_int_equal(qs_fs_sync(fs), 0);
    in.st_size = sizeof buf;
    assert_int_equal(qs_fs_setattr(fs, f, &in, QS_FS_SET_SIZE, &st), 0);
    uint8_t out[sizeof buf];
    size_t got;
    assert_int_equal(qs_fs_read(fs, f, 0, sizeof out, out, &got), 0);
    assert_int_equal(got, sizeof buf);
    for (size_t i = 0; i < sizeof out; i++)
        assert_int_equal(out[i], i < 5000 ? 0xab : 0);
    /* the same after a remount, from the store */
    assert_int_equal(qs_fs_close(fs), 0);
    fs = mount_kv(kv);
    assert_int_equal(qs_fs_read(fs, f, 0, sizeof out, out, &got), 0);
    for (size_t i = 0; i < sizeof out; i++)
        assert_int_equal(out[i], i < 5000 ? 0xab : 0);
    /* punching whole blocks frees their values */
    assert_int_equal(qs_fs_write(fs, f, 0, buf, sizeof buf, false, NULL), 0);
    assert_int_equal(qs_fs_sync(fs), 0);
    uint64_t v0, b0, v1, b1;
    qs_fs_kv_mem_count(kv, QS_FS_DATA, &v0, &b0);
    assert_int_equal(
        qs_fs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 3 * 4096), 0);
    assert_int_equal(qs_fs_sync(fs), 0);
    qs_fs_kv_mem_count(kv, QS_FS_DATA, &v1, &b1);
    assert_int_equal(v1, v0 - 2); /* blocks 1 and 2 entirely, 0 and 3 in part */
    assert_int_equal(qs_fs_read(fs, f, 0, sizeof out, out, &got), 0);
    for (size_t i = 0; i < sizeof out; i++)
        assert_int_equal(out[i], i >= 100 && i < 100 + 3 * 4096 ? 0 : 0xab);
    assert_int_equal(qs_fs_getattr(fs, f, &st), 0);
    assert_int_equal(st.st_size, sizeof buf);
    assert_int_equal(qs_fs_close(fs), 0);
    kv->free(kv);
}

/* Deleting everything gives every value back. */
static void test_values_freed(void **state)
{
    struct qs_fs_kv *kv;
    assert_int_equal(qs_fs_kv_mem_new(&kv), 0);
    struct qs_fs *fs = mount_kv(kv);
    assert_int_equal(qs_fs_close(fs), 0);
    uint64_t m0, d0, x;
    qs_fs_kv_mem_count(kv, QS_FS_META, &m0, &x);
    qs_fs_kv_mem_count(kv, QS_FS_DATA, &d0, &x);
    fs = mount_kv(kv);
    struct stat st;
    assert_int_equal(qs_fs_mkdir(fs, R, "dir", 0755, 0, 0, &st), 0);
    uint64_t dir = st.st_ino;
    uint8_t blob[70 * 4096]; /* more blocks than fit in the inode: map pages */
    memset(blob, 7, sizeof blob);
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "f%03d", i);
        uint64_t f = mkfile(fs, dir, name, NULL);
        assert_int_equal(qs_fs_write(fs, f, 0, blob, i % 50 == 0 ? sizeof blob : 10, false, NULL),
                         0);
        qs_fs_forget(fs, f, 1);
    }
    assert_int_equal(qs_fs_sync(fs), 0);
    qs_fs_forget(fs, dir, 1);
    assert_int_equal(qs_fs_close(fs), 0);
    fs = mount_kv(kv);
    fsck(fs);
    uint64_t f = look(fs, dir, "f050");
    uint8_t out[sizeof blob];
    size_t got;
    assert_int_equal(qs_fs_read(fs, f, 0, sizeof out, out, &got), 0);
    assert_int_equal(got, sizeof blob);
    assert_memory_equal(out, blob, sizeof blob);
    qs_fs_forget(fs, f, 1);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "f%03d", i);
        assert_int_equal(qs_fs_unlink(fs, dir, name), 0);
    }
    assert_int_equal(qs_fs_rmdir(fs, R, "dir"), 0);
    assert_int_equal(qs_fs_close(fs), 0);
    uint64_t m1, d1;
    qs_fs_kv_mem_count(kv, QS_FS_META, &m1, &x);
    qs_fs_kv_mem_count(kv, QS_FS_DATA, &d1, &x);
    assert_int_equal(m1, m0);
    assert_int_equal(d1, d0);
    kv->free(kv);
}

/* An unlinked file that is still open lives until released; after a crash while it was
 * open, the next mount frees it. */
static void test_orphans(void **state)
{
    struct qs_fs_kv *kv;
    assert_int_equal(qs_fs_kv_mem_new(&kv), 0);
    struct qs_fs *fs = mount_kv(kv);
    assert_int_equal(qs_fs_close(fs), 0);
    uint64_t m0, d0, x;
    qs_fs_kv_mem_count(kv, QS_FS_META, &m0, &x);
    qs_fs_kv_mem_count(kv, QS_FS_DATA, &d0, &x);
    fs = mount_kv(kv);
    uint64_t f = mkfile(fs, R, "f", "data that outlives its name");
    assert_int_equal(qs_fs_open_file(fs, f), 0);
    assert_int_equal(qs_fs_unlink(fs, R, "f"), 0);
    assert_int_equal(qs_fs_sync(fs), 0);
    expect_content(fs, f, "data that outlives its name");
    struct qs_fs_kv *crash;
    assert_int_equal(qs_fs_kv_mem_clone(kv, &crash), 0);
    assert_int_equal(qs_fs_release(fs, f), 0);
    qs_fs_forget(fs, f, 1);
    assert_int_equal(qs_fs_close(fs), 0);
    uint64_t m1, d1;
    qs_fs_kv_mem_count(kv, QS_FS_META, &m1, &x);
    qs_fs_kv_mem_count(kv, QS_FS_DATA, &d1, &x);
    assert_int_equal(m1, m0);
    assert_int_equal(d1, d0);
    /* the crashed copy: mounting frees the orphan and the pre-allocated keys */
    struct qs_fs *fs2 = mount_kv(crash);
    assert_int_equal(qs_fs_close(fs2), 0);
    qs_fs_kv_mem_count(crash, QS_FS_META, &m1, &x);
    qs_fs_kv_mem_count(crash, QS_FS_DATA, &d1, &x);
    assert_int_equal(m1, m0);
    assert_int_equal(d1, d0);
    crash->free(crash);
    kv->free(kv);
}

/* A crash after any number of store operations of a commit leaves a filesystem that
 * mounts, is consistent, and is either before or after that commit. */
static void test_crash_every_op(void **state)
{
    for (long cut = 0; cut < 400; cut++) {
        struct qs_fs_kv *kv;
        assert_int_equal(qs_fs_kv_mem_new(&kv), 0);
        struct qs_fs *fs = mount_kv(kv);
        struct stat st;
        assert_int_equal(qs_fs_mkdir(fs, R, "keep", 0755, 0, 0, &st), 0);
        uint64_t keep = st.st_ino;
        mkfile(fs, keep, "old", "old bytes");
        assert_int_equal(qs_fs_sync(fs), 0);
        /* a second commit with creations, a rename, a removal and file data */
        assert_int_equal(qs_fs_mkdir(fs, R, "new", 0755, 0, 0, &st), 0);
        for (int i = 0; i < 20; i++) {
            char n[16];
            snprintf(n, sizeof n, "n%d", i);
            mkfile(fs, st.st_ino, n, "fresh");
        }
        assert_int_equal(qs_fs_rename(fs, keep, "old", R, "moved", 0), 0);
        qs_fs_kv_mem_fail_after(kv, cut);
        int rc = qs_fs_sync(fs);
        struct qs_fs_kv *after;
        assert_int_equal(qs_fs_kv_mem_clone(kv, &after), 0);
        qs_fs_kv_mem_fail_after(kv, -1);
        (void)qs_fs_close(fs);
        kv->free(kv);
        fs = mount_kv(after);
        fsck(fs);
        uint64_t moved = look(fs, R, "moved"), old = look(fs, keep, "old");
        assert_true((moved != 0) != (old != 0)); /* one name, never both or none */
        expect_content(fs, moved ? moved : old, "old bytes");
        uint64_t nd = look(fs, R, "new");
        if (moved) {
            assert_true(nd != 0);
            for (int i = 0; i < 20; i++) {
                char n[16];
                snprintf(n, sizeof n, "n%d", i);
                expect_content(fs, look(fs, nd, n), "fresh");
            }
        } else {
            assert_int_equal(nd, 0);
        }
        assert_int_equal(qs_fs_close(fs), 0);
        after->free(after);
        if (rc == 0)
            break; /* the commit went through within the budget: every cut is covered */
    }
}

/* a readdir callback that takes 100 entries at a time */
struct page100 {
    unsigned n;
    uint64_t last;
};

static int cb(void *ud, const char *nm, const struct stat *st, uint64_t ino, unsigned type,
              uint64_t next)
{
    struct page100 *c = ud;
    if (c->n == 100)
        return 1;
    c->n++;
    c->last = next;
    return 0;
}

/* Found by fsx_zdbfs: a block rewritten in place after the last commit holds bytes past
 * the committed size; after a crash, growing the file must not show them. */
static void test_crash_tail_bytes_stay_cut(void **state)
{
    struct qs_fs_kv *kv;
    assert_int_equal(qs_fs_kv_mem_new(&kv), 0);
    struct qs_fs *fs = mount_kv(kv);
    uint64_t f = mkfile(fs, R, "f", NULL);
    uint8_t a[100], b[100];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    assert_int_equal(qs_fs_write(fs, f, 0, a, sizeof a, false, NULL), 0);
    assert_int_equal(qs_fs_fsync(fs, f, false), 0);
    /* more bytes reach the store, but no commit records the new size */
    assert_int_equal(qs_fs_write(fs, f, 100, b, sizeof b, false, NULL), 0);
    assert_int_equal(qs_fs_flush(fs, f), 0);
    struct qs_fs_kv *crash;
    assert_int_equal(qs_fs_kv_mem_clone(kv, &crash), 0);
    (void)qs_fs_close(fs);
    kv->free(kv);
    fs = mount_kv(crash);
    f = look(fs, R, "f");
    struct stat in = {.st_size = 300}, st;
    assert_int_equal(qs_fs_getattr(fs, f, &st), 0);
    assert_int_equal(st.st_size, 100);
    assert_int_equal(qs_fs_setattr(fs, f, &in, QS_FS_SET_SIZE, &st), 0);
    uint8_t out[300];
    size_t got;
    assert_int_equal(qs_fs_read(fs, f, 0, sizeof out, out, &got), 0);
    assert_int_equal(got, 300);
    assert_memory_equal(out, a, 100);
    for (int i = 100; i < 300; i++)
        assert_int_equal(out[i], 0);
    assert_int_equal(qs_fs_close(fs), 0);
    crash->free(crash);
}

/* zdb refusing writes: memory stays bounded (writes fail once twice the dirty limit is
 * cached), and what was accepted is written once zdb is back. */
static void test_dirty_memory_bounded(void **state)
{
    struct qs_fs_kv *kv;
    assert_int_equal(qs_fs_kv_mem_new(&kv), 0);
    struct qs_fs_opts o = {.kv = kv, .block_size = 4096, .dirty_max = 1 << 20};
    struct qs_fs *fs;
    assert_int_equal(qs_fs_open(&fs, &o), 0);
    uint64_t f = mkfile(fs, R, "f", NULL);
    static uint8_t chunk[64 * 1024];
    qs_fs_kv_mem_fail_after(kv, 0);
    uint64_t accepted = 0;
    int refused = 0;
    for (int i = 0; i < 200; i++) {
        memset(chunk, i + 1, sizeof chunk);
        int rc = qs_fs_write(fs, f, accepted, chunk, sizeof chunk, false, NULL);
        if (rc == 0)
            accepted += sizeof chunk;
        else
            refused++;
        struct qs_fs_counters c;
        qs_fs_counters(fs, &c);
        assert_true(c.dirty_bytes <= 2 * (1 << 20) + sizeof chunk);
    }
    assert_true(refused > 0);
    assert_true(accepted >= 2 * (1 << 20) - sizeof chunk);
    qs_fs_kv_mem_fail_after(kv, -1);
    assert_int_equal(qs_fs_fsync(fs, f, false), 0);
    assert_int_equal(qs_fs_close(fs), 0);
    fs = mount_kv(kv);
    struct stat st;
    assert_int_equal(qs_fs_getattr(fs, f, &st), 0);
    assert_int_equal((uint64_t)st.st_size, accepted);
    uint8_t out[sizeof chunk];
    size_t got;
    for (uint64_t off = 0; off < accepted; off += sizeof chunk) {
        assert_int_equal(qs_fs_read(fs, f, off, sizeof out, out, &got), 0);
        assert_int_equal(got, sizeof out);
        assert_int_equal(out[0], (uint8_t)(off / sizeof chunk + 1));
    }
    assert_int_equal(qs_fs_close(fs), 0);
    kv->free(kv);
}

/* A huge sparse file: its block map is loaded page by page and memory stays bounded. */
static void test_block_map_pages_bounded(void **state)
{
    struct qs_fs_kv *kv;
    assert_int_equal(qs_fs_kv_mem_new(&kv), 0);
    struct qs_fs *fs = mount_kv(kv);
    uint64_t f = mkfile(fs, R, "huge", NULL);
    const unsigned pages = 3 * MAP_PAGES_KEPT;
    const uint64_t stride = (uint64_t)QS_FS_PAGE_KEYS * 4096; /* one block per map page */
    for (unsigned p = 0; p < pages; p++) {
        uint8_t v = (uint8_t)(p + 1);
        assert_int_equal(qs_fs_write(fs, f, p * stride + 7, &v, 1, false, NULL), 0);
    }
    assert_int_equal(qs_fs_close(fs), 0);
    fs = mount_kv(kv);
    f = look(fs, R, "huge");
    struct qs_fs_counters c;
    for (int round = 0; round < 2; round++)
        for (unsigned p = 0; p < pages; p++) {
            uint8_t v[2];
            size_t got;
            assert_int_equal(qs_fs_read(fs, f, p * stride + 6, 2, v, &got), 0);
            assert_int_equal(got, 2);
            assert_int_equal(v[0], 0);
            assert_int_equal(v[1], (uint8_t)(p + 1));
            qs_fs_counters(fs, &c);
            assert_true(c.map_pages <= MAP_PAGES_KEPT + 1);
        }
    /* shrinking frees the pages past the end; the file reads back the same */
    struct stat in = {.st_size = (off_t)(10 * stride)}, st;
    assert_int_equal(qs_fs_setattr(fs, f, &in, QS_FS_SET_SIZE, &st), 0);
    assert_int_equal(qs_fs_getattr(fs, f, &st), 0);
    assert_int_equal(st.st_blocks, 10 * 8);
    assert_int_equal(qs_fs_close(fs), 0);
    fs = mount_kv(kv);
    f = look(fs, R, "huge");
    for (unsigned p = 0; p < 10; p++) {
        uint8_t v;
        size_t got;
        assert_int_equal(qs_fs_read(fs, f, p * stride + 7, 1, &v, &got), 0);
        assert_int_equal(v, (uint8_t)(p + 1));
    }
    assert_int_equal(qs_fs_unlink(fs, R, "huge"), 0);
    qs_fs_forget(fs, f, 1);
    assert_int_equal(qs_fs_close(fs), 0);
    uint64_t vals, bytes;
    qs_fs_kv_mem_count(kv, QS_FS_DATA, &vals, &bytes);
    assert_int_equal(vals, 1); /* only the header is left */
    kv->free(kv);
}

static void test_big_directory(void **state)
{
    struct qs_fs_kv *kv;
    assert_int_equal(qs_fs_kv_mem_new(&kv), 0);
    struct qs_fs *fs = mount_kv(kv);
    char name[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "entry-%05d", i);
        qs_fs_forget(fs, mkfile(fs, R, name, NULL), 1);
        if (i % 1000 == 999)
            assert_int_equal(qs_fs_sync(fs), 0);
    }
    for (int i = 0; i < 3000; i += 3) {
        snprintf(name, sizeof name, "entry-%05d", i);
        assert_int_equal(qs_fs_unlink(fs, R, name), 0);
    }
    assert_int_equal(qs_fs_close(fs), 0);
    fs = mount_kv(kv);
    struct walk *w = calloc(1, sizeof *w);
    /* count entries across several readdir calls resuming at offsets */
    unsigned total = 0;
    uint64_t off = 0;
    for (int round = 0; round < 1000; round++) {
        struct page100 c = {0};
        assert_int_equal(qs_fs_readdir(fs, R, off, false, cb, &c), 0);
        if (c.n == 0)
            break;
        total += c.n;
        off = c.last;
    }
    assert_int_equal(total, 2 + 2000);
    free(w);
    assert_int_equal(look(fs, R, "entry-00000"), 0);
    assert_true(look(fs, R, "entry-00001") != 0);
    assert_int_equal(qs_fs_close(fs), 0);
    kv->free(kv);
}

static void test_corrupt_values(void **state)
{
    struct qs_fs_kv *kv;
    assert_int_equal(qs_fs_kv_mem_new(&kv), 0);
    struct qs_fs *fs = mount_kv(kv);
    uint64_t f = mkfile(fs, R, "f", "content");
    struct stat st;
    assert_int_equal(qs_fs_mkdir(fs, R, "d", 0755, 0, 0, &st), 0);
    uint64_t d = st.st_ino;
    mkfile(fs, d, "g", "x");
    assert_int_equal(qs_fs_close(fs), 0);
    assert_int_equal(qs_fs_kv_mem_put(kv, QS_FS_META, f, "garbage", 7), 0);
    fs = mount_kv(kv);
    assert_int_equal(qs_fs_lookup(fs, R, "f", &st), -EIO);
    assert_int_equal(qs_fs_getattr(fs, f, &st), -EIO);
    assert_int_equal(qs_fs_lookup(fs, R, "d", &st), 0); /* the rest still works */
    (void)qs_fs_close(fs);
    /* a header that is not ours */
    struct qs_fs_kv *kv2;
    assert_int_equal(qs_fs_kv_mem_new(&kv2), 0);
    assert_int_equal(qs_fs_kv_mem_put(kv2, QS_FS_META, 0, "hello", 5), 0);
    struct qs_fs_opts o = {.kv = kv2};
    assert_int_not_equal(qs_fs_open(&fs, &o), 0);
    assert_non_null(strstr(qs_err_msg(), "meta namespace"));
    kv2->free(kv2);
    kv->free(kv);
}

/* A store that fails: errors come back as EIO, and once it works again nothing is lost. */
/* A store that runs a callback once, before a data batch: a writer's write-back runs without
 * the file's io, so the callback can write into the very blocks being written back. */
struct hook_kv {
    struct qs_fs_kv kv;
    struct qs_fs_kv *inner;
    void (*fn)(void *ud);
    void *ud;
    int fired;
};

static int hook_batch(struct qs_fs_kv *kv, enum qs_fs_ns ns, struct qs_zdb_op *ops, size_t n)
{
    struct hook_kv *h = (struct hook_kv *)kv;
    if (ns == QS_FS_DATA && h->fn && n > 0 && ops[0].kind == QS_ZDB_SET) {
        void (*fn)(void *) = h->fn;
        h->fn = NULL; /* once */
        h->fired++;
        fn(h->ud);
    }
    return h->inner->batch(h->inner, ns, ops, n);
}

static int hook_usage(struct qs_fs_kv *kv, enum qs_fs_ns ns, struct qs_fs_nsusage *out)
{
    struct hook_kv *h = (struct hook_kv *)kv;
    return h->inner->usage(h->inner, ns, out);
}

static void hook_free(struct qs_fs_kv *kv)
{
    (void)kv;
}

struct rewrite {
    struct qs_fs *fs;
    uint64_t ino;
    uint8_t *data;
    size_t len;
};

static void rewrite_all(void *ud)
{
    struct rewrite *r = ud;
    assert_int_equal(qs_fs_write(r->fs, r->ino, 0, r->data, r->len, false, NULL), 0);
}

/* Blocks written again while their write-back is under way stay dirty: the next fsync
 * stores the new bytes, and a remount reads them (not the copy that was in flight). */
static void test_write_during_writeback(void **state)
{
    (void)state;
    struct qs_fs_kv *mem;
    assert_int_equal(qs_fs_kv_mem_new(&mem), 0);
    struct hook_kv h = {.kv = {hook_batch, hook_usage, hook_free}, .inner = mem};
    struct qs_fs *fs = mount_kv(&h.kv);
    uint64_t f = mkfile(fs, R, "f", NULL);
    size_t len = 4u << 20; /* the write-back threshold of one file */
    uint8_t *a = malloc(len), *b = malloc(len), *got = malloc(len);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(got);
    for (size_t i = 0; i < len; i++) {
        a[i] = (uint8_t)('a' + i % 7);
        b[i] = (uint8_t)('B' + i % 11);
    }
    struct rewrite r = {fs, f, b, len};
    h.fn = rewrite_all;
    h.ud = &r;
    assert_int_equal(qs_fs_write(fs, f, 0, a, len, false, NULL), 0);
    assert_int_equal(h.fired, 1); /* the write-back ran, and the rewrite inside it */
    size_t n = 0;
    assert_int_equal(qs_fs_read(fs, f, 0, len, got, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(got, b, len);
    assert_int_equal(qs_fs_fsync(fs, f, false), 0);
    assert_int_equal(qs_fs_close(fs), 0);
    fs = mount_kv(mem);
    memset(got, 0, len);
    assert_int_equal(qs_fs_read(fs, f, 0, len, got, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(got, b, len);
    fsck(fs);
    assert_int_equal(qs_fs_close(fs), 0);
    mem->free(mem);
    free(a);
    free(b);
    free(got);
}

static void test_store_failure(void **state)
{
    struct qs_fs_kv *kv;
    assert_int_equal(qs_fs_kv_mem_new(&kv), 0);
    struct qs_fs *fs = mount_kv(kv);
    uint64_t f = mkfile(fs, R, "f", "before");
    qs_fs_kv_mem_fail_after(kv, 0);
    assert_int_equal(qs_fs_fsync(fs, f, false), -EIO);
    struct stat st;
    assert_int_equal(qs_fs_mknod(fs, R, "g", S_IFREG | 0644, 0, 0, 0, &st), 0); /* pool keys */
    qs_fs_kv_mem_fail_after(kv, -1);
    assert_int_equal(qs_fs_fsync(fs, f, false), 0);
    assert_int_equal(qs_fs_close(fs), 0);
    fs = mount_kv(kv);
    expect_content(fs, look(fs, R, "f"), "before");
    assert_true(look(fs, R, "g") != 0);
    fsck(fs);
    assert_int_equal(qs_fs_close(fs), 0);
    kv->free(kv);
}

/* A store that counts the batches sent to each namespace (over the memory one). */
struct counting_kv {
    struct qs_fs_kv base;
    struct qs_fs_kv *inner;
    unsigned batches[3];
    unsigned delay_us; /* before each data batch: a slow store widens races */
};

static int counting_batch(struct qs_fs_kv *kv, enum qs_fs_ns ns, struct qs_zdb_op *ops, size_t n)
{
    struct counting_kv *c = (struct counting_kv *)kv;
    c->batches[ns]++;
    if (c->delay_us && ns == QS_FS_DATA)
        usleep(c->delay_us);
    return c->inner->batch(c->inner, ns, ops, n);
}

static int counting_usage(struct qs_fs_kv *kv, enum qs_fs_ns ns, struct qs_fs_nsusage *out)
{
    struct counting_kv *c = (struct counting_kv *)kv;
    return c->inner->usage(c->inner, ns, out);
}

static void counting_free(struct qs_fs_kv *kv)
{
    (void)kv;
}

static struct qs_fs *mount_cache(struct qs_fs_kv *kv, unsigned cache_blocks)
{
    struct qs_fs_opts o = {.kv = kv, .block_size = 4096, .cache_blocks = cache_blocks};
    struct qs_fs *fs = NULL;
    assert_int_equal(qs_fs_open(&fs, &o), 0);
    return fs;
}

/* Several ranges of one file read together: right bytes for each (holes, a short last
 * block, past the end), the missing blocks in one batch when they fit the cache, each
 * range on its own when they do not, a store failure given to every range. */
static void test_read_many(void **state)
{
    struct counting_kv c = {.base = {counting_batch, counting_usage, counting_free}};
    assert_int_equal(qs_fs_kv_mem_new(&c.inner), 0);
    struct qs_fs *fs = mount_cache(&c.base, 16);
    uint64_t f = mkfile(fs, R, "f", NULL);
    enum { SIZE = 9 * 4096 + 2000 };
    static uint8_t want[SIZE];
    for (size_t i = 0; i < SIZE; i++)
        want[i] = (uint8_t)(i * 7 + i / 4096);
    assert_int_equal(qs_fs_write(fs, f, 0, want, SIZE, false, NULL), 0);
    assert_int_equal(
        qs_fs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 5 * 4096, 4096), 0);
    memset(want + 5 * 4096, 0, 4096);
    struct stat st;
    assert_int_equal(qs_fs_mkdir(fs, R, "d", 0755, 0, 0, &st), 0);
    uint64_t d = st.st_ino;
    assert_int_equal(qs_fs_close(fs), 0);

    static const struct {
        uint64_t off;
        size_t n, got;
    } ranges[] = {
        {0, 100, 100},               /* block 0 */
        {2 * 4096 + 10, 5000, 5000}, /* blocks 2 and 3 */
        {5 * 4096 - 50, 200, 200},   /* into the hole */
        {SIZE - 10, 100, 10},        /* the short last block, cut at the end */
        {SIZE + 10, 10, 0},          /* past the end */
        {3 * 4096, 0, 0},            /* nothing */
        {2 * 4096 + 4000, 300, 300}, /* blocks 2 and 3 again */
    };
    enum { N = sizeof ranges / sizeof ranges[0] };
    static uint8_t bufs[N][8192];
    struct qs_fs_rd r[N];
    for (unsigned cache = 16; cache >= 1; cache = cache == 16 ? 2 : cache - 1) {
        fs = mount_cache(&c.base, cache);
        for (unsigned j = 0; j < N; j++) {
            memset(bufs[j], 0xee, sizeof bufs[j]);
            r[j] = (struct qs_fs_rd){.off = ranges[j].off, .n = ranges[j].n, .buf = bufs[j]};
        }
        unsigned before = c.batches[QS_FS_DATA];
        assert_int_equal(qs_fs_read_many(fs, f, r, N), 0);
        unsigned fetches = c.batches[QS_FS_DATA] - before;
        for (unsigned j = 0; j < N; j++) {
            assert_int_equal(r[j].rc, 0);
            assert_int_equal(r[j].got, ranges[j].got);
            assert_memory_equal(bufs[j], want + ranges[j].off, ranges[j].got);
            assert_int_equal(bufs[j][ranges[j].got], 0xee); /* nothing past got */
        }
        /* blocks 0, 2, 3, 4, 9 are missing: one batch when they fit, else one per range */
        if (cache == 16)
            assert_int_equal(fetches, 1);
        else
            assert_true(fetches >= 4);
        assert_int_equal(qs_fs_close(fs), 0);
    }

    /* the store fails: every range says so, and the next read works */
    fs = mount_cache(&c.base, 16);
    for (unsigned j = 0; j < N; j++)
        r[j] = (struct qs_fs_rd){.off = ranges[j].off, .n = ranges[j].n, .buf = bufs[j]};
    assert_int_equal(qs_fs_getattr(fs, f, &st), 0); /* the inode is loaded, its blocks not */
    qs_fs_kv_mem_fail_after(c.inner, 0);
    assert_int_equal(qs_fs_read_many(fs, f, r, N), 0);
    for (unsigned j = 0; j < N; j++)
        if (ranges[j].got)
            assert_int_equal(r[j].rc, -EIO);
    qs_fs_kv_mem_fail_after(c.inner, -1);
    assert_int_equal(qs_fs_read_many(fs, f, r, N), 0);
    for (unsigned j = 0; j < N; j++) {
        assert_int_equal(r[j].rc, 0);
        assert_memory_equal(bufs[j], want + ranges[j].off, ranges[j].got);
    }
    assert_int_equal(qs_fs_read_many(fs, d, r, N), -EISDIR);
    assert_int_equal(qs_fs_read_many(fs, 999999, r, N), -ESTALE);
    fsck(fs);
    assert_int_equal(qs_fs_close(fs), 0);
    c.inner->free(c.inner);
}

struct reader_arg {
    struct qs_fs *fs;
    uint64_t ino;
    const uint8_t *want;
    size_t size;
    unsigned seed, bad;
};

static void *reader(void *p)
{
    struct reader_arg *a = p;
    uint8_t out[3 * 4096];
    unsigned s = a->seed;
    for (int k = 0; k < 1000; k++) {
        s = s * 1103515245u + 12345u;
        uint64_t off = (s >> 8) % a->size;
        size_t n = 1 + (s >> 4) % sizeof out, got;
        if (qs_fs_read(a->fs, a->ino, off, n, out, &got) != 0 ||
            got != (off + n <= a->size ? n : a->size - off) || memcmp(out, a->want + off, got) != 0)
            a->bad++;
    }
    return NULL;
}

/* Readers of one file at once, over a cache far smaller than what they read: a block one
 * of them found cached may be trimmed by another before it is copied (this read zeros). */
static void test_concurrent_readers(void **state)
{
    struct counting_kv c = {.base = {counting_batch, counting_usage, counting_free}};
    assert_int_equal(qs_fs_kv_mem_new(&c.inner), 0);
    struct qs_fs *fs = mount_cache(&c.base, 2);
    uint64_t f = mkfile(fs, R, "f", NULL);
    enum { SIZE = 40 * 4096 + 100 };
    static uint8_t want[SIZE];
    for (size_t i = 0; i < SIZE; i++)
        want[i] = (uint8_t)(1 + i % 251); /* no zero byte: a block read as a hole shows */
    assert_int_equal(qs_fs_write(fs, f, 0, want, SIZE, false, NULL), 0);
    assert_int_equal(qs_fs_close(fs), 0);
    fs = mount_cache(&c.base, 2); /* nothing cached */
    c.delay_us = 50;
    pthread_t t[6];
    struct reader_arg a[6];
    for (unsigned i = 0; i < 6; i++) {
        a[i] = (struct reader_arg){.fs = fs, .ino = f, .want = want, .size = SIZE, .seed = i};
        assert_int_equal(pthread_create(&t[i], NULL, reader, &a[i]), 0);
    }
    unsigned bad = 0;
    for (unsigned i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        bad += a[i].bad;
    }
    assert_int_equal(bad, 0);
    assert_int_equal(qs_fs_close(fs), 0);
    c.inner->free(c.inner);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basics),
        cmocka_unit_test(test_truncate_punch),
        cmocka_unit_test(test_values_freed),
        cmocka_unit_test(test_orphans),
        cmocka_unit_test(test_crash_every_op),
        cmocka_unit_test(test_big_directory),
        cmocka_unit_test(test_corrupt_values),
        cmocka_unit_test(test_store_failure),
        cmocka_unit_test(test_crash_tail_bytes_stay_cut),
        cmocka_unit_test(test_dirty_memory_bounded),
        cmocka_unit_test(test_write_during_writeback),
        cmocka_unit_test(test_block_map_pages_bounded),
        cmocka_unit_test(test_read_many),
        cmocka_unit_test(test_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
