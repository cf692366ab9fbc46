/* The zstor daemon's socket server (server.h). One loop thread accepts connections,
 * reads their requests and watches running calls for CANCEL or a hang-up; each call runs
 * on a thread of its own. */
#include "daemon/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/sys.h"

enum conn_state { C_READING, C_WAITING, C_RUNNING, C_FINISHED };

struct conn {
    int fd;
    enum conn_state state;
    int64_t deadline; /* C_READING: ms (monotonic) */
    struct qs_buf in;
    int fds[2]; /* received stdout, stderr (-1 = none) */
    int nfds;
    bool hello_ok;
    bool eof;     /* the client hung up (no more polling) */
    uint64_t seq; /* order of arrival of the request (C_WAITING) */
    struct zsd_call call;
    pthread_t thread;
    atomic_int finished; /* set by the call's thread when it is done */
    struct zsd_server *srv;
};

struct zsd_server {
    struct zsd_server_opts o;
    char *socket_path, *pid_file;
    int lock_fd, listen_fd, wake_fd;
    pthread_t loop;
    atomic_int stopping;
    struct conn **conns;
    size_t nconns;
    uint64_t next_id, next_seq;
    pthread_mutex_t mu; /* stats */
    struct zsd_server_stats st;
    int64_t accept_pause_until;
};

static void wake(struct zsd_server *s)
{
    uint64_t one = 1;
    ssize_t r = write(s->wake_fd, &one, sizeof(one));
    (void)r;
}

/* ---- the instance: lock, socket, pid file ---- */

#define DYING_WAIT_MS 10000 /* a holder that was killed may take this long to let go */

/* The process pid (text) is dying: killed, its main thread gone (a zombie) while the
 * others still exit and hold its files, the lock included. */
static bool holder_dying(const char *pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return true; /* gone already: the lock is about to be free */
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && (p[2] == 'Z' || p[2] == 'X');
}

static int take_lock(struct zsd_server *s)
{
    size_t n = strlen(s->socket_path) + sizeof(".lock");
    char *path = malloc(n);
    if (!path)
        return qs_err_set(QS_ENOMEM, "out of memory");
    snprintf(path, n, "%s.lock", s->socket_path);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        int rc = qs_err_set(QS_EIO, "daemon lock %s: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    int64_t waited = 0;
    while (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t r = pread(s->lock_fd, pid, sizeof(pid) - 1, 0);
        if (r > 0) {
            pid[r] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
        }
        if (e == EWOULDBLOCK && pid[0] && strspn(pid, "0123456789") == strlen(pid) &&
            waited < DYING_WAIT_MS && holder_dying(pid)) {
            struct timespec ts = {0, 50 * 1000 * 1000}; /* a daemon killed a moment ago */
            nanosleep(&ts, NULL);
            waited += 50;
            continue;
        }
        int rc;
        if (e != EWOULDBLOCK)
            rc = qs_err_set(QS_EIO, "daemon lock %s: %s", path, strerror(e));
        else if (pid[0])
            rc = qs_err_set(QS_EBUSY, "another zstor daemon (pid %s) serves %s (it holds %s)", pid,
                            s->socket_path, path);
        else
            rc = qs_err_set(QS_EBUSY, "another zstor daemon serves %s (it holds %s)",
                            s->socket_path, path);
        free(path);
        return rc;
    }
    free(path);
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(s->lock_fd, 0) < 0 || pwrite(s->lock_fd, pid, (size_t)len, 0) != len)
        qs_log(QS_LOG_WARN, "daemon lock: writing the pid: %s", strerror(errno));
    return 0;
}

static int open_socket(struct zsd_server *s)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(s->socket_path) >= sizeof(sa.sun_path))
        return qs_err_set(QS_EINVAL, "socket path %s is too long", s->socket_path);
    memcpy(sa.sun_path, s->socket_path, strlen(s->socket_path) + 1);
    /* we hold the lock: a socket file there is a killed daemon's */
    if (unlink(s->socket_path) == 0)
        qs_log(QS_LOG_INFO, "removed the stale socket %s", s->socket_path);
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->listen_fd < 0)
        return qs_err_set(QS_EIO, "socket: %s", strerror(errno));
    if (bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return qs_err_set(QS_EIO, "bind %s: %s", s->socket_path, strerror(errno));
    if (chmod(s->socket_path, 0600) < 0 || listen(s->listen_fd, 512) < 0)
        return qs_err_set(QS_EIO, "listen on %s: %s", s->socket_path, strerror(errno));
    return 0;
}

static int write_pid_file(struct zsd_server *s)
{
    if (!s->pid_file)
        return 0;
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (qs_replace_file(s->pid_file, pid, (size_t)len, 0644, 0) < 0)
        return qs_err_set(QS_EIO, "pid file: %s", qs_err_msg());
    return 0;
}

/* ---- connections ---- */

static void conn_free(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    for (int i = 0; i < c->nfds; i++)
        if (c->fds[i] >= 0)
            close(c->fds[i]);
    qs_buf_free(&c->in);
    zsd_req_free(&c->call.req);
    free(c);
}

/* Best effort: the peer may be gone. */
static void send_frame(int fd, enum zsd_type type, const void *p, size_t len)
{
    struct qs_buf b;
    qs_buf_init(&b, ZSD_FRAME_HDR + len);
    if (zsd_frame_append(&b, type, p, len) == 0) {
        const uint8_t *q = qs_buf_ptr(&b);
        size_t n = b.len;
        for (int tries = 0; n && tries < 50; tries++) {
            ssize_t w = send(fd, q, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                q += w;
                n -= (size_t)w;
            } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                struct pollfd pf = {.fd = fd, .events = POLLOUT};
                (void)poll(&pf, 1, 20);
            } else {
                break;
            }
        }
    }
    qs_buf_free(&b);
}

/* Refuses c with a one-line reason for the client's stderr, then exit status 1. */
static void refuse(struct conn *c, const char *why)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "zstor: the daemon refused the request: %s\n", why);
    send_frame(c->fd, ZSD_ERR, line, n < 0 ? 0 : (size_t)n);
    uint8_t st = 1;
    send_frame(c->fd, ZSD_EXIT, &st, 1);
}

static void *call_main(void *arg)
{
    struct conn *c = arg;
    struct zsd_server *s = c->srv;
    uint8_t st = 1;
    /* the client's working directory, for this thread (and the threads it starts) only */
    if (unshare(CLONE_FS) < 0 || chdir(c->call.req.cwd) < 0) {
        char line[600];
        int n = snprintf(line, sizeof(line), "zstor: the daemon cannot enter %.400s: %s\n",
                         c->call.req.cwd, strerror(errno));
        if (write(c->call.err_fd, line, (size_t)n) < 0) {
            /* the client's stderr is gone; nothing else to tell */
        }
    } else {
        int r = s->o.handler(s->o.ud, &c->call);
        st = (uint8_t)(r < 0 ? 1 : r > 255 ? 255 : r);
    }
    /* output first, then the status: the client exits on EXIT */
    close(c->call.out_fd);
    close(c->call.err_fd);
    c->call.out_fd = c->call.err_fd = -1;
    c->fds[0] = c->fds[1] = -1;
    send_frame(c->fd, ZSD_EXIT, &st, 1);
    atomic_store(&c->finished, 1);
    wake(s);
    return NULL;
}

static void start_call(struct zsd_server *s, struct conn *c)
{
    c->state = C_RUNNING;
    pthread_mutex_lock(&s->mu);
    s->st.calls++;
    pthread_mutex_unlock(&s->mu);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 1 << 20);
    int e = pthread_create(&c->thread, &at, call_main, c);
    pthread_attr_destroy(&at);
    if (e != 0) {
        refuse(c, "cannot start a thread for it");
        c->state = C_FINISHED;
        atomic_store(&c->finished, 1);
        c->thread = 0;
    }
}

static unsigned count_running(const struct zsd_server *s)
{
    unsigned n = 0;
    for (size_t i = 0; i < s->nconns; i++)
        n += s->conns[i]->state == C_RUNNING;
    return n;
}

/* Starts the oldest waiting calls while there is room. */
static void start_waiting(struct zsd_server *s)
{
    while (count_running(s) < s->o.max_running) {
        struct conn *best = NULL;
        for (size_t i = 0; i < s->nconns; i++) {
            struct conn *c = s->conns[i];
            if (c->state == C_WAITING && (!best || c->seq < best->seq))
                best = c;
        }
        if (!best)
            return;
        start_call(s, best);
    }
}

/* The request of c is whole in c->in: decode it. false: c was refused (drop it). */
static bool take_request(struct zsd_server *s, struct conn *c, const uint8_t *p, size_t len)
{
    if (zsd_req_decode(p, len, &c->call.req) < 0 || c->call.req.argc < 1) {
        qs_log(QS_LOG_WARN, "daemon socket: a bad request (%s)",
               c->call.req.argc < 1 && qs_err_msg()[0] == '\0' ? "no command" : qs_err_msg());
        refuse(c, "malformed request");
        pthread_mutex_lock(&s->mu);
        s->st.bad_requests++;
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    if (c->nfds != 2) {
        refuse(c, "the request came without the client's stdout and stderr");
        pthread_mutex_lock(&s->mu);
        s->st.bad_requests++;
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    c->call.out_fd = c->fds[0];
    c->call.err_fd = c->fds[1];
    c->call.id = ++s->next_id;
    c->seq = ++s->next_seq;
    c->state = C_WAITING;
    qs_buf_free(&c->in);
    return true;
}

/* Reads what c sent. false: drop c. */
static bool conn_read(struct zsd_server *s, struct conn *c)
{
    for (int turn = 0; turn < 16; turn++) {
        if (c->state != C_READING) {
            /* a running or waiting call: only CANCEL (or the hang-up) may come */
            uint8_t tmp[64];
            ssize_t r = recv(c->fd, tmp, sizeof(tmp), MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                atomic_store(&c->call.cancel, 1);
                c->eof = true;
                return c->state == C_RUNNING; /* a waiting call is dropped */
            }
            if (r > 0) /* CANCEL (anything else after the request means the same) */
                atomic_store(&c->call.cancel, 1);
            return true;
        }
        uint8_t *dst;
        size_t room = c->in.max - c->in.len;
        if (room == 0 || qs_buf_reserve(&c->in, room, &dst) < 0) {
            refuse(c, "request too large");
            return false;
        }
        char cbuf[CMSG_SPACE(sizeof(int) * 4)];
        struct iovec iov = {.iov_base = dst, .iov_len = room};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        ssize_t r = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return true;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); r >= 0 && cm; cm = CMSG_NXTHDR(&mh, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                continue;
            size_t nf = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int *fds = (int *)(void *)CMSG_DATA(cm);
            for (size_t i = 0; i < nf; i++) {
                if (c->nfds < 2)
                    c->fds[c->nfds++] = fds[i];
                else
                    close(fds[i]); /* more than asked for */
            }
        }
        if (r <= 0)
            return false; /* hung up before its request */
        qs_buf_commit(&c->in, (size_t)r);
        const uint8_t *p = qs_buf_ptr(&c->in);
        size_t n = c->in.len;
        if (!c->hello_ok) {
            if (n < ZSD_HELLO_LEN)
                continue;
            if (zsd_hello_check(p) < 0) {
                qs_log(QS_LOG_DEBUG, "daemon socket: %s", qs_err_msg());
                return false; /* not our client: it cannot read a frame either */
            }
            c->hello_ok = true;
            qs_buf_consume(&c->in, ZSD_HELLO_LEN);
            p = qs_buf_ptr(&c->in);
            n = c->in.len;
        }
        enum zsd_type type;
        const uint8_t *payload;
        size_t len, used;
        if (n >= ZSD_FRAME_HDR && ((unsigned)p[0] != ZSD_REQ || qs_le32(p + 1) > ZSD_REQ_MAX)) {
            refuse(c, (unsigned)p[0] != ZSD_REQ ? "expected a request frame" : "request too large");
            pthread_mutex_lock(&s->mu);
            s->st.bad_requests++;
            pthread_mutex_unlock(&s->mu);
            return false;
        }
        int rc = zsd_frame_next(p, n, &type, &payload, &len, &used);
        if (rc == QS_EAGAIN)
            continue;
        if (rc < 0 || used != n) {
            refuse(c, rc < 0 ? qs_err_msg() : "bytes after the request");
            return false;
        }
        return take_request(s, c, payload, len);
    }
    return true;
}

static void conn_drop(struct zsd_server *s, size_t i)
{
    conn_free(s->conns[i]);
    s->conns[i] = s->conns[--s->nconns];
}

static void accept_some(struct zsd_server *s)
{
    for (int k = 0; k < 256; k++) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
                qs_log(QS_LOG_WARN, "daemon socket: accept: %s (resting 100 ms)", strerror(errno));
                s->accept_pause_until = qs_now_ms() + 100;
            }
            return;
        }
        pthread_mutex_lock(&s->mu);
        s->st.accepted++;
        pthread_mutex_unlock(&s->mu);
        struct conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->srv = s;
        c->fds[0] = c->fds[1] = -1;
        c->call.out_fd = c->call.err_fd = -1;
        qs_buf_init(&c->in, ZSD_HELLO_LEN + ZSD_FRAME_HDR + ZSD_REQ_MAX);
        c->deadline = qs_now_ms() + s->o.req_timeout_ms;
        /* the hello fits any socket buffer: one send */
        if (send(fd, ZSD_HELLO, ZSD_HELLO_LEN, MSG_NOSIGNAL | MSG_DONTWAIT) != ZSD_HELLO_LEN) {
            conn_free(c);
            continue;
        }
        struct ucred cr;
        socklen_t crl = sizeof(cr);
        const char *why = NULL;
        char whybuf[160];
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0) {
            why = "cannot tell who the client is";
        } else if (cr.uid != 0 && cr.uid != geteuid()) {
            snprintf(whybuf, sizeof(whybuf), "user %u may not use this daemon (it runs as %u)",
                     (unsigned)cr.uid, (unsigned)geteuid());
            why = whybuf;
        } else if (s->nconns >= s->o.max_conns || atomic_load(&s->stopping)) {
            why = atomic_load(&s->stopping) ? "the daemon is stopping"
                                            : "too many connections, try again";
        }
        if (why) {
            refuse(c, why);
            pthread_mutex_lock(&s->mu);
            s->st.refused++;
            pthread_mutex_unlock(&s->mu);
            conn_free(c);
            continue;
        }
        c->call.uid = cr.uid;
        c->call.pid = cr.pid;
        s->conns[s->nconns++] = c;
    }
}

/* ---- the loop ---- */

static void *loop_main(void *arg)
{
    struct zsd_server *s = arg;
    struct pollfd *pf = calloc(s->o.max_conns + 2, sizeof(*pf));
    struct conn **pc = calloc(s->o.max_conns + 2, sizeof(*pc));
    if (!pf || !pc) {
        qs_log(QS_LOG_ERROR, "daemon socket: out of memory; not serving");
        free(pf);
        free(pc);
        return NULL;
    }
    bool listening = true;
    for (;;) {
        bool stop = atomic_load(&s->stopping);
        if (stop && listening) {
            close(s->listen_fd);
            s->listen_fd = -1;
            unlink(s->socket_path);
            listening = false;
        }
        /* reap finished calls; drop what a stop ends */
        for (size_t i = 0; i < s->nconns;) {
            struct conn *c = s->conns[i];
            if (c->state == C_RUNNING && atomic_load(&c->finished)) {
                pthread_join(c->thread, NULL);
                conn_drop(s, i);
                continue;
            }
            if (c->state == C_FINISHED) {
                conn_drop(s, i);
                continue;
            }
            if (stop && c->state != C_RUNNING) {
                if (c->state == C_WAITING)
                    refuse(c, "the daemon is stopping");
                conn_drop(s, i);
                continue;
            }
            if (stop)
                atomic_store(&c->call.cancel, 1);
            i++;
        }
        if (!stop)
            start_waiting(s);
        unsigned nrun = 0, nwait = 0;
        for (size_t i = 0; i < s->nconns; i++) {
            nrun += s->conns[i]->state == C_RUNNING;
            nwait += s->conns[i]->state == C_WAITING;
        }
        pthread_mutex_lock(&s->mu);
        s->st.open = (unsigned)s->nconns;
        s->st.running = nrun;
        s->st.waiting = nwait;
        pthread_mutex_unlock(&s->mu);
        if (stop && s->nconns == 0)
            break;
        int64_t now = qs_now_ms();
        int timeout = 1000;
        size_t n = 0;
        pf[n] = (struct pollfd){.fd = s->wake_fd, .events = POLLIN};
        pc[n++] = NULL;
        if (listening && now >= s->accept_pause_until) {
            pf[n] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
            pc[n++] = NULL;
        } else if (listening) {
            timeout = (int)(s->accept_pause_until - now);
        }
        for (size_t i = 0; i < s->nconns; i++) {
            struct conn *c = s->conns[i];
            if (c->eof)
                continue;
            if (c->state == C_READING) {
                int64_t left = c->deadline - now;
                if (left < timeout)
                    timeout = left < 0 ? 0 : (int)left;
            }
            pf[n] = (struct pollfd){.fd = c->fd, .events = POLLIN};
            pc[n++] = c;
        }
        int r = poll(pf, n, timeout);
        if (r < 0 && errno != EINTR) {
            qs_log(QS_LOG_ERROR, "daemon socket: poll: %s", strerror(errno));
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (r > 0 && (pf[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t rr = read(s->wake_fd, &v, sizeof(v));
            (void)rr;
        }
        if (r > 0 && listening && n > 1 && pc[1] == NULL && pf[1].fd == s->listen_fd &&
            (pf[1].revents & POLLIN))
            accept_some(s);
        now = qs_now_ms();
        for (size_t k = 0; k < n; k++) {
            struct conn *c = pc[k];
            if (!c)
                continue;
            bool keep = true;
            if (r > 0 && (pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
                keep = conn_read(s, c);
            if (keep && c->state == C_READING && now >= c->deadline) {
                pthread_mutex_lock(&s->mu);
                s->st.timeouts++;
                pthread_mutex_unlock(&s->mu);
                refuse(c, "no request in time");
                keep = false;
            }
            if (!keep && c->state != C_RUNNING)
                c->state = C_FINISHED; /* dropped at the next turn */
        }
    }
    free(pf);
    free(pc);
    return NULL;
}

int zsd_server_start(struct zsd_server **out, const struct zsd_server_opts *o)
{
    *out = NULL;
    struct zsd_server *s = calloc(1, sizeof(*s));
    if (!s)
        return qs_err_set(QS_ENOMEM, "out of memory");
    s->o = *o;
    if (!s->o.max_conns)
        s->o.max_conns = 1024;
    if (!s->o.max_running)
        s->o.max_running = 32;
    if (!s->o.req_timeout_ms)
        s->o.req_timeout_ms = 10000;
    s->lock_fd = s->listen_fd = s->wake_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    int rc = 0;
    s->socket_path = strdup(o->socket_path);
    s->pid_file = o->pid_file ? strdup(o->pid_file) : NULL;
    s->conns = calloc(s->o.max_conns, sizeof(*s->conns));
    if (!s->socket_path || (o->pid_file && !s->pid_file) || !s->conns) {
        rc = qs_err_set(QS_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = take_lock(s)) < 0 || (rc = open_socket(s)) < 0 || (rc = write_pid_file(s)) < 0)
        goto fail;
    if ((s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        rc = qs_err_set(QS_EIO, "eventfd: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&s->loop, NULL, loop_main, s) != 0) {
        rc = qs_err_set(QS_EIO, "cannot start the socket thread");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        unlink(s->socket_path);
    }
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the lock */
    free(s->socket_path);
    free(s->pid_file);
    free(s->conns);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return rc;
}

void zsd_server_stop(struct zsd_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, 1);
    wake(s);
    pthread_join(s->loop, NULL);
    for (size_t i = 0; i < s->nconns; i++) /* only when the loop could not start */
        conn_free(s->conns[i]);
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        unlink(s->socket_path);
    }
    if (s->pid_file)
        unlink(s->pid_file);
    close(s->wake_fd);
    close(s->lock_fd);
    free(s->socket_path);
    free(s->pid_file);
    free(s->conns);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void zsd_server_stats(struct zsd_server *s, struct zsd_server_stats *st)
{
    pthread_mutex_lock(&s->mu);
    *st = s->st;
    pthread_mutex_unlock(&s->mu);
}
