/* What the hook and the qsfs command ask of the zstor daemon: one zstor command sent over
 * the config's socket (daemon/client.h), with a time bound, and the restore of a frontend
 * from what the backends hold (docs/qsfs.md, "Restore"). */
#ifndef QSFS_QSFS_ZCALL_H
#define QSFS_QSFS_ZCALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"
#include "util/err.h"

/* Runs argv (argv[0] = the command, NULL-terminated) on the daemon; its output goes to
 * out_fd and err_fd. After timeout_s the command is cancelled. 0 with *status set;
 * QS_ENOTFOUND (no daemon listens: message says where), QS_EPROTO, QS_ETIMEOUT, QS_EIO. */
int qz_run(const struct zstor_config *cfg, int out_fd, int err_fd, unsigned timeout_s, int *status,
           char *const *argv) QS_MUST_CHECK;

/* The same with stdout captured: *out (malloc'ed, NUL-terminated, *len bytes). */
int qz_capture(const struct zstor_config *cfg, int err_fd, unsigned timeout_s, int *status,
               char **out, size_t *len, char *const *argv) QS_MUST_CHECK;

struct qz_restore {
    unsigned files;  /* retrieved */
    bool had_remote; /* the backends hold a frontend for this config */
    bool had_local;  /* a namespace was there locally already (left alone) */
};

/* For each of zdbfs-meta and zdbfs-data that has no local descriptor below index_dir:
 * retrieves its descriptor, every index file and its last data file (older data files
 * come back on demand, missing-data). log gets one line per file. 0, or the first
 * failure (message names the file). */
int qz_restore(const struct zstor_config *cfg, const char *index_dir, const char *data_dir,
               FILE *log, struct qz_restore *res) QS_MUST_CHECK;

#endif
