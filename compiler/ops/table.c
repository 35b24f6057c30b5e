// ops.c — the op table. Each IR op is described here once: its shape rule,
// its kernel (a custom emitter, or an elementwise/reduction expression that
// emit.c turns into a loop), its vector-Jacobian rule and its FLOPs.
#include <stdlib.h>
#include <string.h>

#include "ops.h"

static Shape input_shape(Graph *graph, const Node *node, int i) { return graph->nodes[node->inputs[i]].shape; }

// The name a user wrote for an op, for messages.
static const char *user_name(OpKind op) {
  switch (op) {
  case OP_ADD: return "'+'";
  case OP_SUB: return "'-'";
  case OP_MUL: return "'*'";
  case OP_DIV: return "'/'";
  case OP_BCE_LOGITS: return "bce";
  default: return op_info(op)->name;
  }
}

static void shape_error(Graph *graph, const Node *node, int a, int b) {
  char sa[64], sb[64];
  shape_format(input_shape(graph, node, a), sa, sizeof sa);
  shape_format(input_shape(graph, node, b), sb, sizeof sb);
  diag_error(node->loc, "%s: the shapes %s and %s differ; both sides need the same shape, or one side must be a number",
             user_name(node->op), sa, sb);
}

// ------------------------------------------------------------- shape rules
static bool shape_same(Graph *graph, Node *node, Shape *out) {
  *out = input_shape(graph, node, 0);
  return true;
}

static bool shapes_equal(Shape a, Shape b) {
  if (a.batched != b.batched || a.rank != b.rank) return false;
  for (int i = 0; i < a.rank; i++)
    if (a.dims[i] != b.dims[i]) return false;
  return true;
}

// Elementwise on two values: equal shapes, or one side a scalar.
static bool shape_broadcast(Graph *graph, Node *node, Shape *out) {
  Shape a = input_shape(graph, node, 0), b = input_shape(graph, node, 1);
  if (shapes_equal(a, b) || shape_is_scalar(b)) return *out = a, true;
  if (shape_is_scalar(a)) return *out = b, true;
  shape_error(graph, node, 0, 1);
  return false;
}

static bool shape_scalar(Graph *graph, Node *node, Shape *out) {
  (void)graph, (void)node;
  *out = (Shape){0};
  return true;
}

// A loss of (prediction, target): equal shapes or a numeric target.
static bool shape_loss(Graph *graph, Node *node, Shape *out) {
  Shape p = input_shape(graph, node, 0), t = input_shape(graph, node, 1);
  if (!shapes_equal(p, t) && !shape_is_scalar(t)) {
    char sp[64], st[64];
    shape_format(p, sp, sizeof sp), shape_format(t, st, sizeof st);
    diag_error(node->loc,
               "%s: the prediction has shape %s but the target has shape %s; make the prediction's last layer "
               "produce %s, or compare with a target of shape %s (a target may also be a number)",
               user_name(node->op), sp, st, st, sp);
    return false;
  }
  *out = (Shape){0};
  return true;
}

// The gradient of a (prediction, target) loss, given the scalar gradient.
static bool shape_loss_grad(Graph *graph, Node *node, Shape *out) {
  *out = input_shape(graph, node, 0);
  return true;
}

// dense(x[K], kernel[K, N], bias[N]) -> [N]
static bool shape_dense(Graph *graph, Node *node, Shape *out) {
  Shape x = input_shape(graph, node, 0), w = input_shape(graph, node, 1);
  if (!x.batched || x.rank != 1) {
    char sx[64];
    shape_format(x, sx, sizeof sx);
    diag_error(node->loc, "dense needs a flat input of shape [features] per sample, but got %s%s", sx,
               x.batched ? "; add flatten() before it" : "");
    return false;
  }
  if (w.dims[0] != x.dims[0]) {
    diag_error(node->loc, "dense: its weights were made for inputs of %d features, but this input has %d "
               "(a net keeps the shapes of its first application)", w.dims[0], x.dims[0]);
    return false;
  }
  *out = (Shape){.batched = true, .rank = 1, .dims = {w.dims[1]}};
  return true;
}

// dense_grad_input(dy[N], kernel[K, N]) -> [K]
static bool shape_dense_grad_input(Graph *graph, Node *node, Shape *out) {
  *out = (Shape){.batched = true, .rank = 1, .dims = {input_shape(graph, node, 1).dims[0]}};
  return true;
}

// dense_grad_kernel(x[K], dy[N]) -> [K, N]
static bool shape_dense_grad_kernel(Graph *graph, Node *node, Shape *out) {
  *out = (Shape){.rank = 2, .dims = {input_shape(graph, node, 0).dims[0], input_shape(graph, node, 1).dims[0]}};
  return true;
}

// bias_grad(dy[N]) -> [N]
static bool shape_bias_grad(Graph *graph, Node *node, Shape *out) {
  *out = input_shape(graph, node, 0);
  out->batched = false;
  return true;
}

// sum_grad(g, like), mean_grad(g, like): the shape of `like`
static bool shape_like_second(Graph *graph, Node *node, Shape *out) {
  *out = input_shape(graph, node, 1);
  return true;
}

// kl_sparsity(h) -> a scalar: h needs a batch to average over
static bool shape_batched_to_scalar(Graph *graph, Node *node, Shape *out) {
  Shape h = input_shape(graph, node, 0);
  if (!h.batched) {
    char sh[64];
    shape_format(h, sh, sizeof sh);
    diag_error(node->loc, "%s needs an activation per sample (a value with a batch), but got %s",
               user_name(node->op), sh);
    return false;
  }
  *out = (Shape){0};
  return true;
}

// ---------------------------------------------------------------- kernels
static void emit_dense(Emitter *e, const Node *node) {
  char in[512], out[512];
  size_const(e->graph, node->inputs[0], in, sizeof in);
  size_const(e->graph, node->id, out, sizeof out);
  emit_kernel_open(e, node, (const char *const[]){"x", "kernel", "bias", "y"},
                   "y[n][OUT] = x[n][IN] . kernel[IN][OUT] + bias[OUT]");
  emit_line(e, "  enum { IN = %s, OUT = %s };", in, out);
  emit_line(e, "#pragma omp parallel for schedule(static)");
  emit_line(e, "  for (int i = 0; i < n; i++) {");
  emit_line(e, "    const real *restrict xi = x + (size_t)i * IN;");
  emit_line(e, "    real *restrict yi = y + (size_t)i * OUT;");
  emit_line(e, "    for (int j = 0; j < OUT; j++) yi[j] = bias[j];");
  emit_line(e, "    for (int k = 0; k < IN; k++) {");
  emit_line(e, "      const real xik = xi[k];");
  emit_line(e, "      for (int j = 0; j < OUT; j++) yi[j] += xik * kernel[(size_t)k * OUT + j];");
  emit_line(e, "    }");
  emit_line(e, "  }");
  emit_line(e, "}");
}

static void emit_dense_grad_input(Emitter *e, const Node *node) {
  char in[512], out[512];
  size_const(e->graph, node->id, in, sizeof in);
  size_const(e->graph, node->inputs[0], out, sizeof out);
  emit_kernel_open(e, node, (const char *const[]){"dy", "kernel", "dx"},
                   "dx[n][IN] = dy[n][OUT] . kernel[IN][OUT]^T");
  emit_line(e, "  enum { IN = %s, OUT = %s };", in, out);
  emit_line(e, "#pragma omp parallel for schedule(static)");
  emit_line(e, "  for (int i = 0; i < n; i++) {");
  emit_line(e, "    const real *restrict dyi = dy + (size_t)i * OUT;");
  emit_line(e, "    for (int k = 0; k < IN; k++) {");
  emit_line(e, "      const real *restrict wk = kernel + (size_t)k * OUT;");
  emit_line(e, "      real sum = 0;");
  emit_line(e, "#pragma omp simd reduction(+ : sum)");
  emit_line(e, "      for (int j = 0; j < OUT; j++) sum += dyi[j] * wk[j];");
  emit_line(e, "      dx[(size_t)i * IN + k] = sum;");
  emit_line(e, "    }");
  emit_line(e, "  }");
  emit_line(e, "}");
}

static void emit_dense_grad_kernel(Emitter *e, const Node *node) {
  char in[512], out[512];
  size_const(e->graph, node->inputs[0], in, sizeof in);
  size_const(e->graph, node->inputs[1], out, sizeof out);
  emit_kernel_open(e, node, (const char *const[]){"x", "dy", "dkernel"},
                   "dkernel[IN][OUT] = x[n][IN]^T . dy[n][OUT]");
  emit_line(e, "  enum { IN = %s, OUT = %s };", in, out);
  emit_line(e, "#pragma omp parallel for schedule(static)");
  emit_line(e, "  for (int k = 0; k < IN; k++) {");
  emit_line(e, "    real *restrict dwk = dkernel + (size_t)k * OUT;");
  emit_line(e, "    for (int j = 0; j < OUT; j++) dwk[j] = 0;");
  emit_line(e, "    for (int i = 0; i < n; i++) {");
  emit_line(e, "      const real xik = x[(size_t)i * IN + k];");
  emit_line(e, "      const real *restrict dyi = dy + (size_t)i * OUT;");
  emit_line(e, "      for (int j = 0; j < OUT; j++) dwk[j] += xik * dyi[j];");
  emit_line(e, "    }");
  emit_line(e, "  }");
  emit_line(e, "}");
}

// dbias[j] = the sum over the batch of dy[i][j], for j < `columns` (a constant's
// name): threads take blocks of 64 columns, each column summed in batch order.
// A kernel gradient that writes its bias gradient runs the same loop for the
// batches it does not pack (emit_gemm.c).
void emit_column_sums(Emitter *e, const char *dy, const char *dbias, const char *columns) {
  emit_line(e, "  // Threads take blocks of columns; each column is summed in batch order.");
  emit_line(e, "#pragma omp parallel for schedule(static) if ((size_t)n * %s >= 65536)", columns);
  emit_line(e, "  for (int j0 = 0; j0 < %s; j0 += 64) {", columns);
  emit_line(e, "    const int j1 = j0 + 64 < %s ? j0 + 64 : %s;", columns, columns);
  emit_line(e, "    for (int j = j0; j < j1; j++) %s[j] = 0;", dbias);
  emit_line(e, "    for (int i = 0; i < n; i++)");
  emit_line(e, "      for (int j = j0; j < j1; j++) %s[j] += %s[(size_t)i * %s + j];", dbias, dy, columns);
  emit_line(e, "  }");
}

static void emit_bias_grad(Emitter *e, const Node *node) {
  char out[512];
  size_const(e->graph, node->id, out, sizeof out);
  emit_kernel_open(e, node, (const char *const[]){"dy", "dbias"}, "dbias[OUT] = sum over the batch of dy[n][OUT]");
  emit_line(e, "  enum { OUT = %s };", out);
  emit_column_sums(e, "dy", "dbias", "OUT");
  emit_line(e, "}");
}

// kl_sparsity: each unit's mean over the batch, clamped into (1e-7, 1 - 1e-7),
// against the target rate rho.
static void emit_kl_sparsity(Emitter *e, const Node *node) {
  char units[512];
  size_const(e->graph, node->inputs[0], units, sizeof units);
  emit_kernel_open(e, node, (const char *const[]){"h", "out"},
                   "out = sum over units j of KL(rho || mean over the batch of h[n][j])");
  emit_line(e, "  enum { UNITS = %s };", units);
  emit_line(e, "  const double rho = %.17g;", node->attr[0]);
  emit_line(e, "  double kl = 0;");
  emit_line(e, "  for (int j = 0; j < UNITS; j++) {");
  emit_line(e, "    double mean = 0;");
  emit_line(e, "    for (int i = 0; i < n; i++) mean += h[(size_t)i * UNITS + j];");
  emit_line(e, "    mean = fmin(fmax(mean / n, 1e-7), 1 - 1e-7);");
  emit_line(e, "    kl += rho * log(rho / mean) + (1 - rho) * log((1 - rho) / (1 - mean));");
  emit_line(e, "  }");
  emit_line(e, "  out[0] = (real)kl;");
  emit_line(e, "}");
}

// d/dh[n][j] = g * (-rho / mean_j + (1 - rho) / (1 - mean_j)) / n, zero where the mean was clamped.
static void emit_kl_sparsity_grad(Emitter *e, const Node *node) {
  char units[512];
  size_const(e->graph, node->id, units, sizeof units);
  emit_kernel_open(e, node, (const char *const[]){"h", "g", "dh"},
                   "dh[n][j] = g * ((1 - rho) / (1 - mean_j) - rho / mean_j) / n");
  emit_line(e, "  enum { UNITS = %s };", units);
  emit_line(e, "  const double rho = %.17g;", node->attr[0]);
  emit_line(e, "  for (int j = 0; j < UNITS; j++) {");
  emit_line(e, "    double mean = 0;");
  emit_line(e, "    for (int i = 0; i < n; i++) mean += h[(size_t)i * UNITS + j];");
  emit_line(e, "    mean /= n;");
  emit_line(e, "    const real d = mean <= 1e-7 || mean >= 1 - 1e-7 ? 0");
  emit_line(e, "                 : (real)(g[0] * ((1 - rho) / (1 - mean) - rho / mean) / n);");
  emit_line(e, "    for (int i = 0; i < n; i++) dh[(size_t)i * UNITS + j] = d;");
  emit_line(e, "  }");
  emit_line(e, "}");
}

// ------------------------------------------------ vector-Jacobian rules
static int add1(Graph *g, OpKind op, int a, Loc loc) { return graph_add(g, op, (int[]){a}, 1, loc); }
static int add2(Graph *g, OpKind op, int a, int b, Loc loc) { return graph_add(g, op, (int[]){a, b}, 2, loc); }
static int add3(Graph *g, OpKind op, int a, int b, int c, Loc loc) {
  return graph_add(g, op, (int[]){a, b, c}, 3, loc);
}

// A gradient computed at the output's shape, reduced to an input that was
// broadcast (a scalar operand of a tensor op).
static int reduce_to(Graph *g, int grad, int input, Loc loc) {
  if (grad < 0) return grad;
  if (shape_is_scalar(g->nodes[input].shape) && !shape_is_scalar(g->nodes[grad].shape))
    return add1(g, OP_SUM, grad, loc);
  return grad;
}

static void vjp_dense(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  int x = node->inputs[0], w = node->inputs[1];
  if (needs[0]) out[0] = add2(g, OP_DENSE_GRAD_INPUT, grad, w, node->loc);
  if (needs[1]) out[1] = add2(g, OP_DENSE_GRAD_KERNEL, x, grad, node->loc);
  if (needs[2]) out[2] = add1(g, OP_BIAS_GRAD, grad, node->loc);
}

// Activations whose derivative is a function of their output y.
static void vjp_from_output(Graph *g, const Node *node, int grad, OpKind grad_op, int *out) {
  out[0] = graph_add_attr(g, grad_op, (int[]){node->id, grad}, 2, node->attr, node->loc);  // keeps a slope
}

static void vjp_relu(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  vjp_from_output(g, node, grad, OP_RELU_GRAD, out);
}
static void vjp_sigmoid(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  vjp_from_output(g, node, grad, OP_SIGMOID_GRAD, out);
}
static void vjp_tanh(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  vjp_from_output(g, node, grad, OP_TANH_GRAD, out);
}
static void vjp_leaky_relu(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  vjp_from_output(g, node, grad, OP_LEAKY_RELU_GRAD, out);  // keeps the slope
}
static void vjp_softplus(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = add2(g, OP_SOFTPLUS_GRAD, node->inputs[0], grad, node->loc);
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

static void vjp_sum(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = add2(g, OP_SUM_GRAD, grad, node->inputs[0], node->loc);
}
static void vjp_mean(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = add2(g, OP_MEAN_GRAD, grad, node->inputs[0], node->loc);
}
static void vjp_l1(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = add2(g, OP_L1_GRAD, node->inputs[0], grad, node->loc);
}
static void vjp_sum_squares(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = add2(g, OP_SUM_SQUARES_GRAD, node->inputs[0], grad, node->loc);
}

// Losses of (prediction, target): each has a gradient op for the prediction
// and one for the target (used when the target depends on trained weights).
static void vjp_loss(Graph *g, const Node *node, int grad, const bool *needs, int *out, OpKind pred_op,
                     OpKind target_op) {
  int p = node->inputs[0], t = node->inputs[1];
  if (needs[0]) out[0] = add3(g, pred_op, p, t, grad, node->loc);
  if (needs[1]) {
    int target_grad = target_op == OP_MSE_GRAD ? add1(g, OP_NEG, add3(g, OP_MSE_GRAD, p, t, grad, node->loc), node->loc)
                                               : add3(g, target_op, p, t, grad, node->loc);
    out[1] = reduce_to(g, target_grad, t, node->loc);
  }
}
static void vjp_mse(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  vjp_loss(g, node, grad, needs, out, OP_MSE_GRAD, OP_MSE_GRAD);
}
static void vjp_bce(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  vjp_loss(g, node, grad, needs, out, OP_BCE_GRAD, OP_BCE_GRAD_TARGET);
}
static void vjp_bce_logits(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  vjp_loss(g, node, grad, needs, out, OP_BCE_LOGITS_GRAD, OP_BCE_LOGITS_GRAD_TARGET);
}

// Corruption. Gaussian noise adds to its input, so the gradient passes
// through; masks recompute the forward node's draws (rng_node) and let the
// gradient through where the input was kept.
static void vjp_gaussian_noise(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)g, (void)node, (void)needs;
  out[0] = grad;
}
static void vjp_with_mask(Graph *g, const Node *node, int grad, OpKind grad_op, int *out) {
  int id = graph_add_attr(g, grad_op, (int[]){grad}, 1, node->attr, node->loc);
  if (id >= 0) g->nodes[id].rng_node = node->id;  // the same draws as the forward node
  out[0] = id;
}
static void vjp_masking_noise(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  vjp_with_mask(g, node, grad, OP_MASKING_NOISE_GRAD, out);
}
static void vjp_salt_pepper(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  vjp_with_mask(g, node, grad, OP_SALT_PEPPER_GRAD, out);
}
// Dropout is linear in its input: the gradient goes through the same mask and scale.
static void vjp_dropout(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  vjp_with_mask(g, node, grad, OP_DROPOUT_GRAD, out);
}
static void vjp_clip(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = graph_add_attr(g, OP_CLIP_GRAD, (int[]){node->inputs[0], grad}, 2, node->attr, node->loc);
}
static void vjp_kl_sparsity(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = graph_add_attr(g, OP_KL_SPARSITY_GRAD, (int[]){node->inputs[0], grad}, 2, node->attr, node->loc);
}

// ------------------------------------------------------------------ FLOPs
static double flops_dense(const Graph *g, const Node *node) {
  Shape w = g->nodes[node->inputs[1]].shape;
  return 2.0 * w.dims[0] * w.dims[1] + w.dims[1];
}
// dense_grad_input(dy[N], kernel[K, N]) and dense_grad_kernel(x[K], dy[N]):
// 2 K N per sample either way.
static double flops_dense_grad(const Graph *g, const Node *node) {
  Shape a = g->nodes[node->inputs[0]].shape, b = g->nodes[node->inputs[1]].shape;
  return node->op == OP_DENSE_GRAD_INPUT ? 2.0 * (double)shape_size(b)
                                         : 2.0 * (double)shape_size(a) * (double)shape_size(b);
}
static double flops_elements(const Graph *g, const Node *node) {
  (void)g;
  return (double)shape_size(node->shape);
}
static double flops_input_elements(const Graph *g, const Node *node) {
  return 2.0 * (double)shape_size(g->nodes[node->inputs[0]].shape);
}

// ------------------------------------------------------------------ table
#define ELEMENTWISE(expression) .kernel = KERNEL_ELEMENTWISE, .expr = expression, .flops = flops_elements, .pure = true
#define REDUCE(expression, by) \
  .kernel = KERNEL_REDUCE, .expr = expression, .divisor = by, .flops = flops_input_elements, .pure = true
#define LOG_SPLIT_REDUCE(rest_expression, factor, by) \
  REDUCE(rest_expression " + log(" factor ")", by), .rest = rest_expression, .log_factor = factor

static const OpInfo op_table[OP_COUNT] = {
    [OP_INPUT] = {.name = "input", .kernel = KERNEL_NONE},
    [OP_PARAM] = {.name = "param", .kernel = KERNEL_NONE},
    [OP_CONSTANT] = {.name = "constant", .kernel = KERNEL_NONE, .shape = shape_scalar, .pure = true},

    [OP_DENSE] = {.name = "dense", .n_inputs = 3, .kernel = KERNEL_CUSTOM, .shape = shape_dense, .emit = emit_dense,
                  .vjp = vjp_dense, .flops = flops_dense, .pure = true},
    [OP_DENSE_GRAD_INPUT] = {.name = "dense_grad_input", .n_inputs = 2, .kernel = KERNEL_CUSTOM,
                             .shape = shape_dense_grad_input, .emit = emit_dense_grad_input,
                             .flops = flops_dense_grad, .pure = true},
    [OP_DENSE_GRAD_KERNEL] = {.name = "dense_grad_kernel", .n_inputs = 2, .kernel = KERNEL_CUSTOM,
                              .shape = shape_dense_grad_kernel, .emit = emit_dense_grad_kernel,
                              .flops = flops_dense_grad, .pure = true},
    [OP_BIAS_GRAD] = {.name = "bias_grad", .n_inputs = 1, .kernel = KERNEL_CUSTOM, .shape = shape_bias_grad,
                      .emit = emit_bias_grad, .flops = flops_elements, .pure = true},

    [OP_RELU] = {.name = "relu", .n_inputs = 1, ELEMENTWISE("$0 > 0 ? $0 : 0"), .shape = shape_same, .vjp = vjp_relu},
    [OP_RELU_GRAD] = {.name = "relu_grad", .n_inputs = 2, ELEMENTWISE("$0 > 0 ? $1 : 0"), .shape = shape_same,
                      .zero_where_gradient_is = true},
    [OP_LEAKY_RELU] = {.name = "leaky_relu", .n_inputs = 1, ELEMENTWISE("$0 > 0 ? $0 : $attr0 * $0"),
                       .shape = shape_same, .vjp = vjp_leaky_relu},
    [OP_LEAKY_RELU_GRAD] = {.name = "leaky_relu_grad", .n_inputs = 2, ELEMENTWISE("$0 > 0 ? $1 : $attr0 * $1"),
                            .shape = shape_same, .zero_where_gradient_is = true},
    [OP_SIGMOID] = {.name = "sigmoid", .n_inputs = 1, ELEMENTWISE("1 / (1 + exp(-$0))"), .shape = shape_same,
                    .vjp = vjp_sigmoid},
    [OP_SIGMOID_GRAD] = {.name = "sigmoid_grad", .n_inputs = 2, ELEMENTWISE("$1 * $0 * (1 - $0)"),
                         .shape = shape_same, .zero_where_gradient_is = true},
    [OP_TANH] = {.name = "tanh", .n_inputs = 1, ELEMENTWISE("tanh($0)"), .shape = shape_same, .vjp = vjp_tanh},
    [OP_TANH_GRAD] = {.name = "tanh_grad", .n_inputs = 2, ELEMENTWISE("$1 * (1 - $0 * $0)"), .shape = shape_same,
                      .zero_where_gradient_is = true},
    [OP_SOFTPLUS] = {.name = "softplus", .n_inputs = 1,
                     ELEMENTWISE("($0 > 0 ? $0 : 0) + log1p(exp_nonpositive(-fabs($0)))"), .shape = shape_same,
                     .vjp = vjp_softplus},
    [OP_SOFTPLUS_GRAD] = {.name = "softplus_grad", .n_inputs = 2, ELEMENTWISE("$1 / (1 + exp(-$0))"),
                          .shape = shape_same},

    [OP_ADD] = {.name = "add", .n_inputs = 2, ELEMENTWISE("$0 + $1"), .shape = shape_broadcast, .vjp = vjp_add},
    [OP_SUB] = {.name = "sub", .n_inputs = 2, ELEMENTWISE("$0 - $1"), .shape = shape_broadcast, .vjp = vjp_sub},
    [OP_MUL] = {.name = "mul", .n_inputs = 2, ELEMENTWISE("$0 * $1"), .shape = shape_broadcast, .vjp = vjp_mul},
    [OP_DIV] = {.name = "div", .n_inputs = 2, ELEMENTWISE("$0 / $1"), .shape = shape_broadcast, .vjp = vjp_div},
    [OP_NEG] = {.name = "neg", .n_inputs = 1, ELEMENTWISE("-$0"), .shape = shape_same, .vjp = vjp_neg},

    [OP_SUM] = {.name = "sum", .n_inputs = 1, REDUCE("$0", DIVIDE_BY_ONE), .shape = shape_scalar, .vjp = vjp_sum},
    [OP_MEAN] = {.name = "mean", .n_inputs = 1, REDUCE("$0", DIVIDE_BY_COUNT), .shape = shape_scalar, .vjp = vjp_mean},
    [OP_SUM_GRAD] = {.name = "sum_grad", .n_inputs = 2, ELEMENTWISE("$0"), .shape = shape_like_second},
    [OP_MEAN_GRAD] = {.name = "mean_grad", .n_inputs = 2, ELEMENTWISE("$0 * $per_count"), .divisor = DIVIDE_BY_COUNT,
                      .shape = shape_like_second},
    [OP_L1] = {.name = "l1", .n_inputs = 1, REDUCE("fabs($0)", DIVIDE_BY_ROWS), .shape = shape_scalar, .vjp = vjp_l1},
    [OP_L1_GRAD] = {.name = "l1_grad", .n_inputs = 2, ELEMENTWISE("(($0 > 0) - ($0 < 0)) * $1 * $per_row"),
                    .divisor = DIVIDE_BY_ROWS, .shape = shape_same},
    [OP_SUM_SQUARES] = {.name = "sum_squares", .n_inputs = 1, REDUCE("$0 * $0", DIVIDE_BY_ROWS),
                        .shape = shape_scalar, .vjp = vjp_sum_squares},
    [OP_SUM_SQUARES_GRAD] = {.name = "sum_squares_grad", .n_inputs = 2, ELEMENTWISE("2 * $0 * $1 * $per_row"),
                             .divisor = DIVIDE_BY_ROWS, .shape = shape_same},

    [OP_MSE] = {.name = "mse", .n_inputs = 2, REDUCE("($0 - $1) * ($0 - $1)", DIVIDE_BY_COUNT), .shape = shape_loss,
                .vjp = vjp_mse, .gradient_op = OP_MSE_GRAD},
    [OP_MSE_GRAD] = {.name = "mse_grad", .n_inputs = 3, ELEMENTWISE("2 * ($0 - $1) * $2 * $per_count"),
                     .divisor = DIVIDE_BY_COUNT, .shape = shape_loss_grad},
    // As PyTorch's BCELoss: each log clamped at -100, so p = 0 or 1 is finite.
    [OP_BCE] = {.name = "bce", .n_inputs = 2,
                REDUCE("-($1 * fmax(log($0), (real)-100) + (1 - $1) * fmax(log(1 - $0), (real)-100))", DIVIDE_BY_COUNT),
                .shape = shape_loss, .vjp = vjp_bce, .gradient_op = OP_BCE_GRAD},
    [OP_BCE_GRAD] = {.name = "bce_grad", .n_inputs = 3,
                     ELEMENTWISE("$2 * ($0 - $1) / (fmax($0 * (1 - $0), (real)1e-12) * $count)"),
                     .divisor = DIVIDE_BY_COUNT, .shape = shape_loss_grad},
    [OP_BCE_GRAD_TARGET] = {.name = "bce_grad_target", .n_inputs = 3,
                            ELEMENTWISE("$2 * (fmax(log(1 - $0), (real)-100) - fmax(log($0), (real)-100))"
                                        " * $per_count"),
                            .divisor = DIVIDE_BY_COUNT, .shape = shape_loss_grad},
    // bce(sigmoid(z), t) computed from the logits z: never takes log(0). Its
    // gradient writes sigmoid(z) with the same exp(-|z|) as the loss, so the
    // fused loss-and-gradient loop computes one exponential per element.
    // log(1 + e) rather than log1p(e): with e = exp(-|z|) in (0, 1] the sum
    // 1 + e loses at most 6e-8 absolutely, and the vector logf is twice as
    // fast as log1pf (0.26 against 0.47 ns an element here); 1 + e in (1, 2]
    // also lets the fused kernel take one logarithm of a product of factors.
    // The gradient (sigmoid(z) - t) / count is written over one denominator,
    // (s - t (1 + e)) / ((1 + e) count), one division an element where there
    // were two; multiplying by 1/count instead made -O2 and -O0 round apart
    // (adversarial.ae's losses 1e-4 apart by batch 4, 7e-3 by batch 9).
    [OP_BCE_LOGITS] = {.name = "bce_logits", .n_inputs = 2,
                       LOG_SPLIT_REDUCE("($0 > 0 ? $0 : 0) - $0 * $1", "1 + exp_nonpositive(-fabs($0))",
                                        DIVIDE_BY_COUNT),
                       .shape = shape_loss, .vjp = vjp_bce_logits, .gradient_op = OP_BCE_LOGITS_GRAD},
    [OP_BCE_LOGITS_GRAD] = {.name = "bce_logits_grad", .n_inputs = 3,
                            ELEMENTWISE("$2 * (($0 >= 0 ? 1 : exp_nonpositive(-fabs($0)))"
                                        " - $1 * (1 + exp_nonpositive(-fabs($0))))"
                                        " / ((1 + exp_nonpositive(-fabs($0))) * $count)"),
                            .divisor = DIVIDE_BY_COUNT, .shape = shape_loss_grad},
    [OP_BCE_LOGITS_GRAD_TARGET] = {.name = "bce_logits_grad_target", .n_inputs = 3,
                                   ELEMENTWISE("-$2 * $0 * $per_count"), .divisor = DIVIDE_BY_COUNT,
                                   .shape = shape_loss_grad},

    // Corruption: not pure (two calls draw differently), random (the kernel
    // takes a key), skipped at inference. Their mask gradients are random too,
    // keyed by the forward node (rng_node), so they see the same draws.
    [OP_GAUSSIAN_NOISE] = {.name = "gaussian_noise", .n_inputs = 1, .kernel = KERNEL_ELEMENTWISE,
                           .expr = "$0 + $attr0 * $normal", .flops = flops_elements, .shape = shape_same,
                           .vjp = vjp_gaussian_noise, .random = true, .identity_at_inference = true},
    [OP_MASKING_NOISE] = {.name = "masking_noise", .n_inputs = 1, .kernel = KERNEL_ELEMENTWISE,
                          .expr = "$uniform0 < $attr0 ? 0 : $0", .flops = flops_elements, .shape = shape_same,
                          .vjp = vjp_masking_noise, .random = true, .identity_at_inference = true},
    [OP_MASKING_NOISE_GRAD] = {.name = "masking_noise_grad", .n_inputs = 1, .kernel = KERNEL_ELEMENTWISE,
                               .expr = "$uniform0 < $attr0 ? 0 : $0", .flops = flops_elements, .shape = shape_same,
                               .random = true},
    [OP_SALT_PEPPER] = {.name = "salt_pepper", .n_inputs = 1, .kernel = KERNEL_ELEMENTWISE,
                        .expr = "$uniform0 < $attr0 ? ($uniform1 < (real)0.5 ? 0 : 1) : $0", .flops = flops_elements,
                        .shape = shape_same, .vjp = vjp_salt_pepper, .random = true, .identity_at_inference = true},
    [OP_SALT_PEPPER_GRAD] = {.name = "salt_pepper_grad", .n_inputs = 1, .kernel = KERNEL_ELEMENTWISE,
                             .expr = "$uniform0 < $attr0 ? 0 : $0", .flops = flops_elements, .shape = shape_same,
                             .random = true},
    [OP_CLIP] = {.name = "clip", .n_inputs = 1, ELEMENTWISE("fmin(fmax($0, $attr0), $attr1)"), .shape = shape_same,
                 .vjp = vjp_clip},
    [OP_CLIP_GRAD] = {.name = "clip_grad", .n_inputs = 2, ELEMENTWISE("$0 > $attr0 && $0 < $attr1 ? $1 : 0"),
                      .shape = shape_like_second},

    // Inverted dropout, as PyTorch's and Keras's: attr {p, 1 / (1 - p)} (the
    // scale computed in double when lowering). In training each element is
    // zeroed with probability p and the others are scaled by 1 / (1 - p), so the
    // expected value is unchanged; at inference it passes its input through.
    // Random like the corruption ops: the gradient reuses the forward draws.
    [OP_DROPOUT] = {.name = "dropout", .n_inputs = 1, .kernel = KERNEL_ELEMENTWISE,
                    .expr = "$uniform0 < $attr0 ? 0 : $0 * $attr1", .flops = flops_elements, .shape = shape_same,
                    .vjp = vjp_dropout, .random = true, .identity_at_inference = true},
    [OP_DROPOUT_GRAD] = {.name = "dropout_grad", .n_inputs = 1, .kernel = KERNEL_ELEMENTWISE,
                         .expr = "$uniform0 < $attr0 ? 0 : $0 * $attr1", .flops = flops_elements,
                         .shape = shape_same, .random = true},

    [OP_KL_SPARSITY] = {.name = "kl_sparsity", .n_inputs = 1, .kernel = KERNEL_CUSTOM, .emit = emit_kl_sparsity,
                        .shape = shape_batched_to_scalar, .vjp = vjp_kl_sparsity, .flops = flops_input_elements,
                        .pure = true},
    [OP_KL_SPARSITY_GRAD] = {.name = "kl_sparsity_grad", .n_inputs = 2, .kernel = KERNEL_CUSTOM,
                             .emit = emit_kl_sparsity_grad, .shape = shape_same, .flops = flops_elements,
                             .pure = true},

    // Priors (ops_prior.c): no input; the batched shape is set when the node
    // is made; random (the same draws in every step of a batch), not pure
    // (two calls draw differently), and still drawn at inference.
    [OP_PRIOR_GAUSSIAN] = {.name = "gaussian", .kernel = KERNEL_ELEMENTWISE, .expr = "$attr0 * $normal",
                           .flops = flops_elements, .random = true},
    [OP_PRIOR_UNIFORM] = {.name = "uniform", .kernel = KERNEL_ELEMENTWISE,
                          .expr = "$attr0 + ($attr1 - $attr0) * $uniform0", .flops = flops_elements, .random = true},
    [OP_PRIOR_MIXTURE] = {.name = "mixture", .kernel = KERNEL_CUSTOM, .emit = emit_prior_mixture,
                          .flops = flops_elements, .random = true},

    // Convolutional layers (ops_conv.c). attr: conv/deconv and their
    // gradients {stride, pad (0 same, 1 valid), k}; maxpool/unpool {k, pad};
    // upsample {k}; reshape the new dims (0 ends them).
#define CONV_OP(n, arity, shape_fn, emit_fn) \
  .name = n, .n_inputs = arity, .kernel = KERNEL_CUSTOM, .shape = shape_fn, .emit = emit_fn, .pure = true
    [OP_CONV] = {CONV_OP("conv", 3, shape_conv, emit_conv), .vjp = vjp_conv, .flops = flops_conv_family},
    [OP_CONV_GRAD_INPUT] = {CONV_OP("conv_grad_input", 3, shape_like_third, emit_conv_grad_input),
                            .flops = flops_conv_family},
    [OP_CONV_GRAD_KERNEL] = {CONV_OP("conv_grad_kernel", 2, shape_conv_grad_kernel, emit_conv_grad_kernel),
                             .flops = flops_conv_family},
    [OP_CONV_GRAD_BIAS] = {CONV_OP("conv_grad_bias", 1, shape_conv_grad_bias, emit_conv_grad_bias),
                           .flops = flops_input_elements},
    [OP_DECONV] = {CONV_OP("deconv", 3, shape_deconv, emit_deconv), .vjp = vjp_deconv, .flops = flops_conv_family},
    [OP_DECONV_GRAD_INPUT] = {CONV_OP("deconv_grad_input", 3, shape_like_third, emit_deconv_grad_input),
                              .flops = flops_conv_family},
    [OP_MAXPOOL] = {CONV_OP("maxpool", 1, shape_maxpool, emit_maxpool), .vjp = vjp_maxpool, .flops = flops_pool},
    [OP_UNPOOL] = {CONV_OP("unpool", 2, shape_unpool, emit_unpool), .vjp = vjp_unpool, .flops = flops_pool},
    [OP_UNPOOL_GRAD] = {CONV_OP("unpool_grad", 2, shape_unpool_grad, emit_unpool_grad), .flops = flops_pool},
    [OP_UPSAMPLE] = {CONV_OP("upsample", 1, shape_upsample, emit_upsample), .vjp = vjp_upsample,
                     .flops = flops_pool},
    [OP_UPSAMPLE_GRAD] = {CONV_OP("upsample_grad", 1, shape_upsample_grad, emit_upsample_grad), .flops = flops_pool},
#undef CONV_OP
    // A reshape is a copy: the memory layout of a sample does not change.
    [OP_RESHAPE] = {.name = "reshape", .n_inputs = 1, ELEMENTWISE("$0"), .shape = shape_reshape,
                    .vjp = vjp_reshape},
};

const OpInfo *op_info(OpKind op) { return &op_table[op]; }

void expand_member(Emitter *e, const Group *group, int m, const int *inputs, int n_inputs) {
  expand_member_text(e, group, m, inputs, n_inputs, op_info(e->graph->nodes[group->members[m]].op)->expr);
}

void expand_op_with(Emitter *e, const Node *node, const char *const *operands, int n_operands) {
  char copies[MAX_INPUTS][64];
  for (int i = 0; i < MAX_INPUTS; i++) snprintf(copies[i], sizeof copies[i], "%s", i < n_operands ? operands[i] : "?");
  expand_with(e, node, op_info(node->op)->expr, copies, "at", "(real)count", node->shape.batched ? "(real)n" : "1");
}
