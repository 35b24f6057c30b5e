// build.c — adding nodes to the graph: each op's shape rule checks its
// inputs (reporting at the node's .ae place), and pure ops are shared (an
// identical existing node is returned). Every rule and the autodiff pass
// add nodes through here.
#include <string.h>

#include "ops.h"

static bool same_node(const Node *a, OpKind op, const int *inputs, int n_inputs, const double *attrs) {
  if (a->op != op || a->n_inputs != n_inputs || memcmp(a->attr, attrs, sizeof a->attr) != 0) return false;
  for (int i = 0; i < n_inputs; i++)
    if (a->inputs[i] != inputs[i]) return false;
  return true;
}

static int add_node(Graph *graph, OpKind op, const int *inputs, int n_inputs, const double *attrs, Loc loc) {
  static const double no_attrs[MAX_ATTRS];
  if (!attrs) attrs = no_attrs;
  for (int i = 0; i < n_inputs; i++)
    if (inputs[i] < 0) return -1;  // an input already failed and was reported
  const OpInfo *info = op_info(op);
  if (info->pure) {
    for (int id = graph->n_nodes - 1; id >= 0; id--)
      if (same_node(&graph->nodes[id], op, inputs, n_inputs, attrs)) return id;
  }
  Node *node = graph_reserve_node(graph, op, inputs, n_inputs, attrs, loc);
  node->rng_node = info->random ? node->id : -1;
  if (info->shape && !info->shape(graph, node, &node->shape)) return -1;
  graph->n_nodes++;
  graph_set_name(graph, node->id, op_name(op));
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

