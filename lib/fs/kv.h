/* The stores under a filesystem: three sequential namespaces (meta, data, temp).
 *
 * A struct qs_fs_kv is a small vtable so that lib/fs runs on real zdb servers (a pool of
 * connections per namespace) or on memory (unit tests, with fault injection and
 * simulated crashes). Batches use struct qs_zdb_op: SET with key_len 0 appends and
 * returns the new 8-byte key in reply; SET of an existing key updates it; GET and DEL.
 *
 * Thread-safe: many threads may run batches at once.
 */
#ifndef QSFS_FS_KV_H
#define QSFS_FS_KV_H

#include <stdbool.h>
#include <stdint.h>

#include "fs/format.h"
#include "zdbclient/pool.h"
#include "zdbclient/zdbclient.h"

struct qs_fs_nsusage {
    uint64_t entries, used_bytes;
    uint64_t free_bytes; /* QS_ZDB_UNKNOWN when nothing bounds it */
};

struct qs_fs_kv {
    /* Every op gets its result; returns 0 or the first failure (message set). */
    int (*batch)(struct qs_fs_kv *kv, enum qs_fs_ns ns, struct qs_zdb_op *ops, size_t n);
    int (*usage)(struct qs_fs_kv *kv, enum qs_fs_ns ns, struct qs_fs_nsusage *out);
    void (*free)(struct qs_fs_kv *kv);
};

/* One namespace endpoint. */
struct qs_fs_endpoint {
    const char *address; /* as qs_zdb_addr_parse: host:port, [v6]:port, unix:///path */
    const char *ns;
    const char *password; /* NULL = none */
};

struct qs_fs_zdb_opts {
    struct qs_fs_endpoint ep[3]; /* meta, data, temp (temp.address NULL = not used) */
    unsigned conns;              /* per namespace, default 4 */
    unsigned timeout_ms;         /* bound of one batch, retries included; default 10000 */
    bool autons;                 /* create missing namespaces in seq mode (temp: password) */
};

/* Connects to each namespace and checks it: reachable, password accepted, sequential
 * mode (with autons: creates it and sets the mode). Errors name the endpoint and say
 * what is wrong. */
int qs_fs_kv_zdb_new(struct qs_fs_kv **out, const struct qs_fs_zdb_opts *o) QS_MUST_CHECK;

/* ---- in memory (tests) ---- */

struct qs_fs_kv_mem;

int qs_fs_kv_mem_new(struct qs_fs_kv **out) QS_MUST_CHECK;
/* Fault injection: after `ops` more ops, every op fails with QS_EIO and changes nothing
 * (as if the server went away mid-batch) until reset with -1. */
void qs_fs_kv_mem_fail_after(struct qs_fs_kv *kv, long ops);
/* A deep copy of the current contents (what a restarted process would find). */
int qs_fs_kv_mem_clone(struct qs_fs_kv *kv, struct qs_fs_kv **out) QS_MUST_CHECK;
/* Live values and bytes in a namespace. */
void qs_fs_kv_mem_count(struct qs_fs_kv *kv, enum qs_fs_ns ns, uint64_t *values, uint64_t *bytes);
/* Direct access for tests: overwrite / read a value. */
int qs_fs_kv_mem_put(struct qs_fs_kv *kv, enum qs_fs_ns ns, uint64_t key, const void *v,
                     size_t n) QS_MUST_CHECK;

#endif
