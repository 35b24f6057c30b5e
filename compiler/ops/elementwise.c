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
  if (!in.batched && out.batched) return add1(g, OP_BIAS_GRAD, grad, loc);  // summed over the batch
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

// Whether `one` is a value without a batch shaped like each sample of
// `batched` (a weight's column norms, front/derivatives.c): it is broadcast
// over the batch, as a bias is.
static bool over_batch(Shape one, Shape batched) {
  if (one.batched || !batched.batched || one.rank == 0) return false;
  one.batched = true;
  return shapes_equal(one, batched);
}

// Elementwise on two values: equal shapes, or one side a scalar, or one side
// a [1] value per sample (broadcast over the other's elements, as NumPy does),
// or one side a value without a batch shaped like a sample of the other.
static bool shape_broadcast(Graph *graph, Node *node, Shape *out) {
  Shape a = input_shape(graph, node, 0), b = input_shape(graph, node, 1);
  if (shapes_equal(a, b) || shape_is_scalar(b)) return *out = a, true;
  if (shape_is_scalar(a)) return *out = b, true;
  if (a.batched && shape_is_per_sample_scalar(b)) return *out = a, true;
  if (b.batched && shape_is_per_sample_scalar(a)) return *out = b, true;
  if (over_batch(b, a)) return *out = a, true;
  if (over_batch(a, b)) return *out = b, true;
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

// ------------------------------------------------------ concat and slice
// Both work on the last axis of a sample: a sample is ROWS rows of that
// axis (the other axes' sizes multiplied), and row r of the output is made
// from row r of each input.
static int last_axis(Shape s) { return s.rank ? s.dims[s.rank - 1] : 1; }

static bool shape_concat(Graph *g, Node *node, Shape *out) {
  Shape a = input_shape(g, node, 0), b = input_shape(g, node, 1);
  bool same = a.batched && b.batched && a.rank == b.rank && a.rank > 0;
  for (int d = 0; same && d + 1 < a.rank; d++) same = a.dims[d] == b.dims[d];
  if (!same) {
    char sa[64], sb[64];
    shape_format(a, sa, sizeof sa), shape_format(b, sb, sizeof sb);
    diag_error(node->loc, "concat: %s and %s cannot be joined along the last axis; every other axis must be the "
               "same (flatten() both, or reshape one)", sa, sb);
    return false;
  }
  *out = a;
  out->dims[a.rank - 1] += last_axis(b);
  return true;
}

// slice(v, from, to): attr {from, to}, 0 <= from < to <= the last axis
static bool shape_slice(Graph *g, Node *node, Shape *out) {
  Shape v = input_shape(g, node, 0);
  int from = (int)node->attr[0], to = (int)node->attr[1];
  if (!v.batched || v.rank == 0 || from != node->attr[0] || to != node->attr[1] || from < 0 || to <= from ||
      to > last_axis(v)) {
    char sv[64];
    shape_format(v, sv, sizeof sv);
    diag_error(node->loc, "slice: from %g to %g is not a part of the last axis of %s; take whole numbers with "
               "0 <= from < to <= %d", node->attr[0], node->attr[1], sv, last_axis(v));
    return false;
  }
  *out = v;
  out->dims[v.rank - 1] = to - from;
  return true;
}

static void vjp_concat(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  int a = last_axis(g->nodes[node->inputs[0]].shape), b = last_axis(g->nodes[node->inputs[1]].shape);
  if (needs[0]) out[0] = graph_add_attr(g, OP_SLICE, (int[]){grad}, 1, (double[MAX_ATTRS]){0, a}, node->loc);
  if (needs[1]) out[1] = graph_add_attr(g, OP_SLICE, (int[]){grad}, 1, (double[MAX_ATTRS]){a, a + b}, node->loc);
}

static void vjp_slice(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = graph_add_attr(g, OP_SLICE_GRAD, (int[]){grad, node->inputs[0]}, 2, node->attr, node->loc);
}

// slice_grad(g, like) places g in zeros: its gradient in g is the slice.
static void vjp_slice_grad(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  if (needs[0]) out[0] = graph_add_attr(g, OP_SLICE, (int[]){grad}, 1, node->attr, node->loc);
  if (needs[1]) out[1] = VJP_ZERO;
}

static void emit_rows(Emitter *e, const Node *node, int width) {
  emit_line(e, "  enum { ROWS = %zu, WIDTH = %d };", shape_size(node->shape) / (size_t)width, width);
  emit_line(e, "  for (size_t r = 0; r < (size_t)n * ROWS; r++) {");
}

static void emit_concat(Emitter *e, const Node *node) {
  int a = last_axis(e->graph->nodes[node->inputs[0]].shape);
  emit_kernel_open(e, node, (const char *const[]){"a", "b", "out"}, "each row of the last axis: a's, then b's");
  emit_rows(e, node, last_axis(node->shape));
  emit_line(e, "    enum { A = %d };", a);
  emit_line(e, "    for (int j = 0; j < A; j++) out[r * WIDTH + j] = a[r * A + j];");
  emit_line(e, "    for (int j = A; j < WIDTH; j++) out[r * WIDTH + j] = b[r * (WIDTH - A) + j - A];");
  emit_line(e, "  }");
  emit_line(e, "}");
}

static void emit_slice(Emitter *e, const Node *node) {
  emit_kernel_open(e, node, (const char *const[]){"a", "out"}, "out[r][j] = a[r][FROM + j]");
  emit_rows(e, node, last_axis(node->shape));
  emit_line(e, "    enum { FROM = %d, IN = %d };", (int)node->attr[0], last_axis(e->graph->nodes[node->inputs[0]].shape));
  emit_line(e, "    for (int j = 0; j < WIDTH; j++) out[r * WIDTH + j] = a[r * IN + FROM + j];");
  emit_line(e, "  }");
  emit_line(e, "}");
}

// slice_grad(g, like): g in its place in like's last axis, zeros elsewhere
static void emit_slice_grad(Emitter *e, const Node *node) {
  emit_kernel_open(e, node, (const char *const[]){"g", "like", "out"}, "out[r][FROM + j] = g[r][j], else 0");
  emit_line(e, "  (void)like;  // gives the shape only");
  emit_rows(e, node, last_axis(node->shape));
  emit_line(e, "    enum { FROM = %d, TO = %d };", (int)node->attr[0], (int)node->attr[1]);
  emit_line(e, "    for (int j = 0; j < WIDTH; j++) out[r * WIDTH + j] = j >= FROM && j < TO ? g[r * (TO - FROM) + j - FROM] : 0;");
  emit_line(e, "  }");
  emit_line(e, "}");
}

const OpInfo OP_CONCAT_row = {.n_inputs = 2, .kernel = KERNEL_CUSTOM, .emit = emit_concat, .shape = shape_concat,
                              .vjp = vjp_concat, .flops = flops_elements, .pure = true};
const OpInfo OP_SLICE_row = {.n_inputs = 1, .kernel = KERNEL_CUSTOM, .emit = emit_slice, .shape = shape_slice,
                             .vjp = vjp_slice, .flops = flops_elements, .pure = true};
const OpInfo OP_SLICE_GRAD_row = {.n_inputs = 2, .kernel = KERNEL_CUSTOM, .emit = emit_slice_grad,
                                  .shape = shape_like_second, .vjp = vjp_slice_grad, .flops = flops_elements,
                                  .pure = true};

// ------------------------------------------------------------ activations
// Each ACTIVATION row of ops.def gives three ops: the activation; its
// gradient (that row's expression of the activation's output or input, $0,
// and the incoming gradient, $1), which keeps the activation's attributes
// (leaky_relu's slope); and the gradient's own derivative in $0, for second
// derivatives. A gradient read from the output is zero wherever the
// incoming gradient is, so a maxpool's gradient before it can apply it at the
// switches alone (pool.c).
static void vjp_activation(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  const OpInfo *info = op_info(node->op);
  int from = info->gradient_reads_output ? node->id : node->inputs[0];
  out[0] = graph_add_attr(g, info->activation_gradient, (int[]){from, grad}, 2, node->attr, node->loc);
}

// The gradient op d = f'(a) * g is linear in g, so its own gradient in g is
// the same op applied to the incoming gradient; in a (the activation's
// output or input), it is f''(a) * g times the incoming gradient: the
// KIND_GRAD2 op, or nothing where f' is piecewise constant (relu, abs).
static void vjp_activation_gradient(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  int a = node->inputs[0], incoming = node->inputs[1];
  OpKind second = op_info(node->op)->second_gradient;
  if (needs[0])
    out[0] = strcmp(op_info(second)->expr, "0") == 0
                 ? VJP_ZERO
                 : graph_add_attr(g, second, (int[]){a, add2(g, OP_MUL, grad, incoming, node->loc)}, 2, node->attr,
                                  node->loc);
  if (needs[1]) out[1] = graph_add_attr(g, node->op, (int[]){a, grad}, 2, node->attr, node->loc);
}

#define ACTIVATION(kind, name, forward, gradient, second, reads, param, fallback, summary)                        \
  const OpInfo kind##_row = {.n_inputs = 1, ELEMENTWISE(forward), .shape = shape_same, .vjp = vjp_activation,       \
                             .activation_gradient = kind##_GRAD, .gradient_reads_output = (reads) == READS_OUTPUT}; \
  const OpInfo kind##_GRAD_row = {.n_inputs = 2, ELEMENTWISE(gradient), .shape = shape_same,                        \
                                  .vjp = vjp_activation_gradient, .second_gradient = kind##_GRAD2,                \
                                  .zero_where_gradient_is = (reads) == READS_OUTPUT};                              \
  const OpInfo kind##_GRAD2_row = {.n_inputs = 2, ELEMENTWISE(second), .shape = shape_same};
#include "ops.def"

void expand_member(Emitter *e, const Group *group, int m, const int *inputs, int n_inputs) {
  expand_member_text(e, group, m, inputs, n_inputs, op_info(e->graph->nodes[group->members[m]].op)->expr);
}

void expand_op_with(Emitter *e, const Node *node, const char *const *operands, int n_operands) {
  char copies[MAX_INPUTS][64];
  for (int i = 0; i < MAX_INPUTS; i++) snprintf(copies[i], sizeof copies[i], "%s", i < n_operands ? operands[i] : "?");
  expand_with(e, node, op_info(node->op)->expr, copies, "at", "(real)count", node->shape.batched ? "(real)n" : "1");
}
