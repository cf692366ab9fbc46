/* The zstor daemon's Prometheus metrics: a snapshot rendered in the text exposition
 * format (version 0.0.4).
 *
 * Names and labels are 0-stor_v2's, so its dashboards keep working: per backend
 * (labels address, namespace, backend_type = data|meta) connection_status, entries,
 * data_size_bytes, data_limit_bytes, index_size_bytes, index_disk_freespace_bytes,
 * data_disk_freespace_bytes, index_io_errors, index_faults, data_io_errors, data_faults;
 * zstore_{store,retrieve,rebuild,check}_commands_finished{success="true"|"false"};
 * data_dir_size_bytes, data_dir_size_limit_bytes, data_dir_files_evicted,
 * data_dir_eviction_failures; fs_* from the zdbfs statistics. Ours (prefixed zstor_):
 * command latency histograms, bytes stored and retrieved, queue length and failures,
 * repairs. A backend that is unreachable shows connection_status 0 and no other series.
 */
#ifndef QSFS_DAEMON_METRICS_H
#define QSFS_DAEMON_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

#define ZSM_UNKNOWN UINT64_MAX /* a value the backend did not report: no series */

enum zsm_cmd { ZSM_STORE, ZSM_RETRIEVE, ZSM_REBUILD, ZSM_CHECK, ZSM_NCMD };

#define ZSM_NBUCKETS 12 /* latency buckets, 5 ms .. 600 s, then +Inf */

struct zsm_backend {
    const char *address, *ns; /* ns "" = none given */
    bool meta;
    bool reachable;
    uint64_t entries, data_size, data_limit, index_size; /* data_limit 0 = none */
    uint64_t index_disk_free, data_disk_free;
    uint64_t index_io_errors, index_faults, data_io_errors, data_faults;
};

struct zsm_latency {
    uint64_t bucket[ZSM_NBUCKETS + 1]; /* per bucket (not cumulative); last = above all */
    double sum_s;
    uint64_t count;
};

struct zsm_fs {
    bool present;
    uint64_t fuse_reqs, cache_hits, cache_miss, bytes_read, bytes_written, fuse_errors;
    uint64_t cache_full, cache_linear_flush, cache_random_flush, cache_branches,
        cache_branches_allocated, cache_entries, cache_blocks, cache_blocksize;
    uint64_t syscalls[15]; /* in the order of zsm_syscall_names */
};

struct zsm_state {
    const struct zsm_backend *backends;
    size_t nbackends;
    uint64_t ok[ZSM_NCMD], failed[ZSM_NCMD];
    struct zsm_latency latency[ZSM_NCMD];
    uint64_t bytes_stored, bytes_retrieved;
    uint64_t queue_length, queue_failing, queue_failures; /* failing: items with attempts */
    uint64_t repairs_ok, repairs_failed, objects, objects_degraded;
    bool data_dir;
    uint64_t data_dir_size, data_dir_limit, data_dir_evicted, data_dir_eviction_failures;
    struct zsm_fs fs;
};

extern const char *const zsm_syscall_names[15];

/* Upper bounds of the latency buckets, in seconds. */
extern const double zsm_bucket_le[ZSM_NBUCKETS];

/* Adds one command duration to l. */
void zsm_latency_add(struct zsm_latency *l, double seconds);

/* Appends the exposition text for s to out. QS_ENOMEM / QS_EFULL from the buffer. */
int zsm_render(struct qs_buf *out, const struct zsm_state *s) QS_MUST_CHECK;

#endif
