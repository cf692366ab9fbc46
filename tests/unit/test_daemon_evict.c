/* Unit tests of the daemon's data-directory eviction (lib/daemon/evict.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/evict.h"

struct env {
    char dir[64];
    int calls;
    const char *unsafe;  /* a file name the callback refuses */
    const char *changes; /* a file name the callback appends to while it is checked */
    int fail_at;         /* the callback fails on this call (1-based), 0 = never */
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/qsfs-evict-XXXXXX");
    if (!mkdtemp(e->dir))
        return -1;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        return -1;
    free(e);
    return 0;
}

/* A file of size bytes whose access time is atime (seconds since the epoch). */
static void make(const struct env *e, const char *name, size_t size, long atime)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", e->dir, name);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    mkdir(p, 0700);
    *slash = '/';
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    char buf[1024] = {0};
    for (size_t left = size; left;) {
        size_t n = left < sizeof(buf) ? left : sizeof(buf);
        assert_int_equal(write(fd, buf, n), (ssize_t)n);
        left -= n;
    }
    struct timespec ts[2] = {{.tv_sec = atime}, {.tv_sec = 1000}};
    assert_int_equal(futimens(fd, ts), 0);
    close(fd);
}

static bool exists(const struct env *e, const char *name)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", e->dir, name);
    return access(p, F_OK) == 0;
}

static int safe_cb(void *ud, const char *path, const struct stat *st, bool *safe)
{
    struct env *e = ud;
    e->calls++;
    if (e->fail_at && e->calls == e->fail_at)
        return qs_err_set(QS_EIO, "meta backends unreachable");
    const char *base = strrchr(path, '/') + 1;
    *safe = !(e->unsafe && strcmp(base, e->unsafe) == 0);
    if (e->changes && strcmp(base, e->changes) == 0) {
        int fd = open(path, O_WRONLY | O_APPEND);
        assert_int_equal(write(fd, "x", 1), 1);
        close(fd);
    }
    return 0;
}

static void test_under_limit_nothing(void **state)
{
    struct env *e = *state;
    make(e, "ns/d0", 1000, 100);
    make(e, "ns/d1", 1000, 200);
    struct zse_result r;
    assert_int_equal(zse_run(e->dir, 2000, safe_cb, e, &r), 0);
    assert_int_equal(r.files, 2);
    assert_int_equal(r.total_before, 2000);
    assert_int_equal(r.deleted, 0);
    assert_int_equal(e->calls, 0); /* nothing is even checked */
}

static void test_oldest_first_until_under(void **state)
{
    struct env *e = *state;
    make(e, "a/d2", 3000, 300);
    make(e, "a/d0", 3000, 100);
    make(e, "b/d1", 3000, 200);
    make(e, "b/d3", 3000, 400);
    struct zse_result r;
    assert_int_equal(zse_run(e->dir, 7000, safe_cb, e, &r), 0);
    assert_int_equal(r.deleted, 2);
    assert_int_equal(r.freed, 6000);
    assert_int_equal(r.total_after, 6000);
    assert_false(exists(e, "a/d0"));
    assert_false(exists(e, "b/d1"));
    assert_true(exists(e, "a/d2"));
    assert_true(exists(e, "b/d3"));
}

static void test_unsafe_and_changed_skipped(void **state)
{
    struct env *e = *state;
    make(e, "ns/d0", 3000, 100);
    make(e, "ns/d1", 3000, 200);
    make(e, "ns/d2", 3000, 300);
    make(e, "ns/d3", 3000, 400);
    e->unsafe = "d0";  /* not stored, or changed since it was stored */
    e->changes = "d1"; /* appended to while it was being checked */
    struct zse_result r;
    assert_int_equal(zse_run(e->dir, 6000, safe_cb, e, &r), 0);
    assert_true(exists(e, "ns/d0"));
    assert_true(exists(e, "ns/d1"));
    assert_false(exists(e, "ns/d2"));
    assert_false(exists(e, "ns/d3"));
    assert_int_equal(r.skipped, 2);
    assert_int_equal(r.deleted, 2);
    /* at the limit by the sizes seen when scanning (d1 grew by a byte since) */
    assert_int_equal(r.total_after, 6000);
}

static void test_callback_error_stops(void **state)
{
    struct env *e = *state;
    make(e, "ns/d0", 3000, 100);
    make(e, "ns/d1", 3000, 200);
    make(e, "ns/d2", 3000, 300);
    e->fail_at = 2;
    struct zse_result r;
    assert_int_equal(zse_run(e->dir, 1000, safe_cb, e, &r), QS_EIO);
    assert_false(exists(e, "ns/d0"));
    assert_true(exists(e, "ns/d1"));
    assert_true(exists(e, "ns/d2"));
}

static void test_symlinks_not_followed(void **state)
{
    struct env *e = *state;
    char outside[128], link[128];
    snprintf(outside, sizeof(outside), "%s.outside", e->dir);
    int fd = open(outside, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_int_equal(write(fd, "precious", 8), 8);
    close(fd);
    make(e, "ns/d0", 100, 100);
    snprintf(link, sizeof(link), "%s/ns/link", e->dir);
    assert_int_equal(symlink(outside, link), 0);
    struct zse_result r;
    assert_int_equal(zse_run(e->dir, 0, safe_cb, e, &r), 0);
    assert_int_equal(r.files, 1);
    assert_int_equal(access(outside, F_OK), 0);
    unlink(outside);
    assert_int_equal(zse_run("/nonexistent-qsfs-dir", 0, safe_cb, e, &r), QS_EIO);
    assert_non_null(strstr(qs_err_msg(), "/nonexistent-qsfs-dir"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_under_limit_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oldest_first_until_under, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_and_changed_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_error_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinks_not_followed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
