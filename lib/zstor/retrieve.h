/* zstor retrieve and scrub: read a stored file back from its shards.
 *
 * Shards are fetched in parallel, the healthiest backends first; a shard that is
 * missing, corrupt (checked against its own CRC and the metadata's) or slow is replaced
 * by another one, and every bad shard is reported (util/log.h, warning level) with its
 * position and backend. The output is written to a temporary file next to the
 * destination, checked against the stored BLAKE2b-128, synced and renamed into place,
 * with the stored mode and mtime.
 */
#ifndef QSFS_ZSTOR_RETRIEVE_H
#define QSFS_ZSTOR_RETRIEVE_H

#include <stdint.h>

#include "codec/codec.h"
#include "zstor/zstor.h"

struct zstor_retrieve_opts {
    const char *out; /* destination file; NULL = the stored path itself */
    int out_fd;      /* >= 0: write to this descriptor instead (stdout), no rename */
};

struct zstor_retrieve_result {
    uint64_t files, bytes;
    unsigned bad_shards;               /* shard positions found missing, corrupt or unavailable */
    uint64_t bad[QS_CODEC_MAX_SHARDS]; /* of the last file: chunks with a bad shard, per position */
};

/* Retrieves the file stored as path (keyed as zstor_path_key does). When nothing is
 * stored under path itself, or path is root, every stored file below it (a stored
 * directory) is retrieved to its own path, or with out set to out/<path below the
 * directory> (out_fd: QS_EINVAL, one stream holds one file). Errors: QS_ENOTFOUND
 * (nothing stored), QS_EDENIED (wrong meta or data key), QS_ETOOFEW (not enough shards
 * or meta pieces), QS_ECORRUPT (the data does not authenticate or match its checksum),
 * QS_EIO. */
int zstor_retrieve(struct zstor_ctx *z, const char *path, const struct zstor_retrieve_opts *o,
                   struct zstor_retrieve_result *res) QS_MUST_CHECK;

struct zstor_scrub_result {
    unsigned nshards;
    uint64_t chunks;
    uint64_t bad[QS_CODEC_MAX_SHARDS];     /* chunks whose shard is corrupt */
    uint64_t missing[QS_CODEC_MAX_SHARDS]; /* chunks whose shard is missing or unavailable */
};

/* Reads every shard of the file stored as path and verifies all of them (header, CRC,
 * and the Reed-Solomon parity against the decoded data). 0 when the file decodes; res
 * says which shards are damaged (0 everywhere: fully healthy). */
int zstor_scrub(struct zstor_ctx *z, const char *path,
                struct zstor_scrub_result *res) QS_MUST_CHECK;

#endif
