/* The zstor daemon's socket protocol (docs/zstor-daemon.md, "Socket protocol").
 *
 * Only our CLI talks to the daemon, so the framing is ours (0-stor_v2's bincode is not
 * kept). A connection starts with a hello from each side (ZSD_HELLO: magic "QSZD",
 * version, 3 reserved bytes); then the client sends one request and the daemon answers
 * with output frames and one exit frame, and closes.
 *
 * Frame: u8 type, u32 little-endian payload length (at most ZSD_FRAME_MAX), payload.
 *   REQ    (client): u32 argc, argc x (u32 length, bytes), u32 length + cwd, u8 flags;
 *                    sent with the client's stdout and stderr as SCM_RIGHTS descriptors,
 *                    which the daemon writes the command's output to
 *   OUT    (daemon): bytes for the client's stdout (reserved)
 *   ERR    (daemon): bytes for the client's stderr (reserved)
 *   EXIT   (daemon): u8 exit status
 *   CANCEL (client): empty; the user interrupted the command (a hang-up means the same)
 * Strings are bytes without NUL.
 */
#ifndef QSFS_DAEMON_PROTO_H
#define QSFS_DAEMON_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

#define ZSD_HELLO       "QSZD\x01\0\0\0"
#define ZSD_HELLO_LEN   8u
#define ZSD_FRAME_HDR   5u
#define ZSD_FRAME_MAX   (1u << 20) /* payload bytes */
#define ZSD_ARGC_MAX    64u
#define ZSD_ARG_MAX     4096u
#define ZSD_REQ_TTY_ERR 0x01u /* the client's stderr is a terminal (progress wanted) */
#define ZSD_REQ_DEBUG   0x02u /* -d: debug lines wanted */
/* the largest REQ payload zsd_req_append makes */
#define ZSD_REQ_MAX (4u + (ZSD_ARGC_MAX + 1u) * (4u + ZSD_ARG_MAX) + 1u)

enum zsd_type { ZSD_REQ = 1, ZSD_OUT = 2, ZSD_ERR = 3, ZSD_EXIT = 4, ZSD_CANCEL = 5 };

struct zsd_req {
    int argc;
    char **argv; /* argc strings + NULL */
    char *cwd;
    unsigned flags;
};

void zsd_req_free(struct zsd_req *r);

/* Appends a frame to out. QS_EINVAL when len > ZSD_FRAME_MAX, QS_ENOMEM/QS_EFULL from
 * the buffer. */
int zsd_frame_append(struct qs_buf *out, enum zsd_type type, const void *p,
                     size_t len) QS_MUST_CHECK;

/* Appends a REQ frame for argv/cwd/flags. QS_EINVAL when an argument is too long or there
 * are too many. */
int zsd_req_append(struct qs_buf *out, int argc, char *const *argv, const char *cwd,
                   unsigned flags) QS_MUST_CHECK;

/* Looks for one whole frame at the start of p[0..n): 0 with type, payload, len and used set when
 * there is one, QS_EAGAIN when more bytes are needed, QS_EPROTO for a bad type or an
 * oversized length. */
int zsd_frame_next(const uint8_t *p, size_t n, enum zsd_type *type, const uint8_t **payload,
                   size_t *len, size_t *used) QS_MUST_CHECK;

/* Decodes a REQ payload into *r (free with zsd_req_free). QS_EPROTO when malformed. */
int zsd_req_decode(const uint8_t *p, size_t n, struct zsd_req *r) QS_MUST_CHECK;

/* Checks a peer's hello: 0, or QS_EPROTO naming what is wrong (not zstor, another version). */
int zsd_hello_check(const uint8_t *p) QS_MUST_CHECK;

#endif
