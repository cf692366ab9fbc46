/* RESP2 (Redis protocol) for the zdb server: an incremental request parser and reply writers.
 *
 * Requests are arrays of bulk strings only:
 *     *<argc>\r\n  then argc times  $<len>\r\n<len bytes>\r\n
 * Numbers are plain decimal digits without sign, spaces or leading zeros ("0" itself is
 * fine); every header line is at most RESP_MAX_LINE bytes including its \r\n. Anything else
 * is one of the resp_result errors below, whose reply text is resp_error_reply().
 *
 * The parser keeps only offsets, never pointers, so the caller's buffer may move (realloc)
 * between calls. Each byte of a header is examined once and a bulk payload is skipped in
 * O(1), so feeding a request in any number of pieces costs time linear in its size.
 * A parser belongs to one connection; it is not thread-safe and allocates nothing.
 */
#ifndef QSFS_RESP_RESP_H
#define QSFS_RESP_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

#define RESP_MAX_ARGS    1024
#define RESP_MAX_BULK    (8u * 1024 * 1024)            /* one bulk string */
#define RESP_MAX_REQUEST (RESP_MAX_BULK + 1024 * 1024) /* a whole request, headers included */
#define RESP_MAX_LINE    64 /* one header line ("*3\r\n", "$5\r\n"), \r\n included */

struct resp_arg {
    const uint8_t *ptr;
    size_t len;
};

struct resp_request {
    int argc;
    struct resp_arg argv[RESP_MAX_ARGS];
};

enum resp_result {
    RESP_DONE = 0,           /* one complete request in *req, *consumed = its byte length */
    RESP_NEED_MORE = 1,      /* incomplete: call again later with the same bytes plus more */
    RESP_ERR_NOT_ARRAY = -1, /* "-Malformed request, array expected"; connection closes */
    RESP_ERR_NOT_BULK = -2,  /* element not a bulk string (or bad length line) */
    RESP_ERR_NO_ARGS = -3,   /* *0 (or negative count): "-Missing arguments" */
    RESP_ERR_TOO_MANY = -4,  /* more than RESP_MAX_ARGS arguments: "-Too many arguments" */
    RESP_ERR_TOO_BIG = -5,   /* a bulk over RESP_MAX_BULK or request over RESP_MAX_REQUEST */
};

/* Private incremental state. Offsets are relative to the first byte of the current request. */
struct resp_parser {
    size_t pos;        /* bytes of the current request already examined */
    size_t line_start; /* offset of the header line being read */
    size_t data_end;   /* while in a payload: offset just past its trailing \r\n */
    uint64_t value;    /* number on the current header line, saturated */
    int state;         /* what the byte at pos must be */
    int negative;      /* the current header line has a '-' */
    int argc;          /* announced count, 0 while the array header is being read */
    int argn;          /* bulk strings complete so far */
    uint32_t arg_off[RESP_MAX_ARGS];
    uint32_t arg_len[RESP_MAX_ARGS];
};

/* Prepares p for the first request of a connection. Cannot fail. */
void resp_parser_init(struct resp_parser *p);

/* Parses one request from data[0..len). data always starts at the first unconsumed byte of
 * the current request, and len never shrinks between calls for the same request (asserted).
 *
 * RESP_DONE: req holds argc >= 1 arguments whose ptr point into data (valid until the caller
 *   drops or moves those bytes), *consumed = the request's byte length (> 0), and the parser
 *   is reset for the next request. More pipelined requests may follow in data: the caller
 *   drops *consumed bytes and calls again.
 * RESP_NEED_MORE: *consumed = 0; *need (if need != NULL) = a lower bound on the total byte
 *   count of this request (> len): len + 1 inside a header line, the end of the payload and
 *   its \r\n inside a bulk string, so the caller can reserve space for a big bulk.
 * An error (< 0): *consumed = how many bytes the caller must drop: the "*0" / "*-n" line for
 *   RESP_ERR_NO_ARGS, everything buffered (len) otherwise (the stream cannot be
 *   resynchronised). The parser is reset. resp_error_reply() gives the reply to send and
 *   resp_error_closes() whether the connection must then be closed. A one-line detail is
 *   also left in qs_err_msg() for logging.
 * Errors are decided byte by byte, so a request split at any boundary gives the same result
 * as the same bytes in one piece. */
int resp_parse(struct resp_parser *p, const uint8_t *data, size_t len, struct resp_request *req,
               size_t *consumed, size_t *need) QS_MUST_CHECK;

/* The full reply line for an error result, e.g. "-Malformed query string\r\n";
 * NULL for RESP_DONE, RESP_NEED_MORE and unknown values. Static storage. */
const char *resp_error_reply(int result);

/* 1 if the connection must be closed after replying to this error (NOT_ARRAY, TOO_BIG),
 * else 0. */
int resp_error_closes(int result);

/* Reply writers. Each appends one complete RESP element to b and returns 0, or QS_ENOMEM
 * when b's limit or memory runs out, in which case b is unchanged. */

/* +s\r\n. QS_EINVAL (b unchanged) if s holds '\r' or '\n'. */
int resp_add_status(struct qs_buf *b, const char *s) QS_MUST_CHECK;

/* -msg\r\n (msg without the leading '-'). QS_EINVAL (b unchanged) if msg holds '\r' or
 * '\n'. */
int resp_add_error(struct qs_buf *b, const char *msg) QS_MUST_CHECK;

/* :v\r\n */
int resp_add_int(struct qs_buf *b, int64_t v) QS_MUST_CHECK;

/* $n\r\n<n bytes>\r\n. p may be NULL when n is 0. */
int resp_add_bulk(struct qs_buf *b, const void *p, size_t n) QS_MUST_CHECK;

/* $-1\r\n (the nil bulk string) */
/* Appends a bulk of n bytes whose payload the caller fills in afterwards at *payload
 * (valid until the buffer is next modified). To cancel, restore b->len. */
int resp_add_bulk_space(struct qs_buf *b, size_t n, uint8_t **payload) QS_MUST_CHECK;

int resp_add_nil(struct qs_buf *b) QS_MUST_CHECK;

/* *n\r\n: the header of an array; the caller then adds its n elements. */
int resp_add_array(struct qs_buf *b, size_t n) QS_MUST_CHECK;

/* n bytes verbatim (pre-built replies such as resp_error_reply()). */
int resp_add_raw(struct qs_buf *b, const void *p, size_t n) QS_MUST_CHECK;

#endif
