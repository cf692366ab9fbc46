#include "commands.h"

#include <string.h>
#include <strings.h>

#include "zdb/reply.h"

/* Commands of 0-db v2 that arrive with zdb part 2; until then they answer clearly. */
static int cmd_later(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    reply_error(c, "Command not supported");
    return CMD_FAILED;
}

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
};

/* Table order matters: a command name is matched as a prefix, first match wins. */
static const struct cmd_entry table[] = {
    {"*", cmd_asterisk},      {"WAIT", cmd_later},    {"MIRROR", cmd_later},
    {"MASTER", cmd_later},    {"PING", cmd_ping},     {"TIME", cmd_time},
    {"AUTH", cmd_auth},       {"HOOKS", cmd_later},   {"INDEX", cmd_later},
    {"DATA", cmd_later},      {"SET", cmd_set},       {"SETX", cmd_set},
    {"GET", cmd_get},         {"MGET", cmd_mget},     {"DEL", cmd_del},
    {"EXISTS", cmd_exists},   {"CHECK", cmd_check},   {"SCAN", cmd_later},
    {"SCANX", cmd_later},     {"RSCAN", cmd_later},   {"KSCAN", cmd_kscan},
    {"HISTORY", cmd_later},   {"KEYCUR", cmd_later},  {"LENGTH", cmd_length},
    {"KEYTIME", cmd_keytime}, {"INFO", cmd_info},     {"STOP", cmd_stop},
    {"DBSIZE", cmd_dbsize},   {"NSNEW", cmd_nsnew},   {"NSDEL", cmd_nsdel},
    {"NSLIST", cmd_nslist},   {"NSSET", cmd_nsset},   {"NSINFO", cmd_nsinfo},
    {"NSJUMP", cmd_nsjump},   {"SELECT", cmd_select}, {"RELOAD", cmd_later},
    {"FLUSH", cmd_flush},
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

void zdb_dispatch(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (c->ns_gone) {
        reply_error(c, "Your active namespace is not available anymore (probably removed).");
        c->closing = true;
        srv->stats.commands_failed++;
        return;
    }
    const struct resp_arg *name = &r->argv[0];
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        size_t tl = strlen(table[i].name);
        if (name->len > tl || strncasecmp((const char *)name->ptr, table[i].name, name->len) != 0)
            continue;
        srv->stats.commands_executed++;
        int rc = table[i].fn(srv, c, r);
        if (rc == CMD_FAILED)
            srv->stats.commands_failed++;
        else if (rc == CMD_DENIED)
            srv->stats.commands_unauthorized++;
        return;
    }
    srv->stats.commands_failed++;
    reply_error(c, "Command not supported");
}
