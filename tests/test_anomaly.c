// test_anomaly.c — anomaly detection: the ROC and precision-recall areas
// (analysis/roc.c) on hand-checked cases and against pairwise counts on
// random data; class lists (data/classes.c) and their messages; and, through
// a small generated model trained on two of three classes of data the test
// writes, train --classes, score's files and detect's figures, each checked
// against what the test computes from score's output and the data itself.
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "core.h"
#include "data.h"
#include "tests.h"

// ------------------------------------------------------------- the areas
// The fraction of (positive, negative) pairs ordered right, ties a half.
static double pairwise_auc(const double *s, const bool *pos, size_t n) {
  double right = 0, pairs = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++) {
      if (!pos[i] || pos[j]) continue;
      pairs++;
      right += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
    }
  return right / pairs;
}

// The mean over positives of the precision of flagging every score at or above theirs.
static double brute_average_precision(const double *s, const bool *pos, size_t n) {
  double sum = 0;
  size_t n_pos = 0;
  for (size_t i = 0; i < n; i++) {
    if (!pos[i]) continue;
    size_t flagged = 0, hits = 0;
    for (size_t j = 0; j < n; j++) flagged += s[j] >= s[i], hits += s[j] >= s[i] && pos[j];
    sum += (double)hits / (double)flagged, n_pos++;
  }
  return sum / (double)n_pos;
}

START_TEST(test_auc_by_hand) {
  // scikit-learn's documented example: roc_auc_score 0.75, average_precision_score 0.8333.
  const double s[] = {0.1, 0.4, 0.35, 0.8};
  const bool pos[] = {false, false, true, true};
  ck_assert_double_eq_tol(aert_roc_auc(s, pos, 4), 0.75, 1e-15);
  ck_assert_double_eq_tol(aert_average_precision(s, pos, 4), 5.0 / 6, 1e-15);
  // A tie between a positive and a negative counts one half: (1 + 0.5 + 1 + 1) / 4 pairs.
  const double t[] = {1, 2, 2, 3};
  const bool tpos[] = {false, true, false, true};
  ck_assert_double_eq_tol(aert_roc_auc(t, tpos, 4), 0.875, 1e-15);
  // Thresholds 3 (precision 1, recall 1/2) and 2 (precision 2/3, recall 1).
  ck_assert_double_eq_tol(aert_average_precision(t, tpos, 4), 0.5 + 0.5 * 2 / 3, 1e-15);
  // Everything tied: no better than chance; the order reversed: 0.
  const double same[] = {5, 5, 5, 5};
  ck_assert_double_eq_tol(aert_roc_auc(same, tpos, 4), 0.5, 1e-15);
  const double reversed[] = {4, 3, 2, 1};
  ck_assert_double_eq_tol(aert_roc_auc(reversed, pos, 4), 0.0, 1e-15);
  // A NaN score ranks above every number.
  const double nan_first[] = {NAN, 0.1, 7};
  const bool nan_pos[] = {true, false, false};
  ck_assert_double_eq_tol(aert_roc_auc(nan_first, nan_pos, 3), 1.0, 1e-15);
  // One class alone: no area.
  const bool none[] = {false, false, false, false};
  ck_assert(isnan(aert_roc_auc(s, none, 4)));
  ck_assert(isnan(aert_average_precision(s, none, 4)));
}
END_TEST

START_TEST(test_auc_against_pairs) {
  enum { N = 700 };
  double *s = malloc(N * sizeof *s);
  bool *pos = malloc(N * sizeof *pos);
  for (int trial = 0; trial < 6; trial++) {
    // Few distinct values in the early trials (many ties), continuous ones later.
    int levels = trial < 3 ? 5 + 10 * trial : 0;
    for (size_t i = 0; i < N; i++) {
      pos[i] = aert_uniform01(100 + (uint64_t)trial, 2 * i) < 0.2 + 0.1 * trial;
      double u = aert_uniform01(200 + (uint64_t)trial, 2 * i + 1) + (pos[i] ? 0.3 : 0);
      s[i] = levels ? floor(u * levels) / levels : u;
    }
    ck_assert_double_eq_tol(aert_roc_auc(s, pos, N), pairwise_auc(s, pos, N), 1e-12);
    ck_assert_double_eq_tol(aert_average_precision(s, pos, N), brute_average_precision(s, pos, N), 1e-12);
  }
  free(s), free(pos);
}
END_TEST

START_TEST(test_quantile_and_moments) {
  const double v[] = {4, 1, 3, 2};
  ck_assert_double_eq_tol(aert_quantile(v, 4, 0.5), 2.5, 1e-15);
  ck_assert_double_eq_tol(aert_quantile(v, 4, 0.99), 3.97, 1e-12);  // NumPy: 3 + 0.97 * (4 - 3)
  ck_assert_double_eq_tol(aert_quantile(v, 4, 1), 4, 1e-15);
  ck_assert_double_eq_tol(aert_quantile(v, 4, 0), 1, 1e-15);
  double mean, std;
  aert_mean_std(v, 4, &mean, &std);
  ck_assert_double_eq_tol(mean, 2.5, 1e-15);
  ck_assert_double_eq_tol(std, sqrt(1.25), 1e-15);
}
END_TEST

// ------------------------------------------------------------ class lists
// aert_parse_classes's result, with its message (when it fails) in *message.
static bool *parse(const char *text, char **message) {
  stderr_capture c = stderr_begin();
  bool *member = aert_parse_classes("--classes", text);
  *message = stderr_end(&c);
  return member;
}

static void assert_refused(const char *text, const char *expected) {
  char *message;
  bool *member = parse(text, &message);
  ck_assert_msg(member == NULL, "'%s' was accepted", text);
  ck_assert_msg(strstr(message, expected) != NULL, "'%s': expected '%s' in: %s", text, expected, message);
  free(message);
}

START_TEST(test_class_lists) {
  char *message;
  bool *member = parse("0-7,9", &message);
  ck_assert_ptr_nonnull(member);
  for (int c = 0; c < 12; c++) ck_assert_int_eq(member[c], c <= 7 || c == 9);
  free(member), free(message);
  member = parse("3", &message);
  ck_assert_ptr_nonnull(member);
  ck_assert(member[3] && !member[2] && !member[4]);
  free(member), free(message);
  assert_refused("7-0", "the range 7-0 runs backwards; write 0-7");
  assert_refused("0,,1", "a class is missing before a separator");
  assert_refused("0,1,", "a class is missing at the end");
  assert_refused("", "a class is missing at the end");
  assert_refused("bag", "'bag' is not a class; classes are labels from 0 to 65535");
  assert_refused("0-", "a class is missing at the end");
  assert_refused("70000", "class 70000 is more than the largest label, 65535");
  assert_refused("1;2", "unexpected ';' after class 1");
  assert_refused("1-2-3", "unexpected '-' after class 2");
}
END_TEST

START_TEST(test_keep_classes) {
  aert_dataset *d = aert_dataset_new("mem", 6, 1, (size_t[]){2}, true);
  ck_assert_ptr_nonnull(d);
  for (int i = 0; i < 6; i++) d->labels[i] = i % 3, d->x[2 * i] = (aert_real)i, d->x[2 * i + 1] = (aert_real)(10 * i);
  bool *member = aert_parse_classes("--classes", "0,2");
  ck_assert(aert_dataset_keep_classes(d, member, "--classes", "0,2"));
  ck_assert_uint_eq(d->n, 4);
  const int kept[] = {0, 2, 3, 5};
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(d->labels[i], kept[i] % 3);
    ck_assert_double_eq(d->x[2 * i], kept[i]);
    ck_assert_double_eq(d->x[2 * i + 1], 10 * kept[i]);
  }
  free(member);
  member = aert_parse_classes("--classes", "7");
  stderr_capture c = stderr_begin();
  ck_assert(!aert_dataset_keep_classes(d, member, "--classes", "7"));
  char *message = stderr_end(&c);
  ck_assert_msg(strstr(message, "mem: no sample has a label in --classes 7 (its labels run from 0 to 2)"), "%s", message);
  free(message);
  free(d->labels);
  d->labels = NULL;
  c = stderr_begin();
  ck_assert(!aert_dataset_keep_classes(d, member, "--classes", "7"));
  message = stderr_end(&c);
  ck_assert_msg(strstr(message, "mem: --classes 7 selects samples by label, and this data set has none"), "%s", message);
  free(message), free(member);
  aert_dataset_free(d);
}
END_TEST

// --------------------------------------------------- through a model
enum { SIZE = 16, N_TRAIN = 300, N_TEST = 150 };

// Class c's samples: its own pattern plus a little noise; class 2's differs most.
static double sample_value(int label, int j, uint64_t seed, int i) {
  double base = label == 0 ? 0.2 + 0.6 * (j % 2) : label == 1 ? 0.8 - 0.6 * (j < SIZE / 2) : 0.5 + 0.4 * sin(j);
  return fmin(1, fmax(0, base + 0.08 * (aert_uniform01(seed, (uint64_t)(i * SIZE + j)) - 0.5)));
}

static void write_data(const char *dir, const char *name, int n, uint64_t seed, bool labels, double *x, int *y) {
  char *path = path_in(dir, name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  for (int i = 0; i < n; i++) {
    int label = i % 3;
    if (labels) fprintf(f, "%d,", label);
    if (y) y[i] = label;
    for (int j = 0; j < SIZE; j++) {
      double v = sample_value(label, j, seed, i);
      // the value as the file holds it, which the program reads
      char text[32];
      snprintf(text, sizeof text, "%.6f", v);
      if (x) x[i * SIZE + j] = (double)(aert_real)strtod(text, NULL);
      fprintf(f, "%s%c", text, j + 1 < SIZE ? ',' : '\n');
    }
  }
  ck_assert_int_eq(fclose(f), 0);
  free(path);
}

// The first named loss does not read the reconstruction: score takes recon.
static const char *const MODEL =
    "input x: [16]\n"
    "net encoder = dense(8, relu) -> dense(3)\n"
    "net decoder = dense(8, relu) -> dense(16, sigmoid)\n"
    "code = encoder(x)\n"
    "loss small = l1(code)\n"
    "loss recon = mse(decoder(code), x)\n"
    "train { data \"train.csv\"  test \"test.csv\"  batch 30  epochs 40\n"
    "        step minimize recon over encoder, decoder with adam(lr=0.01) }\n";

typedef struct trained {
  char *dir;
  double x[N_TEST * SIZE], train_x[N_TRAIN * SIZE];
  int y[N_TEST], train_y[N_TRAIN];
} trained;

static trained *train_model(void) {
  trained *t = calloc(1, sizeof *t);
  t->dir = make_program_dir("anomaly", MODEL, 1, SIZE);
  write_data(t->dir, "train.csv", N_TRAIN, 1, true, t->train_x, t->train_y);
  write_data(t->dir, "test.csv", N_TEST, 2, true, t->x, t->y);
  write_data(t->dir, "plain.csv", 20, 3, false, NULL, NULL);
  CommandResult r = run_command("cd %s && ./m train --classes 0-1 --checkpoint c.safetensors", t->dir);
  ck_assert_msg(r.status == 0, "%s", r.err);
  // 200 of the 300 training samples, 100 of the 150 test samples are in classes 0 and 1.
  ck_assert_msg(strstr(r.err, "--classes 0-1: 200 of the 300 samples of train.csv"), "%s", r.err);
  ck_assert_msg(strstr(r.err, "--classes 0-1: 100 of the 150 samples of test.csv"), "%s", r.err);
  command_result_free(&r);
  return t;
}

static void trained_free(trained *t) {
  remove_tree(t->dir);
  free(t->dir);
  free(t);
}

// score's CSV: the labels and scores, which must be N_TEST rows under "label,score".
static void read_scores(const char *path, int n, int *labels, double *scores) {
  char *text = read_whole_file(path, NULL);
  ck_assert_msg(strncmp(text, "label,score\n", 12) == 0, "%s", text);
  char *p = text + 12;
  for (int i = 0; i < n; i++) {
    char *end;
    labels[i] = (int)strtol(p, &end, 10);
    ck_assert_int_eq(*end, ',');
    scores[i] = strtod(end + 1, &end);
    ck_assert_int_eq(*end, '\n');
    p = end + 1;
  }
  ck_assert_int_eq(*p, 0);
  free(text);
}

START_TEST(test_score_files) {
  trained *t = train_model();
  CommandResult r = run_command("cd %s && ./m score --checkpoint c.safetensors -o s.csv", t->dir);
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(strstr(r.err, "by their loss 'recon'"), "%s", r.err);
  ck_assert_str_eq(r.out, "");  // figures only on stdout, and score has none
  command_result_free(&r);
  int labels[N_TEST];
  double scores[N_TEST], sum = 0;
  char *csv = path_in(t->dir, "s.csv");
  read_scores(csv, N_TEST, labels, scores);
  for (int i = 0; i < N_TEST; i++) {
    ck_assert_int_eq(labels[i], t->y[i]);
    sum += scores[i];
  }
  // Each sample's loss alone: their mean is eval's recon on the whole test set.
  r = run_command("cd %s && ./m eval --checkpoint c.safetensors", t->dir);
  ck_assert_int_eq(r.status, 0);
  ck_assert_double_eq_tol(sum / N_TEST, figure(r.out, "recon"), 1e-6 * figure(r.out, "recon"));
  command_result_free(&r);
  // .npy: float64 [150], and the labels beside it as int32 [150].
  r = run_command("cd %s && ./m score --checkpoint c.safetensors -o s.npy", t->dir);
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  char *npy = path_in(t->dir, "s.npy"), *lnpy = path_in(t->dir, "s.labels.npy");
  size_t size, lsize;
  char *bytes = read_whole_file(npy, &size), *lbytes = read_whole_file(lnpy, &lsize);
  ck_assert_uint_eq(size, 128 + N_TEST * 8);
  ck_assert_uint_eq(lsize, 128 + N_TEST * 4);
  ck_assert_ptr_nonnull(strstr(bytes + 10, "'descr': '<f8', 'fortran_order': False, 'shape': (150,)"));
  ck_assert_ptr_nonnull(strstr(lbytes + 10, "'descr': '<i4', 'fortran_order': False, 'shape': (150,)"));
  for (int i = 0; i < N_TEST; i++) {
    double v;
    int32_t l;
    memcpy(&v, bytes + 128 + 8 * i, 8), memcpy(&l, lbytes + 128 + 4 * i, 4);
    ck_assert_double_eq_tol(v, scores[i], 1e-8 * fabs(scores[i]) + 1e-12);
    ck_assert_int_eq(l, t->y[i]);
  }
  free(bytes), free(lbytes), free(npy), free(lnpy), free(csv);
  // Without labels: one column.
  r = run_command("cd %s && ./m score --checkpoint c.safetensors --data plain.csv -o p.csv && head -1 p.csv && wc -l < p.csv",
                  t->dir);
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, "score\n21\n");
  command_result_free(&r);
  r = run_command("cd %s && ./m score --checkpoint c.safetensors", t->dir);
  ck_assert_int_eq(r.status, 2);
  ck_assert_msg(strstr(r.err, "score needs -o scores.csv or -o scores.npy"), "%s", r.err);
  command_result_free(&r);
  trained_free(t);
}
END_TEST

// The threshold a fit computes from score's output on the training set's classes 0 and 1.
static void fit_scores(const trained *t, double *fit, int *n_fit) {
  CommandResult r = run_command("cd %s && ./m score --checkpoint c.safetensors --data train.csv -o f.csv", t->dir);
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  int labels[N_TRAIN];
  double scores[N_TRAIN];
  char *path = path_in(t->dir, "f.csv");
  read_scores(path, N_TRAIN, labels, scores);
  free(path);
  *n_fit = 0;
  for (int i = 0; i < N_TRAIN; i++)
    if (labels[i] != 2) fit[(*n_fit)++] = scores[i];
}

START_TEST(test_detect_figures) {
  trained *t = train_model();
  CommandResult r = run_command("cd %s && ./m score --checkpoint c.safetensors -o s.csv", t->dir);
  ck_assert_int_eq(r.status, 0);
  command_result_free(&r);
  int labels[N_TEST];
  double scores[N_TEST], fit[N_TRAIN];
  bool anomalous[N_TEST];
  char *csv = path_in(t->dir, "s.csv");
  read_scores(csv, N_TEST, labels, scores);
  free(csv);
  for (int i = 0; i < N_TEST; i++) anomalous[i] = labels[i] == 2;
  int n_fit;
  fit_scores(t, fit, &n_fit);
  ck_assert_int_eq(n_fit, 200);
  double mean = 0, var = 0;
  for (int i = 0; i < n_fit; i++) mean += fit[i] / n_fit;
  for (int i = 0; i < n_fit; i++) var += (fit[i] - mean) * (fit[i] - mean) / n_fit;

  r = run_command("cd %s && ./m detect --checkpoint c.safetensors --fit-on train.csv --sigma 3 --normal 0,1 "
                  "--baseline mean -o flags.csv --plot hist.png", t->dir);
  ck_assert_msg(r.status == 0, "%s", r.err);
  double threshold = mean + 3 * sqrt(var);
  ck_assert_double_eq_tol(figure(r.out, "threshold"), threshold, 1e-6 * threshold);
  double auc = pairwise_auc(scores, anomalous, N_TEST);
  ck_assert_double_eq_tol(figure(r.out, "roc_auc"), auc, 1e-5);
  ck_assert_double_eq_tol(figure(r.out, "pr_auc"), brute_average_precision(scores, anomalous, N_TEST), 1e-5);
  ck_assert_msg(auc > 0.9, "a model trained on classes 0 and 1 tells class 2 apart: roc_auc %g", auc);
  size_t tp = 0, flagged = 0;
  for (int i = 0; i < N_TEST; i++) flagged += scores[i] > threshold, tp += scores[i] > threshold && anomalous[i];
  ck_assert_double_eq_tol(figure(r.out, "precision"), flagged ? (double)tp / flagged : 0, 1e-5);
  ck_assert_double_eq_tol(figure(r.out, "recall"), (double)tp / 50, 1e-5);
  // The baseline: each test sample's mean squared distance to the mean of the training set's classes 0 and 1.
  double centre[SIZE] = {0}, base[N_TEST];
  for (int i = 0; i < N_TRAIN; i++)
    for (int j = 0; j < SIZE && t->train_y[i] != 2; j++) centre[j] += t->train_x[i * SIZE + j] / 200;
  for (int i = 0; i < N_TEST; i++) {
    base[i] = 0;
    for (int j = 0; j < SIZE; j++) base[i] += (t->x[i * SIZE + j] - centre[j]) * (t->x[i * SIZE + j] - centre[j]) / SIZE;
  }
  ck_assert_double_eq_tol(figure(r.out, "baseline_roc_auc"), pairwise_auc(base, anomalous, N_TEST), 1e-5);
  ck_assert_double_eq_tol(figure(r.out, "baseline_pr_auc"), brute_average_precision(base, anomalous, N_TEST), 1e-5);
  // The flags: one row a sample, flagged exactly above the threshold.
  char *path = path_in(t->dir, "flags.csv");
  char *text = read_whole_file(path, NULL), *p = text;
  ck_assert(strncmp(p, "label,score,anomaly\n", 20) == 0);
  p += 20;
  for (int i = 0; i < N_TEST; i++) {
    int label, flag, used;
    double score;
    ck_assert_int_eq(sscanf(p, "%d,%lf,%d\n%n", &label, &score, &flag, &used), 3);
    ck_assert_int_eq(label, labels[i]);
    ck_assert_int_eq(flag, score > figure(r.out, "threshold"));
    p += used;
  }
  ck_assert_int_eq(*p, 0);
  free(text), free(path);
  int width, height;
  path = path_in(t->dir, "hist.png");
  ck_assert(read_png_size(path, &width, &height) && width > 400 && height > 300);
  free(path);
  command_result_free(&r);

  // The default: the 0.99-quantile of the same scores (NumPy's interpolation), on the model's training data.
  r = run_command("cd %s && ./m detect --checkpoint c.safetensors --normal 0-1", t->dir);
  ck_assert_msg(r.status == 0, "%s", r.err);
  double q = aert_quantile(fit, (size_t)n_fit, 0.99);
  ck_assert_double_eq_tol(figure(r.out, "threshold"), q, 1e-6 * q);
  ck_assert_double_eq_tol(figure(r.out, "roc_auc"), auc, 1e-5);
  command_result_free(&r);
  // A given threshold, and no labels: only the threshold.
  r = run_command("cd %s && ./m detect --checkpoint c.safetensors --data plain.csv --threshold 0.25", t->dir);
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, "threshold 0.25\n");
  command_result_free(&r);
  trained_free(t);
}
END_TEST

START_TEST(test_detect_and_classes_errors) {
  trained *t = train_model();
  const struct {
    const char *args;
    int status;
    const char *message;
  } cases[] = {
      {"detect --checkpoint c.safetensors --threshold 1 --fit-on train.csv", 2,
       "--threshold 1 is the threshold itself; --fit-on goes with --quantile or --sigma"},
      {"detect --checkpoint c.safetensors --quantile 0.9 --sigma 2", 2,
       "give one of --threshold X, --quantile Q and --sigma K"},
      {"detect --checkpoint c.safetensors --quantile 2", 2, "--quantile needs a fraction in (0, 1], like 0.99, not '2'"},
      {"detect --checkpoint c.safetensors --normal 0-1 --baseline median", 2,
       "--baseline takes mean (each sample's distance to the mean --fit-on sample), not 'median'"},
      {"detect --checkpoint c.safetensors --baseline mean", 2, "name the normal classes with --normal"},
      {"detect --checkpoint c.safetensors --normal 1-0", 2, "--normal 1-0: the range 1-0 runs backwards; write 0-1"},
      {"detect --checkpoint c.safetensors --data plain.csv --normal 0", 1,
       "plain.csv: --normal 0 names classes by label, and this data set has none"},
      {"train --classes 0-x --epochs 1", 1, "--classes 0-x: 'x' is not a class"},
      {"train --classes 5 --epochs 1", 1, "train.csv: no sample has a label in --classes 5 (its labels run from 0 to 2)"},
      {"train --classes 0 --data plain.csv --epochs 1", 1,
       "plain.csv: --classes 0 selects samples by label, and this data set has none"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    CommandResult r = run_command("cd %s && ./m %s", t->dir, cases[i].args);
    ck_assert_msg(r.status == cases[i].status, "%s: status %d: %s", cases[i].args, r.status, r.err);
    ck_assert_msg(strstr(r.err, cases[i].message), "%s: expected '%s' in: %s", cases[i].args, cases[i].message, r.err);
    command_result_free(&r);
  }
  trained_free(t);
}
END_TEST

Suite *anomaly_suite(void) {
  Suite *s = suite_create("anomaly");
  TCase *tc = tcase_create("anomaly");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_auc_by_hand);
  tcase_add_test(tc, test_auc_against_pairs);
  tcase_add_test(tc, test_quantile_and_moments);
  tcase_add_test(tc, test_class_lists);
  tcase_add_test(tc, test_keep_classes);
  tcase_add_test(tc, test_score_files);
  tcase_add_test(tc, test_detect_figures);
  tcase_add_test(tc, test_detect_and_classes_errors);
  suite_add_tcase(s, tc);
  return s;
}
