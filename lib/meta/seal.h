/* Sealing metadata: encrypt with the meta key, then disperse with Reed-Solomon
 * (docs/meta-format.md, sections 3 and 4).
 *
 * zstor_meta_seal encodes a record, encrypts it with AES-256-GCM under a key derived from
 * the 32-byte meta key (random salt and nonce; the metadata key name and the format
 * version are bound in as associated data) and cuts the result into `data` pieces plus
 * `parity` Reed-Solomon pieces (default 2+2). Piece i goes to meta backend i under the
 * metadata key. Every piece carries its index, the counts, the encrypted length, a random
 * id shared by the pieces of one write, the time of the write and a CRC-32C, so a damaged
 * piece or a piece left from another write is recognized and skipped.
 *
 * zstor_meta_open takes whatever the meta backends returned (NULL = nothing), picks the
 * newest write that has enough pieces, rebuilds, authenticates and decodes it, and says
 * per piece whether it is good (so the caller can rewrite the others).
 *
 * No global state; thread-safe for distinct arguments. Derived keys are wiped.
 */
#ifndef QSFS_META_SEAL_H
#define QSFS_META_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "meta/record.h"
#include "util/err.h"

#define ZSTOR_META_KEY_LEN      32  /* the meta key ([meta.config.encryption] key) */
#define ZSTOR_META_DATA_DEF     2   /* default data pieces */
#define ZSTOR_META_PARITY_DEF   2   /* default parity pieces */
#define ZSTOR_META_PIECES_MAX   255 /* data + parity */
#define ZSTOR_META_PIECE_HDR    44  /* header in front of every piece payload */
#define ZSTOR_META_BLOB_HDR     56  /* cleartext header of the encrypted record */
#define ZSTOR_META_SEAL_VERSION 1   /* piece and encryption format version */

/* Output of a seal: n equal pieces in one allocation. */
struct zstor_meta_sealed {
    unsigned n;       /* data + parity */
    size_t piece_len; /* every piece is this long */
    uint8_t *buf;     /* piece i at buf + i * piece_len */
};

static inline const uint8_t *zstor_meta_piece(const struct zstor_meta_sealed *s, unsigned i)
{
    return s->buf + (size_t)i * s->piece_len;
}

void zstor_meta_sealed_free(struct zstor_meta_sealed *s);

/* Seals record r for the metadata key `name` (e.g. "/prefix/meta/<hash>"; it is
 * authenticated, so pieces only open under the same name) with meta_key, into data >= 1
 * plus parity >= 0 pieces (data + parity <= 255). QS_EINVAL (bad counts or record),
 * QS_ENOMEM, QS_EIO (no randomness). */
int zstor_meta_seal(const struct zstor_meta_record *r, const char *name,
                    const uint8_t meta_key[ZSTOR_META_KEY_LEN], unsigned data, unsigned parity,
                    struct zstor_meta_sealed *out) QS_MUST_CHECK;

/* The same for any bytes (plain[0..len), len <= ZSTOR_META_RECORD_MAX). */
int zstor_meta_seal_bytes(const uint8_t *plain, size_t len, const char *name,
                          const uint8_t meta_key[ZSTOR_META_KEY_LEN], unsigned data,
                          unsigned parity, struct zstor_meta_sealed *out) QS_MUST_CHECK;

enum zstor_meta_piece_state {
    ZSTOR_META_PIECE_OK = 0,      /* part of the write that was opened, content verified */
    ZSTOR_META_PIECE_MISSING = 1, /* NULL or empty */
    ZSTOR_META_PIECE_CORRUPT = 2, /* bad header or CRC, or content the others contradict */
    ZSTOR_META_PIECE_STALE = 3,   /* a valid piece of another write of this key */
    ZSTOR_META_PIECE_FOREIGN = 4, /* a newer qsfs format, or 0-stor_v2's format */
};

struct zstor_meta_open_info {
    unsigned data, parity; /* counts of the write that was opened (0 if none) */
    uint64_t sealed_at;    /* its time, nanoseconds since the epoch */
    unsigned ok, missing, corrupt, stale, foreign; /* pieces per state */
    uint8_t state[ZSTOR_META_PIECES_MAX];          /* enum zstor_meta_piece_state per slot */
};

/* Opens pieces piece[0..n) (piece[i] is len[i] bytes, NULL or len 0 = missing; pieces
 * may sit in any slot, their header says which they are) sealed for `name` with
 * meta_key, into record r (initialized here; free it even after a failure). info (may be
 * NULL) is filled in every case; after a failure OK only says the piece itself is
 * valid. Errors, each with a one-line message:
 *   QS_ENOTFOUND  every slot is empty: nothing is stored under this name;
 *   QS_ETOOFEW    fewer good pieces than needed (the message gives found/needed and why);
 *   QS_EDENIED    "metadata cannot be decrypted with the configured meta key";
 *   QS_ECORRUPT   enough pieces, but they do not authenticate or decode;
 *   QS_EINVAL     written by a newer format version, or by 0-stor_v2;
 *   QS_ENOMEM. */
int zstor_meta_open(const uint8_t *const *piece, const size_t *len, unsigned n, const char *name,
                    const uint8_t meta_key[ZSTOR_META_KEY_LEN], struct zstor_meta_record *r,
                    struct zstor_meta_open_info *info) QS_MUST_CHECK;

/* Like zstor_meta_open, for the newest write sealed before `before` (a sealed_at of an
 * earlier open): with it a caller walks every write whose pieces are present, newest
 * first, until QS_ENOTFOUND. */
int zstor_meta_open_before(const uint8_t *const *piece, const size_t *len, unsigned n,
                           const char *name, const uint8_t meta_key[ZSTOR_META_KEY_LEN],
                           uint64_t before, struct zstor_meta_record *r,
                           struct zstor_meta_open_info *info) QS_MUST_CHECK;

/* The same for bytes sealed with zstor_meta_seal_bytes: *plain (malloc'ed, *plain_len
 * bytes) on success; the caller frees it. */
int zstor_meta_open_bytes(const uint8_t *const *piece, const size_t *len, unsigned n,
                          const char *name, const uint8_t meta_key[ZSTOR_META_KEY_LEN],
                          uint8_t **plain, size_t *plain_len,
                          struct zstor_meta_open_info *info) QS_MUST_CHECK;

#endif
