/* conv1's kernels as a picture, as Figure 3 of the paper: each (3, K, K) kernel contrast-normalised on
 * its own and enlarged, in a grid; for alexnet the two columns' kernels (0-47 and 48-95, the paper's two
 * GPUs) are two grids side by side. Reads the weight from the file alone: no device needed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/infer.h"
#include "alexnet/io.h"
#include "runtime/check.h"

#define BACKGROUND 128

an_status an_filters_render(const char *path, const char *model, int scale, int pad, an_image *img,
                            an_filters_layout *layout) {
  memset(img, 0, sizeof *img);
  memset(layout, 0, sizeof *layout);
  if (scale < 1 || scale > 64 || pad < 0 || pad > 64)
    return AN_FAIL(AN_ERR_ARGUMENT, "filters: scale %d (1-64) or padding %d (0-64) out of range", scale, pad);
  an_safetensors *st = NULL;
  AN_TRY(an_st_open(path, &st));
  an_status status = AN_OK;
  float *w = NULL; /* (OC, 3, K, K) */
  const char *file_model = an_st_meta_get(st, "model");
  if (!model) model = file_model ? file_model : "alexnet-half";
  const an_model_desc *m = an_model_find(model);
  if (!m) {
    char names[128];
    an_model_names(names, sizeof names);
    status = AN_FAIL(AN_ERR_UNKNOWN_MODEL, "%s: unknown model '%s' (the models are %s)", path, model, names);
    goto cleanup;
  }
  char name[96];
  snprintf(name, sizeof name, "%s.weight", m->layers[0].name);
  const int j = an_st_find(st, name);
  if (j < 0) {
    status = AN_FAIL(AN_ERR_ARGUMENT, "%s: no tensor %s (conv1 of %s)", path, name, m->name);
    goto cleanup;
  }
  const an_st_tensor *t = &st->tensors[j];
  if (t->dtype != AN_DTYPE_F32 || t->ndim != 4 || t->shape[1] != 3 || t->shape[2] != t->shape[3] ||
      t->shape[0] < 1 || t->shape[0] > 4096 || t->shape[2] < 1 || t->shape[2] > 64) {
    status = AN_FAIL(AN_ERR_ARGUMENT, "%s: %s is not an F32 (OC, 3, K, K) kernel bank", path, name);
    goto cleanup;
  }
  const int oc = (int)t->shape[0], k = (int)t->shape[2];
  if (!(w = malloc((size_t)t->count * sizeof *w))) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: %s", path, name);
    goto cleanup;
  }
  if ((status = an_st_read(st, j, w, (size_t)t->count * sizeof *w)) != AN_OK) goto cleanup;

  an_filters_layout L = {.kernels = oc, .kernel = k, .scale = scale, .pad = pad};
  L.columns = !strcmp(m->name, "alexnet") && oc % 2 == 0 ? 2 : 1;
  const int per_column = oc / L.columns;
  L.grid_cols = (int)ceil(sqrt(per_column * 4.0 / 3.0)); /* a little wider than tall */
  L.grid_rows = (per_column + L.grid_cols - 1) / L.grid_cols;
  const int cell = k * scale + pad, gap = 4 * pad;
  const int grid_w = L.grid_cols * cell + pad;
  L.width = L.columns * grid_w + (L.columns - 1) * gap;
  L.height = L.grid_rows * cell + pad;
  img->pixels = malloc((size_t)L.width * L.height * 3); /* (H, W, 3) */
  if (!img->pixels) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "filters: a %dx%d image", L.width, L.height);
    goto cleanup;
  }
  memset(img->pixels, BACKGROUND, (size_t)L.width * L.height * 3);
  img->width = L.width, img->height = L.height, img->channels = 3;
  const size_t kernel_floats = (size_t)3 * k * k;
  for (int o = 0; o < oc; o++) {
    const float *kw = w + (size_t)o * kernel_floats; /* (3, K, K) */
    float lo = kw[0], hi = kw[0];
    for (size_t i = 1; i < kernel_floats; i++) lo = kw[i] < lo ? kw[i] : lo, hi = kw[i] > hi ? kw[i] : hi;
    const float range = hi - lo;
    const int col = o / per_column, idx = o % per_column;
    const int x0 = col * (grid_w + gap) + pad + (idx % L.grid_cols) * cell, y0 = pad + (idx / L.grid_cols) * cell;
    for (int y = 0; y < k * scale; y++)
      for (int x = 0; x < k * scale; x++) {
        uint8_t *p = img->pixels + ((size_t)(y0 + y) * L.width + x0 + x) * 3;
        for (int c = 0; c < 3; c++) {
          const float v = kw[((size_t)c * k + y / scale) * k + x / scale];
          p[c] = range > 0 ? (uint8_t)lrintf((v - lo) / range * 255.0f) : BACKGROUND;
        }
      }
  }
  *layout = L;
cleanup:
  if (status != AN_OK) an_image_free(img);
  free(w);
  an_st_close(st);
  return status;
}
