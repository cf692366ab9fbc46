/* Redundancy arithmetic for placing the shards of one chunk over groups of backends.
 *
 * A placement puts alloc[g] shards in group g, each on a different backend of the group.
 * It honours (redundant_groups, redundant_nodes) when losing ANY redundant_groups whole
 * groups plus ANY redundant_nodes backends in each remaining group still leaves at least
 * minimal_shards shards. These functions decide that in polynomial time (no enumeration of
 * subsets or permutations); the config check and zstor's placement both use them, the
 * latter with the counts of healthy backends per group.
 *
 * Pure functions: no allocation, no state, thread-safe.
 */
#ifndef QSFS_CONFIG_REDUNDANCY_H
#define QSFS_CONFIG_REDUNDANCY_H

#include <stddef.h>

#include "util/err.h"

#define ZSTOR_MAX_SHARDS 255

/* The shards of placement alloc[0..ngroups) left in the worst case: the adversary drops
 * the redundant_groups groups holding the most shards and redundant_nodes shards of every
 * other group (all of them where a group holds fewer). Shard counts above
 * ZSTOR_MAX_SHARDS count as ZSTOR_MAX_SHARDS. */
unsigned zstor_redundancy_survivors(const unsigned *alloc, size_t ngroups,
                                    unsigned redundant_groups, unsigned redundant_nodes);

/* Chooses how many of expected shards go to each group: alloc[g] <= group_size[g] (the
 * backends usable in group g), sum of alloc = expected, and
 * zstor_redundancy_survivors(alloc) >= minimal. Returns 0 and fills alloc[0..ngroups) when
 * such a placement exists, QS_ETOOFEW with a message saying why when none does (alloc is
 * then all zeros), QS_EINVAL for minimal < 1, minimal > expected or
 * expected > ZSTOR_MAX_SHARDS. Among valid placements it takes one that spreads the shards
 * over many groups. O(expected * (ngroups + ZSTOR_MAX_SHARDS)). */
int zstor_redundancy_plan(const unsigned *group_size, size_t ngroups, unsigned minimal,
                          unsigned expected, unsigned redundant_groups, unsigned redundant_nodes,
                          unsigned *alloc) QS_MUST_CHECK;

#endif
