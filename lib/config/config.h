/* zstor's configuration: loading, validation and the in-memory form.
 *
 * Every 0-stor_v2 config file loads unchanged; our additions (README, "zstor config") have
 * defaults. Loading is strict: a syntax error, an unknown key, a missing required key, a
 * value of the wrong type or out of range, a bad hex key, a bad backend address, a
 * duplicate backend, or a meta backend count that does not match the meta shard counts is
 * an error whose message names the file, the line and the key, e.g.
 *   "zstor.toml:2: expected_shards: must be greater than minimal_shards (got 3 <= 4)".
 *
 * Whether the data backends can take a placement with the redundancy asked is checked by
 * zstor_config_check_redundancy, not by loading: a config whose groups no longer allow new
 * stores (backends removed, or settings like the 0-stor_v2 README example's) must still
 * serve retrieve, check, status and list. Everything that writes data (store, rebuild,
 * test, the daemon at start and at every reload) calls it after loading.
 *
 * A loaded config is immutable and may be shared between threads. Secrets (both keys and
 * every password) are wiped when it is freed.
 */
#ifndef QSFS_CONFIG_CONFIG_H
#define QSFS_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"
#include "util/err.h"

#define ZSTOR_KEY_LEN         32        /* AES-256 keys: 64 hex digits in the file */
#define ZSTOR_CONFIG_MAX_SIZE (4 << 20) /* larger files are refused */
#define ZSTOR_DEFAULT_NS      "default" /* zdb's namespace when a backend names none */

enum zstor_addr_kind {
    ZSTOR_ADDR_TCP = 1, /* "[ipv6]:port", "ipv4:port", "host.name:port" */
    ZSTOR_ADDR_UNIX,    /* "unix:///path/to/zdb.sock" */
    ZSTOR_ADDR_DIR,     /* "dir:///path/to/dir": shards as files, no server */
};

struct zstor_backend {
    char *address; /* as written in the file */
    enum zstor_addr_kind kind;
    char *host;      /* TCP: IP literal (no brackets, IPv6 may carry %zone) or name */
    uint16_t port;   /* TCP */
    bool host_is_ip; /* TCP: host is an IPv4 or IPv6 literal */
    char *path;      /* UNIX, DIR: absolute path */
    char *ns;        /* namespace; ZSTOR_DEFAULT_NS when the file names none */
    bool ns_given;   /* the file has a namespace key for this backend */
    char *password;  /* NULL when none; wiped on free */
    unsigned line;   /* line of the backend's table in the file */
};

struct zstor_group {
    struct zstor_backend *backends;
    size_t nbackends;
    unsigned line;
};

/* Lines of the keys that later checks blame (0 when the key is absent). */
struct zstor_config_lines {
    unsigned minimal_shards, expected_shards, redundant_groups, redundant_nodes, groups;
};

/* The [qsfs] table: the whole stack's part of the file (docs/qsfs.md). zstor itself
 * uses it only for the keys it derives; the daemon's checkpoint pass, the hook and the
 * qsfs command read the rest. */
/* [qsfs] upload_priority: uploads run behind the filesystem ("idle": SCHED_IDLE, only
 * when no other thread wants the CPU; "low": nice 10; "normal"). */
enum { ZSTOR_QSFS_PRIO_IDLE = 1, ZSTOR_QSFS_PRIO_LOW, ZSTOR_QSFS_PRIO_NORMAL };

struct zstor_qsfs {
    bool present;
    unsigned line;                  /* of the [qsfs] header */
    char *dir;                      /* state: dir/index, dir/data, sockets, logs (absolute) */
    char *mountpoint;               /* absolute */
    unsigned datasize_mib;          /* local zdb --datasize */
    unsigned rotate_s;              /* local zdb --rotate */
    unsigned checkpoint_s;          /* daemon: period of the upload of the open files; 0 = never */
    unsigned checkpoint_rotate_mib; /* an open data file past this is closed first; 0 = never */
    unsigned retrieve_timeout_s;    /* missing-data hook: longest wait for a retrieve */
    unsigned cache_mib;             /* local data kept (max_zdb_data_dir_size) */
    char *zdbfs_options;            /* extra zdbfs -o options, "" for none */
    int upload_priority;            /* the zstor daemon's CPU share: ZSTOR_QSFS_PRIO_* */
    unsigned upload_defer_s;        /* uploads wait while the frontend is written, this long */
};

struct zstor_config {
    char *name; /* the file name used in messages */

    /* 0-stor_v2 keys */
    unsigned minimal_shards;  /* data shards per chunk: any this many recover it */
    unsigned expected_shards; /* shards per chunk, minimal_shards < expected_shards <= 255 */
    unsigned redundant_groups;
    unsigned redundant_nodes;
    char *root;              /* virtual root stripped from stored paths, or NULL */
    char *socket;            /* daemon socket, or NULL (commands run in-process) */
    char *pid_file;          /* or NULL */
    char *zdb_data_dir_path; /* local 0-db data dir kept under max_zdb_data_dir_size, or NULL */
    uint64_t max_zdb_data_dir_size; /* MiB; 0 = not set */
    char *zdbfs_mountpoint;         /* or NULL */
    unsigned prometheus_port;       /* 0 = no metrics endpoint */
    uint8_t key[ZSTOR_KEY_LEN];     /* [encryption] key: the data key */
    enum qs_compress compression;   /* [compression] algorithm */

    struct {
        char *prefix;                        /* [meta.config] prefix */
        uint8_t key[ZSTOR_KEY_LEN];          /* [meta.config.encryption] key */
        unsigned data_shards, parity_shards; /* ours, default 2 + 2 */
        struct zstor_backend *backends;      /* exactly data_shards + parity_shards */
        size_t nbackends;
    } meta;

    struct zstor_group *groups; /* [[groups]], each with at least one backend */
    size_t ngroups;

    /* our additions (README has the table) */
    uint32_t chunk_size;            /* bytes of input per chunk */
    int compression_level;          /* zstd only; 0 = zstd's default */
    unsigned connect_timeout_ms;    /* per backend connection attempt */
    unsigned request_timeout_ms;    /* per request */
    unsigned retries;               /* extra attempts for a transient backend failure */
    unsigned retry_backoff_ms;      /* wait before the first retry, doubling each time */
    unsigned health_interval_s;     /* daemon: backend health probe (NSINFO) period */
    unsigned repair_interval_s;     /* daemon: period of the repair scan */
    unsigned repair_grace_s;        /* daemon: a backend unreachable this long is repaired away */
    char *queue_path;               /* daemon: persistent queue of --notblocking stores, or NULL */
    unsigned max_concurrent_stores; /* daemon: queued stores running at once */
    unsigned scrub_interval_s;      /* daemon: a background scrub pass starts so often; 0 = off */
    unsigned scrub_rate_mib_s;      /* daemon: background scrub read rate; 0 = unlimited */
    char *prometheus_bind;          /* daemon: metrics listen address; NULL = all interfaces */

    struct zstor_qsfs qsfs;

    struct zstor_config_lines lines;
};

/* Reads and validates the config file at path (at most ZSTOR_CONFIG_MAX_SIZE bytes).
 * On success *out is a new config the caller frees with zstor_config_free. On failure *out
 * is NULL and the code is QS_EIO (cannot read the file), QS_EINVAL (invalid; qs_err_msg()
 * says "path:line: key: what" or "path:line:column: what" for syntax errors) or
 * QS_ENOMEM. */
int zstor_config_load(const char *path, struct zstor_config **out) QS_MUST_CHECK;

/* Same from text[0..len) held in memory; name is used in messages and kept in cfg->name. */
int zstor_config_parse(const char *text, size_t len, const char *name,
                       struct zstor_config **out) QS_MUST_CHECK;

/* Checks that the data backends admit a placement of expected_shards shards with the
 * redundancy asked (see config/redundancy.h): 0, or QS_ETOOFEW with a message naming the
 * file, the line and the key. */
int zstor_config_check_redundancy(const struct zstor_config *cfg) QS_MUST_CHECK;

/* Wipes the keys and passwords and frees everything. NULL is fine. */
void zstor_config_free(struct zstor_config *cfg);

/* "tcp", "unix" or "dir". */
const char *zstor_addr_kind_name(enum zstor_addr_kind kind);

#endif
