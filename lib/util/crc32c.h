/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * qs_crc32c_update() is the raw register update with no initial or final xor, so
 * qs_crc32c_update(0, p, n) is the 0-db variant ("123456789" -> 0x58e3fa20) and
 * ~qs_crc32c_update(~0u, p, n) is the standard iSCSI CRC-32C ("123456789" -> 0xe3069283).
 * ISA-L computes it (the fastest method the CPU has). Thread-safe. */
#ifndef QSFS_UTIL_CRC32C_H
#define QSFS_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t qs_crc32c_update(uint32_t crc, const void *data, size_t len);

/* 0-db's checksum of a payload: initial value 0, no final xor. */
static inline uint32_t qs_crc32c_zdb(const void *data, size_t len)
{
    return qs_crc32c_update(0, data, len);
}

#endif
