// neighbours.c — the k nearest neighbours of queries in a database of
// vectors, by Euclidean, cosine or (on bits) Hamming distance, and the
// precision of their labels: the retrieve command's search.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

// The k nearest rows of db (n_db x d) to each query (n_q x d), by Euclidean
// or by cosine distance: neighbours[q * k ..], nearest first. Both rank by
// a - 2 b . q with a per-row a and b, the query's own norm being the same
// for every row: Euclidean a = |x|^2, b = 1; cosine a = 0, b = 1 / (2 |x|)
// (a zero row is at distance 0 from everything). Queries go 4 at a time
// against each database row, so a row is read once per 4 queries.
// `self` >= 0: query q is database row self + q, which it does not find.
void aert_knn_search(const aert_real *db, size_t n_db, const aert_real *queries, size_t n_q, int d, int k,
                     bool cosine, long self, uint32_t *neighbours) {
  float *norms = malloc((n_db ? n_db : 1) * sizeof *norms);
  float *scales = malloc((n_db ? n_db : 1) * sizeof *scales);
#pragma omp parallel for schedule(static)
  for (size_t j = 0; j < n_db; j++) {
    const aert_real *x = db + j * (size_t)d;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int t = 0; t < d; t++) s += (float)x[t] * (float)x[t];
    norms[j] = cosine ? 0 : s;
    scales[j] = !cosine ? 1 : s > 0 ? 0.5f / sqrtf(s) : 0;
  }
#pragma omp parallel
  {
    float *best = malloc(4 * (size_t)k * sizeof *best);
    uint32_t *index = malloc(4 * (size_t)k * sizeof *index);
#pragma omp for schedule(dynamic, 4)
    for (size_t q0 = 0; q0 < n_q; q0 += 4) {
      int m = (int)(n_q - q0 < 4 ? n_q - q0 : 4);
      const aert_real *qs[4];
      for (int a = 0; a < 4; a++) qs[a] = queries + (q0 + (size_t)(a < m ? a : 0)) * (size_t)d;
      for (int i = 0; i < 4 * k; i++) best[i] = INFINITY, index[i] = UINT32_MAX;
      for (size_t j = 0; j < n_db; j++) {
        const aert_real *x = db + j * (size_t)d;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
        for (int t = 0; t < d; t++) {
          float v = (float)x[t];
          s0 += v * (float)qs[0][t], s1 += v * (float)qs[1][t], s2 += v * (float)qs[2][t], s3 += v * (float)qs[3][t];
        }
        float b = 2 * scales[j];
        float dist[4] = {norms[j] - b * s0, norms[j] - b * s1, norms[j] - b * s2, norms[j] - b * s3};
        for (int a = 0; a < m; a++) {
          float *b = best + (size_t)a * k;
          if (!(dist[a] < b[k - 1]) || (self >= 0 && j == (size_t)self + q0 + (size_t)a)) continue;
          uint32_t *ix = index + (size_t)a * k;
          int p = k - 1;
          for (; p > 0 && b[p - 1] > dist[a]; p--) b[p] = b[p - 1], ix[p] = ix[p - 1];
          b[p] = dist[a], ix[p] = (uint32_t)j;
        }
      }
      for (int a = 0; a < m; a++) memcpy(neighbours + (q0 + (size_t)a) * (size_t)k, index + (size_t)a * k, (size_t)k * sizeof *index);
    }
    free(best), free(index);
  }
  free(norms), free(scales);
}

// Codes thresholded at 0.5, packed 64 to a word (semantic hashing).
uint64_t *aert_binary_codes(const aert_real *codes, size_t n, int d, int words) {
  uint64_t *bits = calloc((n ? n : 1) * (size_t)words, sizeof *bits);
  if (!bits) return NULL;
  for (size_t i = 0; i < n; i++)
    for (int t = 0; t < d; t++)
      if (codes[i * (size_t)d + (size_t)t] > (aert_real)0.5) bits[i * (size_t)words + (size_t)(t / 64)] |= 1ULL << (t % 64);
  return bits;
}

// The k nearest by Hamming distance; ties go to the earlier database row.
void aert_knn_hamming(const uint64_t *db, size_t n_db, const uint64_t *queries, size_t n_q, int words, int k,
                      long self, uint32_t *neighbours) {
#pragma omp parallel
  {
    int *best = malloc((size_t)k * sizeof *best);
    uint32_t *index = malloc((size_t)k * sizeof *index);
#pragma omp for schedule(dynamic, 16)
    for (size_t q = 0; q < n_q; q++) {
      const uint64_t *qb = queries + q * (size_t)words;
      for (int i = 0; i < k; i++) best[i] = INT32_MAX, index[i] = UINT32_MAX;
      for (size_t j = 0; j < n_db; j++) {
        if (self >= 0 && j == (size_t)self + q) continue;
        const uint64_t *x = db + j * (size_t)words;
        int dist = 0;
        for (int w = 0; w < words; w++) dist += __builtin_popcountll(x[w] ^ qb[w]);
        if (dist >= best[k - 1]) continue;
        int p = k - 1;
        for (; p > 0 && best[p - 1] > dist; p--) best[p] = best[p - 1], index[p] = index[p - 1];
        best[p] = dist, index[p] = (uint32_t)j;
      }
      memcpy(neighbours + q * (size_t)k, index, (size_t)k * sizeof *index);
    }
    free(best), free(index);
  }
}

// The mean over queries of the fraction of their k neighbours with the query's label.
double aert_precision_at_k(const uint32_t *neighbours, size_t n_q, int k, const int32_t *db_labels,
                           const int32_t *query_labels) {
  double sum = 0;
  for (size_t q = 0; q < n_q; q++) {
    int same = 0;
    for (int i = 0; i < k; i++) {
      uint32_t j = neighbours[q * (size_t)k + (size_t)i];
      same += j != UINT32_MAX && db_labels[j] == query_labels[q];
    }
    sum += (double)same / k;
  }
  return n_q ? sum / (double)n_q : 0;
}
