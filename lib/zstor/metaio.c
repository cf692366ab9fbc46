/* Metadata on the meta backends: read from any `data` of them, write to all of them
 * (docs/meta-format.md section 4), with a rollback when a write fails halfway. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/mem.h"
#include "zstor/private.h"

void zs_pieces_free(struct zs_pieces *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->n; i++)
        free(p->p[i]);
    memset(p, 0, sizeof(*p));
}

struct get_job {
    struct zstor_ctx *z;
    const char *name;
    uint8_t *val[ZSTOR_META_PIECES_MAX];
    size_t len[ZSTOR_META_PIECES_MAX];
    int rc[ZSTOR_META_PIECES_MAX];
    char err[ZSTOR_META_PIECES_MAX][300];
};

static void get_one(void *ud, size_t i)
{
    struct get_job *j = ud;
    struct zs_bk *k = &j->z->meta[i];
    if (zs_bk_down(k)) {
        j->rc[i] = QS_EIO;
        snprintf(j->err[i], sizeof(j->err[i]), "%s", k->down_why);
        return;
    }
    j->rc[i] = qs_backend_get_named(k->be, j->name, &j->val[i], &j->len[i]);
    if (j->rc[i] < 0 && j->rc[i] != QS_ENOTFOUND) {
        snprintf(j->err[i], sizeof(j->err[i]), "%s", qs_err_msg());
        zs_bk_mark_down(k, j->rc[i], qs_err_msg());
    }
}

/* Reads every piece of name; *answered gets the backends that answered (value or not
 * found), *first_err the first failure's message. */
static void get_all(struct zstor_ctx *z, const char *name, struct get_job *j, unsigned *answered,
                    char *first_err, size_t errcap)
{
    j->z = z;
    j->name = name;
    /* a quick probe first: a dead meta backend is skipped instead of retried */
    struct zs_bk *bks[ZSTOR_META_PIECES_MAX];
    for (size_t i = 0; i < z->nmeta; i++)
        bks[i] = &z->meta[i];
    zs_probe(bks, z->nmeta, false);
    zs_par(z->nmeta, get_one, j);
    *answered = 0;
    first_err[0] = '\0';
    for (size_t i = 0; i < z->nmeta; i++) {
        if (j->rc[i] == 0 || j->rc[i] == QS_ENOTFOUND)
            (*answered)++;
        else if (!first_err[0])
            snprintf(first_err, errcap, "%s", j->err[i]);
        if (j->rc[i] != 0) {
            free(j->val[i]);
            j->val[i] = NULL;
            j->len[i] = 0;
        }
    }
}

/* An open that failed for want of pieces says which backends did not answer. */
static int explain(struct zstor_ctx *z, int rc, const char *name, unsigned answered,
                   const char *first_err)
{
    unsigned need = z->cfg->meta.data_shards;
    if (rc == QS_ENOTFOUND && answered >= need)
        return qs_err_set(QS_ENOTFOUND, "no metadata under %s", name);
    if ((rc == QS_ENOTFOUND || rc == QS_ETOOFEW) && answered < z->nmeta) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        return qs_err_set(QS_ETOOFEW,
                          "metadata %s: only %u of %zu meta backends answered, %u needed (%s)%s%s",
                          name, answered, z->nmeta, need, first_err, rc == QS_ETOOFEW ? "; " : "",
                          rc == QS_ETOOFEW ? msg : "");
    }
    return rc;
}

int zs_meta_load(struct zstor_ctx *z, const char *name, struct zstor_meta_record *r,
                 struct zstor_meta_open_info *info, struct zs_pieces *raw)
{
    memset(r, 0, sizeof(*r));
    struct get_job *j = calloc(1, sizeof(*j));
    if (!j)
        return qs_err_set(QS_ENOMEM, "out of memory");
    unsigned answered;
    char first_err[300];
    get_all(z, name, j, &answered, first_err, sizeof(first_err));
    int rc = zstor_meta_open((const uint8_t *const *)j->val, j->len, (unsigned)z->nmeta, name,
                             z->cfg->meta.key, r, info);
    if (rc < 0)
        rc = explain(z, rc, name, answered, first_err);
    if (raw) {
        memset(raw, 0, sizeof(*raw));
        raw->n = (unsigned)z->nmeta;
        for (size_t i = 0; i < z->nmeta; i++) {
            raw->p[i] = j->val[i];
            raw->len[i] = j->len[i];
            j->val[i] = NULL;
        }
    }
    for (size_t i = 0; i < z->nmeta; i++)
        free(j->val[i]);
    free(j);
    return rc;
}

int zs_meta_load_bytes(struct zstor_ctx *z, const char *name, uint8_t **plain, size_t *len)
{
    *plain = NULL;
    *len = 0;
    struct get_job *j = calloc(1, sizeof(*j));
    if (!j)
        return qs_err_set(QS_ENOMEM, "out of memory");
    unsigned answered;
    char first_err[300];
    get_all(z, name, j, &answered, first_err, sizeof(first_err));
    int rc = zstor_meta_open_bytes((const uint8_t *const *)j->val, j->len, (unsigned)z->nmeta, name,
                                   z->cfg->meta.key, plain, len, NULL);
    if (rc < 0)
        rc = explain(z, rc, name, answered, first_err);
    for (size_t i = 0; i < z->nmeta; i++)
        free(j->val[i]);
    free(j);
    return rc;
}

int zs_meta_writable(struct zstor_ctx *z, const char *what)
{
    struct zs_bk *bks[ZSTOR_META_PIECES_MAX];
    for (size_t i = 0; i < z->nmeta; i++)
        bks[i] = &z->meta[i];
    zs_probe(bks, z->nmeta, false);
    for (size_t i = 0; i < z->nmeta; i++) {
        if (z->meta[i].probe_rc != 0)
            return qs_err_set(QS_ETOOFEW,
                              "%s refused: meta backend not usable: %s (metadata writes need "
                              "every meta backend)",
                              what, z->meta[i].h.error);
        if (zs_bk_readonly(&z->meta[i]))
            return qs_err_set(QS_EDENIED,
                              "%s refused: meta backend %s: %s (metadata writes need every meta "
                              "backend)",
                              what, zs_bk_name(&z->meta[i]), zs_bk_readonly(&z->meta[i]));
    }
    return 0;
}

/* ---- writing ---- */

struct put_job {
    struct zstor_ctx *z;
    const char *name;
    const struct zstor_meta_sealed *s;
    const struct zs_pieces *prev;
    bool rollback;
    int rc[ZSTOR_META_PIECES_MAX];
    char err[ZSTOR_META_PIECES_MAX][300];
};

static void put_one(void *ud, size_t i)
{
    struct put_job *j = ud;
    struct zs_bk *k = &j->z->meta[i];
    int rc;
    if (j->rollback) {
        if (j->rc[i] != 0)
            return; /* nothing was written there */
        if (j->prev && j->prev->p[i])
            rc = qs_backend_set_named(k->be, j->name, j->prev->p[i], j->prev->len[i]);
        else
            rc = qs_backend_del_named(k->be, j->name);
        if (rc < 0 && rc != QS_ENOTFOUND)
            qs_log(QS_LOG_WARN, "metadata %s: could not roll back on %s: %s", j->name,
                   zs_bk_name(k), qs_err_msg());
        return;
    }
    rc = qs_backend_set_named(k->be, j->name, zstor_meta_piece(j->s, (unsigned)i), j->s->piece_len);
    j->rc[i] = rc;
    if (rc < 0) {
        snprintf(j->err[i], sizeof(j->err[i]), "%s", qs_err_msg());
        zs_bk_mark_down(k, rc, qs_err_msg());
    }
}

static size_t meta_max_value(const struct zstor_ctx *z)
{
    size_t m = SIZE_MAX;
    for (size_t i = 0; i < z->nmeta; i++) {
        size_t v = qs_backend_max_value(z->meta[i].be);
        if (v < m)
            m = v;
    }
    return m;
}

static int write_sealed(struct zstor_ctx *z, const char *name, const struct zstor_meta_sealed *s,
                        const struct zs_pieces *prev)
{
    struct put_job *j = calloc(1, sizeof(*j));
    if (!j)
        return qs_err_set(QS_ENOMEM, "out of memory");
    j->z = z;
    j->name = name;
    j->s = s;
    j->prev = prev;
    zs_par(z->nmeta, put_one, j);
    int rc = 0;
    for (size_t i = 0; i < z->nmeta && rc == 0; i++)
        if (j->rc[i] < 0)
            rc = qs_err_set(j->rc[i], "metadata %s: write failed: %s", name, j->err[i]);
    if (rc < 0) {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        j->rollback = true;
        zs_net_cancel(z, false); /* the rollback must happen, cancelled or not */
        zs_par(z->nmeta, put_one, j);
        zs_net_cancel(z, true);
        qs_err_set(rc, "%s", msg);
    }
    free(j);
    return rc;
}

int zs_meta_save(struct zstor_ctx *z, const char *name, const struct zstor_meta_record *r,
                 const struct zs_pieces *prev)
{
    return zs_meta_save_ex(z, name, r, prev, NULL);
}

/* Copies of the pieces of s (what a store wrote, to recognize it later). */
static int keep_pieces(const struct zstor_meta_sealed *s, struct zs_pieces *out)
{
    memset(out, 0, sizeof(*out));
    out->n = s->n;
    for (unsigned i = 0; i < s->n; i++) {
        if (!(out->p[i] = malloc(s->piece_len ? s->piece_len : 1))) {
            zs_pieces_free(out);
            return qs_err_set(QS_ENOMEM, "out of memory");
        }
        memcpy(out->p[i], zstor_meta_piece(s, i), s->piece_len);
        out->len[i] = s->piece_len;
    }
    return 0;
}

int zs_meta_save_ex(struct zstor_ctx *z, const char *name, const struct zstor_meta_record *r,
                    const struct zs_pieces *prev, struct zs_pieces *written)
{
    const struct zstor_config *cfg = z->cfg;
    struct zstor_meta_sealed s = {0};
    int rc =
        zstor_meta_seal(r, name, cfg->meta.key, cfg->meta.data_shards, cfg->meta.parity_shards, &s);
    if (rc == 0 && s.piece_len > meta_max_value(z) && (r->flags & ZSTOR_META_F_CRC)) {
        /* very large files: the per-chunk CRCs are what can go (the shards carry theirs) */
        struct zstor_meta_record lean = *r;
        lean.flags &= ~ZSTOR_META_F_CRC;
        zstor_meta_sealed_free(&s);
        rc = zstor_meta_seal(&lean, name, cfg->meta.key, cfg->meta.data_shards,
                             cfg->meta.parity_shards, &s);
    }
    if (rc == 0 && s.piece_len > meta_max_value(z))
        rc = qs_err_set(QS_EINVAL,
                        "metadata %s: pieces of %zu bytes are over the meta backends' %zu-byte "
                        "limit (use a larger chunk_size for files this large)",
                        name, s.piece_len, meta_max_value(z));
    if (rc == 0 && s.n != z->nmeta)
        rc = qs_err_set(QS_EINVAL, "metadata %s: %u pieces for %zu meta backends", name, s.n,
                        z->nmeta);
    if (rc == 0)
        rc = write_sealed(z, name, &s, prev);
    if (rc == 0 && written)
        rc = keep_pieces(&s, written);
    zstor_meta_sealed_free(&s);
    return rc;
}

int zs_meta_save_bytes(struct zstor_ctx *z, const char *name, const uint8_t *p, size_t len)
{
    const struct zstor_config *cfg = z->cfg;
    struct zstor_meta_sealed s = {0};
    int rc = zstor_meta_seal_bytes(p, len, name, cfg->meta.key, cfg->meta.data_shards,
                                   cfg->meta.parity_shards, &s);
    if (rc == 0 && s.n != z->nmeta)
        rc = qs_err_set(QS_EINVAL, "metadata %s: %u pieces for %zu meta backends", name, s.n,
                        z->nmeta);
    if (rc == 0)
        rc = write_sealed(z, name, &s, NULL);
    zstor_meta_sealed_free(&s);
    return rc;
}

struct rm_job {
    struct zstor_ctx *z;
    const char *name;
    int rc[ZSTOR_META_PIECES_MAX];
    char err[ZSTOR_META_PIECES_MAX][300];
};

static void rm_one(void *ud, size_t i)
{
    struct rm_job *j = ud;
    struct zs_bk *k = &j->z->meta[i];
    int rc = qs_backend_del_named(k->be, j->name);
    j->rc[i] = rc == QS_ENOTFOUND ? 0 : rc;
    if (j->rc[i] < 0) {
        snprintf(j->err[i], sizeof(j->err[i]), "%s", qs_err_msg());
        zs_bk_mark_down(k, rc, qs_err_msg());
    }
}

int zs_meta_remove(struct zstor_ctx *z, const char *name)
{
    struct rm_job *j = calloc(1, sizeof(*j));
    if (!j)
        return qs_err_set(QS_ENOMEM, "out of memory");
    j->z = z;
    j->name = name;
    zs_par(z->nmeta, rm_one, j);
    int rc = 0;
    for (size_t i = 0; i < z->nmeta && rc == 0; i++)
        if (j->rc[i] < 0)
            rc = qs_err_set(j->rc[i], "metadata %s: delete failed: %s", name, j->err[i]);
    free(j);
    return rc;
}
