/* The metadata record of one stored file (format: docs/meta-format.md, section 2).
 *
 * A record says how to find and decode a file: its relative path, size, mtime, mode,
 * BLAKE2b-128 checksum, the codec stream descriptor (k, m, chunk size, file id and the
 * data key's check value) and, per shard index i < k+m, the backend holding shard i of
 * every chunk (address and namespace, never a password), the keys of the values it was
 * stored under (a shard larger than a backend's value limit is split over several keys,
 * "parts") and optionally a CRC-32C per chunk. It never holds the data key.
 *
 * Keys are kept as runs, in memory and in the encoding: sequential-namespace ids that
 * follow each other cost a few bytes per run, not per key, so the record of a 100 GiB
 * file stays small. A record is built by appending chunks in order to each shard, or
 * decoded from bytes; either way it is owned by the caller and freed with
 * zstor_meta_record_free. Not thread-safe; const functions may run concurrently.
 */
#ifndef QSFS_META_RECORD_H
#define QSFS_META_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"
#include "util/err.h"

#define ZSTOR_META_RECORD_VERSION 1
#define ZSTOR_META_RECORD_MAX     (64u << 20) /* largest encoded record */
#define ZSTOR_META_ADDR_MAX       4096        /* backend address bytes */
#define ZSTOR_META_NS_MAX         255         /* namespace name bytes */
#define ZSTOR_META_BKEY_MAX       255         /* an opaque key's bytes (zdb's key limit) */
#define ZSTOR_META_PARTS_MAX      65535       /* values one shard of one chunk may span */

/* Record flags. */
#define ZSTOR_META_F_CRC 0x01u /* a CRC-32C per chunk per shard is kept */

/* Shard flags. */
#define ZSTOR_META_SHARD_ABSENT 0x01u /* nothing stored for this shard (degraded write) */

enum zstor_meta_keykind {
    ZSTOR_META_KEY_SEQ = 0,   /* 64-bit ids of a sequential zdb namespace (sent as 8 LE bytes) */
    ZSTOR_META_KEY_BYTES = 1, /* opaque keys, 1..255 bytes (dir backends, user namespaces) */
};

/* One key: id for SEQ, p/len for BYTES (p points into the record or the caller's data). */
struct zstor_meta_keyref {
    uint64_t id;
    const uint8_t *p;
    size_t len;
};

/* Internal runs (see zstor_meta_chunk_keys to read keys). */
struct zstor_meta_lrun {
    uint64_t chunks, first_chunk, first_key;
    uint32_t parts;
};
struct zstor_meta_irun {
    uint64_t start, count, first_key;
};

struct zstor_meta_shard {
    unsigned flags; /* ZSTOR_META_SHARD_ABSENT */
    char *address;  /* backend address, e.g. "[::1]:9900" or "dir:///srv/d0" */
    char *ns;       /* namespace ("" = default) */
    enum zstor_meta_keykind kind;
    uint64_t nchunks, nkeys; /* chunks appended / keys over all of them */
    /* layout: chunk -> parts */
    struct zstor_meta_lrun *lay;
    size_t nlay, caplay;
    /* SEQ keys */
    struct zstor_meta_irun *ids;
    size_t nids, capids;
    /* BYTES keys: key j is kb[koff[j] .. koff[j+1]) */
    uint8_t *kb;
    size_t kblen, kbcap;
    uint64_t *koff;
    size_t koffcap;
    /* per chunk CRC-32C of the shard (record flag ZSTOR_META_F_CRC) */
    uint32_t *crc;
    size_t crccap;
};

struct zstor_meta_record {
    unsigned flags;                        /* ZSTOR_META_F_CRC */
    char *path;                            /* keyed name: cleaned, root stripped (key.h) */
    uint64_t size;                         /* plaintext bytes */
    int64_t mtime_sec;                     /* modification time of the stored file */
    uint32_t mtime_nsec;                   /* < 1e9 */
    uint32_t mode;                         /* st_mode bits, 0 = unknown */
    uint64_t stored;                       /* when it was stored, seconds since the epoch */
    uint64_t nchunks;                      /* chunks of the stream (codec: >= 1) */
    uint8_t checksum[QS_CODEC_DIGEST_LEN]; /* BLAKE2b-128 of the file */
    struct qs_codec_desc desc;             /* k, m, chunk size, file id, key check */
    enum qs_compress compress;             /* preferred compression (per chunk it may be none) */
    int level;                             /* compression level, -128..127 */
    unsigned nshards;                      /* desc.k + desc.m */
    struct zstor_meta_shard *shard;        /* nshards entries */
};

/* A new empty record for stream d keyed as path (UTF-8, 1..ZSTOR_META_PATH_MAX bytes):
 * every shard is ABSENT until zstor_meta_shard_set. flags: ZSTOR_META_F_CRC or 0.
 * QS_EINVAL on a bad path or descriptor, QS_ENOMEM. Free with zstor_meta_record_free
 * even after a failure. */
int zstor_meta_record_init(struct zstor_meta_record *r, const struct qs_codec_desc *d,
                           const char *path, unsigned flags) QS_MUST_CHECK;
void zstor_meta_record_free(struct zstor_meta_record *r);

/* (Re)assigns shard i to a backend and clears its keys (for a first store, or a rebuild
 * that moves one shard). address 1..ZSTOR_META_ADDR_MAX bytes, ns (NULL = "") up to
 * ZSTOR_META_NS_MAX. QS_EINVAL, QS_ENOMEM. */
int zstor_meta_shard_set(struct zstor_meta_record *r, unsigned i, const char *address,
                         const char *ns, enum zstor_meta_keykind kind) QS_MUST_CHECK;

/* Marks shard i as absent (no keys); the backend strings are kept. */
void zstor_meta_shard_absent(struct zstor_meta_record *r, unsigned i);

/* Appends the next chunk of shard i: its keys (1..ZSTOR_META_PARTS_MAX, in part order;
 * ids for SEQ, bytes for BYTES, copied) and, when the record keeps CRCs, the shard's
 * CRC-32C (as in the codec's shard header; ignored otherwise). QS_EINVAL (absent shard,
 * bad key), QS_ENOMEM. */
int zstor_meta_shard_add(struct zstor_meta_record *r, unsigned i,
                         const struct zstor_meta_keyref *keys, unsigned nkeys,
                         uint32_t crc) QS_MUST_CHECK;

/* The keys of shard i of chunk c: *n gets their number and the first min(*n, max) are
 * written to out (BYTES keys point into the record). *crc (may be NULL) gets the CRC or
 * 0. QS_ENOTFOUND for an absent shard, QS_EINVAL for i or c out of range. */
int zstor_meta_chunk_keys(const struct zstor_meta_record *r, unsigned i, uint64_t c,
                          struct zstor_meta_keyref *out, unsigned max, unsigned *n,
                          uint32_t *crc) QS_MUST_CHECK;

/* Serializes r into a malloc'ed buffer (*out, *len); the caller frees it (and may wipe
 * it). QS_EINVAL when r is inconsistent (a present shard with a chunk count other than
 * r->nchunks, a bad string), QS_ENOMEM when it would pass ZSTOR_META_RECORD_MAX. */
int zstor_meta_record_encode(const struct zstor_meta_record *r, uint8_t **out,
                             size_t *len) QS_MUST_CHECK;

/* Parses p[0..len) into r (initialized here; free it even after a failure). Every
 * length, count and string is checked against the input and the limits, encodings must
 * be canonical, and the trailing CRC-32C must match. QS_ECORRUPT (with what and where),
 * QS_EINVAL for a newer record or codec version than this build reads, QS_ENOMEM. */
int zstor_meta_record_decode(struct zstor_meta_record *r, const uint8_t *p,
                             size_t len) QS_MUST_CHECK;

/* Checks that r describes a whole codec stream: nchunks matches size and chunk size,
 * and every present shard has all chunks. QS_ECORRUPT with what is off. */
int zstor_meta_record_check(const struct zstor_meta_record *r) QS_MUST_CHECK;

/* 0 when key is the data key the file was stored with (the descriptor's key check
 * value); QS_EDENIED ("the configured data key is not the key ... was stored with")
 * otherwise. Needs no shard. */
int zstor_meta_check_data_key(const struct zstor_meta_record *r,
                              const uint8_t key[QS_CODEC_KEY_LEN]) QS_MUST_CHECK;

#endif
