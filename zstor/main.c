/* zstor: the command line (docs/zstor.md). Thin: parses flags, loads the config, calls
 * lib/zstor and prints. Exit 0 on success, 1 on failure, 2 on usage errors; one line on
 * stderr per failure. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "util/log.h"
#include "util/parse.h"
#include "zstor/check.h"
#include "zstor/gc.h"
#include "zstor/list.h"
#include "zstor/rebuild.h"
#include "zstor/retrieve.h"
#include "zstor/status.h"
#include "zstor/store.h"
#include "zstor/zstor.h"

#define EXIT_USAGE 2

/* ---- output: log lines and the progress line share stderr ---- */

static struct {
    pthread_mutex_t mu;
    bool debug;
    FILE *logf;
    bool tty;
    bool progress_shown; /* a progress line is on the terminal */
    char what[256];
    double start, last;
} g_out = {.mu = PTHREAD_MUTEX_INITIALIZER};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void clear_progress_locked(void)
{
    if (g_out.progress_shown) {
        fputs("\r\033[K", stderr);
        g_out.progress_shown = false;
    }
}

static void log_handler(enum qs_log_level level, const char *msg, void *ud)
{
    static const char *const names[] = {"debug", "info", "warning", "error"};
    pthread_mutex_lock(&g_out.mu);
    if (g_out.logf && (level >= QS_LOG_INFO || g_out.debug)) {
        char ts[32];
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
        fprintf(g_out.logf, "%s %s: %s\n", ts, names[level], msg);
        fflush(g_out.logf);
    }
    if (level >= QS_LOG_WARN || g_out.debug) {
        clear_progress_locked();
        if (level == QS_LOG_ERROR)
            fprintf(stderr, "zstor: %s\n", msg);
        else
            fprintf(stderr, "zstor: %s: %s\n", names[level], msg);
    }
    pthread_mutex_unlock(&g_out.mu);
}

/* A failure: one line on stderr (and in the log file). */
static void report(const char *fmt, ...) QS_PRINTF(1, 2);
static void report(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_handler(QS_LOG_ERROR, msg, NULL);
}

static void human(uint64_t n, char *out, size_t cap)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    int i = 0;
    while (v >= 1024 && i < 5) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(out, cap, "%llu B", (unsigned long long)n);
    else
        snprintf(out, cap, "%.1f %s", v, u[i]);
}

static void progress(void *ud, const char *what, uint64_t done, uint64_t total)
{
    if (!g_out.tty)
        return;
    double t = now_s();
    pthread_mutex_lock(&g_out.mu);
    if (strncmp(g_out.what, what, sizeof(g_out.what) - 1) != 0) {
        snprintf(g_out.what, sizeof(g_out.what), "%s", what);
        g_out.start = t;
        g_out.last = 0;
    }
    /* only operations that last: after a second, five times a second */
    if (t - g_out.start >= 1.0 && t - g_out.last >= 0.2) {
        g_out.last = t;
        double rate = (double)done / (t - g_out.start);
        char d[32], tot[32], r[32], eta[32] = "";
        human(done, d, sizeof(d));
        human(total, tot, sizeof(tot));
        human((uint64_t)rate, r, sizeof(r));
        if (total > done && rate > 0) {
            unsigned s = (unsigned)((double)(total - done) / rate);
            snprintf(eta, sizeof(eta), "  ETA %u:%02u", s / 60, s % 60);
        }
        const char *base = strrchr(what, '/');
        base = base && base[1] ? base + 1 : what;
        fprintf(stderr, "\r\033[K%.40s  %s / %s  %3.0f%%  %s/s%s", base, d, tot,
                total ? 100.0 * (double)done / (double)total : 100.0, r, eta);
        g_out.progress_shown = true;
    }
    pthread_mutex_unlock(&g_out.mu);
}

static void progress_end(void)
{
    pthread_mutex_lock(&g_out.mu);
    clear_progress_locked();
    g_out.what[0] = '\0';
    pthread_mutex_unlock(&g_out.mu);
}

/* ---- interruption: SIGINT, SIGTERM, SIGHUP ---- */

/* Set by the first signal: the library stops at its next chunk and undoes what the
 * operation wrote (no orphan shards, no partial output file); a second signal ends the
 * program at once (SA_RESETHAND). */
static atomic_int g_cancel;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_cancel, 1);
}

static void catch_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
}

/* ---- usage ---- */

static const char usage_text[] =
    "usage: zstor [-c|--config FILE] [-d|--debug] [--log_file FILE] <command> [flags]\n"
    "\n"
    "commands:\n"
    "  store -f|--file PATH [-k|--key-path DIR] [-d|--delete] [-s|--save-failure]\n"
    "        [-e|--error-on-failure] [-n|--notblocking]\n"
    "                          store a file, or every file below a directory\n"
    "  retrieve -f|--file PATH [-o|--out OUT]\n"
    "                          recreate PATH (or write it to OUT, - = stdout)\n"
    "  rebuild -f|--file PATH | -k|--key KEY\n"
    "                          restore full redundancy per the current config\n"
    "  check -f|--file PATH    print the stored BLAKE2b-128 (nothing if not stored)\n"
    "  status [--json] [-f|--file PATH]\n"
    "                          backends and what they hold, or where a file is\n"
    "  test                    connect to every backend, prove a placement exists\n"
    "  delete -f|--file PATH   delete a stored file (shards and metadata)\n"
    "  list [-l|--long] [-0|--null] [--json] [PREFIX]\n"
    "                          the stored files (names escaped; -0: raw, NUL-ended)\n"
    "  scrub -f|--file PATH    read and verify every shard of a stored file\n"
    "  gc [--delete] [--min-age SECS]\n"
    "                          shard values no stored file references (dry run unless\n"
    "                          --delete; values younger than SECS, default 3600, stay)\n"
    "  monitor                 run the daemon (not in this build yet)\n"
    "\n"
    "The config defaults to zstor_config.toml. Global options come before the command.\n";

static int usage_error(const char *fmt, ...) QS_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "zstor: %s\n%s", msg, usage_text);
    return EXIT_USAGE;
}

/* A flag getopt refused (its own messages are off: opterr = 0, and optstrings start with
 * "+:" so that a missing value gives ':'): one line naming the flag, then the usage. */
static int flag_error(const char *cmd, int ch, char **argv)
{
    const char *word = argv[optind - 1];
    const char *sep = *cmd ? ": " : "";
    if (ch == ':')
        return usage_error("%s%s%s needs a value", cmd, sep, word);
    if (strncmp(word, "--", 2) != 0)
        return usage_error("%s%sunknown flag '-%c'", cmd, sep, optopt);
    const char *eq = strchr(word, '=');
    if (optopt && eq) /* a known long flag that takes no value */
        return usage_error("%s%s%.*s takes no value", cmd, sep, (int)(eq - word), word);
    return usage_error("%s%sunknown flag '%s'", cmd, sep, word);
}

/* ---- commands ---- */

struct cmd_ctx {
    const char *config_path;
    struct zstor_config *cfg;
    struct zstor_ctx *z;
};

static int open_ctx(struct cmd_ctx *c, bool writes)
{
    if (zstor_config_load(c->config_path, &c->cfg) < 0) {
        report("%s", qs_err_msg());
        return 1;
    }
    struct zstor_ctx_opts o;
    zstor_ctx_opts_default(&o);
    o.progress = progress;
    o.cancel = &g_cancel;
    if (getenv("ZSTOR_DIR_NOSYNC"))
        o.dir_nosync = true;
    o.dir_create = writes; /* a first store creates dir:// share directories */
    if (zstor_ctx_new(&c->z, c->cfg, &o) < 0) {
        report("%s", qs_err_msg());
        return 1;
    }
    return 0;
}

static void on_store_fail(void *ud, const char *file, int rc, const char *msg)
{
    progress_end();
    report("%s", msg);
}

static int cmd_store(struct cmd_ctx *c, int argc, char **argv)
{
    static const struct option lo[] = {{"file", required_argument, NULL, 'f'},
                                       {"key-path", required_argument, NULL, 'k'},
                                       {"delete", no_argument, NULL, 'd'},
                                       {"notblocking", no_argument, NULL, 'n'},
                                       {"save-failure", no_argument, NULL, 's'},
                                       {"error-on-failure", no_argument, NULL, 'e'},
                                       {NULL, 0, NULL, 0}};
    struct zstor_store_opts o = {.on_fail = on_store_fail};
    const char *file = NULL;
    bool nonblock = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:f:k:dnse", lo, NULL)) != -1) {
        switch (ch) {
        case 'f':
            file = optarg;
            break;
        case 'k':
            o.key_dir = optarg;
            break;
        case 'd':
            o.delete_after = true;
            break;
        case 'n':
            nonblock = true;
            break;
        case 's':
            o.save_failure = true;
            break;
        case 'e':
            o.stop_on_error = true;
            break;
        default:
            return flag_error("store", ch, argv);
        }
    }
    if (!file)
        return usage_error("store: -f/--file PATH is required");
    if (optind < argc)
        return usage_error("store: unexpected argument '%s'", argv[optind]);
    if (nonblock) {
        report("store --notblocking: needs the daemon (zstor monitor), which is not in this "
               "build yet; store without -n");
        return 1;
    }
    if (open_ctx(c, true))
        return 1;
    struct zstor_store_result res;
    int rc = zstor_store(c->z, file, &o, &res);
    progress_end();
    if (rc < 0) {
        /* a directory printed each failed file already; this is the summary */
        report("%s", qs_err_msg());
        return 1;
    }
    return 0;
}

static int cmd_retrieve(struct cmd_ctx *c, int argc, char **argv)
{
    static const struct option lo[] = {{"file", required_argument, NULL, 'f'},
                                       {"out", required_argument, NULL, 'o'},
                                       {NULL, 0, NULL, 0}};
    const char *file = NULL, *out = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:f:o:", lo, NULL)) != -1) {
        if (ch == 'f')
            file = optarg;
        else if (ch == 'o')
            out = optarg;
        else
            return flag_error("retrieve", ch, argv);
    }
    if (!file)
        return usage_error("retrieve: -f/--file PATH is required");
    if (optind < argc)
        return usage_error("retrieve: unexpected argument '%s'", argv[optind]);
    if (open_ctx(c, false))
        return 1;
    struct zstor_retrieve_opts o = {.out = out, .out_fd = -1};
    if (out && strcmp(out, "-") == 0) {
        o.out = NULL;
        o.out_fd = STDOUT_FILENO;
    }
    struct zstor_retrieve_result res;
    int rc = zstor_retrieve(c->z, file, &o, &res);
    progress_end();
    if (rc < 0) {
        report("%s", qs_err_msg());
        return 1;
    }
    return 0;
}

/* ---- commands over a stored directory: every file stored below it ---- */

/* One file of a directory; many: output lines name the file. 0 or the exit status. */
typedef int (*file_fn)(struct cmd_ctx *c, const char *path, bool many);

struct below_job {
    struct cmd_ctx *c;
    file_fn fn; /* NULL: count only */
    uint64_t n, failed, unreadable;
};

static int below_one(void *ud, const struct zstor_list_entry *e)
{
    struct below_job *j = ud;
    if (e->rc < 0) {
        j->unreadable++;
        return 0;
    }
    j->n++;
    if (j->fn && j->fn(j->c, e->path, true) != 0)
        j->failed++;
    return atomic_load(&g_cancel) ? QS_EAGAIN : 0; /* interrupted: no more files */
}

/* The files stored below file when it is a directory (root: every file), fn run on each;
 * -1 with nothing done when file cannot be a directory (a path outside root). The
 * library's error message is lost. */
static int64_t each_below(struct cmd_ctx *c, const char *file, file_fn fn, struct below_job *j)
{
    char *below = NULL;
    *j = (struct below_job){.c = c, .fn = fn};
    if (zstor_path_below(c->z, file, &below) < 0)
        return -1;
    int rc = zstor_list(c->z, below, below_one, j);
    free(below);
    if (rc < 0 && j->n == 0)
        return -1;
    return (int64_t)j->n;
}

/* fn failed on file with code rc (its message in the library's error): when file is a
 * stored directory, or root, fn runs on every file below it instead. The exit status. */
static int or_each_below(struct cmd_ctx *c, const char *what, const char *file, int rc, file_fn fn)
{
    char why[1024];
    snprintf(why, sizeof(why), "%s", qs_err_msg());
    struct below_job j;
    if ((rc != QS_ENOTFOUND && rc != QS_EINVAL) || each_below(c, file, fn, &j) <= 0) {
        report("%s", why);
        return 1;
    }
    if (j.unreadable)
        qs_log(QS_LOG_WARN, "%s %s: %llu stored records could not be read (zstor list says why)",
               what, file, (unsigned long long)j.unreadable);
    if (j.failed) {
        report("%s %s: %llu of %llu files failed%s", what, file, (unsigned long long)j.failed,
               (unsigned long long)j.n, atomic_load(&g_cancel) ? " (interrupted)" : "");
        return 1;
    }
    return 0;
}

/* A command that takes one file was given a stored directory: "not stored" would mislead. */
static void report_not_a_file(struct cmd_ctx *c, const char *what, const char *file)
{
    char why[1024];
    snprintf(why, sizeof(why), "%s", qs_err_msg());
    struct below_job j;
    if (each_below(c, file, NULL, &j) > 0)
        report("%s %s: a stored directory (%llu files below it), not a file: %s takes one file "
               "(zstor list %s shows them)",
               what, file, (unsigned long long)j.n, what, file);
    else
        report("%s", why);
}

static void print_rebuilt(const char *name, const struct zstor_rebuild_result *res)
{
    printf("rebuilt %s: %s%u shard positions moved, %llu shard values written, %llu old "
           "deleted%s\n",
           name, res->reencoded ? "re-encoded, " : "", res->moved,
           (unsigned long long)res->rewritten, (unsigned long long)res->deleted,
           res->meta_fixed ? ", metadata rewritten" : "");
}

static int rebuild_one(struct cmd_ctx *c, const char *path, bool many)
{
    struct zstor_rebuild_result res;
    if (zstor_rebuild(c->z, path, NULL, &res) < 0) {
        report("%s", qs_err_msg());
        return 1;
    }
    print_rebuilt(path, &res);
    return 0;
}

static int cmd_rebuild(struct cmd_ctx *c, int argc, char **argv)
{
    static const struct option lo[] = {{"file", required_argument, NULL, 'f'},
                                       {"key", required_argument, NULL, 'k'},
                                       {NULL, 0, NULL, 0}};
    const char *file = NULL, *key = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:f:k:", lo, NULL)) != -1) {
        if (ch == 'f')
            file = optarg;
        else if (ch == 'k')
            key = optarg;
        else
            return flag_error("rebuild", ch, argv);
    }
    if (!file == !key)
        return usage_error("rebuild: give exactly one of -f/--file PATH and -k/--key KEY");
    if (optind < argc)
        return usage_error("rebuild: unexpected argument '%s'", argv[optind]);
    if (open_ctx(c, true))
        return 1;
    struct zstor_rebuild_result res;
    int rc = zstor_rebuild(c->z, file, key, &res);
    if (rc < 0 && file)
        return or_each_below(c, "rebuild", file, rc, rebuild_one);
    if (rc < 0) {
        report("%s", qs_err_msg());
        return 1;
    }
    print_rebuilt(file ? file : key, &res);
    return 0;
}

/* Commands that take only -f PATH. */
static int file_flag(int argc, char **argv, const char *cmd, const char **file)
{
    static const struct option lo[] = {{"file", required_argument, NULL, 'f'}, {NULL, 0, NULL, 0}};
    *file = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:f:", lo, NULL)) != -1) {
        if (ch != 'f')
            return flag_error(cmd, ch, argv);
        *file = optarg;
    }
    if (!*file)
        return usage_error("%s: -f/--file PATH is required", cmd);
    if (optind < argc)
        return usage_error("%s: unexpected argument '%s'", cmd, argv[optind]);
    return 0;
}

static void print_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

static int cmd_check(struct cmd_ctx *c, int argc, char **argv)
{
    const char *file;
    int rc = file_flag(argc, argv, "check", &file);
    if (rc)
        return rc;
    if (open_ctx(c, false))
        return 1;
    uint8_t sum[16];
    bool found;
    if (zstor_check(c->z, file, sum, &found) < 0) {
        report("%s", qs_err_msg());
        return 1;
    }
    if (found) {
        print_hex(sum, 16);
        printf("\n");
    } else {
        qs_log(QS_LOG_DEBUG, "check %s: not stored", file);
    }
    return 0;
}

static int cmd_delete(struct cmd_ctx *c, int argc, char **argv)
{
    const char *file;
    int rc = file_flag(argc, argv, "delete", &file);
    if (rc)
        return rc;
    if (open_ctx(c, false))
        return 1;
    if ((rc = zstor_delete(c->z, file)) < 0) {
        if (rc == QS_ENOTFOUND || rc == QS_EINVAL)
            report_not_a_file(c, "delete", file);
        else
            report("%s", qs_err_msg());
        return 1;
    }
    return 0;
}

/* Prints what scrub found; the exit status. */
static int print_scrub(const char *file, bool many, const struct zstor_scrub_result *res)
{
    unsigned damaged = 0;
    for (unsigned p = 0; p < res->nshards; p++) {
        if (!res->bad[p] && !res->missing[p])
            continue;
        damaged++;
        printf("%s%sshard %u: %llu of %llu chunks corrupt, %llu missing\n", many ? file : "",
               many ? ": " : "", p, (unsigned long long)res->bad[p],
               (unsigned long long)res->chunks, (unsigned long long)res->missing[p]);
    }
    if (damaged) {
        report("scrub %s: %u of %u shards damaged (zstor rebuild -f repairs them)", file, damaged,
               res->nshards);
        return 1;
    }
    printf("%s: all %u shards of %llu chunks verified\n", file, res->nshards,
           (unsigned long long)res->chunks);
    return 0;
}

static int scrub_one(struct cmd_ctx *c, const char *file, bool many)
{
    struct zstor_scrub_result res;
    if (zstor_scrub(c->z, file, &res) < 0) {
        report("%s", qs_err_msg());
        return 1;
    }
    return print_scrub(file, many, &res);
}

static int cmd_scrub(struct cmd_ctx *c, int argc, char **argv)
{
    const char *file;
    int rc = file_flag(argc, argv, "scrub", &file);
    if (rc)
        return rc;
    if (open_ctx(c, false))
        return 1;
    struct zstor_scrub_result res;
    rc = zstor_scrub(c->z, file, &res);
    if (rc < 0)
        return or_each_below(c, "scrub", file, rc, scrub_one);
    return print_scrub(file, false, &res);
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

/* ---- gc ---- */

static int cmd_gc(struct cmd_ctx *c, int argc, char **argv)
{
    static const struct option lo[] = {{"delete", no_argument, NULL, 'd'},
                                       {"min-age", required_argument, NULL, 'a'},
                                       {NULL, 0, NULL, 0}};
    struct zstor_gc_opts o = {.min_age_s = ZSTOR_GC_MIN_AGE_DEFAULT};
    int ch;
    while ((ch = getopt_long(argc, argv, "+:", lo, NULL)) != -1) {
        if (ch == 'd') {
            o.delete_garbage = true;
        } else if (ch == 'a') {
            if (qs_parse_u64(optarg, strlen(optarg), &o.min_age_s) < 0)
                return usage_error("gc: --min-age: '%s' is not a number of seconds", optarg);
        } else {
            return flag_error("gc", ch, argv);
        }
    }
    if (optind < argc)
        return usage_error("gc: unexpected argument '%s'", argv[optind]);
    if (open_ctx(c, o.delete_garbage))
        return 1;
    struct zstor_gc_result res;
    int rc = zstor_gc(c->z, &o, &res);
    int failed = 0;
    for (size_t i = 0; i < res.nbackends; i++) {
        const struct zstor_gc_backend *b = &res.backend[i];
        if (b->rc < 0) {
            printf("%s: not listed: %s\n", b->name, b->error);
            failed++;
            continue;
        }
        printf("%s: %llu values, %llu unreferenced (%llu bytes)", b->name,
               (unsigned long long)b->values, (unsigned long long)b->garbage,
               (unsigned long long)b->garbage_bytes);
        if (o.delete_garbage && rc == 0)
            printf(", %llu deleted", (unsigned long long)b->deleted);
        if (b->young)
            printf("; %llu younger than %llu s kept", (unsigned long long)b->young,
                   (unsigned long long)o.min_age_s);
        putchar('\n');
    }
    printf("%llu stored files read, %llu unreadable; %llu stale done markers%s\n",
           (unsigned long long)res.records, (unsigned long long)res.unreadable,
           (unsigned long long)res.markers_garbage, o.delete_garbage && rc == 0 ? " deleted" : "");
    if (!o.delete_garbage)
        printf("dry run: nothing deleted (zstor gc --delete removes what is unreferenced)\n");
    zstor_gc_result_free(&res);
    if (rc < 0) {
        report("gc: %s", qs_err_msg());
        return 1;
    }
    return failed ? 1 : 0;
}

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
            fputs("\\\\", stdout);
        else if (ch == '\n')
            fputs("\\n", stdout);
        else if (ch == '\t')
            fputs("\\t", stdout);
        else if (ch < 0x20 || ch == 0x7f)
            printf("\\x%02x", ch);
        else
            putchar(ch);
    }
}

static void list_json(struct list_out *o, const struct zstor_list_entry *e)
{
    printf("%s\n  {\"path\": ", o->n > 1 ? "," : "");
    json_str(e->path ? e->path : "");
    printf(", \"key\": ");
    json_str(e->key);
    if (e->rc < 0) {
        printf(", \"error\": ");
        json_str(e->error ? e->error : "?");
    } else {
        printf(", \"size\": %llu, \"mtime\": %lld, \"checksum\": \"", (unsigned long long)e->size,
               (long long)e->mtime);
        print_hex(e->checksum, 16);
        putchar('"');
    }
    putchar('}');
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
        fputs(e->path, stdout);
        putchar('\0');
        return 0;
    }
    if (o->longfmt) {
        char t[32];
        time_t mt = (time_t)e->mtime;
        struct tm tm;
        localtime_r(&mt, &tm);
        strftime(t, sizeof(t), "%Y-%m-%d %H:%M", &tm);
        printf("%12llu  %s  ", (unsigned long long)e->size, t);
        print_hex(e->checksum, 16);
        fputs("  ", stdout);
    }
    print_name(e->path);
    putchar('\n');
    return 0;
}

static int cmd_list(struct cmd_ctx *c, int argc, char **argv)
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
            return flag_error("list", ch, argv);
    }
    const char *prefix = optind < argc ? argv[optind++] : NULL;
    if (optind < argc)
        return usage_error("list: unexpected argument '%s'", argv[optind]);
    if (open_ctx(c, false))
        return 1;
    if (o.format == 'j')
        printf("{\"files\": [");
    int lrc = zstor_list(c->z, prefix, list_one, &o);
    if (o.format == 'j')
        printf("%s]}\n", o.n ? "\n" : "");
    if (lrc < 0) {
        report("list: %s", qs_err_msg());
        return 1;
    }
    if (o.unreadable) {
        report("list: %llu of %llu stored records could not be read, the first: %s",
               (unsigned long long)o.unreadable, (unsigned long long)o.n, o.first);
        return 1;
    }
    return 0;
}

/* ---- status and test ---- */

static void json_num(const char *name, uint64_t v)
{
    if (v == ZSTOR_UNKNOWN)
        printf(", \"%s\": null", name);
    else
        printf(", \"%s\": %llu", name, (unsigned long long)v);
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
    printf("{\"backends\": [");
    for (size_t i = 0; i < n; i++) {
        const struct zstor_backend_status *s = &rows[i];
        printf("%s\n  {\"role\": \"%s\", \"address\": ", i ? "," : "", s->meta ? "meta" : "data");
        json_str(s->address);
        printf(", \"namespace\": ");
        json_str(s->ns);
        if (!s->meta)
            printf(", \"group\": %d", s->group);
        printf(", \"reachable\": %s", s->reachable ? "true" : "false");
        printf(", \"writable\": %s", s->reachable && !s->readonly ? "true" : "false");
        json_num("objects", s->entries);
        json_num("used_bytes", s->used);
        json_num("free_bytes", s->free);
        json_num("limit_bytes", s->limit);
        double u = usage_pct(s);
        if (u >= 0)
            printf(", \"usage_percent\": %.2f", u);
        else
            printf(", \"usage_percent\": null");
        if (!s->reachable) {
            printf(", \"error\": ");
            json_str(s->error);
        }
        printf("}");
    }
    printf("\n]}\n");
}

static void print_status_table(const struct zstor_backend_status *rows, size_t n)
{
    int aw = 7;
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(rows[i].address) + (rows[i].ns[0] ? (int)strlen(rows[i].ns) + 1 : 0);
        if (l > aw)
            aw = l;
    }
    printf("%-5s %-5s %-*s %-9s %9s %10s %10s %6s\n", "ROLE", "GROUP", aw, "BACKEND", "REACHABLE",
           "OBJECTS", "USED", "FREE", "USAGE");
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
                human(s->used, used, sizeof(used));
            if (s->free != ZSTOR_UNKNOWN)
                human(s->free, fr, sizeof(fr));
            else
                snprintf(fr, sizeof(fr), "unlimited");
            double u = usage_pct(s);
            if (u >= 0)
                snprintf(pct, sizeof(pct), "%.1f%%", u);
        }
        printf("%-5s %-5s %-*s %-9s %9s %10s %10s %6s\n", s->meta ? "meta" : "data", grp, aw, name,
               !s->reachable ? "NO"
               : s->readonly ? "read-only"
                             : "yes",
               obj, used, fr, pct);
    }
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].reachable)
            printf("  %s\n", rows[i].error);
        else if (rows[i].readonly)
            printf("  %s%s%s: %s\n", rows[i].address, rows[i].ns[0] ? "/" : "", rows[i].ns,
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
        report_not_a_file(c, "status -f", file);
        return 1;
    }
    bool up[255], incfg[255];
    zstor_stat_shards(c->z, &r, up, incfg);
    if (json) {
        printf("{\"path\": ");
        json_str(r.path);
        printf(", \"size\": %llu, \"checksum\": \"", (unsigned long long)r.size);
        print_hex(r.checksum, 16);
        printf("\", \"data_shards\": %u, \"parity_shards\": %u, \"chunk_size\": %u, "
               "\"chunks\": %llu, \"meta_pieces_ok\": %u, \"shards\": [",
               r.desc.k, r.desc.m, r.desc.chunk_size, (unsigned long long)r.nchunks, info.ok);
        for (unsigned p = 0; p < r.nshards; p++) {
            const struct zstor_meta_shard *s = &r.shard[p];
            printf("%s\n  {\"index\": %u, \"absent\": %s, \"address\": ", p ? "," : "", p,
                   s->flags & ZSTOR_META_SHARD_ABSENT ? "true" : "false");
            json_str(s->address ? s->address : "");
            printf(", \"namespace\": ");
            json_str(s->ns ? s->ns : "");
            printf(", \"reachable\": %s, \"in_config\": %s}", up[p] ? "true" : "false",
                   incfg[p] ? "true" : "false");
        }
        printf("\n]}\n");
    } else {
        char sz[32];
        human(r.size, sz, sizeof(sz));
        printf("path:      %s\nsize:      %llu (%s)\nchecksum:  ", r.path,
               (unsigned long long)r.size, sz);
        print_hex(r.checksum, 16);
        printf("\nshards:    %u data + %u parity, %llu chunks of %u bytes\nmetadata:  %u of %zu "
               "pieces good\n",
               r.desc.k, r.desc.m, (unsigned long long)r.nchunks, r.desc.chunk_size, info.ok,
               c->cfg->meta.nbackends);
        for (unsigned p = 0; p < r.nshards; p++) {
            const struct zstor_meta_shard *s = &r.shard[p];
            if (s->flags & ZSTOR_META_SHARD_ABSENT) {
                printf("  shard %3u  absent\n", p);
                continue;
            }
            printf("  shard %3u  %s%s%s  %s%s\n", p, s->address, s->ns[0] ? "/" : "", s->ns,
                   up[p] ? "reachable" : "UNREACHABLE", incfg[p] ? "" : " (not in the config)");
        }
    }
    zstor_meta_record_free(&r);
    return 0;
}

static int cmd_status(struct cmd_ctx *c, int argc, char **argv)
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
            return flag_error("status", ch, argv);
    }
    if (optind < argc)
        return usage_error("status: unexpected argument '%s'", argv[optind]);
    if (open_ctx(c, false))
        return 1;
    if (file)
        return status_file(c, file, json);
    struct zstor_backend_status *rows;
    size_t n;
    if (zstor_status(c->z, &rows, &n) < 0) {
        report("status: %s", qs_err_msg());
        return 1;
    }
    if (json)
        print_status_json(rows, n);
    else
        print_status_table(rows, n);
    free(rows);
    return 0;
}

static int cmd_test(struct cmd_ctx *c, int argc, char **argv)
{
    if (argc > 1)
        return usage_error("test: unexpected argument '%s'", argv[1]);
    if (open_ctx(c, true))
        return 1;
    struct zstor_backend_status *rows;
    size_t n;
    if (zstor_status(c->z, &rows, &n) < 0) {
        report("test: %s", qs_err_msg());
        return 1;
    }
    int bad = 0;
    size_t nmeta = 0;
    for (size_t i = 0; i < n; i++) {
        const struct zstor_backend_status *s = &rows[i];
        nmeta += s->meta;
        if (s->reachable && s->readonly) {
            bad++;
            report("test: %s backend %s%s%s: %s", s->meta ? "meta" : "data", s->address,
                   s->ns[0] ? "/" : "", s->ns, s->readonly);
        } else if (s->reachable) {
            printf("ok    %s %s%s%s\n", s->meta ? "meta" : "data", s->address, s->ns[0] ? "/" : "",
                   s->ns);
        } else {
            bad++;
            report("test: %s backend not usable: %s", s->meta ? "meta" : "data", s->error);
        }
    }
    unsigned out[255];
    int rc = zstor_test(c->z, out);
    if (rc < 0) {
        report("test: %s", qs_err_msg());
        bad++;
    } else {
        printf("placement for %u+%u shards:", c->cfg->minimal_shards,
               c->cfg->expected_shards - c->cfg->minimal_shards);
        for (unsigned i = 0; i < c->cfg->expected_shards; i++) {
            const struct zstor_backend_status *s = &rows[nmeta + out[i]];
            printf(" %s%s%s", s->address, s->ns[0] ? "/" : "", s->ns);
        }
        printf("\n");
    }
    free(rows);
    return bad ? 1 : 0;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"config", required_argument, NULL, 'c'},   {"debug", no_argument, NULL, 'd'},
        {"log_file", required_argument, NULL, 'L'}, {"log-file", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    struct cmd_ctx c = {.config_path = "zstor_config.toml"};
    const char *log_file = NULL;
    int ch;
    opterr = 0; /* flag_error says what is wrong, in one line */
    /* "+": stop at the command, whose own flags (store -d) come after it */
    while ((ch = getopt_long(argc, argv, "+:c:dh", lo, NULL)) != -1) {
        switch (ch) {
        case 'c':
            c.config_path = optarg;
            break;
        case 'd':
            g_out.debug = true;
            break;
        case 'L':
            log_file = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return flag_error("", ch, argv);
        }
    }
    if (optind >= argc)
        return usage_error("no command given");
    g_out.tty = isatty(STDERR_FILENO) == 1;
    if (log_file && !(g_out.logf = fopen(log_file, "a"))) {
        fprintf(stderr, "zstor: --log_file %s: %s\n", log_file, strerror(errno));
        return 1;
    }
    qs_log_set_handler(log_handler, NULL);
    catch_signals();

    const char *cmd = argv[optind];
    int cargc = argc - optind;
    char **cargv = argv + optind;
    optind = 1; /* getopt again, over the command's arguments */
    int rc;
    if (strcmp(cmd, "store") == 0)
        rc = cmd_store(&c, cargc, cargv);
    else if (strcmp(cmd, "retrieve") == 0)
        rc = cmd_retrieve(&c, cargc, cargv);
    else if (strcmp(cmd, "rebuild") == 0)
        rc = cmd_rebuild(&c, cargc, cargv);
    else if (strcmp(cmd, "check") == 0)
        rc = cmd_check(&c, cargc, cargv);
    else if (strcmp(cmd, "status") == 0)
        rc = cmd_status(&c, cargc, cargv);
    else if (strcmp(cmd, "test") == 0)
        rc = cmd_test(&c, cargc, cargv);
    else if (strcmp(cmd, "delete") == 0)
        rc = cmd_delete(&c, cargc, cargv);
    else if (strcmp(cmd, "gc") == 0)
        rc = cmd_gc(&c, cargc, cargv);
    else if (strcmp(cmd, "list") == 0)
        rc = cmd_list(&c, cargc, cargv);
    else if (strcmp(cmd, "scrub") == 0)
        rc = cmd_scrub(&c, cargc, cargv);
    else if (strcmp(cmd, "monitor") == 0) {
        report("monitor: the daemon is not in this build yet (commands run in-process)");
        rc = 1;
    } else
        rc = usage_error("unknown command '%s'", cmd);
    zstor_ctx_free(c.z);
    zstor_config_free(c.cfg);
    if (fflush(stdout) != 0 && rc == 0) {
        fprintf(stderr, "zstor: writing the output: %s\n", strerror(errno));
        rc = 1;
    }
    qs_log_set_handler(NULL, NULL);
    if (g_out.logf)
        fclose(g_out.logf);
    return rc;
}
