// ops.h — what each IR op is: its row in the op table (table.c), and the
// family files that hold a layer's shape rule, vector-Jacobian rule, FLOPs
// and kernel (dense in table.c and gemm.c, conv.c, prior.c). Nodes enter
// the graph through build.c, which applies the shape rules. Above writer/
// (kernels are written through it), below front/ and passes/.
#ifndef AEC_OPS_H
#define AEC_OPS_H

#include "writer.h"

// ------------------------------------------------------------ build.c
// Adds a node after checking its inputs' shapes with the op's shape rule.
// Returns its id, an identical existing node's id (pure ops are shared), or
// -1 after reporting a shape error at `loc`.
int graph_add(Graph *graph, OpKind op, const int *inputs, int n_inputs, Loc loc);
// The same for ops with numeric attributes (attrs: MAX_ATTRS numbers).
int graph_add_attr(Graph *graph, OpKind op, const int *inputs, int n_inputs, const double *attrs, Loc loc);
int graph_add_constant(Graph *graph, double value, Loc loc);

// ------------------------------------------------------------ table.c
// One entry per IR op: its name, arity, shape rule, how its forward kernel is
// written, and its vector-Jacobian rule.

typedef enum KernelKind {
  KERNEL_NONE,         // input, param, constant: storage only
  KERNEL_CUSTOM,       // the op's own emit function
  KERNEL_ELEMENTWISE,  // one loop over the output: out[i] = expr
  KERNEL_REDUCE,       // a scalar: sum over input 0's elements of expr, then divided
} KernelKind;

typedef enum Divisor {
  DIVIDE_BY_ONE,
  DIVIDE_BY_COUNT,  // every element, batch included ($count)
  DIVIDE_BY_ROWS,   // the batch size n for batched values, else 1 ($rows)
} Divisor;

typedef struct OpInfo {
  const char *name;
  KernelKind kernel;
  Divisor divisor;
  int n_inputs;
  // Checks input shapes; returns the output shape, or reports at the node's
  // location and returns false.
  bool (*shape)(Graph *graph, Node *node, Shape *out);
  // KERNEL_CUSTOM: writes the node's kernel function.
  void (*emit)(Emitter *emitter, const Node *node);
  // Adds backward nodes: given the gradient `grad` of the loss with respect
  // to the node's output, sets grads_in[i] to the gradient with respect to
  // input i (or -1), for the inputs whose needs_grad[i] is set.
  void (*vjp)(Graph *graph, const Node *node, int grad, const bool *needs_grad, int *grads_in);
  double (*flops)(const Graph *graph, const Node *node);  // per sample (batched) or per call
  // KERNEL_ELEMENTWISE: the C expression for one output element;
  // KERNEL_REDUCE: the term summed. $0 $1 $2 stand for the inputs' elements
  // (a scalar input is broadcast), $attr0 $attr1 $attr2 for Node.attr,
  // $count and $rows for the divisors above, $per_count and $per_row for
  // their reciprocals (a gradient multiplies by one, hoisted from the loop,
  // rather than dividing every element), $i for the element's index;
  // random ops also have $uniform0 and $uniform1 (two independent U[0,1)
  // draws for the element) and $normal (an N(0,1) draw).
  const char *expr;
  // A loss term written as `rest + log(log_factor)` with log_factor in [1, 2]
  // (LOG_SPLIT_REDUCE sets all three): the fused product-and-loss kernel
  // multiplies a block's factors (at most 14 a column, so at most 2^14) and
  // takes one logarithm a column instead of one an element.
  const char *rest, *log_factor;
  bool pure;    // identical nodes may be shared
  bool random;  // draws from the run's counter-based generator: its kernel takes a key
  bool identity_at_inference;  // corruption: in evaluation, encode and reconstruct it passes its input through
  // A loss (KERNEL_REDUCE) whose gradient op reads the same two inputs: the
  // fusion pass computes both in one pass. OP_INPUT (0) for none.
  OpKind gradient_op;
  // An activation's gradient, zero wherever its incoming gradient ($1) is:
  // after a maxpool's gradient it changes only each window's switch
  // (unpool_takes_gradient).
  bool zero_where_gradient_is;
} OpInfo;

const OpInfo *op_info(OpKind op);
// Member m of a group as a C expression of element `at`: earlier members are v0, v1, ...
void expand_member(Emitter *emitter, const Group *group, int m, const int *inputs, int n_inputs);
// An op's expression with its inputs given as C expressions: a kernel that
// applies the op to values it holds (emit_unpool_gradient_group).
void expand_op_with(Emitter *emitter, const Node *node, const char *const *operands, int n_operands);

// ------------------------------------------------------------- gemm.c
// Matrix products specialized to their shapes, with fused epilogues.
void emit_gemm_group(Emitter *emitter, const char *name, const Group *group);
// Scratch elements a group's kernel needs (a transposed kernel), or 0.
size_t gemm_scratch(const Graph *graph, const Group *group, bool optimize);

// The bias gradient's loop: dbias[j] = sum over the batch of dy[i][j], j < columns (table.c).
void emit_column_sums(Emitter *emitter, const char *dy, const char *dbias, const char *columns);

// ------------------------------------------------------------ prior.c
// Priors: gaussian([d], std=1), uniform([d], lo, hi), mixture([d], k, std,
// radius=4). lower_prior makes the node (numbers/present/locs: the arguments
// after the shape) or reports and returns -1.
bool op_is_prior(OpKind op);
int lower_prior(Graph *graph, const char *name, int dims, const double *numbers, const bool *present, const Loc *locs,
                Loc loc);
void emit_prior_mixture(Emitter *emitter, const Node *node);
// The prior the code is matched against (the first of the code's size), or -1.
int find_prior(const Graph *graph);
// The model table's `.prior = {...},` line.
void emit_prior_entry(Emitter *emitter);

// ------------------------------------------------------------- conv.c
// conv, deconv, maxpool, unpool, upsample, reshape: shape rules, kernels and
// vector-Jacobian rules (layouts and attributes at the top of conv.c).
// A vjp rule sets VJP_ZERO for an input whose gradient is zero (unpool's switches).
enum { VJP_ZERO = -2 };
int conv_output_size(int in, int k, int stride, bool valid);
int deconv_output_size(int in, int k, int stride, bool valid);
bool shape_conv(Graph *graph, Node *node, Shape *out);
bool shape_deconv(Graph *graph, Node *node, Shape *out);
bool shape_like_third(Graph *graph, Node *node, Shape *out);
bool shape_conv_grad_kernel(Graph *graph, Node *node, Shape *out);
bool shape_conv_grad_bias(Graph *graph, Node *node, Shape *out);
bool shape_maxpool(Graph *graph, Node *node, Shape *out);
bool shape_unpool(Graph *graph, Node *node, Shape *out);
bool shape_unpool_grad(Graph *graph, Node *node, Shape *out);
bool shape_upsample(Graph *graph, Node *node, Shape *out);
bool shape_upsample_grad(Graph *graph, Node *node, Shape *out);
bool shape_reshape(Graph *graph, Node *node, Shape *out);
void emit_conv(Emitter *emitter, const Node *node);
// A stride-1 conv takes the elementwise ops after it as its epilogue (passes/fuse.c).
bool conv_takes_epilogue(const Node *node);
void emit_conv_group(Emitter *emitter, const char *name, const Group *group);
bool unpool_takes_gradient(const Graph *graph, const Node *unpool, const Node *reader);
void emit_unpool_gradient_group(Emitter *emitter, const char *name, const Group *group);
void emit_conv_grad_input(Emitter *emitter, const Node *node);
void emit_conv_grad_kernel(Emitter *emitter, const Node *node);
void emit_conv_grad_bias(Emitter *emitter, const Node *node);
void emit_deconv(Emitter *emitter, const Node *node);
void emit_deconv_grad_input(Emitter *emitter, const Node *node);
void emit_maxpool(Emitter *emitter, const Node *node);
void emit_unpool(Emitter *emitter, const Node *node);
void emit_unpool_grad(Emitter *emitter, const Node *node);
void emit_upsample(Emitter *emitter, const Node *node);
void emit_upsample_grad(Emitter *emitter, const Node *node);
void vjp_conv(Graph *graph, const Node *node, int grad, const bool *needs, int *grads_in);
void vjp_deconv(Graph *graph, const Node *node, int grad, const bool *needs, int *grads_in);
void vjp_maxpool(Graph *graph, const Node *node, int grad, const bool *needs, int *grads_in);
void vjp_unpool(Graph *graph, const Node *node, int grad, const bool *needs, int *grads_in);
void vjp_upsample(Graph *graph, const Node *node, int grad, const bool *needs, int *grads_in);
void vjp_reshape(Graph *graph, const Node *node, int grad, const bool *needs, int *grads_in);
double flops_conv_family(const Graph *graph, const Node *node);
double flops_pool(const Graph *graph, const Node *node);


#endif
