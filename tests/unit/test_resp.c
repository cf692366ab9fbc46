/* Unit tests for lib/resp: request parsing (whole, split, pipelined, malformed) and the
 * reply writers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "resp/resp.h"

/* Large structs live here rather than on the stack. */
static struct resp_parser g_parser;
static struct resp_request g_req;

/* ---- helpers ------------------------------------------------------------------------ */

/* Outcome of feeding one input to a fresh parser. */
struct outcome {
    int rc;
    size_t consumed;
    size_t fed;    /* bytes given in the last call */
    size_t need;   /* last *need on RESP_NEED_MORE */
    uint8_t *data; /* exact-size copy of the last call's bytes (argv points into it) */
};

/* Feeds in[0..n) to a fresh parser: first `first` bytes, then `step` more per call, until a
 * result other than RESP_NEED_MORE or the input runs out. Every call gets a freshly
 * allocated exact-size copy, as if the caller's buffer moved, so a parser that kept a
 * pointer or read past len trips ASan. Checks the NEED_MORE contract on the way. */
static struct outcome feed(const uint8_t *in, size_t n, size_t first, size_t step)
{
    struct outcome o = {0};
    resp_parser_init(&g_parser);
    size_t have = first < n ? first : n;
    for (;;) {
        free(o.data);
        o.data = malloc(have ? have : 1);
        assert_non_null(o.data);
        if (have)
            memcpy(o.data, in, have);
        o.fed = have;
        size_t need = 0;
        o.rc = resp_parse(&g_parser, o.data, have, &g_req, &o.consumed, &need);
        if (o.rc != RESP_NEED_MORE)
            return o;
        assert_int_equal(o.consumed, 0);
        assert_true(need > have);
        o.need = need;
        if (have == n)
            return o;
        have = n - have < step ? n : have + step;
    }
}

/* ---- valid requests ----------------------------------------------------------------- */

struct valid_case {
    const char *in;
    size_t len;
    int argc;
    const char *args[4];
    size_t arglen[4];
};

#define V(lit) lit, sizeof(lit) - 1

static const struct valid_case valid_cases[] = {
    {V("*1\r\n$4\r\nPING\r\n"), 1, {"PING"}, {4}},
    {V("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"), 3, {"SET", "key", "value"}, {3, 3, 5}},
    {V("*2\r\n$3\r\nSET\r\n$0\r\n\r\n"), 2, {"SET", ""}, {3, 0}},
    {V("*1\r\n$0\r\n\r\n"), 1, {""}, {0}},
    /* payload bytes are opaque: CR LF, '*', '$' and NUL inside are data */
    {V("*2\r\n$6\r\n\r\n*1\r\n\r\n$3\r\na\0b\r\n"), 2, {"\r\n*1\r\n", "a\0b"}, {6, 3}},
    {V("*4\r\n$1\r\na\r\n$2\r\nbc\r\n$10\r\n0123456789\r\n$1\r\n$\r\n"),
     4,
     {"a", "bc", "0123456789", "$"},
     {1, 2, 10, 1}},
};

static void check_valid(const struct valid_case *c, const struct outcome *o)
{
    assert_int_equal(o->rc, RESP_DONE);
    assert_int_equal(o->consumed, c->len);
    assert_int_equal(g_req.argc, c->argc);
    for (int i = 0; i < c->argc; i++) {
        assert_int_equal(g_req.argv[i].len, c->arglen[i]);
        if (c->arglen[i])
            assert_memory_equal(g_req.argv[i].ptr, c->args[i], c->arglen[i]);
        /* argv points inside the bytes handed to the parser */
        assert_true(g_req.argv[i].ptr >= o->data);
        assert_true(g_req.argv[i].ptr + g_req.argv[i].len <= o->data + o->consumed);
    }
}

static void test_valid_one_shot(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(valid_cases) / sizeof(valid_cases[0]); k++) {
        const struct valid_case *c = &valid_cases[k];
        struct outcome o = feed((const uint8_t *)c->in, c->len, c->len, 1);
        check_valid(c, &o);
        free(o.data);
    }
}

static void test_valid_split_everywhere(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(valid_cases) / sizeof(valid_cases[0]); k++) {
        const struct valid_case *c = &valid_cases[k];
        /* two pieces, cut at every boundary */
        for (size_t cut = 0; cut <= c->len; cut++) {
            struct outcome o = feed((const uint8_t *)c->in, c->len, cut, c->len);
            check_valid(c, &o);
            free(o.data);
        }
        /* one byte at a time, and a few other piece sizes */
        for (size_t step = 1; step <= 7; step++) {
            struct outcome o = feed((const uint8_t *)c->in, c->len, step, step);
            check_valid(c, &o);
            free(o.data);
        }
    }
}

static void test_valid_trailing_bytes(void **state)
{
    (void)state;
    /* bytes after a request are left alone: consumed covers the request only */
    const uint8_t *in = (const uint8_t *)"*1\r\n$4\r\nPING\r\ngarbage";
    size_t consumed;
    resp_parser_init(&g_parser);
    assert_int_equal(resp_parse(&g_parser, in, 21, &g_req, &consumed, NULL), RESP_DONE);
    assert_int_equal(consumed, 14);
    assert_int_equal(g_req.argc, 1);
    /* and the parser is ready for the next request (here: garbage) */
    assert_int_equal(resp_parse(&g_parser, in + 14, 7, &g_req, &consumed, NULL),
                     RESP_ERR_NOT_ARRAY);
}

/* ---- pipelining --------------------------------------------------------------------- */

/* Drains a connection-like buffer: parses every complete request and checks them against
 * valid_cases in order, repeated `rounds` times. Returns how many requests were checked. */
static size_t drain(struct qs_buf *b, size_t *next)
{
    const size_t ncases = sizeof(valid_cases) / sizeof(valid_cases[0]);
    size_t done = 0;
    for (;;) {
        size_t consumed = 0, need = 0;
        int rc = resp_parse(&g_parser, qs_buf_ptr(b), b->len, &g_req, &consumed, &need);
        if (rc == RESP_NEED_MORE) {
            assert_int_equal(consumed, 0);
            assert_true(need > b->len);
            return done;
        }
        assert_int_equal(rc, RESP_DONE);
        const struct valid_case *c = &valid_cases[*next % ncases];
        struct outcome o = {.rc = rc, .consumed = consumed, .data = qs_buf_ptr(b)};
        check_valid(c, &o);
        qs_buf_consume(b, consumed);
        (*next)++;
        done++;
    }
}

static void test_pipelined(void **state)
{
    (void)state;
    const size_t ncases = sizeof(valid_cases) / sizeof(valid_cases[0]);
    const size_t rounds = 5;
    struct qs_buf all;
    qs_buf_init(&all, 1 << 20);
    for (size_t r = 0; r < rounds; r++)
        for (size_t k = 0; k < ncases; k++)
            assert_int_equal(qs_buf_append(&all, valid_cases[k].in, valid_cases[k].len), 0);

    /* everything in one read */
    struct qs_buf b;
    qs_buf_init(&b, 1 << 20);
    assert_int_equal(qs_buf_append(&b, qs_buf_ptr(&all), all.len), 0);
    resp_parser_init(&g_parser);
    size_t next = 0;
    assert_int_equal(drain(&b, &next), rounds * ncases);
    assert_int_equal(b.len, 0);
    qs_buf_free(&b);

    /* arriving in reads of every size from 1 to 40 bytes, through a buffer that compacts
     * and grows (so the bytes move between calls) */
    for (size_t step = 1; step <= 40; step++) {
        qs_buf_init(&b, 1 << 20);
        resp_parser_init(&g_parser);
        next = 0;
        size_t total = 0;
        for (size_t off = 0; off < all.len; off += step) {
            size_t n = all.len - off < step ? all.len - off : step;
            assert_int_equal(qs_buf_append(&b, qs_buf_ptr(&all) + off, n), 0);
            total += drain(&b, &next);
        }
        assert_int_equal(total, rounds * ncases);
        assert_int_equal(b.len, 0);
        qs_buf_free(&b);
    }
    qs_buf_free(&all);
}

/* ---- malformed requests ------------------------------------------------------------- */

#define ALL SIZE_MAX /* "consumed = everything buffered" */

struct error_case {
    const char *in;
    size_t len;
    int rc;
    size_t consumed; /* ALL or an exact count */
};

#define E(lit, rc, consumed)                                                                       \
    {                                                                                              \
        lit, sizeof(lit) - 1, rc, consumed                                                         \
    }

static const struct error_case error_cases[] = {
    /* not an array */
    E("PING\r\n", RESP_ERR_NOT_ARRAY, ALL),
    E("$4\r\nPING\r\n", RESP_ERR_NOT_ARRAY, ALL),
    E("\r\n", RESP_ERR_NOT_ARRAY, ALL),
    E("*\r\n", RESP_ERR_NOT_ARRAY, ALL),
    E("*x\r\n", RESP_ERR_NOT_ARRAY, ALL),
    E("*+1\r\n", RESP_ERR_NOT_ARRAY, ALL),
    E("* 1\r\n", RESP_ERR_NOT_ARRAY, ALL),
    E("*1 \r\n", RESP_ERR_NOT_ARRAY, ALL),
    E("*01\r\n", RESP_ERR_NOT_ARRAY, ALL),
    E("*1\n$4\r\nPING\r\n", RESP_ERR_NOT_ARRAY, ALL),
    E("*1\rx", RESP_ERR_NOT_ARRAY, ALL),
    E("*1\r\r\n", RESP_ERR_NOT_ARRAY, ALL),
    E("*-\r\n", RESP_ERR_NOT_ARRAY, ALL),
    E("*--1\r\n", RESP_ERR_NOT_ARRAY, ALL),
    E("*1-\r\n", RESP_ERR_NOT_ARRAY, ALL),
    /* no arguments: only the line is dropped */
    E("*0\r\n", RESP_ERR_NO_ARGS, 4),
    E("*0\r\n*1\r\n$4\r\nPING\r\n", RESP_ERR_NO_ARGS, 4),
    E("*-1\r\n", RESP_ERR_NO_ARGS, 5),
    E("*-0\r\n", RESP_ERR_NO_ARGS, 5),
    E("*-12345\r\nxyz", RESP_ERR_NO_ARGS, 9),
    /* too many arguments */
    E("*1025\r\n", RESP_ERR_TOO_MANY, ALL),
    E("*1025\r\n$4\r\nPING\r\n", RESP_ERR_TOO_MANY, ALL),
    E("*4294967296\r\n", RESP_ERR_TOO_MANY, ALL),
    E("*99999999999999999999999999999999999999999\r\n", RESP_ERR_TOO_MANY, ALL),
    /* elements that are not bulk strings */
    E("*1\r\n:1\r\n", RESP_ERR_NOT_BULK, ALL),
    E("*1\r\n+PING\r\n", RESP_ERR_NOT_BULK, ALL),
    E("*1\r\n*1\r\n$4\r\nPING\r\n", RESP_ERR_NOT_BULK, ALL),
    E("*2\r\n$1\r\na\r\n:5\r\nmore", RESP_ERR_NOT_BULK, ALL),
    E("*1\r\nPING\r\n", RESP_ERR_NOT_BULK, ALL),
    /* bad bulk length lines */
    E("*1\r\n$-1\r\n", RESP_ERR_NOT_BULK, ALL),
    E("*1\r\n$\r\n", RESP_ERR_NOT_BULK, ALL),
    E("*1\r\n$04\r\nPING\r\n", RESP_ERR_NOT_BULK, ALL),
    E("*1\r\n$4 \r\nPING\r\n", RESP_ERR_NOT_BULK, ALL),
    E("*1\r\n$+4\r\nPING\r\n", RESP_ERR_NOT_BULK, ALL),
    E("*1\r\n$4\nPING\r\n", RESP_ERR_NOT_BULK, ALL),
    E("*1\r\n$4\r\rPING\r\n", RESP_ERR_NOT_BULK, ALL),
    E("*1\r\n$0x4\r\nPING\r\n", RESP_ERR_NOT_BULK, ALL),
    /* payload not followed by CRLF (too long, too short, half a CRLF) */
    E("*1\r\n$4\r\nPINGx\r\n", RESP_ERR_NOT_BULK, ALL),
    E("*1\r\n$4\r\nPIN\r\n*1", RESP_ERR_NOT_BULK, ALL), /* payload "PIN\r", then "\n*" */
    E("*1\r\n$4\r\nPING\rx", RESP_ERR_NOT_BULK, ALL),
    E("*1\r\n$4\r\nPING\n\r", RESP_ERR_NOT_BULK, ALL),
    E("*1\r\n$4\r\nPING\n\n", RESP_ERR_NOT_BULK, ALL),
    E("*2\r\n$4\r\nPING\r\n$0\r\nx\r\n", RESP_ERR_NOT_BULK, ALL),
    /* payload too big, including lengths that overflow 32 and 64 bits */
    E("*1\r\n$8388609\r\n", RESP_ERR_TOO_BIG, ALL),
    E("*1\r\n$4294967295\r\n", RESP_ERR_TOO_BIG, ALL),
    E("*1\r\n$4294967297\r\n", RESP_ERR_TOO_BIG, ALL),
    E("*1\r\n$18446744073709551617\r\n", RESP_ERR_TOO_BIG, ALL),
    E("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$99999999999\r\n", RESP_ERR_TOO_BIG, ALL),
    /* header lines: at most 64 bytes with the CRLF, even before the CRLF arrives */
    E("*1\r\n$9999999999999999999999999999999999999999999999999999999999999\r\n", RESP_ERR_TOO_BIG,
      ALL),
    E("*1\r\n$99999999999999999999999999999999999999999999999999999999999999\r\n",
      RESP_ERR_NOT_BULK, ALL),
    E("*1\r\n$99999999999999999999999999999999999999999999999999999999999999999999",
      RESP_ERR_NOT_BULK, ALL),
    E("*9999999999999999999999999999999999999999999999999999999999999\r\n", RESP_ERR_TOO_MANY, ALL),
    E("*99999999999999999999999999999999999999999999999999999999999999\r\n", RESP_ERR_NOT_ARRAY,
      ALL),
    E("*-999999999999999999999999999999999999999999999999999999999999999999", RESP_ERR_NOT_ARRAY,
      ALL),
};

static void check_error(const struct error_case *c, const struct outcome *o)
{
    assert_int_equal(o->rc, c->rc);
    assert_int_equal(o->consumed, c->consumed == ALL ? o->fed : c->consumed);
}

static void test_errors(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(error_cases) / sizeof(error_cases[0]); k++) {
        const struct error_case *c = &error_cases[k];
        print_message("case %zu: %.*s\n", k, (int)(c->len > 40 ? 40 : c->len), c->in);
        struct outcome o = feed((const uint8_t *)c->in, c->len, c->len, 1);
        check_error(c, &o);
        free(o.data);
        /* same result however the bytes arrive */
        for (size_t cut = 0; cut <= c->len; cut++) {
            o = feed((const uint8_t *)c->in, c->len, cut, c->len);
            check_error(c, &o);
            free(o.data);
        }
        o = feed((const uint8_t *)c->in, c->len, 1, 1);
        check_error(c, &o);
        free(o.data);
    }
}

static void test_error_then_valid(void **state)
{
    (void)state;
    /* after every kind of error the parser is reset and takes a good request */
    const uint8_t good[] = "*1\r\n$4\r\nPING\r\n";
    for (size_t k = 0; k < sizeof(error_cases) / sizeof(error_cases[0]); k++) {
        const struct error_case *c = &error_cases[k];
        size_t consumed;
        resp_parser_init(&g_parser);
        /* leave the parser mid-request first, so the reset is what matters */
        int rc = resp_parse(&g_parser, (const uint8_t *)c->in, c->len / 2, &g_req, &consumed, NULL);
        if (rc == RESP_NEED_MORE)
            rc = resp_parse(&g_parser, (const uint8_t *)c->in, c->len, &g_req, &consumed, NULL);
        assert_int_equal(rc, c->rc);
        rc = resp_parse(&g_parser, good, sizeof(good) - 1, &g_req, &consumed, NULL);
        assert_int_equal(rc, RESP_DONE);
        assert_int_equal(consumed, sizeof(good) - 1);
        assert_int_equal(g_req.argc, 1);
        assert_memory_equal(g_req.argv[0].ptr, "PING", 4);
    }
}

static void test_no_args_then_pipelined(void **state)
{
    (void)state;
    const uint8_t in[] = "*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n";
    size_t consumed, off = 0;
    resp_parser_init(&g_parser);
    assert_int_equal(resp_parse(&g_parser, in, sizeof(in) - 1, &g_req, &consumed, NULL),
                     RESP_ERR_NO_ARGS);
    assert_int_equal(consumed, 4);
    off += consumed;
    assert_int_equal(resp_parse(&g_parser, in + off, sizeof(in) - 1 - off, &g_req, &consumed, NULL),
                     RESP_ERR_NO_ARGS);
    assert_int_equal(consumed, 5);
    off += consumed;
    assert_int_equal(resp_parse(&g_parser, in + off, sizeof(in) - 1 - off, &g_req, &consumed, NULL),
                     RESP_DONE);
    assert_int_equal(off + consumed, sizeof(in) - 1);
    assert_memory_equal(g_req.argv[0].ptr, "PING", 4);
}

static void test_error_replies(void **state)
{
    (void)state;
    assert_string_equal(resp_error_reply(RESP_ERR_NOT_ARRAY),
                        "-Malformed request, array expected\r\n");
    assert_string_equal(resp_error_reply(RESP_ERR_NOT_BULK), "-Malformed query string\r\n");
    assert_string_equal(resp_error_reply(RESP_ERR_NO_ARGS), "-Missing arguments\r\n");
    assert_string_equal(resp_error_reply(RESP_ERR_TOO_MANY), "-Too many arguments\r\n");
    assert_string_equal(resp_error_reply(RESP_ERR_TOO_BIG), "-Payload too big\r\n");
    assert_null(resp_error_reply(RESP_DONE));
    assert_null(resp_error_reply(RESP_NEED_MORE));
    assert_null(resp_error_reply(-99));
    assert_true(resp_error_closes(RESP_ERR_NOT_ARRAY));
    assert_true(resp_error_closes(RESP_ERR_TOO_BIG));
    assert_false(resp_error_closes(RESP_ERR_NOT_BULK));
    assert_false(resp_error_closes(RESP_ERR_NO_ARGS));
    assert_false(resp_error_closes(RESP_ERR_TOO_MANY));
    assert_false(resp_error_closes(RESP_DONE));
}

/* ---- limits and NEED_MORE hints ----------------------------------------------------- */

static void test_need_hints(void **state)
{
    (void)state;
    size_t consumed, need;
    resp_parser_init(&g_parser);
    need = 0;
    assert_int_equal(resp_parse(&g_parser, NULL, 0, &g_req, &consumed, &need), RESP_NEED_MORE);
    assert_int_equal(need, 1);
    assert_int_equal(consumed, 0);

    struct {
        const char *in;
        size_t len;
        size_t need;
    } cases[] = {
        {V("*"), 2},
        {V("*1\r"), 4},
        {V("*1\r\n$5"), 7},
        {V("*1\r\n$5\r\n"), 15},   /* 8 header bytes + 5 + CRLF */
        {V("*1\r\n$5\r\nhe"), 15}, /* the payload is not rescanned: same hint */
        {V("*1\r\n$5\r\nhello\r"), 15},
        {V("*2\r\n$5\r\nhello\r\n"), 16}, /* the next header: one more byte at least */
        {V("*1\r\n$8388608\r\n"), 14 + RESP_MAX_BULK + 2},
        {V("*1024\r\n"), 8},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        resp_parser_init(&g_parser);
        need = 0;
        consumed = 99;
        assert_int_equal(resp_parse(&g_parser, (const uint8_t *)cases[k].in, cases[k].len, &g_req,
                                    &consumed, &need),
                         RESP_NEED_MORE);
        assert_int_equal(need, cases[k].need);
        assert_int_equal(consumed, 0);
        /* NULL need is allowed */
        resp_parser_init(&g_parser);
        assert_int_equal(resp_parse(&g_parser, (const uint8_t *)cases[k].in, cases[k].len, &g_req,
                                    &consumed, NULL),
                         RESP_NEED_MORE);
    }
}

static void test_max_args(void **state)
{
    (void)state;
    struct qs_buf b;
    qs_buf_init(&b, 1 << 20);
    assert_int_equal(resp_add_array(&b, RESP_MAX_ARGS), 0);
    for (int i = 0; i < RESP_MAX_ARGS; i++) {
        uint8_t v[2] = {(uint8_t)i, (uint8_t)(i >> 8)};
        assert_int_equal(resp_add_bulk(&b, v, (size_t)(i % 3)), 0);
    }
    size_t consumed;
    resp_parser_init(&g_parser);
    assert_int_equal(resp_parse(&g_parser, qs_buf_ptr(&b), b.len, &g_req, &consumed, NULL),
                     RESP_DONE);
    assert_int_equal(consumed, b.len);
    assert_int_equal(g_req.argc, RESP_MAX_ARGS);
    for (int i = 0; i < RESP_MAX_ARGS; i++) {
        assert_int_equal(g_req.argv[i].len, (size_t)(i % 3));
        if (i % 3 >= 1)
            assert_int_equal(g_req.argv[i].ptr[0], (uint8_t)i);
        if (i % 3 == 2)
            assert_int_equal(g_req.argv[i].ptr[1], (uint8_t)(i >> 8));
    }
    qs_buf_free(&b);
}

static void test_max_bulk_and_request(void **state)
{
    (void)state;
    struct qs_buf b;
    qs_buf_init(&b, RESP_MAX_REQUEST + 4096);
    uint8_t *big = malloc(RESP_MAX_BULK);
    assert_non_null(big);
    for (size_t i = 0; i < RESP_MAX_BULK; i++)
        big[i] = (uint8_t)(i * 7);

    /* exactly 8 MiB is fine */
    assert_int_equal(resp_add_array(&b, 1), 0);
    assert_int_equal(resp_add_bulk(&b, big, RESP_MAX_BULK), 0);
    size_t consumed, need;
    resp_parser_init(&g_parser);
    assert_int_equal(resp_parse(&g_parser, qs_buf_ptr(&b), b.len, &g_req, &consumed, NULL),
                     RESP_DONE);
    assert_int_equal(consumed, b.len);
    assert_int_equal(g_req.argv[0].len, RESP_MAX_BULK);
    assert_memory_equal(g_req.argv[0].ptr, big, RESP_MAX_BULK);

    /* the whole request is capped: after an 8 MiB bulk (8388624 bytes so far) and a 10 byte
     * header, a bulk of 1048548 bytes ends the request at exactly RESP_MAX_REQUEST */
    qs_buf_reset(&b);
    assert_int_equal(resp_add_array(&b, 2), 0);
    assert_int_equal(resp_add_bulk(&b, big, RESP_MAX_BULK), 0);
    assert_int_equal(b.len, 8388624);
    size_t base = b.len;
    assert_int_equal(qs_buf_append(&b, "$1048548\r\n", 10), 0);
    resp_parser_init(&g_parser);
    assert_int_equal(resp_parse(&g_parser, qs_buf_ptr(&b), b.len, &g_req, &consumed, &need),
                     RESP_NEED_MORE);
    assert_int_equal(need, RESP_MAX_REQUEST);
    uint8_t *dst;
    assert_int_equal(qs_buf_reserve(&b, 1048548 + 2, &dst), 0);
    memset(dst, 'z', 1048548);
    memcpy(dst + 1048548, "\r\n", 2);
    qs_buf_commit(&b, 1048548 + 2);
    assert_int_equal(b.len, RESP_MAX_REQUEST);
    assert_int_equal(resp_parse(&g_parser, qs_buf_ptr(&b), b.len, &g_req, &consumed, &need),
                     RESP_DONE);
    assert_int_equal(consumed, RESP_MAX_REQUEST);
    assert_int_equal(g_req.argc, 2);
    assert_int_equal(g_req.argv[1].len, 1048548);

    /* one byte more and the request is too big, before its payload arrives */
    b.len = base;
    assert_int_equal(qs_buf_append(&b, "$1048549\r\n", 10), 0);
    resp_parser_init(&g_parser);
    assert_int_equal(resp_parse(&g_parser, qs_buf_ptr(&b), b.len, &g_req, &consumed, &need),
                     RESP_ERR_TOO_BIG);
    assert_int_equal(consumed, b.len);

    free(big);
    qs_buf_free(&b);
}

/* ---- writers ------------------------------------------------------------------------ */

static void expect_buf(struct qs_buf *b, const char *want, size_t n)
{
    assert_int_equal(b->len, n);
    assert_memory_equal(qs_buf_ptr(b), want, n);
    qs_buf_reset(b);
}

#define EXPECT(b, lit) expect_buf(b, lit, sizeof(lit) - 1)

static void test_writers(void **state)
{
    (void)state;
    struct qs_buf b;
    qs_buf_init(&b, 1 << 16);
    assert_int_equal(resp_add_status(&b, "OK"), 0);
    EXPECT(&b, "+OK\r\n");
    assert_int_equal(resp_add_status(&b, ""), 0);
    EXPECT(&b, "+\r\n");
    assert_int_equal(resp_add_error(&b, "Key not found"), 0);
    EXPECT(&b, "-Key not found\r\n");
    assert_int_equal(resp_add_int(&b, 0), 0);
    EXPECT(&b, ":0\r\n");
    assert_int_equal(resp_add_int(&b, -1), 0);
    EXPECT(&b, ":-1\r\n");
    assert_int_equal(resp_add_int(&b, 1234567890123), 0);
    EXPECT(&b, ":1234567890123\r\n");
    assert_int_equal(resp_add_int(&b, INT64_MAX), 0);
    EXPECT(&b, ":9223372036854775807\r\n");
    assert_int_equal(resp_add_int(&b, INT64_MIN), 0);
    EXPECT(&b, ":-9223372036854775808\r\n");
    assert_int_equal(resp_add_bulk(&b, "hello", 5), 0);
    EXPECT(&b, "$5\r\nhello\r\n");
    assert_int_equal(resp_add_bulk(&b, NULL, 0), 0);
    EXPECT(&b, "$0\r\n\r\n");
    assert_int_equal(resp_add_bulk(&b, "a\0\r\n", 4), 0);
    EXPECT(&b, "$4\r\na\0\r\n\r\n");
    assert_int_equal(resp_add_nil(&b), 0);
    EXPECT(&b, "$-1\r\n");
    assert_int_equal(resp_add_array(&b, 0), 0);
    EXPECT(&b, "*0\r\n");
    assert_int_equal(resp_add_array(&b, 1024), 0);
    EXPECT(&b, "*1024\r\n");
    assert_int_equal(resp_add_raw(&b, "-Payload too big\r\n", 18), 0);
    EXPECT(&b, "-Payload too big\r\n");

    /* a whole nested reply appends in order */
    assert_int_equal(resp_add_array(&b, 2), 0);
    assert_int_equal(resp_add_bulk(&b, "k", 1), 0);
    assert_int_equal(resp_add_array(&b, 3), 0);
    assert_int_equal(resp_add_nil(&b), 0);
    assert_int_equal(resp_add_int(&b, 42), 0);
    assert_int_equal(resp_add_status(&b, "PONG"), 0);
    EXPECT(&b, "*2\r\n$1\r\nk\r\n*3\r\n$-1\r\n:42\r\n+PONG\r\n");

    /* a line break would break the framing: refused, nothing written */
    assert_int_equal(resp_add_status(&b, "OK\r\n+EVIL"), QS_EINVAL);
    assert_int_equal(resp_add_error(&b, "bad\nline"), QS_EINVAL);
    assert_int_equal(resp_add_status(&b, "x\r"), QS_EINVAL);
    assert_int_equal(b.len, 0);
    qs_buf_free(&b);
}

static void test_writers_limit(void **state)
{
    (void)state;
    /* a full buffer refuses and stays unchanged (no half-written element) */
    struct qs_buf b;
    qs_buf_init(&b, 16);
    assert_int_equal(resp_add_status(&b, "OK"), 0);                /* 5 bytes */
    assert_int_equal(resp_add_bulk(&b, "12345678", 8), QS_ENOMEM); /* needs 14 */
    assert_int_equal(resp_add_error(&b, "0123456789"), QS_ENOMEM); /* needs 13 */
    assert_int_equal(resp_add_int(&b, -1234567890), QS_ENOMEM);    /* needs 14 */
    assert_int_equal(resp_add_raw(&b, "0123456789ab", 12), QS_ENOMEM);
    assert_int_equal(b.len, 5);
    assert_int_equal(resp_add_bulk(&b, "1234", 4), 0); /* 10 bytes: 15 in all */
    assert_int_equal(resp_add_nil(&b), QS_ENOMEM);
    assert_int_equal(resp_add_array(&b, 1), QS_ENOMEM);
    assert_int_equal(resp_add_raw(&b, "x", 1), 0);
    EXPECT(&b, "+OK\r\n$4\r\n1234\r\nx");
    /* sizes that would overflow size_t never wrap */
    assert_int_equal(resp_add_bulk(&b, "x", SIZE_MAX - 3), QS_ENOMEM);
    assert_int_equal(b.len, 0);
    qs_buf_free(&b);
}

static void test_roundtrip(void **state)
{
    (void)state;
    /* what the writers produce as a request, the parser reads back byte for byte */
    struct qs_buf b;
    qs_buf_init(&b, 1 << 20);
    const char *args[] = {"SET", "", "key with spaces", "\r\n\r\n", "*3\r\n"};
    const size_t n = sizeof(args) / sizeof(args[0]);
    assert_int_equal(resp_add_array(&b, n), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(resp_add_bulk(&b, args[i], strlen(args[i])), 0);
    size_t consumed;
    resp_parser_init(&g_parser);
    assert_int_equal(resp_parse(&g_parser, qs_buf_ptr(&b), b.len, &g_req, &consumed, NULL),
                     RESP_DONE);
    assert_int_equal(consumed, b.len);
    assert_int_equal(g_req.argc, (int)n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(g_req.argv[i].len, strlen(args[i]));
        if (*args[i])
            assert_memory_equal(g_req.argv[i].ptr, args[i], strlen(args[i]));
    }
    qs_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_one_shot),
        cmocka_unit_test(test_valid_split_everywhere),
        cmocka_unit_test(test_valid_trailing_bytes),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_then_valid),
        cmocka_unit_test(test_no_args_then_pipelined),
        cmocka_unit_test(test_error_replies),
        cmocka_unit_test(test_need_hints),
        cmocka_unit_test(test_max_args),
        cmocka_unit_test(test_max_bulk_and_request),
        cmocka_unit_test(test_writers),
        cmocka_unit_test(test_writers_limit),
        cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
