/* Upgrade of a 0-db-fs filesystem (layout 1) to layout 2, once, at its first mount.
 *
 * The tree is read from the root (0-db-fs has no other index of its inodes); every
 * inode reached is rewritten in place under its own key (inode numbers do not change),
 * directories get hashed buckets, and file blocks stay where they are (both layouts use
 * 128 KiB blocks). The rewrite is one commit: its record goes into a new journal slot
 * first, then the meta header switches to layout 2 and names that slot, and only then are
 * inodes overwritten. A crash before the switch leaves the untouched layout-1 filesystem
 * (upgraded again at the next mount); after it, the next mount finishes the commit.
 * 0-db-fs's directory lists are deleted by that commit. Values 0-db-fs left unreachable
 * (the children of directories its rmdir removed) are not touched.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/private.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/sys.h"

#define V1_BLOCK (128u * 1024)

/* Fills in (empty, in the table) from a layout-1 value. Directories keep their list keys
 * in a.buckets (128 of them) until their entries are read. */
static int convert(struct qs_fs *fs, struct inode *in, const uint8_t *v, size_t n)
{
    struct qs_fs_v1_inode o;
    int rc = qs_fs_v1_inode_decode(v, n, &o);
    if (rc)
        return qs_err_set(rc, "inode %llu: %s", (unsigned long long)in->ino, qs_err_msg());
    in->a.mode = o.mode;
    in->a.uid = o.uid;
    in->a.gid = o.gid;
    in->a.rdev = o.dev;
    in->a.atime = (struct qs_fs_time){.sec = o.atime};
    in->a.mtime = (struct qs_fs_time){.sec = o.mtime};
    in->a.ctime = in->a.btime = (struct qs_fs_time){.sec = o.ctime};
    if (S_ISREG(o.mode)) {
        in->a.size = o.size;
        uint64_t need = (o.size + V1_BLOCK - 1) / V1_BLOCK;
        uint64_t keep = o.nblocks < need ? o.nblocks : need;
        for (uint64_t i = 0; rc == 0 && i < o.nblocks; i++) {
            if (!o.blocks[i])
                continue;
            if (i < keep) {
                uint64_t left = o.size - i * V1_BLOCK;
                rc = map_set(fs, in->ino, &in->m, i, o.blocks[i],
                             (uint32_t)(left < V1_BLOCK ? left : V1_BLOCK), NULL);
            } else {
                rc = keyvec_push(&fs->free_data, o.blocks[i]); /* past the size */
            }
        }
        if (rc == 0 && keep > in->m.nkeys)
            in->m.nkeys = keep; /* trailing holes */
    } else if (S_ISDIR(o.mode)) {
        if (dir_init_empty(in) != 0 || !(in->a.buckets = calloc(128, 8))) {
            rc = qs_err_set(QS_ENOMEM, "out of memory");
        } else {
            in->a.nbuckets = 128;
            for (int i = 0; i < 128; i++)
                in->a.buckets[i] = o.lists[i] == QS_FS_V1_UNSET ? 0 : o.lists[i];
        }
    } else if (S_ISLNK(o.mode)) {
        in->a.size = o.size;
        in->a.target = o.target;
        o.target = NULL;
    }
    qs_fs_v1_inode_free(&o);
    return rc;
}

/* GETs of the given meta keys in one batch; ops[i].result says which exist. */
static int fetch(struct qs_fs *fs, const uint64_t *keys, size_t n, struct qs_zdb_op **out,
                 uint8_t **keybuf)
{
    *out = calloc(n ? n : 1, sizeof **out);
    *keybuf = calloc(n ? n : 1, 8);
    if (!*out || !*keybuf) {
        free(*out);
        free(*keybuf);
        return qs_err_set(QS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        qs_put64(*keybuf + 8 * i, keys[i]);
        (*out)[i] = (struct qs_zdb_op){.kind = QS_ZDB_GET, .key = *keybuf + 8 * i, .key_len = 8};
    }
    int rc = n ? fs->kv->batch(fs->kv, QS_FS_META, *out, n) : 0;
    if (rc == QS_ENOTFOUND)
        rc = 0;
    if (rc) {
        fs_op_free(*out, n);
        free(*out);
        free(*keybuf);
    }
    return rc;
}

struct child {
    uint64_t ino;
    uint8_t namelen;
    char name[QS_FS_NAME_MAX + 1];
};

/* Reads d's lists, loads the children not seen yet and links them under d. */
static int upgrade_dir(struct qs_fs *fs, struct inode *d, struct keyvec *queue, uint64_t *nfiles)
{
    uint64_t lists[128];
    size_t nl = 0;
    for (int i = 0; i < 128; i++)
        if (d->a.buckets[i])
            lists[nl++] = d->a.buckets[i];
    free(d->a.buckets);
    d->a.buckets = NULL;
    d->a.nbuckets = 0;
    struct qs_zdb_op *ops;
    uint8_t *kb;
    int rc = fetch(fs, lists, nl, &ops, &kb);
    if (rc)
        return rc;
    struct child *kids = NULL;
    size_t nk = 0, ck = 0;
    for (size_t i = 0; i < nl && rc == 0; i++) {
        if ((rc = keyvec_push(&fs->free_meta, lists[i])) != 0)
            break;
        if (ops[i].result) {
            qs_log(QS_LOG_WARN,
                   "upgrade: directory %llu: list %llu is missing; its entries are lost",
                   (unsigned long long)d->ino, (unsigned long long)lists[i]);
            continue;
        }
        struct qs_fs_dent *e;
        uint32_t cnt;
        if ((rc = qs_fs_v1_list_decode(ops[i].reply, ops[i].reply_len, &e, &cnt)) != 0) {
            rc = qs_err_set(rc, "directory %llu: %s", (unsigned long long)d->ino, qs_err_msg());
            break;
        }
        for (uint32_t j = 0; j < cnt && rc == 0; j++) {
            if (nk == ck) {
                ck = ck ? ck * 2 : 64;
                struct child *nkids = realloc(kids, ck * sizeof *kids);
                if (!nkids) {
                    rc = qs_err_set(QS_ENOMEM, "out of memory");
                    break;
                }
                kids = nkids;
            }
            kids[nk].ino = e[j].ino;
            kids[nk].namelen = e[j].namelen;
            memcpy(kids[nk].name, e[j].name, e[j].namelen + 1u);
            nk++;
        }
        free(e);
    }
    fs_op_free(ops, nl);
    free(ops);
    free(kb);
    /* the children not loaded yet, in one batch */
    uint64_t *want = calloc(nk ? nk : 1, 8);
    size_t nw = 0;
    if (!want && rc == 0)
        rc = qs_err_set(QS_ENOMEM, "out of memory");
    for (size_t i = 0; i < nk && rc == 0; i++)
        if (!inode_find(fs, kids[i].ino) && kids[i].ino != fs->hdr.journal_key)
            want[nw++] = kids[i].ino;
    if (rc == 0 && (rc = fetch(fs, want, nw, &ops, &kb)) == 0) {
        for (size_t i = 0; i < nw && rc == 0; i++) {
            if (ops[i].result || inode_find(fs, want[i]))
                continue; /* missing (reported below) or listed twice */
            struct inode *c;
            if ((rc = inode_insert_new(fs, want[i], &c)) == 0)
                rc = convert(fs, c, ops[i].reply, ops[i].reply_len);
        }
        fs_op_free(ops, nw);
        free(ops);
        free(kb);
    }
    free(want);
    for (size_t i = 0; i < nk && rc == 0; i++) {
        struct inode *c = inode_find(fs, kids[i].ino);
        if (!c || kids[i].ino == QS_FS_ROOT_INO) {
            qs_log(QS_LOG_WARN,
                   "upgrade: %s in directory %llu points to inode %llu, which %s; dropped",
                   kids[i].name, (unsigned long long)d->ino, (unsigned long long)kids[i].ino,
                   c ? "is the root" : "is missing or unreadable");
            continue;
        }
        if (dir_find(d->dir, kids[i].name, kids[i].namelen)) {
            qs_log(QS_LOG_WARN, "upgrade: directory %llu: duplicate name %s dropped",
                   (unsigned long long)d->ino, kids[i].name);
            continue;
        }
        if (S_ISDIR(c->a.mode)) {
            if (c->a.parent) { /* 0-db-fs cannot hard-link directories: a damaged tree */
                qs_log(QS_LOG_WARN, "upgrade: directory %llu listed twice; kept under %llu only",
                       (unsigned long long)c->ino, (unsigned long long)c->a.parent);
                continue;
            }
            c->a.parent = d->ino;
            c->a.nlink = 2;
            d->a.nlink++;
            if ((rc = keyvec_push(queue, c->ino)) != 0)
                break;
        } else {
            c->a.nlink++;
            (*nfiles)++;
        }
        if (dir_add(d->dir, kids[i].name, kids[i].namelen, c->ino, c->a.mode) != 0)
            rc = qs_err_set(QS_ENOMEM, "out of memory");
    }
    free(kids);
    return rc;
}

int fs_upgrade_v1(struct qs_fs *fs)
{
    qs_log(QS_LOG_INFO, "upgrading a 0-db-fs (layout 1) filesystem to layout 2");
    fs->bs = V1_BLOCK;
    /* the journal slot of the new layout (an empty record) */
    struct qs_fs_journal j0 = {0};
    uint8_t *body, *sv;
    size_t bl, sl;
    int rc = qs_fs_journal_encode(&j0, &body, &bl);
    if (rc)
        return rc;
    struct qs_fs_slot slot = {.body_len = bl, .body_crc = qs_fs_crc(body, bl)};
    rc = qs_fs_slot_encode(&slot, body, &sv, &sl);
    free(body);
    if (rc)
        return rc;
    uint64_t jk;
    rc = fs_append(fs, QS_FS_META, sv, sl, &jk);
    free(sv);
    if (rc)
        return rc;
    fs->hdr.journal_key = jk;

    FS_LOCK(fs);
    struct qs_zdb_op *ops;
    uint8_t *kb;
    uint64_t root_key = QS_FS_ROOT_INO, nfiles = 0, ndirs = 1;
    struct inode *root;
    struct keyvec queue = {0};
    rc = fetch(fs, &root_key, 1, &ops, &kb);
    if (rc == 0) {
        if (ops[0].result)
            rc = qs_err_set(QS_ECORRUPT, "0-db-fs root directory (meta key 1) is missing");
        else if ((rc = inode_insert_new(fs, QS_FS_ROOT_INO, &root)) == 0)
            rc = convert(fs, root, ops[0].reply, ops[0].reply_len);
        fs_op_free(ops, 1);
        free(ops);
        free(kb);
    }
    if (rc == 0 && !S_ISDIR(root->a.mode))
        rc = qs_err_set(QS_ECORRUPT, "0-db-fs root (meta key 1) is not a directory");
    if (rc == 0) {
        root->a.parent = QS_FS_ROOT_INO;
        root->a.nlink = 2;
        rc = keyvec_push(&queue, QS_FS_ROOT_INO);
    }
    for (size_t qi = 0; rc == 0 && qi < queue.n; qi++) {
        struct inode *d = inode_find(fs, queue.k[qi]);
        rc = upgrade_dir(fs, d, &queue, &nfiles);
    }
    ndirs = queue.n;
    free(queue.k);
    if (rc == 0) {
        /* every inode of the table is part of the tree: rewrite them all */
        for (size_t i = 0; i < fs->icap; i++)
            for (struct inode *in = fs->itab[i]; in; in = in->hnext)
                if (in->a.nlink)
                    inode_dirty(fs, in);
        struct qs_fs_header h = fs->hdr;
        h.version = QS_FS_LAYOUT_V2;
        h.block_size = V1_BLOCK;
        h.created = (uint64_t)time(NULL);
        rc = qs_random_bytes(h.uuid, sizeof h.uuid);
        if (rc == 0) {
            fs->upgrade_hdr_len = qs_fs_header_encode(&h, fs->upgrade_hdr);
            fs->hdr = h;
        }
    }
    FS_UNLOCK(fs);
    if (rc)
        return rc;
    if ((rc = fs_commit(fs)) != 0)
        return qs_err_set(QS_EIO, "upgrade commit: %s", qs_err_msg());
    if (fs->upgrade_hdr_len)
        return qs_err_set(QS_EIO, "upgrade: the header was not switched");
    qs_log(QS_LOG_INFO, "upgraded: %llu directories and %llu file names now in layout 2",
           (unsigned long long)ndirs, (unsigned long long)nfiles);
    return 0;
}
