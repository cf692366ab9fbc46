/* zdb client: connection, SELECT, pipelined exchanges with deadlines, retries. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <stdatomic.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "util/buf.h"
#include "util/mem.h"
#include "zdbclient/zdbclient.h"

#define RBUF_SIZE    (256u * 1024) /* bytes per read() */
#define BIG_ARG      (16u * 1024)  /* arguments at least this long are sent in place */
#define MAX_ELEMENTS (1u << 20)    /* largest array reply accepted */
#define REPLY_SLACK  (64u * 1024)  /* reply bytes allowed above max_value (framing, text) */
#define OBUF_MAX     (1ull << 30)  /* formatted command headers of one batch */
#define IOV_BATCH    64

/* A piece of the outgoing byte stream: in c->obuf (ptr == NULL) or borrowed. */
struct seg {
    const uint8_t *ptr;
    size_t off;
    size_t len;
};

struct qs_zdb {
    struct qs_zdb_addr addr;
    char *ns;
    char *password;
    bool secure;
    unsigned connect_ms, request_ms, attempts, backoff_ms, backoff_max_ms;
    size_t max_value;
    char name[400];

    int fd; /* -1 when disconnected */
    bool ever_connected;
    redisReader *reader;
    redisReplyObjectFunctions fns;
    size_t reply_bytes; /* bytes of the reply being parsed */
    bool reply_too_big;

    struct qs_buf obuf;
    struct seg *segs;
    size_t nsegs, segcap;
    uint8_t *rbuf;

    struct qs_zdb_stats st;

    /* limits of the calls (qs_zdb_set_limits) */
    uint64_t call_deadline_us; /* CLOCK_MONOTONIC, 0 = none */
    const atomic_int *cancel;
};

#define CANCEL_SLICE_MS 50 /* how often a waiting call looks at its cancel flag */
#define CANCEL_GRACE_MS                                                                            \
    2000 /* a cancelled exchange may finish so long: what it wrote gets                            \
            known (and can be undone) instead of left behind */

/* ---- small helpers ---- */

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static bool cancelled(const struct qs_zdb *c)
{
    return c->cancel && atomic_load(c->cancel);
}

/* QS_EAGAIN once the call's cancel flag is set, QS_ETIMEOUT once its deadline passed. */
static int call_limits(const struct qs_zdb *c, const char *what)
{
    if (cancelled(c))
        return qs_err_set(QS_EAGAIN, "%s: %s: cancelled", c->name, what);
    if (c->call_deadline_us && now_us() >= c->call_deadline_us)
        return qs_err_set(QS_ETIMEOUT, "%s: %s: the call's deadline passed", c->name, what);
    return 0;
}

/* Waits ms before a retry, in slices, ending early at the call's cancel or deadline. */
static int backoff_wait(const struct qs_zdb *c, unsigned ms, const char *what)
{
    uint64_t until = now_us() + (uint64_t)ms * 1000u;
    if (c->call_deadline_us && until > c->call_deadline_us)
        until = c->call_deadline_us;
    for (;;) {
        int rc = call_limits(c, what);
        uint64_t now = now_us();
        if (rc < 0 || now >= until)
            return rc;
        uint64_t left = (until - now + 999) / 1000;
        sleep_ms(left > CANCEL_SLICE_MS && c->cancel ? CANCEL_SLICE_MS : (unsigned)left);
    }
}

void qs_zdb_set_limits(struct qs_zdb *c, int64_t deadline_ms, const atomic_int *cancel)
{
    c->call_deadline_us = deadline_ms > 0 ? (uint64_t)deadline_ms * 1000u : 0;
    c->cancel = cancel;
}

/* Message "zdb ADDR/NS: WHAT: WHY" and returns code. */
QS_PRINTF(4, 5)
static int zerr(const struct qs_zdb *c, int code, const char *what, const char *fmt, ...)
{
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return qs_err_set(code, "%s: %s: %s", c->name, what, why);
}

static char *dupstr(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

void qs_zdb_opts_default(struct qs_zdb_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->connect_timeout_ms = 3000;
    o->request_timeout_ms = 10000;
    o->attempts = 3;
    o->backoff_ms = 100;
    o->backoff_max_ms = 2000;
    o->max_value = QS_ZDB_MAX_VALUE;
}

/* ---- reply objects (hiredis reader callbacks) ---- */

static struct qs_zdb_reply *reply_new(const redisReadTask *task, enum qs_zdb_rtype type)
{
    struct qs_zdb_reply *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->type = type;
    if (task->parent) {
        struct qs_zdb_reply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *cb_string(const redisReadTask *task, char *str, size_t len)
{
    struct qs_zdb *c = task->privdata;
    if (len > c->max_value + REPLY_SLACK || c->reply_bytes + len > c->max_value + REPLY_SLACK) {
        c->reply_too_big = true;
        return NULL;
    }
    c->reply_bytes += len;
    enum qs_zdb_rtype type = task->type == REDIS_REPLY_ERROR    ? QS_ZDB_R_ERROR
                             : task->type == REDIS_REPLY_STATUS ? QS_ZDB_R_STATUS
                                                                : QS_ZDB_R_STRING;
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, str, len);
    copy[len] = '\0';
    struct qs_zdb_reply *r = reply_new(task, type);
    if (!r) {
        free(copy);
        return NULL;
    }
    r->str = copy;
    r->len = len;
    return r;
}

static void *cb_array(const redisReadTask *task, int elements)
{
    struct qs_zdb *c = task->privdata;
    if (elements < 0 || (unsigned)elements > MAX_ELEMENTS) {
        c->reply_too_big = true;
        return NULL;
    }
    struct qs_zdb_reply **el = NULL;
    if (elements > 0) {
        el = calloc((size_t)elements, sizeof(*el));
        if (!el)
            return NULL;
    }
    struct qs_zdb_reply *r = reply_new(task, QS_ZDB_R_ARRAY);
    if (!r) {
        free(el);
        return NULL;
    }
    r->element = el;
    r->elements = (size_t)elements;
    return r;
}

static void *cb_integer(const redisReadTask *task, long long v)
{
    struct qs_zdb_reply *r = reply_new(task, QS_ZDB_R_INTEGER);
    if (r)
        r->integer = v;
    return r;
}

static void *cb_nil(const redisReadTask *task)
{
    return reply_new(task, QS_ZDB_R_NIL);
}

void qs_zdb_reply_free(struct qs_zdb_reply *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->elements; i++)
        qs_zdb_reply_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

static void cb_free(void *obj)
{
    qs_zdb_reply_free(obj);
}

/* ---- lifecycle ---- */

int qs_zdb_new(struct qs_zdb **out, const struct qs_zdb_opts *o)
{
    *out = NULL;
    struct qs_zdb_addr addr;
    int rc = qs_zdb_addr_parse(o->address, &addr);
    if (rc < 0)
        return rc;
    if (o->ns && strlen(o->ns) > 128)
        return qs_err_set(QS_EINVAL, "backend %s: namespace name longer than 128", o->address);
    if (o->password && strlen(o->password) > 128)
        return qs_err_set(QS_EINVAL, "backend %s: password longer than 128", o->address);
    if (o->secure && !(o->password && *o->password))
        return qs_err_set(QS_EINVAL, "backend %s: SECURE select needs a password", o->address);
    if (o->max_value == 0 || o->max_value > QS_ZDB_MAX_VALUE)
        return qs_err_set(QS_EINVAL, "backend %s: max value must be 1..%u", o->address,
                          QS_ZDB_MAX_VALUE);
    struct qs_zdb *c = calloc(1, sizeof(*c));
    if (!c)
        return qs_err_set(QS_ENOMEM, "zdb client: out of memory");
    c->addr = addr;
    c->fd = -1;
    c->ns = dupstr(o->ns);
    c->password = dupstr(o->password);
    c->rbuf = malloc(RBUF_SIZE);
    if ((o->ns && *o->ns && !c->ns) || (o->password && *o->password && !c->password) || !c->rbuf) {
        qs_zdb_free(c);
        return qs_err_set(QS_ENOMEM, "zdb client: out of memory");
    }
    c->secure = o->secure;
    c->connect_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 3000;
    c->request_ms = o->request_timeout_ms ? o->request_timeout_ms : 10000;
    c->attempts = o->attempts ? o->attempts : 1;
    c->backoff_ms = o->backoff_ms;
    c->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : o->backoff_ms;
    c->max_value = o->max_value;
    snprintf(c->name, sizeof(c->name), "zdb %s/%s", o->address, c->ns ? c->ns : "default");
    c->fns.createString = cb_string;
    c->fns.createArray = cb_array;
    c->fns.createInteger = cb_integer;
    c->fns.createNil = cb_nil;
    c->fns.freeObject = cb_free;
    qs_buf_init(&c->obuf, OBUF_MAX);
    *out = c;
    return 0;
}

void qs_zdb_disconnect(struct qs_zdb *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->reader)
        redisReaderFree(c->reader);
    c->reader = NULL;
}

void qs_zdb_free(struct qs_zdb *c)
{
    if (!c)
        return;
    qs_zdb_disconnect(c);
    free(c->ns);
    if (c->password) {
        qs_wipe(c->password, strlen(c->password));
        free(c->password);
    }
    qs_buf_free(&c->obuf);
    free(c->segs);
    free(c->rbuf);
    free(c);
}

const char *qs_zdb_name(const struct qs_zdb *c)
{
    return c->name;
}

size_t qs_zdb_max_value(const struct qs_zdb *c)
{
    return c->max_value;
}

bool qs_zdb_connected(const struct qs_zdb *c)
{
    return c->fd >= 0;
}

void qs_zdb_stats(const struct qs_zdb *c, struct qs_zdb_stats *out)
{
    *out = c->st;
}

/* ---- command formatting ---- */

static int seg_add(struct qs_zdb *c, const uint8_t *ptr, size_t off, size_t len)
{
    if (len == 0)
        return 0;
    if (c->nsegs == c->segcap) {
        size_t cap = c->segcap ? c->segcap * 2 : 64;
        struct seg *s = realloc(c->segs, cap * sizeof(*s));
        if (!s)
            return qs_err_set(QS_ENOMEM, "%s: out of memory", c->name);
        c->segs = s;
        c->segcap = cap;
    }
    c->segs[c->nsegs++] = (struct seg){ptr, off, len};
    return 0;
}

/* Appends one RESP command. Small arguments are copied into obuf, large ones referenced.
 * *run is the start of the obuf bytes not yet covered by a segment. */
static int fmt_cmd(struct qs_zdb *c, int argc, const void *const *argv, const size_t *len,
                   size_t *run)
{
    int rc = qs_buf_appendf(&c->obuf, "*%d\r\n", argc);
    for (int i = 0; rc == 0 && i < argc; i++) {
        rc = qs_buf_appendf(&c->obuf, "$%zu\r\n", len[i]);
        if (rc < 0)
            break;
        if (len[i] >= BIG_ARG) {
            rc = seg_add(c, NULL, *run, c->obuf.len - *run);
            if (rc == 0)
                rc = seg_add(c, argv[i], 0, len[i]);
            *run = c->obuf.len;
        } else if (len[i] > 0) {
            rc = qs_buf_append(&c->obuf, argv[i], len[i]);
        }
        if (rc == 0)
            rc = qs_buf_append(&c->obuf, "\r\n", 2);
    }
    if (rc == QS_ENOMEM)
        return zerr(c, QS_ENOMEM, "request", "out of memory formatting a command");
    return rc;
}

static void fmt_reset(struct qs_zdb *c)
{
    qs_buf_reset(&c->obuf);
    c->nsegs = 0;
}

/* ---- the exchange engine ---- */

typedef int (*reply_fn)(struct qs_zdb *c, void *ud, size_t i, struct qs_zdb_reply *r);

static int reader_error(struct qs_zdb *c, const char *what)
{
    if (c->reply_too_big)
        return zerr(c, QS_EPROTO, what, "reply larger than %zu bytes", c->max_value);
    if (c->reader->err == REDIS_ERR_OOM)
        return zerr(c, QS_ENOMEM, what, "out of memory reading a reply");
    return zerr(c, QS_EPROTO, what, "protocol error: %s", c->reader->errstr);
}

/* Writes the segments, reads n replies, hands each to fn (which owns it then). *got
 * counts the replies delivered. On any error the connection is dropped. Transport
 * failures are QS_EIO / QS_ETIMEOUT; bad bytes from the server QS_EPROTO. */
static int exchange(struct qs_zdb *c, const char *what, size_t n, reply_fn fn, void *ud,
                    size_t *got)
{
    *got = 0;
    size_t si = 0, soff = 0; /* next segment and offset in it */
    uint64_t start = now_us();
    uint64_t budget = (uint64_t)c->request_ms * 1000u;
    uint64_t total_deadline = start + budget * (n ? n : 1);
    uint64_t idle_deadline = start + budget;
    bool first = true;
    int rc = 0;
    uint64_t grace = 0; /* set once cancelled: the exchange may finish until then */
    while (*got < n) {
        uint64_t now = now_us();
        uint64_t deadline = idle_deadline < total_deadline ? idle_deadline : total_deadline;
        if (!grace && cancelled(c))
            grace = now + CANCEL_GRACE_MS * 1000u;
        if (grace && deadline > grace)
            deadline = grace;
        if ((grace && now >= grace) || (c->call_deadline_us && now >= c->call_deadline_us)) {
            if ((rc = call_limits(c, what)) == 0)
                rc = qs_err_set(QS_EAGAIN, "%s: %s: cancelled", c->name, what);
            goto fail; /* mid-exchange: the connection cannot be reused */
        }
        if (now >= deadline) {
            rc = zerr(c, QS_ETIMEOUT, what, "timeout: no reply within %u ms", c->request_ms);
            goto fail;
        }
        if (c->call_deadline_us && deadline > c->call_deadline_us)
            deadline = c->call_deadline_us;
        struct pollfd pfd = {c->fd, POLLIN | (si < c->nsegs ? POLLOUT : 0), 0};
        int wait = (int)((deadline - now + 999) / 1000);
        if (c->cancel && wait > CANCEL_SLICE_MS)
            wait = CANCEL_SLICE_MS;
        int pr = poll(&pfd, 1, wait);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            rc = qs_err_sys(QS_EIO, errno, "%s: %s: poll", c->name, what);
            goto fail;
        }
        if (pr == 0)
            continue; /* the deadline check above reports it */
        bool progress = false;
        if (pfd.revents & (POLLIN | POLLERR | POLLHUP)) {
            ssize_t r = read(c->fd, c->rbuf, RBUF_SIZE);
            if (r == 0) {
                rc = zerr(c, QS_EIO, what, "connection closed by the server");
                goto fail;
            }
            if (r < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    rc = qs_err_sys(QS_EIO, errno, "%s: %s: receive", c->name, what);
                    goto fail;
                }
            } else {
                progress = true;
                if (redisReaderFeed(c->reader, (const char *)c->rbuf, (size_t)r) != REDIS_OK) {
                    rc = reader_error(c, what);
                    goto fail;
                }
                for (;;) {
                    void *obj = NULL;
                    if (redisReaderGetReply(c->reader, &obj) != REDIS_OK) {
                        rc = reader_error(c, what);
                        goto fail;
                    }
                    if (!obj)
                        break;
                    c->reply_bytes = 0;
                    if (first) {
                        first = false;
                        uint64_t lat = now_us() - start;
                        c->st.last_us = lat;
                        c->st.avg_us =
                            c->st.avg_us ? c->st.avg_us - c->st.avg_us / 8 + lat / 8 : lat;
                    }
                    c->st.requests++;
                    if (*got >= n) {
                        qs_zdb_reply_free(obj);
                        rc = zerr(c, QS_EPROTO, what, "protocol error: unexpected extra reply");
                        goto fail;
                    }
                    rc = fn(c, ud, (*got)++, obj);
                    if (rc < 0)
                        goto fail;
                }
                size_t pending = c->reader->len - c->reader->pos;
                if (pending > c->max_value + REPLY_SLACK) {
                    c->reply_too_big = true;
                    rc = reader_error(c, what);
                    goto fail;
                }
            }
        }
        if ((pfd.revents & POLLOUT) && si < c->nsegs) {
            struct iovec iov[IOV_BATCH];
            int k = 0;
            for (size_t j = si; j < c->nsegs && k < IOV_BATCH; j++, k++) {
                const struct seg *s = &c->segs[j];
                const uint8_t *base = s->ptr ? s->ptr : qs_buf_ptr(&c->obuf) + s->off;
                size_t skip = j == si ? soff : 0;
                iov[k].iov_base = (void *)(base + skip);
                iov[k].iov_len = s->len - skip;
            }
            struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)k};
            ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    rc = qs_err_sys(QS_EIO, errno, "%s: %s: send", c->name, what);
                    goto fail;
                }
            } else {
                size_t left = (size_t)w;
                while (left > 0) {
                    size_t room = c->segs[si].len - soff;
                    if (left >= room) {
                        left -= room;
                        si++;
                        soff = 0;
                    } else {
                        soff += left;
                        left = 0;
                    }
                }
                progress = w > 0;
            }
        }
        if (progress)
            idle_deadline = now_us() + budget;
    }
    if (si < c->nsegs || c->reader->len > c->reader->pos) {
        /* every reply is in but bytes remain: the server answered something we did not ask */
        rc = zerr(c, QS_EPROTO, what, "protocol error: %s",
                  si < c->nsegs ? "replies before the requests were sent"
                                : "unexpected data after the last reply");
        goto fail;
    }
    return 0;
fail:
    c->st.failures++;
    qs_zdb_disconnect(c);
    return rc;
}

static bool transient(int rc)
{
    return rc == QS_EIO || rc == QS_ETIMEOUT;
}

/* One command, one reply, on the current connection (no retry). */
struct one {
    struct qs_zdb_reply *r;
};

static int take_one(struct qs_zdb *c, void *ud, size_t i, struct qs_zdb_reply *r)
{
    ((struct one *)ud)->r = r;
    return 0;
}

static int roundtrip(struct qs_zdb *c, const char *what, int argc, const void *const *argv,
                     const size_t *len, struct qs_zdb_reply **out)
{
    fmt_reset(c);
    size_t run = 0;
    int rc = fmt_cmd(c, argc, argv, len, &run);
    if (rc == 0)
        rc = seg_add(c, NULL, run, c->obuf.len - run);
    if (rc < 0)
        return rc;
    struct one o = {NULL};
    size_t got;
    rc = exchange(c, what, 1, take_one, &o, &got);
    if (rc < 0) {
        qs_zdb_reply_free(o.r);
        o.r = NULL;
    }
    *out = o.r;
    return rc;
}

/* ---- connecting ---- */

static int open_socket(struct qs_zdb *c)
{
    unsigned ms = c->connect_ms;
    if (c->call_deadline_us) { /* a connect never outlives the call */
        uint64_t now = now_us();
        uint64_t left = c->call_deadline_us > now ? (c->call_deadline_us - now + 999) / 1000 : 1;
        if (left < ms)
            ms = (unsigned)left;
    }
    struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000};
    errno = 0;
    redisContext *ctx = c->addr.is_unix
                            ? redisConnectUnixWithTimeout(c->addr.path, tv)
                            : redisConnectWithTimeout(c->addr.host, (int)c->addr.port, tv);
    int err = errno;
    if (!ctx)
        return zerr(c, QS_ENOMEM, "connect", "out of memory");
    if (ctx->err) {
        int code = QS_EIO;
        const char *why = ctx->errstr;
        char buf[160];
        if (err == ETIMEDOUT || strstr(ctx->errstr, "timed out")) {
            code = QS_ETIMEOUT;
            snprintf(buf, sizeof(buf), "connect timeout after %u ms", c->connect_ms);
            why = buf;
        } else if (err == ECONNREFUSED || strstr(ctx->errstr, "refused")) {
            why = "connection refused";
        }
        int rc = zerr(c, code, "connect", "%s", why);
        c->st.failures++;
        redisFree(ctx);
        return rc;
    }
    int fd = redisFreeKeepFd(ctx);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        int e = errno;
        close(fd);
        return qs_err_sys(QS_EIO, e, "%s: connect: fcntl", c->name);
    }
    c->reader = redisReaderCreateWithFunctions(&c->fns);
    if (!c->reader) {
        close(fd);
        return zerr(c, QS_ENOMEM, "connect", "out of memory");
    }
    c->reader->privdata = c;
    c->reply_bytes = 0;
    c->reply_too_big = false;
    c->fd = fd;
    return 0;
}

static int sha1_hex(const char *nonce, size_t nlen, const char *pass, char hex[41])
{
    size_t plen = strlen(pass);
    size_t total = nlen + 1 + plen;
    char *msg = malloc(total);
    if (!msg)
        return QS_ENOMEM;
    memcpy(msg, nonce, nlen);
    msg[nlen] = ':';
    memcpy(msg + nlen + 1, pass, plen);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = EVP_Digest(msg, total, md, &mdlen, EVP_sha1(), NULL);
    qs_wipe(msg, total);
    free(msg);
    if (!ok || mdlen != 20)
        return QS_EIO;
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < 20; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[40] = '\0';
    return 0;
}

/* Reply of a command that must be +OK (or another status). */
static int expect_status(struct qs_zdb *c, const char *what, struct qs_zdb_reply *r)
{
    int rc = 0;
    if (r->type == QS_ZDB_R_ERROR) {
        rc = zerr(c, qs_zdb_error_code(r->str, r->len), what, "%s", r->str);
        c->st.error_replies++;
    } else if (r->type != QS_ZDB_R_STATUS)
        rc = zerr(c, QS_EPROTO, what, "protocol error: unexpected reply type %d", (int)r->type);
    qs_zdb_reply_free(r);
    if (rc < 0)
        qs_zdb_disconnect(c);
    return rc;
}

/* SELECT on a fresh connection. */
static int select_ns(struct qs_zdb *c)
{
    if (!c->ns && !c->password)
        return 0;
    const char *ns = c->ns ? c->ns : "default";
    struct qs_zdb_reply *r = NULL;
    int rc;
    if (c->secure) {
        const void *av[3] = {"AUTH", "SECURE", "CHALLENGE"};
        size_t al[3] = {4, 6, 9};
        rc = roundtrip(c, "AUTH SECURE CHALLENGE", 3, av, al, &r);
        if (rc < 0)
            return rc;
        if (r->type != QS_ZDB_R_STATUS || r->len == 0 || r->len > 64) {
            rc = r->type == QS_ZDB_R_ERROR
                     ? zerr(c, QS_EDENIED, "AUTH SECURE CHALLENGE",
                            "the server gives no challenge (%s): use a plain password", r->str)
                     : zerr(c, QS_EPROTO, "AUTH SECURE CHALLENGE", "protocol error: bad reply");
            qs_zdb_reply_free(r);
            qs_zdb_disconnect(c);
            return rc;
        }
        char hex[41];
        rc = sha1_hex(r->str, r->len, c->password, hex);
        qs_zdb_reply_free(r);
        if (rc < 0) {
            qs_zdb_disconnect(c);
            return zerr(c, rc, "SELECT", "cannot compute the SHA-1 response");
        }
        const void *sv[4] = {"SELECT", ns, "SECURE", hex};
        size_t sl[4] = {6, strlen(ns), 6, 40};
        rc = roundtrip(c, "SELECT", 4, sv, sl, &r);
        qs_wipe(hex, sizeof(hex));
    } else {
        const void *sv[3] = {"SELECT", ns, c->password};
        size_t sl[3] = {6, strlen(ns), c->password ? strlen(c->password) : 0};
        rc = roundtrip(c, "SELECT", c->password ? 3 : 2, sv, sl, &r);
    }
    qs_wipe(qs_buf_ptr(&c->obuf), c->obuf.len); /* the formatted password */
    if (rc < 0)
        return rc;
    return expect_status(c, "SELECT", r);
}

/* A connection that sat idle may have been closed by the server (restart) or carry bytes
 * nobody asked for: find out before sending on it. */
static void check_idle(struct qs_zdb *c)
{
    struct pollfd pfd = {c->fd, POLLIN, 0};
    if (poll(&pfd, 1, 0) > 0)
        qs_zdb_disconnect(c); /* EOF, error or unsolicited data: start afresh */
}

static int connect_once(struct qs_zdb *c)
{
    if (c->fd >= 0) {
        check_idle(c);
        if (c->fd >= 0)
            return 0;
    }
    int rc = open_socket(c);
    if (rc < 0)
        return rc;
    if (c->ever_connected)
        c->st.reconnects++;
    c->ever_connected = true;
    return select_ns(c);
}

/* Runs op (which talks on a connected c) with reconnects and backoff on transport errors. */
typedef int (*attempt_fn)(struct qs_zdb *c, void *ud);

static int with_retries(struct qs_zdb *c, attempt_fn op, void *ud)
{
    int rc = 0;
    unsigned delay = c->backoff_ms, tries = 0;
    for (unsigned a = 0; a < c->attempts; a++) {
        if ((rc = a > 0 ? backoff_wait(c, delay, "retry") : call_limits(c, "request")) < 0)
            break;
        if (a > 0)
            delay = delay > c->backoff_max_ms / 2 ? c->backoff_max_ms : delay * 2;
        tries++;
        rc = connect_once(c);
        if (rc == 0)
            rc = op(c, ud);
        if (rc == 0) {
            c->st.consecutive = 0;
            return 0;
        }
        /* only a lost connection is worth another try; a refusal by the server is not;
         * nor is the call's own deadline or cancel */
        if (!transient(rc) || c->fd >= 0 || call_limits(c, "retry") < 0)
            break;
    }
    c->st.consecutive++;
    if (tries > 1) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        qs_err_set(rc, "%s (after %u attempts)", msg, tries);
    }
    return rc;
}

static int attempt_nothing(struct qs_zdb *c, void *ud)
{
    return 0;
}

int qs_zdb_connect(struct qs_zdb *c)
{
    return with_retries(c, attempt_nothing, NULL);
}

/* ---- generic command ---- */

struct cmd_args {
    int argc;
    const void *const *argv;
    const size_t *len;
    struct qs_zdb_reply *reply;
};

static int attempt_cmd(struct qs_zdb *c, void *ud)
{
    struct cmd_args *a = ud;
    char what[40];
    size_t wl = a->len[0] < sizeof(what) - 1 ? a->len[0] : sizeof(what) - 1;
    memcpy(what, a->argv[0], wl);
    what[wl] = '\0';
    return roundtrip(c, what, a->argc, a->argv, a->len, &a->reply);
}

int qs_zdb_command(struct qs_zdb *c, int argc, const char *const *argv, const size_t *argvlen,
                   struct qs_zdb_reply **out)
{
    *out = NULL;
    if (argc < 1 || argc > 1024)
        return zerr(c, QS_EINVAL, "command", "bad argument count %d", argc);
    for (int i = 0; i < argc; i++)
        if (argvlen[i] > c->max_value)
            return zerr(c, QS_EINVAL, "command", "argument %d larger than %zu bytes", i,
                        c->max_value);
    struct cmd_args a = {argc, (const void *const *)argv, argvlen, NULL};
    int rc = with_retries(c, attempt_cmd, &a);
    *out = a.reply;
    return rc;
}

/* ---- batches ---- */

struct batch {
    struct qs_zdb_op *ops;
    size_t n, done;
    size_t first_fail; /* index of the first op with a non-zero result, n if none */
    char fail_msg[512];
};

static const char *op_name(enum qs_zdb_opkind k)
{
    return k == QS_ZDB_SET ? "SET" : k == QS_ZDB_GET ? "GET" : "DEL";
}

static int op_reply(struct qs_zdb *c, void *ud, size_t i, struct qs_zdb_reply *r)
{
    struct batch *b = ud;
    struct qs_zdb_op *op = &b->ops[b->done + i];
    int res = 0;
    char why[300] = "";
    switch (r->type) {
    case QS_ZDB_R_ERROR:
        res = qs_zdb_error_code(r->str, r->len);
        snprintf(why, sizeof(why), "%s", r->str);
        break;
    case QS_ZDB_R_NIL:
        if (op->kind == QS_ZDB_GET) {
            res = QS_ENOTFOUND;
            snprintf(why, sizeof(why), "key not found");
        } else if (op->kind != QS_ZDB_SET) {
            res = QS_EPROTO;
        }
        break;
    case QS_ZDB_R_STRING:
        if (op->kind == QS_ZDB_DEL) {
            res = QS_EPROTO;
            break;
        }
        op->reply = (uint8_t *)r->str; /* ownership moves to the caller */
        op->reply_len = r->len;
        r->str = NULL;
        break;
    case QS_ZDB_R_STATUS:
        if (op->kind != QS_ZDB_DEL)
            res = QS_EPROTO;
        break;
    case QS_ZDB_R_INTEGER: /* a Redis-style DEL answers a count */
        if (op->kind != QS_ZDB_DEL)
            res = QS_EPROTO;
        else if (r->integer == 0)
            res = QS_ENOTFOUND;
        break;
    default:
        res = QS_EPROTO;
        break;
    }
    if (res == QS_EPROTO && !why[0])
        snprintf(why, sizeof(why), "protocol error: unexpected reply type %d", (int)r->type);
    if (res != QS_ENOTFOUND && r->type == QS_ZDB_R_ERROR)
        c->st.error_replies++;
    qs_zdb_reply_free(r);
    op->result = res;
    if (res != 0 && b->first_fail == b->n) {
        b->first_fail = b->done + i;
        snprintf(b->fail_msg, sizeof(b->fail_msg), "%s: %s: %s", c->name, op_name(op->kind), why);
    }
    return 0;
}

static int attempt_batch(struct qs_zdb *c, void *ud)
{
    struct batch *b = ud;
    fmt_reset(c);
    size_t run = 0;
    for (size_t i = b->done; i < b->n; i++) {
        struct qs_zdb_op *op = &b->ops[i];
        const void *av[3];
        size_t al[3];
        int argc = 2;
        av[0] = op_name(op->kind);
        al[0] = 3;
        av[1] = op->key ? op->key : "";
        al[1] = op->key_len;
        if (op->kind == QS_ZDB_SET) {
            av[2] = op->val ? op->val : "";
            al[2] = op->val_len;
            argc = 3;
        }
        int rc = fmt_cmd(c, argc, av, al, &run);
        if (rc < 0)
            return rc;
    }
    int rc = seg_add(c, NULL, run, c->obuf.len - run);
    if (rc < 0)
        return rc;
    size_t got = 0;
    rc = exchange(c, b->n - b->done == 1 ? op_name(b->ops[b->done].kind) : "pipelined batch",
                  b->n - b->done, op_reply, b, &got);
    b->done += got;
    return rc;
}

int qs_zdb_batch(struct qs_zdb *c, struct qs_zdb_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct qs_zdb_op *op = &ops[i];
        op->result = 0;
        op->reply = NULL;
        op->reply_len = 0;
        if (op->kind == QS_ZDB_SET && op->val_len > c->max_value)
            return zerr(c, QS_EINVAL, "SET", "value of %zu bytes is over the %zu-byte limit",
                        op->val_len, c->max_value);
        if (op->key_len > QS_ZDB_MAX_KEY)
            return zerr(c, QS_EINVAL, op_name(op->kind), "key of %zu bytes (max %u)", op->key_len,
                        QS_ZDB_MAX_KEY);
        if (op->kind != QS_ZDB_SET && op->key_len == 0)
            return zerr(c, QS_EINVAL, op_name(op->kind), "empty key");
    }
    if (n == 0)
        return 0;
    struct batch b = {ops, n, 0, n, ""};
    int rc = with_retries(c, attempt_batch, &b);
    if (rc < 0) {
        for (size_t i = b.done; i < n; i++)
            ops[i].result = rc; /* no reply: the batch error */
        return rc;
    }
    if (b.first_fail < n)
        return qs_err_set(ops[b.first_fail].result, "%s", b.fail_msg);
    return 0;
}

/* ---- helpers ---- */

int qs_zdb_seq_set(struct qs_zdb *c, const void *val, size_t len, uint8_t id[QS_ZDB_ID_LEN])
{
    struct qs_zdb_op op = {.kind = QS_ZDB_SET, .val = val, .val_len = len};
    int rc = qs_zdb_batch(c, &op, 1);
    if (rc == 0 && (!op.reply || op.reply_len != QS_ZDB_ID_LEN))
        rc = zerr(c, QS_EPROTO, "SET",
                  "expected an 8-byte sequential id, got %zu bytes (is the namespace in "
                  "sequential mode?)",
                  op.reply ? op.reply_len : 0);
    if (rc == 0)
        memcpy(id, op.reply, QS_ZDB_ID_LEN);
    free(op.reply);
    return rc;
}

static int get_one(struct qs_zdb *c, const void *key, size_t klen, uint8_t **val, size_t *len)
{
    *val = NULL;
    *len = 0;
    struct qs_zdb_op op = {.kind = QS_ZDB_GET, .key = key, .key_len = klen};
    int rc = qs_zdb_batch(c, &op, 1);
    if (rc < 0) {
        free(op.reply);
        return rc;
    }
    *val = op.reply;
    *len = op.reply_len;
    return 0;
}

static int del_one(struct qs_zdb *c, const void *key, size_t klen)
{
    struct qs_zdb_op op = {.kind = QS_ZDB_DEL, .key = key, .key_len = klen};
    return qs_zdb_batch(c, &op, 1);
}

int qs_zdb_seq_get(struct qs_zdb *c, const uint8_t id[QS_ZDB_ID_LEN], uint8_t **val, size_t *len)
{
    return get_one(c, id, QS_ZDB_ID_LEN, val, len);
}

int qs_zdb_seq_del(struct qs_zdb *c, const uint8_t id[QS_ZDB_ID_LEN])
{
    return del_one(c, id, QS_ZDB_ID_LEN);
}

int qs_zdb_user_set(struct qs_zdb *c, const void *key, size_t klen, const void *val, size_t len)
{
    if (klen == 0)
        return zerr(c, QS_EINVAL, "SET", "empty key");
    struct qs_zdb_op op = {
        .kind = QS_ZDB_SET, .key = key, .key_len = klen, .val = val, .val_len = len};
    int rc = qs_zdb_batch(c, &op, 1);
    free(op.reply);
    return rc;
}

int qs_zdb_user_get(struct qs_zdb *c, const void *key, size_t klen, uint8_t **val, size_t *len)
{
    return get_one(c, key, klen, val, len);
}

int qs_zdb_user_del(struct qs_zdb *c, const void *key, size_t klen)
{
    return del_one(c, key, klen);
}

int qs_zdb_ping(struct qs_zdb *c)
{
    const char *av[1] = {"PING"};
    size_t al[1] = {4};
    struct qs_zdb_reply *r = NULL;
    int rc = qs_zdb_command(c, 1, av, al, &r);
    if (rc < 0)
        return rc;
    return expect_status(c, "PING", r);
}

int qs_zdb_nsinfo(struct qs_zdb *c, struct qs_zdb_nsinfo *out)
{
    const char *ns = c->ns ? c->ns : "default";
    const char *av[2] = {"NSINFO", ns};
    size_t al[2] = {6, strlen(ns)};
    struct qs_zdb_reply *r = NULL;
    int rc = qs_zdb_command(c, 2, av, al, &r);
    if (rc < 0)
        return rc;
    if (r->type == QS_ZDB_R_ERROR)
        rc = zerr(c, qs_zdb_error_code(r->str, r->len), "NSINFO", "%s", r->str);
    else if (r->type != QS_ZDB_R_STRING)
        rc = zerr(c, QS_EPROTO, "NSINFO", "protocol error: unexpected reply type %d", (int)r->type);
    else if ((rc = qs_zdb_nsinfo_parse(r->str, r->len, out)) < 0) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        rc = qs_err_set(rc, "%s: %s", c->name, msg);
    }
    qs_zdb_reply_free(r);
    return rc;
}

static const char *mode_name(enum qs_zdb_mode m)
{
    return m == QS_ZDB_MODE_SEQ ? "sequential" : m == QS_ZDB_MODE_USER ? "userkey" : "unknown";
}

int qs_zdb_check_mode(struct qs_zdb *c, enum qs_zdb_mode want, struct qs_zdb_nsinfo *info)
{
    struct qs_zdb_nsinfo tmp;
    if (!info)
        info = &tmp;
    int rc = qs_zdb_nsinfo(c, info);
    if (rc < 0)
        return rc;
    enum qs_zdb_mode have = info->mode;
    if (have == want)
        return 0;
    return zerr(c, QS_EINVAL, "mode check",
                "namespace is in %s mode, %s mode needed (%s namespaces)", mode_name(have),
                mode_name(want), want == QS_ZDB_MODE_SEQ ? "data" : "metadata");
}
