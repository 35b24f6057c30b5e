// pool.c — pooling and upsampling: maxpool, unpool (max-unpooling with a
// maxpool's switches) and its gradient, upsample and its gradient. Shape
// rules, vector-Jacobian rules, FLOPs and kernels, then the op-table rows.
// Images are [channels, height, width] per sample (conv.c).
//
// Geometry. A pool of window k has stride k; with pad=valid it gives
// floor(in / k) outputs and drops the rest, with pad=same ceil(in / k), its
// windows centred (pool_padding: half the overhang before, rounded down)
// and those that run off the edge using the pixels inside. pool_padding is
// the one place this is computed: for the kernels and for the windows
// (pool_window, spread_window) that the model's description gives the runtime.
//
// Switches. maxpool does not store its argmax: unpool and maxpool's gradient
// recompute it from the pooled input (the first largest value of a window in
// row-major order, as PyTorch's max_pool2d), which costs one compare per
// pixel and no memory. maxpool's gradient is unpool(dy, x); unpool's is the
// gather unpool_grad(dy, x).
//
// Kernels. Pooling, unpooling and upsampling walk output rows with their
// window's taps at constant offsets, so they vectorize (emit_window_rows);
// windows that run off the edge take the plain loop (emit_switch_loop).
#include <stdlib.h>
#include <string.h>

#include "ops.h"

// ------------------------------------------------------------- shape rules
static int ceil_div(int a, int b) { return (a + b - 1) / b; }

static int pool_size(int in, int k, bool same) { return same ? ceil_div(in, k) : in / k; }

static Shape pooled(Shape x, const Node *node) {
  int k = (int)node->attr[0];
  bool same = node->attr[1] == 0;
  return image(x.dims[0], pool_size(x.dims[1], k, same), pool_size(x.dims[2], k, same));
}

// A pool: maxpool(x[C, H, W]) -> [C, H/k, W/k] (rounded down for valid, up for same)
static bool shape_pool(Graph *g, Node *node, Shape *out) {
  Shape x = input_shape(g, node, 0);
  if (!want_image(g, node, x, op_name(node->op))) return false;
  *out = pooled(x, node);
  if (out->dims[1] < 1 || out->dims[2] < 1) {
    diag_error(node->loc, "%s: a %dx%d window with pad=valid does not fit the %dx%d input; use pad=same",
               op_name(node->op), (int)node->attr[0], (int)node->attr[0], x.dims[1], x.dims[2]);
    return false;
  }
  return true;
}

// unpool(v[pooled], x[C, H, W]) -> [C, H, W], x being the pooled input
static bool shape_unpool(Graph *g, Node *node, Shape *out) {
  Shape v = input_shape(g, node, 0), x = input_shape(g, node, 1), p = pooled(x, node);
  bool same = v.batched && v.rank == 3;
  for (int d = 0; d < 3 && same; d++) same = v.dims[d] == p.dims[d];
  if (!same) {
    char sv[64], sp[64];
    shape_format(v, sv, sizeof sv), shape_format(p, sp, sizeof sp);
    diag_error(node->loc, "unpool: the value has shape %s but the maxpool's output has %s; unpool a value shaped like "
               "the pooled one (the decoder layer before unpool must produce %s)", sv, sp, sp);
    return false;
  }
  *out = x;
  return true;
}

// unpool_grad(dy[C, H, W], x[C, H, W]) -> pooled
static bool shape_unpool_grad(Graph *g, Node *node, Shape *out) {
  *out = pooled(input_shape(g, node, 1), node);
  return true;
}

// upsample(x[C, H, W]) -> [C, H*k, W*k]
static bool shape_upsample(Graph *g, Node *node, Shape *out) {
  Shape x = input_shape(g, node, 0);
  if (!want_image(g, node, x, "upsample")) return false;
  int k = (int)node->attr[0];
  *out = image(x.dims[0], x.dims[1] * k, x.dims[2] * k);
  return true;
}

// upsample_grad(dy[C, H*k, W*k]) -> [C, H, W]
static bool shape_upsample_grad(Graph *g, Node *node, Shape *out) {
  Shape dy = input_shape(g, node, 0);
  int k = (int)node->attr[0];
  *out = image(dy.dims[0], dy.dims[1] / k, dy.dims[2] / k);
  return true;
}

// ---------------------------------------------------------------- FLOPs
// One compare or add per element of the larger side.
static double flops_pool(const Graph *g, const Node *node) {
  Shape a = g->nodes[node->inputs[0]].shape, b = node->shape;
  return (double)(shape_size(a) > shape_size(b) ? shape_size(a) : shape_size(b));
}

// ------------------------------------------------------------ VJP rules
static int add_attr(Graph *g, OpKind op, const int *inputs, int n, const double *attr, Loc loc) {
  return graph_add_attr(g, op, inputs, n, attr, loc);
}

static void vjp_maxpool(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = add_attr(g, OP_UNPOOL, (int[]){grad, node->inputs[0]}, 2, node->attr, node->loc);
}

// The switches (input 1) are piecewise constant: no gradient flows to them.
static void vjp_unpool(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  if (needs[0]) out[0] = add_attr(g, OP_UNPOOL_GRAD, (int[]){grad, node->inputs[1]}, 2, node->attr, node->loc);
  if (needs[1]) out[1] = VJP_ZERO;
}

static void vjp_upsample(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = add_attr(g, OP_UPSAMPLE_GRAD, (int[]){grad}, 1, node->attr, node->loc);
}

// The gradients are linear maps of the incoming gradient, each the
// transpose of its forward op, so their own gradients (second derivatives)
// are those forward ops: unpool_grad(g, x) gathers at x's switches, and
// unpool scatters there; upsample_grad sums each window, and upsample
// copies. The switches' source gives no gradient.
static void vjp_unpool_grad(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  if (needs[0]) out[0] = add_attr(g, OP_UNPOOL, (int[]){grad, node->inputs[1]}, 2, node->attr, node->loc);
  if (needs[1]) out[1] = VJP_ZERO;
}
static void vjp_upsample_grad(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = add_attr(g, OP_UPSAMPLE, (int[]){grad}, 1, node->attr, node->loc);
}

// ---------------------------------------------------------------- kernels
// The padding above and left of x that a maxpool/unpool/unpool_grad node's
// windows reach, x being the pooled input.
static void pool_padding(Shape x, const Node *node, int *top, int *left) {
  int k = (int)node->attr[0];
  Shape p = pooled(x, node);
  *top = (p.dims[1] * k - x.dims[1]) / 2, *left = (p.dims[2] * k - x.dims[2]) / 2;
  if (*top < 0) *top = 0;
  if (*left < 0) *left = 0;
}

// Every window lies wholly inside x (no padding): the kernels below take the fast form.
static bool windows_inside(Shape x, const Node *node) {
  int k = (int)node->attr[0], top, left;
  Shape p = pooled(x, node);
  pool_padding(x, node, &top, &left);
  return top == 0 && left == 0 && p.dims[1] * k <= x.dims[1] && p.dims[2] * k <= x.dims[2];
}

// The pooling geometry as constants; true for the fast form (at -O1 and up).
static bool emit_pool_enum(Emitter *e, const Node *node, Shape x) {
  int top, left;
  Shape p = pooled(x, node);
  pool_padding(x, node, &top, &left);
  emit_line(e, "  enum { C = %d, H = %d, W = %d, OH = %d, OW = %d, K = %d, PT = %d, PL = %d };", x.dims[0], x.dims[1],
            x.dims[2], p.dims[1], p.dims[2], (int)node->attr[0], top, left);
  return windows_inside(x, node) && e->options->opt_level > 0;
}

// The loop over windows that finds each one's switch: `at`, the index in
// the plane of its first largest value. `body` uses at and o (the window).
static void emit_switch_loop(Emitter *e, const char *plane_of_x, const char *body) {
  emit_line(e, "#pragma omp parallel for schedule(static)");
  emit_line(e, "  for (int ic = 0; ic < n * C; ic++) {");
  emit_line(e, "    const real *restrict xp = %s + (size_t)ic * H * W;", plane_of_x);
  emit_line(e, "    for (int oy = 0; oy < OH; oy++)");
  emit_line(e, "      for (int ox = 0; ox < OW; ox++) {");
  emit_line(e, "        const int y0 = oy * K - PT < 0 ? 0 : oy * K - PT, y1 = oy * K - PT + K > H ? H : oy * K - PT + K;");
  emit_line(e, "        const int x0 = ox * K - PL < 0 ? 0 : ox * K - PL, x1 = ox * K - PL + K > W ? W : ox * K - PL + K;");
  emit_line(e, "        int at = y0 * W + x0;");
  emit_line(e, "        for (int yy = y0; yy < y1; yy++)");
  emit_line(e, "          for (int xx = x0; xx < x1; xx++)");
  emit_line(e, "            if (xp[yy * W + xx] > xp[at]) at = yy * W + xx;");
  emit_line(e, "        const size_t o = (size_t)ic * OH * OW + oy * OW + ox;");
  emit_line(e, "        %s", body);
  emit_line(e, "      }");
  emit_line(e, "  }");
}

// The fast form, windows wholly inside: one output row at a time, its
// windows' K x K taps at constant offsets (tap t at row t / K, column
// t % K), so the compiler unrolls the taps and vectorizes across the row.
// `best` is the window's largest value and, when `switches`, `which` the
// tap of its first largest one (a real, so that comparisons and selects
// stay in one vector type: with an int GCC does not vectorize the loop); `before` and `body` use xr (the window
// row's first input row), r (the output row) and ox.
static void emit_window_rows(Emitter *e, const char *x, bool switches, const char *before, const char *body) {
  emit_line(e, "#pragma omp parallel for schedule(static)");
  emit_line(e, "  for (int r = 0; r < n * C * OH; r++) {");
  emit_line(e, "    const int ic = r / OH, oy = r %% OH;");
  emit_line(e, "    const real *restrict xr = %s + ((size_t)ic * H + oy * K) * W;", x);
  if (*before) emit_line(e, "    %s", before);
  emit_line(e, "    for (int ox = 0; ox < OW; ox++) {");
  emit_line(e, "      real best = xr[ox * K];");
  if (switches) emit_line(e, "      real which = 0;");
  emit_line(e, "#pragma GCC unroll 64");
  emit_line(e, "      for (int t = 1; t < K * K; t++) {");
  emit_line(e, "        const real tap = xr[t / K * W + ox * K + t %% K];");
  if (switches) emit_line(e, "        which = tap > best ? (real)t : which;");
  emit_line(e, "        best = tap > best ? tap : best;");
  emit_line(e, "      }");
  emit_line(e, "      %s", body);
  emit_line(e, "    }");
  emit_line(e, "  }");
}

static void emit_maxpool(Emitter *e, const Node *node) {
  emit_kernel_open(e, node, (const char *const[]){"x", "y"}, "y = the largest x of each K x K window (stride K)");
  if (emit_pool_enum(e, node, input_shape(e->graph, node, 0))) {
    emit_window_rows(e, "x", false, "", "y[(size_t)r * OW + ox] = best;");
  } else {
    emit_switch_loop(e, "x", "y[o] = xp[at];");
  }
  emit_line(e, "}");
}

// The fast form of unpool: every tap of every window is written, rows and
// columns no window covers zeroed first. `gate`, when given, is an
// activation's gradient (from its output) applied to v with the window's
// largest x, the value at its switch (see unpool_takes_gradient).
static void emit_unpool_rows(Emitter *e, const Node *node, Shape x, const char *v, const char *x_name,
                             const Node *gate) {
  if (pooled(x, node).dims[1] * (int)node->attr[0] < x.dims[1] || pooled(x, node).dims[2] * (int)node->attr[0] < x.dims[2])
    emit_line(e, "  memset(out, 0, sizeof(real) * (size_t)n * C * H * W);");
  char v_at[64], note[120] = "", body[1024];
  snprintf(v_at, sizeof v_at, "%s[(size_t)r * OW + ox]", v);
  // the value at the switch: v, or the gate applied to it
  Capture *capture = emit_capture_begin(e);
  if (gate) {
    expand_op_with(e, gate, (const char *const[]){"best", v_at}, 2);
    snprintf(note, sizeof note, "  // %s at the switch, where %s is the window's largest", op_name(gate->op), x_name);
  } else {
    emit_text(e, v_at);
  }
  char *g = emit_capture_end(e, capture, NULL);
  int length = snprintf(body, sizeof body,
                        "const real g = %s;%s\n"
                        "#pragma GCC unroll 64\n"
                        "      for (int t = 0; t < K * K; t++) outr[t / K * W + ox * K + t %% K] = which == (real)t ? g : 0;",
                        g, note);
  free(g);
  if (length < 0 || (size_t)length >= sizeof body) {
    fprintf(stderr, "aec: internal error: the unpool kernel's loop is too long\n");
    exit(3);
  }
  const char *before = "real *restrict outr = out + ((size_t)ic * H + oy * K) * W;";
  emit_window_rows(e, x_name, true, before, body);
}

static void emit_unpool(Emitter *e, const Node *node) {
  emit_kernel_open(e, node, (const char *const[]){"v", "x", "out"},
                   "out = zero but at each window's switch (where x is largest), which gets v");
  Shape x = input_shape(e->graph, node, 1);
  if (emit_pool_enum(e, node, x)) {
    emit_unpool_rows(e, node, x, "v", "x", NULL);
  } else {
    emit_line(e, "  memset(out, 0, sizeof(real) * (size_t)n * C * H * W);");
    emit_switch_loop(e, "x", "out[(size_t)ic * H * W + at] = v[o];");
  }
  emit_line(e, "}");
}

// A maxpool's gradient, unpool(v, y), read only by the gradient of the
// activation whose output y the maxpool pooled (relu_grad(y, unpool(v, y))).
// That gradient is zero where its incoming gradient is (OpInfo
// .zero_where_gradient_is), so it changes only each window's switch, where y
// is the window's largest value: the kernel applies it to v there and never
// writes the unpooled gradient. On conv.ae
// the first layer's two kernels (0.33 s of 3.1 s of kernels an epoch) became
// one of 0.18 s; the model trained 4-6% faster (3 alternating runs of 3 epochs).
static bool unpool_takes_gradient(const Graph *g, const Node *unpool, const Node *reader) {
  if (unpool->op != OP_UNPOOL || !op_info(reader->op)->zero_where_gradient_is) return false;
  if (reader->inputs[0] != unpool->inputs[1] || reader->inputs[1] != unpool->id) return false;
  return windows_inside(input_shape(g, unpool, 1), unpool);
}

static void emit_unpool_gradient_group(Emitter *e, const char *name, const Group *group) {
  const Graph *g = e->graph;
  const Node *unpool = &g->nodes[group->members[0]];
  int inputs[8];
  int n_inputs = group_inputs(g, group, inputs);  // v, then the pooled y
  emit_group_comment(e, group, inputs, n_inputs);
  emit_line(e, "// out = zero but at each window's switch (where b is largest), which gets %s(b, a)",
            op_name(g->nodes[group->members[1]].op));
  emit_line(e, "static void %s(int n, const real *restrict a, const real *restrict b, real *restrict out) {", name);
  Shape x = input_shape(g, unpool, 1);
  emit_pool_enum(e, unpool, x);
  emit_unpool_rows(e, unpool, x, "a", "b", &g->nodes[group->members[1]]);
  emit_line(e, "}");
}

static void emit_unpool_grad(Emitter *e, const Node *node) {
  emit_kernel_open(e, node, (const char *const[]){"dy", "x", "out"},
                   "out = dy at each window's switch (where x is largest)");
  if (emit_pool_enum(e, node, input_shape(e->graph, node, 1))) {
    emit_window_rows(e, "x", true, "const real *restrict dyr = dy + ((size_t)ic * H + oy * K) * W;",
                     "real g = dyr[ox * K];\n"
                     "#pragma GCC unroll 64\n"
                     "      for (int t = 1; t < K * K; t++) g = which == (real)t ? dyr[t / K * W + ox * K + t % K] : g;\n"
                     "      out[(size_t)r * OW + ox] = g;");
  } else {
    emit_switch_loop(e, "x", "out[o] = dy[(size_t)ic * H * W + at];");
  }
  emit_line(e, "}");
}

static void emit_upsample(Emitter *e, const Node *node) {
  Shape x = input_shape(e->graph, node, 0);
  emit_kernel_open(e, node, (const char *const[]){"x", "y"}, "y[n][C][H*K][W*K] = x[n][C][H][W] (nearest)");
  emit_line(e, "  enum { C = %d, H = %d, W = %d, K = %d };", x.dims[0], x.dims[1], x.dims[2], (int)node->attr[0]);
  emit_line(e, "#pragma omp parallel for schedule(static)");
  emit_line(e, "  for (int ic = 0; ic < n * C; ic++)");
  emit_line(e, "    for (int yy = 0; yy < H; yy++) {");
  emit_line(e, "      real *restrict row = y + ((size_t)ic * H + yy) * K * W * K;");
  emit_line(e, "      const real *restrict src = x + ((size_t)ic * H + yy) * W;");
  emit_line(e, "      for (int a = 0; a < K; a++)");
  emit_line(e, "        for (int j = 0; j < W * K; j++) row[a * W * K + j] = src[j / K];");
  emit_line(e, "    }");
  emit_line(e, "}");
}

static void emit_upsample_grad(Emitter *e, const Node *node) {
  Shape x = node->shape;
  emit_kernel_open(e, node, (const char *const[]){"dy", "dx"}, "dx[n][C][H][W] = the sum of dy over each K x K block");
  emit_line(e, "  enum { C = %d, H = %d, W = %d, K = %d };", x.dims[0], x.dims[1], x.dims[2], (int)node->attr[0]);
  emit_line(e, "#pragma omp parallel for schedule(static)");
  emit_line(e, "  for (int r = 0; r < n * C * H; r++) {");
  emit_line(e, "    const real *restrict dyr = dy + (size_t)r * K * W * K;");
  emit_line(e, "    for (int xx = 0; xx < W; xx++) {");
  emit_line(e, "      real sum = 0;");
  emit_line(e, "#pragma GCC unroll 64");
  emit_line(e, "      for (int t = 0; t < K * K; t++) sum += dyr[t / K * W * K + xx * K + t %% K];");
  emit_line(e, "      dx[(size_t)r * W + xx] = sum;");
  emit_line(e, "    }");
  emit_line(e, "  }");
  emit_line(e, "}");
}

// --------------------------------------------------------------- windows
// A pool's output o reads the window o * K - PT ... of its input.
static bool pool_window(const Graph *g, const Node *node, int input, int axis, Window *out) {
  (void)input;
  int k = (int)node->attr[0], top, left;
  pool_padding(input_shape(g, node, 0), node, &top, &left);
  *out = (Window){.size = k, .stride = k, .pad = axis == 0 ? top : left};
  return true;
}

// An upsample's input i writes the output block i * K ...; an unpool's value
// v[i] goes to the output window i * K - PT ..., and each output position
// reads its window of the pooled input x (its switches).
static bool spread_window(const Graph *g, const Node *node, int input, int axis, Window *out) {
  int k = (int)node->attr[0], top = 0, left = 0;
  if (node->op == OP_UNPOOL) pool_padding(input_shape(g, node, 1), node, &top, &left);
  *out = (Window){.size = k, .stride = k, .pad = axis == 0 ? top : left, .transposed = true,
                  .both = node->op == OP_UNPOOL && input == 1};
  return true;
}

// ------------------------------------------------------------------- rows
// attr: {k, pad (0 same, 1 valid)}; upsample {k}.
const OpInfo OP_MAXPOOL_row = {.n_inputs = 1, .kernel = KERNEL_CUSTOM, .shape = shape_pool, .emit = emit_maxpool,
                               .vjp = vjp_maxpool, .flops = flops_pool, .pure = true, .window = pool_window};
const OpInfo OP_UNPOOL_row = {.n_inputs = 2, .kernel = KERNEL_CUSTOM, .shape = shape_unpool, .emit = emit_unpool,
                              .vjp = vjp_unpool, .flops = flops_pool, .pure = true, .window = spread_window,
                              .takes_reader = unpool_takes_gradient, .emit_group = emit_unpool_gradient_group};
const OpInfo OP_UNPOOL_GRAD_row = {.n_inputs = 2, .kernel = KERNEL_CUSTOM, .shape = shape_unpool_grad,
                                   .emit = emit_unpool_grad, .vjp = vjp_unpool_grad, .flops = flops_pool,
                                   .pure = true};
const OpInfo OP_UPSAMPLE_row = {.n_inputs = 1, .kernel = KERNEL_CUSTOM, .shape = shape_upsample,
                                .emit = emit_upsample, .vjp = vjp_upsample, .flops = flops_pool, .pure = true,
                                .window = spread_window};
const OpInfo OP_UPSAMPLE_GRAD_row = {.n_inputs = 1, .kernel = KERNEL_CUSTOM, .shape = shape_upsample_grad,
                                     .emit = emit_upsample_grad, .vjp = vjp_upsample_grad, .flops = flops_pool,
                                     .pure = true};

// ---------------------------------------------------------------- avgpool
// avgpool(x, k, pad=valid): each K x K window's mean, stride K, as PyTorch's
// nn.AvgPool2d(k) and Keras's AveragePooling2D. With pad=same the windows
// are maxpool's (ceil(in / k) of them, centred) and one that runs off the
// edge divides by the pixels inside it, as Keras does (PyTorch's
// count_include_pad would count the padding too). attr {k, pad}. Its
// gradient, avgpool_grad(dy, x), gives each pixel its window's dy over that
// window's count (zero where pad=valid dropped it); x gives the shape only.
static void vjp_avgpool(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  out[0] = add_attr(g, OP_AVGPOOL_GRAD, (int[]){grad, node->inputs[0]}, 2, node->attr, node->loc);
}

// avgpool_grad(g, x) spreads each window's mean: its gradient in g is the avgpool.
static void vjp_avgpool_grad(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  if (needs[0]) out[0] = add_attr(g, OP_AVGPOOL, (int[]){grad}, 1, node->attr, node->loc);
  if (needs[1]) out[1] = VJP_ZERO;
}

// The loop over each plane's windows, y0..y1 x x0..x1 clipped to the image.
static void emit_window_loop(Emitter *e, const char *body) {
  emit_line(e, "#pragma omp parallel for schedule(static)");
  emit_line(e, "  for (int ic = 0; ic < n * C; ic++)");
  emit_line(e, "    for (int oy = 0; oy < OH; oy++)");
  emit_line(e, "      for (int ox = 0; ox < OW; ox++) {");
  emit_line(e, "        const int y0 = oy * K - PT < 0 ? 0 : oy * K - PT, y1 = oy * K - PT + K > H ? H : oy * K - PT + K;");
  emit_line(e, "        const int x0 = ox * K - PL < 0 ? 0 : ox * K - PL, x1 = ox * K - PL + K > W ? W : ox * K - PL + K;");
  emit_line(e, "        const size_t o = (size_t)ic * OH * OW + oy * OW + ox, plane = (size_t)ic * H * W;");
  emit_line(e, "        const real count = (real)((y1 - y0) * (x1 - x0));");
  emit_line(e, "%s", body);
  emit_line(e, "      }");
}

static void emit_avgpool(Emitter *e, const Node *node) {
  emit_kernel_open(e, node, (const char *const[]){"x", "y"},
                   "y = the mean of x over each K x K window (stride K), of the pixels inside the image");
  emit_pool_enum(e, node, input_shape(e->graph, node, 0));
  emit_window_loop(e, "        real sum = 0;\n"
                      "        for (int yy = y0; yy < y1; yy++)\n"
                      "          for (int xx = x0; xx < x1; xx++) sum += x[plane + yy * W + xx];\n"
                      "        y[o] = sum / count;");
  emit_line(e, "}");
}

static void emit_avgpool_grad(Emitter *e, const Node *node) {
  emit_kernel_open(e, node, (const char *const[]){"dy", "x", "dx"},
                   "dx = dy of each pixel's window over the window's count; zero outside every window");
  emit_line(e, "  (void)x;  // gives the shape only");
  emit_pool_enum(e, node, input_shape(e->graph, node, 1));
  emit_line(e, "  memset(dx, 0, sizeof(real) * (size_t)n * C * H * W);");
  emit_window_loop(e, "        const real g = dy[o] / count;\n"
                      "        for (int yy = y0; yy < y1; yy++)\n"
                      "          for (int xx = x0; xx < x1; xx++) dx[plane + yy * W + xx] = g;");
  emit_line(e, "}");
}

const OpInfo OP_AVGPOOL_row = {.n_inputs = 1, .kernel = KERNEL_CUSTOM, .shape = shape_pool, .emit = emit_avgpool,
                               .vjp = vjp_avgpool, .flops = flops_pool, .pure = true, .window = pool_window};
const OpInfo OP_AVGPOOL_GRAD_row = {.n_inputs = 2, .kernel = KERNEL_CUSTOM, .shape = shape_like_second,
                                    .emit = emit_avgpool_grad, .vjp = vjp_avgpool_grad, .flops = flops_pool,
                                    .pure = true};
