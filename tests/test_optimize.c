// test_optimize.c — the optimized code (-O2: fused kernels, matrix
// micro-kernels, a planned arena) against the reference (-O0: one plain
// kernel per node): every example that compiles, and the models of
// tests/optimize/, train a few steps both ways, on 1 and 2 threads, and the
// losses of every step agree: one test a model, each compiled once a level.
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

static char *dir;

// 300 samples of 784 values in [0, 1): 3 batches of 128, the last partial.
static void write_data(void) {
  dir = make_temp_dir("optimize");
  char path[600];
  snprintf(path, sizeof path, "%s/data.csv", dir);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  unsigned state = 12345;
  for (int row = 0; row < 300; row++)
    for (int col = 0; col < 784; col++) {
      state = state * 1103515245u + 12345u;
      fprintf(f, "%.4f%s", (state >> 8) % 10000 / 10000.0, col == 783 ? "\n" : ",");
    }
  ck_assert_int_eq(fclose(f), 0);
}

// `opt` is aec's -O0 or -O2, or -O2 with C flags appended to the default
// -O3 -march=native (VARIANTS). Compiled once, then trained on each thread
// count asked.
static const struct {
  const char *name, *cflags;
} VARIANTS[] = {
    // the kernel-gradient products read b in place, as batches over 2048 rows do
    {"-O2-in-place", " -DAEC_PANEL_DEPTH=0"},
    // the micro-kernel's other tiles (aert_kernels.h): 3 x 4 vectors of AVX2
    // where the machine has AVX-512, 1 x 8 of SSE2 on any x86-64 (no FMA)
    {"-O2-avx2", " -mno-avx512f"},
    {"-O2-sse2", " -march=x86-64 -mtune=generic"},
};

static const char *variant_cflags(const char *opt) {
  for (size_t i = 0; i < sizeof VARIANTS / sizeof VARIANTS[0]; i++)
    if (strcmp(opt, VARIANTS[i].name) == 0) return VARIANTS[i].cflags;
  return "";
}

static void build(const char *folder, const char *example, const char *opt) {
  const char *cflags = variant_cflags(opt);
  CommandResult r = run_command("cd %s && AEC_CFLAGS=\"${AEC_CFLAGS:--O3 -march=native}%s\" %s/aec %s/%s/%s.ae %s -o %s%s 2>&1",
                                dir, cflags, AEC_BUILD_DIR, AEC_SOURCE_DIR, folder, example,
                                *cflags ? "-O2" : opt, example, opt);
  ck_assert_msg(r.status == 0, "aec %s %s failed:\n%s", example, opt, r.out);
  command_result_free(&r);
}

static int train_trace(const char *example, const char *opt, int threads, double *losses, int max) {
  CommandResult r = run_command("cd %s && ./%s%s train --data data.csv --test none --batch 128 --epochs 3 --threads %d "
                                "--checkpoint %s%s-%d.safetensors --trace %s%s-%d.jsonl",
                                dir, example, opt, threads, example, opt, threads, example, opt, threads);
  ck_assert_msg(r.status == 0, "training %s %s failed:\n%s", example, opt, r.err);
  command_result_free(&r);
  char path[700];
  snprintf(path, sizeof path, "%s/%s%s-%d.jsonl", dir, example, opt, threads);
  return trace_losses(path, losses, max);
}

// Whether training on 1 and on 2 threads left the same checkpoint, byte for
// byte: the weights, not only the losses, which agree for many steps after
// the weights first differ in an ulp.
static bool same_weights(const char *example, const char *opt) {
  char one[700], two[700];
  snprintf(one, sizeof one, "%s/%s%s-1.safetensors", dir, example, opt);
  snprintf(two, sizeof two, "%s/%s%s-2.safetensors", dir, example, opt);
  size_t n1 = 0, n2 = 0;
  char *a = read_whole_file(one, &n1), *b = read_whole_file(two, &n2);
  bool same = a && b && n1 == n2 && memcmp(a, b, n1) == 0;
  free(a);
  free(b);
  return same;
}

// The models compared: every .ae of examples/ and tests/optimize/, found
// when the suite is made, one test each (each with its own time limit).
enum { MAX_MODELS = 64 };
static char models[MAX_MODELS][2][256];  // folder, name
static int n_models;

static void find_models(const char *folder) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", AEC_SOURCE_DIR, folder);
  DIR *d = opendir(path);
  if (!d) return;  // the test of that folder then fails: compared() counts
  for (struct dirent *entry; (entry = readdir(d)) && n_models < MAX_MODELS;) {
    size_t len = strlen(entry->d_name);
    if (len < 4 || strcmp(entry->d_name + len - 3, ".ae") != 0) continue;
    snprintf(models[n_models][0], 256, "%s", folder);
    snprintf(models[n_models][1], 256, "%.*s", (int)(len - 3), entry->d_name);
    n_models++;
  }
  closedir(d);
}

// Trains one model both ways and compares every step's losses.
START_TEST(optimized_code_matches_the_reference) {
  write_data();
  const char *folder = models[_i][0], *example = models[_i][1];
  enum { MAX = 64 };
  double reference[MAX], optimized[MAX], two_threads[MAX], in_place[MAX];
  build(folder, example, "-O0");
  build(folder, example, "-O2");
  int n = train_trace(example, "-O0", 1, reference, MAX);
  ck_assert_int_ge(n, 9);
  ck_assert_int_eq(train_trace(example, "-O2", 1, optimized, MAX), n);
  ck_assert_int_eq(train_trace(example, "-O2", 2, two_threads, MAX), n);
  const bool test_in_place = strcmp(folder, "tests/optimize") == 0;
  if (test_in_place) {
    build(folder, example, "-O2-in-place");
    ck_assert_int_eq(train_trace(example, "-O2-in-place", 2, in_place, MAX), n);
  }
  // 9 batches: several losses a batch means several steps, and steps that
  // train against each other (adversarial.ae's critic and encoder) amplify
  // the rounding differences of the two kernels' summation orders (1e-7 at
  // batch 4, 1e-4 at batch 9, measured); one step keeps them at 1e-5.
  double tolerance = n > 9 ? 1e-3 : 1e-5;
  // A Wasserstein critic with a gradient penalty (a loss using grad():
  // wgan_aae.ae) amplifies them faster still: its linear output gives sums
  // of +-w / batch that cancel exactly in one order and leave an ulp in the
  // other, which Adam's first updates turn into steps of up to lr. Its disc
  // loss differs by 1e-7, 2.4e-6, 7.3e-4 and 2.4e-3 in batches 1 to 4
  // (measured), so only its first 3 batches are compared with the reference
  // (both programs pass gradcheck in f64, and make check-torch replays it).
  char source[700];
  snprintf(source, sizeof source, "%s/%s/%s.ae", AEC_SOURCE_DIR, folder, example);
  char *text = read_whole_file(source, NULL);
  int compared = text && strstr(text, "grad(") && n > 9 ? 9 : n;
  free(text);
  ck_assert_msg(same_weights(example, "-O2"), "%s: 2 threads left other weights than 1", example);
  for (int i = 0; i < n; i++) {
    double scale = fabs(reference[i]) > 1e-3 ? fabs(reference[i]) : 1e-3;
    ck_assert_msg(i >= compared || fabs(optimized[i] - reference[i]) / scale < tolerance,
                  "%s step %d: -O2 %.9g, -O0 %.9g", example, i, optimized[i], reference[i]);
    // Each output is computed by one thread in a fixed order.
    ck_assert_msg(two_threads[i] == optimized[i], "%s step %d: 2 threads %.9g, 1 thread %.9g", example, i,
                  two_threads[i], optimized[i]);
    // Packed or not, b's elements meet the same sums in the same order.
    if (test_in_place)
      ck_assert_msg(in_place[i] == optimized[i], "%s step %d: b in place %.9g, packed %.9g", example, i, in_place[i],
                    optimized[i]);
  }
  if (test_in_place)  // every tile, with FMA and without: near the reference, the same on 1 and 2 threads
    for (size_t v = 1; v < sizeof VARIANTS / sizeof VARIANTS[0]; v++) {
      double one[MAX], two[MAX];
      build(folder, example, VARIANTS[v].name);
      ck_assert_int_eq(train_trace(example, VARIANTS[v].name, 1, one, MAX), n);
      ck_assert_int_eq(train_trace(example, VARIANTS[v].name, 2, two, MAX), n);
      ck_assert_msg(same_weights(example, VARIANTS[v].name), "%s %s: 2 threads left other weights than 1", example,
                    VARIANTS[v].name);
      for (int i = 0; i < n; i++) {
        double scale = fabs(reference[i]) > 1e-3 ? fabs(reference[i]) : 1e-3;
        ck_assert_msg(fabs(one[i] - reference[i]) / scale < tolerance, "%s %s step %d: %.9g, -O0 %.9g", example,
                      VARIANTS[v].name, i, one[i], reference[i]);
        ck_assert_msg(two[i] == one[i], "%s %s step %d: 2 threads %.9g, 1 thread %.9g", example, VARIANTS[v].name, i,
                      two[i], one[i]);
      }
    }
  remove_tree(dir);
}
END_TEST

// Both folders have models (simple and deep at least among the examples).
START_TEST(both_folders_have_models) {
  int examples = 0, optimize = 0;
  for (int i = 0; i < n_models; i++) {
    examples += strcmp(models[i][0], "examples") == 0;
    optimize += strcmp(models[i][0], "tests/optimize") == 0;
  }
  ck_assert_int_ge(examples, 2);
  ck_assert_int_ge(optimize, 1);
}
END_TEST

START_TEST(widths_takes_the_strip_and_chunk_paths) {
  // widths.ae's 500 x 784 kernel (1.5 MiB) took the kernel gradient by strips
  // in those runs, against the in-place path and across thread counts, and its
  // forward products (the logits in training, the sigmoid in inference) by
  // chunks: one chunk on 2 threads, two on 1 (25 column blocks of 500 rows are
  // 1.6 MB of panels), the last column block partial.
  dir = make_temp_dir("optimize");
  CommandResult r = run_command("%s/aec %s/tests/optimize/widths.ae -o %s/widths.c && grep -c 'By strips' %s/widths.c",
                                AEC_BUILD_DIR, AEC_SOURCE_DIR, dir, dir);
  ck_assert_msg(r.status == 0 && atoi(r.out) == 1, "widths.ae has %s kernel gradients by strips", r.out);
  command_result_free(&r);
  r = run_command("grep -c 'By chunks' %s/widths.c", dir);
  ck_assert_msg(r.status == 0 && atoi(r.out) >= 1, "widths.ae has %s forward products by chunks", r.out);
  command_result_free(&r);
  remove_tree(dir);
}
END_TEST

Suite *optimize_suite(void) {
  Suite *s = suite_create("optimize");
  TCase *t = tcase_create("O0 against O2");
  tcase_set_timeout(t, 600);
  n_models = 0;
  find_models("examples");
  find_models("tests/optimize");
  tcase_add_loop_test(t, optimized_code_matches_the_reference, 0, n_models);
  tcase_add_test(t, both_folders_have_models);
  tcase_add_test(t, widths_takes_the_strip_and_chunk_paths);
  suite_add_tcase(s, t);
  return s;
}
