// roles.c — the values the application commands use besides the code and
// the reconstruction (lower.c finds those): the corrupted input that
// `denoise` shows, and the first layer's kernel that `filters` draws.
#include <stdlib.h>

#include "front.h"

// The corrupted input: a value computed from the input alone (no parameter
// behind it) through at least one corruption op, of the input's size, that a
// parameter-dependent node reads: what the model is fed in training mode.
// When several qualify, the one behind the reconstruction wins, then the
// first. -1 when the model corrupts nothing.
static int find_corrupt_node(const Graph *g) {
  int n = g->n_nodes;
  bool *data_only = calloc((size_t)n + 1, sizeof(bool));   // depends on the input and on no parameter
  bool *has_param = calloc((size_t)n + 1, sizeof(bool));
  bool *corrupted = calloc((size_t)n + 1, sizeof(bool));
  bool *behind_recon = calloc((size_t)n + 1, sizeof(bool));
  for (int id = 0; id < n; id++) {
    const Node *node = &g->nodes[id];
    if (node->is_backward) continue;
    has_param[id] = node->op == OP_PARAM;
    data_only[id] = node->op == OP_INPUT;
    corrupted[id] = op_info(node->op)->identity_at_inference;
    for (int i = 0; i < node->n_inputs; i++) {
      int in = node->inputs[i];
      has_param[id] |= has_param[in];
      data_only[id] |= data_only[in];
      corrupted[id] |= corrupted[in];
    }
    if (has_param[id]) data_only[id] = false;
  }
  if (g->reconstruction_node >= 0) {
    behind_recon[g->reconstruction_node] = true;
    for (int id = g->reconstruction_node; id >= 0; id--)
      if (behind_recon[id])
        for (int i = 0; i < g->nodes[id].n_inputs; i++) behind_recon[g->nodes[id].inputs[i]] = true;
  }
  size_t input_size = shape_size(g->nodes[g->input_node].shape);
  int first = -1, best = -1;
  for (int id = 0; id < n && best < 0; id++) {
    const Node *node = &g->nodes[id];
    if (!data_only[id] || !corrupted[id] || !node->shape.batched || shape_size(node->shape) != input_size) continue;
    bool fed = false;
    for (int r = id + 1; r < n && !fed; r++) {
      if (g->nodes[r].is_backward || !has_param[r]) continue;
      for (int i = 0; i < g->nodes[r].n_inputs; i++) fed |= g->nodes[r].inputs[i] == id;
    }
    if (!fed) continue;
    if (first < 0) first = id;
    if (behind_recon[id]) best = id;
  }
  free(data_only), free(has_param), free(corrupted), free(behind_recon);
  return best >= 0 ? best : first;
}

// The first dense or conv layer applied to the input (or to a value computed from
// the input alone, such as its corruption): its kernel's param index.
static int find_first_kernel(const Graph *g) {
  bool *has_param = calloc((size_t)g->n_nodes + 1, sizeof(bool));
  int found = -1;
  for (int id = 0; id < g->n_nodes && found < 0; id++) {
    const Node *node = &g->nodes[id];
    has_param[id] = node->op == OP_PARAM;
    for (int i = 0; i < node->n_inputs; i++) has_param[id] |= has_param[node->inputs[i]];
    if ((node->op == OP_DENSE || node->op == OP_CONV) && !node->is_backward && !has_param[node->inputs[0]])
      found = g->nodes[node->inputs[1]].param_index;
  }
  free(has_param);
  return found;
}

void find_roles(Graph *g) {
  g->corrupt_node = g->input_node >= 0 ? find_corrupt_node(g) : -1;
  g->first_kernel_param = find_first_kernel(g);
}
