/* Pure parsers of the zdb client: backend addresses, NSINFO text, server error texts. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "util/parse.h"
#include "zdbclient/zdbclient.h"

static int addr_port(const char *address, const char *s, unsigned *port)
{
    uint64_t v;
    if (qs_parse_u64(s, strlen(s), &v) < 0 || v == 0 || v > 65535)
        return qs_err_set(QS_EINVAL, "backend address \"%s\": bad port \"%s\" (1-65535)", address,
                          s);
    *port = (unsigned)v;
    return 0;
}

int qs_zdb_addr_parse(const char *address, struct qs_zdb_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (!address || !*address)
        return qs_err_set(QS_EINVAL, "empty backend address");
    if (strncmp(address, "unix://", 7) == 0) {
        const char *p = address + 7;
        size_t n = strlen(p);
        if (n == 0 || p[0] != '/')
            return qs_err_set(QS_EINVAL, "backend address \"%s\": unix:// needs an absolute path",
                              address);
        if (n >= sizeof(out->path))
            return qs_err_set(QS_EINVAL, "backend address \"%s\": socket path too long (max %zu)",
                              address, sizeof(out->path) - 1);
        memcpy(out->path, p, n + 1);
        out->is_unix = true;
        return 0;
    }
    const char *host, *colon;
    size_t hlen;
    if (address[0] == '[') {
        const char *end = strchr(address, ']');
        if (!end || end[1] != ':')
            return qs_err_set(QS_EINVAL, "backend address \"%s\": expected [ipv6]:port", address);
        host = address + 1;
        hlen = (size_t)(end - host);
        colon = end + 1;
        if (hlen == 0 || memchr(host, ':', hlen) == NULL)
            return qs_err_set(QS_EINVAL, "backend address \"%s\": brackets need an IPv6 address",
                              address);
    } else {
        colon = strrchr(address, ':');
        if (!colon)
            return qs_err_set(QS_EINVAL, "backend address \"%s\": expected host:port", address);
        host = address;
        hlen = (size_t)(colon - address);
        if (memchr(host, ':', hlen))
            return qs_err_set(QS_EINVAL,
                              "backend address \"%s\": an IPv6 address must be in brackets "
                              "([addr]:port)",
                              address);
        if (hlen == 0)
            return qs_err_set(QS_EINVAL, "backend address \"%s\": empty host", address);
    }
    if (hlen >= sizeof(out->host))
        return qs_err_set(QS_EINVAL, "backend address \"%s\": host name too long", address);
    for (size_t i = 0; i < hlen; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == '[' || ch == ']')
            return qs_err_set(QS_EINVAL, "backend address \"%s\": bad character in host", address);
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    return addr_port(address, colon + 1, &out->port);
}

/* ---- server error texts ---- */

struct errmap {
    const char *prefix;
    int code;
};

/* Error strings of zdb / 0-db v2 (spec zdb.md section 4), matched as prefixes. */
static const struct errmap error_map[] = {
    {"No space left on this namespace", QS_EFULL},
    {"Namespace protected and private", QS_EDENIED},
    {"Access denied", QS_EDENIED},
    {"Permission denied", QS_EDENIED},
    {"Namespace is in read-only mode", QS_EDENIED},
    {"Namespace is temporarily locked", QS_EDENIED},
    {"Namespace is protected by worm mode", QS_EDENIED},
    {"Cannot delete a key when namespace is in worm mode", QS_EDENIED},
    {"Namespace is temporarily frozen", QS_EBUSY},
    {"Namespace not found", QS_ENOTFOUND},
    {"Key not found", QS_ENOTFOUND},
    {"This namespace doesn't exists", QS_ENOTFOUND},
    {"Your active namespace is not available anymore", QS_ENOTFOUND},
    {"Cannot write data right now: disk full", QS_EFULL},
    {"Cannot write data right now", QS_EIO},
    {"Cannot write index right now", QS_EIO},
    {"Internal Error: stored value is damaged", QS_ECORRUPT}, /* ours: CRC mismatch on disk */
    {"Internal Error", QS_EIO},
    {"Payload too big", QS_EINVAL},
    {"Invalid key", QS_EINVAL},
    {"Invalid argument", QS_EINVAL},
    {"Key too large", QS_EINVAL},
    {"Unexpected arguments", QS_EINVAL},
    {"Command not supported", QS_EINVAL},
    {"Password too long", QS_EINVAL},
    {"Only SECURE extra method supported", QS_EINVAL},
    {"No CHALLENGE requested", QS_EDENIED},
    {"Invalid hash length", QS_EINVAL},
};

int qs_zdb_error_code(const char *text, size_t len)
{
    for (size_t i = 0; i < sizeof(error_map) / sizeof(error_map[0]); i++) {
        size_t n = strlen(error_map[i].prefix);
        if (len >= n && memcmp(text, error_map[i].prefix, n) == 0)
            return error_map[i].code;
    }
    return QS_EIO;
}

/* ---- NSINFO ---- */

enum nsfield { F_U64, F_BOOL, F_MODE, F_NAME };

#define HAVE_ENTRIES 1u
#define HAVE_SIZE    2u

struct nsline {
    const char *key;
    enum nsfield type;
    size_t off; /* offset of the field in struct qs_zdb_nsinfo */
    unsigned have;
};

#define U64(k, h)                                                                                  \
    {                                                                                              \
#k, F_U64, offsetof(struct qs_zdb_nsinfo, k), h                                            \
    }
#define BOOL(k, f)                                                                                 \
    {                                                                                              \
        k, F_BOOL, offsetof(struct qs_zdb_nsinfo, f), 0                                            \
    }

static const struct nsline ns_lines[] = {
    {"name", F_NAME, offsetof(struct qs_zdb_nsinfo, name), 0},
    {"mode", F_MODE, offsetof(struct qs_zdb_nsinfo, mode), 0},
    BOOL("public", public_),
    BOOL("worm", worm),
    BOOL("locked", locked),
    BOOL("password", password),
    U64(entries, HAVE_ENTRIES),
    U64(data_size_bytes, HAVE_SIZE),
    U64(data_limits_bytes, 0),
    U64(index_size_bytes, 0),
    U64(index_disk_freespace_bytes, 0),
    U64(data_disk_freespace_bytes, 0),
    U64(stats_index_io_errors, 0),
    U64(stats_index_faults, 0),
    U64(stats_data_io_errors, 0),
    U64(stats_data_faults, 0),
};

static int ns_field(struct qs_zdb_nsinfo *out, const struct nsline *f, const char *v, size_t vlen,
                    unsigned *have)
{
    char *base = (char *)out;
    switch (f->type) {
    case F_U64: {
        uint64_t x;
        if (qs_parse_u64(v, vlen, &x) < 0)
            return qs_err_set(QS_EPROTO, "NSINFO: bad number for %s: \"%.*s\"", f->key,
                              (int)(vlen > 40 ? 40 : vlen), v);
        memcpy(base + f->off, &x, sizeof(x));
        break;
    }
    case F_BOOL: {
        bool b;
        if (vlen == 3 && memcmp(v, "yes", 3) == 0)
            b = true;
        else if (vlen == 2 && memcmp(v, "no", 2) == 0)
            b = false;
        else
            return qs_err_set(QS_EPROTO, "NSINFO: bad yes/no for %s: \"%.*s\"", f->key,
                              (int)(vlen > 40 ? 40 : vlen), v);
        memcpy(base + f->off, &b, sizeof(b));
        break;
    }
    case F_MODE:
        if (vlen == 7 && memcmp(v, "userkey", 7) == 0)
            out->mode = QS_ZDB_MODE_USER;
        else if (vlen == 10 && memcmp(v, "sequential", 10) == 0)
            out->mode = QS_ZDB_MODE_SEQ;
        else
            out->mode = QS_ZDB_MODE_UNKNOWN; /* e.g. 0-db 1.x "direct-key" */
        break;
    case F_NAME:
        if (vlen >= sizeof(out->name))
            return qs_err_set(QS_EPROTO, "NSINFO: namespace name too long");
        memcpy(out->name, v, vlen);
        out->name[vlen] = '\0';
        break;
    }
    *have |= f->have;
    return 0;
}

int qs_zdb_nsinfo_parse(const char *text, size_t len, struct qs_zdb_nsinfo *out)
{
    memset(out, 0, sizeof(*out));
    out->index_disk_freespace_bytes = QS_ZDB_UNKNOWN;
    out->data_disk_freespace_bytes = QS_ZDB_UNKNOWN;
    out->stats_index_io_errors = QS_ZDB_UNKNOWN;
    out->stats_index_faults = QS_ZDB_UNKNOWN;
    out->stats_data_io_errors = QS_ZDB_UNKNOWN;
    out->stats_data_faults = QS_ZDB_UNKNOWN;
    unsigned have = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n == 0 || line[0] == '#')
            continue;
        const char *sep = memchr(line, ':', n);
        if (!sep)
            continue;
        size_t klen = (size_t)(sep - line);
        const char *v = sep + 1;
        size_t vlen = n - klen - 1;
        while (vlen > 0 && *v == ' ') {
            v++;
            vlen--;
        }
        for (size_t i = 0; i < sizeof(ns_lines) / sizeof(ns_lines[0]); i++) {
            const struct nsline *f = &ns_lines[i];
            if (strlen(f->key) == klen && memcmp(f->key, line, klen) == 0) {
                int rc = ns_field(out, f, v, vlen, &have);
                if (rc < 0)
                    return rc;
                break;
            }
        }
    }
    if (!(have & HAVE_ENTRIES))
        return qs_err_set(QS_EPROTO, "NSINFO: no \"entries\" line");
    if (!(have & HAVE_SIZE))
        return qs_err_set(QS_EPROTO, "NSINFO: no \"data_size_bytes\" line");
    return 0;
}

uint64_t qs_zdb_nsinfo_free(const struct qs_zdb_nsinfo *i)
{
    uint64_t free_ = QS_ZDB_UNKNOWN;
    if (i->data_limits_bytes != 0)
        free_ = i->data_size_bytes >= i->data_limits_bytes
                    ? 0
                    : i->data_limits_bytes - i->data_size_bytes;
    if (i->data_disk_freespace_bytes < free_)
        free_ = i->data_disk_freespace_bytes;
    if (i->index_disk_freespace_bytes < free_)
        free_ = i->index_disk_freespace_bytes;
    return free_;
}
