/* SET GET MGET DEL EXISTS CHECK LENGTH KEYTIME */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/parse.h"
#include "zdb/commands.h"
#include "zdb/hooks.h"
#include "zdb/reply.h"

/* Refuses reads on a frozen namespace. */
static bool can_read(struct zdb_client *c)
{
    if (c->ns->frozen) {
        reply_error(c, "Namespace is temporarily frozen (read-write disabled)");
        return false;
    }
    return true;
}

static bool can_write(struct zdb_client *c)
{
    if (c->ns->frozen) {
        reply_error(c, "Namespace is temporarily frozen (read-write disabled)");
        return false;
    }
    if (c->ns->locked) {
        reply_error(c, "Namespace is temporarily locked (read-only)");
        return false;
    }
    if (!c->writable) {
        reply_error(c, "Namespace is in read-only mode");
        return false;
    }
    return true;
}

static bool parse_ts(struct zdb_client *c, const struct resp_arg *a, uint32_t *ts)
{
    uint64_t v;
    if (qs_parse_u64((const char *)a->ptr, a->len, &v) < 0 || v > UINT32_MAX) {
        reply_error(c, "Invalid timestamp");
        return false;
    }
    *ts = (uint32_t)v;
    return true;
}

/* SET and DEL take an optional trailing timestamp (admin only). Checks the argument
 * count of the plain form (argc) or the timestamp form (argc + 1); returns CMD_OK or the
 * failure, with the error already sent. */
static int timestamp_form(struct zdb_client *c, const struct resp_request *r, int argc,
                          bool nonempty, uint32_t *ts)
{
    *ts = 0;
    if (r->argc == argc + 1) {
        if (!cmd_admin(c))
            return CMD_DENIED;
        return parse_ts(c, &r->argv[argc], ts) ? CMD_OK : CMD_FAILED;
    }
    bool ok = nonempty ? cmd_args_nonempty(c, r, argc) : cmd_args(c, r, argc);
    return ok ? CMD_OK : CMD_FAILED;
}

int cmd_set(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    uint32_t ts;
    int form = timestamp_form(c, r, 3, false, &ts);
    if (form != CMD_OK)
        return form;
    const struct resp_arg *k = &r->argv[1], *v = &r->argv[2];
    if (k->len > ZDB_MAX_KEY) {
        reply_error(c, "Key too large");
        return CMD_FAILED;
    }
    if (!can_write(c))
        return CMD_FAILED;
    struct zdb_ns *ns = c->ns;
    if (ns->mode == ZDB_MODE_USER && k->len == 0) {
        reply_error(c, "Invalid argument, key needed");
        return CMD_FAILED;
    }
    if (ns->worm && k->len > 0) {
        struct zdb_loc loc;
        if (zdb_ns_lookup(ns, k->ptr, k->len, &loc) == 0) {
            reply_error(c, "Namespace is protected by worm mode");
            return CMD_FAILED;
        }
    }
    struct zdb_setres res;
    int rc = zdb_ns_set(ns, k->ptr, k->len, v->ptr, v->len, ts, &res);
    switch (rc) {
    case 0:
        break;
    case QS_EFULL:
        reply_error(c, "No space left on this namespace");
        return CMD_FAILED;
    case ZDB_ESEQKEY:
        reply_error(c, "Invalid key, only update authorized");
        return CMD_FAILED;
    case ZDB_EWRITE_INDEX:
        reply_error(c, "Cannot write index right now");
        return CMD_FAILED;
    case ZDB_EDISKFULL:
        reply_error(c, ZDB_ERR_DISKFULL);
        return CMD_FAILED;
    case QS_EINVAL:
        reply_error(c, "Invalid argument");
        return CMD_FAILED;
    default:
        reply_error(c, "Cannot write data right now");
        return CMD_FAILED;
    }
    if (res.unchanged)
        reply_nil(c);
    else
        reply_bulk(c, res.key, res.keylen);
    return CMD_OK;
}

/* A data file is missing (offloaded): the blocking missing-data hook may bring it back;
 * true when it says so (exit 0). */
static bool restore_data_file(struct zdb_server *srv, struct zdb_ns *ns, uint32_t fileid)
{
    if (!srv->hooks)
        return false;
    char path[4096];
    zdb_ns_path(ns, 'd', fileid, path, sizeof(path));
    const char *args[] = {path};
    return zdb_hooks_run(srv->hooks, "missing-data", args, 1) == 0;
}

int cmd_ns_read(struct zdb_server *srv, struct zdb_ns *ns, const struct zdb_loc *loc, uint8_t *dst,
                bool *crc_ok)
{
    int rc = zdb_ns_read(ns, loc, dst, crc_ok);
    if (rc == QS_ENOTFOUND && restore_data_file(srv, ns, loc->fileid))
        rc = zdb_ns_read(ns, loc, dst, crc_ok); /* once: the file is not cached as missing */
    return rc;
}

int cmd_ns_read_header(struct zdb_server *srv, struct zdb_ns *ns, const struct zdb_loc *loc,
                       struct zdb_dat_entry *e)
{
    int rc = zdb_ns_read_header(ns, loc, e);
    if (rc == QS_ENOTFOUND && restore_data_file(srv, ns, loc->fileid))
        rc = zdb_ns_read_header(ns, loc, e);
    return rc;
}

/* Appends a bulk reply whose payload is read straight from the data file into the output
 * buffer. Returns 0, or a negative code with nothing appended. */
static int reply_payload(struct zdb_server *srv, struct zdb_client *c, const struct zdb_loc *loc,
                         bool *crc_ok)
{
    size_t mark = c->out.len;
    uint8_t *dst = NULL;
    int rc = resp_add_bulk_space(&c->out, loc->length, &dst);
    if (rc == 0)
        rc = cmd_ns_read(srv, c->ns, loc, dst, crc_ok);
    if (rc < 0) {
        c->out.len = mark;
        return rc;
    }
    return 0;
}

static int lookup_arg(struct zdb_client *c, const struct resp_arg *k, struct zdb_loc *loc)
{
    if (k->len > ZDB_MAX_KEY)
        return QS_EINVAL;
    return zdb_ns_lookup(c->ns, k->ptr, k->len, loc);
}

/* One GET-style value: bulk, nil, or an error reply. */
static int get_one(struct zdb_server *srv, struct zdb_client *c, const struct resp_arg *k)
{
    struct zdb_loc loc;
    int rc = lookup_arg(c, k, &loc);
    if (rc == QS_ENOTFOUND || rc == QS_EINVAL) {
        reply_nil(c);
        return CMD_OK;
    }
    if (rc == 0)
        rc = reply_payload(srv, c, &loc, NULL);
    if (rc == QS_ECORRUPT) {
        /* the log names the key too (at most one line a second, whatever clients ask) */
        time_t now = time(NULL);
        if (now != srv->damage_logged) {
            char kt[4 * ZDB_MAX_KEY + 8];
            size_t w = 0;
            for (size_t i = 0; i < k->len && w + 5 < sizeof(kt); i++) {
                unsigned char ch = k->ptr[i];
                w += ch >= 0x20 && ch < 0x7f && ch != '\\'
                         ? (size_t)snprintf(kt + w, sizeof(kt) - w, "%c", ch)
                         : (size_t)snprintf(kt + w, sizeof(kt) - w, "\\x%02x", ch);
            }
            kt[w] = '\0';
            qs_log(QS_LOG_ERROR, "namespace %s: key '%s': stored value damaged in d%u at %u",
                   c->ns->name, kt, loc.fileid, loc.dataoff);
            srv->damage_logged = now;
        }
    }
    if (rc < 0) {
        reply_error(c, rc == QS_ECORRUPT ? ZDB_ERR_DAMAGED : "Internal Error");
        return CMD_FAILED;
    }
    return CMD_OK;
}

int cmd_get(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (!cmd_args_nonempty(c, r, 2))
        return CMD_FAILED;
    if (r->argv[1].len > ZDB_MAX_KEY) {
        reply_error(c, "Invalid key");
        return CMD_FAILED;
    }
    if (!can_read(c))
        return CMD_FAILED;
    return get_one(srv, c, &r->argv[1]);
}

int cmd_mget(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (r->argc < 2) {
        reply_error(c, "Invalid arguments");
        return CMD_FAILED;
    }
    for (int i = 1; i < r->argc; i++) {
        if (r->argv[i].len > ZDB_MAX_KEY) {
            reply_error(c, "Invalid key");
            return CMD_FAILED;
        }
    }
    if (!can_read(c))
        return CMD_FAILED;
    reply_array(c, (size_t)r->argc - 1);
    for (int i = 1; i < r->argc; i++) {
        struct zdb_loc loc;
        int rc = lookup_arg(c, &r->argv[i], &loc);
        if (rc == 0)
            rc = reply_payload(srv, c, &loc, NULL);
        if (rc < 0)
            reply_nil(c); /* an array element cannot be an error without breaking clients */
    }
    return CMD_OK;
}

int cmd_del(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    uint32_t ts;
    int form = timestamp_form(c, r, 2, true, &ts);
    if (form != CMD_OK)
        return form;
    if (r->argv[1].len == 0 || r->argv[1].len > ZDB_MAX_KEY) {
        reply_error(c, "Invalid argument");
        return CMD_FAILED;
    }
    if (!can_write(c))
        return CMD_FAILED;
    struct zdb_loc loc;
    if (zdb_ns_lookup(c->ns, r->argv[1].ptr, r->argv[1].len, &loc) < 0) {
        reply_error(c, "Key not found");
        return CMD_FAILED;
    }
    if (c->ns->worm) {
        reply_error(c, "Cannot delete a key when namespace is in worm mode");
        return CMD_FAILED;
    }
    int rc = zdb_ns_del(c->ns, r->argv[1].ptr, r->argv[1].len, ts);
    if (rc == QS_ENOTFOUND) {
        reply_error(c, "Key not found");
        return CMD_FAILED;
    }
    if (rc == ZDB_EWRITE_INDEX) {
        reply_error(c, "Cannot write index right now");
        return CMD_FAILED;
    }
    if (rc == ZDB_EDISKFULL) {
        reply_error(c, ZDB_ERR_DISKFULL);
        return CMD_FAILED;
    }
    if (rc < 0) {
        reply_error(c, "Cannot write data right now");
        return CMD_FAILED;
    }
    reply_status(c, "OK");
    return CMD_OK;
}

/* EXISTS, LENGTH, KEYTIME and CHECK share their argument handling. */
static bool key_cmd(struct zdb_client *c, const struct resp_request *r, struct zdb_loc *loc,
                    int *found)
{
    if (!cmd_args_nonempty(c, r, 2))
        return false;
    if (r->argv[1].len > ZDB_MAX_KEY) {
        reply_error(c, "Invalid key");
        return false;
    }
    if (!can_read(c))
        return false;
    *found = lookup_arg(c, &r->argv[1], loc) == 0;
    return true;
}

int cmd_exists(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    struct zdb_loc loc;
    int found;
    if (!key_cmd(c, r, &loc, &found))
        return CMD_FAILED;
    reply_int(c, found);
    return CMD_OK;
}

int cmd_length(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    struct zdb_loc loc;
    int found;
    if (!key_cmd(c, r, &loc, &found))
        return CMD_FAILED;
    if (found)
        reply_int(c, loc.length);
    else
        reply_nil(c);
    return CMD_OK;
}

int cmd_keytime(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    struct zdb_loc loc;
    int found;
    if (!key_cmd(c, r, &loc, &found))
        return CMD_FAILED;
    if (!found) {
        reply_nil(c);
        return CMD_OK;
    }
    struct zdb_dat_entry e;
    if (cmd_ns_read_header(srv, c->ns, &loc, &e) < 0) {
        reply_error(c, "Internal Error");
        return CMD_FAILED;
    }
    reply_int(c, e.timestamp);
    return CMD_OK;
}

int cmd_check(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    struct zdb_loc loc;
    int found;
    if (!key_cmd(c, r, &loc, &found))
        return CMD_FAILED;
    if (!found) {
        reply_nil(c);
        return CMD_OK;
    }
    uint8_t *buf = malloc(loc.length ? loc.length : 1);
    if (!buf) {
        reply_int(c, -1);
        return CMD_FAILED;
    }
    bool ok = false;
    int rc = cmd_ns_read(srv, c->ns, &loc, buf, &ok);
    free(buf);
    if (rc == QS_ECORRUPT)
        reply_int(c, 0); /* the entry itself does not match its index */
    else
        reply_int(c, rc < 0 ? -1 : ok ? 1 : 0);
    return CMD_OK;
}
