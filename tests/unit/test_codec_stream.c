/* Unit tests for the streaming encoder and decoder: round trips over sizes, codecs and
 * shard counts; every erasure pattern up to m for small codes, random ones for large;
 * corrupt, tampered, foreign, reordered, truncated and extended streams; wrong keys;
 * shard rebuild; a fixed vector that pins the format. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/aead.h"
#include "codec/chunk.h"
#include "codec/codec.h"
#include "codec/decoder.h"
#include "codec/encoder.h"
#include "codec/hash.h"
#include "codec/rs.h"
#include "util/crc32c.h"
#include "util/mem.h"

/* BLAKE2b-128 of every shard of the golden vector, in order (see test_golden_vector). */
#define GOLDEN_SHARDS_HASH "a22c9eb225672b70ec493d3f2f7c37c6"

static const uint8_t KEY[32] = {0x51, 0x53, 0x46, 0x53, 1,  2,  3,  4,  5,  6,  7,
                                8,    9,    10,   11,   12, 13, 14, 15, 16, 17, 18,
                                19,   20,   21,   22,   23, 24, 25, 26, 27, 28};
static const uint8_t OTHER_KEY[32] = {0x51, 0x53, 0x46, 0x53, 1,  2,  3,  4,  5,  6,  7,
                                      8,    9,    10,   11,   12, 13, 14, 15, 16, 17, 18,
                                      19,   20,   21,   22,   23, 24, 25, 26, 27, 29};

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void make_data(uint8_t *p, size_t n, int text)
{
    static const char *words[] = {"alpha ", "beta ",  "gamma ",   "delta ", "shard ", "chunk ",
                                  "zdb ",   "zstor ", "erasure ", "code ",  ".\n"};
    if (!text) {
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)rnd();
        return;
    }
    size_t off = 0;
    while (off < n) {
        const char *w = words[rnd() % 11];
        size_t l = strlen(w);
        if (l > n - off)
            l = n - off;
        memcpy(p + off, w, l);
        off += l;
    }
}

/* ---- an encoded stream kept in memory ------------------------------------------------- */

struct echunk {
    uint8_t *sh[QS_CODEC_MAX_SHARDS];
    size_t len[QS_CODEC_MAX_SHARDS];
    size_t plain;
    int final;
    enum qs_compress method;
};

struct stream {
    struct qs_codec_desc desc;
    unsigned n;
    size_t nchunks, cap;
    struct echunk *c;
    struct qs_codec_summary sum;
    long fail_at; /* sink fails at this chunk (-1: never) */
};

static int enc_sink(void *ud, const struct qs_enc_chunk *c)
{
    struct stream *st = ud;
    assert_int_equal(c->index, st->nchunks); /* in order */
    assert_int_equal(c->nshards, st->n);
    if ((long)c->index == st->fail_at)
        return QS_EIO;
    if (st->nchunks == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 8;
        st->c = realloc(st->c, st->cap * sizeof(*st->c));
        assert_non_null(st->c);
    }
    struct echunk *e = &st->c[st->nchunks++];
    memset(e, 0, sizeof(*e));
    e->plain = c->plain_len;
    e->final = c->final;
    e->method = c->method;
    for (unsigned i = 0; i < c->nshards; i++) {
        e->len[i] = c->shard_len;
        e->sh[i] = malloc(c->shard_len);
        assert_non_null(e->sh[i]);
        memcpy(e->sh[i], c->shard[i], c->shard_len);
        assert_int_equal(qs_le32(e->sh[i] + 60), c->crc[i]);
    }
    return 0;
}

static void stream_free(struct stream *st)
{
    for (size_t c = 0; c < st->nchunks; c++)
        for (unsigned i = 0; i < st->n; i++)
            free(st->c[c].sh[i]);
    free(st->c);
    memset(st, 0, sizeof(*st));
}

static void enc_opts(struct qs_encoder_opts *o, unsigned k, unsigned m, uint32_t cs,
                     enum qs_compress method, int workers)
{
    qs_encoder_opts_default(o);
    o->k = k;
    o->m = m;
    o->chunk_size = cs;
    o->compress = method;
    o->workers = workers;
}

/* Encodes data with opts; mode 0 writes all at once, 1 in random pieces, 2 through the
 * encoder's own buffer. Returns the finish code. */
static int encode(struct stream *st, const uint8_t *data, size_t len,
                  const struct qs_encoder_opts *o, const uint8_t *key, int mode)
{
    memset(st, 0, sizeof(*st));
    st->n = o->k + o->m;
    st->fail_at = -1;
    struct qs_encoder *e;
    int rc = qs_encoder_new(&e, o, key, enc_sink, st);
    if (rc)
        return rc;
    st->desc = *qs_encoder_desc(e);
    size_t off = 0;
    while (off < len && rc == 0) {
        if (mode == 0) {
            rc = qs_encoder_write(e, data, len);
            off = len;
        } else if (mode == 1) {
            size_t piece = 1 + rnd() % (o->chunk_size + o->chunk_size / 2);
            if (piece > len - off)
                piece = len - off;
            rc = qs_encoder_write(e, data + off, piece);
            off += piece;
        } else {
            uint8_t *p;
            size_t avail;
            rc = qs_encoder_buffer(e, &p, &avail);
            if (rc)
                break;
            assert_true(avail >= 1);
            size_t piece = 1 + rnd() % avail;
            if (piece > len - off)
                piece = len - off;
            memcpy(p, data + off, piece);
            rc = qs_encoder_commit(e, piece);
            off += piece;
            if (rnd() % 4 == 0 && rc == 0) /* asking for a buffer and not using it is fine */
                rc = qs_encoder_buffer(e, &p, &avail) || qs_encoder_commit(e, 0);
        }
    }
    int frc = qs_encoder_finish(e, &st->sum);
    qs_encoder_free(e);
    return rc ? rc : frc;
}

/* ---- decoding with a hook that loses or damages shards ---------------------------------- */

struct dres {
    uint8_t *data;
    size_t len, cap;
    uint64_t next;
    struct qs_codec_summary sum;
    uint8_t *states; /* n per chunk */
    size_t nstates;
    unsigned n;
    long fail_at;
};

static int dec_sink(void *ud, const struct qs_dec_chunk *c)
{
    struct dres *r = ud;
    assert_int_equal(c->index, r->next);
    r->next++;
    if ((long)c->index == r->fail_at)
        return QS_EIO;
    if (r->len + c->len > r->cap) {
        r->cap = (r->len + c->len) * 2 + 16;
        r->data = realloc(r->data, r->cap);
        assert_non_null(r->data);
    }
    if (c->len)
        memcpy(r->data + r->len, c->data, c->len);
    r->len += c->len;
    r->states = realloc(r->states, (r->nstates + 1) * c->nshards);
    assert_non_null(r->states);
    memcpy(r->states + r->nstates * c->nshards, c->state, c->nshards);
    r->nstates++;
    unsigned good = 0;
    for (unsigned i = 0; i < c->nshards; i++)
        good += c->state[i] == QS_SHARD_OK;
    assert_int_equal(good, c->good);
    return 0;
}

/* Called per fed chunk with copies it may change, NULL out, or replace. */
typedef void (*mangle_fn)(void *ud, size_t chunk, const uint8_t **sh, size_t *len);

static int decode_ex(const struct stream *st, const struct qs_codec_desc *desc, const uint8_t *key,
                     int workers, int verify_all, const size_t *order, size_t norder,
                     mangle_fn mangle, void *mud, struct dres *r)
{
    memset(r, 0, sizeof(*r));
    r->n = st->n;
    r->fail_at = -1;
    struct qs_decoder_opts o;
    qs_decoder_opts_default(&o);
    o.workers = workers;
    o.verify_all = verify_all;
    struct qs_decoder *d;
    int rc = qs_decoder_new(&d, desc, key, &o, dec_sink, r);
    if (rc)
        return rc;
    for (size_t t = 0; t < norder && rc == 0; t++) {
        size_t c = order[t];
        const uint8_t *sh[QS_CODEC_MAX_SHARDS];
        size_t len[QS_CODEC_MAX_SHARDS];
        for (unsigned i = 0; i < st->n; i++) {
            sh[i] = st->c[c].sh[i];
            len[i] = st->c[c].len[i];
        }
        if (mangle)
            mangle(mud, t, sh, len);
        rc = qs_decoder_feed(d, sh, len);
    }
    int frc = qs_decoder_finish(d, &r->sum);
    qs_decoder_free(d);
    return rc ? rc : frc;
}

static int decode(const struct stream *st, int workers, mangle_fn mangle, void *mud, struct dres *r)
{
    size_t *order = malloc((st->nchunks + 1) * sizeof(size_t));
    assert_non_null(order);
    for (size_t c = 0; c < st->nchunks; c++)
        order[c] = c;
    int rc = decode_ex(st, &st->desc, KEY, workers, 0, order, st->nchunks, mangle, mud, r);
    free(order);
    return rc;
}

static void dres_free(struct dres *r)
{
    free(r->data);
    free(r->states);
    memset(r, 0, sizeof(*r));
}

/* Rewrites a shard's CRC after the test changed it (an attacker who knows the format). */
static void fix_crc(uint8_t *sh, size_t len)
{
    uint32_t c = qs_crc32c_update(~0u, sh, 60);
    c = ~qs_crc32c_update(c, sh + 64, len - 64);
    qs_put32(sh + 60, c);
}

/* ---- round trips ------------------------------------------------------------------------- */

static const unsigned KM[][2] = {{1, 1}, {2, 2}, {4, 2}, {10, 4}, {16, 4}};
#define NKM (sizeof(KM) / sizeof(KM[0]))

static void test_roundtrip_matrix(void **state)
{
    (void)state;
    const uint32_t cs = 1000;
    const size_t sizes[] = {0, 1, cs - 1, cs, cs + 1, 5 * cs + 7};
    uint8_t *data = malloc(6 * cs);
    assert_non_null(data);
    unsigned run = 0;
    for (int method = 0; method <= 3; method++) {
        for (size_t t = 0; t < NKM; t++) {
            for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++, run++) {
                size_t len = sizes[s];
                int text = run % 3 != 0;
                make_data(data, len, text);
                struct qs_encoder_opts o;
                enc_opts(&o, KM[t][0], KM[t][1], cs, (enum qs_compress)method, (int)(run % 3) - 1);
                struct stream st;
                assert_int_equal(encode(&st, data, len, &o, KEY, (int)(run % 3)), 0);
                size_t want_chunks = len == 0 ? 1 : (len + cs - 1) / cs;
                assert_int_equal(st.nchunks, want_chunks);
                assert_int_equal(st.sum.chunks, want_chunks);
                assert_int_equal(st.sum.size, len);
                uint8_t h[16];
                assert_int_equal(crypto_generichash(h, 16, data, len, NULL, 0), 0);
                assert_memory_equal(st.sum.digest, h, 16);
                for (size_t c = 0; c < st.nchunks; c++) {
                    assert_int_equal(st.c[c].final, c + 1 == st.nchunks);
                    /* Text compresses (the method is kept), random data stays raw. */
                    if (method && text && st.c[c].plain >= 100)
                        assert_int_equal(st.c[c].method, method);
                    if (!text)
                        assert_int_equal(st.c[c].method, QS_COMPRESS_NONE);
                }
                struct dres r;
                assert_int_equal(decode(&st, (int)(run % 2), NULL, NULL, &r), 0);
                assert_int_equal(r.len, len);
                if (len)
                    assert_memory_equal(r.data, data, len);
                assert_int_equal(r.sum.size, len);
                assert_int_equal(r.sum.chunks, want_chunks);
                assert_memory_equal(r.sum.digest, h, 16);
                dres_free(&r);
                stream_free(&st);
            }
        }
    }
    free(data);
}

/* Many chunks, several workers and a tight inflight window. */
static void test_roundtrip_many_chunks(void **state)
{
    (void)state;
    size_t len = 300 * 4096 + 123;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    make_data(data, len / 2, 1);
    make_data(data + len / 2, len - len / 2, 0);
    struct qs_encoder_opts o;
    enc_opts(&o, 10, 4, 4096, QS_COMPRESS_ZSTD, 2);
    o.inflight = 3;
    struct stream st;
    assert_int_equal(encode(&st, data, len, &o, KEY, 1), 0);
    assert_int_equal(st.nchunks, 301);
    struct dres r;
    assert_int_equal(decode(&st, 2, NULL, NULL, &r), 0);
    assert_int_equal(r.len, len);
    assert_memory_equal(r.data, data, len);
    dres_free(&r);
    stream_free(&st);
    free(data);
}

/* Two streams encoded at once on one shared pool (their hashes share its serial lane),
 * then decoded on it with the smallest in-flight windows. */
static void test_shared_pool(void **state)
{
    (void)state;
    struct qs_pool *pool;
    assert_int_equal(qs_pool_new(&pool, 2), 0);
    size_t len = 37 * 1000 + 11;
    uint8_t *a = malloc(len), *b = malloc(len);
    assert_non_null(a);
    assert_non_null(b);
    make_data(a, len, 1);
    make_data(b, len, 0);
    struct qs_encoder_opts o;
    enc_opts(&o, 3, 2, 1000, QS_COMPRESS_LZ4, 0);
    o.pool = pool;
    o.inflight = 2;
    struct stream sa, sb;
    memset(&sa, 0, sizeof(sa));
    memset(&sb, 0, sizeof(sb));
    sa.n = sb.n = 5;
    sa.fail_at = sb.fail_at = -1;
    struct qs_encoder *ea, *eb;
    assert_int_equal(qs_encoder_new(&ea, &o, KEY, enc_sink, &sa), 0);
    o.inflight = 5;
    assert_int_equal(qs_encoder_new(&eb, &o, KEY, enc_sink, &sb), 0);
    sa.desc = *qs_encoder_desc(ea);
    sb.desc = *qs_encoder_desc(eb);
    for (size_t off = 0; off < len; off += 777) {
        size_t n = len - off < 777 ? len - off : 777;
        assert_int_equal(qs_encoder_write(ea, a + off, n), 0);
        assert_int_equal(qs_encoder_write(eb, b + off, n), 0);
    }
    assert_int_equal(qs_encoder_finish(ea, &sa.sum), 0);
    assert_int_equal(qs_encoder_finish(eb, &sb.sum), 0);
    qs_encoder_free(ea);
    qs_encoder_free(eb);
    for (unsigned inflight = 1; inflight <= 3; inflight++) {
        for (int which = 0; which < 2; which++) {
            struct stream *st = which ? &sb : &sa;
            struct qs_decoder_opts dopt;
            qs_decoder_opts_default(&dopt);
            dopt.pool = pool;
            dopt.inflight = inflight;
            struct dres r;
            memset(&r, 0, sizeof(r));
            r.fail_at = -1;
            struct qs_decoder *d;
            assert_int_equal(qs_decoder_new(&d, &st->desc, KEY, &dopt, dec_sink, &r), 0);
            for (size_t c = 0; c < st->nchunks; c++) {
                const uint8_t *sh[5];
                for (unsigned i = 0; i < 5; i++)
                    sh[i] = (i + c) % 5 < 2 ? NULL : st->c[c].sh[i]; /* lose 2 */
                assert_int_equal(qs_decoder_feed(d, sh, st->c[c].len), 0);
            }
            struct qs_codec_summary sum;
            assert_int_equal(qs_decoder_finish(d, &sum), 0);
            qs_decoder_free(d);
            assert_int_equal(r.len, len);
            assert_memory_equal(r.data, which ? b : a, len);
            assert_memory_equal(sum.digest, st->sum.digest, 16);
            dres_free(&r);
        }
    }
    stream_free(&sa);
    stream_free(&sb);
    free(a);
    free(b);
    qs_pool_free(pool);
}

/* ---- erasures ---------------------------------------------------------------------------- */

struct lose {
    const uint8_t *lost; /* n flags */
    unsigned n;
    int per_chunk_random; /* ignore lost: lose up to max random shards per chunk */
    unsigned max;
};

static void lose_shards(void *ud, size_t chunk, const uint8_t **sh, size_t *len)
{
    struct lose *l = ud;
    (void)chunk;
    if (l->per_chunk_random) {
        unsigned cnt = rnd() % (l->max + 1);
        for (unsigned t = 0; t < cnt; t++)
            sh[rnd() % l->n] = NULL;
        return;
    }
    for (unsigned i = 0; i < l->n; i++)
        if (l->lost[i])
            sh[i] = NULL;
}

/* Every combination of up to m lost shards recovers; m+1 lost is QS_ETOOFEW. */
static void test_every_erasure_pattern(void **state)
{
    (void)state;
    const uint32_t cs = 256;
    size_t len = 2 * cs + 100;
    uint8_t data[2 * 256 + 100];
    make_data(data, len, 1);
    for (size_t t = 0; t < NKM - 1; t++) { /* 1+1, 2+2, 4+2, 10+4: all patterns */
        unsigned k = KM[t][0], m = KM[t][1], n = k + m;
        struct qs_encoder_opts o;
        enc_opts(&o, k, m, cs, QS_COMPRESS_LZ4, 0);
        struct stream st;
        assert_int_equal(encode(&st, data, len, &o, KEY, 0), 0);
        unsigned patterns = 0;
        for (uint32_t mask = 0; mask < (1u << n); mask++) {
            unsigned lost = (unsigned)__builtin_popcount(mask);
            if (lost > m + 1)
                continue;
            uint8_t flags[QS_CODEC_MAX_SHARDS];
            for (unsigned i = 0; i < n; i++)
                flags[i] = (mask >> i) & 1;
            struct lose l = {.lost = flags, .n = n};
            struct dres r;
            int rc = decode(&st, 0, lose_shards, &l, &r);
            if (lost <= m) {
                assert_int_equal(rc, 0);
                assert_int_equal(r.len, len);
                assert_memory_equal(r.data, data, len);
                for (size_t c = 0; c < r.nstates; c++)
                    for (unsigned i = 0; i < n; i++)
                        assert_int_equal(r.states[c * n + i],
                                         flags[i] ? QS_SHARD_MISSING : QS_SHARD_OK);
                patterns++;
            } else {
                assert_int_equal(rc, QS_ETOOFEW);
                assert_non_null(strstr(qs_err_msg(), "usable shards"));
            }
            dres_free(&r);
        }
        unsigned expect = 0; /* sum of C(n, i), i <= m */
        for (unsigned i = 0, c = 1; i <= m; i++) {
            expect += c;
            c = c * (n - i) / (i + 1);
        }
        assert_int_equal(patterns, expect);
        stream_free(&st);
    }
}

/* Large codes and long streams: random patterns of up to m lost shards per chunk. */
static void test_random_erasures(void **state)
{
    (void)state;
    size_t len = 40 * 2048 + 5;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    make_data(data, len, 1);
    for (size_t t = 0; t < NKM; t++) {
        unsigned k = KM[t][0], m = KM[t][1];
        struct qs_encoder_opts o;
        enc_opts(&o, k, m, 2048, QS_COMPRESS_SNAPPY, 2);
        struct stream st;
        assert_int_equal(encode(&st, data, len, &o, KEY, 1), 0);
        for (int rep = 0; rep < 8; rep++) {
            struct lose l = {.n = k + m, .per_chunk_random = 1, .max = m};
            struct dres r;
            assert_int_equal(decode(&st, rep % 3, lose_shards, &l, &r), 0);
            assert_int_equal(r.len, len);
            assert_memory_equal(r.data, data, len);
            dres_free(&r);
        }
        stream_free(&st);
    }
    free(data);
}

/* ---- corruption --------------------------------------------------------------------------- */

struct damage {
    unsigned n, k, m;
    int kind;       /* 0 flip a bit, 1 truncate, 2 oversize, 3 forge crc, 4 swap two */
    unsigned count; /* shards per chunk */
    uint8_t *bufs[64][QS_CODEC_MAX_SHARDS];
    size_t nbuf;
    uint8_t hit[64][QS_CODEC_MAX_SHARDS];
    int data_only; /* kind 3: damage data shards (they are used first) */
};

static void damage_shards(void *ud, size_t chunk, const uint8_t **sh, size_t *len)
{
    struct damage *d = ud;
    assert_true(chunk < 64);
    if (d->kind == 4) {
        const uint8_t *x = sh[0];
        sh[0] = sh[1];
        sh[1] = x;
        d->hit[chunk][0] = d->hit[chunk][1] = 1;
        return;
    }
    for (unsigned t = 0; t < d->count; t++) {
        unsigned i = d->data_only ? t % d->k : (unsigned)(rnd() % d->n);
        while (d->hit[chunk][i])
            i = (i + 1) % d->n;
        d->hit[chunk][i] = 1;
        size_t l = len[i];
        uint8_t *b = malloc(l + 100);
        assert_non_null(b);
        memcpy(b, sh[i], l);
        d->bufs[chunk][i] = b;
        sh[i] = b;
        switch (d->kind) {
        case 0: {
            size_t bit = rnd() % (l * 8);
            b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            break;
        }
        case 1:
            len[i] = rnd() % l;
            break;
        case 2:
            len[i] = l + 1 + rnd() % 100;
            break;
        case 3:
            b[64 + rnd() % (l - 64)] ^= 0x5a;
            fix_crc(b, l);
            break;
        }
    }
}

static void damage_free(struct damage *d)
{
    for (size_t c = 0; c < 64; c++)
        for (unsigned i = 0; i < QS_CODEC_MAX_SHARDS; i++)
            free(d->bufs[c][i]);
}

static void test_corrupt_shards(void **state)
{
    (void)state;
    size_t len = 5 * 1024 + 17;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    make_data(data, len, 1);
    const unsigned km[][2] = {{2, 2}, {4, 2}, {10, 4}};
    for (size_t t = 0; t < 3; t++) {
        unsigned k = km[t][0], m = km[t][1], n = k + m;
        struct qs_encoder_opts o;
        enc_opts(&o, k, m, 1024, QS_COMPRESS_ZSTD, 0);
        struct stream st;
        assert_int_equal(encode(&st, data, len, &o, KEY, 0), 0);
        for (int kind = 0; kind <= 4; kind++) {
            for (unsigned cnt = 1; cnt <= m + 1; cnt++) {
                if (kind == 4 && cnt > 1)
                    break;
                struct damage *d = calloc(1, sizeof(*d));
                assert_non_null(d);
                d->n = n;
                d->k = k;
                d->m = m;
                d->kind = kind;
                d->count = cnt;
                struct dres r;
                int rc = decode(&st, 2, damage_shards, d, &r);
                if (cnt <= m && !(kind == 4 && m < 2)) {
                    assert_int_equal(rc, 0);
                    assert_memory_equal(r.data, data, len);
                    /* Damaged shards are reported; CRC-valid forgeries may go unnoticed
                     * when the decode did not need them. */
                    for (size_t c = 0; c < r.nstates; c++)
                        for (unsigned i = 0; i < n; i++)
                            if (kind != 3)
                                assert_int_equal(r.states[c * n + i],
                                                 d->hit[c][i] ? QS_SHARD_CORRUPT : QS_SHARD_OK);
                } else {
                    /* Too many bad shards: a clear error, never wrong data. */
                    assert_true(rc == QS_ETOOFEW || rc == QS_ECORRUPT);
                }
                dres_free(&r);
                damage_free(d);
                free(d);
            }
        }
        stream_free(&st);
    }
    free(data);
}

struct both {
    struct damage *d;
    struct lose *l;
};
static void both_fn(void *ud, size_t chunk, const uint8_t **sh, size_t *ln)
{
    struct both *b = ud;
    damage_shards(b->d, chunk, sh, ln);
    lose_shards(b->l, chunk, sh, ln);
}

/* A shard changed by someone who also fixed its CRC: the AES-GCM tag catches it, the
 * decoder tries other subsets and names the bad shard. */
static void test_forged_shard(void **state)
{
    (void)state;
    size_t len = 3 * 512 + 9;
    uint8_t data[3 * 512 + 9];
    make_data(data, len, 0);
    struct qs_encoder_opts o;
    enc_opts(&o, 4, 2, 512, QS_COMPRESS_NONE, 0);
    struct stream st;
    assert_int_equal(encode(&st, data, len, &o, KEY, 0), 0);
    for (unsigned forged = 1; forged <= 2; forged++) {
        struct damage *d = calloc(1, sizeof(*d));
        assert_non_null(d);
        d->n = 6;
        d->k = 4;
        d->kind = 3;
        d->count = forged;
        d->data_only = 1;
        struct dres r;
        assert_int_equal(decode(&st, 0, damage_shards, d, &r), 0);
        assert_memory_equal(r.data, data, len);
        for (size_t c = 0; c < r.nstates; c++)
            for (unsigned i = 0; i < 6; i++)
                assert_int_equal(r.states[c * 6 + i],
                                 d->hit[c][i] ? QS_SHARD_CORRUPT : QS_SHARD_OK);
        dres_free(&r);
        damage_free(d);
        free(d);
    }
    /* Forged shard and only k shards supplied: authentication fails, nothing delivered. */
    struct damage *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->n = 6;
    d->k = 4;
    d->kind = 3;
    d->count = 1;
    d->data_only = 1;
    uint8_t lost[6] = {0, 0, 0, 0, 1, 1};
    struct lose l = {.lost = lost, .n = 6};
    struct dres r;
    memset(&r, 0, sizeof(r));
    /* Chain both hooks: damage then drop the parity. */
    struct both b = {d, &l};
    assert_int_equal(decode(&st, 0, both_fn, &b, &r), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "authenticate"));
    assert_int_equal(r.len, 0);
    dres_free(&r);
    damage_free(d);
    free(d);
    stream_free(&st);
}

/* Scrub: with verify_all, a forged parity shard that the decode never needed is found. */
static void test_verify_all(void **state)
{
    (void)state;
    uint8_t data[2000];
    make_data(data, sizeof(data), 1);
    struct qs_encoder_opts o;
    enc_opts(&o, 4, 2, 700, QS_COMPRESS_SNAPPY, 0);
    struct stream st;
    assert_int_equal(encode(&st, data, sizeof(data), &o, KEY, 0), 0);
    uint8_t *p = st.c[1].sh[5];
    p[70] ^= 1;
    fix_crc(p, st.c[1].len[5]);
    size_t order[] = {0, 1, 2};
    struct dres r;
    assert_int_equal(decode_ex(&st, &st.desc, KEY, 0, 0, order, 3, NULL, NULL, &r), 0);
    assert_int_equal(r.states[1 * 6 + 5], QS_SHARD_OK); /* not looked at */
    dres_free(&r);
    assert_int_equal(decode_ex(&st, &st.desc, KEY, 0, 1, order, 3, NULL, NULL, &r), 0);
    assert_int_equal(r.states[1 * 6 + 5], QS_SHARD_CORRUPT);
    assert_int_equal(r.states[0 * 6 + 5], QS_SHARD_OK);
    assert_memory_equal(r.data, data, sizeof(data));
    dres_free(&r);
    stream_free(&st);
}

/* ---- keys, tampering, stream structure ------------------------------------------------------ */

static void test_wrong_key(void **state)
{
    (void)state;
    uint8_t data[3000];
    make_data(data, sizeof(data), 1);
    struct qs_encoder_opts o;
    enc_opts(&o, 4, 2, 1024, QS_COMPRESS_SNAPPY, 0);
    struct stream st;
    assert_int_equal(encode(&st, data, sizeof(data), &o, KEY, 0), 0);
    size_t order[] = {0, 1, 2};
    struct dres r;
    assert_int_equal(decode_ex(&st, &st.desc, OTHER_KEY, 0, 0, order, 3, NULL, NULL, &r),
                     QS_EDENIED);
    assert_non_null(strstr(qs_err_msg(), "wrong key"));
    dres_free(&r);

    /* A descriptor forged to pass the key check of the wrong key, with the shard headers
     * rewritten to match: the AES-GCM tags still refuse every chunk. */
    struct qs_codec_desc forged;
    assert_int_equal(qs_codec_desc_new(&forged, 4, 2, 1024, st.desc.file_id, OTHER_KEY), 0);
    for (size_t c = 0; c < st.nchunks; c++)
        for (unsigned i = 0; i < 6; i++) {
            memcpy(st.c[c].sh[i] + 28, forged.key_check, 16);
            fix_crc(st.c[c].sh[i], st.c[c].len[i]);
        }
    assert_int_equal(decode_ex(&st, &forged, OTHER_KEY, 0, 0, order, 3, NULL, NULL, &r),
                     QS_ECORRUPT);
    assert_int_equal(r.len, 0);
    dres_free(&r);
    /* And the right key with the original descriptor now sees foreign shards. */
    assert_int_equal(decode_ex(&st, &st.desc, KEY, 0, 0, order, 3, NULL, NULL, &r), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "another stream"));
    dres_free(&r);
    stream_free(&st);
}

/* Rewrites every shard header of chunk c to claim chunk index idx and flags. */
static void relabel(struct stream *st, size_t c, uint64_t idx, int flags)
{
    for (unsigned i = 0; i < st->n; i++) {
        qs_put64(st->c[c].sh[i] + 44, idx);
        if (flags >= 0)
            st->c[c].sh[i][52] = (uint8_t)flags;
        fix_crc(st->c[c].sh[i], st->c[c].len[i]);
    }
}

static void test_stream_structure(void **state)
{
    (void)state;
    const uint32_t cs = 512;
    uint8_t data[4 * 512]; /* exactly 4 full chunks: the last is full and final */
    make_data(data, sizeof(data), 1);
    struct qs_encoder_opts o;
    enc_opts(&o, 2, 2, cs, QS_COMPRESS_LZ4, 0);
    struct stream st;
    assert_int_equal(encode(&st, data, sizeof(data), &o, KEY, 2), 0);
    assert_int_equal(st.nchunks, 4);
    struct dres r;

    /* Truncated at a chunk boundary: no final chunk. */
    size_t trunc[] = {0, 1, 2};
    assert_int_equal(decode_ex(&st, &st.desc, KEY, 1, 0, trunc, 3, NULL, NULL, &r), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "truncated"));
    assert_int_equal(r.len, 3 * cs); /* delivered, but the stream is refused */
    dres_free(&r);
    assert_int_equal(decode_ex(&st, &st.desc, KEY, 1, 0, trunc, 0, NULL, NULL, &r), QS_ECORRUPT);
    dres_free(&r);

    /* Reordered, duplicated, extended. */
    size_t swap[] = {0, 2, 1, 3};
    assert_int_equal(decode_ex(&st, &st.desc, KEY, 2, 0, swap, 4, NULL, NULL, &r), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "reordered"));
    dres_free(&r);
    size_t dup[] = {0, 0, 1, 2, 3};
    assert_int_equal(decode_ex(&st, &st.desc, KEY, 0, 0, dup, 5, NULL, NULL, &r), QS_ECORRUPT);
    dres_free(&r);
    size_t ext[] = {0, 1, 2, 3, 3};
    assert_int_equal(decode_ex(&st, &st.desc, KEY, 0, 0, ext, 5, NULL, NULL, &r), QS_ECORRUPT);
    dres_free(&r);

    /* Relabeled shards (CRC fixed) still fail: the index is bound into the AES-GCM nonce
     * and associated data. Chunk 2 presented as chunk 1: */
    struct stream st2;
    assert_int_equal(encode(&st2, data, sizeof(data), &o, KEY, 0), 0);
    relabel(&st2, 2, 1, -1);
    size_t as1[] = {0, 2, 3};
    assert_int_equal(decode_ex(&st2, &st2.desc, KEY, 0, 0, as1, 3, NULL, NULL, &r), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "chunk 1"));
    dres_free(&r);
    stream_free(&st2);

    /* The final flag stripped from the last chunk's headers: the record disagrees. */
    assert_int_equal(encode(&st2, data, sizeof(data), &o, KEY, 0), 0);
    relabel(&st2, 3, 3, 0);
    size_t all[] = {0, 1, 2, 3};
    assert_int_equal(decode_ex(&st2, &st2.desc, KEY, 0, 0, all, 4, NULL, NULL, &r), QS_ECORRUPT);
    dres_free(&r);
    stream_free(&st2);

    /* The final flag added to chunk 2 (truncating the stream there) fails likewise. */
    assert_int_equal(encode(&st2, data, sizeof(data), &o, KEY, 0), 0);
    relabel(&st2, 2, 2, 1);
    assert_int_equal(decode_ex(&st2, &st2.desc, KEY, 0, 0, all, 3, NULL, NULL, &r), QS_ECORRUPT);
    dres_free(&r);
    stream_free(&st2);

    /* A chunk spliced in from another stream of the same key and shape. */
    assert_int_equal(encode(&st2, data, sizeof(data), &o, KEY, 0), 0);
    for (unsigned i = 0; i < st.n; i++) {
        memcpy(st2.c[1].sh[i] + 12, st.desc.file_id, 16);
        memcpy(st2.c[1].sh[i] + 28, st.desc.key_check, 16);
        fix_crc(st2.c[1].sh[i], st2.c[1].len[i]);
        uint8_t *x = st.c[1].sh[i];
        st.c[1].sh[i] = st2.c[1].sh[i];
        st2.c[1].sh[i] = x;
        size_t lx = st.c[1].len[i];
        st.c[1].len[i] = st2.c[1].len[i];
        st2.c[1].len[i] = lx;
    }
    assert_int_equal(decode_ex(&st, &st.desc, KEY, 0, 0, all, 4, NULL, NULL, &r), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "chunk 1"));
    dres_free(&r);
    stream_free(&st2);
    stream_free(&st);
}

/* Flipping any single byte of a record (cleartext header, ciphertext, tag, padding) in a
 * data shard, with the CRC fixed, never yields wrong output when only k shards exist. */
static void test_tamper_every_byte(void **state)
{
    (void)state;
    uint8_t data[300];
    make_data(data, sizeof(data), 1);
    struct qs_encoder_opts o;
    enc_opts(&o, 2, 1, 1024, QS_COMPRESS_SNAPPY, 0);
    struct stream st;
    assert_int_equal(encode(&st, data, sizeof(data), &o, KEY, 0), 0);
    assert_int_equal(st.nchunks, 1);
    size_t order[] = {0};
    for (unsigned sh = 0; sh < 2; sh++) {
        uint8_t *p = st.c[0].sh[sh];
        size_t l = st.c[0].len[sh];
        uint8_t *parity = st.c[0].sh[2];
        st.c[0].sh[2] = NULL;
        for (size_t b = 64; b < l; b++) {
            p[b] ^= 0x01;
            fix_crc(p, l);
            struct dres r;
            assert_int_equal(decode_ex(&st, &st.desc, KEY, 0, 0, order, 1, NULL, NULL, &r),
                             QS_ECORRUPT);
            assert_int_equal(r.len, 0);
            dres_free(&r);
            p[b] ^= 0x01;
            fix_crc(p, l);
        }
        st.c[0].sh[2] = parity;
    }
    struct dres r;
    assert_int_equal(decode_ex(&st, &st.desc, KEY, 0, 0, order, 1, NULL, NULL, &r), 0);
    assert_memory_equal(r.data, data, sizeof(data));
    dres_free(&r);
    stream_free(&st);
}

/* ---- records only a key holder could write ------------------------------------------------ */

/* Seals one chunk by hand, following docs/codec-format.md, so tests can produce
 * authenticated records the encoder never writes (a buggy or hostile key holder). */
static void craft(const struct qs_codec_stream *s, uint64_t index, unsigned flags, unsigned method,
                  uint32_t plain_len, const uint8_t *body, size_t body_len,
                  const uint8_t digest[16], int bad_pad, struct echunk *out)
{
    unsigned k = s->desc.k, m = s->desc.m, n = k + m;
    int final = flags & 1;
    size_t ct_len = body_len + (final ? 16 : 0), rec_len = 32 + ct_len;
    size_t sz = (rec_len + k - 1) / k;
    if (bad_pad && k * sz == rec_len)
        sz++;
    uint8_t *rec = calloc(1, (size_t)n * sz);
    assert_non_null(rec);
    rec[0] = (uint8_t)method;
    rec[1] = (uint8_t)flags;
    qs_put32(rec + 4, plain_len);
    qs_put32(rec + 8, (uint32_t)ct_len);
    uint8_t nonce[12] = {0}, aad[56];
    qs_put64(nonce, index);
    memcpy(aad, "QSCODEC1", 8);
    aad[8] = 1;
    aad[9] = (uint8_t)k;
    aad[10] = (uint8_t)m;
    aad[11] = 0;
    qs_put32(aad + 12, s->desc.chunk_size);
    memcpy(aad + 16, s->desc.file_id, 16);
    qs_put64(aad + 32, index);
    memcpy(aad + 40, rec, 16);
    struct qs_aead *a;
    assert_int_equal(qs_aead_new(&a, s->data_key, 1), 0);
    assert_int_equal(qs_aead_start(a, nonce, aad, sizeof(aad)), 0);
    assert_int_equal(qs_aead_update(a, rec + 16, body, body_len), 0);
    if (final)
        assert_int_equal(qs_aead_update(a, rec + 16 + body_len, digest, 16), 0);
    assert_int_equal(qs_aead_seal_final(a, rec + 16 + ct_len), 0);
    qs_aead_free(a);
    if (bad_pad)
        rec[k * sz - 1] = 0x01;
    const uint8_t *dp[QS_CODEC_MAX_SHARDS];
    uint8_t *pp[QS_CODEC_MAX_SHARDS];
    for (unsigned i = 0; i < n; i++) {
        if (i < k)
            dp[i] = rec + i * sz;
        else
            pp[i - k] = rec + i * sz;
    }
    qs_rs_encode(&s->rs, sz, dp, pp);
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < n; i++) {
        uint8_t *h = calloc(1, 64 + sz);
        assert_non_null(h);
        memcpy(h, "QSSH", 4);
        h[4] = 1;
        h[5] = (uint8_t)k;
        h[6] = (uint8_t)m;
        h[7] = (uint8_t)i;
        qs_put32(h + 8, s->desc.chunk_size);
        memcpy(h + 12, s->desc.file_id, 16);
        memcpy(h + 28, s->desc.key_check, 16);
        qs_put64(h + 44, index);
        h[52] = (uint8_t)flags;
        qs_put32(h + 56, (uint32_t)sz);
        memcpy(h + 64, rec + i * sz, sz);
        fix_crc(h, 64 + sz);
        out->sh[i] = h;
        out->len[i] = 64 + sz;
    }
    free(rec);
}

struct crafted {
    struct stream st;
    struct qs_codec_stream s;
};

static void crafted_init(struct crafted *c)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(qs_codec_desc_new(&c->st.desc, 2, 1, 64, NULL, KEY), 0);
    assert_int_equal(qs_codec_stream_init(&c->s, &c->st.desc, KEY), 0);
    c->st.n = 3;
    c->st.cap = 4;
    c->st.c = calloc(4, sizeof(struct echunk));
    assert_non_null(c->st.c);
}

static int crafted_decode(struct crafted *c, struct dres *r)
{
    size_t order[4] = {0, 1, 2, 3};
    int rc = decode_ex(&c->st, &c->st.desc, KEY, 0, 0, order, c->st.nchunks, NULL, NULL, r);
    dres_free(r);
    stream_free(&c->st);
    qs_codec_stream_free(&c->s);
    return rc;
}

static void test_crafted_records(void **state)
{
    (void)state;
    uint8_t data[64], dig[16], dig10[16];
    make_data(data, sizeof(data), 1);
    qs_hash128(dig, data, sizeof(data));
    qs_hash128(dig10, data, 10);
    struct crafted c;
    struct dres r;

    /* Control: a hand-made two-chunk stream decodes, so the cases below test one rule. */
    crafted_init(&c);
    uint8_t both[74];
    memcpy(both, data, 64);
    memcpy(both + 64, data, 10);
    qs_hash128(dig, both, 74);
    craft(&c.s, 0, 0, 0, 64, data, 64, NULL, 0, &c.st.c[0]);
    craft(&c.s, 1, 1, 0, 10, data, 10, dig, 0, &c.st.c[1]);
    c.st.nchunks = 2;
    assert_int_equal(crafted_decode(&c, &r), 0);

    /* Two final chunks: data after the end. */
    crafted_init(&c);
    craft(&c.s, 0, 1, 0, 10, data, 10, dig10, 0, &c.st.c[0]);
    craft(&c.s, 1, 1, 0, 10, data, 10, dig10, 0, &c.st.c[1]);
    c.st.nchunks = 2;
    assert_int_equal(crafted_decode(&c, &r), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "follows the final"));

    /* The sealed stream digest does not match the data. */
    crafted_init(&c);
    craft(&c.s, 0, 1, 0, 10, data, 10, dig, 0, &c.st.c[0]);
    c.st.nchunks = 1;
    assert_int_equal(crafted_decode(&c, &r), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "checksum"));

    /* A short chunk that is not the final one. */
    crafted_init(&c);
    craft(&c.s, 0, 0, 0, 10, data, 10, NULL, 0, &c.st.c[0]);
    craft(&c.s, 1, 1, 0, 10, data, 10, dig, 0, &c.st.c[1]);
    c.st.nchunks = 2;
    assert_int_equal(crafted_decode(&c, &r), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "chunk 0: "));

    /* An empty final chunk after a full one (the encoder makes the full one final). */
    crafted_init(&c);
    craft(&c.s, 0, 0, 0, 64, data, 64, NULL, 0, &c.st.c[0]);
    craft(&c.s, 1, 1, 0, 0, data, 0, dig, 0, &c.st.c[1]);
    c.st.nchunks = 2;
    assert_int_equal(crafted_decode(&c, &r), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "chunk 1: "));

    /* Raw method with a body shorter than plain_len. */
    crafted_init(&c);
    craft(&c.s, 0, 1, 0, 12, data, 10, dig10, 0, &c.st.c[0]);
    c.st.nchunks = 1;
    assert_int_equal(crafted_decode(&c, &r), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "malformed record"));

    /* Non-zero padding. */
    crafted_init(&c);
    craft(&c.s, 0, 1, 0, 10, data, 10, dig10, 1, &c.st.c[0]);
    c.st.nchunks = 1;
    assert_int_equal(crafted_decode(&c, &r), QS_ECORRUPT);

    /* Authenticated "snappy" body that is not snappy, and an unknown method. */
    crafted_init(&c);
    craft(&c.s, 0, 1, 1, 40, data, 20, dig10, 0, &c.st.c[0]);
    c.st.nchunks = 1;
    assert_int_equal(crafted_decode(&c, &r), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "decompress"));
    crafted_init(&c);
    craft(&c.s, 0, 1, 9, 10, data, 10, dig10, 0, &c.st.c[0]);
    c.st.nchunks = 1;
    assert_int_equal(crafted_decode(&c, &r), QS_ECORRUPT);
}

/* ---- API behaviour ----------------------------------------------------------------------------
 */

static void test_sink_errors_and_misuse(void **state)
{
    (void)state;
    uint8_t data[5000];
    make_data(data, sizeof(data), 1);
    struct qs_encoder_opts o;
    enc_opts(&o, 4, 2, 1000, QS_COMPRESS_SNAPPY, 2);

    /* Encoder sink failure stops the stream with the sink's code. */
    struct stream st;
    memset(&st, 0, sizeof(st));
    st.n = 6;
    st.fail_at = 2;
    struct qs_encoder *e;
    assert_int_equal(qs_encoder_new(&e, &o, KEY, enc_sink, &st), 0);
    int rc = qs_encoder_write(e, data, sizeof(data));
    int frc = qs_encoder_finish(e, NULL);
    assert_int_equal(rc ? rc : frc, QS_EIO);
    assert_int_equal(qs_encoder_write(e, data, 10), QS_EIO);
    qs_encoder_free(e);
    stream_free(&st);

    /* Write after finish; finish twice. */
    assert_int_equal(encode(&st, data, sizeof(data), &o, KEY, 0), 0);
    stream_free(&st);
    st.n = 6;
    st.fail_at = -1;
    assert_int_equal(qs_encoder_new(&e, &o, KEY, enc_sink, &st), 0);
    assert_int_equal(qs_encoder_write(e, data, 100), 0);
    assert_int_equal(qs_encoder_finish(e, NULL), 0);
    assert_int_equal(qs_encoder_write(e, data, 1), QS_EINVAL);
    assert_int_equal(qs_encoder_finish(e, NULL), QS_EINVAL);
    qs_encoder_free(e);
    stream_free(&st);
    /* Freeing mid-stream, with chunks in flight, is clean. */
    st.n = 6;
    st.fail_at = -1;
    assert_int_equal(qs_encoder_new(&e, &o, KEY, enc_sink, &st), 0);
    assert_int_equal(qs_encoder_write(e, data, sizeof(data)), 0);
    qs_encoder_free(e);
    stream_free(&st);

    /* Bad options. */
    struct qs_encoder_opts b = o;
    b.k = 0;
    assert_int_equal(qs_encoder_new(&e, &b, KEY, enc_sink, &st), QS_EINVAL);
    b = o;
    b.compress = (enum qs_compress)7;
    assert_int_equal(qs_encoder_new(&e, &b, KEY, enc_sink, &st), QS_EINVAL);
    b = o;
    b.workers = 1000;
    assert_int_equal(qs_encoder_new(&e, &b, KEY, enc_sink, &st), QS_EINVAL);
    assert_int_equal(qs_encoder_new(&e, &o, KEY, NULL, &st), QS_EINVAL);

    /* Decoder sink failure. */
    assert_int_equal(encode(&st, data, sizeof(data), &o, KEY, 0), 0);
    struct dres r;
    memset(&r, 0, sizeof(r));
    r.fail_at = 1;
    struct qs_decoder *d;
    assert_int_equal(qs_decoder_new(&d, &st.desc, KEY, NULL, dec_sink, &r), 0);
    rc = 0;
    for (size_t c = 0; c < st.nchunks && !rc; c++)
        rc = qs_decoder_feed(d, (const uint8_t *const *)st.c[c].sh, st.c[c].len);
    frc = qs_decoder_finish(d, NULL);
    assert_int_equal(rc ? rc : frc, QS_EIO);
    assert_int_equal(qs_decoder_feed(d, (const uint8_t *const *)st.c[0].sh, st.c[0].len), QS_EIO);
    qs_decoder_free(d);
    dres_free(&r);
    /* Decoder freed with chunks in flight. */
    assert_int_equal(qs_decoder_new(&d, &st.desc, KEY, NULL, dec_sink, &r), 0);
    r.fail_at = -1;
    for (size_t c = 0; c < st.nchunks; c++)
        assert_int_equal(qs_decoder_feed(d, (const uint8_t *const *)st.c[c].sh, st.c[c].len), 0);
    qs_decoder_free(d);
    dres_free(&r);
    stream_free(&st);
}

/* ---- rebuild --------------------------------------------------------------------------------- */

static void test_rebuild(void **state)
{
    (void)state;
    uint8_t data[3000];
    make_data(data, sizeof(data), 1);
    struct qs_encoder_opts o;
    enc_opts(&o, 4, 3, 1024, QS_COMPRESS_ZSTD, 0);
    struct stream st;
    assert_int_equal(encode(&st, data, sizeof(data), &o, KEY, 0), 0);
    struct qs_codec_stream s;
    assert_int_equal(qs_codec_stream_init(&s, &st.desc, KEY), 0);
    struct qs_chunk_ctx *ctx;
    assert_int_equal(qs_chunk_ctx_new(&ctx, &s, 0, QS_COMPRESS_NONE, 0), 0);
    uint8_t *out = malloc(s.stride);
    assert_non_null(out);
    for (size_t c = 0; c < st.nchunks; c++) {
        for (unsigned w = 0; w < 7; w++) {
            const uint8_t *sh[7];
            for (unsigned i = 0; i < 7; i++)
                sh[i] = st.c[c].sh[i];
            /* Lose w and two others. */
            sh[w] = NULL;
            sh[(w + 3) % 7] = NULL;
            sh[(w + 5) % 7] = NULL;
            size_t olen;
            assert_int_equal(qs_chunk_rebuild(ctx, c, sh, st.c[c].len, w, out, &olen), 0);
            assert_int_equal(olen, st.c[c].len[w]);
            assert_memory_equal(out, st.c[c].sh[w], olen);
            sh[(w + 1) % 7] = NULL;
            assert_int_equal(qs_chunk_rebuild(ctx, c, sh, st.c[c].len, w, out, &olen), QS_ETOOFEW);
        }
    }
    size_t olen;
    assert_int_equal(
        qs_chunk_rebuild(ctx, 0, (const uint8_t *const *)st.c[0].sh, st.c[0].len, 7, out, &olen),
        QS_EINVAL);
    free(out);
    qs_chunk_ctx_free(ctx);
    qs_codec_stream_free(&s);
    stream_free(&st);
}

/* ---- a fixed vector: the version-1 format must stay readable -------------------------------- */

/* Shards of "qsfs codec format version 1: golden vector." encoded with KEY, file id
 * f0..ff, 2+1 shards, 32-byte chunks, no compression. Also read by
 * scripts/codec_ref_decode.py, which follows docs/codec-format.md. Never change these:
 * a later version that cannot read them has broken the format. */
static const char *const golden_shards[6] = {
    /* chunk 0, shard 0 */
    "515353480102010020000000f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff8360cab6862adaff7b6a31900a55b324"
    "00000000000000000000000020000000270d788500000000200000002000000000000000f2f372b80d3fe4db"
    "b1690b4c70a23313",
    /* chunk 0, shard 1 */
    "515353480102010120000000f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff8360cab6862adaff7b6a31900a55b324"
    "00000000000000000000000020000000fb1651c2cbd53c712453b7682b159bbf161978769c7a6469057b6df7"
    "29da2e1c5678770a",
    /* chunk 0, shard 2 */
    "515353480102010220000000f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff8360cab6862adaff7b6a31900a55b324"
    "00000000000000000000000020000000b90c55c7b2b8142f0c316dd309f8829ef9fc28d90d2aee7b8bb8a245"
    "3a0791d90a79ba81",
    /* chunk 1, shard 0 */
    "515353480102010020000000f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff8360cab6862adaff7b6a31900a55b324"
    "0100000000000000010000001e000000e4c197d7000100000b0000001b00000000000000ca9bb8640e7eecae"
    "006f36a2ed8b",
    /* chunk 1, shard 1 */
    "515353480102010120000000f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff8360cab6862adaff7b6a31900a55b324"
    "0100000000000000010000001e0000003d4788af174e75b384d15c2af4ff7bd5996548639bc58bb1dc00ba2d"
    "0c1b5ba20600",
    /* chunk 1, shard 2 */
    "515353480102010220000000f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff8360cab6862adaff7b6a31900a55b324"
    "0100000000000000010000001e0000002c54b5930db4d89af74f34ed245529b877233821e780255db83feb4c"
    "04b0d9c4facb",
};

static void test_golden_vector(void **state)
{
    (void)state;
    uint8_t id[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(0xf0 + i);
    const char *text = "qsfs codec format version 1: golden vector.";
    struct qs_encoder_opts o;
    enc_opts(&o, 2, 1, 32, QS_COMPRESS_NONE, 0);
    o.file_id = id;
    struct stream st;
    assert_int_equal(encode(&st, (const uint8_t *)text, strlen(text), &o, KEY, 0), 0);
    assert_int_equal(st.nchunks, 2);
    /* Encoding without compression is deterministic: the same bytes as ever. */
    struct qs_hash h;
    qs_hash_init(&h);
    for (size_t c = 0; c < st.nchunks; c++) {
        for (unsigned i = 0; i < 3; i++) {
            qs_hash_update(&h, st.c[c].sh[i], st.c[c].len[i]);
            const char *hex = golden_shards[c * 3 + i];
            assert_int_equal(strlen(hex), 2 * st.c[c].len[i]);
            for (size_t b = 0; b < st.c[c].len[i]; b++) {
                unsigned v;
                assert_int_equal(sscanf(hex + 2 * b, "%2x", &v), 1);
                assert_int_equal(st.c[c].sh[i][b], v);
            }
        }
    }
    uint8_t got[16];
    qs_hash_final(&h, got);
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", got[i]);
    assert_string_equal(hex, GOLDEN_SHARDS_HASH);

    /* Decode the stored bytes, each chunk missing a different shard. */
    struct qs_codec_desc d = st.desc;
    struct qs_decoder *dec;
    struct dres r;
    memset(&r, 0, sizeof(r));
    r.fail_at = -1;
    assert_int_equal(qs_decoder_new(&dec, &d, KEY, NULL, dec_sink, &r), 0);
    for (size_t c = 0; c < 2; c++) {
        const uint8_t *sh[3];
        size_t len[3];
        uint8_t bufs[3][128];
        for (unsigned i = 0; i < 3; i++) {
            const char *x = golden_shards[c * 3 + i];
            len[i] = strlen(x) / 2;
            assert_true(len[i] <= sizeof(bufs[i]));
            for (size_t b = 0; b < len[i]; b++) {
                unsigned v;
                assert_int_equal(sscanf(x + 2 * b, "%2x", &v), 1);
                bufs[i][b] = (uint8_t)v;
            }
            sh[i] = bufs[i];
        }
        sh[c] = NULL;
        assert_int_equal(qs_decoder_feed(dec, sh, len), 0);
    }
    struct qs_codec_summary sum;
    assert_int_equal(qs_decoder_finish(dec, &sum), 0);
    qs_decoder_free(dec);
    assert_int_equal(r.len, strlen(text));
    assert_memory_equal(r.data, text, r.len);
    uint8_t want[16];
    qs_hash128(want, text, strlen(text));
    assert_memory_equal(sum.digest, want, 16);
    dres_free(&r);
    stream_free(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_matrix),
        cmocka_unit_test(test_roundtrip_many_chunks),
        cmocka_unit_test(test_shared_pool),
        cmocka_unit_test(test_every_erasure_pattern),
        cmocka_unit_test(test_random_erasures),
        cmocka_unit_test(test_corrupt_shards),
        cmocka_unit_test(test_forged_shard),
        cmocka_unit_test(test_verify_all),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_stream_structure),
        cmocka_unit_test(test_tamper_every_byte),
        cmocka_unit_test(test_crafted_records),
        cmocka_unit_test(test_sink_errors_and_misuse),
        cmocka_unit_test(test_rebuild),
        cmocka_unit_test(test_golden_vector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
