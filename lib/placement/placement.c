/* Placement: exact feasibility by a threshold identity + knapsack, greedy by score.
 *
 * Notation: E = expected_shards, M = minimal_shards, R = redundant_groups,
 * N = redundant_nodes; group i holds g_i shards and keeps h_i = max(0, g_i - N) of them
 * after losing N backends. The worst case then removes the R largest h_i, leaving
 *     F(g) = sum h_i - (sum of the R largest h_i) = max over T >= 0 of
 *            ( sum min(h_i, T) - R*T )                                      (1)
 * ((1) is the dual form of "sum of the R largest values"). For a fixed T and lower
 * bounds l_i (shards already placed), group i yields min(h_i, T) = v0_i from its l_i
 * shards, and gains one more per added shard once it holds N shards, up to
 * u_i = min(T, cap_i - N) - v0_i: an "entry cost" e_i = max(0, N - l_i) then a unit
 * rate. Which groups to open is a 0/1 knapsack over entry costs (at most E), the rest of
 * the budget buys unit gains, and shards that gain nothing can go anywhere with room
 * without lowering (1). docs/backends.md has the full argument. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement/placement.h"

static int check_params(const struct qs_place_params *p)
{
    if (p->expected_shards == 0 || p->expected_shards > QS_PLACE_MAX_SHARDS)
        return qs_err_set(QS_EINVAL, "placement: expected_shards must be 1..%u, not %u",
                          QS_PLACE_MAX_SHARDS, p->expected_shards);
    if (p->minimal_shards == 0 || p->minimal_shards > p->expected_shards)
        return qs_err_set(QS_EINVAL, "placement: minimal_shards must be 1..%u, not %u",
                          p->expected_shards, p->minimal_shards);
    return 0;
}

double qs_place_score(const struct qs_place_candidate *c)
{
    double f = 1.0;
    if (c->free_bytes != QS_PLACE_UNLIMITED) {
        /* log2 of free MiB: 1 MiB -> 0.05, 1 GiB -> 0.5, 1 TiB -> 1 */
        f = log2(1.0 + (double)c->free_bytes / 1048576.0) / 20.0;
        if (f > 1.0)
            f = 1.0;
    }
    double lat = c->latency_us == 0 ? 0.5 : 1.0 / (1.0 + (double)c->latency_us / 10000.0);
    double e = c->error_rate * 4.0;
    double err = 1.0 - (e > 1.0 ? 1.0 : e < 0.0 ? 0.0 : e);
    return 0.4 * f + 0.3 * lat + 0.3 * err;
}

unsigned qs_place_worst_case(const unsigned *g, size_t ngroups, unsigned redundant_groups,
                             unsigned redundant_nodes)
{
    /* (1) with T over the values h_j: O(G^2) and no memory */
    unsigned long long top = 0;
    for (size_t j = 0; j <= ngroups; j++) {
        unsigned long long T = 0;
        if (j < ngroups)
            T = g[j] > redundant_nodes ? g[j] - redundant_nodes : 0;
        unsigned long long sum = 0;
        for (size_t i = 0; i < ngroups; i++) {
            unsigned long long h = g[i] > redundant_nodes ? g[i] - redundant_nodes : 0;
            sum += h < T ? h : T;
        }
        unsigned long long cut = (unsigned long long)redundant_groups * T;
        if (sum > cut && sum - cut > top)
            top = sum - cut;
    }
    return (unsigned)top;
}

/* Scratch for best(): a knapsack row of E + 1 entries. */
struct scratch {
    int *dp;
};

/* The largest worst-case survivor count over completions of low within cap, or -1 when
 * no completion exists. With stop_at > 0, returns as soon as a value >= stop_at is
 * found (a feasibility test). */
static long best(const struct qs_place_params *p, const unsigned *cap, const unsigned *low,
                 size_t ng, long stop_at, struct scratch *s)
{
    const unsigned E = p->expected_shards, R = p->redundant_groups, N = p->redundant_nodes;
    unsigned long sumlow = 0, sumcap = 0;
    for (size_t i = 0; i < ng; i++) {
        sumlow += low ? low[i] : 0;
        sumcap += cap[i];
    }
    if (sumlow > E || sumcap < E)
        return -1;
    const unsigned B = E - (unsigned)sumlow;
    long top = 0;
    /* (1) is nondecreasing in T when R = 0: only the largest T matters */
    for (unsigned T = R == 0 ? E : 1; T <= E; T++) {
        if ((long)E - (long)R * (long)T <= top)
            break; /* sum min(h_i, T) <= E: no larger T can beat top */
        if (stop_at > 0 && (long)E - (long)R * (long)T < stop_at)
            break;
        long base = 0, free_u = 0;
        int *dp = s->dp;
        dp[0] = 0;
        for (unsigned k = 1; k <= B; k++)
            dp[k] = -1;
        for (size_t i = 0; i < ng; i++) {
            unsigned l = low ? low[i] : 0, c = cap[i];
            unsigned v0 = l > N ? l - N : 0;
            if (v0 > T)
                v0 = T;
            base += v0;
            unsigned hc = c > N ? c - N : 0;
            if (hc > T)
                hc = T;
            unsigned u = hc > v0 ? hc - v0 : 0;
            if (u == 0)
                continue;
            unsigned e = l >= N ? 0 : N - l;
            if (e == 0) {
                free_u += u;
                continue;
            }
            for (unsigned k = B; k >= e && k <= B; k--)
                if (dp[k - e] >= 0 && dp[k - e] + (int)u > dp[k])
                    dp[k] = dp[k - e] + (int)u;
        }
        long v = 0;
        for (unsigned k = 0; k <= B; k++) {
            if (dp[k] < 0)
                continue;
            long gain = dp[k] + free_u;
            long room = (long)B - (long)k;
            long got = gain < room ? gain : room;
            if (got > v)
                v = got;
        }
        long val = base + v - (long)R * (long)T;
        if (val > top)
            top = val;
        if (stop_at > 0 && top >= stop_at)
            break;
    }
    return top;
}

int qs_place_best(const struct qs_place_params *p, const unsigned *cap, const unsigned *low,
                  size_t ngroups, long *out)
{
    *out = -1;
    int rc = check_params(p);
    if (rc < 0)
        return rc;
    struct scratch s = {malloc((p->expected_shards + 1) * sizeof(int))};
    if (!s.dp)
        return qs_err_set(QS_ENOMEM, "placement: out of memory");
    *out = best(p, cap, low, ngroups, 0, &s);
    free(s.dp);
    return 0;
}

/* ---- choosing backends ---- */

static int by_score(const void *a, const void *b, void *arg)
{
    const double *score = arg;
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    if (score[x] != score[y])
        return score[x] > score[y] ? -1 : 1;
    return x < y ? -1 : x > y ? 1 : 0;
}

static bool usable(const struct qs_place_candidate *c, uint64_t need)
{
    return c->reachable && c->free_bytes > 0 && c->free_bytes >= need;
}

/* The QS_ETOOFEW message: what is there and what is missing. */
static int too_few(const struct qs_place_params *p, const struct qs_place_candidate *c, size_t n,
                   const unsigned *cap, size_t ng, long top, uint64_t need)
{
    unsigned total = 0, unreach = 0, full = 0;
    for (size_t i = 0; i < ng; i++)
        total += cap[i];
    for (size_t i = 0; i < n; i++) {
        if (!c[i].reachable)
            unreach++;
        else if (!usable(&c[i], need))
            full++;
    }
    char groups[200];
    size_t gl = 0;
    groups[0] = '\0';
    for (size_t i = 0; i < ng && gl < sizeof(groups) - 16; i++) {
        int w = snprintf(groups + gl, sizeof(groups) - gl, "%s%u", i ? "," : "", cap[i]);
        if (w < 0)
            break;
        gl += (size_t)w;
        if (gl >= sizeof(groups) - 16 && i + 1 < ng) {
            snprintf(groups + gl, sizeof(groups) - gl, ",...");
            break;
        }
    }
    if (total < p->expected_shards)
        return qs_err_set(QS_ETOOFEW,
                          "placement: %u shards need %u usable backends, only %u of %zu are "
                          "usable (%u unreachable, %u full); usable per group: %s",
                          p->expected_shards, p->expected_shards, total, n, unreach, full, groups);
    return qs_err_set(QS_ETOOFEW,
                      "placement: no way to put %u shards on %u usable backends in %zu groups "
                      "(usable per group: %s) so that %u survive the loss of %u group(s) plus "
                      "%u backend(s) in each other group: at best %ld would survive; add "
                      "backends or groups (%u unreachable, %u full)",
                      p->expected_shards, total, ng, groups, p->minimal_shards, p->redundant_groups,
                      p->redundant_nodes, top, unreach, full);
}

int qs_place_choose(const struct qs_place_params *p, const struct qs_place_candidate *c, size_t n,
                    uint64_t need_bytes, unsigned *out)
{
    int rc = check_params(p);
    if (rc < 0)
        return rc;
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].group >= QS_PLACE_MAX_GROUPS)
            return qs_err_set(QS_EINVAL, "placement: group index %u too large (max %u)", c[i].group,
                              QS_PLACE_MAX_GROUPS - 1);
        if (c[i].group + 1 > ng)
            ng = c[i].group + 1;
    }
    if (n > UINT32_MAX)
        return qs_err_set(QS_EINVAL, "placement: too many candidates");
    const unsigned E = p->expected_shards;
    double *score = calloc(n ? n : 1, sizeof(*score));
    unsigned *order = calloc(n ? n : 1, sizeof(*order));
    unsigned *cap = calloc(ng ? ng : 1, sizeof(*cap));
    unsigned *low = calloc(ng ? ng : 1, sizeof(*low));
    size_t *start = calloc(ng + 1, sizeof(*start)); /* group i: order[start[i] ..] */
    unsigned *cand = calloc(ng ? ng : 1, sizeof(*cand));
    bool *closed = calloc(ng ? ng : 1, sizeof(*closed));
    unsigned *chosen = calloc(E, sizeof(*chosen));
    struct scratch s = {malloc((E + 1) * sizeof(int))};
    if (!score || !order || !cap || !low || !start || !cand || !closed || !chosen || !s.dp) {
        rc = qs_err_set(QS_ENOMEM, "placement: out of memory");
        goto out;
    }
    /* usable candidates, grouped, best first inside each group */
    for (size_t i = 0; i < n; i++) {
        if (!usable(&c[i], need_bytes))
            continue;
        score[i] = qs_place_score(&c[i]);
        cap[c[i].group]++;
    }
    for (size_t g = 0; g < ng; g++)
        start[g + 1] = start[g] + cap[g];
    {
        size_t *fillp = calloc(ng ? ng : 1, sizeof(*fillp));
        if (!fillp) {
            rc = qs_err_set(QS_ENOMEM, "placement: out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (usable(&c[i], need_bytes))
                order[start[c[i].group] + fillp[c[i].group]++] = (unsigned)i;
        free(fillp);
    }
    for (size_t g = 0; g < ng; g++)
        qsort_r(order + start[g], cap[g], sizeof(*order), by_score, score);

    long top = best(p, cap, NULL, ng, 0, &s);
    if (top < (long)p->minimal_shards) {
        rc = too_few(p, c, n, cap, ng, top, need_bytes);
        goto out;
    }
    /* Greedy: at each step the best-scored next backend whose group keeps a feasible
     * completion. A group that fails once fails forever (a completion of a larger lower
     * bound is one of a smaller), so it is closed: at most E + G feasibility tests. */
    for (unsigned step = 0; step < E; step++) {
        size_t nc = 0;
        for (size_t g = 0; g < ng; g++)
            if (!closed[g] && low[g] < cap[g])
                cand[nc++] = order[start[g] + low[g]];
        qsort_r(cand, nc, sizeof(*cand), by_score, score);
        bool placed = false;
        for (size_t k = 0; k < nc && !placed; k++) {
            unsigned g = c[cand[k]].group;
            low[g]++;
            if (best(p, cap, low, ng, (long)p->minimal_shards, &s) >= (long)p->minimal_shards) {
                chosen[step] = cand[k];
                placed = true;
            } else {
                low[g]--;
                closed[g] = true;
            }
        }
        if (!placed) { /* cannot happen: the previous state had a feasible completion */
            rc = qs_err_set(QS_ETOOFEW, "placement: internal error at shard %u", step);
            goto out;
        }
    }
    qsort_r(chosen, E, sizeof(*chosen), by_score, score);
    memcpy(out, chosen, E * sizeof(*out));
    rc = 0;
out:
    free(score);
    free(order);
    free(cap);
    free(low);
    free(start);
    free(cand);
    free(closed);
    free(chosen);
    free(s.dp);
    return rc;
}
