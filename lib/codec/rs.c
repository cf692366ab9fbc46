#include "rs.h"

#include <isa-l/erasure_code.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int qs_rs_init(struct qs_rs *rs, unsigned k, unsigned m)
{
    memset(rs, 0, sizeof(*rs));
    if (k < 1 || m < 1 || k + m > QS_RS_MAX)
        return qs_err_set(QS_EINVAL, "reed-solomon: bad shard counts %u+%u", k, m);
    unsigned n = k + m;
    rs->k = k;
    rs->m = m;
    rs->matrix = malloc((size_t)n * k);
    rs->tables = malloc((size_t)32 * k * m);
    if (!rs->matrix || !rs->tables) {
        qs_rs_free(rs);
        return qs_err_set(QS_ENOMEM, "reed-solomon: out of memory");
    }
    gf_gen_cauchy1_matrix(rs->matrix, (int)n, (int)k);
    ec_init_tables((int)k, (int)m, rs->matrix + (size_t)k * k, rs->tables);
    return 0;
}

void qs_rs_free(struct qs_rs *rs)
{
    free(rs->matrix);
    free(rs->tables);
    rs->matrix = rs->tables = NULL;
}

void qs_rs_encode(const struct qs_rs *rs, size_t len, const uint8_t *const *data,
                  uint8_t *const *parity)
{
    if (len == 0)
        return;
    /* ISA-L takes non-const pointer arrays but only reads the data ones. */
    ec_encode_data((int)len, (int)rs->k, (int)rs->m, rs->tables, (unsigned char **)data,
                   (unsigned char **)parity);
}

void qs_rs_dec_init(struct qs_rs_dec *c)
{
    memset(c, 0, sizeof(*c));
}

void qs_rs_dec_free(struct qs_rs_dec *c)
{
    free(c->tables);
    memset(c, 0, sizeof(*c));
}

/* Builds the decoding tables: for each wanted row w, the coefficients that produce it
 * from the k available shards are row w of the encoding matrix times the inverse of the
 * k x k matrix made of the available rows. */
static int rs_build(const struct qs_rs *rs, struct qs_rs_dec *c, const uint8_t *have,
                    unsigned nwant, const uint8_t *want)
{
    unsigned k = rs->k;
    uint8_t *b = malloc((size_t)k * k);
    uint8_t *inv = malloc((size_t)k * k);
    uint8_t *coef = malloc((size_t)k * nwant);
    int rc = 0;
    if (!b || !inv || !coef) {
        rc = qs_err_set(QS_ENOMEM, "reed-solomon: out of memory");
        goto out;
    }
    size_t need = (size_t)32 * k * nwant;
    if (c->tables_cap < need) {
        uint8_t *t = realloc(c->tables, need);
        if (!t) {
            rc = qs_err_set(QS_ENOMEM, "reed-solomon: out of memory");
            goto out;
        }
        c->tables = t;
        c->tables_cap = need;
    }
    for (unsigned r = 0; r < k; r++)
        memcpy(b + (size_t)r * k, rs->matrix + (size_t)have[r] * k, k);
    if (gf_invert_matrix(b, inv, (int)k) != 0) {
        /* Cannot happen with a Cauchy matrix and distinct rows. */
        rc = qs_err_set(QS_EINVAL, "reed-solomon: singular decoding matrix");
        goto out;
    }
    for (unsigned w = 0; w < nwant; w++) {
        const uint8_t *row = rs->matrix + (size_t)want[w] * k;
        for (unsigned j = 0; j < k; j++) {
            uint8_t s = 0;
            for (unsigned t = 0; t < k; t++)
                s ^= gf_mul(row[t], inv[(size_t)t * k + j]);
            coef[(size_t)w * k + j] = s;
        }
    }
    ec_init_tables((int)k, (int)nwant, coef, c->tables);
    memcpy(c->have, have, k);
    memcpy(c->want, want, nwant);
    c->nwant = nwant;
    c->valid = 1;
out:
    free(b);
    free(inv);
    free(coef);
    if (rc)
        c->valid = 0;
    return rc;
}

int qs_rs_reconstruct(const struct qs_rs *rs, struct qs_rs_dec *c, size_t len, const uint8_t *have,
                      const uint8_t *const *in, unsigned nwant, const uint8_t *want,
                      uint8_t *const *out)
{
    unsigned k = rs->k, n = rs->k + rs->m;
    if (nwant == 0)
        return 0;
    if (nwant > n || len > INT_MAX)
        return qs_err_set(QS_EINVAL, "reed-solomon: bad reconstruct request");
    uint8_t seen[QS_RS_MAX] = {0};
    for (unsigned i = 0; i < k; i++) {
        if (have[i] >= n || seen[have[i]])
            return qs_err_set(QS_EINVAL, "reed-solomon: bad shard index %u", have[i]);
        seen[have[i]] = 1;
    }
    for (unsigned i = 0; i < nwant; i++)
        if (want[i] >= n)
            return qs_err_set(QS_EINVAL, "reed-solomon: bad shard index %u", want[i]);
    if (!c->valid || c->nwant != nwant || memcmp(c->have, have, k) != 0 ||
        memcmp(c->want, want, nwant) != 0) {
        int rc = rs_build(rs, c, have, nwant, want);
        if (rc)
            return rc;
    }
    if (len)
        ec_encode_data((int)len, (int)k, (int)nwant, c->tables, (unsigned char **)in,
                       (unsigned char **)out);
    return 0;
}
