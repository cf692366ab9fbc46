/* Codec: shared definitions of the qsfs stream format (docs/codec-format.md).
 *
 * A stream is cut into chunks; every chunk is compressed, sealed with AES-256-GCM and
 * Reed-Solomon coded into k data + m parity shards. A stream descriptor (struct
 * qs_codec_desc) names the parameters every shard repeats: k, m, chunk size, a random
 * 16-byte file id and a key check value. The caller stores the descriptor (zstor keeps it
 * in its metadata) and gives it back to the decoder.
 *
 * This header holds the limits, the descriptor and its 48-byte serialized form, and the
 * per-stream immutable state (struct qs_codec_stream) that encoder and decoder threads
 * share read-only.
 */
#ifndef QSFS_CODEC_CODEC_H
#define QSFS_CODEC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "codec/rs.h"
#include "util/err.h"

#define QS_CODEC_VERSION    1
#define QS_CODEC_KEY_LEN    32 /* AES-256 master key */
#define QS_CODEC_ID_LEN     16 /* file id */
#define QS_CODEC_KCV_LEN    16 /* key check value */
#define QS_CODEC_DIGEST_LEN 16 /* BLAKE2b-128 of the whole stream */
#define QS_CODEC_MAX_SHARDS 255
#define QS_CODEC_CHUNK_MIN  16u
#define QS_CODEC_CHUNK_MAX  (64u << 20)
#define QS_CODEC_CHUNK_DEF  (1u << 20)
#define QS_CODEC_DESC_LEN   48 /* serialized descriptor */
#define QS_SHARD_HDR_LEN    64 /* header in front of every shard payload */
#define QS_RECORD_HDR_LEN   16 /* cleartext header of a sealed chunk record */
#define QS_AEAD_TAG_LEN     16

/* Per-chunk compression method (a record header byte; values are part of the format). */
enum qs_compress {
    QS_COMPRESS_NONE = 0,
    QS_COMPRESS_SNAPPY = 1,
    QS_COMPRESS_ZSTD = 2,
    QS_COMPRESS_LZ4 = 3,
};

/* What the decoder concluded about one shard of a chunk. */
enum qs_shard_state {
    QS_SHARD_OK = 0,      /* header and checksum good (and consistent when cross-checked) */
    QS_SHARD_MISSING = 1, /* not supplied */
    QS_SHARD_CORRUPT = 2, /* supplied but unusable: bad header, checksum, size or content */
};

struct qs_codec_desc {
    unsigned version;    /* QS_CODEC_VERSION for new streams */
    unsigned k;          /* data shards, >= 1 */
    unsigned m;          /* parity shards, >= 1, k + m <= 255 */
    uint32_t chunk_size; /* plaintext bytes per chunk (the last one may be shorter) */
    uint8_t file_id[QS_CODEC_ID_LEN];
    uint8_t key_check[QS_CODEC_KCV_LEN];
};

/* Whole-stream results the encoder reports and the decoder checks. */
struct qs_codec_summary {
    uint64_t size;   /* plaintext bytes */
    uint64_t chunks; /* number of chunks (>= 1: an empty stream has one empty chunk) */
    uint8_t digest[QS_CODEC_DIGEST_LEN]; /* BLAKE2b, 16-byte digest, over the plaintext */
};

/* Checks k, m and chunk_size against the limits. QS_EINVAL with a message otherwise. */
int qs_codec_check_params(unsigned k, unsigned m, uint64_t chunk_size) QS_MUST_CHECK;

/* Fills d for a new stream: version, k, m, chunk_size, file_id (copied from file_id, or
 * 16 random bytes from the OS when file_id is NULL) and the key check value derived from
 * key. A file id must never be reused with the same key for different data; pass one
 * only for tests and reproducible fixtures. QS_EINVAL on bad parameters, QS_EIO when the
 * random generator fails. */
int qs_codec_desc_new(struct qs_codec_desc *d, unsigned k, unsigned m, uint32_t chunk_size,
                      const uint8_t *file_id, const uint8_t key[QS_CODEC_KEY_LEN]) QS_MUST_CHECK;

/* Serializes d into exactly QS_CODEC_DESC_LEN bytes. */
void qs_codec_desc_encode(const struct qs_codec_desc *d, uint8_t out[QS_CODEC_DESC_LEN]);

/* Parses a serialized descriptor: QS_ECORRUPT on bad magic, length, checksum or reserved
 * bytes, QS_EINVAL for a version this build cannot read or out-of-range parameters. */
int qs_codec_desc_decode(struct qs_codec_desc *d, const uint8_t *p, size_t len) QS_MUST_CHECK;

/* Immutable per-stream state: descriptor, Reed-Solomon matrices, derived data key and the
 * derived shard sizes. Built once, then shared read-only by every worker thread. */
struct qs_codec_stream {
    struct qs_codec_desc desc;
    struct qs_rs rs;
    uint8_t data_key[QS_CODEC_KEY_LEN]; /* per-file AES key derived from master + file id */
    size_t max_payload;                 /* largest shard payload: ceil((chunk + 48) / k) */
    size_t stride;                      /* bytes reserved per shard in buffers (64-aligned) */
    uint8_t aad_prefix[32];             /* constant part of every chunk's associated data */
};

/* Builds the stream state from a descriptor and the 32-byte master key. QS_EDENIED when
 * the key does not match the descriptor's key check value ("wrong key"), QS_EINVAL on bad
 * parameters, QS_ENOMEM. Free with qs_codec_stream_free (wipes the derived key). */
int qs_codec_stream_init(struct qs_codec_stream *s, const struct qs_codec_desc *d,
                         const uint8_t key[QS_CODEC_KEY_LEN]) QS_MUST_CHECK;
void qs_codec_stream_free(struct qs_codec_stream *s);

/* Number of online CPUs, at least 1 (the default worker count). */
unsigned qs_codec_default_workers(void);

#endif
