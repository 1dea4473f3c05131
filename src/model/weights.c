/* Which model a weights file holds, read from its tensor shapes: a file written by PyTorch
 * (safetensors.torch.save_file(model.state_dict(), path)) carries no metadata, but its shapes tell the
 * models apart (conv1's output channels, conv2's input channels per group, the hidden widths) and give
 * the classes (the last layer's rows). A model fits when every tensor the planner gives it for those
 * classes is in the file, F32, in that shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/io.h"
#include "alexnet/model.h"
#include "runtime/check.h"

#define PLAN_INPUT 224 /* any input the models take: the adaptive pool fixes every parameter's shape */

static void dims_str(char *buf, size_t size, int ndim, const int64_t *shape) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "," : "", (long long)shape[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
}

static void tensor_str(char *buf, size_t size, const an_tensor *t) {
  int64_t shape[4];
  for (int i = 0; i < t->ndim; i++) shape[i] = t->shape[i];
  dims_str(buf, size, t->ndim, shape);
}

/* The classes the file gives m: the rows of m's last layer's weight; 0 (and why) when it has none. */
static int classes_of(const an_safetensors *st, const an_model_desc *m, char *why, size_t size) {
  char name[96];
  snprintf(name, sizeof name, "%s.weight", m->layers[m->n_layers - 1].name);
  const int j = an_st_find(st, name);
  if (j < 0) {
    snprintf(why, size, "tensor %s (the classes are its rows) is missing", name);
    return 0;
  }
  const an_st_tensor *f = &st->tensors[j];
  if (f->ndim != 2 || f->shape[0] < 1 || f->shape[0] > (1 << 30)) {
    char have[96];
    dims_str(have, sizeof have, f->ndim, f->shape);
    snprintf(why, size, "tensor %s has shape %s, model %s needs [classes, inputs]", name, have, m->name);
    return 0;
  }
  return (int)f->shape[0];
}

/* 1 when every tensor of m for `classes` is in the file as m needs it; else 0 and why (the first
 * tensor that is not). */
static an_status fits(const an_safetensors *st, const an_model_desc *m, int classes, int *ok, char *why,
                      size_t size) {
  *ok = 0;
  an_layer_plan *layers = calloc((size_t)m->n_layers, sizeof *layers);   /* (n_layers) */
  an_tensor *tensors = calloc((size_t)2 * m->n_layers, sizeof *tensors); /* (2 n_layers) */
  int n_tensors = 0;
  size_t n_params = 0;
  an_status status = AN_OK;
  if (!layers || !tensors) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: model %s's tensor table", st->source, m->name);
    goto cleanup;
  }
  AN_TRY_GOTO(an_plan_layers(m, classes, PLAN_INPUT, 0, layers, tensors, &n_tensors, &n_params));
  *ok = 1;
  for (int i = 0; i < n_tensors && *ok; i++) {
    const an_tensor *t = &tensors[i];
    char need[96], have[96];
    tensor_str(need, sizeof need, t);
    const int j = an_st_find(st, t->name);
    if (j < 0) {
      snprintf(why, size, "tensor %s is missing (model %s needs %s)", t->name, m->name, need);
      *ok = 0;
      continue;
    }
    const an_st_tensor *f = &st->tensors[j];
    int same = f->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = f->shape[d] == t->shape[d];
    dims_str(have, sizeof have, f->ndim, f->shape);
    if (!same) snprintf(why, size, "tensor %s has shape %s, model %s needs %s", t->name, have, m->name, need);
    else if (f->dtype != AN_DTYPE_F32)
      snprintf(why, size, "tensor %s has dtype %s, model %s needs F32", t->name, an_dtype_name(f->dtype), m->name);
    *ok = same && f->dtype == AN_DTYPE_F32;
  }
cleanup:
  free(tensors);
  free(layers);
  return status;
}

/* m's fit to the file: *ok, *classes, and why not. */
static an_status try_model(const an_safetensors *st, const an_model_desc *m, int *ok, int *classes, char *why,
                           size_t size) {
  *ok = 0;
  *classes = classes_of(st, m, why, size);
  if (!*classes) return AN_OK;
  return fits(st, m, *classes, ok, why, size);
}

an_status an_model_identify(const an_safetensors *st, const char *want, const an_model_desc **model_out,
                            int *classes_out) {
  *model_out = NULL, *classes_out = 0;
  const char *src = st->source, *named = an_st_meta_get(st, "model");
  const an_model_desc *want_m = NULL;
  if (want) AN_TRY(an_model_lookup(want, &want_m));
  if (named && want && strcmp(named, want))
    return AN_FAIL(AN_ERR_ARGUMENT, "%s: holds weights of model %.40s (its metadata say so), not %s", src, named,
                   want);
  if (named && !want) AN_TRY(an_model_lookup(named, &want_m));
  char why_want[256] = "", why[4][256], all[1100] = "";
  const an_model_desc *found = NULL;
  int found_classes = 0, ok, classes;
  if (want_m) {
    AN_TRY(try_model(st, want_m, &ok, &classes, why_want, sizeof why_want));
    if (ok) found = want_m, found_classes = classes;
  }
  for (int i = 0; !found && an_model_at(i) && i < 4; i++) {
    const an_model_desc *m = an_model_at(i);
    AN_TRY(try_model(st, m, &ok, &classes, why[i], sizeof why[i]));
    if (ok && !want_m) found = m, found_classes = classes;
    else if (ok) /* the file holds another model than the one asked for */
      return AN_FAIL(AN_ERR_ARGUMENT, "%s: %s: the file holds %s weights (%d classes)", src, why_want, m->name,
                     classes);
    if (!ok) snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", all[0] ? "; " : "", why[i]);
  }
  if (!found) return AN_FAIL(AN_ERR_ARGUMENT, "%s: its tensors fit none of the models: %s", src, all);
  const char *k = an_st_meta_get(st, "classes");
  if (k && atoi(k) != found_classes)
    return AN_FAIL(AN_ERR_ARGUMENT, "%s: __metadata__ classes is %.20s, the last layer has %d rows", src, k,
                   found_classes);
  *model_out = found, *classes_out = found_classes;
  return AN_OK;
}

an_status an_model_identify_file(const char *path, const char *want, const an_model_desc **model, int *classes) {
  an_safetensors *st = NULL;
  *model = NULL, *classes = 0;
  AN_TRY(an_st_open(path, &st));
  const an_status status = an_model_identify(st, want, model, classes);
  an_st_close(st);
  return status;
}
