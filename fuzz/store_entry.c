/* Fuzz target for the on-disk format decoders of lib/store (format.h).
 *
 * The input is decoded with every decoder, on an exact-size heap copy so that a read past
 * the given length is caught by ASan. Checked:
 *   - each decoder's result is one of its documented codes, and short inputs get the
 *     short-input code;
 *   - whatever decodes re-encodes to exactly the same bytes (one spelling per value);
 *   - walking the input as a whole index file and as a whole data file (header, then
 *     entries with their key and payload) stays inside the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/format.h"
#include "util/crc32c.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void fuzz_idx_header(const uint8_t *d, size_t n)
{
    struct zdb_idx_header h;
    int rc = zdb_idx_header_decode(&h, d, n);
    CHECK(rc == 0 || rc == QS_ECORRUPT);
    if (n < ZDB_IDX_HEADER_SIZE)
        CHECK(rc == QS_ECORRUPT);
    if (rc == 0) {
        CHECK(h.version == ZDB_IDX_VERSION && h.mode <= ZDB_MODE_SEQ);
        uint8_t out[ZDB_IDX_HEADER_SIZE];
        zdb_idx_header_encode(out, &h);
        CHECK(memcmp(out, d, sizeof(out)) == 0);
    }
}

static void fuzz_dat_header(const uint8_t *d, size_t n)
{
    struct zdb_dat_header h;
    int rc = zdb_dat_header_decode(&h, d, n);
    CHECK(rc == 0 || rc == QS_ECORRUPT);
    if (n < ZDB_DAT_HEADER_SIZE)
        CHECK(rc == QS_ECORRUPT);
    if (rc == 0) {
        CHECK(h.version == ZDB_DAT_VERSION);
        uint8_t out[ZDB_DAT_HEADER_SIZE];
        zdb_dat_header_encode(out, &h);
        CHECK(memcmp(out, d, sizeof(out)) == 0);
    }
}

/* Returns the entry's total size (fixed part + key) when it decodes and fits, else 0. */
static size_t fuzz_idx_entry(const uint8_t *d, size_t n)
{
    struct zdb_idx_entry e;
    int rc = zdb_idx_entry_decode(&e, d, n);
    if (n < ZDB_IDX_ENTRY_SIZE) {
        CHECK(rc == QS_EAGAIN);
        return 0;
    }
    CHECK(rc == 0 || rc == QS_ECORRUPT);
    if (rc < 0)
        return 0;
    CHECK(e.length <= ZDB_MAX_PAYLOAD);
    CHECK((e.flags & ~ZDB_IDX_DELETED) == 0);
    uint8_t out[ZDB_IDX_ENTRY_SIZE];
    zdb_idx_entry_encode(out, &e);
    CHECK(memcmp(out, d, sizeof(out)) == 0);
    size_t total = ZDB_IDX_ENTRY_SIZE + (size_t)e.keylen;
    return total <= n ? total : 0;
}

/* Returns the entry's total size (fixed part + key + payload) when it fits, else 0. */
static size_t fuzz_dat_entry(const uint8_t *d, size_t n)
{
    struct zdb_dat_entry e;
    int rc = zdb_dat_entry_decode(&e, d, n);
    if (n < ZDB_DAT_ENTRY_SIZE) {
        CHECK(rc == QS_EAGAIN);
        return 0;
    }
    CHECK(rc == 0 || rc == QS_ECORRUPT);
    if (rc < 0)
        return 0;
    CHECK(e.length <= ZDB_MAX_PAYLOAD);
    CHECK((e.flags & ~(ZDB_DAT_DELETED | ZDB_DAT_TRUNCATED)) == 0);
    uint8_t out[ZDB_DAT_ENTRY_SIZE];
    zdb_dat_entry_encode(out, &e);
    CHECK(memcmp(out, d, sizeof(out)) == 0);
    size_t total = ZDB_DAT_ENTRY_SIZE + (size_t)e.keylen + e.length;
    if (total > n)
        return 0;
    /* the payload is readable in full (ASan checks the bounds) */
    volatile uint32_t crc = qs_crc32c_zdb(d + ZDB_DAT_ENTRY_SIZE + e.keylen, e.length);
    (void)crc;
    return total;
}

static void fuzz_nsfile(const uint8_t *d, size_t n)
{
    struct zdb_nsfile f;
    int rc = zdb_nsfile_decode(&f, d, n);
    CHECK(rc == 0 || rc == QS_ECORRUPT);
    if (n < ZDB_NSFILE_HEADER_SIZE)
        CHECK(rc == QS_ECORRUPT);
    if (rc < 0)
        return;
    size_t need = ZDB_NSFILE_HEADER_SIZE + (size_t)f.namelen + f.passlen;
    CHECK(need <= n);
    CHECK(strlen(f.name) <= f.namelen && strlen(f.password) <= f.passlen);
    uint8_t out[ZDB_NSFILE_HEADER_SIZE + 512];
    CHECK(zdb_nsfile_encode(out, sizeof(out), &f) == need);
    CHECK(zdb_nsfile_encode(out, need - 1, &f) == 0);
    /* byte 14 (flags) always gets the "extended" bit on encode */
    CHECK(out[14] == (d[14] | ZDB_NS_EXTENDED));
    out[14] = d[14];
    CHECK(memcmp(out, d, need) == 0);
}

/* The input as a file: header, then entries back to back. */
static void walk_index_file(const uint8_t *d, size_t n)
{
    struct zdb_idx_header h;
    if (zdb_idx_header_decode(&h, d, n) < 0)
        return;
    size_t pos = ZDB_IDX_HEADER_SIZE;
    for (;;) {
        size_t used = fuzz_idx_entry(d + pos, n - pos);
        if (!used)
            break;
        pos += used;
    }
    CHECK(pos <= n);
}

static void walk_data_file(const uint8_t *d, size_t n)
{
    struct zdb_dat_header h;
    if (zdb_dat_header_decode(&h, d, n) < 0)
        return;
    size_t pos = ZDB_DAT_HEADER_SIZE;
    for (;;) {
        size_t used = fuzz_dat_entry(d + pos, n - pos);
        if (!used)
            break;
        pos += used;
    }
    CHECK(pos <= n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *d = calloc(size ? size : 1, 1);
    CHECK(d);
    if (size)
        memcpy(d, data, size);
    fuzz_idx_header(d, size);
    fuzz_dat_header(d, size);
    fuzz_idx_entry(d, size);
    fuzz_dat_entry(d, size);
    fuzz_nsfile(d, size);
    walk_index_file(d, size);
    walk_data_file(d, size);
    free(d);
    return 0;
}
