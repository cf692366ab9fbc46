/* OS helpers (sys.h). */
#include "util/sys.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int sys_code(int err)
{
    return err == ENOSPC || err == EDQUOT ? QS_EFULL : QS_EIO;
}

int qs_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            qs_err_sys(sys_code(err), err, "write");
            errno = err;
            return sys_code(err);
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int qs_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        qs_err_sys(QS_EIO, err, "open directory %s", dir);
        errno = err;
        return QS_EIO;
    }
    int rc = 0;
    if (fsync(fd) != 0 && errno != EINVAL) {
        int err = errno;
        rc = qs_err_sys(sys_code(err), err, "fsync directory %s", dir);
        errno = err;
    }
    close(fd);
    return rc;
}

int qs_fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return qs_fsync_dir(".");
    if (slash == path)
        return qs_fsync_dir("/");
    size_t n = (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (!dir)
        return qs_err_set(QS_ENOMEM, "out of memory");
    memcpy(dir, path, n);
    dir[n] = '\0';
    int rc = qs_fsync_dir(dir);
    free(dir);
    return rc;
}

int qs_replace_file(const char *path, const void *p, size_t n, mode_t mode, unsigned flags)
{
    bool sync = !(flags & QS_REPLACE_NOSYNC);
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp)
        return qs_err_set(QS_ENOMEM, "out of memory");
    snprintf(tmp, len + 16, "%s.tmp-XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int rc = qs_err_sys(sys_code(errno), errno, "create %s", tmp);
        free(tmp);
        return rc;
    }
    int rc = qs_write_all(fd, p, n);
    if (rc < 0)
        rc = qs_err_sys(rc, errno, "write %s", tmp);
    if (rc == 0 && fchmod(fd, mode) != 0)
        rc = qs_err_sys(QS_EIO, errno, "chmod %s", tmp);
    if (rc == 0 && sync && fsync(fd) != 0)
        rc = qs_err_sys(sys_code(errno), errno, "fsync %s", tmp);
    if (close(fd) != 0 && rc == 0)
        rc = qs_err_sys(QS_EIO, errno, "close %s", tmp);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = qs_err_sys(QS_EIO, errno, "rename %s to %s", tmp, path);
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    if (rc == 0 && sync)
        rc = qs_fsync_parent(path);
    return rc;
}

int qs_random_bytes(void *p, size_t n)
{
    uint8_t *b = p;
    while (n) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return qs_err_sys(QS_EIO, errno, "getrandom");
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

int64_t qs_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
