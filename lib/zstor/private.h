/* Internals of lib/zstor shared by the operations: backend table, health, parallel
 * helpers, metadata I/O, the shard sender and the shard fetcher. */
#ifndef QSFS_ZSTOR_PRIVATE_H
#define QSFS_ZSTOR_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "codec/codec.h"
#include "codec/pool.h"
#include "meta/record.h"
#include "meta/seal.h"
#include "util/sys.h"
#include "zstor/zstor.h"

#define ZS_DOWN_MS      30000 /* a backend that failed at transport level is skipped so long */
#define ZS_PROBE_TTL_MS 5000  /* probe results younger than this are reused */
#define ZS_MAX_PARTS    64    /* values per shard: 64 MiB chunks, k = 1, 8 MiB values: 9 */

/* One backend (meta or data) of the context. */
struct zs_bk {
    struct qs_backend *be;
    struct qs_backend *probe_be; /* zdb: a second handle for probes, with one quick retry, so
                                    that a dead server costs milliseconds, not the retry
                                    budget of real requests; NULL for dir (no retries) */
    char *address;               /* as in the config, and as recorded in metadata */
    char *ns; /* namespace as recorded: "" for dir backends and zdb's default one */
    const struct zstor_backend *cfg; /* NULL: known only from a metadata record */
    int group;                       /* [[groups]] index of a data backend, -1 otherwise */
    bool is_dir;
    /* last probe */
    bool probed;
    int64_t probe_ms; /* when (monotonic) */
    int probe_rc;
    struct qs_backend_health h;
    uint64_t written; /* bytes written since the probe (placement deducts them) */
    /* a transport failure: skip until then */
    int64_t down_until;
    char down_why[256];
    /* a write refused (full, read-only, a failing disk): no new shards until then */
    int64_t refuse_until;
    char refuse_why[256];
    struct zstor_cluster *cl; /* the job's cluster (shared health), or NULL */
};

struct zs_gen; /* cluster.c: a refcounted config generation */

struct zstor_ctx {
    const struct zstor_config *cfg;
    struct zstor_cluster *cl; /* NULL: a standalone context (owns its pool) */
    struct zs_gen *gen;       /* the cluster generation cfg belongs to */
    uint64_t job;             /* the cluster's number for this job (0: standalone) */
    struct zstor_ctx_opts o;
    struct qs_pool *pool;
    struct zs_bk *meta;
    size_t nmeta;
    struct zs_bk **data; /* [0, ncfg) from the config in group order, then record-only ones */
    size_t ndata, ncfg, capdata;
};

/* ---- cluster.c: what jobs share ---- */

/* The shared health of k (a no-op without a cluster): take it when it is younger than
 * ZS_PROBE_TTL_MS (true: k is up to date, no probe needed) ... */
bool zs_health_take(struct zs_bk *k, bool force);
/* ... or publish k's fresh probe or transport failure for every job. */
void zs_health_publish(const struct zs_bk *k);

/* The cluster's connections to the backend o describes (made on first use), or NULL
 * (out of memory: the job opens its own). */
struct qs_zdb_pool *zs_cluster_pool(struct zstor_cluster *cl, const struct qs_backend_opts *o);

/* ---- ctx.c ---- */

/* The part of zstor_ctx_new after z->cfg and z->o are set: the backend handles, and a
 * pool unless the cluster gives one. */
int zs_ctx_build(struct zstor_ctx *z) QS_MUST_CHECK;
/* Drops the job's reference to its generation (a no-op without a cluster). */
void zs_gen_release(struct zstor_ctx *z);

/* Runs fn(ud, i) for i in [0, n) on n threads (inline when n == 1 or threads fail). */
void zs_par(size_t n, void (*fn)(void *ud, size_t i), void *ud);
/* True for errors that say the backend is unreachable (transport), not the request. */
bool zs_transport_error(int rc);
bool zs_bk_down(const struct zs_bk *k);
/* A write to k failed with rc (not a transport error: those mark it down): placement
 * leaves it out for a while, reads still use it. */
void zs_bk_refuse_writes(struct zs_bk *k, int rc, const char *why);
bool zs_bk_refusing(const struct zs_bk *k);
/* 0, or QS_EAGAIN "interrupted" once the caller's cancel flag is set. */
int zs_interrupted(const struct zstor_ctx *z) QS_MUST_CHECK;
void zs_bk_mark_down(struct zs_bk *k, int rc, const char *why);
/* Whether the caller's cancel flag reaches the backends' requests (on by default). An
 * undo turns it off, so that a cancelled job still deletes what it wrote; no other
 * thread may be in a backend call meanwhile. */
void zs_net_cancel(struct zstor_ctx *z, bool on);
/* Probes bks[0..n) in parallel unless their probe is younger than ZS_PROBE_TTL_MS
 * (force: always). Results in each bk. */
void zs_probe(struct zs_bk **bks, size_t n, bool force);
void zs_probe_data(struct zstor_ctx *z, bool force);
/* zs_probe_data(z, false) on a thread of its own, so that it overlaps the metadata I/O
 * (the two touch different backends); wait before using the data backends. */
struct zs_bg {
    pthread_t t;
    bool started;
    struct zstor_ctx *z;
    uint64_t job; /* the creator's log job */
};
void zs_bg_probe_start(struct zs_bg *bg, struct zstor_ctx *z);
void zs_bg_probe_wait(struct zs_bg *bg);
/* Index into z->data of the backend at address/ns (adding a record-only backend, opened
 * without a password, when the config has none); -1 with the error set on failure. */
int zs_data_lookup(struct zstor_ctx *z, const char *address, const char *ns) QS_MUST_CHECK;
/* Why a reachable zdb backend takes no writes (its last NSINFO: locked, or a password
 * that the config does not give, which leaves a public namespace read-only), or NULL. */
const char *zs_bk_readonly(const struct zs_bk *k);
/* Free bytes for placement: probed free minus what was written since (0 when read-only). */
uint64_t zs_bk_free(const struct zs_bk *k);
/* The record's key kind for a backend. */
enum zstor_meta_keykind zs_bk_keykind(const struct zs_bk *k);
/* "zdb ADDRESS/NS" or "dir PATH". */
const char *zs_bk_name(const struct zs_bk *k);

/* ---- keys.c: record keys <-> backend keys ---- */

/* The backend keys of shard pos of chunk c (at most max; *n gets the count). */
int zs_chunk_keys(const struct zstor_meta_record *r, unsigned pos, uint64_t c,
                  struct qs_backend_key *out, unsigned max, unsigned *n,
                  uint32_t *crc) QS_MUST_CHECK;
void zs_key_ref(const struct qs_backend_key *k, enum zstor_meta_keykind kind,
                struct zstor_meta_keyref *out);
/* Estimated bytes one shard position takes for a file of size bytes. */
uint64_t zs_shard_bytes(uint64_t size, unsigned k, uint32_t chunk_size);
/* Deletes every key of the shards of r that sit on reachable backends, one batch per
 * backend, backends in parallel. *failed (may be NULL) gets the number of values that
 * could not be deleted; only_pos (may be NULL) limits it to positions with a nonzero
 * entry. */
void zs_delete_shards(struct zstor_ctx *z, const struct zstor_meta_record *r,
                      const uint8_t *only_pos, uint64_t *deleted, uint64_t *failed);

/* ---- metaio.c ---- */

/* Raw pieces as the meta backends returned them (for a rollback). */
struct zs_pieces {
    unsigned n;
    uint8_t *p[ZSTOR_META_PIECES_MAX];
    size_t len[ZSTOR_META_PIECES_MAX];
};
void zs_pieces_free(struct zs_pieces *p);

/* Loads the record stored under name from the meta backends (any `data` of them).
 * QS_ENOTFOUND when nothing is stored; other errors name what failed. raw (may be NULL)
 * keeps what each backend returned. r must be freed even after a failure. */
int zs_meta_load(struct zstor_ctx *z, const char *name, struct zstor_meta_record *r,
                 struct zstor_meta_open_info *info, struct zs_pieces *raw) QS_MUST_CHECK;
/* The same for bytes sealed with zstor_meta_seal_bytes. */
int zs_meta_load_bytes(struct zstor_ctx *z, const char *name, uint8_t **plain,
                       size_t *len) QS_MUST_CHECK;
/* Probes every meta backend: 0 when all answer, else an error naming the first that
 * does not ("what refused: ..."). */
int zs_meta_writable(struct zstor_ctx *z, const char *what) QS_MUST_CHECK;
/* Seals r for name and writes piece i to meta backend i, all in parallel. On a failure
 * the pieces written are rolled back to prev (what was there before, NULL = nothing). */
int zs_meta_save(struct zstor_ctx *z, const char *name, const struct zstor_meta_record *r,
                 const struct zs_pieces *prev) QS_MUST_CHECK;
/* The same; written (may be NULL) gets copies of the pieces written. */
int zs_meta_save_ex(struct zstor_ctx *z, const char *name, const struct zstor_meta_record *r,
                    const struct zs_pieces *prev, struct zs_pieces *written) QS_MUST_CHECK;
int zs_meta_save_bytes(struct zstor_ctx *z, const char *name, const uint8_t *p,
                       size_t len) QS_MUST_CHECK;
/* Deletes name from every meta backend (missing counts as done). */
int zs_meta_remove(struct zstor_ctx *z, const char *name) QS_MUST_CHECK;

/* ---- race.c: concurrent stores of one name ---- */

/* After a store wrote rec's metadata (its pieces: mine) under name, makes the outcome of
 * concurrent stores of the same name exact: the newest write that decodes is the stored
 * version. When that is not rec, QS_EBUSY (the caller undoes its upload). When it is,
 * every other version seen (seen, may be NULL: read just before the write; the older
 * writes still present; what the write replaced, from zdb's history) loses its shards
 * (except replaced, already handled by the caller) when it finished as a winner (its done
 * marker), and pieces of other writes are rewritten so that all agree (race.c). */
int zs_store_settle(struct zstor_ctx *z, const char *name, const char *file,
                    const struct zstor_meta_record *rec, struct zs_pieces *mine,
                    const struct zstor_meta_record *seen,
                    const struct zstor_meta_record *replaced) QS_MUST_CHECK;
/* Removes the done marker of a stored version (its shards are gone: replaced, deleted). */
void zs_done_remove(struct zstor_ctx *z, const uint8_t *file_id);

/* ---- list.c ---- */

/* Called per metadata key under the prefix (sorted by key) with its record, or with
 * rc < 0 when it could not be read (r is then empty). Return 0 to go on. */
typedef int (*zs_list_fn)(void *ud, const char *key, const struct zstor_meta_record *r, int rc);
/* Lists the keys of every reachable meta backend (the union), then loads each record. */
int zs_list(struct zstor_ctx *z, zs_list_fn fn, void *ud) QS_MUST_CHECK;

/* ---- send.c: per-backend writer threads with bounded queues ---- */

struct zs_send;
/* Starts one thread per distinct backend of target[0..npos) (z->data indices, -1 = no
 * writes for that position). Keys are appended to r's shards (which the caller set to
 * the target backends) in queue order, so each position gets its chunks in order. */
int zs_send_new(struct zs_send **out, struct zstor_ctx *z, struct zstor_meta_record *r,
                const int *target, unsigned npos) QS_MUST_CHECK;
/* Queues a copy of shard bytes for the next chunk of pos; blocks while that backend's
 * queue is full. Returns the first error of any writer (sticky). */
int zs_send_put(struct zs_send *s, unsigned pos, const uint8_t *data, size_t len,
                uint32_t crc) QS_MUST_CHECK;
/* Queues keys already stored, to be kept as the next chunk of pos. */
int zs_send_keep(struct zs_send *s, unsigned pos, const struct qs_backend_key *keys, unsigned nkeys,
                 uint32_t crc) QS_MUST_CHECK;
/* Waits until everything queued is written; the first error. */
int zs_send_finish(struct zs_send *s) QS_MUST_CHECK;
/* After a failure: deletes every value this sender stored (best effort); the number of
 * values that could not be deleted. */
uint64_t zs_send_undo(struct zs_send *s);
uint64_t zs_send_bytes(const struct zs_send *s);
void zs_send_free(struct zs_send *s);

/* ---- fetch.c: parallel shard reads with replacements ---- */

enum zs_fstate { ZS_F_NONE = 0, ZS_F_OK, ZS_F_MISSING, ZS_F_CORRUPT, ZS_F_ERROR };

struct zs_fetch_opts {
    bool all; /* fetch every shard (scrub, rebuild); else k, with replacements */
};

/* Chunk c: shard[i] (len[i] bytes) validated (header, CRC, position, record CRC), or
 * NULL. The buffers belong to the fetcher; the callback may take one by setting its
 * pointer to NULL (then it frees it). Returns 0 or a negative code to stop. */
typedef int (*zs_fetch_fn)(void *ud, uint64_t c, uint8_t **shard, const size_t *len);

struct zs_fetch_report {
    uint64_t bad[QS_CODEC_MAX_SHARDS];     /* chunks whose shard was corrupt */
    uint64_t missing[QS_CODEC_MAX_SHARDS]; /* chunks whose shard was not found */
    uint64_t failed[QS_CODEC_MAX_SHARDS];  /* chunks whose backend failed */
    uint64_t slow;                         /* replacements asked for slow shards */
};

/* Streams the chunks of r in order to fn. src[i] is the z->data index holding shard i
 * (-1 = none). Shards are asked for in order of backend health, k at a time (or all),
 * and a missing, corrupt, failed or slow shard is replaced by another position's. Bad
 * shards are reported through qs_log (once per position and reason) and counted in rep
 * (may be NULL). */
int zs_fetch(struct zstor_ctx *z, const struct zstor_meta_record *r, const int *src,
             const struct zs_fetch_opts *o, zs_fetch_fn fn, void *ud,
             struct zs_fetch_report *rep) QS_MUST_CHECK;

/* ---- upload.c: a new stream, encoded and written to a fresh placement ---- */

/* Chooses expected_shards data backends (z->data indices, best first) over the
 * healthy ones with need bytes free, honouring the groups' redundancy; probes first
 * (results younger than ZS_PROBE_TTL_MS are reused). QS_ETOOFEW naming what is missing. */
int zs_place(struct zstor_ctx *z, uint64_t need, unsigned *out) QS_MUST_CHECK;

struct zs_upload;
/* Places a stream of about size_hint bytes keyed as rel (probing the data backends),
 * starts the encoder and the writers. */
int zs_upload_begin(struct zs_upload **out, struct zstor_ctx *z, const char *rel,
                    uint64_t size_hint) QS_MUST_CHECK;
int zs_upload_write(struct zs_upload *u, const void *p, size_t n) QS_MUST_CHECK;
int zs_upload_buffer(struct zs_upload *u, uint8_t **p, size_t *avail) QS_MUST_CHECK;
int zs_upload_commit(struct zs_upload *u, size_t n) QS_MUST_CHECK;
/* Finishes the stream; the record then has everything but mtime, mode and stored. */
int zs_upload_finish(struct zs_upload *u) QS_MUST_CHECK;
struct zstor_meta_record *zs_upload_record(struct zs_upload *u);
/* Deletes what was written (after a failure); the number of values left behind. */
uint64_t zs_upload_undo(struct zs_upload *u);
/* Shard bytes written so far. */
uint64_t zs_upload_bytes(const struct zs_upload *u);
/* After a failure: one of the upload's backends is down or refuses writes now, so that a
 * new placement would leave it out (the store may try again). */
bool zs_upload_lost_backend(const struct zs_upload *u);
void zs_upload_free(struct zs_upload *u);

/* ---- helpers for output files ---- */

/* Creates the missing directories of path's parent (mode 0755). */
int zs_mkdir_parents(const char *path) QS_MUST_CHECK;
/* write() all of p, retrying on EINTR. -1 with errno on failure. */
void zs_hex(const uint8_t *p, size_t n, char *out);

#endif
