// functions.c — the generated functions: each step's forward and backward
// pass and its optimizer update, evaluation, encode, reconstruct, corrupt,
// layer_output, and the dispatchers the model table points at. Each is its
// plan's kernel calls on buffers in the arena (passes/plan.c).
#include <stdlib.h>
#include <string.h>

#include "cgen.h"

// --------------------------------------------------------- function bodies
// The C expression for a value's storage inside a generated function.
static void value_ref(const Emitter *e, int id, char *buf, size_t size) {
  const Node *node = &e->graph->nodes[id];
  if (node->op == OP_INPUT)
    snprintf(buf, size, "input");
  else if (node->op == OP_PARAM) {
    char off[512];
    param_const(e->graph, node->param_index, "OFFSET", off, sizeof off);
    snprintf(buf, size, "ctx->params + %s", off);
  } else
    snprintf(buf, size, "%s", node->name);
}

static void emit_buffers(Emitter *e, const FunctionPlan *fp, int step) {
  const Graph *g = e->graph;
  bool any = false;
  for (int i = 0; i < fp->schedule.n_nodes; i++) any |= fp->memory.has_slot[fp->schedule.nodes[i]];
  for (int i = 0; i < fp->fusion.n_groups; i++) any |= fp->scratch[i] > 0;
  if (any) {
    emit_line(e, "  real *arena = ctx->arena;");
    emit_line(e, "  const size_t cap = (size_t)ctx->capacity;");
  }
  for (int i = 0; i < fp->schedule.n_nodes; i++) {
    const Node *node = &g->nodes[fp->schedule.nodes[i]];
    int param = gradient_param(g, step, node->id);
    if (fp->outside[node->id] && param >= 0) {
      char off[512];
      param_const(g, param, "OFFSET", off, sizeof off);
      emit_line(e, "  real *%s = ctx->grads + %s;", node->name, off);
    } else if (fp->memory.has_slot[node->id]) {
      if (node->shape.batched)
        emit_line(e, "  real *%s = arena + cap * %zu;", node->name, fp->memory.offset[node->id]);
      else
        emit_line(e, "  real *%s = arena + cap * ARENA_PER_SAMPLE + %zu;", node->name, fp->memory.offset[node->id]);
    }
  }
  // Shared slots (pass_share.c): after every function's planned part of the arena.
  for (int id = 0; (fp->given || fp->stored) && id < g->n_nodes; id++)
    if (id != fp->input_node && ((fp->given && fp->given[id]) || (fp->stored && fp->stored[id] && fp->outside[id])))
      emit_line(e, "  real *%s = ctx->arena + (size_t)ctx->capacity * %zu;  // shared: %s", g->nodes[id].name,
                e->share->base + e->share->offset[id], fp->given && fp->given[id] ? "left by an earlier step" : "read by a later step");
}

static void emit_constants_for(Emitter *e, const Schedule *s) {
  for (int i = 0; i < s->n_nodes; i++) {
    const Node *node = &e->graph->nodes[s->nodes[i]];
    if (node->op == OP_CONSTANT)
      emit_line(e, "  static const real %s[1] = {(real)%.17g};", node->name, node->attr[0]);
    else if (op_info(node->op)->schedule)  // its value at this batch (ops/schedule.c)
      emit_schedule_value(e, node);
  }
}

// The call of group gi's kernel.
static void emit_call(Emitter *e, const FunctionPlan *fp, int gi) {
  const Graph *g = e->graph;
  const Group *group = &fp->fusion.groups[gi];
  const Node *lead = &g->nodes[group->members[0]];
  emit_format(e, "  TIMED(%d, %s(", fp->kernel_index[gi], fp->kernel[gi]);
  if (group_uses_batch(g, group)) emit_format(e, "n, ");
  int rng = -1;
  for (int m = 0; m < group->n_members; m++)
    if (g->nodes[group->members[m]].rng_node >= 0) rng = g->nodes[group->members[m]].rng_node;
  if (rng >= 0) emit_format(e, "aert_hash64(batch_key, %d), ctx->row0, ", rng);
  int inputs[MAX_GROUP_INPUTS], n_inputs;
  if (group->kind == GROUP_SINGLE) {
    n_inputs = lead->n_inputs;
    memcpy(inputs, lead->inputs, sizeof(int) * (size_t)n_inputs);
  } else {
    n_inputs = group_inputs(g, group, inputs);
  }
  for (int j = 0; j < n_inputs; j++) {
    char ref[640];
    if (inputs[j] == fp->input_node) snprintf(ref, sizeof ref, "input");  // decode's codes
    else value_ref(e, inputs[j], ref, sizeof ref);
    emit_format(e, "%s, ", ref);
  }
  if (group->second_output >= 0) emit_format(e, "%s, ", g->nodes[group->second_output].name);
  emit_format(e, "%s", g->nodes[group->output].name);
  if (fp->scratch[gi] > 0) emit_format(e, ", arena + cap * ARENA_PER_SAMPLE + %zu", fp->memory.scratch[gi]);
  emit_format(e, "));\n");
}

static void emit_calls(Emitter *e, const FunctionPlan *fp) {
  for (int gi = 0; gi < fp->fusion.n_groups; gi++) emit_call(e, fp, gi);
}

// A step's calls, each parameter's gradient announced once its kernel has
// written it in place: under MPI the runtime may start summing it over the
// processes while the backward pass goes on (aert_ctx.grad_ready).
static void emit_step_calls(Emitter *e, const FunctionPlan *fp, const Step *step, int s_index) {
  const Graph *g = e->graph;
  for (int gi = 0; gi < fp->fusion.n_groups; gi++) {
    emit_call(e, fp, gi);
    const Group *group = &fp->fusion.groups[gi];
    for (int i = 0; i < step->n_params; i++) {
      const int grad = step->grad_nodes[i];
      if (grad < 0 || !fp->outside[grad] || (group->output != grad && group->second_output != grad)) continue;
      emit_line(e, "  if (ctx->grad_ready) ctx->grad_ready(ctx, %d, %d);  // %s's gradient is final", s_index,
                step->params[i], g->nodes[g->params[step->params[i]].node].name);
    }
  }
}

static bool schedule_uses_input(const Emitter *e, const Schedule *s) {
  for (int i = 0; i < s->n_nodes; i++)
    if (e->graph->nodes[s->nodes[i]].op == OP_INPUT) return true;
  return false;
}

static bool plan_uses_batch(const Emitter *e, const FunctionPlan *fp) {
  for (int i = 0; i < fp->fusion.n_groups; i++)
    if (group_uses_batch(e->graph, &fp->fusion.groups[i])) return true;
  return false;
}

static bool plan_draws(const Emitter *e, const FunctionPlan *fp) {
  for (int i = 0; i < fp->schedule.n_nodes; i++)
    if (e->graph->nodes[fp->schedule.nodes[i]].rng_node >= 0) return true;
  return false;
}

// The head of a generated function taking (ctx, input, n), unused ones voided.
static void emit_schedule_head(Emitter *e, const FunctionPlan *fp, int step) {
  if (!schedule_uses_input(e, &fp->schedule) && fp->input_node < 0) emit_line(e, "  (void)input;");
  if (!plan_uses_batch(e, fp)) emit_line(e, "  (void)n;");
  emit_constants_for(e, &fp->schedule);
  emit_buffers(e, fp, step);
  if (plan_draws(e, fp)) {
    emit_line(e, "  // Random draws depend only on (seed, batch, node, element): the same in every step of a batch.");
    emit_line(e, "  const uint64_t batch_key = aert_stream_key(ctx->seed, AERT_STREAM_CORRUPT, ctx->batch_counter);");
  }
}

// The step's parameters from index `first` that lie back to back in the
// parameter buffer: one optimizer loop covers them. Writes their element
// count (a literal, or the one tensor's SIZE constant) and returns how many.
static int contiguous_run(const Graph *g, const Step *step, int first, char *size, size_t cap) {
  int run = 1;
  size_t total = g->params[step->params[first]].size;
  while (first + run < step->n_params) {
    const Param *prev = &g->params[step->params[first + run - 1]], *next = &g->params[step->params[first + run]];
    if (prev->offset + prev->size != next->offset) break;
    total += next->size;
    run++;
  }
  if (run == 1) param_const(g, step->params[first], "SIZE", size, cap);
  else snprintf(size, cap, "%zu", total);
  return run;
}

// A step's shared inputs computed here, for a call out of order (gradcheck,
// train --steps): what earlier steps of the batch would have left.
static void emit_shared_inputs(Emitter *e, const FunctionPlan *fp, int s_index) {
  char name[300];
  emit_blank(e);
  emit_line(e, "// Step %d's shared inputs, computed afresh when the step does not run right after the earlier", s_index);
  emit_line(e, "// steps of its batch (aert_ctx.batch_step): gradcheck, or train --steps without them.");
  emit_line(e, "static void %s_shared_inputs(aert_ctx *ctx, const real *input, int n) {", step_name(e->graph, s_index, name, sizeof name));
  emit_schedule_head(e, fp, -1);
  emit_calls(e, fp);
  emit_line(e, "}");
}

static void emit_step_functions(Emitter *e, const FunctionPlan *fp, int s_index) {
  Graph *g = e->graph;
  const Step *step = &g->steps[s_index];

  char line[160], place[1200];
  source_line(step->loc, line, sizeof line);
  source_place(step->loc, place, sizeof place);
  emit_blank(e);
  emit_line(e, "// ---- step %d: %s: %s", s_index, place, line);
  emit_line(e, "// Forward pass, then the gradient of '%s' with respect to the parameters of %s.",
            step->loss_name, step->nets_text);
  char name[300];
  step_name(g, s_index, name, sizeof name);
  emit_share_comment(e, e->share, s_index);
  emit_line(e, "static double %s_loss_and_grad(aert_ctx *ctx, const real *input, int n) {", name);
  if (fp->given)
    emit_line(e, "  if (ctx->batch_step != %d) %s_shared_inputs(ctx, input, n);  // not right after the earlier steps", s_index, name);
  emit_schedule_head(e, fp, s_index);
  emit_step_calls(e, fp, step, s_index);
  for (int i = 0; i < step->n_params; i++) {
    char off[512], size[512], ref[640];
    param_const(g, step->params[i], "OFFSET", off, sizeof off);
    param_const(g, step->params[i], "SIZE", size, sizeof size);
    if (step->grad_nodes[i] < 0) {
      emit_line(e, "  memset(ctx->grads + %s, 0, sizeof(real) * %s);  // the loss does not depend on it", off, size);
      continue;
    }
    if (fp->outside[step->grad_nodes[i]]) continue;  // written in place
    value_ref(e, step->grad_nodes[i], ref, sizeof ref);
    emit_line(e, "  memcpy(ctx->grads + %s, %s, sizeof(real) * %s);", off, ref, size);
  }
  char loss_ref[640];
  value_ref(e, g->losses[step->loss_index].node, loss_ref, sizeof loss_ref);
  emit_line(e, "  return %s[0];", loss_ref);
  emit_line(e, "}");

  // The optimizer update: its row's kernel (runtime/aert_kernels.h) once per
  // run of contiguous parameters, on its state vectors, each as long as the
  // step's parameters.
  const OptimizerInfo *info = &optimizer_table[step->optimizer];
  int n_states = step_n_states(step), n_settings = optimizer_n_settings(info);
  char settings[400], state_text[200] = "";
  step_optimizer_format(step, true, settings, sizeof settings);
  if (n_states == 1) snprintf(state_text, sizeof state_text, "the %s", info->states[0]);
  for (int k = 0; n_states > 1 && k < n_states; k++)
    snprintf(state_text + strlen(state_text), sizeof state_text - strlen(state_text), "%s%s", k ? " then " : "",
             info->states[k]);
  emit_blank(e);
  emit_line(e, "// %s over %s: %zu parameters; state: %s", settings, step->nets_text, step->n_elems, state_text);
  emit_line(e, "static void %s_update(aert_ctx *ctx) {", name);
  emit_format(e, "  real *%s = ctx->opt_state[%d]", info->states[0], s_index);
  for (int k = 1; k < n_states; k++) emit_format(e, ", *%s = %s + %zu", info->states[k], info->states[0], k * step->n_elems);
  emit_format(e, ";\n");
  if (info->takes_t) emit_line(e, "  const double t = (double)++ctx->opt_t[%d];", s_index);
  else emit_line(e, "  ctx->opt_t[%d]++;", s_index);
  emit_line(e, "  const real lr = (real)ctx->lr[%d];", s_index);
  size_t state = 0;
  for (int i = 0; i < step->n_params;) {
    char off[512], size[512];
    int run = contiguous_run(g, step, i, size, sizeof size);
    param_const(g, step->params[i], "OFFSET", off, sizeof off);
    emit_format(e, "  %s(ctx->params + %s, ctx->grads + %s", info->kernel, off, off);
    for (int k = 0; k < MAX_OPTIMIZER_STATES && info->states[k]; k++) {
      if (k < n_states) emit_format(e, ", %s + %zu", info->states[k], state);
      else emit_format(e, ", NULL");
    }
    emit_format(e, ", %s, lr", size);
    for (int k = 1; k < n_settings; k++) emit_format(e, ", %.17g", step->settings[k]);
    emit_format(e, "%s);\n", info->takes_t ? ", t" : "");
    for (int k = i; k < i + run; k++) state += g->params[step->params[k]].size;
    i += run;
  }
  emit_line(e, "}");
}

static void emit_eval(Emitter *e, const FunctionPlan *fp) {
  Graph *g = e->graph;
  emit_blank(e);
  emit_line(e, "// Every named loss on a batch, in inference mode.");
  emit_line(e, "static void eval_losses(aert_ctx *ctx, const real *input, int n, double *losses) {");
  emit_schedule_head(e, fp, -1);
  emit_calls(e, fp);
  for (int i = 0; i < g->n_losses; i++) {
    char ref[640];
    value_ref(e, g->eval_losses[i], ref, sizeof ref);
    emit_line(e, "  losses[%d] = %s[0];  // %s", i, ref, g->losses[i].name);
  }
  emit_line(e, "}");
}

static void emit_apply(Emitter *e, const FunctionPlan *fp, const char *fn, int node, const char *what) {
  if (node < 0) return;
  Graph *g = e->graph;
  char size[512], ref[640];
  size_const(g, node, size, sizeof size);
  value_ref(e, node, ref, sizeof ref);
  emit_blank(e);
  emit_line(e, "// %s.", what);
  emit_line(e, "static void %s(aert_ctx *ctx, const real *input, int n, real *out) {", fn);
  emit_schedule_head(e, fp, -1);
  emit_calls(e, fp);
  emit_line(e, "  memcpy(out, %s, sizeof(real) * (size_t)n * %s);", ref, size);
  emit_line(e, "}");
}

// Each part of a loss that is a sum, in inference mode (`eval`): its terms,
// each times its factor, a per-sample term averaged over the batch.
static void emit_loss_parts(Emitter *e, const FunctionPlan *fp) {
  if (!fp) return;
  const Graph *g = e->graph;
  emit_blank(e);
  emit_line(e, "// The parts of each loss that is a sum of terms, in inference mode (`eval` prints them).");
  emit_line(e, "static void eval_loss_parts(aert_ctx *ctx, const real *input, int n, double *parts) {");
  emit_schedule_head(e, fp, -1);
  emit_calls(e, fp);
  for (int p = 0; p < g->n_loss_parts; p++) {
    const LossPart *part = &g->loss_parts[p];
    emit_format(e, "  parts[%d] =", p);
    for (int t = 0; t < part->n_terms; t++) {
      char ref[640];
      value_ref(e, part->nodes[t], ref, sizeof ref);
      if (g->nodes[part->nodes[t]].shape.batched)
        emit_format(e, "%s %.17g * aert_batch_mean(%s, n)", t ? " +" : "", part->coefs[t], ref);
      else
        emit_format(e, "%s %.17g * (double)%s[0]", t ? " +" : "", part->coefs[t], ref);
    }
    emit_format(e, ";  // %s\n", part->name);
  }
  emit_line(e, "}");
}

// The early return of each layer whose output is `node`, after the kernel that writes it.
static void emit_layer_returns(Emitter *e, int node) {
  const Graph *g = e->graph;
  for (int i = 0; i < g->n_layers; i++) {
    if (g->layer_eval_nodes[i] != node) continue;
    char size[512], ref[640];
    size_const(g, node, size, sizeof size);
    value_ref(e, node, ref, sizeof ref);
    emit_line(e, "  if (layer == %d) {  // %s", i, g->layers[i].name);
    emit_line(e, "    memcpy(out, %s, sizeof(real) * (size_t)n * %s);", ref, size);
    emit_line(e, "    return;");
    emit_line(e, "  }");
  }
}

static void emit_layer_output(Emitter *e, const FunctionPlan *fp) {
  if (!fp) return;
  const Graph *g = e->graph;
  emit_blank(e);
  emit_line(e, "// The output of layers[layer] for each sample, in inference mode (`activations`):");
  emit_line(e, "// the forward pass up to the kernel that writes it, then a copy.");
  emit_line(e, "static void layer_output(aert_ctx *ctx, int layer, const real *input, int n, real *out) {");
  emit_schedule_head(e, fp, -1);
  for (int i = 0; i < g->n_layers; i++) {  // outputs no kernel writes (the input itself)
    int node = g->layer_eval_nodes[i];
    if (node >= 0 && fp->fusion.group_of[node] < 0) emit_layer_returns(e, node);
  }
  for (int gi = 0; gi < fp->fusion.n_groups; gi++) {
    emit_call(e, fp, gi);
    emit_layer_returns(e, fp->fusion.groups[gi].output);
  }
  emit_line(e, "}");
}

static void emit_dispatchers(Emitter *e) {
  Graph *g = e->graph;
  emit_blank(e);
  emit_line(e, "static double loss_and_grad(aert_ctx *ctx, int step, const real *input, int n) {");
  emit_line(e, "  switch (step) {");
  char name[300];
  for (int i = 0; i < g->n_steps; i++)
    emit_line(e, "  case %d: return %s_loss_and_grad(ctx, input, n);", i, step_name(g, i, name, sizeof name));
  emit_line(e, "  }");
  emit_line(e, "  return NAN;");
  emit_line(e, "}");
  emit_blank(e);
  emit_line(e, "static void apply_update(aert_ctx *ctx, int step) {");
  emit_line(e, "  switch (step) {");
  for (int i = 0; i < g->n_steps; i++) emit_line(e, "  case %d: %s_update(ctx); break;", i, step_name(g, i, name, sizeof name));
  emit_line(e, "  }");
  emit_line(e, "}");
}


// Every generated function, in the order the program lists them.
void emit_functions(Emitter *e, const ProgramPlan *plan) {
  Graph *graph = e->graph;
  for (int i = 0; i < graph->n_steps; i++) {
    if (plan->shared_inputs[i]) emit_shared_inputs(e, plan->shared_inputs[i], i);
    emit_step_functions(e, plan->functions[i], i);
  }
  FunctionPlan *const *eval = &plan->functions[graph->n_steps];
  emit_eval(e, eval[0]);
  emit_apply(e, eval[1], "reconstruct", graph->reconstruction_node, "The reconstruction of each sample, in inference mode");
  emit_apply(e, eval[2], "encode", graph->code_node, "The code of each sample, in inference mode");
  emit_apply(e, eval[3], "corrupt", graph->corrupt_node,
             "The corrupted input, in training mode: what the model is fed while it learns");
  emit_layer_output(e, eval[4]);
  emit_apply(e, eval[5], "decode", graph->decode_node,
             "The reconstruction of each code (`input` holds the codes), in inference mode: reconstruct's\n"
             "// computation after the code");
  emit_loss_parts(e, eval[6]);
  emit_dispatchers(e);
}
