// ops.h — what each IR op is: its OpInfo row. ir/ops.def lists the ops; an
// activation's two rows are made in table.c from its ops.def row, and every
// other op's row, KIND_row, is defined in its family file with the shape
// rule, vector-Jacobian rule, FLOPs and kernel it points to (table.c:
// storage, arithmetic, reshape; dense.c and gemm.c; conv.c; pool.c;
// noise.c; norm.c; losses.c; prior.c). table.c gathers the rows into the op table.
// Nodes enter the graph through build.c, which applies the shape rules.
// Above writer/ (kernels are written through it), below front/ and passes/.
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

// --------------------------------------------------------- backward.c
// The reverse sweep: the gradient of node `from`, given `seed` (the
// gradient of what is differentiated with respect to `from`), with respect
// to every node that depends on one of `wrt` and that `from` reads, each
// op's vector-Jacobian rule adding nodes; gradients reaching a value by
// several paths are summed. New nodes are named PREFIXgrad_NAME. Returns
// an array of g->n_nodes (as it was) gradient nodes, -1 where none, to be
// freed; NULL after reporting an op without a rule.
int *backward_sweep(Graph *graph, int from, int seed, const int *wrt, int n_wrt, const char *prefix);
// Which nodes up to `last` depend on one of `wrt` (forward direction): an
// array of last + 2 flags, to be freed.
bool *depending_on(const Graph *graph, const int *wrt, int n_wrt, int last);

// ------------------------------------------------------------ the op table
typedef enum KernelKind {
  KERNEL_NONE,         // input, param, constant, schedules: storage only
  KERNEL_CUSTOM,       // the op's own emit function
  KERNEL_ELEMENTWISE,  // one loop over the output: out[i] = expr
  KERNEL_REDUCE,       // a scalar: sum over input 0's elements of expr, then divided
} KernelKind;

typedef enum Divisor {
  DIVIDE_BY_ONE,
  DIVIDE_BY_COUNT,  // every element, batch included ($count)
  DIVIDE_BY_ROWS,   // the batch size n for batched values, else 1 ($rows)
} Divisor;

// What an activation's gradient reads besides the incoming gradient (ops.def).
typedef enum GradientReads { READS_INPUT, READS_OUTPUT } GradientReads;

// A windowed op's geometry along one image axis, relating its output
// positions o to the positions i of one input: window w covers positions
// w * stride - pad .. w * stride - pad + size - 1. Not transposed (a conv, a
// pool): o = w, and o reads input window w. Transposed (a deconv, an
// upsample): i = w, and i writes output window w. `both`: o lies in output
// window w and reads input window w (an unpool's switches, from the
// window's input).
typedef struct Window {
  int size, stride, pad;
  bool transposed, both;
} Window;

typedef struct OpInfo {
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
  // input i (or -1, or VJP_ZERO), for the inputs whose needs_grad[i] is set.
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
  bool identity_at_inference;  // corruption, sample_normal: in evaluation, encode and reconstruct it passes
                               // its input 0 through
  bool prior;   // a prior: one sample a batch row, drawn at inference too (prior.c)
  // The op that stands for it at inference, on the same inputs (batchnorm's
  // running statistics: batchnorm_eval), or OP_INPUT (0): the op itself.
  OpKind inference_op;
  // Reads statistics of the whole batch (what, for messages: "the mean
  // activation"), or NULL: under --mpi each process holds a share of the
  // batch only, so aec --mpi refuses it (compiler/main.c).
  const char *batch_statistics;
  // A layer with weights of its own (dense, conv, deconv, batchnorm): it is
  // written inside a net, which names them (front/layers.c).
  bool makes_weights;
  // A schedule (schedule.c): storage, a scalar that each generated function
  // sets at its start from the run's progress (emit_schedule_value).
  bool schedule;
  // A loss (KERNEL_REDUCE) whose gradient op reads the same two inputs: the
  // fusion pass computes both in one pass. OP_INPUT (0) for none.
  OpKind gradient_op;
  // An activation (an ACTIVATION row): its gradient op, which reads the
  // activation's output (gradient_reads_output) or its input, then the
  // incoming gradient. OP_INPUT for other ops.
  OpKind activation_gradient;
  bool gradient_reads_output;
  // An activation's gradient op: the op of its derivative in the value it
  // reads (KIND_GRAD2, whose expression is "0" where that is zero).
  OpKind second_gradient;
  // An activation's gradient, zero wherever its incoming gradient ($1) is:
  // after a maxpool's gradient it changes only each window's switch
  // (takes_reader in pool.c).
  bool zero_where_gradient_is;
  // Fusion at -O2 (passes/fuse.c asks the row; the family file answers):
  // the elementwise ops that alone read the node become its epilogue
  // (GROUP_CONV);
  bool (*takes_epilogue)(const Node *node);
  // `reader`, the node's only reader, is applied inside the node's kernel
  // (GROUP_UNPOOL_GRADIENT);
  bool (*takes_reader)(const Graph *graph, const Node *node, const Node *reader);
  // the kernel of either group that the op leads.
  void (*emit_group)(Emitter *emitter, const char *name, const Group *group);
  // Ops that map image positions through windows (convolutions, pooling,
  // upsampling): input `input`'s geometry along `axis` (0 rows, 1 columns),
  // the one the kernels use; false for an input it does not window (a
  // kernel, a bias). The description (cgen/describe.c) writes it for the
  // runtime's receptive fields.
  bool (*window)(const Graph *graph, const Node *node, int input, int axis, Window *out);
  // A tied layer (dense_tied): its input 1, another layer's kernel, is used
  // transposed. The description (cgen/describe.c) says so.
  bool transposed_kernel;
} OpInfo;

// Every op's row, defined in its family file (activations: table.c).
#define OP(kind, name) extern const OpInfo kind##_row;
#include "ops.def"

const OpInfo *op_info(OpKind op);
// Member m of a group as a C expression of element `at`: earlier members are v0, v1, ...
void expand_member(Emitter *emitter, const Group *group, int m, const int *inputs, int n_inputs);
// An op's expression with its inputs given as C expressions: a kernel that
// applies the op to values it holds (the unpool-and-gradient kernel).
void expand_op_with(Emitter *emitter, const Node *node, const char *const *operands, int n_operands);

// A vjp rule sets VJP_ZERO for an input whose gradient is zero (unpool's switches).
enum { VJP_ZERO = -2 };

// ---------------------------------------------- shared by the family files (table.c)
#define ELEMENTWISE(expression) .kernel = KERNEL_ELEMENTWISE, .expr = expression, .flops = flops_elements, .pure = true
#define REDUCE(expression, by) \
  .kernel = KERNEL_REDUCE, .expr = expression, .divisor = by, .flops = flops_input_elements, .pure = true
#define LOG_SPLIT_REDUCE(rest_expression, factor, by) \
  REDUCE(rest_expression " + log(" factor ")", by), .rest = rest_expression, .log_factor = factor

Shape input_shape(const Graph *graph, const Node *node, int i);
bool shapes_equal(Shape a, Shape b);
const char *user_name(OpKind op);  // as the user wrote it: "'+'" for add, bce for bce_logits
bool shape_same(Graph *graph, Node *node, Shape *out);         // input 0's
bool shape_scalar(Graph *graph, Node *node, Shape *out);       // a scalar
bool shape_like_second(Graph *graph, Node *node, Shape *out);  // input 1's
double flops_elements(const Graph *graph, const Node *node);        // one an output element
double flops_input_elements(const Graph *graph, const Node *node);  // two an element of input 0
// Nodes for vjp rules, at `loc`.
int add1(Graph *graph, OpKind op, int a, Loc loc);
int add2(Graph *graph, OpKind op, int a, int b, Loc loc);
int add3(Graph *graph, OpKind op, int a, int b, int c, Loc loc);
// A gradient at the output's shape, summed when `input` was a broadcast scalar.
int reduce_to(Graph *graph, int grad, int input, Loc loc);

// conv.c: whether x is an image, [channels, height, width] per sample (else
// a report naming `what`), and such a shape.
bool want_image(Graph *graph, const Node *node, Shape x, const char *what);
Shape image(int c, int h, int w);

// ------------------------------------------------------------- gemm.c
// Matrix products specialized to their shapes, with fused epilogues.
void emit_gemm_group(Emitter *emitter, const char *name, const Group *group);
// Scratch elements a group's kernel needs (a transposed kernel), or 0.
size_t gemm_scratch(const Graph *graph, const Group *group, bool optimize);

// The bias gradient's loop: dbias[j] = sum over the batch of dy[i][j], j < columns (dense.c).
void emit_column_sums(Emitter *emitter, const char *dy, const char *dbias, const char *columns);

// ------------------------------------------------------------ prior.c
// Priors: gaussian([d], std=1), uniform([d], lo, hi), mixture([d], k, std,
// radius=4). lower_prior makes the node (numbers/present/locs: the arguments
// after the shape) or reports and returns -1.
int lower_prior(Graph *graph, OpKind op, int dims, const double *numbers, const bool *present, const Loc *locs,
                Loc loc);
void emit_prior_mixture(Emitter *emitter, const Node *node);
// The prior the code is matched against (the first of the code's size), or -1.
int find_prior(const Graph *graph);
// The model table's `.prior = {...},` line.
void emit_prior_entry(Emitter *emitter);

// ---------------------------------------------------------- schedule.c
// ramp(from, to, epochs) and cosine(from, to, epochs): the checks of their
// numbers (NULL when fine, else what is wrong), and the declaration of a
// schedule node's value in a generated function: `const real NAME[1] =
// {...};`, from ctx->progress through the runtime's aert_schedule_value.
const char *schedule_problem(const double *numbers);
void emit_schedule_value(Emitter *emitter, const Node *node);
// AERT_SCHEDULE_RAMP or AERT_SCHEDULE_COSINE, for the model table's lr schedules.
const char *schedule_c_kind(OpKind op);

#endif
