#include "pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#define POOL_MAX 64

struct worker {
    struct qs_pool *pool;
    unsigned id;
    pthread_t th;
};

struct qs_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;                /* a task was queued, or stop */
    pthread_cond_t done;                /* a task finished */
    struct qs_pool_task *head, *tail;   /* parallel tasks */
    struct qs_pool_lane deflt;          /* the lane of tasks marked serial without a lane */
    struct qs_pool_lane *rhead, *rtail; /* lanes with a task to run and none running */
    int stop;
    unsigned threads, started;
    struct worker w[];
};

static struct qs_pool_task *pop(struct qs_pool_task **head, struct qs_pool_task **tail)
{
    struct qs_pool_task *t = *head;
    *head = t->next;
    if (!*head)
        *tail = NULL;
    return t;
}

void qs_pool_lane_init(struct qs_pool_lane *l)
{
    l->head = l->tail = NULL;
    l->next = NULL;
    l->running = l->ready = 0;
}

static struct qs_pool_lane *lane_of(struct qs_pool *p, const struct qs_pool_task *t)
{
    return t->lane ? t->lane : t->serial ? &p->deflt : NULL;
}

/* Puts l on the ready list when it has a task and runs none (lock held). */
static void lane_ready(struct qs_pool *p, struct qs_pool_lane *l)
{
    if (!l->head || l->running || l->ready)
        return;
    l->ready = 1;
    l->next = NULL;
    if (p->rtail)
        p->rtail->next = l;
    else
        p->rhead = l;
    p->rtail = l;
}

static void *pool_main(void *arg)
{
    struct worker *w = arg;
    struct qs_pool *p = w->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct qs_pool_task *t = NULL;
        struct qs_pool_lane *l = NULL;
        if (p->rhead) { /* a lane's next task goes before any parallel one */
            l = p->rhead;
            p->rhead = l->next;
            if (!p->rhead)
                p->rtail = NULL;
            l->ready = 0;
            l->running = 1;
            t = pop(&l->head, &l->tail);
        } else if (p->head) {
            t = pop(&p->head, &p->tail);
        } else if (p->stop) {
            break; /* stopping and nothing queued (a running lane queues its own next) */
        } else {
            pthread_cond_wait(&p->work, &p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        t->fn(t, w->id);
        pthread_mutex_lock(&p->mu);
        t->done = 1;
        if (l) {
            l->running = 0;
            lane_ready(p, l);
            if (l->ready)
                pthread_cond_signal(&p->work); /* its next task may be waiting */
        }
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int qs_pool_new(struct qs_pool **out, unsigned threads)
{
    *out = NULL;
    if (threads > POOL_MAX)
        return qs_err_set(QS_EINVAL, "pool: %u threads, at most %d", threads, POOL_MAX);
    struct qs_pool *p = calloc(1, sizeof(*p) + threads * sizeof(struct worker));
    if (!p)
        return qs_err_set(QS_ENOMEM, "pool: out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    qs_pool_lane_init(&p->deflt);
    p->threads = threads;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = 0;
    for (unsigned i = 0; i < threads; i++) {
        p->w[i].pool = p;
        p->w[i].id = i;
        if ((err = pthread_create(&p->w[i].th, NULL, pool_main, &p->w[i])) != 0)
            break;
        p->started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        qs_pool_free(p);
        return qs_err_sys(QS_EIO, err, "pool: cannot start thread");
    }
    *out = p;
    return 0;
}

void qs_pool_free(struct qs_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->started; i++)
        pthread_join(p->w[i].th, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p);
}

unsigned qs_pool_threads(const struct qs_pool *p)
{
    return p->threads;
}

void qs_pool_submit(struct qs_pool *p, struct qs_pool_task *t)
{
    t->next = NULL;
    t->done = 0;
    if (p->threads == 0) {
        t->fn(t, 0);
        t->done = 1;
        return;
    }
    pthread_mutex_lock(&p->mu);
    struct qs_pool_lane *l = lane_of(p, t);
    struct qs_pool_task **head = l ? &l->head : &p->head;
    struct qs_pool_task **tail = l ? &l->tail : &p->tail;
    if (*tail)
        (*tail)->next = t;
    else
        *head = t;
    *tail = t;
    if (l)
        lane_ready(p, l);
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

void qs_pool_wait(struct qs_pool *p, struct qs_pool_task *t)
{
    if (p->threads == 0)
        return;
    pthread_mutex_lock(&p->mu);
    while (!t->done)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

int qs_pool_done(struct qs_pool *p, struct qs_pool_task *t)
{
    if (p->threads == 0)
        return 1;
    pthread_mutex_lock(&p->mu);
    int d = t->done;
    pthread_mutex_unlock(&p->mu);
    return d;
}
