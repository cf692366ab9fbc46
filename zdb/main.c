/* zdb: command line, logging, signals; everything else lives in the server and store. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include <systemd/sd-daemon.h>

#include "util/guard.h"
#include "util/log.h"
#include "util/version.h"
#include "util/parse.h"
#include "zdb/dump.h"
#include "zdb/hooks.h"
#include "zdb/server.h"

static struct zdb_server server;
static struct zdb_hooks hooks;
static unsigned hook_timeout; /* --hooktimeout, 0 = default */
static FILE *log_out;
static bool log_verbose;

static void log_handler(enum qs_log_level level, const char *msg, void *ud)
{
    if (level == QS_LOG_DEBUG && !log_verbose)
        return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(log_out ? log_out : stderr, "[%s] zdb %s: %s\n", ts, names[level], msg);
    fflush(log_out ? log_out : stderr);
}

static void on_signal(int sig)
{
    server.stop_signal = sig;
}

static void usage(FILE *f)
{
    fputs("Usage: zdb [options]\n"
          "  --data DIR          data files directory (default ./zdb-data)\n"
          "  --index DIR         index files directory (default ./zdb-index)\n"
          "  --mode MODE         user | seq (direct = seq); default: mixed, chosen per namespace\n"
          "  --datasize BYTES    rotate data files at this size (K/M/G suffixes, default 256M)\n"
          "  --listen ADDR       listen address (default ::)\n"
          "  --port PORT         listen port (default 9900)\n"
          "  --socket PATH       listen on a unix socket instead of TCP\n"
          "  --dualnet           listen on both the unix socket and TCP\n"
          "  --admin PASS        admin password (without it every client is admin)\n"
          "  --maxsize BYTES     size limit of the default namespace\n"
          "  --protect           default namespace read-only without the admin password\n"
          "  --sync              fsync every write before answering\n"
          "  --synctime SECS     fsync when the last sync is older than SECS\n"
          "  --secure            fsync a file before rotating away from it\n"
          "  --rotate SECS       rotate files every SECS seconds when something was written\n"
          "  --compact-ratio R   compact a closed data file once a share R (0 < R <= 1) of it\n"
          "                      is reclaimable (deleted or overwritten values); default off\n"
          "  --hook EXE          run EXE <event> <zdbid> [args...] on events (see README)\n"
          "  --hooktimeout SECS  kill a blocking hook after SECS seconds (default 600)\n"
          "  --input-limit BYTES memory all clients' half-sent requests may hold; a client\n"
          "                      that would pass it is disconnected (default 256M)\n"
          "  --input-timeout SECS  close a connection whose request stays half-sent and\n"
          "                      idle for SECS seconds (default 60)\n"
          "  --background        run in the background\n"
          "  --logfile FILE      write the log to FILE\n"
          "  --dump              print the index entries of every namespace, then exit\n"
          "  --verbose           debug logging\n"
          "  --version           print the version\n"
          "  --help              this help\n",
          f);
}

static int fail(const char *fmt, ...) QS_PRINTF(1, 2);
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "zdb: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

/* Flags taking a value. */
static const char *const valued[] = {
    "data",   "index",       "mode",          "datasize",    "listen",        "port",
    "socket", "hook",        "admin",         "maxsize",     "synctime",      "logfile",
    "rotate", "hooktimeout", "compact-ratio", "input-limit", "input-timeout", NULL};

static bool takes_value(const char *name)
{
    for (int i = 0; valued[i]; i++)
        if (strcmp(valued[i], name) == 0)
            return true;
    return false;
}

/* A fraction 0 < r <= 1 ("0.5", ".25", "1"). */
static int parse_ratio(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double r = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(r > 0.0 && r <= 1.0))
        return -1;
    *out = r;
    return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (qs_parse_u64(s, strlen(s), out) < 0 || *out > max)
        return -1;
    return 0;
}

/* --- hook events (spec zdb.md section 6) ------------------------------------------------ */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The ids of the index files modified in place, ascending and space-separated (one hook
 * argument; "" when there is none). NULL when out of memory. */
static char *dirty_list(const struct zdb_ns *ns)
{
    char *out = malloc(ns->ndirty * 11 + 1);
    uint32_t *ids = malloc((ns->ndirty ? ns->ndirty : 1) * sizeof(*ids));
    if (!out || !ids) {
        free(out);
        free(ids);
        return NULL;
    }
    if (ns->ndirty)
        memcpy(ids, ns->dirty, ns->ndirty * sizeof(*ids));
    qsort(ids, ns->ndirty, sizeof(*ids), cmp_u32);
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ns->ndirty; i++)
        len += (size_t)snprintf(out + len, 12, "%s%u", i ? " " : "", ids[i]);
    free(ids);
    return out;
}

/* Store event: directories locked, namespaces not loaded yet (a hook may restore them). */
static void hook_loading(void *ud, const char *index_root, const char *data_root)
{
    const char *args[] = {index_root, data_root};
    if (zdb_hooks_run(ud, "namespaces-init", args, 2) != 0)
        qs_log(QS_LOG_WARN, "the namespaces-init hook failed: loading what is on disk");
}

/* Store event: a namespace rotated from file oldid to newid. */
static void hook_jump(void *ud, struct zdb_ns *ns, uint32_t oldid, uint32_t newid)
{
    char oldf[4096], newf[4096];
    char *dirty = dirty_list(ns);
    zdb_ns_path(ns, 'i', oldid, oldf, sizeof(oldf));
    zdb_ns_path(ns, 'i', newid, newf, sizeof(newf));
    const char *iargs[] = {oldf, newf, dirty ? dirty : ""};
    /* exit 0: the hook saved the dirty index files, the list starts over */
    if (zdb_hooks_run(ud, "jump-index", iargs, 3) == 0 && dirty)
        ns->ndirty = 0;
    free(dirty);
    zdb_ns_path(ns, 'd', oldid, oldf, sizeof(oldf));
    zdb_ns_path(ns, 'd', newid, newf, sizeof(newf));
    const char *dargs[] = {oldf, newf};
    zdb_hooks_start(ud, "jump-data", dargs, 2);
}

static void hook_reloaded(void *ud, struct zdb_ns *ns)
{
    const char *args[] = {ns->name};
    zdb_hooks_start(ud, "namespace-reloaded", args, 1);
}

/* Graceful stop: `close` (blocking), then `namespace-closing` for every namespace, once its
 * files are complete and synced. */
static void hooks_stop(void)
{
    if (zdb_hooks_run(&hooks, "close", NULL, 0) != 0)
        qs_log(QS_LOG_WARN, "the close hook failed");
    for (size_t i = 0; i < server.store->nns; i++) {
        struct zdb_ns *ns = server.store->ns[i];
        if (zdb_ns_sync(ns) < 0)
            qs_log(QS_LOG_ERROR, "namespace %s: sync before closing: %s", ns->name, qs_err_msg());
        char idx[4096], dat[4096];
        zdb_ns_path(ns, 'i', ns->fileid, idx, sizeof(idx));
        zdb_ns_path(ns, 'd', ns->fileid, dat, sizeof(dat));
        char *dirty = dirty_list(ns);
        const char *args[] = {ns->name, idx, dat, dirty ? dirty : ""};
        zdb_hooks_start(&hooks, "namespace-closing", args, 4);
        free(dirty);
    }
}

static int parse_args(int argc, char **argv, struct zdb_config *cfg)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0')
            return fail("unexpected argument '%s' (see --help)", a);
        const char *name = a + 1 + (a[1] == '-');
        const char *val = NULL;
        char namebuf[64];
        const char *eq = strchr(name, '=');
        if (eq) {
            size_t n = (size_t)(eq - name);
            if (n >= sizeof(namebuf))
                return fail("unknown option '%s' (see --help)", a);
            memcpy(namebuf, name, n);
            namebuf[n] = '\0';
            name = namebuf;
            val = eq + 1;
        }
        if (takes_value(name)) {
            if (!val) {
                if (i + 1 >= argc)
                    return fail("option --%s needs a value", name);
                val = argv[++i];
            }
        } else if (val) {
            return fail("option --%s takes no value", name);
        }
        uint64_t v;
        if (!strcmp(name, "data")) {
            cfg->data_dir = val;
        } else if (!strcmp(name, "index")) {
            cfg->index_dir = val;
        } else if (!strcmp(name, "mode")) {
            if (!strcmp(val, "user"))
                cfg->store.fixed_mode = ZDB_MODE_USER;
            else if (!strcmp(val, "seq"))
                cfg->store.fixed_mode = ZDB_MODE_SEQ;
            else if (!strcmp(val, "direct")) {
                fprintf(stderr, "zdb: warning: --mode direct is an alias of seq\n");
                cfg->store.fixed_mode = ZDB_MODE_SEQ;
            } else
                return fail("invalid mode '%s' (expected user, seq or direct)", val);
        } else if (!strcmp(name, "datasize")) {
            if (qs_parse_size(val, &v) < 0 || v < ZDB_DATASIZE_MIN || v > ZDB_DATASIZE_MAX)
                return fail("invalid datasize '%s' (512K minimum, below 4G)", val);
            cfg->store.datasize = v;
        } else if (!strcmp(name, "listen")) {
            cfg->listen = val;
        } else if (!strcmp(name, "port")) {
            if (parse_uint(val, 65535, &v) < 0)
                return fail("invalid port '%s'", val);
            cfg->port = (int)v;
        } else if (!strcmp(name, "socket")) {
            cfg->socket = val;
        } else if (!strcmp(name, "dualnet")) {
            cfg->dualnet = true;
        } else if (!strcmp(name, "hook")) {
            struct stat sb;
            if (stat(val, &sb) != 0 || !S_ISREG(sb.st_mode) || access(val, X_OK) != 0)
                return fail("--hook %s: not an executable file", val);
            cfg->hook = val;
        } else if (!strcmp(name, "hooktimeout")) {
            if (parse_uint(val, 86400 * 365, &v) < 0 || v == 0)
                return fail("invalid hooktimeout '%s' (seconds, at least 1)", val);
            hook_timeout = (unsigned)v;
        } else if (!strcmp(name, "admin")) {
            if (strlen(val) > 128)
                return fail("admin password too long (%s)", "128 bytes maximum");
            cfg->admin = val;
        } else if (!strcmp(name, "input-limit")) {
            if (qs_parse_size(val, &v) < 0 || v < (1u << 20))
                return fail("invalid input-limit '%s' (bytes, at least 1M)", val);
            cfg->input_limit = v;
        } else if (!strcmp(name, "input-timeout")) {
            if (parse_uint(val, 86400, &v) < 0 || v < 1)
                return fail("invalid input-timeout '%s' (seconds, 1..86400)", val);
            cfg->input_timeout = (unsigned)v;
        } else if (!strcmp(name, "maxsize")) {
            if (qs_parse_size(val, &v) < 0)
                return fail("invalid maxsize '%s'", val);
            cfg->store.maxsize = v;
        } else if (!strcmp(name, "protect")) {
            cfg->protect = true;
        } else if (!strcmp(name, "verbose")) {
            cfg->verbose = true;
        } else if (!strcmp(name, "dump")) {
            cfg->dump = true;
        } else if (!strcmp(name, "sync")) {
            cfg->store.sync = true;
        } else if (!strcmp(name, "synctime")) {
            if (parse_uint(val, 86400 * 365, &v) < 0)
                return fail("invalid synctime '%s'", val);
            cfg->store.synctime = (unsigned)v;
        } else if (!strcmp(name, "secure")) {
            cfg->store.secure = true;
        } else if (!strcmp(name, "background")) {
            cfg->background = true;
        } else if (!strcmp(name, "logfile")) {
            cfg->logfile = val;
        } else if (!strcmp(name, "compact-ratio")) {
            if (parse_ratio(val, &cfg->compact_ratio) < 0)
                return fail("invalid compact-ratio '%s' (a fraction above 0, at most 1)", val);
        } else if (!strcmp(name, "rotate")) {
            if (parse_uint(val, 86400 * 365, &v) < 0)
                return fail("invalid rotate '%s'", val);
            cfg->rotate = (unsigned)v;
        } else if (!strcmp(name, "version")) {
            printf("zdb (qsfs) %s (commit %s), 0-db v2 compatible (data v3, index v4)\n",
                   qs_version(), qs_git_commit());
            exit(0);
        } else if (!strcmp(name, "help")) {
            usage(stdout);
            exit(0);
        } else {
            return fail("unknown option '%s' (see --help)", a);
        }
    }
    if (cfg->protect && !cfg->admin)
        return fail("%s", "--protect needs --admin");
    if (cfg->protect)
        cfg->store.protect_password = cfg->admin;
    return 0;
}

/* --dump: prints the index entries of every namespace to stdout and exits; no listener,
 * no hook. The store is opened as for serving (locks, recovery). */
static int run_dump(struct zdb_config *cfg)
{
    struct zdb_store *st;
    if (zdb_store_open(&st, &cfg->store) < 0)
        return fail("%s", qs_err_msg());
    int rc = zdb_dump(st, stdout);
    if (rc < 0)
        fprintf(stderr, "zdb: dump: %s\n", qs_err_msg());
    zdb_store_close(st);
    if (fflush(stdout) != 0)
        return fail("dump: cannot write to stdout: %s", strerror(errno));
    return rc < 0 ? 1 : 0;
}

/* As redis does: every client costs a descriptor, so take all the kernel allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        qs_log(QS_LOG_WARN, "open-file limit: cannot raise it to %llu: %s",
               (unsigned long long)want, strerror(errno));
}

int main(int argc, char **argv)
{
    struct zdb_config cfg = {
        .data_dir = "./zdb-data",
        .index_dir = "./zdb-index",
        .listen = "::",
        .port = 9900,
        .store = {.datasize = ZDB_DATASIZE_DEFAULT, .fixed_mode = -1},
    };
    if (parse_args(argc, argv, &cfg) != 0)
        return 1;
    cfg.store.index_dir = cfg.index_dir;
    cfg.store.data_dir = cfg.data_dir;
#ifdef QSFS_FAULT_INJECTION
    /* zdb-faults only: SIGKILL at this step of every compaction (zdb/commands_compact.c). */
    const char *crash = getenv("ZDB_COMPACT_CRASH_AT");
    uint64_t crash_at;
    if (crash && parse_uint(crash, 1000, &crash_at) == 0)
        cfg.compact_crash_at = (int)crash_at;
#endif
    log_verbose = cfg.verbose;
    if (cfg.logfile) {
        log_out = fopen(cfg.logfile, "ae"); /* close-on-exec: hooks must not hold it */
        if (!log_out)
            return fail("cannot open log file %s", cfg.logfile);
    }
    qs_log_set_handler(log_handler, NULL);
    if (cfg.dump)
        return run_dump(&cfg);
    raise_fd_limit();

    if (cfg.hook) {
        /* The id the server will print; the listeners do not exist yet, and the
         * namespaces-init hook runs before the namespaces are loaded. */
        char zdbid[ZDB_HOOKS_ID_MAX];
        if (cfg.socket)
            snprintf(zdbid, sizeof(zdbid), "unix://%s", cfg.socket);
        else
            snprintf(zdbid, sizeof(zdbid), "tcp://%s:%d", cfg.listen, cfg.port);
        if (zdb_hooks_init(&hooks, cfg.hook, zdbid, hook_timeout) < 0)
            return fail("%s", qs_err_msg());
        cfg.store.events.ud = &hooks;
        cfg.store.events.loading = hook_loading;
        cfg.store.events.jump = hook_jump;
        cfg.store.events.reloaded = hook_reloaded;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Data files are read through mappings; the guard turns a disk fault into an error. */
    if (qs_guard_install() == 0)
        cfg.store.mmap_reads = true;
    else
        qs_log(QS_LOG_WARN, "reading data files with read(2): %s", qs_err_msg());
    if (cfg.hook) {
        if (zdb_hooks_catch_crashes(&hooks, !cfg.store.mmap_reads) < 0)
            qs_log(QS_LOG_WARN, "no crash hook: %s", qs_err_msg());
        if (cfg.store.mmap_reads)
            qs_guard_set_fallback(zdb_hooks_crash); /* a SIGBUS outside a guarded read */
    }

    if (zdb_server_init(&server, &cfg) < 0) {
        fprintf(stderr, "zdb: %s\n", qs_err_msg());
        zdb_server_free(&server);
        if (cfg.hook)
            zdb_hooks_free(&hooks);
        return 1;
    }
    if (cfg.background && daemon(1, cfg.logfile ? 0 : 1) != 0) {
        fprintf(stderr, "zdb: cannot go to the background: %s\n", strerror(errno));
        zdb_server_free(&server);
        return 1;
    }
    if (cfg.hook) {
        zdb_hooks_set_id(&hooks, server.zdbid);
        server.hooks = &hooks;
        /* The hook may refuse the start (a non-zero exit), e.g. when restoring failed. */
        int rc = zdb_hooks_run(&hooks, "ready", NULL, 0);
        if (rc != 0) {
            char why[256];
            if (rc > 0)
                snprintf(why, sizeof(why), "exited with status %d", rc);
            else
                snprintf(why, sizeof(why), "failed: %s", qs_err_msg());
            if (log_out)
                qs_log(QS_LOG_ERROR, "the ready hook %s: start-up aborted", why);
            fprintf(stderr, "zdb: the ready hook %s: start-up aborted\n", why);
            zdb_server_free(&server);
            zdb_hooks_free(&hooks);
            return 1;
        }
    }
    qs_log(QS_LOG_INFO, "listening on %s, index %s, data %s, pid %d", server.zdbid,
           server.store->index_root, server.store->data_root, (int)getpid());
    /* systemd Type=notify: ready once listening (a no-op without NOTIFY_SOCKET) */
    sd_notifyf(0, "READY=1\nSTATUS=listening on %s\nMAINPID=%ld", server.zdbid, (long)getpid());
    int sig = zdb_server_run(&server);
    sd_notify(0, "STOPPING=1");
    qs_log(QS_LOG_INFO, "stopping (signal %d)", sig);
    if (cfg.hook)
        hooks_stop();
    zdb_server_free(&server);
    if (cfg.hook)
        zdb_hooks_free(&hooks);
    if (log_out)
        fclose(log_out);
    return sig ? 128 + sig : 0;
}
