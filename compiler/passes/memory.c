// pass_memory.c — arena offsets for one schedule. Every value a group writes
// is live from that group to the last group that reads it (or to the end,
// for the schedule's outputs); a dead value's slot is reused, first fit.
// Batched values are sized per sample and the fixed values (weight
// gradients, scalars, scratch) live in a second pool after them.
#include <stdlib.h>
#include <string.h>

#include "passes.h"

enum { ALIGN_ELEMS = 16 };  // 64-byte slots for float

static size_t round_up(size_t x) { return (x + ALIGN_ELEMS - 1) / ALIGN_ELEMS * ALIGN_ELEMS; }

// Intervals currently in use in one pool, kept sorted by offset.
typedef struct Pool {
  size_t *begin, *end;
  int *owner;  // node id, or -1 - group for scratch
  int n, cap;
  size_t high_water;
  size_t in_use;  // the intervals' total size: end[n-1] - in_use is the room in the gaps
} Pool;

static size_t pool_take(Pool *pool, size_t size, int owner) {
  size_t at = 0;
  int index = 0;
  if (pool->n > 0 && pool->end[pool->n - 1] - pool->in_use < size) {
    index = pool->n, at = pool->end[pool->n - 1];  // no gap is large enough: after the last (no scan)
  } else {
    for (; index < pool->n; index++) {  // first gap that fits
      if (pool->begin[index] >= at + size) break;
      if (pool->end[index] > at) at = pool->end[index];
    }
  }
  if (pool->n == pool->cap) {
    pool->cap = pool->cap ? pool->cap * 2 : 16;
    pool->begin = realloc(pool->begin, (size_t)pool->cap * sizeof(size_t));
    pool->end = realloc(pool->end, (size_t)pool->cap * sizeof(size_t));
    pool->owner = realloc(pool->owner, (size_t)pool->cap * sizeof(int));
  }
  memmove(pool->begin + index + 1, pool->begin + index, (size_t)(pool->n - index) * sizeof(size_t));
  memmove(pool->end + index + 1, pool->end + index, (size_t)(pool->n - index) * sizeof(size_t));
  memmove(pool->owner + index + 1, pool->owner + index, (size_t)(pool->n - index) * sizeof(int));
  pool->begin[index] = at, pool->end[index] = at + size, pool->owner[index] = owner;
  pool->n++;
  pool->in_use += size;
  if (at + size > pool->high_water) pool->high_water = at + size;
  return at;
}

// Releases owner's interval, which begins at `at`: found by bisection (the
// intervals are sorted and disjoint; empty ones may share a begin).
static void pool_release(Pool *pool, int owner, size_t at) {
  int lo = 0, hi = pool->n;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (pool->begin[mid] < at) lo = mid + 1;
    else hi = mid;
  }
  for (int i = lo; i < pool->n && pool->begin[i] == at; i++) {
    if (pool->owner[i] != owner) continue;
    pool->in_use -= pool->end[i] - pool->begin[i];
    memmove(pool->begin + i, pool->begin + i + 1, (size_t)(pool->n - i - 1) * sizeof(size_t));
    memmove(pool->end + i, pool->end + i + 1, (size_t)(pool->n - i - 1) * sizeof(size_t));
    memmove(pool->owner + i, pool->owner + i + 1, (size_t)(pool->n - i - 1) * sizeof(int));
    pool->n--;
    return;
  }
}

static void pool_free(Pool *pool) { free(pool->begin), free(pool->end), free(pool->owner); }

MemoryPlan plan_memory(const Graph *g, const FusionPlan *fusion, const int *pinned, int n_pinned,
                       const bool *outside, const size_t *scratch_size, bool reuse) {
  MemoryPlan plan = {.has_slot = calloc((size_t)g->n_nodes, sizeof(bool)),
                     .offset = calloc((size_t)g->n_nodes, sizeof(size_t)),
                     .scratch = calloc((size_t)fusion->n_groups + 1, sizeof(size_t))};
  // The last group that reads each value.
  int *last_use = malloc((size_t)g->n_nodes * sizeof(int));
  for (int i = 0; i < g->n_nodes; i++) last_use[i] = -1;
  for (int gi = 0; gi < fusion->n_groups; gi++) {
    const Group *group = &fusion->groups[gi];
    for (int m = 0; m < group->n_members; m++) {
      const Node *node = &g->nodes[group->members[m]];
      for (int i = 0; i < node->n_inputs; i++) last_use[node->inputs[i]] = gi;
    }
  }
  for (int i = 0; i < n_pinned; i++)
    if (pinned[i] >= 0) last_use[pinned[i]] = fusion->n_groups;

  Pool batched = {0}, fixed = {0};
  for (int gi = 0; gi < fusion->n_groups; gi++) {
    const Group *group = &fusion->groups[gi];
    int written[2] = {group->output, group->second_output};
    for (int w = 0; w < 2; w++) {
      int id = written[w];
      if (id < 0 || (outside && outside[id])) continue;
      const Node *node = &g->nodes[id];
      size_t size = round_up(shape_size(node->shape));
      plan.has_slot[id] = true;
      if (node->shape.batched) {
        plan.unplanned_per_sample += size;
        plan.offset[id] = pool_take(&batched, size, id);
      } else {
        plan.unplanned_fixed += size;
        plan.offset[id] = pool_take(&fixed, size, id);
      }
    }
    if (scratch_size && scratch_size[gi] > 0) {
      size_t size = round_up(scratch_size[gi]);
      plan.unplanned_fixed += size;
      plan.scratch[gi] = pool_take(&fixed, size, -1 - gi);
      pool_release(&fixed, -1 - gi, plan.scratch[gi]);  // only while the group runs
    }
    if (!reuse) continue;
    // Values whose last reader is this group are dead after it.
    for (int m = 0; m < group->n_members; m++) {
      const Node *node = &g->nodes[group->members[m]];
      for (int i = 0; i < node->n_inputs; i++) {
        int in = node->inputs[i];
        if (last_use[in] != gi || !plan.has_slot[in]) continue;
        pool_release(g->nodes[in].shape.batched ? &batched : &fixed, in, plan.offset[in]);
        last_use[in] = -2;  // released once
      }
    }
    for (int w = 0; w < 2; w++)  // written but never read
      if (written[w] >= 0 && plan.has_slot[written[w]] && last_use[written[w]] == -1)
        pool_release(g->nodes[written[w]].shape.batched ? &batched : &fixed, written[w], plan.offset[written[w]]);
  }
  plan.per_sample = batched.high_water;
  plan.fixed = fixed.high_water;
  pool_free(&batched), pool_free(&fixed);
  free(last_use);
  return plan;
}

void memory_plan_free(MemoryPlan *plan) {
  free(plan->has_slot), free(plan->offset), free(plan->scratch);
  memset(plan, 0, sizeof *plan);
}
