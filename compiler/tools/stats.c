// stats.c — aec --stats: per generated function, kernels before and after
// fusion, arena bytes before and after planning (at the train block's
// batch), FLOPs per sample; a table on stderr, `name value` figures on `out`.
#include "tools.h"

void print_stats(FILE *out, const ProgramPlan *plan, DType dtype) {
  const Graph *g = plan->graph;
  FunctionPlan *const *plans = plan->functions;
  int n_plans = plan->n_functions;
  size_t per_sample = plan->arena_per_sample, fixed = plan->arena_fixed;
  size_t bytes = dtype == DTYPE_F64 ? 8 : 4;
  int batch = g->train.batch;
  fprintf(stderr, "%-24s %8s %8s %14s %14s %14s\n", "function", "nodes", "kernels", "arena_unplanned", "arena_planned",
          "flops/sample");
  for (int p = 0; p < n_plans; p++) {
    const FunctionPlan *fp = plans[p];
    if (!fp) continue;
    const char *name = fp->role;
    int nodes = 0;
    double flops = 0;
    for (int i = 0; i < fp->schedule.n_nodes; i++) {
      const Node *node = &g->nodes[fp->schedule.nodes[i]];
      if (op_info(node->op)->kernel == KERNEL_NONE) continue;
      nodes++;
      if (op_info(node->op)->flops) {
        double f = op_info(node->op)->flops(g, node);
        flops += node_uses_batch(g, node) ? f : f / batch;
      }
    }
    size_t unplanned = (fp->memory.unplanned_per_sample * (size_t)batch + fp->memory.unplanned_fixed) * bytes;
    size_t planned = (fp->memory.per_sample * (size_t)batch + fp->memory.fixed) * bytes;
    fprintf(stderr, "%-24s %8d %8d %14zu %14zu %14.0f\n", name, nodes, fp->fusion.n_groups, unplanned, planned, flops);
    char key[300];
    snprintf(key, sizeof key, "%s", name);
    for (char *c = key; *c; c++)
      if (*c == ' ') *c = '.';
    fprintf(out, "kernels_before.%s %d\nkernels_after.%s %d\narena_bytes_before.%s %zu\narena_bytes_after.%s %zu\n"
            "flops_per_sample.%s %.0f\n", key, nodes, key, fp->fusion.n_groups, key, unplanned, key, planned, key, flops);
  }
  fprintf(out, "arena_bytes %zu\n", (per_sample * (size_t)batch + fixed) * bytes);
}

