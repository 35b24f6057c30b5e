// analysis.h — numerical analyses of data and codes (runtime/analysis/),
// above core; they know nothing of commands, options or files.
#ifndef AERT_ANALYSIS_H
#define AERT_ANALYSIS_H

#include "core.h"

// ------------------------------------------------------------------- pca.c
typedef struct aert_pca {
  int dim, k;
  double *mean;            // [dim]
  double *components;      // [k][dim]: orthonormal rows, by decreasing variance
  double *variances;       // [k]: the variance along each
  double total_variance;   // the covariance's trace
} aert_pca;
// Fits the top k principal components of n samples of d values (the
// covariance, then subspace iteration with Rayleigh-Ritz steps; Jacobi when
// k is near d). 0, or -1 after a message.
int aert_pca_fit(const aert_real *x, size_t n, int d, int k, aert_pca *out);
void aert_pca_free(aert_pca *pca);
// coords[k] = the components' inner products with x - mean.
void aert_pca_project(const aert_pca *pca, const aert_real *x, double *coords);
// The squared error of x's reconstruction from its k coordinates (coords: scratch of k).
double aert_pca_squared_error(const aert_pca *pca, const aert_real *x, double *coords);
// Eigen-decomposition of a symmetric m x m matrix by cyclic Jacobi rotations
// (a is destroyed): values descending, vectors[i * m ..] the unit eigenvector of values[i].
void aert_eigen_symmetric(double *a, int m, double *values, double *vectors);

// ------------------------------------------------------------- receptive.c
// The receptive field of a layer's units, walked back through the model
// description's graph from node `node` (aert_model.layer_nodes): for a unit at
// row r and column c of an [channels, rows, cols] output, the input rows
// row_lo[r]..row_hi[r] and columns col_lo[c]..col_hi[c] (inclusive, nominal:
// they run past the image where a layer padded). `whole` (arrays NULL) when
// the input is flat or a dense or reshape lies on the way: every unit sees the
// whole input. height x width: the largest field (the image's size when whole).
typedef struct aert_receptive_field {
  bool whole;
  int *row_lo, *row_hi, *col_lo, *col_hi;
  int height, width;
} aert_receptive_field;
// false after a message (a malformed description).
bool aert_receptive_field_of(const aert_model *model, int node, aert_receptive_field *rf);
void aert_receptive_field_free(aert_receptive_field *rf);

// ----------------------------------------------------------------- probe.c
// A softmax classifier (multinomial logistic regression) on standardized
// features, trained with Adam on mini-batches of n_train samples of d values
// (labels 0..classes-1), `epochs` passes shuffled from `seed`; returns its
// accuracy on the n_test samples (NAN when memory runs out or n_test is 0).
double aert_softmax_probe(const aert_real *train, const int32_t *train_labels, size_t n_train, const aert_real *test,
                          const int32_t *test_labels, size_t n_test, int d, int classes, int epochs, uint64_t seed);

// ------------------------------------------------------------ neighbours.c
// The k nearest rows of db (n_db x d) to each query (n_q x d), by Euclidean
// or by cosine distance, into neighbours[q * k ..], nearest first;
// `self` >= 0: the queries are the database's rows from `self` on, and a
// query does not find itself; -1: they are not.
void aert_knn_search(const aert_real *db, size_t n_db, const aert_real *queries, size_t n_q, int d, int k,
                     bool cosine, long self, uint32_t *neighbours);
// Among equal distances the lower row comes first. The dot products go in
// the widest vectors the processor has: aert_knn_vector_bytes() (64 with
// AVX-512, 32 with AVX2 and FMA, else 16); aert_knn_search_with takes the
// width (16, 32 or 64, which the processor must have) to compare them.
int aert_knn_vector_bytes(void);
void aert_knn_search_with(int vector_bytes, const aert_real *db, size_t n_db, const aert_real *queries, size_t n_q,
                          int d, int k, bool cosine, long self, uint32_t *neighbours);
// Codes thresholded at 0.5, packed 64 to a word (`words` a row); NULL when memory runs out.
uint64_t *aert_binary_codes(const aert_real *codes, size_t n, int d, int words);
// The k nearest by Hamming distance; ties go to the earlier database row.
void aert_knn_hamming(const uint64_t *db, size_t n_db, const uint64_t *queries, size_t n_q, int words, int k,
                      long self, uint32_t *neighbours);
// The mean over queries of the fraction of their k neighbours with the query's label.
double aert_precision_at_k(const uint32_t *neighbours, size_t n_q, int k, const int32_t *db_labels,
                           const int32_t *query_labels);

// -------------------------------------------------------------- distance.c
// The mean of (a[i] - b[i])^2 over count values (0 when count is 0).
double aert_mean_squared_error(const aert_real *a, const aert_real *b, size_t count);
// The energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'| between n rows of x and n rows of y (dim values each).
double aert_energy_distance(const double *x, const double *y, size_t n, int dim);

// ------------------------------------------------------------------- roc.c
// How well scores separate positives (positive[i]) from the rest, higher
// scores meaning positive; NaN scores rank above every number. The area
// under the ROC curve, exact: the Mann–Whitney statistic, the fraction of
// (positive, negative) pairs the score orders right, a tie counting one half
// (NaN without positives or without negatives, or out of memory).
double aert_roc_auc(const double *scores, const bool *positive, size_t n);
// The average precision, scikit-learn's average_precision_score: the sum over
// distinct scores t, highest first, of (recall gained at t) * (precision of
// flagging every score >= t); NaN without positives.
double aert_average_precision(const double *scores, const bool *positive, size_t n);
// The q-quantile (0 <= q <= 1) with linear interpolation between order
// statistics (NumPy's default); NaN when n is 0.
double aert_quantile(const double *values, size_t n, double q);
// The mean and the (population) standard deviation of n values.
void aert_mean_std(const double *values, size_t n, double *mean, double *std);

#endif
