// pca.c — principal component analysis in plain C: the covariance of the
// data, then its top k eigenvectors by subspace iteration with Rayleigh–Ritz
// steps, the small projected problems solved by cyclic Jacobi rotations.
// Used by `pca` (the baseline the autoencoder is measured against) and by
// `encode --plot` (a 2-D view of codes with more than two dimensions).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

#define MAX_SWEEPS 100
#define MAX_ITERATIONS 1000

// Cyclic Jacobi on a symmetric m x m matrix a (row-major, destroyed):
// values[i] and vectors[i * m ..] (row i, unit length) for i = 0..m-1, by
// decreasing eigenvalue.
void aert_eigen_symmetric(double *a, int m, double *values, double *vectors) {
  double *v = calloc((size_t)m * (size_t)m, sizeof *v);  // columns: eigenvectors
  for (int i = 0; i < m; i++) v[(size_t)i * m + i] = 1;
  for (int sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    double off = 0, diag = 0;
    for (int p = 0; p < m; p++) {
      diag += a[(size_t)p * m + p] * a[(size_t)p * m + p];
      for (int q = p + 1; q < m; q++) off += a[(size_t)p * m + q] * a[(size_t)p * m + q];
    }
    if (off <= 1e-30 * diag || off == 0) break;
    for (int p = 0; p < m; p++)
      for (int q = p + 1; q < m; q++) {
        double apq = a[(size_t)p * m + q];
        if (fabs(apq) < 1e-300) continue;
        double app = a[(size_t)p * m + p], aqq = a[(size_t)q * m + q];
        double theta = (aqq - app) / (2 * apq);
        double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
        double c = 1 / sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < m; k++) {  // columns p and q
          double akp = a[(size_t)k * m + p], akq = a[(size_t)k * m + q];
          a[(size_t)k * m + p] = c * akp - s * akq;
          a[(size_t)k * m + q] = s * akp + c * akq;
        }
        for (int k = 0; k < m; k++) {  // rows p and q
          double apk = a[(size_t)p * m + k], aqk = a[(size_t)q * m + k];
          a[(size_t)p * m + k] = c * apk - s * aqk;
          a[(size_t)q * m + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < m; k++) {
          double vkp = v[(size_t)k * m + p], vkq = v[(size_t)k * m + q];
          v[(size_t)k * m + p] = c * vkp - s * vkq;
          v[(size_t)k * m + q] = s * vkp + c * vkq;
        }
      }
  }
  // Sort by decreasing eigenvalue (selection sort: m is small where it matters).
  int *order = malloc((size_t)m * sizeof *order);
  for (int i = 0; i < m; i++) order[i] = i;
  for (int i = 0; i < m; i++) {
    int best = i;
    for (int j = i + 1; j < m; j++)
      if (a[(size_t)order[j] * m + order[j]] > a[(size_t)order[best] * m + order[best]]) best = j;
    int t = order[i];
    order[i] = order[best], order[best] = t;
  }
  for (int i = 0; i < m; i++) {
    values[i] = a[(size_t)order[i] * m + order[i]];
    for (int k = 0; k < m; k++) vectors[(size_t)i * m + k] = v[(size_t)k * m + order[i]];
  }
  free(order);
  free(v);
}

// z[j] = C q[j] for the m rows of q (each of length d).
static void multiply(const double *c, int d, const double *q, int m, double *z) {
#pragma omp parallel for schedule(static)
  for (int j = 0; j < m; j++) {
    const double *qj = q + (size_t)j * d;
    double *zj = z + (size_t)j * d;
    for (int r = 0; r < d; r++) {
      const double *cr = c + (size_t)r * d;
      double sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int k = 0; k < d; k++) sum += cr[k] * qj[k];
      zj[r] = sum;
    }
  }
}

// Orthonormalizes the m rows of q (modified Gram–Schmidt, twice); a row that
// vanishes is replaced by a fresh direction.
static void orthonormalize(double *q, int m, int d, uint64_t salt) {
  for (int pass = 0; pass < 2; pass++)
    for (int j = 0; j < m; j++) {
      double *qj = q + (size_t)j * d;
      for (int i = 0; i < j; i++) {
        const double *qi = q + (size_t)i * d;
        double dot = 0;
        for (int k = 0; k < d; k++) dot += qi[k] * qj[k];
        for (int k = 0; k < d; k++) qj[k] -= dot * qi[k];
      }
      double norm = 0;
      for (int k = 0; k < d; k++) norm += qj[k] * qj[k];
      norm = sqrt(norm);
      if (norm < 1e-150) {
        for (int k = 0; k < d; k++) qj[k] = aert_uniform01(salt + (uint64_t)pass, (uint64_t)j * (uint64_t)d + (uint64_t)k) - 0.5;
        j--;  // orthogonalize the new direction too
        continue;
      }
      for (int k = 0; k < d; k++) qj[k] /= norm;
    }
}

void aert_pca_free(aert_pca *p) {
  if (!p) return;
  free(p->mean), free(p->components), free(p->variances);
  memset(p, 0, sizeof *p);
}

int aert_pca_fit(const aert_real *x, size_t n, int d, int k, aert_pca *out) {
  memset(out, 0, sizeof *out);
  if (n < 1 || d < 1 || k < 1 || k > d) {
    aert_error("PCA needs data and 1 <= dim <= %d (got dim %d)", d, k);
    return -1;
  }
  enum { BLOCK = 64 };
  size_t dd = (size_t)d * (size_t)d;
  out->dim = d, out->k = k;
  out->mean = calloc((size_t)d, sizeof(double));
  out->components = calloc((size_t)k * (size_t)d, sizeof(double));
  out->variances = calloc((size_t)k, sizeof(double));
  double *cov = calloc(dd, sizeof *cov), *block = malloc(BLOCK * (size_t)d * sizeof *block);
  if (!out->mean || !out->components || !out->variances || !cov || !block) {
    free(cov), free(block), aert_pca_free(out);
    aert_error("out of memory for a PCA of %d dimensions", d);
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < d; j++) out->mean[j] += x[i * (size_t)d + (size_t)j];
  for (int j = 0; j < d; j++) out->mean[j] /= (double)n;
  // The upper triangle of sum (x - mean)(x - mean)^T, BLOCK samples at a time.
  for (size_t first = 0; first < n; first += BLOCK) {
    int b = (int)(n - first < BLOCK ? n - first : BLOCK);
    for (int s = 0; s < b; s++)
      for (int j = 0; j < d; j++) block[(size_t)s * d + j] = x[(first + (size_t)s) * (size_t)d + (size_t)j] - out->mean[j];
#pragma omp parallel for schedule(dynamic, 8)
    for (int r = 0; r < d; r++) {
      double *row = cov + (size_t)r * d;
      for (int s = 0; s < b; s++) {
        const double *xs = block + (size_t)s * d;
        const double xr = xs[r];
        if (xr == 0) continue;
#pragma omp simd
        for (int c = r; c < d; c++) row[c] += xr * xs[c];
      }
    }
  }
  free(block);
  for (int r = 0; r < d; r++)
    for (int c = r; c < d; c++) {
      cov[(size_t)r * d + c] /= (double)n;
      cov[(size_t)c * d + r] = cov[(size_t)r * d + c];
    }
  for (int r = 0; r < d; r++) out->total_variance += cov[(size_t)r * d + r];

  int m = k + (k / 2 > 10 ? k / 2 : 10);  // a few spare directions speed convergence
  if (m >= d / 2) m = d;                   // then solve the whole problem at once
  double *values = malloc((size_t)m * sizeof *values), *vectors = malloc((size_t)m * (size_t)m * sizeof *vectors);
  double *h = malloc((size_t)m * (size_t)m * sizeof *h);
  double *q = malloc((size_t)m * (size_t)d * sizeof *q), *z = malloc((size_t)m * (size_t)d * sizeof *z);
  double *previous = malloc((size_t)m * sizeof *previous);
  int status = -1;
  if (!values || !vectors || !h || !q || !z || !previous) {
    aert_error("out of memory for a PCA of %d dimensions", d);
    goto done;
  }
  if (m == d) {  // Jacobi on the covariance itself
    memcpy(h, cov, dd * sizeof *h);
    aert_eigen_symmetric(h, d, values, vectors);
    for (int i = 0; i < k; i++) {
      out->variances[i] = values[i];
      memcpy(out->components + (size_t)i * d, vectors + (size_t)i * d, (size_t)d * sizeof(double));
    }
    status = 0;
    goto done;
  }
  uint64_t key = aert_stream_key(0x706361, 1, (uint64_t)d);  // fixed: a PCA is the same every run
  for (size_t i = 0; i < (size_t)m * (size_t)d; i++) q[i] = aert_uniform01(key, i) - 0.5;
  orthonormalize(q, m, d, key);
  for (int i = 0; i < m; i++) previous[i] = 0;
  for (int iteration = 0; iteration < MAX_ITERATIONS; iteration++) {
    aert_progress("pca: subspace iterations (at most)", (size_t)iteration, MAX_ITERATIONS);
    multiply(cov, d, q, m, z);  // z = C q, then q = orth(z)
    memcpy(q, z, (size_t)m * (size_t)d * sizeof *q);
    orthonormalize(q, m, d, key + 7);
    multiply(cov, d, q, m, z);  // Rayleigh–Ritz: h = q^T C q, q <- its eigenvectors in the basis q
    for (int i = 0; i < m; i++)
      for (int j = 0; j < m; j++) {
        double sum = 0;
        for (int t = 0; t < d; t++) sum += q[(size_t)i * d + t] * z[(size_t)j * d + t];
        h[(size_t)i * m + j] = sum;
      }
    for (int i = 0; i < m; i++)  // symmetrize the rounding
      for (int j = i + 1; j < m; j++) h[(size_t)i * m + j] = h[(size_t)j * m + i] = 0.5 * (h[(size_t)i * m + j] + h[(size_t)j * m + i]);
    aert_eigen_symmetric(h, m, values, vectors);
    for (int i = 0; i < m; i++) {  // z rows = the Ritz vectors
      double *zi = z + (size_t)i * d;
      memset(zi, 0, (size_t)d * sizeof *zi);
      for (int j = 0; j < m; j++) {
        double w = vectors[(size_t)i * m + j];
        const double *qj = q + (size_t)j * d;
        for (int t = 0; t < d; t++) zi[t] += w * qj[t];
      }
    }
    memcpy(q, z, (size_t)m * (size_t)d * sizeof *q);
    double change = 0;
    for (int i = 0; i < k; i++) change = fmax(change, fabs(values[i] - previous[i]) / fmax(values[0], 1e-300));
    memcpy(previous, values, (size_t)m * sizeof *previous);
    if (iteration > 2 && change < 1e-12) break;
  }
  aert_progress("pca: subspace iterations (at most)", MAX_ITERATIONS, MAX_ITERATIONS);
  for (int i = 0; i < k; i++) {
    out->variances[i] = values[i];
    memcpy(out->components + (size_t)i * d, q + (size_t)i * d, (size_t)d * sizeof(double));
  }
  status = 0;
done:
  free(values), free(vectors), free(h), free(q), free(z), free(previous), free(cov);
  if (status != 0) aert_pca_free(out);
  return status;
}

void aert_pca_project(const aert_pca *p, const aert_real *x, double *coords) {
  for (int i = 0; i < p->k; i++) {
    const double *v = p->components + (size_t)i * (size_t)p->dim;
    double sum = 0;
    for (int j = 0; j < p->dim; j++) sum += v[j] * ((double)x[j] - p->mean[j]);
    coords[i] = sum;
  }
}

double aert_pca_squared_error(const aert_pca *p, const aert_real *x, double *coords) {
  aert_pca_project(p, x, coords);
  double error = 0;
  for (int j = 0; j < p->dim; j++) {
    double r = p->mean[j];
    for (int i = 0; i < p->k; i++) r += coords[i] * p->components[(size_t)i * (size_t)p->dim + (size_t)j];
    error += (r - (double)x[j]) * (r - (double)x[j]);
  }
  return error;
}
