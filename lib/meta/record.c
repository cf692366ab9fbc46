/* Metadata record: building, encoding and decoding (record.h, docs/meta-format.md §2). */
#include "record.h"

#include <stdlib.h>
#include <string.h>

#include "meta/key.h"
#include "util/crc32c.h"
#include "util/mem.h"

#define HDR_LEN 112

static const uint8_t rec_magic[4] = {'Q', 'S', 'M', 'R'};

static uint32_t crc32c(const uint8_t *p, size_t n)
{
    return ~qs_crc32c_update(~0u, p, n);
}

/* ---- growth ---- */

/* Makes room for need elements of size elem in *p (capacity *cap, in elements). */
static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 8;
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return qs_err_set(QS_ENOMEM, "metadata record: too large");
        n *= 2;
    }
    size_t bytes;
    if (qs_mul_size(n, elem, &bytes) || bytes > (size_t)4 * ZSTOR_META_RECORD_MAX)
        return qs_err_set(QS_ENOMEM, "metadata record: too large");
    void *q = realloc(*p, bytes);
    if (!q)
        return qs_err_set(QS_ENOMEM, "metadata record: out of memory");
    *p = q;
    *cap = n;
    return 0;
}

static void shard_clear_keys(struct zstor_meta_shard *s)
{
    free(s->lay);
    free(s->ids);
    free(s->kb);
    free(s->koff);
    free(s->crc);
    s->lay = NULL;
    s->ids = NULL;
    s->kb = NULL;
    s->koff = NULL;
    s->crc = NULL;
    s->nlay = s->caplay = s->nids = s->capids = s->kblen = s->kbcap = 0;
    s->koffcap = s->crccap = 0;
    s->nchunks = s->nkeys = 0;
}

static void shard_free(struct zstor_meta_shard *s)
{
    shard_clear_keys(s);
    free(s->address);
    free(s->ns);
    s->address = s->ns = NULL;
}

void zstor_meta_record_free(struct zstor_meta_record *r)
{
    if (!r)
        return;
    if (r->shard) {
        for (unsigned i = 0; i < r->nshards; i++)
            shard_free(&r->shard[i]);
        free(r->shard);
    }
    free(r->path);
    memset(r, 0, sizeof(*r));
}

static int check_desc(const struct qs_codec_desc *d)
{
    if (d->version != QS_CODEC_VERSION)
        return qs_err_set(QS_EINVAL, "metadata record: codec version %u not supported", d->version);
    return qs_codec_check_params(d->k, d->m, d->chunk_size);
}

static int check_name(const char *what, const char *s, size_t lo, size_t hi)
{
    size_t n = strnlen(s, hi + 1);
    if (n < lo || n > hi)
        return qs_err_set(QS_EINVAL, "metadata record: %s must be %zu..%zu bytes", what, lo, hi);
    if (!zstor_meta_utf8_ok(s, n))
        return qs_err_set(QS_EINVAL, "metadata record: %s is not valid UTF-8", what);
    return 0;
}

/* A stored name as check_name, and safe as a path (no empty, "." or ".." component). */
static int check_path(const char *s)
{
    int rc = check_name("path", s, 1, ZSTOR_META_PATH_MAX);
    if (rc == 0 && (rc = zstor_meta_name_check(s, 1)) != 0)
        return qs_err_set(rc, "metadata record: %s", qs_err_msg());
    return rc;
}

int zstor_meta_record_init(struct zstor_meta_record *r, const struct qs_codec_desc *d,
                           const char *path, unsigned flags)
{
    memset(r, 0, sizeof(*r));
    int rc;
    if ((rc = check_desc(d)) != 0 || (rc = check_path(path)) != 0)
        return rc;
    if (flags & ~ZSTOR_META_F_CRC)
        return qs_err_set(QS_EINVAL, "metadata record: unknown flags 0x%x", flags);
    r->flags = flags;
    r->desc = *d;
    r->nshards = d->k + d->m;
    r->compress = QS_COMPRESS_NONE;
    if ((r->path = strdup(path)) == NULL ||
        (r->shard = calloc(r->nshards, sizeof(*r->shard))) == NULL)
        return qs_err_set(QS_ENOMEM, "metadata record: out of memory");
    for (unsigned i = 0; i < r->nshards; i++)
        r->shard[i].flags = ZSTOR_META_SHARD_ABSENT;
    return 0;
}

int zstor_meta_shard_set(struct zstor_meta_record *r, unsigned i, const char *address,
                         const char *ns, enum zstor_meta_keykind kind)
{
    if (i >= r->nshards)
        return qs_err_set(QS_EINVAL, "metadata record: shard %u of %u", i, r->nshards);
    if (!ns)
        ns = "";
    int rc;
    if ((rc = check_name("backend address", address, 1, ZSTOR_META_ADDR_MAX)) != 0 ||
        (rc = check_name("namespace", ns, 0, ZSTOR_META_NS_MAX)) != 0)
        return rc;
    if (kind != ZSTOR_META_KEY_SEQ && kind != ZSTOR_META_KEY_BYTES)
        return qs_err_set(QS_EINVAL, "metadata record: bad key kind %d", (int)kind);
    char *a = strdup(address), *n = strdup(ns);
    if (!a || !n) {
        free(a);
        free(n);
        return qs_err_set(QS_ENOMEM, "metadata record: out of memory");
    }
    struct zstor_meta_shard *s = &r->shard[i];
    shard_free(s);
    s->address = a;
    s->ns = n;
    s->kind = kind;
    s->flags = 0;
    return 0;
}

void zstor_meta_shard_absent(struct zstor_meta_record *r, unsigned i)
{
    if (i >= r->nshards)
        return;
    shard_clear_keys(&r->shard[i]);
    r->shard[i].flags |= ZSTOR_META_SHARD_ABSENT;
}

/* Appends one chunk's layout entry (room must exist). */
static void lay_push(struct zstor_meta_shard *s, uint64_t chunks, uint32_t parts)
{
    if (s->nlay && s->lay[s->nlay - 1].parts == parts) {
        s->lay[s->nlay - 1].chunks += chunks;
    } else {
        struct zstor_meta_lrun *l = &s->lay[s->nlay++];
        l->chunks = chunks;
        l->parts = parts;
        l->first_chunk = s->nchunks;
        l->first_key = s->nkeys;
    }
}

/* Appends ids [start, start+count) as key numbers from first_key on (room must exist). */
static void ids_push(struct zstor_meta_shard *s, uint64_t start, uint64_t count, uint64_t first_key)
{
    if (s->nids) {
        struct zstor_meta_irun *l = &s->ids[s->nids - 1];
        if (l->start + l->count == start) {
            l->count += count;
            return;
        }
    }
    struct zstor_meta_irun *l = &s->ids[s->nids++];
    l->start = start;
    l->count = count;
    l->first_key = first_key;
}

int zstor_meta_shard_add(struct zstor_meta_record *r, unsigned i,
                         const struct zstor_meta_keyref *keys, unsigned nkeys, uint32_t crc)
{
    if (i >= r->nshards)
        return qs_err_set(QS_EINVAL, "metadata record: shard %u of %u", i, r->nshards);
    struct zstor_meta_shard *s = &r->shard[i];
    if (s->flags & ZSTOR_META_SHARD_ABSENT)
        return qs_err_set(QS_EINVAL, "metadata record: shard %u has no backend", i);
    if (nkeys < 1 || nkeys > ZSTOR_META_PARTS_MAX)
        return qs_err_set(QS_EINVAL, "metadata record: %u keys for one shard (1..%u)", nkeys,
                          ZSTOR_META_PARTS_MAX);
    size_t bytes = 0;
    for (unsigned j = 0; j < nkeys; j++) {
        if (s->kind == ZSTOR_META_KEY_SEQ) {
            if (keys[j].id == UINT64_MAX)
                return qs_err_set(QS_EINVAL, "metadata record: id %llu out of range",
                                  (unsigned long long)keys[j].id);
        } else {
            if (keys[j].len < 1 || keys[j].len > ZSTOR_META_BKEY_MAX || !keys[j].p)
                return qs_err_set(QS_EINVAL, "metadata record: key of %zu bytes (1..%d)",
                                  keys[j].len, ZSTOR_META_BKEY_MAX);
            bytes += keys[j].len;
        }
    }
    /* Reserve everything first so that a failure leaves the shard as it was. */
    int rc = grow((void **)&s->lay, &s->caplay, s->nlay + 1, sizeof(*s->lay));
    if (!rc && s->kind == ZSTOR_META_KEY_SEQ)
        rc = grow((void **)&s->ids, &s->capids, s->nids + nkeys, sizeof(*s->ids));
    if (!rc && s->kind == ZSTOR_META_KEY_BYTES) {
        rc = grow((void **)&s->kb, &s->kbcap, s->kblen + bytes, 1);
        if (!rc)
            rc = grow((void **)&s->koff, &s->koffcap, s->nkeys + nkeys + 1, sizeof(*s->koff));
    }
    if (!rc && (r->flags & ZSTOR_META_F_CRC))
        rc = grow((void **)&s->crc, &s->crccap, s->nchunks + 1, sizeof(*s->crc));
    if (rc)
        return rc;

    lay_push(s, 1, nkeys);
    for (unsigned j = 0; j < nkeys; j++) {
        if (s->kind == ZSTOR_META_KEY_SEQ) {
            ids_push(s, keys[j].id, 1, s->nkeys + j);
        } else {
            if (s->nkeys + j == 0)
                s->koff[0] = 0;
            memcpy(s->kb + s->kblen, keys[j].p, keys[j].len);
            s->kblen += keys[j].len;
            s->koff[s->nkeys + j + 1] = s->kblen;
        }
    }
    if (r->flags & ZSTOR_META_F_CRC)
        s->crc[s->nchunks] = crc;
    s->nchunks++;
    s->nkeys += nkeys;
    return 0;
}

int zstor_meta_chunk_keys(const struct zstor_meta_record *r, unsigned i, uint64_t c,
                          struct zstor_meta_keyref *out, unsigned max, unsigned *n, uint32_t *crc)
{
    *n = 0;
    if (crc)
        *crc = 0;
    if (i >= r->nshards)
        return qs_err_set(QS_EINVAL, "metadata record: shard %u of %u", i, r->nshards);
    const struct zstor_meta_shard *s = &r->shard[i];
    if (s->flags & ZSTOR_META_SHARD_ABSENT)
        return qs_err_set(QS_ENOTFOUND, "metadata record: shard %u was not stored", i);
    if (c >= s->nchunks)
        return qs_err_set(QS_EINVAL, "metadata record: chunk %llu of %llu", (unsigned long long)c,
                          (unsigned long long)s->nchunks);
    /* last layout run starting at or before c */
    size_t lo = 0, hi = s->nlay;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->lay[mid].first_chunk <= c)
            lo = mid;
        else
            hi = mid;
    }
    const struct zstor_meta_lrun *l = &s->lay[lo];
    uint64_t key = l->first_key + (c - l->first_chunk) * l->parts;
    *n = l->parts;
    if (crc && (r->flags & ZSTOR_META_F_CRC))
        *crc = s->crc[c];
    size_t run = 0;
    if (s->kind == ZSTOR_META_KEY_SEQ) {
        lo = 0, hi = s->nids;
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (s->ids[mid].first_key <= key)
                lo = mid;
            else
                hi = mid;
        }
        run = lo;
    }
    for (unsigned j = 0; j < l->parts && j < max; j++, key++) {
        memset(&out[j], 0, sizeof(out[j]));
        if (s->kind == ZSTOR_META_KEY_SEQ) {
            while (key >= s->ids[run].first_key + s->ids[run].count)
                run++;
            out[j].id = s->ids[run].start + (key - s->ids[run].first_key);
        } else {
            out[j].p = s->kb + s->koff[key];
            out[j].len = (size_t)(s->koff[key + 1] - s->koff[key]);
        }
    }
    return 0;
}

/* ---- encoding ---- */

/* A writer that only counts when p is NULL. */
struct wr {
    uint8_t *p;
    size_t n;
};

static void put(struct wr *w, const void *src, size_t n)
{
    if (w->p && n)
        memcpy(w->p + w->n, src, n);
    w->n += n;
}

static void put_u8(struct wr *w, unsigned v)
{
    uint8_t b = (uint8_t)v;
    put(w, &b, 1);
}

static void put_u32(struct wr *w, uint32_t v)
{
    uint8_t b[4];
    qs_put32(b, v);
    put(w, b, 4);
}

static void put_uvar(struct wr *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    put(w, b, n);
}

static void put_str(struct wr *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    put_uvar(w, n);
    put(w, s, n);
}

static uint64_t zigzag(uint64_t d)
{
    return (d << 1) ^ (uint64_t) - (int64_t)(d >> 63);
}

static void write_record(const struct zstor_meta_record *r, struct wr *w)
{
    uint8_t h[HDR_LEN];
    memcpy(h, rec_magic, 4);
    h[4] = ZSTOR_META_RECORD_VERSION;
    h[5] = (uint8_t)r->flags;
    h[6] = (uint8_t)r->compress;
    h[7] = (uint8_t)(int8_t)r->level;
    qs_put64(h + 8, r->size);
    qs_put64(h + 16, (uint64_t)r->mtime_sec);
    qs_put32(h + 24, r->mtime_nsec);
    qs_put32(h + 28, r->mode);
    qs_put64(h + 32, r->stored);
    qs_put64(h + 40, r->nchunks);
    memcpy(h + 48, r->checksum, 16);
    qs_codec_desc_encode(&r->desc, h + 64);
    put(w, h, HDR_LEN);
    put_str(w, r->path);
    for (unsigned i = 0; i < r->nshards; i++) {
        const struct zstor_meta_shard *s = &r->shard[i];
        put_u8(w, s->flags);
        put_str(w, s->address);
        put_str(w, s->ns);
        if (s->flags & ZSTOR_META_SHARD_ABSENT)
            continue;
        put_u8(w, s->kind);
        put_uvar(w, s->nlay);
        for (size_t j = 0; j < s->nlay; j++) {
            put_uvar(w, s->lay[j].chunks);
            put_uvar(w, s->lay[j].parts);
        }
        if (s->kind == ZSTOR_META_KEY_SEQ) {
            put_uvar(w, s->nids);
            uint64_t end = 0;
            for (size_t j = 0; j < s->nids; j++) {
                put_uvar(w, zigzag(s->ids[j].start - end));
                put_uvar(w, s->ids[j].count);
                end = s->ids[j].start + s->ids[j].count;
            }
        } else {
            for (uint64_t j = 0; j < s->nkeys; j++) {
                size_t l = (size_t)(s->koff[j + 1] - s->koff[j]);
                put_uvar(w, l);
                put(w, s->kb + s->koff[j], l);
            }
        }
        if (r->flags & ZSTOR_META_F_CRC)
            for (uint64_t c = 0; c < s->nchunks; c++)
                put_u32(w, s->crc[c]);
    }
}

int zstor_meta_record_encode(const struct zstor_meta_record *r, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int rc;
    if ((rc = check_desc(&r->desc)) != 0)
        return rc;
    if (r->nshards != r->desc.k + r->desc.m || !r->shard)
        return qs_err_set(QS_EINVAL, "metadata record: %u shards for %u+%u", r->nshards, r->desc.k,
                          r->desc.m);
    if (!r->path || (rc = check_path(r->path)) != 0)
        return r->path ? rc : qs_err_set(QS_EINVAL, "metadata record: no path");
    if (r->flags & ~ZSTOR_META_F_CRC)
        return qs_err_set(QS_EINVAL, "metadata record: unknown flags 0x%x", r->flags);
    if (r->mtime_nsec >= 1000000000u)
        return qs_err_set(QS_EINVAL, "metadata record: mtime nanoseconds %u", r->mtime_nsec);
    if ((unsigned)r->compress > QS_COMPRESS_LZ4 || r->level < -128 || r->level > 127)
        return qs_err_set(QS_EINVAL, "metadata record: bad compression %d level %d",
                          (int)r->compress, r->level);
    for (unsigned i = 0; i < r->nshards; i++) {
        const struct zstor_meta_shard *s = &r->shard[i];
        if (s->flags & ~ZSTOR_META_SHARD_ABSENT)
            return qs_err_set(QS_EINVAL, "metadata record: shard %u: unknown flags", i);
        if (s->flags & ZSTOR_META_SHARD_ABSENT) {
            if ((s->address && strlen(s->address) > ZSTOR_META_ADDR_MAX) ||
                (s->ns && strlen(s->ns) > ZSTOR_META_NS_MAX))
                return qs_err_set(QS_EINVAL, "metadata record: shard %u: name too long", i);
            continue;
        }
        if (!s->address || !s->ns)
            return qs_err_set(QS_EINVAL, "metadata record: shard %u has no backend", i);
        if (s->nchunks != r->nchunks)
            return qs_err_set(QS_EINVAL,
                              "metadata record: shard %u holds %llu chunks, the record %llu", i,
                              (unsigned long long)s->nchunks, (unsigned long long)r->nchunks);
    }
    struct wr w = {NULL, 0};
    write_record(r, &w);
    if (w.n + 4 > ZSTOR_META_RECORD_MAX)
        return qs_err_set(QS_ENOMEM, "metadata record of '%s' would take %zu bytes (limit %u)",
                          r->path, w.n + 4, ZSTOR_META_RECORD_MAX);
    size_t total = w.n + 4;
    uint8_t *buf = malloc(total);
    if (!buf)
        return qs_err_set(QS_ENOMEM, "metadata record: out of memory");
    w.p = buf;
    w.n = 0;
    write_record(r, &w);
    qs_put32(buf + w.n, crc32c(buf, w.n));
    *out = buf;
    *len = total;
    return 0;
}

/* ---- decoding ---- */

struct rd {
    const uint8_t *p;
    size_t n, off;
};

static int bad(const struct rd *d, const char *what)
{
    return qs_err_set(QS_ECORRUPT, "metadata record: %s (at byte %zu)", what, d->off);
}

static int get(struct rd *d, void *dst, size_t n, const char *what)
{
    if (d->n - d->off < n)
        return bad(d, what);
    memcpy(dst, d->p + d->off, n);
    d->off += n;
    return 0;
}

static int get_u8(struct rd *d, unsigned *v, const char *what)
{
    uint8_t b = 0;
    int rc = get(d, &b, 1, what);
    *v = b;
    return rc;
}

/* Unsigned LEB128, at most 10 bytes, minimal (no trailing zero groups). */
static int get_uvar(struct rd *d, uint64_t *v, const char *what)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (d->off >= d->n)
            return bad(d, what);
        uint8_t b = d->p[d->off++];
        if (i == 9 && b > 1)
            return bad(d, what);
        x |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            if (b == 0 && i > 0)
                return bad(d, what); /* not minimal */
            *v = x;
            return 0;
        }
    }
    return bad(d, what);
}

static int get_str(struct rd *d, char **out, size_t lo, size_t hi, const char *what)
{
    uint64_t n = 0;
    int rc = get_uvar(d, &n, what);
    if (rc)
        return rc;
    if (n < lo || n > hi || n > d->n - d->off)
        return bad(d, what);
    if (!zstor_meta_utf8_ok(d->p + d->off, (size_t)n))
        return bad(d, what);
    char *s = malloc((size_t)n + 1);
    if (!s)
        return qs_err_set(QS_ENOMEM, "metadata record: out of memory");
    memcpy(s, d->p + d->off, (size_t)n);
    s[n] = '\0';
    d->off += (size_t)n;
    *out = s;
    return 0;
}

static int decode_shard(struct zstor_meta_record *r, struct zstor_meta_shard *s, struct rd *d)
{
    unsigned flags, kind;
    int rc;
    if ((rc = get_u8(d, &flags, "shard flags")) != 0)
        return rc;
    if (flags & ~ZSTOR_META_SHARD_ABSENT)
        return bad(d, "unknown shard flags");
    s->flags = flags;
    int absent = (flags & ZSTOR_META_SHARD_ABSENT) != 0;
    if ((rc = get_str(d, &s->address, absent ? 0 : 1, ZSTOR_META_ADDR_MAX, "backend address")) ||
        (rc = get_str(d, &s->ns, 0, ZSTOR_META_NS_MAX, "namespace")))
        return rc;
    if (absent)
        return 0;
    if ((rc = get_u8(d, &kind, "key kind")) != 0)
        return rc;
    if (kind != ZSTOR_META_KEY_SEQ && kind != ZSTOR_META_KEY_BYTES)
        return bad(d, "unknown key kind");
    s->kind = kind;

    /* layout runs: every run takes at least 2 bytes, which bounds the allocation */
    uint64_t nlay;
    if ((rc = get_uvar(d, &nlay, "layout run count")) != 0)
        return rc;
    if (nlay > (d->n - d->off) / 2 || (nlay == 0) != (r->nchunks == 0))
        return bad(d, "layout run count");
    if (nlay && (rc = grow((void **)&s->lay, &s->caplay, (size_t)nlay, sizeof(*s->lay))) != 0)
        return rc;
    for (uint64_t j = 0; j < nlay; j++) {
        uint64_t chunks, parts;
        if ((rc = get_uvar(d, &chunks, "layout run")) || (rc = get_uvar(d, &parts, "layout run")))
            return rc;
        if (chunks < 1 || chunks > r->nchunks - s->nchunks || parts < 1 ||
            parts > ZSTOR_META_PARTS_MAX || (j && s->lay[j - 1].parts == parts))
            return bad(d, "layout run");
        uint64_t keys;
        if (__builtin_mul_overflow(chunks, parts, &keys) ||
            __builtin_add_overflow(s->nkeys, keys, &keys))
            return bad(d, "layout run");
        struct zstor_meta_lrun *l = &s->lay[s->nlay++];
        l->chunks = chunks;
        l->parts = (uint32_t)parts;
        l->first_chunk = s->nchunks;
        l->first_key = s->nkeys;
        s->nchunks += chunks;
        s->nkeys = keys;
    }
    if (s->nchunks != r->nchunks)
        return bad(d, "layout covers fewer chunks than the record");

    if (kind == ZSTOR_META_KEY_SEQ) {
        uint64_t nids, end = 0, seen = 0;
        if ((rc = get_uvar(d, &nids, "id run count")) != 0)
            return rc;
        if (nids > (d->n - d->off) / 2 || (nids == 0) != (s->nkeys == 0))
            return bad(d, "id run count");
        if (nids && (rc = grow((void **)&s->ids, &s->capids, (size_t)nids, sizeof(*s->ids))))
            return rc;
        for (uint64_t j = 0; j < nids; j++) {
            uint64_t z, count;
            if ((rc = get_uvar(d, &z, "id run")) || (rc = get_uvar(d, &count, "id run")))
                return rc;
            uint64_t delta = (z >> 1) ^ (uint64_t) - (int64_t)(z & 1);
            uint64_t start = end + delta;
            /* runs after the first never touch the previous one (they would be merged) */
            if (count < 1 || count > s->nkeys - seen || (j && start == end) ||
                count > UINT64_MAX - start)
                return bad(d, "id run");
            struct zstor_meta_irun *l = &s->ids[s->nids++];
            l->start = start;
            l->count = count;
            l->first_key = seen;
            seen += count;
            end = start + count;
        }
        if (seen != s->nkeys)
            return bad(d, "id runs hold fewer keys than the layout");
    } else {
        /* every key takes at least 2 bytes */
        if (s->nkeys > (d->n - d->off) / 2)
            return bad(d, "key count");
        if ((rc = grow((void **)&s->koff, &s->koffcap, (size_t)s->nkeys + 1, sizeof(*s->koff))))
            return rc;
        s->koff[0] = 0;
        size_t start = d->off, total = 0;
        for (uint64_t j = 0; j < s->nkeys; j++) {
            uint64_t l;
            if ((rc = get_uvar(d, &l, "key length")) != 0)
                return rc;
            if (l < 1 || l > ZSTOR_META_BKEY_MAX || l > d->n - d->off)
                return bad(d, "key length");
            d->off += (size_t)l;
            total += (size_t)l;
            s->koff[j + 1] = total;
        }
        if (total && (rc = grow((void **)&s->kb, &s->kbcap, total, 1)) != 0)
            return rc;
        /* second pass: copy the bytes */
        size_t off = start;
        for (uint64_t j = 0; j < s->nkeys; j++) {
            size_t l = (size_t)(s->koff[j + 1] - s->koff[j]);
            off += 1 + (l >= 128); /* the length prefix: 1 or 2 bytes for 1..255 */
            memcpy(s->kb + s->koff[j], d->p + off, l);
            off += l;
        }
        s->kblen = total;
    }
    if (r->flags & ZSTOR_META_F_CRC) {
        if (r->nchunks > (d->n - d->off) / 4)
            return bad(d, "shard checksums");
        if (r->nchunks &&
            (rc = grow((void **)&s->crc, &s->crccap, (size_t)r->nchunks, sizeof(*s->crc))))
            return rc;
        for (uint64_t c = 0; c < r->nchunks; c++) {
            s->crc[c] = qs_le32(d->p + d->off);
            d->off += 4;
        }
    }
    return 0;
}

int zstor_meta_record_decode(struct zstor_meta_record *r, const uint8_t *p, size_t len)
{
    memset(r, 0, sizeof(*r));
    struct rd d = {p, len, 0};
    int rc;
    if (len < 4 || memcmp(p, rec_magic, 4) != 0)
        return qs_err_set(QS_ECORRUPT, "metadata record: bad magic");
    if (len >= 5 && p[4] != ZSTOR_META_RECORD_VERSION)
        return qs_err_set(QS_EINVAL,
                          "metadata record: format version %u, this build reads version %d", p[4],
                          ZSTOR_META_RECORD_VERSION);
    if (len > ZSTOR_META_RECORD_MAX)
        return qs_err_set(QS_ECORRUPT, "metadata record: %zu bytes, more than the limit", len);
    if (len < HDR_LEN + 4)
        return qs_err_set(QS_ECORRUPT, "metadata record: truncated (%zu bytes)", len);
    if (qs_le32(p + len - 4) != crc32c(p, len - 4))
        return qs_err_set(QS_ECORRUPT, "metadata record: checksum mismatch");
    d.n = len - 4;
    r->flags = p[5];
    if (r->flags & ~ZSTOR_META_F_CRC)
        return qs_err_set(QS_ECORRUPT, "metadata record: unknown flags 0x%x", r->flags);
    r->compress = (enum qs_compress)p[6];
    if (p[6] > QS_COMPRESS_LZ4)
        return qs_err_set(QS_ECORRUPT, "metadata record: unknown compression %u", p[6]);
    r->level = (int8_t)p[7];
    r->size = qs_le64(p + 8);
    r->mtime_sec = (int64_t)qs_le64(p + 16);
    r->mtime_nsec = qs_le32(p + 24);
    if (r->mtime_nsec >= 1000000000u)
        return qs_err_set(QS_ECORRUPT, "metadata record: mtime nanoseconds out of range");
    r->mode = qs_le32(p + 28);
    r->stored = qs_le64(p + 32);
    r->nchunks = qs_le64(p + 40);
    memcpy(r->checksum, p + 48, 16);
    if ((rc = qs_codec_desc_decode(&r->desc, p + 64, QS_CODEC_DESC_LEN)) != 0) {
        /* only a newer codec version is "invalid"; bad parameters in a v1 one are damage */
        if (rc == QS_EINVAL && p[64 + 4] == QS_CODEC_VERSION)
            rc = QS_ECORRUPT;
        return qs_err_set(rc, "metadata record: %s", qs_err_msg());
    }
    d.off = HDR_LEN;
    if ((rc = get_str(&d, &r->path, 1, ZSTOR_META_PATH_MAX, "path")) != 0)
        return rc;
    if (zstor_meta_name_check(r->path, 1) != 0)
        return qs_err_set(QS_ECORRUPT, "metadata record: stored name refused: %s", qs_err_msg());
    r->nshards = r->desc.k + r->desc.m;
    if ((r->shard = calloc(r->nshards, sizeof(*r->shard))) == NULL)
        return qs_err_set(QS_ENOMEM, "metadata record: out of memory");
    for (unsigned i = 0; i < r->nshards; i++)
        if ((rc = decode_shard(r, &r->shard[i], &d)) != 0)
            return rc;
    if (d.off != d.n)
        return bad(&d, "trailing bytes");
    return 0;
}

int zstor_meta_record_check(const struct zstor_meta_record *r)
{
    uint64_t cs = r->desc.chunk_size;
    uint64_t want = r->size == 0 ? 1 : r->size / cs + (r->size % cs != 0);
    if (r->nchunks != want)
        return qs_err_set(QS_ECORRUPT,
                          "metadata of '%s': %llu chunks recorded, %llu bytes in chunks of %llu "
                          "make %llu",
                          r->path, (unsigned long long)r->nchunks, (unsigned long long)r->size,
                          (unsigned long long)cs, (unsigned long long)want);
    unsigned present = 0;
    for (unsigned i = 0; i < r->nshards; i++) {
        const struct zstor_meta_shard *s = &r->shard[i];
        if (s->flags & ZSTOR_META_SHARD_ABSENT)
            continue;
        if (s->nchunks != r->nchunks)
            return qs_err_set(QS_ECORRUPT, "metadata of '%s': shard %u holds %llu of %llu chunks",
                              r->path, i, (unsigned long long)s->nchunks,
                              (unsigned long long)r->nchunks);
        present++;
    }
    if (present < r->desc.k)
        return qs_err_set(QS_ECORRUPT,
                          "metadata of '%s': only %u of %u shards were stored, %u are needed",
                          r->path, present, r->nshards, r->desc.k);
    return 0;
}

int zstor_meta_check_data_key(const struct zstor_meta_record *r,
                              const uint8_t key[QS_CODEC_KEY_LEN])
{
    struct qs_codec_desc d;
    int rc = qs_codec_desc_new(&d, r->desc.k, r->desc.m, r->desc.chunk_size, r->desc.file_id, key);
    if (rc)
        return rc;
    uint8_t diff = 0;
    for (size_t i = 0; i < QS_CODEC_KCV_LEN; i++)
        diff |= (uint8_t)(d.key_check[i] ^ r->desc.key_check[i]);
    if (diff)
        return qs_err_set(QS_EDENIED, "the configured data key is not the key '%s' was stored with",
                          r->path ? r->path : "");
    return 0;
}
