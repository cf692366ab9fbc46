/* Chunk compression: snappy (raw format), zstd (one frame), lz4 (block format), or none.
 *
 * A struct qs_zctx holds per-thread compressor state (zstd contexts, created on first
 * use); it is not thread-safe. Decompression is strict: the output must be exactly the
 * expected length, anything else is QS_ECORRUPT.
 */
#ifndef QSFS_CODEC_COMPRESS_H
#define QSFS_CODEC_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"
#include "util/err.h"

struct qs_zctx {
    void *zc; /* ZSTD_CCtx */
    void *zd; /* ZSTD_DCtx */
};

void qs_zctx_init(struct qs_zctx *z);
void qs_zctx_free(struct qs_zctx *z);

/* "none", "snappy", "zstd", "lz4" (NULL for an unknown value). */
const char *qs_compress_name(enum qs_compress method);

/* Parses a method name (case-insensitive). QS_EINVAL for an unknown name. */
int qs_compress_parse(const char *name, enum qs_compress *out) QS_MUST_CHECK;

/* Bytes of output space that qs_compress needs for n input bytes (n <= 64 MiB). */
size_t qs_compress_bound(enum qs_compress method, size_t n);

/* Compresses in[0..n) into out (cap >= qs_compress_bound) and sets *out_len. level is
 * used by zstd only (0 = its default). QS_EINVAL for NONE or an unknown method, QS_ENOMEM.
 */
int qs_compress(struct qs_zctx *z, enum qs_compress method, int level, const uint8_t *in, size_t n,
                uint8_t *out, size_t cap, size_t *out_len) QS_MUST_CHECK;

/* Decompresses in[0..n) into out, which must come out exactly expect bytes long.
 * QS_ECORRUPT on malformed input or a length mismatch, QS_EINVAL for an unknown method. */
int qs_decompress(struct qs_zctx *z, enum qs_compress method, const uint8_t *in, size_t n,
                  uint8_t *out, size_t expect) QS_MUST_CHECK;

#endif
