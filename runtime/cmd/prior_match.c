// prior_match.c — the prior-match command: how well a model's codes follow
// its prior (an adversarial autoencoder's aim). Per code dimension, the
// codes' mean and standard deviation against the prior's; then the energy
// distance between the codes and as many samples of the prior,
//   D(X, Y) = 2 E|X - Y| - E|X - X'| - E|Y - Y'|   (Euclidean norms),
// which is zero exactly when the two distributions are equal (Székely and
// Rizzo); the within-sample means leave out i = j. With --baseline, the
// same figure for another checkpoint of the same program (a plain
// autoencoder: `train --steps recon`).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aert_internal.h"

enum { DEFAULT_COUNT = 10000 };

// The codes of the first n samples, in batches of the context's capacity.
static aert_real *codes_of(const aert_model *model, aert_ctx *ctx, const aert_dataset *data, size_t n) {
  aert_real *codes = aert_alloc_reals(n ? n : 1, (size_t)model->code_size, "codes");
  if (!codes) return NULL;
  for (size_t first = 0, b = 0; first < n; first += (size_t)ctx->capacity, b++) {
    int m = (int)(n - first < (size_t)ctx->capacity ? n - first : (size_t)ctx->capacity);
    ctx->batch_counter = b;
    model->encode(ctx, data->x + first * data->sample_size, m, codes + first * (size_t)model->code_size);
  }
  return codes;
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

// The energy distance of a checkpoint's codes from the prior samples; codes'
// moments into mean/std when given. NAN after a message.
static double checkpoint_distance(const aert_model *model, const aert_options *options, const char *checkpoint,
                                  const aert_dataset *data, size_t n, const double *prior, double *mean, double *std) {
  aert_options o = *options;
  o.checkpoint = checkpoint;
  aert_ctx *ctx = aert_open_checkpoint(model, &o);
  if (!ctx) return NAN;
  aert_real *codes = codes_of(model, ctx, data, n);
  aert_ctx_free(model, ctx);
  if (!codes) return NAN;
  int dim = model->code_size;
  double *x = malloc((n ? n : 1) * (size_t)dim * sizeof *x);
  if (!x) {
    aert_free(codes);
    aert_error("out of memory for the codes");
    return NAN;
  }
  for (size_t i = 0; i < n * (size_t)dim; i++) x[i] = codes[i];
  aert_free(codes);
  for (int d = 0; mean && d < dim; d++) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += x[i * (size_t)dim + (size_t)d];
    double m = s / (double)n;
    for (size_t i = 0; i < n; i++) s2 += (x[i * (size_t)dim + (size_t)d] - m) * (x[i * (size_t)dim + (size_t)d] - m);
    mean[d] = m, std[d] = sqrt(s2 / (double)n);
  }
  double result = aert_energy_distance(x, prior, n, dim);
  free(x);
  return result;
}

int aert_cmd_prior_match(const aert_model *model, const aert_options *options) {
  if (!options->checkpoint) return aert_error("prior-match needs --checkpoint FILE"), AERT_EXIT_USAGE;
  const aert_prior *prior = &model->prior;
  if (prior->kind == AERT_PRIOR_NONE) {
    aert_error("model '%s' has no prior to match: prior-match is for adversarial autoencoders (gaussian, uniform or "
               "mixture in the .ae file)", model->name);
    return AERT_EXIT_FAILURE;
  }
  if (!model->encode || model->code_size != prior->dim) {
    aert_error("model '%s': its code has %d values but its prior %d", model->name, model->code_size, prior->dim);
    return AERT_EXIT_FAILURE;
  }
  aert_dataset *data = aert_load_model_data(model, options->has_data ? options->data : model->default_test);
  if (!data) return AERT_EXIT_FAILURE;
  size_t n = data->n < (size_t)(options->has_count ? options->count : DEFAULT_COUNT)
                 ? data->n
                 : (size_t)(options->has_count ? options->count : DEFAULT_COUNT);
  int dim = prior->dim, status = AERT_EXIT_FAILURE;
  double *samples = malloc((n ? n : 1) * (size_t)dim * sizeof *samples);
  double *mean = calloc((size_t)dim, sizeof *mean), *std = calloc((size_t)dim, sizeof *std);
  if (!samples || !mean || !std) {
    aert_error("out of memory for %zu prior samples", n);
    goto done;
  }
  uint64_t key = aert_stream_key(options->has_seed ? options->seed : model->default_seed, AERT_STREAM_PRIOR, 0);
  for (size_t i = 0; i < n; i++) aert_prior_sample(prior, key, i, samples + i * (size_t)dim);
  double d = checkpoint_distance(model, options, options->checkpoint, data, n, samples, mean, std);
  if (isnan(d)) goto done;
  double baseline = NAN;
  if (options->baseline) {
    baseline = checkpoint_distance(model, options, options->baseline, data, n, samples, NULL, NULL);
    if (isnan(baseline)) goto done;
  }
  char what[128];
  aert_prior_format(prior, what, sizeof what);
  fprintf(stderr, "%s: the codes of %zu samples of %s against %s\n", aert_program(), n, data->path, what);
  fprintf(stderr, "  %-9s %12s %12s %12s %12s\n", "dimension", "code mean", "prior mean", "code std", "prior std");
  for (int i = 0; i < dim; i++) {
    double pm, ps;
    aert_prior_moments(prior, i, &pm, &ps);
    fprintf(stderr, "  %-9d %12.4f %12.4f %12.4f %12.4f\n", i, mean[i], pm, std[i], ps);
    printf("code_mean.%d %.6g\ncode_std.%d %.6g\nprior_mean.%d %.6g\nprior_std.%d %.6g\n", i, mean[i], i, std[i], i, pm,
           i, ps);
  }
  fprintf(stderr, "  energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'| (Euclidean) to %zu prior samples: %.6g\n", n, d);
  printf("distance %.6g\n", d);
  if (options->baseline) {
    fprintf(stderr, "  the same for %s: %.6g (%.1f times the model's)\n", options->baseline, baseline,
            d > 0 ? baseline / d : INFINITY);
    printf("baseline_distance %.6g\n", baseline);
  }
  status = AERT_EXIT_OK;
done:
  free(samples), free(mean), free(std);
  aert_dataset_free(data);
  return status;
}
