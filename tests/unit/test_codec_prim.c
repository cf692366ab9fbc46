/* Unit tests for the codec's primitives: known-answer tests for AES-256-GCM, BLAKE2b-128,
 * the key derivation and CRC-32C; Reed-Solomon against an independent GF(2^8) reference;
 * compression round trips and rejections; descriptor format; worker pool. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "codec/aead.h"
#include "codec/chunk.h"
#include "codec/codec.h"
#include "codec/compress.h"
#include "codec/hash.h"
#include "codec/pool.h"
#include "codec/rs.h"
#include "util/crc32c.h"
#include "util/mem.h"

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h) / 2;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

/* ---- AES-256-GCM: NIST GCM spec test cases 14 and 16 ------------------------------- */

struct gcm_vec {
    const char *key, *iv, *pt, *aad, *ct, *tag;
};

static const struct gcm_vec gcm_vecs[] = {
    {"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "00000000000000000000000000000000", "", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
     "49a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
     "56828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

static void test_aes_gcm_kat(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof(gcm_vecs) / sizeof(gcm_vecs[0]); v++) {
        uint8_t key[32], iv[12], pt[64], aad[32], ct[64], tag[16], out[64], got[16];
        unhex(gcm_vecs[v].key, key, sizeof(key));
        unhex(gcm_vecs[v].iv, iv, sizeof(iv));
        size_t n = unhex(gcm_vecs[v].pt, pt, sizeof(pt));
        size_t an = unhex(gcm_vecs[v].aad, aad, sizeof(aad));
        unhex(gcm_vecs[v].ct, ct, sizeof(ct));
        unhex(gcm_vecs[v].tag, tag, sizeof(tag));

        struct qs_aead *e, *d;
        assert_int_equal(qs_aead_new(&e, key, 1), 0);
        assert_int_equal(qs_aead_new(&d, key, 0), 0);
        /* Encrypt in uneven pieces: the codec scatters a message over shards. */
        assert_int_equal(qs_aead_start(e, iv, aad, an), 0);
        size_t cut1 = n / 3, cut2 = n / 3 + 7 > n ? n : n / 3 + 7;
        assert_int_equal(qs_aead_update(e, out, pt, cut1), 0);
        assert_int_equal(qs_aead_update(e, out + cut1, pt + cut1, cut2 - cut1), 0);
        assert_int_equal(qs_aead_update(e, out + cut2, pt + cut2, n - cut2), 0);
        assert_int_equal(qs_aead_seal_final(e, got), 0);
        assert_memory_equal(out, ct, n);
        assert_memory_equal(got, tag, 16);
        /* And again: the context is reusable with a new nonce. */
        assert_int_equal(qs_aead_start(e, iv, aad, an), 0);
        assert_int_equal(qs_aead_update(e, out, pt, n), 0);
        assert_int_equal(qs_aead_seal_final(e, got), 0);
        assert_memory_equal(got, tag, 16);

        assert_int_equal(qs_aead_start(d, iv, aad, an), 0);
        assert_int_equal(qs_aead_update(d, out, ct, n), 0);
        assert_int_equal(qs_aead_open_final(d, tag), 0);
        assert_memory_equal(out, pt, n);
        /* A flipped tag bit, ciphertext bit or AAD bit is rejected. */
        tag[5] ^= 1;
        assert_int_equal(qs_aead_start(d, iv, aad, an), 0);
        assert_int_equal(qs_aead_update(d, out, ct, n), 0);
        assert_int_equal(qs_aead_open_final(d, tag), QS_ECORRUPT);
        tag[5] ^= 1;
        ct[n - 1] ^= 0x80;
        assert_int_equal(qs_aead_start(d, iv, aad, an), 0);
        assert_int_equal(qs_aead_update(d, out, ct, n), 0);
        assert_int_equal(qs_aead_open_final(d, tag), QS_ECORRUPT);
        ct[n - 1] ^= 0x80;
        if (an) {
            aad[0] ^= 1;
            assert_int_equal(qs_aead_start(d, iv, aad, an), 0);
            assert_int_equal(qs_aead_update(d, out, ct, n), 0);
            assert_int_equal(qs_aead_open_final(d, tag), QS_ECORRUPT);
        }
        qs_aead_free(e);
        qs_aead_free(d);
    }
}

/* ---- BLAKE2b-128 --------------------------------------------------------------------- */

static void test_blake2b_kat(void **state)
{
    (void)state;
    uint8_t got[16], want[16];
    /* Fixed vectors from an independent implementation (Python hashlib,
     * blake2b(digest_size=16)). */
    qs_hash128(got, "", 0);
    unhex("cae66941d9efbd404e4d88758ea67670", want, 16);
    assert_memory_equal(got, want, 16);
    qs_hash128(got, "abc", 3);
    unhex("cf4ab791c62b8d2b2109c90275287816", want, 16);
    assert_memory_equal(got, want, 16);
    uint8_t *big = malloc(100000);
    assert_non_null(big);
    for (size_t i = 0; i < 100000; i++)
        big[i] = (uint8_t)(i % 251);
    qs_hash128(got, big, 100000);
    unhex("7bafffc74b44b4a80f347888022ba2ae", want, 16);
    assert_memory_equal(got, want, 16);

    /* Equals libsodium's generic hash with outlen 16, streamed in any pieces. */
    for (int t = 0; t < 40; t++) {
        size_t n = rnd() % 100000;
        fill_random(big, n);
        assert_int_equal(crypto_generichash(want, 16, big, n, NULL, 0), 0);
        struct qs_hash h;
        qs_hash_init(&h);
        size_t off = 0;
        while (off < n) {
            size_t piece = 1 + rnd() % 5000;
            if (piece > n - off)
                piece = n - off;
            qs_hash_update(&h, big + off, piece);
            off += piece;
        }
        qs_hash_final(&h, got);
        assert_memory_equal(got, want, 16);
    }
    /* A truncated 64-byte digest is a different value: the length is in the parameters. */
    uint8_t full[64];
    assert_int_equal(crypto_generichash(full, 64, (const uint8_t *)"abc", 3, NULL, 0), 0);
    qs_hash128(got, "abc", 3);
    assert_memory_not_equal(got, full, 16);
    free(big);
}

static void test_kdf_kat(void **state)
{
    (void)state;
    uint8_t key[32], salt[16], got[32], want[32];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 16; i++)
        salt[i] = (uint8_t)(100 + i);
    /* Python: blake2b(b"", key=key, salt=salt, person=b"qsfs-codec-key-1", digest_size=32) */
    assert_int_equal(qs_hash_kdf(got, 32, key, salt, "qsfs-codec-key-1"), 0);
    unhex("265c8d18c6364cda9f1ed1db9e2b078e1f2184081f967a8fdee2ee2026847468", want, 32);
    assert_memory_equal(got, want, 32);
    /* The descriptor's key check value uses the "qsfs-codec-kcv-1" personalization. */
    struct qs_codec_desc d;
    assert_int_equal(qs_codec_desc_new(&d, 4, 2, 4096, salt, key), 0);
    unhex("b22785c46c89147e5653e2477b1227fc", want, 16);
    assert_memory_equal(d.key_check, want, 16);
    assert_int_equal(qs_hash_kdf(got, 8, key, salt, "qsfs-codec-key-1"), QS_EINVAL);
}

/* ---- CRC-32C --------------------------------------------------------------------------- */

static uint32_t crc32c_bitwise(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
    }
    return ~c;
}

static void test_crc32c_kat(void **state)
{
    (void)state;
    assert_int_equal(~qs_crc32c_update(~0u, "123456789", 9), 0xe3069283u);
    assert_int_equal(crc32c_bitwise((const uint8_t *)"123456789", 9), 0xe3069283u);
    uint8_t buf[3000];
    fill_random(buf, sizeof(buf));
    for (size_t n = 0; n < sizeof(buf); n += 1 + n / 3)
        assert_int_equal(~qs_crc32c_update(~0u, buf, n), crc32c_bitwise(buf, n));
}

/* A shard header written by the test itself, checksummed with the bitwise CRC: the
 * library must accept it, and reject every single-bit change. */
static void test_shard_header_format(void **state)
{
    (void)state;
    uint8_t sh[64 + 40];
    memset(sh, 0, sizeof(sh));
    memcpy(sh, "QSSH", 4);
    sh[4] = 1; /* version */
    sh[5] = 4; /* k */
    sh[6] = 2; /* m */
    sh[7] = 5; /* shard index */
    qs_put32(sh + 8, 4096);
    for (int i = 0; i < 16; i++) {
        sh[12 + i] = (uint8_t)(0xa0 + i); /* file id */
        sh[28 + i] = (uint8_t)(0x10 + i); /* key check */
    }
    qs_put64(sh + 44, 0x0102030405060708ull);
    sh[52] = 1; /* final */
    qs_put32(sh + 56, 40);
    fill_random(sh + 64, 40);
    uint8_t tmp[60 + 40];
    memcpy(tmp, sh, 60);
    memcpy(tmp + 60, sh + 64, 40);
    qs_put32(sh + 60, crc32c_bitwise(tmp, sizeof(tmp)));

    struct qs_shard_info info;
    assert_int_equal(qs_shard_parse(sh, sizeof(sh), &info), 0);
    assert_int_equal(info.k, 4);
    assert_int_equal(info.m, 2);
    assert_int_equal(info.index, 5);
    assert_int_equal(info.chunk_size, 4096);
    assert_int_equal(info.chunk, 0x0102030405060708ull);
    assert_int_equal(info.flags, QS_CHUNK_FINAL);
    assert_int_equal(info.payload_len, 40);
    assert_int_equal(info.file_id[3], 0xa3);
    for (size_t bit = 0; bit < sizeof(sh) * 8; bit++) {
        sh[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(qs_shard_parse(sh, sizeof(sh), &info), QS_ECORRUPT);
        sh[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(qs_shard_parse(sh, sizeof(sh) - 1, &info), QS_ECORRUPT);
    assert_int_equal(qs_shard_parse(sh, 10, &info), QS_ECORRUPT);
    assert_int_equal(qs_shard_parse(sh, sizeof(sh), &info), 0);
}

/* ---- Reed-Solomon against an independent GF(2^8) reference ------------------------------ */

static uint8_t ref_mul(uint8_t a, uint8_t b)
{
    unsigned r = 0, x = a;
    while (b) {
        if (b & 1)
            r ^= x;
        x <<= 1;
        if (x & 0x100)
            x ^= 0x11d;
        b >>= 1;
    }
    return (uint8_t)r;
}

static uint8_t ref_inv(uint8_t a)
{
    for (unsigned x = 1; x < 256; x++)
        if (ref_mul(a, (uint8_t)x) == 1)
            return (uint8_t)x;
    fail_msg("no inverse of %u", a);
    return 0;
}

/* Parity row r >= k, column c: 1 / (r xor c). */
static void ref_encode(unsigned k, unsigned m, size_t len, uint8_t **data, uint8_t **parity)
{
    for (unsigned p = 0; p < m; p++) {
        memset(parity[p], 0, len);
        for (unsigned c = 0; c < k; c++) {
            uint8_t coef = ref_inv((uint8_t)((k + p) ^ c));
            for (size_t b = 0; b < len; b++)
                parity[p][b] ^= ref_mul(coef, data[c][b]);
        }
    }
}

static void test_rs_reference(void **state)
{
    (void)state;
    static const unsigned km[][2] = {{1, 1}, {2, 2}, {4, 2}, {10, 4}, {16, 4}, {3, 5}, {20, 12}};
    static const size_t lens[] = {1, 15, 16, 17, 31, 33, 64, 100, 257};
    for (size_t t = 0; t < sizeof(km) / sizeof(km[0]); t++) {
        unsigned k = km[t][0], m = km[t][1], n = k + m;
        struct qs_rs rs;
        assert_int_equal(qs_rs_init(&rs, k, m), 0);
        struct qs_rs_dec dec;
        qs_rs_dec_init(&dec);
        for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
            size_t len = lens[l];
            uint8_t *buf = malloc(3 * n * len);
            assert_non_null(buf);
            uint8_t *sh[64], *ref[64], *out[64];
            for (unsigned i = 0; i < n; i++) {
                sh[i] = buf + i * len;
                ref[i] = buf + (n + i) * len;
                out[i] = buf + (2 * n + i) * len;
            }
            fill_random(buf, n * len);
            for (unsigned i = 0; i < k; i++)
                memcpy(ref[i], sh[i], len);
            ref_encode(k, m, len, ref, ref + k);
            qs_rs_encode(&rs, len, (const uint8_t *const *)sh, sh + k);
            for (unsigned p = 0; p < m; p++)
                assert_memory_equal(sh[k + p], ref[k + p], len);

            /* Lose m random shards; recover all of them from the k left. */
            uint8_t perm[64];
            for (unsigned i = 0; i < n; i++)
                perm[i] = (uint8_t)i;
            for (unsigned i = n - 1; i > 0; i--) {
                unsigned j = rnd() % (i + 1);
                uint8_t x = perm[i];
                perm[i] = perm[j];
                perm[j] = x;
            }
            const uint8_t *in[64];
            for (unsigned i = 0; i < k; i++)
                in[i] = sh[perm[i]];
            assert_int_equal(qs_rs_reconstruct(&rs, &dec, len, perm, in, m, perm + k, out), 0);
            for (unsigned w = 0; w < m; w++)
                assert_memory_equal(out[w], sh[perm[k + w]], len);
            free(buf);
        }
        /* Bad requests are refused, not crashed on. */
        uint8_t have[64];
        for (unsigned i = 0; i < k; i++)
            have[i] = 0;      /* duplicates when k > 1 */
        have[0] = (uint8_t)n; /* out of range */
        const uint8_t *in[64] = {0};
        uint8_t want = 0, *o[1] = {NULL};
        assert_int_equal(qs_rs_reconstruct(&rs, &dec, 4, have, in, 1, &want, o), QS_EINVAL);
        qs_rs_dec_free(&dec);
        qs_rs_free(&rs);
    }
    struct qs_rs rs;
    assert_int_equal(qs_rs_init(&rs, 0, 2), QS_EINVAL);
    assert_int_equal(qs_rs_init(&rs, 200, 56), QS_EINVAL);
    assert_int_equal(qs_rs_init(&rs, 254, 1), 0);
    qs_rs_free(&rs);
}

/* ---- compression ------------------------------------------------------------------------ */

static void make_text(uint8_t *p, size_t n)
{
    static const char *words[] = {"the ",  "quick ", "brown ",   "fox ",   "jumps ", "over ",
                                  "lazy ", "dog ",   "storage ", "shard ", "\n"};
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

static void test_compress_roundtrip(void **state)
{
    (void)state;
    struct qs_zctx z;
    qs_zctx_init(&z);
    size_t n = 20000;
    uint8_t *in = malloc(n), *out = malloc(n),
            *c = malloc(qs_compress_bound(QS_COMPRESS_ZSTD, n) + 1000);
    assert_non_null(in);
    assert_non_null(out);
    assert_non_null(c);
    for (int method = 1; method <= 3; method++) {
        for (int kind = 0; kind < 3; kind++) {
            size_t len = kind == 2 ? 0 : n;
            if (kind == 0)
                make_text(in, len);
            else
                fill_random(in, len);
            size_t cap = qs_compress_bound((enum qs_compress)method, len), clen;
            assert_true(cap > 0);
            assert_int_equal(qs_compress(&z, (enum qs_compress)method, 0, in, len, c, cap, &clen),
                             0);
            if (kind == 0) /* an 11-word vocabulary compresses well with any method */
                assert_true(clen < len * 3 / 5);
            assert_int_equal(qs_decompress(&z, (enum qs_compress)method, c, clen, out, len), 0);
            assert_memory_equal(out, in, len);
            if (len == 0)
                continue;
            /* Wrong expected length, truncation and garbage are all rejected. */
            assert_int_equal(qs_decompress(&z, (enum qs_compress)method, c, clen, out, len - 1),
                             QS_ECORRUPT);
            assert_int_equal(qs_decompress(&z, (enum qs_compress)method, c, clen / 2, out, len),
                             QS_ECORRUPT);
            fill_random(c, clen);
            assert_int_equal(qs_decompress(&z, (enum qs_compress)method, c, clen, out, len),
                             QS_ECORRUPT);
        }
    }
    enum qs_compress m;
    assert_int_equal(qs_compress_parse("Snappy", &m), 0);
    assert_int_equal(m, QS_COMPRESS_SNAPPY);
    assert_int_equal(qs_compress_parse("gzip", &m), QS_EINVAL);
    assert_string_equal(qs_compress_name(QS_COMPRESS_LZ4), "lz4");
    assert_null(qs_compress_name((enum qs_compress)9));
    free(in);
    free(out);
    free(c);
    qs_zctx_free(&z);
}

/* ---- descriptor -------------------------------------------------------------------------- */

static void test_desc_format(void **state)
{
    (void)state;
    uint8_t key[32] = {1, 2, 3}, other[32] = {9};
    uint8_t id[16] = {0xee};
    struct qs_codec_desc d, e;
    assert_int_equal(qs_codec_desc_new(&d, 10, 4, 1 << 20, id, key), 0);
    uint8_t buf[QS_CODEC_DESC_LEN];
    qs_codec_desc_encode(&d, buf);
    assert_memory_equal(buf, "QSCD\x01\x0a\x04\x00\x00\x00\x10\x00\xee", 13);
    assert_int_equal(qs_codec_desc_decode(&e, buf, sizeof(buf)), 0);
    assert_memory_equal(&d, &e, sizeof(d));
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] ^= 0x04;
        assert_int_not_equal(qs_codec_desc_decode(&e, buf, sizeof(buf)), 0);
        buf[i] ^= 0x04;
    }
    assert_int_equal(qs_codec_desc_decode(&e, buf, sizeof(buf) - 1), QS_ECORRUPT);
    /* A future version is refused with EINVAL, not taken for corruption. */
    buf[4] = 2;
    qs_put32(buf + 44, ~qs_crc32c_update(~0u, buf, 44));
    assert_int_equal(qs_codec_desc_decode(&e, buf, sizeof(buf)), QS_EINVAL);

    /* Random file ids differ; the key check tells right from wrong keys. */
    assert_int_equal(qs_codec_desc_new(&e, 10, 4, 1 << 20, NULL, key), 0);
    assert_memory_not_equal(d.file_id, e.file_id, 16);
    struct qs_codec_stream s;
    assert_int_equal(qs_codec_stream_init(&s, &d, key), 0);
    assert_int_equal(s.max_payload, ((1u << 20) + 48 + 9) / 10);
    assert_int_equal(s.stride % 64, 0);
    qs_codec_stream_free(&s);
    assert_int_equal(qs_codec_stream_init(&s, &d, other), QS_EDENIED);
    assert_non_null(strstr(qs_err_msg(), "wrong key"));

    assert_int_equal(qs_codec_desc_new(&e, 0, 4, 4096, NULL, key), QS_EINVAL);
    assert_int_equal(qs_codec_desc_new(&e, 4, 0, 4096, NULL, key), QS_EINVAL);
    assert_int_equal(qs_codec_desc_new(&e, 250, 6, 4096, NULL, key), QS_EINVAL);
    assert_int_equal(qs_codec_desc_new(&e, 4, 2, 15, NULL, key), QS_EINVAL);
    assert_int_equal(qs_codec_desc_new(&e, 4, 2, (64u << 20) + 1, NULL, key), QS_EINVAL);
    assert_int_equal(qs_codec_desc_new(&e, 200, 55, 64u << 20, NULL, key), 0);
}

/* ---- pool -------------------------------------------------------------------------------- */

struct ptask {
    struct qs_pool_task t;
    int value, result;
    unsigned worker;
    int *lane; /* serial tasks: position counter they check and advance */
};

static void ptask_run(struct qs_pool_task *t, unsigned worker)
{
    struct ptask *p = (struct ptask *)t;
    p->result = p->value * p->value;
    p->worker = worker;
    if (p->t.serial) {
        /* Serial tasks run one at a time and in order: no lock needed here. */
        int seen = *p->lane;
        for (volatile int spin = 0; spin < 2000; spin++)
            ;
        if (seen != p->value / 2 || *p->lane != seen)
            p->result = -1;
        *p->lane = seen + 1;
    }
}

static void test_pool(void **state)
{
    (void)state;
    for (unsigned threads = 0; threads <= 3; threads++) {
        struct qs_pool *p;
        assert_int_equal(qs_pool_new(&p, threads), 0);
        assert_int_equal(qs_pool_threads(p), threads);
        struct ptask tasks[50];
        memset(tasks, 0, sizeof(tasks));
        int lane = 0;
        for (int i = 0; i < 50; i++) {
            tasks[i].t.fn = ptask_run;
            tasks[i].t.serial = i % 2 == 0; /* even ones in the serial lane */
            tasks[i].value = i;
            tasks[i].lane = &lane;
            qs_pool_submit(p, &tasks[i].t);
        }
        for (int i = 49; i >= 0; i--) {
            qs_pool_wait(p, &tasks[i].t);
            assert_true(qs_pool_done(p, &tasks[i].t));
            assert_int_equal(tasks[i].result, i * i);
            assert_true(tasks[i].worker < (threads ? threads : 1));
        }
        assert_int_equal(lane, 25); /* every serial task ran, in order */
        qs_pool_free(p);
    }
    struct qs_pool *p;
    assert_int_equal(qs_pool_new(&p, 65), QS_EINVAL);
    qs_pool_free(NULL);
}

/* Two lanes on a 2-thread pool: the first task of lane A waits until lane B's first task
 * has run, which only works when each stream has a lane of its own (with one shared serial
 * lane, B's task queues behind A's and A waits out its 5 s bound). Order in each lane is
 * kept. */
struct ltask {
    struct qs_pool_task t;
    atomic_int *b_ran;
    int *order, want;
    int ok;
};

static void ltask_a(struct qs_pool_task *t, unsigned worker)
{
    struct ltask *l = (struct ltask *)t;
    l->ok = *l->order == l->want;
    (*l->order)++;
    if (l->want == 0) {
        for (int i = 0; i < 5000 && !atomic_load(l->b_ran); i++)
            usleep(1000);
        l->ok = l->ok && atomic_load(l->b_ran);
    }
}

static void ltask_b(struct qs_pool_task *t, unsigned worker)
{
    struct ltask *l = (struct ltask *)t;
    l->ok = *l->order == l->want;
    (*l->order)++;
    atomic_store(l->b_ran, 1);
}

static void test_pool_lanes(void **state)
{
    (void)state;
    struct qs_pool *p;
    assert_int_equal(qs_pool_new(&p, 2), 0);
    struct qs_pool_lane la, lb;
    qs_pool_lane_init(&la);
    qs_pool_lane_init(&lb);
    atomic_int b_ran = 0;
    int oa = 0, ob = 0;
    struct ltask a[10], b[10];
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    for (int i = 0; i < 10; i++) {
        a[i] = (struct ltask){
            .t = {.fn = ltask_a, .lane = &la}, .b_ran = &b_ran, .order = &oa, .want = i};
        qs_pool_submit(p, &a[i].t);
    }
    for (int i = 0; i < 10; i++) {
        b[i] = (struct ltask){
            .t = {.fn = ltask_b, .lane = &lb}, .b_ran = &b_ran, .order = &ob, .want = i};
        qs_pool_submit(p, &b[i].t);
    }
    for (int i = 0; i < 10; i++) {
        qs_pool_wait(p, &a[i].t);
        qs_pool_wait(p, &b[i].t);
        assert_true(a[i].ok);
        assert_true(b[i].ok);
    }
    assert_int_equal(oa, 10);
    assert_int_equal(ob, 10);
    qs_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aes_gcm_kat),
        cmocka_unit_test(test_blake2b_kat),
        cmocka_unit_test(test_kdf_kat),
        cmocka_unit_test(test_crc32c_kat),
        cmocka_unit_test(test_shard_header_format),
        cmocka_unit_test(test_rs_reference),
        cmocka_unit_test(test_compress_roundtrip),
        cmocka_unit_test(test_desc_format),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_pool_lanes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
