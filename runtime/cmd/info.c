// info.c — the commands that print the model itself: summary (its layers,
// like Keras's model.summary()) and describe (the JSON aec embedded).
#include <string.h>

#include "cmd.h"

// ---------------------------------------------------------------- summary
static void shape_with_batch(char *out, size_t size, int rank, const int *shape) {
  size_t n = (size_t)snprintf(out, size, "(None");
  for (int i = 0; i < rank && n < size; i++) n += (size_t)snprintf(out + n, size - n, ", %d", shape[i]);
  if (n < size) snprintf(out + n, size - n, ")");
}

// 1234567 -> "1,234,567"
static void with_commas(char *out, size_t size, double v) {
  char digits[64];
  snprintf(digits, sizeof digits, "%.0f", v);
  size_t len = strlen(digits), o = 0;
  for (size_t i = 0; i < len && o + 2 < size; i++) {
    if (i > 0 && (len - i) % 3 == 0 && digits[i - 1] != '-') out[o++] = ',';
    out[o++] = digits[i];
  }
  out[o] = 0;
}

int aert_cmd_summary(const aert_model *model, const aert_options *options) {
  (void)options;
  char shape[96], params[32], flops[32];
  int width = 26, names = 28;  // the Op and Layer columns, wider for longer texts (a tied layer's)
  for (int i = 0; i < model->n_layers; i++) {
    if ((int)strlen(model->layers[i].op) > width) width = (int)strlen(model->layers[i].op);
    if ((int)strlen(model->layers[i].name) > names) names = (int)strlen(model->layers[i].name);
  }
  char rule[512];  // as wide as the table
  int rule_width = names + 1 + width + 1 + 18 + 1 + 10 + 1 + 12;
  if (rule_width >= (int)sizeof rule) rule_width = (int)sizeof rule - 1;
  memset(rule, '-', (size_t)rule_width);
  rule[rule_width] = 0;
  fprintf(stderr, "Model: \"%s\" (%s)\n%s\n", model->name, model->source_file ? model->source_file : "?", rule);
  fprintf(stderr, "%-*s %-*s %-18s %10s %12s\n", names, "Layer", width, "Op", "Output shape", "Params", "FLOPs");
  fprintf(stderr, "%s\n", rule);
  shape_with_batch(shape, sizeof shape, model->input_rank, model->input_shape);
  fprintf(stderr, "%-*s %-*s %-18s %10s %12s\n", names, "x", width, "input", shape, "0", "0");
  double total_flops = 0;
  long total_params = 0;
  for (int i = 0; i < model->n_layers; i++) {
    const aert_layer *l = &model->layers[i];
    shape_with_batch(shape, sizeof shape, l->rank, l->shape);
    with_commas(params, sizeof params, (double)l->params);
    with_commas(flops, sizeof flops, l->flops);
    fprintf(stderr, "%-*s %-*s %-18s %10s %12s\n", names, l->name, width, l->op, shape, params, flops);
    total_flops += l->flops;
    total_params += l->params;
  }
  fprintf(stderr, "%s\n", rule);
  size_t trainable = 0, state = 0;  // state: a batchnorm's running statistics
  for (int i = 0; i < model->n_params; i++) *(AERT_PARAM_IS_STATE(&model->params[i]) ? &state : &trainable) += model->params[i].size;
  with_commas(params, sizeof params, (double)trainable);
  with_commas(flops, sizeof flops, total_flops);
  fprintf(stderr, "Total params: %s (%s)\n", params, sizeof(aert_real) == 8 ? "float64" : "float32");
  if (state) fprintf(stderr, "Running statistics (not trained): %zu\n", state);
  fprintf(stderr, "Forward FLOPs per sample: %s\n", flops);
  if (total_params != (long)trainable)
    aert_warning("the layers list %ld parameters, the model holds %zu", total_params, trainable);
  printf("params %zu\nflops_per_sample %.0f\n", trainable, total_flops);
  return AERT_EXIT_OK;
}

// --------------------------------------------------------------- describe
int aert_cmd_describe(const aert_model *model, const aert_options *options) {
  (void)options;
  if (!model->description) {
    aert_error("this program carries no model description");
    return AERT_EXIT_FAILURE;
  }
  fputs(model->description, stdout);
  return ferror(stdout) ? AERT_EXIT_FAILURE : AERT_EXIT_OK;
}
