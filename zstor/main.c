/* zstor: the command line (docs/zstor.md). Thin: global flags, then the command runs on
 * the daemon when one listens on the config's socket (daemon/client.h), else in-process
 * (commands.h); `monitor` runs the daemon (monitor.h). Exit 0 on success, 1 on failure,
 * 2 on usage errors; one line on stderr per failure. */
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
#include "daemon/client.h"
#include "daemon/proto.h"
#include "util/log.h"
#include "util/version.h"
#include "commands.h"
#include "monitor.h"

/* ---- in-process: log lines go to stderr (warnings) and the log file (all) ---- */

static struct {
    pthread_mutex_t mu;
    bool debug;
    FILE *logf;
    struct zcmd_session *s;
} g_out = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void log_handler(enum qs_log_level level, const char *msg, void *ud)
{
    static const char *const names[] = {"debug", "info", "warning", "error"};
    (void)ud;
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
    if (g_out.s)
        zcmd_print_log(g_out.s, level, msg);
    else if (level >= QS_LOG_WARN)
        fprintf(stderr, "zstor: %s\n", msg);
    pthread_mutex_unlock(&g_out.mu);
}

/* ---- interruption: SIGINT, SIGTERM, SIGHUP ---- */

/* Set by the first signal: the library stops at its next chunk and undoes what the
 * operation wrote (no orphan shards, no partial output file), or the daemon is told to;
 * a second signal ends the program at once (SA_RESETHAND). */
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

static int usage_error(const char *fmt, ...) QS_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "zstor: %s\n%s", msg, zcmd_usage);
    return ZCMD_EXIT_USAGE;
}

/* A global flag getopt refused. */
static int flag_error(int ch, char **argv)
{
    const char *word = argv[optind - 1];
    if (ch == ':')
        return usage_error("%s needs a value", word);
    if (strncmp(word, "--", 2) != 0)
        return usage_error("unknown flag '-%c'", optopt);
    const char *eq = strchr(word, '=');
    if (optopt && eq)
        return usage_error("%.*s takes no value", (int)(eq - word), word);
    return usage_error("unknown flag '%s'", word);
}

/* The command on the daemon of the config's socket: true with *rc set when it ran there
 * (or the daemon failed in a way that must not fall back to in-process). */
static bool forwarded(const char *config_path, int argc, char **argv, int *rc)
{
    struct zstor_config *cfg;
    if (zstor_config_load(config_path, &cfg) < 0)
        return false; /* in-process says what is wrong */
    if (!cfg->socket) {
        zstor_config_free(cfg);
        return false;
    }
    unsigned flags =
        (isatty(STDERR_FILENO) == 1 ? ZSD_REQ_TTY_ERR : 0) | (g_out.debug ? ZSD_REQ_DEBUG : 0);
    fflush(stdout);
    int status;
    int r = zsd_client_run(cfg->socket, argc, argv, flags, STDOUT_FILENO, STDERR_FILENO, &g_cancel,
                           &status);
    zstor_config_free(cfg);
    if (r == QS_ENOTFOUND)
        return false; /* no daemon: in-process */
    if (r < 0) {
        fprintf(stderr, "zstor: %s\n", qs_err_msg());
        *rc = 1;
    } else {
        *rc = status;
    }
    return true;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"config", required_argument, NULL, 'c'},
                                       {"debug", no_argument, NULL, 'd'},
                                       {"log_file", required_argument, NULL, 'L'},
                                       {"log-file", required_argument, NULL, 'L'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
    const char *config_path = "zstor_config.toml";
    const char *log_file = NULL;
    int ch;
    opterr = 0; /* flag_error says what is wrong, in one line */
    /* "+": stop at the command, whose own flags (store -d) come after it */
    while ((ch = getopt_long(argc, argv, "+:c:dhV", lo, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            g_out.debug = true;
            break;
        case 'L':
            log_file = optarg;
            break;
        case 'h':
            fputs(zcmd_usage, stdout);
            return 0;
        case 'V':
            printf("zstor (qsfs) %s (commit %s), 0-stor_v2 compatible\n", qs_version(),
                   qs_git_commit());
            return 0;
        default:
            return flag_error(ch, argv);
        }
    }
    if (optind >= argc)
        return usage_error("no command given");
    const char *cmd = argv[optind];
    int cargc = argc - optind;
    char **cargv = argv + optind;
    if (strcmp(cmd, "monitor") == 0) {
        if (cargc > 1)
            return usage_error("monitor: unexpected argument '%s'", cargv[1]);
        return zmon_run(config_path, g_out.debug, log_file);
    }
    if (log_file && !(g_out.logf = fopen(log_file, "a"))) {
        fprintf(stderr, "zstor: --log_file %s: %s\n", log_file, strerror(errno));
        return 1;
    }
    qs_log_set_handler(log_handler, NULL);
    catch_signals();
    int rc;
    if (!forwarded(config_path, cargc, cargv, &rc)) {
        struct zcmd_session s;
        zcmd_session_init(&s, stdout, stderr, &g_cancel);
        s.tty = isatty(STDERR_FILENO) == 1;
        s.debug = g_out.debug;
        s.config_path = config_path;
        pthread_mutex_lock(&g_out.mu);
        g_out.s = &s;
        pthread_mutex_unlock(&g_out.mu);
        rc = zcmd_run(&s, cargc, cargv);
        pthread_mutex_lock(&g_out.mu);
        g_out.s = NULL;
        pthread_mutex_unlock(&g_out.mu);
        zcmd_session_destroy(&s);
    }
    qs_log_set_handler(NULL, NULL);
    if (g_out.logf)
        fclose(g_out.logf);
    return rc;
}
