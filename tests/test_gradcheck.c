// test_gradcheck.c — every differentiable op's gradient, through the
// generated code: every model in tests/gradcheck/ is compiled in double
// precision (aec --dtype f64) and its `gradcheck` command compares every
// step's analytic gradients with central finite differences, on 2 threads.
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

// Largest relative error accepted in double precision. The central
// differences (h = 1e-6) carry about 1e-10 of absolute rounding error, and
// the runtime divides by at least 1e-5, so correct gradients score up to
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

// Every model in tests/gradcheck/, in name order: adding an op's model there
// is all it takes to check its gradient. The data has as many columns as one
// sample of the model's input has values (`input x: [2, 7, 5]`: 70).
enum { MAX_MODELS = 128 };
static char model_names[MAX_MODELS][64];
static int n_models;

static int input_values(const char *name) {
  char path[4096], line[512];
  snprintf(path, sizeof path, "%s/tests/gradcheck/%s.ae", AEC_SOURCE_DIR, name);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "cannot read %s", path);
  int values = 0;
  while (!values && fgets(line, sizeof line, f)) {
    const char *open = strncmp(line, "input ", 6) == 0 ? strchr(line, '[') : NULL;
    for (const char *p = open; p && *p && *p != ']'; p++) {
      char *end;
      long d = strtol(p + 1, &end, 10);
      if (end == p + 1) continue;
      values = values ? values * (int)d : (int)d;
      p = end - 1;
    }
  }
  fclose(f);
  ck_assert_msg(values > 0, "%s: no `input NAME: [sizes]` line", path);
  return values;
}

static int compare_names(const void *a, const void *b) { return strcmp(a, b); }

static void find_models(void) {
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/gradcheck", AEC_SOURCE_DIR);
  DIR *dir = opendir(path);
  if (!dir) return;  // the test below then fails, naming the folder
  for (struct dirent *entry; (entry = readdir(dir)) && n_models < MAX_MODELS;) {
    size_t length = strlen(entry->d_name);
    if (length > 3 && length < sizeof model_names[0] + 3 && strcmp(entry->d_name + length - 3, ".ae") == 0)
      snprintf(model_names[n_models++], sizeof model_names[0], "%.*s", (int)(length - 3), entry->d_name);
  }
  closedir(dir);
  qsort(model_names, (size_t)n_models, sizeof model_names[0], compare_names);
}

START_TEST(every_model_in_tests_gradcheck) {
  ck_assert_msg(n_models >= 15, "only %d models in tests/gradcheck/", n_models);
  check_model_cols(model_names[_i], input_values(model_names[_i]));
}
END_TEST

// The largest gradcheck error of a model whose generated C had the text
// `find` (a grep pattern) replaced by a sed expression, compiled in f64.
static double sabotaged_error(const char *model, const char *find, const char *sed) {
  write_data();
  CommandResult r = run_command("cd %s && %s/aec %s/tests/gradcheck/%s.ae --dtype f64 -o model.c && "
                                "grep -q '%s' model.c && sed -i '%s' model.c && "
                                "${CC:-cc} $AEC_CFLAGS -std=gnu11 -fopenmp -I%s/include model.c %s/libaert_f64.a $(pkg-config --libs cairo zlib) -lm -o broken",
                                work_dir, AEC_BUILD_DIR, AEC_SOURCE_DIR, model, find, sed, AEC_BUILD_DIR, AEC_BUILD_DIR);
  ck_assert_msg(r.status == 0, "could not build the sabotaged model:\n%s", r.err);
  command_result_free(&r);
  char *program = NULL, *log = NULL;
  ck_assert_int_ge(asprintf(&program, "%s/broken", work_dir), 0);
  double error = max_gradcheck_error(program, &log);
  free(log);
  free(program);
  remove_tree(work_dir);
  return error;
}

// The check itself must be able to fail: a wrong factor in the emitted MSE
// gradient is caught.
START_TEST(a_wrong_gradient_is_caught) {
  double error = sabotaged_error("arithmetic", "2 \\* (a\\[i\\] - b\\[i\\])",
                                 "s/2 \\* (a\\[i\\] - b\\[i\\])/2.02 * (a[i] - b[i])/");
  ck_assert_msg(error > 1e-3, "a 1%% error in mse's gradient went unnoticed (error %g)", error);
}
END_TEST

// The second-order rules are checked too: a 2% error in sigmoid's second
// derivative (sigmoid_grad2, which only a loss using grad() reaches) is
// caught in second_activations.ae.
START_TEST(a_wrong_second_derivative_is_caught) {
  double error = sabotaged_error("second_activations", "(1 - 2 \\* c\\[i\\]);  // sigmoid_grad2",
                                 "s|(1 - 2 \\* c\\[i\\]);  // sigmoid_grad2|(1 - 2.04 * c[i]);|");
  ck_assert_msg(error > 1e-3, "a 2%% error in sigmoid's second derivative went unnoticed (error %g)", error);
}
END_TEST

// jacobian_norm's closed form (act(dense(x))) and its one-pass-per-element
// form give the same value: the same layer, once as it is and once behind
// `* 1`, which the closed form does not recognize.
START_TEST(jacobian_norm_closed_form_matches_the_rows) {
  write_data();
  char *model = NULL;
  ck_assert_int_ge(asprintf(&model, "%s/both.ae", work_dir), 0);
  const char *text = "input x: [6]\nnet encoder = dense(4, softplus)\nnet decoder = dense(6, sigmoid)\n"
                     "code = encoder(x)\nloss recon = bce(decoder(code), x)\n"
                     "loss closed = jacobian_norm(code, x)\nloss rows = jacobian_norm(code * 1, x)\n"
                     "train { step minimize recon over encoder, decoder with adam() }\n";
  write_file(model, text, strlen(text));
  CommandResult r = run_command("cd %s && %s/aec both.ae --dtype f64 -o both && ./both train --data data.csv --test none "
                                "--epochs 1 --batch 4 && ./both eval --data data.csv",
                                work_dir, AEC_BUILD_DIR);
  ck_assert_msg(r.status == 0, "%s", r.err);
  const char *closed = strstr(r.out, "\nclosed "), *rows = strstr(r.out, "\nrows ");
  ck_assert_msg(closed && rows, "no closed and rows figures in:\n%s", r.out);
  double a = strtod(closed + 8, NULL), b = strtod(rows + 6, NULL);
  ck_assert_msg(a > 0.01 && fabs(a - b) <= 1e-12 * a, "closed form %.17g, rows %.17g", a, b);
  command_result_free(&r);
  r = run_command("%s/aec %s --dump-ir | grep -c column_squares", AEC_BUILD_DIR, model);
  ck_assert_msg(r.status == 0 && atoi(r.out) >= 1, "the closed form was not written:\n%s", r.out);
  command_result_free(&r);
  free(model);
  remove_tree(work_dir);
}
END_TEST

Suite *gradcheck_suite(void) {
  Suite *s = suite_create("gradcheck");
  TCase *t = tcase_create("finite differences");
  tcase_set_timeout(t, 120);
  find_models();
  tcase_add_loop_test(t, every_model_in_tests_gradcheck, 0, n_models > 0 ? n_models : 1);
  tcase_add_test(t, a_wrong_gradient_is_caught);
  tcase_add_test(t, a_wrong_second_derivative_is_caught);
  tcase_add_test(t, jacobian_norm_closed_form_matches_the_rows);
  suite_add_tcase(s, t);
  return s;
}
