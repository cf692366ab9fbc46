/* Shard placement across failure domains.
 *
 * Backends belong to groups (failure domains). A placement puts each of the
 * expected_shards shards of an object on a distinct backend so that losing any
 * redundant_groups whole groups, plus redundant_nodes backends in each remaining group,
 * still leaves at least minimal_shards shards. With g_i shards in group i the worst case
 * removes the redundant_groups groups holding the most shards and min(redundant_nodes,
 * g_i) shards of every other group.
 *
 * The search is exact and polynomial (docs/backends.md gives the proof): feasibility of a
 * partial distribution is decided with a threshold identity and a small knapsack, in
 * O(E * G * E) for E shards and G groups, and a greedy pass takes the best-scored backend
 * whose group keeps a completion feasible. Among valid placements it prefers healthy
 * backends with free space; it never uses an unreachable or full backend.
 *
 * Pure functions, no I/O, no global state; thread-safe.
 */
#ifndef QSFS_PLACEMENT_PLACEMENT_H
#define QSFS_PLACEMENT_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define QS_PLACE_MAX_SHARDS 255u
#define QS_PLACE_MAX_GROUPS 4096u
#define QS_PLACE_UNLIMITED  UINT64_MAX /* free_bytes when nothing bounds it */

struct qs_place_params {
    unsigned minimal_shards;   /* shards needed to read an object (>= 1) */
    unsigned expected_shards;  /* shards written, one per backend (<= 255) */
    unsigned redundant_groups; /* whole groups that may be lost */
    unsigned redundant_nodes;  /* backends that may be lost in each remaining group */
};

/* What the caller knows about one backend (from its last probe). */
struct qs_place_candidate {
    unsigned group;      /* failure domain, 0 .. QS_PLACE_MAX_GROUPS-1 */
    bool reachable;      /* false: never used */
    uint64_t free_bytes; /* 0 (or below need_bytes): full, never used */
    uint64_t latency_us; /* recent request latency, 0 = unknown */
    double error_rate;   /* recent fraction of failed requests, 0..1 */
};

/* Preference of a usable backend, in [0, 1], higher is better: 40% free space (log
 * scale, 1 TiB or unlimited counts fully), 30% latency (10 ms halves it, unknown counts
 * as 0.5), 30% error rate (25% errors or more counts as nothing). */
double qs_place_score(const struct qs_place_candidate *c);

/* Shards left in the worst case when group i holds g[i] shards. */
unsigned qs_place_worst_case(const unsigned *g, size_t ngroups, unsigned redundant_groups,
                             unsigned redundant_nodes);

/* Over every distribution d with low[i] <= d[i] <= cap[i] and sum d = expected_shards,
 * the largest worst-case survivor count (low may be NULL = all zero). *out = -1 when no
 * such d exists (too few backends). QS_EINVAL on bad params, QS_ENOMEM. */
int qs_place_best(const struct qs_place_params *p, const unsigned *cap, const unsigned *low,
                  size_t ngroups, long *out) QS_MUST_CHECK;

/* Chooses expected_shards distinct candidates: out[0..expected_shards) are indices into
 * c, best score first (so the data shards land on the best backends). Only reachable
 * candidates with free_bytes >= max(need_bytes, 1) are used. QS_ETOOFEW with a message
 * saying what is missing when no valid placement exists; QS_EINVAL on bad params;
 * QS_ENOMEM. Deterministic: ties go to the lower index. */
int qs_place_choose(const struct qs_place_params *p, const struct qs_place_candidate *c, size_t n,
                    uint64_t need_bytes, unsigned *out) QS_MUST_CHECK;

#endif
