// schedule.c — ramp and cosine schedules (aert.h's aert_schedule): the one
// formula behind an optimizer's scheduled lr (train sets ctx->lr from it
// before each batch) and a schedule in a loss (the generated functions call
// it with ctx->progress). The cosine is PyTorch's CosineAnnealingLR, eta_t =
// eta_min + (eta_max - eta_min) * (1 + cos(pi * T_cur / T_max)) / 2, with
// T_cur the fractional epoch and T_max = epochs, held at its end value after
// (CosineAnnealingLR would climb again); the ramp is the linear warm-up of
// a KL weight (Bowman et al., 2016) or of a learning rate.
#include <math.h>

#include "core.h"

double aert_schedule_value(aert_schedule s, double progress) {
  if (s.kind == AERT_SCHEDULE_CONSTANT) return s.from;
  double t = progress > 0 ? progress : 0;
  if (t >= s.epochs) return s.to;
  if (s.kind == AERT_SCHEDULE_RAMP) return s.from + (s.to - s.from) * (t / s.epochs);
  return s.to + (s.from - s.to) * (1 + cos(M_PI * t / s.epochs)) / 2;
}
