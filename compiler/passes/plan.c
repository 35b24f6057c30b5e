// plan.c — plans every function the generated program has: for each, its
// schedule (schedule.c), fusion groups (fuse.c) and arena offsets
// (memory.c), the values steps share (share.c), and a name for every
// distinct kernel. cgen/ writes the program from the plan; tools/ (--stats,
// --dump-ir, --dot) read it without writing any C.
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "passes.h"

// The param whose gradient a step's node is, or -1.
int gradient_param(const Graph *g, int step, int node) {
  if (step < 0) return -1;
  const Step *s = &g->steps[step];
  for (int i = 0; i < s->n_params; i++)
    if (s->grad_nodes[i] == node) return s->params[i];
  return -1;
}

// `given` (or NULL): values read from shared slots, not computed; `stored`
// (or NULL): values written to shared slots for later steps (share.c).
// The outputs are written to memory; `pin` keeps them alive to the end (a
// function that copies each one out as soon as it is written needs not).
static FunctionPlan *plan_function_pinned(ProgramPlan *pp, const int *outputs, int n_outputs, int step,
                                          const bool *given, const bool *stored, bool pin) {
  Graph *g = pp->graph;
  bool optimize = pp->optimize;
  FunctionPlan *fp = calloc(1, sizeof *fp);
  fp->step = step;
  fp->input_node = -1;
  fp->given = given, fp->stored = stored;
  fp->schedule = given ? schedule_given(g, outputs, n_outputs, given) : schedule_for(g, outputs, n_outputs);
  int *keep = malloc(((size_t)n_outputs + (size_t)fp->schedule.n_nodes + 1) * sizeof(int)), n_keep = n_outputs;
  memcpy(keep, outputs, (size_t)n_outputs * sizeof(int));
  for (int i = 0; stored && i < fp->schedule.n_nodes; i++)  // shared values are written to memory
    if (stored[fp->schedule.nodes[i]]) keep[n_keep++] = fp->schedule.nodes[i];
  fp->fusion = fuse_schedule(g, &fp->schedule, keep, n_keep, optimize);
  fp->outside = calloc((size_t)g->n_nodes, sizeof(bool));
  for (int i = 0; i < g->n_nodes; i++)
    if (op_info(g->nodes[i].op)->kernel != KERNEL_NONE && (gradient_param(g, step, i) >= 0 || (stored && stored[i])))
      fp->outside[i] = true;
  fp->scratch = calloc((size_t)fp->fusion.n_groups + 1, sizeof(size_t));
  for (int i = 0; i < fp->fusion.n_groups; i++) fp->scratch[i] = gemm_scratch(g, &fp->fusion.groups[i], optimize);
  fp->memory = plan_memory(g, &fp->fusion, keep, pin ? n_keep : 0, fp->outside, fp->scratch, optimize);
  free(keep);
  fp->kernel = calloc((size_t)fp->fusion.n_groups + 1, sizeof(char *));
  fp->kernel_index = calloc((size_t)fp->fusion.n_groups + 1, sizeof(int));
  return fp;
}

static FunctionPlan *plan_function(ProgramPlan *pp, const int *outputs, int n_outputs, int step, const bool *given,
                                   const bool *stored) {
  return plan_function_pinned(pp, outputs, n_outputs, step, given, stored, true);
}

static void function_plan_free(FunctionPlan *fp) {
  if (!fp) return;
  if (fp->input_node >= 0) free((bool *)fp->given);  // decode's own
  for (int i = 0; i < fp->fusion.n_groups; i++) free(fp->kernel[i]);
  free((char *)fp->name), free((char *)fp->role);
  free(fp->kernel), free(fp->kernel_index), free(fp->scratch), free(fp->outside);
  memory_plan_free(&fp->memory);
  fusion_plan_free(&fp->fusion);
  schedule_free(&fp->schedule);
  free(fp);
}

// Kernels are shared between functions: one per distinct group. The
// signature says which nodes a group computes and how (fused or not).
static void group_signature(const Group *group, bool optimize, char *buf, size_t size) {
  size_t used = (size_t)snprintf(buf, size, "%d:%d", group->kind, optimize);
  for (int m = 0; m < group->n_members && used < size; m++)
    used += (size_t)snprintf(buf + used, size - used, ",%d", group->members[m]);
}

// Names every group's kernel, adding the groups not seen before to the
// program's kernels (their FLOPs, .ae line and kind for the model table).
static void name_kernels(ProgramPlan *pp, FunctionPlan *fp) {
  const Graph *g = pp->graph;
  for (int gi = 0; gi < fp->fusion.n_groups; gi++) {
    const Group *group = &fp->fusion.groups[gi];
    char signature[512];
    group_signature(group, pp->optimize, signature, sizeof signature);
    int found = strmap_get(&pp->kernel_by_signature, signature);
    if (found >= 0) {
      fp->kernel[gi] = strdup(pp->kernels[found].name);
      fp->kernel_index[gi] = found;
      continue;
    }
    char name[400];
    snprintf(name, sizeof name, "compute_%s", g->nodes[group->output].name);
    for (int version = 2; strmap_get(&pp->kernel_by_name, name) >= 0; version++)
      snprintf(name, sizeof name, "compute_%s_v%d", g->nodes[group->output].name, version);
    pp->kernels = grow_for(pp->kernels, pp->n_kernels, sizeof *pp->kernels);
    KernelPlan *k = &pp->kernels[pp->n_kernels];
    *k = (KernelPlan){.signature = strdup(signature), .name = strdup(name), .group = group,
                      .line = g->nodes[group->members[0]].loc.line};
    for (int m = 0; m < group->n_members; m++) {
      const Node *node = &g->nodes[group->members[m]];
      double f = op_info(node->op)->flops ? op_info(node->op)->flops(g, node) : 0;
      if (node_uses_batch(g, node)) k->flops_per_sample += f;
      else k->flops_per_call += f;
    }
    OpKind lead = g->nodes[group->members[0]].op;
    k->is_gemm = lead == OP_DENSE || lead == OP_DENSE_GRAD_INPUT || lead == OP_DENSE_GRAD_KERNEL;
    strmap_put(&pp->kernel_by_signature, k->signature, pp->n_kernels);
    strmap_put(&pp->kernel_by_name, k->name, pp->n_kernels);
    fp->kernel[gi] = strdup(name);
    fp->kernel_index[gi] = pp->n_kernels++;
  }
}

const char *step_name(const Graph *g, int s_index, char *buf, size_t size) {
  const Step *step = &g->steps[s_index];
  bool shared = false;
  for (int i = 0; i < g->n_steps; i++) shared |= i != s_index && strcmp(g->steps[i].loss_name, step->loss_name) == 0;
  if (shared) snprintf(buf, size, "%s_step%d", step->loss_name, s_index);
  else snprintf(buf, size, "%s", step->loss_name);
  return buf;
}

static FunctionPlan *plan_step(ProgramPlan *pp, int s_index) {
  Graph *g = pp->graph;
  const Step *step = &g->steps[s_index];
  int n_out = step->n_params + 1;
  int *outputs = malloc((size_t)n_out * sizeof(int));
  outputs[0] = g->losses[step->loss_index].node;
  for (int i = 0; i < step->n_params; i++) outputs[i + 1] = step->grad_nodes[i];
  const SharePlan *share = &pp->share;
  const bool *given = share && share_step_reads(share, s_index) ? share->given[s_index] : NULL;
  const bool *stored = share && share->n_steps > 1 ? share->stored[s_index] : NULL;
  FunctionPlan *fp = plan_function(pp, outputs, n_out, s_index, given, stored);
  free(outputs);
  return fp;
}

// encode, reconstruct and corrupt compute one value per sample.
static FunctionPlan *plan_apply(ProgramPlan *pp, int node) {
  return node < 0 ? NULL : plan_function(pp, &node, 1, -1, NULL, NULL);
}

// layer_output (the `activations` command): the forward pass in inference
// mode up to the kernel that writes the asked layer's output, then a copy.
// Every layer's output is written to memory but none is kept alive beyond
// its readers: it is copied out right after its kernel.
static FunctionPlan *plan_layer_output(ProgramPlan *pp) {
  const Graph *g = pp->graph;
  int *outputs = malloc(((size_t)g->n_layers + 1) * sizeof(int)), n_outputs = 0;
  for (int i = 0; i < g->n_layers; i++)
    if (g->layer_eval_nodes[i] >= 0) outputs[n_outputs++] = g->layer_eval_nodes[i];
  FunctionPlan *fp = n_outputs ? plan_function_pinned(pp, outputs, n_outputs, -1, NULL, NULL, false) : NULL;
  free(outputs);
  return fp;
}

// decode: the reconstruction from the code's node on, which it reads from
// its input: reconstruct's tail, with its kernels.
static FunctionPlan *plan_decode(ProgramPlan *pp) {
  const Graph *g = pp->graph;
  if (g->decode_node < 0) return NULL;
  bool *given = calloc((size_t)g->n_nodes + 1, sizeof(bool));
  given[g->decode_input_node] = true;
  FunctionPlan *fp = plan_function(pp, &g->decode_node, 1, -1, given, NULL);
  fp->input_node = g->decode_input_node;
  return fp;
}

// eval_loss_parts (`eval`'s figure for each part of a loss that is a sum):
// every part's terms.
static FunctionPlan *plan_loss_parts(ProgramPlan *pp) {
  const Graph *g = pp->graph;
  int n_terms = 0;
  for (int p = 0; p < g->n_loss_parts; p++) n_terms += g->loss_parts[p].n_terms;
  if (n_terms == 0) return NULL;
  int *outputs = malloc((size_t)n_terms * sizeof(int)), n_outputs = 0;
  bool *seen = calloc((size_t)g->n_nodes, sizeof(bool));
  for (int p = 0; p < g->n_loss_parts; p++)
    for (int t = 0; t < g->loss_parts[p].n_terms; t++) {
      int node = g->loss_parts[p].nodes[t];
      if (!seen[node]) seen[node] = true, outputs[n_outputs++] = node;
    }
  FunctionPlan *fp = plan_function(pp, outputs, n_outputs, -1, NULL, NULL);
  free(outputs), free(seen);
  return fp;
}

// Refuses a model whose training memory — the arena at the train block's
// batch, plus parameters, gradients and optimizer state — exceeds this
// machine's physical memory (AEC_MEMORY_LIMIT, in bytes, stands in for it).
static bool fits_in_memory(const Graph *g, DType dtype, size_t per_sample, size_t fixed) {
  double real = dtype == DTYPE_F64 ? 8 : 4;
  double batch = g->train.batch > 0 ? g->train.batch : 1;
  double arena = ((double)per_sample * batch + (double)fixed) * real;
  double state = 0;
  for (int s = 0; s < g->n_steps; s++) state += (double)g->steps[s].n_elems * step_n_states(&g->steps[s]);
  double params = (2.0 * (double)g->n_param_elems + state) * real;
  double limit = 0;
  const char *env = getenv("AEC_MEMORY_LIMIT");
  if (env && *env) limit = strtod(env, NULL);
  else {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) limit = (double)pages * (double)page;
  }
  if (limit <= 0 || arena + params <= limit) return true;
  diag_error_plain("the model needs %.4g GB to train (activations %.4g GB: %zu values a sample at batch %d, plus %zu; "
                   "parameters, gradients and optimizer state %.4g GB), more than this machine's %.4g GB of memory; "
                   "use smaller layers or a smaller batch",
                   (arena + params) / 1e9, arena / 1e9, per_sample, (int)batch, fixed, params / 1e9, limit / 1e9);
  return false;
}

// Refuses a number the generated code cannot hold: a constant or an op's
// setting (clip's bounds, a noise level) beyond float's range under --dtype
// f32 would turn into infinity. (The front end already refuses arithmetic
// on numbers that leaves double's range.) One report per .ae place.
static bool numbers_fit(const Graph *g, DType dtype) {
  bool ok = true;
  Loc reported = {0};
  for (int id = 0; id < g->n_nodes; id++) {
    const Node *node = &g->nodes[id];
    for (int a = 0; a < MAX_ATTRS; a++) {
      double v = node->attr[a];
      bool fits = isfinite(v) && (dtype == DTYPE_F64 || fabs(v) <= FLT_MAX);
      if (fits || (node->loc.line == reported.line && node->loc.col == reported.col)) continue;
      if (isfinite(v))
        diag_error(node->loc, "%g is beyond the range of --dtype f32 (at most %g); use a smaller number, or --dtype f64", v,
                   (double)FLT_MAX);
      else
        diag_error(node->loc, "%s is not a number the generated code can hold", isnan(v) ? "NaN" : "infinity");
      reported = node->loc, ok = false;
    }
  }
  return ok;
}

// Every function's plan; what the arena must hold; every kernel named.
ProgramPlan *plan_program(Graph *graph, int opt_level, DType dtype) {
  ProgramPlan *pp = calloc(1, sizeof *pp);
  pp->graph = graph;
  pp->optimize = opt_level > 0;
  // One plan per generated function: steps, evaluation, reconstruct, encode, corrupt, layer_output,
  // decode, eval_loss_parts.
  int n_plans = graph->n_steps + 7;
  pp->n_functions = n_plans;
  FunctionPlan **plans = pp->functions = calloc((size_t)n_plans, sizeof(FunctionPlan *));
  pp->share = plan_sharing(graph, pp->optimize);  // share.c
  for (int i = 0; i < graph->n_steps; i++) plans[i] = plan_step(pp, i);
  // Each step that reads shared values can also compute them itself (called out of order).
  FunctionPlan **shared_inputs = pp->shared_inputs = calloc((size_t)graph->n_steps + 1, sizeof(FunctionPlan *));
  for (int i = 0; i < graph->n_steps; i++) {
    if (!plans[i]->given) continue;
    int *outs = malloc(((size_t)graph->n_nodes + 1) * sizeof(int)), n_outs = 0;
    for (int id = 0; id < graph->n_nodes; id++)
      if (pp->share.given[i][id]) outs[n_outs++] = id;
    shared_inputs[i] = plan_function(pp, outs, n_outs, -1, NULL, pp->share.given[i]);
    free(outs);
  }
  FunctionPlan **eval = &plans[graph->n_steps];
  eval[0] = plan_function(pp, graph->eval_losses, graph->n_losses, -1, NULL, NULL);
  eval[1] = plan_apply(pp, graph->reconstruction_node);
  eval[2] = plan_apply(pp, graph->code_node);
  eval[3] = plan_apply(pp, graph->corrupt_node);
  eval[4] = plan_layer_output(pp);
  eval[5] = plan_decode(pp);
  eval[6] = plan_loss_parts(pp);
  static const char *const extra_names[] = {"eval_losses", "reconstruct", "encode", "corrupt", "layer_output",
                                            "decode", "eval_loss_parts"};
  static const char *const extra_roles[] = {"eval", "reconstruct", "encode", "corrupt", "layer_output", "decode",
                                            "eval parts"};
  for (int p = 0; p < n_plans; p++) {
    if (!plans[p]) continue;
    char name[320], prefix[300];
    if (p < graph->n_steps) {
      snprintf(name, sizeof name, "%s_loss_and_grad", step_name(graph, p, prefix, sizeof prefix));
      plans[p]->name = strdup(name);
      snprintf(name, sizeof name, "step %s", graph->steps[p].loss_name);
      plans[p]->role = strdup(name);
    } else {
      plans[p]->name = strdup(extra_names[p - graph->n_steps]);
      plans[p]->role = strdup(extra_roles[p - graph->n_steps]);
    }
  }
  for (int i = 0; i < graph->n_steps; i++) {
    if (!shared_inputs[i]) continue;
    char name[320], prefix[300];
    snprintf(name, sizeof name, "%s_shared_inputs", step_name(graph, i, prefix, sizeof prefix));
    shared_inputs[i]->name = strdup(name);
    shared_inputs[i]->role = strdup(name);
  }

  // Every value any function computes gets a shape constant; the arena is
  // as large as the largest function needs.
  bool *used = pp->used = calloc((size_t)graph->n_nodes, sizeof(bool));
  size_t per_sample = 0, fixed = 0;
  for (int p = 0; p < n_plans + graph->n_steps; p++) {
    const FunctionPlan *fp = p < n_plans ? plans[p] : shared_inputs[p - n_plans];
    if (!fp) continue;
    for (int i = 0; i < fp->schedule.n_nodes; i++) used[fp->schedule.nodes[i]] = true;
    if (fp->memory.per_sample > per_sample) per_sample = fp->memory.per_sample;
    if (fp->memory.fixed > fixed) fixed = fp->memory.fixed;
  }
  pp->share.base = per_sample;  // the shared slots follow every function's planned part
  per_sample += pp->share.per_sample;
  pp->arena_per_sample = per_sample, pp->arena_fixed = fixed;
  pp->fits = numbers_fit(graph, dtype) && fits_in_memory(graph, dtype, per_sample, fixed);
  for (int i = 0; i < graph->n_params; i++) used[graph->params[i].node] = true;
  used[graph->input_node] = true;
  // Kernels in the order they first run: the functions', then the shared inputs'.
  for (int p = 0; p < n_plans; p++)
    if (plans[p]) name_kernels(pp, plans[p]);
  for (int i = 0; i < graph->n_steps; i++)
    if (shared_inputs[i]) name_kernels(pp, shared_inputs[i]);
  return pp;
}

void program_plan_free(ProgramPlan *pp) {
  if (!pp) return;
  for (int k = 0; k < pp->n_kernels; k++) free(pp->kernels[k].signature), free(pp->kernels[k].name);
  free(pp->kernels);
  strmap_free(&pp->kernel_by_signature), strmap_free(&pp->kernel_by_name);
  for (int p = 0; p < pp->n_functions; p++) function_plan_free(pp->functions[p]);
  free(pp->functions);
  for (int i = 0; i < pp->graph->n_steps; i++) function_plan_free(pp->shared_inputs[i]);
  free(pp->shared_inputs);
  share_plan_free(&pp->share);
  free(pp->used);
  free(pp);
}
