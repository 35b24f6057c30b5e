// test_conv.c — convolutional models end to end: parameter counts as Keras
// gives them, checkpoint layouts as PyTorch expects them, shape errors, and
// `filters` on a first conv layer. (Their gradients are in test_gradcheck.c;
// -O0 against -O2 in test_optimize.c, which trains every example.)
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

#define AEC AEC_BUILD_DIR "/aec"
#define EXAMPLES AEC_SOURCE_DIR "/examples"

static char *dir;

static void setup(void) { dir = make_temp_dir("conv"); }
static void teardown(void) {
  remove_tree(dir);
  free(dir);
}

static CommandResult in_dir(const char *command) { return run_in(dir, command); }
static void must_succeed(const char *command) { must_succeed_in(dir, command); }

// The Keras Conv2DTranspose denoiser: 320 + 9248 + 9248 + 9248 + 289.
START_TEST(denoiser_counts_parameters_like_keras) {
  must_succeed(AEC " " EXAMPLES "/conv_denoise.ae -o denoise");
  CommandResult r = in_dir("./denoise summary");
  ck_assert_int_eq(r.status, 0);
  ck_assert_double_eq(figure(r.out, "params"), 28353);
  ck_assert_ptr_nonnull(strstr(r.err, "decoder.deconv_2"));
  ck_assert_ptr_nonnull(strstr(r.err, "(None, 32, 28, 28)"));
  command_result_free(&r);
}
END_TEST

// conv.ae's shapes: 28 -> 14 -> 7 -> 4 (pad=same pooling rounds up) and back,
// through a valid conv (16 -> 14).
START_TEST(conv_example_shapes_and_counts) {
  must_succeed(AEC " " EXAMPLES "/conv.ae -o conv");
  CommandResult r = in_dir("./conv summary");
  ck_assert_int_eq(r.status, 0);
  ck_assert_double_eq(figure(r.out, "params"), 160 + 1160 + 584 + 584 + 584 + 1168 + 145);
  ck_assert_ptr_nonnull(strstr(r.err, "(None, 8, 4, 4)"));
  ck_assert_ptr_nonnull(strstr(r.err, "(None, 16, 14, 14)"));
  command_result_free(&r);
}
END_TEST

// Kernels are stored as PyTorch lays them out: Conv2d [out, in, k, k],
// ConvTranspose2d [in, out, k, k].
START_TEST(kernels_have_pytorch_layouts) {
  must_succeed(AEC " " EXAMPLES "/unpool.ae -o unpool");
  CommandResult r = in_dir("./unpool describe");
  ck_assert_int_eq(r.status, 0);
  ck_assert_ptr_nonnull(strstr(r.out, "\"name\": \"autoencoder.conv_2.kernel\", \"node\""));
  ck_assert_msg(strstr(r.out, "\"shape\": [32, 16, 3, 3]") != NULL, "conv_2 kernel:\n%s", r.out);
  ck_assert_msg(strstr(r.out, "\"shape\": [32, 16, 3, 3]") != strstr(r.out, "\"shape\": [16, 1, 3, 3]"), "%s", r.out);
  command_result_free(&r);
  must_succeed(AEC " " EXAMPLES "/conv_denoise.ae -o denoise");
  r = in_dir("./denoise describe | grep -c '\"shape\": \\[32, 32, 3, 3\\], \"kernel\": true'");
  ck_assert_str_eq(r.out, "3\n");
  command_result_free(&r);
}
END_TEST

static void expect_error(const char *source, const char *message) {
  char path[700];
  snprintf(path, sizeof path, "%s/bad.ae", dir);
  write_file(path, source, strlen(source));
  CommandResult r = in_dir(AEC " bad.ae -o bad.c");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, message) != NULL, "expected '%s' in:\n%s", message, r.err);
  command_result_free(&r);
}

START_TEST(shape_errors_are_clear) {
  expect_error("input x: [784]\nnet e = conv(8, 3, relu)\nloss l = mean(e(x))\n",
               "conv needs an image input of shape [channels, height, width] per sample, but got [784]; add reshape");
  expect_error("input x: [1, 28, 28]\nnet e = conv(8, 3) -> dense(4)\nloss l = mean(e(x))\n",
               "add flatten() before it");
  expect_error("input x: [1, 28, 28]\nnet e = conv(8, 3, pad=middle)\nloss l = mean(e(x))\n",
               "pad must be same or valid, not 'middle'");
  expect_error("input x: [1, 6, 6]\nnet a(x) {\n  p = maxpool(x, 2)\n  return unpool(conv(p, 2, 3), p)\n}\n"
               "loss l = mean(a(x))\n",
               "unpool: the value has shape [2, 3, 3] but the maxpool's output has [1, 3, 3]");
  expect_error("input x: [1, 6, 6]\nnet a = conv(2, 3) -> unpool(x)\nloss l = mean(a(x))\n",
               "unpool: its second argument must be a value made by maxpool");
  expect_error("input x: [1, 6, 6]\nnet a = flatten() -> reshape([5, 7])\nloss l = mean(a(x))\n",
               "reshape: a value of shape [36] (36 elements per sample) cannot become [5, 7]");
}
END_TEST

START_TEST(filters_draws_the_first_conv) {
  must_succeed("head -c 0 /dev/null && " AEC " " EXAMPLES "/conv_denoise.ae -o denoise");
  must_succeed("./denoise train --epochs 0 --checkpoint c.safetensors");
  CommandResult r = in_dir("./denoise filters --checkpoint c.safetensors -o f.png && head -c 8 f.png | od -An -c | tr -d ' \\n'");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, "211PNG\\r\\n032\\n");
  ck_assert_ptr_nonnull(strstr(r.err, "encoder.conv_1.kernel"));
  command_result_free(&r);
}
END_TEST

Suite *conv_suite(void) {
  Suite *s = suite_create("conv");
  TCase *t = tcase_create("convolutional models");
  tcase_set_timeout(t, 240);
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_add_test(t, denoiser_counts_parameters_like_keras);
  tcase_add_test(t, conv_example_shapes_and_counts);
  tcase_add_test(t, kernels_have_pytorch_layouts);
  tcase_add_test(t, shape_errors_are_clear);
  tcase_add_test(t, filters_draws_the_first_conv);
  suite_add_tcase(s, t);
  return s;
}
