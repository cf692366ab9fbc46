/* Strict TOML 1.0 parser (see toml.h).
 *
 * One pass over the input after a pre-pass that checks UTF-8 and control characters for the
 * whole document. The parser keeps a "current table" that key/value lines go into and
 * resolves [headers], [[headers]] and dotted keys against the tree with TOML's rules about
 * which tables may be extended from where (the table origins below).
 */
#include "toml/toml.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How a table came to be; decides what may later add to it. */
enum origin {
    ORIGIN_ROOT = 0,
    ORIGIN_IMPLICIT, /* created as a parent of a [header]: a later [header] may define it */
    ORIGIN_HEADER,   /* defined by [header] or as an element of [[header]] */
    ORIGIN_DOTTED,   /* created by a dotted key: only more dotted keys of its section extend it */
    ORIGIN_INLINE,   /* { inline table }: closed when its brace closes */
};

#define INDEX_MIN 16 /* tables this long get a hash index */

/* A part of a (dotted) key as written. */
struct keypart {
    char *s;
    size_t len;
    size_t pos; /* offset in the input, for messages */
};

struct sbuf {
    char *p;
    size_t len, cap;
};

struct parser {
    const char *p;
    size_t len, pos;
    size_t line_pos; /* offset whose line number is line_no (a cache for line_at) */
    unsigned line_no;
    struct toml_doc *doc;
    struct toml_table *cur; /* the table key/value lines go into */
    struct toml_error *err;
    struct keypart parts[TOML_MAX_DEPTH + 1];
    size_t nparts;
    locale_t c_locale; /* for strtod, created on the first float */
};

/* ---- positions and errors ------------------------------------------------------------- */

static unsigned line_at(struct parser *ps, size_t at)
{
    if (at < ps->line_pos) {
        ps->line_pos = 0;
        ps->line_no = 1;
    }
    for (size_t i = ps->line_pos; i < at && i < ps->len; i++)
        if (ps->p[i] == '\n')
            ps->line_no++;
    ps->line_pos = at;
    return ps->line_no;
}

static unsigned column_at(const struct parser *ps, size_t at)
{
    size_t start = at > ps->len ? ps->len : at;
    while (start > 0 && ps->p[start - 1] != '\n')
        start--;
    unsigned col = 1;
    for (size_t i = start; i < at && i < ps->len; i++)
        if (((unsigned char)ps->p[i] & 0xC0) != 0x80)
            col++;
    return col;
}

static int fail(struct parser *ps, size_t at, const char *fmt, ...) QS_PRINTF(3, 4);

static int fail(struct parser *ps, size_t at, const char *fmt, ...)
{
    char msg[sizeof(ps->err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    unsigned line = line_at(ps, at), col = column_at(ps, at);
    if (ps->err) {
        ps->err->line = line;
        ps->err->column = col;
        snprintf(ps->err->msg, sizeof(ps->err->msg), "%s", msg);
    }
    return qs_err_set(QS_EINVAL, "line %u, column %u: %s", line, col, msg);
}

static int nomem(void)
{
    return qs_err_set(QS_ENOMEM, "toml: out of memory");
}

/* A short description of what is at offset at, for "found ..." in messages. */
static const char *describe(const struct parser *ps, size_t at, char buf[16])
{
    if (at >= ps->len)
        return "end of file";
    unsigned char c = (unsigned char)ps->p[at];
    if (c == '\n' || (c == '\r' && at + 1 < ps->len && ps->p[at + 1] == '\n'))
        return "end of line";
    if (c > 0x20 && c < 0x7F)
        snprintf(buf, 16, "'%c'", c);
    else if (c == ' ')
        return "a space";
    else if (c == '\t')
        return "a tab";
    else
        snprintf(buf, 16, "byte 0x%02X", c);
    return buf;
}

/* ---- the pre-pass: UTF-8 and control characters --------------------------------------- */

static int check_text(struct parser *ps)
{
    const unsigned char *s = (const unsigned char *)ps->p;
    size_t n = ps->len, i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c == '\r') {
                if (i + 1 >= n || s[i + 1] != '\n')
                    return fail(ps, i, "carriage return not followed by a line feed");
            } else if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F) {
                return fail(ps, i,
                            "control character U+%04X is not allowed (inside a string, "
                            "write it as an escape)",
                            c);
            }
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return fail(ps, i, "invalid UTF-8 (byte 0x%02X)", c);
        }
        if (n - i - 1 < need)
            return fail(ps, i, "invalid UTF-8 (truncated sequence)");
        if (s[i + 1] < lo || s[i + 1] > hi)
            return fail(ps, i, "invalid UTF-8 (byte 0x%02X after 0x%02X)", s[i + 1], c);
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return fail(ps, i, "invalid UTF-8 (byte 0x%02X in a sequence)", s[i + k]);
        i += need + 1;
    }
    return 0;
}

/* ---- small buffers -------------------------------------------------------------------- */

static int sbuf_grow(struct sbuf *b, size_t more)
{
    if (b->cap - b->len >= more + 1)
        return 0;
    size_t cap = b->cap ? b->cap : 32;
    while (cap - b->len < more + 1) {
        if (cap > SIZE_MAX / 2)
            return nomem();
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p)
        return nomem();
    b->p = p;
    b->cap = cap;
    return 0;
}

static int sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    int rc = sbuf_grow(b, n);
    if (rc)
        return rc;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int sbuf_addc(struct sbuf *b, char c)
{
    return sbuf_add(b, &c, 1);
}

/* Returns the buffer's bytes as a NUL-terminated string the caller owns. */
static char *sbuf_take(struct sbuf *b, size_t *len)
{
    if (!b->p && sbuf_grow(b, 0))
        return NULL;
    char *s = b->p;
    *len = b->len;
    s[b->len] = '\0';
    b->p = NULL;
    b->len = b->cap = 0;
    return s;
}

/* ---- the tree ------------------------------------------------------------------------- */

static void free_value(struct toml_value *v);

static void free_table(struct toml_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->len; i++) {
        free(t->items[i].key);
        free_value(&t->items[i].value);
    }
    free(t->items);
    free(t->index);
    free(t);
}

static void free_array(struct toml_array *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->len; i++)
        free_value(&a->items[i]);
    free(a->items);
    free(a);
}

static void free_value(struct toml_value *v)
{
    switch (v->type) {
    case TOML_TABLE:
        free_table(v->u.table);
        break;
    case TOML_ARRAY:
        free_array(v->u.array);
        break;
    case TOML_STRING:
    case TOML_DATETIME:
        free(v->u.str.ptr);
        break;
    default:
        break;
    }
    v->type = 0;
}

static uint32_t hash_key(const char *k, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

static struct toml_kv *table_find(const struct toml_table *t, const char *key, size_t n)
{
    if (t->index) {
        size_t mask = t->index_cap - 1;
        for (size_t h = hash_key(key, n) & mask;; h = (h + 1) & mask) {
            uint32_t slot = t->index[h];
            if (!slot)
                return NULL;
            struct toml_kv *kv = &t->items[slot - 1];
            if (kv->keylen == n && memcmp(kv->key, key, n) == 0)
                return kv;
        }
    }
    for (size_t i = 0; i < t->len; i++)
        if (t->items[i].keylen == n && memcmp(t->items[i].key, key, n) == 0)
            return &t->items[i];
    return NULL;
}

static void index_put(struct toml_table *t, size_t i)
{
    size_t mask = t->index_cap - 1;
    size_t h = hash_key(t->items[i].key, t->items[i].keylen) & mask;
    while (t->index[h])
        h = (h + 1) & mask;
    t->index[h] = (uint32_t)(i + 1);
}

/* Appends key (ownership passes to the table, also on failure) with value v (likewise). */
static int table_add(struct toml_table *t, char *key, size_t keylen, struct toml_value *v)
{
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4;
        struct toml_kv *items = cap < SIZE_MAX / sizeof(*items) && cap < UINT32_MAX
                                    ? realloc(t->items, cap * sizeof(*items))
                                    : NULL;
        if (!items) {
            free(key);
            free_value(v);
            return nomem();
        }
        t->items = items;
        t->cap = cap;
    }
    size_t i = t->len++;
    t->items[i].key = key;
    t->items[i].keylen = keylen;
    t->items[i].value = *v;
    v->type = 0;
    if (t->len >= INDEX_MIN && t->len * 2 > t->index_cap) {
        size_t cap = t->index_cap ? t->index_cap * 2 : 64;
        while (cap < t->len * 2)
            cap *= 2;
        uint32_t *index = calloc(cap, sizeof(*index));
        if (!index)
            return nomem(); /* the entry itself is in place and freed with the table */
        free(t->index);
        t->index = index;
        t->index_cap = cap;
        for (size_t k = 0; k < t->len; k++)
            index_put(t, k);
    } else if (t->index) {
        index_put(t, i);
    }
    return 0;
}

static int new_table(struct parser *ps, size_t at, unsigned depth, enum origin origin,
                     unsigned line, struct toml_value *out)
{
    if (depth > TOML_MAX_DEPTH)
        return fail(ps, at, "tables and arrays nest deeper than %d levels", TOML_MAX_DEPTH);
    struct toml_table *t = calloc(1, sizeof(*t));
    if (!t)
        return nomem();
    t->depth = depth;
    t->origin = (unsigned char)origin;
    memset(out, 0, sizeof(*out));
    out->type = TOML_TABLE;
    out->line = line;
    out->u.table = t;
    return 0;
}

static int new_array(struct parser *ps, size_t at, unsigned depth, bool of_tables, unsigned line,
                     struct toml_value *out)
{
    if (depth > TOML_MAX_DEPTH)
        return fail(ps, at, "tables and arrays nest deeper than %d levels", TOML_MAX_DEPTH);
    struct toml_array *a = calloc(1, sizeof(*a));
    if (!a)
        return nomem();
    a->depth = depth;
    a->of_tables = of_tables;
    memset(out, 0, sizeof(*out));
    out->type = TOML_ARRAY;
    out->line = line;
    out->u.array = a;
    return 0;
}

/* Appends v to a (ownership passes, also on failure). */
static int array_add(struct toml_array *a, struct toml_value *v)
{
    if (a->len == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4;
        struct toml_value *items =
            cap < SIZE_MAX / sizeof(*items) ? realloc(a->items, cap * sizeof(*items)) : NULL;
        if (!items) {
            free_value(v);
            return nomem();
        }
        a->items = items;
        a->cap = cap;
    }
    a->items[a->len++] = *v;
    v->type = 0;
    return 0;
}

/* ---- scanning ------------------------------------------------------------------------- */

static int peek(const struct parser *ps)
{
    return ps->pos < ps->len ? (unsigned char)ps->p[ps->pos] : -1;
}

static int peek_at(const struct parser *ps, size_t off)
{
    return ps->pos + off < ps->len ? (unsigned char)ps->p[ps->pos + off] : -1;
}

static void skip_ws(struct parser *ps)
{
    while (ps->pos < ps->len && (ps->p[ps->pos] == ' ' || ps->p[ps->pos] == '\t'))
        ps->pos++;
}

/* At a line end (LF or CRLF)? Returns its length, 0 if not. */
static size_t newline_len(const struct parser *ps, size_t at)
{
    if (at < ps->len && ps->p[at] == '\n')
        return 1;
    if (at + 1 < ps->len && ps->p[at] == '\r' && ps->p[at + 1] == '\n')
        return 2;
    return 0;
}

static void skip_comment(struct parser *ps)
{
    if (peek(ps) != '#')
        return;
    while (ps->pos < ps->len && !newline_len(ps, ps->pos))
        ps->pos++;
}

/* Whitespace, comments and newlines (inside arrays). */
static void skip_ws_nl(struct parser *ps)
{
    for (;;) {
        skip_ws(ps);
        skip_comment(ps);
        size_t nl = newline_len(ps, ps->pos);
        if (!nl)
            return;
        ps->pos += nl;
    }
}

/* After a key/value pair or a header: optional whitespace and comment, then the end of the
 * line or of the file. */
static int expect_eol(struct parser *ps, const char *after)
{
    skip_ws(ps);
    skip_comment(ps);
    if (ps->pos >= ps->len)
        return 0;
    size_t nl = newline_len(ps, ps->pos);
    if (nl) {
        ps->pos += nl;
        return 0;
    }
    char b[16];
    return fail(ps, ps->pos, "expected the end of the line after %s, found %s", after,
                describe(ps, ps->pos, b));
}

static bool is_bare(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ---- strings -------------------------------------------------------------------------- */

static int put_utf8(struct sbuf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return sbuf_add(b, u, n);
}

/* At a backslash inside a basic string: decodes one escape into b. */
static int parse_escape(struct parser *ps, struct sbuf *b)
{
    size_t at = ps->pos;
    ps->pos++; /* the backslash */
    int c = peek(ps);
    char simple = 0;
    switch (c) {
    case 'b':
        simple = '\b';
        break;
    case 't':
        simple = '\t';
        break;
    case 'n':
        simple = '\n';
        break;
    case 'f':
        simple = '\f';
        break;
    case 'r':
        simple = '\r';
        break;
    case '"':
        simple = '"';
        break;
    case '\\':
        simple = '\\';
        break;
    case 'u':
    case 'U': {
        size_t digits = c == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (size_t i = 1; i <= digits; i++) {
            int h = hex_value(peek_at(ps, i));
            if (h < 0)
                return fail(ps, at, "\\%c needs exactly %zu hex digits", c, digits);
            cp = cp << 4 | (uint32_t)h;
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return fail(ps, at, "\\%c%0*X is not a Unicode scalar value", c, (int)digits,
                        (unsigned)cp);
        ps->pos += 1 + digits;
        return put_utf8(b, cp);
    }
    default: {
        char d[16];
        return fail(ps, at, "invalid escape sequence: backslash followed by %s",
                    describe(ps, ps->pos, d));
    }
    }
    ps->pos++;
    return sbuf_addc(b, simple);
}

/* Single-line basic ("...") or literal ('...') string; ps->pos at the opening quote. */
static int parse_line_string(struct parser *ps, struct sbuf *b)
{
    size_t start = ps->pos;
    char q = ps->p[ps->pos++];
    for (;;) {
        int c = peek(ps);
        if (c < 0 || c == '\n' || c == '\r')
            return fail(ps, start, "unterminated string (a %s string ends on its line)",
                        q == '"' ? "basic" : "literal");
        if (c == q) {
            ps->pos++;
            return 0;
        }
        int rc;
        if (c == '\\' && q == '"') {
            rc = parse_escape(ps, b);
        } else {
            /* copy a run of plain bytes at once */
            size_t run = ps->pos;
            while (run < ps->len && ps->p[run] != q && ps->p[run] != '\n' && ps->p[run] != '\r' &&
                   !(q == '"' && ps->p[run] == '\\'))
                run++;
            rc = sbuf_add(b, ps->p + ps->pos, run - ps->pos);
            ps->pos = run;
        }
        if (rc)
            return rc;
    }
}

/* Multi-line basic ("""...""") or literal ('''...''') string; ps->pos at the first quote. */
static int parse_ml_string(struct parser *ps, struct sbuf *b)
{
    size_t start = ps->pos;
    char q = ps->p[ps->pos];
    ps->pos += 3;
    ps->pos += newline_len(ps, ps->pos); /* a newline right after the opening is trimmed */
    for (;;) {
        int c = peek(ps);
        int rc = 0;
        if (c < 0)
            return fail(ps, start, "unterminated multi-line string");
        if (c == q) {
            size_t run = 0;
            while (peek_at(ps, run) == q)
                run++;
            if (run < 3) {
                rc = sbuf_add(b, ps->p + ps->pos, run);
                ps->pos += run;
            } else if (run > 5) {
                return fail(ps, ps->pos, "too many quotes in a row in a multi-line string");
            } else {
                /* up to two quotes right before the closing delimiter belong to the string */
                rc = sbuf_add(b, ps->p + ps->pos, run - 3);
                ps->pos += run;
                return rc;
            }
        } else if (c == '\\' && q == '"') {
            /* a backslash at the end of a line eats the newline and the whitespace after */
            size_t i = ps->pos + 1;
            while (i < ps->len && (ps->p[i] == ' ' || ps->p[i] == '\t'))
                i++;
            if (newline_len(ps, i)) {
                ps->pos = i;
                for (;;) {
                    size_t nl = newline_len(ps, ps->pos);
                    if (nl)
                        ps->pos += nl;
                    else if (peek(ps) == ' ' || peek(ps) == '\t')
                        ps->pos++;
                    else
                        break;
                }
            } else {
                rc = parse_escape(ps, b);
            }
        } else if (c == '\r') {
            /* CRLF (the pre-pass allows no other CR) becomes LF */
            rc = sbuf_addc(b, '\n');
            ps->pos += 2;
        } else {
            size_t run = ps->pos;
            while (run < ps->len && ps->p[run] != q && ps->p[run] != '\r' &&
                   !(q == '"' && ps->p[run] == '\\'))
                run++;
            rc = sbuf_add(b, ps->p + ps->pos, run - ps->pos);
            ps->pos = run;
        }
        if (rc)
            return rc;
    }
}

static int parse_string(struct parser *ps, struct toml_value *out)
{
    struct sbuf b = {0};
    char q = ps->p[ps->pos];
    bool ml = peek_at(ps, 1) == q && peek_at(ps, 2) == q;
    int rc = ml ? parse_ml_string(ps, &b) : parse_line_string(ps, &b);
    if (rc) {
        free(b.p);
        return rc;
    }
    out->type = TOML_STRING;
    out->u.str.ptr = sbuf_take(&b, &out->u.str.len);
    if (!out->u.str.ptr) {
        out->type = 0;
        return nomem();
    }
    return 0;
}

/* ---- keys ----------------------------------------------------------------------------- */

static void clear_parts(struct parser *ps)
{
    for (size_t i = 0; i < ps->nparts; i++)
        free(ps->parts[i].s);
    ps->nparts = 0;
}

/* A key: bare or quoted parts joined by dots, whitespace allowed around the dots. Leaves
 * the decoded parts in ps->parts and ps->pos after the key and any whitespace after it. */
static int parse_key(struct parser *ps)
{
    clear_parts(ps);
    for (;;) {
        skip_ws(ps);
        if (ps->nparts == TOML_MAX_DEPTH + 1)
            return fail(ps, ps->pos, "a key has more than %d parts", TOML_MAX_DEPTH + 1);
        struct keypart *kp = &ps->parts[ps->nparts];
        kp->pos = ps->pos;
        int c = peek(ps);
        struct sbuf b = {0};
        int rc;
        if (c == '"' || c == '\'') {
            if (peek_at(ps, 1) == c && peek_at(ps, 2) == c)
                return fail(ps, ps->pos, "a multi-line string cannot be a key");
            rc = parse_line_string(ps, &b);
        } else if (is_bare(c)) {
            size_t end = ps->pos;
            while (end < ps->len && is_bare((unsigned char)ps->p[end]))
                end++;
            rc = sbuf_add(&b, ps->p + ps->pos, end - ps->pos);
            ps->pos = end;
        } else {
            char d[16];
            return fail(ps, ps->pos,
                        "expected a key (letters, digits, '_', '-' or a quoted string), found %s",
                        describe(ps, ps->pos, d));
        }
        if (!rc) {
            kp->s = sbuf_take(&b, &kp->len);
            rc = kp->s ? 0 : nomem();
        }
        if (rc) {
            free(b.p);
            return rc;
        }
        ps->nparts++;
        skip_ws(ps);
        if (peek(ps) != '.')
            return 0;
        ps->pos++;
    }
}

/* The key parts up to and including part n-1, dotted, for messages. */
static const char *key_text(const struct parser *ps, size_t n, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off + 1 < size; i++) {
        int w = snprintf(buf + off, size - off, "%s%.*s", i ? "." : "", (int)ps->parts[i].len,
                         ps->parts[i].s);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    if (off >= size && size > 4)
        memcpy(buf + size - 4, "...", 4);
    return buf;
}

/* Takes part i's string out of the parts (the caller owns it now). */
static char *take_part(struct parser *ps, size_t i)
{
    char *s = ps->parts[i].s;
    ps->parts[i].s = NULL;
    return s;
}

/* Walks the dotted prefix of a key/value key from table t (parts 0..n-2), creating tables as
 * needed. Only tables created by dotted keys (in this section) may be gone through. */
static int walk_dotted(struct parser *ps, struct toml_table *t, unsigned line,
                       struct toml_table **out)
{
    char kb[96];
    for (size_t i = 0; i + 1 < ps->nparts; i++) {
        struct keypart *kp = &ps->parts[i];
        struct toml_kv *kv = table_find(t, kp->s, kp->len);
        if (!kv) {
            struct toml_value v = {0};
            int rc = new_table(ps, kp->pos, t->depth + 1, ORIGIN_DOTTED, line, &v);
            if (rc)
                return rc;
            struct toml_table *nt = v.u.table;
            rc = table_add(t, take_part(ps, i), kp->len, &v);
            if (rc)
                return rc;
            t = nt;
            continue;
        }
        const struct toml_value *v = &kv->value;
        if (v->type == TOML_TABLE && v->u.table->origin == ORIGIN_DOTTED) {
            t = v->u.table;
            continue;
        }
        key_text(ps, i + 1, kb, sizeof(kb));
        if (v->type == TOML_TABLE && v->u.table->origin == ORIGIN_INLINE)
            return fail(ps, kp->pos, "cannot add keys to '%s', an inline table (line %u)", kb,
                        v->line);
        if (v->type == TOML_TABLE)
            return fail(ps, kp->pos,
                        "cannot add keys to table '%s' (line %u) with a dotted key from here", kb,
                        v->line);
        return fail(ps, kp->pos, "key '%s' is already %s %s (line %u), not a table", kb,
                    v->type == TOML_ARRAY || v->type == TOML_INTEGER ? "an" : "a",
                    toml_type_name(v->type), v->line);
    }
    *out = t;
    return 0;
}

/* ---- numbers and date-times ----------------------------------------------------------- */

/* Digits of the given base with single underscores between digits, from s[*i]. */
static bool scan_digits(const char *s, size_t n, size_t *i, int base)
{
    size_t start = *i;
    bool last_digit = false;
    while (*i < n) {
        int c = (unsigned char)s[*i];
        int v = hex_value(c);
        if (v >= 0 && v < base) {
            last_digit = true;
        } else if (c == '_' && last_digit) {
            last_digit = false;
        } else {
            break;
        }
        (*i)++;
    }
    return *i > start && last_digit;
}

static int parse_float_text(struct parser *ps, size_t at, const char *tok, size_t n,
                            struct toml_value *out)
{
    char clean[128];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (tok[i] == '_')
            continue;
        if (k + 1 >= sizeof(clean))
            return fail(ps, at, "float has too many digits");
        clean[k++] = tok[i];
    }
    clean[k] = '\0';
    if (!ps->c_locale) {
        ps->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (!ps->c_locale)
            return nomem();
    }
    char *end;
    double d = strtod_l(clean, &end, ps->c_locale);
    if (end != clean + k)
        return fail(ps, at, "invalid float");
    if (isinf(d))
        return fail(ps, at, "float out of range");
    out->type = TOML_FLOAT;
    out->u.f = d;
    return 0;
}

/* An integer or float token starting at ps->pos. */
static int parse_number(struct parser *ps, struct toml_value *out)
{
    size_t at = ps->pos, end = ps->pos;
    while (end < ps->len) {
        int c = (unsigned char)ps->p[end];
        if (!(is_bare(c) || c == '+' || c == '.'))
            break;
        end++;
    }
    const char *tok = ps->p + at;
    size_t n = end - at, i = 0;
    ps->pos = end;
    bool neg = false, sign = false;
    if (n && (tok[0] == '+' || tok[0] == '-')) {
        neg = tok[0] == '-';
        sign = true;
        i = 1;
    }
    if (n - i == 3 && (memcmp(tok + i, "inf", 3) == 0 || memcmp(tok + i, "nan", 3) == 0)) {
        out->type = TOML_FLOAT;
        out->u.f = tok[i] == 'i' ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
        return 0;
    }
    if (n - i >= 2 && tok[i] == '0' &&
        (tok[i + 1] == 'x' || tok[i + 1] == 'o' || tok[i + 1] == 'b')) {
        int base = tok[i + 1] == 'x' ? 16 : tok[i + 1] == 'o' ? 8 : 2;
        if (sign)
            return fail(ps, at, "a sign is not allowed on hexadecimal, octal or binary integers");
        size_t d = i + 2;
        if (!scan_digits(tok, n, &d, base) || d != n || tok[i + 2] == '_')
            return fail(ps, at, "invalid %s integer",
                        base == 16  ? "hexadecimal"
                        : base == 8 ? "octal"
                                    : "binary");
        uint64_t v = 0;
        for (size_t k = i + 2; k < n; k++) {
            if (tok[k] == '_')
                continue;
            uint64_t dv = (uint64_t)hex_value((unsigned char)tok[k]);
            if (v > ((uint64_t)INT64_MAX - dv) / (uint64_t)base)
                return fail(ps, at, "integer does not fit in 64 bits");
            v = v * (uint64_t)base + dv;
        }
        out->type = TOML_INTEGER;
        out->u.i = (int64_t)v;
        return 0;
    }
    size_t int_start = i;
    if (!scan_digits(tok, n, &i, 10) || tok[int_start] == '_') {
        char d[16];
        if (i == int_start)
            return fail(ps, at, "expected a value, found %s", describe(ps, at, d));
        return fail(ps, at, "invalid number (an underscore must sit between two digits)");
    }
    size_t int_end = i;
    if (int_end - int_start > 1 && tok[int_start] == '0')
        return fail(ps, at, "leading zeros are not allowed");
    bool is_float = false;
    if (i < n && tok[i] == '.') {
        i++;
        size_t f = i;
        if (!scan_digits(tok, n, &i, 10) || tok[f] == '_')
            return fail(ps, at, "invalid float (digits must follow the decimal point)");
        is_float = true;
    }
    if (i < n && (tok[i] == 'e' || tok[i] == 'E')) {
        i++;
        if (i < n && (tok[i] == '+' || tok[i] == '-'))
            i++;
        size_t e = i;
        if (!scan_digits(tok, n, &i, 10) || tok[e] == '_')
            return fail(ps, at, "invalid float exponent");
        is_float = true;
    }
    if (i != n)
        return fail(ps, at, "invalid number '%.*s'", (int)(n > 40 ? 40 : n), tok);
    if (is_float)
        return parse_float_text(ps, at, tok, n, out);
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t k = int_start; k < int_end; k++) {
        if (tok[k] == '_')
            continue;
        uint64_t dv = (uint64_t)(tok[k] - '0');
        if (v > (lim - dv) / 10)
            return fail(ps, at, "integer does not fit in 64 bits");
        v = v * 10 + dv;
    }
    out->type = TOML_INTEGER;
    out->u.i = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* n decimal digits at s[i..]; their value in *v. */
static bool digits_at(const char *s, size_t len, size_t i, size_t n, unsigned *v)
{
    if (len < i + n)
        return false;
    *v = 0;
    for (size_t k = i; k < i + n; k++) {
        if (!is_digit((unsigned char)s[k]))
            return false;
        *v = *v * 10 + (unsigned)(s[k] - '0');
    }
    return true;
}

/* HH:MM:SS(.fraction)? at s[i..]; returns the length, 0 if malformed, sets *bad on range. */
static size_t scan_time(const char *s, size_t len, size_t i, bool *bad)
{
    unsigned h, m, sec;
    if (!digits_at(s, len, i, 2, &h) || len < i + 3 || s[i + 2] != ':' ||
        !digits_at(s, len, i + 3, 2, &m) || len < i + 6 || s[i + 5] != ':' ||
        !digits_at(s, len, i + 6, 2, &sec))
        return 0;
    if (h > 23 || m > 59 || sec > 60)
        *bad = true;
    size_t k = i + 8;
    if (k < len && s[k] == '.') {
        size_t f = ++k;
        while (k < len && is_digit((unsigned char)s[k]))
            k++;
        if (k == f)
            return 0;
    }
    return k - i;
}

static int parse_datetime(struct parser *ps, struct toml_value *out)
{
    const char *s = ps->p;
    size_t len = ps->len, at = ps->pos, i = at;
    bool bad = false;
    enum toml_datetime_kind kind;
    if (len > at + 2 && s[at + 2] == ':') {
        size_t t = scan_time(s, len, i, &bad);
        if (!t)
            return fail(ps, at, "invalid time (expected HH:MM:SS)");
        i += t;
        kind = TOML_DT_TIME;
    } else {
        unsigned y, mo, d;
        if (!digits_at(s, len, i, 4, &y) || len < i + 5 || s[i + 4] != '-' ||
            !digits_at(s, len, i + 5, 2, &mo) || len < i + 8 || s[i + 7] != '-' ||
            !digits_at(s, len, i + 8, 2, &d))
            return fail(ps, at, "invalid date (expected YYYY-MM-DD)");
        static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
            return fail(ps, at, "invalid date (no such day)");
        i += 10;
        kind = TOML_DT_DATE;
        /* a time follows after 'T', 't' or one space (then it must look like a time) */
        if (i < len && (s[i] == 'T' || s[i] == 't' ||
                        (s[i] == ' ' && i + 3 < len && is_digit((unsigned char)s[i + 1]) &&
                         is_digit((unsigned char)s[i + 2]) && s[i + 3] == ':'))) {
            size_t t = scan_time(s, len, i + 1, &bad);
            if (!t)
                return fail(ps, at, "invalid date-time (expected HH:MM:SS after the date)");
            i += 1 + t;
            kind = TOML_DT_LOCAL;
            unsigned oh, om;
            if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
                i++;
                kind = TOML_DT_OFFSET;
            } else if (i < len && (s[i] == '+' || s[i] == '-')) {
                if (!digits_at(s, len, i + 1, 2, &oh) || len < i + 4 || s[i + 3] != ':' ||
                    !digits_at(s, len, i + 4, 2, &om))
                    return fail(ps, at, "invalid time offset (expected +HH:MM or -HH:MM)");
                if (oh > 23 || om > 59)
                    bad = true;
                i += 6;
                kind = TOML_DT_OFFSET;
            }
        }
    }
    if (bad)
        return fail(ps, at, "date-time field out of range");
    char *txt = malloc(i - at + 1);
    if (!txt)
        return nomem();
    memcpy(txt, s + at, i - at);
    txt[i - at] = '\0';
    out->type = TOML_DATETIME;
    out->dt_kind = kind;
    out->u.str.ptr = txt;
    out->u.str.len = i - at;
    ps->pos = i;
    return 0;
}

/* ---- values --------------------------------------------------------------------------- */

static int parse_value(struct parser *ps, unsigned depth, struct toml_value *out);

static int parse_array(struct parser *ps, unsigned depth, struct toml_value *out)
{
    size_t start = ps->pos;
    int rc = new_array(ps, start, depth, false, out->line, out);
    if (rc)
        return rc;
    struct toml_array *a = out->u.array;
    ps->pos++; /* [ */
    for (;;) {
        skip_ws_nl(ps);
        if (peek(ps) == ']') {
            ps->pos++;
            return 0;
        }
        if (peek(ps) < 0)
            return fail(ps, start, "unterminated array");
        struct toml_value v = {0};
        v.line = line_at(ps, ps->pos);
        rc = parse_value(ps, depth + 1, &v);
        if (!rc)
            rc = array_add(a, &v);
        if (rc) {
            free_value(&v);
            return rc;
        }
        skip_ws_nl(ps);
        int c = peek(ps);
        if (c == ',') {
            ps->pos++;
        } else if (c == ']') {
            ps->pos++;
            return 0;
        } else {
            char d[16];
            if (c < 0)
                return fail(ps, start, "unterminated array");
            return fail(ps, ps->pos, "expected ',' or ']' in the array, found %s",
                        describe(ps, ps->pos, d));
        }
    }
}

/* After "key =": parses the value into table t under the last key part. */
static int parse_keyval_into(struct parser *ps, struct toml_table *t, unsigned line)
{
    size_t key_pos = ps->parts[0].pos;
    struct toml_table *target = NULL;
    int rc = walk_dotted(ps, t, line, &target);
    if (rc)
        return rc;
    struct keypart *last = &ps->parts[ps->nparts - 1];
    struct toml_kv *dup = table_find(target, last->s, last->len);
    if (dup) {
        char kb[96];
        return fail(ps, key_pos, "duplicate key '%s' (first defined on line %u)",
                    key_text(ps, ps->nparts, kb, sizeof(kb)), dup->value.line);
    }
    size_t keylen = last->len;
    char *key = take_part(ps, ps->nparts - 1);
    if (peek(ps) != '=') {
        char d[16];
        free(key);
        return fail(ps, ps->pos, "expected '=' after the key, found %s", describe(ps, ps->pos, d));
    }
    ps->pos++;
    skip_ws(ps);
    struct toml_value v = {0};
    v.line = line_at(ps, ps->pos);
    rc = parse_value(ps, target->depth + 1, &v);
    if (rc) {
        free(key);
        free_value(&v);
        return rc;
    }
    return table_add(target, key, keylen, &v);
}

static int parse_inline_table(struct parser *ps, unsigned depth, struct toml_value *out)
{
    size_t start = ps->pos;
    int rc = new_table(ps, start, depth, ORIGIN_INLINE, out->line, out);
    if (rc)
        return rc;
    struct toml_table *t = out->u.table;
    ps->pos++; /* { */
    skip_ws(ps);
    if (peek(ps) == '}') {
        ps->pos++;
        return 0;
    }
    for (;;) {
        rc = parse_key(ps);
        if (!rc)
            rc = parse_keyval_into(ps, t, line_at(ps, ps->pos));
        clear_parts(ps);
        if (rc)
            return rc;
        skip_ws(ps);
        int c = peek(ps);
        if (c == '}') {
            ps->pos++;
            /* the dotted sub-tables close with their inline table: nothing can reach them
             * any more except through it, and it is ORIGIN_INLINE */
            return 0;
        }
        if (c == ',') {
            ps->pos++;
            skip_ws(ps);
            if (peek(ps) == '}')
                return fail(ps, ps->pos, "a trailing comma is not allowed in an inline table");
            continue;
        }
        char d[16];
        if (c < 0)
            return fail(ps, start, "unterminated inline table");
        if (newline_len(ps, ps->pos))
            return fail(ps, ps->pos, "an inline table must end on the line it starts on");
        return fail(ps, ps->pos, "expected ',' or '}' in the inline table, found %s",
                    describe(ps, ps->pos, d));
    }
}

static bool word_at(const struct parser *ps, const char *w, size_t n)
{
    return ps->len - ps->pos >= n && memcmp(ps->p + ps->pos, w, n) == 0;
}

/* A value at ps->pos; out->line is set by the caller. */
static int parse_value(struct parser *ps, unsigned depth, struct toml_value *out)
{
    int c = peek(ps);
    if (c == '"' || c == '\'')
        return parse_string(ps, out);
    if (c == '[')
        return parse_array(ps, depth, out);
    if (c == '{')
        return parse_inline_table(ps, depth, out);
    if (c == 't' && word_at(ps, "true", 4)) {
        ps->pos += 4;
        out->type = TOML_BOOL;
        out->u.b = true;
        return 0;
    }
    if (c == 'f' && word_at(ps, "false", 5)) {
        ps->pos += 5;
        out->type = TOML_BOOL;
        out->u.b = false;
        return 0;
    }
    if (is_digit(c) && ((is_digit(peek_at(ps, 1)) && peek_at(ps, 2) == ':') ||
                        (is_digit(peek_at(ps, 1)) && is_digit(peek_at(ps, 2)) &&
                         is_digit(peek_at(ps, 3)) && peek_at(ps, 4) == '-')))
        return parse_datetime(ps, out);
    if (is_digit(c) || c == '+' || c == '-' || c == 'i' || c == 'n')
        return parse_number(ps, out);
    char d[16];
    return fail(ps, ps->pos,
                "expected a value (string, number, boolean, date-time, array or inline table), "
                "found %s",
                describe(ps, ps->pos, d));
}

/* ---- lines: headers and key/value pairs ----------------------------------------------- */

/* [a.b.c] or [[a.b.c]]; ps->pos at the first '['. */
static int parse_header(struct parser *ps)
{
    size_t start = ps->pos;
    unsigned line = line_at(ps, start);
    bool aot = peek_at(ps, 1) == '[';
    ps->pos += aot ? 2 : 1;
    int rc = parse_key(ps);
    if (rc)
        return rc;
    if (peek(ps) != ']' || (aot && peek_at(ps, 1) != ']')) {
        char d[16];
        return fail(ps, ps->pos, "expected '%s' to close the table header, found %s",
                    aot ? "]]" : "]", describe(ps, ps->pos, d));
    }
    ps->pos += aot ? 2 : 1;
    char kb[96];
    struct toml_table *t = ps->doc->root.u.table;
    for (size_t i = 0; i + 1 < ps->nparts; i++) {
        struct keypart *kp = &ps->parts[i];
        struct toml_kv *kv = table_find(t, kp->s, kp->len);
        if (!kv) {
            struct toml_value v = {0};
            rc = new_table(ps, kp->pos, t->depth + 1, ORIGIN_IMPLICIT, line, &v);
            if (rc)
                return rc;
            struct toml_table *nt = v.u.table;
            rc = table_add(t, take_part(ps, i), kp->len, &v);
            if (rc)
                return rc;
            t = nt;
            continue;
        }
        struct toml_value *v = &kv->value;
        if (v->type == TOML_TABLE && v->u.table->origin != ORIGIN_INLINE) {
            t = v->u.table;
        } else if (v->type == TOML_ARRAY && v->u.array->of_tables) {
            struct toml_array *a = v->u.array;
            t = a->items[a->len - 1].u.table;
        } else {
            key_text(ps, i + 1, kb, sizeof(kb));
            if (v->type == TOML_TABLE)
                return fail(ps, kp->pos, "'%s' is an inline table (line %u) and cannot be extended",
                            kb, v->line);
            return fail(ps, kp->pos, "key '%s' is already %s %s (line %u), not a table", kb,
                        v->type == TOML_ARRAY || v->type == TOML_INTEGER ? "an" : "a",
                        toml_type_name(v->type), v->line);
        }
    }
    struct keypart *last = &ps->parts[ps->nparts - 1];
    struct toml_kv *kv = table_find(t, last->s, last->len);
    key_text(ps, ps->nparts, kb, sizeof(kb));
    if (!aot) {
        if (!kv) {
            struct toml_value v = {0};
            rc = new_table(ps, last->pos, t->depth + 1, ORIGIN_HEADER, line, &v);
            if (rc)
                return rc;
            struct toml_table *nt = v.u.table;
            rc = table_add(t, take_part(ps, ps->nparts - 1), last->len, &v);
            if (rc)
                return rc;
            ps->cur = nt;
        } else if (kv->value.type == TOML_TABLE && kv->value.u.table->origin == ORIGIN_IMPLICIT) {
            kv->value.u.table->origin = ORIGIN_HEADER;
            kv->value.line = line;
            ps->cur = kv->value.u.table;
        } else if (kv->value.type == TOML_TABLE) {
            unsigned char o = kv->value.u.table->origin;
            return fail(ps, start, "table [%s] is already defined %s (line %u)", kb,
                        o == ORIGIN_DOTTED   ? "by dotted keys"
                        : o == ORIGIN_INLINE ? "as an inline table"
                                             : "by a header",
                        kv->value.line);
        } else if (kv->value.type == TOML_ARRAY && kv->value.u.array->of_tables) {
            return fail(ps, start, "[%s] is an array of tables (line %u): use [[%s]]", kb,
                        kv->value.line, kb);
        } else {
            return fail(ps, start, "key '%s' is already %s %s (line %u), not a table", kb,
                        kv->value.type == TOML_ARRAY || kv->value.type == TOML_INTEGER ? "an" : "a",
                        toml_type_name(kv->value.type), kv->value.line);
        }
    } else {
        struct toml_array *a;
        if (!kv) {
            struct toml_value v = {0};
            rc = new_array(ps, last->pos, t->depth + 1, true, line, &v);
            if (rc)
                return rc;
            a = v.u.array;
            rc = table_add(t, take_part(ps, ps->nparts - 1), last->len, &v);
            if (rc)
                return rc;
        } else if (kv->value.type == TOML_ARRAY && kv->value.u.array->of_tables) {
            a = kv->value.u.array;
        } else {
            return fail(ps, start, "[[%s]]: key '%s' is already %s %s (line %u)", kb, kb,
                        kv->value.type == TOML_ARRAY || kv->value.type == TOML_INTEGER ? "an" : "a",
                        kv->value.type == TOML_ARRAY ? "static array"
                                                     : toml_type_name(kv->value.type),
                        kv->value.line);
        }
        struct toml_value v = {0};
        rc = new_table(ps, last->pos, a->depth + 1, ORIGIN_HEADER, line, &v);
        if (rc)
            return rc;
        struct toml_table *nt = v.u.table;
        rc = array_add(a, &v);
        if (rc)
            return rc;
        ps->cur = nt;
    }
    clear_parts(ps);
    return expect_eol(ps, "the table header");
}

static int parse_document(struct parser *ps)
{
    int rc = check_text(ps);
    if (rc)
        return rc;
    if (ps->len >= 3 && memcmp(ps->p, "\xEF\xBB\xBF", 3) == 0)
        ps->pos = 3; /* a UTF-8 byte order mark, as some editors write */
    while (ps->pos < ps->len) {
        skip_ws(ps);
        skip_comment(ps);
        if (ps->pos >= ps->len)
            break;
        size_t nl = newline_len(ps, ps->pos);
        if (nl) {
            ps->pos += nl;
            continue;
        }
        if (peek(ps) == '[') {
            rc = parse_header(ps);
        } else {
            rc = parse_key(ps);
            if (!rc)
                rc = parse_keyval_into(ps, ps->cur, line_at(ps, ps->pos));
            clear_parts(ps);
            if (!rc)
                rc = expect_eol(ps, "the value");
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- public --------------------------------------------------------------------------- */

int toml_parse(const char *text, size_t len, struct toml_doc **out, struct toml_error *err)
{
    *out = NULL;
    if (err)
        memset(err, 0, sizeof(*err));
    struct parser ps;
    memset(&ps, 0, sizeof(ps));
    ps.p = text ? text : "";
    ps.len = text ? len : 0;
    ps.line_no = 1;
    ps.err = err;
    ps.doc = calloc(1, sizeof(*ps.doc));
    if (!ps.doc)
        return nomem();
    int rc = new_table(&ps, 0, 0, ORIGIN_ROOT, 1, &ps.doc->root);
    if (!rc) {
        ps.cur = ps.doc->root.u.table;
        rc = parse_document(&ps);
    }
    clear_parts(&ps);
    if (ps.c_locale)
        freelocale(ps.c_locale);
    if (rc) {
        toml_free(ps.doc);
        return rc;
    }
    *out = ps.doc;
    return 0;
}

void toml_free(struct toml_doc *doc)
{
    if (!doc)
        return;
    free_value(&doc->root);
    free(doc);
}

const struct toml_table *toml_doc_root(const struct toml_doc *doc)
{
    return doc->root.u.table;
}

const struct toml_value *toml_table_getn(const struct toml_table *t, const char *key, size_t keylen)
{
    const struct toml_kv *kv = table_find(t, key, keylen);
    return kv ? &kv->value : NULL;
}

const struct toml_value *toml_table_get(const struct toml_table *t, const char *key)
{
    return toml_table_getn(t, key, strlen(key));
}

const char *toml_type_name(enum toml_type type)
{
    switch (type) {
    case TOML_TABLE:
        return "table";
    case TOML_ARRAY:
        return "array";
    case TOML_STRING:
        return "string";
    case TOML_INTEGER:
        return "integer";
    case TOML_FLOAT:
        return "float";
    case TOML_BOOL:
        return "boolean";
    case TOML_DATETIME:
        return "date-time";
    }
    return "value";
}
