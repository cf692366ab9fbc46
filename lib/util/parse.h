/* Strict number parsing for user input (command lines, protocol arguments, configs). */
#ifndef QSFS_UTIL_PARSE_H
#define QSFS_UTIL_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Parses exactly len bytes as a decimal unsigned integer (no sign, no spaces, no
 * empty string). QS_EINVAL on any other byte or on overflow. */
int qs_parse_u64(const char *s, size_t len, uint64_t *out) QS_MUST_CHECK;

/* Same, for a signed decimal integer with an optional leading '-'. */
int qs_parse_i64(const char *s, size_t len, int64_t *out) QS_MUST_CHECK;

/* A byte size: decimal with an optional K, M or G suffix (powers of 1024, either case). */
int qs_parse_size(const char *s, uint64_t *out) QS_MUST_CHECK;

#endif
