// test_commands.c — aert_main driven with the hand-written model lin
// (helpers.c: a linear autoencoder 4 -> 2 -> 4 with MSE and Adam), so the
// runtime's command line and commands are tested without the compiler:
// training and its figures, resuming bit for bit, damaged checkpoints, a NaN
// loss, usage errors, summary, encode, reconstruct and gradcheck.
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aert.h"
#include "core.h"
#include "tests.h"

// Samples on a 2-d plane in 4-d (so a 2-unit code can fit them), with labels.
static void write_lin_data(const char *path, int n, uint64_t seed) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "label,x0,x1,x2,x3\n");
  for (int i = 0; i < n; i++) {
    double a = aert_uniform01(seed, 2 * (uint64_t)i), b = aert_uniform01(seed, 2 * (uint64_t)i + 1);
    fprintf(f, "%d,%.6f,%.6f,%.6f,%.6f\n", i % 3, a, b, 0.5 * (a + b), 0.25 + 0.5 * a - 0.25 * b);
  }
  ck_assert_int_eq(fclose(f), 0);
}

// Runs aert_main(model, "PROG args...") in a child process in `dir`,
// capturing its stdout and stderr.
static CommandResult run_main(const aert_model *model, const char *dir, const char *fmt, ...) {
  char *args = NULL;
  va_list ap;
  va_start(ap, fmt);
  ck_assert_int_ge(vasprintf(&args, fmt, ap), 0);
  va_end(ap);
  char *out = path_in(dir, ".stdout"), *err = path_in(dir, ".stderr");
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (chdir(dir) != 0) _exit(99);
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(o, 1), dup2(e, 2);
    close(o), close(e);
    char *argv[64];
    int argc = 0;
    argv[argc++] = "lin";
    for (char *save = NULL, *t = strtok_r(args, " ", &save); t && argc < 63; t = strtok_r(NULL, " ", &save))
      argv[argc++] = t;
    argv[argc] = NULL;
    int status = aert_main(model, argc, argv);
    fflush(stdout);
    _exit(status);
  }
  int raw = 0;
  ck_assert_int_eq(waitpid(pid, &raw, 0), pid);
  CommandResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = read_whole_file(out, NULL);
  r.err = read_whole_file(err, NULL);
  unlink(out), unlink(err);
  free(out), free(err), free(args);
  return r;
}

static char *lin_dir(void) {
  char *dir = make_temp_dir("lin");
  char *train = path_in(dir, "train.csv"), *test = path_in(dir, "test.csv");
  write_lin_data(train, 100, 11);
  write_lin_data(test, 40, 12);
  free(train), free(test);
  return dir;
}

static bool same_file(const char *a, const char *b) {
  size_t na, nb;
  char *x = read_whole_file(a, &na), *y = read_whole_file(b, &nb);
  bool same = na == nb && memcmp(x, y, na) == 0;
  free(x), free(y);
  return same;
}

// -------------------------------------------------------------- aert_main
START_TEST(test_train_figures_and_checkpoint) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  CommandResult r = run_main(&m, dir, "train --epochs 6 --batch 8 --lr 0.05 --log log.csv --threads 1");
  ck_assert_msg(r.status == 0, "train failed: %s", r.err);
  double first = figure(r.out, "test.recon");
  ck_assert_msg(strstr(r.out, "epoch 1\ntrain.recon "), "%s", r.out);
  char *line1 = strstr(r.out, "test.recon ");
  ck_assert_ptr_nonnull(line1);
  double epoch1 = strtod(line1 + strlen("test.recon "), NULL);
  ck_assert(isfinite(first) && isfinite(epoch1));
  ck_assert_msg(first < 0.5 * epoch1, "the test loss did not fall: %g -> %g", epoch1, first);
  ck_assert_double_eq(figure(r.out, "epoch"), 6);
  ck_assert(figure(r.out, "samples_per_s") > 0);
  for (const char *l = r.out; *l; l = strchr(l, '\n') + 1) {  // stdout: only `name value` lines
    const char *space = strchr(l, ' '), *nl = strchr(l, '\n');
    ck_assert_msg(space && nl && space < nl && !memchr(space + 1, ' ', (size_t)(nl - space - 1)), "not a figure line in: %s", r.out);
  }
  ck_assert_msg(strstr(r.err, "epoch 6/6"), "%s", r.err);
  char *ckpt = path_in(dir, "lin.safetensors"), *log = path_in(dir, "log.csv");
  ck_assert(path_exists(ckpt));
  char *log_text = read_whole_file(log, NULL);
  ck_assert_msg(strncmp(log_text, "epoch,train.recon,test.recon,seconds\n1,", 39) == 0, "%s", log_text);
  ck_assert(strstr(log_text, "\n6,"));
  free(log_text);

  CommandResult e = run_main(&m, dir, "eval --checkpoint lin.safetensors");
  ck_assert_msg(e.status == 0, "%s", e.err);
  ck_assert_double_eq_tol(figure(e.out, "recon"), first, 1e-6);
  command_result_free(&e);
  e = run_main(&m, dir, "eval --checkpoint lin.safetensors --data train.csv --batch 7");
  ck_assert_msg(e.status == 0 && figure(e.out, "recon") > 0, "%s", e.err);
  command_result_free(&e);
  free(ckpt), free(log);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_resume_is_bit_identical) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  CommandResult r = run_main(&m, dir, "train --epochs 0 --checkpoint zero.safetensors --seed 3");
  ck_assert_msg(r.status == 0 && strcmp(r.out, "") == 0, "%s", r.err);
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 2 --resume zero.safetensors --checkpoint from_zero.safetensors");
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 2 --checkpoint straight.safetensors --seed 3");
  ck_assert_msg(r.status == 0, "%s", r.err);
  double straight = figure(r.out, "test.recon");
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 1 --checkpoint one.safetensors --seed 3");
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 2 --resume one.safetensors --checkpoint two.safetensors");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_double_eq(figure(r.out, "epoch"), 2);
  ck_assert_ptr_null(strstr(r.out, "epoch 1\n"));
  ck_assert_double_eq(figure(r.out, "test.recon"), straight);
  command_result_free(&r);
  char *a = path_in(dir, "straight.safetensors"), *b = path_in(dir, "two.safetensors");
  ck_assert_msg(same_file(a, b), "resumed checkpoint differs from the straight run");
  free(b);
  b = path_in(dir, "from_zero.safetensors");
  ck_assert_msg(same_file(a, b), "training from the --epochs 0 checkpoint differs from the straight run");
  r = run_main(&m, dir, "train --epochs 2 --resume two.safetensors --checkpoint three.safetensors");
  ck_assert_int_eq(r.status, 0);
  ck_assert_msg(strstr(r.err, "nothing to do"), "%s", r.err);
  command_result_free(&r);
  free(a), free(b);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_corrupt_or_foreign_checkpoint) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  CommandResult r = run_main(&m, dir, "train --epochs 1");
  ck_assert_int_eq(r.status, 0);
  command_result_free(&r);
  char *ckpt = path_in(dir, "lin.safetensors"), *cut = path_in(dir, "cut.safetensors");
  size_t size;
  char *bytes = read_whole_file(ckpt, &size);
  write_file(cut, bytes, size - 20);
  r = run_main(&m, dir, "eval --checkpoint cut.safetensors");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "lin: error: cut.safetensors: ") && strstr(r.err, "truncated"), "%s", r.err);
  ck_assert_str_eq(r.out, "");
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 2 --resume cut.safetensors");
  ck_assert_int_eq(r.status, 1);
  command_result_free(&r);
  aert_param renamed[4];
  memcpy(renamed, lin_params, sizeof renamed);
  renamed[2].name = "decoder.out.kernel";
  aert_model other = m;
  other.params = renamed;
  r = run_main(&other, dir, "eval --checkpoint lin.safetensors");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "decoder.out.kernel"), "%s", r.err);
  command_result_free(&r);
  free(bytes), free(ckpt), free(cut);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_nan_loss_stops_training) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  lin_nan_after_batches = 3;
  CommandResult r = run_main(&m, dir, "train --epochs 3");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "error: step 'recon' (batch 4 of epoch 1): loss is nan; no checkpoint was written yet"),
                "%s", r.err);
  command_result_free(&r);
  lin_nan_after_batches = 20;  // 13 batches an epoch: NaN in the second
  r = run_main(&m, dir, "train --epochs 3");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "(batch 8 of epoch 2): loss is nan; the last good checkpoint is lin.safetensors"), "%s",
                r.err);
  ck_assert_double_eq(figure(r.out, "epoch"), 1);
  lin_nan_after_batches = -1;
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

static void assert_usage_error(const aert_model *m, const char *dir, const char *args, const char *word) {
  CommandResult r = run_main(m, dir, "%s", args);
  ck_assert_msg(r.status == 2, "'%s' exited %d: %s", args, r.status, r.err);
  ck_assert_msg(strstr(r.err, "lin: error: ") && strstr(r.err, word), "'%s': %s", args, r.err);
  ck_assert_str_eq(r.out, "");
  command_result_free(&r);
}

START_TEST(test_command_line_errors) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  assert_usage_error(&m, dir, "train --epochs", "needs a value");
  assert_usage_error(&m, dir, "train --epochs two", "'two'");
  assert_usage_error(&m, dir, "train --batch 0", "--batch");
  assert_usage_error(&m, dir, "train --lr -1", "--lr");
  assert_usage_error(&m, dir, "train --frobnicate 3", "unknown option '--frobnicate'");
  assert_usage_error(&m, dir, "train extra", "unexpected argument");
  assert_usage_error(&m, dir, "eval", "eval needs --checkpoint FILE");
  assert_usage_error(&m, dir, "encode", "encode needs --checkpoint FILE");
  assert_usage_error(&m, dir, "reconstruct --checkpoint x", "-o");
  assert_usage_error(&m, dir, "eval --epochs 3", "unknown option");
  assert_usage_error(&m, dir, "fly", "unknown command 'fly'");
  CommandResult r = run_main(&m, dir, "--help");
  ck_assert_int_eq(r.status, 0);
  ck_assert(strstr(r.out, "train") && strstr(r.out, "gradcheck"));
  command_result_free(&r);
  r = run_main(&m, dir, "train --help");
  ck_assert_int_eq(r.status, 0);
  const char *options[] = {"--data", "--test", "--epochs", "--batch", "--lr", "--seed", "--threads", "--checkpoint",
                           "--resume", "--log"};
  for (size_t i = 0; i < sizeof options / sizeof *options; i++) ck_assert_msg(strstr(r.out, options[i]), "%s", options[i]);
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 1 --data nothere.csv");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "nothere.csv: no such file"), "%s", r.err);
  command_result_free(&r);
  r = run_main(&m, dir, "eval --checkpoint nothere.safetensors");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "nothere.safetensors: cannot open"), "%s", r.err);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

// train --init pytorch: every weight and bias of a layer U(-1/sqrt(fan_in),
// 1/sqrt(fan_in)) (lin: fan_in 4 for the encoder, 2 for the decoder), biases
// no longer zero; glorot stays the default; bad values and --resume refused.
START_TEST(test_init_pytorch) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  CommandResult r = run_main(&m, dir, "train --epochs 0 --init pytorch --checkpoint p.safetensors");
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 0 --checkpoint g.safetensors");
  ck_assert_int_eq(r.status, 0);
  command_result_free(&r);
  aert_ctx *ctx = aert_ctx_create(&m, 1, 1);
  ck_assert_ptr_nonnull(ctx);
  aert_progress_state state;
  char *path = path_in(dir, "p.safetensors");
  ck_assert_int_eq(aert_checkpoint_load(path, &m, ctx, &state), 0);
  free(path);
  for (int i = 0; i < m.n_params; i++) {
    const aert_param *p = &m.params[i];
    double limit = 1 / sqrt((double)p->fan_in), largest = 0;
    for (size_t e = 0; e < p->size; e++) largest = fmax(largest, fabs((double)ctx->params[p->offset + e]));
    ck_assert_msg(largest <= limit && largest > limit / 4, "%s: largest |value| %g, limit %g", p->name, largest, limit);
  }
  path = path_in(dir, "g.safetensors");
  ck_assert_int_eq(aert_checkpoint_load(path, &m, ctx, &state), 0);
  free(path);
  for (size_t e = 0; e < lin_params[1].size; e++) ck_assert(ctx->params[lin_params[1].offset + e] == 0);  // glorot: zero biases
  aert_ctx_free(&m, ctx);
  assert_usage_error(&m, dir, "train --init xavier", "glorot or pytorch");
  r = run_main(&m, dir, "train --epochs 1 --init pytorch --resume p.safetensors");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "give one of them"), "%s", r.err);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

// The val.recon figures of a run's stdout, in order, into v[max]; their count.
static int val_figures(const char *out, double *v, int max) {
  int n = 0;
  for (const char *at = out; n < max && (at = strstr(at, "\nval.recon ")); at++) v[n++] = strtod(at + 11, NULL);
  return n;
}

START_TEST(test_validation_and_early_stopping) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  // A fraction held out: the split is said, and the best epoch is the one with the least val.recon.
  CommandResult r = run_main(&m, dir, "train --epochs 60 --batch 8 --lr 0.2 --validation 0.2 --patience 3 --threads 1");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(strstr(r.err, "validating on 20 samples held out of train.csv") && strstr(r.err, "(80 samples)"),
                "%s", r.err);
  double v[64];
  int n = val_figures(r.out, v, 64), best = 0;
  ck_assert_int_eq(n, (int)figure(r.out, "epoch"));
  for (int i = 1; i < n; i++)
    if (v[i] < v[best]) best = i;
  ck_assert_double_eq(figure(r.out, "best_epoch"), best + 1);
  ck_assert_msg(strstr(r.out, "stopped_early "), "patience 3 never ran out in 60 epochs:\n%s", r.out);
  ck_assert_int_eq((int)figure(r.out, "stopped_early"), n);
  ck_assert_int_eq(n - (best + 1), 3);  // stopped the third epoch without a better loss
  char *path = path_in(dir, "lin.best.safetensors");
  aert_ctx *ctx = aert_ctx_create(&m, 1, 1);
  aert_progress_state state;
  ck_assert_int_eq(aert_checkpoint_load(path, &m, ctx, &state), 0);
  ck_assert_int_eq(state.epoch, best + 1);  // the kept checkpoint is the best epoch's
  ck_assert_int_eq(state.best_epoch, best + 1);
  ck_assert_str_eq(state.best_loss, "val.recon");
  ck_assert_double_eq_tol(state.best_value, v[best], 1e-8 * v[best]);  // stdout has 9 digits
  aert_ctx_free(&m, ctx);
  free(path);
  command_result_free(&r);

  // A file: eval of the best checkpoint on it gives the best val.recon.
  r = run_main(&m, dir, "train --epochs 8 --batch 8 --lr 0.05 --validation test.csv --checkpoint f.safetensors "
                        "--log log.csv --threads 1");
  ck_assert_msg(r.status == 0, "%s", r.err);
  n = val_figures(r.out, v, 64);
  ck_assert_int_eq(n, 8);
  best = (int)figure(r.out, "best_epoch") - 1;
  for (int i = 0; i < n; i++) ck_assert(v[i] >= v[best]);
  char *log = path_in(dir, "log.csv"), *text = read_whole_file(log, NULL);
  ck_assert_msg(strncmp(text, "epoch,train.recon,test.recon,val.recon,seconds\n", 47) == 0, "%s", text);
  free(text), free(log);
  CommandResult e = run_main(&m, dir, "eval --checkpoint f.best.safetensors --data test.csv");
  ck_assert_msg(e.status == 0, "%s", e.err);
  ck_assert_double_eq_tol(figure(e.out, "recon"), v[best], 1e-7);
  command_result_free(&e);
  command_result_free(&r);

  // Resuming goes on counting from the checkpoint's best.
  r = run_main(&m, dir, "train --epochs 2 --batch 8 --lr 0.05 --validation 0.2 --patience 5 --threads 1");
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 4 --batch 8 --lr 0.05 --validation 0.2 --patience 5 --threads 1 "
                        "--resume lin.safetensors");
  ck_assert_msg(r.status == 0, "%s", r.err);
  n = val_figures(r.out, v, 64);
  ck_assert_int_eq(n, 2);
  ck_assert_msg(strstr(r.err, "the best epoch was"), "%s", r.err);
  command_result_free(&r);

  // Mistakes.
  r = run_main(&m, dir, "train --epochs 2 --patience 2");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "give --validation 0.1"), "%s", r.err);
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 2 --validation 1.5");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "between 0 and 1") && strstr(r.err, "./1.5"), "%s", r.err);
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 2 --validation missing.csv");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "missing.csv"), "%s", r.err);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

// --batches N: an epoch of at most N batches (the trace has a line a batch).
START_TEST(test_batches_limit) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  CommandResult r = run_main(&m, dir, "train --epochs 2 --batch 8 --batches 3 --trace t.jsonl --threads 1");
  ck_assert_msg(r.status == 0, "%s", r.err);
  char *trace = path_in(dir, "t.jsonl"), *text = read_whole_file(trace, NULL);
  int lines = 0;
  for (const char *c = text; *c; c++) lines += *c == '\n';
  ck_assert_int_eq(lines, 2 * 3);
  ck_assert_msg(strstr(r.err, "batch 3/3") || strstr(r.err, "epoch 2/2"), "%s", r.err);
  free(text), free(trace);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_summary_encode_reconstruct) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  CommandResult r = run_main(&m, dir, "summary");
  ck_assert_int_eq(r.status, 0);
  ck_assert_double_eq(figure(r.out, "params"), 22);
  ck_assert_double_eq(figure(r.out, "flops_per_sample"), 32);
  ck_assert_msg(strstr(r.err, "encoder.dense") && strstr(r.err, "(None, 2)"), "%s", r.err);
  command_result_free(&r);
  r = run_main(&m, dir, "train --epochs 1");
  ck_assert_int_eq(r.status, 0);
  command_result_free(&r);
  r = run_main(&m, dir, "encode --checkpoint lin.safetensors --data test.csv -o codes.csv");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, "");
  command_result_free(&r);
  char *codes = path_in(dir, "codes.csv");
  char *text = read_whole_file(codes, NULL);
  ck_assert_msg(strncmp(text, "label,z0,z1\n0,", 14) == 0, "%s", text);
  int lines = 0;
  for (char *p = text; *p; p++) lines += *p == '\n';
  ck_assert_int_eq(lines, 41);
  free(text), free(codes);
  r = run_main(&m, dir, "reconstruct --checkpoint lin.safetensors -o grid.png --count 5");
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  char *png = path_in(dir, "grid.png");
  size_t size;
  text = read_whole_file(png, &size);
  ck_assert(size > 8 && memcmp(text, "\x89PNG", 4) == 0);
  free(text), free(png);
  r = run_main(&m, dir, "reconstruct --checkpoint lin.safetensors -o /nonexistent/dir/grid.png");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "/nonexistent/dir/grid.png"), "%s", r.err);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_gradcheck) {
  char *dir = lin_dir();
  aert_model m = lin_model();
  CommandResult r = run_main(&m, dir, "gradcheck --data train.csv --samples 5");
  ck_assert_msg(r.status == 0, "%s", r.err);
  double error = figure(r.out, "gradcheck.recon.max_error");
  ck_assert_msg(error >= 0 && error < 1e-2, "max error %g: %s", error, r.err);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

Suite *commands_suite(void) {
  Suite *s = suite_create("commands");
  TCase *cli = tcase_create("aert_main");
  tcase_set_timeout(cli, 120);
  tcase_add_test(cli, test_train_figures_and_checkpoint);
  tcase_add_test(cli, test_resume_is_bit_identical);
  tcase_add_test(cli, test_corrupt_or_foreign_checkpoint);
  tcase_add_test(cli, test_nan_loss_stops_training);
  tcase_add_test(cli, test_command_line_errors);
  tcase_add_test(cli, test_init_pytorch);
  tcase_add_test(cli, test_validation_and_early_stopping);
  tcase_add_test(cli, test_batches_limit);
  tcase_add_test(cli, test_summary_encode_reconstruct);
  tcase_add_test(cli, test_gradcheck);
  suite_add_tcase(s, cli);
  return s;
}
