/* The FUSE low-level operations of zdbfs: a thin layer from libfuse3 to lib/fs. */
#ifndef QSFS_ZDBFS_OPS_H
#define QSFS_ZDBFS_OPS_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>
#include <stdbool.h>

#include "fs/fs.h"

struct zdbfs_ctx {
    struct qs_fs *fs;
    bool writeback;   /* ask the kernel for its writeback cache */
    bool keep_cache;  /* keep page cache across opens */
    double timeout_s; /* entry and attribute validity */
};

/* The operations table; userdata of the session is a struct zdbfs_ctx. */
extern const struct fuse_lowlevel_ops zdbfs_ops;

/* Read batching, per loop thread: while on, a read of up to 128 KiB is answered later, by
 * zdbfs_ops_flush_reads() or by the next read that cannot join it (another file, 16
 * held); the loop flushes before it waits and before any request other than a read. */
void zdbfs_ops_hold_reads(bool on);
bool zdbfs_ops_reads_held(void);
void zdbfs_ops_flush_reads(void);

/* _IOR('E', 0, uint64_t) and _IOR('E', 1, stats_t) of 0-db-fs. */
#define ZDBFS_IOCTL_SNAPSHOT   0x80084500u
#define ZDBFS_IOCTL_STATISTICS 0x80F04501u
#define ZDBFS_STATS_VERSION    2

#endif
