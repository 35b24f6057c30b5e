// graph.c — the graph IR: nodes in topological order (a node's inputs always
// have smaller ids), parameters in one buffer, names unique. Shapes are
// checked by ops/build.c, which adds nodes through graph_reserve_node.
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

void *grow_for(void *items, int n, size_t item_size) {
  if (items && (n < 16 || (n & (n - 1)) != 0)) return items;  // room already
  size_t cap = n < 16 ? 16 : 2 * (size_t)n;
  items = realloc(items, cap * item_size);
  if (!items) fputs("aec: out of memory\n", stderr), exit(1);
  return items;
}

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

// ------------------------------------------------------------ name index
// Open addressing over the nodes' names (the strings the nodes own), and
// per base name the next suffix to try: every suffix below it is taken.
typedef struct NameEntry {
  char *base;  // owned
  int next;    // 1: try the bare base first
} NameEntry;

typedef struct NameIndex {
  const char **names;  // NULL: empty; TOMBSTONE: removed
  size_t cap, used;    // used counts tombstones too
  NameEntry *hints;    // open addressing on base
  size_t hint_cap, n_hints;
} NameIndex;

// Open addressing over node ids (-1: empty), hashed on what makes two pure
// nodes the same computation; at most half full (graph_find_pure).
typedef struct PureIndex {
  int *ids;
  size_t cap, n;
} PureIndex;

static const char tombstone[1];
#define TOMBSTONE ((const char *)tombstone)

static uint64_t name_hash(const char *s) { return hash_bytes(s, strlen(s), HASH_SEED); }

// The slot holding `name`, or NULL's slot where it would go (never a tombstone's).
static const char **name_slot(const NameIndex *index, const char *name) {
  static const char *empty = NULL;
  if (!index || !index->cap) return &empty;
  size_t mask = index->cap - 1;
  for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
    const char *s = index->names[i];
    if (!s) return &index->names[i];
    if (s != TOMBSTONE && strcmp(s, name) == 0) return &index->names[i];
  }
}

static void name_insert(NameIndex *index, const char *name) {
  if ((index->used + 1) * 2 > index->cap) {
    NameIndex bigger = *index;
    bigger.cap = index->cap ? index->cap * 2 : 64;
    bigger.names = calloc(bigger.cap, sizeof *bigger.names);
    bigger.used = 0;
    if (!bigger.names) fputs("aec: out of memory\n", stderr), exit(1);
    for (size_t i = 0; i < index->cap; i++)
      if (index->names[i] && index->names[i] != TOMBSTONE) *name_slot(&bigger, index->names[i]) = index->names[i], bigger.used++;
    free(index->names);
    *index = bigger;
  }
  const char **slot = name_slot(index, name);
  if (!*slot) {  // a new name: into the first tombstone on its path, if any
    size_t mask = index->cap - 1;
    for (size_t i = name_hash(name) & mask; &index->names[i] != slot; i = (i + 1) & mask)
      if (index->names[i] == TOMBSTONE) {
        slot = &index->names[i];
        break;
      }
    if (!*slot) index->used++;  // (else the tombstone was counted)
  }
  *slot = name;
}

// The hint entry of `base`, created (next = 1) when missing.
static NameEntry *name_hint(NameIndex *index, const char *base) {
  if ((index->n_hints + 1) * 2 > index->hint_cap) {
    size_t cap = index->hint_cap ? index->hint_cap * 2 : 64;
    NameEntry *hints = calloc(cap, sizeof *hints);
    if (!hints) fputs("aec: out of memory\n", stderr), exit(1);
    for (size_t i = 0; i < index->hint_cap; i++) {
      if (!index->hints[i].base) continue;
      size_t j = name_hash(index->hints[i].base) & (cap - 1);
      while (hints[j].base) j = (j + 1) & (cap - 1);
      hints[j] = index->hints[i];
    }
    free(index->hints);
    index->hints = hints, index->hint_cap = cap;
  }
  size_t mask = index->hint_cap - 1, i = name_hash(base) & mask;
  for (; index->hints[i].base; i = (i + 1) & mask)
    if (strcmp(index->hints[i].base, base) == 0) return &index->hints[i];
  index->hints[i] = (NameEntry){.base = strdup(base), .next = 1};
  index->n_hints++;
  return &index->hints[i];
}

static NameEntry *name_find_hint(const NameIndex *index, const char *base, size_t length) {
  if (!index->hint_cap) return NULL;
  char key[300];
  snprintf(key, sizeof key, "%.*s", (int)length, base);
  size_t mask = index->hint_cap - 1;
  for (size_t i = name_hash(key) & mask; index->hints[i].base; i = (i + 1) & mask)
    if (strcmp(index->hints[i].base, key) == 0) return &index->hints[i];
  return NULL;
}

// Frees `name` for reuse: the hints of the bases it could have come from go back to it.
static void name_remove(NameIndex *index, const char *name) {
  const char **slot = name_slot(index, name);
  if (*slot) *slot = TOMBSTONE;
  NameEntry *self = name_find_hint(index, name, strlen(name));
  if (self) self->next = 1;
  const char *underscore = strrchr(name, '_');
  if (!underscore || !underscore[1]) return;
  char *end;
  long k = strtol(underscore + 1, &end, 10);
  if (*end || k < 2 || underscore[1] == '0' || underscore[1] == '+' || underscore[1] == '-') return;
  NameEntry *base = name_find_hint(index, name, (size_t)(underscore - name));
  if (base && base->next > k) base->next = (int)k;
}

static void name_index_free(NameIndex *index) {
  if (!index) return;
  for (size_t i = 0; i < index->hint_cap; i++) free(index->hints[i].base);
  free(index->hints), free(index->names), free(index);
}

Graph *graph_new(void) {
  Graph *graph = calloc(1, sizeof *graph);
  graph->input_node = graph->code_node = graph->reconstruction_node = graph->code_logvar_node = -1;
  graph->corrupt_node = graph->first_kernel_param = -1;
  graph->decode_input_node = graph->decode_node = -1;
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
  free(graph->train.data), free(graph->train.test), free(graph->train.validation), free(graph->input_name), free(graph->eval_losses);
  free(graph->layer_eval_nodes);
  for (int i = 0; i < graph->n_loss_parts; i++)
    free(graph->loss_parts[i].name), free(graph->loss_parts[i].nodes), free(graph->loss_parts[i].coefs);
  free(graph->loss_parts);
  free(graph->decode_missing);
  name_index_free(graph->name_index);
  if (graph->pure_index) free(graph->pure_index->ids);
  free(graph->pure_index);
  free(graph);
}

// ------------------------------------------------------------ pure index

static uint64_t pure_hash(OpKind op, const int *inputs, int n_inputs, const double *attrs) {
  int head[2] = {(int)op, n_inputs};
  uint64_t h = hash_bytes(head, sizeof head, HASH_SEED);
  if (n_inputs > 0) h = hash_bytes(inputs, sizeof(int) * (size_t)n_inputs, h);
  return hash_bytes(attrs, sizeof(double) * MAX_ATTRS, h);
}

static bool same_node(const Node *a, OpKind op, const int *inputs, int n_inputs, const double *attrs) {
  if (a->op != op || a->n_inputs != n_inputs || memcmp(a->attr, attrs, sizeof a->attr) != 0) return false;
  for (int i = 0; i < n_inputs; i++)
    if (a->inputs[i] != inputs[i]) return false;
  return true;
}

// The slot holding the node that matches, or the empty slot where it would go.
static int *pure_slot(const Graph *graph, OpKind op, const int *inputs, int n_inputs, const double *attrs) {
  const PureIndex *index = graph->pure_index;
  size_t mask = index->cap - 1;
  for (size_t i = pure_hash(op, inputs, n_inputs, attrs) & mask;; i = (i + 1) & mask) {
    int *slot = &index->ids[i];
    if (*slot < 0 || same_node(&graph->nodes[*slot], op, inputs, n_inputs, attrs)) return slot;
  }
}

int graph_find_pure(const Graph *graph, OpKind op, const int *inputs, int n_inputs, const double *attrs) {
  if (!graph->pure_index) return -1;
  return *pure_slot(graph, op, inputs, n_inputs, attrs);
}

void graph_note_pure(Graph *graph, int node) {
  if (!graph->pure_index) graph->pure_index = calloc(1, sizeof *graph->pure_index);
  PureIndex *index = graph->pure_index;
  if (!index) fputs("aec: out of memory\n", stderr), exit(1);
  if ((index->n + 1) * 2 > index->cap) {
    PureIndex old = *index;
    index->cap = old.cap ? old.cap * 2 : 64;
    index->ids = malloc(index->cap * sizeof *index->ids);
    if (!index->ids) fputs("aec: out of memory\n", stderr), exit(1);
    memset(index->ids, 0xff, index->cap * sizeof *index->ids);  // every slot -1
    for (size_t i = 0; i < old.cap; i++)
      if (old.ids[i] >= 0) {
        const Node *n = &graph->nodes[old.ids[i]];
        *pure_slot(graph, n->op, n->inputs, n->n_inputs, n->attr) = old.ids[i];
      }
    free(old.ids);
  }
  const Node *n = &graph->nodes[node];
  int *slot = pure_slot(graph, n->op, n->inputs, n->n_inputs, n->attr);
  if (*slot < 0) index->n++;
  *slot = node;  // the newer of two identical nodes, as a search from the end would find
}

Node *graph_node(Graph *graph, int id) { return &graph->nodes[id]; }

bool shape_is_scalar(Shape shape) { return !shape.batched && shape.rank == 0; }
bool shape_is_per_sample_scalar(Shape shape) { return shape.batched && shape_size(shape) == 1; }

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

Node *graph_reserve_node(Graph *graph, OpKind op, const int *inputs, int n_inputs, const double *attrs, Loc loc) {
  graph->nodes = grow(graph->nodes, &graph->cap_nodes, graph->n_nodes + 1, sizeof(Node));
  Node *node = &graph->nodes[graph->n_nodes];
  memset(node, 0, sizeof *node);
  node->id = graph->n_nodes;
  node->op = op;
  node->n_inputs = n_inputs;
  if (n_inputs > 0) memcpy(node->inputs, inputs, (size_t)n_inputs * sizeof(int));
  if (attrs) memcpy(node->attr, attrs, sizeof node->attr);
  node->loc = loc;
  node->param_index = -1;
  node->rng_node = -1;
  node->step = -1;
  node->inside = -1;
  return node;
}

static const char *const op_names[] = {
#define OP(kind, name) name,
#include "ops.def"
};
_Static_assert(sizeof op_names / sizeof *op_names == OP_COUNT, "ops.def gives every op a name");

const char *op_name(OpKind op) { return op_names[op]; }

bool node_uses_batch(const Graph *graph, const Node *node) {
  if (node->shape.batched) return true;
  for (int i = 0; i < node->n_inputs; i++)
    if (graph->nodes[node->inputs[i]].shape.batched) return true;
  return false;
}

void step_lr_format(const Step *step, char *out, size_t size) {
  if (step->lr_schedule == OP_INPUT) snprintf(out, size, "%g", step->lr);
  else snprintf(out, size, "%s(%g, %g, %g)", op_name(step->lr_schedule), step->lr, step->lr_to, step->lr_epochs);
}

const Layer *node_layer(const Graph *g, int id) {
  const Node *node = &g->nodes[id];
  if (!node->loc.source) return NULL;
  for (int i = 0; i < g->n_layers; i++) {
    const Layer *l = &g->layers[i];
    if (l->loc.source == node->loc.source && l->loc.line == node->loc.line && l->loc.col == node->loc.col) return l;
  }
  return NULL;
}

int graph_add_param(Graph *graph, const char *name, int net, Shape shape, bool is_kernel, int fan_in,
                    int fan_out, Loc loc) {
  Node *node = graph_reserve_node(graph, OP_PARAM, NULL, 0, NULL, loc);
  int id = node->id;
  graph->n_nodes++;
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
  owner->param_ids = grow_for(owner->param_ids, owner->n_params, sizeof(int));
  owner->param_ids[owner->n_params++] = param - graph->params;
  return id;
}

// Names the generated C uses itself, which a node's buffer must not shadow.
static const char *const reserved_names[] = {
    "n", "input", "ctx", "arena", "cap", "losses", "out", "a", "b", "c", "i", "j", "k", "m", "v", "t", "lr", "sum",
    "count", "real", "model", "params", "layers", "steps", "loss_names", "main", "NULL",
    "eval_losses", "encode", "reconstruct", "corrupt", "loss_and_grad", "apply_update", "layer_output", "layer",
    "layer_nodes", "wrap", "embedded_weights", "err", "err_size", "embed", "auto", "break", "case", "char",
    "const", "continue", "default", "do", "double", "else", "enum", "extern", "float", "for", "goto", "if",
    "inline", "int", "long", "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct",
    "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "exp", "log", "tanh", "fabs", "fmax",
    "pow", "sqrt", "log1p", "memcpy", "memset", NULL};

// The activations' expressions (ops.def), whose functions (erf(...)) a
// buffer must not shadow either.
static const char *const activation_exprs[] = {
#define ACTIVATION(kind, name, forward, gradient, second, reads, param, fallback, summary) forward, gradient,
#include "ops.def"
    NULL};

// The optimizers' kernels and state vectors (runtime/aert_optimizers.def),
// which a step's update names.
#define UNPACK(...) __VA_ARGS__
static const char *const optimizer_names[] = {
#define OPTIMIZER(kind, name, kernel, takes_t, states, last_state_if, settings) #kernel, UNPACK states,
#include "aert_optimizers.def"
    NULL};
#undef UNPACK

// `name(` appears in `text`, not as the end of a longer identifier.
static bool called_in(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
    bool starts = p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
    if (starts && p[n] == '(') return true;
  }
  return false;
}

static bool name_taken(const Graph *graph, const char *name) {
  for (int i = 0; reserved_names[i]; i++)
    if (strcmp(reserved_names[i], name) == 0) return true;
  for (int i = 0; activation_exprs[i]; i++)
    if (called_in(activation_exprs[i], name)) return true;
  for (int i = 0; optimizer_names[i]; i++)
    if (strcmp(optimizer_names[i], name) == 0) return true;
  return *name_slot(graph->name_index, name) != NULL;
}

// A node gets the first free name of base, base_2, base_3, ... (its own
// current name counts as free). The index keeps, per base, a suffix below
// which every name is taken, so a model with thousands of `relu` nodes
// does not scan them all for each new one.
void graph_set_name(Graph *graph, int node, const char *base) {
  if (!graph->name_index) graph->name_index = calloc(1, sizeof *graph->name_index);
  NameIndex *index = graph->name_index;
  if (graph->nodes[node].name) name_remove(index, graph->nodes[node].name);
  char name[300];
  snprintf(name, sizeof name, "%s", base);
  NameEntry *hint = name_hint(index, name);
  int suffix = hint ? hint->next : 1;
  if (suffix > 1) snprintf(name, sizeof name, "%s_%d", base, suffix);
  while (name_taken(graph, name)) snprintf(name, sizeof name, "%s_%d", base, ++suffix);
  if (hint) hint->next = suffix + 1;
  free(graph->nodes[node].name);
  graph->nodes[node].name = strdup(name);
  name_insert(index, graph->nodes[node].name);
}

void loc_format(Loc loc, bool base_only, char *buf, size_t size) {
  if (!loc.source) {
    snprintf(buf, size, "-");
    return;
  }
  const char *path = loc.source->path;
  if (base_only && strrchr(path, '/')) path = strrchr(path, '/') + 1;
  snprintf(buf, size, "%s:%d:%d", path, loc.line, loc.col);
}

void shape_format_batched(Shape shape, char *buf, size_t size) {
  char s[64];
  shape_format(shape, s, sizeof s);
  snprintf(buf, size, "%s%s", s, shape.batched ? "xN" : "");
}
