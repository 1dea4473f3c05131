/* A synthetic dataset for tests: small RGB images whose class is visible (a hue and a stripe pattern)
 * under random phase, brightness and pixel noise, so a short training run must learn well above chance
 * and a broken pipeline (labels shuffled against images, channels swapped) shows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "data/data_internal.h"

static void hue_to_rgb(double h, double rgb[3]) { /* saturation 0.7, value 0.9 */
  const double s = 0.7, v = 0.9;
  const double h6 = fmod(h, 1.0) * 6.0, f = h6 - floor(h6);
  const double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch ((int)h6 % 6) {
    case 0: rgb[0] = v, rgb[1] = t, rgb[2] = p; break;
    case 1: rgb[0] = q, rgb[1] = v, rgb[2] = p; break;
    case 2: rgb[0] = p, rgb[1] = v, rgb[2] = t; break;
    case 3: rgb[0] = p, rgb[1] = q, rgb[2] = v; break;
    case 4: rgb[0] = t, rgb[1] = p, rgb[2] = v; break;
    default: rgb[0] = v, rgb[1] = p, rgb[2] = q; break;
  }
}

an_status an_dataset_synthetic(const an_synthetic_config *cfg, an_dataset **out) {
  *out = NULL;
  if (!cfg || cfg->count < 1 || cfg->classes < 1 || cfg->classes > 64 || cfg->side < 4 || cfg->side > 1024 ||
      !(cfg->noise >= 0 && cfg->noise <= 1) || (size_t)cfg->count * cfg->side * cfg->side * 3 > (1ull << 31))
    return AN_FAIL(AN_ERR_ARGUMENT, "synthetic: count %d, classes %d (1…64), side %d (4…1024), noise %g ([0, 1])",
                   cfg ? cfg->count : 0, cfg ? cfg->classes : 0, cfg ? cfg->side : 0, cfg ? cfg->noise : 0.0);
  char source[128];
  snprintf(source, sizeof source, "synthetic(%d classes, %dx%d, seed %llu)", cfg->classes, cfg->side, cfg->side,
           (unsigned long long)cfg->seed);
  an_store *s = an_store_new(STORE_MEMORY, source);
  if (!s) return AN_ERR_HOST_ALLOC;
  an_status status = AN_OK;
  const int side = cfg->side, n = cfg->count, K = cfg->classes;
  s->n = n;
  s->width = s->height = side;
  s->channels = 3;
  s->image_bytes = (size_t)side * side * 3;
  s->pixels = malloc(s->image_bytes * (size_t)n); /* (N, side, side, 3) */
  s->labels = malloc(sizeof(int) * (size_t)n);    /* (N) */
  char(*names)[16] = malloc(sizeof *names * (size_t)K);
  const char **name_at = malloc(sizeof *name_at * (size_t)K);
  if (!s->pixels || !s->labels || !names || !name_at) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "synthetic: out of host memory for %d images", n);
    goto cleanup;
  }
  for (int c = 0; c < K; c++) {
    snprintf(names[c], sizeof names[c], "class%02d", c);
    name_at[c] = names[c];
  }
  if ((status = an_store_set_classes(s, K, name_at)) != AN_OK) goto cleanup;
  for (int i = 0; i < n; i++) {
    const int c = i % K;
    s->labels[i] = c;
    an_rng rng = an_data_rng(cfg->seed ^ an_mix64((uint64_t)i * AN_RNG_GOLDEN + 7));
    double colour[3];
    hue_to_rgb((double)c / K, colour);
    const double angle = 3.14159265358979 * (c % 4) / 4.0; /* 0, 45, 90, 135 degrees */
    const double cycles = 1.5 + (c / 4) % 4;               /* stripes across the image */
    const double phase = 6.283185307179586 * an_rng_uniform(&rng);
    const double bright = 0.75 + 0.25 * an_rng_uniform(&rng);
    const double ca = cos(angle), sa = sin(angle);
    uint8_t *px = s->pixels + (size_t)i * s->image_bytes;
    for (int y = 0; y < side; y++)
      for (int x = 0; x < side; x++) {
        const double u = (x * ca + y * sa) / side;
        const double stripe = 0.55 + 0.45 * sin(6.283185307179586 * cycles * u + phase);
        for (int ch = 0; ch < 3; ch++) {
          double v = bright * colour[ch] * stripe + cfg->noise * an_rng_normal(&rng);
          v = v < 0 ? 0 : (v > 1 ? 1 : v);
          px[((size_t)y * side + x) * 3 + ch] = (uint8_t)lrint(v * 255.0);
        }
      }
  }
  status = an_dataset_from_store(s, NULL, n, out);
cleanup:
  an_store_release(s);
  free(names);
  free(name_at);
  return status;
}
