/* zdb_ingest: how fast a set of zdb data backends absorbs shards when encoding costs
 * nothing. It is the storage half of a zstor store without the codec: one thread per
 * backend sends pipelined batches of SETs (16 values or 16 MiB, as zstor's writers do)
 * of one pre-filled buffer, until TOTAL bytes are spread evenly over the backends.
 * bench/zstor/zstor_bench.py runs it next to zstor store to give the ceiling that the
 * backends and the kernel's loopback put on a store (docs/zstor.md, "Speed").
 *
 *   zdb_ingest --shard BYTES --total BYTES ADDRESS/NAMESPACE...
 *
 * Prints one line: bytes, seconds, MB/s, and this process's CPU seconds.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "util/parse.h"

#define BATCH_ITEMS 16
#define BATCH_BYTES (16u << 20)

struct job {
    char address[256];
    const char *ns;
    const uint8_t *buf;
    size_t shard;
    uint64_t bytes;
    int rc;
    char err[300];
};

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int send_all(struct job *j, struct qs_backend *b)
{
    struct qs_backend_op ops[BATCH_ITEMS];
    uint64_t left = j->bytes;
    while (left) {
        size_t n = 0, bytes = 0;
        while (left && n < BATCH_ITEMS && bytes + j->shard <= BATCH_BYTES) {
            size_t len = left < j->shard ? (size_t)left : j->shard;
            ops[n++] = (struct qs_backend_op){.kind = QS_BACKEND_PUT, .val = j->buf, .len = len};
            bytes += len;
            left -= len;
        }
        int rc = qs_backend_batch(b, ops, n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void *run(void *arg)
{
    struct job *j = arg;
    struct qs_backend_opts o;
    qs_backend_opts_default(&o);
    o.address = j->address;
    o.ns = j->ns;
    o.role = QS_BACKEND_DATA;
    o.request_timeout_ms = 60000;
    struct qs_backend *b = NULL;
    j->rc = qs_backend_open(&b, &o);
    if (j->rc == 0)
        j->rc = send_all(j, b);
    if (j->rc < 0)
        snprintf(j->err, sizeof(j->err), "%s", qs_err_msg());
    qs_backend_free(b);
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: zdb_ingest --shard BYTES --total BYTES ADDRESS/NAMESPACE...\n");
    return 2;
}

int main(int argc, char **argv)
{
    uint64_t shard = 0, total = 0;
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        uint64_t *v = strcmp(argv[i], "--shard") == 0   ? &shard
                      : strcmp(argv[i], "--total") == 0 ? &total
                                                        : NULL;
        if (!v || qs_parse_size(argv[i + 1], v) < 0)
            return usage();
    }
    size_t nb = (size_t)(argc - i);
    if (nb == 0 || shard == 0 || shard > (8u << 20) || total == 0)
        return usage();
    uint8_t *buf = malloc(shard);
    struct job *jobs = calloc(nb, sizeof(*jobs));
    pthread_t *t = calloc(nb, sizeof(*t));
    if (!buf || !jobs || !t) {
        fprintf(stderr, "zdb_ingest: out of memory\n");
        return 1;
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t k = 0; k < shard; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[k] = (uint8_t)x;
    }
    for (size_t k = 0; k < nb; k++) {
        const char *arg = argv[i + (int)k];
        const char *slash = strrchr(arg, '/');
        if (!slash || slash == arg || (size_t)(slash - arg) >= sizeof(jobs[k].address))
            return usage();
        memcpy(jobs[k].address, arg, (size_t)(slash - arg));
        jobs[k].ns = slash + 1;
        jobs[k].buf = buf;
        jobs[k].shard = shard;
        jobs[k].bytes = total / nb + (k < total % nb ? 1 : 0);
    }
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (size_t k = 0; k < nb; k++)
        if (pthread_create(&t[k], NULL, run, &jobs[k]) != 0) {
            fprintf(stderr, "zdb_ingest: cannot start a thread\n");
            return 1;
        }
    for (size_t k = 0; k < nb; k++)
        pthread_join(t[k], NULL);
    double dt = clock_s(CLOCK_MONOTONIC) - t0, cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    int rc = 0;
    for (size_t k = 0; k < nb; k++)
        if (jobs[k].rc < 0) {
            fprintf(stderr, "zdb_ingest: %s/%s: %s\n", jobs[k].address, jobs[k].ns, jobs[k].err);
            rc = 1;
        }
    if (rc == 0)
        printf("ingest %llu bytes in %.3f s = %.0f MB/s, cpu %.2f s\n", (unsigned long long)total,
               dt, (double)total / 1e6 / dt, cpu);
    free(buf);
    free(jobs);
    free(t);
    return rc;
}
