/* zstor check, stat and delete (check.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "zstor/check.h"
#include "zstor/private.h"

static int fail(int rc, const char *what, const char *path)
{
    char msg[900];
    snprintf(msg, sizeof(msg), "%s", qs_err_msg());
    return qs_err_set(rc, "%s %s: %s", what, path, msg);
}

int zstor_stat(struct zstor_ctx *z, const char *path, struct zstor_meta_record *r,
               struct zstor_meta_open_info *info)
{
    memset(r, 0, sizeof(*r));
    char key[256];
    int rc = zstor_path_key(z, path, key, NULL);
    if (rc == 0)
        rc = zs_meta_load(z, key, r, info, NULL);
    return rc;
}

int zstor_check(struct zstor_ctx *z, const char *path, uint8_t sum[16], bool *found)
{
    *found = false;
    struct zstor_meta_record r;
    int rc = zstor_stat(z, path, &r, NULL);
    if (rc == 0) {
        memcpy(sum, r.checksum, 16);
        *found = true;
    } else if (rc == QS_ENOTFOUND) {
        rc = 0;
    } else {
        rc = fail(rc, "check", path);
    }
    zstor_meta_record_free(&r);
    return rc;
}

void zstor_stat_shards(struct zstor_ctx *z, const struct zstor_meta_record *r, bool *up,
                       bool *in_config)
{
    struct zs_bk *bks[QS_CODEC_MAX_SHARDS];
    int src[QS_CODEC_MAX_SHARDS];
    size_t nb = 0;
    for (unsigned p = 0; p < r->nshards; p++) {
        src[p] = -1;
        if (!(r->shard[p].flags & ZSTOR_META_SHARD_ABSENT))
            src[p] = zs_data_lookup(z, r->shard[p].address, r->shard[p].ns);
        if (src[p] >= 0)
            bks[nb++] = z->data[src[p]];
    }
    zs_probe(bks, nb, true);
    for (unsigned p = 0; p < r->nshards; p++) {
        up[p] = src[p] >= 0 && z->data[src[p]]->probe_rc == 0;
        in_config[p] = src[p] >= 0 && (size_t)src[p] < z->ncfg;
    }
}

int zstor_delete(struct zstor_ctx *z, const char *path)
{
    char key[256];
    int rc = zstor_path_key(z, path, key, NULL);
    if (rc == 0)
        rc = zs_meta_writable(z, "delete");
    struct zstor_meta_record r;
    memset(&r, 0, sizeof(r));
    if (rc == 0)
        rc = zs_meta_load(z, key, &r, NULL, NULL);
    if (rc == QS_ENOTFOUND) {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        rc = qs_err_set(QS_ENOTFOUND, "not stored (%s)", msg);
    }
    if (rc == 0) {
        uint64_t deleted = 0, left = 0;
        zs_delete_shards(z, &r, NULL, &deleted, &left);
        rc = zs_meta_remove(z, key);
        if (rc == 0)
            zs_done_remove(z, r.desc.file_id);
        if (rc == 0 && left)
            qs_log(QS_LOG_WARN,
                   "delete %s: %llu shard values on unreachable backends could not be deleted "
                   "and stay there unreferenced",
                   path, (unsigned long long)left);
        if (rc == 0)
            qs_log(QS_LOG_INFO, "deleted %s (%llu shard values)", path,
                   (unsigned long long)deleted);
    }
    zstor_meta_record_free(&r);
    return rc < 0 ? fail(rc, "delete", path) : 0;
}
