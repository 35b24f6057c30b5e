// test_runtime.c — libaert on its own: the RNG, data loaders, checkpoints,
// and aert_main driven with a small hand-written model (a linear
// autoencoder 4 -> 2 -> 4 with MSE and Adam), so the runtime is tested
// without the compiler.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aert.h"
#include "tests.h"

// ------------------------------------------------------------ small helpers
static char *path_in(const char *dir, const char *name) {
  char *path = NULL;
  ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
  return path;
}

static char *read_whole(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot read %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *data = malloc((size_t)n + 1);
  ck_assert_uint_eq(fread(data, 1, (size_t)n, f), (size_t)n);
  data[n] = 0;
  fclose(f);
  if (size) *size = (size_t)n;
  return data;
}

static bool file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

// Sends stderr to a file until stderr_end(), which returns what was written.
typedef struct stderr_capture {
  int saved;
  char *path;
} stderr_capture;

static stderr_capture stderr_begin(void) {
  stderr_capture c;
  char *dir = make_temp_dir("stderr");
  c.path = path_in(dir, "err");
  free(dir);
  fflush(stderr);
  c.saved = dup(2);
  int fd = open(c.path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge(fd, 0);
  dup2(fd, 2);
  close(fd);
  return c;
}

static char *stderr_end(stderr_capture *c) {
  fflush(stderr);
  dup2(c->saved, 2);
  close(c->saved);
  char *text = read_whole(c->path, NULL);
  unlink(c->path);
  char *dir = strdup(c->path);
  *strrchr(dir, '/') = 0;
  rmdir(dir);
  free(dir);
  free(c->path);
  return text;
}

// Loads a data set, returning it and (in *message) what it printed.
static aert_dataset *load_capturing(const char *spec, size_t expect, char **message) {
  stderr_capture c = stderr_begin();
  aert_dataset *d = aert_dataset_load(spec, expect);
  *message = stderr_end(&c);
  return d;
}

static void assert_load_fails(const char *spec, size_t expect, const char *word1, const char *word2) {
  char *message = NULL;
  aert_dataset *d = load_capturing(spec, expect, &message);
  ck_assert_msg(d == NULL, "loading %s should fail", spec);
  ck_assert_msg(strstr(message, "error:") && strstr(message, word1) && (!word2 || strstr(message, word2)),
                "message for %s lacks '%s'/'%s': %s", spec, word1, word2 ? word2 : "", message);
  ck_assert_msg(strchr(message, '\n') == message + strlen(message) - 1, "more than one line: %s", message);
  free(message);
}

// Three 2x2 images with pixel values 10*i + j, and labels 7, 8, 9.
static void write_small_idx(const char *dir, const char *images, const char *labels, bool gz) {
  unsigned char pixels[12], label_bytes[3] = {7, 8, 9};
  for (int i = 0; i < 12; i++) pixels[i] = (unsigned char)(10 * (i / 4) + i % 4);
  uint32_t dims[3] = {3, 2, 2}, ldims[1] = {3};
  char *p = path_in(dir, images);
  write_idx(p, 0x803, dims, 3, pixels, 12, gz);
  free(p);
  if (labels) {
    p = path_in(dir, labels);
    write_idx(p, 0x801, ldims, 1, label_bytes, 3, gz);
    free(p);
  }
}

static void check_small_idx(aert_dataset *d) {
  ck_assert_ptr_nonnull(d);
  ck_assert_uint_eq(d->n, 3);
  ck_assert_uint_eq(d->sample_size, 4);
  ck_assert_int_eq(d->rank, 2);
  ck_assert_int_eq(d->shape[0], 2);
  for (int i = 0; i < 12; i++) ck_assert_float_eq_tol(d->x[i], (10 * (i / 4) + i % 4) / 255.0, 1e-7);
  ck_assert_ptr_nonnull(d->labels);
  ck_assert_int_eq(d->labels[0], 7);
  ck_assert_int_eq(d->labels[2], 9);
}

// ------------------------------------------------------------------ the RNG
START_TEST(test_rng_deterministic_and_moments) {
  ck_assert_uint_eq(aert_hash64(1, 2), aert_hash64(1, 2));
  ck_assert_uint_ne(aert_hash64(1, 2), aert_hash64(2, 1));
  ck_assert_uint_ne(aert_hash64(1, 2), aert_hash64(1, 3));
  ck_assert_uint_ne(aert_stream_key(1, AERT_STREAM_INIT, 0), aert_stream_key(1, AERT_STREAM_SHUFFLE, 0));
  ck_assert_uint_ne(aert_stream_key(1, AERT_STREAM_INIT, 0), aert_stream_key(2, AERT_STREAM_INIT, 0));
  const int n = 200000;
  double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0, nsum4 = 0;
  int bits[64] = {0};
  uint64_t key = aert_stream_key(42, AERT_STREAM_CORRUPT, 7);
  for (int i = 0; i < n; i++) {
    double u = aert_uniform01(key, (uint64_t)i);
    ck_assert(u >= 0 && u < 1);
    sum += u, sum2 += u * u;
    double z = aert_normal(key, (uint64_t)i);
    ck_assert(isfinite(z));
    nsum += z, nsum2 += z * z, nsum4 += z * z * z * z;
    uint64_t h = aert_hash64(3, (uint64_t)i);
    for (int b = 0; b < 64; b++) bits[b] += (int)(h >> b & 1);
  }
  double mean = sum / n, var = sum2 / n - mean * mean;
  ck_assert_double_eq_tol(mean, 0.5, 0.005);
  ck_assert_double_eq_tol(var, 1.0 / 12, 0.002);
  ck_assert_double_eq_tol(nsum / n, 0.0, 0.01);
  ck_assert_double_eq_tol(nsum2 / n, 1.0, 0.02);
  ck_assert_double_eq_tol(nsum4 / n, 3.0, 0.1);  // the normal's kurtosis
  for (int b = 0; b < 64; b++) ck_assert_int_lt(abs(bits[b] - n / 2), n / 100);
  ck_assert_double_eq(aert_normal(5, 9), aert_normal(5, 9));
}
END_TEST

START_TEST(test_shuffle_is_a_permutation) {
  enum { N = 1000 };
  uint32_t a[N], b[N], c[N];
  aert_shuffle(a, N, 1, 0);
  aert_shuffle(b, N, 1, 0);
  aert_shuffle(c, N, 1, 1);
  ck_assert_mem_eq(a, b, sizeof a);
  ck_assert_int_ne(memcmp(a, c, sizeof a), 0);
  char seen[N] = {0};
  int fixed = 0;
  for (int i = 0; i < N; i++) {
    ck_assert_uint_lt(a[i], N);
    ck_assert_int_eq(seen[a[i]], 0);
    seen[a[i]] = 1;
    fixed += a[i] == (uint32_t)i;
  }
  ck_assert_int_lt(fixed, 10);
  uint32_t one[1];
  aert_shuffle(one, 1, 1, 0);
  ck_assert_uint_eq(one[0], 0);
  aert_shuffle(NULL, 0, 1, 0);
}
END_TEST

// ----------------------------------------------------------------- IDX data
START_TEST(test_idx_plain_and_gzip_with_labels) {
  char *dir = make_temp_dir("idx");
  write_small_idx(dir, "a-images-idx3-ubyte", "a-labels-idx1-ubyte", false);
  write_small_idx(dir, "b-images-idx3-ubyte.gz", "b-labels-idx1-ubyte.gz", true);
  write_small_idx(dir, "c-images-idx3-ubyte", NULL, false);
  char *a = path_in(dir, "a-images-idx3-ubyte"), *b = path_in(dir, "b-images-idx3-ubyte.gz");
  char *c = path_in(dir, "c-images-idx3-ubyte");
  aert_dataset *d = aert_dataset_load(a, 4);
  check_small_idx(d);
  ck_assert_str_eq(d->path, a);
  aert_dataset_free(d);
  d = aert_dataset_load(b, 4);
  check_small_idx(d);
  aert_dataset_free(d);
  d = aert_dataset_load(c, 4);  // labels are optional
  ck_assert_ptr_nonnull(d);
  ck_assert_ptr_null(d->labels);
  aert_dataset_free(d);
  free(a), free(b), free(c);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_idx_errors) {
  char *dir = make_temp_dir("idxerr");
  write_small_idx(dir, "ok-images-idx3-ubyte.gz", NULL, true);
  char *ok = path_in(dir, "ok-images-idx3-ubyte.gz");
  size_t size;
  char *gz = read_whole(ok, &size);
  char *cut = path_in(dir, "cut-images-idx3-ubyte.gz");
  write_file(cut, gz, size - 12);  // the gzip trailer and some data gone
  assert_load_fails(cut, 4, cut, "truncated");

  unsigned char pixels[12] = {0};
  uint32_t dims[3] = {3, 2, 2};
  char *magic = path_in(dir, "magic-images-idx3-ubyte");
  write_idx(magic, 0x12345678, dims, 3, pixels, 12, false);
  assert_load_fails(magic, 4, "magic", "0x12345678");

  char *shortfile = path_in(dir, "short-images-idx3-ubyte");
  write_idx(shortfile, 0x803, dims, 3, pixels, 7, false);
  assert_load_fails(shortfile, 4, "truncated", "12 bytes");

  uint32_t huge[3] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
  char *hostile = path_in(dir, "huge-images-idx3-ubyte");
  write_idx(hostile, 0x803, huge, 3, pixels, 12, false);
  assert_load_fails(hostile, 0, hostile, NULL);
  uint32_t many[3] = {0xffffffffu, 28, 28};
  write_idx(hostile, 0x803, many, 3, pixels, 12, false);
  assert_load_fails(hostile, 784, "truncated", "4294967295 samples");

  assert_load_fails(ok, 784, "each sample has 4 values", "784");

  char *empty = path_in(dir, "empty-images-idx3-ubyte");
  write_file(empty, "", 0);
  assert_load_fails(empty, 4, empty, "empty");
  char *missing = path_in(dir, "missing-images-idx3-ubyte");
  assert_load_fails(missing, 4, missing, "no such file");
  assert_load_fails(dir, 4, "directory", NULL);

  write_small_idx(dir, "bad-images-idx3-ubyte", NULL, false);
  char *labels = path_in(dir, "bad-labels-idx1-ubyte"), *images = path_in(dir, "bad-images-idx3-ubyte");
  unsigned char two[2] = {1, 2};
  uint32_t ldims[1] = {2};
  write_idx(labels, 0x801, ldims, 1, two, 2, false);
  assert_load_fails(images, 4, labels, "2 labels for 3 images");

  setenv("AERT_FASHION_MNIST_DIR", dir, 1);
  assert_load_fails("fashion-mnist:train", 784, "dataset-fashion-mnist", NULL);
  assert_load_fails("fashion-mnist:valid", 784, "unknown data set", NULL);
  unsetenv("AERT_FASHION_MNIST_DIR");
  free(gz), free(ok), free(cut), free(magic), free(shortfile), free(hostile), free(empty), free(missing);
  free(labels), free(images);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_fashion_mnist_when_installed) {
  if (!file_exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")) return;
  aert_dataset *d = aert_dataset_load("fashion-mnist:test", 784);
  ck_assert_ptr_nonnull(d);
  ck_assert_uint_eq(d->n, 10000);
  ck_assert_ptr_nonnull(d->labels);
  float lo = 1, hi = 0;
  for (size_t i = 0; i < d->n * 784; i++) lo = fminf(lo, d->x[i]), hi = fmaxf(hi, d->x[i]);
  ck_assert_float_eq(lo, 0);
  ck_assert_float_eq(hi, 1);
  for (size_t i = 0; i < d->n; i++) ck_assert(d->labels[i] >= 0 && d->labels[i] <= 9);
  aert_dataset_free(d);
}
END_TEST

// ----------------------------------------------------------------- CSV data
START_TEST(test_csv) {
  char *dir = make_temp_dir("csv");
  char *plain = path_in(dir, "plain.csv"), *labelled = path_in(dir, "labelled.csv");
  char *nan = path_in(dir, "nan.csv"), *ragged = path_in(dir, "ragged.csv"), *word = path_in(dir, "word.csv");
  char *header_only = path_in(dir, "header.csv");
  const char *text = "0.5,1,2,3\n4,5,6,7e-1\n\n";
  write_file(plain, text, strlen(text));
  text = "label,a,b,c,d\r\n3,0.5,1,2,3\r\n1,4,5,6,7\r\n";
  write_file(labelled, text, strlen(text));
  text = "1,2,3,4\n1,nan,3,4\n";
  write_file(nan, text, strlen(text));
  text = "1,2,3,4\n1,2,3\n";
  write_file(ragged, text, strlen(text));
  text = "1,2,3,4\n1,2,x,4\n";
  write_file(word, text, strlen(text));
  text = "a,b,c,d\n";
  write_file(header_only, text, strlen(text));

  aert_dataset *d = aert_dataset_load(plain, 4);
  ck_assert_ptr_nonnull(d);
  ck_assert_uint_eq(d->n, 2);
  ck_assert_ptr_null(d->labels);
  ck_assert_float_eq(d->x[0], 0.5f);
  ck_assert_float_eq_tol(d->x[7], 0.7f, 1e-7);
  aert_dataset_free(d);
  d = aert_dataset_load(labelled, 4);
  ck_assert_ptr_nonnull(d);
  ck_assert_uint_eq(d->n, 2);
  ck_assert_ptr_nonnull(d->labels);
  ck_assert_int_eq(d->labels[0], 3);
  ck_assert_int_eq(d->labels[1], 1);
  ck_assert_float_eq(d->x[4], 4.0f);
  aert_dataset_free(d);

  char where[512];
  snprintf(where, sizeof where, "%s:2", nan);
  assert_load_fails(nan, 4, where, "not a finite number");
  snprintf(where, sizeof where, "%s:2", ragged);
  assert_load_fails(ragged, 4, where, "3 values");
  snprintf(where, sizeof where, "%s:2", word);
  assert_load_fails(word, 4, where, "not a number");
  assert_load_fails(plain, 784, "each sample has 4 values", "784");
  assert_load_fails(header_only, 4, "no samples", NULL);
  free(plain), free(labelled), free(nan), free(ragged), free(word), free(header_only);
  remove_tree(dir);
  free(dir);
}
END_TEST

// ----------------------------------------------------------------- npy data
static void write_npy(const char *path, const char *descr, const char *shape, const void *data, size_t bytes) {
  char header[256];
  int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
  int total = 10 + n + 1;
  int pad = (64 - total % 64) % 64;
  unsigned char *all = malloc((size_t)(total + pad) + bytes);
  memcpy(all, "\x93NUMPY\x01\x00", 8);
  uint16_t hl = (uint16_t)(n + pad + 1);
  all[8] = (unsigned char)(hl & 0xff), all[9] = (unsigned char)(hl >> 8);
  memcpy(all + 10, header, (size_t)n);
  memset(all + 10 + n, ' ', (size_t)pad);
  all[10 + n + pad] = '\n';
  memcpy(all + total + pad, data, bytes);
  write_file(path, all, (size_t)(total + pad) + bytes);
  free(all);
}

START_TEST(test_npy) {
  char *dir = make_temp_dir("npy");
  float f4[8] = {0, 0.25f, 0.5f, 1, 2, 3, 4, 5};
  double f8[8] = {0, 0.25, 0.5, 1, 2, 3, 4, 5};
  unsigned char u1[8] = {0, 51, 102, 255, 1, 2, 3, 4};
  char *a = path_in(dir, "a.npy"), *b = path_in(dir, "b.npy"), *c = path_in(dir, "c.npy");
  char *bad = path_in(dir, "bad.npy"), *cut = path_in(dir, "cut.npy"), *nan = path_in(dir, "nan.npy");
  write_npy(a, "<f4", "(2, 4)", f4, sizeof f4);
  write_npy(b, "<f8", "(2, 2, 2)", f8, sizeof f8);
  write_npy(c, "|u1", "(2, 4)", u1, sizeof u1);
  write_npy(bad, ">f4", "(2, 4)", f4, sizeof f4);
  write_npy(cut, "<f4", "(3, 4)", f4, sizeof f4);
  f4[5] = NAN;
  write_npy(nan, "<f4", "(2, 4)", f4, sizeof f4);
  aert_dataset *d = aert_dataset_load(a, 4);
  ck_assert_ptr_nonnull(d);
  ck_assert_uint_eq(d->n, 2);
  ck_assert_float_eq(d->x[1], 0.25f);
  ck_assert_float_eq(d->x[7], 5.0f);
  aert_dataset_free(d);
  d = aert_dataset_load(b, 4);
  ck_assert_ptr_nonnull(d);
  ck_assert_int_eq(d->rank, 2);
  ck_assert_float_eq(d->x[6], 4.0f);
  aert_dataset_free(d);
  d = aert_dataset_load(c, 4);
  ck_assert_ptr_nonnull(d);
  ck_assert_float_eq_tol(d->x[1], 0.2f, 1e-7);
  ck_assert_float_eq(d->x[3], 1.0f);
  aert_dataset_free(d);
  assert_load_fails(bad, 4, "'>f4'", "not supported");
  assert_load_fails(cut, 4, "truncated", NULL);
  assert_load_fails(nan, 4, "not a finite number", "sample 1");
  assert_load_fails(a, 784, "each sample has 4 values", "784");
  free(a), free(b), free(c), free(bad), free(cut), free(nan);
  remove_tree(dir);
  free(dir);
}
END_TEST

// The IDX and .npy loaders convert the values inside the file's buffer
// (aert_values_room): widened to the end of the room first, narrowed or kept
// from its start. Every value of every kind must come out as a separate copy
// would give it, the first ones (next to the header) included.
START_TEST(test_values_converted_in_place) {
  enum { SAMPLES = 3001, VALUES = 4, COUNT = SAMPLES * VALUES };
  char *dir = make_temp_dir("inplace");
  static float f4[COUNT];
  static double f8[COUNT];
  static unsigned char u1[COUNT];
  for (int i = 0; i < COUNT; i++) {
    f4[i] = (float)i * 0.25f - 7;
    f8[i] = i / 3.0 - 11;
    u1[i] = (unsigned char)(i * 37 % 256);
  }
  char shape[32];
  snprintf(shape, sizeof shape, "(%d, %d)", SAMPLES, VALUES);
  char *a = path_in(dir, "a.npy"), *b = path_in(dir, "b.npy"), *c = path_in(dir, "c.npy");
  char *idx = path_in(dir, "d-images-idx3-ubyte"), *idx_gz = path_in(dir, "e-images-idx3-ubyte.gz");
  write_npy(a, "<f4", shape, f4, sizeof f4);
  write_npy(b, "<f8", shape, f8, sizeof f8);
  write_npy(c, "|u1", shape, u1, sizeof u1);
  const uint32_t dims[3] = {SAMPLES, 2, 2};
  write_idx(idx, 0x803, dims, 3, u1, COUNT, false);
  write_idx(idx_gz, 0x803, dims, 3, u1, COUNT, true);
  aert_dataset *d[5] = {aert_dataset_load(a, VALUES), aert_dataset_load(b, VALUES), aert_dataset_load(c, VALUES),
                        aert_dataset_load(idx, VALUES), aert_dataset_load(idx_gz, VALUES)};
  for (int k = 0; k < 5; k++) {
    ck_assert_ptr_nonnull(d[k]);
    ck_assert_uint_eq(d[k]->n, SAMPLES);
  }
  for (int i = 0; i < COUNT; i++) {
    ck_assert_msg(d[0]->x[i] == (aert_real)f4[i], "float32 value %d: %g, not %g", i, (double)d[0]->x[i], (double)f4[i]);
    ck_assert_msg(d[1]->x[i] == (aert_real)f8[i], "float64 value %d: %g, not %g", i, (double)d[1]->x[i], f8[i]);
    ck_assert_msg(d[2]->x[i] == (aert_real)(u1[i] / 255.0), "uint8 value %d: %g", i, (double)d[2]->x[i]);
    ck_assert_msg(d[3]->x[i] == (aert_real)u1[i] / (aert_real)255, "IDX value %d: %g", i, (double)d[3]->x[i]);
    ck_assert_msg(d[4]->x[i] == d[3]->x[i], "gzip IDX value %d: %g", i, (double)d[4]->x[i]);
  }
  for (int k = 0; k < 5; k++) aert_dataset_free(d[k]);
  free(a), free(b), free(c), free(idx), free(idx_gz);
  remove_tree(dir);
  free(dir);
}
END_TEST

// ------------------------------------------------- a hand-written model: lin
// x[4] -> z = x W1 + b1 [2] -> y = z W2 + b2 [4], loss mean((y - x)^2).
enum { IN = 4, CODE = 2, W1 = 0, B1 = 8, W2 = 10, B2 = 18, N_ELEMS = 22, PER_SAMPLE = 12 };
static int nan_after_batches = -1;  // loss_and_grad returns NaN from this batch on

static void lin_forward(const aert_ctx *ctx, const aert_real *x, int n, aert_real *z, aert_real *y) {
  const aert_real *p = ctx->params;
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < CODE; j++) {
      aert_real s = p[B1 + j];
      for (int m = 0; m < IN; m++) s += x[i * IN + m] * p[W1 + m * CODE + j];
      z[i * CODE + j] = s;
    }
    for (int k = 0; k < IN; k++) {
      aert_real s = p[B2 + k];
      for (int j = 0; j < CODE; j++) s += z[i * CODE + j] * p[W2 + j * IN + k];
      y[i * IN + k] = s;
    }
  }
}

static double lin_loss(const aert_real *x, const aert_real *y, int n) {
  double loss = 0;
  for (int e = 0; e < n * IN; e++) loss += (double)(y[e] - x[e]) * (double)(y[e] - x[e]);
  return loss / (n * IN);
}

static double lin_loss_and_grad(aert_ctx *ctx, int step, const aert_real *x, int n) {
  (void)step;
  aert_real *z = ctx->arena, *y = z + n * CODE, *dy = y + n * IN, *dz = dy + n * IN;
  aert_real *g = ctx->grads, *p = ctx->params;
  lin_forward(ctx, x, n, z, y);
  memset(g, 0, N_ELEMS * sizeof *g);
  for (int e = 0; e < n * IN; e++) dy[e] = 2 * (y[e] - x[e]) / (aert_real)(n * IN);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < CODE; j++) {
      aert_real s = 0;
      for (int k = 0; k < IN; k++) {
        g[W2 + j * IN + k] += z[i * CODE + j] * dy[i * IN + k];
        s += dy[i * IN + k] * p[W2 + j * IN + k];
      }
      dz[i * CODE + j] = s;
      g[B1 + j] += s;
      for (int m = 0; m < IN; m++) g[W1 + m * CODE + j] += x[i * IN + m] * s;
    }
    for (int k = 0; k < IN; k++) g[B2 + k] += dy[i * IN + k];
  }
  if (nan_after_batches >= 0 && ctx->batch_counter >= (uint64_t)nan_after_batches) return NAN;
  return lin_loss(x, y, n);
}

static void lin_adam(aert_ctx *ctx, int step) {
  const double b1 = 0.9, b2 = 0.999, eps = 1e-7;
  int64_t t = ++ctx->opt_t[step];
  aert_real *m = ctx->opt_state[step], *v = m + N_ELEMS;
  double lr = ctx->lr[step] * sqrt(1 - pow(b2, (double)t)) / (1 - pow(b1, (double)t));
  for (int e = 0; e < N_ELEMS; e++) {
    aert_real g = ctx->grads[e];
    m[e] = (aert_real)(b1 * m[e] + (1 - b1) * g);
    v[e] = (aert_real)(b2 * v[e] + (1 - b2) * g * g);
    ctx->params[e] -= (aert_real)(lr * m[e] / (sqrt(v[e]) + eps));
  }
}

static void lin_eval_losses(aert_ctx *ctx, const aert_real *x, int n, double *losses) {
  aert_real *z = ctx->arena, *y = z + n * CODE;
  lin_forward(ctx, x, n, z, y);
  losses[0] = lin_loss(x, y, n);
}

static void lin_reconstruct(aert_ctx *ctx, const aert_real *x, int n, aert_real *out) {
  lin_forward(ctx, x, n, ctx->arena, out);
}

static void lin_encode(aert_ctx *ctx, const aert_real *x, int n, aert_real *out) {
  lin_forward(ctx, x, n, out, ctx->arena);
}

static const aert_param lin_params[] = {
    {"encoder.dense.kernel", 2, {IN, CODE}, W1, 8, AERT_INIT_GLOROT_UNIFORM, IN, CODE},
    {"encoder.dense.bias", 1, {CODE}, B1, 2, AERT_INIT_ZEROS, IN, CODE},
    {"decoder.dense.kernel", 2, {CODE, IN}, W2, 8, AERT_INIT_GLOROT_UNIFORM, CODE, IN},
    {"decoder.dense.bias", 1, {IN}, B2, 4, AERT_INIT_ZEROS, CODE, IN},
};
static const aert_layer lin_layers[] = {
    {"encoder.dense", "dense(2)", 1, {CODE}, 10, 2.0 * IN * CODE, 3},
    {"decoder.dense", "dense(4)", 1, {IN}, 12, 2.0 * CODE * IN, 4},
};
static const char *const lin_loss_names[] = {"recon"};
static const aert_step lin_steps[] = {
    {"recon", 0, "encoder, decoder", AERT_ADAM, 0.01, 0, 0.9, 0.999, 1e-7, 2 * N_ELEMS},
};

static aert_model lin_model(void) {
  aert_model m = {
      .abi_version = AERT_ABI_VERSION,
      .name = "lin",
      .source_file = "lin.ae",
      .source_hash = "0123456789abcdef",
      .aec_version = "test",
      .input_rank = 1,
      .input_shape = {IN},
      .input_size = IN,
      .n_param_elems = N_ELEMS,
      .n_params = 4,
      .params = lin_params,
      .n_layers = 2,
      .layers = lin_layers,
      .n_losses = 1,
      .loss_names = lin_loss_names,
      .n_steps = 1,
      .steps = lin_steps,
      .default_data = "train.csv",
      .default_test = "test.csv",
      .default_batch = 8,
      .default_epochs = 3,
      .default_seed = 1,
      .arena_per_sample = PER_SAMPLE,
      .arena_fixed = 0,
      .code_size = CODE,
      .recon_size = IN,
      .loss_and_grad = lin_loss_and_grad,
      .apply_update = lin_adam,
      .eval_losses = lin_eval_losses,
      .reconstruct = lin_reconstruct,
      .encode = lin_encode,
  };
  return m;
}

// Samples on a 2-d plane in 4-d (so a 2-unit code can fit them), with labels.
static void write_lin_data(const char *path, int n, uint64_t seed) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "label,x0,x1,x2,x3\n");
  for (int i = 0; i < n; i++) {
    double a = aert_uniform01(seed, 2 * (uint64_t)i), b = aert_uniform01(seed, 2 * (uint64_t)i + 1);
    fprintf(f, "%d,%.6f,%.6f,%.6f,%.6f\n", i % 3, a, b, 0.5 * (a + b), 0.25 + 0.5 * a - 0.25 * b);
  }
  ck_assert_int_eq(fclose(f), 0);
}

// Runs aert_main(model, "PROG args...") in a child process in `dir`,
// capturing its stdout and stderr.
static CommandResult run_main(const aert_model *model, const char *dir, const char *fmt, ...) {
  char *args = NULL;
  va_list ap;
  va_start(ap, fmt);
  ck_assert_int_ge(vasprintf(&args, fmt, ap), 0);
  va_end(ap);
  char *out = path_in(dir, ".stdout"), *err = path_in(dir, ".stderr");
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (chdir(dir) != 0) _exit(99);
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(o, 1), dup2(e, 2);
    close(o), close(e);
    char *argv[64];
    int argc = 0;
    argv[argc++] = "lin";
    for (char *save = NULL, *t = strtok_r(args, " ", &save); t && argc < 63; t = strtok_r(NULL, " ", &save))
      argv[argc++] = t;
    argv[argc] = NULL;
    int status = aert_main(model, argc, argv);
    fflush(stdout);
    _exit(status);
  }
  int raw = 0;
  ck_assert_int_eq(waitpid(pid, &raw, 0), pid);
  CommandResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = read_whole(out, NULL);
  r.err = read_whole(err, NULL);
  unlink(out), unlink(err);
  free(out), free(err), free(args);
  return r;
}

static char *lin_dir(void) {
  char *dir = make_temp_dir("lin");
  char *train = path_in(dir, "train.csv"), *test = path_in(dir, "test.csv");
  write_lin_data(train, 100, 11);
  write_lin_data(test, 40, 12);
  free(train), free(test);
  return dir;
}

static bool same_file(const char *a, const char *b) {
  size_t na, nb;
  char *x = read_whole(a, &na), *y = read_whole(b, &nb);
  bool same = na == nb && memcmp(x, y, na) == 0;
  free(x), free(y);
  return same;
}

// ------------------------------------------------------------- checkpoints
static aert_ctx *lin_ctx(void) {
  aert_ctx *ctx = calloc(1, sizeof *ctx);
  ctx->params = calloc(N_ELEMS, sizeof(aert_real));
  ctx->grads = calloc(N_ELEMS, sizeof(aert_real));
  ctx->opt_state = calloc(1, sizeof(aert_real *));
  ctx->opt_state[0] = calloc(2 * N_ELEMS, sizeof(aert_real));
  ctx->opt_t = calloc(1, sizeof(int64_t));
  ctx->lr = calloc(1, sizeof(double));
  ctx->seed = 5;
  return ctx;
}

static void lin_ctx_free(aert_ctx *ctx) {
  free(ctx->params), free(ctx->grads), free(ctx->opt_state[0]), free(ctx->opt_state), free(ctx->opt_t), free(ctx->lr);
  free(ctx);
}

static void fill_ctx(aert_ctx *ctx) {
  for (int e = 0; e < N_ELEMS; e++) ctx->params[e] = (aert_real)aert_normal(1, (uint64_t)e);
  for (int e = 0; e < 2 * N_ELEMS; e++) ctx->opt_state[0][e] = (aert_real)aert_uniform01(2, (uint64_t)e);
  ctx->opt_t[0] = 1234;
  ctx->seed = 77;
}

// Loads a checkpoint, returning the status and (in *message) what it printed.
static int load_checkpoint_capturing(const char *path, const aert_model *model, aert_ctx *ctx, char **message) {
  aert_progress_state st;
  stderr_capture c = stderr_begin();
  int status = aert_checkpoint_load(path, model, ctx, &st);
  *message = stderr_end(&c);
  return status;
}

static void assert_checkpoint_fails(const char *path, const aert_model *model, const char *word1, const char *word2) {
  aert_ctx *ctx = lin_ctx();
  char *message = NULL;
  ck_assert_int_eq(load_checkpoint_capturing(path, model, ctx, &message), -1);
  ck_assert_msg(strstr(message, "error:") && strstr(message, path) && strstr(message, word1) &&
                    (!word2 || strstr(message, word2)),
                "message lacks '%s'/'%s': %s", word1, word2 ? word2 : "", message);
  free(message);
  lin_ctx_free(ctx);
}

static bool contains(const char *bytes, size_t size, const char *text) {
  return memmem(bytes, size, text, strlen(text)) != NULL;
}

static size_t count_entries(const char *dir) {
  DIR *d = opendir(dir);
  size_t n = 0;
  for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

START_TEST(test_checkpoint_round_trip) {
  char *dir = make_temp_dir("ckpt");
  char *path = path_in(dir, "a.safetensors");
  aert_model m = lin_model();
  aert_ctx *a = lin_ctx(), *b = lin_ctx();
  fill_ctx(a);
  aert_progress_state st = {3, 99, 0}, back = {0, 0, 0};
  ck_assert_int_eq(aert_checkpoint_save(path, &m, a, &st), 0);
  ck_assert_uint_eq(count_entries(dir), 1);  // no temporary file left behind
  ck_assert_int_eq(aert_checkpoint_load(path, &m, b, &back), 0);
  ck_assert_mem_eq(a->params, b->params, N_ELEMS * sizeof(aert_real));
  ck_assert_mem_eq(a->opt_state[0], b->opt_state[0], 2 * N_ELEMS * sizeof(aert_real));
  ck_assert_int_eq(b->opt_t[0], 1234);
  ck_assert_uint_eq(b->seed, 77);
  ck_assert_int_eq(back.epoch, 3);
  ck_assert_uint_eq(back.batch_counter, 99);
  size_t size;
  char *bytes = read_whole(path, &size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | (unsigned char)bytes[i];
  ck_assert_uint_eq(n % 8, 0);
  ck_assert_uint_eq(size, 8 + n + (N_ELEMS * 3) * sizeof(aert_real));
  ck_assert(contains(bytes, size, "\"encoder.dense.kernel\":{\"dtype\":\"F32\",\"shape\":[4,2],\"data_offsets\":[0,32]}"));
  ck_assert(contains(bytes, size, "\"optimizer.recon.state\""));
  ck_assert(contains(bytes, size, "\"optimizer.recon.t\":\"1234\""));
  ck_assert(contains(bytes, size, "\"aec_model\":\"lin\""));
  free(bytes);
  lin_ctx_free(a), lin_ctx_free(b);
  free(path);
  remove_tree(dir);
  free(dir);
}
END_TEST

// Writes a file: header length, the JSON header, then `data_bytes` zero bytes.
static void write_safetensors(const char *path, const char *json, size_t data_bytes, uint64_t forged_length) {
  size_t hl = strlen(json), size = 8 + hl + data_bytes;
  unsigned char *all = calloc(1, size);
  uint64_t n = forged_length ? forged_length : hl;
  for (int i = 0; i < 8; i++) all[i] = (unsigned char)(n >> (8 * i));
  memcpy(all + 8, json, hl);
  write_file(path, all, size);
  free(all);
}

START_TEST(test_checkpoint_damage) {
  char *dir = make_temp_dir("ckptbad");
  char *good = path_in(dir, "good.safetensors"), *half = path_in(dir, "half.safetensors");
  char *forged = path_in(dir, "forged.safetensors"), *bounds = path_in(dir, "bounds.safetensors");
  char *json = path_in(dir, "json.safetensors"), *tiny = path_in(dir, "tiny.safetensors");
  char *missing = path_in(dir, "missing.safetensors");
  aert_model m = lin_model();
  aert_ctx *a = lin_ctx();
  fill_ctx(a);
  aert_progress_state st = {1, 2, 0};
  ck_assert_int_eq(aert_checkpoint_save(good, &m, a, &st), 0);
  size_t size;
  char *bytes = read_whole(good, &size);
  write_file(half, bytes, size / 2);
  assert_checkpoint_fails(half, &m, "truncated", NULL);
  char *copy = malloc(size);
  memcpy(copy, bytes, size);
  copy[5] = 0x40;  // a header length of 2^46
  write_file(forged, copy, size);
  assert_checkpoint_fails(forged, &m, "header length", NULL);
  write_safetensors(bounds, "{\"encoder.dense.kernel\":{\"dtype\":\"F32\",\"shape\":[4,2],\"data_offsets\":[0,4000]}}", 32, 0);
  assert_checkpoint_fails(bounds, &m, "encoder.dense.kernel", "4000");
  write_safetensors(json, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, 0);
  assert_checkpoint_fails(json, &m, "JSON", NULL);
  char deep[2100];
  memset(deep, '[', 1000), memset(deep + 1000, ']', 1000), deep[2000] = 0;
  const char *hostile[] = {deep, "{\"a\":\"\\q\"}", "{\"a\":1,\"a\":2}", "{\"a\":\"abc", "{\"a\":01}",
                           "{\"a\":\"\\ud800\"}", "{\"a\" 1}", "{} x", "{\"a\":[1,2,]}", "{\"a\":tru}"};
  for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
    write_safetensors(json, hostile[i], 0, 0);
    assert_checkpoint_fails(json, &m, "JSON", NULL);
  }
  write_safetensors(json, "{\"__metadata__\":{\"epoch\":3}}", 0, 0);
  assert_checkpoint_fails(json, &m, "__metadata__", NULL);
  write_safetensors(json, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0, 0);
  assert_checkpoint_fails(json, &m, "'x'", NULL);
  write_file(tiny, "abc", 3);
  assert_checkpoint_fails(tiny, &m, "too short", NULL);
  assert_checkpoint_fails(missing, &m, "cannot open", NULL);

  // Random damage never crashes the loader: it loads or says why not.
  stderr_capture c = stderr_begin();
  for (int trial = 0; trial < 300; trial++) {
    memcpy(copy, bytes, size);
    for (int k = 0; k < 1 + trial % 4; k++) {
      size_t at = (size_t)(aert_hash64((uint64_t)trial, (uint64_t)k) % size);
      copy[at] = (char)aert_hash64((uint64_t)trial, 100 + (uint64_t)k);
    }
    write_file(json, copy, trial % 7 == 0 ? size - (size_t)trial % 50 : size);
    aert_ctx *b = lin_ctx();
    aert_progress_state back;
    int status = aert_checkpoint_load(json, &m, b, &back);
    ck_assert(status == 0 || status == -1);
    lin_ctx_free(b);
  }
  free(stderr_end(&c));
  free(bytes), free(copy);
  free(good), free(half), free(forged), free(bounds), free(json), free(tiny), free(missing);
  lin_ctx_free(a);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_checkpoint_wrong_model) {
  char *dir = make_temp_dir("ckptmodel");
  char *path = path_in(dir, "a.safetensors");
  aert_model m = lin_model();
  aert_ctx *a = lin_ctx();
  fill_ctx(a);
  aert_progress_state st = {1, 2, 0};
  ck_assert_int_eq(aert_checkpoint_save(path, &m, a, &st), 0);
  aert_param wider[4];
  memcpy(wider, lin_params, sizeof wider);
  wider[0].shape[1] = 3;  // a code of 3
  aert_model other = m;
  other.params = wider;
  other.name = "wider";
  assert_checkpoint_fails(path, &other, "encoder.dense.kernel", "[4, 3]");
  assert_checkpoint_fails(path, &other, "[4, 2]", NULL);
  wider[0].shape[1] = 2;
  wider[0].name = "encoder.dense_1.kernel";
  assert_checkpoint_fails(path, &other, "no tensor 'encoder.dense_1.kernel'", "lin");
  lin_ctx_free(a);
  free(path);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_checkpoint_save_failures) {
  char *dir = make_temp_dir("ckptsave");
  char *path = path_in(dir, "a.safetensors"), *nodir = path_in(dir, "no/such/dir.safetensors");
  aert_model m = lin_model();
  aert_ctx *a = lin_ctx();
  fill_ctx(a);
  aert_progress_state st = {1, 2, 0};
  stderr_capture c = stderr_begin();
  ck_assert_int_eq(aert_checkpoint_save(nodir, &m, a, &st), -1);
  char *message = stderr_end(&c);
  ck_assert_msg(strstr(message, nodir) && strstr(message, "cannot create"), "%s", message);
  free(message);
  ck_assert_int_eq(aert_checkpoint_save(path, &m, a, &st), 0);
  size_t before_size;
  char *before = read_whole(path, &before_size);
  // A full disk: writes beyond 100 bytes fail (EFBIG); the old checkpoint
  // stays. In a child, so the limit ends with it.
  fflush(stdout), fflush(stderr);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = {100, 100};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(3);
    a->params[0] += 1;
    char *err = path_in(dir, "err.txt");
    int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    _exit(aert_checkpoint_save(path, &m, a, &st) == -1 ? 0 : 1);
  }
  int raw = 0;
  ck_assert_int_eq(waitpid(pid, &raw, 0), pid);
  ck_assert(WIFEXITED(raw) && WEXITSTATUS(raw) == 0);
  char *err = path_in(dir, "err.txt");
  message = read_whole(err, NULL);
  ck_assert_msg(strstr(message, path) && strstr(message, "cannot write"), "%s", message);
  unlink(err);
  free(err);
  ck_assert_uint_eq(count_entries(dir), 1);
  size_t after_size;
  char *after = read_whole(path, &after_size);
  ck_assert_uint_eq(before_size, after_size);
  ck_assert_mem_eq(before, after, before_size);
  free(message), free(before), free(after), free(path), free(nodir);
  lin_ctx_free(a);
  remove_tree(dir);
  free(dir);
}
END_TEST

// -------------------------------------------------------------- aert_main
START_TEST(test_train_figures_and_checkpoint) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  CommandResult r = run_main(&m, dir, "train --epochs 6 --batch 8 --lr 0.05 --log log.csv --threads 1");
  ck_assert_msg(r.status == 0, "train failed: %s", r.err);
  double first = figure(r.out, "test.recon");
  ck_assert_msg(strstr(r.out, "epoch 1\ntrain.recon "), "%s", r.out);
  char *line1 = strstr(r.out, "test.recon ");
  ck_assert_ptr_nonnull(line1);
  double epoch1 = strtod(line1 + strlen("test.recon "), NULL);
  ck_assert(isfinite(first) && isfinite(epoch1));
  ck_assert_msg(first < 0.5 * epoch1, "the test loss did not fall: %g -> %g", epoch1, first);
  ck_assert_double_eq(figure(r.out, "epoch"), 6);
  ck_assert(figure(r.out, "samples_per_s") > 0);
  for (const char *l = r.out; *l; l = strchr(l, '\n') + 1) {  // stdout: only `name value` lines
    const char *space = strchr(l, ' '), *nl = strchr(l, '\n');
    ck_assert_msg(space && nl && space < nl && !memchr(space + 1, ' ', (size_t)(nl - space - 1)), "not a figure line in: %s", r.out);
  }
  ck_assert_msg(strstr(r.err, "epoch 6/6"), "%s", r.err);
  char *ckpt = path_in(dir, "lin.safetensors"), *log = path_in(dir, "log.csv");
  ck_assert(file_exists(ckpt));
  char *log_text = read_whole(log, NULL);
  ck_assert_msg(strncmp(log_text, "epoch,train.recon,test.recon,seconds\n1,", 39) == 0, "%s", log_text);
  ck_assert(strstr(log_text, "\n6,"));
  free(log_text);

  CommandResult e = run_main(&m, dir, "eval --checkpoint lin.safetensors");
  ck_assert_msg(e.status == 0, "%s", e.err);
  ck_assert_double_eq_tol(figure(e.out, "recon"), first, 1e-6);
  command_result_free(&e);
  e = run_main(&m, dir, "eval --checkpoint lin.safetensors --data train.csv --batch 7");
  ck_assert_msg(e.status == 0 && figure(e.out, "recon") > 0, "%s", e.err);
  command_result_free(&e);
  free(ckpt), free(log);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_resume_is_bit_identical) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  CommandResult r = run_main(&m, dir, "train --epochs 0 --checkpoint zero.safetensors --seed 3");
  ck_assert_msg(r.status == 0 && strcmp(r.out, "") == 0, "%s", r.err);
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 2 --resume zero.safetensors --checkpoint from_zero.safetensors");
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 2 --checkpoint straight.safetensors --seed 3");
  ck_assert_msg(r.status == 0, "%s", r.err);
  double straight = figure(r.out, "test.recon");
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 1 --checkpoint one.safetensors --seed 3");
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 2 --resume one.safetensors --checkpoint two.safetensors");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_double_eq(figure(r.out, "epoch"), 2);
  ck_assert_ptr_null(strstr(r.out, "epoch 1\n"));
  ck_assert_double_eq(figure(r.out, "test.recon"), straight);
  command_result_free(&r);
  char *a = path_in(dir, "straight.safetensors"), *b = path_in(dir, "two.safetensors");
  ck_assert_msg(same_file(a, b), "resumed checkpoint differs from the straight run");
  free(b);
  b = path_in(dir, "from_zero.safetensors");
  ck_assert_msg(same_file(a, b), "training from the --epochs 0 checkpoint differs from the straight run");
  r = run_main(&m, dir, "train --epochs 2 --resume two.safetensors --checkpoint three.safetensors");
  ck_assert_int_eq(r.status, 0);
  ck_assert_msg(strstr(r.err, "nothing to do"), "%s", r.err);
  command_result_free(&r);
  free(a), free(b);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_corrupt_or_foreign_checkpoint) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  CommandResult r = run_main(&m, dir, "train --epochs 1");
  ck_assert_int_eq(r.status, 0);
  command_result_free(&r);
  char *ckpt = path_in(dir, "lin.safetensors"), *cut = path_in(dir, "cut.safetensors");
  size_t size;
  char *bytes = read_whole(ckpt, &size);
  write_file(cut, bytes, size - 20);
  r = run_main(&m, dir, "eval --checkpoint cut.safetensors");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "lin: error: cut.safetensors: ") && strstr(r.err, "truncated"), "%s", r.err);
  ck_assert_str_eq(r.out, "");
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 2 --resume cut.safetensors");
  ck_assert_int_eq(r.status, 1);
  command_result_free(&r);
  aert_param renamed[4];
  memcpy(renamed, lin_params, sizeof renamed);
  renamed[2].name = "decoder.out.kernel";
  aert_model other = m;
  other.params = renamed;
  r = run_main(&other, dir, "eval --checkpoint lin.safetensors");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "decoder.out.kernel"), "%s", r.err);
  command_result_free(&r);
  free(bytes), free(ckpt), free(cut);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_nan_loss_stops_training) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  nan_after_batches = 3;
  CommandResult r = run_main(&m, dir, "train --epochs 3");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "error: step 'recon' (batch 4 of epoch 1): loss is nan; no checkpoint was written yet"),
                "%s", r.err);
  command_result_free(&r);
  nan_after_batches = 20;  // 13 batches an epoch: NaN in the second
  r = run_main(&m, dir, "train --epochs 3");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "(batch 8 of epoch 2): loss is nan; the last good checkpoint is lin.safetensors"), "%s",
                r.err);
  ck_assert_double_eq(figure(r.out, "epoch"), 1);
  nan_after_batches = -1;
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

static void assert_usage_error(const aert_model *m, const char *dir, const char *args, const char *word) {
  CommandResult r = run_main(m, dir, "%s", args);
  ck_assert_msg(r.status == 2, "'%s' exited %d: %s", args, r.status, r.err);
  ck_assert_msg(strstr(r.err, "lin: error: ") && strstr(r.err, word), "'%s': %s", args, r.err);
  ck_assert_str_eq(r.out, "");
  command_result_free(&r);
}

START_TEST(test_command_line_errors) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  assert_usage_error(&m, dir, "train --epochs", "needs a value");
  assert_usage_error(&m, dir, "train --epochs two", "'two'");
  assert_usage_error(&m, dir, "train --batch 0", "--batch");
  assert_usage_error(&m, dir, "train --lr -1", "--lr");
  assert_usage_error(&m, dir, "train --frobnicate 3", "unknown option '--frobnicate'");
  assert_usage_error(&m, dir, "train extra", "unexpected argument");
  assert_usage_error(&m, dir, "eval", "eval needs --checkpoint FILE");
  assert_usage_error(&m, dir, "encode", "encode needs --checkpoint FILE");
  assert_usage_error(&m, dir, "reconstruct --checkpoint x", "-o");
  assert_usage_error(&m, dir, "eval --epochs 3", "unknown option");
  assert_usage_error(&m, dir, "fly", "unknown command 'fly'");
  CommandResult r = run_main(&m, dir, "--help");
  ck_assert_int_eq(r.status, 0);
  ck_assert(strstr(r.out, "train") && strstr(r.out, "gradcheck"));
  command_result_free(&r);
  r = run_main(&m, dir, "train --help");
  ck_assert_int_eq(r.status, 0);
  const char *options[] = {"--data", "--test", "--epochs", "--batch", "--lr", "--seed", "--threads", "--checkpoint",
                           "--resume", "--log"};
  for (size_t i = 0; i < sizeof options / sizeof *options; i++) ck_assert_msg(strstr(r.out, options[i]), "%s", options[i]);
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 1 --data nothere.csv");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "nothere.csv: no such file"), "%s", r.err);
  command_result_free(&r);
  r = run_main(&m, dir, "eval --checkpoint nothere.safetensors");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "nothere.safetensors: cannot open"), "%s", r.err);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_summary_encode_reconstruct) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  CommandResult r = run_main(&m, dir, "summary");
  ck_assert_int_eq(r.status, 0);
  ck_assert_double_eq(figure(r.out, "params"), 22);
  ck_assert_double_eq(figure(r.out, "flops_per_sample"), 32);
  ck_assert_msg(strstr(r.err, "encoder.dense") && strstr(r.err, "(None, 2)"), "%s", r.err);
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 1");
  ck_assert_int_eq(r.status, 0);
  command_result_free(&r);
  r = run_main(&m, dir, "encode --checkpoint lin.safetensors --data test.csv -o codes.csv");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, "");
  command_result_free(&r);
  char *codes = path_in(dir, "codes.csv");
  char *text = read_whole(codes, NULL);
  ck_assert_msg(strncmp(text, "label,z0,z1\n0,", 14) == 0, "%s", text);
  int lines = 0;
  for (char *p = text; *p; p++) lines += *p == '\n';
  ck_assert_int_eq(lines, 41);
  free(text), free(codes);
  r = run_main(&m, dir, "reconstruct --checkpoint lin.safetensors -o grid.png --count 5");
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  char *png = path_in(dir, "grid.png");
  size_t size;
  text = read_whole(png, &size);
  ck_assert(size > 8 && memcmp(text, "\x89PNG", 4) == 0);
  free(text), free(png);
  r = run_main(&m, dir, "reconstruct --checkpoint lin.safetensors -o /nonexistent/dir/grid.png");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "/nonexistent/dir/grid.png"), "%s", r.err);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_gradcheck) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  CommandResult r = run_main(&m, dir, "gradcheck --data train.csv --samples 5");
  ck_assert_msg(r.status == 0, "%s", r.err);
  double error = figure(r.out, "gradcheck.recon.max_error");
  ck_assert_msg(error >= 0 && error < 1e-2, "max error %g: %s", error, r.err);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

Suite *runtime_suite(void) {
  Suite *s = suite_create("runtime");
  TCase *units = tcase_create("units");
  tcase_set_timeout(units, 60);
  tcase_add_test(units, test_rng_deterministic_and_moments);
  tcase_add_test(units, test_shuffle_is_a_permutation);
  tcase_add_test(units, test_idx_plain_and_gzip_with_labels);
  tcase_add_test(units, test_idx_errors);
  tcase_add_test(units, test_fashion_mnist_when_installed);
  tcase_add_test(units, test_csv);
  tcase_add_test(units, test_npy);
  tcase_add_test(units, test_values_converted_in_place);
  tcase_add_test(units, test_checkpoint_round_trip);
  tcase_add_test(units, test_checkpoint_damage);
  tcase_add_test(units, test_checkpoint_wrong_model);
  tcase_add_test(units, test_checkpoint_save_failures);
  suite_add_tcase(s, units);
  TCase *cli = tcase_create("aert_main");
  tcase_set_timeout(cli, 120);
  tcase_add_test(cli, test_train_figures_and_checkpoint);
  tcase_add_test(cli, test_resume_is_bit_identical);
  tcase_add_test(cli, test_corrupt_or_foreign_checkpoint);
  tcase_add_test(cli, test_nan_loss_stops_training);
  tcase_add_test(cli, test_command_line_errors);
  tcase_add_test(cli, test_summary_encode_reconstruct);
  tcase_add_test(cli, test_gradcheck);
  suite_add_tcase(s, cli);
  return s;
}
