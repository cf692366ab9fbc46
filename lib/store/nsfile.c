#include "nsfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/ns_private.h"
#include "store/store.h"
#include "util/crc32c.h"
#include "util/guard.h"
#include "util/log.h"
#include "util/mem.h"

int zdb_write_at(int fd, struct iovec *iov, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwritev(fd, iov, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            return qs_err_sys(err == ENOSPC || err == EDQUOT ? QS_EFULL : QS_EIO, err, "write");
        }
        off += (uint64_t)w;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

int zdb_read_at(int fd, void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return qs_err_sys(QS_EIO, errno, "read");
        }
        if (r == 0)
            return qs_err_set(QS_ECORRUPT, "unexpected end of file at offset %llu",
                              (unsigned long long)(off + done));
        done += (size_t)r;
    }
    return 0;
}

void zdb_ns_path(const struct zdb_ns *ns, char kind, uint32_t fileid, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%c%u", kind == 'i' ? ns->idxdir : ns->datdir, kind, fileid);
}

/* Opens path for appending; writes hdr when the file is empty. *size = file size. */
static int open_with_header(const char *path, const uint8_t *hdr, size_t hlen, int *fd_out,
                            uint64_t *size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOATIME, 0600);
    if (fd < 0 && errno == EPERM)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return qs_err_sys(QS_EIO, errno, "open %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return qs_err_sys(QS_EIO, e, "stat %s", path);
    }
    if (st.st_size == 0) {
        struct iovec iov = {(void *)hdr, hlen};
        int rc = zdb_write_at(fd, &iov, 1, 0);
        if (rc < 0) {
            close(fd);
            return qs_err_set(rc, "write header of %s: %s", path, qs_err_msg());
        }
        *size = hlen;
    } else {
        *size = (uint64_t)st.st_size;
    }
    *fd_out = fd;
    return 0;
}

int zdb_nsfile_open_active(struct zdb_ns *ns, uint32_t fileid)
{
    char path[4096];
    uint64_t now = (uint64_t)time(NULL);
    uint8_t ih[ZDB_IDX_HEADER_SIZE], dh[ZDB_DAT_HEADER_SIZE];
    struct zdb_idx_header ihdr = {ZDB_IDX_VERSION, now, now, fileid, (uint8_t)ns->mode};
    struct zdb_dat_header dhdr = {ZDB_DAT_VERSION, now, now, fileid};
    zdb_idx_header_encode(ih, &ihdr);
    zdb_dat_header_encode(dh, &dhdr);

    zdb_ns_path(ns, 'd', fileid, path, sizeof(path));
    int rc = open_with_header(path, dh, sizeof(dh), &ns->dat_fd, &ns->dat_size);
    if (rc < 0)
        return rc;
    zdb_ns_path(ns, 'i', fileid, path, sizeof(path));
    rc = open_with_header(path, ih, sizeof(ih), &ns->idx_fd, &ns->idx_size);
    if (rc < 0) {
        close(ns->dat_fd);
        ns->dat_fd = -1;
        return rc;
    }
    ns->fileid = fileid;
    if (ns->store->opts.mmap_reads) {
        /* Room for the file to grow to its rotation size (plus one entry that may pass it). */
        size_t len = ns->store->opts.datasize + ZDB_MAX_PAYLOAD + (1u << 20);
        if (ns->dat_size > len)
            len = ns->dat_size;
        void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, ns->dat_fd, 0);
        if (m != MAP_FAILED) {
            ns->dat_map = m;
            ns->dat_maplen = len;
        }
    }
    return 0;
}

void zdb_nsfile_close_active(struct zdb_ns *ns)
{
    if (ns->dat_map)
        munmap((void *)ns->dat_map, ns->dat_maplen);
    ns->dat_map = NULL;
    if (ns->idx_fd >= 0)
        close(ns->idx_fd);
    if (ns->dat_fd >= 0)
        close(ns->dat_fd);
    ns->idx_fd = ns->dat_fd = -1;
}

static void cache_close(struct zdb_fdcache *c)
{
    if (c->map)
        munmap((void *)c->map, c->maplen);
    c->map = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

void zdb_nsfile_cache_drop(struct zdb_ns *ns)
{
    for (int i = 0; i < ZDB_FDCACHE_SIZE; i++) {
        cache_close(&ns->fdc[i]);
        ns->fdc[i].fd = -1;
        ns->fdc[i].used = 0;
    }
}

int zdb_nsfile_fd(struct zdb_ns *ns, char kind, uint32_t fileid, int *fd)
{
    if (fileid == ns->fileid && ns->idx_fd >= 0) {
        *fd = kind == 'i' ? ns->idx_fd : ns->dat_fd;
        return 0;
    }
    bool writable = kind == 'i';
    int victim = 0;
    for (int i = 0; i < ZDB_FDCACHE_SIZE; i++) {
        struct zdb_fdcache *c = &ns->fdc[i];
        if (c->fd >= 0 && c->fileid == fileid && c->writable == writable) {
            c->used = ++ns->fdclock;
            *fd = c->fd;
            return 0;
        }
        if (c->fd < 0 || c->used < ns->fdc[victim].used)
            victim = i;
        if (c->fd < 0)
            victim = i;
    }
    char path[4096];
    zdb_ns_path(ns, kind, fileid, path, sizeof(path));
    int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    /* Reads must not turn into inode writes (atime); O_NOATIME needs file ownership. */
    int f = open(path, flags | O_NOATIME);
    if (f < 0 && errno == EPERM)
        f = open(path, flags);
    if (f < 0) {
        if (errno == ENOENT)
            return qs_err_set(QS_ENOTFOUND, "%s", path);
        return qs_err_sys(QS_EIO, errno, "open %s", path);
    }
    struct zdb_fdcache *c = &ns->fdc[victim];
    cache_close(c);
    c->fd = f;
    c->fileid = fileid;
    c->writable = writable;
    c->used = ++ns->fdclock;
    *fd = f;
    return 0;
}

#define WBUF_MAX (64u * 1024 * 1024)

static bool batching(const struct zdb_ns *ns)
{
    return ns->store->batch_depth > 0;
}

/* Appends iov to the pending buffer b (flushing first when it is full). */
static int buffer_append(struct zdb_ns *ns, struct qs_buf *b, const struct iovec *iov, int n)
{
    zdb_batch_touch(ns);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (b->len + total > WBUF_MAX) {
        int rc = zdb_nsfile_flush(ns);
        if (rc < 0)
            return rc;
    }
    uint8_t *dst;
    int rc = qs_buf_reserve(b, total, &dst);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len)
            memcpy(dst, iov[i].iov_base, iov[i].iov_len);
        dst += iov[i].iov_len;
    }
    qs_buf_commit(b, total);
    return 0;
}

static int flush_one(int fd, struct qs_buf *b, uint64_t size)
{
    if (b->len == 0)
        return 0;
    struct iovec iov = {qs_buf_ptr(b), b->len};
    int rc = zdb_write_at(fd, &iov, 1, size - b->len);
    if (rc < 0)
        return rc;
    qs_buf_reset(b);
    qs_buf_shrink(b, 1 << 20);
    return 0;
}

#define PATCH_HDR 14

static int apply_patches(struct zdb_ns *ns)
{
    const uint8_t *p = qs_buf_ptr(&ns->wpatch), *end = p + ns->wpatch.len;
    while (p < end) {
        uint32_t fileid = qs_le32(p);
        uint64_t off = qs_le64(p + 4);
        uint16_t len = qs_le16(p + 12);
        int fd;
        int rc = zdb_nsfile_fd(ns, 'i', fileid, &fd);
        if (rc == 0)
            rc = zdb_batch_save_undo(ns, fd, fileid, off, len);
        if (rc == 0) {
            struct iovec iov = {(void *)(p + PATCH_HDR), len};
            rc = zdb_write_at(fd, &iov, 1, off);
        }
        if (rc < 0) {
            /* keep the patches not yet applied for the next attempt */
            qs_buf_consume(&ns->wpatch, (size_t)(p - qs_buf_ptr(&ns->wpatch)));
            return rc;
        }
        p += PATCH_HDR + len;
    }
    qs_buf_reset(&ns->wpatch);
    return 0;
}

/* Copies the pending patches of index file fileid that overlap [off, off+total) into iov. */
static void overlay_patches(const struct zdb_ns *ns, uint32_t fileid, const struct iovec *iov,
                            int n, uint64_t off)
{
    const uint8_t *p = qs_buf_ptr(&ns->wpatch), *end = p + ns->wpatch.len;
    while (p < end) {
        uint32_t pf = qs_le32(p);
        uint64_t po = qs_le64(p + 4);
        uint16_t len = qs_le16(p + 12);
        if (pf == fileid) {
            uint64_t pos = off;
            for (int i = 0; i < n; i++) {
                uint64_t a = pos > po ? pos : po;
                uint64_t b = pos + iov[i].iov_len < po + len ? pos + iov[i].iov_len : po + len;
                if (a < b)
                    memcpy((uint8_t *)iov[i].iov_base + (a - pos), p + PATCH_HDR + (a - po), b - a);
                pos += iov[i].iov_len;
            }
        }
        p += PATCH_HDR + len;
    }
}

/* The file must hold exactly the bytes zdb wrote before more are appended: one cut or
 * grown behind zdb's back would put the new entries after a hole that recovery cuts. */
static int check_length(struct zdb_ns *ns, int fd, char kind, uint64_t want)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return qs_err_sys(QS_EIO, errno, "stat %c%u", kind, ns->fileid);
    if ((uint64_t)st.st_size == want)
        return 0;
    qs_log(QS_LOG_ERROR,
           "namespace %s: %c%u is %llu bytes but zdb wrote %llu: the file was changed behind "
           "zdb's back; writes refused until it is loaded again",
           ns->name, kind, ns->fileid, (unsigned long long)st.st_size, (unsigned long long)want);
    return qs_err_set(QS_EIO, "%c%u is %llu bytes, %llu expected", kind, ns->fileid,
                      (unsigned long long)st.st_size, (unsigned long long)want);
}

int zdb_nsfile_flush(struct zdb_ns *ns)
{
    /* Data first: an index entry must never reach the disk before its data. */
    int rc = 0;
    if ((ns->wdat.len && (rc = check_length(ns, ns->dat_fd, 'd', ns->dat_size - ns->wdat.len))) ||
        (ns->widx.len && (rc = check_length(ns, ns->idx_fd, 'i', ns->idx_size - ns->widx.len)))) {
        ns->stats.data_faults++;
        return qs_err_set(ZDB_EWRITE_DATA, "%s", qs_err_msg());
    }
    rc = flush_one(ns->dat_fd, &ns->wdat, ns->dat_size);
    if (rc < 0) {
        ns->nospace = rc == QS_EFULL;
        ns->stats.data_io_errors++;
        ns->stats.data_write_failed++;
        ns->stats.data_io_error_last = time(NULL);
        return qs_err_set(ZDB_EWRITE_DATA, "write d%u: %s", ns->fileid, qs_err_msg());
    }
    rc = flush_one(ns->idx_fd, &ns->widx, ns->idx_size);
    if (rc < 0) {
        ns->nospace = rc == QS_EFULL;
        ns->stats.index_io_errors++;
        ns->stats.index_write_failed++;
        ns->stats.index_io_error_last = time(NULL);
        return qs_err_set(ZDB_EWRITE_INDEX, "write i%u: %s", ns->fileid, qs_err_msg());
    }
    rc = apply_patches(ns);
    if (rc < 0) {
        ns->stats.index_io_errors++;
        ns->stats.index_write_failed++;
        ns->stats.index_io_error_last = time(NULL);
        return qs_err_set(ZDB_EWRITE_INDEX, "update index in place: %s", qs_err_msg());
    }
    return 0;
}

/* The mapping of data file fileid and how many of its bytes may be read, or NULL. */
static const uint8_t *data_map(struct zdb_ns *ns, uint32_t fileid, uint64_t *valid)
{
    if (fileid == ns->fileid && ns->dat_fd >= 0) {
        *valid = ns->dat_size - ns->wdat.len; /* bytes on disk */
        if (*valid > ns->dat_maplen)
            *valid = ns->dat_maplen;
        return ns->dat_map;
    }
    int fd;
    if (zdb_nsfile_fd(ns, 'd', fileid, &fd) < 0)
        return NULL;
    for (int i = 0; i < ZDB_FDCACHE_SIZE; i++) {
        struct zdb_fdcache *c = &ns->fdc[i];
        if (c->fd != fd)
            continue;
        if (!c->map) {
            struct stat st;
            if (fstat(fd, &st) != 0 || st.st_size <= 0)
                return NULL;
            void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
            if (m == MAP_FAILED)
                return NULL;
            c->map = m;
            c->maplen = (size_t)st.st_size;
        }
        *valid = c->maplen;
        return c->map;
    }
    return NULL;
}

#define MMAP_READ_MAX (4096 + 512) /* a 4 KiB payload with its entry header and key */

int zdb_nsfile_readv(struct zdb_ns *ns, char kind, uint32_t fileid, struct iovec *iov, int n,
                     uint64_t off)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (fileid == ns->fileid && ns->idx_fd >= 0) {
        const struct qs_buf *b = kind == 'i' ? &ns->widx : &ns->wdat;
        uint64_t size = kind == 'i' ? ns->idx_size : ns->dat_size;
        uint64_t flushed = size - b->len;
        if (b->len && off >= flushed) {
            /* Entries are appended whole, so a pending entry lies entirely in b. */
            if (off + total > size)
                return qs_err_set(QS_ECORRUPT, "read past the end of %c%u", kind, fileid);
            const uint8_t *src = qs_buf_ptr(b) + (off - flushed);
            for (int i = 0; i < n; i++) {
                memcpy(iov[i].iov_base, src, iov[i].iov_len);
                src += iov[i].iov_len;
            }
            return 0;
        }
    }
    /* Small reads copy from the mapping (no system call); larger ones cost less with preadv
     * here: 1M GETs of 32 KiB took 11.8-13.2 s of server CPU through the mapping, 10.3-11.1
     * with preadv (docs/bench-zdb.md, 2026-12-04). */
    if (kind == 'd' && total <= MMAP_READ_MAX && ns->store->opts.mmap_reads && qs_guard_active()) {
        uint64_t valid;
        const uint8_t *m = data_map(ns, fileid, &valid);
        if (m && off + total <= valid) {
            const uint8_t *src = m + off;
            for (int i = 0; i < n; i++) {
                int rc = qs_guard_copy(iov[i].iov_base, src, iov[i].iov_len);
                if (rc < 0)
                    return qs_err_set(rc, "read d%u at %llu: %s", fileid, (unsigned long long)off,
                                      qs_err_msg());
                src += iov[i].iov_len;
            }
            return 0;
        }
    }
    int fd;
    int rc = zdb_nsfile_fd(ns, kind, fileid, &fd);
    if (rc < 0)
        return rc;
    ssize_t got;
    do {
        got = preadv(fd, iov, n, (off_t)off);
    } while (got < 0 && errno == EINTR);
    if (got < 0)
        return qs_err_sys(QS_EIO, errno, "read %c%u at %llu", kind, fileid,
                          (unsigned long long)off);
    if ((size_t)got < total) {
        /* Short read: finish it the slow way (rare: signals, huge values). */
        size_t done = (size_t)got;
        for (int i = 0; i < n; i++) {
            if (done >= iov[i].iov_len) {
                done -= iov[i].iov_len;
                off += iov[i].iov_len;
                continue;
            }
            rc = zdb_read_at(fd, (uint8_t *)iov[i].iov_base + done, iov[i].iov_len - done,
                             off + done);
            if (rc < 0)
                return rc;
            off += iov[i].iov_len;
            done = 0;
        }
        off -= total;
    }
    if (kind == 'i' && ns->wpatch.len)
        overlay_patches(ns, fileid, iov, n, off);
    return 0;
}

/* Overwrites bytes of the active index file, in the pending buffer when they are there. */
static int index_patch(struct zdb_ns *ns, int fd, uint32_t fileid, struct iovec *iov, int n,
                       uint64_t off)
{
    if (fileid == ns->fileid && ns->widx.len && off >= ns->idx_size - ns->widx.len) {
        uint8_t *dst = qs_buf_ptr(&ns->widx) + (off - (ns->idx_size - ns->widx.len));
        for (int i = 0; i < n; i++) {
            memcpy(dst, iov[i].iov_base, iov[i].iov_len);
            dst += iov[i].iov_len;
        }
        return 0;
    }
    if (batching(ns)) {
        size_t total = 0;
        for (int i = 0; i < n; i++)
            total += iov[i].iov_len;
        uint8_t hdr[PATCH_HDR];
        qs_put32(hdr, fileid);
        qs_put64(hdr + 4, off);
        qs_put16(hdr + 12, (uint16_t)total);
        struct iovec all[4] = {{hdr, sizeof(hdr)}};
        for (int i = 0; i < n && i < 3; i++)
            all[i + 1] = iov[i];
        return buffer_append(ns, &ns->wpatch, all, n + 1);
    }
    return zdb_write_at(fd, iov, n, off);
}

int zdb_nsfile_data_append(struct zdb_ns *ns, const uint8_t *key, size_t klen, const uint8_t *val,
                           size_t vlen, uint32_t crc, uint8_t flags, uint32_t ts, uint32_t *off)
{
    struct zdb_dat_entry e = {(uint8_t)klen, (uint32_t)vlen, ns->dat_prev, crc, flags, ts};
    uint8_t hdr[ZDB_DAT_ENTRY_SIZE];
    zdb_dat_entry_encode(hdr, &e);
    struct iovec iov[3] = {{hdr, sizeof(hdr)}, {(void *)key, klen}, {(void *)val, vlen}};
    uint64_t at = ns->dat_size;
    if (at > UINT32_MAX)
        return qs_err_set(ZDB_EWRITE_DATA, "data file d%u is full", ns->fileid);
    if (batching(ns)) {
        int rc = buffer_append(ns, &ns->wdat, iov, 3);
        if (rc < 0)
            return qs_err_set(ZDB_EWRITE_DATA, "append to d%u: %s", ns->fileid, qs_err_msg());
        goto done;
    }
    int rc = zdb_write_at(ns->dat_fd, iov, 3, at);
    if (rc < 0) {
        ns->stats.data_io_errors++;
        ns->stats.data_write_failed++;
        ns->stats.data_io_error_last = time(NULL);
        /* Cut whatever part reached the file so the next append starts clean. */
        if (ftruncate(ns->dat_fd, (off_t)at) != 0)
            ns->stats.data_faults++;
        return qs_err_set(ZDB_EWRITE_DATA, "append to d%u: %s", ns->fileid, qs_err_msg());
    }
done:
    *off = (uint32_t)at;
    ns->stats.data_write_bytes += ZDB_DAT_ENTRY_SIZE + klen + vlen;
    ns->dat_prev = (uint32_t)at;
    ns->dat_size += ZDB_DAT_ENTRY_SIZE + klen + vlen;
    ns->data_bytes += ZDB_DAT_ENTRY_SIZE + klen + vlen;
    ns->written = true;
    ns->dirty_unsynced = true;
    return 0;
}

int zdb_nsfile_index_append(struct zdb_ns *ns, struct zdb_idx_entry *e, const uint8_t *key,
                            uint32_t *off)
{
    uint8_t hdr[ZDB_IDX_ENTRY_SIZE];
    e->previous = ns->idx_prev;
    zdb_idx_entry_encode(hdr, e);
    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)key, e->keylen}};
    uint64_t at = ns->idx_size;
    if (at > UINT32_MAX)
        return qs_err_set(ZDB_EWRITE_INDEX, "index file i%u is full", ns->fileid);
    if (batching(ns)) {
        int rc = buffer_append(ns, &ns->widx, iov, 2);
        if (rc < 0)
            return qs_err_set(ZDB_EWRITE_INDEX, "append to i%u: %s", ns->fileid, qs_err_msg());
        goto done;
    }
    int rc = zdb_write_at(ns->idx_fd, iov, 2, at);
    if (rc < 0) {
        ns->stats.index_io_errors++;
        ns->stats.index_write_failed++;
        ns->stats.index_io_error_last = time(NULL);
        if (ftruncate(ns->idx_fd, (off_t)at) != 0)
            ns->stats.index_faults++;
        return qs_err_set(ZDB_EWRITE_INDEX, "append to i%u: %s", ns->fileid, qs_err_msg());
    }
done:
    *off = (uint32_t)at;
    ns->stats.index_write_bytes += ZDB_IDX_ENTRY_SIZE + e->keylen;
    ns->idx_prev = (uint32_t)at;
    ns->idx_size += ZDB_IDX_ENTRY_SIZE + e->keylen;
    ns->index_bytes += ZDB_IDX_ENTRY_SIZE + e->keylen;
    ns->dirty_unsynced = true;
    return 0;
}

int zdb_nsfile_index_rewrite(struct zdb_ns *ns, uint32_t fileid, uint32_t off,
                             const struct zdb_idx_entry *e, const uint8_t *key)
{
    int fd;
    int rc = zdb_nsfile_fd(ns, 'i', fileid, &fd);
    if (rc < 0)
        return qs_err_set(ZDB_EWRITE_INDEX, "index file i%u: %s", fileid, qs_err_msg());
    uint8_t hdr[ZDB_IDX_ENTRY_SIZE];
    zdb_idx_entry_encode(hdr, e);
    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)key, e->keylen}};
    rc = index_patch(ns, fd, fileid, iov, 2, off);
    if (rc < 0) {
        ns->stats.index_io_errors++;
        ns->stats.index_write_failed++;
        ns->stats.index_io_error_last = time(NULL);
        return qs_err_set(ZDB_EWRITE_INDEX, "rewrite i%u at %u: %s", fileid, off, qs_err_msg());
    }
    ns->stats.index_write_bytes += ZDB_IDX_ENTRY_SIZE + e->keylen;
    ns->stats.index_write_bytes += 1;
    zdb_ns_mark_dirty(ns, fileid);
    ns->dirty_unsynced = true;
    return 0;
}

int zdb_nsfile_index_read(struct zdb_ns *ns, uint32_t fileid, uint32_t off, struct zdb_idx_entry *e,
                          uint8_t *key)
{
    uint8_t hdr[ZDB_IDX_ENTRY_SIZE];
    struct iovec iov = {hdr, sizeof(hdr)};
    int rc = zdb_nsfile_readv(ns, 'i', fileid, &iov, 1, off);
    if (rc == QS_ENOTFOUND)
        return rc;
    if (rc < 0) {
        ns->stats.index_io_errors++;
        ns->stats.index_read_failed++;
        ns->stats.index_io_error_last = time(NULL);
        return rc;
    }
    if (zdb_idx_entry_decode(e, hdr, sizeof(hdr)) < 0) {
        ns->stats.index_faults++;
        return qs_err_set(QS_ECORRUPT, "bad index entry in i%u at %u", fileid, off);
    }
    iov.iov_base = key;
    iov.iov_len = e->keylen;
    rc = zdb_nsfile_readv(ns, 'i', fileid, &iov, 1, (uint64_t)off + ZDB_IDX_ENTRY_SIZE);
    if (rc < 0) {
        ns->stats.index_faults++;
        return qs_err_set(QS_ECORRUPT, "bad index entry in i%u at %u", fileid, off);
    }
    ns->stats.index_read_bytes += ZDB_IDX_ENTRY_SIZE + e->keylen;
    return 0;
}

int zdb_nsfile_index_mark_deleted(struct zdb_ns *ns, uint32_t fileid, uint32_t off)
{
    int fd;
    int rc = zdb_nsfile_fd(ns, 'i', fileid, &fd);
    if (rc < 0)
        return qs_err_set(ZDB_EWRITE_INDEX, "index file i%u: %s", fileid, qs_err_msg());
    uint8_t flag = ZDB_IDX_DELETED;
    struct iovec iov = {&flag, 1};
    rc = index_patch(ns, fd, fileid, &iov, 1, (uint64_t)off + 13);
    if (rc < 0) {
        ns->stats.index_io_errors++;
        ns->stats.index_write_failed++;
        ns->stats.index_io_error_last = time(NULL);
        return qs_err_set(ZDB_EWRITE_INDEX, "flag i%u at %u: %s", fileid, off, qs_err_msg());
    }
    ns->stats.index_write_bytes += 1;
    zdb_ns_mark_dirty(ns, fileid);
    ns->dirty_unsynced = true;
    return 0;
}
