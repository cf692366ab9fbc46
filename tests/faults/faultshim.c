/* LD_PRELOAD shim for tests. Three faults, each off unless its environment variable is set:
 *
 * QSFS_FAULT_DIR=D: fsync and fdatasync fail with EIO while the file D/fsync-fail
 *   exists (a disk whose flush fails, on command).
 *
 * QSFS_FAULT_NTH=N, QSFS_FAULT_UNDER=P (a path prefix), QSFS_FAULT_OPS (any of "write",
 *   "read", "sync", comma-separated; all three by default): the calls of those kinds on
 *   regular files below P are counted (write, pwrite, writev, pwritev; read, pread,
 *   readv, preadv; fsync, fdatasync), and the N-th fails with EIO (an ENOSPC instead with
 *   QSFS_FAULT_ERRNO=ENOSPC); with QSFS_FAULT_STICKY=1 every call from the N-th on fails
 *   (a disk that died). QSFS_FAULT_LOG=F: the first failure appends "fired N KIND PATH"
 *   to F, so that a test running N = 1, 2, ... knows when N has passed the calls made.
 *   Without QSFS_FAULT_NTH, those calls fail while the file D/io-fail exists
 *   (QSFS_FAULT_DIR=D): a disk that fails on command, and comes back.
 *
 * QSFS_POWERCUT_ROOT=R, QSFS_POWERCUT_SHADOW=S: records what a power cut would keep of
 *   the files below R. Every successful fsync/fdatasync of a regular file below R copies
 *   it to S (its durable content); every fsync of a directory below R writes its listing
 *   to S (its durable entries); a rename below R renames the shadow copy with it. After
 *   the process is killed, the test rebuilds R from S (tests/integration/powercut.py):
 *   a name not in its directory's durable listing is gone, a file keeps its content as of
 *   its last sync (nothing if it was never synced). Only the test that sets these is
 *   affected; the copies make syncs slow, so tests keep files small. */
#include <dirent.h>
#include <dlfcn.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int armed(const char *what)
{
    const char *dir = getenv("QSFS_FAULT_DIR");
    if (!dir)
        return 0;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, what);
    return access(path, F_OK) == 0;
}

/* S/<path with '/' as '%'> (+ suffix), or 0 when path is not below R. */
static int shadow_name(const char *path, const char *suffix, char *out, size_t cap)
{
    const char *root = getenv("QSFS_POWERCUT_ROOT"), *shadow = getenv("QSFS_POWERCUT_SHADOW");
    if (!root || !shadow || strncmp(path, root, strlen(root)) != 0)
        return 0;
    size_t n = (size_t)snprintf(out, cap, "%s/", shadow);
    for (const char *p = path; *p && n + 2 < cap; p++)
        out[n++] = *p == '/' ? '%' : *p;
    out[n] = '\0';
    if (n + strlen(suffix) + 1 > cap)
        return 0;
    strcat(out, suffix);
    return 1;
}

static int fd_path(int fd, char *out, size_t cap)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, cap - 1);
    if (n <= 0)
        return 0;
    out[n] = '\0';
    return 1;
}

static void copy_fd(int wfd, const char *to)
{
    char link[64], tmp[4200];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", wfd);
    int fd = open(link, O_RDONLY | O_CLOEXEC); /* the synced descriptor may be write-only */
    if (fd < 0)
        return;
    snprintf(tmp, sizeof(tmp), "%s.part", to);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        close(fd);
        return;
    }
    char buf[65536];
    off_t off = 0;
    for (;;) {
        ssize_t r = pread(fd, buf, sizeof(buf), off);
        if (r <= 0)
            break;
        if (write(out, buf, (size_t)r) != r)
            break;
        off += r;
    }
    close(out);
    close(fd);
    rename(tmp, to);
}

static void list_dir(const char *dir, const char *to)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.part", to);
    FILE *f = fopen(tmp, "w");
    DIR *d = opendir(dir);
    if (!f || !d) {
        if (f)
            fclose(f);
        if (d)
            closedir(d);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            fprintf(f, "%s\n", e->d_name);
    closedir(d);
    fclose(f);
    rename(tmp, to);
}

/* A sync of fd succeeded: record what is now durable. */
static void durable(int fd)
{
    char path[4096], sh[4200];
    struct stat st;
    if (!getenv("QSFS_POWERCUT_ROOT") || fstat(fd, &st) != 0 || !fd_path(fd, path, sizeof(path)))
        return;
    if (S_ISDIR(st.st_mode) && shadow_name(path, ".dirlist", sh, sizeof(sh)))
        list_dir(path, sh);
    else if (S_ISREG(st.st_mode) && shadow_name(path, ".data", sh, sizeof(sh)))
        copy_fd(fd, sh);
}

/* ---- the n-th call fails ---- */

enum { K_WRITE = 1, K_READ = 2, K_SYNC = 4 };

static atomic_long nth_seen;
static atomic_int nth_logged;

static int nth_kinds(void)
{
    const char *ops = getenv("QSFS_FAULT_OPS");
    if (!ops)
        return K_WRITE | K_READ | K_SYNC;
    return (strstr(ops, "write") ? K_WRITE : 0) | (strstr(ops, "read") ? K_READ : 0) |
           (strstr(ops, "sync") ? K_SYNC : 0);
}

/* True when this call of kind on fd is the one (or, sticky, one of those) that fails;
 * errno is then set. */
static int nth_fails(int kind, int fd)
{
    const char *n_s = getenv("QSFS_FAULT_NTH"), *under = getenv("QSFS_FAULT_UNDER");
    if (!under || !(nth_kinds() & kind) || (!n_s && !armed("io-fail")))
        return 0;
    int saved = errno;
    char path[4096];
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !fd_path(fd, path, sizeof(path)) ||
        strncmp(path, under, strlen(under)) != 0) {
        errno = saved;
        return 0;
    }
    long n = n_s ? atol(n_s) : 1, seen = atomic_fetch_add(&nth_seen, 1) + 1;
    const char *sticky = n_s ? getenv("QSFS_FAULT_STICKY") : "1";
    if (!(seen == n || (sticky && *sticky == '1' && seen > n))) {
        errno = saved;
        return 0;
    }
    const char *log = getenv("QSFS_FAULT_LOG");
    if (log && atomic_exchange(&nth_logged, 1) == 0) {
        char line[4300];
        int len = snprintf(line, sizeof(line), "fired %ld %s %s\n", n,
                           kind == K_WRITE  ? "write"
                           : kind == K_READ ? "read"
                                            : "sync",
                           path);
        int lfd = (int)syscall(SYS_open, log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (lfd >= 0) {
            if (syscall(SYS_write, lfd, line, (size_t)len) < 0) {
                /* the test sees no line and stops early: nothing else to do here */
            }
            syscall(SYS_close, lfd);
        }
    }
    const char *e = getenv("QSFS_FAULT_ERRNO");
    errno = e && !strcmp(e, "ENOSPC") ? ENOSPC : EIO;
    return 1;
}

#define REAL(name, ret, args)                                                                      \
    static ret(*real_##name) args;                                                                 \
    if (!real_##name)                                                                              \
    real_##name = (ret(*) args)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *b, size_t n);
ssize_t write(int fd, const void *b, size_t n)
{
    REAL(write, ssize_t, (int, const void *, size_t));
    return nth_fails(K_WRITE, fd) ? -1 : real_write(fd, b, n);
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off);
ssize_t pwrite(int fd, const void *b, size_t n, off_t off)
{
    REAL(pwrite, ssize_t, (int, const void *, size_t, off_t));
    return nth_fails(K_WRITE, fd) ? -1 : real_pwrite(fd, b, n, off);
}

ssize_t writev(int fd, const struct iovec *v, int n);
ssize_t writev(int fd, const struct iovec *v, int n)
{
    REAL(writev, ssize_t, (int, const struct iovec *, int));
    return nth_fails(K_WRITE, fd) ? -1 : real_writev(fd, v, n);
}

ssize_t pwritev(int fd, const struct iovec *v, int n, off_t off);
ssize_t pwritev(int fd, const struct iovec *v, int n, off_t off)
{
    REAL(pwritev, ssize_t, (int, const struct iovec *, int, off_t));
    return nth_fails(K_WRITE, fd) ? -1 : real_pwritev(fd, v, n, off);
}

ssize_t read(int fd, void *b, size_t n);
ssize_t read(int fd, void *b, size_t n)
{
    REAL(read, ssize_t, (int, void *, size_t));
    return nth_fails(K_READ, fd) ? -1 : real_read(fd, b, n);
}

ssize_t pread(int fd, void *b, size_t n, off_t off);
ssize_t pread(int fd, void *b, size_t n, off_t off)
{
    REAL(pread, ssize_t, (int, void *, size_t, off_t));
    return nth_fails(K_READ, fd) ? -1 : real_pread(fd, b, n, off);
}

ssize_t readv(int fd, const struct iovec *v, int n);
ssize_t readv(int fd, const struct iovec *v, int n)
{
    REAL(readv, ssize_t, (int, const struct iovec *, int));
    return nth_fails(K_READ, fd) ? -1 : real_readv(fd, v, n);
}

ssize_t preadv(int fd, const struct iovec *v, int n, off_t off);
ssize_t preadv(int fd, const struct iovec *v, int n, off_t off)
{
    REAL(preadv, ssize_t, (int, const struct iovec *, int, off_t));
    return nth_fails(K_READ, fd) ? -1 : real_preadv(fd, v, n, off);
}

/* The real call, unless a fault is armed; a success is recorded as durable. */
static int sync_call(const char *fn, int fd)
{
    if (nth_fails(K_SYNC, fd))
        return -1;
    if (armed("fsync-fail")) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, fn);
    int rc = real(fd);
    if (rc == 0)
        durable(fd);
    return rc;
}

int fsync(int fd);
int fsync(int fd)
{
    return sync_call("fsync", fd);
}

int fdatasync(int fd);
int fdatasync(int fd)
{
    return sync_call("fdatasync", fd);
}

int rename(const char *from, const char *to);
int rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    if (!real)
        real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    int rc = real(from, to);
    char a[4200], b[4200];
    if (rc == 0 && shadow_name(from, ".data", a, sizeof(a)) &&
        shadow_name(to, ".data", b, sizeof(b)) && access(a, F_OK) == 0)
        real(a, b);
    return rc;
}
