/* The qsfs command's process handling: finding the stack's programs, starting one as a
 * detached service with its output in a log file, telling whether it still runs (by pid
 * and program name, so a reused pid is not mistaken for it), stopping it, and asking the
 * local zdb and the mount whether they serve. */
#ifndef QSFS_QSFS_PROC_H
#define QSFS_QSFS_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/err.h"

/* The path of program name: beside this executable, in the build tree's
 * ../<name>/<name>, or on PATH. QS_ENOTFOUND with a message when nowhere. */
int qp_find(const char *name, char *out, size_t cap) QS_MUST_CHECK;

/* Starts argv[0] (absolute) in its own session with stdin from /dev/null and stdout and
 * stderr appended to log, at CPU priority prio (ZSTOR_QSFS_PRIO_*, 0 = ours); env entries
 * ("K=V", NULL-terminated, may be NULL) are added. The pid, or a negative code. */
pid_t qp_spawn(char *const *argv, char *const *env, const char *log, int prio);

/* Sets the calling process's CPU priority (ZSTOR_QSFS_PRIO_*); threads it starts inherit it. */
void qp_set_priority(int prio);

/* pid runs (not a zombie) and its program's name is name. */
bool qp_running(pid_t pid, const char *name);

/* The pid in file path (0 when absent or not a number); writing one. */
pid_t qp_pid_read(const char *path);
int qp_pid_write(const char *path, pid_t pid) QS_MUST_CHECK;

/* SIGTERM, then waits up to timeout_ms for pid to end; SIGKILL after that (kill9 set).
 * true when it is gone. */
bool qp_stop(pid_t pid, const char *name, int timeout_ms, bool *kill9);

/* A zdb answers PING on the unix socket path (within 2 s). */
bool qp_zdb_ping(const char *path);

/* Something is mounted on dir (from /proc/self/mountinfo). */
bool qp_mounted(const char *dir);

/* The last lines of a log file (at most cap bytes) into out, for error messages. */
void qp_log_tail(const char *log, char *out, size_t cap);

/* Bytes of the regular files below dir (not following links); 0 when it cannot be read. */
unsigned long long qp_dir_bytes(const char *dir, size_t *files);

#endif
