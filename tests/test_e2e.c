// test_e2e.c — the whole path: `aec` compiles .ae files into programs that
// train on Fashion-MNIST, evaluate, summarize and draw; bad files of every
// kind end in one clear message and a non-zero exit.
#define _GNU_SOURCE
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests.h"

#define AEC AEC_BUILD_DIR "/aec"
#define EXAMPLES AEC_SOURCE_DIR "/examples"

static char *dir;

static void setup(void) { dir = make_temp_dir("e2e"); }
static void teardown(void) {
  remove_tree(dir);
  free(dir);
}

static CommandResult in_dir(const char *command) { return run_in(dir, command); }
static void must_succeed(const char *command) { must_succeed_in(dir, command); }

static bool file_exists(const char *name) {
  char *path = NULL;
  ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
  struct stat st;
  bool exists = stat(path, &st) == 0;
  free(path);
  return exists;
}

// Trains an example for one epoch and returns the final test loss.
static double train_one_epoch(const char *example) {
  char command[1024];
  snprintf(command, sizeof command, "%s %s/%s.ae -o %s", AEC, EXAMPLES, example, example);
  must_succeed(command);
  snprintf(command, sizeof command, "./%s train --epochs 1 --checkpoint %s.safetensors", example, example);
  CommandResult r = in_dir(command);
  ck_assert_msg(r.status == 0, "training %s failed:\n%s", example, r.err);
  ck_assert_msg(strstr(r.out, "epoch 1\n") != NULL, "no `epoch 1` figure:\n%s", r.out);
  double loss = figure(r.out, "test.recon");
  double speed = figure(r.out, "samples_per_s");
  ck_assert_msg(speed > 0, "no samples_per_s figure:\n%s", r.out);
  command_result_free(&r);
  return loss;
}

START_TEST(simple_trains_evaluates_and_draws) {
  double loss = train_one_epoch("simple");
  ck_assert_msg(loss < 0.36, "simple.ae: test BCE after 1 epoch is %g, expected < 0.36", loss);
  ck_assert(file_exists("simple.safetensors"));
  // eval on the checkpoint reproduces the test loss train reported.
  CommandResult r = in_dir("./simple eval --checkpoint simple.safetensors");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_double_eq_tol(figure(r.out, "recon"), loss, 1e-6);
  command_result_free(&r);
  must_succeed("./simple reconstruct --checkpoint simple.safetensors -o grid.png");
  r = in_dir("head -c 8 grid.png | od -An -c | tr -d ' \\n'");
  ck_assert_str_eq(r.out, "211PNG\\r\\n032\\n");
  command_result_free(&r);
}
END_TEST

START_TEST(deep_trains) {
  double loss = train_one_epoch("deep");
  ck_assert_msg(loss < 0.36, "deep.ae: test BCE after 1 epoch is %g, expected < 0.36", loss);
}
END_TEST

START_TEST(summary_counts_parameters_like_keras) {
  must_succeed(AEC " " EXAMPLES "/deep.ae -o deep");
  CommandResult r = in_dir("./deep summary");
  ck_assert_int_eq(r.status, 0);
  // 784-128-64-32-64-128-784 with biases, as Keras counts them.
  ck_assert_double_eq(figure(r.out, "params"), 222384);
  ck_assert_double_eq(figure(r.out, "flops_per_sample"), 2.0 * (784 * 128 + 128 * 64 + 64 * 32) * 2 + 128 + 64 + 32 + 64 + 128 + 784);
  ck_assert_ptr_nonnull(strstr(r.err, "encoder.dense_2"));
  command_result_free(&r);
}
END_TEST

START_TEST(param_overrides_with_D) {
  must_succeed(AEC " " EXAMPLES "/simple.ae -D code=8 -o simple8");
  CommandResult r = in_dir("./simple8 summary");
  ck_assert_double_eq(figure(r.out, "params"), 784 * 8 + 8 + 8 * 784 + 784);
  command_result_free(&r);
  r = in_dir(AEC " " EXAMPLES "/simple.ae -D width=8 -o x.c");
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "-D width: the file has no 'param width'"));
  command_result_free(&r);
}
END_TEST

// time-kernels times the products of every step on one batch, repeated:
// each repeat takes at least the best one's time, and the best rate is at
// least the median; a count below 1 is a usage error.
START_TEST(time_kernels_times_the_products) {
  must_succeed(AEC " " EXAMPLES "/simple.ae -o simple");
  CommandResult r = in_dir("./simple time-kernels --batch 64 --count 3 --threads 1");
  ck_assert_msg(r.status == 0, "%s", r.err);
  double best = figure(r.out, "gemm_gflops_best"), median = figure(r.out, "gemm_gflops_median");
  double best_seconds = figure(r.out, "gemm_seconds_best"), all_seconds = figure(r.out, "gemm_seconds");
  ck_assert_msg(median > 0 && best >= median, "best %g, median %g GFLOP/s", best, median);
  ck_assert_msg(best_seconds > 0 && all_seconds >= 3 * best_seconds * (1 - 1e-6), "3 repeats took %g s, the best %g s",
                all_seconds, best_seconds);
  ck_assert_ptr_nonnull(strstr(r.err, "compute_encoder_dense_1_relu"));
  command_result_free(&r);
  r = in_dir("./simple time-kernels --count 0");
  ck_assert_int_eq(r.status, 2);
  ck_assert_ptr_nonnull(strstr(r.err, "--count"));
  command_result_free(&r);
}
END_TEST

// The generated C is warning-free in both element types, with and without
// -march=native, whole and in the two halves aec compiles at once
// (-DAEC_PART=1 and 2), which link into a program.
START_TEST(generated_c_is_warning_free) {
  static const char *const flags[] = {"-O2", "-O3 -march=native"};
  static const char *const dtypes[] = {"f32", "f64"};
  static const char *const parts[] = {"", "-DAEC_PART=1", "-DAEC_PART=2"};
  for (int d = 0; d < 2; d++) {
    char command[1024];
    snprintf(command, sizeof command, "%s %s/deep.ae --dtype %s -o deep.c", AEC, EXAMPLES, dtypes[d]);
    must_succeed(command);
    for (int f = 0; f < 2; f++)
      for (int p = 0; p < 3; p++) {
        snprintf(command, sizeof command,
                 "cc -std=gnu11 -fopenmp -Wall -Wextra -Werror %s %s -I%s/include -c deep.c -o deep%d.o", flags[f],
                 parts[p], AEC_BUILD_DIR, p);
        must_succeed(command);
      }
    // The halves hold every function once: they link (a kernel missing from
    // both, or defined in both, would not).
    // $AEC_CFLAGS: under make check-asan the runtime is instrumented, and the link needs the sanitizers' libraries.
    snprintf(command, sizeof command, "cc -fopenmp $AEC_CFLAGS deep1.o deep2.o %s/%s -lcairo -lz -lmvec -lm -o halves", AEC_BUILD_DIR,
             d ? "libaert_f64.a" : "libaert.a");
    must_succeed(command);
  }
  ck_assert(!file_exists("deep"));
  ck_assert(file_exists("halves"));
}
END_TEST

// -o NAME.c writes C only; any other -o compiles, and leaves no C behind.
START_TEST(output_kinds) {
  must_succeed(AEC " " EXAMPLES "/simple.ae -o model.c");
  ck_assert(file_exists("model.c"));
  ck_assert(!file_exists("model"));
  must_succeed("echo 'int keep;' > prog.c && " AEC " " EXAMPLES "/simple.ae -o prog");
  ck_assert(file_exists("prog"));
  CommandResult r = in_dir("cat prog.c && ls | grep -c aec- || true");
  ck_assert_str_eq(r.out, "int keep;\n0\n");  // a user's file of the same name is untouched
  command_result_free(&r);
  // --keep-c (gcc's -save-temps) leaves the program's C beside it, and its build line works as printed.
  must_succeed(AEC " " EXAMPLES "/simple.ae -o kept --keep-c && " AEC " " EXAMPLES "/simple.ae -o saved -save-temps");
  ck_assert(file_exists("kept") && file_exists("kept.c") && file_exists("saved.c"));
  r = in_dir("grep -c 'pkg-config --cflags --libs aert' kept.c; ls | grep -c aec- || true");
  ck_assert_str_eq(r.out, "1\n0\n");
  command_result_free(&r);
}
END_TEST

// Resuming from epoch 1 to 2 gives the same weights, bit for bit, as
// training 2 epochs at once.
// Each optimizer (runtime/aert_optimizers.def) saves its state and step count
// in the checkpoint: two epochs, and one epoch then one more resumed, end in
// the same bytes.
static const char *const resumed_optimizers[] = {
    "adam(lr=0.01)", "adamw(lr=0.01, weight_decay=0.1)", "rmsprop(lr=0.01)", "rmsprop(lr=0.01, momentum=0.9)",
    "sgd(lr=0.1, momentum=0.9)"};

START_TEST(resume_continues_exactly) {
  char text[1 << 16];
  size_t used = 0;
  for (int row = 0; row < 300; row++)
    for (int col = 0; col < 8; col++)
      used += (size_t)snprintf(text + used, sizeof text - used, "%.3f%s", fmod(row * 0.173 + col * 0.31, 1.0),
                               col == 7 ? "\n" : ",");
  char path[600];
  snprintf(path, sizeof path, "%s/data.csv", dir);
  write_file(path, text, used);
  snprintf(path, sizeof path, "%s/tiny.ae", dir);
  char model[600];
  snprintf(model, sizeof model,
           "input x: [8]\nnet encoder = dense(3, tanh)\nnet decoder = dense(8, sigmoid)\n"
           "loss recon = bce(decoder(encoder(x)), x)\n"
           "train { data \"data.csv\" test \"data.csv\" batch 32 step minimize recon over encoder, decoder with %s }\n",
           resumed_optimizers[_i]);
  write_file(path, model, strlen(model));
  must_succeed(AEC " tiny.ae -o tiny");
  must_succeed("./tiny train --epochs 2 --checkpoint straight.safetensors");
  must_succeed("./tiny train --epochs 1 --checkpoint resumed.safetensors");
  must_succeed("./tiny train --epochs 2 --resume resumed.safetensors --checkpoint resumed.safetensors");
  must_succeed("cmp straight.safetensors resumed.safetensors");
  must_succeed("./tiny train --epochs 1 --checkpoint other.safetensors --seed 2");
  CommandResult r = in_dir("cmp -s straight.safetensors other.safetensors");
  ck_assert_int_ne(r.status, 0);
  command_result_free(&r);
}
END_TEST

// A checkpoint names each step's optimizer: resuming it under another
// optimizer whose state has the same size (sgd's velocity, rmsprop's
// square_avg) starts that optimizer fresh, with a note, rather than reading
// one's state as the other's.
START_TEST(resuming_under_another_optimizer_starts_it_fresh) {
  char path[600], model[600];
  snprintf(path, sizeof path, "%s/data.csv", dir);
  const char *data = "0.1,0.2,0.3,0.4\n0.9,0.8,0.7,0.6\n0.5,0.5,0.5,0.5\n0.2,0.4,0.6,0.8\n";
  write_file(path, data, strlen(data));
  const char *optimizers[] = {"sgd(lr=0.1, momentum=0.9)", "rmsprop(lr=0.01)"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/m%d.ae", dir, i);
    snprintf(model, sizeof model,
             "input x: [4]\nnet f = dense(4, sigmoid)\nloss recon = mse(f(x), x)\n"
             "train { data \"data.csv\" test \"data.csv\" batch 2 step minimize recon over f with %s }\n",
             optimizers[i]);
    write_file(path, model, strlen(model));
  }
  must_succeed(AEC " m0.ae -o m0 && " AEC " m1.ae -o m1");
  must_succeed("./m0 train --epochs 1 --checkpoint sgd.safetensors");
  CommandResult r = in_dir("./m1 train --epochs 2 --resume sgd.safetensors --checkpoint rms.safetensors");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(strstr(r.err, "sgd.safetensors: step 'recon' was trained with sgd, and this model's step uses rmsprop: "
                              "its optimizer starts fresh"),
                "no note in:\n%s", r.err);
  command_result_free(&r);
  r = in_dir("./m0 train --epochs 2 --resume sgd.safetensors --checkpoint sgd2.safetensors");
  ck_assert_msg(r.status == 0 && !strstr(r.err, "starts fresh"), "%s", r.err);
  command_result_free(&r);
}
END_TEST

// ------------------------------------------------------------ bad input
static void expect_failure(const char *command, const char *message) {
  CommandResult r = in_dir(command);
  ck_assert_msg(r.status != 0, "`%s` should have failed", command);
  ck_assert_msg(strstr(r.err, message) != NULL, "`%s`: expected\n  %s\nin\n%s", command, message, r.err);
  command_result_free(&r);
}

START_TEST(a_shape_error_is_one_clear_message) {
  const char *bad = "input x: [784]\nnet encoder = dense(32, relu)\nnet decoder = dense(700, sigmoid)\n"
                    "loss recon = bce(decoder(encoder(x)), x)\n";
  char path[600];
  snprintf(path, sizeof path, "%s/bad.ae", dir);
  write_file(path, bad, strlen(bad));
  CommandResult r = in_dir(AEC " bad.ae -o bad");
  ck_assert_int_eq(r.status, 1);
  ck_assert_str_eq(r.err,
                   "bad.ae:4:14: error: bce: the prediction has shape [700] but the target has shape [784]; make the "
                   "prediction's last layer produce [784], or compare with a target of shape [700] (a target may also "
                   "be a number)\n"
                   "    4 | loss recon = bce(decoder(encoder(x)), x)\n"
                   "      |              ^\n");
  ck_assert(!file_exists("bad"));
  command_result_free(&r);
  expect_failure(AEC " missing.ae -o m", "cannot read 'missing.ae'");
}
END_TEST

START_TEST(a_truncated_gzip_file_is_reported) {
  must_succeed(AEC " " EXAMPLES "/simple.ae -o simple");
  must_succeed("head -c 100000 /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz > cut-images-idx3-ubyte.gz");
  expect_failure("./simple train --data cut-images-idx3-ubyte.gz --test cut-images-idx3-ubyte.gz --epochs 1",
                 "cut-images-idx3-ubyte.gz");
  CommandResult r = in_dir("./simple train --data cut-images-idx3-ubyte.gz --epochs 1");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "truncated") != NULL, "%s", r.err);
  command_result_free(&r);
  expect_failure("./simple train --data nowhere.csv --epochs 1", "nowhere.csv");
}
END_TEST

START_TEST(a_checkpoint_cut_in_half_is_reported) {
  must_succeed(AEC " " EXAMPLES "/simple.ae -o simple");
  must_succeed("./simple train --epochs 0 --checkpoint whole.safetensors");
  must_succeed("head -c $(( $(stat -c %s whole.safetensors) / 2 )) whole.safetensors > half.safetensors");
  CommandResult r = in_dir("./simple eval --checkpoint half.safetensors");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "half.safetensors") != NULL, "%s", r.err);
  ck_assert_str_eq(r.out, "");
  command_result_free(&r);
  // A checkpoint of another model.
  must_succeed(AEC " " EXAMPLES "/deep.ae -o deep");
  expect_failure("./deep eval --checkpoint whole.safetensors", "whole.safetensors");
}
END_TEST

Suite *e2e_suite(void) {
  Suite *s = suite_create("e2e");
  TCase *train = tcase_create("training");
  tcase_set_timeout(train, 600);
  tcase_add_checked_fixture(train, setup, teardown);
  tcase_add_test(train, simple_trains_evaluates_and_draws);
  tcase_add_test(train, deep_trains);
  suite_add_tcase(s, train);
  TCase *resume = tcase_create("resume");
  tcase_set_timeout(resume, 300);
  tcase_add_checked_fixture(resume, setup, teardown);
  tcase_add_loop_test(resume, resume_continues_exactly, 0,
                      (int)(sizeof resumed_optimizers / sizeof *resumed_optimizers));
  tcase_add_test(resume, resuming_under_another_optimizer_starts_it_fresh);
  suite_add_tcase(s, resume);
  TCase *program = tcase_create("programs");
  tcase_set_timeout(program, 300);  // four compiles of deep.c: slow on a loaded machine
  tcase_add_checked_fixture(program, setup, teardown);
  tcase_add_test(program, summary_counts_parameters_like_keras);
  tcase_add_test(program, param_overrides_with_D);
  tcase_add_test(program, generated_c_is_warning_free);
  tcase_add_test(program, output_kinds);
  tcase_add_test(program, time_kernels_times_the_products);
  suite_add_tcase(s, program);
  TCase *bad = tcase_create("bad input");
  tcase_set_timeout(bad, 120);
  tcase_add_checked_fixture(bad, setup, teardown);
  tcase_add_test(bad, a_shape_error_is_one_clear_message);
  tcase_add_test(bad, a_truncated_gzip_file_is_reported);
  tcase_add_test(bad, a_checkpoint_cut_in_half_is_reported);
  suite_add_tcase(s, bad);
  return s;
}
