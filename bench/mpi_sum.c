// mpi_sum.c — how long aec's sum over processes (runtime/mpi/comm_mpi.c:
// gathered, added in rank order) takes for a model's gradient: the figure
// docs/distributed.md's scaling model starts from, summed as train sums one
// parameter's gradient (sum_start, sums_finish). Build and run:
//   mpicc -O2 -Ibuild/include bench/mpi_sum.c build/libaert_mpi.a -o mpi_sum
//   mpirun -np 2 ./mpi_sum 50992 222384 1596691
// prints, for each count of floats, the median of 51 sums' seconds (process 0).
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "aert.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  aert_comm *comm = aert_comm_mpi(&argc, &argv);
  if (!comm) return 1;
  enum { REPEATS = 51 };
  for (int a = 1; a < argc; a++) {
    const size_t count = strtoull(argv[a], NULL, 10);
    aert_real *buf = calloc(count ? count : 1, sizeof *buf);
    double seconds[REPEATS];
    for (int warm = 0; warm < 3; warm++) comm->sum_start(comm, buf, count), comm->sums_finish(comm);
    for (int r = 0; r < REPEATS; r++) {
      for (size_t i = 0; i < count; i++) buf[i] = (aert_real)(i % 7) * 0.5f;
      const double start = now();
      comm->sum_start(comm, buf, count);
      comm->sums_finish(comm);
      seconds[r] = now() - start;
    }
    qsort(seconds, REPEATS, sizeof seconds[0], by_value);
    if (comm->rank == 0)
      printf("sum_seconds.%zu %.6g  (%d processes, %.1f MB a process; fastest %.6g, slowest %.6g)\n", count,
             seconds[REPEATS / 2], comm->size, (double)count * sizeof(aert_real) / 1e6, seconds[0],
             seconds[REPEATS - 1]);
    free(buf);
  }
  comm->finish(comm, 0);
  return 0;
}
