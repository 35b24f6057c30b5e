// knn_kernel.h — one instruction set's exact nearest-neighbour search over a
// block of queries (see neighbours.c, which includes this file once for each
// vector width, under #pragma GCC target, and picks one at run time).
//
// Before including it, define KNN_BYTES (the vector's width in bytes),
// KNN_ROWS (database rows a tile) and KNN_NAME(x) (a suffix for this instance's names).
//
// The queries come packed in panels of KNN_W = 2 vectors of queries,
// [panel][t][KNN_W]: lane w of step t is element t of the panel's query w
// (zero in lanes past the last query). A tile is KNN_ROWS database rows
// against one panel: KNN_ROWS x 2 vectors of dot products in registers, each
// step one load of the panel's two vectors, a broadcast of each row's
// element and two multiply-adds a row, every sum over t in order. The tile's
// database rows stay in L1 while every panel of the block runs against them,
// so the database comes from memory once a block of queries.
//
// Each query keeps its k best (distance, row) sorted, nearest first; a row
// displaces the k-th only when strictly nearer, and goes after the rows at
// the same distance, so that among equal distances the lower row comes first
// (the database goes in increasing row order for every query). A tile's
// distances a_j - b_j * dot are compared with each query's k-th distance a
// vector at a time; only lanes that beat it go to the insertion.

#define KNN_L (KNN_BYTES / (int)sizeof(aert_real))
#define KNN_W (2 * KNN_L)

typedef aert_real KNN_NAME(vec) __attribute__((vector_size(KNN_BYTES)));
typedef __typeof__((KNN_NAME(vec)){0} < (KNN_NAME(vec)){0}) KNN_NAME(mask);

// Whether any lane of a comparison is true.
static inline __attribute__((always_inline)) bool KNN_NAME(any)(KNN_NAME(mask) m) {
  int64_t folded[KNN_BYTES / 8];
  __builtin_memcpy(folded, &m, sizeof folded);
  int64_t some = 0;
#pragma GCC unroll 8
  for (int i = 0; i < KNN_BYTES / 8; i++) some |= folded[i];
  return some != 0;
}

// acc[r][v] = sum over t < d of x[r * d + t] * panel[t * KNN_W + v * KNN_L ..]
// (rows a literal at every call, so the loops unroll).
static inline __attribute__((always_inline)) void KNN_NAME(tile)(int rows, const aert_real *restrict x, size_t d,
                                                                  const aert_real *restrict panel,
                                                                  KNN_NAME(vec) acc[KNN_ROWS][2]) {
#pragma GCC unroll 16
  for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = (KNN_NAME(vec)){0};
  for (size_t t = 0; t < d; t++) {
    const KNN_NAME(vec) q0 = *(const KNN_NAME(vec) *)(panel + t * KNN_W);
    const KNN_NAME(vec) q1 = *(const KNN_NAME(vec) *)(panel + t * KNN_W + KNN_L);
#pragma GCC unroll 16
    for (int r = 0; r < rows; r++) {
      const aert_real xr = x[(size_t)r * d + t];
      acc[r][0] += xr * q0, acc[r][1] += xr * q1;  // fused where the target has FMA (-ffp-contract=fast)
    }
  }
}

// Offers the tile's distances to the panel's queries (lanes); thr[w] is lane
// w's k-th distance (-inf in lanes past the last query), best and index its
// k best, [KNN_W][k].
static inline __attribute__((always_inline)) void KNN_NAME(offer)(int rows, const knn_search *s, size_t j0,
                                                                   size_t q_first, KNN_NAME(vec) acc[KNN_ROWS][2],
                                                                   aert_real *restrict thr, aert_real *restrict best,
                                                                   uint32_t *restrict index) {
  KNN_NAME(vec) dist[KNN_ROWS][2];
  KNN_NAME(mask) any[2] = {{0}, {0}};
  const KNN_NAME(vec) t0 = *(const KNN_NAME(vec) *)thr, t1 = *(const KNN_NAME(vec) *)(thr + KNN_L);
#pragma GCC unroll 16
  for (int r = 0; r < rows; r++) {
    const aert_real a = s->norms[j0 + (size_t)r], b = s->scales[j0 + (size_t)r];
    dist[r][0] = a - b * acc[r][0], dist[r][1] = a - b * acc[r][1];
    any[0] |= dist[r][0] < t0, any[1] |= dist[r][1] < t1;
  }
  if (!KNN_NAME(any)(any[0] | any[1])) return;
  for (int r = 0; r < rows; r++)
    for (int v = 0; v < 2; v++) {  // the vectors with a lane that beats its query's k-th, against the k-th as it is now
      const KNN_NAME(mask) beats = dist[r][v] < *(const KNN_NAME(vec) *)(thr + v * KNN_L);
      if (!KNN_NAME(any)(beats)) continue;
      const size_t j = j0 + (size_t)r;
      for (int l = 0; l < KNN_L; l++) {
        const int w = v * KNN_L + l;
        if (!beats[l] || (s->self >= 0 && j == (size_t)s->self + q_first + (size_t)w)) continue;
        thr[w] = knn_insert(best + (size_t)w * s->k, index + (size_t)w * s->k, s->k, dist[r][v][l], (uint32_t)j);
      }
    }
}

// The k nearest rows for the queries of n_panels panels (packed as above,
// the first query q_first), over the whole database.
static void KNN_NAME(block)(const knn_search *s, const aert_real *packed, int n_panels, size_t q_first, aert_real *thr,
                            aert_real *best, uint32_t *index) {
  const size_t d = (size_t)s->d, n_db = s->n_db, full = n_db - n_db % KNN_ROWS;
  KNN_NAME(vec) acc[KNN_ROWS][2];
  for (size_t j0 = 0; j0 < full; j0 += KNN_ROWS)
    for (int p = 0; p < n_panels; p++) {
      const size_t lane = (size_t)p * KNN_W;
      KNN_NAME(tile)(KNN_ROWS, s->db + j0 * d, d, packed + lane * d, acc);
      KNN_NAME(offer)(KNN_ROWS, s, j0, q_first + lane, acc, thr + lane, best + lane * (size_t)s->k,
                      index + lane * (size_t)s->k);
    }
  if (full == n_db) return;
  for (int p = 0; p < n_panels; p++) {  // the last rows, one at a time
    const size_t lane = (size_t)p * KNN_W;
    for (size_t j = full; j < n_db; j++) {
      KNN_NAME(tile)(1, s->db + j * d, d, packed + lane * d, acc);
      KNN_NAME(offer)(1, s, j, q_first + lane, acc, thr + lane, best + lane * (size_t)s->k, index + lane * (size_t)s->k);
    }
  }
}

#undef KNN_L
#undef KNN_W
