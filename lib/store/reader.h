/* Sequential buffered reader over a file, for loading and scanning. Internal to lib/store. */
#ifndef QSFS_STORE_READER_H
#define QSFS_STORE_READER_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct zdb_reader {
    int fd;
    uint8_t *buf;
    size_t cap;
    size_t start, end; /* live bytes buf[start..end) */
    uint64_t pos;      /* file offset of buf[start] */
    int eof;
};

int zdb_reader_init(struct zdb_reader *r, int fd, uint64_t pos, size_t cap) QS_MUST_CHECK;
void zdb_reader_free(struct zdb_reader *r);

/* Makes up to n bytes available at r->buf + r->start; returns how many are (less than n
 * only at end of file), or a negative code on a read error. n must be <= cap. */
long zdb_reader_need(struct zdb_reader *r, size_t n);

/* Skips n bytes (which must be available). */
void zdb_reader_skip(struct zdb_reader *r, size_t n);

#endif
