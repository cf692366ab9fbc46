/* A zstor cluster: config generations, one codec pool, one health state per backend
 * (cluster.h). */
#include "zstor/cluster.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "util/mem.h"
#include "zstor/private.h"

struct zs_gen {
    struct zstor_cluster *cl;
    uint64_t id;
    unsigned refs; /* the cluster (while current) and every job on it; under cl->mu */
    struct zstor_config *cfg;
};

/* What every job knows of one backend. */
struct zs_health {
    char *address, *ns;
    bool probed;
    int64_t probe_ms;
    int probe_rc;
    struct qs_backend_health h;
    int64_t down_until;
    char down_why[256];
};

/* Connections to one backend (address, namespace, password), lent to every job. */
struct zs_conns {
    char *key;
    struct qs_zdb_pool *pool;
};

#define CONNS_PER_BACKEND 8

struct zstor_cluster {
    pthread_mutex_t mu;
    struct zs_conns *conns;
    size_t nconns, capconns;
    struct zstor_cluster_opts o;
    struct qs_pool *pool;
    struct zs_gen *cur;
    uint64_t next_gen, next_job;
    unsigned gens;
    struct zs_health *hs;
    size_t nh, caph;
    uint64_t probes;
};

static struct zs_gen *gen_new(struct zstor_cluster *cl, struct zstor_config *cfg)
{
    struct zs_gen *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->cl = cl;
    g->id = ++cl->next_gen;
    g->refs = 1;
    g->cfg = cfg;
    cl->gens++;
    return g;
}

/* Drops one reference (cl->mu held); the last one frees the generation and its config. */
static void gen_unref(struct zs_gen *g)
{
    if (--g->refs)
        return;
    g->cl->gens--;
    zstor_config_free(g->cfg);
    free(g);
}

int zstor_cluster_new(struct zstor_cluster **out, struct zstor_config *cfg,
                      const struct zstor_cluster_opts *o)
{
    *out = NULL;
    struct zstor_cluster *cl = calloc(1, sizeof(*cl));
    if (!cl)
        return qs_err_set(QS_ENOMEM, "out of memory");
    if (o)
        cl->o = *o;
    else
        cl->o.workers = -1;
    int workers = cl->o.workers < 0 ? (int)qs_codec_default_workers() : cl->o.workers;
    int rc = qs_pool_new(&cl->pool, (unsigned)workers);
    if (rc < 0) {
        free(cl);
        return rc;
    }
    pthread_mutex_init(&cl->mu, NULL);
    if (!(cl->cur = gen_new(cl, cfg))) {
        zstor_cluster_free(cl);
        return qs_err_set(QS_ENOMEM, "out of memory");
    }
    *out = cl;
    return 0;
}

void zstor_cluster_free(struct zstor_cluster *cl)
{
    if (!cl)
        return;
    if (cl->cur) {
        pthread_mutex_lock(&cl->mu);
        gen_unref(cl->cur);
        pthread_mutex_unlock(&cl->mu);
    }
    qs_pool_free(cl->pool);
    for (size_t i = 0; i < cl->nh; i++) {
        free(cl->hs[i].address);
        free(cl->hs[i].ns);
    }
    free(cl->hs);
    for (size_t i = 0; i < cl->nconns; i++) {
        qs_zdb_pool_free(cl->conns[i].pool);
        free(cl->conns[i].key);
    }
    free(cl->conns);
    pthread_mutex_destroy(&cl->mu);
    free(cl);
}

uint64_t zstor_cluster_reload(struct zstor_cluster *cl, struct zstor_config *cfg)
{
    pthread_mutex_lock(&cl->mu);
    struct zs_gen *g = gen_new(cl, cfg);
    uint64_t id = 0;
    if (g) {
        gen_unref(cl->cur);
        cl->cur = g;
        id = g->id;
    } else {
        zstor_config_free(cfg); /* out of memory: the old generation stays */
    }
    pthread_mutex_unlock(&cl->mu);
    return id;
}

int zstor_ctx_new_on(struct zstor_ctx **out, struct zstor_cluster *cl,
                     const struct zstor_ctx_opts *o)
{
    *out = NULL;
    struct zstor_ctx *z = calloc(1, sizeof(*z));
    if (!z)
        return qs_err_set(QS_ENOMEM, "out of memory");
    if (o)
        z->o = *o;
    else
        zstor_ctx_opts_default(&z->o);
    z->o.dir_nosync = cl->o.dir_nosync;
    z->o.dir_create = cl->o.dir_create;
    z->cl = cl;
    z->pool = cl->pool;
    pthread_mutex_lock(&cl->mu);
    z->gen = cl->cur;
    z->gen->refs++;
    z->job = ++cl->next_job;
    pthread_mutex_unlock(&cl->mu);
    z->cfg = z->gen->cfg;
    int rc = zs_ctx_build(z);
    if (rc < 0) {
        zstor_ctx_free(z);
        return rc;
    }
    /* what the other jobs learnt, from the start (a dead backend is not tried again) */
    for (size_t i = 0; i < z->nmeta; i++)
        (void)zs_health_take(&z->meta[i], false);
    for (size_t i = 0; i < z->ndata; i++)
        (void)zs_health_take(z->data[i], false);
    *out = z;
    return 0;
}

void zs_gen_release(struct zstor_ctx *z)
{
    if (!z->cl || !z->gen)
        return;
    pthread_mutex_lock(&z->cl->mu);
    gen_unref(z->gen);
    pthread_mutex_unlock(&z->cl->mu);
    z->gen = NULL;
}

uint64_t zstor_ctx_job(const struct zstor_ctx *z)
{
    return z->job;
}

uint64_t zstor_ctx_generation(const struct zstor_ctx *z)
{
    return z->gen ? z->gen->id : 0;
}

void zstor_cluster_stats(struct zstor_cluster *cl, uint64_t *probes, unsigned *generations)
{
    pthread_mutex_lock(&cl->mu);
    if (probes)
        *probes = cl->probes;
    if (generations)
        *generations = cl->gens;
    pthread_mutex_unlock(&cl->mu);
}

/* ---- shared connections ---- */

struct qs_zdb_pool *zs_cluster_pool(struct zstor_cluster *cl, const struct qs_backend_opts *o)
{
    char *key = NULL;
    if (asprintf(&key, "%s%c%s%c%s", o->address, 0x1f, o->ns ? o->ns : "", 0x1f,
                 o->password ? o->password : "") < 0)
        return NULL;
    struct qs_zdb_pool *found = NULL;
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->nconns && !found; i++)
        if (strcmp(cl->conns[i].key, key) == 0)
            found = cl->conns[i].pool;
    if (!found && cl->nconns == cl->capconns) {
        size_t cap = cl->capconns ? 2 * cl->capconns : 16;
        struct zs_conns *p = realloc(cl->conns, cap * sizeof(*p));
        if (p) {
            cl->conns = p;
            cl->capconns = cap;
        }
    }
    if (!found && cl->nconns < cl->capconns) {
        struct qs_zdb_pool_opts po = {.max_conns = CONNS_PER_BACKEND};
        qs_zdb_opts_default(&po.conn);
        po.conn.address = o->address;
        po.conn.ns = o->ns;
        po.conn.password = o->password;
        po.conn.secure = o->secure;
        if (o->connect_timeout_ms)
            po.conn.connect_timeout_ms = o->connect_timeout_ms;
        if (o->request_timeout_ms)
            po.conn.request_timeout_ms = o->request_timeout_ms;
        if (o->attempts)
            po.conn.attempts = o->attempts;
        if (o->backoff_ms)
            po.conn.backoff_ms = o->backoff_ms;
        if (qs_zdb_pool_new(&found, &po) == 0) {
            cl->conns[cl->nconns].key = key;
            cl->conns[cl->nconns].pool = found;
            cl->nconns++;
            key = NULL;
        } else {
            found = NULL;
        }
    }
    pthread_mutex_unlock(&cl->mu);
    if (key)
        qs_wipe(key, strlen(key)); /* it holds the password */
    free(key);
    return found;
}

/* ---- shared health ---- */

/* The entry of k (created when missing, NULL when out of memory); cl->mu held. */
static struct zs_health *entry(struct zstor_cluster *cl, const struct zs_bk *k)
{
    for (size_t i = 0; i < cl->nh; i++)
        if (strcmp(cl->hs[i].address, k->address) == 0 && strcmp(cl->hs[i].ns, k->ns) == 0)
            return &cl->hs[i];
    if (cl->nh == cl->caph) {
        size_t cap = cl->caph ? 2 * cl->caph : 16;
        struct zs_health *p = realloc(cl->hs, cap * sizeof(*p));
        if (!p)
            return NULL;
        cl->hs = p;
        cl->caph = cap;
    }
    struct zs_health *h = &cl->hs[cl->nh];
    memset(h, 0, sizeof(*h));
    h->address = strdup(k->address);
    h->ns = strdup(k->ns);
    if (!h->address || !h->ns) {
        free(h->address);
        free(h->ns);
        return NULL;
    }
    cl->nh++;
    return h;
}

bool zs_health_take(struct zs_bk *k, bool force)
{
    struct zstor_cluster *cl = k->cl;
    if (!cl)
        return false;
    bool fresh = false;
    pthread_mutex_lock(&cl->mu);
    struct zs_health *h = entry(cl, k);
    if (h) {
        if (h->down_until > k->down_until) { /* a transport failure another job saw */
            k->down_until = h->down_until;
            snprintf(k->down_why, sizeof(k->down_why), "%s", h->down_why);
        }
        fresh = !force && h->probed && qs_now_ms() - h->probe_ms < ZS_PROBE_TTL_MS;
        if (fresh) {
            k->probed = true;
            k->probe_ms = h->probe_ms;
            k->probe_rc = h->probe_rc;
            k->h = h->h;
            k->written = 0;
        }
    }
    pthread_mutex_unlock(&cl->mu);
    return fresh;
}

void zs_health_publish(const struct zs_bk *k)
{
    struct zstor_cluster *cl = k->cl;
    if (!cl)
        return;
    pthread_mutex_lock(&cl->mu);
    struct zs_health *h = entry(cl, k);
    if (h) {
        if (k->probed && k->probe_ms >= h->probe_ms) {
            if (k->probe_ms != h->probe_ms)
                cl->probes++;
            h->probed = true;
            h->probe_ms = k->probe_ms;
            h->probe_rc = k->probe_rc;
            h->h = k->h;
        }
        h->down_until = k->down_until;
        snprintf(h->down_why, sizeof(h->down_why), "%s", k->down_why);
    }
    pthread_mutex_unlock(&cl->mu);
}
