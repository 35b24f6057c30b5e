// stack.c — room on every thread's stack for the model's kernels.
//
// A kernel keeps its working copies on the stack of the thread that runs it:
// a product's packed weight panels (up to 1.25 MiB a thread), a convolution's
// zero-padded input planes (CI x (H + K - 1) x (W + K - 1) reals, 17 MiB for
// 64 channels of 256 x 256). aec writes the most any kernel takes into the
// model (aert_model.thread_stack_bytes). Before the first kernel runs, the
// main thread's stack limit (ulimit -s) is raised to it where the hard limit
// allows, and so is the default pthread stack size, which libgomp gives the
// threads it starts unless OMP_STACKSIZE names another. Then every thread
// measures what is left below its frame: where that is too little (a hard
// limit, or an OMP_STACKSIZE the user set), the program says so and stops
// rather than overflow a stack in the middle of training.
#define _GNU_SOURCE
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "core.h"

// The frames around the arrays: the kernel's own, OpenMP's, the runtime's.
enum { STACK_MARGIN = 256 << 10 };
// Linux leaves at least 128 MiB below the main thread's stack for it to grow
// into, whatever the limit was when the program started: past that it could
// run into other mappings.
static const size_t MAIN_STACK_MOST = (size_t)120 << 20;

static double mib(size_t bytes) { return (double)bytes / (1 << 20); }

// Bytes of this thread's stack below the caller's frame, or SIZE_MAX when the
// thread's stack cannot be read.
static size_t stack_left(void) {
  pthread_attr_t attr;
  void *lowest;
  size_t size;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return SIZE_MAX;
  const bool known = pthread_attr_getstack(&attr, &lowest, &size) == 0;
  pthread_attr_destroy(&attr);
  char here;
  return known && (uintptr_t)&here > (uintptr_t)lowest ? (size_t)((uintptr_t)&here - (uintptr_t)lowest) : SIZE_MAX;
}

// A limit counts what a thread holds before a kernel runs, the main thread's
// outer frames, a new thread's thread-local storage: STACK_HELD is room for it.
enum { STACK_HELD = 1 << 20 };

static void raise_main_stack_limit(size_t need) {
  struct rlimit limit;
  const rlim_t want = (rlim_t)need + STACK_HELD;
  if (getrlimit(RLIMIT_STACK, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= want) return;
  limit.rlim_cur = limit.rlim_max != RLIM_INFINITY && limit.rlim_max < want ? limit.rlim_max : want;
  setrlimit(RLIMIT_STACK, &limit);
}

static void raise_default_thread_stack(size_t need) {
  pthread_attr_t attr;
  size_t size;
  if (pthread_getattr_default_np(&attr) != 0) return;
  if (pthread_attr_getstacksize(&attr, &size) == 0 && size < need + STACK_HELD &&
      pthread_attr_setstacksize(&attr, need + STACK_HELD) == 0)
    pthread_setattr_default_np(&attr);
  pthread_attr_destroy(&attr);
}

bool aert_reserve_stacks(const aert_model *model) {
  if (model->thread_stack_bytes == 0) return true;
  const size_t need = model->thread_stack_bytes + STACK_MARGIN;
  if (need + STACK_HELD > MAIN_STACK_MOST) {
    aert_error("this model's kernels need %.1f MiB of stack in each thread, more than the %.0f MiB a main thread can "
               "have: make its convolutions' inputs smaller or give them fewer channels",
               mib(need), mib(MAIN_STACK_MOST));
    return false;
  }
  const char *variable = getenv("OMP_STACKSIZE") ? "OMP_STACKSIZE" : getenv("GOMP_STACKSIZE") ? "GOMP_STACKSIZE" : NULL;
  raise_main_stack_limit(need);
  if (!variable) raise_default_thread_stack(need);
  size_t least = SIZE_MAX;
  int thread_with_least = 0;
#pragma omp parallel
  {
    const size_t left = stack_left();
#pragma omp critical(aert_stack_left)
    if (left < least) least = left, thread_with_least = omp_get_thread_num();
  }
  if (least >= need) return true;
  const size_t need_kib = (need + 1023) / 1024;
  if (thread_with_least == 0) {
    aert_error("this model's kernels need %.1f MiB of stack in each thread, and the main thread has %.1f MiB left under "
               "its limit, which the hard limit keeps from rising (ulimit -Hs): raise that to %zu KiB or more",
               mib(need), mib(least), need_kib + STACK_HELD / 1024);
  } else if (variable) {
    aert_error("this model's kernels need %.1f MiB of stack in each thread, and %s=%s gives OpenMP's threads %.1f MiB: "
               "set %s=%zuK or more, or unset it",
               mib(need), variable, getenv(variable), mib(least), variable, need_kib + STACK_HELD / 1024);
  } else {
    aert_error("this model's kernels need %.1f MiB of stack in each thread, and OpenMP's threads have %.1f MiB: "
               "set OMP_STACKSIZE=%zuK or more",
               mib(need), mib(least), need_kib + STACK_HELD / 1024);
  }
  return false;
}
