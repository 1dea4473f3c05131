/* The project's one random generator: splitmix64 (Steele, Lea & Flood 2014), a counter stream whose
 * outputs do not depend on the C library. Weights, data order, augmentation, dropout keys and the
 * tuner's search all draw from it; each keeps its own state. */
#ifndef ALEXNET_RNG_H
#define ALEXNET_RNG_H

#include <math.h>
#include <stdint.h>

#define AN_RNG_GOLDEN 0x9e3779b97f4a7c15ULL /* splitmix64's increment: 2^64 / golden ratio */

/* splitmix64's finaliser: a bijective mix of 64 bits. */
static inline uint64_t an_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

typedef struct an_rng {
  uint64_t state;
} an_rng;

static inline uint64_t an_rng_next(an_rng *r) { return an_mix64(r->state += AN_RNG_GOLDEN); }

/* [0, 1), 53 bits. */
static inline double an_rng_uniform(an_rng *r) { return (double)(an_rng_next(r) >> 11) * 0x1.0p-53; }

/* (0, 1): the midpoint of each of the 2^53 cells, so a log never sees 0. */
static inline double an_rng_uniform_open(an_rng *r) { return ((double)(an_rng_next(r) >> 11) + 0.5) * 0x1.0p-53; }

/* [0, bound) for bound >= 1: the uniform scaled down, so a draw costs one step whatever the bound. */
static inline int an_rng_below(an_rng *r, int bound) {
  const int v = (int)(an_rng_uniform(r) * bound);
  return v < bound ? v : bound - 1;
}

/* N(0, 1) by Box-Muller from two open uniforms (weight initialisation draws these). */
static inline double an_rng_normal_open(an_rng *r) {
  const double u1 = an_rng_uniform_open(r);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * an_rng_uniform_open(r));
}

/* N(0, 1) by Box-Muller from two [0, 1) uniforms, 1 - u1 in (0, 1] under the log (the data side draws
 * these: augmentation's lighting, synthetic noise). From the same state it and an_rng_normal_open give
 * different numbers; both are kept so that existing seeds give the same numbers as before. */
static inline double an_rng_normal(an_rng *r) {
  const double u1 = an_rng_uniform(r), u2 = an_rng_uniform(r);
  return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

#endif
