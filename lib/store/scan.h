/* Walking the entries of a namespace in append order (SCAN, RSCAN, KEYCUR, HISTORY and
 * `zdb --dump`), the 17-byte opaque cursor of 0-db v2, and raw reads of data entries
 * (DATA RAW).
 *
 * An iterator stands on one index entry: index file `fileid`, byte offset `off`. It reads
 * through the namespace's file helpers, so it sees entries the store has batched and not
 * yet written. It holds no resources: it is valid until the namespace is next modified,
 * and is meant to live for one request. Single-threaded, like the namespace.
 *
 * Cursor (17 bytes, little-endian, as 0-db v2 serializes an index position):
 *   u8 keylen, u32 index file id, u32 payload length, u32 offset in the index file,
 *   u32 payload crc.
 * The length and crc let the server reject a crafted cursor that points elsewhere. */
#ifndef QSFS_STORE_SCAN_H
#define QSFS_STORE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/ns.h"

#define ZDB_CURSOR_SIZE 17

struct zdb_scan {
    struct zdb_ns *ns;
    bool all;        /* stop on every entry, not only live ones (--dump) */
    uint32_t fileid; /* index file of the current entry */
    uint32_t off;    /* its offset in that file */
    struct zdb_idx_entry e;
    uint8_t key[ZDB_MAX_KEY];
    bool live; /* the current entry is the live version of its key */
    /* How many entries one move may read before it gives up with QS_EAGAIN, standing on
     * the last entry it read (not live, so callers can resume from its cursor); 0 = no
     * limit. Keeps one request over a long run of deleted entries short. */
    uint32_t budget;
};

/* Prepares it on ns; all = also stop on deleted and replaced entries. */
void zdb_scan_init(struct zdb_scan *it, struct zdb_ns *ns, bool all);

/* Moves to the oldest (first) / newest (last) entry. QS_ENOTFOUND when there is none;
 * QS_EIO / QS_ECORRUPT when an index file cannot be read or holds garbage. */
int zdb_scan_first(struct zdb_scan *it) QS_MUST_CHECK;
int zdb_scan_last(struct zdb_scan *it) QS_MUST_CHECK;

/* Moves to the next (later) / previous (earlier) entry, crossing index files.
 * QS_ENOTFOUND at the end, and `it` stays where it was. QS_EAGAIN when the budget ran
 * out (see above). Other errors as above. */
int zdb_scan_next(struct zdb_scan *it) QS_MUST_CHECK;
int zdb_scan_prev(struct zdb_scan *it) QS_MUST_CHECK;

/* Stands on the entry at fileid/off, whatever its state. QS_EINVAL when there is no
 * index file fileid, off lies outside its entries, or the bytes there are not an entry.
 * It does not check that off is an entry boundary: callers that take positions from
 * users check the entry against what they expect (key, length, crc). */
int zdb_scan_seek(struct zdb_scan *it, uint32_t fileid, uint32_t off) QS_MUST_CHECK;

/* Stands on the entry a cursor designates (it may have been deleted since).
 * QS_EINVAL when the cursor is not 17 bytes or does not match the entry it points to. */
int zdb_scan_seek_cursor(struct zdb_scan *it, const uint8_t *cur, size_t len) QS_MUST_CHECK;

/* Stands on the live entry of key. QS_ENOTFOUND when the key is missing or deleted. */
int zdb_scan_seek_key(struct zdb_scan *it, const uint8_t *key, size_t klen) QS_MUST_CHECK;

/* The cursor of the current entry. */
void zdb_scan_cursor(const struct zdb_scan *it, uint8_t out[ZDB_CURSOR_SIZE]);

/* Location of the payload of the current entry, for zdb_ns_read. */
void zdb_scan_loc(const struct zdb_scan *it, struct zdb_loc *loc);

/* Logical size of data file fileid (including batched bytes). QS_ENOTFOUND when the
 * file does not exist. */
int zdb_scan_data_size(struct zdb_ns *ns, uint32_t fileid, uint64_t *size) QS_MUST_CHECK;

/* Reads the data entry at fileid/off: its header into *e, its key into key (255 bytes),
 * and when payload is not NULL its payload into *payload (malloc'd, e->length bytes, the
 * caller frees it). QS_ENOTFOUND: no such file; QS_EINVAL: off is inside the file header
 * or at/after its end; QS_ECORRUPT: the bytes at off are not a whole data entry. */
int zdb_scan_data_read(struct zdb_ns *ns, uint32_t fileid, uint64_t off, struct zdb_dat_entry *e,
                       uint8_t *key, uint8_t **payload) QS_MUST_CHECK;

#endif
