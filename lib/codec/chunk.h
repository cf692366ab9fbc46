/* One chunk of a stream: seal plaintext into k+m shards, open any k shards back into the
 * plaintext, and rebuild lost shards byte for byte (docs/codec-format.md).
 *
 * A struct qs_chunk_ctx is per-thread working state (AES context, compressor contexts,
 * Reed-Solomon decode cache, scratch buffers) bound to one struct qs_codec_stream, which
 * must outlive it. Functions on one context are not thread-safe; different contexts of the
 * same stream may be used concurrently.
 */
#ifndef QSFS_CODEC_CHUNK_H
#define QSFS_CODEC_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"
#include "util/err.h"

#define QS_CHUNK_FINAL 0x01u /* flag: last chunk of the stream */

/* Decoded shard header. */
struct qs_shard_info {
    unsigned version, k, m, index;
    uint32_t chunk_size;
    uint8_t file_id[QS_CODEC_ID_LEN];
    uint8_t key_check[QS_CODEC_KCV_LEN];
    uint64_t chunk;       /* chunk index */
    unsigned flags;       /* QS_CHUNK_FINAL */
    uint32_t payload_len; /* bytes after the 64-byte header */
    uint32_t crc;         /* CRC-32C over header bytes 0..59 and the payload */
};

/* Parses and verifies one shard (header fields, exact length, CRC-32C). Needs no key.
 * QS_ECORRUPT (with what is wrong) when the shard is not a valid version-1 shard. */
int qs_shard_parse(const uint8_t *shard, size_t len, struct qs_shard_info *out) QS_MUST_CHECK;

struct qs_chunk_ctx;

/* A context for sealing (encrypt != 0) or opening chunks of stream s. method/level pick
 * the compression used when sealing. QS_ENOMEM. */
int qs_chunk_ctx_new(struct qs_chunk_ctx **out, const struct qs_codec_stream *s, int encrypt,
                     enum qs_compress method, int level) QS_MUST_CHECK;
void qs_chunk_ctx_free(struct qs_chunk_ctx *c);

/* Output of sealing one chunk: n = k+m shards, shard i at out + i * stream->stride. */
struct qs_chunk_sealed {
    size_t shard_len;                  /* every shard has this length (64 + payload) */
    uint32_t crc[QS_CODEC_MAX_SHARDS]; /* shard checksums, as stored in the headers */
    enum qs_compress method;           /* method actually used (NONE when it did not help) */
    size_t body_len;                   /* compressed (or raw) bytes that were encrypted */
};

/* Seals plain[0..len) (len <= chunk_size; len == chunk_size unless final) as chunk
 * index. flags: QS_CHUNK_FINAL for the last chunk, which also carries the whole-stream
 * digest (encrypted). out must have n * stride bytes. QS_EINVAL on bad sizes. */
int qs_chunk_seal(struct qs_chunk_ctx *c, const uint8_t *plain, size_t len, uint64_t index,
                  unsigned flags, const uint8_t digest[QS_CODEC_DIGEST_LEN], uint8_t *out,
                  struct qs_chunk_sealed *res) QS_MUST_CHECK;

/* Result of opening a chunk. */
struct qs_chunk_opened {
    size_t plain_len;
    unsigned flags;                      /* QS_CHUNK_FINAL */
    uint8_t digest[QS_CODEC_DIGEST_LEN]; /* stream digest, final chunk only */
    uint8_t state[QS_CODEC_MAX_SHARDS];  /* enum qs_shard_state per shard */
    unsigned good;                       /* shards with state OK */
    unsigned attempts;                   /* shard subsets tried (1 normally) */
};

#define QS_CHUNK_VERIFY_ALL 0x01u /* cross-check every supplied shard against the decode */

/* Opens chunk index from shard[0..n) (NULL = missing; shard[i] is read for len[i] bytes
 * and must come from position i). Corrupt or foreign shards are identified and skipped;
 * when the decode still fails authentication and spare good shards exist, other subsets
 * of k shards are tried (at most 1024). Writes the plaintext to plain (chunk_size bytes
 * of room). With QS_CHUNK_VERIFY_ALL every good shard not used is re-derived and compared
 * (a scrub). Errors: QS_ETOOFEW (fewer than k usable shards), QS_ECORRUPT (no subset
 * authenticates: tampered data, or a descriptor that does not belong to these shards),
 * QS_ENOMEM. res->state is filled in every case. */
int qs_chunk_open(struct qs_chunk_ctx *c, uint64_t index, const uint8_t *const *shard,
                  const size_t *len, unsigned flags, uint8_t *plain,
                  struct qs_chunk_opened *res) QS_MUST_CHECK;

/* Rebuilds shard `which` of chunk index, byte for byte as the encoder wrote it, after
 * opening (and so authenticating) the chunk from the other shards. out needs
 * stream->stride bytes; *out_len gets the shard length. Errors as qs_chunk_open. */
int qs_chunk_rebuild(struct qs_chunk_ctx *c, uint64_t index, const uint8_t *const *shard,
                     const size_t *len, unsigned which, uint8_t *out,
                     size_t *out_len) QS_MUST_CHECK;

#endif
