// comm.c — the processes of a training run. One process alone unless
// aert_main_with opened others (MPI's, runtime/mpi/comm_mpi.c): then train
// splits each batch between them, and they agree on when to stop.
#include "core.h"

static void alone_sum_start(aert_comm *comm, aert_real *buf, size_t count) { (void)comm, (void)buf, (void)count; }
static void alone_sum_doubles(aert_comm *comm, double *buf, size_t count) { (void)comm, (void)buf, (void)count; }
static void alone_finish(aert_comm *comm, int status) { (void)comm, (void)status; }
static void alone_sums_finish(aert_comm *comm) { (void)comm; }

static aert_comm alone = {0, 1, alone_sum_doubles, alone_sum_start, alone_sums_finish, alone_finish, NULL};
static aert_comm *world = &alone;

aert_comm *aert_world(void) { return world; }
void aert_set_world(aert_comm *comm) { world = comm ? comm : &alone; }
bool aert_is_root(void) { return world->rank == 0; }

bool aert_agree_stop(void) {
  double stop = aert_stop_signal() != 0;
  if (world->size > 1) world->sum_doubles(world, &stop, 1);
  return stop > 0;
}
