/* Fuzz target for the RESP request parser.
 *
 * The input is a byte stream from one client. It is replayed like a connection (parse,
 * drop what was consumed, parse again) three ways: all bytes at once, one byte per read,
 * and in reads of pseudo-random sizes derived from a hash of the input. Every call gets a
 * fresh exact-size copy of the pending bytes, so a parser that kept a pointer across calls
 * or read past len is caught by ASan. Checked:
 *   - the contract of every result (consumed <= len, argv inside the request, need > len);
 *   - a parsed request re-encoded by the writers is byte-for-byte the bytes consumed (the
 *     accepted syntax has exactly one spelling per request);
 *   - the all-at-once run agrees with a simple non-incremental reference parser;
 *   - the split runs give the same sequence of results, requests and arguments.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp/resp.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* One result seen while replaying the stream. Offsets are absolute in the input. */
struct event {
    int rc;
    size_t start;    /* where the request began */
    size_t consumed; /* for RESP_DONE and RESP_ERR_NO_ARGS */
    size_t need;     /* for the final RESP_NEED_MORE */
    int argc;
    size_t first_arg; /* index into the run's args */
};

struct span {
    size_t off, len;
};

struct run {
    struct event *ev;
    size_t nev, evcap;
    struct span *args;
    size_t nargs, argcap;
};

static struct resp_parser parser;
static struct resp_request req;

/* ---- reference parser: from scratch over the whole buffer, one line at a time ---------- */

enum { REF_OK = 0, REF_MORE = 1, REF_BAD = -1 };

/* Reads the header line at *pos. A line may use RESP_MAX_LINE bytes: if it is not complete
 * and valid within them, it is bad as soon as the byte after them is there. */
static int ref_line(const uint8_t *d, size_t n, size_t *pos, char type, uint64_t *value,
                    int *negative)
{
    size_t start = *pos, i = start;
    size_t lim = n - start > RESP_MAX_LINE ? start + RESP_MAX_LINE : n;
    int end = lim < n ? REF_BAD : REF_MORE; /* result when the view runs out */
    if (i == lim)
        return end;
    if (d[i++] != (uint8_t)type)
        return REF_BAD;
    *negative = 0;
    if (type == '*' && i < lim && d[i] == '-') {
        *negative = 1;
        i++;
    }
    size_t digits = i;
    while (i < lim && d[i] >= '0' && d[i] <= '9')
        i++;
    size_t ndigits = i - digits;
    if (ndigits >= 2 && d[digits] == '0')
        return REF_BAD; /* leading zero */
    if (i == lim)
        return end;
    if (ndigits == 0 || d[i] != '\r')
        return REF_BAD;
    if (++i == lim)
        return end;
    if (d[i] != '\n')
        return REF_BAD;
    *value = 0;
    for (size_t k = digits; k < digits + ndigits; k++) {
        *value = *value * 10 + (uint64_t)(d[k] - '0');
        if (*value > UINT32_MAX)
            *value = UINT32_MAX;
    }
    *pos = i + 1;
    return REF_OK;
}

static int ref_parse(const uint8_t *d, size_t n, size_t *consumed, size_t *need, struct span *args,
                     int *argc)
{
    size_t pos = 0;
    uint64_t v;
    int neg;
    int rc = ref_line(d, n, &pos, '*', &v, &neg);
    if (rc == REF_MORE) {
        *need = n + 1;
        return RESP_NEED_MORE;
    }
    if (rc == REF_BAD)
        return RESP_ERR_NOT_ARRAY;
    if (neg || v == 0) {
        *consumed = pos;
        return RESP_ERR_NO_ARGS;
    }
    if (v > RESP_MAX_ARGS)
        return RESP_ERR_TOO_MANY;
    *argc = (int)v;
    for (int i = 0; i < *argc; i++) {
        rc = ref_line(d, n, &pos, '$', &v, &neg);
        if (rc == REF_MORE) {
            *need = n + 1;
            return RESP_NEED_MORE;
        }
        if (rc == REF_BAD)
            return RESP_ERR_NOT_BULK;
        if (v > RESP_MAX_BULK || pos + v + 2 > RESP_MAX_REQUEST)
            return RESP_ERR_TOO_BIG;
        if (n < pos + v + 2) {
            *need = pos + v + 2;
            return RESP_NEED_MORE;
        }
        if (d[pos + v] != '\r' || d[pos + v + 1] != '\n')
            return RESP_ERR_NOT_BULK;
        args[i].off = pos;
        args[i].len = v;
        pos += v + 2;
    }
    *consumed = pos;
    return RESP_DONE;
}

static struct span ref_args[RESP_MAX_ARGS];

/* ---- the replay ---------------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static struct event *add_event(struct run *r)
{
    if (r->nev == r->evcap) {
        r->evcap = r->evcap ? r->evcap * 2 : 16;
        r->ev = realloc(r->ev, r->evcap * sizeof(*r->ev));
        CHECK(r->ev);
    }
    struct event *e = &r->ev[r->nev++];
    memset(e, 0, sizeof(*e));
    return e;
}

static void add_arg(struct run *r, size_t off, size_t len)
{
    if (r->nargs == r->argcap) {
        r->argcap = r->argcap ? r->argcap * 2 : 64;
        r->args = realloc(r->args, r->argcap * sizeof(*r->args));
        CHECK(r->args);
    }
    r->args[r->nargs++] = (struct span){off, len};
}

/* Checks that the writers reproduce the request exactly. */
static void check_reencode(const uint8_t *d, size_t consumed)
{
    struct qs_buf b;
    qs_buf_init(&b, consumed);
    CHECK(resp_add_array(&b, (size_t)req.argc) == 0);
    for (int i = 0; i < req.argc; i++)
        CHECK(resp_add_bulk(&b, req.argv[i].ptr, req.argv[i].len) == 0);
    CHECK(b.len == consumed);
    CHECK(memcmp(qs_buf_ptr(&b), d, consumed) == 0);
    qs_buf_free(&b);
}

/* step: 0 = everything at once, 1 = one byte per read, 2 = pseudo-random reads. */
static void replay(const uint8_t *in, size_t size, int step, uint64_t seed, struct run *r)
{
    size_t base = 0, avail = step == 0 ? size : 0;
    resp_parser_init(&parser);
    for (;;) {
        size_t len = avail - base;
        uint8_t *copy = malloc(len ? len : 1);
        CHECK(copy);
        memcpy(copy, in + base, len);
        size_t consumed = 12345, need = 0;
        int rc = resp_parse(&parser, copy, len, &req, &consumed, &need);
        CHECK(consumed <= len);

        if (step == 0) {
            /* the reference parser sees the same pending bytes */
            size_t ref_consumed = 0, ref_need = 0;
            int ref_argc = 0;
            int ref_rc = ref_parse(copy, len, &ref_consumed, &ref_need, ref_args, &ref_argc);
            CHECK(ref_rc == rc);
            if (rc == RESP_DONE || rc == RESP_ERR_NO_ARGS)
                CHECK(ref_consumed == consumed);
            if (rc == RESP_NEED_MORE)
                CHECK(ref_need == need);
            if (rc == RESP_DONE) {
                CHECK(ref_argc == req.argc);
                for (int i = 0; i < req.argc; i++) {
                    CHECK(req.argv[i].ptr == copy + ref_args[i].off);
                    CHECK(req.argv[i].len == ref_args[i].len);
                }
            }
        }

        if (rc == RESP_DONE) {
            CHECK(consumed > 0 && consumed <= RESP_MAX_REQUEST);
            CHECK(req.argc >= 1 && req.argc <= RESP_MAX_ARGS);
            struct event *e = add_event(r);
            e->rc = rc;
            e->start = base;
            e->consumed = consumed;
            e->argc = req.argc;
            e->first_arg = r->nargs;
            for (int i = 0; i < req.argc; i++) {
                CHECK(req.argv[i].len <= RESP_MAX_BULK);
                CHECK(req.argv[i].ptr >= copy);
                CHECK(req.argv[i].ptr + req.argv[i].len <= copy + consumed);
                add_arg(r, base + (size_t)(req.argv[i].ptr - copy), req.argv[i].len);
            }
            check_reencode(copy, consumed);
            free(copy);
            base += consumed;
            continue;
        }
        free(copy);

        if (rc == RESP_NEED_MORE) {
            CHECK(consumed == 0);
            CHECK(need > len && need <= RESP_MAX_REQUEST + RESP_MAX_LINE);
            if (avail == size) {
                struct event *e = add_event(r);
                e->rc = rc;
                e->start = base;
                e->need = base + need;
                return;
            }
            size_t piece = 1;
            if (step == 2) {
                uint64_t x = splitmix(&seed);
                switch (x % 4) {
                case 0:
                case 1:
                    piece = 1 + (size_t)(x >> 8) % 8;
                    break;
                case 2:
                    piece = 1 + (size_t)(x >> 8) % 64;
                    break;
                default:
                    piece = 1 + (size_t)(x >> 8) % size;
                    break;
                }
            }
            avail = size - avail < piece ? size : avail + piece;
            continue;
        }

        /* an error */
        CHECK(rc < 0 && resp_error_reply(rc) != NULL);
        struct event *e = add_event(r);
        e->rc = rc;
        e->start = base;
        if (rc == RESP_ERR_NO_ARGS) {
            /* only the line goes; the stream goes on in step */
            CHECK(consumed > 0 && consumed <= len);
            e->consumed = consumed;
            base += consumed;
            continue;
        }
        /* Everything buffered is dropped, and how much that is depends on how the bytes
         * arrived: the runs can only be compared up to here. */
        CHECK(consumed == len);
        return;
    }
}

static void compare_runs(const struct run *a, const struct run *b)
{
    CHECK(a->nev == b->nev);
    for (size_t i = 0; i < a->nev; i++) {
        const struct event *x = &a->ev[i], *y = &b->ev[i];
        CHECK(x->rc == y->rc);
        CHECK(x->start == y->start);
        CHECK(x->consumed == y->consumed);
        CHECK(x->need == y->need);
        CHECK(x->argc == y->argc);
        for (int k = 0; k < x->argc; k++) {
            CHECK(a->args[x->first_arg + (size_t)k].off == b->args[y->first_arg + (size_t)k].off);
            CHECK(a->args[x->first_arg + (size_t)k].len == b->args[y->first_arg + (size_t)k].len);
        }
    }
}

static void free_run(struct run *r)
{
    free(r->ev);
    free(r->args);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t seed = 0xcbf29ce484222325ULL; /* FNV-1a of the input picks the read sizes */
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 0x100000001b3ULL;

    struct run whole = {0}, bytes = {0}, pieces = {0};
    replay(data, size, 0, seed, &whole);
    replay(data, size, 1, seed, &bytes);
    replay(data, size, 2, seed, &pieces);
    compare_runs(&whole, &bytes);
    compare_runs(&whole, &pieces);
    free_run(&whole);
    free_run(&bytes);
    free_run(&pieces);
    return 0;
}
