// pass_inference.c — the values evaluation, encode, reconstruct and
// layer_output (the `activations` command) compute; decode (the
// reconstruction from a given code) and the parts of each loss that is a sum.
// Corruption is the identity at inference, so each such value is rebuilt
// with every corruption node replaced by its input (and every op with an
// inference_op, batchnorm, by that op); hash-consing in
// graph_add makes the rebuilt nodes the existing ones wherever nothing was
// corrupted (encoder(noisy) becomes the same node as encoder(x)).
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

// Node `id` rebuilt from its inputs' rebuilt nodes (all in memo already).
static int rebuild_node(Graph *g, int id, const int *memo) {
  Node node = g->nodes[id];  // a copy: graph_add may move the array
  const OpInfo *info = op_info(node.op);
  if (info->identity_at_inference) return memo[node.inputs[0]];
  int inputs[MAX_INPUTS];
  bool changed = info->inference_op != OP_INPUT;  // batchnorm: batchnorm_eval
  for (int i = 0; i < node.n_inputs; i++) {
    inputs[i] = memo[node.inputs[i]];
    changed |= inputs[i] != node.inputs[i];
  }
  if (!changed) return id;
  int before = g->n_nodes;
  OpKind op = info->inference_op != OP_INPUT ? info->inference_op : node.op;
  int made = graph_add_attr(g, op, inputs, node.n_inputs, node.attr, node.loc);
  if (made >= before) {  // a new node: name it after the one it stands for
    char name[320];
    snprintf(name, sizeof name, "%s_eval", node.name);
    graph_set_name(g, made, name);
  }
  return made;
}

// The node standing for `id` at inference, memoized. Depth-first over the
// inputs in order, as a recursion would go, but on a stack of its own: a
// chain of 100k values must not overflow the C stack.
static int rebuild(Graph *g, int root, int *memo) {
  if (memo[root] != -2) return memo[root];
  int cap = 64, n = 0, *stack = malloc((size_t)cap * sizeof *stack);
  if (!stack) fputs("aec: out of memory\n", stderr), exit(1);
  stack[n++] = root;
  while (n > 0) {
    int top = stack[n - 1];
    if (memo[top] != -2) {
      n--;
      continue;
    }
    const Node *node = &g->nodes[top];
    int pending = -1, n_inputs = op_info(node->op)->identity_at_inference ? 1 : node->n_inputs;
    for (int i = 0; i < n_inputs && pending < 0; i++)
      if (memo[node->inputs[i]] == -2) pending = node->inputs[i];
    if (pending < 0) {
      memo[top] = rebuild_node(g, top, memo);
      n--;
      continue;
    }
    if (n == cap) {
      stack = realloc(stack, (size_t)(cap *= 2) * sizeof *stack);
      if (!stack) fputs("aec: out of memory\n", stderr), exit(1);
    }
    stack[n++] = pending;
  }
  free(stack);
  return memo[root];
}

// Each layer's output at inference, where the input alone determines it: a
// value that depends on the input and on no op that stays random at
// inference (a prior). A net applied first to a prior's samples (an
// adversarial critic) has none. Ids are topological, so one pass finds both.
static void plan_layer_outputs(Graph *g, int *memo) {
  g->layer_eval_nodes = malloc(((size_t)g->n_layers + 1) * sizeof(int));
  for (int i = 0; i < g->n_layers; i++) g->layer_eval_nodes[i] = rebuild(g, g->layers[i].node, memo);
  bool *on_input = calloc((size_t)g->n_nodes + 1, sizeof(bool)), *on_prior = calloc((size_t)g->n_nodes + 1, sizeof(bool));
  for (int id = 0; id < g->n_nodes; id++) {
    const Node *node = &g->nodes[id];
    on_input[id] = node->op == OP_INPUT;
    on_prior[id] = op_info(node->op)->random && !op_info(node->op)->identity_at_inference;
    for (int i = 0; i < node->n_inputs; i++) on_input[id] |= on_input[node->inputs[i]], on_prior[id] |= on_prior[node->inputs[i]];
  }
  for (int i = 0; i < g->n_layers; i++) {
    int id = g->layer_eval_nodes[i];
    if (id >= 0 && (!on_input[id] || on_prior[id])) g->layer_eval_nodes[i] = -1;
  }
  free(on_input), free(on_prior);
}

// Whether nodes a and b compute the same thing but for the data they start
// from: the same ops, attributes, shapes and parameters, where any two values
// computed from the input alone (no parameter, no prior) count as the same.
// So the code encoder(x) is found in a reconstruction decoder(encoder(clip(x,
// 0, 1))) (clip stays at inference). Iterative: a chain may be long.
static bool same_computation(const Graph *g, int a, int b, const bool *data_only, int *match) {
  int cap = 64, top = 0, n_set = 0, set_cap = 64;
  int *stack = malloc((size_t)cap * 2 * sizeof(int)), *set = malloc((size_t)set_cap * sizeof(int));
  bool same = true;
  stack[top++] = a, stack[top++] = b;
  while (top > 0 && same) {
    int y = stack[--top], x = stack[--top];
    if (x == y || (data_only[x] && data_only[y]) || match[x] == y) continue;
    const Node *p = &g->nodes[x], *q = &g->nodes[y];
    same = match[x] < 0 && p->op == q->op && p->n_inputs == q->n_inputs &&
           memcmp(p->attr, q->attr, sizeof p->attr) == 0 && p->shape.batched == q->shape.batched &&
           p->shape.rank == q->shape.rank && memcmp(p->shape.dims, q->shape.dims, sizeof p->shape.dims) == 0 &&
           (p->n_inputs > 0 || p->op == OP_CONSTANT);  // distinct parameters, priors and inputs differ
    if (n_set == set_cap) set = realloc(set, (size_t)(set_cap *= 2) * sizeof(int));
    match[x] = y, set[n_set++] = x;
    for (int i = 0; same && i < p->n_inputs; i++) {
      if (top + 2 > 2 * cap) stack = realloc(stack, (size_t)(cap *= 2) * 2 * sizeof(int));
      stack[top++] = p->inputs[i], stack[top++] = q->inputs[i];
    }
  }
  for (int i = 0; i < n_set; i++) match[set[i]] = -1;  // clean for the next comparison
  free(stack), free(set);
  return same;
}

// The ancestors of `root` (itself included), not looking past `stop`.
static bool *ancestors(const Graph *g, int root, int stop) {
  bool *seen = calloc((size_t)g->n_nodes + 1, sizeof(bool));
  seen[root] = true;
  for (int id = root; id >= 0; id--)
    if (seen[id] && id != stop)
      for (int i = 0; i < g->nodes[id].n_inputs; i++) seen[g->nodes[id].inputs[i]] = true;
  return seen;
}

// The node of the reconstruction's computation that is the code: the code
// itself, or the same computation on the input's preprocessing; -1 if none.
static int code_in_reconstruction(const Graph *g, int code, int recon) {
  bool *needed = ancestors(g, recon, -1);
  int found = needed[code] ? code : -1;
  bool *data_only = NULL;
  int *match = NULL;
  for (int id = recon; found < 0 && id >= 0; id--) {
    if (!needed[id] || g->nodes[id].op != g->nodes[code].op) continue;
    if (!data_only) {
      data_only = calloc((size_t)g->n_nodes + 1, sizeof(bool));
      bool *blocked = calloc((size_t)g->n_nodes + 1, sizeof(bool));  // depends on a parameter or a prior
      for (int k = 0; k < g->n_nodes; k++) {
        const Node *node = &g->nodes[k];
        data_only[k] = node->op == OP_INPUT;
        blocked[k] = node->op == OP_PARAM || (op_info(node->op)->random && !op_info(node->op)->identity_at_inference);
        for (int i = 0; i < node->n_inputs; i++) data_only[k] |= data_only[node->inputs[i]], blocked[k] |= blocked[node->inputs[i]];
      }
      for (int k = 0; k < g->n_nodes; k++) data_only[k] &= !blocked[k];
      free(blocked);
      match = malloc((size_t)g->n_nodes * sizeof(int));
      for (int k = 0; k < g->n_nodes; k++) match[k] = -1;
    }
    if (same_computation(g, code, id, data_only, match)) found = id;
  }
  free(needed), free(data_only), free(match);
  return found;
}

// decode: the part of the reconstruction's computation after the code (the
// generated decode() reads the code's value from its `input`, and reuses
// reconstruct's kernels). Only when the reconstruction depends on the code, and on the input only
// through it: a skip connection from the input leaves no decode, and
// Graph.decode_missing says why.
static void plan_decode(Graph *g) {
  int code = g->code_node, recon = g->reconstruction_node;
  if (code < 0 || recon < 0) return;
  int at = code_in_reconstruction(g, code, recon);
  if (at < 0) {
    g->decode_missing = strdup("the reconstruction is not computed from the code");
    return;
  }
  bool *needed = ancestors(g, recon, at);
  bool on_input = g->input_node >= 0 && needed[g->input_node];
  free(needed);
  if (on_input) {
    char why[400];
    snprintf(why, sizeof why, "the reconstruction reads the input '%s' other than through the code (a skip connection)",
             g->input_name ? g->input_name : "x");
    g->decode_missing = strdup(why);
    return;
  }
  if (at == recon) {
    g->decode_missing = strdup("the reconstruction is the code itself");
    return;
  }
  g->decode_input_node = at;  // plan.c: decode() is the reconstruction's computation after it, `at` read from its input
  g->decode_node = recon;
}

// ------------------------------------------------------------ loss parts
// The identifier at a place in the .ae source ("bce" in `bce(p, x)`), or NULL.
static bool name_at(Loc loc, char *out, size_t size) {
  size_t length = 0;
  const char *line = loc.source ? source_line_text(loc.source, loc.line, &length) : NULL;
  if (!line || loc.col < 1 || (size_t)loc.col > length) return false;
  const char *p = line + loc.col - 1, *end = line + length, *q = p;
  if (!(isalpha((unsigned char)*p) || *p == '_')) return false;
  while (q < end && (isalnum((unsigned char)*q) || *q == '_')) q++;
  snprintf(out, size, "%.*s", (int)(q - p), p);
  return true;
}

static bool depends_on_param(const Graph *g, int node, bool *memo_known, bool *memo) {
  if (memo_known[node]) return memo[node];
  // Ids are topological: a forward sweep up to `node` settles it.
  for (int id = 0; id <= node; id++) {
    if (memo_known[id]) continue;
    bool d = g->nodes[id].op == OP_PARAM;
    for (int i = 0; i < g->nodes[id].n_inputs && !d; i++) d = memo[g->nodes[id].inputs[i]];
    memo[id] = d, memo_known[id] = true;
  }
  return memo[node];
}

static bool is_arithmetic(OpKind op) {
  return op == OP_ADD || op == OP_SUB || op == OP_MUL || op == OP_DIV || op == OP_NEG;
}

// A term's name: the function called where it was written (through
// arithmetic, the operand that depends on the weights: `ramp(0, 1, 10) *
// kl(m, v)` is "kl"), else its op's name.
static void term_name(const Graph *g, int node, bool *known, bool *memo, char *out, size_t size) {
  while (is_arithmetic(g->nodes[node].op)) {
    int next = -1;
    for (int i = 0; i < g->nodes[node].n_inputs && next < 0; i++)
      if (depends_on_param(g, g->nodes[node].inputs[i], known, memo)) next = g->nodes[node].inputs[i];
    if (next < 0) break;
    node = next;
  }
  if (!name_at(g->nodes[node].loc, out, size)) snprintf(out, size, "%s", op_name(g->nodes[node].op));
}

static bool same_place(Loc a, Loc b) { return a.source == b.source && a.line == b.line && a.col == b.col; }

enum { MAX_PARTS = 64 };  // a loss of more terms is reported whole

// The terms of loss l's top-level sum: through +, -, negation, products
// and quotients by a number, and the mean over the batch (batch_mean); terms written by one call (l2(a, b) is a
// sum of its own) make one part; numbers are left out. Several parts, or none.
static void loss_parts_of(Graph *g, int l, bool *known, bool *memo) {
  typedef struct {
    int node;
    double coef;
  } Item;
  int cap = 64, n = 0, n_terms = 0;
  Item *stack = malloc((size_t)cap * sizeof *stack), terms[MAX_PARTS * 4];
  stack[n++] = (Item){g->eval_losses[l], 1};
  bool ok = true;
  while (n > 0 && ok) {
    Item it = stack[--n];
    const Node *node = &g->nodes[it.node];
    Item push[2];
    int n_push = 0;
    const Node *a = node->n_inputs > 0 ? &g->nodes[node->inputs[0]] : NULL;
    const Node *b = node->n_inputs > 1 ? &g->nodes[node->inputs[1]] : NULL;
    if (node->op == OP_ADD || node->op == OP_SUB) {
      push[n_push++] = (Item){a->id, it.coef};
      push[n_push++] = (Item){b->id, node->op == OP_SUB ? -it.coef : it.coef};
    } else if (node->op == OP_NEG) {
      push[n_push++] = (Item){a->id, -it.coef};
    } else if (node->op == OP_MUL && (a->op == OP_CONSTANT || b->op == OP_CONSTANT)) {
      push[n_push++] = a->op == OP_CONSTANT ? (Item){b->id, it.coef * a->attr[0]} : (Item){a->id, it.coef * b->attr[0]};
    } else if (node->op == OP_DIV && b->op == OP_CONSTANT && b->attr[0] != 0) {
      push[n_push++] = (Item){a->id, it.coef / b->attr[0]};
    } else if (node->op == OP_BATCH_MEAN) {
      push[n_push++] = (Item){a->id, it.coef};
    } else if (node->op != OP_CONSTANT) {
      bool scalar = shape_size(node->shape) == 1;
      if (!scalar || n_terms == MAX_PARTS * 4) ok = false;
      else terms[n_terms++] = it;
    }
    if (n + 2 > cap) stack = realloc(stack, (size_t)(cap *= 2) * sizeof *stack);
    for (int i = n_push - 1; i >= 0; i--) stack[n++] = push[i];  // the left operand first
  }
  free(stack);
  if (!ok || n_terms < 2) return;
  // Terms of one place make one part.
  int part_of[MAX_PARTS * 4], n_parts = 0, first_term[MAX_PARTS * 4];
  for (int t = 0; t < n_terms; t++) {
    part_of[t] = -1;
    for (int p = 0; p < n_parts && part_of[t] < 0; p++)
      if (same_place(g->nodes[terms[first_term[p]].node].loc, g->nodes[terms[t].node].loc)) part_of[t] = p;
    if (part_of[t] < 0) first_term[n_parts] = t, part_of[t] = n_parts++;
  }
  if (n_parts < 2 || n_parts > MAX_PARTS) return;
  int base = g->n_loss_parts;
  g->loss_parts = realloc(g->loss_parts, (size_t)(base + n_parts) * sizeof *g->loss_parts);
  for (int p = 0; p < n_parts; p++) {
    LossPart *part = &g->loss_parts[base + p];
    *part = (LossPart){.loss = l};
    part->nodes = malloc((size_t)n_terms * sizeof(int));
    part->coefs = malloc((size_t)n_terms * sizeof(double));
    for (int t = 0; t < n_terms; t++)
      if (part_of[t] == p) part->nodes[part->n_terms] = terms[t].node, part->coefs[part->n_terms++] = terms[t].coef;
    char fn[128], name[400];
    term_name(g, terms[first_term[p]].node, known, memo, fn, sizeof fn);
    snprintf(name, sizeof name, "%s.%s", g->losses[l].name, fn);
    int same = 1;  // a second bce is elbo.bce_2
    for (int q = base; q < base + p; q++) {
      char other[128];
      term_name(g, g->loss_parts[q].nodes[0], known, memo, other, sizeof other);
      same += strcmp(other, fn) == 0;
    }
    if (same > 1) snprintf(name + strlen(name), sizeof name - strlen(name), "_%d", same);
    part->name = strdup(name);
  }
  g->n_loss_parts += n_parts;
}

static void plan_loss_parts(Graph *g) {
  bool *known = calloc((size_t)g->n_nodes + 1, sizeof(bool)), *memo = calloc((size_t)g->n_nodes + 1, sizeof(bool));
  for (int l = 0; l < g->n_losses; l++) loss_parts_of(g, l, known, memo);
  free(known), free(memo);
}

void plan_inference(Graph *g) {
  int n_before = g->n_nodes;
  int *memo = malloc((size_t)n_before * sizeof(int));
  for (int i = 0; i < n_before; i++) memo[i] = -2;  // not visited
  g->eval_losses = malloc(((size_t)g->n_losses + 1) * sizeof(int));
  for (int i = 0; i < g->n_losses; i++) g->eval_losses[i] = rebuild(g, g->losses[i].node, memo);
  if (g->code_node >= 0) g->code_node = rebuild(g, g->code_node, memo);
  if (g->reconstruction_node >= 0) g->reconstruction_node = rebuild(g, g->reconstruction_node, memo);
  plan_layer_outputs(g, memo);
  free(memo);
  plan_decode(g);
  plan_loss_parts(g);
}
