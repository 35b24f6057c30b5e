// builtins.c — the language's builtins: their table, made from ir/ops.def's
// builtin rows (name, parameters, lowering, summary), which aec --list-ops
// prints; the activation list (the ACTIVATION rows, then linear) that layer
// arguments, pipeline stages and messages use; and the lowerings of the
// builtins that are not layers: activations, losses and reductions, l2,
// corruption and the other ops with numeric arguments, and priors. The
// layers' lowerings are in layers.c.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lowering.h"

static Value not_supported_yet(Lowerer *L, const Builtin *b, const Expr *call, Bound *args);

#define UNPACK(...) __VA_ARGS__
static const Builtin builtins[] = {
#define BUILTIN_OP(kind, name, params, lowering, summary) {name, kind, {UNPACK params}, lowering, summary, 0},
#define BUILTIN(name, params, lowering, summary) {name, OP_INPUT, {UNPACK params}, lowering, summary, 0},
#define ACTIVATION(kind, name, forward, gradient, second, reads, param, fallback, summary) \
  {name, kind, {"input", param}, lower_activation_call, summary, fallback},
#include "ops.def"
};
#undef UNPACK

const Builtin *find_builtin(const char *name) {
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
    if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
  return NULL;
}

int builtin_names(const char **out, int max) {
  int n = 0;
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins && n < max; i++) out[n++] = builtins[i].name;
  return n;
}

// A row that names a lowering this build does not have yet (none does now).
static Value not_supported_yet(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  (void)L, (void)args;
  diag_error(call->loc, "%s is not supported yet", b->name);
  return error_value;
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
    fprintf(out, "%-48s  %s%s\n", signature, b->summary, b->lower == not_supported_yet ? " (not supported yet)" : "");
  }
}

// ---------------------------------------------------------- activations
// The activations are the builtins lowered as one: ops.def's ACTIVATION
// rows, and linear (OP_INPUT), the identity.
static bool is_activation(const Builtin *b) { return b->lower == lower_activation_call; }

bool find_activation(const char *name, OpKind *op) {
  const Builtin *b = find_builtin(name);
  if (!b || !is_activation(b)) return false;
  *op = b->op;
  return true;
}

const char *activation_name(OpKind op) { return op == OP_INPUT ? "linear" : op_name(op); }

bool want_activation(const Bound *args, int i, const Builtin *b, const Expr *call, OpKind *act) {
  if (args->value[i].kind == VAL_ACTIVATION) return *act = args->value[i].activation, true;
  char list[512] = "";
  size_t used = 0;
  for (size_t a = 0; a < sizeof builtins / sizeof *builtins && used < sizeof list; a++)
    if (is_activation(&builtins[a]))
      used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", builtins[a].name);
  diag_error(arg_loc(args, i, call), "%s: the activation must be one of %s", b->name, list);
  return false;
}

int apply_activation(Lowerer *L, int node, OpKind act, const double *param, Loc loc, const char *layer_name) {
  if (act == OP_INPUT || node < 0) return node;  // linear
  double attrs[MAX_ATTRS] = {0};
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
    if (is_activation(&builtins[i]) && builtins[i].op == act) attrs[0] = param ? *param : builtins[i].fallback;
  char suffix[120];
  snprintf(suffix, sizeof suffix, "%s%s%s", layer_name ? layer_name : "", layer_name ? "_" : "", activation_name(act));
  return add_named_attr(L, act, &node, 1, attrs, loc, suffix);
}

// relu(v), sigmoid(v), ..., and leaky_relu(v, slope): an activation's
// parameter, when it has one, is its second argument.
Value lower_activation_call(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int x = -1;
  if (!want_tensor(args, 0, b, call, &x)) return error_value;
  double param = b->fallback;
  if (args->present[1]) {
    if (args->value[1].kind != VAL_NUMBER) {
      if (misplaced_schedule(&args->value[1], arg_loc(args, 1, call), b->name)) return error_value;
      diag_error(arg_loc(args, 1, call), "%s: the %.*s must be a number", b->name, (int)strcspn(b->params[1], "?"),
                 b->params[1]);
      return error_value;
    }
    param = args->value[1].number;
  }
  if (!per_sample_or_number(L, x, b->name, call->loc)) return error_value;
  return tensor_value(apply_activation(L, x, b->op, &param, call->loc, NULL));
}

// -------------------------------------------------------------- losses
// Where a number is given for a tensor (a loss target), make it a constant.
static bool want_tensor_or_number(Lowerer *L, const Bound *args, int i, const Builtin *b, const Expr *call, int *node) {
  if (args->value[i].kind == VAL_NUMBER) return *node = number_node(L, args->value[i].number, arg_loc(args, i, call)), true;
  return want_tensor(args, i, b, call, node);
}

Value lower_pair_loss(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int p = -1, t = -1;
  if (!want_tensor(args, 0, b, call, &p) | !want_tensor_or_number(L, args, 1, b, call, &t)) return error_value;
  Graph *g = L->graph;
  bool bce = b->op == OP_BCE;
  if (t == g->input_node && L->first_recon_pred < 0) L->first_recon_pred = p;
  if (bce && g->nodes[p].op == OP_SIGMOID) {  // from the logits: never log(0)
    int node = add_named(L, OP_BCE_LOGITS, (int[]){g->nodes[p].inputs[0], t}, 2, call->loc, "bce");
    if (node >= 0 && g->nodes[node].loc.line == 0) g->nodes[node].loc = call->loc;
    return tensor_value(node);
  }
  return tensor_value(add_named(L, b->op, (int[]){p, t}, 2, call->loc, b->name));
}

// mean(v), sum(v), l1(v) or l1(net): the sum of |kernel weights|.
Value lower_reduction(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  const Value *v = &args->value[0];
  OpKind op = b->op;
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
  if ((op == OP_SUM || op == OP_MEAN) && !L->graph->nodes[x].shape.batched) return tensor_value(x);  // a scalar already
  return tensor_value(add_named(L, op, &x, 1, call->loc, b->name));
}

// l2(net, ...): the sum of squared kernel weights of the nets, or l2(v):
// the sum of squares of a value per sample, averaged over the batch.
Value lower_l2(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int total = -1;
  if (call->n_args == 0) {
    diag_error(call->loc, "%s needs at least one net or value", b->name);
    return error_value;
  }
  for (int a = 0; a < call->n_args; a++) {
    const Arg *arg = &call->args[a];
    if (arg->keyword) {
      diag_error(arg->loc, "%s has no argument named '%s'", b->name, arg->keyword);
      return error_value;
    }
    Value v = eval_expr(L, args->scope, arg->value);
    if (v.kind == VAL_ERROR) return error_value;
    if (v.kind == VAL_TENSOR) {
      int term = add_named(L, OP_SUM_SQUARES, &v.node, 1, call->loc, "l2");
      total = total < 0 ? term : add_named(L, OP_ADD, (int[]){total, term}, 2, call->loc, "l2_sum");
      continue;
    }
    if (v.kind != VAL_NET) {
      diag_error(arg->value->loc, "%s takes nets (the sum of their squared weights) or values", b->name);
      return error_value;
    }
    Net *net = &L->graph->nets[v.net];
    if (!net->applied) {
      diag_error(arg->value->loc, "net '%s' has no weights yet: apply it before %s() refers to it", net->name, b->name);
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

// ------------------------------------------------- ops with numbers
// gaussian_noise(v, std), masking_noise(v, p), salt_pepper(v, p), clip(v, lo, hi),
// dropout(v, p) and kl_sparsity(h, rho): a tensor, and numbers that become the
// node's attributes.
Value lower_with_numbers(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int x = -1;
  if (!want_tensor(args, 0, b, call, &x)) return error_value;
  double attrs[MAX_ATTRS] = {0};
  for (int i = 1; i < builtin_arity(b); i++) {
    if (args->value[i].kind != VAL_NUMBER) {
      if (!misplaced_schedule(&args->value[i], arg_loc(args, i, call), b->name))
        diag_error(arg_loc(args, i, call), "%s: argument '%s' must be a number", b->name, b->params[i]);
      return error_value;
    }
    attrs[i - 1] = args->value[i].number;
  }
  const char *problem = NULL;
  switch (b->op) {
  case OP_GAUSSIAN_NOISE: problem = attrs[0] >= 0 && isfinite(attrs[0]) ? NULL : "the std must be at least 0"; break;
  case OP_MASKING_NOISE:
  case OP_SALT_PEPPER: problem = attrs[0] >= 0 && attrs[0] <= 1 ? NULL : "the fraction p must be from 0 to 1"; break;
  case OP_CLIP: problem = attrs[0] < attrs[1] ? NULL : "lo must be below hi"; break;
  case OP_DROPOUT:
    problem = attrs[0] >= 0 && attrs[0] < 1 ? NULL
                                            : "the fraction p must be at least 0 and below 1 (p = 1 would drop every value)";
    attrs[1] = 1 / (1 - attrs[0]);  // the survivors' scale (ops/noise.c)
    break;
  case OP_KL_SPARSITY: problem = attrs[0] > 0 && attrs[0] < 1 ? NULL : "rho must lie strictly between 0 and 1"; break;
  default: break;  // no range to check
  }
  if (problem) {
    diag_error(arg_loc(args, 1, call), "%s: %s", b->name, problem);
    return error_value;
  }
  return tensor_value(add_named_attr(L, b->op, &x, 1, attrs, call->loc, b->name));
}

// ---------------------------------------------------------------- priors
// gaussian([d], std), uniform([d], lo, hi), mixture([d], k, std, radius):
// a sample of the prior per batch row (ops/prior.c).
Value lower_prior_call(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
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
      if (!misplaced_schedule(&args->value[i], locs[i - 1], b->name))
        diag_error(locs[i - 1], "%s: argument '%s' must be a number", b->name, b->params[i]);
      return error_value;
    }
    numbers[i - 1] = args->value[i].number;
  }
  int id = lower_prior(L->graph, b->op, (int)dims, numbers, present, locs, call->loc);
  if (id >= 0) {
    char name[sizeof L->prefix + 40];
    snprintf(name, sizeof name, "%s%s%s", L->prefix, L->prefix[0] ? "_" : "", b->name);
    graph_set_name(L->graph, id, name);
  }
  return tensor_value(id);
}

// ------------------------------------------------------------- schedules
// ramp(from, to, epochs) and cosine(from, to, epochs): three numbers, checked
// by the op's family (ops/schedule.c). False after a report.
static bool schedule_numbers(const Builtin *b, const Expr *call, const Bound *args, double *numbers) {
  for (int i = 0; i < 3; i++) {
    if (args->value[i].kind != VAL_NUMBER) {
      diag_error(arg_loc(args, i, call), "%s: argument '%s' must be a number%s", b->name, b->params[i],
                 args->value[i].schedule ? ", not another schedule" : "");
      return false;
    }
    numbers[i] = args->value[i].number;
  }
  const char *problem = schedule_problem(numbers);
  if (problem) {
    bool about_from = !isfinite(numbers[1] - numbers[0]);  // else epochs
    diag_error(arg_loc(args, about_from ? 0 : 2, call), "%s: %s, as in %s", b->name, problem,
               b->op == OP_COSINE ? "cosine(0.001, 0.0001, 10)" : "ramp(0, 1, 10)");
    return false;
  }
  return true;
}

// A schedule in a loss: a scalar node that the generated functions set from
// the run's progress; the value remembers it is no number (Value.schedule).
Value lower_schedule(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  double numbers[MAX_ATTRS] = {0};
  if (!schedule_numbers(b, call, args, numbers)) return error_value;
  Value v = tensor_value(add_named_attr(L, b->op, NULL, 0, numbers, call->loc, b->name));
  v.schedule = v.kind == VAL_TENSOR;
  return v;
}

bool misplaced_schedule(const Value *v, Loc loc, const char *what) {
  if (!v->schedule) return false;
  diag_error(loc, "%s%sa schedule (ramp or cosine) changes during training and stands only in a loss or as an "
             "optimizer's lr; a number is needed here",
             what ? what : "", what ? ": " : "");
  return true;
}

bool lr_schedule(Lowerer *L, const Expr *e, OpKind *op, double *numbers, bool *ok) {
  *ok = true;
  if (!e || e->kind != EXPR_CALL || scope_find(&L->globals, e->name)) return false;
  const Builtin *b = find_builtin(e->name);
  if (!b || b->lower != lower_schedule) return false;
  Bound args;
  *ok = bind_builtin_args(L, &L->globals, b, e, NULL, &args) && schedule_numbers(b, e, &args, numbers);
  *op = b->op;
  return true;
}

// ---------------------------------------------------- the variational autoencoder's
// Both take a mean and a log-variance of the same shape, per sample.
static bool want_mean_and_logvar(const Bound *args, const Builtin *b, const Expr *call, Graph *g, int *mean,
                                 int *logvar) {
  if (!want_tensor(args, 0, b, call, mean) | !want_tensor(args, 1, b, call, logvar)) return false;
  Shape m = g->nodes[*mean].shape, v = g->nodes[*logvar].shape;
  char sm[64], sv[64];
  shape_format(m, sm, sizeof sm), shape_format(v, sv, sizeof sv);
  if (!m.batched || !v.batched) {
    diag_error(arg_loc(args, m.batched ? 1 : 0, call), "%s: the mean and the log-variance are values per sample, "
               "like the outputs of dense layers, but this one is a scalar", b->name);
    return false;
  }
  if (!shapes_equal(m, v)) {
    diag_error(call->loc, "%s: the mean has shape %s but the log-variance has shape %s; give both the same "
               "number of units, like dense(h, code) twice", b->name, sm, sv);
    return false;
  }
  return true;
}

// concat(a, b): two values joined along the last axis.
Value lower_concat(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int x = -1, y = -1;
  if (!want_tensor(args, 0, b, call, &x) | !want_tensor(args, 1, b, call, &y)) return error_value;
  return tensor_value(add_named(L, OP_CONCAT, (int[]){x, y}, 2, call->loc, b->name));
}

// sample_normal(mean, logvar): mean + exp(logvar / 2) * eps, eps ~ N(0, 1)
// drawn afresh each step (the reparameterization trick); mean at inference.
Value lower_sample_normal(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int mean, logvar;
  if (!want_mean_and_logvar(args, b, call, L->graph, &mean, &logvar)) return error_value;
  return tensor_value(add_named(L, OP_SAMPLE_NORMAL, (int[]){mean, logvar}, 2, call->loc, b->name));
}

// kl_normal(mean, logvar) = -0.5 * sum(1 + logvar - square(mean) - exp(logvar)),
// per sample: KL(N(mean, exp(logvar)) || N(0, 1)). Arithmetic on the two
// values, so every node and its gradient is an op the rest already has.
Value lower_kl_normal(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int mean, logvar;
  Graph *g = L->graph;
  if (!want_mean_and_logvar(args, b, call, g, &mean, &logvar)) return error_value;
  Loc loc = call->loc;
  int one_plus = add_named(L, OP_ADD, (int[]){logvar, number_node(L, 1, loc)}, 2, loc, "kl_normal_1_plus_logvar");
  int squared = add_named(L, OP_SQUARE, &mean, 1, loc, "kl_normal_mean_squared");
  int variance = add_named(L, OP_EXP, &logvar, 1, loc, "kl_normal_variance");
  int terms = add_named(L, OP_SUB, (int[]){one_plus, squared}, 2, loc, "kl_normal_terms");
  terms = add_named(L, OP_SUB, (int[]){terms, variance}, 2, loc, "kl_normal_terms");
  int total = add_named(L, OP_SUM, &terms, 1, loc, "kl_normal_sum");
  return tensor_value(add_named(L, OP_MUL, (int[]){total, number_node(L, -0.5, loc)}, 2, loc, "kl_normal"));
}
