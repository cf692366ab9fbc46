/* zdbfs on-disk values (layout version 2), encoded and decoded with bounds checks.
 *
 * Every value lives in a sequential zdb namespace under a server-assigned u64 key.
 * Integers are little-endian; every value but the headers ends with a CRC-32C (iSCSI) of
 * the bytes before it. docs/zdbfs-format.md describes each field; the decoders here are
 * the reference and are fuzzed (fuzz/fs_decode.c).
 *
 * Decoders never trust a length: a short, long, or inconsistent value is QS_ECORRUPT
 * with a message naming the value and the field. Decoded structures own their arrays
 * (free with the matching _free). Thread-safe (no shared state).
 */
#ifndef QSFS_FS_FORMAT_H
#define QSFS_FS_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define QS_FS_LAYOUT_V1 1 /* 0-db-fs v0.1.x */
#define QS_FS_LAYOUT_V2 2 /* zdbfs */

#define QS_FS_HDR_V1_LEN 18u /* magic[6] u16 version u16 flags u64 size */
#define QS_FS_HDR_V2_LEN 64u

#define QS_FS_ROOT_INO      1u /* meta key 1, FUSE's root id */
#define QS_FS_NAME_MAX      255u
#define QS_FS_SYMLINK_MAX   4095u
#define QS_FS_XATTR_MAX     (64u * 1024) /* all of one inode's names and values */
#define QS_FS_INLINE_BLOCKS 64u          /* block keys held in the inode itself */
#define QS_FS_PAGE_KEYS     512u         /* block keys per map page */
#define QS_FS_MAX_BUCKETS   (1u << 20)
/* 32 KiB: measured against 16, 64 and 128 KiB (docs/zdbfs.md, "Block size") */
#define QS_FS_DEFAULT_BLOCK (32u * 1024)

enum qs_fs_ns { QS_FS_META = 0, QS_FS_DATA = 1, QS_FS_TEMP = 2 };

/* Key 0 of each namespace. v1 headers are QS_FS_HDR_V1_LEN bytes; v2 headers of the meta
 * namespace carry the fields after size (zero in data/temp headers). */
struct qs_fs_header {
    enum qs_fs_ns ns; /* from the magic: ZDBFSM, ZDBFSD, ZDBFST */
    uint16_t version;
    uint16_t flags;
    uint64_t size;        /* statfs size in bytes */
    uint32_t block_size;  /* v2 meta: bytes per data block */
    uint64_t journal_key; /* v2 meta: the commit slot */
    uint64_t created;     /* v2 meta: unix seconds */
    uint8_t uuid[16];     /* v2 meta */
};

/* Writes the header to out (QS_FS_HDR_V2_LEN bytes, or V1 for version 1); returns length. */
size_t qs_fs_header_encode(const struct qs_fs_header *h, uint8_t out[QS_FS_HDR_V2_LEN]);
int qs_fs_header_decode(const uint8_t *p, size_t n, struct qs_fs_header *h) QS_MUST_CHECK;

struct qs_fs_time {
    int64_t sec;
    uint32_t nsec;
};

/* One extended attribute (name NUL-terminated inside the inode's xattr blob). */
struct qs_fs_xattr {
    char *name;
    uint8_t *value;
    uint32_t len;
};

/* An inode as stored (meta value at key ino). */
struct qs_fs_dinode {
    uint32_t mode, uid, gid, nlink, flags;
    uint64_t size, rdev, parent; /* parent: directories only (their "..") */
    struct qs_fs_time atime, mtime, ctime, btime;
    uint32_t nxattr;
    struct qs_fs_xattr *xattr;
    /* S_IFREG: nblocks block keys, either inline (npages == 0) or in npages map pages */
    uint64_t nblocks;
    uint64_t *blocks; /* inline form: nblocks keys */
    uint32_t *lens;   /* inline form: bytes of each block that count (the rest reads as 0) */
    uint32_t npages;
    uint64_t *pages;
    uint64_t nalloc; /* paged form: blocks with a key (st_blocks without loading pages) */
    /* S_IFDIR: entries are in nbuckets bucket values (0 = empty bucket) */
    uint32_t nbuckets;
    uint64_t next_cookie;
    uint64_t *buckets;
    /* S_IFLNK */
    char *target;
};

void qs_fs_dinode_free(struct qs_fs_dinode *d);
/* Encodes d into *out (malloc'd, caller frees). QS_ENOMEM, QS_EINVAL for impossible
 * counts. */
int qs_fs_dinode_encode(const struct qs_fs_dinode *d, uint8_t **out, size_t *len) QS_MUST_CHECK;
int qs_fs_dinode_decode(const uint8_t *p, size_t n, struct qs_fs_dinode *d) QS_MUST_CHECK;

/* A map page: up to QS_FS_PAGE_KEYS (block key, length) pairs (missing trailing ones are
 * 0). A block's length is how many of its bytes count: after a crash a block may hold
 * bytes written after the last commit, which are cut at that length. */
int qs_fs_page_encode(const uint64_t *keys, const uint32_t *lens, uint32_t n, uint8_t **out,
                      size_t *len) QS_MUST_CHECK;
int qs_fs_page_decode(const uint8_t *p, size_t n, uint64_t keys[QS_FS_PAGE_KEYS],
                      uint32_t lens[QS_FS_PAGE_KEYS]) QS_MUST_CHECK;

/* A directory entry; cookie orders readdir and is never reused within a directory. */
struct qs_fs_dent {
    uint64_t cookie;
    uint64_t ino;
    uint8_t type; /* DT_* */
    uint8_t namelen;
    char name[QS_FS_NAME_MAX + 1];
};

/* A bucket value: count entries. encode takes pointers (the directory's own entries). */
int qs_fs_bucket_encode(const struct qs_fs_dent *const *e, uint32_t n, uint8_t **out,
                        size_t *len) QS_MUST_CHECK;
/* Decodes into *out (malloc'd array of *n entries). */
int qs_fs_bucket_decode(const uint8_t *p, size_t n, struct qs_fs_dent **out,
                        uint32_t *count) QS_MUST_CHECK;

/* The commit record (journal): everything one commit writes and deletes.
 * Sets are (namespace meta) key -> value; frees are DELs done after the sets. */
struct qs_fs_jset {
    uint64_t key;
    uint32_t len;
    const uint8_t *val; /* decode: points into the decoded buffer */
};

struct qs_fs_journal {
    uint64_t txid;
    uint32_t nsets;
    struct qs_fs_jset *sets;
    uint32_t nfree_meta, nfree_data, norphans, npool;
    uint64_t *free_meta, *free_data, *orphans, *pool;
};

void qs_fs_journal_free(struct qs_fs_journal *j);
/* The record body (without the slot wrapper). */
int qs_fs_journal_encode(const struct qs_fs_journal *j, uint8_t **out, size_t *len) QS_MUST_CHECK;
/* Decodes a body; j's sets point into p, which must outlive j. */
int qs_fs_journal_decode(const uint8_t *p, size_t n, struct qs_fs_journal *j) QS_MUST_CHECK;

/* The slot value at header.journal_key: the body inline (nparts 0) or the keys of the
 * parts whose concatenation is the body, with the body's length and CRC. */
struct qs_fs_slot {
    uint64_t txid;
    uint32_t nparts;
    uint64_t parts[64];
    uint64_t body_len;
    uint32_t body_crc;
    const uint8_t *inline_body; /* decode: points into p */
};
#define QS_FS_SLOT_MAX_PARTS 64u
int qs_fs_slot_encode(const struct qs_fs_slot *s, const uint8_t *body, uint8_t **out,
                      size_t *len) QS_MUST_CHECK;
int qs_fs_slot_decode(const uint8_t *p, size_t n, struct qs_fs_slot *s) QS_MUST_CHECK;

/* CRC-32C (iSCSI) as used by every value. */
uint32_t qs_fs_crc(const void *p, size_t n);

/* ---- layout version 1 (0-db-fs), read only, for the upgrade ---- */

struct qs_fs_v1_inode {
    uint32_t mode, dev, links;
    uint16_t uid, gid;
    uint64_t size;
    uint32_t atime, mtime, ctime;
    uint64_t nblocks;    /* regular */
    uint32_t *blocks;    /* regular: data keys, 0 = hole */
    uint64_t lists[128]; /* directory: list keys, QS_FS_V1_UNSET = none */
    char *target;        /* symlink */
};
#define QS_FS_V1_UNSET 0x4242424242424242ull
void qs_fs_v1_inode_free(struct qs_fs_v1_inode *d);
int qs_fs_v1_inode_decode(const uint8_t *p, size_t n, struct qs_fs_v1_inode *d) QS_MUST_CHECK;
/* A v1 directory list: entries (cookie 0, type 0). */
int qs_fs_v1_list_decode(const uint8_t *p, size_t n, struct qs_fs_dent **out,
                         uint32_t *count) QS_MUST_CHECK;

#endif
