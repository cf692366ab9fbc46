/* Calls to the zstor daemon, and the restore of a frontend (zcall.h). */
#include "zcall.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/checkpoint.h"
#include "daemon/client.h"

/* ---- a command with a time bound ---- */

struct watch {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done;
    unsigned timeout_s;
    atomic_int cancel;
};

static void *watch_main(void *arg)
{
    struct watch *w = arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)w->timeout_s;
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cond, &w->mu, &ts) == ETIMEDOUT)
            break;
    if (!w->done)
        atomic_store(&w->cancel, 1);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int qz_run(const struct zstor_config *cfg, int out_fd, int err_fd, unsigned timeout_s, int *status,
           char *const *argv)
{
    *status = 1;
    if (!cfg->socket)
        return qs_err_set(QS_ENOTFOUND, "%s names no daemon socket", cfg->name);
    int argc = 0;
    while (argv[argc])
        argc++;
    struct watch w = {.timeout_s = timeout_s};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cond, NULL);
    pthread_t t;
    bool watching = timeout_s && pthread_create(&t, NULL, watch_main, &w) == 0;
    int rc = zsd_client_run(cfg->socket, argc, argv, 0, out_fd, err_fd, &w.cancel, status);
    if (watching) {
        pthread_mutex_lock(&w.mu);
        w.done = true;
        pthread_cond_signal(&w.cond);
        pthread_mutex_unlock(&w.mu);
        pthread_join(t, NULL);
    }
    if (rc == QS_ENOTFOUND)
        rc = qs_err_set(QS_ENOTFOUND, "the zstor daemon does not answer on %s", cfg->socket);
    else if (rc == 0 && atomic_load(&w.cancel))
        rc = qs_err_set(QS_ETIMEOUT, "zstor %s: cancelled after %u s", argv[0], timeout_s);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

int qz_capture(const struct zstor_config *cfg, int err_fd, unsigned timeout_s, int *status,
               char **out, size_t *len, char *const *argv)
{
    *out = NULL;
    *len = 0;
    int fd = memfd_create("qsfs-capture", MFD_CLOEXEC);
    if (fd < 0)
        return qs_err_sys(QS_EIO, errno, "memfd_create");
    int nul = -1;
    if (err_fd < 0)
        err_fd = nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int rc = err_fd < 0 ? qs_err_sys(QS_EIO, errno, "/dev/null")
                        : qz_run(cfg, fd, err_fd, timeout_s, status, argv);
    if (nul >= 0)
        close(nul);
    struct stat st;
    if (rc == 0 && fstat(fd, &st) < 0)
        rc = qs_err_sys(QS_EIO, errno, "fstat");
    if (rc == 0) {
        size_t n = (size_t)st.st_size;
        char *buf = malloc(n + 1);
        if (!buf) {
            rc = qs_err_set(QS_ENOMEM, "out of memory");
        } else if (n && pread(fd, buf, n, 0) != (ssize_t)n) {
            rc = qs_err_sys(QS_EIO, errno, "reading the daemon's answer");
            free(buf);
        } else {
            buf[n] = '\0';
            *out = buf;
            *len = n;
        }
    }
    close(fd);
    return rc;
}

/* ---- restore ---- */

#define RESTORE_TIMEOUT_S 3600

static int retrieve(const struct zstor_config *cfg, const char *path, FILE *log)
{
    char *argv[] = {"retrieve", "--file", (char *)path, NULL};
    int status;
    int rc = qz_run(cfg, STDERR_FILENO, STDERR_FILENO, RESTORE_TIMEOUT_S, &status, argv);
    if (rc < 0)
        return rc;
    if (status != 0)
        return qs_err_set(QS_EIO, "restore: zstor retrieve %s failed (exit %d)", path, status);
    if (log)
        fprintf(log, "restored %s\n", path);
    return 0;
}

/* The stored names below prefix (NUL-separated in *names). */
static int list_below(const struct zstor_config *cfg, const char *prefix, char **names, size_t *len)
{
    char *argv[] = {"list", "-0", (char *)prefix, NULL};
    int status;
    int rc = qz_capture(cfg, STDERR_FILENO, 600, &status, names, len, argv);
    if (rc == 0 && status != 0) {
        free(*names);
        *names = NULL;
        rc = qs_err_set(QS_EIO, "restore: zstor list %s failed (exit %d)", prefix, status);
    }
    return rc;
}

static int restore_ns(const struct zstor_config *cfg, const char *index_dir, const char *data_dir,
                      const char *ns, FILE *log, struct qz_restore *res)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s/zdb-namespace", index_dir, ns);
    struct stat st;
    if (stat(path, &st) == 0) {
        res->had_local = true;
        return 0;
    }
    char prefix[4200];
    char *names = NULL;
    size_t len = 0;
    snprintf(prefix, sizeof(prefix), "%s/%s/", index_dir, ns);
    int rc = list_below(cfg, prefix, &names, &len);
    if (rc < 0)
        return rc;
    bool have_desc = false;
    for (size_t off = 0; off < len; off += strlen(names + off) + 1) {
        const char *name = names + off;
        const char *base = strrchr(name, '/');
        char kind;
        uint32_t id;
        if (!base || !zsc_zdb_file(base + 1, &kind, &id))
            continue;
        have_desc |= kind == 'n';
        if ((rc = retrieve(cfg, name, log)) < 0)
            break;
        res->files++;
        res->had_remote = true;
    }
    free(names);
    if (rc < 0)
        return rc;
    if (res->had_remote && !have_desc)
        return qs_err_set(QS_EIO,
                          "restore: the backends hold index files of %s but not its "
                          "descriptor (zdb-namespace)",
                          ns);
    snprintf(prefix, sizeof(prefix), "%s/%s/", data_dir, ns);
    if ((rc = list_below(cfg, prefix, &names, &len)) < 0)
        return rc;
    const char *last = NULL;
    uint32_t last_id = 0;
    for (size_t off = 0; off < len; off += strlen(names + off) + 1) {
        const char *base = strrchr(names + off, '/');
        char kind;
        uint32_t id;
        if (base && zsc_zdb_file(base + 1, &kind, &id) && kind == 'd' && (!last || id > last_id)) {
            last = names + off;
            last_id = id;
        }
    }
    if (last) {
        rc = retrieve(cfg, last, log);
        if (rc == 0)
            res->files++, res->had_remote = true;
    }
    free(names);
    return rc;
}

int qz_restore(const struct zstor_config *cfg, const char *index_dir, const char *data_dir,
               FILE *log, struct qz_restore *res)
{
    memset(res, 0, sizeof(*res));
    int rc = restore_ns(cfg, index_dir, data_dir, ZSC_META_NS, log, res);
    if (rc == 0)
        rc = restore_ns(cfg, index_dir, data_dir, ZSC_DATA_NS, log, res);
    return rc;
}
