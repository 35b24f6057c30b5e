// summary.c — what `aec --summary` prints: the model's layers like
// Keras's model.summary(), and its steps.
#include <string.h>

#include "tools.h"

void print_summary(FILE *out, const Graph *g) {
  int width = 24;  // the Op column, wider for a longer description (a tied layer's)
  for (int i = 0; i < g->n_layers; i++)
    if ((int)strlen(g->layers[i].description) > width) width = (int)strlen(g->layers[i].description);
  fprintf(out, "%-28s %-*s %-16s %12s %14s\n", "Layer", width, "Op", "Output shape", "Params", "FLOPs/sample");
  long params = 0;
  double flops = 0;
  for (int i = 0; i < g->n_layers; i++) {
    const Layer *l = &g->layers[i];
    char shape[64];
    shape_format(g->nodes[l->node].shape, shape, sizeof shape);
    fprintf(out, "%-28s %-*s %-16s %12ld %14.0f\n", l->name, width, l->description, shape, l->params, l->flops);
    params += l->params;
    flops += l->flops;
  }
  fprintf(out, "Total params: %ld (%zu in the parameter buffer)\n", params, g->n_param_elems);
  size_t state = 0;  // a batchnorm's running statistics
  for (int i = 0; i < g->n_params; i++) state += g->params[i].state ? g->params[i].size : 0;
  if (state) fprintf(out, "Running statistics (not trained, in the buffer): %zu\n", state);
  fprintf(out, "Forward FLOPs per sample: %.0f\n", flops);
  for (int i = 0; i < g->n_steps; i++) {
    const Step *s = &g->steps[i];
    char optimizer[400];
    step_optimizer_format(s, false, optimizer, sizeof optimizer);
    fprintf(out, "step %d: minimize %s over %s with %s\n", i, s->loss_name, s->nets_text, optimizer);
  }
}
