/* Unit tests for lib/config: the 0-stor_v2 README example loads and reads back field by
 * field, our additions, every validation error with its exact message, loading from files,
 * allocation failures, and the redundancy arithmetic against a brute-force reference. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/redundancy.h"
#include "util/buf.h"

#ifndef QSFS_FIXTURES
#error "QSFS_FIXTURES (the tests/fixtures directory) must be defined"
#endif

/* ---- allocation failure injection (the test links with --wrap=malloc,calloc,realloc) -- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static long g_alloc_countdown = -1;

static int alloc_fails(void)
{
    if (g_alloc_countdown < 0)
        return 0;
    return g_alloc_countdown-- == 0;
}

void *__wrap_malloc(size_t n)
{
    return alloc_fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    return alloc_fails() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    return alloc_fails() ? NULL : __real_realloc(p, n);
}

/* ---- helpers -------------------------------------------------------------------------- */

#define FIXTURE QSFS_FIXTURES "/0-stor_v2-example.toml"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    *len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    char *s = malloc(*len + 1);
    assert_non_null(s);
    memcpy(s, buf, *len);
    s[*len] = '\0';
    return s;
}

static void assert_backend(const struct zstor_backend *b, const char *address, const char *host,
                           unsigned port, const char *ns, bool ns_given, const char *password,
                           unsigned line)
{
    assert_string_equal(b->address, address);
    assert_int_equal(b->kind, ZSTOR_ADDR_TCP);
    assert_string_equal(b->host, host);
    assert_true(b->host_is_ip);
    assert_int_equal(b->port, port);
    assert_null(b->path);
    assert_string_equal(b->ns, ns);
    assert_int_equal(b->ns_given, ns_given);
    if (password)
        assert_string_equal(b->password, password);
    else
        assert_null(b->password);
    assert_int_equal(b->line, line);
}

static void assert_defaults(const struct zstor_config *cfg)
{
    assert_int_equal(cfg->chunk_size, 1 << 20);
    assert_int_equal(cfg->compression_level, 0);
    assert_int_equal(cfg->connect_timeout_ms, 3000);
    assert_int_equal(cfg->request_timeout_ms, 30000);
    assert_int_equal(cfg->retries, 3);
    assert_int_equal(cfg->retry_backoff_ms, 200);
    assert_int_equal(cfg->health_interval_s, 10);
    assert_int_equal(cfg->repair_interval_s, 600);
    assert_int_equal(cfg->repair_grace_s, 900);
}

/* ---- the 0-stor_v2 README example ----------------------------------------------------- */

static void check_fixture(const struct zstor_config *cfg)
{
    assert_int_equal(cfg->minimal_shards, 10);
    assert_int_equal(cfg->expected_shards, 15);
    assert_int_equal(cfg->redundant_groups, 1);
    assert_int_equal(cfg->redundant_nodes, 1);
    assert_string_equal(cfg->root, "/virtualroot");
    assert_string_equal(cfg->socket, "/tmp/zstor.sock");
    assert_null(cfg->pid_file);
    assert_int_equal(cfg->prometheus_port, 9100);
    assert_string_equal(cfg->zdb_data_dir_path, "/tmp/0-db/data");
    assert_int_equal(cfg->max_zdb_data_dir_size, 25600);
    assert_null(cfg->zdbfs_mountpoint);
    static const uint8_t zero[32] = {0};
    uint8_t ones[32];
    memset(ones, 1, sizeof(ones));
    assert_memory_equal(cfg->key, zero, 32);
    assert_int_equal(cfg->compression, QS_COMPRESS_SNAPPY);

    assert_string_equal(cfg->meta.prefix, "someprefix");
    assert_memory_equal(cfg->meta.key, ones, 32);
    assert_int_equal(cfg->meta.data_shards, 2);
    assert_int_equal(cfg->meta.parity_shards, 2);
    assert_int_equal(cfg->meta.nbackends, 4);
    for (unsigned i = 0; i < 4; i++) {
        char addr[64];
        snprintf(addr, sizeof(addr), "[2a02:1802:5e::dead:beef]:990%u", i);
        assert_backend(&cfg->meta.backends[i], addr, "2a02:1802:5e::dead:beef", 9900 + i, "test2",
                       true, "supersecretpass", 28 + 5 * i);
    }

    assert_int_equal(cfg->ngroups, 2);
    assert_int_equal(cfg->groups[0].line, 48);
    assert_int_equal(cfg->groups[0].nbackends, 2);
    /* no namespace: zdb's default namespace, and not a duplicate of the same address with
     * namespace "test" */
    assert_backend(&cfg->groups[0].backends[0], "[fe80::1]:9900", "fe80::1", 9900, "default", false,
                   NULL, 49);
    assert_backend(&cfg->groups[0].backends[1], "[fe80::1]:9900", "fe80::1", 9900, "test", true,
                   NULL, 52);
    assert_int_equal(cfg->groups[1].line, 56);
    assert_int_equal(cfg->groups[1].nbackends, 2);
    assert_backend(&cfg->groups[1].backends[0], "[2a02:1802:5e::dead:babe]:9900",
                   "2a02:1802:5e::dead:babe", 9900, "default", false, NULL, 57);
    assert_backend(&cfg->groups[1].backends[1], "[2a02:1802:5e::dead:beef]:9900",
                   "2a02:1802:5e::dead:beef", 9900, "test2", true, "supersecretpass", 60);

    assert_int_equal(cfg->lines.minimal_shards, 1);
    assert_int_equal(cfg->lines.expected_shards, 2);
    assert_int_equal(cfg->lines.redundant_groups, 3);
    assert_int_equal(cfg->lines.redundant_nodes, 4);
    assert_int_equal(cfg->lines.groups, 48);
    assert_defaults(cfg);
    assert_string_equal(cfg->queue_path, "/tmp/zstor.sock.queue");
}

static void test_fixture_load(void **state)
{
    (void)state;
    struct zstor_config *cfg = NULL;
    int rc = zstor_config_load(FIXTURE, &cfg);
    if (rc)
        fail_msg("%s", qs_err_msg());
    assert_string_equal(cfg->name, FIXTURE);
    check_fixture(cfg);

    /* Its redundancy cannot be met (15 shards, 4 backends; 10 of 15 after losing a group
     * and a node per group is impossible even with more backends): loading works, the
     * check for writers says why. */
    assert_int_equal(zstor_config_check_redundancy(cfg), QS_ETOOFEW);
    assert_string_equal(qs_err_msg(),
                        FIXTURE ":2: expected_shards: the groups cannot hold the redundancy asked "
                                "(minimal_shards 10, redundant_groups 1, redundant_nodes 1): 15 "
                                "shards need 15 backends, the 2 groups have only 4");
    zstor_config_free(cfg);
}

static void test_fixture_parse(void **state)
{
    (void)state;
    size_t len;
    char *text = read_file(FIXTURE, &len);
    struct zstor_config *cfg = NULL;
    assert_int_equal(zstor_config_parse(text, len, "zstor.toml", &cfg), 0);
    assert_string_equal(cfg->name, "zstor.toml");
    check_fixture(cfg);
    zstor_config_free(cfg);

    /* CRLF line ends load the same */
    struct qs_buf b;
    qs_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(
            text[i] == '\n' ? qs_buf_append(&b, "\r\n", 2) : qs_buf_append(&b, &text[i], 1), 0);
    assert_int_equal(zstor_config_parse((const char *)qs_buf_ptr(&b), b.len, "crlf.toml", &cfg), 0);
    check_fixture(cfg);
    zstor_config_free(cfg);
    qs_buf_free(&b);
    free(text);
}

/* ---- a small valid config, and errors made from it ------------------------------------ */

static const char base[] =
    "minimal_shards = 2\n"                                                         /* 1 */
    "expected_shards = 3\n"                                                        /* 2 */
    "redundant_groups = 0\n"                                                       /* 3 */
    "redundant_nodes = 0\n"                                                        /* 4 */
    "[encryption]\n"                                                               /* 5 */
    "algorithm = \"AES\"\n"                                                        /* 6 */
    "key = \"000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\"\n" /* 7 */
    "[compression]\n"                                                              /* 8 */
    "algorithm = \"snappy\"\n"                                                     /* 9 */
    "[meta]\n"                                                                     /* 10 */
    "type = \"zdb\"\n"                                                             /* 11 */
    "[meta.config]\n"                                                              /* 12 */
    "prefix = \"p\"\n"                                                             /* 13 */
    "[meta.config.encryption]\n"                                                   /* 14 */
    "algorithm = \"AES\"\n"                                                        /* 15 */
    "key = \"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"\n" /* 16 */
    "[[meta.config.backends]]\n"                                                   /* 17 */
    "address = \"127.0.0.1:9901\"\n"                                               /* 18 */
    "[[meta.config.backends]]\n"                                                   /* 19 */
    "address = \"127.0.0.1:9902\"\n"                                               /* 20 */
    "[[meta.config.backends]]\n"                                                   /* 21 */
    "address = \"127.0.0.1:9903\"\n"                                               /* 22 */
    "[[meta.config.backends]]\n"                                                   /* 23 */
    "address = \"127.0.0.1:9904\"\n"                                               /* 24 */
    "[[groups]]\n"                                                                 /* 25 */
    "[[groups.backends]]\n"                                                        /* 26 */
    "address = \"127.0.0.1:9911\"\n"                                               /* 27 */
    "[[groups.backends]]\n"                                                        /* 28 */
    "address = \"127.0.0.1:9912\"\n"                                               /* 29 */
    "[[groups.backends]]\n"                                                        /* 30 */
    "address = \"127.0.0.1:9913\"\n";                                              /* 31 */

/* base with the first occurrence of find replaced (find must occur); the caller frees. */
static char *edit(const char *text, const char *find, const char *repl)
{
    const char *at = strstr(text, find);
    if (!at)
        fail_msg("'%s' not in the text", find);
    size_t a = (size_t)(at - text), f = strlen(find), r = strlen(repl), n = strlen(text);
    char *s = malloc(n - f + r + 1);
    assert_non_null(s);
    memcpy(s, text, a);
    memcpy(s + a, repl, r);
    memcpy(s + a + r, at + f, n - a - f + 1);
    return s;
}

static struct zstor_config *parse_ok(const char *text)
{
    struct zstor_config *cfg = NULL;
    int rc = zstor_config_parse(text, strlen(text), "t.toml", &cfg);
    if (rc)
        fail_msg("unexpected error: %s\n--- text ---\n%s", qs_err_msg(), text);
    return cfg;
}

static void test_base(void **state)
{
    (void)state;
    struct zstor_config *cfg = parse_ok(base);
    assert_int_equal(cfg->minimal_shards, 2);
    assert_int_equal(cfg->expected_shards, 3);
    for (int i = 0; i < 32; i++)
        assert_int_equal(cfg->key[i], i);
    for (int i = 0; i < 32; i++)
        assert_int_equal(cfg->meta.key[i], 0xff);
    assert_null(cfg->root);
    assert_null(cfg->socket);
    assert_null(cfg->queue_path);
    assert_int_equal(cfg->prometheus_port, 0);
    assert_int_equal(cfg->max_zdb_data_dir_size, 0);
    assert_int_equal(cfg->ngroups, 1);
    assert_int_equal(cfg->groups[0].nbackends, 3);
    assert_int_equal(cfg->groups[0].backends[2].port, 9913);
    assert_string_equal(cfg->groups[0].backends[2].host, "127.0.0.1");
    assert_defaults(cfg);
    assert_int_equal(zstor_config_check_redundancy(cfg), 0);
    zstor_config_free(cfg);
    zstor_config_free(NULL);
}

/* Every addition of ours, set. */
static void test_additions(void **state)
{
    (void)state;
    char *t1 = edit(base, "redundant_nodes = 0\n",
                    "redundant_nodes = 0\npid_file = \"/run/zstor.pid\"\n"
                    "zdbfs_mountpoint = \"/mnt\"\nchunk_size = 4_194_304\n"
                    "connect_timeout_ms = 500\nrequest_timeout_ms = 0x3e8\nretries = 0\n"
                    "retry_backoff_ms = 50\nhealth_interval_s = 5\nrepair_interval_s = 60\n"
                    "repair_grace_s = 0\nsocket = \"/run/zstor.sock\"\n"
                    "queue_path = \"/var/lib/zstor/queue\"\n");
    char *t2 = edit(t1, "algorithm = \"snappy\"", "algorithm = \"zstd\"\nlevel = 19");
    char *t3 = edit(t2, "prefix = \"p\"", "prefix = \"p\"\ndata_shards = 1\nparity_shards = 2");
    char *t4 = edit(t3, "[[meta.config.backends]]\naddress = \"127.0.0.1:9904\"\n", "");
    struct zstor_config *cfg = parse_ok(t4);
    assert_string_equal(cfg->pid_file, "/run/zstor.pid");
    assert_string_equal(cfg->zdbfs_mountpoint, "/mnt");
    assert_int_equal(cfg->chunk_size, 4 << 20);
    assert_int_equal(cfg->connect_timeout_ms, 500);
    assert_int_equal(cfg->request_timeout_ms, 1000);
    assert_int_equal(cfg->retries, 0);
    assert_int_equal(cfg->retry_backoff_ms, 50);
    assert_int_equal(cfg->health_interval_s, 5);
    assert_int_equal(cfg->repair_interval_s, 60);
    assert_int_equal(cfg->repair_grace_s, 0);
    assert_string_equal(cfg->queue_path, "/var/lib/zstor/queue");
    assert_int_equal(cfg->compression, QS_COMPRESS_ZSTD);
    assert_int_equal(cfg->compression_level, 19);
    assert_int_equal(cfg->meta.data_shards, 1);
    assert_int_equal(cfg->meta.parity_shards, 2);
    assert_int_equal(cfg->meta.nbackends, 3);
    zstor_config_free(cfg);
    free(t1);
    free(t2);
    free(t3);
    free(t4);

    static const struct {
        const char *name;
        enum qs_compress method;
    } methods[] = {
        {"lz4", QS_COMPRESS_LZ4}, {"none", QS_COMPRESS_NONE}, {"Snappy", QS_COMPRESS_SNAPPY}};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        char repl[64];
        snprintf(repl, sizeof(repl), "algorithm = \"%s\"", methods[i].name);
        char *t = edit(base, "algorithm = \"snappy\"", repl);
        cfg = parse_ok(t);
        assert_int_equal(cfg->compression, methods[i].method);
        zstor_config_free(cfg);
        free(t);
    }
}

/* Address forms that load, and what they parse into. */
static void test_addresses(void **state)
{
    (void)state;
    static const struct {
        const char *address;
        enum zstor_addr_kind kind;
        const char *host;
        unsigned port;
        bool is_ip;
        const char *path;
    } cases[] = {
        {"[::1]:9900", ZSTOR_ADDR_TCP, "::1", 9900, true, NULL},
        {"[fe80::1%eth0]:1", ZSTOR_ADDR_TCP, "fe80::1%eth0", 1, true, NULL},
        {"[::ffff:10.0.0.1]:65535", ZSTOR_ADDR_TCP, "::ffff:10.0.0.1", 65535, true, NULL},
        {"10.0.0.1:09900", ZSTOR_ADDR_TCP, "10.0.0.1", 9900, true, NULL},
        {"localhost:9900", ZSTOR_ADDR_TCP, "localhost", 9900, false, NULL},
        {"zdb-1.Example.com:9900", ZSTOR_ADDR_TCP, "zdb-1.Example.com", 9900, false, NULL},
        {"1host:1", ZSTOR_ADDR_TCP, "1host", 1, false, NULL},
        {"unix:///run/zdb.sock", ZSTOR_ADDR_UNIX, NULL, 0, false, "/run/zdb.sock"},
        {"dir:///srv/zstor/a/", ZSTOR_ADDR_DIR, NULL, 0, false, "/srv/zstor/a"},
        {"dir:///", ZSTOR_ADDR_DIR, NULL, 0, false, "/"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char repl[128];
        snprintf(repl, sizeof(repl), "address = \"%s\"", cases[i].address);
        char *t = edit(base, "address = \"127.0.0.1:9911\"", repl);
        struct zstor_config *cfg = parse_ok(t);
        const struct zstor_backend *b = &cfg->groups[0].backends[0];
        assert_string_equal(b->address, cases[i].address);
        assert_int_equal(b->kind, cases[i].kind);
        if (cases[i].host)
            assert_string_equal(b->host, cases[i].host);
        else
            assert_null(b->host);
        assert_int_equal(b->port, cases[i].port);
        assert_int_equal(b->host_is_ip, cases[i].is_ip);
        if (cases[i].path)
            assert_string_equal(b->path, cases[i].path);
        else
            assert_null(b->path);
        zstor_config_free(cfg);
        free(t);
    }
    assert_string_equal(zstor_addr_kind_name(ZSTOR_ADDR_DIR), "dir");
}

struct error_case {
    const char *find, *repl; /* the edit of base */
    int code;
    const char *msg; /* the whole message */
};

#define NO_GROUPS                                                                                  \
    "[[groups]]\n[[groups.backends]]\naddress = \"127.0.0.1:9911\"\n[[groups.backends]]\n"         \
    "address = \"127.0.0.1:9912\"\n[[groups.backends]]\naddress = \"127.0.0.1:9913\"\n"

#define A27 "t.toml:27: groups[0].backends[0].address: bad address "

static const struct error_case error_cases[] = {
    /* missing keys, wrong types, unknown keys */
    {"minimal_shards = 2\n", "", QS_EINVAL, "t.toml: minimal_shards: required key is missing"},
    {"[compression]\nalgorithm = \"snappy\"\n", "", QS_EINVAL,
     "t.toml: compression: required key is missing"},
    {"algorithm = \"AES\"\nkey", "key", QS_EINVAL,
     "t.toml:5: encryption.algorithm: required key is missing"},
    {"prefix = \"p\"\n", "", QS_EINVAL, "t.toml:12: meta.config.prefix: required key is missing"},
    {NO_GROUPS, "", QS_EINVAL, "t.toml: groups: required key is missing"},
    {"address = \"127.0.0.1:9911\"\n", "", QS_EINVAL,
     "t.toml:26: groups[0].backends[0].address: required key is missing"},
    {"minimal_shards = 2", "minimal_shards = \"2\"", QS_EINVAL,
     "t.toml:1: minimal_shards: expected an integer, got a string"},
    {"minimal_shards = 2", "minimal_shards = 2.0", QS_EINVAL,
     "t.toml:1: minimal_shards: expected an integer, got a float"},
    {"redundant_nodes = 0", "redundant_nodes = false", QS_EINVAL,
     "t.toml:4: redundant_nodes: expected an integer, got a boolean"},
    {"[encryption]\nalgorithm = \"AES\"\nkey = "
     "\"000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\"",
     "encryption = \"AES\"", QS_EINVAL, "t.toml:5: encryption: expected a table, got a string"},
    {"address = \"127.0.0.1:9911\"", "address = 9911", QS_EINVAL,
     "t.toml:27: groups[0].backends[0].address: expected a string, got an integer"},
    {"minimal_shards = 2", "minimal_shards = 2\nfoo = 1", QS_EINVAL, "t.toml:2: foo: unknown key"},
    {"minimal_shards = 2", "data_shards = 2", QS_EINVAL, "t.toml:1: data_shards: unknown key"},
    {"algorithm = \"snappy\"", "algorithm = \"snappy\"\nlevels = 3", QS_EINVAL,
     "t.toml:10: compression.levels: unknown key"},
    {"address = \"127.0.0.1:9911\"", "address = \"127.0.0.1:9911\"\nport = 1", QS_EINVAL,
     "t.toml:28: groups[0].backends[0].port: unknown key"},
    {"prefix = \"p\"", "prefix = \"p\"\nextra = 1", QS_EINVAL,
     "t.toml:14: meta.config.extra: unknown key"},
    {"[[groups]]", "[[groups]]\nname = \"a\"", QS_EINVAL, "t.toml:26: groups[0].name: unknown key"},
    {"minimal_shards = 2", "\"odd\\nkey\" = 2", QS_EINVAL, "t.toml:1: odd?key: unknown key"},
    /* shard counts */
    {"minimal_shards = 2", "minimal_shards = 4", QS_EINVAL,
     "t.toml:2: expected_shards: must be greater than minimal_shards (got 3 <= 4)"},
    {"expected_shards = 3", "expected_shards = 2", QS_EINVAL,
     "t.toml:2: expected_shards: must be greater than minimal_shards (got 2 <= 2)"},
    {"minimal_shards = 2", "minimal_shards = 0", QS_EINVAL,
     "t.toml:1: minimal_shards: must be at least 1 (got 0)"},
    {"minimal_shards = 2", "minimal_shards = -3", QS_EINVAL,
     "t.toml:1: minimal_shards: must be at least 1 (got -3)"},
    {"minimal_shards = 2", "minimal_shards = 255", QS_EINVAL,
     "t.toml:1: minimal_shards: must be at most 254 (got 255)"},
    {"expected_shards = 3", "expected_shards = 256", QS_EINVAL,
     "t.toml:2: expected_shards: must be at most 255 (got 256)"},
    {"redundant_groups = 0", "redundant_groups = -1", QS_EINVAL,
     "t.toml:3: redundant_groups: must be between 0 and 255 (got -1)"},
    /* other values */
    {"minimal_shards = 2", "minimal_shards = 2\nprometheus_port = 0", QS_EINVAL,
     "t.toml:2: prometheus_port: must be at least 1 (got 0)"},
    {"minimal_shards = 2", "minimal_shards = 2\nprometheus_port = 65536", QS_EINVAL,
     "t.toml:2: prometheus_port: must be at most 65535 (got 65536)"},
    {"minimal_shards = 2", "minimal_shards = 2\nmax_zdb_data_dir_size = 0", QS_EINVAL,
     "t.toml:2: max_zdb_data_dir_size: must be at least 1 (got 0)"},
    {"minimal_shards = 2", "minimal_shards = 2\nchunk_size = 100", QS_EINVAL,
     "t.toml:2: chunk_size: must be between 4096 and 67108864 (got 100)"},
    {"minimal_shards = 2", "minimal_shards = 2\nroot = \"\"", QS_EINVAL,
     "t.toml:2: root: must not be empty"},
    {"minimal_shards = 2", "minimal_shards = 2\nroot = \"some/dir\"", QS_EINVAL,
     "t.toml:2: root: must be an absolute path (got \"some/dir\")"},
    {"minimal_shards = 2", "minimal_shards = 2\nroot = \"/a\\u0000b\"", QS_EINVAL,
     "t.toml:2: root: must not contain a NUL character"},
    {"minimal_shards = 2",
     "minimal_shards = 2\nsocket = \"/0123456789012345678901234567890123456789012345678901234567890"
     "123456789012345678901234567890123456789012345678901234567890\"",
     QS_EINVAL, "t.toml:2: socket: is too long for a unix socket path (at most 107 bytes)"},
    {"minimal_shards = 2", "minimal_shards = 2\nretries = 101", QS_EINVAL,
     "t.toml:2: retries: must be at most 100 (got 101)"},
    {"minimal_shards = 2", "minimal_shards = 2\nrequest_timeout_ms = 0", QS_EINVAL,
     "t.toml:2: request_timeout_ms: must be at least 1 (got 0)"},
    /* encryption */
    {"algorithm = \"AES\"", "algorithm = \"DES\"", QS_EINVAL,
     "t.toml:6: encryption.algorithm: unknown algorithm \"DES\" (expected \"AES\", AES-256-GCM)"},
    {"key = \"000102", "key = \"0001g2", QS_EINVAL,
     "t.toml:7: encryption.key: must be 64 hex digits: character 5 is not a hex digit"},
    {"key = \"000102", "key = \"0102", QS_EINVAL,
     "t.toml:7: encryption.key: must be 64 hex digits (32 bytes), got 62 characters"},
    {"1E1F\"", "1E1F00\"", QS_EINVAL,
     "t.toml:7: encryption.key: must be 64 hex digits (32 bytes), got 66 characters"},
    {"key = \"ffff", "key = \"ff f", QS_EINVAL,
     "t.toml:16: meta.config.encryption.key: must be 64 hex digits: character 3 is not a hex "
     "digit"},
    {"[meta.config.encryption]\nalgorithm = \"AES\"\nkey = "
     "\"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"\n",
     "", QS_EINVAL, "t.toml:12: meta.config.encryption: required key is missing"},
    /* compression, meta */
    {"algorithm = \"snappy\"", "algorithm = \"gzip\"", QS_EINVAL,
     "t.toml:9: compression.algorithm: unknown algorithm \"gzip\" (expected snappy, zstd, lz4 or "
     "none)"},
    {"algorithm = \"snappy\"", "algorithm = \"snappy\"\nlevel = 3", QS_EINVAL,
     "t.toml:10: compression.level: only zstd has levels (algorithm is snappy)"},
    {"algorithm = \"snappy\"", "algorithm = \"zstd\"\nlevel = 23", QS_EINVAL,
     "t.toml:10: compression.level: must be at most 22 (got 23)"},
    {"type = \"zdb\"", "type = \"etcd\"", QS_EINVAL,
     "t.toml:11: meta.type: unknown metadata store \"etcd\" (expected \"zdb\")"},
    {"[[meta.config.backends]]\naddress = \"127.0.0.1:9904\"\n", "", QS_EINVAL,
     "t.toml:17: meta.config.backends: needs exactly 4 backends (data_shards 2 + parity_shards 2), "
     "got 3"},
    {"prefix = \"p\"", "prefix = \"p\"\nparity_shards = 3", QS_EINVAL,
     "t.toml:18: meta.config.backends: needs exactly 5 backends (data_shards 2 + parity_shards 3), "
     "got 4"},
    {"prefix = \"p\"", "prefix = \"p\"\nparity_shards = 0", QS_EINVAL,
     "t.toml:14: meta.config.parity_shards: must be at least 1 (got 0)"},
    {"prefix = \"p\"",
     "prefix = \"0123456789012345678901234567890123456789012345678901234567890123456789012345678"
     "9012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789\"",
     QS_EINVAL, "t.toml:13: meta.config.prefix: is too long (210 bytes, at most 200)"},
    /* addresses */
    {"\"127.0.0.1:9911\"", "\"127.0.0.1\"", QS_EINVAL,
     A27 "\"127.0.0.1\": missing port (expected [ipv6]:port, ipv4:port, host:port, unix:///path "
         "or dir:///path)"},
    {"\"127.0.0.1:9911\"", "\"::1:9900\"", QS_EINVAL,
     A27 "\"::1:9900\": write an IPv6 address in brackets, [addr]:port"},
    {"\"127.0.0.1:9911\"", "\"[::g]:1\"", QS_EINVAL, A27 "\"[::g]:1\": not an IPv6 address"},
    {"\"127.0.0.1:9911\"", "\"[::1]9900\"", QS_EINVAL,
     A27 "\"[::1]9900\": expected [ipv6]:port, ipv4:port, host:port, unix:///path or dir:///path"},
    {"\"127.0.0.1:9911\"", "\"[fe80::1%]:1\"", QS_EINVAL,
     A27 "\"[fe80::1%]:1\": bad IPv6 zone (interface name)"},
    {"\"127.0.0.1:9911\"", "\"256.1.1.1:1\"", QS_EINVAL,
     A27 "\"256.1.1.1:1\": not an IPv4 address"},
    {"\"127.0.0.1:9911\"", "\"1.2.3:1\"", QS_EINVAL, A27 "\"1.2.3:1\": not an IPv4 address"},
    {"\"127.0.0.1:9911\"", "\"127.0.0.1:0\"", QS_EINVAL,
     A27 "\"127.0.0.1:0\": the port must be a number 1..65535"},
    {"\"127.0.0.1:9911\"", "\"127.0.0.1:65536\"", QS_EINVAL,
     A27 "\"127.0.0.1:65536\": the port must be a number 1..65535"},
    {"\"127.0.0.1:9911\"", "\"127.0.0.1:+1\"", QS_EINVAL,
     A27 "\"127.0.0.1:+1\": the port must be a number 1..65535"},
    {"\"127.0.0.1:9911\"", "\"127.0.0.1:\"", QS_EINVAL,
     A27 "\"127.0.0.1:\": the port must be a number 1..65535"},
    {"\"127.0.0.1:9911\"", "\"-bad.example:1\"", QS_EINVAL,
     A27 "\"-bad.example:1\": not a valid host name"},
    {"\"127.0.0.1:9911\"", "\"host_name:1\"", QS_EINVAL,
     A27 "\"host_name:1\": not a valid host name"},
    {"\"127.0.0.1:9911\"", "\"a..b:1\"", QS_EINVAL, A27 "\"a..b:1\": not a valid host name"},
    {"\"127.0.0.1:9911\"", "\":1\"", QS_EINVAL, A27 "\":1\": not a valid host name"},
    {"\"127.0.0.1:9911\"", "\"unix://run/zdb.sock\"", QS_EINVAL,
     A27 "\"unix://run/zdb.sock\": the path must be absolute (unix:///path, three slashes)"},
    {"\"127.0.0.1:9911\"", "\"dir://srv\"", QS_EINVAL,
     A27 "\"dir://srv\": the path must be absolute (dir:///path, three slashes)"},
    {"\"127.0.0.1:9911\"", "\"http://a:1\"", QS_EINVAL,
     A27 "\"http://a:1\": unknown scheme (expected [ipv6]:port, ipv4:port, host:port, "
         "unix:///path or dir:///path)"},
    {"\"127.0.0.1:9911\"", "\"\"", QS_EINVAL,
     "t.toml:27: groups[0].backends[0].address: must not be empty"},
    {"\"127.0.0.1:9911\"", "\"a\\tb:1\"", QS_EINVAL, A27 "\"a?b:1\": not a valid host name"},
    /* namespaces, backend lists */
    {"address = \"127.0.0.1:9911\"", "address = \"127.0.0.1:9911\"\nnamespace = \"\"", QS_EINVAL,
     "t.toml:28: groups[0].backends[0].namespace: must not be empty"},
    {NO_GROUPS, "[[groups]]\nbackends = []\n", QS_EINVAL,
     "t.toml:26: groups[0].backends: at least one backend is needed"},
    {NO_GROUPS, "[[groups]]\nbackends = [\"127.0.0.1:1\"]\n", QS_EINVAL,
     "t.toml:26: groups[0].backends[0]: expected a table (address, namespace, password), got a "
     "string"},
    /* duplicate backends */
    {"\"127.0.0.1:9912\"", "\"127.0.0.1:9911\"", QS_EINVAL,
     "t.toml:28: groups[0].backends[1]: duplicate backend: address \"127.0.0.1:9911\" with "
     "namespace \"default\" is already on line 26"},
    {"\"127.0.0.1:9913\"", "\"127.0.0.1:9911\"\nnamespace = \"default\"", QS_EINVAL,
     "t.toml:30: groups[0].backends[2]: duplicate backend: address \"127.0.0.1:9911\" with "
     "namespace \"default\" is already on line 26"},
    {"\"127.0.0.1:9913\"",
     "\"127.0.0.1:9911\"\n[[groups]]\n[[groups.backends]]\n"
     "address = \"127.0.0.1:9913\"",
     QS_EINVAL,
     "t.toml:30: groups[0].backends[2]: duplicate backend: address \"127.0.0.1:9911\" with "
     "namespace \"default\" is already on line 26"},
    {"\"127.0.0.1:9913\"",
     "\"127.0.0.1:9913\"\n[[groups]]\n[[groups.backends]]\n"
     "address = \"127.0.0.1:9912\"",
     QS_EINVAL,
     "t.toml:33: groups[1].backends[0]: duplicate backend: address \"127.0.0.1:9912\" with "
     "namespace \"default\" is already on line 28"},
    {"\"127.0.0.1:9911\"\n[[groups.backends]]\naddress = \"127.0.0.1:9912\"",
     "\"[::1]:1\"\n[[groups.backends]]\naddress = \"[0:0::0:1]:1\"", QS_EINVAL,
     "t.toml:28: groups[0].backends[1]: duplicate backend: address \"[0:0::0:1]:1\" with "
     "namespace \"default\" is already on line 26"},
    {"\"127.0.0.1:9911\"\n[[groups.backends]]\naddress = \"127.0.0.1:9912\"",
     "\"Zdb.Local:1\"\nnamespace = \"x\"\n[[groups.backends]]\naddress = \"zdb.local:1\"\n"
     "namespace = \"x\"",
     QS_EINVAL,
     "t.toml:29: groups[0].backends[1]: duplicate backend: address \"zdb.local:1\" with "
     "namespace \"x\" is already on line 26"},
    {"\"127.0.0.1:9911\"\n[[groups.backends]]\naddress = \"127.0.0.1:9912\"",
     "\"dir:///srv/a\"\n[[groups.backends]]\naddress = \"dir:///srv/a/\"", QS_EINVAL,
     "t.toml:28: groups[0].backends[1]: duplicate backend: address \"dir:///srv/a/\" with "
     "namespace \"default\" is already on line 26"},
    {"\"127.0.0.1:9904\"", "\"127.0.0.1:9901\"", QS_EINVAL,
     "t.toml:23: meta.config.backends[3]: duplicate backend: address \"127.0.0.1:9901\" with "
     "namespace \"default\" is already on line 17"},
    /* syntax errors keep the TOML parser's position */
    {"redundant_groups = 0", "redundant_groups = ", QS_EINVAL,
     "t.toml:3:20: expected a value (string, number, boolean, date-time, array or inline table), "
     "found end of line"},
    {"redundant_groups = 0", "redundant_groups = 0\nminimal_shards = 3", QS_EINVAL,
     "t.toml:4:1: duplicate key 'minimal_shards' (first defined on line 1)"},
    {"[compression]", "[encryption]", QS_EINVAL,
     "t.toml:8:1: table [encryption] is already defined by a header (line 5)"},
};

/* Errors in a root-level groups key: the [[groups]] lines go and "groups = ..." comes first. */
static const struct {
    const char *groups;
    const char *msg;
} group_cases[] = {
    {"groups = []", "t.toml:1: groups: at least one group is needed"},
    {"groups = [1]", "t.toml:1: groups[0]: expected a table with backends, got an integer"},
    {"groups = 1", "t.toml:1: groups: expected an array, got an integer"},
    {"groups = [{backends = [{address = \"[::1]:1\", namespace = \"x\"}, "
     "{address = \"[::1]:1\", namespace = \"x\"}]}]",
     "t.toml:1: groups[0].backends[1]: duplicate backend: address \"[::1]:1\" with namespace "
     "\"x\" is already on line 1"},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        const struct error_case *c = &error_cases[i];
        char *text = edit(base, c->find, c->repl);
        struct zstor_config *cfg = (struct zstor_config *)&cfg;
        int rc = zstor_config_parse(text, strlen(text), "t.toml", &cfg);
        if (rc != c->code || strcmp(qs_err_msg(), c->msg) != 0)
            fail_msg("case %zu: rc %d\n got: %s\nwant: %s\n--- text ---\n%s", i, rc, qs_err_msg(),
                     c->msg, text);
        assert_null(cfg);
        free(text);
    }
    for (size_t i = 0; i < sizeof(group_cases) / sizeof(group_cases[0]); i++) {
        char *t1 = edit(base, NO_GROUPS, "");
        char first[512];
        snprintf(first, sizeof(first), "%s\nminimal_shards = 2", group_cases[i].groups);
        char *text = edit(t1, "minimal_shards = 2", first);
        struct zstor_config *cfg;
        int rc = zstor_config_parse(text, strlen(text), "t.toml", &cfg);
        if (rc != QS_EINVAL || strcmp(qs_err_msg(), group_cases[i].msg) != 0)
            fail_msg("group case %zu: rc %d\n got: %s\nwant: %s", i, rc, qs_err_msg(),
                     group_cases[i].msg);
        free(t1);
        free(text);
    }
}

/* The [qsfs] table: defaults, the zstor keys it derives, and the conflicts it refuses. */
static void test_qsfs(void **state)
{
    (void)state;
    char *t1 = edit(base, "[compression]",
                    "[qsfs]\ndir = \"/var/lib/qsfs/\"\nmountpoint = \"/mnt/q\"\n[compression]");
    struct zstor_config *cfg = parse_ok(t1);
    assert_true(cfg->qsfs.present);
    assert_string_equal(cfg->qsfs.dir, "/var/lib/qsfs/");
    assert_string_equal(cfg->root, "/var/lib/qsfs/");
    assert_string_equal(cfg->socket, "/var/lib/qsfs/zstor.sock");
    assert_string_equal(cfg->queue_path, "/var/lib/qsfs/zstor.sock.queue");
    assert_string_equal(cfg->zdb_data_dir_path, "/var/lib/qsfs/data/zdbfs-data");
    assert_string_equal(cfg->zdbfs_mountpoint, "/mnt/q");
    assert_int_equal(cfg->max_zdb_data_dir_size, 4096);
    assert_int_equal(cfg->qsfs.datasize_mib, 64);
    assert_int_equal(cfg->qsfs.rotate_s, 900);
    assert_int_equal(cfg->qsfs.checkpoint_s, 10);
    assert_string_equal(cfg->qsfs.zdbfs_options, "");
    assert_int_equal(cfg->qsfs.upload_priority, ZSTOR_QSFS_PRIO_IDLE);
    assert_int_equal(cfg->qsfs.upload_defer_s, 10);
    assert_int_equal(cfg->qsfs.checkpoint_rotate_mib, 8);
    zstor_config_free(cfg);
    free(t1);

    char *t0 =
        edit(base, "[encryption]",
             "socket = \"/run/z.sock\"\nmax_zdb_data_dir_size = 100\nroot = \"/q\"\n[encryption]");
    t1 = edit(t0, "[compression]",
              "[qsfs]\ndir = \"/q\"\nmountpoint = \"/m\"\nrotate_s = 60\nzdbfs_options = "
              "\"nocache\"\nupload_priority = \"low\"\n[compression]");
    free(t0);
    cfg = parse_ok(t1);
    assert_string_equal(cfg->socket, "/run/z.sock");
    assert_int_equal(cfg->qsfs.cache_mib, 100);
    assert_int_equal(cfg->qsfs.rotate_s, 60);
    assert_string_equal(cfg->qsfs.zdbfs_options, "nocache");
    assert_int_equal(cfg->qsfs.upload_priority, ZSTOR_QSFS_PRIO_LOW);
    zstor_config_free(cfg);
    free(t1);

    static const struct {
        const char *top, *add, *msg;
    } bad[] = {
        {"", "[qsfs]\nmountpoint = \"/m\"\n", "t.toml:8: qsfs.dir: required key is missing"},
        {"", "[qsfs]\ndir = \"q\"\nmountpoint = \"/m\"\n",
         "t.toml:9: qsfs.dir: must be an absolute path (got \"q\")"},
        {"", "[qsfs]\ndir = \"/q\"\nmountpoint = \"/m\"\nrotat_s = 5\n",
         "t.toml:11: qsfs.rotat_s: unknown key"},
        {"", "[qsfs]\ndir = \"/q\"\nmountpoint = \"/m\"\nrotate_s = 0\n",
         "t.toml:11: qsfs.rotate_s: must be at least 1 (got 0)"},
        {"", "[qsfs]\ndir = \"/q\"\nmountpoint = \"/m\"\nupload_priority = \"high\"\n",
         "t.toml:11: qsfs.upload_priority: expected \"idle\", \"low\" or \"normal\""},
        {"root = \"/other\"\n", "[qsfs]\ndir = \"/q\"\nmountpoint = \"/m\"\n",
         "t.toml:5: root: with a [qsfs] table this is \"/q\"; leave it out (got \"/other\")"},
        {"max_zdb_data_dir_size = 5\n",
         "[qsfs]\ndir = \"/q\"\nmountpoint = \"/m\"\ncache_mib = 5\n",
         "t.toml:12: qsfs.cache_mib: max_zdb_data_dir_size says the same: set only one"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char repl[512], top[512];
        snprintf(top, sizeof(top), "%s[encryption]", bad[i].top);
        snprintf(repl, sizeof(repl), "%s[compression]", bad[i].add);
        char *t2 = edit(base, "[encryption]", top);
        char *text = edit(t2, "[compression]", repl);
        free(t2);
        struct zstor_config *c2 = NULL;
        int rc = zstor_config_parse(text, strlen(text), "t.toml", &c2);
        if (rc != QS_EINVAL || strcmp(qs_err_msg(), bad[i].msg) != 0)
            fail_msg("qsfs case %zu: rc %d\n got: %s\nwant: %s\n%s", i, rc, qs_err_msg(),
                     bad[i].msg, text);
        free(text);
    }
}

/* Meta and data backends may share a namespace (the 0-stor_v2 example does); the same
 * address with another namespace is another backend. */
static void test_not_duplicates(void **state)
{
    (void)state;
    char *t1 = edit(base, "address = \"127.0.0.1:9912\"", "address = \"127.0.0.1:9901\"");
    char *t2 = edit(t1, "address = \"127.0.0.1:9913\"",
                    "address = \"127.0.0.1:9911\"\nnamespace = \"other\"");
    struct zstor_config *cfg = parse_ok(t2);
    assert_int_equal(cfg->groups[0].nbackends, 3);
    zstor_config_free(cfg);
    free(t1);
    free(t2);
}

/* ---- redundancy of the data groups ----------------------------------------------------- */

static char *config_with_groups(unsigned minimal, unsigned expected, unsigned rg, unsigned rn,
                                const unsigned *sizes, size_t ngroups)
{
    char head[128];
    snprintf(head, sizeof(head),
             "minimal_shards = %u\nexpected_shards = %u\nredundant_groups = %u\n"
             "redundant_nodes = %u\n",
             minimal, expected, rg, rn);
    char *t = edit(base,
                   "minimal_shards = 2\nexpected_shards = 3\nredundant_groups = 0\n"
                   "redundant_nodes = 0\n",
                   head);
    const char *groups = strstr(t, "[[groups]]");
    struct qs_buf b;
    qs_buf_init(&b, 1 << 20);
    assert_int_equal(qs_buf_append(&b, t, (size_t)(groups - t)), 0);
    unsigned port = 10000;
    for (size_t g = 0; g < ngroups; g++) {
        assert_int_equal(qs_buf_appendf(&b, "[[groups]]\n"), 0);
        for (unsigned i = 0; i < sizes[g]; i++)
            assert_int_equal(
                qs_buf_appendf(&b, "[[groups.backends]]\naddress = \"127.0.0.1:%u\"\n", port++), 0);
    }
    assert_int_equal(qs_buf_append(&b, "", 1), 0);
    free(t);
    char *s = strdup((const char *)qs_buf_ptr(&b));
    qs_buf_free(&b);
    return s;
}

static void test_check_redundancy(void **state)
{
    (void)state;
    static const struct {
        unsigned minimal, expected, rg, rn;
        unsigned sizes[4];
        size_t ngroups;
        const char *msg; /* NULL: fine */
    } cases[] = {
        {2, 3, 0, 0, {3}, 1, NULL},
        {2, 3, 0, 1, {3}, 1, NULL},
        {2,
         3,
         0,
         2,
         {3},
         1,
         "t.toml:2: expected_shards: the groups cannot hold the redundancy asked (minimal_shards "
         "2, redundant_groups 0, redundant_nodes 2): no placement of 3 shards on 3 backends in 1 "
         "group keeps 2 after losing 0 whole groups and 2 backends in every other group (the best "
         "keeps 1)"},
        {2,
         3,
         1,
         0,
         {3},
         1,
         "t.toml:2: expected_shards: the groups cannot hold the redundancy asked (minimal_shards "
         "2, redundant_groups 1, redundant_nodes 0): no placement of 3 shards on 3 backends in 1 "
         "group keeps 2 after losing 1 whole group and 0 backends in every other group (the best "
         "keeps 0)"},
        {4, 6, 1, 0, {2, 2, 2}, 3, NULL},
        {4,
         6,
         1,
         0,
         {3, 3},
         2,
         "t.toml:2: expected_shards: the groups cannot hold the redundancy asked (minimal_shards "
         "4, redundant_groups 1, redundant_nodes 0): no placement of 6 shards on 6 backends in 2 "
         "groups keeps 4 after losing 1 whole group and 0 backends in every other group (the best "
         "keeps 3)"},
        {4, 6, 0, 1, {3, 3}, 2, NULL},
        {2, 6, 1, 1, {2, 2, 2, 2}, 4, NULL},
        {10,
         15,
         1,
         1,
         {20, 20, 20, 20},
         4,
         "t.toml:2: expected_shards: the groups cannot hold the redundancy asked (minimal_shards "
         "10, redundant_groups 1, redundant_nodes 1): no placement of 15 shards on 80 backends in "
         "4 groups keeps 10 after losing 1 whole group and 1 backend in every other group (the "
         "best keeps 8)"},
        {4,
         6,
         0,
         0,
         {2, 2},
         2,
         "t.toml:2: expected_shards: the groups cannot hold the redundancy asked (minimal_shards "
         "4, redundant_groups 0, redundant_nodes 0): 6 shards need 6 backends, the 2 groups have "
         "only 4"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *t = config_with_groups(cases[i].minimal, cases[i].expected, cases[i].rg, cases[i].rn,
                                     cases[i].sizes, cases[i].ngroups);
        struct zstor_config *cfg = parse_ok(t);
        int rc = zstor_config_check_redundancy(cfg);
        if (cases[i].msg) {
            if (rc != QS_ETOOFEW || strcmp(qs_err_msg(), cases[i].msg) != 0)
                fail_msg("case %zu: rc %d\n got: %s\nwant: %s", i, rc, qs_err_msg(), cases[i].msg);
        } else if (rc) {
            fail_msg("case %zu: %s", i, qs_err_msg());
        }
        zstor_config_free(cfg);
        free(t);
    }
}

/* Brute-force reference: the worst case over every choice of lost groups. */
static unsigned ref_survivors(const unsigned *x, size_t n, unsigned rg, unsigned rn)
{
    unsigned worst = ~0u;
    for (unsigned mask = 0; mask < (1u << n); mask++) {
        if ((unsigned)__builtin_popcount(mask) != (rg < n ? rg : (unsigned)n))
            continue;
        unsigned left = 0;
        for (size_t g = 0; g < n; g++)
            if (!(mask & (1u << g)))
                left += x[g] > rn ? x[g] - rn : 0;
        if (left < worst)
            worst = left;
    }
    return worst;
}

/* Every group-size vector of up to 4 groups of 0..3 backends, every redundancy 0..3 and
 * every expected 1..12: the plan exists exactly when some placement (enumerated) keeps
 * minimal, and the plan it returns is valid. */
static void test_redundancy_brute_force(void **state)
{
    (void)state;
    enum { G = 4, S = 3, E = 12 };
    unsigned long checked = 0;
    for (size_t n = 1; n <= G; n++) {
        unsigned size[G] = {0};
        unsigned total_vectors = 1;
        for (size_t g = 0; g < n; g++)
            total_vectors *= S + 1;
        for (unsigned code = 0; code < total_vectors; code++) {
            unsigned c = code, sum = 0;
            for (size_t g = 0; g < n; g++) {
                size[g] = c % (S + 1);
                c /= S + 1;
                sum += size[g];
            }
            for (unsigned rg = 0; rg <= 3; rg++) {
                for (unsigned rn = 0; rn <= 3; rn++) {
                    /* best[e] = max over placements of e shards of the worst case */
                    int best[E + 1];
                    for (int e = 0; e <= E; e++)
                        best[e] = -1;
                    unsigned x[G] = {0}, allx = 1;
                    for (size_t g = 0; g < n; g++)
                        allx *= size[g] + 1;
                    for (unsigned xc = 0; xc < allx; xc++) {
                        unsigned cc = xc, e = 0;
                        for (size_t g = 0; g < n; g++) {
                            x[g] = cc % (size[g] + 1);
                            cc /= size[g] + 1;
                            e += x[g];
                        }
                        unsigned s = ref_survivors(x, n, rg, rn);
                        assert_int_equal(zstor_redundancy_survivors(x, n, rg, rn), s);
                        if (e <= E && (int)s > best[e])
                            best[e] = (int)s;
                    }
                    for (unsigned e = 1; e <= E; e++) {
                        for (unsigned k = 1; k <= e; k++) {
                            unsigned alloc[G];
                            int rc = zstor_redundancy_plan(size, n, k, e, rg, rn, alloc);
                            bool want = e <= sum && best[e] >= (int)k;
                            if (want != (rc == 0))
                                fail_msg("sizes %u,%u,%u,%u n=%zu k=%u e=%u rg=%u rn=%u: rc %d, "
                                         "brute force %d: %s",
                                         size[0], size[1], size[2], size[3], n, k, e, rg, rn, rc,
                                         best[e], qs_err_msg());
                            if (rc == 0) {
                                unsigned tot = 0;
                                for (size_t g = 0; g < n; g++) {
                                    assert_true(alloc[g] <= size[g]);
                                    tot += alloc[g];
                                }
                                assert_int_equal(tot, e);
                                assert_true(ref_survivors(alloc, n, rg, rn) >= k);
                            } else {
                                assert_int_equal(rc, QS_ETOOFEW);
                            }
                            checked++;
                        }
                    }
                }
            }
        }
    }
    assert_true(checked > 100000);
}

static void test_redundancy_args(void **state)
{
    (void)state;
    unsigned size[2] = {300, 300}, alloc[2];
    assert_int_equal(zstor_redundancy_plan(size, 2, 0, 3, 0, 0, alloc), QS_EINVAL);
    assert_int_equal(zstor_redundancy_plan(size, 2, 4, 3, 0, 0, alloc), QS_EINVAL);
    assert_int_equal(zstor_redundancy_plan(size, 2, 4, 256, 0, 0, alloc), QS_EINVAL);
    assert_int_equal(zstor_redundancy_plan(size, 0, 1, 2, 0, 0, alloc), QS_ETOOFEW);
    /* large groups: all 255 shards fit, and spread */
    assert_int_equal(zstor_redundancy_plan(size, 2, 100, 255, 1, 0, alloc), 0);
    assert_int_equal(alloc[0] + alloc[1], 255);
    assert_true(zstor_redundancy_survivors(alloc, 2, 1, 0) >= 100);
    /* 16 + 4 over 5 groups of 4, surviving a lost group: 4 per group */
    unsigned five[5] = {4, 4, 4, 4, 4}, a5[5];
    assert_int_equal(zstor_redundancy_plan(five, 5, 16, 20, 1, 0, a5), 0);
    for (int g = 0; g < 5; g++)
        assert_int_equal(a5[g], 4);
}

/* ---- files ---------------------------------------------------------------------------- */

static void test_load_files(void **state)
{
    (void)state;
    struct zstor_config *cfg = (struct zstor_config *)&cfg;
    assert_int_equal(zstor_config_load("/nonexistent/zstor.toml", &cfg), QS_EIO);
    assert_null(cfg);
    assert_string_equal(qs_err_msg(),
                        "/nonexistent/zstor.toml: cannot open the config file: No such file or "
                        "directory");
    assert_int_equal(zstor_config_load("/", &cfg), QS_EIO);
    assert_string_equal(qs_err_msg(), "/: not a regular file");

    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, base, strlen(base)), (ssize_t)strlen(base));
    cfg = NULL;
    assert_int_equal(zstor_config_load(path, &cfg), 0);
    assert_string_equal(cfg->name, path);
    assert_int_equal(cfg->groups[0].nbackends, 3);
    zstor_config_free(cfg);

    /* an error names the file */
    assert_int_equal(write(fd, "bogus = 1\n", 10), 10);
    assert_int_equal(zstor_config_load(path, &cfg), QS_EINVAL);
    char want[128];
    snprintf(want, sizeof(want), "%s:32: groups[0].backends[2].bogus: unknown key", path);
    assert_string_equal(qs_err_msg(), want);

    /* too large */
    assert_int_equal(ftruncate(fd, ZSTOR_CONFIG_MAX_SIZE + 1), 0);
    assert_int_equal(zstor_config_load(path, &cfg), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "too large"));
    close(fd);
    unlink(path);

    assert_int_equal(zstor_config_parse(base, ZSTOR_CONFIG_MAX_SIZE + 1, NULL, &cfg), QS_EINVAL);
    assert_string_equal(qs_err_msg(), "config: too large (4194305 bytes, at most 4194304)");
}

/* Every allocation may fail: QS_ENOMEM, nothing leaks (ASan checks at exit). */
static void test_alloc_failures(void **state)
{
    (void)state;
    size_t len;
    char *text = read_file(FIXTURE, &len);
    int failures = 0;
    for (long n = 0;; n++) {
        struct zstor_config *cfg;
        g_alloc_countdown = n;
        int rc = zstor_config_parse(text, len, "f.toml", &cfg);
        g_alloc_countdown = -1;
        if (rc == 0) {
            check_fixture(cfg);
            zstor_config_free(cfg);
            break;
        }
        assert_int_equal(rc, QS_ENOMEM);
        assert_null(cfg);
        failures++;
        assert_true(n < 100000);
    }
    assert_true(failures > 50);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_load),
        cmocka_unit_test(test_fixture_parse),
        cmocka_unit_test(test_base),
        cmocka_unit_test(test_additions),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_qsfs),
        cmocka_unit_test(test_not_duplicates),
        cmocka_unit_test(test_check_redundancy),
        cmocka_unit_test(test_redundancy_brute_force),
        cmocka_unit_test(test_redundancy_args),
        cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
