// noise.c — corruption (gaussian_noise, masking_noise, salt_pepper),
// dropout, clip and sample_normal. The random ones draw from the run's counter-based
// generator keyed by (seed, batch, node): not pure (two calls draw
// differently), random (the kernel takes a key), and the identity at
// inference. Their mask gradients are random too, keyed by the forward node
// (rng_node), so they see the same draws.
#include "ops.h"

// ------------------------------------------------ vector-Jacobian rules
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
// A mask's gradient is linear in the incoming gradient and applies the same
// mask (the forward node's draws), so its own gradient does too.
static void vjp_mask_gradient(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  (void)needs;
  int id = graph_add_attr(g, node->op, (int[]){grad}, 1, node->attr, node->loc);
  if (id >= 0) g->nodes[id].rng_node = node->rng_node;
  out[0] = id;
}
// clip_grad(x, g) passes g where x is inside [lo, hi]: the same in g, nothing in x.
static void vjp_clip_grad(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  if (needs[0]) out[0] = VJP_ZERO;
  if (needs[1]) out[1] = graph_add_attr(g, OP_CLIP_GRAD, (int[]){node->inputs[0], grad}, 2, node->attr, node->loc);
}
// sample_normal(mean, logvar) = mean + exp(logvar / 2) * eps: the gradient
// passes to the mean, and to logvar as g * (out - mean) / 2 (eps times the
// standard deviation, halved), from the values the forward pass kept.
static void vjp_sample_normal(Graph *g, const Node *node, int grad, const bool *needs, int *out) {
  if (needs[0]) out[0] = grad;
  if (needs[1]) {
    int spread = add2(g, OP_SUB, node->id, node->inputs[0], node->loc);
    int half = add2(g, OP_MUL, spread, graph_add_constant(g, 0.5, node->loc), node->loc);
    out[1] = add2(g, OP_MUL, grad, half, node->loc);
  }
}

// ------------------------------------------------------------------- rows
// The reparameterization trick: random while training, the mean at inference.
const OpInfo OP_SAMPLE_NORMAL_row = {.n_inputs = 2, .kernel = KERNEL_ELEMENTWISE,
                                     .expr = "$0 + exp($1 * (real)0.5) * $normal", .flops = flops_elements,
                                     .shape = shape_same, .vjp = vjp_sample_normal, .random = true,
                                     .identity_at_inference = true};
const OpInfo OP_GAUSSIAN_NOISE_row = {.n_inputs = 1, .kernel = KERNEL_ELEMENTWISE, .expr = "$0 + $attr0 * $normal",
                                      .flops = flops_elements, .shape = shape_same, .vjp = vjp_gaussian_noise,
                                      .random = true, .identity_at_inference = true};
const OpInfo OP_MASKING_NOISE_row = {.n_inputs = 1, .kernel = KERNEL_ELEMENTWISE,
                                     .expr = "$uniform0 < $attr0 ? 0 : $0", .flops = flops_elements,
                                     .shape = shape_same, .vjp = vjp_masking_noise, .random = true,
                                     .identity_at_inference = true};
const OpInfo OP_MASKING_NOISE_GRAD_row = {.n_inputs = 1, .kernel = KERNEL_ELEMENTWISE,
                                          .expr = "$uniform0 < $attr0 ? 0 : $0", .flops = flops_elements,
                                          .shape = shape_same, .random = true,
    .vjp = vjp_mask_gradient, .identity_at_inference = true};
const OpInfo OP_SALT_PEPPER_row = {.n_inputs = 1, .kernel = KERNEL_ELEMENTWISE,
                                   .expr = "$uniform0 < $attr0 ? ($uniform1 < (real)0.5 ? 0 : 1) : $0",
                                   .flops = flops_elements, .shape = shape_same, .vjp = vjp_salt_pepper,
                                   .random = true, .identity_at_inference = true};
const OpInfo OP_SALT_PEPPER_GRAD_row = {.n_inputs = 1, .kernel = KERNEL_ELEMENTWISE,
                                        .expr = "$uniform0 < $attr0 ? 0 : $0", .flops = flops_elements,
                                        .shape = shape_same, .random = true,
    .vjp = vjp_mask_gradient, .identity_at_inference = true};
const OpInfo OP_CLIP_row = {.n_inputs = 1, ELEMENTWISE("fmin(fmax($0, $attr0), $attr1)"), .shape = shape_same,
                            .vjp = vjp_clip};
const OpInfo OP_CLIP_GRAD_row = {.n_inputs = 2, ELEMENTWISE("$0 > $attr0 && $0 < $attr1 ? $1 : 0"),
                                 .shape = shape_like_second, .vjp = vjp_clip_grad};
// Inverted dropout, as PyTorch's and Keras's: attr {p, 1 / (1 - p)} (the
// scale computed in double when lowering). In training each element is
// zeroed with probability p and the others are scaled by 1 / (1 - p), so the
// expected value is unchanged; at inference it passes its input through.
// Random like the corruption ops: the gradient reuses the forward draws.
const OpInfo OP_DROPOUT_row = {.n_inputs = 1, .kernel = KERNEL_ELEMENTWISE,
                               .expr = "$uniform0 < $attr0 ? 0 : $0 * $attr1", .flops = flops_elements,
                               .shape = shape_same, .vjp = vjp_dropout, .random = true,
                               .identity_at_inference = true};
const OpInfo OP_DROPOUT_GRAD_row = {.n_inputs = 1, .kernel = KERNEL_ELEMENTWISE,
                                    .expr = "$uniform0 < $attr0 ? 0 : $0 * $attr1", .flops = flops_elements,
                                    .shape = shape_same, .random = true,
    .vjp = vjp_mask_gradient, .identity_at_inference = true};
