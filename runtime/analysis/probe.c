// probe.c — a linear probe of features: a softmax classifier (multinomial
// logistic regression) trained on some labelled samples and scored on others,
// for the probe command's codes and raw inputs alike.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

// A softmax classifier (multinomial logistic regression) on standardized
// features, trained with Adam on mini-batches; returns its test accuracy.
double aert_softmax_probe(const aert_real *train, const int32_t *train_labels, size_t n_train, const aert_real *test,
                          const int32_t *test_labels, size_t n_test, int d, int classes, int epochs, uint64_t seed) {
  enum { BATCH = 64 };
  const double lr = 0.002, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, decay = 1e-4;
  size_t wsize = ((size_t)d + 1) * (size_t)classes;  // row d: the biases
  double *mean = calloc((size_t)d, sizeof *mean), *scale = calloc((size_t)d, sizeof *scale);
  double *w = calloc(wsize, sizeof *w), *g = calloc(wsize, sizeof *g), *m = calloc(wsize, sizeof *m),
         *v = calloc(wsize, sizeof *v), *p = calloc((size_t)classes, sizeof *p), *f = calloc((size_t)d, sizeof *f);
  uint32_t *order = malloc((n_train ? n_train : 1) * sizeof *order);
  double accuracy = NAN;
  if (!mean || !scale || !w || !g || !m || !v || !p || !f || !order) goto done;
  for (size_t i = 0; i < n_train; i++)
    for (int j = 0; j < d; j++) mean[j] += train[i * (size_t)d + (size_t)j];
  for (int j = 0; j < d; j++) mean[j] /= (double)n_train;
  for (size_t i = 0; i < n_train; i++)
    for (int j = 0; j < d; j++) {
      double c = train[i * (size_t)d + (size_t)j] - mean[j];
      scale[j] += c * c;
    }
  for (int j = 0; j < d; j++) scale[j] = 1 / sqrt(scale[j] / (double)n_train + 1e-6);
  long t = 0;
  for (int epoch = 0; epoch < epochs; epoch++) {
    aert_progress("probe: epochs of the classifier", (size_t)epoch, (size_t)epochs);
    aert_shuffle(order, n_train, seed, (uint64_t)epoch);
    for (size_t first = 0; first < n_train; first += BATCH) {
      size_t b = n_train - first < BATCH ? n_train - first : BATCH;
      memset(g, 0, wsize * sizeof *g);
      for (size_t s = 0; s < b; s++) {
        size_t row = order[first + s];
        for (int j = 0; j < d; j++) f[j] = (train[row * (size_t)d + (size_t)j] - mean[j]) * scale[j];
        double top = -INFINITY, total = 0;
        for (int c = 0; c < classes; c++) {
          double z = w[(size_t)d * classes + c];
          for (int j = 0; j < d; j++) z += f[j] * w[(size_t)j * classes + c];
          p[c] = z, top = fmax(top, z);
        }
        for (int c = 0; c < classes; c++) total += p[c] = exp(p[c] - top);
        for (int c = 0; c < classes; c++) p[c] = (p[c] / total - (c == train_labels[row])) / (double)b;
        for (int j = 0; j < d; j++)
          for (int c = 0; c < classes; c++) g[(size_t)j * classes + c] += f[j] * p[c];
        for (int c = 0; c < classes; c++) g[(size_t)d * classes + c] += p[c];
      }
      t++;
      double c1 = 1 - pow(beta1, (double)t), c2 = 1 - pow(beta2, (double)t);
      for (size_t i = 0; i < wsize; i++) {
        double gi = g[i] + (i < (size_t)d * classes ? decay * w[i] : 0);
        m[i] = beta1 * m[i] + (1 - beta1) * gi;
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
        w[i] -= lr * (m[i] / c1) / (sqrt(v[i] / c2) + eps);
      }
    }
  }
  aert_progress("probe: epochs of the classifier", (size_t)epochs, (size_t)epochs);
  size_t right = 0;
  for (size_t i = 0; i < n_test; i++) {
    int best = 0;
    double top = -INFINITY;
    for (int c = 0; c < classes; c++) {
      double z = w[(size_t)d * classes + c];
      for (int j = 0; j < d; j++) z += (test[i * (size_t)d + (size_t)j] - mean[j]) * scale[j] * w[(size_t)j * classes + c];
      if (z > top) top = z, best = c;
    }
    right += best == test_labels[i];
  }
  accuracy = n_test ? (double)right / (double)n_test : NAN;
done:
  free(mean), free(scale), free(w), free(g), free(m), free(v), free(p), free(f), free(order);
  return accuracy;
}
