// scope.c — names and arguments: the scopes that bind names to values (the
// file's globals, a functional net's locals), and the binding of a call's
// positional and keyword arguments to a builtin's parameters, with the
// checks the lowerings ask of them (a tensor, a whole number, an activation).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowering.h"

// ------------------------------------------------------------- scopes
static Binding *scope_find_here(Scope *scope, const char *name) {
  int at = strmap_get(&scope->index, name);
  return at >= 0 ? &scope->items[at] : NULL;
}

Binding *scope_find(Scope *scope, const char *name) {
  for (; scope; scope = scope->parent) {
    Binding *found = scope_find_here(scope, name);
    if (found) return found;
  }
  return NULL;
}

void scope_bind(Scope *scope, const char *name, Loc loc, Value value) {
  Binding *old = scope_find_here(scope, name);
  if (old && old->is_param && value.kind == VAL_TENSOR) {  // a value takes a param's name (vae.ae's code)
    old->loc = loc, old->value = value, old->is_param = false;
    return;
  }
  if (old) {
    diag_error(loc, "'%s' is already defined", name);
    diag_note(old->loc, "'%s' was defined here", name);
    return;
  }
  if (scope->n == scope->cap) {
    scope->cap = scope->cap ? scope->cap * 2 : 16;
    scope->items = realloc(scope->items, (size_t)scope->cap * sizeof(Binding));
    if (!scope->items) fputs("aec: out of memory\n", stderr), exit(1);
  }
  strmap_put(&scope->index, name, scope->n);
  scope->items[scope->n++] = (Binding){.name = name, .loc = loc, .value = value};
}

void scope_bind_param(Scope *scope, const char *name, Loc loc, double number) {
  scope_bind(scope, name, loc, (Value){.kind = VAL_NUMBER, .number = number});
  Binding *bound = scope_find_here(scope, name);
  if (bound && bound->value.kind == VAL_NUMBER) bound->is_param = true;
}

void scope_free(Scope *scope) {
  free(scope->items);
  strmap_free(&scope->index);
  *scope = (Scope){.parent = scope->parent};
}

// ----------------------------------------------------------- arguments
int builtin_arity(const Builtin *b) {
  int n = 0;
  while (n < MAX_BUILTIN_ARGS && b->params[n]) n++;
  return n;
}

static bool param_optional(const char *param) { return param[strlen(param) - 1] == '?'; }

static bool param_named(const char *param, const char *name) {
  size_t n = strlen(name);
  return strncmp(param, name, n) == 0 && (param[n] == '\0' || param[n] == '?');
}

// The parameters a positional argument can fill: those before the first
// keyword-only one (tied=NET.LAYER is given by name only).
static int positional_arity(const Builtin *b) {
  int arity = builtin_arity(b);
  for (int p = 0; p < arity; p++)
    if (param_named(b->params[p], "tied")) return p;
  return arity;
}

// "units, act and tied": a builtin's argument names, for messages.
static void name_params(const Builtin *b, char *out, size_t size) {
  int arity = builtin_arity(b);
  size_t used = 0;
  for (int p = 0; p < arity && used < size; p++) {
    size_t length = strcspn(b->params[p], "?");
    used += (size_t)snprintf(out + used, size - used, "%s%.*s", p == 0 ? "" : p + 1 == arity ? " and " : ", ",
                             (int)length, b->params[p]);
  }
}

// "; did you mean 'tied'?" when an argument's name is near one of the builtin's.
static void nearest_param(const Builtin *b, const char *name, char *out, size_t size) {
  char names[MAX_BUILTIN_ARGS][32];
  const char *list[MAX_BUILTIN_ARGS];
  int arity = builtin_arity(b);
  for (int p = 0; p < arity; p++) {
    snprintf(names[p], sizeof names[p], "%.*s", (int)strcspn(b->params[p], "?"), b->params[p]);
    list[p] = names[p];
  }
  const char *near = diag_nearest(name, list, arity);
  if (near) snprintf(out, size, "; did you mean '%s'?", near);
}

// pad=same | pad=valid: the number 0 or 1 (another name is an error value).
static Value pad_value(const Expr *e) {
  if (strcmp(e->name, "same") == 0) return (Value){.kind = VAL_NUMBER, .number = 0};
  if (strcmp(e->name, "valid") == 0) return (Value){.kind = VAL_NUMBER, .number = 1};
  diag_error(e->loc, "pad must be same or valid, not '%s'", e->name);
  return error_value;
}

// Binds a call's arguments, `implicit` (when not NULL) being the pipeline's
// input. Returns false after reporting (lowering.h).
bool bind_builtin_args(Lowerer *L, Scope *scope, const Builtin *b, const Expr *call, const Value *implicit,
                       Bound *out) {
  memset(out, 0, sizeof *out);
  out->scope = scope;
  int arity = builtin_arity(b), positional = positional_arity(b), next = 0;
  bool ok = true;
  if (implicit) {
    out->value[0] = *implicit, out->present[0] = true;
    next = 1;
  }
  for (int i = 0; i < call->n_args; i++) {
    const Arg *arg = &call->args[i];
    int slot = -1;
    if (!arg->keyword) {
      if (next >= positional) {
        int given = call->n_args + (implicit ? 1 : 0);
        diag_error(arg->loc, "%s takes at most %d argument%s%s, but %d %s given%s%s", b->name,
                   positional - (implicit ? 1 : 0), positional - (implicit ? 1 : 0) == 1 ? "" : "s",
                   implicit ? " after its input" : "", given - (implicit ? 1 : 0),
                   given - (implicit ? 1 : 0) == 1 ? "was" : "were",
                   arg->value->kind == EXPR_MEMBER && positional < arity ? "; a layer's name is given by keyword: tied="
                                                                         : "",
                   arg->value->kind == EXPR_MEMBER && positional < arity ? arg->value->name : "");
        return false;
      }
      slot = next++;
    } else {
      for (int p = 0; p < arity; p++)
        if (param_named(b->params[p], arg->keyword)) slot = p;
      if (slot < 0) {
        char known[256] = "", hint[320] = "";
        name_params(b, known, sizeof known);
        if (strcmp(arg->keyword, "tied") == 0)
          snprintf(hint, sizeof hint, " (the layers that use another layer's kernel transposed are "
                                      "dense(units, tied=NET.LAYER) and deconv(filters, k, tied=NET.LAYER))");
        else
          nearest_param(b, arg->keyword, hint, sizeof hint);
        diag_error(arg->loc, "%s has no argument named '%s'; its arguments are %s%s", b->name, arg->keyword, known,
                   hint);
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
    out->value[slot] = arg->value->kind == EXPR_LIST        ? (Value){.kind = VAL_LIST}
                       : param_named(b->params[slot], "tied") ? (Value){.kind = VAL_LAYER}
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

// A builtin whose parameter ends in "..." (l2's nets) evaluates its own
// arguments, and cannot be a pipeline stage.
static bool takes_nets(const Builtin *b) {
  int arity = builtin_arity(b);
  return arity > 0 && strstr(b->params[arity - 1], "...") != NULL;
}

Value call_builtin(Lowerer *L, Scope *scope, const Builtin *b, const Expr *call, const Value *implicit) {
  Bound args = {.scope = scope};
  if (op_info(b->op)->window) L->saw_window = true;
  if (takes_nets(b)) {
    if (implicit) {
      diag_error(call->loc, "%s cannot be a pipeline stage", b->name);
      return error_value;
    }
    return b->lower(L, b, call, &args);
  }
  if (!layer_inside_net(L, b, call) || !bind_builtin_args(L, scope, b, call, implicit, &args)) return error_value;
  return b->lower(L, b, call, &args);
}

Loc arg_loc(const Bound *args, int i, const Expr *call) { return args->expr[i] ? args->expr[i]->loc : call->loc; }

bool want_tensor(const Bound *args, int i, const Builtin *b, const Expr *call, int *node) {
  if (args->value[i].kind == VAL_TENSOR) return *node = args->value[i].node, true;
  diag_error(arg_loc(args, i, call), "%s: argument '%s' must be a tensor value", b->name, b->params[i]);
  return false;
}

bool want_int(const Bound *args, int i, const Builtin *b, const Expr *call, int lo, int *out) {
  const Value *v = &args->value[i];
  if (v->kind != VAL_NUMBER || v->number != floor(v->number) || v->number < lo || v->number > 1 << 24) {
    if (misplaced_schedule(v, arg_loc(args, i, call), b->name)) return false;
    diag_error(arg_loc(args, i, call), "%s: argument '%s' must be a whole number of at least %d", b->name, b->params[i],
               lo);
    return false;
  }
  *out = (int)v->number;
  return true;
}

int whole_arg(const Bound *args, int i, const Builtin *b, const Expr *call, int lo, int fallback, bool *ok) {
  int v = fallback;
  if (args->present[i] && !want_int(args, i, b, call, lo, &v)) *ok = false;
  return v;
}
