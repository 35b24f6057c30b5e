// parallel.c — train's data parallelism (aert_world() of several processes,
// under mpirun). Every process initialises the same parameters from the seed
// and shuffles the same permutation from (seed, epoch); each takes its share
// of every batch (process r of p: rows n*r/p to n*(r+1)/p), computes its
// gradients of the mean loss over its share, and the shares' gradients are
// summed in rank order, each weighted by its rows, into the gradient of the
// mean over the whole batch before every step's update. Random draws are
// keyed by the row in the whole batch (aert_ctx.row0), so the model means the
// same on any number of processes, up to the order of the sums.
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

void aert_batch_share(int n, int *first, int *count) {
  const aert_comm *w = aert_world();
  const int lo = (int)((long long)n * w->rank / w->size), hi = (int)((long long)n * (w->rank + 1) / w->size);
  *first = lo, *count = hi - lo;
}

size_t aert_step_elements(const aert_model *model, int step) {
  size_t elements = 0;
  for (int i = 0; i < model->steps[step].n_params; i++) elements += model->params[model->steps[step].params[i]].size;
  return elements;
}

// The step's gradients (its parameters' stretches of ctx->grads) packed into
// `packed`, or unpacked from it.
static void pack_step(const aert_model *model, int step, aert_real *grads, aert_real *packed, bool unpack) {
  const aert_step *s = &model->steps[step];
  size_t at = 0;
  for (int i = 0; i < s->n_params; i++) {
    const aert_param *p = &model->params[s->params[i]];
    if (unpack) memcpy(grads + p->offset, packed + at, p->size * sizeof *grads);
    else memcpy(packed + at, grads + p->offset, p->size * sizeof *grads);
    at += p->size;
  }
}

double aert_reduce_step(const aert_model *model, aert_ctx *ctx, int step, double loss, int count, int n,
                        aert_real *packed) {
  aert_comm *w = aert_world();
  const size_t elements = aert_step_elements(model, step);
  if (count > 0) {
    pack_step(model, step, ctx->grads, packed, false);
    for (size_t i = 0; i < elements; i++) packed[i] *= (aert_real)count;  // this share's sum over its rows
  } else {
    memset(packed, 0, elements * sizeof *packed);  // a batch smaller than the processes: nothing here
  }
  w->sum(w, packed, elements);
  const aert_real per_row = (aert_real)(1.0 / n);
  for (size_t i = 0; i < elements; i++) packed[i] *= per_row;
  pack_step(model, step, ctx->grads, packed, true);
  double sum = count > 0 ? loss * count : 0;
  w->sum_doubles(w, &sum, 1);
  return sum / n;
}

// ---- overlap (AEC_MPI_OVERLAP=1): each parameter's sum starts as soon as
// the generated backward pass announces its gradient final (grad_ready),
// instead of all of a step's after its loss_and_grad.
static struct {
  const aert_model *model;
  int count;      // this process's rows of the batch
  bool *started;  // [n_params] in the current step
} overlap;

static void grad_ready(aert_ctx *ctx, int step, int param) {
  (void)step;
  const aert_param *p = &overlap.model->params[param];
  aert_real *g = ctx->grads + p->offset;
  for (size_t i = 0; i < p->size; i++) g[i] *= (aert_real)overlap.count;  // this share's sum over its rows
  overlap.started[param] = true;
  aert_world()->sum_start(aert_world(), g, p->size);
}

bool aert_overlap_begin(const aert_model *model, aert_ctx *ctx) {
  const char *v = getenv("AEC_MPI_OVERLAP");
  if (aert_world()->size == 1 || !v || strcmp(v, "1") != 0) return false;
  overlap.model = model;
  overlap.started = calloc((size_t)model->n_params + 1, sizeof *overlap.started);
  if (!overlap.started) return false;
  ctx->grad_ready = grad_ready;
  if (aert_is_root()) aert_note("AEC_MPI_OVERLAP=1: each gradient's sum starts as the backward pass finishes it");
  return true;
}

void aert_overlap_end(aert_ctx *ctx) {
  if (ctx) ctx->grad_ready = NULL;
  free(overlap.started);
  overlap.started = NULL;
}

void aert_overlap_step(const aert_model *model, int count) {
  overlap.count = count;
  memset(overlap.started, 0, (size_t)model->n_params * sizeof *overlap.started);
}

double aert_reduce_step_overlapped(const aert_model *model, aert_ctx *ctx, int step, double loss, int count, int n) {
  aert_comm *w = aert_world();
  const aert_step *s = &model->steps[step];
  for (int i = 0; i < s->n_params; i++) {  // what no kernel announced: copied at the end, or no rows here
    const aert_param *p = &model->params[s->params[i]];
    if (overlap.started[s->params[i]]) continue;
    aert_real *g = ctx->grads + p->offset;
    for (size_t e = 0; e < p->size; e++) g[e] = count > 0 ? g[e] * (aert_real)count : 0;
    w->sum_start(w, g, p->size);
  }
  w->sums_finish(w);
  const aert_real per_row = (aert_real)(1.0 / n);
  for (int i = 0; i < s->n_params; i++) {
    const aert_param *p = &model->params[s->params[i]];
    aert_real *g = ctx->grads + p->offset;
    for (size_t e = 0; e < p->size; e++) g[e] *= per_row;
  }
  double sum = count > 0 ? loss * count : 0;
  w->sum_doubles(w, &sum, 1);
  return sum / n;
}
