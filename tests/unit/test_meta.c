/* Unit tests for lib/meta: key layout against independently computed vectors, path
 * cleaning, record round trips and rejections, sealing with lost, corrupt, stale and
 * foreign pieces, wrong keys and versions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/codec.h"
#include "codec/hash.h"
#include "meta/key.h"
#include "meta/record.h"
#include "meta/seal.h"
#include "util/crc32c.h"
#include "util/mem.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static const uint8_t data_key[32] = "data key for the meta unit test";
static const uint8_t meta_key[32] = "meta key for the meta unit test";
static const uint8_t other_key[32] = "some other 32-byte key, not ours";
static const char *name = "/someprefix/meta/cb50f9a76687234c7c676ae4ef731ba9";

/* ---- keys and paths ------------------------------------------------------------------ */

/* Expected keys were computed independently with Python 3:
 *   hashlib.blake2b(rel.encode(), digest_size=16).hexdigest()
 * for the relative name rel given in each comment. */
struct key_vec {
    const char *prefix, *root, *path, *key;
};

static const struct key_vec key_vecs[] = {
    /* rel "dir/file.txt" */
    {"someprefix", "/some/root", "/some/root/dir/file.txt",
     "/someprefix/meta/cb50f9a76687234c7c676ae4ef731ba9"},
    /* same file through repeated slashes, `.`, `..` and a trailing slash */
    {"someprefix", "/some/root/", "/some/root//dir/./sub/../file.txt/",
     "/someprefix/meta/cb50f9a76687234c7c676ae4ef731ba9"},
    /* rel "a/c" */
    {"p", "/r", "/r/a/./b/../c", "/p/meta/a6ee9af70b6e5cbe5414fbfaebffefa6"},
    /* no root: the whole cleaned path, leading slash included: "/mnt/data/x" */
    {"zstor", NULL, "/mnt//data/./x", "/zstor/meta/34101ebd6f17bade6825fbc7611476c0"},
    {"zstor", "", "/mnt/data/x/", "/zstor/meta/34101ebd6f17bade6825fbc7611476c0"},
    /* rel "ünïcødé/文件.txt" (22 UTF-8 bytes) */
    {"q", "/r", "/r/ünïcødé/文件.txt", "/q/meta/055426a04b258ea6ef886e03a3faec0b"},
    /* root "/": rel "etc/passwd" */
    {"q", "/", "/etc/passwd", "/q/meta/959ba80f71b56719861036215ccf80ea"},
    /* rel "zdb-namespace" */
    {"qsfs", "/data/index/zdbfs-meta", "/data/index/zdbfs-meta/zdb-namespace",
     "/qsfs/meta/40fa993a809d8fc04343a690eef576f3"},
};

static void test_key_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(key_vecs) / sizeof(key_vecs[0]); i++) {
        const struct key_vec *v = &key_vecs[i];
        char key[ZSTOR_META_KEY_MAX + 1];
        assert_int_equal(zstor_meta_key(v->prefix, v->root, v->path, key), 0);
        assert_string_equal(key, v->key);
        assert_int_equal(zstor_meta_key_check(v->prefix, key), 0);
    }
    /* The hash alone, and a long name (4000 x "x", also from hashlib). */
    char hex[33];
    zstor_meta_path_hash("", hex);
    assert_string_equal(hex, "cae66941d9efbd404e4d88758ea67670");
    char *lng = malloc(4001);
    memset(lng, 'x', 4000);
    lng[4000] = '\0';
    zstor_meta_path_hash(lng, hex);
    assert_string_equal(hex, "f45756ad63b8f1b9707dc98d584dd97c");
    free(lng);
    char start[ZSTOR_META_KEY_MAX + 1];
    assert_int_equal(zstor_meta_key_scan_prefix("someprefix", start), 0);
    assert_string_equal(start, "/someprefix/meta/");
}

static void test_key_errors(void **state)
{
    (void)state;
    char key[ZSTOR_META_KEY_MAX + 1];
    /* outside root: the message names both */
    assert_int_equal(zstor_meta_key("p", "/mnt/a", "/mnt/ab/file", key), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "'/mnt/ab/file'"));
    assert_non_null(strstr(qs_err_msg(), "'/mnt/a'"));
    assert_non_null(strstr(qs_err_msg(), "outside root"));
    /* `..` climbing out of root */
    assert_int_equal(zstor_meta_key("p", "/mnt/a", "/mnt/a/../b/file", key), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "'/mnt/b/file' is outside root '/mnt/a'"));
    /* relative path with an absolute root */
    assert_int_equal(zstor_meta_key("p", "/mnt/a", "x/file", key), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "absolute"));
    /* the root itself */
    assert_int_equal(zstor_meta_key("p", "/mnt/a", "/mnt/a/", key), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "root"));
    assert_int_equal(zstor_meta_key("p", "/", "/", key), QS_EINVAL);
    /* empty, invalid UTF-8, too long */
    assert_int_equal(zstor_meta_key("p", "/r", "", key), QS_EINVAL);
    assert_int_equal(zstor_meta_key("p", "/r", "/r/\xff\xfe", key), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "UTF-8"));
    assert_int_equal(zstor_meta_key("p", "/r", "/r/\xc0\xaf", key), QS_EINVAL);     /* overlong */
    assert_int_equal(zstor_meta_key("p", "/r", "/r/\xed\xa0\x80", key), QS_EINVAL); /* surrogate */
    assert_int_equal(zstor_meta_key("p", "/r", "/r/\xf4\x90\x80\x80", key), QS_EINVAL);
    assert_int_equal(zstor_meta_key("p", "/r", "/r/\xe2\x82", key), QS_EINVAL); /* cut */
    char *lng = malloc(ZSTOR_META_PATH_MAX + 10);
    memset(lng, 'a', ZSTOR_META_PATH_MAX + 1);
    lng[0] = '/';
    lng[ZSTOR_META_PATH_MAX + 1] = '\0';
    assert_int_equal(zstor_meta_key("p", NULL, lng, key), QS_EINVAL);
    free(lng);
    /* prefix: at most 255 - 39 bytes */
    char pre[260];
    memset(pre, 'p', sizeof(pre));
    pre[216] = '\0';
    assert_int_equal(zstor_meta_key(pre, NULL, "/x", key), 0);
    assert_int_equal(strlen(key), 255);
    pre[216] = 'p';
    pre[217] = '\0';
    assert_int_equal(zstor_meta_key(pre, NULL, "/x", key), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "prefix"));
    /* key check */
    assert_int_equal(zstor_meta_key_check("p", "/p/meta/a6ee9af70b6e5cbe5414fbfaebffefa6"), 0);
    assert_int_equal(zstor_meta_key_check("p", "/q/meta/a6ee9af70b6e5cbe5414fbfaebffefa6"),
                     QS_EINVAL);
    assert_int_equal(zstor_meta_key_check("p", "/p/meta/A6EE9AF70B6E5CBE5414FBFAEBFFEFA6"),
                     QS_EINVAL);
    assert_int_equal(zstor_meta_key_check("p", "/p/meta/a6ee9af70b6e5cbe5414fbfaebffefa"),
                     QS_EINVAL);
    assert_int_equal(zstor_meta_key_check("p", "/p/meta/a6ee9af70b6e5cbe5414fbfaebffefa66"),
                     QS_EINVAL);
}

/* Cleaning: the Plan 9 / Go path.Clean rules the path-clean crate implements. */
static void test_path_clean(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"abc", "abc"},
        {"abc/def", "abc/def"},
        {"a/b/c", "a/b/c"},
        {".", "."},
        {"..", ".."},
        {"../..", "../.."},
        {"../../abc", "../../abc"},
        {"/abc", "/abc"},
        {"/", "/"},
        {"abc/", "abc"},
        {"abc/def/", "abc/def"},
        {"/abc/", "/abc"},
        {"//", "/"},
        {"abc//def//ghi", "abc/def/ghi"},
        {"//abc", "/abc"},
        {"///abc", "/abc"},
        {"//abc//", "/abc"},
        {"abc//", "abc"},
        {"abc/./def", "abc/def"},
        {"/./abc/def", "/abc/def"},
        {"abc/.", "abc"},
        {"abc/def/ghi/../jkl", "abc/def/jkl"},
        {"abc/def/../ghi/../jkl", "abc/jkl"},
        {"abc/def/..", "abc"},
        {"abc/def/../..", "."},
        {"/abc/def/../..", "/"},
        {"abc/def/../../..", ".."},
        {"/abc/def/../../..", "/"},
        {"abc/def/../../../ghi/jkl/../../../mno", "../../mno"},
        {"/../abc", "/abc"},
        {"abc/./../def", "def"},
        {"abc//./../def", "def"},
        {"abc/../../././../def", "../../def"},
        {"..a/b", "..a/b"},
        {".../a", ".../a"},
        {"a/.b/..c", "a/.b/..c"},
        {"ünï/./cødé/../x", "ünï/x"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out;
        assert_int_equal(zstor_meta_path_clean(cases[i][0], &out), 0);
        if (strcmp(out, cases[i][1]) != 0)
            fail_msg("clean(%s) = %s, want %s", cases[i][0], out, cases[i][1]);
        free(out);
    }
    char *out = (char *)1;
    assert_int_equal(zstor_meta_path_clean("", &out), QS_EINVAL);
    assert_null(out);

    /* relative names: no root keeps the cleaned path; roots match whole components */
    static const char *const rel[][3] = {
        {NULL, "/a/b/", "/a/b"},      {"/a", "/a/b", "b"}, {"/a/", "/a//b/c/", "b/c"},
        {"/a/./x/..", "/a/b", "b"},   {"/", "/a", "a"},    {"a", "a/b", "b"},
        {"/a/b", "/a/b/c/../d", "d"},
    };
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        assert_int_equal(zstor_meta_path_rel(rel[i][0], rel[i][1], &out), 0);
        assert_string_equal(out, rel[i][2]);
        free(out);
    }
}

static void test_key_path(void **state)
{
    (void)state;
    static const char *const ok[][3] = {
        {"/data/file", NULL, "/data/file"},
        {"/data/file", "/other", "/other/file"},
        {"/data/file", "/other/", "/other/file"},
        {"x/", "/k", "/k/x"},
        {"a/.", "/k", "/k/a"},
        {"a/./", "k", "k/a"},
        {"fichier-ü.txt", "/k", "/k/fichier-ü.txt"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char *out;
        assert_int_equal(zstor_meta_key_path(ok[i][0], ok[i][1], &out), 0);
        assert_string_equal(out, ok[i][2]);
        free(out);
    }
    static const char *const bad[] = {"/", ".", "a/..", "", "//", "./"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *out;
        assert_int_equal(zstor_meta_key_path(bad[i], "/k", &out), QS_EINVAL);
        assert_null(out);
    }
    char *out;
    assert_int_equal(zstor_meta_key_path("/a/f", "", &out), QS_EINVAL);
}

static void test_resolve(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/qsfs-meta-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char *real;
    assert_int_equal(zstor_meta_resolve(tmpl, &real), 0); /* /tmp may itself be a link */
    char p[512], q[512], want[600];
    snprintf(p, sizeof(p), "%s/dir", tmpl);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(q, sizeof(q), "%s/link", tmpl);
    assert_int_equal(symlink(p, q), 0);
    snprintf(p, sizeof(p), "%s/dir/f", tmpl);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);

    char *out;
    snprintf(q, sizeof(q), "%s/link/./f", tmpl); /* existing file through a symlink */
    assert_int_equal(zstor_meta_resolve(q, &out), 0);
    snprintf(want, sizeof(want), "%s/dir/f", real);
    assert_string_equal(out, want);
    free(out);
    snprintf(q, sizeof(q), "%s/link/new-file", tmpl); /* not there yet */
    assert_int_equal(zstor_meta_resolve(q, &out), 0);
    snprintf(want, sizeof(want), "%s/dir/new-file", real);
    assert_string_equal(out, want);
    free(out);
    snprintf(q, sizeof(q), "%s/nodir/f", tmpl); /* parent missing */
    assert_int_equal(zstor_meta_resolve(q, &out), QS_ENOTFOUND);
    assert_non_null(strstr(qs_err_msg(), "does not exist"));

    snprintf(q, sizeof(q), "%s/link", tmpl);
    unlink(q);
    unlink(p);
    snprintf(p, sizeof(p), "%s/dir", tmpl);
    rmdir(p);
    rmdir(tmpl);
    free(real);
}

/* ---- records ------------------------------------------------------------------------ */

static struct qs_codec_desc make_desc(unsigned k, unsigned m, uint32_t chunk)
{
    struct qs_codec_desc d;
    static const uint8_t id[16] = "meta-test-fileid";
    assert_int_equal(qs_codec_desc_new(&d, k, m, chunk, id, data_key), 0);
    return d;
}

enum pattern {
    P_SEQ_CONSECUTIVE, /* one id per chunk, consecutive */
    P_SEQ_INTERLEAVED, /* ids with gaps (another writer in the namespace) */
    P_SEQ_SPLIT,       /* 3 parts per chunk, last chunk 1 part */
    P_BYTES,           /* opaque keys of varying length, 1-2 parts */
};

/* Key j of shard i of chunk c under pattern p (deterministic, so tests can check). */
static unsigned pattern_keys(enum pattern p, unsigned i, uint64_t c, uint64_t nchunks,
                             struct zstor_meta_keyref *k, uint8_t (*kb)[300])
{
    switch (p) {
    case P_SEQ_CONSECUTIVE:
        k[0].id = 1000 * i + c;
        return 1;
    case P_SEQ_INTERLEAVED:
        k[0].id = 7 * c + i + (c % 5 == 0 ? 3 : 0);
        return 1;
    case P_SEQ_SPLIT: {
        unsigned parts = c + 1 == nchunks ? 1 : 3;
        for (unsigned j = 0; j < parts; j++)
            k[j].id = (uint64_t)i << 40 | (3 * c + j);
        return parts;
    }
    case P_BYTES: {
        unsigned parts = 1 + (c % 3 == 1);
        for (unsigned j = 0; j < parts; j++) {
            int n = snprintf((char *)kb[j], 300, "%02u/%06llu.%u", i, (unsigned long long)c, j);
            if (c % 7 == 3) { /* some long keys */
                memset(kb[j] + n, 'k', 200);
                n += 200;
            }
            k[j].p = kb[j];
            k[j].len = (size_t)n;
        }
        return parts;
    }
    }
    return 0;
}

static void build_record(struct zstor_meta_record *r, unsigned k, unsigned m, uint64_t nchunks,
                         enum pattern p, unsigned flags, const char *path)
{
    struct qs_codec_desc d = make_desc(k, m, 4u << 20);
    assert_int_equal(zstor_meta_record_init(r, &d, path, flags), 0);
    r->size = nchunks ? (nchunks - 1) * (4u << 20) + 12345 : 0;
    r->nchunks = nchunks;
    r->mtime_sec = -12345678901ll;
    r->mtime_nsec = 999999999;
    r->mode = 0100644;
    r->stored = 1700000000;
    r->compress = QS_COMPRESS_ZSTD;
    r->level = -5;
    for (unsigned j = 0; j < 16; j++)
        r->checksum[j] = (uint8_t)(j * 17);
    for (unsigned i = 0; i < r->nshards; i++) {
        char addr[64];
        snprintf(addr, sizeof(addr), "[2001:db8::%x]:%u", i, 9900 + i);
        assert_int_equal(
            zstor_meta_shard_set(r, i, addr, i % 2 ? "ns-odd" : NULL,
                                 p == P_BYTES ? ZSTOR_META_KEY_BYTES : ZSTOR_META_KEY_SEQ),
            0);
    }
    struct zstor_meta_keyref keys[4];
    uint8_t kb[4][300];
    for (uint64_t c = 0; c < nchunks; c++) {
        for (unsigned i = 0; i < r->nshards; i++) {
            memset(keys, 0, sizeof(keys));
            unsigned n = pattern_keys(p, i, c, nchunks, keys, kb);
            assert_int_equal(zstor_meta_shard_add(r, i, keys, n, (uint32_t)(c * 31 + i)), 0);
        }
    }
}

/* Checks every key of r against the pattern. */
static void check_record(const struct zstor_meta_record *r, enum pattern p, unsigned flags)
{
    for (unsigned i = 0; i < r->nshards; i++) {
        if (r->shard[i].flags & ZSTOR_META_SHARD_ABSENT)
            continue;
        for (uint64_t c = 0; c < r->nchunks; c++) {
            struct zstor_meta_keyref want[4], got[4];
            uint8_t kb[4][300];
            memset(want, 0, sizeof(want));
            unsigned wn = pattern_keys(p, i, c, r->nchunks, want, kb), gn;
            uint32_t crc;
            assert_int_equal(zstor_meta_chunk_keys(r, i, c, got, 4, &gn, &crc), 0);
            assert_int_equal(gn, wn);
            assert_int_equal(crc, flags & ZSTOR_META_F_CRC ? (uint32_t)(c * 31 + i) : 0);
            for (unsigned j = 0; j < gn; j++) {
                if (p == P_BYTES) {
                    assert_int_equal(got[j].len, want[j].len);
                    assert_memory_equal(got[j].p, want[j].p, want[j].len);
                } else {
                    assert_true(got[j].id == want[j].id);
                }
            }
        }
    }
}

static void check_same_fields(const struct zstor_meta_record *a, const struct zstor_meta_record *b)
{
    assert_int_equal(a->flags, b->flags);
    assert_string_equal(a->path, b->path);
    assert_true(a->size == b->size);
    assert_true(a->mtime_sec == b->mtime_sec);
    assert_int_equal(a->mtime_nsec, b->mtime_nsec);
    assert_int_equal(a->mode, b->mode);
    assert_true(a->stored == b->stored);
    assert_true(a->nchunks == b->nchunks);
    assert_memory_equal(a->checksum, b->checksum, 16);
    assert_memory_equal(&a->desc, &b->desc, sizeof(a->desc));
    assert_int_equal(a->compress, b->compress);
    assert_int_equal(a->level, b->level);
    assert_int_equal(a->nshards, b->nshards);
    for (unsigned i = 0; i < a->nshards; i++) {
        assert_int_equal(a->shard[i].flags, b->shard[i].flags);
        assert_string_equal(a->shard[i].address ? a->shard[i].address : "",
                            b->shard[i].address ? b->shard[i].address : "");
        assert_string_equal(a->shard[i].ns ? a->shard[i].ns : "",
                            b->shard[i].ns ? b->shard[i].ns : "");
        if (!(a->shard[i].flags & ZSTOR_META_SHARD_ABSENT)) {
            assert_int_equal(a->shard[i].kind, b->shard[i].kind);
            assert_true(a->shard[i].nkeys == b->shard[i].nkeys);
        }
    }
}

/* encode -> decode -> compare -> encode again gives the same bytes. Returns the size. */
static size_t roundtrip(const struct zstor_meta_record *r, enum pattern p)
{
    uint8_t *enc, *enc2;
    size_t len, len2;
    struct zstor_meta_record back;
    assert_int_equal(zstor_meta_record_encode(r, &enc, &len), 0);
    int rc = zstor_meta_record_decode(&back, enc, len);
    if (rc)
        fail_msg("decode: %s", qs_err_msg());
    check_same_fields(r, &back);
    check_record(&back, p, r->flags);
    assert_int_equal(zstor_meta_record_encode(&back, &enc2, &len2), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(enc, enc2, len);
    zstor_meta_record_free(&back);
    free(enc);
    free(enc2);
    return len;
}

static void test_record_roundtrips(void **state)
{
    (void)state;
    static const struct {
        unsigned k, m;
        uint64_t nchunks;
        enum pattern p;
        unsigned flags;
    } cases[] = {
        {2, 1, 0, P_SEQ_CONSECUTIVE, 0},
        {2, 1, 0, P_SEQ_CONSECUTIVE, ZSTOR_META_F_CRC},
        {4, 2, 1, P_SEQ_CONSECUTIVE, ZSTOR_META_F_CRC},
        {4, 2, 1, P_BYTES, 0},
        {4, 2, 100, P_SEQ_INTERLEAVED, ZSTOR_META_F_CRC},
        {10, 4, 37, P_SEQ_SPLIT, 0},
        {10, 4, 37, P_SEQ_SPLIT, ZSTOR_META_F_CRC},
        {3, 3, 50, P_BYTES, ZSTOR_META_F_CRC},
        {1, 1, 2, P_SEQ_SPLIT, 0},
        {200, 55, 3, P_SEQ_CONSECUTIVE, ZSTOR_META_F_CRC},
    };
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        struct zstor_meta_record r;
        build_record(&r, cases[t].k, cases[t].m, cases[t].nchunks, cases[t].p, cases[t].flags,
                     "dir/file.bin");
        check_record(&r, cases[t].p, cases[t].flags);
        roundtrip(&r, cases[t].p);
        if (cases[t].nchunks)
            assert_int_equal(zstor_meta_record_check(&r), 0);
        zstor_meta_record_free(&r);
    }
}

/* 100 GiB in 4 MiB chunks, 4+2: consecutive ids cost one run per shard. */
static void test_record_many_chunks(void **state)
{
    (void)state;
    struct zstor_meta_record r;
    uint64_t nchunks = 25600;
    build_record(&r, 4, 2, nchunks, P_SEQ_CONSECUTIVE, 0, "big/file");
    r.size = 100ull << 30;
    assert_int_equal(zstor_meta_record_check(&r), 0);
    for (unsigned i = 0; i < r.nshards; i++) {
        assert_int_equal(r.shard[i].nlay, 1);
        assert_int_equal(r.shard[i].nids, 1);
    }
    size_t len = roundtrip(&r, P_SEQ_CONSECUTIVE);
    assert_true(len < 500);
    zstor_meta_record_free(&r);

    /* With a CRC per chunk and shard: 4 bytes each, nothing more. */
    build_record(&r, 4, 2, nchunks, P_SEQ_CONSECUTIVE, ZSTOR_META_F_CRC, "big/file");
    len = roundtrip(&r, P_SEQ_CONSECUTIVE);
    assert_true(len < 500 + nchunks * 6 * 4);
    zstor_meta_record_free(&r);

    /* Interleaved ids: a few bytes per run, still far below 8 bytes per key. */
    build_record(&r, 4, 2, nchunks, P_SEQ_INTERLEAVED, 0, "big/file");
    len = roundtrip(&r, P_SEQ_INTERLEAVED);
    assert_true(len < nchunks * 6 * 3);
    zstor_meta_record_free(&r);
}

static void test_record_paths(void **state)
{
    (void)state;
    char *lng = malloc(ZSTOR_META_PATH_MAX + 2);
    for (size_t i = 0; i < ZSTOR_META_PATH_MAX; i++)
        lng[i] = (char)('a' + i % 26);
    lng[ZSTOR_META_PATH_MAX] = '\0';
    const char *paths[] = {"a", "ünïcødé/文件.txt", "/absolute/when/no/root", "emoji/😀.bin", lng};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct zstor_meta_record r;
        build_record(&r, 2, 2, 3, P_SEQ_SPLIT, ZSTOR_META_F_CRC, paths[i]);
        roundtrip(&r, P_SEQ_SPLIT);
        zstor_meta_record_free(&r);
    }
    /* too long, empty, invalid UTF-8 */
    struct zstor_meta_record r;
    struct qs_codec_desc d = make_desc(2, 2, 1 << 20);
    lng[ZSTOR_META_PATH_MAX] = 'x';
    lng[ZSTOR_META_PATH_MAX + 1] = '\0';
    assert_int_equal(zstor_meta_record_init(&r, &d, lng, 0), QS_EINVAL);
    zstor_meta_record_free(&r);
    assert_int_equal(zstor_meta_record_init(&r, &d, "", 0), QS_EINVAL);
    zstor_meta_record_free(&r);
    assert_int_equal(zstor_meta_record_init(&r, &d, "a\xff", 0), QS_EINVAL);
    zstor_meta_record_free(&r);
    /* a name is never a path that climbs: refused when built, as when decoded */
    const char *climb[] = {"..", "d/../x", "../x", "a/..", "./a", "a//b", "a/", "//a", "/"};
    for (size_t i = 0; i < sizeof(climb) / sizeof(climb[0]); i++) {
        if (zstor_meta_record_init(&r, &d, climb[i], 0) != QS_EINVAL)
            fail_msg("record_init accepted '%s'", climb[i]);
        zstor_meta_record_free(&r);
    }
    assert_int_equal(zstor_meta_name_check("a/b", 0), 0);
    assert_int_equal(zstor_meta_name_check("/a/b", 0), QS_EINVAL);
    assert_int_equal(zstor_meta_name_check("/a/b", 1), 0);
    assert_int_equal(zstor_meta_name_check("a/..b/c..", 0), 0);
    free(lng);
}

static void test_record_absent_and_rebuild(void **state)
{
    (void)state;
    struct zstor_meta_record r;
    build_record(&r, 4, 2, 9, P_SEQ_SPLIT, ZSTOR_META_F_CRC, "f");
    zstor_meta_shard_absent(&r, 5);
    struct zstor_meta_keyref k[4];
    unsigned n;
    assert_int_equal(zstor_meta_chunk_keys(&r, 5, 0, k, 4, &n, NULL), QS_ENOTFOUND);
    assert_int_equal(zstor_meta_shard_add(&r, 5, k, 1, 0), QS_EINVAL);
    roundtrip(&r, P_SEQ_SPLIT);
    assert_int_equal(zstor_meta_record_check(&r), 0);
    /* too few shards left */
    zstor_meta_shard_absent(&r, 4);
    zstor_meta_shard_absent(&r, 0);
    assert_int_equal(zstor_meta_record_check(&r), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "only 3 of 6 shards"));

    /* a rebuild moves shard 0 to a new backend: set clears the keys */
    assert_int_equal(zstor_meta_shard_set(&r, 0, "dir:///srv/new", "", ZSTOR_META_KEY_SEQ), 0);
    uint8_t *enc;
    size_t len;
    assert_int_equal(zstor_meta_record_encode(&r, &enc, &len), QS_EINVAL); /* 0 of 9 chunks */
    assert_non_null(strstr(qs_err_msg(), "shard 0 holds 0 chunks"));
    for (uint64_t c = 0; c < 9; c++) {
        struct zstor_meta_keyref want[4];
        uint8_t kb[4][300];
        unsigned wn = pattern_keys(P_SEQ_SPLIT, 0, c, 9, want, kb);
        assert_int_equal(zstor_meta_shard_add(&r, 0, want, wn, (uint32_t)(c * 31)), 0);
    }
    assert_int_equal(zstor_meta_record_encode(&r, &enc, &len), 0);
    struct zstor_meta_record back;
    assert_int_equal(zstor_meta_record_decode(&back, enc, len), 0);
    assert_string_equal(back.shard[0].address, "dir:///srv/new");
    assert_int_equal(back.shard[4].flags, ZSTOR_META_SHARD_ABSENT);
    check_record(&back, P_SEQ_SPLIT, ZSTOR_META_F_CRC);
    zstor_meta_record_free(&back);
    free(enc);
    zstor_meta_record_free(&r);
}

static void test_record_builder_errors(void **state)
{
    (void)state;
    struct zstor_meta_record r;
    struct qs_codec_desc d = make_desc(2, 1, 1 << 20);
    assert_int_equal(zstor_meta_record_init(&r, &d, "f", 0x80), QS_EINVAL);
    zstor_meta_record_free(&r);
    d.k = 0;
    assert_int_equal(zstor_meta_record_init(&r, &d, "f", 0), QS_EINVAL);
    zstor_meta_record_free(&r);
    d = make_desc(2, 1, 1 << 20);
    assert_int_equal(zstor_meta_record_init(&r, &d, "f", 0), 0);
    assert_int_equal(zstor_meta_shard_set(&r, 3, "a:1", "", ZSTOR_META_KEY_SEQ), QS_EINVAL);
    assert_int_equal(zstor_meta_shard_set(&r, 0, "", "", ZSTOR_META_KEY_SEQ), QS_EINVAL);
    char ns[300];
    memset(ns, 'n', sizeof(ns));
    ns[256] = '\0';
    assert_int_equal(zstor_meta_shard_set(&r, 0, "a:1", ns, ZSTOR_META_KEY_SEQ), QS_EINVAL);
    assert_int_equal(zstor_meta_shard_set(&r, 0, "a:1", "", (enum zstor_meta_keykind)7), QS_EINVAL);
    assert_int_equal(zstor_meta_shard_set(&r, 0, "a:1", "", ZSTOR_META_KEY_SEQ), 0);
    assert_int_equal(zstor_meta_shard_set(&r, 1, "dir:///x", "", ZSTOR_META_KEY_BYTES), 0);
    struct zstor_meta_keyref k[2] = {{.id = UINT64_MAX}, {.id = 5}};
    assert_int_equal(zstor_meta_shard_add(&r, 0, k, 0, 0), QS_EINVAL);
    assert_int_equal(zstor_meta_shard_add(&r, 0, k, 1, 0), QS_EINVAL);
    assert_int_equal(zstor_meta_shard_add(&r, 0, k + 1, 1, 0), 0);
    uint8_t big[256] = {0};
    struct zstor_meta_keyref b = {.p = big, .len = 256};
    assert_int_equal(zstor_meta_shard_add(&r, 1, &b, 1, 0), QS_EINVAL);
    b.len = 0;
    assert_int_equal(zstor_meta_shard_add(&r, 1, &b, 1, 0), QS_EINVAL);
    b.len = 255;
    assert_int_equal(zstor_meta_shard_add(&r, 1, &b, 1, 0), 0);
    /* shards 0 and 1 have one chunk, the record says 0, shard 2 is absent */
    uint8_t *enc;
    size_t len;
    assert_int_equal(zstor_meta_record_encode(&r, &enc, &len), QS_EINVAL);
    r.nchunks = 1;
    r.size = 10;
    assert_int_equal(zstor_meta_record_encode(&r, &enc, &len), 0);
    free(enc);
    r.mtime_nsec = 1000000000u;
    assert_int_equal(zstor_meta_record_encode(&r, &enc, &len), QS_EINVAL);
    r.mtime_nsec = 0;
    r.level = 300;
    assert_int_equal(zstor_meta_record_encode(&r, &enc, &len), QS_EINVAL);
    r.level = 0;
    unsigned n;
    assert_int_equal(zstor_meta_chunk_keys(&r, 0, 1, k, 2, &n, NULL), QS_EINVAL);
    assert_int_equal(zstor_meta_chunk_keys(&r, 9, 0, k, 2, &n, NULL), QS_EINVAL);
    /* nchunks must match size for a whole stream */
    r.size = (1 << 20) + 1;
    assert_int_equal(zstor_meta_record_check(&r), QS_ECORRUPT);
    zstor_meta_record_free(&r);
}

static void test_record_data_key(void **state)
{
    (void)state;
    struct zstor_meta_record r;
    build_record(&r, 2, 1, 1, P_SEQ_CONSECUTIVE, 0, "secret/file");
    assert_int_equal(zstor_meta_check_data_key(&r, data_key), 0);
    assert_int_equal(zstor_meta_check_data_key(&r, other_key), QS_EDENIED);
    assert_non_null(strstr(qs_err_msg(), "data key"));
    assert_non_null(strstr(qs_err_msg(), "secret/file"));
    /* The record never holds the data key or anything derived from it but the check value. */
    uint8_t *enc;
    size_t len;
    assert_int_equal(zstor_meta_record_encode(&r, &enc, &len), 0);
    assert_null(memmem(enc, len, data_key, 8));
    struct qs_codec_stream s;
    assert_int_equal(qs_codec_stream_init(&s, &r.desc, data_key), 0);
    assert_null(memmem(enc, len, s.data_key, 8));
    qs_codec_stream_free(&s);
    free(enc);
    zstor_meta_record_free(&r);
}

static void fix_record_crc(uint8_t *p, size_t len)
{
    qs_put32(p + len - 4, ~qs_crc32c_update(~0u, p, len - 4));
}

static void test_record_rejects(void **state)
{
    (void)state;
    struct zstor_meta_record r, back;
    build_record(&r, 2, 2, 5, P_BYTES, ZSTOR_META_F_CRC, "x/y");
    uint8_t *enc;
    size_t len;
    assert_int_equal(zstor_meta_record_encode(&r, &enc, &len), 0);
    zstor_meta_record_free(&r);

    /* every truncation */
    for (size_t n = 0; n < len; n++) {
        assert_int_not_equal(zstor_meta_record_decode(&back, enc, n), 0);
        zstor_meta_record_free(&back);
    }
    /* every single bit flip is caught (checksum, or a field check) */
    uint8_t *m = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        memcpy(m, enc, len);
        m[i] ^= (uint8_t)(1u << (i % 8));
        assert_int_not_equal(zstor_meta_record_decode(&back, m, len), 0);
        zstor_meta_record_free(&back);
    }
    /* with the checksum fixed up, flips either fail cleanly or give a record that
     * re-encodes to exactly the same bytes */
    for (size_t i = 0; i < len - 4; i++) {
        memcpy(m, enc, len);
        m[i] ^= (uint8_t)(1u << (i % 8));
        fix_record_crc(m, len);
        if (zstor_meta_record_decode(&back, m, len) == 0) {
            uint8_t *again;
            size_t alen;
            assert_int_equal(zstor_meta_record_encode(&back, &again, &alen), 0);
            assert_int_equal(alen, len);
            assert_memory_equal(again, m, len);
            free(again);
        }
        zstor_meta_record_free(&back);
    }
    /* a trailing byte */
    memcpy(m, enc, len);
    m[len] = 0;
    fix_record_crc(m, len + 1);
    assert_int_equal(zstor_meta_record_decode(&back, m, len + 1), QS_ECORRUPT);
    zstor_meta_record_free(&back);
    /* a newer version: a clear error, not "corrupt" */
    memcpy(m, enc, len);
    m[4] = 2;
    fix_record_crc(m, len);
    assert_int_equal(zstor_meta_record_decode(&back, m, len), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "version 2"));
    zstor_meta_record_free(&back);
    /* garbage */
    for (int t = 0; t < 200; t++) {
        size_t n = rnd() % 600;
        for (size_t i = 0; i < n; i++)
            m[i % (len + 1)] = (uint8_t)rnd();
        if (t % 2 && n >= 4)
            memcpy(m, "QSMR\x01", n >= 5 ? 5 : 4);
        assert_int_not_equal(zstor_meta_record_decode(&back, m, n < len ? n : len), 0);
        zstor_meta_record_free(&back);
    }
    free(m);
    free(enc);
}

/* Hand-made records: non-canonical and overflowing encodings are refused. */
static size_t hand_record(uint8_t *p, const uint8_t *tail, size_t tlen, uint64_t nchunks)
{
    struct qs_codec_desc d = make_desc(1, 1, 1 << 20);
    memset(p, 0, 112);
    memcpy(p, "QSMR\x01", 5);
    qs_put64(p + 8, nchunks << 20);
    qs_put64(p + 40, nchunks);
    qs_codec_desc_encode(&d, p + 64);
    memcpy(p + 112, tail, tlen);
    fix_record_crc(p, 112 + tlen + 4);
    return 112 + tlen + 4;
}

static void test_record_canonical(void **state)
{
    (void)state;
    uint8_t buf[512];
    struct zstor_meta_record r;
    /* path "f"; shard 0: seq, 1 run of 2 chunks x 1 part, ids run (0, 2); shard 1 absent */
    static const uint8_t good[] = {1, 'f', 0, 1, 'a', 0, 0, 1, 2, 1, 1, 0, 2, 1, 0, 0};
    size_t n = hand_record(buf, good, sizeof(good), 2);
    assert_int_equal(zstor_meta_record_decode(&r, buf, n), 0);
    assert_int_equal(r.shard[0].nkeys, 2);
    zstor_meta_record_free(&r);
    static const struct {
        const char *why;
        uint8_t tail[24];
        size_t len;
    } bad[] = {
        {"overlong varint", {0x81, 0x00, 'f', 0, 1, 'a', 0, 0, 1, 2, 1, 1, 0, 2, 1, 0, 0}, 17},
        {"two runs with the same parts",
         {1, 'f', 0, 1, 'a', 0, 0, 2, 1, 1, 1, 1, 1, 0, 2, 1, 0, 0},
         18},
        {"touching id runs", {1, 'f', 0, 1, 'a', 0, 0, 1, 2, 1, 2, 0, 1, 0, 1, 1, 0, 0}, 18},
        {"zero parts", {1, 'f', 0, 1, 'a', 0, 0, 1, 2, 0, 1, 0, 2, 1, 0, 0}, 16},
        {"too few ids", {1, 'f', 0, 1, 'a', 0, 0, 1, 2, 1, 1, 0, 1, 1, 0, 0}, 16},
        {"layout short", {1, 'f', 0, 1, 'a', 0, 0, 1, 1, 1, 1, 0, 1, 1, 0, 0}, 16},
        {"unknown key kind", {1, 'f', 0, 1, 'a', 0, 9, 1, 2, 1, 1, 0, 2, 1, 0, 0}, 16},
        {"unknown shard flag", {1, 'f', 4, 1, 'a', 0, 0, 1, 2, 1, 1, 0, 2, 1, 0, 0}, 16},
        {"empty address", {1, 'f', 0, 0, 0, 0, 1, 2, 1, 1, 0, 2, 1, 0, 0}, 15},
        {"empty path", {0, 0, 1, 'a', 0, 0, 1, 2, 1, 1, 0, 2, 1, 0, 0}, 15},
        /* names that would climb out of a target directory, or are not clean */
        {"path ..", {2, '.', '.', 0, 1, 'a', 0, 0, 1, 2, 1, 1, 0, 2, 1, 0, 0}, 17},
        {"path d/../x",
         {6, 'd', '/', '.', '.', '/', 'x', 0, 1, 'a', 0, 0, 1, 2, 1, 1, 0, 2, 1, 0, 0},
         21},
        {"path ./x", {3, '.', '/', 'x', 0, 1, 'a', 0, 0, 1, 2, 1, 1, 0, 2, 1, 0, 0}, 18},
        {"path a//b", {4, 'a', '/', '/', 'b', 0, 1, 'a', 0, 0, 1, 2, 1, 1, 0, 2, 1, 0, 0}, 19},
        {"path a/", {2, 'a', '/', 0, 1, 'a', 0, 0, 1, 2, 1, 1, 0, 2, 1, 0, 0}, 17},
        {"path /", {1, '/', 0, 1, 'a', 0, 0, 1, 2, 1, 1, 0, 2, 1, 0, 0}, 16},
        /* zigzag 3 = delta -2: the run would start at 2^64 - 2 and hold 2 ids */
        {"id overflow", {1, 'f', 0, 1, 'a', 0, 0, 1, 2, 1, 1, 3, 2, 1, 0, 0}, 16},
    };
    /* the embedded descriptor: k = 0 with a valid descriptor CRC is damage, a newer codec
     * version is "invalid" (not readable by this build) */
    n = hand_record(buf, good, sizeof(good), 2);
    buf[64 + 5] = 0;
    qs_put32(buf + 64 + 44, ~qs_crc32c_update(~0u, buf + 64, 44));
    fix_record_crc(buf, n);
    assert_int_equal(zstor_meta_record_decode(&r, buf, n), QS_ECORRUPT);
    zstor_meta_record_free(&r);
    n = hand_record(buf, good, sizeof(good), 2);
    buf[64 + 4] = 2;
    qs_put32(buf + 64 + 44, ~qs_crc32c_update(~0u, buf + 64, 44));
    fix_record_crc(buf, n);
    assert_int_equal(zstor_meta_record_decode(&r, buf, n), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "version"));
    zstor_meta_record_free(&r);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = hand_record(buf, bad[i].tail, bad[i].len, 2);
        int rc = zstor_meta_record_decode(&r, buf, n);
        if (rc != QS_ECORRUPT)
            fail_msg("%s: decode gave %d", bad[i].why, rc);
        zstor_meta_record_free(&r);
    }
}

/* ---- sealing ------------------------------------------------------------------------ */

static void seal_record(const struct zstor_meta_record *r, unsigned data, unsigned parity,
                        struct zstor_meta_sealed *s)
{
    int rc = zstor_meta_seal(r, name, meta_key, data, parity, s);
    if (rc)
        fail_msg("seal: %s", qs_err_msg());
    assert_int_equal(s->n, data + parity);
}

static int open_pieces(const struct zstor_meta_sealed *s, const unsigned *drop, unsigned ndrop,
                       struct zstor_meta_record *r, struct zstor_meta_open_info *info)
{
    const uint8_t *p[ZSTOR_META_PIECES_MAX];
    size_t len[ZSTOR_META_PIECES_MAX];
    for (unsigned i = 0; i < s->n; i++) {
        p[i] = zstor_meta_piece(s, i);
        len[i] = s->piece_len;
    }
    for (unsigned j = 0; j < ndrop; j++)
        p[drop[j]] = NULL;
    return zstor_meta_open(p, len, s->n, name, meta_key, r, info);
}

static void test_seal_lost_pieces(void **state)
{
    (void)state;
    static const unsigned shapes[][2] = {{2, 2}, {1, 0}, {1, 3}, {3, 2}, {4, 4}, {5, 1}};
    struct zstor_meta_record r;
    build_record(&r, 4, 2, 40, P_SEQ_SPLIT, ZSTOR_META_F_CRC, "ünï/file");
    for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
        unsigned data = shapes[t][0], parity = shapes[t][1], n = data + parity;
        struct zstor_meta_sealed s;
        seal_record(&r, data, parity, &s);
        /* every subset of lost pieces */
        for (unsigned mask = 0; mask < (1u << n); mask++) {
            unsigned drop[16], nd = 0;
            for (unsigned i = 0; i < n; i++)
                if (mask & (1u << i))
                    drop[nd++] = i;
            struct zstor_meta_record back;
            struct zstor_meta_open_info info;
            int rc = open_pieces(&s, drop, nd, &back, &info);
            if (nd <= parity) {
                if (rc)
                    fail_msg("%u+%u without mask %x: %s", data, parity, mask, qs_err_msg());
                check_same_fields(&r, &back);
                check_record(&back, P_SEQ_SPLIT, ZSTOR_META_F_CRC);
                assert_int_equal(info.ok, n - nd);
                assert_int_equal(info.missing, nd);
                assert_int_equal(info.data, data);
                assert_int_equal(info.parity, parity);
                for (unsigned i = 0; i < n; i++)
                    assert_int_equal(info.state[i], mask & (1u << i) ? ZSTOR_META_PIECE_MISSING
                                                                     : ZSTOR_META_PIECE_OK);
            } else if (nd == n) {
                assert_int_equal(rc, QS_ENOTFOUND);
                assert_non_null(strstr(qs_err_msg(), "no metadata"));
            } else {
                assert_int_equal(rc, QS_ETOOFEW);
                char want[64];
                snprintf(want, sizeof(want), "%u good piece(s) found, %u needed", n - nd, data);
                assert_non_null(strstr(qs_err_msg(), want));
            }
            zstor_meta_record_free(&back);
        }
        zstor_meta_sealed_free(&s);
    }
    zstor_meta_record_free(&r);
}

static void set_piece_crc(uint8_t *p, size_t len)
{
    uint32_t c = qs_crc32c_update(~0u, p, 40);
    qs_put32(p + 40, ~qs_crc32c_update(c, p + 44, len - 44));
}

static void test_seal_corrupt_pieces(void **state)
{
    (void)state;
    struct zstor_meta_record r, back;
    struct zstor_meta_open_info info;
    build_record(&r, 3, 2, 12, P_BYTES, 0, "c/d");
    struct zstor_meta_sealed s;
    seal_record(&r, 2, 2, &s);
    uint8_t *orig = malloc(s.n * s.piece_len);
    memcpy(orig, s.buf, s.n * s.piece_len);

    /* any byte of any piece, flipped: identified, and the record still opens */
    for (unsigned i = 0; i < s.n; i++) {
        for (size_t b = 0; b < s.piece_len; b += 1 + b / 16) {
            memcpy(s.buf, orig, s.n * s.piece_len);
            s.buf[i * s.piece_len + b] ^= 0x20;
            int rc = open_pieces(&s, NULL, 0, &back, &info);
            if (rc)
                fail_msg("piece %u byte %zu: %s", i, b, qs_err_msg());
            /* a damaged version byte reads as a piece of another (newer) format */
            assert_int_equal(info.state[i],
                             b == 4 ? ZSTOR_META_PIECE_FOREIGN : ZSTOR_META_PIECE_CORRUPT);
            assert_int_equal(info.ok, s.n - 1);
            check_record(&back, P_BYTES, 0);
            zstor_meta_record_free(&back);
        }
    }
    /* a flipped payload byte with a fixed-up CRC (a CRC is not a MAC): other subsets are
     * tried and the bad piece is still named */
    for (unsigned i = 0; i < s.n; i++) {
        memcpy(s.buf, orig, s.n * s.piece_len);
        uint8_t *p = s.buf + i * s.piece_len;
        p[44 + 3] ^= 0x01;
        set_piece_crc(p, s.piece_len);
        assert_int_equal(open_pieces(&s, NULL, 0, &back, &info), 0);
        assert_int_equal(info.state[i], ZSTOR_META_PIECE_CORRUPT);
        assert_int_equal(info.corrupt, 1);
        zstor_meta_record_free(&back);
    }
    /* two corrupt + two lost = too few */
    memcpy(s.buf, orig, s.n * s.piece_len);
    s.buf[10] ^= 1;
    unsigned drop[2] = {1, 2};
    assert_int_equal(open_pieces(&s, drop, 2, &back, &info), QS_ETOOFEW);
    assert_non_null(strstr(qs_err_msg(), "1 good piece(s) found, 2 needed"));
    assert_non_null(strstr(qs_err_msg(), "1 corrupt"));
    zstor_meta_record_free(&back);
    /* tampered ciphertext (CRC fixed) and no spare piece: does not authenticate */
    memcpy(s.buf, orig, s.n * s.piece_len);
    s.buf[s.piece_len + 44 + 5] ^= 0x40;
    set_piece_crc(s.buf + s.piece_len, s.piece_len);
    unsigned drop2[2] = {2, 3};
    assert_int_equal(open_pieces(&s, drop2, 2, &back, &info), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "does not authenticate"));
    zstor_meta_record_free(&back);

    /* truncated pieces and random garbage */
    memcpy(s.buf, orig, s.n * s.piece_len);
    const uint8_t *p[4];
    size_t len[4];
    for (size_t cut = 0; cut < s.piece_len; cut += 7) {
        for (unsigned i = 0; i < 4; i++) {
            p[i] = zstor_meta_piece(&s, i);
            len[i] = i < 3 ? cut : s.piece_len;
        }
        int rc = zstor_meta_open(p, len, 4, name, meta_key, &back, &info);
        assert_int_equal(rc, QS_ETOOFEW);
        zstor_meta_record_free(&back);
    }
    uint8_t junk[4][300];
    for (int t = 0; t < 50; t++) {
        for (unsigned i = 0; i < 4; i++) {
            len[i] = rnd() % 300;
            for (size_t j = 0; j < len[i]; j++)
                junk[i][j] = (uint8_t)rnd();
            if (t % 2 && len[i] >= 5)
                memcpy(junk[i], "QSMP\x01", 5);
            p[i] = junk[i];
        }
        int rc = zstor_meta_open(p, len, 4, name, meta_key, &back, &info);
        assert_true(rc == QS_ETOOFEW || rc == QS_ENOTFOUND);
        zstor_meta_record_free(&back);
    }
    free(orig);
    zstor_meta_sealed_free(&s);
    zstor_meta_record_free(&r);
}

static void test_seal_wrong_key_and_name(void **state)
{
    (void)state;
    struct zstor_meta_record r, back;
    struct zstor_meta_open_info info;
    build_record(&r, 2, 1, 3, P_SEQ_CONSECUTIVE, 0, "k/n");
    struct zstor_meta_sealed s;
    seal_record(&r, 2, 2, &s);
    const uint8_t *p[4];
    size_t len[4];
    for (unsigned i = 0; i < 4; i++) {
        p[i] = zstor_meta_piece(&s, i);
        len[i] = s.piece_len;
    }
    assert_int_equal(zstor_meta_open(p, len, 4, name, other_key, &back, &info), QS_EDENIED);
    assert_non_null(
        strstr(qs_err_msg(), "metadata cannot be decrypted with the configured meta key"));
    zstor_meta_record_free(&back);
    /* the data key is not the meta key: 0-stor_v2 used it for metadata, we do not */
    assert_int_equal(zstor_meta_open(p, len, 4, name, data_key, &back, &info), QS_EDENIED);
    zstor_meta_record_free(&back);
    /* the same pieces under another key name: refused (moved or swapped metadata) */
    assert_int_equal(zstor_meta_open(p, len, 4, "/someprefix/meta/00000000000000000000000000000000",
                                     meta_key, &back, &info),
                     QS_ECORRUPT);
    zstor_meta_record_free(&back);
    /* pieces in any slot order still open */
    const uint8_t *q[6] = {NULL, p[3], p[1], NULL, p[0], p[2]};
    size_t ql[6] = {0, s.piece_len, s.piece_len, 0, s.piece_len, s.piece_len};
    assert_int_equal(zstor_meta_open(q, ql, 6, name, meta_key, &back, &info), 0);
    assert_int_equal(info.ok, 4);
    assert_int_equal(info.missing, 2);
    zstor_meta_record_free(&back);
    /* the pieces hold nothing readable: no path, no address, no key bytes */
    for (unsigned i = 0; i < 4; i++) {
        assert_null(memmem(p[i], len[i], "k/n", 3));
        assert_null(memmem(p[i], len[i], "2001:db8", 8));
        assert_null(memmem(p[i], len[i], meta_key, 8));
    }
    zstor_meta_sealed_free(&s);
    zstor_meta_record_free(&r);
}

static void set_sealed_at(struct zstor_meta_sealed *s, uint64_t at)
{
    for (unsigned i = 0; i < s->n; i++) {
        uint8_t *p = s->buf + i * s->piece_len;
        qs_put64(p + 24, at);
        set_piece_crc(p, s->piece_len);
    }
}

static void test_seal_stale_writes(void **state)
{
    (void)state;
    struct zstor_meta_record a, b, back;
    struct zstor_meta_open_info info;
    build_record(&a, 2, 1, 3, P_SEQ_CONSECUTIVE, 0, "old");
    build_record(&b, 2, 1, 5, P_SEQ_CONSECUTIVE, 0, "new");
    struct zstor_meta_sealed sa, sb;
    seal_record(&a, 2, 2, &sa);
    seal_record(&b, 2, 2, &sb);
    set_sealed_at(&sa, 1000);
    set_sealed_at(&sb, 2000);
    const uint8_t *p[4];
    size_t len[4];
    /* 2 old + 2 new: both complete, the newest wins and the old pieces are stale */
    for (unsigned i = 0; i < 4; i++) {
        const struct zstor_meta_sealed *s = i % 2 ? &sb : &sa;
        p[i] = zstor_meta_piece(s, i);
        len[i] = s->piece_len;
    }
    assert_int_equal(zstor_meta_open(p, len, 4, name, meta_key, &back, &info), 0);
    assert_string_equal(back.path, "new");
    assert_int_equal(info.stale, 2);
    assert_int_equal(info.state[0], ZSTOR_META_PIECE_STALE);
    assert_int_equal(info.state[1], ZSTOR_META_PIECE_OK);
    assert_true(info.sealed_at == 2000);
    zstor_meta_record_free(&back);
    /* 3 old + 1 new: only the old write can be opened */
    for (unsigned i = 0; i < 4; i++) {
        const struct zstor_meta_sealed *s = i == 3 ? &sb : &sa;
        p[i] = zstor_meta_piece(s, i);
        len[i] = s->piece_len;
    }
    assert_int_equal(zstor_meta_open(p, len, 4, name, meta_key, &back, &info), 0);
    assert_string_equal(back.path, "old");
    assert_int_equal(info.state[3], ZSTOR_META_PIECE_STALE);
    zstor_meta_record_free(&back);
    /* 1 old + 1 new + 2 missing: too few of either */
    p[0] = zstor_meta_piece(&sa, 0);
    p[1] = zstor_meta_piece(&sb, 1);
    p[2] = p[3] = NULL;
    assert_int_equal(zstor_meta_open(p, len, 4, name, meta_key, &back, &info), QS_ETOOFEW);
    assert_non_null(strstr(qs_err_msg(), "1 from other writes"));
    zstor_meta_record_free(&back);
    zstor_meta_sealed_free(&sa);
    zstor_meta_sealed_free(&sb);
    zstor_meta_record_free(&a);
    zstor_meta_record_free(&b);
}

static void test_seal_versions_and_foreign(void **state)
{
    (void)state;
    struct zstor_meta_record r, back;
    struct zstor_meta_open_info info;
    build_record(&r, 2, 1, 2, P_SEQ_CONSECUTIVE, 0, "v");
    struct zstor_meta_sealed s;
    seal_record(&r, 2, 2, &s);
    const uint8_t *p[4];
    size_t len[4];
    /* pieces of a newer format */
    for (unsigned i = 0; i < 4; i++) {
        s.buf[i * s.piece_len + 4] = 2;
        p[i] = zstor_meta_piece(&s, i);
        len[i] = s.piece_len;
    }
    assert_int_equal(zstor_meta_open(p, len, 4, name, meta_key, &back, &info), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "newer"));
    assert_int_equal(info.foreign, 4);
    zstor_meta_record_free(&back);
    zstor_meta_sealed_free(&s);

    /* 0-stor_v2's layout: index byte, shard, BLAKE2b-128 of the shard */
    uint8_t z[4][64];
    for (unsigned i = 0; i < 4; i++) {
        z[i][0] = (uint8_t)i;
        for (unsigned j = 1; j < 48; j++)
            z[i][j] = (uint8_t)(i * j);
        qs_hash128(z[i] + 48, z[i] + 1, 47);
        p[i] = z[i];
        len[i] = 64;
    }
    assert_int_equal(zstor_meta_open(p, len, 4, name, meta_key, &back, &info), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "0-stor_v2"));
    zstor_meta_record_free(&back);

    /* an authenticated record of a newer record version: a clear error */
    uint8_t *enc;
    size_t elen;
    assert_int_equal(zstor_meta_record_encode(&r, &enc, &elen), 0);
    enc[4] = 9;
    fix_record_crc(enc, elen);
    assert_int_equal(zstor_meta_seal_bytes(enc, elen, name, meta_key, 2, 2, &s), 0);
    for (unsigned i = 0; i < 4; i++)
        p[i] = zstor_meta_piece(&s, i), len[i] = s.piece_len;
    assert_int_equal(zstor_meta_open(p, len, 4, name, meta_key, &back, &info), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "version 9"));
    zstor_meta_record_free(&back);
    zstor_meta_sealed_free(&s);
    /* authenticated garbage */
    enc[4] = 1;
    enc[elen - 1] ^= 1;
    assert_int_equal(zstor_meta_seal_bytes(enc, elen, name, meta_key, 2, 2, &s), 0);
    for (unsigned i = 0; i < 4; i++)
        p[i] = zstor_meta_piece(&s, i), len[i] = s.piece_len;
    assert_int_equal(zstor_meta_open(p, len, 4, name, meta_key, &back, &info), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "does not decode"));
    zstor_meta_record_free(&back);
    zstor_meta_sealed_free(&s);
    free(enc);

    /* bytes interface and parameter errors */
    uint8_t *plain;
    size_t plen;
    assert_int_equal(zstor_meta_seal_bytes((const uint8_t *)"", 0, "n", meta_key, 1, 1, &s), 0);
    for (unsigned i = 0; i < 2; i++)
        p[i] = zstor_meta_piece(&s, i), len[i] = s.piece_len;
    assert_int_equal(zstor_meta_open_bytes(p, len, 2, "n", meta_key, &plain, &plen, NULL), 0);
    assert_int_equal(plen, 0);
    free(plain);
    zstor_meta_sealed_free(&s);
    assert_int_equal(zstor_meta_seal(&r, name, meta_key, 0, 2, &s), QS_EINVAL);
    assert_int_equal(zstor_meta_seal(&r, name, meta_key, 200, 56, &s), QS_EINVAL);
    assert_int_equal(zstor_meta_seal(&r, NULL, meta_key, 2, 2, &s), QS_EINVAL);
    zstor_meta_record_free(&r);
}

/* A 100 GiB file's record with CRCs, sealed 2+2: size of the pieces. */
static void test_seal_big_record(void **state)
{
    (void)state;
    struct zstor_meta_record r, back;
    struct zstor_meta_open_info info;
    build_record(&r, 10, 4, 25600, P_SEQ_INTERLEAVED, ZSTOR_META_F_CRC, "big");
    struct zstor_meta_sealed s;
    seal_record(&r, 2, 2, &s);
    assert_true(s.piece_len < (8u << 20));
    unsigned drop[2] = {0, 3};
    assert_int_equal(open_pieces(&s, drop, 2, &back, &info), 0);
    check_record(&back, P_SEQ_INTERLEAVED, ZSTOR_META_F_CRC);
    zstor_meta_record_free(&back);
    zstor_meta_sealed_free(&s);
    zstor_meta_record_free(&r);
}

/* ---- golden vector ----------------------------------------------------------------- */

/* tests/unit/meta_golden_v1.txt: pieces sealed once by this library; every later version
 * must keep opening them (scripts/meta_ref_decode.py reads the same file independently). */
#ifndef QSFS_META_GOLDEN
#define QSFS_META_GOLDEN "tests/unit/meta_golden_v1.txt"
#endif

static size_t fixture_hex(const char *text, const char *field, uint8_t *out, size_t cap)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "\n%s ", field);
    const char *p = strstr(text, pat);
    assert_non_null(p);
    p += strlen(pat);
    size_t n = 0;
    while (p[2 * n] && p[2 * n] != '\n') {
        unsigned v;
        assert_true(n < cap);
        assert_int_equal(sscanf(p + 2 * n, "%2x", &v), 1);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void fixture_str(const char *text, const char *field, char *out, size_t cap)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "\n%s ", field);
    const char *p = strstr(text, pat);
    assert_non_null(p);
    p += strlen(pat);
    size_t n = strcspn(p, "\n");
    assert_true(n < cap);
    memcpy(out, p, n);
    out[n] = '\0';
}

/* The record the fixture was sealed from, built through the API. */
static void golden_record(struct zstor_meta_record *r, const uint8_t dkey[32])
{
    struct qs_codec_desc d;
    assert_int_equal(qs_codec_desc_new(&d, 2, 2, 64, (const uint8_t *)"golden-file-id-1", dkey), 0);
    assert_int_equal(zstor_meta_record_init(r, &d, "ünïcødé/golden.bin", ZSTOR_META_F_CRC), 0);
    r->size = 200;
    r->nchunks = 4;
    r->mtime_sec = 1700000000;
    r->mtime_nsec = 123456789;
    r->mode = 0100640;
    r->stored = 1700000100;
    r->compress = QS_COMPRESS_ZSTD;
    r->level = 3;
    for (int i = 0; i < 16; i++)
        r->checksum[i] = (uint8_t)i;
    assert_int_equal(zstor_meta_shard_set(r, 0, "[::1]:9900", "meta-golden-0", ZSTOR_META_KEY_SEQ),
                     0);
    assert_int_equal(zstor_meta_shard_set(r, 1, "127.0.0.1:9901", "", ZSTOR_META_KEY_SEQ), 0);
    assert_int_equal(zstor_meta_shard_set(r, 2, "dir:///srv/qsfs/02", "", ZSTOR_META_KEY_BYTES), 0);
    assert_int_equal(zstor_meta_shard_set(r, 3, "[::1]:9903", "lost", ZSTOR_META_KEY_SEQ), 0);
    zstor_meta_shard_absent(r, 3);
    static const uint64_t s0[4][3] = {{5}, {6}, {7, 8, 9}, {100}};
    static const uint64_t s1[4][3] = {{42}, {40}, {41, 43, 44}, {45}};
    static const unsigned np[4] = {1, 1, 3, 1};
    char lk[201];
    memset(lk, 'x', 200);
    lk[200] = '\0';
    const char *s2[4][3] = {{"00/a"}, {"00/b"}, {"00/c.0", "00/c.1", "00/c.2"}, {lk}};
    for (unsigned c = 0; c < 4; c++) {
        struct zstor_meta_keyref k[3];
        for (unsigned j = 0; j < np[c]; j++)
            k[j] = (struct zstor_meta_keyref){.id = s0[c][j]};
        assert_int_equal(zstor_meta_shard_add(r, 0, k, np[c], c * 16 + 0), 0);
        for (unsigned j = 0; j < np[c]; j++)
            k[j] = (struct zstor_meta_keyref){.id = s1[c][j]};
        assert_int_equal(zstor_meta_shard_add(r, 1, k, np[c], c * 16 + 1), 0);
        for (unsigned j = 0; j < np[c]; j++)
            k[j] =
                (struct zstor_meta_keyref){.p = (const uint8_t *)s2[c][j], .len = strlen(s2[c][j])};
        assert_int_equal(zstor_meta_shard_add(r, 2, k, np[c], c * 16 + 2), 0);
    }
}

static void test_golden(void **state)
{
    (void)state;
    FILE *f = fopen(QSFS_META_GOLDEN, "r");
    if (!f)
        fail_msg("cannot open %s", QSFS_META_GOLDEN);
    char *text = calloc(1, 16384);
    text[0] = '\n';
    size_t tl = fread(text + 1, 1, 16382, f);
    fclose(f);
    assert_true(tl > 0 && tl < 16382);

    uint8_t mkey[32], dkey[32], rec[2048], piece[4][1024];
    size_t plen[4];
    char prefix[64], root[64], path[128], nm[ZSTOR_META_KEY_MAX + 1], key[ZSTOR_META_KEY_MAX + 1];
    assert_int_equal(fixture_hex(text, "metakey", mkey, 32), 32);
    assert_int_equal(fixture_hex(text, "datakey", dkey, 32), 32);
    size_t rlen = fixture_hex(text, "record", rec, sizeof(rec));
    for (unsigned i = 0; i < 4; i++) {
        char field[16];
        snprintf(field, sizeof(field), "piece%u", i);
        plen[i] = fixture_hex(text, field, piece[i], sizeof(piece[i]));
    }
    fixture_str(text, "prefix", prefix, sizeof(prefix));
    fixture_str(text, "root", root, sizeof(root));
    fixture_str(text, "path", path, sizeof(path));
    fixture_str(text, "name", nm, sizeof(nm));

    /* the key, the record bytes */
    assert_int_equal(zstor_meta_key(prefix, root, path, key), 0);
    assert_string_equal(key, nm);
    struct zstor_meta_record want, back;
    golden_record(&want, dkey);
    uint8_t *enc;
    size_t elen;
    assert_int_equal(zstor_meta_record_encode(&want, &enc, &elen), 0);
    assert_int_equal(elen, rlen);
    assert_memory_equal(enc, rec, rlen);
    free(enc);

    /* every pair of pieces opens to that record */
    for (unsigned a = 0; a < 4; a++) {
        for (unsigned b = a + 1; b < 4; b++) {
            const uint8_t *p[4] = {NULL, NULL, NULL, NULL};
            size_t l[4] = {0, 0, 0, 0};
            p[a] = piece[a], l[a] = plen[a];
            p[b] = piece[b], l[b] = plen[b];
            struct zstor_meta_open_info info;
            int rc = zstor_meta_open(p, l, 4, nm, mkey, &back, &info);
            if (rc)
                fail_msg("pieces %u+%u: %s", a, b, qs_err_msg());
            check_same_fields(&want, &back);
            for (unsigned i = 0; i < 3; i++) {
                for (uint64_t c = 0; c < 4; c++) {
                    struct zstor_meta_keyref x[3], y[3];
                    unsigned nx, ny;
                    uint32_t cx, cy;
                    assert_int_equal(zstor_meta_chunk_keys(&want, i, c, x, 3, &nx, &cx), 0);
                    assert_int_equal(zstor_meta_chunk_keys(&back, i, c, y, 3, &ny, &cy), 0);
                    assert_int_equal(nx, ny);
                    assert_int_equal(cx, cy);
                    for (unsigned j = 0; j < nx; j++) {
                        assert_true(x[j].id == y[j].id);
                        assert_int_equal(x[j].len, y[j].len);
                        if (x[j].len)
                            assert_memory_equal(x[j].p, y[j].p, x[j].len);
                    }
                }
            }
            assert_int_equal(zstor_meta_check_data_key(&back, dkey), 0);
            assert_int_equal(info.ok, 2);
            assert_true(info.sealed_at > 0);
            zstor_meta_record_free(&back);
        }
    }
    zstor_meta_record_free(&want);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_vectors),
        cmocka_unit_test(test_key_errors),
        cmocka_unit_test(test_path_clean),
        cmocka_unit_test(test_key_path),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_record_roundtrips),
        cmocka_unit_test(test_record_many_chunks),
        cmocka_unit_test(test_record_paths),
        cmocka_unit_test(test_record_absent_and_rebuild),
        cmocka_unit_test(test_record_builder_errors),
        cmocka_unit_test(test_record_data_key),
        cmocka_unit_test(test_record_rejects),
        cmocka_unit_test(test_record_canonical),
        cmocka_unit_test(test_seal_lost_pieces),
        cmocka_unit_test(test_seal_corrupt_pieces),
        cmocka_unit_test(test_seal_wrong_key_and_name),
        cmocka_unit_test(test_seal_stale_writes),
        cmocka_unit_test(test_seal_versions_and_foreign),
        cmocka_unit_test(test_seal_big_record),
        cmocka_unit_test(test_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
