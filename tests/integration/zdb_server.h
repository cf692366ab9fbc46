/* Test helper (header only): start the real zdb binary (QSFS_ZDB_BIN) on 127.0.0.1 with a
 * free port (or a unix socket) and a temporary directory, stop it by PID. Include after
 * cmocka.h. Servers a failing test leaves running are stopped by zdb_servers_stop_all()
 * (call it from the group teardown). */
#ifndef QSFS_TESTS_ZDB_SERVER_H
#define QSFS_TESTS_ZDB_SERVER_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef QSFS_ZDB_BIN
#error "QSFS_ZDB_BIN must name the zdb binary"
#endif

struct srv {
    pid_t pid;
    unsigned port;
    char dir[64];
    char sock[100];    /* unix socket path, "" for TCP */
    const char *admin; /* --admin password, NULL for none */
};

#define MAX_SRV 8
static struct srv *g_started[MAX_SRV]; /* stopped by the group teardown if a test fails */

static inline unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t l = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static inline int try_connect(const struct srv *s)
{
    int fd;
    if (s->sock[0]) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", s->sock);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            close(fd);
            return 0;
        }
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)s->port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            close(fd);
            return 0;
        }
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

static inline void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts zdb on s->dir (created when empty) and s->port (picked when 0). */
static inline void srv_start(struct srv *s, bool unix_socket)
{
    if (!s->dir[0]) {
        snprintf(s->dir, sizeof(s->dir), "/tmp/qsfs-zdbc-XXXXXX");
        assert_non_null(mkdtemp(s->dir));
    }
    if (!s->port && !unix_socket)
        s->port = free_port();
    if (unix_socket)
        snprintf(s->sock, sizeof(s->sock), "%s/zdb.sock", s->dir);
    char data[300], index[300], port[16], log[300];
    snprintf(data, sizeof(data), "%s/data", s->dir);
    snprintf(index, sizeof(index), "%s/index", s->dir);
    snprintf(port, sizeof(port), "%u", s->port);
    snprintf(log, sizeof(log), "%s/zdb.log", s->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        const char *argv[16] = {"zdb", "--data", data, "--index", index};
        int argc = 5;
        if (unix_socket) {
            argv[argc++] = "--socket";
            argv[argc++] = s->sock;
        } else {
            argv[argc++] = "--listen";
            argv[argc++] = "127.0.0.1";
            argv[argc++] = "--port";
            argv[argc++] = port;
        }
        if (s->admin) {
            argv[argc++] = "--admin";
            argv[argc++] = s->admin;
        }
        execv(QSFS_ZDB_BIN, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < MAX_SRV; i++)
        if (!g_started[i]) {
            g_started[i] = s;
            break;
        }
    for (int waited = 0; waited < 15000; waited += 20) {
        if (try_connect(s) == 0)
            return;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            s->pid = 0;
            fail_msg("zdb exited during start-up (see %s)", log);
        }
        sleep_ms(20);
    }
    fail_msg("zdb did not accept connections within 15 s");
}

static inline void srv_stop(struct srv *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    int st;
    for (int waited = 0; waited < 15000; waited += 10) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return;
        }
        sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    s->pid = 0;
}

static inline int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static inline void srv_destroy(struct srv *s)
{
    srv_stop(s);
    for (int i = 0; i < MAX_SRV; i++)
        if (g_started[i] == s)
            g_started[i] = NULL;
    if (s->dir[0])
        nftw(s->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    memset(s, 0, sizeof(*s));
}

static inline void zdb_servers_stop_all(void)
{
    for (int i = 0; i < MAX_SRV; i++)
        if (g_started[i])
            srv_destroy(g_started[i]);
}

#endif
