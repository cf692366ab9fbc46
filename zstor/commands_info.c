/* zstor's commands that look rather than move data (commands_private.h): list, status,
 * test, and the qsfs stack's checkpoint and evict. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands_private.h"
#include "config/config.h"
#include "daemon/checkpoint.h"
#include "daemon/evict.h"
#include "daemon/flush.h"
#include "util/fmt.h"
#include "util/log.h"
#include "util/parse.h"
#include "zstor/check.h"
#include "zstor/list.h"
#include "zstor/status.h"
#include "zstor/zstor.h"

/* ---- list ---- */

struct list_out {
    bool longfmt;
    int format; /* 0 text, '0' NUL-terminated names, 'j' JSON */
    uint64_t n, unreadable;
    char first[1024]; /* why the first unreadable record is */
};

/* A stored name for a human: control characters and backslashes escaped (\n, \t,
 * \\, \xHH), so a name holding a newline never reads as two files. */
static void print_name(const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\\')
            fputs("\\\\", OUT);
        else if (ch == '\n')
            fputs("\\n", OUT);
        else if (ch == '\t')
            fputs("\\t", OUT);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(OUT, "\\x%02x", ch);
        else
            fputc(ch, OUT);
    }
}

static void list_json(struct list_out *o, const struct zstor_list_entry *e)
{
    fprintf(OUT, "%s\n  {\"path\": ", o->n > 1 ? "," : "");
    qs_fput_json(OUT, e->path ? e->path : "");
    fprintf(OUT, ", \"key\": ");
    qs_fput_json(OUT, e->key);
    if (e->rc < 0) {
        fprintf(OUT, ", \"error\": ");
        qs_fput_json(OUT, e->error ? e->error : "?");
    } else {
        fprintf(OUT, ", \"size\": %llu, \"mtime\": %lld, \"checksum\": \"",
                (unsigned long long)e->size, (long long)e->mtime);
        zc_print_hex(e->checksum, 16);
        fputc('"', OUT);
    }
    fputc('}', OUT);
}

static int list_one(void *ud, const struct zstor_list_entry *e)
{
    struct list_out *o = ud;
    o->n++;
    if (o->format == 'j')
        list_json(o, e);
    if (e->rc < 0) {
        /* one line in the end (a wrong meta key makes every record unreadable) */
        const char *why = e->error ? e->error : "?";
        if (!o->unreadable++)
            snprintf(o->first, sizeof(o->first), "%s%s%s", strstr(why, e->key) ? "" : e->key,
                     strstr(why, e->key) ? "" : ": ", why);
        qs_log(QS_LOG_DEBUG, "list: %s: unreadable: %s", e->key, why);
        return 0;
    }
    if (o->format == 'j')
        return 0;
    if (o->format == '0') {
        fputs(e->path, OUT);
        fputc('\0', OUT);
        return 0;
    }
    if (o->longfmt) {
        char t[32];
        time_t mt = (time_t)e->mtime;
        struct tm tm;
        localtime_r(&mt, &tm);
        strftime(t, sizeof(t), "%Y-%m-%d %H:%M", &tm);
        fprintf(OUT, "%12llu  %s  ", (unsigned long long)e->size, t);
        zc_print_hex(e->checksum, 16);
        fputs("  ", OUT);
    }
    print_name(e->path);
    fputc('\n', OUT);
    return 0;
}

int cmd_list(struct cmd_ctx *c, int argc, char **argv)
{
    static const struct option lo[] = {{"long", no_argument, NULL, 'l'},
                                       {"null", no_argument, NULL, '0'},
                                       {"json", no_argument, NULL, 'j'},
                                       {NULL, 0, NULL, 0}};
    struct list_out o = {0};
    int ch;
    while ((ch = getopt_long(argc, argv, "+:l0", lo, NULL)) != -1) {
        if (ch == 'l')
            o.longfmt = true;
        else if (ch == '0' || ch == 'j')
            o.format = ch;
        else
            return zc_flag_error("list", ch, argv);
    }
    const char *prefix = optind < argc ? argv[optind++] : NULL;
    if (optind < argc)
        return zc_usage_error("list: unexpected argument '%s'", argv[optind]);
    if (zc_open_ctx(c, false))
        return 1;
    if (o.format == 'j')
        fprintf(OUT, "{\"files\": [");
    int lrc = zstor_list(c->z, prefix, list_one, &o);
    if (o.format == 'j')
        fprintf(OUT, "%s]}\n", o.n ? "\n" : "");
    if (lrc < 0) {
        zc_report("list: %s", qs_err_msg());
        return 1;
    }
    if (o.unreadable) {
        zc_report("list: %llu of %llu stored records could not be read, the first: %s",
                  (unsigned long long)o.unreadable, (unsigned long long)o.n, o.first);
        return 1;
    }
    return 0;
}

/* ---- status and test ---- */

static void json_num(const char *name, uint64_t v)
{
    if (v == ZSTOR_UNKNOWN)
        fprintf(OUT, ", \"%s\": null", name);
    else
        fprintf(OUT, ", \"%s\": %llu", name, (unsigned long long)v);
}

static double usage_pct(const struct zstor_backend_status *s)
{
    if (s->used == ZSTOR_UNKNOWN)
        return -1;
    if (s->limit && s->limit != ZSTOR_UNKNOWN)
        return 100.0 * (double)s->used / (double)s->limit;
    if (s->free != ZSTOR_UNKNOWN && s->used + s->free > 0)
        return 100.0 * (double)s->used / (double)(s->used + s->free);
    return -1;
}

static void print_status_json(const struct zstor_backend_status *rows, size_t n)
{
    fprintf(OUT, "{\"backends\": [");
    for (size_t i = 0; i < n; i++) {
        const struct zstor_backend_status *s = &rows[i];
        fprintf(OUT, "%s\n  {\"role\": \"%s\", \"address\": ", i ? "," : "",
                s->meta ? "meta" : "data");
        qs_fput_json(OUT, s->address);
        fprintf(OUT, ", \"namespace\": ");
        qs_fput_json(OUT, s->ns);
        if (!s->meta)
            fprintf(OUT, ", \"group\": %d", s->group);
        fprintf(OUT, ", \"reachable\": %s", s->reachable ? "true" : "false");
        fprintf(OUT, ", \"writable\": %s", s->reachable && !s->readonly ? "true" : "false");
        json_num("objects", s->entries);
        json_num("used_bytes", s->used);
        json_num("free_bytes", s->free);
        json_num("limit_bytes", s->limit);
        double u = usage_pct(s);
        if (u >= 0)
            fprintf(OUT, ", \"usage_percent\": %.2f", u);
        else
            fprintf(OUT, ", \"usage_percent\": null");
        if (!s->reachable) {
            fprintf(OUT, ", \"error\": ");
            qs_fput_json(OUT, s->error);
        }
        fprintf(OUT, "}");
    }
    fprintf(OUT, "\n]");
    if (zc_s->daemon)
        zc_s->daemon->print_status(zc_s->daemon->ud, OUT, true);
    fprintf(OUT, "}\n");
}

static void print_status_table(const struct zstor_backend_status *rows, size_t n)
{
    int aw = 7;
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(rows[i].address) + (rows[i].ns[0] ? (int)strlen(rows[i].ns) + 1 : 0);
        if (l > aw)
            aw = l;
    }
    fprintf(OUT, "%-5s %-5s %-*s %-9s %9s %10s %10s %6s\n", "ROLE", "GROUP", aw, "BACKEND",
            "REACHABLE", "OBJECTS", "USED", "FREE", "USAGE");
    for (size_t i = 0; i < n; i++) {
        const struct zstor_backend_status *s = &rows[i];
        char name[600], grp[16] = "-", obj[32] = "-", used[32] = "-", fr[32] = "-", pct[16] = "-";
        snprintf(name, sizeof(name), "%s%s%s", s->address, s->ns[0] ? "/" : "", s->ns);
        if (!s->meta)
            snprintf(grp, sizeof(grp), "%d", s->group);
        if (s->reachable) {
            if (s->entries != ZSTOR_UNKNOWN)
                snprintf(obj, sizeof(obj), "%llu", (unsigned long long)s->entries);
            if (s->used != ZSTOR_UNKNOWN)
                qs_fmt_bytes(s->used, used, sizeof(used));
            if (s->free != ZSTOR_UNKNOWN)
                qs_fmt_bytes(s->free, fr, sizeof(fr));
            else
                snprintf(fr, sizeof(fr), "unlimited");
            double u = usage_pct(s);
            if (u >= 0)
                snprintf(pct, sizeof(pct), "%.1f%%", u);
        }
        fprintf(OUT, "%-5s %-5s %-*s %-9s %9s %10s %10s %6s\n", s->meta ? "meta" : "data", grp, aw,
                name,
                !s->reachable ? "NO"
                : s->readonly ? "read-only"
                              : "yes",
                obj, used, fr, pct);
    }
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].reachable)
            fprintf(OUT, "  %s\n", rows[i].error);
        else if (rows[i].readonly)
            fprintf(OUT, "  %s%s%s: %s\n", rows[i].address, rows[i].ns[0] ? "/" : "", rows[i].ns,
                    rows[i].readonly);
    }
}

/* status -f PATH: where the shards of one file are. */
static int status_file(struct cmd_ctx *c, const char *file, bool json)
{
    struct zstor_meta_record r;
    struct zstor_meta_open_info info;
    int rc = zstor_stat(c->z, file, &r, &info);
    if (rc < 0) {
        zstor_meta_record_free(&r);
        char why[1024];
        snprintf(why, sizeof(why), "status %s: %s", file, qs_err_msg());
        qs_err_set(rc, "%s", why);
        zc_report_not_a_file(c, "status -f", file);
        return 1;
    }
    bool up[255], incfg[255];
    zstor_stat_shards(c->z, &r, up, incfg);
    if (json) {
        fprintf(OUT, "{\"path\": ");
        qs_fput_json(OUT, r.path);
        fprintf(OUT, ", \"size\": %llu, \"checksum\": \"", (unsigned long long)r.size);
        zc_print_hex(r.checksum, 16);
        fprintf(OUT,
                "\", \"data_shards\": %u, \"parity_shards\": %u, \"chunk_size\": %u, "
                "\"chunks\": %llu, \"meta_pieces_ok\": %u, \"shards\": [",
                r.desc.k, r.desc.m, r.desc.chunk_size, (unsigned long long)r.nchunks, info.ok);
        for (unsigned p = 0; p < r.nshards; p++) {
            const struct zstor_meta_shard *s = &r.shard[p];
            fprintf(OUT, "%s\n  {\"index\": %u, \"absent\": %s, \"address\": ", p ? "," : "", p,
                    s->flags & ZSTOR_META_SHARD_ABSENT ? "true" : "false");
            qs_fput_json(OUT, s->address ? s->address : "");
            fprintf(OUT, ", \"namespace\": ");
            qs_fput_json(OUT, s->ns ? s->ns : "");
            fprintf(OUT, ", \"reachable\": %s, \"in_config\": %s}", up[p] ? "true" : "false",
                    incfg[p] ? "true" : "false");
        }
        fprintf(OUT, "\n]}\n");
    } else {
        char sz[32];
        qs_fmt_bytes(r.size, sz, sizeof(sz));
        fprintf(OUT, "path:      %s\nsize:      %llu (%s)\nchecksum:  ", r.path,
                (unsigned long long)r.size, sz);
        zc_print_hex(r.checksum, 16);
        fprintf(OUT,
                "\nshards:    %u data + %u parity, %llu chunks of %u bytes\nmetadata:  %u of %zu "
                "pieces good\n",
                r.desc.k, r.desc.m, (unsigned long long)r.nchunks, r.desc.chunk_size, info.ok,
                c->cfg->meta.nbackends);
        for (unsigned p = 0; p < r.nshards; p++) {
            const struct zstor_meta_shard *s = &r.shard[p];
            if (s->flags & ZSTOR_META_SHARD_ABSENT) {
                fprintf(OUT, "  shard %3u  absent\n", p);
                continue;
            }
            fprintf(OUT, "  shard %3u  %s%s%s  %s%s\n", p, s->address, s->ns[0] ? "/" : "", s->ns,
                    up[p] ? "reachable" : "UNREACHABLE", incfg[p] ? "" : " (not in the config)");
        }
    }
    zstor_meta_record_free(&r);
    return 0;
}

int cmd_status(struct cmd_ctx *c, int argc, char **argv)
{
    static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
                                       {"file", required_argument, NULL, 'f'},
                                       {NULL, 0, NULL, 0}};
    bool json = false;
    const char *file = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:jf:", lo, NULL)) != -1) {
        if (ch == 'j')
            json = true;
        else if (ch == 'f')
            file = optarg;
        else
            return zc_flag_error("status", ch, argv);
    }
    if (optind < argc)
        return zc_usage_error("status: unexpected argument '%s'", argv[optind]);
    if (zc_open_ctx(c, false))
        return 1;
    if (file)
        return status_file(c, file, json);
    struct zstor_backend_status *rows;
    size_t n;
    /* the daemon answers from its last health pass, at once */
    int rc = zc_s->daemon ? zc_s->daemon->status_rows(zc_s->daemon->ud, &rows, &n)
                          : zstor_status(c->z, &rows, &n);
    if (rc < 0) {
        zc_report("status: %s", qs_err_msg());
        return 1;
    }
    if (json) {
        print_status_json(rows, n);
    } else {
        print_status_table(rows, n);
        if (zc_s->daemon)
            zc_s->daemon->print_status(zc_s->daemon->ud, OUT, false);
    }
    free(rows);
    return 0;
}

int cmd_test(struct cmd_ctx *c, int argc, char **argv)
{
    static const struct option lo[] = {{"allow-degraded", no_argument, NULL, 'a'},
                                       {NULL, 0, NULL, 0}};
    bool degraded_ok = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:a", lo, NULL)) != -1) {
        if (ch == 'a')
            degraded_ok = true;
        else
            return zc_flag_error("test", ch, argv);
    }
    if (optind < argc)
        return zc_usage_error("test: unexpected argument '%s'", argv[optind]);
    if (zc_open_ctx(c, true))
        return 1;
    struct zstor_backend_status *rows;
    size_t n;
    if (zstor_status(c->z, &rows, &n) < 0) {
        zc_report("test: %s", qs_err_msg());
        return 1;
    }
    int bad = 0;
    size_t nmeta = 0;
    for (size_t i = 0; i < n; i++) {
        const struct zstor_backend_status *s = &rows[i];
        nmeta += s->meta;
        if (s->reachable && s->readonly) {
            if (degraded_ok)
                fprintf(OUT, "down  %s %s%s%s: %s\n", s->meta ? "meta" : "data", s->address,
                        s->ns[0] ? "/" : "", s->ns, s->readonly);
            else
                bad++, zc_report("test: %s backend %s%s%s: %s", s->meta ? "meta" : "data",
                                 s->address, s->ns[0] ? "/" : "", s->ns, s->readonly);
        } else if (s->reachable) {
            fprintf(OUT, "ok    %s %s%s%s\n", s->meta ? "meta" : "data", s->address,
                    s->ns[0] ? "/" : "", s->ns);
        } else if (degraded_ok) {
            fprintf(OUT, "down  %s %s\n", s->meta ? "meta" : "data", s->error);
        } else {
            bad++;
            zc_report("test: %s backend not usable: %s", s->meta ? "meta" : "data", s->error);
        }
    }
    unsigned out[255];
    int rc = zstor_test(c->z, out);
    if (rc < 0 && degraded_ok) {
        fprintf(OUT, "degraded: nothing can be stored now: %s\n", qs_err_msg());
    } else if (rc < 0) {
        zc_report("test: %s", qs_err_msg());
        bad++;
    } else {
        fprintf(OUT, "placement for %u+%u shards:", c->cfg->minimal_shards,
                c->cfg->expected_shards - c->cfg->minimal_shards);
        for (unsigned i = 0; i < c->cfg->expected_shards; i++) {
            const struct zstor_backend_status *s = &rows[nmeta + out[i]];
            fprintf(OUT, " %s%s%s", s->address, s->ns[0] ? "/" : "", s->ns);
        }
        fprintf(OUT, "\n");
    }
    free(rows);
    return bad ? 1 : 0;
}

/* ---- checkpoint (docs/qsfs.md) ---- */

int cmd_checkpoint(struct cmd_ctx *c, int argc, char **argv)
{
    static const struct option lo[] = {{"nowait", no_argument, NULL, 'n'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {NULL, 0, NULL, 0}};
    bool wait = true;
    uint64_t timeout = 600;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:t:", lo, NULL)) != -1) {
        if (ch == 'n')
            wait = false;
        else if (ch == 't' && (qs_parse_u64(optarg, strlen(optarg), &timeout) < 0 || !timeout ||
                               timeout > 86400))
            return zc_usage_error("checkpoint: bad --timeout '%s' (seconds, 1 to 86400)", optarg);
        else if (ch != 't')
            return zc_flag_error("checkpoint", ch, argv);
    }
    if (optind < argc)
        return zc_usage_error("checkpoint: unexpected argument '%s'", argv[optind]);
    if (zc_s->daemon) {
        zc_opt_unlock();
        if (zc_s->daemon->checkpoint(zc_s->daemon->ud, wait, (int64_t)timeout * 1000) < 0) {
            zc_report("checkpoint: %s", qs_err_msg());
            return 1;
        }
        return 0;
    }
    /* in-process: one pass with nothing known, so every local file is looked at */
    if (zc_open_ctx(c, true))
        return 1;
    if (!c->cfg->qsfs.present) {
        zc_report("checkpoint: %s has no [qsfs] table: nothing to checkpoint", c->cfg->name);
        return 1;
    }
    /* the mount first hands over what it holds, as the daemon's asked pass does */
    struct zsd_flush *fl = NULL;
    if (zsd_flush_mount(&fl, c->cfg->qsfs.mountpoint, (int64_t)timeout * 1000, NULL) < 0)
        zc_report("checkpoint: warning: flushing the mount: %s", qs_err_msg());
    zsd_flush_drop(&fl);
    struct zsc_cache *cache = zsc_cache_new();
    struct zsc_result res;
    int rc = cache ? zsc_run(c->z, &c->cfg->qsfs, cache, NULL, &res)
                   : qs_err_set(QS_ENOMEM, "out of memory");
    zsc_cache_free(cache);
    if (rc < 0) {
        zc_report("%s", qs_err_msg());
        return 1;
    }
    fprintf(OUT, "checkpoint: %zu files checked, %zu stored (%llu bytes uploaded)\n", res.checked,
            res.stored, (unsigned long long)res.bytes);
    return 0;
}

/* ---- evict (the daemon does it every minute; this is on demand) ---- */

int cmd_evict(struct cmd_ctx *c, int argc, char **argv)
{
    static const struct option lo[] = {{"all", no_argument, NULL, 'a'}, {NULL, 0, NULL, 0}};
    bool all = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:a", lo, NULL)) != -1) {
        if (ch == 'a')
            all = true;
        else
            return zc_flag_error("evict", ch, argv);
    }
    if (optind < argc)
        return zc_usage_error("evict: unexpected argument '%s'", argv[optind]);
    if (zc_open_ctx(c, false))
        return 1;
    if (!c->cfg->zdb_data_dir_path || (!all && !c->cfg->max_zdb_data_dir_size)) {
        zc_report("evict: %s sets no zdb_data_dir_path%s", c->cfg->name,
                  c->cfg->zdb_data_dir_path ? " limit (max_zdb_data_dir_size; --all needs none)"
                                            : "");
        return 1;
    }
    struct zse_result res;
    uint64_t limit = all ? 0 : c->cfg->max_zdb_data_dir_size << 20;
    if (zse_run(c->cfg->zdb_data_dir_path, limit, zse_safe_stored, c->z, &res) < 0) {
        zc_report("evict: %s", qs_err_msg());
        return 1;
    }
    fprintf(OUT,
            "evict: %zu files deleted (%llu bytes), %zu kept (not stored, changed or in use); %llu "
            "bytes left in %s\n",
            res.deleted, (unsigned long long)res.freed, res.skipped,
            (unsigned long long)res.total_after, c->cfg->zdb_data_dir_path);
    return 0;
}
