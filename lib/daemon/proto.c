/* The zstor daemon's socket framing (proto.h). */
#include "daemon/proto.h"

#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

void zsd_req_free(struct zsd_req *r)
{
    if (!r)
        return;
    for (int i = 0; r->argv && i < r->argc; i++)
        free(r->argv[i]);
    free(r->argv);
    free(r->cwd);
    memset(r, 0, sizeof(*r));
}

int zsd_frame_append(struct qs_buf *out, enum zsd_type type, const void *p, size_t len)
{
    if (len > ZSD_FRAME_MAX)
        return qs_err_set(QS_EINVAL, "daemon protocol: frame of %zu bytes is too large", len);
    uint8_t hdr[ZSD_FRAME_HDR];
    hdr[0] = (uint8_t)type;
    qs_put32(hdr + 1, (uint32_t)len);
    int rc = qs_buf_append(out, hdr, sizeof(hdr));
    if (rc == 0 && len)
        rc = qs_buf_append(out, p, len);
    return rc;
}

static int put_str(uint8_t *p, size_t *off, const char *s, size_t len)
{
    qs_put32(p + *off, (uint32_t)len);
    memcpy(p + *off + 4, s, len);
    *off += 4 + len;
    return 0;
}

int zsd_req_append(struct qs_buf *out, int argc, char *const *argv, const char *cwd, unsigned flags)
{
    if (argc < 0 || (unsigned)argc > ZSD_ARGC_MAX)
        return qs_err_set(QS_EINVAL, "too many arguments for the daemon (at most %u)",
                          ZSD_ARGC_MAX);
    size_t cwdlen = strlen(cwd);
    if (cwdlen > ZSD_ARG_MAX)
        return qs_err_set(QS_EINVAL, "working directory too long for the daemon");
    size_t total = 4 + 4 + cwdlen + 1;
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]);
        if (l > ZSD_ARG_MAX)
            return qs_err_set(QS_EINVAL, "argument %d too long for the daemon (at most %u bytes)",
                              i + 1, ZSD_ARG_MAX);
        total += 4 + l;
    }
    uint8_t *p = malloc(total);
    if (!p)
        return qs_err_set(QS_ENOMEM, "out of memory");
    size_t off = 0;
    qs_put32(p, (uint32_t)argc);
    off = 4;
    for (int i = 0; i < argc; i++)
        put_str(p, &off, argv[i], strlen(argv[i]));
    put_str(p, &off, cwd, cwdlen);
    p[off++] = (uint8_t)flags;
    int rc = zsd_frame_append(out, ZSD_REQ, p, off);
    free(p);
    return rc;
}

int zsd_frame_next(const uint8_t *p, size_t n, enum zsd_type *type, const uint8_t **payload,
                   size_t *len, size_t *used)
{
    if (n < 1)
        return QS_EAGAIN;
    if (p[0] < ZSD_REQ || p[0] > ZSD_CANCEL)
        return qs_err_set(QS_EPROTO, "daemon protocol: unknown frame type %u", p[0]);
    if (n < ZSD_FRAME_HDR)
        return QS_EAGAIN;
    uint32_t l = qs_le32(p + 1);
    if (l > ZSD_FRAME_MAX)
        return qs_err_set(QS_EPROTO, "daemon protocol: frame of %u bytes is too large", l);
    if (n - ZSD_FRAME_HDR < l)
        return QS_EAGAIN;
    *type = (enum zsd_type)p[0];
    *payload = p + ZSD_FRAME_HDR;
    *len = l;
    *used = ZSD_FRAME_HDR + l;
    return 0;
}

static char *get_str(const uint8_t *p, size_t n, size_t *off, bool *nomem)
{
    if (n - *off < 4)
        return NULL;
    uint32_t l = qs_le32(p + *off);
    if (l > ZSD_ARG_MAX || n - *off - 4 < l || memchr(p + *off + 4, 0, l))
        return NULL;
    char *s = malloc((size_t)l + 1);
    if (!s) {
        *nomem = true;
        return NULL;
    }
    memcpy(s, p + *off + 4, l);
    s[l] = '\0';
    *off += 4 + l;
    return s;
}

int zsd_req_decode(const uint8_t *p, size_t n, struct zsd_req *r)
{
    memset(r, 0, sizeof(*r));
    if (n < 4)
        return qs_err_set(QS_EPROTO, "daemon protocol: short request");
    uint32_t argc = qs_le32(p);
    if (argc > ZSD_ARGC_MAX)
        return qs_err_set(QS_EPROTO, "daemon protocol: too many arguments (%u)", argc);
    if (!(r->argv = calloc(argc + 1, sizeof(*r->argv))))
        return qs_err_set(QS_ENOMEM, "out of memory");
    size_t off = 4;
    bool nomem = false;
    for (uint32_t i = 0; i < argc; i++) {
        if (!(r->argv[i] = get_str(p, n, &off, &nomem))) {
            zsd_req_free(r);
            if (nomem)
                return qs_err_set(QS_ENOMEM, "out of memory");
            return qs_err_set(QS_EPROTO, "daemon protocol: bad argument %u", i + 1);
        }
        r->argc++;
    }
    if (!(r->cwd = get_str(p, n, &off, &nomem)) || n - off != 1) {
        zsd_req_free(r);
        if (nomem)
            return qs_err_set(QS_ENOMEM, "out of memory");
        return qs_err_set(QS_EPROTO, "daemon protocol: bad request tail");
    }
    r->flags = p[off];
    return 0;
}

int zsd_hello_check(const uint8_t *p)
{
    if (memcmp(p, ZSD_HELLO, 4) != 0)
        return qs_err_set(QS_EPROTO, "the socket's peer is not a zstor daemon");
    if (p[4] != (uint8_t)ZSD_HELLO[4])
        return qs_err_set(QS_EPROTO, "the zstor daemon speaks protocol version %u, this zstor %u",
                          p[4], (unsigned)(uint8_t)ZSD_HELLO[4]);
    return 0;
}
