// inspect.c — what a person reads to see what aec did with a model:
//   aec --dump-ir   the graph after each pass, one node a line (dump_node), then
//                   each generated function's schedule, fusion groups, kernels
//                   and arena offsets (dump_function);
//   aec --dot       the same functions as Graphviz: forward nodes blue,
//                   backward nodes orange, one box (cluster) per kernel;
//   aec --line      #line directives pointing back at the .c file
//                   (write_with_line_directives; cgen/notes.c points each
//                   kernel's code at its .ae line).
// It reads the graph and the plans (passes/plan.c) and writes no generated C.
// Everything here is deterministic: the same model and options give the same text.
#define _GNU_SOURCE
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tools.h"

void dump_node(FILE *out, const Graph *g, int id) {
  const Node *n = &g->nodes[id];
  char shape[80], where[400];
  shape_format_batched(n->shape, shape, sizeof shape);
  loc_format(n->loc, false, where, sizeof where);
  fprintf(out, "%%%d = %s", id, op_name(n->op));
  for (int i = 0; i < n->n_inputs; i++) fprintf(out, "%s%%%d", i ? ", " : " ", n->inputs[i]);
  fprintf(out, " : %s  name=%s at=%s", shape, n->name, where);
  const Layer *layer = node_layer(g, id);
  if (layer) fprintf(out, " layer=%s", layer->name);
  if (n->op == OP_PARAM) fprintf(out, " param=%s", g->params[n->param_index].name);
  bool any_attr = false;
  for (int a = 0; a < MAX_ATTRS; a++) any_attr |= n->attr[a] != 0;
  if (any_attr || n->op == OP_CONSTANT) {
    fprintf(out, " attr=");
    for (int a = 0; a < MAX_ATTRS; a++) fprintf(out, "%s%.9g", a ? "," : "", n->attr[a]);
  }
  if (n->rng_node >= 0) fprintf(out, " rng=%%%d", n->rng_node);
  if (n->is_backward) fprintf(out, " backward step=%d", n->step);
  fputc('\n', out);
}

void dump_graph(FILE *out, const Graph *g, const char *after_pass) {
  int backward = 0;
  for (int i = 0; i < g->n_nodes; i++) backward += g->nodes[i].is_backward;
  fprintf(out, "== after %s: %d nodes (%d backward)\n", after_pass, g->n_nodes, backward);
  for (int id = 0; id < g->n_nodes; id++) dump_node(out, g, id);
  fputc('\n', out);
}

// ------------------------------------------------------------ storage
static bool is_storage_only(const Graph *g, int id) { return op_info(g->nodes[id].op)->kernel == KERNEL_NONE; }

static const char *group_kind_name(GroupKind kind) {
  switch (kind) {
  case GROUP_SINGLE: return "single";
  case GROUP_GEMM: return "gemm";
  case GROUP_LOSS: return "loss+gradient";
  case GROUP_ELEMENTWISE: return "elementwise";
  case GROUP_GEMM_LOSS: return "gemm+loss";
  case GROUP_CONV: return "conv";
  case GROUP_UNPOOL_GRADIENT: return "unpool+gradient";
  default: return "other";
  }
}

void dump_function(FILE *out, const Graph *g, const FunctionPlan *fn) {
  const FusionPlan *plan = &fn->fusion;
  fprintf(out, "== function %s", fn->name);
  if (fn->step >= 0) fprintf(out, " (step %d: minimize %s over %s)", fn->step, g->steps[fn->step].loss_name,
                             g->steps[fn->step].nets_text);
  fprintf(out, ": after scheduling %d nodes, fusion %d kernels, memory planning %zu per sample + %zu fixed elements\n",
          fn->schedule.n_nodes, plan->n_groups, fn->memory.per_sample, fn->memory.fixed);
  char where[400];
  fprintf(out, "-- storage only (no kernel)\n");
  for (int i = 0; i < fn->schedule.n_nodes; i++) {
    int id = fn->schedule.nodes[i];
    if (!is_storage_only(g, id)) continue;
    storage_of(g, fn, id, where, sizeof where);
    fprintf(out, "   [%s] ", where);
    dump_node(out, g, id);
  }
  for (int gi = 0; gi < plan->n_groups; gi++) {
    const Group *group = &plan->groups[gi];
    fprintf(out, "-- group %d %s -> kernel %s\n", gi, group_kind_name(group->kind), fn->kernel[gi]);
    for (int m = 0; m < group->n_members; m++) {
      int id = group->members[m];
      storage_of(g, fn, id, where, sizeof where);
      fprintf(out, "   [%s] ", where);
      dump_node(out, g, id);
    }
  }
  fputc('\n', out);
}

// ---------------------------------------------------------------- dot
static void dot_escape(FILE *out, const char *text) {
  for (const char *c = text; *c; c++) {
    if (*c == '"' || *c == '\\') fputc('\\', out);
    fputc(*c, out);
  }
}

static void dot_node(FILE *out, const Graph *g, int f, int id, const char *indent) {
  const Node *n = &g->nodes[id];
  char shape[80], where[400];
  shape_format_batched(n->shape, shape, sizeof shape);
  loc_format(n->loc, true, where, sizeof where);
  fprintf(out, "%sf%d_n%d [label=\"%%%d %s\\n", indent, f, id, id, op_name(n->op));
  dot_escape(out, n->name);
  fprintf(out, "\\n%s  ", shape);
  dot_escape(out, where);
  const Layer *layer = node_layer(g, id);
  if (layer) {
    fprintf(out, "\\n");
    dot_escape(out, layer->name);
  }
  fprintf(out, "\"");
  if (n->op == OP_INPUT) fprintf(out, ", shape=ellipse, style=filled, fillcolor=\"#ffffff\"");
  else if (n->op == OP_PARAM) fprintf(out, ", shape=note, style=filled, fillcolor=\"#e0e0e0\"");
  else if (n->op == OP_CONSTANT) fprintf(out, ", shape=plaintext");
  else if (n->is_backward) fprintf(out, ", shape=box, style=\"filled,dashed\", fillcolor=\"#f8c291\"");
  else fprintf(out, ", shape=box, style=filled, fillcolor=\"#9ecae1\"");
  fprintf(out, "];\n");
}

void write_dot(FILE *out, const Graph *g, FunctionPlan *const *fns, int n_fns) {
  fprintf(out, "// aec --dot: forward nodes blue, backward nodes orange (dashed); each box drawn\n");
  fprintf(out, "// around nodes is one kernel of the generated C, labelled with its function name.\n");
  fprintf(out, "digraph aec {\n");
  fprintf(out, "  rankdir=TB;\n  newrank=true;\n");
  fprintf(out, "  node [fontname=\"Helvetica\", fontsize=10];\n  edge [color=\"#555555\"];\n");
  fprintf(out, "  graph [fontname=\"Helvetica\", fontsize=11];\n");
  for (int f = 0; f < n_fns; f++) {
    const FunctionPlan *fn = fns[f];
    fprintf(out, "  subgraph cluster_f%d {\n", f);
    fprintf(out, "    label=\"%s", fn->name);
    if (fn->step >= 0) {
      fprintf(out, ": step %d, minimize ", fn->step);
      dot_escape(out, g->steps[fn->step].loss_name);
    }
    fprintf(out, "\";\n    style=solid; color=\"#999999\";\n");
    for (int i = 0; i < fn->schedule.n_nodes; i++)
      if (is_storage_only(g, fn->schedule.nodes[i])) dot_node(out, g, f, fn->schedule.nodes[i], "    ");
    for (int gi = 0; gi < fn->fusion.n_groups; gi++) {
      const Group *group = &fn->fusion.groups[gi];
      bool backward = g->nodes[group->members[0]].is_backward;
      fprintf(out, "    subgraph cluster_f%d_g%d {\n", f, gi);
      fprintf(out, "      label=\"%s\"; style=\"rounded,filled\"; fillcolor=\"%s\"; color=\"%s\";\n", fn->kernel[gi],
              backward ? "#fdf0e6" : "#eaf3fa", backward ? "#d35400" : "#2c7fb8");
      for (int m = 0; m < group->n_members; m++) dot_node(out, g, f, group->members[m], "      ");
      fprintf(out, "    }\n");
    }
    for (int i = 0; i < fn->schedule.n_nodes; i++) {
      const Node *n = &g->nodes[fn->schedule.nodes[i]];
      for (int k = 0; k < n->n_inputs; k++)
        fprintf(out, "    f%d_n%d -> f%d_n%d;\n", f, n->inputs[k], f, n->id);
    }
    fprintf(out, "  }\n");
  }
  fprintf(out, "}\n");
}

// ---------------------------------------------------------- aec --line

bool write_with_line_directives(FILE *out, const char *text, size_t size, const char *c_name) {
  long line = 0;  // lines written so far
  const char *end = text + size;
  for (const char *p = text; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t length = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (length == strlen(LINE_RESTORE_MARKER) && memcmp(p, LINE_RESTORE_MARKER, length) == 0) {
      fprintf(out, "#line %ld \"", line + 2);
      dot_escape(out, c_name);
      fprintf(out, "\"\n");
    } else {
      fwrite(p, 1, length, out);
      fputc('\n', out);
    }
    line++;
    p += length + 1;
  }
  return !ferror(out);
}

