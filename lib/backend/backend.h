/* Backends: where shards and metadata pieces are stored.
 *
 * One interface, two kinds:
 * - zdb (lib/zdbclient): "host:port", "[ipv6]:port", "unix:///path". Data backends are
 *   sequential-mode namespaces (a stored value gets the 8-byte id zdb assigns as its
 *   key); metadata backends are user-mode namespaces (values stored under names).
 * - dir: "dir:///path", a share directory holding values as files (docs/backends.md
 *   describes the layout). A stored value gets a random 16-byte key, its file name.
 *
 * A struct qs_backend does no I/O when opened: it connects (zdb) or attaches to its
 * directory (dir) on first use, checks the namespace mode / the directory marker once,
 * and reconnects or re-attaches after failures. Every error message names the backend.
 * One thread at a time per struct qs_backend; open several for parallel I/O.
 */
#ifndef QSFS_BACKEND_BACKEND_H
#define QSFS_BACKEND_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "zdbclient/pool.h"
#include "zdbclient/zdbclient.h"

#define QS_BACKEND_KEY_MAX       32u
#define QS_BACKEND_DIR_KEY_LEN   16u
#define QS_BACKEND_DIR_MAX_VALUE (256u * 1024 * 1024)
#define QS_BACKEND_NAME_MAX      200u /* longest name for the *_named functions */
#define QS_BACKEND_UNKNOWN       UINT64_MAX

enum qs_backend_kind { QS_BACKEND_ZDB = 1, QS_BACKEND_DIR = 2 };

enum qs_backend_role {
    QS_BACKEND_DATA = 0, /* shards: put/get/del by backend-chosen keys */
    QS_BACKEND_META = 1, /* metadata: set/get/del_named by caller-chosen names */
};

/* An opaque key as returned by put: 8 bytes (zdb) or 16 bytes (dir). */
struct qs_backend_key {
    uint8_t len;
    uint8_t b[QS_BACKEND_KEY_MAX];
};

struct qs_backend_opts {
    const char *address; /* see the top of this file */
    enum qs_backend_role role;
    const char *ns;       /* zdb: namespace */
    const char *password; /* zdb: namespace password, NULL = none */
    bool secure;          /* zdb: SELECT with SECURE */
    unsigned connect_timeout_ms, request_timeout_ms, attempts, backoff_ms; /* 0 = default */
    bool dir_nosync;           /* dir: skip fsync (tests, benchmarks, tmpfs) */
    bool dir_nocreate;         /* dir: never initialise a new share directory */
    const char *dir_expect_id; /* dir: refuse a share directory with another id (32 hex) */
    struct qs_zdb_pool *pool;  /* zdb: borrow a connection of this pool (which must outlive
                                  the backend, and be for the same address, namespace and
                                  password) for each call instead of owning one */
};

/* Zeroes o (defaults everywhere, role DATA). */
void qs_backend_opts_default(struct qs_backend_opts *o);

struct qs_backend;

/* Creates a backend from o (strings are copied). No I/O. QS_EINVAL for a bad address or
 * option, QS_ENOMEM. */
int qs_backend_open(struct qs_backend **out, const struct qs_backend_opts *o) QS_MUST_CHECK;
void qs_backend_free(struct qs_backend *b);

enum qs_backend_kind qs_backend_kind(const struct qs_backend *b);
enum qs_backend_role qs_backend_role(const struct qs_backend *b);
/* "zdb ADDRESS/NS" or "dir PATH", for messages. */
const char *qs_backend_name(const struct qs_backend *b);
/* The largest value put/set accept; callers split larger values. */
size_t qs_backend_max_value(const struct qs_backend *b);

/* Lower-case hex of a key into out (2 * QS_BACKEND_KEY_MAX + 1 bytes). */
void qs_backend_key_hex(const struct qs_backend_key *k, char *out);

/* ---- data role ---- */

/* Stores val, writes its new key to *key. QS_EFULL when the backend is full, QS_EINVAL
 * when len > max_value or the role is META, transport errors as QS_EIO / QS_ETIMEOUT. */
int qs_backend_put(struct qs_backend *b, const void *val, size_t len,
                   struct qs_backend_key *key) QS_MUST_CHECK;

/* Fetches the value of key: *val malloc'd (caller free()s). QS_ENOTFOUND when missing,
 * QS_EINVAL for a key of the wrong length. */
int qs_backend_get(struct qs_backend *b, const struct qs_backend_key *key, uint8_t **val,
                   size_t *len) QS_MUST_CHECK;

/* Deletes key. QS_ENOTFOUND when missing. */
int qs_backend_del(struct qs_backend *b, const struct qs_backend_key *key) QS_MUST_CHECK;

enum qs_backend_opkind { QS_BACKEND_PUT, QS_BACKEND_GET, QS_BACKEND_DEL };

struct qs_backend_op {
    enum qs_backend_opkind kind;
    struct qs_backend_key key; /* GET/DEL: input; PUT: output */
    const void *val;           /* PUT: borrowed for the call */
    size_t len;
    int result;    /* per-op result, as for the single calls */
    uint8_t *data; /* GET: the value (malloc'd, caller frees), else NULL */
    size_t data_len;
};

/* Runs every op (zdb: one pipelined round trip). Returns 0 when every result is 0, else
 * the first non-zero result with its message, or a transport error for the batch. */
int qs_backend_batch(struct qs_backend *b, struct qs_backend_op *ops, size_t n) QS_MUST_CHECK;

/* ---- meta role: values under caller-chosen names (1..QS_BACKEND_NAME_MAX bytes) ---- */

int qs_backend_set_named(struct qs_backend *b, const char *name, const void *val,
                         size_t len) QS_MUST_CHECK;
/* *val malloc'd; QS_ENOTFOUND when missing. */
int qs_backend_get_named(struct qs_backend *b, const char *name, uint8_t **val,
                         size_t *len) QS_MUST_CHECK;
/* QS_ENOTFOUND when missing. */
int qs_backend_del_named(struct qs_backend *b, const char *name) QS_MUST_CHECK;

/* Called once per stored name (name[0..len), not NUL-terminated: zdb keys are bytes).
 * Returns 0 to go on, or a negative code that stops the listing and is returned. */
typedef int (*qs_backend_name_fn)(void *ud, const char *name, size_t len);

/* Lists the stored names that start with prefix (NULL or "" = all), in no particular
 * order (zdb: SCAN, in append order; dir: the files of named/). QS_EINVAL with "listing
 * names is not supported" when a zdb server has no SCAN, QS_EPROTO for a reply that is
 * not a SCAN reply, transport errors as for the other calls. */
int qs_backend_list_named(struct qs_backend *b, const char *prefix, qs_backend_name_fn fn,
                          void *ud) QS_MUST_CHECK;

/* ---- listing and history (garbage collection, concurrent writers) ---- */

/* Called once per stored value of a data backend: its key, its size and when it was
 * written (seconds since the epoch; 0 when unknown). Returns 0 to go on, or a negative
 * code that stops the listing and is returned. */
typedef int (*qs_backend_key_fn)(void *ud, const struct qs_backend_key *key, uint64_t len,
                                 int64_t written);

/* Lists every value of a data backend (zdb: SCAN, dir: the files of data/). Errors as
 * qs_backend_list_named. */
int qs_backend_list_keys(struct qs_backend *b, qs_backend_key_fn fn, void *ud) QS_MUST_CHECK;

/* Called per version of a name, newest first. */
typedef int (*qs_backend_version_fn)(void *ud, const uint8_t *val, size_t len);

/* The versions a name held on a zdb meta backend (HISTORY), newest first, at most max.
 * QS_ENOTFOUND when the name has none; QS_EINVAL for a dir backend ("keeps no history"). */
int qs_backend_history_named(struct qs_backend *b, const char *name, unsigned max,
                             qs_backend_version_fn fn, void *ud) QS_MUST_CHECK;

/* A cancel flag every later request of b looks at while it waits (zdb: at least every
 * 50 ms, qs_zdb_set_limits; dir: local calls, not waited on). NULL removes it. Set it only
 * while no thread is in a call on b. */
void qs_backend_set_cancel(struct qs_backend *b, const atomic_int *cancel);

/* ---- health ---- */

struct qs_backend_health {
    bool reachable;       /* answered and is what the role needs (mode, marker) */
    uint64_t free_bytes;  /* what can still be written; QS_BACKEND_UNKNOWN if unbounded */
    uint64_t used_bytes;  /* zdb data_size_bytes; dir: QS_BACKEND_UNKNOWN */
    uint64_t limit_bytes; /* zdb data_limits_bytes (0 = none); dir: 0 */
    uint64_t entries;     /* zdb entries; dir: QS_BACKEND_UNKNOWN */
    uint64_t latency_us;  /* smoothed latency of recent requests (0 = unknown) */
    double error_rate;    /* recent fraction of failed requests */
    bool have_nsinfo;     /* zdb: nsinfo below is filled (for status and metrics) */
    struct qs_zdb_nsinfo nsinfo;
    char error[256]; /* why not reachable */
};

/* Probes b now (zdb: NSINFO + mode check; dir: marker, statvfs, writability) and fills
 * *h in every case. Returns 0 when reachable, else the error (also in h->error). */
int qs_backend_probe(struct qs_backend *b, struct qs_backend_health *h) QS_MUST_CHECK;

/* The share directory's id (32 hex + NUL) of a dir backend, attaching if needed.
 * QS_EINVAL for a zdb backend. */
int qs_backend_dir_id(struct qs_backend *b, char out[33]) QS_MUST_CHECK;

#endif
