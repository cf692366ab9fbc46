/* Tests of lib/zdbclient against the real zdb binary (QSFS_ZDB_BIN, started on 127.0.0.1
 * with a free port and a temporary directory, stopped by PID) and against small fake
 * servers in a thread (garbage replies, silence, a server that drops the connection in
 * the middle of a pipelined batch).
 *
 * Covered: address parsing, NSINFO parsing and free space, error mapping, SELECT with a
 * password and with SECURE, private namespaces, sequential and user mode helpers, mode
 * check, pipelined batches (large values sent in place, per-op results), the 8 MiB limit,
 * a full namespace, timeouts, connection refused, reconnect after a server restart
 * (idle and while down), resending only unanswered requests, unix sockets, host names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/mem.h"
#include "util/sys.h"
#include "zdbclient/pool.h"
#include "zdbclient/zdbclient.h"

#include "zdb_server.h"

/* ---- clients -------------------------------------------------------------------------- */

static struct srv g_main; /* one server shared by most tests */

static char *addr_of(const struct srv *s, char *buf, size_t n)
{
    if (s->sock[0])
        snprintf(buf, n, "unix://%s", s->sock);
    else
        snprintf(buf, n, "127.0.0.1:%u", s->port);
    return buf;
}

static struct qs_zdb *client_at(const char *address, const char *ns, const char *pass, bool secure)
{
    struct qs_zdb_opts o;
    qs_zdb_opts_default(&o);
    o.address = address;
    o.ns = ns;
    o.password = pass;
    o.secure = secure;
    o.connect_timeout_ms = 2000;
    o.request_timeout_ms = 10000;
    o.attempts = 3;
    o.backoff_ms = 20;
    o.backoff_max_ms = 100;
    struct qs_zdb *c = NULL;
    int rc = qs_zdb_new(&c, &o);
    if (rc < 0)
        fail_msg("qs_zdb_new: %s", qs_err_msg());
    return c;
}

static struct qs_zdb *client(const struct srv *s, const char *ns, const char *pass, bool secure)
{
    char a[400];
    return client_at(addr_of(s, a, sizeof(a)), ns, pass, secure);
}

/* Runs an admin command on the default namespace and expects +OK. */
static void admin(const struct srv *s, const char *a0, const char *a1, const char *a2,
                  const char *a3)
{
    struct qs_zdb *c = client(s, NULL, NULL, false);
    struct qs_zdb_reply *r = NULL;
    int rc;
    if (s->admin) { /* on the same connection as the command */
        const char *auth[2] = {"AUTH", s->admin};
        size_t alen[2] = {4, strlen(s->admin)};
        rc = qs_zdb_command(c, 2, auth, alen, &r);
        assert_int_equal(rc, 0);
        assert_int_equal(r->type, QS_ZDB_R_STATUS);
        qs_zdb_reply_free(r);
    }
    const char *av[4] = {a0, a1, a2, a3};
    size_t al[4];
    int argc = a3 ? 4 : a2 ? 3 : a1 ? 2 : 1;
    for (int i = 0; i < argc; i++)
        al[i] = strlen(av[i]);
    rc = qs_zdb_command(c, argc, av, al, &r);
    if (rc < 0)
        fail_msg("%s: %s", a0, qs_err_msg());
    if (r->type != QS_ZDB_R_STATUS)
        fail_msg("%s %s: %s", a0, a1 ? a1 : "", r->str ? r->str : "(not a status)");
    qs_zdb_reply_free(r);
    qs_zdb_free(c);
}

static void make_ns(const struct srv *s, const char *ns, bool seq)
{
    admin(s, "NSNEW", ns, NULL, NULL);
    if (seq)
        admin(s, "NSSET", ns, "mode", "seq");
}

static int group_setup(void **state)
{
    memset(&g_main, 0, sizeof(g_main));
    srv_start(&g_main, false);
    return 0;
}

static int group_teardown(void **state)
{
    zdb_servers_stop_all();
    return 0;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/* ---- pure parsers ------------------------------------------------------------------- */

static void test_addr_parse(void **state)
{
    static const struct {
        const char *in;
        int ok;
        const char *host;
        unsigned port;
        const char *path;
    } cases[] = {
        {"127.0.0.1:9900", 1, "127.0.0.1", 9900, NULL},
        {"localhost:1", 1, "localhost", 1, NULL},
        {"zdb-3.example.org:65535", 1, "zdb-3.example.org", 65535, NULL},
        {"[::1]:9900", 1, "::1", 9900, NULL},
        {"[2a02:1802:5e::dead:beef]:9900", 1, "2a02:1802:5e::dead:beef", 9900, NULL},
        {"unix:///var/run/zdb.sock", 1, NULL, 0, "/var/run/zdb.sock"},
        {"::1:9900", 0, NULL, 0, NULL},
        {"[::1]9900", 0, NULL, 0, NULL},
        {"[]:9900", 0, NULL, 0, NULL},
        {"[127.0.0.1]:9900", 0, NULL, 0, NULL},
        {"host", 0, NULL, 0, NULL},
        {"host:", 0, NULL, 0, NULL},
        {":9900", 0, NULL, 0, NULL},
        {"host:0", 0, NULL, 0, NULL},
        {"host:65536", 0, NULL, 0, NULL},
        {"host:+1", 0, NULL, 0, NULL},
        {"host:99x", 0, NULL, 0, NULL},
        {"ho st:1", 0, NULL, 0, NULL},
        {"unix://relative.sock", 0, NULL, 0, NULL},
        {"unix://", 0, NULL, 0, NULL},
        {"", 0, NULL, 0, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct qs_zdb_addr a;
        int rc = qs_zdb_addr_parse(cases[i].in, &a);
        if (!cases[i].ok) {
            if (rc != QS_EINVAL)
                fail_msg("\"%s\" accepted", cases[i].in);
            assert_non_null(strstr(qs_err_msg(), cases[i].in));
            continue;
        }
        if (rc != 0)
            fail_msg("\"%s\": %s", cases[i].in, qs_err_msg());
        if (cases[i].path) {
            assert_true(a.is_unix);
            assert_string_equal(a.path, cases[i].path);
        } else {
            assert_false(a.is_unix);
            assert_string_equal(a.host, cases[i].host);
            assert_int_equal(a.port, cases[i].port);
        }
    }
    char longpath[200] = "unix:///";
    memset(longpath + 8, 'a', 150);
    struct qs_zdb_addr a;
    assert_int_equal(qs_zdb_addr_parse(longpath, &a), QS_EINVAL);
}

static const char nsinfo_text[] = "# namespace\n"
                                  "name: data1\n"
                                  "entries: 12\n"
                                  "public: no\n"
                                  "worm: no\n"
                                  "locked: yes\n"
                                  "password: yes\n"
                                  "data_size_bytes: 3000\n"
                                  "data_size_mb: 0.00\n"
                                  "data_limits_bytes: 10000\n"
                                  "index_size_bytes: 533\n"
                                  "index_size_kb: 0.52\n"
                                  "next_internal_id: 0x0c000000\n"
                                  "mode: sequential\n"
                                  "stats_index_io_errors: 1\n"
                                  "stats_index_io_error_last: 0\n"
                                  "stats_index_faults: 2\n"
                                  "stats_data_io_errors: 3\n"
                                  "stats_data_io_error_last: 0\n"
                                  "stats_data_faults: 4\n"
                                  "space_available: 7000\n"
                                  "index_disk_freespace_bytes: 900000\n"
                                  "index_disk_freespace_mb: 0.86\n"
                                  "data_disk_freespace_bytes: 5000\n"
                                  "data_disk_freespace_mb: 0.00\n";

static void test_nsinfo_parse(void **state)
{
    struct qs_zdb_nsinfo i;
    assert_int_equal(qs_zdb_nsinfo_parse(nsinfo_text, strlen(nsinfo_text), &i), 0);
    assert_string_equal(i.name, "data1");
    assert_int_equal(i.entries, 12);
    assert_false(i.public_);
    assert_true(i.locked);
    assert_true(i.password);
    assert_int_equal(i.mode, QS_ZDB_MODE_SEQ);
    assert_int_equal(i.data_size_bytes, 3000);
    assert_int_equal(i.data_limits_bytes, 10000);
    assert_int_equal(i.index_size_bytes, 533);
    assert_int_equal(i.stats_index_io_errors, 1);
    assert_int_equal(i.stats_index_faults, 2);
    assert_int_equal(i.stats_data_io_errors, 3);
    assert_int_equal(i.stats_data_faults, 4);
    /* min(10000 - 3000, 5000 data disk, 900000 index disk) */
    assert_int_equal(qs_zdb_nsinfo_free(&i), 5000);
    i.data_disk_freespace_bytes = 1u << 30;
    assert_int_equal(qs_zdb_nsinfo_free(&i), 7000);
    i.data_size_bytes = 20000; /* over the limit (limit lowered after writing) */
    assert_int_equal(qs_zdb_nsinfo_free(&i), 0);
    i.data_limits_bytes = 0;
    assert_int_equal(qs_zdb_nsinfo_free(&i), 900000);

    /* an old server: CRLF, no mode, no disk lines */
    const char *old = "name: x\r\nentries: 1\r\ndata_size_bytes: 5\r\ndata_limits_bytes: 0\r\n";
    assert_int_equal(qs_zdb_nsinfo_parse(old, strlen(old), &i), 0);
    assert_int_equal(i.mode, QS_ZDB_MODE_UNKNOWN);
    assert_int_equal(i.data_disk_freespace_bytes, QS_ZDB_UNKNOWN);
    assert_int_equal(qs_zdb_nsinfo_free(&i), QS_ZDB_UNKNOWN);
    const char *user = "entries: 1\ndata_size_bytes: 5\nmode: userkey";
    assert_int_equal(qs_zdb_nsinfo_parse(user, strlen(user), &i), 0);
    assert_int_equal(i.mode, QS_ZDB_MODE_USER);

    static const char *bad[] = {
        "data_size_bytes: 5\n",              /* no entries */
        "entries: 1\n",                      /* no data_size_bytes */
        "entries: -1\ndata_size_bytes: 5\n", /* bad number */
        "entries: 1\ndata_size_bytes: 5x\n", /* bad number */
        "entries: 1\ndata_size_bytes: 99999999999999999999\n",
        "entries: 1\ndata_size_bytes: 5\npublic: maybe\n",
        "",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        if (qs_zdb_nsinfo_parse(bad[k], strlen(bad[k]), &i) != QS_EPROTO)
            fail_msg("accepted: %s", bad[k]);
        assert_non_null(strstr(qs_err_msg(), "NSINFO"));
    }
}

static void test_error_map(void **state)
{
    static const struct {
        const char *text;
        int code;
    } cases[] = {
        {"No space left on this namespace", QS_EFULL},
        {"Namespace protected and private", QS_EDENIED},
        {"Access denied", QS_EDENIED},
        {"Namespace is temporarily frozen (read-write disabled)", QS_EBUSY},
        {"Namespace is protected by worm mode", QS_EDENIED},
        {"Key not found", QS_ENOTFOUND},
        {"Namespace not found", QS_ENOTFOUND},
        {"Cannot write data right now", QS_EIO},
        {"Payload too big", QS_EINVAL},
        {"Something new", QS_EIO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(qs_zdb_error_code(cases[i].text, strlen(cases[i].text)), cases[i].code);
}

/* ---- against zdb --------------------------------------------------------------------- */

static void test_seq_roundtrip(void **state)
{
    make_ns(&g_main, "seq1", true);
    struct qs_zdb *c = client(&g_main, "seq1", NULL, false);
    struct qs_zdb_nsinfo info;
    assert_int_equal(qs_zdb_check_mode(c, QS_ZDB_MODE_SEQ, &info), 0);
    assert_string_equal(info.name, "seq1");
    assert_int_equal(info.entries, 0);
    assert_int_equal(qs_zdb_check_mode(c, QS_ZDB_MODE_USER, NULL), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "sequential mode"));
    assert_non_null(strstr(qs_err_msg(), "seq1"));

    uint8_t id[8], id2[8];
    assert_int_equal(qs_zdb_seq_set(c, "hello", 5, id), 0);
    assert_int_equal(qs_le64(id), 0);
    assert_int_equal(qs_zdb_seq_set(c, "", 0, id2), 0); /* empty values are allowed */
    assert_int_equal(qs_le64(id2), 1);
    uint8_t *v;
    size_t n;
    assert_int_equal(qs_zdb_seq_get(c, id, &v, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(v, "hello", 5);
    free(v);
    assert_int_equal(qs_zdb_seq_get(c, id2, &v, &n), 0);
    assert_int_equal(n, 0);
    free(v);
    assert_int_equal(qs_zdb_seq_del(c, id), 0);
    assert_int_equal(qs_zdb_seq_get(c, id, &v, &n), QS_ENOTFOUND);
    assert_null(v);
    assert_int_equal(qs_zdb_seq_del(c, id), QS_ENOTFOUND);
    assert_non_null(strstr(qs_err_msg(), "Key not found"));
    uint8_t far[8];
    qs_put64(far, 1000);
    assert_int_equal(qs_zdb_seq_get(c, far, &v, &n), QS_ENOTFOUND);

    assert_int_equal(qs_zdb_nsinfo(c, &info), 0);
    assert_int_equal(info.entries, 1);
    assert_true(qs_zdb_nsinfo_free(&info) > 0);
    assert_true(qs_zdb_nsinfo_free(&info) != QS_ZDB_UNKNOWN); /* zdb reports disk space */

    struct qs_zdb_stats st;
    qs_zdb_stats(c, &st);
    assert_true(st.requests >= 10);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.consecutive, 0);
    assert_int_equal(st.reconnects, 0);
    qs_zdb_free(c);
}

static void test_user_roundtrip(void **state)
{
    make_ns(&g_main, "meta1", false);
    struct qs_zdb *c = client(&g_main, "meta1", NULL, false);
    assert_int_equal(qs_zdb_check_mode(c, QS_ZDB_MODE_USER, NULL), 0);
    assert_int_equal(qs_zdb_check_mode(c, QS_ZDB_MODE_SEQ, NULL), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "userkey mode, sequential mode needed"));
    /* a seq SET into a user namespace is refused by the server, clearly */
    uint8_t id[8];
    assert_true(qs_zdb_seq_set(c, "x", 1, id) < 0);

    const char *key = "/zstor/meta/0123abcd";
    assert_int_equal(qs_zdb_user_set(c, key, strlen(key), "v1", 2), 0);
    assert_int_equal(qs_zdb_user_set(c, key, strlen(key), "v1", 2), 0); /* no-op: nil reply */
    uint8_t *v;
    size_t n;
    assert_int_equal(qs_zdb_user_get(c, key, strlen(key), &v, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(v, "v1", 2);
    free(v);
    assert_int_equal(qs_zdb_user_set(c, key, strlen(key), "second", 6), 0);
    assert_int_equal(qs_zdb_user_get(c, key, strlen(key), &v, &n), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(v, "second", 6);
    free(v);
    assert_int_equal(qs_zdb_user_del(c, key, strlen(key)), 0);
    assert_int_equal(qs_zdb_user_get(c, key, strlen(key), &v, &n), QS_ENOTFOUND);
    assert_int_equal(qs_zdb_user_del(c, key, strlen(key)), QS_ENOTFOUND);
    assert_int_equal(qs_zdb_user_set(c, "", 0, "v", 1), QS_EINVAL);
    char big[300];
    memset(big, 'k', sizeof(big));
    assert_int_equal(qs_zdb_user_set(c, big, sizeof(big), "v", 1), QS_EINVAL);
    assert_int_equal(qs_zdb_ping(c), 0);
    qs_zdb_free(c);
}

static void test_pipeline(void **state)
{
    make_ns(&g_main, "pipe", true);
    struct qs_zdb *c = client(&g_main, "pipe", NULL, false);
    enum { N = 300 };
    static struct qs_zdb_op ops[N];
    static uint8_t *vals[N];
    static size_t lens[N];
    for (int i = 0; i < N; i++) {
        /* small values are copied into the request, large ones (>= 16 KiB) sent in place */
        lens[i] = i % 50 == 7 ? (size_t)(1u << 20) + (size_t)i : (size_t)(i * 37 % 5000);
        vals[i] = malloc(lens[i] + 1);
        fill(vals[i], lens[i], (uint32_t)i);
        ops[i] = (struct qs_zdb_op){.kind = QS_ZDB_SET, .val = vals[i], .val_len = lens[i]};
    }
    assert_int_equal(qs_zdb_batch(c, ops, N), 0);
    uint8_t ids[N][8];
    for (int i = 0; i < N; i++) {
        assert_int_equal(ops[i].result, 0);
        assert_int_equal(ops[i].reply_len, 8);
        assert_int_equal(qs_le64(ops[i].reply), (uint64_t)i); /* replies in request order */
        memcpy(ids[i], ops[i].reply, 8);
        free(ops[i].reply);
    }
    /* GET everything back, with one missing id in the middle */
    uint8_t missing[8];
    qs_put64(missing, 99999);
    for (int i = 0; i < N; i++)
        ops[i] = (struct qs_zdb_op){
            .kind = QS_ZDB_GET, .key = i == 123 ? missing : ids[i], .key_len = 8};
    int rc = qs_zdb_batch(c, ops, N);
    assert_int_equal(rc, QS_ENOTFOUND);
    assert_non_null(strstr(qs_err_msg(), "GET"));
    for (int i = 0; i < N; i++) {
        if (i == 123) {
            assert_int_equal(ops[i].result, QS_ENOTFOUND);
            assert_null(ops[i].reply);
            continue;
        }
        assert_int_equal(ops[i].result, 0);
        assert_int_equal(ops[i].reply_len, lens[i]);
        assert_memory_equal(ops[i].reply, vals[i], lens[i]);
        free(ops[i].reply);
    }
    /* mixed DEL batch */
    for (int i = 0; i < 10; i++)
        ops[i] = (struct qs_zdb_op){.kind = QS_ZDB_DEL, .key = ids[i], .key_len = 8};
    assert_int_equal(qs_zdb_batch(c, ops, 10), 0);
    assert_int_equal(qs_zdb_batch(c, ops, 10), QS_ENOTFOUND);
    for (int i = 0; i < 10; i++)
        assert_int_equal(ops[i].result, QS_ENOTFOUND);
    for (int i = 0; i < N; i++)
        free(vals[i]);
    assert_int_equal(qs_zdb_batch(c, ops, 0), 0);
    ops[0] = (struct qs_zdb_op){.kind = QS_ZDB_GET};
    assert_int_equal(qs_zdb_batch(c, ops, 1), QS_EINVAL); /* GET needs a key */
    qs_zdb_free(c);
}

static void test_value_limit(void **state)
{
    make_ns(&g_main, "big", true);
    struct qs_zdb *c = client(&g_main, "big", NULL, false);
    assert_int_equal(qs_zdb_max_value(c), QS_ZDB_MAX_VALUE);
    size_t n = QS_ZDB_MAX_VALUE;
    uint8_t *v = malloc(n + 1);
    fill(v, n + 1, 77);
    uint8_t id[8];
    assert_int_equal(qs_zdb_seq_set(c, v, n, id), 0);
    uint8_t *back;
    size_t blen;
    assert_int_equal(qs_zdb_seq_get(c, id, &back, &blen), 0);
    assert_int_equal(blen, n);
    assert_memory_equal(back, v, n);
    free(back);
    struct qs_zdb_stats before, after;
    qs_zdb_stats(c, &before);
    assert_int_equal(qs_zdb_seq_set(c, v, n + 1, id), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "limit"));
    qs_zdb_stats(c, &after);
    assert_int_equal(after.requests, before.requests); /* nothing was sent */
    free(v);
    qs_zdb_free(c);

    /* a smaller limit configured by the caller */
    struct qs_zdb_opts o;
    qs_zdb_opts_default(&o);
    char a[128];
    o.address = addr_of(&g_main, a, sizeof(a));
    o.max_value = 1000;
    assert_int_equal(qs_zdb_new(&c, &o), 0);
    assert_int_equal(qs_zdb_max_value(c), 1000);
    qs_zdb_free(c);
    o.max_value = QS_ZDB_MAX_VALUE + 1;
    assert_int_equal(qs_zdb_new(&c, &o), QS_EINVAL);
}

static void test_passwords(void **state)
{
    make_ns(&g_main, "priv", false);
    admin(&g_main, "NSSET", "priv", "password", "s3cret");
    admin(&g_main, "NSSET", "priv", "public", "0");
    char a[128];
    addr_of(&g_main, a, sizeof(a));

    struct qs_zdb *c = client(&g_main, "priv", NULL, false);
    assert_int_equal(qs_zdb_connect(c), QS_EDENIED);
    assert_non_null(strstr(qs_err_msg(), "Namespace protected and private"));
    assert_non_null(strstr(qs_err_msg(), a));
    assert_non_null(strstr(qs_err_msg(), "/priv"));
    assert_false(qs_zdb_connected(c));
    struct qs_zdb_stats st;
    qs_zdb_stats(c, &st);
    assert_int_equal(st.consecutive, 1);
    qs_zdb_free(c);

    c = client(&g_main, "priv", "wrong", false);
    assert_int_equal(qs_zdb_connect(c), QS_EDENIED);
    assert_non_null(strstr(qs_err_msg(), "Access denied"));
    qs_zdb_free(c);

    c = client(&g_main, "priv", "s3cret", false);
    assert_int_equal(qs_zdb_user_set(c, "k", 1, "v", 1), 0);
    qs_zdb_free(c);

    c = client(&g_main, "nosuchns", NULL, false);
    assert_int_equal(qs_zdb_connect(c), QS_ENOTFOUND);
    assert_non_null(strstr(qs_err_msg(), "Namespace not found"));
    qs_zdb_free(c);

    struct qs_zdb_opts o;
    qs_zdb_opts_default(&o);
    o.address = a;
    o.ns = "priv";
    o.secure = true;
    assert_int_equal(qs_zdb_new(&c, &o), QS_EINVAL); /* SECURE without a password */
}

/* SELECT ns SECURE sha1(challenge:password). Run on a server with --admin: our zdb
 * answers AUTH SECURE CHALLENGE only then (see test_bug_challenge_without_admin). */
static void test_secure(void **state)
{
    struct srv s = {.admin = "adm1n"};
    srv_start(&s, false);
    make_ns(&s, "sec", false);
    admin(&s, "NSSET", "sec", "password", "s3cret");
    admin(&s, "NSSET", "sec", "public", "0");

    struct qs_zdb *c = client(&s, "sec", "s3cret", true);
    assert_int_equal(qs_zdb_user_set(c, "k", 1, "v", 1), 0);
    uint8_t *v;
    size_t n;
    assert_int_equal(qs_zdb_user_get(c, "k", 1, &v, &n), 0);
    assert_int_equal(n, 1);
    free(v);
    /* SELECT happens once per connection, not per command */
    struct qs_zdb_stats st;
    qs_zdb_stats(c, &st);
    assert_int_equal(st.requests, 4); /* AUTH SECURE CHALLENGE, SELECT, SET, GET */
    qs_zdb_free(c);

    c = client(&s, "sec", "wrong", true);
    assert_int_equal(qs_zdb_connect(c), QS_EDENIED);
    assert_non_null(strstr(qs_err_msg(), "Access denied"));
    qs_zdb_free(c);

    /* the plain form still works on the same server */
    c = client(&s, "sec", "s3cret", false);
    assert_int_equal(qs_zdb_user_get(c, "k", 1, &v, &n), 0);
    free(v);
    qs_zdb_free(c);
    srv_destroy(&s);
}

/* 0-db answers AUTH SECURE CHALLENGE even without --admin, so SELECT ns SECURE works on
 * any server; zdb does the same. */
static void test_bug_challenge_without_admin(void **state)
{
    make_ns(&g_main, "sec2", false);
    admin(&g_main, "NSSET", "sec2", "password", "pw");
    struct qs_zdb *c = client(&g_main, "sec2", "pw", true);
    assert_int_equal(qs_zdb_connect(c), 0);
    qs_zdb_free(c);
}

static void test_full_namespace(void **state)
{
    make_ns(&g_main, "small", true);
    admin(&g_main, "NSSET", "small", "maxsize", "4096");
    struct qs_zdb *c = client(&g_main, "small", NULL, false);
    uint8_t buf[3000] = {1};
    uint8_t id[8];
    assert_int_equal(qs_zdb_seq_set(c, buf, sizeof(buf), id), 0);
    struct qs_zdb_nsinfo info;
    assert_int_equal(qs_zdb_nsinfo(c, &info), 0);
    assert_int_equal(info.data_limits_bytes, 4096);
    uint64_t free_ = qs_zdb_nsinfo_free(&info);
    assert_true(free_ <= 4096 - 3000);
    assert_int_equal(free_, 4096 - info.data_size_bytes);
    assert_int_equal(qs_zdb_seq_set(c, buf, sizeof(buf), id), QS_EFULL);
    assert_non_null(strstr(qs_err_msg(), "No space left on this namespace"));
    assert_non_null(strstr(qs_err_msg(), "/small"));
    /* the connection survives a refused write */
    assert_true(qs_zdb_connected(c));
    assert_int_equal(qs_zdb_seq_set(c, buf, 100, id), 0);
    qs_zdb_free(c);
}

static void test_unix_and_hostname(void **state)
{
    struct srv u = {0};
    srv_start(&u, true);
    make_ns(&u, "usock", true);
    struct qs_zdb *c = client(&u, "usock", NULL, false);
    uint8_t id[8];
    assert_int_equal(qs_zdb_seq_set(c, "abc", 3, id), 0);
    assert_string_equal(qs_zdb_name(c) + strlen(qs_zdb_name(c)) - 6, "/usock");
    qs_zdb_free(c);
    srv_destroy(&u);

    char a[128];
    snprintf(a, sizeof(a), "localhost:%u", g_main.port);
    c = client_at(a, NULL, NULL, false);
    assert_int_equal(qs_zdb_ping(c), 0);
    qs_zdb_free(c);
}

static void test_restart(void **state)
{
    struct srv s = {0};
    srv_start(&s, false);
    make_ns(&s, "r", true);
    struct qs_zdb *c = client(&s, "r", NULL, false);
    uint8_t id[8];
    assert_int_equal(qs_zdb_seq_set(c, "before", 6, id), 0);

    /* restart while the client is idle: the next request reconnects and re-selects */
    srv_stop(&s);
    srv_start(&s, false);
    uint8_t *v;
    size_t n;
    assert_int_equal(qs_zdb_seq_get(c, id, &v, &n), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(v, "before", 6);
    free(v);
    struct qs_zdb_stats st;
    qs_zdb_stats(c, &st);
    assert_int_equal(st.reconnects, 1);

    /* server down: bounded retries, then a clear error */
    srv_stop(&s);
    assert_int_equal(qs_zdb_seq_get(c, id, &v, &n), QS_EIO);
    assert_non_null(strstr(qs_err_msg(), "refused"));
    assert_non_null(strstr(qs_err_msg(), "after 3 attempts"));
    qs_zdb_stats(c, &st);
    assert_int_equal(st.consecutive, 1);

    /* back up: works again, counters reset */
    srv_start(&s, false);
    assert_int_equal(qs_zdb_seq_get(c, id, &v, &n), 0);
    free(v);
    qs_zdb_stats(c, &st);
    assert_int_equal(st.consecutive, 0);
    qs_zdb_free(c);
    srv_destroy(&s);
}

/* ---- fake servers --------------------------------------------------------------------- */

enum fake_mode {
    FAKE_SILENT,  /* accepts nothing: the kernel completes connects, nobody answers */
    FAKE_GARBAGE, /* answers every read with bytes that are not RESP */
    FAKE_HUGE,    /* announces a 100 MB bulk and streams zeros */
    FAKE_EXTRA,   /* answers two replies per request */
    FAKE_DROP,    /* 1st connection: answers one SET then closes; later: answers all */
    FAKE_CLOSE,   /* closes every connection at once */
};

struct fake {
    enum fake_mode mode;
    int lfd;
    unsigned port;
    pthread_t th;
    volatile int stop;
    int conns;        /* connections accepted */
    int cmds_second;  /* commands received on the second connection */
    uint64_t next_id; /* FAKE_DROP: next sequential id */
};

/* Counts complete RESP commands at the start of buf[0..len); returns bytes consumed. */
static size_t count_cmds(const uint8_t *buf, size_t len, int *cmds)
{
    size_t pos = 0;
    for (;;) {
        size_t p = pos;
        if (p >= len || buf[p] != '*')
            return pos;
        long argc = strtol((const char *)buf + p + 1, NULL, 10);
        const uint8_t *nl = memchr(buf + p, '\n', len - p);
        if (!nl)
            return pos;
        p = (size_t)(nl - buf) + 1;
        for (long i = 0; i < argc; i++) {
            if (p >= len || buf[p] != '$')
                return pos;
            long n = strtol((const char *)buf + p + 1, NULL, 10);
            nl = memchr(buf + p, '\n', len - p);
            if (!nl)
                return pos;
            p = (size_t)(nl - buf) + 1 + (size_t)n + 2;
            if (p > len)
                return pos;
        }
        pos = p;
        (*cmds)++;
    }
}

static void write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        b += w;
        n -= (size_t)w;
    }
}

static void fake_conn(struct fake *f, int fd)
{
    int idx = f->conns++;
    if (f->mode == FAKE_CLOSE)
        return;
    static uint8_t buf[1 << 16];
    size_t have = 0;
    int answered = 0;
    while (!f->stop) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = read(fd, buf + have, sizeof(buf) - have);
        if (r <= 0)
            return;
        have += (size_t)r;
        int cmds = 0;
        size_t used = count_cmds(buf, have, &cmds);
        memmove(buf, buf + used, have - used);
        have -= used;
        if (f->mode == FAKE_GARBAGE && (cmds || have)) {
            write_all(fd, "HTTP/1.0 400 Bad Request\r\n\r\n", 28);
            have = 0;
        }
        for (int i = 0; i < cmds; i++) {
            if (f->mode == FAKE_HUGE) {
                write_all(fd, "$100000000\r\n", 12);
                static const uint8_t zero[1 << 16];
                for (int k = 0; k < 400 && !f->stop; k++)
                    write_all(fd, zero, sizeof(zero));
                return;
            }
            if (f->mode == FAKE_EXTRA)
                write_all(fd, "+OK\r\n+OK\r\n", 10);
            if (f->mode == FAKE_DROP) {
                if (idx == 1)
                    f->cmds_second++;
                if (idx == 0 && answered == 1)
                    return; /* drop the connection with requests unanswered */
                uint8_t rep[14] = "$8\r\n";
                qs_put64(rep + 4, f->next_id++);
                memcpy(rep + 12, "\r\n", 2);
                write_all(fd, rep, sizeof(rep));
                answered++;
            }
        }
    }
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    while (!f->stop) {
        if (f->mode == FAKE_SILENT) {
            sleep_ms(20);
            continue;
        }
        struct pollfd p = {f->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        fake_conn(f, fd);
        close(fd);
    }
    return NULL;
}

static void fake_start(struct fake *f, enum fake_mode mode)
{
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 16), 0);
    socklen_t l = sizeof(a);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &l), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
    f->stop = 1;
    pthread_join(f->th, NULL);
    close(f->lfd);
}

static struct qs_zdb *fake_client(const struct fake *f, const char *ns, unsigned attempts,
                                  unsigned timeout_ms)
{
    struct qs_zdb_opts o;
    qs_zdb_opts_default(&o);
    char a[128];
    snprintf(a, sizeof(a), "127.0.0.1:%u", f->port);
    o.address = a;
    o.ns = ns;
    o.attempts = attempts;
    o.backoff_ms = 10;
    o.request_timeout_ms = timeout_ms;
    o.connect_timeout_ms = 1000;
    struct qs_zdb *c = NULL;
    assert_int_equal(qs_zdb_new(&c, &o), 0);
    return c;
}

static void test_timeout(void **state)
{
    struct fake f;
    fake_start(&f, FAKE_SILENT);
    struct qs_zdb *c = fake_client(&f, "data", 2, 200);
    assert_int_equal(qs_zdb_connect(c), QS_ETIMEOUT);
    assert_non_null(strstr(qs_err_msg(), "timeout"));
    assert_non_null(strstr(qs_err_msg(), "SELECT"));
    assert_non_null(strstr(qs_err_msg(), "after 2 attempts"));
    struct qs_zdb_stats st;
    qs_zdb_stats(c, &st);
    assert_int_equal(st.failures, 2);
    qs_zdb_free(c);
    fake_stop(&f);
}

static void test_refused(void **state)
{
    char a[128];
    snprintf(a, sizeof(a), "127.0.0.1:%u", free_port());
    struct qs_zdb *c = client_at(a, "x", NULL, false);
    assert_int_equal(qs_zdb_ping(c), QS_EIO);
    assert_non_null(strstr(qs_err_msg(), "connection refused"));
    assert_non_null(strstr(qs_err_msg(), a));
    qs_zdb_free(c);
}

static void test_garbage(void **state)
{
    struct fake f;
    fake_start(&f, FAKE_GARBAGE);
    struct qs_zdb *c = fake_client(&f, "data", 3, 2000);
    assert_int_equal(qs_zdb_connect(c), QS_EPROTO);
    assert_non_null(strstr(qs_err_msg(), "protocol error"));
    assert_non_null(strstr(qs_err_msg(), "SELECT"));
    assert_false(qs_zdb_connected(c));
    qs_zdb_free(c);
    fake_stop(&f);
    assert_int_equal(f.conns, 1); /* not retried: garbage stays garbage */

    fake_start(&f, FAKE_HUGE);
    c = fake_client(&f, NULL, 1, 5000);
    uint8_t *v;
    size_t n;
    assert_int_equal(qs_zdb_user_get(c, "k", 1, &v, &n), QS_EPROTO);
    assert_non_null(strstr(qs_err_msg(), "reply larger than"));
    qs_zdb_free(c);
    fake_stop(&f);

    fake_start(&f, FAKE_EXTRA);
    c = fake_client(&f, NULL, 1, 2000);
    assert_int_equal(qs_zdb_ping(c), QS_EPROTO);
    assert_non_null(strstr(qs_err_msg(), "unexpected"));
    qs_zdb_free(c);
    fake_stop(&f);

    fake_start(&f, FAKE_CLOSE);
    c = fake_client(&f, NULL, 3, 2000);
    assert_int_equal(qs_zdb_ping(c), QS_EIO);
    /* closed, or reset when the close raced with our request */
    if (!strstr(qs_err_msg(), "closed by the server") && !strstr(qs_err_msg(), "reset"))
        fail_msg("%s", qs_err_msg());
    qs_zdb_free(c);
    fake_stop(&f);
    assert_int_equal(f.conns, 3); /* a closed connection is retried */
}

static void test_resend_unanswered(void **state)
{
    struct fake f;
    fake_start(&f, FAKE_DROP);
    struct qs_zdb *c = fake_client(&f, NULL, 3, 2000);
    struct qs_zdb_op ops[4];
    for (int i = 0; i < 4; i++)
        ops[i] = (struct qs_zdb_op){.kind = QS_ZDB_SET, .val = "v", .val_len = 1};
    assert_int_equal(qs_zdb_batch(c, ops, 4), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ops[i].result, 0);
        assert_int_equal(ops[i].reply_len, 8);
        assert_int_equal(qs_le64(ops[i].reply), (uint64_t)i);
        free(ops[i].reply);
    }
    struct qs_zdb_stats st;
    qs_zdb_stats(c, &st);
    qs_zdb_free(c);
    fake_stop(&f);
    assert_int_equal(f.conns, 2);
    assert_int_equal(f.cmds_second, 3); /* only the unanswered requests were sent again */
    assert_int_equal(st.reconnects, 1);
    assert_int_equal(st.failures, 1);
}

/* ---- call limits and the pool ---------------------------------------------------------- */

/* A silent server and a 30 s request timeout with 3 attempts: a call's deadline of 300 ms
 * ends it in well under a second, not after 90 s. */
static void test_call_deadline(void **state)
{
    struct fake f;
    fake_start(&f, FAKE_SILENT);
    struct qs_zdb *c = fake_client(&f, "data", 3, 30000);
    int64_t t0 = qs_now_ms();
    qs_zdb_set_limits(c, t0 + 300, NULL);
    assert_int_equal(qs_zdb_connect(c), QS_ETIMEOUT);
    int64_t took = qs_now_ms() - t0;
    assert_non_null(strstr(qs_err_msg(), "deadline"));
    if (took > 5000)
        fail_msg("the call took %lld ms past a 300 ms deadline", (long long)took);
    qs_zdb_free(c);
    fake_stop(&f);
}

static void *cancel_later(void *arg)
{
    sleep_ms(200);
    atomic_store((atomic_int *)arg, 1);
    return NULL;
}

static void test_call_cancel(void **state)
{
    struct fake f;
    fake_start(&f, FAKE_SILENT);
    struct qs_zdb *c = fake_client(&f, "data", 3, 30000);
    atomic_int cancel = 0;
    qs_zdb_set_limits(c, 0, &cancel);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &cancel), 0);
    int64_t t0 = qs_now_ms();
    assert_int_equal(qs_zdb_connect(c), QS_EAGAIN);
    int64_t took = qs_now_ms() - t0;
    pthread_join(t, NULL);
    assert_non_null(strstr(qs_err_msg(), "cancelled"));
    if (took > 5000)
        fail_msg("a cancelled call went on for %lld ms", (long long)took);
    /* without limits the same client goes back to its own timeouts (a refused retry) */
    qs_zdb_set_limits(c, 0, NULL);
    qs_zdb_free(c);
    fake_stop(&f);
}

struct pool_worker {
    struct qs_zdb_pool *p;
    int id, failures;
};

static void *pool_work(void *arg)
{
    struct pool_worker *w = arg;
    for (int round = 0; round < 40; round++) {
        uint8_t val[4][64];
        struct qs_zdb_op ops[4];
        for (int i = 0; i < 4; i++) {
            snprintf((char *)val[i], sizeof(val[i]), "worker %d round %d value %d", w->id, round,
                     i);
            ops[i] = (struct qs_zdb_op){
                .kind = QS_ZDB_SET, .val = val[i], .val_len = strlen((char *)val[i])};
        }
        struct qs_zdb_call call = {.deadline_ms = qs_now_ms() + 20000};
        if (qs_zdb_pool_batch(w->p, &call, ops, 4) < 0) {
            w->failures++;
            continue;
        }
        struct qs_zdb_op gets[4];
        for (int i = 0; i < 4; i++)
            gets[i] = (struct qs_zdb_op){
                .kind = QS_ZDB_GET, .key = ops[i].reply, .key_len = ops[i].reply_len};
        if (qs_zdb_pool_batch(w->p, &call, gets, 4) < 0)
            w->failures++;
        for (int i = 0; i < 4; i++) {
            if (gets[i].result == 0 && (gets[i].reply_len != ops[i].val_len ||
                                        memcmp(gets[i].reply, val[i], ops[i].val_len) != 0))
                w->failures++;
            free(gets[i].reply);
            free(ops[i].reply);
        }
    }
    return NULL;
}

/* Eight threads share a pool of three connections to a real zdb: every value reads back,
 * never more than three connections open. */
static void test_pool_threads(void **state)
{
    make_ns(&g_main, "pool", true);
    char a[128];
    struct qs_zdb_pool_opts po = {.max_conns = 3};
    qs_zdb_opts_default(&po.conn);
    po.conn.address = addr_of(&g_main, a, sizeof(a));
    po.conn.ns = "pool";
    struct qs_zdb_pool *p = NULL;
    assert_int_equal(qs_zdb_pool_new(&p, &po), 0);
    struct pool_worker w[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct pool_worker){p, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, pool_work, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    unsigned open, peak;
    qs_zdb_pool_counts(p, &open, &peak);
    assert_true(peak <= 3);
    assert_true(open >= 1);

    /* every connection lent out: a borrower waits until its deadline or its cancel */
    struct qs_zdb *held[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(qs_zdb_pool_get(p, NULL, &held[i]), 0);
    struct qs_zdb *c = NULL;
    struct qs_zdb_call late = {.deadline_ms = qs_now_ms() + 100};
    assert_int_equal(qs_zdb_pool_get(p, &late, &c), QS_ETIMEOUT);
    assert_non_null(strstr(qs_err_msg(), "busy"));
    atomic_int cancel = 1;
    struct qs_zdb_call stop = {.cancel = &cancel};
    assert_int_equal(qs_zdb_pool_get(p, &stop, &c), QS_EAGAIN);
    qs_zdb_pool_put(p, held[0]);
    late.deadline_ms = qs_now_ms() + 1000;
    assert_int_equal(qs_zdb_pool_get(p, &late, &c), 0);
    assert_int_equal(qs_zdb_ping(c), 0);
    qs_zdb_pool_put(p, c);
    qs_zdb_pool_put(p, held[1]);
    qs_zdb_pool_put(p, held[2]);
    qs_zdb_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_nsinfo_parse),
        cmocka_unit_test(test_error_map),
        cmocka_unit_test(test_seq_roundtrip),
        cmocka_unit_test(test_user_roundtrip),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_value_limit),
        cmocka_unit_test(test_passwords),
        cmocka_unit_test(test_secure),
        cmocka_unit_test(test_bug_challenge_without_admin),
        cmocka_unit_test(test_full_namespace),
        cmocka_unit_test(test_unix_and_hostname),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_resend_unanswered),
        cmocka_unit_test(test_call_deadline),
        cmocka_unit_test(test_call_cancel),
        cmocka_unit_test(test_pool_threads),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
