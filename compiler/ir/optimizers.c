// optimizers.c — the compiler's table of optimizers, one row each from
// runtime/aert_optimizers.def (the table the runtime's aert_optimizer enum is
// made from too), and the queries on a step's optimizer.
#include <math.h>
#include <string.h>

#include "ir.h"

#define UNPACK(...) __VA_ARGS__
#define SETTING(name, fallback, range) {name, fallback, RANGE_##range}
const OptimizerInfo optimizer_table[OPTIMIZER_COUNT] = {
#define OPTIMIZER(kind, name, kernel, takes_t, states, last_state_if, settings)                                  \
  [OPTIMIZER_##kind] = {name, "AERT_" #kind, #kernel, takes_t, {UNPACK states}, last_state_if, {UNPACK settings}},
#include "aert_optimizers.def"
};
#undef SETTING
#undef UNPACK

const OptimizerInfo *optimizer_named(const char *name) {
  for (int i = 0; i < OPTIMIZER_COUNT; i++)
    if (strcmp(optimizer_table[i].name, name) == 0) return &optimizer_table[i];
  return NULL;
}

int optimizer_n_settings(const OptimizerInfo *info) {
  int n = 0;
  while (n < MAX_OPTIMIZER_SETTINGS && info->settings[n].name) n++;
  return n;
}

void optimizer_list(char *out, size_t size) {
  size_t used = 0;
  out[0] = '\0';
  for (int i = 0; i < OPTIMIZER_COUNT && used < size; i++) {
    const char *sep = i == 0 ? "" : i == OPTIMIZER_COUNT - 1 ? " and " : ", ";
    used += (size_t)snprintf(out + used, size - used, "%s%s", sep, optimizer_table[i].name);
  }
}

const char *setting_range_text(SettingRange range) {
  switch (range) {
  case RANGE_POSITIVE: return "more than 0";
  case RANGE_FRACTION: return "from 0 to less than 1";
  case RANGE_NONNEGATIVE: return "at least 0";
  }
  return "";
}

bool setting_in_range(SettingRange range, double v) {
  if (!isfinite(v)) return false;
  switch (range) {
  case RANGE_POSITIVE: return v > 0;
  case RANGE_FRACTION: return v >= 0 && v < 1;
  case RANGE_NONNEGATIVE: return v >= 0;
  }
  return false;
}

void step_set_optimizer(Step *step, OptimizerKind kind) {
  const OptimizerInfo *info = &optimizer_table[kind];
  step->optimizer = kind;
  for (int i = 0; i < MAX_OPTIMIZER_SETTINGS; i++) step->settings[i] = info->settings[i].name ? info->settings[i].fallback : 0;
}

double step_setting(const Step *step, const char *name) {
  const OptimizerInfo *info = &optimizer_table[step->optimizer];
  for (int i = 0; i < optimizer_n_settings(info); i++)
    if (strcmp(info->settings[i].name, name) == 0) return step->settings[i];
  return NAN;
}

int step_n_states(const Step *step) {
  const OptimizerInfo *info = &optimizer_table[step->optimizer];
  int n = 0;
  while (n < MAX_OPTIMIZER_STATES && info->states[n]) n++;
  if (info->last_state_if && step_setting(step, info->last_state_if) == 0) n--;
  return n;
}

void step_optimizer_format(const Step *step, bool all, char *out, size_t size) {
  const OptimizerInfo *info = &optimizer_table[step->optimizer];
  char lr[160];
  step_lr_format(step, lr, sizeof lr);
  size_t used = (size_t)snprintf(out, size, "%s(lr=%s", info->name, lr);
  for (int i = 1; i < optimizer_n_settings(info) && used < size; i++)
    if (all || step->settings[i] != info->settings[i].fallback)
      used += (size_t)snprintf(out + used, size - used, ", %s=%g", info->settings[i].name, step->settings[i]);
  if (used < size) snprintf(out + used, size - used, ")");
}
