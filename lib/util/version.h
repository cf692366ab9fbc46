/* The version of qsfs and the git commit a binary was built from (`--version`). */
#ifndef QSFS_UTIL_VERSION_H
#define QSFS_UTIL_VERSION_H

const char *qs_version(void);    /* "0.1.0" */
const char *qs_git_commit(void); /* 12 hex digits, "-dirty" when built with changes; or "unknown" */

#endif
