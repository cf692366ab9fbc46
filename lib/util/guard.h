/* Reading memory-mapped files without dying on I/O errors.
 *
 * A read from a mapping whose page cannot be loaded (disk error, file truncated behind
 * our back) raises SIGBUS. qs_guard_copy() copies under a per-thread recovery point so
 * such a fault becomes QS_EIO instead of killing the process. The program must call
 * qs_guard_install() once (it installs the SIGBUS handler; this is the only process-wide
 * effect, and libraries never call it); until then qs_guard_active() is false and users
 * of mappings must fall back to read(2). */
#ifndef QSFS_UTIL_GUARD_H
#define QSFS_UTIL_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

int qs_guard_install(void) QS_MUST_CHECK;
bool qs_guard_active(void);

/* Sets a function the SIGBUS handler calls for a fault outside any guarded copy, just
 * before the default action ends the process (a crash hook). It runs in signal context:
 * async-signal-safe code only. NULL removes it. */
void qs_guard_set_fallback(void (*fn)(int sig));

/* memcpy(dst, src, n), or QS_EIO when reading src faults with SIGBUS. */
int qs_guard_copy(void *dst, const void *src, size_t n) QS_MUST_CHECK;

#endif
