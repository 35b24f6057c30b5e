// common.c — what the commands share: the data set a command works on,
// checked against the model's input; a context for a trained model; the
// threads setting; batches gathered, evaluated and run through the model; the
// displayed size of a sample; and option values every command parses alike.
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "cmd.h"
#include "ckpt.h"
#include "data.h"

aert_dataset *aert_load_model_data(const aert_model *model, const char *spec) {
  return aert_load_data_for(model, spec, true);
}

aert_dataset *aert_load_data_for(const aert_model *model, const char *spec, bool model_reads) {
  char shape[96], what[160];
  aert_format_shape(shape, sizeof shape, model->input_rank, model->input_shape);
  snprintf(what, sizeof what, "the model's input has %d (%s)", model->input_size, shape);
  aert_data_expect expect = {.size = (size_t)model->input_size, .what = what, .rank = model->input_rank,
                             .scale = aert_data_scale};
  for (int i = 0; i < model->input_rank && i < 3; i++) expect.shape[i] = model->input_shape[i];
  aert_dataset *d = aert_dataset_load_expecting(spec, &expect);
  if (d && model_reads && !aert_check_bce_targets(model, d)) {
    aert_dataset_free(d);
    return NULL;
  }
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

// More threads than this are not asked for: libgomp's first parallel region
// crashes (a segmentation fault) at --threads 100000.
enum { MAX_THREADS = 1024 };

void aert_apply_threads(const aert_options *options, aert_ctx *ctx) {
  static bool said;
  if (options->has_threads && options->threads > MAX_THREADS && !said) {
    aert_note("--threads %d is more than the %d this program starts: %d threads", options->threads, MAX_THREADS,
              MAX_THREADS);
    said = true;
  }
  if (options->has_threads) omp_set_num_threads(options->threads > MAX_THREADS ? MAX_THREADS : options->threads);
  ctx->threads = omp_get_max_threads();
  flush_subnormals_to_zero();
}

bool aert_first_batch_open(const aert_model *model, const aert_options *options, int batch, aert_first_batch *b) {
  *b = (aert_first_batch){0};
  uint64_t seed = options->has_seed ? options->seed : model->default_seed;
  b->data = aert_load_model_data(model, options->has_data ? options->data : model->default_data);
  if (!b->data) return false;
  batch = aert_fit_batch(options, batch, b->data->n, b->data->path);
  b->n = batch;
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
  // Several processes (train under mpirun) each take a share of the samples.
  size_t from, count;
  aert_share(data->n, &from, &count);
  const size_t to = from + count;
  const uint64_t row0 = ctx->row0;
  for (size_t first = from; first < to; first += (size_t)ctx->capacity) {
    int n = (int)(to - first < (size_t)ctx->capacity ? to - first : (size_t)ctx->capacity);
    aert_gather(data, NULL, first, n, batch);
    ctx->row0 = first;  // what a loss draws (a prior's samples) is keyed by sample, whatever the batches
    model->eval_losses(ctx, batch, n, part);
    for (int l = 0; l < model->n_losses; l++) losses[l] += part[l] * n;
  }
  ctx->row0 = row0;
  aert_world()->sum_doubles(aert_world(), losses, (size_t)model->n_losses);  // one process alone: as is
  for (int l = 0; l < model->n_losses; l++) losses[l] /= (double)data->n;
  aert_free(batch);
  free(part);
  return true;
}

int aert_fit_batch(const aert_options *options, int batch, size_t rows, const char *path) {
  static bool said;
  if (rows == 0 || (size_t)batch <= rows) return batch;
  if (options->has_batch && !said)
    aert_note("--batch %d is more than the %zu samples of %s: batches of %zu", batch, rows, path, rows);
  said = options->has_batch;
  return (int)rows;
}

bool aert_fit_context(const aert_model *model, const aert_options *options, aert_ctx *ctx, size_t rows,
                      const char *path) {
  int batch = options->has_batch ? options->batch : model->default_batch > 0 ? model->default_batch : 256;
  return aert_ctx_set_capacity(model, ctx, aert_fit_batch(options, batch, rows, path));
}

aert_ctx *aert_open_checkpoint(const aert_model *model, const aert_options *options) {
  if (!options->checkpoint) {
    aert_error("%s needs --checkpoint FILE", options->command);
    return NULL;
  }
  aert_ctx *ctx = aert_ctx_create(model, 1, model->default_seed);  // aert_fit_context sizes its batches
  if (!ctx) return NULL;
  aert_apply_threads(options, ctx);
  if (aert_checkpoint_load_ex(options->checkpoint, model, ctx, NULL, false) != 0) {
    aert_ctx_free(model, ctx);
    return NULL;
  }
  return ctx;
}

void aert_display_size(const aert_model *model, int *height, int *width) {
  if (model->input_rank == 3) {
    *height = model->input_shape[1], *width = model->input_shape[2];
    return;
  }
  int side = (int)lround(sqrt((double)model->input_size));
  if (side * side == model->input_size) *height = *width = side;
  else *height = 1, *width = model->input_size;
}

// fn over samples [0, n) of x (each `in_size` values) in batches of the
// context's capacity; out gets n * out_size. Before each batch b,
// ctx->batch_counter = b, so random draws (corrupt) differ from batch to batch.
bool aert_run_batches(aert_ctx *ctx, const aert_real *x, size_t in_size, size_t n,
                      void (*fn)(aert_ctx *, const aert_real *, int, aert_real *), size_t out_size, aert_real *out) {
  for (size_t first = 0, b = 0; first < n; first += (size_t)ctx->capacity, b++) {
    int m = (int)(n - first < (size_t)ctx->capacity ? n - first : (size_t)ctx->capacity);
    ctx->batch_counter = b;
    fn(ctx, x + first * in_size, m, out + first * out_size);
  }
  return true;
}

// The codes of a whole data set; NULL after a message.
aert_real *aert_encode_all(const aert_model *model, aert_ctx *ctx, const aert_dataset *data) {
  aert_real *codes = aert_alloc_reals(data->n, (size_t)model->code_size, "codes");
  if (codes) aert_run_batches(ctx, data->x, data->sample_size, data->n, model->encode, (size_t)model->code_size, codes);
  return codes;
}

bool aert_need_code(const aert_model *model) {
  if (model->encode && model->code_size > 0) return true;
  aert_error("model '%s' has no code (name a value 'code' or a net 'encoder')", model->name);
  return false;
}

bool aert_parse_positive(const char *option, const char *text, double *out) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (!*text || *end || errno || !isfinite(v) || v <= 0) {
    aert_error("%s needs a positive number, not '%s'", option, text);
    return false;
  }
  *out = v;
  return true;
}

bool aert_is_npy_path(const char *path) {
  size_t n = strlen(path);
  return n > 4 && strcmp(path + n - 4, ".npy") == 0;
}

bool aert_write_npy(const char *path, const char *what, const char *descr, const size_t *shape, int rank,
                    const void *data, size_t item) {
  aert_output *out = aert_output_begin(path, what);
  if (!out) return false;
  FILE *f = aert_output_stream(out);
  char dict[256];
  size_t count = 1;
  int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int d = 0; d < rank; d++) {
    len += snprintf(dict + len, sizeof dict - (size_t)len, "%s%zu", d ? ", " : "", shape[d]);
    count *= shape[d];
  }
  len += snprintf(dict + len, sizeof dict - (size_t)len, rank == 1 ? ",), }" : "), }");
  size_t header = 10 + (size_t)len + 1, padded = (header + 63) / 64 * 64;
  unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)((padded - 10) & 0xff),
                            (unsigned char)((padded - 10) >> 8)};
  fwrite(head, 1, 10, f);
  fwrite(dict, 1, (size_t)len, f);
  for (size_t i = header; i < padded; i++) fputc(' ', f);
  fputc('\n', f);
  fwrite(data, item, count, f);
  return aert_output_commit(out);
}
