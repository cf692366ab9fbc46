/* The daemon's HTTP endpoint (http.h). */
#include "daemon/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct zsd_http {
    struct MHD_Daemon *mhd;
    struct zsd *d;
};

/* A short text body (a failure to append leaves it shorter: still an answer). */
static void say(struct qs_buf *b, const char *a, const char *c)
{
    if (qs_buf_append(b, a, strlen(a)) < 0 || qs_buf_append(b, c, strlen(c)) < 0) {
        /* nothing better to say */
    }
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             struct qs_buf *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(body->len, qs_buf_ptr(body), MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    struct zsd_http *h = cls;
    if (!*state) { /* first call: headers only */
        static int marker;
        *state = &marker;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* bodies are ignored */
        return MHD_YES;
    }
    struct qs_buf b;
    qs_buf_init(&b, 16u << 20);
    enum MHD_Result ret;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        say(&b, "only GET\n", "");
        ret = reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", &b);
    } else if (strcmp(url, "/metrics") == 0) {
        if (zsd_render_metrics(h->d, &b) < 0) {
            qs_buf_free(&b);
            qs_buf_init(&b, 4096);
            say(&b, "metrics: ", qs_err_msg());
            ret = reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", &b);
        } else {
            ret = reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", &b);
        }
    } else if (strcmp(url, "/") == 0) {
        const char *names = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "names");
        if (zsd_render_page(h->d, &b, names && strcmp(names, "1") == 0) < 0) {
            qs_buf_free(&b);
            qs_buf_init(&b, 4096);
            say(&b, "status page: ", qs_err_msg());
            ret = reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", &b);
        } else {
            ret = reply(conn, MHD_HTTP_OK, "text/html; charset=utf-8", &b);
        }
    } else {
        say(&b, "not found: /metrics and / are served\n", "");
        ret = reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", &b);
    }
    qs_buf_free(&b);
    return ret;
}

int zsd_http_start(struct zsd_http **out, struct zsd *d, const char *bind, unsigned port)
{
    *out = NULL;
    struct zsd_http *h = calloc(1, sizeof(*h));
    if (!h)
        return qs_err_set(QS_ENOMEM, "out of memory");
    h->d = d;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    bool have_addr = false;
    if (bind && inet_pton(AF_INET, bind, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        have_addr = true;
    } else if (bind && inet_pton(AF_INET6, bind, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
        have_addr = true;
    } else if (bind) {
        free(h);
        return qs_err_set(QS_EINVAL, "prometheus_bind: \"%s\" is not an IP address", bind);
    } else {
        flags |= MHD_USE_DUAL_STACK;
    }
    /* a few connections at a time are plenty for scrapers and a browser */
    if (have_addr)
        h->mhd =
            MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR,
                             (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 64u,
                             MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    else
        h->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, h,
                                  MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT,
                                  10u, MHD_OPTION_END);
    if (!h->mhd) {
        int e = errno;
        free(h);
        return qs_err_set(QS_EIO, "metrics endpoint on %s port %u: %s", bind ? bind : "*", port,
                          e ? strerror(e) : "cannot listen");
    }
    *out = h;
    return 0;
}

void zsd_http_stop(struct zsd_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->mhd);
    free(h);
}
