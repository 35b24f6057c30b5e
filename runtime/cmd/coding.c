// coding.c — the commands that run samples through a trained model:
// reconstruct (originals over their reconstructions), encode (each sample's
// code as CSV or .npy, and --plot, a scatter of the codes) and denoise
// (corrupted images, as in training or by --noise, and their reconstructions).
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "analysis.h"
#include "data.h"
#include "draw.h"

// ------------------------------------------------------------ reconstruct
// Runs fn (reconstruct or encode) over samples [0, n) in batches; out gets n * out_size.
static bool apply_in_batches(const aert_model *model, aert_ctx *ctx, const aert_dataset *data, size_t n,
                             void (*fn)(aert_ctx *, const aert_real *, int, aert_real *), size_t out_size,
                             aert_real *out) {
  aert_real *batch = aert_alloc_reals((size_t)ctx->capacity, data->sample_size, "batch");
  if (!batch) return false;
  (void)model;
  for (size_t first = 0; first < n; first += (size_t)ctx->capacity) {
    int m = (int)(n - first < (size_t)ctx->capacity ? n - first : (size_t)ctx->capacity);
    aert_gather(data, NULL, first, m, batch);
    fn(ctx, batch, m, out + first * out_size);
  }
  aert_free(batch);
  return true;
}

int aert_cmd_reconstruct(const aert_model *model, const aert_options *options) {
  if (!options->output) return aert_error("reconstruct needs -o FILE.png"), AERT_EXIT_USAGE;
  if (!model->reconstruct || model->recon_size != model->input_size) {
    aert_error("model '%s' has no reconstruction of its input", model->name);
    return AERT_EXIT_FAILURE;
  }
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  aert_dataset *data = aert_load_model_data(model, options->has_data ? options->data : model->default_test);
  int status = AERT_EXIT_FAILURE;
  if (data && aert_fit_context(model, options, ctx, data->n, data->path)) {
    size_t count = options->has_count ? (size_t)options->count : 10;
    if (count > data->n) count = data->n;
    int height, width;
    aert_display_size(model, &height, &width);
    size_t pixels = (size_t)height * (size_t)width, size = (size_t)model->input_size;
    aert_real *recon = aert_alloc_reals(count, size, "reconstructions");
    aert_real *grid = aert_alloc_reals(2 * count, pixels, "image grid");
    if (recon && grid && apply_in_batches(model, ctx, data, count, model->reconstruct, size, recon)) {
      for (size_t i = 0; i < count; i++) {  // channel 0 of each sample
        memcpy(grid + i * pixels, data->x + i * size, pixels * sizeof *grid);
        memcpy(grid + (count + i) * pixels, recon + i * size, pixels * sizeof *grid);
      }
      if (aert_write_image_grid(options->output, grid, 2, (int)count, height, width) == 0) {
        fprintf(stderr, "%s: wrote %s (%zu originals over their reconstructions)\n", aert_program(), options->output,
                count);
        status = AERT_EXIT_OK;
      }
    }
    aert_free(recon);
    aert_free(grid);
  }
  aert_dataset_free(data);
  aert_ctx_free(model, ctx);
  return status;
}

// ------------------------------------------------------------ encode extras
// codes.npy: float32 [n, code_size]; with labels, codes.labels.npy: int32 [n].
static bool write_codes_npy(const char *path, const aert_dataset *data, const aert_real *codes, int code_size) {
  size_t count = data->n * (size_t)code_size;
  float *values = malloc((count ? count : 1) * sizeof *values);
  if (!values) return aert_error("out of memory for %s", path), false;
  for (size_t i = 0; i < count; i++) values[i] = (float)codes[i];
  bool ok = aert_write_npy(path, "the codes", "<f4", (size_t[]){data->n, (size_t)code_size}, 2, values, sizeof *values);
  free(values);
  if (ok && data->labels) {
    char *labels_path = NULL;
    if (asprintf(&labels_path, "%.*s.labels.npy", (int)(strlen(path) - 4), path) < 0) return false;
    ok = aert_write_npy(labels_path, "the labels", "<i4", &data->n, 1, data->labels, sizeof(int32_t));
    if (ok) fprintf(stderr, "%s: wrote the labels to %s\n", aert_program(), labels_path);
    free(labels_path);
  }
  return ok;
}

// The scatter of codes: their first two values, or their first two
// principal components when there are more.
static bool plot_codes(const char *path, const aert_model *model, const aert_dataset *data, const aert_real *codes) {
  int dims = model->code_size;
  double *xy = malloc((data->n ? data->n : 1) * 2 * sizeof *xy);
  if (!xy) return aert_error("out of memory for %s", path), false;
  char title[256], xlabel[32] = "z0", ylabel[32] = "z1";
  if (dims <= 2) {
    for (size_t i = 0; i < data->n; i++) {
      xy[2 * i] = codes[i * (size_t)dims];
      xy[2 * i + 1] = dims == 2 ? codes[i * (size_t)dims + 1] : 0;
    }
    snprintf(title, sizeof title, "%s: codes of %zu samples", model->name, data->n);
    if (dims == 1) snprintf(ylabel, sizeof ylabel, "(none)");
  } else {
    aert_pca pca;
    if (aert_pca_fit(codes, data->n, dims, 2, &pca) != 0) return free(xy), false;
    for (size_t i = 0; i < data->n; i++) aert_pca_project(&pca, codes + i * (size_t)dims, xy + 2 * i);
    snprintf(title, sizeof title, "%s: %zu codes of %d values, their first two principal components (%.0f%% of the variance)",
             model->name, data->n, dims, 100 * (pca.variances[0] + pca.variances[1]) / fmax(pca.total_variance, 1e-300));
    snprintf(xlabel, sizeof xlabel, "PC1"), snprintf(ylabel, sizeof ylabel, "PC2");
    aert_pca_free(&pca);
  }
  int n_names;
  const char *const *names = aert_label_names(data, &n_names);
  // An adversarial autoencoder's prior: as many samples in grey under the codes (dims <= 2: its first values).
  double *under = NULL;
  size_t n_under = 0;
  if (model->prior.kind != AERT_PRIOR_NONE && model->prior.dim == dims && dims <= 2 &&
      (under = malloc((data->n ? data->n : 1) * 2 * sizeof *under)) != NULL) {
    double sample[2];
    uint64_t key = aert_stream_key(model->default_seed, AERT_STREAM_PRIOR, 0);
    for (n_under = 0; n_under < data->n; n_under++) {
      aert_prior_sample(&model->prior, key, n_under, sample);
      under[2 * n_under] = sample[0], under[2 * n_under + 1] = dims == 2 ? sample[1] : 0;
    }
    size_t used = (size_t)snprintf(title, sizeof title, "%s: codes of %zu samples over as many prior samples (grey)",
                                   model->name, data->n);
    (void)used;
  }
  int status = aert_plot_scatter_over(path, xy, data->labels, data->n, under, n_under, xlabel, ylabel, title, names,
                                      n_names);
  free(under);
  free(xy);
  if (status == 0) fprintf(stderr, "%s: wrote %s\n", aert_program(), path);
  return status == 0;
}

// ----------------------------------------------------------------- encode
static bool write_codes(const char *path, const aert_dataset *data, const aert_real *codes, int code_size) {
  aert_output *out = aert_output_begin(path, "the codes");
  if (!out) return false;
  FILE *f = aert_output_stream(out);
  if (data->labels) fprintf(f, "label,");
  for (int j = 0; j < code_size; j++) fprintf(f, "z%d%s", j, j + 1 < code_size ? "," : "\n");
  for (size_t i = 0; i < data->n; i++) {
    if (data->labels) fprintf(f, "%d,", data->labels[i]);
    for (int j = 0; j < code_size; j++)
      fprintf(f, "%.9g%s", (double)codes[i * (size_t)code_size + (size_t)j], j + 1 < code_size ? "," : "\n");
  }
  return aert_output_commit(out);
}

// encode --sample: each code (the mean, as encode computes it) plus
// exp(logvar / 2) * eps, with logvar the output of the model's log-variance
// layer and eps ~ N(0, 1) from the seed (element i of the whole data set
// draws counter i, so a batch size does not change the draws).
static bool draw_codes(const aert_model *model, const aert_options *options, aert_ctx *ctx, const aert_dataset *data,
                       aert_real *codes) {
  size_t size = (size_t)model->code_size;
  aert_real *logvar = aert_alloc_reals(data->n, size, "log-variances");
  if (!logvar) return false;
  for (size_t first = 0; first < data->n; first += (size_t)ctx->capacity) {
    int m = (int)(data->n - first < (size_t)ctx->capacity ? data->n - first : (size_t)ctx->capacity);
    model->layer_output(ctx, model->code_logvar_layer - 1, data->x + first * data->sample_size, m,
                        logvar + first * size);
  }
  uint64_t key = aert_stream_key(options->has_seed ? options->seed : 1, AERT_STREAM_PRIOR, 1);
  for (size_t i = 0; i < data->n * size; i++)
    codes[i] += (aert_real)(exp(0.5 * (double)logvar[i]) * aert_normal(key, (uint64_t)i));
  aert_free(logvar);
  return true;
}

int aert_cmd_encode(const aert_model *model, const aert_options *options) {
  if (!options->output) return aert_error("encode needs -o FILE.csv"), AERT_EXIT_USAGE;
  if (!model->encode || model->code_size <= 0) {
    aert_error("model '%s' has no code (name a value 'code' or a net 'encoder')", model->name);
    return AERT_EXIT_FAILURE;
  }
  if (options->sample && !model->code_sampled) {
    aert_error("encode --sample draws a variational code (one made by sample_normal); model '%s''s code is "
               "deterministic: leave --sample out", model->name);
    return AERT_EXIT_USAGE;
  }
  if (options->sample && (!model->code_logvar_layer || !model->layer_output)) {
    aert_error("encode --sample needs the code's log-variance to be a layer's output (sample_normal(mean, "
               "dense(h, code))); in model '%s' it is computed from one", model->name);
    return AERT_EXIT_FAILURE;
  }
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  aert_dataset *data = aert_load_model_data(model, options->has_data ? options->data : model->default_test);
  int status = AERT_EXIT_FAILURE;
  aert_real *codes = data && aert_fit_context(model, options, ctx, data->n, data->path)
                         ? aert_alloc_reals(data->n, (size_t)model->code_size, "codes")
                         : NULL;
  if (codes && apply_in_batches(model, ctx, data, data->n, model->encode, (size_t)model->code_size, codes) &&
      (!options->sample || draw_codes(model, options, ctx, data, codes)) &&
      (aert_is_npy_path(options->output) ? write_codes_npy(options->output, data, codes, model->code_size)
           : write_codes(options->output, data, codes, model->code_size))) {
    fprintf(stderr, "%s: wrote %s (%zu codes of %d values)\n", aert_program(), options->output, data->n,
            model->code_size);
    status = options->plot && !plot_codes(options->plot, model, data, codes) ? AERT_EXIT_FAILURE : AERT_EXIT_OK;
  }
  aert_free(codes);
  aert_dataset_free(data);
  aert_ctx_free(model, ctx);
  return status;
}

// ----------------------------------------------------------------- denoise
typedef enum noise_kind { NOISE_GAUSSIAN, NOISE_MASKING, NOISE_SALT_PEPPER } noise_kind;

// --noise gaussian:STD | masking:P | salt_pepper:P
static bool parse_noise(const char *spec, noise_kind *kind, double *amount) {
  const char *colon = strchr(spec, ':');
  char *end = NULL;
  if (colon) *amount = strtod(colon + 1, &end);
  size_t n = colon ? (size_t)(colon - spec) : 0;
  if (colon && end && !*end && *amount >= 0) {
    if (n == 8 && strncmp(spec, "gaussian", n) == 0) return *kind = NOISE_GAUSSIAN, true;
    if (n == 7 && strncmp(spec, "masking", n) == 0 && *amount <= 1) return *kind = NOISE_MASKING, true;
    if (n == 11 && strncmp(spec, "salt_pepper", n) == 0 && *amount <= 1) return *kind = NOISE_SALT_PEPPER, true;
  }
  aert_error("--noise takes gaussian:STD, masking:P or salt_pepper:P (P from 0 to 1), not '%s'", spec);
  return false;
}

// The command line's corruption, from its own stream of the seed; the
// result is clipped into [0, 1] like the images.
static void apply_noise(noise_kind kind, double amount, uint64_t seed, const aert_real *x, size_t count,
                        aert_real *out) {
  uint64_t key = aert_stream_key(seed, AERT_STREAM_CORRUPT, 0x6e6f697365ULL);
  for (size_t i = 0; i < count; i++) {
    double v = x[i];
    switch (kind) {
    case NOISE_GAUSSIAN: v += amount * aert_normal(key, i); break;
    case NOISE_MASKING: v = aert_uniform01(key, 2 * i) < amount ? 0 : v; break;
    case NOISE_SALT_PEPPER: v = aert_uniform01(key, 2 * i) < amount ? (aert_uniform01(key, 2 * i + 1) < 0.5 ? 0 : 1) : v; break;
    }
    out[i] = (aert_real)(v < 0 ? 0 : v > 1 ? 1 : v);
  }
}

// PSNR of images in [0, 1]: 10 log10(1 / MSE), the MSE over the whole set.
static double psnr(double mse) { return 10 * log10(1 / fmax(mse, 1e-20)); }

int aert_cmd_denoise(const aert_model *model, const aert_options *options) {
  if (!options->output) return aert_error("denoise needs -o FILE.png"), AERT_EXIT_USAGE;
  noise_kind kind = NOISE_GAUSSIAN;
  double amount = 0.5;
  if (options->noise && !parse_noise(options->noise, &kind, &amount)) return AERT_EXIT_USAGE;
  if (!model->reconstruct || model->recon_size != model->input_size) {
    aert_error("model '%s' has no reconstruction of its input", model->name);
    return AERT_EXIT_FAILURE;
  }
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  ctx->seed = options->has_seed ? options->seed : model->default_seed;
  aert_dataset *data = aert_load_model_data(model, options->has_data ? options->data : model->default_test);
  int status = AERT_EXIT_FAILURE;
  aert_real *noisy = NULL, *denoised = NULL, *grid = NULL;
  if (!data || !aert_fit_context(model, options, ctx, data->n, data->path)) goto done;
  size_t size = data->sample_size, total = data->n * size;
  noisy = aert_alloc_reals(data->n, size, "noisy images");
  denoised = aert_alloc_reals(data->n, size, "denoised images");
  if (!noisy || !denoised) goto done;
  if (options->noise || !model->corrupt) {
    if (!options->noise)
      fprintf(stderr, "%s: model '%s' corrupts nothing in training; using --noise gaussian:0.5\n", aert_program(),
              model->name);
    apply_noise(kind, amount, ctx->seed, data->x, total, noisy);
  } else {
    fprintf(stderr, "%s: noise: the model's own corruption in training mode (seed %llu)\n", aert_program(),
            (unsigned long long)ctx->seed);
    aert_run_batches(ctx, data->x, size, data->n, model->corrupt, size, noisy);
  }
  aert_run_batches(ctx, noisy, size, data->n, model->reconstruct, size, denoised);
  double noisy_mse = aert_mean_squared_error(noisy, data->x, total), denoised_mse = aert_mean_squared_error(denoised, data->x, total);
  fprintf(stderr, "%s: %zu images: MSE noisy %.5f, denoised %.5f\n", aert_program(), data->n, noisy_mse, denoised_mse);
  printf("psnr_noisy %.6g\npsnr_denoised %.6g\n", psnr(noisy_mse), psnr(denoised_mse));
  size_t count = options->has_count ? (size_t)options->count : 10;
  if (count > data->n) count = data->n;
  int height, width;
  aert_display_size(model, &height, &width);
  size_t pixels = (size_t)height * (size_t)width;
  grid = aert_alloc_reals(3 * count, pixels, "image grid");
  if (!grid) goto done;
  for (size_t i = 0; i < count; i++) {  // channel 0 of each sample
    memcpy(grid + i * pixels, noisy + i * size, pixels * sizeof *grid);
    memcpy(grid + (count + i) * pixels, denoised + i * size, pixels * sizeof *grid);
    memcpy(grid + (2 * count + i) * pixels, data->x + i * size, pixels * sizeof *grid);
  }
  if (count > 0 && aert_write_image_grid(options->output, grid, 3, (int)count, height, width) != 0) goto done;
  fprintf(stderr, "%s: wrote %s (rows: noisy, denoised, clean)\n", aert_program(), options->output);
  status = AERT_EXIT_OK;
done:
  aert_free(noisy), aert_free(denoised), aert_free(grid);
  aert_dataset_free(data);
  aert_ctx_free(model, ctx);
  return status;
}
