/* An in-memory store with the semantics of zdb's sequential mode, for tests
 * (see kv.h): keys are assigned from 0 upward and never reused. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fs/kv.h"
#include "util/mem.h"

struct mval {
    uint8_t *p;
    size_t n;
    bool live;
};

struct mns {
    struct mval *v;
    uint64_t n, cap;
};

struct mkv {
    struct qs_fs_kv kv;
    pthread_mutex_t mu;
    struct mns ns[3];
    long budget; /* ops left before failing; -1 = unlimited */
};

static int put(struct mns *s, uint64_t key, const void *v, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return qs_err_set(QS_ENOMEM, "memory store: out of memory");
    if (n)
        memcpy(p, v, n);
    if (key >= s->n) {
        if (key >= s->cap) {
            uint64_t c = s->cap ? s->cap * 2 : 64;
            while (c <= key)
                c *= 2;
            struct mval *nv = realloc(s->v, c * sizeof *nv);
            if (!nv) {
                free(p);
                return qs_err_set(QS_ENOMEM, "memory store: out of memory");
            }
            memset(nv + s->cap, 0, (c - s->cap) * sizeof *nv);
            s->v = nv;
            s->cap = c;
        }
        s->n = key + 1;
    }
    free(s->v[key].p);
    s->v[key] = (struct mval){.p = p, .n = n, .live = true};
    return 0;
}

static int one(struct mkv *m, struct mns *s, struct qs_zdb_op *op)
{
    op->reply = NULL;
    op->reply_len = 0;
    uint64_t key = 0;
    if (op->key_len == 8)
        key = qs_le64(op->key);
    else if (!(op->kind == QS_ZDB_SET && op->key_len == 0))
        return op->result = qs_err_set(QS_EINVAL, "memory store: key of %zu bytes", op->key_len);
    switch (op->kind) {
    case QS_ZDB_SET: {
        if (op->key_len == 0)
            key = s->n;
        else if (key >= s->n || !s->v[key].live)
            return op->result = qs_err_set(QS_ESEQKEY, "Invalid key, only update authorized");
        int rc = put(s, key, op->val, op->val_len);
        if (rc)
            return op->result = rc;
        op->reply = malloc(9);
        if (!op->reply)
            return op->result = qs_err_set(QS_ENOMEM, "memory store: out of memory");
        qs_put64(op->reply, key);
        op->reply[8] = 0;
        op->reply_len = 8;
        return op->result = 0;
    }
    case QS_ZDB_GET:
        if (key >= s->n || !s->v[key].live)
            return op->result = QS_ENOTFOUND;
        op->reply = malloc(s->v[key].n + 1);
        if (!op->reply)
            return op->result = qs_err_set(QS_ENOMEM, "memory store: out of memory");
        memcpy(op->reply, s->v[key].p, s->v[key].n);
        op->reply[s->v[key].n] = 0;
        op->reply_len = s->v[key].n;
        return op->result = 0;
    case QS_ZDB_DEL:
        if (key >= s->n || !s->v[key].live)
            return op->result = QS_ENOTFOUND;
        free(s->v[key].p);
        s->v[key] = (struct mval){0};
        return op->result = 0;
    }
    (void)m;
    return op->result = QS_EINVAL;
}

static int mkv_batch(struct qs_fs_kv *kv, enum qs_fs_ns ns, struct qs_zdb_op *ops, size_t n)
{
    struct mkv *m = (struct mkv *)kv;
    int first = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (m->budget == 0) {
            ops[i].reply = NULL;
            ops[i].reply_len = 0;
            rc = ops[i].result = qs_err_set(QS_EIO, "memory store: injected failure");
        } else {
            if (m->budget > 0)
                m->budget--;
            rc = one(m, &m->ns[ns], &ops[i]);
        }
        if (rc && !first)
            first = rc;
    }
    pthread_mutex_unlock(&m->mu);
    return first;
}

static int mkv_usage(struct qs_fs_kv *kv, enum qs_fs_ns ns, struct qs_fs_nsusage *out)
{
    uint64_t v, b;
    qs_fs_kv_mem_count(kv, ns, &v, &b);
    out->entries = v;
    out->used_bytes = b;
    out->free_bytes = QS_ZDB_UNKNOWN;
    return 0;
}

static void mkv_free(struct qs_fs_kv *kv)
{
    struct mkv *m = (struct mkv *)kv;
    if (!m)
        return;
    for (int i = 0; i < 3; i++) {
        for (uint64_t k = 0; k < m->ns[i].n; k++)
            free(m->ns[i].v[k].p);
        free(m->ns[i].v);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

int qs_fs_kv_mem_new(struct qs_fs_kv **out)
{
    struct mkv *m = calloc(1, sizeof *m);
    if (!m)
        return qs_err_set(QS_ENOMEM, "out of memory");
    pthread_mutex_init(&m->mu, NULL);
    m->budget = -1;
    m->kv.batch = mkv_batch;
    m->kv.usage = mkv_usage;
    m->kv.free = mkv_free;
    *out = &m->kv;
    return 0;
}

void qs_fs_kv_mem_fail_after(struct qs_fs_kv *kv, long ops)
{
    struct mkv *m = (struct mkv *)kv;
    pthread_mutex_lock(&m->mu);
    m->budget = ops;
    pthread_mutex_unlock(&m->mu);
}

int qs_fs_kv_mem_clone(struct qs_fs_kv *kv, struct qs_fs_kv **out)
{
    struct mkv *m = (struct mkv *)kv;
    int rc = qs_fs_kv_mem_new(out);
    if (rc)
        return rc;
    struct mkv *c = (struct mkv *)*out;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < 3 && rc == 0; i++) {
        for (uint64_t k = 0; k < m->ns[i].n && rc == 0; k++)
            if (m->ns[i].v[k].live)
                rc = put(&c->ns[i], k, m->ns[i].v[k].p, m->ns[i].v[k].n);
        /* keys are never reused, even after deletes: the next append continues after
         * the last key ever given */
        if (rc == 0 && m->ns[i].n > c->ns[i].n) {
            rc = put(&c->ns[i], m->ns[i].n - 1, "", 0);
            if (rc == 0 && !m->ns[i].v[m->ns[i].n - 1].live) {
                free(c->ns[i].v[m->ns[i].n - 1].p);
                c->ns[i].v[m->ns[i].n - 1] = (struct mval){0};
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (rc) {
        mkv_free(*out);
        *out = NULL;
    }
    return rc;
}

void qs_fs_kv_mem_count(struct qs_fs_kv *kv, enum qs_fs_ns ns, uint64_t *values, uint64_t *bytes)
{
    struct mkv *m = (struct mkv *)kv;
    *values = *bytes = 0;
    pthread_mutex_lock(&m->mu);
    for (uint64_t k = 0; k < m->ns[ns].n; k++)
        if (m->ns[ns].v[k].live) {
            (*values)++;
            *bytes += m->ns[ns].v[k].n;
        }
    pthread_mutex_unlock(&m->mu);
}

int qs_fs_kv_mem_put(struct qs_fs_kv *kv, enum qs_fs_ns ns, uint64_t key, const void *v, size_t n)
{
    struct mkv *m = (struct mkv *)kv;
    pthread_mutex_lock(&m->mu);
    int rc = put(&m->ns[ns], key, v, n);
    pthread_mutex_unlock(&m->mu);
    return rc;
}
