// test_mpi.c — data-parallel training under mpirun (aec --mpi, runtime/mpi/,
// runtime/cmd/parallel.c): two and three processes against one, step by step;
// runs on the same number of processes bit-identical, over shared memory and
// over TCP on the loopback; a run saved by two processes resumed by one;
// commands other than train run once; a signal stops every process with a
// checkpoint; what --mpi cannot do is refused.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

// Open MPI refuses root without --allow-run-as-root (CI runs as root); the
// machine has 2 cores, so 3 processes need --oversubscribe.
#define MPIRUN "mpirun --allow-run-as-root --oversubscribe"
// Forced over TCP on the loopback instead of shared memory.
#define OVER_TCP "--mca btl tcp,self"

enum { ROWS = 640, BATCH = 32, MAX_STEPS = 128 };  // 20 batches an epoch

// dir/train.csv (ROWS random samples of 784 values) and dir/m, `example`
// built with --mpi (and `flags`).
static char *build_example(const char *example, const char *flags) {
  char *dir = make_program_dir("mpi", "input x: [2]\nnet f = dense(2)\nloss l = mse(f(x), x)\n", ROWS, 784);
  char command[1024];
  snprintf(command, sizeof command, "%s/aec %s/examples/%s.ae %s --mpi -o m 2>&1", AEC_BUILD_DIR, AEC_SOURCE_DIR,
           example, flags);
  must_succeed_in(dir, command);
  return dir;
}

// The step losses of dir/file, a --trace.
static int losses_in(const char *dir, const char *file, double *losses) {
  char *path = path_in(dir, file);
  int n = trace_losses(path, losses, MAX_STEPS);
  free(path);
  return n;
}

// ./m trains one epoch of batches of BATCH on `processes` processes (0: run
// alone, without mpirun), writing `name`.jsonl (the trace) and
// `name`.safetensors; its step losses into losses.
static int train(const char *dir, int processes, const char *mpi_flags, const char *extra, const char *name,
                 double *losses) {
  char command[1024], launcher[256] = "";
  if (processes > 0) snprintf(launcher, sizeof launcher, MPIRUN " %s -np %d ", mpi_flags, processes);
  snprintf(command, sizeof command,
           "%s./m train --data train.csv --test none --batch %d --epochs 1 --threads %d --seed 7 --trace %s.jsonl "
           "--checkpoint %s.safetensors %s",
           launcher, BATCH, processes > 1 ? 1 : 2, name, name, extra);
  must_succeed_in(dir, command);
  char file[256];
  snprintf(file, sizeof file, "%s.jsonl", name);
  return losses_in(dir, file, losses);
}

// The mean loss `eval` gives a checkpoint on the training data.
static double eval_loss(const char *dir, const char *checkpoint) {
  char command[512];
  snprintf(command, sizeof command, "./m eval --data train.csv --checkpoint %s", checkpoint);
  CommandResult r = run_in(dir, command);
  ck_assert_int_eq(r.status, 0);
  double value = NAN;
  const char *space = strchr(r.out, ' ');
  if (space) value = strtod(space + 1, NULL);
  command_result_free(&r);
  ck_assert_msg(isfinite(value), "eval printed no loss");
  return value;
}

static void assert_close(const double *a, const double *b, int n, double tolerance, const char *what) {
  for (int i = 0; i < n; i++) {
    const double scale = fabs(a[i]) > 1e-3 ? fabs(a[i]) : 1e-3;
    ck_assert_msg(fabs(a[i] - b[i]) / scale <= tolerance, "%s, step %d: %.9g against %.9g alone", what, i + 1, b[i],
                  a[i]);
  }
}

static bool same_files(const char *dir, const char *a, const char *b) {
  char command[512];
  snprintf(command, sizeof command, "cmp -s %s %s", a, b);
  CommandResult r = run_in(dir, command);
  bool same = r.status == 0;
  command_result_free(&r);
  return same;
}

// Each example, 20 steps on 2 processes (one thread each) against one process
// (two threads), the same global batch and seed: every step's loss within
// 1e-5 relative, and the trained weights' loss too. adversarial.ae runs in
// f64: its critic and encoder train against each other and amplify float's
// rounding differences (the order of the sums differs between the runs) past
// 1e-5 by the third batch, as between aec's -O0 and -O2 (test_optimize.c);
// in f64 they stay at 1e-12, so what remains is the arithmetic's order, not
// the data parallelism. denoise.ae draws corruption and adversarial.ae its
// prior per sample of the whole batch: a wrong row offset would show.
static const struct {
  const char *example, *flags;
  double tolerance;
} EXAMPLES[] = {
    {"simple", "", 1e-5}, {"deep", "", 1e-5}, {"conv", "", 1e-5}, {"denoise", "", 1e-5}, {"adversarial", "--dtype f64", 1e-9},
};

START_TEST(two_processes_match_one) {
  char *dir = build_example(EXAMPLES[_i].example, EXAMPLES[_i].flags);
  double alone[MAX_STEPS], two[MAX_STEPS];
  int n = train(dir, 0, "", "", "alone", alone);
  ck_assert_int_ge(n, ROWS / BATCH);
  ck_assert_int_eq(train(dir, 2, "", "", "two", two), n);
  assert_close(alone, two, n, EXAMPLES[_i].tolerance, EXAMPLES[_i].example);
  double one_loss = eval_loss(dir, "alone.safetensors"), two_loss = eval_loss(dir, "two.safetensors");
  assert_close(&one_loss, &two_loss, 1, EXAMPLES[_i].tolerance, "the trained weights' loss");
  remove_tree(dir);
  free(dir);
}
END_TEST

// The sums go in rank order: two runs on 2 processes give the same bits,
// whether the processes talk over shared memory or TCP, and whether each
// gradient's sum starts during the backward pass (AEC_MPI_OVERLAP=1) or all
// of a step's after it.
START_TEST(runs_on_the_same_processes_are_identical) {
  char *dir = build_example("adversarial", "");
  double a[MAX_STEPS], b[MAX_STEPS], c[MAX_STEPS], d[MAX_STEPS];
  int n = train(dir, 2, "", "", "first", a);
  ck_assert_int_eq(train(dir, 2, "", "", "second", b), n);
  ck_assert_int_eq(train(dir, 2, OVER_TCP, "", "tcp", c), n);
  ck_assert_int_eq(train(dir, 2, "-x AEC_MPI_OVERLAP=1", "", "overlap", d), n);
  const char *const runs[] = {"second", "tcp", "overlap"};
  for (int i = 0; i < 3; i++) {
    char trace[64], checkpoint[64];
    snprintf(trace, sizeof trace, "%s.jsonl", runs[i]);
    snprintf(checkpoint, sizeof checkpoint, "%s.safetensors", runs[i]);
    ck_assert_msg(same_files(dir, "first.jsonl", trace) && same_files(dir, "first.safetensors", checkpoint),
                  "the %s run differs from the first", runs[i]);
  }
  remove_tree(dir);
  free(dir);
}
END_TEST

// 3 processes: a batch of 32 splits 10/11/11, and --batch 2 leaves one
// process without rows in every batch; both still match one process.
START_TEST(uneven_shares_and_empty_ones) {
  char *dir = build_example("simple", "");
  double alone[MAX_STEPS], three[MAX_STEPS];
  int n = train(dir, 0, "", "", "alone", alone);
  ck_assert_int_eq(train(dir, 3, "", "", "three", three), n);
  assert_close(alone, three, n, 1e-5, "3 processes");
  must_succeed_in(dir, "head -n 20 train.csv > small.csv");
  must_succeed_in(dir, "./m train --data small.csv --test none --batch 2 --epochs 1 --seed 7 --trace s1.jsonl "
                       "--checkpoint s1.safetensors");
  must_succeed_in(dir, MPIRUN " -np 3 ./m train --data small.csv --test none --batch 2 --epochs 1 --threads 1 "
                       "--seed 7 --trace s3.jsonl --checkpoint s3.safetensors");
  ck_assert_int_eq(losses_in(dir, "s1.jsonl", alone), 10);
  ck_assert_int_eq(losses_in(dir, "s3.jsonl", three), 10);
  assert_close(alone, three, 10, 1e-5, "3 processes, batches of 2");
  remove_tree(dir);
  free(dir);
}
END_TEST

// A checkpoint holds the whole run's progress, not a process's: saved by 2
// processes, resumed by 1, the second epoch matches a run of 2 epochs alone.
START_TEST(resumed_on_other_processes) {
  char *dir = build_example("simple", "");
  must_succeed_in(dir, MPIRUN " -np 2 ./m train --data train.csv --test none --batch 32 --epochs 1 --threads 1 "
                       "--seed 7 --checkpoint half.safetensors");
  must_succeed_in(dir, "./m train --data train.csv --test none --batch 32 --epochs 2 --seed 7 --resume "
                       "half.safetensors --checkpoint resumed.safetensors --trace resumed.jsonl");
  must_succeed_in(dir, "./m train --data train.csv --test none --batch 32 --epochs 2 --seed 7 "
                       "--checkpoint whole.safetensors --trace whole.jsonl");
  double resumed[MAX_STEPS], whole[MAX_STEPS];
  int n = losses_in(dir, "resumed.jsonl", resumed);
  ck_assert_int_eq(n, ROWS / BATCH);
  ck_assert_int_eq(losses_in(dir, "whole.jsonl", whole), 2 * n);
  assert_close(whole + n, resumed, n, 1e-5, "the second epoch, resumed");
  remove_tree(dir);
  free(dir);
}
END_TEST

// Only process 0 prints: the figures once; eval (not train) runs once.
START_TEST(one_process_speaks) {
  char *dir = build_example("simple", "");
  CommandResult r = run_in(dir, MPIRUN " -np 2 ./m train --data train.csv --test train.csv --batch 32 --epochs 1 "
                                "--threads 1 --checkpoint c.safetensors");
  ck_assert_int_eq(r.status, 0);
  const char *first = strstr(r.out, "test.recon ");
  ck_assert_msg(first && !strstr(first + 1, "test.recon "), "the test loss printed other than once:\n%s", r.out);
  ck_assert_ptr_nonnull(strstr(r.err, "2 processes of 1 thread,"));
  command_result_free(&r);
  r = run_in(dir, MPIRUN " -np 2 ./m eval --data train.csv --checkpoint c.safetensors");
  ck_assert_int_eq(r.status, 0);
  first = strstr(r.out, "recon ");
  ck_assert_msg(first && !strstr(first + 1, "recon "), "eval printed other than once:\n%s", r.out);
  command_result_free(&r);
  r = run_in(dir, MPIRUN " -np 2 ./m train --data train.csv --test none --epochs 1 --threads 1 --dump-random d "
                  "--checkpoint d.safetensors");
  ck_assert_int_ne(r.status, 0);
  ck_assert_ptr_nonnull(strstr(r.err, "--dump-random writes one process's draws"));
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

// Ctrl-C: mpirun passes the signal on (as SIGTERM), every process stops at
// the same batch (they agree before each), and process 0 saves a checkpoint
// that says where it stands and loads.
START_TEST(a_signal_stops_every_process) {
  char *dir = build_example("simple", "");
  CommandResult r = run_in(dir, "(" MPIRUN " -np 2 ./m train --data train.csv --test none --batch 32 --epochs 1000000 "
                                "--threads 1 --checkpoint c.safetensors & pid=$!; sleep 4; kill -INT $pid; wait $pid)");
  ck_assert_msg(strstr(r.err, "stopped by SIG") && strstr(r.err, "the checkpoint c.safetensors holds"), "%s", r.err);
  command_result_free(&r);
  must_succeed_in(dir, "./m eval --data train.csv --checkpoint c.safetensors");
  remove_tree(dir);
  free(dir);
}
END_TEST

// kl_sparsity reads the whole batch's mean activation: --mpi refuses it at
// its place in the file; without --mpi it builds.
START_TEST(batch_statistics_are_refused) {
  char *dir = make_temp_dir("mpi");
  CommandResult r = run_in(dir, AEC_BUILD_DIR "/aec " AEC_SOURCE_DIR "/examples/sparse.ae --mpi -o m.c");
  ck_assert_int_ne(r.status, 0);
  ck_assert_ptr_nonnull(strstr(r.err, "sparse.ae:"));
  ck_assert_ptr_nonnull(strstr(r.err, "kl_sparsity reads the mean activation of the whole batch"));
  command_result_free(&r);
  must_succeed_in(dir, AEC_BUILD_DIR "/aec " AEC_SOURCE_DIR "/examples/sparse.ae -o m.c");
  remove_tree(dir);
  free(dir);
}
END_TEST

Suite *mpi_suite(void) {
  Suite *s = suite_create("mpi");
  TCase *t = tcase_create("data parallel");
  tcase_set_timeout(t, 600);
  tcase_add_loop_test(t, two_processes_match_one, 0, (int)(sizeof EXAMPLES / sizeof EXAMPLES[0]));
  tcase_add_test(t, runs_on_the_same_processes_are_identical);
  tcase_add_test(t, uneven_shares_and_empty_ones);
  tcase_add_test(t, resumed_on_other_processes);
  tcase_add_test(t, one_process_speaks);
  tcase_add_test(t, a_signal_stops_every_process);
  tcase_add_test(t, batch_statistics_are_refused);
  suite_add_tcase(s, t);
  return s;
}
