/* Bounded growable byte buffer.
 *
 * A buffer has a hard maximum set at creation: growing past it fails with QS_ENOMEM
 * instead of eating memory. Data lives in data[off .. off+len); consuming from the
 * front is O(1) and the space is reclaimed on the next append.
 * Not thread-safe; the owner frees it with qs_buf_free().
 */
#ifndef QSFS_UTIL_BUF_H
#define QSFS_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct qs_buf {
    uint8_t *data;
    size_t off; /* start of live bytes */
    size_t len; /* number of live bytes */
    size_t cap; /* allocated bytes */
    size_t max; /* hard limit on cap */
};

void qs_buf_init(struct qs_buf *b, size_t max);
void qs_buf_free(struct qs_buf *b);

/* Live bytes. */
static inline uint8_t *qs_buf_ptr(const struct qs_buf *b)
{
    return b->data + b->off;
}

/* Makes room for n more bytes after the live ones; returns a pointer to them.
 * Sets *out to NULL and returns QS_ENOMEM when the maximum would be passed. */
int qs_buf_reserve(struct qs_buf *b, size_t n, uint8_t **out) QS_MUST_CHECK;

/* Marks n bytes after the live ones (previously reserved) as live. */
void qs_buf_commit(struct qs_buf *b, size_t n);

int qs_buf_append(struct qs_buf *b, const void *p, size_t n) QS_MUST_CHECK;
int qs_buf_appendf(struct qs_buf *b, const char *fmt, ...) QS_PRINTF(2, 3) QS_MUST_CHECK;

/* Drops n bytes from the front (n <= len). */
void qs_buf_consume(struct qs_buf *b, size_t n);

/* Empties the buffer, keeping its allocation. */
void qs_buf_reset(struct qs_buf *b);

/* Gives back memory above keep bytes of capacity when the buffer is empty. */
void qs_buf_shrink(struct qs_buf *b, size_t keep);

#endif
