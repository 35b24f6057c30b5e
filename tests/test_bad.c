// test_bad.c — the catalogue of bad inputs in tests/bad/: every NAME.ae there
// must make aec fail with exactly the messages of NAME.expected; a 10 MB line
// (generated here) gets one short message; bad data files and damaged
// checkpoints given to a generated program get exactly the messages of
// tests/bad/data.expected and tests/bad/checkpoint.expected.
#define _GNU_SOURCE
#include <glob.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests.h"

#define AEC AEC_BUILD_DIR "/aec"
#define BAD AEC_SOURCE_DIR "/tests/bad"

static char *read_all(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot read %s", path);
  char *text = NULL;
  size_t n = 0;
  FILE *out = open_memstream(&text, &n);
  char buf[65536];
  for (size_t got; (got = fread(buf, 1, sizeof buf, f)) > 0;) fwrite(buf, 1, got, out);
  fclose(f);
  fclose(out);
  if (size) *size = n;
  return text;
}

START_TEST(every_bad_ae_file_gets_its_expected_messages) {
  glob_t g;
  ck_assert_int_eq(glob(BAD "/*.ae", 0, NULL, &g), 0);
  ck_assert_uint_ge(g.gl_pathc, 15);
  char *dir = make_temp_dir("bad");
  for (size_t i = 0; i < g.gl_pathc; i++) {
    const char *name = strrchr(g.gl_pathv[i], '/') + 1;
    char expected_path[4096];
    snprintf(expected_path, sizeof expected_path, "%.*s.expected", (int)(strlen(g.gl_pathv[i]) - 3), g.gl_pathv[i]);
    char *expected = read_all(expected_path, NULL);
    // too_big.ae's message names the machine's memory: 16 GB stands in for it.
    CommandResult r = run_command("cd %s && AEC_MEMORY_LIMIT=16e9 %s %s -o %s/out.c", BAD, AEC, name, dir);
    ck_assert_msg(r.status == 1, "%s: aec exited with %d", name, r.status);
    ck_assert_msg(strcmp(r.err, expected) == 0, "%s: expected\n%s\ngot\n%s", name, expected, r.err);
    command_result_free(&r);
    free(expected);
  }
  globfree(&g);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(a_10_mb_line_is_one_short_message) {
  char *dir = make_temp_dir("bigline");
  char path[4096];
  snprintf(path, sizeof path, "%s/long.ae", dir);
  const char *head = "input x: [784]\nnet e = dense(784, relu)\nloss r = mse(e(x), x) ";
  size_t n = strlen(head) + 10u * 1024 * 1024 + 1;
  char *text = malloc(n);
  strcpy(text, head);
  memset(text + strlen(head), 'y', n - 1 - strlen(head));
  text[n - 1] = '\n';
  write_file(path, text, n);
  free(text);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CommandResult r = run_command("cd %s && %s long.ae -o out.c", dir, AEC);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ck_assert_int_eq(r.status, 1);
  const char *expected =
      "long.ae:3:23: error: expected a statement (param, input, net, loss, train or NAME = ...) but found identifier "
      "'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy...'\n";
  ck_assert_msg(strncmp(r.err, expected, strlen(expected)) == 0, "got: %.400s", r.err);
  ck_assert_msg(strlen(r.err) < 1000, "the message echoes the whole line (%zu bytes)", strlen(r.err));
  ck_assert_msg(t1.tv_sec - t0.tv_sec < 10, "aec took %ld s on a 10 MB line", (long)(t1.tv_sec - t0.tv_sec));
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

// Inputs the fuzzers (fuzz/) once crashed on: each now compiles or fails with
// a clean message (under `make check-asan`, the sanitizers also watch).
START_TEST(fuzz_crashes_stay_fixed) {
  glob_t g;
  ck_assert_int_eq(glob(AEC_SOURCE_DIR "/tests/fuzz-regress/*.ae", 0, NULL, &g), 0);
  char *dir = make_temp_dir("fuzzregress");
  for (size_t i = 0; i < g.gl_pathc; i++) {
    CommandResult r = run_command("%s %s -o %s/out.c", AEC, g.gl_pathv[i], dir);
    ck_assert_msg(r.status == 0 || (r.status == 1 && strstr(r.err, "error:")), "%s: status %d\n%s", g.gl_pathv[i],
                  r.status, r.err);
    ck_assert_msg(!strstr(r.err, "runtime error") && !strstr(r.err, "Sanitizer"), "%s:\n%s", g.gl_pathv[i], r.err);
    command_result_free(&r);
  }
  globfree(&g);
  remove_tree(dir);
  free(dir);
}
END_TEST

// ------------------------------------------- data files and checkpoints
static const char *const model_text =
    "input x: [16]\n"
    "net encoder = dense(8, relu)\n"
    "net decoder = dense(16, sigmoid)\n"
    "loss recon = mse(decoder(encoder(x)), x)\n"
    "train { data \"train.csv\" test \"none\" batch 16 epochs 1\n"
    "        step minimize recon over encoder, decoder with adam(lr=0.01) }\n";

static void put(const char *dir, const char *name, const void *data, size_t size) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  write_file(path, data, size);
}

static void put_npy(const char *dir, const char *name, const char *shape, const float *values, size_t n) {
  char header[128];
  int len = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
  memset(header + len, ' ', 117 - (size_t)len);
  header[117] = '\n';
  size_t size = 10 + 118 + n * 4;
  unsigned char *bytes = malloc(size);
  memcpy(bytes, "\x93NUMPY\x01\x00\x76\x00", 10);
  memcpy(bytes + 10, header, 118);
  memcpy(bytes + 128, values, n * 4);
  put(dir, name, bytes, size);
  free(bytes);
}

// A program ./m of input [16], its training set and a checkpoint good.safetensors.
static char *prepare_model(void) {
  char *dir = make_temp_dir("baddata");
  put(dir, "m.ae", model_text, strlen(model_text));
  char *csv = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&csv, &n);
  unsigned s = 99;
  for (int i = 0; i < 64; i++)
    for (int j = 0; j < 16; j++) s = s * 1103515245u + 12345u, fprintf(f, "%.4f%c", (s >> 16) % 10000 / 1e4, j == 15 ? '\n' : ',');
  fclose(f);
  put(dir, "train.csv", csv, n);
  free(csv);
  CommandResult r = run_command("cd %s && %s m.ae -o m && ./m train --checkpoint good.safetensors", dir, AEC);
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  return dir;
}

// Runs each command (in dir) and returns everything they printed on stderr.
static char *run_all(const char *dir, const char *const *commands) {
  char *all = NULL;
  size_t n = 0;
  FILE *out = open_memstream(&all, &n);
  for (int i = 0; commands[i]; i++) {
    CommandResult r = run_command("cd %s && %s", dir, commands[i]);
    ck_assert_msg(r.status == 1, "`%s` exited with %d: %s", commands[i], r.status, r.err);
    fputs(r.err, out);
    command_result_free(&r);
  }
  fclose(out);
  return all;
}

static void assert_same(const char *expected_file, const char *got) {
  char *expected = read_all(expected_file, NULL);
  ck_assert_msg(strcmp(expected, got) == 0, "%s: expected\n%s\ngot\n%s", expected_file, expected, got);
  free(expected);
}

START_TEST(bad_data_files_get_their_expected_messages) {
  char *dir = prepare_model();
  put(dir, "empty.csv", "", 0);
  put(dir, "truncated.csv", "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.1,0.2,0.3,0.4,0.5,0.6,0.7\n0.1,0.2,0.3", 73);
  put(dir, "wide.csv", "1,2,3\n4,5,6\n", 12);
  put(dir, "nan.csv", "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n0,0,nan,0,0,0,0,0,0,0,0,0,0,0,0,0\n", 66);
  float v[32];
  for (int i = 0; i < 32; i++) v[i] = 0.5f;
  put_npy(dir, "truncated.npy", "(10, 16)", v, 25);
  put_npy(dir, "wide.npy", "(2, 4, 4, 2)", v, 32);
  v[17] = __builtin_nanf("");
  put_npy(dir, "nan.npy", "(2, 16)", v, 32);
  static const unsigned char wrong_magic[20] = {0, 0, 9, 3, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 4};
  put(dir, "magic-images-idx3-ubyte", wrong_magic, sizeof wrong_magic);
  static const unsigned char truncated_idx[40] = {0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 4};
  put(dir, "truncated-images-idx3-ubyte", truncated_idx, sizeof truncated_idx);
  put(dir, "truncated.gz", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x63\x60\x60", 13);
  put(dir, "mystery.bin", "hello", 5);
  static const char *const commands[] = {
      "./m eval --checkpoint good.safetensors --data missing.csv",
      "./m eval --checkpoint good.safetensors --data empty.csv",
      "./m eval --checkpoint good.safetensors --data truncated.csv",
      "./m eval --checkpoint good.safetensors --data wide.csv",
      "./m eval --checkpoint good.safetensors --data nan.csv",
      "./m eval --checkpoint good.safetensors --data truncated.npy",
      "./m eval --checkpoint good.safetensors --data wide.npy",
      "./m eval --checkpoint good.safetensors --data nan.npy",
      "./m eval --checkpoint good.safetensors --data magic-images-idx3-ubyte",
      "./m eval --checkpoint good.safetensors --data truncated-images-idx3-ubyte",
      "./m eval --checkpoint good.safetensors --data truncated.gz",
      "./m eval --checkpoint good.safetensors --data mystery.bin",
      "./m train --data nan.csv",
      NULL};
  char *got = run_all(dir, commands);
  assert_same(BAD "/data.expected", got);
  free(got);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(damaged_checkpoints_get_their_expected_messages) {
  char *dir = prepare_model();
  char path[4096];
  snprintf(path, sizeof path, "%s/good.safetensors", dir);
  size_t size;
  char *good = read_all(path, &size);
  put(dir, "truncated.safetensors", good, size / 2);
  put(dir, "tiny.safetensors", good, 5);
  char *forged = malloc(size);
  memcpy(forged, good, size);
  uint64_t huge = (uint64_t)1 << 40;
  memcpy(forged, &huge, 8);
  put(dir, "forged.safetensors", forged, size);
  // A tensor whose data_offsets disagree with its shape: [0,512] -> [0,592], the same length.
  memcpy(forged, good, size);
  char *at = memmem(forged, size, "\"data_offsets\":[0,512]", 22);
  ck_assert(at != NULL);
  at[19] = '9';
  put(dir, "bounds.safetensors", forged, size);
  free(forged);
  free(good);
  // Another model's checkpoint: the encoder has 4 units, not 8.
  char *other = strdup(model_text);
  memcpy(strstr(other, "dense(8"), "dense(4", 7);
  put(dir, "other.ae", other, strlen(other));
  free(other);
  CommandResult r = run_command("cd %s && %s other.ae -o other && ./other train --checkpoint other.safetensors", dir, AEC);
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  static const char *const commands[] = {
      "./m eval --checkpoint missing.safetensors --data train.csv",
      "./m eval --checkpoint truncated.safetensors --data train.csv",
      "./m eval --checkpoint tiny.safetensors --data train.csv",
      "./m eval --checkpoint forged.safetensors --data train.csv",
      "./m eval --checkpoint bounds.safetensors --data train.csv",
      "./m eval --checkpoint other.safetensors --data train.csv",
      "./m train --resume truncated.safetensors --epochs 2",
      "./m eval --checkpoint train.csv --data train.csv",
      NULL};
  char *got = run_all(dir, commands);
  assert_same(BAD "/checkpoint.expected", got);
  free(got);
  remove_tree(dir);
  free(dir);
}
END_TEST

Suite *bad_suite(void) {
  Suite *s = suite_create("bad");
  TCase *t = tcase_create("bad");
  tcase_set_timeout(t, 300);
  tcase_add_test(t, every_bad_ae_file_gets_its_expected_messages);
  tcase_add_test(t, a_10_mb_line_is_one_short_message);
  tcase_add_test(t, fuzz_crashes_stay_fixed);
  tcase_add_test(t, bad_data_files_get_their_expected_messages);
  tcase_add_test(t, damaged_checkpoints_get_their_expected_messages);
  suite_add_tcase(s, t);
  return s;
}
