/* Forwarding a command to the daemon (client.h). */
#include "daemon/client.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/proto.h"
#include "util/buf.h"
#include "util/sys.h"

#define HELLO_TIMEOUT_MS 10000

static int connect_to(const char *path, int *fd)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        return qs_err_set(QS_EINVAL, "socket path %s is too long", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    *fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*fd < 0)
        return qs_err_set(QS_EIO, "socket: %s", strerror(errno));
    /* a full backlog (EAGAIN) is a busy daemon: wait a little for room */
    for (int tries = 0;; tries++) {
        if (connect(*fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return 0;
        int e = errno;
        if (e == EINTR || (e == EAGAIN && tries < 100)) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        close(*fd);
        *fd = -1;
        if (e == ENOENT || e == ECONNREFUSED)
            return qs_err_set(QS_ENOTFOUND, "no zstor daemon listens on %s", path);
        return qs_err_set(QS_EIO, "connect to the daemon at %s: %s", path, strerror(e));
    }
}

/* Sends b whole, the descriptors with its first byte (nfds 0: none). */
static int send_all(int fd, const uint8_t *p, size_t n, const int *fds, int nfds)
{
    char cbuf[CMSG_SPACE(sizeof(int) * 2)];
    while (n) {
        struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (nfds) {
            memset(cbuf, 0, sizeof(cbuf));
            mh.msg_control = cbuf;
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
            struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
            memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
        }
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return qs_err_set(QS_EIO, "sending to the daemon: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
        nfds = 0;
    }
    return 0;
}

static int write_fd(int fd, const uint8_t *p, size_t n)
{
    return qs_write_all(fd, p, n);
}

int zsd_client_run(const char *socket_path, int argc, char *const *argv, unsigned flags, int out_fd,
                   int err_fd, const atomic_int *cancel, int *status)
{
    *status = 1;
    int fd = -1;
    int rc = connect_to(socket_path, &fd);
    if (rc < 0)
        return rc;
    struct qs_buf out, in;
    qs_buf_init(&out, ZSD_HELLO_LEN + ZSD_FRAME_HDR + ZSD_REQ_MAX);
    qs_buf_init(&in, ZSD_HELLO_LEN + ZSD_FRAME_HDR + ZSD_FRAME_MAX);
    char cwd[ZSD_ARG_MAX + 1];
    if (!getcwd(cwd, sizeof(cwd))) {
        rc = qs_err_set(QS_EIO, "the working directory: %s", strerror(errno));
        goto out;
    }
    if ((rc = qs_buf_append(&out, ZSD_HELLO, ZSD_HELLO_LEN)) < 0 ||
        (rc = zsd_req_append(&out, argc, argv, cwd, flags)) < 0)
        goto out;
    int fds[2] = {out_fd, err_fd};
    if ((rc = send_all(fd, qs_buf_ptr(&out), out.len, fds, 2)) < 0)
        goto out;
    bool hello = false, cancel_sent = false;
    int64_t hello_deadline = qs_now_ms() + HELLO_TIMEOUT_MS;
    for (;;) {
        if (cancel && atomic_load(cancel) && !cancel_sent) {
            uint8_t fr[ZSD_FRAME_HDR] = {ZSD_CANCEL, 0, 0, 0, 0};
            if (send_all(fd, fr, sizeof(fr), NULL, 0) < 0) {
                /* a gone daemon shows below */
            }
            cancel_sent = true;
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int pr = poll(&pf, 1, 100);
        if (pr < 0 && errno != EINTR) {
            rc = qs_err_set(QS_EIO, "waiting for the daemon: %s", strerror(errno));
            goto out;
        }
        if (!hello && qs_now_ms() > hello_deadline) {
            rc = qs_err_set(QS_ETIMEOUT, "the daemon at %s does not answer (10 s)", socket_path);
            goto out;
        }
        if (pr <= 0)
            continue;
        uint8_t *dst;
        size_t room = in.max - in.len;
        if ((rc = qs_buf_reserve(&in, room, &dst)) < 0)
            goto out;
        ssize_t r = recv(fd, dst, room, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = qs_err_set(QS_EPROTO,
                            "the daemon at %s closed the connection before the command "
                            "ended (did it stop? its log says why)",
                            socket_path);
            goto out;
        }
        qs_buf_commit(&in, (size_t)r);
        for (;;) {
            const uint8_t *p = qs_buf_ptr(&in);
            if (!hello) {
                if (in.len < ZSD_HELLO_LEN)
                    break;
                if ((rc = zsd_hello_check(p)) < 0)
                    goto out;
                hello = true;
                qs_buf_consume(&in, ZSD_HELLO_LEN);
                continue;
            }
            enum zsd_type type;
            const uint8_t *pl;
            size_t len, used;
            rc = zsd_frame_next(p, in.len, &type, &pl, &len, &used);
            if (rc == QS_EAGAIN)
                break;
            if (rc < 0)
                goto out;
            if (type == ZSD_EXIT && len == 1) {
                *status = pl[0];
                rc = 0;
                goto out;
            }
            if (type == ZSD_OUT || type == ZSD_ERR) {
                if (write_fd(type == ZSD_OUT ? out_fd : err_fd, pl, len) < 0) {
                    /* the caller's stream is gone: the status still matters */
                }
            } else {
                rc = qs_err_set(QS_EPROTO, "the daemon sent an unexpected frame (type %u)",
                                (unsigned)type);
                goto out;
            }
            qs_buf_consume(&in, used);
        }
    }
out:
    qs_buf_free(&out);
    qs_buf_free(&in);
    if (fd >= 0)
        close(fd);
    return rc;
}
