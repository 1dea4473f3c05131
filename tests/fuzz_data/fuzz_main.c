/* Standalone driver for the data fuzz harnesses (without libFuzzer): runs the built-in seeds and any
 * files given, then N mutations of them (bit flips, interesting bytes and 32-bit values, truncation,
 * chunk deletion and duplication) from a fixed seed, so a CI run is short and repeatable. A crash,
 * a sanitizer report or a hang is the failure; the return value of the harness is not.
 *
 *   fuzz_image [--iterations N] [--seed S] [--write-seeds DIR] [FILE…]
 * --write-seeds writes the built-in seeds as files, a starting corpus for a libFuzzer build. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "../../src/runtime/grow.h"
#include "../../src/runtime/rng.h"

typedef struct seed_input {
  uint8_t *data;
  size_t size;
} seed_input;

static seed_input *seeds;
static int n_seeds, cap_seeds;

static void add_seed(const uint8_t *data, size_t size) {
  seed_input *grown = an_grow(seeds, n_seeds, &cap_seeds, sizeof *seeds);
  if (!grown) abort();
  seeds = grown;
  seeds[n_seeds].data = malloc(size ? size : 1);
  if (!seeds[n_seeds].data) abort();
  memcpy(seeds[n_seeds].data, data, size);
  seeds[n_seeds].size = size;
  n_seeds++;
}

static an_rng rng_state;
static uint64_t rng(void) { return an_rng_next(&rng_state); }
static size_t below(size_t n) { return n ? (size_t)(rng() % n) : 0; }

/* One to four mutations of buf (size *n, capacity cap) in place. */
static void mutate(uint8_t *buf, size_t *n, size_t cap) {
  static const uint32_t interesting[] = {0,      1,       0x7f,   0x80,       0xff,        0x7fff,
                                         0xffff, 0x10000, 100000, 0x7fffffff, 0x80000000u, 0xffffffffu};
  const int count = 1 + (int)below(4);
  for (int k = 0; k < count; k++) {
    switch (below(7)) {
      case 0:
        if (*n) buf[below(*n)] ^= (uint8_t)(1u << below(8));
        break;
      case 1:
        if (*n) buf[below(*n)] = (uint8_t)rng();
        break;
      case 2:
        if (*n) buf[below(*n)] = (uint8_t)interesting[below(5)];
        break;
      case 3: /* a 32-bit field, either byte order */
        if (*n >= 4) {
          const uint32_t v = interesting[below(sizeof interesting / sizeof interesting[0])];
          const size_t at = below(*n - 3);
          const int big = (int)below(2);
          for (int i = 0; i < 4; i++) buf[at + i] = (uint8_t)(v >> (big ? 24 - 8 * i : 8 * i));
        }
        break;
      case 4: *n = below(*n + 1); break; /* truncate */
      case 5:                            /* delete a chunk */
        if (*n > 1) {
          const size_t at = below(*n), len = 1 + below(*n - at);
          memmove(buf + at, buf + at + len, *n - at - len);
          *n -= len;
        }
        break;
      default: /* duplicate a chunk */
        if (*n && *n < cap) {
          const size_t at = below(*n), len = 1 + below((*n - at) < (cap - *n) ? (*n - at) : (cap - *n));
          memmove(buf + at + len, buf + at, *n - at);
          *n += len;
        }
        break;
    }
  }
}

static int read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc(size > 0 ? (size_t)size : 1);
  if (!b || (size > 0 && fread(b, 1, (size_t)size, f) != (size_t)size)) {
    fclose(f);
    free(b);
    return 0;
  }
  fclose(f);
  add_seed(b, (size_t)size);
  free(b);
  return 1;
}

int main(int argc, char **argv) {
  long iterations = 2000;
  uint64_t seed = 1;
  const char *write_dir = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--iterations") && i + 1 < argc) iterations = atol(argv[++i]);
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--write-seeds") && i + 1 < argc) write_dir = argv[++i];
    else if (!read_file(argv[i])) {
      fprintf(stderr, "%s: cannot read\n", argv[i]);
      return 2;
    }
  }
  fuzz_seeds(add_seed);
  if (write_dir) {
    for (int s = 0; s < n_seeds; s++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/seed%02d", write_dir, s);
      FILE *f = fopen(path, "wb");
      if (!f || fwrite(seeds[s].data, 1, seeds[s].size, f) != seeds[s].size) {
        fprintf(stderr, "%s: cannot write\n", path);
        return 2;
      }
      fclose(f);
    }
    printf("%d seeds written to %s\n", n_seeds, write_dir);
    return 0;
  }
  size_t max = 0;
  for (int s = 0; s < n_seeds; s++) {
    LLVMFuzzerTestOneInput(seeds[s].data, seeds[s].size);
    if (seeds[s].size > max) max = seeds[s].size;
  }
  const size_t cap = 2 * max + 64;
  uint8_t *buf = malloc(cap);
  if (!buf) return 2;
  rng_state.state = seed;
  const clock_t t0 = clock();
  const char *dump = getenv("FUZZ_DUMP");
  for (long it = 0; it < iterations; it++) {
    const seed_input *s = &seeds[below((size_t)n_seeds)];
    size_t n = s->size;
    memcpy(buf, s->data, n);
    mutate(buf, &n, cap);
    uint8_t *exact = malloc(n ? n : 1); /* its own allocation, so ASan sees any read past the end */
    if (!exact) return 2;
    memcpy(exact, buf, n);
    if (dump) { /* FUZZ_DUMP=file: each input is written there first, so a crash leaves it behind */
      FILE *f = fopen(dump, "wb");
      if (f) fwrite(exact, 1, n, f), fclose(f);
    }
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
  }
  printf("%s: %d seeds and %ld mutations (seed %llu) in %.1f s, no crash\n", argv[0], n_seeds, iterations,
         (unsigned long long)seed, (double)(clock() - t0) / CLOCKS_PER_SEC);
  free(buf);
  for (int s = 0; s < n_seeds; s++) free(seeds[s].data);
  free(seeds);
  return 0;
}
