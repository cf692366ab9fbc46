/* Streaming encoder: bytes in, per chunk k+m shards out, in order.
 *
 * The caller writes the stream with qs_encoder_write (or fills the encoder's own buffer
 * with qs_encoder_buffer + qs_encoder_commit, which saves a copy), then calls
 * qs_encoder_finish. Chunks are sealed in parallel by a worker pool; the sink is called
 * on the caller's thread, from inside write/commit/finish, once per chunk in chunk order.
 * Memory is bounded by `inflight` chunks whatever the stream length. The BLAKE2b-128
 * digest of the stream is computed in the pool's serial lane, overlapped with sealing
 * (several streams sharing one pool also share that lane).
 *
 * Errors are sticky: after a failure (a sealing error or a sink returning nonzero) every
 * later call returns the same code. An encoder is used by one thread at a time.
 */
#ifndef QSFS_CODEC_ENCODER_H
#define QSFS_CODEC_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"
#include "codec/pool.h"
#include "util/err.h"

struct qs_encoder_opts {
    unsigned k, m;             /* data and parity shards per chunk */
    uint32_t chunk_size;       /* plaintext bytes per chunk; 0 = QS_CODEC_CHUNK_DEF (1 MiB) */
    enum qs_compress compress; /* preferred method; a chunk it does not shrink is kept raw */
    int level;                 /* zstd level, 0 = default (3) */
    int workers;               /* worker threads: -1 = one per CPU, 0 = all on caller's thread */
    unsigned inflight;         /* chunks held at once (>= 2); 0 = workers + 2 */
    const uint8_t *file_id;    /* 16 bytes, tests only; NULL = random (never reuse one) */
    struct qs_pool *pool;      /* optional shared pool (then workers is ignored) */
};

/* 4+2, 1 MiB chunks, snappy, one worker per CPU. */
void qs_encoder_opts_default(struct qs_encoder_opts *o);

/* One encoded chunk, valid only during the sink call. */
struct qs_enc_chunk {
    uint64_t index;
    size_t plain_len;
    int final;                   /* last chunk of the stream */
    enum qs_compress method;     /* compression actually used for this chunk */
    unsigned nshards;            /* k + m */
    size_t shard_len;            /* every shard is this long (header included) */
    const uint8_t *const *shard; /* shard[i] goes to backend i */
    const uint32_t *crc;         /* CRC-32C of each shard, as in its header */
};

/* Returns 0 to go on, or a negative QS_E* code to abort the stream. */
typedef int (*qs_encoder_sink)(void *ud, const struct qs_enc_chunk *c);

struct qs_encoder;

/* Creates an encoder with key (32 bytes, not kept: only a per-file key derived from it,
 * wiped on free); o NULL means the defaults. QS_EINVAL on bad options, QS_ENOMEM, QS_EIO. */
int qs_encoder_new(struct qs_encoder **out, const struct qs_encoder_opts *o,
                   const uint8_t key[QS_CODEC_KEY_LEN], qs_encoder_sink sink,
                   void *ud) QS_MUST_CHECK;

/* The stream descriptor the decoder will need (store it, e.g. qs_codec_desc_encode). */
const struct qs_codec_desc *qs_encoder_desc(const struct qs_encoder *e);

/* Appends len bytes of the stream. */
int qs_encoder_write(struct qs_encoder *e, const void *data, size_t len) QS_MUST_CHECK;

/* Zero-copy input: *p gets room for *avail (>= 1) bytes; write there, then commit how
 * many were written (0 allowed). May block for a free chunk buffer and call the sink. */
int qs_encoder_buffer(struct qs_encoder *e, uint8_t **p, size_t *avail) QS_MUST_CHECK;
int qs_encoder_commit(struct qs_encoder *e, size_t n) QS_MUST_CHECK;

/* Ends the stream: seals the last chunk, delivers everything, fills *out (may be NULL).
 * Further writes are QS_EINVAL. */
int qs_encoder_finish(struct qs_encoder *e, struct qs_codec_summary *out) QS_MUST_CHECK;

/* Waits for pending work and frees everything (secrets wiped). NULL is a no-op. */
void qs_encoder_free(struct qs_encoder *e);

#endif
