// autodiff.c — reverse-mode differentiation on the graph. For each step, the
// gradient of its loss flows back from the loss through every node that
// depends on the step's parameters, each op's vector-Jacobian rule (ops.c)
// adding backward nodes to the same graph; gradients reaching one value by
// several paths are summed.
#include <stdlib.h>
#include <string.h>

#include "passes.h"

// Which nodes depend on the step's parameters (forward direction).
static bool *depends_on_params(const Graph *g, const Step *step, int n_forward) {
  bool *depends = calloc((size_t)n_forward + 1, sizeof(bool));
  for (int i = 0; i < step->n_params; i++) depends[g->params[step->params[i]].node] = true;
  for (int id = 0; id < n_forward; id++) {
    const Node *node = &g->nodes[id];
    for (int i = 0; i < node->n_inputs && !depends[id]; i++) depends[id] = depends[node->inputs[i]];
  }
  return depends;
}

// Which nodes the loss reads (backward direction).
static bool *ancestors_of(const Graph *g, int loss, int n_forward) {
  bool *reach = calloc((size_t)n_forward + 1, sizeof(bool));
  reach[loss] = true;
  for (int id = loss; id >= 0; id--) {
    if (!reach[id]) continue;
    for (int i = 0; i < g->nodes[id].n_inputs; i++) reach[g->nodes[id].inputs[i]] = true;
  }
  return reach;
}

static void name_gradient(Graph *g, int grad, int of, int first_new, const Step *step, bool prefix_step) {
  if (grad < first_new) return;  // an existing node: keep its name
  char name[300];
  snprintf(name, sizeof name, "%s%sgrad_%s", prefix_step ? step->loss_name : "", prefix_step ? "_" : "",
           g->nodes[of].name);
  graph_set_name(g, grad, name);
}

static bool differentiate_step(Graph *g, int s_index) {
  Step *step = &g->steps[s_index];
  int n_forward = g->n_nodes;
  int loss = g->losses[step->loss_index].node;
  bool prefix_step = g->n_steps > 1;
  bool *reach = ancestors_of(g, loss, n_forward);
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

  bool *depends = depends_on_params(g, step, n_forward);
  int *grads = malloc((size_t)n_forward * sizeof(int));
  for (int i = 0; i < n_forward; i++) grads[i] = -1;
  int first_new = g->n_nodes;
  grads[loss] = graph_add_constant(g, 1.0, step->loc);
  for (int id = loss; id >= 0; id--) {
    if (grads[id] < 0 || !depends[id]) continue;
    Node node = g->nodes[id];  // a copy: adding nodes may move the array
    const OpInfo *info = op_info(node.op);
    if (node.op == OP_PARAM) continue;
    if (!info->vjp) {
      diag_error(node.loc, "%s has no gradient rule yet", op_name(node.op));
      ok = false;
      break;
    }
    bool needs[MAX_INPUTS] = {false};
    int in_grads[MAX_INPUTS];
    for (int i = 0; i < MAX_INPUTS; i++) in_grads[i] = -1;
    for (int i = 0; i < node.n_inputs; i++) needs[i] = depends[node.inputs[i]];
    info->vjp(g, &node, grads[id], needs, in_grads);
    for (int i = 0; i < node.n_inputs; i++) {
      if (!needs[i]) continue;
      int input = node.inputs[i], contribution = in_grads[i];
      if (contribution == VJP_ZERO) continue;  // a zero gradient adds nothing
      if (contribution < 0) {
        ok = false;
        continue;
      }
      grads[input] = grads[input] < 0 ? contribution
                                      : graph_add(g, OP_ADD, (int[]){grads[input], contribution}, 2, node.loc);
      name_gradient(g, grads[input], input, first_new, step, prefix_step);
    }
  }
  for (int id = first_new; id < g->n_nodes; id++) {
    g->nodes[id].is_backward = true;
    g->nodes[id].step = s_index;
  }
  for (int i = 0; i < step->n_params; i++) step->grad_nodes[i] = grads[g->params[step->params[i]].node];
  free(grads);
  free(depends);
  return ok;
}

bool autodiff(Graph *g) {
  bool ok = true;
  for (int s = 0; s < g->n_steps; s++) ok &= differentiate_step(g, s);
  return ok;
}
