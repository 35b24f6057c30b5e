// parallel.c — train's data parallelism (aert_world() of several processes,
// under mpirun). Every process initialises the same parameters from the seed
// and shuffles the same permutation from (seed, epoch); each takes its share
// of every batch (process r of p: rows n*r/p to n*(r+1)/p), computes its
// gradients of the mean loss over its share, and the shares' gradients are
// summed in rank order, each weighted by its rows, into the gradient of the
// mean over the whole batch before every step's update. Random draws are
// keyed by the row in the whole batch (aert_ctx.row0), so the model means the
// same on any number of processes, up to the order of the sums.
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
