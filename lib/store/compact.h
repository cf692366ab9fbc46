/* Compaction of closed data files: gives back the space of deleted and overwritten values.
 *
 * zdb_ns_compact_file rewrites data file d<N> (N below the active file id) with only the
 * entries still needed: the live values and the DEL tombstones (tombstones are dropped only
 * from the oldest file, where nothing older can come back through them). Index files keep
 * their size and their layout: only the data offset of the index entries that point into
 * d<N> changes, in place. So sequential ids keep their slots, every file keeps its name and
 * its format, d<N> still pairs with i<N>, and 0-db can read the result.
 *
 * An index entry whose value was reclaimed gets data offset 0 (the data file header, where
 * no data entry can start) and the deleted flag: a history walk (parentid/parentoff) that
 * reaches it ends there. Compaction sets bit 63 of the data header's `opened` field (the low
 * bits hold the time of the compaction).
 *
 * Crash safety (docs/zdb-format.md section 9): the new file is written as d<N>.compact and
 * synced; a journal listing every index patch is written as <index>/<ns>/compact.tmp, synced
 * and renamed to `compact` (the commit point); then d<N>.compact is renamed over d<N>, the
 * patches are applied and synced, and the journal is removed. zdb_compact_recover, run by
 * zdb_ns_open before anything is loaded, finishes a committed compaction (every step is
 * idempotent) and deletes the temporary files of one that was not committed.
 *
 * Single-threaded like the namespace; compaction runs to completion in the caller. */
#ifndef QSFS_STORE_COMPACT_H
#define QSFS_STORE_COMPACT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store/ns.h"
#include "util/err.h"

/* Points of a compaction, reported to zdb_compact_opts.step in this order (crash tests stop
 * the process there). */
enum zdb_compact_step {
    ZDB_COMPACT_STEP_COPYING = 1, /* d<N>.compact created, partly written */
    ZDB_COMPACT_STEP_COPIED,      /* d<N>.compact complete, not synced yet */
    ZDB_COMPACT_STEP_JOURNAL,     /* journal complete in compact.tmp, synced */
    ZDB_COMPACT_STEP_COMMITTED,   /* journal renamed to `compact`: the commit point */
    ZDB_COMPACT_STEP_RENAMED,     /* d<N>.compact renamed over d<N> */
    ZDB_COMPACT_STEP_PATCHING,    /* some index patches applied, not all */
    ZDB_COMPACT_STEP_PATCHED,     /* every patch applied and synced, journal still there */
    ZDB_COMPACT_STEP_DONE,        /* journal removed; memory not updated yet */
};
#define ZDB_COMPACT_STEPS 8

struct zdb_compact_opts {
    /* Called at each step (may be NULL). It may end the process; it must not touch ns. */
    void (*step)(void *ud, int step);
    void *ud;
};

/* What zdb_ns_compact_file (or several calls, added up by the caller) did. */
struct zdb_compact_stats {
    uint32_t files;              /* data files rewritten */
    uint32_t fileid;             /* the data file rewritten (zdb_ns_compact_file) */
    uint64_t bytes_before;       /* their sizes before */
    uint64_t bytes_after;        /* and after */
    uint64_t entries_kept;       /* live values copied */
    uint64_t entries_dropped;    /* values reclaimed */
    uint64_t tombstones_kept;    /* DEL tombstones copied */
    uint64_t tombstones_dropped; /* DEL tombstones reclaimed (oldest file only) */
    uint64_t index_patches;      /* index entries rewritten in place */
    uint64_t damaged;            /* live values copied although their CRC does not match */
    uint64_t history_left;       /* seq mode: history entries left pointing at old offsets
                                    because the walk budget ran out (see compact.c) */
};

/* Compacts data file fileid of ns. Nothing to reclaim: returns 0 with out->files = 0 and
 * changes nothing. Errors: QS_EINVAL (fileid is the active file or later), QS_ENOTFOUND
 * (d<fileid> absent: offloaded), QS_EBUSY (ns frozen, or a journal is pending),
 * QS_ECORRUPT (d<fileid> holds damaged bytes, or a live key points to no entry of it:
 * nothing is changed), QS_EIO, QS_ENOMEM. An error before the commit point leaves every
 * file as it was. After the commit point an error freezes the namespace (ns->frozen) with
 * the journal kept, so that the next start finishes the compaction. opts may be NULL. */
int zdb_ns_compact_file(struct zdb_ns *ns, uint32_t fileid, const struct zdb_compact_opts *opts,
                        struct zdb_compact_stats *out) QS_MUST_CHECK;

/* One closed data file as the policy sees it. */
struct zdb_compact_info {
    uint32_t fileid;
    uint64_t size;        /* bytes of d<fileid> */
    uint64_t reclaimable; /* estimate of what compaction would give back */
};

/* Closed data files worth compacting, most reclaimable first: reclaimable >= min_bytes and
 * reclaimable >= ratio * size (0 < ratio <= 1). Fills at most cap entries of out, *n = how
 * many. The estimate counts the bytes of live entries (from memory in user mode, from the
 * index files in sequential mode); tombstones are counted as reclaimable until a compaction
 * of the file has measured them. Cost: one pass over the keys or the index files. */
int zdb_compact_pick(struct zdb_ns *ns, double ratio, uint64_t min_bytes,
                     struct zdb_compact_info *out, size_t cap, size_t *n) QS_MUST_CHECK;

/* The automatic trigger (--compact-ratio), for the server's periodic step: compacts at most
 * one file per call. Every ZDB_COMPACT_AUTO_EVERY seconds at most, and only when the
 * namespace changed since, it picks the files whose reclaimable share reaches ratio; later
 * calls compact them one by one. Returns 1 when a file was compacted (stats in *out), 0 when
 * there was nothing to do, or an error of zdb_ns_compact_file. */
#define ZDB_COMPACT_AUTO_EVERY 5
int zdb_compact_auto(struct zdb_ns *ns, double ratio, time_t now,
                     const struct zdb_compact_opts *opts,
                     struct zdb_compact_stats *out) QS_MUST_CHECK;

/* Start-up (zdb_ns_open, before loading): finishes a committed compaction of ns, removes
 * the temporary files of an uncommitted one. QS_ECORRUPT when a journal is unreadable and
 * the data file was already replaced (the namespace cannot be loaded safely). */
int zdb_compact_recover(struct zdb_ns *ns) QS_MUST_CHECK;

/* Sequential mode, before an index file is rebuilt from its data file: QS_ECORRUPT when
 * d<fileid> was compacted, because the slots of reclaimed values cannot be rebuilt and every
 * later id would move. 0 otherwise (and when the data file cannot be read). */
int zdb_compact_rebuild_check(struct zdb_ns *ns, uint32_t fileid) QS_MUST_CHECK;

/* History walks (HISTORY): 0 when the index entry at fileid/off is a version of key whose
 * value is still stored (its data entry matches the index entry: key, length, crc and time,
 * or its data file is absent, which the read path handles); QS_ENOTFOUND when the value was
 * reclaimed by compaction or the entry is not a version of key, so the walk ends there.
 * QS_EIO when the index cannot be read. */
int zdb_compact_version_check(struct zdb_ns *ns, uint32_t fileid, uint32_t off, const uint8_t *key,
                              size_t klen) QS_MUST_CHECK;

/* Bit 63 of a data header's `opened`: the file was compacted. */
#define ZDB_DAT_OPENED_COMPACTED (1ull << 63)

#endif
