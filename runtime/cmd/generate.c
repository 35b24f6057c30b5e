// generate.c — the commands for generative models, each through the model's
// decode function (the reconstruction computed from a given code): decode
// (codes from a file to a grid of images or an array), sample (codes drawn
// from the model's prior, decoded), interpolate (decoded codes on the line
// between two samples' codes) and manifold (a 2-d code's grid at the
// prior's quantiles, as in Kingma and Welling's figures). None prints
// figures: what they make goes to -o.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "data.h"
#include "draw.h"

// ------------------------------------------------------------------ shared
// True when the model decodes; false after a message saying why not.
static bool need_decode(const aert_model *model, const char *command) {
  if (model->decode && model->code_size > 0 && model->recon_size > 0) return true;
  if (model->code_size <= 0)
    aert_error("%s: model '%s' has no code to decode (name a value 'code' or a net 'encoder')", command, model->name);
  else if (model->recon_size <= 0)
    aert_error("%s: model '%s' has no reconstruction of its input to decode a code into (name a value "
               "'reconstruction')", command, model->name);
  else
    aert_error("%s: model '%s' cannot decode a code alone: %s", command, model->name,
               model->decode_missing ? model->decode_missing : "this program has no decode function");
  return false;
}

// The model's prior over codes into *prior: N(0, 1) in every element for a
// code made by sample_normal, else the prior the code is matched against (an
// adversarial autoencoder's). False after a message when it has none.
static bool code_prior(const aert_model *model, const char *command, aert_prior *prior) {
  if (model->code_sampled) {
    *prior = (aert_prior){AERT_PRIOR_GAUSSIAN, model->code_size, {1, 0, 0}, -1};
    return true;
  }
  if (model->prior.kind != AERT_PRIOR_NONE && model->prior.dim == model->code_size) {
    *prior = model->prior;
    return true;
  }
  aert_error("%s: model '%s' has no prior over its codes (a code made by sample_normal, or a prior such as "
             "gaussian([%d]) that a critic matches the code to); a plain autoencoder's codes follow no known "
             "distribution: decode codes of your own with `%s decode --codes F -o out.png`",
             command, model->name, model->code_size, aert_program());
  return false;
}

// n samples as a float32 .npy array of shape [n, the input's shape].
static bool write_samples_npy(const aert_model *model, const char *path, const aert_real *x, size_t n) {
  size_t size = (size_t)model->recon_size, shape[1 + 4] = {n};
  float *values = malloc((n * size > 0 ? n * size : 1) * sizeof *values);
  if (!values) return aert_error("out of memory for %s", path), false;
  for (size_t i = 0; i < n * size; i++) values[i] = (float)x[i];
  for (int d = 0; d < model->input_rank && d < 4; d++) shape[1 + d] = (size_t)model->input_shape[d];
  bool ok = aert_write_npy(path, "the decoded samples", "<f4", shape, 1 + model->input_rank, values, sizeof *values);
  free(values);
  return ok;
}

// n decoded samples to `path`: a .npy array, else a PNG grid of `cols`
// columns (channel 0 of each sample; a last row's empty places white).
static bool write_decoded(const aert_model *model, const char *path, const aert_real *x, size_t n, size_t cols,
                          const char *what) {
  bool ok;
  if (aert_is_npy_path(path)) {
    ok = write_samples_npy(model, path, x, n);
  } else {
    int height, width;
    aert_display_size(model, &height, &width);
    size_t pixels = (size_t)height * (size_t)width, rows = (n + cols - 1) / cols;
    aert_real *grid = aert_alloc_reals(rows * cols, pixels, "image grid");
    if (!grid) return false;
    for (size_t i = 0; i < rows * cols; i++)
      for (size_t p = 0; p < pixels; p++) grid[i * pixels + p] = i < n ? x[i * (size_t)model->recon_size + p] : 1;
    ok = aert_write_image_grid(path, grid, (int)rows, (int)cols, height, width) == 0;
    aert_free(grid);
  }
  if (ok) fprintf(stderr, "%s: wrote %s (%s)\n", aert_program(), path, what);
  return ok;
}

// Decodes n codes (n * code_size values) into a new array (n * recon_size), in
// batches of --batch; NULL after a message.
static aert_real *decode_all(const aert_model *model, const aert_options *options, aert_ctx *ctx,
                             const aert_real *codes, size_t n, const char *what) {
  if (!aert_fit_context(model, options, ctx, n, what)) return NULL;
  aert_real *out = aert_alloc_reals(n, (size_t)model->recon_size, "decoded samples");
  if (out) aert_run_batches(ctx, codes, (size_t)model->code_size, n, model->decode, (size_t)model->recon_size, out);
  return out;
}

// The columns of a near-square grid of n tiles.
static size_t grid_columns(size_t n) {
  size_t cols = (size_t)ceil(sqrt((double)n));
  return cols < 1 ? 1 : cols;
}

// ------------------------------------------------------------------ decode
int aert_cmd_decode(const aert_model *model, const aert_options *options) {
  if (!options->codes)
    return aert_error("decode needs --codes FILE: a .csv as `encode -o codes.csv` writes it, or a .npy of [n, %d]",
                      model->code_size > 0 ? model->code_size : 1),
           AERT_EXIT_USAGE;
  if (!options->output) return aert_error("decode needs -o FILE.png or -o FILE.npy"), AERT_EXIT_USAGE;
  if (!need_decode(model, "decode")) return AERT_EXIT_FAILURE;
  char what[96];
  snprintf(what, sizeof what, "the model's code has %d", model->code_size);
  aert_dataset *codes = aert_dataset_load_described(options->codes, (size_t)model->code_size, what);
  if (!codes) return AERT_EXIT_FAILURE;
  int status = AERT_EXIT_FAILURE;
  size_t n = codes->n;
  if (options->has_count && (size_t)options->count < n) n = (size_t)options->count;
  if (n == 0) {
    aert_error("%s: no codes to decode", codes->path);
    aert_dataset_free(codes);
    return AERT_EXIT_FAILURE;
  }
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  aert_real *decoded = ctx ? decode_all(model, options, ctx, codes->x, n, codes->path) : NULL;
  char note[160];
  snprintf(note, sizeof note, "%zu codes of %s decoded", n, codes->path);
  if (decoded && write_decoded(model, options->output, decoded, n, grid_columns(n), note)) status = AERT_EXIT_OK;
  aert_free(decoded);
  aert_ctx_free(model, ctx);
  aert_dataset_free(codes);
  return status;
}

// ------------------------------------------------------------------ sample
int aert_cmd_sample(const aert_model *model, const aert_options *options) {
  if (!options->output) return aert_error("sample needs -o FILE.png or -o FILE.npy"), AERT_EXIT_USAGE;
  aert_prior prior;
  if (!need_decode(model, "sample") || !code_prior(model, "sample", &prior)) return AERT_EXIT_FAILURE;
  size_t n = options->has_count ? (size_t)options->count : 64;
  uint64_t seed = options->has_seed ? options->seed : model->default_seed;
  aert_real *codes = aert_alloc_reals(n, (size_t)model->code_size, "codes");
  double *row = malloc((size_t)model->code_size * sizeof *row);
  aert_ctx *ctx = codes && row ? aert_open_checkpoint(model, options) : NULL;
  int status = AERT_EXIT_FAILURE;
  if (ctx) {
    uint64_t key = aert_stream_key(seed, AERT_STREAM_PRIOR, 0x73616d706c65ULL);  // "sample"
    for (size_t i = 0; i < n; i++) {
      aert_prior_sample(&prior, key, i, row);
      for (int d = 0; d < model->code_size; d++) codes[i * (size_t)model->code_size + (size_t)d] = (aert_real)row[d];
    }
    char described[128], note[256];
    aert_prior_format(&prior, described, sizeof described);
    snprintf(note, sizeof note, "%zu codes drawn from %s with seed %llu, decoded", n, described,
             (unsigned long long)seed);
    aert_real *decoded = decode_all(model, options, ctx, codes, n, "the samples");
    if (decoded && write_decoded(model, options->output, decoded, n, grid_columns(n), note)) status = AERT_EXIT_OK;
    aert_free(decoded);
  }
  free(row);
  aert_free(codes);
  aert_ctx_free(model, ctx);
  return status;
}

// ------------------------------------------------------------- interpolate
int aert_cmd_interpolate(const aert_model *model, const aert_options *options) {
  if (!options->output) return aert_error("interpolate needs -o FILE.png or -o FILE.npy"), AERT_EXIT_USAGE;
  if (!options->has_from || !options->has_to)
    return aert_error("interpolate needs --from I and --to J: the indices (from 0) of two samples of the data"),
           AERT_EXIT_USAGE;
  if (!need_decode(model, "interpolate") || !aert_need_code(model)) return AERT_EXIT_FAILURE;
  size_t steps = options->has_interp_steps ? (size_t)options->interp_steps : 10, size = (size_t)model->code_size;
  aert_dataset *data = aert_load_model_data(model, options->has_data ? options->data : model->default_test);
  if (!data) return AERT_EXIT_FAILURE;
  int status = AERT_EXIT_FAILURE;
  aert_ctx *ctx = NULL;
  aert_real *ends = NULL, *codes = NULL, *decoded = NULL, *pair = NULL;
  const char *bad = (size_t)options->from >= data->n ? "--from" : (size_t)options->to >= data->n ? "--to" : NULL;
  if (bad) {
    aert_error("interpolate: %s %d is out of range: %s has %zu samples (0 to %zu)", bad,
               bad[2] == 'f' ? options->from : options->to, data->path, data->n, data->n - 1);
    goto done;
  }
  ctx = aert_open_checkpoint(model, options);
  if (!ctx || !aert_fit_context(model, options, ctx, steps > 2 ? steps : 2, data->path)) goto done;
  pair = aert_alloc_reals(2, data->sample_size, "samples");
  ends = aert_alloc_reals(2, size, "codes");
  codes = aert_alloc_reals(steps, size, "codes");
  if (!pair || !ends || !codes) goto done;
  memcpy(pair, data->x + (size_t)options->from * data->sample_size, data->sample_size * sizeof *pair);
  memcpy(pair + data->sample_size, data->x + (size_t)options->to * data->sample_size, data->sample_size * sizeof *pair);
  aert_run_batches(ctx, pair, data->sample_size, 2, model->encode, size, ends);
  for (size_t k = 0; k < steps; k++) {
    double t = (double)k / (double)(steps - 1);
    for (size_t d = 0; d < size; d++) codes[k * size + d] = (aert_real)((1 - t) * ends[d] + t * ends[size + d]);
  }
  decoded = decode_all(model, options, ctx, codes, steps, data->path);
  char note[256];
  snprintf(note, sizeof note, "%zu codes from sample %d's to sample %d's, both ends included", steps, options->from,
           options->to);
  if (decoded && write_decoded(model, options->output, decoded, steps, steps, note)) status = AERT_EXIT_OK;
done:
  aert_free(pair), aert_free(ends), aert_free(codes), aert_free(decoded);
  aert_ctx_free(model, ctx);
  aert_dataset_free(data);
  return status;
}

// ---------------------------------------------------------------- manifold
// The CDF of the prior's marginal in dimension d at x: N(0, s^2); U(lo, hi);
// the mixture's, an equal mixture of normals (its centres in dimensions 0
// and 1, N(0, s^2) beyond).
static double normal_cdf(double z) { return 0.5 * erfc(-z / sqrt(2)); }

static double prior_cdf(const aert_prior *p, int d, double x) {
  switch (p->kind) {
  case AERT_PRIOR_GAUSSIAN: return normal_cdf(x / p->p[0]);
  case AERT_PRIOR_UNIFORM: return x <= p->p[0] ? 0 : x >= p->p[1] ? 1 : (x - p->p[0]) / (p->p[1] - p->p[0]);
  case AERT_PRIOR_MIXTURE: {
    int k = (int)p->p[0];
    if (d >= 2) return normal_cdf(x / p->p[1]);
    double sum = 0;
    for (int c = 0; c < k; c++) {
      double centre = 2 * M_PI * c / k, mean = p->p[2] * (d == 0 ? cos(centre) : sin(centre));
      sum += normal_cdf((x - mean) / p->p[1]);
    }
    return sum / k;
  }
  case AERT_PRIOR_NONE: break;
  }
  return 0.5;
}

// The p-quantile of the marginal in dimension d, by bisection of its CDF.
static double prior_quantile(const aert_prior *prior, int d, double p) {
  double mean, std;
  aert_prior_moments(prior, d, &mean, &std);
  double lo = mean - 40 * std - 1, hi = mean + 40 * std + 1;
  for (int i = 0; i < 200 && hi - lo > 1e-12 * (1 + fabs(lo)); i++) {
    double mid = 0.5 * (lo + hi);
    if (prior_cdf(prior, d, mid) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

int aert_cmd_manifold(const aert_model *model, const aert_options *options) {
  if (!options->output) return aert_error("manifold needs -o FILE.png or -o FILE.npy"), AERT_EXIT_USAGE;
  if (!need_decode(model, "manifold")) return AERT_EXIT_FAILURE;
  if (model->code_size != 2) {
    aert_error("manifold: model '%s' has a code of %d values; the manifold is drawn for a 2-d code (decode codes of "
               "your own with `%s decode --codes F`)", model->name, model->code_size, aert_program());
    return AERT_EXIT_FAILURE;
  }
  aert_prior prior;
  if (!code_prior(model, "manifold", &prior)) return AERT_EXIT_FAILURE;
  size_t n = options->has_count ? (size_t)options->count : 20;
  aert_real *codes = aert_alloc_reals(n * n, 2, "codes");
  aert_ctx *ctx = codes ? aert_open_checkpoint(model, options) : NULL;
  int status = AERT_EXIT_FAILURE;
  if (ctx) {
    // Row r from the top has z1 at the quantile (n - 1 - r + 0.5) / n, column c z0 at (c + 0.5) / n.
    for (size_t r = 0; r < n; r++)
      for (size_t c = 0; c < n; c++) {
        codes[2 * (r * n + c)] = (aert_real)prior_quantile(&prior, 0, ((double)c + 0.5) / (double)n);
        codes[2 * (r * n + c) + 1] = (aert_real)prior_quantile(&prior, 1, ((double)(n - 1 - r) + 0.5) / (double)n);
      }
    char described[128], note[256];
    aert_prior_format(&prior, described, sizeof described);
    snprintf(note, sizeof note, "%zu x %zu codes at the quantiles (i + 0.5) / %zu of %s: z0 left to right, z1 bottom "
             "to top", n, n, n, described);
    aert_real *decoded = decode_all(model, options, ctx, codes, n * n, "the grid");
    if (decoded && write_decoded(model, options->output, decoded, n * n, n, note)) status = AERT_EXIT_OK;
    aert_free(decoded);
  }
  aert_free(codes);
  aert_ctx_free(model, ctx);
  return status;
}
