/* The zstor daemon's socket server (docs/zstor-daemon.md, "Socket").
 *
 * zsd_server_start takes the daemon's instance lock (`<socket>.lock`, flock: a second
 * daemon on the same socket is refused with QS_EBUSY naming the first one's pid; a lock
 * left by a killed daemon is free again, so kill -9 never blocks a restart), replaces a
 * stale socket file, listens (mode 0600), writes the pid file, and serves on a thread of
 * its own. Each connection gets the daemon's hello, must send its own and one request
 * (proto.h) with its stdout and stderr attached within req_timeout_ms, and must be the
 * daemon's own user or root. A request runs on a thread of its own with the client's
 * working directory (a per-thread one: unshare(CLONE_FS)), at most max_running at once
 * (the others wait, in order); the handler's status goes back in an EXIT frame. A CANCEL
 * frame or a hang-up sets the call's cancel flag. Refused connections (too many, bad
 * user, bad request) get an ERR frame saying why, then EXIT 1. Malformed input never
 * stops the server.
 */
#ifndef QSFS_DAEMON_SERVER_H
#define QSFS_DAEMON_SERVER_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/proto.h"
#include "util/err.h"

struct zsd_call {
    uint64_t id;        /* 1, 2, ... */
    struct zsd_req req; /* argv[0] is the command */
    int out_fd, err_fd; /* the client's stdout and stderr (the server closes them) */
    uid_t uid;
    pid_t pid;
    atomic_int cancel; /* the client cancelled or went away */
};

/* Runs call on its own thread; returns the exit status (0..255). */
typedef int (*zsd_handler_fn)(void *ud, struct zsd_call *call);

struct zsd_server_opts {
    const char *socket_path;
    const char *pid_file;    /* or NULL */
    unsigned max_conns;      /* open connections; 0 = 1024 */
    unsigned max_running;    /* requests running at once; 0 = 32 */
    unsigned req_timeout_ms; /* to receive the request; 0 = 10000 */
    zsd_handler_fn handler;
    void *ud;
};

struct zsd_server;

struct zsd_server_stats {
    uint64_t accepted, calls, refused, bad_requests, timeouts;
    unsigned open, running, waiting;
};

/* QS_EBUSY (another daemon), QS_EIO (lock, socket, bind, pid file), QS_ENOMEM. */
int zsd_server_start(struct zsd_server **out, const struct zsd_server_opts *o) QS_MUST_CHECK;

/* Stops accepting, cancels the running calls and waits for them, removes the socket and
 * the pid file and releases the lock. NULL is fine. */
void zsd_server_stop(struct zsd_server *s);

void zsd_server_stats(struct zsd_server *s, struct zsd_server_stats *st);

#endif
