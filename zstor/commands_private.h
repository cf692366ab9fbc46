/* What zstor's command files share: commands.c (the session, output, usage, the data
 * commands, dispatch) and commands_info.c (list, status, test, checkpoint, evict). */
#ifndef QSFS_ZSTOR_COMMANDS_PRIVATE_H
#define QSFS_ZSTOR_COMMANDS_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "commands.h"
#include "util/err.h"
#include "zstor/zstor.h"

#define EXIT_USAGE ZCMD_EXIT_USAGE

/* The session the calling thread runs a command for (set by zcmd_run): the printers write
 * to its streams. */
extern _Thread_local struct zcmd_session *zc_s;
#define OUT (zc_s->out)

struct cmd_ctx {
    const struct zstor_config *cfg;
    struct zstor_config *owned; /* in-process: loaded for this command */
    struct zstor_ctx *z;
};

/* Drops the flag-parsing lock once a command has read its flags. */
void zc_opt_unlock(void);
/* A failure line on the session's stderr (the log handler's format). */
void zc_report(const char *fmt, ...) QS_PRINTF(1, 2);
/* A usage mistake: the line, then exit status EXIT_USAGE. */
int zc_usage_error(const char *fmt, ...) QS_PRINTF(1, 2);
/* An unknown flag or a missing value of cmd: a usage error naming it. */
int zc_flag_error(const char *cmd, int ch, char **argv);
/* The command's context: the daemon's cluster, or the config loaded in-process (writes:
 * dir:// shares may be created). 0, or 1 with the failure reported. */
int zc_open_ctx(struct cmd_ctx *c, bool writes);
void zc_print_hex(const uint8_t *p, size_t n);
void zc_report_not_a_file(struct cmd_ctx *c, const char *what, const char *file);

int cmd_list(struct cmd_ctx *c, int argc, char **argv);
int cmd_status(struct cmd_ctx *c, int argc, char **argv);
int cmd_test(struct cmd_ctx *c, int argc, char **argv);
int cmd_checkpoint(struct cmd_ctx *c, int argc, char **argv);
int cmd_evict(struct cmd_ctx *c, int argc, char **argv);

#endif
