/* Iteration over index entries in append order, cursors, raw data entry reads.
 *
 * Forward moves are plain: entries follow each other, and the last entry of file N is
 * followed by the first of the next existing file. Backward moves use the `previous`
 * field of an entry as a hint for where the one before it starts, and trust it only when
 * that entry ends exactly where the current one begins (index files written by older
 * 0-db versions or rebuilt by recovery may carry stale hints); otherwise the file is
 * walked forward from its header to find the entry that ends there. */
#include "scan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "store/keyindex.h"
#include "store/ns_private.h"
#include "store/nsfile.h"
#include "util/mem.h"

#define HDR ZDB_IDX_HEADER_SIZE
#define ENT ZDB_IDX_ENTRY_SIZE

void zdb_scan_init(struct zdb_scan *it, struct zdb_ns *ns, bool all)
{
    memset(it, 0, sizeof(*it));
    it->ns = ns;
    it->all = all;
}

/* Logical size of file kind/fileid: the active pair includes batched bytes. */
static int file_size(struct zdb_ns *ns, char kind, uint32_t fileid, uint64_t *size)
{
    if (fileid == ns->fileid && ns->idx_fd >= 0) {
        *size = kind == 'i' ? ns->idx_size : ns->dat_size;
        return 0;
    }
    if (fileid > ns->fileid)
        return qs_err_set(QS_ENOTFOUND, "%c%u is past the active file", kind, fileid);
    int fd;
    int rc = zdb_nsfile_fd(ns, kind, fileid, &fd);
    if (rc < 0)
        return rc;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return qs_err_sys(QS_EIO, errno, "stat %c%u", kind, fileid);
    *size = (uint64_t)st.st_size;
    return 0;
}

/* The fixed part of the index entry at fileid/off, which must lie within size bytes. */
static int read_fixed(struct zdb_ns *ns, uint32_t fileid, uint64_t off, uint64_t size,
                      struct zdb_idx_entry *e)
{
    if (off < HDR || off + ENT > size)
        return qs_err_set(QS_EINVAL, "no index entry in i%u at %llu", fileid,
                          (unsigned long long)off);
    uint8_t hdr[ENT];
    struct iovec iov = {hdr, sizeof(hdr)};
    int rc = zdb_nsfile_readv(ns, 'i', fileid, &iov, 1, off);
    if (rc < 0)
        return rc;
    if (zdb_idx_entry_decode(e, hdr, sizeof(hdr)) < 0 || off + ENT + e->keylen > size)
        return qs_err_set(QS_ECORRUPT, "bad index entry in i%u at %llu", fileid,
                          (unsigned long long)off);
    return 0;
}

/* Whole entry (fixed part and key) into tmp, positioned at fileid/off. */
static int read_entry(struct zdb_scan *tmp, uint32_t fileid, uint64_t off, uint64_t size)
{
    int rc = read_fixed(tmp->ns, fileid, off, size, &tmp->e);
    if (rc < 0)
        return rc;
    struct iovec iov = {tmp->key, tmp->e.keylen};
    if (tmp->e.keylen && (rc = zdb_nsfile_readv(tmp->ns, 'i', fileid, &iov, 1, off + ENT)) < 0)
        return rc;
    tmp->fileid = fileid;
    tmp->off = (uint32_t)off;
    return 0;
}

/* Whether the entry tmp stands on is the version of its key that GET returns. */
static bool entry_live(const struct zdb_scan *tmp)
{
    const struct zdb_ns *ns = tmp->ns;
    if (tmp->e.flags & ZDB_IDX_DELETED)
        return false;
    if (ns->mode == ZDB_MODE_SEQ) {
        /* a slot is live at its own position only (update copies carry the old id) */
        uint32_t f, o;
        return tmp->e.keylen == ZDB_SEQ_KEY_SIZE &&
               zdb_ns_seq_locate(ns, qs_le64(tmp->key), &f, &o) == 0 && f == tmp->fileid &&
               o == tmp->off;
    }
    if (!ns->keys)
        return false;
    const struct zdb_keyrec *r = zdb_keyindex_get(ns->keys, tmp->key, tmp->e.keylen);
    return r && r->loc.fileid == tmp->fileid && r->loc.idxoff == tmp->off;
}

/* Walks forward from position fileid/off (an entry start or the end of a file) to the
 * first entry the iterator stops on. */
static int walk_forward(struct zdb_scan *it, uint32_t fileid, uint64_t off)
{
    struct zdb_scan tmp = *it;
    struct zdb_ns *ns = it->ns;
    uint32_t steps = 0;
    for (;;) {
        if (fileid > ns->fileid)
            return QS_ENOTFOUND;
        uint64_t size = 0;
        int rc = file_size(ns, 'i', fileid, &size);
        if (rc == QS_ENOTFOUND || (rc == 0 && off + ENT > size)) {
            /* a missing file (never written, or removed) or the end of this one */
            if (fileid == UINT32_MAX)
                return QS_ENOTFOUND;
            fileid++;
            off = HDR;
            continue;
        }
        if (rc < 0)
            return rc;
        if ((rc = read_entry(&tmp, fileid, off, size)) < 0)
            return rc;
        tmp.live = entry_live(&tmp);
        if (tmp.all || tmp.live) {
            *it = tmp;
            return 0;
        }
        if (it->budget && ++steps >= it->budget) {
            *it = tmp;
            return QS_EAGAIN;
        }
        off += ENT + tmp.e.keylen;
    }
}

/* Offset of the entry of index file fileid that ends exactly at end (> HDR). hint is
 * where it probably starts. */
static int entry_before(struct zdb_ns *ns, uint32_t fileid, uint64_t end, uint64_t size,
                        uint64_t hint, uint64_t *out)
{
    struct zdb_idx_entry e;
    if (ns->mode == ZDB_MODE_SEQ && end >= HDR + ZDB_SEQ_ENTRY_SIZE &&
        (end - HDR) % ZDB_SEQ_ENTRY_SIZE == 0)
        hint = end - ZDB_SEQ_ENTRY_SIZE; /* fixed-size slots */
    if (hint >= HDR && hint + ENT <= end && read_fixed(ns, fileid, hint, size, &e) == 0 &&
        hint + ENT + e.keylen == end) {
        *out = hint;
        return 0;
    }
    /* The hint was stale: find the entry ending at `end` from the start of the file. */
    uint64_t p = HDR;
    while (p + ENT <= end) {
        int rc = read_fixed(ns, fileid, p, size, &e);
        if (rc < 0)
            return rc;
        uint64_t next = p + ENT + e.keylen;
        if (next == end) {
            *out = p;
            return 0;
        }
        p = next;
    }
    return qs_err_set(QS_ECORRUPT, "no index entry of i%u ends at %llu", fileid,
                      (unsigned long long)end);
}

/* Walks backward from position fileid/end (the start of an entry or the end of a file)
 * to the first entry before it that the iterator stops on. hint: the `previous` field of
 * the entry at `end`, or the offset of the newest entry written. */
static int walk_backward(struct zdb_scan *it, uint32_t fileid, uint64_t end, uint64_t hint)
{
    struct zdb_scan tmp = *it;
    struct zdb_ns *ns = it->ns;
    uint32_t steps = 0;
    uint64_t size = 0;
    int rc = file_size(ns, 'i', fileid, &size);
    if (rc == QS_ENOTFOUND)
        end = HDR; /* nothing in this file: go on with the one before */
    else if (rc < 0)
        return rc;
    for (;;) {
        if (end <= HDR) {
            if (fileid == 0)
                return QS_ENOTFOUND;
            fileid--;
            rc = file_size(ns, 'i', fileid, &size);
            if (rc == QS_ENOTFOUND) {
                end = HDR;
                continue;
            }
            if (rc < 0)
                return rc;
            end = size;
            continue;
        }
        uint64_t off = 0;
        if ((rc = entry_before(ns, fileid, end, size, hint, &off)) < 0)
            return rc;
        if ((rc = read_entry(&tmp, fileid, off, size)) < 0)
            return rc;
        tmp.live = entry_live(&tmp);
        if (tmp.all || tmp.live) {
            *it = tmp;
            return 0;
        }
        if (it->budget && ++steps >= it->budget) {
            *it = tmp;
            return QS_EAGAIN;
        }
        hint = tmp.e.previous;
        end = off;
    }
}

int zdb_scan_first(struct zdb_scan *it)
{
    return walk_forward(it, 0, HDR);
}

int zdb_scan_last(struct zdb_scan *it)
{
    struct zdb_ns *ns = it->ns;
    return walk_backward(it, ns->fileid, ns->idx_size, ns->idx_prev);
}

int zdb_scan_next(struct zdb_scan *it)
{
    return walk_forward(it, it->fileid, (uint64_t)it->off + ENT + it->e.keylen);
}

int zdb_scan_prev(struct zdb_scan *it)
{
    return walk_backward(it, it->fileid, it->off, it->e.previous);
}

int zdb_scan_seek(struct zdb_scan *it, uint32_t fileid, uint32_t off)
{
    struct zdb_scan tmp = *it;
    uint64_t size = 0;
    int rc = file_size(it->ns, 'i', fileid, &size);
    if (rc == 0)
        rc = read_entry(&tmp, fileid, off, size);
    if (rc < 0)
        return qs_err_set(QS_EINVAL, "no index entry at i%u offset %u: %s", fileid, off,
                          qs_err_msg());
    tmp.live = entry_live(&tmp);
    *it = tmp;
    return 0;
}

int zdb_scan_seek_cursor(struct zdb_scan *it, const uint8_t *cur, size_t len)
{
    if (len != ZDB_CURSOR_SIZE)
        return qs_err_set(QS_EINVAL, "a cursor is %d bytes, not %zu", ZDB_CURSOR_SIZE, len);
    uint8_t keylen = cur[0];
    uint32_t fileid = qs_le32(cur + 1), length = qs_le32(cur + 5);
    uint32_t off = qs_le32(cur + 9), crc = qs_le32(cur + 13);
    struct zdb_scan tmp = *it;
    int rc = zdb_scan_seek(&tmp, fileid, off);
    if (rc < 0)
        return rc;
    if (tmp.e.keylen != keylen || tmp.e.length != length || tmp.e.crc != crc)
        return qs_err_set(QS_EINVAL, "cursor does not match the entry at i%u offset %u", fileid,
                          off);
    *it = tmp;
    return 0;
}

int zdb_scan_seek_key(struct zdb_scan *it, const uint8_t *key, size_t klen)
{
    struct zdb_ns *ns = it->ns;
    uint32_t fileid, off;
    if (ns->mode == ZDB_MODE_SEQ) {
        if (klen != ZDB_SEQ_KEY_SIZE || zdb_ns_seq_locate(ns, qs_le64(key), &fileid, &off) < 0)
            return QS_ENOTFOUND;
    } else {
        const struct zdb_keyrec *r = ns->keys ? zdb_keyindex_get(ns->keys, key, klen) : NULL;
        if (!r)
            return QS_ENOTFOUND;
        fileid = r->loc.fileid;
        off = r->loc.idxoff;
    }
    struct zdb_scan tmp = *it;
    int rc = zdb_scan_seek(&tmp, fileid, off);
    if (rc < 0)
        return qs_err_set(QS_ECORRUPT, "index entry of a live key: %s", qs_err_msg());
    if (!tmp.live)
        return QS_ENOTFOUND; /* a deleted sequential slot */
    *it = tmp;
    return 0;
}

void zdb_scan_cursor(const struct zdb_scan *it, uint8_t out[ZDB_CURSOR_SIZE])
{
    out[0] = it->e.keylen;
    qs_put32(out + 1, it->fileid);
    qs_put32(out + 5, it->e.length);
    qs_put32(out + 9, it->off);
    qs_put32(out + 13, it->e.crc);
}

void zdb_scan_loc(const struct zdb_scan *it, struct zdb_loc *loc)
{
    loc->fileid = it->e.dataid;
    loc->idxoff = it->off;
    loc->dataoff = it->e.offset;
    loc->length = it->e.length;
    loc->crc = it->e.crc;
    loc->keylen = it->e.keylen;
}

int zdb_scan_data_size(struct zdb_ns *ns, uint32_t fileid, uint64_t *size)
{
    return file_size(ns, 'd', fileid, size);
}

int zdb_scan_data_read(struct zdb_ns *ns, uint32_t fileid, uint64_t off, struct zdb_dat_entry *e,
                       uint8_t *key, uint8_t **payload)
{
    uint64_t size = 0;
    int rc = file_size(ns, 'd', fileid, &size);
    if (rc < 0)
        return rc;
    if (off < ZDB_DAT_HEADER_SIZE || off >= size)
        return qs_err_set(QS_EINVAL, "offset %llu is outside the entries of d%u",
                          (unsigned long long)off, fileid);
    if (off + ZDB_DAT_ENTRY_SIZE > size)
        return qs_err_set(QS_ECORRUPT, "d%u: no whole entry at %llu", fileid,
                          (unsigned long long)off);
    uint8_t hdr[ZDB_DAT_ENTRY_SIZE];
    struct iovec iov = {hdr, sizeof(hdr)};
    if ((rc = zdb_nsfile_readv(ns, 'd', fileid, &iov, 1, off)) < 0)
        return rc;
    if (zdb_dat_entry_decode(e, hdr, sizeof(hdr)) < 0 ||
        off + ZDB_DAT_ENTRY_SIZE + e->keylen + e->length > size)
        return qs_err_set(QS_ECORRUPT, "d%u: no valid entry at %llu", fileid,
                          (unsigned long long)off);
    uint8_t *val = NULL;
    if (payload && !(val = malloc(e->length ? e->length : 1)))
        return qs_err_set(QS_ENOMEM, "payload of %u bytes", e->length);
    struct iovec rd[2] = {{key, e->keylen}, {val, payload ? e->length : 0}};
    if ((rc = zdb_nsfile_readv(ns, 'd', fileid, rd, 2, off + ZDB_DAT_ENTRY_SIZE)) < 0) {
        free(val);
        return rc;
    }
    if (payload)
        *payload = val;
    return 0;
}
