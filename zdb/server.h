/* The zdb server: listeners, connections and the epoll loop, single-threaded. */
#ifndef QSFS_ZDB_SERVER_H
#define QSFS_ZDB_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "resp/resp.h"
#include "store/store.h"
#include "util/buf.h"

struct zdb_hooks;

struct zdb_config {
    const char *data_dir;
    const char *index_dir;
    const char *listen; /* address, default "::" */
    int port;           /* default 9900 */
    const char *socket; /* unix socket path or NULL */
    bool dualnet;
    const char *hook;
    const char *admin;
    bool protect;
    bool verbose;
    bool dump;
    bool background;
    const char *logfile;
    unsigned rotate;        /* seconds, 0 = off */
    double compact_ratio;   /* --compact-ratio: automatic compaction, 0 = off */
    int compact_crash_at;   /* tests: ZDB_COMPACT_CRASH_AT, SIGKILL at that compaction step */
    uint64_t input_limit;   /* --input-limit: bytes all clients' input buffers may hold */
    unsigned input_timeout; /* --input-timeout: seconds a half-sent request may stay idle */
    struct zdb_store_opts store;
};

/* A range of a client's replies that depends on a batch generation's writes. */
struct zdb_taint {
    size_t start, end; /* in out, from the start of its live bytes */
    uint64_t gen;
    unsigned replies; /* how many replies the range holds */
};

struct zdb_client {
    int fd;
    uint64_t id;
    struct qs_buf in;
    struct qs_buf out;
    struct resp_parser parser;
    struct zdb_ns *ns; /* selected namespace; NULL once it was deleted */
    bool ns_gone;
    bool admin;
    bool writable;
    bool closing;        /* close once out is flushed */
    bool epollout;       /* EPOLLOUT registered */
    bool paused;         /* reading stopped until out drains */
    size_t batch_mark;   /* out.len when this loop turn started handling the client */
    unsigned batch_cmds; /* requests run in this loop turn */
    char nonce[17];
    bool nonce_set;
    struct zdb_client *prev, *next;
    /* WAIT: parked (no request of it runs) until another client of its namespace runs
     * wait_cmd or the deadline passes. */
    bool waiting;
    int wait_cmd;           /* index in the command table; 0 is '*': any command */
    uint64_t wait_deadline; /* CLOCK_MONOTONIC milliseconds */
    struct zdb_client *wait_prev, *wait_next; /* srv->waiters */
    bool woken;                               /* in srv->woken: has a reply to send */
    struct zdb_client *woken_next;
    struct zdb_taint *taint; /* replies of this turn that depend on its writes */
    size_t ntaint, captaint;
    bool taint_lost;    /* the list could not grow: every reply of the turn depends */
    size_t in_counted;  /* in.cap as counted in srv->in_bytes */
    int64_t last_rx_ms; /* last byte received (monotonic) */
};

struct zdb_stats {
    uint64_t clients_lifetime;
    uint64_t commands_executed, commands_failed, commands_unauthorized;
    uint64_t net_rx, net_tx;
};

struct zdb_server {
    struct zdb_config *cfg;
    struct zdb_store *store;
    int epfd;
    int listen_fd[2];
    int nlisten;
    struct zdb_client *clients;
    uint64_t next_client_id;
    struct zdb_stats stats;
    time_t boot_time;
    char instance_id[17];
    char zdbid[4200]; /* tcp://host:port or unix://path, for hooks */
    struct resp_request req;
    volatile sig_atomic_t stop_signal;
    time_t last_rotate_check;
    time_t last_rotate;
    struct zdb_hooks *hooks;    /* --hook: set by the program after zdb_server_init, or NULL */
    struct zdb_client *waiters; /* parked by WAIT */
    struct zdb_client *woken;   /* left WAIT during this loop turn, replies not sent yet */
    /* out of descriptors: a spare one is given up to accept and close the connection
     * waiting (so the listener does not stay readable and spin the loop); when even that
     * fails the listeners are not polled until listen_resume_ms */
    int spare_fd;
    bool listen_paused;
    int64_t listen_resume_ms;
    int64_t accept_warn_ms;  /* last "out of descriptors" warning */
    uint64_t accept_refused; /* connections refused since that warning */
    uint64_t in_bytes;       /* memory of every client's input buffer (--input-limit) */
    time_t damage_logged;    /* last "stored value damaged" line (one a second at most) */
};

/* Opens the store and the listeners. Errors carry a message for the operator. */
int zdb_server_init(struct zdb_server *srv, struct zdb_config *cfg) QS_MUST_CHECK;

/* The part of zdb_server_init before the listeners: the server state and the store, with no
 * socket and no event loop (fuzz/zdb_commands.c drives zdb_dispatch directly). Free it with
 * zdb_server_free. */
int zdb_server_init_local(struct zdb_server *srv, struct zdb_config *cfg) QS_MUST_CHECK;

/* A new client on connection fd (-1: none, for tests and fuzzers), in srv->clients, on the
 * default namespace; NULL when out of memory. Freed by zdb_server_client_free (closes fd) or
 * zdb_server_free. The caller registers fd with the event loop. */
struct zdb_client *zdb_server_client_new(struct zdb_server *srv, int fd);
void zdb_server_client_free(struct zdb_server *srv, struct zdb_client *c);

/* Runs until a stop signal; returns the signal number (0 if none). */
int zdb_server_run(struct zdb_server *srv);

/* Closes every client and listener, syncs and closes the store. */
void zdb_server_free(struct zdb_server *srv);

/* Marks every client using ns as having lost it (NSDEL). */
void zdb_server_ns_removed(struct zdb_server *srv, struct zdb_ns *ns);

/* RELOAD: reloads ns from disk (zdb_store_reload); the clients that had it selected go on
 * with the new object, or lose their namespace (as after NSDEL) when it cannot be loaded
 * back, in which case the error is returned. ns is freed either way. */
int zdb_server_reload_ns(struct zdb_server *srv, struct zdb_ns *ns) QS_MUST_CHECK;

/* WAIT: parks c until another client of the same namespace runs command cmd (an index in
 * the command table, 0 = any) or timeout_ms pass. Its reply is +<name> (see
 * zdb_server_notify) or -Timeout; nothing it sent meanwhile runs before that. */
void zdb_server_wait(struct zdb_server *srv, struct zdb_client *c, int cmd, uint64_t timeout_ms);

/* After client `by` ran command cmd (table index) named name: wakes the clients of its
 * namespace waiting for it or for any command, with the reply +<name>. */
void zdb_server_notify(struct zdb_server *srv, const struct zdb_client *by, int cmd,
                       const char *name);

#endif
