/* Hooks (`--hook EXE`): runs `EXE <event> <zdbid> [args...]` without a shell, waits for
 * the blocking events, reaps the others, and remembers the last ZDB_HOOKS_KEEP runs for
 * the HOOKS command. Which event is blocking, and what its exit status means, is decided
 * by the caller (spec zdb.md section 6); this module only spawns, tracks and reaps.
 *
 * Children start with every descriptor above stderr closed (lock files, sockets and
 * data files are never held by a hook), default signal dispositions, an empty signal
 * mask, and their own process group (a blocking hook that outlives its time limit is
 * killed with its whole group). Single-threaded, like the server. */
#ifndef QSFS_ZDB_HOOKS_H
#define QSFS_ZDB_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "util/err.h"

#define ZDB_HOOKS_KEEP            128 /* runs remembered for HOOKS */
#define ZDB_HOOKS_TIMEOUT_DEFAULT 600 /* seconds a blocking hook may run before it is killed */
#define ZDB_HOOKS_ID_MAX          4200

/* Exit status recorded for a hook that could not be started. */
#define ZDB_HOOK_STATUS_NOSTART 127

/* One run, as HOOKS reports it. argv = {exe, event, zdbid, args..., NULL}. */
struct zdb_hook {
    char **argv;
    int argc;
    pid_t pid;       /* 0 when it could not be started */
    time_t created;  /* unix time it was started */
    time_t finished; /* 0 while running */
    int status;      /* exit status; 128 + signal when killed; 127 when not started */
};

struct zdb_hooks {
    char *exe;
    char zdbid[ZDB_HOOKS_ID_MAX];
    unsigned timeout; /* seconds, blocking hooks */
    struct zdb_hook recent[ZDB_HOOKS_KEEP];
    size_t first, count; /* ring: oldest at first */
    unsigned running;    /* non-blocking children not yet reaped */
};

/* Prepares the runner for executable exe (not checked here: a missing or non-executable
 * file shows as a hook that could not start). zdbid is `tcp://addr:port` or
 * `unix://path`; timeout in seconds (0 = ZDB_HOOKS_TIMEOUT_DEFAULT). */
int zdb_hooks_init(struct zdb_hooks *h, const char *exe, const char *zdbid,
                   unsigned timeout) QS_MUST_CHECK;

/* Replaces the zdbid passed to the hooks started from now on. */
void zdb_hooks_set_id(struct zdb_hooks *h, const char *zdbid);

/* Forgets every record. Children still running are left alone (they keep running; the
 * server is usually exiting). */
void zdb_hooks_free(struct zdb_hooks *h);

/* Runs a blocking hook and waits for it, at most h->timeout seconds (then the hook's
 * process group is killed). Returns its exit status (0..255), 128 + signal when it was
 * killed by a signal, QS_ETIMEOUT when it ran out of time, QS_EIO when it could not be
 * started. */
int zdb_hooks_run(struct zdb_hooks *h, const char *event, const char *const *args,
                  int nargs) QS_MUST_CHECK;

/* Starts a non-blocking hook; its status is collected later by zdb_hooks_reap. Failures
 * are logged and recorded, not returned. */
void zdb_hooks_start(struct zdb_hooks *h, const char *event, const char *const *args, int nargs);

/* Collects the exit status of finished non-blocking hooks (never blocks; no system call
 * when none is running). Call it from the event loop. It reaps any child (waitpid(-1)),
 * so that hooks forgotten from the list do not stay zombies: the server must have no
 * children other than hooks. */
void zdb_hooks_reap(struct zdb_hooks *h);

/* The remembered runs, oldest first: i < h->count. */
const struct zdb_hook *zdb_hooks_at(const struct zdb_hooks *h, size_t i);

/* Catches SIGSEGV and SIGABRT (and SIGBUS when sigbus is true) to start the crash hook
 * (non-blocking, best effort) before the default action ends the process. The handler
 * only uses async-signal-safe calls on data prepared here. */
int zdb_hooks_catch_crashes(struct zdb_hooks *h, bool sigbus) QS_MUST_CHECK;

/* The crash handler body, for a signal handler installed elsewhere (util/guard.h's SIGBUS
 * fallback): starts the crash hook once. Async-signal-safe. */
void zdb_hooks_crash(int sig);

#endif
