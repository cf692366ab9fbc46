/* Backend dispatch and the zdb backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_private.h"

void qs_backend_opts_default(struct qs_backend_opts *o)
{
    memset(o, 0, sizeof(*o));
}

int qs_backend_open(struct qs_backend **out, const struct qs_backend_opts *o)
{
    *out = NULL;
    if (!o->address || !*o->address)
        return qs_err_set(QS_EINVAL, "backend: empty address");
    if (o->role != QS_BACKEND_DATA && o->role != QS_BACKEND_META)
        return qs_err_set(QS_EINVAL, "backend %s: bad role", o->address);
    struct qs_backend *b = calloc(1, sizeof(*b));
    if (!b)
        return qs_err_set(QS_ENOMEM, "backend: out of memory");
    b->role = o->role;
    int rc = 0;
    if (strncmp(o->address, "dir://", 6) == 0) {
        const char *path = o->address + 6;
        b->kind = QS_BACKEND_DIR;
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/')
            n--;
        if (n == 0 || path[0] != '/') {
            rc = qs_err_set(QS_EINVAL, "backend %s: dir:// needs an absolute path (dir:///path)",
                            o->address);
            goto fail;
        }
        if (n > 3800) {
            rc = qs_err_set(QS_EINVAL, "backend %s: path too long", o->address);
            goto fail;
        }
        b->root = strndup(path, n);
        if (!b->root) {
            rc = qs_err_set(QS_ENOMEM, "backend: out of memory");
            goto fail;
        }
        b->nosync = o->dir_nosync;
        b->nocreate = o->dir_nocreate;
        b->max_value = QS_BACKEND_DIR_MAX_VALUE;
        if (o->dir_expect_id) {
            size_t il = strlen(o->dir_expect_id);
            bool hex = il == 32;
            for (size_t i = 0; hex && i < il; i++)
                hex = (o->dir_expect_id[i] >= '0' && o->dir_expect_id[i] <= '9') ||
                      (o->dir_expect_id[i] >= 'a' && o->dir_expect_id[i] <= 'f');
            if (!hex) {
                rc = qs_err_set(QS_EINVAL, "backend %s: expected id must be 32 lower-case hex",
                                o->address);
                goto fail;
            }
            memcpy(b->id, o->dir_expect_id, 33);
            b->have_id = true;
        }
        snprintf(b->name, sizeof(b->name), "dir %s", b->root);
    } else {
        b->kind = QS_BACKEND_ZDB;
        struct qs_zdb_opts zo;
        qs_zdb_opts_default(&zo);
        zo.address = o->address;
        zo.ns = o->ns;
        zo.password = o->password;
        zo.secure = o->secure;
        if (o->connect_timeout_ms)
            zo.connect_timeout_ms = o->connect_timeout_ms;
        if (o->request_timeout_ms)
            zo.request_timeout_ms = o->request_timeout_ms;
        if (o->attempts)
            zo.attempts = o->attempts;
        if (o->backoff_ms)
            zo.backoff_ms = o->backoff_ms;
        if (o->pool) { /* connections come from the pool, one per call */
            struct qs_zdb_addr addr;
            if ((rc = qs_zdb_addr_parse(o->address, &addr)) < 0)
                goto fail;
            b->pool = o->pool;
            b->max_value = QS_ZDB_MAX_VALUE;
            snprintf(b->name, sizeof(b->name), "zdb %s/%s", o->address,
                     o->ns && *o->ns ? o->ns : "default");
        } else {
            rc = qs_zdb_new(&b->zdb, &zo);
            if (rc < 0)
                goto fail;
            b->max_value = qs_zdb_max_value(b->zdb);
            snprintf(b->name, sizeof(b->name), "%s", qs_zdb_name(b->zdb));
        }
    }
    *out = b;
    return 0;
fail:
    qs_backend_free(b);
    return rc;
}

void qs_backend_free(struct qs_backend *b)
{
    if (!b)
        return;
    if (!b->pool)
        qs_zdb_free(b->zdb);
    free(b->root);
    free(b);
}

enum qs_backend_kind qs_backend_kind(const struct qs_backend *b)
{
    return b->kind;
}

enum qs_backend_role qs_backend_role(const struct qs_backend *b)
{
    return b->role;
}

const char *qs_backend_name(const struct qs_backend *b)
{
    return b->name;
}

size_t qs_backend_max_value(const struct qs_backend *b)
{
    return b->max_value;
}

void qs_backend_key_hex(const struct qs_backend_key *k, char *out)
{
    static const char digits[] = "0123456789abcdef";
    unsigned n = k->len <= QS_BACKEND_KEY_MAX ? k->len : QS_BACKEND_KEY_MAX;
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = digits[k->b[i] >> 4];
        out[2 * i + 1] = digits[k->b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- zdb ---- */

/* A pooled backend borrows a connection for the length of one call (lend), with its
 * cancel flag, and gives it back (unlend, which passes the call's result through). */
static int lend(struct qs_backend *b)
{
    if (!b->pool)
        return 0;
    struct qs_zdb_call call = {0, b->cancel};
    return qs_zdb_pool_get(b->pool, &call, &b->zdb);
}

static int unlend(struct qs_backend *b, int rc)
{
    if (b->pool && b->zdb) {
        qs_zdb_pool_put(b->pool, b->zdb);
        b->zdb = NULL;
    }
    return rc;
}

static int need_role(const struct qs_backend *b, enum qs_backend_role role, const char *what)
{
    if (b->role == role)
        return 0;
    return qs_err_set(QS_EINVAL, "%s: %s needs a %s backend", b->name, what,
                      role == QS_BACKEND_DATA ? "data" : "metadata");
}

/* The namespace mode is checked once per backend, before its first use. */
static int zdb_ready(struct qs_backend *b)
{
    if (b->mode_ok)
        return 0;
    int rc = qs_zdb_check_mode(
        b->zdb, b->role == QS_BACKEND_DATA ? QS_ZDB_MODE_SEQ : QS_ZDB_MODE_USER, NULL);
    if (rc == 0)
        b->mode_ok = true;
    return rc;
}

static int zdb_key(const struct qs_backend *b, const struct qs_backend_key *key)
{
    if (key->len != QS_ZDB_ID_LEN)
        return qs_err_set(QS_EINVAL, "%s: key of %u bytes, zdb data keys have %u", b->name,
                          key->len, QS_ZDB_ID_LEN);
    return 0;
}

static int zdb_batch(struct qs_backend *b, struct qs_backend_op *ops, size_t n)
{
    int rc = need_role(b, QS_BACKEND_DATA, "a data operation");
    if (rc == 0)
        rc = zdb_ready(b);
    if (rc < 0)
        return rc;
    struct qs_zdb_op *zo = calloc(n ? n : 1, sizeof(*zo));
    if (!zo)
        return qs_err_set(QS_ENOMEM, "%s: out of memory", b->name);
    for (size_t i = 0; i < n; i++) {
        ops[i].result = 0;
        ops[i].data = NULL;
        ops[i].data_len = 0;
        switch (ops[i].kind) {
        case QS_BACKEND_PUT:
            zo[i] =
                (struct qs_zdb_op){.kind = QS_ZDB_SET, .val = ops[i].val, .val_len = ops[i].len};
            break;
        case QS_BACKEND_GET:
        case QS_BACKEND_DEL:
            rc = zdb_key(b, &ops[i].key);
            if (rc < 0)
                goto out;
            zo[i] =
                (struct qs_zdb_op){.kind = ops[i].kind == QS_BACKEND_GET ? QS_ZDB_GET : QS_ZDB_DEL,
                                   .key = ops[i].key.b,
                                   .key_len = ops[i].key.len};
            break;
        }
    }
    rc = qs_zdb_batch(b->zdb, zo, n);
    int first = 0;
    char msg[512] = "";
    if (rc < 0)
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
    for (size_t i = 0; i < n; i++) {
        ops[i].result = zo[i].result;
        if (ops[i].kind == QS_BACKEND_PUT && zo[i].result == 0) {
            if (zo[i].reply_len != QS_ZDB_ID_LEN) {
                ops[i].result = QS_EPROTO;
                if (!first) {
                    first = qs_err_set(QS_EPROTO, "%s: SET answered a %zu-byte key, not 8", b->name,
                                       zo[i].reply_len);
                    snprintf(msg, sizeof(msg), "%s", qs_err_msg());
                }
            } else {
                ops[i].key.len = QS_ZDB_ID_LEN;
                memcpy(ops[i].key.b, zo[i].reply, QS_ZDB_ID_LEN);
            }
            free(zo[i].reply);
        } else if (ops[i].kind == QS_BACKEND_GET && zo[i].result == 0) {
            ops[i].data = zo[i].reply;
            ops[i].data_len = zo[i].reply_len;
        } else {
            free(zo[i].reply);
        }
    }
    if (rc == 0 && first)
        rc = first;
    if (rc < 0)
        qs_err_set(rc, "%s", msg);
out:
    free(zo);
    return rc;
}

static int zdb_named(struct qs_backend *b, const char *name)
{
    int rc = need_role(b, QS_BACKEND_META, "a named value");
    if (rc == 0 && (!name || !*name || strlen(name) > QS_BACKEND_NAME_MAX))
        rc = qs_err_set(QS_EINVAL, "%s: name must have 1..%u bytes", b->name, QS_BACKEND_NAME_MAX);
    if (rc == 0)
        rc = zdb_ready(b);
    return rc;
}

static double error_rate(struct qs_backend *b, uint64_t ops, uint64_t failures)
{
    uint64_t dops = ops - b->prev_ops, dfail = failures - b->prev_failures;
    b->prev_ops = ops;
    b->prev_failures = failures;
    if (dops + dfail > 0) {
        double now = (double)dfail / (double)(dops + dfail);
        b->err_ewma = 0.5 * b->err_ewma + 0.5 * now;
    }
    return b->err_ewma;
}

static int zdb_probe(struct qs_backend *b, struct qs_backend_health *h)
{
    int rc = qs_zdb_nsinfo(b->zdb, &h->nsinfo);
    if (rc == 0) {
        h->have_nsinfo = true;
        enum qs_zdb_mode want = b->role == QS_BACKEND_DATA ? QS_ZDB_MODE_SEQ : QS_ZDB_MODE_USER;
        if (h->nsinfo.mode != want) {
            rc = qs_err_set(QS_EINVAL, "%s: namespace is in %s mode, %s needed", b->name,
                            h->nsinfo.mode == QS_ZDB_MODE_SEQ    ? "sequential"
                            : h->nsinfo.mode == QS_ZDB_MODE_USER ? "userkey"
                                                                 : "an unknown",
                            want == QS_ZDB_MODE_SEQ ? "sequential" : "userkey");
        } else {
            b->mode_ok = true;
        }
        uint64_t f = qs_zdb_nsinfo_free(&h->nsinfo);
        h->free_bytes = f == QS_ZDB_UNKNOWN ? QS_BACKEND_UNKNOWN : f;
        h->used_bytes = h->nsinfo.data_size_bytes;
        h->limit_bytes = h->nsinfo.data_limits_bytes;
        h->entries = h->nsinfo.entries;
    }
    struct qs_zdb_stats st;
    qs_zdb_stats(b->zdb, &st);
    h->latency_us = st.avg_us;
    h->error_rate = error_rate(b, st.requests, st.failures + st.error_replies);
    return rc;
}

/* ---- dispatch ---- */

int qs_backend_batch(struct qs_backend *b, struct qs_backend_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind == QS_BACKEND_PUT && ops[i].len > b->max_value)
            return qs_err_set(QS_EINVAL, "%s: value of %zu bytes is over the %zu-byte limit",
                              b->name, ops[i].len, b->max_value);
    if (b->kind == QS_BACKEND_ZDB) {
        int lrc = lend(b);
        return lrc < 0 ? lrc : unlend(b, zdb_batch(b, ops, n));
    }
    int rc = need_role(b, QS_BACKEND_DATA, "a data operation");
    if (rc < 0)
        return rc;
    int first = 0;
    char msg[512] = "";
    for (size_t i = 0; i < n; i++) {
        struct qs_backend_op *op = &ops[i];
        op->data = NULL;
        op->data_len = 0;
        switch (op->kind) {
        case QS_BACKEND_PUT:
            op->result = qs_dir_put(b, op->val, op->len, &op->key);
            break;
        case QS_BACKEND_GET:
            op->result = qs_dir_get(b, &op->key, &op->data, &op->data_len);
            break;
        case QS_BACKEND_DEL:
            op->result = qs_dir_del(b, &op->key);
            break;
        default:
            op->result = qs_err_set(QS_EINVAL, "%s: bad operation", b->name);
        }
        if (op->result < 0 && !first) {
            first = op->result;
            snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        }
    }
    if (first)
        qs_err_set(first, "%s", msg);
    return first;
}

int qs_backend_put(struct qs_backend *b, const void *val, size_t len, struct qs_backend_key *key)
{
    struct qs_backend_op op = {.kind = QS_BACKEND_PUT, .val = val, .len = len};
    int rc = qs_backend_batch(b, &op, 1);
    if (rc == 0)
        *key = op.key;
    return rc;
}

int qs_backend_get(struct qs_backend *b, const struct qs_backend_key *key, uint8_t **val,
                   size_t *len)
{
    struct qs_backend_op op = {.kind = QS_BACKEND_GET, .key = *key};
    int rc = qs_backend_batch(b, &op, 1);
    *val = op.data;
    *len = op.data_len;
    return rc;
}

int qs_backend_del(struct qs_backend *b, const struct qs_backend_key *key)
{
    struct qs_backend_op op = {.kind = QS_BACKEND_DEL, .key = *key};
    return qs_backend_batch(b, &op, 1);
}

int qs_backend_set_named(struct qs_backend *b, const char *name, const void *val, size_t len)
{
    if (len > b->max_value)
        return qs_err_set(QS_EINVAL, "%s: value of %zu bytes is over the %zu-byte limit", b->name,
                          len, b->max_value);
    if (b->kind == QS_BACKEND_DIR)
        return qs_dir_set_named(b, name, val, len);
    int rc = lend(b);
    if (rc < 0)
        return rc;
    if ((rc = zdb_named(b, name)) == 0)
        rc = qs_zdb_user_set(b->zdb, name, strlen(name), val, len);
    return unlend(b, rc);
}

int qs_backend_get_named(struct qs_backend *b, const char *name, uint8_t **val, size_t *len)
{
    *val = NULL;
    *len = 0;
    if (b->kind == QS_BACKEND_DIR)
        return qs_dir_get_named(b, name, val, len);
    int rc = lend(b);
    if (rc < 0)
        return rc;
    if ((rc = zdb_named(b, name)) == 0)
        rc = qs_zdb_user_get(b->zdb, name, strlen(name), val, len);
    return unlend(b, rc);
}

int qs_backend_del_named(struct qs_backend *b, const char *name)
{
    if (b->kind == QS_BACKEND_DIR)
        return qs_dir_del_named(b, name);
    int rc = lend(b);
    if (rc < 0)
        return rc;
    if ((rc = zdb_named(b, name)) == 0)
        rc = qs_zdb_user_del(b->zdb, name, strlen(name));
    return unlend(b, rc);
}

/* Walks the namespace with SCAN (0-db v2 and our zdb): each reply is [cursor, [[key,
 * length, time], ...]], the end is the error "No more data". */
/* Walks every entry SCAN returns; fn gets each [key, :length, :timestamp] element. */
typedef int (*scan_fn)(void *ud, const struct qs_zdb_reply *entry);

static int zdb_scan(struct qs_backend *b, scan_fn fn, void *ud)
{
    int rc = zdb_ready(b);
    if (rc < 0)
        return rc;
    char cursor[256];
    size_t clen = 0;
    bool have_cursor = false;
    for (;;) {
        const char *argv[2] = {"SCAN", cursor};
        size_t lens[2] = {4, clen};
        struct qs_zdb_reply *r = NULL;
        rc = qs_zdb_command(b->zdb, have_cursor ? 2 : 1, argv, lens, &r);
        if (rc < 0)
            return rc;
        if (r->type == QS_ZDB_R_ERROR) {
            if (r->len >= 12 && memcmp(r->str, "No more data", 12) == 0)
                rc = 0;
            else if (strstr(r->str, "not supported") || strstr(r->str, "Unknown command") ||
                     strstr(r->str, "disabled"))
                rc = qs_err_set(QS_EINVAL,
                                "%s: listing names is not supported by this server "
                                "(SCAN: %.100s)",
                                b->name, r->str);
            else
                rc = qs_err_set(qs_zdb_error_code(r->str, r->len), "%s: SCAN: %.200s", b->name,
                                r->str);
            qs_zdb_reply_free(r);
            return rc;
        }
        if (r->type != QS_ZDB_R_ARRAY || r->elements != 2 ||
            r->element[0]->type != QS_ZDB_R_STRING || r->element[0]->len == 0 ||
            r->element[0]->len > sizeof(cursor) || r->element[1]->type != QS_ZDB_R_ARRAY ||
            (have_cursor && r->element[0]->len == clen &&
             memcmp(r->element[0]->str, cursor, clen) == 0)) {
            qs_zdb_reply_free(r);
            return qs_err_set(QS_EPROTO, "%s: SCAN: unexpected reply", b->name);
        }
        const struct qs_zdb_reply *list = r->element[1];
        for (size_t i = 0; rc == 0 && i < list->elements; i++) {
            const struct qs_zdb_reply *e = list->element[i];
            if (e->type != QS_ZDB_R_ARRAY || e->elements < 1 ||
                e->element[0]->type != QS_ZDB_R_STRING) {
                rc = qs_err_set(QS_EPROTO, "%s: SCAN: unexpected entry", b->name);
                break;
            }
            rc = fn(ud, e);
        }
        clen = r->element[0]->len;
        memcpy(cursor, r->element[0]->str, clen);
        have_cursor = true;
        qs_zdb_reply_free(r);
        if (rc < 0)
            return rc;
    }
}

struct name_scan {
    const char *prefix;
    size_t plen;
    qs_backend_name_fn fn;
    void *ud;
};

static int name_entry(void *ud, const struct qs_zdb_reply *e)
{
    struct name_scan *s = ud;
    const struct qs_zdb_reply *k = e->element[0];
    if (k->len >= s->plen && (s->plen == 0 || memcmp(k->str, s->prefix, s->plen) == 0))
        return s->fn(s->ud, k->str, k->len);
    return 0;
}

static int zdb_list(struct qs_backend *b, const char *prefix, qs_backend_name_fn fn, void *ud)
{
    int rc = need_role(b, QS_BACKEND_META, "listing names");
    if (rc < 0)
        return rc;
    struct name_scan s = {prefix, prefix ? strlen(prefix) : 0, fn, ud};
    return zdb_scan(b, name_entry, &s);
}

struct key_scan {
    struct qs_backend *b;
    qs_backend_key_fn fn;
    void *ud;
};

static int key_entry(void *ud, const struct qs_zdb_reply *e)
{
    struct key_scan *s = ud;
    const struct qs_zdb_reply *k = e->element[0];
    if (k->len == 0 || k->len > QS_BACKEND_KEY_MAX)
        return qs_err_set(QS_EPROTO, "%s: SCAN: a key of %zu bytes", s->b->name, k->len);
    struct qs_backend_key key = {.len = (uint8_t)k->len};
    memcpy(key.b, k->str, k->len);
    uint64_t len = 0;
    int64_t ts = 0;
    if (e->elements >= 3 && e->element[1]->type == QS_ZDB_R_INTEGER &&
        e->element[2]->type == QS_ZDB_R_INTEGER) {
        len = (uint64_t)e->element[1]->integer;
        ts = e->element[2]->integer;
    }
    return s->fn(s->ud, &key, len, ts);
}

int qs_backend_list_keys(struct qs_backend *b, qs_backend_key_fn fn, void *ud)
{
    int rc = need_role(b, QS_BACKEND_DATA, "listing values");
    if (rc < 0)
        return rc;
    if (b->kind == QS_BACKEND_DIR)
        return qs_dir_list_keys(b, fn, ud);
    struct key_scan s = {b, fn, ud};
    if ((rc = lend(b)) < 0)
        return rc;
    return unlend(b, zdb_scan(b, key_entry, &s));
}

static int zdb_history(struct qs_backend *b, const char *name, unsigned max,
                       qs_backend_version_fn fn, void *ud);

int qs_backend_history_named(struct qs_backend *b, const char *name, unsigned max,
                             qs_backend_version_fn fn, void *ud)
{
    if (b->kind == QS_BACKEND_DIR)
        return qs_err_set(QS_EINVAL, "%s: a dir backend keeps no history", b->name);
    int rc = lend(b);
    return rc < 0 ? rc : unlend(b, zdb_history(b, name, max, fn, ud));
}

static int zdb_history(struct qs_backend *b, const char *name, unsigned max,
                       qs_backend_version_fn fn, void *ud)
{
    int rc = need_role(b, QS_BACKEND_META, "history");
    if (rc == 0)
        rc = zdb_named(b, name);
    if (rc == 0)
        rc = zdb_ready(b);
    if (rc < 0)
        return rc;
    char ekey[64];
    size_t elen = 0;
    for (unsigned v = 0; v < max; v++) {
        const char *argv[3] = {"HISTORY", name, ekey};
        size_t lens[3] = {7, strlen(name), elen};
        struct qs_zdb_reply *r = NULL;
        rc = qs_zdb_command(b->zdb, v ? 3 : 2, argv, lens, &r);
        if (rc < 0)
            return rc;
        if (r->type == QS_ZDB_R_ERROR) {
            bool end = strstr(r->str, "No more history") != NULL;
            bool none = strstr(r->str, "Key not found") != NULL;
            rc = end              ? 0
                 : none && v == 0 ? qs_err_set(QS_ENOTFOUND, "%s: %s: no such name", b->name, name)
                                  : qs_err_set(qs_zdb_error_code(r->str, r->len),
                                               "%s: HISTORY: %.200s", b->name, r->str);
            qs_zdb_reply_free(r);
            return none && v ? 0 : rc;
        }
        if (r->type != QS_ZDB_R_ARRAY || r->elements != 3 ||
            r->element[2]->type != QS_ZDB_R_STRING ||
            (r->element[0]->type != QS_ZDB_R_STRING && r->element[0]->type != QS_ZDB_R_NIL) ||
            r->element[0]->len > sizeof(ekey)) {
            qs_zdb_reply_free(r);
            return qs_err_set(QS_EPROTO, "%s: HISTORY: unexpected reply", b->name);
        }
        rc = fn(ud, (const uint8_t *)r->element[2]->str, r->element[2]->len);
        bool more = r->element[0]->type == QS_ZDB_R_STRING;
        if (more) {
            elen = r->element[0]->len;
            memcpy(ekey, r->element[0]->str, elen);
        }
        qs_zdb_reply_free(r);
        if (rc < 0 || !more)
            return rc;
    }
    return 0;
}

void qs_backend_set_cancel(struct qs_backend *b, const atomic_int *cancel)
{
    if (!b || b->kind != QS_BACKEND_ZDB)
        return;
    b->cancel = cancel; /* pooled: given to each connection lent */
    if (!b->pool)
        qs_zdb_set_limits(b->zdb, 0, cancel);
}

int qs_backend_list_named(struct qs_backend *b, const char *prefix, qs_backend_name_fn fn, void *ud)
{
    if (b->kind == QS_BACKEND_DIR)
        return qs_dir_list_named(b, prefix, fn, ud);
    int rc = lend(b);
    return rc < 0 ? rc : unlend(b, zdb_list(b, prefix, fn, ud));
}

int qs_backend_probe(struct qs_backend *b, struct qs_backend_health *h)
{
    memset(h, 0, sizeof(*h));
    h->free_bytes = QS_BACKEND_UNKNOWN;
    h->used_bytes = QS_BACKEND_UNKNOWN;
    h->entries = QS_BACKEND_UNKNOWN;
    int rc;
    if (b->kind == QS_BACKEND_ZDB) {
        rc = lend(b);
        if (rc == 0)
            rc = unlend(b, zdb_probe(b, h));
    } else {
        rc = qs_dir_probe(b, h);
        h->error_rate = error_rate(b, b->ops, b->op_failures);
    }
    h->reachable = rc == 0;
    if (rc < 0)
        snprintf(h->error, sizeof(h->error), "%s", qs_err_msg());
    return rc;
}

int qs_backend_dir_id(struct qs_backend *b, char out[33])
{
    if (b->kind != QS_BACKEND_DIR)
        return qs_err_set(QS_EINVAL, "%s: not a dir backend", b->name);
    int rc = qs_dir_attach(b);
    if (rc == 0)
        memcpy(out, b->id, 33);
    return rc;
}
