// comm_mpi.c — aert_comm over MPI (MPI_COMM_WORLD), in libaert_mpi.a, which
// aec --mpi links into a program compiled with -DAERT_MPI.
//
// The sums add in rank order. MPI_Allreduce may add the processes' values in
// any order (the standard leaves it to the implementation, which picks an
// algorithm by message size and topology), so a sum here gathers every
// process's values (MPI_Iallgather; MPI_Allgather for sum_doubles) and each
// process adds them in rank order:
// the same bits in every process, and in every run on the same number of
// processes. A process receives (size - 1) times the buffer, where a ring
// allreduce would receive about twice it: docs/distributed.md weighs it.
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aert.h"

// Values gathered at a time: the scratch holds size times as many.
enum { CHUNK = 1 << 20 };

// A sum started by sum_start: the gather in flight, its buffer and scratch.
typedef struct started_sum {
  aert_real *buf;
  int count;
  aert_real *all;  // size * count
  MPI_Request request;
} started_sum;

typedef struct mpi_comm {
  aert_comm comm;  // first: an aert_comm * is a mpi_comm *
  void *gathered;
  size_t capacity;  // bytes
  started_sum *started;
  int n_started, room;
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

#define REAL_TYPE (sizeof(aert_real) == sizeof(float) ? MPI_FLOAT : MPI_DOUBLE)

// Starts gathering buf (MPI_Iallgather) and lets the ones already in flight
// progress (Open MPI moves data only inside MPI calls).
static void sum_start(aert_comm *comm, aert_real *buf, size_t count) {
  mpi_comm *m = (mpi_comm *)comm;
  if (comm->size == 1 || count == 0) return;
  if (count > INT_MAX) {  // no parameter tensor is this large; the blocking sum chunks
    sum_reals(comm, buf, count);
    return;
  }
  if (m->n_started == m->room) {
    int room = m->room ? 2 * m->room : 64;
    started_sum *grown = realloc(m->started, (size_t)room * sizeof *grown);
    if (!grown) {
      fprintf(stderr, "process %d: out of memory for the sums in flight\n", comm->rank);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    m->started = grown, m->room = room;
  }
  started_sum *s = &m->started[m->n_started];
  s->buf = buf, s->count = (int)count;
  s->all = malloc((size_t)comm->size * count * sizeof(aert_real));
  if (!s->all) {
    fprintf(stderr, "process %d: out of memory for a gradient's sum\n", comm->rank);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Iallgather(buf, s->count, REAL_TYPE, s->all, s->count, REAL_TYPE, MPI_COMM_WORLD, &s->request);
  m->n_started++;
  for (int i = 0, done = 0; i < m->n_started - 1; i++) MPI_Test(&m->started[i].request, &done, MPI_STATUS_IGNORE);
}

// Waits for every started sum and adds each in rank order into its buffer.
static void sums_finish(aert_comm *comm) {
  mpi_comm *m = (mpi_comm *)comm;
  for (int i = 0; i < m->n_started; i++) {
    started_sum *s = &m->started[i];
    MPI_Wait(&s->request, MPI_STATUS_IGNORE);
    for (int e = 0; e < s->count; e++) {
      aert_real sum = s->all[e];
      for (int r = 1; r < comm->size; r++) sum += s->all[(size_t)r * (size_t)s->count + (size_t)e];
      s->buf[e] = sum;
    }
    free(s->all);
  }
  m->n_started = 0;
}

// 0, or a stop every process agreed on (train's 128 + SIGINT or SIGTERM):
// each process's part ends normally. Any other status is one process's
// error, which the others may be waiting on: all of them stop.
static void finish(aert_comm *comm, int status) {
  mpi_comm *m = (mpi_comm *)comm;
  if (status != 0 && status != 128 + 2 && status != 128 + 15 && comm->size > 1) MPI_Abort(MPI_COMM_WORLD, status);
  MPI_Finalize();
  free(m->gathered);
  free(m->started);
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
  m->comm.sum_doubles = sum_doubles;
  m->comm.sum_start = sum_start;
  m->comm.sums_finish = sums_finish;
  m->comm.finish = finish;
  m->comm.impl = m;
  return &m->comm;
}
