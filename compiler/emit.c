// emit.c — writes the generated C program: a header saying what produced it,
// shapes and parameter offsets as named constants, one static kernel per
// node (each with the .ae line it implements), one function per schedule
// (each step's forward/backward, its optimizer update, evaluation, encode,
// reconstruct), and the aert_model table the runtime drives.
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "aec.h"

enum { ALIGN_ELEMS = 16 };  // arena slots start on 64-byte boundaries (float)

void emit_line(Emitter *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(e->out, fmt, ap);
  va_end(ap);
  fputc('\n', e->out);
}

static void emit_blank(Emitter *e) { fputc('\n', e->out); }

static void upper_name(const char *name, char *buf, size_t size) {
  size_t i = 0;
  for (; name[i] && i + 1 < size; i++) buf[i] = (char)toupper((unsigned char)name[i]);
  buf[i] = '\0';
}

const char *size_const(const Graph *graph, int node, char *buf, size_t size) {
  char upper[320];
  upper_name(graph->nodes[node].name, upper, sizeof upper);
  snprintf(buf, size, "%s_SIZE", upper);
  return buf;
}

bool node_uses_batch(const Graph *graph, const Node *node) {
  if (node->shape.batched) return true;
  for (int i = 0; i < node->n_inputs; i++)
    if (graph->nodes[node->inputs[i]].shape.batched) return true;
  return false;
}

// The .ae source line of a location, trimmed, for comments.
static void source_line(Loc loc, char *buf, size_t size) {
  buf[0] = '\0';
  if (!loc.source) return;
  const char *text = loc.source->text, *end = text + loc.source->length;
  for (int line = 1; line < loc.line && text < end; text++)
    if (*text == '\n') line++;
  while (text < end && (*text == ' ' || *text == '\t')) text++;
  size_t n = 0;
  while (text + n < end && text[n] != '\n' && n + 1 < size) n++;
  memcpy(buf, text, n);
  buf[n] = '\0';
  for (char *c = buf; *c; c++)  // keep the comment a comment
    if (*c == '*' && c[1] == '/') c[1] = '|';
  while (n > 0 && isspace((unsigned char)buf[n - 1])) buf[--n] = '\0';
}

static const char *file_base(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

void emit_kernel_open(Emitter *e, const Node *node, const char *const *arg_names, const char *formula) {
  const Graph *g = e->graph;
  char line[160], shape[64];
  source_line(node->loc, line, sizeof line);
  shape_format(node->shape, shape, sizeof shape);
  emit_blank(e);
  if (node->loc.source)
    emit_line(e, "// %s:%d: %s", file_base(node->loc.source->path), node->loc.line, line);
  emit_line(e, "// %s%s -> %s%s%s", node->is_backward ? "backward: " : "", op_info(node->op)->name, shape,
            node->shape.batched ? " per sample" : "", "");
  if (formula) emit_line(e, "// %s", formula);
  fprintf(e->out, "static void compute_%s(", node->name);
  bool batch = node_uses_batch(g, node);
  if (batch) fprintf(e->out, "int n, ");
  if (node->rng_node >= 0) fprintf(e->out, "uint64_t key, ");
  for (int i = 0; i < node->n_inputs; i++) fprintf(e->out, "const real *restrict %s, ", arg_names[i]);
  fprintf(e->out, "real *restrict %s) {\n", arg_names[node->n_inputs]);
}

// ------------------------------------------------ expression templates
// Expands an op's expression template (see OpInfo.expr in aec.h).
static void expand_template(Emitter *e, const Node *node, const char *tmpl, const char *index,
                            const char *count_expr, const char *rows_expr) {
  static const char *names[] = {"a", "b", "c", "d"};
  for (const char *p = tmpl; *p; p++) {
    if (*p != '$') {
      fputc(*p, e->out);
      continue;
    }
    const char *word = p + 1;
    size_t length = 0;
    while (word[length] && (word[length] == '_' || (word[length] | 32) >= 'a') && (word[length] | 32) <= 'z') length++;
    while (word[length] >= '0' && word[length] <= '9') length++;
    char key[32];
    snprintf(key, sizeof key, "%.*s", (int)length, word);
    if (key[0] >= '0' && key[0] <= '3' && key[1] == '\0') {
      int i = key[0] - '0';
      bool scalar = shape_is_scalar(e->graph->nodes[node->inputs[i]].shape);
      fprintf(e->out, "%s[%s]", names[i], scalar ? "0" : index);
    } else if (strncmp(key, "attr", 4) == 0 && key[4] >= '0' && key[4] < '0' + MAX_ATTRS && !key[5]) {
      fprintf(e->out, "(real)%.17g", node->attr[key[4] - '0']);
    } else if (strcmp(key, "count") == 0) {
      fprintf(e->out, "%s", count_expr);
    } else if (strcmp(key, "rows") == 0) {
      fprintf(e->out, "%s", rows_expr);
    } else if (strcmp(key, "i") == 0) {
      fprintf(e->out, "%s", index);
    } else if (strcmp(key, "uniform0") == 0 || strcmp(key, "uniform1") == 0) {
      fprintf(e->out, "(real)aert_uniform01(key, 2 * (uint64_t)%s + %c)", index, key[7]);
    } else if (strcmp(key, "normal") == 0) {
      fprintf(e->out, "(real)aert_normal(key, (uint64_t)%s)", index);
    } else {
      fprintf(stderr, "aec: internal error: op %s's template has an unknown $%s\n", op_info(node->op)->name, key);
      exit(3);
    }
    p += length;
  }
}

static void emit_elementwise(Emitter *e, const Node *node) {
  const OpInfo *info = op_info(node->op);
  static const char *const args[] = {"a", "b", "c", "out"};
  const char *names[5];
  for (int i = 0; i < node->n_inputs; i++) names[i] = args[i];
  names[node->n_inputs] = "out";
  emit_kernel_open(e, node, names, NULL);
  char size[512];
  size_const(e->graph, node->id, size, sizeof size);
  if (node->shape.batched)
    emit_line(e, "  const size_t count = (size_t)n * %s;", size);
  else
    emit_line(e, "  const size_t count = %s;", size);
  for (int i = 0; i < node->n_inputs; i++) {
    char marker[3] = {'$', (char)('0' + i), 0};
    if (!strstr(info->expr, marker)) emit_line(e, "  (void)%s;  // gives the shape only", args[i]);
  }
  if (node_uses_batch(e->graph, node) && !node->shape.batched) emit_line(e, "  (void)n;");
  emit_line(e, "#pragma omp parallel for simd schedule(static) if (count >= 65536)");
  fprintf(e->out, "  for (size_t i = 0; i < count; i++) out[i] = ");
  expand_template(e, node, info->expr, "i", "(real)count", node->shape.batched ? "(real)n" : "1");
  fprintf(e->out, ";\n}\n");
}

static void emit_reduce(Emitter *e, const Node *node) {
  const OpInfo *info = op_info(node->op);
  static const char *const args[] = {"a", "b", "c", "out"};
  const char *names[5];
  for (int i = 0; i < node->n_inputs; i++) names[i] = args[i];
  names[node->n_inputs] = "out";
  emit_kernel_open(e, node, names, "a scalar, accumulated in double");
  const Node *first = &e->graph->nodes[node->inputs[0]];
  char size[512];
  size_const(e->graph, first->id, size, sizeof size);
  if (first->shape.batched)
    emit_line(e, "  const size_t count = (size_t)n * %s;", size);
  else
    emit_line(e, "  const size_t count = %s;", size);
  bool batched = first->shape.batched;
  if (!batched && node_uses_batch(e->graph, node)) emit_line(e, "  (void)n;");
  emit_line(e, "  double sum = 0;");
  emit_line(e, "#pragma omp simd reduction(+ : sum)");
  fprintf(e->out, "  for (size_t i = 0; i < count; i++) sum += ");
  expand_template(e, node, info->expr, "i", "(real)count", batched ? "(real)n" : "1");
  fprintf(e->out, ";\n");
  switch (info->divisor) {
  case DIVIDE_BY_ONE: emit_line(e, "  out[0] = (real)sum;"); break;
  case DIVIDE_BY_COUNT: emit_line(e, "  out[0] = (real)(sum / (double)count);"); break;
  case DIVIDE_BY_ROWS: emit_line(e, batched ? "  out[0] = (real)(sum / n);" : "  out[0] = (real)sum;"); break;
  }
  emit_line(e, "}");
}

static void emit_kernel(Emitter *e, const Node *node) {
  switch (op_info(node->op)->kernel) {
  case KERNEL_NONE: break;
  case KERNEL_CUSTOM: op_info(node->op)->emit(e, node); break;
  case KERNEL_ELEMENTWISE: emit_elementwise(e, node); break;
  case KERNEL_REDUCE: emit_reduce(e, node); break;
  }
}

// ---------------------------------------------------------------- arena
// Each computed node owns one arena slot (no reuse yet: the memory planner
// is a later pass). Batched slots scale with the batch capacity.
typedef struct Slot {
  bool has_slot;
  size_t offset;  // per sample (batched) or absolute within the fixed part
} Slot;

static size_t round_up(size_t x) { return (x + ALIGN_ELEMS - 1) / ALIGN_ELEMS * ALIGN_ELEMS; }

static bool needs_slot(const Node *node) { return op_info(node->op)->kernel != KERNEL_NONE; }

typedef struct Layout {
  Slot *slots;
  size_t per_sample, fixed;
} Layout;

static Layout plan_arena(const Graph *g, const bool *used) {
  Layout layout = {.slots = calloc((size_t)g->n_nodes, sizeof(Slot))};
  for (int id = 0; id < g->n_nodes; id++) {
    const Node *node = &g->nodes[id];
    if (!used[id] || !needs_slot(node)) continue;
    layout.slots[id].has_slot = true;
    size_t size = round_up(shape_size(node->shape));
    if (node->shape.batched) {
      layout.slots[id].offset = layout.per_sample;
      layout.per_sample += size;
    } else {
      layout.slots[id].offset = layout.fixed;
      layout.fixed += size;
    }
  }
  return layout;
}

// ------------------------------------------------------------ functions
static void param_const(const Graph *g, int param, const char *suffix, char *buf, size_t size) {
  char upper[320];
  upper_name(g->nodes[g->params[param].node].name, upper, sizeof upper);
  snprintf(buf, size, "%s_%s", upper, suffix);
}

// In an evaluation function, corruption is skipped: its readers read its input.
static bool skipped(const Emitter *e, const Node *node) {
  return e->inference && op_info(node->op)->identity_at_inference;
}

static int resolve(const Emitter *e, int id) {
  while (skipped(e, &e->graph->nodes[id])) id = e->graph->nodes[id].inputs[0];
  return id;
}

// The C expression for a node's storage inside a schedule function.
static void value_ref(const Emitter *e, int id, char *buf, size_t size) {
  const Node *node = &e->graph->nodes[resolve(e, id)];
  if (node->op == OP_INPUT)
    snprintf(buf, size, "input");
  else if (node->op == OP_PARAM) {
    char off[512];
    param_const(e->graph, node->param_index, "OFFSET", off, sizeof off);
    snprintf(buf, size, "ctx->params + %s", off);
  } else
    snprintf(buf, size, "%s", node->name);
}

static void emit_buffers(Emitter *e, const Layout *layout, const Schedule *s) {
  bool any = false;
  for (int i = 0; i < s->n_nodes; i++) any |= layout->slots[s->nodes[i]].has_slot;
  if (!any) return;
  emit_line(e, "  real *arena = ctx->arena;");
  emit_line(e, "  const size_t cap = (size_t)ctx->capacity;");
  for (int i = 0; i < s->n_nodes; i++) {
    const Node *node = &e->graph->nodes[s->nodes[i]];
    const Slot *slot = &layout->slots[node->id];
    if (!slot->has_slot || skipped(e, node)) continue;
    if (node->shape.batched)
      emit_line(e, "  real *%s = arena + cap * %zu;", node->name, slot->offset);
    else
      emit_line(e, "  real *%s = arena + cap * ARENA_PER_SAMPLE + %zu;", node->name, slot->offset);
  }
}

static void emit_constants_for(Emitter *e, const Schedule *s) {
  for (int i = 0; i < s->n_nodes; i++) {
    const Node *node = &e->graph->nodes[s->nodes[i]];
    if (node->op == OP_CONSTANT)
      emit_line(e, "  static const real %s[1] = {(real)%.17g};", node->name, node->attr[0]);
  }
}

static void emit_calls(Emitter *e, const Schedule *s) {
  for (int i = 0; i < s->n_nodes; i++) {
    const Node *node = &e->graph->nodes[s->nodes[i]];
    if (!needs_slot(node) || skipped(e, node)) continue;
    fprintf(e->out, "  compute_%s(", node->name);
    if (node_uses_batch(e->graph, node)) fprintf(e->out, "n, ");
    if (node->rng_node >= 0) fprintf(e->out, "aert_hash64(batch_key, %d), ", node->rng_node);
    for (int j = 0; j < node->n_inputs; j++) {
      char ref[640];
      value_ref(e, node->inputs[j], ref, sizeof ref);
      fprintf(e->out, "%s, ", ref);
    }
    fprintf(e->out, "%s);\n", node->name);
  }
}

static bool schedule_uses_input(const Emitter *e, const Schedule *s) {
  for (int i = 0; i < s->n_nodes; i++)
    if (e->graph->nodes[s->nodes[i]].op == OP_INPUT) return true;
  return false;
}

static bool schedule_uses_batch(const Emitter *e, const Schedule *s) {
  for (int i = 0; i < s->n_nodes; i++) {
    const Node *node = &e->graph->nodes[s->nodes[i]];
    if (needs_slot(node) && !skipped(e, node) && node_uses_batch(e->graph, node)) return true;
  }
  return false;
}

static bool schedule_draws(const Emitter *e, const Schedule *s) {
  for (int i = 0; i < s->n_nodes; i++) {
    const Node *node = &e->graph->nodes[s->nodes[i]];
    if (node->rng_node >= 0 && !skipped(e, node)) return true;
  }
  return false;
}

// The head of a schedule function taking (ctx, x, n), with unused ones voided.
static void emit_schedule_head(Emitter *e, const Layout *layout, const Schedule *s) {
  if (!schedule_uses_input(e, s)) emit_line(e, "  (void)input;");
  if (!schedule_uses_batch(e, s)) emit_line(e, "  (void)n;");
  emit_constants_for(e, s);
  emit_buffers(e, layout, s);
  if (schedule_draws(e, s)) {
    emit_line(e, "  // Random draws depend only on (seed, batch, node, element): the same in every step of a batch.");
    emit_line(e, "  const uint64_t batch_key = aert_stream_key(ctx->seed, AERT_STREAM_CORRUPT, ctx->batch_counter);");
  }
}

// The prefix of a step's functions: its loss's name, with the step's number
// when another step minimizes the same loss.
static const char *step_name(const Graph *g, int s_index, char *buf, size_t size) {
  const Step *step = &g->steps[s_index];
  bool shared = false;
  for (int i = 0; i < g->n_steps; i++) shared |= i != s_index && strcmp(g->steps[i].loss_name, step->loss_name) == 0;
  if (shared) snprintf(buf, size, "%s_step%d", step->loss_name, s_index);
  else snprintf(buf, size, "%s", step->loss_name);
  return buf;
}

static void emit_step_functions(Emitter *e, const Layout *layout, int s_index) {
  Graph *g = e->graph;
  const Step *step = &g->steps[s_index];
  int n_out = step->n_params + 1;
  int *outputs = malloc((size_t)n_out * sizeof(int));
  outputs[0] = g->losses[step->loss_index].node;
  for (int i = 0; i < step->n_params; i++) outputs[i + 1] = step->grad_nodes[i];
  Schedule s = schedule_for(g, outputs, n_out);
  free(outputs);

  char line[160];
  source_line(step->loc, line, sizeof line);
  emit_blank(e);
  emit_line(e, "// ---- step %d: %s:%d: %s", s_index, file_base(step->loc.source->path), step->loc.line, line);
  emit_line(e, "// Forward pass, then the gradient of '%s' with respect to the parameters of %s.",
            step->loss_name, step->nets_text);
  char name[300];
  step_name(g, s_index, name, sizeof name);
  emit_line(e, "static double %s_loss_and_grad(aert_ctx *ctx, const real *input, int n) {", name);
  emit_schedule_head(e, layout, &s);
  emit_calls(e, &s);
  for (int i = 0; i < step->n_params; i++) {
    char off[512], size[512], ref[640];
    param_const(g, step->params[i], "OFFSET", off, sizeof off);
    param_const(g, step->params[i], "SIZE", size, sizeof size);
    if (step->grad_nodes[i] < 0) {
      emit_line(e, "  memset(ctx->grads + %s, 0, sizeof(real) * %s);  // the loss does not depend on it", off, size);
      continue;
    }
    value_ref(e, step->grad_nodes[i], ref, sizeof ref);
    emit_line(e, "  memcpy(ctx->grads + %s, %s, sizeof(real) * %s);", off, ref, size);
  }
  char loss_ref[640];
  value_ref(e, g->losses[step->loss_index].node, loss_ref, sizeof loss_ref);
  emit_line(e, "  return %s[0];", loss_ref);
  emit_line(e, "}");
  schedule_free(&s);

  // The optimizer update, one loop per parameter tensor.
  emit_blank(e);
  if (step->optimizer == OPTIMIZER_ADAM) {
    emit_line(e, "// adam(lr=%g, beta1=%g, beta2=%g, eps=%g) over %s: %zu parameters; state: m then v", step->lr,
              step->beta1, step->beta2, step->eps, step->nets_text, step->n_elems);
    emit_line(e, "static void %s_update(aert_ctx *ctx) {", name);
    emit_line(e, "  real *m = ctx->opt_state[%d], *v = m + %zu;", s_index, step->n_elems);
    emit_line(e, "  const double t = (double)++ctx->opt_t[%d];", s_index);
    emit_line(e, "  const real lr = (real)ctx->lr[%d];", s_index);
    size_t state = 0;
    for (int i = 0; i < step->n_params; i++) {
      char off[512], size[512];
      param_const(g, step->params[i], "OFFSET", off, sizeof off);
      param_const(g, step->params[i], "SIZE", size, sizeof size);
      emit_line(e, "  adam(ctx->params + %s, ctx->grads + %s, m + %zu, v + %zu, %s, lr, %.17g, %.17g, %.17g, t);", off,
                off, state, state, size, step->beta1, step->beta2, step->eps);
      state += g->params[step->params[i]].size;
    }
  } else {
    emit_line(e, "// sgd(lr=%g, momentum=%g) over %s: %zu parameters; state: the velocity", step->lr,
              step->momentum, step->nets_text, step->n_elems);
    emit_line(e, "static void %s_update(aert_ctx *ctx) {", name);
    emit_line(e, "  real *velocity = ctx->opt_state[%d];", s_index);
    emit_line(e, "  ctx->opt_t[%d]++;", s_index);
    emit_line(e, "  const real lr = (real)ctx->lr[%d];", s_index);
    size_t state = 0;
    for (int i = 0; i < step->n_params; i++) {
      char off[512], size[512];
      param_const(g, step->params[i], "OFFSET", off, sizeof off);
      param_const(g, step->params[i], "SIZE", size, sizeof size);
      emit_line(e, "  sgd(ctx->params + %s, ctx->grads + %s, velocity + %zu, %s, lr, %.17g);", off, off, state, size,
                step->momentum);
      state += g->params[step->params[i]].size;
    }
  }
  emit_line(e, "}");
}

static void emit_optimizers(Emitter *e) {
  bool adam = false, sgd = false;
  for (int i = 0; i < e->graph->n_steps; i++) {
    adam |= e->graph->steps[i].optimizer == OPTIMIZER_ADAM;
    sgd |= e->graph->steps[i].optimizer == OPTIMIZER_SGD;
  }
  if (adam) {
    emit_blank(e);
    emit_line(e, "// Adam (Kingma & Ba), in PyTorch's arrangement: m and v are the running");
    emit_line(e, "// moments, t the update count, the bias corrections folded into the step.");
    emit_line(e, "static void adam(real *restrict p, const real *restrict g, real *restrict m, real *restrict v,");
    emit_line(e, "                 size_t size, real lr, real beta1, real beta2, real eps, double t) {");
    emit_line(e, "  const real bias_correction1 = (real)(1 - pow((double)beta1, t));");
    emit_line(e, "  const real bias_correction2_sqrt = (real)sqrt(1 - pow((double)beta2, t));");
    emit_line(e, "  const real step_size = lr / bias_correction1;");
    emit_line(e, "  for (size_t i = 0; i < size; i++) {");
    emit_line(e, "    m[i] += (1 - beta1) * (g[i] - m[i]);");
    emit_line(e, "    v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];");
    emit_line(e, "    p[i] -= step_size * m[i] / (sqrt(v[i]) / bias_correction2_sqrt + eps);");
    emit_line(e, "  }");
    emit_line(e, "}");
  }
  if (sgd) {
    emit_blank(e);
    emit_line(e, "// SGD with momentum, as PyTorch: velocity = momentum * velocity + g; p -= lr * velocity.");
    emit_line(e, "static void sgd(real *restrict p, const real *restrict g, real *restrict velocity, size_t size,");
    emit_line(e, "                real lr, real momentum) {");
    emit_line(e, "  for (size_t i = 0; i < size; i++) {");
    emit_line(e, "    velocity[i] = momentum * velocity[i] + g[i];");
    emit_line(e, "    p[i] -= lr * velocity[i];");
    emit_line(e, "  }");
    emit_line(e, "}");
  }
}

static void emit_eval(Emitter *e, const Layout *layout) {
  Graph *g = e->graph;
  int *outputs = malloc((size_t)(g->n_losses + 1) * sizeof(int));
  for (int i = 0; i < g->n_losses; i++) outputs[i] = g->losses[i].node;
  Schedule s = schedule_for(g, outputs, g->n_losses);
  free(outputs);
  emit_blank(e);
  emit_line(e, "// Every named loss on a batch, in inference mode.");
  emit_line(e, "static void eval_losses(aert_ctx *ctx, const real *input, int n, double *losses) {");
  e->inference = true;
  emit_schedule_head(e, layout, &s);
  emit_calls(e, &s);
  for (int i = 0; i < g->n_losses; i++) {
    char ref[640];
    value_ref(e, g->losses[i].node, ref, sizeof ref);
    emit_line(e, "  losses[%d] = %s[0];  // %s", i, ref, g->losses[i].name);
  }
  e->inference = false;
  emit_line(e, "}");
  schedule_free(&s);
}

// encode and reconstruct: one value per sample, copied out.
static void emit_apply(Emitter *e, const Layout *layout, const char *fn, int node, const char *what) {
  if (node < 0) return;
  Graph *g = e->graph;
  Schedule s = schedule_for(g, &node, 1);
  char size[512], ref[640];
  e->inference = true;
  size_const(g, node, size, sizeof size);
  value_ref(e, node, ref, sizeof ref);
  emit_blank(e);
  emit_line(e, "// %s, in inference mode.", what);
  emit_line(e, "static void %s(aert_ctx *ctx, const real *input, int n, real *out) {", fn);
  emit_schedule_head(e, layout, &s);
  emit_calls(e, &s);
  emit_line(e, "  memcpy(out, %s, sizeof(real) * (size_t)n * %s);", ref, size);
  emit_line(e, "}");
  e->inference = false;
  schedule_free(&s);
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

static void emit_c_string(Emitter *e, const char *text) {
  fputc('"', e->out);
  for (const char *c = text; *c; c++) {
    if (*c == '"' || *c == '\\') fputc('\\', e->out);
    if ((unsigned char)*c < 32) fprintf(e->out, "\\%03o", (unsigned char)*c);
    else fputc(*c, e->out);
  }
  fputc('"', e->out);
}

static void emit_tables(Emitter *e) {
  Graph *g = e->graph;
  emit_blank(e);
  emit_line(e, "static const aert_param params[] = {");
  for (int i = 0; i < g->n_params; i++) {
    const Param *p = &g->params[i];
    char off[512], size[512];
    param_const(g, i, "OFFSET", off, sizeof off);
    param_const(g, i, "SIZE", size, sizeof size);
    fprintf(e->out, "  {\"%s\", %d, {", p->name, p->shape.rank);
    for (int d = 0; d < p->shape.rank; d++) fprintf(e->out, d ? ", %d" : "%d", p->shape.dims[d]);
    fprintf(e->out, "}, %s, %s, %s, %d, %d},\n", off, size, p->is_kernel ? "AERT_INIT_GLOROT_UNIFORM" : "AERT_INIT_ZEROS",
            p->fan_in, p->fan_out);
  }
  emit_line(e, "};");
  emit_blank(e);
  emit_line(e, "static const aert_layer layers[] = {");
  for (int i = 0; i < g->n_layers; i++) {
    const Layer *l = &g->layers[i];
    Shape s = g->nodes[l->node].shape;
    fprintf(e->out, "  {\"%s\", ", l->name);
    emit_c_string(e, l->description);
    fprintf(e->out, ", %d, {", s.rank);
    for (int d = 0; d < s.rank; d++) fprintf(e->out, d ? ", %d" : "%d", s.dims[d]);
    fprintf(e->out, "}, %ld, %.0f, %d},\n", l->params, l->flops, l->loc.line);
  }
  emit_line(e, "};");
  emit_blank(e);
  fprintf(e->out, "static const char *const loss_names[] = {");
  for (int i = 0; i < g->n_losses; i++) fprintf(e->out, "%s\"%s\"", i ? ", " : "", g->losses[i].name);
  fprintf(e->out, "};\n\n");
  emit_line(e, "static const aert_step steps[] = {");
  for (int i = 0; i < g->n_steps; i++) {
    const Step *s = &g->steps[i];
    emit_line(e, "  {\"%s\", %d, \"%s\", %s, %.17g, %.17g, %.17g, %.17g, %.17g, %zu},", s->loss_name, s->loss_index,
              s->nets_text, s->optimizer == OPTIMIZER_ADAM ? "AERT_ADAM" : "AERT_SGD", s->lr, s->momentum, s->beta1,
              s->beta2, s->eps, s->optimizer == OPTIMIZER_ADAM ? 2 * s->n_elems : s->n_elems);
  }
  emit_line(e, "};");
}

static void emit_model(Emitter *e, const Layout *layout) {
  Graph *g = e->graph;
  const EmitOptions *o = e->options;
  Shape in = g->nodes[g->input_node].shape;
  char code_size[512] = "0", recon_size[512] = "0";
  if (g->code_node >= 0) size_const(g, g->code_node, code_size, sizeof code_size);
  if (g->reconstruction_node >= 0) size_const(g, g->reconstruction_node, recon_size, sizeof recon_size);
  emit_blank(e);
  emit_line(e, "static const aert_model model = {");
  emit_line(e, "  .abi_version = AERT_ABI_VERSION,");
  fprintf(e->out, "  .name = ");
  emit_c_string(e, o->model_name);
  fprintf(e->out, ",\n  .source_file = ");
  emit_c_string(e, o->source_path);
  fprintf(e->out, ",\n");
  emit_line(e, "  .source_hash = \"%s\",", o->source_hash);
  emit_line(e, "  .aec_version = \"%s\",", AEC_VERSION);
  fprintf(e->out, "  .input_rank = %d,\n  .input_shape = {", in.rank);
  for (int d = 0; d < in.rank; d++) fprintf(e->out, d ? ", %d" : "%d", in.dims[d]);
  fprintf(e->out, "},\n");
  emit_line(e, "  .input_size = INPUT_SIZE,");
  emit_line(e, "  .n_param_elems = PARAM_ELEMS,");
  emit_line(e, "  .n_params = %d,", g->n_params);
  emit_line(e, "  .params = params,");
  emit_line(e, "  .n_layers = %d,", g->n_layers);
  emit_line(e, "  .layers = layers,");
  emit_line(e, "  .n_losses = %d,", g->n_losses);
  emit_line(e, "  .loss_names = loss_names,");
  emit_line(e, "  .n_steps = %d,", g->n_steps);
  emit_line(e, "  .steps = steps,");
  fprintf(e->out, "  .default_data = ");
  emit_c_string(e, g->train.data);
  fprintf(e->out, ",\n  .default_test = ");
  emit_c_string(e, g->train.test);
  fprintf(e->out, ",\n");
  emit_line(e, "  .default_batch = %d,", g->train.batch);
  emit_line(e, "  .default_epochs = %d,", g->train.epochs);
  emit_line(e, "  .default_seed = %lluu,", (unsigned long long)g->train.seed);
  emit_line(e, "  .arena_per_sample = ARENA_PER_SAMPLE,");
  emit_line(e, "  .arena_fixed = ARENA_FIXED,");
  emit_line(e, "  .code_size = %s,", code_size);
  emit_line(e, "  .recon_size = %s,", recon_size);
  emit_line(e, "  .loss_and_grad = loss_and_grad,");
  emit_line(e, "  .apply_update = apply_update,");
  emit_line(e, "  .eval_losses = eval_losses,");
  emit_line(e, "  .reconstruct = %s,", g->reconstruction_node >= 0 ? "reconstruct" : "NULL");
  emit_line(e, "  .encode = %s,", g->code_node >= 0 ? "encode" : "NULL");
  emit_line(e, "};");
  emit_blank(e);
  emit_line(e, "int main(int argc, char **argv) { return aert_main(&model, argc, argv); }");
  (void)layout;
}

static void emit_header(Emitter *e, const bool *used, const Layout *layout) {
  Graph *g = e->graph;
  const EmitOptions *o = e->options;
  emit_line(e, "// %s.c — generated by aec %s from %s (source hash %s).", o->model_name, AEC_VERSION, o->source_path,
            o->source_hash);
  emit_line(e, "// Command: %s", o->command_line);
  emit_line(e, "// Element type: %s. Regenerate rather than edit; see the kernels below for what", o->dtype == DTYPE_F64 ? "double" : "float");
  emit_line(e, "// each .ae line became. Build: cc -O3 -march=native -fopenmp %s.c -laert -lcairo -lz -lm", o->model_name);
  emit_blank(e);
  if (o->dtype == DTYPE_F64) emit_line(e, "#define AERT_REAL double");
  emit_line(e, "#include <stddef.h>");
  emit_line(e, "#include <stdint.h>");
  emit_line(e, "#include <string.h>");
  emit_line(e, "#include <tgmath.h>");
  emit_blank(e);
  emit_line(e, "#include \"aert.h\"");
  emit_blank(e);
  emit_line(e, "typedef aert_real real;");
  emit_blank(e);
  emit_line(e, "// ---- shapes: elements per sample of each batched value, or in all of an unbatched one");
  emit_line(e, "enum {");
  char upper_input[256];
  upper_name(g->nodes[g->input_node].name, upper_input, sizeof upper_input);
  for (int id = 0; id < g->n_nodes; id++) {
    const Node *node = &g->nodes[id];
    if (!used[id] || node->op == OP_CONSTANT) continue;
    char c[512], shape[64];
    size_const(g, id, c, sizeof c);
    shape_format(node->shape, shape, sizeof shape);
    emit_line(e, "  %s = %zu,  // %s%s", c, shape_size(node->shape), shape, node->shape.batched ? " per sample" : "");
  }
  emit_line(e, "  INPUT_SIZE = %s_SIZE,  // the input", upper_input);
  emit_line(e, "};");
  emit_blank(e);
  emit_line(e, "// ---- parameters: one buffer, each tensor at its offset (gradients use the same layout)");
  emit_line(e, "enum {");
  for (int i = 0; i < g->n_params; i++) {
    char off[512];
    param_const(g, i, "OFFSET", off, sizeof off);
    emit_line(e, "  %s = %zu,  // %s", off, g->params[i].offset, g->params[i].name);
  }
  emit_line(e, "  PARAM_ELEMS = %zu,", g->n_param_elems);
  emit_line(e, "};");
  emit_blank(e);
  emit_line(e, "// ---- the arena: batched values take `capacity` x their per-sample size each");
  emit_line(e, "enum { ARENA_PER_SAMPLE = %zu, ARENA_FIXED = %zu };", layout->per_sample, layout->fixed);
}

bool emit_program(FILE *out, Graph *graph, const EmitOptions *options) {
  Emitter e = {.out = out, .graph = graph, .options = options};
  // Everything any generated function computes.
  bool *used = calloc((size_t)graph->n_nodes, sizeof(bool));
  int n_outputs = 0, *outputs = malloc((size_t)(graph->n_nodes + 8) * sizeof(int));
  for (int i = 0; i < graph->n_losses; i++) outputs[n_outputs++] = graph->losses[i].node;
  for (int i = 0; i < graph->n_steps; i++)
    for (int j = 0; j < graph->steps[i].n_params; j++) outputs[n_outputs++] = graph->steps[i].grad_nodes[j];
  if (graph->code_node >= 0) outputs[n_outputs++] = graph->code_node;
  if (graph->reconstruction_node >= 0) outputs[n_outputs++] = graph->reconstruction_node;
  for (int i = 0; i < graph->n_params; i++) outputs[n_outputs++] = graph->params[i].node;
  outputs[n_outputs++] = graph->input_node;
  Schedule all = schedule_for(graph, outputs, n_outputs);
  free(outputs);
  for (int i = 0; i < all.n_nodes; i++) used[all.nodes[i]] = true;
  Layout layout = plan_arena(graph, used);

  emit_header(&e, used, &layout);
  emit_blank(&e);
  emit_line(&e, "// ---- kernels, one per node, in the order they run");
  for (int i = 0; i < all.n_nodes; i++) emit_kernel(&e, &graph->nodes[all.nodes[i]]);
  emit_optimizers(&e);
  for (int i = 0; i < graph->n_steps; i++) emit_step_functions(&e, &layout, i);
  emit_eval(&e, &layout);
  emit_apply(&e, &layout, "reconstruct", graph->reconstruction_node, "The reconstruction of each sample");
  emit_apply(&e, &layout, "encode", graph->code_node, "The code of each sample");
  emit_dispatchers(&e);
  emit_tables(&e);
  emit_model(&e, &layout);
  schedule_free(&all);
  free(layout.slots);
  free(used);
  return !ferror(out);
}
