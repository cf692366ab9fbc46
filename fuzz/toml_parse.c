/* Fuzz target for the TOML parser.
 *
 * Every input is parsed. A failure must come with a position inside the input and a
 * message. A document that parses is written back out in a canonical form (every key
 * quoted, every table and array inline) and that text is parsed again: the two trees must
 * be equal, and writing the second tree must give the same text. This checks that what the
 * parser accepts it decodes consistently (strings, escapes, numbers, nesting, key order),
 * besides the crashes, leaks and undefined behaviour the sanitizers catch.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toml/toml.h"
#include "util/buf.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define OUT_MAX (64u << 20)

/* The bytes of b ("" when empty: an empty buffer has no storage yet). */
static const char *bytes(const struct qs_buf *b)
{
    return b->len ? (const char *)qs_buf_ptr(b) : "";
}

static void put(struct qs_buf *b, const char *s, size_t n)
{
    CHECK(qs_buf_append(b, s, n) == 0);
}

static void puts_(struct qs_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void write_string(struct qs_buf *b, const char *s, size_t n)
{
    puts_(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(b, e, 2);
        } else if (c < 0x20 || c == 0x7F) {
            CHECK(qs_buf_appendf(b, "\\u%04X", c) == 0);
        } else {
            put(b, (const char *)&c, 1);
        }
    }
    puts_(b, "\"");
}

static void write_value(struct qs_buf *b, const struct toml_value *v);

static void write_table_inline(struct qs_buf *b, const struct toml_table *t)
{
    puts_(b, "{");
    for (size_t i = 0; i < t->len; i++) {
        puts_(b, i ? ", " : " ");
        write_string(b, t->items[i].key, t->items[i].keylen);
        puts_(b, " = ");
        write_value(b, &t->items[i].value);
    }
    puts_(b, t->len ? " }" : "}");
}

static void write_value(struct qs_buf *b, const struct toml_value *v)
{
    char num[64];
    switch (v->type) {
    case TOML_TABLE:
        write_table_inline(b, v->u.table);
        break;
    case TOML_ARRAY:
        puts_(b, "[");
        for (size_t i = 0; i < v->u.array->len; i++) {
            if (i)
                puts_(b, ", ");
            write_value(b, &v->u.array->items[i]);
        }
        puts_(b, "]");
        break;
    case TOML_STRING:
        CHECK(v->u.str.ptr[v->u.str.len] == '\0');
        write_string(b, v->u.str.ptr, v->u.str.len);
        break;
    case TOML_INTEGER:
        snprintf(num, sizeof(num), "%lld", (long long)v->u.i);
        puts_(b, num);
        break;
    case TOML_FLOAT:
        if (isnan(v->u.f)) {
            puts_(b, "nan");
        } else if (isinf(v->u.f)) {
            puts_(b, v->u.f < 0 ? "-inf" : "inf");
        } else {
            snprintf(num, sizeof(num), "%.17g", v->u.f);
            puts_(b, num);
            if (!strpbrk(num, ".e"))
                puts_(b, ".0");
        }
        break;
    case TOML_BOOL:
        puts_(b, v->u.b ? "true" : "false");
        break;
    case TOML_DATETIME:
        CHECK(v->dt_kind >= TOML_DT_OFFSET && v->dt_kind <= TOML_DT_TIME);
        put(b, v->u.str.ptr, v->u.str.len);
        break;
    default:
        CHECK(!"bad value type");
    }
}

/* The whole document: one "key = value" line per root key. */
static void write_doc(struct qs_buf *b, const struct toml_doc *doc)
{
    const struct toml_table *root = toml_doc_root(doc);
    for (size_t i = 0; i < root->len; i++) {
        write_string(b, root->items[i].key, root->items[i].keylen);
        puts_(b, " = ");
        write_value(b, &root->items[i].value);
        puts_(b, "\n");
    }
}

static void check_equal(const struct toml_value *a, const struct toml_value *b)
{
    CHECK(a->type == b->type);
    switch (a->type) {
    case TOML_TABLE:
        CHECK(a->u.table->len == b->u.table->len);
        CHECK(a->u.table->depth == b->u.table->depth);
        for (size_t i = 0; i < a->u.table->len; i++) {
            const struct toml_kv *x = &a->u.table->items[i], *y = &b->u.table->items[i];
            CHECK(x->keylen == y->keylen && memcmp(x->key, y->key, x->keylen) == 0);
            CHECK(toml_table_getn(a->u.table, x->key, x->keylen) == &x->value);
            check_equal(&x->value, &y->value);
        }
        break;
    case TOML_ARRAY:
        CHECK(a->u.array->len == b->u.array->len);
        for (size_t i = 0; i < a->u.array->len; i++)
            check_equal(&a->u.array->items[i], &b->u.array->items[i]);
        break;
    case TOML_STRING:
    case TOML_DATETIME:
        CHECK(a->dt_kind == b->dt_kind);
        CHECK(a->u.str.len == b->u.str.len);
        CHECK(memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0);
        break;
    case TOML_INTEGER:
        CHECK(a->u.i == b->u.i);
        break;
    case TOML_FLOAT:
        CHECK((isnan(a->u.f) && isnan(b->u.f)) || memcmp(&a->u.f, &b->u.f, sizeof(double)) == 0);
        break;
    case TOML_BOOL:
        CHECK(a->u.b == b->u.b);
        break;
    default:
        CHECK(!"bad value type");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy so that reading past the end is caught */
    char *text = malloc(size ? size : 1);
    CHECK(text);
    if (size)
        memcpy(text, data, size);
    struct toml_doc *doc = NULL;
    struct toml_error err;
    int rc = toml_parse(text, size, &doc, &err);
    if (rc) {
        CHECK(rc == QS_EINVAL || rc == QS_ENOMEM);
        CHECK(doc == NULL);
        if (rc == QS_EINVAL) {
            size_t lines = 1;
            for (size_t i = 0; i < size; i++)
                lines += data[i] == '\n';
            CHECK(err.line >= 1 && err.line <= lines);
            CHECK(err.column >= 1 && err.column <= size + 1);
            CHECK(err.msg[0] != '\0');
        }
        free(text);
        return 0;
    }
    CHECK(doc && doc->root.type == TOML_TABLE);

    struct qs_buf one, two;
    qs_buf_init(&one, OUT_MAX);
    qs_buf_init(&two, OUT_MAX);
    write_doc(&one, doc);

    struct toml_doc *again = NULL;
    rc = toml_parse(bytes(&one), one.len, &again, &err);
    if (rc) {
        fprintf(stderr, "canonical form does not parse: %s\n%.*s\n", qs_err_msg(), (int)one.len,
                bytes(&one));
        abort();
    }
    check_equal(&doc->root, &again->root);
    write_doc(&two, again);
    CHECK(one.len == two.len);
    CHECK(memcmp(bytes(&one), bytes(&two), one.len) == 0);

    toml_free(again);
    toml_free(doc);
    qs_buf_free(&one);
    qs_buf_free(&two);
    free(text);
    return 0;
}
