// ctx.c — memory (sizes checked for overflow, aligned buffers) and a model's
// context, its parameters initialised.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core.h"

#define ALIGNMENT 64
#define HUGE_PAGE ((size_t)2 << 20)

bool aert_mul_size(size_t a, size_t b, size_t limit, size_t *out) {
  if (a != 0 && b > limit / a) return false;
  *out = a * b;
  return true;
}

// Buffers of 2 MiB and more (parameters, gradients, optimizer state, the
// arena, data sets) start on a 2 MiB boundary and ask for transparent huge
// pages, which nothing gets where the kernel's setting is "madvise" (Debian's
// default). The products' panels are packed from weights read a row of 32
// columns at a time, a new 4 KiB page every row; on the large bench model this
// measured about 2% faster, within the machine's noise. Without huge pages (or
// with madvise refused) the buffer works the same.
void *aert_alloc(size_t count, size_t size, const char *what) {
  size_t bytes;
  if (!aert_mul_size(count, size, SIZE_MAX - HUGE_PAGE, &bytes)) {
    aert_error("%s: %zu elements of %zu bytes are too many", what, count, size);
    return NULL;
  }
  const size_t alignment = bytes >= HUGE_PAGE ? HUGE_PAGE : ALIGNMENT;
  bytes = (bytes + alignment - 1) / alignment * alignment;
  if (bytes == 0) bytes = ALIGNMENT;
  void *p = aligned_alloc(alignment, bytes);
  if (!p) {
    aert_error("%s: out of memory (%zu bytes)", what, bytes);
    return NULL;
  }
#ifdef MADV_HUGEPAGE
  if (alignment == HUGE_PAGE) (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
  memset(p, 0, bytes);
  return p;
}

double *aert_loss_partials(size_t count) {
  static double *partials;
  static size_t capacity;
  if (count <= capacity) return partials;
  double *grown = aert_alloc(count, sizeof(double), "the loss's partial sums");
  if (!grown) exit(AERT_EXIT_FAILURE);
  aert_free(partials);
  partials = grown;
  capacity = count;
  return partials;
}

aert_real *aert_alloc_reals(size_t rows, size_t cols, const char *what) {
  size_t count;
  if (!aert_mul_size(rows, cols, SIZE_MAX / sizeof(aert_real), &count)) {
    aert_error("%s: %zu x %zu values are too many", what, rows, cols);
    return NULL;
  }
  return aert_alloc(count, sizeof(aert_real), what);
}

void aert_free(void *p) { free(p); }

void aert_format_shape(char *out, size_t size, int rank, const int *shape) {
  size_t n = (size_t)snprintf(out, size, "[");
  for (int i = 0; i < rank && n < size; i++) n += (size_t)snprintf(out + n, size - n, "%s%d", i ? ", " : "", shape[i]);
  if (n < size) snprintf(out + n, size - n, "]");
}

double aert_glorot_limit(const aert_param *param) {
  int fans = param->fan_in + param->fan_out;
  return fans > 0 ? sqrt(6.0 / fans) : 1.0;
}

// Parameter i's elements uniform in [-limit, limit], from the run seed.
static void init_uniform(const aert_model *model, aert_ctx *ctx, int i, double limit) {
  const aert_param *p = &model->params[i];
  aert_real *w = ctx->params + p->offset;
  uint64_t key = aert_stream_key(ctx->seed, AERT_STREAM_INIT, (uint64_t)i);
  for (size_t e = 0; e < p->size; e++) w[e] = (aert_real)((2.0 * aert_uniform01(key, e) - 1.0) * limit);
}

void aert_init_params(const aert_model *model, aert_ctx *ctx) {
  for (int i = 0; i < model->n_params; i++) {
    const aert_param *p = &model->params[i];
    if (p->init == AERT_INIT_ZEROS || p->init == AERT_INIT_STATE_ZEROS)
      memset(ctx->params + p->offset, 0, p->size * sizeof *ctx->params);
    else if (p->init == AERT_INIT_ONES || p->init == AERT_INIT_STATE_ONES)
      for (size_t e = 0; e < p->size; e++) ctx->params[p->offset + e] = 1;
    else init_uniform(model, ctx, i, aert_glorot_limit(p));
  }
}

// PyTorch's Linear and Conv2d draw kernels and biases from U(-1/sqrt(fan_in),
// 1/sqrt(fan_in)); its BatchNorm starts at ones and zeros, as aec does (a
// batchnorm's parameters and state have no fans).
void aert_init_params_pytorch(const aert_model *model, aert_ctx *ctx) {
  aert_init_params(model, ctx);
  for (int i = 0; i < model->n_params; i++)
    if ((model->params[i].init == AERT_INIT_ZEROS || model->params[i].init == AERT_INIT_GLOROT_UNIFORM) &&
        model->params[i].fan_in + model->params[i].fan_out > 0)
      init_uniform(model, ctx, i, model->params[i].fan_in > 0 ? 1 / sqrt((double)model->params[i].fan_in) : 1);
}

aert_ctx *aert_ctx_create(const aert_model *model, int capacity, uint64_t seed) {
  aert_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    aert_error("out of memory");
    return NULL;
  }
  ctx->capacity = capacity;
  ctx->seed = seed;
  ctx->batch_step = -1;  // no step reads values of earlier ones unless the training loop says so
  int steps = model->n_steps > 0 ? model->n_steps : 1;
  size_t arena = 0;
  bool ok = aert_mul_size(model->arena_per_sample, (size_t)capacity, SIZE_MAX / sizeof(aert_real), &arena) &&
            arena + model->arena_fixed >= arena;
  if (!ok) {
    aert_error("the activations of %d samples a batch do not fit in memory", capacity);
    free(ctx);
    return NULL;
  }
  arena += model->arena_fixed;
  ctx->params = aert_alloc(model->n_param_elems, sizeof(aert_real), "parameters");
  ctx->grads = aert_alloc(model->n_param_elems, sizeof(aert_real), "gradients");
  ctx->arena = aert_alloc(arena, sizeof(aert_real), "activations (the arena)");
  ctx->opt_state = calloc((size_t)steps, sizeof *ctx->opt_state);
  ctx->opt_t = calloc((size_t)steps, sizeof *ctx->opt_t);
  ctx->lr = calloc((size_t)steps, sizeof *ctx->lr);
  ok = ctx->params && ctx->grads && ctx->arena && ctx->opt_state && ctx->opt_t && ctx->lr;
  for (int s = 0; ok && s < model->n_steps; s++) {
    ctx->opt_state[s] = aert_alloc(model->steps[s].state_size, sizeof(aert_real), "optimizer state");
    ctx->lr[s] = model->steps[s].lr;
    ok = ctx->opt_state[s] != NULL;
  }
  if (!ok) {
    if (!ctx->opt_state || !ctx->opt_t || !ctx->lr) aert_error("out of memory");
    aert_ctx_free(model, ctx);
    return NULL;
  }
  aert_init_params(model, ctx);
  return ctx;
}

bool aert_ctx_set_capacity(const aert_model *model, aert_ctx *ctx, int capacity) {
  size_t arena = 0;
  if (capacity < 1 ||
      !aert_mul_size(model->arena_per_sample, (size_t)capacity, SIZE_MAX / sizeof(aert_real) - model->arena_fixed,
                     &arena)) {
    aert_error("the activations of %d samples a batch do not fit in memory", capacity);
    return false;
  }
  if (capacity == ctx->capacity) return true;
  aert_real *grown = aert_alloc(arena + model->arena_fixed, sizeof(aert_real), "activations (the arena)");
  if (!grown) return false;
  aert_free(ctx->arena);
  ctx->arena = grown;
  ctx->capacity = capacity;
  return true;
}

void aert_ctx_free(const aert_model *model, aert_ctx *ctx) {
  if (!ctx) return;
  for (int s = 0; ctx->opt_state && s < model->n_steps; s++) free(ctx->opt_state[s]);
  free(ctx->opt_state);
  free(ctx->opt_t);
  free(ctx->lr);
  free(ctx->params);
  free(ctx->grads);
  free(ctx->arena);
  free(ctx);
}
