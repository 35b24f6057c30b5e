// test_cores.c — training's threads while other programs want the cores
// (runtime/cmd/cores.c): the count a window's run-queue share tries, the
// rates that keep it or not, the tries of all threads again and their
// back-off, AEC_SHARE_CORES, and the `fewest_threads` figure.
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

#include "aert.h"
#include "cmd.h"
#include "tests.h"

START_TEST(test_choose) {
  ck_assert_int_eq(aert_cores_choose(2, 0.0), 2);
  ck_assert_int_eq(aert_cores_choose(2, 0.1), 2);   // a little waiting: the cores are free
  ck_assert_int_eq(aert_cores_choose(2, 0.5), 1);   // 4 threads on 2 cores: half the time waiting
  ck_assert_int_eq(aert_cores_choose(2, 0.34), 1);  // 3 threads on 2 cores
  ck_assert_int_eq(aert_cores_choose(16, 0.5), 8);
  ck_assert_int_eq(aert_cores_choose(4, 0.3), 3);
  ck_assert_int_eq(aert_cores_choose(1, 0.9), 1);  // never none
  ck_assert_int_eq(aert_cores_choose(2, 5.0), 1);
  ck_assert_int_eq(aert_cores_choose(2, NAN), 2);
  ck_assert_int_eq(aert_cores_choose(0, 0.0), 1);
}
END_TEST

// One window of 0.125 s (a binary fraction: the sums are exact) at `rate`
// samples/s, the main thread half of it in the run queue when `busy`.
static int window(aert_cores *c, double *t, long long *wait, bool busy, double rate) {
  *t += 0.125, *wait += busy ? 62500000 : 1000000;
  c->window_samples = rate * 0.125, c->window_seconds = 0.125;
  return aert_cores_observe(c, *t, *wait);
}

// Windows until the threads change (at most `limit`); how many.
static int windows_until_change(aert_cores *c, double *t, long long *wait, bool busy, double rate, int limit) {
  int n = 0, threads = c->threads;
  while (n < limit && window(c, t, wait, busy, rate) == threads) n++;
  return n + 1;
}

START_TEST(test_two_runs_keep_one_thread) {
  aert_cores c = {.most = 2, .threads = 2, .fewest = 2, .on = true, .retry = 2};  // as aert_cores_start leaves it
  double t = 0;
  long long wait = 0;
  ck_assert_int_eq(window(&c, &t, &wait, true, 1000), 2);  // the first window decides nothing
  ck_assert_int_eq(window(&c, &t, &wait, false, 10000), 2);  // free cores: 2 threads stay
  ck_assert_int_eq(window(&c, &t, &wait, false, 10000), 2);
  ck_assert_int_eq(window(&c, &t, &wait, true, 10000), 1);  // busy: 1 is tried
  ck_assert_int_eq(c.fewest, 2);
  ck_assert_int_eq(window(&c, &t, &wait, false, 100000), 1);  // and kept: it trained faster
  ck_assert_int_eq(c.fewest, 1);
  // 2 s later, 2 are tried; slower, so back to 1, and the next try after 4 s, then 8 s.
  ck_assert_int_eq(windows_until_change(&c, &t, &wait, false, 100000, 1000), 16);
  ck_assert_int_eq(c.threads, 2);
  ck_assert_int_eq(window(&c, &t, &wait, true, 10000), 1);
  ck_assert_int_eq(windows_until_change(&c, &t, &wait, false, 100000, 1000), 32);
  ck_assert_int_eq(window(&c, &t, &wait, true, 10000), 1);
  ck_assert_int_eq(windows_until_change(&c, &t, &wait, false, 100000, 1000), 64);
  // The other run has ended: 2 threads train at least as fast and stay.
  ck_assert_int_eq(window(&c, &t, &wait, false, 150000), 2);
  ck_assert_double_eq(c.retry, 2);
  for (int i = 0; i < 100; i++) ck_assert_int_eq(window(&c, &t, &wait, false, 150000), 2);
}
END_TEST

// A run alone on a busy machine whose main thread waits but which trains
// faster on both threads: 1 is tried, not kept, and tried again after 4 s.
START_TEST(test_a_busy_machine_keeps_the_faster_count) {
  aert_cores c = {.most = 2, .threads = 2, .fewest = 2, .on = true, .retry = 2, .windows = 1};  // past the first
  double t = 0;
  long long wait = 0;
  ck_assert_int_eq(window(&c, &t, &wait, true, 300000), 1);
  ck_assert_int_eq(window(&c, &t, &wait, true, 270000), 2);
  ck_assert_int_eq(c.fewest, 2);
  ck_assert_int_eq(windows_until_change(&c, &t, &wait, true, 300000, 1000), 32);
  ck_assert_int_eq(c.threads, 1);
  ck_assert_int_eq(window(&c, &t, &wait, true, 270000), 2);
  ck_assert_int_eq(windows_until_change(&c, &t, &wait, true, 300000, 1000), 64);
  ck_assert_int_eq(window(&c, &t, &wait, true, 320000), 2);  // 1 a little faster: not enough
  ck_assert_int_eq(c.fewest, 2);
}
END_TEST

START_TEST(test_only_aec_share_cores_changes_the_threads) {
  unsetenv("AEC_SHARE_CORES");
  ck_assert(!aert_cores_adapt());
  setenv("AEC_SHARE_CORES", "0", 1);
  ck_assert(!aert_cores_adapt());
  setenv("AEC_SHARE_CORES", "1", 1);
  ck_assert(aert_cores_adapt());
  omp_set_num_threads(2);
  aert_cores c;
  aert_cores_start(&c);
  ck_assert_int_eq(c.on, access("/proc/thread-self/schedstat", R_OK) == 0);
  ck_assert_int_eq(c.threads, 2);
  omp_set_num_threads(1);
  aert_cores_start(&c);
  ck_assert(!c.on);  // one thread: nothing to give up
  unsetenv("AEC_SHARE_CORES");
  omp_set_num_threads(2);
  aert_cores_start(&c);
  ck_assert(!c.on);
}
END_TEST

// A generated program trains on the threads asked for, whatever else runs on
// the machine; under AEC_SHARE_CORES=1, on 1 or 2.
START_TEST(test_train_reports_fewest_threads) {
  const char *text = "input x: [16]\nnet encoder = dense(4, relu)\nnet decoder = dense(16, sigmoid)\n"
                     "loss recon = mse(decoder(encoder(x)), x)\n"
                     "train { data \"train.csv\" test \"none\" batch 16 epochs 1\n"
                     "        step minimize recon over encoder, decoder with adam(lr=0.01) }\n";
  char *dir = make_program_dir("cores", text, 64, 16);
  CommandResult r = run_in(dir, "./m train --threads 2");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(figure(r.out, "fewest_threads") == 2, "%s", r.out);
  command_result_free(&r);
  r = run_in(dir, "AEC_SHARE_CORES=1 ./m train --threads 2");
  ck_assert_msg(r.status == 0, "%s", r.err);
  double fewest = figure(r.out, "fewest_threads");
  ck_assert_msg(fewest == 1 || fewest == 2, "%s", r.out);
  command_result_free(&r);
  r = run_in(dir, "./m train --threads 1");
  ck_assert_msg(r.status == 0 && figure(r.out, "fewest_threads") == 1, "%s%s", r.out, r.err);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

Suite *cores_suite(void) {
  Suite *s = suite_create("cores");
  TCase *units = tcase_create("units");
  tcase_set_timeout(units, 120);
  tcase_add_test(units, test_choose);
  tcase_add_test(units, test_two_runs_keep_one_thread);
  tcase_add_test(units, test_a_busy_machine_keeps_the_faster_count);
  tcase_add_test(units, test_only_aec_share_cores_changes_the_threads);
  tcase_add_test(units, test_train_reports_fewest_threads);
  suite_add_tcase(s, units);
  return s;
}
