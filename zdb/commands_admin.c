/* RELOAD INDEX DATA MIRROR MASTER: administrative commands (admin only). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/scan.h"
#include "util/parse.h"
#include "zdb/commands.h"
#include "zdb/reply.h"

static bool arg_is(const struct resp_arg *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && strncasecmp((const char *)a->ptr, s, n) == 0;
}

/* Every argument after the command present and non-empty, at least min of them. */
static bool args_min(struct zdb_client *c, const struct resp_request *r, int min)
{
    if (r->argc < min) {
        reply_error(c, "Missing arguments");
        return false;
    }
    for (int i = 1; i < r->argc; i++) {
        if (r->argv[i].len == 0) {
            reply_error(c, "Invalid argument");
            return false;
        }
    }
    return true;
}

int cmd_reload(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
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
    struct zdb_ns *ns = zdb_store_find(srv->store, (const char *)n->ptr, n->len);
    if (!ns) {
        reply_error(c, "Namespace not found");
        return CMD_FAILED;
    }
    if (zdb_server_reload_ns(srv, ns) < 0) {
        /* the namespace could not be loaded back: it is gone, as after NSDEL */
        reply_error(c, "Cannot reload namespace");
        return CMD_FAILED;
    }
    reply_status(c, "OK");
    return CMD_OK;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* INDEX DIRTY [RESET]: index files of the current namespace modified in place since the
 * last reset (what must be uploaded again after an offload). */
int cmd_index(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (!cmd_admin(c))
        return CMD_DENIED;
    if (!args_min(c, r, 2))
        return CMD_FAILED;
    if (!arg_is(&r->argv[1], "DIRTY")) {
        reply_error(c, "Unknown INDEX subcommand");
        return CMD_FAILED;
    }
    struct zdb_ns *ns = c->ns;
    if (r->argc == 3) {
        if (!arg_is(&r->argv[2], "RESET")) {
            reply_error(c, "Unknown INDEX DIRTY subcommand");
            return CMD_FAILED;
        }
        ns->ndirty = 0;
        reply_status(c, "OK");
        return CMD_OK;
    }
    if (r->argc != 2) {
        reply_error(c, "Unexpected arguments");
        return CMD_FAILED;
    }
    uint32_t *ids = malloc((ns->ndirty ? ns->ndirty : 1) * sizeof(*ids));
    if (!ids) {
        reply_error(c, "Internal Error");
        return CMD_FAILED;
    }
    if (ns->ndirty)
        memcpy(ids, ns->dirty, ns->ndirty * sizeof(*ids));
    qsort(ids, ns->ndirty, sizeof(*ids), cmp_u32);
    reply_array(c, ns->ndirty);
    for (size_t i = 0; i < ns->ndirty; i++)
        reply_int(c, ids[i]);
    free(ids);
    return CMD_OK;
}

static bool parse_u32(const struct resp_arg *a, uint32_t *out)
{
    uint64_t v;
    if (qs_parse_u64((const char *)a->ptr, a->len, &v) < 0 || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* DATA RAW fileid offset: the data entry at that place of d<fileid>, whatever it holds
 * (an old version, a tombstone): *6 [key, :previous, crc as "0x%08x", :flags,
 * :timestamp, payload]. */
int cmd_data(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (!cmd_admin(c))
        return CMD_DENIED;
    if (!args_min(c, r, 2))
        return CMD_FAILED;
    if (!arg_is(&r->argv[1], "RAW")) {
        reply_error(c, "Unknown DATA subcommand");
        return CMD_FAILED;
    }
    if (r->argc != 4) {
        reply_error(c, "Unexpected arguments");
        return CMD_FAILED;
    }
    uint32_t fileid, off;
    if (!parse_u32(&r->argv[2], &fileid)) {
        reply_error(c, "Invalid file id");
        return CMD_FAILED;
    }
    if (!parse_u32(&r->argv[3], &off)) {
        reply_error(c, "Invalid offset");
        return CMD_FAILED;
    }
    struct zdb_ns *ns = c->ns;
    if (ns->frozen) {
        reply_error(c, "Namespace is temporarily frozen (read-write disabled)");
        return CMD_FAILED;
    }
    uint64_t size;
    int rc = zdb_scan_data_size(ns, fileid, &size);
    if (rc == QS_ENOTFOUND) {
        reply_error(c, "Data file not found");
        return CMD_FAILED;
    }
    if (rc == 0 && off >= size) {
        reply_error(c, "EOF");
        return CMD_FAILED;
    }
    if (rc == 0 && off < ZDB_DAT_HEADER_SIZE) {
        reply_error(c, "Invalid offset");
        return CMD_FAILED;
    }
    struct zdb_dat_entry e;
    uint8_t key[ZDB_MAX_KEY];
    uint8_t *payload = NULL;
    if (rc == 0)
        rc = zdb_scan_data_read(ns, fileid, off, &e, key, &payload);
    if (rc == QS_ECORRUPT || rc == QS_EINVAL) {
        reply_error(c, "No data entry at this offset");
        return CMD_FAILED;
    }
    if (rc < 0) {
        reply_error(c, "Internal Error");
        return CMD_FAILED;
    }
    char crc[16];
    int n = snprintf(crc, sizeof(crc), "0x%08" PRIx32, e.crc);
    reply_array(c, 6);
    reply_bulk(c, key, e.keylen);
    reply_int(c, e.previous);
    reply_bulk(c, crc, (size_t)n);
    reply_int(c, e.flags);
    reply_int(c, e.timestamp);
    reply_bulk(c, payload, e.length);
    free(payload);
    return CMD_OK;
}

/* Replication (MIRROR streams every write to a client, MASTER marks a client as the
 * source) is not part of this server. */
int cmd_mirror(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (!cmd_admin(c))
        return CMD_DENIED;
    reply_error(c, "Command not supported: replication (MIRROR) is not available");
    return CMD_FAILED;
}

int cmd_master(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (!cmd_admin(c))
        return CMD_DENIED;
    reply_error(c, "Command not supported: replication (MASTER) is not available");
    return CMD_FAILED;
}
