/* lib/zstor through its API, with dir:// share directories in a temporary directory (no
 * server): store, check, retrieve, scrub, list, delete, rebuild, and the failures that
 * must leave nothing behind. The command line and zdb clusters are tested by
 * tests/integration/test_zstor_*.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/hash.h"
#include "config/config.h"
#include "zstor/check.h"
#include "zstor/cluster.h"
#include "zstor/list.h"
#include "zstor/rebuild.h"
#include "zstor/retrieve.h"
#include "zstor/store.h"
#include "util/crc32c.h"
#include "util/log.h"
#include "util/mem.h"
#include "zstor/private.h" /* metadata I/O, to plant a crafted record */
#include "zstor/zstor.h"

static char g_tmp[64];

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    return remove(p);
}

static int setup(void **state)
{
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/qsfs-zstor-XXXXXX");
    assert_non_null(mkdtemp(g_tmp));
    return 0;
}

static int teardown(void **state)
{
    nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* A fresh test directory: root/ for files and b/ for the share directories. */
static void fresh(const char *name, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/%s", g_tmp, name);
    assert_int_equal(mkdir(dir, 0700), 0);
    char p[300];
    snprintf(p, sizeof(p), "%s/root", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/b", dir);
    assert_int_equal(mkdir(p, 0700), 0);
}

static struct zstor_config *config(const char *dir, unsigned ngroups)
{
    char text[8192];
    int n = snprintf(text, sizeof(text),
                     "minimal_shards = 4\nexpected_shards = 6\nredundant_groups = 1\n"
                     "redundant_nodes = 0\nroot = \"%s/root\"\n"
                     "[encryption]\nalgorithm = \"AES\"\nkey = \"%064d\"\n"
                     "[compression]\nalgorithm = \"snappy\"\n[meta]\ntype = \"zdb\"\n"
                     "[meta.config]\nprefix = \"ut\"\n[meta.config.encryption]\n"
                     "algorithm = \"AES\"\nkey = \"%064d\"\n",
                     dir, 7, 9);
    for (int i = 0; i < 4; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n,
                      "[[meta.config.backends]]\naddress = \"dir://%s/b/m%d\"\n", dir, i);
    for (unsigned g = 0; g < ngroups; g++) {
        n += snprintf(text + n, sizeof(text) - (size_t)n, "[[groups]]\n");
        for (int j = 0; j < 2; j++)
            n += snprintf(text + n, sizeof(text) - (size_t)n,
                          "[[groups.backends]]\naddress = \"dir://%s/b/d%u%d\"\n", dir, g, j);
    }
    struct zstor_config *cfg = NULL;
    if (zstor_config_parse(text, (size_t)n, "test.toml", &cfg) < 0)
        fail_msg("config: %s", qs_err_msg());
    return cfg;
}

static struct zstor_ctx *ctx(const struct zstor_config *cfg)
{
    struct zstor_ctx_opts o;
    zstor_ctx_opts_default(&o);
    o.workers = 2;
    o.dir_nosync = true;
    o.dir_create = true;
    struct zstor_ctx *z = NULL;
    if (zstor_ctx_new(&z, cfg, &o) < 0)
        fail_msg("ctx: %s", qs_err_msg());
    return z;
}

static uint8_t *random_bytes(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    uint64_t x = 0x9e3779b97f4a7c15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
    return p;
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void assert_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *got = malloc(n + 1);
    assert_non_null(got);
    assert_int_equal(fread(got, 1, n + 1, f), n);
    fclose(f);
    assert_memory_equal(got, p, n);
    free(got);
}

/* Files below dir (recursively). */
static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[600];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            n += count_files(p);
        else
            n++;
    }
    closedir(d);
    return n;
}

static size_t stored_values(const char *dir)
{
    char p[300];
    size_t n = 0;
    for (int g = 0; g < 4; g++)
        for (int j = 0; j < 2; j++) {
            snprintf(p, sizeof(p), "%s/b/d%d%d/data", dir, g, j);
            n += count_files(p);
        }
    return n;
}

static int count_entry(void *ud, const struct zstor_list_entry *e)
{
    (*(int *)ud)++;
    return 0;
}

static void test_roundtrip_and_loss(void **state)
{
    char dir[200], file[300], out[300], p[300];
    fresh("rt", dir, sizeof(dir));
    struct zstor_config *cfg = config(dir, 3);
    struct zstor_ctx *z = ctx(cfg);
    size_t sizes[] = {0, 1, 1048576, 2500001};
    for (size_t i = 0; i < 4; i++) {
        uint8_t *data = random_bytes(sizes[i]);
        snprintf(file, sizeof(file), "%s/root/f%zu", dir, i);
        write_file(file, data, sizes[i]);
        struct zstor_store_result res;
        if (zstor_store(z, file, NULL, &res) < 0)
            fail_msg("store: %s", qs_err_msg());
        assert_int_equal(res.stored, 1);
        uint8_t sum[16], want[16];
        bool found;
        assert_int_equal(zstor_check(z, file, sum, &found), 0);
        assert_true(found);
        qs_hash128(want, data, sizes[i]);
        assert_memory_equal(sum, want, 16);
        /* the same content again: nothing uploaded */
        size_t before = stored_values(dir);
        assert_int_equal(zstor_store(z, file, NULL, &res), 0);
        assert_int_equal(res.unchanged, 1);
        assert_int_equal(stored_values(dir), before);
        free(data);
    }
    int n = 0;
    assert_int_equal(zstor_list(z, NULL, count_entry, &n), 0);
    assert_int_equal(n, 4);
    zstor_ctx_free(z);

    /* two data and two meta share directories lost: everything reads back */
    const char *gone[] = {"d00", "d11", "m1", "m2"};
    for (size_t i = 0; i < 4; i++) {
        char to[300];
        snprintf(p, sizeof(p), "%s/b/%s", dir, gone[i]);
        snprintf(to, sizeof(to), "%s.gone", p);
        assert_int_equal(rename(p, to), 0);
    }
    z = ctx(cfg);
    for (size_t i = 0; i < 4; i++) {
        uint8_t *data = random_bytes(sizes[i]);
        snprintf(file, sizeof(file), "%s/root/f%zu", dir, i);
        snprintf(out, sizeof(out), "%s/out%zu", dir, i);
        struct zstor_retrieve_opts ro = {.out = out, .out_fd = -1};
        struct zstor_retrieve_result rr;
        if (zstor_retrieve(z, file, &ro, &rr) < 0)
            fail_msg("retrieve: %s", qs_err_msg());
        assert_file(out, data, sizes[i]);
        struct zstor_scrub_result sr;
        assert_int_equal(zstor_scrub(z, file, &sr), 0);
        unsigned damaged = 0;
        for (unsigned s = 0; s < sr.nshards; s++)
            damaged += sr.missing[s] == sr.chunks;
        assert_int_equal(damaged, 2);
        free(data);
    }
    /* writes need every meta backend: refused, nothing written */
    size_t before = stored_values(dir);
    snprintf(file, sizeof(file), "%s/root/new", dir);
    write_file(file, (const uint8_t *)"new", 3);
    assert_int_equal(zstor_store(z, file, NULL, NULL), QS_ETOOFEW);
    assert_non_null(strstr(qs_err_msg(), "meta backend not usable"));
    assert_int_equal(stored_values(dir), before);
    zstor_ctx_free(z);
    zstor_config_free(cfg);
}

static void test_paths_and_delete(void **state)
{
    char dir[200], file[300], key[256];
    fresh("pd", dir, sizeof(dir));
    struct zstor_config *cfg = config(dir, 3);
    struct zstor_ctx *z = ctx(cfg);
    char *rel = NULL;
    snprintf(file, sizeof(file), "%s/root//a/./b/../c", dir);
    assert_int_equal(zstor_path_key(z, file, key, &rel), 0);
    assert_string_equal(rel, "a/c");
    free(rel);
    assert_int_equal(zstor_path_key(z, "/elsewhere/x", key, NULL), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "outside root"));

    snprintf(file, sizeof(file), "%s/root/d", dir);
    uint8_t *data = random_bytes(300000);
    write_file(file, data, 300000);
    assert_int_equal(zstor_store(z, file, NULL, NULL), 0);
    assert_int_equal(stored_values(dir), 6);
    assert_int_equal(zstor_delete(z, file), 0);
    assert_int_equal(stored_values(dir), 0);
    uint8_t sum[16];
    bool found = true;
    assert_int_equal(zstor_check(z, file, sum, &found), 0);
    assert_false(found);
    assert_int_equal(zstor_delete(z, file), QS_ENOTFOUND);
    assert_int_equal(zstor_retrieve(z, file, NULL, NULL), QS_ENOTFOUND);
    free(data);
    zstor_ctx_free(z);
    zstor_config_free(cfg);
}

/* Stores 1.5 MB of random data as file, then moves the share directory of its shard 0
 * away (to `to`): a rebuild has work. Returns the data (free it). */
static uint8_t *store_and_lose_share(const struct zstor_config *cfg, const char *file, char *p,
                                     size_t pcap, char *to, size_t tocap)
{
    struct zstor_ctx *z = ctx(cfg);
    uint8_t *data = random_bytes(1500000);
    write_file(file, data, 1500000);
    assert_int_equal(zstor_store(z, file, NULL, NULL), 0);
    struct zstor_meta_record r;
    assert_int_equal(zstor_stat(z, file, &r, NULL), 0);
    snprintf(p, pcap, "%s", r.shard[0].address + strlen("dir://"));
    zstor_meta_record_free(&r);
    zstor_ctx_free(z);
    snprintf(to, tocap, "%s.gone", p);
    assert_int_equal(rename(p, to), 0);
    return data;
}

static void test_rebuild_moves_off_lost_share(void **state)
{
    char dir[200], file[300], p[300], to[300];
    fresh("rb", dir, sizeof(dir));
    struct zstor_config *cfg = config(dir, 4); /* 8 share directories for 6 shards */
    snprintf(file, sizeof(file), "%s/root/r", dir);
    uint8_t *data = store_and_lose_share(cfg, file, p, sizeof(p), to, sizeof(to));
    struct zstor_meta_record r;
    struct zstor_ctx *z;

    z = ctx(cfg);
    struct zstor_rebuild_result res;
    if (zstor_rebuild(z, file, NULL, &res) < 0)
        fail_msg("rebuild: %s", qs_err_msg());
    assert_int_equal(res.moved, 1);
    assert_int_equal(res.rewritten, 2); /* two chunks */
    assert_int_equal(zstor_stat(z, file, &r, NULL), 0);
    bool up[255], incfg[255];
    zstor_stat_shards(z, &r, up, incfg);
    for (unsigned i = 0; i < r.nshards; i++) {
        assert_true(up[i]);
        assert_true(incfg[i]);
        assert_string_not_equal(r.shard[i].address + strlen("dir://"), p);
    }
    zstor_meta_record_free(&r);
    /* nothing left to do */
    assert_int_equal(zstor_rebuild(z, file, NULL, &res), 0);
    assert_int_equal(res.moved + res.rewritten, 0);
    struct zstor_scrub_result sr;
    assert_int_equal(zstor_scrub(z, file, &sr), 0);
    for (unsigned i = 0; i < sr.nshards; i++)
        assert_int_equal(sr.bad[i] + sr.missing[i], 0);
    free(data);
    zstor_ctx_free(z);
    zstor_config_free(cfg);
}

static void test_directories_and_cancel(void **state)
{
    char dir[200], file[300], out[300], p[400];
    fresh("dc", dir, sizeof(dir));
    struct zstor_config *cfg = config(dir, 3);
    atomic_int cancel = 0;
    struct zstor_ctx_opts o;
    zstor_ctx_opts_default(&o);
    o.workers = 2;
    o.dir_nosync = true;
    o.dir_create = true;
    o.cancel = &cancel;
    struct zstor_ctx *z = NULL;
    assert_int_equal(zstor_ctx_new(&z, cfg, &o), 0);

    /* the stored-name prefix of a directory; root itself is every file */
    char *below = NULL;
    snprintf(file, sizeof(file), "%s/root", dir);
    assert_int_equal(zstor_path_below(z, file, &below), 0);
    assert_string_equal(below, "");
    free(below);
    snprintf(file, sizeof(file), "%s/root/t/./s/", dir);
    assert_int_equal(zstor_path_below(z, file, &below), 0);
    assert_string_equal(below, "t/s/");
    free(below);
    assert_int_equal(zstor_path_below(z, "/elsewhere", &below), QS_EINVAL);

    /* a stored directory retrieved below another directory, from root itself */
    snprintf(p, sizeof(p), "%s/root/t", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/root/t/s", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    uint8_t *data = random_bytes(200000);
    snprintf(p, sizeof(p), "%s/root/t/a", dir);
    write_file(p, data, 1000);
    snprintf(p, sizeof(p), "%s/root/t/s/b", dir);
    write_file(p, data, 200000);
    snprintf(p, sizeof(p), "%s/root/t", dir);
    assert_int_equal(zstor_store(z, p, NULL, NULL), 0);
    assert_int_equal(stored_values(dir), 12);
    snprintf(out, sizeof(out), "%s/out", dir);
    struct zstor_retrieve_opts ro = {.out = out, .out_fd = -1};
    struct zstor_retrieve_result rr;
    snprintf(file, sizeof(file), "%s/root", dir);
    assert_int_equal(zstor_retrieve(z, file, &ro, &rr), 0); /* root itself: everything */
    assert_int_equal(rr.files, 2);
    snprintf(p, sizeof(p), "%s/t/a", out);
    assert_file(p, data, 1000);
    snprintf(p, sizeof(p), "%s/t/s/b", out);
    assert_file(p, data, 200000);
    ro.out = NULL;
    ro.out_fd = 1; /* one stream cannot hold a directory: refused before anything */
    snprintf(p, sizeof(p), "%s/root/t", dir);
    assert_int_equal(zstor_retrieve(z, p, &ro, NULL), QS_EINVAL);
    assert_non_null(strstr(qs_err_msg(), "stored directory (2 files below it)"));

    /* cancelled: a store writes nothing, a retrieve leaves no file */
    atomic_store(&cancel, 1);
    snprintf(p, sizeof(p), "%s/root/c", dir);
    write_file(p, data, 200000);
    assert_int_equal(zstor_store(z, p, NULL, NULL), QS_EAGAIN);
    assert_non_null(strstr(qs_err_msg(), "interrupted"));
    assert_int_equal(stored_values(dir), 12);
    snprintf(out, sizeof(out), "%s/out2", dir);
    assert_int_equal(mkdir(out, 0700), 0);
    snprintf(out, sizeof(out), "%s/out2/b", dir);
    ro.out = out;
    ro.out_fd = -1;
    snprintf(p, sizeof(p), "%s/root/t/s/b", dir);
    assert_int_equal(zstor_retrieve(z, p, &ro, NULL), QS_EAGAIN);
    snprintf(out, sizeof(out), "%s/out2", dir);
    assert_int_equal(count_files(out), 0);
    atomic_store(&cancel, 0);
    snprintf(out, sizeof(out), "%s/out2/b", dir);
    assert_int_equal(zstor_retrieve(z, p, &ro, NULL), 0);
    assert_file(out, data, 200000);
    free(data);
    zstor_ctx_free(z);
    zstor_config_free(cfg);
}

/* A metadata record whose name climbs out of the target ("d/../x") is refused by retrieve,
 * and nothing is written outside -o DIR. The record is a real one with its name bytes
 * rewritten and its CRC fixed, sealed with the meta key: only the name check stops it. */
static char g_log[2048];
static void keep_log(enum qs_log_level level, const char *msg, void *ud)
{
    snprintf(g_log, sizeof(g_log), "%s", msg);
}

static void test_crafted_name_refused(void **state)
{
    qs_log_set_handler(keep_log, NULL);
    char dir[200], p[400], out[300];
    fresh("cn", dir, sizeof(dir));
    struct zstor_config *cfg = config(dir, 3);
    struct zstor_ctx *z = ctx(cfg);
    snprintf(p, sizeof(p), "%s/root/d", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/root/d/aa", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/root/d/aa/x", dir);
    uint8_t *data = random_bytes(5000);
    write_file(p, data, 5000);
    assert_int_equal(zstor_store(z, p, NULL, NULL), 0);
    char key[256];
    assert_int_equal(zstor_path_key(z, p, key, NULL), 0);
    uint8_t *plain = NULL;
    size_t len = 0;
    assert_int_equal(zs_meta_load_bytes(z, key, &plain, &len), 0);
    uint8_t *at = memmem(plain, len, "d/aa/x", 6);
    assert_non_null(at);
    memcpy(at + 2, "..", 2);
    qs_put32(plain + len - 4, ~qs_crc32c_update(~0u, plain, len - 4));
    assert_int_equal(zs_meta_save_bytes(z, key, plain, len), 0);
    free(plain);

    snprintf(out, sizeof(out), "%s/out", dir);
    assert_int_equal(mkdir(out, 0700), 0);
    struct zstor_retrieve_opts ro = {.out = out, .out_fd = -1};
    snprintf(p, sizeof(p), "%s/root/d", dir);
    assert_true(zstor_retrieve(z, p, &ro, NULL) < 0);
    /* the record does not decode: the listing warns why, the retrieve finds nothing */
    if (!strstr(g_log, "stored name refused: name 'd/../x' has a '..' component"))
        fail_msg("log: %s / error: %s", g_log, qs_err_msg());
    snprintf(p, sizeof(p), "%s/x", dir); /* where out/../x would have gone */
    struct stat st;
    assert_int_equal(stat(p, &st), -1);
    assert_int_equal(count_files(out), 0);
    snprintf(p, sizeof(p), "%s/root", dir); /* to its own path below root: refused too */
    ro.out = NULL;
    assert_true(zstor_retrieve(z, p, &ro, NULL) < 0);
    snprintf(p, sizeof(p), "%s/root/x", dir);
    assert_int_equal(stat(p, &st), -1);

    /* a symbolic link inside the target is not followed by a tree retrieve */
    snprintf(p, sizeof(p), "%s/root/t", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/root/t/s", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/root/t/s/f", dir);
    write_file(p, data, 5000);
    assert_int_equal(zstor_store(z, p, NULL, NULL), 0);
    snprintf(out, sizeof(out), "%s/out2", dir);
    assert_int_equal(mkdir(out, 0700), 0);
    snprintf(p, sizeof(p), "%s/out2/s", dir);
    assert_int_equal(symlink(g_tmp, p), 0);
    ro.out = out;
    snprintf(p, sizeof(p), "%s/root/t", dir);
    assert_true(zstor_retrieve(z, p, &ro, NULL) < 0);
    assert_non_null(strstr(qs_err_msg(), "is a symbolic link"));
    snprintf(p, sizeof(p), "%s/f", g_tmp);
    assert_int_equal(stat(p, &st), -1);
    free(data);
    qs_log_set_handler(NULL, NULL);
    zstor_ctx_free(z);
    zstor_config_free(cfg);
}

/* A store of the same file while it is being rebuilt: the rebuild (which reads the old
 * version) must not write that version back over the new one; it is undone, and what it
 * wrote goes. The store runs from the rebuild's progress callback, on its own context. */
struct mid_store {
    const struct zstor_config *cfg;
    const char *file;
    const uint8_t *data;
    size_t len;
    int calls, rc;
};

static void store_midway(void *ud, const char *what, uint64_t done, uint64_t total)
{
    struct mid_store *m = ud;
    if (m->calls++)
        return;
    write_file(m->file, m->data, m->len);
    struct zstor_ctx *z2 = ctx(m->cfg);
    m->rc = zstor_store(z2, m->file, NULL, NULL);
    zstor_ctx_free(z2);
}

static void test_rebuild_loses_to_a_store(void **state)
{
    char dir[200], file[300], p[300], to[300];
    fresh("rs", dir, sizeof(dir));
    struct zstor_config *cfg = config(dir, 4);
    snprintf(file, sizeof(file), "%s/root/r", dir);
    uint8_t *v1 = store_and_lose_share(cfg, file, p, sizeof(p), to, sizeof(to));
    struct zstor_ctx *z;

    uint8_t v2[70000];
    for (size_t i = 0; i < sizeof(v2); i++)
        v2[i] = (uint8_t)(i * 31 + 7);
    struct mid_store m = {cfg, file, v2, sizeof(v2), 0, -1};
    struct zstor_ctx_opts o;
    zstor_ctx_opts_default(&o);
    o.workers = 2;
    o.dir_nosync = true;
    o.dir_create = true;
    o.progress = store_midway;
    o.progress_ud = &m;
    assert_int_equal(zstor_ctx_new(&z, cfg, &o), 0);
    struct zstor_rebuild_result res;
    int rc = zstor_rebuild(z, file, NULL, &res);
    assert_int_equal(m.rc, 0);
    assert_int_equal(rc, QS_EBUSY);
    assert_non_null(strstr(qs_err_msg(), "stored again"));
    zstor_ctx_free(z);

    /* the new version is the stored one, and only its shards are there (the old ones on
     * the lost share aside) */
    z = ctx(cfg);
    char out[300];
    snprintf(out, sizeof(out), "%s/out", dir);
    struct zstor_retrieve_opts ro = {.out = out, .out_fd = -1};
    assert_int_equal(zstor_retrieve(z, file, &ro, NULL), 0);
    assert_file(out, v2, sizeof(v2));
    size_t n = 0;
    for (int g = 0; g < 4; g++)
        for (int j = 0; j < 2; j++) {
            char d[400];
            snprintf(d, sizeof(d), "%s/b/d%d%d/data", dir, g, j);
            n += count_files(d);
        }
    assert_int_equal(n, 6); /* one chunk, 6 shards: the rebuild's new shards are gone */
    free(v1);
    zstor_ctx_free(z);
    zstor_config_free(cfg);
}

/* ---- a cluster and its jobs ---- */

struct job_arg {
    struct zstor_cluster *cl;
    char file[300], out[300];
    size_t size;
    int rc;
};

static pthread_mutex_t g_jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_job_lines, g_untagged_lines;

static void job_log(enum qs_log_level level, const char *msg, void *ud)
{
    pthread_mutex_lock(&g_jobs_mu);
    g_job_lines++;
    if (qs_log_job() == 0)
        g_untagged_lines++;
    pthread_mutex_unlock(&g_jobs_mu);
}

static void *job_main(void *arg)
{
    struct job_arg *a = arg;
    struct zstor_ctx *z = NULL;
    a->rc = zstor_ctx_new_on(&z, a->cl, NULL);
    if (a->rc == 0) {
        qs_log_set_job(zstor_ctx_job(z)); /* as a daemon's job runner does */
        zs_probe_data(z, true);           /* lines from the probe threads the job starts */
    }
    if (a->rc == 0)
        a->rc = zstor_store(z, a->file, NULL, NULL);
    struct zstor_retrieve_opts ro = {.out = a->out, .out_fd = -1};
    if (a->rc == 0)
        a->rc = zstor_retrieve(z, a->file, &ro, NULL);
    zstor_ctx_free(z);
    return NULL;
}

/* Jobs on one cluster: four stores and retrieves at once on its one pool; a job started
 * within the probe TTL of another takes its health instead of probing; a backend one job
 * found dead is skipped by the next from the start; a reload gives new jobs the new
 * config while running ones keep theirs. */
static void test_cluster_jobs(void **state)
{
    char dir[200];
    fresh("cl", dir, sizeof(dir));
    struct zstor_cluster_opts co = {.workers = 2, .dir_nosync = true, .dir_create = true};
    struct zstor_cluster *cl = NULL;
    assert_int_equal(zstor_cluster_new(&cl, config(dir, 3), &co), 0);

    /* a first job initialises the share directories (a daemon does it at start) */
    struct zstor_ctx *z0 = NULL;
    assert_int_equal(zstor_ctx_new_on(&z0, cl, NULL), 0);
    char first[300];
    snprintf(first, sizeof(first), "%s/root/first", dir);
    uint8_t *fd = random_bytes(1000);
    write_file(first, fd, 1000);
    free(fd);
    assert_int_equal(zstor_store(z0, first, NULL, NULL), 0);
    zstor_ctx_free(z0);

    qs_log_set_handler(job_log, NULL); /* every line of the jobs carries a job number */
    struct job_arg a[4];
    pthread_t t[4];
    uint8_t *data[4];
    for (int i = 0; i < 4; i++) {
        memset(&a[i], 0, sizeof(a[i]));
        a[i].cl = cl;
        a[i].size = 100000 + (size_t)i * 77777;
        data[i] = random_bytes(a[i].size);
        snprintf(a[i].file, sizeof(a[i].file), "%s/root/j%d", dir, i);
        snprintf(a[i].out, sizeof(a[i].out), "%s/out%d", dir, i);
        write_file(a[i].file, data[i], a[i].size);
        assert_int_equal(pthread_create(&t[i], NULL, job_main, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        if (a[i].rc != 0)
            fail_msg("job %d: %d", i, a[i].rc);
        assert_file(a[i].out, data[i], a[i].size);
        free(data[i]);
    }
    qs_log_set_handler(NULL, NULL);
    assert_true(g_job_lines > 0);
    assert_int_equal(g_untagged_lines, 0);

    /* one health state: a second job right after the first probes nothing */
    uint64_t before, after;
    unsigned gens;
    struct zstor_ctx *z1 = NULL, *z2 = NULL;
    assert_int_equal(zstor_ctx_new_on(&z1, cl, NULL), 0);
    zs_probe_data(z1, true);
    zstor_cluster_stats(cl, &before, &gens);
    assert_int_equal(gens, 1);
    assert_int_equal(zstor_ctx_new_on(&z2, cl, NULL), 0);
    zs_probe_data(z2, false);
    zstor_cluster_stats(cl, &after, NULL);
    assert_int_equal(after, before);
    zstor_ctx_free(z2);

    /* a dead backend, found by one job, is skipped by the next one from its start */
    char p[400], gone[400];
    snprintf(p, sizeof(p), "%s/b/d00", dir);
    snprintf(gone, sizeof(gone), "%s/b/d00.gone", dir);
    assert_int_equal(rename(p, gone), 0);
    zs_probe_data(z1, true);
    assert_true(z1->data[0]->probe_rc != 0);
    assert_int_equal(zstor_ctx_new_on(&z2, cl, NULL), 0);
    assert_true(z2->data[0]->probed && z2->data[0]->probe_rc != 0);
    zstor_ctx_free(z2);
    assert_int_equal(rename(gone, p), 0);

    /* a reload: new jobs get the new generation, z1 keeps its own until it ends */
    uint64_t g1 = zstor_ctx_generation(z1);
    const struct zstor_config *c1 = z1->cfg;
    uint64_t g2 = zstor_cluster_reload(cl, config(dir, 3));
    assert_true(g2 > g1);
    assert_int_equal(zstor_ctx_new_on(&z2, cl, NULL), 0);
    assert_int_equal(zstor_ctx_generation(z2), g2);
    assert_ptr_not_equal(z2->cfg, c1);
    assert_ptr_equal(z1->cfg, c1);
    zstor_cluster_stats(cl, NULL, &gens);
    assert_int_equal(gens, 2);
    zstor_ctx_free(z1);
    zstor_cluster_stats(cl, NULL, &gens);
    assert_int_equal(gens, 1); /* the old config went with its last job */
    zstor_ctx_free(z2);
    zstor_cluster_free(cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_loss),
        cmocka_unit_test(test_paths_and_delete),
        cmocka_unit_test(test_rebuild_moves_off_lost_share),
        cmocka_unit_test(test_directories_and_cancel),
        cmocka_unit_test(test_crafted_name_refused),
        cmocka_unit_test(test_cluster_jobs),
        cmocka_unit_test(test_rebuild_loses_to_a_store),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
