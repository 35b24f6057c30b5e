// test_batchnorm.c — batchnorm() in generated programs: training moves the
// running mean and variance as PyTorch does (momentum 0.1, the unbiased
// variance), computed here from the batches the trace lists; inference
// (encode) normalizes with them, so a sample alone gets what it gets in a
// batch; checkpoints carry them and train --resume restores them; the
// statistics do not depend on the number of threads; aec --mpi refuses it.
// (Its gradient is in test_gradcheck.c, the step-by-step agreement with
// PyTorch in tests/torch/batchnorm.ae, bad calls in tests/bad/batchnorm.ae.)
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

#define AEC AEC_BUILD_DIR "/aec"

static char *dir;

static void setup(void) { dir = make_temp_dir("batchnorm"); }
static void teardown(void) {
  remove_tree(dir);
  free(dir);
}

static void write_in_dir(const char *name, const char *text) {
  char *path = path_in(dir, name);
  write_file(path, text, strlen(text));
  free(path);
}

enum { ROWS = 10, COLS = 3 };

// Sample r's feature j: each feature has its own mean and spread, far from
// 0 and 1, so running statistics that were never moved show.
static double value(int r, int j) { return 2.0 * (j + 1) + (j + 1) * 0.37 * ((r * 7 + j * 3) % 10); }

static void write_data(const char *name, int first, int count) {
  char text[4096];
  size_t used = 0;
  for (int r = first; r < first + count; r++)
    for (int j = 0; j < COLS; j++) used += (size_t)snprintf(text + used, sizeof text - used, "%.6f%s", value(r, j), j + 1 < COLS ? "," : "\n");
  write_in_dir(name, text);
}

// The numbers of a CSV file after its header line (z0,z1,...), at most max.
static int read_numbers(const char *name, double *out, int max) {
  char *path = path_in(dir, name);
  char *text = read_whole_file(path, NULL);
  free(path);
  int n = 0;
  char *body = strchr(text, '\n');
  ck_assert_ptr_nonnull(body);
  for (char *p = body; *p && n < max;) {
    char *end;
    double v = strtod(p, &end);
    if (end == p) {
      p++;
      continue;
    }
    out[n++] = v;
    p = end;
  }
  free(text);
  return n;
}

// The code is the batchnorm of the input alone; sgd with a negligible rate
// leaves its scale at 1 and its shift at 0, so that a code is (x - running
// mean) / sqrt(running variance + eps) exactly as far as floats go.
static const char *const identity_model =
    "input x: [3]\n"
    "net encoder = batchnorm()\n"
    "net decoder = dense(3)\n"
    "loss recon = mse(decoder(encoder(x)), x)\n"
    "train { batch 4  epochs 2  step minimize recon over encoder, decoder with sgd(lr=1e-30) }\n";

START_TEST(inference_normalizes_with_the_running_statistics_of_the_batches) {
  write_in_dir("m.ae", identity_model);
  write_data("d.csv", 0, ROWS);
  must_succeed_in(dir, AEC " m.ae -o m");
  must_succeed_in(dir, "./m train --data d.csv --test none --threads 2 --checkpoint c.safetensors --trace t.jsonl");
  // The running statistics the trace's batches give, PyTorch's update in double.
  double mean[COLS] = {0}, var[COLS] = {1, 1, 1};
  char *trace_path = path_in(dir, "t.jsonl");
  FILE *trace = fopen(trace_path, "r");
  ck_assert_ptr_nonnull(trace);
  free(trace_path);
  char line[4096];
  int batches = 0;
  while (fgets(line, sizeof line, trace)) {
    const char *at = strstr(line, "\"samples\": [");
    ck_assert_ptr_nonnull(at);
    int rows[ROWS], n = 0;
    for (char *p = (char *)at + strlen("\"samples\": ["), *end; n < ROWS; p = end + 1) {
      rows[n] = (int)strtol(p, &end, 10);
      if (end == p) break;
      n++;
      if (*end != ',') break;
    }
    ck_assert_int_ge(n, 2);
    for (int j = 0; j < COLS; j++) {
      double sum = 0, squares = 0;
      for (int i = 0; i < n; i++) sum += value(rows[i], j);
      for (int i = 0; i < n; i++) squares += (value(rows[i], j) - sum / n) * (value(rows[i], j) - sum / n);
      mean[j] = 0.9 * mean[j] + 0.1 * sum / n;
      var[j] = 0.9 * var[j] + 0.1 * squares / (n - 1);
    }
    batches++;
  }
  fclose(trace);
  ck_assert_int_eq(batches, 6);  // two epochs of 4, 4 and 2 samples
  must_succeed_in(dir, "./m encode --checkpoint c.safetensors --data d.csv --batch 4 -o codes.csv");
  double codes[ROWS * COLS];
  ck_assert_int_eq(read_numbers("codes.csv", codes, ROWS * COLS), ROWS * COLS);
  for (int r = 0; r < ROWS; r++)
    for (int j = 0; j < COLS; j++) {
      double expected = (value(r, j) - mean[j]) / sqrt(var[j] + 1e-5);
      ck_assert_msg(fabs(codes[r * COLS + j] - expected) <= 1e-4 * (1 + fabs(expected)),
                    "sample %d, unit %d: code %.7g, the running statistics give %.7g", r, j, codes[r * COLS + j],
                    expected);
    }
  // One sample alone gets the same code as in a batch: nothing of the batch is read.
  write_data("one.csv", 7, 1);
  must_succeed_in(dir, "./m encode --checkpoint c.safetensors --data one.csv -o one.csv.out.csv");
  double alone[COLS];
  ck_assert_int_eq(read_numbers("one.csv.out.csv", alone, COLS), COLS);
  for (int j = 0; j < COLS; j++) ck_assert_double_eq(alone[j], codes[7 * COLS + j]);
}
END_TEST

static const char *const trained_model =
    "input x: [3]\n"
    "net encoder = dense(4, tanh) -> batchnorm() -> dense(2)\n"
    "net decoder = dense(3)\n"
    "loss recon = mse(decoder(encoder(x)), x)\n"
    "train { batch 4  step minimize recon over encoder, decoder with adam(lr=0.01) }\n";

static bool same_file(const char *a, const char *b) {
  size_t na, nb;
  char *pa = path_in(dir, a), *pb = path_in(dir, b);
  char *x = read_whole_file(pa, &na), *y = read_whole_file(pb, &nb);
  bool same = na == nb && memcmp(x, y, na) == 0;
  free(x), free(y), free(pa), free(pb);
  return same;
}

START_TEST(checkpoints_carry_the_running_statistics_and_resume_restores_them) {
  write_in_dir("m.ae", trained_model);
  write_data("d.csv", 0, ROWS);
  must_succeed_in(dir, AEC " m.ae -o m");
  const char *common = "--data d.csv --test none --threads 2";
  char command[512];
  snprintf(command, sizeof command, "./m train %s --epochs 2 --checkpoint straight.safetensors", common);
  must_succeed_in(dir, command);
  snprintf(command, sizeof command, "./m train %s --epochs 1 --checkpoint one.safetensors", common);
  must_succeed_in(dir, command);
  snprintf(command, sizeof command, "./m train %s --epochs 2 --resume one.safetensors --checkpoint resumed.safetensors",
           common);
  must_succeed_in(dir, command);
  char *path = path_in(dir, "one.safetensors");
  char *checkpoint = read_whole_file(path, NULL);
  free(path);
  ck_assert_msg(strstr(checkpoint + 8, "\"encoder.batchnorm_1.running_mean\"") &&
                    strstr(checkpoint + 8, "\"encoder.batchnorm_1.running_var\"") &&
                    strstr(checkpoint + 8, "\"encoder.batchnorm_1.scale\"") &&
                    strstr(checkpoint + 8, "\"encoder.batchnorm_1.shift\""),
                "the checkpoint lacks the batchnorm's tensors");
  free(checkpoint);
  // The running statistics change the codes; a resume that started them
  // afresh (at 0 and 1) would end elsewhere than the straight run.
  ck_assert_msg(same_file("straight.safetensors", "resumed.safetensors"), "the resumed run ends elsewhere");
  must_succeed_in(dir, "./m encode --checkpoint one.safetensors --data d.csv -o one.csv");
  must_succeed_in(dir, "./m encode --checkpoint resumed.safetensors --data d.csv -o two.csv");
  ck_assert_msg(!same_file("one.csv", "two.csv"), "the second epoch changed no code");
  // The parameter count leaves the running statistics out.
  CommandResult r = run_in(dir, "./m summary");
  ck_assert_int_eq(r.status, 0);
  ck_assert_double_eq(figure(r.out, "params"), 3 * 4 + 4 + 2 * 4 + 4 * 2 + 2 + 2 * 3 + 3);
  ck_assert_msg(strstr(r.err, "Running statistics (not trained): 8"), "%s", r.err);
  command_result_free(&r);
}
END_TEST

// Each channel's statistics are summed by one thread in batch order: a conv
// model whose batchnorm is large enough to run on several threads trains to
// the same bits on one and on two.
static const char *const conv_model =
    "input x: [2, 16, 16]\n"
    "net encoder = conv(16, 3, relu) -> batchnorm() -> maxpool(2) -> conv(4, 3, tanh) -> batchnorm()\n"
    "net decoder = upsample(2) -> conv(2, 3, sigmoid)\n"
    "loss recon = bce(decoder(encoder(x)), x)\n"
    "train { batch 16  step minimize recon over encoder, decoder with adam(lr=0.01) }\n";

START_TEST(the_statistics_do_not_depend_on_the_threads) {
  remove_tree(dir);
  free(dir);
  dir = make_program_dir("batchnorm", conv_model, 40, 2 * 16 * 16);
  must_succeed_in(dir, "./m train --data train.csv --test none --epochs 1 --threads 1 --checkpoint one.safetensors");
  must_succeed_in(dir, "./m train --data train.csv --test none --epochs 1 --threads 2 --checkpoint two.safetensors");
  ck_assert_msg(same_file("one.safetensors", "two.safetensors"), "one and two threads train apart");
}
END_TEST

// --mpi gives each process a share of the batch: batchnorm's statistics
// would be the share's, so aec refuses it at its place; without --mpi it builds.
START_TEST(mpi_refuses_batchnorm) {
  write_in_dir("m.ae", trained_model);
  CommandResult r = run_in(dir, AEC " m.ae --mpi -o m.c");
  ck_assert_int_ne(r.status, 0);
  ck_assert_msg(strstr(r.err, "m.ae:2:33: error: batchnorm reads the mean and variance of each unit or channel of the "
                              "whole batch, but under --mpi each process holds only its share of the batch; build "
                              "this model without --mpi, or leave batchnorm out"),
                "%s", r.err);
  int errors = 0;
  for (const char *p = strstr(r.err, "error:"); p; p = strstr(p + 1, "error:")) errors++;
  ck_assert_msg(errors == 1, "one batchnorm, one message:\n%s", r.err);
  command_result_free(&r);
  must_succeed_in(dir, AEC " m.ae -o m.c");
}
END_TEST

Suite *batchnorm_suite(void) {
  Suite *s = suite_create("batchnorm");
  TCase *t = tcase_create("batchnorm");
  tcase_set_timeout(t, 120);
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_add_test(t, inference_normalizes_with_the_running_statistics_of_the_batches);
  tcase_add_test(t, checkpoints_carry_the_running_statistics_and_resume_restores_them);
  tcase_add_test(t, the_statistics_do_not_depend_on_the_threads);
  tcase_add_test(t, mpi_refuses_batchnorm);
  suite_add_tcase(s, t);
  return s;
}
