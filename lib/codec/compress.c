#include "compress.h"

#include <limits.h>
#include <lz4.h>
#include <snappy-c.h>
#include <strings.h>
#include <zstd.h>

void qs_zctx_init(struct qs_zctx *z)
{
    z->zc = NULL;
    z->zd = NULL;
}

void qs_zctx_free(struct qs_zctx *z)
{
    ZSTD_freeCCtx(z->zc);
    ZSTD_freeDCtx(z->zd);
    z->zc = z->zd = NULL;
}

static const char *const method_names[] = {"none", "snappy", "zstd", "lz4"};

const char *qs_compress_name(enum qs_compress method)
{
    if ((unsigned)method >= sizeof(method_names) / sizeof(method_names[0]))
        return NULL;
    return method_names[method];
}

int qs_compress_parse(const char *name, enum qs_compress *out)
{
    for (unsigned i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++) {
        if (strcasecmp(name, method_names[i]) == 0) {
            *out = (enum qs_compress)i;
            return 0;
        }
    }
    return qs_err_set(QS_EINVAL, "unknown compression '%s' (none, snappy, zstd, lz4)", name);
}

size_t qs_compress_bound(enum qs_compress method, size_t n)
{
    if (n > QS_CODEC_CHUNK_MAX)
        return 0;
    switch (method) {
    case QS_COMPRESS_SNAPPY:
        return snappy_max_compressed_length(n);
    case QS_COMPRESS_ZSTD:
        return ZSTD_compressBound(n);
    case QS_COMPRESS_LZ4:
        return (size_t)LZ4_compressBound((int)n);
    default:
        return n;
    }
}

int qs_compress(struct qs_zctx *z, enum qs_compress method, int level, const uint8_t *in, size_t n,
                uint8_t *out, size_t cap, size_t *out_len)
{
    *out_len = 0;
    if (n > QS_CODEC_CHUNK_MAX || cap < qs_compress_bound(method, n))
        return qs_err_set(QS_EINVAL, "compress: bad buffer sizes");
    switch (method) {
    case QS_COMPRESS_SNAPPY: {
        size_t len = cap;
        if (snappy_compress((const char *)in, n, (char *)out, &len) != SNAPPY_OK)
            return qs_err_set(QS_ENOMEM, "snappy: compression failed");
        *out_len = len;
        return 0;
    }
    case QS_COMPRESS_ZSTD: {
        if (!z->zc && !(z->zc = ZSTD_createCCtx()))
            return qs_err_set(QS_ENOMEM, "zstd: out of memory");
        size_t r = ZSTD_compressCCtx(z->zc, out, cap, in, n, level ? level : 3);
        if (ZSTD_isError(r))
            return qs_err_set(QS_ENOMEM, "zstd: %s", ZSTD_getErrorName(r));
        *out_len = r;
        return 0;
    }
    case QS_COMPRESS_LZ4: {
        int r = LZ4_compress_default((const char *)in, (char *)out, (int)n,
                                     cap > INT_MAX ? INT_MAX : (int)cap);
        if (r <= 0 && n > 0)
            return qs_err_set(QS_ENOMEM, "lz4: compression failed");
        *out_len = r > 0 ? (size_t)r : 0;
        return 0;
    }
    default:
        return qs_err_set(QS_EINVAL, "compress: bad method %d", (int)method);
    }
}

int qs_decompress(struct qs_zctx *z, enum qs_compress method, const uint8_t *in, size_t n,
                  uint8_t *out, size_t expect)
{
    if (expect > QS_CODEC_CHUNK_MAX || n > INT_MAX)
        return qs_err_set(QS_ECORRUPT, "decompress: sizes out of range");
    switch (method) {
    case QS_COMPRESS_SNAPPY: {
        size_t len = 0;
        if (snappy_uncompressed_length((const char *)in, n, &len) != SNAPPY_OK || len != expect)
            return qs_err_set(QS_ECORRUPT, "snappy: bad header");
        len = expect;
        if (snappy_uncompress((const char *)in, n, (char *)out, &len) != SNAPPY_OK || len != expect)
            return qs_err_set(QS_ECORRUPT, "snappy: malformed data");
        return 0;
    }
    case QS_COMPRESS_ZSTD: {
        if (!z->zd && !(z->zd = ZSTD_createDCtx()))
            return qs_err_set(QS_ENOMEM, "zstd: out of memory");
        size_t r = ZSTD_decompressDCtx(z->zd, out, expect, in, n);
        if (ZSTD_isError(r))
            return qs_err_set(QS_ECORRUPT, "zstd: %s", ZSTD_getErrorName(r));
        if (r != expect)
            return qs_err_set(QS_ECORRUPT, "zstd: %zu bytes, expected %zu", r, expect);
        return 0;
    }
    case QS_COMPRESS_LZ4: {
        if (expect == 0)
            return n == 1 && in[0] == 0 ? 0 : qs_err_set(QS_ECORRUPT, "lz4: malformed data");
        int r = LZ4_decompress_safe((const char *)in, (char *)out, (int)n, (int)expect);
        if (r < 0 || (size_t)r != expect)
            return qs_err_set(QS_ECORRUPT, "lz4: malformed data");
        return 0;
    }
    default:
        return qs_err_set(QS_EINVAL, "decompress: bad method %d", (int)method);
    }
}
