/* Namespace operations: SET, GET, DEL, rotation, sync, descriptor. Loading and
 * recovery live in ns_load.c, raw file access in nsfile.c. */
#include "ns.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store/ns_private.h"
#include "store/nsfile.h"
#include "store/store.h"
#include "util/crc32c.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/sys.h"

void zdb_ns_mark_dirty(struct zdb_ns *ns, uint32_t fileid)
{
    for (size_t i = 0; i < ns->ndirty; i++)
        if (ns->dirty[i] == fileid)
            return;
    if (ns->ndirty == ns->dirtycap) {
        size_t cap = ns->dirtycap ? ns->dirtycap * 2 : 16;
        uint32_t *p = realloc(ns->dirty, cap * sizeof(*p));
        if (!p)
            return; /* the list is advisory; losing an id only costs a re-upload */
        ns->dirty = p;
        ns->dirtycap = cap;
    }
    ns->dirty[ns->ndirty++] = fileid;
}

int zdb_ns_save(struct zdb_ns *ns)
{
    struct zdb_nsfile f;
    memset(&f, 0, sizeof(f));
    f.maxsize = ns->maxsize;
    f.flags = (uint8_t)((ns->public_ ? ZDB_NS_PUBLIC : 0) | (ns->worm ? ZDB_NS_WORM : 0));
    f.namelen = (uint8_t)strlen(ns->name);
    f.passlen = (uint8_t)strlen(ns->password);
    memcpy(f.name, ns->name, f.namelen);
    memcpy(f.password, ns->password, f.passlen);
    uint8_t buf[ZDB_NSFILE_HEADER_SIZE + 512];
    size_t n = zdb_nsfile_encode(buf, sizeof(buf), &f);
    qs_wipe(&f, sizeof(f));

    /* temporary file, fsync, rename, directory fsync: the descriptor survives a power
     * cut whole, old or new, on any file system */
    char path[4096];
    snprintf(path, sizeof(path), "%s/zdb-namespace", ns->idxdir);
    int rc = qs_replace_file(path, buf, n, 0600, 0);
    qs_wipe(buf, sizeof(buf));
    return rc;
}

/* Writes always run in a batch (zdb_ns_set/del make one when the caller has none): the
 * sync they need happens once, at batch end, and its failure rolls the batch back. */
static void ns_after_write(struct zdb_ns *ns)
{
    const struct zdb_store_opts *o = &ns->store->opts;
    if (o->sync || (o->synctime && time(NULL) - ns->last_sync >= (time_t)o->synctime))
        ns->sync_pending = true;
}

int zdb_ns_sync(struct zdb_ns *ns)
{
    int rc = zdb_nsfile_flush(ns);
    if (rc < 0)
        return rc;
    if (ns->dat_fd >= 0 && fdatasync(ns->dat_fd) != 0)
        rc = qs_err_sys(QS_EIO, errno, "fsync d%u", ns->fileid);
    if (ns->idx_fd >= 0 && fdatasync(ns->idx_fd) != 0)
        rc = qs_err_sys(QS_EIO, errno, "fsync i%u", ns->fileid);
    /* Older index files modified in place (deleted flags) are in the descriptor cache. */
    for (int i = 0; i < ZDB_FDCACHE_SIZE; i++)
        if (ns->fdc[i].fd >= 0 && ns->fdc[i].writable && fdatasync(ns->fdc[i].fd) != 0)
            rc = qs_err_sys(QS_EIO, errno, "fsync i%u", ns->fdc[i].fileid);
    ns->last_sync = time(NULL);
    if (rc == 0) {
        ns->dirty_unsynced = false;
        ns->sync_pending = false;
        zdb_batch_rebase(ns); /* what the generation wrote is durable: nothing to undo */
    } else if (ns->batch_touched) {
        ns->batch_failed = true; /* not trusted: rolled back at batch end */
    }
    return rc;
}

static int seq_push_file(struct zdb_ns *ns, uint32_t fileid, uint64_t first)
{
    if (fileid >= ns->seqcap) {
        size_t cap = ns->seqcap ? ns->seqcap : 8;
        while (cap <= fileid)
            cap *= 2;
        struct zdb_seqfile *p = realloc(ns->seq, cap * sizeof(*p));
        if (!p)
            return qs_err_set(QS_ENOMEM, "sequence map");
        memset(p + ns->seqcap, 0, (cap - ns->seqcap) * sizeof(*p));
        ns->seq = p;
        ns->seqcap = cap;
    }
    for (size_t i = ns->nseq; i <= fileid; i++) {
        ns->seq[i].first = first;
        ns->seq[i].count = 0;
    }
    if (ns->nseq <= fileid)
        ns->nseq = fileid + 1;
    return 0;
}

int zdb_ns_seq_push_file(struct zdb_ns *ns, uint32_t fileid, uint64_t first)
{
    return seq_push_file(ns, fileid, first);
}

int zdb_ns_jump(struct zdb_ns *ns)
{
    const struct zdb_store_opts *o = &ns->store->opts;
    int rc = zdb_nsfile_flush(ns);
    if (rc < 0)
        return rc; /* stay on this pair: its pending bytes must land first */
    if ((o->secure || o->sync || o->synctime) && (rc = zdb_ns_sync(ns)) < 0) {
        ns->stats.data_faults++;
        return rc; /* the old files are not complete on disk: do not leave them */
    }
    uint32_t old = ns->fileid;
    zdb_nsfile_close_active(ns);
    rc = zdb_nsfile_open_active(ns, old + 1);
    /* the new files' names must survive a power cut before anything is written there */
    if (rc == 0 && (o->secure || o->sync) &&
        (qs_fsync_dir(ns->idxdir) < 0 || qs_fsync_dir(ns->datdir) < 0)) {
        rc = qs_err_set(QS_EIO, "%s", qs_err_msg());
        zdb_nsfile_close_active(ns);
    }
    if (rc < 0) {
        /* Stay on the old pair rather than losing the ability to write at all. */
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        if (zdb_nsfile_open_active(ns, old) < 0)
            ns->broken = "the active files could not be reopened after a failed rotation";
        return qs_err_set(rc, "%s", msg);
    }
    zdb_batch_rebase(ns); /* what came before is complete in the old pair */
    ns->index_bytes += ns->idx_size;
    ns->data_bytes += ns->dat_size;
    if (ns->mode == ZDB_MODE_SEQ) {
        rc = seq_push_file(ns, ns->fileid, ns->next_id);
        if (rc < 0)
            return rc;
    }
    ns->written = false;
    if (o->events.jump)
        o->events.jump(o->events.ud, ns, old, ns->fileid);
    return 0;
}

static int maybe_rotate(struct zdb_ns *ns, size_t klen, size_t vlen)
{
    uint64_t need = ZDB_DAT_ENTRY_SIZE + klen + vlen;
    if (ns->dat_size <= ZDB_DAT_HEADER_SIZE)
        return 0; /* an empty file always takes one entry */
    if (ns->dat_size + need > ns->store->opts.datasize)
        return zdb_ns_jump(ns);
    return 0;
}

/* Locates sequential id in the index files. */
static int seq_locate(const struct zdb_ns *ns, uint64_t id, uint32_t *fileid, uint32_t *off)
{
    if (id >= ns->next_id || ns->nseq == 0)
        return QS_ENOTFOUND;
    size_t lo = 0, hi = ns->nseq;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (ns->seq[mid].first <= id)
            lo = mid;
        else
            hi = mid;
    }
    /* Skip files holding no entry (a run of equal firsts). */
    while (lo + 1 < ns->nseq && ns->seq[lo + 1].first <= id)
        lo++;
    if (id - ns->seq[lo].first >= ns->seq[lo].count)
        return QS_ENOTFOUND;
    *fileid = (uint32_t)lo;
    *off = (uint32_t)(ZDB_IDX_HEADER_SIZE + (id - ns->seq[lo].first) * ZDB_SEQ_ENTRY_SIZE);
    return 0;
}

int zdb_ns_seq_locate(const struct zdb_ns *ns, uint64_t id, uint32_t *fileid, uint32_t *off)
{
    return seq_locate(ns, id, fileid, off);
}

static int seq_lookup(struct zdb_ns *ns, const uint8_t *key, size_t klen, struct zdb_loc *loc,
                      struct zdb_idx_entry *ent)
{
    if (klen != ZDB_SEQ_KEY_SIZE)
        return QS_ENOTFOUND;
    uint64_t id = qs_le64(key);
    uint32_t fileid, off;
    if (seq_locate(ns, id, &fileid, &off) < 0)
        return QS_ENOTFOUND;
    uint8_t k[ZDB_MAX_KEY];
    int rc = zdb_nsfile_index_read(ns, fileid, off, ent, k);
    if (rc < 0)
        return rc;
    if (ent->flags & ZDB_IDX_DELETED)
        return QS_ENOTFOUND;
    loc->fileid = ent->dataid;
    loc->idxoff = off;
    loc->dataoff = ent->offset;
    loc->length = ent->length;
    loc->crc = ent->crc;
    loc->keylen = ent->keylen;
    /* idxoff is in file `fileid`, which can differ from the data file after an update */
    loc->fileid = ent->dataid;
    return 0;
}

int zdb_ns_lookup(struct zdb_ns *ns, const uint8_t *key, size_t klen, struct zdb_loc *loc)
{
    if (ns->mode == ZDB_MODE_SEQ) {
        struct zdb_idx_entry e;
        return seq_lookup(ns, key, klen, loc, &e);
    }
    const struct zdb_keyrec *r = zdb_keyindex_get(ns->keys, key, klen);
    if (!r)
        return QS_ENOTFOUND;
    loc->fileid = r->loc.fileid;
    loc->idxoff = r->loc.idxoff;
    loc->dataoff = r->loc.dataoff;
    loc->length = r->loc.length;
    loc->crc = r->loc.crc;
    loc->keylen = (uint8_t)klen;
    return 0;
}

static int check_header(struct zdb_ns *ns, const struct zdb_loc *loc, const uint8_t *hdr,
                        struct zdb_dat_entry *e)
{
    if (zdb_dat_entry_decode(e, hdr, ZDB_DAT_ENTRY_SIZE) < 0 || e->keylen != loc->keylen ||
        e->length != loc->length) {
        ns->stats.data_faults++;
        return qs_err_set(QS_ECORRUPT, "data entry in d%u at %u does not match its index",
                          loc->fileid, loc->dataoff);
    }
    return 0;
}

static void count_read_error(struct zdb_ns *ns, int rc)
{
    if (rc == QS_ENOTFOUND)
        return; /* a missing (offloaded) file is not an I/O error */
    ns->stats.data_io_errors++;
    ns->stats.data_read_failed++;
    ns->stats.data_io_error_last = time(NULL);
}

int zdb_ns_read_header(struct zdb_ns *ns, const struct zdb_loc *loc, struct zdb_dat_entry *e)
{
    uint8_t hdr[ZDB_DAT_ENTRY_SIZE];
    struct iovec iov = {hdr, sizeof(hdr)};
    int rc = zdb_nsfile_readv(ns, 'd', loc->fileid, &iov, 1, loc->dataoff);
    if (rc < 0) {
        count_read_error(ns, rc);
        return rc;
    }
    return check_header(ns, loc, hdr, e);
}

int zdb_ns_read(struct zdb_ns *ns, const struct zdb_loc *loc, uint8_t *dst, bool *crc_ok)
{
    /* Header, key and payload in one system call. */
    uint8_t hdr[ZDB_DAT_ENTRY_SIZE + ZDB_MAX_KEY];
    struct iovec iov[2] = {{hdr, ZDB_DAT_ENTRY_SIZE + (size_t)loc->keylen}, {dst, loc->length}};
    int rc = zdb_nsfile_readv(ns, 'd', loc->fileid, iov, 2, loc->dataoff);
    if (rc < 0) {
        count_read_error(ns, rc);
        return rc;
    }
    struct zdb_dat_entry e;
    rc = check_header(ns, loc, hdr, &e);
    if (rc < 0)
        return rc;
    ns->stats.data_read_bytes += ZDB_DAT_ENTRY_SIZE + loc->keylen + loc->length;
    bool ok = qs_crc32c_zdb(dst, loc->length) == e.crc && e.crc == loc->crc;
    if (crc_ok) {
        *crc_ok = ok;
        return 0;
    }
    if (ok)
        return 0;
    /* Never answer damaged bytes as the value. Logged at most once a second. */
    ns->stats.data_faults++;
    time_t now = time(NULL);
    if (now != ns->damage_logged) {
        qs_log(QS_LOG_ERROR, "namespace %s: damaged value in d%u at %u (CRC mismatch)", ns->name,
               loc->fileid, loc->dataoff);
        ns->damage_logged = now;
    }
    return qs_err_set(QS_ECORRUPT, "value in d%u at %u is damaged (CRC mismatch)", loc->fileid,
                      loc->dataoff);
}

/* True when the stored payload of loc equals val byte for byte. */
static bool same_value(struct zdb_ns *ns, const struct zdb_loc *loc, const uint8_t *val,
                       size_t vlen, uint32_t crc)
{
    if (loc->length != vlen || loc->crc != crc)
        return false;
    if (vlen == 0)
        return true;
    uint8_t small[4096];
    uint8_t *buf = vlen <= sizeof(small) ? small : malloc(vlen);
    if (!buf)
        return false;
    bool same = zdb_ns_read(ns, loc, buf, NULL) == 0 && memcmp(buf, val, vlen) == 0;
    if (buf != small)
        free(buf);
    return same;
}

static int user_set(struct zdb_ns *ns, const uint8_t *key, size_t klen, const uint8_t *val,
                    size_t vlen, uint32_t ts, uint32_t crc, struct zdb_setres *res)
{
    struct zdb_loc old;
    bool exists = zdb_ns_lookup(ns, key, klen, &old) == 0;
    if (exists && same_value(ns, &old, val, vlen, crc)) {
        res->unchanged = true;
        return 0;
    }
    if (ns->maxsize) {
        uint64_t floating = exists ? old.length : 0;
        if (ns->datasize - floating + vlen > ns->maxsize)
            return qs_err_set(QS_EFULL, "namespace %s is full", ns->name);
    }
    int rc = maybe_rotate(ns, klen, vlen);
    if (rc < 0)
        return qs_err_set(ZDB_EWRITE_DATA, "rotation failed: %s", qs_err_msg());
    uint32_t dataoff, idxoff;
    rc = zdb_nsfile_data_append(ns, key, klen, val, vlen, crc, 0, ts, &dataoff);
    if (rc < 0)
        return rc;
    struct zdb_idx_entry e = {
        .keylen = (uint8_t)klen,
        .offset = dataoff,
        .length = (uint32_t)vlen,
        .flags = 0,
        .dataid = ns->fileid,
        .timestamp = ts,
        .crc = crc,
        .parentid = exists ? old.fileid : 0,
        .parentoff = exists ? old.idxoff : 0,
    };
    rc = zdb_nsfile_index_append(ns, &e, key, &idxoff);
    if (rc < 0)
        return rc;
    if (exists) {
        rc = zdb_nsfile_index_mark_deleted(ns, old.fileid, old.idxoff);
        if (rc < 0)
            return rc; /* the new entry wins on reload anyway: it comes later */
    }
    struct zdb_keyloc loc = {ns->fileid, idxoff, dataoff, (uint32_t)vlen, crc};
    rc = zdb_keyindex_put(ns->keys, key, klen, &loc, NULL);
    if (rc < 0)
        return rc;
    if (exists) {
        ns->datasize -= old.length;
    } else {
        ns->entries++;
    }
    ns->datasize += vlen;
    memcpy(res->key, key, klen);
    res->keylen = klen;
    return 0;
}

static int seq_set(struct zdb_ns *ns, const uint8_t *key, size_t klen, const uint8_t *val,
                   size_t vlen, uint32_t ts, uint32_t crc, struct zdb_setres *res)
{
    struct zdb_loc old;
    struct zdb_idx_entry olde;
    bool exists = false;
    uint64_t id;
    if (klen > 0) {
        if (seq_lookup(ns, key, klen, &old, &olde) != 0)
            return qs_err_set(ZDB_ESEQKEY, "not an existing id");
        exists = true;
        id = qs_le64(key);
        if (same_value(ns, &old, val, vlen, crc)) {
            res->unchanged = true;
            return 0;
        }
    } else {
        id = ns->next_id;
    }
    if (ns->maxsize) {
        uint64_t floating = exists ? old.length : 0;
        if (ns->datasize - floating + vlen > ns->maxsize)
            return qs_err_set(QS_EFULL, "namespace %s is full", ns->name);
    }
    int rc = maybe_rotate(ns, ZDB_SEQ_KEY_SIZE, vlen);
    if (rc < 0)
        return qs_err_set(ZDB_EWRITE_DATA, "rotation failed: %s", qs_err_msg());
    uint8_t k[ZDB_SEQ_KEY_SIZE];
    qs_put64(k, id);
    uint32_t dataoff, idxoff;
    rc = zdb_nsfile_data_append(ns, k, sizeof(k), val, vlen, crc, 0, ts, &dataoff);
    if (rc < 0)
        return rc;
    struct zdb_idx_entry e = {
        .keylen = ZDB_SEQ_KEY_SIZE,
        .offset = dataoff,
        .length = (uint32_t)vlen,
        .dataid = ns->fileid,
        .timestamp = ts,
        .crc = crc,
    };
    if (!exists) {
        rc = zdb_nsfile_index_append(ns, &e, k, &idxoff);
        if (rc < 0)
            return rc;
        ns->seq[ns->fileid].count++;
        ns->next_id++;
        ns->entries++;
        ns->datasize += vlen;
    } else {
        /* As 0-db does: append a deleted copy of the old version (it takes the next
         * slot), then rewrite the id's own slot with the new version pointing to it. */
        uint32_t slotfile, slotoff;
        if (seq_locate(ns, id, &slotfile, &slotoff) < 0)
            return qs_err_set(ZDB_ESEQKEY, "not an existing id");
        struct zdb_idx_entry copy = olde;
        copy.flags |= ZDB_IDX_DELETED;
        uint32_t copyoff;
        rc = zdb_nsfile_index_append(ns, &copy, k, &copyoff);
        if (rc < 0)
            return rc;
        ns->seq[ns->fileid].count++;
        ns->next_id++;
        e.parentid = ns->fileid;
        e.parentoff = copyoff;
        e.previous = olde.previous;
        rc = zdb_nsfile_index_rewrite(ns, slotfile, slotoff, &e, k);
        if (rc < 0)
            return rc;
        ns->datasize = ns->datasize - old.length + vlen;
    }
    memcpy(res->key, k, sizeof(k));
    res->keylen = sizeof(k);
    return 0;
}

#define SPACE_MARGIN (1u << 20) /* free bytes wanted beyond a write after the disk was full */

/* Whether a write may start: refused without a trace when the namespace is broken, or
 * when the disk was full at the last roll back and still has no room for need bytes. */
static int write_allowed(struct zdb_ns *ns, uint64_t need)
{
    if (ns->broken && ns->reload_pending) {
        ns->broken = NULL; /* a reload in place takes the state of the files */
        ns->reload_pending = false;
        if (zdb_ns_reload_in_place(ns) == 0) {
            qs_log(QS_LOG_WARN, "namespace %s: reloaded after the failed write: writes resume",
                   ns->name);
        } else {
            ns->broken = "the reload after a failed write failed; retried at the next write";
            ns->reload_pending = true;
        }
    }
    if (ns->broken)
        return qs_err_set(ZDB_EWRITE_DATA, "namespace %s: %s", ns->name, ns->broken);
    if (!ns->nospace)
        return 0;
    struct statvfs d, i;
    if (statvfs(ns->datdir, &d) == 0 && statvfs(ns->idxdir, &i) == 0 &&
        (uint64_t)d.f_bavail * d.f_frsize >= need + SPACE_MARGIN &&
        (uint64_t)i.f_bavail * i.f_frsize >= SPACE_MARGIN) {
        ns->nospace = false;
        return 0;
    }
    return qs_err_set(ZDB_EDISKFULL, "namespace %s: the disk is full", ns->name);
}

/* Errors a write reports before it changed anything. */
static bool refused_early(int rc)
{
    return rc == QS_EFULL || rc == ZDB_ESEQKEY || rc == QS_EINVAL || rc == ZDB_EDISKFULL ||
           rc == QS_ENOTFOUND;
}

/* Ends a write: a failure half way marks the batch generation for a roll back. Outside
 * a batch the write made its own (self), which ends here. */
static int end_write(struct zdb_ns *ns, int rc, bool self)
{
    if (rc < 0 && !refused_early(rc) && ns->batch_touched)
        ns->batch_failed = true;
    if (!self)
        return rc;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", qs_err_msg());
    int brc = zdb_store_batch_end(ns->store);
    if (rc < 0)
        return qs_err_set(rc, "%s", msg);
    return brc;
}

int zdb_ns_set(struct zdb_ns *ns, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
               uint32_t ts, struct zdb_setres *res)
{
    res->unchanged = false;
    res->keylen = 0;
    if (klen > ZDB_MAX_KEY || vlen > ZDB_MAX_PAYLOAD)
        return qs_err_set(QS_EINVAL, "key or value too large");
    int rc = write_allowed(ns, ZDB_DAT_ENTRY_SIZE + ZDB_IDX_ENTRY_SIZE + 2 * klen + vlen);
    if (rc < 0)
        return rc;
    if (ts == 0)
        ts = (uint32_t)time(NULL);
    bool self = ns->store->batch_depth == 0;
    if (self)
        zdb_store_batch_begin(ns->store);
    uint32_t crc = qs_crc32c_zdb(val, vlen);
    rc = ns->mode == ZDB_MODE_SEQ ? seq_set(ns, key, klen, val, vlen, ts, crc, res)
                                  : user_set(ns, key, klen, val, vlen, ts, crc, res);
    if (rc == 0 && !res->unchanged)
        ns_after_write(ns);
    return end_write(ns, rc, self);
}

/* Marks the live version at loc deleted in the index and forgets it in memory. */
static int forget_loc(struct zdb_ns *ns, const uint8_t *key, size_t klen, const struct zdb_loc *loc)
{
    int rc;
    if (ns->mode == ZDB_MODE_SEQ) {
        uint32_t slotfile, slotoff;
        rc = seq_locate(ns, qs_le64(key), &slotfile, &slotoff);
        if (rc == 0)
            rc = zdb_nsfile_index_mark_deleted(ns, slotfile, slotoff);
    } else {
        rc = zdb_nsfile_index_mark_deleted(ns, loc->fileid, loc->idxoff);
        if (rc == 0)
            rc = zdb_keyindex_del(ns->keys, key, klen);
    }
    if (rc < 0)
        return rc;
    ns->entries--;
    ns->datasize -= loc->length;
    return 0;
}

int zdb_ns_forget(struct zdb_ns *ns, const uint8_t *key, size_t klen)
{
    struct zdb_loc loc;
    int rc = zdb_ns_lookup(ns, key, klen, &loc);
    if (rc < 0)
        return rc;
    return forget_loc(ns, key, klen, &loc);
}

static int ns_del(struct zdb_ns *ns, const uint8_t *key, size_t klen, uint32_t ts);

int zdb_ns_del(struct zdb_ns *ns, const uint8_t *key, size_t klen, uint32_t ts)
{
    int rc = write_allowed(ns, ZDB_DAT_ENTRY_SIZE + klen);
    if (rc < 0)
        return rc;
    bool self = ns->store->batch_depth == 0;
    if (self)
        zdb_store_batch_begin(ns->store);
    return end_write(ns, ns_del(ns, key, klen, ts), self);
}

static int ns_del(struct zdb_ns *ns, const uint8_t *key, size_t klen, uint32_t ts)
{
    struct zdb_loc loc;
    int rc = zdb_ns_lookup(ns, key, klen, &loc);
    if (rc < 0)
        return rc;
    if (ts == 0)
        ts = (uint32_t)time(NULL);
    rc = maybe_rotate(ns, klen, 0);
    if (rc < 0)
        return qs_err_set(ZDB_EWRITE_DATA, "rotation failed: %s", qs_err_msg());
    /* Tombstone first: on reload it replays the delete even if the flag below is lost. */
    uint32_t off;
    rc = zdb_nsfile_data_append(ns, key, klen, NULL, 0, 0, ZDB_DAT_DELETED, ts, &off);
    if (rc < 0)
        return rc;
    rc = forget_loc(ns, key, klen, &loc);
    if (rc < 0)
        return rc;
    ns_after_write(ns);
    return 0;
}

static int remove_dir_files(const char *dir, bool rmdir_too)
{
    char path[4096];
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : qs_err_sys(QS_EIO, errno, "open directory %s", dir);
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if ((n[0] == 'i' || n[0] == 'd') && n[1] >= '0' && n[1] <= '9') {
            snprintf(path, sizeof(path), "%s/%s", dir, n);
            if (unlink(path) != 0 && errno != ENOENT)
                rc = qs_err_sys(QS_EIO, errno, "remove %s", path);
        } else if (rmdir_too && n[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", dir, n);
            if (unlink(path) != 0 && errno != ENOENT)
                rc = qs_err_sys(QS_EIO, errno, "remove %s", path);
        }
    }
    closedir(d);
    if (rc == 0 && rmdir_too && rmdir(dir) != 0 && errno != ENOENT)
        rc = qs_err_sys(QS_EIO, errno, "remove directory %s", dir);
    return rc;
}

int zdb_ns_flush(struct zdb_ns *ns)
{
    qs_buf_reset(&ns->wdat);
    qs_buf_reset(&ns->widx);
    qs_buf_reset(&ns->wpatch);
    zdb_batch_rebase(ns); /* nothing of the namespace is left to roll back to */
    ns->sync_pending = false;
    zdb_nsfile_close_active(ns);
    zdb_nsfile_cache_drop(ns);
    int rc = remove_dir_files(ns->idxdir, false);
    if (rc == 0)
        rc = remove_dir_files(ns->datdir, false);
    zdb_keyindex_free(ns->keys);
    ns->keys = NULL;
    if (zdb_keyindex_new(&ns->keys) < 0 && rc == 0)
        rc = QS_ENOMEM;
    ns->entries = ns->datasize = 0;
    ns->index_bytes = ns->data_bytes = 0;
    ns->next_id = 0;
    ns->nseq = 0;
    ns->ndirty = 0;
    ns->idx_prev = ns->dat_prev = 0;
    int rc2 = zdb_nsfile_open_active(ns, 0);
    if (rc2 == 0 && ns->mode == ZDB_MODE_SEQ)
        rc2 = seq_push_file(ns, 0, 0);
    return rc < 0 ? rc : rc2;
}

int zdb_ns_remove_files(struct zdb_ns *ns)
{
    qs_buf_reset(&ns->wdat);
    qs_buf_reset(&ns->widx);
    qs_buf_reset(&ns->wpatch);
    zdb_nsfile_close_active(ns);
    zdb_nsfile_cache_drop(ns);
    int rc = remove_dir_files(ns->idxdir, true);
    int rc2 = remove_dir_files(ns->datdir, true);
    return rc < 0 ? rc : rc2;
}
