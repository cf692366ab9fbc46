/* Fuzz target: the metadata readers over arbitrary bytes.
 *
 * Input byte 0 selects the mode (mod 4):
 *   0: the rest is decoded as a metadata record; a record that decodes must re-encode to
 *      exactly the same bytes (the encoding is canonical) and answer key lookups;
 *   1: the rest is a list of pieces for zstor_meta_open: byte 1 gives the slot count
 *      (1 + b1 % 6), then each slot is a little-endian u16 length (0xFFFF = missing) and
 *      that many bytes. The meta key and key name are fixed (fuzz/corpus/meta_open holds
 *      valid pieces sealed with them);
 *   2: the rest is sealed 2+2 as bytes, byte 1 picks pieces to drop and bytes 2.. are
 *      flipped in the pieces; opening must give the input back whenever 2 intact pieces
 *      remain, and never crash;
 *   3: as 1, but every opened record is also resealed and reopened.
 * Invariants: no crash, no leak, no undefined behaviour.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meta/record.h"
#include "meta/seal.h"
#include "util/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_key[32] = "qsfs meta fuzz key, not secret.";
static const char fuzz_name[] = "/fuzz/meta/0123456789abcdef0123456789abcdef";

static void record_mode(const uint8_t *p, size_t n)
{
    struct zstor_meta_record r;
    if (zstor_meta_record_decode(&r, p, n) == 0) {
        uint8_t *enc;
        size_t len;
        if (zstor_meta_record_encode(&r, &enc, &len) != 0 || len != n || memcmp(enc, p, n) != 0)
            abort();
        free(enc);
        if (zstor_meta_record_check(&r) != 0)
            qs_err_clear();
        for (unsigned i = 0; i < r.nshards && i < 4; i++) {
            if (r.shard[i].flags & ZSTOR_META_SHARD_ABSENT || r.nchunks == 0)
                continue;
            struct zstor_meta_keyref k[8];
            unsigned nk;
            uint64_t cs[3] = {0, r.nchunks / 2, r.nchunks - 1};
            for (int j = 0; j < 3; j++)
                if (zstor_meta_chunk_keys(&r, i, cs[j], k, 8, &nk, NULL) != 0 || nk < 1)
                    abort();
        }
    }
    zstor_meta_record_free(&r);
}

static void pieces_mode(const uint8_t *p, size_t n, int reseal)
{
    if (n < 1)
        return;
    unsigned slots = 1 + p[0] % 6;
    const uint8_t *piece[6] = {0};
    size_t len[6] = {0};
    size_t off = 1;
    for (unsigned i = 0; i < slots && off + 2 <= n; i++) {
        size_t l = qs_le16(p + off);
        off += 2;
        if (l == 0xFFFF)
            continue;
        if (l > n - off)
            l = n - off;
        piece[i] = p + off;
        len[i] = l;
        off += l;
    }
    struct zstor_meta_record r;
    struct zstor_meta_open_info info;
    int rc = zstor_meta_open(piece, len, slots, fuzz_name, fuzz_key, &r, &info);
    if (info.ok + info.missing + info.corrupt + info.stale + info.foreign != slots)
        abort();
    if (rc == 0 && reseal) {
        struct zstor_meta_sealed s;
        if (zstor_meta_seal(&r, fuzz_name, fuzz_key, 2, 1, &s) != 0)
            abort();
        const uint8_t *q[3];
        size_t ql[3];
        for (unsigned i = 0; i < 3; i++)
            q[i] = zstor_meta_piece(&s, i), ql[i] = i == 1 ? 0 : s.piece_len;
        struct zstor_meta_record again;
        if (zstor_meta_open(q, ql, 3, fuzz_name, fuzz_key, &again, NULL) != 0)
            abort();
        zstor_meta_record_free(&again);
        zstor_meta_sealed_free(&s);
    }
    zstor_meta_record_free(&r);
}

static void seal_mode(const uint8_t *p, size_t n)
{
    if (n < 2)
        return;
    unsigned drop = p[0];
    const uint8_t *flips = p + 1;
    size_t nflips = n - 1 < 4 ? n - 1 : 4;
    struct zstor_meta_sealed s;
    if (zstor_meta_seal_bytes(p, n, fuzz_name, fuzz_key, 2, 2, &s) != 0)
        abort();
    const uint8_t *q[4];
    size_t ql[4];
    unsigned intact = 0;
    for (unsigned i = 0; i < 4; i++) {
        q[i] = (drop >> i) & 1 ? NULL : zstor_meta_piece(&s, i);
        ql[i] = s.piece_len;
    }
    /* flip one byte in some pieces (bits 4..7 of drop choose which) */
    for (unsigned i = 0; i < 4; i++) {
        if (q[i] && ((drop >> (4 + i)) & 1) && nflips) {
            s.buf[i * s.piece_len + flips[i % nflips] % s.piece_len] ^= 0x01;
        } else if (q[i]) {
            intact++;
        }
    }
    uint8_t *plain;
    size_t plen;
    int rc = zstor_meta_open_bytes(q, ql, 4, fuzz_name, fuzz_key, &plain, &plen, NULL);
    if (intact >= 2 && (rc != 0 || plen != n || memcmp(plain, p, n) != 0))
        abort();
    if (rc == 0)
        free(plain);
    zstor_meta_sealed_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    switch (data[0] % 4) {
    case 0:
        record_mode(data + 1, size - 1);
        break;
    case 1:
        pieces_mode(data + 1, size - 1, 0);
        break;
    case 2:
        seal_mode(data + 1, size - 1);
        break;
    default:
        pieces_mode(data + 1, size - 1, 1);
        break;
    }
    return 0;
}
