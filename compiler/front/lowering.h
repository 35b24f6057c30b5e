// lowering.h — what front/'s files share while lowering the AST to the
// graph: values and scopes (scope.c), the state of one lowering (lower.c
// walks statements, expressions and nets), the builtins and their argument
// binding (builtins.c: the table comes from ir/ops.def's rows), layers that
// make weights or name a layer (layers.c) and the train block (train.c).
// Private to front/; front.h is what the layers above see.
#ifndef AEC_LOWERING_H
#define AEC_LOWERING_H

#include "front.h"

typedef enum ValueKind {
  VAL_ERROR,       // already reported: propagate silently
  VAL_NUMBER,
  VAL_TENSOR,
  VAL_NET,
  VAL_ACTIVATION,  // relu, sigmoid, ... used as a value (a layer argument)
  VAL_LIST,        // a list literal given as an argument (a prior's shape); its expr holds the items
  VAL_RESULTS,     // a net's several results: only a statement binding as many names takes them
  VAL_LAYER,       // tied=NET.LAYER, left for the layer's lowering to resolve; its expr holds the name
} ValueKind;

enum { MAX_RESULTS = 8 };

typedef struct Value {
  ValueKind kind;
  double number;
  int node;
  int net;
  OpKind activation;  // an ACTIVATION row's op; OP_INPUT stands for `linear`
  int results[MAX_RESULTS];  // VAL_RESULTS: each result's node
  int n_results;
  bool schedule;      // a scalar of ramp() or cosine() and numbers alone (builtins.c): it combines like
                      // a number but is none; a place that wants a number says so (misplaced_schedule)
} Value;

extern const Value error_value;
Value tensor_value(int node);  // error_value for a failed node (-1)

// ---------------------------------------------------------------- scope.c
typedef struct Binding {
  const char *name;
  Loc loc;
  Value value;
  bool is_param;  // a `param`'s number: a value bound later may take its name
} Binding;

// A scope's bindings in definition order, and their names hashed (so that
// a file of 100k statements binds and finds in linear time).
typedef struct Scope {
  Binding *items;
  int n, cap;
  StrMap index;  // name -> index in items
  struct Scope *parent;
} Scope;

Binding *scope_find(Scope *scope, const char *name);
// Reports a name defined twice, except that a tensor value may take a
// param's name: the name is the number until then, and the value after.
void scope_bind(Scope *scope, const char *name, Loc loc, Value value);
void scope_bind_param(Scope *scope, const char *name, Loc loc, double number);
void scope_free(Scope *scope);

// ---------------------------------------------------------------- lower.c
// One call site of a layer in one net (layers.c): its name in the summary
// and in its weights' names (`dense_1`, `conv_2`), and its weights (param
// nodes, or -1), made on the net's first application and shared after.
// A tied layer (dense(..., tied=NET.LAYER)) has no kernel of its own: its
// kernel is the named layer's, tied_to that layer's site (else -1). A
// batchnorm's scale and shift stand as its kernel and bias.
typedef struct LayerSite {
  int net;
  const Expr *site;
  char layer[48];
  int kernel, bias;
  int tied_to;
  int running_mean, running_var;  // a batchnorm's (its scale is `kernel`, its shift `bias`), else -1
} LayerSite;

typedef struct Lowerer {
  Graph *graph;
  const Program *program;
  Scope globals;
  LayerSite *sites;
  int n_sites;
  int current_net;       // the net being applied, or -1
  char prefix[128];      // names of the nodes being made start with it
  int first_recon_pred;  // the prediction of the first mse/bce whose target is the input
  int net_code, net_recon;  // `code` / `reconstruction` named in a functional net's body (its first application), or -1
  StrMap loss_index;     // a loss's name -> its index in graph->losses
  const char *failed_losses[64];  // losses already reported, so steps naming them stay quiet
  int n_failed_losses;
  const Stmt *train;
  bool saw_window;       // a conv, deconv, pooling, upsampling or unpooling layer was lowered (or tried)
  Loc input_shape_loc;   // the input's shape list, where a channels-last hint points
} Lowerer;

Value eval_expr(Lowerer *L, Scope *scope, const Expr *expr);
// An assignment's value: as eval_expr, but a net's several results are kept
// (VAL_RESULTS) when the statement binds several names; binds them in scope.
void bind_statement(Lowerer *L, Scope *scope, const Stmt *s);
bool eval_number(Lowerer *L, const Expr *e, double *out);
// A whole number from lo to hi, or a report naming `what`.
bool eval_whole(Lowerer *L, const Expr *e, const char *what, long lo, long hi, long *out);
Value apply_net(Lowerer *L, int net_index, const Value *inputs, int n_inputs, Loc loc);
// Adds a node named `<prefix>_<suffix>` when it is new.
int add_named(Lowerer *L, OpKind op, const int *inputs, int n_inputs, Loc loc, const char *suffix);
// The same with attributes.
int add_named_attr(Lowerer *L, OpKind op, const int *inputs, int n_inputs, const double *attrs, Loc loc,
                   const char *suffix);
int number_node(Lowerer *L, double value, Loc loc);
// Whether `node` is not a mean over the batch (a loss term): a function named
// `what` applies to it per sample; else reports at loc.
bool per_sample_or_number(Lowerer *L, int node, const char *what, Loc loc);

// ------------------------------------------------------------- builtins.c
// A builtin's parameters, bound from a call's positional and keyword
// arguments. In a pipeline the input is implicit and comes first.
enum { MAX_BUILTIN_ARGS = 8 };

typedef struct Bound {
  const Expr *expr[MAX_BUILTIN_ARGS];
  Value value[MAX_BUILTIN_ARGS];
  bool present[MAX_BUILTIN_ARGS];
  Scope *scope;  // where the call is: a builtin taking nets... evaluates its own arguments
} Bound;

typedef struct Builtin Builtin;
typedef Value (*LowerFn)(Lowerer *L, const Builtin *b, const Expr *call, Bound *args);

// One builtin row of ops.def (BUILTIN_OP, BUILTIN, ACTIVATION).
struct Builtin {
  const char *name;
  OpKind op;                             // the op the row names; OP_INPUT for a BUILTIN row
  const char *params[MAX_BUILTIN_ARGS];  // "?" suffix: optional; "..." : any number of nets
  LowerFn lower;
  const char *summary;
  double fallback;                       // an activation's parameter when left out
};

const Builtin *find_builtin(const char *name);
int builtin_arity(const Builtin *b);
// layers.c: false after the message when b makes weights (dense, conv, ...) and is called outside a net.
bool layer_inside_net(Lowerer *L, const Builtin *b, const Expr *call);
// The language's function names (builtins.c), up to max of them into out; their count.
int builtin_names(const char **out, int max);
// The activation a name stands for (OP_INPUT for linear); false if it is none.
bool find_activation(const char *name, OpKind *op);
// Applies an activation to `node` ($attr0 = *param, or the row's default
// when param is NULL), naming it `<prefix>_<layer_name>_<activation>`.
int apply_activation(Lowerer *L, int node, OpKind act, const double *param, Loc loc, const char *layer_name);
const char *activation_name(OpKind op);  // "linear" for OP_INPUT
Value call_builtin(Lowerer *L, Scope *scope, const Builtin *b, const Expr *call, const Value *implicit);
// Binds a call's arguments to b's parameters (implicit: a pipeline's input,
// or NULL), evaluating them; false after a report.
bool bind_builtin_args(Lowerer *L, Scope *scope, const Builtin *b, const Expr *call, const Value *implicit, Bound *out);

Loc arg_loc(const Bound *args, int i, const Expr *call);
bool want_tensor(const Bound *args, int i, const Builtin *b, const Expr *call, int *node);
bool want_int(const Bound *args, int i, const Builtin *b, const Expr *call, int lo, int *out);
// A whole number of at least lo when given, else `fallback`; clears *ok after reporting.
int whole_arg(const Bound *args, int i, const Builtin *b, const Expr *call, int lo, int fallback, bool *ok);
// An activation argument: one of the activation list (the message lists them).
bool want_activation(const Bound *args, int i, const Builtin *b, const Expr *call, OpKind *act);

// The lowering of each builtin row (builtins.c, layers.c), named by ops.def.
#define BUILTIN_OP(kind, name, params, lowering, summary) \
  Value lowering(Lowerer *L, const Builtin *b, const Expr *call, Bound *args);
#define BUILTIN(name, params, lowering, summary) \
  Value lowering(Lowerer *L, const Builtin *b, const Expr *call, Bound *args);
#define ACTIVATION(kind, name, forward, gradient, second, reads, param, fallback, summary)
#include "ops.def"
Value lower_activation_call(Lowerer *L, const Builtin *b, const Expr *call, Bound *args);

// Schedules (builtins.c): ramp(from, to, epochs) and cosine(...). Where a
// number must stand and `v` is a schedule, reports at loc (naming `what`)
// and returns true.
bool misplaced_schedule(const Value *v, Loc loc, const char *what);
// Whether `e`, an optimizer's lr, is a schedule call: then *op (OP_RAMP or
// OP_COSINE) and its numbers (from, to, epochs), with *ok cleared after a
// report when they are wrong. Makes no node.
bool lr_schedule(Lowerer *L, const Expr *e, OpKind *op, double *numbers, bool *ok);

// ---------------------------------------------------------------- train.c
void lower_train(Lowerer *L, const Stmt *s);
// Without steps, one loss trains every applied net with Adam (Keras's default).
void default_step(Lowerer *L);
// What `encode` and `reconstruct` use (DESIGN.md part 1).
void find_code_and_reconstruction(Lowerer *L);
// A name bound inside a functional net's body: `code` and `reconstruction`
// there are seen by the commands as at the top level (the first application).
void note_role_name(Lowerer *L, const char *name, Value v);

#endif
