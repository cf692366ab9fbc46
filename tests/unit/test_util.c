/* Unit tests for lib/util: errors, bounded buffers, CRC-32C, number parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <dirent.h>

#include "util/buf.h"
#include "util/crc32c.h"
#include "util/sys.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/parse.h"

static void test_err_message(void **state)
{
    (void)state;
    int rc = qs_err_set(QS_ENOTFOUND, "key %s missing", "abc");
    assert_int_equal(rc, QS_ENOTFOUND);
    assert_string_equal(qs_err_msg(), "key abc missing");
    rc = qs_err_sys(QS_EIO, 2, "open %s", "/x");
    assert_int_equal(rc, QS_EIO);
    assert_string_equal(qs_err_msg(), "open /x: No such file or directory");
    assert_string_equal(qs_err_name(QS_ECORRUPT), "corrupt data");
    qs_err_clear();
    assert_string_equal(qs_err_msg(), "");
}

static void test_buf_limits(void **state)
{
    (void)state;
    struct qs_buf b;
    qs_buf_init(&b, 1000);
    assert_int_equal(qs_buf_append(&b, "hello", 5), 0);
    assert_int_equal(qs_buf_appendf(&b, " %d", 42), 0);
    assert_int_equal(b.len, 8);
    assert_memory_equal(qs_buf_ptr(&b), "hello 42", 8);
    qs_buf_consume(&b, 6);
    assert_memory_equal(qs_buf_ptr(&b), "42", 2);
    char big[995];
    memset(big, 'x', sizeof(big));
    /* 2 live + 995 fits under 1000 (the consumed front is reclaimed) */
    assert_int_equal(qs_buf_append(&b, big, sizeof(big)), 0);
    assert_int_equal(b.len, 997);
    assert_int_equal(qs_buf_append(&b, big, 4), QS_ENOMEM);
    assert_int_equal(b.len, 997);
    assert_int_equal(qs_buf_append(&b, big, 3), 0);
    qs_buf_consume(&b, 5000);
    assert_int_equal(b.len, 0);
    /* size_t overflow must not wrap */
    uint8_t *p;
    assert_int_equal(qs_buf_reserve(&b, SIZE_MAX, &p), QS_ENOMEM);
    assert_null(p);
    qs_buf_free(&b);
}

static void test_buf_appendf_long(void **state)
{
    (void)state;
    struct qs_buf b;
    qs_buf_init(&b, 1 << 20);
    char s[600];
    memset(s, 'a', sizeof(s) - 1);
    s[sizeof(s) - 1] = 0;
    assert_int_equal(qs_buf_appendf(&b, "<%s>", s), 0);
    assert_int_equal(b.len, 601);
    assert_int_equal(qs_buf_ptr(&b)[0], '<');
    assert_int_equal(qs_buf_ptr(&b)[600], '>');
    qs_buf_free(&b);
}

static void test_crc32c_vectors(void **state)
{
    (void)state;
    assert_int_equal(qs_crc32c_zdb("123456789", 9), 0x58e3fa20u);
    assert_int_equal(qs_crc32c_zdb("hello", 5), 0xdf03cd79u);
    assert_int_equal(~qs_crc32c_update(~0u, "123456789", 9), 0xe3069283u);
    assert_int_equal(qs_crc32c_zdb("", 0), 0);
    /* incremental == one shot, across every split and odd lengths */
    uint8_t data[77];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 3);
    uint32_t whole = qs_crc32c_zdb(data, sizeof(data));
    for (size_t cut = 0; cut <= sizeof(data); cut++) {
        uint32_t c = qs_crc32c_update(0, data, cut);
        c = qs_crc32c_update(c, data + cut, sizeof(data) - cut);
        assert_int_equal(c, whole);
    }
}

static void test_parse_numbers(void **state)
{
    (void)state;
    uint64_t u;
    int64_t i;
    assert_int_equal(qs_parse_u64("0", 1, &u), 0);
    assert_int_equal(u, 0);
    assert_int_equal(qs_parse_u64("18446744073709551615", 20, &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(qs_parse_u64("18446744073709551616", 20, &u), QS_EINVAL);
    assert_int_equal(qs_parse_u64("", 0, &u), QS_EINVAL);
    assert_int_equal(qs_parse_u64("12a", 3, &u), QS_EINVAL);
    assert_int_equal(qs_parse_u64("-1", 2, &u), QS_EINVAL);
    assert_int_equal(qs_parse_u64(" 1", 2, &u), QS_EINVAL);
    assert_int_equal(qs_parse_i64("-5", 2, &i), 0);
    assert_int_equal(i, -5);
    assert_int_equal(qs_parse_i64("-9223372036854775808", 20, &i), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(qs_parse_i64("9223372036854775808", 19, &i), QS_EINVAL);
    assert_int_equal(qs_parse_i64("-", 1, &i), QS_EINVAL);
    assert_int_equal(qs_parse_size("512K", &u), 0);
    assert_int_equal(u, 512 * 1024);
    assert_int_equal(qs_parse_size("2g", &u), 0);
    assert_true(u == 2ull << 30);
    assert_int_equal(qs_parse_size("100", &u), 0);
    assert_int_equal(u, 100);
    assert_int_equal(qs_parse_size("M", &u), QS_EINVAL);
    assert_int_equal(qs_parse_size("1T", &u), QS_EINVAL);
    assert_int_equal(qs_parse_size("99999999999999999999G", &u), QS_EINVAL);
}

static void test_le_helpers(void **state)
{
    (void)state;
    uint8_t b[8];
    qs_put64(b, 0x0102030405060708ull);
    assert_int_equal(b[0], 8);
    assert_int_equal(b[7], 1);
    assert_true(qs_le64(b) == 0x0102030405060708ull);
    qs_put32(b, 0xdeadbeef);
    assert_int_equal(qs_le32(b), 0xdeadbeef);
    qs_put16(b, 0xbeef);
    assert_int_equal(qs_le16(b), 0xbeef);
    size_t s;
    assert_int_equal(qs_add_size(SIZE_MAX, 1, &s), -1);
    assert_int_equal(qs_mul_size(SIZE_MAX / 2, 3, &s), -1);
    char secret[4] = "abc";
    qs_wipe(secret, sizeof(secret));
    assert_int_equal(secret[0], 0);
}

static void test_sys_helpers(void **state)
{
    (void)state;
    char dir[] = "/tmp/qsfs-util-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/f", dir);
    assert_int_equal(qs_replace_file(path, "first", 5, 0600, 0), 0);
    assert_int_equal(qs_replace_file(path, "second!", 7, 0640, QS_REPLACE_NOSYNC), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 7);
    assert_int_equal(st.st_mode & 0777, 0640);
    char got[16] = {0};
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, got, sizeof(got)), 7);
    close(fd);
    assert_memory_equal(got, "second!", 7);
    /* no temporary file left beside it */
    DIR *d = opendir(dir);
    int entries = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        entries += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(entries, 1);
    assert_int_equal(qs_fsync_dir(dir), 0);
    assert_int_equal(qs_fsync_parent(path), 0);
    assert_int_equal(qs_fsync_dir("/nonexistent-qsfs"), QS_EIO);
    assert_non_null(strstr(qs_err_msg(), "/nonexistent-qsfs"));
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/no/such/f", dir);
    assert_int_equal(qs_replace_file(missing, "x", 1, 0600, 0), QS_EIO);
    fd = open(path, O_WRONLY | O_APPEND);
    assert_int_equal(qs_write_all(fd, "abc", 3), 0);
    close(fd);
    assert_int_equal(qs_write_all(-1, "abc", 3), QS_EIO);
    uint8_t r1[32] = {0}, r2[32] = {0};
    assert_int_equal(qs_random_bytes(r1, sizeof(r1)), 0);
    assert_int_equal(qs_random_bytes(r2, sizeof(r2)), 0);
    assert_memory_not_equal(r1, r2, sizeof(r1));
    int64_t t0 = qs_now_ms(), t1 = qs_now_ms();
    assert_true(t1 >= t0 && t0 > 0);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_message),      cmocka_unit_test(test_buf_limits),
        cmocka_unit_test(test_buf_appendf_long), cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_parse_numbers),    cmocka_unit_test(test_le_helpers),
        cmocka_unit_test(test_sys_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
