// aec.h — the compiler: graph IR, the op table, lowering from the AST,
// autodiff, passes and the C emitter. One section per .c file.
#ifndef AEC_COMPILER_H
#define AEC_COMPILER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dsl.h"

#define AEC_VERSION "0.1.0"

// -------------------------------------------------------------- graph.c
// Shapes leave the batch axis out: a batched value of shape [784] holds
// n x 784 elements at run time. Unbatched values are parameters, their
// gradients, and scalars (rank 0: losses and numbers).
enum { MAX_RANK = 4, MAX_INPUTS = 4, MAX_ATTRS = 3 };

typedef struct Shape {
  bool batched;
  int rank;
  int dims[MAX_RANK];
} Shape;

typedef enum OpKind {
#define OP(kind, name) kind,
#include "ops.def"
#undef OP
  OP_COUNT
} OpKind;

typedef struct Node {
  int id;
  OpKind op;
  int inputs[MAX_INPUTS];
  int n_inputs;
  Shape shape;
  Loc loc;            // the .ae place it comes from
  char *name;         // unique C identifier: encoder_dense_1, recon_grad_...
  // Numbers the op needs, by op: a constant's value, leaky_relu's slope,
  // clip's bounds, a noise's std or p. Part of a node's identity.
  double attr[MAX_ATTRS];
  int rng_node;       // random ops and their gradients: the node whose draws they use, else -1
  int param_index;    // OP_PARAM: index into Graph.params
  bool is_backward;   // made by autodiff
  int step;           // backward nodes: the step that made them; -1 otherwise
} Node;

typedef struct Param {
  char *name;         // encoder.dense_1.kernel
  int node;           // its OP_PARAM node
  int net;            // index into Graph.nets
  Shape shape;
  size_t offset;      // into the parameter buffer, in elements
  size_t size;
  bool is_kernel;     // kernels get Glorot init and count in l2(); biases don't
  int fan_in, fan_out;
} Param;

typedef struct Layer {
  char *name;         // encoder.dense_1
  char *description;  // dense(32, relu)
  int node;           // its output node
  long params;
  double flops;       // forward, per sample
  Loc loc;
} Layer;

typedef struct Net {
  char *name;
  Loc loc;
  const Stmt *stmt;
  bool applied;        // applied at least once (its weights exist)
  bool applying;       // recursion guard
  int *param_ids;      // params it owns
  int n_params;
} Net;

typedef enum OptimizerKind { OPTIMIZER_SGD, OPTIMIZER_ADAM } OptimizerKind;

typedef struct Step {
  Loc loc;
  char *loss_name;
  int loss_index;      // into Graph.losses
  int *nets;           // net indices
  int n_nets;
  char *nets_text;     // "encoder, decoder"
  OptimizerKind optimizer;
  double lr, momentum, beta1, beta2, eps;
  int *params;         // param indices it updates, in buffer order
  int n_params;
  int *grad_nodes;     // [n_params] autodiff's result for each, or -1 (no dependence: zero)
  size_t n_elems;      // elements over its params
} Step;

typedef struct Loss {
  char *name;
  int node;
  Loc loc;
} Loss;

typedef struct TrainConfig {
  char *data, *test;
  int batch, epochs;
  uint64_t seed;
} TrainConfig;

typedef struct Graph {
  Node *nodes;
  int n_nodes, cap_nodes;
  Param *params;
  int n_params, cap_params;
  size_t n_param_elems;
  Layer *layers;
  int n_layers, cap_layers;
  Net *nets;
  int n_nets;
  Loss *losses;
  int n_losses;
  Step *steps;
  int n_steps;
  TrainConfig train;
  int input_node;          // the one `input`
  char *input_name;
  int code_node;           // -1 when the model has none
  int reconstruction_node; // -1 when the model has none
  int *eval_losses;        // [n_losses] each loss at inference (plan_inference), else NULL
  int *layer_eval_nodes;   // [n_layers] each layer's output at inference (plan_inference), or -1 where
                           // the input alone does not determine it (a net applied first to a prior)
  int corrupt_node;        // the corrupted input fed to the model in training (roles.c), or -1
  int first_kernel_param;  // the first layer's kernel, an index into params (roles.c), or -1
  struct NameIndex *name_index;  // graph.c: the nodes' names hashed, so naming stays O(1) (graph_set_name)
} Graph;

Graph *graph_new(void);
void graph_free(Graph *graph);
// Adds a node after checking its inputs' shapes with the op's shape rule.
// Returns its id, an identical existing node's id (pure ops are shared), or
// -1 after reporting a shape error at `loc`.
int graph_add(Graph *graph, OpKind op, const int *inputs, int n_inputs, Loc loc);
// The same for ops with numeric attributes (attrs: MAX_ATTRS numbers).
int graph_add_attr(Graph *graph, OpKind op, const int *inputs, int n_inputs, const double *attrs, Loc loc);
int graph_add_constant(Graph *graph, double value, Loc loc);
int graph_add_param(Graph *graph, const char *name, int net, Shape shape, bool is_kernel,
                    int fan_in, int fan_out, Loc loc);
void graph_set_name(Graph *graph, int node, const char *base);  // made unique
Node *graph_node(Graph *graph, int id);
bool shape_is_scalar(Shape shape);
size_t shape_size(Shape shape);  // per sample for batched shapes
void shape_format(Shape shape, char *out, size_t size);  // "[784]", "[]"

// ---------------------------------------------------------------- ops.c
// One entry per IR op: its name, arity, shape rule, how its forward kernel is
// written, and its vector-Jacobian rule. Adding an op is one entry.
typedef struct Emitter Emitter;

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

// --------------------------------------------------------------- lower.c
// Builds the graph from the AST: evaluates params (with -D overrides),
// applies nets (instantiating weights on first use), checks shapes,
// collects losses and the train block. Reports errors through diag_*;
// returns NULL when any was found.
typedef struct Define {
  const char *name;
  double value;
} Define;

Graph *lower_program(const Program *program, const Define *defines, int n_defines);

// --------------------------------------------------------------- roles.c
// Sets Graph.corrupt_node and Graph.first_kernel_param (after lowering, before
// autodiff): what `denoise` and `filters` use.
void find_roles(Graph *graph);

// ------------------------------------------------------------ autodiff.c
// Adds backward nodes for each step: the gradient of its loss with respect
// to each parameter of its nets (Step.grad_nodes). Returns false after
// reporting a step whose loss depends on none of a named net's parameters.
bool autodiff(Graph *graph);

// ------------------------------------------------------- pass_inference.c
// Adds the inference versions of the losses (Graph.eval_losses), the code,
// the reconstruction and each layer's output (Graph.layer_eval_nodes):
// corruption replaced by its input.
void plan_inference(Graph *graph);

// ---------------------------------------------------------- pass_fuse.c
// Which nodes of a schedule one kernel computes together.
typedef enum GroupKind {
  GROUP_SINGLE,       // one node, its own kernel
  GROUP_GEMM,         // a matrix product with an elementwise epilogue
  GROUP_LOSS,         // a loss and its gradient in one pass
  GROUP_GEMM_LOSS,    // the last dense product with the loss and its gradient as epilogue
  GROUP_ELEMENTWISE,  // a chain of elementwise ops in one loop
  GROUP_CONV,         // a stride-1 convolution with an elementwise epilogue (ops_conv.c)
  GROUP_UNPOOL_GRADIENT,  // a maxpool's gradient with the activation gradient after it (ops_conv.c)
} GroupKind;

enum { MAX_GROUP = 8 };

typedef struct Group {
  GroupKind kind;
  int members[MAX_GROUP];  // in order; members[0] leads
  int n_members;
  int output;              // the value written to memory (a loss group: the gradient)
  int second_output;       // the loss value of a loss group, the bias gradient of a
                           // kernel gradient's (from the same dy), else -1
  int position;            // where in the schedule it runs
} Group;

typedef struct FusionPlan {
  Group *groups;  // in execution order
  int n_groups;
  int *group_of;  // [n_nodes] each scheduled node's group, or -1
} FusionPlan;

typedef struct Schedule Schedule;
// `outputs` must be written to memory; `fuse` false gives one group per node.
FusionPlan fuse_schedule(const Graph *graph, const Schedule *schedule, const int *outputs, int n_outputs, bool fuse);
bool group_materializes(const Group *group, int node);
void fusion_plan_free(FusionPlan *plan);

// --------------------------------------------------------- pass_memory.c
// Arena offsets for the values a schedule writes: each value lives from the
// group that writes it to the last group that reads it, and a slot is
// reused once its value is dead (first fit). Batched values take offsets
// per sample (times the batch capacity), the others a fixed part after them.
typedef struct MemoryPlan {
  bool *has_slot;     // [n_nodes]
  size_t *offset;     // [n_nodes] per sample (batched) or within the fixed part
  size_t per_sample, fixed;                  // planned sizes
  size_t unplanned_per_sample, unplanned_fixed;  // one slot per value, for --stats
  size_t *scratch;    // [n_groups] fixed-part offset of a group's scratch, if any
} MemoryPlan;

// `pinned` values live to the end (the schedule's outputs); `scratch_size`
// gives each group's scratch need in elements (0 for none).
// `outside` (or NULL) marks values stored elsewhere (weight gradients).
MemoryPlan plan_memory(const Graph *graph, const FusionPlan *plan, const int *pinned, int n_pinned,
                       const bool *outside, const size_t *scratch_size, bool reuse);
void memory_plan_free(MemoryPlan *plan);

// ---------------------------------------------------------- schedule.c
// A schedule is the ordered list of nodes one generated function computes:
// dead-code elimination from its outputs, in topological (id) order.
struct Schedule {
  int *nodes;
  int n_nodes;
};

Schedule schedule_for(const Graph *graph, const int *outputs, int n_outputs);
void schedule_free(Schedule *schedule);

// ------------------------------------------------------------ emit.c
typedef enum DType { DTYPE_F32, DTYPE_F64 } DType;

typedef struct EmitOptions {
  int opt_level;  // 0: one kernel per node, plain loops, no reuse (the reference); 2: everything
  FILE *stats;    // when set, `aec --stats` figures are written there
  const char *source_path;
  const char *model_name;
  const char *source_hash;
  DType dtype;
  const char *command_line;  // the header's "Options:" line: what shapes the code, canonical (not argv)
  FILE *dump_ir;             // when set, `aec --dump-ir`'s per-function sections go there (inspect.c)
  FILE *dot;                 // when set, `aec --dot`'s Graphviz text goes there (inspect.c)
  bool line_directives;      // aec --line: #line directives point each kernel at its .ae line
  const char *c_name;        // the .c file's name, for the #line directives that point back at it
} EmitOptions;

struct Emitter {
  FILE *out;
  Graph *graph;
  const EmitOptions *options;
  const char *kernel_name;  // the name emit_kernel_open gives the kernel being written
  const struct SharePlan *share;  // values the steps of a batch share (pass_share.c), or NULL
  size_t thread_stack_bytes;      // the most any kernel written so far keeps on one thread's stack
};

// ----------------------------------------------------------- emit_gemm.c
// Matrix products specialized to their shapes, with fused epilogues.
typedef struct FunctionPlan FunctionPlan;
// The values a group reads from outside itself, in order of first use, and
// the parameter name a fused kernel gives the i-th of them (a, b, c, ...).
int group_inputs(const Graph *graph, const Group *group, int *inputs);
const char *group_param_name(int i);
void emit_gemm_group(Emitter *emitter, const char *name, const Group *group);
// A fused kernel's heading: the .ae line, the ops, and what a, b, ... are.
void emit_group_comment(Emitter *emitter, const Group *group, const int *inputs, int n_inputs);
// Member m of a group as a C expression of element `at`: earlier members are v0, v1, ...
void expand_member(Emitter *emitter, const Group *group, int m, const int *inputs, int n_inputs);
void expand_member_text(Emitter *emitter, const Group *group, int m, const int *inputs, int n_inputs, const char *text);
void expand_op_with(Emitter *emitter, const Node *node, const char *const *operands, int n_operands);
// Scratch elements a group's kernel needs (a transposed kernel), or 0.
size_t gemm_scratch(const Graph *graph, const Group *group, bool optimize);

// Writes the whole C program for the graph.
bool emit_program(FILE *out, Graph *graph, const EmitOptions *options);
// Helpers op emitters use.
void emit_line(Emitter *emitter, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void emit_lines(Emitter *emitter, const char *const *lines);  // each line of a NULL-ended list, as is
// The kernel being written keeps `bytes` of arrays on the stack of each thread
// that runs it (at most): the model records the largest, and the runtime makes
// room for it in every thread (runtime/stack.c).
void emit_stack_use(Emitter *emitter, size_t bytes);
// The size of the generated file's `real`: 4 (f32) or 8 (f64).
size_t emit_real_bytes(const Emitter *emitter);
// Opens a kernel: the comment naming its .ae place and formula, then
// `static void NAME(int n, const real *restrict NAMES[0], ..., real *restrict
// NAMES[n_inputs]) {`. `n` is there when anything is batched.
void emit_kernel_open(Emitter *emitter, const Node *node, const char *const *arg_names, const char *formula);
// The bias gradient's loop: dbias[j] = sum over the batch of dy[i][j], j < columns.
void emit_column_sums(Emitter *emitter, const char *dy, const char *dbias, const char *columns);
// The per-sample size constant of a node: ENCODER_DENSE_1_SIZE.
const char *size_const(const Graph *graph, int node, char *buf, size_t size);
bool node_uses_batch(const Graph *graph, const Node *node);

// ----------------------------------------------------------- describe.c
// The model as JSON (format in describe.c): the forward graph, parameters,
// losses, steps and random nodes; what `./model describe` prints and
// tests/torch/ rebuilds the model from. Returns malloc'd text, or NULL.
char *describe_graph(const Graph *graph, const char *model_name, const char *source_path);
// Writes `static const char description[] = "...";` for the model table.
void emit_description(Emitter *emitter);

// ------------------------------------------------------------ summary.c
void print_summary(FILE *out, const Graph *graph);
void dump_ir(FILE *out, const Graph *graph);

// ------------------------------------------------------------ inspect.c
// What `aec --dump-ir`, `aec --dot`, `aec --line` and the generated file's
// header show. A FunctionView is one generated function as emit.c planned it.
typedef struct FunctionView {
  const char *name;          // the C function: recon_loss_and_grad, eval_losses, encode, ...
  int step;                  // the step it computes the gradients of, or -1
  const Schedule *schedule;
  const FusionPlan *fusion;
  const MemoryPlan *memory;
  const bool *outside;       // [n_nodes] values stored outside the arena (weight gradients), or NULL
  char *const *kernel;       // [n_groups] the kernel function each group calls
} FunctionView;

// One node a line, in one stable form: `%ID = OP %IN, ... : SHAPE  name=... at=FILE:LINE:COL ...`.
void dump_node(FILE *out, const Graph *graph, int node);
void dump_graph(FILE *out, const Graph *graph, const char *after_pass);
void dump_function(FILE *out, const Graph *graph, const FunctionView *fn);
void write_dot(FILE *out, const Graph *graph, const FunctionView *fns, int n_fns);
// The generated file's table of a function's buffers: shape, storage, writer kernel, layer.
void emit_buffer_table(Emitter *emitter, const FunctionView *fn);
// The layer (a dense stage of a net) a node belongs to by its .ae place, or NULL.
const Layer *node_layer(const Graph *graph, int node);
// Copies generated C to `out`, turning each `#line 0 "@aec-restore"` marker into
// a directive naming `c_name` at the real line.
bool write_with_line_directives(FILE *out, const char *text, size_t size, const char *c_name);
// The comment above each kernel: its nodes (op, .ae place, layer, shape) and FLOPs.
void emit_kernel_note(Emitter *emitter, const char *kernel, const Group *group);
// Writes a kernel emit.c wrote to `text`: a blank line, the note, the text (its
// leading blank line dropped), each code line pointed at its .ae line under aec --line.
void emit_kernel_with_note(Emitter *emitter, const char *kernel, const Group *group, const char *text);
// lower.c: every language-level operation, `name(arguments)  summary`, one a line.
void list_ops(FILE *out);


// ----------------------------------------------------------- ops_prior.c
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

// ------------------------------------------------------------ ops_conv.c
// conv, deconv, maxpool, unpool, upsample, reshape: shape rules, kernels and
// vector-Jacobian rules (layouts and attributes at the top of ops_conv.c).
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
// A stride-1 conv takes the elementwise ops after it as its epilogue (pass_fuse.c).
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


// ---------------------------------------------------------- pass_share.c
// Values computed once per batch and read by later steps: a step reads a
// batched forward value from an earlier step when no step in between (the
// earlier one's own update included) changed a parameter it depends on.
typedef struct SharePlan {
  int n_steps, n_nodes;
  bool **given;     // [step][node] read from an earlier step instead of computed
  bool **stored;    // [step][node] computed and left in its shared slot for later steps
  int **from;       // [step][node] for given values, the step that computed them
  int **stale_by;   // [step][node] computed again because this step's update made an earlier copy stale, or -1
  bool *shared;     // [node] has a shared slot
  size_t *offset;   // [node] its slot, per sample, from the shared region's start
  size_t per_sample;  // the shared region, per sample
  size_t base;        // where the region starts in the arena, per sample (set by the emitter)
} SharePlan;

// `enable` false (-O0) shares nothing.
SharePlan plan_sharing(const Graph *graph, bool enable);
void share_plan_free(SharePlan *plan);
bool share_step_reads(const SharePlan *plan, int step);
// schedule_for, treating `given` values as computed elsewhere: neither they
// nor what only they need are scheduled.
Schedule schedule_given(const Graph *graph, const int *outputs, int n_outputs, const bool *given);
// The comment above a step's function: what it reads from earlier steps, what
// it computes again and why, what it leaves for later ones.
void emit_share_comment(Emitter *emitter, const SharePlan *plan, int step);

#endif
