/* Fuzz target: the codec's readers over arbitrary bytes.
 *
 * Input byte 0 selects the mode:
 *   even: the rest is parsed as a stream descriptor (its first 48 bytes) and as one shard;
 *   odd:  a stream decode. Bytes 1..4 give k = 1 + b1 % 4, m = 1 + b2 % 3 and
 *         chunk_size = 16 + le16(b3, b4) % 4081; then chunk after chunk, k+m shards each as
 *         a little-endian u16 length (0xFFFF = missing) and that many bytes. Bit 1 of the
 *         mode asks for the full cross-check (verify_all), bit 2 rebuilds shard 0 of the
 *         first chunk as well.
 * The key and file id are fixed (bench/codec_tool fuzzseed writes valid inputs with them).
 * Everything runs on the calling thread. Invariants: no crash, no leak, and a successful
 * decode delivers exactly the bytes its summary counts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/chunk.h"
#include "codec/codec.h"
#include "codec/decoder.h"
#include "util/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_key[32] = "qsfs fuzz key, not a secret....";
static const uint8_t fuzz_id[16] = "fuzz-file-id-01";

static int count_sink(void *ud, const struct qs_dec_chunk *c)
{
    uint64_t *total = ud;
    if (c->len > QS_CODEC_CHUNK_MAX || c->nshards > QS_CODEC_MAX_SHARDS)
        abort();
    *total += c->len;
    return 0;
}

static void parse_only(const uint8_t *p, size_t n)
{
    struct qs_codec_desc d;
    struct qs_shard_info info;
    if (qs_codec_desc_decode(&d, p, n < QS_CODEC_DESC_LEN ? n : QS_CODEC_DESC_LEN) == 0) {
        uint8_t again[QS_CODEC_DESC_LEN];
        qs_codec_desc_encode(&d, again);
        if (memcmp(again, p, QS_CODEC_DESC_LEN) != 0)
            abort(); /* a descriptor that parses must re-encode to the same bytes */
    }
    if (qs_shard_parse(p, n, &info) == 0 && (size_t)info.payload_len + QS_SHARD_HDR_LEN != n)
        abort();
}

static void rebuild_first(const struct qs_codec_desc *d, const uint8_t *const *sh,
                          const size_t *len)
{
    struct qs_codec_stream s;
    struct qs_chunk_ctx *c;
    if (qs_codec_stream_init(&s, d, fuzz_key) != 0)
        return;
    if (qs_chunk_ctx_new(&c, &s, 0, QS_COMPRESS_NONE, 0) == 0) {
        uint8_t *out = malloc(s.stride);
        size_t olen;
        if (out && qs_chunk_rebuild(c, 0, sh, len, 0, out, &olen) == 0) {
            struct qs_shard_info info;
            if (qs_shard_parse(out, olen, &info) != 0)
                abort(); /* a rebuilt shard must be valid */
        }
        free(out);
        qs_chunk_ctx_free(c);
    }
    qs_codec_stream_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    if (!(mode & 1)) {
        parse_only(data + 1, size - 1);
        return 0;
    }
    if (size < 5)
        return 0;
    unsigned k = 1 + data[1] % 4, m = 1 + data[2] % 3, n = k + m;
    uint32_t cs = 16 + qs_le16(data + 3) % 4081;
    struct qs_codec_desc d;
    if (qs_codec_desc_new(&d, k, m, cs, fuzz_id, fuzz_key) != 0)
        abort();
    struct qs_decoder_opts o;
    qs_decoder_opts_default(&o);
    o.workers = 0;
    o.verify_all = (mode & 2) != 0;
    struct qs_decoder *dec;
    uint64_t total = 0;
    if (qs_decoder_new(&dec, &d, fuzz_key, &o, count_sink, &total) != 0)
        abort();
    size_t off = 5;
    int rc = 0, first = 1;
    while (rc == 0 && off < size) {
        const uint8_t *sh[QS_CODEC_MAX_SHARDS];
        size_t len[QS_CODEC_MAX_SHARDS];
        for (unsigned i = 0; i < n; i++) {
            sh[i] = NULL;
            len[i] = 0;
            if (off + 2 > size)
                continue;
            unsigned l = qs_le16(data + off);
            off += 2;
            if (l == 0xffff)
                continue;
            if (l > size - off)
                l = (unsigned)(size - off);
            sh[i] = data + off;
            len[i] = l;
            off += l;
        }
        if (first && (mode & 4))
            rebuild_first(&d, sh, len);
        first = 0;
        rc = qs_decoder_feed(dec, sh, len);
    }
    struct qs_codec_summary sum;
    int frc = qs_decoder_finish(dec, &sum);
    if (rc == 0 && frc == 0 && sum.size != total)
        abort();
    qs_decoder_free(dec);
    return 0;
}
