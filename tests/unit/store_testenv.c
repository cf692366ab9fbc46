/* The store unit tests' temporary-directory engine (store_testenv.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_testenv.h"

static void on_jump(void *ud, struct zdb_ns *ns, uint32_t oldid, uint32_t newid)
{
    struct env *e = ud;
    (void)ns;
    e->jumps++;
    e->last_jump_old = oldid;
    e->last_jump_new = newid;
}

/* Roots of environments not freed yet: a failing test longjmps out before env_free, and
 * the group teardown removes what it left. */
#define MAX_ROOTS 64
static char g_roots[MAX_ROOTS][512];

void env_init(struct env *e, int fixed_mode)
{
    memset(e, 0, sizeof(*e));
    /* TMPDIR if set, else /dev/shm: the engine fsyncs its descriptor on every open, which
     * costs milliseconds on a busy disk and nothing on tmpfs. */
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(e->root, sizeof(e->root), "%s/qsfs-store-test-XXXXXX", tmp);
    assert_non_null(mkdtemp(e->root));
    for (int i = 0; i < MAX_ROOTS; i++) {
        if (!g_roots[i][0]) {
            memcpy(g_roots[i], e->root, sizeof(e->root));
            break;
        }
    }
    snprintf(e->idx, sizeof(e->idx), "%s/index", e->root);
    snprintf(e->dat, sizeof(e->dat), "%s/data", e->root);
    e->opts.index_dir = e->idx;
    e->opts.data_dir = e->dat;
    e->opts.datasize = ZDB_DATASIZE_MIN; /* 512 KiB */
    e->opts.fixed_mode = fixed_mode;
    e->opts.events.ud = e;
    e->opts.events.jump = on_jump;
}

int env_open_rc(struct env *e)
{
    assert_null(e->st);
    return zdb_store_open(&e->st, &e->opts);
}

void env_open(struct env *e)
{
    int rc = env_open_rc(e);
    if (rc != 0)
        fail_msg("zdb_store_open: %d %s", rc, qs_err_msg());
    assert_non_null(e->st);
}

void env_close(struct env *e)
{
    zdb_store_close(e->st);
    e->st = NULL;
}

void env_reopen(struct env *e)
{
    env_close(e);
    env_open(e);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void env_free(struct env *e)
{
    if (e->st)
        env_close(e);
    nftw(e->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < MAX_ROOTS; i++)
        if (strcmp(g_roots[i], e->root) == 0)
            g_roots[i][0] = '\0';
}

int remove_leftovers(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_ROOTS; i++) {
        if (g_roots[i][0])
            nftw(g_roots[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        g_roots[i][0] = '\0';
    }
    return 0;
}

struct zdb_ns *ns_default(struct env *e)
{
    struct zdb_ns *ns = zdb_store_find(e->st, "default", 7);
    assert_non_null(ns);
    return ns;
}
