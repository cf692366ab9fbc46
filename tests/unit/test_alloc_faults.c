/* Allocation failure injection (SQLite's and curl's way): each operation below runs again
 * and again with its n-th allocation failing, for n = 1, 2, ... until it runs without
 * meeting the failure. Every run must end with 0 or a clean QS_ENOMEM and a message, no
 * crash, and (under ASan, in CI) no leak; the queue must still open with every item that
 * was acknowledged. malloc, calloc and realloc are wrapped at link time
 * (-Wl,--wrap=...), which reaches every allocation our own code makes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon/proto.h"
#include "daemon/queue.h"
#include "toml/toml.h"
#include "util/buf.h"

static long g_fail_at; /* 0 = never */
static long g_count;
static long g_failed;

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);

static int fail_now(void)
{
    if (g_fail_at && ++g_count == g_fail_at) {
        g_failed++;
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t a, size_t b)
{
    return fail_now() ? NULL : __real_calloc(a, b);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

/* Runs op with the n-th allocation failing for every n until it completes untouched;
 * returns how many runs met a failure. */
static long each_failure(int (*op)(void *ud), void *ud)
{
    long runs = 0;
    for (long n = 1; n < 100000; n++) {
        g_fail_at = n;
        g_count = 0;
        long before = g_failed;
        int rc = op(ud);
        g_fail_at = 0;
        if (g_failed == before) { /* the operation made fewer than n allocations */
            assert_int_equal(rc, 0);
            return runs;
        }
        runs++;
        if (rc != 0) {
            assert_int_equal(rc, QS_ENOMEM);
            assert_true(qs_err_msg()[0] != '\0');
        }
    }
    fail_msg("the operation never completed");
    return runs;
}

static char *g_text;
static size_t g_len;

static int op_config(void *ud)
{
    struct zstor_config *cfg;
    int rc = zstor_config_parse(g_text, g_len, "example.toml", &cfg);
    zstor_config_free(cfg);
    return rc;
}

static int op_toml(void *ud)
{
    struct toml_doc *doc;
    struct toml_error err;
    int rc = toml_parse(g_text, g_len, &doc, &err);
    toml_free(doc);
    return rc;
}

static void load_fixture(void)
{
    const char *path = SOURCE_DIR "/../shared/fixtures/0-stor_v2-example.toml";
    FILE *f = fopen(path, "rb");
    if (!f) { /* the fixture lives beside the repository; a copy of its shape otherwise */
        static const char fallback[] =
            "minimal_shards = 2\nexpected_shards = 4\nredundant_groups = 0\n"
            "redundant_nodes = 0\nsocket = \"/tmp/zstor.sock\"\n[encryption]\n"
            "algorithm = \"AES\"\nkey = "
            "\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"\n"
            "[compression]\nalgorithm = \"snappy\"\n[meta]\ntype = \"zdb\"\n[meta.config]\n"
            "prefix = \"p\"\n[meta.config.encryption]\nalgorithm = \"AES\"\nkey = "
            "\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"\n"
            "[[meta.config.backends]]\naddress = \"[::1]:1\"\n[[meta.config.backends]]\n"
            "address = \"[::1]:2\"\n[[meta.config.backends]]\naddress = \"[::1]:3\"\n"
            "[[meta.config.backends]]\naddress = \"[::1]:4\"\n[[groups]]\n"
            "[[groups.backends]]\naddress = \"[::1]:5\"\n[[groups.backends]]\n"
            "address = \"[::1]:6\"\n[[groups.backends]]\naddress = \"[::1]:7\"\n"
            "[[groups.backends]]\naddress = \"[::1]:8\"\n";
        g_text = strdup(fallback);
        g_len = strlen(g_text);
        return;
    }
    g_text = calloc(1, 1 << 16);
    g_len = fread(g_text, 1, (1 << 16) - 1, f);
    fclose(f);
}

static void test_config_and_toml(void **state)
{
    load_fixture();
    long a = each_failure(op_config, NULL);
    long b = each_failure(op_toml, NULL);
    print_message("config: %ld runs with a failed allocation, toml: %ld\n", a, b);
    assert_true(a > 10 && b > 10);
    free(g_text);
}

struct qenv {
    char path[64];
    unsigned added; /* acknowledged items so far (kept across runs) */
};

static int op_queue(void *ud)
{
    struct qenv *e = ud;
    struct zsq *q;
    struct zsq_opts o = {.nosync = true};
    int rc = zsq_open(&q, e->path, &o);
    if (rc < 0)
        return rc;
    /* every acknowledged item is there, whatever failed before */
    assert_int_equal(zsq_len(q), e->added);
    char p[64];
    snprintf(p, sizeof(p), "/data/file-%u", e->added);
    rc = zsq_add(q, p, NULL, 0, 1000, NULL);
    if (rc == 0)
        e->added++;
    zsq_close(q);
    return rc;
}

static void test_queue(void **state)
{
    struct qenv e = {0};
    snprintf(e.path, sizeof(e.path), "/tmp/qsfs-allocq-%ld", (long)getpid());
    unlink(e.path);
    long runs = 0;
    for (int i = 0; i < 5; i++)
        runs += each_failure(op_queue, &e);
    print_message("queue: %ld runs with a failed allocation, %u items kept\n", runs, e.added);
    assert_true(e.added >= 5);
    unlink(e.path);
}

static int op_proto(void *ud)
{
    char *argv[] = {"store", "-f", "/some/file", "-n"};
    struct qs_buf b;
    qs_buf_init(&b, 1 << 20);
    int rc = zsd_req_append(&b, 4, argv, "/work", 0);
    if (rc == 0) {
        struct zsd_req r;
        enum zsd_type t;
        const uint8_t *pl;
        size_t len, used;
        rc = zsd_frame_next(qs_buf_ptr(&b), b.len, &t, &pl, &len, &used);
        assert_int_equal(rc, 0);
        rc = zsd_req_decode(pl, len, &r);
        if (rc == 0)
            assert_string_equal(r.argv[2], "/some/file");
        zsd_req_free(&r);
    }
    qs_buf_free(&b);
    return rc;
}

static void test_proto(void **state)
{
    assert_true(each_failure(op_proto, NULL) >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_and_toml),
        cmocka_unit_test(test_queue),
        cmocka_unit_test(test_proto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
