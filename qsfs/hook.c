/* qsfs-hook: the local zdb's hook (`zdb --hook qsfs-hook`), which turns zdb's events into
 * jobs of the zstor daemon (docs/qsfs.md, "The hook"). zdb runs it as
 *   qsfs-hook EVENT ZDBID [ARGS...]
 * with the environment it was started with; QSFS_CONFIG names the config file (default
 * /etc/qsfs/qsfs.toml). Every event answers within a bound: a daemon that is not there is
 * an error at once, a retrieve is cancelled after [qsfs] retrieve_timeout_s, and nothing
 * waits on an upload (the daemon's checkpoint does them, in restorable order). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon/checkpoint.h"
#include "util/version.h"
#include "zcall.h"

#define DEFAULT_CONFIG "/etc/qsfs/qsfs.toml"
#define POKE_TIMEOUT_S 30
#define READ_AHEAD     2 /* evicted data files retrieved ahead of a sequential read */

static const char *g_event = "?";

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "qsfs-hook: %s: %s\n", g_event, msg);
}

/* A hook that outlives every bound ends here (the daemon sees the hang-up and cancels). */
static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "qsfs-hook: no answer in time, giving up\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)w;
    _exit(1);
}

/* Runs a zstor command on the daemon; 0 when it exited 0. */
static int zstor(const struct zstor_config *cfg, unsigned timeout_s, char *const *argv)
{
    int status;
    int rc = qz_run(cfg, STDERR_FILENO, STDERR_FILENO, timeout_s, &status, argv);
    if (rc == QS_ENOTFOUND) {
        say("%s (is `zstor monitor` running? uploads resume at its next checkpoint)", qs_err_msg());
        return -1;
    }
    if (rc < 0) {
        say("zstor %s: %s", argv[0], qs_err_msg());
        return -1;
    }
    if (status != 0) {
        say("zstor %s exited with %d", argv[0], status);
        return -1;
    }
    return 0;
}

/* The namespace a zdb file path is in: its parent directory's name. */
static void ns_of(const char *path, char *ns, size_t cap)
{
    ns[0] = '\0';
    const char *end = strrchr(path, '/');
    if (!end)
        return;
    const char *start = end;
    while (start > path && start[-1] != '/')
        start--;
    snprintf(ns, cap, "%.*s", (int)(end - start), start);
}

static int poke(const struct zstor_config *cfg)
{
    char *argv[] = {"checkpoint", "--nowait", NULL};
    return zstor(cfg, POKE_TIMEOUT_S, argv);
}

/* A read of evicted data file d<N> is likely followed by d<N+1>, d<N+2> (a file read
 * from start to end): retrieve those that are evicted too, each in a detached process of
 * its own, so that zdb does not wait for them one by one. Bounded like the hook. */
static void read_ahead(const struct zstor_config *cfg, const char *path)
{
    const char *base = strrchr(path, '/');
    char kind;
    uint32_t id, top = 0;
    if (!base || !zsc_zdb_file(base + 1, &kind, &id) || kind != 'd')
        return;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%.*s", (int)(base - path), path);
    if (!zsc_open_data_file(dir, &top))
        return;
    for (uint32_t next = id + 1; next <= id + READ_AHEAD && next < top; next++) {
        char p[4200];
        struct stat st;
        snprintf(p, sizeof(p), "%s/d%u", dir, next);
        if (stat(p, &st) == 0)
            continue;
        pid_t pid = fork();
        if (pid < 0)
            return;
        if (pid > 0) {
            (void)waitpid(pid, NULL, 0); /* the middle process exits at once */
            continue;
        }
        /* the middle process: its child is the read-ahead, outside zdb's process group
         * (zdb kills that group when a hook outlives its time) */
        setsid();
        if (fork() != 0)
            _exit(0);
        alarm(cfg->qsfs.retrieve_timeout_s + 30);
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0)
            dup2(nul, STDOUT_FILENO);
        char *a[] = {"retrieve", "--if-missing", "--file", p, NULL};
        _exit(zstor(cfg, cfg->qsfs.retrieve_timeout_s, a) < 0 ? 1 : 0);
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
        printf("qsfs-hook %s (commit %s)\n", qs_version(), qs_git_commit());
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: qsfs-hook EVENT ZDBID [ARGS...] (run by zdb --hook)\n"
                        "the config file is $QSFS_CONFIG, or " DEFAULT_CONFIG "\n");
        return 2;
    }
    g_event = argv[1];
    const char *ev = argv[1];
    /* events that need nothing */
    if (!strcmp(ev, "namespace-deleted") || !strcmp(ev, "namespace-reloaded"))
        return 0;
    if (!strcmp(ev, "crash")) {
        say("zdb reports a crash (%s)", argv[2]);
        return 0;
    }
    const char *cfgpath = getenv("QSFS_CONFIG");
    if (!cfgpath || !*cfgpath)
        cfgpath = DEFAULT_CONFIG;
    struct zstor_config *cfg = NULL;
    if (zstor_config_load(cfgpath, &cfg) < 0) {
        say("%s", qs_err_msg());
        return 1;
    }
    if (!cfg->qsfs.present) {
        say("%s has no [qsfs] table", cfgpath);
        zstor_config_free(cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    int rc = 0;
    if (!strcmp(ev, "ready")) {
        /* the daemon answers and a placement exists (backends down are said, not fatal) */
        alarm(120);
        char *a[] = {"test", "--allow-degraded", NULL};
        rc = zstor(cfg, 60, a);
    } else if (!strcmp(ev, "namespaces-init")) {
        if (argc < 5) {
            say("expected the index and data directories");
            rc = -1;
        } else {
            struct qz_restore res;
            if (qz_restore(cfg, argv[3], argv[4], stderr, &res) < 0) {
                say("%s", qs_err_msg());
                rc = -1;
            } else if (res.files) {
                say("restored %u files from the backends", res.files);
            }
        }
    } else if (!strcmp(ev, "missing-data")) {
        /* zdb retries the read once when this exits 0: the file must be back, whole */
        unsigned bound = cfg->qsfs.retrieve_timeout_s;
        alarm(bound + 30);
        if (argc < 4) {
            say("expected the file's path");
            rc = -1;
        } else {
            char *a[] = {"retrieve", "--if-missing", "--file", argv[3], NULL};
            struct stat st;
            rc = zstor(cfg, bound, a);
            if (rc == 0 && stat(argv[3], &st) < 0) {
                say("%s is still missing after the retrieve", argv[3]);
                rc = -1;
            }
            if (rc == 0)
                read_ahead(cfg, argv[3]);
        }
    } else if (!strcmp(ev, "jump-index")) {
        /* blocking: zdb waits for this one. Nothing to do: the periodic checkpoint compares
         * every file with what is stored, so the dirty list (reset by exit 0) is not needed,
         * and a daemon that hangs must not stall zdb's writes */
        rc = 0;
    } else if (!strcmp(ev, "jump-data") || !strcmp(ev, "namespace-created") ||
               !strcmp(ev, "namespace-updated") || !strcmp(ev, "namespace-closing") ||
               !strcmp(ev, "close")) {
        /* a closed data file of zdbfs-data goes to the queue at once (it is immutable:
         * storing it early cannot break the order); everything else is the next
         * checkpoint's, which is asked for now */
        alarm(POKE_TIMEOUT_S * 2 + 10);
        char ns[256] = "";
        if (argc >= 4)
            ns_of(argv[3], ns, sizeof(ns));
        if (!strcmp(ev, "namespace-created") || !strcmp(ev, "namespace-updated") ||
            !strcmp(ev, "namespace-closing"))
            snprintf(ns, sizeof(ns), "%s", argc >= 4 ? argv[3] : "");
        if (!strcmp(ns, ZSC_TEMP_NS)) {
            rc = 0; /* scratch: never uploaded */
        } else {
            if (!strcmp(ev, "jump-data") && !strcmp(ns, ZSC_DATA_NS)) {
                char *a[] = {"store", "--notblocking", "--file", argv[3], NULL};
                rc = zstor(cfg, POKE_TIMEOUT_S, a);
            }
            if (poke(cfg) < 0)
                rc = -1;
        }
    }
    zstor_config_free(cfg);
    return rc < 0 ? 1 : 0;
}
