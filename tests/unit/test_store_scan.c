/* Unit tests for lib/store/scan.c: walking a namespace in append order both ways, live
 * entries only or all of them, across rotations (also empty and missing index files), in
 * user and sequential mode, entries still batched in memory, cursors (valid and forged),
 * KEYCUR-style key positions, the step budget, stale `previous` hints, version chains
 * (HISTORY) and raw data entry reads (DATA RAW).
 *
 * Each test compares the walk with the list of keys the test itself wrote. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/format.h"
#include "store/ns.h"
#include "store/scan.h"
#include "store/store.h"
#include "util/mem.h"

/* ---- environment --------------------------------------------------------------------- */

struct env {
    char root[512];
    char idx[600], dat[600];
    struct zdb_store_opts opts;
    struct zdb_store *st;
};

static char g_root[512]; /* removed by the teardown when a test fails half-way */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void env_open(struct env *e)
{
    int rc = zdb_store_open(&e->st, &e->opts);
    if (rc != 0)
        fail_msg("zdb_store_open: %d %s", rc, qs_err_msg());
}

static void env_init(struct env *e, int fixed_mode)
{
    memset(e, 0, sizeof(*e));
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(e->root, sizeof(e->root), "%s/qsfs-scan-test-XXXXXX", tmp);
    assert_non_null(mkdtemp(e->root));
    memcpy(g_root, e->root, sizeof(g_root));
    snprintf(e->idx, sizeof(e->idx), "%s/index", e->root);
    snprintf(e->dat, sizeof(e->dat), "%s/data", e->root);
    e->opts.index_dir = e->idx;
    e->opts.data_dir = e->dat;
    e->opts.datasize = ZDB_DATASIZE_MIN;
    e->opts.fixed_mode = fixed_mode;
    env_open(e);
}

static void env_reopen(struct env *e)
{
    zdb_store_close(e->st);
    e->st = NULL;
    env_open(e);
}

static void env_free(struct env *e)
{
    zdb_store_close(e->st);
    e->st = NULL;
    nftw(e->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    g_root[0] = '\0';
}

static int teardown(void **state)
{
    (void)state;
    if (g_root[0])
        nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    g_root[0] = '\0';
    return 0;
}

static struct zdb_ns *dflt(struct env *e)
{
    struct zdb_ns *ns = zdb_store_find(e->st, "default", 7);
    assert_non_null(ns);
    return ns;
}

/* ---- helpers ------------------------------------------------------------------------- */

static void set_str(struct zdb_ns *ns, const char *k, const char *v)
{
    struct zdb_setres res;
    int rc = zdb_ns_set(ns, (const uint8_t *)k, strlen(k), (const uint8_t *)v, strlen(v), 0, &res);
    if (rc != 0)
        fail_msg("set %s: %d %s", k, rc, qs_err_msg());
}

static void del_str(struct zdb_ns *ns, const char *k)
{
    assert_int_equal(zdb_ns_del(ns, (const uint8_t *)k, strlen(k), 0), 0);
}

/* seq mode: appends v, returns its id */
static uint64_t seq_add(struct zdb_ns *ns, const char *v)
{
    struct zdb_setres res;
    assert_int_equal(zdb_ns_set(ns, NULL, 0, (const uint8_t *)v, strlen(v), 0, &res), 0);
    assert_int_equal(res.keylen, 8);
    return qs_le64(res.key);
}

static void seq_update(struct zdb_ns *ns, uint64_t id, const char *v)
{
    uint8_t k[8];
    qs_put64(k, id);
    struct zdb_setres res;
    assert_int_equal(zdb_ns_set(ns, k, 8, (const uint8_t *)v, strlen(v), 0, &res), 0);
}

#define WALK_MAX 4096

/* Keys met walking the whole namespace, joined with ',' (seq ids as decimal). */
static void walk(struct zdb_ns *ns, bool backward, bool all, char *out, size_t cap)
{
    struct zdb_scan it;
    zdb_scan_init(&it, ns, all);
    out[0] = '\0';
    size_t n = 0;
    int rc = backward ? zdb_scan_last(&it) : zdb_scan_first(&it);
    for (int i = 0; rc == 0; i++) {
        assert_true(i < WALK_MAX);
        char k[300];
        if (ns->mode == ZDB_MODE_SEQ)
            snprintf(k, sizeof(k), "%llu", (unsigned long long)qs_le64(it.key));
        else
            snprintf(k, sizeof(k), "%.*s", (int)it.e.keylen, (const char *)it.key);
        if (all && !it.live)
            snprintf(k + strlen(k), sizeof(k) - strlen(k), "*");
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", k);
        assert_true(n < cap);
        rc = backward ? zdb_scan_prev(&it) : zdb_scan_next(&it);
    }
    if (rc != QS_ENOTFOUND)
        fail_msg("walk ended with %d: %s", rc, qs_err_msg());
}

static void assert_walk(struct zdb_ns *ns, bool all, const char *forward, const char *backward)
{
    char got[8192];
    walk(ns, false, all, got, sizeof(got));
    assert_string_equal(got, forward);
    walk(ns, true, all, got, sizeof(got));
    assert_string_equal(got, backward);
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_empty(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, -1);
    struct zdb_scan it;
    zdb_scan_init(&it, dflt(&e), false);
    assert_int_equal(zdb_scan_first(&it), QS_ENOTFOUND);
    assert_int_equal(zdb_scan_last(&it), QS_ENOTFOUND);
    /* also after rotations that left only empty files */
    assert_int_equal(zdb_ns_jump(dflt(&e)), 0);
    assert_int_equal(zdb_ns_jump(dflt(&e)), 0);
    assert_int_equal(zdb_scan_first(&it), QS_ENOTFOUND);
    assert_int_equal(zdb_scan_last(&it), QS_ENOTFOUND);
    /* everything deleted */
    set_str(dflt(&e), "a", "1");
    del_str(dflt(&e), "a");
    assert_int_equal(zdb_scan_first(&it), QS_ENOTFOUND);
    assert_int_equal(zdb_scan_last(&it), QS_ENOTFOUND);
    assert_walk(dflt(&e), true, "a*", "a*");
    env_free(&e);
}

static void test_user_order(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, -1);
    struct zdb_ns *ns = dflt(&e);
    set_str(ns, "k0", "v0");
    set_str(ns, "k1", "v1");
    set_str(ns, "k2", "v2");
    set_str(ns, "k3", "v3");
    set_str(ns, "k1", "v1b"); /* the old k1 is now dead, the new one comes last */
    del_str(ns, "k2");
    set_str(ns, "k3", "v3"); /* same value: nothing written */
    assert_walk(ns, false, "k0,k3,k1", "k1,k3,k0");
    assert_walk(ns, true, "k0,k1*,k2*,k3,k1", "k1,k3,k2*,k1*,k0");
    /* and after a reload from disk */
    env_reopen(&e);
    ns = dflt(&e);
    assert_walk(ns, false, "k0,k3,k1", "k1,k3,k0");
    env_free(&e);
}

static void test_rotations(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, -1);
    struct zdb_ns *ns = dflt(&e);
    set_str(ns, "a", "1");
    set_str(ns, "b", "2");
    assert_int_equal(zdb_ns_jump(ns), 0);
    assert_int_equal(zdb_ns_jump(ns), 0); /* i1 stays empty */
    set_str(ns, "c", "3");
    set_str(ns, "a", "4"); /* a moves to i2, its old entry in i0 is flagged in place */
    assert_int_equal(zdb_ns_jump(ns), 0);
    set_str(ns, "d", "5");
    assert_int_equal(zdb_ns_jump(ns), 0); /* the active file is empty */
    assert_walk(ns, false, "b,c,a,d", "d,a,c,b");
    /* a missing index file in the middle (i1 held nothing) is stepped over */
    char p[700];
    snprintf(p, sizeof(p), "%s/default/i1", e.idx);
    assert_int_equal(unlink(p), 0);
    assert_walk(ns, false, "b,c,a,d", "d,a,c,b");
    env_free(&e);
}

/* Values big enough to rotate on their own at the 512 KiB data file size. */
static void test_rotation_by_size(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, -1);
    struct zdb_ns *ns = dflt(&e);
    static char big[100 * 1024];
    memset(big, 'x', sizeof(big) - 1);
    char want[4096] = "", rwant[4096] = "";
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof(k), "big%02d", i);
        big[0] = (char)('a' + i);
        set_str(ns, k, big);
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s", i ? "," : "", k);
    }
    for (int i = 19; i >= 0; i--)
        snprintf(rwant + strlen(rwant), sizeof(rwant) - strlen(rwant), "%sbig%02d",
                 i < 19 ? "," : "", i);
    assert_true(ns->fileid >= 3);
    assert_walk(ns, false, want, rwant);
    env_free(&e);
}

static void test_batched_entries(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, -1);
    struct zdb_ns *ns = dflt(&e);
    set_str(ns, "on-disk", "1");
    zdb_store_batch_begin(e.st);
    set_str(ns, "pending1", "2");
    set_str(ns, "on-disk", "3"); /* the flag on the old entry is a pending patch */
    set_str(ns, "pending2", "4");
    assert_true(ns->widx.len > 0); /* really still in memory */
    assert_walk(ns, false, "pending1,on-disk,pending2", "pending2,on-disk,pending1");
    assert_walk(ns, true, "on-disk*,pending1,on-disk,pending2",
                "pending2,on-disk,pending1,on-disk*");
    assert_int_equal(zdb_store_batch_end(e.st), 0);
    assert_walk(ns, false, "pending1,on-disk,pending2", "pending2,on-disk,pending1");
    env_free(&e);
}

static void test_seq(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, ZDB_MODE_SEQ);
    struct zdb_ns *ns = dflt(&e);
    assert_int_equal(seq_add(ns, "zero"), 0);
    assert_int_equal(seq_add(ns, "one"), 1);
    assert_int_equal(zdb_ns_jump(ns), 0);
    assert_int_equal(seq_add(ns, "two"), 2);
    seq_update(ns, 0, "zero-b"); /* rewrites slot 0 in i0, appends a dead copy (slot 3) */
    uint8_t k1[8];
    qs_put64(k1, 1);
    assert_int_equal(zdb_ns_del(ns, k1, 8, 0), 0);
    assert_int_equal(seq_add(ns, "four"), 4);
    /* slots in order; the copy at slot 3 carries key 0 */
    assert_walk(ns, false, "0,2,4", "4,2,0");
    assert_walk(ns, true, "0,1*,2,0*,4", "4,0*,2,1*,0");
    env_reopen(&e);
    assert_walk(dflt(&e), false, "0,2,4", "4,2,0");
    env_free(&e);
}

static void test_cursor(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, -1);
    struct zdb_ns *ns = dflt(&e);
    set_str(ns, "a", "1");
    set_str(ns, "bb", "22");
    assert_int_equal(zdb_ns_jump(ns), 0);
    set_str(ns, "ccc", "333");

    struct zdb_scan it;
    zdb_scan_init(&it, ns, false);
    assert_int_equal(zdb_scan_first(&it), 0);
    assert_int_equal(zdb_scan_next(&it), 0); /* on "bb" */
    uint8_t cur[ZDB_CURSOR_SIZE];
    zdb_scan_cursor(&it, cur);
    /* layout: keylen, fileid, length, offset, crc */
    assert_int_equal(cur[0], 2);
    assert_int_equal(qs_le32(cur + 1), 0);
    assert_int_equal(qs_le32(cur + 5), 2);
    assert_int_equal(qs_le32(cur + 9), ZDB_IDX_HEADER_SIZE + ZDB_IDX_ENTRY_SIZE + 1);
    assert_int_equal(qs_le32(cur + 13), it.e.crc);

    struct zdb_scan it2;
    zdb_scan_init(&it2, ns, false);
    assert_int_equal(zdb_scan_seek_cursor(&it2, cur, sizeof(cur)), 0);
    assert_memory_equal(it2.key, "bb", 2);
    assert_int_equal(zdb_scan_next(&it2), 0);
    assert_memory_equal(it2.key, "ccc", 3);
    assert_int_equal(zdb_scan_next(&it2), QS_ENOTFOUND);
    assert_memory_equal(it2.key, "ccc", 3); /* stays on the last entry */
    assert_int_equal(zdb_scan_seek_cursor(&it2, cur, sizeof(cur)), 0);
    assert_int_equal(zdb_scan_prev(&it2), 0);
    assert_memory_equal(it2.key, "a", 1);

    /* a cursor stays usable after its entry is deleted */
    del_str(ns, "bb");
    assert_int_equal(zdb_scan_seek_cursor(&it2, cur, sizeof(cur)), 0);
    assert_false(it2.live);
    assert_int_equal(zdb_scan_next(&it2), 0);
    assert_memory_equal(it2.key, "ccc", 3);

    /* forged or damaged cursors */
    uint8_t bad[ZDB_CURSOR_SIZE + 1];
    assert_int_equal(zdb_scan_seek_cursor(&it2, cur, 16), QS_EINVAL);
    memcpy(bad, cur, sizeof(cur));
    bad[17] = 0;
    assert_int_equal(zdb_scan_seek_cursor(&it2, bad, 18), QS_EINVAL);
    static const struct {
        size_t at;
        uint32_t v;
    } forge[] = {
        {13, 0xdeadbeef}, /* crc */
        {5, 3},           /* length */
        {1, 1},           /* file id: another file */
        {1, 7},           /* file id: past the active file */
        {1, 0xffffffff},  /* file id: far away */
        {9, 0},           /* offset in the header */
        {9, 30},          /* offset inside an entry */
        {9, 1u << 30},    /* offset past the end */
        {9, 0xffffffff},  /* offset at the top */
    };
    for (size_t i = 0; i < sizeof(forge) / sizeof(forge[0]); i++) {
        memcpy(bad, cur, sizeof(cur));
        qs_put32(bad + forge[i].at, forge[i].v);
        assert_int_equal(zdb_scan_seek_cursor(&it2, bad, ZDB_CURSOR_SIZE), QS_EINVAL);
    }
    memcpy(bad, cur, sizeof(cur));
    bad[0] = 3; /* key length */
    assert_int_equal(zdb_scan_seek_cursor(&it2, bad, ZDB_CURSOR_SIZE), QS_EINVAL);
    /* every single byte flipped: rejected */
    for (size_t i = 0; i < ZDB_CURSOR_SIZE; i++) {
        memcpy(bad, cur, sizeof(cur));
        bad[i] ^= 0x5a;
        int rc = zdb_scan_seek_cursor(&it2, bad, ZDB_CURSOR_SIZE);
        assert_int_equal(rc, QS_EINVAL);
    }
    env_free(&e);
}

static void test_seek_key(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, -1);
    struct zdb_ns *ns = dflt(&e);
    set_str(ns, "x", "1");
    set_str(ns, "y", "2");
    set_str(ns, "x", "3");
    struct zdb_scan it;
    zdb_scan_init(&it, ns, false);
    assert_int_equal(zdb_scan_seek_key(&it, (const uint8_t *)"x", 1), 0);
    assert_true(it.live);
    assert_int_equal(it.e.length, 1);
    assert_int_equal(zdb_scan_prev(&it), 0);
    assert_memory_equal(it.key, "y", 1);
    assert_int_equal(zdb_scan_seek_key(&it, (const uint8_t *)"nope", 4), QS_ENOTFOUND);
    del_str(ns, "y");
    assert_int_equal(zdb_scan_seek_key(&it, (const uint8_t *)"y", 1), QS_ENOTFOUND);
    env_free(&e);

    env_init(&e, ZDB_MODE_SEQ);
    ns = dflt(&e);
    seq_add(ns, "a");
    seq_add(ns, "b");
    uint8_t k[8];
    qs_put64(k, 1);
    zdb_scan_init(&it, ns, false);
    assert_int_equal(zdb_scan_seek_key(&it, k, 8), 0);
    assert_int_equal(it.off, ZDB_IDX_HEADER_SIZE + ZDB_SEQ_ENTRY_SIZE);
    assert_int_equal(zdb_scan_seek_key(&it, k, 7), QS_ENOTFOUND);
    qs_put64(k, 2);
    assert_int_equal(zdb_scan_seek_key(&it, k, 8), QS_ENOTFOUND);
    qs_put64(k, 0);
    assert_int_equal(zdb_ns_del(ns, k, 8, 0), 0);
    assert_int_equal(zdb_scan_seek_key(&it, k, 8), QS_ENOTFOUND);
    env_free(&e);
}

static void test_budget(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, -1);
    struct zdb_ns *ns = dflt(&e);
    set_str(ns, "first", "1");
    for (int i = 0; i < 50; i++) {
        char k[16];
        snprintf(k, sizeof(k), "dead%d", i);
        set_str(ns, k, "x");
        del_str(ns, k);
    }
    set_str(ns, "last", "2");
    struct zdb_scan it;
    zdb_scan_init(&it, ns, false);
    it.budget = 8;
    assert_int_equal(zdb_scan_first(&it), 0);
    int rc, eagain = 0, i;
    for (i = 0; i < 100; i++) {
        rc = zdb_scan_next(&it);
        if (rc != QS_EAGAIN)
            break;
        eagain++;
        assert_false(it.live); /* stands on a dead entry, resumable by cursor */
        uint8_t cur[ZDB_CURSOR_SIZE];
        zdb_scan_cursor(&it, cur);
        struct zdb_scan again;
        zdb_scan_init(&again, ns, false);
        assert_int_equal(zdb_scan_seek_cursor(&again, cur, sizeof(cur)), 0);
        assert_int_equal(again.off, it.off);
    }
    assert_int_equal(rc, 0);
    assert_memory_equal(it.key, "last", 4);
    assert_int_equal(eagain, 50 / 8); /* 50 dead entries, a stop after every 8 */
    /* backward as well */
    assert_int_equal(zdb_scan_last(&it), 0);
    for (i = 0, eagain = 0; i < 100; i++) {
        rc = zdb_scan_prev(&it);
        if (rc != QS_EAGAIN)
            break;
        eagain++;
    }
    assert_int_equal(rc, 0);
    assert_memory_equal(it.key, "first", 5);
    assert_int_equal(eagain, 50 / 8);
    env_free(&e);
}

/* Backward walks must not trust `previous`: damage every hint on disk. */
static void test_stale_previous(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, -1);
    struct zdb_ns *ns = dflt(&e);
    set_str(ns, "a", "1");
    set_str(ns, "bbbb", "2");
    set_str(ns, "cc", "3");
    assert_int_equal(zdb_ns_jump(ns), 0);
    set_str(ns, "d", "4");
    set_str(ns, "eeeee", "5");
    zdb_store_close(e.st);
    e.st = NULL;
    for (int f = 0; f < 2; f++) {
        char p[700];
        snprintf(p, sizeof(p), "%s/default/i%d", e.idx, f);
        int fd = open(p, O_RDWR);
        assert_true(fd >= 0);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        uint64_t off = ZDB_IDX_HEADER_SIZE;
        while (off + ZDB_IDX_ENTRY_SIZE <= (uint64_t)st.st_size) {
            uint8_t h[ZDB_IDX_ENTRY_SIZE];
            assert_int_equal(pread(fd, h, sizeof(h), (off_t)off), (ssize_t)sizeof(h));
            uint8_t junk[4];
            /* every hint names the first entry of a file: a real entry, but the wrong one */
            qs_put32(junk, ZDB_IDX_HEADER_SIZE);
            assert_int_equal(pwrite(fd, junk, 4, (off_t)off + 9), 4);
            off += ZDB_IDX_ENTRY_SIZE + h[0];
        }
        close(fd);
    }
    env_open(&e);
    assert_walk(dflt(&e), false, "a,bbbb,cc,d,eeeee", "eeeee,d,cc,bbbb,a");
    env_free(&e);
}

/* Version chains through parentid/parentoff, as HISTORY walks them. */
static void test_history_chain(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, -1);
    struct zdb_ns *ns = dflt(&e);
    set_str(ns, "h", "v1");
    assert_int_equal(zdb_ns_jump(ns), 0);
    set_str(ns, "h", "v22");
    set_str(ns, "h", "v333");
    struct zdb_scan it;
    zdb_scan_init(&it, ns, false);
    assert_int_equal(zdb_scan_seek_key(&it, (const uint8_t *)"h", 1), 0);
    const char *want[] = {"v333", "v22", "v1"};
    for (int i = 0; i < 3; i++) {
        struct zdb_loc loc;
        zdb_scan_loc(&it, &loc);
        uint8_t buf[16];
        assert_int_equal(loc.length, strlen(want[i]));
        assert_int_equal(zdb_ns_read(ns, &loc, buf, NULL), 0);
        assert_memory_equal(buf, want[i], loc.length);
        if (i < 2) {
            assert_true(it.e.parentid != 0 || it.e.parentoff != 0);
            assert_int_equal(zdb_scan_seek(&it, it.e.parentid, it.e.parentoff), 0);
            assert_false(it.live);
            assert_memory_equal(it.key, "h", 1);
        }
    }
    assert_int_equal(it.e.parentid, 0);
    assert_int_equal(it.e.parentoff, 0);
    /* positions that are no entry */
    assert_int_equal(zdb_scan_seek(&it, 0, 3), QS_EINVAL);
    assert_int_equal(zdb_scan_seek(&it, 0, 1u << 31), QS_EINVAL);
    assert_int_equal(zdb_scan_seek(&it, 9, ZDB_IDX_HEADER_SIZE), QS_EINVAL);
    env_free(&e);

    env_init(&e, ZDB_MODE_SEQ);
    ns = dflt(&e);
    seq_add(ns, "s1");
    seq_update(ns, 0, "s22");
    seq_update(ns, 0, "s333");
    uint8_t k[8];
    qs_put64(k, 0);
    zdb_scan_init(&it, ns, false);
    assert_int_equal(zdb_scan_seek_key(&it, k, 8), 0);
    const char *swant[] = {"s333", "s22", "s1"};
    for (int i = 0; i < 3; i++) {
        struct zdb_loc loc;
        zdb_scan_loc(&it, &loc);
        uint8_t buf[16];
        assert_int_equal(loc.length, strlen(swant[i]));
        assert_int_equal(zdb_ns_read(ns, &loc, buf, NULL), 0);
        assert_memory_equal(buf, swant[i], loc.length);
        assert_memory_equal(it.key, k, 8);
        if (i < 2)
            assert_int_equal(zdb_scan_seek(&it, it.e.parentid, it.e.parentoff), 0);
    }
    assert_int_equal(it.e.parentid, 0);
    assert_int_equal(it.e.parentoff, 0);
    env_free(&e);
}

static void test_data_read(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, -1);
    struct zdb_ns *ns = dflt(&e);
    set_str(ns, "key1", "payload-one");
    set_str(ns, "key2", "p2");
    del_str(ns, "key1");
    struct zdb_dat_entry d;
    uint8_t key[ZDB_MAX_KEY];
    uint8_t *val = NULL;
    uint64_t off = ZDB_DAT_HEADER_SIZE;
    assert_int_equal(zdb_scan_data_read(ns, 0, off, &d, key, &val), 0);
    assert_int_equal(d.keylen, 4);
    assert_memory_equal(key, "key1", 4);
    assert_int_equal(d.length, 11);
    assert_memory_equal(val, "payload-one", 11);
    assert_int_equal(d.flags, 0);
    assert_int_equal(d.previous, 0);
    free(val);
    uint64_t off2 = off + ZDB_DAT_ENTRY_SIZE + 4 + 11;
    assert_int_equal(zdb_scan_data_read(ns, 0, off2, &d, key, &val), 0);
    assert_memory_equal(val, "p2", 2);
    assert_int_equal(d.previous, off);
    free(val);
    uint64_t off3 = off2 + ZDB_DAT_ENTRY_SIZE + 4 + 2;
    assert_int_equal(zdb_scan_data_read(ns, 0, off3, &d, key, NULL), 0); /* the tombstone */
    assert_int_equal(d.flags, ZDB_DAT_DELETED);
    assert_int_equal(d.length, 0);
    assert_memory_equal(key, "key1", 4);
    uint64_t size;
    assert_int_equal(zdb_scan_data_size(ns, 0, &size), 0);
    assert_int_equal(size, off3 + ZDB_DAT_ENTRY_SIZE + 4);
    /* outside, inside the header, torn, missing file */
    assert_int_equal(zdb_scan_data_read(ns, 0, size, &d, key, &val), QS_EINVAL);
    assert_int_equal(zdb_scan_data_read(ns, 0, 1ull << 40, &d, key, &val), QS_EINVAL);
    assert_int_equal(zdb_scan_data_read(ns, 0, 0, &d, key, &val), QS_EINVAL);
    assert_int_equal(zdb_scan_data_read(ns, 0, 27, &d, key, &val), QS_EINVAL);
    assert_int_equal(zdb_scan_data_read(ns, 0, size - 1, &d, key, &val), QS_ECORRUPT);
    assert_int_equal(zdb_scan_data_read(ns, 5, off, &d, key, &val), QS_ENOTFOUND);
    assert_int_equal(zdb_scan_data_size(ns, 5, &size), QS_ENOTFOUND);
    /* every offset of the file: an entry, or an error; never out of bounds (ASan) */
    for (uint64_t o = 0; o < size + 4; o++) {
        val = NULL;
        int rc = zdb_scan_data_read(ns, 0, o, &d, key, &val);
        assert_true(rc == 0 || rc == QS_EINVAL || rc == QS_ECORRUPT);
        if (rc == 0)
            assert_true(o + ZDB_DAT_ENTRY_SIZE + d.keylen + d.length <= size);
        free(val);
    }
    /* batched, not yet written */
    zdb_store_batch_begin(e.st);
    set_str(ns, "key3", "p3");
    assert_true(ns->wdat.len > 0);
    assert_int_equal(zdb_scan_data_read(ns, 0, size, &d, key, &val), 0);
    assert_memory_equal(val, "p3", 2);
    free(val);
    assert_int_equal(zdb_store_batch_end(e.st), 0);
    env_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_empty, teardown),
        cmocka_unit_test_teardown(test_user_order, teardown),
        cmocka_unit_test_teardown(test_rotations, teardown),
        cmocka_unit_test_teardown(test_rotation_by_size, teardown),
        cmocka_unit_test_teardown(test_batched_entries, teardown),
        cmocka_unit_test_teardown(test_seq, teardown),
        cmocka_unit_test_teardown(test_cursor, teardown),
        cmocka_unit_test_teardown(test_seek_key, teardown),
        cmocka_unit_test_teardown(test_budget, teardown),
        cmocka_unit_test_teardown(test_stale_previous, teardown),
        cmocka_unit_test_teardown(test_history_chain, teardown),
        cmocka_unit_test_teardown(test_data_read, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
