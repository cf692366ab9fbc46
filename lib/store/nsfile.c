#include "nsfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "util/crc32c.h"

int zdb_write_at(int fd, struct iovec *iov, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwritev(fd, iov, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return qs_err_sys(QS_EIO, errno, "write");
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
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
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
    return 0;
}

void zdb_nsfile_close_active(struct zdb_ns *ns)
{
    if (ns->idx_fd >= 0)
        close(ns->idx_fd);
    if (ns->dat_fd >= 0)
        close(ns->dat_fd);
    ns->idx_fd = ns->dat_fd = -1;
}

void zdb_nsfile_cache_drop(struct zdb_ns *ns)
{
    for (int i = 0; i < ZDB_FDCACHE_SIZE; i++) {
        if (ns->fdc[i].fd >= 0)
            close(ns->fdc[i].fd);
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
    int f = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (f < 0) {
        if (errno == ENOENT)
            return qs_err_set(QS_ENOTFOUND, "%s", path);
        return qs_err_sys(QS_EIO, errno, "open %s", path);
    }
    struct zdb_fdcache *c = &ns->fdc[victim];
    if (c->fd >= 0)
        close(c->fd);
    c->fd = f;
    c->fileid = fileid;
    c->writable = writable;
    c->used = ++ns->fdclock;
    *fd = f;
    return 0;
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
    int rc = zdb_write_at(ns->idx_fd, iov, 2, at);
    if (rc < 0) {
        ns->stats.index_io_errors++;
        ns->stats.index_write_failed++;
        ns->stats.index_io_error_last = time(NULL);
        if (ftruncate(ns->idx_fd, (off_t)at) != 0)
            ns->stats.index_faults++;
        return qs_err_set(ZDB_EWRITE_INDEX, "append to i%u: %s", ns->fileid, qs_err_msg());
    }
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
    rc = zdb_write_at(fd, iov, 2, off);
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
    int fd;
    int rc = zdb_nsfile_fd(ns, 'i', fileid, &fd);
    if (rc < 0)
        return rc;
    uint8_t buf[ZDB_IDX_ENTRY_SIZE + ZDB_MAX_KEY];
    ssize_t r = pread(fd, buf, sizeof(buf), off);
    if (r < 0) {
        ns->stats.index_io_errors++;
        ns->stats.index_read_failed++;
        ns->stats.index_io_error_last = time(NULL);
        return qs_err_sys(QS_EIO, errno, "read i%u at %u", fileid, off);
    }
    ns->stats.index_read_bytes += (uint64_t)r;
    rc = zdb_idx_entry_decode(e, buf, (size_t)r);
    if (rc < 0 || (size_t)r < ZDB_IDX_ENTRY_SIZE + (size_t)e->keylen) {
        ns->stats.index_faults++;
        return qs_err_set(QS_ECORRUPT, "bad index entry in i%u at %u", fileid, off);
    }
    memcpy(key, buf + ZDB_IDX_ENTRY_SIZE, e->keylen);
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
    rc = zdb_write_at(fd, &iov, 1, (uint64_t)off + 13);
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
