/* zstor gc: shard values no stored version references, and done markers of versions
 * that are gone.
 *
 * Every metadata record is read (zstor list's walk) to collect the keys it references;
 * every data backend's values are then listed, and those not referenced and older than
 * min_age_s are garbage (a store in progress has written shards that no record names
 * yet: the age keeps them). A dry run counts; with delete they go. Deleting is refused
 * when any record could not be read or any meta backend did not answer (a record not
 * seen could reference what looks like garbage).
 */
#ifndef QSFS_ZSTOR_GC_H
#define QSFS_ZSTOR_GC_H

#include <stdbool.h>
#include <stdint.h>

#include "zstor/zstor.h"

#define ZSTOR_GC_MIN_AGE_DEFAULT 3600 /* seconds */

struct zstor_gc_opts {
    bool delete_garbage; /* false: dry run */
    uint64_t min_age_s;  /* values younger than this are never garbage */
};

struct zstor_gc_backend {
    char name[300]; /* "zdb ADDRESS/NS" or "dir PATH" */
    uint64_t values, garbage, garbage_bytes, young, deleted;
    int rc; /* 0, or why the backend could not be listed (error) */
    char error[256];
};

struct zstor_gc_result {
    uint64_t records, unreadable; /* metadata records read, and those that failed */
    uint64_t markers_garbage, markers_deleted;
    size_t nbackends;
    struct zstor_gc_backend *backend; /* malloc'ed, zstor_gc_result_free */
};

/* Runs the scan (and the deletion). QS_EBUSY when deletion was asked and refused (the
 * message says why; the counts are still filled), transport errors when no meta backend
 * answers, QS_ENOMEM. */
int zstor_gc(struct zstor_ctx *z, const struct zstor_gc_opts *o,
             struct zstor_gc_result *res) QS_MUST_CHECK;
void zstor_gc_result_free(struct zstor_gc_result *res);

#endif
