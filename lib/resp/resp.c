#include "resp.h"

#include <assert.h>
#include <string.h>

#include "util/mem.h"

/* What the byte at p->pos must be. */
enum {
    ST_TYPE,   /* '*' (array header) or '$' (bulk header): the first byte of a line */
    ST_SIGN,   /* after the type: '-' or the first digit */
    ST_DIGIT1, /* after '-': the first digit */
    ST_ZERO,   /* the number is a single "0": only '\r' may follow */
    ST_DIGITS, /* more digits or '\r' */
    ST_LF,     /* '\n' ends the line */
    ST_DATA,   /* a bulk payload and its \r\n, up to p->data_end */
};

/* Header numbers saturate here: far above every limit, and value * 10 + 9 fits 64 bits. */
#define VALUE_CAP UINT32_MAX

static void start_line(struct resp_parser *p)
{
    p->state = ST_TYPE;
    p->line_start = p->pos;
    p->value = 0;
    p->negative = 0;
}

void resp_parser_init(struct resp_parser *p)
{
    /* arg_off/arg_len are written before they are read: no need to clear 8 KiB. */
    p->pos = 0;
    p->data_end = 0;
    p->argc = 0;
    p->argn = 0;
    start_line(p);
}

static int fail(struct resp_parser *p, int result, size_t drop, size_t *consumed)
{
    *consumed = drop;
    resp_parser_init(p);
    return result;
}

/* A malformed header line: on the first line the input is not a RESP array at all. */
static int bad_line(struct resp_parser *p, size_t len, size_t *consumed, const char *why)
{
    int array = p->argc == 0;
    qs_err_set(QS_EPROTO, "resp: %s in %s header at byte %zu", why, array ? "array" : "bulk",
               p->pos);
    return fail(p, array ? RESP_ERR_NOT_ARRAY : RESP_ERR_NOT_BULK, len, consumed);
}

/* The line ending at p->pos is complete: act on its number. */
static int end_line(struct resp_parser *p, size_t len, size_t *consumed)
{
    if (p->argc == 0) {
        if (p->negative || p->value == 0) {
            qs_err_set(QS_EPROTO, "resp: array of %s0 arguments", p->negative ? "-" : "");
            /* The line itself is well formed: dropping it keeps the stream in sync. */
            return fail(p, RESP_ERR_NO_ARGS, p->pos, consumed);
        }
        if (p->value > RESP_MAX_ARGS) {
            qs_err_set(QS_EPROTO, "resp: array of %llu arguments, limit %d",
                       (unsigned long long)p->value, RESP_MAX_ARGS);
            return fail(p, RESP_ERR_TOO_MANY, len, consumed);
        }
        p->argc = (int)p->value;
        p->argn = 0;
        start_line(p);
        return RESP_NEED_MORE;
    }
    /* A '-' on a bulk line is rejected as soon as it is seen. */
    assert(!p->negative);
    if (p->value > RESP_MAX_BULK) {
        qs_err_set(QS_EPROTO, "resp: bulk of %llu bytes, limit %u", (unsigned long long)p->value,
                   RESP_MAX_BULK);
        return fail(p, RESP_ERR_TOO_BIG, len, consumed);
    }
    /* pos stays below RESP_MAX_REQUEST + RESP_MAX_LINE and value <= RESP_MAX_BULK, so
     * this cannot overflow; the check is kept because the bound is not local. */
    size_t end;
    if (qs_add_size(p->pos, (size_t)p->value + 2, &end) < 0 || end > RESP_MAX_REQUEST) {
        qs_err_set(QS_EPROTO, "resp: request longer than %u bytes", RESP_MAX_REQUEST);
        return fail(p, RESP_ERR_TOO_BIG, len, consumed);
    }
    p->arg_off[p->argn] = (uint32_t)p->pos;
    p->arg_len[p->argn] = (uint32_t)p->value;
    p->data_end = end;
    p->state = ST_DATA;
    return RESP_NEED_MORE;
}

/* Consumes the header byte c at p->pos. Returns RESP_NEED_MORE to go on, or an error. */
static int header_byte(struct resp_parser *p, uint8_t c, size_t len, size_t *consumed)
{
    if (p->pos - p->line_start >= RESP_MAX_LINE)
        return bad_line(p, len, consumed, "line too long");
    int digit = c >= '0' && c <= '9';
    switch (p->state) {
    case ST_TYPE:
        if (c != (p->argc == 0 ? '*' : '$')) {
            if (p->argc == 0) {
                qs_err_set(QS_EPROTO, "resp: request starts with 0x%02x, not '*'", c);
                return fail(p, RESP_ERR_NOT_ARRAY, len, consumed);
            }
            qs_err_set(QS_EPROTO, "resp: argument %d starts with 0x%02x, not '$'", p->argn, c);
            return fail(p, RESP_ERR_NOT_BULK, len, consumed);
        }
        p->state = ST_SIGN;
        break;
    case ST_SIGN:
        if (c == '-') {
            /* "$-1" is a nil reply, never a request argument. */
            if (p->argc != 0)
                return bad_line(p, len, consumed, "negative length");
            p->negative = 1;
            p->state = ST_DIGIT1;
            break;
        }
        __attribute__((fallthrough));
    case ST_DIGIT1:
        if (!digit)
            return bad_line(p, len, consumed, "missing number");
        p->value = (uint64_t)(c - '0');
        p->state = c == '0' ? ST_ZERO : ST_DIGITS;
        break;
    case ST_ZERO:
        if (c != '\r')
            return bad_line(p, len, consumed, digit ? "leading zero" : "bad character");
        p->state = ST_LF;
        break;
    case ST_DIGITS:
        if (digit) {
            if (p->value < VALUE_CAP)
                p->value = p->value * 10 + (uint64_t)(c - '0');
            if (p->value > VALUE_CAP)
                p->value = VALUE_CAP;
        } else if (c == '\r') {
            p->state = ST_LF;
        } else {
            return bad_line(p, len, consumed, "bad character");
        }
        break;
    case ST_LF:
        if (c != '\n')
            return bad_line(p, len, consumed, "missing \\n after \\r");
        p->pos++;
        return end_line(p, len, consumed);
    default:
        assert(0 && "resp: bad parser state");
    }
    p->pos++;
    return RESP_NEED_MORE;
}

int resp_parse(struct resp_parser *p, const uint8_t *data, size_t len, struct resp_request *req,
               size_t *consumed, size_t *need)
{
    /* Bytes already examined must still be there (same request, same or more bytes). */
    assert(len >= p->pos);
    *consumed = 0;
    for (;;) {
        if (p->state == ST_DATA) {
            if (len < p->data_end) {
                if (need)
                    *need = p->data_end;
                return RESP_NEED_MORE;
            }
            if (data[p->data_end - 2] != '\r' || data[p->data_end - 1] != '\n') {
                qs_err_set(QS_EPROTO, "resp: argument %d not followed by \\r\\n", p->argn);
                return fail(p, RESP_ERR_NOT_BULK, len, consumed);
            }
            p->pos = p->data_end;
            p->argn++;
            if (p->argn == p->argc)
                break;
            start_line(p);
            continue;
        }
        if (p->pos == len) {
            if (need)
                *need = len + 1;
            return RESP_NEED_MORE;
        }
        int rc = header_byte(p, data[p->pos], len, consumed);
        if (rc < 0)
            return rc;
    }
    req->argc = p->argc;
    for (int i = 0; i < p->argc; i++) {
        req->argv[i].ptr = data + p->arg_off[i];
        req->argv[i].len = p->arg_len[i];
    }
    *consumed = p->pos;
    resp_parser_init(p);
    return RESP_DONE;
}

const char *resp_error_reply(int result)
{
    switch (result) {
    case RESP_ERR_NOT_ARRAY:
        return "-Malformed request, array expected\r\n";
    case RESP_ERR_NOT_BULK:
        return "-Malformed query string\r\n";
    case RESP_ERR_NO_ARGS:
        return "-Missing arguments\r\n";
    case RESP_ERR_TOO_MANY:
        return "-Too many arguments\r\n";
    case RESP_ERR_TOO_BIG:
        return "-Payload too big\r\n";
    default:
        return NULL;
    }
}

int resp_error_closes(int result)
{
    return result == RESP_ERR_NOT_ARRAY || result == RESP_ERR_TOO_BIG;
}

/* Writes v in decimal at the end of out[0..20) and returns the first digit's index. */
static size_t fmt_u64(char out[20], uint64_t v)
{
    size_t i = 20;
    do {
        out[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return i;
}

/* Appends prefix, the n bytes of p, then "\r\n", all or nothing. */
static int add_line(struct qs_buf *b, char prefix, const void *p, size_t n)
{
    size_t total;
    if (qs_add_size(n, 3, &total) < 0)
        return qs_err_set(QS_ENOMEM, "resp: reply of %zu bytes", n);
    uint8_t *dst;
    int rc = qs_buf_reserve(b, total, &dst);
    if (rc < 0)
        return rc;
    dst[0] = (uint8_t)prefix;
    if (n)
        memcpy(dst + 1, p, n);
    memcpy(dst + 1 + n, "\r\n", 2);
    qs_buf_commit(b, total);
    return 0;
}

/* Appends prefix + decimal + "\r\n". */
static int add_number(struct qs_buf *b, char prefix, int negative, uint64_t magnitude)
{
    char digits[21];
    size_t i = fmt_u64(digits + 1, magnitude) + 1;
    if (negative)
        digits[--i] = '-';
    return add_line(b, prefix, digits + i, sizeof(digits) - i);
}

static int add_text(struct qs_buf *b, char prefix, const char *s)
{
    size_t n = strlen(s);
    if (memchr(s, '\r', n) || memchr(s, '\n', n))
        return qs_err_set(QS_EINVAL, "resp: line break inside a %s reply",
                          prefix == '+' ? "status" : "error");
    return add_line(b, prefix, s, n);
}

int resp_add_status(struct qs_buf *b, const char *s)
{
    return add_text(b, '+', s);
}

int resp_add_error(struct qs_buf *b, const char *msg)
{
    return add_text(b, '-', msg);
}

int resp_add_int(struct qs_buf *b, int64_t v)
{
    /* 0 - (uint64_t)v is the magnitude even for INT64_MIN. */
    return add_number(b, ':', v < 0, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
}

int resp_add_bulk(struct qs_buf *b, const void *p, size_t n)
{
    char digits[20];
    size_t i = fmt_u64(digits, n);
    size_t hdr = 1 + (sizeof(digits) - i) + 2;
    size_t total;
    if (qs_add_size(hdr, n, &total) < 0 || qs_add_size(total, 2, &total) < 0)
        return qs_err_set(QS_ENOMEM, "resp: bulk of %zu bytes", n);
    uint8_t *dst;
    int rc = qs_buf_reserve(b, total, &dst);
    if (rc < 0)
        return rc;
    dst[0] = '$';
    memcpy(dst + 1, digits + i, sizeof(digits) - i);
    memcpy(dst + hdr - 2, "\r\n", 2);
    if (n)
        memcpy(dst + hdr, p, n);
    memcpy(dst + hdr + n, "\r\n", 2);
    qs_buf_commit(b, total);
    return 0;
}

int resp_add_bulk_space(struct qs_buf *b, size_t n, uint8_t **payload)
{
    char digits[20];
    size_t i = fmt_u64(digits, n);
    size_t hdr = 1 + (sizeof(digits) - i) + 2;
    size_t total;
    *payload = NULL;
    if (qs_add_size(hdr, n, &total) < 0 || qs_add_size(total, 2, &total) < 0)
        return qs_err_set(QS_ENOMEM, "resp: bulk of %zu bytes", n);
    uint8_t *dst;
    int rc = qs_buf_reserve(b, total, &dst);
    if (rc < 0)
        return rc;
    dst[0] = '$';
    memcpy(dst + 1, digits + i, sizeof(digits) - i);
    memcpy(dst + hdr - 2, "\r\n", 2);
    memcpy(dst + hdr + n, "\r\n", 2);
    qs_buf_commit(b, total);
    *payload = dst + hdr;
    return 0;
}

int resp_add_nil(struct qs_buf *b)
{
    return qs_buf_append(b, "$-1\r\n", 5);
}

int resp_add_array(struct qs_buf *b, size_t n)
{
    return add_number(b, '*', 0, n);
}

int resp_add_raw(struct qs_buf *b, const void *p, size_t n)
{
    return qs_buf_append(b, p, n);
}
