// norm.c — batch normalization: batchnorm(x) normalizes each unit of a flat
// value [units] or each channel of an image [channels, h, w] over the batch
// (and the image's positions), then scales and shifts it by learned
// parameters, as PyTorch's BatchNorm1d/2d in training mode: the batch's
// biased variance in the normalization, eps 1e-5. The same kernel moves the
// running mean and variance (the unbiased variance, momentum 0.1), which
// batchnorm_eval uses instead at inference (passes/inference.c makes it from
// OpInfo.inference_op). Its inputs are (x, scale, shift, running mean,
// running variance); the running statistics are parameters no step trains
// (Param.state). The loops are real C in runtime/aert_kernels.h
// (aert_batchnorm_*): each channel is summed by one thread, in batch order,
// so the statistics do not depend on the number of threads. The gradients
// recompute the batch's statistics from x, as kl_sparsity's does its mean.
// Pure like a dense layer: a net applied twice to the same value (the code
// that front/roles.c finds by applying `encoder` to the input) is one node,
// which moves the running statistics once a batch.
#include "ops.h"

enum { BN_EPS, BN_MOMENTUM };  // attributes: eps, momentum

// A value [units] (units channels of one position) or [c, h, w].
static void channels_of(Shape s, int *channels, int *spatial) {
  *channels = s.dims[0];
  *spatial = s.rank == 3 ? s.dims[1] * s.dims[2] : 1;
}

// ------------------------------------------------------------- shape rules
// batchnorm(x, scale, shift, running_mean, running_var) and batchnorm_eval:
// x is [units] or [c, h, w] per sample, the others [units] or [c].
static bool shape_batchnorm(Graph *graph, Node *node, Shape *out) {
  Shape x = input_shape(graph, node, 0);
  if (!x.batched || (x.rank != 1 && x.rank != 3)) {  // front/layers.c says more
    char s[64];
    shape_format(x, s, sizeof s);
    diag_error(node->loc, "batchnorm needs [units] or [channels, height, width] per sample, but got %s", s);
    return false;
  }
  for (int i = 1; i < node->n_inputs; i++) {
    Shape p = input_shape(graph, node, i);
    if (p.batched || p.rank != 1 || p.dims[0] != x.dims[0]) {
      diag_error(node->loc, "batchnorm: its statistics and scale must have one value a channel (%d)", x.dims[0]);
      return false;
    }
  }
  *out = x;
  return true;
}

// batchnorm_grad_scale(x, dy), batchnorm_grad_shift(dy): one value a channel.
static bool shape_per_channel(Graph *graph, Node *node, Shape *out) {
  *out = (Shape){.rank = 1, .dims = {input_shape(graph, node, 0).dims[0]}};
  return true;
}

// ------------------------------------------------------------------ kernels
// Opens the kernel and names its sizes: CHANNELS, SPATIAL (positions a channel has in one sample).
static void open_kernel(Emitter *e, const Node *node, const char *const *names, const char *formula, unsigned written,
                        Shape x) {
  int channels, spatial;
  channels_of(x, &channels, &spatial);
  emit_kernel_open_writing(e, node, names, formula, written);
  emit_line(e, "  enum { CHANNELS = %d, SPATIAL = %d };", channels, spatial);
}

static void emit_batchnorm(Emitter *e, const Node *node) {
  open_kernel(e, node, (const char *const[]){"x", "scale", "shift", "running_mean", "running_var", "y"},
              "y = (x - mean) / sqrt(var + eps) * scale + shift, the batch's statistics of each channel; "
              "running = (1 - momentum) * running + momentum * the batch's (unbiased variance)",
              1u << 3 | 1u << 4, node->shape);
  emit_line(e, "  aert_batchnorm_train(n, CHANNELS, SPATIAL, x, scale, shift, running_mean, running_var, %.17g, %.17g, y);",
            node->attr[BN_EPS], node->attr[BN_MOMENTUM]);
  emit_line(e, "}");
}

static void emit_batchnorm_eval(Emitter *e, const Node *node) {
  open_kernel(e, node, (const char *const[]){"x", "scale", "shift", "running_mean", "running_var", "y"},
              "y = (x - running_mean) / sqrt(running_var + eps) * scale + shift (inference)", 0, node->shape);
  emit_line(e, "  aert_batchnorm_infer(n, CHANNELS, SPATIAL, x, scale, shift, running_mean, running_var, %.17g, y);",
            node->attr[BN_EPS]);
  emit_line(e, "}");
}

static void emit_batchnorm_grad_input(Emitter *e, const Node *node) {
  open_kernel(e, node, (const char *const[]){"x", "scale", "dy", "dx"},
              "dx = scale / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat)), means over each channel", 0,
              node->shape);
  emit_line(e, "  aert_batchnorm_grad_input(n, CHANNELS, SPATIAL, x, scale, dy, %.17g, dx);", node->attr[BN_EPS]);
  emit_line(e, "}");
}

static void emit_batchnorm_grad_scale(Emitter *e, const Node *node) {
  const Graph *g = e->graph;
  open_kernel(e, node, (const char *const[]){"x", "dy", "dscale"}, "dscale[c] = sum over the batch of dy * xhat", 0,
              g->nodes[node->inputs[0]].shape);
  emit_line(e, "  aert_batchnorm_grad_scale(n, CHANNELS, SPATIAL, x, dy, %.17g, dscale);", node->attr[BN_EPS]);
  emit_line(e, "}");
}

static void emit_batchnorm_grad_shift(Emitter *e, const Node *node) {
  const Graph *g = e->graph;
  open_kernel(e, node, (const char *const[]){"dy", "dshift"}, "dshift[c] = sum over the batch of dy", 0,
              g->nodes[node->inputs[0]].shape);
  emit_line(e, "  aert_batchnorm_grad_shift(n, CHANNELS, SPATIAL, dy, dshift);");
  emit_line(e, "}");
}

// ------------------------------------------------ vector-Jacobian rule
// Through the batch's mean and variance (training mode); none to the
// running statistics, which no step trains.
static void vjp_batchnorm(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  int x = node->inputs[0], scale = node->inputs[1];
  if (needs[0]) out[0] = graph_add_attr(g, OP_BATCHNORM_GRAD_INPUT, (int[]){x, scale, grad}, 3, node->attr, node->loc);
  if (needs[1]) out[1] = graph_add_attr(g, OP_BATCHNORM_GRAD_SCALE, (int[]){x, grad}, 2, node->attr, node->loc);
  if (needs[2]) out[2] = graph_add_attr(g, OP_BATCHNORM_GRAD_SHIFT, (int[]){grad}, 1, node->attr, node->loc);
  if (needs[3]) out[3] = VJP_ZERO;
  if (needs[4]) out[4] = VJP_ZERO;
}

// ------------------------------------------------------------------ FLOPs
// Per element: two passes for the statistics, one for the output (the
// gradient of the input: two more for its sums).
static double flops_batchnorm(const Graph *g, const Node *node) {
  (void)g;
  return 6.0 * (double)shape_size(node->shape);
}
static double flops_batchnorm_grad(const Graph *g, const Node *node) {
  return 4.0 * (double)shape_size(g->nodes[node->inputs[0]].shape);
}

// ------------------------------------------------------------------- rows
const OpInfo OP_BATCHNORM_row = {.n_inputs = 5, .kernel = KERNEL_CUSTOM, .emit = emit_batchnorm,
                                 .shape = shape_batchnorm, .vjp = vjp_batchnorm, .flops = flops_batchnorm,
                                 .inference_op = OP_BATCHNORM_EVAL, .pure = true,
                                 .batch_statistics = "the mean and variance of each unit or channel",
                                 .makes_weights = true};
const OpInfo OP_BATCHNORM_EVAL_row = {.n_inputs = 5, .kernel = KERNEL_CUSTOM, .emit = emit_batchnorm_eval,
                                      .shape = shape_batchnorm, .flops = flops_batchnorm, .pure = true};
const OpInfo OP_BATCHNORM_GRAD_INPUT_row = {.n_inputs = 3, .kernel = KERNEL_CUSTOM, .emit = emit_batchnorm_grad_input,
                                            .shape = shape_same, .flops = flops_batchnorm_grad, .pure = true};
const OpInfo OP_BATCHNORM_GRAD_SCALE_row = {.n_inputs = 2, .kernel = KERNEL_CUSTOM, .emit = emit_batchnorm_grad_scale,
                                            .shape = shape_per_channel, .flops = flops_batchnorm_grad, .pure = true};
const OpInfo OP_BATCHNORM_GRAD_SHIFT_row = {.n_inputs = 1, .kernel = KERNEL_CUSTOM, .emit = emit_batchnorm_grad_shift,
                                            .shape = shape_per_channel, .flops = flops_batchnorm_grad, .pure = true};
