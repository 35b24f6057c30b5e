// core.h — the runtime's bottom layer (runtime/core/): messages, memory and
// the model's context, the JSON reader and writer, kernel timing and the
// threads' stacks. Every layer above includes it; it includes only aert.h,
// which declares the rest of core (rng.c, prior.c, aert_seconds, the context).
#ifndef AERT_CORE_H
#define AERT_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

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
// Until aert_capture_end, this thread's first error goes into buffer[size]
// (without the "PROGRAM: error: " prefix) instead of stderr, and its notes and
// warnings are dropped: the library aec --lib writes returns errors as values
// (ckpt/embed.c). aert_capture_end says whether an error came.
void aert_capture_begin(char *buffer, size_t size);
bool aert_capture_end(void);
void aert_error(const char *fmt, ...) AERT_PRINTF(1, 2);
void aert_warning(const char *fmt, ...) AERT_PRINTF(1, 2);
void aert_note(const char *fmt, ...) AERT_PRINTF(1, 2);
double aert_now(void);  // monotonic seconds
// A live "what: done/total (P%)" line on stderr when it is a terminal, drawn
// once the work (from done == 0) has taken half a second, at most ten times a
// second; done == total clears it. Commands whose work is long call it.
void aert_progress(const char *what, size_t done, size_t total);

// ----------------------------------------------------------------- input.c
// Opens a file to read: a regular file (symbolic links followed), never
// blocking on a FIFO. A directory, device, FIFO or socket, a missing file, a
// dangling symbolic link or a loop of them: -1 (NULL) after one message
// naming the file; `what` says what it should have been ("data file",
// "checkpoint"). Its size in *size when size is not NULL.
int aert_open_input(const char *path, const char *what, uint64_t *size);
FILE *aert_fopen_input(const char *path, const char *what, uint64_t *size);

// ------------------------------------------------------------------- ctx.c
// Multiplies sizes; false when the product overflows `limit`.
bool aert_mul_size(size_t a, size_t b, size_t limit, size_t *out);
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
// A new arena for batches of `capacity` samples (the activations are lost);
// false after a message, the context as it was.
bool aert_ctx_set_capacity(const aert_model *model, aert_ctx *ctx, int capacity);
void aert_init_params(const aert_model *model, aert_ctx *ctx);
// PyTorch's defaults for nn.Linear and nn.Conv2d instead: every kernel and
// bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in the layer's (train --init pytorch).
void aert_init_params_pytorch(const aert_model *model, aert_ctx *ctx);
// The Glorot limit sqrt(6 / (fan_in + fan_out)) of a parameter (1 when it has no fans).
double aert_glorot_limit(const aert_param *param);
// "[784]" or "[1, 28, 28]" into out.
void aert_format_shape(char *out, size_t size, int rank, const int *shape);

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
// Key comparisons made so far by json_parse's duplicate-key check (which
// sorts each object's keys): the tests count them to see that it grows as
// n log n with an object's keys, not as n^2.
extern size_t json_key_comparisons;
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

// --------------------------------------------------------------- profile.c
// train --profile and time-kernels: per-kernel times (see aert_ctx.kernel_seconds).
bool aert_profile_start(const aert_model *model, aert_ctx *ctx);
void aert_profile_report(const aert_model *model, aert_ctx *ctx);  // prints and frees
// The matrix products' seconds and FLOPs so far.
void aert_profile_gemm_totals(const aert_model *model, const aert_ctx *ctx, double *seconds, double *flops);

// ---------------------------------------------------------------- output.c
// Every file written under a name the user gave: aert_output_begin creates a
// temporary ".NAME.aec-tmp-PID-XXXXXX" (O_EXCL) beside NAME, after removing
// those of NAME that dead processes left; the caller writes to its stream;
// aert_output_commit flushes, fsyncs and renames it over NAME (false after a
// message), aert_output_abandon removes it. NAME may be absent, a regular
// file, or a symbolic link to a regular file (that file is replaced, the
// link kept); a directory, device, FIFO, socket or dangling link is refused.
// `what` names the file in messages ("the checkpoint"). NULL after a message.
typedef struct aert_output aert_output;
aert_output *aert_output_begin(const char *path, const char *what);
FILE *aert_output_stream(aert_output *out);
bool aert_output_commit(aert_output *out);
void aert_output_abandon(aert_output *out);  // NULL is fine
// Whether `path` can be written: a temporary made and removed (before any work).
bool aert_output_check(const char *path, const char *what);
// A whole file from memory, through the above.
bool aert_output_write_all(const char *path, const char *what, const void *data, size_t size);
// SIGINT and SIGTERM: with `defer`, the first only sets aert_stop_signal()
// (train stops at the next batch); otherwise, and at a second one, the
// temporaries in flight are removed and the program exits 128 + the signal.
void aert_catch_signals(bool defer);
int aert_stop_signal(void);  // 0 or the signal caught
// What the exit at a signal says last (train: which checkpoint is on disk).
void aert_signal_note(const char *text);
const char *aert_signal_name(int sig);

// ----------------------------------------------------------------- stack.c
// Makes room for model->thread_stack_bytes on every thread's stack (the main
// thread's limit and the default pthread stack size raised where they are
// smaller); false, after a message saying what to change, where a hard limit
// or the user's OMP_STACKSIZE leaves a thread less than that.
bool aert_reserve_stacks(const aert_model *model);

// ------------------------------------------------------------------ comm.c
// The processes training together: one alone (rank 0 of 1) unless
// aert_main_with set another communicator. Only process 0 writes files and
// figures (aert_is_root).
aert_comm *aert_world(void);
void aert_set_world(aert_comm *comm);  // NULL: one process alone again
bool aert_is_root(void);
// Whether to stop training: a SIGINT or SIGTERM seen by any process (every
// process gets the same answer, so they all stop at the same batch).
bool aert_agree_stop(void);

#endif
