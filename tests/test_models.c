/* Each whole model against the plain-C reference composed of the same reference layers: forward with
 * dropout active (same keys), the loss, the logits and every parameter gradient of the backward pass,
 * then SGD steps against the reference update. The reference walks the model's const layer table with
 * its own shape arithmetic and takes each tensor from the net's table by name and expected shape, so a
 * planning error (offsets, shapes, names) fails here too.
 *
 * The forward is compared end to end (logits, loss). The reference backward then runs on the device's
 * forward activations (read back, converted to double): in a deep net a few ReLU inputs and max-pool
 * windows sit within float rounding of a decision, and an independent double forward would route
 * those gradients elsewhere; the mismatch would be real arithmetic, not a bug. test_layers checks each
 * layer's forward on its own, so taking the device's activations here hides nothing. How many
 * decisions the double forward takes differently is printed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/model.h"
#include "check.h"
#include "ref.h"

#define SEED 20121203u
#define STEP 7u

#define rt test_rt

/* The tensor called name, checked against the shape the reference expects. */
static const an_tensor *tensor(const an_net *net, const char *layer, const char *suffix, int ndim,
                               const int *shape) {
  char name[96];
  snprintf(name, sizeof name, "%s.%s", layer, suffix);
  for (int t = 0; t < net->n_tensors; t++) {
    const an_tensor *T = &net->tensors[t];
    if (strcmp(T->name, name)) continue;
    assert_int_equal(T->ndim, ndim);
    for (int i = 0; i < ndim; i++) assert_int_equal(T->shape[i], shape[i]);
    return T;
  }
  fail_msg("tensor %s is missing from the net", name);
  return NULL;
}

typedef struct ref_layer {
  int in_c, in_h, in_w, out_c, out_h, out_w;
  double *out, *scale; /* (N, out_c, out_h, out_w); LRN scale */
  const an_tensor *w, *b;
} ref_layer;

static void run_model(const char *model, int classes, int batch, int input_hw) {
  an_net *net;
  TEST_OK(an_net_create(rt, model, classes, batch, input_hw, &net));
  TEST_OK(an_net_init(net, SEED));
  const an_model_desc *m = net->model;
  const int n = batch;

  float *params = test_floats(net->n_params);
  TEST_OK(an_net_read_params(net, params));
  double *P = test_dup_double(params, net->n_params);

  const size_t in_count = (size_t)n * 3 * input_hw * input_hw;
  float *images = test_floats(in_count);
  test_rng rng = test_rng_seeded(SEED + (uint64_t)input_hw);
  test_fill_uniform(images, in_count, -1.7f, 1.7f, &rng);
  int *labels = malloc((size_t)n * sizeof *labels);
  for (int i = 0; i < n; i++) labels[i] = test_rng_below(&rng, classes);

  /* device: forward (train: dropout on), loss, backward */
  TEST_OK(an_net_set_batch(net, images, labels));
  TEST_OK(an_net_forward(net, 1, SEED, STEP));
  TEST_OK(an_net_backward(net, SEED, STEP));
  float loss;
  TEST_OK(an_net_read_loss(net, &loss));
  float *logits = test_floats((size_t)n * classes);
  TEST_OK(an_net_read_logits(net, logits));
  float *grads = test_floats(net->n_params);
  TEST_OK(an_net_read_grads(net, grads));

  /* reference forward */
  ref_layer *R = calloc((size_t)m->n_layers, sizeof *R);
  double *x0 = test_dup_double(images, in_count);
  int c = 3, h = input_hw, w = input_hw;
  const double *in = x0;
  for (int i = 0; i < m->n_layers; i++) {
    const an_layer_desc *d = &m->layers[i];
    ref_layer *L = &R[i];
    L->in_c = c, L->in_h = h, L->in_w = w;
    switch (d->kind) {
      case AN_LAYER_CONV: {
        const ref_conv_dims cd = ref_conv_dims_make(n, c, h, w, d->out_channels, d->kernel, d->stride, d->pad,
                                                    d->groups);
        const int ws[4] = {d->out_channels, c / d->groups, d->kernel, d->kernel};
        L->w = tensor(net, d->name, "weight", 4, ws);
        L->b = tensor(net, d->name, "bias", 1, &d->out_channels);
        c = d->out_channels, h = cd.oh, w = cd.ow;
        L->out = test_doubles((size_t)n * c * h * w);
        ref_conv_forward(L->out, in, P + L->w->offset, P + L->b->offset, &cd, d->relu);
        break;
      }
      case AN_LAYER_LRN:
        L->out = test_doubles((size_t)n * c * h * w);
        L->scale = test_doubles((size_t)n * c * h * w);
        ref_lrn_forward(L->out, L->scale, in, n, c, h, w, d->lrn.size, d->lrn.alpha, d->lrn.beta, d->lrn.k);
        break;
      case AN_LAYER_MAXPOOL:
        h = (h - d->kernel) / d->stride + 1, w = (w - d->kernel) / d->stride + 1;
        L->out = test_doubles((size_t)n * c * h * w);
        ref_maxpool_forward(L->out, in, n, c, L->in_h, L->in_w, d->kernel, d->stride);
        break;
      case AN_LAYER_AVGPOOL:
        h = w = d->out_hw;
        L->out = test_doubles((size_t)n * c * h * w);
        ref_avgpool_forward(L->out, in, n, c, L->in_h, L->in_w, h, w);
        break;
      case AN_LAYER_DROPOUT:
        L->out = test_doubles((size_t)n * c * h * w);
        ref_dropout_forward(L->out, in, (size_t)n * c * h * w, d->dropout_p, an_dropout_key(SEED, STEP, (uint32_t)i),
                            0);
        break;
      case AN_LAYER_FC: {
        const int out = d->out_channels ? d->out_channels : classes, fan_in = c * h * w;
        const int ws[2] = {out, fan_in};
        L->w = tensor(net, d->name, "weight", 2, ws);
        L->b = tensor(net, d->name, "bias", 1, &out);
        c = out, h = w = 1;
        L->out = test_doubles((size_t)n * c);
        ref_fc_forward(L->out, in, P + L->w->offset, P + L->b->offset, n, fan_in, out, d->relu);
        break;
      }
      case AN_LAYER_GATHER: /* only in column models, which a split runs */
      case AN_LAYER_SUM: fail_msg("%s: layer %d is an exchange", model, i);
    }
    L->out_c = c, L->out_h = h, L->out_w = w;
    in = L->out;
  }
  assert_int_equal(c, classes);
  double *dlogits = test_doubles((size_t)n * classes);
  const double ref_loss = ref_softmax_xent(NULL, NULL, in, labels, n, classes);

  char what[128];
  int bad = 0;
  snprintf(what, sizeof what, "%s logits", model);
  bad |= check_close(what, logits, in, (size_t)n * classes, 1e-4, 1e-6);
  snprintf(what, sizeof what, "%s loss", model);
  bad |= check_close(what, &loss, &ref_loss, 1, 1e-5, 1e-6);

  /* the device's activations replace the reference's for the backward pass; count differing decisions */
  size_t flips = 0;
  for (int i = 0; i < m->n_layers; i++) {
    const an_layer_plan *pl = &net->layers[i];
    const size_t count = (size_t)n * R[i].out_c * R[i].out_h * R[i].out_w;
    float *act = test_floats(count);
    TEST_OK(an_read(rt, act, an_at(net->acts, pl->out_off), count));
    for (size_t j = 0; j < count; j++) {
      if ((act[j] > 0.0f) != (R[i].out[j] > 0.0)) flips++;
      R[i].out[j] = act[j];
    }
    free(act);
  }
  printf("  %s: %zu activations differ in sign between the device and the double forward\n", model, flips);

  ref_softmax_xent(dlogits, NULL, R[m->n_layers - 1].out, labels, n, classes);

  /* reference backward */
  double *G = test_doubles(net->n_params);
  double *dout = dlogits;
  for (int i = m->n_layers - 1; i >= 0; i--) {
    const an_layer_desc *d = &m->layers[i];
    ref_layer *L = &R[i];
    const double *lin = i == 0 ? x0 : R[i - 1].out;
    const size_t in_n = (size_t)n * L->in_c * L->in_h * L->in_w;
    double *dinp = i == 0 ? NULL : test_doubles(in_n);
    switch (d->kind) {
      case AN_LAYER_CONV: {
        const ref_conv_dims cd = ref_conv_dims_make(n, L->in_c, L->in_h, L->in_w, d->out_channels, d->kernel,
                                                    d->stride, d->pad, d->groups);
        ref_conv_backward(dinp, G + L->w->offset, G + L->b->offset, dout, L->out, lin, P + L->w->offset, &cd,
                          d->relu);
        break;
      }
      case AN_LAYER_LRN:
        ref_lrn_backward(dinp, dout, lin, n, L->in_c, L->in_h, L->in_w, d->lrn.size, d->lrn.alpha, d->lrn.beta,
                         d->lrn.k);
        break;
      case AN_LAYER_MAXPOOL:
        ref_maxpool_backward(dinp, dout, lin, n, L->in_c, L->in_h, L->in_w, d->kernel, d->stride);
        break;
      case AN_LAYER_AVGPOOL:
        ref_avgpool_backward(dinp, dout, n, L->in_c, L->in_h, L->in_w, L->out_h, L->out_w);
        break;
      case AN_LAYER_DROPOUT:
        ref_dropout_backward(dinp, dout, in_n, d->dropout_p, an_dropout_key(SEED, STEP, (uint32_t)i), 0);
        break;
      case AN_LAYER_FC:
        ref_fc_backward(dinp, G + L->w->offset, G + L->b->offset, dout, L->out, lin, P + L->w->offset, n,
                        L->in_c * L->in_h * L->in_w, L->out_c, d->relu);
        break;
      case AN_LAYER_GATHER:
      case AN_LAYER_SUM: fail_msg("%s: layer %d is an exchange", model, i);
    }
    free(dout);
    dout = dinp;
  }
  for (int t = 0; t < net->n_tensors; t++) {
    const an_tensor *T = &net->tensors[t];
    snprintf(what, sizeof what, "%s d%s", model, T->name);
    bad |= check_close(what, grads + T->offset, G + T->offset, T->count, 1e-3, 1e-7);
  }

  /* SGD: two steps (the second uses the momentum of the first), on the device's gradients so that the
   * update alone is checked; weight decay on all tensors, then with no_bias_decay for the second net. */
  const an_sgd_params sgd = {0.01f, 0.9f, 5e-4f, 0};
  double *V = test_doubles(net->n_params);
  double *G32 = test_dup_double(grads, net->n_params);
  for (int k = 0; k < 2; k++) {
    TEST_OK(an_net_sgd(net, &sgd));
    ref_sgd_update(P, G32, V, net->n_params, sgd.lr, sgd.momentum, sgd.weight_decay);
  }
  TEST_OK(an_net_read_params(net, params));
  snprintf(what, sizeof what, "%s params after 2 SGD steps", model);
  bad |= check_close(what, params, P, net->n_params, 1e-6, 1e-8);

  const an_sgd_params no_bias = {0.01f, 0.9f, 5e-4f, 1};
  TEST_OK(an_net_sgd(net, &no_bias));
  for (int t = 0; t < net->n_tensors; t++) {
    const an_tensor *T = &net->tensors[t];
    ref_sgd_update(P + T->offset, G32 + T->offset, V + T->offset, T->count, no_bias.lr, no_bias.momentum,
                   T->is_bias ? 0.0 : no_bias.weight_decay);
  }
  TEST_OK(an_net_read_params(net, params));
  snprintf(what, sizeof what, "%s params after an SGD step without bias decay", model);
  bad |= check_close(what, params, P, net->n_params, 1e-6, 1e-8);

  for (int i = 0; i < m->n_layers; i++) {
    free(R[i].out);
    free(R[i].scale);
  }
  free(R), free(x0), free(G), free(G32), free(V), free(P), free(params), free(grads), free(logits);
  free(images), free(labels);
  an_net_destroy(net);
  assert_int_equal(bad, 0);
}

static void test_alexnet(void **state) {
  (void)state;
  run_model("alexnet", 10, 2, 224);
}
static void test_alexnet_half(void **state) {
  (void)state;
  run_model("alexnet-half", 10, 2, 224);
}
static void test_alexnet_tv(void **state) {
  (void)state;
  run_model("alexnet-tv", 10, 2, 224);
}
/* 127×127: pool5 is 3×3, so the adaptive pool to 6×6 has overlapping windows, and 1000 classes. */
static void test_alexnet_tv_small_input(void **state) {
  (void)state;
  run_model("alexnet-tv", 1000, 3, 127);
}
static void test_alexnet_batch1(void **state) {
  (void)state;
  run_model("alexnet", 5, 1, 163);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alexnet),        cmocka_unit_test(test_alexnet_half),
      cmocka_unit_test(test_alexnet_tv),     cmocka_unit_test(test_alexnet_tv_small_input),
      cmocka_unit_test(test_alexnet_batch1),
  };
  return cmocka_run_group_tests(tests, test_runtime_setup, test_runtime_teardown);
}
