/* Tests of lib/backend: the dir:// backend on temporary directories (layout, atomic
 * writes, marker and id checks, relocation of share directories, a disk that goes away,
 * named values, stale temporary files, batches) and the zdb backend against the real
 * zdb binary (sequential data namespaces, user-mode metadata namespaces, mode checks,
 * probes of healthy, full and unreachable backends). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>

#include "backend/backend.h"
#include "util/mem.h"
#include "zdb_server.h"

static char g_tmp[64]; /* per-program temporary directory */
static struct srv g_zdb;

static int setup(void **state)
{
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/qsfs-backend-XXXXXX");
    assert_non_null(mkdtemp(g_tmp));
    memset(&g_zdb, 0, sizeof(g_zdb));
    srv_start(&g_zdb, false);
    return 0;
}

static int teardown(void **state)
{
    zdb_servers_stop_all();
    nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static struct qs_backend *open_dir(const char *path, const char *expect_id, bool nocreate)
{
    char addr[300];
    snprintf(addr, sizeof(addr), "dir://%s", path);
    struct qs_backend_opts o;
    qs_backend_opts_default(&o);
    o.address = addr;
    o.dir_expect_id = expect_id;
    o.dir_nocreate = nocreate;
    struct qs_backend *b = NULL;
    if (qs_backend_open(&b, &o) < 0)
        fail_msg("open %s: %s", addr, qs_err_msg());
    return b;
}

static void path_of(char *out, size_t n, const char *sub)
{
    snprintf(out, n, "%s/%s", g_tmp, sub);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static bool dir_empty_for_test(const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n == 0;
}

/* ---- dir ---- */

static void test_dir_roundtrip(void **state)
{
    char root[128];
    path_of(root, sizeof(root), "share-a");
    struct qs_backend *b = open_dir(root, NULL, false);
    assert_int_equal(qs_backend_kind(b), QS_BACKEND_DIR);
    assert_int_equal(qs_backend_max_value(b), QS_BACKEND_DIR_MAX_VALUE);
    assert_false(exists(root)); /* no I/O before the first use */

    struct qs_backend_key k, k2;
    assert_int_equal(qs_backend_put(b, "shard zero", 10, &k), 0);
    assert_int_equal(k.len, QS_BACKEND_DIR_KEY_LEN);
    assert_int_equal(qs_backend_put(b, "", 0, &k2), 0); /* empty values are fine */
    assert_memory_not_equal(k.b, k2.b, QS_BACKEND_DIR_KEY_LEN);

    /* the value sits at data/HH/<hex key>, nothing is left in tmp/ */
    char hex[65], file[300], tmpdir[200];
    qs_backend_key_hex(&k, hex);
    assert_int_equal(strlen(hex), 32);
    snprintf(file, sizeof(file), "%s/data/%.2s/%s", root, hex, hex);
    assert_true(exists(file));
    snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", root);
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    struct dirent *e;
    int left = 0;
    while ((e = readdir(d)) != NULL)
        left += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(left, 0);

    uint8_t *v;
    size_t n;
    assert_int_equal(qs_backend_get(b, &k, &v, &n), 0);
    assert_int_equal(n, 10);
    assert_memory_equal(v, "shard zero", 10);
    free(v);
    assert_int_equal(qs_backend_get(b, &k2, &v, &n), 0);
    assert_int_equal(n, 0);
    free(v);

    assert_int_equal(qs_backend_del(b, &k), 0);
    assert_false(exists(file));
    assert_int_equal(qs_backend_get(b, &k, &v, &n), QS_ENOTFOUND);
    assert_null(v);
    assert_non_null(strstr(qs_err_msg(), hex));
    assert_int_equal(qs_backend_del(b, &k), QS_ENOTFOUND);

    struct qs_backend_key bad = {.len = 8};
    assert_int_equal(qs_backend_get(b, &bad, &v, &n), QS_EINVAL);
    assert_int_equal(qs_backend_put(b, "x", (size_t)QS_BACKEND_DIR_MAX_VALUE + 1, &k), QS_EINVAL);
    assert_int_equal(qs_backend_set_named(b, "x", "y", 1), 0); /* dir takes both roles */

    /* a file replaced by a directory, or grown past the limit, is not returned */
    assert_int_equal(qs_backend_put(b, "abc", 3, &k), 0);
    qs_backend_key_hex(&k, hex);
    snprintf(file, sizeof(file), "%s/data/%.2s/%s", root, hex, hex);
    assert_int_equal(unlink(file), 0);
    assert_int_equal(mkdir(file, 0700), 0);
    assert_int_equal(qs_backend_get(b, &k, &v, &n), QS_ECORRUPT);

    struct qs_backend_health h;
    assert_int_equal(qs_backend_probe(b, &h), 0);
    assert_true(h.reachable);
    assert_true(h.free_bytes > 0 && h.free_bytes != QS_BACKEND_UNKNOWN);
    assert_false(h.have_nsinfo);
    qs_backend_free(b);
}

static void test_dir_marker(void **state)
{
    char root[128], other[128], marker[200];
    path_of(root, sizeof(root), "share-m");
    struct qs_backend *b = open_dir(root, NULL, false);
    char id[33], id2[33];
    assert_int_equal(qs_backend_dir_id(b, id), 0);
    assert_int_equal(strlen(id), 32);
    struct qs_backend_key k;
    assert_int_equal(qs_backend_put(b, "payload", 7, &k), 0);
    qs_backend_free(b);

    /* reopened: same id; pinned to it: fine; pinned to another: refused */
    b = open_dir(root, NULL, false);
    assert_int_equal(qs_backend_dir_id(b, id2), 0);
    assert_string_equal(id, id2);
    qs_backend_free(b);
    b = open_dir(root, id, true);
    uint8_t *v;
    size_t n;
    assert_int_equal(qs_backend_get(b, &k, &v, &n), 0);
    free(v);
    qs_backend_free(b);
    b = open_dir(root, "0123456789abcdef0123456789abcdef", false);
    assert_int_equal(qs_backend_get(b, &k, &v, &n), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), id));
    qs_backend_free(b);

    /* a directory with other files and no marker is never written into */
    path_of(other, sizeof(other), "not-a-share");
    assert_int_equal(mkdir(other, 0700), 0);
    char f[200];
    snprintf(f, sizeof(f), "%s/precious.txt", other);
    write_text(f, "user data");
    b = open_dir(other, NULL, false);
    assert_int_equal(qs_backend_put(b, "x", 1, &k), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "not a qsfs share directory"));
    qs_backend_free(b);

    /* missing: created only when allowed, and never with a missing parent */
    path_of(other, sizeof(other), "nope");
    b = open_dir(other, NULL, true);
    assert_int_equal(qs_backend_put(b, "x", 1, &k), QS_EIO);
    assert_false(exists(other));
    qs_backend_free(b);
    path_of(other, sizeof(other), "no-parent/share");
    b = open_dir(other, NULL, false);
    assert_int_equal(qs_backend_put(b, "x", 1, &k), QS_EIO);
    qs_backend_free(b);

    /* damaged or future markers */
    snprintf(marker, sizeof(marker), "%s/QSFS-SHARE", root);
    write_text(marker, "something else\n");
    b = open_dir(root, NULL, false);
    assert_int_equal(qs_backend_get(b, &k, &v, &n), QS_ECORRUPT);
    qs_backend_free(b);
    write_text(marker, "qsfs share directory\nversion: 2\nid: 0123456789abcdef0123456789abcdef\n");
    b = open_dir(root, NULL, false);
    assert_int_equal(qs_backend_get(b, &k, &v, &n), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "not supported"));
    qs_backend_free(b);
    write_text(marker, "qsfs share directory\nversion: 1\nid: 0123\n");
    b = open_dir(root, NULL, false);
    assert_int_equal(qs_backend_get(b, &k, &v, &n), QS_ECORRUPT);
    qs_backend_free(b);

    /* bad addresses */
    struct qs_backend_opts o;
    qs_backend_opts_default(&o);
    o.address = "dir://relative/path";
    assert_int_equal(qs_backend_open(&b, &o), QS_EINVAL);
    o.address = "dir:///tmp/x";
    o.dir_expect_id = "XYZ";
    assert_int_equal(qs_backend_open(&b, &o), QS_EINVAL);
}

/* Share directories 00/ .. 05/ hold shard i of every object; any of them can be moved
 * elsewhere (another disk, a backup) and opened there, found by their id. */
static void test_dir_share_relocation(void **state)
{
    char base[128], moved[128];
    path_of(base, sizeof(base), "shares");
    path_of(moved, sizeof(moved), "elsewhere");
    assert_int_equal(mkdir(base, 0700), 0);
    assert_int_equal(mkdir(moved, 0700), 0);
    struct qs_backend_key keys[6];
    char ids[6][33];
    for (int i = 0; i < 6; i++) {
        char p[200], val[32];
        snprintf(p, sizeof(p), "%s/%02d", base, i);
        struct qs_backend *b = open_dir(p, NULL, false);
        snprintf(val, sizeof(val), "shard %d", i);
        assert_int_equal(qs_backend_put(b, val, strlen(val), &keys[i]), 0);
        assert_int_equal(qs_backend_dir_id(b, ids[i]), 0);
        qs_backend_free(b);
    }
    /* move 02 and 05 away, open them at the new place pinned to their ids */
    for (int i = 2; i <= 5; i += 3) {
        char from[200], to[200];
        snprintf(from, sizeof(from), "%s/%02d", base, i);
        snprintf(to, sizeof(to), "%s/%02d", moved, i);
        assert_int_equal(rename(from, to), 0);
        struct qs_backend *b = open_dir(to, ids[i], true);
        uint8_t *v;
        size_t n;
        assert_int_equal(qs_backend_get(b, &keys[i], &v, &n), 0);
        char want[32];
        snprintf(want, sizeof(want), "shard %d", i);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(v, want, n);
        free(v);
        qs_backend_free(b);
    }
    /* two share directories swapped by mistake are caught */
    char p0[200];
    snprintf(p0, sizeof(p0), "%s/%02d", base, 0);
    struct qs_backend *b = open_dir(p0, ids[1], true);
    uint8_t *v;
    size_t n;
    assert_int_equal(qs_backend_get(b, &keys[0], &v, &n), QS_EINVAL);
    qs_backend_free(b);
}

/* The disk goes away under an open backend (unmounted, or the directory moved): reads
 * fail as I/O errors, not as "not found"; the backend does not re-create it; the probe
 * says unreachable; when it is back everything works again. */
static void test_dir_gone(void **state)
{
    char root[128], away[128];
    path_of(root, sizeof(root), "share-g");
    path_of(away, sizeof(away), "share-g-away");
    struct qs_backend *b = open_dir(root, NULL, false);
    struct qs_backend_key k;
    assert_int_equal(qs_backend_put(b, "v", 1, &k), 0);
    assert_int_equal(rename(root, away), 0);
    assert_int_equal(mkdir(root, 0700), 0); /* the empty mount point */
    uint8_t *v;
    size_t n;
    assert_int_equal(qs_backend_get(b, &k, &v, &n), QS_EIO);
    assert_non_null(strstr(qs_err_msg(), "gone"));
    struct qs_backend_health h;
    assert_int_equal(qs_backend_probe(b, &h), QS_EIO);
    assert_false(h.reachable);
    assert_non_null(strstr(h.error, "no QSFS-SHARE marker"));
    assert_int_equal(qs_backend_put(b, "v", 1, &k), QS_EIO);
    assert_true(dir_empty_for_test(root));
    assert_int_equal(rmdir(root), 0);
    assert_int_equal(rename(away, root), 0);
    assert_int_equal(qs_backend_probe(b, &h), 0);
    assert_true(h.reachable);
    assert_int_equal(qs_backend_put(b, "v", 1, &k), 0);
    qs_backend_free(b);
}

static void test_dir_named(void **state)
{
    char root[128];
    path_of(root, sizeof(root), "share-n");
    struct qs_backend *b = open_dir(root, NULL, false);
    char longname[QS_BACKEND_NAME_MAX + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    char maxname[81];
    memset(maxname, 'm', 80);
    maxname[80] = '\0';
    const char *names[] = {"/zstor/meta/0123abcd", "..", ".hidden", "a b%c/../d", "plain", maxname};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char val[64];
        snprintf(val, sizeof(val), "value %zu", i);
        assert_int_equal(qs_backend_set_named(b, names[i], val, strlen(val)), 0);
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char val[64];
        snprintf(val, sizeof(val), "value %zu", i);
        uint8_t *v;
        size_t n;
        assert_int_equal(qs_backend_get_named(b, names[i], &v, &n), 0);
        assert_int_equal(n, strlen(val));
        assert_memory_equal(v, val, n);
        free(v);
    }
    /* escaped names stay inside named/ */
    char f[300];
    snprintf(f, sizeof(f), "%s/named/%%2fzstor%%2fmeta%%2f0123abcd", root);
    assert_true(exists(f));
    snprintf(f, sizeof(f), "%s/named/%%2e.", root);
    assert_true(exists(f));
    /* overwrite, delete */
    assert_int_equal(qs_backend_set_named(b, "plain", "new", 3), 0);
    uint8_t *v;
    size_t n;
    assert_int_equal(qs_backend_get_named(b, "plain", &v, &n), 0);
    assert_int_equal(n, 3);
    free(v);
    assert_int_equal(qs_backend_del_named(b, "plain"), 0);
    assert_int_equal(qs_backend_get_named(b, "plain", &v, &n), QS_ENOTFOUND);
    assert_int_equal(qs_backend_del_named(b, "plain"), QS_ENOTFOUND);
    assert_int_equal(qs_backend_set_named(b, "", "x", 1), QS_EINVAL);
    assert_int_equal(qs_backend_set_named(b, longname, "x", 1), QS_EINVAL);
    char esc_long[QS_BACKEND_NAME_MAX + 1];
    memset(esc_long, '/', QS_BACKEND_NAME_MAX);
    esc_long[QS_BACKEND_NAME_MAX] = '\0';
    assert_int_equal(qs_backend_set_named(b, esc_long, "x", 1), QS_EINVAL);
    qs_backend_free(b);
}

static void test_dir_stale_tmp(void **state)
{
    char root[128], stale[200], fresh[200];
    path_of(root, sizeof(root), "share-t");
    struct qs_backend *b = open_dir(root, NULL, false);
    struct qs_backend_key k;
    assert_int_equal(qs_backend_put(b, "v", 1, &k), 0);
    qs_backend_free(b);
    snprintf(stale, sizeof(stale), "%s/tmp/0123.tmp", root);
    snprintf(fresh, sizeof(fresh), "%s/tmp/4567.tmp", root);
    write_text(stale, "torn");
    write_text(fresh, "being written");
    struct timespec old[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    assert_int_equal(utimensat(AT_FDCWD, stale, old, 0), 0);
    b = open_dir(root, NULL, false);
    uint8_t *v;
    size_t n;
    assert_int_equal(qs_backend_get(b, &k, &v, &n), 0);
    free(v);
    assert_false(exists(stale));
    assert_true(exists(fresh)); /* may belong to another writer */
    qs_backend_free(b);
}

static void test_dir_batch(void **state)
{
    char root[128];
    path_of(root, sizeof(root), "share-b");
    struct qs_backend *b = open_dir(root, NULL, false);
    struct qs_backend_op ops[5];
    for (int i = 0; i < 5; i++)
        ops[i] = (struct qs_backend_op){.kind = QS_BACKEND_PUT, .val = "abcde", .len = (size_t)i};
    assert_int_equal(qs_backend_batch(b, ops, 5), 0);
    struct qs_backend_key keys[5];
    for (int i = 0; i < 5; i++) {
        keys[i] = ops[i].key;
        ops[i] = (struct qs_backend_op){.kind = QS_BACKEND_GET, .key = keys[i]};
    }
    ops[2].key.len = 3;
    assert_int_equal(qs_backend_batch(b, ops, 5), QS_EINVAL);
    for (int i = 0; i < 5; i++) {
        if (i == 2) {
            assert_int_equal(ops[i].result, QS_EINVAL);
            continue;
        }
        assert_int_equal(ops[i].result, 0);
        assert_int_equal(ops[i].data_len, (size_t)i);
        assert_memory_equal(ops[i].data, "abcde", (size_t)i);
        free(ops[i].data);
    }
    qs_backend_free(b);
}

/* ---- zdb ---- */

static void zdb_admin(const char *a0, const char *a1, const char *a2, const char *a3)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", g_zdb.port);
    struct qs_zdb_opts o;
    qs_zdb_opts_default(&o);
    o.address = addr;
    struct qs_zdb *c;
    assert_int_equal(qs_zdb_new(&c, &o), 0);
    const char *av[4] = {a0, a1, a2, a3};
    size_t al[4];
    int argc = a3 ? 4 : a2 ? 3 : 2;
    for (int i = 0; i < argc; i++)
        al[i] = strlen(av[i]);
    struct qs_zdb_reply *r;
    assert_int_equal(qs_zdb_command(c, argc, av, al, &r), 0);
    if (r->type != QS_ZDB_R_STATUS)
        fail_msg("%s %s: %s", a0, a1, r->str ? r->str : "?");
    qs_zdb_reply_free(r);
    qs_zdb_free(c);
}

static struct qs_backend *open_zdb(unsigned port, const char *ns, enum qs_backend_role role)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    struct qs_backend_opts o;
    qs_backend_opts_default(&o);
    o.address = addr;
    o.ns = ns;
    o.role = role;
    o.attempts = 2;
    o.backoff_ms = 10;
    o.connect_timeout_ms = 2000;
    struct qs_backend *b = NULL;
    assert_int_equal(qs_backend_open(&b, &o), 0);
    return b;
}

static void test_zdb_data(void **state)
{
    zdb_admin("NSNEW", "bdata", NULL, NULL);
    zdb_admin("NSSET", "bdata", "mode", "seq");
    struct qs_backend *b = open_zdb(g_zdb.port, "bdata", QS_BACKEND_DATA);
    assert_int_equal(qs_backend_kind(b), QS_BACKEND_ZDB);
    assert_int_equal(qs_backend_max_value(b), QS_ZDB_MAX_VALUE);
    assert_non_null(strstr(qs_backend_name(b), "/bdata"));
    struct qs_backend_key k;
    assert_int_equal(qs_backend_put(b, "shard", 5, &k), 0);
    assert_int_equal(k.len, 8);
    assert_int_equal(qs_le64(k.b), 0);
    uint8_t *v;
    size_t n;
    assert_int_equal(qs_backend_get(b, &k, &v, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(v, "shard", 5);
    free(v);

    struct qs_backend_op ops[4];
    for (int i = 0; i < 3; i++)
        ops[i] = (struct qs_backend_op){.kind = QS_BACKEND_PUT, .val = "xyz", .len = 3};
    ops[3] = (struct qs_backend_op){.kind = QS_BACKEND_GET, .key = k};
    assert_int_equal(qs_backend_batch(b, ops, 4), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(qs_le64(ops[i].key.b), (uint64_t)i + 1);
    assert_int_equal(ops[3].data_len, 5);
    free(ops[3].data);

    assert_int_equal(qs_backend_del(b, &k), 0);
    assert_int_equal(qs_backend_get(b, &k, &v, &n), QS_ENOTFOUND);
    struct qs_backend_key bad = {.len = 16};
    assert_int_equal(qs_backend_get(b, &bad, &v, &n), QS_EINVAL);
    assert_int_equal(qs_backend_set_named(b, "n", "v", 1), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "metadata backend"));

    struct qs_backend_health h;
    assert_int_equal(qs_backend_probe(b, &h), 0);
    assert_true(h.reachable);
    assert_true(h.have_nsinfo);
    assert_int_equal(h.entries, 3);
    assert_int_equal(h.nsinfo.mode, QS_ZDB_MODE_SEQ);
    assert_true(h.free_bytes > 0);
    assert_true(h.latency_us > 0);
    assert_true(h.error_rate == 0.0);
    qs_backend_free(b);

    /* a full namespace: EFULL, and the probe shows what is left */
    zdb_admin("NSNEW", "bfull", NULL, NULL);
    zdb_admin("NSSET", "bfull", "mode", "seq");
    zdb_admin("NSSET", "bfull", "maxsize", "1000");
    b = open_zdb(g_zdb.port, "bfull", QS_BACKEND_DATA);
    uint8_t buf[800] = {0};
    assert_int_equal(qs_backend_put(b, buf, sizeof(buf), &k), 0);
    assert_int_equal(qs_backend_put(b, buf, sizeof(buf), &k), QS_EFULL);
    assert_non_null(strstr(qs_err_msg(), "/bfull"));
    assert_int_equal(qs_backend_probe(b, &h), 0);
    assert_true(h.free_bytes <= 200);
    assert_int_equal(h.limit_bytes, 1000);
    assert_true(h.error_rate > 0.0); /* the refused SET counts */
    qs_backend_free(b);
}

static void test_zdb_meta_and_modes(void **state)
{
    zdb_admin("NSNEW", "bmeta", NULL, NULL);
    struct qs_backend *b = open_zdb(g_zdb.port, "bmeta", QS_BACKEND_META);
    assert_int_equal(qs_backend_set_named(b, "/zstor/meta/ab", "rec", 3), 0);
    uint8_t *v;
    size_t n;
    assert_int_equal(qs_backend_get_named(b, "/zstor/meta/ab", &v, &n), 0);
    assert_int_equal(n, 3);
    free(v);
    assert_int_equal(qs_backend_del_named(b, "/zstor/meta/ab"), 0);
    assert_int_equal(qs_backend_get_named(b, "/zstor/meta/ab", &v, &n), QS_ENOTFOUND);
    struct qs_backend_key k;
    assert_int_equal(qs_backend_put(b, "x", 1, &k), QS_EINVAL);
    qs_backend_free(b);

    /* a user-mode namespace configured as a data backend is refused, with the reason */
    b = open_zdb(g_zdb.port, "bmeta", QS_BACKEND_DATA);
    assert_int_equal(qs_backend_put(b, "x", 1, &k), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "userkey mode, sequential mode needed"));
    struct qs_backend_health h;
    assert_int_equal(qs_backend_probe(b, &h), QS_EINVAL);
    assert_false(h.reachable);
    assert_true(h.have_nsinfo);
    qs_backend_free(b);

    /* and a sequential one as metadata */
    zdb_admin("NSNEW", "bseq", NULL, NULL);
    zdb_admin("NSSET", "bseq", "mode", "seq");
    b = open_zdb(g_zdb.port, "bseq", QS_BACKEND_META);
    assert_int_equal(qs_backend_set_named(b, "n", "v", 1), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "sequential mode, userkey mode needed"));
    qs_backend_free(b);
}

/* Collects listed names, joined with '|' in sorted order, for comparison. */
struct names {
    char *v[64];
    size_t n;
    int stop_after; /* 0 = never */
};

static int collect_name(void *ud, const char *name, size_t len)
{
    struct names *ns = ud;
    assert_true(ns->n < 64);
    ns->v[ns->n++] = strndup(name, len);
    if (ns->stop_after && (int)ns->n == ns->stop_after)
        return QS_EBUSY;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_join(struct names *ns, char *out, size_t cap)
{
    qsort(ns->v, ns->n, sizeof(ns->v[0]), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < ns->n; i++) {
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "|" : "", ns->v[i]);
        free(ns->v[i]);
    }
    ns->n = 0;
}

static void check_listing(struct qs_backend *b)
{
    const char *names[] = {"/p/meta/aa", "/p/meta/bb", "/p/failures/cc", "/q/meta/dd", ".x%y"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_int_equal(qs_backend_set_named(b, names[i], "v", 1), 0);
    assert_int_equal(qs_backend_del_named(b, "/q/meta/dd"), 0);
    struct names ns = {0};
    char got[512];
    assert_int_equal(qs_backend_list_named(b, "/p/meta/", collect_name, &ns), 0);
    names_join(&ns, got, sizeof(got));
    assert_string_equal(got, "/p/meta/aa|/p/meta/bb");
    assert_int_equal(qs_backend_list_named(b, NULL, collect_name, &ns), 0);
    names_join(&ns, got, sizeof(got));
    assert_string_equal(got, ".x%y|/p/failures/cc|/p/meta/aa|/p/meta/bb");
    assert_int_equal(qs_backend_list_named(b, "/none/", collect_name, &ns), 0);
    assert_int_equal(ns.n, 0);
    ns.stop_after = 1; /* the callback's code stops the listing */
    assert_int_equal(qs_backend_list_named(b, "", collect_name, &ns), QS_EBUSY);
    assert_int_equal(ns.n, 1);
    names_join(&ns, got, sizeof(got));
}

static void test_list_named(void **state)
{
    char root[128];
    path_of(root, sizeof(root), "share-list");
    struct qs_backend *b = open_dir(root, NULL, false);
    check_listing(b);
    /* files that named/ cannot hold are not names */
    char f[300];
    snprintf(f, sizeof(f), "%s/named/bad%%zz", root);
    write_text(f, "x");
    struct names ns = {0};
    char got[512];
    assert_int_equal(qs_backend_list_named(b, "bad", collect_name, &ns), 0);
    names_join(&ns, got, sizeof(got));
    assert_string_equal(got, "");
    qs_backend_free(b);

    zdb_admin("NSNEW", "blist", NULL, NULL);
    b = open_zdb(g_zdb.port, "blist", QS_BACKEND_META);
    check_listing(b);
    qs_backend_free(b);
    /* listing is for metadata backends */
    zdb_admin("NSNEW", "blistseq", NULL, NULL);
    zdb_admin("NSSET", "blistseq", "mode", "seq");
    b = open_zdb(g_zdb.port, "blistseq", QS_BACKEND_DATA);
    assert_int_equal(qs_backend_list_named(b, "", collect_name, &ns), QS_EINVAL);
    qs_backend_free(b);
}

static void test_zdb_unreachable(void **state)
{
    struct qs_backend *b = open_zdb(free_port(), "x", QS_BACKEND_DATA);
    struct qs_backend_health h;
    assert_int_equal(qs_backend_probe(b, &h), QS_EIO);
    assert_false(h.reachable);
    assert_non_null(strstr(h.error, "connection refused"));
    assert_false(h.have_nsinfo);
    struct qs_backend_key k;
    assert_int_equal(qs_backend_put(b, "x", 1, &k), QS_EIO);
    assert_int_equal(qs_backend_probe(b, &h), QS_EIO);
    assert_true(h.error_rate > 0.0);
    qs_backend_free(b);

    struct qs_backend_opts o;
    qs_backend_opts_default(&o);
    o.address = "[::1]9900";
    assert_int_equal(qs_backend_open(&b, &o), QS_EINVAL);
    o.address = "";
    assert_int_equal(qs_backend_open(&b, &o), QS_EINVAL);
}

/* Backends that borrow their connections from one pool: four threads, each with its own
 * backend object on one pool of two connections; every value reads back, the listing and
 * the history of a name work through lent connections, and never more than two are open. */
struct pooled_job {
    struct qs_zdb_pool *pool;
    int id, failures;
};

static void *pooled_main(void *arg)
{
    struct pooled_job *j = arg;
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", g_zdb.port);
    struct qs_backend_opts o;
    qs_backend_opts_default(&o);
    o.address = addr;
    o.ns = "bpool";
    o.role = QS_BACKEND_DATA;
    o.pool = j->pool;
    struct qs_backend *b = NULL;
    if (qs_backend_open(&b, &o) < 0)
        return (void *)(j->failures = 1, NULL);
    for (int i = 0; i < 50; i++) {
        char v[64];
        int n = snprintf(v, sizeof(v), "job %d value %d", j->id, i);
        struct qs_backend_key k;
        uint8_t *got = NULL;
        size_t len = 0;
        if (qs_backend_put(b, v, (size_t)n, &k) < 0 || qs_backend_get(b, &k, &got, &len) < 0 ||
            len != (size_t)n || memcmp(got, v, len) != 0)
            j->failures++;
        free(got);
    }
    qs_backend_free(b);
    return NULL;
}

static void test_zdb_pooled(void **state)
{
    zdb_admin("NSNEW", "bpool", NULL, NULL);
    zdb_admin("NSSET", "bpool", "mode", "seq");
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", g_zdb.port);
    struct qs_zdb_pool_opts po = {.max_conns = 2};
    qs_zdb_opts_default(&po.conn);
    po.conn.address = addr;
    po.conn.ns = "bpool";
    struct qs_zdb_pool *pool = NULL;
    assert_int_equal(qs_zdb_pool_new(&pool, &po), 0);
    struct pooled_job j[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        j[i] = (struct pooled_job){pool, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, pooled_main, &j[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(j[i].failures, 0);
    }
    unsigned open, peak;
    qs_zdb_pool_counts(pool, &open, &peak);
    assert_true(peak <= 2);
    /* the listing of a pooled data backend: every value */
    struct qs_backend_opts o;
    qs_backend_opts_default(&o);
    o.address = addr;
    o.ns = "bpool";
    o.pool = pool;
    struct qs_backend *b = NULL;
    assert_int_equal(qs_backend_open(&b, &o), 0);
    struct qs_backend_health h;
    assert_int_equal(qs_backend_probe(b, &h), 0);
    assert_int_equal(h.entries, 200);
    qs_backend_free(b);
    qs_zdb_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dir_roundtrip),
        cmocka_unit_test(test_dir_marker),
        cmocka_unit_test(test_dir_share_relocation),
        cmocka_unit_test(test_dir_gone),
        cmocka_unit_test(test_dir_named),
        cmocka_unit_test(test_dir_stale_tmp),
        cmocka_unit_test(test_dir_batch),
        cmocka_unit_test(test_zdb_data),
        cmocka_unit_test(test_zdb_meta_and_modes),
        cmocka_unit_test(test_zdb_unreachable),
        cmocka_unit_test(test_list_named),
        cmocka_unit_test(test_zdb_pooled),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
