// lower.c — from the AST to the graph IR. Evaluates the program top to
// bottom: params become numbers (-D overrides them), the input a node, each
// application of a net inlines its layers (the first application makes the
// weights, later ones share them: layers.c), builtins are lowered by the
// functions their ops.def rows name (builtins.c), losses become scalar
// nodes, and the train block becomes steps with every default filled in
// (train.c).
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lowering.h"

const Value error_value = {.kind = VAL_ERROR};

Value tensor_value(int node) { return node < 0 ? error_value : (Value){.kind = VAL_TENSOR, .node = node}; }

// -------------------------------------------------------------- nodes
int add_named_attr(Lowerer *L, OpKind op, const int *inputs, int n_inputs, const double *attrs, Loc loc,
                   const char *suffix) {
  int before = L->graph->n_nodes;
  int id = graph_add_attr(L->graph, op, inputs, n_inputs, attrs, loc);
  if (id >= before && id >= 0) {
    char name[300];
    snprintf(name, sizeof name, "%s%s%s", L->prefix, L->prefix[0] ? "_" : "", suffix);
    graph_set_name(L->graph, id, name);
  }
  return id;
}

int add_named(Lowerer *L, OpKind op, const int *inputs, int n_inputs, Loc loc, const char *suffix) {
  return add_named_attr(L, op, inputs, n_inputs, NULL, loc, suffix);
}

int number_node(Lowerer *L, double value, Loc loc) { return graph_add_constant(L->graph, value, loc); }

// ---------------------------------------------------------------- nets
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
      return tensor_value(apply_activation(L, input.node, act, NULL, stage->loc, NULL));
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

Value apply_net(Lowerer *L, int net_index, const Value *inputs, int n_inputs, Loc loc) {
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
      note_role_name(L, s->name.name, v);  // train.c: `code` and `reconstruction` in a body
    }
    scope_free(&local);
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
    if (!isfinite(r)) {
      diag_error(loc, "%g %c %g is beyond the largest number (%g); use a smaller number", x, op, y,
                 DBL_MAX);
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

Value eval_expr(Lowerer *L, Scope *scope, const Expr *e) {
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

bool eval_number(Lowerer *L, const Expr *e, double *out) {
  Value v = eval_expr(L, &L->globals, e);
  if (v.kind == VAL_NUMBER) return *out = v.number, true;
  if (v.kind != VAL_ERROR) diag_error(e->loc, "expected a number");
  return false;
}

bool eval_whole(Lowerer *L, const Expr *e, const char *what, long lo, long hi, long *out) {
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
  g->nets = grow_for(g->nets, g->n_nets, sizeof(Net));
  g->nets[g->n_nets] = (Net){.name = strdup(s->name.name), .loc = s->name.loc, .stmt = s};
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
  if (strmap_get(&L->loss_index, s->name.name) >= 0) {
    diag_error(s->name.loc, "loss '%s' is already defined", s->name.name);
    return;
  }
  if (g->nodes[v.node].op == OP_CONSTANT) {
    diag_error(s->value->loc, "loss '%s' is a constant; it must depend on a net", s->name.name);
    return;
  }
  graph_set_name(g, v.node, s->name.name);
  g->losses = grow_for(g->losses, g->n_losses, sizeof(Loss));
  g->losses[g->n_losses] = (Loss){.name = strdup(s->name.name), .node = v.node, .loc = s->name.loc};
  strmap_put(&L->loss_index, g->losses[g->n_losses].name, g->n_losses);
  g->n_losses++;
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

Graph *lower_program(const Program *program, const Define *defines, int n_defines) {
  Graph *g = graph_new();
  g->train = (TrainConfig){.data = strdup("fashion-mnist:train"), .test = strdup("fashion-mnist:test"),
                           .batch = 32, .epochs = 1, .seed = 1};
  Lowerer L = {.graph = g, .program = program, .current_net = -1, .first_recon_pred = -1,
               .net_code = -1, .net_recon = -1};
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
  scope_free(&L.globals);
  strmap_free(&L.loss_index);
  free(L.sites);
  if (diag_error_count() != errors_before) {
    graph_free(g);
    return NULL;
  }
  return g;
}
