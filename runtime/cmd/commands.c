// commands.c — the commands that apply a trained model (eval, summary,
// reconstruct, encode) and the pieces every command shares.
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "aert_internal.h"

aert_dataset *aert_load_model_data(const aert_model *model, const char *spec) {
  char shape[96], what[160];
  aert_format_shape(shape, sizeof shape, model->input_rank, model->input_shape);
  snprintf(what, sizeof what, "the model's input has %d (%s)", model->input_size, shape);
  aert_dataset *d = aert_dataset_load_described(spec, (size_t)model->input_size, what);
  if (d && d->n > UINT32_MAX) {
    aert_error("%s: %zu samples are more than this runtime handles", d->path, d->n);
    aert_dataset_free(d);
    return NULL;
  }
  return d;
}

// Subnormal floats (magnitudes under 1.2e-38) are flushed to zero, on input and
// output, in every thread, as TensorFlow does on CPUs. A sigmoid output near 0
// makes an MSE gradient of that size, and each product of one with a weight
// took a microcode assist: the 784-1000-500-250-30 model's last kernel gradient
// ran at 227 GFLOP/s with them and 272 without, the whole step 3-6% faster.
// Losses agreed to the 9 digits printed. The mode is per thread; threads
// OpenMP starts later copy it from the thread that starts them.
static void flush_subnormals_to_zero(void) {
#if defined(__SSE__)
  enum { FLUSH_TO_ZERO = 0x8000, DENORMALS_ARE_ZERO = 0x0040 };
#pragma omp parallel
  _mm_setcsr(_mm_getcsr() | FLUSH_TO_ZERO | DENORMALS_ARE_ZERO);
#endif
}

void aert_apply_threads(const aert_options *options, aert_ctx *ctx) {
  if (options->has_threads) omp_set_num_threads(options->threads);
  ctx->threads = omp_get_max_threads();
  flush_subnormals_to_zero();
}

bool aert_first_batch_open(const aert_model *model, const aert_options *options, int batch, aert_first_batch *b) {
  *b = (aert_first_batch){0};
  uint64_t seed = options->has_seed ? options->seed : model->default_seed;
  b->data = aert_load_model_data(model, options->has_data ? options->data : model->default_data);
  if (!b->data) return false;
  b->n = b->data->n < (size_t)batch ? (int)b->data->n : batch;
  b->ctx = aert_ctx_create(model, batch, seed);
  b->x = aert_alloc_reals((size_t)batch, b->data->sample_size, "batch");
  if (!b->ctx || !b->x) return false;
  aert_apply_threads(options, b->ctx);
  aert_gather(b->data, NULL, 0, b->n, b->x);
  return true;
}

void aert_first_batch_close(const aert_model *model, aert_first_batch *b) {
  aert_free(b->x);
  aert_ctx_free(model, b->ctx);
  aert_dataset_free(b->data);
  *b = (aert_first_batch){0};
}

void aert_gather(const aert_dataset *data, const uint32_t *order, size_t first, int n, aert_real *batch) {
  size_t size = data->sample_size;
  // A batch of Fashion-MNIST is 800 KB of copying, a few percent of a small
  // model's step: both cores share it. Each asks for its next row while it
  // copies this one, which the hardware cannot guess (the rows are shuffled):
  // simple.ae +2% (6 alternating runs of 3 epochs, all faster).
#pragma omp parallel for schedule(static) if ((size_t)n * size >= 65536)
  for (int i = 0; i < n; i++) {
    size_t row = order ? order[first + (size_t)i] : first + (size_t)i;
    if (i + 1 < n) {
      const char *next = (const char *)(data->x + (order ? order[first + (size_t)i + 1] : first + (size_t)i + 1) * size);
      for (size_t byte = 0; byte < size * sizeof *batch; byte += 64) __builtin_prefetch(next + byte);
    }
    memcpy(batch + (size_t)i * size, data->x + row * size, size * sizeof *batch);
  }
}

bool aert_evaluate(const aert_model *model, aert_ctx *ctx, const aert_dataset *data, double *losses) {
  aert_real *batch = aert_alloc_reals((size_t)ctx->capacity, data->sample_size, "evaluation batch");
  double *part = calloc((size_t)model->n_losses + 1, sizeof *part);
  if (!batch || !part) {
    aert_free(batch);
    free(part);
    return false;
  }
  for (int l = 0; l < model->n_losses; l++) losses[l] = 0;
  for (size_t first = 0; first < data->n; first += (size_t)ctx->capacity) {
    int n = (int)(data->n - first < (size_t)ctx->capacity ? data->n - first : (size_t)ctx->capacity);
    aert_gather(data, NULL, first, n, batch);
    model->eval_losses(ctx, batch, n, part);
    for (int l = 0; l < model->n_losses; l++) losses[l] += part[l] * n;
  }
  for (int l = 0; l < model->n_losses; l++) losses[l] /= (double)data->n;
  aert_free(batch);
  free(part);
  return true;
}

aert_ctx *aert_open_checkpoint(const aert_model *model, const aert_options *options) {
  if (!options->checkpoint) {
    aert_error("%s needs --checkpoint FILE", options->command);
    return NULL;
  }
  int capacity = options->has_batch ? options->batch : model->default_batch > 0 ? model->default_batch : 256;
  aert_ctx *ctx = aert_ctx_create(model, capacity, model->default_seed);
  if (!ctx) return NULL;
  aert_apply_threads(options, ctx);
  if (aert_checkpoint_load_ex(options->checkpoint, model, ctx, NULL, false) != 0) {
    aert_ctx_free(model, ctx);
    return NULL;
  }
  return ctx;
}

// ------------------------------------------------------------------- eval
int aert_cmd_eval(const aert_model *model, const aert_options *options) {
  if (!options->checkpoint) {
    aert_error("eval needs --checkpoint FILE");
    return AERT_EXIT_USAGE;
  }
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  aert_dataset *data = aert_load_model_data(model, options->has_data ? options->data : model->default_test);
  double *losses = calloc((size_t)model->n_losses + 1, sizeof *losses);
  int status = AERT_EXIT_FAILURE;
  if (data && losses && aert_evaluate(model, ctx, data, losses)) {
    for (int l = 0; l < model->n_losses; l++) printf("%s %.9g\n", model->loss_names[l], losses[l]);
    status = AERT_EXIT_OK;
  }
  free(losses);
  aert_dataset_free(data);
  aert_ctx_free(model, ctx);
  return status;
}

// ---------------------------------------------------------------- summary
static void shape_with_batch(char *out, size_t size, int rank, const int *shape) {
  size_t n = (size_t)snprintf(out, size, "(None");
  for (int i = 0; i < rank && n < size; i++) n += (size_t)snprintf(out + n, size - n, ", %d", shape[i]);
  if (n < size) snprintf(out + n, size - n, ")");
}

// 1234567 -> "1,234,567"
static void with_commas(char *out, size_t size, double v) {
  char digits[64];
  snprintf(digits, sizeof digits, "%.0f", v);
  size_t len = strlen(digits), o = 0;
  for (size_t i = 0; i < len && o + 2 < size; i++) {
    if (i > 0 && (len - i) % 3 == 0 && digits[i - 1] != '-') out[o++] = ',';
    out[o++] = digits[i];
  }
  out[o] = 0;
}

int aert_cmd_summary(const aert_model *model, const aert_options *options) {
  (void)options;
  char shape[96], params[32], flops[32];
  const char *rule = "--------------------------------------------------------------------------------------------------";
  fprintf(stderr, "Model: \"%s\" (%s)\n%s\n", model->name, model->source_file ? model->source_file : "?", rule);
  fprintf(stderr, "%-28s %-26s %-18s %10s %12s\n", "Layer", "Op", "Output shape", "Params", "FLOPs");
  fprintf(stderr, "%s\n", rule);
  shape_with_batch(shape, sizeof shape, model->input_rank, model->input_shape);
  fprintf(stderr, "%-28s %-26s %-18s %10s %12s\n", "x", "input", shape, "0", "0");
  double total_flops = 0;
  long total_params = 0;
  for (int i = 0; i < model->n_layers; i++) {
    const aert_layer *l = &model->layers[i];
    shape_with_batch(shape, sizeof shape, l->rank, l->shape);
    with_commas(params, sizeof params, (double)l->params);
    with_commas(flops, sizeof flops, l->flops);
    fprintf(stderr, "%-28s %-26s %-18s %10s %12s\n", l->name, l->op, shape, params, flops);
    total_flops += l->flops;
    total_params += l->params;
  }
  fprintf(stderr, "%s\n", rule);
  with_commas(params, sizeof params, (double)model->n_param_elems);
  with_commas(flops, sizeof flops, total_flops);
  fprintf(stderr, "Total params: %s (%s)\n", params, sizeof(aert_real) == 8 ? "float64" : "float32");
  fprintf(stderr, "Forward FLOPs per sample: %s\n", flops);
  if (total_params != (long)model->n_param_elems)
    aert_warning("the layers list %ld parameters, the model holds %zu", total_params, model->n_param_elems);
  printf("params %zu\nflops_per_sample %.0f\n", model->n_param_elems, total_flops);
  return AERT_EXIT_OK;
}

// ------------------------------------------------------------ reconstruct
// The displayed height and width of a sample: channel 0 of [c, h, w], else a
// square when the size is one, else one row.
static void image_size(const aert_model *model, int *height, int *width) {
  if (model->input_rank == 3) {
    *height = model->input_shape[1], *width = model->input_shape[2];
    return;
  }
  int side = (int)lround(sqrt((double)model->input_size));
  if (side * side == model->input_size) *height = *width = side;
  else *height = 1, *width = model->input_size;
}

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
  if (!options->checkpoint) return aert_error("reconstruct needs --checkpoint FILE"), AERT_EXIT_USAGE;
  if (!options->output) return aert_error("reconstruct needs -o FILE.png"), AERT_EXIT_USAGE;
  if (!model->reconstruct || model->recon_size != model->input_size) {
    aert_error("model '%s' has no reconstruction of its input", model->name);
    return AERT_EXIT_FAILURE;
  }
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  aert_dataset *data = aert_load_model_data(model, options->has_data ? options->data : model->default_test);
  int status = AERT_EXIT_FAILURE;
  if (data) {
    size_t count = options->has_count ? (size_t)options->count : 10;
    if (count > data->n) count = data->n;
    int height, width;
    image_size(model, &height, &width);
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

// ----------------------------------------------------------------- encode
static bool write_codes(const char *path, const aert_dataset *data, const aert_real *codes, int code_size) {
  FILE *f = fopen(path, "w");
  if (!f) {
    aert_error("%s: cannot create: %s", path, strerror(errno));
    return false;
  }
  if (data->labels) fprintf(f, "label,");
  for (int j = 0; j < code_size; j++) fprintf(f, "z%d%s", j, j + 1 < code_size ? "," : "\n");
  for (size_t i = 0; i < data->n; i++) {
    if (data->labels) fprintf(f, "%d,", data->labels[i]);
    for (int j = 0; j < code_size; j++)
      fprintf(f, "%.9g%s", (double)codes[i * (size_t)code_size + (size_t)j], j + 1 < code_size ? "," : "\n");
  }
  bool ok = !ferror(f);
  if (fclose(f) != 0) ok = false;
  if (!ok) aert_error("%s: cannot write the codes: %s", path, strerror(errno));
  return ok;
}

int aert_cmd_encode(const aert_model *model, const aert_options *options) {
  if (!options->checkpoint) return aert_error("encode needs --checkpoint FILE"), AERT_EXIT_USAGE;
  if (!options->output) return aert_error("encode needs -o FILE.csv"), AERT_EXIT_USAGE;
  if (!model->encode || model->code_size <= 0) {
    aert_error("model '%s' has no code (name a value 'code' or a net 'encoder')", model->name);
    return AERT_EXIT_FAILURE;
  }
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  aert_dataset *data = aert_load_model_data(model, options->has_data ? options->data : model->default_test);
  int status = AERT_EXIT_FAILURE;
  aert_real *codes = data ? aert_alloc_reals(data->n, (size_t)model->code_size, "codes") : NULL;
  if (codes && apply_in_batches(model, ctx, data, data->n, model->encode, (size_t)model->code_size, codes) &&
      (strlen(options->output) > 4 && strcmp(options->output + strlen(options->output) - 4, ".npy") == 0
           ? aert_write_codes_npy(options->output, data, codes, model->code_size)
           : write_codes(options->output, data, codes, model->code_size))) {
    fprintf(stderr, "%s: wrote %s (%zu codes of %d values)\n", aert_program(), options->output, data->n,
            model->code_size);
    status = options->plot && !aert_plot_codes(options->plot, model, data, codes) ? AERT_EXIT_FAILURE : AERT_EXIT_OK;
  }
  aert_free(codes);
  aert_dataset_free(data);
  aert_ctx_free(model, ctx);
  return status;
}
