/* The in-memory key index of a user-mode namespace: key -> location of its live entry.
 *
 * Compact by design (about 22 bytes + key per record in one arena, plus an 8-byte slot
 * per key in an open-addressing table kept at most 3/4 full), instead of 0-db's
 * 64 bytes + key per key plus a fixed 128 MiB table. Not thread-safe.
 * Record pointers returned by get() stay valid until the next put() or del(). */
#ifndef QSFS_STORE_KEYINDEX_H
#define QSFS_STORE_KEYINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Where the live version of a key is; the data file id equals the index file id. */
struct zdb_keyloc {
    uint32_t fileid;  /* i<fileid> and d<fileid> */
    uint32_t idxoff;  /* offset of the index entry in i<fileid> */
    uint32_t dataoff; /* offset of the data entry in d<fileid> */
    uint32_t length;  /* payload length */
    uint32_t crc;     /* payload CRC (0-db variant) */
};

struct zdb_keyrec {
    struct zdb_keyloc loc;
    uint8_t keylen;
    uint8_t key[];
} __attribute__((packed, aligned(4)));

struct zdb_keyindex;

int zdb_keyindex_new(struct zdb_keyindex **out) QS_MUST_CHECK;
void zdb_keyindex_free(struct zdb_keyindex *ki);

/* The record of key, or NULL. */
struct zdb_keyrec *zdb_keyindex_get(struct zdb_keyindex *ki, const uint8_t *key, size_t klen);

/* Inserts key or replaces its location. *replaced (if not NULL) = 1 when it existed. */
int zdb_keyindex_put(struct zdb_keyindex *ki, const uint8_t *key, size_t klen,
                     const struct zdb_keyloc *loc, int *replaced) QS_MUST_CHECK;

/* Removes key; QS_ENOTFOUND if absent. */
int zdb_keyindex_del(struct zdb_keyindex *ki, const uint8_t *key, size_t klen);

size_t zdb_keyindex_count(const struct zdb_keyindex *ki);

/* Sum of the lengths of the live keys. */
uint64_t zdb_keyindex_keybytes(const struct zdb_keyindex *ki);

/* Bytes of heap held (table + arena), for the memory benchmark and INFO. */
size_t zdb_keyindex_memory(const struct zdb_keyindex *ki);

/* Calls fn for every live record, in no particular order; stops when fn returns non-zero
 * and returns that value. fn must not modify the index. */
int zdb_keyindex_each(struct zdb_keyindex *ki, int (*fn)(const struct zdb_keyrec *r, void *ud),
                      void *ud);

#endif
