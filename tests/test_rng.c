/* test_rng.c: determinism, stream splitting, and the distributions of rng_below, rng_uniform and
 * rng_normal. Every statistical test uses a fixed seed, so it either always passes or always
 * fails; the bounds are still set many standard deviations wide so a change of seed would not
 * make them flaky either. */
#include "tests/testutil.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "core/rng.h"

#define N_DRAWS 100000

static bool rng_same_state(const Rng *a, const Rng *b) { return memcmp(a->s, b->s, sizeof a->s) == 0; }

/* Independent reference: splitmix64 as published (Vigna), whose outputs seed xoshiro256**. Seed 0
 * gives 0xe220a8397b1dcdaf first (the published test vector). */
static uint64_t ref_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void test_rng_seeding_reference(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 0);
    assert_true(r.s[0] == 0xe220a8397b1dcdafULL);
    uint64_t x = 0;
    for (int i = 0; i < 4; i++) assert_true(r.s[i] == ref_splitmix64(&x));
    /* xoshiro256**'s output is rotl(s1 * 5, 7) * 9 of the state before the step */
    uint64_t s1 = r.s[1] * 5;
    uint64_t want = ((s1 << 7) | (s1 >> 57)) * 9;
    assert_true(rng_u64(&r) == want);
}

static void test_rng_same_seed_same_stream(void **state) {
    (void)state;
    Rng a, b;
    rng_init(&a, 42);
    rng_init(&b, 42);
    for (int i = 0; i < 1000; i++) assert_true(rng_u64(&a) == rng_u64(&b));
    /* the derived draws follow the same stream */
    for (int i = 0; i < 100; i++) {
        assert_true(rng_uniform(&a) == rng_uniform(&b));
        assert_true(rng_normal(&a) == rng_normal(&b));
        assert_true(rng_below(&a, 1000) == rng_below(&b, 1000));
    }
    assert_true(rng_same_state(&a, &b));
}

static void test_rng_different_seeds_differ(void **state) {
    (void)state;
    /* neighbouring seeds (42, 43) and 0 vs 1: all of the first 100 outputs differ (a collision of
     * 64-bit values has probability ~1e-17) */
    static const uint64_t pairs[][2] = {{42, 43}, {0, 1}, {1, (uint64_t)1 << 63}};
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        Rng a, b;
        rng_init(&a, pairs[k][0]);
        rng_init(&b, pairs[k][1]);
        int same = 0;
        for (int i = 0; i < 100; i++) same += rng_u64(&a) == rng_u64(&b);
        assert_int_equal(same, 0);
    }
    /* seed 0 is a valid seed: the state is not all zero and the stream moves */
    Rng z;
    rng_init(&z, 0);
    uint64_t first = rng_u64(&z);
    assert_true(first != 0 || rng_u64(&z) != 0);
    assert_true(rng_u64(&z) != first);
}

static void test_rng_split_deterministic(void **state) {
    (void)state;
    Rng r, r2;
    rng_init(&r, 7);
    rng_init(&r2, 7);
    Rng before = r;
    Rng a = rng_split(&r, 3), b = rng_split(&r, 3), c = rng_split(&r2, 3);
    /* rng_split does not advance the parent */
    assert_true(rng_same_state(&r, &before));
    /* same parent state and key -> same stream, from either of two equal parents */
    for (int i = 0; i < 1000; i++) {
        uint64_t x = rng_u64(&a);
        assert_true(x == rng_u64(&b));
        assert_true(x == rng_u64(&c));
    }
    /* drawing from a child does not touch the parent */
    assert_true(rng_same_state(&r, &before));
}

static void test_rng_split_independent(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 2024);
    enum { N_KEYS = 16, N_OUT = 64 };
    /* 16 children (keys 0..15) and the parent: no 64-bit output repeats anywhere among them */
    static uint64_t out[(N_KEYS + 1) * N_OUT];
    size_t n = 0;
    for (uint64_t k = 0; k < N_KEYS; k++) {
        Rng c = rng_split(&r, k);
        for (int i = 0; i < N_OUT; i++) out[n++] = rng_u64(&c);
    }
    Rng p = r;
    for (int i = 0; i < N_OUT; i++) out[n++] = rng_u64(&p);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (out[i] == out[j]) {
                print_error("split streams share output %zu == %zu\n", i, j);
                fail();
            }
    /* children of consecutive keys are uncorrelated: Pearson correlation of 100k uniform pairs is
     * ~N(0, 1/sqrt(1e5) = 0.0032); |rho| < 0.02 is more than 6 sigma */
    Rng a = rng_split(&r, 1), b = rng_split(&r, 2);
    double sa = 0, sb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        double x = rng_uniform(&a), y = rng_uniform(&b);
        sa += x;
        sb += y;
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    double nn = N_DRAWS;
    double cov = sab / nn - (sa / nn) * (sb / nn);
    double rho = cov / sqrt((saa / nn - (sa / nn) * (sa / nn)) * (sbb / nn - (sb / nn) * (sb / nn)));
    if (!(fabs(rho) < 0.02)) {
        print_error("split streams correlate: rho = %g\n", rho);
        fail();
    }
    /* the child's draws do not depend on how much another child drew */
    Rng c1 = rng_split(&r, 5);
    Rng other = rng_split(&r, 6);
    for (int i = 0; i < 1000; i++) rng_u64(&other);
    Rng c2 = rng_split(&r, 5);
    assert_true(rng_same_state(&c1, &c2));
}

/* Pearson chi-square of counts against equal expected counts. */
static double chi_square(const long *count, int k, long total) {
    double e = (double)total / k, chi = 0;
    for (int i = 0; i < k; i++) chi += ((double)count[i] - e) * ((double)count[i] - e) / e;
    return chi;
}

static void test_rng_below_range(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 11);
    static const uint64_t ns[] = {1, 2, 3, 7, 10, 1000, ((uint64_t)1 << 32) + 1,
                                  ((uint64_t)1 << 63) + 1, UINT64_MAX};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
        for (int i = 0; i < 10000; i++) {
            uint64_t x = rng_below(&r, ns[k]);
            if (x >= ns[k]) {
                print_error("rng_below(%llu) = %llu\n", (unsigned long long)ns[k],
                            (unsigned long long)x);
                fail();
            }
        }
    for (int i = 0; i < 100; i++) assert_true(rng_below(&r, 1) == 0);
    /* every value of a small range shows up */
    bool seen[7] = {false};
    for (int i = 0; i < 1000; i++) seen[rng_below(&r, 7)] = true;
    for (int i = 0; i < 7; i++) assert_true(seen[i]);
}

static void test_rng_below_uniform(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 12345);
    /* 10 buckets, 100k draws: chi-square with 9 dof has mean 9, sd 4.2; P(chi > 45) < 1e-6 */
    long count[10] = {0};
    for (int i = 0; i < N_DRAWS; i++) count[rng_below(&r, 10)]++;
    double chi = chi_square(count, 10, N_DRAWS);
    if (!(chi < 45.0)) {
        print_error("rng_below(10): chi-square %g over 9 dof\n", chi);
        fail();
    }
    /* n = 3 * 2^62, bucketed by value / 2^62 into thirds: a plain `u64 % n` would put half the
     * mass in the first third (chi-square ~ 25000); unbiased sampling gives ~2 (2 dof) */
    const uint64_t n = (uint64_t)3 << 62;
    long third[3] = {0};
    for (int i = 0; i < N_DRAWS; i++) {
        uint64_t x = rng_below(&r, n);
        assert_true(x < n);
        third[x >> 62]++;
    }
    chi = chi_square(third, 3, N_DRAWS);
    if (!(chi < 30.0)) {
        print_error("rng_below(3 << 62): chi-square %g over 2 dof (counts %ld %ld %ld)\n", chi,
                    third[0], third[1], third[2]);
        fail();
    }
}

static void test_rng_uniform(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 99);
    double sum = 0, lo = 1, hi = 0;
    long count[10] = {0};
    for (int i = 0; i < N_DRAWS; i++) {
        double u = rng_uniform(&r);
        if (!(u >= 0.0 && u < 1.0)) {
            print_error("rng_uniform out of [0, 1): %.17g\n", u);
            fail();
        }
        sum += u;
        lo = fmin(lo, u);
        hi = fmax(hi, u);
        count[(int)(u * 10)]++;
    }
    /* mean: sd = sqrt(1/12 / 1e5) = 0.00091; 0.005 is > 5 sigma */
    assert_true(fabs(sum / N_DRAWS - 0.5) < 0.005);
    /* extremes of 100k draws lie within ~1e-4 of the ends */
    assert_true(lo < 0.001 && hi > 0.999);
    double chi = chi_square(count, 10, N_DRAWS);
    if (!(chi < 45.0)) {
        print_error("rng_uniform: chi-square %g over 9 dof\n", chi);
        fail();
    }
}

static void test_rng_normal(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 2718);
    double sum = 0, sum2 = 0;
    long within1 = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        double z = rng_normal(&r);
        if (!isfinite(z)) {
            print_error("rng_normal draw %d not finite\n", i);
            fail();
        }
        sum += z;
        sum2 += z * z;
        within1 += fabs(z) < 1.0;
    }
    double mean = sum / N_DRAWS, var = sum2 / N_DRAWS - mean * mean;
    /* mean: sd 1/sqrt(1e5) = 0.0032, bound 0.02 (6 sigma); variance: sd sqrt(2/1e5) = 0.0045,
     * bound 0.03 (6.7 sigma); P(|z| < 1) = 0.6827: sd 0.0015, bound 0.01 */
    if (!(fabs(mean) < 0.02 && fabs(var - 1.0) < 0.03)) {
        print_error("rng_normal: mean %g, variance %g\n", mean, var);
        fail();
    }
    assert_true(fabs((double)within1 / N_DRAWS - 0.6827) < 0.01);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_seeding_reference),
        cmocka_unit_test(test_rng_same_seed_same_stream),
        cmocka_unit_test(test_rng_different_seeds_differ),
        cmocka_unit_test(test_rng_split_deterministic),
        cmocka_unit_test(test_rng_split_independent),
        cmocka_unit_test(test_rng_below_range),
        cmocka_unit_test(test_rng_below_uniform),
        cmocka_unit_test(test_rng_uniform),
        cmocka_unit_test(test_rng_normal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
