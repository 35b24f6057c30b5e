// test_schedules.c — ramp(from, to, epochs) and cosine(from, to, epochs) at
// run time: a tiny model whose loss is its schedules (plus a term that keeps
// it a function of the net, times 0) and whose lr is a cosine, trained with
// `train --trace`, must show each batch's fractional epoch, the loss's
// schedules and the learning rate as the formulas of docs/language.md give
// them; `--lr` replaces the lr schedule by a constant; `--resume` continues
// the schedules where the checkpoint left them; and `eval` values them at
// the checkpoint's epoch. tests/torch/schedules.ae checks them against
// PyTorch, gradients and Adam included.
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

#define AEC AEC_BUILD_DIR "/aec"

// 10 samples in batches of 4: 3 batches an epoch (4, 4 and 2), 3 epochs.
static const char *const model_text =
    "input x: [4]\n"
    "net f = dense(3, tanh) -> dense(4, sigmoid)\n"
    "loss recon = 0 * mse(f(x), x) + ramp(1, 3, 1.5) + 10 * cosine(2, 1, 1)\n"
    "train { batch 4  epochs 3  step minimize recon over f with sgd(lr=cosine(0.1, 0.01, 2)) }\n";
enum { EPOCH_BATCHES = 3, EPOCHS = 3 };

static double ramp(double from, double to, double epochs, double t) {
  t = t < 0 ? 0 : t > epochs ? epochs : t;
  return from + (to - from) * t / epochs;
}
static double cosine(double from, double to, double epochs, double t) {
  t = t < 0 ? 0 : t > epochs ? epochs : t;
  return to + (from - to) * (1 + cos(M_PI * t / epochs)) / 2;
}
// The loss as the generated code computes it: each schedule in double, then
// in float from there on.
static double loss_at(double t) {
  float r = (float)ramp(1, 3, 1.5, t), c = (float)cosine(2, 1, 1, t);
  return (double)(0.0f + r + 10.0f * c);
}

typedef struct Batch {
  int epoch, batch;
  double loss, progress, lr;
  char line[4096];
} Batch;

// The trace's lines (at most max); fails the test on a malformed one.
static int read_trace(const char *dir, const char *name, Batch *out, int max) {
  char *path = path_in(dir, name);
  char *text = read_whole_file(path, NULL);
  int n = 0;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    ck_assert_int_lt(n, max);
    Batch *b = &out[n++];
    snprintf(b->line, sizeof b->line, "%s", line);
    const char *losses = strstr(line, "\"losses\": ["), *progress = strstr(line, "\"progress\": "),
               *lr = strstr(line, "\"lr\": [");
    ck_assert_msg(losses && progress && lr, "a trace line without losses, progress or lr: %s", line);
    ck_assert_int_eq(sscanf(line, "{\"epoch\": %d, \"batch\": %d", &b->epoch, &b->batch), 2);
    ck_assert_int_eq(sscanf(losses, "\"losses\": [%lf", &b->loss), 1);
    ck_assert_int_eq(sscanf(progress, "\"progress\": %lf", &b->progress), 1);
    ck_assert_int_eq(sscanf(lr, "\"lr\": [%lf", &b->lr), 1);
  }
  free(text);
  free(path);
  return n;
}

static void assert_close(double got, double want, double tolerance, const char *what, int i) {
  ck_assert_msg(fabs(got - want) <= tolerance * fmax(fabs(want), 1e-30), "batch %d: %s %.17g, expected %.17g", i + 1,
                what, got, want);
}

START_TEST(each_batch_takes_the_schedules_at_its_fractional_epoch) {
  char *dir = make_program_dir("schedules", model_text, 10, 4);
  must_succeed_in(dir, "./m train --data train.csv --test none --checkpoint c.safetensors --trace t.jsonl");
  Batch b[16];
  ck_assert_int_eq(read_trace(dir, "t.jsonl", b, 16), EPOCHS * EPOCH_BATCHES);
  for (int i = 0; i < EPOCHS * EPOCH_BATCHES; i++) {
    double t = i / EPOCH_BATCHES + (double)(i % EPOCH_BATCHES) / EPOCH_BATCHES;
    ck_assert_int_eq(b[i].epoch, i / EPOCH_BATCHES + 1);
    assert_close(b[i].progress, t, 1e-15, "progress", i);
    assert_close(b[i].lr, cosine(0.1, 0.01, 2, t), 1e-15, "lr", i);
    assert_close(b[i].loss, loss_at(t), 1e-7, "loss", i);
  }
  // The ends and the holds after them: t = 0 gives every `from`; from t = 2
  // the lr holds 0.01, and from t = 1.5 the ramp holds 3, so the loss is 3 + 10.
  assert_close(b[0].lr, 0.1, 1e-15, "lr", 0);
  assert_close(b[0].loss, 1 + 20, 1e-7, "loss", 0);
  assert_close(b[4].loss, 1 + 2 * (4.0 / 3) / 1.5 + 10, 1e-6, "loss", 4);
  for (int i = 6; i < 9; i++) assert_close(b[i].lr, 0.01, 1e-15, "lr", i);
  for (int i = 5; i < 9; i++) assert_close(b[i].loss, 13, 1e-7, "loss", i);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(the_lr_option_replaces_an_lr_schedule) {
  char *dir = make_program_dir("schedules_lr", model_text, 10, 4);
  must_succeed_in(dir, "./m train --data train.csv --test none --checkpoint c.safetensors --trace t.jsonl --lr 0.05");
  Batch b[16];
  ck_assert_int_eq(read_trace(dir, "t.jsonl", b, 16), EPOCHS * EPOCH_BATCHES);
  for (int i = 0; i < EPOCHS * EPOCH_BATCHES; i++) {
    assert_close(b[i].lr, 0.05, 1e-15, "lr", i);
    assert_close(b[i].loss, loss_at(b[i].progress), 1e-7, "loss", i);  // the loss's schedules go on
  }
  CommandResult help = run_in(dir, "./m train --help");
  ck_assert_msg(strstr(help.out, "a constant, even where the model gives a schedule") ||
                    strstr(help.err, "a constant, even where the model gives a schedule"),
                "train --help does not say that --lr replaces a schedule:\n%s%s", help.out, help.err);
  command_result_free(&help);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(resume_continues_the_schedules) {
  char *dir = make_program_dir("schedules_resume", model_text, 10, 4);
  must_succeed_in(dir, "./m train --data train.csv --test none --checkpoint all.safetensors --trace all.jsonl");
  must_succeed_in(dir, "./m train --data train.csv --test none --epochs 1 --checkpoint part.safetensors");
  must_succeed_in(dir, "./m train --data train.csv --test none --resume part.safetensors --checkpoint part.safetensors "
                       "--trace rest.jsonl");
  Batch all[16], rest[16];
  ck_assert_int_eq(read_trace(dir, "all.jsonl", all, 16), 9);
  ck_assert_int_eq(read_trace(dir, "rest.jsonl", rest, 16), 6);
  for (int i = 0; i < 6; i++)
    ck_assert_msg(strcmp(rest[i].line, all[i + 3].line) == 0, "resumed batch %d:\n%s\nthe whole run's:\n%s", i + 1,
                  rest[i].line, all[i + 3].line);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(eval_takes_the_schedules_at_the_checkpoints_epoch) {
  char *dir = make_program_dir("schedules_eval", model_text, 10, 4);
  CommandResult r = run_in(dir, "./m train --data train.csv --test train.csv --epochs 1 --checkpoint one.safetensors");
  ck_assert_msg(r.status == 0, "%s", r.err);
  // The test loss at the end of epoch 1 takes t = 1: ramp 1 + 2 / 1.5, cosine 1.
  double at_one = loss_at(1);
  assert_close(figure(r.out, "test.recon"), at_one, 1e-7, "test.recon", 0);
  command_result_free(&r);
  r = run_in(dir, "./m eval --checkpoint one.safetensors --data train.csv");
  ck_assert_msg(r.status == 0, "%s", r.err);
  assert_close(figure(r.out, "recon"), at_one, 1e-7, "eval recon", 0);
  command_result_free(&r);
  must_succeed_in(dir, "./m train --data train.csv --test none --checkpoint three.safetensors");
  r = run_in(dir, "./m eval --checkpoint three.safetensors --data train.csv");
  ck_assert_msg(r.status == 0, "%s", r.err);
  assert_close(figure(r.out, "recon"), 13, 1e-7, "eval recon", 0);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

Suite *schedules_suite(void) {
  Suite *s = suite_create("schedules");
  TCase *t = tcase_create("schedules");
  tcase_set_timeout(t, 120);
  tcase_add_test(t, each_batch_takes_the_schedules_at_its_fractional_epoch);
  tcase_add_test(t, the_lr_option_replaces_an_lr_schedule);
  tcase_add_test(t, resume_continues_the_schedules);
  tcase_add_test(t, eval_takes_the_schedules_at_the_checkpoints_epoch);
  suite_add_tcase(s, t);
  return s;
}
