#include "dump.h"

#include <inttypes.h>
#include <time.h>

#include "store/scan.h"
#include "util/mem.h"

/* Printable keys as they are (quoted, \ and " escaped), other bytes as \xNN. */
static void print_key(FILE *out, const uint8_t *k, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        if (k[i] == '"' || k[i] == '\\')
            fprintf(out, "\\%c", k[i]);
        else if (k[i] >= 0x20 && k[i] < 0x7f)
            fputc(k[i], out);
        else
            fprintf(out, "\\x%02x", k[i]);
    }
    fputc('"', out);
}

static const char *state_of(const struct zdb_scan *it)
{
    if (it->live)
        return "live";
    return (it->e.flags & ZDB_IDX_DELETED) ? "deleted" : "stale";
}

static int dump_ns(struct zdb_ns *ns, FILE *out)
{
    fprintf(out,
            "# namespace %s: mode %s, %" PRIu64 " live keys, %" PRIu64
            " payload bytes, active files i%u/d%u\n",
            ns->name, ns->mode == ZDB_MODE_SEQ ? "sequential" : "user", ns->entries, ns->datasize,
            ns->fileid, ns->fileid);
    struct zdb_scan it;
    zdb_scan_init(&it, ns, true);
    uint64_t n = 0, live = 0;
    int rc = zdb_scan_first(&it);
    for (; rc == 0; rc = zdb_scan_next(&it)) {
        n++;
        live += it.live;
        fprintf(out, "i%u+%u %-7s ", it.fileid, it.off, state_of(&it));
        if (ns->mode == ZDB_MODE_SEQ && it.e.keylen == ZDB_SEQ_KEY_SIZE) {
            fprintf(out, "id=%" PRIu64, qs_le64(it.key));
        } else {
            fputs("key=", out);
            print_key(out, it.key, it.e.keylen);
        }
        char when[32] = "?";
        time_t t = (time_t)it.e.timestamp;
        struct tm tm;
        if (gmtime_r(&t, &tm))
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(out, " length=%u crc=0x%08x data=d%u+%u time=%u (%s)", it.e.length, it.e.crc,
                it.e.dataid, it.e.offset, it.e.timestamp, when);
        if (it.e.parentid || it.e.parentoff)
            fprintf(out, " previous-version=i%u+%u", it.e.parentid, it.e.parentoff);
        fputc('\n', out);
    }
    fprintf(out, "# namespace %s: %" PRIu64 " entries, %" PRIu64 " live\n", ns->name, n, live);
    if (rc != QS_ENOTFOUND) {
        fprintf(out, "# namespace %s: stopped: %s\n", ns->name, qs_err_msg());
        return rc;
    }
    return 0;
}

int zdb_dump(struct zdb_store *st, FILE *out)
{
    int rc = 0;
    for (size_t i = 0; i < st->nns; i++) {
        int r = dump_ns(st->ns[i], out);
        if (r < 0 && rc == 0)
            rc = r;
    }
    return rc;
}
