/* A file's block map in pages loaded on demand (see map.h). */
#include "fs/map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/private.h"
#include "util/mem.h"

void map_init(struct fmap *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void map_destroy(struct fmap *m)
{
    for (uint32_t i = 0; i < m->cap; i++)
        free(m->pt ? m->pt[i] : NULL);
    free(m->pt);
    free(m->pkeys);
    free(m->pdirty);
    pthread_mutex_destroy(&m->mu);
}

static uint32_t pages_for(uint64_t nkeys)
{
    return (uint32_t)((nkeys + QS_FS_PAGE_KEYS - 1) / QS_FS_PAGE_KEYS);
}

/* Room for np pages in the arrays. */
static int grow(struct fmap *m, uint32_t np)
{
    if (np <= m->cap)
        return 0;
    uint32_t c = m->cap ? m->cap : 4;
    while (c < np)
        c *= 2;
    struct mpage **pt = realloc(m->pt, (size_t)c * sizeof *pt);
    if (!pt)
        return -ENOMEM;
    m->pt = pt;
    uint64_t *pk = realloc(m->pkeys, (size_t)c * 8);
    if (!pk)
        return -ENOMEM;
    m->pkeys = pk;
    uint8_t *pd = realloc(m->pdirty, c);
    if (!pd)
        return -ENOMEM;
    m->pdirty = pd;
    memset(m->pt + m->cap, 0, (size_t)(c - m->cap) * sizeof *pt);
    memset(m->pkeys + m->cap, 0, (size_t)(c - m->cap) * 8);
    memset(m->pdirty + m->cap, 0, c - m->cap);
    m->cap = c;
    return 0;
}

static struct mpage *page_new(struct fmap *m, uint32_t p)
{
    struct mpage *pg = calloc(1, sizeof *pg);
    if (pg) {
        m->pt[p] = pg;
        m->loaded++;
    }
    return pg;
}

int map_from_inline(struct fmap *m, uint64_t nkeys, const uint64_t *keys, const uint32_t *lens)
{
    m->nkeys = nkeys;
    m->paged = false;
    if (nkeys == 0)
        return 0;
    if (grow(m, 1) || !page_new(m, 0))
        return qs_err_set(QS_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < nkeys && i < QS_FS_PAGE_KEYS; i++) {
        m->pt[0]->key[i] = keys[i];
        m->pt[0]->len[i] = lens[i];
        m->nalloc += keys[i] != 0;
    }
    return 0;
}

int map_from_pages(struct fmap *m, uint64_t nkeys, const uint64_t *pages, uint32_t npages,
                   uint64_t nalloc)
{
    if (grow(m, npages))
        return qs_err_set(QS_ENOMEM, "out of memory");
    memcpy(m->pkeys, pages, (size_t)npages * 8);
    m->nkeys = nkeys;
    m->nalloc = nalloc;
    m->paged = true;
    return 0;
}

/* Page p, loaded (created empty when it has no value); m->mu held. */
static int load(struct qs_fs *fs, uint64_t ino, struct fmap *m, uint32_t p, struct mpage **out)
{
    if (grow(m, p + 1))
        return -ENOMEM;
    struct mpage *pg = m->pt[p];
    if (!pg) {
        uint64_t pk = m->pkeys[p];
        if (!(pg = calloc(1, sizeof *pg)))
            return -ENOMEM;
        if (pk) {
            uint8_t *v = NULL;
            size_t n = 0;
            int rc = fs_get(fs, QS_FS_META, pk, &v, &n);
            if (rc == 0)
                rc = qs_fs_page_decode(v, n, pg->key, pg->len);
            free(v);
            if (rc) {
                free(pg);
                return fs_errno(fs, rc == QS_ENOTFOUND ? QS_ECORRUPT : rc,
                                "loading a block map page", ino);
            }
            /* entries past the end do not count */
            for (uint32_t j = 0; j < QS_FS_PAGE_KEYS; j++)
                if ((uint64_t)p * QS_FS_PAGE_KEYS + j >= m->nkeys)
                    pg->key[j] = pg->len[j] = 0;
        }
        m->pt[p] = pg;
        m->loaded++;
    }
    pg->used = ++m->tick;
    *out = pg;
    return 0;
}

int map_page(struct qs_fs *fs, uint64_t ino, struct fmap *m, uint32_t p, struct mpage **out)
{
    pthread_mutex_lock(&m->mu);
    int rc = load(fs, ino, m, p, out);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int map_get(struct qs_fs *fs, uint64_t ino, struct fmap *m, uint64_t idx, uint64_t *key,
            uint32_t *len)
{
    *key = 0;
    *len = 0;
    pthread_mutex_lock(&m->mu);
    int rc = 0;
    uint32_t p = (uint32_t)(idx / QS_FS_PAGE_KEYS);
    if (idx < m->nkeys && (m->pt && p < m->cap && (m->pt[p] || m->pkeys[p]))) {
        struct mpage *pg = NULL;
        rc = load(fs, ino, m, p, &pg);
        if (rc == 0) {
            *key = pg->key[idx % QS_FS_PAGE_KEYS];
            *len = pg->len[idx % QS_FS_PAGE_KEYS];
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int map_set(struct qs_fs *fs, uint64_t ino, struct fmap *m, uint64_t idx, uint64_t key,
            uint32_t len, uint64_t *old)
{
    if (old)
        *old = 0;
    uint64_t np = idx / QS_FS_PAGE_KEYS + 1;
    if (np > UINT32_MAX)
        return -EFBIG;
    pthread_mutex_lock(&m->mu);
    struct mpage *pg = NULL;
    int rc = load(fs, ino, m, (uint32_t)(np - 1), &pg);
    if (rc == 0) {
        uint32_t j = (uint32_t)(idx % QS_FS_PAGE_KEYS);
        uint64_t was = idx < m->nkeys ? pg->key[j] : 0;
        if (old)
            *old = was;
        m->nalloc += (key != 0) - (was != 0);
        pg->key[j] = key;
        pg->len[j] = key ? len : 0;
        m->pdirty[np - 1] = 1;
        if (idx >= m->nkeys)
            m->nkeys = idx + 1;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int map_cut(struct qs_fs *fs, uint64_t ino, struct fmap *m, uint64_t nkeys, struct keyvec *freed,
            struct keyvec *freed_meta)
{
    pthread_mutex_lock(&m->mu);
    int rc = 0;
    if (nkeys < m->nkeys) {
        uint32_t first = (uint32_t)(nkeys / QS_FS_PAGE_KEYS), end = pages_for(m->nkeys);
        for (uint32_t p = first; p < end && p < m->cap && rc == 0; p++) {
            if (!m->pt[p] && !m->pkeys[p])
                continue; /* a page of holes */
            struct mpage *pg = NULL;
            if ((rc = load(fs, ino, m, p, &pg)) != 0)
                break;
            for (uint32_t j = 0; j < QS_FS_PAGE_KEYS && rc == 0; j++) {
                uint64_t i = (uint64_t)p * QS_FS_PAGE_KEYS + j;
                if (i < nkeys || i >= m->nkeys || !pg->key[j])
                    continue;
                rc = keyvec_push(freed, pg->key[j]) ? -ENOMEM : 0;
                pg->key[j] = pg->len[j] = 0;
                m->nalloc--;
            }
            m->pdirty[p] = 1;
            if (p >= pages_for(nkeys) || nkeys == 0) { /* the whole page goes */
                if (m->pkeys[p] && rc == 0)
                    rc = keyvec_push(freed_meta, m->pkeys[p]) ? -ENOMEM : 0;
                m->pkeys[p] = 0;
                free(m->pt[p]);
                m->pt[p] = NULL;
                m->loaded--;
                m->pdirty[p] = 0;
            }
        }
        if (rc == 0)
            m->nkeys = nkeys;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void map_trim(struct fmap *m)
{
    pthread_mutex_lock(&m->mu);
    /* an inline map is one page that lives in the inode: never dropped */
    while (m->paged && !m->committing && m->loaded > MAP_PAGES_KEPT) {
        uint32_t best = UINT32_MAX;
        for (uint32_t p = 0; p < m->cap; p++)
            if (m->pt[p] && !m->pdirty[p] &&
                (best == UINT32_MAX || m->pt[p]->used < m->pt[best]->used))
                best = p;
        if (best == UINT32_MAX)
            break; /* every loaded page is dirty */
        /* clean: stored under pkeys[best], or all holes when it has no key */
        free(m->pt[best]);
        m->pt[best] = NULL;
        m->loaded--;
    }
    pthread_mutex_unlock(&m->mu);
}
