#include "keyindex.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* A slot is 0 (empty) or (hash32 << 32) | (arena offset / 4 + 1). */
struct zdb_keyindex {
    uint64_t *slots;
    size_t mask;  /* slot count - 1 (power of two) */
    size_t count; /* live keys */
    uint8_t *arena;
    size_t used; /* bytes of arena in use (live + dead) */
    size_t cap;
    size_t dead;       /* bytes of dead records inside used */
    uint64_t keybytes; /* sum of the live keys' lengths */
    uint64_t seed;
};

#define REC_ALIGN 4
#define MIN_SLOTS 1024

static size_t rec_size(size_t klen)
{
    return (sizeof(struct zdb_keyrec) + klen + REC_ALIGN - 1) & ~(size_t)(REC_ALIGN - 1);
}

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static uint64_t key_hash(uint64_t seed, const uint8_t *k, size_t n)
{
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, k, 8);
        h = (h ^ mix64(w)) * 0x9e3779b97f4a7c15ull;
        h = (h << 29) | (h >> 35);
        k += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, k, n);
    h ^= mix64(w + n);
    return mix64(h);
}

static struct zdb_keyrec *rec_at(const struct zdb_keyindex *ki, uint64_t slot)
{
    return (struct zdb_keyrec *)(ki->arena + ((slot & 0xffffffffu) - 1) * REC_ALIGN);
}

int zdb_keyindex_new(struct zdb_keyindex **out)
{
    *out = NULL;
    struct zdb_keyindex *ki = calloc(1, sizeof(*ki));
    if (!ki)
        return qs_err_set(QS_ENOMEM, "key index allocation failed");
    ki->slots = calloc(MIN_SLOTS, sizeof(uint64_t));
    if (!ki->slots) {
        free(ki);
        return qs_err_set(QS_ENOMEM, "key index allocation failed");
    }
    ki->mask = MIN_SLOTS - 1;
    if (getrandom(&ki->seed, sizeof(ki->seed), 0) != sizeof(ki->seed))
        ki->seed = (uint64_t)(uintptr_t)ki ^ 0x5bd1e995ull;
    *out = ki;
    return 0;
}

void zdb_keyindex_free(struct zdb_keyindex *ki)
{
    if (!ki)
        return;
    free(ki->slots);
    free(ki->arena);
    free(ki);
}

/* Returns the slot position holding key, or the empty position where it would go. */
static size_t find_pos(const struct zdb_keyindex *ki, uint64_t h, const uint8_t *key, size_t klen,
                       int *found)
{
    uint32_t tag = (uint32_t)(h >> 32);
    size_t i = (size_t)h & ki->mask;
    for (;;) {
        uint64_t s = ki->slots[i];
        if (s == 0) {
            *found = 0;
            return i;
        }
        if ((uint32_t)(s >> 32) == tag) {
            const struct zdb_keyrec *r = rec_at(ki, s);
            if (r->keylen == klen && memcmp(r->key, key, klen) == 0) {
                *found = 1;
                return i;
            }
        }
        i = (i + 1) & ki->mask;
    }
}

struct zdb_keyrec *zdb_keyindex_get(struct zdb_keyindex *ki, const uint8_t *key, size_t klen)
{
    int found;
    size_t i = find_pos(ki, key_hash(ki->seed, key, klen), key, klen, &found);
    return found ? rec_at(ki, ki->slots[i]) : NULL;
}

static int grow_table(struct zdb_keyindex *ki)
{
    size_t n = (ki->mask + 1) * 2;
    uint64_t *slots = calloc(n, sizeof(uint64_t));
    if (!slots)
        return qs_err_set(QS_ENOMEM, "key index table of %zu slots", n);
    size_t mask = n - 1;
    for (size_t i = 0; i <= ki->mask; i++) {
        uint64_t s = ki->slots[i];
        if (!s)
            continue;
        const struct zdb_keyrec *r = rec_at(ki, s);
        size_t j = (size_t)key_hash(ki->seed, r->key, r->keylen) & mask;
        while (slots[j])
            j = (j + 1) & mask;
        slots[j] = s;
    }
    free(ki->slots);
    ki->slots = slots;
    ki->mask = mask;
    return 0;
}

/* Copies live records into a fresh arena, dropping the dead ones. */
static int compact_arena(struct zdb_keyindex *ki, size_t extra)
{
    size_t live = ki->used - ki->dead;
    size_t cap = live + extra;
    cap += cap / 2 + 4096;
    uint8_t *arena = malloc(cap);
    if (!arena)
        return qs_err_set(QS_ENOMEM, "key index arena of %zu bytes", cap);
    size_t used = 0;
    for (size_t i = 0; i <= ki->mask; i++) {
        uint64_t s = ki->slots[i];
        if (!s)
            continue;
        const struct zdb_keyrec *r = rec_at(ki, s);
        size_t sz = rec_size(r->keylen);
        memcpy(arena + used, r, sz);
        ki->slots[i] = (s & 0xffffffff00000000ull) | (used / REC_ALIGN + 1);
        used += sz;
    }
    free(ki->arena);
    ki->arena = arena;
    ki->cap = cap;
    ki->used = used;
    ki->dead = 0;
    return 0;
}

static int arena_reserve(struct zdb_keyindex *ki, size_t sz)
{
    if (ki->used + sz <= ki->cap)
        return 0;
    if (ki->dead > ki->used / 2)
        return compact_arena(ki, sz);
    size_t cap = ki->cap ? ki->cap * 2 : 64 * 1024;
    while (cap < ki->used + sz)
        cap *= 2;
    if (cap / REC_ALIGN >= 0xffffffffu)
        return qs_err_set(QS_ENOMEM, "key index arena limit reached");
    uint8_t *p = realloc(ki->arena, cap);
    if (!p)
        return qs_err_set(QS_ENOMEM, "key index arena of %zu bytes", cap);
    ki->arena = p;
    ki->cap = cap;
    return 0;
}

int zdb_keyindex_put(struct zdb_keyindex *ki, const uint8_t *key, size_t klen,
                     const struct zdb_keyloc *loc, int *replaced)
{
    if (klen > 255)
        return qs_err_set(QS_EINVAL, "key of %zu bytes too long", klen);
    uint64_t h = key_hash(ki->seed, key, klen);
    int found;
    size_t i = find_pos(ki, h, key, klen, &found);
    if (replaced)
        *replaced = found;
    if (found) {
        rec_at(ki, ki->slots[i])->loc = *loc;
        return 0;
    }
    if ((ki->count + 1) * 4 > (ki->mask + 1) * 3) {
        int rc = grow_table(ki);
        if (rc < 0)
            return rc;
        i = find_pos(ki, h, key, klen, &found);
    }
    size_t sz = rec_size(klen);
    int rc = arena_reserve(ki, sz);
    if (rc < 0)
        return rc;
    struct zdb_keyrec *r = (struct zdb_keyrec *)(ki->arena + ki->used);
    r->loc = *loc;
    r->keylen = (uint8_t)klen;
    memcpy(r->key, key, klen);
    ki->slots[i] = ((h >> 32) << 32) | (ki->used / REC_ALIGN + 1);
    ki->used += sz;
    ki->count++;
    ki->keybytes += klen;
    return 0;
}

int zdb_keyindex_del(struct zdb_keyindex *ki, const uint8_t *key, size_t klen)
{
    int found;
    size_t i = find_pos(ki, key_hash(ki->seed, key, klen), key, klen, &found);
    if (!found)
        return QS_ENOTFOUND;
    ki->dead += rec_size(rec_at(ki, ki->slots[i])->keylen);
    ki->keybytes -= rec_at(ki, ki->slots[i])->keylen;
    ki->count--;
    /* Backward-shift deletion keeps probe chains intact without tombstones. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & ki->mask;
        uint64_t s = ki->slots[j];
        if (!s)
            break;
        const struct zdb_keyrec *r = rec_at(ki, s);
        size_t home = (size_t)key_hash(ki->seed, r->key, r->keylen) & ki->mask;
        /* Move s into the hole at i unless its home lies cyclically in (i, j]. */
        int in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            ki->slots[i] = s;
            i = j;
        }
    }
    ki->slots[i] = 0;
    return 0;
}

size_t zdb_keyindex_count(const struct zdb_keyindex *ki)
{
    return ki->count;
}

uint64_t zdb_keyindex_keybytes(const struct zdb_keyindex *ki)
{
    return ki->keybytes;
}

size_t zdb_keyindex_memory(const struct zdb_keyindex *ki)
{
    return sizeof(*ki) + (ki->mask + 1) * sizeof(uint64_t) + ki->cap;
}

int zdb_keyindex_each(struct zdb_keyindex *ki, int (*fn)(const struct zdb_keyrec *r, void *ud),
                      void *ud)
{
    for (size_t i = 0; i <= ki->mask; i++) {
        if (!ki->slots[i])
            continue;
        int rc = fn(rec_at(ki, ki->slots[i]), ud);
        if (rc)
            return rc;
    }
    return 0;
}
