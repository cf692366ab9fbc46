/* The zdb stores of a filesystem: a connection pool per namespace (see kv.h). */
#include "fs/kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/sys.h"

struct zkv {
    struct qs_fs_kv kv;
    struct qs_zdb_pool *pool[3];
    unsigned timeout_ms;
};

static const char *const ns_label[3] = {"meta", "data", "temp"};

static int zkv_batch(struct qs_fs_kv *kv, enum qs_fs_ns ns, struct qs_zdb_op *ops, size_t n)
{
    struct zkv *z = (struct zkv *)kv;
    if (!z->pool[ns])
        return qs_err_set(QS_EINVAL, "the %s namespace is not configured", ns_label[ns]);
    struct qs_zdb_call call = {.deadline_ms = qs_now_ms() + z->timeout_ms};
    return qs_zdb_pool_batch(z->pool[ns], &call, ops, n);
}

static int zkv_usage(struct qs_fs_kv *kv, enum qs_fs_ns ns, struct qs_fs_nsusage *out)
{
    struct zkv *z = (struct zkv *)kv;
    if (!z->pool[ns])
        return qs_err_set(QS_EINVAL, "the %s namespace is not configured", ns_label[ns]);
    struct qs_zdb_call call = {.deadline_ms = qs_now_ms() + z->timeout_ms};
    struct qs_zdb *c;
    int rc = qs_zdb_pool_get(z->pool[ns], &call, &c);
    if (rc)
        return rc;
    struct qs_zdb_nsinfo info;
    rc = qs_zdb_nsinfo(c, &info);
    qs_zdb_pool_put(z->pool[ns], c);
    if (rc)
        return rc;
    out->entries = info.entries;
    out->used_bytes = info.data_size_bytes;
    out->free_bytes = qs_zdb_nsinfo_free(&info);
    return 0;
}

static void zkv_free(struct qs_fs_kv *kv)
{
    struct zkv *z = (struct zkv *)kv;
    if (!z)
        return;
    for (int i = 0; i < 3; i++)
        qs_zdb_pool_free(z->pool[i]);
    free(z);
}

/* Runs one admin command on the default namespace; an error reply is returned as
 * QS_EINVAL with its text (callers may accept some). */
static int admin(struct qs_zdb *c, int argc, const char *const *argv, char *reply, size_t rlen)
{
    size_t lens[4];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    struct qs_zdb_reply *r = NULL;
    int rc = qs_zdb_command(c, argc, argv, lens, &r);
    if (rc)
        return rc;
    if (r->type == QS_ZDB_R_ERROR) {
        snprintf(reply, rlen, "%s", r->str ? r->str : "");
        rc = QS_EINVAL;
    }
    qs_zdb_reply_free(r);
    return rc;
}

/* Creates ns in sequential mode (temp: with a password) when it does not exist. */
static int autons(const struct qs_fs_endpoint *ep, unsigned timeout_ms)
{
    struct qs_zdb_opts o;
    qs_zdb_opts_default(&o);
    o.address = ep->address;
    o.request_timeout_ms = timeout_ms;
    struct qs_zdb *c;
    int rc = qs_zdb_new(&c, &o);
    if (rc)
        return rc;
    char why[256] = "";
    const char *nsnew[] = {"NSNEW", ep->ns};
    rc = admin(c, 2, nsnew, why, sizeof why);
    if (rc == QS_EINVAL && strstr(why, "not available"))
        rc = 0; /* exists already: checked below like any other */
    else if (rc == 0) {
        const char *mode[] = {"NSSET", ep->ns, "mode", "seq"};
        rc = admin(c, 4, mode, why, sizeof why);
        if (rc == QS_EINVAL && strstr(why, "single runtime mode"))
            rc = 0; /* a server started with --mode seq */
        if (rc == 0 && ep->password && *ep->password) {
            const char *pw[] = {"NSSET", ep->ns, "password", ep->password};
            rc = admin(c, 4, pw, why, sizeof why);
        }
    }
    if (rc == QS_EINVAL)
        rc = qs_err_set(QS_EINVAL, "zdb %s: creating namespace %s: %s", ep->address, ep->ns, why);
    qs_zdb_free(c);
    return rc;
}

int qs_fs_kv_zdb_new(struct qs_fs_kv **out, const struct qs_fs_zdb_opts *o)
{
    *out = NULL;
    struct zkv *z = calloc(1, sizeof *z);
    if (!z)
        return qs_err_set(QS_ENOMEM, "out of memory");
    z->kv.batch = zkv_batch;
    z->kv.usage = zkv_usage;
    z->kv.free = zkv_free;
    z->timeout_ms = o->timeout_ms ? o->timeout_ms : 10000;
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        const struct qs_fs_endpoint *ep = &o->ep[i];
        if (!ep->address)
            continue;
        if (o->autons && (rc = autons(ep, z->timeout_ms)) != 0)
            break;
        struct qs_zdb_pool_opts po = {.max_conns = o->conns ? o->conns : 8};
        qs_zdb_opts_default(&po.conn);
        po.conn.address = ep->address;
        po.conn.ns = ep->ns;
        po.conn.password = ep->password;
        po.conn.request_timeout_ms = z->timeout_ms;
        po.conn.connect_timeout_ms = z->timeout_ms < 3000 ? z->timeout_ms : 3000;
        if ((rc = qs_zdb_pool_new(&z->pool[i], &po)) != 0)
            break;
        struct qs_zdb_call call = {.deadline_ms = qs_now_ms() + z->timeout_ms};
        struct qs_zdb *c;
        if ((rc = qs_zdb_pool_get(z->pool[i], &call, &c)) != 0)
            break;
        struct qs_zdb_nsinfo info;
        rc = qs_zdb_connect(c);
        if (rc == 0)
            rc = qs_zdb_check_mode(c, QS_ZDB_MODE_SEQ, &info);
        qs_zdb_pool_put(z->pool[i], c);
        if (rc)
            rc = qs_err_set(
                rc, "%s namespace: %s%s", ns_label[i], qs_err_msg(),
                rc == QS_EINVAL && !o->autons
                    ? " (create it with NSNEW and NSSET mode seq, or mount with -o autons)"
                    : "");
    }
    if (rc) {
        zkv_free(&z->kv);
        return rc;
    }
    *out = &z->kv;
    return 0;
}
