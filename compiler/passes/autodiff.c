// autodiff.c — reverse-mode differentiation on the graph. For each step, the
// gradient of its loss flows back from the loss through every node that
// depends on the step's parameters (ops/backward.c's sweep, each op's
// vector-Jacobian rule adding backward nodes to the same graph). A loss
// that uses grad(y, x) holds the nodes of that first sweep as values, and
// this one differentiates them again.
#include <stdlib.h>
#include <string.h>

#include "passes.h"

// Which nodes the loss reads (backward direction), over every node: a net's
// weights may have been made after the loss.
static bool *ancestors_of(const Graph *g, int loss) {
  bool *reach = calloc((size_t)g->n_nodes + 1, sizeof(bool));
  reach[loss] = true;
  for (int id = loss; id >= 0; id--) {
    if (!reach[id]) continue;
    for (int i = 0; i < g->nodes[id].n_inputs; i++) reach[g->nodes[id].inputs[i]] = true;
  }
  return reach;
}

static bool differentiate_step(Graph *g, int s_index) {
  Step *step = &g->steps[s_index];
  int loss = g->losses[step->loss_index].node;
  bool prefix_step = g->n_steps > 1;
  bool *reach = ancestors_of(g, loss);
  bool ok = true;
  for (int n = 0; n < step->n_nets; n++) {
    const Net *net = &g->nets[step->nets[n]];
    bool used = false;
    for (int p = 0; p < net->n_params; p++) used |= reach[g->params[net->param_ids[p]].node];
    if (!used) {
      diag_error(step->loc, "loss '%s' does not depend on the parameters of net '%s', so this step cannot train it",
                 step->loss_name, net->name);
      ok = false;
    }
  }
  free(reach);
  if (!ok) return false;

  int *wrt = malloc((size_t)step->n_params * sizeof(int));
  for (int i = 0; i < step->n_params; i++) wrt[i] = g->params[step->params[i]].node;
  char prefix[300];
  snprintf(prefix, sizeof prefix, "%s%s", prefix_step ? step->loss_name : "", prefix_step ? "_" : "");
  int first_new = g->n_nodes;
  int *grads = backward_sweep(g, loss, graph_add_constant(g, 1.0, step->loc), wrt, step->n_params, prefix);
  free(wrt);
  if (!grads) return false;
  for (int id = first_new; id < g->n_nodes; id++) {
    g->nodes[id].is_backward = true;
    g->nodes[id].step = s_index;
  }
  for (int i = 0; i < step->n_params; i++) step->grad_nodes[i] = grads[g->params[step->params[i]].node];
  free(grads);
  return true;
}

bool autodiff(Graph *g) {
  bool ok = true;
  for (int s = 0; s < g->n_steps; s++) ok &= differentiate_step(g, s);
  return ok;
}
