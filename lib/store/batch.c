/* Batches of writes (store.h): a generation's base, its commit at batch end, and its roll
 * back when its bytes cannot all be written and synced.
 *
 * A generation starts at the first buffered write of a namespace in a batch and ends at
 * batch end or at a rotation. Its base is the active pair and the sizes its files had. A
 * roll back restores the bytes the generation's in-place index patches overwrote (saved
 * before each patch, newest first), cuts both files back to the base, and loads the
 * namespace again from them. The in-memory state is thereby exactly what the files hold,
 * whatever the failed writes had changed (index, counters, sequential ids). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store/ns_private.h"
#include "store/nsfile.h"
#include "store/store.h"
#include "util/log.h"
#include "util/mem.h"

#define UNDO_HDR 14 /* u32 fileid, u64 offset, u16 length, then the old bytes */

void zdb_batch_touch(struct zdb_ns *ns)
{
    if (ns->batch_touched)
        return;
    ns->batch_touched = true;
    ns->batch_failed = false;
    ns->batch_gen = ++ns->store->gen_seq;
    ns->base_fileid = ns->fileid;
    ns->base_dat = ns->dat_size - ns->wdat.len;
    ns->base_idx = ns->idx_size - ns->widx.len;
    qs_buf_reset(&ns->wundo);
}

void zdb_batch_rebase(struct zdb_ns *ns)
{
    ns->batch_touched = false;
    ns->batch_failed = false;
    qs_buf_reset(&ns->wundo);
    qs_buf_shrink(&ns->wundo, 1 << 16);
}

int zdb_batch_save_undo(struct zdb_ns *ns, int fd, uint32_t fileid, uint64_t off, size_t len)
{
    if (!ns->batch_touched)
        return 0; /* not in a batch: nothing to roll back to */
    uint8_t *dst;
    int rc = qs_buf_reserve(&ns->wundo, UNDO_HDR + len, &dst);
    if (rc < 0)
        return qs_err_set(rc, "undo record: out of memory");
    qs_put32(dst, fileid);
    qs_put64(dst + 4, off);
    qs_put16(dst + 12, (uint16_t)len);
    if ((rc = zdb_read_at(fd, dst + UNDO_HDR, len, off)) < 0)
        return rc;
    qs_buf_commit(&ns->wundo, UNDO_HDR + len);
    return 0;
}

/* Writes the saved bytes back, newest first (a later patch may cover an earlier one). */
static int undo_patches(struct zdb_ns *ns)
{
    const uint8_t *p = qs_buf_ptr(&ns->wundo);
    size_t n = ns->wundo.len, count = 0;
    for (size_t off = 0; off + UNDO_HDR <= n; off += UNDO_HDR + qs_le16(p + off + 12))
        count++;
    if (!count)
        return 0;
    size_t *at = malloc(count * sizeof(*at));
    if (!at)
        return qs_err_set(QS_ENOMEM, "undo: out of memory");
    size_t i = 0;
    for (size_t off = 0; off + UNDO_HDR <= n; off += UNDO_HDR + qs_le16(p + off + 12))
        at[i++] = off;
    int rc = 0;
    while (rc == 0 && i-- > 0) {
        const uint8_t *r = p + at[i];
        int fd;
        if ((rc = zdb_nsfile_fd(ns, 'i', qs_le32(r), &fd)) < 0)
            break;
        struct iovec iov = {(void *)(r + UNDO_HDR), qs_le16(r + 12)};
        rc = zdb_write_at(fd, &iov, 1, qs_le64(r + 4));
    }
    free(at);
    return rc;
}

/* Cuts fd back to len bytes; never grows it (a file cut shorter behind zdb's back stays
 * as it is, and loading it again recovers what it holds). */
static int cut_back(struct zdb_ns *ns, int fd, char kind, uint64_t len)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return qs_err_sys(QS_EIO, errno, "stat %c%u", kind, ns->fileid);
    if ((uint64_t)st.st_size > len && ftruncate(fd, (off_t)len) != 0)
        return qs_err_sys(QS_EIO, errno, "cut %c%u back to %llu bytes", kind, ns->fileid,
                          (unsigned long long)len);
    return 0;
}

static void record_abort(struct zdb_store *st, uint64_t gen, int code)
{
    if (st->naborted == sizeof(st->aborted) / sizeof(st->aborted[0])) {
        st->aborted_overflow = true;
        return;
    }
    st->aborted[st->naborted].gen = gen;
    st->aborted[st->naborted].code = code;
    st->naborted++;
}

int zdb_batch_abort(struct zdb_ns *ns, int code)
{
    struct zdb_store *st = ns->store;
    char why[512];
    snprintf(why, sizeof(why), "%s", qs_err_msg());
    record_abort(st, ns->batch_gen, code);
    qs_buf_reset(&ns->wdat);
    qs_buf_reset(&ns->widx);
    qs_buf_reset(&ns->wpatch);
    ns->sync_pending = false;
    int rc = 0;
    if (ns->fileid != ns->base_fileid) /* a rotation always starts a new generation */
        rc = qs_err_set(QS_EIO, "active file d%u is not the generation's d%u", ns->fileid,
                        ns->base_fileid);
    if (rc == 0)
        rc = undo_patches(ns);
    if (rc == 0)
        rc = cut_back(ns, ns->dat_fd, 'd', ns->base_dat);
    if (rc == 0)
        rc = cut_back(ns, ns->idx_fd, 'i', ns->base_idx);
    /* Make the cut durable now if the disk lets us; if not, the next successful sync of
     * these files does it, and no write is acknowledged before one succeeds. */
    const struct zdb_store_opts *o = &st->opts;
    if (rc == 0 && (o->sync || o->secure) &&
        (fdatasync(ns->dat_fd) != 0 || fdatasync(ns->idx_fd) != 0))
        qs_log(QS_LOG_WARN, "namespace %s: sync after cutting back d%u/i%u failed: %s", ns->name,
               ns->fileid, ns->fileid, strerror(errno));
    ns->dat_size = ns->base_dat;
    ns->idx_size = ns->base_idx;
    ns->dirty_unsynced = false;
    qs_buf_reset(&ns->wundo);
    ns->batch_touched = false;
    ns->batch_failed = false;
    bool files_back = rc == 0; /* the files hold no refused write any more */
    if (rc == 0)
        rc = zdb_ns_reload_in_place(ns);
    if (rc < 0 && files_back) {
        /* The files are right, the memory may still hold the refused writes: refuse every
         * write until a reload succeeds (tried again by the next write: a disk that failed
         * for a while must not need a restart). */
        ns->broken = "the reload after a failed write failed; retried at the next write";
        ns->reload_pending = true;
        qs_log(QS_LOG_ERROR,
               "namespace %s: writes failed (%s), were cut back, and reloading failed: %s",
               ns->name, why, qs_err_msg());
        return rc;
    }
    if (rc < 0) {
        /* The files or the memory may now hold writes that were answered with an error:
         * refuse every write until a restart recovers the namespace from its files. */
        ns->broken = "a failed write could not be rolled back; restart zdb";
        qs_log(QS_LOG_ERROR, "namespace %s: writes failed (%s) and the roll back failed: %s",
               ns->name, why, qs_err_msg());
        return rc;
    }
    qs_log(QS_LOG_WARN, "namespace %s: writes of this batch refused and rolled back: %s", ns->name,
           why);
    return qs_err_set(code, "%s", why);
}

int zdb_ns_reload_in_place(struct zdb_ns *ns)
{
    if (ns->wdat.len || ns->widx.len || ns->wpatch.len)
        return qs_err_set(QS_EBUSY, "namespace %s: reload with writes pending", ns->name);
    struct zdb_ns *fresh = NULL;
    int rc = zdb_ns_open(ns->store, ns->name, false, &fresh);
    if (rc < 0)
        return rc;
    /* Swap the contents: the object the server points at takes the loaded state; what
     * belongs to the object and not to the files stays with it. */
    struct zdb_ns old = *ns;
    *ns = *fresh;
    *fresh = old;
    ns->clients = old.clients;
    ns->locked = old.locked;
    ns->frozen = old.frozen;
    ns->stats = old.stats;
    ns->compact = old.compact;
    ns->nospace = old.nospace;
    /* the index files modified in place stay dirty for the hooks */
    for (size_t i = 0; i < ns->ndirty; i++)
        zdb_ns_mark_dirty(fresh, ns->dirty[i]); /* fresh holds the old list now */
    free(ns->dirty);
    ns->dirty = fresh->dirty;
    ns->ndirty = fresh->ndirty;
    ns->dirtycap = fresh->dirtycap;
    fresh->dirty = NULL;
    fresh->ndirty = fresh->dirtycap = 0;
    fresh->clients = 0;
    fresh->dirty_unsynced = false;
    zdb_ns_close(fresh);
    return 0;
}

bool zdb_store_gen_aborted(const struct zdb_store *st, uint64_t gen, int *code)
{
    for (size_t i = 0; i < st->naborted; i++)
        if (st->aborted[i].gen == gen) {
            if (code)
                *code = st->aborted[i].code;
            return true;
        }
    if (st->aborted_overflow && code)
        *code = QS_EWRITE_DATA;
    return st->aborted_overflow;
}
