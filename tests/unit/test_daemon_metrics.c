/* Unit tests of the daemon's Prometheus rendering (lib/daemon/metrics.h): every line is
 * checked against the text format's grammar, and the values against the snapshot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/metrics.h"

static char *render(const struct zsm_state *s)
{
    struct qs_buf b;
    qs_buf_init(&b, 1 << 20);
    assert_int_equal(zsm_render(&b, s), 0);
    assert_int_equal(qs_buf_append(&b, "", 1), 0);
    char *t = strdup((const char *)qs_buf_ptr(&b));
    qs_buf_free(&b);
    return t;
}

/* Every line is a comment (# HELP / # TYPE) or `name{labels} value`. */
static void check_grammar(const char *text)
{
    regex_t sample, comment;
    assert_int_equal(regcomp(&sample,
                             "^[a-zA-Z_:][a-zA-Z0-9_:]*(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|"
                             "\\\\[\\\\\"n])*\",?)*\\})? "
                             "(-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|\\+Inf)$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    assert_int_equal(regcomp(&comment,
                             "^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* "
                             "(gauge|counter|histogram))$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    char *copy = strdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int ok = regexec(line[0] == '#' ? &comment : &sample, line, 0, NULL, 0) == 0;
        if (!ok)
            fail_msg("bad exposition line: %s", line);
    }
    free(copy);
    regfree(&sample);
    regfree(&comment);
}

static void test_backends_and_commands(void **state)
{
    struct zsm_backend bk[3] = {
        {.address = "127.0.0.1:9900",
         .ns = "meta0",
         .meta = true,
         .reachable = true,
         .entries = 7,
         .data_size = 700,
         .data_limit = 0,
         .index_size = 100,
         .index_disk_free = 5000,
         .data_disk_free = 6000,
         .data_faults = 2},
        {.address = "[::1]:9901", .ns = "", .reachable = false},
        {.address = "unix:///run/\"odd\"\\zdb.sock",
         .ns = "d\n1",
         .reachable = true,
         .entries = 1,
         .data_size = 10,
         .data_limit = 1000,
         .index_size = 1,
         .index_disk_free = ZSM_UNKNOWN,
         .data_disk_free = ZSM_UNKNOWN},
    };
    struct zsm_state s = {.backends = bk, .nbackends = 3};
    s.ok[ZSM_STORE] = 5;
    s.failed[ZSM_STORE] = 1;
    s.ok[ZSM_CHECK] = 2;
    zsm_latency_add(&s.latency[ZSM_STORE], 0.003);
    zsm_latency_add(&s.latency[ZSM_STORE], 0.2);
    zsm_latency_add(&s.latency[ZSM_STORE], 9999);
    s.queue_length = 3;
    char *t = render(&s);
    check_grammar(t);
    assert_non_null(strstr(t, "connection_status{address=\"127.0.0.1:9900\",namespace=\"meta0\","
                              "backend_type=\"meta\"} 1\n"));
    assert_non_null(strstr(
        t, "connection_status{address=\"[::1]:9901\",namespace=\"\",backend_type=\"data\"} 0\n"));
    /* an unreachable backend has no other series */
    assert_null(strstr(t, "entries{address=\"[::1]:9901\""));
    assert_non_null(strstr(
        t, "entries{address=\"127.0.0.1:9900\",namespace=\"meta0\",backend_type=\"meta\"} 7\n"));
    /* no limit: the disk's free space, as 0-stor_v2 reports it */
    assert_non_null(strstr(t, "data_limit_bytes{address=\"127.0.0.1:9900\",namespace=\"meta0\","
                              "backend_type=\"meta\"} 6000\n"));
    assert_non_null(strstr(
        t,
        "data_faults{address=\"127.0.0.1:9900\",namespace=\"meta0\",backend_type=\"meta\"} 2\n"));
    /* escaped label values; unknown values are left out */
    assert_non_null(
        strstr(t, "entries{address=\"unix:///run/"
                  "\\\"odd\\\"\\\\zdb.sock\",namespace=\"d\\n1\",backend_type=\"data\"} 1\n"));
    assert_null(strstr(t, "data_disk_freespace_bytes{address=\"unix"));
    assert_non_null(strstr(t, "zstore_store_commands_finished{success=\"true\"} 5\n"));
    assert_non_null(strstr(t, "zstore_store_commands_finished{success=\"false\"} 1\n"));
    assert_non_null(strstr(t, "zstore_check_commands_finished{success=\"true\"} 2\n"));
    assert_non_null(strstr(t, "zstore_rebuild_commands_finished{success=\"false\"} 0\n"));
    /* cumulative buckets */
    assert_non_null(
        strstr(t, "zstor_command_duration_seconds_bucket{command=\"store\",le=\"0.005\"} 1\n"));
    assert_non_null(
        strstr(t, "zstor_command_duration_seconds_bucket{command=\"store\",le=\"0.25\"} 2\n"));
    assert_non_null(
        strstr(t, "zstor_command_duration_seconds_bucket{command=\"store\",le=\"600\"} 2\n"));
    assert_non_null(
        strstr(t, "zstor_command_duration_seconds_bucket{command=\"store\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(t, "zstor_command_duration_seconds_count{command=\"store\"} 3\n"));
    assert_non_null(strstr(t, "zstor_queue_length 3\n"));
    /* no data dir, no filesystem: no such series */
    assert_null(strstr(t, "data_dir_size_bytes"));
    assert_null(strstr(t, "fs_fuse_reqs"));
    free(t);
}

static void test_data_dir_and_fs(void **state)
{
    struct zsm_state s = {0};
    s.data_dir = true;
    s.data_dir_size = 123;
    s.data_dir_limit = 1 << 20;
    s.data_dir_evicted = 4;
    s.fs.present = true;
    s.fs.fuse_reqs = 99;
    s.fs.syscalls[14] = 8;
    char *t = render(&s);
    check_grammar(t);
    assert_non_null(strstr(t, "data_dir_size_bytes 123\n"));
    assert_non_null(strstr(t, "data_dir_size_limit_bytes 1048576\n"));
    assert_non_null(strstr(t, "data_dir_files_evicted 4\n"));
    assert_non_null(strstr(t, "fs_fuse_reqs 99\n"));
    assert_non_null(strstr(t, "fs_syscalls{syscall=\"ioctl\"} 8\n"));
    assert_non_null(strstr(t, "fs_syscalls{syscall=\"getattr\"} 0\n"));
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backends_and_commands),
        cmocka_unit_test(test_data_dir_and_fs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
