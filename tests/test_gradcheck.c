// test_gradcheck.c — every differentiable op's gradient, through the
// generated code: each model in tests/gradcheck/ is compiled in double
// precision (aec --dtype f64) and its `gradcheck` command compares every
// step's analytic gradients with central finite differences, on 2 threads.
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

// Largest relative error accepted in double precision. The central
// differences (h = 1e-6) carry about 1e-10 of absolute rounding error, and
// the runtime divides by at least 1e-6, so correct gradients score up to
// ~1e-5; a wrong factor or sign scores 1e-3 and more.
#define GRADCHECK_TOLERANCE 1e-4

static char *work_dir;
static char *data_csv;

// 16 samples of `cols` values in (0.05, 0.95), the same every run.
static void write_data_cols(int cols) {
  work_dir = make_temp_dir("gradcheck");
  ck_assert_int_ge(asprintf(&data_csv, "%s/data.csv", work_dir), 0);
  static char text[16 * 128 * 8];
  size_t used = 0;
  ck_assert_int_le(cols, 128);
  for (int row = 0; row < 16; row++)
    for (int col = 0; col < cols; col++)
      used += (size_t)snprintf(text + used, sizeof text - used, "%.4f%s", 0.05 + 0.9 * fmod(0.37 * row + 0.61 * col * col + 0.13, 1.0),
                               col == cols - 1 ? "\n" : ",");
  write_file(data_csv, text, used);
}

static void write_data(void) { write_data_cols(6); }

// Compiles a gradcheck model in f64 and returns the path of its program.
static char *build_model(const char *name) {
  char *program = NULL;
  ck_assert_int_ge(asprintf(&program, "%s/%s", work_dir, name), 0);
  CommandResult r = run_command("%s/aec %s/tests/gradcheck/%s.ae --dtype f64 -o %s", AEC_BUILD_DIR, AEC_SOURCE_DIR,
                                name, program);
  ck_assert_msg(r.status == 0, "aec failed on %s.ae:\n%s", name, r.err);
  command_result_free(&r);
  return program;
}

// Runs gradcheck and returns the largest error over the steps; fails the
// test when no step was checked.
static double max_gradcheck_error(const char *program, char **log) {
  CommandResult r = run_command("OMP_NUM_THREADS=2 %s gradcheck --data %s --batch 5 --samples 40", program, data_csv);
  ck_assert_msg(r.status == 0, "%s gradcheck failed:\n%s", program, r.err);
  double worst = 0;
  int steps = 0;
  for (const char *line = r.out; line && *line;) {
    if (strncmp(line, "gradcheck.", 10) == 0) {
      const char *value = strchr(line, ' ');
      ck_assert_ptr_nonnull(value);
      double error = strtod(value + 1, NULL);
      if (!(error <= worst)) worst = error;  // NaN wins
      steps++;
    }
    const char *next = strchr(line, '\n');
    line = next ? next + 1 : NULL;
  }
  ck_assert_msg(steps > 0, "no gradcheck figures in:\n%s", r.out);
  *log = strdup(r.err);
  command_result_free(&r);
  return worst;
}

static void check_model_cols(const char *name, int cols) {
  write_data_cols(cols);
  char *program = build_model(name), *log = NULL;
  double error = max_gradcheck_error(program, &log);
  ck_assert_msg(error < GRADCHECK_TOLERANCE, "%s: gradient error %g\n%s", name, error, log);
  free(log);
  free(program);
  remove_tree(work_dir);
}

static void check_model(const char *name) { check_model_cols(name, 6); }

START_TEST(activations) { check_model("activations"); }
END_TEST
START_TEST(probabilities) { check_model("probabilities"); }
END_TEST
START_TEST(arithmetic) { check_model("arithmetic"); }
END_TEST
START_TEST(shared_weights) { check_model("shared"); }
END_TEST
START_TEST(targets_and_several_steps) { check_model("targets"); }
END_TEST
START_TEST(corruption) { check_model("corruption"); }
END_TEST
START_TEST(dropout) { check_model("dropout"); }
END_TEST
START_TEST(sparsity) { check_model("sparsity"); }
END_TEST
START_TEST(priors_and_shared_values) { check_model("adversarial"); }
END_TEST

// Convolutional models: images of [2, 7, 5] (70 values) or [1, 9, 8] (72).
START_TEST(conv_and_deconv) { check_model_cols("conv", 70); }
END_TEST
START_TEST(strided_conv_and_deconv) { check_model_cols("conv_strided", 72); }
END_TEST
START_TEST(conv_epilogues) { check_model_cols("conv_epilogue", 70); }
END_TEST
START_TEST(pooling_and_upsampling) { check_model_cols("pool", 70); }
END_TEST
START_TEST(max_unpooling) { check_model_cols("unpool", 70); }
END_TEST
START_TEST(maxpool_gradients_fused_with_activations) { check_model_cols("pool_gradient", 72); }
END_TEST

// The check itself must be able to fail: a wrong factor in the emitted MSE
// gradient is caught.
START_TEST(a_wrong_gradient_is_caught) {
  write_data();
  CommandResult r = run_command("cd %s && %s/aec %s/tests/gradcheck/arithmetic.ae --dtype f64 -o model.c && "
                                "grep -q '2 \\* (a\\[i\\] - b\\[i\\])' model.c && "
                                "sed -i 's/2 \\* (a\\[i\\] - b\\[i\\])/2.02 * (a[i] - b[i])/' model.c && "
                                "${CC:-cc} $AEC_CFLAGS -std=gnu11 -fopenmp -I%s/include model.c %s/libaert_f64.a $(pkg-config --libs cairo zlib) -lm -o broken",
                                work_dir, AEC_BUILD_DIR, AEC_SOURCE_DIR, AEC_BUILD_DIR, AEC_BUILD_DIR);
  ck_assert_msg(r.status == 0, "could not build the sabotaged model:\n%s", r.err);
  command_result_free(&r);
  char *program = NULL, *log = NULL;
  ck_assert_int_ge(asprintf(&program, "%s/broken", work_dir), 0);
  double error = max_gradcheck_error(program, &log);
  ck_assert_msg(error > 1e-3, "a 1%% error in mse's gradient went unnoticed (error %g)", error);
  free(log);
  free(program);
  remove_tree(work_dir);
}
END_TEST

Suite *gradcheck_suite(void) {
  Suite *s = suite_create("gradcheck");
  TCase *t = tcase_create("finite differences");
  tcase_set_timeout(t, 120);
  tcase_add_test(t, activations);
  tcase_add_test(t, probabilities);
  tcase_add_test(t, arithmetic);
  tcase_add_test(t, shared_weights);
  tcase_add_test(t, targets_and_several_steps);
  tcase_add_test(t, corruption);
  tcase_add_test(t, dropout);
  tcase_add_test(t, sparsity);
  tcase_add_test(t, priors_and_shared_values);
  tcase_add_test(t, conv_and_deconv);
  tcase_add_test(t, strided_conv_and_deconv);
  tcase_add_test(t, conv_epilogues);
  tcase_add_test(t, pooling_and_upsampling);
  tcase_add_test(t, max_unpooling);
  tcase_add_test(t, maxpool_gradients_fused_with_activations);
  tcase_add_test(t, a_wrong_gradient_is_caught);
  suite_add_tcase(s, t);
  return s;
}
