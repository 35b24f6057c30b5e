// schedule.c — what one generated function computes: every node its outputs
// need (dead-code elimination), in id order, which is topological.
#include <stdlib.h>

#include "passes.h"

Schedule schedule_for(const Graph *graph, const int *outputs, int n_outputs) {
  bool *live = calloc((size_t)graph->n_nodes + 1, sizeof *live);
  for (int i = 0; i < n_outputs; i++)
    if (outputs[i] >= 0) live[outputs[i]] = true;
  for (int id = graph->n_nodes - 1; id >= 0; id--) {
    if (!live[id]) continue;
    const Node *node = &graph->nodes[id];
    for (int i = 0; i < node->n_inputs; i++) live[node->inputs[i]] = true;
  }
  Schedule schedule = {.nodes = malloc(((size_t)graph->n_nodes + 1) * sizeof(int))};
  for (int id = 0; id < graph->n_nodes; id++)
    if (live[id]) schedule.nodes[schedule.n_nodes++] = id;
  free(live);
  return schedule;
}

void schedule_free(Schedule *schedule) {
  free(schedule->nodes);
  schedule->nodes = NULL;
  schedule->n_nodes = 0;
}
