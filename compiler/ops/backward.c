// backward.c — the reverse sweep that both kinds of derivative share: a
// step's gradient of its loss with respect to its weights (passes/autodiff.c)
// and the language's grad(y, x) and jacobian_norm(y, x) (front/derivatives.c),
// whose nodes are ordinary values that a loss may use, so that the step's
// sweep later differentiates them again: second derivatives come from the
// same rules, each op's vector-Jacobian rule being made of ops that have
// rules of their own.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

bool *depending_on(const Graph *g, const int *wrt, int n_wrt, int last) {
  bool *depends = calloc((size_t)last + 2, sizeof(bool));
  for (int i = 0; i < n_wrt; i++)
    if (wrt[i] >= 0 && wrt[i] <= last) depends[wrt[i]] = true;
  for (int id = 0; id <= last; id++) {
    const Node *node = &g->nodes[id];
    for (int i = 0; i < node->n_inputs && !depends[id]; i++) depends[id] = depends[node->inputs[i]];
  }
  return depends;
}

static void name_gradient(Graph *g, int grad, int of, int first_new, const char *prefix) {
  if (grad < first_new) return;  // an existing node: keep its name
  char name[300];
  snprintf(name, sizeof name, "%sgrad_%s", prefix, g->nodes[of].name);
  graph_set_name(g, grad, name);
}

int *backward_sweep(Graph *g, int from, int seed, const int *wrt, int n_wrt, const char *prefix) {
  int n = g->n_nodes;
  bool *depends = depending_on(g, wrt, n_wrt, from);
  int *grads = malloc((size_t)n * sizeof(int));
  for (int i = 0; i < n; i++) grads[i] = -1;
  int first_new = g->n_nodes;
  grads[from] = seed;
  bool ok = seed >= 0;
  for (int id = from; id >= 0 && ok; id--) {
    if (grads[id] < 0 || !depends[id]) continue;
    Node node = g->nodes[id];  // a copy: adding nodes may move the array
    bool needs[MAX_INPUTS] = {false}, any = false;
    for (int i = 0; i < node.n_inputs; i++) any |= needs[i] = depends[node.inputs[i]];
    if (!any) continue;  // what is differentiated (a weight, x), or a node that reaches none of it
    const OpInfo *info = op_info(node.op);
    if (!info->vjp) {
      bool second = strstr(op_name(node.op), "_grad2") != NULL;
      diag_error(node.loc, "%s has no gradient rule yet%s", op_name(node.op),
                 second ? ": it is part of a second derivative, and aec takes no third" : "");
      ok = false;
      break;
    }
    int in_grads[MAX_INPUTS];
    for (int i = 0; i < MAX_INPUTS; i++) in_grads[i] = -1;
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
      name_gradient(g, grads[input], input, first_new, prefix);
    }
  }
  free(depends);
  if (!ok) {
    free(grads);
    return NULL;
  }
  return grads;
}
