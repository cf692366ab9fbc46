/* Fuzz target for the zdb command layer: requests parsed from the input run through the real
 * dispatcher (zdb/commands.c zdb_dispatch) against a real store.
 *
 * Input layout:
 *   byte 0   configuration: bit 0 --admin pw (clients start without admin rights)
 *                           bit 1 --protect (with bit 0)
 *                           bits 2-3 mode: 1 user, 2 seq, otherwise mixed
 *                           bit 4 --sync
 *                           bit 5 requests alternate between two clients
 *                           bit 6 each request runs inside a store batch, as in the loop
 *                           bit 7 data files are read through mappings (guarded)
 *   rest     a RESP byte stream, parsed as the server parses a connection (lib/resp).
 * The store lives in a per-process temporary directory, emptied before every input. Clients
 * have no socket (zdb_server_client_new with fd -1). A client parked by WAIT gets no request
 * until it is woken; when both are parked, or the protocol closes a client, it is replaced by
 * a new one (a reconnection).
 *
 * Checked after every request: the output of every client is a sequence of complete,
 * well-formed RESP2 replies; the client that ran it got exactly one reply (none when WAIT
 * parked it), a woken client exactly one; no crash, no leak. COMPACT must not change what
 * the namespace holds (every key and value, read through the engine, before and after).
 * After the input, the store is closed and opened again: it must open, and every namespace
 * must hold the same keys and values as before.
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "resp/resp.h"
#include "store/store.h"
#include "util/guard.h"
#include "zdb/commands.h"
#include "zdb/server.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_REQUESTS 400

static char g_root[512], g_idx[600], g_dat[600];
static bool g_guard;
static int g_trace = -1;   /* FUZZ_TRACE=1: print every request and reply to stderr */
static int g_compact = -1; /* index of COMPACT in the command table */

static void trace(const char *what, const uint8_t *p, size_t n)
{
    fprintf(stderr, "%s ", what);
    for (size_t i = 0; i < n && i < 160; i++)
        fputc(p[i] >= 32 && p[i] < 127 ? p[i] : '.', stderr);
    fputc('\n', stderr);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    if (ftw->level > 0)
        remove(path);
    return 0;
}

static void remove_root(void)
{
    nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    rmdir(g_root);
}

static void setup_root(void)
{
    if (g_root[0]) {
        nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return;
    }
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_root, sizeof(g_root), "%s/qsfs-fuzz-zdb-XXXXXX", tmp);
    CHECK(mkdtemp(g_root) != NULL);
    snprintf(g_idx, sizeof(g_idx), "%s/index", g_root);
    snprintf(g_dat, sizeof(g_dat), "%s/data", g_root);
    atexit(remove_root);
    g_guard = qs_guard_install() == 0;
}

/* ---- RESP2 reply checker ------------------------------------------------------------- */

/* Length of the CRLF-terminated line at p (without CRLF), or -1 when there is none. */
static long line_len(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n')
            return (long)i;
    return -1;
}

static bool parse_int(const uint8_t *p, size_t n, long long *v)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && p[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == n || n - i > 19)
        return false;
    long long x = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        x = x * 10 + (p[i] - '0');
    }
    *v = neg ? -x : x;
    return true;
}

/* Byte length of the one well-formed reply at p; aborts on anything else. */
static size_t reply_len(const uint8_t *p, size_t n, int depth)
{
    CHECK(depth < 8 && n >= 3);
    long l = line_len(p, n);
    CHECK(l >= 1);
    const uint8_t *body = p + 1;
    size_t blen = (size_t)l - 1, head = (size_t)l + 2;
    long long v;
    switch (p[0]) {
    case '+':
    case '-':
        CHECK(!memchr(body, '\r', blen) && !memchr(body, '\n', blen));
        if (p[0] == '-')
            CHECK(blen > 0);
        return head;
    case ':':
        CHECK(parse_int(body, blen, &v));
        return head;
    case '$':
        CHECK(parse_int(body, blen, &v) && v >= -1);
        if (v == -1)
            return head;
        CHECK((unsigned long long)v <= n - head && n - head - (size_t)v >= 2);
        CHECK(p[head + (size_t)v] == '\r' && p[head + (size_t)v + 1] == '\n');
        return head + (size_t)v + 2;
    case '*': {
        CHECK(parse_int(body, blen, &v) && v >= -1);
        size_t pos = head;
        for (long long i = 0; i < v; i++)
            pos += reply_len(p + pos, n - pos, depth + 1);
        return pos;
    }
    default:
        CHECK(!"unknown reply type");
        return 0;
    }
}

/* Checks and empties c's output; returns how many replies it held. */
static int drain(struct zdb_client *c)
{
    const uint8_t *p = qs_buf_ptr(&c->out);
    size_t n = c->out.len, pos = 0;
    int count = 0;
    while (pos < n) {
        pos += reply_len(p + pos, n - pos, 0);
        count++;
    }
    CHECK(pos == n);
    if (g_trace && n)
        trace("  <-", p, n);
    qs_buf_reset(&c->out);
    return count;
}

/* ---- namespace contents ------------------------------------------------------------ */

/* What a namespace holds, order-independent: live keys, and a hash of every (key, value,
 * read result) that does not depend on the order of the keys. */
struct snap {
    uint64_t count, hash;
};

static uint64_t mix(const uint8_t *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void snap_add(struct zdb_ns *ns, const uint8_t *key, size_t klen, struct snap *s)
{
    struct zdb_loc loc;
    if (zdb_ns_lookup(ns, key, klen, &loc) != 0)
        return;
    static uint8_t val[ZDB_MAX_PAYLOAD];
    bool ok = false;
    int rc = zdb_ns_read(ns, &loc, val, &ok);
    uint64_t h = mix(key, klen, 0xcbf29ce484222325ull);
    uint8_t tag[2] = {(uint8_t)(rc == 0), (uint8_t)ok};
    h = mix(tag, sizeof(tag), h);
    if (rc == 0)
        h = mix(val, loc.length, h);
    s->count++;
    s->hash ^= h;
}

struct snap_ctx {
    struct zdb_ns *ns;
    uint8_t (*keys)[ZDB_MAX_KEY + 1];
    size_t n, cap;
};

static int collect_key(const struct zdb_keyrec *r, void *ud)
{
    struct snap_ctx *sc = ud;
    if (sc->n == sc->cap)
        return 1;
    sc->keys[sc->n][0] = r->keylen;
    memcpy(sc->keys[sc->n] + 1, r->key, r->keylen);
    sc->n++;
    return 0;
}

#define SNAP_MAX 4096

static struct snap snapshot(struct zdb_ns *ns)
{
    struct snap s = {0, 0};
    if (ns->mode == ZDB_MODE_SEQ) {
        for (uint64_t id = 0; id < ns->next_id && id < SNAP_MAX; id++) {
            uint8_t k[8];
            for (int i = 0; i < 8; i++)
                k[i] = (uint8_t)(id >> (8 * i));
            snap_add(ns, k, sizeof(k), &s);
        }
        return s;
    }
    static uint8_t keys[SNAP_MAX][ZDB_MAX_KEY + 1];
    struct snap_ctx sc = {ns, keys, 0, SNAP_MAX};
    zdb_keyindex_each(ns->keys, collect_key, &sc);
    for (size_t i = 0; i < sc.n; i++)
        snap_add(ns, keys[i] + 1, keys[i][0], &s);
    return s;
}

/* ---- the run ------------------------------------------------------------------------- */

static struct zdb_client *other_client(struct zdb_server *srv, struct zdb_client *c)
{
    for (struct zdb_client *o = srv->clients; o; o = o->next)
        if (o != c)
            return o;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    setup_root();
    if (g_trace < 0)
        g_trace = getenv("FUZZ_TRACE") != NULL;
    if (g_compact < 0)
        g_compact = zdb_cmd_find((const uint8_t *)"COMPACT", 7);
    uint8_t conf = data[0];
    struct zdb_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = g_dat;
    cfg.index_dir = g_idx;
    cfg.listen = "127.0.0.1";
    cfg.admin = (conf & 1) ? "pw" : NULL;
    cfg.protect = (conf & 3) == 3;
    cfg.store.index_dir = g_idx;
    cfg.store.data_dir = g_dat;
    cfg.store.datasize = ZDB_DATASIZE_MIN;
    int mode = (conf >> 2) & 3;
    cfg.store.fixed_mode = mode == 1 ? ZDB_MODE_USER : mode == 2 ? ZDB_MODE_SEQ : -1;
    cfg.store.sync = (conf & 16) != 0;
    cfg.store.protect_password = cfg.protect ? cfg.admin : NULL;
    cfg.store.mmap_reads = (conf & 128) && g_guard;
    bool alternate = (conf & 32) != 0, batch = (conf & 64) != 0;

    static struct zdb_server srv; /* large (a request of 1024 arguments) */
    CHECK(zdb_server_init_local(&srv, &cfg) == 0);
    struct zdb_client *a = zdb_server_client_new(&srv, -1);
    struct zdb_client *b = zdb_server_client_new(&srv, -1);
    CHECK(a && b);

    /* The stream belongs to client a's parser; requests are handed to a or b. */
    struct resp_parser parser;
    resp_parser_init(&parser);
    const uint8_t *p = data + 1;
    size_t left = size - 1;
    for (int nreq = 0; left > 0 && nreq < MAX_REQUESTS; nreq++) {
        size_t consumed = 0;
        int rc = resp_parse(&parser, p, left, &srv.req, &consumed, NULL);
        if (rc == RESP_NEED_MORE)
            break;
        struct zdb_client *c = alternate && (nreq & 1) ? b : a;
        if (c->waiting) {
            struct zdb_client *o = other_client(&srv, c);
            if (o && !o->waiting) {
                c = o;
            } else {
                bool was_a = c == a;
                zdb_server_client_free(&srv, c); /* disconnects: leaves WAIT */
                c = zdb_server_client_new(&srv, -1);
                CHECK(c);
                if (was_a)
                    a = c;
                else
                    b = c;
            }
        }
        int expect = 1;
        if (g_trace)
            trace(c == a ? "a->" : "b->", p, consumed);
        if (rc == RESP_DONE) {
            /* COMPACT changes where values are, never what they are. */
            struct zdb_ns *cns = c->ns;
            bool compact = cns && !c->ns_gone &&
                           zdb_cmd_find(srv.req.argv[0].ptr, srv.req.argv[0].len) == g_compact;
            struct snap before = {0, 0};
            if (compact)
                before = snapshot(cns);
            if (batch)
                zdb_store_batch_begin(srv.store);
            zdb_dispatch(&srv, c, &srv.req);
            if (batch)
                CHECK(zdb_store_batch_end(srv.store) == 0);
            if (c->waiting)
                expect = 0;
            if (compact) {
                struct snap after = snapshot(cns);
                if (g_trace)
                    fprintf(stderr, "  COMPACT: %llu keys, hash %016llx\n",
                            (unsigned long long)after.count, (unsigned long long)after.hash);
                CHECK(after.count == before.count && after.hash == before.hash);
            }
        } else {
            const char *msg = resp_error_reply(rc);
            CHECK(msg != NULL);
            CHECK(resp_add_raw(&c->out, msg, strlen(msg)) == 0);
            if (resp_error_closes(rc))
                c->closing = true;
        }
        CHECK(consumed > 0 && consumed <= left);
        p += consumed;
        left -= consumed;

        /* Woken clients leave the list (the loop would send their reply now). */
        while (srv.woken) {
            struct zdb_client *w = srv.woken;
            srv.woken = w->woken_next;
            w->woken = false;
            w->woken_next = NULL;
            CHECK(!w->waiting);
            if (w != c)
                CHECK(drain(w) == 1);
        }
        int got = drain(c);
        if (!c->closing)
            CHECK(got == expect);
        for (struct zdb_client *o = srv.clients; o; o = o->next)
            CHECK(drain(o) == 0 || o->closing);
        if (c->closing) {
            bool was_a = c == a;
            zdb_server_client_free(&srv, c);
            c = zdb_server_client_new(&srv, -1);
            CHECK(c);
            if (was_a)
                a = c;
            else
                b = c;
        }
    }

    /* A clean stop, then the store must open again with the same contents. */
    struct zdb_ns *def = zdb_store_find(srv.store, "default", 7);
    CHECK(def != NULL);
    uint64_t entries = def->entries;
    size_t nns = srv.store->nns < 16 ? srv.store->nns : 16;
    char names[16][ZDB_NS_NAME_MAX + 1];
    struct snap snaps[16];
    for (size_t i = 0; i < nns; i++) {
        snprintf(names[i], sizeof(names[i]), "%s", srv.store->ns[i]->name);
        snaps[i] = snapshot(srv.store->ns[i]);
    }
    zdb_server_free(&srv);
    struct zdb_store *st = NULL;
    int rc = zdb_store_open(&st, &cfg.store);
    if (rc != 0)
        fprintf(stderr, "reopen: %s\n", qs_err_msg());
    CHECK(rc == 0);
    def = zdb_store_find(st, "default", 7);
    CHECK(def != NULL);
    CHECK(def->entries == entries);
    for (size_t i = 0; i < nns; i++) {
        struct zdb_ns *ns = zdb_store_find(st, names[i], strlen(names[i]));
        CHECK(ns != NULL);
        struct snap s = snapshot(ns);
        if (s.count != snaps[i].count || s.hash != snaps[i].hash)
            fprintf(stderr, "namespace %s: %llu keys before, %llu after reopening\n", names[i],
                    (unsigned long long)snaps[i].count, (unsigned long long)s.count);
        CHECK(s.count == snaps[i].count && s.hash == snaps[i].hash);
    }
    zdb_store_close(st);
    return 0;
}
