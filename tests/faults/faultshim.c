/* LD_PRELOAD shim for tests. Two faults, each off unless its environment variable is set:
 *
 * QSFS_FAULT_DIR=D: fsync and fdatasync fail with EIO while the file D/fsync-fail
 *   exists (a disk whose flush fails, on command).
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

/* The real call, unless the fault is armed; a success is recorded as durable. */
static int sync_call(const char *fn, int fd)
{
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
