// pass_inference.c — the values evaluation, encode, reconstruct and
// layer_output (the `activations` command) compute.
// Corruption is the identity at inference, so each such value is rebuilt
// with every corruption node replaced by its input; hash-consing in
// graph_add makes the rebuilt nodes the existing ones wherever nothing was
// corrupted (encoder(noisy) becomes the same node as encoder(x)).
#include <stdlib.h>

#include "passes.h"

// Node `id` rebuilt from its inputs' rebuilt nodes (all in memo already).
static int rebuild_node(Graph *g, int id, const int *memo) {
  Node node = g->nodes[id];  // a copy: graph_add may move the array
  if (op_info(node.op)->identity_at_inference) return memo[node.inputs[0]];
  int inputs[MAX_INPUTS];
  bool changed = false;
  for (int i = 0; i < node.n_inputs; i++) {
    inputs[i] = memo[node.inputs[i]];
    changed |= inputs[i] != node.inputs[i];
  }
  if (!changed) return id;
  int before = g->n_nodes;
  int made = graph_add_attr(g, node.op, inputs, node.n_inputs, node.attr, node.loc);
  if (made >= before) {  // a new node: name it after the one it stands for
    char name[320];
    snprintf(name, sizeof name, "%s_eval", node.name);
    graph_set_name(g, made, name);
  }
  return made;
}

// The node standing for `id` at inference, memoized. Depth-first over the
// inputs in order, as a recursion would go, but on a stack of its own: a
// chain of 100k values must not overflow the C stack.
static int rebuild(Graph *g, int root, int *memo) {
  if (memo[root] != -2) return memo[root];
  int cap = 64, n = 0, *stack = malloc((size_t)cap * sizeof *stack);
  if (!stack) fputs("aec: out of memory\n", stderr), exit(1);
  stack[n++] = root;
  while (n > 0) {
    int top = stack[n - 1];
    if (memo[top] != -2) {
      n--;
      continue;
    }
    const Node *node = &g->nodes[top];
    int pending = -1, n_inputs = op_info(node->op)->identity_at_inference ? 1 : node->n_inputs;
    for (int i = 0; i < n_inputs && pending < 0; i++)
      if (memo[node->inputs[i]] == -2) pending = node->inputs[i];
    if (pending < 0) {
      memo[top] = rebuild_node(g, top, memo);
      n--;
      continue;
    }
    if (n == cap) {
      stack = realloc(stack, (size_t)(cap *= 2) * sizeof *stack);
      if (!stack) fputs("aec: out of memory\n", stderr), exit(1);
    }
    stack[n++] = pending;
  }
  free(stack);
  return memo[root];
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
