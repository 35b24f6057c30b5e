// prior.c — the model's prior (aert_model.prior) on the runtime's side:
// samples drawn with the same formulas as the generated kernels
// (compiler/ops.c; the mixture's by the sampler in aert_kernels.h, which
// they call), each dimension's marginal density and moments, and its
// description.
#include <math.h>

#include "core.h"
#define AERT_KERNELS_SHARED_ONLY  // the mixture's sampler, which the generated kernels call too
#include "aert_kernels.h"

void aert_prior_sample(const aert_prior *p, uint64_t key, uint64_t row, double *out) {
  uint64_t at = row * (uint64_t)p->dim;
  switch (p->kind) {
  case AERT_PRIOR_GAUSSIAN:
    for (int d = 0; d < p->dim; d++) out[d] = p->p[0] * aert_normal(key, at + (uint64_t)d);
    return;
  case AERT_PRIOR_UNIFORM:
    for (int d = 0; d < p->dim; d++)
      out[d] = p->p[0] + (p->p[1] - p->p[0]) * aert_uniform01(key, 2 * (at + (uint64_t)d));
    return;
  case AERT_PRIOR_MIXTURE: aert_prior_mixture_sample(key, row, p->dim, (int)p->p[0], p->p[1], p->p[2], out); return;
  case AERT_PRIOR_NONE: break;
  }
  for (int d = 0; d < p->dim; d++) out[d] = 0;
}

static double normal_density(double x, double mean, double std) {
  double z = (x - mean) / std;
  return exp(-0.5 * z * z) / (std * sqrt(2 * M_PI));
}

double aert_prior_density(const aert_prior *p, int d, double x) {
  switch (p->kind) {
  case AERT_PRIOR_GAUSSIAN: return normal_density(x, 0, p->p[0]);
  case AERT_PRIOR_UNIFORM: return x >= p->p[0] && x <= p->p[1] ? 1 / (p->p[1] - p->p[0]) : 0;
  case AERT_PRIOR_MIXTURE: {
    int k = (int)p->p[0];
    if (d >= 2) return normal_density(x, 0, p->p[1]);
    double sum = 0;
    for (int c = 0; c < k; c++) {
      double centre = 2 * M_PI * c / k;
      sum += normal_density(x, p->p[2] * (d == 0 ? cos(centre) : sin(centre)), p->p[1]);
    }
    return sum / k;
  }
  case AERT_PRIOR_NONE: break;
  }
  return 0;
}

void aert_prior_moments(const aert_prior *p, int d, double *mean, double *std) {
  *mean = 0, *std = 0;
  switch (p->kind) {
  case AERT_PRIOR_GAUSSIAN: *std = p->p[0]; return;
  case AERT_PRIOR_UNIFORM:
    *mean = (p->p[0] + p->p[1]) / 2;
    *std = (p->p[1] - p->p[0]) / sqrt(12);
    return;
  case AERT_PRIOR_MIXTURE: {
    int k = (int)p->p[0];
    if (d >= 2) {
      *std = p->p[1];
      return;
    }
    double m = 0, m2 = 0;
    for (int c = 0; c < k; c++) {
      double centre = 2 * M_PI * c / k, v = p->p[2] * (d == 0 ? cos(centre) : sin(centre));
      m += v / k, m2 += v * v / k;
    }
    if (fabs(m) < 1e-12) m = 0;
    *mean = m;
    *std = sqrt(fmax(p->p[1] * p->p[1] + m2 - m * m, 0));
    return;
  }
  case AERT_PRIOR_NONE: break;
  }
}

void aert_prior_format(const aert_prior *p, char *out, size_t size) {
  switch (p->kind) {
  case AERT_PRIOR_GAUSSIAN: snprintf(out, size, "gaussian([%d], std=%g)", p->dim, p->p[0]); return;
  case AERT_PRIOR_UNIFORM: snprintf(out, size, "uniform([%d], %g, %g)", p->dim, p->p[0], p->p[1]); return;
  case AERT_PRIOR_MIXTURE:
    snprintf(out, size, "mixture([%d], %g, %g, radius=%g)", p->dim, p->p[0], p->p[1], p->p[2]);
    return;
  case AERT_PRIOR_NONE: break;
  }
  snprintf(out, size, "no prior");
}
