// cores.c — training gives up threads while other programs want the cores.
//
// OpenMP's threads wait for each other at the end of every parallel region,
// and a training step is dozens of short regions. libgomp's waiting thread
// spins (up to 300,000 pauses, milliseconds here) before it sleeps, so two
// trainings of 2 threads on 2 cores spent their time spinning while the
// thread each waited for sat in the run queue: simple.ae trained at 36k
// samples/s each, 72k together, against 289k alone. The spin is read from
// the environment when libgomp loads, before main, so the program cannot
// shorten it; it can use fewer threads. A thread that waits neither spins
// nor needs a partner.
//
// The measure is the main thread's time in the run queue, runnable but not
// running (the second field of /proc/thread-self/schedstat), as a fraction of
// the wall time: near 0 when the cores are free, about 1/2 when twice as many
// threads as cores want to run. Every WINDOW seconds of training the threads
// are set to aert_cores_choose's count; a run on fewer threads than it may use
// tries them all again after `retry` seconds, which doubles each time the
// cores are still busy. The steps' results do not depend on the number of
// threads (every output is summed by one thread in a fixed order), so a run
// that changes it trains bit for bit as one that does not.
//
// OMP_DYNAMIC=false (OpenMP's setting for "no dynamic adjustment of the number
// of threads") keeps the threads fixed, and so does a kernel without the
// schedstat file.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd.h"

enum { WINDOW_MS = 250, FIRST_RETRY_S = 2, LAST_RETRY_S = 32 };
static const double BUSY = 0.2;  // more of the wall time than this in the run queue: the cores are shared

int aert_cores_choose(int threads, double waiting) {
  if (threads < 1) threads = 1;
  if (!(waiting > BUSY)) return threads;
  // The share of the cores this process got, in threads: 2 threads that
  // waited half the time ran as one.
  int fit = (int)(threads * (1 - (waiting < 1 ? waiting : 1)) + 0.5);
  return fit < 1 ? 1 : fit < threads ? fit : threads;
}

bool aert_cores_adapt(void) {
  const char *dynamic = getenv("OMP_DYNAMIC");
  return !dynamic || !(strcasecmp(dynamic, "false") == 0 || strcmp(dynamic, "0") == 0);
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

void aert_cores_after_batch(aert_cores *c) {
  if (!c->on) return;
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

int aert_cores_observe(aert_cores *c, double now, long long wait_ns) {
  double wall = now - c->window_start;
  double waiting = wall > 0 ? (double)(wait_ns - c->window_wait) * 1e-9 / wall : 0;
  int threads = aert_cores_choose(c->threads, waiting);
  if (threads < c->threads) {
    // A try that found the cores still busy waits twice as long for the next.
    if (c->trying) c->retry = c->retry * 2 < LAST_RETRY_S ? c->retry * 2 : LAST_RETRY_S;
    c->next_try = now + c->retry;
    if (threads < c->fewest) c->fewest = threads;
  } else if (c->trying) {
    c->retry = FIRST_RETRY_S;
  }
  c->trying = false;
  if (threads < c->most && threads == c->threads && now >= c->next_try) threads = c->most, c->trying = true;
  c->threads = threads;
  c->window_start = now, c->window_wait = wait_ns;
  return threads;
}

void aert_cores_end(aert_cores *c) {
  if (c->threads != c->most) omp_set_num_threads(c->most);
  c->threads = c->most;
}
