/* Internal state of a backend, shared by backend.c (zdb, dispatch) and dir.c. */
#ifndef QSFS_BACKEND_BACKEND_PRIVATE_H
#define QSFS_BACKEND_BACKEND_PRIVATE_H

#include "backend/backend.h"
#include "zdbclient/pool.h"

struct qs_backend {
    enum qs_backend_kind kind;
    enum qs_backend_role role;
    char name[400];
    size_t max_value;
    /* request counters for the error rate (dir; zdb uses its client's) */
    uint64_t ops, op_failures;
    uint64_t prev_ops, prev_failures; /* at the last probe */
    double err_ewma;

    /* zdb */
    struct qs_zdb *zdb;       /* own, or (pool) the one lent for the current call */
    struct qs_zdb_pool *pool; /* borrowed: connections are lent per call, or NULL */
    const atomic_int *cancel; /* for the connections lent */
    bool mode_ok;             /* namespace mode checked on this backend */

    /* dir */
    char *root;
    bool nosync, nocreate;
    bool attached, cleaned;
    bool have_id; /* id below is pinned (expected, or seen at the first attach) */
    char id[33];
};

int qs_dir_attach(struct qs_backend *b);
int qs_dir_put(struct qs_backend *b, const void *val, size_t len, struct qs_backend_key *key);
int qs_dir_get(struct qs_backend *b, const struct qs_backend_key *key, uint8_t **val, size_t *len);
int qs_dir_del(struct qs_backend *b, const struct qs_backend_key *key);
int qs_dir_set_named(struct qs_backend *b, const char *name, const void *val, size_t len);
int qs_dir_get_named(struct qs_backend *b, const char *name, uint8_t **val, size_t *len);
int qs_dir_del_named(struct qs_backend *b, const char *name);
int qs_dir_list_named(struct qs_backend *b, const char *prefix, qs_backend_name_fn fn, void *ud);
int qs_dir_list_keys(struct qs_backend *b, qs_backend_key_fn fn, void *ud);
int qs_dir_probe(struct qs_backend *b, struct qs_backend_health *h);

#endif
