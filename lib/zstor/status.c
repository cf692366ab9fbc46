/* zstor status and test (status.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "zstor/private.h"
#include "zstor/status.h"

/* Counts the files (and their bytes) one or two directory levels below root/sub. */
static void count_files(const char *root, const char *sub, int depth, uint64_t *n, uint64_t *bytes)
{
    char path[4600];
    snprintf(path, sizeof(path), "%s/%s", root, sub);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[4600];
        snprintf(p, sizeof(p), "%s/%s", sub, e->d_name);
        char full[9300];
        snprintf(full, sizeof(full), "%s/%s", root, p);
        struct stat st;
        if (lstat(full, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth > 0) {
            count_files(root, p, depth - 1, n, bytes);
        } else if (S_ISREG(st.st_mode)) {
            (*n)++;
            *bytes += (uint64_t)st.st_size;
        }
    }
    closedir(d);
}

static void fill(struct zstor_backend_status *s, const struct zs_bk *k, bool meta)
{
    memset(s, 0, sizeof(*s));
    s->meta = meta;
    s->address = k->address;
    s->ns = k->ns;
    s->group = k->group;
    s->reachable = k->probe_rc == 0;
    s->readonly = zs_bk_readonly(k);
    s->entries = k->h.entries;
    s->used = k->h.used_bytes;
    s->free = k->h.free_bytes;
    s->limit = k->h.limit_bytes;
    s->latency_us = k->h.latency_us;
    s->error_rate = k->h.error_rate;
    s->have_nsinfo = k->h.have_nsinfo;
    if (s->have_nsinfo)
        s->nsinfo = k->h.nsinfo;
    if (!s->reachable)
        snprintf(s->error, sizeof(s->error), "%s", k->h.error);
    if (k->is_dir && s->reachable) {
        uint64_t n = 0, bytes = 0;
        count_files(k->address + strlen("dir://"), meta ? "named" : "data", meta ? 0 : 1, &n,
                    &bytes);
        s->entries = n;
        s->used = bytes;
    }
}

int zstor_status(struct zstor_ctx *z, struct zstor_backend_status **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    size_t total = z->nmeta + z->ncfg;
    struct zs_bk **bks = calloc(total ? total : 1, sizeof(*bks));
    struct zstor_backend_status *out = calloc(total ? total : 1, sizeof(*out));
    if (!bks || !out) {
        free(bks);
        free(out);
        return qs_err_set(QS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < z->nmeta; i++)
        bks[i] = &z->meta[i];
    for (size_t i = 0; i < z->ncfg; i++)
        bks[z->nmeta + i] = z->data[i];
    zs_probe(bks, total, true);
    for (size_t i = 0; i < total; i++)
        fill(&out[i], bks[i], i < z->nmeta);
    free(bks);
    *rows = out;
    *n = total;
    return 0;
}

int zstor_test(struct zstor_ctx *z, unsigned *out)
{
    int rc = zs_meta_writable(z, "storing");
    if (rc == 0)
        rc = zstor_config_check_redundancy(z->cfg);
    if (rc == 0)
        rc = zs_place(z, 0, out);
    return rc;
}
