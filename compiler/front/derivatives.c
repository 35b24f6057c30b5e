// derivatives.c — the language's derivatives: grad(y, x), the gradient of a
// per-sample [1] value y with respect to a value x, and jacobian_norm(y, x),
// the squared Frobenius norm of y's Jacobian with respect to x, per sample.
// Both run ops/backward.c's sweep, the same one a step's autodiff runs, over
// the graph as it stands; its nodes are ordinary values, so a loss may use
// them and the step's sweep differentiates them again (second derivatives,
// from each gradient op's own vector-Jacobian rule).
//
// jacobian_norm takes one backward sweep per element of y (each row of the
// Jacobian is grad(y[j], x)), except for act(dense(x)), a dense layer
// (reshapes of x aside) and an elementwise activation, whose Jacobian is
// diag(act'(h)) W^T: its norm is, in closed form, the sum over units j of
// act'(h_j)^2 times the squared norm of W's column j (column_squares).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowering.h"

// The most backward sweeps jacobian_norm writes for one call.
enum { MAX_JACOBIAN_ROWS = 128 };

// Whether y depends on x through per-sample values alone; else reports.
static bool per_sample_path(Graph *g, int y, int x, const char *what, Loc loc) {
  bool *depends = depending_on(g, &x, 1, y), *between = calloc((size_t)y + 1, sizeof(bool));
  bool ok = depends[y];
  if (!ok)
    diag_error(loc, "%s: y does not depend on x (x, '%s', is not a value y is computed from); give as x the input "
               "or a value computed from it before y", what, g->nodes[x].name);
  between[y] = ok;  // then the nodes on a path from x to y
  for (int id = y; id > x && ok; id--) {
    if (!between[id] || !depends[id]) continue;
    const Node *node = &g->nodes[id];
    const OpInfo *info = op_info(node->op);
    if (info->batch_statistics || !node->shape.batched) {
      diag_error(loc, "%s: y depends on x through %s (%s), which mixes the samples of a batch, so a sample's y "
                 "has no gradient with respect to its own x alone; take the derivative before it", what,
                 user_name(node->op), info->batch_statistics ? info->batch_statistics : "a value of the whole batch");
      ok = false;
    }
    for (int i = 0; i < node->n_inputs; i++) between[node->inputs[i]] = true;
  }
  free(depends);
  free(between);
  return ok;
}

// The gradient of the [1] value y (per sample) with respect to x: a sweep
// seeded with ones. -1 after reporting.
static int gradient_of(Lowerer *L, int y, int x, Loc loc, const char *what) {
  Graph *g = L->graph;
  int seed = graph_add(g, OP_SUM_GRAD, (int[]){number_node(L, 1, loc), y}, 2, loc);
  char prefix[300];
  snprintf(prefix, sizeof prefix, "%s_", g->nodes[y].name);
  int *grads = backward_sweep(g, y, seed, &x, 1, prefix);
  if (!grads) return -1;
  int result = grads[x];
  free(grads);
  if (result < 0) {
    diag_error(loc, "%s: the gradient of y with respect to x is zero everywhere (y depends on x only through a "
               "maxpool's choice of switches, which has no gradient)", what);
    return -1;
  }
  return result;
}

static bool want_batched(Graph *g, const Bound *args, int i, const Builtin *b, const Expr *call, int *node) {
  if (!want_tensor(args, i, b, call, node)) return false;
  if (g->nodes[*node].shape.batched) return true;
  diag_error(arg_loc(args, i, call), "%s: %s must be a value per sample (an input, a layer's output, sum(v)), but "
             "this one is a number for the whole batch%s", b->name, b->params[i],
             i == 0 ? " (a loss such as mse or bce is the batch's mean): write the per-sample value, such as "
                      "sum(square(v))" : "");
  return false;
}

// Marks the result of a derivative and the nodes made for it (from `first` on).
static Value derivative_value(Graph *g, int result, int first, DerivativeKind kind, int y, int x) {
  if (result < 0) return error_value;
  for (int id = first; id < g->n_nodes; id++)
    if (id != result) g->nodes[id].inside = result;
  if (result >= first) {
    g->nodes[result].derivative = kind;
    g->nodes[result].derivative_of[0] = y, g->nodes[result].derivative_of[1] = x;
  }
  return tensor_value(result);
}

// grad(y, x)
Value lower_grad(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  Graph *g = L->graph;
  int y, x;
  if (!want_batched(g, args, 0, b, call, &y) | !want_batched(g, args, 1, b, call, &x)) return error_value;
  if (!shape_is_per_sample_scalar(g->nodes[y].shape)) {
    char sy[64];
    shape_format(g->nodes[y].shape, sy, sizeof sy);
    diag_error(arg_loc(args, 0, call), "grad: y must be one number per sample (a [1] value, such as sum(v), mean(v) "
               "or a dense layer of 1 unit), but it has shape %s; take grad(sum(y), x), or jacobian_norm(y, x) for "
               "the norm of every element's gradient", sy);
    return error_value;
  }
  if (!per_sample_path(g, y, x, "grad", call->loc)) return error_value;
  int first = g->n_nodes;
  return derivative_value(g, gradient_of(L, y, x, call->loc, "grad"), first, DERIVATIVE_GRAD, y, x);
}

// act(dense(x)), or dense(x), with x the layer's input up to reshapes:
// the closed form's node (or -1 when y is not of that form).
static int closed_form(Lowerer *L, int y, int x, Loc loc) {
  Graph *g = L->graph;
  const Node *top = &g->nodes[y];
  int dense = y;
  OpKind act = OP_INPUT;  // linear
  if (op_info(top->op)->activation_gradient != OP_INPUT) act = top->op, dense = top->inputs[0];
  if (g->nodes[dense].op != OP_DENSE) return -1;
  int in = g->nodes[dense].inputs[0];
  while (in != x && g->nodes[in].op == OP_RESHAPE) in = g->nodes[in].inputs[0];
  if (in != x) return -1;
  int kernel = g->nodes[dense].inputs[1];
  // ones shaped like y, the layer's output (reading its product instead
  // would keep the activation from being the product's epilogue)
  int ones = graph_add(g, OP_SUM_GRAD, (int[]){number_node(L, 1, loc), y}, 2, loc);
  int slopes = ones;  // act'(h) per unit
  if (act != OP_INPUT) {
    const OpInfo *info = op_info(act);
    int from = info->gradient_reads_output ? y : dense;
    slopes = graph_add_attr(g, info->activation_gradient, (int[]){from, ones}, 2, g->nodes[y].attr, loc);
  }
  int weights = add_named(L, OP_COLUMN_SQUARES, &kernel, 1, loc, "jacobian_column_squares");
  int squared = add_named(L, OP_SQUARE, &slopes, 1, loc, "jacobian_slopes_squared");
  int terms = add_named(L, OP_MUL, (int[]){squared, weights}, 2, loc, "jacobian_terms");
  return add_named(L, OP_SUM, &terms, 1, loc, "jacobian_norm");
}

// jacobian_norm(y, x)
Value lower_jacobian_norm(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  Graph *g = L->graph;
  int y, x;
  if (!want_batched(g, args, 0, b, call, &y) | !want_batched(g, args, 1, b, call, &x)) return error_value;
  if (!per_sample_path(g, y, x, "jacobian_norm", call->loc)) return error_value;
  Loc loc = call->loc;
  int first = g->n_nodes;
  int closed = closed_form(L, y, x, loc);
  if (closed >= 0) return derivative_value(g, closed, first, DERIVATIVE_JACOBIAN_NORM, y, x);
  Shape sy = g->nodes[y].shape;
  int rows = (int)shape_size(sy);
  if (rows > MAX_JACOBIAN_ROWS) {
    diag_error(arg_loc(args, 0, call), "jacobian_norm: y has %d elements, and outside the closed form (y = "
               "act(dense(x)), x the layer's own input) it takes a backward pass per element, at most %d; apply it "
               "to one layer at a time, or to a smaller code", rows, MAX_JACOBIAN_ROWS);
    return error_value;
  }
  int flat = y;
  if (sy.rank != 1)
    flat = add_named_attr(L, OP_RESHAPE, &y, 1, (double[MAX_ATTRS]){rows}, loc, "jacobian_rows");
  int total = -1;
  for (int j = 0; j < rows && flat >= 0; j++) {
    int row = rows == 1 ? flat : graph_add_attr(g, OP_SLICE, &flat, 1, (double[MAX_ATTRS]){j, j + 1}, loc);
    int gradient = gradient_of(L, row, x, loc, "jacobian_norm");
    if (gradient < 0) return error_value;
    int squared = add_named(L, OP_SQUARE, &gradient, 1, loc, "jacobian_row_squared");
    int term = add_named(L, OP_SUM, &squared, 1, loc, "jacobian_row_norm");
    total = total < 0 ? term : add_named(L, OP_ADD, (int[]){total, term}, 2, loc, "jacobian_norm");
  }
  return derivative_value(g, total, first, DERIVATIVE_JACOBIAN_NORM, y, x);
}
