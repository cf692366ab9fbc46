/* zstor config loading and validation (see config.h). */
#include "config/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "codec/compress.h"
#include "config/private.h"
#include "config/redundancy.h"
#include "toml/toml.h"
#include "util/mem.h"

/* Defaults of our additions (README "zstor config" lists them with the reasons). */
#define DEF_CHUNK_SIZE            (1u << 20)
#define MIN_CHUNK_SIZE            4096u
#define DEF_META_DATA             2
#define DEF_META_PARITY           2
#define DEF_CONNECT_TIMEOUT_MS    3000
#define DEF_REQUEST_TIMEOUT_MS    30000
#define DEF_RETRIES               3
#define DEF_RETRY_BACKOFF_MS      200
#define DEF_HEALTH_INTERVAL_S     10
#define DEF_REPAIR_INTERVAL_S     600
#define DEF_REPAIR_GRACE_S        900
#define DEF_MAX_CONCURRENT_STORES 4
#define DEF_SCRUB_INTERVAL_S      86400
#define DEF_SCRUB_RATE_MIB_S      20

#define MAX_ADDRESS_LEN  1024
#define MAX_NS_LEN       128 /* zdb's namespace name limit */
#define MAX_PASSWORD_LEN 1024
#define MAX_PREFIX_LEN   200 /* "/{prefix}/meta/{32 hex}" must fit zdb's 255-byte keys */

static int hex_digit(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* [...encryption]: algorithm = "AES", key = 64 hex digits. */
static int get_encryption(const struct ctx *c, const struct toml_table *parent, const char *path,
                          unsigned parent_line, uint8_t key[ZSTOR_KEY_LEN])
{
    static const char *const allowed[] = {"algorithm", "key", NULL};
    char epath[64], full[160];
    zcfg_join(epath, sizeof(epath), path, "encryption");
    const struct toml_value *tv;
    int rc = zcfg_get_table(c, parent, path, parent_line, "encryption", &tv);
    if (rc)
        return rc;
    const struct toml_table *t = tv->u.table;
    if ((rc = zcfg_check_keys(c, t, epath, allowed)))
        return rc;
    const struct toml_value *v;
    if ((rc = zcfg_lookup(c, t, epath, tv->line, "algorithm", true, TOML_STRING, &v)))
        return rc;
    if (strcasecmp(v->u.str.ptr, "AES") != 0 || v->u.str.len != 3) {
        char pv[40];
        return zcfg_bad(c, v->line, zcfg_join(full, sizeof(full), epath, "algorithm"),
                        "unknown algorithm \"%s\" (expected \"AES\", AES-256-GCM)",
                        zcfg_printable(v->u.str.ptr, v->u.str.len, pv, sizeof(pv)));
    }
    if ((rc = zcfg_lookup(c, t, epath, tv->line, "key", true, TOML_STRING, &v)))
        return rc;
    zcfg_join(full, sizeof(full), epath, "key");
    /* never quote the key itself in a message */
    if (v->u.str.len != 2 * ZSTOR_KEY_LEN)
        return zcfg_bad(c, v->line, full, "must be %d hex digits (%d bytes), got %zu characters",
                        2 * ZSTOR_KEY_LEN, ZSTOR_KEY_LEN, v->u.str.len);
    for (size_t i = 0; i < 2 * ZSTOR_KEY_LEN; i++) {
        if (hex_digit((unsigned char)v->u.str.ptr[i]) < 0) {
            qs_wipe(key, ZSTOR_KEY_LEN);
            return zcfg_bad(c, v->line, full,
                            "must be %d hex digits: character %zu is not a hex digit",
                            2 * ZSTOR_KEY_LEN, i + 1);
        }
        int d = hex_digit((unsigned char)v->u.str.ptr[i]);
        if (i % 2 == 0)
            key[i / 2] = (uint8_t)(d << 4);
        else
            key[i / 2] |= (uint8_t)d;
    }
    return 0;
}

/* ---- backend addresses ---------------------------------------------------------------- */

static bool valid_hostname(const char *h, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || h[i] == '.') {
            if (label == 0 || label > 63 || h[i - 1] == '-' || h[i - label] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)h[i]) && h[i] != '-')
            return false;
        label++;
    }
    return true;
}

static int parse_port(const struct ctx *c, unsigned line, const char *full, const char *addr,
                      const char *p, uint16_t *port)
{
    size_t n = strlen(p);
    unsigned long v = 0;
    if (n == 0 || n > 5)
        return zcfg_bad(c, line, full, "bad address \"%s\": the port must be a number 1..65535",
                        addr);
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return zcfg_bad(c, line, full, "bad address \"%s\": the port must be a number 1..65535",
                            addr);
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return zcfg_bad(c, line, full, "bad address \"%s\": the port must be a number 1..65535",
                        addr);
    *port = (uint16_t)v;
    return 0;
}

static int parse_path_address(const struct ctx *c, unsigned line, const char *full,
                              struct zstor_backend *b, const char *shown, const char *path)
{
    if (path[0] != '/')
        return zcfg_bad(c, line, full,
                        "bad address \"%s\": the path must be absolute (%s:///path, three slashes)",
                        shown, b->kind == ZSTOR_ADDR_UNIX ? "unix" : "dir");
    size_t n = strlen(path);
    if (b->kind == ZSTOR_ADDR_UNIX && n >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return zcfg_bad(c, line, full, "bad address \"%s\": a socket path is at most %zu bytes",
                        shown, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    while (n > 1 && path[n - 1] == '/')
        n--;
    b->path = zcfg_dup_mem(path, n);
    return b->path ? 0 : zcfg_nomem();
}

/* Fills kind, host, port, path from b->address. */
static int parse_address(const struct ctx *c, unsigned line, const char *full,
                         struct zstor_backend *b)
{
    char a[96];
    zcfg_printable(b->address, strlen(b->address), a, sizeof(a));
    static const char forms[] = "expected [ipv6]:port, ipv4:port, host:port, unix:///path or "
                                "dir:///path";
    if (strncmp(b->address, "unix://", 7) == 0) {
        b->kind = ZSTOR_ADDR_UNIX;
        return parse_path_address(c, line, full, b, a, b->address + 7);
    }
    if (strncmp(b->address, "dir://", 6) == 0) {
        b->kind = ZSTOR_ADDR_DIR;
        return parse_path_address(c, line, full, b, a, b->address + 6);
    }
    if (strstr(b->address, "://"))
        return zcfg_bad(c, line, full, "bad address \"%s\": unknown scheme (%s)", a, forms);
    b->kind = ZSTOR_ADDR_TCP;
    const char *host, *port, *addr = b->address;
    size_t hostlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return zcfg_bad(c, line, full, "bad address \"%s\": %s", a, forms);
        host = addr + 1;
        hostlen = (size_t)(close - host);
        port = close + 2;
        char ip[INET6_ADDRSTRLEN + 1];
        const char *zone = memchr(host, '%', hostlen);
        size_t iplen = zone ? (size_t)(zone - host) : hostlen;
        struct in6_addr in6;
        if (iplen >= sizeof(ip))
            return zcfg_bad(c, line, full, "bad address \"%s\": not an IPv6 address", a);
        memcpy(ip, host, iplen);
        ip[iplen] = '\0';
        if (inet_pton(AF_INET6, ip, &in6) != 1)
            return zcfg_bad(c, line, full, "bad address \"%s\": not an IPv6 address", a);
        if (zone) {
            size_t zl = hostlen - iplen - 1;
            bool ok = zl > 0 && zl < 16;
            for (size_t i = 1; ok && i <= zl; i++)
                ok = isalnum((unsigned char)zone[i]) || zone[i] == '_' || zone[i] == '-' ||
                     zone[i] == '.';
            if (!ok)
                return zcfg_bad(c, line, full, "bad address \"%s\": bad IPv6 zone (interface name)",
                                a);
        }
        b->host_is_ip = true;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon)
            return zcfg_bad(c, line, full, "bad address \"%s\": missing port (%s)", a, forms);
        host = addr;
        hostlen = (size_t)(colon - addr);
        port = colon + 1;
        if (memchr(host, ':', hostlen))
            return zcfg_bad(c, line, full,
                            "bad address \"%s\": write an IPv6 address in brackets, [addr]:port",
                            a);
        bool numeric = hostlen > 0;
        for (size_t i = 0; i < hostlen; i++)
            numeric = numeric && (isdigit((unsigned char)host[i]) || host[i] == '.');
        if (numeric) {
            char ip[INET_ADDRSTRLEN + 1];
            struct in_addr in4;
            if (hostlen >= sizeof(ip))
                return zcfg_bad(c, line, full, "bad address \"%s\": not an IPv4 address", a);
            memcpy(ip, host, hostlen);
            ip[hostlen] = '\0';
            if (inet_pton(AF_INET, ip, &in4) != 1)
                return zcfg_bad(c, line, full, "bad address \"%s\": not an IPv4 address", a);
            b->host_is_ip = true;
        } else if (!valid_hostname(host, hostlen)) {
            return zcfg_bad(c, line, full, "bad address \"%s\": not a valid host name", a);
        }
    }
    int rc = parse_port(c, line, full, a, port, &b->port);
    if (rc)
        return rc;
    b->host = zcfg_dup_mem(host, hostlen);
    return b->host ? 0 : zcfg_nomem();
}

/* The identity of a backend for duplicate detection: canonical address + namespace. */
static char *backend_identity(const struct zstor_backend *b)
{
    char host[300];
    if (b->kind == ZSTOR_ADDR_TCP) {
        snprintf(host, sizeof(host), "%s", b->host);
        char *zone = strchr(host, '%');
        if (zone)
            *zone = '\0';
        struct in6_addr in6;
        struct in_addr in4;
        char canon[INET6_ADDRSTRLEN];
        if (inet_pton(AF_INET6, host, &in6) == 1 &&
            inet_ntop(AF_INET6, &in6, canon, sizeof(canon))) {
            const char *z = strchr(b->host, '%');
            snprintf(host, sizeof(host), "[%s%s]", canon, z ? z : "");
        } else if (inet_pton(AF_INET, host, &in4) == 1 &&
                   inet_ntop(AF_INET, &in4, canon, sizeof(canon))) {
            snprintf(host, sizeof(host), "%s", canon);
        } else {
            for (char *p = host; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        }
    }
    size_t n = strlen(b->ns) + (b->path ? strlen(b->path) : 0) + sizeof(host) + 32;
    char *id = malloc(n);
    if (!id)
        return NULL;
    if (b->kind == ZSTOR_ADDR_TCP)
        snprintf(id, n, "tcp %s %u", host, b->port);
    else
        snprintf(id, n, "%s %s", zstor_addr_kind_name(b->kind), b->path);
    /* the namespace after a NUL-free separator that cannot occur in an address */
    size_t l = strlen(id);
    snprintf(id + l, n - l, "\n%s", b->ns);
    return id;
}

struct ident {
    char *id;
    const struct zstor_backend *b;
    char path[80]; /* "groups[1].backends[0]" */
};

static int cmp_ident(const void *x, const void *y)
{
    const struct ident *a = x, *b = y;
    int r = strcmp(a->id, b->id);
    if (r)
        return r;
    return a->b->line < b->b->line ? -1 : a->b->line > b->b->line;
}

/* No two backends of ids[0..n) (b and path set) share an address and namespace. Frees the
 * identities it computes. */
static int check_duplicates(const struct ctx *c, struct ident *ids, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if (!(ids[i].id = backend_identity(ids[i].b)))
            rc = zcfg_nomem();
    if (!rc && n > 1) {
        qsort(ids, n, sizeof(*ids), cmp_ident);
        for (size_t i = 1; i < n && !rc; i++) {
            if (strcmp(ids[i].id, ids[i - 1].id) != 0)
                continue;
            const struct zstor_backend *b = ids[i].b, *first = ids[i - 1].b;
            char pa[96], pn[64];
            rc = zcfg_bad(c, b->line, ids[i].path,
                          "duplicate backend: address \"%s\" with namespace \"%s\" is already on "
                          "line %u",
                          zcfg_printable(b->address, strlen(b->address), pa, sizeof(pa)),
                          zcfg_printable(b->ns, strlen(b->ns), pn, sizeof(pn)), first->line);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i].id);
    return rc;
}

/* ---- backends, groups, meta ----------------------------------------------------------- */

static void free_backend(struct zstor_backend *b)
{
    free(b->address);
    free(b->host);
    free(b->path);
    free(b->ns);
    if (b->password) {
        qs_wipe(b->password, strlen(b->password));
        free(b->password);
    }
    memset(b, 0, sizeof(*b));
}

static int parse_backend(const struct ctx *c, const struct toml_value *v, const char *path,
                         struct zstor_backend *b)
{
    static const char *const allowed[] = {"address", "namespace", "password", NULL};
    if (v->type != TOML_TABLE)
        return zcfg_bad(c, v->line, path,
                        "expected a table (address, namespace, password), got %s %s",
                        zcfg_article(v->type), toml_type_name(v->type));
    const struct toml_table *t = v->u.table;
    b->line = v->line;
    int rc = zcfg_check_keys(c, t, path, allowed);
    if (!rc)
        rc = zcfg_get_string(c, t, path, v->line, "address", true, false, MAX_ADDRESS_LEN,
                             &b->address, NULL);
    if (!rc)
        rc = zcfg_get_string(c, t, path, v->line, "namespace", false, false, MAX_NS_LEN, &b->ns,
                             NULL);
    if (!rc)
        rc = zcfg_get_string(c, t, path, v->line, "password", false, true, MAX_PASSWORD_LEN,
                             &b->password, NULL);
    if (rc)
        return rc;
    b->ns_given = b->ns != NULL;
    if (!b->ns && !(b->ns = zcfg_dup_mem(ZSTOR_DEFAULT_NS, strlen(ZSTOR_DEFAULT_NS))))
        return zcfg_nomem();
    char full[160];
    const struct toml_value *av = toml_table_get(t, "address");
    return parse_address(c, av->line, zcfg_join(full, sizeof(full), path, "address"), b);
}

/* key = array of backend tables (from [[x.key]] lines or inline), at least one. */
static int parse_backend_list(const struct ctx *c, const struct toml_table *t, const char *path,
                              unsigned table_line, struct zstor_backend **out, size_t *nout)
{
    const struct toml_value *v;
    char bpath[96];
    zcfg_join(bpath, sizeof(bpath), path, "backends");
    int rc = zcfg_lookup(c, t, path, table_line, "backends", true, TOML_ARRAY, &v);
    if (rc)
        return rc;
    const struct toml_array *a = v->u.array;
    if (a->len == 0)
        return zcfg_bad(c, v->line, bpath, "at least one backend is needed");
    *out = calloc(a->len, sizeof(**out));
    if (!*out)
        return zcfg_nomem();
    *nout = a->len;
    for (size_t i = 0; i < a->len; i++) {
        char ipath[128];
        snprintf(ipath, sizeof(ipath), "%s[%zu]", bpath, i);
        if ((rc = parse_backend(c, &a->items[i], ipath, &(*out)[i])))
            return rc;
    }
    return 0;
}

static int parse_meta(const struct ctx *c, const struct toml_table *root)
{
    static const char *const meta_keys[] = {"type", "config", NULL};
    static const char *const config_keys[] = {"prefix",      "encryption",    "backends",
                                              "data_shards", "parity_shards", NULL};
    struct zstor_config *cfg = c->cfg;
    const struct toml_value *mv, *v;
    int rc = zcfg_get_table(c, root, "", 0, "meta", &mv);
    if (rc || (rc = zcfg_check_keys(c, mv->u.table, "meta", meta_keys)))
        return rc;
    if ((rc = zcfg_lookup(c, mv->u.table, "meta", mv->line, "type", true, TOML_STRING, &v)))
        return rc;
    if (v->u.str.len != 3 || strcasecmp(v->u.str.ptr, "zdb") != 0) {
        char pv[40];
        return zcfg_bad(c, v->line, "meta.type", "unknown metadata store \"%s\" (expected \"zdb\")",
                        zcfg_printable(v->u.str.ptr, v->u.str.len, pv, sizeof(pv)));
    }
    const struct toml_value *cv;
    if ((rc = zcfg_get_table(c, mv->u.table, "meta", mv->line, "config", &cv)))
        return rc;
    const struct toml_table *t = cv->u.table;
    if ((rc = zcfg_check_keys(c, t, "meta.config", config_keys)))
        return rc;
    if ((rc = zcfg_get_string(c, t, "meta.config", cv->line, "prefix", true, false, MAX_PREFIX_LEN,
                              &cfg->meta.prefix, NULL)))
        return rc;
    if ((rc = get_encryption(c, t, "meta.config", cv->line, cfg->meta.key)))
        return rc;
    unsigned dl = 0, pl = 0;
    if ((rc = zcfg_get_unsigned(c, t, "meta.config", cv->line, "data_shards", false, 1,
                                ZSTOR_MAX_SHARDS - 1, &cfg->meta.data_shards, &dl)) ||
        (rc = zcfg_get_unsigned(c, t, "meta.config", cv->line, "parity_shards", false, 1,
                                ZSTOR_MAX_SHARDS - 1, &cfg->meta.parity_shards, &pl)))
        return rc;
    unsigned total = cfg->meta.data_shards + cfg->meta.parity_shards;
    if (total > ZSTOR_MAX_SHARDS)
        return zcfg_bad(c, pl ? pl : dl, "meta.config.parity_shards",
                        "data_shards + parity_shards must be at most %d (got %u)", ZSTOR_MAX_SHARDS,
                        total);
    if ((rc = parse_backend_list(c, t, "meta.config", cv->line, &cfg->meta.backends,
                                 &cfg->meta.nbackends)))
        return rc;
    if (cfg->meta.nbackends != total) {
        const struct toml_value *bv = toml_table_get(t, "backends");
        return zcfg_bad(c, bv->line, "meta.config.backends",
                        "needs exactly %u backends (data_shards %u + parity_shards %u), got %zu",
                        total, cfg->meta.data_shards, cfg->meta.parity_shards, cfg->meta.nbackends);
    }
    struct ident *ids = calloc(cfg->meta.nbackends, sizeof(*ids));
    if (!ids)
        return zcfg_nomem();
    for (size_t i = 0; i < cfg->meta.nbackends; i++) {
        ids[i].b = &cfg->meta.backends[i];
        snprintf(ids[i].path, sizeof(ids[i].path), "meta.config.backends[%zu]", i);
    }
    rc = check_duplicates(c, ids, cfg->meta.nbackends);
    free(ids);
    return rc;
}

static int parse_groups(const struct ctx *c, const struct toml_table *root)
{
    static const char *const group_keys[] = {"backends", NULL};
    struct zstor_config *cfg = c->cfg;
    const struct toml_value *v;
    int rc = zcfg_lookup(c, root, "", 0, "groups", true, TOML_ARRAY, &v);
    if (rc)
        return rc;
    const struct toml_array *a = v->u.array;
    cfg->lines.groups = v->line;
    if (a->len == 0)
        return zcfg_bad(c, v->line, "groups", "at least one group is needed");
    cfg->groups = calloc(a->len, sizeof(*cfg->groups));
    if (!cfg->groups)
        return zcfg_nomem();
    cfg->ngroups = a->len;
    size_t total = 0;
    for (size_t i = 0; i < a->len; i++) {
        const struct toml_value *gv = &a->items[i];
        char gpath[64];
        snprintf(gpath, sizeof(gpath), "groups[%zu]", i);
        if (gv->type != TOML_TABLE)
            return zcfg_bad(c, gv->line, gpath, "expected a table with backends, got %s %s",
                            zcfg_article(gv->type), toml_type_name(gv->type));
        struct zstor_group *g = &cfg->groups[i];
        g->line = gv->line;
        if ((rc = zcfg_check_keys(c, gv->u.table, gpath, group_keys)) ||
            (rc = parse_backend_list(c, gv->u.table, gpath, gv->line, &g->backends, &g->nbackends)))
            return rc;
        total += g->nbackends;
    }
    struct ident *ids = calloc(total, sizeof(*ids));
    if (!ids)
        return zcfg_nomem();
    size_t k = 0;
    for (size_t i = 0; i < cfg->ngroups; i++) {
        for (size_t j = 0; j < cfg->groups[i].nbackends; j++, k++) {
            ids[k].b = &cfg->groups[i].backends[j];
            snprintf(ids[k].path, sizeof(ids[k].path), "groups[%zu].backends[%zu]", i, j);
        }
    }
    rc = check_duplicates(c, ids, total);
    free(ids);
    return rc;
}

/* ---- the whole file ------------------------------------------------------------------- */

static int parse_root(const struct ctx *c, const struct toml_table *root)
{
    static const char *const root_keys[] = {
        /* 0-stor_v2 */
        "minimal_shards", "expected_shards", "redundant_groups", "redundant_nodes", "root",
        "socket", "pid_file", "zdb_data_dir_path", "max_zdb_data_dir_size", "zdbfs_mountpoint",
        "prometheus_port", "encryption", "compression", "meta", "groups",
        /* ours */
        "chunk_size", "connect_timeout_ms", "request_timeout_ms", "retries", "retry_backoff_ms",
        "health_interval_s", "repair_interval_s", "repair_grace_s", "queue_path",
        "max_concurrent_stores", "scrub_interval_s", "scrub_rate_mib_s", "prometheus_bind",
        /* the whole stack's table (config/qsfs.c) */
        "qsfs", NULL};
    static const char *const compression_keys[] = {"algorithm", "level", NULL};
    struct zstor_config *cfg = c->cfg;
    struct zstor_config_lines *ln = &cfg->lines;
    int rc = zcfg_check_keys(c, root, "", root_keys);
    if (rc)
        return rc;

    if ((rc = zcfg_get_unsigned(c, root, "", 0, "minimal_shards", true, 1, ZSTOR_MAX_SHARDS - 1,
                                &cfg->minimal_shards, &ln->minimal_shards)))
        return rc;
    int64_t expected = 0;
    if ((rc = zcfg_get_int(c, root, "", 0, "expected_shards", true, 1, ZSTOR_MAX_SHARDS, &expected,
                           &ln->expected_shards)))
        return rc;
    if (expected <= (int64_t)cfg->minimal_shards)
        return zcfg_bad(c, ln->expected_shards, "expected_shards",
                        "must be greater than minimal_shards (got %lld <= %u)", (long long)expected,
                        cfg->minimal_shards);
    cfg->expected_shards = (unsigned)expected;
    if ((rc = zcfg_get_unsigned(c, root, "", 0, "redundant_groups", true, 0, ZSTOR_MAX_SHARDS,
                                &cfg->redundant_groups, &ln->redundant_groups)) ||
        (rc = zcfg_get_unsigned(c, root, "", 0, "redundant_nodes", true, 0, ZSTOR_MAX_SHARDS,
                                &cfg->redundant_nodes, &ln->redundant_nodes)))
        return rc;

    static const struct {
        const char *key;
        size_t off;
    } paths[] = {
        {"root", offsetof(struct zstor_config, root)},
        {"socket", offsetof(struct zstor_config, socket)},
        {"pid_file", offsetof(struct zstor_config, pid_file)},
        {"zdb_data_dir_path", offsetof(struct zstor_config, zdb_data_dir_path)},
        {"zdbfs_mountpoint", offsetof(struct zstor_config, zdbfs_mountpoint)},
        {"queue_path", offsetof(struct zstor_config, queue_path)},
        {"prometheus_bind", offsetof(struct zstor_config, prometheus_bind)},
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char **dst = (char **)((char *)cfg + paths[i].off);
        if ((rc = zcfg_get_string(c, root, "", 0, paths[i].key, false, false, MAX_PATH_LEN, dst,
                                  NULL)))
            return rc;
    }
    if (cfg->root && cfg->root[0] != '/') {
        /* stored names are absolute paths with root stripped: a relative root holds none */
        char pv[80];
        return zcfg_bad(c, toml_table_get(root, "root")->line, "root",
                        "must be an absolute path (got \"%s\")",
                        zcfg_printable(cfg->root, strlen(cfg->root), pv, sizeof(pv)));
    }
    if (cfg->socket && strlen(cfg->socket) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return zcfg_bad(c, toml_table_get(root, "socket")->line, "socket",
                        "is too long for a unix socket path (at most %zu bytes)",
                        sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    int64_t maxdir = 0;
    if ((rc = zcfg_get_int(c, root, "", 0, "max_zdb_data_dir_size", false, 1,
                           (int64_t)(UINT64_MAX >> 21), &maxdir, NULL)))
        return rc;
    cfg->max_zdb_data_dir_size = (uint64_t)maxdir;
    if ((rc = zcfg_get_unsigned(c, root, "", 0, "prometheus_port", false, 1, 65535,
                                &cfg->prometheus_port, NULL)))
        return rc;

    if ((rc = get_encryption(c, root, "", 0, cfg->key)))
        return rc;

    const struct toml_value *zv, *v;
    if ((rc = zcfg_get_table(c, root, "", 0, "compression", &zv)) ||
        (rc = zcfg_check_keys(c, zv->u.table, "compression", compression_keys)) ||
        (rc = zcfg_lookup(c, zv->u.table, "compression", zv->line, "algorithm", true, TOML_STRING,
                          &v)))
        return rc;
    if (memchr(v->u.str.ptr, '\0', v->u.str.len) ||
        qs_compress_parse(v->u.str.ptr, &cfg->compression) != 0) {
        char pv[40];
        return zcfg_bad(c, v->line, "compression.algorithm",
                        "unknown algorithm \"%s\" (expected snappy, zstd, lz4 or none)",
                        zcfg_printable(v->u.str.ptr, v->u.str.len, pv, sizeof(pv)));
    }
    unsigned level_line = 0;
    int64_t level = 0;
    if ((rc = zcfg_get_int(c, zv->u.table, "compression", zv->line, "level", false, 1, 22, &level,
                           &level_line)))
        return rc;
    if (level_line && cfg->compression != QS_COMPRESS_ZSTD)
        return zcfg_bad(c, level_line, "compression.level",
                        "only zstd has levels (algorithm is %s)",
                        qs_compress_name(cfg->compression));
    cfg->compression_level = (int)level;

    if ((rc = parse_meta(c, root)) || (rc = parse_groups(c, root)))
        return rc;

    int64_t chunk = cfg->chunk_size;
    if ((rc = zcfg_get_int(c, root, "", 0, "chunk_size", false, MIN_CHUNK_SIZE, QS_CODEC_CHUNK_MAX,
                           &chunk, NULL)))
        return rc;
    cfg->chunk_size = (uint32_t)chunk;
    if ((rc = zcfg_get_unsigned(c, root, "", 0, "connect_timeout_ms", false, 1, 600000,
                                &cfg->connect_timeout_ms, NULL)) ||
        (rc = zcfg_get_unsigned(c, root, "", 0, "request_timeout_ms", false, 1, 3600000,
                                &cfg->request_timeout_ms, NULL)) ||
        (rc = zcfg_get_unsigned(c, root, "", 0, "retries", false, 0, 100, &cfg->retries, NULL)) ||
        (rc = zcfg_get_unsigned(c, root, "", 0, "retry_backoff_ms", false, 0, 600000,
                                &cfg->retry_backoff_ms, NULL)) ||
        (rc = zcfg_get_unsigned(c, root, "", 0, "health_interval_s", false, 1, 86400,
                                &cfg->health_interval_s, NULL)) ||
        (rc = zcfg_get_unsigned(c, root, "", 0, "repair_interval_s", false, 1, 7 * 86400,
                                &cfg->repair_interval_s, NULL)) ||
        (rc = zcfg_get_unsigned(c, root, "", 0, "repair_grace_s", false, 0, 30 * 86400,
                                &cfg->repair_grace_s, NULL)) ||
        (rc = zcfg_get_unsigned(c, root, "", 0, "max_concurrent_stores", false, 1, 256,
                                &cfg->max_concurrent_stores, NULL)) ||
        (rc = zcfg_get_unsigned(c, root, "", 0, "scrub_interval_s", false, 0, 365 * 86400,
                                &cfg->scrub_interval_s, NULL)) ||
        (rc = zcfg_get_unsigned(c, root, "", 0, "scrub_rate_mib_s", false, 0, 1 << 20,
                                &cfg->scrub_rate_mib_s, NULL)))
        return rc;
    if ((rc = zcfg_parse_qsfs(c, root)))
        return rc;
    if (!cfg->queue_path && cfg->socket) {
        size_t n = strlen(cfg->socket);
        if (!(cfg->queue_path = malloc(n + sizeof(".queue"))))
            return zcfg_nomem();
        memcpy(cfg->queue_path, cfg->socket, n);
        memcpy(cfg->queue_path + n, ".queue", sizeof(".queue"));
    }
    return 0;
}

static void set_defaults(struct zstor_config *cfg)
{
    cfg->compression = QS_COMPRESS_SNAPPY;
    cfg->meta.data_shards = DEF_META_DATA;
    cfg->meta.parity_shards = DEF_META_PARITY;
    cfg->chunk_size = DEF_CHUNK_SIZE;
    cfg->connect_timeout_ms = DEF_CONNECT_TIMEOUT_MS;
    cfg->request_timeout_ms = DEF_REQUEST_TIMEOUT_MS;
    cfg->retries = DEF_RETRIES;
    cfg->retry_backoff_ms = DEF_RETRY_BACKOFF_MS;
    cfg->health_interval_s = DEF_HEALTH_INTERVAL_S;
    cfg->repair_interval_s = DEF_REPAIR_INTERVAL_S;
    cfg->repair_grace_s = DEF_REPAIR_GRACE_S;
    cfg->max_concurrent_stores = DEF_MAX_CONCURRENT_STORES;
    cfg->scrub_interval_s = DEF_SCRUB_INTERVAL_S;
    cfg->scrub_rate_mib_s = DEF_SCRUB_RATE_MIB_S;
}

/* Overwrites every string of the document (keys and passwords live there too). */
static void wipe_value(const struct toml_value *v)
{
    if (v->type == TOML_STRING) {
        qs_wipe(v->u.str.ptr, v->u.str.len);
    } else if (v->type == TOML_TABLE) {
        for (size_t i = 0; i < v->u.table->len; i++)
            wipe_value(&v->u.table->items[i].value);
    } else if (v->type == TOML_ARRAY) {
        for (size_t i = 0; i < v->u.array->len; i++)
            wipe_value(&v->u.array->items[i]);
    }
}

int zstor_config_parse(const char *text, size_t len, const char *name, struct zstor_config **out)
{
    *out = NULL;
    if (!name)
        name = "config";
    if (len > ZSTOR_CONFIG_MAX_SIZE)
        return qs_err_set(QS_EINVAL, "%s: too large (%zu bytes, at most %d)", name, len,
                          ZSTOR_CONFIG_MAX_SIZE);
    struct zstor_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return zcfg_nomem();
    set_defaults(cfg);
    if (!(cfg->name = zcfg_dup_mem(name, strlen(name)))) {
        free(cfg);
        return zcfg_nomem();
    }
    struct toml_doc *doc = NULL;
    struct toml_error terr;
    int rc = toml_parse(text, len, &doc, &terr);
    if (rc == QS_EINVAL)
        rc = qs_err_set(QS_EINVAL, "%s:%u:%u: %s", cfg->name, terr.line, terr.column, terr.msg);
    if (!rc) {
        struct ctx c = {.name = cfg->name, .cfg = cfg};
        rc = parse_root(&c, toml_doc_root(doc));
    }
    if (doc) {
        wipe_value(&doc->root);
        toml_free(doc);
    }
    if (rc) {
        zstor_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int zstor_config_load(const char *path, struct zstor_config **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qs_err_sys(QS_EIO, errno, "%s: cannot open the config file", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return qs_err_sys(QS_EIO, e, "%s: cannot read the config file", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return qs_err_set(QS_EIO, "%s: not a regular file", path);
    }
    if (st.st_size > ZSTOR_CONFIG_MAX_SIZE) {
        close(fd);
        return qs_err_set(QS_EINVAL, "%s: too large (%lld bytes, at most %d)", path,
                          (long long)st.st_size, ZSTOR_CONFIG_MAX_SIZE);
    }
    /* read up to one byte past the limit, in case the file grew since fstat */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *text = malloc(cap);
    if (!text) {
        close(fd);
        return zcfg_nomem();
    }
    for (;;) {
        ssize_t r = read(fd, text + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            qs_wipe(text, len);
            free(text);
            close(fd);
            return qs_err_sys(QS_EIO, e, "%s: cannot read the config file", path);
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap) {
            if (cap > ZSTOR_CONFIG_MAX_SIZE) {
                qs_wipe(text, len);
                free(text);
                close(fd);
                return qs_err_set(QS_EINVAL, "%s: too large (at most %d bytes)", path,
                                  ZSTOR_CONFIG_MAX_SIZE);
            }
            char *bigger = realloc(text, cap * 2);
            if (!bigger) {
                qs_wipe(text, len);
                free(text);
                close(fd);
                return zcfg_nomem();
            }
            text = bigger;
            cap *= 2;
        }
    }
    close(fd);
    int rc = zstor_config_parse(text, len, path, out);
    qs_wipe(text, len);
    free(text);
    return rc;
}

int zstor_config_check_redundancy(const struct zstor_config *cfg)
{
    unsigned *size = calloc(cfg->ngroups ? cfg->ngroups : 1, sizeof(*size));
    unsigned *alloc = calloc(cfg->ngroups ? cfg->ngroups : 1, sizeof(*alloc));
    if (!size || !alloc) {
        free(size);
        free(alloc);
        return zcfg_nomem();
    }
    for (size_t g = 0; g < cfg->ngroups; g++)
        size[g] = cfg->groups[g].nbackends > ZSTOR_MAX_SHARDS ? ZSTOR_MAX_SHARDS
                                                              : (unsigned)cfg->groups[g].nbackends;
    int rc = zstor_redundancy_plan(size, cfg->ngroups, cfg->minimal_shards, cfg->expected_shards,
                                   cfg->redundant_groups, cfg->redundant_nodes, alloc);
    free(size);
    free(alloc);
    if (rc == QS_ETOOFEW) {
        char why[256];
        snprintf(why, sizeof(why), "%s", qs_err_msg());
        struct ctx c = {.name = cfg->name, .cfg = NULL};
        zcfg_bad(
            &c, cfg->lines.expected_shards, "expected_shards",
            "the groups cannot hold the redundancy asked (minimal_shards %u, redundant_groups %u, "
            "redundant_nodes %u): %s",
            cfg->minimal_shards, cfg->redundant_groups, cfg->redundant_nodes, why);
    }
    return rc;
}

void zstor_config_free(struct zstor_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->meta.nbackends; i++)
        free_backend(&cfg->meta.backends[i]);
    free(cfg->meta.backends);
    for (size_t g = 0; g < cfg->ngroups; g++) {
        for (size_t i = 0; i < cfg->groups[g].nbackends; i++)
            free_backend(&cfg->groups[g].backends[i]);
        free(cfg->groups[g].backends);
    }
    free(cfg->groups);
    free(cfg->meta.prefix);
    free(cfg->name);
    free(cfg->root);
    free(cfg->socket);
    free(cfg->pid_file);
    free(cfg->zdb_data_dir_path);
    free(cfg->zdbfs_mountpoint);
    free(cfg->queue_path);
    free(cfg->prometheus_bind);
    free(cfg->qsfs.dir);
    free(cfg->qsfs.mountpoint);
    free(cfg->qsfs.zdbfs_options);
    qs_wipe(cfg, sizeof(*cfg)); /* both keys */
    free(cfg);
}

const char *zstor_addr_kind_name(enum zstor_addr_kind kind)
{
    switch (kind) {
    case ZSTOR_ADDR_TCP:
        return "tcp";
    case ZSTOR_ADDR_UNIX:
        return "unix";
    case ZSTOR_ADDR_DIR:
        return "dir";
    }
    return "?";
}
