/* util/guard: a fault while copying from a mapping becomes QS_EIO, not a crash. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/guard.h"

static void test_copy_ok_and_fault(void **state)
{
    (void)state;
    assert_int_equal(qs_guard_install(), 0);
    assert_true(qs_guard_active());

    char path[] = "/tmp/qsfs-guard-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    long page = sysconf(_SC_PAGESIZE);
    char *data = malloc((size_t)page * 2);
    memset(data, 'x', (size_t)page * 2);
    assert_int_equal(write(fd, data, (size_t)page * 2), page * 2);
    const char *m = mmap(NULL, (size_t)page * 2, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(m != MAP_FAILED);

    char out[16];
    assert_int_equal(qs_guard_copy(out, m + page + 10, sizeof(out)), 0);
    assert_memory_equal(out, data, sizeof(out));

    /* The file shrinks behind the mapping: the second page no longer exists. */
    assert_int_equal(ftruncate(fd, page), 0);
    assert_int_equal(qs_guard_copy(out, m + page + 10, sizeof(out)), QS_EIO);
    /* ... and the guard keeps working afterwards (SIGBUS not left blocked). */
    assert_int_equal(qs_guard_copy(out, m + page + 20, sizeof(out)), QS_EIO);
    assert_int_equal(qs_guard_copy(out, m + 5, sizeof(out)), 0);

    munmap((void *)m, (size_t)page * 2);
    close(fd);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_copy_ok_and_fault)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
