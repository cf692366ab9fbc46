/* Small OS helpers every program and library here shares: writes that finish, durable
 * file replacement and directory entries, a monotonic clock, kernel randomness.
 *
 * Errors follow err.h: QS_EFULL for ENOSPC/EDQUOT, QS_EIO for other system errors, with a
 * one-line message naming the call and the path where there is one; errno is kept for
 * callers that tell causes apart. No global state; thread-safe. */
#ifndef QSFS_UTIL_SYS_H
#define QSFS_UTIL_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/* Writes all n bytes to fd (retrying short writes and EINTR). */
int qs_write_all(int fd, const void *p, size_t n) QS_MUST_CHECK;

/* fsync of the directory dir, so that entries created, renamed or removed in it survive a
 * power cut. A file system that cannot sync directories (EINVAL) counts as success. */
int qs_fsync_dir(const char *dir) QS_MUST_CHECK;

/* qs_fsync_dir of the directory that holds path ("." for a bare name). */
int qs_fsync_parent(const char *path) QS_MUST_CHECK;

#define QS_REPLACE_NOSYNC 0x01u /* skip every fsync (tests on tmpfs) */

/* Replaces path with p[0..n) atomically: a temporary file in the same directory, written,
 * fsynced, given mode, renamed over path, then the directory fsynced. A crash leaves the
 * old file or the new one, never a mix; the temporary file is removed on failure. */
int qs_replace_file(const char *path, const void *p, size_t n, mode_t mode,
                    unsigned flags) QS_MUST_CHECK;

/* n bytes from the kernel's random source (getrandom). */
int qs_random_bytes(void *p, size_t n) QS_MUST_CHECK;

/* Milliseconds of CLOCK_MONOTONIC (for deadlines and intervals, never for dates). */
int64_t qs_now_ms(void);

#endif
