// apps.c — what a user does with a trained model, beyond eval, reconstruct
// and encode (commands.c): denoise, retrieve, filters, histogram, probe and
// pca, the extras of encode (.npy output, --plot), and plot-xy, a chart of a
// CSV file that needs no model (examples/sweep.sh draws with it).
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aert_internal.h"

static const char *const fashion_names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

const char *const *aert_label_names(const aert_dataset *data, int *count) {
  bool fashion = data->path && strstr(data->path, "fashion-mnist") != NULL;
  *count = fashion ? 10 : 0;
  return fashion ? fashion_names : NULL;
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
static bool run_batches(aert_ctx *ctx, const aert_real *x, size_t in_size, size_t n,
                        void (*fn)(aert_ctx *, const aert_real *, int, aert_real *), size_t out_size, aert_real *out) {
  for (size_t first = 0, b = 0; first < n; first += (size_t)ctx->capacity, b++) {
    int m = (int)(n - first < (size_t)ctx->capacity ? n - first : (size_t)ctx->capacity);
    ctx->batch_counter = b;
    fn(ctx, x + first * in_size, m, out + first * out_size);
  }
  return true;
}

// The codes of a whole data set; NULL after a message.
static aert_real *encode_all(const aert_model *model, aert_ctx *ctx, const aert_dataset *data) {
  aert_real *codes = aert_alloc_reals(data->n, (size_t)model->code_size, "codes");
  if (codes) run_batches(ctx, data->x, data->sample_size, data->n, model->encode, (size_t)model->code_size, codes);
  return codes;
}

static bool need_code(const aert_model *model) {
  if (model->encode && model->code_size > 0) return true;
  aert_error("model '%s' has no code (name a value 'code' or a net 'encoder')", model->name);
  return false;
}

// ------------------------------------------------------------ encode extras
// codes.npy: float32 [n, code_size]; with labels, codes.labels.npy: int32 [n].
static bool write_npy(const char *path, const char *descr, size_t rows, size_t cols, const void *data, size_t item) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    aert_error("%s: cannot create: %s", path, strerror(errno));
    return false;
  }
  char dict[128];
  int len = cols ? snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%zu, %zu), }", descr,
                            rows, cols)
                 : snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%zu,), }", descr, rows);
  size_t header = 10 + (size_t)len + 1, padded = (header + 63) / 64 * 64;
  unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)((padded - 10) & 0xff),
                            (unsigned char)((padded - 10) >> 8)};
  fwrite(head, 1, 10, f);
  fwrite(dict, 1, (size_t)len, f);
  for (size_t i = header; i < padded; i++) fputc(' ', f);
  fputc('\n', f);
  fwrite(data, item, rows * (cols ? cols : 1), f);
  bool ok = !ferror(f);
  if (fclose(f) != 0) ok = false;
  if (!ok) aert_error("%s: cannot write: %s", path, strerror(errno));
  return ok;
}

bool aert_write_codes_npy(const char *path, const aert_dataset *data, const aert_real *codes, int code_size) {
  size_t count = data->n * (size_t)code_size;
  float *values = malloc((count ? count : 1) * sizeof *values);
  if (!values) return aert_error("out of memory for %s", path), false;
  for (size_t i = 0; i < count; i++) values[i] = (float)codes[i];
  bool ok = write_npy(path, "<f4", data->n, (size_t)code_size, values, sizeof *values);
  free(values);
  if (ok && data->labels) {
    char *labels_path = NULL;
    if (asprintf(&labels_path, "%.*s.labels.npy", (int)(strlen(path) - 4), path) < 0) return false;
    ok = write_npy(labels_path, "<i4", data->n, 0, data->labels, sizeof(int32_t));
    if (ok) fprintf(stderr, "%s: wrote the labels to %s\n", aert_program(), labels_path);
    free(labels_path);
  }
  return ok;
}

// The scatter of codes: their first two values, or their first two
// principal components when there are more.
bool aert_plot_codes(const char *path, const aert_model *model, const aert_dataset *data, const aert_real *codes) {
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

static double mean_squared_error(const aert_real *a, const aert_real *b, size_t count) {
  double sum = 0;
  for (size_t i = 0; i < count; i++) sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return count ? sum / (double)count : 0;
}

// PSNR of images in [0, 1]: 10 log10(1 / MSE), the MSE over the whole set.
static double psnr(double mse) { return 10 * log10(1 / fmax(mse, 1e-20)); }

int aert_cmd_denoise(const aert_model *model, const aert_options *options) {
  if (!options->checkpoint) return aert_error("denoise needs --checkpoint FILE"), AERT_EXIT_USAGE;
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
  if (!data) goto done;
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
    run_batches(ctx, data->x, size, data->n, model->corrupt, size, noisy);
  }
  run_batches(ctx, noisy, size, data->n, model->reconstruct, size, denoised);
  double noisy_mse = mean_squared_error(noisy, data->x, total), denoised_mse = mean_squared_error(denoised, data->x, total);
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

// ---------------------------------------------------------------- retrieve
// The k nearest rows of db (n_db x d) to each query (n_q x d), by Euclidean
// or by cosine distance: neighbours[q * k ..], nearest first. Both rank by
// a - 2 b . q with a per-row a and b, the query's own norm being the same
// for every row: Euclidean a = |x|^2, b = 1; cosine a = 0, b = 1 / (2 |x|)
// (a zero row is at distance 0 from everything). Queries go 4 at a time
// against each database row, so a row is read once per 4 queries.
// `skip_self`: the query set is the database, and a query does not find itself.
static void knn_search(const aert_real *db, size_t n_db, const aert_real *queries, size_t n_q, int d, int k,
                       bool cosine, bool skip_self, uint32_t *neighbours) {
  float *norms = malloc((n_db ? n_db : 1) * sizeof *norms);
  float *scales = malloc((n_db ? n_db : 1) * sizeof *scales);
#pragma omp parallel for schedule(static)
  for (size_t j = 0; j < n_db; j++) {
    const aert_real *x = db + j * (size_t)d;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int t = 0; t < d; t++) s += (float)x[t] * (float)x[t];
    norms[j] = cosine ? 0 : s;
    scales[j] = !cosine ? 1 : s > 0 ? 0.5f / sqrtf(s) : 0;
  }
#pragma omp parallel
  {
    float *best = malloc(4 * (size_t)k * sizeof *best);
    uint32_t *index = malloc(4 * (size_t)k * sizeof *index);
#pragma omp for schedule(dynamic, 4)
    for (size_t q0 = 0; q0 < n_q; q0 += 4) {
      int m = (int)(n_q - q0 < 4 ? n_q - q0 : 4);
      const aert_real *qs[4];
      for (int a = 0; a < 4; a++) qs[a] = queries + (q0 + (size_t)(a < m ? a : 0)) * (size_t)d;
      for (int i = 0; i < 4 * k; i++) best[i] = INFINITY, index[i] = UINT32_MAX;
      for (size_t j = 0; j < n_db; j++) {
        const aert_real *x = db + j * (size_t)d;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
        for (int t = 0; t < d; t++) {
          float v = (float)x[t];
          s0 += v * (float)qs[0][t], s1 += v * (float)qs[1][t], s2 += v * (float)qs[2][t], s3 += v * (float)qs[3][t];
        }
        float b = 2 * scales[j];
        float dist[4] = {norms[j] - b * s0, norms[j] - b * s1, norms[j] - b * s2, norms[j] - b * s3};
        for (int a = 0; a < m; a++) {
          float *b = best + (size_t)a * k;
          if (!(dist[a] < b[k - 1]) || (skip_self && j == q0 + (size_t)a)) continue;
          uint32_t *ix = index + (size_t)a * k;
          int p = k - 1;
          for (; p > 0 && b[p - 1] > dist[a]; p--) b[p] = b[p - 1], ix[p] = ix[p - 1];
          b[p] = dist[a], ix[p] = (uint32_t)j;
        }
      }
      for (int a = 0; a < m; a++) memcpy(neighbours + (q0 + (size_t)a) * (size_t)k, index + (size_t)a * k, (size_t)k * sizeof *index);
    }
    free(best), free(index);
  }
  free(norms), free(scales);
}

// Codes thresholded at 0.5, packed 64 to a word (semantic hashing).
static uint64_t *binary_codes(const aert_real *codes, size_t n, int d, int words) {
  uint64_t *bits = calloc((n ? n : 1) * (size_t)words, sizeof *bits);
  if (!bits) return NULL;
  for (size_t i = 0; i < n; i++)
    for (int t = 0; t < d; t++)
      if (codes[i * (size_t)d + (size_t)t] > (aert_real)0.5) bits[i * (size_t)words + (size_t)(t / 64)] |= 1ULL << (t % 64);
  return bits;
}

// The k nearest by Hamming distance; ties go to the earlier database row.
static void knn_hamming(const uint64_t *db, size_t n_db, const uint64_t *queries, size_t n_q, int words, int k,
                        bool skip_self, uint32_t *neighbours) {
#pragma omp parallel
  {
    int *best = malloc((size_t)k * sizeof *best);
    uint32_t *index = malloc((size_t)k * sizeof *index);
#pragma omp for schedule(dynamic, 16)
    for (size_t q = 0; q < n_q; q++) {
      const uint64_t *qb = queries + q * (size_t)words;
      for (int i = 0; i < k; i++) best[i] = INT32_MAX, index[i] = UINT32_MAX;
      for (size_t j = 0; j < n_db; j++) {
        if (skip_self && j == q) continue;
        const uint64_t *x = db + j * (size_t)words;
        int dist = 0;
        for (int w = 0; w < words; w++) dist += __builtin_popcountll(x[w] ^ qb[w]);
        if (dist >= best[k - 1]) continue;
        int p = k - 1;
        for (; p > 0 && best[p - 1] > dist; p--) best[p] = best[p - 1], index[p] = index[p - 1];
        best[p] = dist, index[p] = (uint32_t)j;
      }
      memcpy(neighbours + q * (size_t)k, index, (size_t)k * sizeof *index);
    }
    free(best), free(index);
  }
}

// The mean over queries of the fraction of their k neighbours with the query's label.
static double precision_at_k(const uint32_t *neighbours, size_t n_q, int k, const int32_t *db_labels,
                             const int32_t *query_labels) {
  double sum = 0;
  for (size_t q = 0; q < n_q; q++) {
    int same = 0;
    for (int i = 0; i < k; i++) {
      uint32_t j = neighbours[q * (size_t)k + (size_t)i];
      same += j != UINT32_MAX && db_labels[j] == query_labels[q];
    }
    sum += (double)same / k;
  }
  return n_q ? sum / (double)n_q : 0;
}

int aert_cmd_retrieve(const aert_model *model, const aert_options *options) {
  if (!options->checkpoint) return aert_error("retrieve needs --checkpoint FILE"), AERT_EXIT_USAGE;
  if (options->binary && options->cosine)
    return aert_error("retrieve: --binary (Hamming distance) and --cosine are two different distances; choose one"),
           AERT_EXIT_USAGE;
  int k = options->has_k ? options->k : 10;
  if (!need_code(model)) return AERT_EXIT_FAILURE;
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  const char *db_spec = options->db ? options->db : model->default_data;
  const char *query_spec = options->queries ? options->queries : model->default_test;
  aert_dataset *db = aert_load_model_data(model, db_spec);
  aert_dataset *queries = db ? aert_load_model_data(model, query_spec) : NULL;
  int status = AERT_EXIT_FAILURE;
  aert_real *db_codes = NULL, *query_codes = NULL;
  uint32_t *neighbours = NULL;
  uint64_t *db_bits = NULL, *query_bits = NULL;
  if (!queries) goto done;
  if (!db->labels || !queries->labels) {
    aert_error("%s: retrieval precision needs labels, and this data set has none", !db->labels ? db->path : queries->path);
    goto done;
  }
  bool same = strcmp(db_spec, query_spec) == 0;
  size_t n_q = queries->n;
  if (options->has_count && (size_t)options->count < n_q) n_q = (size_t)options->count;
  if ((size_t)k > db->n - (same ? 1 : 0) || n_q == 0) {
    aert_error("retrieve: -k %d needs a database of more than %d samples and at least one query", k, k);
    goto done;
  }
  int dims = model->code_size, words = (dims + 63) / 64;
  neighbours = malloc(n_q * (size_t)k * sizeof *neighbours);
  double start = aert_now();
  db_codes = encode_all(model, ctx, db);
  double index_s = aert_now() - start;
  if (!db_codes || !neighbours) goto done;
  // The search time includes encoding the queries: what one more query costs.
  start = aert_now();
  query_codes = aert_alloc_reals(n_q, (size_t)dims, "query codes");
  if (!query_codes) goto done;
  run_batches(ctx, queries->x, queries->sample_size, n_q, model->encode, (size_t)dims, query_codes);
  if (options->binary) {
    db_bits = binary_codes(db_codes, db->n, dims, words);
    query_bits = binary_codes(query_codes, n_q, dims, words);
    if (!db_bits || !query_bits) goto done;
    knn_hamming(db_bits, db->n, query_bits, n_q, words, k, same, neighbours);
  } else {
    knn_search(db_codes, db->n, query_codes, n_q, dims, k, options->cosine, same, neighbours);
  }
  double search_s = aert_now() - start;
  double precision = precision_at_k(neighbours, n_q, k, db->labels, queries->labels);
  start = aert_now();
  knn_search(db->x, db->n, queries->x, n_q, (int)db->sample_size, k, options->cosine, same, neighbours);
  double raw_search_s = aert_now() - start;
  double raw_precision = precision_at_k(neighbours, n_q, k, db->labels, queries->labels);
  fprintf(stderr, "%s: %zu queries against %zu samples, k = %d\n", aert_program(), n_q, db->n, k);
  fprintf(stderr, "  %-34s %12s %12s\n", "", "precision", "search s");
  char what[64];
  const char *metric = options->cosine ? "cosine" : "Euclidean";
  snprintf(what, sizeof what, "codes (%d values, %s)", dims, options->binary ? "Hamming on bits" : metric);
  fprintf(stderr, "  %-34s %12.4f %12.3f\n", what, precision, search_s);
  snprintf(what, sizeof what, "raw input (%zu values, %s)", db->sample_size, metric);
  fprintf(stderr, "  %-34s %12.4f %12.3f\n", what, raw_precision, raw_search_s);
  fprintf(stderr, "  encoding the database took %.3f s (not counted); the codes search %.1fx faster\n", index_s,
          raw_search_s / fmax(search_s, 1e-9));
  printf("precision@%d %.6g\nraw_precision@%d %.6g\nsearch_s %.6g\nraw_search_s %.6g\n", k, precision, k,
         raw_precision, search_s, raw_search_s);
  status = AERT_EXIT_OK;
done:
  aert_free(db_codes), aert_free(query_codes);
  free(neighbours), free(db_bits), free(query_bits);
  aert_dataset_free(db), aert_dataset_free(queries);
  aert_ctx_free(model, ctx);
  return status;
}

// ----------------------------------------------------------------- filters
int aert_cmd_filters(const aert_model *model, const aert_options *options) {
  if (!options->checkpoint) return aert_error("filters needs --checkpoint FILE"), AERT_EXIT_USAGE;
  if (!options->output) return aert_error("filters needs -o FILE.png"), AERT_EXIT_USAGE;
  const aert_param *kernel = NULL;
  for (int i = 0; model->first_kernel && i < model->n_params; i++)
    if (strcmp(model->params[i].name, model->first_kernel) == 0) kernel = &model->params[i];
  if (kernel && kernel->rank == 4) return aert_draw_conv_filters(model, options, kernel);
  if (!kernel || kernel->rank != 2) {
    aert_error("model '%s' has no dense or conv layer applied to its input, so no filters to draw", model->name);
    return AERT_EXIT_FAILURE;
  }
  int height, width;
  aert_display_size(model, &height, &width);
  int in = kernel->shape[0], units = kernel->shape[1];
  size_t pixels = (size_t)height * (size_t)width;
  if ((size_t)in < pixels) height = 1, width = in, pixels = (size_t)in;
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  int count = options->has_count ? options->count : units;
  if (count > units) count = units;
  int cols = (int)ceil(sqrt((double)count)), rows = (count + cols - 1) / cols;
  aert_real *tiles = aert_alloc_reals((size_t)rows * (size_t)cols, pixels, "filter tiles");
  int status = AERT_EXIT_FAILURE;
  if (tiles) {
    const aert_real *w = ctx->params + kernel->offset;
    for (size_t i = 0; i < (size_t)rows * (size_t)cols * pixels; i++) tiles[i] = 1;  // unused tiles: white
    for (int u = 0; u < count; u++) {
      // Each unit's incoming weights (its kernel column), zero at mid grey,
      // scaled by its own largest magnitude.
      double peak = 1e-30;
      for (size_t p = 0; p < pixels; p++) peak = fmax(peak, fabs((double)w[p * (size_t)units + (size_t)u]));
      for (size_t p = 0; p < pixels; p++)
        tiles[(size_t)u * pixels + p] = (aert_real)(0.5 + 0.5 * w[p * (size_t)units + (size_t)u] / peak);
    }
    if (aert_write_image_grid(options->output, tiles, rows, cols, height, width) == 0) {
      fprintf(stderr, "%s: wrote %s (%d of the %d units of %s; grey is 0, white positive, black negative)\n",
              aert_program(), options->output, count, units, kernel->name);
      status = AERT_EXIT_OK;
    }
  }
  aert_free(tiles);
  aert_ctx_free(model, ctx);
  return status;
}

// --------------------------------------------------------------- histogram
int aert_cmd_histogram(const aert_model *model, const aert_options *options) {
  if (!options->checkpoint) return aert_error("histogram needs --checkpoint FILE"), AERT_EXIT_USAGE;
  if (!options->output) return aert_error("histogram needs -o FILE.png"), AERT_EXIT_USAGE;
  if (!need_code(model)) return AERT_EXIT_FAILURE;
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  aert_dataset *data = aert_load_model_data(model, options->has_data ? options->data : model->default_test);
  aert_real *codes = data ? encode_all(model, ctx, data) : NULL, *shown = NULL;
  int status = AERT_EXIT_FAILURE;
  if (codes) {
    int dims = model->code_size, count = options->has_count && options->count < dims ? options->count : dims;
    double sum = 0, squares = 0;
    size_t total = data->n * (size_t)dims;
    for (size_t i = 0; i < total; i++) sum += codes[i], squares += (double)codes[i] * codes[i];
    double mean = total ? sum / (double)total : 0;
    printf("code_mean %.6g\ncode_std %.6g\n", mean, total ? sqrt(fmax(squares / (double)total - mean * mean, 0)) : 0.0);
    shown = aert_alloc_reals(data->n, (size_t)count, "histogram values");
    if (shown) {
      for (size_t i = 0; i < data->n; i++)
        memcpy(shown + i * (size_t)count, codes + i * (size_t)dims, (size_t)count * sizeof *shown);
      char title[256];
      snprintf(title, sizeof title, "%s: the distribution of each code dimension over %zu samples%s", model->name,
               data->n, count < dims ? " (the first dimensions)" : "");
      const aert_prior *prior = model->prior.kind != AERT_PRIOR_NONE && model->prior.dim == dims ? &model->prior : NULL;
      if (aert_plot_histograms_prior(options->output, shown, data->n, count, title, prior) == 0) {
        fprintf(stderr, "%s: wrote %s (%d of %d code dimensions)\n", aert_program(), options->output, count, dims);
        status = AERT_EXIT_OK;
      }
    }
  }
  aert_free(codes), aert_free(shown);
  aert_dataset_free(data);
  aert_ctx_free(model, ctx);
  return status;
}

// ------------------------------------------------------------------- probe
// A softmax classifier (multinomial logistic regression) on standardized
// features, trained with Adam on mini-batches; returns its test accuracy.
static double softmax_probe(const aert_real *train, const int32_t *train_labels, size_t n_train, const aert_real *test,
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

int aert_cmd_probe(const aert_model *model, const aert_options *options) {
  if (!options->checkpoint) return aert_error("probe needs --checkpoint FILE"), AERT_EXIT_USAGE;
  double fraction = options->has_labels_fraction ? options->labels_fraction : 0.1;
  if (!(fraction > 0 && fraction <= 1)) return aert_error("--labels-fraction must be in (0, 1]"), AERT_EXIT_USAGE;
  int epochs = options->has_epochs ? options->epochs : 30;
  uint64_t seed = options->has_seed ? options->seed : model->default_seed;
  if (!need_code(model)) return AERT_EXIT_FAILURE;
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  aert_dataset *train = aert_load_model_data(model, options->has_data ? options->data : model->default_data);
  aert_dataset *test = train ? aert_load_model_data(model, options->has_test ? options->test : model->default_test) : NULL;
  int status = AERT_EXIT_FAILURE;
  aert_real *picked = NULL, *train_codes = NULL, *test_codes = NULL;
  int32_t *labels = NULL;
  uint32_t *order = NULL;
  if (!test) goto done;
  if (!train->labels || !test->labels) {
    aert_error("%s: the probe needs labels, and this data set has none", !train->labels ? train->path : test->path);
    goto done;
  }
  size_t n = (size_t)floor(fraction * (double)train->n + 0.5), size = train->sample_size;
  if (n < 1) n = 1;
  int classes = 0;
  for (size_t i = 0; i < train->n; i++) classes = train->labels[i] + 1 > classes ? train->labels[i] + 1 : classes;
  for (size_t i = 0; i < test->n; i++) classes = test->labels[i] + 1 > classes ? test->labels[i] + 1 : classes;
  // The labelled fraction: a seeded random subset of the training set.
  order = malloc(train->n * sizeof *order);
  picked = aert_alloc_reals(n, size, "labelled samples");
  labels = malloc(n * sizeof *labels);
  if (!order || !picked || !labels) goto done;
  aert_shuffle(order, train->n, seed, 0x70726f6265ULL);
  for (size_t i = 0; i < n; i++) {
    memcpy(picked + i * size, train->x + (size_t)order[i] * size, size * sizeof *picked);
    labels[i] = train->labels[order[i]];
  }
  int dims = model->code_size;
  train_codes = aert_alloc_reals(n, (size_t)dims, "codes");
  test_codes = encode_all(model, ctx, test);
  if (!train_codes || !test_codes) goto done;
  run_batches(ctx, picked, size, n, model->encode, (size_t)dims, train_codes);
  fprintf(stderr, "%s: softmax classifiers on %zu labelled samples (%.3g of %s), %d classes, %d epochs\n",
          aert_program(), n, fraction, train->path, classes, epochs);
  double start = aert_now();
  double accuracy = softmax_probe(train_codes, labels, n, test_codes, test->labels, test->n, dims, classes, epochs, seed);
  double code_s = aert_now() - start;
  start = aert_now();
  double raw = softmax_probe(picked, labels, n, test->x, test->labels, test->n, (int)size, classes, epochs, seed);
  double raw_s = aert_now() - start;
  fprintf(stderr, "  on the codes (%d values): test accuracy %.4f (%.1f s)\n", dims, accuracy, code_s);
  fprintf(stderr, "  on the raw input (%zu values): test accuracy %.4f (%.1f s)\n", size, raw, raw_s);
  printf("probe_accuracy %.6g\nraw_probe_accuracy %.6g\n", accuracy, raw);
  status = AERT_EXIT_OK;
done:
  aert_free(picked), aert_free(train_codes), aert_free(test_codes);
  free(labels), free(order);
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
  aert_dataset *train = aert_load_model_data(model, options->has_data ? options->data : model->default_data);
  aert_dataset *test = train ? aert_load_model_data(model, options->has_test ? options->test : model->default_test) : NULL;
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
    if (!recon) goto done;
    run_batches(ctx, test->x, (size_t)d, test->n, model->reconstruct, (size_t)d, recon);
    double ae_mse = mean_squared_error(recon, test->x, test->n * (size_t)d);
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

// ----------------------------------------------------------------- plot-xy
// A CSV with a header line; the first column is x, the second y.
int aert_cmd_plot_xy(const aert_model *model, const aert_options *options) {
  (void)model;
  if (!options->csv) return aert_error("plot-xy needs --csv FILE"), AERT_EXIT_USAGE;
  if (!options->output) return aert_error("plot-xy needs -o FILE.png"), AERT_EXIT_USAGE;
  FILE *f = fopen(options->csv, "r");
  if (!f) return aert_error("%s: cannot open: %s", options->csv, strerror(errno)), AERT_EXIT_FAILURE;
  char *line = NULL, xname[64] = "x", yname[64] = "y";
  size_t cap = 0, n = 0, room = 0;
  double *x = NULL, *y = NULL;
  int status = AERT_EXIT_FAILURE, number = 0;
  while (getline(&line, &cap, f) > 0) {
    number++;
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    char *end, *comma = strchr(line, ',');
    double a = strtod(line, &end);
    if (number == 1 && (end == line || *end != ',')) {  // the header
      if (comma) snprintf(xname, sizeof xname, "%.*s", (int)(comma - line), line), snprintf(yname, sizeof yname, "%.*s", (int)strcspn(comma + 1, ","), comma + 1);
      continue;
    }
    double b = comma ? strtod(comma + 1, &end) : NAN;
    if (!comma || end == comma + 1 || !isfinite(a) || !isfinite(b)) {
      aert_error("%s:%d: expected two numbers, 'x,y'", options->csv, number);
      goto done;
    }
    if (n == room) {
      room = room ? 2 * room : 64;
      x = realloc(x, room * sizeof *x), y = realloc(y, room * sizeof *y);
      if (!x || !y) goto done;
    }
    x[n] = a, y[n] = b, n++;
  }
  if (n == 0) {
    aert_error("%s: no rows to plot", options->csv);
    goto done;
  }
  char title[160];
  snprintf(title, sizeof title, "%s against %s", yname, xname);
  if (aert_plot_xy(options->output, x, y, n, xname, yname, title) == 0) {
    fprintf(stderr, "%s: wrote %s (%zu points)\n", aert_program(), options->output, n);
    status = AERT_EXIT_OK;
  }
done:
  fclose(f);
  free(line), free(x), free(y);
  return status;
}
