// prior.c — priors: gaussian([d], std=1), uniform([d], lo, hi) and
// mixture([d], k, std, radius=4), one sample a batch row. A prior node has
// no input; its batched shape [d] is set when it is made (as the input's
// is). Its draws come from the counter-based generator keyed by (seed,
// batch, node), so every step of a batch sees the same samples, and a prior
// is drawn at inference too (evaluation needs it). The model table carries
// the prior the code is matched against, for histogram, encode --plot and
// prior-match.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

int lower_prior(Graph *g, OpKind op, int dims, const double *numbers, const bool *present, const Loc *locs,
                Loc loc) {
  double attrs[MAX_ATTRS] = {0};
  switch (op) {
  case OP_PRIOR_GAUSSIAN:  // std
    attrs[0] = present[0] ? numbers[0] : 1;
    if (!(attrs[0] > 0) || !isfinite(attrs[0])) {
      diag_error(locs[0], "gaussian: the std must be a positive number");
      return -1;
    }
    break;
  case OP_PRIOR_UNIFORM:  // lo, hi
    attrs[0] = numbers[0], attrs[1] = numbers[1];
    if (!(attrs[0] < attrs[1]) || !isfinite(attrs[0]) || !isfinite(attrs[1])) {
      diag_error(locs[1], "uniform: lo must be below hi");
      return -1;
    }
    break;
  case OP_PRIOR_MIXTURE:  // k, std, radius
    attrs[0] = numbers[0], attrs[1] = numbers[1], attrs[2] = present[2] ? numbers[2] : 4;
    if (attrs[0] != floor(attrs[0]) || attrs[0] < 1 || attrs[0] > 1 << 20) {
      diag_error(locs[0], "mixture: k (the number of gaussians) must be a whole number of at least 1");
      return -1;
    }
    if (!(attrs[1] > 0) || !isfinite(attrs[1])) {
      diag_error(locs[1], "mixture: the std must be a positive number");
      return -1;
    }
    if (!(attrs[2] >= 0) || !isfinite(attrs[2])) {
      diag_error(locs[2], "mixture: the radius must be a number of at least 0");
      return -1;
    }
    if (dims < 2) {
      diag_error(loc, "mixture spaces its gaussians on a circle in the first two dimensions, so it needs at least "
                      "2 dimensions, like mixture([2], 10, 0.5)");
      return -1;
    }
    break;
  default: return -1;
  }
  int id = graph_add_attr(g, op, NULL, 0, attrs, loc);
  if (id >= 0) g->nodes[id].shape = (Shape){.batched = true, .rank = 1, .dims = {dims}};
  return id;
}

// mixture: each row sampled in double by aert_prior_mixture_sample
// (runtime/aert_kernels.h), the sampler aert_prior_sample uses too: the
// runtime draws the prior with the kernel's formulas.
void emit_prior_mixture(Emitter *e, const Node *node) {
  char size[512];
  size_const(e->graph, node->id, size, sizeof size);
  emit_kernel_open(e, node, (const char *const[]){"out"},
                   "out[n][D]: k gaussians of std s centred on a circle of radius r in dims 0, 1; N(0, s^2) beyond");
  emit_line(e, "  enum { D = %s, K = %d };", size, (int)node->attr[0]);
  emit_line(e, "  const double s = %.17g, radius = %.17g;", node->attr[1], node->attr[2]);
  emit_line(e, "  for (int row = 0; row < n; row++) {");
  emit_line(e, "    double values[D];");
  emit_line(e, "    aert_prior_mixture_sample(key, row0 + (uint64_t)row, D, K, s, radius, values);");
  emit_line(e, "    for (int d = 0; d < D; d++) out[(size_t)row * D + d] = (real)values[d];");
  emit_line(e, "  }");
  emit_line(e, "}");
}

// The prior the code is matched against: the first prior of the code's size
// (the first prior when the model has no code), or -1.
int find_prior(const Graph *g) {
  int first = -1;
  size_t code = g->code_node >= 0 ? shape_size(g->nodes[g->code_node].shape) : 0;
  for (int id = 0; id < g->n_nodes; id++) {
    const Node *node = &g->nodes[id];
    if (!op_info(node->op)->prior || node->is_backward) continue;
    if (code && shape_size(node->shape) == code) return id;
    if (first < 0) first = id;
  }
  return code ? -1 : first;
}

void emit_prior_entry(Emitter *e) {
  const Graph *g = e->graph;
  int id = find_prior(g);
  if (id < 0) {
    emit_line(e, "  .prior = {AERT_PRIOR_NONE, 0, {0, 0, 0}, -1},");
    return;
  }
  const Node *node = &g->nodes[id];
  const char *kind = node->op == OP_PRIOR_GAUSSIAN ? "AERT_PRIOR_GAUSSIAN"
                     : node->op == OP_PRIOR_UNIFORM ? "AERT_PRIOR_UNIFORM"
                                                    : "AERT_PRIOR_MIXTURE";
  emit_line(e, "  .prior = {%s, %zu, {%.17g, %.17g, %.17g}, %d},  // %s, line %d", kind, shape_size(node->shape),
            node->attr[0], node->attr[1], node->attr[2], id, node->name, node->loc.line);
}

// ------------------------------------------------------------------- rows
// No input; the batched shape is set when the node is made; random (the same
// draws in every step of a batch), not pure (two calls draw differently),
// and still drawn at inference.
const OpInfo OP_PRIOR_GAUSSIAN_row = {.kernel = KERNEL_ELEMENTWISE, .expr = "$attr0 * $normal", .flops = flops_elements,
                                      .random = true, .prior = true};
const OpInfo OP_PRIOR_UNIFORM_row = {.kernel = KERNEL_ELEMENTWISE, .expr = "$attr0 + ($attr1 - $attr0) * $uniform0",
                                     .flops = flops_elements, .random = true, .prior = true};
const OpInfo OP_PRIOR_MIXTURE_row = {.kernel = KERNEL_CUSTOM, .emit = emit_prior_mixture, .flops = flops_elements,
                                     .random = true, .prior = true};
