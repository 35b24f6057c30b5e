// losses.c — losses, penalties and reductions, with their gradients: sum
// and mean of one sample ([1] per sample), sum_all and batch_mean (to a
// scalar), l1 and sum_squares (l2's terms), mse, bce and
// bce_logits (bce of a sigmoid, from its logits), and kl_sparsity. Each
// loss of (prediction, target) has a gradient op for the prediction, which
// the fusion pass computes in one pass with the loss (OpInfo.gradient_op),
// and one for the target.
#include "ops.h"

// ------------------------------------------------------------- shape rules
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

// Whether input 0 has a batch, else a report of what the op needs it for.
static bool batched_input(Graph *graph, const Node *node, const char *needs) {
  Shape v = input_shape(graph, node, 0);
  if (v.batched) return true;
  char sv[64];
  shape_format(v, sv, sizeof sv);
  diag_error(node->loc, "%s %s, but got %s", user_name(node->op), needs, sv);
  return false;
}

// kl_sparsity(h) -> a scalar: h needs a batch to average over
static bool shape_batched_to_scalar(Graph *graph, Node *node, Shape *out) {
  if (!batched_input(graph, node, "needs an activation per sample (a value with a batch)")) return false;
  *out = (Shape){0};
  return true;
}

// sum(v), mean(v): a batched value -> [1] per sample
static bool shape_per_sample(Graph *graph, Node *node, Shape *out) {
  if (!batched_input(graph, node, "reduces one sample's elements and needs a value with a batch")) return false;
  *out = (Shape){.batched = true, .rank = 1, .dims = {1}};
  return true;
}

// ---------------------------------------------------------------- kernels
// sum(v) and mean(v): each sample's elements added in double, in order, by
// one thread (so the result does not depend on the number of threads).
static void emit_per_sample_reduce(Emitter *e, const Node *node) {
  char size[512];
  size_const(e->graph, node->inputs[0], size, sizeof size);
  bool mean = node->op == OP_MEAN;
  emit_kernel_open(e, node, (const char *const[]){"a", "out"},
                   mean ? "out[r] = the mean of sample r's elements" : "out[r] = the sum of sample r's elements");
  emit_line(e, "  enum { SIZE = %s };", size);
  emit_line(e, "#pragma omp parallel for schedule(static) if ((size_t)n * SIZE >= 65536)");
  emit_line(e, "  for (int r = 0; r < n; r++) {");
  emit_line(e, "    double sum = 0;");
  emit_line(e, "#pragma omp simd reduction(+ : sum)");
  emit_line(e, "    for (int j = 0; j < SIZE; j++) sum += a[(size_t)r * SIZE + j];");
  emit_line(e, mean ? "    out[r] = (real)(sum / SIZE);" : "    out[r] = (real)sum;");
  emit_line(e, "  }");
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
// sum, sum_all: the gradient broadcast back to the input's shape; mean: and
// divided by the sample's size; batch_mean: divided by the batch size.
static void vjp_sum(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = add2(g, OP_SUM_GRAD, grad, node->inputs[0], node->loc);
}
static void vjp_mean(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  double size = (double)shape_size(g->nodes[node->inputs[0]].shape);
  int scaled = add2(g, OP_MUL, grad, graph_add_constant(g, 1 / size, node->loc), node->loc);
  out[0] = add2(g, OP_SUM_GRAD, scaled, node->inputs[0], node->loc);
}
// sum_grad(g, like) broadcasts g, so its gradient in g sums the incoming
// gradient back (a second derivative); like gives only the shape.
static void vjp_sum_grad(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  if (needs[0]) out[0] = reduce_to(g, grad, node->inputs[0], node->loc);
  if (needs[1]) out[1] = VJP_ZERO;
}
static void vjp_batch_mean(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = add2(g, OP_BATCH_MEAN_GRAD, grad, node->inputs[0], node->loc);
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

static void vjp_kl_sparsity(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = graph_add_attr(g, OP_KL_SPARSITY_GRAD, (int[]){node->inputs[0], grad}, 2, node->attr, node->loc);
}

// ------------------------------------------------------------------- rows
const OpInfo OP_SUM_row = {.n_inputs = 1, .kernel = KERNEL_CUSTOM, .emit = emit_per_sample_reduce,
                           .shape = shape_per_sample, .vjp = vjp_sum, .flops = flops_input_elements, .pure = true};
const OpInfo OP_MEAN_row = {.n_inputs = 1, .kernel = KERNEL_CUSTOM, .emit = emit_per_sample_reduce,
                            .shape = shape_per_sample, .vjp = vjp_mean, .flops = flops_input_elements, .pure = true};
// sum_grad(g, like): g broadcast to like's shape (g a scalar or [1] per sample)
const OpInfo OP_SUM_GRAD_row = {.n_inputs = 2, ELEMENTWISE("$0"), .shape = shape_like_second, .vjp = vjp_sum_grad};
// Every element, batch included, to a scalar: a broadcast scalar's gradient (reduce_to).
const OpInfo OP_SUM_ALL_row = {.n_inputs = 1, REDUCE("$0", DIVIDE_BY_ONE), .shape = shape_scalar, .vjp = vjp_sum};
// A loss of per-sample values: their mean over the batch.
const OpInfo OP_BATCH_MEAN_row = {.n_inputs = 1, REDUCE("$0", DIVIDE_BY_ROWS), .shape = shape_scalar,
                                  .vjp = vjp_batch_mean};
const OpInfo OP_BATCH_MEAN_GRAD_row = {.n_inputs = 2, ELEMENTWISE("$0 * $per_row"), .divisor = DIVIDE_BY_ROWS,
                                       .shape = shape_like_second};
const OpInfo OP_L1_row = {.n_inputs = 1, REDUCE("fabs($0)", DIVIDE_BY_ROWS), .shape = shape_scalar, .vjp = vjp_l1};
const OpInfo OP_L1_GRAD_row = {.n_inputs = 2, ELEMENTWISE("(($0 > 0) - ($0 < 0)) * $1 * $per_row"),
                               .divisor = DIVIDE_BY_ROWS, .shape = shape_same};
const OpInfo OP_SUM_SQUARES_row = {.n_inputs = 1, REDUCE("$0 * $0", DIVIDE_BY_ROWS), .shape = shape_scalar,
                                   .vjp = vjp_sum_squares};
const OpInfo OP_SUM_SQUARES_GRAD_row = {.n_inputs = 2, ELEMENTWISE("2 * $0 * $1 * $per_row"),
                                        .divisor = DIVIDE_BY_ROWS, .shape = shape_same};

const OpInfo OP_MSE_row = {.n_inputs = 2, REDUCE("($0 - $1) * ($0 - $1)", DIVIDE_BY_COUNT), .shape = shape_loss,
                           .vjp = vjp_mse, .gradient_op = OP_MSE_GRAD};
const OpInfo OP_MSE_GRAD_row = {.n_inputs = 3, ELEMENTWISE("2 * ($0 - $1) * $2 * $per_count"),
                                .divisor = DIVIDE_BY_COUNT, .shape = shape_loss_grad};
// As PyTorch's BCELoss: each log clamped at -100, so p = 0 or 1 is finite.
const OpInfo OP_BCE_row = {
    .n_inputs = 2,
    REDUCE("-($1 * fmax(log($0), (real)-100) + (1 - $1) * fmax(log(1 - $0), (real)-100))", DIVIDE_BY_COUNT),
    .shape = shape_loss, .vjp = vjp_bce, .gradient_op = OP_BCE_GRAD};
const OpInfo OP_BCE_GRAD_row = {.n_inputs = 3,
                                ELEMENTWISE("$2 * ($0 - $1) / (fmax($0 * (1 - $0), (real)1e-12) * $count)"),
                                .divisor = DIVIDE_BY_COUNT, .shape = shape_loss_grad};
const OpInfo OP_BCE_GRAD_TARGET_row = {
    .n_inputs = 3,
    ELEMENTWISE("$2 * (fmax(log(1 - $0), (real)-100) - fmax(log($0), (real)-100))"
                " * $per_count"),
    .divisor = DIVIDE_BY_COUNT, .shape = shape_loss_grad};
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
const OpInfo OP_BCE_LOGITS_row = {
    .n_inputs = 2,
    LOG_SPLIT_REDUCE("($0 > 0 ? $0 : 0) - $0 * $1", "1 + exp_nonpositive(-fabs($0))", DIVIDE_BY_COUNT),
    .shape = shape_loss, .vjp = vjp_bce_logits, .gradient_op = OP_BCE_LOGITS_GRAD};
const OpInfo OP_BCE_LOGITS_GRAD_row = {.n_inputs = 3,
                                       ELEMENTWISE("$2 * (($0 >= 0 ? 1 : exp_nonpositive(-fabs($0)))"
                                                   " - $1 * (1 + exp_nonpositive(-fabs($0))))"
                                                   " / ((1 + exp_nonpositive(-fabs($0))) * $count)"),
                                       .divisor = DIVIDE_BY_COUNT, .shape = shape_loss_grad};
const OpInfo OP_BCE_LOGITS_GRAD_TARGET_row = {.n_inputs = 3, ELEMENTWISE("-$2 * $0 * $per_count"),
                                              .divisor = DIVIDE_BY_COUNT, .shape = shape_loss_grad};

const OpInfo OP_KL_SPARSITY_row = {.n_inputs = 1, .kernel = KERNEL_CUSTOM, .emit = emit_kl_sparsity,
                                   .shape = shape_batched_to_scalar, .vjp = vjp_kl_sparsity,
                                   .flops = flops_input_elements, .pure = true,
                                   .batch_statistics = "the mean activation"};
const OpInfo OP_KL_SPARSITY_GRAD_row = {.n_inputs = 2, .kernel = KERNEL_CUSTOM, .emit = emit_kl_sparsity_grad,
                                        .shape = shape_same, .flops = flops_elements, .pure = true};
