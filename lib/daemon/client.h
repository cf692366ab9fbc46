/* The command line's side of the daemon socket: forward one command to a running
 * daemon (docs/zstor-daemon.md, "Socket").
 *
 * The request carries the caller's stdout and stderr (out_fd, err_fd), which the daemon
 * writes the command's output to, so the output is what the command prints in-process.
 * While it runs, a set *cancel (Ctrl-C) sends CANCEL once; the daemon stops the command
 * as an in-process one stops. Not thread-safe (one call at a time per process is enough).
 */
#ifndef QSFS_DAEMON_CLIENT_H
#define QSFS_DAEMON_CLIENT_H

#include <stdatomic.h>

#include "util/err.h"

/* Runs argv (argv[0] = the command) on the daemon at socket_path with flags (proto.h
 * ZSD_REQ_*). 0 with *status set to the command's exit status; QS_ENOTFOUND when no
 * daemon listens there (no socket file, or nobody accepts: run in-process); QS_EPROTO
 * (not a zstor daemon, another version, or it closed the connection before the status),
 * QS_ETIMEOUT (no hello within 10 s), QS_EIO, QS_EINVAL (arguments too long). */
int zsd_client_run(const char *socket_path, int argc, char *const *argv, unsigned flags, int out_fd,
                   int err_fd, const atomic_int *cancel, int *status) QS_MUST_CHECK;

#endif
