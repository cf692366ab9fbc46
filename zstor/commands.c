/* zstor's commands (commands.h): flags, the library call, what is printed. */
#include "commands_private.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "util/fmt.h"
#include "util/log.h"
#include "util/parse.h"
#include "zstor/check.h"
#include "zstor/gc.h"
#include "zstor/list.h"
#include "zstor/rebuild.h"
#include "zstor/retrieve.h"
#include "zstor/store.h"
#include "zstor/zstor.h"

/* The session the calling thread runs a command for: the printers below write to its
 * streams (set by zcmd_run for the length of the command). */
_Thread_local struct zcmd_session *zc_s;

/* getopt keeps its state in globals: one command parses its flags at a time (the lock is
 * taken by zcmd_run and dropped once the flags are read, by zc_open_ctx or at the end). */
static pthread_mutex_t g_opt_mu = PTHREAD_MUTEX_INITIALIZER;

void zc_opt_unlock(void)
{
    if (zc_s->opt_locked) {
        zc_s->opt_locked = false;
        pthread_mutex_unlock(&g_opt_mu);
    }
}

static bool cancelled(void)
{
    return zc_s->cancel && atomic_load(zc_s->cancel);
}

/* ---- output: log lines and the progress line share stderr ---- */

void zcmd_session_init(struct zcmd_session *s, FILE *out, FILE *err, const atomic_int *cancel)
{
    memset(s, 0, sizeof(*s));
    s->out = out;
    s->err = err;
    s->cancel = cancel;
    pthread_mutex_init(&s->mu, NULL);
}

void zcmd_session_destroy(struct zcmd_session *s)
{
    pthread_mutex_destroy(&s->mu);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void clear_progress_locked(struct zcmd_session *s)
{
    if (s->progress_shown) {
        fputs("\r\033[K", s->err);
        s->progress_shown = false;
    }
}

void zcmd_print_log(struct zcmd_session *s, enum qs_log_level level, const char *msg)
{
    static const char *const names[] = {"debug", "info", "warning", "error"};
    if (level < QS_LOG_WARN && !s->debug)
        return;
    pthread_mutex_lock(&s->mu);
    clear_progress_locked(s);
    if (level == QS_LOG_ERROR)
        fprintf(s->err, "zstor: %s\n", msg);
    else
        fprintf(s->err, "zstor: %s: %s\n", names[level], msg);
    fflush(s->err);
    pthread_mutex_unlock(&s->mu);
}

/* A failure: one line on stderr (and in the log file), through the log handler. */
void zc_report(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    qs_log(QS_LOG_ERROR, "%s", msg);
}

static void progress(void *ud, const char *what, uint64_t done, uint64_t total)
{
    struct zcmd_session *s = ud;
    if (!s->tty)
        return;
    double t = now_s();
    pthread_mutex_lock(&s->mu);
    if (strncmp(s->what, what, sizeof(s->what) - 1) != 0) {
        snprintf(s->what, sizeof(s->what), "%s", what);
        s->start = t;
        s->last = 0;
    }
    /* only operations that last: after a second, five times a second */
    if (t - s->start >= 1.0 && t - s->last >= 0.2) {
        s->last = t;
        double rate = (double)done / (t - s->start);
        char d[32], tot[32], r[32], eta[32] = "";
        qs_fmt_bytes(done, d, sizeof(d));
        qs_fmt_bytes(total, tot, sizeof(tot));
        qs_fmt_bytes((uint64_t)rate, r, sizeof(r));
        if (total > done && rate > 0) {
            unsigned sec = (unsigned)((double)(total - done) / rate);
            snprintf(eta, sizeof(eta), "  ETA %u:%02u", sec / 60, sec % 60);
        }
        const char *base = strrchr(what, '/');
        base = base && base[1] ? base + 1 : what;
        fprintf(s->err, "\r\033[K%.40s  %s / %s  %3.0f%%  %s/s%s", base, d, tot,
                total ? 100.0 * (double)done / (double)total : 100.0, r, eta);
        fflush(s->err);
        s->progress_shown = true;
    }
    pthread_mutex_unlock(&s->mu);
}

static void progress_end(void)
{
    pthread_mutex_lock(&zc_s->mu);
    clear_progress_locked(zc_s);
    zc_s->what[0] = '\0';
    pthread_mutex_unlock(&zc_s->mu);
}

/* ---- usage ---- */

const char zcmd_usage[] =
    "usage: zstor [-c|--config FILE] [-d|--debug] [--log_file FILE] <command> [flags]\n"
    "       zstor -h|--help | -V|--version\n"
    "\n"
    "commands:\n"
    "  store -f|--file PATH [-k|--key-path DIR] [-d|--delete] [-s|--save-failure]\n"
    "        [-e|--error-on-failure] [-n|--notblocking]\n"
    "                          store a file, or every file below a directory\n"
    "  retrieve -f|--file PATH [-o|--out OUT] [-m|--if-missing]\n"
    "                          recreate PATH (or write it to OUT, - = stdout; -m: only\n"
    "                          when PATH is not there)\n"
    "  rebuild -f|--file PATH | -k|--key KEY\n"
    "                          restore full redundancy per the current config\n"
    "  check -f|--file PATH    print the stored BLAKE2b-128 (nothing if not stored)\n"
    "  status [--json] [-f|--file PATH]\n"
    "                          backends and what they hold, or where a file is\n"
    "  test [-a|--allow-degraded]\n"
    "                          connect to every backend, prove a placement exists\n"
    "                          (-a: backends down and no placement are reported, not\n"
    "                          a failure)\n"
    "  delete -f|--file PATH   delete a stored file (shards and metadata)\n"
    "  list [-l|--long] [-0|--null] [--json] [PREFIX]\n"
    "                          the stored files (names escaped; -0: raw, NUL-ended)\n"
    "  scrub [-f|--file PATH]  read and verify every shard of a stored file (without -f:\n"
    "                          of every stored file)\n"
    "  gc [--delete] [--min-age SECS]\n"
    "                          shard values no stored file references (dry run unless\n"
    "                          --delete; values younger than SECS, default 3600, stay)\n"
    "  checkpoint [--nowait] [-t|--timeout SECS]\n"
    "                          store every file of the config's qsfs frontend that\n"
    "                          changed, in restorable order (docs/qsfs.md)\n"
    "  evict [--all]           delete local zdb data files (zdb_data_dir_path) that are\n"
    "                          stored with the same checksum, down to\n"
    "                          max_zdb_data_dir_size (--all: every one it may)\n"
    "  monitor                 run the daemon (on the config's socket; the other commands\n"
    "                          are then sent to it)\n"
    "\n"
    "The config defaults to zstor_config.toml. Global options come before the command.\n";

int zc_usage_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    zc_opt_unlock();
    fprintf(zc_s->err, "zstor: %s\n%s", msg, zcmd_usage);
    fflush(zc_s->err);
    return EXIT_USAGE;
}

/* A flag getopt refused (its own messages are off: opterr = 0, and optstrings start with
 * "+:" so that a missing value gives ':'): one line naming the flag, then the usage. */
int zc_flag_error(const char *cmd, int ch, char **argv)
{
    const char *word = argv[optind - 1];
    const char *sep = *cmd ? ": " : "";
    if (ch == ':')
        return zc_usage_error("%s%s%s needs a value", cmd, sep, word);
    if (strncmp(word, "--", 2) != 0)
        return zc_usage_error("%s%sunknown flag '-%c'", cmd, sep, optopt);
    const char *eq = strchr(word, '=');
    if (optopt && eq) /* a known long flag that takes no value */
        return zc_usage_error("%s%s%.*s takes no value", cmd, sep, (int)(eq - word), word);
    return zc_usage_error("%s%sunknown flag '%s'", cmd, sep, word);
}

/* ---- commands ---- */

int zc_open_ctx(struct cmd_ctx *c, bool writes)
{
    zc_opt_unlock(); /* the flags are read */
    struct zstor_ctx_opts o;
    zstor_ctx_opts_default(&o);
    o.progress = progress;
    o.progress_ud = zc_s;
    o.cancel = zc_s->cancel;
    if (zc_s->cluster) {
        if (zstor_ctx_new_on(&c->z, zc_s->cluster, &o) < 0) {
            zc_report("%s", qs_err_msg());
            return 1;
        }
        c->cfg = zstor_ctx_config(c->z);
        return 0;
    }
    if (zstor_config_load(zc_s->config_path, &c->owned) < 0) {
        zc_report("%s", qs_err_msg());
        return 1;
    }
    c->cfg = c->owned;
    if (getenv("ZSTOR_DIR_NOSYNC"))
        o.dir_nosync = true;
    o.dir_create = writes; /* a first store creates dir:// share directories */
    if (zstor_ctx_new(&c->z, c->cfg, &o) < 0) {
        zc_report("%s", qs_err_msg());
        return 1;
    }
    return 0;
}

/* One job per file in the daemon: the lock of the file path names (none for a directory
 * or a path outside root, whose files the library keys one by one). */
struct file_lock {
    char key[256];
    bool held;
};

static void lock_file(struct cmd_ctx *c, const char *path, struct file_lock *l)
{
    l->held = false;
    if (!zc_s->daemon || !path || zstor_path_key(c->z, path, l->key, NULL) < 0)
        return;
    zc_s->daemon->lock(zc_s->daemon->ud, l->key);
    l->held = true;
}

static void unlock_file(struct file_lock *l)
{
    if (l->held)
        zc_s->daemon->unlock(zc_s->daemon->ud, l->key);
    l->held = false;
}

static void on_store_fail(void *ud, const char *file, int rc, const char *msg)
{
    progress_end();
    zc_report("%s", msg);
}

/* path made absolute against the working directory (the daemon's queue outlives it);
 * malloc'ed, NULL when out of memory or the directory is gone (reported). */
static char *absolute(const char *path)
{
    char *r = NULL;
    if (path[0] == '/') {
        r = strdup(path);
    } else {
        char cwd[4096];
        if (!getcwd(cwd, sizeof(cwd))) {
            zc_report("store %s: the working directory: %s", path, strerror(errno));
            return NULL;
        }
        size_t n = strlen(cwd) + strlen(path) + 2;
        if ((r = malloc(n)))
            snprintf(r, n, "%s/%s", cwd, path);
    }
    if (!r)
        zc_report("store %s: out of memory", path);
    return r;
}

/* store --notblocking: the daemon queues the file (each file below a directory). */
static int store_queued(struct cmd_ctx *c, const char *file, const char *key_dir, bool del)
{
    if (!zc_s->daemon) {
        zc_opt_unlock();
        struct zstor_config *cfg;
        if (zstor_config_load(zc_s->config_path, &cfg) < 0) {
            zc_report("store --notblocking: needs the daemon (zstor monitor), and the config "
                      "cannot be read: %s",
                      qs_err_msg());
            return 1;
        }
        if (cfg->socket)
            zc_report("store --notblocking: needs the daemon, and none listens on %s (start it "
                      "with: zstor -c %s monitor)",
                      cfg->socket, zc_s->config_path);
        else
            zc_report("store --notblocking: needs the daemon, and %s sets no socket", cfg->name);
        zstor_config_free(cfg);
        return 1;
    }
    zc_opt_unlock();
    char *abs = absolute(file), *kabs = NULL;
    if (!abs || (key_dir && !(kabs = absolute(key_dir)))) {
        free(abs);
        return 1;
    }
    int rc = zc_s->daemon->queue_store(zc_s->daemon->ud, abs, kabs, del);
    free(abs);
    free(kabs);
    if (rc < 0) {
        zc_report("%s", qs_err_msg());
        return 1;
    }
    return 0;
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
            return zc_flag_error("store", ch, argv);
        }
    }
    if (!file)
        return zc_usage_error("store: -f/--file PATH is required");
    if (optind < argc)
        return zc_usage_error("store: unexpected argument '%s'", argv[optind]);
    if (nonblock)
        return store_queued(c, file, o.key_dir, o.delete_after);
    if (zc_open_ctx(c, true))
        return 1;
    struct zstor_store_result res;
    struct file_lock l;
    lock_file(c, file, &l);
    int rc = zstor_store(c->z, file, &o, &res);
    zc_s->bytes = res.bytes;
    unlock_file(&l);
    progress_end();
    if (rc < 0) {
        /* a directory printed each failed file already; this is the summary */
        zc_report("%s", qs_err_msg());
        return 1;
    }
    return 0;
}

static int cmd_retrieve(struct cmd_ctx *c, int argc, char **argv)
{
    static const struct option lo[] = {{"file", required_argument, NULL, 'f'},
                                       {"out", required_argument, NULL, 'o'},
                                       {"if-missing", no_argument, NULL, 'm'},
                                       {NULL, 0, NULL, 0}};
    const char *file = NULL, *out = NULL;
    bool if_missing = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:f:o:m", lo, NULL)) != -1) {
        if (ch == 'f')
            file = optarg;
        else if (ch == 'o')
            out = optarg;
        else if (ch == 'm')
            if_missing = true;
        else
            return zc_flag_error("retrieve", ch, argv);
    }
    if (!file)
        return zc_usage_error("retrieve: -f/--file PATH is required");
    if (optind < argc)
        return zc_usage_error("retrieve: unexpected argument '%s'", argv[optind]);
    if (zc_open_ctx(c, false))
        return 1;
    struct zstor_retrieve_opts o = {.out = out, .out_fd = -1};
    if (out && strcmp(out, "-") == 0) {
        fflush(OUT);
        o.out = NULL;
        o.out_fd = fileno(OUT);
    }
    struct zstor_retrieve_result res = {0};
    struct file_lock l;
    lock_file(c, file, &l);
    /* --if-missing: a retrieve of the same file that held the lock before us may have
     * brought it back already (zdb's missing-data hook and its read-ahead) */
    struct stat st;
    int rc = if_missing && !out && stat(file, &st) == 0 && S_ISREG(st.st_mode)
                 ? 0
                 : zstor_retrieve(c->z, file, &o, &res);
    zc_s->bytes = res.bytes;
    unlock_file(&l);
    progress_end();
    if (l.key[0] && res.bad_shards && zc_s->daemon)
        zc_s->daemon->damaged(zc_s->daemon->ud, l.key); /* heal on read */
    if (rc < 0) {
        zc_report("%s", qs_err_msg());
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
    return cancelled() ? QS_EAGAIN : 0; /* interrupted: no more files */
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
        zc_report("%s", why);
        return 1;
    }
    if (j.unreadable)
        qs_log(QS_LOG_WARN, "%s %s: %llu stored records could not be read (zstor list says why)",
               what, file, (unsigned long long)j.unreadable);
    if (j.failed) {
        zc_report("%s %s: %llu of %llu files failed%s", what, file, (unsigned long long)j.failed,
                  (unsigned long long)j.n, cancelled() ? " (interrupted)" : "");
        return 1;
    }
    return 0;
}

/* A command that takes one file was given a stored directory: "not stored" would mislead. */
void zc_report_not_a_file(struct cmd_ctx *c, const char *what, const char *file)
{
    char why[1024];
    snprintf(why, sizeof(why), "%s", qs_err_msg());
    struct below_job j;
    if (each_below(c, file, NULL, &j) > 0)
        zc_report("%s %s: a stored directory (%llu files below it), not a file: %s takes one file "
                  "(zstor list %s shows them)",
                  what, file, (unsigned long long)j.n, what, file);
    else
        zc_report("%s", why);
}

static void print_rebuilt(const char *name, const struct zstor_rebuild_result *res)
{
    fprintf(OUT,
            "rebuilt %s: %s%u shard positions moved, %llu shard values written, %llu old "
            "deleted%s\n",
            name, res->reencoded ? "re-encoded, " : "", res->moved,
            (unsigned long long)res->rewritten, (unsigned long long)res->deleted,
            res->meta_fixed ? ", metadata rewritten" : "");
}

static int rebuild_one(struct cmd_ctx *c, const char *path, bool many)
{
    struct zstor_rebuild_result res;
    if (zstor_rebuild(c->z, path, NULL, &res) < 0) {
        zc_report("%s", qs_err_msg());
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
            return zc_flag_error("rebuild", ch, argv);
    }
    if (!file == !key)
        return zc_usage_error("rebuild: give exactly one of -f/--file PATH and -k/--key KEY");
    if (optind < argc)
        return zc_usage_error("rebuild: unexpected argument '%s'", argv[optind]);
    if (zc_open_ctx(c, true))
        return 1;
    struct zstor_rebuild_result res;
    struct file_lock l;
    lock_file(c, file, &l);
    int rc = zstor_rebuild(c->z, file, key, &res);
    unlock_file(&l);
    if (rc < 0 && file)
        return or_each_below(c, "rebuild", file, rc, rebuild_one);
    if (rc < 0) {
        zc_report("%s", qs_err_msg());
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
            return zc_flag_error(cmd, ch, argv);
        *file = optarg;
    }
    if (!*file)
        return zc_usage_error("%s: -f/--file PATH is required", cmd);
    if (optind < argc)
        return zc_usage_error("%s: unexpected argument '%s'", cmd, argv[optind]);
    return 0;
}

void zc_print_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(OUT, "%02x", p[i]);
}

static int cmd_check(struct cmd_ctx *c, int argc, char **argv)
{
    const char *file;
    int rc = file_flag(argc, argv, "check", &file);
    if (rc)
        return rc;
    if (zc_open_ctx(c, false))
        return 1;
    uint8_t sum[16];
    bool found;
    if (zstor_check(c->z, file, sum, &found) < 0) {
        zc_report("%s", qs_err_msg());
        return 1;
    }
    if (found) {
        zc_print_hex(sum, 16);
        fprintf(OUT, "\n");
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
    if (zc_open_ctx(c, false))
        return 1;
    struct file_lock l;
    lock_file(c, file, &l);
    rc = zstor_delete(c->z, file);
    unlock_file(&l);
    if (rc < 0) {
        if (rc == QS_ENOTFOUND || rc == QS_EINVAL)
            zc_report_not_a_file(c, "delete", file);
        else
            zc_report("%s", qs_err_msg());
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
        fprintf(OUT, "%s%sshard %u: %llu of %llu chunks corrupt, %llu missing\n", many ? file : "",
                many ? ": " : "", p, (unsigned long long)res->bad[p],
                (unsigned long long)res->chunks, (unsigned long long)res->missing[p]);
    }
    if (damaged) {
        zc_report("scrub %s: %u of %u shards damaged (zstor rebuild -f repairs them)", file,
                  damaged, res->nshards);
        return 1;
    }
    fprintf(OUT, "%s: all %u shards of %llu chunks verified\n", file, res->nshards,
            (unsigned long long)res->chunks);
    return 0;
}

/* The daemon repairs a file whose scrub found damage. */
static void scrub_damaged(struct cmd_ctx *c, const char *file, const struct zstor_scrub_result *res)
{
    char key[256];
    if (!zc_s->daemon || zstor_path_key(c->z, file, key, NULL) < 0)
        return;
    for (unsigned p = 0; p < res->nshards; p++)
        if (res->bad[p] || res->missing[p]) {
            zc_s->daemon->damaged(zc_s->daemon->ud, key);
            return;
        }
}

static int scrub_one(struct cmd_ctx *c, const char *file, bool many)
{
    struct zstor_scrub_result res;
    if (zstor_scrub(c->z, file, &res) < 0) {
        zc_report("%s", qs_err_msg());
        return 1;
    }
    scrub_damaged(c, file, &res);
    return print_scrub(file, many, &res);
}

static int cmd_scrub(struct cmd_ctx *c, int argc, char **argv)
{
    static const struct option lo[] = {{"file", required_argument, NULL, 'f'}, {NULL, 0, NULL, 0}};
    const char *file = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:f:", lo, NULL)) != -1) {
        if (ch != 'f')
            return zc_flag_error("scrub", ch, argv);
        file = optarg;
    }
    if (optind < argc)
        return zc_usage_error("scrub: unexpected argument '%s'", argv[optind]);
    if (zc_open_ctx(c, false))
        return 1;
    if (!file) { /* every stored file */
        qs_err_set(QS_ENOTFOUND, "scrub: no file is stored");
        return or_each_below(c, "scrub", c->cfg->root ? c->cfg->root : "/", QS_ENOTFOUND,
                             scrub_one);
    }
    struct zstor_scrub_result res;
    int rc = zstor_scrub(c->z, file, &res);
    if (rc < 0)
        return or_each_below(c, "scrub", file, rc, scrub_one);
    scrub_damaged(c, file, &res);
    return print_scrub(file, false, &res);
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
                return zc_usage_error("gc: --min-age: '%s' is not a number of seconds", optarg);
        } else {
            return zc_flag_error("gc", ch, argv);
        }
    }
    if (optind < argc)
        return zc_usage_error("gc: unexpected argument '%s'", argv[optind]);
    if (zc_open_ctx(c, o.delete_garbage))
        return 1;
    struct zstor_gc_result res;
    int rc = zstor_gc(c->z, &o, &res);
    int failed = 0;
    for (size_t i = 0; i < res.nbackends; i++) {
        const struct zstor_gc_backend *b = &res.backend[i];
        if (b->rc < 0) {
            fprintf(OUT, "%s: not listed: %s\n", b->name, b->error);
            failed++;
            continue;
        }
        fprintf(OUT, "%s: %llu values, %llu unreferenced (%llu bytes)", b->name,
                (unsigned long long)b->values, (unsigned long long)b->garbage,
                (unsigned long long)b->garbage_bytes);
        if (o.delete_garbage && rc == 0)
            fprintf(OUT, ", %llu deleted", (unsigned long long)b->deleted);
        if (b->young)
            fprintf(OUT, "; %llu younger than %llu s kept", (unsigned long long)b->young,
                    (unsigned long long)o.min_age_s);
        fputc('\n', OUT);
    }
    fprintf(OUT, "%llu stored files read, %llu unreadable; %llu stale done markers%s\n",
            (unsigned long long)res.records, (unsigned long long)res.unreadable,
            (unsigned long long)res.markers_garbage, o.delete_garbage && rc == 0 ? " deleted" : "");
    if (!o.delete_garbage)
        fprintf(OUT, "dry run: nothing deleted (zstor gc --delete removes what is unreferenced)\n");
    zstor_gc_result_free(&res);
    if (rc < 0) {
        zc_report("gc: %s", qs_err_msg());
        return 1;
    }
    return failed ? 1 : 0;
}

/* ---- dispatch ---- */

int zcmd_run(struct zcmd_session *s, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(struct cmd_ctx *c, int argc, char **argv);
    } cmds[] = {{"store", cmd_store},
                {"retrieve", cmd_retrieve},
                {"rebuild", cmd_rebuild},
                {"check", cmd_check},
                {"status", cmd_status},
                {"test", cmd_test},
                {"delete", cmd_delete},
                {"gc", cmd_gc},
                {"list", cmd_list},
                {"scrub", cmd_scrub},
                {"checkpoint", cmd_checkpoint},
                {"evict", cmd_evict}};
    struct zcmd_session *prev = zc_s;
    zc_s = s;
    qs_log_set_job(s->job);
    struct cmd_ctx c = {0};
    int rc = -1;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[0], cmds[i].name) != 0)
            continue;
        pthread_mutex_lock(&g_opt_mu);
        s->opt_locked = true;
        optind = 0; /* getopt starts afresh over this argv */
        rc = cmds[i].fn(&c, argc, argv);
        zc_opt_unlock();
        break;
    }
    if (rc < 0)
        rc = zc_usage_error("unknown command '%s'", argv[0]);
    zstor_ctx_free(c.z);
    zstor_config_free(c.owned);
    if (fflush(s->out) != 0 && rc == 0) {
        zc_report("writing the output: %s", strerror(errno));
        rc = 1;
    }
    zc_s = prev;
    return rc;
}
