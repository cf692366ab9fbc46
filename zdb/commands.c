#include "commands.h"

#include <string.h>
#include <strings.h>

#include "zdb/reply.h"

static int cmd_asterisk(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    reply_error(c, "This is not a valid command");
    return CMD_FAILED;
}

static int cmd_kscan(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    reply_error(c, "Command disabled in release code, not yet available");
    return CMD_FAILED;
}

struct cmd_entry {
    const char *name;
    zdb_cmd_fn fn;
    size_t len;
};

/* Table order matters: a command name is matched as a prefix, first match wins.
 * Entry 0 is '*', which WAIT takes as "any command" (zdb_server_notify).
 * COMPACT is not a 0-db command: it comes last, and no name before it starts with "CO", so it
 * changes the meaning of no 0-db command name or prefix. */
static const struct cmd_entry table[] = {
    {"*", cmd_asterisk, 1},      {"WAIT", cmd_wait, 4},       {"MIRROR", cmd_mirror, 6},
    {"MASTER", cmd_master, 6},   {"PING", cmd_ping, 4},       {"TIME", cmd_time, 4},
    {"AUTH", cmd_auth, 4},       {"HOOKS", cmd_hooks, 5},     {"INDEX", cmd_index, 5},
    {"DATA", cmd_data, 4},       {"SET", cmd_set, 3},         {"SETX", cmd_set, 4},
    {"GET", cmd_get, 3},         {"MGET", cmd_mget, 4},       {"DEL", cmd_del, 3},
    {"EXISTS", cmd_exists, 6},   {"CHECK", cmd_check, 5},     {"SCAN", cmd_scan, 4},
    {"SCANX", cmd_scan, 5},      {"RSCAN", cmd_rscan, 5},     {"KSCAN", cmd_kscan, 5},
    {"HISTORY", cmd_history, 7}, {"KEYCUR", cmd_keycur, 6},   {"LENGTH", cmd_length, 6},
    {"KEYTIME", cmd_keytime, 7}, {"INFO", cmd_info, 4},       {"STOP", cmd_stop, 4},
    {"DBSIZE", cmd_dbsize, 6},   {"NSNEW", cmd_nsnew, 5},     {"NSDEL", cmd_nsdel, 5},
    {"NSLIST", cmd_nslist, 6},   {"NSSET", cmd_nsset, 5},     {"NSINFO", cmd_nsinfo, 6},
    {"NSJUMP", cmd_nsjump, 6},   {"SELECT", cmd_select, 6},   {"RELOAD", cmd_reload, 6},
    {"FLUSH", cmd_flush, 5},     {"COMPACT", cmd_compact, 7},
};

bool cmd_args(struct zdb_client *c, const struct resp_request *r, int expected)
{
    if (r->argc != expected) {
        reply_error(c, "Unexpected arguments");
        return false;
    }
    return true;
}

bool cmd_args_nonempty(struct zdb_client *c, const struct resp_request *r, int expected)
{
    if (!cmd_args(c, r, expected))
        return false;
    for (int i = 0; i < expected; i++) {
        if (r->argv[i].len == 0) {
            reply_error(c, "Invalid argument");
            return false;
        }
    }
    return true;
}

bool cmd_admin(struct zdb_client *c)
{
    if (!c->admin) {
        reply_error(c, "Permission denied");
        return false;
    }
    return true;
}

bool cmd_arg_str(const struct resp_arg *a, char *out, size_t cap)
{
    if (a->len >= cap)
        return false;
    memcpy(out, a->ptr, a->len);
    out[a->len] = '\0';
    return true;
}

int zdb_cmd_find(const uint8_t *name, size_t len)
{
    /* Upper-case once, then prefix-compare against the table (no name is over 7 bytes). */
    char up[8];
    if (len > sizeof(up))
        return -1;
    for (size_t i = 0; i < len; i++) {
        char ch = (char)name[i];
        up[i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
    }
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (len <= table[i].len && memcmp(up, table[i].name, len) == 0)
            return (int)i;
    return -1;
}

void zdb_dispatch(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (c->ns_gone) {
        reply_error(c, "Your active namespace is not available anymore (probably removed).");
        c->closing = true;
        srv->stats.commands_failed++;
        return;
    }
    int i = zdb_cmd_find(r->argv[0].ptr, r->argv[0].len);
    if (i < 0) {
        srv->stats.commands_failed++;
        reply_error(c, "Command not supported");
        return;
    }
    srv->stats.commands_executed++;
    int rc = table[i].fn(srv, c, r);
    if (rc == CMD_FAILED)
        srv->stats.commands_failed++;
    else if (rc == CMD_DENIED)
        srv->stats.commands_unauthorized++;
    /* As 0-db: any command that reached its handler wakes the WAITs on it, failed or not. */
    if (srv->waiters)
        zdb_server_notify(srv, c, i, table[i].name);
}
