/* One error convention for every qsfs library.
 *
 * Fallible functions return int: 0 on success, a negative QS_E* code on failure.
 * Where the failure happens, qs_err_set() records a one-line, thread-local message
 * that says what failed and where; callers read it with qs_err_msg().
 */
#ifndef QSFS_UTIL_ERR_H
#define QSFS_UTIL_ERR_H

#define QS_MUST_CHECK   __attribute__((warn_unused_result))
#define QS_PRINTF(a, b) __attribute__((format(printf, a, b)))

enum qs_err {
    QS_OK = 0,
    QS_ENOMEM = -1,    /* allocation failed or a hard size limit was hit */
    QS_EIO = -2,       /* an OS call on a file or socket failed */
    QS_ECORRUPT = -3,  /* stored or received bytes fail a check */
    QS_ENOTFOUND = -4, /* the thing asked for does not exist */
    QS_EPROTO = -5,    /* the peer broke the protocol */
    QS_EINVAL = -6,    /* bad argument or bad input from a user */
    QS_ETOOFEW = -7,   /* not enough good shards / replicas */
    QS_EFULL = -8,     /* no space left (namespace limit or disk) */
    QS_EDENIED = -9,   /* permission or authentication refused */
    QS_EEXIST = -10,   /* already exists */
    QS_EBUSY = -11,    /* in use / locked */
    QS_EAGAIN = -12,   /* need more input; try again later */
    QS_ETIMEOUT = -13, /* a deadline passed */
    /* the zdb store's write path (answered with 0-db's error strings) */
    QS_EWRITE_DATA = -100,  /* appending to a data file failed: "Cannot write data right now" */
    QS_EWRITE_INDEX = -101, /* writing an index file failed: "Cannot write index right now" */
    QS_ESEQKEY = -102,      /* sequential mode: a key that is not an existing id */
    QS_EDISKFULL = -103,    /* the disk under a namespace is full (not its size limit) */
};

/* Records a formatted message for this thread and returns code (so callers write
 * `return qs_err_set(QS_EIO, "open %s: %s", path, strerror(errno));`). */
int qs_err_set(int code, const char *fmt, ...) QS_PRINTF(2, 3);

/* Same, appending ": <strerror(errnum)>" to the message. */
int qs_err_sys(int code, int errnum, const char *fmt, ...) QS_PRINTF(3, 4);

/* The last message set on this thread ("" if none). Valid until the next qs_err_set. */
const char *qs_err_msg(void);

/* Short constant name of a code ("I/O error", "corrupt data", ...). */
const char *qs_err_name(int code);

/* Clears this thread's message. */
void qs_err_clear(void);

#endif
