// pass_inference.c — the values evaluation, encode, reconstruct and
// layer_output (the `activations` command) compute.
// Corruption is the identity at inference, so each such value is rebuilt
// with every corruption node replaced by its input; hash-consing in
// graph_add makes the rebuilt nodes the existing ones wherever nothing was
// corrupted (encoder(noisy) becomes the same node as encoder(x)).
#include <stdlib.h>

#include "passes.h"

static int rebuild(Graph *g, int id, int *memo) {
  if (memo[id] != -2) return memo[id];
  Node node = g->nodes[id];  // a copy: graph_add may move the array
  if (op_info(node.op)->identity_at_inference) return memo[id] = rebuild(g, node.inputs[0], memo);
  int inputs[MAX_INPUTS];
  bool changed = false;
  for (int i = 0; i < node.n_inputs; i++) {
    inputs[i] = rebuild(g, node.inputs[i], memo);
    changed |= inputs[i] != node.inputs[i];
  }
  if (!changed) return memo[id] = id;
  int before = g->n_nodes;
  int made = graph_add_attr(g, node.op, inputs, node.n_inputs, node.attr, node.loc);
  if (made >= before) {  // a new node: name it after the one it stands for
    char name[320];
    snprintf(name, sizeof name, "%s_eval", node.name);
    graph_set_name(g, made, name);
  }
  return memo[id] = made;
}

// Each layer's output at inference, where the input alone determines it: a
// value that depends on the input and on no op that stays random at
// inference (a prior). A net applied first to a prior's samples (an
// adversarial critic) has none. Ids are topological, so one pass finds both.
static void plan_layer_outputs(Graph *g, int *memo) {
  g->layer_eval_nodes = malloc(((size_t)g->n_layers + 1) * sizeof(int));
  for (int i = 0; i < g->n_layers; i++) g->layer_eval_nodes[i] = rebuild(g, g->layers[i].node, memo);
  bool *on_input = calloc((size_t)g->n_nodes + 1, sizeof(bool)), *on_prior = calloc((size_t)g->n_nodes + 1, sizeof(bool));
  for (int id = 0; id < g->n_nodes; id++) {
    const Node *node = &g->nodes[id];
    on_input[id] = node->op == OP_INPUT;
    on_prior[id] = op_info(node->op)->random && !op_info(node->op)->identity_at_inference;
    for (int i = 0; i < node->n_inputs; i++) on_input[id] |= on_input[node->inputs[i]], on_prior[id] |= on_prior[node->inputs[i]];
  }
  for (int i = 0; i < g->n_layers; i++) {
    int id = g->layer_eval_nodes[i];
    if (id >= 0 && (!on_input[id] || on_prior[id])) g->layer_eval_nodes[i] = -1;
  }
  free(on_input), free(on_prior);
}

void plan_inference(Graph *g) {
  int n_before = g->n_nodes;
  int *memo = malloc((size_t)n_before * sizeof(int));
  for (int i = 0; i < n_before; i++) memo[i] = -2;  // not visited
  g->eval_losses = malloc(((size_t)g->n_losses + 1) * sizeof(int));
  for (int i = 0; i < g->n_losses; i++) g->eval_losses[i] = rebuild(g, g->losses[i].node, memo);
  if (g->code_node >= 0) g->code_node = rebuild(g, g->code_node, memo);
  if (g->reconstruction_node >= 0) g->reconstruction_node = rebuild(g, g->reconstruction_node, memo);
  plan_layer_outputs(g, memo);
  free(memo);
}
