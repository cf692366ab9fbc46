/* Loading a namespace from disk, with recovery that is stricter than 0-db's:
 * - the active (last) data file is scanned with CRCs; a torn tail is cut;
 * - the last index entries are checked against the data file; a torn index tail is cut;
 * - data entries that never reached the index (orphans) are replayed into it;
 * - a missing or damaged index file is rebuilt from its data file.
 * Older data files may be absent (offloaded by a hook): that is not an error. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/compact.h"
#include "store/ns.h"
#include "store/ns_private.h"
#include "store/nsfile.h"
#include "store/reader.h"
#include "store/store.h"
#include "util/crc32c.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/parse.h"
#include "util/sys.h"

#define READER_CAP (ZDB_MAX_PAYLOAD + 64 * 1024)
#define TAIL_CHECK 64

#define MAX_FORCED 64

struct load_ctx {
    struct zdb_ns *ns;
    int64_t rebuilt_min;         /* lowest index file rebuilt from its data file, or -1 */
    uint32_t forced[MAX_FORCED]; /* index files found damaged: rebuild on the next pass */
    size_t nforced;
    bool restart;         /* damage found: reload from scratch */
    uint32_t scan_fileid; /* data file being scanned for tombstones */
    bool need_jump;       /* the active data file is damaged: write to a new pair */
    uint32_t last_id;     /* id of the last (active) file pair */
    uint32_t *refs;       /* offsets in d<last_id> referenced by index entries */
    size_t nrefs, refcap;
    bool later_done;   /* replay_later_tombstones ran */
    bool found_orphan; /* find_orphan saw a data entry no index entry points to */
    bool report;       /* this scan of the active data file logs the damage it finds */
};

/* A key as log text: printable ASCII as is, anything else as \xHH. */
static const char *key_text(const uint8_t *k, size_t n, char *out, size_t cap)
{
    size_t w = 0;
    for (size_t i = 0; i < n && w + 5 < cap; i++) {
        if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '\\')
            out[w++] = (char)k[i];
        else
            w += (size_t)snprintf(out + w, cap - w, "\\x%02x", k[i]);
    }
    out[w] = '\0';
    return out;
}

static int add_ref(struct load_ctx *c, uint32_t off)
{
    if (c->nrefs == c->refcap) {
        size_t cap = c->refcap ? c->refcap * 2 : 1024;
        uint32_t *p = realloc(c->refs, cap * sizeof(*p));
        if (!p)
            return qs_err_set(QS_ENOMEM, "recovery reference list");
        c->refs = p;
        c->refcap = cap;
    }
    c->refs[c->nrefs++] = off;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static bool is_ref(const struct load_ctx *c, uint32_t off)
{
    return c->nrefs && bsearch(&off, c->refs, c->nrefs, sizeof(*c->refs), cmp_u32) != NULL;
}

/* Whether the live version at loc was written after data entry (fileid, off). */
static bool loc_newer(const struct zdb_loc *loc, uint32_t fileid, uint32_t off)
{
    return loc->fileid > fileid || (loc->fileid == fileid && loc->dataoff > off);
}

static int is_file_name(const char *n, char kind, uint32_t *id)
{
    if (n[0] != kind || n[1] < '0' || n[1] > '9')
        return 0;
    uint64_t v;
    if (qs_parse_u64(n + 1, strlen(n + 1), &v) < 0 || v > UINT32_MAX)
        return 0;
    *id = (uint32_t)v;
    return 1;
}

/* Highest file id of kind in dir, or -1. */
static int64_t max_file_id(const char *dir, char kind)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int64_t max = -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint32_t id;
        if (is_file_name(de->d_name, kind, &id) && (int64_t)id > max)
            max = id;
    }
    closedir(d);
    return max;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- applying entries to the in-memory state ---- */

static int apply_user_entry(struct zdb_ns *ns, uint32_t fileid, uint32_t off,
                            const struct zdb_idx_entry *e, const uint8_t *key)
{
    const struct zdb_keyrec *r = zdb_keyindex_get(ns->keys, key, e->keylen);
    if (e->flags & ZDB_IDX_DELETED) {
        /* A flagged entry was superseded or deleted, and so is anything older. */
        if (r) {
            ns->datasize -= r->loc.length;
            ns->entries--;
            if (zdb_keyindex_del(ns->keys, key, e->keylen) < 0)
                return qs_err_set(QS_ECORRUPT, "key index inconsistent");
        }
        return 0;
    }
    if (r) {
        ns->datasize -= r->loc.length;
        ns->entries--;
    }
    struct zdb_keyloc loc = {fileid, off, e->offset, e->length, e->crc};
    int rc = zdb_keyindex_put(ns->keys, key, e->keylen, &loc, NULL);
    if (rc < 0)
        return rc;
    ns->entries++;
    ns->datasize += e->length;
    return 0;
}

static void apply_seq_entry(struct zdb_ns *ns, uint32_t fileid, const struct zdb_idx_entry *e)
{
    ns->seq[fileid].count++;
    ns->next_id++;
    if (!(e->flags & ZDB_IDX_DELETED)) {
        ns->entries++;
        ns->datasize += e->length;
    }
}

/* ---- replaying data entries into the index (orphans and rebuilds) ---- */

static int replay_user(struct zdb_ns *ns, uint32_t dataoff, const struct zdb_dat_entry *d,
                       const uint8_t *key)
{
    struct zdb_loc old;
    bool exists = zdb_ns_lookup(ns, key, d->keylen, &old) == 0;
    int rc;
    if (exists && loc_newer(&old, ns->fileid, dataoff))
        return 0; /* written again later: this version is history */
    if (d->flags & ZDB_DAT_DELETED) {
        if (!exists)
            return 0;
        rc = zdb_nsfile_index_mark_deleted(ns, old.fileid, old.idxoff);
        if (rc < 0)
            return rc;
        ns->entries--;
        ns->datasize -= old.length;
        return zdb_keyindex_del(ns->keys, key, d->keylen);
    }
    struct zdb_idx_entry e = {
        .keylen = d->keylen,
        .offset = dataoff,
        .length = d->length,
        .dataid = ns->fileid,
        .timestamp = d->timestamp,
        .crc = d->crc,
        .parentid = exists ? old.fileid : 0,
        .parentoff = exists ? old.idxoff : 0,
    };
    uint32_t idxoff;
    rc = zdb_nsfile_index_append(ns, &e, key, &idxoff);
    if (rc < 0)
        return rc;
    if (exists) {
        rc = zdb_nsfile_index_mark_deleted(ns, old.fileid, old.idxoff);
        if (rc < 0)
            return rc;
    }
    return apply_user_entry(ns, ns->fileid, idxoff, &e, key);
}

static int replay_seq(struct zdb_ns *ns, uint32_t dataoff, const struct zdb_dat_entry *d,
                      const uint8_t *key)
{
    if (d->keylen != ZDB_SEQ_KEY_SIZE)
        return 0; /* not a sequential entry: ignore */
    uint64_t id = qs_le64(key);
    struct zdb_loc old;
    bool exists = zdb_ns_lookup(ns, key, d->keylen, &old) == 0;
    if (exists && loc_newer(&old, ns->fileid, dataoff))
        return 0;
    if (d->flags & ZDB_DAT_DELETED) {
        if (!exists)
            return 0;
        return zdb_ns_forget(ns, key, d->keylen);
    }
    struct zdb_idx_entry e = {
        .keylen = ZDB_SEQ_KEY_SIZE,
        .offset = dataoff,
        .length = d->length,
        .dataid = ns->fileid,
        .timestamp = d->timestamp,
        .crc = d->crc,
    };
    uint32_t off;
    if (id > ns->next_id) {
        /* Ids are handed out in data order, so a replayed new id is always the next one;
         * anything else is not an entry this server wrote. */
        qs_log(QS_LOG_WARN,
               "namespace %s: ignoring data entry for id %llu at d%u:%u "
               "(next id is %llu)",
               ns->name, (unsigned long long)id, ns->fileid, dataoff,
               (unsigned long long)ns->next_id);
        ns->stats.data_faults++;
        return 0;
    }
    if (id == ns->next_id) {
        int rc = zdb_nsfile_index_append(ns, &e, key, &off);
        if (rc < 0)
            return rc;
        apply_seq_entry(ns, ns->fileid, &e);
        return 0;
    }
    if (!exists)
        return 0;
    /* An update of an existing id: same two steps as a live update. */
    struct zdb_idx_entry olde;
    uint8_t k[ZDB_MAX_KEY];
    uint32_t slotfile = 0, slotoff = 0;
    for (size_t f = 0; f < ns->nseq; f++) {
        if (id >= ns->seq[f].first && id - ns->seq[f].first < ns->seq[f].count) {
            slotfile = (uint32_t)f;
            slotoff =
                (uint32_t)(ZDB_IDX_HEADER_SIZE + (id - ns->seq[f].first) * ZDB_SEQ_ENTRY_SIZE);
        }
    }
    int rc = zdb_nsfile_index_read(ns, slotfile, slotoff, &olde, k);
    if (rc < 0)
        return rc;
    struct zdb_idx_entry copy = olde;
    copy.flags |= ZDB_IDX_DELETED;
    uint32_t copyoff;
    rc = zdb_nsfile_index_append(ns, &copy, key, &copyoff);
    if (rc < 0)
        return rc;
    ns->seq[ns->fileid].count++;
    ns->next_id++;
    e.parentid = ns->fileid;
    e.parentoff = copyoff;
    e.previous = olde.previous;
    rc = zdb_nsfile_index_rewrite(ns, slotfile, slotoff, &e, key);
    if (rc < 0)
        return rc;
    ns->datasize = ns->datasize - olde.length + e.length;
    return 0;
}

/* Walks the data entries of fd from `from`, checking each CRC. Calls fn for entries at
 * offsets > after (or all when !use_after). *valid_end = end of the last good entry,
 * *last_off = offset of the last good entry (0 if none). */
struct load_ctx;
typedef int (*scan_fn)(struct load_ctx *c, uint32_t off, const struct zdb_dat_entry *d,
                       const uint8_t *key);

static int scan_data(struct load_ctx *c, int fd, uint64_t after, bool use_after,
                     uint64_t *valid_end, uint32_t *last_off, scan_fn fn)
{
    struct zdb_reader r;
    int rc = zdb_reader_init(&r, fd, ZDB_DAT_HEADER_SIZE, READER_CAP);
    if (rc < 0)
        return rc;
    *valid_end = ZDB_DAT_HEADER_SIZE;
    *last_off = 0;
    for (;;) {
        long got = zdb_reader_need(&r, ZDB_DAT_ENTRY_SIZE);
        if (got < 0) {
            rc = (int)got;
            break;
        }
        if (got < ZDB_DAT_ENTRY_SIZE)
            break;
        struct zdb_dat_entry d;
        if (zdb_dat_entry_decode(&d, r.buf + r.start, (size_t)got) < 0 || d.keylen == 0)
            break; /* every real entry has a key */
        size_t total = ZDB_DAT_ENTRY_SIZE + d.keylen + d.length;
        got = zdb_reader_need(&r, total);
        if (got < 0) {
            rc = (int)got;
            break;
        }
        if ((size_t)got < total)
            break;
        const uint8_t *key = r.buf + r.start + ZDB_DAT_ENTRY_SIZE;
        const uint8_t *payload = key + d.keylen;
        if (r.pos > UINT32_MAX)
            break;
        if (qs_crc32c_zdb(payload, d.length) != d.crc) {
            /* Complete but damaged: a torn tail if nothing good follows (valid_end stays
             * before it), bit rot in the middle otherwise (later entries are kept). */
            c->ns->stats.data_faults++;
            if (c->report) {
                char kt[4 * ZDB_MAX_KEY + 8];
                qs_log(QS_LOG_WARN,
                       "namespace %s: damaged value in d%u at %llu, key '%s' (CRC mismatch): "
                       "reads of it answer an error",
                       c->ns->name, c->ns->fileid, (unsigned long long)r.pos,
                       key_text(key, d.keylen, kt, sizeof(kt)));
            }
            zdb_reader_skip(&r, total);
            continue;
        }
        uint32_t off = (uint32_t)r.pos;
        if (fn && (!use_after || off > after)) {
            rc = fn(c, off, &d, key);
            if (rc < 0)
                break;
        }
        *last_off = off;
        zdb_reader_skip(&r, total);
        *valid_end = r.pos;
    }
    zdb_reader_free(&r);
    return rc;
}

static int replay_entry(struct load_ctx *c, uint32_t off, const struct zdb_dat_entry *d,
                        const uint8_t *key)
{
    struct zdb_ns *ns = c->ns;
    return ns->mode == ZDB_MODE_SEQ ? replay_seq(ns, off, d, key) : replay_user(ns, off, d, key);
}

static int apply_tombstone(struct load_ctx *c, uint32_t off, const struct zdb_dat_entry *d,
                           const uint8_t *key);
static int replay_later_tombstones(struct load_ctx *c, uint32_t max);

static int find_orphan(struct load_ctx *c, uint32_t off, const struct zdb_dat_entry *d,
                       const uint8_t *key)
{
    if (!(d->flags & ZDB_DAT_DELETED) && !is_ref(c, off))
        c->found_orphan = true;
    return 0;
}

static int replay_orphan(struct load_ctx *c, uint32_t off, const struct zdb_dat_entry *d,
                         const uint8_t *key)
{
    if (is_ref(c, off))
        return 0;
    if (d->flags & ZDB_DAT_DELETED)
        return apply_tombstone(c, off, d, key);
    return replay_entry(c, off, d, key);
}

/* Applies the index file of fileid (open as fd) up to byte `limit`. Returns via *end the
 * offset just after the last structurally valid entry. */
static int load_index_entries(struct load_ctx *c, uint32_t fileid, int fd, uint64_t limit,
                              uint64_t *end, uint32_t *last_off, bool apply)
{
    struct zdb_ns *ns = c->ns;
    struct zdb_reader r;
    int rc = zdb_reader_init(&r, fd, ZDB_IDX_HEADER_SIZE, 1 << 20);
    if (rc < 0)
        return rc;
    *end = ZDB_IDX_HEADER_SIZE;
    *last_off = 0;
    while (r.pos < limit) {
        long got = zdb_reader_need(&r, ZDB_IDX_ENTRY_SIZE + ZDB_MAX_KEY);
        if (got < 0) {
            rc = (int)got;
            break;
        }
        struct zdb_idx_entry e;
        if (zdb_idx_entry_decode(&e, r.buf + r.start, (size_t)got) < 0)
            break;
        size_t total = ZDB_IDX_ENTRY_SIZE + e.keylen;
        if ((size_t)got < total || r.pos + total > limit)
            break;
        if (e.keylen == 0 || (ns->mode == ZDB_MODE_SEQ && e.keylen != ZDB_SEQ_KEY_SIZE))
            break;
        uint32_t off = (uint32_t)r.pos;
        if (apply) {
            if (ns->mode == ZDB_MODE_SEQ) {
                apply_seq_entry(ns, fileid, &e);
            } else {
                rc = apply_user_entry(ns, fileid, off, &e, r.buf + r.start + ZDB_IDX_ENTRY_SIZE);
                if (rc < 0)
                    break;
            }
            if (e.dataid == c->last_id && (rc = add_ref(c, e.offset)) < 0)
                break;
        }
        *last_off = off;
        zdb_reader_skip(&r, total);
        *end = r.pos;
    }
    zdb_reader_free(&r);
    return rc;
}

/* Checks that the index entry at off points to a matching, complete data entry. */
static bool entry_matches_data(int idxfd, int datfd, uint64_t off, uint64_t data_end,
                               uint32_t fileid)
{
    uint8_t ib[ZDB_IDX_ENTRY_SIZE + ZDB_MAX_KEY];
    ssize_t n = pread(idxfd, ib, sizeof(ib), (off_t)off);
    struct zdb_idx_entry e;
    if (n < ZDB_IDX_ENTRY_SIZE || zdb_idx_entry_decode(&e, ib, (size_t)n) < 0 ||
        (size_t)n < ZDB_IDX_ENTRY_SIZE + (size_t)e.keylen)
        return false;
    if (e.dataid != fileid)
        return true; /* points into an older file: checked when that file is read */
    if ((uint64_t)e.offset + ZDB_DAT_ENTRY_SIZE + e.keylen + e.length > data_end)
        return false;
    uint8_t db[ZDB_DAT_ENTRY_SIZE + ZDB_MAX_KEY];
    if (pread(datfd, db, ZDB_DAT_ENTRY_SIZE + e.keylen, e.offset) !=
        (ssize_t)(ZDB_DAT_ENTRY_SIZE + e.keylen))
        return false;
    struct zdb_dat_entry d;
    if (zdb_dat_entry_decode(&d, db, sizeof(db)) < 0)
        return false;
    return d.keylen == e.keylen && d.length == e.length && d.crc == e.crc &&
           memcmp(db + ZDB_DAT_ENTRY_SIZE, ib + ZDB_IDX_ENTRY_SIZE, e.keylen) == 0;
}

/* Offset of the first index entry of the active pair whose data is not intact (a cut
 * that reaches further back than the tail window); *end is left as is when none is. */
static int first_mismatch(struct zdb_ns *ns, uint32_t fileid, uint64_t *end)
{
    struct zdb_reader r;
    int rc = zdb_reader_init(&r, ns->idx_fd, ZDB_IDX_HEADER_SIZE, 1 << 20);
    if (rc < 0)
        return rc;
    while (r.pos < *end) {
        long got = zdb_reader_need(&r, ZDB_IDX_ENTRY_SIZE + ZDB_MAX_KEY);
        struct zdb_idx_entry e;
        if (got < ZDB_IDX_ENTRY_SIZE || zdb_idx_entry_decode(&e, r.buf + r.start, (size_t)got) < 0)
            break;
        if (!entry_matches_data(ns->idx_fd, ns->dat_fd, r.pos, ns->dat_size, fileid)) {
            *end = r.pos;
            break;
        }
        zdb_reader_skip(&r, ZDB_IDX_ENTRY_SIZE + e.keylen);
    }
    zdb_reader_free(&r);
    return 0;
}

static int read_idx(int fd, uint64_t off, struct zdb_idx_entry *e, uint8_t *key)
{
    uint8_t b[ZDB_IDX_ENTRY_SIZE + ZDB_MAX_KEY];
    ssize_t n = pread(fd, b, sizeof(b), (off_t)off);
    if (n < ZDB_IDX_ENTRY_SIZE || zdb_idx_entry_decode(e, b, (size_t)n) < 0 ||
        (size_t)n < ZDB_IDX_ENTRY_SIZE + (size_t)e->keylen)
        return QS_ECORRUPT;
    memcpy(key, b + ZDB_IDX_ENTRY_SIZE, e->keylen);
    return 0;
}

/* True when the data entry e points to is intact (header, key and payload CRC), or its
 * data file is absent (offloaded: a read brings it back). */
static bool data_intact(struct zdb_ns *ns, const struct zdb_idx_entry *e, const uint8_t *key)
{
    int fd;
    int rc = zdb_nsfile_fd(ns, 'd', e->dataid, &fd);
    if (rc == QS_ENOTFOUND)
        return true;
    if (rc < 0)
        return false;
    size_t n = ZDB_DAT_ENTRY_SIZE + e->keylen + (size_t)e->length;
    uint8_t *b = malloc(n);
    if (!b)
        return false;
    struct zdb_dat_entry d;
    bool ok = zdb_read_at(fd, b, n, e->offset) == 0 && zdb_dat_entry_decode(&d, b, n) >= 0 &&
              d.keylen == e->keylen && d.length == e->length && d.crc == e->crc &&
              memcmp(b + ZDB_DAT_ENTRY_SIZE, key, e->keylen) == 0 &&
              qs_crc32c_zdb(b + ZDB_DAT_ENTRY_SIZE + e->keylen, e->length) == e->crc;
    free(b);
    return ok;
}

/* The user-mode index entries in [from, end) of the active index file i<fileid> lose
 * their data (it was cut). An overwrite flagged the version it replaced as deleted: when
 * a cut entry's parent (followed through cut parents) lies before the cut, holds the same
 * key, is flagged and its bytes are intact, the flag is cleared so the key falls back to
 * that version. Each key affected is logged. *restored counts the flags cleared (the load
 * then starts again, so that older files see them). */
static int restore_parents(struct load_ctx *c, uint32_t fileid, uint64_t from, uint64_t end,
                           int *restored)
{
    struct zdb_ns *ns = c->ns;
    *restored = 0;
    uint8_t key[ZDB_MAX_KEY], pkey[ZDB_MAX_KEY];
    char kt[4 * ZDB_MAX_KEY + 8];
    for (uint64_t off = from; off < end;) {
        struct zdb_idx_entry e, p;
        if (read_idx(ns->idx_fd, off, &e, key) < 0)
            break;
        uint64_t next = off + ZDB_IDX_ENTRY_SIZE + e.keylen;
        uint32_t pf = e.parentid, po = e.parentoff;
        for (int hops = 0; po && pf == fileid && po >= from && hops < 100000; hops++) {
            if (read_idx(ns->idx_fd, po, &p, pkey) < 0) {
                po = 0;
                break;
            }
            pf = p.parentid;
            po = p.parentoff;
        }
        bool back = false;
        int fd;
        if (po && !(pf == fileid && po >= from) && zdb_nsfile_fd(ns, 'i', pf, &fd) == 0 &&
            read_idx(fd, po, &p, pkey) == 0 && p.keylen == e.keylen &&
            memcmp(pkey, key, e.keylen) == 0) {
            if (!(p.flags & ZDB_IDX_DELETED)) {
                back = true; /* restored by an earlier pass */
            } else if (data_intact(ns, &p, pkey)) {
                uint8_t flags = (uint8_t)(p.flags & ~ZDB_IDX_DELETED);
                if (pwrite(fd, &flags, 1, (off_t)po + 13) != 1)
                    return qs_err_sys(QS_EIO, errno, "restore i%u at %u", pf, po);
                (*restored)++;
                back = true;
                qs_log(QS_LOG_WARN,
                       "namespace %s: key '%s': its latest version (d%u at %u) was cut, back to "
                       "the previous one (i%u at %u)",
                       ns->name, key_text(key, e.keylen, kt, sizeof(kt)), e.dataid, e.offset, pf,
                       po);
            }
        }
        if (!back && !(e.flags & ZDB_IDX_DELETED))
            qs_log(QS_LOG_WARN,
                   "namespace %s: key '%s': its version in d%u at %u was cut and it has no "
                   "earlier intact one",
                   ns->name, key_text(key, e.keylen, kt, sizeof(kt)), e.dataid, e.offset);
        off = next;
    }
    return 0;
}

static int read_header_mode(const char *path, int *mode)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return QS_ENOTFOUND;
    uint8_t h[ZDB_IDX_HEADER_SIZE];
    struct zdb_idx_header hdr;
    int rc = zdb_read_at(fd, h, sizeof(h), 0);
    close(fd);
    if (rc < 0 || zdb_idx_header_decode(&hdr, h, sizeof(h)) < 0)
        return QS_ECORRUPT;
    *mode = hdr.mode;
    return 0;
}

/* Rebuilds index file fileid from its data file. The pair becomes the active one. */
/* The active data file's good entries end at valid_end. A short tail after it is a
 * torn write: cut it. A long one is damage: keep every byte, and write to a new pair. */
static int cut_data_tail(struct load_ctx *c, uint64_t valid_end)
{
    struct zdb_ns *ns = c->ns;
    if (valid_end >= ns->dat_size)
        return 0;
    uint64_t torn = ns->dat_size - valid_end;
    if (torn <= ZDB_DAT_ENTRY_SIZE + ZDB_MAX_KEY + ZDB_MAX_PAYLOAD) {
        qs_log(QS_LOG_WARN, "namespace %s: cutting %llu torn bytes at the end of d%u", ns->name,
               (unsigned long long)torn, ns->fileid);
        if (ftruncate(ns->dat_fd, (off_t)valid_end) != 0)
            return qs_err_sys(QS_EIO, errno, "truncate d%u", ns->fileid);
        ns->dat_size = valid_end;
        return 0;
    }
    qs_log(QS_LOG_ERROR, "namespace %s: d%u damaged at offset %llu, keeping it as is", ns->name,
           ns->fileid, (unsigned long long)valid_end);
    ns->stats.data_faults++;
    c->need_jump = true;
    return 0;
}

/* Checks the header of the active data file; a missing or damaged one is written anew
 * (the entries after it are kept). */
static int check_data_header(struct zdb_ns *ns)
{
    uint8_t h[ZDB_DAT_HEADER_SIZE];
    struct zdb_dat_header hdr;
    if (ns->dat_size >= ZDB_DAT_HEADER_SIZE && zdb_read_at(ns->dat_fd, h, sizeof(h), 0) == 0 &&
        zdb_dat_header_decode(&hdr, h, sizeof(h)) == 0)
        return 0;
    qs_log(QS_LOG_WARN, "namespace %s: rewriting the damaged header of d%u", ns->name, ns->fileid);
    ns->stats.data_faults++;
    uint64_t now = (uint64_t)time(NULL);
    struct zdb_dat_header fresh = {ZDB_DAT_VERSION, now, now, ns->fileid};
    zdb_dat_header_encode(h, &fresh);
    struct iovec iov = {h, sizeof(h)};
    int rc = zdb_write_at(ns->dat_fd, &iov, 1, 0);
    if (rc < 0)
        return rc;
    if (ns->dat_size < ZDB_DAT_HEADER_SIZE)
        ns->dat_size = ZDB_DAT_HEADER_SIZE;
    return 0;
}

static int rebuild_index(struct load_ctx *c, uint32_t fileid, bool keep_active)
{
    struct zdb_ns *ns = c->ns;
    char ipath[4096], bpath[4200];
    zdb_ns_path(ns, 'i', fileid, ipath, sizeof(ipath));
    if (file_exists(ipath)) {
        /* Keep the damaged file aside rather than destroying evidence. */
        snprintf(bpath, sizeof(bpath), "%s.damaged", ipath);
        if (rename(ipath, bpath) != 0)
            return qs_err_sys(QS_EIO, errno, "rename %s", ipath);
    }
    qs_log(QS_LOG_WARN, "namespace %s: rebuilding index file i%u from d%u", ns->name, fileid,
           fileid);
    if (c->rebuilt_min < 0 || (int64_t)fileid < c->rebuilt_min)
        c->rebuilt_min = fileid;
    int rc = zdb_nsfile_open_active(ns, fileid);
    if (rc < 0)
        return rc;
    ns->index_bytes += ns->idx_size;
    uint64_t end = 0;
    uint32_t last = 0;
    if (keep_active && (rc = check_data_header(ns)) < 0)
        return rc;
    rc = scan_data(c, ns->dat_fd, 0, false, &end, &last, replay_entry);
    ns->dat_prev = last;
    if (rc == 0 && keep_active)
        rc = cut_data_tail(c, end);
    if (!keep_active)
        zdb_nsfile_close_active(ns);
    return rc;
}

static int load_file(struct load_ctx *c, uint32_t fileid, bool last)
{
    struct zdb_ns *ns = c->ns;
    char ipath[4096], dpath[4096];
    zdb_ns_path(ns, 'i', fileid, ipath, sizeof(ipath));
    zdb_ns_path(ns, 'd', fileid, dpath, sizeof(dpath));
    bool have_i = file_exists(ipath), have_d = file_exists(dpath);
    if (ns->mode == ZDB_MODE_SEQ) {
        int rc = zdb_ns_seq_push_file(ns, fileid, ns->next_id);
        if (rc < 0)
            return rc;
    }
    if (!have_i && !have_d) {
        if (last)
            return zdb_nsfile_open_active(ns, fileid);
        return 0;
    }
    bool forced = false;
    for (size_t k = 0; k < c->nforced; k++)
        forced |= c->forced[k] == fileid;
    int mode;
    if (!have_i || forced || read_header_mode(ipath, &mode) < 0) {
        struct stat ist;
        if (!have_d && last &&
            (!have_i || (stat(ipath, &ist) == 0 && ist.st_size <= ZDB_IDX_HEADER_SIZE))) {
            /* A crash right after the next index file was created: nothing was written to
             * this pair yet. Start it afresh. */
            qs_log(QS_LOG_WARN, "namespace %s: recreating empty file pair %u", ns->name, fileid);
            if (have_i && unlink(ipath) != 0)
                return qs_err_sys(QS_EIO, errno, "remove %s", ipath);
            return zdb_nsfile_open_active(ns, fileid);
        }
        if (!have_d) {
            qs_log(QS_LOG_ERROR, "namespace %s: index file i%u damaged and d%u absent", ns->name,
                   fileid, fileid);
            ns->stats.index_faults++;
            return last ? QS_ECORRUPT : 0;
        }
        if (ns->mode == ZDB_MODE_SEQ && zdb_compact_rebuild_check(ns, fileid) < 0)
            return QS_ECORRUPT; /* ids would move: refuse rather than serve wrong values */
        return rebuild_index(c, fileid, last);
    }

    int ifd = open(ipath, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (ifd < 0)
        return qs_err_sys(QS_EIO, errno, "open %s", ipath);
    struct stat st;
    if (fstat(ifd, &st) != 0) {
        close(ifd);
        return qs_err_sys(QS_EIO, errno, "stat %s", ipath);
    }
    uint64_t isize = (uint64_t)st.st_size;
    uint64_t end = 0;
    uint32_t last_off = 0;
    int rc;

    if (!last) {
        rc = load_index_entries(c, fileid, ifd, isize, &end, &last_off, true);
        close(ifd);
        if (rc < 0)
            return rc;
        ns->index_bytes += isize;
        if (end != isize) {
            qs_log(QS_LOG_WARN, "namespace %s: index file i%u has %llu unreadable bytes at %llu",
                   ns->name, fileid, (unsigned long long)(isize - end), (unsigned long long)end);
            ns->stats.index_faults++;
            if (have_d && c->nforced < MAX_FORCED) {
                /* Entries after the damage would be lost: rebuild this file from its data
                 * file, which means loading everything again from the start. */
                c->forced[c->nforced++] = fileid;
                c->restart = true;
                return 0;
            }
        }
        if (have_d && stat(dpath, &st) == 0)
            ns->data_bytes += (uint64_t)st.st_size;
        ns->idx_prev = last_off;
        return 0;
    }

    /* The active pair: verify the data file, then the index tail against it. */
    rc = zdb_nsfile_open_active(ns, fileid);
    close(ifd);
    if (rc < 0)
        return rc;
    if ((rc = check_data_header(ns)) < 0)
        return rc;
    uint64_t data_end = 0;
    uint32_t data_last = 0;
    c->report = true;
    rc = scan_data(c, ns->dat_fd, 0, false, &data_end, &data_last, NULL);
    c->report = false;
    if (rc < 0 || (rc = cut_data_tail(c, data_end)) < 0)
        return rc;
    ns->dat_prev = data_last;

    /* Structural pass to find entry offsets, then check the last TAIL_CHECK of them
     * against the data file: the first mismatch is where the index tail was torn. */
    uint64_t ring[TAIL_CHECK];
    size_t nring = 0;
    uint64_t good_end;
    {
        struct zdb_reader r;
        rc = zdb_reader_init(&r, ns->idx_fd, ZDB_IDX_HEADER_SIZE, 1 << 20);
        if (rc < 0)
            return rc;
        for (;;) {
            long got = zdb_reader_need(&r, ZDB_IDX_ENTRY_SIZE + ZDB_MAX_KEY);
            struct zdb_idx_entry e;
            if (got < ZDB_IDX_ENTRY_SIZE ||
                zdb_idx_entry_decode(&e, r.buf + r.start, (size_t)got) < 0)
                break;
            size_t total = ZDB_IDX_ENTRY_SIZE + e.keylen;
            if ((size_t)got < total)
                break;
            if (e.keylen == 0 || (ns->mode == ZDB_MODE_SEQ && e.keylen != ZDB_SEQ_KEY_SIZE))
                break;
            ring[nring % TAIL_CHECK] = r.pos;
            if (ns->mode == ZDB_MODE_SEQ && qs_le32(r.buf + r.start + 14) == c->last_id &&
                (rc = add_ref(c, qs_le32(r.buf + r.start + 1))) < 0)
                break;
            nring++;
            zdb_reader_skip(&r, total);
        }
        good_end = r.pos;
        zdb_reader_free(&r);
    }
    size_t first = nring > TAIL_CHECK ? nring - TAIL_CHECK : 0;
    for (size_t k = first; k < nring; k++) {
        uint64_t off = ring[k % TAIL_CHECK];
        if (!entry_matches_data(ns->idx_fd, ns->dat_fd, off, ns->dat_size, fileid)) {
            good_end = off;
            /* the whole window is bad: earlier entries may point into the cut too */
            if (k == first && first > 0 && rc == 0)
                rc = first_mismatch(ns, fileid, &good_end);
            break;
        }
    }
    if (rc < 0)
        return rc;
    if (ns->mode == ZDB_MODE_SEQ) {
        /* Updates rewrite earlier slots in place and take a slot of their own: after a
         * torn tail, or with data the index never saw, the only safe order is the data
         * file's. */
        if (c->nrefs)
            qsort(c->refs, c->nrefs, sizeof(*c->refs), cmp_u32);
        c->found_orphan = false;
        uint64_t e2 = 0;
        uint32_t l2 = 0;
        if (good_end == ns->idx_size &&
            (rc = scan_data(c, ns->dat_fd, 0, false, &e2, &l2, find_orphan)) < 0)
            return rc;
        if (good_end < ns->idx_size || c->found_orphan) {
            zdb_nsfile_close_active(ns);
            return rebuild_index(c, fileid, true);
        }
    }
    if (good_end < ns->idx_size) {
        int restored = 0;
        if ((rc = restore_parents(c, fileid, good_end, ns->idx_size, &restored)) < 0)
            return rc;
        if (restored) {
            c->restart = true; /* load again: the restored versions may be in older files */
            return 0;
        }
        qs_log(QS_LOG_WARN, "namespace %s: cutting index file i%u from %llu to %llu bytes",
               ns->name, fileid, (unsigned long long)ns->idx_size, (unsigned long long)good_end);
        if (ftruncate(ns->idx_fd, (off_t)good_end) != 0)
            return qs_err_sys(QS_EIO, errno, "truncate i%u", fileid);
        ns->idx_size = good_end;
    }
    rc = load_index_entries(c, fileid, ns->idx_fd, good_end, &end, &last_off, true);
    if (rc < 0)
        return rc;
    ns->idx_prev = last_off ? last_off : ns->idx_prev;
    ns->index_bytes += ns->idx_size;
    ns->data_bytes += ns->dat_size;

    /* What later files did to the slots of a rebuilt index file, before the orphans. */
    if (c->nrefs)
        qsort(c->refs, c->nrefs, sizeof(*c->refs), cmp_u32);
    if (c->rebuilt_min >= 0 && (rc = replay_later_tombstones(c, fileid)) < 0)
        return rc;
    /* Data entries no index entry points to never reached the index: replay them. */
    if (c->nrefs)
        qsort(c->refs, c->nrefs, sizeof(*c->refs), cmp_u32);
    c->scan_fileid = fileid;
    uint64_t dend = 0;
    uint32_t dlast = 0;
    rc = scan_data(c, ns->dat_fd, 0, false, &dend, &dlast, replay_orphan);
    if (rc < 0)
        return rc;
    return 0;
}

/* Forgets everything loaded so far (before a second loading pass). */
static int reset_state(struct zdb_ns *ns)
{
    zdb_nsfile_close_active(ns);
    zdb_nsfile_cache_drop(ns);
    zdb_keyindex_free(ns->keys);
    ns->keys = NULL;
    ns->entries = ns->datasize = ns->index_bytes = ns->data_bytes = 0;
    ns->next_id = 0;
    ns->nseq = 0;
    ns->idx_prev = ns->dat_prev = 0;
    ns->idx_size = ns->dat_size = 0;
    return zdb_keyindex_new(&ns->keys);
}

/* A DEL leaves a tombstone in the data file active at the time and a flag in the index
 * file of the deleted version. When that index file was rebuilt the flag is gone, so the
 * tombstones of every later data file are applied again: a tombstone removes the live
 * version of its key when that version is older than the tombstone. */
/* Seq mode: an update lives in a later data file than its id's slot. When the slot's
 * index file was rebuilt, the in-place rewrite is gone: point the slot at it again. */
static int apply_seq_update(struct load_ctx *c, uint32_t off, const struct zdb_dat_entry *d,
                            const uint8_t *key)
{
    struct zdb_ns *ns = c->ns;
    if (d->keylen != ZDB_SEQ_KEY_SIZE)
        return 0;
    uint64_t id = qs_le64(key);
    uint32_t slotfile = UINT32_MAX, slotoff = 0;
    for (size_t f = 0; f < ns->nseq; f++) {
        if (id >= ns->seq[f].first && id - ns->seq[f].first < ns->seq[f].count) {
            slotfile = (uint32_t)f;
            slotoff =
                (uint32_t)(ZDB_IDX_HEADER_SIZE + (id - ns->seq[f].first) * ZDB_SEQ_ENTRY_SIZE);
        }
    }
    if (slotfile == UINT32_MAX || slotfile >= c->scan_fileid)
        return 0; /* an original append, not an update */
    struct zdb_idx_entry cur;
    uint8_t k[ZDB_MAX_KEY];
    if (zdb_nsfile_index_read(ns, slotfile, slotoff, &cur, k) < 0)
        return 0;
    if (cur.dataid > c->scan_fileid || (cur.dataid == c->scan_fileid && cur.offset >= off))
        return 0; /* the slot already holds this version or a later one */
    struct zdb_idx_entry e = cur;
    e.offset = off;
    e.length = d->length;
    e.dataid = c->scan_fileid;
    e.timestamp = d->timestamp;
    e.crc = d->crc;
    e.flags = 0;
    int rc = zdb_nsfile_index_rewrite(ns, slotfile, slotoff, &e, key);
    if (rc == 0 && c->scan_fileid == c->last_id)
        rc = add_ref(c, off); /* so that the orphan pass does not replay it again */
    if (rc < 0)
        return rc;
    if (cur.flags & ZDB_IDX_DELETED) {
        ns->entries++;
        ns->datasize += d->length;
    } else {
        ns->datasize = ns->datasize - cur.length + d->length;
    }
    return 0;
}

static int apply_later_change(struct load_ctx *c, uint32_t off, const struct zdb_dat_entry *d,
                              const uint8_t *key)
{
    if (d->flags & ZDB_DAT_DELETED)
        return apply_tombstone(c, off, d, key);
    if (c->ns->mode == ZDB_MODE_SEQ)
        return apply_seq_update(c, off, d, key);
    return 0;
}

static int apply_tombstone(struct load_ctx *c, uint32_t off, const struct zdb_dat_entry *d,
                           const uint8_t *key)
{
    struct zdb_ns *ns = c->ns;
    uint32_t tomb_fileid = c->scan_fileid;
    if (!(d->flags & ZDB_DAT_DELETED))
        return 0;
    struct zdb_loc loc;
    if (zdb_ns_lookup(ns, key, d->keylen, &loc) < 0)
        return 0;
    if (loc.fileid > tomb_fileid || (loc.fileid == tomb_fileid && loc.dataoff > off))
        return 0; /* set again after this delete */
    return zdb_ns_forget(ns, key, d->keylen);
}

static int replay_later_tombstones(struct load_ctx *c, uint32_t max)
{
    struct zdb_ns *ns = c->ns;
    if (c->later_done)
        return 0;
    c->later_done = true;
    for (uint32_t id = (uint32_t)c->rebuilt_min + 1; id <= max; id++) {
        int fd;
        if (zdb_nsfile_fd(ns, 'd', id, &fd) < 0)
            continue; /* offloaded: its tombstones are applied when it comes back */
        uint64_t end = 0;
        uint32_t last = 0;
        c->scan_fileid = id;
        int rc = scan_data(c, fd, 0, false, &end, &last, apply_later_change);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void ns_free(struct zdb_ns *ns)
{
    if (!ns)
        return;
    zdb_nsfile_close_active(ns);
    zdb_nsfile_cache_drop(ns);
    zdb_keyindex_free(ns->keys);
    qs_buf_free(&ns->wdat);
    qs_buf_free(&ns->widx);
    qs_buf_free(&ns->wpatch);
    qs_buf_free(&ns->wundo);
    free(ns->seq);
    free(ns->dirty);
    free(ns->idxdir);
    free(ns->datdir);
    qs_wipe(ns->password, sizeof(ns->password));
    free(ns);
}

void zdb_ns_close(struct zdb_ns *ns)
{
    if (!ns)
        return;
    if (zdb_nsfile_flush(ns) < 0)
        qs_log(QS_LOG_ERROR, "namespace %s: %zu unacknowledged bytes could not be written: %s",
               ns->name, ns->wdat.len + ns->widx.len + ns->wpatch.len, qs_err_msg());
    if (ns->dirty_unsynced &&
        (ns->store->opts.sync || ns->store->opts.synctime || ns->store->opts.secure)) {
        if (zdb_ns_sync(ns) < 0)
            qs_log(QS_LOG_ERROR, "namespace %s: final sync failed: %s", ns->name, qs_err_msg());
    }
    ns_free(ns);
}

static int load_descriptor(struct zdb_ns *ns)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/zdb-namespace", ns->idxdir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? QS_ENOTFOUND : qs_err_sys(QS_EIO, errno, "open %s", path);
    uint8_t buf[ZDB_NSFILE_HEADER_SIZE + 512];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0)
        return qs_err_sys(QS_EIO, errno, "read %s", path);
    struct zdb_nsfile f;
    int rc = zdb_nsfile_decode(&f, buf, (size_t)n);
    qs_wipe(buf, sizeof(buf));
    if (rc < 0)
        return qs_err_set(rc, "%s: %s", path, qs_err_msg());
    ns->maxsize = f.maxsize;
    ns->public_ = (f.flags & ZDB_NS_PUBLIC) != 0;
    ns->worm = (f.flags & ZDB_NS_WORM) != 0;
    memcpy(ns->password, f.password, f.passlen);
    ns->password[f.passlen] = '\0';
    qs_wipe(&f, sizeof(f));
    return 0;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return qs_err_sys(QS_EIO, errno, "create directory %s", path);
    return 0;
}

int zdb_ns_open(struct zdb_store *store, const char *name, bool create, struct zdb_ns **out)
{
    *out = NULL;
    struct load_ctx c = {.rebuilt_min = -1};
    struct zdb_ns *ns = calloc(1, sizeof(*ns));
    if (!ns)
        return qs_err_set(QS_ENOMEM, "namespace allocation");
    ns->store = store;
    ns->idx_fd = ns->dat_fd = -1;
    qs_buf_init(&ns->wdat, 80u * 1024 * 1024);
    qs_buf_init(&ns->widx, 80u * 1024 * 1024);
    qs_buf_init(&ns->wpatch, 80u * 1024 * 1024);
    qs_buf_init(&ns->wundo, 80u * 1024 * 1024);
    for (int i = 0; i < ZDB_FDCACHE_SIZE; i++)
        ns->fdc[i].fd = -1;
    snprintf(ns->name, sizeof(ns->name), "%s", name);
    ns->public_ = true;
    ns->last_sync = time(NULL);
    ns->idxdir = join(store->index_root, name);
    ns->datdir = join(store->data_root, name);
    int rc = QS_ENOMEM;
    if (!ns->idxdir || !ns->datdir || zdb_keyindex_new(&ns->keys) < 0)
        goto fail;
    if (create) {
        if ((rc = make_dir(ns->idxdir)) < 0 || (rc = make_dir(ns->datdir)) < 0)
            goto fail;
    } else {
        rc = load_descriptor(ns);
        if (rc < 0 && rc != QS_ENOTFOUND)
            goto fail;
        if ((rc = make_dir(ns->datdir)) < 0)
            goto fail;
    }

    /* An interrupted compaction is finished (or rolled back) before anything is read. */
    if ((rc = zdb_compact_recover(ns)) < 0)
        goto fail;

    int64_t maxi = max_file_id(ns->idxdir, 'i');
    int64_t maxd = max_file_id(ns->datdir, 'd');
    int64_t max = maxi > maxd ? maxi : maxd;

    /* The mode is stored in the first index file's header. */
    int mode = -1;
    for (int64_t id = 0; id <= maxi && mode < 0; id++) {
        char p[4096];
        zdb_ns_path(ns, 'i', (uint32_t)id, p, sizeof(p));
        if (read_header_mode(p, &mode) < 0)
            mode = -1;
    }
    int fixed = store->opts.fixed_mode;
    if (mode >= 0) {
        if (fixed >= 0 && fixed != mode) {
            rc = qs_err_set(QS_EINVAL, "namespace %s is in %s mode but the server runs in %s mode",
                            name, mode == ZDB_MODE_SEQ ? "sequential" : "user",
                            fixed == ZDB_MODE_SEQ ? "sequential" : "user");
            goto fail;
        }
        ns->mode = (enum zdb_mode)mode;
        ns->mode_set = true;
    } else {
        ns->mode = fixed >= 0 ? (enum zdb_mode)fixed : ZDB_MODE_USER;
    }

    c.ns = ns;
    if (max < 0) {
        rc = zdb_nsfile_open_active(ns, 0);
        if (rc < 0)
            goto fail;
        ns->index_bytes = ns->idx_size;
        ns->data_bytes = ns->dat_size;
        if (ns->mode == ZDB_MODE_SEQ && (rc = zdb_ns_seq_push_file(ns, 0, 0)) < 0)
            goto fail;
    } else {
        c.last_id = (uint32_t)max;
        for (int pass = 0; pass < 3; pass++) {
            c.restart = false;
            c.later_done = false;
            c.nrefs = 0;
            for (int64_t id = 0; id <= max && !c.restart; id++) {
                rc = load_file(&c, (uint32_t)id, id == max);
                if (rc < 0) {
                    rc = qs_err_set(rc, "namespace %s, file %lld: %s", name, (long long)id,
                                    qs_err_msg());
                    goto fail;
                }
            }
            if (!c.restart)
                break;
            if ((rc = reset_state(ns)) < 0)
                goto fail;
        }
        if (c.rebuilt_min >= 0 && (rc = replay_later_tombstones(&c, (uint32_t)max)) < 0) {
            rc = qs_err_set(rc, "namespace %s: %s", name, qs_err_msg());
            goto fail;
        }
        if (c.need_jump && (rc = zdb_ns_jump(ns)) < 0)
            goto fail;
    }
    free(c.refs);
    c.refs = NULL;
    ns->written = false;
    ns->ndirty = 0;
    if (create && (rc = zdb_ns_save(ns)) < 0)
        goto fail;
    /* A new namespace (directories, first files) must survive a power cut once its
     * creation was acknowledged; zdb_ns_save synced the descriptor's directory. */
    if (create && (store->opts.sync || store->opts.secure) &&
        ((rc = qs_fsync_dir(ns->datdir)) < 0 || (rc = qs_fsync_dir(store->index_root)) < 0 ||
         (rc = qs_fsync_dir(store->data_root)) < 0))
        goto fail;
    *out = ns;
    return 0;
fail:
    free(c.refs);
    ns_free(ns);
    return rc;
}

/* Used when the first write of a mixed-mode namespace fixes its mode. */
int zdb_ns_set_mode(struct zdb_ns *ns, enum zdb_mode mode)
{
    if (ns->entries || ns->next_id || ns->idx_size > ZDB_IDX_HEADER_SIZE ||
        ns->dat_size > ZDB_DAT_HEADER_SIZE || ns->fileid > 0)
        return qs_err_set(QS_EBUSY, "namespace %s is not empty", ns->name);
    /* the memory follows only a header that was written: a sequential namespace without
     * its id table would be used as one at the next SET */
    uint8_t m = (uint8_t)mode, old = (uint8_t)ns->mode;
    struct iovec iov = {&m, 1};
    int rc = zdb_write_at(ns->idx_fd, &iov, 1, 28);
    if (rc == 0) {
        ns->nseq = 0;
        if (mode == ZDB_MODE_SEQ)
            rc = zdb_ns_seq_push_file(ns, ns->fileid, 0);
    }
    if (rc < 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        struct iovec back = {&old, 1};
        if (zdb_write_at(ns->idx_fd, &back, 1, 28) < 0) {
            /* the byte on disk is unknown; the namespace is empty, so the next load takes
             * whichever mode it reads */
        }
        return qs_err_set(rc, "%s", msg);
    }
    ns->mode = mode;
    return 0;
}
