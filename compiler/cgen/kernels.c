// kernels.c — the kernels of a program: one static function per distinct
// fusion group. Single nodes of elementwise and reduction ops, chains of
// elementwise ops and a loss with its gradient are written here from the
// ops' expression templates; products, convolutions and pooling by their
// families in ops/.
#define _GNU_SOURCE  // asprintf
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgen.h"

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
  // simd: each thread's share starts at a whole vector, so how the elements
  // split between threads does not move any of them between the vector and
  // the scalar forms of a function (libmvec's expf and the scalar one differ).
  emit_line(e, "#pragma omp parallel for simd schedule(simd : static) if (count >= 65536)");
  emit_format(e, "  for (size_t i = 0; i < count; i++) out[i] = ");
  expand_template(e, node, info->expr, "i", "(real)count", node->shape.batched ? "(real)n" : "1");
  emit_format(e, ";\n}\n");
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
  emit_format(e, "  for (size_t i = 0; i < count; i++) sum += ");
  expand_template(e, node, info->expr, "i", "(real)count", batched ? "(real)n" : "1");
  emit_format(e, ";\n");
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

// Writes `const real vK = ...;` for members from..to-1 at `index`.
static void emit_member_chain(Emitter *e, const Group *group, int from, int to, const int *inputs, int n_inputs,
                              const char *index, const char *indent) {
  const Graph *g = e->graph;
  for (int m = from; m < to; m++) {
    const Node *node = &g->nodes[group->members[m]];
    char operands[MAX_INPUTS][64];
    member_operands(g, group, m, inputs, n_inputs, index, operands);
    emit_format(e, "%sconst real v%d = ", indent, m);
    expand_with(e, node, op_info(node->op)->expr, operands, index, "(real)count",
                node->shape.batched ? "(real)n" : "1");
    emit_format(e, ";  // %s\n", op_name(node->op));
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
    snprintf(needle, sizeof needle, "%s[", group_param_name(i));
    if (!strstr(body, needle)) emit_line(e, "  (void)%s;  // gives a shape only", group_param_name(i));
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
  Capture *capture = emit_capture_begin(e);
  emit_line(e, "#pragma omp parallel for simd schedule(simd : static) if (count >= 65536)");
  emit_line(e, "  for (size_t i = 0; i < count; i++) {");
  emit_member_chain(e, group, 0, group->n_members, inputs, n_inputs, "i", "    ");
  emit_line(e, "    out[i] = v%d;", group->n_members - 1);
  emit_line(e, "  }");
  char *body = emit_capture_end(e, capture, NULL);
  void_unused_inputs(e, n_inputs, body);
  emit_text(e, body);
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
  emit_format(e, "        terms[t] = ");
  bool batched = g->nodes[loss->inputs[0]].shape.batched;
  expand_with(e, loss, op_info(loss->op)->expr, operands, "i", "(real)count", batched ? "(real)n" : "1");
  emit_format(e, ";\n");
  member_operands(g, group, 1, inputs, n_inputs, "i", operands);
  emit_format(e, "        out[i] = ");
  expand_with(e, grad, op_info(grad->op)->expr, operands, "i", "(real)count", batched ? "(real)n" : "1");
  emit_format(e, ";\n");
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


// A kernel's text with `static void NAME(` made `AEC_SHARED void NAME(`, and
// its prototype; false (text untouched) where the text has no such line.
static bool share_kernel(char **text, const char *name, char **prototype) {
  char head[600];
  snprintf(head, sizeof head, "static void %s(", name);
  char *at = strstr(*text, head), *end = at ? strstr(at, ") {\n") : NULL;
  if (!at || (at != *text && at[-1] != '\n') || !end) return false;
  char *shared = NULL, *declared = NULL;
  if (asprintf(&shared, "%.*sAEC_SHARED %s", (int)(at - *text), *text, at + strlen("static ")) < 0) return false;
  if (asprintf(&declared, "AEC_SHARED %.*s);", (int)(end - at - strlen("static ")), at + strlen("static ")) < 0) {
    free(shared);
    return false;
  }
  free(*text);
  *text = shared, *prototype = declared;
  return true;
}

// Writes every kernel of the program once, in the order they first run,
// each with its note (notes.c) above it. With `split` (a program, not aec
// --lib's library), the kernels that first run, half the kernels' text,
// are the first half of the file under AEC_PART, the rest of the file the
// second: aec compiles both at once, one a core, and links them
// (compiler/main.c); without AEC_PART the file is one program as before.
// The first half's kernels lose `static` (AEC_SHARED) there, so that the
// second half's functions can call them. The caller ends the second half.
void emit_kernels(Emitter *e, const ProgramPlan *pp, bool split) {
  const Graph *g = e->graph;
  char **texts = calloc((size_t)pp->n_kernels + 1, sizeof *texts);
  size_t total = 0;
  for (int k = 0; k < pp->n_kernels; k++) {
    const KernelPlan *kernel = &pp->kernels[k];
    const Group *group = kernel->group;
    e->kernel_name = kernel->name;
    // The kernel goes to a buffer: its note goes above it (and aec --line's directives in it).
    Capture *capture = emit_capture_begin(e);
    switch (group->kind) {
    case GROUP_SINGLE: emit_kernel(e, &g->nodes[group->members[0]]); break;
    case GROUP_GEMM:
    case GROUP_GEMM_LOSS: emit_gemm_group(e, kernel->name, group); break;
    case GROUP_LOSS: emit_loss_group(e, kernel->name, group); break;
    case GROUP_ELEMENTWISE: emit_elementwise_group(e, kernel->name, group); break;
    case GROUP_CONV:  // the leader's row says who writes these (OpInfo.emit_group)
    case GROUP_UNPOOL_GRADIENT: op_info(g->nodes[group->members[0]].op)->emit_group(e, kernel->name, group); break;
    }
    texts[k] = emit_capture_end(e, capture, NULL);
    total += strlen(texts[k]);
    e->kernel_name = NULL;
  }
  // The first half: the kernels up to half their text (the second half also
  // has the step functions, which take less of GCC's time than their text).
  int first = 0;
  char **prototypes = calloc((size_t)pp->n_kernels + 1, sizeof *prototypes);
  for (size_t text = 0; split && first < pp->n_kernels && (text + strlen(texts[first])) * 2 <= total; first++) {
    text += strlen(texts[first]);
    if (!share_kernel(&texts[first], pp->kernels[first].name, &prototypes[first])) break;
  }
  if (split) {
    emit_line(e, "// aec builds the program from this file in two halves at once, one a core, and links them:");
    emit_line(e, "// cc -DAEC_PART=1 -c (the kernels that first run) and cc -DAEC_PART=2 -c (the rest). Without");
    emit_line(e, "// AEC_PART the file is the whole program, every function static.");
    emit_line(e, "#ifdef AEC_PART");
    emit_line(e, "#define AEC_SHARED  // a kernel of the first half, which the second half calls");
    for (int k = 0; k < first; k++) emit_line(e, "%s", prototypes[k]);
    emit_line(e, "#else");
    emit_line(e, "#define AEC_SHARED static");
    emit_line(e, "#endif");
    emit_line(e, "#if !defined(AEC_PART) || AEC_PART == 1");
  }
  for (int k = 0; k <= pp->n_kernels; k++) {  // the second half opens before kernel `first`, or after the last
    if (split && k == first) {
      if (k < pp->n_kernels) emit_blank(e);
      emit_line(e, "#endif  // AEC_PART == 1");
      emit_line(e, "#if !defined(AEC_PART) || AEC_PART == 2");
    }
    if (k < pp->n_kernels) emit_kernel_with_note(e, pp->kernels[k].name, pp->kernels[k].group, texts[k]);
  }
  for (int k = 0; k < pp->n_kernels; k++) free(texts[k]), free(prototypes[k]);
  free(texts), free(prototypes);
}
