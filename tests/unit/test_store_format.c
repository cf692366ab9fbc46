/* Unit tests for lib/store/format: every on-disk struct encoded and decoded against
 * hand-written byte arrays taken from the spec (shared/spec/zdb.md section 5), and every
 * decode error. Decoders always get an exact-size heap copy of their input, so a read
 * past the length they were given trips ASan. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "store/format.h"
#include "util/crc32c.h"

/* ---- helpers ------------------------------------------------------------------------ */

/* Exact-size heap copy of in[0..n) (n may be 0). */
static uint8_t *dup_bytes(const uint8_t *in, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    if (n)
        memcpy(p, in, n);
    return p;
}

static int idx_header_decode_copy(struct zdb_idx_header *h, const uint8_t *in, size_t n)
{
    uint8_t *c = dup_bytes(in, n);
    int rc = zdb_idx_header_decode(h, c, n);
    free(c);
    return rc;
}

static int idx_entry_decode_copy(struct zdb_idx_entry *e, const uint8_t *in, size_t n)
{
    uint8_t *c = dup_bytes(in, n);
    int rc = zdb_idx_entry_decode(e, c, n);
    free(c);
    return rc;
}

static int dat_header_decode_copy(struct zdb_dat_header *h, const uint8_t *in, size_t n)
{
    uint8_t *c = dup_bytes(in, n);
    int rc = zdb_dat_header_decode(h, c, n);
    free(c);
    return rc;
}

static int dat_entry_decode_copy(struct zdb_dat_entry *e, const uint8_t *in, size_t n)
{
    uint8_t *c = dup_bytes(in, n);
    int rc = zdb_dat_entry_decode(e, c, n);
    free(c);
    return rc;
}

static int nsfile_decode_copy(struct zdb_nsfile *f, const uint8_t *in, size_t n)
{
    uint8_t *c = dup_bytes(in, n);
    int rc = zdb_nsfile_decode(f, c, n);
    free(c);
    return rc;
}

/* ---- sizes -------------------------------------------------------------------------- */

static void test_sizes(void **state)
{
    (void)state;
    assert_int_equal(ZDB_IDX_HEADER_SIZE, 29);
    assert_int_equal(ZDB_IDX_ENTRY_SIZE, 34);
    assert_int_equal(ZDB_DAT_HEADER_SIZE, 28);
    assert_int_equal(ZDB_DAT_ENTRY_SIZE, 18);
    assert_int_equal(ZDB_NSFILE_HEADER_SIZE, 15);
    assert_int_equal(ZDB_SEQ_ENTRY_SIZE, 42);
    assert_int_equal(ZDB_IDX_VERSION, 4);
    assert_int_equal(ZDB_DAT_VERSION, 3);
    assert_int_equal(ZDB_NSFILE_VERSION, 1);
    assert_int_equal(ZDB_MAX_PAYLOAD, 8 * 1024 * 1024);
    assert_int_equal(ZDB_MAX_KEY, 255);
}

/* ---- CRC variant -------------------------------------------------------------------- */

static void test_crc_check_values(void **state)
{
    (void)state;
    /* 0-db's CRC-32C: initial value 0, no final xor (spec section 5). */
    assert_int_equal(qs_crc32c_zdb("123456789", 9), 0x58e3fa20u);
    assert_int_equal(qs_crc32c_zdb("hello", 5), 0xdf03cd79u);
    assert_int_equal(qs_crc32c_zdb("", 0), 0u); /* a tombstone's CRC */
}

/* ---- index header ------------------------------------------------------------------- */

static const uint8_t idx_header_bytes[29] = {
    'I',  'D',  'X',  '0',                          /* magic */
    0x04, 0x00, 0x00, 0x00,                         /* version 4 */
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* created */
    0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, /* opened */
    0x24, 0x23, 0x22, 0x21,                         /* fileid */
    0x01,                                           /* mode: seq */
};

static void test_idx_header_roundtrip(void **state)
{
    (void)state;
    struct zdb_idx_header h = {
        .version = ZDB_IDX_VERSION,
        .created = 0x0102030405060708ull,
        .opened = 0x1112131415161718ull,
        .fileid = 0x21222324u,
        .mode = ZDB_MODE_SEQ,
    };
    uint8_t out[ZDB_IDX_HEADER_SIZE];
    memset(out, 0xee, sizeof(out));
    zdb_idx_header_encode(out, &h);
    assert_memory_equal(out, idx_header_bytes, sizeof(idx_header_bytes));

    struct zdb_idx_header d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(idx_header_decode_copy(&d, idx_header_bytes, sizeof(idx_header_bytes)), 0);
    assert_int_equal(d.version, 4);
    assert_true(d.created == 0x0102030405060708ull);
    assert_true(d.opened == 0x1112131415161718ull);
    assert_int_equal(d.fileid, 0x21222324u);
    assert_int_equal(d.mode, ZDB_MODE_SEQ);

    /* user mode, and trailing bytes are ignored */
    uint8_t b[40];
    memcpy(b, idx_header_bytes, 29);
    b[28] = 0;
    memset(b + 29, 0xaa, sizeof(b) - 29);
    assert_int_equal(idx_header_decode_copy(&d, b, sizeof(b)), 0);
    assert_int_equal(d.mode, ZDB_MODE_USER);
}

static void test_idx_header_errors(void **state)
{
    (void)state;
    struct zdb_idx_header d;
    uint8_t b[29];

    for (size_t n = 0; n < 29; n++)
        assert_int_equal(idx_header_decode_copy(&d, idx_header_bytes, n), QS_ECORRUPT);

    memcpy(b, idx_header_bytes, 29);
    b[3] = '1'; /* IDX1 */
    assert_int_equal(idx_header_decode_copy(&d, b, 29), QS_ECORRUPT);
    memcpy(b, "DAT0", 4); /* a data file given as an index file */
    assert_int_equal(idx_header_decode_copy(&d, b, 29), QS_ECORRUPT);

    const uint32_t bad_versions[] = {0, 1, 2, 3, 5, 0x04000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++) {
        memcpy(b, idx_header_bytes, 29);
        b[4] = (uint8_t)bad_versions[i];
        b[5] = (uint8_t)(bad_versions[i] >> 8);
        b[6] = (uint8_t)(bad_versions[i] >> 16);
        b[7] = (uint8_t)(bad_versions[i] >> 24);
        assert_int_equal(idx_header_decode_copy(&d, b, 29), QS_ECORRUPT);
    }

    const uint8_t bad_modes[] = {2, 3, 0x80, 0xff};
    for (size_t i = 0; i < sizeof(bad_modes); i++) {
        memcpy(b, idx_header_bytes, 29);
        b[28] = bad_modes[i];
        assert_int_equal(idx_header_decode_copy(&d, b, 29), QS_ECORRUPT);
    }
}

/* ---- index entry -------------------------------------------------------------------- */

/* An index entry followed by its 5-byte key "hello". */
static const uint8_t idx_entry_bytes[34 + 5] = {
    0x05,                   /* keylen */
    0x0d, 0x0c, 0x0b, 0x0a, /* offset */
    0x03, 0x02, 0x01, 0x00, /* length 0x00010203 */
    0x14, 0x13, 0x12, 0x11, /* previous */
    0x01,                   /* flags: deleted */
    0x24, 0x23, 0x22, 0x21, /* dataid */
    0x34, 0x33, 0x32, 0x31, /* timestamp */
    0x44, 0x43, 0x42, 0x41, /* crc */
    0x54, 0x53, 0x52, 0x51, /* parentid */
    0x64, 0x63, 0x62, 0x61, /* parentoff */
    'h',  'e',  'l',  'l',  'o',
};

static void test_idx_entry_roundtrip(void **state)
{
    (void)state;
    struct zdb_idx_entry e = {
        .keylen = 5,
        .offset = 0x0a0b0c0du,
        .length = 0x00010203u,
        .previous = 0x11121314u,
        .flags = ZDB_IDX_DELETED,
        .dataid = 0x21222324u,
        .timestamp = 0x31323334u,
        .crc = 0x41424344u,
        .parentid = 0x51525354u,
        .parentoff = 0x61626364u,
    };
    uint8_t out[ZDB_IDX_ENTRY_SIZE + 5];
    memset(out, 0xee, sizeof(out));
    zdb_idx_entry_encode(out, &e);
    /* encode writes exactly the fixed part */
    assert_memory_equal(out, idx_entry_bytes, 34);
    for (size_t i = 34; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xee);
    memcpy(out + 34, "hello", 5);
    assert_memory_equal(out, idx_entry_bytes, sizeof(idx_entry_bytes));

    struct zdb_idx_entry d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(idx_entry_decode_copy(&d, idx_entry_bytes, sizeof(idx_entry_bytes)), 0);
    assert_int_equal(d.keylen, 5);
    assert_int_equal(d.offset, 0x0a0b0c0du);
    assert_int_equal(d.length, 0x00010203u);
    assert_int_equal(d.previous, 0x11121314u);
    assert_int_equal(d.flags, ZDB_IDX_DELETED);
    assert_int_equal(d.dataid, 0x21222324u);
    assert_int_equal(d.timestamp, 0x31323334u);
    assert_int_equal(d.crc, 0x41424344u);
    assert_int_equal(d.parentid, 0x51525354u);
    assert_int_equal(d.parentoff, 0x61626364u);
    assert_memory_equal(idx_entry_bytes + ZDB_IDX_ENTRY_SIZE, "hello", d.keylen);

    /* the fixed part alone decodes (the key is the caller's business) */
    assert_int_equal(idx_entry_decode_copy(&d, idx_entry_bytes, 34), 0);

    /* a seq-mode entry: 8-byte LE id as key, 42 bytes in all */
    struct zdb_idx_entry s = {.keylen = 8, .offset = 28, .length = 3, .dataid = 0};
    uint8_t sb[ZDB_SEQ_ENTRY_SIZE];
    zdb_idx_entry_encode(sb, &s);
    const uint8_t id7[8] = {7, 0, 0, 0, 0, 0, 0, 0};
    memcpy(sb + 34, id7, 8);
    const uint8_t sexp[42] = {8, 28, 0, 0, 0, 3, 0, 0, 0, [34] = 7};
    assert_memory_equal(sb, sexp, sizeof(sexp));
}

static void test_idx_entry_limits(void **state)
{
    (void)state;
    struct zdb_idx_entry e;
    memset(&e, 0, sizeof(e));
    uint8_t b[34];

    /* every field at its maximum still round-trips */
    e.keylen = 255;
    e.offset = e.previous = e.dataid = e.timestamp = e.crc = e.parentid = e.parentoff = 0xffffffffu;
    e.length = ZDB_MAX_PAYLOAD;
    e.flags = ZDB_IDX_DELETED;
    zdb_idx_entry_encode(b, &e);
    struct zdb_idx_entry d;
    assert_int_equal(idx_entry_decode_copy(&d, b, 34), 0);
    assert_int_equal(d.keylen, 255);
    assert_int_equal(d.length, ZDB_MAX_PAYLOAD);
    assert_int_equal(d.flags, ZDB_IDX_DELETED);
    assert_int_equal(d.offset, 0xffffffffu);
    assert_int_equal(d.previous, 0xffffffffu);
    assert_int_equal(d.dataid, 0xffffffffu);
    assert_int_equal(d.timestamp, 0xffffffffu);
    assert_int_equal(d.crc, 0xffffffffu);
    assert_int_equal(d.parentid, 0xffffffffu);
    assert_int_equal(d.parentoff, 0xffffffffu);

    /* all zero: an empty, live entry */
    memset(b, 0, sizeof(b));
    assert_int_equal(idx_entry_decode_copy(&d, b, 34), 0);
    assert_int_equal(d.keylen, 0);
    assert_int_equal(d.flags, 0);
}

static void test_idx_entry_errors(void **state)
{
    (void)state;
    struct zdb_idx_entry d;
    uint8_t b[34];

    /* short input asks for more, it is not corrupt */
    for (size_t n = 0; n < 34; n++)
        assert_int_equal(idx_entry_decode_copy(&d, idx_entry_bytes, n), QS_EAGAIN);

    /* payload length over 8 MiB */
    memcpy(b, idx_entry_bytes, 34);
    const uint32_t big[] = {ZDB_MAX_PAYLOAD + 1, 0x01000000u, 0xffffffffu};
    for (size_t i = 0; i < 3; i++) {
        b[5] = (uint8_t)big[i];
        b[6] = (uint8_t)(big[i] >> 8);
        b[7] = (uint8_t)(big[i] >> 16);
        b[8] = (uint8_t)(big[i] >> 24);
        assert_int_equal(idx_entry_decode_copy(&d, b, 34), QS_ECORRUPT);
    }

    /* unknown flags: anything but bit 0 */
    for (unsigned f = 2; f < 256; f++) {
        memcpy(b, idx_entry_bytes, 34);
        b[13] = (uint8_t)f;
        assert_int_equal(idx_entry_decode_copy(&d, b, 34), QS_ECORRUPT);
    }
    memcpy(b, idx_entry_bytes, 34);
    b[13] = 0;
    assert_int_equal(idx_entry_decode_copy(&d, b, 34), 0);
}

/* ---- data header -------------------------------------------------------------------- */

static const uint8_t dat_header_bytes[28] = {
    'D',  'A',  'T',  '0',                          /* magic */
    0x03, 0x00, 0x00, 0x00,                         /* version 3 */
    0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* created */
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, /* opened */
    0x07, 0x00, 0x00, 0x00,                         /* fileid 7 */
};

static void test_dat_header_roundtrip(void **state)
{
    (void)state;
    struct zdb_dat_header h = {
        .version = ZDB_DAT_VERSION,
        .created = 0x1122334455667788ull,
        .opened = 0x8000000000000001ull,
        .fileid = 7,
    };
    uint8_t out[ZDB_DAT_HEADER_SIZE];
    zdb_dat_header_encode(out, &h);
    assert_memory_equal(out, dat_header_bytes, sizeof(dat_header_bytes));

    struct zdb_dat_header d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(dat_header_decode_copy(&d, dat_header_bytes, 28), 0);
    assert_int_equal(d.version, 3);
    assert_true(d.created == 0x1122334455667788ull);
    assert_true(d.opened == 0x8000000000000001ull);
    assert_int_equal(d.fileid, 7);
}

static void test_dat_header_errors(void **state)
{
    (void)state;
    struct zdb_dat_header d;
    uint8_t b[28];
    for (size_t n = 0; n < 28; n++)
        assert_int_equal(dat_header_decode_copy(&d, dat_header_bytes, n), QS_ECORRUPT);

    memcpy(b, dat_header_bytes, 28);
    b[0] = 'd';
    assert_int_equal(dat_header_decode_copy(&d, b, 28), QS_ECORRUPT);
    memcpy(b, "IDX0", 4); /* an index file given as a data file */
    assert_int_equal(dat_header_decode_copy(&d, b, 28), QS_ECORRUPT);

    for (unsigned v = 0; v < 8; v++) {
        if (v == 3)
            continue;
        memcpy(b, dat_header_bytes, 28);
        b[4] = (uint8_t)v;
        assert_int_equal(dat_header_decode_copy(&d, b, 28), QS_ECORRUPT);
    }
    memcpy(b, dat_header_bytes, 28);
    b[7] = 1; /* version 0x01000003 */
    assert_int_equal(dat_header_decode_copy(&d, b, 28), QS_ECORRUPT);
}

/* ---- data entry --------------------------------------------------------------------- */

/* A data entry with key "key" and payload "payload!". */
static const uint8_t dat_entry_bytes[18 + 3 + 8] = {
    0x03,                   /* keylen */
    0x08, 0x00, 0x00, 0x00, /* payload length */
    0x1c, 0x00, 0x00, 0x00, /* previous = 28 (first entry after the header) */
    0x78, 0x56, 0x34, 0x12, /* crc 0x12345678 */
    0x02,                   /* flags: truncated */
    0x00, 0xe1, 0xf5, 0x05, /* timestamp 100000000 */
    'k',  'e',  'y',  'p',  'a', 'y', 'l', 'o', 'a', 'd', '!',
};

static void test_dat_entry_roundtrip(void **state)
{
    (void)state;
    struct zdb_dat_entry e = {
        .keylen = 3,
        .length = 8,
        .previous = 28,
        .crc = 0x12345678u,
        .flags = ZDB_DAT_TRUNCATED,
        .timestamp = 100000000u,
    };
    uint8_t out[sizeof(dat_entry_bytes)];
    memset(out, 0xee, sizeof(out));
    zdb_dat_entry_encode(out, &e);
    for (size_t i = 18; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xee);
    memcpy(out + 18, "keypayload!", 11);
    assert_memory_equal(out, dat_entry_bytes, sizeof(dat_entry_bytes));

    struct zdb_dat_entry d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(dat_entry_decode_copy(&d, dat_entry_bytes, sizeof(dat_entry_bytes)), 0);
    assert_int_equal(d.keylen, 3);
    assert_int_equal(d.length, 8);
    assert_int_equal(d.previous, 28);
    assert_int_equal(d.crc, 0x12345678u);
    assert_int_equal(d.flags, ZDB_DAT_TRUNCATED);
    assert_int_equal(d.timestamp, 100000000u);
    assert_memory_equal(dat_entry_bytes + 18, "key", d.keylen);
    assert_memory_equal(dat_entry_bytes + 18 + d.keylen, "payload!", d.length);

    /* a DEL tombstone: length 0, crc 0, flag 1 */
    struct zdb_dat_entry t = {
        .keylen = 1, .previous = 46, .flags = ZDB_DAT_DELETED, .timestamp = 5};
    uint8_t tb[18];
    zdb_dat_entry_encode(tb, &t);
    const uint8_t texp[18] = {1, 0, 0, 0, 0, 46, 0, 0, 0, 0, 0, 0, 0, 1, 5, 0, 0, 0};
    assert_memory_equal(tb, texp, 18);

    /* both flags, maximum payload */
    t.flags = ZDB_DAT_DELETED | ZDB_DAT_TRUNCATED;
    t.length = ZDB_MAX_PAYLOAD;
    zdb_dat_entry_encode(tb, &t);
    assert_int_equal(dat_entry_decode_copy(&d, tb, 18), 0);
    assert_int_equal(d.keylen, 1);
    assert_int_equal(d.length, ZDB_MAX_PAYLOAD);
    assert_int_equal(d.previous, 46);
    assert_int_equal(d.crc, 0);
    assert_int_equal(d.flags, ZDB_DAT_DELETED | ZDB_DAT_TRUNCATED);
    assert_int_equal(d.timestamp, 5);
}

static void test_dat_entry_errors(void **state)
{
    (void)state;
    struct zdb_dat_entry d;
    uint8_t b[18];
    for (size_t n = 0; n < 18; n++)
        assert_int_equal(dat_entry_decode_copy(&d, dat_entry_bytes, n), QS_EAGAIN);

    const uint32_t big[] = {ZDB_MAX_PAYLOAD + 1, 0x7fffffffu, 0xffffffffu};
    for (size_t i = 0; i < 3; i++) {
        memcpy(b, dat_entry_bytes, 18);
        b[1] = (uint8_t)big[i];
        b[2] = (uint8_t)(big[i] >> 8);
        b[3] = (uint8_t)(big[i] >> 16);
        b[4] = (uint8_t)(big[i] >> 24);
        assert_int_equal(dat_entry_decode_copy(&d, b, 18), QS_ECORRUPT);
    }
    for (unsigned f = 4; f < 256; f++) {
        memcpy(b, dat_entry_bytes, 18);
        b[13] = (uint8_t)f;
        assert_int_equal(dat_entry_decode_copy(&d, b, 18), QS_ECORRUPT);
    }
    for (unsigned f = 0; f < 4; f++) {
        memcpy(b, dat_entry_bytes, 18);
        b[13] = (uint8_t)f;
        assert_int_equal(dat_entry_decode_copy(&d, b, 18), 0);
        assert_int_equal(d.flags, f);
    }
}

/* ---- zdb-namespace ------------------------------------------------------------------ */

/* Namespace "ns1", password "pw", maxsize 1 GiB + 1, public + worm. */
static const uint8_t nsfile_bytes[15 + 3 + 2] = {
    0x01, 0x00, 0x00, 0x00,                         /* version 1 */
    0x03,                                           /* namelen */
    0x02,                                           /* passlen */
    0x01, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, /* maxsize */
    0x07,                                           /* flags: public | worm | extended */
    'n',  's',  '1',  'p',  'w',
};

static void test_nsfile_roundtrip(void **state)
{
    (void)state;
    struct zdb_nsfile f;
    memset(&f, 0, sizeof(f));
    f.maxsize = 0x40000001ull;
    f.flags = ZDB_NS_PUBLIC | ZDB_NS_WORM; /* extended is added by encode */
    f.namelen = 3;
    f.passlen = 2;
    memcpy(f.name, "ns1", 3);
    memcpy(f.password, "pw", 2);

    uint8_t out[15 + 512];
    memset(out, 0xee, sizeof(out));
    size_t n = zdb_nsfile_encode(out, sizeof(out), &f);
    assert_int_equal(n, sizeof(nsfile_bytes));
    assert_memory_equal(out, nsfile_bytes, sizeof(nsfile_bytes));
    assert_int_equal(out[n], 0xee);

    /* exact capacity works, one byte less writes nothing */
    uint8_t exact[sizeof(nsfile_bytes)];
    assert_int_equal(zdb_nsfile_encode(exact, sizeof(exact), &f), sizeof(exact));
    assert_memory_equal(exact, nsfile_bytes, sizeof(exact));
    memset(out, 0xee, sizeof(out));
    assert_int_equal(zdb_nsfile_encode(out, sizeof(nsfile_bytes) - 1, &f), 0);
    assert_int_equal(out[0], 0xee);

    struct zdb_nsfile d;
    assert_int_equal(nsfile_decode_copy(&d, nsfile_bytes, sizeof(nsfile_bytes)), 0);
    assert_true(d.maxsize == 0x40000001ull);
    assert_int_equal(d.flags, ZDB_NS_PUBLIC | ZDB_NS_WORM | ZDB_NS_EXTENDED);
    assert_int_equal(d.namelen, 3);
    assert_int_equal(d.passlen, 2);
    assert_string_equal(d.name, "ns1"); /* NUL-terminated */
    assert_string_equal(d.password, "pw");

    /* no password, private, unlimited */
    memset(&f, 0, sizeof(f));
    f.namelen = 7;
    memcpy(f.name, "default", 7);
    n = zdb_nsfile_encode(out, sizeof(out), &f);
    const uint8_t dexp[] = {1, 0, 0, 0, 7,   0,   0,   0,   0,   0,   0,
                            0, 0, 0, 4, 'd', 'e', 'f', 'a', 'u', 'l', 't'};
    assert_int_equal(n, sizeof(dexp));
    assert_memory_equal(out, dexp, sizeof(dexp));
    assert_int_equal(nsfile_decode_copy(&d, out, n), 0);
    assert_string_equal(d.name, "default");
    assert_string_equal(d.password, "");
    assert_int_equal(d.flags, ZDB_NS_EXTENDED);

    /* longest name and password: 15 + 255 + 255 bytes */
    memset(&f, 0, sizeof(f));
    f.namelen = 255;
    f.passlen = 255;
    memset(f.name, 'n', 255);
    memset(f.password, 'p', 255);
    n = zdb_nsfile_encode(out, sizeof(out), &f);
    assert_int_equal(n, 15 + 255 + 255);
    assert_int_equal(nsfile_decode_copy(&d, out, n), 0);
    assert_int_equal(d.namelen, 255);
    assert_int_equal(d.passlen, 255);
    assert_int_equal(strlen(d.name), 255);
    assert_int_equal(strlen(d.password), 255);
    assert_memory_equal(d.name, f.name, 255);
    assert_memory_equal(d.password, f.password, 255);

    /* trailing bytes after the password are ignored */
    uint8_t longer[sizeof(nsfile_bytes) + 4];
    memcpy(longer, nsfile_bytes, sizeof(nsfile_bytes));
    memset(longer + sizeof(nsfile_bytes), 'x', 4);
    assert_int_equal(nsfile_decode_copy(&d, longer, sizeof(longer)), 0);
    assert_string_equal(d.password, "pw");
}

static void test_nsfile_errors(void **state)
{
    (void)state;
    struct zdb_nsfile d;
    uint8_t b[sizeof(nsfile_bytes)];

    /* shorter than the header */
    for (size_t n = 0; n < 15; n++)
        assert_int_equal(nsfile_decode_copy(&d, nsfile_bytes, n), QS_ECORRUPT);
    /* header complete but shorter than name + password */
    for (size_t n = 15; n < sizeof(nsfile_bytes); n++)
        assert_int_equal(nsfile_decode_copy(&d, nsfile_bytes, n), QS_ECORRUPT);

    /* lengths claiming more than there is */
    memcpy(b, nsfile_bytes, sizeof(b));
    b[4] = 255;
    assert_int_equal(nsfile_decode_copy(&d, b, sizeof(b)), QS_ECORRUPT);
    memcpy(b, nsfile_bytes, sizeof(b));
    b[5] = 3;
    assert_int_equal(nsfile_decode_copy(&d, b, sizeof(b)), QS_ECORRUPT);
    b[4] = 2; /* 2 + 3 = 5 bytes: fits again */
    assert_int_equal(nsfile_decode_copy(&d, b, sizeof(b)), 0);
    assert_string_equal(d.name, "ns");
    assert_string_equal(d.password, "1pw");

    /* unsupported versions */
    const uint32_t bad[] = {0, 2, 0x100, 0x01000001u};
    for (size_t i = 0; i < 4; i++) {
        memcpy(b, nsfile_bytes, sizeof(b));
        b[0] = (uint8_t)bad[i];
        b[1] = (uint8_t)(bad[i] >> 8);
        b[2] = (uint8_t)(bad[i] >> 16);
        b[3] = (uint8_t)(bad[i] >> 24);
        assert_int_equal(nsfile_decode_copy(&d, b, sizeof(b)), QS_ECORRUPT);
    }
}

/* ---- a whole file built from the pieces --------------------------------------------- */

static void test_file_walk(void **state)
{
    (void)state;
    /* A data file: header, then entries chained by `previous`. */
    uint8_t file[28 + 3 * (18 + 1 + 4)];
    struct zdb_dat_header h = {ZDB_DAT_VERSION, 1, 2, 0};
    zdb_dat_header_encode(file, &h);
    size_t pos = 28;
    uint32_t prev = 0;
    for (int i = 0; i < 3; i++) {
        uint8_t key = (uint8_t)('a' + i);
        uint8_t val[4] = {(uint8_t)i, 1, 2, 3};
        struct zdb_dat_entry e = {1, 4, prev, qs_crc32c_zdb(val, 4), 0, (uint32_t)(1000 + i)};
        zdb_dat_entry_encode(file + pos, &e);
        file[pos + 18] = key;
        memcpy(file + pos + 19, val, 4);
        prev = (uint32_t)pos;
        pos += 18 + 1 + 4;
    }
    assert_int_equal(pos, sizeof(file));

    struct zdb_dat_header dh;
    assert_int_equal(dat_header_decode_copy(&dh, file, sizeof(file)), 0);
    pos = 28;
    uint32_t expect_prev = 0;
    int n = 0;
    while (pos < sizeof(file)) {
        struct zdb_dat_entry e;
        assert_int_equal(dat_entry_decode_copy(&e, file + pos, sizeof(file) - pos), 0);
        assert_int_equal(e.previous, expect_prev);
        assert_int_equal(file[pos + 18], 'a' + n);
        assert_int_equal(qs_crc32c_zdb(file + pos + 18 + e.keylen, e.length), e.crc);
        expect_prev = (uint32_t)pos;
        pos += 18 + e.keylen + e.length;
        n++;
    }
    assert_int_equal(n, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_crc_check_values),
        cmocka_unit_test(test_idx_header_roundtrip),
        cmocka_unit_test(test_idx_header_errors),
        cmocka_unit_test(test_idx_entry_roundtrip),
        cmocka_unit_test(test_idx_entry_limits),
        cmocka_unit_test(test_idx_entry_errors),
        cmocka_unit_test(test_dat_header_roundtrip),
        cmocka_unit_test(test_dat_header_errors),
        cmocka_unit_test(test_dat_entry_roundtrip),
        cmocka_unit_test(test_dat_entry_errors),
        cmocka_unit_test(test_nsfile_roundtrip),
        cmocka_unit_test(test_nsfile_errors),
        cmocka_unit_test(test_file_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
