/* A strict TOML 1.0 parser with a small read-only document tree.
 *
 * The whole input is parsed at once into a tree of tables, arrays and values; every value
 * keeps the line it starts on so that callers can say "line N" in their own messages. What
 * TOML 1.0 rejects is rejected: invalid UTF-8, control characters, duplicate keys, a table
 * defined twice, keys after a value on the same line, invalid escapes, integers that do not
 * fit 64 bits, leading zeros, and so on. Containers nest at most TOML_MAX_DEPTH levels
 * (counting every table and array below the root), so no input can exhaust the stack.
 *
 * Strings are decoded (escapes resolved, CRLF inside multi-line strings turned into LF) and
 * NUL-terminated; a string may still hold NUL bytes written as "\u0000", so use len.
 * Date-times are checked against TOML's grammar and ranges and kept as their source text.
 *
 * No global state; a document is immutable after toml_parse and may be read from several
 * threads. Everything is freed with one toml_free call.
 */
#ifndef QSFS_TOML_TOML_H
#define QSFS_TOML_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define TOML_MAX_DEPTH 64

enum toml_type {
    TOML_TABLE = 1,
    TOML_ARRAY,
    TOML_STRING,
    TOML_INTEGER,
    TOML_FLOAT,
    TOML_BOOL,
    TOML_DATETIME,
};

/* Which of TOML's four date-time forms a TOML_DATETIME value is. */
enum toml_datetime_kind {
    TOML_DT_OFFSET = 1, /* 1979-05-27T07:32:00Z, 1979-05-27 00:32:00.999-07:00 */
    TOML_DT_LOCAL,      /* 1979-05-27T07:32:00 */
    TOML_DT_DATE,       /* 1979-05-27 */
    TOML_DT_TIME,       /* 07:32:00.5 */
};

struct toml_table;
struct toml_array;

struct toml_value {
    enum toml_type type;
    unsigned line; /* 1-based line where the value starts (a table: its header or first key) */
    enum toml_datetime_kind dt_kind; /* TOML_DATETIME only */
    union {
        struct {
            char *ptr; /* NUL-terminated; may contain NUL bytes (STRING) */
            size_t len;
        } str;                    /* TOML_STRING, TOML_DATETIME (source text) */
        int64_t i;                /* TOML_INTEGER */
        double f;                 /* TOML_FLOAT */
        bool b;                   /* TOML_BOOL */
        struct toml_table *table; /* TOML_TABLE */
        struct toml_array *array; /* TOML_ARRAY */
    } u;
};

struct toml_kv {
    char *key; /* decoded key, NUL-terminated; may contain NUL bytes, so use keylen */
    size_t keylen;
    struct toml_value value;
};

/* Keys in the order they first appear. Read items[0..len); the other fields are the
 * parser's. */
struct toml_table {
    struct toml_kv *items;
    size_t len;
    size_t cap;
    unsigned depth;       /* 0 for the root */
    unsigned char origin; /* how the table came to be (parser-private) */
    uint32_t *index;      /* hash index once the table grows (parser-private) */
    size_t index_cap;
};

struct toml_array {
    struct toml_value *items;
    size_t len;
    size_t cap;
    unsigned depth;
    bool of_tables; /* created by [[header]] lines (an "array of tables") */
};

struct toml_doc {
    struct toml_value root; /* always a TOML_TABLE, line 1 */
};

/* Where and why a parse failed. line and column are 1-based; column counts characters. */
struct toml_error {
    unsigned line;
    unsigned column;
    char msg[200]; /* e.g. "expected '=' after the key, found end of line" */
};

/* Parses text[0..len) (need not be NUL-terminated) as a TOML 1.0 document.
 * On success *out is a new document the caller frees with toml_free. On failure *out is
 * NULL, the return code is QS_EINVAL for a malformed document (err, when not NULL, gets the
 * position and reason; qs_err_msg() reads "line L, column C: reason") or QS_ENOMEM. */
int toml_parse(const char *text, size_t len, struct toml_doc **out,
               struct toml_error *err) QS_MUST_CHECK;

/* Frees a document and everything in it. NULL is fine. */
void toml_free(struct toml_doc *doc);

/* The root table of a parsed document. */
const struct toml_table *toml_doc_root(const struct toml_doc *doc);

/* The value under key (a NUL-terminated key without NUL bytes) in t, or NULL. */
const struct toml_value *toml_table_get(const struct toml_table *t, const char *key);

/* Same for a key given with its length (may contain NUL bytes). */
const struct toml_value *toml_table_getn(const struct toml_table *t, const char *key,
                                         size_t keylen);

/* "table", "array", "string", "integer", "float", "boolean" or "date-time". */
const char *toml_type_name(enum toml_type type);

#endif
