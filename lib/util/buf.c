#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qs_buf_init(struct qs_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void qs_buf_free(struct qs_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

int qs_buf_reserve(struct qs_buf *b, size_t n, uint8_t **out)
{
    *out = NULL;
    if (n > b->max || b->len > b->max - n)
        return qs_err_set(QS_ENOMEM, "buffer limit of %zu bytes reached", b->max);
    size_t need = b->len + n;
    if (b->off + need <= b->cap) {
        *out = b->data + b->off + b->len;
        return 0;
    }
    if (need <= b->cap && b->off > 0) {
        /* Enough room once the consumed front is reclaimed. */
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
        *out = b->data + b->len;
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max)
        cap = b->max;
    uint8_t *p = malloc(cap);
    if (!p)
        return qs_err_set(QS_ENOMEM, "cannot allocate %zu bytes", cap);
    if (b->len)
        memcpy(p, b->data + b->off, b->len);
    free(b->data);
    b->data = p;
    b->cap = cap;
    b->off = 0;
    *out = p + b->len;
    return 0;
}

void qs_buf_commit(struct qs_buf *b, size_t n)
{
    b->len += n;
}

int qs_buf_append(struct qs_buf *b, const void *p, size_t n)
{
    uint8_t *dst;
    int rc = qs_buf_reserve(b, n, &dst);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(dst, p, n);
    b->len += n;
    return 0;
}

int qs_buf_appendf(struct qs_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return qs_err_set(QS_EINVAL, "bad format string");
    if ((size_t)n < sizeof(small))
        return qs_buf_append(b, small, (size_t)n);
    uint8_t *dst;
    int rc = qs_buf_reserve(b, (size_t)n + 1, &dst);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)dst, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void qs_buf_consume(struct qs_buf *b, size_t n)
{
    if (n >= b->len) {
        b->off = 0;
        b->len = 0;
        return;
    }
    b->off += n;
    b->len -= n;
}

void qs_buf_reset(struct qs_buf *b)
{
    b->off = 0;
    b->len = 0;
}

void qs_buf_shrink(struct qs_buf *b, size_t keep)
{
    if (b->len == 0 && b->cap > keep) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
        b->off = 0;
    }
}
