/* Unit tests for lib/toml: valid documents (checked through a canonical dump of the tree),
 * invalid ones (checked for line, column and reason), line numbers, lookups, limits and
 * allocation failures. Cases follow the examples and rules of the TOML 1.0 specification. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toml/toml.h"
#include "util/buf.h"

/* ---- allocation failure injection (the test links with --wrap=malloc,calloc,realloc) -- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static long g_alloc_countdown = -1; /* fail when it reaches 0; -1 = never */

static int alloc_fails(void)
{
    if (g_alloc_countdown < 0)
        return 0;
    return g_alloc_countdown-- == 0;
}

void *__wrap_malloc(size_t n)
{
    return alloc_fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    return alloc_fails() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    return alloc_fails() ? NULL : __real_realloc(p, n);
}

/* ---- a canonical dump: one line per root key, everything inline ----------------------- */

static void dump_value(struct qs_buf *b, const struct toml_value *v);

static void dump_str(struct qs_buf *b, const char *s, size_t n)
{
    assert_int_equal(qs_buf_append(b, "\"", 1), 0);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;
        if (c == '"' || c == '\\')
            rc = qs_buf_appendf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            rc = qs_buf_appendf(b, "\\u%04X", c);
        else
            rc = qs_buf_append(b, &c, 1);
        assert_int_equal(rc, 0);
    }
    assert_int_equal(qs_buf_append(b, "\"", 1), 0);
}

static void dump_value(struct qs_buf *b, const struct toml_value *v)
{
    int rc = 0;
    switch (v->type) {
    case TOML_TABLE:
        rc = qs_buf_append(b, "{", 1);
        for (size_t i = 0; !rc && i < v->u.table->len; i++) {
            rc = qs_buf_append(b, i ? ", " : "", i ? 2 : 0);
            dump_str(b, v->u.table->items[i].key, v->u.table->items[i].keylen);
            rc = rc ? rc : qs_buf_append(b, "=", 1);
            dump_value(b, &v->u.table->items[i].value);
        }
        rc = rc ? rc : qs_buf_append(b, "}", 1);
        break;
    case TOML_ARRAY:
        rc = qs_buf_append(b, "[", 1);
        for (size_t i = 0; !rc && i < v->u.array->len; i++) {
            rc = qs_buf_append(b, i ? ", " : "", i ? 2 : 0);
            dump_value(b, &v->u.array->items[i]);
        }
        rc = rc ? rc : qs_buf_append(b, "]", 1);
        break;
    case TOML_STRING:
        dump_str(b, v->u.str.ptr, v->u.str.len);
        break;
    case TOML_INTEGER:
        rc = qs_buf_appendf(b, "%lld", (long long)v->u.i);
        break;
    case TOML_FLOAT:
        if (isnan(v->u.f))
            rc = qs_buf_appendf(b, "nan");
        else
            rc = qs_buf_appendf(b, "%.17g", v->u.f);
        break;
    case TOML_BOOL:
        rc = qs_buf_appendf(b, "%s", v->u.b ? "true" : "false");
        break;
    case TOML_DATETIME:
        rc = qs_buf_appendf(b, "dt%d(%s)", (int)v->dt_kind, v->u.str.ptr);
        break;
    default:
        fail_msg("bad type %d", (int)v->type);
    }
    assert_int_equal(rc, 0);
}

/* Parses text (must succeed) and returns its dump; the caller frees it. */
static char *dump(const char *text, size_t len)
{
    struct toml_doc *doc = NULL;
    struct toml_error err;
    int rc = toml_parse(text, len, &doc, &err);
    if (rc)
        fail_msg("parse failed: %s\n--- input ---\n%s", qs_err_msg(), text);
    struct qs_buf b;
    qs_buf_init(&b, 1 << 20);
    const struct toml_table *root = toml_doc_root(doc);
    for (size_t i = 0; i < root->len; i++) {
        dump_str(&b, root->items[i].key, root->items[i].keylen);
        assert_int_equal(qs_buf_append(&b, "=", 1), 0);
        dump_value(&b, &root->items[i].value);
        assert_int_equal(qs_buf_append(&b, "\n", 1), 0);
    }
    assert_int_equal(qs_buf_append(&b, "", 1), 0);
    char *s = strdup((const char *)qs_buf_ptr(&b));
    assert_non_null(s);
    qs_buf_free(&b);
    toml_free(doc);
    return s;
}

/* ---- valid documents ------------------------------------------------------------------ */

struct valid_case {
    const char *name;
    const char *in;
    const char *out;
};

static const struct valid_case valid_cases[] = {
    {"empty", "", ""},
    {"only comments", "# hello\n\n   # there\t\n#", ""},
    {"comment after value", "key = \"value\"  # trailing comment\n", "\"key\"=\"value\"\n"},
    {"tabs", "a\t=\t1\t\n", "\"a\"=1\n"},
    {"byte order mark",
     "\xEF\xBB\xBF"
     "a = 1",
     "\"a\"=1\n"},
    {"bare keys", "key = 1\nbare_key = 2\nbare-key = 3\n1234 = 4\ntrue = 5\ninf = 6\n",
     "\"key\"=1\n\"bare_key\"=2\n\"bare-key\"=3\n\"1234\"=4\n\"true\"=5\n\"inf\"=6\n"},
    {"quoted keys",
     "\"127.0.0.1\" = 1\n\"character encoding\" = 2\n\"\xCA\x8E\xC7\x9D\xCA\x9E\" = 3\n"
     "'key2' = 4\n'quoted \"value\"' = 5\n\"\" = 6\n",
     "\"127.0.0.1\"=1\n\"character encoding\"=2\n\"\xCA\x8E\xC7\x9D\xCA\x9E\"=3\n\"key2\"=4\n"
     "\"quoted \\\"value\\\"\"=5\n\"\"=6\n"},
    {"escaped key", "\"a\\u0041\\tb\" = 1", "\"aA\\u0009b\"=1\n"},
    {"dotted keys",
     "name = \"Orange\"\nphysical.color = \"orange\"\nphysical.shape = \"round\"\n"
     "site.\"google.com\" = true\n",
     "\"name\"=\"Orange\"\n\"physical\"={\"color\"=\"orange\", \"shape\"=\"round\"}\n"
     "\"site\"={\"google.com\"=true}\n"},
    {"whitespace around dots",
     "fruit.name = \"banana\"\nfruit. color = \"yellow\"\nfruit . flavor = \"banana\"\n",
     "\"fruit\"={\"name\"=\"banana\", \"color\"=\"yellow\", \"flavor\"=\"banana\"}\n"},
    {"dotted keys out of order",
     "apple.type = \"fruit\"\norange.type = \"fruit\"\napple.skin = \"thin\"\n",
     "\"apple\"={\"type\"=\"fruit\", \"skin\"=\"thin\"}\n\"orange\"={\"type\"=\"fruit\"}\n"},
    {"number-like dotted key", "3.14159 = \"pi\"", "\"3\"={\"14159\"=\"pi\"}\n"},
    {"basic string escapes",
     "str = \"I'm a string. \\\"You can quote me\\\". Name\\tJos\\u00E9\\nLocation\\tSF.\"\n"
     "all = \"\\b\\t\\n\\f\\r\\\"\\\\\"\n",
     "\"str\"=\"I'm a string. \\\"You can quote me\\\". Name\\u0009Jos\xC3\xA9\\u000ALocation"
     "\\u0009SF.\"\n\"all\"=\"\\u0008\\u0009\\u000A\\u000C\\u000D\\\"\\\\\"\n"},
    {"unicode escapes to UTF-8",
     "a = \"\\u007F\\u0080\\u07FF\\u0800\\uFFFF\\U00010000\\U0010FFFF\\U0001F600\"\n",
     "\"a\"=\"\\u007F\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF"
     "\xF0\x9F\x98\x80\"\n"},
    {"NUL by escape", "a = \"x\\u0000y\"", "\"a\"=\"x\\u0000y\"\n"},
    {"multi-line basic", "str1 = \"\"\"\nRoses are red\nViolets are blue\"\"\"\n",
     "\"str1\"=\"Roses are red\\u000AViolets are blue\"\n"},
    {"line ending backslash",
     "str3 = \"\"\"\\\n       The quick brown \\\n\n\n       fox jumps over \\\n"
     "       the lazy dog.\\\n       \"\"\"\n"
     "str4 = \"\"\"a \\   \n  b\"\"\"\n",
     "\"str3\"=\"The quick brown fox jumps over the lazy dog.\"\n\"str4\"=\"a b\"\n"},
    {"quotes in multi-line basic",
     "str4 = \"\"\"Here are two quotation marks: \"\". Simple enough.\"\"\"\n"
     "str5 = \"\"\"Here are three quotation marks: \"\"\\\".\"\"\"\n"
     "str7 = \"\"\"\"This,\" she said, \"is just a pointless statement.\"\"\"\"\n"
     "e = \"\"\"\"\"\"\n",
     "\"str4\"=\"Here are two quotation marks: \\\"\\\". Simple enough.\"\n"
     "\"str5\"=\"Here are three quotation marks: \\\"\\\"\\\".\"\n"
     "\"str7\"=\"\\\"This,\\\" she said, \\\"is just a pointless statement.\\\"\"\n"
     "\"e\"=\"\"\n"},
    {"literal strings",
     "winpath = 'C:\\Users\\nodejs\\templates'\nregex = '<\\i\\c*\\s*>'\n"
     "quoted = 'Tom \"Dubs\" Preston-Werner'\nempty = ''\n",
     "\"winpath\"=\"C:\\\\Users\\\\nodejs\\\\templates\"\n\"regex\"=\"<\\\\i\\\\c*\\\\s*>\"\n"
     "\"quoted\"=\"Tom \\\"Dubs\\\" Preston-Werner\"\n\"empty\"=\"\"\n"},
    {"multi-line literal",
     "regex2 = '''I [dw]on't need \\d{2} apples'''\n"
     "lines = '''\nThe first newline is\ntrimmed in raw strings.\n   All other whitespace\n"
     "   is preserved.\n'''\n",
     "\"regex2\"=\"I [dw]on't need \\\\d{2} apples\"\n\"lines\"=\"The first newline is\\u000A"
     "trimmed in raw strings.\\u000A   All other whitespace\\u000A   is preserved.\\u000A\"\n"},
    {"quotes in multi-line literal",
     "quot15 = '''Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"'''\n"
     "apos15 = \"Here are fifteen apostrophes: '''''''''''''''\"\n"
     "str = ''''That,' she said, 'is still pointless.''''\n"
     "x = '''''x'''''\n",
     "\"quot15\"=\"Here are fifteen quotation marks: "
     "\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\"\n"
     "\"apos15\"=\"Here are fifteen apostrophes: '''''''''''''''\"\n"
     "\"str\"=\"'That,' she said, 'is still pointless.'\"\n\"x\"=\"''x''\"\n"},
    {"integers",
     "int1 = +99\nint2 = 42\nint3 = 0\nint4 = -17\nint5 = 1_000\nint6 = 5_349_221\n"
     "int7 = 53_49_221\nint8 = 1_2_3_4_5\nz1 = +0\nz2 = -0\n",
     "\"int1\"=99\n\"int2\"=42\n\"int3\"=0\n\"int4\"=-17\n\"int5\"=1000\n\"int6\"=5349221\n"
     "\"int7\"=5349221\n\"int8\"=12345\n\"z1\"=0\n\"z2\"=0\n"},
    {"hex octal binary",
     "hex1 = 0xDEADBEEF\nhex2 = 0xdeadbeef\nhex3 = 0xdead_beef\noct1 = 0o01234567\n"
     "oct2 = 0o755\nbin1 = 0b11010110\nh0 = 0x0\nhmax = 0x7FFFFFFFFFFFFFFF\n",
     "\"hex1\"=3735928559\n\"hex2\"=3735928559\n\"hex3\"=3735928559\n\"oct1\"=342391\n"
     "\"oct2\"=493\n\"bin1\"=214\n\"h0\"=0\n\"hmax\"=9223372036854775807\n"},
    {"integer limits", "max = 9223372036854775807\nmin = -9223372036854775808\n",
     "\"max\"=9223372036854775807\n\"min\"=-9223372036854775808\n"},
    {"floats",
     "flt1 = +1.0\nflt2 = 3.1415\nflt3 = -0.01\nflt4 = 5e+22\nflt5 = 1e06\nflt6 = -2E-2\n"
     "flt7 = 6.626e-34\nflt8 = 224_617.445_991_228\nz = 0e0\nsmall = 1e-400\n",
     "\"flt1\"=1\n\"flt2\"=3.1415000000000002\n\"flt3\"=-0.01\n\"flt4\"=4.9999999999999996e+22\n"
     "\"flt5\"=1000000\n\"flt6\"=-0.02\n\"flt7\"=6.6259999999999998e-34\n"
     "\"flt8\"=224617.44599122801\n\"z\"=0\n\"small\"=0\n"},
    {"special floats", "sf1 = inf\nsf2 = +inf\nsf3 = -inf\nsf4 = nan\nsf5 = +nan\nsf6 = -nan\n",
     "\"sf1\"=inf\n\"sf2\"=inf\n\"sf3\"=-inf\n\"sf4\"=nan\n\"sf5\"=nan\n\"sf6\"=nan\n"},
    {"booleans", "bool1 = true\nbool2 = false\n", "\"bool1\"=true\n\"bool2\"=false\n"},
    {"date-times",
     "odt1 = 1979-05-27T07:32:00Z\nodt2 = 1979-05-27T00:32:00-07:00\n"
     "odt3 = 1979-05-27T00:32:00.999999-07:00\nodt4 = 1979-05-27 07:32:00Z\n"
     "ldt1 = 1979-05-27T07:32:00\nld1 = 1979-05-27\nlt1 = 07:32:00\nlt2 = 00:32:00.999999\n"
     "leap = 2000-02-29\nsec60 = 23:59:60\nlow = 1979-05-27t07:32:00z\n",
     "\"odt1\"=dt1(1979-05-27T07:32:00Z)\n\"odt2\"=dt1(1979-05-27T00:32:00-07:00)\n"
     "\"odt3\"=dt1(1979-05-27T00:32:00.999999-07:00)\n\"odt4\"=dt1(1979-05-27 07:32:00Z)\n"
     "\"ldt1\"=dt2(1979-05-27T07:32:00)\n\"ld1\"=dt3(1979-05-27)\n\"lt1\"=dt4(07:32:00)\n"
     "\"lt2\"=dt4(00:32:00.999999)\n\"leap\"=dt3(2000-02-29)\n\"sec60\"=dt4(23:59:60)\n"
     "\"low\"=dt1(1979-05-27t07:32:00z)\n"},
    {"date then comment", "d = 1979-05-27 # a date\n", "\"d\"=dt3(1979-05-27)\n"},
    {"arrays",
     "integers = [ 1, 2, 3 ]\ncolors = [ \"red\", \"yellow\", \"green\" ]\n"
     "nested = [ [ 1, 2 ], [3, 4, 5] ]\nmixed = [ [ 1, 2 ], [\"a\", \"b\", \"c\"] ]\n"
     "strings = [ \"all\", 'strings', \"\"\"are the same\"\"\", '''type''' ]\n"
     "numbers = [ 0.1, 0.2, 0.5, 1, 2, 5 ]\n",
     "\"integers\"=[1, 2, 3]\n\"colors\"=[\"red\", \"yellow\", \"green\"]\n"
     "\"nested\"=[[1, 2], [3, 4, 5]]\n\"mixed\"=[[1, 2], [\"a\", \"b\", \"c\"]]\n"
     "\"strings\"=[\"all\", \"strings\", \"are the same\", \"type\"]\n"
     "\"numbers\"=[0.10000000000000001, 0.20000000000000001, 0.5, 1, 2, 5]\n"},
    {"multi-line arrays",
     "contributors = [\n  \"Foo Bar <foo@example.com>\",\n"
     "  { name = \"Baz Qux\", email = \"bazqux@example.com\" }\n]\n"
     "i2 = [\n  1, 2, 3\n]\ni3 = [\n  1,\n  2, # this is ok\n]\n"
     "e1 = [ ]\ne2 = [\n]\nc = [ # comment\n 1 # c\n , # x\n 2 ]\n",
     "\"contributors\"=[\"Foo Bar <foo@example.com>\", {\"name\"=\"Baz Qux\", "
     "\"email\"=\"bazqux@example.com\"}]\n\"i2\"=[1, 2, 3]\n\"i3\"=[1, 2]\n\"e1\"=[]\n\"e2\"=[]\n"
     "\"c\"=[1, 2]\n"},
    {"tables",
     "[table-1]\nkey1 = \"some string\"\nkey2 = 123\n\n[table-2]\nkey1 = \"another string\"\n"
     "key2 = 456\n",
     "\"table-1\"={\"key1\"=\"some string\", \"key2\"=123}\n"
     "\"table-2\"={\"key1\"=\"another string\", \"key2\"=456}\n"},
    {"quoted header", "[dog.\"tater.man\"]\ntype.name = \"pug\"\n",
     "\"dog\"={\"tater.man\"={\"type\"={\"name\"=\"pug\"}}}\n"},
    {"whitespace in headers", "[a.b.c]\n[ d.e.f ]\n[ g .  h  . i ]\n[ j . \"\xCA\x9E\" . 'l' ]\n",
     "\"a\"={\"b\"={\"c\"={}}}\n\"d\"={\"e\"={\"f\"={}}}\n\"g\"={\"h\"={\"i\"={}}}\n"
     "\"j\"={\"\xCA\x9E\"={\"l\"={}}}\n"},
    {"super-table defined after", "[x.y.z.w]\n[x]\na = 1\n",
     "\"x\"={\"y\"={\"z\"={\"w\"={}}}, \"a\"=1}\n"},
    {"header into dotted table",
     "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.texture]\n"
     "smooth = true\n",
     "\"fruit\"={\"apple\"={\"color\"=\"red\", \"taste\"={\"sweet\"=true}, "
     "\"texture\"={\"smooth\"=true}}}\n"},
    {"tables out of order", "[fruit.apple]\n[animal]\n[fruit.orange]\n",
     "\"fruit\"={\"apple\"={}, \"orange\"={}}\n\"animal\"={}\n"},
    {"root keys then tables", "name = \"Fido\"\nbreed = \"pug\"\n[owner]\nname = \"Regina\"\n",
     "\"name\"=\"Fido\"\n\"breed\"=\"pug\"\n\"owner\"={\"name\"=\"Regina\"}\n"},
    {"inline tables",
     "name = { first = \"Tom\", last = \"Preston-Werner\" }\npoint = { x = 1, y = 2 }\n"
     "animal = { type.name = \"pug\" }\nempty = {}\nnested = { a = { b = [ {c = 1} ] } }\n",
     "\"name\"={\"first\"=\"Tom\", \"last\"=\"Preston-Werner\"}\n\"point\"={\"x\"=1, \"y\"=2}\n"
     "\"animal\"={\"type\"={\"name\"=\"pug\"}}\n\"empty\"={}\n"
     "\"nested\"={\"a\"={\"b\"=[{\"c\"=1}]}}\n"},
    {"array of tables",
     "[[products]]\nname = \"Hammer\"\nsku = 738594937\n\n[[products]]  # empty\n\n"
     "[[products]]\nname = \"Nail\"\nsku = 284758393\n\ncolor = \"gray\"\n",
     "\"products\"=[{\"name\"=\"Hammer\", \"sku\"=738594937}, {}, {\"name\"=\"Nail\", "
     "\"sku\"=284758393, \"color\"=\"gray\"}]\n"},
    {"nested arrays of tables",
     "[[fruits]]\nname = \"apple\"\n\n[fruits.physical]\ncolor = \"red\"\nshape = \"round\"\n\n"
     "[[fruits.varieties]]\nname = \"red delicious\"\n\n[[fruits.varieties]]\n"
     "name = \"granny smith\"\n\n[[fruits]]\nname = \"banana\"\n\n[[fruits.varieties]]\n"
     "name = \"plantain\"\n",
     "\"fruits\"=[{\"name\"=\"apple\", \"physical\"={\"color\"=\"red\", \"shape\"=\"round\"}, "
     "\"varieties\"=[{\"name\"=\"red delicious\"}, {\"name\"=\"granny smith\"}]}, "
     "{\"name\"=\"banana\", \"varieties\"=[{\"name\"=\"plantain\"}]}]\n"},
    {"implicit table then array of tables", "[[a.b]]\nx = 1\n[a]\ny = 2\n",
     "\"a\"={\"b\"=[{\"x\"=1}], \"y\"=2}\n"},
    {"array of inline tables",
     "points = [ { x = 1, y = 2, z = 3 },\n           { x = 7, y = 8, z = 9 } ]\n",
     "\"points\"=[{\"x\"=1, \"y\"=2, \"z\"=3}, {\"x\"=7, \"y\"=8, \"z\"=9}]\n"},
    {"CRLF", "a = 1\r\nb = \"\"\"x\r\ny\"\"\"\r\n# c\r\n[t]\r\nc = [\r\n1,\r\n]\r\n",
     "\"a\"=1\n\"b\"=\"x\\u000Ay\"\n\"t\"={\"c\"=[1]}\n"},
    {"mixed array types", "m = [1, \"a\", 2.5, true, [], {}, 1979-05-27]\n",
     "\"m\"=[1, \"a\", 2.5, true, [], {}, dt3(1979-05-27)]\n"},
    {"0-stor_v2 groups layout",
     "[[groups]]\n[[groups.backends]]\naddress = \"[fe80::1]:9900\"\n\n[[groups.backends]]\n"
     "address = \"[fe80::1]:9900\"\nnamespace = \"test\"\n\n[[groups]]\n[[groups.backends]]\n"
     "address = \"[::1]:1\"\n",
     "\"groups\"=[{\"backends\"=[{\"address\"=\"[fe80::1]:9900\"}, "
     "{\"address\"=\"[fe80::1]:9900\", "
     "\"namespace\"=\"test\"}]}, {\"backends\"=[{\"address\"=\"[::1]:1\"}]}]\n"},
};

static void test_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct valid_case *c = &valid_cases[i];
        char *got = dump(c->in, strlen(c->in));
        if (strcmp(got, c->out) != 0)
            fail_msg("case '%s':\n--- got ---\n%s--- want ---\n%s", c->name, got, c->out);
        free(got);
    }
}

/* ---- invalid documents ---------------------------------------------------------------- */

struct invalid_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    unsigned line, column;
    const char *msg; /* a substring of the message */
};

static const struct invalid_case invalid_cases[] = {
    /* key/value pairs */
    {"key = # INVALID", 0, 1, 7, "expected a value"},
    {"key =", 0, 1, 6, "expected a value"},
    {"first = \"Tom\" last = \"Preston-Werner\"", 0, 1, 15, "expected the end of the line"},
    {"= \"no key name\"", 0, 1, 1, "expected a key"},
    {"a 1", 0, 1, 3, "expected '=' after the key"},
    {"a = 1 # c\nb\n", 0, 2, 2, "expected '=' after the key, found end of line"},
    {"a.= 1", 0, 1, 3, "expected a key"},
    {"a. .b = 1", 0, 1, 4, "expected a key"},
    {"\"\"\"key\"\"\" = 1", 0, 1, 1, "multi-line string cannot be a key"},
    {"name = \"Tom\"\nname = \"Pradyun\"", 0, 2, 1,
     "duplicate key 'name' (first defined on line 1)"},
    {"spelling = \"favorite\"\n\"spelling\" = \"favourite\"", 0, 2, 1, "duplicate key"},
    {"a.b = 1\na.b = 2", 0, 2, 1, "duplicate key 'a.b'"},
    {"fruit.apple = 1\nfruit.apple.smooth = true", 0, 2, 7,
     "key 'fruit.apple' is already an integer"},
    {"a = 1\na.b = 2", 0, 2, 1, "key 'a' is already an integer"},
    /* tables */
    {"[fruit]\napple = \"red\"\n[fruit]\norange = \"orange\"", 0, 3, 1,
     "table [fruit] is already defined by a header (line 1)"},
    {"[a]\n[a.b]\n[a]", 0, 3, 1, "already defined by a header"},
    {"[fruit]\napple = \"red\"\n[fruit.apple]", 0, 3, 1, "is already a string"},
    {"[fruit]\napple.color = \"red\"\n[fruit.apple]", 0, 3, 1,
     "table [fruit.apple] is already defined by dotted keys"},
    {"[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.taste]", 0, 4, 1,
     "defined by dotted keys"},
    {"[product]\ntype = { name = \"Nail\" }\ntype.edible = false", 0, 3, 1,
     "cannot add keys to 'type', an inline table"},
    {"[product]\ntype.name = \"Nail\"\ntype = { edible = false }", 0, 3, 1, "duplicate key 'type'"},
    {"a = {}\n[a.b]", 0, 2, 2, "inline table"},
    {"a = {}\n[a]", 0, 2, 1, "already defined as an inline table"},
    {"[a.b.c]\nz = 9\n[a]\nb.c.t = 1", 0, 4, 1, "cannot add keys to table 'b'"},
    {"[a.b.c.d]\nz = 9\n[a]\nb.c.d.k.t = 1", 0, 4, 1, "cannot add keys to table 'b'"},
    {"a.b = 1\n[a.b]", 0, 2, 1, "already an integer"},
    {"[[fruits]]\nname=\"apple\"\n[[fruits.varieties]]\nname = \"red delicious\"\n"
     "[fruits.varieties]\nname = \"granny smith\"",
     0, 5, 1, "[fruits.varieties] is an array of tables (line 3): use [[fruits.varieties]]"},
    {"[fruit.physical]\ncolor = \"red\"\n[[fruit]]", 0, 3, 1, "is already a table"},
    {"fruits = []\n[[fruits]]", 0, 2, 1, "static array"},
    {"a = [{b = 1}]\n[a.c]", 0, 2, 2, "key 'a' is already an array"},
    {"[a", 0, 1, 3, "expected ']' to close the table header"},
    {"[a]]", 0, 1, 4, "expected the end of the line after the table header"},
    {"[[a]", 0, 1, 4, "expected ']]'"},
    {"[[a] ]", 0, 1, 4, "expected ']]'"},
    {"[ [a]]", 0, 1, 3, "expected a key"},
    {"[]", 0, 1, 2, "expected a key"},
    {"[a.]", 0, 1, 4, "expected a key"},
    {"[a] b = 1", 0, 1, 5, "expected the end of the line after the table header"},
    /* integers */
    {"a = 0123", 0, 1, 5, "leading zeros"},
    {"a = -01", 0, 1, 5, "leading zeros"},
    {"a = 0_0", 0, 1, 5, "leading zeros"},
    {"a = 1__2", 0, 1, 5, "underscore"},
    {"a = 1_", 0, 1, 5, "underscore"},
    {"a = _1", 0, 1, 5, "expected a value"},
    {"a = 0x_1", 0, 1, 5, "invalid hexadecimal integer"},
    {"a = 0x", 0, 1, 5, "invalid hexadecimal integer"},
    {"a = 0xG", 0, 1, 5, "invalid hexadecimal integer"},
    {"a = 0o8", 0, 1, 5, "invalid octal integer"},
    {"a = 0b2", 0, 1, 5, "invalid binary integer"},
    {"a = +0x1", 0, 1, 5, "sign is not allowed"},
    {"a = 0X1", 0, 1, 5, "invalid number"},
    {"a = 9223372036854775808", 0, 1, 5, "does not fit in 64 bits"},
    {"a = -9223372036854775809", 0, 1, 5, "does not fit in 64 bits"},
    {"a = 0x8000000000000000", 0, 1, 5, "does not fit in 64 bits"},
    {"a = 99999999999999999999999", 0, 1, 5, "does not fit in 64 bits"},
    {"a = 1-2", 0, 1, 5, "invalid number"},
    {"a = 1 2", 0, 1, 7, "expected the end of the line after the value"},
    /* floats */
    {"a = .7", 0, 1, 5, "expected a value"},
    {"a = 7.", 0, 1, 5, "digits must follow the decimal point"},
    {"a = 3.e+20", 0, 1, 5, "digits must follow the decimal point"},
    {"a = 1e", 0, 1, 5, "invalid float exponent"},
    {"a = 1e_2", 0, 1, 5, "invalid float exponent"},
    {"a = 1.2_", 0, 1, 5, "digits must follow the decimal point"},
    {"a = 01.5", 0, 1, 5, "leading zeros"},
    {"a = 1e400", 0, 1, 5, "float out of range"},
    {"a = infinity", 0, 1, 5, "expected a value"},
    {"a = NaN", 0, 1, 5, "expected a value"},
    {"a = +", 0, 1, 5, "expected a value"},
    /* booleans */
    {"a = True", 0, 1, 5, "expected a value"},
    {"a = truee", 0, 1, 9, "expected the end of the line"},
    /* strings */
    {"a = \"\\x41\"", 0, 1, 6, "invalid escape sequence: backslash followed by 'x'"},
    {"a = \"\\e\"", 0, 1, 6, "invalid escape sequence"},
    {"a = \"\\ \"", 0, 1, 6, "invalid escape sequence: backslash followed by a space"},
    {"a = \"\\uD800\"", 0, 1, 6, "not a Unicode scalar value"},
    {"a = \"\\U00110000\"", 0, 1, 6, "not a Unicode scalar value"},
    {"a = \"\\u12\"", 0, 1, 6, "exactly 4 hex digits"},
    {"a = \"\\U1234567\"", 0, 1, 6, "exactly 8 hex digits"},
    {"a = \"abc", 0, 1, 5, "unterminated string"},
    {"a = \"a\nb\"", 0, 1, 5, "unterminated string"},
    {"a = 'abc\n'", 0, 1, 5, "unterminated string"},
    {"a = \"\"\"abc", 0, 1, 5, "unterminated multi-line string"},
    {"a = '''abc''", 0, 1, 5, "unterminated multi-line string"},
    {"a = \"\"\"a\"\"\"\"\"\"", 0, 1, 9, "too many quotes"},
    {"a = \"\"\"a\\ b\"\"\"", 0, 1, 9, "invalid escape"},
    /* control characters and encoding */
    {"a = \"\x01\"", 0, 1, 6, "control character U+0001"},
    {"a = \"\x7f\"", 0, 1, 6, "control character U+007F"},
    {"# \x7f", 0, 1, 3, "control character U+007F"},
    {"a = '\x1b'", 0, 1, 6, "control character U+001B"},
    {"a = \"x\0\"", 7, 1, 7, "control character U+0000"},
    {"a = 1\r", 0, 1, 6, "carriage return not followed by a line feed"},
    {"a = \"\"\"x\ry\"\"\"", 0, 1, 9, "carriage return"},
    {"a = \"\xff\"", 0, 1, 6, "invalid UTF-8"},
    {"a = \"\xc0\xaf\"", 0, 1, 6, "invalid UTF-8"},
    {"a = \"\xed\xa0\x80\"", 0, 1, 6, "invalid UTF-8"},
    {"a = \"\xf4\x90\x80\x80\"", 0, 1, 6, "invalid UTF-8"},
    {"a = \"\xe2\x82", 0, 1, 6, "invalid UTF-8 (truncated sequence)"},
    {"\xce\xbb = \"\xe2\x82\xac\xe2\x82", 0, 1, 7, "invalid UTF-8"},
    /* arrays and inline tables */
    {"a = [1 2]", 0, 1, 8, "expected ',' or ']' in the array"},
    {"a = [1,,2]", 0, 1, 8, "expected a value"},
    {"a = [,]", 0, 1, 6, "expected a value"},
    {"a = [", 0, 1, 5, "unterminated array"},
    {"a = [1,\n2", 0, 1, 5, "unterminated array"},
    {"a = { b = 1, }", 0, 1, 14, "trailing comma"},
    {"a = { b = 1\n}", 0, 1, 12, "must end on the line it starts on"},
    {"a = {\nb = 1}", 0, 1, 6, "expected a key"},
    {"a = { b = 1, b = 2 }", 0, 1, 14, "duplicate key 'b'"},
    {"a = { b.c = 1, b = 2 }", 0, 1, 16, "duplicate key 'b'"},
    {"a = {b=1", 0, 1, 5, "unterminated inline table"},
    {"a = { b = 1 c = 2 }", 0, 1, 13, "expected ',' or '}' in the inline table"},
    /* date-times */
    {"a = 1979-02-30", 0, 1, 5, "no such day"},
    {"a = 1900-02-29", 0, 1, 5, "no such day"},
    {"a = 1979-13-01", 0, 1, 5, "no such day"},
    {"a = 1979-5-27", 0, 1, 5, "invalid date (expected YYYY-MM-DD)"},
    {"a = 1979-05-27T25:00:00", 0, 1, 5, "out of range"},
    {"a = 1979-05-27T07:32", 0, 1, 5, "expected HH:MM:SS after the date"},
    {"a = 07:32", 0, 1, 5, "invalid time"},
    {"a = 1979-05-27T07:32:00+25:00", 0, 1, 5, "out of range"},
    {"a = 1979-05-27T07:32:00+0700", 0, 1, 5, "invalid time offset"},
    {"a = 1979-05-27T07:32:00.", 0, 1, 5, "expected HH:MM:SS after the date"},
    {"a = 07:32:00Z", 0, 1, 13, "expected the end of the line"},
    /* positions: CRLF lines and characters (not bytes) as columns */
    {"a = 1\r\nb = @", 0, 2, 5, "expected a value"},
    {"\"\xCA\x8E\xC7\x9D\xCA\x9E\" = @", 0, 1, 9, "found '@'"},
};

static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
        const struct invalid_case *c = &invalid_cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        struct toml_doc *doc = (struct toml_doc *)&doc; /* must be reset to NULL */
        struct toml_error err;
        int rc = toml_parse(c->in, len, &doc, &err);
        if (rc != QS_EINVAL)
            fail_msg("case %zu (%s): rc %d, expected QS_EINVAL", i, c->in, rc);
        assert_null(doc);
        if (err.line != c->line || err.column != c->column || !strstr(err.msg, c->msg))
            fail_msg("case %zu (%s):\n got %u:%u: %s\nwant %u:%u: ...%s...", i, c->in, err.line,
                     err.column, err.msg, c->line, c->column, c->msg);
        char want[64];
        snprintf(want, sizeof(want), "line %u, column %u: ", c->line, c->column);
        assert_true(strncmp(qs_err_msg(), want, strlen(want)) == 0);
        assert_non_null(strstr(qs_err_msg(), c->msg));
    }
}

/* The same invalid documents with the error placed after a valid prefix of many lines keep
 * the right line number. */
static void test_error_line_after_prefix(void **state)
{
    (void)state;
    struct qs_buf b;
    qs_buf_init(&b, 1 << 20);
    for (int i = 0; i < 300; i++)
        assert_int_equal(qs_buf_appendf(&b, "k%d = \"\"\"\n\"\"\"\n", i), 0);
    assert_int_equal(qs_buf_appendf(&b, "[t]\nx = 1\nx = 2\n"), 0);
    struct toml_doc *doc;
    struct toml_error err;
    assert_int_equal(toml_parse((const char *)qs_buf_ptr(&b), b.len, &doc, &err), QS_EINVAL);
    assert_int_equal(err.line, 603);
    assert_int_equal(err.column, 1);
    assert_non_null(strstr(err.msg, "duplicate key 'x' (first defined on line 602)"));
    qs_buf_free(&b);
}

/* ---- tree access ---------------------------------------------------------------------- */

static void test_lines_and_lookup(void **state)
{
    (void)state;
    const char *text = "a = 1\n"
                       "b = [\n  2,\n  \"x\",\n]\n"
                       "\n"
                       "[t]\n"
                       "c.d = true\n"
                       "[[g]]\n"
                       "[[g.b]]\n"
                       "x = { y = 3 }\n"
                       "[[g]]\n";
    struct toml_doc *doc;
    assert_int_equal(toml_parse(text, strlen(text), &doc, NULL), 0);
    const struct toml_table *root = toml_doc_root(doc);
    assert_int_equal(root->len, 4);
    const struct toml_value *a = toml_table_get(root, "a");
    assert_non_null(a);
    assert_int_equal(a->type, TOML_INTEGER);
    assert_int_equal(a->line, 1);
    const struct toml_value *b = toml_table_get(root, "b");
    assert_int_equal(b->type, TOML_ARRAY);
    assert_int_equal(b->line, 2);
    assert_int_equal(b->u.array->len, 2);
    assert_int_equal(b->u.array->items[0].line, 3);
    assert_int_equal(b->u.array->items[1].line, 4);
    assert_string_equal(b->u.array->items[1].u.str.ptr, "x");
    assert_false(b->u.array->of_tables);
    const struct toml_value *t = toml_table_get(root, "t");
    assert_int_equal(t->line, 7);
    const struct toml_value *c = toml_table_get(t->u.table, "c");
    assert_int_equal(c->type, TOML_TABLE);
    assert_int_equal(c->line, 8);
    const struct toml_value *d = toml_table_get(c->u.table, "d");
    assert_int_equal(d->type, TOML_BOOL);
    assert_true(d->u.b);
    assert_int_equal(d->line, 8);
    const struct toml_value *g = toml_table_get(root, "g");
    assert_int_equal(g->type, TOML_ARRAY);
    assert_true(g->u.array->of_tables);
    assert_int_equal(g->u.array->len, 2);
    assert_int_equal(g->u.array->items[0].line, 9);
    assert_int_equal(g->u.array->items[1].line, 12);
    const struct toml_value *gb = toml_table_get(g->u.array->items[0].u.table, "b");
    assert_int_equal(gb->u.array->items[0].line, 10);
    const struct toml_value *x = toml_table_get(gb->u.array->items[0].u.table, "x");
    assert_int_equal(x->line, 11);
    assert_int_equal(toml_table_get(x->u.table, "y")->u.i, 3);
    assert_int_equal(toml_table_get(x->u.table, "y")->line, 11);
    assert_null(toml_table_get(root, "nope"));
    assert_null(toml_table_get(root, "A"));
    assert_string_equal(toml_type_name(TOML_DATETIME), "date-time");
    assert_string_equal(toml_type_name(TOML_BOOL), "boolean");
    toml_free(doc);
    toml_free(NULL);
}

static void test_nul_in_key(void **state)
{
    (void)state;
    const char *text = "\"a\\u0000b\" = 1\n\"a\" = 2\n";
    struct toml_doc *doc;
    assert_int_equal(toml_parse(text, strlen(text), &doc, NULL), 0);
    const struct toml_table *root = toml_doc_root(doc);
    assert_int_equal(root->len, 2);
    assert_int_equal(root->items[0].keylen, 3);
    assert_int_equal(toml_table_getn(root, "a\0b", 3)->u.i, 1);
    assert_int_equal(toml_table_get(root, "a")->u.i, 2);
    toml_free(doc);
}

/* Many keys in one table go through the hash index: lookups and duplicates still work. */
static void test_many_keys(void **state)
{
    (void)state;
    struct qs_buf b;
    qs_buf_init(&b, 1 << 20);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(qs_buf_appendf(&b, "key%d = %d\n", i, i), 0);
    struct toml_doc *doc;
    assert_int_equal(toml_parse((const char *)qs_buf_ptr(&b), b.len, &doc, NULL), 0);
    const struct toml_table *root = toml_doc_root(doc);
    assert_int_equal(root->len, 2000);
    for (int i = 0; i < 2000; i++) {
        char k[16];
        snprintf(k, sizeof(k), "key%d", i);
        const struct toml_value *v = toml_table_get(root, k);
        assert_non_null(v);
        assert_int_equal(v->u.i, i);
        assert_int_equal(v->line, i + 1);
    }
    assert_null(toml_table_get(root, "key2000"));
    toml_free(doc);

    assert_int_equal(qs_buf_appendf(&b, "key1234 = 0\n"), 0);
    struct toml_error err;
    assert_int_equal(toml_parse((const char *)qs_buf_ptr(&b), b.len, &doc, &err), QS_EINVAL);
    assert_int_equal(err.line, 2001);
    assert_non_null(strstr(err.msg, "duplicate key 'key1234' (first defined on line 1235)"));
    qs_buf_free(&b);
}

/* Nesting is bounded: TOML_MAX_DEPTH levels parse, one more does not, whichever way the
 * levels are written. */
static void test_depth_limit(void **state)
{
    (void)state;
    struct qs_buf b;
    for (int extra = 0; extra <= 1; extra++) {
        int n = TOML_MAX_DEPTH + extra;
        struct toml_doc *doc = NULL;
        struct toml_error err;
        int want = extra ? QS_EINVAL : 0;

        /* arrays */
        qs_buf_init(&b, 1 << 16);
        assert_int_equal(qs_buf_appendf(&b, "a = "), 0);
        for (int i = 0; i < n; i++)
            assert_int_equal(qs_buf_append(&b, "[", 1), 0);
        for (int i = 0; i < n; i++)
            assert_int_equal(qs_buf_append(&b, "]", 1), 0);
        assert_int_equal(toml_parse((const char *)qs_buf_ptr(&b), b.len, &doc, &err), want);
        if (extra)
            assert_non_null(strstr(err.msg, "nest deeper than 64"));
        toml_free(doc);
        qs_buf_free(&b);

        /* inline tables */
        qs_buf_init(&b, 1 << 16);
        assert_int_equal(qs_buf_appendf(&b, "a = "), 0);
        for (int i = 0; i < n; i++)
            assert_int_equal(qs_buf_appendf(&b, "{x = "), 0);
        assert_int_equal(qs_buf_appendf(&b, "1"), 0);
        for (int i = 0; i < n; i++)
            assert_int_equal(qs_buf_appendf(&b, "}"), 0);
        assert_int_equal(toml_parse((const char *)qs_buf_ptr(&b), b.len, &doc, &err), want);
        toml_free(doc);
        qs_buf_free(&b);

        /* a header with n parts, and a dotted key with n + 1 parts */
        qs_buf_init(&b, 1 << 16);
        assert_int_equal(qs_buf_append(&b, "[k", 2), 0);
        for (int i = 1; i < n; i++)
            assert_int_equal(qs_buf_append(&b, ".k", 2), 0);
        assert_int_equal(qs_buf_appendf(&b, "]\n"), 0);
        assert_int_equal(toml_parse((const char *)qs_buf_ptr(&b), b.len, &doc, &err), want);
        toml_free(doc);
        qs_buf_free(&b);
        qs_buf_init(&b, 1 << 16);
        assert_int_equal(qs_buf_append(&b, "k", 1), 0);
        for (int i = 0; i < n; i++)
            assert_int_equal(qs_buf_append(&b, ".k", 2), 0);
        assert_int_equal(qs_buf_appendf(&b, " = 1\n"), 0);
        assert_int_equal(toml_parse((const char *)qs_buf_ptr(&b), b.len, &doc, &err), want);
        toml_free(doc);
        qs_buf_free(&b);
    }

    /* a very deep input fails cleanly rather than recursing 100000 levels */
    qs_buf_init(&b, 1 << 20);
    assert_int_equal(qs_buf_appendf(&b, "a = "), 0);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(qs_buf_append(&b, "[", 1), 0);
    struct toml_doc *doc;
    assert_int_equal(toml_parse((const char *)qs_buf_ptr(&b), b.len, &doc, NULL), QS_EINVAL);
    qs_buf_free(&b);
}

static void test_null_and_empty(void **state)
{
    (void)state;
    struct toml_doc *doc;
    assert_int_equal(toml_parse(NULL, 0, &doc, NULL), 0);
    assert_int_equal(toml_doc_root(doc)->len, 0);
    toml_free(doc);
    /* len counts, not a NUL: the bytes after len are not read */
    assert_int_equal(toml_parse("a = 1@@@", 5, &doc, NULL), 0);
    assert_int_equal(toml_table_get(toml_doc_root(doc), "a")->u.i, 1);
    toml_free(doc);
}

/* Every allocation the parser makes may fail: the result is QS_ENOMEM, nothing leaks
 * (ASan checks at exit) and a later parse works. */
static void test_alloc_failures(void **state)
{
    (void)state;
    static const char text[] =
        "a = \"x\"\nb.c = [1, 2.5, {d = 'e'}, 1979-05-27]\n[t]\nk = \"\"\"\\u00E9\"\"\"\n"
        "[[g]]\n[[g.b]]\nx = 1\n[[g]]\n"
        "k0=0\nk1=1\nk2=2\nk3=3\nk4=4\nk5=5\nk6=6\nk7=7\nk8=8\nk9=9\nk10=0\nk11=1\nk12=2\n"
        "k13=3\nk14=4\nk15=5\nk16=6\nk17=7\n";
    int failures = 0;
    for (long n = 0;; n++) {
        struct toml_doc *doc;
        g_alloc_countdown = n;
        int rc = toml_parse(text, sizeof(text) - 1, &doc, NULL);
        g_alloc_countdown = -1;
        if (rc == 0) {
            toml_free(doc);
            break;
        }
        assert_int_equal(rc, QS_ENOMEM);
        assert_null(doc);
        failures++;
        assert_true(n < 100000);
    }
    assert_true(failures > 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_error_line_after_prefix),
        cmocka_unit_test(test_lines_and_lookup),
        cmocka_unit_test(test_nul_in_key),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_null_and_empty),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
