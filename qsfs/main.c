/* qsfs: the whole stack in one command (docs/qsfs.md).
 *
 *   qsfs [-c FILE] up        start the zstor daemon, the local zdb (with qsfs-hook) and
 *                            the zdbfs mount; an empty frontend is restored first
 *   qsfs [-c FILE] down      unmount, stop zdb, store everything, stop the daemon
 *   qsfs [-c FILE] status    each part, the upload backlog, the cache, the recovery point
 *   qsfs [-c FILE] restore   rebuild this frontend from the backends into an empty
 *                            [qsfs] dir, then mount it
 *
 * The config (default /etc/qsfs/qsfs.toml) is a 0-stor_v2 config with a [qsfs] table. */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon/checkpoint.h"
#include "util/sys.h"
#include "util/version.h"
#include "proc.h"
#include "zcall.h"

#define DEFAULT_CONFIG "/etc/qsfs/qsfs.toml"
#define P              4200

static const char usage[] =
    "usage: qsfs [-c|--config FILE] <command>\n"
    "       qsfs -h|--help | -V|--version\n"
    "\n"
    "commands:\n"
    "  up                 start the zstor daemon, the local zdb and the zdbfs mount\n"
    "                     (an empty [qsfs] dir is restored from the backends first)\n"
    "  down [--timeout SECS]\n"
    "                     unmount, stop zdb, store every local change, stop the daemon\n"
    "  status             each part, upload backlog, local cache, recovery point\n"
    "  restore            rebuild this frontend from the backends into an empty [qsfs]\n"
    "                     dir, then mount it (older data comes back when read)\n"
    "  run zstor|zdb|zdbfs\n"
    "                     run one part in the foreground, logging to stderr (what the\n"
    "                     systemd units qsfs-zstor, qsfs-zdb and qsfs-zdbfs do)\n"
    "\n"
    "The config defaults to " DEFAULT_CONFIG ": a zstor (0-stor_v2) config with a\n"
    "[qsfs] table (docs/qsfs.md).\n";

struct stack {
    char cfgpath[PATH_MAX];
    struct zstor_config *cfg;
    const struct zstor_qsfs *q;
    char index[P], data[P], logdir[P], zdb_sock[P];
    char log_zstor[P], log_zdb[P], log_zdbfs[P];
    char pid_zstor[P], pid_zdb[P], pid_zdbfs[P];
    char bin_zdb[P], bin_zstor[P], bin_zdbfs[P], bin_hook[P];
};

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("qsfs: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int mkdirs(const char *path, mode_t mode)
{
    char p[P];
    snprintf(p, sizeof(p), "%s", path);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s)
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST) {
            fail("cannot create %s: %s", p, strerror(errno));
            return -1;
        }
        if (!c)
            return 0;
        *s = c;
    }
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int load(struct stack *s, const char *path)
{
    if (!realpath(path, s->cfgpath)) {
        fail("%s: cannot open the config file: %s", path, strerror(errno));
        return -1;
    }
    if (zstor_config_load(s->cfgpath, &s->cfg) < 0) {
        fail("%s", qs_err_msg());
        return -1;
    }
    if (!s->cfg->qsfs.present) {
        fail("%s: no [qsfs] table: this is a zstor config, not a qsfs one (docs/qsfs.md says "
             "what to add)",
             path);
        return -1;
    }
    s->q = &s->cfg->qsfs;
    const char *d = s->q->dir;
    snprintf(s->index, P, "%s/index", d);
    snprintf(s->data, P, "%s/data", d);
    snprintf(s->logdir, P, "%s/log", d);
    snprintf(s->zdb_sock, P, "%s/zdb.sock", d);
    snprintf(s->log_zstor, P, "%s/log/zstor.log", d);
    snprintf(s->log_zdb, P, "%s/log/zdb.log", d);
    snprintf(s->log_zdbfs, P, "%s/log/zdbfs.log", d);
    snprintf(s->pid_zstor, P, "%s/zstor.pid", d);
    snprintf(s->pid_zdb, P, "%s/zdb.pid", d);
    snprintf(s->pid_zdbfs, P, "%s/zdbfs.pid", d);
    return 0;
}

static int find_bins(struct stack *s)
{
    if (qp_find("zdb", s->bin_zdb, P) < 0 || qp_find("zstor", s->bin_zstor, P) < 0 ||
        qp_find("zdbfs", s->bin_zdbfs, P) < 0 || qp_find("qsfs-hook", s->bin_hook, P) < 0) {
        fail("%s", qs_err_msg());
        return -1;
    }
    return 0;
}

/* Runs argv (absolute program) in the foreground with our stdio; its exit status. */
static int run_wait(char *const *argv)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execv(argv[0], argv);
        fprintf(stderr, "qsfs: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static void show_tail(const char *what, const char *log)
{
    char tail[1500];
    qp_log_tail(log, tail, sizeof(tail));
    fail("%s did not start; the end of %s:\n%s", what, log, tail[0] ? tail : "(empty)\n");
}

/* ---- the daemon ---- */

/* Starts a part (qp_spawn), records its pid, and waits until ready(s) says it serves (at
 * most tries x 50 ms) or it ends; then says so, or shows the end of its log. */
static int start_part(struct stack *s, char *const *argv, char *const *env, const char *log,
                      int prio, const char *pidfile, const char *prog, const char *what,
                      bool (*ready)(const struct stack *), int tries, const char *where)
{
    pid_t pid = qp_spawn(argv, env, log, prio);
    if (pid < 0 || qp_pid_write(pidfile, pid) < 0) {
        fail("%s: %s", what, qs_err_msg());
        return -1;
    }
    for (int i = 0; i < tries; i++) {
        if (ready(s)) {
            printf("%s: started (pid %d%s%s, log %s)\n", what, (int)pid, where[0] ? ", " : "",
                   where, log);
            return 0;
        }
        if (!qp_running(pid, prog))
            break;
        usleep(50000);
    }
    show_tail(what, log);
    return -1;
}

static bool daemon_answers(const struct stack *s)
{
    char *argv[] = {"status", "--json", NULL};
    char *out = NULL;
    size_t len;
    int status;
    int rc = qz_capture(s->cfg, -1, 10, &status, &out, &len, argv);
    free(out);
    return rc == 0;
}

static int start_daemon(struct stack *s)
{
    if (daemon_answers(s)) {
        printf("zstor daemon: running already (socket %s)\n", s->cfg->socket);
        return 0;
    }
    char *argv[] = {s->bin_zstor, "-c", s->cfgpath, "--log_file", s->log_zstor, "monitor", NULL};
    return start_part(s, argv, NULL, s->log_zstor, s->q->upload_priority, s->pid_zstor, "zstor",
                      "zstor daemon", daemon_answers, 600, "");
}

/* ---- restore of an empty frontend ---- */

static int maybe_restore(struct stack *s, bool must)
{
    char desc[P];
    snprintf(desc, sizeof(desc), "%s/%s/zdb-namespace", s->index, ZSC_META_NS);
    if (exists(desc))
        return 0;
    struct qz_restore res;
    if (qz_restore(s->cfg, s->index, s->data, stdout, &res) < 0) {
        fail("cannot tell whether the backends hold this frontend already (%s); not starting "
             "an empty filesystem over it",
             qs_err_msg());
        return -1;
    }
    if (must && !res.had_remote) {
        fail("the backends hold no qsfs frontend for this config (meta prefix \"%s\"): nothing "
             "to restore",
             s->cfg->meta.prefix);
        return -1;
    }
    if (res.had_remote)
        printf("restore: %u files retrieved; older data files come back when read\n", res.files);
    return 0;
}

/* ---- one frontend per prefix ---- */

static bool read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

/* DIR/frontend.id: random, made at the first start and stored. A stored one that differs
 * means another frontend stores under the same names (same backends and meta prefix):
 * refused, since each would overwrite the other's files. A restored frontend gets its id
 * back. Backends that cannot say are a warning (the start goes on). */
static int check_frontend_id(struct stack *s)
{
    char path[P], got[P];
    snprintf(path, sizeof(path), "%s/frontend.id", s->q->dir);
    snprintf(got, sizeof(got), "%s/frontend.id.stored", s->q->dir);
    (void)unlink(got);
    char *chk[] = {"check", "--file", path, NULL};
    char *ret[] = {"retrieve", "--file", path, "--out", got, NULL};
    int st;
    char *out = NULL;
    size_t len = 0;
    int rc = qz_capture(s->cfg, -1, 120, &st, &out, &len, chk);
    free(out);
    if (rc < 0 || st != 0) {
        printf("warning: the backends cannot say whether another frontend uses these names "
               "(%s); going on\n",
               rc < 0 ? qs_err_msg() : "zstor check failed");
        return 0;
    }
    bool remote = len > 1; /* check prints the stored checksum, nothing when not stored */
    char mine[64] = "", theirs[64] = "";
    if (remote) {
        rc = qz_run(s->cfg, STDERR_FILENO, STDERR_FILENO, 120, &st, ret);
        if (rc < 0 || st != 0 || !read_small(got, theirs, sizeof(theirs))) {
            (void)unlink(got);
            printf("warning: cannot read the stored frontend.id back; going on\n");
            return 0;
        }
        (void)unlink(got);
    }
    if (!exists(path)) {
        if (remote) {
            if (qs_replace_file(path, theirs, strlen(theirs), 0600, 0) < 0) {
                fail("%s: %s", path, qs_err_msg());
                return -1;
            }
        } else {
            uint8_t id[16];
            char hex[40];
            if (qs_random_bytes(id, sizeof(id)) < 0) {
                fail("%s", qs_err_msg());
                return -1;
            }
            for (int i = 0; i < 16; i++)
                snprintf(hex + 2 * i, 3, "%02x", id[i]);
            hex[32] = '\n';
            if (qs_replace_file(path, hex, 33, 0600, 0) < 0) {
                fail("%s: %s", path, qs_err_msg());
                return -1;
            }
        }
    }
    if (!read_small(path, mine, sizeof(mine))) {
        fail("%s: cannot read it", path);
        return -1;
    }
    if (remote && strcmp(mine, theirs) != 0) {
        fail("another qsfs frontend stores under the same names on these backends (its "
             "frontend.id is not this one's): give this frontend its own [meta.config] "
             "prefix, or `qsfs restore` the other one into an empty dir");
        return -1;
    }
    if (!remote) {
        char *sto[] = {"store", "--file", path, NULL};
        if (qz_run(s->cfg, STDERR_FILENO, STDERR_FILENO, 120, &st, sto) < 0 || st != 0)
            printf("warning: %s is not stored yet (the next `qsfs up` tries again)\n", path);
    }
    return 0;
}

/* ---- zdb and zdbfs ---- */

/* The local zdb's command line and environment (qsfs up and qsfs run zdb). */
struct zdb_cmd {
    char datasize[32], rotate[32], hooktimeout[32], env[PATH_MAX + 16];
    char *argv[16];
    char *envv[2];
};

static void zdb_cmd(struct stack *s, struct zdb_cmd *c)
{
    snprintf(c->datasize, sizeof(c->datasize), "%uM", s->q->datasize_mib);
    snprintf(c->rotate, sizeof(c->rotate), "%u", s->q->rotate_s);
    /* missing-data waits for a retrieve; namespaces-init for a restore */
    unsigned ht = s->q->retrieve_timeout_s + 60;
    snprintf(c->hooktimeout, sizeof(c->hooktimeout), "%u", ht < 3600 ? 3600 : ht);
    snprintf(c->env, sizeof(c->env), "QSFS_CONFIG=%s", s->cfgpath);
    char *argv[] = {s->bin_zdb,  "--index",       s->index,       "--data",   s->data,   "--socket",
                    s->zdb_sock, "--datasize",    c->datasize,    "--rotate", c->rotate, "--hook",
                    s->bin_hook, "--hooktimeout", c->hooktimeout, NULL};
    memcpy(c->argv, argv, sizeof(argv));
    c->envv[0] = c->env;
    c->envv[1] = NULL;
}

static bool zdb_answers(const struct stack *s)
{
    return qp_zdb_ping(s->zdb_sock);
}

static bool mounted(const struct stack *s)
{
    return qp_mounted(s->q->mountpoint);
}

static int start_zdb(struct stack *s)
{
    if (qp_zdb_ping(s->zdb_sock)) {
        printf("zdb: running already (unix://%s)\n", s->zdb_sock);
        return 0;
    }
    struct zdb_cmd c;
    zdb_cmd(s, &c);
    char where[P + 16];
    snprintf(where, sizeof(where), "unix://%s", s->zdb_sock);
    return start_part(s, c.argv, c.envv, s->log_zdb, 0, s->pid_zdb, "zdb", "zdb", zdb_answers, 1200,
                      where);
}

/* A mount whose zdbfs died (kill -9, a crash) is taken away; 1 when a live one is there. */
static int dead_mount(struct stack *s)
{
    const char *mp = s->q->mountpoint;
    if (!qp_mounted(mp))
        return 0;
    if (qp_running(qp_pid_read(s->pid_zdbfs), "zdbfs"))
        return 1;
    char fm[P];
    char *argv[] = {fm, "-u", "-z", (char *)mp, NULL};
    if (qp_find("fusermount3", fm, sizeof(fm)) < 0 || run_wait(argv) != 0) {
        fail("%s is mounted but its zdbfs is gone, and unmounting it failed", mp);
        return -1;
    }
    printf("zdbfs: took away the dead mount on %s (its zdbfs had stopped)\n", mp);
    return 0;
}

static void zdbfs_opts(struct stack *s, char *opts, size_t cap)
{
    snprintf(opts, cap, "unix=%s,autons%s%s", s->zdb_sock, s->q->zdbfs_options[0] ? "," : "",
             s->q->zdbfs_options);
}

static int start_zdbfs(struct stack *s)
{
    const char *mp = s->q->mountpoint;
    int dm = dead_mount(s);
    if (dm < 0)
        return -1;
    if (dm > 0) {
        printf("zdbfs: mounted already on %s\n", mp);
        return 0;
    }
    char opts[P + 200];
    snprintf(opts, sizeof(opts), "unix=%s,autons%s%s", s->zdb_sock,
             s->q->zdbfs_options[0] ? "," : "", s->q->zdbfs_options);
    char *argv[] = {s->bin_zdbfs, (char *)mp, "-f", "-o", opts, NULL};
    return start_part(s, argv, NULL, s->log_zdbfs, 0, s->pid_zdbfs, "zdbfs", "zdbfs", mounted, 600,
                      mp);
}

static int cmd_up(struct stack *s, bool restore)
{
    if (restore) {
        char meta[P];
        snprintf(meta, sizeof(meta), "%s/%s", s->index, ZSC_META_NS);
        if (exists(meta)) {
            fail("%s holds a frontend already (%s): restore only into an empty [qsfs] dir",
                 s->q->dir, meta);
            return 1;
        }
    }
    if (zstor_config_check_redundancy(s->cfg) < 0) {
        fail("%s", qs_err_msg());
        return 1;
    }
    if (find_bins(s) < 0 || mkdirs(s->q->dir, 0700) < 0 || mkdirs(s->index, 0700) < 0 ||
        mkdirs(s->data, 0700) < 0 || mkdirs(s->logdir, 0700) < 0 ||
        mkdirs(s->q->mountpoint, 0755) < 0)
        return 1;
    if (start_daemon(s) < 0 || maybe_restore(s, restore) < 0 || check_frontend_id(s) < 0 ||
        start_zdb(s) < 0 || start_zdbfs(s) < 0)
        return 1;
    printf("qsfs is up: %s (qsfs -c %s status)\n", s->q->mountpoint, s->cfgpath);
    return 0;
}

/* ---- run: one part in the foreground (the systemd units) ---- */

static int cmd_run(struct stack *s, const char *part)
{
    if (find_bins(s) < 0 || mkdirs(s->q->dir, 0700) < 0 || mkdirs(s->index, 0700) < 0 ||
        mkdirs(s->data, 0700) < 0)
        return 1;
    fflush(stdout);
    if (!strcmp(part, "zstor")) {
        char *argv[] = {s->bin_zstor, "-c", s->cfgpath, "monitor", NULL};
        if (qp_pid_write(s->pid_zstor, getpid()) < 0) { /* exec keeps the pid */
            fail("%s", qs_err_msg());
            return 1;
        }
        qp_set_priority(s->q->upload_priority);
        execv(argv[0], argv);
    } else if (!strcmp(part, "zdb")) {
        if (zstor_config_check_redundancy(s->cfg) < 0) {
            fail("%s", qs_err_msg());
            return 1;
        }
        if (maybe_restore(s, false) < 0 || check_frontend_id(s) < 0)
            return 1;
        struct zdb_cmd c;
        zdb_cmd(s, &c);
        if (qp_pid_write(s->pid_zdb, getpid()) < 0) {
            fail("%s", qs_err_msg());
            return 1;
        }
        putenv(c.env);
        fflush(stdout);
        execv(c.argv[0], c.argv);
    } else if (!strcmp(part, "zdbfs")) {
        if (mkdirs(s->q->mountpoint, 0755) < 0)
            return 1;
        int dm = dead_mount(s);
        if (dm != 0) {
            if (dm > 0)
                fail("%s is mounted already (zdbfs pid %d)", s->q->mountpoint,
                     (int)qp_pid_read(s->pid_zdbfs));
            return 1;
        }
        if (qp_pid_write(s->pid_zdbfs, getpid()) < 0) {
            fail("%s", qs_err_msg());
            return 1;
        }
        char opts[P + 200];
        zdbfs_opts(s, opts, sizeof(opts));
        char *argv[] = {s->bin_zdbfs, (char *)s->q->mountpoint, "-f", "-o", opts, NULL};
        fflush(stdout);
        execv(argv[0], argv);
    } else {
        fprintf(stderr, "qsfs: run: expected zstor, zdb or zdbfs, not '%s'\n", part);
        return 2;
    }
    fail("cannot run %s: %s", part, strerror(errno));
    return 1;
}

/* ---- down ---- */

static int cmd_down(struct stack *s, unsigned timeout_s)
{
    if (find_bins(s) < 0)
        return 1;
    int rc = 0;
    bool k9;
    const char *mp = s->q->mountpoint;
    pid_t fspid = qp_pid_read(s->pid_zdbfs);
    if (qp_mounted(mp)) {
        char fm[P];
        if (qp_find("fusermount3", fm, sizeof(fm)) < 0) {
            fail("%s", qs_err_msg());
            return 1;
        }
        char *argv[] = {fm, "-u", (char *)mp, NULL};
        if (run_wait(argv) != 0) {
            fail("cannot unmount %s (is it in use? `fuser -m %s` tells): nothing was stopped", mp,
                 mp);
            return 1;
        }
        printf("zdbfs: unmounted %s\n", mp);
    }
    if (fspid && !qp_stop(fspid, "zdbfs", 30000, &k9))
        fail("zdbfs (pid %d) does not stop", (int)fspid), rc = 1;
    pid_t zpid = qp_pid_read(s->pid_zdb);
    if (zpid && qp_running(zpid, "zdb")) {
        if (qp_stop(zpid, "zdb", 60000, &k9))
            printf("zdb: stopped%s\n", k9 ? " (killed after 60 s)" : "");
        else
            fail("zdb (pid %d) does not stop", (int)zpid), rc = 1;
    } else if (qp_zdb_ping(s->zdb_sock)) {
        fail("a zdb answers on %s but not the one qsfs started (%s): stop it yourself", s->zdb_sock,
             s->pid_zdb);
        rc = 1;
    }
    /* everything local, stored (through the daemon, or in-process when it is gone) */
    char t[32];
    snprintf(t, sizeof(t), "%u", timeout_s);
    char *argv[] = {s->bin_zstor, "-c", s->cfgpath, "checkpoint", "--timeout", t, NULL};
    if (run_wait(argv) != 0) {
        fail("not everything local is stored on the backends yet (the local copy stays; `qsfs "
             "up` goes on uploading)");
        rc = 1;
    } else {
        printf("checkpoint: every local change is stored\n");
    }
    pid_t dpid = qp_pid_read(s->pid_zstor);
    if (dpid && qp_running(dpid, "zstor")) {
        if (qp_stop(dpid, "zstor", 60000, &k9))
            printf("zstor daemon: stopped\n");
        else
            fail("the zstor daemon (pid %d) does not stop", (int)dpid), rc = 1;
    }
    return rc;
}

/* ---- status ---- */

/* The number after "key": in a JSON text (first occurrence), or def. */
static long long json_num(const char *text, const char *key, long long def)
{
    char pat[80];
    snprintf(pat, sizeof(pat), "\"%s\": ", key);
    const char *p = text ? strstr(text, pat) : NULL;
    if (!p)
        return def;
    return strtoll(p + strlen(pat), NULL, 10);
}

static int cmd_status(struct stack *s)
{
    int bad = 0;
    printf("qsfs frontend %s (config %s)\n", s->q->dir, s->cfgpath);
    char *argv[] = {"status", "--json", NULL};
    char *js = NULL;
    size_t len;
    int st;
    int drc = qz_capture(s->cfg, -1, 20, &st, &js, &len, argv);
    pid_t dpid = qp_pid_read(s->pid_zstor);
    if (drc == 0)
        printf("  zstor daemon  running (pid %lld), socket %s\n", json_num(js, "pid", dpid),
               s->cfg->socket);
    else
        printf("  zstor daemon  NOT RUNNING (%s): uploads stall, closed files wait on the local "
               "disk, evicted data cannot be read back; `qsfs up` starts it\n",
               qs_err_msg()),
            bad++;
    pid_t zpid = qp_pid_read(s->pid_zdb);
    if (qp_zdb_ping(s->zdb_sock))
        printf("  zdb           running (pid %d), unix://%s\n", (int)zpid, s->zdb_sock);
    else
        printf("  zdb           NOT RUNNING (no answer on %s)\n", s->zdb_sock), bad++;
    pid_t fpid = qp_pid_read(s->pid_zdbfs);
    if (qp_mounted(s->q->mountpoint))
        printf("  zdbfs         mounted on %s (pid %d)\n", s->q->mountpoint, (int)fpid);
    else
        printf("  zdbfs         NOT MOUNTED on %s\n", s->q->mountpoint), bad++;
    if (drc == 0) {
        long long h = json_num(js, "backends_healthy", 0),
                  l = json_num(js, "backends_low_space", 0),
                  r = json_num(js, "backends_readonly", 0),
                  u = json_num(js, "backends_unreachable", 0);
        printf("  backends      %lld healthy, %lld low space, %lld read-only, %lld unreachable%s\n",
               h, l, r, u, u || r ? " (degraded: `zstor -c CONFIG status` says which)" : "");
        long long age = json_num(js, "recovery_point_age_ms", -1);
        printf("  uploads       queue %lld files (%lld failing); checkpoint %lld files pending\n",
               json_num(js, "queue_length", 0), json_num(js, "queue_failing", 0),
               json_num(js, "pending", 0));
        if (age >= 0)
            printf("  recovery point %.1f s ago: a lost machine loses at most what was written "
                   "after it\n",
                   (double)age / 1000.0);
        else
            printf("  recovery point none yet: nothing is stored remotely so far\n");
        const char *e = strstr(js, "\"checkpoint\": {");
        const char *em = e ? strstr(e, "\"error\": \"") : NULL;
        if (em && em[10] != '"') {
            const char *end = strchr(em + 10, '"');
            printf("  last checkpoint failed: %.*s\n", end ? (int)(end - em - 10) : 200, em + 10);
        }
    }
    free(js);
    size_t files;
    char cache[P];
    snprintf(cache, sizeof(cache), "%s/%s", s->data, ZSC_DATA_NS);
    unsigned long long used = qp_dir_bytes(cache, &files);
    printf("  local cache   %.1f MiB in %zu data files, limit %u MiB\n", (double)used / 1048576.0,
           files, s->q->cache_mib);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"config", required_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
    const char *config = DEFAULT_CONFIG;
    int ch;
    while ((ch = getopt_long(argc, argv, "+c:hV", lo, NULL)) != -1) {
        if (ch == 'c') {
            config = optarg;
        } else if (ch == 'h') {
            fputs(usage, stdout);
            return 0;
        } else if (ch == 'V') {
            printf("qsfs %s (commit %s)\n", qs_version(), qs_git_commit());
            return 0;
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "qsfs: a command is needed\n%s", usage);
        return 2;
    }
    const char *cmd = argv[optind++];
    const char *part = NULL;
    if (!strcmp(cmd, "run")) {
        if (optind >= argc) {
            fprintf(stderr, "qsfs: run: which part (zstor, zdb or zdbfs)?\n%s", usage);
            return 2;
        }
        part = argv[optind++];
    }
    unsigned timeout = 600;
    if (!strcmp(cmd, "down") && optind + 1 < argc && !strcmp(argv[optind], "--timeout")) {
        char *end;
        unsigned long v = strtoul(argv[optind + 1], &end, 10);
        if (*end || !v || v > 86400) {
            fprintf(stderr, "qsfs: down: bad --timeout '%s' (seconds, 1 to 86400)\n",
                    argv[optind + 1]);
            return 2;
        }
        timeout = (unsigned)v;
        optind += 2;
    }
    if (optind < argc) {
        fprintf(stderr, "qsfs: %s: unexpected argument '%s'\n%s", cmd, argv[optind], usage);
        return 2;
    }
    if (strcmp(cmd, "up") && strcmp(cmd, "down") && strcmp(cmd, "status") &&
        strcmp(cmd, "restore") && strcmp(cmd, "run")) {
        fprintf(stderr, "qsfs: unknown command '%s'\n%s", cmd, usage);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    static struct stack s;
    if (load(&s, config) < 0)
        return 1;
    int rc;
    if (!strcmp(cmd, "up"))
        rc = cmd_up(&s, false);
    else if (!strcmp(cmd, "restore"))
        rc = cmd_up(&s, true);
    else if (!strcmp(cmd, "down"))
        rc = cmd_down(&s, timeout);
    else if (!strcmp(cmd, "run"))
        rc = cmd_run(&s, part);
    else
        rc = cmd_status(&s);
    zstor_config_free(s.cfg);
    return rc;
}
