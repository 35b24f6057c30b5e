// test_neighbours.c — the exact nearest-neighbour search (analysis/
// neighbours.c) against a plain loop over every pair: Euclidean and cosine,
// with and without the queries being the database's own rows, odd sizes,
// k larger than a tile and than a panel of queries, 1 and 2 threads, every
// vector width this processor has. The vectors hold small integers (cosine:
// rows of 4 or 16 entries of +-1, whose 1 / |x| is a power of two), so every
// distance is exact in any order of summation and ties are exact: among
// equal distances the lower row must come first. Hamming search on packed
// bits against the same kind of loop.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "analysis.h"
#include "tests.h"

static uint64_t state = 0x9e3779b97f4a7c15ULL;
static int draw(int n) {
  state = state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (int)((state >> 33) % (uint64_t)n);
}

// Rows of small integers, with duplicates (exact ties); for cosine, rows of
// 4 or 16 entries +-1 (|x|^2 = 4 or 16) or zero rows.
static void fill(aert_real *x, size_t n, int d, bool cosine) {
  for (size_t i = 0; i < n; i++) {
    aert_real *row = x + i * (size_t)d;
    if (i > 0 && draw(4) == 0) {  // a copy of an earlier row
      memcpy(row, x + (size_t)draw((int)i) * (size_t)d, (size_t)d * sizeof *row);
      continue;
    }
    for (int t = 0; t < d; t++) row[t] = cosine ? 0 : (aert_real)(draw(5) - 2);
    if (!cosine) continue;
    int ones = d >= 16 && draw(2) ? 16 : d >= 4 ? 4 : 0;
    if (draw(10) == 0) ones = 0;
    for (int placed = 0; placed < ones;) {
      int t = draw(d);
      if (row[t] == 0) row[t] = draw(2) ? 1 : -1, placed++;
    }
  }
}

// The plain loop: every distance in double, the k least by (distance, row).
static void reference(const aert_real *db, size_t n_db, const aert_real *q, size_t n_q, int d, int k, bool cosine,
                      long self, uint32_t *out) {
  double *dist = malloc(n_db * sizeof *dist);
  bool *taken = malloc(n_db * sizeof *taken);
  for (size_t i = 0; i < n_q; i++) {
    for (size_t j = 0; j < n_db; j++) {
      double dot = 0, norm = 0;
      for (int t = 0; t < d; t++) {
        dot += (double)q[i * (size_t)d + (size_t)t] * db[j * (size_t)d + (size_t)t];
        norm += (double)db[j * (size_t)d + (size_t)t] * db[j * (size_t)d + (size_t)t];
      }
      dist[j] = cosine ? (norm > 0 ? -dot / sqrt(norm) : 0) : norm - 2 * dot;
      taken[j] = self >= 0 && j == (size_t)self + i;
    }
    for (int a = 0; a < k; a++) {
      size_t best = n_db;
      for (size_t j = 0; j < n_db; j++)
        if (!taken[j] && (best == n_db || dist[j] < dist[best])) best = j;
      out[i * (size_t)k + (size_t)a] = best == n_db ? UINT32_MAX : (uint32_t)best;
      if (best < n_db) taken[best] = true;
    }
  }
  free(dist), free(taken);
}

static void compare(int width, int threads, size_t n_db, size_t n_q, int d, int k, bool cosine, bool self) {
  aert_real *db = malloc(n_db * (size_t)d * sizeof *db), *q = malloc(n_q * (size_t)d * sizeof *q);
  fill(db, n_db, d, cosine);
  if (self)
    memcpy(q, db + 3 * (size_t)d, n_q * (size_t)d * sizeof *q);  // queries: rows 3 on
  else {
    fill(q, n_q, d, cosine);
    for (size_t i = 0; i < n_q; i += 5) memcpy(q + i * (size_t)d, db + (i * 7 % n_db) * (size_t)d, (size_t)d * sizeof *q);
  }
  uint32_t *got = malloc(n_q * (size_t)k * sizeof *got), *want = malloc(n_q * (size_t)k * sizeof *want);
  reference(db, n_db, q, n_q, d, k, cosine, self ? 3 : -1, want);
  omp_set_num_threads(threads);
  aert_knn_search_with(width, db, n_db, q, n_q, d, k, cosine, self ? 3 : -1, got);
  omp_set_num_threads(2);
  for (size_t i = 0; i < n_q * (size_t)k; i++)
    ck_assert_msg(got[i] == want[i],
                  "%d-byte vectors, %d threads, %zu x %zu, d %d, k %d, %s%s: query %zu's neighbour %zu is %u, not %u",
                  width, threads, n_db, n_q, d, k, cosine ? "cosine" : "Euclidean", self ? ", self" : "", i / (size_t)k,
                  i % (size_t)k, got[i], want[i]);
  free(db), free(q), free(got), free(want);
}

START_TEST(test_search_matches_the_plain_loop) {
  int widths[3] = {16}, n_widths = 1;
  if (aert_knn_vector_bytes() >= 32) widths[n_widths++] = 32;
  if (aert_knn_vector_bytes() >= 64) widths[n_widths++] = 64;
  static const struct { size_t n_db, n_q; int d, k; } sizes[] = {
      {203, 53, 37, 5}, {203, 53, 37, 41}, {29, 70, 7, 29}, {97, 33, 1, 3}, {1, 1, 5, 1}, {130, 17, 16, 13},
  };
  for (int w = 0; w < n_widths; w++)
    for (int threads = 1; threads <= 2; threads++)
      for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int cosine = 0; cosine <= 1; cosine++)
          for (int self = 0; self <= 1; self++) {
            if (self && sizes[s].n_q + 3 > sizes[s].n_db) continue;
            compare(widths[w], threads, sizes[s].n_db, sizes[s].n_q, sizes[s].d, sizes[s].k, cosine, self);
          }
  // More neighbours asked for than the database holds: the rest stay UINT32_MAX.
  compare(widths[n_widths - 1], 2, 9, 20, 6, 12, false, false);
}
END_TEST

// The search ranks as the distance does: the nearest row by a loop over
// every pair in double, on real-valued data where ties are unlikely.
START_TEST(test_search_finds_the_nearest_row) {
  enum { N_DB = 311, N_Q = 45, D = 23 };
  aert_real *db = malloc(N_DB * D * sizeof *db), *q = malloc(N_Q * D * sizeof *q);
  for (int i = 0; i < N_DB * D; i++) db[i] = (aert_real)draw(100000) / 1000;
  for (int i = 0; i < N_Q * D; i++) q[i] = (aert_real)draw(100000) / 1000;
  uint32_t got[N_Q];
  aert_knn_search(db, N_DB, q, N_Q, D, 1, false, -1, got);
  for (int i = 0; i < N_Q; i++) {
    double best = INFINITY, second = INFINITY;
    int at = -1;
    for (int j = 0; j < N_DB; j++) {
      double s = 0;
      for (int t = 0; t < D; t++) s += ((double)q[i * D + t] - db[j * D + t]) * ((double)q[i * D + t] - db[j * D + t]);
      if (s < best) second = best, best = s, at = j;
      else if (s < second) second = s;
    }
    if (second - best > 1e-3 * best) ck_assert_int_eq((int)got[i], at);  // not a near tie
  }
  free(db), free(q);
}
END_TEST

// Hamming on packed bits against a plain loop over every pair: few bits, so
// most distances tie and the lower row must come first; 1 and 2 threads,
// with and without the queries being database rows.
START_TEST(test_hamming_matches_the_plain_loop) {
  static const struct { size_t n_db, n_q; int bits, k; } sizes[] = {{157, 29, 9, 7}, {157, 29, 9, 40}, {60, 13, 130, 5}};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
    for (int threads = 1; threads <= 2; threads++)
      for (int self = 0; self <= 1; self++) {
        const size_t n_db = sizes[s].n_db, n_q = sizes[s].n_q;
        const int bits = sizes[s].bits, words = (bits + 63) / 64, k = sizes[s].k;
        aert_real *codes = malloc((n_db + n_q) * (size_t)bits * sizeof *codes);
        for (size_t i = 0; i < (n_db + n_q) * (size_t)bits; i++) codes[i] = (aert_real)draw(2);
        uint64_t *db = aert_binary_codes(codes, n_db, bits, words);
        uint64_t *q = self ? aert_binary_codes(codes + 2 * (size_t)bits, n_q, bits, words)
                           : aert_binary_codes(codes + n_db * (size_t)bits, n_q, bits, words);
        uint32_t *got = malloc(n_q * (size_t)k * sizeof *got);
        omp_set_num_threads(threads);
        aert_knn_hamming(db, n_db, q, n_q, words, k, self ? 2 : -1, got);
        omp_set_num_threads(2);
        for (size_t i = 0; i < n_q; i++) {
          int last = -1;
          uint32_t last_row = 0;
          for (int a = 0; a < k; a++) {
            uint32_t j = got[i * (size_t)k + (size_t)a];
            // The a-th neighbour: the least (distance, row) after the previous one.
            int want_d = INT32_MAX;
            uint32_t want = UINT32_MAX;
            for (size_t r = 0; r < n_db; r++) {
              if (self && r == 2 + i) continue;
              int dist = 0;
              for (int t = 0; t < bits; t++)
                dist += (codes[r * (size_t)bits + (size_t)t] > (aert_real)0.5) !=
                        (codes[(self ? 2 + i : n_db + i) * (size_t)bits + (size_t)t] > (aert_real)0.5);
              bool after = dist > last || (dist == last && r > last_row);
              if (after && (dist < want_d || (dist == want_d && r < want))) want_d = dist, want = (uint32_t)r;
            }
            ck_assert_msg(j == want, "%zu rows, %d bits, k %d, %d threads%s: query %zu's neighbour %d is %u, not %u", n_db,
                          bits, k, threads, self ? ", self" : "", i, a, j, want);
            if (want == UINT32_MAX) break;
            last = want_d, last_row = want;
          }
        }
        free(codes), free(db), free(q), free(got);
      }
}
END_TEST

Suite *neighbours_suite(void) {
  Suite *s = suite_create("neighbours");
  TCase *tc = tcase_create("neighbours");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_search_matches_the_plain_loop);
  tcase_add_test(tc, test_search_finds_the_nearest_row);
  tcase_add_test(tc, test_hamming_matches_the_plain_loop);
  suite_add_tcase(s, tc);
  return s;
}
