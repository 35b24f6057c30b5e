// pass_share.c — values computed once per batch and read by several steps.
//
// The training loop runs every step on a batch in order, each step's update
// right after its gradient. PyTorch's semantics are a fresh forward pass per
// step, so a value an earlier step computed may be reused by a later step
// only if it is exactly what a fresh forward pass would give: no step in
// between — the producer's own update included — changed a parameter the
// value depends on. Values of the input and of random draws alone
// (corruption, prior samples: their draws are keyed by (seed, batch, node),
// the same in every step of a batch) are always reusable; a value of a net's
// weights is reusable until a step updates that net. In adversarial.ae,
// z = encoder(x) computed by `recon` is stale for `disc` (recon's update
// changed the encoder), but z as `disc` computes it is still exact for `gen`
// (disc updates only the critic), so `gen` reads it, with the encoder's
// hidden activations its gradient needs, instead of running the encoder again.
//
// Only batched forward values are shared (scalars are cheap to recompute).
// Each shared value has its own slot in a region of the arena after every
// function's planned part, so nothing else overwrites it between steps. A
// step called out of order (gradcheck, a single step of `train --steps`)
// computes its shared inputs itself first (aert_ctx.batch_step says which).
// -O0, the reference, shares nothing.
#include <stdlib.h>
#include <string.h>

#include "passes.h"

static bool shareable(const Node *node) {
  return !node->is_backward && node->shape.batched && op_info(node->op)->kernel != KERNEL_NONE;
}

SharePlan plan_sharing(const Graph *g, bool enable) {
  int n = g->n_nodes > 0 ? g->n_nodes : 0, steps = g->n_steps;
  size_t bytes = (size_t)n;
  SharePlan plan = {.n_steps = steps, .n_nodes = n,
                    .given = calloc((size_t)steps + 1, sizeof(bool *)),
                    .stored = calloc((size_t)steps + 1, sizeof(bool *)),
                    .from = calloc((size_t)steps + 1, sizeof(int *)),
                    .stale_by = calloc((size_t)steps + 1, sizeof(int *)),
                    .shared = calloc((size_t)n + 1, sizeof(bool)),
                    .offset = calloc((size_t)n + 1, sizeof(size_t))};
  for (int s = 0; s < steps; s++) {
    plan.given[s] = calloc((size_t)n + 1, sizeof(bool));
    plan.stored[s] = calloc((size_t)n + 1, sizeof(bool));
    plan.from[s] = malloc(((size_t)n + 1) * sizeof(int));
    plan.stale_by[s] = malloc(((size_t)n + 1) * sizeof(int));
    for (int i = 0; i < n; i++) plan.from[s][i] = plan.stale_by[s][i] = -1;
  }
  if (!enable || steps < 2) return plan;
  int *valid_from = malloc((size_t)n * sizeof(int));   // the step whose computation of it is still exact, or -1
  int *seen_in = malloc((size_t)n * sizeof(int));      // the last step that computed it, or -1
  int *stale_since = malloc((size_t)n * sizeof(int));  // the step whose update made that stale, or -1
  bool *live = malloc((size_t)n + 1);
  bool *touched = malloc((size_t)n + 1);               // depends on a parameter the current step updates
  for (int i = 0; i < n; i++) valid_from[i] = seen_in[i] = stale_since[i] = -1;
  for (int s = 0; s < steps; s++) {
    const Step *step = &g->steps[s];
    // What the step needs, stopping at values an earlier step left exact.
    memset(live, 0, bytes);
    live[g->losses[step->loss_index].node] = true;
    for (int i = 0; i < step->n_params; i++)
      if (step->grad_nodes[i] >= 0) live[step->grad_nodes[i]] = true;
    for (int id = n - 1; id >= 0; id--) {
      if (!live[id]) continue;
      const Node *node = &g->nodes[id];
      if (shareable(node) && valid_from[id] >= 0) {
        plan.given[s][id] = true;
        plan.from[s][id] = valid_from[id];
        plan.stored[valid_from[id]][id] = true;
        continue;
      }
      for (int i = 0; i < node->n_inputs; i++) live[node->inputs[i]] = true;
    }
    for (int id = 0; id < n; id++) {
      if (!live[id] || plan.given[s][id] || !shareable(&g->nodes[id])) continue;
      if (seen_in[id] >= 0) plan.stale_by[s][id] = stale_since[id];
      valid_from[id] = seen_in[id] = s;
    }
    // After the step's update, what depends on its parameters is stale.
    memset(touched, 0, bytes);
    for (int i = 0; i < step->n_params; i++) touched[g->params[step->params[i]].node] = true;
    for (int id = 0; id < n; id++) {
      const Node *node = &g->nodes[id];
      for (int i = 0; i < node->n_inputs && !touched[id]; i++) touched[id] = touched[node->inputs[i]];
      if (touched[id] && valid_from[id] >= 0) valid_from[id] = -1, stale_since[id] = s;
    }
  }
  for (int s = 0; s < steps; s++)
    for (int id = 0; id < n; id++) plan.shared[id] |= plan.stored[s][id];
  for (int id = 0; id < n; id++) {
    if (!plan.shared[id]) continue;
    plan.offset[id] = plan.per_sample;
    plan.per_sample += (shape_size(g->nodes[id].shape) + 15) / 16 * 16;  // 64-byte slots for float
  }
  free(valid_from), free(seen_in), free(stale_since), free(live), free(touched);
  return plan;
}

void share_plan_free(SharePlan *plan) {
  for (int s = 0; s < plan->n_steps; s++)
    free(plan->given[s]), free(plan->stored[s]), free(plan->from[s]), free(plan->stale_by[s]);
  free(plan->given), free(plan->stored), free(plan->from), free(plan->stale_by);
  free(plan->shared), free(plan->offset);
  memset(plan, 0, sizeof *plan);
}

bool share_step_reads(const SharePlan *plan, int step) {
  if (!plan || step < 0 || step >= plan->n_steps) return false;
  for (int id = 0; id < plan->n_nodes; id++)
    if (plan->given[step][id]) return true;
  return false;
}

Schedule schedule_given(const Graph *graph, const int *outputs, int n_outputs, const bool *given) {
  bool *live = calloc((size_t)graph->n_nodes + 1, sizeof *live);
  for (int i = 0; i < n_outputs; i++)
    if (outputs[i] >= 0) live[outputs[i]] = true;
  for (int id = graph->n_nodes - 1; id >= 0; id--) {
    if (!live[id] || given[id]) continue;
    const Node *node = &graph->nodes[id];
    for (int i = 0; i < node->n_inputs; i++) live[node->inputs[i]] = true;
  }
  Schedule schedule = {.nodes = malloc(((size_t)graph->n_nodes + 1) * sizeof(int))};
  for (int id = 0; id < graph->n_nodes; id++)
    if (live[id] && !given[id]) schedule.nodes[schedule.n_nodes++] = id;
  free(live);
  return schedule;
}
