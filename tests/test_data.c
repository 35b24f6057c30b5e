// test_data.c — libaert's data loaders on their own: IDX files (plain and
// gzip, with their labels), Fashion-MNIST when installed, CSV and .npy, the
// values converted in place, and one clear message for each damaged file.
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aert.h"
#include "tests.h"

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
  char *gz = read_whole_file(ok, &size);
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
  if (!path_exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")) return;
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

Suite *data_suite(void) {
  Suite *s = suite_create("data");
  TCase *units = tcase_create("units");
  tcase_set_timeout(units, 60);
  tcase_add_test(units, test_idx_plain_and_gzip_with_labels);
  tcase_add_test(units, test_idx_errors);
  tcase_add_test(units, test_fashion_mnist_when_installed);
  tcase_add_test(units, test_csv);
  tcase_add_test(units, test_npy);
  tcase_add_test(units, test_values_converted_in_place);
  suite_add_tcase(s, units);
  return s;
}
