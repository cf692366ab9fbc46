/* The daemon's metrics text and status page (daemon.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/private.h"
#include "util/fmt.h"

static uint64_t known(uint64_t v)
{
    return v == ZSTOR_UNKNOWN || v == QS_ZDB_UNKNOWN ? ZSM_UNKNOWN : v;
}

int zsd_render_metrics(struct zsd *d, struct qs_buf *out)
{
    struct zsm_state st;
    memset(&st, 0, sizeof(st));
    struct zsq_item *items;
    size_t failing;
    size_t qlen = zsd_queue_snapshot(d, &items, &failing);
    zsq_items_free(items, qlen);
    uint64_t fs_failures;
    zsd_fs_snapshot(d, &st.fs, &fs_failures);
    pthread_mutex_lock(&d->mu);
    struct zsm_backend *bk = calloc(d->nrows ? d->nrows : 1, sizeof(*bk));
    if (!bk) {
        pthread_mutex_unlock(&d->mu);
        return qs_err_set(QS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < d->nrows; i++) {
        const struct zstor_backend_status *r = &d->rows[i];
        struct zsm_backend *b = &bk[i];
        b->address = r->address;
        b->ns = r->ns;
        b->meta = r->meta;
        b->reachable = r->reachable;
        b->entries = known(r->entries);
        b->data_size = known(r->used);
        b->data_limit = r->limit == ZSTOR_UNKNOWN ? 0 : r->limit; /* 0: metrics.c shows free */
        b->index_size = b->index_disk_free = b->data_disk_free = ZSM_UNKNOWN;
        b->index_io_errors = b->index_faults = b->data_io_errors = b->data_faults = ZSM_UNKNOWN;
        if (r->have_nsinfo) {
            const struct qs_zdb_nsinfo *n = &r->nsinfo;
            b->index_size = known(n->index_size_bytes);
            b->index_disk_free = known(n->index_disk_freespace_bytes);
            b->data_disk_free = known(n->data_disk_freespace_bytes);
            b->index_io_errors = known(n->stats_index_io_errors);
            b->index_faults = known(n->stats_index_faults);
            b->data_io_errors = known(n->stats_data_io_errors);
            b->data_faults = known(n->stats_data_faults);
        }
    }
    st.backends = bk;
    st.nbackends = d->nrows;
    memcpy(st.ok, d->ok, sizeof(st.ok));
    memcpy(st.failed, d->failed, sizeof(st.failed));
    memcpy(st.latency, d->latency, sizeof(st.latency));
    st.bytes_stored = d->bytes_stored;
    st.bytes_retrieved = d->bytes_retrieved;
    st.queue_length = qlen;
    st.queue_failing = failing;
    st.queue_failures = d->queue_failures;
    st.repairs_ok = d->repairs_ok;
    st.repairs_failed = d->repairs_failed;
    st.objects = d->objects;
    st.objects_degraded = d->objects_degraded;
    const struct zstor_config *cfg = d->cfg_peek;
    st.data_dir = cfg->zdb_data_dir_path && cfg->max_zdb_data_dir_size;
    st.data_dir_size = d->data_dir_known ? d->data_dir_size : 0;
    st.data_dir_limit = cfg->max_zdb_data_dir_size << 20;
    st.data_dir_evicted = d->evicted;
    st.data_dir_eviction_failures = d->eviction_failures;
    uint64_t scrub_files = d->scrub_files, scrub_damaged = d->scrub_damaged,
             passes = d->scrub_passes, scrub_bytes = d->scrub_bytes;
    bool fs_on = cfg->zdbfs_mountpoint != NULL;
    int rc = zsm_render(out, &st);
    pthread_mutex_unlock(&d->mu);
    free(bk);
    if (rc == 0)
        rc = qs_buf_appendf(out,
                            "# TYPE zstor_scrub_files_verified counter\n"
                            "zstor_scrub_files_verified %" PRIu64 "\n"
                            "# TYPE zstor_scrub_bytes_verified counter\n"
                            "zstor_scrub_bytes_verified %" PRIu64 "\n"
                            "# TYPE zstor_scrub_files_damaged counter\n"
                            "zstor_scrub_files_damaged %" PRIu64 "\n"
                            "# TYPE zstor_scrub_passes counter\n"
                            "zstor_scrub_passes %" PRIu64 "\n",
                            scrub_files, scrub_bytes, scrub_damaged, passes);
    if (rc == 0 && fs_on)
        rc = qs_buf_appendf(out,
                            "# HELP zstor_fs_stats_up 1 when zdbfs_mountpoint answered its "
                            "statistics ioctl in the last 3 s\n"
                            "# TYPE zstor_fs_stats_up gauge\nzstor_fs_stats_up %d\n"
                            "# TYPE zstor_fs_stats_failures counter\n"
                            "zstor_fs_stats_failures %" PRIu64 "\n",
                            st.fs.present ? 1 : 0, fs_failures);
    return rc;
}

/* ---- the status page ---- */

static int html_text(struct qs_buf *b, const char *s)
{
    int rc = 0;
    for (; *s && rc == 0; s++) {
        switch (*s) {
        case '<':
            rc = qs_buf_append(b, "&lt;", 4);
            break;
        case '>':
            rc = qs_buf_append(b, "&gt;", 4);
            break;
        case '&':
            rc = qs_buf_append(b, "&amp;", 5);
            break;
        case '"':
            rc = qs_buf_append(b, "&quot;", 6);
            break;
        default:
            rc = qs_buf_append(b, s, 1);
        }
    }
    return rc;
}

int zsd_render_page(struct zsd *d, struct qs_buf *b, bool names)
{
    struct zsq_item *items;
    size_t failing;
    size_t nitems = zsd_queue_snapshot(d, &items, &failing);
    int64_t now = zsd_wall_ms();
    pthread_mutex_lock(&d->mu);
    int rc = qs_buf_appendf(
        b,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"refresh\" content=\"5\"><title>zstor daemon</title>"
        "<style>body{font:14px sans-serif;margin:1.5em;color:#222}table{border-collapse:"
        "collapse}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}"
        ".healthy{color:#1a7f37}.low{color:#b35900}.ro{color:#8250df}.down{color:#cf222e;"
        "font-weight:bold}h2{margin-top:1.2em}</style></head><body>\n"
        "<h1>zstor daemon</h1><p>pid %ld, up %lld s, backends probed %lld s ago; this page "
        "refreshes every 5 s.</p>\n<h2>Backends</h2>\n<table id=\"backends\"><tr><th>role</th>"
        "<th>group</th><th>backend</th><th>state</th><th>objects</th><th>used</th><th>free</th>"
        "<th>usage</th></tr>\n",
        (long)getpid(), (long long)((now - d->started_ms) / 1000),
        (long long)((now - d->health_ms) / 1000));
    for (size_t i = 0; i < d->nrows && rc == 0; i++) {
        const struct zstor_backend_status *r = &d->rows[i];
        enum zsd_state s = zsd_row_state(r);
        static const char *const cls[] = {"healthy", "low", "ro", "down"};
        char used[32] = "-", fr[32] = "-", obj[32] = "-", grp[16] = "-";
        double pct = -1;
        if (r->reachable) {
            if (r->used != ZSTOR_UNKNOWN)
                qs_fmt_bytes(r->used, used, sizeof(used));
            if (r->free != ZSTOR_UNKNOWN)
                qs_fmt_bytes(r->free, fr, sizeof(fr));
            else
                snprintf(fr, sizeof(fr), "unlimited");
            if (r->entries != ZSTOR_UNKNOWN)
                snprintf(obj, sizeof(obj), "%llu", (unsigned long long)r->entries);
            if (r->used != ZSTOR_UNKNOWN && r->free != ZSTOR_UNKNOWN && r->used + r->free)
                pct = 100.0 * (double)r->used / (double)(r->used + r->free);
        }
        if (!r->meta)
            snprintf(grp, sizeof(grp), "%d", r->group);
        rc = qs_buf_appendf(b, "<tr><td>%s</td><td>%s</td><td>", r->meta ? "meta" : "data", grp);
        if (rc == 0)
            rc = html_text(b, r->address);
        if (rc == 0 && r->ns[0])
            rc = qs_buf_appendf(b, "/");
        if (rc == 0)
            rc = html_text(b, r->ns);
        if (rc == 0)
            rc = qs_buf_appendf(b,
                                "</td><td class=\"%s\">%s</td><td>%s</td><td>%s</td><td>%s</td>"
                                "<td>",
                                cls[s], zsd_state_name(s), obj, used, fr);
        if (rc == 0 && pct >= 0) /* a bar, inline SVG */
            rc =
                qs_buf_appendf(b,
                               "<svg width=\"120\" height=\"12\"><rect width=\"120\" height=\"12\" "
                               "fill=\"#eee\"/><rect width=\"%.0f\" height=\"12\" fill=\"%s\"/>"
                               "</svg> %.1f%%",
                               1.2 * pct, pct > 90 ? "#cf222e" : "#2da44e", pct);
        if (rc == 0)
            rc = qs_buf_appendf(b, "</td></tr>\n");
    }
    if (rc == 0)
        rc = qs_buf_appendf(
            b,
            "</table>\n<h2>Store queue</h2><p>%zu files queued, %zu failing, %llu failures so "
            "far.</p>\n",
            nitems, failing, (unsigned long long)d->queue_failures);
    if (rc == 0 && failing) {
        rc =
            qs_buf_appendf(b, "<table><tr><th>item</th><th>attempts</th><th>next try</th>%s</tr>\n",
                           names ? "<th>file</th><th>last error</th>" : "");
        for (size_t i = 0; i < nitems && rc == 0; i++) {
            if (!items[i].attempts)
                continue;
            int64_t in = (int64_t)items[i].next_ms - now;
            rc = qs_buf_appendf(b, "<tr><td>#%llu</td><td>%u</td><td>in %lld s</td>",
                                (unsigned long long)items[i].id, items[i].attempts,
                                (long long)(in > 0 ? in / 1000 : 0));
            if (rc == 0 && names) {
                rc = qs_buf_appendf(b, "<td>");
                if (rc == 0)
                    rc = html_text(b, items[i].path);
                if (rc == 0)
                    rc = qs_buf_appendf(b, "</td><td>");
                if (rc == 0)
                    rc = html_text(b, items[i].last_error);
                if (rc == 0)
                    rc = qs_buf_appendf(b, "</td>");
            }
            if (rc == 0)
                rc = qs_buf_appendf(b, "</tr>\n");
        }
        if (rc == 0)
            rc = qs_buf_appendf(b, "</table>%s\n",
                                names ? "" : "<p>(file names and errors: add ?names=1)</p>");
    }
    if (rc == 0)
        rc = qs_buf_appendf(
            b,
            "<h2>Repair</h2><p>%llu repaired, %llu failed, %llu passes%s; %llu stored files, "
            "%llu still degraded at the last pass.</p>\n"
            "<h2>Scrub</h2><p>%llu passes, %llu files verified, %llu with damaged shards%s.</p>\n",
            (unsigned long long)d->repairs_ok, (unsigned long long)d->repairs_failed,
            (unsigned long long)d->repair_passes, d->repairing ? " (a pass is running)" : "",
            (unsigned long long)d->objects, (unsigned long long)d->objects_degraded,
            (unsigned long long)d->scrub_passes, (unsigned long long)d->scrub_files,
            (unsigned long long)d->scrub_damaged, d->scrubbing ? " (a pass is running)" : "");
    if (rc == 0 && names && d->nerrors) {
        rc = qs_buf_appendf(b, "<h2>Last errors</h2><ul>\n");
        size_t n = d->nerrors < ZSD_ERRORS_KEPT ? d->nerrors : ZSD_ERRORS_KEPT;
        for (size_t k = 0; k < n && rc == 0; k++) {
            rc = qs_buf_appendf(b, "<li>");
            if (rc == 0)
                rc = html_text(b, d->errors[(d->nerrors - 1 - k) % ZSD_ERRORS_KEPT]);
            if (rc == 0)
                rc = qs_buf_appendf(b, "</li>\n");
        }
        if (rc == 0)
            rc = qs_buf_appendf(b, "</ul>\n");
    } else if (rc == 0 && d->nerrors) {
        rc = qs_buf_appendf(b,
                            "<h2>Last errors</h2><p>%zu errors so far (add ?names=1 to "
                            "see them).</p>\n",
                            d->nerrors);
    }
    pthread_mutex_unlock(&d->mu);
    zsq_items_free(items, nitems);
    if (rc == 0)
        rc = qs_buf_appendf(b, "</body></html>\n");
    return rc;
}
