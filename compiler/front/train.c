// train.c — the train block: its settings (data, test, batch, epochs, seed, validation, patience)
// and steps, each with its loss, nets and optimizer (whose lr may be a
// schedule, ramp(...) or cosine(...)), every default filled in; the default
// step when there is none; and the values `encode` and `reconstruct` use.
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowering.h"

// The step's optimizer, a row of runtime/aert_optimizers.def: its settings
// start at the row's defaults; the call's arguments, positional in the row's
// order or by keyword, replace them.
static void set_optimizer(Lowerer *L, Step *step, const Expr *call) {
  const OptimizerInfo *info = call && call->kind == EXPR_CALL ? optimizer_named(call->name) : NULL;
  if (!info) {
    char known[200];
    optimizer_list(known, sizeof known);
    if (call && call->kind == EXPR_CALL)
      diag_error(call->loc, "unknown optimizer '%s'; the optimizers are %s, as in adam(lr=0.001)", call->name, known);
    else
      diag_error(call ? call->loc : step->loc, "the optimizer must be a call of one of %s, as in adam(lr=0.001)", known);
    return;
  }
  step_set_optimizer(step, (OptimizerKind)(info - optimizer_table));
  int n_names = optimizer_n_settings(info);
  char names[200];
  size_t used = 0;
  for (int j = 0; j < n_names && used < sizeof names; j++)
    used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", j == 0 ? "" : j == n_names - 1 ? " and " : ", ",
                             info->settings[j].name);
  for (int i = 0; i < call->n_args; i++) {
    const Arg *arg = &call->args[i];
    int slot = arg->keyword ? -1 : i;
    for (int j = 0; arg->keyword && j < n_names; j++)
      if (strcmp(info->settings[j].name, arg->keyword) == 0) slot = j;
    if (slot < 0 || slot >= n_names) {
      if (arg->keyword)
        diag_error(arg->loc, "%s has no setting '%s'; its settings are %s", call->name, arg->keyword, names);
      else
        diag_error(arg->loc, "%s takes at most %d settings: %s", call->name, n_names, names);
      continue;
    }
    const OptimizerSetting *setting = &info->settings[slot];
    OpKind schedule;
    double numbers[3];
    bool schedule_ok;
    if (lr_schedule(L, arg->value, &schedule, numbers, &schedule_ok)) {
      if (slot != 0) {
        diag_error(arg->value->loc, "%s: only lr may follow a schedule; %s takes a number", call->name, setting->name);
        continue;
      }
      if (!schedule_ok) continue;
      if (numbers[0] < 0 || numbers[1] < 0 || (numbers[0] == 0 && numbers[1] == 0)) {
        diag_error(arg->value->loc, "%s: an lr schedule goes between rates of at least 0, not both 0; %g to %g is out of range",
                   call->name, numbers[0], numbers[1]);
        continue;
      }
      step->lr = numbers[0], step->lr_schedule = schedule, step->lr_to = numbers[1], step->lr_epochs = numbers[2];
      continue;
    }
    double v;
    if (!eval_number(L, arg->value, &v)) continue;
    if (!setting_in_range(setting->range, v)) {
      diag_error(arg->value->loc, "%s: %s = %g is out of range; it must be %s, as in %s=%g", call->name, setting->name, v,
                 setting_range_text(setting->range), setting->name, setting->fallback);
      continue;
    }
    step->settings[slot] = v;
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
    for (int p = 0; p < net->n_params; p++)  // a batchnorm's running statistics are not trained
      if (!g->params[net->param_ids[p]].state) step->params[step->n_params++] = net->param_ids[p];
  }
  qsort(step->params, (size_t)step->n_params, sizeof(int), compare_ints);
  step->grad_nodes = malloc(((size_t)step->n_params + 1) * sizeof(int));
  for (int i = 0; i < step->n_params; i++) {
    step->grad_nodes[i] = -1;
    step->n_elems += g->params[step->params[i]].size;
  }
}

// A data or test path as the generated program records it: a relative path
// is relative to the .ae file's folder, as `#include "..."` is to its file's
// (so "data/x.csv" in proj/m.ae is "proj/data/x.csv"); an absolute path,
// "fashion-mnist:..." and "none" (no test set) stay as written.
static char *data_path(Loc loc, const char *path) {
  const char *file = loc.source ? loc.source->path : NULL;
  const char *slash = file ? strrchr(file, '/') : NULL;
  if (!slash || !*path || path[0] == '/' || strcmp(path, "none") == 0 || strncmp(path, "fashion-mnist:", 14) == 0)
    return strdup(path);
  size_t dir = (size_t)(slash - file) + 1, n = strlen(path);
  char *out = malloc(dir + n + 1);
  memcpy(out, file, dir);
  memcpy(out + dir, path, n + 1);
  return out;
}

// `validation 0.1` holds out a fraction of the data; `validation "FILE"` names a
// file (a name that reads as a number gets "./", so that the program does not
// take it for a fraction).
static void lower_validation(Lowerer *L, const TrainSetting *set) {
  char text[64];
  free(L->graph->train.validation);
  L->graph->train.validation = NULL;
  if (set->value->kind == EXPR_STRING) {
    char *end;
    (void)strtod(set->value->name, &end);
    bool number = end != set->value->name && *end == 0;
    char *path = data_path(set->value->loc, set->value->name);
    if (asprintf(&L->graph->train.validation, "%s%s", number && path[0] != '/' ? "./" : "", path) < 0)
      L->graph->train.validation = NULL;
    free(path);
    return;
  }
  double v;
  if (!eval_number(L, set->value, &v)) return;
  if (!(v > 0 && v < 1)) {
    diag_error(set->value->loc, "validation holds out a fraction of the training data, between 0 and 1 (such as 0.1), "
               "not %g; or give a file in quotes", v);
    return;
  }
  snprintf(text, sizeof text, "%.17g", v);
  L->graph->train.validation = strdup(text);
}

void lower_train(Lowerer *L, const Stmt *s) {
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
      *slot = data_path(set->value->loc, set->value->name);
    } else if (strcmp(key, "validation") == 0) {
      lower_validation(L, set);
    } else if (strcmp(key, "patience") == 0) {
      long v;
      if (eval_whole(L, set->value, key, 1, 1 << 20, &v)) g->train.patience = (int)v;
    } else if (strcmp(key, "batch") == 0 || strcmp(key, "epochs") == 0 || strcmp(key, "seed") == 0) {
      long v;
      long lo = key[0] == 'b' ? 1 : 0, hi = key[0] == 's' ? 4294967295L : 1 << 20;
      if (!eval_whole(L, set->value, key, lo, hi, &v)) continue;
      if (key[0] == 'b') g->train.batch = (int)v;
      else if (key[0] == 'e') g->train.epochs = (int)v;
      else g->train.seed = (uint64_t)v;
    } else {
      diag_error(set->key.loc,
                 "unknown train setting '%s'; the settings are data, test, batch, epochs, seed, validation and patience",
                 key);
    }
  }
  for (int i = 0; i < s->n_steps; i++) {
    const TrainStep *ts = &s->steps[i];
    Step step = {.loc = ts->loc, .loss_name = strdup(ts->loss.name),
                 .loss_index = strmap_get(&L->loss_index, ts->loss.name)};
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
    g->steps = grow_for(g->steps, g->n_steps, sizeof(Step));
    g->steps[g->n_steps++] = step;
    if (ok) finish_step(g, &g->steps[g->n_steps - 1]);
  }
}

// Without steps, one loss trains every applied net with Adam (Keras's default).
void default_step(Lowerer *L) {
  Graph *g = L->graph;
  if (g->n_steps > 0 || g->n_losses == 0) return;
  Loc loc = L->train ? L->train->loc : g->losses[0].loc;
  if (g->n_losses > 1) {
    diag_error(loc, "the file defines %d losses but no step; say which to train: step minimize LOSS over NETS with adam()",
               g->n_losses);
    return;
  }
  Step step = {.loc = g->losses[0].loc, .loss_name = strdup(g->losses[0].name), .loss_index = 0};
  step_set_optimizer(&step, OPTIMIZER_ADAM);
  step.nets = malloc(((size_t)g->n_nets + 1) * sizeof(int));
  for (int n = 0; n < g->n_nets; n++)
    if (g->nets[n].applied) step.nets[step.n_nets++] = n;
  g->steps = grow_for(g->steps, g->n_steps, sizeof(Step));
  g->steps[g->n_steps++] = step;
  finish_step(g, &g->steps[0]);
}

void note_role_name(Lowerer *L, const char *name, Value v) {
  if (v.kind != VAL_TENSOR || !L->graph->nodes[v.node].shape.batched) return;
  if (strcmp(name, "code") == 0 && L->net_code < 0) L->net_code = v.node;
  if (strcmp(name, "reconstruction") == 0 && L->net_recon < 0) L->net_recon = v.node;
}

// What `encode` and `reconstruct` use (DESIGN.md part 1): the value named
// `code` (at the top level, else in a functional net's body) or the
// encoder's output, and the value named `reconstruction` (the same way) or
// the prediction of the first loss whose target is the input.
void find_code_and_reconstruction(Lowerer *L) {
  Graph *g = L->graph;
  Binding *code = scope_find(&L->globals, "code");
  if (code && code->value.kind == VAL_TENSOR && g->nodes[code->value.node].shape.batched)
    g->code_node = code->value.node;
  else if (L->net_code >= 0)
    g->code_node = L->net_code;
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
  // A code made by sample_normal (the variational autoencoder's) has the prior N(0, 1): `sample` and
  // `manifold` draw from it.
  bool sampled = g->code_node >= 0 && g->nodes[g->code_node].op == OP_SAMPLE_NORMAL;
  g->code_logvar_node = sampled ? g->nodes[g->code_node].inputs[1] : -1;  // encode --sample reads it
  Binding *recon = scope_find(&L->globals, "reconstruction");
  int candidate = recon && recon->value.kind == VAL_TENSOR ? recon->value.node
                  : L->net_recon >= 0                     ? L->net_recon
                                                          : L->first_recon_pred;
  if (candidate >= 0 && shape_size(g->nodes[candidate].shape) == shape_size(g->nodes[g->input_node].shape) &&
      g->nodes[candidate].shape.batched)
    g->reconstruction_node = candidate;
}
