/* Tests of lib/placement against brute-force references.
 *
 * The references share nothing with the library: they enumerate every set of backends
 * (or every distribution over groups) and, for each, every failure the guarantee covers
 * (every choice of redundant_groups lost groups, and in every other group every choice of
 * redundant_nodes lost backends among ALL its backends), counting what survives. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement/placement.h"

/* ---- brute-force references ---- */

#define MAXB 12 /* backends per instance */
#define MAXG 4

struct inst {
    struct qs_place_params p;
    size_t n, ng;
    struct qs_place_candidate c[MAXB];
};

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

static int popcount(unsigned x)
{
    return __builtin_popcount(x);
}

/* Shards surviving the worst failure when backends in mask hold one shard each. */
static unsigned brute_survivors(const struct inst *in, unsigned mask)
{
    unsigned worst = ~0u;
    unsigned gmask_all = (1u << in->ng) - 1;
    unsigned rg = in->p.redundant_groups < in->ng ? in->p.redundant_groups : (unsigned)in->ng;
    for (unsigned lost = 0; lost <= gmask_all; lost++) {
        if ((unsigned)popcount(lost) != rg)
            continue;
        unsigned left = 0;
        for (size_t g = 0; g < in->ng; g++) {
            if (lost & (1u << g))
                continue;
            unsigned members = 0;
            for (size_t i = 0; i < in->n; i++)
                if (in->c[i].group == g)
                    members |= 1u << i;
            unsigned rn = in->p.redundant_nodes;
            if ((unsigned)popcount(members) < rn)
                rn = (unsigned)popcount(members);
            /* the adversary kills any rn backends of the group: take the worst */
            unsigned worst_left = ~0u;
            for (unsigned kill = members;; kill = (kill - 1) & members) {
                if ((unsigned)popcount(kill) == rn) {
                    unsigned l = (unsigned)popcount(mask & members & ~kill);
                    if (l < worst_left)
                        worst_left = l;
                }
                if (kill == 0)
                    break;
            }
            left += worst_left;
        }
        if (left < worst)
            worst = left;
    }
    return worst;
}

static bool is_usable(const struct qs_place_candidate *c, uint64_t need)
{
    return c->reachable && c->free_bytes > 0 && c->free_bytes >= need;
}

/* Best worst-case survivors over every valid set of E usable backends; -1 if none. */
static long brute_best(const struct inst *in, uint64_t need, unsigned *best_mask)
{
    long best = -1;
    for (unsigned mask = 0; mask < (1u << in->n); mask++) {
        if ((unsigned)popcount(mask) != in->p.expected_shards)
            continue;
        bool ok = true;
        for (size_t i = 0; i < in->n && ok; i++)
            if ((mask & (1u << i)) && !is_usable(&in->c[i], need))
                ok = false;
        if (!ok)
            continue;
        long s = brute_survivors(in, mask);
        if (s > best) {
            best = s;
            if (best_mask)
                *best_mask = mask;
        }
    }
    return best;
}

/* Distribution-level reference: max over low <= d <= cap, sum d = E, of the worst case
 * computed by enumerating the lost groups (not by sorting). */
static long brute_dist(const struct qs_place_params *p, const unsigned *cap, const unsigned *low,
                       size_t ng)
{
    long best = -1;
    unsigned d[MAXG];
    unsigned total = 1;
    for (size_t g = 0; g < ng; g++)
        total *= cap[g] + 1;
    for (unsigned code = 0; code < total; code++) {
        unsigned x = code, sum = 0;
        bool ok = true;
        for (size_t g = 0; g < ng; g++) {
            d[g] = x % (cap[g] + 1);
            x /= cap[g] + 1;
            sum += d[g];
            if (low && d[g] < low[g])
                ok = false;
        }
        if (!ok || sum != p->expected_shards)
            continue;
        unsigned rg = p->redundant_groups < ng ? p->redundant_groups : (unsigned)ng;
        long worst = -1;
        for (unsigned lost = 0; lost < (1u << ng); lost++) {
            if ((unsigned)popcount(lost) != rg)
                continue;
            long left = 0;
            for (size_t g = 0; g < ng; g++)
                if (!(lost & (1u << g)))
                    left += d[g] > p->redundant_nodes ? d[g] - p->redundant_nodes : 0;
            if (worst < 0 || left < worst)
                worst = left;
        }
        if (worst > best)
            best = worst;
    }
    return best;
}

static void random_inst(struct inst *in)
{
    memset(in, 0, sizeof(*in));
    in->ng = 1 + rnd(MAXG);
    in->n = 1 + rnd(MAXB);
    for (size_t i = 0; i < in->n; i++) {
        struct qs_place_candidate *c = &in->c[i];
        c->group = rnd((uint32_t)in->ng);
        c->reachable = rnd(8) != 0;
        uint32_t f = rnd(10);
        c->free_bytes = f == 0   ? 0
                        : f == 1 ? 1000
                        : f == 2 ? QS_PLACE_UNLIMITED
                                 : (uint64_t)f << 30;
        c->latency_us = rnd(50000);
        c->error_rate = rnd(4) == 0 ? rnd(100) / 100.0 : 0.0;
    }
    /* groups are 0..ng-1 even if the last ones have no candidate */
    in->p.expected_shards = 1 + rnd((uint32_t)in->n);
    in->p.minimal_shards = 1 + rnd(in->p.expected_shards);
    in->p.redundant_groups = rnd(3);
    in->p.redundant_nodes = rnd(3);
}

/* ---- tests ---- */

static void test_worst_case_table(void **state)
{
    static const struct {
        unsigned g[4];
        size_t ng;
        unsigned rg, rn, want;
    } cases[] = {
        {{2, 2, 2}, 3, 1, 0, 4}, {{2, 2, 2}, 3, 1, 1, 2}, {{3, 3, 0}, 3, 1, 0, 3},
        {{6}, 1, 0, 1, 5},       {{6}, 1, 1, 0, 0},       {{1, 1, 1, 1}, 4, 0, 1, 0},
        {{4, 1, 1}, 3, 1, 0, 2}, {{4, 1, 1}, 3, 0, 2, 2}, {{5, 5, 5, 5}, 4, 2, 2, 6},
        {{0, 0}, 2, 0, 0, 0},    {{3, 2}, 2, 5, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(qs_place_worst_case(cases[i].g, cases[i].ng, cases[i].rg, cases[i].rn),
                         cases[i].want);
}

static void test_best_matches_brute_distributions(void **state)
{
    rng_state = 12345;
    for (int iter = 0; iter < 3000; iter++) {
        size_t ng = 1 + rnd(MAXG);
        unsigned cap[MAXG], low[MAXG], total = 0;
        for (size_t g = 0; g < ng; g++) {
            cap[g] = rnd(6);
            low[g] = rnd(3) == 0 ? rnd(cap[g] + 1) : 0;
            total += cap[g];
        }
        struct qs_place_params p = {0};
        p.expected_shards = 1 + rnd(total + 2);
        p.minimal_shards = 1 + rnd(p.expected_shards);
        p.redundant_groups = rnd(3);
        p.redundant_nodes = rnd(3);
        bool with_low = iter % 2;
        long got;
        assert_int_equal(qs_place_best(&p, cap, with_low ? low : NULL, ng, &got), 0);
        long want = brute_dist(&p, cap, with_low ? low : NULL, ng);
        if (got != want)
            fail_msg("iter %d: E=%u rg=%u rn=%u ng=%zu: best %ld, brute force %ld", iter,
                     p.expected_shards, p.redundant_groups, p.redundant_nodes, ng, got, want);
    }
}

static void test_choose_matches_brute(void **state)
{
    rng_state = 777;
    unsigned feasible = 0, infeasible = 0;
    for (int iter = 0; iter < 1500; iter++) {
        struct inst in;
        random_inst(&in);
        uint64_t need = rnd(3) == 0 ? 4096 : 0;
        unsigned out[MAXB];
        int rc = qs_place_choose(&in.p, in.c, in.n, need, out);
        long bb = brute_best(&in, need, NULL);
        bool possible = bb >= (long)in.p.minimal_shards;
        if (!possible) {
            if (rc != QS_ETOOFEW)
                fail_msg("iter %d: placement found (rc %d) where brute force finds none", iter, rc);
            assert_non_null(strstr(qs_err_msg(), "placement"));
            infeasible++;
            continue;
        }
        if (rc != 0)
            fail_msg("iter %d: %s (brute force keeps %ld >= %u)", iter, qs_err_msg(), bb,
                     in.p.minimal_shards);
        feasible++;
        unsigned mask = 0;
        for (unsigned k = 0; k < in.p.expected_shards; k++) {
            assert_true(out[k] < in.n);
            assert_false(mask & (1u << out[k])); /* distinct */
            mask |= 1u << out[k];
            assert_true(is_usable(&in.c[out[k]], need)); /* never unreachable or full */
            if (k > 0)                                   /* best score first */
                assert_true(qs_place_score(&in.c[out[k - 1]]) >= qs_place_score(&in.c[out[k]]));
        }
        unsigned surv = brute_survivors(&in, mask);
        if (surv < in.p.minimal_shards)
            fail_msg("iter %d: chosen placement keeps only %u < %u", iter, surv,
                     in.p.minimal_shards);
    }
    /* the generator must exercise both outcomes */
    assert_true(feasible > 200);
    assert_true(infeasible > 200);
}

/* When the E best-scored usable backends already form a valid placement, they are the
 * placement: constraints never cost score when they do not bind. */
static void test_prefers_best_when_free(void **state)
{
    rng_state = 4242;
    unsigned hits = 0;
    for (int iter = 0; iter < 2000; iter++) {
        struct inst in;
        random_inst(&in);
        unsigned idx[MAXB], nu = 0;
        for (size_t i = 0; i < in.n; i++)
            if (is_usable(&in.c[i], 0))
                idx[nu++] = (unsigned)i;
        if (nu < in.p.expected_shards)
            continue;
        /* sort usable by score, ties by index */
        for (unsigned a = 0; a < nu; a++)
            for (unsigned b = a + 1; b < nu; b++) {
                double sa = qs_place_score(&in.c[idx[a]]), sb = qs_place_score(&in.c[idx[b]]);
                if (sb > sa || (sb == sa && idx[b] < idx[a])) {
                    unsigned t = idx[a];
                    idx[a] = idx[b];
                    idx[b] = t;
                }
            }
        unsigned top = 0;
        for (unsigned k = 0; k < in.p.expected_shards; k++)
            top |= 1u << idx[k];
        if (brute_survivors(&in, top) < in.p.minimal_shards)
            continue;
        unsigned out[MAXB], mask = 0;
        assert_int_equal(qs_place_choose(&in.p, in.c, in.n, 0, out), 0);
        for (unsigned k = 0; k < in.p.expected_shards; k++)
            mask |= 1u << out[k];
        assert_int_equal(mask, top);
        hits++;
    }
    assert_true(hits > 100);
}

static void test_scenarios(void **state)
{
    /* 3 groups x 2 backends, 4+2 tolerating one group: exactly 2 per group */
    struct qs_place_candidate c[12];
    memset(c, 0, sizeof(c));
    for (unsigned i = 0; i < 6; i++)
        c[i] = (struct qs_place_candidate){i / 2, true, 1ull << 40, 1000, 0};
    struct qs_place_params p = {4, 6, 1, 0};
    unsigned out[12];
    assert_int_equal(qs_place_choose(&p, c, 6, 0, out), 0);
    unsigned per[3] = {0};
    for (int k = 0; k < 6; k++)
        per[c[out[k]].group]++;
    assert_int_equal(per[0], 2);
    assert_int_equal(per[1], 2);
    assert_int_equal(per[2], 2);

    /* one backend unreachable: no placement, and the message says why */
    c[3].reachable = false;
    assert_int_equal(qs_place_choose(&p, c, 6, 0, out), QS_ETOOFEW);
    assert_non_null(strstr(qs_err_msg(), "only 5 of 6 are usable (1 unreachable, 0 full)"));

    /* a spare backend in group 1 makes it work again, avoiding the dead one */
    c[6] = (struct qs_place_candidate){1, true, 1ull << 30, 1000, 0};
    assert_int_equal(qs_place_choose(&p, c, 7, 0, out), 0);
    for (int k = 0; k < 6; k++)
        assert_int_not_equal(out[k], 3);

    /* a full backend is never used, even when it is the best in every other respect */
    c[6].free_bytes = 100;
    assert_int_equal(qs_place_choose(&p, c, 7, 4096, out), QS_ETOOFEW);
    assert_non_null(strstr(qs_err_msg(), "1 full"));
    assert_int_equal(qs_place_choose(&p, c, 7, 50, out), 0);

    /* enough backends but too few groups: 2 groups cannot survive losing one with 4 left */
    for (unsigned i = 0; i < 8; i++)
        c[i] = (struct qs_place_candidate){i % 2, true, 1ull << 40, 1000, 0};
    assert_int_equal(qs_place_choose(&p, c, 8, 0, out), QS_ETOOFEW);
    assert_non_null(strstr(qs_err_msg(), "at best 3 would survive"));
    assert_non_null(strstr(qs_err_msg(), "usable per group: 4,4"));

    /* a group of slow, failing backends is used only as far as the constraints force */
    struct qs_place_params q = {2, 4, 1, 0};
    for (unsigned i = 0; i < 9; i++)
        c[i] = (struct qs_place_candidate){i / 3, true, 1ull << 40, i / 3 == 2 ? 900000 : 500,
                                           i / 3 == 2 ? 0.5 : 0};
    assert_int_equal(qs_place_choose(&q, c, 9, 0, out), 0);
    memset(per, 0, sizeof(per));
    for (int k = 0; k < 4; k++)
        per[c[out[k]].group]++;
    assert_int_equal(per[2], 0); /* 2+2 over the two good groups survives losing one */
    q.minimal_shards = 3;
    q.expected_shards = 5; /* now at most 2 per group: the bad group must take one */
    assert_int_equal(qs_place_choose(&q, c, 9, 0, out), 0);
    memset(per, 0, sizeof(per));
    for (int k = 0; k < 5; k++)
        per[c[out[k]].group]++;
    assert_int_equal(per[2], 1);
    assert_int_equal(c[out[4]].group, 2); /* and it gets the last (parity) shard */
}

static void test_bad_params(void **state)
{
    struct qs_place_candidate c[2] = {{0, true, 1000, 0, 0}, {0, true, 1000, 0, 0}};
    unsigned out[300];
    struct qs_place_params p = {0, 2, 0, 0};
    assert_int_equal(qs_place_choose(&p, c, 2, 0, out), QS_EINVAL);
    p = (struct qs_place_params){3, 2, 0, 0};
    assert_int_equal(qs_place_choose(&p, c, 2, 0, out), QS_EINVAL);
    p = (struct qs_place_params){1, 0, 0, 0};
    assert_int_equal(qs_place_choose(&p, c, 2, 0, out), QS_EINVAL);
    p = (struct qs_place_params){1, 256, 0, 0};
    assert_int_equal(qs_place_choose(&p, c, 2, 0, out), QS_EINVAL);
    p = (struct qs_place_params){1, 2, 0, 0};
    c[1].group = QS_PLACE_MAX_GROUPS;
    assert_int_equal(qs_place_choose(&p, c, 2, 0, out), QS_EINVAL);
    c[1].group = 0;
    assert_int_equal(qs_place_choose(&p, c, 2, 0, out), 0);
    assert_int_equal(qs_place_choose(&p, c, 0, 0, out), QS_ETOOFEW);
}

/* A large instance finishes (polynomial; 0-stor_v2's subset enumeration would not) and
 * is valid by the worst-case formula. */
static void test_large_instance(void **state)
{
    enum { G = 40, PER = 12 };
    static struct qs_place_candidate c[G * PER];
    rng_state = 99;
    for (unsigned i = 0; i < G * PER; i++)
        c[i] = (struct qs_place_candidate){i / PER, rnd(10) != 0, (uint64_t)(1 + rnd(1000)) << 30,
                                           rnd(20000), rnd(5) == 0 ? 0.1 : 0};
    struct qs_place_params p = {160, 240, 3, 2};
    unsigned out[240];
    assert_int_equal(qs_place_choose(&p, c, G * PER, 0, out), 0);
    unsigned g[G] = {0};
    for (unsigned k = 0; k < 240; k++) {
        assert_true(c[out[k]].reachable);
        g[c[out[k]].group]++;
    }
    assert_true(qs_place_worst_case(g, G, 3, 2) >= 160);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worst_case_table),
        cmocka_unit_test(test_best_matches_brute_distributions),
        cmocka_unit_test(test_choose_matches_brute),
        cmocka_unit_test(test_prefers_best_when_free),
        cmocka_unit_test(test_scenarios),
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_large_instance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
