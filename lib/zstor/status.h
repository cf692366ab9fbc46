/* zstor status and test: the backends and what they hold, and whether a store can go. */
#ifndef QSFS_ZSTOR_STATUS_H
#define QSFS_ZSTOR_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "zdbclient/zdbclient.h"
#include "zstor/zstor.h"

#define ZSTOR_UNKNOWN UINT64_MAX

struct zstor_backend_status {
    bool meta;           /* meta backend, else data */
    const char *address; /* as in the config */
    const char *ns;      /* namespace ("" = default or dir) */
    int group;           /* data: [[groups]] index */
    bool reachable;
    const char *readonly; /* reachable, but takes no writes: why (a static string); or NULL */
    uint64_t entries, used, free, limit; /* ZSTOR_UNKNOWN when not known; limit 0 = none */
    uint64_t latency_us;
    double error_rate; /* recent fraction of failed requests */
    bool have_nsinfo;  /* zdb: its last NSINFO (metrics) */
    struct qs_zdb_nsinfo nsinfo;
    char error[256]; /* why not reachable */
};

/* Probes every configured backend now (in parallel) and fills *rows (malloc'ed, *n of
 * them: meta backends first, then data backends in config order; free()). dir:// share
 * directories are counted file by file. */
int zstor_status(struct zstor_ctx *z, struct zstor_backend_status **rows, size_t *n) QS_MUST_CHECK;

/* After zstor_status: checks the redundancy the config asks for and chooses a placement
 * over the reachable data backends (out[0..expected_shards) are row indices among the
 * data rows, best first). 0 when a store could go now; QS_ETOOFEW (a meta backend down,
 * or no placement) with the reason. */
int zstor_test(struct zstor_ctx *z, unsigned *out) QS_MUST_CHECK;

#endif
