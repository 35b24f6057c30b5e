// cores.c — training gives up threads while other programs want the cores.
//
// OpenMP's threads wait for each other at the end of every parallel region,
// 7 of them a step of simple.ae. libgomp's waiting thread spins (300,000
// pauses, about 7 ms on the AMD EPYC test machine) before it sleeps, so two
// trainings of 2 threads on 2 cores spent their time spinning while the
// thread each waited for sat in the run queue: simple.ae trained at 36k
// samples/s each, 72k together, against 289k alone. A shorter spin
// (GOMP_SPINCOUNT, which libgomp reads as it loads, so the program would have
// to run itself again to set it) made a run alone slower: 246k samples/s at
// 1,000 spins and 211k passive against 280k (bench/NOTES.md). Fewer threads
// do not: a run alone on a core waits for no partner at all.
//
// The signal is the main thread's time in the run queue, runnable but not
// running (the second field of /proc/thread-self/schedstat), as a fraction of
// the wall time: near 0 when the cores are free, about 1/2 when twice as many
// threads as cores want to run. Every WINDOW of training: at all threads,
// when that fraction is above BUSY, the run tries aert_cores_choose's count
// for a window and keeps it only if it trained MARGIN times as fast (samples
// a second of batch time) as the window before, else goes back and waits
// `retry` before it tries again; on fewer threads it tries all again after
// `retry`, and keeps them unless they train MARGIN times slower. Each try
// that fails doubles `retry` (2 s up to 32 s), one that succeeds resets it.
// The rates decide, not the signal alone: on a busy machine a run alone may
// see its main thread wait a fifth of the time and still train faster on
// both threads.
//
// It is off unless AEC_SHARE_CORES=1. A run that changes its thread count
// repeats bit for bit, and resumes to the bits of a run straight through, only
// if every kernel gives the same bits on any number of threads: the 16-8-16
// model of tests/test_faults.c did not until its epilogue's expf was made to
// take one path per column (compiler/ops/gemm.c), and the optimize suite
// compares the weights of 1 and 2 threads; no test yet changes the count
// mid-run. Without the schedstat file it stays off.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

enum { WINDOW_MS = 100, FIRST_RETRY_S = 2, LAST_RETRY_S = 32 };
static const double BUSY = 0.2;  // more of the wall time than this in the run queue: the cores are shared
// Fewer threads are kept only when they train this much faster than all of
// them, and all of them again unless they train this much slower: between two
// windows the rate moves by a few percent here, and a run alone that kept 1
// thread on such noise lost 11-16% (3 of 10 runs of simple.ae).
static const double MARGIN = 1.1;

int aert_cores_choose(int threads, double waiting) {
  if (threads < 1) threads = 1;
  if (!(waiting > BUSY)) return threads;
  // The share of the cores this process got, in threads: 2 threads that
  // waited half the time ran as one.
  int fit = (int)(threads * (1 - (waiting < 1 ? waiting : 1)) + 0.5);
  return fit < 1 ? 1 : fit < threads ? fit : threads;
}

bool aert_cores_adapt(void) {
  const char *share = getenv("AEC_SHARE_CORES");
  return share && strcmp(share, "1") == 0;
}

// The main thread's nanoseconds in the run queue so far, or -1.
static long long run_queue_ns(void) {
  FILE *f = fopen("/proc/thread-self/schedstat", "r");
  if (!f) return -1;
  unsigned long long running, waiting;
  int got = fscanf(f, "%llu %llu", &running, &waiting);
  fclose(f);
  return got == 2 ? (long long)waiting : -1;
}

void aert_cores_start(aert_cores *c) {
  *c = (aert_cores){.most = omp_get_max_threads()};
  c->threads = c->fewest = c->most;
  c->retry = FIRST_RETRY_S;
  c->on = c->most > 1 && aert_cores_adapt() && (c->window_wait = run_queue_ns()) >= 0;
  c->window_start = aert_now();
}

void aert_cores_after_batch(aert_cores *c, int samples, double seconds) {
  if (!c->on) return;
  c->window_samples += samples, c->window_seconds += seconds;
  double now = aert_now();
  if ((now - c->window_start) * 1000 < WINDOW_MS) return;
  long long wait = run_queue_ns();
  if (wait < 0) {
    c->on = false;
    return;
  }
  int threads = aert_cores_observe(c, now, wait);
  if (threads != omp_get_max_threads()) omp_set_num_threads(threads);
}

// A try failed: back to `threads`, and the next try after twice the wait.
static int back_to(aert_cores *c, int threads, double now) {
  c->retry = c->retry * 2 < LAST_RETRY_S ? c->retry * 2 : LAST_RETRY_S;
  c->next_try = now + c->retry;
  return threads;
}

int aert_cores_observe(aert_cores *c, double now, long long wait_ns) {
  double wall = now - c->window_start;
  double waiting = wall > 0 ? (double)(wait_ns - c->window_wait) * 1e-9 / wall : 0;
  double rate = c->window_seconds > 0 ? c->window_samples / c->window_seconds : 0;
  int threads = c->threads, before = c->before;
  bool trying = c->trying;
  c->trying = false, c->before = threads;
  if (c->windows++ == 0) {
    // The first window holds the first batch (fresh memory, the threads
    // started): slower than the next, so no rate to compare with.
  } else if (trying && threads < c->most) {  // fewer threads after a busy window at all of them
    if (rate > c->rate * MARGIN) {
      c->next_try = now + c->retry;
      if (threads < c->fewest) c->fewest = threads;
    } else {
      threads = back_to(c, before, now);
    }
  } else if (trying) {  // all threads again, after windows on fewer
    if (rate * MARGIN >= c->rate) c->retry = FIRST_RETRY_S;
    else threads = back_to(c, before, now);
  } else if (now >= c->next_try) {
    int fewer = threads == c->most ? aert_cores_choose(threads, waiting) : c->most;
    if (fewer != threads) threads = fewer, c->trying = true;
  }
  c->rate = rate;
  c->threads = threads;
  c->window_start = now, c->window_wait = wait_ns, c->window_samples = 0, c->window_seconds = 0;
  return threads;
}

void aert_cores_end(aert_cores *c) {
  if (c->threads != c->most) omp_set_num_threads(c->most);
  c->threads = c->most;
}
