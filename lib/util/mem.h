/* Small memory helpers. */
#ifndef QSFS_UTIL_MEM_H
#define QSFS_UTIL_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Overwrites a secret so the compiler cannot drop the write. */
static inline void qs_wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

/* Little-endian loads and stores (every on-disk and wire format of qsfs is LE). */
static inline uint16_t qs_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t qs_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t qs_le64(const uint8_t *p)
{
    return (uint64_t)qs_le32(p) | ((uint64_t)qs_le32(p + 4) << 32);
}
static inline void qs_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void qs_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void qs_put64(uint8_t *p, uint64_t v)
{
    qs_put32(p, (uint32_t)v);
    qs_put32(p + 4, (uint32_t)(v >> 32));
}

/* Checked size arithmetic: return 0 on success, -1 on overflow. */
static inline int qs_add_size(size_t a, size_t b, size_t *out)
{
    return __builtin_add_overflow(a, b, out) ? -1 : 0;
}
static inline int qs_mul_size(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}

#endif
