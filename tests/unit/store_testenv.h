/* A zdb storage engine on a temporary directory, for the store unit tests
 * (test_store_ns.c, test_store_compact.c): 512 KiB data files, rotations counted through
 * the jump event, directories removed by env_free or, after a failed test, by the group
 * teardown remove_leftovers. */
#ifndef QSFS_TESTS_UNIT_STORE_TESTENV_H
#define QSFS_TESTS_UNIT_STORE_TESTENV_H

#include <stdint.h>

#include "store/ns.h"
#include "store/store.h"

struct env {
    char root[512];
    char idx[600], dat[600];
    struct zdb_store_opts opts;
    struct zdb_store *st;
    /* rotations reported through the jump event */
    unsigned jumps;
    uint32_t last_jump_old, last_jump_new;
};

/* A new environment (TMPDIR, else /dev/shm, else /tmp) in fixed_mode; not opened yet. */
void env_init(struct env *e, int fixed_mode);
/* Opens the store: the result of zdb_store_open. */
int env_open_rc(struct env *e);
/* Opens the store, failing the test on an error. */
void env_open(struct env *e);
void env_close(struct env *e);
void env_reopen(struct env *e);
/* Closes the store if open and removes the directory. */
void env_free(struct env *e);
/* cmocka group teardown: removes the directories of environments a failed test left. */
int remove_leftovers(void **state);
/* The open store's default namespace (fails the test when missing). */
struct zdb_ns *ns_default(struct env *e);

#endif
