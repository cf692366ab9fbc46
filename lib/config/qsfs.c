/* The [qsfs] table of a config file (docs/qsfs.md): the whole stack in one file. Its
 * presence also fills the zstor keys that follow from it, so the daemon, the hook, the
 * qsfs command and a user's `zstor -c qsfs.toml ...` all agree on the paths:
 *   root = dir, socket = dir/zstor.sock, zdb_data_dir_path = dir/data/zdbfs-data,
 *   max_zdb_data_dir_size = cache_mib, zdbfs_mountpoint = mountpoint.
 * A key the file sets itself must agree with that (root, zdb_data_dir_path,
 * zdbfs_mountpoint), or be left out: a root elsewhere would store names that a restore
 * into another directory cannot use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "config/private.h"

#define DEF_DATASIZE_MIB       64
#define DEF_ROTATE_S           900
#define DEF_CHECKPOINT_S       10
#define DEF_CHECKPOINT_ROTATE  8
#define DEF_RETRIEVE_TIMEOUT_S 300
#define DEF_CACHE_MIB          4096
#define SUN_MAX                (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t m = strlen(name);
    char *p = malloc(n + 1 + m + 1);
    if (p) {
        memcpy(p, dir, n);
        p[n] = '/';
        memcpy(p + n + 1, name, m + 1);
    }
    return p;
}

/* Equal as directories ("/a/b" and "/a/b/"). */
static bool same_dir(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    while (na > 1 && a[na - 1] == '/')
        na--;
    while (nb > 1 && b[nb - 1] == '/')
        nb--;
    return na == nb && memcmp(a, b, na) == 0;
}

static int absolute(const struct ctx *c, const struct toml_table *q, const char *key,
                    const char *val)
{
    if (val[0] == '/')
        return 0;
    char pv[80];
    return zcfg_bad(c, toml_table_get(q, key)->line, key[0] == 'd' ? "qsfs.dir" : "qsfs.mountpoint",
                    "must be an absolute path (got \"%s\")",
                    zcfg_printable(val, strlen(val), pv, sizeof(pv)));
}

/* A key the file sets that qsfs derives: it must agree. */
static int agree(const struct ctx *c, const struct toml_table *root, const char *key,
                 const char *given, const char *want)
{
    if (!given || same_dir(given, want))
        return 0;
    char pv[120];
    return zcfg_bad(c, toml_table_get(root, key)->line, key,
                    "with a [qsfs] table this is \"%s\"; leave it out (got \"%s\")",
                    zcfg_printable(want, strlen(want), pv, sizeof(pv)), given);
}

int zcfg_parse_qsfs(const struct ctx *c, const struct toml_table *root)
{
    static const char *const keys[] = {"dir",
                                       "mountpoint",
                                       "datasize_mib",
                                       "rotate_s",
                                       "checkpoint_s",
                                       "retrieve_timeout_s",
                                       "cache_mib",
                                       "zdbfs_options",
                                       "checkpoint_rotate_mib",
                                       "upload_priority",
                                       "upload_defer_s",
                                       NULL};
    struct zstor_config *cfg = c->cfg;
    struct zstor_qsfs *q = &cfg->qsfs;
    const struct toml_value *v;
    int rc = zcfg_lookup(c, root, "", 0, "qsfs", false, TOML_TABLE, &v);
    if (rc || !v)
        return rc;
    const struct toml_table *t = v->u.table;
    q->present = true;
    q->line = v->line;
    q->datasize_mib = DEF_DATASIZE_MIB;
    q->rotate_s = DEF_ROTATE_S;
    q->checkpoint_s = DEF_CHECKPOINT_S;
    q->checkpoint_rotate_mib = DEF_CHECKPOINT_ROTATE;
    q->retrieve_timeout_s = DEF_RETRIEVE_TIMEOUT_S;
    q->cache_mib = DEF_CACHE_MIB;
    q->upload_priority = ZSTOR_QSFS_PRIO_IDLE;
    q->upload_defer_s = DEF_CHECKPOINT_S;
    char *prio = NULL;
    unsigned cache_line = 0;
    if ((rc = zcfg_check_keys(c, t, "qsfs", keys)) ||
        (rc = zcfg_get_string(c, t, "qsfs", v->line, "dir", true, false, 200, &q->dir, NULL)) ||
        (rc = absolute(c, t, "dir", q->dir)) ||
        (rc = zcfg_get_string(c, t, "qsfs", v->line, "mountpoint", true, false, MAX_PATH_LEN,
                              &q->mountpoint, NULL)) ||
        (rc = absolute(c, t, "mountpoint", q->mountpoint)) ||
        (rc = zcfg_get_unsigned(c, t, "qsfs", v->line, "datasize_mib", false, 1, 4096,
                                &q->datasize_mib, NULL)) ||
        (rc = zcfg_get_unsigned(c, t, "qsfs", v->line, "rotate_s", false, 1, 86400, &q->rotate_s,
                                NULL)) ||
        (rc = zcfg_get_unsigned(c, t, "qsfs", v->line, "checkpoint_s", false, 0, 86400,
                                &q->checkpoint_s, NULL)) ||
        (rc = zcfg_get_unsigned(c, t, "qsfs", v->line, "checkpoint_rotate_mib", false, 0, 4096,
                                &q->checkpoint_rotate_mib, NULL)) ||
        (rc = zcfg_get_unsigned(c, t, "qsfs", v->line, "retrieve_timeout_s", false, 1, 86400,
                                &q->retrieve_timeout_s, NULL)) ||
        (rc = zcfg_get_unsigned(c, t, "qsfs", v->line, "cache_mib", false, 1, 1u << 30,
                                &q->cache_mib, &cache_line)) ||
        (rc = zcfg_get_unsigned(c, t, "qsfs", v->line, "upload_defer_s", false, 0, 3600,
                                &q->upload_defer_s, NULL)) ||
        (rc = zcfg_get_string(c, t, "qsfs", v->line, "upload_priority", false, false, 16, &prio,
                              NULL)) ||
        (rc = zcfg_get_string(c, t, "qsfs", v->line, "zdbfs_options", false, true, 4096,
                              &q->zdbfs_options, NULL))) {
        free(prio);
        return rc;
    }
    if (prio) {
        static const char *const names[] = {"idle", "low", "normal"};
        int found = 0;
        for (int i = 0; i < 3; i++)
            if (!strcmp(prio, names[i]))
                found = i + 1;
        free(prio);
        if (!found)
            return zcfg_bad(c, toml_table_get(t, "upload_priority")->line, "qsfs.upload_priority",
                            "expected \"idle\", \"low\" or \"normal\"");
        q->upload_priority = found;
    }
    if (!q->zdbfs_options && !(q->zdbfs_options = zcfg_dup_mem("", 0)))
        return zcfg_nomem();
    if (strlen(q->dir) + sizeof("/zstor.sock.lock") > SUN_MAX)
        return zcfg_bad(c, toml_table_get(t, "dir")->line, "qsfs.dir",
                        "is too long: its sockets must fit %zu bytes", SUN_MAX);

    char *data_dir = path_join(q->dir, "data/zdbfs-data");
    if (!data_dir)
        return zcfg_nomem();
    if ((rc = agree(c, root, "root", cfg->root, q->dir)) ||
        (rc = agree(c, root, "zdb_data_dir_path", cfg->zdb_data_dir_path, data_dir)) ||
        (rc = agree(c, root, "zdbfs_mountpoint", cfg->zdbfs_mountpoint, q->mountpoint))) {
        free(data_dir);
        return rc;
    }
    if (cfg->max_zdb_data_dir_size && cache_line)
        return free(data_dir), zcfg_bad(c, cache_line, "qsfs.cache_mib",
                                        "max_zdb_data_dir_size says the same: set only one");
    if (cfg->max_zdb_data_dir_size)
        q->cache_mib =
            (unsigned)(cfg->max_zdb_data_dir_size > (1u << 30) ? (1u << 30)
                                                               : cfg->max_zdb_data_dir_size);
    else
        cfg->max_zdb_data_dir_size = q->cache_mib;
    free(cfg->zdb_data_dir_path);
    cfg->zdb_data_dir_path = data_dir;
    if (!cfg->root && !(cfg->root = zcfg_dup_mem(q->dir, strlen(q->dir))))
        return zcfg_nomem();
    if (!cfg->zdbfs_mountpoint &&
        !(cfg->zdbfs_mountpoint = zcfg_dup_mem(q->mountpoint, strlen(q->mountpoint))))
        return zcfg_nomem();
    if (!cfg->socket && !(cfg->socket = path_join(q->dir, "zstor.sock")))
        return zcfg_nomem();
    return 0;
}
