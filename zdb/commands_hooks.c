/* HOOKS */
#include <string.h>

#include "zdb/commands.h"
#include "zdb/hooks.h"
#include "zdb/reply.h"

/* Admin: the recent hook runs, oldest first, each `*6` [type, array of the arguments after
 * the zdbid, :pid, :created, :finished (0 while running), :exit status]. */
int cmd_hooks(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (!cmd_admin(c))
        return CMD_DENIED;
    if (!cmd_args(c, r, 1))
        return CMD_FAILED;
    struct zdb_hooks *h = srv->hooks;
    if (!h) {
        reply_array(c, 0);
        return CMD_OK;
    }
    zdb_hooks_reap(h);
    reply_array(c, h->count);
    for (size_t i = 0; i < h->count; i++) {
        const struct zdb_hook *k = zdb_hooks_at(h, i);
        reply_array(c, 6);
        reply_bulk(c, k->argv[1], strlen(k->argv[1]));
        reply_array(c, (size_t)(k->argc - 3));
        for (int a = 3; a < k->argc; a++)
            reply_bulk(c, k->argv[a], strlen(k->argv[a]));
        reply_int(c, k->pid);
        reply_int(c, k->created);
        reply_int(c, k->finished);
        reply_int(c, k->status);
    }
    return CMD_OK;
}
