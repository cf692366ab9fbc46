/* Logging through a handler the program installs. Library code calls qs_log();
 * without a handler nothing is printed. */
#ifndef QSFS_UTIL_LOG_H
#define QSFS_UTIL_LOG_H

#include <stdint.h>

#include "err.h"

enum qs_log_level { QS_LOG_DEBUG, QS_LOG_INFO, QS_LOG_WARN, QS_LOG_ERROR };

typedef void (*qs_log_fn)(enum qs_log_level level, const char *msg, void *ud);

/* Installs the handler (NULL removes it). Call once at start-up, before threads. */
void qs_log_set_handler(qs_log_fn fn, void *ud);

void qs_log(enum qs_log_level level, const char *fmt, ...) QS_PRINTF(2, 3);

/* The job the calling thread works for (0 = none): a handler that runs jobs at once
 * reads it (qs_log_job) to tag each line. Thread-local; a library that starts threads
 * for a job gives them the creator's. */
void qs_log_set_job(uint64_t job);
uint64_t qs_log_job(void);

#endif
