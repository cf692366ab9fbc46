/* Unit tests of the daemon's socket server and client (lib/daemon/server.h, client.h):
 * a request reaches the handler with the caller's streams and working directory, its
 * status comes back, CANCEL reaches the handler, a second server on the socket is
 * refused, a missing daemon is QS_ENOTFOUND, a server that stops cancels its calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/client.h"
#include "daemon/server.h"

struct env {
    char dir[64], sock[96];
    struct zsd_server *srv;
    atomic_int calls;
};

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* "echo ARGS": writes its arguments and cwd to stdout, a line to stderr, exit 7;
 * "wait": until cancelled (at most 10 s), then exit 3 */
static int handler(void *ud, struct zsd_call *call)
{
    struct env *e = ud;
    atomic_fetch_add(&e->calls, 1);
    if (strcmp(call->req.argv[0], "wait") == 0) {
        for (int i = 0; i < 1000 && !atomic_load(&call->cancel); i++)
            pause_ms(10);
        return atomic_load(&call->cancel) ? 3 : 0;
    }
    char cwd[256];
    if (!getcwd(cwd, sizeof(cwd)))
        return 99;
    dprintf(call->out_fd, "%s %s cwd=%s\n", call->req.argv[0],
            call->req.argc > 1 ? call->req.argv[1] : "-", cwd);
    dprintf(call->err_fd, "to stderr\n");
    return 7;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/qsfs-srv-XXXXXX");
    if (!mkdtemp(e->dir))
        return -1;
    snprintf(e->sock, sizeof(e->sock), "%s/d.sock", e->dir);
    struct zsd_server_opts o = {.socket_path = e->sock, .handler = handler, .ud = e};
    if (zsd_server_start(&e->srv, &o) < 0)
        return -1;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    zsd_server_stop(e->srv);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        return -1;
    free(e);
    return 0;
}

/* Runs argv through the client; what the handler wrote to stdout and stderr. */
static int run(struct env *e, int argc, char **argv, atomic_int *cancel, char *out, size_t cap,
               char *err, size_t ecap, int *status)
{
    int po[2], pe[2];
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    int rc = zsd_client_run(e->sock, argc, argv, 0, po[1], pe[1], cancel, status);
    close(po[1]);
    close(pe[1]);
    ssize_t n = read(po[0], out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
    n = read(pe[0], err, ecap - 1);
    err[n > 0 ? n : 0] = '\0';
    close(po[0]);
    close(pe[0]);
    return rc;
}

static void test_request_and_status(void **state)
{
    struct env *e = *state;
    char *argv[] = {"echo", "hello", NULL};
    char out[512], err[256], want[512], cwd[256];
    int st = -1;
    assert_int_equal(chdir(e->dir), 0);
    assert_int_equal(run(e, 2, argv, NULL, out, sizeof(out), err, sizeof(err), &st), 0);
    assert_int_equal(st, 7);
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    snprintf(want, sizeof(want), "echo hello cwd=%s\n", cwd);
    assert_string_equal(out, want); /* the caller's working directory, on the daemon */
    assert_string_equal(err, "to stderr\n");
    assert_int_equal(chdir("/"), 0);
    assert_int_equal(run(e, 1, argv, NULL, out, sizeof(out), err, sizeof(err), &st), 0);
    assert_string_equal(out, "echo - cwd=/\n");
}

struct canceller {
    atomic_int *flag;
};

static void *cancel_later(void *arg)
{
    struct canceller *c = arg;
    pause_ms(200);
    atomic_store(c->flag, 1);
    return NULL;
}

static void test_cancel_reaches_the_handler(void **state)
{
    struct env *e = *state;
    char *argv[] = {"wait", NULL};
    char out[64], err[64];
    int st = -1;
    atomic_int flag = 0;
    struct canceller c = {&flag};
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, &c);
    assert_int_equal(run(e, 1, argv, &flag, out, sizeof(out), err, sizeof(err), &st), 0);
    pthread_join(t, NULL);
    assert_int_equal(st, 3);
}

static void test_second_server_is_refused(void **state)
{
    struct env *e = *state;
    struct zsd_server *two = NULL;
    struct zsd_server_opts o = {.socket_path = e->sock, .handler = handler, .ud = e};
    assert_int_equal(zsd_server_start(&two, &o), QS_EBUSY);
    assert_null(two);
    char want[64];
    snprintf(want, sizeof(want), "(pid %ld)", (long)getpid());
    assert_non_null(strstr(qs_err_msg(), want));
    /* the first one still serves */
    char *argv[] = {"echo", NULL};
    char out[512], err[64];
    int st = -1;
    assert_int_equal(run(e, 1, argv, NULL, out, sizeof(out), err, sizeof(err), &st), 0);
    assert_int_equal(st, 7);
}

static void test_no_daemon_is_not_found(void **state)
{
    struct env *e = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/none.sock", e->dir);
    char *argv[] = {"echo", NULL};
    int st;
    assert_int_equal(zsd_client_run(path, 1, argv, 0, 1, 2, NULL, &st), QS_ENOTFOUND);
    /* a stale socket file, nobody listening: the same */
    FILE *f = fopen(path, "w");
    fclose(f);
    assert_int_equal(zsd_client_run(path, 1, argv, 0, 1, 2, NULL, &st), QS_ENOTFOUND);
}

struct stopper {
    struct env *e;
};

static void *stop_later(void *arg)
{
    struct stopper *s = arg;
    pause_ms(200);
    zsd_server_stop(s->e->srv);
    s->e->srv = NULL;
    return NULL;
}

static void test_stop_cancels_running_calls(void **state)
{
    struct env *e = *state;
    struct stopper s = {e};
    pthread_t t;
    pthread_create(&t, NULL, stop_later, &s);
    char *argv[] = {"wait", NULL};
    char out[64], err[64];
    int st = -1;
    time_t t0 = time(NULL);
    assert_int_equal(run(e, 1, argv, NULL, out, sizeof(out), err, sizeof(err), &st), 0);
    pthread_join(t, NULL);
    assert_int_equal(st, 3);
    assert_true(time(NULL) - t0 < 8);
    assert_int_equal(access(e->sock, F_OK), -1); /* the socket is gone */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_and_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_reaches_the_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_server_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_daemon_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_cancels_running_calls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
