// devcheck.c — the developer checks of generated kernels: gradcheck, each
// step's analytic gradient against central finite differences on a perturbed
// initialisation and the first batch of the data; and time-kernels, the
// kernels of every step timed on that batch (profile.c counts the time).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define STREAM_GRADCHECK 0x67726164ULL  // a stream of the seed apart from aert.h's
#define WORST_SHOWN 10

typedef struct grad_error {
  int param;
  size_t element;
  double analytic, numeric, error;
} grad_error;

// True when parameter p belongs to one of the step's nets: its name starts
// with "<net>." for a net named in step->nets ("encoder, decoder").
static bool param_in_step(const aert_param *p, const aert_step *step) {
  const char *nets = step->nets ? step->nets : "";
  while (*nets) {
    while (*nets == ' ' || *nets == ',') nets++;
    size_t n = strcspn(nets, ", ");
    if (n && strncmp(p->name, nets, n) == 0 && p->name[n] == '.') return true;
    nets += n;
  }
  return false;
}

// Moves every parameter by a seeded U(-0.1, 0.1) * its Glorot limit, so
// biases are not all zero and no unit sits exactly at a kink.
static void perturb_params(const aert_model *model, aert_ctx *ctx) {
  for (int i = 0; i < model->n_params; i++) {
    const aert_param *p = &model->params[i];
    double scale = 0.1 * aert_glorot_limit(p);
    uint64_t key = aert_stream_key(ctx->seed, STREAM_GRADCHECK, (uint64_t)i);
    for (size_t e = 0; e < p->size; e++)
      ctx->params[p->offset + e] += (aert_real)((2.0 * aert_uniform01(key, e) - 1.0) * scale);
  }
}

// The relative error, with a floor on the scale for gradients near zero
// (where the finite difference is mostly rounding noise: in double, a loss
// near 1 rounds by about 1e-16, which the central difference divides by
// 2e-6, so about 1e-10 of noise, 1e-5 of the floor; with a floor of 1e-6,
// batchnorm.ae's gradient of 1.7e-7 in one element scored 1.4e-4 on an AVX2
// machine from that noise alone).
static double relative_error(double numeric, double analytic) {
  double floor_scale = sizeof(aert_real) == 8 ? 1e-5 : 1e-3;
  double scale = fabs(numeric) + fabs(analytic);
  return fabs(numeric - analytic) / (scale > floor_scale ? scale : floor_scale);
}

// The central difference of the step's loss in one element.
static double numeric_gradient(const aert_model *model, aert_ctx *ctx, int step, const aert_real *x, int n,
                               aert_real *w) {
  const aert_real h = sizeof(aert_real) == 8 ? (aert_real)1e-6 : (aert_real)1e-3;
  aert_real saved = *w;
  aert_real up = saved + h, down = saved - h;
  *w = up;
  double plus = model->loss_and_grad(ctx, step, x, n);
  *w = down;
  double minus = model->loss_and_grad(ctx, step, x, n);
  *w = saved;
  return (plus - minus) / ((double)up - (double)down);
}

static void keep_worst(grad_error *worst, int *count, grad_error e) {
  int at;
  if (*count < WORST_SHOWN) {
    at = (*count)++;
  } else {
    at = WORST_SHOWN - 1;
    if (worst[at].error >= e.error) return;
  }
  worst[at] = e;
  for (int i = at; i > 0 && worst[i].error > worst[i - 1].error; i--) {
    grad_error t = worst[i];
    worst[i] = worst[i - 1];
    worst[i - 1] = t;
  }
}

// Checks step s; returns its largest error.
static double check_step(const aert_model *model, aert_ctx *ctx, int s, const aert_real *x, int n, int samples,
                         aert_real *g) {
  const aert_step *step = &model->steps[s];
  memset(ctx->grads, 0, model->n_param_elems * sizeof *ctx->grads);
  double loss = model->loss_and_grad(ctx, s, x, n);
  memcpy(g, ctx->grads, model->n_param_elems * sizeof *g);
  bool named = false;
  for (int i = 0; i < model->n_params; i++) named = named || param_in_step(&model->params[i], step);
  grad_error worst[WORST_SHOWN];
  int n_worst = 0, checked = 0;
  double max_error = 0;
  for (int i = 0; i < model->n_params; i++) {
    const aert_param *p = &model->params[i];
    if (AERT_PARAM_IS_STATE(p) || (named && !param_in_step(p, step))) continue;  // no gradient reaches running statistics
    size_t count = p->size <= (size_t)samples ? p->size : (size_t)samples;
    uint64_t key = aert_stream_key(ctx->seed, STREAM_GRADCHECK, (uint64_t)(s + 1) << 32 | (uint64_t)i);
    for (size_t k = 0; k < count; k++) {
      size_t e = p->size <= (size_t)samples ? k : (size_t)(aert_hash64(key, k) % p->size);
      double numeric = numeric_gradient(model, ctx, s, x, n, ctx->params + p->offset + e);
      double analytic = g[p->offset + e];
      grad_error err = {i, e, analytic, numeric, relative_error(numeric, analytic)};
      if (!(err.error <= max_error)) max_error = err.error;  // NaN propagates
      keep_worst(worst, &n_worst, err);
      checked++;
    }
  }
  fprintf(stderr, "step '%s' over %s: loss %.6g, %d elements checked, max error %.3g\n", step->loss,
          step->nets ? step->nets : "?", loss, checked, max_error);
  fprintf(stderr, "  %-36s %10s %14s %14s %10s\n", "parameter", "element", "analytic", "numeric", "error");
  for (int w = 0; w < n_worst; w++)
    fprintf(stderr, "  %-36s %10zu %14.6g %14.6g %10.3g\n", model->params[worst[w].param].name, worst[w].element,
            worst[w].analytic, worst[w].numeric, worst[w].error);
  return max_error;
}

int aert_cmd_gradcheck(const aert_model *model, const aert_options *options) {
  int samples = options->has_samples ? options->samples : 20;
  aert_first_batch b;
  bool ready = aert_first_batch_open(model, options, options->has_batch ? options->batch : 8, &b);
  aert_real *g = ready ? aert_alloc(model->n_param_elems, sizeof(aert_real), "gradient copy") : NULL;
  if (g) {
    perturb_params(model, b.ctx);
    fprintf(stderr, "%s: gradcheck on %d samples of %s, %s, %d thread%s\n", aert_program(), b.n, b.data->path,
            sizeof(aert_real) == 8 ? "float64" : "float32", b.ctx->threads, b.ctx->threads == 1 ? "" : "s");
    for (int s = 0; s < model->n_steps; s++)
      printf("gradcheck.%s.max_error %.6g\n", model->steps[s].loss, check_step(model, b.ctx, s, b.x, b.n, samples, g));
  }
  aert_free(g);
  aert_first_batch_close(model, &b);
  return g ? AERT_EXIT_OK : AERT_EXIT_FAILURE;
}

// ----------------------------------------------------------- time-kernels
static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

// time-kernels: every step's forward and backward pass on one batch of the
// data, --count times (default 20) after one unmeasured pass, with no update,
// so the weights, activations and gradients stay where the last repeat left
// them, as with OpenBLAS's repeated calls in `make bench`. The matrix
// products' rate of each repeat; the best and the median on stdout.
int aert_cmd_time_kernels(const aert_model *model, const aert_options *options) {
  int repeats = options->has_count ? options->count : 20;
  aert_first_batch b;
  bool ready = aert_first_batch_open(model, options, options->has_batch ? options->batch : model->default_batch, &b);
  double *rates = ready ? aert_alloc((size_t)repeats, sizeof(double), "repeat rates") : NULL;
  int status = AERT_EXIT_FAILURE;
  aert_ctx *ctx = b.ctx;
  if (rates) {
    for (int s = 0; s < model->n_steps; s++) model->loss_and_grad(ctx, s, b.x, b.n);  // warms caches and threads
  }
  if (rates && aert_profile_start(model, ctx)) {
    double best_seconds = 0;
    for (int r = 0; r < repeats; r++) {
      double seconds_before, flops_before, seconds, flops;
      aert_profile_gemm_totals(model, ctx, &seconds_before, &flops_before);
      for (int s = 0; s < model->n_steps; s++) model->loss_and_grad(ctx, s, b.x, b.n);
      aert_profile_gemm_totals(model, ctx, &seconds, &flops);
      seconds -= seconds_before, flops -= flops_before;
      rates[r] = seconds > 0 ? flops / seconds / 1e9 : 0;
      if (r == 0 || seconds < best_seconds) best_seconds = seconds;
    }
    fprintf(stderr, "%s: the kernels of every step on %d samples of %s, %d thread%s, %d repeats:\n", aert_program(), b.n,
            b.data->path, ctx->threads, ctx->threads == 1 ? "" : "s", repeats);
    aert_profile_report(model, ctx);  // all repeats together
    qsort(rates, (size_t)repeats, sizeof *rates, compare_doubles);
    printf("gemm_gflops_best %.6g\n", rates[repeats - 1]);
    printf("gemm_gflops_median %.6g\n", repeats % 2 ? rates[repeats / 2] : (rates[repeats / 2 - 1] + rates[repeats / 2]) / 2);
    printf("gemm_seconds_best %.6g\n", best_seconds);
    status = AERT_EXIT_OK;
  }
  aert_free(rates);
  aert_first_batch_close(model, &b);
  return status;
}
