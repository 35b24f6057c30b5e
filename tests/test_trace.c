// test_trace.c — what tests/torch/ relies on, checked without PyTorch: the
// program's `describe` JSON, `train --trace` (a line a batch with its samples
// and step losses) and `train --dump-random` (each random node's draws).
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

#define AEC AEC_BUILD_DIR "/aec"

static char *dir;

static void setup(void) { dir = make_temp_dir("trace"); }
static void teardown(void) {
  remove_tree(dir);
  free(dir);
}

static CommandResult in_dir(const char *command) { return run_in(dir, command); }
static void must_succeed(const char *command) { must_succeed_in(dir, command); }

// A model with a random node (when the compiler has gaussian_noise) or without.
static void write_model(bool noisy) {
  char path[1024];
  snprintf(path, sizeof path, "%s/m.ae", dir);
  const char *text = noisy ? "input x: [4]\n"
                             "net f = dense(3, tanh) -> dense(4, sigmoid)\n"
                             "loss recon = mse(f(gaussian_noise(x, 0.5)), x) + 0.01 * l2(f)\n"
                             "train { batch 4  step minimize recon over f with sgd(lr=0.1, momentum=0.9) }\n"
                           : "input x: [4]\n"
                             "net f = dense(3, tanh) -> dense(4, sigmoid)\n"
                             "loss recon = mse(f(x), x) + 0.01 * l2(f)\n"
                             "train { batch 4  step minimize recon over f with sgd(lr=0.1, momentum=0.9) }\n";
  write_file(path, text, strlen(text));
  // 10 samples: batches of 4, 4 and 2.
  snprintf(path, sizeof path, "%s/d.csv", dir);
  const char *data = "0,0.1,0.2,0.3\n1,0.9,0.8,0.7\n0.5,0.5,0.5,0.5\n0.2,0.4,0.6,0.8\n0.3,0.1,0.0,0.9\n"
                     "0.7,0.2,0.1,0.4\n0.6,0.6,0.1,0.1\n0.9,0.0,0.3,0.3\n0.1,0.1,0.9,0.9\n0.4,0.3,0.2,0.1\n";
  write_file(path, data, strlen(data));
}

START_TEST(describe_prints_the_forward_graph) {
  write_model(false);
  must_succeed(AEC " m.ae -o m");
  CommandResult r = in_dir("./m describe");
  ck_assert_msg(r.status == 0, "%s", r.err);
  static const char *const expected[] = {
      "\"format\": 1", "\"op\": \"dense\"", "\"op\": \"tanh\"", "\"op\": \"mse\"", "\"op\": \"sum_squares\"",
      "\"param\": \"f.dense_1.kernel\"", "\"optimizer\": \"sgd\"", "\"momentum\": 0.90000000000000002",
      "\"batch\": 4", "\"losses\": [", "\"random\": []"};
  for (size_t i = 0; i < sizeof expected / sizeof *expected; i++)
    ck_assert_msg(strstr(r.out, expected[i]), "no %s in the description:\n%s", expected[i], r.out);
  ck_assert_msg(!strstr(r.out, "_grad"), "backward nodes in the description:\n%s", r.out);
  command_result_free(&r);
}
END_TEST

START_TEST(trace_has_a_line_a_batch) {
  write_model(false);
  must_succeed(AEC " m.ae -o m");
  must_succeed("./m train --data d.csv --test none --epochs 2 --checkpoint c.safetensors --trace t.jsonl");
  CommandResult r = in_dir("wc -l < t.jsonl && head -1 t.jsonl && tail -1 t.jsonl");
  ck_assert_msg(strncmp(r.out, "6\n", 2) == 0, "expected 6 lines (3 batches, 2 epochs):\n%s", r.out);
  ck_assert_ptr_nonnull(strstr(r.out, "{\"epoch\": 1, \"batch\": 1, \"batch_counter\": 0, \"losses\": ["));
  ck_assert_ptr_nonnull(strstr(r.out, "{\"epoch\": 2, \"batch\": 3, \"batch_counter\": 5, \"losses\": ["));
  // The last batch holds the 2 samples left over.
  const char *last = strrchr(r.out, '{');
  ck_assert_ptr_nonnull(last);
  const char *samples = strstr(last, "\"samples\": [");
  ck_assert_ptr_nonnull(samples);
  int commas = 0;
  for (const char *c = samples; *c && *c != ']'; c++) commas += *c == ',';
  ck_assert_int_eq(commas, 1);
  command_result_free(&r);
}
END_TEST

// Runs only when the compiler has gaussian_noise: its draws are dumped as
// .npy, one row a sample, in the order of the batches.
START_TEST(dump_random_writes_each_random_node) {
  write_model(true);
  CommandResult c = in_dir(AEC " m.ae -o m");
  if (c.status != 0 && strstr(c.err, "not supported yet")) {
    command_result_free(&c);
    return;
  }
  ck_assert_msg(c.status == 0, "%s", c.err);
  command_result_free(&c);
  must_succeed("./m train --data d.csv --test none --epochs 1 --checkpoint c.safetensors --dump-random r");
  CommandResult r = in_dir("ls r && head -c 128 r/*.normal.npy | tail -c +11");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(strstr(r.out, ".normal.npy\n"), "no draws dumped:\n%s", r.out);
  ck_assert_msg(strstr(r.out, "{'descr': '<f4', 'fortran_order': False, 'shape': (10,4), }"), "bad header:\n%s",
                r.out);
  command_result_free(&r);
}
END_TEST

Suite *trace_suite(void) {
  Suite *s = suite_create("trace");
  TCase *t = tcase_create("trace");
  tcase_set_timeout(t, 120);
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_add_test(t, describe_prints_the_forward_graph);
  tcase_add_test(t, trace_has_a_line_a_batch);
  tcase_add_test(t, dump_random_writes_each_random_node);
  suite_add_tcase(s, t);
  return s;
}
