/* Unit tests for compaction (lib/store/compact.c), driven through zdb_store_open on a
 * temporary directory with 512 KiB data files.
 *
 * Every test fills a namespace with overwrites and deletes spread over several files, keeps
 * a model of what must be stored, compacts, and compares the engine with the model: before
 * and after reopening. The crash tests fork a child that opens the store and compacts with a
 * step callback that ends the process (_exit) at one step; the parent then opens the store
 * (recovery) and checks the model, that no temporary file is left, and that a second
 * compaction works. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/compact.h"
#include "store/format.h"
#include "store/ns.h"
#include "store/store.h"
#include "util/crc32c.h"
#include "util/guard.h"
#include "util/mem.h"

#include "store_testenv.h"

static void file_path(const struct env *e, char kind, uint32_t id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/default/%c%u", kind == 'i' ? e->idx : e->dat, kind, id);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_file(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

/* Names left by a compaction: d<N>.compact in the data directory, compact(.tmp) in the index
 * directory. */
static int leftovers(const struct env *e)
{
    int n = 0;
    char dir[700];
    for (int k = 0; k < 2; k++) {
        snprintf(dir, sizeof(dir), "%s/default", k ? e->idx : e->dat);
        DIR *d = opendir(dir);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            if (strstr(de->d_name, "compact"))
                n++;
        closedir(d);
    }
    return n;
}

/* ---- values and the model ------------------------------------------------------------ */

static size_t val_len(uint32_t seed)
{
    return 700 + (seed * 7919u) % 6000u;
}

static void make_val(uint8_t *out, size_t n, uint32_t seed)
{
    uint64_t s = (uint64_t)seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out[i] = (uint8_t)s;
    }
}

#define MAXK 2048

/* User mode: key "k<i>"; sequential mode: id i. seed 0 = missing or deleted. */
struct model {
    uint32_t seed[MAXK];
    size_t n; /* keys (user) or ids handed out (seq) */
};

static size_t user_key(uint8_t *k, size_t i)
{
    return (size_t)snprintf((char *)k, 16, "k%zu", i);
}

static void do_set_user(struct zdb_ns *ns, struct model *m, size_t i, uint32_t seed)
{
    uint8_t k[16], v[8192];
    size_t kl = user_key(k, i), vl = val_len(seed);
    make_val(v, vl, seed);
    struct zdb_setres res;
    int rc = zdb_ns_set(ns, k, kl, v, vl, 1000 + seed, &res);
    if (rc != 0)
        fail_msg("SET k%zu: %d %s", i, rc, qs_err_msg());
    m->seed[i] = seed;
    if (i >= m->n)
        m->n = i + 1;
}

static void do_del_user(struct zdb_ns *ns, struct model *m, size_t i)
{
    uint8_t k[16];
    size_t kl = user_key(k, i);
    assert_int_equal(zdb_ns_del(ns, k, kl, 0), 0);
    m->seed[i] = 0;
}

/* Appends a new value (id = m->n) or updates id (an update consumes one more id). */
static void do_set_seq(struct zdb_ns *ns, struct model *m, long id, uint32_t seed)
{
    uint8_t k[8], v[8192];
    size_t vl = val_len(seed);
    make_val(v, vl, seed);
    struct zdb_setres res;
    int rc;
    if (id < 0) {
        rc = zdb_ns_set(ns, NULL, 0, v, vl, 1000 + seed, &res);
        assert_int_equal(rc, 0);
        assert_int_equal(res.keylen, 8);
        assert_int_equal(qs_le64(res.key), m->n);
        m->seed[m->n++] = seed;
    } else {
        qs_put64(k, (uint64_t)id);
        rc = zdb_ns_set(ns, k, 8, v, vl, 1000 + seed, &res);
        if (rc != 0)
            fail_msg("update id %ld: %d %s", id, rc, qs_err_msg());
        m->seed[id] = seed;
        m->seed[m->n++] = 0; /* the deleted copy of the old version takes the next id */
    }
    assert_true(m->n < MAXK);
}

static void do_del_seq(struct zdb_ns *ns, struct model *m, size_t id)
{
    uint8_t k[8];
    qs_put64(k, id);
    assert_int_equal(zdb_ns_del(ns, k, 8, 0), 0);
    m->seed[id] = 0;
}

static void model_check(struct zdb_ns *ns, const struct model *m)
{
    uint64_t live = 0;
    for (size_t i = 0; i < m->n; i++) {
        uint8_t k[16];
        size_t kl;
        if (ns->mode == ZDB_MODE_SEQ) {
            qs_put64(k, i);
            kl = 8;
        } else {
            kl = user_key(k, i);
        }
        struct zdb_loc loc;
        int rc = zdb_ns_lookup(ns, k, kl, &loc);
        if (!m->seed[i]) {
            if (rc != QS_ENOTFOUND)
                fail_msg("key %zu should be missing: %d", i, rc);
            continue;
        }
        live++;
        if (rc != 0)
            fail_msg("key %zu missing: %d %s", i, rc, qs_err_msg());
        uint8_t want[8192], got[8192];
        size_t vl = val_len(m->seed[i]);
        make_val(want, vl, m->seed[i]);
        assert_int_equal(loc.length, vl);
        bool ok = false;
        rc = zdb_ns_read(ns, &loc, got, &ok);
        if (rc != 0)
            fail_msg("read key %zu: %d %s", i, rc, qs_err_msg());
        assert_true(ok);
        assert_memory_equal(got, want, vl);
        struct zdb_dat_entry de;
        assert_int_equal(zdb_ns_read_header(ns, &loc, &de), 0);
        assert_int_equal(de.timestamp, 1000 + m->seed[i]);
    }
    assert_int_equal(ns->entries, live);
    if (ns->mode == ZDB_MODE_SEQ)
        assert_int_equal(ns->next_id, m->n);
}

/* Several files with overwrites and deletes in each. */
static void populate_user(struct zdb_ns *ns, struct model *m)
{
    uint32_t seed = 1;
    for (size_t i = 0; i < 300; i++)
        do_set_user(ns, m, i, seed++);
    for (size_t i = 0; i < 300; i += 2)
        do_set_user(ns, m, i, seed++);
    for (size_t i = 0; i < 300; i += 5)
        if (m->seed[i])
            do_del_user(ns, m, i);
    for (size_t i = 300; i < 400; i++)
        do_set_user(ns, m, i, seed++);
    for (size_t i = 1; i < 400; i += 3)
        do_set_user(ns, m, i, seed++);
    for (size_t i = 7; i < 400; i += 11)
        if (m->seed[i])
            do_del_user(ns, m, i);
    assert_true(ns->fileid >= 4);
}

static void populate_seq(struct zdb_ns *ns, struct model *m)
{
    uint32_t seed = 1;
    for (int i = 0; i < 300; i++)
        do_set_seq(ns, m, -1, seed++);
    for (long id = 0; id < 300; id += 2)
        do_set_seq(ns, m, id, seed++);
    for (size_t id = 0; id < 300; id += 5)
        if (m->seed[id])
            do_del_seq(ns, m, id);
    for (int i = 0; i < 100; i++)
        do_set_seq(ns, m, -1, seed++);
    for (long id = 1; id < 300; id += 3)
        if (m->seed[id])
            do_set_seq(ns, m, id, seed++);
    for (long id = 2; id < 300; id += 4)
        if (m->seed[id])
            do_set_seq(ns, m, id, seed++); /* a second update of some ids */
    for (size_t id = 7; id < 400; id += 11)
        if (m->seed[id])
            do_del_seq(ns, m, id);
    assert_true(ns->fileid >= 4);
}

static void populate(struct zdb_ns *ns, struct model *m)
{
    if (ns->mode == ZDB_MODE_SEQ)
        populate_seq(ns, m);
    else
        populate_user(ns, m);
}

static uint64_t data_files_size(const struct env *e, uint32_t upto)
{
    uint64_t total = 0;
    char p[700];
    for (uint32_t f = 0; f <= upto; f++) {
        file_path(e, 'd', f, p, sizeof(p));
        long s = file_size(p);
        if (s > 0)
            total += (uint64_t)s;
    }
    return total;
}

/* Compacts every closed file; returns the bytes reclaimed. */
static uint64_t compact_all(struct zdb_ns *ns, struct zdb_compact_stats *sum)
{
    uint64_t saved = 0;
    memset(sum, 0, sizeof(*sum));
    for (uint32_t f = 0; f < ns->fileid; f++) {
        struct zdb_compact_stats s;
        int rc = zdb_ns_compact_file(ns, f, NULL, &s);
        if (rc != 0)
            fail_msg("compact d%u: %d %s", f, rc, qs_err_msg());
        saved += s.bytes_before - s.bytes_after;
        sum->files += s.files;
        sum->entries_kept += s.entries_kept;
        sum->entries_dropped += s.entries_dropped;
        sum->tombstones_kept += s.tombstones_kept;
        sum->tombstones_dropped += s.tombstones_dropped;
        sum->index_patches += s.index_patches;
        sum->damaged += s.damaged;
    }
    return saved;
}

/* ---- tests --------------------------------------------------------------------------- */

static void run_basic(int mode)
{
    struct env e;
    env_init(&e, mode);
    env_open(&e);
    struct zdb_ns *ns = ns_default(&e);
    struct model *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    populate(ns, m);
    uint32_t active = ns->fileid;
    char p[700];
    long isize[64];
    for (uint32_t f = 0; f <= active; f++) {
        file_path(&e, 'i', f, p, sizeof(p));
        isize[f] = file_size(p);
    }
    uint64_t before = data_files_size(&e, active), nsbytes = ns->data_bytes;
    model_check(ns, m);

    struct zdb_compact_info cand[64];
    size_t n = 0;
    assert_int_equal(zdb_compact_pick(ns, 0.1, 1, cand, 64, &n), 0);
    assert_true(n >= 3);
    for (size_t i = 1; i < n; i++)
        assert_true(cand[i - 1].reclaimable >= cand[i].reclaimable);

    struct zdb_compact_stats sum;
    uint64_t saved = compact_all(ns, &sum);
    assert_true(sum.files >= 3);
    assert_true(sum.entries_dropped > 100);
    assert_int_equal(sum.damaged, 0);
    assert_true(sum.index_patches >= sum.entries_kept);
    assert_true(saved > before / 4);
    assert_int_equal(data_files_size(&e, active), before - saved);
    assert_int_equal(ns->data_bytes, nsbytes - saved);
    assert_int_equal(ns->fileid, active);
    /* index files keep their size; the active data file is untouched */
    for (uint32_t f = 0; f <= active; f++) {
        file_path(&e, 'i', f, p, sizeof(p));
        assert_int_equal(file_size(p), isize[f]);
    }
    assert_int_equal(leftovers(&e), 0);
    model_check(ns, m);

    /* nothing left to reclaim: a second pass changes nothing */
    uint64_t size2 = data_files_size(&e, active);
    assert_int_equal(zdb_compact_pick(ns, 0.01, 1, cand, 64, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(compact_all(ns, &sum), 0);
    assert_int_equal(sum.files, 0);
    assert_int_equal(data_files_size(&e, active), size2);

    /* writes go on, and everything survives a restart */
    if (mode == ZDB_MODE_SEQ) {
        do_set_seq(ns, m, -1, 5000);
        do_set_seq(ns, m, 3, 5001);
    } else {
        do_set_user(ns, m, 3, 5000);
        do_set_user(ns, m, 1000, 5001);
    }
    model_check(ns, m);
    env_reopen(&e);
    ns = ns_default(&e);
    model_check(ns, m);
    free(m);
    env_free(&e);
}

static void test_user_basic(void **state)
{
    (void)state;
    run_basic(ZDB_MODE_USER);
}

static void test_seq_basic(void **state)
{
    (void)state;
    run_basic(ZDB_MODE_SEQ);
}

static void test_refusals(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, ZDB_MODE_USER);
    env_open(&e);
    struct zdb_ns *ns = ns_default(&e);
    struct model *m = calloc(1, sizeof(*m));
    populate(ns, m);
    struct zdb_compact_stats s;
    assert_int_equal(zdb_ns_compact_file(ns, ns->fileid, NULL, &s), QS_EINVAL);
    assert_int_equal(zdb_ns_compact_file(ns, ns->fileid + 5, NULL, &s), QS_EINVAL);
    assert_int_equal(s.files, 0);
    /* an offloaded data file */
    char p[700], q[720];
    file_path(&e, 'd', 1, p, sizeof(p));
    snprintf(q, sizeof(q), "%s.away", p);
    assert_int_equal(rename(p, q), 0);
    assert_int_equal(zdb_ns_compact_file(ns, 1, NULL, &s), QS_ENOTFOUND);
    assert_int_equal(rename(q, p), 0);
    /* frozen */
    ns->frozen = true;
    assert_int_equal(zdb_ns_compact_file(ns, 1, NULL, &s), QS_EBUSY);
    ns->frozen = false;
    /* a damaged entry header in a closed data file: refused, nothing changed */
    size_t len;
    uint8_t *orig = read_file(p, &len);
    uint8_t *bad = malloc(len);
    memcpy(bad, orig, len);
    memset(bad + ZDB_DAT_HEADER_SIZE, 0xff, 40);
    write_file(p, bad, len);
    assert_int_equal(zdb_ns_compact_file(ns, 1, NULL, &s), QS_ECORRUPT);
    /* the policy leaves the damaged file alone from now on */
    struct zdb_compact_info cand[64];
    size_t n = 0;
    assert_int_equal(zdb_compact_pick(ns, 0.001, 1, cand, 64, &n), 0);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(cand[i].fileid, 1);
    size_t len2;
    uint8_t *after = read_file(p, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(after, bad, len);
    assert_int_equal(leftovers(&e), 0);
    write_file(p, orig, len);
    free(bad);
    free(after);
    model_check(ns, m);

    /* a damaged payload of a live value: copied as it is (compaction never repairs), and
     * counted; the CRC check still fails afterwards */
    uint8_t k[16];
    size_t kl = 0, victim = 0;
    struct zdb_loc loc;
    for (size_t i = 0; i < m->n; i++) {
        kl = user_key(k, i);
        if (m->seed[i] && zdb_ns_lookup(ns, k, kl, &loc) == 0 && loc.fileid == 1) {
            victim = i;
            break;
        }
    }
    assert_int_equal(loc.fileid, 1);
    uint8_t *rot = malloc(len);
    memcpy(rot, orig, len);
    rot[loc.dataoff + ZDB_DAT_ENTRY_SIZE + kl + 3] ^= 1;
    write_file(p, rot, len);
    assert_int_equal(zdb_ns_compact_file(ns, 1, NULL, &s), 0);
    assert_int_equal(s.files, 1);
    assert_int_equal(s.damaged, 1);
    assert_int_equal(zdb_ns_lookup(ns, k, kl, &loc), 0);
    uint8_t got[8192];
    bool ok = true;
    assert_int_equal(zdb_ns_read(ns, &loc, got, &ok), 0);
    assert_false(ok);
    do_del_user(ns, m, victim);
    model_check(ns, m);
    free(rot);
    free(orig);
    free(m);
    env_free(&e);
}

/* The exact bytes: reclaimed versions get offset 0 and the deleted flag; live entries point
 * at their new place; `previous` is renumbered; the header is marked. */
static void test_user_layout(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, ZDB_MODE_USER);
    env_open(&e);
    struct zdb_ns *ns = ns_default(&e);
    struct model *m = calloc(1, sizeof(*m));
    do_set_user(ns, m, 0, 1); /* d0:28  */
    do_set_user(ns, m, 1, 2); /* kept */
    do_set_user(ns, m, 0, 3); /* overwrite: k0 v1 dead */
    do_set_user(ns, m, 2, 4);
    do_del_user(ns, m, 2); /* k2 dead, tombstone */
    do_set_user(ns, m, 3, 5);
    assert_int_equal(zdb_ns_jump(ns), 0);
    do_set_user(ns, m, 1, 6); /* k1 in d0 dead: superseded from d1 */
    assert_int_equal(zdb_ns_jump(ns), 0);

    char ip[700], dp[700];
    file_path(&e, 'i', 0, ip, sizeof(ip));
    file_path(&e, 'd', 0, dp, sizeof(dp));
    size_t ilen0, dlen0;
    uint8_t *i0 = read_file(ip, &ilen0), *d0 = read_file(dp, &dlen0);
    struct zdb_compact_stats s;
    assert_int_equal(zdb_ns_compact_file(ns, 0, NULL, &s), 0);
    assert_int_equal(s.files, 1);
    assert_int_equal(s.entries_kept, 2);       /* k0 v3, k3 v5 */
    assert_int_equal(s.entries_dropped, 3);    /* k0 v1, k1 v2, k2 v4 */
    assert_int_equal(s.tombstones_dropped, 1); /* d0 is the oldest file */
    assert_int_equal(s.index_patches, 5);
    size_t ilen, dlen;
    uint8_t *i1 = read_file(ip, &ilen), *d1 = read_file(dp, &dlen);
    assert_int_equal(ilen, ilen0);
    size_t k0 = ZDB_DAT_ENTRY_SIZE + 2, v3 = val_len(3), v5 = val_len(5);
    assert_int_equal(dlen, ZDB_DAT_HEADER_SIZE + 2 * k0 + v3 + v5);
    assert_int_equal(s.bytes_after, dlen);
    assert_int_equal(s.bytes_before, dlen0);
    struct zdb_dat_header h0, h1;
    assert_int_equal(zdb_dat_header_decode(&h0, d0, dlen0), 0);
    assert_int_equal(zdb_dat_header_decode(&h1, d1, dlen), 0);
    assert_int_equal(h1.created, h0.created);
    assert_true(h1.opened & ZDB_DAT_OPENED_COMPACTED);
    assert_int_equal(h1.fileid, 0);
    /* data entries: k0 v3 at 28, k3 v5 after it */
    struct zdb_dat_entry a, b;
    assert_int_equal(zdb_dat_entry_decode(&a, d1 + 28, dlen - 28), 0);
    assert_int_equal(a.keylen, 2);
    assert_memory_equal(d1 + 28 + ZDB_DAT_ENTRY_SIZE, "k0", 2);
    assert_int_equal(a.previous, 0);
    size_t off2 = 28 + k0 + v3;
    assert_int_equal(zdb_dat_entry_decode(&b, d1 + off2, dlen - off2), 0);
    assert_memory_equal(d1 + off2 + ZDB_DAT_ENTRY_SIZE, "k3", 2);
    assert_int_equal(b.previous, 28);
    assert_int_equal(b.timestamp, 1005);
    /* index entries, in order: k0 v1, k1 v2, k0 v3, k2 v4, k3 v5 */
    uint32_t want_off[5] = {0, 0, 28, 0, (uint32_t)off2};
    uint8_t want_flag[5] = {1, 1, 0, 1, 0};
    size_t pos = ZDB_IDX_HEADER_SIZE;
    for (int i = 0; i < 5; i++) {
        struct zdb_idx_entry ie, old;
        assert_int_equal(zdb_idx_entry_decode(&ie, i1 + pos, ilen - pos), 0);
        assert_int_equal(zdb_idx_entry_decode(&old, i0 + pos, ilen0 - pos), 0);
        assert_int_equal(ie.offset, want_off[i]);
        assert_int_equal(ie.flags, want_flag[i]);
        /* every other field unchanged */
        assert_int_equal(ie.length, old.length);
        assert_int_equal(ie.crc, old.crc);
        assert_int_equal(ie.previous, old.previous);
        assert_int_equal(ie.parentid, old.parentid);
        assert_int_equal(ie.parentoff, old.parentoff);
        assert_int_equal(ie.timestamp, old.timestamp);
        assert_memory_equal(i1 + pos + ZDB_IDX_ENTRY_SIZE, i0 + pos + ZDB_IDX_ENTRY_SIZE,
                            ie.keylen);
        pos += ZDB_IDX_ENTRY_SIZE + ie.keylen;
    }
    assert_int_equal(pos, ilen);
    /* i0 was modified in place: it is dirty */
    bool dirty = false;
    for (size_t i = 0; i < ns->ndirty; i++)
        dirty |= ns->dirty[i] == 0;
    assert_true(dirty);
    free(i0);
    free(d0);
    free(i1);
    free(d1);
    model_check(ns, m);
    env_reopen(&e);
    model_check(ns_default(&e), m);
    free(m);
    env_free(&e);
}

/* Sequential mode: the deleted copies on an id's history chain that named reclaimed values
 * get offset 0; slots keep their positions. */
static void test_seq_history(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, ZDB_MODE_SEQ);
    env_open(&e);
    struct zdb_ns *ns = ns_default(&e);
    struct model *m = calloc(1, sizeof(*m));
    do_set_seq(ns, m, -1, 1); /* id 0 */
    do_set_seq(ns, m, -1, 2); /* id 1 */
    do_set_seq(ns, m, 0, 3);  /* id 0 updated: copy id 2 names v1 */
    do_set_seq(ns, m, 0, 4);  /* copy id 3 names v3 */
    assert_int_equal(zdb_ns_jump(ns), 0);
    do_set_seq(ns, m, 0, 5); /* in d1; copy id 4 (in i1) names v4 in d0 */
    do_del_seq(ns, m, 1);    /* slot 1 deleted, names v2 in d0 */
    assert_int_equal(zdb_ns_jump(ns), 0);
    struct zdb_compact_stats s;
    assert_int_equal(zdb_ns_compact_file(ns, 0, NULL, &s), 0);
    assert_int_equal(s.entries_kept, 0);
    assert_int_equal(s.entries_dropped, 4);
    assert_int_equal(s.index_patches, 4); /* slot 1, copies 2, 3 and 4 */
    char ip[700];
    size_t len;
    file_path(&e, 'i', 0, ip, sizeof(ip));
    uint8_t *i0 = read_file(ip, &len);
    assert_int_equal(len, ZDB_IDX_HEADER_SIZE + 4 * ZDB_SEQ_ENTRY_SIZE);
    for (int id = 0; id < 4; id++) {
        struct zdb_idx_entry ie;
        size_t pos = ZDB_IDX_HEADER_SIZE + (size_t)id * ZDB_SEQ_ENTRY_SIZE;
        assert_int_equal(zdb_idx_entry_decode(&ie, i0 + pos, len - pos), 0);
        if (id == 0) {
            assert_int_equal(ie.dataid, 1); /* the live slot names d1: untouched */
            assert_int_equal(ie.flags, 0);
            assert_int_not_equal(ie.offset, 0);
        } else {
            assert_int_equal(ie.dataid, 0);
            assert_int_equal(ie.offset, 0);
            assert_int_equal(ie.flags, ZDB_IDX_DELETED);
        }
    }
    free(i0);
    file_path(&e, 'i', 1, ip, sizeof(ip));
    uint8_t *i1 = read_file(ip, &len);
    struct zdb_idx_entry ie;
    assert_int_equal(zdb_idx_entry_decode(&ie, i1 + ZDB_IDX_HEADER_SIZE, len), 0);
    assert_int_equal(ie.dataid, 0);
    assert_int_equal(ie.offset, 0);
    free(i1);
    model_check(ns, m);
    env_reopen(&e);
    model_check(ns_default(&e), m);
    free(m);
    env_free(&e);
}

/* A DEL tombstone in a later file is kept, so a rebuild of an older index file cannot bring
 * the deleted key back. */
static void test_tombstones_kept(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, ZDB_MODE_USER);
    env_open(&e);
    struct zdb_ns *ns = ns_default(&e);
    struct model *m = calloc(1, sizeof(*m));
    do_set_user(ns, m, 0, 1);
    do_set_user(ns, m, 1, 2);
    assert_int_equal(zdb_ns_jump(ns), 0);
    do_set_user(ns, m, 2, 3);
    do_set_user(ns, m, 2, 4);
    do_del_user(ns, m, 0); /* tombstone in d1 for a value in d0 */
    assert_int_equal(zdb_ns_jump(ns), 0);
    struct zdb_compact_stats s;
    assert_int_equal(zdb_ns_compact_file(ns, 1, NULL, &s), 0);
    assert_int_equal(s.entries_dropped, 1);
    assert_int_equal(s.tombstones_kept, 1);
    assert_int_equal(s.tombstones_dropped, 0);
    env_close(&e);
    char ip[700];
    file_path(&e, 'i', 0, ip, sizeof(ip));
    assert_int_equal(unlink(ip), 0); /* lost: rebuilt from d0 at the next start */
    env_open(&e);
    model_check(ns_default(&e), m);
    free(m);
    env_free(&e);
}

/* User mode: an index file lost after its data file was compacted is rebuilt from it as
 * before: the compacted file holds exactly the values that were live. */
static void test_user_rebuild_after_compaction(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, ZDB_MODE_USER);
    env_open(&e);
    struct zdb_ns *ns = ns_default(&e);
    struct model *m = calloc(1, sizeof(*m));
    populate(ns, m);
    struct zdb_compact_stats sum;
    assert_true(compact_all(ns, &sum) > 0);
    env_close(&e);
    char ip[700];
    file_path(&e, 'i', 1, ip, sizeof(ip));
    assert_int_equal(unlink(ip), 0);
    env_open(&e);
    model_check(ns_default(&e), m);
    env_reopen(&e);
    model_check(ns_default(&e), m);
    free(m);
    env_free(&e);
}

/* Sequential mode: an index file rebuilt from a compacted data file would move ids: the load
 * is refused with a clear error instead. */
static void test_seq_rebuild_refused(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, ZDB_MODE_SEQ);
    env_open(&e);
    struct zdb_ns *ns = ns_default(&e);
    struct model *m = calloc(1, sizeof(*m));
    populate(ns, m);
    struct zdb_compact_stats s;
    assert_int_equal(zdb_ns_compact_file(ns, 1, NULL, &s), 0);
    assert_int_equal(s.files, 1);
    env_close(&e);
    char ip[700], bp[720];
    file_path(&e, 'i', 1, ip, sizeof(ip));
    snprintf(bp, sizeof(bp), "%s.saved", ip);
    assert_int_equal(rename(ip, bp), 0);
    assert_int_equal(zdb_store_open(&e.st, &e.opts), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "compacted"));
    assert_null(e.st);
    /* i1 comes back (from a copy): the namespace loads again */
    char dp[720];
    snprintf(dp, sizeof(dp), "%s.damaged", ip);
    unlink(dp);
    assert_int_equal(rename(bp, ip), 0);
    env_open(&e);
    model_check(ns_default(&e), m);
    free(m);
    env_free(&e);
}

/* ---- crashes ------------------------------------------------------------------------- */

struct crash {
    int at;
};

static void crash_step(void *ud, int s)
{
    const struct crash *c = ud;
    if (s == c->at)
        _exit(42);
}

/* In a child: open, compact file `fileid` and stop the process at step `at`. Returns true
 * when the child stopped there (false: the compaction never reached that step). */
static bool crash_child(struct env *e, uint32_t fileid, int at)
{
    assert_null(e->st);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct zdb_store *st;
        if (zdb_store_open(&st, &e->opts) != 0)
            _exit(3);
        struct zdb_ns *ns = zdb_store_find(st, "default", 7);
        struct crash c = {at};
        struct zdb_compact_opts o = {crash_step, &c};
        struct zdb_compact_stats s;
        int rc = zdb_ns_compact_file(ns, fileid, &o, &s);
        _exit(rc == 0 ? 0 : 4);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 42)
        fail_msg("child exited with %d", WEXITSTATUS(status));
    return WEXITSTATUS(status) == 42;
}

static void run_crashes(int mode)
{
    for (int at = 1; at <= ZDB_COMPACT_STEPS; at++) {
        struct env e;
        env_init(&e, mode);
        env_open(&e);
        struct zdb_ns *ns = ns_default(&e);
        struct model *m = calloc(1, sizeof(*m));
        populate(ns, m);
        uint32_t active = ns->fileid;
        env_close(&e);
        uint64_t before = data_files_size(&e, active);
        assert_true(crash_child(&e, 1, at));
        if (at == ZDB_COMPACT_STEP_DONE)
            assert_int_equal(leftovers(&e), 0);
        else
            assert_true(leftovers(&e) >= 1); /* temporary files, or the journal */
        env_open(&e);                        /* recovery */
        assert_int_equal(leftovers(&e), 0);
        ns = ns_default(&e);
        model_check(ns, m);
        uint64_t mid = data_files_size(&e, active);
        if (at >= ZDB_COMPACT_STEP_COMMITTED)
            assert_true(mid < before); /* finished */
        else
            assert_int_equal(mid, before); /* rolled back */
        /* again, to the end, then a restart */
        struct zdb_compact_stats sum;
        compact_all(ns, &sum);
        model_check(ns, m);
        env_reopen(&e);
        model_check(ns_default(&e), m);
        assert_int_equal(leftovers(&e), 0);
        free(m);
        env_free(&e);
    }
}

static void test_user_crashes(void **state)
{
    (void)state;
    run_crashes(ZDB_MODE_USER);
}

static void test_seq_crashes(void **state)
{
    (void)state;
    run_crashes(ZDB_MODE_SEQ);
}

/* A committed journal applied twice (a crash during recovery) changes nothing more. */
static void test_journal_replay_twice(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        struct env e;
        env_init(&e, mode);
        env_open(&e);
        struct model *m = calloc(1, sizeof(*m));
        populate(ns_default(&e), m);
        uint32_t active = ns_default(&e)->fileid;
        env_close(&e);
        assert_true(crash_child(&e, 2, ZDB_COMPACT_STEP_PATCHED));
        char jp[700], saved[720];
        snprintf(jp, sizeof(jp), "%s/default/compact", e.idx);
        snprintf(saved, sizeof(saved), "%s/journal-copy", e.root);
        size_t jlen;
        uint8_t *j = read_file(jp, &jlen);
        env_open(&e);
        model_check(ns_default(&e), m);
        env_close(&e);
        /* snapshot every index file, put the journal back, open again */
        uint8_t *snap[64];
        size_t slen[64];
        for (uint32_t f = 0; f <= active; f++) {
            char p[700];
            file_path(&e, 'i', f, p, sizeof(p));
            snap[f] = read_file(p, &slen[f]);
        }
        write_file(jp, j, jlen);
        env_open(&e);
        assert_int_equal(leftovers(&e), 0);
        model_check(ns_default(&e), m);
        env_close(&e);
        for (uint32_t f = 0; f <= active; f++) {
            char p[700];
            file_path(&e, 'i', f, p, sizeof(p));
            size_t l;
            uint8_t *now = read_file(p, &l);
            assert_int_equal(l, slen[f]);
            assert_memory_equal(now, snap[f], l);
            free(now);
            free(snap[f]);
        }
        free(j);
        free(m);
        env_free(&e);
    }
}

/* A damaged journal: rolled back while the new data file is still aside; refused once the
 * data file was replaced. */
static void test_damaged_journal(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, ZDB_MODE_USER);
    env_open(&e);
    struct model *m = calloc(1, sizeof(*m));
    populate(ns_default(&e), m);
    env_close(&e);
    char jp[700];
    snprintf(jp, sizeof(jp), "%s/default/compact", e.idx);

    assert_true(crash_child(&e, 1, ZDB_COMPACT_STEP_COMMITTED));
    size_t len;
    uint8_t *j = read_file(jp, &len);
    j[len / 2] ^= 0x55;
    write_file(jp, j, len);
    free(j);
    env_open(&e); /* d1.compact still there: rolled back */
    assert_int_equal(leftovers(&e), 0);
    model_check(ns_default(&e), m);
    env_close(&e);

    assert_true(crash_child(&e, 1, ZDB_COMPACT_STEP_RENAMED));
    j = read_file(jp, &len);
    j[len / 2] ^= 0x55;
    write_file(jp, j, len);
    free(j);
    assert_int_equal(zdb_store_open(&e.st, &e.opts), QS_ECORRUPT);
    assert_non_null(strstr(qs_err_msg(), "journal"));
    free(m);
    env_free(&e);
}

/* Reads through mappings (the server's default): a mapping of the old file must not be used
 * after the switch. */
static void test_mapped_reads(void **state)
{
    (void)state;
    assert_int_equal(qs_guard_install(), 0);
    for (int mode = 0; mode < 2; mode++) {
        struct env e;
        env_init(&e, mode);
        e.opts.mmap_reads = true;
        env_open(&e);
        struct zdb_ns *ns = ns_default(&e);
        struct model *m = calloc(1, sizeof(*m));
        populate(ns, m);
        model_check(ns, m); /* maps every data file */
        struct zdb_compact_stats sum;
        assert_true(compact_all(ns, &sum) > 0);
        model_check(ns, m);
        free(m);
        env_free(&e);
    }
}

/* The automatic trigger: it looks first, then compacts one file per call. */
static void test_auto(void **state)
{
    (void)state;
    struct env e;
    env_init(&e, ZDB_MODE_USER);
    env_open(&e);
    struct zdb_ns *ns = ns_default(&e);
    struct model *m = calloc(1, sizeof(*m));
    populate(ns, m);
    struct zdb_compact_stats s;
    time_t now = 100000;
    assert_int_equal(zdb_compact_auto(ns, 0.99, now, NULL, &s), 0); /* looks, finds nothing */
    assert_int_equal(ns->compact.ntodo, 0);
    assert_int_equal(zdb_compact_auto(ns, 0.2, now + 1, NULL, &s), 0); /* too early */
    assert_int_equal(ns->compact.ntodo, 0);
    now += ZDB_COMPACT_AUTO_EVERY;
    assert_int_equal(zdb_compact_auto(ns, 0.2, now, NULL, &s), 0); /* unchanged since */
    do_set_user(ns, m, 1, 9000);
    assert_int_equal(zdb_compact_auto(ns, 0.2, now, NULL, &s), 0); /* looks */
    unsigned todo = ns->compact.ntodo;
    assert_true(todo >= 2);
    int done = 0;
    for (unsigned i = 0; i < todo; i++) {
        int rc = zdb_compact_auto(ns, 0.2, now, NULL, &s);
        assert_true(rc == 1 || rc == 0);
        done += rc;
    }
    assert_true(done >= 2);
    model_check(ns, m);
    /* what is left is below the ratio */
    struct zdb_compact_info cand[64];
    size_t n;
    assert_int_equal(zdb_compact_pick(ns, 0.2, 4096, cand, 64, &n), 0);
    assert_int_equal(n, 0);
    free(m);
    env_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_basic),
        cmocka_unit_test(test_seq_basic),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_user_layout),
        cmocka_unit_test(test_seq_history),
        cmocka_unit_test(test_tombstones_kept),
        cmocka_unit_test(test_user_rebuild_after_compaction),
        cmocka_unit_test(test_seq_rebuild_refused),
        cmocka_unit_test(test_user_crashes),
        cmocka_unit_test(test_seq_crashes),
        cmocka_unit_test(test_journal_replay_twice),
        cmocka_unit_test(test_damaged_journal),
        cmocka_unit_test(test_mapped_reads),
        cmocka_unit_test(test_auto),
    };
    return cmocka_run_group_tests(tests, NULL, remove_leftovers);
}
