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

// Intervals currently in use in one pool: a list sorted by offset (slots
// linked by next/prev, -1 ends it; freed slots are reused), so that taking
// and releasing never move the others.
typedef struct Pool {
  size_t *begin, *end;
  int *next, *prev;
  int head, tail, free_slot;  // -1: none
  int n_slots, cap;
  size_t high_water;
  size_t in_use;  // the intervals' total size: the last end - in_use is the room in the gaps
} Pool;

#define POOL_INIT {.head = -1, .tail = -1, .free_slot = -1}

// First fit: the lowest offset where `size` fits. Returns the offset and the
// interval's slot (for pool_release).
static size_t pool_take(Pool *pool, size_t size, int *slot_out) {
  size_t at = 0;
  int after = -1;  // the slot the new interval follows, or -1 for the head
  if (pool->tail >= 0 && pool->end[pool->tail] - pool->in_use < size) {
    after = pool->tail, at = pool->end[pool->tail];  // no gap is large enough: after the last (no scan)
  } else {
    for (int i = pool->head; i >= 0; after = i, i = pool->next[i]) {  // first gap that fits
      if (pool->begin[i] >= at + size) break;
      if (pool->end[i] > at) at = pool->end[i];
    }
  }
  int slot = pool->free_slot;
  if (slot >= 0) {
    pool->free_slot = pool->next[slot];
  } else {
    if (pool->n_slots == pool->cap) {
      pool->cap = pool->cap ? pool->cap * 2 : 16;
      pool->begin = realloc(pool->begin, (size_t)pool->cap * sizeof(size_t));
      pool->end = realloc(pool->end, (size_t)pool->cap * sizeof(size_t));
      pool->next = realloc(pool->next, (size_t)pool->cap * sizeof(int));
      pool->prev = realloc(pool->prev, (size_t)pool->cap * sizeof(int));
      if (!pool->begin || !pool->end || !pool->next || !pool->prev) fputs("aec: out of memory\n", stderr), exit(1);
    }
    slot = pool->n_slots++;
  }
  int before = after >= 0 ? pool->next[after] : pool->head;
  pool->begin[slot] = at, pool->end[slot] = at + size;
  pool->prev[slot] = after, pool->next[slot] = before;
  if (after >= 0) pool->next[after] = slot;
  else pool->head = slot;
  if (before >= 0) pool->prev[before] = slot;
  else pool->tail = slot;
  pool->in_use += size;
  if (at + size > pool->high_water) pool->high_water = at + size;
  *slot_out = slot;
  return at;
}

static void pool_release(Pool *pool, int slot) {
  int p = pool->prev[slot], n = pool->next[slot];
  if (p >= 0) pool->next[p] = n;
  else pool->head = n;
  if (n >= 0) pool->prev[n] = p;
  else pool->tail = p;
  pool->in_use -= pool->end[slot] - pool->begin[slot];
  pool->next[slot] = pool->free_slot, pool->free_slot = slot;
}

static void pool_free(Pool *pool) { free(pool->begin), free(pool->end), free(pool->next), free(pool->prev); }

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

  Pool batched = POOL_INIT, fixed = POOL_INIT;
  int *slot = malloc(((size_t)g->n_nodes + 1) * sizeof(int));  // each value's interval in its pool
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
        plan.offset[id] = pool_take(&batched, size, &slot[id]);
      } else {
        plan.unplanned_fixed += size;
        plan.offset[id] = pool_take(&fixed, size, &slot[id]);
      }
    }
    if (scratch_size && scratch_size[gi] > 0) {
      size_t size = round_up(scratch_size[gi]);
      plan.unplanned_fixed += size;
      int scratch_slot;
      plan.scratch[gi] = pool_take(&fixed, size, &scratch_slot);
      pool_release(&fixed, scratch_slot);  // only while the group runs
    }
    if (!reuse) continue;
    // Values whose last reader is this group are dead after it.
    for (int m = 0; m < group->n_members; m++) {
      const Node *node = &g->nodes[group->members[m]];
      for (int i = 0; i < node->n_inputs; i++) {
        int in = node->inputs[i];
        if (last_use[in] != gi || !plan.has_slot[in]) continue;
        pool_release(g->nodes[in].shape.batched ? &batched : &fixed, slot[in]);
        last_use[in] = -2;  // released once
      }
    }
    for (int w = 0; w < 2; w++)  // written but never read
      if (written[w] >= 0 && plan.has_slot[written[w]] && last_use[written[w]] == -1)
        pool_release(g->nodes[written[w]].shape.batched ? &batched : &fixed, slot[written[w]]);
  }
  plan.per_sample = batched.high_water;
  plan.fixed = fixed.high_water;
  pool_free(&batched), pool_free(&fixed);
  free(last_use), free(slot);
  return plan;
}

void memory_plan_free(MemoryPlan *plan) {
  free(plan->has_slot), free(plan->offset), free(plan->scratch);
  memset(plan, 0, sizeof *plan);
}
