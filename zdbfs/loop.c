/* See loop.h. */
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct loop {
    struct fuse_session *se;
    int fd;
    unsigned spin_us;
    bool batch_reads;
    atomic_int spinner; /* 1 while a thread polls */
    atomic_int error;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Waits until the device is readable: polling for a while when no one else is. */
static void wait_readable(struct loop *l, int64_t last)
{
    int zero = 0;
    if (l->spin_us && atomic_compare_exchange_strong(&l->spinner, &zero, 1)) {
        struct pollfd p = {.fd = l->fd, .events = POLLIN};
        while (now_us() - last < (int64_t)l->spin_us && !fuse_session_exited(l->se)) {
            if (poll(&p, 1, 0) > 0) {
                atomic_store(&l->spinner, 0);
                return;
            }
        }
        atomic_store(&l->spinner, 0);
    }
    struct pollfd p = {.fd = l->fd, .events = POLLIN};
    (void)poll(&p, 1, 200); /* wakes now and then to see whether the session exited */
}

/* True when buf holds a FUSE_READ request. */
static bool is_read(const struct fuse_buf *buf)
{
    struct fuse_in_header h;
    if ((buf->flags & FUSE_BUF_IS_FD) || buf->size < sizeof h)
        return false;
    memcpy(&h, buf->mem, sizeof h);
    return h.opcode == FUSE_READ;
}

static void *worker(void *arg)
{
    struct loop *l = arg;
    struct fuse_buf buf;
    memset(&buf, 0, sizeof buf);
    int64_t last = now_us();
    zdbfs_ops_hold_reads(l->batch_reads);
    while (!fuse_session_exited(l->se)) {
        int res = fuse_session_receive_buf(l->se, &buf);
        if (res == -EAGAIN) {
            if (zdbfs_ops_reads_held()) {
                zdbfs_ops_flush_reads(); /* nothing else waits: answer the held reads */
                last = now_us();
                continue;
            }
            wait_readable(l, last);
            continue;
        }
        if (res == -EINTR)
            continue;
        if (res <= 0) {
            if (res < 0)
                atomic_store(&l->error, res);
            fuse_session_exit(l->se);
            break;
        }
        if (zdbfs_ops_reads_held() && !is_read(&buf))
            zdbfs_ops_flush_reads();
        fuse_session_process_buf(l->se, &buf);
        last = now_us();
    }
    zdbfs_ops_hold_reads(false); /* answers what is held */
    free(buf.mem);
    return NULL;
}

int zdbfs_loop(struct fuse_session *se, unsigned threads, unsigned spin_us, bool batch_reads)
{
    struct loop l = {
        .se = se, .fd = fuse_session_fd(se), .spin_us = spin_us, .batch_reads = batch_reads};
    int fl = fcntl(l.fd, F_GETFL);
    if (fl < 0 || fcntl(l.fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    if (threads < 1)
        threads = 1;
    pthread_t *t = calloc(threads, sizeof *t);
    if (!t)
        return -ENOMEM;
    unsigned started = 0;
    for (; started < threads; started++)
        if (pthread_create(&t[started], NULL, worker, &l) != 0)
            break;
    int rc = started ? 0 : -EAGAIN;
    for (unsigned i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    free(t);
    fuse_session_reset(se);
    return rc ? rc : atomic_load(&l.error);
}
