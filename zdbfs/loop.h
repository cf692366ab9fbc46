/* zdbfs's multi-threaded FUSE request loop.
 *
 * Readers wait in poll() on a non-blocking device instead of a blocking read(): a
 * request wakes every idle reader, and the first one to run (often one on the CPU of the
 * process that made the request) takes it; the others find the device empty and wait
 * again. On this machine, where waking a thread on another CPU is slow (a pipe round
 * trip between two processes: 72 us across CPUs, 3 us on one), this took a trivial
 * request from 75 us to 19 us and the untar of 10,000 files from 8.8 s to 3.0 s,
 * compared with libfuse's fuse_session_loop_mt. Optionally (spin_us) one reader at a
 * time polls without sleeping for a while after each request. */
#ifndef QSFS_ZDBFS_LOOP_H
#define QSFS_ZDBFS_LOOP_H

#include "ops.h"

/* Runs until the session exits; returns 0 or a negative errno. */
/* batch_reads: reads that wait together fetch their blocks in one batch (ops.h). */
int zdbfs_loop(struct fuse_session *se, unsigned threads, unsigned spin_us, bool batch_reads);

#endif
