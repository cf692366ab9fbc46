/* Command dispatch: the 0-db command table (prefix-matched, in table order) and the
 * checks every handler shares. Handlers live in commands_*.c, one file per family. */
#ifndef QSFS_ZDB_COMMANDS_H
#define QSFS_ZDB_COMMANDS_H

#include "zdb/server.h"

/* Handler results, for the INFO statistics. */
#define CMD_OK     0
#define CMD_FAILED 1
#define CMD_DENIED 2

typedef int (*zdb_cmd_fn)(struct zdb_server *srv, struct zdb_client *c,
                          const struct resp_request *r);

/* Runs one parsed request, appending its reply to c->out. */
void zdb_dispatch(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r);

/* Index in the command table of the command a (case-insensitive) name prefix selects, as
 * dispatch matches it; -1 when none does. Index 0 is '*'. */
int zdb_cmd_find(const uint8_t *name, size_t len);

/* Shared checks: each sends the error reply itself and returns false on failure. */
bool cmd_args(struct zdb_client *c, const struct resp_request *r, int expected);
bool cmd_args_nonempty(struct zdb_client *c, const struct resp_request *r, int expected);
bool cmd_admin(struct zdb_client *c);

/* Copies an argument into a NUL-terminated string; false (and no reply) if it does not fit. */
bool cmd_arg_str(const struct resp_arg *a, char *out, size_t cap);

/* zdb_ns_read / zdb_ns_read_header for command handlers: when the data file is missing
 * (QS_ENOTFOUND), the blocking missing-data hook runs and, if it exits 0, the read is
 * retried once. Use these for every payload or data-header read of a request. */
int cmd_ns_read(struct zdb_server *srv, struct zdb_ns *ns, const struct zdb_loc *loc, uint8_t *dst,
                bool *crc_ok) QS_MUST_CHECK;
int cmd_ns_read_header(struct zdb_server *srv, struct zdb_ns *ns, const struct zdb_loc *loc,
                       struct zdb_dat_entry *e) QS_MUST_CHECK;

/* Handlers */
int cmd_ping(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_time(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_auth(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_info(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_stop(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_dbsize(struct zdb_server *, struct zdb_client *, const struct resp_request *);

int cmd_set(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_get(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_mget(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_del(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_exists(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_check(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_length(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_keytime(struct zdb_server *, struct zdb_client *, const struct resp_request *);

int cmd_nsnew(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_nsdel(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_nslist(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_nsset(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_nsinfo(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_nsjump(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_select(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_flush(struct zdb_server *, struct zdb_client *, const struct resp_request *);

int cmd_hooks(struct zdb_server *, struct zdb_client *, const struct resp_request *);

int cmd_scan(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_rscan(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_keycur(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_history(struct zdb_server *, struct zdb_client *, const struct resp_request *);

int cmd_wait(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_reload(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_index(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_data(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_mirror(struct zdb_server *, struct zdb_client *, const struct resp_request *);
int cmd_master(struct zdb_server *, struct zdb_client *, const struct resp_request *);

/* COMPACT (commands_compact.c), and the --compact-ratio trigger run by the periodic step. */
int cmd_compact(struct zdb_server *, struct zdb_client *, const struct resp_request *);
void zdb_compact_periodic(struct zdb_server *srv, time_t now);

#endif
