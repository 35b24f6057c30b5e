// parallel.c — train's data parallelism (aert_world() of several processes,
// under mpirun). Every process initialises the same parameters from the seed
// and shuffles the same permutation from (seed, epoch); each takes its share
// of every batch (process r of p: rows n*r/p to n*(r+1)/p), computes its
// gradients of the mean loss over its share, and the shares' gradients are
// summed in rank order, each weighted by its rows, into the gradient of the
// mean over the whole batch before every step's update. Random draws are
// keyed by the row in the whole batch (aert_ctx.row0), so the model means the
// same on any number of processes, up to the order of the sums.
//
// Each parameter's gradient is summed on its own (aert_comm.sum_start, all
// finished by sums_finish before the update). By default the sums start once
// the step's loss_and_grad returns; with AEC_MPI_OVERLAP=1 each starts as soon
// as the generated backward pass announces that gradient final
// (aert_ctx.grad_ready), while the rest of the pass goes on. The same bits
// either way.
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

void aert_share(size_t n, size_t *first, size_t *count) {
  const aert_comm *w = aert_world();
  const size_t lo = (size_t)((unsigned long long)n * (unsigned)w->rank / (unsigned)w->size);
  const size_t hi = (size_t)((unsigned long long)n * (unsigned)(w->rank + 1) / (unsigned)w->size);
  *first = lo, *count = hi - lo;
}

static struct {
  const aert_model *model;
  int count;      // this process's rows of the batch
  bool *started;  // [n_params]: its sum started in the current step
} run;

// This process's sum over its rows of a parameter's gradient (loss_and_grad
// gave the mean over them; 0 when it holds no rows), and its sum over the
// processes started.
static void start_sum(aert_ctx *ctx, int param) {
  const aert_param *p = &run.model->params[param];
  aert_real *g = ctx->grads + p->offset;
  for (size_t e = 0; e < p->size; e++) g[e] = run.count > 0 ? g[e] * (aert_real)run.count : 0;
  run.started[param] = true;
  aert_world()->sum_start(aert_world(), g, p->size);
}

static void grad_ready(aert_ctx *ctx, int step, int param) {
  (void)step;
  start_sum(ctx, param);
}

bool aert_parallel_begin(const aert_model *model, aert_ctx *ctx) {
  run.model = model;
  run.started = calloc((size_t)model->n_params + 1, sizeof *run.started);
  if (!run.started) return aert_error("out of memory"), false;
  const char *overlap = getenv("AEC_MPI_OVERLAP");
  if (overlap && strcmp(overlap, "1") == 0) {
    ctx->grad_ready = grad_ready;
    if (aert_is_root()) aert_note("AEC_MPI_OVERLAP=1: each gradient's sum starts as the backward pass finishes it");
  }
  return true;
}

void aert_parallel_end(void) {
  free(run.started);
  run.started = NULL;
}

void aert_parallel_step(int count) {
  run.count = count;
  memset(run.started, 0, (size_t)run.model->n_params * sizeof *run.started);
}

double aert_parallel_reduce(aert_ctx *ctx, int step, double loss, int n) {
  aert_comm *w = aert_world();
  const aert_step *s = &run.model->steps[step];
  for (int i = 0; i < s->n_params; i++)  // those not announced (copied at the end, overlap off, or no rows here)
    if (!run.started[s->params[i]]) start_sum(ctx, s->params[i]);
  w->sums_finish(w);
  const aert_real per_row = (aert_real)(1.0 / n);
  for (int i = 0; i < s->n_params; i++) {
    const aert_param *p = &run.model->params[s->params[i]];
    aert_real *g = ctx->grads + p->offset;
    for (size_t e = 0; e < p->size; e++) g[e] *= per_row;
  }
  double sum = run.count > 0 ? loss * run.count : 0;
  w->sum_doubles(w, &sum, 1);
  return sum / n;
}
