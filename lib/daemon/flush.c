/* Flushing the zdbfs mount before a checkpoint someone waits for (flush.h): the kernel's
 * dirty pages go to zdbfs (syncfs), zdbfs commits everything to the local zdb (the
 * snapshot ioctl of 0-db-fs), and only then does the pass take its snapshot. Without it,
 * what was written in the last second or so (zdbfs commits in the background, the kernel
 * writes back later still) would be missing from a checkpoint that returned "stored".
 *
 * A mount that hangs must not hang the checkpoint thread: the flush runs on a thread of
 * its own, waited for with a bound; a flush that does not come back is left behind (and
 * no new one starts while it is stuck). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "daemon/flush.h"
#include "util/sys.h"
#include "util/err.h"

#define FUSE_SUPER_MAGIC     0x65735546L
#define ZDBFS_IOCTL_SNAPSHOT 0x80084500UL /* _IOR('E', 0, uint64_t) (0-db-fs) */

struct zsd_flush {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int refs; /* the thread's and the daemon's */
    bool done;
    int rc; /* 0 flushed, 1 not a FUSE mount, < 0 failed (err) */
    char err[300];
    char *mountpoint;
};

static void flush_unref(struct zsd_flush *f)
{
    pthread_mutex_lock(&f->mu);
    int left = --f->refs;
    pthread_mutex_unlock(&f->mu);
    if (left == 0) {
        pthread_cond_destroy(&f->cond);
        pthread_mutex_destroy(&f->mu);
        free(f->mountpoint);
        free(f);
    }
}

static void *flush_main(void *arg)
{
    struct zsd_flush *f = arg;
    int rc = 0;
    char err[300] = "";
    struct statfs sf;
    int fd = -1;
    if (statfs(f->mountpoint, &sf) != 0 || sf.f_type != FUSE_SUPER_MAGIC) {
        rc = 1; /* not mounted (qsfs down unmounts first): nothing is held above zdb */
    } else if ((fd = open(f->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = -1;
        snprintf(err, sizeof(err), "cannot open %s: %s", f->mountpoint, strerror(errno));
    } else if (syncfs(fd) != 0) {
        rc = -1;
        snprintf(err, sizeof(err), "syncfs %s: %s", f->mountpoint, strerror(errno));
    } else {
        uint64_t when = 0;
        if (ioctl(fd, ZDBFS_IOCTL_SNAPSHOT, &when) != 0) {
            rc = errno == ENOTTY || errno == ENOSYS ? 1 : -1; /* another FUSE filesystem */
            snprintf(err, sizeof(err), "snapshot ioctl on %s: %s", f->mountpoint, strerror(errno));
        }
    }
    if (fd >= 0)
        close(fd);
    pthread_mutex_lock(&f->mu);
    f->rc = rc;
    snprintf(f->err, sizeof(f->err), "%s", err);
    f->done = true;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
    flush_unref(f);
    return NULL;
}

int zsd_flush_mount(struct zsd_flush **last, const char *mountpoint, int64_t timeout_ms,
                    const atomic_int *stop)
{
    if (!mountpoint || !*mountpoint)
        return 1;
    struct zsd_flush *f = *last;
    if (f) {
        pthread_mutex_lock(&f->mu);
        bool done = f->done;
        pthread_mutex_unlock(&f->mu);
        if (!done)
            return qs_err_set(QS_ETIMEOUT,
                              "zdbfs at %s has not answered an earlier flush: it is hung",
                              f->mountpoint);
        flush_unref(f);
        *last = NULL;
    }
    if (!(f = calloc(1, sizeof(*f))) || !(f->mountpoint = strdup(mountpoint))) {
        free(f);
        return qs_err_set(QS_ENOMEM, "flush: out of memory");
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cond, &ca);
    pthread_condattr_destroy(&ca);
    f->refs = 2;
    pthread_t t;
    if (pthread_create(&t, NULL, flush_main, f) != 0) {
        f->refs = 1;
        flush_unref(f);
        return qs_err_set(QS_EIO, "flush: cannot start a thread");
    }
    pthread_detach(t);
    *last = f;
    int64_t end = qs_now_ms() + timeout_ms;
    pthread_mutex_lock(&f->mu);
    for (int64_t now; !f->done && !(stop && atomic_load(stop)) && (now = qs_now_ms()) < end;) {
        /* in slices of 200 ms, so that a stop is seen */
        int64_t until = now + 200 < end ? now + 200 : end;
        struct timespec ts = {until / 1000, (long)(until % 1000) * 1000000L};
        pthread_cond_timedwait(&f->cond, &f->mu, &ts);
    }
    int rc = f->done ? f->rc : 0;
    bool done = f->done;
    char err[300];
    snprintf(err, sizeof(err), "%s", f->err);
    pthread_mutex_unlock(&f->mu);
    if (!done && stop && atomic_load(stop))
        return qs_err_set(QS_ETIMEOUT, "flush of %s: stopping", mountpoint);
    if (!done)
        return qs_err_set(QS_ETIMEOUT, "zdbfs at %s did not finish a flush in %lld s", mountpoint,
                          (long long)(timeout_ms / 1000));
    if (rc < 0)
        return qs_err_set(QS_EIO, "%s", err);
    return rc;
}

void zsd_flush_drop(struct zsd_flush **last)
{
    if (*last)
        flush_unref(*last); /* a thread still stuck frees it when it comes back */
    *last = NULL;
}
