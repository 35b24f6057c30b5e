// embed.c — what the library `aec --lib` writes (NAME.h, NAME.c) runs on: a
// model opened for inference from its checkpoint, every error returned as a
// value with its message (core/report.c's capture), nothing printed, no exit.
#define _GNU_SOURCE
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "ckpt.h"

// The batch a model opens with when its train block names none.
enum { DEFAULT_BATCH = 256 };

static int fail(aert_embed *e, const char *fmt, ...) AERT_PRINTF(2, 3);
static int fail(aert_embed *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->error, sizeof e->error, fmt, ap);
  va_end(ap);
  return -1;
}

// From the file `checkpoint`, or from `size` bytes at `data` when data is not NULL.
static aert_embed *open_model(const aert_model *model, const char *checkpoint, const void *data, size_t size, char *err,
                              size_t err_size) {
  char message[sizeof ((aert_embed *)0)->error];
  aert_capture_begin(message, sizeof message);
  aert_embed *e = NULL;
  if (model->abi_version != AERT_ABI_VERSION) {
    snprintf(message, sizeof message, "model '%s' was generated for runtime ABI %d, and this libaert is ABI %d: "
             "regenerate it with this aec", model->name, model->abi_version, AERT_ABI_VERSION);
  } else if (!checkpoint) {
    snprintf(message, sizeof message, "model '%s': no checkpoint named (train one with the program aec builds)", model->name);
  } else if (aert_reserve_stacks(model) && (e = calloc(1, sizeof *e)) != NULL) {
    e->model = model;
    int batch = model->default_batch > 0 ? model->default_batch : DEFAULT_BATCH;
    e->ctx = aert_ctx_create(model, batch, model->default_seed);
    if (e->ctx) e->ctx->threads = omp_get_max_threads();
    if (!e->ctx || (data ? aert_checkpoint_load_memory(data, size, checkpoint, model, e->ctx)
                         : aert_checkpoint_load_ex(checkpoint, model, e->ctx, NULL, false)) != 0) {
      aert_ctx_free(model, e->ctx);
      free(e), e = NULL;
    }
  } else if (!e && !message[0]) {
    snprintf(message, sizeof message, "out of memory");
  }
  bool had_error = aert_capture_end();
  if (!e && !had_error && !message[0]) snprintf(message, sizeof message, "model '%s': cannot open '%s'", model->name, checkpoint);
  if (!e && err && err_size) snprintf(err, err_size, "%s", message);
  if (e && err && err_size) err[0] = '\0';
  return e;
}

aert_embed *aert_embed_open(const aert_model *model, const char *checkpoint, char *err, size_t err_size) {
  return open_model(model, checkpoint, NULL, 0, err, err_size);
}

aert_embed *aert_embed_open_memory(const aert_model *model, const void *checkpoint, size_t size, const char *name,
                                   char *err, size_t err_size) {
  return open_model(model, name, checkpoint, size, err, err_size);
}

void aert_embed_close(aert_embed *e) {
  if (!e) return;
  aert_ctx_free(e->model, e->ctx);
  free(e);
}

int aert_embed_set_batch(aert_embed *e, int batch) {
  if (!e) return -1;
  if (batch < 1) return fail(e, "model '%s': a batch of %d samples; give 1 or more", e->model->name, batch);
  aert_capture_begin(e->error, sizeof e->error);
  aert_ctx_set_capacity(e->model, e->ctx, batch);
  return aert_capture_end() ? -1 : 0;
}

// The generated program's kernels run with subnormal floats flushed to zero
// (cmd/common.c): so do the library's, in each thread of the team, and each
// thread's own mode comes back after the call.
typedef struct float_modes {
  unsigned saved[1024];
  int count;
} float_modes;

static void flush_subnormals(float_modes *m) {
  m->count = omp_get_max_threads();
  if (m->count > 1024) m->count = 1024;
#if defined(__SSE__)
#pragma omp parallel
  {
    int t = omp_get_thread_num();
    if (t < m->count) m->saved[t] = _mm_getcsr();
    _mm_setcsr(_mm_getcsr() | 0x8040);  // flush to zero, denormals are zero
  }
#endif
}

static void restore_subnormals(const float_modes *m) {
#if defined(__SSE__)
#pragma omp parallel
  {
    int t = omp_get_thread_num();
    if (t < m->count) _mm_setcsr(m->saved[t]);
  }
#else
  (void)m;
#endif
}

static int check_call(aert_embed *e, const char *what, const void *x, int n, const void *out) {
  if (n < 0) return fail(e, "model '%s': %s of %d samples; give 0 or more", e->model->name, what, n);
  if (n > 0 && (!x || !out)) return fail(e, "model '%s': %s of %d samples with a NULL array", e->model->name, what, n);
  return 0;
}

int aert_embed_run(aert_embed *e, const char *what, void (*fn)(aert_ctx *, const aert_real *, int, aert_real *),
                   const aert_real *x, int n, int in_size, aert_real *out, int out_size) {
  if (!e) return -1;
  if (!fn) {
    if (strcmp(what, "decode") == 0 && e->model->decode_missing)
      return fail(e, "model '%s' cannot decode: %s", e->model->name, e->model->decode_missing);
    return fail(e, "model '%s' has no %s: its .ae file names no %s", e->model->name,
                strcmp(what, "encode") == 0 ? "code" : "reconstruction", strcmp(what, "encode") == 0 ? "code" : "reconstruction");
  }
  if (check_call(e, what, x, n, out) != 0) return -1;
  float_modes modes;
  flush_subnormals(&modes);
  int capacity = e->ctx->capacity;
  for (int first = 0; first < n; first += capacity) {
    int m = n - first < capacity ? n - first : capacity;
    fn(e->ctx, x + (size_t)first * (size_t)in_size, m, out + (size_t)first * (size_t)out_size);
  }
  restore_subnormals(&modes);
  return 0;
}

int aert_embed_score(aert_embed *e, aert_score_kind kind, const aert_real *x, int n, aert_real *scores) {
  if (!e) return -1;
  const aert_model *model = e->model;
  if (!model->reconstruct || model->recon_size != model->input_size)
    return fail(e, "model '%s' has no reconstruction of its input to score", model->name);
  if (check_call(e, "score", x, n, scores) != 0) return -1;
  size_t size = (size_t)model->input_size, capacity = (size_t)e->ctx->capacity;
  aert_capture_begin(e->error, sizeof e->error);
  aert_real *recon = aert_alloc_reals(capacity, size, "reconstructions");
  aert_capture_end();
  if (!recon) return -1;
  for (int first = 0; first < n; first += (int)capacity) {
    int m = n - first < (int)capacity ? n - first : (int)capacity;
    const aert_real *xs = x + (size_t)first * size;
    aert_embed_run(e, "reconstruct", model->reconstruct, xs, m, (int)size, recon, (int)size);
    for (int i = 0; i < m; i++) {
      double sum = 0;
      for (size_t j = 0; j < size; j++) {
        double p = recon[(size_t)i * size + j], t = xs[(size_t)i * size + j];
        sum += kind == AERT_SCORE_BCE ? -(t * fmax(log(p), -100) + (1 - t) * fmax(log(1 - p), -100)) : (p - t) * (p - t);
      }
      scores[first + i] = (aert_real)(sum / (double)size);
    }
  }
  aert_free(recon);
  return 0;
}
