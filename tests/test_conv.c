// test_conv.c — convolutional models end to end: parameter counts as Keras
// gives them, checkpoint layouts as PyTorch expects them, shape errors,
// `filters` on a first conv layer, `activations` on a small trained model and
// the receptive fields it reports, and what avgpool computes.
// (Their gradients are in test_gradcheck.c; -O0 against -O2 in
// test_optimize.c, which trains every example.)
#define _GNU_SOURCE
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
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

// n labelled 12x12 images: a bright 3x3 blob in one of four quadrants (the
// label), at a place that moves with the sample, on a dim background.
static void write_blobs(const char *name, int n) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  for (int i = 0; i < n; i++) {
    int label = i % 4, top = (label / 2) * 6 + (i / 4) % 4, left = (label % 2) * 6 + (i / 16) % 4;
    fprintf(f, "%d", label);
    for (int p = 0; p < 144; p++) {
      int r = p / 12, c = p % 12;
      bool on = r >= top && r < top + 3 && c >= left && c < left + 3;
      fprintf(f, ",%.2f", on ? 0.9 : 0.05 + 0.01 * ((p + i) % 5));
    }
    fprintf(f, "\n");
  }
  ck_assert_int_eq(fclose(f), 0);
}

static const char *blob_model =
    "input x: [1, 12, 12]\n"
    "net encoder = conv(16, 3, relu) -> maxpool(2) -> conv(16, 3, relu)\n"
    "net decoder = upsample(2) -> conv(1, 3, sigmoid)\n"
    "loss recon = bce(decoder(encoder(x)), x)\n"
    "train { data \"train.csv\" test \"test.csv\" batch 32 epochs 3\n"
    "        step minimize recon over encoder, decoder with adam(lr=0.01) }\n";

// The receptive field `activations` reports for a layer of the blob model.
static double receptive_field_of(const char *layer) {
  char command[512];
  snprintf(command, sizeof command,
           "./blobs activations --checkpoint blobs.safetensors --layer %s --threads 1 -o %s.png", layer, layer);
  CommandResult r = in_dir(command);
  ck_assert_msg(r.status == 0, "%s:\n%s", command, r.err);
  double height = figure(r.out, "receptive_field_height");
  ck_assert_double_eq(figure(r.out, "receptive_field_width"), height);
  command_result_free(&r);
  return height;
}

// After a short training: feature maps and strongest patches of the second
// conv, its figures, the picture's size (read back through cairo), and the
// receptive fields through conv (3), maxpool (+1), conv (+2 x 2) and
// upsample then conv (two of conv_2's units, 2 pixels apart: 8 + 2).
START_TEST(activations_draws_maps_and_receptive_fields) {
  write_blobs("train.csv", 200);
  write_blobs("test.csv", 60);
  char path[700];
  snprintf(path, sizeof path, "%s/blobs.ae", dir);
  write_file(path, blob_model, strlen(blob_model));
  must_succeed(AEC " blobs.ae -o blobs");
  must_succeed("./blobs train --threads 1 --checkpoint blobs.safetensors");
  CommandResult r = in_dir("./blobs activations --checkpoint blobs.safetensors --layer encoder.conv_2 --count 3 "
                           "--threads 1 -o maps.png");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(strstr(r.out, "layer encoder.conv_2\n") != NULL, "%s", r.out);
  ck_assert_double_eq(figure(r.out, "channels"), 16);
  ck_assert_double_eq(figure(r.out, "map_height"), 6);
  ck_assert_double_eq(figure(r.out, "map_width"), 6);
  ck_assert_double_eq(figure(r.out, "receptive_field_height"), 8);
  ck_assert_double_eq(figure(r.out, "samples_searched"), 60);
  double max = figure(r.out, "max_activation"), mean = figure(r.out, "mean_activation");
  ck_assert_msg(isfinite(max) && max > 0 && mean >= 0 && mean < max, "max %g, mean %g", max, mean);
  ck_assert_msg(figure(r.out, "constant_channels") < 16, "every channel is dead:\n%s", r.out);
  ck_assert_ptr_nonnull(strstr(r.err, "wrote maps.png"));
  command_result_free(&r);
  // Margins 16 + labels 130 + 17 columns of 64 + 6; title 44, two column heads
  // of 16, 3 sample rows of 64 + 6, the section's title 44, 4 rows of patches 64 + 14 + 6.
  int width, height;
  snprintf(path, sizeof path, "%s/maps.png", dir);
  ck_assert(read_png_size(path, &width, &height));
  ck_assert_int_eq(width, 2 * 16 + 130 + 17 * 70);
  ck_assert_int_eq(height, 2 * 16 + 44 + 2 * 16 + 3 * 70 + 44 + 4 * 84);
  ck_assert_double_eq(receptive_field_of("encoder.conv_1"), 3);
  ck_assert_double_eq(receptive_field_of("encoder.maxpool_1"), 4);
  ck_assert_double_eq(receptive_field_of("decoder.conv_1"), 10);
}
END_TEST

// The receptive fields the runtime maps through the description's windows
// (aert_receptive_field_of, which `activations` reports): a stride-2 conv
// (rows 2o .. 2o + 2), a 3x3 maxpool with pad=same (window 3o - 1 ..),
// the unpool back at its switches, and a stride-2 deconv, whose output row 4
// comes from the unpooled rows 1 and 2.
START_TEST(receptive_fields_follow_the_descriptions_windows) {
  static const char *model = "input x: [1, 8, 8]\n"
                             "net e(x) {\n"
                             "  c = conv(x, 2, 3, relu, stride=2)\n"
                             "  p = maxpool(c, 3, pad=same)\n"
                             "  return unpool(p, p)\n"
                             "}\n"
                             "net d = deconv(1, 3, sigmoid, stride=2)\n"
                             "loss r = mse(d(e(x)), x)\n";
  char path[700];
  snprintf(path, sizeof path, "%s/rf.ae", dir);
  write_file(path, model, strlen(model));
  must_succeed(AEC " rf.ae -o rf");
  CommandResult r = in_dir("./rf describe");
  ck_assert_msg(r.status == 0, "%s", r.err);
  // The ids below are these nodes.
  ck_assert_ptr_nonnull(strstr(r.out, "{\"id\": 5, \"op\": \"maxpool\""));
  ck_assert_ptr_nonnull(strstr(r.out, "{\"id\": 6, \"op\": \"unpool\""));
  ck_assert_ptr_nonnull(strstr(r.out, "{\"id\": 9, \"op\": \"deconv\""));
  aert_model m = {.description = r.out, .input_rank = 3, .input_shape = {1, 8, 8}};
  static const struct {
    int node, position, lo, hi;  // ids in the description: 3 conv, 5 maxpool, 6 unpool, 9 deconv
  } expected[] = {{3, 1, 2, 4}, {5, 0, -2, 4}, {5, 1, 4, 10}, {6, 1, -2, 4}, {6, 2, 4, 10}, {9, 4, -2, 10}};
  for (size_t i = 0; i < sizeof expected / sizeof *expected; i++) {
    aert_receptive_field rf;
    ck_assert(aert_receptive_field_of(&m, expected[i].node, &rf));
    ck_assert(!rf.whole);
    int p = expected[i].position;
    ck_assert_msg(rf.row_lo[p] == expected[i].lo && rf.row_hi[p] == expected[i].hi && rf.col_lo[p] == expected[i].lo &&
                      rf.col_hi[p] == expected[i].hi,
                  "node %d, position %d: rows %d..%d, columns %d..%d", expected[i].node, p, rf.row_lo[p], rf.row_hi[p],
                  rf.col_lo[p], rf.col_hi[p]);
    aert_receptive_field_free(&rf);
  }
  command_result_free(&r);
}
END_TEST

// avgpool end to end: an encoder that is avgpool(2, pad=same) over 5 x 5
// images encodes each sample as its 3 x 3 window means, the windows on the
// last row and column (off the edge) averaging the pixels inside only.
START_TEST(avgpool_encodes_window_means) {
  static const char *model = "input x: [1, 5, 5]\n"
                             "net encoder = avgpool(2, pad=same)\n"
                             "net decoder = flatten() -> dense(25, sigmoid) -> reshape([1, 5, 5])\n"
                             "loss recon = mse(decoder(encoder(x)), x)\n"
                             "train { data \"data.csv\" test \"data.csv\" batch 4\n"
                             "        step minimize recon over decoder with adam() }\n";
  char path[700];
  snprintf(path, sizeof path, "%s/avg.ae", dir);
  write_file(path, model, strlen(model));
  snprintf(path, sizeof path, "%s/data.csv", dir);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  for (int sample = 0; sample < 3; sample++)  // pixel p of sample s is (p + 3 s) / 100
    for (int p = 0; p < 25; p++) fprintf(f, "%g%s", (p + 3 * sample) / 100.0, p == 24 ? "\n" : ",");
  ck_assert_int_eq(fclose(f), 0);
  must_succeed(AEC " avg.ae -o avg");
  CommandResult r = in_dir("./avg summary");
  ck_assert_msg(r.status == 0 && strstr(r.err, "avgpool(2, pad=same)") && strstr(r.err, "(None, 1, 3, 3)"), "%s",
                r.err);
  command_result_free(&r);
  must_succeed("./avg train --epochs 1 --threads 1 --checkpoint c.safetensors");
  must_succeed("./avg encode --checkpoint c.safetensors --data data.csv -o codes.csv");
  snprintf(path, sizeof path, "%s/codes.csv", dir);
  f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  char line[1024];
  ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
  ck_assert_str_eq(line, "z0,z1,z2,z3,z4,z5,z6,z7,z8\n");
  for (int sample = 0; sample < 3; sample++) {
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    const char *at = line;
    for (int w = 0; w < 9; w++) {
      int oy = w / 3, ox = w % 3;
      double sum = 0, count = 0;
      for (int y = 2 * oy; y < 2 * oy + 2 && y < 5; y++)
        for (int x = 2 * ox; x < 2 * ox + 2 && x < 5; x++) sum += (y * 5 + x + 3 * sample) / 100.0, count++;
      char *end;
      double code = strtod(at, &end);
      ck_assert_msg(end != at && fabs(code - sum / count) < 1e-6, "sample %d, window %d: %g, not the mean %g", sample, w,
                    code, sum / count);
      at = *end == ',' ? end + 1 : end;
    }
  }
  fclose(f);
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
  tcase_add_test(t, activations_draws_maps_and_receptive_fields);
  tcase_add_test(t, receptive_fields_follow_the_descriptions_windows);
  tcase_add_test(t, avgpool_encodes_window_means);
  suite_add_tcase(s, t);
  return s;
}
