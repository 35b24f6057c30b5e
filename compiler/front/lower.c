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
// What a functional net's `return` gives: one tensor value, or several (VAL_RESULTS).
static Value net_results(Lowerer *L, Scope *scope, const Stmt *ret, const char *net, Loc loc) {
  int n = ret->n_values > 1 ? ret->n_values : 1;
  if (n > MAX_RESULTS) {
    diag_error(ret->loc, "net '%s' returns %d values; at most %d are allowed", net, n, MAX_RESULTS);
    return error_value;
  }
  Value results = {.kind = VAL_RESULTS, .n_results = n};
  for (int i = 0; i < n; i++) {
    const Expr *e = n > 1 ? ret->values[i] : ret->value;
    Value v = eval_expr(L, scope, e);
    if (v.kind == VAL_ERROR) return error_value;
    if (v.kind != VAL_TENSOR) {
      diag_error(n > 1 ? e->loc : loc, "net '%s' must return tensor values", net);
      return error_value;
    }
    if (n == 1) return v;
    results.results[i] = v.node;
  }
  return results;
}

// "unknown name 'sigmod'; did you mean 'sigmoid'?": the nearest of the names
// in scope and the language's functions.
static void unknown_name(Scope *scope, const Expr *e) {
  enum { MAX = 512 };
  const char *names[MAX];
  int n = builtin_names(names, MAX);
  for (Scope *s = scope; s; s = s->parent)
    for (int i = 0; i < s->n && n < MAX; i++)  // a call names a net; a value, anything bound
      if (e->kind != EXPR_CALL || s->items[i].value.kind == VAL_NET) names[n++] = s->items[i].name;
  const char *near = diag_nearest(e->name, names, n);
  const char *what = e->kind == EXPR_CALL ? "operation or net" : "name";
  if (near)
    diag_error(e->loc, "unknown %s '%s'; did you mean '%s'?", what, e->name, near);
  else
    diag_error(e->loc, "unknown %s '%s'", what, e->name);
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
    unknown_name(scope, call);
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
    for (int i = 0; i < stmt->value->n_items && result.kind == VAL_TENSOR; i++) {
      result = apply_stage(L, &L->globals, stmt->value->items[i], result);
      if (result.kind == VAL_RESULTS) {
        diag_error(stmt->value->items[i]->loc, "'%s' gives %d results; a pipeline stage must give one",
                   stmt->value->items[i]->name, result.n_results);
        result = error_value;
      }
    }
  } else {  // functional form
    Scope local = {.parent = &L->globals};
    for (int i = 0; i < arity; i++) scope_bind(&local, stmt->net_params[i].name, stmt->net_params[i].loc, inputs[i]);
    for (int i = 0; i < stmt->n_body; i++) {
      const Stmt *s = stmt->body[i];
      if (s->kind == STMT_RETURN) {
        result = net_results(L, &local, s, net->name, loc);
        break;
      }
      bind_statement(L, &local, s);
      for (int n = 0; n < (s->n_names > 1 ? s->n_names : 1); n++) {  // train.c: `code` and `reconstruction` in a body
        const Ident *name = s->n_names > 1 ? &s->names[n] : &s->name;
        note_role_name(L, name->name, scope_find(&local, name->name)->value);
      }
    }
    scope_free(&local);
  }
  net->applying = false;
  net->applied |= result.kind == VAL_TENSOR || result.kind == VAL_RESULTS;
  L->current_net = saved_net;
  memcpy(L->prefix, saved_prefix, sizeof saved_prefix);
  return result;
}

// --------------------------------------------------------- expressions
// A loss is the mean over the batch of a value per sample. mse, bce, l1,
// l2(v) and kl_sparsity are such means already (scalars computed from the
// batch): the mean passes through + and - and scaling by a number or a
// schedule, but a nonlinear function of them would be a function of the
// mean, not the mean of the function, so it is refused.
bool per_sample_or_number(Lowerer *L, int node, const char *what, Loc loc) {
  const Node *n = &L->graph->nodes[node];
  if (!shape_is_scalar(n->shape) || !n->from_batch) return true;
  diag_error(loc,
             "%s of a mean over the batch: mse, bce, l1, l2 and kl_sparsity are already means over the batch, so "
             "%s would not be the mean of a per-sample value; write the term per sample, like "
             "mean(square(p - x)) for mse(p, x)",
             what, what);
  return false;
}

static bool batch_mean_value(const Graph *g, int node) {
  return shape_is_scalar(g->nodes[node].shape) && g->nodes[node].from_batch;
}

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
  if (x < 0 || y < 0) return error_value;
  const Graph *g = L->graph;
  if (op == '*' || op == '/') {
    // a mean times (or over) a value from the batch, or anything over a mean
    bool refused = (batch_mean_value(g, x) && g->nodes[y].from_batch) ||
                   (batch_mean_value(g, y) && (g->nodes[x].from_batch || op == '/'));
    if (refused) {
      per_sample_or_number(L, batch_mean_value(g, x) ? x : y, op == '*' ? "a product" : "a division", loc);
      return error_value;
    }
  }
  OpKind kind = op == '+' ? OP_ADD : op == '-' ? OP_SUB : op == '*' ? OP_MUL : OP_DIV;
  Value result = tensor_value(add_named(L, kind, (int[]){x, y}, 2, loc, op_name(kind)));
  // numbers and schedules alone: still a schedule, which no number may stand for
  result.schedule = result.kind == VAL_TENSOR && (a.schedule || b.schedule) && (a.schedule || a.kind == VAL_NUMBER) &&
                    (b.schedule || b.kind == VAL_NUMBER);
  return result;
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
      unknown_name(scope, e);
    return error_value;
  }
  case EXPR_CALL: {
    Value v = eval_call(L, scope, e);
    if (v.kind != VAL_RESULTS) return v;
    diag_error(e->loc, "'%s' gives %d results, and a value here is one; bind them to names first: %s = %s(...)",
               e->name, v.n_results, v.n_results == 2 ? "a, b" : "a, b, ...", e->name);
    return error_value;
  }
  case EXPR_BINARY: {
    Value a = eval_expr(L, scope, e->lhs);
    Value b = eval_expr(L, scope, e->rhs);
    return binary(L, e->op, a, b, e->loc);
  }
  case EXPR_NEGATE: {
    Value a = eval_expr(L, scope, e->lhs);
    if (a.kind == VAL_NUMBER) return (Value){.kind = VAL_NUMBER, .number = -a.number};
    if (a.kind == VAL_TENSOR) {
      Value negated = tensor_value(add_named(L, OP_NEG, &a.node, 1, e->loc, "neg"));
      negated.schedule = negated.kind == VAL_TENSOR && a.schedule;
      return negated;
    }
    if (a.kind != VAL_ERROR) diag_error(e->loc, "'-' applies to numbers and tensor values only");
    return error_value;
  }
  case EXPR_STRING: diag_error(e->loc, "a string is not a value here"); return error_value;
  case EXPR_LIST: diag_error(e->loc, "a list is not a value here; lists give shapes"); return error_value;
  case EXPR_PIPELINE: diag_error(e->loc, "pipelines ('->') only define nets"); return error_value;
  case EXPR_MEMBER:
    diag_error(e->loc, "'%s' names a layer, not a value; a layer's name stands only in tied=, like dense(128, tied=%s)",
               e->name, e->name);
    return error_value;
  }
  return error_value;
}

bool eval_number(Lowerer *L, const Expr *e, double *out) {
  Value v = eval_expr(L, &L->globals, e);
  if (v.kind == VAL_NUMBER) return *out = v.number, true;
  if (v.kind != VAL_ERROR && !misplaced_schedule(&v, e->loc, NULL)) diag_error(e->loc, "expected a number");
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
  L->input_shape_loc = list->loc;
  g->nodes[id].shape = shape;
  g->nodes[id].from_batch = true;
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
  if (v.kind == VAL_TENSOR && shape_is_per_sample_scalar(g->nodes[v.node].shape))  // its mean over the batch
    v = tensor_value(add_named(L, OP_BATCH_MEAN, &v.node, 1, s->value->loc, "batch_mean"));
  if (v.kind != VAL_TENSOR || !shape_is_scalar(g->nodes[v.node].shape)) {
    char shape[64] = "a number";
    if (v.kind == VAL_TENSOR) shape_format(g->nodes[v.node].shape, shape, sizeof shape);
    diag_error(s->value->loc,
               "a loss must be a scalar per sample, but this is %s%s; sum(v) or mean(v) reduces a sample's "
               "elements, and mse and bce compare whole samples",
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
  if (v.schedule) {
    diag_error(s->value->loc, "loss '%s' is a schedule alone; it must depend on a net, as in ramp(0, 1, 10) * mean(h)",
               s->name.name);
    return;
  }
  graph_set_name(g, v.node, s->name.name);
  g->losses = grow_for(g->losses, g->n_losses, sizeof(Loss));
  g->losses[g->n_losses] = (Loss){.name = strdup(s->name.name), .node = v.node, .loc = s->name.loc};
  strmap_put(&L->loss_index, g->losses[g->n_losses].name, g->n_losses);
  g->n_losses++;
  scope_bind(&L->globals, s->name.name, s->name.loc, v);
}

void bind_statement(Lowerer *L, Scope *scope, const Stmt *s) {
  if (s->n_names <= 1) {
    scope_bind(scope, s->name.name, s->name.loc, eval_expr(L, scope, s->value));
    return;
  }
  Value v = s->value && s->value->kind == EXPR_CALL ? eval_call(L, scope, s->value) : eval_expr(L, scope, s->value);
  int given = v.kind == VAL_RESULTS ? v.n_results : 1;
  if (v.kind != VAL_ERROR && given != s->n_names) {
    const char *what = s->value->kind == EXPR_CALL ? s->value->name : "the value";
    diag_error(s->value->loc, "%d names are bound to '%s', which gives %d result%s; %s", s->n_names, what, given,
               given == 1 ? "" : "s",
               given == 1 ? "bind one name, or make the net return several values: return a, b"
                          : "bind as many names as it returns");
    v = error_value;
  }
  for (int i = 0; i < s->n_names; i++)
    scope_bind(scope, s->names[i].name, s->names[i].loc,
               v.kind == VAL_RESULTS ? tensor_value(v.results[i]) : error_value);
}

static void lower_assign(Lowerer *L, const Stmt *s) {
  snprintf(L->prefix, sizeof L->prefix, "%s", s->name.name);
  bind_statement(L, &L->globals, s);
  L->prefix[0] = '\0';
}

static void lower_param(Lowerer *L, const Stmt *s, const Define *defines, int n_defines, bool *define_used) {
  double value;
  bool overridden = false;
  for (int i = 0; i < n_defines; i++)
    if (strcmp(defines[i].name, s->name.name) == 0) value = defines[i].value, overridden = define_used[i] = true;
  if (!overridden && !eval_number(L, s->value, &value)) return;
  scope_bind_param(&L->globals, s->name.name, s->name.loc, value);
}

// After shape errors in a model with image layers: an input [h, w, c] (its
// last axis 1 or 3, its first not; Keras's habit) is read as c = h channels
// of h x w... pixels. A note at the input says aec is channels-first.
static void hint_channels_last(const Lowerer *L) {
  const Graph *g = L->graph;
  if (g->input_node < 0 || !L->saw_window) return;
  Shape s = g->nodes[g->input_node].shape;
  bool last = s.dims[2] == 1 || s.dims[2] == 3, first = s.dims[0] == 1 || s.dims[0] == 3;
  if (s.rank != 3 || !last || first) return;
  diag_note(L->input_shape_loc,
            "aec is channels-first: an image input is [channels, height, width], so [%d, %d, %d] is %d channels of "
            "%d x %d pixels; for %d x %d images of %d channel%s write [%d, %d, %d]",
            s.dims[0], s.dims[1], s.dims[2], s.dims[0], s.dims[1], s.dims[2], s.dims[0], s.dims[1], s.dims[2],
            s.dims[2] == 1 ? "" : "s", s.dims[2], s.dims[0], s.dims[1]);
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
  if (diag_error_count() != errors_before) hint_channels_last(&L);
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
