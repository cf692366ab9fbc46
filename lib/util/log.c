#include "log.h"

#include <stdarg.h>
#include <stdio.h>

/* The one process-wide setting: which function receives log lines. Set by the
 * program before any thread starts, read-only afterwards. */
static qs_log_fn log_fn;
static void *log_ud;

void qs_log_set_handler(qs_log_fn fn, void *ud)
{
    log_fn = fn;
    log_ud = ud;
}

static __thread uint64_t log_job;

void qs_log_set_job(uint64_t job)
{
    log_job = job;
}

uint64_t qs_log_job(void)
{
    return log_job;
}

void qs_log(enum qs_log_level level, const char *fmt, ...)
{
    if (!log_fn)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_fn(level, line, log_ud);
}
