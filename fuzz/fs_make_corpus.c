/* Writes seeds for fuzz/fs_decode.c into the directory given: one valid value of every
 * kind (selector byte first) and small filesystems made by lib/fs on memory (mode 8). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/format.h"
#include "fs/fs.h"
#include "fs/kv.h"
#include "util/mem.h"

static int seq;

static void seed(const char *dir, uint8_t mode, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/seed-%d-%02d", dir, mode, seq++);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(&mode, 1, 1, f) != 1 || (n && fwrite(p, 1, n, f) != n)) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

/* Every meta value of a small filesystem as one mode-8 seed, and each value alone. */
static void filesystem(const char *dir, int variant)
{
    struct qs_fs_kv *kv;
    if (qs_fs_kv_mem_new(&kv))
        exit(1);
    struct qs_fs_opts o = {.kv = kv, .block_size = 4096};
    struct qs_fs *fs;
    if (qs_fs_open(&fs, &o)) {
        fprintf(stderr, "%s\n", qs_err_msg());
        exit(1);
    }
    struct stat st;
    if (qs_fs_mkdir(fs, QS_FS_ROOT_INO, "dir", 0755, 0, 0, &st) ||
        qs_fs_symlink(fs, st.st_ino, "link", "../file", 0, 0, &st) ||
        qs_fs_mknod(fs, QS_FS_ROOT_INO, "file", S_IFREG | 0644, 0, 0, 0, &st) ||
        qs_fs_write(fs, st.st_ino, 0, (const uint8_t *)"hello", 5, false, NULL) ||
        qs_fs_setxattr(fs, st.st_ino, "user.x", "1", 1, 0))
        exit(1);
    if (variant) {
        static uint8_t big[70 * 4096];
        memset(big, 1, sizeof big);
        if (qs_fs_write(fs, st.st_ino, 0, big, sizeof big, false, NULL))
            exit(1);
    }
    if (qs_fs_close(fs))
        exit(1);
    uint8_t *img = malloc(1 << 20);
    size_t n = 0;
    for (uint64_t k = 0; k < 64; k++) {
        uint8_t key[8];
        qs_put64(key, k);
        struct qs_zdb_op op = {.kind = QS_ZDB_GET, .key = key, .key_len = 8};
        int rc = kv->batch(kv, QS_FS_META, &op, 1);
        size_t l = rc == 0 ? op.reply_len : 0;
        if (rc == 0 && k >= 1 && k <= 8) {
            struct qs_fs_dinode d;
            uint8_t m = 1;
            if (qs_fs_dinode_decode(op.reply, l, &d) == 0)
                qs_fs_dinode_free(&d);
            else if (op.reply_len > 3 && op.reply[0] == 0x42)
                m = 3;
            else if (op.reply_len > 3 && op.reply[0] == 0x50)
                m = 2;
            else if (op.reply_len > 4 && memcmp(op.reply, "FSLT", 4) == 0)
                m = 5;
            seed(dir, m, op.reply, l);
        }
        if (k == 0 && rc == 0)
            seed(dir, 0, op.reply, l);
        if (n + 2 + l > (1 << 20))
            break;
        qs_put16(img + n, (uint16_t)l);
        if (l)
            memcpy(img + n + 2, op.reply, l);
        n += 2 + l;
        free(op.reply);
    }
    seed(dir, 8, img, n);
    free(img);
    kv->free(kv);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fs_make_corpus DIR\n");
        return 2;
    }
    filesystem(argv[1], 0);
    filesystem(argv[1], 1);
    uint64_t keys[3] = {5, 0, 9};
    uint32_t lens[3] = {4096, 0, 17};
    uint8_t *b;
    size_t l;
    if (qs_fs_page_encode(keys, lens, 3, &b, &l) == 0) {
        seed(argv[1], 2, b, l);
        free(b);
    }
    struct qs_fs_jset set = {.key = 7, .len = 3, .val = (const uint8_t *)"abc"};
    uint64_t fr[2] = {11, 12};
    struct qs_fs_journal j = {.txid = 3,
                              .nsets = 1,
                              .sets = &set,
                              .nfree_meta = 2,
                              .free_meta = fr,
                              .norphans = 1,
                              .orphans = fr};
    if (qs_fs_journal_encode(&j, &b, &l) == 0) {
        seed(argv[1], 4, b, l);
        free(b);
    }
    /* 0-db-fs values: a file inode with two blocks, a directory list */
    uint8_t v1[44 + 8 + 8] = {0};
    qs_put32(v1, S_IFREG | 0644);
    qs_put64(v1 + 20, 200000);
    qs_put32(v1 + 28, 1);
    qs_put64(v1 + 44, 2);
    qs_put32(v1 + 52, 1);
    qs_put32(v1 + 56, 2);
    seed(argv[1], 6, v1, sizeof v1);
    uint8_t list[16 + 2 + 8 + 5] = {0};
    qs_put32(list + 8, 1);
    qs_put16(list + 16, 4);
    qs_put64(list + 18, 3);
    memcpy(list + 26, "file", 5);
    seed(argv[1], 7, list, sizeof list);
    return 0;
}
