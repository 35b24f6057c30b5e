// test_dropout.c — dropout(v, p) in generated programs: in training a
// fraction of about p of the values is zeroed, every survivor is scaled by
// exactly 1/(1-p), and the zeros are where `train --dump-random` says the
// draws fell under p; at inference (encode) it is the identity. (Its gradient
// is in test_gradcheck.c, its lowering and p's range in test_compiler.c and
// tests/bad/dropout_p.ae.)
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

#define AEC AEC_BUILD_DIR "/aec"

static char *dir;

static void setup(void) { dir = make_temp_dir("dropout"); }
static void teardown(void) {
  remove_tree(dir);
  free(dir);
}

static void write_in_dir(const char *name, const char *text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  write_file(path, text, strlen(text));
}

enum { FEATURES = 1000, ROWS = 8, BATCH = 4 };

// Two losses over the same dropout of an input of ones, one step each (the
// steps of a batch see the same draws): `kept` is the mean of the output,
// (kept values) * 4/3 / (elements); `off_scale` is the mean of d * (d - 4/3),
// 0 exactly when every value is 0 or 4/3. The net f only gives the steps
// weights to train.
static const char *const fraction_model =
    "input x: [1000]\n"
    "net f = dense(1)\n"
    "d = dropout(x, 0.25)\n"
    "loss kept = mean(d) + 0 * mean(f(x))\n"
    "loss off_scale = mean(d * (d - 4 / 3)) + 0 * mean(f(x))\n"
    "train { batch 4  epochs 1\n"
    "        step minimize kept over f with sgd(lr=0.001)\n"
    "        step minimize off_scale over f with sgd(lr=0.001) }\n";

START_TEST(training_zeroes_about_p_and_scales_survivors_by_exactly_1_over_1_minus_p) {
  write_in_dir("m.ae", fraction_model);
  char *ones = malloc((size_t)ROWS * FEATURES * 2 + 1);
  ck_assert_ptr_nonnull(ones);
  size_t used = 0;
  for (int r = 0; r < ROWS; r++)
    for (int c = 0; c < FEATURES; c++) ones[used++] = '1', ones[used++] = c + 1 < FEATURES ? ',' : '\n';
  ones[used] = '\0';
  write_in_dir("ones.csv", ones);
  free(ones);
  must_succeed_in(dir, AEC " m.ae -o m");
  must_succeed_in(dir, "./m train --data ones.csv --test none --threads 1 --checkpoint c.safetensors --trace t.jsonl "
                       "--dump-random r");

  double losses[2 * ROWS / BATCH + 1];  // each batch's kept, off_scale
  char *trace = path_in(dir, "t.jsonl");
  ck_assert_int_eq(trace_losses(trace, losses, 2 * ROWS / BATCH + 1), 2 * ROWS / BATCH);
  free(trace);
  // The dropout node's uniform draws, one row a sample in batch order, after a 128-byte .npy header.
  CommandResult draws = run_in(dir, "ls r && od -An -v -t f4 -w4 -j128 r/d_dropout.uniform0.npy");
  ck_assert_msg(draws.status == 0, "no dump of the dropout's draws:\n%s%s", draws.out, draws.err);
  const char *values = strchr(draws.out, '\n');  // after `ls`'s one line
  ck_assert_msg(strncmp(draws.out, "d_dropout.uniform0.npy\n", 23) == 0, "unexpected dumps:\n%s", draws.out);
  for (int batch = 0; batch < ROWS / BATCH; batch++) {
    const double kept = losses[2 * batch], off_scale = losses[2 * batch + 1];
    ck_assert_msg(off_scale == 0, "batch %d: a value is neither 0 nor exactly 4/3 (mean d (d - 4/3) = %g)", batch + 1,
                  off_scale);
    double survivors = kept * 0.75 * BATCH * FEATURES;  // mean(d) = survivors * 4/3 / elements
    ck_assert_msg(fabs(survivors - round(survivors)) < 0.01, "batch %d: mean %.9g is not a count of 4/3s", batch + 1,
                  kept);
    double zeroed = 1 - survivors / (BATCH * FEATURES);
    ck_assert_msg(zeroed > 0.22 && zeroed < 0.28, "batch %d: %.4f of the values zeroed, not about 0.25", batch + 1,
                  zeroed);
    // The zeros are exactly the elements whose draw fell under p.
    int under_p = 0;
    for (int e = 0; e < BATCH * FEATURES; e++) {
      char *end = NULL;
      float u = strtof(values, &end);
      ck_assert_msg(end != values, "the dump ends early, at element %d of batch %d", e, batch + 1);
      under_p += u < 0.25f;
      values = end;
    }
    ck_assert_int_eq(under_p, BATCH * FEATURES - (int)round(survivors));
  }
  command_result_free(&draws);
}
END_TEST

// Values exact in binary and in %.9g, so `encode` must give them back unchanged.
static const char *const identity_data = "0.5,0.25,0.75,1\n0.125,0,0.375,0.625\n1,1,0.5,0.0625\n0.875,0.5,0.25,0.125\n";

START_TEST(encode_passes_a_dropout_code_through_unchanged) {
  write_in_dir("m.ae", "input x: [4]\n"
                       "code = dropout(x, 0.5)\n"
                       "net decoder = dense(4, sigmoid)\n"
                       "loss recon = mse(decoder(code), x)\n"
                       "train { batch 2  epochs 1  step minimize recon over decoder with adam(lr=0.01) }\n");
  write_in_dir("d.csv", identity_data);
  must_succeed_in(dir, AEC " m.ae -o m");
  must_succeed_in(dir, "./m train --data d.csv --test none --threads 1 --checkpoint c.safetensors");
  must_succeed_in(dir, "./m encode --checkpoint c.safetensors --data d.csv --threads 1 -o codes.csv");
  CommandResult codes = run_in(dir, "tail -n +2 codes.csv");
  ck_assert_msg(codes.status == 0, "%s", codes.err);
  const char *got = codes.out, *want = identity_data;
  for (int i = 0; i < 16; i++) {
    char *got_end = NULL, *want_end = NULL;
    double g = strtod(got, &got_end), w = strtod(want, &want_end);
    ck_assert_msg(got_end != got, "codes.csv ends early at value %d:\n%s", i, codes.out);
    ck_assert_msg(g == w, "code value %d is %.9g, but the input is %.9g:\n%s", i, g, w, codes.out);
    got = got_end + (*got_end == ',' || *got_end == '\n');
    want = want_end + 1;
  }
  command_result_free(&codes);
}
END_TEST

Suite *dropout_suite(void) {
  Suite *s = suite_create("dropout");
  TCase *t = tcase_create("dropout");
  tcase_set_timeout(t, 120);
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_add_test(t, training_zeroes_about_p_and_scales_survivors_by_exactly_1_over_1_minus_p);
  tcase_add_test(t, encode_passes_a_dropout_code_through_unchanged);
  suite_add_tcase(s, t);
  return s;
}
