/* zstor monitor: the daemon program (docs/zstor-daemon.md). Glue only: the service is
 * lib/daemon (daemon.h), the socket server/daemon/server.h, the commands commands.h. */
#include "monitor.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <stdatomic.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/http.h"
#include "daemon/server.h"
#include "util/log.h"
#include "util/sys.h"
#include "commands.h"

#define MAX_SESSIONS 64

static struct {
    pthread_mutex_t mu;
    FILE *logf;  /* stderr or --log_file */
    bool stamps; /* time stamps on lines (not under journald, which adds its own) */
    bool debug;
    struct zcmd_session *sessions[MAX_SESSIONS];
    int printing[MAX_SESSIONS]; /* lines being written to that session's caller */
    pthread_cond_t done;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static void log_handler(enum qs_log_level level, const char *msg, void *ud)
{
    (void)ud;
    static const char *const names[] = {"debug", "info", "warning", "error"};
    uint64_t job = qs_log_job();
    pthread_mutex_lock(&g.mu);
    if (level >= QS_LOG_INFO || g.debug) {
        char ts[32];
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
        if (job)
            fprintf(g.logf, "%s%s%s: job %llu: %s\n", g.stamps ? ts : "", g.stamps ? " " : "",
                    names[level], (unsigned long long)job, msg);
        else
            fprintf(g.logf, "%s%s%s: %s\n", g.stamps ? ts : "", g.stamps ? " " : "", names[level],
                    msg);
        fflush(g.logf);
    }
    /* the lines of a forwarded command also go to its caller, as in-process; written
     * without the lock, so that a caller whose stderr blocks stalls only its own job */
    int at = -1;
    for (int i = 0; job && i < MAX_SESSIONS && at < 0; i++)
        if (g.sessions[i] && g.sessions[i]->job == job)
            at = i;
    struct zcmd_session *target = at >= 0 ? g.sessions[at] : NULL;
    if (target)
        g.printing[at]++;
    pthread_mutex_unlock(&g.mu);
    if (!target)
        return;
    zcmd_print_log(target, level, msg);
    pthread_mutex_lock(&g.mu);
    g.printing[at]--;
    pthread_cond_broadcast(&g.done);
    pthread_mutex_unlock(&g.mu);
}

static bool session_add(struct zcmd_session *s)
{
    pthread_mutex_lock(&g.mu);
    for (int i = 0; i < MAX_SESSIONS; i++) {
        if (!g.sessions[i]) {
            g.sessions[i] = s;
            pthread_mutex_unlock(&g.mu);
            return true;
        }
    }
    pthread_mutex_unlock(&g.mu);
    return false;
}

static void session_remove(struct zcmd_session *s)
{
    pthread_mutex_lock(&g.mu);
    for (int i = 0; i < MAX_SESSIONS; i++) {
        if (g.sessions[i] != s)
            continue;
        while (g.printing[i])
            pthread_cond_wait(&g.done, &g.mu);
        g.sessions[i] = NULL;
    }
    pthread_mutex_unlock(&g.mu);
}

/* ---- what the commands ask of the daemon ---- */

static int d_queue_store(void *ud, const char *file, const char *key_dir, bool del)
{
    return zsd_queue_store(ud, file, key_dir, del);
}

static int d_status_rows(void *ud, struct zstor_backend_status **rows, size_t *n)
{
    return zsd_status_rows(ud, rows, n);
}

static void d_print_status(void *ud, FILE *out, bool json)
{
    zsd_print_status(ud, out, json);
}

static void d_lock(void *ud, const char *key)
{
    zsd_lock(ud, key);
}

static void d_unlock(void *ud, const char *key)
{
    zsd_unlock(ud, key);
}

static void d_damaged(void *ud, const char *key)
{
    zsd_damaged(ud, key);
}

static int d_checkpoint(void *ud, bool wait, int64_t timeout_ms)
{
    return zsd_checkpoint(ud, wait, timeout_ms);
}

/* ---- a request on the socket ---- */

/* The socket serves from before the service is started (it holds the instance lock):
 * requests in that window wait for the start (1) or its failure (-1). */
static atomic_int g_started;

static int handle(void *ud, struct zsd_call *call)
{
    struct zsd *d = ud;
    char **argv = call->req.argv;
    while (atomic_load(&g_started) == 0 && !atomic_load(&call->cancel))
        usleep(10000);
    if (atomic_load(&g_started) < 0 || atomic_load(&call->cancel)) {
        dprintf(call->err_fd, "zstor: the daemon did not start (its log says why)\n");
        return 1;
    }
    if (strcmp(argv[0], "monitor") == 0) {
        dprintf(call->err_fd, "zstor: monitor: a daemon runs on this socket already (pid %ld)\n",
                (long)getpid());
        return 1;
    }
    int ofd = dup(call->out_fd), efd = dup(call->err_fd);
    FILE *out = ofd >= 0 ? fdopen(ofd, "w") : NULL;
    FILE *err = efd >= 0 ? fdopen(efd, "w") : NULL;
    if (!out || !err) {
        if (out)
            fclose(out);
        else if (ofd >= 0)
            close(ofd);
        if (err)
            fclose(err);
        else if (efd >= 0)
            close(efd);
        dprintf(call->err_fd, "zstor: the daemon is out of resources: %s\n", strerror(errno));
        return 1;
    }
    const struct zcmd_daemon ops = {.queue_store = d_queue_store,
                                    .status_rows = d_status_rows,
                                    .print_status = d_print_status,
                                    .lock = d_lock,
                                    .unlock = d_unlock,
                                    .damaged = d_damaged,
                                    .checkpoint = d_checkpoint,
                                    .ud = d};
    struct zcmd_session s;
    zcmd_session_init(&s, out, err, &call->cancel);
    s.tty = (call->req.flags & ZSD_REQ_TTY_ERR) && isatty(call->err_fd) == 1;
    s.debug = (call->req.flags & ZSD_REQ_DEBUG) != 0;
    s.job = zsd_next_job(d);
    s.cluster = zsd_cluster(d);
    s.daemon = &ops;
    int rc;
    if (!session_add(&s)) {
        fprintf(err, "zstor: the daemon runs %d commands already, try again\n", MAX_SESSIONS);
        rc = 1;
    } else {
        qs_log_set_job(s.job);
        qs_log(QS_LOG_DEBUG, "%s from pid %ld", argv[0], (long)call->pid);
        int64_t t0 = qs_now_ms();
        rc = zcmd_run(&s, call->req.argc, argv);
        double secs = (double)(qs_now_ms() - t0) / 1000.0;
        static const char *const counted[ZSM_NCMD] = {"store", "retrieve", "rebuild", "check"};
        for (int i = 0; i < ZSM_NCMD; i++)
            if (strcmp(argv[0], counted[i]) == 0)
                zsd_count_command(d, (enum zsm_cmd)i, rc == 0, secs, s.bytes);
        session_remove(&s);
        qs_log_set_job(0);
    }
    fclose(out);
    fclose(err);
    zcmd_session_destroy(&s);
    return rc;
}

/* ---- the program ---- */

int zmon_run(const char *config_path, bool debug, const char *log_file)
{
    g.debug = debug;
    g.logf = stderr;
    g.stamps = log_file || !getenv("JOURNAL_STREAM");
    if (log_file && !(g.logf = fopen(log_file, "a"))) {
        fprintf(stderr, "zstor: --log_file %s: %s\n", log_file, strerror(errno));
        return 1;
    }
    qs_log_set_handler(log_handler, NULL);
    int status = 1;
    struct zsd *d = NULL;
    struct zsd_server *srv = NULL;
    struct zsd_http *http = NULL;
    struct zstor_config *cfg;
    if (zstor_config_load(config_path, &cfg) < 0) {
        qs_log(QS_LOG_ERROR, "monitor: %s", qs_err_msg());
        goto out;
    }
    if (zstor_config_check_redundancy(cfg) < 0) {
        qs_log(QS_LOG_ERROR, "monitor: %s", qs_err_msg());
        zstor_config_free(cfg);
        goto out;
    }
    if (!cfg->socket) {
        qs_log(QS_LOG_ERROR, "monitor: %s sets no socket (the daemon listens there)", cfg->name);
        zstor_config_free(cfg);
        goto out;
    }
    /* signals: one thread waits for them (below); every other thread has them blocked */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl; /* each connection holds its socket and the caller's two streams */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    char *socket_path = strdup(cfg->socket);
    char *pid_file = cfg->pid_file ? strdup(cfg->pid_file) : NULL;
    char *bind = cfg->prometheus_bind ? strdup(cfg->prometheus_bind) : NULL;
    unsigned port = cfg->prometheus_port;
    struct zsd_opts o = {.config_path = config_path,
                         .queue_nosync = getenv("ZSTOR_QUEUE_NOSYNC") != NULL,
                         .dir_nosync = getenv("ZSTOR_DIR_NOSYNC") != NULL};
    if (!socket_path || (cfg->pid_file && !pid_file)) {
        zstor_config_free(cfg);
        qs_log(QS_LOG_ERROR, "monitor: out of memory");
        goto out_free;
    }
    if (zsd_new(&d, cfg, &o) < 0) {
        qs_log(QS_LOG_ERROR, "monitor: %s", qs_err_msg());
        goto out_free;
    }
    struct zsd_server_opts so = {
        .socket_path = socket_path, .pid_file = pid_file, .handler = handle, .ud = d};
    /* the lock first: a second daemon must not touch the first one's queue */
    if (zsd_server_start(&srv, &so) < 0) {
        qs_log(QS_LOG_ERROR, "monitor: %s", qs_err_msg());
        goto out_free;
    }
    if (zsd_start(d) < 0) {
        atomic_store(&g_started, -1);
        qs_log(QS_LOG_ERROR, "monitor: %s", qs_err_msg());
        goto out_free;
    }
    atomic_store(&g_started, 1);
    if (port && zsd_http_start(&http, d, bind, port) < 0) {
        qs_log(QS_LOG_ERROR, "monitor: %s", qs_err_msg());
        goto out_free;
    }
    qs_log(QS_LOG_INFO, "zstor daemon (pid %ld) serving %s", (long)getpid(), socket_path);
    if (port)
        qs_log(QS_LOG_INFO, "metrics and status page: http://%s:%u/", bind ? bind : "*", port);
    sd_notifyf(0, "READY=1\nSTATUS=serving %s\nMAINPID=%ld", socket_path, (long)getpid());
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&set, &si);
        if (sig < 0)
            continue;
        if (sig == SIGUSR1) {
            sd_notify(0, "RELOADING=1");
            if (zsd_reload(d) < 0)
                qs_log(QS_LOG_ERROR, "%s", qs_err_msg());
            sd_notify(0, "READY=1");
            continue;
        }
        qs_log(QS_LOG_INFO,
               "stopping (%s): running commands are interrupted, queued stores stay "
               "queued",
               strsignal(sig));
        break;
    }
    sd_notify(0, "STOPPING=1");
    status = 0;
out_free:
    zsd_server_stop(srv); /* first: no command runs on d any more */
    zsd_http_stop(http);
    zsd_free(d);
    free(socket_path);
    free(pid_file);
    free(bind);
out:
    qs_log_set_handler(NULL, NULL);
    if (g.logf && g.logf != stderr)
        fclose(g.logf);
    return status;
}
