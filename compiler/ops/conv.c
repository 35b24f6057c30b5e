// conv.c — the convolutions: conv, deconv (transposed convolution) and their
// gradients. Shape rules, vector-Jacobian rules, FLOPs and kernels, then
// the op-table rows. The geometry is computed in one place, node_geom: for
// the kernels, the FLOPs (which a layer's summary line shows too), and the
// windows (conv_window) that the model's description gives the runtime.
//
// Layouts. Batched values are NCHW: one sample is [channels, height, width].
// A conv kernel is [filters, in_channels, k, k] (PyTorch's Conv2d.weight); a
// deconv kernel is [in_channels, filters, k, k] (PyTorch's
// ConvTranspose2d.weight). Both are the same array: a deconv is the data
// gradient of the conv that maps its output back to its input, and its
// kernel is that conv's kernel.
//
// Geometry (Keras's): "same" gives ceil(in / stride) outputs and pads
// pad_total = max((out - 1) * stride + k - in, 0), pad_total / 2 before and
// the rest after (more at the bottom/right for even kernels or stride 2);
// "valid" gives (in - k) / stride + 1 and pads nothing. A deconv's output is
// in * stride (same) or (in - 1) * stride + k (valid): the input of the conv
// whose output it is given.
//
//
// Kernels. -O0 gets plain loops (the reference). -O2 gets direct
// convolution specialized to the shapes (DESIGN.md part 5), at a stride over
// phases of the input or output (Phases, below). At stride 1, each
// input plane is copied into a zero-padded plane of width W + k - 1, the
// output is computed over rows of that width (the extra columns are thrown
// away), the k*k taps are shifted unaligned vector loads, and a block of
// output channels x pixel vectors stays in registers. The data gradient is the
// same kernel over the padded output gradient with flipped, transposed
// weights. Weight gradients reduce, per (filter, channel, tap), over pixels and
// samples in fixed chunks of the batch summed in order, so the result does
// not depend on the number of threads; a block of filters shares each load of
// the input plane.
#include <stdlib.h>
#include <string.h>

#include "ops.h"

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

static int conv_output_size(int in, int k, int stride, bool valid) {
  return valid ? (in < k ? 0 : (in - k) / stride + 1) : ceil_div(in, stride);
}

static int deconv_output_size(int in, int k, int stride, bool valid) { return valid ? (in - 1) * stride + k : in * stride; }

static int conv_pad_before(int in, int out, int k, int stride, bool valid) {
  if (valid) return 0;
  int total = (out - 1) * stride + k - in;
  return total > 0 ? total / 2 : 0;
}

// A convolution's geometry: its input [C, H, W], output [F, OH, OW], kernel
// k, stride and the padding before (top, left).
typedef struct ConvGeom {
  int c, h, w, f, oh, ow, k, s, pt, pl;
} ConvGeom;

static ConvGeom geom_of(Shape in, Shape out, int k, int s, bool valid) {
  ConvGeom g = {.c = in.dims[0], .h = in.dims[1], .w = in.dims[2], .f = out.dims[0], .oh = out.dims[1],
                .ow = out.dims[2], .k = k, .s = s};
  g.pt = conv_pad_before(g.h, g.oh, k, s, valid);
  g.pl = conv_pad_before(g.w, g.ow, k, s, valid);
  return g;
}

static bool is_valid(const Node *node) { return node->attr[1] != 0; }
static int stride_of(const Node *node) { return (int)node->attr[0]; }

// The geometry of the conv behind each op (for a deconv: the conv whose
// data gradient it is).
static ConvGeom node_geom(const Graph *g, const Node *node) {
  switch (node->op) {
  case OP_CONV: {
    Shape w = input_shape(g, node, 1);
    return geom_of(input_shape(g, node, 0), node->shape, w.dims[2], stride_of(node), is_valid(node));
  }
  case OP_CONV_GRAD_INPUT: {  // (dy, kernel, x) -> dx
    Shape w = input_shape(g, node, 1);
    return geom_of(node->shape, input_shape(g, node, 0), w.dims[2], stride_of(node), is_valid(node));
  }
  case OP_CONV_GRAD_KERNEL:  // (x, dy) -> dkernel
    return geom_of(input_shape(g, node, 0), input_shape(g, node, 1), (int)node->attr[2], stride_of(node), is_valid(node));
  case OP_DECONV: {  // (x, kernel, bias) -> y: the conv maps y to x
    Shape w = input_shape(g, node, 1);
    return geom_of(node->shape, input_shape(g, node, 0), w.dims[2], stride_of(node), is_valid(node));
  }
  case OP_DECONV_GRAD_INPUT: {  // (dy, kernel, x) -> dx: a conv of dy
    Shape w = input_shape(g, node, 1);
    return geom_of(input_shape(g, node, 0), node->shape, w.dims[2], stride_of(node), is_valid(node));
  }
  default: return (ConvGeom){0};
  }
}

// ------------------------------------------------------------- shape rules
bool want_image(Graph *g, const Node *node, Shape x, const char *what) {
  if (x.batched && x.rank == 3) return true;
  char s[64];
  shape_format(x, s, sizeof s);
  diag_error(node->loc, "%s needs an image input of shape [channels, height, width] per sample, but got %s%s", what, s,
             x.batched && x.rank == 1 ? "; add reshape([c, h, w]) before it" : "");
  (void)g;
  return false;
}

Shape image(int c, int h, int w) { return (Shape){.batched = true, .rank = 3, .dims = {c, h, w}}; }

// conv(x[C, H, W], kernel[F, C, k, k], bias[F]) -> [F, OH, OW]
static bool shape_conv(Graph *g, Node *node, Shape *out) {
  Shape x = input_shape(g, node, 0), w = input_shape(g, node, 1);
  if (!want_image(g, node, x, "conv")) return false;
  if (w.dims[1] != x.dims[0]) {
    diag_error(node->loc, "conv: its weights were made for %d input channels, but this input has %d "
               "(a net keeps the shapes of its first application)", w.dims[1], x.dims[0]);
    return false;
  }
  int k = w.dims[2], s = stride_of(node);
  int oh = conv_output_size(x.dims[1], k, s, is_valid(node)), ow = conv_output_size(x.dims[2], k, s, is_valid(node));
  if (oh < 1 || ow < 1) {
    diag_error(node->loc, "conv: a %dx%d kernel with pad=valid does not fit the %dx%d input; use pad=same or a smaller k",
               k, k, x.dims[1], x.dims[2]);
    return false;
  }
  *out = image(w.dims[0], oh, ow);
  return true;
}

// deconv(x[C, H, W], kernel[C, F, k, k], bias[F]) -> [F, H', W']
static bool shape_deconv(Graph *g, Node *node, Shape *out) {
  Shape x = input_shape(g, node, 0), w = input_shape(g, node, 1);
  if (!want_image(g, node, x, "deconv")) return false;
  if (w.dims[0] != x.dims[0]) {
    diag_error(node->loc, "deconv: its weights were made for %d input channels, but this input has %d "
               "(a net keeps the shapes of its first application)", w.dims[0], x.dims[0]);
    return false;
  }
  int k = w.dims[2], s = stride_of(node);
  *out = image(w.dims[1], deconv_output_size(x.dims[1], k, s, is_valid(node)),
               deconv_output_size(x.dims[2], k, s, is_valid(node)));
  return true;
}

// conv_grad_input(dy, kernel, x), deconv_grad_input(dy, kernel, x): x's shape
static bool shape_like_third(Graph *g, Node *node, Shape *out) {
  *out = input_shape(g, node, 2);
  return true;
}

// conv_grad_kernel(x[C, ...], dy[F, ...]) -> [F, C, k, k]
static bool shape_conv_grad_kernel(Graph *g, Node *node, Shape *out) {
  int k = (int)node->attr[2];
  *out = (Shape){.rank = 4, .dims = {input_shape(g, node, 1).dims[0], input_shape(g, node, 0).dims[0], k, k}};
  return true;
}

// conv_grad_bias(dy[F, OH, OW]) -> [F]
static bool shape_conv_grad_bias(Graph *g, Node *node, Shape *out) {
  *out = (Shape){.rank = 1, .dims = {input_shape(g, node, 0).dims[0]}};
  return true;
}

// ---------------------------------------------------------------- FLOPs
static double flops_conv_family(const Graph *g, const Node *node) {
  ConvGeom c = node_geom(g, node);
  double macs = (double)c.f * c.oh * c.ow * c.c * c.k * c.k;
  bool bias = node->op == OP_CONV || node->op == OP_DECONV;
  double per = 2.0 * macs + (bias ? (node->op == OP_CONV ? (double)c.f * c.oh * c.ow : (double)c.c * c.h * c.w) : 0);
  return per;  // conv_grad_kernel: per sample of the batch as well
}

// ------------------------------------------------------------ VJP rules
static int add_attr(Graph *g, OpKind op, const int *inputs, int n, const double *attr, Loc loc) {
  return graph_add_attr(g, op, inputs, n, attr, loc);
}

static void vjp_conv(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  int x = node->inputs[0], w = node->inputs[1];
  double attr[MAX_ATTRS] = {node->attr[0], node->attr[1], g->nodes[w].shape.dims[2]};
  if (needs[0]) out[0] = add_attr(g, OP_CONV_GRAD_INPUT, (int[]){grad, w, x}, 3, attr, node->loc);
  if (needs[1]) out[1] = add_attr(g, OP_CONV_GRAD_KERNEL, (int[]){x, grad}, 2, attr, node->loc);
  if (needs[2]) out[2] = graph_add(g, OP_CONV_GRAD_BIAS, (int[]){grad}, 1, node->loc);
}

// deconv(x) = conv_grad_input(x) of the conv from y to x: its data gradient
// is that conv, its kernel gradient that conv's kernel gradient with the
// roles of input and output exchanged.
static void vjp_deconv(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  int x = node->inputs[0], w = node->inputs[1];
  double attr[MAX_ATTRS] = {node->attr[0], node->attr[1], g->nodes[w].shape.dims[2]};
  if (needs[0]) out[0] = add_attr(g, OP_DECONV_GRAD_INPUT, (int[]){grad, w, x}, 3, attr, node->loc);
  if (needs[1]) out[1] = add_attr(g, OP_CONV_GRAD_KERNEL, (int[]){grad, x}, 2, attr, node->loc);
  if (needs[2]) out[2] = graph_add(g, OP_CONV_GRAD_BIAS, (int[]){grad}, 1, node->loc);
}

// The input gradients are linear in the incoming gradient and the kernel
// (second derivatives). conv_grad_input(dy, w, x) is the transposed conv of
// dy: its gradient in dy is the conv of g with w, which is the deconv's
// input gradient (deconv_grad_input), and in w the conv's kernel gradient
// with g as the conv's input and dy as its output's gradient;
// deconv_grad_input(dy, w, x), the conv of dy, is the mirror image. Input 2
// gives only the shape.
static void vjp_conv_grad_input(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  int dy = node->inputs[0], w = node->inputs[1];
  bool transposed = node->op == OP_CONV_GRAD_INPUT;
  OpKind back = transposed ? OP_DECONV_GRAD_INPUT : OP_CONV_GRAD_INPUT;
  if (needs[0]) out[0] = add_attr(g, back, (int[]){grad, w, dy}, 3, node->attr, node->loc);
  if (needs[1])
    out[1] = add_attr(g, OP_CONV_GRAD_KERNEL, transposed ? (int[]){grad, dy} : (int[]){dy, grad}, 2, node->attr,
                      node->loc);
  if (needs[2]) out[2] = VJP_ZERO;
}

// ---------------------------------------------------------------- kernels
static void emit_geom_enum(Emitter *e, ConvGeom c) {
  emit_line(e, "  enum { C = %d, H = %d, W = %d, F = %d, OH = %d, OW = %d, K = %d, S = %d, PT = %d, PL = %d };", c.c,
            c.h, c.w, c.f, c.oh, c.ow, c.k, c.s, c.pt, c.pl);
}

// -O1 and up take the direct kernel, at a stride over phases (Phases below)
// where the first output phase row lies within K' - 1 rows of the top (PT
// under S * K', as Keras's paddings always are).
static bool fast(const Emitter *e, ConvGeom c) {
  int kp = ceil_div(c.k, c.s);
  return e->options->opt_level > 0 && (c.s == 1 || (c.pt / c.s <= kp - 1 && c.pl / c.s <= kp - 1));
}

static int largest_divisor_at_most(int n, int cap) {
  for (int d = cap; d > 1; d--)
    if (n % d == 0) return d;
  return 1;
}

// The -O2 direct convolution at stride 1 (see the top of the file): `in`
// [CI][IH][IW] per sample placed at (TOP, LEFT) in a zero plane of
// PH x PW = (OH + K - 1) x (OW + K - 1); `out` [CO][OH][OW]. The weights are
// packed first into wp[CO][CI][K*K]: as given (w[CO][CI][K][K]), or flipped
// and transposed (w[CI][CO][K][K], for a data gradient).
// With an `epilogue` (a GROUP_CONV), its members 1.. are applied to each
// output value on the way out.
typedef struct Epilogue {
  const Group *group;
  const int *inputs;
  int n_inputs;
} Epilogue;

// A padded plane's size in reals, written into the kernels' enums PLANE and NP
// (one reckoning for the code and for the stack it needs): NP output pixels
// on rows of width pw, rounded up to `round`, and room past them for every
// tap's read.
typedef struct PlaneSize {
  size_t np, plane;
} PlaneSize;

static PlaneSize plane_size(int oh, int pw, int k, size_t vl, size_t round) {
  PlaneSize p;
  p.np = ((size_t)oh * pw + round - 1) / round * round;
  p.plane = p.np + (size_t)(k - 1) * pw + k - 1 + vl;
  return p;
}

// A strided convolution as a stride-1 one over phases (ph != NULL): with
// ky = S * qy + ry, the taps of one phase (ry, rx) read every S-th row and
// column of x, so a stride-S conv of C channels and K x K taps is a stride-1
// conv of C * S * S phase planes and K' x K' taps, K' = ceil(K / S), the taps
// with S * q + r >= K zero. Forward (a conv, a deconv's data gradient): the
// planes are x's phases, gathered as each sample is copied in, and the output
// is the conv's. Transposed (a deconv, a conv's data gradient): output row iy
// with iy + PT = S * j + ry takes the taps ky = ry + S * q of input rows
// j - q, so each output phase is a stride-1 conv of the whole input with the
// phase's taps flipped, and the C * S * S output phases are scattered into
// the output as they leave. For K = 3, S = 2 a phase computes 16 products
// where 9 are taken (the zero taps); at stride 1 nothing changes.
// Phases are numbered ry * S + rx and their planes (outputs, transposed)
// go phase by phase: plane (ry * S + rx) * C + c.
typedef struct Phases {
  ConvGeom g;   // the conv's own geometry (K, S, PT, PL, both sides' sizes)
  bool transposed;
  int j0y, j0x;  // transposed: the first output phase row, column, (PT / S, PL / S)
} Phases;

static int phase_taps(ConvGeom g) { return ceil_div(g.k, g.s); }

// The phases' taps that are not zero, a mask a phase (bit t for tap t of the
// KP x KP): S * q + r < K on both axes, q counted from the top (forward) or
// from the bottom (transposed: the taps flipped). The kernels skip the
// others: for K = 3, S = 2, 9 products of 16. Up to 8 x 8 phase taps; past
// that every tap is computed.
static void emit_tap_masks(Emitter *e, ConvGeom g, bool transposed) {
  int kp = phase_taps(g);
  emit_format(e, "  static const uint64_t TAPS[S * S] = {");
  for (int phase = 0; phase < g.s * g.s; phase++) {
    uint64_t mask = 0;
    for (int t = 0; t < kp * kp && t < 64; t++) {
      int qy = transposed ? kp - 1 - t / kp : t / kp, qx = transposed ? kp - 1 - t % kp : t % kp;
      if (g.s * qy + phase / g.s < g.k && g.s * qx + phase % g.s < g.k) mask |= (uint64_t)1 << t;
    }
    if (kp * kp > 64) mask = ~(uint64_t)0;
    emit_format(e, "%s%#llx", phase ? ", " : "", (unsigned long long)mask);
  }
  emit_format(e, "};  // the taps each phase computes\n");
}

// Copies one sample of x [C][H][W] (`sample` points at it) into its phase
// planes: x[c][iy][ix] to plane (ry * S + rx) * C + c at row j, column jx,
// (iy + PT = S * j + ry), the plane's first element at `at` ("" or "s * SLOT + ").
static void emit_phase_gather(Emitter *e, const char *indent, const char *at, const char *sample) {
  emit_line(e, "%sfor (int c = 0; c < C; c++)", indent);
  emit_line(e, "%s  for (int iy = 0; iy < H; iy++) {", indent);
  emit_line(e, "%s    const int j = (iy + PT) / S, ry = (iy + PT) %% S;", indent);
  emit_line(e, "%s    if (j >= PH) break;", indent);
  emit_line(e, "%s    for (int ix = 0; ix < W; ix++) {", indent);
  emit_line(e, "%s      const int jx = (ix + PL) / S, rx = (ix + PL) %% S;", indent);
  emit_line(e, "%s      if (jx >= PW) break;", indent);
  emit_line(e, "%s      plane[(ry * S + rx) * C + c][%sj * PW + jx] = %s[(c * H + iy) * W + ix];", indent, at, sample);
  emit_line(e, "%s    }", indent);
  emit_line(e, "%s  }", indent);
}

static void emit_direct(Emitter *e, int ci, int ih, int iw, int co, int oh, int ow, int k, int top, int left,
                        bool transposed, const char *bias, const char *in, const char *w, const char *out,
                        const Epilogue *epilogue, const Phases *ph) {
  // The register block: OB output channels x PB vectors of accumulators, 24
  // of AVX-512's 32 registers; where the vectors are narrower (AVX2, SSE2:
  // AERT_NATIVE_BYTES, aert_kernels.h) and there are 16 registers, 12 of
  // them. Each output value sums the same terms in the same order either way.
  // (Over output phases, a block stays within one phase: OB divides C.)
  int block_of = ph && ph->transposed ? ph->g.c : co;
  int ob = largest_divisor_at_most(block_of, 8), ob_narrow = largest_divisor_at_most(block_of, 4);
  int pb = 24 / ob > 4 ? 4 : 24 / ob, pb_narrow = 12 / ob_narrow > 4 ? 4 : 12 / ob_narrow;
  const size_t real_size = emit_real_bytes(e), vl = 64 / real_size;
  // NP rounds up to whole blocks of any width (a block of 32-byte vectors is two of 16-byte ones).
  size_t wide_block = vl * (size_t)pb, narrow_block = 32 / real_size * (size_t)pb_narrow, round = wide_block;
  while (round % narrow_block != 0) round += wide_block;
  PlaneSize p = plane_size(oh, ow + k - 1, k, vl, round);
  // Each thread's plane and wide below; the first thread's frame also holds wp.
  emit_stack_use(e, ((size_t)ci * p.plane + (size_t)ob * p.np + (size_t)co * ci * k * k) * real_size);
  emit_line(e, "  enum { CI = %d, IH = %d, IW = %d, CO = %d, OH = %d, OW = %d, K = %d, TOP = %d, LEFT = %d };", ci, ih,
            iw, co, oh, ow, k, top, left);
  emit_line(e, "  enum { PH = OH + K - 1, PW = OW + K - 1, VL = AERT_NATIVE_BYTES / (int)sizeof(real) };");
  emit_line(e, "  enum { OB = AERT_NATIVE_BYTES == 64 ? %d : %d, PB = AERT_NATIVE_BYTES == 64 ? %d : %d };", ob, ob_narrow,
            pb, pb_narrow);
  emit_line(e, "  // NP: the OH * PW output pixels on rows of width PW, rounded up to whole blocks of PB vectors");
  emit_line(e, "  // of any width;");
  emit_line(e, "  // PLANE: NP and room past them for every tap's read, (K - 1) * PW + K - 1 + VL");
  emit_line(e, "  enum { NP = %zu, PLANE = %zu };", p.np, p.plane);
  emit_line(e, "  typedef real vec __attribute__((vector_size(AERT_NATIVE_BYTES)));");
  emit_line(e, "  real wp[CO * CI * K * K];");
  if (ph) {
    ConvGeom g = ph->g;
    emit_line(e, "  // the conv's own sizes: x [C][H][W] -> [F][FH][FW], KF x KF taps at stride S");
    emit_line(e, "  enum { C = %d, H = %d, W = %d, F = %d, FH = %d, FW = %d, KF = %d, S = %d, PT = %d, PL = %d };", g.c,
              g.h, g.w, g.f, g.oh, g.ow, g.k, g.s, g.pt, g.pl);
    if (ph->transposed)
      emit_line(e, "  enum { J0Y = %d, J0X = %d };  // the first output phase row and column", ph->j0y, ph->j0x);
    emit_line(e, "  for (int o = 0; o < CO; o++)");
    emit_line(e, "    for (int c = 0; c < CI; c++)");
    emit_line(e, "      for (int t = 0; t < K * K; t++) {");
    if (ph->transposed) {  // o = (ry * S + rx) * C + c an output phase, c an input channel (the conv's f)
      emit_line(e, "        const int ky = o / C / S + S * (K - 1 - t / K), kx = o / C %% S + S * (K - 1 - t %% K);");
      emit_line(e, "        wp[(o * CI + c) * K * K + t] = ky < KF && kx < KF ? %s[((c * C + o %% C) * KF + ky) * KF + kx] : 0;", w);
    } else {  // c = (ry * S + rx) * C + c an input phase
      emit_line(e, "        const int ky = S * (t / K) + c / C / S, kx = S * (t %% K) + c / C %% S;");
      emit_line(e, "        wp[(o * CI + c) * K * K + t] = ky < KF && kx < KF ? %s[((o * C + c %% C) * KF + ky) * KF + kx] : 0;", w);
    }
    emit_line(e, "      }");
    emit_tap_masks(e, g, ph->transposed);
  } else {
    emit_line(e, "  for (int o = 0; o < CO; o++)");
    emit_line(e, "    for (int c = 0; c < CI; c++)");
    emit_line(e, "      for (int t = 0; t < K * K; t++)");
    if (transposed)
      emit_line(e, "        wp[(o * CI + c) * K * K + t] = %s[(c * CO + o) * K * K + K * K - 1 - t];", w);
    else
      emit_line(e, "        wp[(o * CI + c) * K * K + t] = %s[(o * CI + c) * K * K + t];", w);
  }
  emit_line(e, "#pragma omp parallel");
  emit_line(e, "  {");
  emit_line(e, "    real plane[CI][PLANE] __attribute__((aligned(64)));");
  emit_line(e, "    real wide[OB][NP] __attribute__((aligned(64)));");
  emit_line(e, "    memset(plane, 0, sizeof plane);  // the borders stay zero");
  emit_line(e, "#pragma omp for schedule(static)");
  emit_line(e, "    for (int i = 0; i < n; i++) {");
  if (ph && !ph->transposed) {  // x's phases: x[c][iy][ix] goes to plane (ry * S + rx) * C + c at (j, jx)
    emit_line(e, "      const real *restrict xi = %s + (size_t)i * C * H * W;", in);
    emit_line(e, "      real *restrict yi = %s + (size_t)i * CO * OH * OW;", out);
    emit_phase_gather(e, "      ", "", "xi");
  } else {  // over output phases (ph), the input's rows and columns past the last phase's left out
    emit_line(e, "      const real *restrict xi = %s + (size_t)i * CI * IH * IW;", in);
    emit_line(e, "      real *restrict yi = %s + (size_t)i * %s;", out, ph ? "C * H * W" : "CO * OH * OW");
    emit_line(e, "      for (int c = 0; c < CI; c++)");
    if (ph) {
      emit_line(e, "        for (int y = 0; y < IH && y + TOP < PH; y++)");
      emit_line(e, "          memcpy(&plane[c][(y + TOP) * PW + LEFT], xi + (c * IH + y) * IW,");
      emit_line(e, "                 sizeof(real) * (IW < PW - LEFT ? IW : PW - LEFT));");
    } else {
      emit_line(e, "        for (int y = 0; y < IH; y++)");
      emit_line(e, "          memcpy(&plane[c][(y + TOP) * PW + LEFT], xi + (c * IH + y) * IW, sizeof(real) * IW);");
    }
  }
  emit_line(e, "      for (int o0 = 0; o0 < CO; o0 += OB) {");
  emit_line(e, "        for (int p0 = 0; p0 < NP; p0 += VL * PB) {");
  emit_line(e, "          vec acc[OB][PB];");
  emit_line(e, "#pragma GCC unroll 8");
  emit_line(e, "          for (int b = 0; b < OB; b++)");
  emit_line(e, "#pragma GCC unroll 8");
  if (bias && ph && ph->transposed)  // the output phase's channel
    emit_line(e, "            for (int j = 0; j < PB; j++) acc[b][j] = (vec){0} + %s[(o0 + b) %% C];", bias);
  else if (bias)
    emit_line(e, "            for (int j = 0; j < PB; j++) acc[b][j] = (vec){0} + %s[o0 + b];", bias);
  else
    emit_line(e, "            for (int j = 0; j < PB; j++) acc[b][j] = (vec){0};");
  if (ph && ph->transposed) emit_line(e, "          const uint64_t taps = TAPS[o0 / C];  // the block's phase");
  emit_line(e, "          for (int c = 0; c < CI; c++) {");
  emit_line(e, "            const real *restrict wc = wp + (o0 * CI + c) * K * K;");
  if (ph && !ph->transposed) emit_line(e, "            const uint64_t taps = TAPS[c / C];  // the plane's phase");
  emit_line(e, "#pragma GCC unroll 9");
  emit_line(e, "            for (int t = 0; t < K * K; t++) {");
  if (ph) emit_line(e, "              if (!(taps >> t %% 64 & 1)) continue;");
  emit_line(e, "              const real *src = &plane[c][p0 + t / K * PW + t %% K];");
  emit_line(e, "              vec xv[PB];");
  emit_line(e, "#pragma GCC unroll 8");
  emit_line(e, "              for (int j = 0; j < PB; j++) memcpy(&xv[j], src + j * VL, sizeof(vec));");
  emit_line(e, "#pragma GCC unroll 8");
  emit_line(e, "              for (int b = 0; b < OB; b++) {");
  emit_line(e, "                const real wv = wc[b * CI * K * K + t];");
  emit_line(e, "#pragma GCC unroll 8");
  emit_line(e, "                for (int j = 0; j < PB; j++) acc[b][j] += wv * xv[j];");
  emit_line(e, "              }");
  emit_line(e, "            }");
  emit_line(e, "          }");
  emit_line(e, "#pragma GCC unroll 8");
  emit_line(e, "          for (int b = 0; b < OB; b++)");
  emit_line(e, "#pragma GCC unroll 8");
  emit_line(e, "            for (int j = 0; j < PB; j++) memcpy(&wide[b][p0 + j * VL], &acc[b][j], sizeof(vec));");
  emit_line(e, "        }");
  if (ph && ph->transposed) {  // each output phase to its rows and columns
    emit_line(e, "        for (int b = 0; b < OB; b++) {");
    emit_line(e, "          const int c = (o0 + b) %% C, ry = (o0 + b) / C / S, rx = (o0 + b) / C %% S;");
    emit_line(e, "          for (int j = 0; j < OH; j++) {");
    emit_line(e, "            const int iy = S * (j + J0Y) + ry - PT;");
    emit_line(e, "            if (iy < 0 || iy >= H) continue;");
    emit_line(e, "            for (int jx = 0; jx < OW; jx++) {");
    emit_line(e, "              const int ix = S * (jx + J0X) + rx - PL;");
    emit_line(e, "              if (ix >= 0 && ix < W) yi[(c * H + iy) * W + ix] = wide[b][j * PW + jx];");
    emit_line(e, "            }");
    emit_line(e, "          }");
    emit_line(e, "        }");
    emit_line(e, "      }");
    emit_line(e, "    }");
    emit_line(e, "  }");
    return;
  }
  emit_line(e, "        for (int b = 0; b < OB; b++)");
  emit_line(e, "          for (int y = 0; y < OH; y++)");
  if (!epilogue) {
    emit_line(e, "            memcpy(yi + ((o0 + b) * OH + y) * OW, &wide[b][y * PW], sizeof(real) * OW);");
  } else {
    emit_line(e, "            for (int xx = 0; xx < OW; xx++) {");
    emit_line(e, "              const size_t at = ((size_t)i * CO + o0 + b) * OH * OW + y * OW + xx;  // in the batch");
    emit_line(e, "              (void)at;  // read by epilogues with other operands");
    emit_line(e, "              const real v0 = wide[b][y * PW + xx];");
    for (int m = 1; m < epilogue->group->n_members; m++) {
      emit_format(e, "              const real v%d = ", m);
      expand_member(e, epilogue->group, m, epilogue->inputs, epilogue->n_inputs);
      emit_format(e, ";  // %s\n", op_name(e->graph->nodes[epilogue->group->members[m]].op));
    }
    emit_line(e, "              yi[((o0 + b) * OH + y) * OW + xx] = v%d;", epilogue->group->n_members - 1);
    emit_line(e, "            }");
  }
  emit_line(e, "      }");
  emit_line(e, "    }");
  emit_line(e, "  }");
}

// The plain forward convolution: out[F][OH][OW] from in[C][H][W] and
// w[F][C][K][K], plus bias[F] when given.
static void emit_conv_ref(Emitter *e, ConvGeom c, const char *bias, const char *in, const char *w, const char *out) {
  emit_geom_enum(e, c);
  emit_line(e, "#pragma omp parallel for schedule(static)");
  emit_line(e, "  for (int i = 0; i < n; i++)");
  emit_line(e, "    for (int f = 0; f < F; f++)");
  emit_line(e, "      for (int oy = 0; oy < OH; oy++)");
  emit_line(e, "        for (int ox = 0; ox < OW; ox++) {");
  emit_line(e, "          real sum = %s;", bias ? "bias[f]" : "0");
  emit_line(e, "          for (int c = 0; c < C; c++)");
  emit_line(e, "            for (int ky = 0; ky < K; ky++) {");
  emit_line(e, "              const int iy = oy * S + ky - PT;");
  emit_line(e, "              if (iy < 0 || iy >= H) continue;");
  emit_line(e, "              for (int kx = 0; kx < K; kx++) {");
  emit_line(e, "                const int ix = ox * S + kx - PL;");
  emit_line(e, "                if (ix < 0 || ix >= W) continue;");
  emit_line(e, "                sum += %s[((f * C + c) * K + ky) * K + kx] * %s[(((size_t)i * C + c) * H + iy) * W + ix];", w, in);
  emit_line(e, "              }");
  emit_line(e, "            }");
  emit_line(e, "          %s[(((size_t)i * F + f) * OH + oy) * OW + ox] = sum;", out);
  emit_line(e, "        }");
}

// The plain transposed convolution: out[C][H][W] from in[F][OH][OW] (the
// conv's output side) and w[F][C][K][K], plus bias[C] when given.
static void emit_conv_transpose_ref(Emitter *e, ConvGeom c, const char *bias, const char *in, const char *w,
                                    const char *out) {
  emit_geom_enum(e, c);
  emit_line(e, "#pragma omp parallel for schedule(static)");
  emit_line(e, "  for (int i = 0; i < n; i++) {");
  emit_line(e, "    real *restrict xo = %s + (size_t)i * C * H * W;", out);
  emit_line(e, "    for (int c = 0; c < C; c++)");
  emit_line(e, "      for (int p = 0; p < H * W; p++) xo[c * H * W + p] = %s;", bias ? "bias[c]" : "0");
  emit_line(e, "    for (int f = 0; f < F; f++)");
  emit_line(e, "      for (int oy = 0; oy < OH; oy++)");
  emit_line(e, "        for (int ox = 0; ox < OW; ox++) {");
  emit_line(e, "          const real g = %s[(((size_t)i * F + f) * OH + oy) * OW + ox];", in);
  emit_line(e, "          for (int c = 0; c < C; c++)");
  emit_line(e, "            for (int ky = 0; ky < K; ky++) {");
  emit_line(e, "              const int iy = oy * S + ky - PT;");
  emit_line(e, "              if (iy < 0 || iy >= H) continue;");
  emit_line(e, "              for (int kx = 0; kx < K; kx++) {");
  emit_line(e, "                const int ix = ox * S + kx - PL;");
  emit_line(e, "                if (ix < 0 || ix >= W) continue;");
  emit_line(e, "                xo[(c * H + iy) * W + ix] += g * %s[((f * C + c) * K + ky) * K + kx];", w);
  emit_line(e, "              }");
  emit_line(e, "            }");
  emit_line(e, "        }");
  emit_line(e, "  }");
}

// The direct kernel of a forward convolution, at any stride.
static void emit_direct_forward(Emitter *e, ConvGeom c, const char *bias, const char *in, const char *w,
                                const char *out, const Epilogue *epilogue) {
  if (c.s == 1) {
    emit_direct(e, c.c, c.h, c.w, c.f, c.oh, c.ow, c.k, c.pt, c.pl, false, bias, in, w, out, epilogue, NULL);
    return;
  }
  Phases ph = {.g = c};
  emit_direct(e, c.c * c.s * c.s, c.h, c.w, c.f, c.oh, c.ow, phase_taps(c), 0, 0, false, bias, in, w, out, epilogue,
              &ph);
}

// A forward convolution (conv, or a deconv's data gradient).
static void emit_forward(Emitter *e, ConvGeom c, const char *bias, const char *in, const char *w, const char *out) {
  if (fast(e, c))
    emit_direct_forward(e, c, bias, in, w, out, NULL);
  else
    emit_conv_ref(e, c, bias, in, w, out);
}

// A transposed convolution (a conv's data gradient, or a deconv): at stride
// 1, the forward kernel over the output side padded by K - 1 - PT on top; at
// a stride, over the input's phases (Phases): output phase row j (from
// J0Y = PT / S) is input row j + J0Y - q for tap q, so the input is padded by
// K' - 1 - J0Y on top.
static void emit_transpose(Emitter *e, ConvGeom c, const char *bias, const char *in, const char *w, const char *out) {
  if (!fast(e, c)) {
    emit_conv_transpose_ref(e, c, bias, in, w, out);
  } else if (c.s == 1) {
    emit_direct(e, c.f, c.oh, c.ow, c.c, c.h, c.w, c.k, c.k - 1 - c.pt, c.k - 1 - c.pl, true, bias, in, w, out, NULL,
                NULL);
  } else {
    Phases ph = {.g = c, .transposed = true, .j0y = c.pt / c.s, .j0x = c.pl / c.s};
    int kp = phase_taps(c);
    int jh = (c.h + c.pt - 1) / c.s - ph.j0y + 1, jw = (c.w + c.pl - 1) / c.s - ph.j0x + 1;
    emit_direct(e, c.f, c.oh, c.ow, c.c * c.s * c.s, jh, jw, kp, kp - 1 - ph.j0y, kp - 1 - ph.j0x, true, bias, in, w,
                out, NULL, &ph);
  }
}

static void emit_conv(Emitter *e, const Node *node) {
  emit_kernel_open(e, node, (const char *const[]){"x", "kernel", "bias", "y"},
                   "y[n][F][OH][OW] = bias[F] + sum over C, K, K of kernel[F][C][K][K] * x[n][C][OH*S+K-PT][OW*S+K-PL]");
  emit_forward(e, node_geom(e->graph, node), "bias", "x", "kernel", "y");
  emit_line(e, "}");
}

// At any stride: a strided conv's direct kernel writes the conv's own output
// rows (only a transposed one scatters phases).
static bool conv_takes_epilogue(const Node *node) { return node->op == OP_CONV; }

// A conv and the elementwise ops that alone read it (its activation): the
// direct kernel applies them as each value leaves the accumulators, so the
// conv's own output is never written.
static void emit_conv_group(Emitter *e, const char *name, const Group *group) {
  const Graph *g = e->graph;
  int inputs[32];
  int n_inputs = group_inputs(g, group, inputs);
  emit_group_comment(e, group, inputs, n_inputs);
  emit_line(e, "// out[n][F][OH][OW] = epilogue(c[F] + sum over C, K, K of b[F][C][K][K] * a[n][C][OH+K-PT][OW+K-PL])");
  emit_format(e, "static void %s(int n, ", name);
  for (int i = 0; i < n_inputs; i++) emit_format(e, "const real *restrict %s, ", group_param_name(i));
  emit_format(e, "real *restrict out) {\n");
  ConvGeom c = node_geom(g, &g->nodes[group->members[0]]);
  Epilogue epilogue = {group, inputs, n_inputs};
  emit_direct_forward(e, c, "c", "a", "b", "out", &epilogue);
  emit_line(e, "}");
}

static void emit_conv_grad_input(Emitter *e, const Node *node) {
  emit_kernel_open(e, node, (const char *const[]){"dy", "kernel", "x", "dx"},
                   "dx[n][C][H][W] = the transposed convolution of dy[n][F][OH][OW] with kernel[F][C][K][K]");
  emit_line(e, "  (void)x;  // gives the shape only");
  emit_transpose(e, node_geom(e->graph, node), NULL, "dy", "kernel", "dx");
  emit_line(e, "}");
}

static void emit_deconv(Emitter *e, const Node *node) {
  emit_kernel_open(e, node, (const char *const[]){"x", "kernel", "bias", "y"},
                   "y[n][C][H][W] = bias[C] + the transposed convolution of x[n][F][OH][OW] with kernel[F][C][K][K]");
  emit_transpose(e, node_geom(e->graph, node), "bias", "x", "kernel", "y");
  emit_line(e, "}");
}

static void emit_deconv_grad_input(Emitter *e, const Node *node) {
  emit_kernel_open(e, node, (const char *const[]){"dy", "kernel", "x", "dx"},
                   "dx[n][F][OH][OW] = the convolution of dy[n][C][H][W] with kernel[F][C][K][K]");
  emit_line(e, "  (void)x;  // gives the shape only");
  emit_forward(e, node_geom(e->graph, node), NULL, "dy", "kernel", "dx");
  emit_line(e, "}");
}

// dkernel[F][C][K][K] = sum over samples and output pixels of dy * x at the
// tap. Samples are split in CHUNKS fixed ranges summed in order: the result
// does not depend on the number of threads.
static void emit_conv_grad_kernel(Emitter *e, const Node *node) {
  ConvGeom c = node_geom(e->graph, node);
  emit_kernel_open(e, node, (const char *const[]){"x", "dy", "dkernel"},
                   "dkernel[F][C][K][K] = sum over n, OH, OW of dy[n][F][OH][OW] * x[n][C][OH*S+K-PT][OW*S+K-PL]");
  emit_geom_enum(e, c);
  if (!fast(e, c)) {
    emit_line(e, "#pragma omp parallel for schedule(static)");
    emit_line(e, "  for (int j = 0; j < F * C * K * K; j++) {");
    emit_line(e, "    const int f = j / (C * K * K), c = j / (K * K) %% C, ky = j / K %% K, kx = j %% K;");
    emit_line(e, "    real sum = 0;");
    emit_line(e, "    for (int i = 0; i < n; i++)");
    emit_line(e, "      for (int oy = 0; oy < OH; oy++) {");
    emit_line(e, "        const int iy = oy * S + ky - PT;");
    emit_line(e, "        if (iy < 0 || iy >= H) continue;");
    emit_line(e, "        for (int ox = 0; ox < OW; ox++) {");
    emit_line(e, "          const int ix = ox * S + kx - PL;");
    emit_line(e, "          if (ix < 0 || ix >= W) continue;");
    emit_line(e, "          sum += dy[(((size_t)i * F + f) * OH + oy) * OW + ox] * x[(((size_t)i * C + c) * H + iy) * W + ix];");
    emit_line(e, "        }");
    emit_line(e, "      }");
    emit_line(e, "    dkernel[j] = sum;");
    emit_line(e, "  }");
    emit_line(e, "}");
    return;
  }
  // At a stride, over x's phases (Phases, above): CP = C * S * S phase planes
  // and KP x KP taps, each phase tap's sum going to the tap S * q + r of the
  // conv's kernel, those past K dropped. At stride 1, CP = C and KP = K.
  const int kp = phase_taps(c), cp = c.c * c.s * c.s;
  const size_t real_size = emit_real_bytes(e), vl = 64 / real_size;
  PlaneSize p = plane_size(c.oh, c.ow + kp - 1, kp, vl, vl);
  // G samples side by side, SLOT apart, go through the loop over pixels as
  // one: on small images (7 x 7: 7 vectors a row of filters) the lane sums
  // at its end cost as much as the loop. About 512 pixels a pass, in at most
  // 1 MiB of each thread's stack.
  const size_t slot = (p.plane + vl - 1) / vl * vl, per_sample = slot * (size_t)(cp + c.f) * real_size;
  size_t groups = (512 + p.np - 1) / p.np;
  if (groups > 8) groups = 8;
  while (groups > 1 && groups * per_sample > ((size_t)1 << 20)) groups--;
  emit_stack_use(e, groups * per_sample);  // each thread's plane and wide
  emit_line(e, "  enum { CP = %d, KP = %d };  // phase planes and taps", cp, kp);
  // FB filters at once share each tap's load of the plane: FB * KP * KP
  // accumulators, FB gradient vectors and one of the plane in the 32 vector
  // registers of AVX-512 or the 16 of AVX2 and SSE2 (AERT_NATIVE_BYTES).
  const int taps = kp * kp;
  int fb_wide = largest_divisor_at_most(c.f, 29 / (taps + 1));
  int fb_narrow = largest_divisor_at_most(c.f, 13 / (taps + 1));
  emit_line(e, "  enum { PH = OH + KP - 1, PW = OW + KP - 1, VL = AERT_NATIVE_BYTES / (int)sizeof(real), CHUNKS = 16 };");
  emit_line(e, "  enum { FB = AERT_NATIVE_BYTES == 64 ? %d : %d };  // filters a block", fb_wide, fb_narrow);
  emit_line(e, "  // NP: the OH * PW output pixels on rows of width PW, rounded up to whole vectors of any width;");
  emit_line(e, "  // PLANE: NP and room past them for every tap's read, (KP - 1) * PW + KP - 1 + VL");
  emit_line(e, "  enum { NP = %zu, PLANE = %zu };", p.np, p.plane);
  emit_line(e, "  // G samples a pass over the pixels, each in a SLOT (PLANE rounded up to whole vectors)");
  emit_line(e, "  enum { G = %zu, SLOT = %zu };", groups, slot);
  emit_line(e, "  typedef real vec __attribute__((vector_size(AERT_NATIVE_BYTES)));");
  emit_line(e, "  static real partial[CHUNKS * F * CP * KP * KP];  // each chunk's sums (those of zero taps stay 0)");
  if (c.s > 1) emit_tap_masks(e, c, false);
  emit_line(e, "#pragma omp parallel");
  emit_line(e, "  {");
  emit_line(e, "    real plane[CP][G * SLOT] __attribute__((aligned(64)));");
  emit_line(e, "    real wide[F][G * SLOT] __attribute__((aligned(64)));");
  emit_line(e, "    memset(plane, 0, sizeof plane);  // the borders stay zero");
  emit_line(e, "    memset(wide, 0, sizeof wide);    // the columns past OW and the slots' tails stay zero");
  emit_line(e, "#pragma omp for schedule(static)");
  emit_line(e, "    for (int chunk = 0; chunk < CHUNKS; chunk++) {");
  emit_line(e, "      real *restrict sums = partial + (size_t)chunk * F * CP * KP * KP;");
  emit_line(e, "      memset(sums, 0, sizeof(real) * F * CP * KP * KP);");
  emit_line(e, "      const int last = n * (chunk + 1) / CHUNKS;");
  emit_line(e, "      for (int i0 = n * chunk / CHUNKS; i0 < last; i0 += G) {");
  emit_line(e, "        const int samples = last - i0 < G ? last - i0 : G;");
  emit_line(e, "        for (int s = 0; s < samples; s++) {");
  emit_line(e, "          const size_t i = (size_t)i0 + s;");
  emit_line(e, "          const real *restrict xi = x + i * C * H * W;");
  if (c.s == 1) {
    emit_line(e, "          for (int c = 0; c < C; c++)");
    emit_line(e, "            for (int y = 0; y < H; y++)");
    emit_line(e, "              memcpy(&plane[c][s * SLOT + (y + PT) * PW + PL], xi + (c * H + y) * W, sizeof(real) * W);");
  } else {
    emit_phase_gather(e, "          ", "s * SLOT + ", "xi");
  }
  emit_line(e, "          for (int f = 0; f < F; f++)");
  emit_line(e, "            for (int y = 0; y < OH; y++)");
  emit_line(e, "              memcpy(&wide[f][s * SLOT + y * PW], dy + ((i * F + f) * OH + y) * OW, sizeof(real) * OW);");
  emit_line(e, "        }");
  emit_line(e, "        // up to the last sample's pixels: its taps read no further than its slot");
  emit_line(e, "        const int end = (samples - 1) * SLOT + NP;");
  emit_line(e, "        for (int f0 = 0; f0 < F; f0 += FB)");
  emit_line(e, "          for (int c = 0; c < CP; c++) {");
  if (c.s > 1) emit_line(e, "            const uint64_t taps = TAPS[c / C];  // the plane's phase");
  emit_line(e, "            vec acc[FB][KP * KP];");
  emit_line(e, "#pragma GCC unroll 16");
  emit_line(e, "            for (int b = 0; b < FB; b++)");
  emit_line(e, "#pragma GCC unroll 25");
  emit_line(e, "              for (int t = 0; t < KP * KP; t++) acc[b][t] = (vec){0};");
  emit_line(e, "            for (int p = 0; p < end; p += VL) {");
  emit_line(e, "              vec g[FB];");
  emit_line(e, "#pragma GCC unroll 16");
  emit_line(e, "              for (int b = 0; b < FB; b++) memcpy(&g[b], &wide[f0 + b][p], sizeof(vec));");
  emit_line(e, "#pragma GCC unroll 25");
  emit_line(e, "              for (int t = 0; t < KP * KP; t++) {");
  if (c.s > 1) emit_line(e, "                if (!(taps >> t %% 64 & 1)) continue;");
  emit_line(e, "                vec v;");
  emit_line(e, "                memcpy(&v, &plane[c][p + t / KP * PW + t %% KP], sizeof v);");
  emit_line(e, "#pragma GCC unroll 16");
  emit_line(e, "                for (int b = 0; b < FB; b++) acc[b][t] += g[b] * v;");
  emit_line(e, "              }");
  emit_line(e, "            }");
  emit_line(e, "            for (int b = 0; b < FB; b++)");
  emit_line(e, "              for (int t = 0; t < KP * KP; t++) {");
  if (c.s > 1) emit_line(e, "                if (!(taps >> t %% 64 & 1)) continue;");
  emit_line(e, "                real s = 0;");
  emit_line(e, "                for (int l = 0; l < VL; l++) s += acc[b][t][l];");
  emit_line(e, "                sums[((f0 + b) * CP + c) * KP * KP + t] += s;");
  emit_line(e, "              }");
  emit_line(e, "          }");
  emit_line(e, "      }");
  emit_line(e, "    }");
  emit_line(e, "  }");
  emit_line(e, "  for (int j = 0; j < F * C * K * K; j++) {");
  if (c.s == 1) {
    emit_line(e, "    const size_t at = j;");
  } else {  // tap (ky, kx) of (f, c) is phase tap (ky / S, kx / S) of phase plane (ky % S * S + kx % S) * C + c
    emit_line(e, "    const int f = j / (C * K * K), c = j / (K * K) %% C, ky = j / K %% K, kx = j %% K;");
    emit_line(e, "    const size_t at = ((size_t)(f * CP + (ky %% S * S + kx %% S) * C + c) * KP + ky / S) * KP + kx / S;");
  }
  emit_line(e, "    real s = 0;");
  emit_line(e, "    for (int chunk = 0; chunk < CHUNKS; chunk++) s += partial[(size_t)chunk * F * CP * KP * KP + at];");
  emit_line(e, "    dkernel[j] = s;");
  emit_line(e, "  }");
  emit_line(e, "}");
}

static void emit_conv_grad_bias(Emitter *e, const Node *node) {
  Shape dy = input_shape(e->graph, node, 0);
  emit_kernel_open(e, node, (const char *const[]){"dy", "dbias"}, "dbias[F] = sum over n, OH, OW of dy[n][F][OH][OW]");
  emit_line(e, "  enum { F = %d, P = %d };", dy.dims[0], dy.dims[1] * dy.dims[2]);
  emit_line(e, "#pragma omp parallel for schedule(static)");
  emit_line(e, "  for (int f = 0; f < F; f++) {");
  emit_line(e, "    real sum = 0;");
  emit_line(e, "    for (int i = 0; i < n; i++) {");
  emit_line(e, "      const real *restrict d = dy + ((size_t)i * F + f) * P;");
  emit_line(e, "      real s = 0;");
  emit_line(e, "#pragma omp simd reduction(+ : s)");
  emit_line(e, "      for (int p = 0; p < P; p++) s += d[p];");
  emit_line(e, "      sum += s;");
  emit_line(e, "    }");
  emit_line(e, "    dbias[f] = sum;");
  emit_line(e, "  }");
  emit_line(e, "}");
}

// The padding above and left of x that a maxpool/unpool/unpool_grad node's

// --------------------------------------------------------------- windows
// The conv's input window of output o starts at o * S - PT (PL for columns);
// a deconv is the transpose of the conv from its output to its input, so
// input i writes the output window i * S - PT ... (node_geom's PT).
static bool conv_window(const Graph *g, const Node *node, int input, int axis, Window *out) {
  if (input != 0) return false;  // the kernel and the bias have no positions
  ConvGeom c = node_geom(g, node);
  *out = (Window){.size = c.k, .stride = c.s, .pad = axis == 0 ? c.pt : c.pl, .transposed = node->op == OP_DECONV};
  return true;
}

// ------------------------------------------------------------------- rows
// attr: {stride, pad (0 same, 1 valid), k (the gradients)}.
const OpInfo OP_CONV_row = {.n_inputs = 3, .kernel = KERNEL_CUSTOM, .shape = shape_conv, .emit = emit_conv,
                            .vjp = vjp_conv, .flops = flops_conv_family, .pure = true, .window = conv_window,
                            .takes_epilogue = conv_takes_epilogue, .emit_group = emit_conv_group,
                            .makes_weights = true};
const OpInfo OP_CONV_GRAD_INPUT_row = {.n_inputs = 3, .kernel = KERNEL_CUSTOM, .shape = shape_like_third,
                                       .emit = emit_conv_grad_input, .vjp = vjp_conv_grad_input,
                                       .flops = flops_conv_family, .pure = true};
const OpInfo OP_CONV_GRAD_KERNEL_row = {.n_inputs = 2, .kernel = KERNEL_CUSTOM, .shape = shape_conv_grad_kernel,
                                        .emit = emit_conv_grad_kernel, .flops = flops_conv_family, .pure = true};
const OpInfo OP_CONV_GRAD_BIAS_row = {.n_inputs = 1, .kernel = KERNEL_CUSTOM, .shape = shape_conv_grad_bias,
                                      .emit = emit_conv_grad_bias, .flops = flops_input_elements, .pure = true};
const OpInfo OP_DECONV_row = {.n_inputs = 3, .kernel = KERNEL_CUSTOM, .shape = shape_deconv, .emit = emit_deconv,
                              .vjp = vjp_deconv, .flops = flops_conv_family, .pure = true, .window = conv_window,
                              .makes_weights = true};
const OpInfo OP_DECONV_GRAD_INPUT_row = {.n_inputs = 3, .kernel = KERNEL_CUSTOM, .shape = shape_like_third,
                                         .emit = emit_deconv_grad_input, .vjp = vjp_conv_grad_input,
                                         .flops = flops_conv_family, .pure = true};
