/* NSNEW NSDEL NSLIST NSSET NSINFO NSJUMP SELECT FLUSH */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

#include "util/parse.h"
#include "zdb/commands.h"
#include "zdb/hooks.h"
#include "zdb/reply.h"

#define NSSET_VALUE_MAX 63
#define SELECT_PASS_MAX 128

int zdb_secure_check(struct zdb_client *c, const struct resp_arg *hash, const char *password);

static struct zdb_ns *find_ns(struct zdb_server *srv, const struct resp_arg *a)
{
    return zdb_store_find(srv->store, (const char *)a->ptr, a->len);
}

/* namespace-created / -updated / -deleted: non-blocking hooks. */
static void ns_hook(struct zdb_server *srv, const char *event, const char *name)
{
    if (srv->hooks)
        zdb_hooks_start(srv->hooks, event, &name, 1);
}

static bool arg_is(const struct resp_arg *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && strncasecmp((const char *)a->ptr, s, n) == 0;
}

int cmd_nsnew(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (!cmd_admin(c))
        return CMD_DENIED;
    if (!cmd_args_nonempty(c, r, 2))
        return CMD_FAILED;
    const struct resp_arg *n = &r->argv[1];
    if (n->len > ZDB_NS_NAME_MAX) {
        reply_error(c, "Namespace too long");
        return CMD_FAILED;
    }
    if (arg_is(n, ".") || arg_is(n, "..") || memchr(n->ptr, '/', n->len) ||
        (n->len == 7 && memcmp(n->ptr, "default", 7) == 0) || memchr(n->ptr, '\0', n->len)) {
        reply_error(c, "This name is not allowed");
        return CMD_FAILED;
    }
    if (find_ns(srv, n)) {
        reply_error(c, "This namespace is not available");
        return CMD_FAILED;
    }
    char name[ZDB_NS_NAME_MAX + 1];
    memcpy(name, n->ptr, n->len);
    name[n->len] = '\0';
    struct zdb_ns *ns;
    if (zdb_store_create(srv->store, name, &ns) < 0) {
        reply_error(c, "Cannot create namespace");
        return CMD_FAILED;
    }
    ns_hook(srv, "namespace-created", name);
    reply_status(c, "OK");
    return CMD_OK;
}

int cmd_nsdel(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (!cmd_admin(c))
        return CMD_DENIED;
    if (!cmd_args_nonempty(c, r, 2))
        return CMD_FAILED;
    const struct resp_arg *n = &r->argv[1];
    if (n->len == 7 && memcmp(n->ptr, "default", 7) == 0) {
        reply_error(c, "Cannot remove default namespace");
        return CMD_FAILED;
    }
    struct zdb_ns *ns = find_ns(srv, n);
    if (!ns) {
        reply_error(c, "This namespace doesn't exists");
        return CMD_FAILED;
    }
    if (c->ns == ns) {
        reply_error(c, "Cannot remove namespace you're currently using.");
        return CMD_FAILED;
    }
    char name[ZDB_NS_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s", ns->name);
    zdb_server_ns_removed(srv, ns);
    if (zdb_store_remove(srv->store, ns) < 0) {
        reply_error(c, "Cannot remove namespace files");
        return CMD_FAILED;
    }
    ns_hook(srv, "namespace-deleted", name);
    reply_status(c, "OK");
    return CMD_OK;
}

int cmd_nslist(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    reply_array(c, srv->store->nns);
    for (size_t i = 0; i < srv->store->nns; i++)
        reply_bulk(c, srv->store->ns[i]->name, strlen(srv->store->ns[i]->name));
    return CMD_OK;
}

static int parse_flag(const struct resp_arg *v, bool *out)
{
    if (arg_is(v, "1")) {
        *out = true;
        return 0;
    }
    if (arg_is(v, "0")) {
        *out = false;
        return 0;
    }
    return -1;
}

int cmd_nsset(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (!cmd_admin(c))
        return CMD_DENIED;
    if (!cmd_args_nonempty(c, r, 4))
        return CMD_FAILED;
    struct zdb_ns *ns = find_ns(srv, &r->argv[1]);
    if (!ns) {
        reply_error(c, "Namespace not found");
        return CMD_FAILED;
    }
    const struct resp_arg *prop = &r->argv[2], *val = &r->argv[3];
    if (val->len > NSSET_VALUE_MAX) {
        reply_error(c, "Argument too long");
        return CMD_FAILED;
    }
    bool is_default = strcmp(ns->name, "default") == 0;
    bool runtime = arg_is(prop, "mode") || arg_is(prop, "lock") || arg_is(prop, "freeze");
    if (is_default && !runtime) {
        reply_error(c, "Cannot update default namespace");
        return CMD_FAILED;
    }
    bool flag;
    if (arg_is(prop, "maxsize")) {
        uint64_t v;
        if (qs_parse_u64((const char *)val->ptr, val->len, &v) < 0) {
            reply_error(c, "Invalid value");
            return CMD_FAILED;
        }
        ns->maxsize = v;
    } else if (arg_is(prop, "password")) {
        if (arg_is(val, "*"))
            ns->password[0] = '\0';
        else
            cmd_arg_str(val, ns->password, sizeof(ns->password));
    } else if (arg_is(prop, "public") || arg_is(prop, "worm") || arg_is(prop, "lock") ||
               arg_is(prop, "freeze")) {
        if (parse_flag(val, &flag) < 0) {
            reply_error(c, "Invalid value");
            return CMD_FAILED;
        }
        if (arg_is(prop, "public"))
            ns->public_ = flag;
        else if (arg_is(prop, "worm"))
            ns->worm = flag;
        else if (arg_is(prop, "lock"))
            ns->locked = flag;
        else
            ns->frozen = flag;
    } else if (arg_is(prop, "mode")) {
        if (srv->cfg->store.fixed_mode >= 0) {
            reply_error(c, "This server instance is configured to use a single runtime mode");
            return CMD_FAILED;
        }
        enum zdb_mode m;
        if (arg_is(val, "user")) {
            m = ZDB_MODE_USER;
        } else if (arg_is(val, "seq")) {
            m = ZDB_MODE_SEQ;
        } else {
            reply_error(c, "Invalid property value (expected: user, seq)");
            return CMD_FAILED;
        }
        if (zdb_ns_set_mode(ns, m) < 0) {
            reply_error(c, "Cannot change mode of used namespace");
            return CMD_FAILED;
        }
    } else {
        reply_error(c, "Invalid property");
        return CMD_FAILED;
    }
    if (!runtime && zdb_ns_save(ns) < 0) {
        reply_error(c, "Cannot write namespace descriptor");
        return CMD_FAILED;
    }
    ns_hook(srv, "namespace-updated", ns->name);
    reply_status(c, "OK");
    return CMD_OK;
}

static void free_space(const char *dir, uint64_t *bytes)
{
    struct statvfs sv;
    *bytes = statvfs(dir, &sv) == 0 ? (uint64_t)sv.f_bavail * sv.f_frsize : 0;
}

#define ZDB_0DB_ENTRY_MEM 64 /* sizeof(index_entry_t) of 0-db v2.0.7 on 64-bit Linux */

int cmd_nsinfo(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (!cmd_args_nonempty(c, r, 2))
        return CMD_FAILED;
    if (r->argv[1].len > ZDB_NS_NAME_MAX) {
        reply_error(c, "Namespace too long");
        return CMD_FAILED;
    }
    struct zdb_ns *ns = find_ns(srv, &r->argv[1]);
    if (!ns) {
        reply_error(c, "Namespace not found");
        return CMD_FAILED;
    }
    uint64_t ifree, dfree;
    free_space(ns->idxdir, &ifree);
    free_space(ns->datdir, &dfree);
    struct qs_buf b;
    qs_buf_init(&b, 64 * 1024);
    const struct zdb_ns_stats *s = &ns->stats;
    uint64_t next = ns->mode == ZDB_MODE_SEQ ? ns->next_id : ns->entries;
    /* As 0-db v2 reports it (its in-memory index: a 64-byte entry plus the key for each
     * live key, as counted when the files are loaded), not the files' size. */
    uint64_t isize = ns->mode == ZDB_MODE_SEQ
                         ? ns->entries * (ZDB_0DB_ENTRY_MEM + ZDB_SEQ_KEY_SIZE)
                         : ns->entries * ZDB_0DB_ENTRY_MEM + zdb_keyindex_keybytes(ns->keys);
    int rc = qs_buf_appendf(
        &b,
        "# namespace\n"
        "name: %s\nentries: %" PRIu64 "\npublic: %s\nworm: %s\nlocked: %s\npassword: %s\n"
        "data_size_bytes: %" PRIu64 "\ndata_size_mb: %.2f\ndata_limits_bytes: %" PRIu64 "\n"
        "index_size_bytes: %" PRIu64 "\nindex_size_kb: %.2f\n"
        "next_internal_id: 0x%08" PRIx64 "\nmode: %s\n"
        "stats_index_io_errors: %" PRIu64 "\nstats_index_io_error_last: %lld\n"
        "stats_index_faults: %" PRIu64 "\n"
        "stats_data_io_errors: %" PRIu64 "\nstats_data_io_error_last: %lld\n"
        "stats_data_faults: %" PRIu64 "\n",
        ns->name, ns->entries, ns->public_ ? "yes" : "no", ns->worm ? "yes" : "no",
        ns->locked ? "yes" : "no", ns->password[0] ? "yes" : "no", ns->datasize,
        ns->datasize / 1048576.0, ns->maxsize, isize, isize / 1024.0, __builtin_bswap64(next),
        ns->mode == ZDB_MODE_SEQ ? "sequential" : "userkey", s->index_io_errors,
        (long long)s->index_io_error_last, s->index_faults, s->data_io_errors,
        (long long)s->data_io_error_last, s->data_faults);
    if (rc == 0 && ns->maxsize)
        rc = qs_buf_appendf(&b, "space_available: %" PRIu64 "\n",
                            ns->maxsize > ns->datasize ? ns->maxsize - ns->datasize : 0);
    if (rc == 0)
        rc = qs_buf_appendf(&b,
                            "index_disk_freespace_bytes: %" PRIu64 "\n"
                            "index_disk_freespace_mb: %.2f\n"
                            "data_disk_freespace_bytes: %" PRIu64 "\n"
                            "data_disk_freespace_mb: %.2f\n",
                            ifree, ifree / 1048576.0, dfree, dfree / 1048576.0);
    if (rc == 0 && c->admin) {
        char ip[4096], dp[4096];
        zdb_ns_path(ns, 'i', ns->fileid, ip, sizeof(ip));
        zdb_ns_path(ns, 'd', ns->fileid, dp, sizeof(dp));
        rc = qs_buf_appendf(&b,
                            "data_path: %s\ndata_active: %s\nindex_path: %s\nindex_active: %s\n"
                            "data_current_id: %u\ndata_current_offset: %" PRIu64 "\n",
                            ns->datdir, dp, ns->idxdir, ip, ns->fileid, ns->dat_size);
    }
    if (rc < 0)
        reply_error(c, "Internal Error");
    else
        reply_bulk(c, qs_buf_ptr(&b), b.len);
    qs_buf_free(&b);
    return rc < 0 ? CMD_FAILED : CMD_OK;
}

int cmd_nsjump(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (!cmd_admin(c))
        return CMD_DENIED;
    if (zdb_ns_jump(c->ns) < 0) {
        reply_error(c, "Cannot jump to the next file");
        return CMD_FAILED;
    }
    reply_status(c, "OK");
    return CMD_OK;
}

static void use_ns(struct zdb_client *c, struct zdb_ns *ns, bool writable)
{
    if (c->ns)
        c->ns->clients--;
    c->ns = ns;
    ns->clients++;
    c->writable = writable;
}

int cmd_select(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (r->argc < 2 || r->argc > 4) {
        reply_error(c, "Unexpected arguments");
        return CMD_FAILED;
    }
    struct zdb_ns *ns = find_ns(srv, &r->argv[1]);
    if (!ns) {
        reply_error(c, "Namespace not found");
        return CMD_FAILED;
    }
    if (r->argc == 4) {
        if (!arg_is(&r->argv[2], "SECURE")) {
            reply_error(c, "Only SECURE extra method supported");
            return CMD_FAILED;
        }
        if (!ns->password[0]) {
            use_ns(c, ns, true);
            reply_status(c, "OK");
            return CMD_OK;
        }
        int rc = zdb_secure_check(c, &r->argv[3], ns->password);
        if (rc != CMD_OK)
            return rc;
        use_ns(c, ns, true);
        reply_status(c, "OK");
        return CMD_OK;
    }
    if (r->argc == 3) {
        const struct resp_arg *p = &r->argv[2];
        if (p->len > SELECT_PASS_MAX) {
            reply_error(c, "Password too long");
            return CMD_FAILED;
        }
        if (ns->password[0] &&
            (p->len != strlen(ns->password) || memcmp(p->ptr, ns->password, p->len) != 0)) {
            reply_error(c, "Access denied");
            return CMD_DENIED;
        }
        use_ns(c, ns, true);
        reply_status(c, "OK");
        return CMD_OK;
    }
    if (ns->password[0]) {
        if (!ns->public_) {
            reply_error(c, "Namespace protected and private");
            return CMD_DENIED;
        }
        use_ns(c, ns, false); /* public with a password: read-only without it */
    } else {
        use_ns(c, ns, true);
    }
    reply_status(c, "OK");
    return CMD_OK;
}

int cmd_flush(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    struct zdb_ns *ns = c->ns;
    if (ns->public_ || !ns->password[0]) {
        reply_error(c, "Flushing public namespace denied");
        return CMD_FAILED;
    }
    if (!c->writable || ns->locked || ns->frozen) {
        reply_error(c, "Namespace is in read-only mode");
        return CMD_FAILED;
    }
    if (zdb_ns_flush(ns) < 0) {
        reply_error(c, "Cannot flush namespace");
        return CMD_FAILED;
    }
    reply_status(c, "OK");
    return CMD_OK;
}
