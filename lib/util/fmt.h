/* Small formatting helpers shared by the programs' output: sizes for people, strings
 * for JSON. */
#ifndef QSFS_UTIL_FMT_H
#define QSFS_UTIL_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* "512 B", "1.5 KiB", ..., "2.0 PiB" into out (always terminated). */
void qs_fmt_bytes(uint64_t n, char *out, size_t cap);

/* s as a JSON string literal (quotes, \" \\ and \u00XX for control bytes) on f. */
void qs_fput_json(FILE *f, const char *s);

#endif
