/* The 0-db v2 on-disk format (index version 4, data version 3), byte for byte.
 * Everything is little-endian and packed; docs/zdb-format.md describes each field.
 * These functions only encode and decode bytes: no I/O. */
#ifndef QSFS_STORE_FORMAT_H
#define QSFS_STORE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define ZDB_IDX_MAGIC       "IDX0"
#define ZDB_IDX_VERSION     4
#define ZDB_IDX_HEADER_SIZE 29
#define ZDB_IDX_ENTRY_SIZE  34 /* fixed part, the key follows */

#define ZDB_DAT_MAGIC       "DAT0"
#define ZDB_DAT_VERSION     3
#define ZDB_DAT_HEADER_SIZE 28
#define ZDB_DAT_ENTRY_SIZE  18 /* fixed part, key and payload follow */

#define ZDB_NSFILE_VERSION     1
#define ZDB_NSFILE_HEADER_SIZE 15

#define ZDB_MAX_KEY        255
#define ZDB_MAX_PAYLOAD    (8u * 1024 * 1024)
#define ZDB_SEQ_KEY_SIZE   8
#define ZDB_SEQ_ENTRY_SIZE (ZDB_IDX_ENTRY_SIZE + ZDB_SEQ_KEY_SIZE)

/* index entry flags */
#define ZDB_IDX_DELETED 1
/* data entry flags */
#define ZDB_DAT_DELETED   1
#define ZDB_DAT_TRUNCATED 2

/* namespace file flags */
#define ZDB_NS_PUBLIC   1
#define ZDB_NS_WORM     2
#define ZDB_NS_EXTENDED 4

enum zdb_mode { ZDB_MODE_USER = 0, ZDB_MODE_SEQ = 1 };

struct zdb_idx_header {
    uint32_t version;
    uint64_t created;
    uint64_t opened;
    uint32_t fileid;
    uint8_t mode;
};

struct zdb_idx_entry {
    uint8_t keylen;
    uint32_t offset;   /* of the data entry in d<dataid> */
    uint32_t length;   /* payload length */
    uint32_t previous; /* offset of the previous index entry (possibly in the previous file) */
    uint8_t flags;
    uint32_t dataid;
    uint32_t timestamp;
    uint32_t crc; /* of the payload */
    uint32_t parentid;
    uint32_t parentoff;
};

struct zdb_dat_header {
    uint32_t version;
    uint64_t created;
    uint64_t opened;
    uint32_t fileid;
};

struct zdb_dat_entry {
    uint8_t keylen;
    uint32_t length;   /* payload length */
    uint32_t previous; /* offset of the previous data entry */
    uint32_t crc;
    uint8_t flags;
    uint32_t timestamp;
};

struct zdb_nsfile {
    uint64_t maxsize;
    uint8_t flags;
    uint8_t namelen;
    uint8_t passlen;
    char name[256];
    char password[256];
};

void zdb_idx_header_encode(uint8_t out[ZDB_IDX_HEADER_SIZE], const struct zdb_idx_header *h);
/* QS_ECORRUPT when the magic or version is wrong or fewer than 29 bytes are given. */
int zdb_idx_header_decode(struct zdb_idx_header *h, const uint8_t *in, size_t len) QS_MUST_CHECK;

void zdb_idx_entry_encode(uint8_t out[ZDB_IDX_ENTRY_SIZE], const struct zdb_idx_entry *e);
/* Decodes the fixed part; QS_EAGAIN when len < 34. The key follows in the input. */
int zdb_idx_entry_decode(struct zdb_idx_entry *e, const uint8_t *in, size_t len) QS_MUST_CHECK;

void zdb_dat_header_encode(uint8_t out[ZDB_DAT_HEADER_SIZE], const struct zdb_dat_header *h);
int zdb_dat_header_decode(struct zdb_dat_header *h, const uint8_t *in, size_t len) QS_MUST_CHECK;

void zdb_dat_entry_encode(uint8_t out[ZDB_DAT_ENTRY_SIZE], const struct zdb_dat_entry *e);
/* Decodes the fixed part; QS_EAGAIN when len < 18, QS_ECORRUPT when the length or flags
 * are impossible (payload over 8 MiB, unknown flags). */
int zdb_dat_entry_decode(struct zdb_dat_entry *e, const uint8_t *in, size_t len) QS_MUST_CHECK;

/* Namespace descriptor file. encode writes at most 15 + 255 + 255 bytes into out and
 * returns the length; decode checks every length against len. */
size_t zdb_nsfile_encode(uint8_t *out, size_t cap, const struct zdb_nsfile *f);
int zdb_nsfile_decode(struct zdb_nsfile *f, const uint8_t *in, size_t len) QS_MUST_CHECK;

#endif
