/* A blocking client for one zdb (or original 0-db) namespace, on hiredis.
 *
 * hiredis does the connecting (host names, IPv4, IPv6, unix sockets, connect timeout) and
 * parses the replies; this module owns the socket after that: every exchange is
 * non-blocking with poll() so that a request has a real deadline, and a pipelined batch
 * writes and reads at the same time (no deadlock however large the batch).
 *
 * A struct qs_zdb is one connection to one namespace. It connects lazily (first request)
 * and SELECTs its namespace once per connection. Transport failures (refused, reset,
 * closed, timeout) are retried with exponential backoff, on a fresh connection, a bounded
 * number of times; protocol errors and error replies are not. Every failure message names
 * the backend ("zdb 10.0.0.1:9900/ns"), the command, and why.
 *
 * Not thread-safe: one thread uses a struct qs_zdb at a time (open several for parallel
 * I/O). The library holds no global state, and writes use MSG_NOSIGNAL: it never raises
 * SIGPIPE.
 */
#ifndef QSFS_ZDBCLIENT_ZDBCLIENT_H
#define QSFS_ZDBCLIENT_ZDBCLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define QS_ZDB_MAX_VALUE (8u * 1024 * 1024) /* largest value zdb and 0-db accept */
#define QS_ZDB_MAX_KEY   255u               /* largest user-mode key */
#define QS_ZDB_ID_LEN    8u                 /* sequential-mode key: little-endian u64 */

/* ---- addresses ---- */

/* A parsed backend address. */
struct qs_zdb_addr {
    bool is_unix;
    char host[256]; /* host name or IP literal without brackets (TCP) */
    unsigned port;  /* 1..65535 (TCP) */
    char path[108]; /* socket path (unix) */
};

/* Parses "host:port", "ipv4:port", "[ipv6]:port" or "unix:///path/to.sock".
 * A bare IPv6 address must be bracketed. QS_EINVAL with a message naming the address. */
int qs_zdb_addr_parse(const char *address, struct qs_zdb_addr *out) QS_MUST_CHECK;

/* ---- connection ---- */

struct qs_zdb_opts {
    const char *address;         /* see qs_zdb_addr_parse */
    const char *ns;              /* namespace; NULL or "" = stay in "default" */
    const char *password;        /* namespace password; NULL or "" = none */
    bool secure;                 /* SELECT ns SECURE sha1(challenge:password) */
    unsigned connect_timeout_ms; /* default 3000 */
    unsigned request_timeout_ms; /* default 10000: no progress for this long fails */
    unsigned attempts;           /* tries per call on transport failure, default 3 */
    unsigned backoff_ms;         /* delay before the first retry, default 100, doubles */
    unsigned backoff_max_ms;     /* cap of the delay, default 2000 */
    size_t max_value;            /* values (and replies) larger fail; default 8 MiB */
};

/* Fills o with the defaults above and NULL strings. */
void qs_zdb_opts_default(struct qs_zdb_opts *o);

struct qs_zdb;

/* Creates a client (no I/O yet). Strings are copied; the password is wiped at free.
 * QS_EINVAL for a bad address or option, QS_ENOMEM. */
int qs_zdb_new(struct qs_zdb **out, const struct qs_zdb_opts *o) QS_MUST_CHECK;

/* Closes the connection (if any) and frees c. NULL is a no-op. */
void qs_zdb_free(struct qs_zdb *c);

/* "zdb <address>/<namespace>", for messages. Valid while c lives. */
const char *qs_zdb_name(const struct qs_zdb *c);

/* The largest value c accepts (opts.max_value). Callers split larger values. */
size_t qs_zdb_max_value(const struct qs_zdb *c);

/* Connects and SELECTs now if not connected (with retries). Errors as for requests. */
int qs_zdb_connect(struct qs_zdb *c) QS_MUST_CHECK;

/* Drops the connection; the next request reconnects. */
void qs_zdb_disconnect(struct qs_zdb *c);

bool qs_zdb_connected(const struct qs_zdb *c);

/* Limits for the calls that follow (until changed): a deadline (CLOCK_MONOTONIC ms, as
 * util/sys.h qs_now_ms; 0 = none) that no exchange, retry wait or connect outlives
 * (QS_ETIMEOUT "the call's deadline passed"), and a cancel flag (NULL = none) looked at
 * at least every 50 ms while a call waits (QS_EAGAIN "cancelled"; a connect in progress
 * finishes within its connect timeout first; requests already sent get 2 s to be
 * answered, so that the caller learns what was written). A call stopped mid-exchange
 * drops the connection (its replies would be out of step). */
void qs_zdb_set_limits(struct qs_zdb *c, int64_t deadline_ms, const atomic_int *cancel);

/* Per-connection counters for health scoring (monotonic; survive reconnects). */
struct qs_zdb_stats {
    uint64_t requests;      /* commands that got a reply (error replies included) */
    uint64_t error_replies; /* replies that were -errors (other than not found) */
    uint64_t failures;      /* transport or protocol failures (each attempt) */
    uint64_t reconnects;    /* connections made after the first */
    uint64_t consecutive;   /* failed calls in a row (0 after any success) */
    uint64_t last_us;       /* latency of the last exchange: send to first reply */
    uint64_t avg_us;        /* exponentially smoothed latency (weight 1/8) */
};
void qs_zdb_stats(const struct qs_zdb *c, struct qs_zdb_stats *out);

/* ---- replies and generic commands ---- */

enum qs_zdb_rtype {
    QS_ZDB_R_STRING = 1, /* bulk */
    QS_ZDB_R_ARRAY = 2,
    QS_ZDB_R_INTEGER = 3,
    QS_ZDB_R_NIL = 4,
    QS_ZDB_R_STATUS = 5,
    QS_ZDB_R_ERROR = 6,
};

struct qs_zdb_reply {
    enum qs_zdb_rtype type;
    long long integer;
    size_t len;
    char *str; /* STRING/STATUS/ERROR: len bytes + a NUL; malloc'd */
    size_t elements;
    struct qs_zdb_reply **element;
};

void qs_zdb_reply_free(struct qs_zdb_reply *r);

/* Sends one command (argv[i] of argvlen[i] bytes) and returns its raw reply in *out
 * (caller frees with qs_zdb_reply_free), error replies included: the call itself fails
 * only on transport or protocol errors. For tests and admin commands (NSNEW, NSSET...). */
int qs_zdb_command(struct qs_zdb *c, int argc, const char *const *argv, const size_t *argvlen,
                   struct qs_zdb_reply **out) QS_MUST_CHECK;

/* Maps a server error text ("No space left on this namespace", ...) to a QS_E* code. */
int qs_zdb_error_code(const char *text, size_t len);

/* ---- pipelined batches ---- */

enum qs_zdb_opkind { QS_ZDB_SET, QS_ZDB_GET, QS_ZDB_DEL };

/* One request of a batch. Inputs are borrowed for the call. */
struct qs_zdb_op {
    enum qs_zdb_opkind kind;
    const void *key; /* SET in a sequential ns: key_len 0 appends; GET/DEL need a key */
    size_t key_len;
    const void *val; /* SET only */
    size_t val_len;
    /* results */
    int result;     /* 0, QS_ENOTFOUND (GET nil, DEL missing), QS_EFULL, QS_EDENIED, ... */
    uint8_t *reply; /* GET: the value; SET: the key the server returned (8-byte id in seq
                       mode; NULL when a user-mode SET was a no-op). malloc'd + NUL, caller
                       frees with free() */
    size_t reply_len;
};

/* Sends every op, then reads every reply (pipelined; writing and reading overlap).
 * Each op gets its result (ops left without a reply get the batch's transport error).
 * Returns 0 when every result is 0, else the first non-zero
 * result (with its message set), or a transport/protocol error when the batch could not
 * be completed within the retry budget; on a retry only the ops without a reply yet are
 * sent again (a sequential SET whose reply was lost may thus leave one orphan entry).
 * Values over max_value fail with QS_EINVAL before anything is sent. */
int qs_zdb_batch(struct qs_zdb *c, struct qs_zdb_op *ops, size_t n) QS_MUST_CHECK;

/* ---- helpers ---- */

/* Sequential namespace: appends val, writes the new 8-byte id to id. */
int qs_zdb_seq_set(struct qs_zdb *c, const void *val, size_t len,
                   uint8_t id[QS_ZDB_ID_LEN]) QS_MUST_CHECK;
/* Sequential GET/DEL by id. GET: *val malloc'd (free()); QS_ENOTFOUND when missing. */
int qs_zdb_seq_get(struct qs_zdb *c, const uint8_t id[QS_ZDB_ID_LEN], uint8_t **val,
                   size_t *len) QS_MUST_CHECK;
int qs_zdb_seq_del(struct qs_zdb *c, const uint8_t id[QS_ZDB_ID_LEN]) QS_MUST_CHECK;

/* User-mode namespace: SET (an identical existing value counts as success), GET (*val
 * malloc'd, QS_ENOTFOUND when missing), DEL (QS_ENOTFOUND when missing). */
int qs_zdb_user_set(struct qs_zdb *c, const void *key, size_t klen, const void *val,
                    size_t len) QS_MUST_CHECK;
int qs_zdb_user_get(struct qs_zdb *c, const void *key, size_t klen, uint8_t **val,
                    size_t *len) QS_MUST_CHECK;
int qs_zdb_user_del(struct qs_zdb *c, const void *key, size_t klen) QS_MUST_CHECK;

/* PING. */
int qs_zdb_ping(struct qs_zdb *c) QS_MUST_CHECK;

/* ---- NSINFO ---- */

enum qs_zdb_mode { QS_ZDB_MODE_UNKNOWN = 0, QS_ZDB_MODE_USER, QS_ZDB_MODE_SEQ };

#define QS_ZDB_UNKNOWN UINT64_MAX /* a counter the server did not report */

struct qs_zdb_nsinfo {
    char name[129];
    enum qs_zdb_mode mode; /* from "mode: userkey" / "mode: sequential" */
    bool public_, worm, locked, password;
    uint64_t entries;
    uint64_t data_size_bytes;
    uint64_t data_limits_bytes; /* 0 = no limit */
    uint64_t index_size_bytes;
    uint64_t index_disk_freespace_bytes;                /* QS_ZDB_UNKNOWN when not reported */
    uint64_t data_disk_freespace_bytes;                 /* idem */
    uint64_t stats_index_io_errors, stats_index_faults; /* idem */
    uint64_t stats_data_io_errors, stats_data_faults;   /* idem */
};

/* Parses NSINFO text. Unknown lines are ignored (newer servers add some); "entries" and
 * "data_size_bytes" are required; a known field with a bad number is QS_EPROTO. */
int qs_zdb_nsinfo_parse(const char *text, size_t len, struct qs_zdb_nsinfo *out) QS_MUST_CHECK;

/* Bytes that can still be written: min(limit - used, data disk free, index disk free),
 * ignoring what is unknown or unlimited; QS_ZDB_UNKNOWN when nothing bounds it. */
uint64_t qs_zdb_nsinfo_free(const struct qs_zdb_nsinfo *i);

/* NSINFO of c's namespace. QS_EPROTO when the reply does not parse. */
int qs_zdb_nsinfo(struct qs_zdb *c, struct qs_zdb_nsinfo *out) QS_MUST_CHECK;

/* NSINFO, then QS_EINVAL ("... is in userkey mode, sequential needed") unless the
 * namespace is in the given mode. A server without a mode line passes for USER only. */
int qs_zdb_check_mode(struct qs_zdb *c, enum qs_zdb_mode want,
                      struct qs_zdb_nsinfo *info) QS_MUST_CHECK;

#endif
