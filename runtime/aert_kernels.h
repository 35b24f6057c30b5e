// aert_kernels.h — the C that every program aec generates shares, whatever
// its model: the matrix micro-kernel the dense layers' products call, the
// optimizers' updates, exp_nonpositive for the losses on logits, the kernel
// timer TIMED, the mixture prior's sampler, and batch normalization's loops.
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
//
// With AERT_KERNELS_SHARED_ONLY defined, only the first part is read: the
// constants the compiler sizes its kernels by and the prior sampler, plain C
// that any C compiler reads (compiler/emit_gemm.c and runtime/prior.c
// include it so). The rest is GNU C for GCC: vector extensions,
// __builtin_shuffle, OpenMP.
#ifndef AERT_KERNELS_H
#define AERT_KERNELS_H

#include <math.h>
#include <stdint.h>

#include "aert.h"

// ---- shared with the compiler and the runtime

// The micro-kernel's tile: AERT_GEMM_ROWS rows of a at a time, against two
// vectors of columns (see gemm_rows).
#define AERT_GEMM_ROWS 14

// Products whose depth K is a constant up to AERT_PANEL_DEPTH copy each
// column block of their weight into a [K][GEMM_COLS] panel on the thread's
// stack, which the micro-kernel reads in order; deeper ones read the weight
// in place. The compiler picks the path of each product by it; a kernel
// gradient, whose depth is the batch, picks its path at run time against
// AEC_PANEL_DEPTH (below).
#define AERT_PANEL_DEPTH 2048

// Row `row` of mixture([dim], k, s, radius) into out[dim], in double: k
// gaussians of std s centred on a circle of that radius in dimensions 0 and
// 1, N(0, s^2) in the others. The draws are counters row * dim + d under
// `key`: the component comes from element 1's uniform0; dimensions 0 and 1's
// noise is the Box–Muller pair of element 0 (the cosine half is that
// element's normal draw); further dimensions take their own normal. So every
// value is a function of the draws `train --dump-random` writes. The
// generated prior kernels and aert_prior_sample both sample with it.
static inline void aert_prior_mixture_sample(uint64_t key, uint64_t row, int dim, int k, double s, double radius,
                                             double *out) {
  const uint64_t at = row * (uint64_t)dim;
  int c = (int)(aert_uniform01(key, 2 * (at + 1)) * k);  // the component
  if (c >= k) c = k - 1;
  const double u1 = (double)((aert_hash64(key, 2 * at) >> 11) + 1) * 0x1.0p-53;  // (0, 1]
  const double u2 = aert_uniform01(key, 2 * at + 1);
  const double length = sqrt(-2 * log(u1)), angle = 2 * M_PI * u2, centre = 2 * M_PI * c / k;
  out[0] = radius * cos(centre) + s * length * cos(angle);
  out[1] = radius * sin(centre) + s * length * sin(angle);
  for (int d = 2; d < dim; d++) out[d] = s * aert_normal(key, at + (uint64_t)d);
}

#ifndef AERT_KERNELS_SHARED_ONLY

#include <stddef.h>
#include <string.h>
#include <tgmath.h>
#ifdef _OPENMP
#include <omp.h>
#endif

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

// ---- the matrix micro-kernel every dense layer's products use

// This thread's even share [first, last) of `count` rows.
static inline void thread_rows(int count, int *first, int *last) {
#ifdef _OPENMP
  const int threads = omp_get_num_threads(), thread = omp_get_thread_num();
#else
  const int threads = 1, thread = 0;
#endif
  *first = (int)((long long)count * thread / threads);
  *last = (int)((long long)count * (thread + 1) / threads);
}

typedef aert_real vreal __attribute__((vector_size(64)));
typedef aert_real vreal_unaligned __attribute__((vector_size(64), aligned(sizeof(aert_real))));
// A shuffle's lane numbers: integers as wide as an aert_real, VL of them (the
// type of a comparison of two vreal).
typedef __typeof__((vreal){0} < (vreal){0}) vlane_index;
enum { VL = 64 / sizeof(aert_real), GEMM_COLS = 2 * VL };

// The micro-kernel's registers: vectors of the target's own width, and as many
// rows of a as keep rows x GEMM_COLS of sums in registers beside b's vectors
// and a broadcast. GCC lowers a wider vector type than the target has to pairs
// of halves kept in memory: with AVX2 only, the 64-byte tile of AVX-512 ran the
// VAE's products at 2 GFLOP/s a core (28 accumulators on the stack, every
// broadcast built through a general register), where PyTorch reached 85.
// A column block stays GEMM_COLS wide on every target (the compiler sizes its
// loops by it); only the rows and the vectors that hold them change.
#if defined(__AVX512F__)
#define AERT_NATIVE_BYTES 64
#define AERT_TILE_ROWS AERT_GEMM_ROWS  // 14 x 2 accumulators of the 32 registers
#elif defined(__AVX__)
#define AERT_NATIVE_BYTES 32
#define AERT_TILE_ROWS 3  // 3 x 4 accumulators of the 16 registers
#else
#define AERT_NATIVE_BYTES 16
#define AERT_TILE_ROWS 1  // 8 accumulators of SSE's 16 registers
#endif
typedef aert_real vnative __attribute__((vector_size(AERT_NATIVE_BYTES)));
typedef aert_real vnative_unaligned __attribute__((vector_size(AERT_NATIVE_BYTES), aligned(sizeof(aert_real))));
enum { NL = AERT_NATIVE_BYTES / sizeof(aert_real), NV = GEMM_COLS / NL, GEMM_ROWS = AERT_TILE_ROWS };
_Static_assert(AERT_TILE_ROWS <= AERT_GEMM_ROWS, "the compiler sizes strips by AERT_GEMM_ROWS rows at most");

// acc + x * y, lane by lane, rounded once where the target has FMA and twice
// where it has not: the same in every tile. Left to -ffp-contract, GCC fused
// x * y + acc in 3-row tiles and not in a 1-row tile of the same product (a
// thread's last row), so a row's result hung on the thread count.
static inline __attribute__((always_inline)) vnative multiply_add(aert_real x, vnative y, vnative acc) {
#ifdef __FMA__
#pragma GCC unroll 16
  for (int l = 0; l < NL; l++) acc[l] = fma(x, y[l], acc[l]);
  return acc;
#else
  return acc + x * y;
#endif
}

// A kernel gradient reads a^T: a's rows lie 1-4 KB apart, one a row for every k,
// a stride the hardware prefetcher does not follow. The product asks for the row
// GEMM_PREFETCH ahead (the best distance on the large models timed: see
// bench/kernel-notes.md).
enum { GEMM_PREFETCH = 24 };

// The deepest batch whose kernel-gradient product packs b, a block of columns at a
// time, into a [depth][GEMM_COLS] panel on the thread's stack (see the kernels);
// -DAEC_PANEL_DEPTH=0 sends every batch through the in-place path (the tests do).
#ifndef AEC_PANEL_DEPTH
#define AEC_PANEL_DEPTH AERT_PANEL_DEPTH
#endif

// c[rows][cols] (row stride ldc) = sum over k < depth of A(i, k) * b[k][j], where
// A(i, k) = a[i * a_row + k * a_k] and row k of b starts at b + k * b_k, with
// `readable` columns there (GEMM_COLS for a zero-padded panel, else cols). With
// GEMM_COLS readable, rows x 2 vectors of sums stay in registers and only the
// store is cut to cols; a narrower b goes a vector of columns at a time, the last
// one loaded element by element (a memcpy of a variable width compiles to a byte
// copy through the stack for every k). `rows` is a literal at every call (14, 4, 2
// or 1), so the loops over it unroll. Every element sums over k in order.
// With `ahead` (a panel's worth of columns, ahead_rows rows ahead_stride apart),
// it asks for one of those rows every fourth k: see gemm_tile_ahead. A 14-row
// block of a forward or input-gradient product also asks for the next block's
// rows of a, which half come from the other core's cache the first time a
// thread reads them. A kernel gradient's 14-row block asks to own the next
// block's lines of c, which it will overwrite: the gradient Adam read a step
// ago is out of the caches by then.
// With `accumulate` (GEMM_COLS readable only), the sums start from c's values:
// a product by chunks of k (see the forward products) goes on where it stopped.
static inline __attribute__((always_inline)) void gemm_rows(int rows, int cols, int readable, int depth,
    const aert_real *restrict a, size_t a_row, size_t a_k, const aert_real *restrict b, size_t b_k,
    aert_real *restrict c, size_t ldc, const aert_real *ahead, int ahead_rows, size_t ahead_stride, int accumulate) {
  if (readable == GEMM_COLS) {
    vnative acc[GEMM_ROWS][NV];
#pragma GCC unroll 16
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[r][v] = (vnative){0};
    if (accumulate && cols == GEMM_COLS) {
#pragma GCC unroll 16
      for (int r = 0; r < rows; r++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) acc[r][v] = *(const vnative_unaligned *)(c + (size_t)r * ldc + v * NL);
    } else if (accumulate) {
#pragma GCC unroll 16
      for (int r = 0; r < rows; r++) {
        aert_real sums[GEMM_COLS] = {0};
        for (int j = 0; j < cols; j++) sums[j] = c[(size_t)r * ldc + j];
        memcpy(acc[r], sums, sizeof sums);
      }
    }
    for (int k = 0; k < depth; k++) {
      if (a_row == 1) {  // a read down its columns, a row of a for every k: ask for it early
        __builtin_prefetch(a + (size_t)(k + GEMM_PREFETCH) * a_k);
        __builtin_prefetch(a + (size_t)(k + GEMM_PREFETCH) * a_k + rows - 1);
        if (rows == GEMM_ROWS && k % 8 == 0 && k / 8 < 2 * GEMM_ROWS)  // and for the next block of c, to write
          __builtin_prefetch(c + (size_t)(GEMM_ROWS + k / 16) * ldc + k / 8 % 2 * VL, 1, 3);
      }
      if (a_k == 1 && rows == GEMM_ROWS)  // the next block's rows of a: a line of each every VL k
        for (int r = k % VL; r < GEMM_ROWS; r += VL) __builtin_prefetch(a + (size_t)(GEMM_ROWS + r) * a_row + k - k % VL, 0, 2);
      if (ahead && k % 4 == 0 && k / 4 < ahead_rows) {
        const aert_real *row = ahead + (size_t)(k / 4) * ahead_stride;
        __builtin_prefetch(row, 0, 2), __builtin_prefetch(row + VL, 0, 2), __builtin_prefetch(row + GEMM_COLS - 1, 0, 2);
      }
      vnative bk[NV];
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) bk[v] = *(const vnative_unaligned *)(b + (size_t)k * b_k + v * NL);
#pragma GCC unroll 16
      for (int r = 0; r < rows; r++) {
        const aert_real ar = a[(size_t)r * a_row + (size_t)k * a_k];
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) acc[r][v] = multiply_add(ar, bk[v], acc[r][v]);
      }
    }
    if (cols == GEMM_COLS) {
#pragma GCC unroll 16
      for (int r = 0; r < rows; r++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) *(vnative_unaligned *)(c + (size_t)r * ldc + v * NL) = acc[r][v];
      return;
    }
#pragma GCC unroll 16
    for (int r = 0; r < rows; r++) {
      aert_real sums[GEMM_COLS];
      memcpy(sums, acc[r], sizeof sums);
      for (int j = 0; j < cols; j++) c[(size_t)r * ldc + j] = sums[j];
    }
    return;
  }
  for (int j = 0; j < cols; j += NL) {
    const int width = cols - j < NL ? cols - j : NL;
    vnative acc[GEMM_ROWS];
#pragma GCC unroll 16
    for (int r = 0; r < rows; r++) acc[r] = (vnative){0};
    for (int k = 0; k < depth; k++) {
      vnative bk = {0};
      if (width == NL)
        bk = *(const vnative_unaligned *)(b + (size_t)k * b_k + j);
      else
        for (int t = 0; t < width; t++) bk[t] = b[(size_t)k * b_k + j + t];
#pragma GCC unroll 16
      for (int r = 0; r < rows; r++) acc[r] = multiply_add(a[(size_t)r * a_row + (size_t)k * a_k], bk, acc[r]);
    }
#pragma GCC unroll 16
    for (int r = 0; r < rows; r++) {
      aert_real sums[NL];
      memcpy(sums, &acc[r], sizeof sums);
      for (int t = 0; t < width; t++) c[(size_t)r * ldc + j + t] = sums[t];
    }
  }
}

// The micro-kernel out of line: one function for each number of rows a tile
// has (14, 4, 2, 1 with AVX-512; 3, 2, 1 with AVX2; 1 with SSE2) and each
// way of reading a (a row contiguous: forward and input-gradient products; a
// column contiguous: kernel gradients), shared by every product of the
// program. Inlined into each call, as before, a model's C spent most of its
// build in dozens of copies of the same loops specialized per product (the
// adversarial example: 16.7 s of GCC's time at -O3, 5.5 s out of line); the
// strides and sizes of a call are arguments instead of constants, which
// costs the k loop nothing it does per k (pointers step by a register
// instead of a constant); GCC may still clone one for constants its calls
// share (gemm_rows_1.constprop), which noclone forbids only the strides'
// functions below. The sums, and with them the results, are the same bits.
#define AERT_GEMM_ROWS_FUNCTIONS(R)                                                                                  \
  static __attribute__((noinline, unused)) void gemm_rows_##R(                                              \
      int cols, int readable, int depth, const aert_real *restrict a, size_t a_row, const aert_real *restrict b,    \
      size_t b_k, aert_real *restrict c, size_t ldc, const aert_real *ahead, int ahead_rows, size_t ahead_stride,   \
      int accumulate) {                                                                                              \
    if (readable == GEMM_COLS && b_k == GEMM_COLS && !ahead)                                                         \
      gemm_rows(R, cols, GEMM_COLS, depth, a, a_row, 1, b, GEMM_COLS, c, ldc, NULL, 0, 0, accumulate);               \
    else                                                                                                             \
      gemm_rows(R, cols, readable, depth, a, a_row, 1, b, b_k, c, ldc, ahead, ahead_rows, ahead_stride, accumulate); \
  }                                                                                                                  \
  static __attribute__((noinline, unused)) void gemm_columns_##R(int cols, int readable, int depth,         \
      const aert_real *restrict a, size_t a_k, const aert_real *restrict b, size_t b_k, aert_real *restrict c,      \
      size_t ldc, int accumulate) {                                                                                  \
    if (readable == GEMM_COLS && b_k == GEMM_COLS)                                                                   \
      gemm_rows(R, cols, GEMM_COLS, depth, a, 1, a_k, b, GEMM_COLS, c, ldc, NULL, 0, 0, accumulate);                 \
    else                                                                                                             \
      gemm_rows(R, cols, readable, depth, a, 1, a_k, b, b_k, c, ldc, NULL, 0, 0, accumulate);                        \
  }
#if AERT_TILE_ROWS == 14
AERT_GEMM_ROWS_FUNCTIONS(14)
AERT_GEMM_ROWS_FUNCTIONS(4)
#elif AERT_TILE_ROWS == 3
AERT_GEMM_ROWS_FUNCTIONS(3)
#endif
#if AERT_TILE_ROWS > 2
AERT_GEMM_ROWS_FUNCTIONS(2)
#endif
AERT_GEMM_ROWS_FUNCTIONS(1)

// rows (a literal) of a tile, by the function above for the way a is read:
// every call of the generated code has a_k == 1 or a_row == 1, as literals;
// any other a goes through the inlined loops.
#define AERT_GEMM_CALL(R, a, c, ahead, ahead_rows, ahead_stride)                                                      \
  do {                                                                                                               \
    if (a_k == 1)                                                                                                    \
      gemm_rows_##R(cols, readable, depth, a, a_row, b, b_k, c, ldc, ahead, ahead_rows, ahead_stride, accumulate);   \
    else if (a_row == 1)                                                                                             \
      gemm_columns_##R(cols, readable, depth, a, a_k, b, b_k, c, ldc, accumulate);                                   \
    else                                                                                                             \
      gemm_rows(R, cols, readable, depth, a, a_row, a_k, b, b_k, c, ldc, ahead, ahead_rows, ahead_stride, accumulate); \
  } while (0)

// A full tile of a product whose a is read by rows (forward and input-gradient
// products) keeps its row stride a constant: out of line with a stride in a
// register, GCC kept the 14 rows' pointers on the stack and reloaded them every
// k. The model's C lists the strides its products may have
// (AERT_GEMM_STRIDES, before it includes this header): a full tile with one
// of them calls that stride's function, shared by every product of the
// stride; any other stride inlines the loops.
#define AERT_GEMM_STRIDE_FUNCTION(S)                                                                                 \
  static __attribute__((noinline, noclone, unused)) void gemm_stride_##S(int cols, int readable, int depth,          \
      const aert_real *restrict a, const aert_real *restrict b, size_t b_k, aert_real *restrict c, size_t ldc,      \
      const aert_real *ahead, int ahead_rows, size_t ahead_stride, int accumulate) {                                 \
    if (readable == GEMM_COLS && b_k == GEMM_COLS)                                                                   \
      gemm_rows(GEMM_ROWS, cols, GEMM_COLS, depth, a, S, 1, b, GEMM_COLS, c, ldc, ahead, ahead_rows, ahead_stride,  \
                accumulate);                                                                                         \
    else                                                                                                             \
      gemm_rows(GEMM_ROWS, cols, readable, depth, a, S, 1, b, b_k, c, ldc, ahead, ahead_rows, ahead_stride,         \
                accumulate);                                                                                         \
  }
#define AERT_GEMM_STRIDE_CASE(S)                                                                                     \
  case S:                                                                                                            \
    gemm_stride_##S(cols, readable, depth, a, b, b_k, c, ldc, ahead, ahead_rows, ahead_stride, accumulate);         \
    return;
#ifdef AERT_GEMM_STRIDES
AERT_GEMM_STRIDES(AERT_GEMM_STRIDE_FUNCTION)
#endif

// c[rows][cols] for rows <= 14, as gemm_rows: 14 rows at once, or the end of a
// batch 4, 2 and 1 rows at a time (a row alone has only 2 chains of dependent
// sums, a quarter of what keeps the multipliers busy). A 14-row tile also asks
// for the rows `ahead`: its share of the weight rows its thread packs next, for
// an input-gradient product with a weight of 1 MiB or more. Packing a panel
// from a weight that Adam left in the other core's cache or in L3 reads rows
// 2-4 KB apart, which the hardware does not prefetch; asked for ahead, spread
// over the tiles before, they are in cache when the packing comes.
static inline __attribute__((always_inline)) void gemm_tile_ahead(int rows, int cols, int readable, int depth,
    const aert_real *restrict a, size_t a_row, size_t a_k, const aert_real *restrict b, size_t b_k,
    aert_real *restrict c, size_t ldc, const aert_real *ahead, int ahead_rows, size_t ahead_stride, int accumulate) {
  if (rows == GEMM_ROWS && a_k == 1) {
#ifdef AERT_GEMM_STRIDES
    switch (a_row) { AERT_GEMM_STRIDES(AERT_GEMM_STRIDE_CASE) }
#endif
    gemm_rows(GEMM_ROWS, cols, readable, depth, a, a_row, 1, b, b_k, c, ldc, ahead, ahead_rows, ahead_stride, accumulate);
    return;
  }
  if (rows == GEMM_ROWS) {
#if AERT_TILE_ROWS == 14
    AERT_GEMM_CALL(14, a, c, ahead, ahead_rows, ahead_stride);
#elif AERT_TILE_ROWS == 3
    AERT_GEMM_CALL(3, a, c, ahead, ahead_rows, ahead_stride);
#else
    AERT_GEMM_CALL(1, a, c, ahead, ahead_rows, ahead_stride);
#endif
    return;
  }
  int r = 0;
#if AERT_TILE_ROWS > 4
  for (; r + 4 <= rows; r += 4) AERT_GEMM_CALL(4, a + (size_t)r * a_row, c + (size_t)r * ldc, NULL, 0, 0);
#endif
#if AERT_TILE_ROWS > 2
  if (r + 2 <= rows) {
    AERT_GEMM_CALL(2, a + (size_t)r * a_row, c + (size_t)r * ldc, NULL, 0, 0);
    r += 2;
  }
#endif
  if (r < rows) AERT_GEMM_CALL(1, a + (size_t)r * a_row, c + (size_t)r * ldc, NULL, 0, 0);
}

static inline __attribute__((always_inline)) void gemm_tile(int rows, int cols, int readable, int depth,
    const aert_real *restrict a, size_t a_row, size_t a_k, const aert_real *restrict b, size_t b_k,
    aert_real *restrict c, size_t ldc) {
  gemm_tile_ahead(rows, cols, readable, depth, a, a_row, a_k, b, b_k, c, ldc, NULL, 0, 0, 0);
}

// r[i][j] becomes r[j][i]: each round swaps one bit of the row index with the
// same bit of the lane index through two-vector shuffles.
static inline __attribute__((always_inline)) void transpose_square(vreal r[VL]) {
#pragma GCC unroll 4
  for (int bit = 1; bit < VL; bit *= 2) {
    vlane_index low, high;
    for (int j = 0; j < VL; j++) {
      low[j] = j & bit ? VL + j - bit : j;
      high[j] = j & bit ? VL + j : j + bit;
    }
#pragma GCC unroll 16
    for (int i = 0; i < VL; i++)
      if (!(i & bit)) {
        const vreal x = r[i], y = r[i | bit];
        r[i] = __builtin_shuffle(x, y, low);
        r[i | bit] = __builtin_shuffle(x, y, high);
      }
  }
}

// panel[k][j] = b[(j0 + j) * depth + k] for k < depth and j < cols, zeros for j
// from cols to GEMM_COLS: a column block of b^T, an input gradient's panel.
// It goes VL x VL elements at a time, by squares of vectors: element by
// element, this copy is a sizeable part of the product's time.
static __attribute__((noinline, unused)) void pack_transposed(aert_real *restrict panel, const aert_real *restrict b,
                                                                  int depth, int j0, int cols) {
  const int squares = depth / VL * VL;
  for (int k0 = 0; k0 < squares; k0 += VL)
    for (int half = 0; half < 2; half++) {
      vreal r[VL];
#pragma GCC unroll 16
      for (int i = 0; i < VL; i++)
        r[i] = half * VL + i < cols ? *(const vreal_unaligned *)(b + (size_t)(j0 + half * VL + i) * depth + k0) : (vreal){0};
      transpose_square(r);
#pragma GCC unroll 16
      for (int i = 0; i < VL; i++) *(vreal *)(panel + (size_t)(k0 + i) * GEMM_COLS + half * VL) = r[i];
    }
  for (int k = squares; k < depth; k++)
    for (int j = 0; j < GEMM_COLS; j++) panel[(size_t)k * GEMM_COLS + j] = j < cols ? b[(size_t)(j0 + j) * depth + k] : 0;
}

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

// AdamW (Loshchilov & Hutter), as PyTorch: the decoupled decay p *= 1 - lr *
// weight_decay, then Adam's update as adam() does it, in the same pass.
static inline void adamw(aert_real *restrict p, const aert_real *restrict g, aert_real *restrict m,
                         aert_real *restrict v, size_t size, aert_real lr, aert_real beta1, aert_real beta2,
                         aert_real eps, aert_real weight_decay, double t) {
  const aert_real keep = (aert_real)(1 - (double)lr * (double)weight_decay);
  const aert_real bias_correction1 = (aert_real)(1 - pow((double)beta1, t));
  const aert_real bias_correction2_sqrt = (aert_real)sqrt(1 - pow((double)beta2, t));
  const aert_real step_size = lr / bias_correction1, inverse_correction2 = 1 / bias_correction2_sqrt;
#pragma omp parallel for simd schedule(dynamic, 4096) if (size >= 16384)
  for (size_t i = 0; i < size; i++) {
    p[i] *= keep;
    m[i] += (1 - beta1) * (g[i] - m[i]);
    v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
    p[i] -= step_size * m[i] / (sqrt(v[i]) * inverse_correction2 + eps);
  }
}

// RMSprop (Hinton), as PyTorch's uncentred one: square_avg = alpha *
// square_avg + (1 - alpha) * g^2 and avg = sqrt(square_avg) + eps; with a
// momentum buffer (NULL when momentum is 0), buffer = momentum * buffer + g /
// avg and p -= lr * buffer, else p -= lr * g / avg.
static inline void rmsprop(aert_real *restrict p, const aert_real *restrict g, aert_real *restrict square_avg,
                           aert_real *restrict momentum_buffer, size_t size, aert_real lr, aert_real alpha,
                           aert_real eps, aert_real momentum) {
  if (momentum_buffer) {
#pragma omp parallel for simd schedule(static) if (size >= 65536)
    for (size_t i = 0; i < size; i++) {
      square_avg[i] = alpha * square_avg[i] + (1 - alpha) * g[i] * g[i];
      momentum_buffer[i] = momentum * momentum_buffer[i] + g[i] / ((aert_real)sqrt(square_avg[i]) + eps);
      p[i] -= lr * momentum_buffer[i];
    }
  } else {
#pragma omp parallel for simd schedule(static) if (size >= 65536)
    for (size_t i = 0; i < size; i++) {
      square_avg[i] = alpha * square_avg[i] + (1 - alpha) * g[i] * g[i];
      p[i] -= lr * g[i] / ((aert_real)sqrt(square_avg[i]) + eps);
    }
  }
}

// The mean over a batch of n per-sample scalars (eval_loss_parts: a per-sample part of a loss).
static inline double aert_batch_mean(const aert_real *v, int n) {
  double sum = 0;
  for (int i = 0; i < n; i++) sum += v[i];
  return n > 0 ? sum / n : 0;
}

// ---- batch normalization (aec's batchnorm, compiler/ops/norm.c)
// A value of n samples, each `channels` channels of `spatial` positions
// ([units]: spatial 1; [c, h, w]: h * w), normalized per channel over its
// n * spatial elements. Threads take blocks of channels (one channel where a
// channel's positions make a contiguous run, else AERT_BATCHNORM_BLOCK
// neighbouring units, so a row of a dense value is read in order), and each
// channel's sums run in batch order, in double: the results do not depend on
// the number of threads.
enum { AERT_BATCHNORM_BLOCK = 16 };

static inline int aert_batchnorm_block(int spatial) { return spatial >= AERT_BATCHNORM_BLOCK ? 1 : AERT_BATCHNORM_BLOCK; }

// The sums over the batch of f(v) for channels c0..c1-1 of v (at most a block), into sum[c - c0].
#define AERT_BATCHNORM_SUMS(n, channels, spatial, c0, c1, sum, EXPR)  \
  do {                                                                 \
    for (int c_ = (c0); c_ < (c1); c_++) (sum)[c_ - (c0)] = 0;         \
    for (int i_ = 0; i_ < (n); i_++)                                   \
      for (int c_ = (c0); c_ < (c1); c_++) {                           \
        const size_t at_ = ((size_t)i_ * (channels) + c_) * (spatial); \
        double s_ = (sum)[c_ - (c0)];                                  \
        for (int p_ = 0; p_ < (spatial); p_++) {                       \
          const size_t at = at_ + (size_t)p_;                          \
          const int k = c_ - (c0);                                     \
          (void)k;                                                     \
          s_ += (EXPR);                                                \
        }                                                              \
        (sum)[c_ - (c0)] = s_;                                         \
      }                                                                \
  } while (0)

// The batch's mean and biased variance (centred, two passes) of channels c0..c1-1.
static inline void aert_batchnorm_moments(const aert_real *x, int n, int channels, int spatial, int c0, int c1,
                                          double *mean, double *var) {
  const double count = (double)n * spatial;
  AERT_BATCHNORM_SUMS(n, channels, spatial, c0, c1, mean, x[at]);
  for (int c = c0; c < c1; c++) mean[c - c0] = count > 0 ? mean[c - c0] / count : 0;
  AERT_BATCHNORM_SUMS(n, channels, spatial, c0, c1, var, (x[at] - mean[k]) * (x[at] - mean[k]));
  for (int c = c0; c < c1; c++) var[c - c0] = count > 0 ? var[c - c0] / count : 0;
}

// Training: y = (x - mean) / sqrt(var + eps) * scale + shift with the batch's
// statistics, and running = (1 - momentum) * running + momentum * the
// batch's, the variance unbiased (as PyTorch; a channel of one element keeps
// its biased variance, 0).
static inline void aert_batchnorm_train(int n, int channels, int spatial, const aert_real *restrict x,
                                        const aert_real *restrict scale, const aert_real *restrict shift,
                                        aert_real *restrict running_mean, aert_real *restrict running_var, double eps,
                                        double momentum, aert_real *restrict y) {
  const int block = aert_batchnorm_block(spatial);
  const double count = (double)n * spatial;
#pragma omp parallel for schedule(static) if ((size_t)n * channels * spatial >= 65536)
  for (int c0 = 0; c0 < channels; c0 += block) {
    const int c1 = c0 + block < channels ? c0 + block : channels;
    double mean[AERT_BATCHNORM_BLOCK], var[AERT_BATCHNORM_BLOCK];
    aert_real a[AERT_BATCHNORM_BLOCK], b[AERT_BATCHNORM_BLOCK];
    aert_batchnorm_moments(x, n, channels, spatial, c0, c1, mean, var);
    for (int c = c0; c < c1; c++) {
      const int k = c - c0;
      a[k] = (aert_real)(scale[c] / sqrt(var[k] + eps)), b[k] = (aert_real)(shift[c] - mean[k] * a[k]);
      running_mean[c] = (aert_real)((1 - momentum) * running_mean[c] + momentum * mean[k]);
      running_var[c] =
          (aert_real)((1 - momentum) * running_var[c] + momentum * (count > 1 ? var[k] * count / (count - 1) : var[k]));
    }
    for (int i = 0; i < n; i++)
      for (int c = c0; c < c1; c++) {
        const size_t at = ((size_t)i * channels + c) * spatial;
        for (int p = 0; p < spatial; p++) y[at + p] = x[at + p] * a[c - c0] + b[c - c0];
      }
  }
}

// Inference: the running statistics instead of the batch's; each sample on its own.
static inline void aert_batchnorm_infer(int n, int channels, int spatial, const aert_real *restrict x,
                                        const aert_real *restrict scale, const aert_real *restrict shift,
                                        const aert_real *restrict running_mean, const aert_real *restrict running_var,
                                        double eps, aert_real *restrict y) {
#pragma omp parallel for schedule(static) if ((size_t)n * channels * spatial >= 65536)
  for (int i = 0; i < n; i++)
    for (int c = 0; c < channels; c++) {
      const aert_real a = (aert_real)(scale[c] / sqrt(running_var[c] + eps)), b = shift[c] - running_mean[c] * a;
      const size_t at = ((size_t)i * channels + c) * spatial;
      for (int p = 0; p < spatial; p++) y[at + p] = x[at + p] * a + b;
    }
}

// The gradient of the input through the batch's mean and variance: with
// xhat = (x - mean) / sqrt(var + eps), dx = scale / sqrt(var + eps) *
// (dy - mean(dy) - xhat * mean(dy * xhat)), the means over the channel.
static inline void aert_batchnorm_grad_input(int n, int channels, int spatial, const aert_real *restrict x,
                                             const aert_real *restrict scale, const aert_real *restrict dy, double eps,
                                             aert_real *restrict dx) {
  const int block = aert_batchnorm_block(spatial);
  const double count = (double)n * spatial;
#pragma omp parallel for schedule(static) if ((size_t)n * channels * spatial >= 65536)
  for (int c0 = 0; c0 < channels; c0 += block) {
    const int c1 = c0 + block < channels ? c0 + block : channels;
    double mean[AERT_BATCHNORM_BLOCK], var[AERT_BATCHNORM_BLOCK], inv[AERT_BATCHNORM_BLOCK];
    double sum_dy[AERT_BATCHNORM_BLOCK], sum_dy_xhat[AERT_BATCHNORM_BLOCK];
    aert_batchnorm_moments(x, n, channels, spatial, c0, c1, mean, var);
    for (int k = 0; k < c1 - c0; k++) inv[k] = 1 / sqrt(var[k] + eps);
    AERT_BATCHNORM_SUMS(n, channels, spatial, c0, c1, sum_dy, dy[at]);
    AERT_BATCHNORM_SUMS(n, channels, spatial, c0, c1, sum_dy_xhat, dy[at] * ((x[at] - mean[k]) * inv[k]));
    for (int i = 0; i < n; i++)
      for (int c = c0; c < c1; c++) {
        const int k = c - c0;
        const double a = scale[c] * inv[k], mean_dy = sum_dy[k] / count, mean_dy_xhat = sum_dy_xhat[k] / count;
        const size_t at = ((size_t)i * channels + c) * spatial;
        for (int p = 0; p < spatial; p++)
          dx[at + p] = (aert_real)(a * (dy[at + p] - mean_dy - (x[at + p] - mean[k]) * inv[k] * mean_dy_xhat));
      }
  }
}

// The scale's gradient: the sum over the channel of dy * xhat.
static inline void aert_batchnorm_grad_scale(int n, int channels, int spatial, const aert_real *restrict x,
                                             const aert_real *restrict dy, double eps, aert_real *restrict dscale) {
  const int block = aert_batchnorm_block(spatial);
#pragma omp parallel for schedule(static) if ((size_t)n * channels * spatial >= 65536)
  for (int c0 = 0; c0 < channels; c0 += block) {
    const int c1 = c0 + block < channels ? c0 + block : channels;
    double mean[AERT_BATCHNORM_BLOCK], var[AERT_BATCHNORM_BLOCK], inv[AERT_BATCHNORM_BLOCK], sum[AERT_BATCHNORM_BLOCK];
    aert_batchnorm_moments(x, n, channels, spatial, c0, c1, mean, var);
    for (int k = 0; k < c1 - c0; k++) inv[k] = 1 / sqrt(var[k] + eps);
    AERT_BATCHNORM_SUMS(n, channels, spatial, c0, c1, sum, dy[at] * ((x[at] - mean[k]) * inv[k]));
    for (int c = c0; c < c1; c++) dscale[c] = (aert_real)sum[c - c0];
  }
}

// The shift's gradient: the sum over the channel of dy.
static inline void aert_batchnorm_grad_shift(int n, int channels, int spatial, const aert_real *restrict dy,
                                             aert_real *restrict dshift) {
  const int block = aert_batchnorm_block(spatial);
#pragma omp parallel for schedule(static) if ((size_t)n * channels * spatial >= 65536)
  for (int c0 = 0; c0 < channels; c0 += block) {
    const int c1 = c0 + block < channels ? c0 + block : channels;
    double sum[AERT_BATCHNORM_BLOCK];
    AERT_BATCHNORM_SUMS(n, channels, spatial, c0, c1, sum, dy[at]);
    for (int c = c0; c < c1; c++) dshift[c] = (aert_real)sum[c - c0];
  }
}

#endif  // AERT_KERNELS_SHARED_ONLY
#endif  // AERT_KERNELS_H
