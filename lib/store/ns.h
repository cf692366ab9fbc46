/* A namespace: its descriptor, its index and data files, and its in-memory index.
 *
 * All functions run on the server's single thread; a namespace is not thread-safe.
 * Errors follow util/err.h; the write path adds ZDB_EWRITE_DATA / ZDB_EWRITE_INDEX so
 * the server can answer with 0-db's exact error strings. */
#ifndef QSFS_STORE_NS_H
#define QSFS_STORE_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store/format.h"
#include "store/keyindex.h"
#include "util/buf.h"
#include "util/err.h"

#define ZDB_EWRITE_DATA  QS_EWRITE_DATA  /* "Cannot write data right now" */
#define ZDB_EWRITE_INDEX QS_EWRITE_INDEX /* "Cannot write index right now" */
#define ZDB_ESEQKEY      QS_ESEQKEY      /* seq mode: a key that is not an existing id */
#define ZDB_EDISKFULL    QS_EDISKFULL    /* the file system is full: nothing was written */

#define ZDB_NS_NAME_MAX 128
#define ZDB_NS_PASS_MAX 255

struct zdb_store;

struct zdb_seqfile {
    uint64_t first; /* first sequential id stored in this index file */
    uint64_t count; /* entries (slots) in this index file */
};

struct zdb_ns_stats {
    uint64_t index_io_errors, data_io_errors; /* read and write failures */
    uint64_t index_read_failed, index_write_failed, data_read_failed, data_write_failed;
    uint64_t index_read_bytes, index_write_bytes, data_read_bytes, data_write_bytes;
    time_t index_io_error_last, data_io_error_last;
    uint64_t index_faults, data_faults;
};

struct zdb_fdcache {
    uint32_t fileid;
    int fd;
    bool writable;
    uint64_t used;      /* LRU clock */
    const uint8_t *map; /* read-only mapping of a data file (mmap_reads), or NULL */
    size_t maplen;
};

#define ZDB_FDCACHE_SIZE 8

/* Automatic compaction (store/compact.c zdb_compact_auto): when to look again, what it
 * found, and the tombstone bytes measured by earlier compactions of a file. */
#define ZDB_COMPACT_TODO  16
#define ZDB_COMPACT_KNOWN 32
struct zdb_compact_plan {
    time_t next;   /* do not look before this time */
    uint64_t mark; /* data_bytes when it last looked */
    uint32_t todo[ZDB_COMPACT_TODO];
    unsigned ntodo;
    struct {
        uint32_t fileid;
        uint64_t size; /* of d<fileid> right after its compaction */
        uint64_t tomb; /* bytes of the tombstones it kept */
    } known[ZDB_COMPACT_KNOWN];
    unsigned nknown, knext;
    bool synced;        /* every file was synced when ... */
    uint64_t synced_at; /* ... stats.data_write_bytes + index_write_bytes were this */
};

struct zdb_ns {
    struct zdb_store *store;
    char name[ZDB_NS_NAME_MAX + 1];
    char password[ZDB_NS_PASS_MAX + 1];
    uint64_t maxsize; /* 0 = unlimited */
    bool public_;
    bool worm;
    bool locked; /* read-only, not persisted */
    bool frozen; /* no reads or writes, not persisted */
    enum zdb_mode mode;
    bool mode_set; /* mode stored in the first index file header */

    char *idxdir; /* <index>/<name> */
    char *datdir; /* <data>/<name> */

    /* the active pair i<fileid>/d<fileid> */
    uint32_t fileid;
    int idx_fd, dat_fd;
    uint64_t idx_size, dat_size;
    const uint8_t *dat_map; /* mapping of the active data file (mmap_reads), or NULL */
    size_t dat_maplen;
    uint32_t idx_prev, dat_prev; /* offset of the last entry appended (0 = none yet) */
    bool written;                /* something was written since the last rotation */
    /* Appends made while the store batches writes (zdb_store_batch_begin): the bytes at
     * the end of the active files, not yet written; the files hold size - len bytes. */
    struct qs_buf wdat, widx;
    /* In-place index updates of bytes already on disk, held back until the appends above
     * are written (a deleted flag must never land before the entry that replaces it).
     * Records: u32 fileid, u64 offset, u16 length, bytes. */
    struct qs_buf wpatch;
    bool sync_pending; /* --sync: fdatasync at the end of the batch */
    time_t last_sync;
    bool dirty_unsynced; /* writes not yet fsynced (for --synctime) */

    /* sequential mode */
    uint64_t next_id;
    struct zdb_seqfile *seq; /* indexed by file id, nseq entries */
    size_t nseq, seqcap;

    struct zdb_keyindex *keys; /* user mode */

    uint64_t entries;     /* live keys */
    uint64_t datasize;    /* live payload bytes */
    uint64_t index_bytes; /* bytes of all index files */
    uint64_t data_bytes;  /* bytes of all data files */

    uint32_t *dirty; /* ids of index files modified in place since the last reset */
    size_t ndirty, dirtycap;

    struct zdb_ns_stats stats;
    struct zdb_fdcache fdc[ZDB_FDCACHE_SIZE]; /* older files, data (read) and index (rw) */
    uint64_t fdclock;
    int clients; /* connections that selected it (kept by the server) */
    struct zdb_compact_plan compact;

    /* The writes of the current batch (store/batch.c) form a generation that is made
     * durable as a whole or rolled back as a whole: the files are cut back to the base
     * and the namespace is loaded again from them, so a write answered with an error
     * leaves no trace, in memory or on disk. A rotation ends a generation (what came
     * before it reached the old files). */
    bool batch_touched;          /* the current generation has writes */
    bool batch_failed;           /* one of them failed half way: roll back at batch end */
    uint64_t batch_gen;          /* store-unique id of the current generation */
    uint32_t base_fileid;        /* the active pair when the generation started ... */
    uint64_t base_dat, base_idx; /* ... and the bytes its files held then */
    struct qs_buf wundo;         /* old bytes of the index patches applied in it */
    bool nospace;                /* rolled back for a full disk: check space before writing */
    const char *broken;          /* a roll back failed: writes refused, or NULL */
    bool reload_pending;         /* broken only because the reload after a roll back failed:
                                    the next write tries it again (a disk that came back) */
    time_t damage_logged;        /* last "damaged value" log line (one a second at most) */
};

/* Location and metadata of a live key. */
struct zdb_loc {
    uint32_t fileid;
    uint32_t idxoff;
    uint32_t dataoff;
    uint32_t length;
    uint32_t crc;
    uint8_t keylen;
};

/* Result of a SET. */
struct zdb_setres {
    uint8_t key[ZDB_MAX_KEY]; /* the key to answer with (the new id in seq mode) */
    size_t keylen;
    bool unchanged; /* same key with byte-identical value: nothing written */
};

/* Opens (create = false) or creates (create = true) namespace `name`, loading and
 * recovering its files. On success *out is owned by the caller (zdb_ns_close). */
int zdb_ns_open(struct zdb_store *store, const char *name, bool create,
                struct zdb_ns **out) QS_MUST_CHECK;

/* Flushes and closes files, frees memory. */
void zdb_ns_close(struct zdb_ns *ns);

/* Writes the zdb-namespace descriptor (atomically, mode 0600). */
int zdb_ns_save(struct zdb_ns *ns) QS_MUST_CHECK;

/* SET. ts = 0 means now. Errors: QS_EFULL (maxsize), ZDB_ESEQKEY, QS_EINVAL,
 * ZDB_EWRITE_DATA, ZDB_EWRITE_INDEX. */
int zdb_ns_set(struct zdb_ns *ns, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
               uint32_t ts, struct zdb_setres *res) QS_MUST_CHECK;

/* Finds the live entry of key; QS_ENOTFOUND when missing or deleted. */
int zdb_ns_lookup(struct zdb_ns *ns, const uint8_t *key, size_t klen,
                  struct zdb_loc *loc) QS_MUST_CHECK;

/* Reads the payload of loc into dst (loc->length bytes) and checks the data entry header
 * matches. QS_ENOTFOUND when the data file is missing (the missing-data case), QS_EIO or
 * QS_ECORRUPT otherwise. If crc_ok is not NULL, it is set to whether the CRC matched;
 * with crc_ok NULL a CRC mismatch is QS_ECORRUPT (damaged bytes are never a value). */
int zdb_ns_read(struct zdb_ns *ns, const struct zdb_loc *loc, uint8_t *dst,
                bool *crc_ok) QS_MUST_CHECK;

/* Reads the data entry header of loc (for KEYTIME). */
int zdb_ns_read_header(struct zdb_ns *ns, const struct zdb_loc *loc,
                       struct zdb_dat_entry *e) QS_MUST_CHECK;

/* DEL. ts = 0 means now. QS_ENOTFOUND when missing. */
int zdb_ns_del(struct zdb_ns *ns, const uint8_t *key, size_t klen, uint32_t ts) QS_MUST_CHECK;

/* Rotates to i<N+1>/d<N+1>. */
int zdb_ns_jump(struct zdb_ns *ns) QS_MUST_CHECK;

/* fsyncs the active files. */
int zdb_ns_sync(struct zdb_ns *ns) QS_MUST_CHECK;

/* Deletes every entry and file of the namespace and starts empty (FLUSH). */
int zdb_ns_flush(struct zdb_ns *ns) QS_MUST_CHECK;

/* Removes the namespace's directories from disk; the ns must then be closed. */
int zdb_ns_remove_files(struct zdb_ns *ns) QS_MUST_CHECK;

/* Path of file kind 'i' or 'd' with id into out. */
void zdb_ns_path(const struct zdb_ns *ns, char kind, uint32_t fileid, char *out, size_t cap);

/* NSSET mode: switches an empty namespace to mode (rewrites the mode byte of its
 * index header). QS_EBUSY when it holds anything. */
int zdb_ns_set_mode(struct zdb_ns *ns, enum zdb_mode mode) QS_MUST_CHECK;

/* Marks an index file dirty (modified in place). */
void zdb_ns_mark_dirty(struct zdb_ns *ns, uint32_t fileid);

#endif
