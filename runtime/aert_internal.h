// aert_internal.h — declarations shared by the runtime's files and not part
// of the interface generated code sees (that is aert.h).
#ifndef AERT_INTERNAL_H
#define AERT_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>

#include "aert.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libaert reads and writes little-endian files and assumes a little-endian host"
// Temporary, until each folder has its header.
bool aert_run_batches(aert_ctx *ctx, const aert_real *x, size_t in_size, size_t n,
                      void (*fn)(aert_ctx *, const aert_real *, int, aert_real *), size_t out_size, aert_real *out);
aert_real *aert_encode_all(const aert_model *model, aert_ctx *ctx, const aert_dataset *data);
bool aert_need_code(const aert_model *model);
double aert_mean_squared_error(const aert_real *a, const aert_real *b, size_t count);
double aert_softmax_probe(const aert_real *train, const int32_t *train_labels, size_t n_train, const aert_real *test,
                          const int32_t *test_labels, size_t n_test, int d, int classes, int epochs, uint64_t seed);
void aert_knn_search(const aert_real *db, size_t n_db, const aert_real *queries, size_t n_q, int d, int k,
                     bool cosine, bool skip_self, uint32_t *neighbours);
uint64_t *aert_binary_codes(const aert_real *codes, size_t n, int d, int words);
void aert_knn_hamming(const uint64_t *db, size_t n_db, const uint64_t *queries, size_t n_q, int words, int k,
                      bool skip_self, uint32_t *neighbours);
double aert_precision_at_k(const uint32_t *neighbours, size_t n_q, int k, const int32_t *db_labels,
                           const int32_t *query_labels);
#endif

#define AERT_PRINTF(f, a) __attribute__((format(printf, f, a)))

// Exit statuses of the generated program.
enum { AERT_EXIT_OK = 0, AERT_EXIT_FAILURE = 1, AERT_EXIT_USAGE = 2 };

// ---------------------------------------------------------------- report.c
// Every message is one line on stderr, "PROGRAM: error: ...". The program
// name is argv[0]'s basename once aert_main has run, "aert" before.
void aert_set_program(const char *argv0);
const char *aert_program(void);
void aert_error(const char *fmt, ...) AERT_PRINTF(1, 2);
void aert_warning(const char *fmt, ...) AERT_PRINTF(1, 2);
void aert_note(const char *fmt, ...) AERT_PRINTF(1, 2);
double aert_now(void);  // monotonic seconds

// ------------------------------------------------------------------- ctx.c
// 64-byte aligned, zeroed memory for count * size bytes; NULL after a
// message naming `what` when the size overflows or memory runs out.
void *aert_alloc(size_t count, size_t size, const char *what);
// rows * cols aert_reals, aligned and zeroed, like aert_alloc.
aert_real *aert_alloc_reals(size_t rows, size_t cols, const char *what);
void aert_free(void *p);
// The context for `capacity` samples a batch: every buffer allocated and
// zeroed, lr from the steps, parameters initialised from `seed`.
aert_ctx *aert_ctx_create(const aert_model *model, int capacity, uint64_t seed);
void aert_ctx_free(const aert_model *model, aert_ctx *ctx);
void aert_init_params(const aert_model *model, aert_ctx *ctx);
// The Glorot limit sqrt(6 / (fan_in + fan_out)) of a parameter (1 when it has no fans).
double aert_glorot_limit(const aert_param *param);
// "[784]" or "[1, 28, 28]" into out.
void aert_format_shape(char *out, size_t size, int rank, const int *shape);

// ------------------------------------------------------------------ data.c
// aert_dataset_load with the model's side of a size mismatch spelled out:
// `expect_what` like "the model's input has 784 ([1, 28, 28])". NULL: "the
// model expects 784 values". expect_size 0 accepts any size.
aert_dataset *aert_dataset_load_described(const char *spec, size_t expect_size, const char *expect_what);
// Reads a whole file, plain or gzip, into memory (with one spare zero byte
// after the data). 0, or -1 after a message.
int aert_read_file(const char *path, unsigned char **data, size_t *size);
// A dataset of n samples of `rank`/`shape`; x (and labels when asked) allocated.
aert_dataset *aert_dataset_new(const char *path, size_t n, int rank, const size_t *shape, bool with_labels);
// The same around `values` (n samples, malloc'd), which the dataset owns from
// the call on, failed or not.
aert_dataset *aert_dataset_adopt(const char *path, size_t n, int rank, const size_t *shape, aert_real *values);
// Makes the file's buffer (*buffer, from aert_read_file) room for `count`
// aert_reals, so that a parser converts the file's values where they lie
// instead of beside a second copy: the count values of `item` bytes at
// *buffer + offset move to the end of that room when an aert_real is wider
// than an item, to its start otherwise. Converting them in order, each value
// read before its aert_real is written, never overwrites one not read yet.
// Sets *values to the room and returns the values' new place; NULL after a
// message (out of memory), *buffer still the caller's.
const unsigned char *aert_values_room(const char *path, unsigned char **buffer, size_t offset, size_t count,
                                      size_t item, aert_real **values);
// Checks a sample size against the model's and prints the message when they differ.
bool aert_check_sample_size(const char *path, size_t got, size_t expect, const char *expect_what);
// Multiplies sizes; false when the product overflows `limit`.
bool aert_mul_size(size_t a, size_t b, size_t limit, size_t *out);

// Per-format parsers, given the file's bytes (data[size] is a zero byte). The
// IDX and .npy parsers convert the values inside the buffer (aert_values_room)
// and hand it to the dataset: on success *data is NULL, the buffer theirs.
aert_dataset *aert_parse_idx(const char *path, unsigned char **data, size_t size, size_t expect_size,
                             const char *expect_what);
aert_dataset *aert_parse_csv(const char *path, const char *text, size_t size, size_t expect_size,
                             const char *expect_what);
aert_dataset *aert_parse_npy(const char *path, unsigned char **data, size_t size, size_t expect_size,
                             const char *expect_what);
// Labels of an IDX labels file for n images; NULL (no message) when the file
// does not exist, and *failed set after a message when it is unusable.
int32_t *aert_load_idx_labels(const char *images_path, size_t n, bool *failed);

// ------------------------------------------------------------------ json.c
typedef enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;
typedef struct json_value {
  json_type type;
  char *text;      // STRING: decoded, NUL-terminated; NUMBER: the literal as written
  size_t length;   // of text
  bool boolean;
  size_t count;    // ARRAY and OBJECT members
  char **keys;     // OBJECT: decoded keys
  struct json_value *items;
} json_value;
// Parses strict JSON (one value, whitespace around it). NULL with a message
// in `error` (like "expected ':' at byte 12") on any malformed input.
json_value *json_parse(const char *text, size_t length, char *error, size_t error_size);
void json_free(json_value *value);
const json_value *json_get(const json_value *object, const char *key);
// A NUMBER that is a non-negative integer that fits; false otherwise.
bool json_as_u64(const json_value *value, uint64_t *out);

// A growing string for writing JSON headers and CSV lines.
typedef struct aert_buf {
  char *data;
  size_t length, capacity;
  bool failed;  // out of memory
} aert_buf;
void aert_buf_printf(aert_buf *buf, const char *fmt, ...) AERT_PRINTF(2, 3);
void aert_buf_json_string(aert_buf *buf, const char *text);
void aert_buf_free(aert_buf *buf);

// ------------------------------------------------------------ checkpoint.c
// aert_checkpoint_load, saying "optimizer state absent" on stderr only when
// `want_optimizer` (train --resume).
int aert_checkpoint_load_ex(const char *path, const aert_model *model, aert_ctx *ctx,
                            aert_progress_state *state, bool want_optimizer);
// "optimizer.<loss>" for step s ("optimizer.step<s>" when two steps share a loss).
void aert_optimizer_key(const aert_model *model, int step, char *out, size_t size);

// ---------------------------------------------------------- the commands
typedef struct aert_options {
  const char *command;
  const char *data, *test, *checkpoint, *resume, *log, *output, *trace, *dump_random;
  bool profile;  // train --profile
  const char *steps;     // train --steps recon,disc: the steps to run (by loss name); NULL: all
  const char *baseline;  // prior-match --baseline CKPT
  const char *layer;     // activations --layer NAME
  int checkpoint_every;  // train --checkpoint-every N batches (0: only at each epoch's end)
  int epochs, batch, threads, count, samples;
  const char *lr_spec;  // train --lr: X for every step, or LOSS=X,... for named steps
  uint64_t seed;
  bool has_data, has_test, has_epochs, has_batch, has_lr, has_seed, has_threads, has_count, has_samples;
  // The applications (apps.c): encode --plot, denoise --noise, retrieve
  // --db/--queries/-k/--binary/--cosine, probe --labels-fraction, pca --dim, plot-xy --csv.
  const char *plot, *noise, *db, *queries, *csv;
  int k, dim;
  double labels_fraction;
  bool binary, cosine, has_k, has_dim, has_labels_fraction;
} aert_options;

int aert_cmd_train(const aert_model *model, const aert_options *options);
int aert_cmd_eval(const aert_model *model, const aert_options *options);
int aert_cmd_summary(const aert_model *model, const aert_options *options);
int aert_cmd_reconstruct(const aert_model *model, const aert_options *options);
int aert_cmd_encode(const aert_model *model, const aert_options *options);
int aert_cmd_gradcheck(const aert_model *model, const aert_options *options);
int aert_cmd_describe(const aert_model *model, const aert_options *options);

// ---------------------------------------------------------------- profile.c
// train --profile: per-kernel times (see aert_ctx.kernel_seconds).
bool aert_profile_start(const aert_model *model, aert_ctx *ctx);
void aert_profile_report(const aert_model *model, aert_ctx *ctx);  // prints and frees
// The matrix products' seconds and FLOPs so far.
void aert_profile_gemm_totals(const aert_model *model, const aert_ctx *ctx, double *seconds, double *flops);
int aert_cmd_time_kernels(const aert_model *model, const aert_options *options);

// ------------------------------------------------------------------ trace.c
// train --trace FILE: one JSON line a batch (epoch, batch, batch_counter,
// each step's loss, the sample indices); train --dump-random DIR: each random
// node's draws as DIR/<node>.<draw>.npy. NULL when neither was asked for, or
// after a message (check options first to tell the two apart).
typedef struct aert_trace aert_trace;
aert_trace *aert_trace_open(const aert_model *model, const aert_options *options);
// After every step of a batch ran, before ctx->batch_counter moves on.
bool aert_trace_batch(aert_trace *trace, const aert_model *model, const aert_ctx *ctx, int epoch, size_t batch,
                      const uint32_t *samples, int n, const double *losses);
bool aert_trace_close(aert_trace *trace);

// commands.c, shared by the commands: the data set a command works on, checked
// against the model's input; the threads setting (and subnormals flushed to
// zero in every thread); the test losses of a data
// set (means weighted by batch size) into losses[model->n_losses].
aert_dataset *aert_load_model_data(const aert_model *model, const char *spec);
void aert_apply_threads(const aert_options *options, aert_ctx *ctx);
bool aert_evaluate(const aert_model *model, aert_ctx *ctx, const aert_dataset *data, double *losses);
// A context for a trained model: capacity from --batch (or the model's), the
// checkpoint loaded, threads set. NULL after a message.
aert_ctx *aert_open_checkpoint(const aert_model *model, const aert_options *options);
// Copies samples order[first .. first+n) (or first.. when order is NULL) into batch.
void aert_gather(const aert_dataset *data, const uint32_t *order, size_t first, int n, aert_real *batch);
// The developer checks' batch (gradcheck, time-kernels): the data set from
// --data (default: the model's training data), a context for `batch` samples
// seeded by --seed, the threads set, and its first n = min(batch, samples)
// samples gathered into x. False after a message; close it either way.
typedef struct aert_first_batch {
  aert_dataset *data;
  aert_ctx *ctx;
  aert_real *x;
  int n;
} aert_first_batch;
bool aert_first_batch_open(const aert_model *model, const aert_options *options, int batch, aert_first_batch *b);
void aert_first_batch_close(const aert_model *model, aert_first_batch *b);

// ------------------------------------------------------------------ apps.c
// The displayed height and width of a sample: channel 0 of [c, h, w], else a
// square when the size is one, else one row.
void aert_display_size(const aert_model *model, int *height, int *width);
// Label names when the data set is Fashion-MNIST's (*count of them), else NULL.
const char *const *aert_label_names(const aert_dataset *data, int *count);
int aert_cmd_denoise(const aert_model *model, const aert_options *options);
int aert_cmd_retrieve(const aert_model *model, const aert_options *options);
int aert_cmd_filters(const aert_model *model, const aert_options *options);
int aert_cmd_histogram(const aert_model *model, const aert_options *options);
int aert_cmd_probe(const aert_model *model, const aert_options *options);
int aert_cmd_pca(const aert_model *model, const aert_options *options);
int aert_cmd_plot_xy(const aert_model *model, const aert_options *options);

// ----------------------------------------------------------- featuremaps.c
// activations: a layer's feature maps for a few samples, and the input
// patches (receptive fields) that activate each of its channels most.
int aert_cmd_feature_maps(const aert_model *model, const aert_options *options);

// ------------------------------------------------------------ prior_match.c
// prior-match: the codes' moments against the prior's and the energy
// distance between codes and prior samples (and a baseline checkpoint's).
int aert_cmd_prior_match(const aert_model *model, const aert_options *options);
// The steps `train --steps LIST` selects into run[model->n_steps]; false after a message.
bool aert_select_steps(const aert_model *model, const char *list, bool *run);
// train --lr: spec is one rate for every step or LOSS=RATE,...; sets lr[step]; false after a message.
bool aert_override_lr(const aert_model *model, const char *spec, double *lr);
// A positive finite number in text, or false after a message naming the option.
bool aert_parse_positive(const char *option, const char *text, double *out);
// The energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'| between n rows of x and n rows of y (dim values each).
double aert_energy_distance(const double *x, const double *y, size_t n, int dim);

// ------------------------------------------------------------------ plot.c
// Charts through cairo; 0, or -1 after a message. A scatter of n points
// (xy[2i], xy[2i+1]) coloured by label (labels may be NULL), with a legend
// naming labels 0..n_names-1 when label_names is given.
int aert_plot_scatter(const char *path, const double *xy, const int32_t *labels, size_t n, const char *xlabel,
                      const char *ylabel, const char *title, const char *const *label_names, int n_names);
// y against x as a line through points; x on a log2 scale when it spans a factor of 16 or more.
int aert_plot_xy(const char *path, const double *x, const double *y, size_t n, const char *xlabel, const char *ylabel,
                 const char *title);
// One histogram per dimension of n samples of `dims` values, small multiples on a shared range.
int aert_plot_histograms(const char *path, const aert_real *values, size_t n, int dims, const char *title);
// The same with each dimension's prior density drawn over its histogram (bars as densities); prior may be NULL.
int aert_plot_histograms_prior(const char *path, const aert_real *values, size_t n, int dims, const char *title,
                               const aert_prior *prior);
// aert_plot_scatter over `n_under` grey points under_xy (prior samples); under_xy may be NULL.
int aert_plot_scatter_over(const char *path, const double *xy, const int32_t *labels, size_t n, const double *under_xy,
                           size_t n_under, const char *xlabel, const char *ylabel, const char *title,
                           const char *const *label_names, int n_names);

// ----------------------------------------------------------------- image.c
// A figure: a white page of width x height pixels drawn through cairo, then
// written as PNG. aert_figure_new and aert_figure_write return NULL / -1
// after a message; aert_figure_write frees the figure.
typedef struct aert_figure aert_figure;
aert_figure *aert_figure_new(int width, int height);
int aert_figure_write(aert_figure *figure, const char *path);
void aert_figure_free(aert_figure *figure);
// Text with its baseline at y; align_x 0 puts its start at x, 0.5 its middle, 1 its end.
// aert_text_width: how wide it is drawn, in pixels.
double aert_text_width(const char *text, double size, bool bold);
void aert_figure_text(aert_figure *figure, double x, double y, const char *text, double size, bool bold, double align_x);
// A grey image (values in [0, 1]; NaN: no pixel, drawn pale blue) fitted into
// the box at (x, y), centred: enlarged by a whole factor (sharp pixels) or
// shrunk to fit, and framed.
void aert_figure_tile(aert_figure *figure, double x, double y, int box_w, int box_h, const aert_real *pixels,
                      int height, int width);
// n values as bars filling the box, on the scale [lo, hi], with the zero line.
void aert_figure_bars(aert_figure *figure, double x, double y, int box_w, int box_h, const double *values, int n,
                      double lo, double hi);

// ------------------------------------------------------------------- pca.c
typedef struct aert_pca {
  int dim, k;
  double *mean;            // [dim]
  double *components;      // [k][dim]: orthonormal rows, by decreasing variance
  double *variances;       // [k]: the variance along each
  double total_variance;   // the covariance's trace
} aert_pca;
// Fits the top k principal components of n samples of d values (the
// covariance, then subspace iteration with Rayleigh-Ritz steps; Jacobi when
// k is near d). 0, or -1 after a message.
int aert_pca_fit(const aert_real *x, size_t n, int d, int k, aert_pca *out);
void aert_pca_free(aert_pca *pca);
// coords[k] = the components' inner products with x - mean.
void aert_pca_project(const aert_pca *pca, const aert_real *x, double *coords);
// The squared error of x's reconstruction from its k coordinates (coords: scratch of k).
double aert_pca_squared_error(const aert_pca *pca, const aert_real *x, double *coords);
// Eigen-decomposition of a symmetric m x m matrix by cyclic Jacobi rotations
// (a is destroyed): values descending, vectors[i * m ..] the unit eigenvector of values[i].
void aert_eigen_symmetric(double *a, int m, double *values, double *vectors);

// ------------------------------------------------------------- receptive.c
// The receptive field of a layer's units, walked back through the model
// description's graph from node `node` (aert_model.layer_nodes): for a unit at
// row r and column c of an [channels, rows, cols] output, the input rows
// row_lo[r]..row_hi[r] and columns col_lo[c]..col_hi[c] (inclusive, nominal:
// they run past the image where a layer padded). `whole` (arrays NULL) when
// the input is flat or a dense or reshape lies on the way: every unit sees the
// whole input. height x width: the largest field (the image's size when whole).
typedef struct aert_receptive_field {
  bool whole;
  int *row_lo, *row_hi, *col_lo, *col_hi;
  int height, width;
} aert_receptive_field;
// false after a message (a malformed description).
bool aert_receptive_field_of(const aert_model *model, int node, aert_receptive_field *rf);
void aert_receptive_field_free(aert_receptive_field *rf);


// ---------------------------------------------------------------- stack.c
// Makes room for model->thread_stack_bytes on every thread's stack (the main
// thread's limit and the default pthread stack size raised where they are
// smaller); false, after a message saying what to change, where a hard limit
// or the user's OMP_STACKSIZE leaves a thread less than that.
bool aert_reserve_stacks(const aert_model *model);

// Temporary, until each folder has its header.
bool aert_run_batches(aert_ctx *ctx, const aert_real *x, size_t in_size, size_t n,
                      void (*fn)(aert_ctx *, const aert_real *, int, aert_real *), size_t out_size, aert_real *out);
aert_real *aert_encode_all(const aert_model *model, aert_ctx *ctx, const aert_dataset *data);
bool aert_need_code(const aert_model *model);
double aert_mean_squared_error(const aert_real *a, const aert_real *b, size_t count);
double aert_softmax_probe(const aert_real *train, const int32_t *train_labels, size_t n_train, const aert_real *test,
                          const int32_t *test_labels, size_t n_test, int d, int classes, int epochs, uint64_t seed);
void aert_knn_search(const aert_real *db, size_t n_db, const aert_real *queries, size_t n_q, int d, int k,
                     bool cosine, bool skip_self, uint32_t *neighbours);
uint64_t *aert_binary_codes(const aert_real *codes, size_t n, int d, int words);
void aert_knn_hamming(const uint64_t *db, size_t n_db, const uint64_t *queries, size_t n_q, int words, int k,
                      bool skip_self, uint32_t *neighbours);
double aert_precision_at_k(const uint32_t *neighbours, size_t n_q, int k, const int32_t *db_labels,
                           const int32_t *query_labels);
#endif
