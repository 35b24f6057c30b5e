// notes.c — the comments of the generated file that explain it: each
// function's table of buffers (where every value lives and which kernel
// computes it), the note above each kernel (its nodes, .ae places, FLOPs),
// and what the steps of a batch share. Under aec --line, #line directives
// point each kernel's code at its .ae line.
#include <stdlib.h>
#include <string.h>

#include "cgen.h"

// Where a value of the function lives, as the generated C spells it.
void storage_of(const Graph *g, const FunctionPlan *fn, int id, char *buf, size_t size) {
  const Node *node = &g->nodes[id];
  char upper[320];
  if (node->op == OP_INPUT) {
    snprintf(buf, size, "input");
  } else if (node->op == OP_PARAM) {
    upper_name(node->name, upper, sizeof upper);
    snprintf(buf, size, "params + %s_OFFSET", upper);
  } else if (node->op == OP_CONSTANT) {
    snprintf(buf, size, "static constant");
  } else if (op_info(node->op)->schedule) {
    snprintf(buf, size, "set at the start (schedule)");
  } else if (fn->outside && fn->outside[id] && gradient_param(g, fn->step, id) >= 0) {
    upper_name(g->nodes[g->params[gradient_param(g, fn->step, id)].node].name, upper, sizeof upper);
    snprintf(buf, size, "grads + %s_OFFSET", upper);
  } else if (fn->outside && fn->outside[id]) {
    snprintf(buf, size, "shared slot (pass_share.c)");
  } else if (fn->memory.has_slot[id]) {
    if (node->shape.batched) snprintf(buf, size, "arena + cap * %zu", fn->memory.offset[id]);
    else snprintf(buf, size, "arena + cap * ARENA_PER_SAMPLE + %zu", fn->memory.offset[id]);
  } else {
    snprintf(buf, size, "not stored (fused)");
  }
}

enum { COLUMNS = 7 };

void emit_buffer_table(Emitter *e, const FunctionPlan *fn) {
  const Graph *g = e->graph;
  int n = fn->schedule.n_nodes;
  char *(*cells)[COLUMNS] = calloc((size_t)n + 1, sizeof *cells);
  int width[COLUMNS] = {0};
  static const char *const titles[COLUMNS] = {"value", "shape", "storage", "computed by kernel", "layer", ".ae", "pass"};
  for (int c = 0; c < COLUMNS; c++) cells[0][c] = strdup(titles[c]);
  for (int i = 0; i < n; i++) {
    int id = fn->schedule.nodes[i];
    const Node *node = &g->nodes[id];
    char **row = cells[i + 1];
    char buf[512];
    row[0] = strdup(node->name);
    shape_format_batched(node->shape, buf, sizeof buf);
    row[1] = strdup(buf);
    storage_of(g, fn, id, buf, sizeof buf);
    row[2] = strdup(buf);
    int group = fn->fusion.group_of[id];
    if (op_info(g->nodes[id].op)->kernel == KERNEL_NONE || group < 0) snprintf(buf, sizeof buf, "-");
    else snprintf(buf, sizeof buf, "%s", fn->kernel[group]);
    row[3] = strdup(buf);
    const Layer *layer = node_layer(g, id);
    row[4] = strdup(layer ? layer->name : "-");
    if (node->loc.source) snprintf(buf, sizeof buf, "%d:%d", node->loc.line, node->loc.col);
    else snprintf(buf, sizeof buf, "-");
    row[5] = strdup(buf);
    row[6] = strdup(node->is_backward ? "backward" : op_info(g->nodes[id].op)->kernel == KERNEL_NONE ? "-" : "forward");
  }
  for (int r = 0; r <= n; r++)
    for (int c = 0; c < COLUMNS; c++) {
      int w = (int)strlen(cells[r][c]);
      if (w > width[c]) width[c] = w;
    }
  emit_format(e, "//\n// %s", fn->name);
  if (fn->step >= 0)
    emit_format(e, " (step %d: minimize %s over %s)", fn->step, g->steps[fn->step].loss_name, g->steps[fn->step].nets_text);
  emit_format(e, ": %d values, %d kernels, arena %zu per sample + %zu fixed elements\n", n, fn->fusion.n_groups,
          fn->memory.per_sample, fn->memory.fixed);
  for (int r = 0; r <= n; r++) {
    emit_format(e, "//  ");
    for (int c = 0; c < COLUMNS; c++) {
      if (c + 1 < COLUMNS) emit_format(e, " %-*s", width[c], cells[r][c]);
      else emit_format(e, " %s\n", cells[r][c]);
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
  char where[1300], shape[80];
  int backward = -1;  // a backward member's step
  bool forward = false;
  for (int m = 0; m < group->n_members; m++) {
    const Node *node = &g->nodes[group->members[m]];
    if (node->is_backward) backward = node->step;
    else forward = true;
  }
  emit_format(e, "// ==== %s: %s%s", kernel, forward ? "forward" : "", forward && backward >= 0 ? " + " : "");
  if (backward >= 0) emit_format(e, "backward (step %d)", backward);
  if (lead->loc.source) {
    source_place(lead->loc, where, sizeof where);
    emit_format(e, ", %s:%d", where, lead->loc.col);
  }
  emit_format(e, "\n");
  double per_sample = 0, per_call = 0;
  for (int m = 0; m < group->n_members; m++) {
    const Node *node = &g->nodes[group->members[m]];
    shape_format_batched(node->shape, shape, sizeof shape);
    source_place(node->loc, where, sizeof where);
    if (node->loc.source) snprintf(where + strlen(where), sizeof where - strlen(where), ":%d", node->loc.col);
    else snprintf(where, sizeof where, "-");
    const Layer *layer = node_layer(g, node->id);
    emit_format(e, "// %s %%%d %s = %s [%s", m ? "      " : "nodes:", node->id, node->name, op_name(node->op), where);
    if (layer) emit_format(e, ", %s", layer->name);
    emit_format(e, "] %s%s\n", shape, group_materializes(group, node->id) ? ", stored" : "");
    double f = op_info(node->op)->flops ? op_info(node->op)->flops(g, node) : 0;
    if (node_uses_batch(g, node)) per_sample += f;
    else per_call += f;
  }
  emit_format(e, "// FLOPs: %.0f per sample", per_sample);
  if (per_call > 0) emit_format(e, " + %.0f per call", per_call);
  emit_format(e, "\n");
}

void emit_kernel_with_note(Emitter *e, const char *kernel, const Group *group, const char *text) {
  const Loc loc = e->graph->nodes[group->members[0]].loc;
  emit_blank(e);
  emit_kernel_note(e, kernel, group);
  if (*text == '\n') text++;
  if (!e->options->line_directives || !loc.source) {
    emit_text(e, text);
    return;
  }
  // Each line of the kernel's code (from its `static` or `AEC_SHARED` line on) is preceded by
  // a #line naming its .ae line, so every statement maps there; the marker
  // after it becomes the directive back to the .c file.
  bool in_code = false;
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    size_t length = nl ? (size_t)(nl - p) : strlen(p);
    if (!in_code && (strncmp(p, "static ", 7) == 0 || strncmp(p, "AEC_SHARED ", 11) == 0)) in_code = true;
    if (in_code && length > 0) {
      emit_line_directive(e, loc.line, loc.source->path);
    }
    emit_format(e, "%.*s\n", (int)length, p);
    p += length + (nl ? 1 : 0);
  }
  emit_line(e, "%s", LINE_RESTORE_MARKER);
}

// A list of node names in a comment, wrapped.
static void name_list(Emitter *e, const char *head, const bool *which, const int *by, int by_value) {
  const Graph *g = e->graph;
  int count = 0;
  for (int id = 0; id < g->n_nodes; id++) count += which[id] && (!by || by[id] == by_value);
  if (!count) return;
  emit_format(e, "//   %s", head);
  int column = 5 + (int)strlen(head), shown = 0;
  for (int id = 0; id < g->n_nodes; id++) {
    if (!which[id] || (by && by[id] != by_value)) continue;
    int length = (int)strlen(g->nodes[id].name) + 2;
    if (column + length > 110) {
      emit_format(e, "\n//     ");
      column = 7;
    }
    emit_format(e, " %s%s", g->nodes[id].name, ++shown < count ? "," : "");
    column += length;
  }
  emit_blank(e);
}

void emit_share_comment(Emitter *e, const SharePlan *plan, int s) {
  if (!plan || plan->n_steps < 2 || s >= plan->n_steps) return;
  const Graph *g = e->graph;
  bool any_given = false, any_stored = false, any_stale = false;
  bool *stale = calloc((size_t)g->n_nodes + 1, sizeof(bool));
  for (int id = 0; id < g->n_nodes; id++) {
    any_given |= plan->given[s][id];
    any_stored |= plan->stored[s][id];
    stale[id] = plan->stale_by[s][id] >= 0;
    any_stale |= stale[id];
  }
  emit_line(e, "// Values shared between the steps of a batch (computed once where that is exact):");
  if (!any_given && !any_stale) emit_line(e, "//   none is read from an earlier step: every value here is computed fresh.");
  for (int from = 0; from < s; from++) {
    char head[200];
    snprintf(head, sizeof head, "read from step %d (%s), unchanged since:", from, g->steps[from].loss_name);
    name_list(e, head, plan->given[s], plan->from[s], from);
  }
  for (int by = 0; by < s; by++) {
    char head[240];
    snprintf(head, sizeof head, "computed again, as step %d (%s) updated %s after an earlier step computed it:", by,
             g->steps[by].loss_name, g->steps[by].nets_text);
    name_list(e, head, stale, plan->stale_by[s], by);
  }
  if (any_stored) name_list(e, "left in the arena for later steps:", plan->stored[s], NULL, 0);
  free(stale);
}
