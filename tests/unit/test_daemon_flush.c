/* Unit tests of the mount flush before an asked checkpoint (lib/daemon/flush.h). The flush
 * of a real zdbfs mount is tried by tests/integration/test_qsfs.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon/flush.h"

/* No mount point, or one that is not a FUSE mount (qsfs down unmounts before its last
 * checkpoint): nothing to flush, and nothing fails. */
static void test_not_a_mount(void **state)
{
    (void)state;
    struct zsd_flush *last = NULL;
    assert_int_equal(zsd_flush_mount(&last, NULL, 1000, NULL), 1);
    assert_int_equal(zsd_flush_mount(&last, "", 1000, NULL), 1);
    assert_null(last);
    char dir[] = "/tmp/qsfs-flush-XXXXXX";
    assert_non_null(mkdtemp(dir));
    /* twice over the same record: the first flush is done, so the second one starts */
    assert_int_equal(zsd_flush_mount(&last, dir, 5000, NULL), 1);
    assert_non_null(last);
    assert_int_equal(zsd_flush_mount(&last, dir, 5000, NULL), 1);
    assert_int_equal(rmdir(dir), 0);
    assert_int_equal(zsd_flush_mount(&last, dir, 5000, NULL), 1); /* gone: not mounted */
    zsd_flush_drop(&last);
    assert_null(last);
    zsd_flush_drop(&last); /* twice is harmless */
}

/* A stop already asked for ends the wait at once, whatever the flush does. */
static void test_stop_ends_the_wait(void **state)
{
    (void)state;
    struct zsd_flush *last = NULL;
    atomic_int stop = 1;
    int rc = zsd_flush_mount(&last, "/tmp", 60000, &stop);
    /* the thread may have finished first (1: /tmp is no FUSE mount) or not (a timeout) */
    assert_true(rc == 1 || rc == QS_ETIMEOUT);
    zsd_flush_drop(&last);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_a_mount),
        cmocka_unit_test(test_stop_ends_the_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
