/* Reed-Solomon erasure coding over GF(2^8) with ISA-L.
 *
 * Systematic code: shards 0..k-1 are the data, k..k+m-1 the parity. The (k+m) x k
 * encoding matrix is the identity on top of a Cauchy matrix: row r >= k, column c holds
 * 1 / (r xor c) in GF(2^8) with polynomial 0x11d (ISA-L's gf_gen_cauchy1_matrix), so any
 * k rows are invertible and any k shards recover the rest. The matrix is part of the
 * stored format (docs/codec-format.md) and must never change.
 */
#ifndef QSFS_CODEC_RS_H
#define QSFS_CODEC_RS_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define QS_RS_MAX 255

/* Read-only after qs_rs_init: safe to share between threads. */
struct qs_rs {
    unsigned k, m;
    uint8_t *matrix; /* (k+m) x k encoding matrix */
    uint8_t *tables; /* ISA-L expanded tables for the m parity rows */
};

/* Builds the matrices for k data and m parity shards (1 <= k, 1 <= m, k+m <= 255).
 * QS_EINVAL on bad counts, QS_ENOMEM. */
int qs_rs_init(struct qs_rs *rs, unsigned k, unsigned m) QS_MUST_CHECK;
void qs_rs_free(struct qs_rs *rs);

/* Computes the m parity shards of len bytes from the k data shards. len <= INT_MAX. */
void qs_rs_encode(const struct qs_rs *rs, size_t len, const uint8_t *const *data,
                  uint8_t *const *parity);

/* Per-thread cache of the decoding tables for the last erasure pattern. */
struct qs_rs_dec {
    uint8_t have[QS_RS_MAX];
    uint8_t want[QS_RS_MAX];
    unsigned nwant;
    int valid;
    uint8_t *tables; /* 32 * k * nwant bytes */
    size_t tables_cap;
};

void qs_rs_dec_init(struct qs_rs_dec *c);
void qs_rs_dec_free(struct qs_rs_dec *c);

/* Recomputes shards want[0..nwant) (any indices < k+m) from the k shards whose indices
 * are have[0..k) (distinct, any order) and whose bytes are in in[0..k). Each buffer is len
 * bytes. QS_ENOMEM; QS_EINVAL on bad indices. Uses and updates the cache c. */
int qs_rs_reconstruct(const struct qs_rs *rs, struct qs_rs_dec *c, size_t len, const uint8_t *have,
                      const uint8_t *const *in, unsigned nwant, const uint8_t *want,
                      uint8_t *const *out) QS_MUST_CHECK;

#endif
