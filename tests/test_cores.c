// test_cores.c — training's threads while other programs want the cores
// (runtime/cmd/cores.c): the count a window's run-queue share chooses, the
// tries of all threads again and their back-off, OMP_DYNAMIC=false, and the
// `fewest_threads` figure of a training that may not change its threads.
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

START_TEST(test_windows_give_up_and_retry) {
  aert_cores c = {.most = 2, .threads = 2, .fewest = 2, .on = true, .retry = 2};  // as aert_cores_start leaves it
  const long long half = 125000000;  // ns: half of a 0.25 s window
  double t = 0;
  long long wait = 0;
  // Free cores: 2 threads stay.
  t += 0.25, wait += 1000000;
  ck_assert_int_eq(aert_cores_observe(&c, t, wait), 2);
  // Busy: 1 thread, a try of 2 two seconds later.
  t += 0.25, wait += half;
  ck_assert_int_eq(aert_cores_observe(&c, t, wait), 1);
  ck_assert_int_eq(c.fewest, 1);
  int windows = 0;
  while (c.threads == 1 && windows < 100) t += 0.25, windows++, aert_cores_observe(&c, t, wait);
  ck_assert_int_eq(c.threads, 2);
  ck_assert(c.trying);
  ck_assert_int_eq(windows, 8);  // 2 s
  // The try finds the cores busy: back to 1, the next try after 4 s.
  t += 0.25, wait += half;
  ck_assert_int_eq(aert_cores_observe(&c, t, wait), 1);
  windows = 0;
  while (c.threads == 1 && windows < 1000) t += 0.25, windows++, aert_cores_observe(&c, t, wait);
  ck_assert_int_eq(windows, 16);
  // Busy again and again: the waits double up to 32 s.
  for (int i = 0; i < 8; i++) {
    t += 0.25, wait += half;
    ck_assert_int_eq(aert_cores_observe(&c, t, wait), 1);
    while (c.threads == 1) t += 0.25, aert_cores_observe(&c, t, wait);
  }
  ck_assert_double_eq(c.retry, 32);
  // This try finds the cores free: 2 threads stay, and the wait is 2 s again.
  t += 0.25, wait += 1000000;
  ck_assert_int_eq(aert_cores_observe(&c, t, wait), 2);
  ck_assert(!c.trying);
  ck_assert_double_eq(c.retry, 2);
  for (int i = 0; i < 20; i++) {
    t += 0.25;
    ck_assert_int_eq(aert_cores_observe(&c, t, wait), 2);
  }
}
END_TEST

START_TEST(test_omp_dynamic_false_keeps_the_threads) {
  unsetenv("OMP_DYNAMIC");
  ck_assert(aert_cores_adapt());
  setenv("OMP_DYNAMIC", "true", 1);
  ck_assert(aert_cores_adapt());
  setenv("OMP_DYNAMIC", "FALSE", 1);
  ck_assert(!aert_cores_adapt());
  setenv("OMP_DYNAMIC", "false", 1);
  ck_assert(!aert_cores_adapt());
  omp_set_num_threads(2);
  aert_cores c;
  aert_cores_start(&c);
  ck_assert(!c.on);
  ck_assert_int_eq(c.threads, 2);
  unsetenv("OMP_DYNAMIC");
  aert_cores_start(&c);
  ck_assert_int_eq(c.on, access("/proc/thread-self/schedstat", R_OK) == 0);
  omp_set_num_threads(1);
  aert_cores_start(&c);
  ck_assert(!c.on);  // one thread: nothing to give up
}
END_TEST

// A generated program under OMP_DYNAMIC=false trains on the threads asked
// for, whatever else runs on the machine; without it, on 1 or 2.
START_TEST(test_train_reports_fewest_threads) {
  const char *text = "input x: [16]\nnet encoder = dense(4, relu)\nnet decoder = dense(16, sigmoid)\n"
                     "loss recon = mse(decoder(encoder(x)), x)\n"
                     "train { data \"train.csv\" test \"none\" batch 16 epochs 1\n"
                     "        step minimize recon over encoder, decoder with adam(lr=0.01) }\n";
  char *dir = make_program_dir("cores", text, 64, 16);
  CommandResult r = run_in(dir, "OMP_DYNAMIC=false ./m train --threads 2");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(figure(r.out, "fewest_threads") == 2, "%s", r.out);
  command_result_free(&r);
  r = run_in(dir, "./m train --threads 2");
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
  tcase_add_test(units, test_windows_give_up_and_retry);
  tcase_add_test(units, test_omp_dynamic_false_keeps_the_threads);
  tcase_add_test(units, test_train_reports_fewest_threads);
  suite_add_tcase(s, units);
  return s;
}
