// build.c — adding nodes to the graph: each op's shape rule checks its
// inputs (reporting at the node's .ae place), and pure ops are shared (an
// identical existing node is returned). Every rule and the autodiff pass
// add nodes through here.
#include <string.h>

#include "ops.h"

static int add_node(Graph *graph, OpKind op, const int *inputs, int n_inputs, const double *attrs, Loc loc) {
  static const double no_attrs[MAX_ATTRS];
  if (!attrs) attrs = no_attrs;
  for (int i = 0; i < n_inputs; i++)
    if (inputs[i] < 0) return -1;  // an input already failed and was reported
  const OpInfo *info = op_info(op);
  if (info->pure) {
    int same = graph_find_pure(graph, op, inputs, n_inputs, attrs);
    if (same >= 0) return same;
  }
  Node *node = graph_reserve_node(graph, op, inputs, n_inputs, attrs, loc);
  node->rng_node = info->random ? node->id : -1;
  if (info->shape && !info->shape(graph, node, &node->shape)) return -1;
  node->from_batch = node->shape.batched;
  for (int i = 0; i < n_inputs; i++) node->from_batch |= graph->nodes[inputs[i]].from_batch;
  graph->n_nodes++;
  graph_set_name(graph, node->id, op_name(op));
  if (info->pure) graph_note_pure(graph, node->id);
  return node->id;
}

int graph_add(Graph *graph, OpKind op, const int *inputs, int n_inputs, Loc loc) {
  return add_node(graph, op, inputs, n_inputs, NULL, loc);
}

int graph_add_attr(Graph *graph, OpKind op, const int *inputs, int n_inputs, const double *attrs, Loc loc) {
  return add_node(graph, op, inputs, n_inputs, attrs, loc);
}

int graph_add_constant(Graph *graph, double value, Loc loc) {
  return add_node(graph, OP_CONSTANT, NULL, 0, (double[MAX_ATTRS]){value}, loc);
}

