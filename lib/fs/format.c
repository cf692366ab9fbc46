/* zdbfs value encoders and decoders (see format.h, docs/zdbfs-format.md). */
#include "fs/format.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/crc32c.h"
#include "util/mem.h"

uint32_t qs_fs_crc(const void *p, size_t n)
{
    return ~qs_crc32c_update(~0u, p, n);
}

/* ---- a bounds-checked reader ---- */

struct rd {
    const uint8_t *p;
    size_t n, off;
    bool bad;
};

static const uint8_t *rd_take(struct rd *r, size_t k)
{
    if (r->bad || k > r->n - r->off) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *q = r->p + r->off;
    r->off += k;
    return q;
}

static uint8_t rd8(struct rd *r)
{
    const uint8_t *q = rd_take(r, 1);
    return q ? q[0] : 0;
}
static uint16_t rd16(struct rd *r)
{
    const uint8_t *q = rd_take(r, 2);
    return q ? qs_le16(q) : 0;
}
static uint32_t rd32(struct rd *r)
{
    const uint8_t *q = rd_take(r, 4);
    return q ? qs_le32(q) : 0;
}
static uint64_t rd64(struct rd *r)
{
    const uint8_t *q = rd_take(r, 8);
    return q ? qs_le64(q) : 0;
}

/* ---- a growing writer (malloc'd, checked sizes) ---- */

struct wr {
    uint8_t *p;
    size_t n, cap;
    bool bad;
};

static uint8_t *wr_room(struct wr *w, size_t k)
{
    if (w->bad)
        return NULL;
    if (k > SIZE_MAX / 2 - w->n) {
        w->bad = true;
        return NULL;
    }
    if (w->n + k > w->cap) {
        size_t c = w->cap ? w->cap : 256;
        while (c < w->n + k)
            c *= 2;
        uint8_t *q = realloc(w->p, c);
        if (!q) {
            w->bad = true;
            return NULL;
        }
        w->p = q;
        w->cap = c;
    }
    uint8_t *q = w->p + w->n;
    w->n += k;
    return q;
}
static void wr8(struct wr *w, uint8_t v)
{
    uint8_t *q = wr_room(w, 1);
    if (q)
        q[0] = v;
}
static void wr16(struct wr *w, uint16_t v)
{
    uint8_t *q = wr_room(w, 2);
    if (q)
        qs_put16(q, v);
}
static void wr32(struct wr *w, uint32_t v)
{
    uint8_t *q = wr_room(w, 4);
    if (q)
        qs_put32(q, v);
}
static void wr64(struct wr *w, uint64_t v)
{
    uint8_t *q = wr_room(w, 8);
    if (q)
        qs_put64(q, v);
}
static void wrb(struct wr *w, const void *b, size_t k)
{
    uint8_t *q = wr_room(w, k);
    if (q && k)
        memcpy(q, b, k);
}

/* Appends the CRC and hands the buffer out. */
static int wr_done(struct wr *w, uint8_t **out, size_t *len, const char *what)
{
    if (!w->bad)
        wr32(w, qs_fs_crc(w->p, w->n));
    if (w->bad) {
        free(w->p);
        return qs_err_set(QS_ENOMEM, "encoding %s: out of memory", what);
    }
    *out = w->p;
    *len = w->n;
    return 0;
}

/* Checks and strips the trailing CRC. */
static int crc_check(const uint8_t *p, size_t n, const char *what, size_t *body)
{
    if (n < 4)
        return qs_err_set(QS_ECORRUPT, "%s: %zu bytes, too short", what, n);
    if (qs_fs_crc(p, n - 4) != qs_le32(p + n - 4))
        return qs_err_set(QS_ECORRUPT, "%s: checksum mismatch", what);
    *body = n - 4;
    return 0;
}

/* ---- header ---- */

static const char *const magics[3] = {"ZDBFSM", "ZDBFSD", "ZDBFST"};

size_t qs_fs_header_encode(const struct qs_fs_header *h, uint8_t out[QS_FS_HDR_V2_LEN])
{
    memset(out, 0, QS_FS_HDR_V2_LEN);
    memcpy(out, magics[h->ns], 6);
    qs_put16(out + 6, h->version);
    qs_put16(out + 8, h->flags);
    qs_put64(out + 10, h->size);
    if (h->version < QS_FS_LAYOUT_V2)
        return QS_FS_HDR_V1_LEN;
    qs_put32(out + 18, h->block_size);
    qs_put64(out + 22, h->journal_key);
    qs_put64(out + 30, h->created);
    memcpy(out + 38, h->uuid, 16);
    qs_put32(out + 60, qs_fs_crc(out, 60));
    return QS_FS_HDR_V2_LEN;
}

int qs_fs_header_decode(const uint8_t *p, size_t n, struct qs_fs_header *h)
{
    memset(h, 0, sizeof *h);
    if (n < QS_FS_HDR_V1_LEN)
        return qs_err_set(QS_ECORRUPT, "header: %zu bytes, not a zdbfs header", n);
    int ns = -1;
    for (int i = 0; i < 3; i++)
        if (memcmp(p, magics[i], 6) == 0)
            ns = i;
    if (ns < 0)
        return qs_err_set(QS_ECORRUPT, "header: no ZDBFS magic (not a zdbfs namespace)");
    h->ns = (enum qs_fs_ns)ns;
    h->version = qs_le16(p + 6);
    h->flags = qs_le16(p + 8);
    h->size = qs_le64(p + 10);
    if (h->version == QS_FS_LAYOUT_V1) {
        if (n != QS_FS_HDR_V1_LEN)
            return qs_err_set(QS_ECORRUPT, "header: version 1 with %zu bytes (18 expected)", n);
        h->block_size = 128 * 1024;
        return 0;
    }
    if (h->version != QS_FS_LAYOUT_V2)
        return qs_err_set(QS_ECORRUPT,
                          "header: layout version %u unknown (this zdbfs reads 1 and 2)",
                          h->version);
    if (n != QS_FS_HDR_V2_LEN)
        return qs_err_set(QS_ECORRUPT, "header: version 2 with %zu bytes (64 expected)", n);
    if (qs_fs_crc(p, 60) != qs_le32(p + 60))
        return qs_err_set(QS_ECORRUPT, "header: checksum mismatch");
    h->block_size = qs_le32(p + 18);
    h->journal_key = qs_le64(p + 22);
    h->created = qs_le64(p + 30);
    memcpy(h->uuid, p + 38, 16);
    if (h->ns == QS_FS_META && (h->block_size < 4096 || h->block_size > 4u * 1024 * 1024 ||
                                (h->block_size & (h->block_size - 1)) != 0))
        return qs_err_set(QS_ECORRUPT,
                          "header: block size %u is not a power of two in 4 KiB..4 MiB",
                          h->block_size);
    return 0;
}

/* ---- inode ---- */

#define INODE_MAGIC 0x49 /* 'I' */

void qs_fs_dinode_free(struct qs_fs_dinode *d)
{
    if (!d)
        return;
    for (uint32_t i = 0; i < d->nxattr; i++) {
        free(d->xattr[i].name);
        free(d->xattr[i].value);
    }
    free(d->xattr);
    free(d->blocks);
    free(d->lens);
    free(d->pages);
    free(d->buckets);
    free(d->target);
    memset(d, 0, sizeof *d);
}

static void wr_time(struct wr *w, struct qs_fs_time t)
{
    wr64(w, (uint64_t)t.sec);
    wr32(w, t.nsec);
}

static struct qs_fs_time rd_time(struct rd *r)
{
    struct qs_fs_time t;
    t.sec = (int64_t)rd64(r);
    t.nsec = rd32(r);
    return t;
}

int qs_fs_dinode_encode(const struct qs_fs_dinode *d, uint8_t **out, size_t *len)
{
    struct wr w = {0};
    wr8(&w, INODE_MAGIC);
    wr8(&w, QS_FS_LAYOUT_V2);
    wr32(&w, d->mode);
    wr32(&w, d->uid);
    wr32(&w, d->gid);
    wr32(&w, d->nlink);
    wr32(&w, d->flags);
    wr64(&w, d->size);
    wr64(&w, d->rdev);
    wr64(&w, d->parent);
    wr_time(&w, d->atime);
    wr_time(&w, d->mtime);
    wr_time(&w, d->ctime);
    wr_time(&w, d->btime);
    wr32(&w, d->nxattr);
    for (uint32_t i = 0; i < d->nxattr; i++) {
        size_t nl = strlen(d->xattr[i].name);
        if (nl == 0 || nl > 255) {
            free(w.p);
            return qs_err_set(QS_EINVAL, "inode: xattr name of %zu bytes", nl);
        }
        wr8(&w, (uint8_t)nl);
        wr32(&w, d->xattr[i].len);
        wrb(&w, d->xattr[i].name, nl);
        wrb(&w, d->xattr[i].value, d->xattr[i].len);
    }
    switch (d->mode & S_IFMT) {
    case S_IFREG:
        wr64(&w, d->nblocks);
        wr32(&w, d->npages);
        if (d->npages == 0) {
            if (d->nblocks > QS_FS_INLINE_BLOCKS) {
                free(w.p);
                return qs_err_set(QS_EINVAL, "inode: %llu inline blocks",
                                  (unsigned long long)d->nblocks);
            }
            for (uint64_t i = 0; i < d->nblocks; i++) {
                wr64(&w, d->blocks[i]);
                wr32(&w, d->lens[i]);
            }
        } else {
            wr64(&w, d->nalloc);
            for (uint32_t i = 0; i < d->npages; i++)
                wr64(&w, d->pages[i]);
        }
        break;
    case S_IFDIR:
        wr32(&w, d->nbuckets);
        wr64(&w, d->next_cookie);
        for (uint32_t i = 0; i < d->nbuckets; i++)
            wr64(&w, d->buckets[i]);
        break;
    case S_IFLNK: {
        size_t tl = d->target ? strlen(d->target) : 0;
        wr16(&w, (uint16_t)tl);
        wrb(&w, d->target, tl);
        break;
    }
    default:
        break;
    }
    return wr_done(&w, out, len, "inode");
}

static bool valid_type(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFDIR:
    case S_IFLNK:
    case S_IFIFO:
    case S_IFCHR:
    case S_IFBLK:
    case S_IFSOCK:
        return true;
    default:
        return false;
    }
}

int qs_fs_dinode_decode(const uint8_t *p, size_t n, struct qs_fs_dinode *d)
{
    memset(d, 0, sizeof *d);
    size_t body = 0;
    int rc = crc_check(p, n, "inode", &body);
    if (rc)
        return rc;
    struct rd r = {.p = p, .n = body};
    if (rd8(&r) != INODE_MAGIC || rd8(&r) != QS_FS_LAYOUT_V2)
        return qs_err_set(QS_ECORRUPT, "inode: bad magic or version");
    d->mode = rd32(&r);
    d->uid = rd32(&r);
    d->gid = rd32(&r);
    d->nlink = rd32(&r);
    d->flags = rd32(&r);
    d->size = rd64(&r);
    d->rdev = rd64(&r);
    d->parent = rd64(&r);
    d->atime = rd_time(&r);
    d->mtime = rd_time(&r);
    d->ctime = rd_time(&r);
    d->btime = rd_time(&r);
    uint32_t nx = rd32(&r);
    if (r.bad)
        goto short_;
    if (!valid_type(d->mode))
        return qs_err_set(QS_ECORRUPT, "inode: file type 0%o unknown", d->mode & S_IFMT);
    if (d->atime.nsec >= 1000000000u || d->mtime.nsec >= 1000000000u ||
        d->ctime.nsec >= 1000000000u || d->btime.nsec >= 1000000000u)
        return qs_err_set(QS_ECORRUPT, "inode: nanoseconds out of range");
    if (nx > QS_FS_XATTR_MAX / 2)
        return qs_err_set(QS_ECORRUPT, "inode: %u xattrs", nx);
    if (nx) {
        d->xattr = calloc(nx, sizeof *d->xattr);
        if (!d->xattr)
            return qs_err_set(QS_ENOMEM, "inode: out of memory");
    }
    size_t xbytes = 0;
    for (uint32_t i = 0; i < nx; i++) {
        uint8_t nl = rd8(&r);
        uint32_t vl = rd32(&r);
        const uint8_t *name = rd_take(&r, nl);
        const uint8_t *val = rd_take(&r, vl);
        if (r.bad)
            goto short_;
        xbytes += (size_t)nl + vl;
        if (nl == 0 || memchr(name, 0, nl) || xbytes > QS_FS_XATTR_MAX) {
            qs_fs_dinode_free(d);
            return qs_err_set(QS_ECORRUPT, "inode: bad xattr %u", i);
        }
        d->xattr[i].name = strndup((const char *)name, nl);
        d->xattr[i].value = malloc(vl ? vl : 1);
        d->nxattr = i + 1;
        if (!d->xattr[i].name || !d->xattr[i].value) {
            qs_fs_dinode_free(d);
            return qs_err_set(QS_ENOMEM, "inode: out of memory");
        }
        if (vl)
            memcpy(d->xattr[i].value, val, vl);
        d->xattr[i].len = vl;
    }
    switch (d->mode & S_IFMT) {
    case S_IFREG: {
        d->nblocks = rd64(&r);
        d->npages = rd32(&r);
        if (r.bad)
            goto short_;
        if (d->npages == 0 && d->nblocks > QS_FS_INLINE_BLOCKS)
            goto bad_count;
        if (d->npages && (d->nblocks + QS_FS_PAGE_KEYS - 1) / QS_FS_PAGE_KEYS != d->npages)
            goto bad_count;
        if (d->npages) {
            d->nalloc = rd64(&r);
            if (r.bad || d->npages > (body - r.off) / 8 || d->nalloc > d->nblocks)
                goto short_;
            d->pages = calloc(d->npages, 8);
            if (!d->pages) {
                qs_fs_dinode_free(d);
                return qs_err_set(QS_ENOMEM, "inode: out of memory");
            }
            for (uint32_t i = 0; i < d->npages; i++)
                d->pages[i] = rd64(&r);
        } else {
            if (d->nblocks > (body - r.off) / 12)
                goto short_;
            d->blocks = calloc(d->nblocks ? d->nblocks : 1, 8);
            d->lens = calloc(d->nblocks ? d->nblocks : 1, 4);
            if (!d->blocks || !d->lens) {
                qs_fs_dinode_free(d);
                return qs_err_set(QS_ENOMEM, "inode: out of memory");
            }
            for (uint64_t i = 0; i < d->nblocks; i++) {
                d->blocks[i] = rd64(&r);
                d->lens[i] = rd32(&r);
                if (d->blocks[i] == 0 && d->lens[i] != 0) {
                    qs_fs_dinode_free(d);
                    return qs_err_set(QS_ECORRUPT, "inode: a hole with a length");
                }
            }
        }
        break;
    }
    case S_IFDIR: {
        d->nbuckets = rd32(&r);
        d->next_cookie = rd64(&r);
        if (r.bad)
            goto short_;
        if (d->nbuckets == 0 || d->nbuckets > QS_FS_MAX_BUCKETS ||
            (d->nbuckets & (d->nbuckets - 1)) != 0)
            goto bad_count;
        if (d->nbuckets > (body - r.off) / 8)
            goto short_;
        d->buckets = calloc(d->nbuckets, 8);
        if (!d->buckets) {
            qs_fs_dinode_free(d);
            return qs_err_set(QS_ENOMEM, "inode: out of memory");
        }
        for (uint32_t i = 0; i < d->nbuckets; i++)
            d->buckets[i] = rd64(&r);
        break;
    }
    case S_IFLNK: {
        uint16_t tl = rd16(&r);
        const uint8_t *t = rd_take(&r, tl);
        if (r.bad)
            goto short_;
        if (tl == 0 || tl > QS_FS_SYMLINK_MAX || memchr(t, 0, tl)) {
            qs_fs_dinode_free(d);
            return qs_err_set(QS_ECORRUPT, "inode: bad symlink target");
        }
        d->target = strndup((const char *)t, tl);
        if (!d->target) {
            qs_fs_dinode_free(d);
            return qs_err_set(QS_ENOMEM, "inode: out of memory");
        }
        break;
    }
    default:
        break;
    }
    if (r.bad)
        goto short_;
    if (r.off != body) {
        qs_fs_dinode_free(d);
        return qs_err_set(QS_ECORRUPT, "inode: %zu trailing bytes", body - r.off);
    }
    return 0;
short_:
    qs_fs_dinode_free(d);
    return qs_err_set(QS_ECORRUPT, "inode: value of %zu bytes is too short", n);
bad_count:
    qs_fs_dinode_free(d);
    return qs_err_set(QS_ECORRUPT, "inode: inconsistent block or bucket count");
}

/* ---- map page ---- */

int qs_fs_page_encode(const uint64_t *keys, const uint32_t *lens, uint32_t n, uint8_t **out,
                      size_t *len)
{
    while (n > 0 && keys[n - 1] == 0)
        n--;
    struct wr w = {0};
    wr8(&w, 0x50); /* 'P' */
    wr16(&w, (uint16_t)n);
    for (uint32_t i = 0; i < n; i++) {
        wr64(&w, keys[i]);
        wr32(&w, lens[i]);
    }
    return wr_done(&w, out, len, "map page");
}

int qs_fs_page_decode(const uint8_t *p, size_t n, uint64_t keys[QS_FS_PAGE_KEYS],
                      uint32_t lens[QS_FS_PAGE_KEYS])
{
    size_t body = 0;
    int rc = crc_check(p, n, "map page", &body);
    if (rc)
        return rc;
    struct rd r = {.p = p, .n = body};
    uint8_t m = rd8(&r);
    uint16_t cnt = rd16(&r);
    if (r.bad || m != 0x50 || cnt > QS_FS_PAGE_KEYS || body != 3 + (size_t)cnt * 12)
        return qs_err_set(QS_ECORRUPT, "map page: bad magic or count");
    memset(keys, 0, QS_FS_PAGE_KEYS * 8);
    memset(lens, 0, QS_FS_PAGE_KEYS * 4);
    for (uint16_t i = 0; i < cnt; i++) {
        keys[i] = rd64(&r);
        lens[i] = rd32(&r);
        if (keys[i] == 0 && lens[i] != 0)
            return qs_err_set(QS_ECORRUPT, "map page: a hole with a length");
    }
    if (cnt && keys[cnt - 1] == 0)
        return qs_err_set(QS_ECORRUPT, "map page: trailing hole stored");
    return 0;
}

/* ---- directory buckets ---- */

int qs_fs_bucket_encode(const struct qs_fs_dent *const *e, uint32_t n, uint8_t **out, size_t *len)
{
    struct wr w = {0};
    wr8(&w, 0x42); /* 'B' */
    wr32(&w, n);
    for (uint32_t i = 0; i < n; i++) {
        wr64(&w, e[i]->cookie);
        wr64(&w, e[i]->ino);
        wr8(&w, e[i]->type);
        wr8(&w, e[i]->namelen);
        wrb(&w, e[i]->name, e[i]->namelen);
    }
    return wr_done(&w, out, len, "directory bucket");
}

static bool valid_name(const uint8_t *s, size_t n)
{
    if (n == 0 || memchr(s, 0, n) || memchr(s, '/', n))
        return false;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    return true;
}

int qs_fs_bucket_decode(const uint8_t *p, size_t n, struct qs_fs_dent **out, uint32_t *count)
{
    *out = NULL;
    *count = 0;
    size_t body = 0;
    int rc = crc_check(p, n, "directory bucket", &body);
    if (rc)
        return rc;
    struct rd r = {.p = p, .n = body};
    uint8_t m = rd8(&r);
    uint32_t cnt = rd32(&r);
    if (r.bad || m != 0x42)
        return qs_err_set(QS_ECORRUPT, "directory bucket: bad magic");
    if (cnt > (body - r.off) / 19)
        return qs_err_set(QS_ECORRUPT, "directory bucket: %u entries in %zu bytes", cnt, n);
    struct qs_fs_dent *e = calloc(cnt ? cnt : 1, sizeof *e);
    if (!e)
        return qs_err_set(QS_ENOMEM, "directory bucket: out of memory");
    for (uint32_t i = 0; i < cnt; i++) {
        e[i].cookie = rd64(&r);
        e[i].ino = rd64(&r);
        e[i].type = rd8(&r);
        e[i].namelen = rd8(&r);
        const uint8_t *nm = rd_take(&r, e[i].namelen);
        if (r.bad || !valid_name(nm, e[i].namelen) || e[i].ino < QS_FS_ROOT_INO) {
            free(e);
            return qs_err_set(QS_ECORRUPT, "directory bucket: bad entry %u", i);
        }
        memcpy(e[i].name, nm, e[i].namelen);
        e[i].name[e[i].namelen] = 0;
    }
    if (r.off != body) {
        free(e);
        return qs_err_set(QS_ECORRUPT, "directory bucket: trailing bytes");
    }
    *out = e;
    *count = cnt;
    return 0;
}

/* ---- journal ---- */

void qs_fs_journal_free(struct qs_fs_journal *j)
{
    if (!j)
        return;
    free(j->sets);
    free(j->free_meta);
    free(j->free_data);
    free(j->orphans);
    free(j->pool);
    memset(j, 0, sizeof *j);
}

static void wr_keys(struct wr *w, const uint64_t *k, uint32_t n)
{
    wr32(w, n);
    for (uint32_t i = 0; i < n; i++)
        wr64(w, k[i]);
}

int qs_fs_journal_encode(const struct qs_fs_journal *j, uint8_t **out, size_t *len)
{
    struct wr w = {0};
    wr32(&w, 0x4a534644); /* "DFSJ" */
    wr64(&w, j->txid);
    wr32(&w, j->nsets);
    for (uint32_t i = 0; i < j->nsets; i++) {
        wr64(&w, j->sets[i].key);
        wr32(&w, j->sets[i].len);
        wrb(&w, j->sets[i].val, j->sets[i].len);
    }
    wr_keys(&w, j->free_meta, j->nfree_meta);
    wr_keys(&w, j->free_data, j->nfree_data);
    wr_keys(&w, j->orphans, j->norphans);
    wr_keys(&w, j->pool, j->npool);
    return wr_done(&w, out, len, "journal");
}

static int rd_keys(struct rd *r, uint32_t *n, uint64_t **k)
{
    *n = rd32(r);
    if (r->bad || *n > (r->n - r->off) / 8)
        return -1;
    *k = calloc(*n ? *n : 1, 8);
    if (!*k)
        return -2;
    for (uint32_t i = 0; i < *n; i++)
        (*k)[i] = rd64(r);
    return 0;
}

int qs_fs_journal_decode(const uint8_t *p, size_t n, struct qs_fs_journal *j)
{
    memset(j, 0, sizeof *j);
    size_t body = 0;
    int rc = crc_check(p, n, "journal", &body);
    if (rc)
        return rc;
    struct rd r = {.p = p, .n = body};
    if (rd32(&r) != 0x4a534644)
        return qs_err_set(QS_ECORRUPT, "journal: bad magic");
    j->txid = rd64(&r);
    uint32_t ns = rd32(&r);
    if (r.bad || ns > (body - r.off) / 12)
        return qs_err_set(QS_ECORRUPT, "journal: bad set count");
    j->sets = calloc(ns ? ns : 1, sizeof *j->sets);
    if (!j->sets)
        return qs_err_set(QS_ENOMEM, "journal: out of memory");
    for (uint32_t i = 0; i < ns; i++) {
        j->sets[i].key = rd64(&r);
        j->sets[i].len = rd32(&r);
        j->sets[i].val = rd_take(&r, j->sets[i].len);
        if (r.bad) {
            qs_fs_journal_free(j);
            return qs_err_set(QS_ECORRUPT, "journal: set %u runs past the end", i);
        }
    }
    j->nsets = ns;
    int e = rd_keys(&r, &j->nfree_meta, &j->free_meta);
    if (!e)
        e = rd_keys(&r, &j->nfree_data, &j->free_data);
    if (!e)
        e = rd_keys(&r, &j->norphans, &j->orphans);
    if (!e)
        e = rd_keys(&r, &j->npool, &j->pool);
    if (e || r.bad || r.off != body) {
        qs_fs_journal_free(j);
        if (e == -2)
            return qs_err_set(QS_ENOMEM, "journal: out of memory");
        return qs_err_set(QS_ECORRUPT, "journal: bad key lists");
    }
    return 0;
}

int qs_fs_slot_encode(const struct qs_fs_slot *s, const uint8_t *body, uint8_t **out, size_t *len)
{
    if (s->nparts > QS_FS_SLOT_MAX_PARTS)
        return qs_err_set(QS_EINVAL, "journal slot: %u parts", s->nparts);
    struct wr w = {0};
    wr32(&w, 0x544c5346); /* "FSLT" */
    wr64(&w, s->txid);
    wr64(&w, s->body_len);
    wr32(&w, s->body_crc);
    wr32(&w, s->nparts);
    for (uint32_t i = 0; i < s->nparts; i++)
        wr64(&w, s->parts[i]);
    if (s->nparts == 0)
        wrb(&w, body, s->body_len);
    return wr_done(&w, out, len, "journal slot");
}

int qs_fs_slot_decode(const uint8_t *p, size_t n, struct qs_fs_slot *s)
{
    memset(s, 0, sizeof *s);
    size_t body = 0;
    int rc = crc_check(p, n, "journal slot", &body);
    if (rc)
        return rc;
    struct rd r = {.p = p, .n = body};
    if (rd32(&r) != 0x544c5346)
        return qs_err_set(QS_ECORRUPT, "journal slot: bad magic");
    s->txid = rd64(&r);
    s->body_len = rd64(&r);
    s->body_crc = rd32(&r);
    s->nparts = rd32(&r);
    if (r.bad || s->nparts > QS_FS_SLOT_MAX_PARTS)
        return qs_err_set(QS_ECORRUPT, "journal slot: bad part count");
    for (uint32_t i = 0; i < s->nparts; i++)
        s->parts[i] = rd64(&r);
    if (s->nparts == 0) {
        s->inline_body = rd_take(&r, s->body_len > SIZE_MAX ? SIZE_MAX : (size_t)s->body_len);
        if (!r.bad && qs_fs_crc(s->inline_body, s->body_len) != s->body_crc)
            return qs_err_set(QS_ECORRUPT, "journal slot: body checksum mismatch");
    }
    if (r.bad || r.off != body)
        return qs_err_set(QS_ECORRUPT, "journal slot: bad length");
    return 0;
}

/* ---- layout version 1 (0-db-fs v0.1.x) ---- */

#define V1_INODE_LEN 44u

void qs_fs_v1_inode_free(struct qs_fs_v1_inode *d)
{
    if (!d)
        return;
    free(d->blocks);
    free(d->target);
    memset(d, 0, sizeof *d);
}

int qs_fs_v1_inode_decode(const uint8_t *p, size_t n, struct qs_fs_v1_inode *d)
{
    memset(d, 0, sizeof *d);
    struct rd r = {.p = p, .n = n};
    d->mode = rd32(&r);
    (void)rd64(&r); /* ino: unused by 0-db-fs */
    d->dev = rd32(&r);
    d->uid = rd16(&r);
    d->gid = rd16(&r);
    d->size = rd64(&r);
    d->links = rd32(&r);
    d->atime = rd32(&r);
    d->mtime = rd32(&r);
    d->ctime = rd32(&r);
    if (r.bad)
        return qs_err_set(QS_ECORRUPT, "v1 inode: %zu bytes, 44 at least expected", n);
    if (!valid_type(d->mode))
        return qs_err_set(QS_ECORRUPT, "v1 inode: file type 0%o unknown", d->mode & S_IFMT);
    switch (d->mode & S_IFMT) {
    case S_IFREG: {
        d->nblocks = rd64(&r);
        if (r.bad || d->nblocks != (n - r.off) / 4 || (n - r.off) % 4)
            return qs_err_set(QS_ECORRUPT, "v1 inode: block count does not match its length");
        d->blocks = calloc(d->nblocks ? d->nblocks : 1, 4);
        if (!d->blocks)
            return qs_err_set(QS_ENOMEM, "v1 inode: out of memory");
        for (uint64_t i = 0; i < d->nblocks; i++)
            d->blocks[i] = rd32(&r);
        break;
    }
    case S_IFDIR:
        if (n - r.off != 128 * 8)
            return qs_err_set(QS_ECORRUPT, "v1 directory: %zu bytes of lists, 1024 expected",
                              n - r.off);
        for (int i = 0; i < 128; i++)
            d->lists[i] = rd64(&r);
        break;
    case S_IFLNK: {
        /* the target is the inode's size in bytes; one junk byte follows */
        if (d->size == 0 || d->size > QS_FS_SYMLINK_MAX || d->size > n - r.off)
            return qs_err_set(QS_ECORRUPT, "v1 symlink: target of %llu bytes in a %zu-byte value",
                              (unsigned long long)d->size, n);
        const uint8_t *t = rd_take(&r, (size_t)d->size);
        if (memchr(t, 0, (size_t)d->size))
            return qs_err_set(QS_ECORRUPT, "v1 symlink: NUL in the target");
        d->target = strndup((const char *)t, (size_t)d->size);
        if (!d->target)
            return qs_err_set(QS_ENOMEM, "v1 inode: out of memory");
        break;
    }
    default:
        break;
    }
    return 0;
}

int qs_fs_v1_list_decode(const uint8_t *p, size_t n, struct qs_fs_dent **out, uint32_t *count)
{
    *out = NULL;
    *count = 0;
    /* header: u64 list key, u32 entries, 4 bytes of padding (unspecified) */
    struct rd r = {.p = p, .n = n};
    (void)rd64(&r);
    uint32_t cnt = rd32(&r);
    (void)rd_take(&r, 4);
    if (r.bad || cnt > (n - r.off) / 12)
        return qs_err_set(QS_ECORRUPT, "v1 directory list: bad count");
    struct qs_fs_dent *e = calloc(cnt ? cnt : 1, sizeof *e);
    if (!e)
        return qs_err_set(QS_ENOMEM, "v1 directory list: out of memory");
    uint32_t k = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        /* entry: u16 name length, u64 inode, name, NUL */
        uint16_t nl = rd16(&r);
        uint64_t ino = rd64(&r);
        const uint8_t *nm = rd_take(&r, (size_t)nl + 1);
        if (r.bad || nl == 0 || nl > QS_FS_NAME_MAX || nm[nl] != 0 || memchr(nm, 0, nl) ||
            memchr(nm, '/', nl) || ino < QS_FS_ROOT_INO) {
            free(e);
            return qs_err_set(QS_ECORRUPT, "v1 directory list: bad entry %u", i);
        }
        if ((nl == 1 && nm[0] == '.') || (nl == 2 && nm[0] == '.' && nm[1] == '.'))
            continue; /* 0-db-fs stores . and .. as entries */
        e[k].ino = ino;
        e[k].namelen = (uint8_t)nl;
        memcpy(e[k].name, nm, nl);
        e[k].name[nl] = 0;
        k++;
    }
    *out = e;
    *count = k;
    return 0;
}
