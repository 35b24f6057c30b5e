// evaluate.c — the commands that measure a trained model: eval (every
// named loss on a data set), probe (a softmax classifier on the codes of a
// labelled fraction, against one on the raw inputs), pca (the test
// reconstruction error of a PCA of --dim components, against the
// autoencoder's) and prior-match (how well the codes follow the prior).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "analysis.h"
#include "data.h"

// ------------------------------------------------------------------- eval
// The parts of the losses that are sums over a data set (means weighted by batch size) into parts[n_loss_parts].
static bool evaluate_parts(const aert_model *model, aert_ctx *ctx, const aert_dataset *data, double *parts) {
  if (model->n_loss_parts == 0 || !model->eval_loss_parts) return true;
  aert_real *batch = aert_alloc_reals((size_t)ctx->capacity, data->sample_size, "evaluation batch");
  double *part = calloc((size_t)model->n_loss_parts, sizeof *part);
  bool ok = batch && part;
  for (size_t first = 0; ok && first < data->n; first += (size_t)ctx->capacity) {
    int n = (int)(data->n - first < (size_t)ctx->capacity ? data->n - first : (size_t)ctx->capacity);
    aert_gather(data, NULL, first, n, batch);
    ctx->row0 = first;  // the same draws as aert_evaluate's
    model->eval_loss_parts(ctx, batch, n, part);
    for (int p = 0; p < model->n_loss_parts; p++) parts[p] += part[p] * n;
  }
  for (int p = 0; ok && p < model->n_loss_parts; p++) parts[p] /= (double)data->n;
  aert_free(batch);
  free(part);
  return ok;
}

int aert_cmd_eval(const aert_model *model, const aert_options *options) {
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  if (options->has_seed) ctx->seed = options->seed;  // what the losses draw (a prior's samples), else the run's
  aert_dataset *data = aert_load_model_data(model, options->has_data ? options->data : model->default_test);
  double *losses = calloc((size_t)model->n_losses + 1, sizeof *losses);
  int status = AERT_EXIT_FAILURE;
  double *parts = calloc((size_t)model->n_loss_parts + 1, sizeof *parts);
  if (data && losses && parts && aert_fit_context(model, options, ctx, data->n, data->path) &&
      aert_evaluate(model, ctx, data, losses) && evaluate_parts(model, ctx, data, parts)) {
    for (int l = 0; l < model->n_losses; l++) {
      printf("%s %.9g\n", model->loss_names[l], losses[l]);
      for (int p = 0; p < model->n_loss_parts; p++)  // a loss that is a sum: each part, its factor included
        if (model->loss_part_losses[p] == l) printf("%s %.9g\n", model->loss_part_names[p], parts[p]);
    }
    status = AERT_EXIT_OK;
  }
  free(losses), free(parts);
  aert_dataset_free(data);
  aert_ctx_free(model, ctx);
  return status;
}

// ------------------------------------------------------------------- probe
int aert_cmd_probe(const aert_model *model, const aert_options *options) {
  double fraction = options->has_labels_fraction ? options->labels_fraction : 0.1;
  if (!(fraction > 0 && fraction <= 1)) return aert_error("--labels-fraction must be in (0, 1]"), AERT_EXIT_USAGE;
  int epochs = options->has_epochs ? options->epochs : 30;
  uint64_t seed = options->has_seed ? options->seed : model->default_seed;
  if (!aert_need_code(model)) return AERT_EXIT_FAILURE;
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  aert_dataset *train = aert_load_model_data(model, options->has_data ? options->data : model->default_data);
  aert_dataset *test = train ? aert_load_model_data(model, options->has_test ? options->test : model->default_test) : NULL;
  int status = AERT_EXIT_FAILURE;
  aert_real *picked = NULL, *train_codes = NULL, *test_codes = NULL;
  int32_t *labels = NULL, *class_of = NULL, *test_labels = NULL;
  uint32_t *order = NULL;
  if (!test || !aert_fit_context(model, options, ctx, train->n > test->n ? train->n : test->n,
                                 train->n > test->n ? train->path : test->path))
    goto done;
  if (!train->labels || !test->labels) {
    aert_error("%s: the probe needs labels, and this data set has none", !train->labels ? train->path : test->path);
    goto done;
  }
  size_t n = (size_t)floor(fraction * (double)train->n + 0.5), size = train->sample_size;
  if (n < 1) n = 1;
  // The classes are the labels present, in order: labels 0..9 are classes
  // 0..9, and a stray large label costs one class, not that many.
  int classes = 0;
  class_of = malloc(((size_t)AERT_MAX_LABEL + 1) * sizeof *class_of);
  test_labels = malloc(test->n * sizeof *test_labels);
  if (!class_of || !test_labels) {
    aert_error("out of memory for %zu labels", test->n);
    goto done;
  }
  memset(class_of, 0, ((size_t)AERT_MAX_LABEL + 1) * sizeof *class_of);
  for (int pass = 0; pass < 2; pass++) {
    const aert_dataset *set = pass ? test : train;
    for (size_t i = 0; i < set->n; i++) {
      if (set->labels[i] < 0 || set->labels[i] > AERT_MAX_LABEL) {
        aert_error("%s: sample %zu has label %d; the probe takes labels from 0 to %d", set->path, i,
                   (int)set->labels[i], AERT_MAX_LABEL);
        goto done;
      }
      class_of[set->labels[i]] = 1;
    }
  }
  for (size_t l = 0; l <= AERT_MAX_LABEL; l++) class_of[l] = class_of[l] ? classes++ : -1;
  for (size_t i = 0; i < test->n; i++) test_labels[i] = class_of[test->labels[i]];
  // The labelled fraction: a seeded random subset of the training set.
  order = malloc(train->n * sizeof *order);
  picked = aert_alloc_reals(n, size, "labelled samples");
  labels = malloc(n * sizeof *labels);
  if (!order || !picked || !labels) goto done;
  aert_shuffle(order, train->n, seed, 0x70726f6265ULL);
  for (size_t i = 0; i < n; i++) {
    memcpy(picked + i * size, train->x + (size_t)order[i] * size, size * sizeof *picked);
    labels[i] = class_of[train->labels[order[i]]];
  }
  int dims = model->code_size;
  train_codes = aert_alloc_reals(n, (size_t)dims, "codes");
  test_codes = aert_encode_all(model, ctx, test);
  if (!train_codes || !test_codes) goto done;
  aert_run_batches(ctx, picked, size, n, model->encode, (size_t)dims, train_codes);
  fprintf(stderr, "%s: softmax classifiers on %zu labelled samples (%.3g of %s), %d classes, %d epochs\n",
          aert_program(), n, fraction, train->path, classes, epochs);
  double start = aert_now();
  double accuracy = aert_softmax_probe(train_codes, labels, n, test_codes, test_labels, test->n, dims, classes, epochs, seed);
  double code_s = aert_now() - start;
  start = aert_now();
  double raw = aert_softmax_probe(picked, labels, n, test->x, test_labels, test->n, (int)size, classes, epochs, seed);
  double raw_s = aert_now() - start;
  fprintf(stderr, "  on the codes (%d values): test accuracy %.4f (%.1f s)\n", dims, accuracy, code_s);
  fprintf(stderr, "  on the raw input (%zu values): test accuracy %.4f (%.1f s)\n", size, raw, raw_s);
  printf("probe_accuracy %.6g\nraw_probe_accuracy %.6g\n", accuracy, raw);
  status = AERT_EXIT_OK;
done:
  aert_free(picked), aert_free(train_codes), aert_free(test_codes);
  free(labels), free(order), free(class_of), free(test_labels);
  aert_dataset_free(train), aert_dataset_free(test);
  aert_ctx_free(model, ctx);
  return status;
}

// --------------------------------------------------------------------- pca
int aert_cmd_pca(const aert_model *model, const aert_options *options) {
  if (!options->has_dim) return aert_error("pca needs --dim D"), AERT_EXIT_USAGE;
  aert_ctx *ctx = NULL;
  if (options->checkpoint) {
    if (!model->reconstruct || model->recon_size != model->input_size) {
      aert_error("model '%s' has no reconstruction of its input to compare", model->name);
      return AERT_EXIT_FAILURE;
    }
    if (!(ctx = aert_open_checkpoint(model, options))) return AERT_EXIT_FAILURE;
  }
  // PCA alone reads the data, not the model: bce's targets are not its business.
  bool model_reads = options->checkpoint != NULL;
  aert_dataset *train = aert_load_data_for(model, options->has_data ? options->data : model->default_data, model_reads);
  aert_dataset *test =
      train ? aert_load_data_for(model, options->has_test ? options->test : model->default_test, model_reads) : NULL;
  int status = AERT_EXIT_FAILURE;
  aert_pca pca = {0};
  aert_real *recon = NULL;
  double *coords = NULL;
  if (!test) goto done;
  int d = (int)train->sample_size;
  if (options->dim > d) {
    aert_error("pca: --dim %d is more than the %d values of a sample", options->dim, d);
    goto done;
  }
  double start = aert_now();
  if (aert_pca_fit(train->x, train->n, d, options->dim, &pca) != 0) goto done;
  double explained = 0;
  for (int i = 0; i < pca.k; i++) explained += pca.variances[i];
  coords = malloc((size_t)pca.k * sizeof *coords);
  if (!coords) goto done;
  double error = 0;
  for (size_t i = 0; i < test->n; i++) error += aert_pca_squared_error(&pca, test->x + i * (size_t)d, coords);
  double pca_mse = error / ((double)test->n * d);
  fprintf(stderr, "%s: PCA of %zu samples of %s, %d components: %.1f%% of the variance, fitted in %.1f s\n",
          aert_program(), train->n, train->path, pca.k, 100 * explained / fmax(pca.total_variance, 1e-300),
          aert_now() - start);
  printf("pca_mse %.6g\n", pca_mse);
  if (ctx) {
    recon = aert_alloc_reals(test->n, (size_t)d, "reconstructions");
    if (!recon || !aert_fit_context(model, options, ctx, test->n, test->path)) goto done;
    aert_run_batches(ctx, test->x, (size_t)d, test->n, model->reconstruct, (size_t)d, recon);
    double ae_mse = aert_mean_squared_error(recon, test->x, test->n * (size_t)d);
    fprintf(stderr, "%s: test MSE of %s: PCA(%d) %.6f, the autoencoder (a code of %d values) %.6f\n", aert_program(),
            test->path, pca.k, pca_mse, model->code_size, ae_mse);
    printf("ae_mse %.6g\n", ae_mse);
  }
  status = AERT_EXIT_OK;
done:
  aert_pca_free(&pca);
  aert_free(recon);
  free(coords);
  aert_dataset_free(train), aert_dataset_free(test);
  if (ctx) aert_ctx_free(model, ctx);
  return status;
}

// ------------------------------------------------------------- prior-match
// How well a model's codes follow its prior (an adversarial autoencoder's
// aim). Per code dimension, the codes' mean and standard deviation against
// the prior's; then the energy distance between the codes and as many samples
// of the prior (analysis/distance.c). With --baseline, the same figure for
// another checkpoint of the same program (a plain autoencoder: `train --steps
// recon`).
enum { PRIOR_MATCH_COUNT = 10000 };  // samples compared, by default

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

// The energy distance of a checkpoint's codes from the prior samples; codes'
// moments into mean/std when given. NAN after a message.
static double checkpoint_distance(const aert_model *model, const aert_options *options, const char *checkpoint,
                                  const aert_dataset *data, size_t n, const double *prior, double *mean, double *std) {
  aert_options o = *options;
  o.checkpoint = checkpoint;
  aert_ctx *ctx = aert_open_checkpoint(model, &o);
  if (ctx && !aert_fit_context(model, &o, ctx, n, data->path)) aert_ctx_free(model, ctx), ctx = NULL;
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
  size_t n = data->n < (size_t)(options->has_count ? options->count : PRIOR_MATCH_COUNT)
                 ? data->n
                 : (size_t)(options->has_count ? options->count : PRIOR_MATCH_COUNT);
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
