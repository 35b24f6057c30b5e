// test_rng.c — libaert's counter-based generator on its own: determinism,
// the moments of its uniform and normal draws, and the shuffle.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aert.h"
#include "tests.h"

START_TEST(test_rng_deterministic_and_moments) {
  ck_assert_uint_eq(aert_hash64(1, 2), aert_hash64(1, 2));
  ck_assert_uint_ne(aert_hash64(1, 2), aert_hash64(2, 1));
  ck_assert_uint_ne(aert_hash64(1, 2), aert_hash64(1, 3));
  ck_assert_uint_ne(aert_stream_key(1, AERT_STREAM_INIT, 0), aert_stream_key(1, AERT_STREAM_SHUFFLE, 0));
  ck_assert_uint_ne(aert_stream_key(1, AERT_STREAM_INIT, 0), aert_stream_key(2, AERT_STREAM_INIT, 0));
  const int n = 200000;
  double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0, nsum4 = 0;
  int bits[64] = {0};
  uint64_t key = aert_stream_key(42, AERT_STREAM_CORRUPT, 7);
  for (int i = 0; i < n; i++) {
    double u = aert_uniform01(key, (uint64_t)i);
    ck_assert(u >= 0 && u < 1);
    sum += u, sum2 += u * u;
    double z = aert_normal(key, (uint64_t)i);
    ck_assert(isfinite(z));
    nsum += z, nsum2 += z * z, nsum4 += z * z * z * z;
    uint64_t h = aert_hash64(3, (uint64_t)i);
    for (int b = 0; b < 64; b++) bits[b] += (int)(h >> b & 1);
  }
  double mean = sum / n, var = sum2 / n - mean * mean;
  ck_assert_double_eq_tol(mean, 0.5, 0.005);
  ck_assert_double_eq_tol(var, 1.0 / 12, 0.002);
  ck_assert_double_eq_tol(nsum / n, 0.0, 0.01);
  ck_assert_double_eq_tol(nsum2 / n, 1.0, 0.02);
  ck_assert_double_eq_tol(nsum4 / n, 3.0, 0.1);  // the normal's kurtosis
  for (int b = 0; b < 64; b++) ck_assert_int_lt(abs(bits[b] - n / 2), n / 100);
  ck_assert_double_eq(aert_normal(5, 9), aert_normal(5, 9));
}
END_TEST

START_TEST(test_shuffle_is_a_permutation) {
  enum { N = 1000 };
  uint32_t a[N], b[N], c[N];
  aert_shuffle(a, N, 1, 0);
  aert_shuffle(b, N, 1, 0);
  aert_shuffle(c, N, 1, 1);
  ck_assert_mem_eq(a, b, sizeof a);
  ck_assert_int_ne(memcmp(a, c, sizeof a), 0);
  char seen[N] = {0};
  int fixed = 0;
  for (int i = 0; i < N; i++) {
    ck_assert_uint_lt(a[i], N);
    ck_assert_int_eq(seen[a[i]], 0);
    seen[a[i]] = 1;
    fixed += a[i] == (uint32_t)i;
  }
  ck_assert_int_lt(fixed, 10);
  uint32_t one[1];
  aert_shuffle(one, 1, 1, 0);
  ck_assert_uint_eq(one[0], 0);
  aert_shuffle(NULL, 0, 1, 0);
}
END_TEST

Suite *rng_suite(void) {
  Suite *s = suite_create("rng");
  TCase *units = tcase_create("units");
  tcase_set_timeout(units, 60);
  tcase_add_test(units, test_rng_deterministic_and_moments);
  tcase_add_test(units, test_shuffle_is_a_permutation);
  suite_add_tcase(s, units);
  return s;
}
