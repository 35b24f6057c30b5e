// comm_mpi.c — aert_comm over MPI (MPI_COMM_WORLD), in libaert_mpi.a, which
// aec --mpi links into a program compiled with -DAERT_MPI.
//
// The sums add in rank order. MPI_Allreduce may add the processes' values in
// any order (the standard leaves it to the implementation, which picks an
// algorithm by message size and topology), so a sum here gathers every
// process's values (MPI_Allgather) and each process adds them in rank order:
// the same bits in every process, and in every run on the same number of
// processes. A process receives (size - 1) times the buffer, where a ring
// allreduce would receive about twice it: docs/distributed.md weighs it.
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "aert.h"

// Values gathered at a time: the scratch holds size times as many.
enum { CHUNK = 1 << 20 };

typedef struct mpi_comm {
  aert_comm comm;  // first: an aert_comm * is a mpi_comm *
  void *gathered;
  size_t capacity;  // bytes
} mpi_comm;

static void *scratch(mpi_comm *m, size_t bytes) {
  if (bytes > m->capacity) {
    void *grown = realloc(m->gathered, bytes);
    if (!grown) {
      fprintf(stderr, "process %d: out of memory for %zu bytes of gathered sums\n", m->comm.rank, bytes);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    m->gathered = grown, m->capacity = bytes;
  }
  return m->gathered;
}

#define SUM_IN_RANK_ORDER(NAME, TYPE, MPI_TYPE)                                                     \
  static void NAME(aert_comm *comm, TYPE *buf, size_t count) {                                     \
    mpi_comm *m = (mpi_comm *)comm;                                                                \
    const int size = comm->size;                                                                   \
    if (size == 1) return;                                                                         \
    for (size_t at = 0; at < count; at += CHUNK) {                                                 \
      const int k = (int)(count - at < CHUNK ? count - at : CHUNK);                                \
      TYPE *all = scratch(m, (size_t)size * (size_t)k * sizeof(TYPE));                             \
      MPI_Allgather(buf + at, k, MPI_TYPE, all, k, MPI_TYPE, MPI_COMM_WORLD);                      \
      for (int i = 0; i < k; i++) {                                                                \
        TYPE sum = all[i];                                                                         \
        for (int r = 1; r < size; r++) sum += all[(size_t)r * (size_t)k + (size_t)i];              \
        buf[at + (size_t)i] = sum;                                                                 \
      }                                                                                            \
    }                                                                                              \
  }

SUM_IN_RANK_ORDER(sum_reals, aert_real, sizeof(aert_real) == sizeof(float) ? MPI_FLOAT : MPI_DOUBLE)
SUM_IN_RANK_ORDER(sum_doubles, double, MPI_DOUBLE)

// 0, or a stop every process agreed on (train's 128 + SIGINT or SIGTERM):
// each process's part ends normally. Any other status is one process's
// error, which the others may be waiting on: all of them stop.
static void finish(aert_comm *comm, int status) {
  mpi_comm *m = (mpi_comm *)comm;
  if (status != 0 && status != 128 + 2 && status != 128 + 15 && comm->size > 1) MPI_Abort(MPI_COMM_WORLD, status);
  MPI_Finalize();
  free(m->gathered);
  free(m);
}

aert_comm *aert_comm_mpi(int *argc, char ***argv) {
  int provided = 0;
  // Only the main thread calls MPI (the OpenMP threads compute between calls).
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    fprintf(stderr, "error: MPI_Init_thread failed\n");
    return NULL;
  }
  mpi_comm *m = calloc(1, sizeof *m);
  if (!m) {
    fprintf(stderr, "error: out of memory\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
    return NULL;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &m->comm.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &m->comm.size);
  m->comm.sum = sum_reals;
  m->comm.sum_doubles = sum_doubles;
  m->comm.finish = finish;
  m->comm.impl = m;
  return &m->comm;
}
