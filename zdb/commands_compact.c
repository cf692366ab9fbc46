/* COMPACT [fileid|*] (admin): compaction of the closed data files of the selected namespace
 * (lib/store/compact.h), and the automatic trigger of --compact-ratio.
 *
 * COMPACT <fileid> rewrites that data file; COMPACT and COMPACT * rewrite every closed data
 * file holding reclaimable space, most reclaimable first. The reply is one status line:
 *   +OK files=<rewritten> before=<bytes> after=<bytes> reclaimed=<bytes>
 * Errors: -Permission denied, -Unexpected arguments, -Invalid argument (not a file id),
 * -Namespace is temporarily frozen (read-write disabled), -Cannot compact the active data file,
 * -Data file not found, -Data file damaged, not compacted, -Cannot compact right now.
 *
 * The name comes last in the command table and no earlier name starts with "CO", so "CO",
 * "COM", ... "COMPACT" select it and no 0-db command changes meaning ("C" stays CHECK). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/compact.h"
#include "util/log.h"
#include "util/parse.h"
#include "zdb/commands.h"
#include "zdb/reply.h"

/* ZDB_COMPACT_CRASH_AT (zdb/main.c): the crash tests stop the server with SIGKILL at one
 * step of a compaction, which is exactly what kill -9 does. */
static void crash_step(void *ud, int step)
{
    const struct zdb_config *cfg = ud;
    if (cfg->compact_crash_at == step) {
        qs_log(QS_LOG_WARN, "ZDB_COMPACT_CRASH_AT=%d: killing the server", step);
        raise(SIGKILL);
    }
}

static struct zdb_compact_opts compact_opts(struct zdb_server *srv)
{
    struct zdb_compact_opts o = {NULL, NULL};
    if (srv->cfg->compact_crash_at > 0) {
        o.step = crash_step;
        o.ud = srv->cfg;
    }
    return o;
}

static void add_stats(struct zdb_compact_stats *sum, const struct zdb_compact_stats *s)
{
    if (!s->files)
        return; /* nothing was reclaimable */
    sum->files += s->files;
    sum->bytes_before += s->bytes_before;
    sum->bytes_after += s->bytes_after;
    sum->entries_kept += s->entries_kept;
    sum->entries_dropped += s->entries_dropped;
}

/* Hooks that offload data files (jump-data) may hold a copy of the file made before. */
static void warn_hooks(struct zdb_server *srv, struct zdb_ns *ns, const struct zdb_compact_stats *s)
{
    if (srv->hooks && s->files)
        qs_log(QS_LOG_WARN,
               "namespace %s: d%u was compacted: a copy of it made by a hook before is stale",
               ns->name, s->fileid);
}

static int compact_error(struct zdb_client *c, int rc)
{
    switch (rc) {
    case QS_EINVAL:
        reply_error(c, "Cannot compact the active data file");
        break;
    case QS_ENOTFOUND:
        reply_error(c, "Data file not found");
        break;
    case QS_ECORRUPT:
        reply_error(c, "Data file damaged, not compacted");
        break;
    case QS_EBUSY:
        reply_error(c, "Namespace is temporarily frozen (read-write disabled)");
        break;
    default:
        reply_error(c, "Cannot compact right now");
        break;
    }
    return CMD_FAILED;
}

int cmd_compact(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (!cmd_admin(c))
        return CMD_DENIED;
    if (r->argc > 2) {
        reply_error(c, "Unexpected arguments");
        return CMD_FAILED;
    }
    struct zdb_ns *ns = c->ns;
    if (ns->frozen) {
        reply_error(c, "Namespace is temporarily frozen (read-write disabled)");
        return CMD_FAILED;
    }
    struct zdb_compact_opts opts = compact_opts(srv);
    struct zdb_compact_stats sum = {0}, s;
    int rc = 0;
    const struct resp_arg *a = r->argc == 2 ? &r->argv[1] : NULL;
    if (a && !(a->len == 1 && a->ptr[0] == '*')) {
        uint64_t id;
        if (qs_parse_u64((const char *)a->ptr, a->len, &id) < 0 || id > UINT32_MAX) {
            reply_error(c, "Invalid argument");
            return CMD_FAILED;
        }
        if (id > ns->fileid) {
            reply_error(c, "Data file not found");
            return CMD_FAILED;
        }
        rc = zdb_ns_compact_file(ns, (uint32_t)id, &opts, &s);
        if (rc < 0) {
            qs_log(QS_LOG_WARN, "namespace %s: COMPACT %" PRIu64 ": %s", ns->name, id,
                   qs_err_msg());
            return compact_error(c, rc);
        }
        add_stats(&sum, &s);
        warn_hooks(srv, ns, &s);
    } else {
        size_t cap = ns->fileid ? ns->fileid : 1, n = 0;
        struct zdb_compact_info *list = calloc(cap, sizeof(*list));
        if (!list || (rc = zdb_compact_pick(ns, 0, 1, list, cap, &n)) < 0) {
            free(list);
            reply_error(c, "Cannot compact right now");
            return CMD_FAILED;
        }
        for (size_t i = 0; i < n; i++) {
            rc = zdb_ns_compact_file(ns, list[i].fileid, &opts, &s);
            if (rc == QS_ENOTFOUND)
                continue; /* offloaded */
            if (rc < 0) {
                qs_log(QS_LOG_WARN, "namespace %s: COMPACT d%u: %s", ns->name, list[i].fileid,
                       qs_err_msg());
                free(list);
                return compact_error(c, rc);
            }
            add_stats(&sum, &s);
            warn_hooks(srv, ns, &s);
        }
        free(list);
    }
    char msg[160];
    snprintf(msg, sizeof(msg),
             "OK files=%" PRIu32 " before=%" PRIu64 " after=%" PRIu64 " reclaimed=%" PRIu64,
             sum.files, sum.bytes_before, sum.bytes_after, sum.bytes_before - sum.bytes_after);
    reply_status(c, msg);
    return CMD_OK;
}

void zdb_compact_periodic(struct zdb_server *srv, time_t now)
{
    double ratio = srv->cfg->compact_ratio;
    if (ratio <= 0)
        return;
    struct zdb_compact_opts opts = compact_opts(srv);
    for (size_t i = 0; i < srv->store->nns; i++) {
        struct zdb_ns *ns = srv->store->ns[i];
        struct zdb_compact_stats s;
        int rc = zdb_compact_auto(ns, ratio, now, &opts, &s);
        if (rc < 0)
            qs_log(QS_LOG_ERROR, "namespace %s: automatic compaction: %s", ns->name, qs_err_msg());
        if (rc == 1) {
            warn_hooks(srv, ns, &s);
            return; /* one file per tick: the server keeps serving in between */
        }
    }
}
