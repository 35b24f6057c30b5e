// inspect.c — what a person reads to see what aec did with a model:
//   aec --dump-ir   the graph after each pass, one node a line (dump_node), then
//                   each generated function's schedule, fusion groups, kernels
//                   and arena offsets (dump_function);
//   aec --dot       the same functions as Graphviz: forward nodes blue,
//                   backward nodes orange, one box (cluster) per kernel;
//   aec --line      #line directives around each kernel (write_with_line_directives);
// and, in every generated file, each function's buffer table (emit_buffer_table)
// and the note above each kernel (emit_kernel_note). Everything here is
// deterministic: the same model and options give the same text.
#define _GNU_SOURCE
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "aec.h"

const Layer *node_layer(const Graph *g, int id) {
  const Node *node = &g->nodes[id];
  if (!node->loc.source) return NULL;
  for (int i = 0; i < g->n_layers; i++) {
    const Layer *l = &g->layers[i];
    if (l->loc.source == node->loc.source && l->loc.line == node->loc.line && l->loc.col == node->loc.col) return l;
  }
  return NULL;
}

static void format_loc(Loc loc, bool base_only, char *buf, size_t size) {
  if (!loc.source) {
    snprintf(buf, size, "-");
    return;
  }
  const char *path = loc.source->path;
  if (base_only && strrchr(path, '/')) path = strrchr(path, '/') + 1;
  snprintf(buf, size, "%s:%d:%d", path, loc.line, loc.col);
}

static void format_shape(Shape shape, char *buf, size_t size) {
  char s[64];
  shape_format(shape, s, sizeof s);
  snprintf(buf, size, "%s%s", s, shape.batched ? "xN" : "");
}

void dump_node(FILE *out, const Graph *g, int id) {
  const Node *n = &g->nodes[id];
  char shape[80], where[400];
  format_shape(n->shape, shape, sizeof shape);
  format_loc(n->loc, false, where, sizeof where);
  fprintf(out, "%%%d = %s", id, op_info(n->op)->name);
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
static void upper_name(const char *name, char *buf, size_t size) {
  size_t i = 0;
  for (; name[i] && i + 1 < size; i++) buf[i] = (char)toupper((unsigned char)name[i]);
  buf[i] = '\0';
}

// The param whose gradient `node` is in `step`, or -1.
static int gradient_of(const Graph *g, int step, int node) {
  if (step < 0) return -1;
  const Step *s = &g->steps[step];
  for (int i = 0; i < s->n_params; i++)
    if (s->grad_nodes[i] == node) return s->params[i];
  return -1;
}

static bool is_storage_only(const Graph *g, int id) { return op_info(g->nodes[id].op)->kernel == KERNEL_NONE; }

// Where a value of the function lives, as the generated C spells it.
static void storage_of(const Graph *g, const FunctionView *fn, int id, char *buf, size_t size) {
  const Node *node = &g->nodes[id];
  char upper[320];
  if (node->op == OP_INPUT) {
    snprintf(buf, size, "input");
  } else if (node->op == OP_PARAM) {
    upper_name(node->name, upper, sizeof upper);
    snprintf(buf, size, "params + %s_OFFSET", upper);
  } else if (node->op == OP_CONSTANT) {
    snprintf(buf, size, "static constant");
  } else if (fn->outside && fn->outside[id] && gradient_of(g, fn->step, id) >= 0) {
    upper_name(g->nodes[g->params[gradient_of(g, fn->step, id)].node].name, upper, sizeof upper);
    snprintf(buf, size, "grads + %s_OFFSET", upper);
  } else if (fn->outside && fn->outside[id]) {
    snprintf(buf, size, "shared slot (pass_share.c)");
  } else if (fn->memory->has_slot[id]) {
    if (node->shape.batched) snprintf(buf, size, "arena + cap * %zu", fn->memory->offset[id]);
    else snprintf(buf, size, "arena + cap * ARENA_PER_SAMPLE + %zu", fn->memory->offset[id]);
  } else {
    snprintf(buf, size, "not stored (fused)");
  }
}

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

void dump_function(FILE *out, const Graph *g, const FunctionView *fn) {
  const FusionPlan *plan = fn->fusion;
  fprintf(out, "== function %s", fn->name);
  if (fn->step >= 0) fprintf(out, " (step %d: minimize %s over %s)", fn->step, g->steps[fn->step].loss_name,
                             g->steps[fn->step].nets_text);
  fprintf(out, ": after scheduling %d nodes, fusion %d kernels, memory planning %zu per sample + %zu fixed elements\n",
          fn->schedule->n_nodes, plan->n_groups, fn->memory->per_sample, fn->memory->fixed);
  char where[400];
  fprintf(out, "-- storage only (no kernel)\n");
  for (int i = 0; i < fn->schedule->n_nodes; i++) {
    int id = fn->schedule->nodes[i];
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
  format_shape(n->shape, shape, sizeof shape);
  format_loc(n->loc, true, where, sizeof where);
  fprintf(out, "%sf%d_n%d [label=\"%%%d %s\\n", indent, f, id, id, op_info(n->op)->name);
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

void write_dot(FILE *out, const Graph *g, const FunctionView *fns, int n_fns) {
  fprintf(out, "// aec --dot: forward nodes blue, backward nodes orange (dashed); each box drawn\n");
  fprintf(out, "// around nodes is one kernel of the generated C, labelled with its function name.\n");
  fprintf(out, "digraph aec {\n");
  fprintf(out, "  rankdir=TB;\n  newrank=true;\n");
  fprintf(out, "  node [fontname=\"Helvetica\", fontsize=10];\n  edge [color=\"#555555\"];\n");
  fprintf(out, "  graph [fontname=\"Helvetica\", fontsize=11];\n");
  for (int f = 0; f < n_fns; f++) {
    const FunctionView *fn = &fns[f];
    fprintf(out, "  subgraph cluster_f%d {\n", f);
    fprintf(out, "    label=\"%s", fn->name);
    if (fn->step >= 0) {
      fprintf(out, ": step %d, minimize ", fn->step);
      dot_escape(out, g->steps[fn->step].loss_name);
    }
    fprintf(out, "\";\n    style=solid; color=\"#999999\";\n");
    for (int i = 0; i < fn->schedule->n_nodes; i++)
      if (is_storage_only(g, fn->schedule->nodes[i])) dot_node(out, g, f, fn->schedule->nodes[i], "    ");
    for (int gi = 0; gi < fn->fusion->n_groups; gi++) {
      const Group *group = &fn->fusion->groups[gi];
      bool backward = g->nodes[group->members[0]].is_backward;
      fprintf(out, "    subgraph cluster_f%d_g%d {\n", f, gi);
      fprintf(out, "      label=\"%s\"; style=\"rounded,filled\"; fillcolor=\"%s\"; color=\"%s\";\n", fn->kernel[gi],
              backward ? "#fdf0e6" : "#eaf3fa", backward ? "#d35400" : "#2c7fb8");
      for (int m = 0; m < group->n_members; m++) dot_node(out, g, f, group->members[m], "      ");
      fprintf(out, "    }\n");
    }
    for (int i = 0; i < fn->schedule->n_nodes; i++) {
      const Node *n = &g->nodes[fn->schedule->nodes[i]];
      for (int k = 0; k < n->n_inputs; k++)
        fprintf(out, "    f%d_n%d -> f%d_n%d;\n", f, n->inputs[k], f, n->id);
    }
    fprintf(out, "  }\n");
  }
  fprintf(out, "}\n");
}

// ------------------------------------------------- the generated header
enum { COLUMNS = 7 };

void emit_buffer_table(Emitter *e, const FunctionView *fn) {
  const Graph *g = e->graph;
  int n = fn->schedule->n_nodes;
  char *(*cells)[COLUMNS] = calloc((size_t)n + 1, sizeof *cells);
  int width[COLUMNS] = {0};
  static const char *const titles[COLUMNS] = {"value", "shape", "storage", "computed by kernel", "layer", ".ae", "pass"};
  for (int c = 0; c < COLUMNS; c++) cells[0][c] = strdup(titles[c]);
  for (int i = 0; i < n; i++) {
    int id = fn->schedule->nodes[i];
    const Node *node = &g->nodes[id];
    char **row = cells[i + 1];
    char buf[512];
    row[0] = strdup(node->name);
    format_shape(node->shape, buf, sizeof buf);
    row[1] = strdup(buf);
    storage_of(g, fn, id, buf, sizeof buf);
    row[2] = strdup(buf);
    int group = fn->fusion->group_of[id];
    if (is_storage_only(g, id) || group < 0) snprintf(buf, sizeof buf, "-");
    else snprintf(buf, sizeof buf, "%s", fn->kernel[group]);
    row[3] = strdup(buf);
    const Layer *layer = node_layer(g, id);
    row[4] = strdup(layer ? layer->name : "-");
    if (node->loc.source) snprintf(buf, sizeof buf, "%d:%d", node->loc.line, node->loc.col);
    else snprintf(buf, sizeof buf, "-");
    row[5] = strdup(buf);
    row[6] = strdup(node->is_backward ? "backward" : is_storage_only(g, id) ? "-" : "forward");
  }
  for (int r = 0; r <= n; r++)
    for (int c = 0; c < COLUMNS; c++) {
      int w = (int)strlen(cells[r][c]);
      if (w > width[c]) width[c] = w;
    }
  fprintf(e->out, "//\n// %s", fn->name);
  if (fn->step >= 0)
    fprintf(e->out, " (step %d: minimize %s over %s)", fn->step, g->steps[fn->step].loss_name, g->steps[fn->step].nets_text);
  fprintf(e->out, ": %d values, %d kernels, arena %zu per sample + %zu fixed elements\n", n, fn->fusion->n_groups,
          fn->memory->per_sample, fn->memory->fixed);
  for (int r = 0; r <= n; r++) {
    fprintf(e->out, "//  ");
    for (int c = 0; c < COLUMNS; c++) {
      if (c + 1 < COLUMNS) fprintf(e->out, " %-*s", width[c], cells[r][c]);
      else fprintf(e->out, " %s\n", cells[r][c]);
    }
  }
  for (int r = 0; r <= n; r++)
    for (int c = 0; c < COLUMNS; c++) free(cells[r][c]);
  free(cells);
}

// The lines above a kernel: what it computes, from where, and its cost.
void emit_kernel_note(Emitter *e, const char *kernel, const Group *group) {
  const Graph *g = e->graph;
  const Node *lead = &g->nodes[group->members[0]];
  char where[400], shape[80];
  int backward = -1;  // a backward member's step
  bool forward = false;
  for (int m = 0; m < group->n_members; m++) {
    const Node *node = &g->nodes[group->members[m]];
    if (node->is_backward) backward = node->step;
    else forward = true;
  }
  fprintf(e->out, "// ==== %s: %s%s", kernel, forward ? "forward" : "", forward && backward >= 0 ? " + " : "");
  if (backward >= 0) fprintf(e->out, "backward (step %d)", backward);
  if (lead->loc.source) {
    format_loc(lead->loc, true, where, sizeof where);
    fprintf(e->out, ", %s", where);
  }
  fprintf(e->out, "\n");
  double per_sample = 0, per_call = 0;
  for (int m = 0; m < group->n_members; m++) {
    const Node *node = &g->nodes[group->members[m]];
    format_shape(node->shape, shape, sizeof shape);
    format_loc(node->loc, true, where, sizeof where);
    const Layer *layer = node_layer(g, node->id);
    fprintf(e->out, "// %s %%%d %s = %s [%s", m ? "      " : "nodes:", node->id, node->name, op_info(node->op)->name, where);
    if (layer) fprintf(e->out, ", %s", layer->name);
    fprintf(e->out, "] %s%s\n", shape, group_materializes(group, node->id) ? ", stored" : "");
    double f = op_info(node->op)->flops ? op_info(node->op)->flops(g, node) : 0;
    if (node_uses_batch(g, node)) per_sample += f;
    else per_call += f;
  }
  fprintf(e->out, "// FLOPs: %.0f per sample", per_sample);
  if (per_call > 0) fprintf(e->out, " + %.0f per call", per_call);
  fprintf(e->out, "\n");
}

// ---------------------------------------------------------- aec --line
static const char restore_marker[] = "#line 0 \"@aec-restore\"";

bool write_with_line_directives(FILE *out, const char *text, size_t size, const char *c_name) {
  long line = 0;  // lines written so far
  const char *end = text + size;
  for (const char *p = text; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t length = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (length == sizeof restore_marker - 1 && memcmp(p, restore_marker, length) == 0) {
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

void emit_kernel_with_note(Emitter *e, const char *kernel, const Group *group, const char *text) {
  const Loc loc = e->graph->nodes[group->members[0]].loc;
  fputc('\n', e->out);
  emit_kernel_note(e, kernel, group);
  if (*text == '\n') text++;
  if (!e->options->line_directives || !loc.source) {
    fputs(text, e->out);
    return;
  }
  // Each line of the kernel's code (from its `static` line on) is preceded by
  // a #line naming its .ae line, so every statement maps there; the marker
  // after it becomes the directive back to the .c file.
  bool in_code = false;
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    size_t length = nl ? (size_t)(nl - p) : strlen(p);
    if (!in_code && strncmp(p, "static ", 7) == 0) in_code = true;
    if (in_code && length > 0) {
      fprintf(e->out, "#line %d \"", loc.line);
      dot_escape(e->out, loc.source->path);
      fprintf(e->out, "\"\n");
    }
    fwrite(p, 1, length, e->out);
    fputc('\n', e->out);
    p += length + (nl ? 1 : 0);
  }
  fprintf(e->out, "%s\n", restore_marker);
}
