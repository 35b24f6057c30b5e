// dense.c — the fully connected layer: dense(x[K], kernel[K, N], bias[N]),
// its input and kernel gradients and its bias gradient; and the tied layer,
// dense_tied(x[K], kernel[N, K], bias[N]), which uses another dense layer's
// kernel transposed (its kernel gradient is dense_grad_kernel with the
// operands swapped). Their shape rules,
// vector-Jacobian rule, FLOPs and plain (-O0) kernels; at -O1 and up the
// products are written by gemm.c, with the elementwise ops after them fused in.
#include "ops.h"

// ------------------------------------------------------------- shape rules
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

// dense_tied(x[K], kernel[N, K], bias[N]) -> [N]: x . kernel^T + bias (the
// front end has checked the shapes against the layer it ties to).
static bool shape_dense_tied(Graph *graph, Node *node, Shape *out) {
  Shape x = input_shape(graph, node, 0), w = input_shape(graph, node, 1);
  if (!x.batched || x.rank != 1 || w.rank != 2 || w.dims[1] != x.dims[0]) {
    char sx[64], sw[64];
    shape_format(x, sx, sizeof sx);
    shape_format(w, sw, sizeof sw);
    diag_error(node->loc, "dense: a tied kernel %s, used transposed, needs inputs of shape [%d], but got %s", sw,
               w.rank == 2 ? w.dims[1] : 0, sx);
    return false;
  }
  *out = (Shape){.batched = true, .rank = 1, .dims = {w.dims[0]}};
  return true;
}

// dense_tied_grad_input(dy[N], kernel[N, K]) -> [K]
static bool shape_dense_tied_grad_input(Graph *graph, Node *node, Shape *out) {
  *out = (Shape){.batched = true, .rank = 1, .dims = {input_shape(graph, node, 1).dims[1]}};
  return true;
}

// column_squares(kernel[K, N]) -> [N], no batch
static bool shape_column_squares(Graph *graph, Node *node, Shape *out) {
  *out = (Shape){.rank = 1, .dims = {input_shape(graph, node, 0).dims[1]}};
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

// The tied layer: each output a dot product with one row of the kernel.
static void emit_dense_tied(Emitter *e, const Node *node) {
  char in[512], out[512];
  size_const(e->graph, node->inputs[0], in, sizeof in);
  size_const(e->graph, node->id, out, sizeof out);
  emit_kernel_open(e, node, (const char *const[]){"x", "kernel", "bias", "y"},
                   "y[n][OUT] = x[n][IN] . kernel[OUT][IN]^T + bias[OUT]");
  emit_line(e, "  enum { IN = %s, OUT = %s };", in, out);
  emit_line(e, "#pragma omp parallel for schedule(static)");
  emit_line(e, "  for (int i = 0; i < n; i++) {");
  emit_line(e, "    const real *restrict xi = x + (size_t)i * IN;");
  emit_line(e, "    for (int j = 0; j < OUT; j++) {");
  emit_line(e, "      const real *restrict wj = kernel + (size_t)j * IN;");
  emit_line(e, "      real sum = 0;");
  emit_line(e, "#pragma omp simd reduction(+ : sum)");
  emit_line(e, "      for (int k = 0; k < IN; k++) sum += xi[k] * wj[k];");
  emit_line(e, "      y[(size_t)i * OUT + j] = sum + bias[j];");
  emit_line(e, "    }");
  emit_line(e, "  }");
  emit_line(e, "}");
}

// Its input gradient: dx = dy . kernel, the kernel read row by row.
static void emit_dense_tied_grad_input(Emitter *e, const Node *node) {
  char in[512], out[512];
  size_const(e->graph, node->id, in, sizeof in);
  size_const(e->graph, node->inputs[0], out, sizeof out);
  emit_kernel_open(e, node, (const char *const[]){"dy", "kernel", "dx"}, "dx[n][IN] = dy[n][OUT] . kernel[OUT][IN]");
  emit_line(e, "  enum { IN = %s, OUT = %s };", in, out);
  emit_line(e, "#pragma omp parallel for schedule(static)");
  emit_line(e, "  for (int i = 0; i < n; i++) {");
  emit_line(e, "    const real *restrict dyi = dy + (size_t)i * OUT;");
  emit_line(e, "    real *restrict dxi = dx + (size_t)i * IN;");
  emit_line(e, "    for (int k = 0; k < IN; k++) dxi[k] = 0;");
  emit_line(e, "    for (int j = 0; j < OUT; j++) {");
  emit_line(e, "      const real dyij = dyi[j];");
  emit_line(e, "      for (int k = 0; k < IN; k++) dxi[k] += dyij * kernel[(size_t)j * IN + k];");
  emit_line(e, "    }");
  emit_line(e, "  }");
  emit_line(e, "}");
}

// dbias[j] = the sum over the batch of dy[i][j], for j < `columns` (a constant's
// name): threads take blocks of 64 columns, each column summed in batch order.
// A kernel gradient that writes its bias gradient runs the same loop for the
// batches it does not pack (gemm.c).
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

// The squared norm of the weights into each unit, and its gradient.
static void emit_column_squares(Emitter *e, const Node *node) {
  Shape w = e->graph->nodes[node->inputs[0]].shape;
  emit_kernel_open(e, node, (const char *const[]){"kernel", "c"}, "c[OUT] = sum over IN of kernel[IN][OUT]^2");
  emit_line(e, "  enum { IN = %d, OUT = %d };", w.dims[0], w.dims[1]);
  emit_line(e, "  for (int j = 0; j < OUT; j++) c[j] = 0;");
  emit_line(e, "  for (int k = 0; k < IN; k++)");
  emit_line(e, "    for (int j = 0; j < OUT; j++) c[j] += kernel[(size_t)k * OUT + j] * kernel[(size_t)k * OUT + j];");
  emit_line(e, "}");
}

static void emit_column_squares_grad(Emitter *e, const Node *node) {
  Shape w = node->shape;
  emit_kernel_open(e, node, (const char *const[]){"kernel", "g", "dkernel"}, "dkernel[IN][OUT] = 2 kernel[IN][OUT] g[OUT]");
  emit_line(e, "  enum { IN = %d, OUT = %d };", w.dims[0], w.dims[1]);
  emit_line(e, "  for (int k = 0; k < IN; k++)");
  emit_line(e, "    for (int j = 0; j < OUT; j++) dkernel[(size_t)k * OUT + j] = 2 * kernel[(size_t)k * OUT + j] * g[j];");
  emit_line(e, "}");
}

// ------------------------------------------------ vector-Jacobian rule
static void vjp_dense(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  int x = node->inputs[0], w = node->inputs[1];
  if (needs[0]) out[0] = add2(g, OP_DENSE_GRAD_INPUT, grad, w, node->loc);
  if (needs[1]) out[1] = add2(g, OP_DENSE_GRAD_KERNEL, x, grad, node->loc);
  if (needs[2]) out[2] = add1(g, OP_BIAS_GRAD, grad, node->loc);
}

// y = x . W^T + b: dx = dy . W, dW = dy^T . x (dense_grad_kernel with the
// operands swapped: [N, K], the kernel's own layout), db = the column sums.
static void vjp_dense_tied(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  int x = node->inputs[0], w = node->inputs[1];
  if (needs[0]) out[0] = add2(g, OP_DENSE_TIED_GRAD_INPUT, grad, w, node->loc);
  if (needs[1]) out[1] = add2(g, OP_DENSE_GRAD_KERNEL, grad, x, node->loc);
  if (needs[2]) out[2] = add1(g, OP_BIAS_GRAD, grad, node->loc);
}

// The input gradients are linear in both operands (second derivatives):
// dense_grad_input(dy, W) = dy . W^T, whose gradient in dy is g . W (the
// tied layer's input gradient) and in W is g^T . dy (dense_grad_kernel);
// dense_tied_grad_input(dy, W) = dy . W, whose gradients are g . W^T and dy^T . g.
static void vjp_dense_grad_input(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  int dy = node->inputs[0], w = node->inputs[1];
  if (needs[0]) out[0] = add2(g, OP_DENSE_TIED_GRAD_INPUT, grad, w, node->loc);
  if (needs[1]) out[1] = add2(g, OP_DENSE_GRAD_KERNEL, grad, dy, node->loc);
}
static void vjp_dense_tied_grad_input(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  int dy = node->inputs[0], w = node->inputs[1];
  if (needs[0]) out[0] = add2(g, OP_DENSE_GRAD_INPUT, grad, w, node->loc);
  if (needs[1]) out[1] = add2(g, OP_DENSE_GRAD_KERNEL, dy, grad, node->loc);
}

static void vjp_column_squares(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = add2(g, OP_COLUMN_SQUARES_GRAD, node->inputs[0], grad, node->loc);
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
// The tied products: 2 K N per sample, and N for the bias.
static double flops_dense_tied(const Graph *g, const Node *node) {
  Shape w = g->nodes[node->inputs[1]].shape;
  return 2.0 * w.dims[0] * w.dims[1] + (node->op == OP_DENSE_TIED ? w.dims[0] : 0);
}
// ------------------------------------------------------------------- rows
const OpInfo OP_DENSE_row = {.n_inputs = 3, .kernel = KERNEL_CUSTOM, .shape = shape_dense, .emit = emit_dense,
                             .vjp = vjp_dense, .flops = flops_dense, .pure = true,
                             .makes_weights = true};
const OpInfo OP_DENSE_GRAD_INPUT_row = {.n_inputs = 2, .kernel = KERNEL_CUSTOM, .shape = shape_dense_grad_input,
                                        .emit = emit_dense_grad_input, .vjp = vjp_dense_grad_input,
                                        .flops = flops_dense_grad, .pure = true};
const OpInfo OP_DENSE_GRAD_KERNEL_row = {.n_inputs = 2, .kernel = KERNEL_CUSTOM, .shape = shape_dense_grad_kernel,
                                         .emit = emit_dense_grad_kernel, .flops = flops_dense_grad, .pure = true};
const OpInfo OP_BIAS_GRAD_row = {.n_inputs = 1, .kernel = KERNEL_CUSTOM, .shape = shape_bias_grad,
                                 .emit = emit_bias_grad, .flops = flops_elements, .pure = true};
const OpInfo OP_DENSE_TIED_row = {.n_inputs = 3, .kernel = KERNEL_CUSTOM, .shape = shape_dense_tied,
                                  .emit = emit_dense_tied, .vjp = vjp_dense_tied, .flops = flops_dense_tied,
                                  .pure = true, .transposed_kernel = true};
const OpInfo OP_DENSE_TIED_GRAD_INPUT_row = {.n_inputs = 2, .kernel = KERNEL_CUSTOM,
                                             .shape = shape_dense_tied_grad_input,
                                             .emit = emit_dense_tied_grad_input,
                                             .vjp = vjp_dense_tied_grad_input, .flops = flops_dense_tied,
                                             .pure = true};
const OpInfo OP_COLUMN_SQUARES_row = {.n_inputs = 1, .kernel = KERNEL_CUSTOM, .shape = shape_column_squares,
                                      .emit = emit_column_squares, .vjp = vjp_column_squares,
                                      .flops = flops_input_elements, .pure = true};
const OpInfo OP_COLUMN_SQUARES_GRAD_row = {.n_inputs = 2, .kernel = KERNEL_CUSTOM, .shape = shape_same,
                                           .emit = emit_column_squares_grad, .flops = flops_elements, .pure = true};
