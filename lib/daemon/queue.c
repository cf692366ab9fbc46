/* The persistent store queue: a journal of checksummed records (queue.h). */
#include "daemon/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/crc32c.h"
#include "util/mem.h"
#include "util/sys.h"

#define MAGIC       "QSZQ\x01\0\0\0" /* "QSZQ", version 1, 3 reserved bytes */
#define MAGIC_LEN   8u
#define REC_HDR     8u          /* u32 payload length, u32 CRC-32C of the payload */
#define PAYLOAD_MAX (16u << 10) /* bigger than any valid record */
#define COMPACT_MIN 1024u       /* dead records before a rewrite is considered */

enum rec_type { R_ADD = 1, R_DONE = 2, R_FAIL = 3, R_UPDATE = 4, R_NEXTID = 5 };

struct entry {
    struct zsq_item it;
    bool requeued; /* queued again while busy */
};

struct zsq {
    pthread_mutex_t mu;
    char *path;
    int fd;
    struct zsq_opts o;
    struct entry **e; /* oldest first */
    size_t n, cap;
    uint64_t next_id;
    size_t records;     /* records in the file */
    const char *broken; /* why no record may be appended any more, or NULL */
};

/* ---- encoding ---- */

struct enc {
    uint8_t b[PAYLOAD_MAX];
    size_t n;
};

static void put_u8(struct enc *e, unsigned v)
{
    e->b[e->n++] = (uint8_t)v;
}

static void put_u32(struct enc *e, uint32_t v)
{
    qs_put32(e->b + e->n, v);
    e->n += 4;
}

static void put_u64(struct enc *e, uint64_t v)
{
    qs_put64(e->b + e->n, v);
    e->n += 8;
}

/* Strings are bounded by the callers (paths, ZSQ_ERR_MAX), so they always fit. */
static void put_str(struct enc *e, const char *s)
{
    size_t len = strlen(s);
    put_u32(e, (uint32_t)len);
    memcpy(e->b + e->n, s, len);
    e->n += len;
}

static void enc_add(struct enc *e, const struct zsq_item *it)
{
    put_u8(e, R_ADD);
    put_u64(e, it->id);
    put_u8(e, it->flags);
    put_u64(e, it->added_ms);
    put_str(e, it->path);
    put_str(e, it->key_path);
}

static void enc_fail(struct enc *e, const struct zsq_item *it)
{
    put_u8(e, R_FAIL);
    put_u64(e, it->id);
    put_u32(e, it->attempts);
    put_u64(e, it->next_ms);
    put_str(e, it->last_error);
}

static void enc_update(struct enc *e, const struct zsq_item *it)
{
    put_u8(e, R_UPDATE);
    put_u64(e, it->id);
    put_u8(e, it->flags);
    put_u64(e, it->next_ms);
}

static void enc_done(struct enc *e, uint64_t id)
{
    put_u8(e, R_DONE);
    put_u64(e, id);
}

/* Frames payload p into out (REC_HDR + payload). */
static size_t frame(uint8_t *out, const struct enc *p)
{
    qs_put32(out, (uint32_t)p->n);
    qs_put32(out + 4, qs_crc32c_update(0, p->b, p->n));
    memcpy(out + REC_HDR, p->b, p->n);
    return REC_HDR + p->n;
}

/* ---- decoding ---- */

struct dec {
    const uint8_t *p;
    size_t n, off;
    bool nomem; /* a string could not be allocated: not damage */
};

static bool get_u8(struct dec *d, unsigned *v)
{
    if (d->n - d->off < 1)
        return false;
    *v = d->p[d->off++];
    return true;
}

static bool get_u32(struct dec *d, uint32_t *v)
{
    if (d->n - d->off < 4)
        return false;
    *v = qs_le32(d->p + d->off);
    d->off += 4;
    return true;
}

static bool get_u64(struct dec *d, uint64_t *v)
{
    if (d->n - d->off < 8)
        return false;
    *v = qs_le64(d->p + d->off);
    d->off += 8;
    return true;
}

/* A string of at most max bytes without NUL, malloc'ed. */
static bool get_str(struct dec *d, char **out, size_t min, size_t max)
{
    uint32_t len;
    if (!get_u32(d, &len) || len < min || len > max || d->n - d->off < len)
        return false;
    if (memchr(d->p + d->off, 0, len))
        return false;
    char *s = malloc((size_t)len + 1);
    if (!s) {
        d->nomem = true;
        return false;
    }
    memcpy(s, d->p + d->off, len);
    s[len] = '\0';
    d->off += len;
    *out = s;
    return true;
}

/* ---- items ---- */

static void item_clear(struct zsq_item *it)
{
    free(it->path);
    free(it->key_path);
    free(it->last_error);
    memset(it, 0, sizeof(*it));
}

void zsq_item_free(struct zsq_item *it)
{
    if (it)
        item_clear(it);
}

void zsq_items_free(struct zsq_item *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++)
        item_clear(&items[i]);
    free(items);
}

static int item_copy(struct zsq_item *dst, const struct zsq_item *src)
{
    *dst = *src;
    dst->path = strdup(src->path);
    dst->key_path = strdup(src->key_path);
    dst->last_error = strdup(src->last_error);
    if (!dst->path || !dst->key_path || !dst->last_error) {
        item_clear(dst);
        return qs_err_set(QS_ENOMEM, "queue: out of memory");
    }
    return 0;
}

static void entry_free(struct entry *e)
{
    if (e) {
        item_clear(&e->it);
        free(e);
    }
}

static struct entry *find_id(struct zsq *q, uint64_t id, size_t *idx)
{
    for (size_t i = 0; i < q->n; i++)
        if (q->e[i]->it.id == id) {
            if (idx)
                *idx = i;
            return q->e[i];
        }
    return NULL;
}

static struct entry *find_path(struct zsq *q, const char *path)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->e[i]->it.path, path) == 0)
            return q->e[i];
    return NULL;
}

/* Room for one more entry, so that push cannot fail after a durable append. */
static int reserve(struct zsq *q)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 16;
        struct entry **p = realloc(q->e, cap * sizeof(*p));
        if (!p)
            return qs_err_set(QS_ENOMEM, "queue: out of memory");
        q->e = p;
        q->cap = cap;
    }
    return 0;
}

static int push(struct zsq *q, struct entry *e)
{
    int rc = reserve(q);
    if (rc == 0)
        q->e[q->n++] = e;
    return rc;
}

static void remove_at(struct zsq *q, size_t i)
{
    entry_free(q->e[i]);
    memmove(&q->e[i], &q->e[i + 1], (q->n - i - 1) * sizeof(*q->e));
    q->n--;
}

/* ---- replay ---- */

static int bad(const struct zsq *q, size_t off, const char *why)
{
    return qs_err_set(QS_ECORRUPT, "queue %s: damaged record at offset %zu: %s", q->path, off, why);
}

/* A record that did not decode: damage, unless an allocation failed on the way. */
static int bad_or_nomem(const struct zsq *q, const struct dec *d, size_t off, const char *why)
{
    if (d->nomem)
        return qs_err_set(QS_ENOMEM, "queue %s: out of memory reading it", q->path);
    return bad(q, off, why);
}

/* Applies one record's payload (at file offset off, for messages). */
static int apply(struct zsq *q, const uint8_t *p, size_t n, size_t off)
{
    struct dec d = {p, n, 0, false};
    unsigned type;
    uint64_t id;
    if (!get_u8(&d, &type) || !get_u64(&d, &id))
        return bad(q, off, "short record");
    if (id >= q->next_id)
        q->next_id = id + 1;
    if (type == R_NEXTID) {
        if (d.off != d.n)
            return bad(q, off, "bad next-id record");
        return 0;
    }
    size_t idx = 0;
    struct entry *e = find_id(q, id, &idx);
    if (type == R_ADD) {
        if (e)
            return bad(q, off, "item added twice");
        if (!(e = calloc(1, sizeof(*e))))
            return qs_err_set(QS_ENOMEM, "queue: out of memory");
        unsigned flags;
        e->it.id = id;
        e->it.last_error = strdup("");
        d.nomem = !e->it.last_error;
        if (!e->it.last_error || !get_u8(&d, &flags) || (flags & ~ZSQ_FLAGS) ||
            !get_u64(&d, &e->it.added_ms) || !get_str(&d, &e->it.path, 1, ZSQ_PATH_MAX) ||
            !get_str(&d, &e->it.key_path, 0, ZSQ_PATH_MAX) || d.off != d.n) {
            entry_free(e);
            return bad_or_nomem(q, &d, off, "bad add record");
        }
        e->it.flags = flags;
        e->it.next_ms = e->it.added_ms;
        int rc = push(q, e);
        if (rc)
            entry_free(e);
        return rc;
    }
    if (!e)
        return bad(q, off, "record for an unknown item");
    if (type == R_DONE) {
        if (d.off != d.n)
            return bad(q, off, "bad done record");
        remove_at(q, idx);
        return 0;
    }
    if (type == R_FAIL) {
        char *err = NULL;
        uint32_t attempts;
        uint64_t next;
        if (!get_u32(&d, &attempts) || !get_u64(&d, &next) || !get_str(&d, &err, 0, ZSQ_ERR_MAX) ||
            d.off != d.n) {
            free(err);
            return bad_or_nomem(q, &d, off, "bad failure record");
        }
        free(e->it.last_error);
        e->it.last_error = err;
        e->it.attempts = attempts;
        e->it.next_ms = next;
        return 0;
    }
    if (type == R_UPDATE) {
        unsigned flags;
        uint64_t next;
        if (!get_u8(&d, &flags) || (flags & ~ZSQ_FLAGS) || !get_u64(&d, &next) || d.off != d.n)
            return bad(q, off, "bad update record");
        e->it.flags = flags;
        e->it.next_ms = next;
        e->it.attempts = 0; /* queued again: a fresh start (zsq_add) */
        return 0;
    }
    return bad(q, off, "unknown record type");
}

/* True when a whole record (plausible length, matching CRC) starts inside p[1..n): the
 * bytes after a record that runs past the end are then not what a crash leaves. */
static bool record_inside(const uint8_t *p, size_t n)
{
    for (size_t o = 1; n - o > REC_HDR; o++) {
        uint32_t len = qs_le32(p + o);
        if (len < 9 || len > PAYLOAD_MAX || (size_t)len > n - o - REC_HDR)
            continue;
        if (qs_crc32c_update(0, p + o + REC_HDR, len) == qs_le32(p + o + 4))
            return true;
    }
    return false;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Replays the whole file. *good gets the length of the valid prefix. Only what a crash
 * during the last append leaves is left out of it: a record cut short at the end of the
 * file (nothing whole after it), a last record whose bytes did not all reach the disk
 * (its CRC fails and it ends exactly at the end), or a tail of zero bytes (a size that
 * reached the disk before the data). Anything else is damage: the queue refuses to open
 * rather than drop acknowledged items. */
static int replay(struct zsq *q, const uint8_t *p, size_t n, size_t *good)
{
    if (n < MAGIC_LEN || memcmp(p, MAGIC, MAGIC_LEN) != 0)
        return qs_err_set(QS_ECORRUPT, "queue %s: not a zstor queue file (bad header)", q->path);
    size_t off = MAGIC_LEN;
    q->records = 0;
    while (off < n) {
        size_t left = n - off;
        if (left < REC_HDR || all_zero(p + off, left))
            break; /* a cut record header, or a zero-filled tail */
        uint32_t len = qs_le32(p + off);
        if (len > PAYLOAD_MAX) {
            char why[64];
            snprintf(why, sizeof(why), "impossible record length %u", len);
            return bad(q, off, why);
        }
        if (REC_HDR + (size_t)len > left) {
            if (record_inside(p + off, left))
                return bad(q, off, "record length runs past whole records after it");
            break; /* the last record, cut short */
        }
        if (qs_crc32c_update(0, p + off + REC_HDR, len) != qs_le32(p + off + 4)) {
            if (REC_HDR + (size_t)len == left)
                break; /* the last record, not all of it written */
            return bad(q, off, "checksum mismatch");
        }
        int rc = apply(q, p + off + REC_HDR, len, off);
        if (rc)
            return rc;
        off += REC_HDR + len;
        q->records++;
    }
    *good = off;
    return 0;
}

/* ---- file I/O ---- */

static int write_all(int fd, const uint8_t *p, size_t n, const char *path)
{
    int rc = qs_write_all(fd, p, n);
    return rc < 0 ? qs_err_sys(rc, errno, "queue %s: write", path) : 0;
}

static int sync_fd(const struct zsq *q, int fd, const char *path)
{
    if (!q->o.nosync && fdatasync(fd) != 0)
        return qs_err_sys(QS_EIO, errno, "queue %s: fdatasync", path);
    return 0;
}

static int rewrite(struct zsq *q);

/* Appends one record durably. On a failed write the file is cut back to its previous
 * length, so a later record never follows a partial one. */
static int append(struct zsq *q, const struct enc *payload)
{
    static __thread uint8_t buf[REC_HDR + PAYLOAD_MAX];
    size_t n = frame(buf, payload);
    off_t end = lseek(q->fd, 0, SEEK_END);
    if (end < 0)
        return qs_err_sys(QS_EIO, errno, "queue %s: seek", q->path);
    if (q->broken)
        return qs_err_set(QS_EIO, "queue %s: %s", q->path, q->broken);
    int rc = write_all(q->fd, buf, n, q->path);
    if (rc == 0)
        rc = sync_fd(q, q->fd, q->path);
    if (rc) {
        /* A partial record must never have another one after it (that reads as damage
         * at the next open): cut it back, or else write the live state to a new file. */
        char msg[600];
        snprintf(msg, sizeof(msg), "%s", qs_err_msg());
        if (ftruncate(q->fd, end) != 0 && rewrite(q) != 0)
            q->broken = "a failed append could not be cut back nor the file rewritten; "
                        "reopen the queue";
        return qs_err_set(rc, "%s", msg);
    }
    q->records++;
    return 0;
}

/* Writes the live state to a new file and renames it over the old one. */
static int rewrite(struct zsq *q)
{
    size_t plen = strlen(q->path);
    char *tmp = malloc(plen + 8);
    if (!tmp)
        return qs_err_set(QS_ENOMEM, "queue: out of memory");
    snprintf(tmp, plen + 8, "%s.new", q->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc = qs_err_sys(QS_EIO, errno, "queue: create %s", tmp);
        free(tmp);
        return rc;
    }
    static __thread uint8_t buf[REC_HDR + PAYLOAD_MAX];
    static __thread struct enc e;
    int rc = write_all(fd, (const uint8_t *)MAGIC, MAGIC_LEN, tmp);
    size_t records = 0;
    e.n = 0;
    put_u8(&e, R_NEXTID);
    put_u64(&e, q->next_id ? q->next_id - 1 : 0);
    if (rc == 0 && q->next_id) {
        rc = write_all(fd, buf, frame(buf, &e), tmp);
        records++;
    }
    for (size_t i = 0; rc == 0 && i < q->n; i++) {
        const struct zsq_item *it = &q->e[i]->it;
        e.n = 0;
        enc_add(&e, it);
        rc = write_all(fd, buf, frame(buf, &e), tmp);
        records++;
        if (rc == 0 && (it->attempts || it->next_ms != it->added_ms || it->last_error[0])) {
            e.n = 0;
            enc_fail(&e, it);
            rc = write_all(fd, buf, frame(buf, &e), tmp);
            records++;
        }
    }
    if (rc == 0)
        rc = sync_fd(q, fd, tmp);
    if (rc == 0 && rename(tmp, q->path) != 0)
        rc = qs_err_sys(QS_EIO, errno, "queue: rename %s", tmp);
    if (rc) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    if (q->fd >= 0)
        close(q->fd);
    q->fd = fd;
    q->records = records;
    /* the rename itself becomes durable with the directory */
    if (!q->o.nosync && qs_fsync_parent(q->path) != 0)
        rc = qs_err_set(QS_EIO, "queue %s: %s", q->path, qs_err_msg());
    return rc;
}

/* Rewrites the file when most of it is dead. Called after a record is durable, so a
 * failure here changes nothing the caller was promised: it is retried at the next
 * record (and at the next open) and not reported. */
static void maybe_compact(struct zsq *q)
{
    if (q->records < COMPACT_MIN || q->records < 4 * (q->n + 1))
        return;
    if (rewrite(q) != 0)
        qs_err_clear();
}

static int read_file(const char *path, uint8_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? QS_ENOTFOUND : qs_err_sys(QS_EIO, errno, "queue: open %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return qs_err_set(QS_EIO, "queue %s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *p = malloc(size ? size : 1);
    if (!p) {
        close(fd);
        return qs_err_set(QS_ENOMEM, "queue %s: out of memory (%zu bytes)", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, p + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int rc = qs_err_sys(QS_EIO, r < 0 ? errno : EIO, "queue: read %s", path);
            free(p);
            close(fd);
            return rc;
        }
        got += (size_t)r;
    }
    close(fd);
    *out = p;
    *n = size;
    return 0;
}

int zsq_open(struct zsq **out, const char *path, const struct zsq_opts *o)
{
    *out = NULL;
    if (!path || !path[0])
        return qs_err_set(QS_EINVAL, "queue: empty path");
    struct zsq *q = calloc(1, sizeof(*q));
    if (!q || !(q->path = strdup(path))) {
        free(q);
        return qs_err_set(QS_ENOMEM, "queue: out of memory");
    }
    pthread_mutex_init(&q->mu, NULL);
    q->fd = -1;
    if (o)
        q->o = *o;
    if (!q->o.min_backoff_ms)
        q->o.min_backoff_ms = 1000;
    if (!q->o.max_backoff_ms)
        q->o.max_backoff_ms = 600000;
    if (q->o.max_backoff_ms < q->o.min_backoff_ms)
        q->o.max_backoff_ms = q->o.min_backoff_ms;
    uint8_t *p = NULL;
    size_t n = 0, good = 0;
    int rc = read_file(path, &p, &n);
    if (rc == QS_ENOTFOUND)
        rc = 0; /* a new queue */
    else if (rc == 0)
        rc = replay(q, p, n, &good);
    free(p);
    if (rc == 0)
        rc = rewrite(q); /* drops dead records and a torn tail, makes the header */
    if (rc) {
        zsq_close(q);
        return rc;
    }
    *out = q;
    return 0;
}

void zsq_close(struct zsq *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n; i++)
        entry_free(q->e[i]);
    free(q->e);
    if (q->fd >= 0)
        close(q->fd);
    pthread_mutex_destroy(&q->mu);
    free(q->path);
    free(q);
}

static bool valid_path(const char *s, size_t min)
{
    if (!s)
        return min == 0;
    size_t n = strnlen(s, ZSQ_PATH_MAX + 1);
    return n >= min && n <= ZSQ_PATH_MAX;
}

int zsq_add(struct zsq *q, const char *path, const char *key_path, unsigned flags, uint64_t now_ms,
            uint64_t *id)
{
    if (!valid_path(path, 1) || !valid_path(key_path, 0) || (flags & ~ZSQ_FLAGS))
        return qs_err_set(QS_EINVAL, "queue: bad path, key path or flags");
    if (!key_path)
        key_path = "";
    static __thread struct enc e;
    e.n = 0;
    pthread_mutex_lock(&q->mu);
    int rc = 0;
    struct entry *old = find_path(q, path);
    if (old && strcmp(old->it.key_path, key_path) == 0) {
        struct zsq_item upd = old->it;
        upd.flags |= flags;
        upd.next_ms = now_ms;
        enc_update(&e, &upd);
        if ((rc = append(q, &e)) == 0) {
            old->it.flags = upd.flags;
            old->it.next_ms = now_ms;
            old->it.attempts = 0;
            if (old->it.busy)
                old->requeued = true;
            if (id)
                *id = old->it.id;
        }
        pthread_mutex_unlock(&q->mu);
        return rc;
    }
    struct entry *ne = calloc(1, sizeof(*ne));
    if (!ne || !(ne->it.path = strdup(path)) || !(ne->it.key_path = strdup(key_path)) ||
        !(ne->it.last_error = strdup(""))) {
        entry_free(ne);
        pthread_mutex_unlock(&q->mu);
        return qs_err_set(QS_ENOMEM, "queue: out of memory");
    }
    ne->it.id = q->next_id ? q->next_id : 1;
    ne->it.flags = flags;
    ne->it.added_ms = ne->it.next_ms = now_ms;
    enc_add(&e, &ne->it);
    if ((rc = reserve(q)) != 0 || (rc = append(q, &e)) != 0) {
        entry_free(ne); /* not in memory, and not in the file (append cuts back) */
    } else {
        q->e[q->n++] = ne;
        q->next_id = ne->it.id + 1;
        if (id)
            *id = ne->it.id;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int zsq_take(struct zsq *q, uint64_t now_ms, struct zsq_item *out, uint64_t *wait_ms)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&q->mu);
    uint64_t wait = UINT64_MAX;
    struct entry *pick = NULL;
    for (size_t i = 0; i < q->n && !pick; i++) {
        struct entry *e = q->e[i];
        if (e->it.busy)
            continue;
        if (e->it.next_ms <= now_ms)
            pick = e;
        else if (e->it.next_ms - now_ms < wait)
            wait = e->it.next_ms - now_ms;
    }
    int rc;
    if (!pick) {
        rc = QS_ENOTFOUND;
        if (wait_ms)
            *wait_ms = wait;
    } else if ((rc = item_copy(out, &pick->it)) == 0) {
        pick->it.busy = true;
        pick->requeued = false;
        out->busy = true;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int zsq_done(struct zsq *q, uint64_t id)
{
    static __thread struct enc e;
    pthread_mutex_lock(&q->mu);
    size_t idx = 0;
    struct entry *en = find_id(q, id, &idx);
    int rc = 0;
    if (!en) {
        rc = qs_err_set(QS_ENOTFOUND, "queue: no item %llu", (unsigned long long)id);
    } else if (en->requeued) {
        en->it.busy = false;
        en->requeued = false;
    } else {
        e.n = 0;
        enc_done(&e, id);
        if ((rc = append(q, &e)) == 0) {
            remove_at(q, idx);
            maybe_compact(q);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int zsq_failed(struct zsq *q, uint64_t id, uint64_t now_ms, const char *err)
{
    static __thread struct enc e;
    pthread_mutex_lock(&q->mu);
    struct entry *en = find_id(q, id, NULL);
    int rc = 0;
    if (!en) {
        pthread_mutex_unlock(&q->mu);
        return qs_err_set(QS_ENOTFOUND, "queue: no item %llu", (unsigned long long)id);
    }
    char msg[ZSQ_ERR_MAX + 1];
    snprintf(msg, sizeof(msg), "%s", err ? err : "");
    char *copy = strdup(msg);
    if (!copy) {
        pthread_mutex_unlock(&q->mu);
        return qs_err_set(QS_ENOMEM, "queue: out of memory");
    }
    uint32_t attempts = en->it.attempts + 1;
    uint64_t delay = q->o.min_backoff_ms;
    for (uint32_t i = 1; i < attempts && delay < q->o.max_backoff_ms; i++)
        delay *= 2;
    if (delay > q->o.max_backoff_ms)
        delay = q->o.max_backoff_ms;
    struct zsq_item upd = en->it;
    upd.attempts = attempts;
    upd.next_ms = en->requeued ? now_ms : now_ms + delay;
    upd.last_error = copy;
    e.n = 0;
    enc_fail(&e, &upd);
    if ((rc = append(q, &e)) == 0) {
        free(en->it.last_error);
        en->it.last_error = copy;
        en->it.attempts = attempts;
        en->it.next_ms = upd.next_ms;
        en->it.busy = false;
        en->requeued = false;
        maybe_compact(q);
    } else {
        free(copy);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

size_t zsq_len(struct zsq *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->n;
    pthread_mutex_unlock(&q->mu);
    return n;
}

int zsq_list(struct zsq *q, struct zsq_item **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    pthread_mutex_lock(&q->mu);
    struct zsq_item *out = calloc(q->n ? q->n : 1, sizeof(*out));
    int rc = out ? 0 : qs_err_set(QS_ENOMEM, "queue: out of memory");
    size_t i = 0;
    for (; rc == 0 && i < q->n; i++)
        rc = item_copy(&out[i], &q->e[i]->it);
    pthread_mutex_unlock(&q->mu);
    if (rc) {
        zsq_items_free(out, i);
        return rc;
    }
    *items = out;
    *n = i;
    return 0;
}
