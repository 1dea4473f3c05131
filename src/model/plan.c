/* The one planner: a model table's shapes and parameter tensors, read from the layer table's shape and
 * parameter rules. The training net (net.c) and the inference plan (infer/infer.c) both start here and
 * then lay out their buffers their own way: training keeps every activation for the backward pass,
 * inference reuses two regions and chunks its workspace. */
#include <stdio.h>

#include "alexnet/model.h"
#include "runtime/check.h"

static int add_tensor(an_tensor *tensors, int *n_tensors, size_t *n_params, const char *layer, const char *suffix,
                      int ndim, const int *shape, int is_bias, int stored) {
  an_tensor *t = &tensors[*n_tensors];
  snprintf(t->name, sizeof t->name, "%s.%s", layer, suffix);
  t->ndim = ndim;
  t->count = 1;
  for (int i = 0; i < 4; i++) t->shape[i] = i < ndim ? shape[i] : 1;
  for (int i = 0; i < ndim; i++) t->count *= (size_t)shape[i];
  t->offset = stored ? *n_params : 0;
  t->is_bias = is_bias;
  if (stored) *n_params += t->count;
  return (*n_tensors)++;
}

/* The dropout keys count the layers of the single-device model: a column model's exchanges are not
 * layers of it. */
static int key_index(const an_model_desc *m, const an_layer_plan *layers, int i) {
  if (i == 0) return 0;
  const an_layer_kind prev = m->layers[i - 1].kind;
  return layers[i - 1].key_index + (prev == AN_LAYER_GATHER || prev == AN_LAYER_SUM ? 0 : 1);
}

an_status an_plan_layers(const an_model_desc *m, int classes, int input_hw, int fc_weights_apart,
                         an_layer_plan *layers, an_tensor *tensors, int *n_tensors, size_t *n_params) {
  int in[3] = {3, input_hw, input_hw};
  *n_tensors = 0, *n_params = 0;
  for (int i = 0; i < m->n_layers; i++) {
    const an_layer_desc *d = &m->layers[i];
    const an_layer_ops *ops = an_layer_ops_of(d->kind);
    an_layer_plan *L = &layers[i];
    int out[3], ndim[2] = {0, 0}, shape[2][4];
    L->desc = d;
    L->in_c = in[0], L->in_h = in[1], L->in_w = in[2];
    L->weight = L->bias = -1;
    L->key_index = key_index(m, layers, i);
    if (!ops->out_shape(d, classes, in, out))
      return AN_FAIL(AN_ERR_ARGUMENT, "%s: an input of %dx%d is too small (layer %d sees %dx%d)", m->name, input_hw,
                     input_hw, i, in[1], in[2]);
    const int n_params_of = ops->param_shapes(d, in, out, ndim, shape);
    if (n_params_of > 0 && ndim[0])
      L->weight = add_tensor(tensors, n_tensors, n_params, d->name, "weight", ndim[0], shape[0], 0,
                             !(fc_weights_apart && d->kind == AN_LAYER_FC));
    if (n_params_of > 1 && ndim[1])
      L->bias = add_tensor(tensors, n_tensors, n_params, d->name, "bias", ndim[1], shape[1], 1, 1);
    L->out_c = out[0], L->out_h = out[1], L->out_w = out[2];
    in[0] = out[0], in[1] = out[1], in[2] = out[2];
  }
  return AN_OK;
}
