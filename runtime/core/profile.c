// profile.c — train --profile: the time each generated kernel takes. The
// generated code wraps every kernel call in TIMED(), which adds to
// ctx->kernel_seconds when it is set; training sets it, evaluation does not.
// The time-kernels command (cmd/devcheck.c) reads the same counters.
#include <stdio.h>
#include <stdlib.h>

#include "core.h"

double aert_seconds(void) { return aert_now(); }

bool aert_profile_start(const aert_model *model, aert_ctx *ctx) {
  size_t n = model->n_kernels > 0 ? (size_t)model->n_kernels : 1;
  ctx->kernel_seconds = calloc(n, sizeof(double));
  ctx->kernel_calls = calloc(n, sizeof(double));
  ctx->kernel_samples = calloc(n, sizeof(double));
  if (!ctx->kernel_seconds || !ctx->kernel_calls || !ctx->kernel_samples) {
    aert_error("out of memory for the kernel profile");
    return false;
  }
  return true;
}

static double kernel_flops(const aert_kernel *k, double calls, double samples) {
  return k->flops_per_sample * samples + k->flops_per_call * calls;
}

void aert_profile_gemm_totals(const aert_model *model, const aert_ctx *ctx, double *seconds, double *flops) {
  *seconds = *flops = 0;
  for (int i = 0; i < model->n_kernels; i++)
    if (model->kernels[i].is_gemm) {
      *seconds += ctx->kernel_seconds[i];
      *flops += kernel_flops(&model->kernels[i], ctx->kernel_calls[i], ctx->kernel_samples[i]);
    }
}

// A table on stderr, slowest first, and figures on stdout: the time and
// rate of all kernels and of the matrix products alone.
void aert_profile_report(const aert_model *model, aert_ctx *ctx) {
  if (!ctx->kernel_seconds) return;
  int n = model->n_kernels;
  int *order = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
  for (int i = 0; i < n; i++) order[i] = i;
  for (int i = 1; i < n; i++)  // insertion sort by time, descending
    for (int j = i; j > 0 && ctx->kernel_seconds[order[j]] > ctx->kernel_seconds[order[j - 1]]; j--) {
      int t = order[j];
      order[j] = order[j - 1], order[j - 1] = t;
    }
  double total = 0, gemm_seconds, gemm_flops;
  for (int i = 0; i < n; i++) total += ctx->kernel_seconds[i];
  aert_profile_gemm_totals(model, ctx, &gemm_seconds, &gemm_flops);
  fprintf(stderr, "%-44s %6s %10s %7s %10s\n", "kernel", "line", "seconds", "share", "GFLOP/s");
  for (int r = 0; r < n; r++) {
    int i = order[r];
    if (ctx->kernel_calls[i] == 0) continue;
    double s = ctx->kernel_seconds[i];
    double flops = kernel_flops(&model->kernels[i], ctx->kernel_calls[i], ctx->kernel_samples[i]);
    fprintf(stderr, "%-44s %6d %10.4f %6.1f%% %10.1f\n", model->kernels[i].name, model->kernels[i].line, s,
            total > 0 ? 100 * s / total : 0, s > 0 ? flops / s / 1e9 : 0);
  }
  printf("kernel_seconds %.6g\n", total);
  printf("gemm_seconds %.6g\n", gemm_seconds);
  printf("gemm_gflops %.6g\n", gemm_seconds > 0 ? gemm_flops / gemm_seconds / 1e9 : 0);
  free(order);
  free(ctx->kernel_seconds), free(ctx->kernel_calls), free(ctx->kernel_samples);
  ctx->kernel_seconds = ctx->kernel_calls = ctx->kernel_samples = NULL;
}
