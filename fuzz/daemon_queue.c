/* Fuzz target: the daemon's queue file reader (lib/daemon/queue.h).
 *
 * The input is written as a queue file and opened. A file that opens must give a queue
 * that works (take, fail, done, add) and that opens again with the same items after the
 * rewrite; a file that does not open must be left unchanged.
 * Invariants: no crash, no leak, no undefined behaviour.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char path[96];

static void write_input(const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
}

static void exercise(struct zsq *q)
{
    struct zsq_item it;
    uint64_t wait;
    for (int i = 0; i < 4; i++) {
        int rc = zsq_take(q, UINT64_MAX - 1, &it, &wait);
        if (rc == QS_ENOTFOUND)
            break;
        if (rc)
            abort();
        if (i % 2 ? zsq_done(q, it.id) : zsq_failed(q, it.id, 0, "fuzz"))
            abort();
        zsq_item_free(&it);
    }
    if (zsq_add(q, "/fuzz/new", NULL, ZSQ_DELETE, 1, NULL))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/qsfs-fuzzq-%d", (int)getpid());
        if (mkdir(dir, 0700) != 0 && access(dir, W_OK) != 0)
            abort();
        snprintf(path, sizeof(path), "%s/queue", dir);
    }
    const struct zsq_opts o = {.nosync = true};
    write_input(data, size);
    struct zsq *q = NULL;
    int rc = zsq_open(&q, path, &o);
    if (rc) {
        struct stat st;
        if (q || stat(path, &st) != 0 || (size_t)st.st_size != size)
            abort();
        qs_err_clear();
        return 0;
    }
    size_t n = zsq_len(q);
    zsq_close(q);
    if (zsq_open(&q, path, &o) || zsq_len(q) != n)
        abort();
    exercise(q);
    zsq_close(q);
    if (zsq_open(&q, path, &o))
        abort();
    zsq_close(q);
    unlink(path);
    return 0;
}
