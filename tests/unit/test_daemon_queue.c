/* Unit tests of the daemon's persistent store queue (lib/daemon/queue.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/queue.h"

/* Write and ftruncate faults (linked with --wrap=write,--wrap=ftruncate): the next write
 * stops half way, then writes to the queue file fail with ENOSPC; writes to the
 * rewrite's ".new" file fail only while g_fail_new is set. */
ssize_t __real_write(int fd, const void *p, size_t n);
int __real_ftruncate(int fd, off_t len);
static int g_half_then_fail; /* arm: one half write, then failures */
static int g_failing;        /* writes fail with ENOSPC */
static int g_fail_truncate;  /* ftruncate fails with EIO */
static int g_fail_new;       /* writes to "*.new" fail */

static int is_new_file(int fd)
{
    char link[64], target[256];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n < 4)
        return 0;
    target[n] = '\0';
    return strcmp(target + n - 4, ".new") == 0;
}

ssize_t __wrap_write(int fd, const void *p, size_t n);
ssize_t __wrap_write(int fd, const void *p, size_t n)
{
    if (g_fail_new && is_new_file(fd)) {
        errno = ENOSPC;
        return -1;
    }
    if (g_half_then_fail && n > 1) {
        g_half_then_fail = 0;
        g_failing = 1;
        return __real_write(fd, p, n / 2);
    }
    if (g_failing && !is_new_file(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return __real_write(fd, p, n);
}

int __wrap_ftruncate(int fd, off_t len);
int __wrap_ftruncate(int fd, off_t len)
{
    if (g_fail_truncate) {
        errno = EIO;
        return -1;
    }
    return __real_ftruncate(fd, len);
}

static void faults_off(void)
{
    g_half_then_fail = g_failing = g_fail_truncate = g_fail_new = 0;
}

struct env {
    char dir[64];
    char path[96];
};

static void faults_off(void);

static int setup(void **state)
{
    faults_off();
    struct env *e = calloc(1, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/qsfs-queue-XXXXXX");
    if (!e || !mkdtemp(e->dir))
        return -1;
    snprintf(e->path, sizeof(e->path), "%s/queue", e->dir);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    char p[128];
    snprintf(p, sizeof(p), "%s.new", e->path);
    unlink(p);
    unlink(e->path);
    rmdir(e->dir);
    free(e);
    return 0;
}

static const struct zsq_opts OPTS = {.min_backoff_ms = 100, .max_backoff_ms = 1000, .nosync = true};

static struct zsq *open_q(const struct env *e)
{
    struct zsq *q = NULL;
    assert_int_equal(zsq_open(&q, e->path, &OPTS), 0);
    return q;
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void test_add_take_done_persist(void **state)
{
    struct env *e = *state;
    struct zsq *q = open_q(e);
    uint64_t a, b, c;
    assert_int_equal(zsq_add(q, "/data/a", NULL, 0, 1000, &a), 0);
    assert_int_equal(zsq_add(q, "/data/b", "/keys", ZSQ_DELETE, 1001, &b), 0);
    assert_int_equal(zsq_add(q, "/data/c", "", 0, 1002, &c), 0);
    assert_true(a != b && b != c && a != c);
    assert_int_equal(zsq_len(q), 3);

    struct zsq_item it;
    assert_int_equal(zsq_take(q, 2000, &it, NULL), 0);
    assert_string_equal(it.path, "/data/a");
    assert_int_equal(it.id, a);
    zsq_item_free(&it);
    assert_int_equal(zsq_done(q, a), 0);
    zsq_close(q);

    /* a restart: b and c are still there, in order, with their fields */
    q = open_q(e);
    assert_int_equal(zsq_len(q), 2);
    struct zsq_item *items;
    size_t n;
    assert_int_equal(zsq_list(q, &items, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(items[0].path, "/data/b");
    assert_string_equal(items[0].key_path, "/keys");
    assert_int_equal(items[0].flags, ZSQ_DELETE);
    assert_int_equal(items[0].added_ms, 1001);
    assert_string_equal(items[1].path, "/data/c");
    assert_string_equal(items[1].key_path, "");
    zsq_items_free(items, n);

    /* ids are never reused, even for an item added after the newest one left */
    assert_int_equal(zsq_take(q, 2000, &it, NULL), 0);
    zsq_item_free(&it);
    assert_int_equal(zsq_take(q, 2000, &it, NULL), 0);
    zsq_item_free(&it);
    assert_int_equal(zsq_done(q, b), 0);
    assert_int_equal(zsq_done(q, c), 0);
    zsq_close(q);
    q = open_q(e);
    assert_int_equal(zsq_len(q), 0);
    uint64_t d;
    assert_int_equal(zsq_add(q, "/data/d", NULL, 0, 3000, &d), 0);
    assert_true(d > c);
    zsq_close(q);
}

static void test_failure_backoff_does_not_block(void **state)
{
    struct env *e = *state;
    struct zsq *q = open_q(e);
    uint64_t a, b;
    assert_int_equal(zsq_add(q, "/data/a", NULL, 0, 0, &a), 0);
    assert_int_equal(zsq_add(q, "/data/b", NULL, 0, 0, &b), 0);
    struct zsq_item it;
    assert_int_equal(zsq_take(q, 10, &it, NULL), 0);
    assert_int_equal(it.id, a);
    zsq_item_free(&it);
    assert_int_equal(zsq_failed(q, a, 10, "backend down"), 0);
    /* the failed head waits; the next item is taken */
    assert_int_equal(zsq_take(q, 20, &it, NULL), 0);
    assert_int_equal(it.id, b);
    zsq_item_free(&it);
    uint64_t wait = 0;
    assert_int_equal(zsq_take(q, 20, &it, &wait), QS_ENOTFOUND);
    assert_int_equal(wait, 90); /* a is ready at 10 + 100 */
    assert_int_equal(zsq_take(q, 110, &it, NULL), 0);
    assert_int_equal(it.id, a);
    assert_int_equal(it.attempts, 1);
    assert_string_equal(it.last_error, "backend down");
    zsq_item_free(&it);
    /* doubling, capped at max_backoff_ms */
    uint64_t now = 110;
    uint64_t expect[] = {200, 400, 800, 1000, 1000};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(zsq_failed(q, a, now, "still down"), 0);
        assert_int_equal(zsq_take(q, now + expect[i] - 1, &it, &wait), QS_ENOTFOUND);
        assert_int_equal(wait, 1);
        assert_int_equal(zsq_take(q, now + expect[i], &it, NULL), 0);
        zsq_item_free(&it);
        now += expect[i];
    }
    assert_int_equal(zsq_failed(q, a, now, "x"), 0);
    zsq_close(q);
    /* attempts, delay and error survive a restart; busy marks do not */
    q = open_q(e);
    struct zsq_item *items;
    size_t n;
    assert_int_equal(zsq_list(q, &items, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(items[0].attempts, 7);
    assert_string_equal(items[0].last_error, "x");
    assert_int_equal(items[0].next_ms, now + 1000);
    assert_false(items[1].busy);
    zsq_items_free(items, n);
    assert_int_equal(zsq_take(q, now, &it, NULL), 0);
    assert_int_equal(it.id, b);
    zsq_item_free(&it);
    assert_int_equal(zsq_take(q, now, &it, &wait), QS_ENOTFOUND);
    assert_int_equal(wait, 1000);
    zsq_close(q);
}

static void test_readd_coalesces(void **state)
{
    struct env *e = *state;
    struct zsq *q = open_q(e);
    uint64_t a, a2, other;
    assert_int_equal(zsq_add(q, "/data/a", NULL, 0, 0, &a), 0);
    assert_int_equal(zsq_add(q, "/data/a", NULL, ZSQ_DELETE, 5, &a2), 0);
    assert_int_equal(a, a2);
    assert_int_equal(zsq_len(q), 1);
    /* the same file under another key path is another stored name */
    assert_int_equal(zsq_add(q, "/data/a", "/elsewhere", 0, 5, &other), 0);
    assert_true(other != a);
    assert_int_equal(zsq_len(q), 2);

    struct zsq_item it;
    assert_int_equal(zsq_take(q, 10, &it, NULL), 0);
    assert_int_equal(it.flags, ZSQ_DELETE);
    zsq_item_free(&it);
    /* queued again while it is being stored: stored again afterwards */
    assert_int_equal(zsq_add(q, "/data/a", NULL, 0, 11, NULL), 0);
    assert_int_equal(zsq_done(q, a), 0);
    assert_int_equal(zsq_len(q), 2);
    assert_int_equal(zsq_take(q, 12, &it, NULL), 0);
    assert_int_equal(it.id, a);
    zsq_item_free(&it);
    assert_int_equal(zsq_done(q, a), 0);
    assert_int_equal(zsq_len(q), 1);
    assert_int_equal(zsq_done(q, a), QS_ENOTFOUND);
    assert_int_equal(zsq_failed(q, 999, 0, "x"), QS_ENOTFOUND);
    zsq_close(q);
}

static void test_torn_tail_dropped(void **state)
{
    struct env *e = *state;
    struct zsq *q = open_q(e);
    assert_int_equal(zsq_add(q, "/data/a", NULL, 0, 0, NULL), 0);
    off_t one = file_size(e->path);
    assert_int_equal(zsq_add(q, "/data/b", NULL, 0, 0, NULL), 0);
    off_t two = file_size(e->path);
    zsq_close(q);
    /* every cut inside the last record loses that record only */
    for (off_t cut = one + 1; cut < two; cut += 5) {
        assert_int_equal(truncate(e->path, cut), 0);
        q = open_q(e);
        assert_int_equal(zsq_len(q), 1);
        zsq_close(q);
        /* put the file back as it was: header, a, b (no next-id record: a new queue) */
        unlink(e->path);
        q = open_q(e);
        assert_int_equal(zsq_add(q, "/data/a", NULL, 0, 0, NULL), 0);
        assert_int_equal(zsq_add(q, "/data/b", NULL, 0, 0, NULL), 0);
        assert_int_equal(file_size(e->path), two);
        zsq_close(q);
    }
}

static void test_damage_refused(void **state)
{
    struct env *e = *state;
    struct zsq *q = open_q(e);
    assert_int_equal(zsq_add(q, "/data/a", NULL, 0, 0, NULL), 0);
    off_t one = file_size(e->path);
    assert_int_equal(zsq_add(q, "/data/b", NULL, 0, 0, NULL), 0);
    zsq_close(q);
    /* a flipped byte in the first record (not the tail) */
    int fd = open(e->path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, one - 3), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, one - 3), 1);
    close(fd);
    off_t before = file_size(e->path);
    struct zsq *q2 = NULL;
    assert_int_equal(zsq_open(&q2, e->path, &OPTS), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "damaged record"));
    assert_null(q2);
    assert_int_equal(file_size(e->path), before); /* kept as it was */
    /* not a queue file at all */
    fd = open(e->path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "hello world\n", 12), 12);
    close(fd);
    assert_int_equal(zsq_open(&q2, e->path, &OPTS), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "not a zstor queue file"));
}

static void test_compaction_bounds_file(void **state)
{
    struct env *e = *state;
    struct zsq *q = open_q(e);
    assert_int_equal(zsq_add(q, "/data/keep", NULL, 0, 0, NULL), 0);
    struct zsq_item it;
    assert_int_equal(zsq_take(q, 0, &it, NULL), 0); /* stays busy */
    zsq_item_free(&it);
    for (int i = 0; i < 5000; i++) {
        char p[64];
        snprintf(p, sizeof(p), "/data/f%d", i);
        uint64_t id;
        assert_int_equal(zsq_add(q, p, NULL, 0, 1, &id), 0);
        assert_int_equal(zsq_take(q, 1, &it, NULL), 0);
        assert_int_equal(it.id, id);
        zsq_item_free(&it);
        if (i % 2)
            assert_int_equal(zsq_done(q, id), 0);
        else {
            assert_int_equal(zsq_failed(q, id, 1, "transient"), 0);
            assert_int_equal(zsq_take(q, 1000000, &it, NULL), 0);
            zsq_item_free(&it);
            assert_int_equal(zsq_done(q, id), 0);
        }
    }
    assert_true(file_size(e->path) < 64 * 1024);
    assert_int_equal(zsq_len(q), 1);
    zsq_close(q);
    q = open_q(e);
    assert_int_equal(zsq_len(q), 1);
    zsq_close(q);
}

static void test_bad_arguments(void **state)
{
    struct env *e = *state;
    struct zsq *q = open_q(e);
    assert_int_equal(zsq_add(q, "", NULL, 0, 0, NULL), QS_EINVAL);
    assert_int_equal(zsq_add(q, NULL, NULL, 0, 0, NULL), QS_EINVAL);
    assert_int_equal(zsq_add(q, "/a", NULL, 0x80, 0, NULL), QS_EINVAL);
    char *long_path = malloc(ZSQ_PATH_MAX + 2);
    memset(long_path, 'a', ZSQ_PATH_MAX + 1);
    long_path[ZSQ_PATH_MAX + 1] = '\0';
    assert_int_equal(zsq_add(q, long_path, NULL, 0, 0, NULL), QS_EINVAL);
    long_path[ZSQ_PATH_MAX] = '\0';
    assert_int_equal(zsq_add(q, long_path, long_path, 0, 0, NULL), 0);
    free(long_path);
    char err[2000];
    memset(err, 'e', sizeof(err) - 1);
    err[sizeof(err) - 1] = '\0';
    struct zsq_item it;
    assert_int_equal(zsq_take(q, 0, &it, NULL), 0);
    assert_int_equal(zsq_failed(q, it.id, 0, err), 0); /* cut to ZSQ_ERR_MAX */
    zsq_item_free(&it);
    zsq_close(q);
    q = open_q(e);
    struct zsq_item *items;
    size_t n;
    assert_int_equal(zsq_list(q, &items, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(items[0].last_error), ZSQ_ERR_MAX);
    zsq_items_free(items, n);
    zsq_close(q);
    struct zsq *q2 = NULL;
    assert_int_equal(zsq_open(&q2, "/nonexistent-dir/queue", &OPTS), QS_EIO);
    assert_null(q2);
}

/* One flipped bit in a length field of the first record (of three) never reopens as a
 * shorter queue: the open is refused and the file kept byte for byte. */
static void test_flipped_length_refused(void **state)
{
    struct env *e = *state;
    struct zsq *q = open_q(e);
    assert_int_equal(zsq_add(q, "/data/a", NULL, 0, 0, NULL), 0);
    assert_int_equal(zsq_add(q, "/data/b", NULL, 0, 0, NULL), 0);
    assert_int_equal(zsq_add(q, "/data/c", NULL, 0, 0, NULL), 0);
    zsq_close(q);
    off_t size = file_size(e->path);
    int fd = open(e->path, O_RDWR);
    assert_true(fd >= 0);
    for (off_t at = 8; at < 12; at++) /* the first record's u32 length */
        for (int bit = 0; bit < 8; bit++) {
            uint8_t b, flipped;
            assert_int_equal(pread(fd, &b, 1, at), 1);
            flipped = (uint8_t)(b ^ (1u << bit));
            assert_int_equal(pwrite(fd, &flipped, 1, at), 1);
            struct zsq *q2 = NULL;
            int rc = zsq_open(&q2, e->path, &OPTS);
            if (rc != QS_ECORRUPT)
                fail_msg("byte %ld bit %d: open gave %d (%zu items)", (long)at, bit, rc,
                         q2 ? zsq_len(q2) : 0);
            assert_non_null(strstr(qs_err_msg(), "offset 8"));
            assert_int_equal(file_size(e->path), size);
            assert_int_equal(pwrite(fd, &b, 1, at), 1);
        }
    close(fd);
    q = open_q(e);
    assert_int_equal(zsq_len(q), 3);
    zsq_close(q);
    /* a zero-filled tail (the size reached the disk, the bytes did not) is a torn append */
    fd = open(e->path, O_WRONLY | O_APPEND);
    uint8_t zeros[40] = {0};
    assert_int_equal(write(fd, zeros, sizeof(zeros)), (ssize_t)sizeof(zeros));
    close(fd);
    q = open_q(e);
    assert_int_equal(zsq_len(q), 3);
    zsq_close(q);
}

/* Queuing a file again starts its attempts from zero, also after a restart. */
static void test_readd_resets_attempts_durably(void **state)
{
    struct env *e = *state;
    struct zsq *q = open_q(e);
    uint64_t id;
    struct zsq_item it;
    assert_int_equal(zsq_add(q, "/data/a", NULL, 0, 0, &id), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(zsq_take(q, 1000000, &it, NULL), 0);
        zsq_item_free(&it);
        assert_int_equal(zsq_failed(q, id, 0, "down"), 0);
    }
    assert_int_equal(zsq_add(q, "/data/a", NULL, 0, 5, NULL), 0);
    zsq_close(q);
    q = open_q(e);
    struct zsq_item *items;
    size_t n;
    assert_int_equal(zsq_list(q, &items, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(items[0].attempts, 0);
    assert_int_equal(items[0].next_ms, 5);
    zsq_items_free(items, n);
    zsq_close(q);
}

/* A write that fails half way is cut back; when the cut fails too, the live state is
 * rewritten; when that fails, the queue refuses further appends until reopened. Never
 * is a failed add in the file, nor a record after a partial one. */
static void test_failed_append_leaves_no_trace(void **state)
{
    struct env *e = *state;
    struct zsq *q = open_q(e);
    assert_int_equal(zsq_add(q, "/data/a", NULL, 0, 0, NULL), 0);
    off_t one = file_size(e->path);
    g_half_then_fail = 1;
    assert_int_equal(zsq_add(q, "/data/b", NULL, 0, 0, NULL), QS_EFULL);
    assert_non_null(strstr(qs_err_msg(), "No space left"));
    faults_off();
    assert_int_equal(file_size(e->path), one); /* cut back */
    assert_int_equal(zsq_len(q), 1);

    g_half_then_fail = 1; /* cut back fails: the state is rewritten to a new file */
    g_fail_truncate = 1;
    assert_int_equal(zsq_add(q, "/data/b", NULL, 0, 0, NULL), QS_EFULL);
    faults_off();
    assert_int_equal(zsq_len(q), 1); /* (the new file holds a next-id record and a) */
    assert_int_equal(zsq_add(q, "/data/c", NULL, 0, 0, NULL), 0);

    g_half_then_fail = 1; /* and the rewrite fails too: no append until reopened */
    g_fail_truncate = 1;
    g_fail_new = 1;
    assert_int_equal(zsq_add(q, "/data/d", NULL, 0, 0, NULL), QS_EFULL);
    faults_off();
    assert_int_equal(zsq_add(q, "/data/e", NULL, 0, 0, NULL), QS_EIO);
    assert_non_null(strstr(qs_err_msg(), "reopen the queue"));
    zsq_close(q);
    q = open_q(e); /* the partial record is the torn tail */
    struct zsq_item *items;
    size_t n;
    assert_int_equal(zsq_list(q, &items, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(items[0].path, "/data/a");
    assert_string_equal(items[1].path, "/data/c");
    zsq_items_free(items, n);
    assert_int_equal(zsq_add(q, "/data/e", NULL, 0, 0, NULL), 0);
    assert_int_equal(zsq_len(q), 3);
    zsq_close(q);
}

/* A compaction that fails after a durable DONE does not fail zsq_done; it runs later. */
static void test_compaction_failure_not_reported(void **state)
{
    struct env *e = *state;
    struct zsq *q = open_q(e);
    struct zsq_item it;
    g_fail_new = 1;
    for (int i = 0; i < 3000; i++) {
        uint64_t id;
        assert_int_equal(zsq_add(q, "/data/f", NULL, 0, 1, &id), 0);
        assert_int_equal(zsq_take(q, 1, &it, NULL), 0);
        zsq_item_free(&it);
        assert_int_equal(zsq_done(q, id), 0);
    }
    off_t big = file_size(e->path);
    assert_true(big > 64 * 1024); /* never compacted */
    faults_off();
    uint64_t id;
    assert_int_equal(zsq_add(q, "/data/f", NULL, 0, 1, &id), 0);
    assert_int_equal(zsq_take(q, 1, &it, NULL), 0);
    zsq_item_free(&it);
    assert_int_equal(zsq_done(q, id), 0);
    assert_true(file_size(e->path) < 1024);
    zsq_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_take_done_persist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_backoff_does_not_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readd_coalesces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_bounds_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_length_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readd_resets_attempts_durably, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_append_leaves_no_trace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_failure_not_reported, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
