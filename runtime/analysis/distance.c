// distance.c — how far apart two sets of values are: the mean squared
// error between two arrays (denoise, pca), and the energy distance
//   D(X, Y) = 2 E|X - Y| - E|X - X'| - E|Y - Y'|   (Euclidean norms)
// between two samples of vectors, which is zero exactly when the two
// distributions are equal (Székely and Rizzo); the within-sample means leave
// out i = j (prior-match).
#include <math.h>

#include "analysis.h"

double aert_mean_squared_error(const aert_real *a, const aert_real *b, size_t count) {
  double sum = 0;
  for (size_t i = 0; i < count; i++) sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return count ? sum / (double)count : 0;
}

static double distance(const double *a, const double *b, int dim) {
  double sum = 0;
  for (int d = 0; d < dim; d++) sum += (a[d] - b[d]) * (a[d] - b[d]);
  return sqrt(sum);
}

// The mean distance between rows of x and rows of y (n each); `same` leaves out i = j.
static double mean_distance(const double *x, const double *y, size_t n, int dim, bool same) {
  double sum = 0;
#pragma omp parallel for schedule(dynamic, 64) reduction(+ : sum)
  for (size_t i = 0; i < n; i++) {
    double row = 0;
    for (size_t j = same ? i + 1 : 0; j < n; j++) row += distance(x + i * (size_t)dim, y + j * (size_t)dim, dim);
    sum += same ? 2 * row : row;
  }
  double pairs = same ? (double)n * (double)(n - 1) : (double)n * (double)n;
  return pairs > 0 ? sum / pairs : 0;
}

double aert_energy_distance(const double *x, const double *y, size_t n, int dim) {
  return 2 * mean_distance(x, y, n, dim, false) - mean_distance(x, x, n, dim, true) - mean_distance(y, y, n, dim, true);
}
