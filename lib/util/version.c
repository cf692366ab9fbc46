/* Version strings (version.h); the commit comes from a header the build writes. */
#include "util/version.h"

#include "qsfs_commit.h"

const char *qs_version(void)
{
    return QSFS_VERSION;
}

const char *qs_git_commit(void)
{
    return QSFS_GIT_COMMIT;
}
