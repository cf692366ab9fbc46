/* Fuzz target: zdbfs's value decoders and a whole mount over arbitrary meta values.
 *
 * Input byte 0 selects the mode (mod 9):
 *   0 header, 1 inode, 2 map page, 3 directory bucket, 4 journal body, 5 journal slot,
 *   6 0-db-fs inode, 7 0-db-fs directory list: the rest is decoded; what decodes must
 *   re-encode to the same bytes (1-5: the encodings are canonical);
 *   8 a filesystem: the rest is a list of values (u16 length + bytes) put at meta keys
 *   0, 1, 2, ... of an in-memory store whose data namespace holds a header; the mount
 *   must succeed or fail cleanly, and then the whole tree is listed and read.
 * Invariants: no crash, no leak, no undefined behaviour. fuzz/fs_make_corpus.c writes
 * the seeds (valid values of every kind and small filesystems).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/format.h"
#include "fs/fs.h"
#include "fs/kv.h"
#include "util/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* results that do not matter here (gcc does not take a (void) cast for them) */
#define IGNORE(x)                                                                                  \
    do {                                                                                           \
        if (x) {                                                                                   \
        }                                                                                          \
    } while (0)

static void same(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    if (an != bn || memcmp(a, b, an) != 0)
        abort();
}

static int emit(void *ud, const char *name, const struct stat *st, uint64_t ino, unsigned type,
                uint64_t next)
{
    struct {
        uint64_t ino[64];
        unsigned n;
    } *c = ud;
    if (c->n < 64 && name[0] != '.')
        c->ino[c->n++] = ino;
    return 0;
}

static void walk(struct qs_fs *fs, uint64_t dir, int depth)
{
    struct {
        uint64_t ino[64];
        unsigned n;
    } c = {{0}, 0};
    if (depth > 8 || qs_fs_readdir(fs, dir, 0, true, emit, &c) != 0)
        return;
    for (unsigned i = 0; i < c.n; i++) {
        struct stat st;
        if (qs_fs_getattr(fs, c.ino[i], &st) == 0) {
            if (S_ISDIR(st.st_mode) && c.ino[i] != dir) {
                walk(fs, c.ino[i], depth + 1);
            } else if (S_ISREG(st.st_mode)) {
                uint8_t buf[4096];
                size_t got;
                IGNORE(qs_fs_read(fs, c.ino[i], 0, sizeof buf, buf, &got));
            } else if (S_ISLNK(st.st_mode)) {
                char t[64];
                IGNORE(qs_fs_readlink(fs, c.ino[i], t, sizeof t));
            }
        }
        qs_fs_forget(fs, c.ino[i], 1);
    }
}

static void mount_mode(const uint8_t *p, size_t n)
{
    struct qs_fs_kv *kv;
    if (qs_fs_kv_mem_new(&kv) != 0)
        return;
    struct qs_fs_header dh = {.ns = QS_FS_DATA, .version = QS_FS_LAYOUT_V2};
    uint8_t hb[QS_FS_HDR_V2_LEN];
    size_t hl = qs_fs_header_encode(&dh, hb);
    IGNORE(qs_fs_kv_mem_put(kv, QS_FS_DATA, 0, hb, hl));
    /* a few data blocks for files to point at */
    for (uint64_t k = 1; k < 4; k++)
        IGNORE(qs_fs_kv_mem_put(kv, QS_FS_DATA, k, "blockdata", 9));
    uint64_t key = 0;
    for (size_t o = 0; o + 2 <= n && key < 64;) {
        size_t l = qs_le16(p + o);
        o += 2;
        if (l > n - o)
            l = n - o;
        IGNORE(qs_fs_kv_mem_put(kv, QS_FS_META, key++, p + o, l));
        o += l;
    }
    struct qs_fs_opts opts = {.kv = kv, .no_mkfs = true, .block_size = 4096};
    struct qs_fs *fs;
    if (qs_fs_open(&fs, &opts) == 0) {
        walk(fs, QS_FS_ROOT_INO, 0);
        (void)qs_fs_close(fs);
    }
    kv->free(kv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    uint8_t *out = NULL;
    size_t ol = 0;
    switch (data[0] % 9) {
    case 0: {
        struct qs_fs_header h;
        if (qs_fs_header_decode(p, n, &h) == 0) {
            uint8_t b[QS_FS_HDR_V2_LEN];
            size_t l = qs_fs_header_encode(&h, b);
            if (h.version == QS_FS_LAYOUT_V2)
                same(b, l, p, n);
        }
        break;
    }
    case 1: {
        struct qs_fs_dinode d;
        if (qs_fs_dinode_decode(p, n, &d) == 0) {
            if (qs_fs_dinode_encode(&d, &out, &ol) == 0)
                same(out, ol, p, n);
            qs_fs_dinode_free(&d);
        }
        break;
    }
    case 2: {
        uint64_t k[QS_FS_PAGE_KEYS];
        uint32_t l[QS_FS_PAGE_KEYS];
        if (qs_fs_page_decode(p, n, k, l) == 0 &&
            qs_fs_page_encode(k, l, QS_FS_PAGE_KEYS, &out, &ol) == 0)
            same(out, ol, p, n);
        break;
    }
    case 3: {
        struct qs_fs_dent *e;
        uint32_t cnt;
        if (qs_fs_bucket_decode(p, n, &e, &cnt) == 0) {
            const struct qs_fs_dent **v = calloc(cnt ? cnt : 1, sizeof *v);
            if (v) {
                for (uint32_t i = 0; i < cnt; i++)
                    v[i] = &e[i];
                if (qs_fs_bucket_encode(v, cnt, &out, &ol) == 0)
                    same(out, ol, p, n);
                free(v);
            }
            free(e);
        }
        break;
    }
    case 4: {
        struct qs_fs_journal j;
        if (qs_fs_journal_decode(p, n, &j) == 0) {
            if (qs_fs_journal_encode(&j, &out, &ol) == 0)
                same(out, ol, p, n);
            qs_fs_journal_free(&j);
        }
        break;
    }
    case 5: {
        struct qs_fs_slot s;
        if (qs_fs_slot_decode(p, n, &s) == 0 &&
            qs_fs_slot_encode(&s, s.inline_body, &out, &ol) == 0)
            same(out, ol, p, n);
        break;
    }
    case 6: {
        struct qs_fs_v1_inode d;
        if (qs_fs_v1_inode_decode(p, n, &d) == 0)
            qs_fs_v1_inode_free(&d);
        break;
    }
    case 7: {
        struct qs_fs_dent *e;
        uint32_t cnt;
        if (qs_fs_v1_list_decode(p, n, &e, &cnt) == 0)
            free(e);
        break;
    }
    default:
        mount_mode(p, n);
        break;
    }
    free(out);
    return 0;
}
