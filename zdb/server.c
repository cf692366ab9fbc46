#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"
#include "util/sys.h"
#include "zdb/commands.h"
#include "zdb/hooks.h"
#include "zdb/reply.h"

#define READ_CHUNK            (64 * 1024)
#define OUT_MAX               (64ull * 1024 * 1024) /* hard limit of one client's pending output */
#define OUT_PAUSE             (8ull * 1024 * 1024)  /* stop reading a client above this much */
#define IN_MAX                (RESP_MAX_REQUEST + READ_CHUNK)
#define READ_BUDGET           (1024 * 1024) /* bytes read from one client per loop turn */
#define WAIT_IN_MAX           (1024 * 1024) /* input kept from a client parked by WAIT */
#define INPUT_LIMIT_DEFAULT   (256ull * 1024 * 1024)
#define INPUT_TIMEOUT_DEFAULT 60u
#define LOOP_TICK             1000 /* ms: longest epoll wait (rotation, sync, hooks) */

/* epoll data: listeners are tagged with a small integer, clients with their pointer. */
#define TAG_LISTEN0 1
#define TAG_LISTEN1 2

static int listen_tcp(const char *addr, int port, int *fd_out, char *zdbid, size_t idcap)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    int gai = getaddrinfo(addr, ports, &hints, &res);
    if (gai != 0)
        return qs_err_set(QS_EINVAL, "cannot resolve listen address %s: %s", addr,
                          gai_strerror(gai));
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6) {
            int zero = 0;
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 511) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return qs_err_sys(QS_EIO, err, "cannot listen on %s port %d", addr, port);
    *fd_out = fd;
    snprintf(zdbid, idcap, "tcp://%s:%d", addr, port);
    return 0;
}

static int listen_unix(const char *path, int *fd_out, char *zdbid, size_t idcap)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return qs_err_set(QS_EINVAL, "unix socket path too long: %s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return qs_err_sys(QS_EIO, errno, "socket");
    unlink(path); /* a stale socket from a previous run */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 511) != 0) {
        int e = errno;
        close(fd);
        return qs_err_sys(QS_EIO, e, "cannot listen on unix socket %s", path);
    }
    *fd_out = fd;
    snprintf(zdbid, idcap, "unix://%s", path);
    return 0;
}

int zdb_server_init_local(struct zdb_server *srv, struct zdb_config *cfg)
{
    memset(srv, 0, sizeof(*srv));
    srv->cfg = cfg;
    srv->epfd = -1;
    srv->listen_fd[0] = srv->listen_fd[1] = -1;
    srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    srv->boot_time = time(NULL);
    srv->last_rotate_check = srv->boot_time;
    srv->last_rotate = srv->boot_time;
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
        rnd = (uint32_t)srv->boot_time ^ (uint32_t)getpid();
    snprintf(srv->instance_id, sizeof(srv->instance_id), "%u", rnd); /* 0-db: decimal u32 */

    return zdb_store_open(&srv->store, &cfg->store);
}

int zdb_server_init(struct zdb_server *srv, struct zdb_config *cfg)
{
    int rc = zdb_server_init_local(srv, cfg);
    if (rc < 0)
        return rc;
    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (srv->epfd < 0)
        return qs_err_sys(QS_EIO, errno, "epoll_create1");

    char id2[sizeof(srv->zdbid)];
    if (cfg->socket) {
        rc =
            listen_unix(cfg->socket, &srv->listen_fd[srv->nlisten], srv->zdbid, sizeof(srv->zdbid));
        if (rc < 0)
            return rc;
        srv->nlisten++;
    }
    if (!cfg->socket || cfg->dualnet) {
        rc = listen_tcp(cfg->listen, cfg->port, &srv->listen_fd[srv->nlisten],
                        cfg->socket ? id2 : srv->zdbid, sizeof(srv->zdbid));
        if (rc < 0)
            return rc;
        srv->nlisten++;
    }
    for (int i = 0; i < srv->nlisten; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(TAG_LISTEN0 + i)};
        if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->listen_fd[i], &ev) != 0)
            return qs_err_sys(QS_EIO, errno, "epoll_ctl");
    }
    return 0;
}

/* Takes c off the list of clients parked by WAIT. */
static void unpark(struct zdb_server *srv, struct zdb_client *c)
{
    if (!c->waiting)
        return;
    if (c->wait_prev)
        c->wait_prev->wait_next = c->wait_next;
    else
        srv->waiters = c->wait_next;
    if (c->wait_next)
        c->wait_next->wait_prev = c->wait_prev;
    c->wait_prev = c->wait_next = NULL;
    c->waiting = false;
}

/* Queues c to have its reply sent (and its pending requests run) after this turn. */
static void wake(struct zdb_server *srv, struct zdb_client *c)
{
    unpark(srv, c);
    if (c->woken)
        return;
    c->woken = true;
    c->woken_next = srv->woken;
    srv->woken = c;
}

static void client_free(struct zdb_server *srv, struct zdb_client *c)
{
    unpark(srv, c);
    if (c->woken) {
        for (struct zdb_client **p = &srv->woken; *p; p = &(*p)->woken_next) {
            if (*p == c) {
                *p = c->woken_next;
                break;
            }
        }
    }
    if (c->fd >= 0) {
        epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    if (c->ns)
        c->ns->clients--;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->in_bytes -= c->in_counted;
    qs_buf_free(&c->in);
    qs_buf_free(&c->out);
    free(c->taint);
    free(c);
}

void zdb_server_client_free(struct zdb_server *srv, struct zdb_client *c)
{
    client_free(srv, c);
}

struct zdb_client *zdb_server_client_new(struct zdb_server *srv, int fd)
{
    struct zdb_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = fd;
    c->id = ++srv->next_client_id;
    qs_buf_init(&c->in, IN_MAX);
    qs_buf_init(&c->out, OUT_MAX);
    resp_parser_init(&c->parser);
    c->admin = srv->cfg->admin == NULL;
    c->ns = zdb_store_find(srv->store, "default", 7);
    c->ns->clients++;
    /* --protect: the default namespace has the admin password, read-only without it */
    c->writable = c->ns->password[0] == '\0';
    c->next = srv->clients;
    if (srv->clients)
        srv->clients->prev = c;
    srv->clients = c;
    return c;
}

#define ACCEPT_WARN_MS  10000 /* at most one "out of descriptors" warning so often */
#define LISTEN_PAUSE_MS 200   /* listeners not polled so long when no descriptor is left */

static void listeners_poll(struct zdb_server *srv, bool on)
{
    for (int i = 0; i < srv->nlisten; i++) {
        struct epoll_event ev = {.events = on ? EPOLLIN : 0,
                                 .data.u64 = (uint64_t)(TAG_LISTEN0 + i)};
        epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->listen_fd[i], &ev);
    }
    srv->listen_paused = !on;
}

/* accept failed with EMFILE/ENFILE: refuse the waiting connection with the spare
 * descriptor, or stop polling the listeners for a moment. The log stays bounded. */
static void out_of_descriptors(struct zdb_server *srv, int lfd, int err)
{
    srv->accept_refused++;
    bool refused = false;
    if (srv->spare_fd >= 0) {
        close(srv->spare_fd);
        srv->spare_fd = -1;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            static const char msg[] = "-Cannot accept more connections: too many open files\r\n";
            ssize_t w = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            close(fd);
            refused = true;
        }
        srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (!refused || srv->spare_fd < 0) {
        listeners_poll(srv, false);
        srv->listen_resume_ms = qs_now_ms() + LISTEN_PAUSE_MS;
    }
    int64_t now = qs_now_ms();
    if (!srv->accept_warn_ms || now - srv->accept_warn_ms >= ACCEPT_WARN_MS) {
        int nclients = 0;
        for (const struct zdb_client *c = srv->clients; c; c = c->next)
            nclients++;
        qs_log(QS_LOG_WARN,
               "accept: %s: %llu connection(s) refused (%d clients connected; raise the "
               "open-file limit, ulimit -n)",
               strerror(err), (unsigned long long)srv->accept_refused, nclients);
        srv->accept_warn_ms = now;
        srv->accept_refused = 0;
    }
}

static void accept_clients(struct zdb_server *srv, int lfd)
{
    for (int n = 0; n < 256; n++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                out_of_descriptors(srv, lfd, errno);
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                     errno != ECONNABORTED) {
                int64_t now = qs_now_ms();
                if (!srv->accept_warn_ms || now - srv->accept_warn_ms >= ACCEPT_WARN_MS) {
                    qs_log(QS_LOG_WARN, "accept: %s", strerror(errno));
                    srv->accept_warn_ms = now;
                }
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails on unix: fine */
        struct zdb_client *c = zdb_server_client_new(srv, fd);
        if (!c) {
            close(fd);
            return;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            client_free(srv, c);
            continue;
        }
        srv->stats.clients_lifetime++;
    }
}

void zdb_server_ns_removed(struct zdb_server *srv, struct zdb_ns *ns)
{
    for (struct zdb_client *c = srv->clients; c; c = c->next) {
        if (c->ns == ns) {
            ns->clients--;
            c->ns = NULL;
            c->ns_gone = true;
        }
    }
}

int zdb_server_reload_ns(struct zdb_server *srv, struct zdb_ns *ns)
{
    return zdb_store_reload(srv->store, ns); /* in place: the clients' pointers stay valid */
}

void zdb_server_wait(struct zdb_server *srv, struct zdb_client *c, int cmd, uint64_t timeout_ms)
{
    if (c->waiting)
        unpark(srv, c);
    c->waiting = true;
    c->wait_cmd = cmd;
    c->wait_deadline = (uint64_t)qs_now_ms() + timeout_ms;
    c->wait_prev = NULL;
    c->wait_next = srv->waiters;
    if (srv->waiters)
        srv->waiters->wait_prev = c;
    srv->waiters = c;
}

void zdb_server_notify(struct zdb_server *srv, const struct zdb_client *by, int cmd,
                       const char *name)
{
    struct zdb_client *w = srv->waiters;
    while (w) {
        struct zdb_client *next = w->wait_next;
        if (w != by && w->ns && w->ns == by->ns && (w->wait_cmd == cmd || w->wait_cmd == 0)) {
            reply_status(w, name);
            wake(srv, w);
        }
        w = next;
    }
}

/* Answers -Timeout to the waiters whose deadline passed; returns the ms until the next
 * deadline (at most LOOP_TICK). */
static int expire_waiters(struct zdb_server *srv)
{
    uint64_t now = (uint64_t)qs_now_ms(), next = now + LOOP_TICK;
    struct zdb_client *w = srv->waiters;
    while (w) {
        struct zdb_client *nw = w->wait_next;
        if (w->wait_deadline <= now) {
            reply_error(w, "Timeout");
            wake(srv, w);
        } else if (w->wait_deadline < next) {
            next = w->wait_deadline;
        }
        w = nw;
    }
    return (int)(next - now);
}

static void update_events(struct zdb_server *srv, struct zdb_client *c)
{
    bool want_out = c->out.len > 0;
    bool want_pause =
        c->out.len > OUT_PAUSE || c->closing || (c->waiting && c->in.len >= WAIT_IN_MAX);
    if (want_out == c->epollout && want_pause == c->paused)
        return;
    struct epoll_event ev = {.events = (want_pause ? 0 : EPOLLIN) | (want_out ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->epollout = want_out;
    c->paused = want_pause;
}

/* Sends what is pending. Returns -1 when the client is gone. */
static int flush_out(struct zdb_server *srv, struct zdb_client *c)
{
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, qs_buf_ptr(&c->out), c->out.len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        srv->stats.net_tx += (uint64_t)n;
        qs_buf_consume(&c->out, (size_t)n);
    }
    if (c->out.len == 0) {
        qs_buf_shrink(&c->out, 1 << 20);
        if (c->closing)
            return -1;
    }
    update_events(srv, c);
    return 0;
}

/* Remembers that c's reply in out[start, end) depends on batch generation gen. */
static void taint(struct zdb_client *c, size_t start, size_t end, uint64_t gen)
{
    if (c->taint_lost)
        return;
    if (c->ntaint && c->taint[c->ntaint - 1].gen == gen && c->taint[c->ntaint - 1].end == start) {
        c->taint[c->ntaint - 1].end = end; /* a pipelined run of writes: one range */
        c->taint[c->ntaint - 1].replies++;
        return;
    }
    if (c->ntaint == c->captaint) {
        size_t cap = c->captaint ? 2 * c->captaint : 16;
        struct zdb_taint *p = realloc(c->taint, cap * sizeof(*p));
        if (!p) {
            c->taint_lost = true;
            return;
        }
        c->taint = p;
        c->captaint = cap;
    }
    c->taint[c->ntaint++] = (struct zdb_taint){start, end, gen, 1};
}

/* Keeps srv->in_bytes equal to the sum of the clients' input buffer sizes. */
static void count_input(struct zdb_server *srv, struct zdb_client *c)
{
    srv->in_bytes = srv->in_bytes - c->in_counted + c->in.cap;
    c->in_counted = c->in.cap;
}

/* Ends a client with an error line: its input is dropped, it closes once out is sent. */
static void refuse_input(struct zdb_server *srv, struct zdb_client *c, const char *msg)
{
    qs_buf_reset(&c->in);
    qs_buf_shrink(&c->in, 0);
    count_input(srv, c);
    reply_error(c, msg);
    c->closing = true;
}

/* Parses and runs every complete request in the input buffer. */
static void process_input(struct zdb_server *srv, struct zdb_client *c)
{
    while (c->in.len > 0 && !c->closing && !c->waiting && c->out.len <= OUT_PAUSE) {
        size_t consumed = 0, need = 0;
        int rc = resp_parse(&c->parser, qs_buf_ptr(&c->in), c->in.len, &srv->req, &consumed, &need);
        if (rc == RESP_NEED_MORE)
            break;
        if (rc == RESP_DONE) {
            size_t start = c->out.len;
            zdb_dispatch(srv, c, &srv->req);
            c->batch_cmds++;
            /* a reply that depends on this turn's writes to the namespace (a write, or a
             * read after one) is answered only if those writes become durable */
            if (c->ns && c->ns->batch_touched && c->out.len > start &&
                qs_buf_ptr(&c->out)[start] != '-') /* an error stays what it says */
                taint(c, start, c->out.len, c->ns->batch_gen);
        } else {
            const char *msg = resp_error_reply(rc);
            reply_check(c, resp_add_raw(&c->out, msg, strlen(msg)));
            if (resp_error_closes(rc))
                c->closing = true;
        }
        qs_buf_consume(&c->in, consumed);
    }
    if (c->in.len == 0)
        qs_buf_shrink(&c->in, 2 * READ_CHUNK);
    count_input(srv, c);
}

/* Returns -1 when the client must be dropped now. */
static int read_client(struct zdb_server *srv, struct zdb_client *c)
{
    size_t budget = READ_BUDGET;
    /* a client parked by WAIT is read (to see it leave) but only so much is kept */
    while (budget > 0 && !c->closing && !(c->waiting && c->in.len >= WAIT_IN_MAX)) {
        uint8_t *dst;
        size_t want = READ_CHUNK;
        /* A bound on what half-sent requests hold in all: the client that would pass it
         * with a large partial request is disconnected (small ones always go on). */
        uint64_t limit = srv->cfg->input_limit ? srv->cfg->input_limit : INPUT_LIMIT_DEFAULT;
        if (c->in.len >= READ_CHUNK && c->in.cap - c->in.len < want &&
            srv->in_bytes + want > limit) {
            qs_log(QS_LOG_WARN,
                   "client %llu: input buffers reached --input-limit (%llu bytes): "
                   "disconnected",
                   (unsigned long long)c->id, (unsigned long long)limit);
            refuse_input(srv, c,
                         "Server input memory limit reached (--input-limit): "
                         "connection closed");
            return 0;
        }
        if (qs_buf_reserve(&c->in, want, &dst) < 0) {
            /* A request larger than the parser allows never reaches here: the parser
             * rejects it first. Anything else is a broken client. */
            return -1;
        }
        ssize_t n = recv(c->fd, dst, want, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        if (n == 0)
            return -1;
        qs_buf_commit(&c->in, (size_t)n);
        count_input(srv, c);
        c->last_rx_ms = qs_now_ms();
        srv->stats.net_rx += (uint64_t)n;
        budget -= (size_t)n < budget ? (size_t)n : budget;
        process_input(srv, c);
        if ((size_t)n < want)
            break;
    }
    return 0;
}

/* Half-sent requests idle for longer than --input-timeout end their connection. */
static void expire_partial(struct zdb_server *srv)
{
    unsigned secs = srv->cfg->input_timeout ? srv->cfg->input_timeout : INPUT_TIMEOUT_DEFAULT;
    int64_t now = qs_now_ms();
    struct zdb_client *c = srv->clients;
    while (c) {
        struct zdb_client *next = c->next;
        if (c->in.len && !c->paused && !c->waiting && !c->closing &&
            now - c->last_rx_ms > (int64_t)secs * 1000) {
            char msg[96];
            snprintf(msg, sizeof(msg), "Request not completed within %u seconds: connection closed",
                     secs);
            refuse_input(srv, c, msg);
            if (flush_out(srv, c) < 0)
                client_free(srv, c);
        }
        c = next;
    }
}

static void periodic(struct zdb_server *srv)
{
    if (srv->listen_paused && qs_now_ms() >= srv->listen_resume_ms)
        listeners_poll(srv, true);
    if (srv->hooks)
        zdb_hooks_reap(srv->hooks); /* finished non-blocking hooks (no-op when none runs) */
    time_t now = time(NULL);
    if (now == srv->last_rotate_check)
        return;
    srv->last_rotate_check = now;
    expire_partial(srv);
    const struct zdb_config *cfg = srv->cfg;
    for (size_t i = 0; i < srv->store->nns; i++) {
        struct zdb_ns *ns = srv->store->ns[i];
        if (cfg->store.synctime && ns->dirty_unsynced &&
            now - ns->last_sync >= (time_t)cfg->store.synctime && zdb_ns_sync(ns) < 0)
            qs_log(QS_LOG_ERROR, "namespace %s: sync failed: %s", ns->name, qs_err_msg());
        if (cfg->rotate && ns->written && now - srv->last_rotate >= (time_t)cfg->rotate &&
            zdb_ns_jump(ns) < 0)
            qs_log(QS_LOG_ERROR, "namespace %s: rotation failed: %s", ns->name, qs_err_msg());
    }
    if (cfg->rotate && now - srv->last_rotate >= (time_t)cfg->rotate)
        srv->last_rotate = now;
    zdb_compact_periodic(srv, now); /* --compact-ratio: at most one data file per second */
}

/* After a batch rolled some namespaces back: every reply of c that depended on a rolled
 * back generation becomes an error; the others (reads, PING, other namespaces) stand. */
static void fail_tainted(struct zdb_server *srv, struct zdb_client *c)
{
    if (!srv->store->naborted && !srv->store->aborted_overflow)
        return;
    struct qs_buf *o = &c->out;
    if (c->taint_lost) { /* the list could not be kept: nothing of the turn stands */
        o->len = c->batch_mark;
        for (unsigned i = 0; i < c->batch_cmds; i++)
            reply_error(c, "Cannot write data right now");
        return;
    }
    size_t end = o->len;
    struct qs_buf tail;
    qs_buf_init(&tail, o->max);
    bool ok = true;
    size_t at = c->batch_mark;
    for (size_t i = 0; i < c->ntaint && ok; i++) {
        const struct zdb_taint *t = &c->taint[i];
        int code;
        if (!zdb_store_gen_aborted(srv->store, t->gen, &code))
            continue;
        const char *msg = code == ZDB_EDISKFULL ? "-" ZDB_ERR_DISKFULL "\r\n"
                                                : "-Cannot write data right now\r\n";
        ok = qs_buf_append(&tail, qs_buf_ptr(o) + at, t->start - at) == 0;
        for (unsigned k = 0; ok && k < t->replies; k++)
            ok = qs_buf_append(&tail, msg, strlen(msg)) == 0;
        at = t->end;
    }
    if (at == c->batch_mark) { /* nothing of c was rolled back */
        qs_buf_free(&tail);
        return;
    }
    ok = ok && qs_buf_append(&tail, qs_buf_ptr(o) + at, end - at) == 0;
    o->len = c->batch_mark;
    if (ok)
        ok = qs_buf_append(o, qs_buf_ptr(&tail), tail.len) == 0;
    if (!ok) {
        o->len = c->batch_mark;
        for (unsigned i = 0; i < c->batch_cmds; i++)
            reply_error(c, "Cannot write data right now");
    }
    qs_buf_free(&tail);
}

/* Starts tracking c's replies for a batch. */
static void turn_begin(struct zdb_client *c)
{
    c->batch_mark = c->out.len;
    c->batch_cmds = 0;
    c->ntaint = 0;
    c->taint_lost = false;
}

/* After a turn's writes reached the files: sends c's replies, and when that drains a
 * paused client, runs what it had already sent (unbatched, written at once). */
static void finish_turn(struct zdb_server *srv, struct zdb_client *c)
{
    int drop = 0;
    for (int round = 0; !drop && round < 4; round++) {
        drop = flush_out(srv, c) < 0;
        if (drop || c->closing || c->in.len == 0 || c->out.len > OUT_PAUSE)
            break;
        size_t before = c->in.len;
        /* what it had sent is a batch of its own, acknowledged only once durable */
        turn_begin(c);
        zdb_store_batch_begin(srv->store);
        process_input(srv, c);
        if (zdb_store_batch_end(srv->store) < 0)
            fail_tainted(srv, c);
        if (c->in.len == before)
            break;
    }
    if (drop)
        client_free(srv, c);
}

/* Clients that left WAIT during the turn: their +CMD or -Timeout, then what they sent
 * while parked. Those woken meanwhile wait for the next turn. */
static void finish_woken(struct zdb_server *srv)
{
    struct zdb_client *list = srv->woken;
    srv->woken = NULL;
    while (list) {
        struct zdb_client *c = list;
        list = c->woken_next;
        c->woken = false;
        c->woken_next = NULL;
        finish_turn(srv, c);
    }
}

int zdb_server_run(struct zdb_server *srv)
{
    struct epoll_event evs[128];
    struct zdb_client *touched[128];
    while (!srv->stop_signal) {
        int timeout = srv->waiters ? expire_waiters(srv) : LOOP_TICK;
        if (srv->listen_paused) {
            int64_t left = srv->listen_resume_ms - qs_now_ms();
            if (left < timeout)
                timeout = left > 0 ? (int)left : 0;
        }
        if (srv->woken)
            timeout = 0;
        int n = epoll_wait(srv->epfd, evs, 128, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            qs_log(QS_LOG_ERROR, "epoll_wait: %s", strerror(errno));
            break;
        }
        /* Every write of this turn, from every client, reaches the files in one write per
         * file (and one fdatasync with --sync) before any reply is sent. */
        int nt = 0;
        zdb_store_batch_begin(srv->store);
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == TAG_LISTEN0 || tag == TAG_LISTEN1) {
                accept_clients(srv, srv->listen_fd[tag - TAG_LISTEN0]);
                continue;
            }
            struct zdb_client *c = evs[i].data.ptr;
            turn_begin(c);
            int drop = 0;
            if (evs[i].events & (EPOLLERR | EPOLLHUP) && !(evs[i].events & EPOLLIN))
                drop = 1;
            if (!drop && (evs[i].events & EPOLLIN))
                drop = read_client(srv, c) < 0;
            if (!drop && c->in.len > 0 && c->out.len <= OUT_PAUSE)
                process_input(srv, c); /* a paused client whose output drained */
            if (drop)
                client_free(srv, c);
            else
                touched[nt++] = c;
        }
        if (zdb_store_batch_end(srv->store) < 0) {
            for (int i = 0; i < nt; i++)
                fail_tainted(srv, touched[i]);
        }
        /* One send for the whole batch of replies of each client. */
        for (int i = 0; i < nt; i++)
            finish_turn(srv, touched[i]);
        if (srv->waiters)
            expire_waiters(srv);
        if (srv->woken)
            finish_woken(srv);
        periodic(srv);
    }
    return srv->stop_signal;
}

void zdb_server_free(struct zdb_server *srv)
{
    while (srv->clients)
        client_free(srv, srv->clients);
    for (int i = 0; i < srv->nlisten; i++)
        close(srv->listen_fd[i]);
    if (srv->spare_fd >= 0)
        close(srv->spare_fd);
    srv->spare_fd = -1;
    if (srv->cfg && srv->cfg->socket)
        unlink(srv->cfg->socket);
    if (srv->epfd >= 0)
        close(srv->epfd);
    zdb_store_close(srv->store);
    srv->store = NULL;
}
