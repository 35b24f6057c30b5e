// aert_kernels.h — the C that every program aec generates shares, whatever
// its model: the optimizers' updates, exp_nonpositive for the losses on
// logits, and the kernel timer TIMED.
//
// A generated model.c includes it after aert.h. Its functions are static
// inline and compile in the model's own translation unit: the
// shape-specialized kernels there call them with literal sizes, which
// inlining folds in, and no call is left between a kernel and its inner
// loop. A function a model does not call costs nothing.
//
// The element type is aert_real (aert.h): float, or double where the program
// defines AERT_REAL as double before including aert.h (aec --dtype f64).
// Everything here is written for both.
#ifndef AERT_KERNELS_H
#define AERT_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <tgmath.h>

#include "aert.h"

// ---- vector math

// With AEC_LIBMVEC (aec sets it, with -fno-math-errno and -lmvec), glibc's vector
// math library computes exp, log and tanh 16 lanes at a time inside simd loops.
#if defined(AEC_LIBMVEC) && defined(__GLIBC__) && defined(__x86_64__)
#define AEC_VECTOR_MATH __attribute__((simd("notinbranch")))
AEC_VECTOR_MATH float (expf)(float);
AEC_VECTOR_MATH float (logf)(float);
AEC_VECTOR_MATH float (log1pf)(float);
AEC_VECTOR_MATH float (tanhf)(float);
AEC_VECTOR_MATH double (exp)(double);
AEC_VECTOR_MATH double (log)(double);
AEC_VECTOR_MATH double (log1p)(double);
AEC_VECTOR_MATH double (tanh)(double);
#endif

// exp(x) for x <= 0, as the losses on logits use it (exp(-|z|)). In float it
// is written out, so that a simd loop keeps it in registers (libmvec's expf
// is a call, around which every vector register is saved): 2^k e^r,
// k = round(x / ln 2), e^r to degree 7. It stays within an ulp at 1
// (1.2e-7) relative of exp on [-87, 0] (tests/test_golden.c checks), and
// below -87 it gives e^-87. The clamp is arithmetic, so x = -inf gives NaN,
// in a loss that an infinite logit has made NaN or infinite anyway.
static inline float exp_nonpositive_float(float x) {
  const float lowest = -87;
  x = (x > lowest) * x + (x <= lowest) * lowest;  // arithmetic: GCC does not vectorize a conditional here
  const int32_t k = (int32_t)(x * 1.44269504088896341f - 0.5f);
  const float r = (x - (float)k * 0.693145751953125f) - (float)k * 1.42860682030941723e-06f;
  const float poly = 1 + r * (1 + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
  const union { int32_t bits; float value; } two_to_k = {.bits = (k + 127) * (1 << 23)};
  return poly * two_to_k.value;
}

// In double, the C library's.
static inline double exp_nonpositive_double(double x) { return exp(x); }

static inline aert_real exp_nonpositive(aert_real x) {
  return _Generic(x, float: exp_nonpositive_float, double: exp_nonpositive_double)(x);
}

// ---- the kernel timer

// TIMED(kernel, call) runs `call`, a kernel's call in a generated function
// (whose `ctx` and batch size `n` it reads); under train --profile it adds
// the call's time, one call and its samples to kernel number `kernel`'s
// totals. Otherwise it costs one test.
#define TIMED(kernel, call)                                 \
  do {                                                      \
    if (!ctx->kernel_seconds) {                             \
      call;                                                 \
      break;                                                \
    }                                                       \
    const double start_ = aert_seconds();                   \
    call;                                                   \
    ctx->kernel_seconds[kernel] += aert_seconds() - start_; \
    ctx->kernel_calls[kernel] += 1;                         \
    ctx->kernel_samples[kernel] += n;                       \
  } while (0)

// ---- the optimizers: each step's update calls one per run of contiguous parameters

// Adam (Kingma & Ba), in PyTorch's arrangement: m and v are the running
// moments, t the update count, the bias corrections folded into the step
// (the second as a product: one division an element, not two). Both cores
// share any tensor list over 16384 elements, 4096 at a time to whichever is
// free: an equal split leaves one core waiting for gradients that sit in
// the other core's cache. Elementwise, so the result does not depend on
// which thread took which chunk.
static inline void adam(aert_real *restrict p, const aert_real *restrict g, aert_real *restrict m, aert_real *restrict v,
                        size_t size, aert_real lr, aert_real beta1, aert_real beta2, aert_real eps, double t) {
  const aert_real bias_correction1 = (aert_real)(1 - pow((double)beta1, t));
  const aert_real bias_correction2_sqrt = (aert_real)sqrt(1 - pow((double)beta2, t));
  const aert_real step_size = lr / bias_correction1, inverse_correction2 = 1 / bias_correction2_sqrt;
#pragma omp parallel for simd schedule(dynamic, 4096) if (size >= 16384)
  for (size_t i = 0; i < size; i++) {
    m[i] += (1 - beta1) * (g[i] - m[i]);
    v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
    p[i] -= step_size * m[i] / (sqrt(v[i]) * inverse_correction2 + eps);
  }
}

// SGD with momentum, as PyTorch: velocity = momentum * velocity + g; p -= lr * velocity.
static inline void sgd(aert_real *restrict p, const aert_real *restrict g, aert_real *restrict velocity, size_t size,
                       aert_real lr, aert_real momentum) {
#pragma omp parallel for simd schedule(static) if (size >= 65536)
  for (size_t i = 0; i < size; i++) {
    velocity[i] = momentum * velocity[i] + g[i];
    p[i] -= lr * velocity[i];
  }
}

#endif  // AERT_KERNELS_H
