// neighbours.c — the k nearest neighbours of queries in a database of
// vectors, by Euclidean, cosine or (on bits) Hamming distance, and the
// precision of their labels: the retrieve command's search.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

#ifdef _OPENMP
#include <omp.h>
#endif

// Exact k nearest neighbours as a matrix product: with a per-row a and b,
// a_j - b_j (q . x_j) ranks database rows as their distance to q does, q's
// own norm being the same for every row: Euclidean a = |x|^2, b = 2; cosine
// a = 0, b = 1 / |x| (a zero row is at distance 0 from everything). The dot
// products go by tiles of database rows against panels of queries, in the
// widest vectors the processor has (knn_kernel.h, compiled here once for
// each width and picked at run time, so the library needs no -march).
typedef struct knn_search {
  const aert_real *db;
  size_t n_db;
  int d, k;
  long self;                     // >= 0: query q is database row self + q, which it does not find
  const aert_real *norms, *scales;  // a_j and b_j
} knn_search;

// Inserts (dist, j) into best[k] (sorted, nearest first) after the entries
// at the same distance; the caller has checked dist < best[k - 1]. Returns
// the new k-th distance.
static aert_real knn_insert(aert_real *best, uint32_t *index, int k, aert_real dist, uint32_t j) {
  int p = k - 1;
  for (; p > 0 && best[p - 1] > dist; p--) best[p] = best[p - 1], index[p] = index[p - 1];
  best[p] = dist, index[p] = j;
  return best[k - 1];
}

// SSE2, every x86-64's (or whatever the library was compiled for).
#define KNN_BYTES 16
#define KNN_ROWS 4
#define KNN_NAME(x) knn_##x##_16
#include "knn_kernel.h"
#undef KNN_BYTES
#undef KNN_ROWS
#undef KNN_NAME

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KNN_DISPATCH 1
// AVX2 with FMA: 6 rows x 2 vectors of 8 floats, 12 of the 16 registers.
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define KNN_BYTES 32
#define KNN_ROWS 6
#define KNN_NAME(x) knn_##x##_32
#include "knn_kernel.h"
#undef KNN_BYTES
#undef KNN_ROWS
#undef KNN_NAME
#pragma GCC pop_options

// AVX-512: 12 rows x 2 vectors of 16 floats, 24 of the 32 registers.
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#define KNN_BYTES 64
#define KNN_ROWS 12
#define KNN_NAME(x) knn_##x##_64
#include "knn_kernel.h"
#undef KNN_BYTES
#undef KNN_ROWS
#undef KNN_NAME
#pragma GCC pop_options
#else
#define KNN_DISPATCH 0
#endif

int aert_knn_vector_bytes(void) {
#if KNN_DISPATCH
  if (__builtin_cpu_supports("avx512f")) return 64;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 32;
#endif
  return 16;
}

typedef void knn_block_fn(const knn_search *, const aert_real *, int, size_t, aert_real *, aert_real *, uint32_t *);

// Each thread's block of queries packs into panels of this many bytes at most
// (they stay in L2 while the database streams past).
enum { KNN_BLOCK_BYTES = 256 << 10 };

void aert_knn_search_with(int vector_bytes, const aert_real *db, size_t n_db, const aert_real *queries, size_t n_q,
                          int d, int k, bool cosine, long self, uint32_t *neighbours) {
  knn_block_fn *block = knn_block_16;
#if KNN_DISPATCH
  if (vector_bytes == 64) block = knn_block_64;
  if (vector_bytes == 32) block = knn_block_32;
#else
  vector_bytes = 16;
#endif
  if (vector_bytes != 64 && vector_bytes != 32) vector_bytes = 16;
  const int width = 2 * vector_bytes / (int)sizeof(aert_real);  // queries a panel
  aert_real *norms = malloc((n_db ? n_db : 1) * sizeof *norms);
  aert_real *scales = malloc((n_db ? n_db : 1) * sizeof *scales);
  if (!norms || !scales) {
    aert_error("retrieve: out of memory for %zu norms", n_db);
    for (size_t i = 0; i < n_q * (size_t)k; i++) neighbours[i] = UINT32_MAX;
    free(norms), free(scales);
    return;
  }
#pragma omp parallel for schedule(static)
  for (size_t j = 0; j < n_db; j++) {
    const aert_real *x = db + j * (size_t)d;
    aert_real s = 0;
#pragma omp simd reduction(+ : s)
    for (int t = 0; t < d; t++) s += x[t] * x[t];
    norms[j] = cosine ? 0 : s;
    scales[j] = !cosine ? 2 : s > 0 ? 1 / sqrt(s) : 0;
  }
  const knn_search search = {db, n_db, d, k, self, norms, scales};
  const size_t n_panels = (n_q + (size_t)width - 1) / (size_t)width;
  size_t per_block = KNN_BLOCK_BYTES / ((size_t)(d ? d : 1) * (size_t)width * sizeof(aert_real));
  if (per_block < 1) per_block = 1;
#pragma omp parallel
  {
#ifdef _OPENMP
    const size_t threads = (size_t)omp_get_num_threads(), thread = (size_t)omp_get_thread_num();
#else
    const size_t threads = 1, thread = 0;
#endif
    // This thread's even share of the panels, in even blocks.
    const size_t first = n_panels * thread / threads, last = n_panels * (thread + 1) / threads;
    const size_t blocks = (last - first + per_block - 1) / per_block;
    const size_t most = blocks ? (last - first + blocks - 1) / blocks : 0, lanes = most * (size_t)width;
    aert_real *packed = most ? aligned_alloc(64, (lanes * (size_t)d * sizeof(aert_real) + 63) / 64 * 64) : NULL;
    aert_real *thr = most ? aligned_alloc(64, (lanes * sizeof(aert_real) + 63) / 64 * 64) : NULL;
    aert_real *best = most ? malloc(lanes * (size_t)k * sizeof *best) : NULL;
    uint32_t *index = most ? malloc(lanes * (size_t)k * sizeof *index) : NULL;
    if (most && (!packed || !thr || !best || !index)) {
      aert_error("retrieve: out of memory for a block of %zu queries", lanes);
      for (size_t i = first * (size_t)width; i < n_q && i < last * (size_t)width; i++)
        for (int a = 0; a < k; a++) neighbours[i * (size_t)k + (size_t)a] = UINT32_MAX;
    } else {
      for (size_t b = 0; b < blocks; b++) {
        const size_t p0 = first + (last - first) * b / blocks, p1 = first + (last - first) * (b + 1) / blocks;
        const size_t q0 = p0 * (size_t)width, q1 = p1 * (size_t)width < n_q ? p1 * (size_t)width : n_q;
        for (size_t p = p0; p < p1; p++) {  // [panel][t][lane], zero past the last query
          aert_real *panel = packed + (p - p0) * (size_t)width * (size_t)d;
          for (int w = 0; w < width; w++) {
            const size_t q = p * (size_t)width + (size_t)w;
            for (int t = 0; t < d; t++) panel[(size_t)t * (size_t)width + (size_t)w] = q < n_q ? queries[q * (size_t)d + (size_t)t] : 0;
          }
        }
        const size_t n_lanes = (p1 - p0) * (size_t)width;
        for (size_t w = 0; w < n_lanes; w++) thr[w] = q0 + w < q1 ? INFINITY : -INFINITY;
        for (size_t i = 0; i < n_lanes * (size_t)k; i++) best[i] = INFINITY, index[i] = UINT32_MAX;
        block(&search, packed, (int)(p1 - p0), q0, thr, best, index);
        memcpy(neighbours + q0 * (size_t)k, index, (q1 - q0) * (size_t)k * sizeof *index);
      }
    }
    free(packed), free(thr), free(best), free(index);
  }
  free(norms), free(scales);
}

void aert_knn_search(const aert_real *db, size_t n_db, const aert_real *queries, size_t n_q, int d, int k,
                     bool cosine, long self, uint32_t *neighbours) {
  aert_knn_search_with(aert_knn_vector_bytes(), db, n_db, queries, n_q, d, k, cosine, self, neighbours);
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

// Hamming distances of up to 8 queries (qb, `m` of them, `words` words a
// row) to every database row, offered to each query's k best (ties to the
// lower row: rows go in order, and a row must be strictly nearer). A row is
// read once for the 8 queries.
typedef struct knn_hamming_job {
  const uint64_t *db;
  size_t n_db;
  int words, k;
  long self;
} knn_hamming_job;

static inline __attribute__((always_inline)) void hamming_block(const knn_hamming_job *job, const uint64_t *qb, int m,
                                                                size_t q0, int *best, uint32_t *index) {
  int kth[8];
  for (int a = 0; a < 8; a++) kth[a] = a < m ? INT32_MAX : -1;
  for (size_t j = 0; j < job->n_db; j++) {
    const uint64_t *x = job->db + j * (size_t)job->words;
    int dist[8] = {0};
    for (int w = 0; w < job->words; w++)
#pragma GCC unroll 8
      for (int a = 0; a < 8; a++) dist[a] += __builtin_popcountll(x[w] ^ qb[(size_t)(a < m ? a : 0) * (size_t)job->words + (size_t)w]);
    for (int a = 0; a < 8; a++) {
      if (dist[a] >= kth[a] || (job->self >= 0 && j == (size_t)job->self + q0 + (size_t)a)) continue;
      int *b = best + (size_t)a * (size_t)job->k;
      uint32_t *ix = index + (size_t)a * (size_t)job->k;
      int p = job->k - 1;
      for (; p > 0 && b[p - 1] > dist[a]; p--) b[p] = b[p - 1], ix[p] = ix[p - 1];
      b[p] = dist[a], ix[p] = (uint32_t)j;
      kth[a] = b[job->k - 1];
    }
  }
}

static void hamming_block_plain(const knn_hamming_job *job, const uint64_t *qb, int m, size_t q0, int *best,
                                uint32_t *index) {
  hamming_block(job, qb, m, q0, best, index);
}

#if KNN_DISPATCH
// With the POPCNT instruction (without it, each count is a call into libgcc).
__attribute__((target("popcnt"))) static void hamming_block_popcnt(const knn_hamming_job *job, const uint64_t *qb,
                                                                    int m, size_t q0, int *best, uint32_t *index) {
  hamming_block(job, qb, m, q0, best, index);
}
#endif

// The k nearest by Hamming distance; ties go to the earlier database row.
void aert_knn_hamming(const uint64_t *db, size_t n_db, const uint64_t *queries, size_t n_q, int words, int k,
                      long self, uint32_t *neighbours) {
  void (*block)(const knn_hamming_job *, const uint64_t *, int, size_t, int *, uint32_t *) = hamming_block_plain;
#if KNN_DISPATCH
  if (__builtin_cpu_supports("popcnt")) block = hamming_block_popcnt;
#endif
  const knn_hamming_job job = {db, n_db, words, k, self};
#pragma omp parallel
  {
    int *best = malloc(8 * (size_t)k * sizeof *best);
    uint32_t *index = malloc(8 * (size_t)k * sizeof *index);
#pragma omp for schedule(dynamic, 1)
    for (size_t q0 = 0; q0 < n_q; q0 += 8) {
      const int m = n_q - q0 < 8 ? (int)(n_q - q0) : 8;
      if (!best || !index) {  // out of memory: no neighbours
        for (size_t i = q0 * (size_t)k; i < (q0 + (size_t)m) * (size_t)k; i++) neighbours[i] = UINT32_MAX;
        continue;
      }
      for (int i = 0; i < 8 * k; i++) best[i] = INT32_MAX, index[i] = UINT32_MAX;
      block(&job, queries + q0 * (size_t)words, m, q0, best, index);
      memcpy(neighbours + q0 * (size_t)k, index, (size_t)m * (size_t)k * sizeof *index);
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
