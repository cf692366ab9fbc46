/* Streaming decoder: per chunk any k of the k+m shards in, the original bytes out.
 *
 * The caller feeds chunks in order (chunk 0, 1, ...), each as an array of k+m shard
 * pointers where missing shards are NULL; corrupt, foreign or misplaced shards are
 * detected and skipped. Chunks are opened in parallel by a worker pool and handed to the
 * sink on the caller's thread, in order, from inside feed/finish. qs_decoder_finish
 * checks that the stream ended with its final chunk and that the BLAKE2b-128 of the
 * output (computed in the pool's serial lane, overlapped with opening) matches the digest
 * sealed in that chunk. Shards are copied on feed, so the
 * caller may reuse its buffers at once. Memory is bounded by `inflight` chunks.
 *
 * Errors (sticky, as for the encoder): QS_EDENIED wrong key (from qs_decoder_new),
 * QS_ETOOFEW fewer than k usable shards in a chunk, QS_ECORRUPT tampered, reordered,
 * truncated or extended stream, QS_ENOMEM. The sink must not use data from a stream whose
 * finish fails for anything beyond best-effort recovery: only a successful finish proves
 * the whole stream.
 */
#ifndef QSFS_CODEC_DECODER_H
#define QSFS_CODEC_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"
#include "codec/pool.h"
#include "util/err.h"

struct qs_decoder_opts {
    int workers;          /* -1 = one per CPU, 0 = all on the caller's thread */
    unsigned inflight;    /* chunks held at once; 0 = workers + 2 */
    struct qs_pool *pool; /* optional shared pool (then workers is ignored) */
    int verify_all;       /* cross-check every supplied shard (scrub), not just k */
};

void qs_decoder_opts_default(struct qs_decoder_opts *o);

/* One decoded chunk, valid only during the sink call. */
struct qs_dec_chunk {
    uint64_t index;
    const uint8_t *data;
    size_t len;
    int final;
    unsigned nshards;     /* k + m */
    const uint8_t *state; /* enum qs_shard_state per shard: what to repair */
    unsigned good;        /* shards found good */
};

/* Returns 0 to go on, or a negative QS_E* code to abort. */
typedef int (*qs_decoder_sink)(void *ud, const struct qs_dec_chunk *c);

struct qs_decoder;

/* Creates a decoder for the stream described by d, with the 32-byte master key; o NULL
 * means the defaults. QS_EDENIED when the key is wrong for this stream, QS_EINVAL,
 * QS_ENOMEM, QS_EIO. */
int qs_decoder_new(struct qs_decoder **out, const struct qs_codec_desc *d,
                   const uint8_t key[QS_CODEC_KEY_LEN], const struct qs_decoder_opts *o,
                   qs_decoder_sink sink, void *ud) QS_MUST_CHECK;

/* Feeds the next chunk: shard[i] (len[i] bytes) is what backend i returned, NULL when it
 * returned nothing. Both arrays have k+m entries. */
int qs_decoder_feed(struct qs_decoder *dec, const uint8_t *const *shard,
                    const size_t *len) QS_MUST_CHECK;

/* Ends the stream: delivers the rest, then checks the final chunk was seen and the
 * whole-stream digest. Fills *out (may be NULL) on success. */
int qs_decoder_finish(struct qs_decoder *dec, struct qs_codec_summary *out) QS_MUST_CHECK;

void qs_decoder_free(struct qs_decoder *dec);

#endif
