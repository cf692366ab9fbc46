/* Compaction of closed data files (compact.h; the journal is described field by field in
 * docs/zdb-format.md section 9).
 *
 * One compaction of d<N>:
 *  1. everything written so far is made durable (the values that made entries of d<N> dead
 *     must not be lost after the old versions are gone);
 *  2. copy pass: d<N> is read in order; the entries still needed go to d<N>.compact with
 *     their `previous` fields renumbered, and one journal record per index entry to change
 *     goes to compact.tmp: (index file, entry offset, old data offset, new data offset);
 *  3. dead pass: the index entries of reclaimed values get a record with new offset 0 (user
 *     mode: every entry of i<N> that is not live; sequential mode: deleted slots, and the
 *     deleted copies on each id's history chain, walked from its slot);
 *  4. d<N>.compact and the journal are synced, the journal is renamed to `compact` (commit);
 *  5. rename d<N>.compact -> d<N>, apply the records, sync, remove the journal.
 * A record is applied only when the index entry still names d<N> at the old or the new
 * offset, so replaying a journal after a crash (or twice) changes nothing it should not. */
#include "store/compact.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/keyindex.h"
#include "store/nsfile.h"
#include "store/reader.h"
#include "store/store.h"
#include "util/crc32c.h"
#include "util/log.h"
#include "util/mem.h"

#define JOURNAL         "compact"
#define JOURNAL_TMP     "compact.tmp"
#define DATA_SUFFIX     ".compact"
#define JOURNAL_MAGIC   "ZCPT"
#define JOURNAL_VERSION 1
#define JHDR            32 /* magic, version, fileid, flags, count, new data size */
#define JREC            16 /* index file, entry offset, old data offset, new data offset */
#define JTRAILER        8  /* crc of the records, crc of the header */

#define READER_CAP  (ZDB_DAT_ENTRY_SIZE + ZDB_MAX_KEY + ZDB_MAX_PAYLOAD + 64 * 1024)
#define WBUF        (1u << 20)
#define WALK_BUDGET (16u << 20) /* seq history walk: index entries read per compaction */
#define PATCH_FDS   16

static void step(const struct zdb_compact_opts *o, int s)
{
    if (o && o->step)
        o->step(o->ud, s);
}

/* ---- small file helpers -------------------------------------------------------------- */

static bool path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return qs_err_sys(QS_EIO, errno, "open directory %s", dir);
    int rc = 0;
    if (fsync(fd) != 0)
        rc = qs_err_sys(QS_EIO, errno, "sync directory %s", dir);
    close(fd);
    return rc;
}

static int sync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : qs_err_sys(QS_EIO, errno, "open %s", path);
    int rc = 0;
    if (fdatasync(fd) != 0)
        rc = qs_err_sys(QS_EIO, errno, "sync %s", path);
    close(fd);
    return rc;
}

/* Makes durable what can have made values of d<fileid> dead: the later data and index files,
 * and the in-place updates of every index file (flags, and rewritten sequential slots). */
static int sync_before(struct zdb_ns *ns, uint32_t fileid)
{
    /* Nothing written since the last time (COMPACT * compacts file after file). */
    uint64_t written = ns->stats.data_write_bytes + ns->stats.index_write_bytes;
    if (ns->compact.synced && ns->compact.synced_at == written && !ns->wdat.len && !ns->widx.len &&
        !ns->wpatch.len)
        return 0;
    ns->compact.synced = false;
    int rc = zdb_ns_sync(ns);
    char path[4096];
    for (uint32_t f = 0; f < ns->fileid && rc == 0; f++) {
        zdb_ns_path(ns, 'i', f, path, sizeof(path));
        rc = sync_path(path);
        if (rc == 0 && f > fileid) {
            zdb_ns_path(ns, 'd', f, path, sizeof(path));
            rc = sync_path(path);
        }
    }
    if (rc == 0) {
        ns->compact.synced = true;
        ns->compact.synced_at = written;
    }
    return rc;
}

static void data_tmp_path(const struct zdb_ns *ns, uint32_t fileid, char *out, size_t cap)
{
    snprintf(out, cap, "%s/d%u" DATA_SUFFIX, ns->datdir, fileid);
}

static void journal_path(const struct zdb_ns *ns, bool tmp, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", ns->idxdir, tmp ? JOURNAL_TMP : JOURNAL);
}

/* Buffered sequential writer. */
struct wfile {
    int fd;
    uint64_t off; /* file offset of the first buffered byte */
    struct qs_buf b;
};

static void wfile_init(struct wfile *w)
{
    w->fd = -1;
    w->off = 0;
    qs_buf_init(&w->b, WBUF);
}

static uint64_t wfile_pos(const struct wfile *w)
{
    return w->off + w->b.len;
}

static int wfile_flush(struct wfile *w)
{
    if (w->b.len == 0)
        return 0;
    struct iovec iov = {qs_buf_ptr(&w->b), w->b.len};
    int rc = zdb_write_at(w->fd, &iov, 1, w->off);
    if (rc < 0)
        return rc;
    w->off += w->b.len;
    qs_buf_reset(&w->b);
    return 0;
}

static int wfile_append(struct wfile *w, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (w->b.len + n > WBUF) {
        int rc = wfile_flush(w);
        if (rc < 0)
            return rc;
    }
    if (n > WBUF) {
        struct iovec iov = {(void *)p, n};
        int rc = zdb_write_at(w->fd, &iov, 1, w->off);
        if (rc == 0)
            w->off += n;
        return rc;
    }
    return qs_buf_append(&w->b, p, n);
}

static void wfile_close(struct wfile *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    qs_buf_free(&w->b);
}

/* ---- sequential slots ---------------------------------------------------------------- */

/* Index file and offset of the slot of sequential id (same rule as the engine's). */
static int seq_slot(const struct zdb_ns *ns, uint64_t id, uint32_t *fileid, uint32_t *off)
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
    while (lo + 1 < ns->nseq && ns->seq[lo + 1].first <= id)
        lo++;
    if (id < ns->seq[lo].first || id - ns->seq[lo].first >= ns->seq[lo].count)
        return QS_ENOTFOUND;
    *fileid = (uint32_t)lo;
    *off = (uint32_t)(ZDB_IDX_HEADER_SIZE + (id - ns->seq[lo].first) * ZDB_SEQ_ENTRY_SIZE);
    return 0;
}

/* ---- journal ------------------------------------------------------------------------- */

struct jhdr {
    uint32_t fileid;
    uint64_t count;
    uint64_t newsize;
};

static void jhdr_encode(uint8_t out[JHDR], const struct jhdr *h)
{
    memcpy(out, JOURNAL_MAGIC, 4);
    qs_put32(out + 4, JOURNAL_VERSION);
    qs_put32(out + 8, h->fileid);
    qs_put32(out + 12, 0);
    qs_put64(out + 16, h->count);
    qs_put64(out + 24, h->newsize);
}

/* Reads and checks a journal: header, size, both CRCs. */
static int journal_check(const char *path, struct jhdr *h)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? QS_ENOTFOUND : qs_err_sys(QS_EIO, errno, "open %s", path);
    uint8_t hb[JHDR], tb[JTRAILER];
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = qs_err_sys(QS_EIO, errno, "stat %s", path);
        goto out;
    }
    if ((uint64_t)st.st_size < JHDR + JTRAILER || (rc = zdb_read_at(fd, hb, JHDR, 0)) < 0 ||
        memcmp(hb, JOURNAL_MAGIC, 4) != 0 || qs_le32(hb + 4) != JOURNAL_VERSION) {
        rc = qs_err_set(QS_ECORRUPT, "%s: not a compaction journal", path);
        goto out;
    }
    h->fileid = qs_le32(hb + 8);
    h->count = qs_le64(hb + 16);
    h->newsize = qs_le64(hb + 24);
    if (h->count > ((uint64_t)st.st_size - JHDR - JTRAILER) / JREC ||
        JHDR + h->count * JREC + JTRAILER != (uint64_t)st.st_size ||
        (rc = zdb_read_at(fd, tb, JTRAILER, (uint64_t)st.st_size - JTRAILER)) < 0 ||
        qs_le32(tb + 4) != qs_crc32c_zdb(hb, JHDR)) {
        rc = qs_err_set(QS_ECORRUPT, "%s: damaged compaction journal", path);
        goto out;
    }
    struct zdb_reader r;
    if ((rc = zdb_reader_init(&r, fd, JHDR, 1u << 20)) < 0)
        goto out;
    uint32_t crc = 0;
    for (uint64_t i = 0; i < h->count; i++) {
        long got = zdb_reader_need(&r, JREC);
        if (got < 0) {
            rc = (int)got;
            break;
        }
        if (got < JREC) {
            rc = qs_err_set(QS_ECORRUPT, "%s: short journal", path);
            break;
        }
        crc = qs_crc32c_update(crc, r.buf + r.start, JREC);
        zdb_reader_skip(&r, JREC);
    }
    zdb_reader_free(&r);
    if (rc == 0 && crc != qs_le32(tb))
        rc = qs_err_set(QS_ECORRUPT, "%s: damaged compaction journal", path);
out:
    close(fd);
    return rc;
}

/* Open index files while patches are applied, and a write-back cache of their blocks: the
 * records of a journal come mostly in file order, so patching costs a read and a write per
 * block rather than per entry. A block rewritten whole only carries bytes read a moment ago
 * besides the patched ones, and nothing else writes these files meanwhile (the server is in
 * the compaction; recovery runs before loading). Each file is synced before it is closed. */
#define PBLOCK  16384
#define PBLOCKS 64

struct pblock {
    int slot;     /* index in patcher.f of its file, -1: free */
    uint64_t off; /* file offset, a multiple of PBLOCK */
    size_t len;   /* bytes read (less at the end of the file) */
    bool dirty;
    uint64_t used;
    uint8_t *data;
};

struct patcher {
    const char *idxdir;
    struct {
        uint32_t fileid;
        int fd; /* -1: the file does not exist, its patches are skipped */
    } f[PATCH_FDS];
    int n, evict;
    struct pblock b[PBLOCKS];
    uint64_t clock;
    uint64_t applied;
    void (*on_file)(void *ud, uint32_t fileid); /* a patch was written to a file */
    void *ud;
};

static void patcher_init(struct patcher *p, const char *idxdir)
{
    void (*on_file)(void *, uint32_t) = p->on_file;
    void *ud = p->ud;
    memset(p, 0, sizeof(*p));
    p->idxdir = idxdir;
    p->on_file = on_file;
    p->ud = ud;
    for (int i = 0; i < PBLOCKS; i++)
        p->b[i].slot = -1;
}

static int block_flush(struct patcher *p, struct pblock *bl)
{
    if (!bl->dirty)
        return 0;
    struct iovec iov = {bl->data, bl->len};
    int rc = zdb_write_at(p->f[bl->slot].fd, &iov, 1, bl->off);
    if (rc < 0)
        return qs_err_set(rc, "patch i%u at %llu: %s", p->f[bl->slot].fileid,
                          (unsigned long long)bl->off, qs_err_msg());
    bl->dirty = false;
    return 0;
}

/* Writes back the dirty blocks of file slot (every file when slot < 0); drop: forget them. */
static int blocks_flush(struct patcher *p, int slot, bool drop)
{
    int rc = 0;
    for (int i = 0; i < PBLOCKS; i++) {
        struct pblock *bl = &p->b[i];
        if (bl->slot < 0 || (slot >= 0 && bl->slot != slot))
            continue;
        int r = block_flush(p, bl);
        if (r < 0 && rc == 0)
            rc = r;
        if (drop)
            bl->slot = -1;
    }
    return rc;
}

static int patcher_release(struct patcher *p, int i)
{
    int rc = blocks_flush(p, i, true);
    if (p->f[i].fd >= 0) {
        if (fdatasync(p->f[i].fd) != 0 && rc == 0)
            rc = qs_err_sys(QS_EIO, errno, "sync i%u", p->f[i].fileid);
        close(p->f[i].fd);
    }
    p->f[i].fd = -1;
    return rc;
}

/* Slot of index file fileid in p->f (opened when needed); *fd = -1 when it does not exist. */
static int patcher_file(struct patcher *p, uint32_t fileid, int *slot)
{
    for (int i = 0; i < p->n; i++) {
        if (p->f[i].fileid == fileid) {
            *slot = i;
            return 0;
        }
    }
    int i = p->n;
    if (p->n == PATCH_FDS) {
        i = p->evict;
        p->evict = (p->evict + 1) % PATCH_FDS;
        int rc = patcher_release(p, i);
        if (rc < 0)
            return rc;
    } else {
        p->n++;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/i%u", p->idxdir, fileid);
    int f = open(path, O_RDWR | O_CLOEXEC);
    p->f[i].fileid = fileid;
    p->f[i].fd = f;
    if (f < 0 && errno != ENOENT)
        return qs_err_sys(QS_EIO, errno, "open %s", path);
    *slot = i;
    return 0;
}

static int patcher_close(struct patcher *p)
{
    int rc = 0;
    for (int i = 0; i < p->n; i++) {
        int r = patcher_release(p, i);
        if (r < 0 && rc == 0)
            rc = r;
    }
    p->n = 0;
    for (int i = 0; i < PBLOCKS; i++) {
        free(p->b[i].data);
        p->b[i].data = NULL;
        p->b[i].slot = -1;
    }
    return rc;
}

/* The cached block of file slot at boff, read when needed. */
static int block_get(struct patcher *p, int slot, uint64_t boff, struct pblock **out)
{
    struct pblock *victim = NULL;
    for (int i = 0; i < PBLOCKS; i++) {
        struct pblock *bl = &p->b[i];
        if (bl->slot == slot && bl->off == boff) {
            bl->used = ++p->clock;
            *out = bl;
            return 0;
        }
        if (!victim || (victim->slot >= 0 && (bl->slot < 0 || bl->used < victim->used)))
            victim = bl;
    }
    int rc = block_flush(p, victim);
    if (rc < 0)
        return rc;
    victim->slot = -1;
    if (!victim->data && !(victim->data = malloc(PBLOCK)))
        return qs_err_set(QS_ENOMEM, "patch buffer");
    size_t got = 0;
    while (got < PBLOCK) {
        ssize_t r = pread(p->f[slot].fd, victim->data + got, PBLOCK - got, (off_t)(boff + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return qs_err_sys(QS_EIO, errno, "read i%u", p->f[slot].fileid);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    victim->slot = slot;
    victim->off = boff;
    victim->len = got;
    victim->dirty = false;
    victim->used = ++p->clock;
    *out = victim;
    return 0;
}

/* Reads (write = false) or writes n bytes at off of file slot through the cache. QS_ENOTFOUND
 * when they pass the end of the file. */
static int cached_io(struct patcher *p, int slot, uint64_t off, uint8_t *buf, size_t n, bool write)
{
    while (n > 0) {
        uint64_t boff = off - off % PBLOCK;
        struct pblock *bl = NULL;
        int rc = block_get(p, slot, boff, &bl);
        if (rc < 0)
            return rc;
        size_t in = (size_t)(off - boff), k = PBLOCK - in < n ? PBLOCK - in : n;
        if (in + k > bl->len)
            return QS_ENOTFOUND;
        if (write) {
            memcpy(bl->data + in, buf, k);
            bl->dirty = true;
        } else {
            memcpy(buf, bl->data + in, k);
        }
        off += k;
        buf += k;
        n -= k;
    }
    return 0;
}

/* Applies one record: the entry must still name d<fileid> at the old or the new offset. */
static int patch_one(struct patcher *p, uint32_t fileid, const uint8_t rec[JREC])
{
    uint32_t ifile = qs_le32(rec), ioff = qs_le32(rec + 4);
    uint32_t oldoff = qs_le32(rec + 8), newoff = qs_le32(rec + 12);
    if (ioff < ZDB_IDX_HEADER_SIZE)
        return 0;
    int slot = -1;
    int rc = patcher_file(p, ifile, &slot);
    if (rc < 0 || p->f[slot].fd < 0)
        return rc;
    uint8_t b[ZDB_IDX_ENTRY_SIZE];
    struct zdb_idx_entry e;
    rc = cached_io(p, slot, ioff, b, sizeof(b), false);
    if (rc == QS_ENOTFOUND || (rc == 0 && zdb_idx_entry_decode(&e, b, sizeof(b)) < 0))
        return 0; /* not an entry (any more): leave it alone */
    if (rc < 0)
        return rc;
    if (e.dataid != fileid || (e.offset != oldoff && e.offset != newoff))
        return 0;
    bool want_flag = newoff == 0;
    if (e.offset == newoff && (!want_flag || (e.flags & ZDB_IDX_DELETED)))
        return 0; /* already applied */
    qs_put32(b + 1, newoff);
    if (want_flag)
        b[13] |= ZDB_IDX_DELETED;
    if ((rc = cached_io(p, slot, ioff, b, sizeof(b), true)) < 0)
        return rc;
    if (p->on_file)
        p->on_file(p->ud, ifile);
    p->applied++;
    return 0;
}

/* Applies every record of a checked journal and syncs the index files it changed. */
static int journal_apply(const char *idxdir, const char *path, const struct jhdr *h,
                         const struct zdb_compact_opts *opts, struct patcher *p)
{
    patcher_init(p, idxdir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qs_err_sys(QS_EIO, errno, "open %s", path);
    struct zdb_reader r;
    int rc = zdb_reader_init(&r, fd, JHDR, 1u << 20);
    if (rc < 0) {
        close(fd);
        (void)patcher_close(p);
        return rc;
    }
    for (uint64_t i = 0; i < h->count && rc == 0; i++) {
        long got = zdb_reader_need(&r, JREC);
        if (got < JREC) {
            rc = got < 0 ? (int)got : qs_err_set(QS_ECORRUPT, "%s: short journal", path);
            break;
        }
        rc = patch_one(p, h->fileid, r.buf + r.start);
        zdb_reader_skip(&r, JREC);
        if (rc == 0 && i + 1 == (h->count + 1) / 2 && i + 1 < h->count) {
            rc = blocks_flush(p, -1, false); /* so that a crash here leaves half on disk */
            step(opts, ZDB_COMPACT_STEP_PATCHING);
        }
    }
    zdb_reader_free(&r);
    close(fd);
    int rc2 = patcher_close(p);
    return rc < 0 ? rc : rc2;
}

/* Renames d<N>.compact over d<N> when it is still there, applies the journal, removes it. */
static int journal_finish(struct zdb_ns *ns, const struct jhdr *h,
                          const struct zdb_compact_opts *opts, struct patcher *p)
{
    char tpath[4200], dpath[4096], jpath[4200];
    data_tmp_path(ns, h->fileid, tpath, sizeof(tpath));
    zdb_ns_path(ns, 'd', h->fileid, dpath, sizeof(dpath));
    journal_path(ns, false, jpath, sizeof(jpath));
    int rc;
    if (path_exists(tpath)) {
        if (rename(tpath, dpath) != 0)
            return qs_err_sys(QS_EIO, errno, "rename %s", tpath);
        if ((rc = sync_dir(ns->datdir)) < 0)
            return rc;
    }
    step(opts, ZDB_COMPACT_STEP_RENAMED);
    if ((rc = journal_apply(ns->idxdir, jpath, h, opts, p)) < 0)
        return rc;
    step(opts, ZDB_COMPACT_STEP_PATCHED);
    if (unlink(jpath) != 0 && errno != ENOENT)
        return qs_err_sys(QS_EIO, errno, "remove %s", jpath);
    if ((rc = sync_dir(ns->idxdir)) < 0)
        return rc;
    step(opts, ZDB_COMPACT_STEP_DONE);
    return 0;
}

static bool is_tmp_data_name(const char *n)
{
    size_t len = strlen(n), sl = strlen(DATA_SUFFIX);
    if (n[0] != 'd' || len <= 1 + sl || strcmp(n + len - sl, DATA_SUFFIX) != 0)
        return false;
    for (size_t i = 1; i < len - sl; i++)
        if (n[i] < '0' || n[i] > '9')
            return false;
    return true;
}

/* Removes every d<N>.compact of the data directory; *found = how many there were. */
static int remove_tmp_data(const struct zdb_ns *ns, int *found)
{
    *found = 0;
    DIR *d = opendir(ns->datdir);
    if (!d)
        return errno == ENOENT ? 0 : qs_err_sys(QS_EIO, errno, "open directory %s", ns->datdir);
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (!is_tmp_data_name(de->d_name))
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", ns->datdir, de->d_name);
        (*found)++;
        if (unlink(path) != 0 && errno != ENOENT)
            rc = qs_err_sys(QS_EIO, errno, "remove %s", path);
        else
            qs_log(QS_LOG_WARN, "namespace %s: removed %s left by an unfinished compaction",
                   ns->name, path);
    }
    closedir(d);
    return rc;
}

int zdb_compact_recover(struct zdb_ns *ns)
{
    char jpath[4200], jtmp[4200];
    journal_path(ns, false, jpath, sizeof(jpath));
    journal_path(ns, true, jtmp, sizeof(jtmp));
    if (unlink(jtmp) != 0 && errno != ENOENT)
        return qs_err_sys(QS_EIO, errno, "remove %s", jtmp);
    struct jhdr h;
    int rc = journal_check(jpath, &h);
    if (rc == 0) {
        qs_log(QS_LOG_WARN, "namespace %s: finishing the interrupted compaction of d%u", ns->name,
               h.fileid);
        struct patcher p = {0};
        if ((rc = journal_finish(ns, &h, NULL, &p)) < 0)
            return qs_err_set(rc, "namespace %s: finishing the compaction of d%u: %s", ns->name,
                              h.fileid, qs_err_msg());
    } else if (rc != QS_ENOTFOUND) {
        /* Unreadable journal: safe to drop only while the new data file is still aside
         * (nothing was renamed or patched before it was). */
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        int found;
        int r = remove_tmp_data(ns, &found);
        if (r < 0)
            return r;
        if (!found)
            return qs_err_set(QS_ECORRUPT,
                              "namespace %s: %s, and the compacted data file is already in "
                              "place: restore the namespace from a copy",
                              ns->name, msg);
        qs_log(QS_LOG_WARN, "namespace %s: %s: compaction rolled back", ns->name, msg);
        if (unlink(jpath) != 0 && errno != ENOENT)
            return qs_err_sys(QS_EIO, errno, "remove %s", jpath);
        return sync_dir(ns->idxdir);
    }
    int found;
    return remove_tmp_data(ns, &found);
}

int zdb_compact_rebuild_check(struct zdb_ns *ns, uint32_t fileid)
{
    char path[4096];
    zdb_ns_path(ns, 'd', fileid, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    uint8_t b[ZDB_DAT_HEADER_SIZE];
    struct zdb_dat_header h;
    int rc = zdb_read_at(fd, b, sizeof(b), 0);
    close(fd);
    if (rc < 0 || zdb_dat_header_decode(&h, b, sizeof(b)) < 0)
        return 0;
    if (h.opened & ZDB_DAT_OPENED_COMPACTED)
        return qs_err_set(QS_ECORRUPT,
                          "namespace %s: index file i%u is damaged and d%u was compacted: the "
                          "ids of reclaimed values cannot be rebuilt; restore i%u from a copy",
                          ns->name, fileid, fileid, fileid);
    return 0;
}

int zdb_compact_version_check(struct zdb_ns *ns, uint32_t fileid, uint32_t off, const uint8_t *key,
                              size_t klen)
{
    struct zdb_idx_entry e;
    uint8_t k[ZDB_MAX_KEY];
    if (off < ZDB_IDX_HEADER_SIZE)
        return QS_ENOTFOUND;
    int rc = zdb_nsfile_index_read(ns, fileid, off, &e, k);
    if (rc == QS_ENOTFOUND || rc == QS_ECORRUPT)
        return QS_ENOTFOUND;
    if (rc < 0)
        return rc;
    if (e.keylen != klen || memcmp(k, key, klen) != 0 || e.offset < ZDB_DAT_HEADER_SIZE)
        return QS_ENOTFOUND;
    uint8_t hb[ZDB_DAT_ENTRY_SIZE + ZDB_MAX_KEY];
    struct iovec iov = {hb, ZDB_DAT_ENTRY_SIZE + klen};
    rc = zdb_nsfile_readv(ns, 'd', e.dataid, &iov, 1, e.offset);
    if (rc == QS_ENOTFOUND)
        return 0; /* offloaded: the read asks for it (missing-data) */
    struct zdb_dat_entry d;
    if (rc < 0 || zdb_dat_entry_decode(&d, hb, sizeof(hb)) < 0 || d.keylen != klen ||
        d.length != e.length || d.crc != e.crc || d.timestamp != e.timestamp ||
        (d.flags & ZDB_DAT_DELETED) || memcmp(hb + ZDB_DAT_ENTRY_SIZE, key, klen) != 0)
        return QS_ENOTFOUND;
    return 0;
}

/* ---- one compaction ------------------------------------------------------------------ */

struct cctx {
    struct zdb_ns *ns;
    uint32_t fileid;
    struct zdb_compact_stats *st;
    bool drop_tombs;
    int dfd;
    uint64_t size;
    struct wfile out; /* d<N>.compact */
    struct wfile jw;  /* compact.tmp */
    uint32_t jcrc;
    uint64_t nrec;
    uint64_t tomb_bytes;
    uint32_t *kept; /* user mode: old offsets of the values copied, ascending */
    size_t nkept, keptcap;
    uint64_t *dead; /* seq mode: ids with a reclaimed value */
    size_t ndead, deadcap;
};

static int jrecord(struct cctx *cx, uint32_t ifile, uint32_t ioff, uint32_t oldoff, uint32_t newoff)
{
    uint8_t rec[JREC];
    qs_put32(rec, ifile);
    qs_put32(rec + 4, ioff);
    qs_put32(rec + 8, oldoff);
    qs_put32(rec + 12, newoff);
    cx->jcrc = qs_crc32c_update(cx->jcrc, rec, JREC);
    cx->nrec++;
    return wfile_append(&cx->jw, rec, JREC);
}

static int push_u32(uint32_t **a, size_t *n, size_t *cap, uint32_t v)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 4096;
        uint32_t *p = realloc(*a, c * sizeof(*p));
        if (!p)
            return qs_err_set(QS_ENOMEM, "compaction offsets");
        *a = p;
        *cap = c;
    }
    (*a)[(*n)++] = v;
    return 0;
}

static int push_u64(uint64_t **a, size_t *n, size_t *cap, uint64_t v)
{
    if (*n && (*a)[*n - 1] == v)
        return 0;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 4096;
        uint64_t *p = realloc(*a, c * sizeof(*p));
        if (!p)
            return qs_err_set(QS_ENOMEM, "compaction ids");
        *a = p;
        *cap = c;
    }
    (*a)[(*n)++] = v;
    return 0;
}

/* Whether the value at off of d<N> is live: 1 (ifile/ioff = the index entry naming it),
 * 0, or an error. Sequential mode also journals a deleted slot that names it. */
static int value_live(struct cctx *cx, uint32_t off, const struct zdb_dat_entry *d,
                      const uint8_t *key, uint32_t *ifile, uint32_t *ioff)
{
    struct zdb_ns *ns = cx->ns;
    if (ns->mode == ZDB_MODE_USER) {
        const struct zdb_keyrec *r = zdb_keyindex_get(ns->keys, key, d->keylen);
        if (!r || r->loc.fileid != cx->fileid || r->loc.dataoff != off)
            return 0;
        *ifile = cx->fileid;
        *ioff = r->loc.idxoff;
        return 1;
    }
    if (d->keylen != ZDB_SEQ_KEY_SIZE)
        return 0;
    uint64_t id = qs_le64(key);
    uint32_t sf, so;
    if (seq_slot(ns, id, &sf, &so) < 0)
        return 0;
    struct zdb_idx_entry e;
    uint8_t k[ZDB_MAX_KEY];
    int rc = zdb_nsfile_index_read(ns, sf, so, &e, k);
    if (rc < 0)
        return qs_err_set(rc, "slot of id %llu: %s", (unsigned long long)id, qs_err_msg());
    if (e.keylen != ZDB_SEQ_KEY_SIZE || memcmp(k, key, ZDB_SEQ_KEY_SIZE) != 0)
        return 0;
    if (e.dataid == cx->fileid && e.offset == off) {
        if (!(e.flags & ZDB_IDX_DELETED)) {
            *ifile = sf;
            *ioff = so;
            return 1;
        }
        if ((rc = jrecord(cx, sf, so, off, 0)) < 0)
            return rc;
    }
    if (e.parentid || e.parentoff)
        return push_u64(&cx->dead, &cx->ndead, &cx->deadcap, id);
    return 0;
}

static int copy_pass(struct cctx *cx, const struct zdb_compact_opts *opts)
{
    struct zdb_ns *ns = cx->ns;
    uint8_t hb[ZDB_DAT_HEADER_SIZE];
    struct zdb_dat_header h;
    if (zdb_read_at(cx->dfd, hb, sizeof(hb), 0) < 0 ||
        zdb_dat_header_decode(&h, hb, sizeof(hb)) < 0)
        return qs_err_set(QS_ECORRUPT, "d%u: damaged header, not compacted", cx->fileid);
    h.opened = ZDB_DAT_OPENED_COMPACTED | ((uint64_t)time(NULL) & ~ZDB_DAT_OPENED_COMPACTED);
    zdb_dat_header_encode(hb, &h);
    int rc = wfile_append(&cx->out, hb, sizeof(hb));
    if (rc < 0)
        return rc;

    struct zdb_reader r;
    if ((rc = zdb_reader_init(&r, cx->dfd, ZDB_DAT_HEADER_SIZE, READER_CAP)) < 0)
        return rc;
    bool first = true, have_prev = false, halfway = false;
    uint32_t first_prev = 0, prev_new = 0;
    for (;;) {
        long got = zdb_reader_need(&r, ZDB_DAT_ENTRY_SIZE);
        if (got < 0) {
            rc = (int)got;
            break;
        }
        if (got == 0)
            break;
        uint64_t pos = r.pos;
        struct zdb_dat_entry d;
        if (got < ZDB_DAT_ENTRY_SIZE ||
            zdb_dat_entry_decode(&d, r.buf + r.start, (size_t)got) < 0 || d.keylen == 0 ||
            pos > UINT32_MAX) {
            rc = qs_err_set(QS_ECORRUPT, "d%u: damaged bytes at offset %llu, not compacted",
                            cx->fileid, (unsigned long long)pos);
            break;
        }
        size_t total = ZDB_DAT_ENTRY_SIZE + d.keylen + d.length;
        got = zdb_reader_need(&r, total);
        if (got < 0) {
            rc = (int)got;
            break;
        }
        if ((size_t)got < total) {
            rc = qs_err_set(QS_ECORRUPT, "d%u: incomplete entry at offset %llu, not compacted",
                            cx->fileid, (unsigned long long)pos);
            break;
        }
        const uint8_t *key = r.buf + r.start + ZDB_DAT_ENTRY_SIZE;
        const uint8_t *payload = key + d.keylen;
        if (first) {
            first_prev = d.previous;
            first = false;
        }
        bool tomb = (d.flags & ZDB_DAT_DELETED) != 0;
        uint32_t ifile = 0, ioff = 0;
        int live = 0;
        if (!tomb && (live = value_live(cx, (uint32_t)pos, &d, key, &ifile, &ioff)) < 0) {
            rc = live;
            break;
        }
        if (tomb ? cx->drop_tombs : !live) {
            if (tomb)
                cx->st->tombstones_dropped++;
            else
                cx->st->entries_dropped++;
        } else {
            uint64_t newoff = wfile_pos(&cx->out);
            struct zdb_dat_entry ne = d;
            ne.previous = have_prev ? prev_new : first_prev;
            uint8_t eb[ZDB_DAT_ENTRY_SIZE];
            zdb_dat_entry_encode(eb, &ne);
            if ((rc = wfile_append(&cx->out, eb, sizeof(eb))) < 0 ||
                (rc = wfile_append(&cx->out, key, d.keylen)) < 0 ||
                (rc = wfile_append(&cx->out, payload, d.length)) < 0)
                break;
            if (tomb) {
                cx->st->tombstones_kept++;
                cx->tomb_bytes += total;
            } else {
                cx->st->entries_kept++;
                if (qs_crc32c_zdb(payload, d.length) != d.crc)
                    cx->st->damaged++; /* copied as it is: compaction never repairs */
                if ((rc = jrecord(cx, ifile, ioff, (uint32_t)pos, (uint32_t)newoff)) < 0)
                    break;
                if (ns->mode == ZDB_MODE_USER &&
                    (rc = push_u32(&cx->kept, &cx->nkept, &cx->keptcap, (uint32_t)pos)) < 0)
                    break;
            }
            prev_new = (uint32_t)newoff;
            have_prev = true;
        }
        zdb_reader_skip(&r, total);
        if (!halfway && r.pos >= cx->size / 2) {
            halfway = true;
            if ((rc = wfile_flush(&cx->out)) < 0)
                break;
            step(opts, ZDB_COMPACT_STEP_COPYING);
        }
    }
    zdb_reader_free(&r);
    if (rc == 0 && !halfway) {
        if ((rc = wfile_flush(&cx->out)) < 0)
            return rc;
        step(opts, ZDB_COMPACT_STEP_COPYING);
    }
    return rc;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* User mode: every entry of i<N> that is not the live version of its key names a reclaimed
 * value (index entries never name tombstones). */
static int dead_pass_user(struct cctx *cx)
{
    struct zdb_ns *ns = cx->ns;
    char path[4096];
    zdb_ns_path(ns, 'i', cx->fileid, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qs_err_sys(errno == ENOENT ? QS_ENOTFOUND : QS_EIO, errno, "open %s", path);
    struct zdb_reader r;
    int rc = zdb_reader_init(&r, fd, ZDB_IDX_HEADER_SIZE, 1u << 20);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    for (;;) {
        long got = zdb_reader_need(&r, ZDB_IDX_ENTRY_SIZE + ZDB_MAX_KEY);
        if (got < 0) {
            rc = (int)got;
            break;
        }
        struct zdb_idx_entry e;
        if (got < ZDB_IDX_ENTRY_SIZE || zdb_idx_entry_decode(&e, r.buf + r.start, (size_t)got) < 0)
            break;
        size_t total = ZDB_IDX_ENTRY_SIZE + e.keylen;
        if ((size_t)got < total || e.keylen == 0 || r.pos > UINT32_MAX)
            break;
        uint32_t x = (uint32_t)r.pos;
        const uint8_t *key = r.buf + r.start + ZDB_IDX_ENTRY_SIZE;
        if (e.dataid == cx->fileid && !(e.offset == 0 && (e.flags & ZDB_IDX_DELETED))) {
            const struct zdb_keyrec *k = zdb_keyindex_get(ns->keys, key, e.keylen);
            if (k && k->loc.fileid == cx->fileid && k->loc.idxoff == x) {
                uint32_t want = k->loc.dataoff;
                if (!bsearch(&want, cx->kept, cx->nkept, sizeof(*cx->kept), cmp_u32)) {
                    rc = qs_err_set(QS_ECORRUPT,
                                    "live entry i%u:%u names d%u:%u, which is not an entry: "
                                    "not compacted",
                                    cx->fileid, x, cx->fileid, want);
                    break;
                }
            } else if ((rc = jrecord(cx, cx->fileid, x, e.offset, 0)) < 0) {
                break;
            }
        }
        zdb_reader_skip(&r, total);
    }
    zdb_reader_free(&r);
    close(fd);
    return rc;
}

/* Sequential mode: the deleted copies of old versions, on each id's history chain (slot ->
 * newest copy -> older copies), that name reclaimed values of d<N>. Versions are written in
 * file order, so the walk stops at the first copy in an older data file. */
static int dead_pass_seq(struct cctx *cx)
{
    struct zdb_ns *ns = cx->ns;
    if (cx->ndead == 0)
        return 0;
    qsort(cx->dead, cx->ndead, sizeof(*cx->dead), cmp_u64);
    uint64_t budget = WALK_BUDGET;
    for (size_t i = 0; i < cx->ndead; i++) {
        uint64_t id = cx->dead[i];
        if (i > 0 && cx->dead[i - 1] == id)
            continue;
        uint32_t sf, so;
        if (seq_slot(ns, id, &sf, &so) < 0)
            continue;
        struct zdb_idx_entry e;
        uint8_t k[ZDB_MAX_KEY];
        int rc = zdb_nsfile_index_read(ns, sf, so, &e, k);
        if (rc < 0)
            return rc;
        uint32_t live_off =
            !(e.flags & ZDB_IDX_DELETED) && e.dataid == cx->fileid ? e.offset : UINT32_MAX;
        uint32_t cf = e.parentid, co = e.parentoff;
        bool hop = false;
        while ((cf || co) && co >= ZDB_IDX_HEADER_SIZE) {
            if (budget == 0) {
                cx->st->history_left++;
                break;
            }
            budget--;
            if (zdb_nsfile_index_read(ns, cf, co, &e, k) < 0 || e.keylen != ZDB_SEQ_KEY_SIZE ||
                qs_le64(k) != id || e.dataid < cx->fileid)
                break;
            if (e.dataid == cx->fileid && e.offset != 0 && e.offset != live_off &&
                (rc = jrecord(cx, cf, co, e.offset, 0)) < 0)
                return rc;
            /* After the first hop copies only get older: anything else is a loop. */
            if (hop && (e.parentid > cf || (e.parentid == cf && e.parentoff >= co)))
                break;
            hop = true;
            cf = e.parentid;
            co = e.parentoff;
        }
    }
    return 0;
}

/* Whether no file pair older than fileid exists (tombstones can then go). */
static bool is_oldest(const struct zdb_ns *ns, uint32_t fileid)
{
    char path[4096];
    for (uint32_t f = 0; f < fileid; f++) {
        zdb_ns_path(ns, 'i', f, path, sizeof(path));
        if (path_exists(path))
            return false;
        zdb_ns_path(ns, 'd', f, path, sizeof(path));
        if (path_exists(path))
            return false;
    }
    return true;
}

static void remember(struct zdb_ns *ns, uint32_t fileid, uint64_t size, uint64_t tomb)
{
    struct zdb_compact_plan *p = &ns->compact;
    unsigned i;
    for (i = 0; i < p->nknown; i++)
        if (p->known[i].fileid == fileid)
            break;
    if (i == p->nknown) {
        if (p->nknown < ZDB_COMPACT_KNOWN) {
            p->nknown++;
        } else {
            i = p->knext;
            p->knext = (p->knext + 1) % ZDB_COMPACT_KNOWN;
        }
    }
    p->known[i].fileid = fileid;
    p->known[i].size = size;
    p->known[i].tomb = tomb;
}

static void mark_dirty(void *ud, uint32_t fileid)
{
    zdb_ns_mark_dirty(ud, fileid);
}

/* User mode, after the switch: the new offsets of the live values, from the new file. */
static int update_memory(struct zdb_ns *ns, uint32_t fileid)
{
    char path[4096];
    zdb_ns_path(ns, 'd', fileid, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qs_err_sys(QS_EIO, errno, "open %s", path);
    struct zdb_reader r;
    int rc = zdb_reader_init(&r, fd, ZDB_DAT_HEADER_SIZE, READER_CAP);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    for (;;) {
        long got = zdb_reader_need(&r, ZDB_DAT_ENTRY_SIZE + ZDB_MAX_KEY);
        if (got < 0) {
            rc = (int)got;
            break;
        }
        if (got == 0)
            break;
        struct zdb_dat_entry d;
        if (zdb_dat_entry_decode(&d, r.buf + r.start, (size_t)got) < 0 ||
            (size_t)got < ZDB_DAT_ENTRY_SIZE + (size_t)d.keylen) {
            rc = qs_err_set(QS_ECORRUPT, "compacted d%u unreadable at %llu", fileid,
                            (unsigned long long)r.pos);
            break;
        }
        if (!(d.flags & ZDB_DAT_DELETED)) {
            struct zdb_keyrec *k =
                zdb_keyindex_get(ns->keys, r.buf + r.start + ZDB_DAT_ENTRY_SIZE, d.keylen);
            if (k && k->loc.fileid == fileid)
                k->loc.dataoff = (uint32_t)r.pos;
        }
        size_t total = ZDB_DAT_ENTRY_SIZE + d.keylen + d.length;
        got = zdb_reader_need(&r, total);
        if (got < 0 || (size_t)got < total) {
            rc = got < 0 ? (int)got : qs_err_set(QS_ECORRUPT, "compacted d%u truncated", fileid);
            break;
        }
        zdb_reader_skip(&r, total);
    }
    zdb_reader_free(&r);
    close(fd);
    return rc;
}

int zdb_ns_compact_file(struct zdb_ns *ns, uint32_t fileid, const struct zdb_compact_opts *opts,
                        struct zdb_compact_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (ns->frozen)
        return qs_err_set(QS_EBUSY, "namespace %s is frozen", ns->name);
    if (fileid >= ns->fileid)
        return qs_err_set(QS_EINVAL, "d%u is not a closed data file (d%u is the active one)",
                          fileid, ns->fileid);
    char dpath[4096], tpath[4200], jpath[4200], jtmp[4200];
    zdb_ns_path(ns, 'd', fileid, dpath, sizeof(dpath));
    data_tmp_path(ns, fileid, tpath, sizeof(tpath));
    journal_path(ns, false, jpath, sizeof(jpath));
    journal_path(ns, true, jtmp, sizeof(jtmp));
    if (path_exists(jpath))
        return qs_err_set(QS_EBUSY, "namespace %s: a compaction journal is pending", ns->name);

    struct cctx cx = {.ns = ns, .fileid = fileid, .st = out, .dfd = -1};
    wfile_init(&cx.out);
    wfile_init(&cx.jw);
    int rc;
    cx.dfd = open(dpath, O_RDONLY | O_CLOEXEC);
    if (cx.dfd < 0) {
        rc = errno == ENOENT ? qs_err_set(QS_ENOTFOUND, "%s is not here (offloaded?)", dpath)
                             : qs_err_sys(QS_EIO, errno, "open %s", dpath);
        goto fail;
    }
    struct stat sb;
    if (fstat(cx.dfd, &sb) != 0) {
        rc = qs_err_sys(QS_EIO, errno, "stat %s", dpath);
        goto fail;
    }
    cx.size = (uint64_t)sb.st_size;
    /* The writes that made values of d<N> dead must be durable before those values go. */
    if ((rc = sync_before(ns, fileid)) < 0)
        goto fail;
    cx.drop_tombs = is_oldest(ns, fileid);

    cx.out.fd = open(tpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (cx.out.fd < 0) {
        rc = qs_err_sys(QS_EIO, errno, "create %s", tpath);
        goto fail;
    }
    cx.jw.fd = open(jtmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (cx.jw.fd < 0) {
        rc = qs_err_sys(QS_EIO, errno, "create %s", jtmp);
        goto fail;
    }
    uint8_t hb[JHDR] = {0};
    if ((rc = wfile_append(&cx.jw, hb, sizeof(hb))) < 0)
        goto fail;

    if ((rc = copy_pass(&cx, opts)) < 0)
        goto fail;
    uint64_t newsize = wfile_pos(&cx.out);
    if (out->entries_dropped == 0 && out->tombstones_dropped == 0) {
        /* Nothing to reclaim: leave everything as it is. */
        remember(ns, fileid, cx.size, cx.tomb_bytes);
        memset(out, 0, sizeof(*out));
        out->bytes_before = out->bytes_after = cx.size;
        rc = 0;
        goto fail;
    }
    rc = ns->mode == ZDB_MODE_USER ? dead_pass_user(&cx) : dead_pass_seq(&cx);
    if (rc < 0)
        goto fail;

    if ((rc = wfile_flush(&cx.out)) < 0)
        goto fail;
    step(opts, ZDB_COMPACT_STEP_COPIED);
    if (fdatasync(cx.out.fd) != 0) {
        rc = qs_err_sys(QS_EIO, errno, "sync %s", tpath);
        goto fail;
    }
    /* The new file's name must be durable before the journal commits to it. */
    if ((rc = sync_dir(ns->datdir)) < 0)
        goto fail;

    uint8_t tb[JTRAILER];
    struct jhdr h = {fileid, cx.nrec, newsize};
    jhdr_encode(hb, &h);
    qs_put32(tb, cx.jcrc);
    qs_put32(tb + 4, qs_crc32c_zdb(hb, sizeof(hb)));
    struct iovec hiov = {hb, sizeof(hb)};
    if ((rc = wfile_append(&cx.jw, tb, sizeof(tb))) < 0 || (rc = wfile_flush(&cx.jw)) < 0 ||
        (rc = zdb_write_at(cx.jw.fd, &hiov, 1, 0)) < 0)
        goto fail;
    if (fdatasync(cx.jw.fd) != 0) {
        rc = qs_err_sys(QS_EIO, errno, "sync %s", jtmp);
        goto fail;
    }
    step(opts, ZDB_COMPACT_STEP_JOURNAL);
    if (rename(jtmp, jpath) != 0) {
        rc = qs_err_sys(QS_EIO, errno, "rename %s", jtmp);
        goto fail;
    }
    if ((rc = sync_dir(ns->idxdir)) < 0) {
        /* The rename may or may not be durable: finish now, recovery copes with both. */
        qs_log(QS_LOG_WARN, "namespace %s: %s", ns->name, qs_err_msg());
    }
    step(opts, ZDB_COMPACT_STEP_COMMITTED);
    wfile_close(&cx.out);
    wfile_close(&cx.jw);
    close(cx.dfd);
    cx.dfd = -1;
    free(cx.kept);
    free(cx.dead);
    cx.kept = NULL;
    cx.dead = NULL;

    /* Committed: from here on the compaction must finish, now or at the next start. */
    struct patcher p = {.on_file = mark_dirty, .ud = ns};
    rc = journal_finish(ns, &h, opts, &p);
    if (rc == 0 && ns->mode == ZDB_MODE_USER)
        rc = update_memory(ns, fileid);
    zdb_nsfile_cache_drop(ns); /* the old d<N> may be open, and mapped */
    if (rc < 0) {
        ns->frozen = true;
        qs_log(QS_LOG_ERROR,
               "namespace %s: compaction of d%u could not finish (%s); the namespace is frozen "
               "until the next start, which finishes it",
               ns->name, fileid, qs_err_msg());
        return rc;
    }
    out->files = 1;
    out->fileid = fileid;
    out->bytes_before = cx.size;
    out->bytes_after = newsize;
    out->index_patches = p.applied;
    uint64_t saved = cx.size - newsize;
    ns->data_bytes = ns->data_bytes > saved ? ns->data_bytes - saved : 0;
    remember(ns, fileid, newsize, cx.tomb_bytes);
    qs_log(QS_LOG_INFO,
           "namespace %s: compacted d%u from %llu to %llu bytes (%llu values kept, %llu "
           "reclaimed)",
           ns->name, fileid, (unsigned long long)cx.size, (unsigned long long)newsize,
           (unsigned long long)out->entries_kept, (unsigned long long)out->entries_dropped);
    return 0;

fail:
    if (rc == QS_ECORRUPT) {
        /* Damaged: the policy leaves this file alone while it keeps this size. */
        qs_log(QS_LOG_WARN, "namespace %s: d%u not compacted: %s", ns->name, fileid, qs_err_msg());
        remember(ns, fileid, cx.size, cx.size);
    }
    if (cx.dfd >= 0)
        close(cx.dfd);
    if (cx.out.fd >= 0)
        unlink(tpath);
    if (cx.jw.fd >= 0)
        unlink(jtmp);
    wfile_close(&cx.out);
    wfile_close(&cx.jw);
    free(cx.kept);
    free(cx.dead);
    return rc;
}

/* ---- policy -------------------------------------------------------------------------- */

struct live_ctx {
    uint64_t *live;
    uint32_t nfiles;
};

static int add_live_user(const struct zdb_keyrec *r, void *ud)
{
    struct live_ctx *l = ud;
    if (r->loc.fileid < l->nfiles)
        l->live[r->loc.fileid] += ZDB_DAT_ENTRY_SIZE + r->keylen + (uint64_t)r->loc.length;
    return 0;
}

static int add_live_seq(struct zdb_ns *ns, struct live_ctx *l)
{
    for (uint32_t f = 0; f < l->nfiles && f < ns->nseq; f++) {
        char path[4096];
        zdb_ns_path(ns, 'i', f, path, sizeof(path));
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct zdb_reader r;
        int rc = zdb_reader_init(&r, fd, ZDB_IDX_HEADER_SIZE, 1u << 20);
        if (rc < 0) {
            close(fd);
            return rc;
        }
        for (;;) {
            long got = zdb_reader_need(&r, ZDB_SEQ_ENTRY_SIZE);
            struct zdb_idx_entry e;
            if (got < ZDB_SEQ_ENTRY_SIZE ||
                zdb_idx_entry_decode(&e, r.buf + r.start, (size_t)got) < 0)
                break;
            if (!(e.flags & ZDB_IDX_DELETED) && e.dataid < l->nfiles)
                l->live[e.dataid] += ZDB_DAT_ENTRY_SIZE + ZDB_SEQ_KEY_SIZE + (uint64_t)e.length;
            zdb_reader_skip(&r, ZDB_SEQ_ENTRY_SIZE);
        }
        zdb_reader_free(&r);
        close(fd);
    }
    return 0;
}

static int cmp_info(const void *a, const void *b)
{
    const struct zdb_compact_info *x = a, *y = b;
    if (x->reclaimable != y->reclaimable)
        return x->reclaimable > y->reclaimable ? -1 : 1;
    return x->fileid < y->fileid ? -1 : x->fileid > y->fileid;
}

int zdb_compact_pick(struct zdb_ns *ns, double ratio, uint64_t min_bytes,
                     struct zdb_compact_info *out, size_t cap, size_t *n)
{
    *n = 0;
    uint32_t nf = ns->fileid;
    if (nf == 0 || cap == 0)
        return 0;
    int rc = zdb_nsfile_flush(ns); /* sequential mode reads the index files */
    if (rc < 0)
        return rc;
    struct live_ctx l = {calloc(nf, sizeof(uint64_t)), nf};
    struct zdb_compact_info *all = calloc(nf, sizeof(*all));
    if (!l.live || !all) {
        free(l.live);
        free(all);
        return qs_err_set(QS_ENOMEM, "compaction survey");
    }
    if (ns->mode == ZDB_MODE_USER)
        zdb_keyindex_each(ns->keys, add_live_user, &l);
    else
        rc = add_live_seq(ns, &l);
    size_t cnt = 0;
    for (uint32_t f = 0; f < nf && rc == 0; f++) {
        char path[4096];
        struct stat sb;
        zdb_ns_path(ns, 'd', f, path, sizeof(path));
        if (stat(path, &sb) != 0 || (uint64_t)sb.st_size <= ZDB_DAT_HEADER_SIZE)
            continue;
        uint64_t size = (uint64_t)sb.st_size, keep = ZDB_DAT_HEADER_SIZE + l.live[f];
        for (unsigned i = 0; i < ns->compact.nknown; i++)
            if (ns->compact.known[i].fileid == f && ns->compact.known[i].size == size)
                keep += ns->compact.known[i].tomb;
        uint64_t rec = size > keep ? size - keep : 0;
        if (rec == 0 || rec < min_bytes || (double)rec < ratio * (double)size)
            continue;
        all[cnt].fileid = f;
        all[cnt].size = size;
        all[cnt].reclaimable = rec;
        cnt++;
    }
    if (rc == 0) {
        qsort(all, cnt, sizeof(*all), cmp_info);
        *n = cnt < cap ? cnt : cap;
        memcpy(out, all, *n * sizeof(*out));
    }
    free(l.live);
    free(all);
    return rc;
}

int zdb_compact_auto(struct zdb_ns *ns, double ratio, time_t now,
                     const struct zdb_compact_opts *opts, struct zdb_compact_stats *out)
{
    struct zdb_compact_plan *p = &ns->compact;
    memset(out, 0, sizeof(*out));
    if (ns->frozen)
        return 0;
    while (p->ntodo > 0) {
        uint32_t f = p->todo[0];
        memmove(p->todo, p->todo + 1, (p->ntodo - 1) * sizeof(*p->todo));
        p->ntodo--;
        if (f >= ns->fileid)
            continue;
        int rc = zdb_ns_compact_file(ns, f, opts, out);
        if (rc == QS_ENOTFOUND || rc == QS_ECORRUPT)
            continue; /* offloaded in the meantime, or damaged (logged, then left alone) */
        if (rc < 0) {
            p->ntodo = 0;
            p->next = now + 60;
            return rc;
        }
        p->mark = ns->data_bytes;
        if (out->files)
            return 1;
    }
    if (now < p->next || ns->data_bytes == p->mark)
        return 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct zdb_compact_info found[ZDB_COMPACT_TODO];
    size_t n = 0;
    int rc = zdb_compact_pick(ns, ratio, 4096, found, ZDB_COMPACT_TODO, &n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* Looking costs a pass over the keys: at most about 5% of the time. */
    time_t took = t1.tv_sec - t0.tv_sec + (t1.tv_nsec >= t0.tv_nsec ? 0 : -1);
    p->next = now + (20 * took > ZDB_COMPACT_AUTO_EVERY ? 20 * took : ZDB_COMPACT_AUTO_EVERY);
    p->mark = ns->data_bytes;
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        p->todo[i] = found[i].fileid;
    p->ntodo = (unsigned)n;
    return 0;
}
