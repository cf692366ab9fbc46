#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char qs_err_text[512];

__attribute__((format(printf, 1, 0))) static void set_msg(const char *fmt, va_list ap)
{
    /* Through a copy: callers may pass qs_err_msg() itself as an argument. */
    char tmp[sizeof(qs_err_text)];
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    memcpy(qs_err_text, tmp, sizeof(tmp));
}

int qs_err_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_msg(fmt, ap);
    va_end(ap);
    return code;
}

int qs_err_sys(int code, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_msg(fmt, ap);
    va_end(ap);
    size_t n = strnlen(qs_err_text, sizeof(qs_err_text));
    if (n < sizeof(qs_err_text) - 1) {
        char tmp[128];
        const char *s = strerror_r(errnum, tmp, sizeof(tmp));
        snprintf(qs_err_text + n, sizeof(qs_err_text) - n, ": %s", s);
    }
    return code;
}

const char *qs_err_msg(void)
{
    return qs_err_text;
}

void qs_err_clear(void)
{
    qs_err_text[0] = '\0';
}

const char *qs_err_name(int code)
{
    switch (code) {
    case QS_OK:
        return "ok";
    case QS_ENOMEM:
        return "out of memory";
    case QS_EIO:
        return "I/O error";
    case QS_ECORRUPT:
        return "corrupt data";
    case QS_ENOTFOUND:
        return "not found";
    case QS_EPROTO:
        return "protocol error";
    case QS_EINVAL:
        return "invalid argument";
    case QS_ETOOFEW:
        return "too few good shards";
    case QS_EFULL:
        return "no space left";
    case QS_EDENIED:
        return "permission denied";
    case QS_EEXIST:
        return "already exists";
    case QS_EBUSY:
        return "busy";
    case QS_EAGAIN:
        return "try again";
    case QS_ETIMEOUT:
        return "timed out";
    case QS_EWRITE_DATA:
        return "cannot write data";
    case QS_EWRITE_INDEX:
        return "cannot write index";
    case QS_ESEQKEY:
        return "not an existing sequential id";
    case QS_EDISKFULL:
        return "disk full";
    default:
        return "unknown error";
    }
}
