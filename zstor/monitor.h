/* zstor monitor: runs the daemon in the foreground until SIGTERM, SIGINT or SIGHUP
 * (SIGUSR1 reloads the config). Logs to stderr, or appends to log_file. The exit status. */
#ifndef QSFS_ZSTOR_MONITOR_H
#define QSFS_ZSTOR_MONITOR_H

#include <stdbool.h>

int zmon_run(const char *config_path, bool debug, const char *log_file);

#endif
