// datacheck.c — the data set against the model's losses, before any work:
// bce's target must lie in [0, 1], and a bce whose target is the input (or
// a reshape of it) makes that a property of the data. A Kaggle-style CSV of
// pixels 0–255 trained to a negative "bce" without a word; now the first
// value out of range is named, with its file, and --scale is suggested.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

double aert_data_scale = 0;

// The node id of items[i]'s input `k`, or -1.
static long input_of(const json_value *node, size_t k) {
  const json_value *inputs = json_get(node, "inputs");
  uint64_t id;
  if (!inputs || inputs->type != JSON_ARRAY || k >= inputs->count || !json_as_u64(&inputs->items[k], &id)) return -1;
  return (long)id;
}

static const char *op_of(const json_value *nodes, long id) {
  if (id < 0 || (size_t)id >= nodes->count) return NULL;
  const json_value *op = json_get(&nodes->items[id], "op");
  return op && op->type == JSON_STRING ? op->text : NULL;
}

// The .ae line of the first bce whose target is the input; 0 when none.
static long bce_on_input(const aert_model *model) {
  if (!model->description) return 0;
  char error[128];
  json_value *d = json_parse(model->description, strlen(model->description), error, sizeof error);
  const json_value *nodes = d ? json_get(d, "nodes") : NULL;
  long line = 0;
  for (size_t i = 0; nodes && nodes->type == JSON_ARRAY && i < nodes->count && !line; i++) {
    const char *op = op_of(nodes, (long)i);
    if (!op || (strcmp(op, "bce") != 0 && strcmp(op, "bce_logits") != 0)) continue;
    long target = input_of(&nodes->items[i], 1);
    for (int hops = 0; hops < 8 && op_of(nodes, target) && strcmp(op_of(nodes, target), "reshape") == 0; hops++)
      target = input_of(&nodes->items[target], 0);
    const char *target_op = op_of(nodes, target);
    uint64_t at = 0;
    const json_value *where = json_get(&nodes->items[i], "line");
    if (target_op && strcmp(target_op, "input") == 0) line = where && json_as_u64(where, &at) && at > 0 ? (long)at : -1;
  }
  json_free(d);
  return line;
}

bool aert_check_bce_targets(const aert_model *model, const aert_dataset *data) {
  long line = bce_on_input(model);
  if (!line) return true;
  size_t total = data->n * data->sample_size;
  for (size_t i = 0; i < total; i++) {
    aert_real v = data->x[i];
    if (v >= 0 && v <= 1) continue;
    char where[300] = "";
    if (line > 0) snprintf(where, sizeof where, " (%s:%ld)", model->source_file ? model->source_file : "?", line);
    aert_error("%s: sample %zu, value %zu is %g, outside [0, 1]; the model's bce%s takes the input as its target, "
               "which must lie in [0, 1]%s", data->path, i / data->sample_size, i % data->sample_size, (double)v,
               where, v > 1 && v <= 255 && v == floor(v) ? " (pixels from 0 to 255: --scale 255)" : "");
    return false;
  }
  return true;
}
