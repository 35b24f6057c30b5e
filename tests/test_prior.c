// test_prior.c — adversarial autoencoders: the priors' samples (moments,
// the mixture's components), the runtime's sampler against the generated
// kernels, each step changing only its nets' parameters (bit for bit), the
// values shared between steps against the unshared reference (-O0), train
// --steps, an end-to-end run with histogram, encode --plot and prior-match.
#define _GNU_SOURCE
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aert.h"
#include "tests.h"

#define AEC AEC_BUILD_DIR "/aec"
#define MODEL AEC_SOURCE_DIR "/tests/gradcheck/adversarial.ae"

// ------------------------------------------------------------- moments
static void moments(const aert_prior *p, int n, double *mean, double *std) {
  double *sum = calloc((size_t)p->dim, sizeof *sum), *sum2 = calloc((size_t)p->dim, sizeof *sum2), x[8];
  uint64_t key = aert_stream_key(7, AERT_STREAM_PRIOR, 3);
  for (int i = 0; i < n; i++) {
    aert_prior_sample(p, key, (uint64_t)i, x);
    for (int d = 0; d < p->dim; d++) sum[d] += x[d], sum2[d] += x[d] * x[d];
  }
  for (int d = 0; d < p->dim; d++) {
    mean[d] = sum[d] / n;
    std[d] = sqrt(sum2[d] / n - mean[d] * mean[d]);
  }
  free(sum), free(sum2);
}

static void check_against_analytic(const aert_prior *p, int n, double tolerance) {
  double mean[8], std[8];
  moments(p, n, mean, std);
  for (int d = 0; d < p->dim; d++) {
    double want_mean, want_std;
    aert_prior_moments(p, d, &want_mean, &want_std);
    ck_assert_msg(fabs(mean[d] - want_mean) < tolerance * want_std, "kind %d dim %d: mean %g, want %g", p->kind, d,
                  mean[d], want_mean);
    ck_assert_msg(fabs(std[d] - want_std) < tolerance * want_std, "kind %d dim %d: std %g, want %g", p->kind, d, std[d],
                  want_std);
    // The density integrates to 1.
    double integral = 0, lo = want_mean - 12 * want_std, hi = want_mean + 12 * want_std;
    for (int k = 0; k < 24000; k++) integral += aert_prior_density(p, d, lo + (hi - lo) * (k + 0.5) / 24000) * (hi - lo) / 24000;
    ck_assert_msg(fabs(integral - 1) < 1e-3, "kind %d dim %d: the density integrates to %g", p->kind, d, integral);
  }
}

START_TEST(prior_samples_have_the_prior_moments) {
  aert_prior gaussian = {AERT_PRIOR_GAUSSIAN, 3, {2, 0, 0}, 0};
  aert_prior uniform = {AERT_PRIOR_UNIFORM, 2, {-1, 3, 0}, 0};
  aert_prior mixture = {AERT_PRIOR_MIXTURE, 3, {4, 0.3, 3}, 0};
  check_against_analytic(&gaussian, 200000, 0.01);
  check_against_analytic(&uniform, 200000, 0.01);
  check_against_analytic(&mixture, 200000, 0.01);
  double mean[3], std[3];
  moments(&gaussian, 200000, mean, std);
  ck_assert(fabs(std[0] - 2) < 0.02 && fabs(mean[1]) < 0.02);
}
END_TEST

// Each of the k components gets 1/k of the samples, centred on its point of the circle with the given std.
START_TEST(mixture_components_sit_on_the_circle) {
  enum { K = 5, N = 100000 };
  aert_prior p = {AERT_PRIOR_MIXTURE, 2, {K, 0.25, 4}, 0};
  double sum[K][2] = {{0}}, sum2[K] = {0};
  int count[K] = {0};
  uint64_t key = aert_stream_key(1, AERT_STREAM_PRIOR, 0);
  for (int i = 0; i < N; i++) {
    double x[2];
    aert_prior_sample(&p, key, (uint64_t)i, x);
    int best = 0;
    double best_d = INFINITY;
    for (int c = 0; c < K; c++) {
      double cx = 4 * cos(2 * M_PI * c / K), cy = 4 * sin(2 * M_PI * c / K);
      double d = (x[0] - cx) * (x[0] - cx) + (x[1] - cy) * (x[1] - cy);
      if (d < best_d) best_d = d, best = c;
    }
    count[best]++, sum[best][0] += x[0], sum[best][1] += x[1], sum2[best] += best_d;
  }
  for (int c = 0; c < K; c++) {
    double cx = 4 * cos(2 * M_PI * c / K), cy = 4 * sin(2 * M_PI * c / K);
    ck_assert_msg(fabs(count[c] / (double)N - 1.0 / K) < 0.01, "component %d has %d samples", c, count[c]);
    ck_assert_msg(fabs(sum[c][0] / count[c] - cx) < 0.01 && fabs(sum[c][1] / count[c] - cy) < 0.01,
                  "component %d's mean (%g, %g), want (%g, %g)", c, sum[c][0] / count[c], sum[c][1] / count[c], cx, cy);
    ck_assert_msg(fabs(sqrt(sum2[c] / count[c] / 2) - 0.25) < 0.01, "component %d's std %g", c,
                  sqrt(sum2[c] / count[c] / 2));
  }
}
END_TEST

// ------------------------------------------------------------ programs
static char *dir;

// 64 labelled samples of 6 values in (0, 1): 4 batches of 16.
static void setup_dir(void) {
  dir = make_temp_dir("prior");
  char path[600], text[8192];
  size_t used = 0;
  for (int row = 0; row < 64; row++) {
    used += (size_t)snprintf(text + used, sizeof text - used, "%d", row % 3);
    for (int col = 0; col < 6; col++)
      used += (size_t)snprintf(text + used, sizeof text - used, ",%.4f", 0.05 + 0.9 * fmod(0.37 * row + 0.61 * col * col + 0.13, 1.0));
    text[used++] = '\n';
  }
  snprintf(path, sizeof path, "%s/data.csv", dir);
  write_file(path, text, used);
}

static CommandResult in_dir(const char *fmt, const char *arg) {
  char command[2048];
  snprintf(command, sizeof command, fmt, arg);
  return run_command("cd %s && %s", dir, command);
}

static void must(CommandResult r, const char *what) {
  ck_assert_msg(r.status == 0, "%s failed (%d):\n%s\n%s", what, r.status, r.out, r.err);
  command_result_free(&r);
}

static void build(const char *name, const char *options) {
  CommandResult r = run_command("cd %s && %s %s %s -o %s", dir, AEC, MODEL, options, name);
  must(r, "aec");
}

// The bytes of one tensor of a safetensors file (malloc'd), or NULL.
static unsigned char *tensor(const char *file, const char *name, size_t *size) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "no %s", path);
  uint64_t header = 0;
  ck_assert_int_eq(fread(&header, 8, 1, f), 1);
  char *json = calloc(header + 1, 1);
  ck_assert_int_eq(fread(json, 1, header, f), header);
  char key[200];
  snprintf(key, sizeof key, "\"%s\"", name);
  char *at = strstr(json, key);
  ck_assert_msg(at != NULL, "%s has no tensor %s", file, name);
  at = strstr(at, "\"data_offsets\"");
  unsigned long begin = 0, end = 0;
  ck_assert_int_eq(sscanf(strchr(at, '[') + 1, "%lu , %lu", &begin, &end), 2);
  unsigned char *data = malloc(end - begin + 1);
  fseek(f, (long)(8 + header + begin), SEEK_SET);
  ck_assert_int_eq(fread(data, 1, end - begin, f), end - begin);
  fclose(f);
  free(json);
  *size = end - begin;
  return data;
}

static bool same_tensor(const char *a, const char *b, const char *name) {
  size_t sa, sb;
  unsigned char *x = tensor(a, name, &sa), *y = tensor(b, name, &sb);
  bool same = sa == sb && memcmp(x, y, sa) == 0;
  free(x), free(y);
  return same;
}

static const char *const encoder[] = {"encoder.dense_1.kernel", "encoder.dense_1.bias", "encoder.dense_2.kernel",
                                      "encoder.dense_2.bias"};
static const char *const decoder[] = {"decoder.dense_1.kernel", "decoder.dense_1.bias"};
static const char *const critic[] = {"critic.dense_1.kernel", "critic.dense_1.bias", "critic.dense_2.kernel",
                                     "critic.dense_2.bias"};

static void expect(const char *a, const char *b, const char *const *names, int n, bool same, const char *why) {
  for (int i = 0; i < n; i++)
    ck_assert_msg(same_tensor(a, b, names[i]) == same, "%s: %s %s", why, names[i], same ? "changed" : "did not change");
}

// A step leaves the parameters of the nets it does not name bit for bit unchanged.
START_TEST(a_step_changes_only_its_nets) {
  setup_dir();
  build("adv", "");
  must(in_dir("./adv train --data data.csv --test none --batch 16 --epochs 0 --checkpoint %s", "init.st"), "init");
  must(in_dir("./adv train --data data.csv --test none --batch 16 --epochs 2 --steps disc --checkpoint %s", "disc.st"),
       "--steps disc");
  expect("init.st", "disc.st", encoder, 4, true, "disc trains the critic only");
  expect("init.st", "disc.st", decoder, 2, true, "disc trains the critic only");
  expect("init.st", "disc.st", critic, 4, false, "disc trains the critic");
  // gen alone: its shared inputs are computed by the step itself (nothing ran before it).
  must(in_dir("./adv train --data data.csv --test none --batch 16 --epochs 2 --steps %s --checkpoint gen.st", "gen"),
       "--steps gen");
  expect("init.st", "gen.st", decoder, 2, true, "gen trains the encoder only");
  expect("init.st", "gen.st", critic, 4, true, "gen trains the encoder only");
  expect("init.st", "gen.st", encoder, 4, false, "gen trains the encoder");
  CommandResult r = in_dir("./adv train --data data.csv --test none --batch 16 --epochs 1 --steps %s", "recon,nope");
  ck_assert_int_ne(r.status, 0);
  ck_assert_msg(strstr(r.err, "no step minimizing 'nope'") != NULL, "%s", r.err);
  command_result_free(&r);
  remove_tree(dir);
}
END_TEST

// --lr LOSS=X sets one step's rate: a rate of 1e-30 moves no kernel element
// (each is far larger than its Adam step), while the other step still trains.
START_TEST(lr_overrides_one_named_step) {
  setup_dir();
  build("adv", "");
  must(in_dir("./adv train --data data.csv --test none --batch 16 --epochs 0 --checkpoint %s", "init.st"), "init");
  must(in_dir("./adv train --data data.csv --test none --batch 16 --epochs 2 --steps disc,gen --lr %s "
              "--checkpoint slow.st", "disc=1e-30"), "--lr disc=1e-30");
  const char *critic_kernels[] = {"critic.dense_1.kernel", "critic.dense_2.kernel"};
  expect("init.st", "slow.st", critic_kernels, 2, true, "disc at a rate of 1e-30");
  expect("init.st", "slow.st", encoder, 4, false, "gen at the model's rate");
  must(in_dir("./adv train --data data.csv --test none --batch 16 --epochs 2 --steps disc,gen --lr %s "
              "--checkpoint both.st", "gen=1e-30,disc=0.01"), "--lr gen=1e-30,disc=0.01");
  expect("init.st", "both.st", critic_kernels, 2, false, "disc at 0.01");
  const char *encoder_kernels[] = {"encoder.dense_1.kernel", "encoder.dense_2.kernel"};
  expect("init.st", "both.st", encoder_kernels, 2, true, "gen at a rate of 1e-30");
  static const char *const bad[][2] = {{"nope=1", "no step minimizing 'nope'"},
                                       {"gen=fast", "needs a positive number, not 'fast'"},
                                       {"gen", "needs a positive number, not 'gen'"},
                                       {"recon=0.1,disc", "'disc' is not LOSS=RATE"}};
  for (int i = 0; i < 4; i++) {
    CommandResult r = in_dir("./adv train --data data.csv --test none --epochs 1 --lr %s", bad[i][0]);
    ck_assert_msg(r.status == 2, "--lr %s exited %d", bad[i][0], r.status);
    ck_assert_msg(strstr(r.err, bad[i][1]) != NULL, "--lr %s: %s", bad[i][0], r.err);
    command_result_free(&r);
  }
  remove_tree(dir);
}
END_TEST

static int read_losses(const char *file, double *losses, int max) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "no trace %s", path);
  char line[65536];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    char *at = strstr(line, "\"losses\": [");
    for (at = at ? at + 11 : NULL; at && n < max;) {
      char *end;
      double v = strtod(at, &end);
      if (end == at) break;
      losses[n++] = v;
      at = end + strspn(end, ", ");
    }
  }
  fclose(f);
  return n;
}

// -O2 shares the encoder's values between disc and gen; -O0 computes every
// step afresh: the losses of every step agree, and the C says what is shared.
START_TEST(shared_values_match_fresh_computation) {
  setup_dir();
  build("adv2", "-O2");
  build("adv0", "-O0");
  must(in_dir("%s train --data data.csv --test none --batch 16 --epochs 3 --trace t2.jsonl", "./adv2"), "-O2 train");
  must(in_dir("%s train --data data.csv --test none --batch 16 --epochs 3 --trace t0.jsonl", "./adv0"), "-O0 train");
  double a[64], b[64];
  int n = read_losses("t2.jsonl", a, 64);
  ck_assert_int_eq(n, 36);  // 4 batches x 3 epochs x 3 steps
  ck_assert_int_eq(read_losses("t0.jsonl", b, 64), n);
  for (int i = 0; i < n; i++)
    ck_assert_msg(fabs(a[i] - b[i]) <= 1e-5 * fmax(fabs(b[i]), 1e-3), "loss %d: -O2 %.9g, -O0 %.9g", i, a[i], b[i]);
  CommandResult r = run_command("cd %s && %s %s -o adv2.c && grep -c 'read from step 1 (disc), unchanged since' adv2.c && "
                                "grep -c 'gen_shared_inputs(ctx, input, n)' adv2.c",
                                dir, AEC, MODEL);
  must(r, "the generated C names the shared values");
  remove_tree(dir);
}
END_TEST

// Train, the named losses, histogram, encode --plot and prior-match figures.
START_TEST(an_adversarial_model_trains_and_matches_its_prior) {
  setup_dir();
  build("adv", "");
  CommandResult r = in_dir("./adv train --data data.csv --test data.csv --batch 16 --epochs 2 --checkpoint %s", "a.st");
  ck_assert_msg(r.status == 0, "%s", r.err);
  const char *figures[] = {"train.recon", "train.disc", "train.gen", "test.recon", "test.disc", "test.gen"};
  for (int i = 0; i < 6; i++) ck_assert_msg(isfinite(figure(r.out, figures[i])), "no %s in\n%s", figures[i], r.out);
  command_result_free(&r);
  must(in_dir("./adv train --data data.csv --test none --batch 16 --epochs 2 --steps recon --checkpoint %s", "plain.st"),
       "--steps recon");
  must(in_dir("./adv histogram --checkpoint a.st --data data.csv -o %s", "hist.png"), "histogram");
  must(in_dir("./adv encode --checkpoint a.st --data data.csv -o codes.csv --plot %s", "codes.png"), "encode --plot");
  r = in_dir("./adv prior-match --checkpoint a.st --data data.csv --baseline %s", "plain.st");
  ck_assert_msg(r.status == 0, "%s", r.err);
  const char *match[] = {"code_mean.0", "code_std.0", "code_mean.1", "code_std.1", "distance", "baseline_distance"};
  for (int i = 0; i < 6; i++) ck_assert_msg(isfinite(figure(r.out, match[i])), "no %s in\n%s", match[i], r.out);
  ck_assert(figure(r.out, "distance") >= 0 && figure(r.out, "code_std.0") > 0);
  ck_assert_msg(strstr(r.err, "energy distance") != NULL, "%s", r.err);
  command_result_free(&r);
  r = run_command("cd %s && test -s hist.png && test -s codes.png", dir);
  must(r, "pictures");
  remove_tree(dir);
}
END_TEST

// The energy distance is about zero between two samples of one prior and large between two priors.
START_TEST(prior_match_separates_distributions) {
  setup_dir();
  // A model whose code is its prior's sample: codes and prior samples come from the same distribution.
  char path[700];
  snprintf(path, sizeof path, "%s/same.ae", dir);
  const char *text = "input x: [6]\nnet decoder = dense(6, sigmoid)\ncode = gaussian([2], 1.5)\n"
                     "loss recon = bce(decoder(code), x)\n";
  write_file(path, text, strlen(text));
  must(run_command("cd %s && %s same.ae -o same && ./same train --data data.csv --test none --batch 16 --epochs 1 "
                   "--checkpoint s.st", dir, AEC), "same");
  CommandResult r = run_command("cd %s && ./same prior-match --checkpoint s.st --data data.csv --seed 9", dir);
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(fabs(figure(r.out, "distance")) < 0.1, "%s", r.out);
  command_result_free(&r);
  remove_tree(dir);
}
END_TEST

START_TEST(prior_errors_are_clear) {
  setup_dir();
  char path[700];
  snprintf(path, sizeof path, "%s/bad.ae", dir);
  const char *text = "input x: [6]\nnet e = dense(2)\nnet c = dense(1, sigmoid)\nz = e(x)\np = mixture([1], 3, 0.5)\n"
                     "q = gaussian(2)\nloss l = bce(c(z), 0) + bce(c(p), 1) + bce(c(q), 1)\n";
  write_file(path, text, strlen(text));
  CommandResult r = run_command("cd %s && %s bad.ae -o bad.c", dir, AEC);
  ck_assert_int_ne(r.status, 0);
  ck_assert_msg(strstr(r.err, "bad.ae:5:5: error: mixture spaces its gaussians") != NULL, "%s", r.err);
  ck_assert_msg(strstr(r.err, "bad.ae:6:14: error: gaussian: the first argument is the shape") != NULL, "%s", r.err);
  command_result_free(&r);
  remove_tree(dir);
}
END_TEST

Suite *prior_suite(void) {
  Suite *s = suite_create("prior");
  TCase *t = tcase_create("priors and adversarial training");
  tcase_set_timeout(t, 180);
  tcase_add_test(t, prior_samples_have_the_prior_moments);
  tcase_add_test(t, mixture_components_sit_on_the_circle);
  tcase_add_test(t, a_step_changes_only_its_nets);
  tcase_add_test(t, lr_overrides_one_named_step);
  tcase_add_test(t, shared_values_match_fresh_computation);
  tcase_add_test(t, an_adversarial_model_trains_and_matches_its_prior);
  tcase_add_test(t, prior_match_separates_distributions);
  tcase_add_test(t, prior_errors_are_clear);
  suite_add_tcase(s, t);
  return s;
}
