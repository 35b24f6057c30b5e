// rng.c — the counter-based generator: every draw is a pure function of
// (key, counter), so any value can be recomputed and threads share no state.
#include <math.h>

#include "core.h"

// The 64-bit finalizer of SplitMix64 (Stafford's variant 13): a bijection
// whose output bits each depend on every input bit.
static uint64_t mix64(uint64_t z) {
  z ^= z >> 30;
  z *= 0xbf58476d1ce4e5b9ULL;
  z ^= z >> 27;
  z *= 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return z;
}

// Two rounds, the key entering each: distinct keys give unrelated streams
// even for neighbouring counters.
uint64_t aert_hash64(uint64_t key, uint64_t counter) {
  uint64_t k = mix64(key ^ 0x243f6a8885a308d3ULL);
  uint64_t x = mix64(counter * 0x9e3779b97f4a7c15ULL + k);
  return mix64(x ^ (k << 1 | k >> 63));
}

double aert_uniform01(uint64_t key, uint64_t counter) {
  return (double)(aert_hash64(key, counter) >> 11) * 0x1.0p-53;
}

// Box–Muller from counters 2c and 2c+1; u1 lies in (0, 1] so the log is finite.
double aert_normal(uint64_t key, uint64_t counter) {
  double u1 = (double)((aert_hash64(key, 2 * counter) >> 11) + 1) * 0x1.0p-53;
  double u2 = (double)(aert_hash64(key, 2 * counter + 1) >> 11) * 0x1.0p-53;
  return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t aert_stream_key(uint64_t seed, uint64_t stream, uint64_t index) {
  return aert_hash64(aert_hash64(seed, stream), index);
}

// An integer uniform in [0, bound) from 64 random bits (multiply-high; the
// bias is below 2^-32 for any bound that fits in 32 bits).
static size_t below(uint64_t bits, size_t bound) {
  return (size_t)(((unsigned __int128)bits * bound) >> 64);
}

void aert_shuffle(uint32_t *order, size_t n, uint64_t seed, uint64_t epoch) {
  for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
  uint64_t key = aert_stream_key(seed, AERT_STREAM_SHUFFLE, epoch);
  for (size_t i = n; i > 1; i--) {
    size_t j = below(aert_hash64(key, i), i);
    uint32_t t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
}
