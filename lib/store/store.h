/* The store: the index and data root directories (locked), the settings every namespace
 * shares, and the list of namespaces. Owned by the server; single-threaded. */
#ifndef QSFS_STORE_STORE_H
#define QSFS_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/ns.h"
#include "util/err.h"

#define ZDB_DATASIZE_DEFAULT (256ull * 1024 * 1024)
#define ZDB_DATASIZE_MIN     (512ull * 1024)
#define ZDB_DATASIZE_MAX     (4ull * 1024 * 1024 * 1024 - 1)

/* Events the store reports to its owner (hooks). All optional. */
struct zdb_store_events {
    void *ud;
    /* after a rotation from file id old to new (old files now immutable) */
    void (*jump)(void *ud, struct zdb_ns *ns, uint32_t oldid, uint32_t newid);
    /* zdb_store_open: the directories exist and are locked, nothing is loaded yet */
    void (*loading)(void *ud, const char *index_root, const char *data_root);
    /* zdb_store_reload succeeded: ns is the new object */
    void (*reloaded)(void *ud, struct zdb_ns *ns);
};

struct zdb_store_opts {
    const char *index_dir;
    const char *data_dir;
    uint64_t datasize;            /* rotation threshold, bytes */
    int fixed_mode;               /* -1 = mixed (each ns chooses), else enum zdb_mode */
    bool sync;                    /* fsync every write */
    unsigned synctime;            /* fsync when the last is over N s old (0 = off) */
    bool secure;                  /* fsync a file before leaving it */
    uint64_t maxsize;             /* limit of the default namespace (0 = none) */
    const char *protect_password; /* --protect: password of the default ns, or NULL */
    bool mmap_reads;              /* read data files through mappings: the program has called
                                     qs_guard_install() so an I/O fault becomes an error (util/guard.h) */
    struct zdb_store_events events;
};

struct zdb_store {
    struct zdb_store_opts opts;
    char *index_root;
    char *data_root;
    int idx_lock_fd, dat_lock_fd;
    struct zdb_ns **ns;
    size_t nns, nscap;
    int batch_depth;  /* > 0: appends are buffered until zdb_store_batch_end */
    uint64_t gen_seq; /* last batch generation id given out */
    /* generations rolled back by the last zdb_store_batch_end (the server fails the
     * replies that depended on them) */
    struct zdb_batch_abort {
        uint64_t gen;
        int code; /* QS_EDISKFULL for a full disk, else QS_EWRITE_DATA */
    } aborted[16];
    size_t naborted;
    bool aborted_overflow; /* more than fit: every generation of the batch counts */
};

/* Creates the directories if needed, takes both lock files, loads every namespace and
 * creates `default` when missing. Refuses (QS_EINVAL) a namespace whose stored mode
 * disagrees with a fixed mode, and index dir == data dir. */
int zdb_store_open(struct zdb_store **out, const struct zdb_store_opts *opts) QS_MUST_CHECK;

/* Syncs and closes every namespace, releases the locks. */
void zdb_store_close(struct zdb_store *st);

struct zdb_ns *zdb_store_find(struct zdb_store *st, const char *name, size_t len);

/* Creates and saves a new namespace (caller checked the name). */
int zdb_store_create(struct zdb_store *st, const char *name, struct zdb_ns **out) QS_MUST_CHECK;

/* Deletes the namespace's files and frees it. */
int zdb_store_remove(struct zdb_store *st, struct zdb_ns *ns) QS_MUST_CHECK;

/* Starts buffering appends: the many writes of a batch of requests reach the files in
 * one write per file (and one fdatasync with --sync) at zdb_store_batch_end. Reads see
 * buffered writes. */
void zdb_store_batch_begin(struct zdb_store *st);

/* Writes (and with --sync, syncs) everything buffered since batch_begin. A namespace
 * whose writes cannot all be written and synced is rolled back to where its generation
 * started (files cut back, state loaded again from them; the namespace object stays the
 * same) and its generation is listed in st->aborted: the caller must answer an error to
 * every request that wrote it, or read it after a write (ns->batch_gen, batch_touched
 * right after the request ran), and may acknowledge everything else. Returns the first
 * failure, 0 when nothing was rolled back. */
int zdb_store_batch_end(struct zdb_store *st) QS_MUST_CHECK;

/* True when generation gen was rolled back by the last zdb_store_batch_end; *code gets
 * its reason (QS_EDISKFULL or QS_EWRITE_DATA). */
bool zdb_store_gen_aborted(const struct zdb_store *st, uint64_t gen, int *code);

/* Reloads a namespace from disk (RELOAD), in place: its pending writes are synced first
 * (when that fails, nothing is reloaded and, inside a batch, the pending writes are rolled
 * back at batch end); when loading fails, the namespace keeps serving as it was. */
int zdb_store_reload(struct zdb_store *st, struct zdb_ns *ns) QS_MUST_CHECK;

#endif
