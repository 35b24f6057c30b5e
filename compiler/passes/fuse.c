// pass_fuse.c — groups a schedule's nodes into kernels. A matrix product
// (dense forward, or the input gradient of dense) takes the elementwise ops
// that follow it as its epilogue (bias, activation, activation derivative),
// and so does a stride-1 convolution (its activation);
// a maxpool's gradient applies the activation gradient that alone reads it;
// a loss and its gradient are computed in one pass over the prediction;
// a kernel gradient also writes the bias gradient of the same dy, summing the
// panels of dy it packs anyway (one pass over dy less, one kernel less);
// chains of elementwise ops become one loop. A value inside a group that no
// one outside it reads is never written to memory. With fusion off (-O0)
// every node is its own group: the reference the fused code must match.
#include <stdlib.h>
#include <string.h>

#include "passes.h"

static bool is_gemm_leader(OpKind op) { return op == OP_DENSE || op == OP_DENSE_GRAD_INPUT; }

static bool is_elementwise(const Node *node) {
  const OpInfo *info = op_info(node->op);
  return info->kernel == KERNEL_ELEMENTWISE && node->rng_node < 0;
}

typedef struct Context {
  const Graph *graph;
  const Schedule *schedule;
  int *position;   // [n_nodes] index in the schedule, -1 if absent
  int *consumers;  // [n_nodes] readers within the schedule
  int *reader_start, *readers;  // node v's readers in schedule order: readers[reader_start[v] .. reader_start[v + 1]]
  bool *required;  // [n_nodes] outputs of the schedule: must be materialized
  FusionPlan *plan;
} Context;

// A node another group can read: computed earlier and written to memory.
static bool available(const Context *c, int id, int before) {
  const Node *node = &c->graph->nodes[id];
  if (op_info(node->op)->kernel == KERNEL_NONE) return true;
  int group = c->plan->group_of[id];
  return c->position[id] >= 0 && c->position[id] < before && group >= 0 && c->plan->groups[group].output == id;
}

// The single reader of `id` in the schedule, or -1.
static int only_consumer(const Context *c, int id) {
  if (c->consumers[id] != 1 || c->required[id]) return -1;
  return c->reader_start[id] < c->reader_start[id + 1] ? c->readers[c->reader_start[id]] : -1;
}

static bool same_elements(Shape a, Shape b) { return a.batched == b.batched && shape_size(a) == shape_size(b); }

// Ops a matrix product's epilogue can apply: their templates read only
// operands and attributes (no batch-wide counts, no random draws).
static bool fits_epilogue(const Node *node) {
  const char *expr = op_info(node->op)->expr;
  for (const char *p = strchr(expr, '$'); p; p = strchr(p + 1, '$'))
    if (!(p[1] >= '0' && p[1] <= '9') && strncmp(p + 1, "attr", 4) != 0) return false;
  return true;
}

// Whether an op's template reads its input i ($i): sum_grad(g, like) takes
// only like's shape, and a kernel that computed like would not use it.
static bool reads_operand(const Node *node, int i) {
  const char *expr = op_info(node->op)->expr;
  for (const char *p = strchr(expr, '$'); p; p = strchr(p + 1, '$'))
    if (p[1] - '0' == i && !(p[2] >= '0' && p[2] <= '9')) return true;
  return false;
}

// Extends a group with the elementwise ops that alone read its last value.
static void extend_chain(Context *c, Group *group) {
  while (group->n_members < MAX_GROUP) {
    int tail = group->members[group->n_members - 1];
    int next = only_consumer(c, tail);
    if (next < 0 || c->plan->group_of[next] >= 0) return;
    const Node *node = &c->graph->nodes[next];
    if (!is_elementwise(node) || !same_elements(node->shape, c->graph->nodes[tail].shape)) return;
    if ((group->kind == GROUP_GEMM || group->kind == GROUP_CONV) && !fits_epilogue(node)) return;
    for (int i = 0; i < node->n_inputs; i++) {
      int in = node->inputs[i];
      if (in == tail && !reads_operand(node, i)) return;
      if (in == tail) continue;
      bool inside = false;
      for (int m = 0; m < group->n_members; m++) inside |= group->members[m] == in;
      if (inside || !available(c, in, c->position[group->members[0]])) return;
      Shape shape = c->graph->nodes[in].shape;
      bool broadcast = group->kind == GROUP_ELEMENTWISE && shape_is_per_sample_scalar(shape) && node->shape.batched;
      if (!shape_is_scalar(shape) && !broadcast && !same_elements(shape, node->shape)) return;
    }
    group->members[group->n_members++] = next;
  }
}

// A loss and its gradient in one pass: the gradient op reads the loss's two
// inputs and a scalar already computed.
static int loss_gradient_partner(Context *c, int reduce) {
  const Node *loss = &c->graph->nodes[reduce];
  OpKind grad_op = op_info(loss->op)->gradient_op;
  if (grad_op == OP_INPUT) return -1;  // none
  int x = loss->inputs[0];
  for (int r = c->reader_start[x]; r < c->reader_start[x + 1]; r++) {
    const Node *node = &c->graph->nodes[c->readers[r]];
    if (c->position[node->id] <= c->position[reduce]) continue;
    if (node->op != grad_op || node->inputs[0] != loss->inputs[0] || node->inputs[1] != loss->inputs[1]) continue;
    if (c->plan->group_of[node->id] >= 0) continue;
    int g = node->inputs[2];
    if (op_info(c->graph->nodes[g].op)->kernel != KERNEL_NONE && !available(c, g, c->position[reduce])) continue;
    return node->id;
  }
  return -1;
}

// The loss fused into the last layer: a dense product read only by a loss
// and that loss's gradient, whose other inputs are ready before the product.
static bool gemm_loss_partners(Context *c, int dense, int *loss, int *grad) {
  if (c->required[dense] || c->consumers[dense] != 2) return false;
  for (int r = c->reader_start[dense]; r < c->reader_start[dense + 1]; r++) {
    const Node *node = &c->graph->nodes[c->readers[r]];
    if (c->position[node->id] <= c->position[dense]) continue;
    if (op_info(node->op)->kernel != KERNEL_REDUCE || node->inputs[0] != dense || c->plan->group_of[node->id] >= 0)
      continue;
    int partner = loss_gradient_partner(c, node->id);
    if (partner < 0) return false;
    const Node *g = &c->graph->nodes[partner];
    if (!available(c, node->inputs[1], c->position[dense]) || !available(c, g->inputs[2], c->position[dense]))
      return false;
    *loss = node->id, *grad = partner;
    return true;
  }
  return false;
}

// The bias gradient that sums the same dy a kernel gradient reads (its b), if
// no group has taken it yet.
static int bias_gradient_partner(Context *c, const Node *kernel_grad) {
  int dy = kernel_grad->inputs[1];
  for (int r = c->reader_start[dy]; r < c->reader_start[dy + 1]; r++) {
    const Node *node = &c->graph->nodes[c->readers[r]];
    if (node->op == OP_BIAS_GRAD && node->inputs[0] == kernel_grad->inputs[1] && c->plan->group_of[node->id] < 0)
      return node->id;
  }
  return -1;
}

// The node's only reader when the node's kernel can apply it (OpInfo
// .takes_reader: a maxpool's gradient, an unpool, takes the activation
// gradient after it and applies it at its switches), if no group has taken
// it yet; else -1.
static int reader_partner(Context *c, const Node *node) {
  const OpInfo *info = op_info(node->op);
  if (!info->takes_reader) return -1;
  int reader = only_consumer(c, node->id);
  if (reader < 0 || c->plan->group_of[reader] >= 0) return -1;
  return info->takes_reader(c->graph, node, &c->graph->nodes[reader]) ? reader : -1;
}

// A conv takes the elementwise ops after it (OpInfo .takes_epilogue).
static bool takes_epilogue(const Node *node) {
  const OpInfo *info = op_info(node->op);
  return info->takes_epilogue && info->takes_epilogue(node);
}

static Group *new_group(Context *c, GroupKind kind, int leader) {
  FusionPlan *plan = c->plan;
  Group *group = &plan->groups[plan->n_groups++];
  *group = (Group){.kind = kind, .members = {leader}, .n_members = 1, .second_output = -1};
  return group;
}

static void seal(Context *c, Group *group) {
  int index = (int)(group - c->plan->groups);
  for (int m = 0; m < group->n_members; m++) c->plan->group_of[group->members[m]] = index;
  if (group->kind != GROUP_LOSS) group->output = group->members[group->n_members - 1];
  // It runs where its last member stands, or (a loss) where the loss does.
  group->position = group->kind == GROUP_LOSS || group->kind == GROUP_GEMM_LOSS
                        ? c->position[group->members[0]]
                        : c->position[group->members[group->n_members - 1]];
}

static int compare_groups(const void *a, const void *b) {
  return ((const Group *)a)->position - ((const Group *)b)->position;
}

FusionPlan fuse_schedule(const Graph *g, const Schedule *s, const int *outputs, int n_outputs, bool fuse) {
  FusionPlan plan = {.groups = calloc((size_t)s->n_nodes + 1, sizeof(Group)),
                     .group_of = malloc((size_t)g->n_nodes * sizeof(int))};
  Context c = {.graph = g, .schedule = s, .plan = &plan,
               .position = malloc((size_t)g->n_nodes * sizeof(int)),
               .consumers = calloc((size_t)g->n_nodes, sizeof(int)),
               .required = calloc((size_t)g->n_nodes, sizeof(bool))};
  for (int i = 0; i < g->n_nodes; i++) plan.group_of[i] = c.position[i] = -1;
  for (int p = 0; p < s->n_nodes; p++) {
    const Node *node = &g->nodes[s->nodes[p]];
    c.position[node->id] = p;
    for (int i = 0; i < node->n_inputs; i++) c.consumers[node->inputs[i]]++;
  }
  for (int i = 0; i < n_outputs; i++)
    if (outputs[i] >= 0) c.required[outputs[i]] = true;
  // Each node's readers, in schedule order, so that finding a partner is not a scan of the schedule.
  c.reader_start = calloc((size_t)g->n_nodes + 1, sizeof(int));
  for (int v = 0; v < g->n_nodes; v++) c.reader_start[v + 1] = c.reader_start[v] + c.consumers[v];
  c.readers = malloc(((size_t)c.reader_start[g->n_nodes] + 1) * sizeof(int));
  int *filled = calloc((size_t)g->n_nodes + 1, sizeof(int));
  for (int p = 0; p < s->n_nodes; p++) {
    const Node *node = &g->nodes[s->nodes[p]];
    for (int i = 0; i < node->n_inputs; i++) c.readers[c.reader_start[node->inputs[i]] + filled[node->inputs[i]]++] = node->id;
  }
  free(filled);

  for (int p = 0; p < s->n_nodes; p++) {
    int id = s->nodes[p];
    const Node *node = &g->nodes[id];
    if (plan.group_of[id] >= 0 || op_info(node->op)->kernel == KERNEL_NONE) continue;
    int loss, grad;
    if (fuse && node->op == OP_DENSE && gemm_loss_partners(&c, id, &loss, &grad)) {
      Group *group = new_group(&c, GROUP_GEMM_LOSS, id);
      group->members[group->n_members++] = loss;
      group->members[group->n_members++] = grad;
      group->output = grad;
      group->second_output = loss;
      seal(&c, group);
    } else if (fuse && is_gemm_leader(node->op)) {
      Group *group = new_group(&c, GROUP_GEMM, id);
      extend_chain(&c, group);
      seal(&c, group);
    } else if (fuse && takes_epilogue(node)) {
      Group *group = new_group(&c, GROUP_CONV, id);
      extend_chain(&c, group);
      seal(&c, group);
    } else if (fuse && reader_partner(&c, node) >= 0) {
      Group *group = new_group(&c, GROUP_UNPOOL_GRADIENT, id);
      group->members[group->n_members++] = reader_partner(&c, node);
      seal(&c, group);
    } else if (fuse && op_info(node->op)->kernel == KERNEL_REDUCE && loss_gradient_partner(&c, id) >= 0) {
      Group *group = new_group(&c, GROUP_LOSS, id);
      group->output = loss_gradient_partner(&c, id);
      group->members[group->n_members++] = group->output;
      group->second_output = id;
      seal(&c, group);
    } else if (fuse && is_elementwise(node)) {
      Group *group = new_group(&c, GROUP_ELEMENTWISE, id);
      extend_chain(&c, group);
      seal(&c, group);
    } else if (fuse && node->op == OP_DENSE_GRAD_KERNEL) {
      Group *group = new_group(&c, GROUP_GEMM, id);
      seal(&c, group);
      int bias = bias_gradient_partner(&c, node);
      if (bias >= 0) {  // it sums the columns of the panels the product packs
        group->members[group->n_members++] = bias;
        group->second_output = bias;
        plan.group_of[bias] = (int)(group - plan.groups);
      }
    } else {
      Group *group = new_group(&c, GROUP_SINGLE, id);
      seal(&c, group);
    }
  }
  qsort(plan.groups, (size_t)plan.n_groups, sizeof(Group), compare_groups);
  for (int i = 0; i < plan.n_groups; i++)
    for (int m = 0; m < plan.groups[i].n_members; m++) plan.group_of[plan.groups[i].members[m]] = i;
  free(c.position), free(c.consumers), free(c.required), free(c.reader_start), free(c.readers);
  return plan;
}

bool group_materializes(const Group *group, int node) {
  return group->output == node || group->second_output == node;
}

void fusion_plan_free(FusionPlan *plan) {
  free(plan->groups), free(plan->group_of);
  memset(plan, 0, sizeof *plan);
}
