#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/sys.h"

extern char **environ;

/* Crash hook: everything the signal handler needs, prepared by zdb_hooks_catch_crashes. */
static char *crash_argv[4];
static volatile sig_atomic_t crash_fired;

int zdb_hooks_init(struct zdb_hooks *h, const char *exe, const char *zdbid, unsigned timeout)
{
    memset(h, 0, sizeof(*h));
    h->timeout = timeout ? timeout : ZDB_HOOKS_TIMEOUT_DEFAULT;
    if (!(h->exe = strdup(exe)))
        return qs_err_set(QS_ENOMEM, "hook path");
    zdb_hooks_set_id(h, zdbid);
    return 0;
}

void zdb_hooks_set_id(struct zdb_hooks *h, const char *zdbid)
{
    snprintf(h->zdbid, sizeof(h->zdbid), "%s", zdbid);
}

static void record_clear(struct zdb_hook *r)
{
    if (r->argv) {
        for (int i = 0; i < r->argc; i++)
            free(r->argv[i]);
        free(r->argv);
    }
    memset(r, 0, sizeof(*r));
}

void zdb_hooks_free(struct zdb_hooks *h)
{
    if (crash_argv[0] == h->exe)
        crash_argv[0] = NULL;
    for (size_t i = 0; i < ZDB_HOOKS_KEEP; i++)
        record_clear(&h->recent[i]);
    free(h->exe);
    h->exe = NULL;
    h->count = h->first = 0;
}

const struct zdb_hook *zdb_hooks_at(const struct zdb_hooks *h, size_t i)
{
    return &h->recent[(h->first + i) % ZDB_HOOKS_KEEP];
}

/* A new record (the oldest one is forgotten when the list is full), with its argv. */
static struct zdb_hook *record_new(struct zdb_hooks *h, const char *event, const char *const *args,
                                   int nargs)
{
    struct zdb_hook *r;
    if (h->count == ZDB_HOOKS_KEEP) {
        r = &h->recent[h->first];
        h->first = (h->first + 1) % ZDB_HOOKS_KEEP;
        h->count--;
    } else {
        r = &h->recent[(h->first + h->count) % ZDB_HOOKS_KEEP];
    }
    record_clear(r);
    int argc = 3 + nargs;
    char **argv = calloc((size_t)argc + 1, sizeof(*argv));
    if (!argv)
        return NULL;
    bool ok =
        (argv[0] = strdup(h->exe)) && (argv[1] = strdup(event)) && (argv[2] = strdup(h->zdbid));
    for (int i = 0; ok && i < nargs; i++)
        ok = (argv[3 + i] = strdup(args[i] ? args[i] : "")) != NULL;
    r->argv = argv;
    r->argc = argc;
    if (!ok) {
        record_clear(r);
        return NULL;
    }
    r->created = time(NULL);
    h->count++;
    return r;
}

static int exit_code(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 128;
}

/* Spawns r->argv. Returns 0 and sets r->pid, or an errno value. */
static int spawn(struct zdb_hooks *h, struct zdb_hook *r)
{
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    int err = posix_spawnattr_init(&attr);
    if (err)
        return err;
    err = posix_spawn_file_actions_init(&fa);
    if (err) {
        posix_spawnattr_destroy(&attr);
        return err;
    }
    /* Ignored signals (SIGPIPE) survive exec: give the hook default dispositions, no
     * blocked signal, and a process group of its own so that a timeout kills the hook's
     * children too. Every descriptor above stderr is closed (belt and braces: the server
     * opens everything close-on-exec). */
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    err = posix_spawnattr_setsigdefault(&attr, &all);
    if (!err)
        err = posix_spawnattr_setsigmask(&attr, &none);
    if (!err)
        err = posix_spawnattr_setpgroup(&attr, 0);
    if (!err)
        err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETPGROUP);
    if (!err)
        err = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    pid_t pid = 0;
    if (!err)
        err = posix_spawn(&pid, h->exe, &fa, &attr, r->argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (err)
        return err;
    r->pid = pid;
    return 0;
}

/* Waits for child pid until deadline (monotonic ms). 0 and *wstatus, or QS_ETIMEOUT. */
static int wait_until(pid_t pid, int64_t deadline, int *wstatus)
{
    /* A pidfd lets poll() sleep until the exit; without one, poll with a growing nap. */
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int nap = 1;
    int rc = QS_ETIMEOUT;
    for (;;) {
        pid_t w = waitpid(pid, wstatus, WNOHANG);
        if (w == pid) {
            rc = 0;
            break;
        }
        if (w < 0 && errno != EINTR) {
            rc = qs_err_sys(QS_EIO, errno, "waitpid %d", (int)pid);
            break;
        }
        int64_t left = deadline - qs_now_ms();
        if (left <= 0)
            break;
        if (pfd >= 0) {
            struct pollfd p = {.fd = pfd, .events = POLLIN};
            (void)poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        } else {
            int ms = left < nap ? (int)left : nap;
            struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            if (nap < 50)
                nap *= 2;
        }
    }
    if (pfd >= 0)
        close(pfd);
    return rc;
}

int zdb_hooks_run(struct zdb_hooks *h, const char *event, const char *const *args, int nargs)
{
    zdb_hooks_reap(h);
    struct zdb_hook *r = record_new(h, event, args, nargs);
    if (!r)
        return qs_err_set(QS_ENOMEM, "hook %s", event);
    int err = spawn(h, r);
    if (err) {
        r->finished = r->created;
        r->status = ZDB_HOOK_STATUS_NOSTART;
        qs_log(QS_LOG_WARN, "hook %s: cannot run %s: %s", event, h->exe, strerror(err));
        return qs_err_sys(QS_EIO, err, "run hook %s (%s)", event, h->exe);
    }
    qs_log(QS_LOG_DEBUG, "hook %s: started pid %d, waiting", event, (int)r->pid);
    int wstatus = 0;
    int rc = wait_until(r->pid, qs_now_ms() + (int64_t)h->timeout * 1000, &wstatus);
    if (rc == QS_ETIMEOUT) {
        qs_log(QS_LOG_ERROR, "hook %s: still running after %u s, killing pid %d", event, h->timeout,
               (int)r->pid);
        kill(-r->pid, SIGKILL); /* its process group: a script's children too */
        kill(r->pid, SIGKILL);
        while (waitpid(r->pid, &wstatus, 0) < 0 && errno == EINTR)
            ;
        r->finished = time(NULL);
        r->status = exit_code(wstatus);
        return qs_err_set(QS_ETIMEOUT, "hook %s timed out after %u s", event, h->timeout);
    }
    r->finished = time(NULL);
    if (rc < 0) {
        r->status = 128;
        return rc;
    }
    r->status = exit_code(wstatus);
    if (r->status != 0)
        qs_log(QS_LOG_WARN, "hook %s: exit status %d", event, r->status);
    else
        qs_log(QS_LOG_DEBUG, "hook %s: done", event);
    return r->status;
}

void zdb_hooks_start(struct zdb_hooks *h, const char *event, const char *const *args, int nargs)
{
    zdb_hooks_reap(h);
    struct zdb_hook *r = record_new(h, event, args, nargs);
    if (!r) {
        qs_log(QS_LOG_WARN, "hook %s: out of memory", event);
        return;
    }
    int err = spawn(h, r);
    if (err) {
        r->finished = r->created;
        r->status = ZDB_HOOK_STATUS_NOSTART;
        qs_log(QS_LOG_WARN, "hook %s: cannot run %s: %s", event, h->exe, strerror(err));
        return;
    }
    h->running++;
    qs_log(QS_LOG_DEBUG, "hook %s: started pid %d", event, (int)r->pid);
}

void zdb_hooks_reap(struct zdb_hooks *h)
{
    while (h->running > 0) {
        int wstatus;
        pid_t pid = waitpid(-1, &wstatus, WNOHANG);
        if (pid == 0)
            return;
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            h->running = 0; /* ECHILD: nothing left to wait for */
            return;
        }
        h->running--;
        /* The record may have been forgotten already (more than ZDB_HOOKS_KEEP runs). */
        for (size_t i = 0; i < h->count; i++) {
            struct zdb_hook *r = &h->recent[(h->first + i) % ZDB_HOOKS_KEEP];
            if (r->pid == pid && r->finished == 0) {
                r->finished = time(NULL);
                r->status = exit_code(wstatus);
                if (r->status != 0)
                    qs_log(QS_LOG_WARN, "hook %s (pid %d): exit status %d", r->argv[1], (int)pid,
                           r->status);
                break;
            }
        }
    }
}

void zdb_hooks_crash(int sig)
{
    (void)sig;
    if (!crash_argv[0] || crash_fired)
        return;
    crash_fired = 1;
    /* _Fork and execve are async-signal-safe (fork and posix_spawn are not). */
    pid_t pid = _Fork();
    if (pid != 0)
        return; /* not waited for: the process is about to die */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    setpgid(0, 0);
    execve(crash_argv[0], crash_argv, environ);
    _exit(ZDB_HOOK_STATUS_NOSTART);
}

static void on_crash_signal(int sig)
{
    zdb_hooks_crash(sig);
    /* Die the way the signal would have killed us (core dump included). */
    signal(sig, SIG_DFL);
    raise(sig);
}

int zdb_hooks_catch_crashes(struct zdb_hooks *h, bool sigbus)
{
    crash_argv[0] = h->exe;
    crash_argv[1] = (char *)"crash";
    crash_argv[2] = h->zdbid;
    crash_argv[3] = NULL;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_crash_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGSEGV, SIGABRT, SIGBUS};
    for (int i = 0; i < (sigbus ? 3 : 2); i++)
        if (sigaction(sigs[i], &sa, NULL) != 0)
            return qs_err_sys(QS_EIO, errno, "install crash handler");
    return 0;
}
