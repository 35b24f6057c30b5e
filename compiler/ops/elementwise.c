// elementwise.c — the op-table rows of storage, arithmetic, reshape and every
// activation (whose two rows come from its ACTIVATION row in ir/ops.def
// alone); the shape rules, FLOPs and vjp helpers the families share; and the
// expansion of an op's expression template (writer/ does the substitution).
// The table itself, which points at every family's rows, is table.c.
#include <stdlib.h>
#include <string.h>

#include "ops.h"

Shape input_shape(const Graph *graph, const Node *node, int i) { return graph->nodes[node->inputs[i]].shape; }

// The name a user wrote for an op, for messages.
const char *user_name(OpKind op) {
  switch (op) {
  case OP_ADD: return "'+'";
  case OP_SUB: return "'-'";
  case OP_MUL: return "'*'";
  case OP_DIV: return "'/'";
  case OP_BCE_LOGITS: return "bce";
  default: return op_name(op);
  }
}

// ------------------------------------------------------- shared shape rules
bool shape_same(Graph *graph, Node *node, Shape *out) {
  *out = input_shape(graph, node, 0);
  return true;
}

bool shape_scalar(Graph *graph, Node *node, Shape *out) {
  (void)graph, (void)node;
  *out = (Shape){0};
  return true;
}

// sum_grad(g, like), mean_grad(g, like), clip_grad(x, g): the shape of input 1
bool shape_like_second(Graph *graph, Node *node, Shape *out) {
  *out = input_shape(graph, node, 1);
  return true;
}

bool shapes_equal(Shape a, Shape b) {
  if (a.batched != b.batched || a.rank != b.rank) return false;
  for (int i = 0; i < a.rank; i++)
    if (a.dims[i] != b.dims[i]) return false;
  return true;
}

// ------------------------------------------------------------ shared FLOPs
double flops_elements(const Graph *g, const Node *node) {
  (void)g;
  return (double)shape_size(node->shape);
}

double flops_input_elements(const Graph *g, const Node *node) {
  return 2.0 * (double)shape_size(g->nodes[node->inputs[0]].shape);
}

// ------------------------------------------------------- shared vjp helpers
int add1(Graph *g, OpKind op, int a, Loc loc) { return graph_add(g, op, (int[]){a}, 1, loc); }
int add2(Graph *g, OpKind op, int a, int b, Loc loc) { return graph_add(g, op, (int[]){a, b}, 2, loc); }
int add3(Graph *g, OpKind op, int a, int b, int c, Loc loc) { return graph_add(g, op, (int[]){a, b, c}, 3, loc); }

// A gradient computed at the output's shape, reduced to an input that was
// broadcast (a scalar operand of a tensor op).
int reduce_to(Graph *g, int grad, int input, Loc loc) {
  if (grad < 0) return grad;
  Shape in = g->nodes[input].shape, out = g->nodes[grad].shape;
  if (shape_is_scalar(in) && !shape_is_scalar(out)) return add1(g, OP_SUM_ALL, grad, loc);
  if (shape_is_per_sample_scalar(in) && shape_size(out) > 1) return add1(g, OP_SUM, grad, loc);
  return grad;
}

// ----------------------------------------------------------------- storage
const OpInfo OP_INPUT_row = {.kernel = KERNEL_NONE};
const OpInfo OP_PARAM_row = {.kernel = KERNEL_NONE};
const OpInfo OP_CONSTANT_row = {.kernel = KERNEL_NONE, .shape = shape_scalar, .pure = true};

// -------------------------------------------------------------- arithmetic
static void shape_error(Graph *graph, const Node *node, int a, int b) {
  char sa[64], sb[64];
  shape_format(input_shape(graph, node, a), sa, sizeof sa);
  shape_format(input_shape(graph, node, b), sb, sizeof sb);
  diag_error(node->loc,
             "%s: the shapes %s and %s do not broadcast; both sides need the same shape, or one side must be a "
             "number or a [1] value per sample (such as sum(v) or mean(v))",
             user_name(node->op), sa, sb);
}

// Elementwise on two values: equal shapes, or one side a scalar, or one side
// a [1] value per sample (broadcast over the other's elements, as NumPy does).
static bool shape_broadcast(Graph *graph, Node *node, Shape *out) {
  Shape a = input_shape(graph, node, 0), b = input_shape(graph, node, 1);
  if (shapes_equal(a, b) || shape_is_scalar(b)) return *out = a, true;
  if (shape_is_scalar(a)) return *out = b, true;
  if (a.batched && shape_is_per_sample_scalar(b)) return *out = a, true;
  if (b.batched && shape_is_per_sample_scalar(a)) return *out = b, true;
  shape_error(graph, node, 0, 1);
  return false;
}

static void vjp_add(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  if (needs[0]) out[0] = reduce_to(g, grad, node->inputs[0], node->loc);
  if (needs[1]) out[1] = reduce_to(g, grad, node->inputs[1], node->loc);
}
static void vjp_sub(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  if (needs[0]) out[0] = reduce_to(g, grad, node->inputs[0], node->loc);
  if (needs[1]) out[1] = reduce_to(g, add1(g, OP_NEG, grad, node->loc), node->inputs[1], node->loc);
}
static void vjp_mul(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  int a = node->inputs[0], b = node->inputs[1];
  if (needs[0]) out[0] = reduce_to(g, add2(g, OP_MUL, grad, b, node->loc), a, node->loc);
  if (needs[1]) out[1] = reduce_to(g, add2(g, OP_MUL, grad, a, node->loc), b, node->loc);
}
static void vjp_div(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  int a = node->inputs[0], b = node->inputs[1];
  if (needs[0]) out[0] = reduce_to(g, add2(g, OP_DIV, grad, b, node->loc), a, node->loc);
  if (needs[1]) {  // d(a/b)/db = -a/b^2 = -(a/b)/b
    int quotient_over_b = add2(g, OP_DIV, node->id, b, node->loc);
    out[1] = reduce_to(g, add1(g, OP_NEG, add2(g, OP_MUL, grad, quotient_over_b, node->loc), node->loc), b,
                       node->loc);
  }
}
static void vjp_neg(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = add1(g, OP_NEG, grad, node->loc);
}

const OpInfo OP_ADD_row = {.n_inputs = 2, ELEMENTWISE("$0 + $1"), .shape = shape_broadcast, .vjp = vjp_add};
const OpInfo OP_SUB_row = {.n_inputs = 2, ELEMENTWISE("$0 - $1"), .shape = shape_broadcast, .vjp = vjp_sub};
const OpInfo OP_MUL_row = {.n_inputs = 2, ELEMENTWISE("$0 * $1"), .shape = shape_broadcast, .vjp = vjp_mul};
const OpInfo OP_DIV_row = {.n_inputs = 2, ELEMENTWISE("$0 / $1"), .shape = shape_broadcast, .vjp = vjp_div};
const OpInfo OP_NEG_row = {.n_inputs = 1, ELEMENTWISE("-$0"), .shape = shape_same, .vjp = vjp_neg};

// ---------------------------------------------------------------- reshape
// reshape(x) -> the dims in attr (0 ends them), the same number of elements
static bool shape_reshape(Graph *g, Node *node, Shape *out) {
  Shape x = input_shape(g, node, 0);
  Shape s = {.batched = x.batched};
  for (int d = 0; d < MAX_ATTRS && node->attr[d] > 0; d++) s.dims[s.rank++] = (int)node->attr[d];
  if (shape_size(s) != shape_size(x) || !x.batched) {
    char sx[64], ss[64];
    shape_format(x, sx, sizeof sx), shape_format(s, ss, sizeof ss);
    diag_error(node->loc, "reshape: a value of shape %s (%zu elements per sample) cannot become %s (%zu elements)", sx,
               shape_size(x), ss, shape_size(s));
    return false;
  }
  *out = s;
  return true;
}

static void vjp_reshape(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  Shape x = g->nodes[node->inputs[0]].shape;
  double attr[MAX_ATTRS] = {0};
  for (int d = 0; d < x.rank && d < MAX_ATTRS; d++) attr[d] = x.dims[d];
  out[0] = graph_add_attr(g, OP_RESHAPE, (int[]){grad}, 1, attr, node->loc);
}

// A reshape is a copy: the memory layout of a sample does not change.
const OpInfo OP_RESHAPE_row = {.n_inputs = 1, ELEMENTWISE("$0"), .shape = shape_reshape, .vjp = vjp_reshape};

// ------------------------------------------------------------ activations
// Each ACTIVATION row of ops.def gives two ops: the activation, and its
// gradient (that row's expression of the activation's output or input, $0,
// and the incoming gradient, $1), which keeps the activation's attributes
// (leaky_relu's slope). A gradient read from the output is zero wherever the
// incoming gradient is, so a maxpool's gradient before it can apply it at the
// switches alone (pool.c).
static void vjp_activation(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  const OpInfo *info = op_info(node->op);
  int from = info->gradient_reads_output ? node->id : node->inputs[0];
  out[0] = graph_add_attr(g, info->activation_gradient, (int[]){from, grad}, 2, node->attr, node->loc);
}

#define ACTIVATION(kind, name, forward, gradient, reads, param, fallback, summary)                                \
  const OpInfo kind##_row = {.n_inputs = 1, ELEMENTWISE(forward), .shape = shape_same, .vjp = vjp_activation,       \
                             .activation_gradient = kind##_GRAD, .gradient_reads_output = (reads) == READS_OUTPUT}; \
  const OpInfo kind##_GRAD_row = {.n_inputs = 2, ELEMENTWISE(gradient), .shape = shape_same,                        \
                                  .zero_where_gradient_is = (reads) == READS_OUTPUT};
#include "ops.def"

void expand_member(Emitter *e, const Group *group, int m, const int *inputs, int n_inputs) {
  expand_member_text(e, group, m, inputs, n_inputs, op_info(e->graph->nodes[group->members[m]].op)->expr);
}

void expand_op_with(Emitter *e, const Node *node, const char *const *operands, int n_operands) {
  char copies[MAX_INPUTS][64];
  for (int i = 0; i < MAX_INPUTS; i++) snprintf(copies[i], sizeof copies[i], "%s", i < n_operands ? operands[i] : "?");
  expand_with(e, node, op_info(node->op)->expr, copies, "at", "(real)count", node->shape.batched ? "(real)n" : "1");
}
