/* zstor's commands (store, retrieve, ..., gc), run for one caller: the command line
 * in-process (main.c) or a request the daemon got on its socket (monitor.c). Output goes
 * to the session's streams, so a command prints the same bytes either way.
 *
 * Log lines (warnings of the library, failures of the command) go through the program's
 * log handler, which hands the session's lines to zcmd_print_log; a session's thread and
 * every thread the library starts for it carry the session's log job (util/log.h).
 * Sessions may run on many threads at once (flag parsing is serialised inside).
 */
#ifndef QSFS_ZSTOR_COMMANDS_H
#define QSFS_ZSTOR_COMMANDS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/log.h"
#include "zstor/cluster.h"
#include "zstor/status.h"

#define ZCMD_EXIT_USAGE 2

extern const char zcmd_usage[];

struct zcmd_session;

/* What only the daemon does for a command (monitor.c); NULL in-process. */
struct zcmd_daemon {
    /* store --notblocking: queue file (absolute) durably. 0, or an error with message. */
    int (*queue_store)(void *ud, const char *file, const char *key_dir, bool delete_after);
    /* The backends as the last health pass saw them (malloc'ed copy, free()). */
    int (*status_rows)(void *ud, struct zstor_backend_status **rows, size_t *n);
    /* The daemon's part of `status`: queue, repairs, scrub (text or a JSON member). */
    void (*print_status)(void *ud, FILE *out, bool json);
    /* One job per file: held around a store, retrieve, rebuild or delete of key. */
    void (*lock)(void *ud, const char *key);
    void (*unlock)(void *ud, const char *key);
    /* A retrieve or scrub found damaged shards in the file keyed key: repair it. */
    void (*damaged)(void *ud, const char *key);
    /* checkpoint: a pass of the qsfs checkpoint now; with wait, its result (0 or an error
     * with message) within timeout_ms. */
    int (*checkpoint)(void *ud, bool wait, int64_t timeout_ms);
    void *ud;
};

struct zcmd_session {
    FILE *out, *err; /* the caller's stdout and stderr */
    bool tty;        /* err is a terminal: progress lines */
    bool debug;      /* -d: debug lines too */
    const atomic_int *cancel;
    uint64_t job;   /* log job of the session (set on its thread by zcmd_run) */
    uint64_t bytes; /* after a store or retrieve: the file bytes it moved */
    /* in-process: the config is loaded per command */
    const char *config_path;
    /* daemon: jobs run on this cluster */
    struct zstor_cluster *cluster;
    const struct zcmd_daemon *daemon;
    /* internal */
    pthread_mutex_t mu;
    bool progress_shown;
    char what[256];
    double start, last;
    bool opt_locked;
};

/* Initialises s for out/err (NULL fields may be set afterwards). */
void zcmd_session_init(struct zcmd_session *s, FILE *out, FILE *err, const atomic_int *cancel);
void zcmd_session_destroy(struct zcmd_session *s);

/* Runs argv[0] (a command name) with its flags; the exit status (0, 1, ZCMD_EXIT_USAGE).
 * Sets the calling thread's log job to s->job. */
int zcmd_run(struct zcmd_session *s, int argc, char **argv);

/* Writes a log line of s as the command line shows it ("zstor: warning: ..."; errors
 * "zstor: ..."), clearing a progress line first; debug lines only when s->debug, info
 * lines never (they go to the log file only). */
void zcmd_print_log(struct zcmd_session *s, enum qs_log_level level, const char *msg);

#endif
