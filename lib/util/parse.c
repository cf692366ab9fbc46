#include "parse.h"

#include <string.h>

int qs_parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0)
        return qs_err_set(QS_EINVAL, "empty number");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < '0' || c > '9')
            return qs_err_set(QS_EINVAL, "not a decimal number");
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, c - '0', &v))
            return qs_err_set(QS_EINVAL, "number too large");
    }
    *out = v;
    return 0;
}

int qs_parse_i64(const char *s, size_t len, int64_t *out)
{
    int neg = len > 0 && s[0] == '-';
    uint64_t v = 0;
    int rc = qs_parse_u64(s + neg, len - (size_t)neg, &v);
    if (rc < 0)
        return rc;
    if (v > (uint64_t)INT64_MAX + (uint64_t)neg)
        return qs_err_set(QS_EINVAL, "number out of range");
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

int qs_parse_size(const char *s, uint64_t *out)
{
    size_t len = strlen(s);
    uint64_t mul = 1;
    if (len > 0) {
        switch (s[len - 1]) {
        case 'k':
        case 'K':
            mul = 1024;
            break;
        case 'm':
        case 'M':
            mul = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            mul = 1024 * 1024 * 1024;
            break;
        default:
            break;
        }
        if (mul != 1)
            len--;
    }
    uint64_t v = 0;
    int rc = qs_parse_u64(s, len, &v);
    if (rc < 0)
        return qs_err_set(rc, "invalid size '%s'", s);
    if (__builtin_mul_overflow(v, mul, out))
        return qs_err_set(QS_EINVAL, "size '%s' too large", s);
    return 0;
}
