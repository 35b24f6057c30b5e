// receptive.c — the receptive field of a layer's units, from the model's
// description (aert_model.description, compiler/cgen/describe.c's JSON): the
// forward graph is walked back from the layer's node to the input, one image
// axis at a time, mapping each unit's output rows (columns) to the input rows
// (columns) it reads. Ops that map positions through windows (convolutions,
// pooling, upsampling, unpooling) carry their geometry in the description's
// `windows`, from the compiler's own geometry; elementwise ops pass positions
// through; any other op on the way (dense, reshape) mixes every position, so
// the unit sees the whole input. No op is known here by name. The intervals
// are nominal: they run past the image's edges where a layer padded.
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

enum { MAX_DEPTH = 4096 };

// An input's windows along one axis (describe.c's `windows`): window w
// covers positions w * stride - pad .. w * stride - pad + size - 1 of the
// input (on INPUT), of the output (on OUTPUT) or of both (BOTH).
typedef enum rf_side { ON_INPUT, ON_OUTPUT, ON_BOTH } rf_side;

typedef struct rf_window {
  int size, stride, pad;
  rf_side on;
} rf_window;

// One forward node of the description.
typedef struct rf_node {
  const char *op;
  int inputs[4], n_inputs;
  int rank, dims[4];
  bool batched;
  bool elementwise;  // the description marks its op elementwise (the op table's kind)
  bool on_input;     // depends on the model's input
  rf_window windows[4][2];  // per input, per axis (rows, columns); size 0 where the op does not window it
} rf_node;

typedef struct rf_graph {
  rf_node *nodes;  // indexed by node id; op NULL where the description has none (backward nodes)
  int n_nodes;
  int input;
} rf_graph;

// An interval of input positions [lo, hi] along one axis; `whole` when the
// unit sees every position, `none` when no path reaches the input.
typedef struct span {
  int lo, hi;
  bool whole, none;
} span;

static int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int ceil_div(int a, int b) { return -floor_div(-a, b); }

static span span_union(span a, span b) {
  if (a.none) return b;
  if (b.none) return a;
  if (a.whole || b.whole) return (span){.whole = true};
  return (span){.lo = a.lo < b.lo ? a.lo : b.lo, .hi = a.hi > b.hi ? a.hi : b.hi};
}

static bool json_int(const json_value *v, int *out) {
  if (!v || v->type != JSON_NUMBER) return false;
  char *end;
  double d = strtod(v->text, &end);
  if (*end || d != floor(d) || fabs(d) > 1e9) return false;
  *out = (int)d;
  return true;
}

static bool read_axis(const json_value *axis, rf_window *w) {
  const json_value *on = json_get(axis, "on");
  if (!json_int(json_get(axis, "size"), &w->size) || !json_int(json_get(axis, "stride"), &w->stride) ||
      !json_int(json_get(axis, "pad"), &w->pad) || !on || on->type != JSON_STRING || w->size < 1 || w->stride < 1)
    return false;
  if (strcmp(on->text, "input") == 0) w->on = ON_INPUT;
  else if (strcmp(on->text, "output") == 0) w->on = ON_OUTPUT;
  else if (strcmp(on->text, "both") == 0) w->on = ON_BOTH;
  else return false;
  return true;
}

// A node's `windows`, when it has them.
static bool read_windows(const json_value *windows, rf_node *n) {
  if (!windows) return true;
  if (windows->type != JSON_ARRAY) return false;
  for (size_t i = 0; i < windows->count; i++) {
    const json_value *item = &windows->items[i];
    int input;
    if (!json_int(json_get(item, "input"), &input) || input < 0 || input >= n->n_inputs ||
        !read_axis(json_get(item, "rows"), &n->windows[input][0]) ||
        !read_axis(json_get(item, "cols"), &n->windows[input][1]))
      return false;
  }
  return true;
}

static bool read_node(const json_value *item, rf_graph *g) {
  const json_value *id = json_get(item, "id"), *op = json_get(item, "op"), *inputs = json_get(item, "inputs"),
                   *shape = json_get(item, "shape"), *batched = json_get(item, "batched"), *attr = json_get(item, "attr"),
                   *elementwise = json_get(item, "elementwise");
  int at;
  if (!json_int(id, &at) || at < 0 || at >= g->n_nodes || !op || op->type != JSON_STRING || !inputs ||
      inputs->type != JSON_ARRAY || inputs->count > 4 || !shape || shape->type != JSON_ARRAY || shape->count > 4 ||
      !batched || batched->type != JSON_BOOL || !attr || attr->type != JSON_ARRAY)
    return false;
  rf_node *n = &g->nodes[at];
  *n = (rf_node){.op = op->text, .n_inputs = (int)inputs->count, .rank = (int)shape->count, .batched = batched->boolean,
                 .elementwise = elementwise && elementwise->boolean};
  for (int i = 0; i < n->n_inputs; i++)
    if (!json_int(&inputs->items[i], &n->inputs[i]) || n->inputs[i] < 0 || n->inputs[i] >= at) return false;
  for (int d = 0; d < n->rank; d++)
    if (!json_int(&shape->items[d], &n->dims[d])) return false;
  return read_windows(json_get(item, "windows"), n);
}

// The forward graph of the description; false when it is malformed.
static bool read_graph(const json_value *d, rf_graph *g) {
  const json_value *nodes = json_get(d, "nodes"), *input = json_get(d, "input");
  if (!nodes || nodes->type != JSON_ARRAY || !input || !json_int(json_get(input, "node"), &g->input)) return false;
  g->n_nodes = 0;
  for (size_t i = 0; i < nodes->count; i++) {
    int id;
    if (!json_int(json_get(&nodes->items[i], "id"), &id) || id < 0) return false;
    if (id + 1 > g->n_nodes) g->n_nodes = id + 1;
  }
  if (g->input < 0 || g->input >= g->n_nodes) return false;
  g->nodes = calloc((size_t)g->n_nodes, sizeof *g->nodes);
  if (!g->nodes) return false;
  for (size_t i = 0; i < nodes->count; i++)
    if (!read_node(&nodes->items[i], g)) return false;
  for (int id = 0; id < g->n_nodes; id++) {  // ids are topological
    rf_node *n = &g->nodes[id];
    n->on_input = id == g->input;
    for (int i = 0; i < n->n_inputs; i++) n->on_input |= g->nodes[n->inputs[i]].on_input;
  }
  return g->nodes[g->input].op != NULL;
}

static span walk(const rf_graph *g, int id, int axis, int lo, int hi, int depth);

// The positions of input `i` of node n that output positions [lo, hi]
// read, through the input's windows: first the windows that cover [lo, hi]
// (on the output side; output position w is window w otherwise), then the
// input positions of those windows (on the input side; window w is input
// position w otherwise).
static span walk_windows(const rf_graph *g, const rf_node *n, int i, int axis, int lo, int hi, int depth) {
  const rf_window *w = &n->windows[i][axis];
  int first = lo, last = hi;
  if (w->on != ON_INPUT) first = ceil_div(lo + w->pad - w->size + 1, w->stride), last = floor_div(hi + w->pad, w->stride);
  if (w->on != ON_OUTPUT) lo = first * w->stride - w->pad, hi = last * w->stride - w->pad + w->size - 1;
  else lo = first, hi = last;
  return walk(g, n->inputs[i], axis, lo, hi, depth + 1);
}

static bool windowed(const rf_node *n) {
  for (int i = 0; i < n->n_inputs; i++)
    if (n->windows[i][0].size) return true;
  return false;
}

static span walk(const rf_graph *g, int id, int axis, int lo, int hi, int depth) {
  const rf_node *n = &g->nodes[id];
  if (id == g->input) return (span){.lo = lo, .hi = hi};
  if (!n->on_input) return (span){.none = true};
  if (depth > MAX_DEPTH || n->rank != 3 || !n->batched || n->n_inputs < 1) return (span){.whole = true};
  if (windowed(n)) {  // every input that depends on the input must be windowed
    span s = {.none = true};
    for (int i = 0; i < n->n_inputs; i++) {
      const rf_node *in = &g->nodes[n->inputs[i]];
      if (!in->on_input) continue;
      bool image = in->batched && in->rank == 3 && n->windows[i][axis].size;
      s = span_union(s, image ? walk_windows(g, n, i, axis, lo, hi, depth) : (span){.whole = true});
    }
    return s;
  }
  if (n->elementwise) {
    span s = {.none = true};
    for (int i = 0; i < n->n_inputs; i++) {
      const rf_node *in = &g->nodes[n->inputs[i]];
      if (!in->on_input) continue;
      bool same = in->batched && in->rank == 3 && in->dims[1] == n->dims[1] && in->dims[2] == n->dims[2];
      s = span_union(s, same ? walk(g, n->inputs[i], axis, lo, hi, depth + 1) : (span){.whole = true});
    }
    return s;
  }
  return (span){.whole = true};  // dense, reshape, anything that mixes positions
}

// The span of each of `count` output positions along one axis, and the largest.
static bool axis_spans(const rf_graph *g, int node, int axis, int count, int *lo, int *hi, int *largest) {
  *largest = 0;
  for (int o = 0; o < count; o++) {
    span s = walk(g, node, axis, o, o, 0);
    if (s.whole || s.none) return false;
    lo[o] = s.lo, hi[o] = s.hi;
    if (s.hi - s.lo + 1 > *largest) *largest = s.hi - s.lo + 1;
  }
  return true;
}

void aert_receptive_field_free(aert_receptive_field *rf) {
  free(rf->row_lo), free(rf->row_hi), free(rf->col_lo), free(rf->col_hi);
  memset(rf, 0, sizeof *rf);
}

bool aert_receptive_field_of(const aert_model *model, int node, aert_receptive_field *rf) {
  memset(rf, 0, sizeof *rf);
  rf->whole = true;
  if (model->input_rank != 3) return true;  // a flat input has no positions to map
  rf->height = model->input_shape[1], rf->width = model->input_shape[2];
  char error[256];
  json_value *d = model->description ? json_parse(model->description, strlen(model->description), error, sizeof error) : NULL;
  rf_graph g = {0};
  bool ok = d && read_graph(d, &g) && node >= 0 && node < g.n_nodes && g.nodes[node].op;
  if (!ok) {
    aert_error("the model description is missing or malformed, so the receptive fields are unknown; regenerate the "
               "program with aec");
  } else if (g.nodes[node].rank == 3 && g.nodes[node].batched) {
    int rows = g.nodes[node].dims[1], cols = g.nodes[node].dims[2], tall, wide;
    aert_receptive_field found = {.row_lo = malloc((size_t)rows * sizeof(int)), .row_hi = malloc((size_t)rows * sizeof(int)),
                                  .col_lo = malloc((size_t)cols * sizeof(int)), .col_hi = malloc((size_t)cols * sizeof(int))};
    ok = found.row_lo && found.row_hi && found.col_lo && found.col_hi;
    if (!ok) aert_error("out of memory for the receptive fields");
    if (ok && axis_spans(&g, node, 0, rows, found.row_lo, found.row_hi, &tall) &&
        axis_spans(&g, node, 1, cols, found.col_lo, found.col_hi, &wide)) {
      found.height = tall, found.width = wide;
      *rf = found;
    } else {
      aert_receptive_field_free(&found);
    }
  }
  free(g.nodes);
  json_free(d);
  return ok;
}
