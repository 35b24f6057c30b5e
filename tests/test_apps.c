// test_apps.c — corruption, sparsity and what users do with a trained model:
// denoise, retrieve, encode (.npy, --plot), filters, activations, histogram,
// probe, pca and plot-xy, on a small labelled data set made here (three
// clusters of 4x4 images), plus one epoch of examples/denoise.ae and
// examples/sparse.ae.
#define _GNU_SOURCE
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analysis.h"
#include "tests.h"

#define AEC AEC_BUILD_DIR "/aec"
#define EXAMPLES AEC_SOURCE_DIR "/examples"

static char *dir;

static CommandResult in_dir(const char *fmt, const char *arg) {
  char command[2048];
  snprintf(command, sizeof command, fmt, arg);
  return run_command("cd %s && %s", dir, command);
}

static void must_succeed(const char *command) {
  CommandResult r = in_dir("%s", command);
  ck_assert_msg(r.status == 0, "`%s` failed (%d):\n%s", command, r.status, r.err);
  command_result_free(&r);
}

static CommandResult run_ok(const char *command) {
  CommandResult r = in_dir("%s", command);
  ck_assert_msg(r.status == 0, "`%s` failed (%d):\n%s", command, r.status, r.err);
  return r;
}

static void expect_failure(const char *command, int status, const char *message) {
  CommandResult r = in_dir("%s", command);
  ck_assert_msg(r.status == status, "`%s`: status %d, expected %d\n%s", command, r.status, status, r.err);
  ck_assert_msg(strstr(r.err, message) != NULL, "`%s`: expected\n  %s\nin\n%s", command, message, r.err);
  ck_assert_msg(r.out[0] == '\0', "`%s` printed figures although it failed:\n%s", command, r.out);
  command_result_free(&r);
}

static long file_size(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static bool is_png(const char *name) {
  char path[1024], magic[8] = {0};
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  size_t got = fread(magic, 1, 8, f);
  fclose(f);
  return got == 8 && memcmp(magic, "\211PNG\r\n\032\n", 8) == 0;
}

static void write_text(const char *name, const char *text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  write_file(path, text, strlen(text));
}

// n labelled 4x4 images in three clusters: a bright top half, a bright left
// half, a bright diagonal; each pixel jittered. The label comes first.
static void write_clusters(const char *name, int n, int salt) {
  size_t cap = (size_t)n * 16 * 8 + 64, used = 0;
  char *text = malloc(cap);
  for (int i = 0; i < n; i++) {
    int label = i % 3;
    used += (size_t)snprintf(text + used, cap - used, "%d", label);
    for (int p = 0; p < 16; p++) {
      int r = p / 4, c = p % 4;
      bool on = label == 0 ? r < 2 : label == 1 ? c < 2 : r == c;
      double jitter = fmod(0.618 * (i * 16 + p + salt * 7919) * 0.917, 1.0) * 0.2;
      used += (size_t)snprintf(text + used, cap - used, ",%.3f", on ? 0.75 + jitter : 0.05 + jitter);
    }
    used += (size_t)snprintf(text + used, cap - used, "\n");
  }
  write_text(name, text);
  free(text);
}

static const char *tiny_model =
    "input x: [16]\n"
    "noisy = clip(gaussian_noise(x, 0.3), 0, 1)\n"
    "net encoder = dense(8, relu) -> dense(4, sigmoid)\n"
    "net decoder = dense(8, relu) -> dense(16, sigmoid)\n"
    "loss recon = bce(decoder(encoder(noisy)), x)\n"
    "train { data \"train.csv\" test \"test.csv\" batch 32 epochs 40\n"
    "        step minimize recon over encoder, decoder with adam(lr=0.01) }\n";

// The tiny denoising model, trained (a second or so), once for the test case.
static void setup(void) {
  dir = make_temp_dir("apps");
  write_clusters("train.csv", 300, 1);
  write_clusters("test.csv", 90, 2);
  write_text("tiny.ae", tiny_model);
  must_succeed(AEC " tiny.ae -o tiny");
  must_succeed("./tiny train --checkpoint tiny.safetensors");
}

static void setup_empty(void) { dir = make_temp_dir("apps"); }

static void teardown(void) {
  remove_tree(dir);
  free(dir);
}

START_TEST(denoise_shows_the_models_own_corruption) {
  CommandResult r = run_ok("./tiny denoise --checkpoint tiny.safetensors -o grid.png --count 6");
  double noisy = figure(r.out, "psnr_noisy"), denoised = figure(r.out, "psnr_denoised");
  ck_assert_msg(isfinite(noisy) && isfinite(denoised), "no PSNR figures:\n%s", r.out);
  ck_assert_msg(denoised > noisy + 3, "denoising did not help: %g dB -> %g dB", noisy, denoised);
  ck_assert_ptr_nonnull(strstr(r.err, "the model's own corruption"));
  command_result_free(&r);
  ck_assert(is_png("grid.png"));
  // The same seed draws the same noise; another seed other noise.
  r = run_ok("./tiny denoise --checkpoint tiny.safetensors -o grid.png");
  ck_assert_double_eq(figure(r.out, "psnr_noisy"), noisy);
  command_result_free(&r);
  r = run_ok("./tiny denoise --checkpoint tiny.safetensors -o grid.png --seed 7");
  ck_assert_double_ne(figure(r.out, "psnr_noisy"), noisy);
  command_result_free(&r);
  // Noise from the command line instead.
  r = run_ok("./tiny denoise --checkpoint tiny.safetensors -o grid2.png --noise masking:0.25");
  ck_assert_double_ne(figure(r.out, "psnr_noisy"), noisy);
  command_result_free(&r);
  expect_failure("./tiny denoise --checkpoint tiny.safetensors -o g.png --noise blur:2", 2, "--noise takes");
}
END_TEST

START_TEST(a_missing_or_wrong_checkpoint_is_one_clear_error) {
  static const char *const commands[] = {"denoise -o g.png", "retrieve", "filters -o f.png", "histogram -o h.png",
                                         "activations --layer encoder.dense_1 -o a.png",
                                         "probe", "encode -o c.npy"};
  write_text("other.ae", "input x: [16]\nnet encoder = dense(3, relu)\nnet decoder = dense(16, sigmoid)\n"
                         "loss recon = mse(decoder(encoder(x)), x)\n");
  must_succeed(AEC " other.ae -o other && ./other train --data train.csv --test test.csv --epochs 0 --checkpoint other.safetensors");
  must_succeed("cp tiny untrained");  // the same program, whose default checkpoint untrained.safetensors is not here
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
    char command[256];
    snprintf(command, sizeof command, "./untrained %s", commands[i]);
    expect_failure(command, 2, "needs --checkpoint FILE: a checkpoint train wrote (by default untrained.safetensors");
    snprintf(command, sizeof command, "./tiny %s --checkpoint nowhere.safetensors", commands[i]);
    expect_failure(command, 1, "nowhere.safetensors");
    snprintf(command, sizeof command, "./tiny %s --checkpoint other.safetensors", commands[i]);
    expect_failure(command, 1, "other.safetensors");
    snprintf(command, sizeof command, "./tiny %s --help", commands[i]);
    CommandResult r = run_ok(command);
    ck_assert_msg(strstr(r.out, "usage: tiny ") != NULL, "%s", r.out);
    command_result_free(&r);
  }
  expect_failure("./tiny pca --dim 2 --checkpoint nowhere.safetensors", 1, "nowhere.safetensors");
  expect_failure("./tiny pca", 2, "pca needs --dim");
  // Without --checkpoint, a command reads train's default one when it is here, and says so.
  CommandResult r = run_ok("./tiny histogram -o h.png");
  ck_assert_msg(strstr(r.err, "reading tiny.safetensors, the checkpoint train writes by default"), "%s", r.err);
  command_result_free(&r);
}
END_TEST

START_TEST(retrieve_finds_neighbours_with_the_same_label) {
  CommandResult r = run_ok("./tiny retrieve --checkpoint tiny.safetensors -k 5");
  double precision = figure(r.out, "precision@5"), raw = figure(r.out, "raw_precision@5");
  ck_assert_msg(precision > 0.9 && precision <= 1, "precision@5 %g\n%s", precision, r.err);
  ck_assert_msg(raw > 0.99 && raw <= 1, "raw_precision@5 %g", raw);
  ck_assert(figure(r.out, "search_s") >= 0 && figure(r.out, "raw_search_s") >= 0);
  command_result_free(&r);
  // Semantic hashing: 4 sigmoid codes thresholded at 0.5 still separate three clusters.
  r = run_ok("./tiny retrieve --checkpoint tiny.safetensors --binary --queries test.csv --db train.csv --count 30");
  double binary = figure(r.out, "precision@10");
  ck_assert_msg(binary > 0.6 && binary <= 1, "binary precision@10 %g\n%s", binary, r.err);
  command_result_free(&r);
  // The query set searched against itself does not find each query itself.
  r = run_ok("./tiny retrieve --checkpoint tiny.safetensors --db test.csv --queries test.csv -k 1 -o n.npy");
  ck_assert(figure(r.out, "raw_precision@1") > 0.99);
  ck_assert(figure(r.out, "code_search_s") >= 0);
  command_result_free(&r);
  // -o: both searches' neighbours, [2, queries, k]; none is the query itself.
  char path[512];
  snprintf(path, sizeof path, "%s/n.npy", dir);
  size_t size = 0;
  char *npy = read_whole_file(path, &size);
  ck_assert(npy && size > 10);
  size_t header = 10 + (size_t)(unsigned char)npy[8] + 256 * (size_t)(unsigned char)npy[9];
  ck_assert_msg(strstr(npy + 10, "'descr': '<u4'") && strstr(npy + 10, "'shape': (2, "), "%.*s", (int)header, npy);
  size_t n_q = strtoul(strstr(npy + 10, "'shape': (2, ") + strlen("'shape': (2, "), NULL, 10);
  ck_assert_uint_eq(size, header + 2 * n_q * 4);
  for (size_t i = 0; i < 2 * n_q; i++) {
    uint32_t j;
    memcpy(&j, npy + header + 4 * i, 4);
    ck_assert_msg(j < n_q && j != i % n_q, "query %zu's neighbour %u", i % n_q, j);
  }
  free(npy);
  expect_failure("./tiny retrieve --checkpoint tiny.safetensors -o n.csv", 2, "a .npy file");
  expect_failure("./tiny retrieve --checkpoint tiny.safetensors -k 1000", 1, "-k 1000");
  expect_failure("./tiny retrieve --checkpoint tiny.safetensors --binary --cosine", 2, "choose one");
  write_text("unlabelled.csv", "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8\n");
  expect_failure("./tiny retrieve --checkpoint tiny.safetensors --db unlabelled.csv", 1, "needs labels");
}
END_TEST

// The query is a bright top half (label 0). Euclidean distance finds the
// brighter top-and-a-little-left image (label 1) nearer than a dim copy of
// the query; cosine distance, blind to brightness, finds the dim copy.
START_TEST(retrieve_cosine_ranks_by_direction_not_brightness) {
  char row[3][256];
  for (int i = 0; i < 3; i++) {
    int used = snprintf(row[i], sizeof row[i], "%d", i == 2 ? 1 : 0);
    for (int p = 0; p < 16; p++) {
      bool top = p < 8, left = p % 4 < 2;
      double v = i == 0 ? (top ? 1.0 : 0) : i == 1 ? (top ? 0.2 : 0) : (top ? 0.9 : 0) + (left && !top ? 0.25 : 0);
      used += snprintf(row[i] + used, sizeof row[i] - (size_t)used, ",%.2f", v);
    }
  }
  char text[1024];
  snprintf(text, sizeof text, "%s\n", row[0]);
  write_text("query.csv", text);
  snprintf(text, sizeof text, "%s\n%s\n", row[1], row[2]);
  write_text("db.csv", text);
  CommandResult r = run_ok("./tiny retrieve --checkpoint tiny.safetensors --db db.csv --queries query.csv -k 1");
  ck_assert_msg(figure(r.out, "raw_precision@1") == 0, "Euclidean should find the brighter image\n%s", r.out);
  command_result_free(&r);
  r = run_ok("./tiny retrieve --checkpoint tiny.safetensors --db db.csv --queries query.csv -k 1 --cosine");
  ck_assert_msg(figure(r.out, "raw_precision@1") == 1, "cosine should find the dim copy\n%s", r.out);
  ck_assert_ptr_nonnull(strstr(r.err, "raw input (16 values, cosine)"));
  command_result_free(&r);
}
END_TEST

START_TEST(encode_writes_npy_and_a_scatter) {
  must_succeed("./tiny encode --checkpoint tiny.safetensors --data test.csv -o codes.npy --plot codes.png");
  // A version 1.0 header padded to 64 bytes, then 90 x 4 float32; the labels as 90 int32.
  ck_assert_int_eq(file_size("codes.npy"), 128 + 90 * 4 * 4);
  ck_assert_int_eq(file_size("codes.labels.npy"), 128 + 90 * 4);
  CommandResult r = run_ok("head -c 128 codes.npy | tail -c +11");
  ck_assert_msg(strstr(r.out, "'descr': '<f4', 'fortran_order': False, 'shape': (90, 4), }") != NULL, "%s", r.out);
  command_result_free(&r);
  ck_assert(is_png("codes.png"));
  must_succeed("./tiny encode --checkpoint tiny.safetensors --data test.csv -o codes.csv");
  r = run_ok("head -1 codes.csv && wc -l < codes.csv");
  ck_assert_str_eq(r.out, "label,z0,z1,z2,z3\n91\n");
  command_result_free(&r);
}
END_TEST

START_TEST(filters_and_histogram_draw) {
  CommandResult r = run_ok("./tiny filters --checkpoint tiny.safetensors -o filters.png");
  ck_assert_ptr_nonnull(strstr(r.err, "8 of the 8 units of encoder.dense_1.kernel"));
  command_result_free(&r);
  ck_assert(is_png("filters.png"));
  r = run_ok("./tiny histogram --checkpoint tiny.safetensors -o hist.png");
  double mean = figure(r.out, "code_mean");
  ck_assert_msg(mean > 0 && mean < 1, "sigmoid codes have mean %g", mean);
  command_result_free(&r);
  ck_assert(is_png("hist.png"));
}
END_TEST

// A dense layer's units are 1 x 1 maps: bars for the shown samples, and the
// whole inputs that activate each unit most (of the 90 test samples).
START_TEST(activations_of_a_dense_layer) {
  CommandResult r = run_ok("./tiny activations --checkpoint tiny.safetensors --layer encoder.dense_2 --threads 1 "
                           "-o dense.png");
  ck_assert_msg(strstr(r.out, "layer encoder.dense_2\n") != NULL, "%s", r.out);
  ck_assert_double_eq(figure(r.out, "channels"), 4);
  ck_assert_double_eq(figure(r.out, "map_height"), 1);
  ck_assert_double_eq(figure(r.out, "map_width"), 1);
  ck_assert_double_eq(figure(r.out, "receptive_field_height"), 4);  // the whole 16-value input, drawn 4 x 4
  ck_assert_double_eq(figure(r.out, "receptive_field_width"), 4);
  ck_assert_double_eq(figure(r.out, "samples_searched"), 90);
  double max = figure(r.out, "max_activation"), mean = figure(r.out, "mean_activation");
  ck_assert_msg(max > 0.5 && max < 1 && mean > 0 && mean < max, "sigmoid units: max %g, mean %g", max, mean);
  ck_assert_ptr_nonnull(strstr(r.err, "the activations of 4 samples"));
  command_result_free(&r);
  // The minimum width (900); title 44, two column heads of 16, 4 sample rows
  // of 64 + 6, the section's title 44, 4 rows of strongest inputs 64 + 14 + 6.
  char path[1024];
  int width, height;
  snprintf(path, sizeof path, "%s/dense.png", dir);
  ck_assert(read_png_size(path, &width, &height));
  ck_assert_int_eq(width, 900);
  ck_assert_int_eq(height, 2 * 16 + 44 + 2 * 16 + 4 * 70 + 44 + 4 * 84);
}
END_TEST

START_TEST(activations_names_the_layers_there_are) {
  expect_failure("./tiny activations --checkpoint tiny.safetensors --layer encoder.conv_1 -o a.png", 1,
                 "model 'tiny' has no layer 'encoder.conv_1'; its layers: encoder.dense_1, encoder.dense_2, "
                 "decoder.dense_1, decoder.dense_2");
  expect_failure("./tiny activations --checkpoint tiny.safetensors -o a.png", 2,
                 "activations needs --layer NAME, one of: encoder.dense_1, encoder.dense_2");
  expect_failure("./tiny activations --checkpoint tiny.safetensors --layer encoder.dense_1 --data missing.csv -o a.png",
                 1, "missing.csv");
  ck_assert_int_eq(file_size("a.png"), -1);
}
END_TEST

START_TEST(probe_classifies_codes_and_pixels) {
  CommandResult r = run_ok("./tiny probe --checkpoint tiny.safetensors --labels-fraction 0.2");
  double codes = figure(r.out, "probe_accuracy"), raw = figure(r.out, "raw_probe_accuracy");
  ck_assert_msg(codes > 0.9 && raw > 0.9, "probe accuracy %g, raw %g\n%s", codes, raw, r.err);
  ck_assert_ptr_nonnull(strstr(r.err, "60 labelled samples"));
  command_result_free(&r);
  expect_failure("./tiny probe --checkpoint tiny.safetensors --labels-fraction 2", 2, "--labels-fraction");
}
END_TEST

// Data on a plane in 16 dimensions: two components reconstruct it exactly,
// one leaves the plane's second direction.
START_TEST(pca_recovers_a_plane) {
  char text[1 << 16];
  size_t used = 0;
  double residual = 0;
  for (int i = 0; i < 200; i++) {
    double a = sin(i * 1.3) * 2, b = cos(i * 0.7) * 0.5;
    for (int p = 0; p < 16; p++) {
      double u = (p < 8 ? 1 : -1) / 4.0, v = (p % 2 ? 1 : -1) / 4.0;  // orthonormal
      used += (size_t)snprintf(text + used, sizeof text - used, "%.17g%s", 0.3 + a * u + b * v, p == 15 ? "\n" : ",");
    }
    residual += b * b;  // b's mean over these samples is ~0
  }
  write_text("plane.csv", text);
  CommandResult r = run_ok("./tiny pca --dim 2 --data plane.csv --test plane.csv");
  ck_assert_msg(figure(r.out, "pca_mse") < 1e-12, "%s", r.out);
  command_result_free(&r);
  r = run_ok("./tiny pca --dim 1 --data plane.csv --test plane.csv");
  ck_assert_double_eq_tol(figure(r.out, "pca_mse"), residual / 200 / 16, 0.05 * residual / 200 / 16);
  command_result_free(&r);
  r = run_ok("./tiny pca --dim 4 --checkpoint tiny.safetensors");
  ck_assert(figure(r.out, "pca_mse") > 0 && figure(r.out, "ae_mse") > 0);
  command_result_free(&r);
  expect_failure("./tiny pca --dim 17 --data plane.csv --test plane.csv", 1, "--dim 17");
}
END_TEST

// The eigen-solver PCA stands on: A v = lambda v, values descending.
START_TEST(jacobi_eigenvectors) {
  enum { M = 30 };
  double a[M * M], copy[M * M], values[M], vectors[M * M];
  for (int i = 0; i < M; i++)
    for (int j = 0; j <= i; j++) a[i * M + j] = a[j * M + i] = sin(i * 7.0 + j * 3.0) + (i == j ? i * 0.1 : 0);
  memcpy(copy, a, sizeof a);
  aert_eigen_symmetric(a, M, values, vectors);
  for (int k = 0; k < M; k++) {
    if (k) ck_assert(values[k] <= values[k - 1]);
    for (int i = 0; i < M; i++) {
      double av = 0;
      for (int j = 0; j < M; j++) av += copy[i * M + j] * vectors[k * M + j];
      ck_assert_double_eq_tol(av, values[k] * vectors[k * M + i], 1e-9);
    }
  }
}
END_TEST

START_TEST(plot_xy_draws_a_csv) {
  write_text("sweep.csv", "code,test_bce\n2,0.40\n4,0.35\n8,0.31\n16,0.29\n32,0.28\n");
  must_succeed("./tiny plot-xy --csv sweep.csv -o sweep.png");
  ck_assert(is_png("sweep.png"));
  write_text("bad.csv", "code,test_bce\n2,zero\n");
  expect_failure("./tiny plot-xy --csv bad.csv -o bad.png", 1, "bad.csv:2");
}
END_TEST

START_TEST(corruption_arguments_are_checked) {
  write_text("bad.ae", "input x: [16]\nnet encoder = dense(3, relu)\nnet decoder = dense(16, sigmoid)\n"
                       "loss recon = mse(decoder(encoder(masking_noise(x, 1.5))), x) + kl_sparsity(encoder(x), 0)\n");
  CommandResult r = in_dir("%s", AEC " bad.ae -o bad.c");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "bad.ae:4:51: error: masking_noise: the fraction p must be from 0 to 1") != NULL, "%s", r.err);
  ck_assert_msg(strstr(r.err, "kl_sparsity: rho must lie strictly between 0 and 1") != NULL, "%s", r.err);
  command_result_free(&r);
}
END_TEST

// ------------------------------------------------ the examples, one epoch
START_TEST(denoise_example_trains_and_denoises) {
  must_succeed(AEC " " EXAMPLES "/denoise.ae -o denoise");
  CommandResult r = run_ok("./denoise train --epochs 1 --checkpoint denoise.safetensors");
  ck_assert(isfinite(figure(r.out, "test.recon")));
  command_result_free(&r);
  r = run_ok("./denoise denoise --checkpoint denoise.safetensors -o grid.png");
  double noisy = figure(r.out, "psnr_noisy"), denoised = figure(r.out, "psnr_denoised");
  ck_assert_msg(denoised > noisy + 4, "after one epoch: %g dB -> %g dB", noisy, denoised);
  command_result_free(&r);
  ck_assert(is_png("grid.png"));
}
END_TEST

START_TEST(sparse_example_trains_sparse_codes) {
  must_succeed(AEC " " EXAMPLES "/sparse.ae -o sparse");
  CommandResult r = run_ok("./sparse train --epochs 1 --checkpoint sparse.safetensors");
  ck_assert(isfinite(figure(r.out, "test.recon")));
  command_result_free(&r);
  r = run_ok("./sparse histogram --checkpoint sparse.safetensors -o hist.png");
  double mean = figure(r.out, "code_mean");
  // A sigmoid layer starts near 0.5; the penalty pulls the mean toward rho = 0.05.
  ck_assert_msg(mean < 0.2, "mean code activation %g after one epoch", mean);
  command_result_free(&r);
}
END_TEST

Suite *apps_suite(void) {
  Suite *s = suite_create("apps");
  TCase *t = tcase_create("applications");
  tcase_set_timeout(t, 300);
  // One trained tiny model for every test of the case (the tests write distinct files).
  tcase_add_unchecked_fixture(t, setup, teardown);
  tcase_add_test(t, denoise_shows_the_models_own_corruption);
  tcase_add_test(t, a_missing_or_wrong_checkpoint_is_one_clear_error);
  tcase_add_test(t, retrieve_finds_neighbours_with_the_same_label);
  tcase_add_test(t, retrieve_cosine_ranks_by_direction_not_brightness);
  tcase_add_test(t, encode_writes_npy_and_a_scatter);
  tcase_add_test(t, filters_and_histogram_draw);
  tcase_add_test(t, activations_of_a_dense_layer);
  tcase_add_test(t, activations_names_the_layers_there_are);
  tcase_add_test(t, probe_classifies_codes_and_pixels);
  tcase_add_test(t, pca_recovers_a_plane);
  tcase_add_test(t, plot_xy_draws_a_csv);
  tcase_add_test(t, corruption_arguments_are_checked);
  suite_add_tcase(s, t);
  TCase *unit = tcase_create("eigen");
  tcase_add_test(unit, jacobi_eigenvectors);
  suite_add_tcase(s, unit);
  TCase *examples = tcase_create("examples");
  tcase_set_timeout(examples, 600);
  tcase_add_checked_fixture(examples, setup_empty, teardown);
  tcase_add_test(examples, denoise_example_trains_and_denoises);
  tcase_add_test(examples, sparse_example_trains_sparse_codes);
  suite_add_tcase(s, examples);
  return s;
}
