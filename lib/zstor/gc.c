/* zstor gc (gc.h). */
#include "zstor/gc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "zstor/private.h"

#define DEL_BATCH 256

/* The referenced keys of one data backend, sorted for lookups. */
struct refset {
    struct qs_backend_key *k;
    size_t n, cap;
};

struct gc_job {
    struct zstor_ctx *z;
    struct refset *refs; /* per z->data index */
    size_t nrefs;
    uint8_t (*ids)[QS_CODEC_ID_LEN]; /* file ids of the readable records */
    size_t nids, capids;
    uint64_t records, unreadable;
    int rc;
};

static int key_cmp(const void *a, const void *b)
{
    const struct qs_backend_key *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->b, y->b, x->len);
}

static int grow_refs(struct gc_job *j, size_t idx)
{
    if (idx < j->nrefs)
        return 0;
    struct refset *p = realloc(j->refs, (idx + 1) * sizeof(*p));
    if (!p)
        return qs_err_set(QS_ENOMEM, "out of memory");
    memset(p + j->nrefs, 0, (idx + 1 - j->nrefs) * sizeof(*p));
    j->refs = p;
    j->nrefs = idx + 1;
    return 0;
}

static int add_ref(struct refset *s, const struct qs_backend_key *k)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        struct qs_backend_key *p = realloc(s->k, cap * sizeof(*p));
        if (!p)
            return qs_err_set(QS_ENOMEM, "out of memory");
        s->k = p;
        s->cap = cap;
    }
    s->k[s->n++] = *k;
    return 0;
}

static int collect(void *ud, const char *key, const struct zstor_meta_record *r, int lrc)
{
    struct gc_job *j = ud;
    if (lrc < 0) {
        j->unreadable++;
        return 0;
    }
    j->records++;
    if (j->nids == j->capids) {
        size_t cap = j->capids ? 2 * j->capids : 256;
        void *p = realloc(j->ids, cap * sizeof(*j->ids));
        if (!p)
            return qs_err_set(QS_ENOMEM, "out of memory");
        j->ids = p;
        j->capids = cap;
    }
    memcpy(j->ids[j->nids++], r->desc.file_id, QS_CODEC_ID_LEN);
    for (unsigned pos = 0; pos < r->nshards; pos++) {
        const struct zstor_meta_shard *s = &r->shard[pos];
        if (s->flags & ZSTOR_META_SHARD_ABSENT)
            continue;
        int idx = zs_data_lookup(j->z, s->address, s->ns);
        if (idx < 0)
            return QS_ENOMEM;
        int rc = grow_refs(j, (size_t)idx);
        for (uint64_t c = 0; rc == 0 && c < r->nchunks; c++) {
            struct qs_backend_key keys[ZS_MAX_PARTS];
            unsigned n = 0;
            if ((rc = zs_chunk_keys(r, pos, c, keys, ZS_MAX_PARTS, &n, NULL)) < 0)
                break;
            for (unsigned i = 0; rc == 0 && i < n; i++)
                rc = add_ref(&j->refs[idx], &keys[i]);
        }
        if (rc < 0)
            return rc;
        (void)key;
    }
    return 0;
}

struct scan_job {
    struct qs_backend *be;
    const struct refset *refs;
    struct zstor_gc_backend *out;
    int64_t cutoff; /* values written before this (epoch seconds) may go */
    bool del;
    struct qs_backend_op ops[DEL_BATCH];
    size_t nops;
};

static void flush_deletes(struct scan_job *s)
{
    if (!s->nops)
        return;
    if (qs_backend_batch(s->be, s->ops, s->nops) < 0) /* per-op results below */
        qs_err_clear();
    for (size_t i = 0; i < s->nops; i++)
        if (s->ops[i].result == 0 || s->ops[i].result == QS_ENOTFOUND)
            s->out->deleted++;
    s->nops = 0;
}

static int scan_one(void *ud, const struct qs_backend_key *key, uint64_t len, int64_t written)
{
    struct scan_job *s = ud;
    s->out->values++;
    if (s->refs && s->refs->n && bsearch(key, s->refs->k, s->refs->n, sizeof(*key), key_cmp))
        return 0;
    if (written == 0 || written > s->cutoff) {
        s->out->young++; /* maybe a store in progress */
        return 0;
    }
    s->out->garbage++;
    s->out->garbage_bytes += len;
    if (s->del) {
        struct qs_backend_op *op = &s->ops[s->nops++];
        memset(op, 0, sizeof(*op));
        op->kind = QS_BACKEND_DEL;
        op->key = *key;
        if (s->nops == DEL_BATCH)
            flush_deletes(s);
    }
    return 0;
}

struct marker_job {
    struct gc_job *j;
    struct zstor_ctx *z;
    char (*names)[300];
    size_t n, cap;
};

static int id_known(const struct gc_job *j, const char *hex)
{
    char h[2 * QS_CODEC_ID_LEN + 1];
    for (size_t i = 0; i < j->nids; i++) {
        zs_hex(j->ids[i], QS_CODEC_ID_LEN, h);
        if (strcmp(h, hex) == 0)
            return 1;
    }
    return 0;
}

static int marker_one(void *ud, const char *name, size_t len)
{
    struct marker_job *m = ud;
    const char *slash = memrchr(name, '/', len);
    if (!slash || len >= 300)
        return 0;
    char hex[2 * QS_CODEC_ID_LEN + 1];
    size_t hl = len - (size_t)(slash + 1 - name);
    if (hl != 2 * QS_CODEC_ID_LEN)
        return 0;
    memcpy(hex, slash + 1, hl);
    hex[hl] = '\0';
    if (id_known(m->j, hex))
        return 0;
    for (size_t i = 0; i < m->n; i++)
        if (strlen(m->names[i]) == len && memcmp(m->names[i], name, len) == 0)
            return 0;
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        void *p = realloc(m->names, cap * sizeof(*m->names));
        if (!p)
            return qs_err_set(QS_ENOMEM, "out of memory");
        m->names = p;
        m->cap = cap;
    }
    memcpy(m->names[m->n], name, len);
    m->names[m->n][len] = '\0';
    m->n++;
    return 0;
}

int zstor_gc(struct zstor_ctx *z, const struct zstor_gc_opts *o, struct zstor_gc_result *res)
{
    memset(res, 0, sizeof(*res));
    struct gc_job j = {.z = z};
    struct marker_job m = {.j = &j, .z = z};
    int rc = zs_list(z, collect, &j);
    res->records = j.records;
    res->unreadable = j.unreadable;
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < j.nrefs; i++)
        if (j.refs[i].n)
            qsort(j.refs[i].k, j.refs[i].n, sizeof(*j.refs[i].k), key_cmp);
    /* done markers of versions no record holds any more; every meta backend must
     * answer this listing for a deletion to be safe */
    char prefix[300];
    snprintf(prefix, sizeof(prefix), "/%s/done/", z->cfg->meta.prefix);
    bool all_meta = true;
    for (size_t i = 0; i < z->nmeta; i++)
        if (qs_backend_list_named(z->meta[i].be, prefix, marker_one, &m) < 0)
            all_meta = false;
    bool del = o->delete_garbage && !j.unreadable && all_meta;
    res->nbackends = z->ncfg;
    if (!(res->backend = calloc(z->ncfg ? z->ncfg : 1, sizeof(*res->backend)))) {
        rc = qs_err_set(QS_ENOMEM, "out of memory");
        goto out;
    }
    int64_t cutoff = (int64_t)time(NULL) - (int64_t)o->min_age_s;
    for (size_t i = 0; i < z->ncfg; i++) {
        struct zstor_gc_backend *b = &res->backend[i];
        snprintf(b->name, sizeof(b->name), "%s", zs_bk_name(z->data[i]));
        struct scan_job *s = calloc(1, sizeof(*s));
        if (!s) {
            rc = qs_err_set(QS_ENOMEM, "out of memory");
            goto out;
        }
        s->be = z->data[i]->be;
        s->refs = i < j.nrefs ? &j.refs[i] : NULL;
        s->out = b;
        s->cutoff = cutoff;
        s->del = del;
        b->rc = qs_backend_list_keys(s->be, scan_one, s);
        if (b->rc < 0)
            snprintf(b->error, sizeof(b->error), "%s", qs_err_msg());
        else
            flush_deletes(s);
        free(s);
    }
    res->markers_garbage = m.n;
    for (size_t i = 0; del && i < m.n; i++) {
        bool ok = true;
        for (size_t b = 0; b < z->nmeta; b++) {
            int drc = qs_backend_del_named(z->meta[b].be, m.names[i]);
            ok &= drc == 0 || drc == QS_ENOTFOUND;
        }
        res->markers_deleted += ok;
    }
    if (o->delete_garbage && !del)
        rc = qs_err_set(QS_EBUSY,
                        "nothing deleted: %s (a record that was not read could reference what "
                        "looks unreferenced)",
                        j.unreadable ? "some metadata records could not be read"
                                     : "a meta backend did not answer");
out:
    free(m.names);
    for (size_t i = 0; i < j.nrefs; i++)
        free(j.refs[i].k);
    free(j.refs);
    free(j.ids);
    return rc;
}

void zstor_gc_result_free(struct zstor_gc_result *res)
{
    free(res->backend);
    memset(res, 0, sizeof(*res));
}
