// graph.c — the graph IR: nodes in topological order (a node's inputs always
// have smaller ids), parameters in one buffer, shapes checked on insertion.
#include <stdlib.h>
#include <string.h>

#include "aec.h"

static void *grow(void *items, int *cap, int need, size_t item_size) {
  if (need <= *cap) return items;
  int new_cap = *cap ? *cap * 2 : 16;
  while (new_cap < need) new_cap *= 2;
  items = realloc(items, (size_t)new_cap * item_size);
  if (!items) {
    fprintf(stderr, "aec: out of memory\n");
    exit(1);
  }
  *cap = new_cap;
  return items;
}

Graph *graph_new(void) {
  Graph *graph = calloc(1, sizeof *graph);
  graph->input_node = graph->code_node = graph->reconstruction_node = -1;
  graph->corrupt_node = graph->first_kernel_param = -1;
  return graph;
}

void graph_free(Graph *graph) {
  if (!graph) return;
  for (int i = 0; i < graph->n_nodes; i++) free(graph->nodes[i].name);
  for (int i = 0; i < graph->n_params; i++) free(graph->params[i].name);
  for (int i = 0; i < graph->n_layers; i++) free(graph->layers[i].name), free(graph->layers[i].description);
  for (int i = 0; i < graph->n_nets; i++) free(graph->nets[i].name), free(graph->nets[i].param_ids);
  for (int i = 0; i < graph->n_losses; i++) free(graph->losses[i].name);
  for (int i = 0; i < graph->n_steps; i++) {
    Step *step = &graph->steps[i];
    free(step->loss_name), free(step->nets), free(step->nets_text), free(step->params), free(step->grad_nodes);
  }
  free(graph->nodes), free(graph->params), free(graph->layers), free(graph->nets);
  free(graph->losses), free(graph->steps);
  free(graph->train.data), free(graph->train.test), free(graph->input_name), free(graph->eval_losses);
  free(graph);
}

Node *graph_node(Graph *graph, int id) { return &graph->nodes[id]; }

bool shape_is_scalar(Shape shape) { return !shape.batched && shape.rank == 0; }

size_t shape_size(Shape shape) {
  size_t size = 1;
  for (int i = 0; i < shape.rank; i++) size *= (size_t)shape.dims[i];
  return size;
}

void shape_format(Shape shape, char *out, size_t size) {
  size_t used = (size_t)snprintf(out, size, "[");
  for (int i = 0; i < shape.rank && used < size; i++)
    used += (size_t)snprintf(out + used, size - used, i ? ", %d" : "%d", shape.dims[i]);
  if (used < size) snprintf(out + used, size - used, "]");
}

static bool same_node(const Node *a, OpKind op, const int *inputs, int n_inputs, const double *attrs) {
  if (a->op != op || a->n_inputs != n_inputs || memcmp(a->attr, attrs, sizeof a->attr) != 0) return false;
  for (int i = 0; i < n_inputs; i++)
    if (a->inputs[i] != inputs[i]) return false;
  return true;
}

static int add_node(Graph *graph, OpKind op, const int *inputs, int n_inputs, const double *attrs, Loc loc) {
  static const double no_attrs[MAX_ATTRS];
  if (!attrs) attrs = no_attrs;
  for (int i = 0; i < n_inputs; i++)
    if (inputs[i] < 0) return -1;  // an input already failed and was reported
  const OpInfo *info = op_info(op);
  if (info->pure) {
    for (int id = graph->n_nodes - 1; id >= 0; id--)
      if (same_node(&graph->nodes[id], op, inputs, n_inputs, attrs)) return id;
  }
  graph->nodes = grow(graph->nodes, &graph->cap_nodes, graph->n_nodes + 1, sizeof(Node));
  Node *node = &graph->nodes[graph->n_nodes];
  memset(node, 0, sizeof *node);
  node->id = graph->n_nodes;
  node->op = op;
  node->n_inputs = n_inputs;
  memcpy(node->inputs, inputs, (size_t)n_inputs * sizeof(int));
  memcpy(node->attr, attrs, sizeof node->attr);
  node->loc = loc;
  node->param_index = -1;
  node->rng_node = info->random ? node->id : -1;
  node->step = -1;
  if (info->shape && !info->shape(graph, node, &node->shape)) return -1;
  graph->n_nodes++;
  graph_set_name(graph, node->id, info->name);
  return node->id;
}

int graph_add(Graph *graph, OpKind op, const int *inputs, int n_inputs, Loc loc) {
  return add_node(graph, op, inputs, n_inputs, NULL, loc);
}

int graph_add_attr(Graph *graph, OpKind op, const int *inputs, int n_inputs, const double *attrs, Loc loc) {
  return add_node(graph, op, inputs, n_inputs, attrs, loc);
}

int graph_add_constant(Graph *graph, double value, Loc loc) {
  return add_node(graph, OP_CONSTANT, NULL, 0, (double[MAX_ATTRS]){value}, loc);
}

int graph_add_param(Graph *graph, const char *name, int net, Shape shape, bool is_kernel, int fan_in,
                    int fan_out, Loc loc) {
  int id = add_node(graph, OP_PARAM, NULL, 0, NULL, loc);
  Node *node = &graph->nodes[id];
  node->shape = shape;
  node->param_index = graph->n_params;
  graph->params = grow(graph->params, &graph->cap_params, graph->n_params + 1, sizeof(Param));
  Param *param = &graph->params[graph->n_params++];
  *param = (Param){.name = strdup(name), .node = id, .net = net, .shape = shape,
                   .offset = graph->n_param_elems, .size = shape_size(shape),
                   .is_kernel = is_kernel, .fan_in = fan_in, .fan_out = fan_out};
  graph->n_param_elems += param->size;
  char base[256];
  snprintf(base, sizeof base, "%s", name);
  for (char *c = base; *c; c++)
    if (*c == '.') *c = '_';
  graph_set_name(graph, id, base);
  Net *owner = &graph->nets[net];
  owner->param_ids = realloc(owner->param_ids, (size_t)(owner->n_params + 1) * sizeof(int));
  owner->param_ids[owner->n_params++] = param - graph->params;
  return id;
}

// Names the generated C uses itself, which a node's buffer must not shadow.
static const char *const reserved_names[] = {
    "n", "input", "ctx", "arena", "cap", "losses", "out", "a", "b", "c", "i", "j", "k", "m", "v", "t", "lr", "sum",
    "count", "velocity", "real", "model", "params", "layers", "steps", "loss_names", "adam", "sgd", "main",
    "eval_losses", "encode", "reconstruct", "corrupt", "loss_and_grad", "apply_update", "auto", "break", "case", "char",
    "const", "continue", "default", "do", "double", "else", "enum", "extern", "float", "for", "goto", "if",
    "inline", "int", "long", "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct",
    "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "exp", "log", "tanh", "fabs", "fmax",
    "pow", "sqrt", "log1p", "memcpy", "memset", NULL};

static bool name_taken(const Graph *graph, const char *name, int except) {
  for (int i = 0; reserved_names[i]; i++)
    if (strcmp(reserved_names[i], name) == 0) return true;
  for (int i = 0; i < graph->n_nodes; i++)
    if (i != except && graph->nodes[i].name && strcmp(graph->nodes[i].name, name) == 0) return true;
  return false;
}

void graph_set_name(Graph *graph, int node, const char *base) {
  char name[300];
  snprintf(name, sizeof name, "%s", base);
  for (int suffix = 2; name_taken(graph, name, node); suffix++) snprintf(name, sizeof name, "%s_%d", base, suffix);
  free(graph->nodes[node].name);
  graph->nodes[node].name = strdup(name);
}
