/* zdb: command line, logging, signals; everything else lives in the server and store. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "util/guard.h"
#include "util/log.h"
#include "util/parse.h"
#include "zdb/server.h"

static struct zdb_server server;
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
          "  --background        run in the background\n"
          "  --logfile FILE      write the log to FILE\n"
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
static const char *const valued[] = {"data",     "index",   "mode",   "datasize", "listen",
                                     "port",     "socket",  "hook",   "admin",    "maxsize",
                                     "synctime", "logfile", "rotate", NULL};

static bool takes_value(const char *name)
{
    for (int i = 0; valued[i]; i++)
        if (strcmp(valued[i], name) == 0)
            return true;
    return false;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (qs_parse_u64(s, strlen(s), out) < 0 || *out > max)
        return -1;
    return 0;
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
            return fail("--hook %s: hooks are not available in this build yet", val);
        } else if (!strcmp(name, "admin")) {
            if (strlen(val) > 128)
                return fail("admin password too long (%s)", "128 bytes maximum");
            cfg->admin = val;
        } else if (!strcmp(name, "maxsize")) {
            if (qs_parse_size(val, &v) < 0)
                return fail("invalid maxsize '%s'", val);
            cfg->store.maxsize = v;
        } else if (!strcmp(name, "protect")) {
            cfg->protect = true;
        } else if (!strcmp(name, "verbose")) {
            cfg->verbose = true;
        } else if (!strcmp(name, "dump")) {
            return fail("--dump%s: not available in this build yet", "");
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
        } else if (!strcmp(name, "rotate")) {
            if (parse_uint(val, 86400 * 365, &v) < 0)
                return fail("invalid rotate '%s'", val);
            cfg->rotate = (unsigned)v;
        } else if (!strcmp(name, "version")) {
            printf("zdb (qsfs) %s, 0-db v2 compatible (data v3, index v4)\n", QSFS_VERSION);
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
    log_verbose = cfg.verbose;
    if (cfg.logfile) {
        log_out = fopen(cfg.logfile, "a");
        if (!log_out)
            return fail("cannot open log file %s", cfg.logfile);
    }
    qs_log_set_handler(log_handler, NULL);

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

    if (zdb_server_init(&server, &cfg) < 0) {
        fprintf(stderr, "zdb: %s\n", qs_err_msg());
        zdb_server_free(&server);
        return 1;
    }
    if (cfg.background && daemon(1, cfg.logfile ? 0 : 1) != 0) {
        fprintf(stderr, "zdb: cannot go to the background: %s\n", strerror(errno));
        zdb_server_free(&server);
        return 1;
    }
    qs_log(QS_LOG_INFO, "listening on %s, index %s, data %s", server.zdbid,
           server.store->index_root, server.store->data_root);
    int sig = zdb_server_run(&server);
    qs_log(QS_LOG_INFO, "stopping (signal %d)", sig);
    zdb_server_free(&server);
    if (log_out)
        fclose(log_out);
    return sig ? 128 + sig : 0;
}
