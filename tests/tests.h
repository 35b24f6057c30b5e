// tests.h — shared helpers for the Check suites. Each tests/test_NAME.c
// defines `Suite *NAME_suite(void)`; the Makefile lists the files and
// check_main.c runs every suite it finds there.
#ifndef AEC_TESTS_H
#define AEC_TESTS_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aert.h"

#ifndef AEC_SOURCE_DIR
#error "AEC_SOURCE_DIR must name the repository root"
#endif
#ifndef AEC_BUILD_DIR
#error "AEC_BUILD_DIR must name the build directory"
#endif

// Runs a shell command, capturing standard output and standard error
// (each truncated to a few hundred KiB). Returns the exit status, or -1.
typedef struct CommandResult {
  int status;
  char *out;
  char *err;
} CommandResult;
CommandResult run_command(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void command_result_free(CommandResult *result);
// Runs a shell command in a directory; the second fails the test, with the
// command's standard error, unless it exits 0.
CommandResult run_in(const char *dir, const char *command);
void must_succeed_in(const char *dir, const char *command);

// A fresh directory under $TMPDIR for one test; removed by the caller with
// remove_tree() when the test passes.
char *make_temp_dir(const char *tag);
void remove_tree(const char *path);
// Writes a file (creating it) or fails the test.
void write_file(const char *path, const void *data, size_t size);
// Writes an IDX file of u8 data: magic, dims (at most 4), then `bytes`; gzip
// when gz.
void write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndim, const unsigned char *bytes, size_t n,
               bool gz);
// A fresh directory (see make_temp_dir) holding m.ae (`model_text`), train.csv
// (n samples of `size` values in [0, 1), the same on every call) and ./m, the
// program aec builds from them; fails the test when aec does.
char *make_program_dir(const char *tag, const char *model_text, int n, int size);
// Reads a `name value` figure from a program's standard output; NAN if absent.
double figure(const char *stdout_text, const char *name);
// Writes a .npy file: descr like "<f4", shape like "(6, 4)", then the data.
void write_npy(const char *path, const char *descr, const char *shape, const void *data, size_t bytes);
// The width and height of a PNG file, read back through cairo; false when it is not one.
bool read_png_size(const char *path, int *width, int *height);

// "dir/name", malloc'd.
char *path_in(const char *dir, const char *name);
// A whole file, malloc'd, with a zero byte after it; its length in *size when
// size is not NULL. Fails the test when the file cannot be read.
char *read_whole_file(const char *path, size_t *size);
bool path_exists(const char *path);
// Every step's loss of a --trace file, in order (the numbers after "losses": [
// on each line), at most max of them; fails the test when there is no file.
int trace_losses(const char *path, double *losses, int max);
// Sends stderr to a file until stderr_end(), which returns what was written.
typedef struct stderr_capture {
  int saved;
  char *path;
} stderr_capture;
stderr_capture stderr_begin(void);
char *stderr_end(stderr_capture *c);

// lin, a model written by hand, to test the runtime without the compiler:
// x[4] -> z = x W1 + b1 [2] -> y = z W2 + b2 [4], loss mean((y - x)^2), one
// Adam step; 22 parameters (lin_params), reconstruct and encode, no corruption.
enum { LIN_IN = 4, LIN_CODE = 2, LIN_N_ELEMS = 22 };
extern const aert_param lin_params[4];
aert_model lin_model(void);
// loss_and_grad returns NaN from this batch on (-1: never).
extern int lin_nan_after_batches;

#endif
