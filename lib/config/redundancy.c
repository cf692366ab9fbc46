/* Redundancy arithmetic (see redundancy.h).
 *
 * Why the plan is exact. With y_g = max(0, alloc_g - redundant_nodes) (what group g still
 * holds after losing redundant_nodes backends), the worst case drops the redundant_groups
 * largest y_g, so what survives is the sum of the others:
 *
 *     S(y) = sum(y) - top_r(y) = max over integers t >= 0 of  sum_g min(y_g, t) - r * t
 *
 * (top_r(y) = min_t r*t + sum_g max(0, y_g - t), attained at t = the r-th largest y).
 * So a placement with S >= minimal exists iff for some t >= 1 there are y_g <= t with
 * sum(y) >= minimal + r*t at a cost sum over used groups of (y_g + redundant_nodes) <= expected
 * and y_g <= size_g - redundant_nodes. Capping y_g at t never hurts, and with a fixed cost
 * per used group the cheapest way to reach a sum is to use the groups with the largest
 * capacities min(t, size_g - redundant_nodes) first. S is non-decreasing in every alloc_g, so
 * shards left over once the guarantee holds can go anywhere there is room. Each t costs
 * O(ngroups + 256) with a counting sort; t <= expected.
 */
#include "config/redundancy.h"

#include <assert.h>
#include <string.h>

#define NVAL (ZSTOR_MAX_SHARDS + 1)

static unsigned clamp(unsigned v)
{
    return v > ZSTOR_MAX_SHARDS ? ZSTOR_MAX_SHARDS : v;
}

unsigned zstor_redundancy_survivors(const unsigned *alloc, size_t ngroups,
                                    unsigned redundant_groups, unsigned redundant_nodes)
{
    unsigned count[NVAL] = {0};
    unsigned long total = 0;
    for (size_t g = 0; g < ngroups; g++) {
        unsigned a = clamp(alloc[g]);
        unsigned y = a > redundant_nodes ? a - redundant_nodes : 0;
        count[y]++;
        total += y;
    }
    unsigned drop = redundant_groups;
    for (unsigned v = ZSTOR_MAX_SHARDS; v > 0 && drop > 0; v--) {
        unsigned take = count[v] < drop ? count[v] : drop;
        total -= (unsigned long)take * v;
        drop -= take;
    }
    return total > ZSTOR_MAX_SHARDS * (unsigned long)NVAL ? 0 : (unsigned)total;
}

/* Capacity of group g for level t: how many surviving shards it can contribute. */
static unsigned capacity(unsigned size, unsigned t, unsigned rn)
{
    unsigned c = size > rn ? size - rn : 0;
    return c < t ? c : t;
}

/* For level t: the largest sum of min(y_g, t) - r*t reachable within a budget of expected
 * shards (as a signed value), using the groups of largest capacity first. */
static long best_at(const unsigned *size, size_t ngroups, unsigned expected, unsigned rg,
                    unsigned rn, unsigned t)
{
    unsigned count[NVAL] = {0};
    for (size_t g = 0; g < ngroups; g++)
        count[capacity(clamp(size[g]), t, rn)]++;
    long budget = expected, sum = 0;
    for (unsigned c = t; c > 0 && budget > (long)rn; c--) {
        for (unsigned n = count[c]; n > 0 && budget > (long)rn; n--) {
            long y = budget - (long)rn < (long)c ? budget - (long)rn : (long)c;
            sum += y;
            budget -= y + (long)rn;
        }
    }
    return sum - (long)rg * (long)t;
}

int zstor_redundancy_plan(const unsigned *group_size, size_t ngroups, unsigned minimal,
                          unsigned expected, unsigned redundant_groups, unsigned redundant_nodes,
                          unsigned *alloc)
{
    if (ngroups)
        memset(alloc, 0, ngroups * sizeof(*alloc));
    if (minimal < 1 || minimal > expected || expected > ZSTOR_MAX_SHARDS)
        return qs_err_set(QS_EINVAL, "bad shard counts %u of %u", minimal, expected);
    unsigned long backends = 0;
    for (size_t g = 0; g < ngroups; g++)
        backends += group_size[g];
    if (backends < expected)
        return qs_err_set(QS_ETOOFEW, "%u shards need %u backends, the %zu group%s only %lu",
                          expected, expected, ngroups, ngroups == 1 ? " has" : "s have", backends);
    unsigned rg = redundant_groups, rn = redundant_nodes;

    long best = 0;
    unsigned level = 0;
    for (unsigned t = 1; t <= expected; t++) {
        long f = best_at(group_size, ngroups, expected, rg, rn, t);
        if (f > best)
            best = f;
        if (f >= (long)minimal) {
            level = t;
            break;
        }
    }
    if (!level)
        return qs_err_set(QS_ETOOFEW,
                          "no placement of %u shards on %lu backends in %zu group%s keeps %u "
                          "after losing %u whole group%s and %u backend%s in every other group "
                          "(the best keeps %ld)",
                          expected, backends, ngroups, ngroups == 1 ? "" : "s", minimal, rg,
                          rg == 1 ? "" : "s", rn, rn == 1 ? "" : "s", best);

    /* The cheapest way to reach minimal + rg * level at this level: groups by decreasing
     * capacity (lower index first among equals), each filled up to its capacity. */
    long need = (long)minimal + (long)rg * (long)level;
    unsigned long used = 0;
    for (unsigned c = level; c > 0 && need > 0; c--) {
        for (size_t g = 0; g < ngroups && need > 0; g++) {
            if (capacity(clamp(group_size[g]), level, rn) != c)
                continue;
            unsigned y = need < (long)c ? (unsigned)need : c;
            alloc[g] = y + rn;
            used += alloc[g];
            need -= y;
        }
    }
    assert(need <= 0 && used <= expected);
    /* The rest where there is room, one per group in turn, to spread them. */
    while (used < expected) {
        for (size_t g = 0; g < ngroups && used < expected; g++) {
            if (alloc[g] < group_size[g]) {
                alloc[g]++;
                used++;
            }
        }
    }
    assert(zstor_redundancy_survivors(alloc, ngroups, rg, rn) >= minimal);
    return 0;
}
