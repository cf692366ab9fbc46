/* LD_PRELOAD shim for tests: makes fsync, fdatasync and syncfs fail with EIO while the
 * file "$QSFS_FAULT_DIR/fsync-fail" exists (a disk whose flush fails, on command).
 * Only the test that sets QSFS_FAULT_DIR is affected; without it every call passes. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

int fsync(int fd);
int fsync(int fd)
{
    static int (*real)(int);
    if (armed("fsync-fail")) {
        errno = EIO;
        return -1;
    }
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

int fdatasync(int fd);
int fdatasync(int fd)
{
    static int (*real)(int);
    if (armed("fsync-fail")) {
        errno = EIO;
        return -1;
    }
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
