/* Connection pool (pool.h). */
#include "zdbclient/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/mem.h"
#include "util/sys.h"

#define WAIT_SLICE_MS 50 /* a waiting borrower looks at its cancel flag this often */

struct qs_zdb_pool {
    pthread_mutex_t mu;
    pthread_cond_t back; /* a connection came back */
    struct qs_zdb_opts o;
    char *address, *ns, *password;
    unsigned max, open, peak;
    bool locks; /* mu and back are initialized */
    struct qs_zdb **idle;
    size_t nidle;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int qs_zdb_pool_new(struct qs_zdb_pool **out, const struct qs_zdb_pool_opts *o)
{
    *out = NULL;
    /* the options are checked once, as a connection would check them */
    struct qs_zdb *probe = NULL;
    int rc = qs_zdb_new(&probe, &o->conn);
    if (rc < 0)
        return rc;
    struct qs_zdb_pool *p = calloc(1, sizeof(*p));
    if (!p) {
        qs_zdb_free(probe);
        return qs_err_set(QS_ENOMEM, "out of memory");
    }
    p->o = o->conn;
    p->address = dup_or_null(o->conn.address);
    p->ns = dup_or_null(o->conn.ns);
    p->password = dup_or_null(o->conn.password);
    p->max = o->max_conns ? o->max_conns : 4;
    p->idle = calloc(p->max, sizeof(*p->idle));
    if (!p->address || (o->conn.ns && !p->ns) || (o->conn.password && !p->password) || !p->idle) {
        qs_zdb_free(probe);
        qs_zdb_pool_free(p);
        return qs_err_set(QS_ENOMEM, "out of memory");
    }
    p->o.address = p->address;
    p->o.ns = p->ns;
    p->o.password = p->password;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->back, &ca);
    pthread_condattr_destroy(&ca);
    p->locks = true;
    p->idle[p->nidle++] = probe; /* the first connection */
    p->open = p->peak = 1;
    *out = p;
    return 0;
}

void qs_zdb_pool_free(struct qs_zdb_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nidle; i++)
        qs_zdb_free(p->idle[i]);
    free(p->idle);
    if (p->password)
        qs_wipe(p->password, strlen(p->password));
    free(p->password);
    free(p->ns);
    free(p->address);
    if (p->locks) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->back);
    }
    free(p);
}

int qs_zdb_pool_get(struct qs_zdb_pool *p, const struct qs_zdb_call *call, struct qs_zdb **out)
{
    *out = NULL;
    int64_t deadline = call ? call->deadline_ms : 0;
    const atomic_int *cancel = call ? call->cancel : NULL;
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    while (!p->nidle && p->open >= p->max) {
        if (cancel && atomic_load(cancel)) {
            rc = qs_err_set(QS_EAGAIN, "zdb pool %s: cancelled while waiting for a connection",
                            p->address);
            break;
        }
        int64_t now = qs_now_ms();
        if (deadline && now >= deadline) {
            rc = qs_err_set(QS_ETIMEOUT,
                            "zdb pool %s: all %u connections busy until the call's deadline",
                            p->address, p->max);
            break;
        }
        int64_t until = now + WAIT_SLICE_MS;
        if (deadline && deadline < until)
            until = deadline;
        struct timespec ts = {(time_t)(until / 1000), (long)(until % 1000) * 1000000L};
        pthread_cond_timedwait(&p->back, &p->mu, &ts);
    }
    struct qs_zdb *c = NULL;
    bool fresh = false;
    if (rc == 0 && p->nidle) {
        c = p->idle[--p->nidle];
    } else if (rc == 0) {
        p->open++; /* reserve the slot; the connection is made outside the lock */
        if (p->open > p->peak)
            p->peak = p->open;
        fresh = true;
    }
    pthread_mutex_unlock(&p->mu);
    if (rc < 0)
        return rc;
    if (fresh && (rc = qs_zdb_new(&c, &p->o)) < 0) {
        pthread_mutex_lock(&p->mu);
        p->open--;
        pthread_cond_signal(&p->back);
        pthread_mutex_unlock(&p->mu);
        return rc;
    }
    qs_zdb_set_limits(c, deadline, cancel);
    *out = c;
    return 0;
}

void qs_zdb_pool_put(struct qs_zdb_pool *p, struct qs_zdb *c)
{
    if (!c)
        return;
    qs_zdb_set_limits(c, 0, NULL);
    pthread_mutex_lock(&p->mu);
    p->idle[p->nidle++] = c; /* nidle < open <= max: there is room */
    pthread_cond_signal(&p->back);
    pthread_mutex_unlock(&p->mu);
}

int qs_zdb_pool_batch(struct qs_zdb_pool *p, const struct qs_zdb_call *call, struct qs_zdb_op *ops,
                      size_t n)
{
    struct qs_zdb *c;
    int rc = qs_zdb_pool_get(p, call, &c);
    if (rc < 0)
        return rc;
    rc = qs_zdb_batch(c, ops, n);
    qs_zdb_pool_put(p, c);
    return rc;
}

void qs_zdb_pool_counts(struct qs_zdb_pool *p, unsigned *open, unsigned *peak)
{
    pthread_mutex_lock(&p->mu);
    if (open)
        *open = p->open;
    if (peak)
        *peak = p->peak;
    pthread_mutex_unlock(&p->mu);
}
