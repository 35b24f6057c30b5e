// lower.c — from the AST to the graph IR. Evaluates the program top to
// bottom: params become numbers (-D overrides them), the input a node, each
// application of a net inlines its layers (the first application makes the
// weights, later ones share them), losses become scalar nodes, and the train
// block becomes steps with every default filled in.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"

typedef enum ValueKind {
  VAL_ERROR,       // already reported: propagate silently
  VAL_NUMBER,
  VAL_TENSOR,
  VAL_NET,
  VAL_ACTIVATION,  // relu, sigmoid, ... used as a value (a layer argument)
  VAL_LIST,        // a list literal given as an argument (a prior's shape); its expr holds the items
} ValueKind;

typedef struct Value {
  ValueKind kind;
  double number;
  int node;
  int net;
  OpKind activation;  // OP_RELU...; OP_INPUT stands for `linear`
} Value;

typedef struct Binding {
  const char *name;
  Loc loc;
  Value value;
} Binding;

typedef struct Scope {
  Binding *items;
  int n, cap;
  struct Scope *parent;
} Scope;

// The weights made by one layer call site of one net.
typedef struct WeightSlot {
  int net;
  const Expr *site;
  int kernel, bias;  // param node ids
} WeightSlot;

typedef struct Lowerer {
  Graph *graph;
  const Program *program;
  Scope globals;
  WeightSlot *slots;
  int n_slots;
  int current_net;       // the net being applied, or -1
  int *dense_count;      // per net: dense layers made so far
  struct ConvSite *conv_sites;  // conv-family layer call sites seen, per net (lower_conv_family)
  int n_conv_sites;
  char prefix[128];      // names of the nodes being made start with it
  int first_recon_pred;  // the prediction of the first mse/bce whose target is the input
  const char *failed_losses[64];  // losses already reported, so steps naming them stay quiet
  int n_failed_losses;
  const Stmt *train;
} Lowerer;

static const Value error_value = {.kind = VAL_ERROR};

static Value tensor_value(int node) { return node < 0 ? error_value : (Value){.kind = VAL_TENSOR, .node = node}; }

// ------------------------------------------------------------- scopes
static Binding *scope_find(Scope *scope, const char *name) {
  for (; scope; scope = scope->parent)
    for (int i = 0; i < scope->n; i++)
      if (strcmp(scope->items[i].name, name) == 0) return &scope->items[i];
  return NULL;
}

static void scope_bind(Scope *scope, const char *name, Loc loc, Value value) {
  Binding *old = NULL;
  for (int i = 0; i < scope->n; i++)
    if (strcmp(scope->items[i].name, name) == 0) old = &scope->items[i];
  if (old) {
    diag_error(loc, "'%s' is already defined", name);
    diag_note(old->loc, "'%s' was defined here", name);
    return;
  }
  if (scope->n == scope->cap) {
    scope->cap = scope->cap ? scope->cap * 2 : 16;
    scope->items = realloc(scope->items, (size_t)scope->cap * sizeof(Binding));
  }
  scope->items[scope->n++] = (Binding){.name = name, .loc = loc, .value = value};
}

// -------------------------------------------------------------- nodes
// Adds a node named `<prefix>_<suffix>` when it is new.
static int add_named(Lowerer *L, OpKind op, const int *inputs, int n_inputs, Loc loc, const char *suffix) {
  int before = L->graph->n_nodes;
  int id = graph_add(L->graph, op, inputs, n_inputs, loc);
  if (id >= before && id >= 0) {
    char name[300];
    snprintf(name, sizeof name, "%s%s%s", L->prefix, L->prefix[0] ? "_" : "", suffix);
    graph_set_name(L->graph, id, name);
  }
  return id;
}

static int number_node(Lowerer *L, double value, Loc loc) { return graph_add_constant(L->graph, value, loc); }

static const struct {
  const char *name;
  OpKind op;
} activations[] = {{"relu", OP_RELU},       {"leaky_relu", OP_LEAKY_RELU}, {"sigmoid", OP_SIGMOID},
                   {"tanh", OP_TANH},       {"softplus", OP_SOFTPLUS},     {"linear", OP_INPUT}};

enum { LEAKY_RELU_DEFAULT_SLOPE_X100 = 20 };  // Keras 3's default negative slope, 0.2

static const char *activation_name(OpKind op) {
  for (size_t i = 0; i < sizeof activations / sizeof *activations; i++)
    if (activations[i].op == op) return activations[i].name;
  return "linear";
}

static int apply_activation(Lowerer *L, int node, OpKind act, double slope, Loc loc, const char *layer_name) {
  if (act == OP_INPUT || node < 0) return node;  // linear
  char suffix[120];
  snprintf(suffix, sizeof suffix, "%s%s%s", layer_name ? layer_name : "", layer_name ? "_" : "", activation_name(act));
  if (act == OP_LEAKY_RELU) {
    int before = L->graph->n_nodes;
    int id = graph_add_attr(L->graph, OP_LEAKY_RELU, &node, 1, (double[MAX_ATTRS]){slope}, loc);
    if (id >= before) {
      char name[sizeof L->prefix + sizeof suffix + 2];
      snprintf(name, sizeof name, "%s%s%s", L->prefix, L->prefix[0] ? "_" : "", suffix);
      graph_set_name(L->graph, id, name);
    }
    return id;
  }
  return add_named(L, act, &node, 1, loc, suffix);
}

// ----------------------------------------------------------- arguments
// A builtin's parameters, bound from a call's positional and keyword
// arguments. In a pipeline the input is implicit and comes first.
enum { MAX_BUILTIN_ARGS = 8 };

typedef struct Bound {
  const Expr *expr[MAX_BUILTIN_ARGS];
  Value value[MAX_BUILTIN_ARGS];
  bool present[MAX_BUILTIN_ARGS];
} Bound;

static Value eval_expr(Lowerer *L, Scope *scope, const Expr *expr);

typedef struct Builtin Builtin;
typedef Value (*LowerFn)(Lowerer *L, const Builtin *b, const Expr *call, Bound *args);

struct Builtin {
  const char *name;
  const char *params[MAX_BUILTIN_ARGS];  // "?" suffix: optional; "..." : any number of nets
  LowerFn lower;                        // NULL: not supported yet
  const char *summary;
};

static int builtin_arity(const Builtin *b) {
  int n = 0;
  while (n < MAX_BUILTIN_ARGS && b->params[n]) n++;
  return n;
}

static bool param_optional(const char *param) { return param[strlen(param) - 1] == '?'; }

static bool param_named(const char *param, const char *name) {
  size_t n = strlen(name);
  return strncmp(param, name, n) == 0 && (param[n] == '\0' || param[n] == '?');
}

// pad=same | pad=valid: the number 0 or 1 (another name is an error value).
static Value pad_value(const Expr *e) {
  if (strcmp(e->name, "same") == 0) return (Value){.kind = VAL_NUMBER, .number = 0};
  if (strcmp(e->name, "valid") == 0) return (Value){.kind = VAL_NUMBER, .number = 1};
  diag_error(e->loc, "pad must be same or valid, not '%s'", e->name);
  return error_value;
}

// Binds a call's arguments, `implicit` (when not NULL) being the pipeline's
// input. Returns false after reporting.
static bool bind_args(Lowerer *L, Scope *scope, const Builtin *b, const Expr *call, const Value *implicit,
                      Bound *out) {
  memset(out, 0, sizeof *out);
  int arity = builtin_arity(b), next = 0;
  bool ok = true;
  if (implicit) {
    out->value[0] = *implicit, out->present[0] = true;
    next = 1;
  }
  for (int i = 0; i < call->n_args; i++) {
    const Arg *arg = &call->args[i];
    int slot = -1;
    if (!arg->keyword) {
      if (next >= arity) {
        int given = call->n_args + (implicit ? 1 : 0);
        diag_error(arg->loc, "%s takes at most %d argument%s%s, but %d %s given", b->name, arity - (implicit ? 1 : 0),
                   arity - (implicit ? 1 : 0) == 1 ? "" : "s", implicit ? " after its input" : "",
                   given - (implicit ? 1 : 0), given - (implicit ? 1 : 0) == 1 ? "was" : "were");
        return false;
      }
      slot = next++;
    } else {
      for (int p = 0; p < arity; p++)
        if (param_named(b->params[p], arg->keyword)) slot = p;
      if (slot < 0) {
        diag_error(arg->loc, "%s has no argument named '%s'", b->name, arg->keyword);
        ok = false;
        continue;
      }
      if (out->present[slot]) {
        diag_error(arg->loc, "%s: argument '%s' is given twice", b->name, arg->keyword);
        ok = false;
        continue;
      }
    }
    out->expr[slot] = arg->value;
    out->present[slot] = true;
    out->value[slot] = arg->value->kind == EXPR_LIST ? (Value){.kind = VAL_LIST}
                       : param_named(b->params[slot], "pad") && arg->value->kind == EXPR_NAME
                           ? pad_value(arg->value)
                           : eval_expr(L, scope, arg->value);
    if (out->value[slot].kind == VAL_ERROR) ok = false;
  }
  for (int p = 0; p < arity && ok; p++) {
    if (!out->present[p] && !param_optional(b->params[p])) {
      diag_error(call->loc, "%s needs its argument '%s'%s", b->name, b->params[p],
                 p == 0 && !implicit ? " (the input)" : "");
      ok = false;
    }
  }
  return ok;
}

static Loc arg_loc(const Bound *args, int i, const Expr *call) { return args->expr[i] ? args->expr[i]->loc : call->loc; }

static bool want_tensor(const Bound *args, int i, const Builtin *b, const Expr *call, int *node) {
  if (args->value[i].kind == VAL_TENSOR) return *node = args->value[i].node, true;
  diag_error(arg_loc(args, i, call), "%s: argument '%s' must be a tensor value", b->name, b->params[i]);
  return false;
}

static bool want_int(const Bound *args, int i, const Builtin *b, const Expr *call, int lo, int *out) {
  const Value *v = &args->value[i];
  if (v->kind != VAL_NUMBER || v->number != floor(v->number) || v->number < lo || v->number > 1 << 24) {
    diag_error(arg_loc(args, i, call), "%s: argument '%s' must be a whole number of at least %d", b->name, b->params[i],
               lo);
    return false;
  }
  *out = (int)v->number;
  return true;
}

// Where a number is given for a tensor (a loss target), make it a constant.
static bool want_tensor_or_number(Lowerer *L, const Bound *args, int i, const Builtin *b, const Expr *call, int *node) {
  if (args->value[i].kind == VAL_NUMBER) return *node = number_node(L, args->value[i].number, arg_loc(args, i, call)), true;
  return want_tensor(args, i, b, call, node);
}

// --------------------------------------------------------------- layers
static Value lower_dense(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int x = -1, units = 0;
  if (!want_tensor(args, 0, b, call, &x) | !want_int(args, 1, b, call, 1, &units)) return error_value;
  OpKind act = OP_INPUT;
  if (args->present[2]) {
    if (args->value[2].kind != VAL_ACTIVATION) {
      diag_error(arg_loc(args, 2, call), "dense: the activation must be one of relu, leaky_relu, sigmoid, tanh, softplus, linear");
      return error_value;
    }
    act = args->value[2].activation;
  }
  if (L->current_net < 0) {
    diag_error(call->loc, "dense makes weights, so it must be inside a net: net name = dense(...)");
    return error_value;
  }
  Graph *g = L->graph;
  Shape in = g->nodes[x].shape;
  if (!in.batched || in.rank != 1) {
    char s[64];
    shape_format(in, s, sizeof s);
    diag_error(call->loc, "dense needs a flat input of shape [features] per sample, but got %s%s", s,
               in.batched ? "; add flatten() before it" : "");
    return error_value;
  }
  WeightSlot *slot = NULL;
  for (int i = 0; i < L->n_slots; i++)
    if (L->slots[i].net == L->current_net && L->slots[i].site == call) slot = &L->slots[i];
  Net *net = &g->nets[L->current_net];
  char layer[160];
  if (!slot) {
    int index = ++L->dense_count[L->current_net];
    snprintf(layer, sizeof layer, "dense_%d", index);
    char name[300];
    int fan_in = in.dims[0];
    snprintf(name, sizeof name, "%s.%s.kernel", net->name, layer);
    int kernel = graph_add_param(g, name, L->current_net, (Shape){.rank = 2, .dims = {fan_in, units}}, true, fan_in,
                                 units, call->loc);
    snprintf(name, sizeof name, "%s.%s.bias", net->name, layer);
    int bias = graph_add_param(g, name, L->current_net, (Shape){.rank = 1, .dims = {units}}, false, fan_in, units,
                               call->loc);
    L->slots = realloc(L->slots, (size_t)(L->n_slots + 1) * sizeof(WeightSlot));
    slot = &L->slots[L->n_slots++];
    *slot = (WeightSlot){.net = L->current_net, .site = call, .kernel = kernel, .bias = bias};
    int y = add_named(L, OP_DENSE, (int[]){x, kernel, bias}, 3, call->loc, layer);
    y = apply_activation(L, y, act, LEAKY_RELU_DEFAULT_SLOPE_X100 / 100.0, call->loc, layer);
    if (y < 0) return error_value;
    g->layers = realloc(g->layers, (size_t)(g->n_layers + 1) * sizeof(Layer));
    Layer *l = &g->layers[g->n_layers++];
    char full[300], description[200];
    snprintf(full, sizeof full, "%s.%s", net->name, layer);
    snprintf(description, sizeof description, "dense(%d%s%s)", units, act == OP_INPUT ? "" : ", ",
             act == OP_INPUT ? "" : activation_name(act));
    *l = (Layer){.name = strdup(full), .description = strdup(description), .node = y,
                 .params = (long)fan_in * units + units, .flops = 2.0 * fan_in * units + units, .loc = call->loc};
    return tensor_value(y);
  }
  // A later application of the net: the same weights.
  const char *param_name = g->params[g->nodes[slot->kernel].param_index].name;
  const char *dot = strchr(param_name, '.');
  const char *end = strrchr(param_name, '.');
  snprintf(layer, sizeof layer, "%.*s", (int)(end - dot - 1), dot + 1);
  int y = add_named(L, OP_DENSE, (int[]){x, slot->kernel, slot->bias}, 3, call->loc, layer);
  return tensor_value(apply_activation(L, y, act, LEAKY_RELU_DEFAULT_SLOPE_X100 / 100.0, call->loc, layer));
}

// relu(v), sigmoid(v), ... and leaky_relu(v, slope)
static Value lower_activation_call(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int x = -1;
  if (!want_tensor(args, 0, b, call, &x)) return error_value;
  for (size_t i = 0; i < sizeof activations / sizeof *activations; i++) {
    if (strcmp(activations[i].name, b->name) != 0) continue;
    double slope = LEAKY_RELU_DEFAULT_SLOPE_X100 / 100.0;
    if (args->present[1]) {
      if (args->value[1].kind != VAL_NUMBER) {
        diag_error(arg_loc(args, 1, call), "leaky_relu: the slope must be a number");
        return error_value;
      }
      slope = args->value[1].number;
    }
    return tensor_value(apply_activation(L, x, activations[i].op, slope, call->loc, NULL));
  }
  return error_value;
}

// -------------------------------------------------------------- losses
static Value lower_pair_loss(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int p = -1, t = -1;
  if (!want_tensor(args, 0, b, call, &p) | !want_tensor_or_number(L, args, 1, b, call, &t)) return error_value;
  Graph *g = L->graph;
  bool bce = strcmp(b->name, "bce") == 0;
  if (t == g->input_node && L->first_recon_pred < 0) L->first_recon_pred = p;
  if (bce && g->nodes[p].op == OP_SIGMOID) {  // from the logits: never log(0)
    int node = add_named(L, OP_BCE_LOGITS, (int[]){g->nodes[p].inputs[0], t}, 2, call->loc, "bce");
    if (node >= 0 && g->nodes[node].loc.line == 0) g->nodes[node].loc = call->loc;
    return tensor_value(node);
  }
  return tensor_value(add_named(L, bce ? OP_BCE : OP_MSE, (int[]){p, t}, 2, call->loc, b->name));
}

static Value lower_reduction(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  const Value *v = &args->value[0];
  OpKind op = strcmp(b->name, "mean") == 0 ? OP_MEAN : strcmp(b->name, "sum") == 0 ? OP_SUM : OP_L1;
  if (v->kind == VAL_NET && op == OP_L1) {  // l1(net): sum of |kernel weights|
    Net *net = &L->graph->nets[v->net];
    if (!net->applied) {
      diag_error(arg_loc(args, 0, call), "net '%s' has no weights yet: apply it before l1() refers to it", net->name);
      return error_value;
    }
    int total = -1;
    for (int i = 0; i < net->n_params; i++) {
      const Param *param = &L->graph->params[net->param_ids[i]];
      if (!param->is_kernel) continue;
      int term = add_named(L, OP_L1, &param->node, 1, call->loc, "l1");
      total = total < 0 ? term : add_named(L, OP_ADD, (int[]){total, term}, 2, call->loc, "l1_sum");
    }
    return total < 0 ? tensor_value(number_node(L, 0, call->loc)) : tensor_value(total);
  }
  int x = -1;
  if (!want_tensor(args, 0, b, call, &x)) return error_value;
  return tensor_value(add_named(L, op, &x, 1, call->loc, b->name));
}

// l2(net, ...): the sum of squared kernel weights of the nets, or l2(v):
// the sum of squares of a value per sample, averaged over the batch.
static Value lower_l2(Lowerer *L, Scope *scope, const Expr *call) {
  int total = -1;
  if (call->n_args == 0) {
    diag_error(call->loc, "l2 needs at least one net or value");
    return error_value;
  }
  for (int a = 0; a < call->n_args; a++) {
    const Arg *arg = &call->args[a];
    if (arg->keyword) {
      diag_error(arg->loc, "l2 has no argument named '%s'", arg->keyword);
      return error_value;
    }
    Value v = eval_expr(L, scope, arg->value);
    if (v.kind == VAL_ERROR) return error_value;
    if (v.kind == VAL_TENSOR) {
      int term = add_named(L, OP_SUM_SQUARES, &v.node, 1, call->loc, "l2");
      total = total < 0 ? term : add_named(L, OP_ADD, (int[]){total, term}, 2, call->loc, "l2_sum");
      continue;
    }
    if (v.kind != VAL_NET) {
      diag_error(arg->value->loc, "l2 takes nets (the sum of their squared weights) or values");
      return error_value;
    }
    Net *net = &L->graph->nets[v.net];
    if (!net->applied) {
      diag_error(arg->value->loc, "net '%s' has no weights yet: apply it before l2() refers to it", net->name);
      return error_value;
    }
    for (int i = 0; i < net->n_params; i++) {
      const Param *param = &L->graph->params[net->param_ids[i]];
      if (!param->is_kernel) continue;
      int term = add_named(L, OP_SUM_SQUARES, &param->node, 1, call->loc, "l2");
      total = total < 0 ? term : add_named(L, OP_ADD, (int[]){total, term}, 2, call->loc, "l2_sum");
    }
  }
  return total < 0 ? tensor_value(number_node(L, 0, call->loc)) : tensor_value(total);
}

// gaussian_noise(v, std), masking_noise(v, p), salt_pepper(v, p), clip(v, lo, hi),
// dropout(v, p) and kl_sparsity(h, rho): a tensor, and numbers that become the
// node's attributes.
static Value lower_with_numbers(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  static const struct {
    const char *name;
    OpKind op;
  } ops[] = {{"gaussian_noise", OP_GAUSSIAN_NOISE}, {"masking_noise", OP_MASKING_NOISE},
             {"salt_pepper", OP_SALT_PEPPER},       {"clip", OP_CLIP},
             {"dropout", OP_DROPOUT},               {"kl_sparsity", OP_KL_SPARSITY}};
  int x = -1;
  if (!want_tensor(args, 0, b, call, &x)) return error_value;
  double attrs[MAX_ATTRS] = {0};
  for (int i = 1; i < builtin_arity(b); i++) {
    if (args->value[i].kind != VAL_NUMBER) {
      diag_error(arg_loc(args, i, call), "%s: argument '%s' must be a number", b->name, b->params[i]);
      return error_value;
    }
    attrs[i - 1] = args->value[i].number;
  }
  OpKind op = OP_INPUT;
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (strcmp(ops[i].name, b->name) == 0) op = ops[i].op;
  const char *problem = NULL;
  switch (op) {
  case OP_GAUSSIAN_NOISE: problem = attrs[0] >= 0 && isfinite(attrs[0]) ? NULL : "the std must be at least 0"; break;
  case OP_MASKING_NOISE:
  case OP_SALT_PEPPER: problem = attrs[0] >= 0 && attrs[0] <= 1 ? NULL : "the fraction p must be from 0 to 1"; break;
  case OP_CLIP: problem = attrs[0] < attrs[1] ? NULL : "lo must be below hi"; break;
  case OP_DROPOUT:
    problem = attrs[0] >= 0 && attrs[0] < 1 ? NULL
                                            : "the fraction p must be at least 0 and below 1 (p = 1 would drop every value)";
    attrs[1] = 1 / (1 - attrs[0]);  // the survivors' scale (ops.c)
    break;
  case OP_KL_SPARSITY: problem = attrs[0] > 0 && attrs[0] < 1 ? NULL : "rho must lie strictly between 0 and 1"; break;
  default: return error_value;
  }
  if (problem) {
    diag_error(arg_loc(args, 1, call), "%s: %s", b->name, problem);
    return error_value;
  }
  int before = L->graph->n_nodes;
  int id = graph_add_attr(L->graph, op, &x, 1, attrs, call->loc);
  if (id >= before) {
    char name[sizeof L->prefix + 40];
    snprintf(name, sizeof name, "%s%s%s", L->prefix, L->prefix[0] ? "_" : "", b->name);
    graph_set_name(L->graph, id, name);
  }
  return tensor_value(id);
}

// gaussian([d], std), uniform([d], lo, hi), mixture([d], k, std, radius):
// a sample of the prior per batch row (ops_prior.c).
static bool eval_whole(Lowerer *L, const Expr *e, const char *what, long lo, long hi, long *out);

static Value lower_prior_call(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  const Expr *list = args->value[0].kind == VAL_LIST ? args->expr[0] : NULL;
  if (!list || list->n_items != 1) {
    diag_error(arg_loc(args, 0, call), "%s: the first argument is the shape of one sample, a list of one size like [2]",
               b->name);
    return error_value;
  }
  long dims;
  if (!eval_whole(L, list->items[0], "a prior's size", 1, 1 << 20, &dims)) return error_value;
  double numbers[MAX_BUILTIN_ARGS] = {0};
  bool present[MAX_BUILTIN_ARGS] = {false};
  Loc locs[MAX_BUILTIN_ARGS];
  for (int i = 1; i < builtin_arity(b); i++) {
    locs[i - 1] = arg_loc(args, i, call);
    present[i - 1] = args->present[i];
    if (!args->present[i]) continue;
    if (args->value[i].kind != VAL_NUMBER) {
      diag_error(locs[i - 1], "%s: argument '%s' must be a number", b->name, b->params[i]);
      return error_value;
    }
    numbers[i - 1] = args->value[i].number;
  }
  OpKind op = strcmp(b->name, "gaussian") == 0  ? OP_PRIOR_GAUSSIAN
              : strcmp(b->name, "uniform") == 0 ? OP_PRIOR_UNIFORM
                                                : OP_PRIOR_MIXTURE;
  int id = lower_prior(L->graph, op, (int)dims, numbers, present, locs, call->loc);
  if (id >= 0) {
    char name[sizeof L->prefix + 40];
    snprintf(name, sizeof name, "%s%s%s", L->prefix, L->prefix[0] ? "_" : "", b->name);
    graph_set_name(L->graph, id, name);
  }
  return tensor_value(id);
}

// ------------------------------------------------- convolutional layers
// conv, deconv, maxpool, upsample, unpool, flatten, reshape (ops_conv.c has
// the ops). Each call site of a net is one layer: `<net>.<kind>_<i>` in the
// summary, its weights `<net>.conv_<i>.kernel` [filters, in, k, k] (PyTorch's
// Conv2d layout) or `<net>.deconv_<i>.kernel` [in, filters, k, k]
// (ConvTranspose2d's), and `.bias` [filters]; a later application of the net
// shares them.
typedef struct ConvSite {
  int net;
  const Expr *site;
  char layer[48];
  int kernel, bias;  // param nodes, or -1
} ConvSite;

static int whole_arg(const Bound *args, int i, const Builtin *b, const Expr *call, int lo, int fallback, bool *ok) {
  int v = fallback;
  if (args->present[i] && !want_int(args, i, b, call, lo, &v)) *ok = false;
  return v;
}

static Value lower_conv_family(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  Graph *g = L->graph;
  int x = -1;
  if (!want_tensor(args, 0, b, call, &x)) return error_value;
  int before = g->n_nodes;
  const char *kind = b->name;
  bool is_conv = strcmp(kind, "conv") == 0, is_deconv = strcmp(kind, "deconv") == 0;
  bool ok = true;
  double attr[MAX_ATTRS] = {0};
  int filters = 0, k = 0;
  OpKind act = OP_INPUT;
  Shape in = g->nodes[x].shape;
  char description[200];
  if (is_conv || is_deconv) {
    filters = whole_arg(args, 1, b, call, 1, 0, &ok);
    k = whole_arg(args, 2, b, call, 1, 0, &ok);
    int stride = whole_arg(args, 4, b, call, 1, is_deconv ? 2 : 1, &ok);
    int pad = whole_arg(args, 5, b, call, 0, 0, &ok);
    if (args->present[3]) {
      if (args->value[3].kind != VAL_ACTIVATION) {
        diag_error(arg_loc(args, 3, call), "%s: the activation must be one of relu, leaky_relu, sigmoid, tanh, softplus, linear", kind);
        return error_value;
      }
      act = args->value[3].activation;
    }
    if (!ok) return error_value;
    attr[0] = stride, attr[1] = pad;
    if (!in.batched || in.rank != 3) {
      char s[64];
      shape_format(in, s, sizeof s);
      diag_error(call->loc, "%s needs an image input of shape [channels, height, width] per sample, but got %s%s", kind, s,
                 in.batched && in.rank == 1 ? "; add reshape([c, h, w]) before it" : "");
      return error_value;
    }
    if (L->current_net < 0) {
      diag_error(call->loc, "%s makes weights, so it must be inside a net: net name = %s(...)", kind, kind);
      return error_value;
    }
    char stride_text[32] = "";
    if (stride != (is_deconv ? 2 : 1)) snprintf(stride_text, sizeof stride_text, ", stride=%d", stride);
    snprintf(description, sizeof description, "%s(%d, %d%s%s%s%s)", kind, filters, k, act == OP_INPUT ? "" : ", ",
             act == OP_INPUT ? "" : activation_name(act), stride_text, pad ? ", pad=valid" : "");
  } else if (strcmp(kind, "maxpool") == 0 || strcmp(kind, "upsample") == 0) {
    attr[0] = whole_arg(args, 1, b, call, 1, 0, &ok);
    if (strcmp(kind, "maxpool") == 0) attr[1] = whole_arg(args, 2, b, call, 0, 1, &ok);  // valid unless pad=same
    if (!ok) return error_value;
    snprintf(description, sizeof description, "%s(%d%s)", kind, (int)attr[0],
             strcmp(kind, "maxpool") == 0 && attr[1] == 0 ? ", pad=same" : "");
  } else if (strcmp(kind, "unpool") == 0) {
    int pool = -1;
    if (!want_tensor(args, 1, b, call, &pool)) return error_value;
    if (g->nodes[pool].op != OP_MAXPOOL) {
      diag_error(arg_loc(args, 1, call), "unpool: its second argument must be a value made by maxpool (its switches)");
      return error_value;
    }
    memcpy(attr, g->nodes[pool].attr, sizeof attr);
    snprintf(description, sizeof description, "unpool(%s)", args->expr[1] && args->expr[1]->kind == EXPR_NAME ? args->expr[1]->name : "pool");
    int y = graph_add_attr(g, OP_UNPOOL, (int[]){x, g->nodes[pool].inputs[0]}, 2, attr, call->loc);
    x = y;  // made below like the others: the node exists already
    if (y < 0) return error_value;
  } else if (strcmp(kind, "flatten") == 0) {
    attr[0] = (double)shape_size(in);
    snprintf(description, sizeof description, "flatten()");
  } else {  // reshape([..])
    const Expr *list = args->value[1].kind == VAL_LIST ? args->expr[1] : NULL;
    if (!list || list->n_items < 1 || list->n_items > 3) {
      diag_error(arg_loc(args, 1, call), "reshape: the shape is a list of 1 to 3 sizes, like [8, 4, 4]");
      return error_value;
    }
    size_t used = (size_t)snprintf(description, sizeof description, "reshape([");
    for (int i = 0; i < list->n_items; i++) {
      long d;
      if (!eval_whole(L, list->items[i], "a dimension", 1, 1 << 24, &d)) return error_value;
      attr[i] = (double)d;
      used += (size_t)snprintf(description + used, sizeof description - used, "%s%ld", i ? ", " : "", d);
    }
    snprintf(description + used, sizeof description - used, "])");
  }

  // The call site's layer: made on the net's first application, found after.
  ConvSite *site = NULL;
  for (int i = 0; i < L->n_conv_sites; i++)
    if (L->conv_sites[i].net == L->current_net && L->conv_sites[i].site == call) site = &L->conv_sites[i];
  bool first = !site;
  if (first) {
    L->conv_sites = realloc(L->conv_sites, (size_t)(L->n_conv_sites + 1) * sizeof(ConvSite));
    site = &L->conv_sites[L->n_conv_sites++];
    *site = (ConvSite){.net = L->current_net, .site = call, .kernel = -1, .bias = -1};
    int index = 1;
    for (int i = 0; i + 1 < L->n_conv_sites; i++)
      index += L->conv_sites[i].net == L->current_net && strncmp(L->conv_sites[i].layer, kind, strlen(kind)) == 0 &&
               L->conv_sites[i].layer[strlen(kind)] == '_';
    snprintf(site->layer, sizeof site->layer, "%s_%d", kind, index);
    if (is_conv || is_deconv) {
      Net *net = &g->nets[L->current_net];
      char name[300];
      int c = in.dims[0];
      Shape ks = {.rank = 4, .dims = {is_conv ? filters : c, is_conv ? c : filters, k, k}};
      int fan_in = c * k * k, fan_out = filters * k * k;  // Keras: the receptive field times the channels
      if (is_deconv) fan_in = filters * k * k, fan_out = c * k * k;
      snprintf(name, sizeof name, "%s.%s.kernel", net->name, site->layer);
      site->kernel = graph_add_param(g, name, L->current_net, ks, true, fan_in, fan_out, call->loc);
      snprintf(name, sizeof name, "%s.%s.bias", net->name, site->layer);
      site->bias = graph_add_param(g, name, L->current_net, (Shape){.rank = 1, .dims = {filters}}, false, fan_in,
                                   fan_out, call->loc);
    }
  }
  int y;
  if (is_conv || is_deconv) {
    y = graph_add_attr(g, is_conv ? OP_CONV : OP_DECONV, (int[]){x, site->kernel, site->bias}, 3, attr, call->loc);
  } else if (strcmp(kind, "unpool") == 0) {
    y = x;
  } else {
    OpKind op = strcmp(kind, "maxpool") == 0 ? OP_MAXPOOL : strcmp(kind, "upsample") == 0 ? OP_UPSAMPLE : OP_RESHAPE;
    y = graph_add_attr(g, op, &x, 1, attr, call->loc);
  }
  if (y < 0) return error_value;
  if (y >= before) {
    char name[300];
    snprintf(name, sizeof name, "%s%s%s", L->prefix, L->prefix[0] ? "_" : "", site->layer);
    graph_set_name(g, y, name);
  }
  y = apply_activation(L, y, act, LEAKY_RELU_DEFAULT_SLOPE_X100 / 100.0, call->loc, site->layer);
  if (y < 0) return error_value;
  if (first) {
    Shape out = g->nodes[y].shape;
    long params = 0;
    double flops = 0;
    if (is_conv || is_deconv) {
      int c = in.dims[0];
      params = (long)filters * c * k * k + filters;
      flops = is_conv ? 2.0 * (double)shape_size(out) * c * k * k + (double)shape_size(out)
                      : 2.0 * (double)shape_size(in) * filters * k * k + (double)shape_size(out);
    }
    g->layers = realloc(g->layers, (size_t)(g->n_layers + 1) * sizeof(Layer));
    char full[300];
    snprintf(full, sizeof full, "%s.%s", g->nets[L->current_net].name, site->layer);
    g->layers[g->n_layers++] = (Layer){.name = strdup(full), .description = strdup(description), .node = y,
                                       .params = params, .flops = flops, .loc = call->loc};
  }
  return tensor_value(y);
}

// ------------------------------------------------------------- builtins
static const Builtin builtins[] = {
    {"dense", {"input", "units", "activation?"}, lower_dense, "fully connected layer with optional activation"},
    {"conv", {"input", "filters", "k", "activation?", "stride?", "pad?"}, lower_conv_family, "2-D convolution"},
    {"deconv", {"input", "filters", "k", "activation?", "stride?", "pad?"}, lower_conv_family,
     "transposed 2-D convolution"},
    {"maxpool", {"input", "k", "pad?"}, lower_conv_family, "max pooling that records its switches"},
    {"upsample", {"input", "k"}, lower_conv_family, "nearest-neighbour upsampling"},
    {"unpool", {"input", "pool"}, lower_conv_family, "max-unpooling with a maxpool's switches"},
    {"flatten", {"input"}, lower_conv_family, "flattens a sample to one axis"},
    {"reshape", {"input", "shape"}, lower_conv_family, "gives a sample a new shape"},
    {"dropout", {"input", "p"}, lower_with_numbers, "zeroes a fraction p while training, scales the rest by 1/(1-p)"},
    {"relu", {"input"}, lower_activation_call, "max(v, 0)"},
    {"leaky_relu", {"input", "slope?"}, lower_activation_call, "v if v > 0 else slope * v (slope 0.2)"},
    {"sigmoid", {"input"}, lower_activation_call, "1 / (1 + exp(-v))"},
    {"tanh", {"input"}, lower_activation_call, "hyperbolic tangent"},
    {"softplus", {"input"}, lower_activation_call, "log(1 + exp(v))"},
    {"linear", {"input"}, lower_activation_call, "the identity"},
    {"gaussian_noise", {"input", "std"}, lower_with_numbers, "adds N(0, std^2) noise while training"},
    {"masking_noise", {"input", "p"}, lower_with_numbers, "zeroes a fraction p while training"},
    {"salt_pepper", {"input", "p"}, lower_with_numbers, "sets a fraction p to 0 or 1 while training"},
    {"clip", {"input", "lo", "hi"}, lower_with_numbers, "clamps to [lo, hi]"},
    {"gaussian", {"shape", "std?"}, lower_prior_call, "a Gaussian prior sample per batch row"},
    {"uniform", {"shape", "lo", "hi"}, lower_prior_call, "a uniform prior sample per batch row"},
    {"mixture", {"shape", "k", "std", "radius?"}, lower_prior_call, "a mixture-of-Gaussians prior sample per batch row"},
    {"mse", {"pred", "target"}, lower_pair_loss, "mean squared error over all elements"},
    {"bce", {"pred", "target"}, lower_pair_loss, "binary cross-entropy over all elements"},
    {"l1", {"input"}, lower_reduction, "sum of |v| per sample, averaged over the batch (or of a net's weights)"},
    {"l2", {"nets..."}, NULL, "sum of squared kernel weights of the nets (or of squares of a value, per sample)"},
    {"kl_sparsity", {"input", "rho"}, lower_with_numbers, "KL sparsity penalty"},
    {"mean", {"input"}, lower_reduction, "mean over all elements"},
    {"sum", {"input"}, lower_reduction, "sum over all elements"},
};

static const Builtin *find_builtin(const char *name) {
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
    if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
  return NULL;
}

// aec --list-ops: `name(arg, opt?, nets...)`, the summary, and whether this
// build lowers it; docs/language.md is checked against this list.
void list_ops(FILE *out) {
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++) {
    const Builtin *b = &builtins[i];
    char signature[160];
    int used = snprintf(signature, sizeof signature, "%s(", b->name);
    for (int p = 0; p < MAX_BUILTIN_ARGS && b->params[p] && used < (int)sizeof signature; p++)
      used += snprintf(signature + used, sizeof signature - (size_t)used, "%s%s", p ? ", " : "", b->params[p]);
    if (used < (int)sizeof signature) snprintf(signature + used, sizeof signature - (size_t)used, ")");
    bool supported = b->lower || strcmp(b->name, "l2") == 0;
    fprintf(out, "%-48s  %s%s\n", signature, b->summary, supported ? "" : " (not supported yet)");
  }
}

static bool find_activation(const char *name, OpKind *op) {
  for (size_t i = 0; i < sizeof activations / sizeof *activations; i++)
    if (strcmp(activations[i].name, name) == 0) return *op = activations[i].op, true;
  return false;
}

// ---------------------------------------------------------------- nets
static Value apply_net(Lowerer *L, int net_index, const Value *inputs, int n_inputs, Loc loc);

static Value call_builtin(Lowerer *L, Scope *scope, const Builtin *b, const Expr *call, const Value *implicit) {
  if (!b->lower && strcmp(b->name, "l2") != 0) {
    diag_error(call->loc, "%s is not supported yet", b->name);
    return error_value;
  }
  if (strcmp(b->name, "l2") == 0) {
    if (implicit) {
      diag_error(call->loc, "l2 cannot be a pipeline stage");
      return error_value;
    }
    return lower_l2(L, scope, call);
  }
  Bound args;
  if (!bind_args(L, scope, b, call, implicit, &args)) return error_value;
  return b->lower(L, b, call, &args);
}

static Value eval_call(Lowerer *L, Scope *scope, const Expr *call) {
  Binding *binding = scope_find(scope, call->name);
  if (binding && binding->value.kind == VAL_NET) {
    Value inputs[MAX_BUILTIN_ARGS];
    if (call->n_args > MAX_BUILTIN_ARGS) {
      diag_error(call->loc, "too many arguments for net '%s'", call->name);
      return error_value;
    }
    bool ok = true;
    for (int i = 0; i < call->n_args; i++) {
      if (call->args[i].keyword) {
        diag_error(call->args[i].loc, "nets take positional arguments only");
        return error_value;
      }
      inputs[i] = eval_expr(L, scope, call->args[i].value);
      if (inputs[i].kind == VAL_ERROR) ok = false;
      else if (inputs[i].kind != VAL_TENSOR) {
        diag_error(call->args[i].value->loc, "a net is applied to tensor values");
        ok = false;
      }
    }
    return ok ? apply_net(L, binding->value.net, inputs, call->n_args, call->loc) : error_value;
  }
  if (binding) {
    diag_error(call->loc, "'%s' is a value, not a net or an operation; it cannot be called", call->name);
    return error_value;
  }
  const Builtin *b = find_builtin(call->name);
  if (!b) {
    diag_error(call->loc, "unknown operation or net '%s'", call->name);
    return error_value;
  }
  return call_builtin(L, scope, b, call, NULL);
}

// One stage of a pipeline applied to the previous stage's output.
static Value apply_stage(Lowerer *L, Scope *scope, const Expr *stage, Value input) {
  if (stage->kind == EXPR_NAME) {
    Binding *binding = scope_find(scope, stage->name);
    if (binding && binding->value.kind == VAL_NET) return apply_net(L, binding->value.net, &input, 1, stage->loc);
    OpKind act;
    if (!binding && find_activation(stage->name, &act))
      return tensor_value(apply_activation(L, input.node, act, LEAKY_RELU_DEFAULT_SLOPE_X100 / 100.0, stage->loc, NULL));
    const Builtin *b = find_builtin(stage->name);
    if (b && !binding) {
      Expr call = *stage;
      call.kind = EXPR_CALL;
      return call_builtin(L, scope, b, &call, &input);
    }
    diag_error(stage->loc, "'%s' is not a layer, an activation or a net", stage->name);
    return error_value;
  }
  if (stage->kind == EXPR_CALL) {
    Binding *binding = scope_find(scope, stage->name);
    if (binding && binding->value.kind == VAL_NET) {
      diag_error(stage->loc, "in a pipeline a net is written by its name alone: '%s', not '%s(...)'", stage->name,
                 stage->name);
      return error_value;
    }
    const Builtin *b = find_builtin(stage->name);
    if (!b) {
      diag_error(stage->loc, "unknown operation '%s'", stage->name);
      return error_value;
    }
    return call_builtin(L, scope, b, stage, &input);
  }
  diag_error(stage->loc, "a pipeline stage must be a layer call like dense(64, relu), an activation or a net");
  return error_value;
}

static Value apply_net(Lowerer *L, int net_index, const Value *inputs, int n_inputs, Loc loc) {
  Graph *g = L->graph;
  Net *net = &g->nets[net_index];
  const Stmt *stmt = net->stmt;
  int arity = stmt->value ? 1 : stmt->n_net_params;
  if (n_inputs != arity) {
    diag_error(loc, "net '%s' takes %d input%s, but %d %s given", net->name, arity, arity == 1 ? "" : "s", n_inputs,
               n_inputs == 1 ? "was" : "were");
    return error_value;
  }
  if (net->applying) {
    diag_error(loc, "net '%s' applies itself; nets cannot be recursive", net->name);
    return error_value;
  }
  int saved_net = L->current_net;
  char saved_prefix[sizeof L->prefix];
  memcpy(saved_prefix, L->prefix, sizeof saved_prefix);
  L->current_net = net_index;
  snprintf(L->prefix, sizeof L->prefix, "%s", net->name);
  net->applying = true;
  Value result = error_value;
  if (stmt->value) {  // pipeline
    result = inputs[0];
    for (int i = 0; i < stmt->value->n_items && result.kind == VAL_TENSOR; i++)
      result = apply_stage(L, &L->globals, stmt->value->items[i], result);
  } else {  // functional form
    Scope local = {.parent = &L->globals};
    for (int i = 0; i < arity; i++) scope_bind(&local, stmt->net_params[i].name, stmt->net_params[i].loc, inputs[i]);
    for (int i = 0; i < stmt->n_body; i++) {
      const Stmt *s = stmt->body[i];
      Value v = eval_expr(L, &local, s->value);
      if (s->kind == STMT_RETURN) {
        result = v;
        break;
      }
      scope_bind(&local, s->name.name, s->name.loc, v);
    }
    free(local.items);
    if (result.kind != VAL_TENSOR && result.kind != VAL_ERROR) {
      diag_error(loc, "net '%s' must return a tensor value", net->name);
      result = error_value;
    }
  }
  net->applying = false;
  net->applied |= result.kind == VAL_TENSOR;
  L->current_net = saved_net;
  memcpy(L->prefix, saved_prefix, sizeof saved_prefix);
  return result;
}

// --------------------------------------------------------- expressions
static Value binary(Lowerer *L, char op, Value a, Value b, Loc loc) {
  if (a.kind == VAL_ERROR || b.kind == VAL_ERROR) return error_value;
  if (a.kind == VAL_NUMBER && b.kind == VAL_NUMBER) {
    double x = a.number, y = b.number;
    double r = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : x / y;
    if (op == '/' && y == 0) {
      diag_error(loc, "division by zero");
      return error_value;
    }
    return (Value){.kind = VAL_NUMBER, .number = r};
  }
  if ((a.kind != VAL_NUMBER && a.kind != VAL_TENSOR) || (b.kind != VAL_NUMBER && b.kind != VAL_TENSOR)) {
    diag_error(loc, "'%c' combines numbers and tensor values only", op);
    return error_value;
  }
  int x = a.kind == VAL_NUMBER ? number_node(L, a.number, loc) : a.node;
  int y = b.kind == VAL_NUMBER ? number_node(L, b.number, loc) : b.node;
  OpKind kind = op == '+' ? OP_ADD : op == '-' ? OP_SUB : op == '*' ? OP_MUL : OP_DIV;
  return tensor_value(add_named(L, kind, (int[]){x, y}, 2, loc, op_name(kind)));
}

static Value eval_expr(Lowerer *L, Scope *scope, const Expr *e) {
  if (!e) return error_value;
  switch (e->kind) {
  case EXPR_NUMBER: return (Value){.kind = VAL_NUMBER, .number = e->number};
  case EXPR_NAME: {
    Binding *binding = scope_find(scope, e->name);
    if (binding) return binding->value;
    OpKind act;
    if (find_activation(e->name, &act)) return (Value){.kind = VAL_ACTIVATION, .activation = act};
    if (find_builtin(e->name))
      diag_error(e->loc, "'%s' is an operation; call it with arguments: %s(...)", e->name, e->name);
    else
      diag_error(e->loc, "unknown name '%s'", e->name);
    return error_value;
  }
  case EXPR_CALL: return eval_call(L, scope, e);
  case EXPR_BINARY: {
    Value a = eval_expr(L, scope, e->lhs);
    Value b = eval_expr(L, scope, e->rhs);
    return binary(L, e->op, a, b, e->loc);
  }
  case EXPR_NEGATE: {
    Value a = eval_expr(L, scope, e->lhs);
    if (a.kind == VAL_NUMBER) return (Value){.kind = VAL_NUMBER, .number = -a.number};
    if (a.kind == VAL_TENSOR) return tensor_value(add_named(L, OP_NEG, &a.node, 1, e->loc, "neg"));
    if (a.kind != VAL_ERROR) diag_error(e->loc, "'-' applies to numbers and tensor values only");
    return error_value;
  }
  case EXPR_STRING: diag_error(e->loc, "a string is not a value here"); return error_value;
  case EXPR_LIST: diag_error(e->loc, "a list is not a value here; lists give shapes"); return error_value;
  case EXPR_PIPELINE: diag_error(e->loc, "pipelines ('->') only define nets"); return error_value;
  }
  return error_value;
}

static bool eval_number(Lowerer *L, const Expr *e, double *out) {
  Value v = eval_expr(L, &L->globals, e);
  if (v.kind == VAL_NUMBER) return *out = v.number, true;
  if (v.kind != VAL_ERROR) diag_error(e->loc, "expected a number");
  return false;
}

static bool eval_whole(Lowerer *L, const Expr *e, const char *what, long lo, long hi, long *out) {
  double v;
  if (!eval_number(L, e, &v)) return false;
  if (v != floor(v) || v < (double)lo || v > (double)hi) {
    diag_error(e->loc, "%s must be a whole number from %ld to %ld", what, lo, hi);
    return false;
  }
  *out = (long)v;
  return true;
}

// ----------------------------------------------------------- statements
static void lower_input(Lowerer *L, const Stmt *s) {
  Graph *g = L->graph;
  if (g->input_node >= 0) {
    diag_error(s->loc, "only one input is supported; '%s' is already the input", g->input_name);
    return;
  }
  const Expr *list = s->value;
  if (!list || list->kind != EXPR_LIST || list->n_items < 1 || list->n_items > 3) {
    diag_error(list ? list->loc : s->loc, "an input's shape is a list of 1 to 3 sizes, like [784] or [1, 28, 28]");
    return;
  }
  Shape shape = {.batched = true, .rank = list->n_items};
  for (int i = 0; i < list->n_items; i++) {
    long d;
    if (!eval_whole(L, list->items[i], "a dimension", 1, 1 << 24, &d)) return;
    shape.dims[i] = (int)d;
  }
  if (shape_size(shape) > (1u << 26)) {
    diag_error(list->loc, "the input is too large: %zu elements per sample", shape_size(shape));
    return;
  }
  int id = graph_add(g, OP_INPUT, NULL, 0, s->loc);
  g->nodes[id].shape = shape;
  graph_set_name(g, id, s->name.name);
  g->input_node = id;
  g->input_name = strdup(s->name.name);
  scope_bind(&L->globals, s->name.name, s->name.loc, tensor_value(id));
}

static void lower_net(Lowerer *L, const Stmt *s) {
  Graph *g = L->graph;
  if (scope_find(&L->globals, s->name.name)) {
    scope_bind(&L->globals, s->name.name, s->name.loc, error_value);  // reports the clash
    return;
  }
  g->nets = realloc(g->nets, (size_t)(g->n_nets + 1) * sizeof(Net));
  g->nets[g->n_nets] = (Net){.name = strdup(s->name.name), .loc = s->name.loc, .stmt = s};
  L->dense_count = realloc(L->dense_count, (size_t)(g->n_nets + 1) * sizeof(int));
  L->dense_count[g->n_nets] = 0;
  scope_bind(&L->globals, s->name.name, s->name.loc, (Value){.kind = VAL_NET, .net = g->n_nets});
  g->n_nets++;
}

static void lower_loss(Lowerer *L, const Stmt *s) {
  snprintf(L->prefix, sizeof L->prefix, "%s", s->name.name);
  int errors = diag_error_count();
  Value v = eval_expr(L, &L->globals, s->value);
  L->prefix[0] = '\0';
  if (v.kind == VAL_ERROR || diag_error_count() != errors) {
    if (L->n_failed_losses < 64) L->failed_losses[L->n_failed_losses++] = s->name.name;
    return;
  }
  Graph *g = L->graph;
  if (v.kind != VAL_TENSOR || !shape_is_scalar(g->nodes[v.node].shape)) {
    char shape[64] = "a number";
    if (v.kind == VAL_TENSOR) shape_format(g->nodes[v.node].shape, shape, sizeof shape);
    diag_error(s->value->loc, "a loss must be a scalar, but this is %s%s; mse, bce, mean and sum make scalars",
               v.kind == VAL_TENSOR ? "of shape " : "", shape);
    return;
  }
  for (int i = 0; i < g->n_losses; i++)
    if (strcmp(g->losses[i].name, s->name.name) == 0) {
      diag_error(s->name.loc, "loss '%s' is already defined", s->name.name);
      return;
    }
  if (g->nodes[v.node].op == OP_CONSTANT) {
    diag_error(s->value->loc, "loss '%s' is a constant; it must depend on a net", s->name.name);
    return;
  }
  graph_set_name(g, v.node, s->name.name);
  g->losses = realloc(g->losses, (size_t)(g->n_losses + 1) * sizeof(Loss));
  g->losses[g->n_losses++] = (Loss){.name = strdup(s->name.name), .node = v.node, .loc = s->name.loc};
  scope_bind(&L->globals, s->name.name, s->name.loc, v);
}

static void lower_assign(Lowerer *L, const Stmt *s) {
  snprintf(L->prefix, sizeof L->prefix, "%s", s->name.name);
  Value v = eval_expr(L, &L->globals, s->value);
  L->prefix[0] = '\0';
  scope_bind(&L->globals, s->name.name, s->name.loc, v);
}

static void lower_param(Lowerer *L, const Stmt *s, const Define *defines, int n_defines, bool *define_used) {
  double value;
  bool overridden = false;
  for (int i = 0; i < n_defines; i++)
    if (strcmp(defines[i].name, s->name.name) == 0) value = defines[i].value, overridden = define_used[i] = true;
  if (!overridden && !eval_number(L, s->value, &value)) return;
  scope_bind(&L->globals, s->name.name, s->name.loc, (Value){.kind = VAL_NUMBER, .number = value});
}

// ---------------------------------------------------------- train block
static void set_optimizer(Lowerer *L, Step *step, const Expr *call) {
  if (!call || call->kind != EXPR_CALL || (strcmp(call->name, "adam") != 0 && strcmp(call->name, "sgd") != 0)) {
    diag_error(call ? call->loc : step->loc, "the optimizer must be adam(...) or sgd(...)");
    return;
  }
  bool adam = strcmp(call->name, "adam") == 0;
  step->optimizer = adam ? OPTIMIZER_ADAM : OPTIMIZER_SGD;
  step->lr = adam ? 0.001 : 0.01;
  step->beta1 = 0.9, step->beta2 = 0.999, step->eps = 1e-8, step->momentum = 0;
  static const char *const adam_args[] = {"lr", "beta1", "beta2", "eps"};
  static const char *const sgd_args[] = {"lr", "momentum"};
  const char *const *names = adam ? adam_args : sgd_args;
  int n_names = adam ? 4 : 2;
  double *slots_adam[] = {&step->lr, &step->beta1, &step->beta2, &step->eps};
  double *slots_sgd[] = {&step->lr, &step->momentum};
  double **slots = adam ? slots_adam : slots_sgd;
  for (int i = 0; i < call->n_args; i++) {
    const Arg *arg = &call->args[i];
    int slot = arg->keyword ? -1 : i;
    for (int j = 0; arg->keyword && j < n_names; j++)
      if (strcmp(names[j], arg->keyword) == 0) slot = j;
    if (slot < 0 || slot >= n_names) {
      if (arg->keyword)
        diag_error(arg->loc, "%s has no setting '%s'", call->name, arg->keyword);
      else
        diag_error(arg->loc, "%s takes at most %d settings", call->name, n_names);
      continue;
    }
    double v;
    if (!eval_number(L, arg->value, &v)) continue;
    bool ok = strcmp(names[slot], "lr") == 0 || strcmp(names[slot], "eps") == 0 ? v > 0 && isfinite(v) : v >= 0 && v < 1;
    if (!ok) {
      diag_error(arg->value->loc, "%s: %s = %g is out of range", call->name, names[slot], v);
      continue;
    }
    *slots[slot] = v;
  }
}

static int compare_ints(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void finish_step(Graph *g, Step *step) {
  step->params = malloc(((size_t)g->n_params + 1) * sizeof(int));
  size_t text_len = 1;
  for (int i = 0; i < step->n_nets; i++) text_len += strlen(g->nets[step->nets[i]].name) + 2;
  step->nets_text = calloc(text_len, 1);
  for (int i = 0; i < step->n_nets; i++) {
    Net *net = &g->nets[step->nets[i]];
    if (i) strcat(step->nets_text, ", ");
    strcat(step->nets_text, net->name);
    for (int p = 0; p < net->n_params; p++) step->params[step->n_params++] = net->param_ids[p];
  }
  qsort(step->params, (size_t)step->n_params, sizeof(int), compare_ints);
  step->grad_nodes = malloc(((size_t)step->n_params + 1) * sizeof(int));
  for (int i = 0; i < step->n_params; i++) {
    step->grad_nodes[i] = -1;
    step->n_elems += g->params[step->params[i]].size;
  }
}

static void lower_train(Lowerer *L, const Stmt *s) {
  Graph *g = L->graph;
  for (int i = 0; i < s->n_settings; i++) {
    const TrainSetting *set = &s->settings[i];
    const char *key = set->key.name;
    if (strcmp(key, "data") == 0 || strcmp(key, "test") == 0) {
      if (set->value->kind != EXPR_STRING) {
        diag_error(set->value->loc, "'%s' takes a string: \"fashion-mnist:train\" or a file path", key);
        continue;
      }
      char **slot = key[0] == 'd' ? &g->train.data : &g->train.test;
      free(*slot);
      *slot = strdup(set->value->name);
    } else if (strcmp(key, "batch") == 0 || strcmp(key, "epochs") == 0 || strcmp(key, "seed") == 0) {
      long v;
      long lo = key[0] == 'b' ? 1 : 0, hi = key[0] == 's' ? 4294967295L : 1 << 20;
      if (!eval_whole(L, set->value, key, lo, hi, &v)) continue;
      if (key[0] == 'b') g->train.batch = (int)v;
      else if (key[0] == 'e') g->train.epochs = (int)v;
      else g->train.seed = (uint64_t)v;
    } else {
      diag_error(set->key.loc, "unknown train setting '%s'; the settings are data, test, batch, epochs and seed", key);
    }
  }
  for (int i = 0; i < s->n_steps; i++) {
    const TrainStep *ts = &s->steps[i];
    Step step = {.loc = ts->loc, .loss_name = strdup(ts->loss.name), .loss_index = -1};
    for (int l = 0; l < g->n_losses; l++)
      if (strcmp(g->losses[l].name, ts->loss.name) == 0) step.loss_index = l;
    bool ok = true;
    if (step.loss_index < 0) {
      bool reported = false;
      for (int f = 0; f < L->n_failed_losses; f++) reported |= strcmp(L->failed_losses[f], ts->loss.name) == 0;
      if (reported) {  // its error is already out; checking its nets would only cascade
        free(step.loss_name);
        continue;
      }
      diag_error(ts->loss.loc, "unknown loss '%s'", ts->loss.name);
      ok = false;
    }
    step.nets = malloc(((size_t)ts->n_nets + 1) * sizeof(int));
    for (int n = 0; n < ts->n_nets; n++) {
      Binding *b = scope_find(&L->globals, ts->nets[n].name);
      if (!b || b->value.kind != VAL_NET) {
        diag_error(ts->nets[n].loc, "unknown net '%s'", ts->nets[n].name);
        ok = false;
        continue;
      }
      int net = b->value.net;
      for (int k = 0; k < step.n_nets; k++)
        if (step.nets[k] == net) {
          diag_error(ts->nets[n].loc, "net '%s' is named twice in this step", ts->nets[n].name);
          ok = false;
        }
      if (!g->nets[net].applied) {
        diag_error(ts->nets[n].loc, "net '%s' is never applied, so it has no weights to train", ts->nets[n].name);
        ok = false;
      }
      step.nets[step.n_nets++] = net;
    }
    set_optimizer(L, &step, ts->optimizer);
    g->steps = realloc(g->steps, (size_t)(g->n_steps + 1) * sizeof(Step));
    g->steps[g->n_steps++] = step;
    if (ok) finish_step(g, &g->steps[g->n_steps - 1]);
  }
}

// Without steps, one loss trains every applied net with Adam (Keras's default).
static void default_step(Lowerer *L) {
  Graph *g = L->graph;
  if (g->n_steps > 0 || g->n_losses == 0) return;
  Loc loc = L->train ? L->train->loc : g->losses[0].loc;
  if (g->n_losses > 1) {
    diag_error(loc, "the file defines %d losses but no step; say which to train: step minimize LOSS over NETS with adam()",
               g->n_losses);
    return;
  }
  Step step = {.loc = g->losses[0].loc, .loss_name = strdup(g->losses[0].name), .loss_index = 0,
               .optimizer = OPTIMIZER_ADAM, .lr = 0.001, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
  step.nets = malloc(((size_t)g->n_nets + 1) * sizeof(int));
  for (int n = 0; n < g->n_nets; n++)
    if (g->nets[n].applied) step.nets[step.n_nets++] = n;
  g->steps = malloc(sizeof(Step));
  g->steps[g->n_steps++] = step;
  finish_step(g, &g->steps[0]);
}

// What `encode` and `reconstruct` use (DESIGN.md part 1).
static void find_code_and_reconstruction(Lowerer *L) {
  Graph *g = L->graph;
  Binding *code = scope_find(&L->globals, "code");
  if (code && code->value.kind == VAL_TENSOR && g->nodes[code->value.node].shape.batched)
    g->code_node = code->value.node;
  else {
    Binding *encoder = scope_find(&L->globals, "encoder");
    if (encoder && encoder->value.kind == VAL_NET && g->nodes[g->input_node].shape.batched) {
      int errors = diag_error_count();
      Value input = tensor_value(g->input_node);
      Value v = apply_net(L, encoder->value.net, &input, 1, g->nets[encoder->value.net].loc);
      if (v.kind == VAL_TENSOR && g->nodes[v.node].shape.batched) g->code_node = v.node;
      if (diag_error_count() != errors) g->code_node = -1;
    }
  }
  Binding *recon = scope_find(&L->globals, "reconstruction");
  int candidate = recon && recon->value.kind == VAL_TENSOR ? recon->value.node : L->first_recon_pred;
  if (candidate >= 0 && shape_size(g->nodes[candidate].shape) == shape_size(g->nodes[g->input_node].shape) &&
      g->nodes[candidate].shape.batched)
    g->reconstruction_node = candidate;
}

Graph *lower_program(const Program *program, const Define *defines, int n_defines) {
  Graph *g = graph_new();
  g->train = (TrainConfig){.data = strdup("fashion-mnist:train"), .test = strdup("fashion-mnist:test"),
                           .batch = 32, .epochs = 1, .seed = 1};
  Lowerer L = {.graph = g, .program = program, .current_net = -1, .first_recon_pred = -1};
  bool *define_used = calloc((size_t)n_defines + 1, sizeof(bool));
  int errors_before = diag_error_count();
  Loc file_start = {.source = program->source, .line = 1, .col = 1};
  for (int i = 0; i < program->n_stmts; i++) {
    const Stmt *s = program->stmts[i];
    switch (s->kind) {
    case STMT_PARAM: lower_param(&L, s, defines, n_defines, define_used); break;
    case STMT_INPUT: lower_input(&L, s); break;
    case STMT_NET: lower_net(&L, s); break;
    case STMT_ASSIGN: lower_assign(&L, s); break;
    case STMT_LOSS: lower_loss(&L, s); break;
    case STMT_RETURN: diag_error(s->loc, "'return' belongs inside a net's braces"); break;
    case STMT_TRAIN:
      if (L.train) {
        diag_error(s->loc, "there is already a train block");
        break;
      }
      L.train = s;
      break;
    }
  }
  for (int i = 0; i < n_defines; i++)
    if (!define_used[i]) diag_error_plain("-D %s: the file has no 'param %s'", defines[i].name, defines[i].name);
  if (g->input_node < 0 && diag_error_count() == errors_before)
    diag_error(file_start, "the file declares no input; add one, like: input x: [784]");
  else if (g->n_losses == 0 && diag_error_count() == errors_before)
    diag_error(file_start, "the file defines no loss; add one, like: loss recon = bce(decoder(encoder(x)), x)");
  if (L.train) lower_train(&L, L.train);
  if (diag_error_count() == errors_before) default_step(&L);
  if (diag_error_count() == errors_before) find_code_and_reconstruction(&L);
  if (diag_error_count() == errors_before) find_roles(g);
  free(define_used);
  free(L.globals.items);
  free(L.slots);
  free(L.dense_count);
  free(L.conv_sites);
  if (diag_error_count() != errors_before) {
    graph_free(g);
    return NULL;
  }
  return g;
}
