/* Fuzz target for loading and recovering a namespace (lib/store ns_load.c).
 *
 * The input becomes the files of the `default` namespace in a temporary directory (one
 * per process, emptied before every run), then the store is opened. Layout of the input:
 *   byte 0   control: bits 0-1 fixed mode (0 mixed, 1 user, 2 seq, 3 mixed)
 *                     bits 2-3 files: 0 index only, 1 data only, 2-3 both
 *                     bit 4    the files are pair 1, behind an empty but valid pair 0
 *                     bit 5    write a valid zdb-namespace descriptor
 *   bytes 1-2 split position (LE u16, modulo the rest + 1) between index and data bytes
 *   rest     index file bytes, then data file bytes
 * Opening may fail (a damaged file can be refused); it must not crash, hang or leak.
 * When it succeeds, every live key is read (errors allowed), then a SET must work and
 * read back, and after closing and opening again that value must still be there.
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/format.h"
#include "store/ns.h"
#include "store/store.h"
#include "util/crc32c.h"
#include "util/mem.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, #cond,           \
                    qs_err_msg());                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char g_root[512]; /* per process */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    if (ftw->level > 0)
        remove(path);
    return 0;
}

static void empty_root(void)
{
    nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_root(void)
{
    empty_root();
    rmdir(g_root);
}

static void setup_root(void)
{
    if (g_root[0])
        return;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_root, sizeof(g_root), "%s/qsfs-fuzz-store-XXXXXX", tmp);
    CHECK(mkdtemp(g_root) != NULL);
    atexit(remove_root);
}

static void write_file(const char *path, const uint8_t *d, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(n == 0 || write(fd, d, n) == (ssize_t)n);
    close(fd);
}

static void make_dir(const char *path)
{
    CHECK(mkdir(path, 0700) == 0);
}

/* Known engine defect, tests/unit/test_store_ns.c test_bug_seq_replay_huge_gap: an
 * orphan sequential entry with a far id makes the load write one index entry per id up
 * to it, which looks like a hang here. Inputs holding such an entry anywhere in the data
 * bytes (at any offset: after an index rebuild, stale entries can be reached at the next
 * open) are skipped so the run can look for other problems; remove this once the engine
 * bounds the gap. */
static int has_far_seq_id(const uint8_t *d, size_t n)
{
    for (size_t pos = 0; pos + ZDB_DAT_ENTRY_SIZE + ZDB_SEQ_KEY_SIZE <= n; pos++) {
        struct zdb_dat_entry e;
        if (d[pos] != ZDB_SEQ_KEY_SIZE || zdb_dat_entry_decode(&e, d + pos, n - pos) < 0)
            continue;
        size_t total = ZDB_DAT_ENTRY_SIZE + ZDB_SEQ_KEY_SIZE + (size_t)e.length;
        if (total > n - pos || qs_le64(d + pos + ZDB_DAT_ENTRY_SIZE) <= 4096)
            continue;
        if (qs_crc32c_zdb(d + pos + ZDB_DAT_ENTRY_SIZE + ZDB_SEQ_KEY_SIZE, e.length) == e.crc)
            return 1;
    }
    return 0;
}

struct keys {
    uint8_t key[32][ZDB_MAX_KEY];
    size_t len[32];
    size_t n;
};

static int collect(const struct zdb_keyrec *r, void *ud)
{
    struct keys *k = ud;
    memcpy(k->key[k->n], r->key, r->keylen);
    k->len[k->n] = r->keylen;
    return ++k->n == 32;
}

/* GET: errors are allowed (damaged or missing data), crashes are not. */
static void try_get(struct zdb_ns *ns, const uint8_t *key, size_t klen)
{
    struct zdb_loc loc;
    if (zdb_ns_lookup(ns, key, klen, &loc) < 0)
        return;
    CHECK(loc.length <= ZDB_MAX_PAYLOAD);
    uint8_t *buf = malloc(loc.length ? loc.length : 1);
    CHECK(buf);
    bool ok;
    int rc = zdb_ns_read(ns, &loc, buf, &ok);
    CHECK(rc == 0 || rc == QS_ENOTFOUND || rc == QS_EIO || rc == QS_ECORRUPT);
    struct zdb_dat_entry e;
    rc = zdb_ns_read_header(ns, &loc, &e);
    CHECK(rc == 0 || rc == QS_ENOTFOUND || rc == QS_EIO || rc == QS_ECORRUPT);
    free(buf);
}

static void get_equal(struct zdb_ns *ns, const uint8_t *key, size_t klen, const uint8_t *val,
                      size_t vlen)
{
    struct zdb_loc loc;
    CHECK(zdb_ns_lookup(ns, key, klen, &loc) == 0);
    CHECK(loc.length == vlen);
    uint8_t buf[64];
    bool ok = false;
    CHECK(zdb_ns_read(ns, &loc, buf, &ok) == 0);
    CHECK(ok);
    CHECK(memcmp(buf, val, vlen) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    setup_root();
    empty_root();

    uint8_t ctl = data[0];
    static const int modes[4] = {-1, ZDB_MODE_USER, ZDB_MODE_SEQ, -1};
    int fixed = modes[ctl & 3];
    int files = (ctl >> 2) & 3;
    uint32_t pair = (ctl >> 4) & 1;
    const uint8_t *rest = data + 3;
    size_t n = size - 3;
    size_t split = ((size_t)data[1] | (size_t)data[2] << 8) % (n + 1);
    const uint8_t *ibytes = rest, *dbytes = rest;
    size_t ilen = 0, dlen = 0;
    if (files == 0) {
        ilen = n;
    } else if (files == 1) {
        dlen = n;
    } else {
        ilen = split;
        dbytes = rest + split;
        dlen = n - split;
    }
    if (has_far_seq_id(dbytes, dlen))
        return 0;
    /* Known engine defect, test_bug_short_data_header: writes made on a data file shorter
     * than its header are lost at the next open. The reopen check is skipped for it. */
    bool short_header = files != 0 && dlen > 0 && dlen < ZDB_DAT_HEADER_SIZE;
    /* Known engine defect, test_bug_rebuild_keeps_stale_tail: when the index file is
     * rebuilt, stale data after the valid entries can come back at the next open. */
    struct zdb_idx_header given;
    bool rebuilt = files != 0 && zdb_idx_header_decode(&given, ibytes, ilen) < 0;

    char idx[600], dat[600], p[700];
    snprintf(idx, sizeof(idx), "%s/index", g_root);
    snprintf(dat, sizeof(dat), "%s/data", g_root);
    make_dir(idx);
    make_dir(dat);
    snprintf(p, sizeof(p), "%s/default", idx);
    make_dir(p);
    snprintf(p, sizeof(p), "%s/default", dat);
    make_dir(p);

    if (pair) {
        /* a valid, empty pair 0 in the mode the files claim (user when unknown) */
        uint8_t mode = ilen > 28 && ibytes[28] == ZDB_MODE_SEQ ? ZDB_MODE_SEQ : ZDB_MODE_USER;
        struct zdb_idx_header ih = {ZDB_IDX_VERSION, 1, 1, 0, mode};
        struct zdb_dat_header dh = {ZDB_DAT_VERSION, 1, 1, 0};
        uint8_t ib[ZDB_IDX_HEADER_SIZE], db[ZDB_DAT_HEADER_SIZE];
        zdb_idx_header_encode(ib, &ih);
        zdb_dat_header_encode(db, &dh);
        snprintf(p, sizeof(p), "%s/default/i0", idx);
        write_file(p, ib, sizeof(ib));
        snprintf(p, sizeof(p), "%s/default/d0", dat);
        write_file(p, db, sizeof(db));
    }
    if (files != 1) {
        snprintf(p, sizeof(p), "%s/default/i%u", idx, pair);
        write_file(p, ibytes, ilen);
    }
    if (files != 0) {
        snprintf(p, sizeof(p), "%s/default/d%u", dat, pair);
        write_file(p, dbytes, dlen);
    }
    if (ctl & 0x20) {
        struct zdb_nsfile f;
        memset(&f, 0, sizeof(f));
        f.flags = ZDB_NS_PUBLIC;
        f.namelen = 7;
        memcpy(f.name, "default", 7);
        uint8_t nb[64];
        size_t nl = zdb_nsfile_encode(nb, sizeof(nb), &f);
        snprintf(p, sizeof(p), "%s/default/zdb-namespace", idx);
        write_file(p, nb, nl);
    }

    struct zdb_store_opts o;
    memset(&o, 0, sizeof(o));
    o.index_dir = idx;
    o.data_dir = dat;
    o.datasize = ZDB_DATASIZE_MIN;
    o.fixed_mode = fixed;
    struct zdb_store *st = NULL;
    if (zdb_store_open(&st, &o) < 0) {
        CHECK(st == NULL);
        return 0;
    }
    struct zdb_ns *ns = zdb_store_find(st, "default", 7);
    CHECK(ns);

    /* read what was loaded */
    if (ns->mode == ZDB_MODE_SEQ) {
        for (uint64_t id = 0; id < ns->next_id && id < 32; id++) {
            uint8_t k[8];
            qs_put64(k, id);
            try_get(ns, k, 8);
        }
    } else {
        struct keys *ks = malloc(sizeof(*ks));
        CHECK(ks);
        ks->n = 0;
        (void)zdb_keyindex_each(ns->keys, collect, ks);
        for (size_t i = 0; i < ks->n; i++)
            try_get(ns, ks->key[i], ks->len[i]);
        free(ks);
    }

    /* writes work after loading, and survive a reopen */
    static const uint8_t val[] = "fuzzed-value";
    struct zdb_setres res;
    uint8_t key[ZDB_MAX_KEY];
    size_t klen;
    if (ns->mode == ZDB_MODE_SEQ) {
        CHECK(zdb_ns_set(ns, val, 0, val, 5, 0, &res) == 0);
        CHECK(res.keylen == 8);
        CHECK(qs_le64(res.key) == ns->next_id - 1);
    } else {
        CHECK(zdb_ns_set(ns, (const uint8_t *)"fz", 2, val, 5, 0, &res) == 0);
    }
    memcpy(key, res.key, res.keylen);
    klen = res.keylen;
    get_equal(ns, key, klen, val, 5);
    CHECK(zdb_ns_del(ns, key, klen, 0) == 0);
    struct zdb_loc loc;
    CHECK(zdb_ns_lookup(ns, key, klen, &loc) == QS_ENOTFOUND);
    if (ns->mode == ZDB_MODE_SEQ) {
        CHECK(zdb_ns_set(ns, val, 0, val, sizeof(val), 0, &res) == 0);
        memcpy(key, res.key, res.keylen);
    } else {
        CHECK(zdb_ns_set(ns, key, klen, val, sizeof(val), 0, &res) == 0);
    }
    get_equal(ns, key, klen, val, sizeof(val));
    zdb_store_close(st);

    st = NULL;
    CHECK(zdb_store_open(&st, &o) == 0);
    ns = zdb_store_find(st, "default", 7);
    CHECK(ns);
    if (!short_header && !rebuilt)
        get_equal(ns, key, klen, val, sizeof(val));
    zdb_store_close(st);
    return 0;
}
