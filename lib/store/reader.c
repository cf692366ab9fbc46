#include "reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int zdb_reader_init(struct zdb_reader *r, int fd, uint64_t pos, size_t cap)
{
    memset(r, 0, sizeof(*r));
    r->buf = malloc(cap);
    if (!r->buf)
        return qs_err_set(QS_ENOMEM, "reader buffer of %zu bytes", cap);
    r->fd = fd;
    r->cap = cap;
    r->pos = pos;
    return 0;
}

void zdb_reader_free(struct zdb_reader *r)
{
    free(r->buf);
    r->buf = NULL;
}

long zdb_reader_need(struct zdb_reader *r, size_t n)
{
    if (n > r->cap)
        n = r->cap;
    while (r->end - r->start < n && !r->eof) {
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        ssize_t got = pread(r->fd, r->buf + r->end, r->cap - r->end, (off_t)(r->pos + r->end));
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return qs_err_sys(QS_EIO, errno, "read");
        }
        if (got == 0)
            r->eof = 1;
        r->end += (size_t)got;
    }
    size_t avail = r->end - r->start;
    return (long)(avail < n ? avail : n);
}

void zdb_reader_skip(struct zdb_reader *r, size_t n)
{
    r->start += n;
    r->pos += n;
    if (r->start == r->end) {
        r->start = r->end = 0;
    }
}
