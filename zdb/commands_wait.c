/* WAIT cmd|* [timeout_ms]: park this client until another client of its namespace runs
 * cmd (any command for '*'); the server loop answers +<CMD> or -Timeout (server.c). */
#include "util/parse.h"
#include "zdb/commands.h"
#include "zdb/reply.h"

#define WAIT_DEFAULT_MS 5000
#define WAIT_MIN_MS     100
#define WAIT_MAX_MS     (30 * 60 * 1000)
#define WAIT_ARG_MAX    16

int cmd_wait(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (r->argc != 2 && r->argc != 3) {
        reply_error(c, "Invalid arguments");
        return CMD_FAILED;
    }
    /* matched like a command name: a prefix, first in table order */
    int cmd = zdb_cmd_find(r->argv[1].ptr, r->argv[1].len);
    if (cmd < 0) {
        reply_error(c, "Unknown command to watch");
        return CMD_FAILED;
    }
    uint64_t timeout = WAIT_DEFAULT_MS;
    if (r->argc == 3) {
        const struct resp_arg *t = &r->argv[2];
        if (t->len > WAIT_ARG_MAX || qs_parse_u64((const char *)t->ptr, t->len, &timeout) < 0 ||
            timeout < WAIT_MIN_MS || timeout > WAIT_MAX_MS) {
            reply_error(c, "Invalid timeout");
            return CMD_FAILED;
        }
    }
    zdb_server_wait(srv, c, cmd, timeout);
    return CMD_OK;
}
