/* SCAN SCANX RSCAN KEYCUR HISTORY: walking a namespace in append order and a key's
 * versions, over the iterator of lib/store/scan.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/compact.h"
#include "store/scan.h"
#include "util/mem.h"
#include "zdb/commands.h"
#include "zdb/reply.h"

/* One SCAN batch: what fits in about 2 ms (as 0-db), bounded in entries and bytes too so
 * that a fast disk cannot build a huge reply. */
#define SCAN_SLICE_NS    (2 * 1000 * 1000)
#define SCAN_MAX_ENTRIES 20000
#define SCAN_MAX_BYTES   (4u * 1024 * 1024)
/* Entries one iterator move may step over (deleted ones) before the batch is checked
 * against the clock. */
#define SCAN_STEP_BUDGET 256
#define EKEY_SIZE        8 /* HISTORY: u32 index file id, u32 offset */

static bool not_frozen(struct zdb_client *c)
{
    if (c->ns->frozen) {
        reply_error(c, "Namespace is temporarily frozen (read-write disabled)");
        return false;
    }
    return true;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* *3 [key, :length, :timestamp] */
static int add_entry(struct qs_buf *b, const struct zdb_scan *it)
{
    int rc = resp_add_array(b, 3);
    if (rc == 0)
        rc = resp_add_bulk(b, it->key, it->e.keylen);
    if (rc == 0)
        rc = resp_add_int(b, it->e.length);
    if (rc == 0)
        rc = resp_add_int(b, it->e.timestamp);
    return rc;
}

/* SCAN / RSCAN: *2 [next cursor, array of entries], or -No more data. */
static int scan_common(struct zdb_client *c, const struct resp_request *r, bool backward)
{
    if (r->argc != 1 && r->argc != 2) {
        reply_error(c, "Unexpected arguments");
        return CMD_FAILED;
    }
    if (!not_frozen(c))
        return CMD_FAILED;
    struct zdb_scan it;
    zdb_scan_init(&it, c->ns, false);
    it.budget = SCAN_STEP_BUDGET;
    int rc;
    if (r->argc == 1) {
        rc = backward ? zdb_scan_last(&it) : zdb_scan_first(&it);
    } else {
        if (zdb_scan_seek_cursor(&it, r->argv[1].ptr, r->argv[1].len) < 0) {
            reply_error(c, "Invalid key format");
            return CMD_FAILED;
        }
        rc = backward ? zdb_scan_prev(&it) : zdb_scan_next(&it);
    }

    struct qs_buf list;
    qs_buf_init(&list, SCAN_MAX_BYTES + 2 * 1024);
    uint8_t cursor[ZDB_CURSOR_SIZE];
    bool have_cursor = false;
    size_t count = 0;
    int status = CMD_OK;
    uint64_t start = now_ns();
    for (;;) {
        if (rc == 0) {
            size_t mark = list.len;
            if (add_entry(&list, &it) < 0) {
                list.len = mark; /* no memory: the cursor stays on the previous entry */
                break;
            }
            count++;
        } else if (rc != QS_EAGAIN) {
            if (rc != QS_ENOTFOUND && count == 0)
                status = CMD_FAILED; /* an unreadable index with nothing to show */
            break;
        }
        /* a live entry, or a dead one the budget stopped on: resume after it */
        zdb_scan_cursor(&it, cursor);
        have_cursor = true;
        if (count >= SCAN_MAX_ENTRIES || list.len >= SCAN_MAX_BYTES ||
            now_ns() - start >= SCAN_SLICE_NS)
            break;
        rc = backward ? zdb_scan_prev(&it) : zdb_scan_next(&it);
    }
    if (status != CMD_OK) {
        reply_error(c, "Internal Error");
    } else if (count == 0 && (rc == QS_ENOTFOUND || !have_cursor)) {
        reply_error(c, "No more data");
        status = CMD_FAILED;
    } else {
        /* only dead entries in this slice: an empty list and a cursor past them */
        reply_array(c, 2);
        reply_bulk(c, cursor, sizeof(cursor));
        reply_array(c, count);
        reply_check(c, resp_add_raw(&c->out, qs_buf_ptr(&list), list.len));
    }
    qs_buf_free(&list);
    return status;
}

int cmd_scan(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    return scan_common(c, r, false);
}

int cmd_rscan(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    return scan_common(c, r, true);
}

int cmd_keycur(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (!cmd_args_nonempty(c, r, 2))
        return CMD_FAILED;
    if (r->argv[1].len > ZDB_MAX_KEY) {
        reply_error(c, "Invalid key");
        return CMD_FAILED;
    }
    if (!not_frozen(c))
        return CMD_FAILED;
    struct zdb_scan it;
    zdb_scan_init(&it, c->ns, false);
    int rc = zdb_scan_seek_key(&it, r->argv[1].ptr, r->argv[1].len);
    if (rc == QS_ENOTFOUND) {
        reply_error(c, "Key not found");
        return CMD_FAILED;
    }
    if (rc < 0) {
        reply_error(c, "Internal Error");
        return CMD_FAILED;
    }
    uint8_t cursor[ZDB_CURSOR_SIZE];
    zdb_scan_cursor(&it, cursor);
    reply_bulk(c, cursor, sizeof(cursor));
    return CMD_OK;
}

/* *3 [ekey of the previous version or nil, timestamp as a bulk, payload] */
static int history_reply(struct zdb_server *srv, struct zdb_client *c, const struct zdb_scan *it)
{
    size_t mark = c->out.len;
    reply_array(c, 3);
    /* A parent whose value compaction reclaimed (or that is no version of this key) ends the
     * walk: nil, as for the first version. */
    bool parent = (it->e.parentid || it->e.parentoff) &&
                  zdb_compact_version_check(c->ns, it->e.parentid, it->e.parentoff, it->key,
                                            it->e.keylen) == 0;
    if (parent) {
        uint8_t ekey[EKEY_SIZE];
        qs_put32(ekey, it->e.parentid);
        qs_put32(ekey + 4, it->e.parentoff);
        reply_bulk(c, ekey, sizeof(ekey));
    } else {
        reply_nil(c);
    }
    char ts[16];
    int n = snprintf(ts, sizeof(ts), "%" PRIu32, it->e.timestamp);
    reply_bulk(c, ts, (size_t)n);
    struct zdb_loc loc;
    zdb_scan_loc(it, &loc);
    uint8_t *dst = NULL;
    int rc = resp_add_bulk_space(&c->out, loc.length, &dst);
    if (rc == 0)
        rc = cmd_ns_read(srv, c->ns, &loc, dst, NULL);
    if (rc < 0 || c->closing) {
        c->out.len = mark;
        reply_error(c, rc == QS_ECORRUPT ? ZDB_ERR_DAMAGED : "Internal Error");
        return CMD_FAILED;
    }
    return CMD_OK;
}

int cmd_history(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (r->argc != 2 && r->argc != 3) {
        reply_error(c, "Invalid arguments");
        return CMD_FAILED;
    }
    const struct resp_arg *k = &r->argv[1];
    if (k->len > ZDB_MAX_KEY) {
        reply_error(c, "Invalid key");
        return CMD_FAILED;
    }
    if (!not_frozen(c))
        return CMD_FAILED;
    struct zdb_scan it;
    zdb_scan_init(&it, c->ns, false);
    if (r->argc == 2) {
        int rc = zdb_scan_seek_key(&it, k->ptr, k->len);
        if (rc == QS_ENOTFOUND) {
            reply_error(c, "Key not found");
            return CMD_FAILED;
        }
        if (rc < 0) {
            reply_error(c, "Internal Error");
            return CMD_FAILED;
        }
        return history_reply(srv, c, &it);
    }
    /* An older version: the ekey comes from the client, so the entry it points to must
     * carry the very key asked for. */
    const struct resp_arg *ek = &r->argv[2];
    if (ek->len != EKEY_SIZE) {
        reply_error(c, "Invalid arguments");
        return CMD_FAILED;
    }
    uint32_t fileid = qs_le32(ek->ptr), off = qs_le32(ek->ptr + 4);
    if (fileid == 0 && off == 0) {
        reply_error(c, "No more history");
        return CMD_FAILED;
    }
    if (zdb_scan_seek(&it, fileid, off) < 0) {
        reply_error(c, "Invalid arguments (index query)");
        return CMD_FAILED;
    }
    if (it.e.keylen != k->len || memcmp(it.key, k->ptr, k->len) != 0) {
        reply_error(c, "Invalid arguments (invalid key)");
        return CMD_FAILED;
    }
    if (zdb_compact_version_check(c->ns, fileid, off, k->ptr, k->len) == QS_ENOTFOUND) {
        reply_error(c, "No more history"); /* reclaimed by compaction */
        return CMD_FAILED;
    }
    return history_reply(srv, c, &it);
}
