/* Prometheus text rendering of the daemon's metrics (metrics.h). */
#include "daemon/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

const char *const zsm_syscall_names[15] = {
    "getattr", "setattr", "create", "readdir", "open",    "read",    "write", "mkdir",
    "unlink",  "rmdir",   "rename", "link",    "symlink", "statsfs", "ioctl",
};

const double zsm_bucket_le[ZSM_NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                            0.5,   1,    5,     30,   120, 600};

static const char *const cmd_names[ZSM_NCMD] = {"store", "retrieve", "rebuild", "check"};

void zsm_latency_add(struct zsm_latency *l, double seconds)
{
    size_t i = 0;
    while (i < ZSM_NBUCKETS && seconds > zsm_bucket_le[i])
        i++;
    l->bucket[i]++;
    l->sum_s += seconds;
    l->count++;
}

/* A label value with \, " and newline escaped. */
static int label(struct qs_buf *b, const char *v)
{
    int rc = 0;
    for (const char *p = v; *p && rc == 0; p++) {
        if (*p == '\\')
            rc = qs_buf_append(b, "\\\\", 2);
        else if (*p == '"')
            rc = qs_buf_append(b, "\\\"", 2);
        else if (*p == '\n')
            rc = qs_buf_append(b, "\\n", 2);
        else
            rc = qs_buf_append(b, p, 1);
    }
    return rc;
}

static int head(struct qs_buf *b, const char *name, const char *type, const char *help)
{
    return qs_buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int backend_series(struct qs_buf *b, const char *name, const struct zsm_backend *k,
                          uint64_t v)
{
    if (v == ZSM_UNKNOWN)
        return 0;
    int rc = qs_buf_appendf(b, "%s{address=\"", name);
    if (rc == 0)
        rc = label(b, k->address);
    if (rc == 0)
        rc = qs_buf_append(b, "\",namespace=\"", 13);
    if (rc == 0)
        rc = label(b, k->ns);
    if (rc == 0)
        rc = qs_buf_appendf(b, "\",backend_type=\"%s\"} %" PRIu64 "\n", k->meta ? "meta" : "data",
                            v);
    return rc;
}

enum bfield {
    F_STATUS,
    F_ENTRIES,
    F_DATA_SIZE,
    F_DATA_LIMIT,
    F_INDEX_SIZE,
    F_INDEX_FREE,
    F_DATA_FREE,
    F_INDEX_IOERR,
    F_INDEX_FAULTS,
    F_DATA_IOERR,
    F_DATA_FAULTS,
    F_N
};

static const struct {
    const char *name, *type, *help;
} bfields[F_N] = {
    {"connection_status", "gauge", "Status of the connection to the 0-db (1 up, 0 down)"},
    {"entries", "gauge", "entries in namespace"},
    {"data_size_bytes", "gauge", "data_size_bytes in namespace"},
    {"data_limit_bytes", "gauge",
     "data_limit_bytes in namespace (the disk's free space when unlimited)"},
    {"index_size_bytes", "gauge", "index_size_bytes in namespace"},
    {"index_disk_freespace_bytes", "gauge", "index_disk_freespace_bytes in namespace"},
    {"data_disk_freespace_bytes", "gauge", "data_disk_freespace_bytes in namespace"},
    {"index_io_errors", "counter", "index_io_errors in namespace"},
    {"index_faults", "counter", "index_faults in namespace"},
    {"data_io_errors", "counter", "data_io_errors in namespace"},
    {"data_faults", "counter", "data_faults in namespace"},
};

static uint64_t bvalue(const struct zsm_backend *k, enum bfield f)
{
    if (f == F_STATUS)
        return k->reachable ? 1 : 0;
    if (!k->reachable)
        return ZSM_UNKNOWN;
    switch (f) {
    case F_ENTRIES:
        return k->entries;
    case F_DATA_SIZE:
        return k->data_size;
    case F_DATA_LIMIT: /* as 0-stor_v2: no limit reads as the disk's free space */
        return k->data_limit ? k->data_limit : k->data_disk_free;
    case F_INDEX_SIZE:
        return k->index_size;
    case F_INDEX_FREE:
        return k->index_disk_free;
    case F_DATA_FREE:
        return k->data_disk_free;
    case F_INDEX_IOERR:
        return k->index_io_errors;
    case F_INDEX_FAULTS:
        return k->index_faults;
    case F_DATA_IOERR:
        return k->data_io_errors;
    case F_DATA_FAULTS:
        return k->data_faults;
    default:
        return ZSM_UNKNOWN;
    }
}

static int backends(struct qs_buf *b, const struct zsm_state *s)
{
    int rc = 0;
    for (int f = 0; f < F_N && rc == 0; f++) {
        rc = head(b, bfields[f].name, bfields[f].type, bfields[f].help);
        for (size_t i = 0; i < s->nbackends && rc == 0; i++)
            rc = backend_series(b, bfields[f].name, &s->backends[i], bvalue(&s->backends[i], f));
    }
    return rc;
}

static int commands(struct qs_buf *b, const struct zsm_state *s)
{
    int rc = 0;
    for (int c = 0; c < ZSM_NCMD && rc == 0; c++) {
        char name[64];
        snprintf(name, sizeof(name), "zstore_%s_commands_finished", cmd_names[c]);
        rc = head(b, name, "counter", "zstor commands that finished");
        if (rc == 0)
            rc = qs_buf_appendf(
                b, "%s{success=\"true\"} %" PRIu64 "\n%s{success=\"false\"} %" PRIu64 "\n", name,
                s->ok[c], name, s->failed[c]);
    }
    if (rc == 0)
        rc = head(b, "zstor_command_duration_seconds", "histogram",
                  "Duration of zstor commands run by the daemon");
    for (int c = 0; c < ZSM_NCMD && rc == 0; c++) {
        const struct zsm_latency *l = &s->latency[c];
        uint64_t cum = 0;
        for (int i = 0; i < ZSM_NBUCKETS && rc == 0; i++) {
            cum += l->bucket[i];
            rc = qs_buf_appendf(
                b, "zstor_command_duration_seconds_bucket{command=\"%s\",le=\"%g\"} %" PRIu64 "\n",
                cmd_names[c], zsm_bucket_le[i], cum);
        }
        if (rc == 0)
            rc = qs_buf_appendf(
                b,
                "zstor_command_duration_seconds_bucket{command=\"%s\",le=\"+Inf\"} %" PRIu64 "\n"
                "zstor_command_duration_seconds_sum{command=\"%s\"} %.6f\n"
                "zstor_command_duration_seconds_count{command=\"%s\"} %" PRIu64 "\n",
                cmd_names[c], l->count, cmd_names[c], l->sum_s, cmd_names[c], l->count);
    }
    return rc;
}

static int scalar(struct qs_buf *b, const char *name, const char *type, const char *help,
                  uint64_t v)
{
    int rc = head(b, name, type, help);
    return rc ? rc : qs_buf_appendf(b, "%s %" PRIu64 "\n", name, v);
}

static int daemon_state(struct qs_buf *b, const struct zsm_state *s)
{
    int rc = scalar(b, "zstor_bytes_stored", "counter", "Input bytes stored by the daemon",
                    s->bytes_stored);
    if (rc == 0)
        rc = scalar(b, "zstor_bytes_retrieved", "counter", "Bytes retrieved by the daemon",
                    s->bytes_retrieved);
    if (rc == 0)
        rc = scalar(b, "zstor_queue_length", "gauge", "Non-blocking stores waiting in the queue",
                    s->queue_length);
    if (rc == 0)
        rc = scalar(b, "zstor_queue_failing", "gauge", "Queued stores that failed at least once",
                    s->queue_failing);
    if (rc == 0)
        rc = scalar(b, "zstor_queue_failures", "counter", "Failed attempts of queued stores",
                    s->queue_failures);
    if (rc == 0)
        rc = scalar(b, "zstor_repairs_succeeded", "counter", "Objects repaired", s->repairs_ok);
    if (rc == 0)
        rc = scalar(b, "zstor_repairs_failed", "counter", "Failed repair attempts",
                    s->repairs_failed);
    if (rc == 0)
        rc = scalar(b, "fabric_objects", "gauge",
                    "Objects in the metadata store at the last repair scan", s->objects);
    if (rc == 0)
        rc = scalar(b, "fabric_objects_degraded", "gauge",
                    "Objects with missing or corrupt shards or shards on unreachable backends at "
                    "the last repair scan",
                    s->objects_degraded);
    if (rc == 0 && s->data_dir) {
        rc = scalar(b, "data_dir_size_bytes", "gauge",
                    "Total size of the files in the monitored 0-db data dir", s->data_dir_size);
        if (rc == 0)
            rc = scalar(b, "data_dir_size_limit_bytes", "gauge",
                        "Configured size limit of the monitored 0-db data dir", s->data_dir_limit);
        if (rc == 0)
            rc = scalar(b, "data_dir_files_evicted", "counter",
                        "Files evicted from the monitored 0-db data dir", s->data_dir_evicted);
        if (rc == 0)
            rc = scalar(b, "data_dir_eviction_failures", "counter",
                        "Files over the limit that could not be evicted (not stored, changed, or "
                        "undeletable)",
                        s->data_dir_eviction_failures);
    }
    return rc;
}

static int fs(struct qs_buf *b, const struct zsm_fs *f)
{
    if (!f->present)
        return 0;
    const struct {
        const char *name, *type, *help;
        uint64_t v;
    } m[] = {
        {"fs_fuse_reqs", "counter", "Total amount of fuse requests", f->fuse_reqs},
        {"fs_cache_hits", "counter", "Total amount of cache hits in the filesystem", f->cache_hits},
        {"fs_cache_miss", "counter", "Total amount of cache misses in the filesystem",
         f->cache_miss},
        {"fs_cache_full", "gauge", "Times the cache was completely filled", f->cache_full},
        {"fs_cache_linear_flush", "gauge", "Linear flushes", f->cache_linear_flush},
        {"fs_cache_random_flush", "gauge", "Random flushes", f->cache_random_flush},
        {"fs_cache_branches", "gauge", "Cache branches", f->cache_branches},
        {"fs_cache_branches_allocated", "gauge", "Cache branches allocated",
         f->cache_branches_allocated},
        {"fs_cache_entries", "gauge", "Memory cache entries", f->cache_entries},
        {"fs_cache_blocks", "gauge", "Blocks in the memory cache", f->cache_blocks},
        {"fs_cache_blocksize", "gauge", "Bytes used by cache blocks", f->cache_blocksize},
        {"fs_bytes_read", "counter", "Total amount of bytes read from the filesystem",
         f->bytes_read},
        {"fs_bytes_written", "counter", "Total amount of bytes written to the filesystem",
         f->bytes_written},
        {"fs_fuse_errors", "counter", "Total amount of errors returned by fuse calls",
         f->fuse_errors},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]) && rc == 0; i++)
        rc = scalar(b, m[i].name, m[i].type, m[i].help, m[i].v);
    if (rc == 0)
        rc = head(b, "fs_syscalls", "counter", "Total amount of syscalls done on the filesystem");
    for (size_t i = 0; i < 15 && rc == 0; i++)
        rc = qs_buf_appendf(b, "fs_syscalls{syscall=\"%s\"} %" PRIu64 "\n", zsm_syscall_names[i],
                            f->syscalls[i]);
    return rc;
}

int zsm_render(struct qs_buf *out, const struct zsm_state *s)
{
    int rc = backends(out, s);
    if (rc == 0)
        rc = commands(out, s);
    if (rc == 0)
        rc = daemon_state(out, s);
    if (rc == 0)
        rc = fs(out, &s->fs);
    return rc;
}
