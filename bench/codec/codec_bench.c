/* codec_bench: speed of the codec (docs/codec.md has results and commands).
 *
 *   codec_bench [--size 1G] [--data text|random] [--k 10] [--m 4] [--chunk 1M]
 *               [--compress snappy] [--workers 2] [--sink memory|null|decode] [--lose 4]
 *               [--what ceil,stages,baseline,encode,decode]
 *
 * ceil      single-core speed of each primitive on cache-resident buffers
 * stages    single-threaded per-chunk pipeline, each stage timed separately
 * baseline  0-stor_v2's layout: whole input in memory, BLAKE2b-128 of it, snappy of it,
 *           AES-256-GCM of that, RS into k+m, BLAKE2b-128 of every shard; one thread
 * encode    the streaming encoder with N workers; the input is streamed from a generator
 *           (a 32 MiB pool, never the whole input), the sink keeps shards in memory,
 *           drops them (null), or feeds them minus --lose shards to a decoder (decode:
 *           a streaming round trip of any size in bounded memory)
 * decode    decodes what encode kept, with --lose shards (data shards 0..) missing
 */
#include <getopt.h>
#include <isa-l/crc.h>
#include <openssl/evp.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/aead.h"
#include "codec/chunk.h"
#include "codec/compress.h"
#include "codec/decoder.h"
#include "codec/encoder.h"
#include "codec/hash.h"
#include "codec/rs.h"
#include "util/crc32c.h"
#include "util/parse.h"

#define POOL (32u << 20)
#define MB   1e6

static const uint8_t KEY[32] = "codec bench key, not a secret!!";

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rng = 0x853c49e6748fea9bull;
static uint64_t rnd64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "codec_bench: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "codec_bench: %s: %s (%s)\n", what, qs_err_msg(), qs_err_name(rc));
    exit(1);
}

/* Text-like data: words from a 2000-word vocabulary drawn with a Zipf-like law, with
 * punctuation, capitals and line breaks. snappy shrinks it to about half, as it does
 * natural-language text. */
static void gen_text(uint8_t *p, size_t n)
{
    enum { VOCAB = 2000 };
    static char words[VOCAB][12];
    static unsigned wlen[VOCAB];
    for (unsigned i = 0; i < VOCAB; i++) {
        unsigned l = 2 + (unsigned)(rnd64() % 9);
        for (unsigned j = 0; j < l; j++)
            words[i][j] = (char)('a' + rnd64() % 26);
        wlen[i] = l;
    }
    size_t off = 0, line = 0;
    int cap = 1;
    while (off < n) {
        /* Zipf-ish: the index is the floor of a squared-ish uniform variate. */
        double u = (double)(rnd64() >> 11) / 9007199254740992.0;
        unsigned w = (unsigned)(VOCAB * u * u * u);
        char tmp[16];
        unsigned l = wlen[w];
        memcpy(tmp, words[w], l);
        if (cap)
            tmp[0] = (char)(tmp[0] - 32);
        cap = 0;
        unsigned r = (unsigned)(rnd64() % 100);
        if (r < 6) {
            tmp[l++] = '.';
            cap = 1;
        } else if (r < 12) {
            tmp[l++] = ',';
        }
        tmp[l++] = ' ';
        line += l;
        if (line > 72) {
            tmp[l - 1] = '\n';
            line = 0;
        }
        if (l > n - off)
            l = (unsigned)(n - off);
        memcpy(p + off, tmp, l);
        off += l;
    }
}

static void gen_random(uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = rnd64();
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] = (uint8_t)rnd64();
}

/* Streams `total` bytes from the pool. */
struct source {
    const uint8_t *pool;
    uint64_t pos, total;
};

static size_t source_read(struct source *s, uint8_t *dst, size_t n)
{
    if (n > s->total - s->pos)
        n = (size_t)(s->total - s->pos);
    size_t done = 0;
    while (done < n) {
        size_t off = (size_t)((s->pos + done) % POOL), piece = POOL - off;
        if (piece > n - done)
            piece = n - done;
        memcpy(dst + done, s->pool + off, piece);
        done += piece;
    }
    s->pos += n;
    return n;
}

struct cfg {
    uint64_t size;
    int text;
    unsigned k, m;
    uint32_t chunk;
    enum qs_compress method;
    int workers;
    int keep; /* mem sink */
    unsigned lose;
    unsigned inflight;
    int pipe; /* --sink decode */
};

/* ---- ceilings ----------------------------------------------------------------------------- */

static double rate(double bytes, double secs)
{
    return bytes / secs / MB;
}

static void bench_ceilings(const uint8_t *text, const uint8_t *random, const struct cfg *c)
{
    const size_t n = 1 << 20;
    const int reps = 512; /* 512 MiB per primitive */
    uint8_t *out = xmalloc(2 * n + 65536), *buf = xmalloc(n);
    printf("== single-core ceilings (1 MiB buffers, %d passes) ==\n", reps);

    /* RS k+m on the chunk split into k shards. */
    struct qs_rs rs;
    if (qs_rs_init(&rs, c->k, c->m))
        die("rs", QS_EINVAL);
    size_t s = (n + c->k - 1) / c->k;
    uint8_t *sh = xmalloc(s * (c->k + c->m));
    const uint8_t *dp[255];
    uint8_t *pp[255];
    for (unsigned i = 0; i < c->k + c->m; i++) {
        if (i < c->k)
            dp[i] = sh + i * s;
        else
            pp[i - c->k] = sh + i * s;
    }
    memcpy(sh, random, s * c->k);
    double t = now();
    for (int r = 0; r < reps; r++)
        qs_rs_encode(&rs, s, dp, pp);
    printf("  reed-solomon %u+%u encode   %8.0f MB/s (of data)\n", c->k, c->m,
           rate((double)s * c->k * reps, now() - t));
    qs_rs_free(&rs);
    free(sh);

    struct qs_aead *a;
    if (qs_aead_new(&a, KEY, 1))
        die("aead", QS_EINVAL);
    uint8_t nonce[12] = {0}, tag[16];
    t = now();
    for (int r = 0; r < reps; r++) {
        nonce[0] = (uint8_t)r;
        if (qs_aead_start(a, nonce, tag, 16) || qs_aead_update(a, out, random, n) ||
            qs_aead_seal_final(a, tag))
            die("aead", QS_EINVAL);
    }
    printf("  AES-256-GCM encrypt         %8.0f MB/s\n", rate((double)n * reps, now() - t));
    qs_aead_free(a);

    struct qs_hash h;
    qs_hash_init(&h);
    t = now();
    for (int r = 0; r < reps; r++)
        qs_hash_update(&h, random, n);
    qs_hash_final(&h, tag);
    printf("  BLAKE2b (libsodium)         %8.0f MB/s\n", rate((double)n * reps, now() - t));

    t = now();
    uint32_t crc = 0;
    for (int r = 0; r < reps; r++)
        crc = qs_crc32c_update(crc, random, n);
    printf("  CRC-32C (util, crc32q)      %8.0f MB/s\n", rate((double)n * reps, now() - t));
    t = now();
    for (int r = 0; r < reps; r++)
        crc = crc32_iscsi((unsigned char *)random, (int)n, crc);
    printf("  CRC-32C (ISA-L, folding)    %8.0f MB/s\n", rate((double)n * reps, now() - t));

    struct qs_zctx z;
    qs_zctx_init(&z);
    static const enum qs_compress ms[] = {QS_COMPRESS_SNAPPY, QS_COMPRESS_ZSTD, QS_COMPRESS_LZ4};
    for (int kind = 0; kind < 2; kind++) {
        const uint8_t *src = kind ? random : text;
        for (int i = 0; i < 3; i++) {
            int rr = ms[i] == QS_COMPRESS_ZSTD ? reps / 8 : reps / 2;
            size_t clen = 0;
            t = now();
            for (int r = 0; r < rr; r++)
                if (qs_compress(&z, ms[i], 0, src + (size_t)r * 4096 % (POOL - n), n, out,
                                2 * n + 65536, &clen))
                    die("compress", QS_EINVAL);
            double ct = now() - t;
            t = now();
            for (int r = 0; r < rr; r++)
                if (qs_decompress(&z, ms[i], out, clen, buf, n))
                    die("decompress", QS_EINVAL);
            double dt = now() - t;
            printf("  %-6s %-6s compress %6.0f MB/s, decompress %6.0f MB/s, ratio %.3f\n",
                   qs_compress_name(ms[i]), kind ? "random" : "text", rate((double)n * rr, ct),
                   rate((double)n * rr, dt), (double)clen / (double)n);
        }
    }
    qs_zctx_free(&z);
    t = now();
    for (int r = 0; r < reps; r++)
        memcpy(buf, random + (size_t)(r % 16) * n, n);
    printf("  memcpy                      %8.0f MB/s\n", rate((double)n * reps, now() - t));
    free(out);
    free(buf);
    (void)crc;
}

/* ---- stage profile ------------------------------------------------------------------------ */

static void bench_stages(const uint8_t *pool, const struct cfg *c)
{
    size_t cs = c->chunk;
    unsigned k = c->k, m = c->m, n = k + m;
    uint8_t *in = xmalloc(cs), *z = xmalloc(qs_compress_bound(c->method, cs) + 64);
    size_t smax = (cs + 48 + k - 1) / k;
    uint8_t *sh = xmalloc(smax * n);
    struct qs_zctx zc;
    qs_zctx_init(&zc);
    struct qs_rs rs;
    struct qs_aead *a;
    if (qs_rs_init(&rs, k, m) || qs_aead_new(&a, KEY, 1))
        die("setup", QS_EINVAL);
    struct qs_hash h;
    qs_hash_init(&h);
    struct source src = {pool, 0, c->size};
    double tin = 0, tz = 0, te = 0, trs = 0, tcrc = 0, th = 0;
    uint64_t zin = 0, ein = 0, rsin = 0, crcin = 0;
    uint8_t nonce[12] = {0}, tag[16];
    for (uint64_t idx = 0;; idx++) {
        double t0 = now();
        size_t len = source_read(&src, in, cs);
        double t1 = now();
        if (len == 0)
            break;
        qs_hash_update(&h, in, len);
        double t2 = now();
        const uint8_t *body = in;
        size_t blen = len;
        if (c->method != QS_COMPRESS_NONE) {
            size_t clen;
            if (qs_compress(&zc, c->method, 0, in, len, z, qs_compress_bound(c->method, cs) + 64,
                            &clen))
                die("compress", QS_EINVAL);
            zin += len;
            if (clen < len - len / 64) {
                body = z;
                blen = clen;
            }
        }
        double t3 = now();
        memcpy(nonce, &idx, 8);
        if (qs_aead_start(a, nonce, tag, 16) || qs_aead_update(a, sh + 16, body, blen) ||
            qs_aead_seal_final(a, tag))
            die("aead", QS_EINVAL);
        ein += blen;
        double t4 = now();
        size_t s = (blen + 48 + k - 1) / k;
        const uint8_t *dp[255];
        uint8_t *pp[255];
        for (unsigned i = 0; i < n; i++) {
            if (i < k)
                dp[i] = sh + i * s;
            else
                pp[i - k] = sh + i * s;
        }
        qs_rs_encode(&rs, s, dp, pp);
        rsin += s * k;
        double t5 = now();
        uint32_t crc = 0;
        for (unsigned i = 0; i < n; i++)
            crc ^= crc32_iscsi(sh + i * s, (int)s, ~0u);
        crcin += s * n;
        double t6 = now();
        tin += t1 - t0;
        th += t2 - t1;
        tz += t3 - t2;
        te += t4 - t3;
        trs += t5 - t4;
        tcrc += t6 - t5;
        (void)crc;
    }
    qs_hash_final(&h, tag);
    double total = tin + th + tz + te + trs + tcrc;
    double sz = (double)c->size;
    printf("== stage profile, one thread, %s, %.0f MiB, chunk %u, %u+%u, %s ==\n",
           c->text ? "text" : "random", sz / 1048576, c->chunk, k, m, qs_compress_name(c->method));
    printf("  %-22s %7s %6s %10s\n", "stage", "secs", "share", "MB/s(in)");
    printf("  %-22s %7.3f %5.1f%% %10.0f\n", "read input (memcpy)", tin, 100 * tin / total,
           rate(sz, tin));
    printf("  %-22s %7.3f %5.1f%% %10.0f\n", "BLAKE2b-128 stream", th, 100 * th / total,
           rate(sz, th));
    printf("  %-22s %7.3f %5.1f%% %10.0f  (ratio %.3f)\n", "compress", tz, 100 * tz / total,
           zin ? rate((double)zin, tz) : 0.0, (double)ein / sz);
    printf("  %-22s %7.3f %5.1f%% %10.0f\n", "AES-256-GCM", te, 100 * te / total,
           rate((double)ein, te));
    printf("  %-22s %7.3f %5.1f%% %10.0f\n", "reed-solomon", trs, 100 * trs / total,
           rate((double)rsin, trs));
    printf("  %-22s %7.3f %5.1f%% %10.0f\n", "CRC-32C shards", tcrc, 100 * tcrc / total,
           rate((double)crcin, tcrc));
    printf("  %-22s %7.3f        %10.0f  (one core, all stages)\n", "total", total,
           rate(sz, total));
    qs_aead_free(a);
    qs_rs_free(&rs);
    qs_zctx_free(&zc);
    free(in);
    free(z);
    free(sh);
}

/* ---- 0-stor_v2 layout baseline ---------------------------------------------------------- */

static void *prefaulted(size_t n)
{
    uint8_t *p = xmalloc(n);
    memset(p, 0, n);
    return p;
}

static void bench_baseline(const uint8_t *pool, const struct cfg *c)
{
    size_t size = (size_t)c->size;
    unsigned k = c->k, m = c->m, n = k + m;
    /* Every buffer is allocated and touched before the clock starts, so the baseline is
     * charged only for computing (0-stor_v2 also pays for fresh allocations; not here). */
    size_t zcap = snappy_max_compressed_length(size);
    uint8_t *file = prefaulted(size), *z = prefaulted(zcap), *enc = prefaulted(zcap + 16);
    size_t smax = (zcap + 16 + k - 1) / k;
    uint8_t *sh = prefaulted(smax * n);
    struct source src = {pool, 0, c->size};
    source_read(&src, file, size);

    double t1 = now(), c1 = cpu_now();
    uint8_t digest[16];
    qs_hash128(digest, file, size);
    double t2 = now();
    size_t zlen = zcap;
    if (snappy_compress((const char *)file, size, (char *)z, &zlen) != SNAPPY_OK)
        die("snappy", QS_EINVAL);
    double t3 = now();
    struct qs_aead *a;
    uint8_t nonce[12] = {1};
    if (qs_aead_new(&a, KEY, 1) || qs_aead_start(a, nonce, NULL, 0) ||
        qs_aead_update(a, enc, z, zlen) || qs_aead_seal_final(a, enc + zlen))
        die("aead", QS_EINVAL);
    qs_aead_free(a);
    double t4 = now();
    size_t elen = zlen + 16, s = (elen + k - 1) / k;
    memcpy(sh, enc, elen);
    memset(sh + elen, 0, s * k - elen);
    struct qs_rs rs;
    if (qs_rs_init(&rs, k, m))
        die("rs", QS_EINVAL);
    /* ISA-L lengths are int: encode in slices. */
    for (size_t off = 0; off < s; off += 1u << 30) {
        size_t l = s - off < (1u << 30) ? s - off : (1u << 30);
        const uint8_t *dp[255];
        uint8_t *pp[255];
        for (unsigned i = 0; i < k; i++)
            dp[i] = sh + i * s + off;
        for (unsigned i = 0; i < m; i++)
            pp[i] = sh + (k + i) * s + off;
        qs_rs_encode(&rs, l, dp, pp);
    }
    qs_rs_free(&rs);
    double t5 = now();
    uint8_t sd[16];
    for (unsigned i = 0; i < n; i++)
        qs_hash128(sd, sh + i * s, s);
    double t6 = now(), c6 = cpu_now();
    double total = t6 - t1;
    printf("== 0-stor_v2 layout baseline, %s, %.0f MiB, %u+%u, one thread, whole file in "
           "memory (pre-faulted) ==\n",
           c->text ? "text" : "random", (double)size / 1048576, k, m);
    printf("  blake2b %.3fs  snappy %.3fs (ratio %.3f)  aes %.3fs  rs (+copy) %.3fs  "
           "blake2b-shards %.3fs\n",
           t2 - t1, t3 - t2, (double)zlen / (double)size, t4 - t3, t5 - t4, t6 - t5);
    printf("  baseline encode: %.0f MB/s (%.2f s, cpu %.2f s)\n", rate((double)size, total), total,
           c6 - c1);
    free(file);
    free(z);
    free(enc);
    free(sh);
}

/* ---- streaming encode / decode ------------------------------------------------------------ */

/* The in-memory sink: shards copied into one arena, allocated and touched before the
 * clock starts (a store's buffers already exist; page faults are not codec work). */
struct kept {
    unsigned n;
    size_t nchunks, cap;
    uint8_t **buf; /* per chunk: n shards of shard_len each, back to back */
    size_t *shard_len;
    uint64_t stored;
    uint8_t *arena;
    size_t arena_len, arena_used;
    struct qs_decoder *pipe; /* --sink decode: feed every chunk to this decoder */
    unsigned lose;
};

static int keep_sink(void *ud, const struct qs_enc_chunk *ch)
{
    struct kept *kp = ud;
    kp->stored += (uint64_t)ch->shard_len * ch->nshards;
    if (kp->pipe) {
        const uint8_t *sh[255];
        size_t len[255];
        for (unsigned i = 0; i < ch->nshards; i++) {
            sh[i] = i < kp->lose ? NULL : ch->shard[i];
            len[i] = ch->shard_len;
        }
        return qs_decoder_feed(kp->pipe, sh, len);
    }
    if (!kp->buf && kp->cap == 0)
        return 0; /* null sink */
    if (kp->nchunks == kp->cap) {
        kp->cap *= 2;
        kp->buf = realloc(kp->buf, kp->cap * sizeof(*kp->buf));
        kp->shard_len = realloc(kp->shard_len, kp->cap * sizeof(size_t));
        if (!kp->buf || !kp->shard_len)
            return QS_ENOMEM;
    }
    size_t need = ch->shard_len * ch->nshards;
    if (need > kp->arena_len - kp->arena_used)
        return QS_ENOMEM;
    uint8_t *b = kp->arena + kp->arena_used;
    kp->arena_used += need;
    for (unsigned i = 0; i < ch->nshards; i++)
        memcpy(b + i * ch->shard_len, ch->shard[i], ch->shard_len);
    kp->buf[kp->nchunks] = b;
    kp->shard_len[kp->nchunks++] = ch->shard_len;
    return 0;
}

static int null_dec_sink(void *ud, const struct qs_dec_chunk *ch)
{
    uint64_t *total = ud;
    *total += ch->len;
    return 0;
}

static double bench_encode(const uint8_t *pool, const struct cfg *c, struct kept *kp,
                           struct qs_codec_desc *desc)
{
    struct qs_encoder_opts o;
    qs_encoder_opts_default(&o);
    o.k = c->k;
    o.m = c->m;
    o.chunk_size = c->chunk;
    o.compress = c->method;
    o.workers = c->workers;
    o.inflight = c->inflight;
    memset(kp, 0, sizeof(*kp));
    kp->n = c->k + c->m;
    if (c->keep) {
        size_t chunks = (size_t)(c->size / c->chunk) + 1;
        kp->cap = chunks;
        kp->buf = xmalloc(kp->cap * sizeof(*kp->buf));
        kp->shard_len = xmalloc(kp->cap * sizeof(size_t));
        /* Worst case: incompressible, (k+m)/k expansion, headers and padding. */
        kp->arena_len = (size_t)(c->size / c->k + 1) * (c->k + c->m) + chunks * (c->k + c->m) * 256;
        kp->arena = xmalloc(kp->arena_len);
        memset(kp->arena, 0, kp->arena_len);
    }
    struct qs_encoder *e;
    double t0 = now(), c0 = cpu_now();
    int rc = qs_encoder_new(&e, &o, KEY, keep_sink, kp);
    if (rc)
        die("encoder", rc);
    *desc = *qs_encoder_desc(e);
    uint64_t piped = 0;
    if (c->pipe) {
        struct qs_decoder_opts dopt;
        qs_decoder_opts_default(&dopt);
        dopt.workers = c->workers;
        if ((rc = qs_decoder_new(&kp->pipe, desc, KEY, &dopt, null_dec_sink, &piped)) != 0)
            die("decoder", rc);
        kp->lose = c->lose;
    }
    struct source src = {pool, 0, c->size};
    for (;;) {
        uint8_t *p;
        size_t avail;
        if ((rc = qs_encoder_buffer(e, &p, &avail)) != 0)
            die("encode", rc);
        size_t got = source_read(&src, p, avail);
        if (got == 0)
            break;
        if ((rc = qs_encoder_commit(e, got)) != 0)
            die("encode", rc);
    }
    struct qs_codec_summary sum;
    if ((rc = qs_encoder_finish(e, &sum)) != 0)
        die("encode", rc);
    qs_encoder_free(e);
    if (kp->pipe) {
        struct qs_codec_summary dsum;
        if ((rc = qs_decoder_finish(kp->pipe, &dsum)) != 0)
            die("decode", rc);
        qs_decoder_free(kp->pipe);
        kp->pipe = NULL;
        if (dsum.size != c->size || memcmp(dsum.digest, sum.digest, 16) != 0) {
            fprintf(stderr, "codec_bench: round trip mismatch\n");
            exit(1);
        }
    }
    double t = now() - t0, cpu = cpu_now() - c0;
    printf("== streaming encode, %s, %.0f MiB, chunk %u, %u+%u, %s, %d workers, %s sink ==\n",
           c->text ? "text" : "random", (double)c->size / 1048576, c->chunk, c->k, c->m,
           qs_compress_name(c->method), c->workers,
           c->pipe   ? "decoder (round trip, shards 0..lose-1 dropped)"
           : c->keep ? "memory"
                     : "null");
    printf("  encode: %.0f MB/s (%.2f s, cpu %.2f s = %.2f cores), stored %.0f MiB (%.3f of "
           "input)\n",
           rate((double)c->size, t), t, cpu, cpu / t, (double)kp->stored / 1048576,
           (double)kp->stored / (double)c->size);
    return rate((double)c->size, t);
}

static double bench_decode(const struct cfg *c, const struct kept *kp,
                           const struct qs_codec_desc *desc)
{
    struct qs_decoder_opts o;
    qs_decoder_opts_default(&o);
    o.workers = c->workers;
    struct qs_decoder *d;
    uint64_t total = 0;
    double t0 = now(), c0 = cpu_now();
    int rc = qs_decoder_new(&d, desc, KEY, &o, null_dec_sink, &total);
    if (rc)
        die("decoder", rc);
    unsigned n = kp->n;
    for (size_t j = 0; j < kp->nchunks; j++) {
        const uint8_t *sh[255];
        size_t len[255];
        for (unsigned i = 0; i < n; i++) {
            sh[i] = i < c->lose ? NULL : kp->buf[j] + i * kp->shard_len[j];
            len[i] = kp->shard_len[j];
        }
        if ((rc = qs_decoder_feed(d, sh, len)) != 0)
            die("decode", rc);
    }
    struct qs_codec_summary sum;
    if ((rc = qs_decoder_finish(d, &sum)) != 0)
        die("decode", rc);
    qs_decoder_free(d);
    double t = now() - t0, cpu = cpu_now() - c0;
    if (total != c->size) {
        fprintf(stderr, "codec_bench: decoded %llu bytes\n", (unsigned long long)total);
        exit(1);
    }
    printf("  decode, data shards 0..%u lost: %.0f MB/s (%.2f s, cpu %.2f s = %.2f cores), "
           "digest verified\n",
           c->lose ? c->lose - 1 : 0, rate((double)c->size, t), t, cpu, cpu / t);
    return rate((double)c->size, t);
}

int main(int argc, char **argv)
{
    struct cfg c = {.size = 1ull << 30,
                    .text = 1,
                    .k = 10,
                    .m = 4,
                    .chunk = 1 << 20,
                    .method = QS_COMPRESS_SNAPPY,
                    .workers = 2,
                    .keep = 1,
                    .lose = 4};
    const char *what = "ceil,stages,baseline,encode,decode";
    static const struct option lo[] = {
        {"size", 1, 0, 's'},  {"data", 1, 0, 'd'},     {"k", 1, 0, 'k'},        {"m", 1, 0, 'm'},
        {"chunk", 1, 0, 'c'}, {"compress", 1, 0, 'z'}, {"workers", 1, 0, 'w'},  {"sink", 1, 0, 'S'},
        {"lose", 1, 0, 'l'},  {"what", 1, 0, 'W'},     {"inflight", 1, 0, 'i'}, {0, 0, 0, 0}};
    int o;
    uint64_t v;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 's':
            if (qs_parse_size(optarg, &c.size))
                die("--size", QS_EINVAL);
            break;
        case 'd':
            c.text = strcmp(optarg, "random") != 0;
            break;
        case 'k':
            c.k = (unsigned)atoi(optarg);
            break;
        case 'm':
            c.m = (unsigned)atoi(optarg);
            break;
        case 'c':
            if (qs_parse_size(optarg, &v))
                die("--chunk", QS_EINVAL);
            c.chunk = (uint32_t)v;
            break;
        case 'z':
            if (qs_compress_parse(optarg, &c.method))
                die("--compress", QS_EINVAL);
            break;
        case 'w':
            c.workers = atoi(optarg);
            break;
        case 'S':
            c.keep = strcmp(optarg, "memory") == 0;
            c.pipe = strcmp(optarg, "decode") == 0;
            break;
        case 'l':
            c.lose = (unsigned)atoi(optarg);
            break;
        case 'W':
            what = optarg;
            break;
        case 'i':
            c.inflight = (unsigned)atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: see the comment at the top of bench/codec_bench.c\n");
            return 2;
        }
    }
    uint8_t *text = NULL, *random = NULL;
    if (strstr(what, "ceil") || c.text) {
        text = xmalloc(POOL);
        gen_text(text, POOL);
    }
    if (strstr(what, "ceil") || !c.text) {
        random = xmalloc(POOL);
        gen_random(random, POOL);
    }
    const uint8_t *pool = c.text ? text : random;
    if (strstr(what, "ceil"))
        bench_ceilings(text, random, &c);
    if (strstr(what, "stages"))
        bench_stages(pool, &c);
    if (strstr(what, "baseline"))
        bench_baseline(pool, &c);
    if (strstr(what, "encode")) {
        struct kept kp;
        struct qs_codec_desc desc;
        if (!strstr(what, "decode"))
            c.keep = 0;
        bench_encode(pool, &c, &kp, &desc);
        if (strstr(what, "decode") && c.keep)
            bench_decode(&c, &kp, &desc);
        free(kp.arena);
        free(kp.buf);
        free(kp.shard_len);
    }
    free(text);
    free(random);
    return 0;
}
