// ir.h — the graph IR: shapes, nodes, parameters, nets, losses, steps, and
// the plans the passes make of it (schedules, fusion groups, memory, sharing).
// Plain data and the queries on it; nothing here knows how an op computes
// (ops/ does) or writes C (writer/ does). The bottom layer of the compiler,
// above dsl/.
#ifndef AEC_IR_H
#define AEC_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dsl.h"

#define AEC_VERSION "0.1.0"

// Shapes leave the batch axis out: a batched value of shape [784] holds
// n x 784 elements at run time. Unbatched values are parameters, their
// gradients, and scalars (rank 0: losses and numbers).
enum { MAX_RANK = 4, MAX_INPUTS = 5, MAX_ATTRS = 3 };

typedef struct Shape {
  bool batched;
  int rank;
  int dims[MAX_RANK];
} Shape;

// Every op, from ops.def's rows (an activation's row gives two: KIND and KIND_GRAD).
typedef enum OpKind {
#define OP(kind, name) kind,
#include "ops.def"
  OP_COUNT
} OpKind;

typedef enum DerivativeKind { DERIVATIVE_NONE, DERIVATIVE_GRAD, DERIVATIVE_JACOBIAN_NORM } DerivativeKind;

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
  bool from_batch;    // batched, or computed from a batched value (a loss: a mean over the batch)
  int step;           // backward nodes: the step that made them; -1 otherwise
  // grad(y, x) and jacobian_norm(y, x) (front/derivatives.c): the result
  // names its function and its y and x; the nodes made on the way to it name
  // the result (`inside`, else -1). The description writes such a result as
  // one node, so that a replay takes the derivative with its own autodiff.
  DerivativeKind derivative;
  int derivative_of[2];
  int inside;
} Node;

typedef struct Param {
  char *name;         // encoder.dense_1.kernel
  int node;           // its OP_PARAM node
  int net;            // index into Graph.nets
  Shape shape;
  size_t offset;      // into the parameter buffer, in elements
  size_t size;
  bool is_kernel;     // kernels get Glorot init and count in l2(); biases don't
  bool init_ones;     // starts at 1 (a batchnorm's scale and running variance), else Glorot or 0
  // Not trained (a batchnorm's running mean and variance): no step updates
  // it and no gradient reaches it; the op that reads it writes it, and
  // checkpoints carry it like any parameter.
  bool state;
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

// The optimizers, one row each in runtime/aert_optimizers.def (which says
// what each field means): OPTIMIZER_SGD, OPTIMIZER_ADAM, ...
typedef enum OptimizerKind {
#define OPTIMIZER(kind, name, kernel, takes_t, states, last_state_if, settings) OPTIMIZER_##kind,
#include "aert_optimizers.def"
  OPTIMIZER_COUNT
} OptimizerKind;

enum { MAX_OPTIMIZER_SETTINGS = 6, MAX_OPTIMIZER_STATES = 3 };
typedef enum SettingRange { RANGE_POSITIVE, RANGE_FRACTION, RANGE_NONNEGATIVE } SettingRange;
typedef struct OptimizerSetting {
  const char *name;
  double fallback;     // its default
  SettingRange range;
} OptimizerSetting;
typedef struct OptimizerInfo {
  const char *name;        // "adam"
  const char *c_kind;      // "AERT_ADAM"
  const char *kernel;      // "adam", in runtime/aert_kernels.h
  bool takes_t;
  const char *states[MAX_OPTIMIZER_STATES];  // "m", "v"; NULL-terminated
  const char *last_state_if;                 // a setting, or NULL
  OptimizerSetting settings[MAX_OPTIMIZER_SETTINGS];  // lr first; name NULL after the last
} OptimizerInfo;
extern const OptimizerInfo optimizer_table[OPTIMIZER_COUNT];
const OptimizerInfo *optimizer_named(const char *name);  // NULL if none
int optimizer_n_settings(const OptimizerInfo *info);
// "sgd, adam, adamw and rmsprop"
void optimizer_list(char *out, size_t size);
// "more than 0", "from 0 to less than 1", ...; whether v is in it
const char *setting_range_text(SettingRange range);
bool setting_in_range(SettingRange range, double v);

typedef struct Step {
  Loc loc;
  char *loss_name;
  int loss_index;      // into Graph.losses
  int *nets;           // net indices
  int n_nets;
  char *nets_text;     // "encoder, decoder"
  OptimizerKind optimizer;
  union {  // the optimizer's settings in its row's order, lr first
    double lr;
    double settings[MAX_OPTIMIZER_SETTINGS];
  };
  // lr=ramp(from, to, epochs) or cosine(...): OP_RAMP or OP_COSINE, lr being
  // `from`; else OP_INPUT (0), a constant lr
  OpKind lr_schedule;
  double lr_to, lr_epochs;
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

// One part of a loss that is a sum of terms (`784 * bce(p, x) + beta *
// kl(m, v)`): the terms written by one call. Its value at inference is the
// sum of coefs[i] * (nodes[i]'s value, averaged over the batch when it is per
// sample), so a loss's parts add up to it (passes/inference.c finds them).
typedef struct LossPart {
  char *name;     // "elbo.bce": the loss, then the function called at the term's place
  int loss;       // index into Graph.losses
  int n_terms;
  int *nodes;     // [n_terms] inference nodes
  double *coefs;  // [n_terms] the constant factor and sign the sum gives each
} LossPart;

typedef struct TrainConfig {
  char *data, *test;
  int batch, epochs;
  uint64_t seed;
  char *validation;  // "0.1" (a fraction held out of data) or a file; NULL: none
  int patience;      // 0: no early stopping
} TrainConfig;

// ------------------------------------------------------------- graph.c
// `items` with room for item n (0-based), for an array whose capacity its
// count implies: 16, then doubled at each power of two, so that appending
// n items copies O(n) in all (growing by one is quadratic where realloc
// cannot extend in place). Only this may grow such an array.
void *grow_for(void *items, int n, size_t item_size);

// ------------------------------------------------------------ strmap.c
// Strings to ints in O(1) (keys are not copied: they must outlive the map).
typedef struct StrMap {
  const char **keys;
  int *values;
  size_t cap, n;
} StrMap;
// FNV-1a with a final mix (its low bits barely change with the last byte):
// the hash of every table in the compiler.
uint64_t hash_bytes(const void *data, size_t size, uint64_t seed);
#define HASH_SEED 1469598103934665603ull
int strmap_get(const StrMap *map, const char *key);  // -1 when missing
void strmap_put(StrMap *map, const char *key, int value);
void strmap_free(StrMap *map);

typedef struct Graph {
  Node *nodes;
  int n_nodes, cap_nodes;
  Param *params;
  int n_params, cap_params;
  size_t n_param_elems;
  Layer *layers;
  int n_layers;
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
  // The generative commands (decode, sample, interpolate, manifold; passes/inference.c):
  int decode_input_node;   // the code's node in the reconstruction's computation: decode() reads it from its input; or -1
  int decode_node;         // the reconstruction (at inference) that decode() computes from it, or -1
  char *decode_missing;    // why there is no decode when there is a code and a reconstruction, or NULL
  int code_logvar_node;    // a code made by sample_normal (prior N(0, 1)): its log-variance, the op's second
                           // input; else -1 (front/train.c)
  LossPart *loss_parts;    // [n_loss_parts] the terms of each loss that is a sum (passes/inference.c)
  int n_loss_parts;
  struct NameIndex *name_index;  // graph.c: the nodes' names hashed, so naming stays O(1) (graph_set_name)
  struct PureIndex *pure_index;  // graph.c: the pure nodes hashed by op, inputs and attributes
} Graph;

// ------------------------------------------------------------- graph.c
Graph *graph_new(void);
void graph_free(Graph *graph);
// A new node at the end of the graph, zeroed but for its id, op, inputs,
// attributes and place; not yet counted (the caller increments n_nodes once
// the node is complete, or leaves it to be overwritten). ops/build.c adds
// nodes through it after checking their shapes.
Node *graph_reserve_node(Graph *graph, OpKind op, const int *inputs, int n_inputs, const double *attrs, Loc loc);
// A parameter tensor and its OP_PARAM node, owned by `net`.
int graph_add_param(Graph *graph, const char *name, int net, Shape shape, bool is_kernel,
                    int fan_in, int fan_out, Loc loc);
void graph_set_name(Graph *graph, int node, const char *base);  // made unique
// The node computing `op` of these inputs and attributes, among those noted
// with graph_note_pure, or -1: a pure op is computed once (ops/build.c).
int graph_find_pure(const Graph *graph, OpKind op, const int *inputs, int n_inputs, const double *attrs);
void graph_note_pure(Graph *graph, int node);
Node *graph_node(Graph *graph, int id);
// An op's name, from ops.def: "dense", "relu_grad", ...
const char *op_name(OpKind op);
// A step's lr as the file gives it: "0.001", or "cosine(0.01, 0.001, 20)".
void step_lr_format(const Step *step, char *out, size_t size);
// A step's optimizer from its row: its defaults (a step's settings before its
// arguments); the value of setting `name` (NAN if it has none); how many
// state vectors the step keeps (rmsprop's momentum buffer only with
// momentum); and "adamw(lr=0.001, beta1=0.9, ..., weight_decay=0.01)" with
// every setting, or with only those not at their default (`all` false).
void step_set_optimizer(Step *step, OptimizerKind kind);
double step_setting(const Step *step, const char *name);
int step_n_states(const Step *step);
void step_optimizer_format(const Step *step, bool all, char *out, size_t size);
bool shape_is_scalar(Shape shape);
bool shape_is_per_sample_scalar(Shape shape);  // batched, one element a sample: [1]
size_t shape_size(Shape shape);  // per sample for batched shapes
void shape_format(Shape shape, char *out, size_t size);  // "[784]", "[]"
void shape_format_batched(Shape shape, char *out, size_t size);  // "[784]xN" for batched values
// "path:line:col" (only the file's base name with base_only), or "-".
void loc_format(Loc loc, bool base_only, char *buf, size_t size);
// Whether a node's kernel takes the batch size n: it or one of its inputs is batched.
bool node_uses_batch(const Graph *graph, const Node *node);
// The layer (a stage of a net) a node belongs to by its .ae place, or NULL.
const Layer *node_layer(const Graph *graph, int node);

// ------------------------------------------------------------ plans
// What the passes (passes/) compute and the code generator (cgen/) and the
// inspection tools (tools/) read.

// A schedule is the ordered list of nodes one generated function computes:
// dead-code elimination from its outputs, in topological (id) order.
typedef struct Schedule {
  int *nodes;
  int n_nodes;
} Schedule;

// Which nodes of a schedule one kernel computes together.
typedef enum GroupKind {
  GROUP_SINGLE,       // one node, its own kernel
  GROUP_GEMM,         // a matrix product with an elementwise epilogue
  GROUP_LOSS,         // a loss and its gradient in one pass
  GROUP_GEMM_LOSS,    // the last dense product with the loss and its gradient as epilogue
  GROUP_ELEMENTWISE,  // a chain of elementwise ops in one loop
  GROUP_CONV,         // a stride-1 convolution with an elementwise epilogue (the row's takes_epilogue)
  GROUP_UNPOOL_GRADIENT,  // a maxpool's gradient with the activation gradient after it (takes_reader)
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


#endif
