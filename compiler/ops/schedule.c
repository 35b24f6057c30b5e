// schedule.c — the schedules ramp(from, to, epochs) and cosine(from, to,
// epochs): scalars that change as training goes on, valued at each batch from
// the fractional epoch (the runtime's ctx->progress: epoch index + batch
// index / batches per epoch, 0 at the first batch). A schedule is storage,
// like a constant: no kernel computes it; every generated function that
// reads one declares its value at its start through the runtime's
// aert_schedule_value, the one formula that an optimizer's scheduled lr uses
// too. It has no input, so no gradient flows to it: the autodiff treats it
// as the constant it is during one batch. Its attributes are from, to and
// epochs.
#include <math.h>

#include "ops.h"

const OpInfo OP_RAMP_row = {.kernel = KERNEL_NONE, .shape = shape_scalar, .pure = true, .schedule = true};
const OpInfo OP_COSINE_row = {.kernel = KERNEL_NONE, .shape = shape_scalar, .pure = true, .schedule = true};

const char *schedule_problem(const double *numbers) {
  if (!isfinite(numbers[1] - numbers[0])) return "to - from must be a finite number (below 1.7e308)";
  if (!(numbers[2] > 0) || !isfinite(numbers[2]))
    return "epochs must be more than 0 (the epochs over which the value goes from `from` to `to`)";
  return NULL;
}

const char *schedule_c_kind(OpKind op) { return op == OP_COSINE ? "AERT_SCHEDULE_COSINE" : "AERT_SCHEDULE_RAMP"; }

void emit_schedule_value(Emitter *e, const Node *node) {
  emit_line(e, "  const real %s[1] = {(real)aert_schedule_value((aert_schedule){%s, %.17g, %.17g, %.17g}, ctx->progress)};",
            node->name, schedule_c_kind(node->op), node->attr[0], node->attr[1], node->attr[2]);
}
