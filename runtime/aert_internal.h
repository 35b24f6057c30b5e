// aert_internal.h — declarations shared by the runtime's files and not part
// of the interface generated code sees (that is aert.h).
#ifndef AERT_INTERNAL_H
#define AERT_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>

#include "aert.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libaert reads and writes little-endian files and assumes a little-endian host"
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
// Checks a sample size against the model's and prints the message when they differ.
bool aert_check_sample_size(const char *path, size_t got, size_t expect, const char *expect_what);
// Multiplies sizes; false when the product overflows `limit`.
bool aert_mul_size(size_t a, size_t b, size_t limit, size_t *out);

// Per-format parsers, given the file's bytes (data[size] is a zero byte).
aert_dataset *aert_parse_idx(const char *path, const unsigned char *data, size_t size, size_t expect_size,
                             const char *expect_what);
aert_dataset *aert_parse_csv(const char *path, const char *text, size_t size, size_t expect_size,
                             const char *expect_what);
aert_dataset *aert_parse_npy(const char *path, const unsigned char *data, size_t size, size_t expect_size,
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
  const char *data, *test, *checkpoint, *resume, *log, *output;
  int epochs, batch, threads, count, samples;
  double lr;
  uint64_t seed;
  bool has_data, has_test, has_epochs, has_batch, has_lr, has_seed, has_threads, has_count, has_samples;
} aert_options;

int aert_cmd_train(const aert_model *model, const aert_options *options);
int aert_cmd_eval(const aert_model *model, const aert_options *options);
int aert_cmd_summary(const aert_model *model, const aert_options *options);
int aert_cmd_reconstruct(const aert_model *model, const aert_options *options);
int aert_cmd_encode(const aert_model *model, const aert_options *options);
int aert_cmd_gradcheck(const aert_model *model, const aert_options *options);

// commands.c, shared by the commands: the data set a command works on, checked
// against the model's input; the threads setting; the test losses of a data
// set (means weighted by batch size) into losses[model->n_losses].
aert_dataset *aert_load_model_data(const aert_model *model, const char *spec);
void aert_apply_threads(const aert_options *options, aert_ctx *ctx);
bool aert_evaluate(const aert_model *model, aert_ctx *ctx, const aert_dataset *data, double *losses);
// A context for a trained model: capacity from --batch (or the model's), the
// checkpoint loaded, threads set. NULL after a message.
aert_ctx *aert_open_checkpoint(const aert_model *model, const aert_options *options);
// Copies samples order[first .. first+n) (or first.. when order is NULL) into batch.
void aert_gather(const aert_dataset *data, const uint32_t *order, size_t first, int n, aert_real *batch);

#endif
