// emit.c — writes the generated C program: a header saying what produced it,
// shapes and parameter offsets as named constants, one static kernel per
// node (each with the .ae line it implements), one function per schedule
// (each step's forward/backward, its optimizer update, evaluation, encode,
// reconstruct), and the aert_model table the runtime drives.
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aec.h"


void emit_line(Emitter *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(e->out, fmt, ap);
  va_end(ap);
  fputc('\n', e->out);
}

void emit_lines(Emitter *e, const char *const *lines) {
  for (int i = 0; lines[i]; i++) emit_line(e, "%s", lines[i]);
}

void emit_stack_use(Emitter *e, size_t bytes) {
  if (bytes > e->thread_stack_bytes) e->thread_stack_bytes = bytes;
}

size_t emit_real_bytes(const Emitter *e) { return e->options->dtype == DTYPE_F64 ? 8 : 4; }

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
  if (e->kernel_name)
    fprintf(e->out, "static void %s(", e->kernel_name);
  else
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
    while (word[length] == '_' || ((word[length] | 32) >= 'a' && (word[length] | 32) <= 'z')) length++;
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
    } else if (strcmp(key, "per_count") == 0) {  // a loop-invariant reciprocal: one multiply an element, no divide
      fprintf(e->out, "(1 / %s)", count_expr);
    } else if (strcmp(key, "per_row") == 0) {
      fprintf(e->out, "(1 / %s)", rows_expr);
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

// -------------------------------------------------------- fused kernels
// The values a group reads from outside itself, in order of first use.
int group_inputs(const Graph *g, const Group *group, int *inputs) {
  int n = 0;
  for (int m = 0; m < group->n_members; m++) {
    const Node *node = &g->nodes[group->members[m]];
    for (int i = 0; i < node->n_inputs; i++) {
      int in = node->inputs[i];
      bool seen = false;
      for (int k = 0; k < group->n_members; k++) seen |= group->members[k] == in;
      for (int k = 0; k < n; k++) seen |= inputs[k] == in;
      if (!seen) inputs[n++] = in;
    }
  }
  return n;
}

static const char *const param_letters[] = {"a", "b", "c", "d", "e", "f", "g", "h", "p", "q", "r", "s", "u", "w",
                                            "y", "z"};

const char *group_param_name(int i) { return param_letters[i]; }
enum { MAX_GROUP_INPUTS = 16 };

static bool group_uses_batch(const Graph *g, const Group *group) {
  for (int m = 0; m < group->n_members; m++)
    if (node_uses_batch(g, &g->nodes[group->members[m]])) return true;
  return false;
}

void emit_group_comment(Emitter *e, const Group *group, const int *inputs, int n_inputs) {
  const Graph *g = e->graph;
  const Node *lead = &g->nodes[group->members[0]];
  char line[160];
  source_line(lead->loc, line, sizeof line);
  emit_blank(e);
  if (lead->loc.source) emit_line(e, "// %s:%d: %s", file_base(lead->loc.source->path), lead->loc.line, line);
  fprintf(e->out, "// fused%s:", lead->is_backward ? " (backward)" : "");
  for (int m = 0; m < group->n_members; m++)
    fprintf(e->out, "%s %s", m ? " ->" : "", op_info(g->nodes[group->members[m]].op)->name);
  fprintf(e->out, "\n");
  if (n_inputs) {
    fprintf(e->out, "// reads");
    for (int i = 0; i < n_inputs; i++) fprintf(e->out, "%s %s = %s", i ? "," : "", param_letters[i], g->nodes[inputs[i]].name);
    fprintf(e->out, "\n");
  }
}

// `static void NAME(int n, uint64_t key, const real *restrict a, ..., real *restrict out...)`
static void emit_group_signature(Emitter *e, const char *name, const Group *group, int n_inputs,
                                 const char *const *outputs, int n_outputs) {
  const Graph *g = e->graph;
  bool key = false;
  for (int m = 0; m < group->n_members; m++) key |= g->nodes[group->members[m]].rng_node >= 0;
  fprintf(e->out, "static void %s(", name);
  if (group_uses_batch(g, group)) fprintf(e->out, "int n, ");
  if (key) fprintf(e->out, "uint64_t key, ");
  for (int i = 0; i < n_inputs; i++) fprintf(e->out, "const real *restrict %s, ", param_letters[i]);
  for (int o = 0; o < n_outputs; o++) fprintf(e->out, "real *restrict %s%s", outputs[o], o + 1 < n_outputs ? ", " : ") {\n");
}

// The expressions a member's template reads: earlier members' temporaries,
// or the group's input arrays at `index` (element 0 for scalars).
static void member_operands(const Graph *g, const Group *group, int member, const int *inputs, int n_inputs,
                            const char *index, char operands[MAX_INPUTS][64]) {
  const Node *node = &g->nodes[group->members[member]];
  for (int i = 0; i < node->n_inputs; i++) {
    int in = node->inputs[i];
    snprintf(operands[i], 64, "?");
    for (int m = 0; m < member; m++)
      if (group->members[m] == in) snprintf(operands[i], 64, "v%d", m);
    for (int k = 0; k < n_inputs; k++)
      if (inputs[k] == in)
        snprintf(operands[i], 64, "%s[%s]", param_letters[k], shape_is_scalar(g->nodes[in].shape) ? "0" : index);
  }
}

// Like expand_template, with each $k replaced by operands[k].
static void expand_with(Emitter *e, const Node *node, const char *tmpl, char operands[MAX_INPUTS][64],
                        const char *index, const char *count_expr, const char *rows_expr) {
  for (const char *p = tmpl; *p; p++) {
    if (*p == '$' && p[1] >= '0' && p[1] <= '3' && !(p[2] >= '0' && p[2] <= '9')) {
      fputs(operands[p[1] - '0'], e->out);
      p++;
      continue;
    }
    if (*p != '$') {
      fputc(*p, e->out);
      continue;
    }
    const char *end = p + 1;
    while (*end == '_' || ((*end | 32) >= 'a' && (*end | 32) <= 'z')) end++;
    while (*end >= '0' && *end <= '9') end++;
    char piece[40];
    snprintf(piece, sizeof piece, "%.*s", (int)(end - p), p);
    expand_template(e, node, piece, index, count_expr, rows_expr);
    p = end - 1;
  }
}

// Member m's expression at element `at` (the product kernels' epilogues): its
// template with operands that are earlier members' values (vK) or the group's
// inputs (a letter, [at] or [0]).
void expand_member(Emitter *e, const Group *group, int m, const int *inputs, int n_inputs) {
  expand_member_text(e, group, m, inputs, n_inputs, op_info(e->graph->nodes[group->members[m]].op)->expr);
}

// As expand_member, for another template of the member's op (OpInfo.rest, .log_factor).
void expand_member_text(Emitter *e, const Group *group, int m, const int *inputs, int n_inputs, const char *text) {
  const Node *node = &e->graph->nodes[group->members[m]];
  char operands[MAX_INPUTS][64];
  member_operands(e->graph, group, m, inputs, n_inputs, "at", operands);
  expand_with(e, node, text, operands, "at", "(real)count", node->shape.batched ? "(real)n" : "1");
}

// An op's expression with its inputs given as C expressions: a kernel that
// applies the op to values it holds (emit_unpool_gradient_group).
void expand_op_with(Emitter *e, const Node *node, const char *const *operands, int n_operands) {
  char copies[MAX_INPUTS][64];
  for (int i = 0; i < MAX_INPUTS; i++) snprintf(copies[i], sizeof copies[i], "%s", i < n_operands ? operands[i] : "?");
  expand_with(e, node, op_info(node->op)->expr, copies, "at", "(real)count", node->shape.batched ? "(real)n" : "1");
}

// Writes `const real vK = ...;` for members from..to-1 at `index`.
static void emit_member_chain(Emitter *e, const Group *group, int from, int to, const int *inputs, int n_inputs,
                              const char *index, const char *indent) {
  const Graph *g = e->graph;
  for (int m = from; m < to; m++) {
    const Node *node = &g->nodes[group->members[m]];
    char operands[MAX_INPUTS][64];
    member_operands(g, group, m, inputs, n_inputs, index, operands);
    fprintf(e->out, "%sconst real v%d = ", indent, m);
    expand_with(e, node, op_info(node->op)->expr, operands, index, "(real)count",
                node->shape.batched ? "(real)n" : "1");
    fprintf(e->out, ";  // %s\n", op_info(node->op)->name);
  }
}

static void emit_count(Emitter *e, int node) {
  char size[512];
  size_const(e->graph, node, size, sizeof size);
  if (e->graph->nodes[node].shape.batched)
    emit_line(e, "  const size_t count = (size_t)n * %s;", size);
  else
    emit_line(e, "  const size_t count = %s;", size);
}

static void void_unused_batch(Emitter *e, const Group *group, int counted) {
  if (group_uses_batch(e->graph, group) && !e->graph->nodes[counted].shape.batched) emit_line(e, "  (void)n;");
}

static void void_unused_inputs(Emitter *e, int n_inputs, const char *body) {
  for (int i = 0; i < n_inputs; i++) {
    char needle[8];
    snprintf(needle, sizeof needle, "%s[", param_letters[i]);
    if (!strstr(body, needle)) emit_line(e, "  (void)%s;  // gives a shape only", param_letters[i]);
  }
}

// A chain of elementwise ops: one loop, one store.
static void emit_elementwise_group(Emitter *e, const char *name, const Group *group) {
  int inputs[MAX_GROUP_INPUTS];
  int n_inputs = group_inputs(e->graph, group, inputs);
  emit_group_comment(e, group, inputs, n_inputs);
  emit_group_signature(e, name, group, n_inputs, (const char *const[]){"out"}, 1);
  emit_count(e, group->output);
  void_unused_batch(e, group, group->output);
  // The body goes to a buffer first so unused inputs can be voided above it.
  char *body = NULL;
  size_t size = 0;
  FILE *saved = e->out;
  e->out = open_memstream(&body, &size);
  emit_line(e, "#pragma omp parallel for simd schedule(static) if (count >= 65536)");
  emit_line(e, "  for (size_t i = 0; i < count; i++) {");
  emit_member_chain(e, group, 0, group->n_members, inputs, n_inputs, "i", "    ");
  emit_line(e, "    out[i] = v%d;", group->n_members - 1);
  emit_line(e, "  }");
  fclose(e->out);
  e->out = saved;
  void_unused_inputs(e, n_inputs, body);
  fputs(body, e->out);
  free(body);
  emit_line(e, "}");
}

// A loss and its gradient in one pass over the prediction. The sum is
// split in fixed chunks added in order, so it does not depend on threads.
static void emit_loss_group(Emitter *e, const char *name, const Group *group) {
  const Graph *g = e->graph;
  const Node *loss = &g->nodes[group->members[0]], *grad = &g->nodes[group->members[1]];
  int inputs[MAX_GROUP_INPUTS];
  int n_inputs = group_inputs(g, group, inputs);
  emit_group_comment(e, group, inputs, n_inputs);
  emit_group_signature(e, name, group, n_inputs, (const char *const[]){"loss", "out"}, 2);
  emit_count(e, loss->inputs[0]);
  void_unused_batch(e, group, loss->inputs[0]);
  // The loss terms of TERMS elements go to a small array of reals first and
  // are summed in double after: one loop of reals alone is what GCC
  // vectorizes with libmvec's 16-wide functions (mixed with the double sum,
  // it called the scalar log1pf for every element). They are added to
  // TERMS running sums, one per position, and those summed once a chunk: a
  // horizontal sum of a vector every TERMS elements cost more than the terms.
  emit_line(e, "  enum { CHUNKS = 64, TERMS = 64 };");
  emit_line(e, "  double partial[CHUNKS];");
  emit_line(e, "#pragma omp parallel for schedule(static) if (count >= 65536)");
  emit_line(e, "  for (int chunk = 0; chunk < CHUNKS; chunk++) {");
  emit_line(e, "    double position_sums[TERMS] = {0};");
  emit_line(e, "    const size_t begin = count * chunk / CHUNKS, end = count * (chunk + 1) / CHUNKS;");
  emit_line(e, "    for (size_t i0 = begin; i0 < end; i0 += TERMS) {");
  emit_line(e, "      const int m = end - i0 < TERMS ? (int)(end - i0) : TERMS;");
  emit_line(e, "      real terms[TERMS];");
  emit_line(e, "#pragma omp simd");
  emit_line(e, "      for (int t = 0; t < m; t++) {");
  emit_line(e, "        const size_t i = i0 + (size_t)t;");
  char operands[MAX_INPUTS][64];
  member_operands(g, group, 0, inputs, n_inputs, "i", operands);
  fprintf(e->out, "        terms[t] = ");
  bool batched = g->nodes[loss->inputs[0]].shape.batched;
  expand_with(e, loss, op_info(loss->op)->expr, operands, "i", "(real)count", batched ? "(real)n" : "1");
  fprintf(e->out, ";\n");
  member_operands(g, group, 1, inputs, n_inputs, "i", operands);
  fprintf(e->out, "        out[i] = ");
  expand_with(e, grad, op_info(grad->op)->expr, operands, "i", "(real)count", batched ? "(real)n" : "1");
  fprintf(e->out, ";\n");
  emit_line(e, "      }");
  emit_line(e, "#pragma omp simd");
  emit_line(e, "      for (int t = 0; t < m; t++) position_sums[t] += terms[t];");
  emit_line(e, "    }");
  emit_line(e, "    double sum = 0;");
  emit_line(e, "    for (int t = 0; t < TERMS; t++) sum += position_sums[t];");
  emit_line(e, "    partial[chunk] = sum;");
  emit_line(e, "  }");
  emit_line(e, "  double sum = 0;");
  emit_line(e, "  for (int chunk = 0; chunk < CHUNKS; chunk++) sum += partial[chunk];");
  switch (op_info(loss->op)->divisor) {
  case DIVIDE_BY_ONE: emit_line(e, "  loss[0] = (real)sum;"); break;
  case DIVIDE_BY_COUNT: emit_line(e, "  loss[0] = (real)(sum / (double)count);"); break;
  case DIVIDE_BY_ROWS: emit_line(e, batched ? "  loss[0] = (real)(sum / n);" : "  loss[0] = (real)sum;"); break;
  }
  emit_line(e, "}");
}

// ---------------------------------------------------------- function plans
// One generated function (a step's forward and backward, evaluation,
// encode, reconstruct, corrupt): its schedule, kernels and memory.
struct FunctionPlan {
  Schedule schedule;
  FusionPlan fusion;
  MemoryPlan memory;
  bool *outside;      // values stored outside the arena (weight gradients)
  char **kernel;      // [n_groups] the kernel each group calls
  int *kernel_index;  // [n_groups] its index in the model's kernel table
  size_t *scratch;    // [n_groups] scratch elements each group needs
  const bool *given;  // [n_nodes] values earlier steps of the batch left in shared slots (pass_share.c), or NULL
  const bool *stored; // [n_nodes] values it writes to shared slots, or NULL
};

static void param_const(const Graph *g, int param, const char *suffix, char *buf, size_t size) {
  char upper[320];
  upper_name(g->nodes[g->params[param].node].name, upper, sizeof upper);
  snprintf(buf, size, "%s_%s", upper, suffix);
}

// The param whose gradient a step's node is, or -1.
static int gradient_param(const Graph *g, int step, int node) {
  if (step < 0) return -1;
  const Step *s = &g->steps[step];
  for (int i = 0; i < s->n_params; i++)
    if (s->grad_nodes[i] == node) return s->params[i];
  return -1;
}

// `given` (or NULL): values read from shared slots, not computed; `stored`
// (or NULL): values written to shared slots for later steps (pass_share.c).
// The outputs are written to memory; `pin` keeps them alive to the end (a
// function that copies each one out as soon as it is written needs not).
static FunctionPlan *plan_function_pinned(Emitter *e, const int *outputs, int n_outputs, int step, const bool *given,
                                          const bool *stored, bool pin) {
  Graph *g = e->graph;
  bool optimize = e->options->opt_level > 0;
  FunctionPlan *fp = calloc(1, sizeof *fp);
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

static FunctionPlan *plan_function(Emitter *e, const int *outputs, int n_outputs, int step, const bool *given,
                                   const bool *stored) {
  return plan_function_pinned(e, outputs, n_outputs, step, given, stored, true);
}

static void function_plan_free(FunctionPlan *fp) {
  if (!fp) return;
  for (int i = 0; i < fp->fusion.n_groups; i++) free(fp->kernel[i]);
  free(fp->kernel), free(fp->kernel_index), free(fp->scratch), free(fp->outside);
  memory_plan_free(&fp->memory);
  fusion_plan_free(&fp->fusion);
  schedule_free(&fp->schedule);
  free(fp);
}

// Kernels are shared between functions: one per distinct group.
typedef struct KernelRegistry {
  char **signature, **name;
  double *flops_per_sample, *flops_per_call;
  int *line;
  bool *is_gemm;
  int n, cap;
} KernelRegistry;

static void group_signature(const Graph *g, const Group *group, bool optimize, char *buf, size_t size) {
  size_t used = (size_t)snprintf(buf, size, "%d:%d", group->kind, optimize);
  for (int m = 0; m < group->n_members && used < size; m++)
    used += (size_t)snprintf(buf + used, size - used, ",%d", group->members[m]);
  (void)g;
}

// Emits the kernel of each group not seen before and names every group's kernel.
static void emit_kernels_of(Emitter *e, FunctionPlan *fp, KernelRegistry *registry) {
  const Graph *g = e->graph;
  bool optimize = e->options->opt_level > 0;
  for (int gi = 0; gi < fp->fusion.n_groups; gi++) {
    const Group *group = &fp->fusion.groups[gi];
    char signature[512];
    group_signature(g, group, optimize, signature, sizeof signature);
    int found = -1;
    for (int k = 0; k < registry->n; k++)
      if (strcmp(registry->signature[k], signature) == 0) found = k;
    if (found >= 0) {
      fp->kernel[gi] = strdup(registry->name[found]);
      fp->kernel_index[gi] = found;
      continue;
    }
    char name[400];
    snprintf(name, sizeof name, "compute_%s", g->nodes[group->output].name);
    for (int version = 2;; version++) {
      bool taken = false;
      for (int k = 0; k < registry->n; k++) taken |= strcmp(registry->name[k], name) == 0;
      if (!taken) break;
      snprintf(name, sizeof name, "compute_%s_v%d", g->nodes[group->output].name, version);
    }
    if (registry->n == registry->cap) {
      registry->cap = registry->cap ? registry->cap * 2 : 32;
      registry->signature = realloc(registry->signature, (size_t)registry->cap * sizeof(char *));
      registry->name = realloc(registry->name, (size_t)registry->cap * sizeof(char *));
      registry->flops_per_sample = realloc(registry->flops_per_sample, (size_t)registry->cap * sizeof(double));
      registry->flops_per_call = realloc(registry->flops_per_call, (size_t)registry->cap * sizeof(double));
      registry->line = realloc(registry->line, (size_t)registry->cap * sizeof(int));
      registry->is_gemm = realloc(registry->is_gemm, (size_t)registry->cap * sizeof(bool));
    }
    int k = registry->n++;
    registry->signature[k] = strdup(signature);
    registry->name[k] = strdup(name);
    registry->flops_per_sample[k] = registry->flops_per_call[k] = 0;
    for (int m = 0; m < group->n_members; m++) {
      const Node *node = &g->nodes[group->members[m]];
      double f = op_info(node->op)->flops ? op_info(node->op)->flops(g, node) : 0;
      if (node_uses_batch(g, node)) registry->flops_per_sample[k] += f;
      else registry->flops_per_call[k] += f;
    }
    registry->line[k] = g->nodes[group->members[0]].loc.line;
    OpKind lead = g->nodes[group->members[0]].op;
    registry->is_gemm[k] = lead == OP_DENSE || lead == OP_DENSE_GRAD_INPUT || lead == OP_DENSE_GRAD_KERNEL;
    fp->kernel[gi] = strdup(name);
    fp->kernel_index[gi] = k;
    e->kernel_name = name;
    // The kernel goes to a buffer: inspect.c puts its note above it (and aec --line's directives in it).
    FILE *target = e->out;
    char *text = NULL;
    size_t text_size = 0;
    e->out = open_memstream(&text, &text_size);
    switch (group->kind) {
    case GROUP_SINGLE: emit_kernel(e, &g->nodes[group->members[0]]); break;
    case GROUP_GEMM:
    case GROUP_GEMM_LOSS: emit_gemm_group(e, name, group); break;
    case GROUP_LOSS: emit_loss_group(e, name, group); break;
    case GROUP_ELEMENTWISE: emit_elementwise_group(e, name, group); break;
    case GROUP_CONV: emit_conv_group(e, name, group); break;
    case GROUP_UNPOOL_GRADIENT: emit_unpool_gradient_group(e, name, group); break;
    }
    fclose(e->out);
    e->out = target;
    emit_kernel_with_note(e, name, group, text);
    free(text);
    e->kernel_name = NULL;
  }
}

static void registry_free(KernelRegistry *registry) {
  for (int k = 0; k < registry->n; k++) free(registry->signature[k]), free(registry->name[k]);
  free(registry->signature), free(registry->name), free(registry->flops_per_sample), free(registry->flops_per_call);
  free(registry->line), free(registry->is_gemm);
}

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
    if ((fp->given && fp->given[id]) || (fp->stored && fp->stored[id] && fp->outside[id]))
      emit_line(e, "  real *%s = ctx->arena + (size_t)ctx->capacity * %zu;  // shared: %s", g->nodes[id].name,
                e->share->base + e->share->offset[id], fp->given && fp->given[id] ? "left by an earlier step" : "read by a later step");
}

static void emit_constants_for(Emitter *e, const Schedule *s) {
  for (int i = 0; i < s->n_nodes; i++) {
    const Node *node = &e->graph->nodes[s->nodes[i]];
    if (node->op == OP_CONSTANT)
      emit_line(e, "  static const real %s[1] = {(real)%.17g};", node->name, node->attr[0]);
  }
}

// The call of group gi's kernel.
static void emit_call(Emitter *e, const FunctionPlan *fp, int gi) {
  const Graph *g = e->graph;
  const Group *group = &fp->fusion.groups[gi];
  const Node *lead = &g->nodes[group->members[0]];
  fprintf(e->out, "  TIMED(%d, %s(", fp->kernel_index[gi], fp->kernel[gi]);
  if (group_uses_batch(g, group)) fprintf(e->out, "n, ");
  int rng = -1;
  for (int m = 0; m < group->n_members; m++)
    if (g->nodes[group->members[m]].rng_node >= 0) rng = g->nodes[group->members[m]].rng_node;
  if (rng >= 0) fprintf(e->out, "aert_hash64(batch_key, %d), ", rng);
  int inputs[MAX_GROUP_INPUTS], n_inputs;
  if (group->kind == GROUP_SINGLE) {
    n_inputs = lead->n_inputs;
    memcpy(inputs, lead->inputs, sizeof(int) * (size_t)n_inputs);
  } else {
    n_inputs = group_inputs(g, group, inputs);
  }
  for (int j = 0; j < n_inputs; j++) {
    char ref[640];
    value_ref(e, inputs[j], ref, sizeof ref);
    fprintf(e->out, "%s, ", ref);
  }
  if (group->second_output >= 0) fprintf(e->out, "%s, ", g->nodes[group->second_output].name);
  fprintf(e->out, "%s", g->nodes[group->output].name);
  if (fp->scratch[gi] > 0) fprintf(e->out, ", arena + cap * ARENA_PER_SAMPLE + %zu", fp->memory.scratch[gi]);
  fprintf(e->out, "));\n");
}

static void emit_calls(Emitter *e, const FunctionPlan *fp) {
  for (int gi = 0; gi < fp->fusion.n_groups; gi++) emit_call(e, fp, gi);
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
  if (!schedule_uses_input(e, &fp->schedule)) emit_line(e, "  (void)input;");
  if (!plan_uses_batch(e, fp)) emit_line(e, "  (void)n;");
  emit_constants_for(e, &fp->schedule);
  emit_buffers(e, fp, step);
  if (plan_draws(e, fp)) {
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

static FunctionPlan *plan_step(Emitter *e, int s_index) {
  Graph *g = e->graph;
  const Step *step = &g->steps[s_index];
  int n_out = step->n_params + 1;
  int *outputs = malloc((size_t)n_out * sizeof(int));
  outputs[0] = g->losses[step->loss_index].node;
  for (int i = 0; i < step->n_params; i++) outputs[i + 1] = step->grad_nodes[i];
  const SharePlan *share = e->share;
  const bool *given = share && share_step_reads(share, s_index) ? share->given[s_index] : NULL;
  const bool *stored = share && share->n_steps > 1 ? share->stored[s_index] : NULL;
  FunctionPlan *fp = plan_function(e, outputs, n_out, s_index, given, stored);
  free(outputs);
  return fp;
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

  char line[160];
  source_line(step->loc, line, sizeof line);
  emit_blank(e);
  emit_line(e, "// ---- step %d: %s:%d: %s", s_index, file_base(step->loc.source->path), step->loc.line, line);
  emit_line(e, "// Forward pass, then the gradient of '%s' with respect to the parameters of %s.",
            step->loss_name, step->nets_text);
  char name[300];
  step_name(g, s_index, name, sizeof name);
  emit_share_comment(e, e->share, s_index);
  emit_line(e, "static double %s_loss_and_grad(aert_ctx *ctx, const real *input, int n) {", name);
  if (fp->given)
    emit_line(e, "  if (ctx->batch_step != %d) %s_shared_inputs(ctx, input, n);  // not right after the earlier steps", s_index, name);
  emit_schedule_head(e, fp, s_index);
  emit_calls(e, fp);
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
    for (int i = 0; i < step->n_params;) {
      char off[512], size[512];
      int run = contiguous_run(g, step, i, size, sizeof size);
      param_const(g, step->params[i], "OFFSET", off, sizeof off);
      emit_line(e, "  adam(ctx->params + %s, ctx->grads + %s, m + %zu, v + %zu, %s, lr, %.17g, %.17g, %.17g, t);", off,
                off, state, state, size, step->beta1, step->beta2, step->eps);
      for (int k = i; k < i + run; k++) state += g->params[step->params[k]].size;
      i += run;
    }
  } else {
    emit_line(e, "// sgd(lr=%g, momentum=%g) over %s: %zu parameters; state: the velocity", step->lr,
              step->momentum, step->nets_text, step->n_elems);
    emit_line(e, "static void %s_update(aert_ctx *ctx) {", name);
    emit_line(e, "  real *velocity = ctx->opt_state[%d];", s_index);
    emit_line(e, "  ctx->opt_t[%d]++;", s_index);
    emit_line(e, "  const real lr = (real)ctx->lr[%d];", s_index);
    size_t state = 0;
    for (int i = 0; i < step->n_params;) {
      char off[512], size[512];
      int run = contiguous_run(g, step, i, size, sizeof size);
      param_const(g, step->params[i], "OFFSET", off, sizeof off);
      emit_line(e, "  sgd(ctx->params + %s, ctx->grads + %s, velocity + %zu, %s, lr, %.17g);", off, off, state, size,
                step->momentum);
      for (int k = i; k < i + run; k++) state += g->params[step->params[k]].size;
      i += run;
    }
  }
  emit_line(e, "}");
}

static FunctionPlan *plan_eval(Emitter *e) {
  return plan_function(e, e->graph->eval_losses, e->graph->n_losses, -1, NULL, NULL);
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

// encode and reconstruct: one value per sample, copied out.
// encode, reconstruct and corrupt compute one value per sample.
static FunctionPlan *plan_apply(Emitter *e, int node) {
  return node < 0 ? NULL : plan_function(e, &node, 1, -1, NULL, NULL);
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

// layer_output (the `activations` command): the forward pass in inference
// mode up to the kernel that writes the asked layer's output, then a copy.
// Every layer's output is written to memory but none is kept alive beyond
// its readers: it is copied out right after its kernel.
static FunctionPlan *plan_layer_output(Emitter *e) {
  const Graph *g = e->graph;
  int *outputs = malloc(((size_t)g->n_layers + 1) * sizeof(int)), n_outputs = 0;
  for (int i = 0; i < g->n_layers; i++)
    if (g->layer_eval_nodes[i] >= 0) outputs[n_outputs++] = g->layer_eval_nodes[i];
  FunctionPlan *fp = n_outputs ? plan_function_pinned(e, outputs, n_outputs, -1, NULL, NULL, false) : NULL;
  free(outputs);
  return fp;
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
  emit_line(e, "// Each layer's output at inference: a node of the description, or -1 (not from the input alone).");
  fprintf(e->out, "static const int layer_nodes[] = {");
  for (int i = 0; i < g->n_layers; i++) fprintf(e->out, "%s%d", i ? ", " : "", g->layer_eval_nodes[i]);
  if (g->n_layers == 0) fprintf(e->out, "-1");
  fprintf(e->out, "};\n");
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

static void emit_model(Emitter *e, bool has_layer_output) {
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
  emit_line(e, "  .n_kernels = (int)(sizeof kernels / sizeof *kernels),");
  emit_line(e, "  .kernels = kernels,");
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
  emit_line(e, "  .corrupt = %s,", g->corrupt_node >= 0 ? "corrupt" : "NULL");
  if (g->first_kernel_param >= 0)
    emit_line(e, "  .first_kernel = \"%s\",", g->params[g->first_kernel_param].name);
  emit_line(e, "  .description = description,");
  emit_prior_entry(e);  // ops_prior.c
  emit_line(e, "  .layer_output = %s,", has_layer_output ? "layer_output" : "NULL");
  emit_line(e, "  .layer_nodes = layer_nodes,");
  emit_line(e, "  .thread_stack_bytes = %zu,", e->thread_stack_bytes);
  emit_line(e, "};");
  emit_blank(e);
  emit_line(e, "int main(int argc, char **argv) { return aert_main(&model, argc, argv); }");
}

static void emit_header(Emitter *e, const bool *used, size_t arena_per_sample, size_t arena_fixed) {
  Graph *g = e->graph;
  const EmitOptions *o = e->options;
  emit_line(e, "// %s.c — generated by aec %s from %s (source hash %s).", o->model_name, AEC_VERSION, o->source_path,
            o->source_hash);
  emit_line(e, "// Options: %s", o->command_line);
  emit_line(e, "// Element type: %s. Regenerate rather than edit; see the kernels below for what", o->dtype == DTYPE_F64 ? "double" : "float");
  emit_line(e, "// each .ae line became. Build: cc -O3 -march=native -fopenmp -fno-math-errno -DAEC_LIBMVEC %s.c -laert -lcairo -lz -lmvec -lm", o->model_name);
  emit_blank(e);
  if (o->dtype == DTYPE_F64) emit_line(e, "#define AERT_REAL double");
  emit_line(e, "#include <stddef.h>");
  emit_line(e, "#include <stdint.h>");
  emit_line(e, "#include <string.h>");
  emit_line(e, "#include <tgmath.h>");
  emit_blank(e);
  emit_line(e, "#include \"aert.h\"");
  emit_line(e, "#include \"aert_kernels.h\"  // the C every generated program shares, whatever its model");
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
  emit_line(e, "enum { ARENA_PER_SAMPLE = %zu, ARENA_FIXED = %zu };", arena_per_sample, arena_fixed);
}

// aec --stats: per generated function, kernels before and after fusion,
// arena bytes before and after planning (at the train block's batch), FLOPs
// per sample; a table on stderr, `name value` figures on `stats`.
static void print_stats(Emitter *e, FunctionPlan **plans, int n_plans, size_t per_sample, size_t fixed) {
  const Graph *g = e->graph;
  FILE *out = e->options->stats;
  static const char *const extra[] = {"eval", "reconstruct", "encode", "corrupt", "layer_output"};
  size_t bytes = emit_real_bytes(e);
  int batch = g->train.batch;
  fprintf(stderr, "%-24s %8s %8s %14s %14s %14s\n", "function", "nodes", "kernels", "arena_unplanned", "arena_planned",
          "flops/sample");
  for (int p = 0; p < n_plans; p++) {
    const FunctionPlan *fp = plans[p];
    if (!fp) continue;
    char name[300];
    if (p < g->n_steps) snprintf(name, sizeof name, "step %s", g->steps[p].loss_name);
    else snprintf(name, sizeof name, "%s", extra[p - g->n_steps]);
    int nodes = 0;
    double flops = 0;
    for (int i = 0; i < fp->schedule.n_nodes; i++) {
      const Node *node = &g->nodes[fp->schedule.nodes[i]];
      if (op_info(node->op)->kernel == KERNEL_NONE) continue;
      nodes++;
      if (op_info(node->op)->flops) {
        double f = op_info(node->op)->flops(g, node);
        flops += node_uses_batch(g, node) ? f : f / batch;
      }
    }
    size_t unplanned = (fp->memory.unplanned_per_sample * (size_t)batch + fp->memory.unplanned_fixed) * bytes;
    size_t planned = (fp->memory.per_sample * (size_t)batch + fp->memory.fixed) * bytes;
    fprintf(stderr, "%-24s %8d %8d %14zu %14zu %14.0f\n", name, nodes, fp->fusion.n_groups, unplanned, planned, flops);
    char key[300];
    snprintf(key, sizeof key, "%s", name);
    for (char *c = key; *c; c++)
      if (*c == ' ') *c = '.';
    fprintf(out, "kernels_before.%s %d\nkernels_after.%s %d\narena_bytes_before.%s %zu\narena_bytes_after.%s %zu\n"
            "flops_per_sample.%s %.0f\n", key, nodes, key, fp->fusion.n_groups, key, unplanned, key, planned, key, flops);
  }
  fprintf(out, "arena_bytes %zu\n", (per_sample * (size_t)batch + fixed) * bytes);
}

// The FunctionViews inspect.c reads (aec --dump-ir, --dot, the header's tables).
static int function_views(Emitter *e, FunctionPlan **plans, int n_plans, FunctionView *views) {
  static const char *const extra[] = {"eval_losses", "reconstruct", "encode", "corrupt", "layer_output"};
  int n = 0;
  for (int p = 0; p < n_plans; p++) {
    if (!plans[p]) continue;
    char name[320], prefix[300];
    if (p < e->graph->n_steps) snprintf(name, sizeof name, "%s_loss_and_grad", step_name(e->graph, p, prefix, sizeof prefix));
    else snprintf(name, sizeof name, "%s", extra[p - e->graph->n_steps]);
    views[n++] = (FunctionView){.name = strdup(name), .step = p < e->graph->n_steps ? p : -1,
                                .schedule = &plans[p]->schedule, .fusion = &plans[p]->fusion,
                                .memory = &plans[p]->memory, .outside = plans[p]->outside, .kernel = plans[p]->kernel};
  }
  return n;
}

// Refuses a model whose training memory — the arena at the train block's
// batch, plus parameters, gradients and optimizer state — exceeds this
// machine's physical memory (AEC_MEMORY_LIMIT, in bytes, stands in for it).
static bool fits_in_memory(const Graph *g, const EmitOptions *options, size_t per_sample, size_t fixed) {
  double real = options->dtype == DTYPE_F64 ? 8 : 4;
  double batch = g->train.batch > 0 ? g->train.batch : 1;
  double arena = ((double)per_sample * batch + (double)fixed) * real;
  double state = 0;
  for (int s = 0; s < g->n_steps; s++) state += (double)g->steps[s].n_elems * (g->steps[s].optimizer == OPTIMIZER_ADAM ? 2 : 1);
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

bool emit_program(FILE *out, Graph *graph, const EmitOptions *options) {
  // aec --line writes to a buffer first: the directives pointing back at the
  // .c file need its real line numbers.
  char *whole = NULL;
  size_t whole_size = 0;
  FILE *final_out = out;
  if (options->line_directives) out = open_memstream(&whole, &whole_size);
  Emitter e = {.out = out, .graph = graph, .options = options};
  plan_inference(graph);
  if (options->dump_ir) dump_graph(options->dump_ir, graph, "plan_inference (inference versions of losses, code, reconstruction)");
  // One plan per generated function: steps, evaluation, reconstruct, encode, corrupt, layer_output.
  int n_plans = graph->n_steps + 5;
  FunctionPlan **plans = calloc((size_t)n_plans, sizeof(FunctionPlan *));
  SharePlan share = plan_sharing(graph, options->opt_level > 0);  // pass_share.c
  e.share = &share;
  for (int i = 0; i < graph->n_steps; i++) plans[i] = plan_step(&e, i);
  // Each step that reads shared values can also compute them itself (called out of order).
  FunctionPlan **shared_inputs = calloc((size_t)graph->n_steps + 1, sizeof(FunctionPlan *));
  for (int i = 0; i < graph->n_steps; i++) {
    if (!plans[i]->given) continue;
    int *outs = malloc(((size_t)graph->n_nodes + 1) * sizeof(int)), n_outs = 0;
    for (int id = 0; id < graph->n_nodes; id++)
      if (share.given[i][id]) outs[n_outs++] = id;
    shared_inputs[i] = plan_function(&e, outs, n_outs, -1, NULL, share.given[i]);
    free(outs);
  }
  FunctionPlan **eval = &plans[graph->n_steps], **recon = eval + 1, **code = eval + 2, **corrupt = eval + 3,
               **layer_out = eval + 4;
  *eval = plan_eval(&e);
  *recon = plan_apply(&e, graph->reconstruction_node);
  *code = plan_apply(&e, graph->code_node);
  *corrupt = plan_apply(&e, graph->corrupt_node);
  *layer_out = plan_layer_output(&e);

  // Every value any function computes gets a shape constant; the arena is
  // as large as the largest function needs.
  bool *used = calloc((size_t)graph->n_nodes, sizeof(bool));
  size_t per_sample = 0, fixed = 0;
  for (int p = 0; p < n_plans; p++) {
    if (!plans[p]) continue;
    for (int i = 0; i < plans[p]->schedule.n_nodes; i++) used[plans[p]->schedule.nodes[i]] = true;
    if (plans[p]->memory.per_sample > per_sample) per_sample = plans[p]->memory.per_sample;
    if (plans[p]->memory.fixed > fixed) fixed = plans[p]->memory.fixed;
  }
  for (int i = 0; i < graph->n_steps; i++) {
    const FunctionPlan *fp = shared_inputs[i];
    for (int k = 0; fp && k < fp->schedule.n_nodes; k++) used[fp->schedule.nodes[k]] = true;
    if (fp && fp->memory.per_sample > per_sample) per_sample = fp->memory.per_sample;
    if (fp && fp->memory.fixed > fixed) fixed = fp->memory.fixed;
  }
  share.base = per_sample;  // the shared slots follow every function's planned part
  per_sample += share.per_sample;
  bool fits = fits_in_memory(graph, options, per_sample, fixed);
  for (int i = 0; i < graph->n_params; i++) used[graph->params[i].node] = true;
  used[graph->input_node] = true;
  if (options->stats) print_stats(&e, plans, n_plans, per_sample, fixed);
  // The kernels go to a buffer first: naming them gives the header's tables their kernel names.
  char *kernel_text = NULL;
  size_t kernel_size = 0;
  e.out = open_memstream(&kernel_text, &kernel_size);
  KernelRegistry registry = {0};
  for (int p = 0; p < n_plans; p++)
    if (plans[p]) emit_kernels_of(&e, plans[p], &registry);
  for (int i = 0; i < graph->n_steps; i++)
    if (shared_inputs[i]) emit_kernels_of(&e, shared_inputs[i], &registry);
  fclose(e.out);
  e.out = out;
  FunctionView *views = calloc((size_t)n_plans, sizeof(FunctionView));
  int n_views = function_views(&e, plans, n_plans, views);
  if (options->dump_ir)
    for (int v = 0; v < n_views; v++) dump_function(options->dump_ir, graph, &views[v]);
  if (options->dot) write_dot(options->dot, graph, views, graph->n_steps);
  emit_header(&e, used, per_sample, fixed);
  emit_blank(&e);
  emit_line(&e, "// ---- buffers: every value of each generated function, where it lives and which kernel computes it");
  for (int v = 0; v < n_views; v++) emit_buffer_table(&e, &views[v]);
  emit_blank(&e);
  emit_line(&e, "// ---- kernels, in the order they first run");
  fputs(kernel_text, out);
  free(kernel_text);
  for (int i = 0; i < graph->n_steps; i++) {
    if (shared_inputs[i]) emit_shared_inputs(&e, shared_inputs[i], i);
    emit_step_functions(&e, plans[i], i);
  }
  emit_eval(&e, *eval);
  emit_apply(&e, *recon, "reconstruct", graph->reconstruction_node, "The reconstruction of each sample, in inference mode");
  emit_apply(&e, *code, "encode", graph->code_node, "The code of each sample, in inference mode");
  emit_apply(&e, *corrupt, "corrupt", graph->corrupt_node,
             "The corrupted input, in training mode: what the model is fed while it learns");
  emit_layer_output(&e, *layer_out);
  emit_dispatchers(&e);
  emit_tables(&e);
  emit_blank(&e);
  emit_line(&e, "static const aert_kernel kernels[] = {");
  for (int k = 0; k < registry.n; k++)
    emit_line(&e, "  {\"%s\", %d, %.0f, %.0f, %d},", registry.name[k], registry.line[k], registry.flops_per_sample[k],
              registry.flops_per_call[k], registry.is_gemm[k]);
  if (registry.n == 0) emit_line(&e, "  {\"none\", 0, 0, 0, 0},");
  emit_line(&e, "};");
  emit_description(&e);
  emit_model(&e, *layer_out != NULL);
  registry_free(&registry);
  for (int v = 0; v < n_views; v++) free((char *)views[v].name);
  free(views);
  for (int p = 0; p < n_plans; p++) function_plan_free(plans[p]);
  free(plans);
  for (int i = 0; i < graph->n_steps; i++) function_plan_free(shared_inputs[i]);
  free(shared_inputs);
  share_plan_free(&share);
  free(used);
  bool ok = fits && !ferror(out);
  if (options->line_directives) {
    ok &= fclose(out) == 0;
    ok &= write_with_line_directives(final_out, whole, whole_size, options->c_name ? options->c_name : "model.c");
    free(whole);
  }
  return ok;
}
