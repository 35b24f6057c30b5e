// roc.c — how well a score separates two classes (detect): the area under
// the ROC curve, exactly, as the Mann–Whitney statistic with tied scores
// given their mean rank (a tie between a positive and a negative counts one
// half), and the average precision (the area under the precision–recall
// curve as scikit-learn's average_precision_score sums it: each distinct
// score a threshold, tied scores one step); and the quantiles, mean and
// standard deviation a threshold is fitted from. NaN scores rank above every
// number (a sample whose loss is not a number is the most anomalous).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

typedef struct scored {
  double score;
  bool positive;
} scored;

// NaN above +inf, equal to itself: a total order qsort can rely on.
static int compare_scores(double a, double b) {
  bool na = isnan(a), nb = isnan(b);
  if (na || nb) return na - nb;
  return (a > b) - (a < b);
}

static int by_score(const void *a, const void *b) {
  return compare_scores(((const scored *)a)->score, ((const scored *)b)->score);
}

static int by_value(const void *a, const void *b) { return compare_scores(*(const double *)a, *(const double *)b); }

// The samples sorted by ascending score, and how many are positive; NULL when memory runs out.
static scored *sorted_scores(const double *scores, const bool *positive, size_t n, size_t *n_pos) {
  scored *s = malloc((n ? n : 1) * sizeof *s);
  if (!s) return NULL;
  *n_pos = 0;
  for (size_t i = 0; i < n; i++) s[i] = (scored){scores[i], positive[i]}, *n_pos += positive[i];
  qsort(s, n, sizeof *s, by_score);
  return s;
}

// The end of the run of scores tied with s[from].
static size_t tie_end(const scored *s, size_t n, size_t from) {
  size_t to = from + 1;
  while (to < n && compare_scores(s[to].score, s[from].score) == 0) to++;
  return to;
}

double aert_roc_auc(const double *scores, const bool *positive, size_t n) {
  size_t n_pos;
  scored *s = sorted_scores(scores, positive, n, &n_pos);
  if (!s) return NAN;
  size_t n_neg = n - n_pos;
  // The positives' rank sum, ranks from 1, a tied run sharing its mean rank.
  double rank_sum = 0;
  for (size_t from = 0, to; from < n; from = to) {
    to = tie_end(s, n, from);
    size_t pos = 0;
    for (size_t i = from; i < to; i++) pos += s[i].positive;
    rank_sum += (double)pos * ((double)from + 1 + (double)to) / 2;
  }
  free(s);
  if (n_pos == 0 || n_neg == 0) return NAN;
  double u = rank_sum - (double)n_pos * ((double)n_pos + 1) / 2;  // pairs positive above negative, ties a half
  return u / ((double)n_pos * (double)n_neg);
}

double aert_average_precision(const double *scores, const bool *positive, size_t n) {
  size_t n_pos;
  scored *s = sorted_scores(scores, positive, n, &n_pos);
  if (!s) return NAN;
  double ap = 0;
  size_t tp = 0, flagged = 0;
  // Thresholds from the highest score down: at each, everything at or above it is flagged.
  for (size_t to = n, from; to > 0; to = from) {
    size_t last = to - 1;
    from = last;
    while (from > 0 && compare_scores(s[from - 1].score, s[last].score) == 0) from--;
    size_t pos = 0;
    for (size_t i = from; i < to; i++) pos += s[i].positive;
    tp += pos, flagged += to - from;
    if (pos) ap += (double)pos / (double)n_pos * ((double)tp / (double)flagged);
  }
  free(s);
  return n_pos ? ap : NAN;
}

double aert_quantile(const double *values, size_t n, double q) {
  if (n == 0 || !(q >= 0 && q <= 1)) return NAN;
  double *v = malloc(n * sizeof *v);
  if (!v) return NAN;
  memcpy(v, values, n * sizeof *v);
  qsort(v, n, sizeof *v, by_value);
  double at = q * (double)(n - 1), below = floor(at);
  size_t i = (size_t)below;
  double result = i + 1 < n ? v[i] + (at - below) * (v[i + 1] - v[i]) : v[i];
  free(v);
  return result;
}

void aert_mean_std(const double *values, size_t n, double *mean, double *std) {
  double sum = 0, squares = 0;
  for (size_t i = 0; i < n; i++) sum += values[i];
  *mean = n ? sum / (double)n : NAN;
  for (size_t i = 0; i < n; i++) squares += (values[i] - *mean) * (values[i] - *mean);
  *std = n ? sqrt(squares / (double)n) : NAN;
}
