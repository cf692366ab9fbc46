/* Unit tests for lib/store/keyindex: the compact open-addressing key index.
 * A reference model (an array indexed by key number) is compared with the index after
 * every batch of random operations; deletions are checked in a table kept nearly full so
 * that probe chains are long and wrap around; the arena is checked to shrink after most
 * keys are deleted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "store/keyindex.h"

/* ---- helpers ------------------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Key number n as bytes: its 4-byte LE number then 0..60 filler bytes (both derived
 * from n, so the same n always gives the same key and different n never collide). */
static size_t make_key(uint32_t n, uint8_t *out)
{
    uint64_t s = n * 0x2545f4914f6cdd1dull + 17;
    size_t len = 4 + (size_t)(splitmix(&s) % 61);
    out[0] = (uint8_t)n;
    out[1] = (uint8_t)(n >> 8);
    out[2] = (uint8_t)(n >> 16);
    out[3] = (uint8_t)(n >> 24);
    for (size_t i = 4; i < len; i++)
        out[i] = (uint8_t)splitmix(&s);
    return len;
}

static struct zdb_keyloc loc_for(uint32_t n, uint32_t version)
{
    struct zdb_keyloc l = {
        .fileid = n % 7 + version,
        .idxoff = n * 3u + version,
        .dataoff = n ^ (version << 20),
        .length = version * 11u,
        .crc = n * 2654435761u + version,
    };
    return l;
}

static void assert_loc_equal(const struct zdb_keyloc *a, const struct zdb_keyloc *b)
{
    assert_int_equal(a->fileid, b->fileid);
    assert_int_equal(a->idxoff, b->idxoff);
    assert_int_equal(a->dataoff, b->dataoff);
    assert_int_equal(a->length, b->length);
    assert_int_equal(a->crc, b->crc);
}

static struct zdb_keyindex *new_index(void)
{
    struct zdb_keyindex *ki;
    assert_int_equal(zdb_keyindex_new(&ki), 0);
    assert_non_null(ki);
    return ki;
}

static void put_n(struct zdb_keyindex *ki, uint32_t n, uint32_t version, int expect_replaced)
{
    uint8_t k[64];
    size_t kl = make_key(n, k);
    struct zdb_keyloc l = loc_for(n, version);
    int replaced = -1;
    assert_int_equal(zdb_keyindex_put(ki, k, kl, &l, &replaced), 0);
    assert_int_equal(replaced, expect_replaced);
}

/* Checks key n is present with loc_for(n, version), or absent when version == 0. */
static void check_n(struct zdb_keyindex *ki, uint32_t n, uint32_t version)
{
    uint8_t k[64];
    size_t kl = make_key(n, k);
    const struct zdb_keyrec *r = zdb_keyindex_get(ki, k, kl);
    if (version == 0) {
        assert_null(r);
        return;
    }
    assert_non_null(r);
    assert_int_equal(r->keylen, kl);
    assert_memory_equal(r->key, k, kl);
    struct zdb_keyloc want = loc_for(n, version);
    struct zdb_keyloc got = r->loc; /* the record is packed */
    assert_loc_equal(&got, &want);
}

/* Visit state for zdb_keyindex_each: every visited key must be live in the model
 * (versions[n] != 0) and visited once. */
struct visit {
    const uint32_t *versions;
    uint8_t *seen;
    size_t nkeys;
    size_t count;
    size_t stop_after; /* 0 = never stop */
};

static int visit_fn(const struct zdb_keyrec *r, void *ud)
{
    struct visit *v = ud;
    assert_true(r->keylen >= 4);
    uint32_t n = (uint32_t)r->key[0] | (uint32_t)r->key[1] << 8 | (uint32_t)r->key[2] << 16 |
                 (uint32_t)r->key[3] << 24;
    assert_true(n < v->nkeys);
    uint8_t k[64];
    size_t kl = make_key(n, k);
    assert_int_equal(r->keylen, kl);
    assert_memory_equal(r->key, k, kl);
    assert_int_not_equal(v->versions[n], 0);
    assert_int_equal(v->seen[n], 0);
    v->seen[n] = 1;
    struct zdb_keyloc want = loc_for(n, v->versions[n]);
    struct zdb_keyloc got = r->loc;
    assert_loc_equal(&got, &want);
    v->count++;
    if (v->stop_after && v->count == v->stop_after)
        return 42;
    return 0;
}

/* Full comparison of the index with the model. */
static void compare_model(struct zdb_keyindex *ki, const uint32_t *versions, size_t nkeys)
{
    size_t live = 0;
    for (uint32_t n = 0; n < nkeys; n++) {
        check_n(ki, n, versions[n]);
        live += versions[n] != 0;
    }
    assert_int_equal(zdb_keyindex_count(ki), live);

    struct visit v = {versions, calloc(nkeys, 1), nkeys, 0, 0};
    assert_non_null(v.seen);
    assert_int_equal(zdb_keyindex_each(ki, visit_fn, &v), 0);
    assert_int_equal(v.count, live);
    free(v.seen);
}

/* Heap bytes a perfect implementation could not go below: one 8-byte slot and one
 * record per key. */
static size_t floor_bytes(const uint32_t *versions, size_t nkeys)
{
    size_t total = 0;
    uint8_t k[64];
    for (uint32_t n = 0; n < nkeys; n++)
        if (versions[n])
            total += 8 + sizeof(struct zdb_keyrec) + make_key(n, k);
    return total;
}

/* ---- basic operations --------------------------------------------------------------- */

static void test_put_get_del_replace(void **state)
{
    (void)state;
    struct zdb_keyindex *ki = new_index();
    assert_int_equal(zdb_keyindex_count(ki), 0);
    assert_null(zdb_keyindex_get(ki, (const uint8_t *)"a", 1));
    assert_int_equal(zdb_keyindex_del(ki, (const uint8_t *)"a", 1), QS_ENOTFOUND);

    struct zdb_keyloc l1 = {1, 29, 28, 5, 0xabcdef01u};
    struct zdb_keyloc l2 = {2, 63, 51, 7, 0x12345678u};
    int replaced = -1;
    assert_int_equal(zdb_keyindex_put(ki, (const uint8_t *)"a", 1, &l1, &replaced), 0);
    assert_int_equal(replaced, 0);
    assert_int_equal(zdb_keyindex_put(ki, (const uint8_t *)"ab", 2, &l2, NULL), 0);
    assert_int_equal(zdb_keyindex_count(ki), 2);

    struct zdb_keyrec *r = zdb_keyindex_get(ki, (const uint8_t *)"a", 1);
    assert_non_null(r);
    struct zdb_keyloc got = r->loc;
    assert_loc_equal(&got, &l1);
    assert_int_equal(r->keylen, 1);
    assert_memory_equal(r->key, "a", 1);
    /* a prefix or an extension of a key is another key */
    assert_null(zdb_keyindex_get(ki, (const uint8_t *)"abc", 3));
    assert_null(zdb_keyindex_get(ki, (const uint8_t *)"b", 1));

    /* replace keeps the count and updates the location */
    assert_int_equal(zdb_keyindex_put(ki, (const uint8_t *)"a", 1, &l2, &replaced), 0);
    assert_int_equal(replaced, 1);
    assert_int_equal(zdb_keyindex_count(ki), 2);
    r = zdb_keyindex_get(ki, (const uint8_t *)"a", 1);
    got = r->loc;
    assert_loc_equal(&got, &l2);

    assert_int_equal(zdb_keyindex_del(ki, (const uint8_t *)"a", 1), 0);
    assert_int_equal(zdb_keyindex_count(ki), 1);
    assert_null(zdb_keyindex_get(ki, (const uint8_t *)"a", 1));
    assert_int_equal(zdb_keyindex_del(ki, (const uint8_t *)"a", 1), QS_ENOTFOUND);
    assert_non_null(zdb_keyindex_get(ki, (const uint8_t *)"ab", 2));

    /* a deleted key can come back */
    assert_int_equal(zdb_keyindex_put(ki, (const uint8_t *)"a", 1, &l1, &replaced), 0);
    assert_int_equal(replaced, 0);
    assert_int_equal(zdb_keyindex_count(ki), 2);
    zdb_keyindex_free(ki);
    zdb_keyindex_free(NULL);
}

static void test_key_lengths(void **state)
{
    (void)state;
    struct zdb_keyindex *ki = new_index();
    uint8_t big[256];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + 1);

    /* the empty key is a key */
    struct zdb_keyloc l = {0, 1, 2, 3, 4};
    static const uint8_t none[1] = {0};
    assert_int_equal(zdb_keyindex_put(ki, none, 0, &l, NULL), 0);
    assert_non_null(zdb_keyindex_get(ki, none, 0));

    /* every length 1..255 over the same bytes is a different key */
    for (size_t n = 1; n <= 255; n++) {
        l.length = (uint32_t)n;
        assert_int_equal(zdb_keyindex_put(ki, big, n, &l, NULL), 0);
    }
    assert_int_equal(zdb_keyindex_count(ki), 256);
    for (size_t n = 1; n <= 255; n++) {
        struct zdb_keyrec *r = zdb_keyindex_get(ki, big, n);
        assert_non_null(r);
        assert_int_equal(r->keylen, n);
        assert_int_equal(r->loc.length, n);
        assert_memory_equal(r->key, big, n);
    }
    /* 256 bytes is refused and changes nothing */
    assert_int_equal(zdb_keyindex_put(ki, big, 256, &l, NULL), QS_EINVAL);
    assert_int_equal(zdb_keyindex_count(ki), 256);
    assert_null(zdb_keyindex_get(ki, big, 256));

    /* all 256 one-byte keys, including 0x00 */
    for (unsigned b = 0; b < 256; b++) {
        uint8_t k = (uint8_t)b;
        l.crc = b;
        assert_int_equal(zdb_keyindex_put(ki, &k, 1, &l, NULL), 0);
    }
    for (unsigned b = 0; b < 256; b++) {
        uint8_t k = (uint8_t)b;
        struct zdb_keyrec *r = zdb_keyindex_get(ki, &k, 1);
        assert_non_null(r);
        assert_int_equal(r->loc.crc, b);
    }
    /* 256 + 255 one-byte keys, minus big[0..1) which was one of them */
    assert_int_equal(zdb_keyindex_count(ki), 256 + 255);
    zdb_keyindex_free(ki);
}

/* ---- random operations against a model ---------------------------------------------- */

#define MODEL_KEYS 250000u

static void test_random_model(void **state)
{
    (void)state;
    struct zdb_keyindex *ki = new_index();
    uint32_t *versions = calloc(MODEL_KEYS, sizeof(uint32_t));
    assert_non_null(versions);
    uint64_t seed = 0x5eed;

    /* Phase 1: 200k distinct keys in random order, checked every 40k. */
    uint32_t *perm = malloc(MODEL_KEYS * sizeof(uint32_t));
    assert_non_null(perm);
    for (uint32_t i = 0; i < MODEL_KEYS; i++)
        perm[i] = i;
    for (uint32_t i = MODEL_KEYS - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(splitmix(&seed) % (i + 1));
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (uint32_t i = 0; i < 200000; i++) {
        put_n(ki, perm[i], 1, 0);
        versions[perm[i]] = 1;
        if ((i + 1) % 40000 == 0)
            compare_model(ki, versions, MODEL_KEYS);
    }
    assert_int_equal(zdb_keyindex_count(ki), 200000);
    free(perm);

    /* Phase 2: random put / replace / delete / get over the whole key space. */
    for (int batch = 0; batch < 6; batch++) {
        for (int op = 0; op < 50000; op++) {
            uint64_t x = splitmix(&seed);
            uint32_t n = (uint32_t)(x % MODEL_KEYS);
            switch ((x >> 32) % 4) {
            case 0:
            case 1: {
                uint32_t v = versions[n] + 1;
                put_n(ki, n, v, versions[n] != 0);
                versions[n] = v;
                break;
            }
            case 2: {
                uint8_t k[64];
                size_t kl = make_key(n, k);
                assert_int_equal(zdb_keyindex_del(ki, k, kl), versions[n] ? 0 : QS_ENOTFOUND);
                versions[n] = 0;
                break;
            }
            default:
                check_n(ki, n, versions[n]);
                break;
            }
        }
        compare_model(ki, versions, MODEL_KEYS);
    }

    /* Memory: at least one slot and one record per key, and within a few times that
     * (table at most 3/4 and at least 3/8 full, arena grown by doubling). */
    size_t mem = zdb_keyindex_memory(ki);
    size_t floor = floor_bytes(versions, MODEL_KEYS);
    assert_true(mem >= floor);
    assert_true(mem <= 4 * floor + 256 * 1024);
    zdb_keyindex_free(ki);
    free(versions);
}

/* ---- deletion in a crowded table ---------------------------------------------------- */

/* The table starts at 1024 slots and grows past 3/4: 760 keys fill it to 74%, so probe
 * runs are long and wrap around the end. Each delete must leave every other key
 * reachable (backward-shift deletion moving entries into the hole correctly). */
static void test_crowded_deletes(void **state)
{
    (void)state;
    enum { N = 760 };
    uint64_t seed = 77;
    for (int round = 0; round < 4; round++) {
        struct zdb_keyindex *ki = new_index();
        size_t mem0 = zdb_keyindex_memory(ki);
        uint32_t versions[N];
        memset(versions, 0, sizeof(versions));
        for (uint32_t n = 0; n < N; n++) {
            put_n(ki, n, 1, 0);
            versions[n] = 1;
        }
        compare_model(ki, versions, N);
        /* no table growth at this load, so the test really ran at 74%: what was added is
         * the first arena block (64 KiB) and not another 1024 slots */
        assert_true(zdb_keyindex_memory(ki) - mem0 < 64 * 1024 + 1024 * sizeof(uint64_t));

        uint32_t order[N];
        for (uint32_t i = 0; i < N; i++)
            order[i] = i;
        for (uint32_t i = N - 1; i > 0; i--) {
            uint32_t j = (uint32_t)(splitmix(&seed) % (i + 1));
            uint32_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (uint32_t i = 0; i < N; i++) {
            uint8_t k[64];
            size_t kl = make_key(order[i], k);
            assert_int_equal(zdb_keyindex_del(ki, k, kl), 0);
            versions[order[i]] = 0;
            /* every survivor still reachable, the deleted ones gone */
            for (uint32_t n = 0; n < N; n++)
                check_n(ki, n, versions[n]);
            assert_int_equal(zdb_keyindex_count(ki), N - 1 - i);
        }
        zdb_keyindex_free(ki);
    }
}

/* Churn at constant high load: delete one, insert another, for many rounds. */
static void test_crowded_churn(void **state)
{
    (void)state;
    enum { LIVE = 750, SPACE = 4000 };
    uint32_t versions[SPACE];
    memset(versions, 0, sizeof(versions));
    struct zdb_keyindex *ki = new_index();
    size_t mem0 = zdb_keyindex_memory(ki);
    uint32_t live[LIVE];
    for (uint32_t n = 0; n < LIVE; n++) {
        put_n(ki, n, 1, 0);
        versions[n] = 1;
        live[n] = n;
    }
    uint64_t seed = 99;
    for (int i = 0; i < 20000; i++) {
        uint32_t slot = (uint32_t)(splitmix(&seed) % LIVE);
        uint8_t k[64];
        size_t kl = make_key(live[slot], k);
        assert_int_equal(zdb_keyindex_del(ki, k, kl), 0);
        versions[live[slot]] = 0;
        uint32_t n;
        do
            n = (uint32_t)(splitmix(&seed) % SPACE);
        while (versions[n]);
        put_n(ki, n, (uint32_t)i + 2, 0);
        versions[n] = (uint32_t)i + 2;
        live[slot] = n;
        if (i % 2000 == 0)
            compare_model(ki, versions, SPACE);
    }
    compare_model(ki, versions, SPACE);
    /* the table never needed to grow; the arena was compacted rather than grown without
     * bound (20000 records of up to 88 bytes would take 1.7 MB) */
    assert_true(zdb_keyindex_memory(ki) - mem0 < 512 * 1024);
    zdb_keyindex_free(ki);
}

/* ---- arena compaction --------------------------------------------------------------- */

static void test_arena_compaction(void **state)
{
    (void)state;
    enum { N = 60000, MORE = 40000 };
    uint32_t *versions = calloc(N + MORE, sizeof(uint32_t));
    assert_non_null(versions);
    struct zdb_keyindex *ki = new_index();
    for (uint32_t n = 0; n < N; n++) {
        put_n(ki, n, 1, 0);
        versions[n] = 1;
    }
    size_t full = zdb_keyindex_memory(ki);

    /* delete 90% */
    for (uint32_t n = 0; n < N; n++) {
        if (n % 10 == 0)
            continue;
        uint8_t k[64];
        size_t kl = make_key(n, k);
        assert_int_equal(zdb_keyindex_del(ki, k, kl), 0);
        versions[n] = 0;
    }
    assert_int_equal(zdb_keyindex_count(ki), N / 10);
    compare_model(ki, versions, N + MORE);
    /* deleting frees nothing by itself */
    assert_int_equal(zdb_keyindex_memory(ki), full);

    /* inserting fills the arena until it is compacted instead of doubled */
    for (uint32_t n = N; n < N + MORE; n++) {
        put_n(ki, n, 3, 0);
        versions[n] = 3;
        if ((n - N) % 10000 == 0)
            compare_model(ki, versions, N + MORE);
    }
    compare_model(ki, versions, N + MORE);
    size_t after = zdb_keyindex_memory(ki);
    assert_true(after < full);
    assert_true(after >= floor_bytes(versions, N + MORE));

    /* replacing survivors after compaction updates the moved records */
    for (uint32_t n = 0; n < N; n += 10) {
        put_n(ki, n, 2, 1);
        versions[n] = 2;
    }
    compare_model(ki, versions, N + MORE);
    zdb_keyindex_free(ki);
    free(versions);
}

/* ---- each ------------------------------------------------------------------------- */

static void test_each(void **state)
{
    (void)state;
    enum { N = 3000 };
    uint32_t versions[N];
    memset(versions, 0, sizeof(versions));
    struct zdb_keyindex *ki = new_index();

    /* empty index: no call */
    struct visit v = {versions, calloc(N, 1), N, 0, 0};
    assert_int_equal(zdb_keyindex_each(ki, visit_fn, &v), 0);
    assert_int_equal(v.count, 0);

    for (uint32_t n = 0; n < N; n++) {
        put_n(ki, n, 1, 0);
        versions[n] = 1;
    }
    for (uint32_t n = 0; n < N; n += 3) {
        uint8_t k[64];
        size_t kl = make_key(n, k);
        assert_int_equal(zdb_keyindex_del(ki, k, kl), 0);
        versions[n] = 0;
    }
    for (uint32_t n = 1; n < N; n += 3) {
        put_n(ki, n, 5, 1); /* replaced keys are visited once, with the new location */
        versions[n] = 5;
    }
    memset(v.seen, 0, N);
    v.count = 0;
    assert_int_equal(zdb_keyindex_each(ki, visit_fn, &v), 0);
    assert_int_equal(v.count, zdb_keyindex_count(ki));
    assert_int_equal(v.count, N - N / 3);
    for (uint32_t n = 0; n < N; n++)
        assert_int_equal(v.seen[n], versions[n] != 0);

    /* a non-zero return stops the walk and is passed through */
    memset(v.seen, 0, N);
    v.count = 0;
    v.stop_after = 10;
    assert_int_equal(zdb_keyindex_each(ki, visit_fn, &v), 42);
    assert_int_equal(v.count, 10);
    free(v.seen);
    zdb_keyindex_free(ki);
}

/* ---- memory accounting ------------------------------------------------------------ */

static void test_memory(void **state)
{
    (void)state;
    struct zdb_keyindex *ki = new_index();
    size_t m0 = zdb_keyindex_memory(ki);
    assert_true(m0 >= 1024 * sizeof(uint64_t)); /* the initial table */
    assert_true(m0 < 64 * 1024);

    enum { N = 100000 };
    uint32_t *versions = calloc(N, sizeof(uint32_t));
    assert_non_null(versions);
    size_t prev = m0;
    for (uint32_t n = 0; n < N; n++) {
        put_n(ki, n, 1, 0);
        versions[n] = 1;
        size_t m = zdb_keyindex_memory(ki);
        assert_true(m >= prev); /* no compaction without deletes */
        prev = m;
    }
    size_t floor = floor_bytes(versions, N);
    size_t m = zdb_keyindex_memory(ki);
    assert_true(m >= floor);
    assert_true(m <= 4 * floor + 256 * 1024);
    /* replacing does not allocate */
    for (uint32_t n = 0; n < N; n += 2)
        put_n(ki, n, 2, 1);
    assert_int_equal(zdb_keyindex_memory(ki), m);
    zdb_keyindex_free(ki);
    free(versions);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_del_replace),
        cmocka_unit_test(test_key_lengths),
        cmocka_unit_test(test_random_model),
        cmocka_unit_test(test_crowded_deletes),
        cmocka_unit_test(test_crowded_churn),
        cmocka_unit_test(test_arena_compaction),
        cmocka_unit_test(test_each),
        cmocka_unit_test(test_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
